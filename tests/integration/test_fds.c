/* test_fds.c: running out of file descriptors never kills or spins netcore
 * (issue 9, item 2). netcore runs under a small RLIMIT_NOFILE (its hard
 * limit: netcore raises the soft one to it) with its stderr captured:
 * - a flood of TCP clients past the limit: no spin, a handful of log lines,
 *   a new handler is welcomed, the bystander works, accepting resumes;
 * - --max-connections defaults to the limit minus --fd-reserve and is capped
 *   by it; Connect past it is EMFILE; passed fds past it are closed;
 * - listeners of a handler eating every descriptor: accept() fails with
 *   EMFILE, accepting pauses with backoff and resumes by itself; when they
 *   eat into the reserve, new connections are closed and handlers still get in.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

enum {
  NOFILE = 200,
  RESERVE = 64,            /* the default --fd-reserve for limits up to 2048 */
  ROOM = NOFILE - RESERVE, /* the default --max-connections */
  FLOOD = 300,
  WATCH_MS = 2000, /* how long CPU use is watched */
  MAX_CPU_PERCENT = 30
};

static const nct_daemon_opts limited = {
    .nofile_soft = NOFILE, .nofile_hard = NOFILE, .capture_stderr = 1};

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* Fails unless netcore's stderr has at most one line per second since
 * the start plus two (all of it is shown on failure). */
static uint64_t started; /* when the test's netcore was started */

static void start(nct_env *e, const char *const *flags, const nct_daemon_opts *opts) {
  started = nct_now_ms();
  nct_env_start_opts(e, flags, opts);
}

static void expect_few_log_lines(nct_env *e) {
  uint64_t since = started;
  static char buf[65536];
  int lines = nct_daemon_stderr(&e->d, buf, sizeof buf);
  int max = 2 + (int)((nct_now_ms() - since) / 1000);
  if (lines > max)
    nct_fail("netcore wrote %d lines to stderr in %llu ms (at most %d):\n%.4000s", lines,
             (unsigned long long)(nct_now_ms() - since), max, buf);
}

/* Waits until netcore's stderr contains want (up to NCT_WAIT). */
static void expect_log(nct_env *e, const char *want) {
  static char buf[65536];
  uint64_t deadline = nct_now_ms() + NCT_WAIT;
  do {
    nct_daemon_stderr(&e->d, buf, sizeof buf);
    if (strstr(buf, want)) return;
    sleep_ms(20);
  } while (nct_now_ms() < deadline);
  nct_fail("netcore's stderr never said \"%s\":\n%s", want, buf);
}

/* Pumps h for ms and fails if netcore used more than MAX_CPU_PERCENT of one
 * core meanwhile (counted from cpu0 at t0). */
static void expect_no_spin(nct_env *e, nct_client *h, long cpu0, uint64_t t0) {
  while (nct_now_ms() < t0 + WATCH_MS) nct_pump(h, 50);
  long used = nct_cpu_ms(e->d.pid) - cpu0;
  uint64_t elapsed = nct_now_ms() - t0;
  static char buf[65536];
  print_message("netcore: %ld ms of CPU in %llu ms, %d lines on stderr\n", used,
                (unsigned long long)elapsed, nct_daemon_stderr(&e->d, buf, sizeof buf));
  if (used * 100 > (long)elapsed * MAX_CPU_PERCENT)
    nct_fail("netcore used %ld ms of CPU in %llu ms (more than %d%% of a core): it spins", used,
             (unsigned long long)elapsed, MAX_CPU_PERCENT);
}

/* Takes every Connection for srv that arrives until none came for quiet_ms;
 * socket ids go to ids (at most max). Returns how many. */
static int take_connections(nct_client *h, uint64_t srv, uint64_t *ids, int max, int quiet_ms) {
  int n = 0;
  for (;;) {
    nct_pump(h, 0);
    while (nct_count_connections(h, srv) > 0) {
      nct_event *ev = nct_expect_connection(h, srv);
      if (n >= max)
        nct_fail("more than %d Connections for server %llu", max, (unsigned long long)srv);
      ids[n++] = ev->ev->connection->socket_id;
      nct_event_free(ev);
    }
    if (nct_pump(h, quiet_ms) == 0 && nct_count_connections(h, srv) == 0) return n;
  }
}

/* Waits until n Connections for srv have been taken in all. */
static int take_connections_until(nct_client *h, uint64_t srv, uint64_t *ids, int have, int n) {
  while (have < n) {
    nct_event *ev = nct_expect_connection(h, srv);
    ids[have++] = ev->ev->connection->socket_id;
    nct_event_free(ev);
  }
  return have;
}

/* Closes the peers, then ends each of the handler's sockets cleanly. */
static void close_all(nct_client *h, const int *peers, int npeers, const uint64_t *ids, int nids) {
  for (int i = 0; i < npeers; i++) close(peers[i]);
  for (int i = 0; i < nids; i++) {
    nct_event_free(nct_expect_skip(h, ENDED, ids[i], NCT_SKIP(WRITE_ACK)));
    nct_cmd_end(h, ids[i], NULL, 0);
  }
  for (int i = 0; i < nids; i++) {
    nct_event *ev = nct_expect_skip(h, CLOSED, ids[i], NCT_SKIP(WRITE_ACK));
    assert_false(ev->ev->closed->had_error);
    nct_event_free(ev);
  }
}

/* A new client is accepted and served. */
static void expect_accepting(nct_client *h, uint64_t srv, uint16_t port) {
  int peer;
  uint64_t id = nct_accept_peer(h, srv, port, &peer);
  nct_cmd_write(h, id, "again", 5);
  nct_peer_expect(peer, "again", 5);
  nct_wait_acks(h, id, 1, 5);
  nct_close_both(h, id, peer);
}

static void close_server(nct_client *h, uint64_t srv) {
  nct_cmd_server_close(h, srv);
  nct_expect_drop(h, SERVER_CLOSED, srv);
}

/* The attack: RLIMIT_NOFILE 200 and 300 TCP clients. */
static void test_fds_flood_past_the_limit(void **state) {
  nct_env *e = *state;
  start(e, NULL, &limited);
  nct_env_bystander_start(e);
  nct_client *h = nct_env_handler(e, "flooded");
  uint16_t port;
  uint64_t srv = nct_listen_local(h, &port, 0);

  long cpu0 = nct_cpu_ms(e->d.pid);
  uint64_t t0 = nct_now_ms();
  static int peers[FLOOD];
  for (int i = 0; i < FLOOD; i++) peers[i] = nct_tcp_connect("127.0.0.1", port);
  expect_no_spin(e, h, cpu0, t0);
  static uint64_t ids[FLOOD];
  int n = take_connections(h, srv, ids, FLOOD, NCT_QUIET);
  /* The bystander's socket counts too: at most ROOM - 1 are seen. */
  if (n < 1 || n > ROOM - 1)
    nct_fail("%d of %d clients were accepted, expected 1 to %d", n, FLOOD, ROOM - 1);
  expect_few_log_lines(e);
  expect_log(e, "connections closed at once (--max-connections 136 reached)");

  /* netcore is alive, welcomes a new handler and serves the old ones. */
  nct_client *late = nct_env_handler(e, "late");
  nct_sync(late);
  nct_env_bystander_check(e);

  /* Once the clients are gone, accepting goes on. */
  close_all(h, peers, FLOOD, ids, n);
  expect_accepting(h, srv, port);
  close_server(h, srv);
  expect_few_log_lines(e);
  nct_env_finish(e);
}

/* --max-connections defaults to RLIMIT_NOFILE - --fd-reserve: with 200, the
 * 137th connection is closed unseen; Connect past it fails with EMFILE. */
static void test_fds_max_connections_default(void **state) {
  nct_env *e = *state;
  start(e, NULL, &limited);
  nct_client *h = nct_env_handler(e, "full");
  uint16_t port;
  uint64_t srv = nct_listen_local(h, &port, 0);
  static int peers[ROOM];
  static uint64_t ids[ROOM];
  for (int i = 0; i < ROOM; i++) ids[i] = nct_accept_peer(h, srv, port, &peers[i]);
  int extra = nct_tcp_connect("127.0.0.1", port);
  nct_peer_expect_eof(extra);
  close(extra);
  nct_expect_no_connection(h, srv, NCT_QUIET);

  uint16_t tport = 0;
  int tl = nct_tcp_listen("127.0.0.1", &tport);
  uint64_t out = nct_new_id(h);
  nct_cmd_connect_tcp(h, out, "127.0.0.1", tport, 0);
  nct_event *ev = nct_expect(h, SOCKET_ERROR, out);
  assert_string_equal(ev->ev->socket_error->code, "EMFILE");
  nct_event_free(ev);
  ev = nct_expect(h, CLOSED, out);
  assert_true(ev->ev->closed->had_error);
  nct_event_free(ev);
  assert_int_equal(nct_accept(tl, 100), -1);
  close(tl);

  /* A freed place is taken again. */
  nct_close_both(h, ids[0], peers[0]);
  ids[0] = nct_accept_peer(h, srv, port, &peers[0]);
  close_all(h, peers, ROOM, ids, ROOM);
  close_server(h, srv);
  nct_env_finish(e);
}

/* netcore raises its soft limit to the hard one; a --max-connections above
 * limit - reserve is lowered, with a warning. */
static void test_fds_limit_raised_and_max_lowered(void **state) {
  nct_env *e = *state;
  const nct_daemon_opts opts = {.nofile_soft = 100, .nofile_hard = NOFILE, .capture_stderr = 1};
  const char *flags[] = {"--max-connections", "1000", NULL};
  start(e, flags, &opts);
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/limits", (int)e->d.pid);
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  unsigned long soft = 0, hard = 0;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "Max open files %lu %lu", &soft, &hard) == 2) break;
  fclose(f);
  assert_int_equal(soft, NOFILE);
  assert_int_equal(hard, NOFILE);
  expect_log(e, "--max-connections 1000 lowered to 136");
  nct_env_finish(e);
}

/* --fd-reserve sets what the default --max-connections leaves: with 150 of
 * 200, the 51st connection is closed unseen. Below what netcore itself
 * needs it is a usage error (exit 2). */
static void test_fds_reserve_flag(void **state) {
  nct_env *e = *state;
  char cmd[600];
  snprintf(cmd, sizeof cmd, "'%s' --fd-reserve 15 2>/dev/null", nct_netcore_path());
  int st = system(cmd);
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), 2);

  enum { KEEP = 150, FIT = NOFILE - KEEP };
  const char *flags[] = {"--fd-reserve", "150", NULL};
  start(e, flags, &limited);
  nct_client *h = nct_env_handler(e, "full");
  uint16_t port;
  uint64_t srv = nct_listen_local(h, &port, 0);
  int peers[FIT];
  uint64_t ids[FIT];
  for (int i = 0; i < FIT; i++) ids[i] = nct_accept_peer(h, srv, port, &peers[i]);
  int extra = nct_tcp_connect("127.0.0.1", port);
  nct_peer_expect_eof(extra);
  close(extra);
  nct_expect_no_connection(h, srv, NCT_QUIET);
  close_all(h, peers, FIT, ids, FIT);
  close_server(h, srv);
  nct_env_finish(e);
}

/* Listens on 127.0.0.1 port 0 until netcore runs out of descriptors
 * (ServerError EMFILE); ids gets the servers that listen. Returns how many. */
static int listen_until_emfile(nct_client *h, uint64_t *ids, int max) {
  for (int n = 0; n < max; n++) {
    uint64_t id = nct_new_id(h);
    nct_cmd_listen_tcp(h, id, "127.0.0.1", 0, 0, 0, 0, NULL);
    nct_sync(h);
    nct_event *err = nct_take(h, EV(SERVER_ERROR), id, 0);
    if (err) {
      assert_string_equal(err->ev->server_error->code, "EMFILE");
      nct_event_free(err);
      return n;
    }
    nct_event *ok = nct_take(h, EV(LISTENING), id, 0);
    if (!ok) nct_fail("Listen %d: neither Listening nor ServerError", n);
    nct_event_free(ok);
    ids[n] = id;
  }
  nct_fail("%d listeners and still no EMFILE under RLIMIT_NOFILE %d", max, NOFILE);
}

enum { MAX_LISTENERS = NOFILE, WAITING = 20 };

/* A handler's listeners take every descriptor: accept() gets EMFILE. netcore
 * pauses accepting (no spin, a few log lines), clients wait in the backlog,
 * and once descriptors return they are all accepted without anyone asking. */
static void test_fds_emfile_pauses_accepting(void **state) {
  nct_env *e = *state;
  start(e, NULL, &limited);
  nct_env_bystander_start(e);
  nct_client *h = nct_env_handler(e, "greedy");
  uint16_t port;
  uint64_t srv = nct_listen_local(h, &port, 0);
  static uint64_t lids[MAX_LISTENERS];
  int nl = listen_until_emfile(h, lids, MAX_LISTENERS);
  /* Three low-numbered descriptors come free: three clients get in. */
  for (int i = 0; i < 3; i++) close_server(h, lids[i]);

  long cpu0 = nct_cpu_ms(e->d.pid);
  uint64_t t0 = nct_now_ms();
  int peers[WAITING];
  for (int i = 0; i < WAITING; i++) peers[i] = nct_tcp_connect("127.0.0.1", port);
  expect_no_spin(e, h, cpu0, t0);
  uint64_t ids[WAITING];
  int n = take_connections(h, srv, ids, WAITING, NCT_QUIET);
  if (n < 1 || n > 3) nct_fail("%d clients accepted with 3 descriptors free", n);
  expect_few_log_lines(e);
  expect_log(e, "accept failed with EMFILE");
  nct_env_bystander_check(e);

  /* Descriptors return: the waiting clients are accepted by themselves. */
  for (int i = 3; i < nl; i++) close_server(h, lids[i]);
  n = take_connections_until(h, srv, ids, n, WAITING);
  expect_log(e, "accepting again");
  nct_client *late = nct_env_handler(e, "late");
  nct_sync(late);
  close_all(h, peers, WAITING, ids, WAITING);
  close_server(h, srv);
  expect_few_log_lines(e);
  nct_env_finish(e);
}

/* Listeners eat into the reserve, leaving only its top free: connections
 * are closed at once rather than take it, so a new handler still gets in. */
static void test_fds_reserve_kept_for_handlers(void **state) {
  nct_env *e = *state;
  start(e, NULL, &limited);
  nct_env_bystander_start(e);
  nct_client *h = nct_env_handler(e, "greedy");
  uint16_t port;
  uint64_t srv = nct_listen_local(h, &port, 0);
  static uint64_t lids[MAX_LISTENERS];
  int nl = listen_until_emfile(h, lids, MAX_LISTENERS);
  /* The highest-numbered descriptors come free: inside the reserve. */
  for (int i = nl - 3; i < nl; i++) close_server(h, lids[i]);
  for (int i = 0; i < 5; i++) {
    int p = nct_tcp_connect("127.0.0.1", port);
    nct_peer_expect_eof(p);
    close(p);
  }
  nct_expect_no_connection(h, srv, NCT_QUIET);
  expect_log(e, "descriptors free");
  nct_client *late = nct_env_handler(e, "late");
  nct_sync(late);
  nct_env_bystander_check(e);
  for (int i = 0; i < nl - 3; i++) close_server(h, lids[i]);
  expect_accepting(h, srv, port);
  close_server(h, srv);
  expect_few_log_lines(e);
  nct_env_finish(e);
}

static void send_with_fds(int sock, const void *data, size_t n, const int *fds, int nfds) {
  struct iovec iov = {(void *)data, n};
  union {
    struct cmsghdr h;
    char space[CMSG_SPACE(sizeof(int) * 8)];
  } ctl;
  memset(&ctl, 0, sizeof ctl);
  struct msghdr msg = {.msg_iov = &iov,
                       .msg_iovlen = 1,
                       .msg_control = &ctl,
                       .msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds)};
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
  memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
  if (sendmsg(sock, &msg, MSG_NOSIGNAL) != (ssize_t)n)
    nct_fail("sendmsg with fds: %s", strerror(errno));
}

/* fds received over a UNIX socket past --max-connections are closed unseen;
 * the ones that fit and the data they came with arrive as usual. */
static void test_fds_passed_fds_past_the_limit(void **state) {
  nct_env *e = *state;
  const nct_daemon_opts opts = {.capture_stderr = 1};
  const char *flags[] = {"--max-connections", "3", NULL};
  start(e, flags, &opts);
  nct_client *h = nct_env_handler(e, "receiver");
  char path[256];
  nct_daemon_path(&e->d, "fds.sock", path, sizeof path);
  uint64_t srv = nct_new_id(h);
  nct_cmd_listen_path(h, srv, path);
  nct_expect_drop(h, LISTENING, srv);
  int u = nct_unix_connect(path);
  nct_event *ev = nct_expect_connection(h, srv);
  uint64_t s = ev->ev->connection->socket_id;
  nct_event_free(ev);

  /* Four TCP connections x[i] <-> y[i]; netcore has room for two more sockets. */
  uint16_t lport = 0;
  int lfd = nct_tcp_listen("127.0.0.1", &lport);
  int x[4], y[4];
  for (int i = 0; i < 4; i++) {
    x[i] = nct_tcp_connect("127.0.0.1", lport);
    y[i] = nct_accept(lfd, NCT_WAIT);
    assert_true(y[i] >= 0);
  }
  close(lfd);
  send_with_fds(u, "four", 4, x, 4);
  for (int i = 0; i < 4; i++) close(x[i]);

  uint64_t got[2];
  for (int i = 0; i < 2; i++) {
    ev = nct_expect(h, FD, s);
    got[i] = ev->ev->fd->new_socket_id;
    nct_event_free(ev);
  }
  nct_expect_data(h, s, "four", 4);
  nct_expect_none(h, s, NCT_QUIET);
  /* The two that did not fit were closed: their other ends see EOF. */
  for (int i = 2; i < 4; i++) {
    nct_peer_expect_eof(y[i]);
    close(y[i]);
  }
  expect_log(e, "received fds closed");
  /* The two that fit work. */
  for (int i = 0; i < 2; i++) {
    nct_peer_write(y[i], "via", 3);
    nct_expect_data(h, got[i], "via", 3);
    nct_close_both(h, got[i], y[i]);
  }
  nct_close_both(h, s, u);
  close_server(h, srv);
  nct_env_finish(e);
}

#define T(f) cmocka_unit_test_setup_teardown(f, nct_env_setup, nct_env_teardown)

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      T(test_fds_flood_past_the_limit),         T(test_fds_max_connections_default),
      T(test_fds_limit_raised_and_max_lowered), T(test_fds_reserve_flag),
      T(test_fds_emfile_pauses_accepting),      T(test_fds_reserve_kept_for_handlers),
      T(test_fds_passed_fds_past_the_limit),
  };
  return NCT_RUN(argc, argv, tests);
}
