/* test_servers.c: Listen on every kind of endpoint, server options
 * (allowHalfOpen, backlog, maxConnections), connection counts, ServerPause and
 * ServerClose, through real TCP and UNIX sockets. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

/* A small exchange on an accepted socket: both directions work. */
static void exchange(nct_client *h, uint64_t sock, int peer) {
  nct_peer_write(peer, "ping", 4);
  nct_expect_data(h, sock, "ping", 4);
  nct_cmd_write(h, sock, "pong", 4);
  nct_peer_expect(peer, "pong", 4);
  nct_wait_acks(h, sock, 1, 4);
}

static void close_server(nct_client *h, uint64_t srv) {
  nct_cmd_server_close(h, srv);
  nct_expect_drop(h, SERVER_CLOSED, srv);
}

static void test_servers_listen_tcp_ipv4(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_client *h = nct_env_handler(e, "v4");
  uint64_t srv = nct_new_id(h);
  nct_cmd_listen_tcp(h, srv, "127.0.0.1", 0, 0, 0, 0, NULL);
  nct_event *ev = nct_expect(h, LISTENING, srv);
  nct_addr *a = ev->ev->listening->address;
  assert_non_null(a);
  assert_int_equal(a->family, FAM(IPV4));
  assert_string_equal(a->address, "127.0.0.1");
  assert_true(a->port > 0 && a->port <= 65535);
  uint16_t port = (uint16_t)a->port;
  nct_event_free(ev);

  /* The port is really bound: we cannot bind it ourselves. */
  uint16_t p = port;
  int clash = nct_tcp_listen("127.0.0.1", &p);
  if (clash >= 0) {
    close(clash);
    nct_fail("port %u from Listening is not bound by netcore", port);
  }

  int peer = nct_tcp_connect("127.0.0.1", port);
  ev = nct_expect_connection(h, srv);
  Netcore__V1__Connection *c = ev->ev->connection;
  assert_int_equal(c->server_id, srv);
  assert_int_equal(c->socket_id >> 32, 0); /* netcore's own ids have prefix 0 */
  assert_int_equal(c->local->family, FAM(IPV4));
  assert_string_equal(c->local->address, "127.0.0.1");
  assert_int_equal(c->local->port, port);
  assert_int_equal(c->remote->family, FAM(IPV4));
  assert_string_equal(c->remote->address, "127.0.0.1");
  assert_int_equal(c->remote->port, nct_local_port(peer));
  assert_false(c->allow_half_open);
  assert_int_equal(c->server_connections, 1);
  uint64_t sock = c->socket_id;
  nct_event_free(ev);

  exchange(h, sock, peer);
  nct_close_both(h, sock, peer);
  close_server(h, srv);
  nct_env_finish(e);
}

/* listen(P) with a given port: Listening reports P (seed: address() case). */
static void test_servers_listen_given_port(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_client *h = nct_env_handler(e, "given");
  /* A port the OS just handed out and nobody holds now. */
  uint16_t port = 0;
  int tmp = nct_tcp_listen("127.0.0.1", &port);
  assert_true(tmp >= 0);
  close(tmp);
  uint64_t srv = nct_new_id(h);
  nct_cmd_listen_tcp(h, srv, "127.0.0.1", port, 0, 0, 0, NULL);
  nct_event *ev = nct_expect(h, LISTENING, srv);
  assert_int_equal(ev->ev->listening->address->port, port);
  nct_event_free(ev);
  int peer;
  uint64_t sock = nct_accept_peer(h, srv, port, &peer);
  exchange(h, sock, peer);
  nct_close_both(h, sock, peer);
  close_server(h, srv);
  nct_env_finish(e);
}

static void test_servers_listen_tcp_ipv6(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_client *h = nct_env_handler(e, "v6");
  uint64_t srv = nct_new_id(h);
  nct_cmd_listen_tcp(h, srv, "::1", 0, 0, 0, 0, NULL);
  nct_event *ev = nct_expect(h, LISTENING, srv);
  nct_addr *a = ev->ev->listening->address;
  assert_int_equal(a->family, FAM(IPV6));
  assert_string_equal(a->address, "::1");
  assert_true(a->port > 0);
  uint16_t port = (uint16_t)a->port;
  nct_event_free(ev);

  int peer = nct_tcp_connect("::1", port);
  ev = nct_expect_connection(h, srv);
  Netcore__V1__Connection *c = ev->ev->connection;
  assert_int_equal(c->local->family, FAM(IPV6));
  assert_string_equal(c->local->address, "::1");
  assert_int_equal(c->local->port, port);
  assert_int_equal(c->remote->family, FAM(IPV6));
  assert_string_equal(c->remote->address, "::1");
  assert_int_equal(c->remote->port, nct_local_port(peer));
  uint64_t sock = c->socket_id;
  nct_event_free(ev);
  exchange(h, sock, peer);
  nct_close_both(h, sock, peer);
  close_server(h, srv);
  nct_env_finish(e);
}

/* Host omitted: "::" dual-stack, as Node's listen(port) binds it, so peers
 * come in over IPv4 and IPv6 alike; 0.0.0.0 where IPv6 is absent. */
static void test_servers_listen_any_address(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  int probe = socket(AF_INET6, SOCK_STREAM, 0);
  int have_v6 = probe >= 0;
  if (probe >= 0) close(probe);
  nct_client *h = nct_env_handler(e, "any");
  uint64_t srv = nct_new_id(h);
  nct_cmd_listen_tcp(h, srv, "", 0, 0, 0, 0, NULL);
  nct_event *ev = nct_expect(h, LISTENING, srv);
  nct_addr *a = ev->ev->listening->address;
  assert_int_equal(a->family, have_v6 ? FAM(IPV6) : FAM(IPV4));
  assert_string_equal(a->address, have_v6 ? "::" : "0.0.0.0");
  assert_true(a->port > 0);
  uint16_t port = (uint16_t)a->port;
  nct_event_free(ev);
  int peer;
  uint64_t sock = nct_accept_peer(h, srv, port, &peer); /* over IPv4 */
  exchange(h, sock, peer);
  nct_close_both(h, sock, peer);
  if (have_v6) {
    peer = nct_tcp_connect("::1", port);
    ev = nct_expect_connection(h, srv);
    assert_string_equal(ev->ev->connection->remote->address, "::1");
    sock = ev->ev->connection->socket_id;
    nct_event_free(ev);
    exchange(h, sock, peer);
    nct_close_both(h, sock, peer);
  }
  close_server(h, srv);
  nct_env_finish(e);
}

static void test_servers_listen_unix_path(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_client *h = nct_env_handler(e, "unix");
  char path[256];
  nct_daemon_path(&e->d, "srv.sock", path, sizeof path);
  uint64_t srv = nct_new_id(h);
  nct_cmd_listen_path(h, srv, path);
  nct_event *ev = nct_expect(h, LISTENING, srv);
  nct_addr *a = ev->ev->listening->address;
  assert_int_equal(a->family, FAM(UNIX));
  assert_string_equal(a->address, path);
  assert_int_equal(a->port, 0);
  nct_event_free(ev);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_true(S_ISSOCK(st.st_mode));

  int peer = nct_unix_connect(path);
  ev = nct_expect_connection(h, srv);
  Netcore__V1__Connection *c = ev->ev->connection;
  assert_int_equal(c->local->family, FAM(UNIX));
  assert_string_equal(c->local->address, path);
  assert_int_equal(c->remote->family, FAM(UNIX));
  assert_string_equal(c->remote->address, ""); /* our end is unnamed */
  uint64_t sock = c->socket_id;
  nct_event_free(ev);
  exchange(h, sock, peer);
  nct_close_both(h, sock, peer);

  /* ServerClose unlinks the path. */
  close_server(h, srv);
  if (stat(path, &st) == 0) nct_fail("%s still exists after ServerClosed", path);
  assert_int_equal(errno, ENOENT);
  nct_env_finish(e);
}

/* Listening where a regular file exists is an error that names the path, and
 * the file is left alone. */
static void test_servers_listen_unix_on_regular_file(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_client *h = nct_env_handler(e, "file");
  char path[256];
  nct_daemon_path(&e->d, "regular-file", path, sizeof path);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs("keep me", f);
  fclose(f);

  uint64_t srv = nct_new_id(h);
  nct_cmd_listen_path(h, srv, path);
  nct_event *ev = nct_expect(h, SERVER_ERROR, srv);
  Netcore__V1__ServerError *se = ev->ev->server_error;
  assert_true(se->code && se->code[0]);
  if (!se->message || !strstr(se->message, path))
    nct_fail("ServerError %s message \"%s\" does not name the path %s", se->code, se->message,
             path);
  nct_event_free(ev);

  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_true(S_ISREG(st.st_mode));
  assert_int_equal(st.st_size, 7);

  /* The server id is dead: closing it is EBADF. */
  nct_cmd_server_close(h, srv);
  nct_event_free(nct_expect_error(h, "EBADF"));
  nct_env_finish(e);
}

/* --listen-fd N: netcore adopts a listening socket it inherited. */
static void test_servers_listen_fd(void **state) {
  nct_env *e = *state;
  uint16_t port = 0;
  int lfd = nct_tcp_listen("127.0.0.1", &port);
  assert_true(lfd >= 0);
  fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) | O_NONBLOCK); /* as listenFD requires */
  const int target = 7;
  const int fds[] = {lfd, target, -1};
  const char *flags[] = {"--listen-fd", "7", NULL};
  nct_env_start_fds(e, flags, fds);
  close(lfd); /* netcore holds the only copy now */

  nct_client *h = nct_env_handler(e, "fd");
  /* An fd that was not inherited is EBADF. */
  uint64_t bad = nct_new_id(h);
  nct_cmd_listen_fd(h, bad, 9);
  nct_event *ev = nct_expect(h, SERVER_ERROR, bad);
  assert_string_equal(ev->ev->server_error->code, "EBADF");
  nct_event_free(ev);

  uint64_t srv = nct_new_id(h);
  nct_cmd_listen_fd(h, srv, target);
  ev = nct_expect(h, LISTENING, srv);
  nct_addr *a = ev->ev->listening->address;
  assert_int_equal(a->family, FAM(IPV4));
  assert_string_equal(a->address, "127.0.0.1");
  assert_int_equal(a->port, port);
  nct_event_free(ev);

  int peer;
  uint64_t sock = nct_accept_peer(h, srv, port, &peer);
  exchange(h, sock, peer);
  nct_close_both(h, sock, peer);
  close_server(h, srv);
  /* Closing the adopted server closes the inherited fd (Node's close() of a
   * listenFD server), which was part of the baseline. */
  e->baseline_fds -= 1;
  nct_env_finish(e);
}

/* Listen.allow_half_open is copied to every accepted socket. */
static void test_servers_allow_half_open_flag(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_client *h = nct_env_handler(e, "aho");
  for (int aho = 0; aho <= 1; aho++) {
    uint16_t port;
    uint64_t srv = nct_listen_local(h, &port, aho);
    int peer = nct_tcp_connect("127.0.0.1", port);
    nct_event *ev = nct_expect_connection(h, srv);
    assert_int_equal(ev->ev->connection->allow_half_open, aho);
    uint64_t sock = ev->ev->connection->socket_id;
    nct_event_free(ev);
    nct_close_both(h, sock, peer);
    close_server(h, srv);
  }
  nct_env_finish(e);
}

/* Listen.backlog reaches listen(2) (seen with sock_diag); 0 means 511. */
static void test_servers_backlog(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_client *h = nct_env_handler(e, "backlog");
  FILE *f = fopen("/proc/sys/net/core/somaxconn", "r");
  unsigned somaxconn = 4096;
  if (f) {
    if (fscanf(f, "%u", &somaxconn) != 1) somaxconn = 4096;
    fclose(f);
  }
  const int32_t asked[] = {7, 0};
  const uint32_t want[] = {7, 511 < somaxconn ? 511 : somaxconn};
  for (int i = 0; i < 2; i++) {
    uint64_t srv = nct_new_id(h);
    nct_cmd_listen_tcp(h, srv, "127.0.0.1", 0, 0, asked[i], 0, NULL);
    nct_event *ev = nct_expect(h, LISTENING, srv);
    uint16_t port = (uint16_t)ev->ev->listening->address->port;
    nct_event_free(ev);
    uint32_t backlog = 0, queued = 0;
    assert_int_equal(nct_tcp_listen_queue(AF_INET, port, &backlog, &queued), 0);
    if (backlog != want[i])
      nct_fail("Listen{backlog: %d}: the listener's backlog is %u, expected %u", asked[i], backlog,
               want[i]);
    close_server(h, srv);
  }
  nct_env_finish(e);
}

/* maxConnections = N with 2N clients: N are served, the rest accepted and
 * closed at once with no data; when one leaves, a new one is served. */
static void test_servers_max_connections(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_client *h = nct_env_handler(e, "maxconn");
  enum { N = 3 };
  uint64_t srv = nct_new_id(h);
  nct_cmd_listen_tcp(h, srv, "127.0.0.1", 0, 0, 0, N, NULL);
  nct_event *ev = nct_expect(h, LISTENING, srv);
  uint16_t port = (uint16_t)ev->ev->listening->address->port;
  nct_event_free(ev);

  int served[N];
  uint64_t ids[N];
  for (int i = 0; i < N; i++) {
    served[i] = nct_tcp_connect("127.0.0.1", port);
    ev = nct_expect_connection(h, srv);
    assert_int_equal(ev->ev->connection->server_connections, i + 1);
    ids[i] = ev->ev->connection->socket_id;
    nct_event_free(ev);
    /* The handler greets every client it serves. */
    nct_cmd_write(h, ids[i], "hi", 2);
    nct_peer_expect(served[i], "hi", 2);
  }
  int extra[N];
  for (int i = 0; i < N; i++) {
    extra[i] = nct_tcp_connect("127.0.0.1", port);
    nct_peer_expect_eof(extra[i]); /* closed at once, no data */
    close(extra[i]);
  }
  nct_expect_no_connection(h, srv, NCT_QUIET);

  /* One served client leaves: the next one is served. */
  nct_close_both(h, ids[0], served[0]);
  int next = nct_tcp_connect("127.0.0.1", port);
  ev = nct_expect_connection(h, srv);
  assert_int_equal(ev->ev->connection->server_connections, N);
  ids[0] = ev->ev->connection->socket_id;
  served[0] = next;
  nct_event_free(ev);
  nct_cmd_write(h, ids[0], "hi", 2);
  nct_peer_expect(next, "hi", 2);

  /* maxConnections can be raised at run time. */
  nct_cmd_server_set_max(h, srv, N + 1);
  nct_sync(h);
  int more = nct_tcp_connect("127.0.0.1", port);
  ev = nct_expect_connection(h, srv);
  assert_int_equal(ev->ev->connection->server_connections, N + 1);
  uint64_t more_id = ev->ev->connection->socket_id;
  nct_event_free(ev);
  int refused = nct_tcp_connect("127.0.0.1", port);
  nct_peer_expect_eof(refused);
  close(refused);
  nct_expect_no_connection(h, srv, NCT_QUIET);

  nct_close_both(h, more_id, more);
  for (int i = 0; i < N; i++) nct_close_both(h, ids[i], served[i]);
  close_server(h, srv);
  nct_env_finish(e);
}

/* server.connections counts live connections; destroying twice lowers it once. */
static void test_servers_connection_count(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_client *h = nct_env_handler(e, "count");
  uint16_t port;
  uint64_t srv = nct_listen_local(h, &port, 0);
  int peers[3];
  uint64_t ids[3];
  for (int i = 0; i < 3; i++) {
    peers[i] = nct_tcp_connect("127.0.0.1", port);
    nct_event *ev = nct_expect_connection(h, srv);
    assert_int_equal(ev->ev->connection->server_connections, i + 1);
    ids[i] = ev->ev->connection->socket_id;
    nct_event_free(ev);
  }
  nct_cmd_destroy(h, ids[1]);
  nct_event *ev = nct_expect(h, CLOSED, ids[1]);
  assert_false(ev->ev->closed->had_error);
  nct_event_free(ev);
  nct_cmd_destroy(h, ids[1]);
  ev = nct_expect_error(h, "EBADF");
  assert_int_equal(ev->ev->error->socket_id, ids[1]);
  nct_event_free(ev);
  nct_peer_expect_eof(peers[1]);
  close(peers[1]);

  int p4 = nct_tcp_connect("127.0.0.1", port);
  ev = nct_expect_connection(h, srv);
  assert_int_equal(ev->ev->connection->server_connections, 3);
  uint64_t id4 = ev->ev->connection->socket_id;
  nct_event_free(ev);

  nct_close_both(h, ids[0], peers[0]);
  nct_close_both(h, ids[2], peers[2]);
  nct_close_both(h, id4, p4);
  close_server(h, srv);
  nct_env_finish(e);
}

/* ServerPause(msecs): clients wait in the backlog (connect() succeeds) and
 * are all accepted after the pause. */
static void test_servers_pause(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_client *h = nct_env_handler(e, "pause");
  uint16_t port;
  uint64_t srv = nct_listen_local(h, &port, 0);
  /* Warm the server up with one connection first. */
  int first;
  uint64_t first_id = nct_accept_peer(h, srv, port, &first);

  enum { K = 3, PAUSE_MS = 2000 };
  nct_cmd_server_pause(h, srv, PAUSE_MS);
  nct_sync(h); /* the pause has begun */
  uint64_t t0 = nct_now_ms();
  int peers[K];
  for (int i = 0; i < K; i++) peers[i] = nct_tcp_connect("127.0.0.1", port);
  /* They are waiting in the kernel's accept queue, not accepted. */
  uint32_t backlog = 0, queued = 0;
  assert_int_equal(nct_tcp_listen_queue(AF_INET, port, &backlog, &queued), 0);
  if (queued != K)
    nct_fail("accept queue holds %u connections during the pause, expected %d", queued, K);
  int quiet = PAUSE_MS - 700 - (int)(nct_now_ms() - t0);
  if (quiet > 0) nct_expect_no_connection(h, srv, quiet);

  uint64_t ids[K];
  for (int i = 0; i < K; i++) {
    nct_event *ev = nct_expect_connection(h, srv);
    ids[i] = ev->ev->connection->socket_id;
    nct_event_free(ev);
  }
  assert_int_equal(nct_tcp_listen_queue(AF_INET, port, &backlog, &queued), 0);
  assert_int_equal(queued, 0);
  /* The already accepted connection was never disturbed. */
  exchange(h, first_id, first);
  for (int i = 0; i < K; i++) {
    nct_cmd_write(h, ids[i], "x", 1);
    nct_event_free(nct_take(h, EV(WRITE_ACK), ids[i], NCT_WAIT));
  }
  /* Which peer got which id depends on accept order: each gets one "x". */
  for (int i = 0; i < K; i++) nct_peer_expect(peers[i], "x", 1);
  for (int i = 0; i < K; i++) close(peers[i]);
  for (int i = 0; i < K; i++) {
    nct_expect_drop(h, ENDED, ids[i]);
    nct_cmd_end(h, ids[i], NULL, 0);
    nct_event *ev = nct_expect_skip(h, CLOSED, ids[i], NCT_SKIP(WRITE_ACK));
    assert_false(ev->ev->closed->had_error);
    nct_event_free(ev);
  }
  nct_close_both(h, first_id, first);
  close_server(h, srv);
  nct_env_finish(e);
}

/* ServerClose with open connections: no new connections; ServerClosed only
 * after the last one closed, exactly once. */
static void test_servers_close_with_open_connections(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_client *h = nct_env_handler(e, "closer");
  uint16_t port;
  uint64_t srv = nct_listen_local(h, &port, 0);
  int p1, p2;
  uint64_t s1 = nct_accept_peer(h, srv, port, &p1);
  uint64_t s2 = nct_accept_peer(h, srv, port, &p2);

  nct_cmd_server_close(h, srv);
  nct_sync(h);
  /* Not accepting any more: a new client is refused. */
  struct sockaddr_in sa = {
      .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int late = socket(AF_INET, SOCK_STREAM, 0);
  int r = connect(late, (struct sockaddr *)&sa, sizeof sa);
  int err = errno;
  close(late);
  if (r == 0 || err != ECONNREFUSED)
    nct_fail("connect after ServerClose: %s, expected ECONNREFUSED",
             r == 0 ? "connected" : strerror(err));
  nct_expect_none(h, srv, NCT_QUIET);

  /* Existing connections still work. */
  exchange(h, s1, p1);
  nct_close_both(h, s1, p1);
  nct_expect_none(h, srv, NCT_QUIET);
  nct_cmd_destroy(h, s2);
  nct_expect_drop(h, CLOSED, s2);
  close(p2);
  nct_expect_drop(h, SERVER_CLOSED, srv);
  nct_expect_none(h, srv, NCT_QUIET); /* exactly once */
  /* A second close of a closed server is EBADF. */
  nct_cmd_server_close(h, srv);
  nct_event_free(nct_expect_error(h, "EBADF"));
  nct_env_finish(e);
}

/* Two servers on one port: EADDRINUSE, and the handler can listen elsewhere. */
static void test_servers_eaddrinuse_then_listen_elsewhere(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_client *a = nct_env_handler(e, "a");
  nct_client *b = nct_env_handler(e, "b");
  uint16_t port;
  uint64_t srv = nct_listen_local(a, &port, 0);

  uint64_t dup = nct_new_id(a); /* same handler */
  nct_cmd_listen_tcp(a, dup, "127.0.0.1", port, 0, 0, 0, NULL);
  nct_event *ev = nct_expect(a, SERVER_ERROR, dup);
  assert_string_equal(ev->ev->server_error->code, "EADDRINUSE");
  nct_event_free(ev);
  uint64_t other = nct_new_id(b); /* another handler */
  nct_cmd_listen_tcp(b, other, "127.0.0.1", port, 0, 0, 0, NULL);
  ev = nct_expect(b, SERVER_ERROR, other);
  assert_string_equal(ev->ev->server_error->code, "EADDRINUSE");
  nct_event_free(ev);

  uint16_t port2;
  uint64_t srv2 = nct_listen_local(b, &port2, 0);
  assert_true(port2 != port);
  int peer;
  uint64_t sock = nct_accept_peer(b, srv2, port2, &peer);
  exchange(b, sock, peer);
  nct_close_both(b, sock, peer);
  close_server(b, srv2);
  /* The first server is untouched. */
  uint64_t s1 = nct_accept_peer(a, srv, port, &peer);
  exchange(a, s1, peer);
  nct_close_both(a, s1, peer);
  close_server(a, srv);
  nct_env_finish(e);
}

#define T(f) cmocka_unit_test_setup_teardown(f, nct_env_setup, nct_env_teardown)

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      T(test_servers_listen_tcp_ipv4),
      T(test_servers_listen_given_port),
      T(test_servers_listen_tcp_ipv6),
      T(test_servers_listen_any_address),
      T(test_servers_listen_unix_path),
      T(test_servers_listen_unix_on_regular_file),
      T(test_servers_listen_fd),
      T(test_servers_allow_half_open_flag),
      T(test_servers_backlog),
      T(test_servers_max_connections),
      T(test_servers_connection_count),
      T(test_servers_pause),
      T(test_servers_close_with_open_connections),
      T(test_servers_eaddrinuse_then_listen_elsewhere),
  };
  return NCT_RUN(argc, argv, tests);
}
