/* test_default_endpoint.c: the one default-endpoint rule (common/default_endpoint.h)
 * that netcore and libnc share, for each of its three cases; the Python and
 * Node.js libraries' copies are checked against the same table in their tests. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "default_endpoint.h"

static void expect_rule(const char *xdg, unsigned long uid, const char *want) {
  char out[256];
  assert_int_equal(ncc_default_endpoint(xdg, uid, out, sizeof out), 0);
  assert_string_equal(out, want);
}

static void test_default_endpoint_xdg_wins(void **state) {
  (void)state;
  expect_rule("/run/user/1000", 1000, "ipc:///run/user/1000/netcore/netcore.sock");
  expect_rule("/run/user/1000//", 1000, "ipc:///run/user/1000/netcore/netcore.sock");
  expect_rule("/run/user/0", 0, "ipc:///run/user/0/netcore/netcore.sock"); /* root too */
}

static void test_default_endpoint_root(void **state) {
  (void)state;
  expect_rule(NULL, 0, "ipc:///run/netcore/netcore.sock");
  expect_rule("", 0, "ipc:///run/netcore/netcore.sock");
  expect_rule("relative/dir", 0, "ipc:///run/netcore/netcore.sock"); /* not absolute = unset */
}

static void test_default_endpoint_fallback_per_user(void **state) {
  (void)state;
  expect_rule(NULL, 1000, "ipc:///tmp/netcore-1000/netcore.sock");
  expect_rule("", 4294967294ul, "ipc:///tmp/netcore-4294967294/netcore.sock");
}

static void test_default_endpoint_too_long(void **state) {
  (void)state;
  char out[24] = "x";
  assert_int_equal(ncc_default_endpoint("/run/user/1000", 1000, out, sizeof out), -ENAMETOOLONG);
  assert_string_equal(out, "");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_default_endpoint_xdg_wins),
      cmocka_unit_test(test_default_endpoint_root),
      cmocka_unit_test(test_default_endpoint_fallback_per_user),
      cmocka_unit_test(test_default_endpoint_too_long),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
