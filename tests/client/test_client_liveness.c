/* libnc when netcore is not there: not running at start (a clear error in
 * bounded time), killed while the handler runs (every socket and server
 * gets 'error' ERR_NETCORE_GONE then 'close', the loop returns, nothing
 * hangs or leaks), silent (the lease finds it), shutting down (SIGTERM). */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "nct.h"

static void test_client_liveness_not_running(void **state) {
  (void)state;
  char endpoint[128], err[512];
  snprintf(endpoint, sizeof(endpoint), "ipc:///tmp/nct-none-%d/nc.sock", (int)getpid());
  nc_loop_options_t o = {.endpoint = endpoint, .hello_timeout_ms = 300};
  nc_loop_t *loop = (nc_loop_t *)&o; /* must be reset to NULL */
  int rv = nc_loop_new(&loop, &o, err, sizeof(err));
  assert_int_equal(rv, NC_ERR_NETCORE_UNAVAILABLE);
  assert_null(loop);
  assert_non_null(strstr(err, endpoint));
  assert_non_null(strstr(err, "not reachable"));
  /* A malformed endpoint is a different, immediate error. */
  o.endpoint = "nonsense://x";
  assert_int_equal(nc_loop_new(&loop, &o, err, sizeof(err)), NC_EINVAL);
}

typedef struct {
  nct_netcore_t *d;
  nc_server_t *server;
  int socket_errors, socket_closes, close_with_error, server_errors, server_closes;
  int connected;
} gone_t;

static void g_sock_error(nc_socket_t *s, int err, const char *msg) {
  gone_t *t = nc_socket_get_data(s);
  assert_non_null(msg);
  if (err == NC_ERR_NETCORE_GONE) t->socket_errors++;
}

static void g_sock_close(nc_socket_t *s, int had_error) {
  gone_t *t = nc_socket_get_data(s);
  t->socket_closes++;
  t->close_with_error += had_error;
  /* Connecting again cannot work now: an error, at once. */
  assert_true(nc_socket_connect(s, 1, NULL, NULL) < 0);
}

static void g_server_error(nc_server_t *s, int err, const char *msg) {
  gone_t *t = nc_server_get_data(s);
  (void)msg;
  if (err == NC_ERR_NETCORE_GONE || err == NC_ERR_NETCORE_SHUTDOWN) t->server_errors++;
}

static void g_server_close(nc_server_t *s) { ((gone_t *)nc_server_get_data(s))->server_closes++; }

static const nc_socket_events_t g_sock_events = {.on_error = g_sock_error, .on_close = g_sock_close};

static void g_connection(nc_server_t *s, nc_socket_t *c) {
  gone_t *t = nc_server_get_data(s);
  nc_socket_set_data(c, t);
  nc_socket_set_events(c, &g_sock_events);
  nc_socket_pause(c); /* a paused socket is told too */
}

static void g_connected(nc_socket_t *s) {
  gone_t *t = nc_socket_get_data(s);
  t->connected = 1;
  nc_socket_write(s, "queued", 6, NULL, NULL);
}

static void g_listening(nc_server_t *s) {
  gone_t *t = nc_server_get_data(s);
  nc_address_t a;
  nc_socket_t *c;
  nc_server_address(s, &a);
  assert_int_equal(nc_create_connection(nc_server_loop(s), NULL, a.port, "127.0.0.1", g_connected, &c), 0);
  nc_socket_set_data(c, t);
  nc_socket_set_events(c, &g_sock_events);
}

static gone_t *g_start(nc_loop_t **loop, nct_netcore_t *d, gone_t *t) {
  memset(t, 0, sizeof(*t));
  t->d = d;
  *loop = nct_loop(d);
  nc_server_events_t ev = {.on_connection = g_connection, .on_listening = g_listening,
                           .on_error = g_server_error, .on_close = g_server_close};
  assert_int_equal(nc_server_new(*loop, NULL, NULL, &t->server), 0);
  nc_server_set_data(t->server, t);
  nc_server_set_events(t->server, &ev);
  assert_int_equal(nc_server_listen(t->server, 0, "127.0.0.1", NULL), 0);
  /* Up to both connections open. */
  uint64_t deadline = nct_now_ms() + 10000;
  while (!(t->connected && nc_server_connections(t->server) == 1)) {
    assert_true(nc_loop_process(*loop) > 0);
    assert_true(nct_now_ms() < deadline);
    usleep(1000);
  }
  return t;
}

static void test_client_liveness_netcore_killed(void **state) {
  (void)state;
  nct_netcore_t d;
  nc_loop_t *loop;
  gone_t t;
  nct_netcore_start(&d, NULL);
  g_start(&loop, &d, &t);
  nct_netcore_kill(&d);
  assert_int_equal(nct_run(loop, 15000), NC_ERR_NETCORE_GONE);
  assert_int_equal(t.socket_errors, 2);
  assert_int_equal(t.socket_closes, 2);
  assert_int_equal(t.close_with_error, 2);
  assert_int_equal(t.server_errors, 1);
  assert_int_equal(t.server_closes, 1);
  assert_non_null(strstr(nc_loop_error_message(loop), "went away"));
  /* Nothing can be started any more; freeing is clean. */
  nc_server_t *s;
  assert_int_equal(nc_server_new(loop, NULL, NULL, &s), 0);
  assert_int_equal(nc_server_listen(s, 0, NULL, NULL), NC_ERR_NETCORE_GONE);
  nc_loop_free(loop);
  nct_netcore_stop(&d);
}

static void test_client_liveness_lease_expires(void **state) {
  (void)state;
  nct_netcore_t d;
  nc_loop_t *loop;
  gone_t t;
  const char *flags[] = {"--lease-ms", "600", NULL};
  nct_netcore_start(&d, flags);
  g_start(&loop, &d, &t);
  /* Alive but silent: only the lease can tell. */
  kill(d.pid, SIGSTOP);
  int rv = nct_run(loop, 15000);
  kill(d.pid, SIGCONT);
  assert_int_equal(rv, NC_ERR_NETCORE_GONE);
  assert_int_equal(t.socket_closes, 2);
  assert_int_equal(t.server_closes, 1);
  nc_loop_free(loop);
  nct_netcore_stop(&d);
}

static void test_client_liveness_netcore_shutdown(void **state) {
  (void)state;
  nct_netcore_t d;
  nc_loop_t *loop;
  gone_t t;
  nct_netcore_start(&d, NULL);
  g_start(&loop, &d, &t);
  kill(d.pid, SIGTERM);
  assert_int_equal(nct_run(loop, 15000), NC_ERR_NETCORE_SHUTDOWN);
  assert_int_equal(t.socket_closes, 2);
  assert_int_equal(t.server_errors, 1);
  assert_int_equal(t.server_closes, 1);
  nc_loop_free(loop);
  nct_netcore_stop(&d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_client_liveness_not_running),
      cmocka_unit_test(test_client_liveness_netcore_killed),
      cmocka_unit_test(test_client_liveness_lease_expires),
      cmocka_unit_test(test_client_liveness_netcore_shutdown),
  };
  return cmocka_run_group_tests_name("client_liveness", tests, NULL, NULL);
}
