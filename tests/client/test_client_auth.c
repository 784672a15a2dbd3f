/* test_client_auth.c: libnc over CURVE (nc_loop_options_t.server_key /
 * secret_file, NETCORE_SERVER_KEY / NETCORE_SECRET_FILE): an allowed key
 * works, an unknown key gets NC_EACCES, bad keys NC_EINVAL, a handler without
 * keys on a CURVE endpoint NC_EPROTO. Against a real netcore with a tcp bind. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "nct.h"

static nct_netcore_t d;
static char dir[128], srv_key[160], alice_key[160], mallory_key[160], srv_pub[41], ep[128];

/* `netcore keygen path`; the public key it printed goes to pub (may be NULL). */
static void keygen(const char *path, char *pub) {
  char cmd[512], out[64] = "";
  snprintf(cmd, sizeof(cmd), "'%s' keygen '%s'", nct_netcore_bin(), path);
  FILE *p = popen(cmd, "r");
  if (p == NULL || fgets(out, sizeof(out), p) == NULL || pclose(p) != 0)
    fail_msg("netcore keygen %s failed", path);
  out[strcspn(out, "\n")] = '\0';
  assert_int_equal(strlen(out), 40);
  if (pub != NULL) snprintf(pub, 41, "%s", out);
}

/* netcore with CURVE on tcp://127.0.0.1:<free port>; alice's key allowed. */
static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof(dir), "/tmp/nct-cauth-XXXXXX");
  if (mkdtemp(dir) == NULL) fail_msg("mkdtemp");
  snprintf(srv_key, sizeof(srv_key), "%s/srv.key", dir);
  snprintf(alice_key, sizeof(alice_key), "%s/alice.key", dir);
  snprintf(mallory_key, sizeof(mallory_key), "%s/mallory.key", dir);
  char alice_pub[41], allow[160], log[160], policy[160];
  keygen(srv_key, srv_pub);
  keygen(alice_key, alice_pub);
  keygen(mallory_key, NULL);
  snprintf(allow, sizeof(allow), "%s/allow", dir);
  FILE *f = fopen(allow, "w");
  fprintf(f, "alice %s\n", alice_pub);
  fclose(f);
  /* Without a policy a CURVE handler may do nothing (docs/POLICY.md). */
  snprintf(policy, sizeof(policy), "%s/policy", dir);
  f = fopen(policy, "w");
  fprintf(f, "handler key:alice\n  listen tcp 127.0.0.1 *\n");
  fclose(f);
  /* netcore logs the port it got for tcp://127.0.0.1:*; its stderr is ours. */
  snprintf(log, sizeof(log), "%s/log", dir);
  int lfd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600), saved = dup(2);
  dup2(lfd, 2);
  const char *flags[] = {"--bind", "tcp://127.0.0.1:*", "--curve-secret-file", srv_key,
                         "--curve-allow", allow, "--policy", policy, "--log-level", "info", NULL};
  nct_netcore_start(&d, flags);
  dup2(saved, 2);
  close(saved);
  close(lfd);
  char text[4096] = "";
  f = fopen(log, "r");
  size_t n = fread(text, 1, sizeof(text) - 1, f);
  text[n] = '\0';
  fclose(f);
  const char *p = strstr(text, "handlers connect to tcp://");
  if (p == NULL) fail_msg("netcore did not log its tcp endpoint:\n%s", text);
  p += strlen("handlers connect to ");
  snprintf(ep, sizeof(ep), "%.*s", (int)strcspn(p, " \n"), p);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  nct_netcore_stop(&d);
  char cmd[200];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  return system(cmd) == 0 ? 0 : -1;
}

static int try_loop(const char *server_key, const char *secret_file, nc_loop_t **loop, char *err,
                    size_t cap) {
  nc_loop_options_t o = {.endpoint = ep, .name = "curve", .hello_timeout_ms = 5000,
                         .server_key = server_key, .secret_file = secret_file};
  return nc_loop_new(loop, &o, err, cap);
}

static void on_listening(nc_server_t *s) {
  nc_address_t a;
  assert_int_equal(nc_server_address(s, &a), 0);
  assert_true(a.port > 0);
  *(int *)nc_server_get_data(s) = a.port;
  nc_server_close(s, NULL);
}

static void test_client_auth_curve_allowed(void **state) {
  (void)state;
  nc_loop_t *loop;
  char err[512];
  int rv = try_loop(srv_pub, alice_key, &loop, err, sizeof(err));
  if (rv != 0) fail_msg("nc_loop_new over CURVE: %s", err);
  nc_server_t *s;
  int port = 0;
  assert_int_equal(nc_server_new(loop, NULL, NULL, &s), 0);
  nc_server_set_data(s, &port);
  assert_int_equal(nc_server_listen(s, 0, "127.0.0.1", on_listening), 0);
  assert_int_equal(nct_run(loop, 10000), 0);
  assert_true(port > 0);
  nc_loop_free(loop);
}

static void test_client_auth_curve_from_env(void **state) {
  (void)state;
  nc_loop_t *loop;
  char err[512];
  setenv("NETCORE_SERVER_KEY", srv_pub, 1);
  setenv("NETCORE_SECRET_FILE", alice_key, 1);
  int rv = try_loop(NULL, NULL, &loop, err, sizeof(err));
  /* Without them it does not get in. */
  unsetenv("NETCORE_SERVER_KEY");
  unsetenv("NETCORE_SECRET_FILE");
  if (rv != 0) fail_msg("nc_loop_new with NETCORE_SERVER_KEY / NETCORE_SECRET_FILE: %s", err);
  nc_loop_free(loop);
  assert_int_equal(try_loop(NULL, NULL, &loop, err, sizeof(err)), NC_EPROTO);
  assert_non_null(strstr(err, "NETCORE_SERVER_KEY"));
}

static void test_client_auth_unknown_key(void **state) {
  (void)state;
  nc_loop_t *loop = (nc_loop_t *)1;
  char err[512];
  assert_int_equal(try_loop(srv_pub, mallory_key, &loop, err, sizeof(err)), NC_EACCES);
  assert_null(loop);
  assert_non_null(strstr(err, "refused this handler"));
  assert_non_null(strstr(err, "--curve-allow"));
}

static void test_client_auth_bad_keys(void **state) {
  (void)state;
  nc_loop_t *loop;
  char err[512], path[200];
  assert_int_equal(try_loop("too-short", alice_key, &loop, err, sizeof(err)), NC_EINVAL);
  assert_non_null(strstr(err, "40 Z85 characters"));
  snprintf(path, sizeof(path), "%s/missing.key", dir);
  assert_int_equal(try_loop(srv_pub, path, &loop, err, sizeof(err)), NC_EINVAL);
  assert_non_null(strstr(err, "cannot open key pair file"));
  assert_int_equal(try_loop(srv_pub, NULL, &loop, err, sizeof(err)), NC_EINVAL);
  assert_non_null(strstr(err, "needs both"));
  snprintf(path, sizeof(path), "%s/bad.key", dir);
  FILE *f = fopen(path, "w");
  fprintf(f, "public-key = \"%s\"\n", srv_pub);
  fclose(f);
  assert_int_equal(try_loop(srv_pub, path, &loop, err, sizeof(err)), NC_EINVAL);
  assert_non_null(strstr(err, "needs both public-key and secret-key"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_client_auth_curve_allowed),
      cmocka_unit_test(test_client_auth_curve_from_env),
      cmocka_unit_test(test_client_auth_unknown_key),
      cmocka_unit_test(test_client_auth_bad_keys),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
