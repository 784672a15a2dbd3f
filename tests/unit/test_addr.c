/* Unit tests of netcore/addr.c: port rules, IP literals, UNIX paths, wire form. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <string.h>

#include "addr.h"
#include "errors.h"

static void test_addr_port_range(void **state) {
  assert_int_equal(ncd_addr_check_port(0, 1), 0);
  assert_int_equal(ncd_addr_check_port(65535, 1), 0);
  assert_int_equal(ncd_addr_check_port(8124, 0), 0);
  assert_int_equal(ncd_addr_check_port(0, 0), NCD_ERR_SOCKET_BAD_PORT);
  assert_int_equal(ncd_addr_check_port(-1, 1), NCD_ERR_SOCKET_BAD_PORT);
  assert_int_equal(ncd_addr_check_port(65536, 1), NCD_ERR_SOCKET_BAD_PORT);
  assert_int_equal(ncd_addr_check_port(INT64_MIN, 1), NCD_ERR_SOCKET_BAD_PORT);
}

static void test_addr_parse_ip_literals(void **state) {
  struct sockaddr_storage ss;
  socklen_t len;
  assert_int_equal(ncd_addr_parse_ip("127.0.0.1", 80, &ss, &len), 0);
  assert_int_equal(ss.ss_family, AF_INET);
  assert_int_equal(len, sizeof(struct sockaddr_in));
  assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 80);
  assert_int_equal(ncd_addr_parse_ip("::1", 443, &ss, &len), 0);
  assert_int_equal(ss.ss_family, AF_INET6);
  assert_int_equal(ntohs(((struct sockaddr_in6 *)&ss)->sin6_port), 443);
  assert_int_equal(ncd_addr_parse_ip("fe80::1%lo", 1, &ss, &len), 0);
  assert_int_not_equal(((struct sockaddr_in6 *)&ss)->sin6_scope_id, 0);
}

static void test_addr_parse_ip_rejects_names(void **state) {
  struct sockaddr_storage ss;
  socklen_t len;
  const char *bad[] = {"localhost", "example.com", "", "1.2.3", "256.0.0.0", " 127.0.0.1",
                       "fe80::1%no-such-interface", "not an ip!"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    assert_int_equal(ncd_addr_parse_ip(bad[i], 1, &ss, &len), NCD_EINVAL);
}

static void test_addr_unix_path_limits(void **state) {
  struct sockaddr_un sun;
  socklen_t len;
  char path[sizeof sun.sun_path + 1];
  assert_int_equal(ncd_addr_unix("", &sun, &len), NCD_EINVAL);
  memset(path, 'a', sizeof sun.sun_path - 1);
  path[sizeof sun.sun_path - 1] = '\0';
  assert_int_equal(ncd_addr_unix(path, &sun, &len), 0); /* 107 bytes fit */
  assert_string_equal(sun.sun_path, path);
  memset(path, 'a', sizeof sun.sun_path);
  path[sizeof sun.sun_path] = '\0';
  assert_int_equal(ncd_addr_unix(path, &sun, &len), NCD_ENAMETOOLONG);
}

static void test_addr_wire_form(void **state) {
  struct sockaddr_storage ss;
  socklen_t len;
  ncc_addr a;
  ncd_addr_parse_ip("10.1.2.3", 8124, &ss, &len);
  assert_int_equal(ncd_addr_from_sockaddr((struct sockaddr *)&ss, len, &a), 0);
  assert_int_equal(a.family, NCC_FAMILY_IPV4);
  assert_string_equal(a.address, "10.1.2.3");
  assert_int_equal(a.port, 8124);
  ncd_addr_parse_ip("2001:db8::1", 1, &ss, &len);
  ncd_addr_from_sockaddr((struct sockaddr *)&ss, len, &a);
  assert_int_equal(a.family, NCC_FAMILY_IPV6);
  assert_string_equal(a.address, "2001:db8::1");
  struct sockaddr_un sun;
  ncd_addr_unix("/tmp/echo.sock", &sun, &len);
  ncd_addr_from_sockaddr((struct sockaddr *)&sun, len, &a);
  assert_int_equal(a.family, NCC_FAMILY_UNIX);
  assert_string_equal(a.address, "/tmp/echo.sock");
  assert_int_equal(a.port, 0);
}

static void test_addr_wildcard(void **state) {
  ncc_addr any4 = {.family = NCC_FAMILY_IPV4, .address = "0.0.0.0"};
  ncc_addr any6 = {.family = NCC_FAMILY_IPV6, .address = "::"};
  ncc_addr lo4 = {.family = NCC_FAMILY_IPV4, .address = "127.0.0.1"};
  ncc_addr lo6 = {.family = NCC_FAMILY_IPV6, .address = "::1"};
  ncc_addr path = {.family = NCC_FAMILY_UNIX, .address = "/tmp/x.sock"};
  assert_true(ncd_addr_is_wildcard(&any4));
  assert_true(ncd_addr_is_wildcard(&any6));
  assert_false(ncd_addr_is_wildcard(&lo4));
  assert_false(ncd_addr_is_wildcard(&lo6));
  assert_false(ncd_addr_is_wildcard(&path));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_addr_port_range),
      cmocka_unit_test(test_addr_parse_ip_literals),
      cmocka_unit_test(test_addr_parse_ip_rejects_names),
      cmocka_unit_test(test_addr_unix_path_limits),
      cmocka_unit_test(test_addr_wire_form),
      cmocka_unit_test(test_addr_wildcard),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
