/* test_hello.c: the handshake (Hello/Welcome, versions, ids), Ping/Pong and
 * the command line (--help, --version), against the real netcore. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static void test_hello_welcome_fields(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_client *h = nct_client_new(e->d.endpoint, "h", 0);
  nct_env_adopt(e, h);

  Netcore__V1__Hello hello = NETCORE__V1__HELLO__INIT;
  hello.version = 1;
  hello.name = "welcome-fields";
  nct_cmd cmd = NETCORE__V1__COMMAND__INIT;
  cmd.command_case = NETCORE__V1__COMMAND__COMMAND_HELLO;
  cmd.hello = &hello;
  nct_send(h, &cmd, NULL, 0, 0);
  nct_event *ev = nct_expect_global(h, WELCOME);
  Netcore__V1__Welcome *w = ev->ev->welcome;
  assert_int_equal(ev->ev->seq, 0);
  assert_int_equal(w->version, 1);
  assert_non_null(w->instance_id);
  assert_true(strlen(w->instance_id) > 0);
  assert_string_equal(w->instance_id, e->d.instance_id); /* same netcore, same id */
  assert_true(w->id_prefix != 0);
  assert_true(w->credit_window > 0);
  assert_true(w->lease_ms > 0);
  assert_true(w->max_frame > 0);
  assert_true(w->max_write_queue > 0);
  assert_non_null(w->server_version);
  assert_true(strlen(w->server_version) > 0);
  uint32_t prefix = w->id_prefix;
  nct_event_free(ev);

  /* Every handler gets its own prefix (the observer and the probe too). */
  nct_client *h2 = nct_env_handler(e, "h2");
  assert_true(h2->id_prefix != prefix);
  assert_true(h2->id_prefix != e->observer->id_prefix);
  assert_true(prefix != e->observer->id_prefix);
  nct_env_finish(e);
}

/* Hello.credit_window and lease_ms are the handler's to choose (PROTOCOL §6, §9). */
static void test_hello_credit_and_lease_requested(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_client *h = nct_env_handler_opt(e, "h", 12345, 4321);
  assert_int_equal(h->credit_window, 12345);
  assert_int_equal(h->lease_ms, 4321);
  nct_env_finish(e);
}

static void test_hello_instance_id_differs_between_starts(void **state) {
  (void)state;
  nct_daemon a, b;
  nct_daemon_start(&a, NULL, NULL);
  char first[64];
  snprintf(first, sizeof first, "%s", a.instance_id);
  nct_daemon_stop(&a);
  nct_daemon_start(&b, NULL, NULL);
  assert_true(strlen(first) > 0);
  assert_true(strlen(b.instance_id) > 0);
  if (strcmp(first, b.instance_id) == 0)
    nct_fail("two netcore starts gave the same instance id %s", first);
  nct_daemon_stop(&b);
}

static void test_hello_command_before_hello(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_client *h = nct_client_new(e->d.endpoint, "nohello", 0);
  nct_env_adopt(e, h);

  Netcore__V1__Ping ping = NETCORE__V1__PING__INIT;
  ping.nonce = 7;
  nct_cmd cmd = NETCORE__V1__COMMAND__INIT;
  cmd.ref = 77;
  cmd.command_case = NETCORE__V1__COMMAND__COMMAND_PING;
  cmd.ping = &ping;
  nct_send(h, &cmd, NULL, 0, 0);
  nct_event *ev = nct_expect_error(h, "ERR_NO_HELLO");
  assert_int_equal(ev->ev->error->ref, 77);
  assert_string_equal(ev->ev->error->command, "ping");
  nct_event_free(ev);

  /* A Listen before Hello must not listen. */
  nct_cmd_listen_tcp(h, 1, "127.0.0.1", 0, 0, 0, 0, NULL);
  nct_event_free(nct_expect_error(h, "ERR_NO_HELLO"));
  nct_expect_silence(h, 200);

  /* Then Hello works as usual. */
  nct_hello(h, 0, 60000);
  nct_sync(h);
  nct_env_finish(e);
}

static void send_hello_version(nct_client *h, uint32_t version, uint64_t ref) {
  Netcore__V1__Hello hello = NETCORE__V1__HELLO__INIT;
  hello.version = version;
  hello.name = "v";
  nct_cmd cmd = NETCORE__V1__COMMAND__INIT;
  cmd.ref = ref;
  cmd.command_case = NETCORE__V1__COMMAND__COMMAND_HELLO;
  cmd.hello = &hello;
  nct_send(h, &cmd, NULL, 0, 0);
}

static void test_hello_unsupported_version(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_client *h = nct_client_new(e->d.endpoint, "v2", 0);
  nct_env_adopt(e, h);

  send_hello_version(h, 2, 5);
  nct_event *ev = nct_expect_error(h, "ERR_UNSUPPORTED_VERSION");
  assert_int_equal(ev->ev->error->ref, 5);
  nct_event_free(ev);
  send_hello_version(h, 0, 6);
  nct_event_free(nct_expect_error(h, "ERR_UNSUPPORTED_VERSION"));

  /* The handler stays unknown. */
  nct_cmd_ping(h, 1);
  nct_event_free(nct_expect_error(h, "ERR_NO_HELLO"));

  nct_hello(h, 0, 60000);
  nct_sync(h);
  nct_env_finish(e);
}

static void test_hello_ping_pong(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_client *h = nct_env_handler(e, "pinger");
  const uint64_t nonces[] = {0, 1, 0xdeadbeefcafef00dull, UINT64_MAX};
  for (size_t i = 0; i < 4; i++) nct_cmd_ping(h, nonces[i]);
  for (size_t i = 0; i < 4; i++) {
    nct_event *ev = nct_expect_global(h, PONG);
    assert_int_equal(ev->ev->seq, 0);
    assert_int_equal(ev->ev->pong->nonce, nonces[i]);
    nct_event_free(ev);
  }
  nct_env_finish(e);
}

/* A second Hello resets the handler: everything it owned is destroyed before
 * the new Welcome (PROTOCOL §2). */
static void test_hello_second_hello_resets(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_client *h = nct_env_handler(e, "resetter");
  uint16_t port;
  uint64_t srv = nct_listen_local(h, &port, 0);
  int peer;
  nct_accept_peer(h, srv, port, &peer);

  nct_hello(h, 0, 60000);
  /* Everything was gone before the Welcome: the peer is closed... */
  nct_peer_expect_eof(peer);
  close(peer);
  /* ...and the port is free for anyone. */
  uint64_t again = nct_new_id(e->observer);
  nct_cmd_listen_tcp(e->observer, again, "127.0.0.1", port, 0, 0, 0, NULL);
  nct_event *ev = nct_expect(e->observer, LISTENING, again);
  assert_int_equal(ev->ev->listening->address->port, port);
  nct_event_free(ev);
  nct_cmd_server_close(e->observer, again);
  nct_expect_drop(e->observer, SERVER_CLOSED, again);
  nct_sync(h);
  nct_env_finish(e);
}

/* Runs netcore with one argument; returns its exit status and stdout. */
static int run_cli(const char *arg, char *out, size_t cap) {
  int pfd[2];
  if (pipe(pfd) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(pfd[1], 1);
    close(pfd[0]);
    close(pfd[1]);
    execl(nct_netcore_path(), nct_netcore_path(), arg, (char *)NULL);
    _exit(127);
  }
  close(pfd[1]);
  size_t n = 0;
  ssize_t k;
  while (n + 1 < cap && (k = read(pfd[0], out + n, cap - 1 - n)) > 0) n += (size_t)k;
  out[n] = '\0';
  close(pfd[0]);
  int status;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void test_hello_cli_help_and_version(void **state) {
  nct_env *e = *state;
  char out[8192];
  assert_int_equal(run_cli("--help", out, sizeof out), 0);
  assert_non_null(strstr(out, "--bind"));
  assert_non_null(strstr(out, "--listen-fd"));
  assert_int_equal(run_cli("--version", out, sizeof out), 0);
  assert_true(strlen(out) > 0);
  /* --version names the release Welcome.server_version reports. */
  nct_env_start(e, NULL);
  if (!strstr(out, e->observer->server_version))
    nct_fail("--version printed \"%s\", which does not contain Welcome.server_version \"%s\"", out,
             e->observer->server_version);
  nct_env_finish(e);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_hello_welcome_fields, nct_env_setup, nct_env_teardown),
      cmocka_unit_test_setup_teardown(test_hello_credit_and_lease_requested, nct_env_setup,
                                      nct_env_teardown),
      cmocka_unit_test_setup_teardown(test_hello_instance_id_differs_between_starts, nct_env_setup,
                                      nct_env_teardown),
      cmocka_unit_test_setup_teardown(test_hello_command_before_hello, nct_env_setup,
                                      nct_env_teardown),
      cmocka_unit_test_setup_teardown(test_hello_unsupported_version, nct_env_setup,
                                      nct_env_teardown),
      cmocka_unit_test_setup_teardown(test_hello_ping_pong, nct_env_setup, nct_env_teardown),
      cmocka_unit_test_setup_teardown(test_hello_second_hello_resets, nct_env_setup,
                                      nct_env_teardown),
      cmocka_unit_test_setup_teardown(test_hello_cli_help_and_version, nct_env_setup,
                                      nct_env_teardown),
  };
  return NCT_RUN(argc, argv, tests);
}
