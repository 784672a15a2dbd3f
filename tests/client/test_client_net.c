/* libnc against the real netcore with real sockets: servers (listen on an
 * OS-assigned port, EADDRINUSE and retry, UNIX paths, close waiting for its
 * connections), connecting (variants, refused, ENOENT, connect again from
 * the close callback), data (binary echo through c.pipe(c) with a
 * half-close, encodings end to end, bytesRead/bytesWritten), fd passing, and
 * the loop itself (nc_loop_run, nc_loop_stop, timers). */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "nct.h"

/* ------------------------------------------------------ echo with c.pipe(c) */

#define ECHO_ROUNDS 64

typedef struct {
  int port;
  size_t got;
  char buf[7 + 256 * ECHO_ROUNDS + 64];
} echo_peer_t;

static void *echo_peer(void *arg) {
  echo_peer_t *p = arg;
  int fd = nct_tcp_connect(p->port);
  uint8_t all[256];
  for (int i = 0; i < 256; i++) all[i] = (uint8_t)i;
  for (int r = 0; r < ECHO_ROUNDS; r++) nct_write_all(fd, all, sizeof(all));
  shutdown(fd, SHUT_WR); /* half-close: the echo must still come back */
  p->got = nct_read_all(fd, p->buf, sizeof(p->buf), 10000);
  close(fd);
  return NULL;
}

typedef struct {
  nc_server_t *server;
  echo_peer_t peer;
  pthread_t thread;
  int connections, closes, had_error, ends;
  nc_address_t local;
  char remote[64];
  int remote_port;
} echo_t;

static void echo_on_end(nc_socket_t *c) { ((echo_t *)nc_socket_get_data(c))->ends++; }

static void echo_on_close(nc_socket_t *c, int had_error) {
  echo_t *t = nc_socket_get_data(c);
  t->closes++;
  t->had_error = had_error;
  nc_server_close(t->server, NULL);
}

static void echo_on_connection(nc_server_t *server, nc_socket_t *c) {
  echo_t *t = nc_server_get_data(server);
  nc_socket_events_t ev = {.on_end = echo_on_end, .on_close = echo_on_close};
  t->connections++;
  nc_socket_set_data(c, t);
  nc_socket_set_events(c, &ev);
  assert_int_equal(nc_server_connections(server), 1);
  assert_ptr_equal(nc_socket_server(c), server);
  assert_int_equal(nc_socket_address(c, &t->local), 0);
  snprintf(t->remote, sizeof(t->remote), "%s", nc_socket_remote_address(c));
  t->remote_port = nc_socket_remote_port(c);
  assert_int_equal(nc_socket_write(c, "hello\r\n", 7, NULL, NULL), 1);
  assert_int_equal(nc_socket_pipe(c, c), 0);
}

static void echo_on_listening(nc_server_t *server) {
  echo_t *t = nc_server_get_data(server);
  nc_address_t a;
  assert_int_equal(nc_server_address(server, &a), 0);
  assert_int_equal(a.family, NC_FAMILY_IPV4);
  assert_string_equal(a.address, "127.0.0.1");
  assert_true(a.port > 0);
  t->peer.port = a.port;
  t->thread = nct_thread(echo_peer, &t->peer);
}

static void test_client_echo_pipe_binary_half_close(void **state) {
  (void)state;
  nc_loop_t *loop = nct_loop(&nct_daemon);
  echo_t t = {0};
  nc_server_options_t o = {.allow_half_open = 1};
  assert_int_equal(nc_server_new(loop, &o, echo_on_connection, &t.server), 0);
  nc_server_set_data(t.server, &t);
  assert_int_equal(nc_server_listen(t.server, 0, "127.0.0.1", echo_on_listening), 0);
  assert_int_equal(nct_run(loop, 20000), 0);
  pthread_join(t.thread, NULL);
  assert_int_equal(t.connections, 1);
  assert_int_equal(t.ends, 1);
  assert_int_equal(t.closes, 1);
  assert_int_equal(t.had_error, 0);
  assert_string_equal(t.remote, "127.0.0.1");
  assert_true(t.remote_port > 0 && t.remote_port != t.peer.port);
  assert_int_equal(t.local.port, t.peer.port);
  assert_int_equal(t.peer.got, 7 + 256 * ECHO_ROUNDS);
  assert_memory_equal(t.peer.buf, "hello\r\n", 7);
  for (size_t i = 0; i < 256 * ECHO_ROUNDS; i++)
    if ((uint8_t)t.peer.buf[7 + i] != (uint8_t)(i % 256)) fail_msg("byte %zu differs", i);
  nc_loop_free(loop);
}

/* ------------------------------------------------- EADDRINUSE, then retry */

typedef struct {
  nc_server_t *a, *b;
  int b_listen_cb, b_errors, b_err, retried_port, closes;
} inuse_t;

static void inuse_close(nc_server_t *s) { ((inuse_t *)nc_server_get_data(s))->closes++; }

static void inuse_b_listening_cb(nc_server_t *s) {
  inuse_t *t = nc_server_get_data(s);
  nc_address_t a;
  t->b_listen_cb++;
  assert_int_equal(nc_server_address(s, &a), 0);
  t->retried_port = a.port;
  nc_server_close(t->a, inuse_close);
  nc_server_close(t->b, inuse_close);
}

static void inuse_b_error(nc_server_t *s, int err, const char *msg) {
  inuse_t *t = nc_server_get_data(s);
  t->b_errors++;
  t->b_err = err;
  assert_non_null(msg);
  /* The same server listens again (a new wire id), on another port. */
  assert_int_equal(nc_server_listen(s, 0, "127.0.0.1", inuse_b_listening_cb), 0);
}

static void inuse_b_listen_never(nc_server_t *s) {
  (void)s;
  fail_msg("the listen callback of a failed listen ran");
}

static void inuse_a_listening(nc_server_t *s) {
  inuse_t *t = nc_server_get_data(s);
  nc_address_t a;
  nc_server_address(s, &a);
  assert_int_equal(nc_server_listen(t->b, a.port, "127.0.0.1", inuse_b_listen_never), 0);
  assert_int_equal(nc_server_listen(t->b, a.port, "127.0.0.1", NULL), NC_ERR_SERVER_ALREADY_LISTEN);
}

static void test_client_server_eaddrinuse_then_retry(void **state) {
  (void)state;
  nc_loop_t *loop = nct_loop(&nct_daemon);
  inuse_t t = {0};
  nc_server_events_t evb = {.on_error = inuse_b_error};
  assert_int_equal(nc_server_new(loop, NULL, NULL, &t.a), 0);
  assert_int_equal(nc_server_new(loop, NULL, NULL, &t.b), 0);
  nc_server_set_data(t.a, &t);
  nc_server_set_data(t.b, &t);
  nc_server_set_events(t.b, &evb);
  assert_int_equal(nc_server_listen(t.a, 70000, NULL, NULL), NC_ERR_SOCKET_BAD_PORT);
  assert_int_equal(nc_server_listen(t.a, 0, "127.0.0.1", inuse_a_listening), 0);
  assert_int_equal(nct_run(loop, 10000), 0);
  assert_int_equal(t.b_errors, 1);
  assert_int_equal(t.b_err, NC_EADDRINUSE);
  assert_int_equal(t.b_listen_cb, 1);
  assert_true(t.retried_port > 0);
  assert_int_equal(t.closes, 2);
  nc_loop_free(loop);
}

/* ------------------------------------------------------------- UNIX paths */

typedef struct {
  char path[200];
  nc_server_t *server;
  int listening, closed, errors, err;
  char errmsg[256];
  nc_address_t addr;
  int path_gone_at_close;
  pthread_t thread;
  char got[16];
} unixs_t;

static void *unix_peer(void *arg) {
  unixs_t *t = arg;
  int fd = nct_unix_connect(t->path);
  size_t n = nct_read_all(fd, t->got, sizeof(t->got) - 1, 10000);
  t->got[n] = '\0';
  close(fd);
  return NULL;
}

static void unix_on_connection(nc_server_t *s, nc_socket_t *c) {
  (void)s;
  assert_int_equal(nc_socket_end(c, "bye\n", 4), 0);
}

static void unix_on_sock_close_server(nc_server_t *s) {
  unixs_t *t = nc_server_get_data(s);
  t->closed++;
  t->path_gone_at_close = access(t->path, F_OK) != 0 && errno == ENOENT;
}

static void unix_on_listening(nc_server_t *s) {
  unixs_t *t = nc_server_get_data(s);
  t->listening++;
  assert_int_equal(nc_server_address(s, &t->addr), 0);
  t->thread = nct_thread(unix_peer, t);
}

static void unix_on_error(nc_server_t *s, int err, const char *msg) {
  unixs_t *t = nc_server_get_data(s);
  t->errors++;
  t->err = err;
  snprintf(t->errmsg, sizeof(t->errmsg), "%s", msg);
  nc_server_close(s, NULL);
}

static void unix_peer_done_close(nc_socket_t *c, int had_error) {
  (void)had_error;
  unixs_t *t = nc_socket_get_data(c);
  nc_server_close(t->server, NULL);
}

static void unix_on_connection_track(nc_server_t *s, nc_socket_t *c) {
  nc_socket_events_t ev = {.on_close = unix_peer_done_close};
  nc_socket_set_data(c, nc_server_get_data(s));
  nc_socket_set_events(c, &ev);
  unix_on_connection(s, c);
}

static void test_client_server_listen_path(void **state) {
  (void)state;
  nc_loop_t *loop = nct_loop(&nct_daemon);
  unixs_t t = {0};
  nct_path(&nct_daemon, "echo.sock", t.path, sizeof(t.path));
  nc_server_events_t ev = {.on_connection = unix_on_connection_track,
                           .on_listening = unix_on_listening,
                           .on_close = unix_on_sock_close_server,
                           .on_error = unix_on_error};
  assert_int_equal(nc_server_new(loop, NULL, NULL, &t.server), 0);
  nc_server_set_data(t.server, &t);
  nc_server_set_events(t.server, &ev);
  assert_int_equal(nc_server_listen_path(t.server, t.path, NULL), 0);
  assert_int_equal(nct_run(loop, 10000), 0);
  pthread_join(t.thread, NULL);
  assert_int_equal(t.listening, 1);
  assert_int_equal(t.addr.family, NC_FAMILY_UNIX);
  assert_string_equal(t.addr.address, t.path);
  assert_string_equal(t.got, "bye\n");
  assert_int_equal(t.closed, 1);
  assert_true(t.path_gone_at_close);

  /* A regular file where the socket should go: an error naming the path. */
  unixs_t f = {0};
  nct_path(&nct_daemon, "regular-file", f.path, sizeof(f.path));
  FILE *fp = fopen(f.path, "w");
  assert_non_null(fp);
  fclose(fp);
  assert_int_equal(nc_server_new(loop, NULL, NULL, &f.server), 0);
  nc_server_set_data(f.server, &f);
  nc_server_set_events(f.server, &ev);
  assert_int_equal(nc_server_listen_path(f.server, f.path, NULL), 0);
  assert_int_equal(nct_run(loop, 10000), 0);
  assert_int_equal(f.listening, 0);
  assert_int_equal(f.errors, 1);
  assert_int_equal(f.err, NC_EADDRINUSE);
  assert_non_null(strstr(f.errmsg, f.path));
  nc_loop_free(loop);
}

/* ------------------------------------------------- paths that are not UTF-8 */

/* libnc sends such paths as path_bytes and takes the exact bytes from
 * address_bytes (PROTOCOL.md 1.2): a server on one, a peer bound to one, and
 * an outbound connection to one all show the exact path. */
typedef struct {
  char path[200], peer_path[200];
  nc_server_t *server;
  nc_address_t addr;
  char json[512];
  char remote[128], connected_remote[128];
  int connections, connected;
  pthread_t thread;
  char got[16];
} bytes_t;

static void *bytes_peer(void *arg) {
  bytes_t *t = arg;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  memcpy(sa.sun_path, t->peer_path, strlen(t->peer_path) + 1);
  int bound = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
  memcpy(sa.sun_path, t->path, strlen(t->path) + 1);
  /* No asserts off the test's thread: a failure leaves got empty. */
  if (!bound || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    close(fd);
    return NULL;
  }
  size_t n = nct_read_all(fd, t->got, sizeof(t->got) - 1, 10000);
  t->got[n] = '\0';
  close(fd);
  return NULL;
}

static void bytes_connected(nc_socket_t *c) {
  bytes_t *t = nc_socket_get_data(c);
  t->connected++;
  snprintf(t->connected_remote, sizeof(t->connected_remote), "%s", nc_socket_remote_address(c));
  nc_socket_destroy(c);
  nc_server_close(t->server, NULL);
}

static void bytes_on_connection(nc_server_t *s, nc_socket_t *c) {
  bytes_t *t = nc_server_get_data(s);
  if (t->connections++ == 0) {
    nc_address_t a;
    assert_int_equal(nc_socket_address(c, &a), 0);
    assert_string_equal(a.address, t->path);
    snprintf(t->remote, sizeof(t->remote), "%s", nc_socket_remote_address(c));
    assert_int_equal(nc_socket_end(c, "bye\n", 4), 0);
    /* Now an outbound connection of our own to the same path. */
    nc_socket_t *out;
    assert_int_equal(
        nc_create_connection_path(nc_server_loop(s), NULL, t->path, bytes_connected, &out), 0);
    nc_socket_set_data(out, t);
  } else {
    nc_socket_destroy(c);
  }
}

static void bytes_on_listening(nc_server_t *s) {
  bytes_t *t = nc_server_get_data(s);
  assert_int_equal(nc_server_address(s, &t->addr), 0);
  nc_address_json(&t->addr, t->json, sizeof(t->json));
  t->thread = nct_thread(bytes_peer, t);
}

static void test_client_non_utf8_paths(void **state) {
  (void)state;
  nc_loop_t *loop = nct_loop(&nct_daemon);
  bytes_t t = {0};
  nct_path(&nct_daemon, "srv-\xff\xfe.sock", t.path, sizeof(t.path));
  nct_path(&nct_daemon, "peer-\xc0\x80.sock", t.peer_path, sizeof(t.peer_path));
  nc_server_events_t ev = {.on_connection = bytes_on_connection,
                           .on_listening = bytes_on_listening};
  assert_int_equal(nc_server_new(loop, NULL, NULL, &t.server), 0);
  nc_server_set_data(t.server, &t);
  nc_server_set_events(t.server, &ev);
  assert_int_equal(nc_server_listen_path(t.server, t.path, NULL), 0);
  assert_int_equal(nct_run(loop, 10000), 0);
  pthread_join(t.thread, NULL);
  unlink(t.peer_path);
  assert_string_equal(t.addr.address, t.path);
  assert_string_equal(t.remote, t.peer_path);
  assert_string_equal(t.got, "bye\n");
  assert_int_equal(t.connected, 1);
  assert_string_equal(t.connected_remote, t.path);
  /* The JSON form is UTF-8, with U+FFFD as Node shows it. */
  assert_non_null(strstr(t.json, "srv-\xef\xbf\xbd\xef\xbf\xbd.sock\"}"));
  nc_loop_free(loop);
}

/* ------------------------------------------- server.close() and connections */

typedef struct {
  nc_server_t *server;
  nc_socket_t *socks[2];
  int nsocks, server_closed, socket_closes;
  int port;
  int fds[2];
  unsigned conns_after_double_destroy;
} sclose_t;

static void sclose_server_closed(nc_server_t *s) {
  sclose_t *t = nc_server_get_data(s);
  t->server_closed++;
  assert_int_equal(t->socket_closes, 2); /* only after the last connection */
}

static void sclose_sock_close(nc_socket_t *c, int had_error) {
  sclose_t *t = nc_socket_get_data(c);
  (void)had_error;
  assert_int_equal(t->server_closed, 0);
  t->socket_closes++;
  if (t->socket_closes == 1) {
    /* One is gone: the other client leaves now. */
    close(t->fds[1]);
    t->fds[1] = -1;
  }
}

static void sclose_timer(nc_timer_t *tm) {
  sclose_t *t = nc_timer_get_data(tm);
  nc_timer_close(tm);
  /* destroy() lowers connections at once, as Node's does, and twice lowers
   * it once: 2 -> 1 -> 1. */
  assert_int_equal(nc_server_connections(t->server), 2);
  nc_socket_destroy(t->socks[0]);
  assert_int_equal(nc_server_connections(t->server), 1);
  nc_socket_destroy(t->socks[0]);
  t->conns_after_double_destroy = nc_server_connections(t->server);
  assert_int_equal(t->conns_after_double_destroy, 1);
}

static void sclose_connection(nc_server_t *s, nc_socket_t *c) {
  sclose_t *t = nc_server_get_data(s);
  nc_socket_events_t ev = {.on_close = sclose_sock_close};
  nc_socket_set_data(c, t);
  nc_socket_set_events(c, &ev);
  t->socks[t->nsocks++] = c;
  assert_int_equal(nc_server_connections(s), (unsigned)t->nsocks);
  if (t->nsocks == 2) {
    nc_server_close(s, NULL);
    nc_timer_t *tm;
    nc_timer_new(nc_server_loop(s), &tm);
    nc_timer_set_data(tm, t);
    nc_timer_start(tm, sclose_timer, 50, 0);
  }
}

static void sclose_listening(nc_server_t *s) {
  sclose_t *t = nc_server_get_data(s);
  nc_address_t a;
  nc_server_address(s, &a);
  t->fds[0] = nct_tcp_connect(a.port);
  t->fds[1] = nct_tcp_connect(a.port);
}

static void test_client_server_close_waits_for_connections(void **state) {
  (void)state;
  nc_loop_t *loop = nct_loop(&nct_daemon);
  sclose_t t = {0};
  nc_server_events_t ev = {.on_connection = sclose_connection,
                           .on_listening = sclose_listening,
                           .on_close = sclose_server_closed};
  assert_int_equal(nc_server_new(loop, NULL, NULL, &t.server), 0);
  nc_server_set_data(t.server, &t);
  nc_server_set_events(t.server, &ev);
  assert_int_equal(nc_server_listen(t.server, 0, "127.0.0.1", NULL), 0);
  assert_int_equal(nct_run(loop, 10000), 0);
  assert_int_equal(t.server_closed, 1);
  assert_int_equal(t.socket_closes, 2);
  close(t.fds[0]);
  nc_loop_free(loop);
}

/* ---------------------------------------------------------------- connect */

typedef struct {
  int good_port, bad_port;
  int connects, cbs, errors, closes, close_errors;
  int last_err;
  int reconnected;
} conn_t;

static void conn_cb(nc_socket_t *s) {
  conn_t *t = nc_socket_get_data(s);
  t->cbs++;
}

static void conn_on_connect(nc_socket_t *s) {
  conn_t *t = nc_socket_get_data(s);
  t->connects++;
  assert_string_equal(nc_socket_remote_address(s), "127.0.0.1");
  assert_int_equal(nc_socket_remote_port(s), t->good_port);
  nc_socket_destroy(s);
}

static void conn_on_error(nc_socket_t *s, int err, const char *msg) {
  conn_t *t = nc_socket_get_data(s);
  (void)msg;
  t->errors++;
  t->last_err = err;
}

static void conn_on_close(nc_socket_t *s, int had_error) {
  conn_t *t = nc_socket_get_data(s);
  t->closes++;
  t->close_errors += had_error;
  if (had_error && !t->reconnected) {
    /* socket.connect() again on the closed socket: a new connection. */
    t->reconnected = 1;
    assert_int_equal(nc_socket_connect(s, t->good_port, "127.0.0.1", conn_cb), 0);
  }
}

static const nc_socket_events_t conn_events = {
    .on_connect = conn_on_connect, .on_error = conn_on_error, .on_close = conn_on_close};

static nc_socket_t *conn_new(nc_loop_t *loop, conn_t *t) {
  nc_socket_t *s;
  assert_int_equal(nc_socket_new(loop, NULL, &s), 0);
  nc_socket_set_data(s, t);
  nc_socket_set_events(s, &conn_events);
  return s;
}

static void test_client_connect_variants_and_refused(void **state) {
  (void)state;
  nc_loop_t *loop = nct_loop(&nct_daemon);
  conn_t t = {0};
  int lfd = nct_tcp_listen(&t.good_port);
  int dead = nct_tcp_listen(&t.bad_port);
  close(dead); /* nobody listens there now */

  /* Refused: 'error' ECONNREFUSED, 'close'(1), no 'connect'. */
  nc_socket_t *s = conn_new(loop, &t);
  t.reconnected = 1;
  assert_int_equal(nc_socket_connect(s, t.bad_port, "127.0.0.1", conn_cb), 0);
  assert_int_equal(nc_socket_connect(s, t.bad_port, "127.0.0.1", NULL), NC_EALREADY);
  assert_int_equal(nct_run(loop, 10000), 0);
  assert_int_equal(t.errors, 1);
  assert_int_equal(t.last_err, NC_ECONNREFUSED);
  assert_int_equal(t.closes, 1);
  assert_int_equal(t.close_errors, 1);
  assert_int_equal(t.connects + t.cbs, 0);

  /* Variants: (port), (port, "localhost"), with and without a callback. */
  memset(&t, 0, sizeof(t));
  t.good_port = 0;
  close(lfd);
  lfd = nct_tcp_listen(&t.good_port);
  assert_int_equal(nc_socket_connect(conn_new(loop, &t), t.good_port, NULL, conn_cb), 0);
  assert_int_equal(nc_socket_connect(conn_new(loop, &t), t.good_port, "localhost", NULL), 0);
  nc_socket_t *c3;
  assert_int_equal(nc_create_connection(loop, NULL, t.good_port, NULL, conn_cb, &c3), 0);
  nc_socket_set_data(c3, &t);
  nc_socket_set_events(c3, &conn_events);
  assert_int_equal(nct_run(loop, 10000), 0);
  assert_int_equal(t.connects, 3);
  assert_int_equal(t.cbs, 2);
  assert_int_equal(t.errors, 0);

  /* Refused, then connect() again from the close callback: it connects. */
  memset(&t, 0, sizeof(t));
  close(lfd);
  lfd = nct_tcp_listen(&t.good_port);
  dead = nct_tcp_listen(&t.bad_port);
  close(dead);
  assert_int_equal(nc_socket_connect(conn_new(loop, &t), t.bad_port, "127.0.0.1", NULL), 0);
  assert_int_equal(nct_run(loop, 10000), 0);
  assert_int_equal(t.errors, 1);
  assert_int_equal(t.connects, 1);
  assert_int_equal(t.cbs, 1);
  assert_int_equal(t.closes, 2);

  /* A missing UNIX path: ENOENT. */
  memset(&t, 0, sizeof(t));
  t.reconnected = 1;
  char path[200];
  nct_path(&nct_daemon, "nobody-here.sock", path, sizeof(path));
  nc_socket_t *u;
  assert_int_equal(nc_create_connection_path(loop, NULL, path, NULL, &u), 0);
  nc_socket_set_data(u, &t);
  nc_socket_set_events(u, &conn_events);
  assert_int_equal(nct_run(loop, 10000), 0);
  assert_int_equal(t.last_err, NC_ENOENT);
  assert_int_equal(t.close_errors, 1);

  /* Bad arguments fail at once, without callbacks. */
  nc_socket_t *bad;
  assert_int_equal(nc_create_connection(loop, NULL, 0, NULL, NULL, &bad), NC_ERR_SOCKET_BAD_PORT);
  assert_null(bad);
  nc_socket_t *fresh = conn_new(loop, &t);
  assert_int_equal(nc_socket_write(fresh, "x", 1, NULL, NULL), NC_ERR_SOCKET_CLOSED);
  nc_socket_destroy(fresh); /* never connected: 'close' on the next turn */
  t.closes = 0;
  assert_int_equal(nct_run(loop, 10000), 0);
  assert_int_equal(t.closes, 1);
  close(lfd);
  nc_loop_free(loop);
}

/* --------------------------------------------------- encodings end to end */

static const char *const enc_names[] = {"utf8", "base64", "ascii", NULL};
/* é € 😀 中: multi-byte characters the peer sends one byte per write. */
static const char enc_input[] = "h\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xe4\xb8\xad!\xff";
static const char *const enc_expect[] = {
    "h\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xe4\xb8\xad!\xef\xbf\xbd",
    "aMOp4oKs8J+YgOS4rSH/"};

typedef struct {
  int port, nconn;
  char text[4][256];
  size_t len[4];
  int pieces[4], closes;
  pthread_t thread;
  nc_server_t *server;
} enc_t;

static void *enc_peer(void *arg) {
  enc_t *t = arg;
  for (int i = 0; i < 4; i++) {
    int fd = nct_tcp_connect(t->port);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    for (size_t k = 0; k < sizeof(enc_input) - 1; k++) {
      nct_write_all(fd, enc_input + k, 1);
      usleep(2000); /* separate reads are likely, not required */
    }
    shutdown(fd, SHUT_WR);
    char b[8];
    nct_read_all(fd, b, sizeof(b), 10000);
    close(fd);
  }
  return NULL;
}

static void enc_on_data(nc_socket_t *c, const char *d, size_t n) {
  enc_t *t = nc_server_get_data(nc_socket_server(c));
  int i = (int)(intptr_t)nc_socket_get_data(c);
  if (enc_names[i] != NULL) assert_int_equal(d[n], '\0');
  assert_true(t->len[i] + n < sizeof(t->text[i]));
  memcpy(t->text[i] + t->len[i], d, n);
  t->len[i] += n;
  t->pieces[i]++;
}

static void enc_on_close(nc_socket_t *c, int had_error) {
  enc_t *t = nc_server_get_data(nc_socket_server(c));
  assert_int_equal(had_error, 0);
  if (++t->closes == 4) nc_server_close(t->server, NULL);
}

static void enc_on_connection(nc_server_t *s, nc_socket_t *c) {
  enc_t *t = nc_server_get_data(s);
  int i = t->nconn++;
  nc_socket_events_t ev = {.on_data = enc_on_data, .on_close = enc_on_close};
  nc_socket_set_data(c, (void *)(intptr_t)i);
  nc_socket_set_events(c, &ev);
  assert_int_equal(nc_socket_set_encoding(c, enc_names[i]), 0);
}

static void enc_on_listening(nc_server_t *s) {
  enc_t *t = nc_server_get_data(s);
  nc_address_t a;
  nc_server_address(s, &a);
  t->port = a.port;
  t->thread = nct_thread(enc_peer, t);
}

static void test_client_encodings_end_to_end(void **state) {
  (void)state;
  nc_loop_t *loop = nct_loop(&nct_daemon);
  enc_t t = {0};
  nc_server_events_t ev = {.on_connection = enc_on_connection, .on_listening = enc_on_listening};
  assert_int_equal(nc_server_new(loop, NULL, NULL, &t.server), 0);
  nc_server_set_data(t.server, &t);
  nc_server_set_events(t.server, &ev);
  assert_int_equal(nc_server_listen(t.server, 0, "127.0.0.1", NULL), 0);
  assert_int_equal(nct_run(loop, 20000), 0);
  pthread_join(t.thread, NULL);
  char ascii[sizeof(enc_input)];
  for (size_t k = 0; k < sizeof(enc_input); k++) ascii[k] = (char)(enc_input[k] & 0x7f);
  assert_int_equal(t.len[0], strlen(enc_expect[0]));
  assert_memory_equal(t.text[0], enc_expect[0], t.len[0]);
  assert_int_equal(t.len[1], strlen(enc_expect[1]));
  assert_memory_equal(t.text[1], enc_expect[1], t.len[1]);
  assert_int_equal(t.len[2], sizeof(enc_input) - 1);
  assert_memory_equal(t.text[2], ascii, t.len[2]);
  assert_int_equal(t.len[3], sizeof(enc_input) - 1);
  assert_memory_equal(t.text[3], enc_input, t.len[3]);
  nc_loop_free(loop);
}

/* ------------------------------------------- bytesRead and bytesWritten */

#define BW_WRITES 40
#define BW_CHUNK 1000
#define BW_END 123

typedef struct {
  nc_server_t *server;
  uint64_t server_read, server_written, client_read, client_written;
  uint64_t client_written_before_close;
  int acks, closes;
} bw_t;

static void bw_server_data(nc_socket_t *c, const char *d, size_t n) {
  (void)d;
  (void)n;
  (void)c;
}

static void bw_server_end(nc_socket_t *c) {
  bw_t *t = nc_server_get_data(nc_socket_server(c));
  t->server_read = nc_socket_bytes_read(c);
  assert_int_equal(nc_socket_end(c, "0123456789", 10), 0);
}

static void bw_server_close(nc_socket_t *c, int had_error) {
  bw_t *t = nc_server_get_data(nc_socket_server(c));
  assert_int_equal(had_error, 0);
  t->server_written = nc_socket_bytes_written(c);
  if (++t->closes == 2) nc_server_close(t->server, NULL);
}

static void bw_connection(nc_server_t *s, nc_socket_t *c) {
  nc_socket_events_t ev = {.on_data = bw_server_data, .on_end = bw_server_end,
                           .on_close = bw_server_close};
  (void)s;
  nc_socket_set_events(c, &ev);
}

static void bw_write_cb(nc_socket_t *c, int status, void *arg) {
  bw_t *t = arg;
  (void)c;
  assert_int_equal(status, 0);
  t->acks++;
}

static void bw_client_data(nc_socket_t *c, const char *d, size_t n) {
  (void)c;
  (void)d;
  (void)n;
}

static void bw_client_close(nc_socket_t *c, int had_error) {
  bw_t *t = nc_socket_get_data(c);
  assert_int_equal(had_error, 0);
  t->client_read = nc_socket_bytes_read(c);
  t->client_written = nc_socket_bytes_written(c);
  if (++t->closes == 2) nc_server_close(t->server, NULL);
}

static void bw_listening(nc_server_t *s) {
  bw_t *t = nc_server_get_data(s);
  nc_address_t a;
  nc_socket_t *c;
  static char chunk[BW_CHUNK];
  nc_server_address(s, &a);
  nc_socket_events_t ev = {.on_data = bw_client_data, .on_close = bw_client_close};
  assert_int_equal(nc_create_connection(nc_server_loop(s), NULL, a.port, "127.0.0.1", NULL, &c), 0);
  nc_socket_set_data(c, t);
  nc_socket_set_events(c, &ev);
  /* Written before the connection exists: sent once it does. */
  for (int i = 0; i < BW_WRITES; i++) assert_true(nc_socket_write(c, chunk, sizeof(chunk), bw_write_cb, t) >= 0);
  assert_int_equal(nc_socket_end(c, chunk, BW_END), 0);
  t->client_written_before_close = nc_socket_bytes_written(c);
}

static void test_client_bytes_read_written(void **state) {
  (void)state;
  nc_loop_t *loop = nct_loop(&nct_daemon);
  bw_t t = {0};
  nc_server_events_t ev = {.on_connection = bw_connection, .on_listening = bw_listening};
  assert_int_equal(nc_server_new(loop, NULL, NULL, &t.server), 0);
  nc_server_set_data(t.server, &t);
  nc_server_set_events(t.server, &ev);
  assert_int_equal(nc_server_listen(t.server, 0, "127.0.0.1", NULL), 0);
  assert_int_equal(nct_run(loop, 10000), 0);
  uint64_t sent = BW_WRITES * BW_CHUNK + BW_END;
  assert_int_equal(t.acks, BW_WRITES);
  assert_int_equal(t.client_written_before_close, sent);
  assert_int_equal(t.client_written, sent);
  assert_int_equal(t.server_read, sent);
  assert_int_equal(t.server_written, 10);
  assert_int_equal(t.client_read, 10);
  nc_loop_free(loop);
}

/* ----------------------------------------- adopted with bytes still queued */

/* A connection of a handler that left with Bye{handoff} while netcore still
 * held part of its writes (the peer read nothing): the heir's adopted socket
 * counts them in bytes_written (Adopted.bytes_written + queued_bytes), and the
 * peer gets them, then the heir's own. */
enum { AQ_BIG = 7 * 1024 * 1024, AQ_GREETING = 7 };

typedef struct {
  nc_loop_t *a, *b;
  nc_server_t *sb;
  int port, fd, adopted;
  uint64_t at_adoption, after_write;
  char *big;
  size_t got;
  char *buf;
} aq_t;

static void aq_listening(nc_server_t *s) {
  aq_t *t = nc_server_get_data(s);
  nc_address_t addr;
  nc_server_address(s, &addr);
  t->port = addr.port;
  nc_loop_stop(nc_server_loop(s));
}

/* Stops once netcore's write queue holds some of the bytes: the Stats was
 * asked after the Writes, and netcore takes commands in order. */
static void aq_stats(nc_loop_t *loop, int status, const nc_stats_t *st, void *arg) {
  (void)arg;
  assert_int_equal(status, 0);
  if (nc_stats_value(st, "netcore_write_queue_bytes", NULL, NULL) > 0)
    nc_loop_stop(loop);
  else
    assert_int_equal(nc_loop_stats(loop, aq_stats, NULL), 0);
}

static void aq_first_connection(nc_server_t *s, nc_socket_t *c) {
  aq_t *t = nc_server_get_data(s);
  assert_int_equal(nc_socket_write(c, "hello\r\n", AQ_GREETING, NULL, NULL), 1);
  nc_socket_write(c, t->big, AQ_BIG, NULL, NULL); /* 0: over the high-water mark */
  assert_int_equal(nc_loop_stats(nc_server_loop(s), aq_stats, NULL), 0);
}

static void aq_heir_close(nc_socket_t *c, int had_error) {
  aq_t *t = nc_socket_get_data(c);
  (void)had_error;
  nc_server_close(t->sb, NULL);
}

static void aq_heir_connection(nc_server_t *s, nc_socket_t *c) {
  aq_t *t = nc_server_get_data(s);
  nc_socket_events_t ev = {.on_close = aq_heir_close};
  nc_socket_set_data(c, t);
  nc_socket_set_events(c, &ev);
  t->adopted = nc_socket_adopted(c);
  t->at_adoption = nc_socket_bytes_written(c);
  nc_socket_write(c, "more", 4, NULL, NULL);
  t->after_write = nc_socket_bytes_written(c);
  nc_socket_end(c, NULL, 0);
}

static void *aq_reader(void *arg) {
  aq_t *t = arg;
  t->got = nct_read_all(t->fd, t->buf, AQ_GREETING + AQ_BIG + 4 + 1, 10000);
  shutdown(t->fd, SHUT_WR); /* the heir's socket then closes */
  return NULL;
}

static nc_server_t *aq_listen(nc_loop_t *loop, aq_t *t, int port,
                              void (*on_connection)(nc_server_t *, nc_socket_t *)) {
  nc_server_options_t o = {.group = "g"};
  nc_server_t *s;
  nc_server_events_t ev = {.on_connection = on_connection, .on_listening = aq_listening};
  assert_int_equal(nc_server_new(loop, &o, NULL, &s), 0);
  nc_server_set_data(s, t);
  nc_server_set_events(s, &ev);
  assert_int_equal(nc_server_listen(s, port, "127.0.0.1", NULL), 0);
  nct_run_until_stop(loop, 20000);
  return s;
}

static void test_client_adopted_with_bytes_queued(void **state) {
  (void)state;
  aq_t t = {0};
  t.big = malloc(AQ_BIG);
  t.buf = malloc(AQ_GREETING + AQ_BIG + 4 + 1);
  assert_non_null(t.big);
  assert_non_null(t.buf);
  memset(t.big, 'b', AQ_BIG);
  t.a = nct_loop(&nct_daemon);
  t.b = nct_loop(&nct_daemon);
  aq_listen(t.a, &t, 0, aq_first_connection);
  t.fd = nct_tcp_connect(t.port); /* reads nothing until the first handler left */
  nct_run_until_stop(t.a, 20000); /* its connection, the writes, netcore holding them */
  /* The heir joins the group only now: it must not be the one accepting. */
  t.sb = aq_listen(t.b, &t, t.port, aq_heir_connection);
  nc_loop_leave(t.a, 1);
  pthread_t th = nct_thread(aq_reader, &t);
  assert_int_equal(nct_run(t.b, 20000), 0); /* the adoption, "more", the end */
  pthread_join(th, NULL);
  close(t.fd);
  assert_true(t.adopted);
  assert_int_equal(t.at_adoption, AQ_GREETING + AQ_BIG);
  assert_int_equal(t.after_write, AQ_GREETING + AQ_BIG + 4);
  assert_int_equal(t.got, AQ_GREETING + AQ_BIG + 4);
  assert_memory_equal(t.buf, "hello\r\n", AQ_GREETING);
  assert_memory_equal(t.buf + AQ_GREETING, t.big, AQ_BIG);
  assert_memory_equal(t.buf + AQ_GREETING + AQ_BIG, "more", 4);
  nc_loop_free(t.a);
  nc_loop_free(t.b);
  free(t.big);
  free(t.buf);
}

/* ------------------------------------------------------------ fd passing */

typedef struct {
  char path[200];
  nc_server_t *unix_server, *tcp_server;
  nc_socket_t *tcp_accepted, *unix_client, *received;
  int port, fd_events, got_data_after_fd, closes;
  pthread_t thread;
  char peer_got[32];
  size_t peer_n;
} fdp_t;

/* The TCP peer reads what is written through the passed fd, then leaves. */
static void *fdp_peer(void *arg) {
  fdp_t *t = arg;
  int fd = nct_tcp_connect(t->port);
  t->peer_n = nct_read_all(fd, t->peer_got, 6, 10000);
  close(fd);
  return NULL;
}

/* The received socket and the original accepted one share the peer: both
 * close when it leaves; then the servers go. */
static void fdp_tcp_close(nc_socket_t *c, int had_error) {
  fdp_t *t = nc_socket_get_data(c);
  (void)had_error;
  if (++t->closes == 2) {
    nc_server_close(t->unix_server, NULL);
    nc_server_close(t->tcp_server, NULL);
  }
}

static void fdp_unix_data(nc_socket_t *c, const char *d, size_t n) {
  fdp_t *t = nc_socket_get_data(c);
  assert_int_equal(t->fd_events, 1); /* the fd is announced before its data */
  assert_int_equal(n, 1);
  assert_int_equal(d[0], 'F');
  t->got_data_after_fd = 1;
  assert_int_equal(nc_socket_write(t->received, "via-fd", 6, NULL, NULL), 1);
}

static void fdp_on_fd(nc_socket_t *c, nc_socket_t *received) {
  fdp_t *t = nc_socket_get_data(c);
  nc_socket_events_t ev = {.on_close = fdp_tcp_close};
  t->fd_events++;
  t->received = received;
  nc_socket_set_data(received, t);
  nc_socket_set_events(received, &ev);
}

static void fdp_unix_connection(nc_server_t *s, nc_socket_t *c) {
  fdp_t *t = nc_server_get_data(s);
  nc_socket_events_t ev = {.on_data = fdp_unix_data, .on_fd = fdp_on_fd};
  nc_socket_set_data(c, t);
  nc_socket_set_events(c, &ev);
}

static void fdp_unix_connected(nc_socket_t *c) {
  fdp_t *t = nc_socket_get_data(c);
  assert_int_equal(nc_socket_write_fd(c, NULL, 0, t->tcp_accepted, NULL, NULL), NC_EINVAL);
  assert_int_equal(nc_socket_write_fd(c, "F", 1, t->tcp_accepted, NULL, NULL), 1);
  nc_socket_end(c, NULL, 0);
}

static void fdp_tcp_connection(nc_server_t *s, nc_socket_t *c) {
  fdp_t *t = nc_server_get_data(s);
  nc_socket_events_t ev = {.on_close = fdp_tcp_close};
  t->tcp_accepted = c;
  nc_socket_set_data(c, t);
  nc_socket_set_events(c, &ev);
  assert_int_equal(nc_create_connection_path(nc_server_loop(s), NULL, t->path, fdp_unix_connected,
                                             &t->unix_client), 0);
  nc_socket_set_data(t->unix_client, t);
}

static void fdp_tcp_listening(nc_server_t *s) {
  fdp_t *t = nc_server_get_data(s);
  nc_address_t a;
  nc_server_address(s, &a);
  t->port = a.port;
  t->thread = nct_thread(fdp_peer, t);
}

static void fdp_unix_listening(nc_server_t *s) {
  fdp_t *t = nc_server_get_data(s);
  nc_server_events_t ev = {.on_connection = fdp_tcp_connection, .on_listening = fdp_tcp_listening};
  assert_int_equal(nc_server_new(nc_server_loop(s), NULL, NULL, &t->tcp_server), 0);
  nc_server_set_data(t->tcp_server, t);
  nc_server_set_events(t->tcp_server, &ev);
  assert_int_equal(nc_server_listen(t->tcp_server, 0, "127.0.0.1", NULL), 0);
}

static void test_client_fd_passing(void **state) {
  (void)state;
  nc_loop_t *loop = nct_loop(&nct_daemon);
  fdp_t t = {0};
  nct_path(&nct_daemon, "fd.sock", t.path, sizeof(t.path));
  nc_server_events_t ev = {.on_connection = fdp_unix_connection, .on_listening = fdp_unix_listening};
  assert_int_equal(nc_server_new(loop, NULL, NULL, &t.unix_server), 0);
  nc_server_set_data(t.unix_server, &t);
  nc_server_set_events(t.unix_server, &ev);
  assert_int_equal(nc_server_listen_path(t.unix_server, t.path, NULL), 0);
  assert_int_equal(nct_run(loop, 10000), 0);
  pthread_join(t.thread, NULL);
  assert_int_equal(t.fd_events, 1);
  assert_true(t.got_data_after_fd);
  assert_int_equal(t.peer_n, 6);
  assert_memory_equal(t.peer_got, "via-fd", 6);
  nc_loop_free(loop);
}

/* ----------------------------------------------- nc_loop_run and timers */

typedef struct {
  int order[8], n;
  nc_timer_t *repeat;
  int repeats;
} timers_t;

static void t_first(nc_timer_t *tm) {
  timers_t *t = nc_loop_get_data((nc_loop_t *)nc_timer_get_data(tm));
  t->order[t->n++] = 1;
  nc_timer_close(tm); /* closing a timer from its own callback */
}

static void t_second(nc_timer_t *tm) {
  timers_t *t = nc_loop_get_data((nc_loop_t *)nc_timer_get_data(tm));
  t->order[t->n++] = 2;
  nc_timer_close(tm);
}

static void t_repeat(nc_timer_t *tm) {
  timers_t *t = nc_loop_get_data((nc_loop_t *)nc_timer_get_data(tm));
  if (++t->repeats == 3) nc_timer_stop(tm);
}

static void t_stop(nc_timer_t *tm) {
  nc_loop_stop((nc_loop_t *)nc_timer_get_data(tm));
}

static void test_client_loop_run_timers_and_stop(void **state) {
  (void)state;
  nc_loop_t *loop = nct_loop(&nct_daemon);
  timers_t t = {0};
  nc_loop_set_data(loop, &t);
  nc_timer_t *a, *b, *r, *forever;
  nc_timer_new(loop, &a);
  nc_timer_new(loop, &b);
  nc_timer_new(loop, &r);
  nc_timer_set_data(a, loop);
  nc_timer_set_data(b, loop);
  nc_timer_set_data(r, loop);
  nc_timer_start(b, t_second, 30, 0);
  nc_timer_start(a, t_first, 10, 0);
  nc_timer_start(r, t_repeat, 5, 5);
  /* Nothing but timers: nc_loop_run returns when they are done. */
  assert_int_equal(nc_loop_run(loop), 0);
  assert_int_equal(t.n, 2);
  assert_int_equal(t.order[0], 1);
  assert_int_equal(t.order[1], 2);
  assert_int_equal(t.repeats, 3);
  nc_timer_close(r);
  /* nc_loop_stop() ends a loop that would run forever. */
  nc_timer_new(loop, &forever);
  nc_timer_set_data(forever, loop);
  nc_timer_start(forever, t_stop, 20, 1000000);
  assert_int_equal(nc_loop_run(loop), 0);
  /* An idle timer left open is freed by nc_loop_free. */
  nc_loop_free(loop);
}

/* A batch never holds more commands than the lowest --max-batch (256): 300
 * listen() calls in one turn of the loop (a timer's callback) leave in
 * batches that netcore takes (libnc filled a batch up to 512 commands, which
 * a netcore of --max-batch 256 refused whole with EMSGSIZE). */
#define MANY_SERVERS 300
typedef struct {
  nc_server_t *servers[MANY_SERVERS];
  int listening, errors;
} many_t;

static void many_listening(nc_server_t *srv) { ((many_t *)nc_server_get_data(srv))->listening++; }
static void many_error(nc_server_t *srv, int err, const char *msg) {
  (void)err;
  printf("server error: %s\n", msg);
  ((many_t *)nc_server_get_data(srv))->errors++;
}

static void many_listen_now(nc_timer_t *timer) {
  many_t *m = nc_timer_get_data(timer);
  for (int i = 0; i < MANY_SERVERS; i++)
    assert_int_equal(nc_server_listen(m->servers[i], 0, "127.0.0.1", NULL), 0);
}

static void test_client_batches_under_lowest_max_batch(void **state) {
  (void)state;
  nct_netcore_t d;
  nct_netcore_start(&d, (const char *const[]){"--max-batch", "256", NULL});
  nc_loop_t *loop = nct_loop(&d);
  many_t m = {0};
  nc_server_events_t ev = {.on_listening = many_listening, .on_error = many_error};
  for (int i = 0; i < MANY_SERVERS; i++) {
    assert_int_equal(nc_server_new(loop, NULL, NULL, &m.servers[i]), 0);
    nc_server_set_data(m.servers[i], &m);
    nc_server_set_events(m.servers[i], &ev);
  }
  nc_timer_t *timer;
  assert_int_equal(nc_timer_new(loop, &timer), 0);
  nc_timer_set_data(timer, &m);
  assert_int_equal(nc_timer_start(timer, many_listen_now, 1, 0), 0);
  uint64_t deadline = nct_now_ms() + 15000;
  while (m.listening + m.errors < MANY_SERVERS && nct_now_ms() < deadline) {
    nc_loop_process(loop);
    usleep(1000);
  }
  assert_int_equal(m.errors, 0);
  assert_int_equal(m.listening, MANY_SERVERS);
  nc_timer_close(timer);
  nc_loop_free(loop);
  nct_netcore_stop(&d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_client_echo_pipe_binary_half_close),
      cmocka_unit_test(test_client_server_eaddrinuse_then_retry),
      cmocka_unit_test(test_client_server_listen_path),
      cmocka_unit_test(test_client_non_utf8_paths),
      cmocka_unit_test(test_client_server_close_waits_for_connections),
      cmocka_unit_test(test_client_connect_variants_and_refused),
      cmocka_unit_test(test_client_encodings_end_to_end),
      cmocka_unit_test(test_client_bytes_read_written),
      cmocka_unit_test(test_client_adopted_with_bytes_queued),
      cmocka_unit_test(test_client_fd_passing),
      cmocka_unit_test(test_client_loop_run_timers_and_stop),
      cmocka_unit_test(test_client_batches_under_lowest_max_batch),
  };
  return cmocka_run_group_tests_name("client_net", tests, nct_setup, nct_teardown);
}
