/* Unit tests of netcore/errors.c: the one error table and libuv's codes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <uv.h>

#include "errors.h"

static void test_errors_errno_names_match_node(void **state) {
  assert_string_equal(ncd_err_name(UV_EADDRINUSE), "EADDRINUSE");
  assert_string_equal(ncd_err_name(UV_ECONNREFUSED), "ECONNREFUSED");
  assert_string_equal(ncd_err_name(UV_ENOENT), "ENOENT");
  assert_string_equal(ncd_err_name(UV_EPIPE), "EPIPE");
  assert_string_equal(ncd_err_name(NCD_EADDRNOTAVAIL), "EADDRNOTAVAIL");
  assert_string_equal(ncd_err_message(UV_ECONNREFUSED), "connection refused");
}

static void test_errors_resolver_codes_are_node_names(void **state) {
  assert_string_equal(ncd_err_name(UV_EAI_NONAME), "ENOTFOUND");
  assert_string_equal(ncd_err_name(UV_EAI_NODATA), "ENOTFOUND");
  assert_string_equal(ncd_err_name(UV_EAI_AGAIN), "EAI_AGAIN");
}

static void test_errors_project_codes(void **state) {
  assert_string_equal(ncd_err_name(NCD_ERR_SOCKET_BAD_PORT), "ERR_SOCKET_BAD_PORT");
  assert_string_equal(ncd_err_name(NCD_ERR_NO_HELLO), "ERR_NO_HELLO");
  assert_string_equal(ncd_err_name(NCD_ERR_PAYLOAD), "ERR_PAYLOAD");
  assert_true(strlen(ncd_err_message(NCD_ERR_UNKNOWN_COMMAND)) > 0);
}

/* Every name in the table maps back to itself: no two entries share a number. */
static void test_errors_table_is_one_to_one(void **state) {
#define XX(name, code, msg) assert_string_equal(ncd_err_name(code), #name);
  NC_ERRNO_MAP(XX)
#undef XX
}

static void test_errors_unknown_falls_back_to_libuv(void **state) {
  assert_string_equal(ncd_err_name(UV_ESHUTDOWN), "ESHUTDOWN");
}

/* A callee's detail travels in the caller's ncd_err: code and message, cut
 * to the buffer; without an ncd_err the code alone comes back. */
static void test_errors_err_set_fills_the_callers_struct(void **state) {
  ncd_err e = {0};
  assert_int_equal(ncd_err_set(&e, NCD_EBADF, "no %s with id %d", "socket", 7), NCD_EBADF);
  assert_int_equal(e.code, NCD_EBADF);
  assert_string_equal(e.message, "no socket with id 7");
  char long_text[2000];
  memset(long_text, 'x', sizeof long_text - 1);
  long_text[sizeof long_text - 1] = '\0';
  ncd_err_set(&e, NCD_EMSGSIZE, "%s", long_text);
  assert_int_equal(strlen(e.message), sizeof e.message - 1);
  assert_int_equal(ncd_err_set(NULL, NCD_EACCES, "nobody asked"), NCD_EACCES);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_errors_errno_names_match_node),
      cmocka_unit_test(test_errors_resolver_codes_are_node_names),
      cmocka_unit_test(test_errors_project_codes),
      cmocka_unit_test(test_errors_table_is_one_to_one),
      cmocka_unit_test(test_errors_unknown_falls_back_to_libuv),
      cmocka_unit_test(test_errors_err_set_fills_the_callers_struct),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
