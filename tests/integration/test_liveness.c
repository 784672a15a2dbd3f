/* test_liveness.c: handlers that disappear (lease expiry, Bye, SIGKILL) lose
 * their sockets and servers; netcore's own shutdown on SIGTERM/SIGINT. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "harness.h"

/* Listens again on port with a fresh observer server until it works (the
 * port is free) or wait_ms passes; every failed try must be EADDRINUSE. */
static void expect_port_free(nct_env *e, uint16_t port, int wait_ms) {
  uint64_t deadline = nct_now_ms() + (uint64_t)wait_ms;
  for (;;) {
    uint64_t id = nct_new_id(e->observer);
    nct_cmd_listen_tcp(e->observer, id, "127.0.0.1", port, 0, 0, 0, NULL);
    nct_event *ev = nct_take(e->observer, -1, id, NCT_WAIT);
    if (!ev) nct_fail("no answer to Listen on port %u", port);
    if (ev->ev->event_case == EV(LISTENING)) {
      nct_event_free(ev);
      nct_cmd_server_close(e->observer, id);
      nct_expect_drop(e->observer, SERVER_CLOSED, id);
      return;
    }
    char s[512];
    if (ev->ev->event_case != EV(SERVER_ERROR) || strcmp(ev->ev->server_error->code, "EADDRINUSE"))
      nct_fail("Listen on port %u: %s", port, nct_event_str(ev, s, sizeof s));
    nct_event_free(ev);
    if (nct_now_ms() > deadline) nct_fail("port %u still in use after %d ms", port, wait_ms);
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
}

/* A handler with a server, an accepted connection and an outbound one. */
typedef struct owned {
  uint16_t port;
  int in_peer;  /* our end of the accepted connection */
  int out_peer; /* our end of the outbound connection */
  int lfd;
} owned;

static void give_resources(nct_client *h, owned *o) {
  uint64_t srv = nct_listen_local(h, &o->port, 0);
  nct_accept_peer(h, srv, o->port, &o->in_peer);
  uint16_t lport = 0;
  o->lfd = nct_tcp_listen("127.0.0.1", &lport);
  uint64_t id = nct_new_id(h);
  nct_cmd_connect_tcp(h, id, "127.0.0.1", lport, 0);
  o->out_peer = nct_accept(o->lfd, NCT_WAIT);
  assert_true(o->out_peer >= 0);
  nct_expect_drop(h, CONNECTED, id);
}

static void expect_resources_freed(nct_env *e, owned *o, int wait_ms) {
  nct_peer_expect_eof_at(__FILE__, __LINE__, o->in_peer, wait_ms);
  nct_peer_expect_eof_at(__FILE__, __LINE__, o->out_peer, wait_ms);
  close(o->in_peer);
  close(o->out_peer);
  close(o->lfd);
  expect_port_free(e, o->port, wait_ms);
}

static void test_liveness_lease_expiry(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_client *h = nct_env_handler_opt(e, "silent", 0, 300);
  assert_int_equal(h->lease_ms, 300);
  owned o;
  give_resources(h, &o);
  /* h now says nothing: within the lease (plus slack) it is gone. */
  expect_resources_freed(e, &o, NCT_WAIT);
  /* The handler can come back with a new Hello. */
  nct_hello(h, 0, 60000);
  nct_sync(h);
  nct_env_finish(e);
}

/* Pings keep a short lease alive. */
static void test_liveness_ping_renews_lease(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_client *h = nct_env_handler_opt(e, "pinger", 0, 300);
  uint16_t port;
  uint64_t srv = nct_listen_local(h, &port, 0);
  int peer;
  uint64_t id = nct_accept_peer(h, srv, port, &peer);
  uint64_t end = nct_now_ms() + 1500;
  while (nct_now_ms() < end) {
    nct_sync(h); /* Ping + Pong: lease_ms / 3 apart at most */
    nct_peer_expect_quiet(peer, 80);
  }
  nct_peer_write(peer, "alive?", 6);
  nct_expect_data(h, id, "alive?", 6);
  nct_close_both(h, id, peer);
  nct_cmd_server_close(h, srv);
  nct_expect_drop(h, SERVER_CLOSED, srv);
  nct_env_finish(e);
}

/* Bye frees everything at once (the lease is 60 s: only Bye can explain it). */
static void test_liveness_bye_frees_at_once(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_client *h = nct_env_handler_opt(e, "leaver", 0, 60000);
  owned o;
  give_resources(h, &o);
  nct_env_release(e, h, 1);
  expect_resources_freed(e, &o, 2000);
  nct_env_finish(e);
}

/* --- a handler in a child process, killed with SIGKILL ---------------- */

/* Child side: raw ZeroMQ + protobuf-c only (no cmocka in a forked child).
 * Says Hello, listens on 127.0.0.1:0, reports the port on `out`, then
 * reports 'C' for each Connection and otherwise just waits to be killed. */
static void child_handler(const char *endpoint, int out) {
  void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_DEALER);
  zmq_connect(s, endpoint);
  uint8_t buf[1024];
  Netcore__V1__Hello hello = NETCORE__V1__HELLO__INIT;
  hello.version = 1;
  hello.name = "doomed";
  hello.lease_ms = 500;
  nct_cmd cmd = NETCORE__V1__COMMAND__INIT;
  cmd.command_case = NETCORE__V1__COMMAND__COMMAND_HELLO;
  cmd.hello = &hello;
  zmq_send(s, buf, netcore__v1__command__pack(&cmd, buf), 0);
  for (;;) {
    int n = zmq_recv(s, buf, sizeof buf, 0);
    if (n < 0) _exit(3);
    int more = 0;
    size_t ml = sizeof more;
    zmq_getsockopt(s, ZMQ_RCVMORE, &more, &ml);
    uint8_t junk[256];
    while (more) {
      zmq_recv(s, junk, sizeof junk, 0);
      zmq_getsockopt(s, ZMQ_RCVMORE, &more, &ml);
    }
    nct_pb_event *ev = netcore__v1__event__unpack(NULL, (size_t)n, buf);
    if (!ev) _exit(4);
    if (ev->event_case == EV(WELCOME)) {
      Netcore__V1__TcpEndpoint tcp = NETCORE__V1__TCP_ENDPOINT__INIT;
      tcp.host = "127.0.0.1";
      Netcore__V1__Listen l = NETCORE__V1__LISTEN__INIT;
      l.server_id = (uint64_t)ev->welcome->id_prefix << 32 | 1;
      l.endpoint_case = NETCORE__V1__LISTEN__ENDPOINT_TCP;
      l.tcp = &tcp;
      nct_cmd c2 = NETCORE__V1__COMMAND__INIT;
      c2.command_case = NETCORE__V1__COMMAND__COMMAND_LISTEN;
      c2.listen = &l;
      uint8_t b2[256];
      zmq_send(s, b2, netcore__v1__command__pack(&c2, b2), 0);
    } else if (ev->event_case == EV(LISTENING)) {
      uint16_t port = (uint16_t)ev->listening->address->port;
      if (write(out, &port, sizeof port) != sizeof port) _exit(5);
    } else if (ev->event_case == EV(CONNECTION)) {
      if (write(out, "C", 1) != 1) _exit(5);
    }
    netcore__v1__event__free_unpacked(ev, NULL);
  }
}

static void test_liveness_killed_handler(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  int pfd[2];
  assert_int_equal(pipe(pfd), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(pfd[0]);
    child_handler(e->d.endpoint, pfd[1]);
    _exit(0);
  }
  close(pfd[1]);
  uint16_t port = 0;
  int eof;
  if (nct_fd_read(pfd[0], &port, sizeof port, NCT_WAIT, &eof) != sizeof port) {
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    nct_fail("the child handler did not report a listening port");
  }
  int peer = nct_tcp_connect("127.0.0.1", port);
  char c;
  if (nct_fd_read(pfd[0], &c, 1, NCT_WAIT, &eof) != 1 || c != 'C') {
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    nct_fail("the child handler did not get its Connection");
  }
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  close(pfd[0]);
  /* Within the 500 ms lease (plus slack) its connection and port are freed. */
  nct_peer_expect_eof(peer);
  close(peer);
  expect_port_free(e, port, NCT_WAIT);
  nct_env_finish(e);
}

/* --- netcore's own shutdown --------------------------------------------- */

/* SIGTERM: Shutdown first, queued writes still reach the peer, every socket
 * and server closes with its event, exit status 0. */
static void test_liveness_sigterm_flushes_and_exits(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_client *h = nct_env_handler(e, "stopper");
  uint16_t port;
  uint64_t srv = nct_listen_local(h, &port, 0);
  int peer;
  uint64_t s1 = nct_accept_peer(h, srv, port, &peer);
  uint16_t lport = 0;
  int lfd = nct_tcp_listen("127.0.0.1", &lport);
  uint64_t s2 = nct_new_id(h);
  nct_cmd_connect_tcp(h, s2, "127.0.0.1", lport, 0);
  int q = nct_accept(lfd, NCT_WAIT);
  nct_expect_drop(h, CONNECTED, s2);

  /* 4 MiB that the peer has not read yet: most of it waits in netcore. */
  enum { CHUNK = 64 * 1024, CHUNKS = 64 };
  uint8_t *buf = malloc(CHUNK);
  for (int i = 0; i < CHUNKS; i++) {
    nct_pattern_fill((uint64_t)i * CHUNK, buf, CHUNK);
    nct_cmd_write(h, s1, buf, CHUNK);
  }
  free(buf);
  nct_sync(h); /* every write was taken before the signal */
  kill(e->d.pid, SIGTERM);
  nct_event_free(nct_expect_global(h, SHUTDOWN));
  nct_event_free(nct_expect_global(e->observer, SHUTDOWN));

  size_t total = (size_t)CHUNK * CHUNKS;
  uint8_t *got = malloc(total);
  int eof;
  size_t n = nct_fd_read(peer, got, total, 15000, &eof);
  if (n != total) nct_fail("after SIGTERM the peer got %zu of %zu queued bytes", n, total);
  long bad = nct_pattern_check(0, got, total);
  if (bad >= 0) nct_fail("byte %ld differs", bad);
  free(got);
  nct_peer_expect_eof(peer);
  nct_peer_expect_eof(q);

  nct_event_free(nct_expect_skip(h, CLOSED, s1, NCT_SKIP(WRITE_ACK)));
  nct_event_free(nct_expect(h, CLOSED, s2));
  nct_expect_drop(h, SERVER_CLOSED, srv);
  int status = nct_daemon_signal_wait(&e->d, 0, 15000);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    nct_fail("netcore did not exit 0 after SIGTERM (status 0x%x)", status);
  close(peer);
  close(q);
  close(lfd);
}

static void test_liveness_sigint_exits_cleanly(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_client *h = nct_env_handler(e, "interrupted");
  uint16_t port;
  uint64_t srv = nct_listen_local(h, &port, 0);
  int peer;
  uint64_t s1 = nct_accept_peer(h, srv, port, &peer);
  kill(e->d.pid, SIGINT);
  nct_event_free(nct_expect_global(h, SHUTDOWN));
  nct_event *ev = nct_expect(h, CLOSED, s1);
  nct_event_free(ev);
  nct_expect_drop(h, SERVER_CLOSED, srv);
  nct_peer_expect_eof(peer);
  close(peer);
  int status = nct_daemon_signal_wait(&e->d, 0, 15000);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    nct_fail("netcore did not exit 0 after SIGINT (status 0x%x)", status);
}

#define T(f) cmocka_unit_test_setup_teardown(f, nct_env_setup, nct_env_teardown)

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      T(test_liveness_lease_expiry),
      T(test_liveness_ping_renews_lease),
      T(test_liveness_bye_frees_at_once),
      T(test_liveness_killed_handler),
      T(test_liveness_sigterm_flushes_and_exits),
      T(test_liveness_sigint_exits_cleanly),
  };
  return NCT_RUN(argc, argv, tests);
}
