/* libnc finds netcore where netcore puts itself by default: nc_default_endpoint()
 * follows the shared rule (XDG_RUNTIME_DIR, root, per-user fallback), a loop
 * made without an endpoint reaches a netcore started without --bind, and
 * NETCORE_ENDPOINT and an explicit endpoint still win, in that order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nct.h"

static void test_client_endpoint_rule(void **state) {
  (void)state;
  char ep[256], want[256];
  setenv("XDG_RUNTIME_DIR", "/run/user/4242/", 1);
  assert_int_equal(nc_default_endpoint(ep, sizeof(ep)), 0);
  assert_string_equal(ep, "ipc:///run/user/4242/netcore/netcore.sock");
  unsetenv("XDG_RUNTIME_DIR");
  assert_int_equal(nc_default_endpoint(ep, sizeof(ep)), 0);
  if (geteuid() == 0) snprintf(want, sizeof(want), "ipc:///run/netcore/netcore.sock");
  else snprintf(want, sizeof(want), "ipc:///tmp/netcore-%lu/netcore.sock", (unsigned long)geteuid());
  assert_string_equal(ep, want);
  assert_int_equal(nc_default_endpoint(ep, 10), NC_ENAMETOOLONG);
  assert_string_equal(ep, "");
  assert_int_equal(nc_default_endpoint(NULL, 10), NC_EINVAL);
}

static void test_client_endpoint_default_reaches_netcore(void **state) {
  (void)state;
  nct_netcore_t d;
  nct_netcore_start_default(&d);
  setenv("XDG_RUNTIME_DIR", d.dir, 1);
  unsetenv("NETCORE_ENDPOINT");
  char ep[256], err[512];
  assert_int_equal(nc_default_endpoint(ep, sizeof(ep)), 0);
  assert_string_equal(ep, d.endpoint);

  nc_loop_t *loop;
  nc_loop_options_t o = {.name = "default-endpoint", .hello_timeout_ms = 5000};
  int rv = nc_loop_new(&loop, &o, err, sizeof(err));
  if (rv != 0) fail_msg("no endpoint given, netcore at %s: %s", d.endpoint, err);
  nc_loop_free(loop);

  /* NETCORE_ENDPOINT wins over the default... */
  char other[256];
  snprintf(other, sizeof(other), "ipc://%s/nobody.sock", d.dir);
  setenv("NETCORE_ENDPOINT", other, 1);
  o.hello_timeout_ms = 300;
  assert_int_equal(nc_loop_new(&loop, &o, err, sizeof(err)), NC_ERR_NETCORE_UNAVAILABLE);
  assert_non_null(strstr(err, other));
  /* ...and the endpoint option over both. */
  o.endpoint = d.endpoint;
  o.hello_timeout_ms = 5000;
  rv = nc_loop_new(&loop, &o, err, sizeof(err));
  if (rv != 0) fail_msg("explicit endpoint %s: %s", d.endpoint, err);
  nc_loop_free(loop);
  unsetenv("NETCORE_ENDPOINT");
  unsetenv("XDG_RUNTIME_DIR");
  nct_netcore_stop(&d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_client_endpoint_rule),
      cmocka_unit_test(test_client_endpoint_default_reaches_netcore),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
