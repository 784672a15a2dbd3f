/* Connections outlive their handler, with the example echo actors as real
 * processes (PROTOCOL.md 13). argv[1] picks the echo: "c", "python" or
 * "node". Every test streams a position-dependent pattern from 20 clients
 * and checks, for every connection: exactly one greeting, every byte back
 * exactly once and in order, a clean end after the client's half-close, and
 * no stall over 2 s.
 *  - kill -9 of one of two members of a group, mid-stream;
 *  - a rolling restart: a third member starts, the second gets SIGTERM;
 *  - one ungrouped echo with --service, killed and restarted within
 *    --handoff-ms: its connections resume; restarted after it: they were
 *    closed, the port is free and the new echo listens;
 *  - the echo adopts the connections of a handler killed (kill -9) before it
 *    wrote anything: it greets them; or killed after its greeting reached
 *    the kernel: it does not greet them again (exactly one greeting). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nct.h"
#include "streamers.h"

static void kill9(void *arg) {
  actor_t *a = arg;
  echo_stop(a, SIGKILL);
}

static void sigterm(void *arg) {
  actor_t *a = arg;
  int status = echo_stop(a, SIGTERM);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    fail_msg("%s echo exited with status 0x%x on SIGTERM", lang, status);
}

typedef struct {
  actor_t *a;
  const char *endpoint;
  const char *const *args;
} start_arg_t;

static void start_member(void *arg) {
  start_arg_t *s = arg;
  echo_start(s->a, s->endpoint, s->args);
}

/* ------------------------------------------------------------------- tests */

static void test_failover_group_kill9(void **state) {
  (void)state;
  nct_netcore_t d;
  nct_netcore_start(&d, NULL);
  actor_t a, b;
  const char *args0[] = {"--port", "0", "--host", "127.0.0.1", "--group", "g", NULL};
  int port = echo_start(&a, d.endpoint, args0);
  char ps[16];
  snprintf(ps, sizeof ps, "%d", port);
  const char *args[] = {"--port", ps, "--host", "127.0.0.1", "--group", "g", NULL};
  echo_start(&b, d.endpoint, args);
  client_t c[NCLIENTS];
  clients_connect(c, port);
  trigger_t t[] = {{.at = NCLIENTS * TOTAL / 3, .fn = kill9, .arg = &b}};
  clients_run(c, t, 1);
  echo_stop(&a, SIGKILL);
  nct_netcore_stop(&d);
}

static void test_failover_rolling_restart(void **state) {
  (void)state;
  nct_netcore_t d;
  nct_netcore_start(&d, NULL);
  actor_t a, b, c3;
  const char *args0[] = {"--port", "0", "--host", "127.0.0.1", "--group", "g", NULL};
  int port = echo_start(&a, d.endpoint, args0);
  char ps[16];
  snprintf(ps, sizeof ps, "%d", port);
  const char *args[] = {"--port", ps, "--host", "127.0.0.1", "--group", "g", NULL};
  echo_start(&b, d.endpoint, args);
  client_t c[NCLIENTS];
  clients_connect(c, port);
  start_arg_t third = {&c3, d.endpoint, args};
  trigger_t t[] = {{.at = NCLIENTS * TOTAL / 4, .fn = start_member, .arg = &third},
                   {.at = NCLIENTS * TOTAL / 2, .fn = sigterm, .arg = &b}};
  clients_run(c, t, 2);
  sigterm(&a);
  sigterm(&c3);
  nct_netcore_stop(&d);
}

typedef struct {
  actor_t *a;
  const char *endpoint;
  const char *const *args;
} restart_arg_t;

static void kill_and_restart(void *arg) {
  restart_arg_t *r = arg;
  echo_stop(r->a, SIGKILL);
  usleep(300 * 1000); /* well within --handoff-ms (5000) */
  echo_start(r->a, r->endpoint, r->args);
}

static void test_failover_service_restart(void **state) {
  (void)state;
  nct_netcore_t d;
  const char *flags[] = {"--handoff-ms", "5000", NULL};
  nct_netcore_start(&d, flags);
  actor_t a;
  const char *args0[] = {"--port", "0", "--host", "127.0.0.1", "--service", "echo1", NULL};
  int port = echo_start(&a, d.endpoint, args0);
  char ps[16];
  snprintf(ps, sizeof ps, "%d", port);
  const char *args[] = {"--port", ps, "--host", "127.0.0.1", "--service", "echo1", NULL};
  client_t c[NCLIENTS];
  clients_connect(c, port);
  restart_arg_t r = {&a, d.endpoint, args};
  trigger_t t[] = {{.at = NCLIENTS * TOTAL / 3, .fn = kill_and_restart, .arg = &r}};
  clients_run(c, t, 1);
  echo_stop(&a, SIGKILL);
  nct_netcore_stop(&d);
}

/* Restarted after --handoff-ms: the old connections were closed, the port
 * was freed, and the new echo listens on it and greets anew. */
static void test_failover_service_restart_too_late(void **state) {
  (void)state;
  nct_netcore_t d;
  const char *flags[] = {"--handoff-ms", "300", NULL};
  nct_netcore_start(&d, flags);
  actor_t a;
  const char *args0[] = {"--port", "0", "--host", "127.0.0.1", "--service", "echo1", NULL};
  int port = echo_start(&a, d.endpoint, args0);
  int old = nct_tcp_connect(port);
  char g[8];
  assert_int_equal(nct_read_all(old, g, 7, 5000), 7);
  echo_stop(&a, SIGKILL);
  char rest[8];
  uint64_t t0 = nct_now_ms();
  assert_int_equal(nct_read_all(old, rest, sizeof rest, 5000), 0); /* EOF */
  if (nct_now_ms() - t0 < 250) fail_msg("closed before --handoff-ms");
  close(old);
  char ps[16];
  snprintf(ps, sizeof ps, "%d", port);
  const char *args[] = {"--port", ps, "--host", "127.0.0.1", "--service", "echo1", NULL};
  assert_int_equal(echo_start(&a, d.endpoint, args), port);
  int fresh = nct_tcp_connect(port);
  assert_int_equal(nct_read_all(fresh, g, 7, 5000), 7);
  assert_memory_equal(g, greeting, 7);
  close(fresh);
  echo_stop(&a, SIGKILL);
  nct_netcore_stop(&d);
}

/* The echo joins the group of a handler (owner_start) that took two
 * connections and is then killed: before it wrote anything (greet 0) or once
 * its greeting reached the kernel (greet 1). Each client then gets exactly
 * one greeting, its bytes back, and the end after its half-close. */
static void adopt_from_owner(int greet) {
  nct_netcore_t d;
  nct_netcore_start(&d, NULL);
  actor_t owner, e;
  int port = owner_start(&owner, d.endpoint, "g", greet);
  int fd[2];
  for (int i = 0; i < 2; i++) {
    fd[i] = nct_tcp_connect(port);
    owner_wait_connection(&owner);
  }
  char ps[16];
  snprintf(ps, sizeof ps, "%d", port);
  const char *args[] = {"--port", ps, "--host", "127.0.0.1", "--group", "g", NULL};
  assert_int_equal(echo_start(&e, d.endpoint, args), port);
  echo_stop(&owner, SIGKILL); /* the echo, the group's live member, adopts both */
  static const char ping[] = "ping\n";
  char want[32];
  snprintf(want, sizeof want, "%s%s", greeting, ping);
  for (int i = 0; i < 2; i++) {
    nct_write_all(fd[i], ping, sizeof ping - 1);
    shutdown(fd[i], SHUT_WR);
    char got[64];
    size_t n = nct_read_all(fd[i], got, sizeof got, 5000);
    if (n != strlen(want) || memcmp(got, want, n) != 0)
      fail_msg("%s echo, owner %s: client %d got %zu bytes \"%.*s\", want \"hello\\r\\nping\\n\"",
               lang, greet ? "greeted" : "silent", i, n, (int)n, got);
    close(fd[i]);
  }
  echo_stop(&e, SIGKILL);
  nct_netcore_stop(&d);
}

static void test_failover_adopt_ungreeted(void **state) {
  (void)state;
  adopt_from_owner(0);
}

static void test_failover_adopt_greeted(void **state) {
  (void)state;
  adopt_from_owner(1);
}

int main(int argc, char **argv) {
  if (argc > 1) lang = argv[1];
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest c_tests[] = {
      cmocka_unit_test(test_failover_group_kill9),
      cmocka_unit_test(test_failover_rolling_restart),
      cmocka_unit_test(test_failover_service_restart),
      cmocka_unit_test(test_failover_service_restart_too_late),
      cmocka_unit_test_teardown(test_failover_adopt_ungreeted, actors_teardown),
      cmocka_unit_test_teardown(test_failover_adopt_greeted, actors_teardown),
  };
  /* Python and Node.js: the rolling restart (and the kill, which costs
   * nothing more to run), and adoption from a handler killed before or after
   * its greeting. */
  const struct CMUnitTest other_tests[] = {
      cmocka_unit_test(test_failover_group_kill9),
      cmocka_unit_test(test_failover_rolling_restart),
      cmocka_unit_test_teardown(test_failover_adopt_ungreeted, actors_teardown),
      cmocka_unit_test_teardown(test_failover_adopt_greeted, actors_teardown),
  };
  if (strcmp(lang, "c") == 0) return cmocka_run_group_tests_name("failover_c", c_tests, NULL, NULL);
  return cmocka_run_group_tests_name(lang, other_tests, NULL, NULL);
}
