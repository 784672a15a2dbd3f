/* test_badinput.c: bad input never hurts anyone else (docs/ARCHITECTURE.md rule 10). Each
 * test sends one kind of bad input; the sender gets the named error code; an
 * observer handler with a live connection keeps working before and after;
 * and nct_env_finish proves netcore's fd count is back at its baseline. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

static nct_client *start(nct_env *e, const char *name) {
  nct_env_start(e, NULL);
  nct_env_bystander_start(e);
  return nct_env_handler(e, name);
}

static void send_raw(nct_client *h, const void *env, size_t len) {
  nct_send_frames(h, env, len, 0, NULL, NULL);
}

/* An accepted connection of h, for commands that need a live socket. */
static uint64_t live_socket(nct_client *h, uint64_t *srv, int *peer) {
  uint16_t port;
  *srv = nct_listen_local(h, &port, 0);
  return nct_accept_peer(h, *srv, port, peer);
}

static void drop_live_socket(nct_client *h, uint64_t srv, uint64_t id, int peer) {
  nct_close_both(h, id, peer);
  nct_cmd_server_close(h, srv);
  nct_expect_drop(h, SERVER_CLOSED, srv);
}

static void expect_server_error(nct_client *h, uint64_t srv, const char *code) {
  nct_event *ev = nct_expect(h, SERVER_ERROR, srv);
  char s[512];
  if (strcmp(ev->ev->server_error->code, code) != 0)
    nct_fail("expected ServerError %s, got %s", code, nct_event_str(ev, s, sizeof s));
  nct_event_free(ev);
}

/* SocketError{code} then Closed{had_error: true}, and nothing else first. */
static void expect_socket_failure(nct_client *h, uint64_t id, const char *code) {
  nct_event *ev = nct_expect(h, SOCKET_ERROR, id);
  char s[512];
  if (strcmp(ev->ev->socket_error->code, code) != 0)
    nct_fail("expected SocketError %s, got %s", code, nct_event_str(ev, s, sizeof s));
  nct_event_free(ev);
  ev = nct_expect(h, CLOSED, id);
  assert_true(ev->ev->closed->had_error);
  nct_event_free(ev);
}

static void test_badinput_malformed_protobuf(void **state) {
  nct_env *e = *state;
  nct_client *h = start(e, "garbage");
  static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
  send_raw(h, junk, sizeof junk);
  nct_event_free(nct_expect_error(h, "EPROTO"));

  /* A valid Listen cut short. */
  Netcore__V1__TcpEndpoint tcp = NETCORE__V1__TCP_ENDPOINT__INIT;
  tcp.host = "127.0.0.1";
  Netcore__V1__Listen l = NETCORE__V1__LISTEN__INIT;
  l.server_id = nct_new_id(h);
  l.endpoint_case = NETCORE__V1__LISTEN__ENDPOINT_TCP;
  l.tcp = &tcp;
  nct_cmd cmd = NETCORE__V1__COMMAND__INIT;
  cmd.command_case = NETCORE__V1__COMMAND__COMMAND_LISTEN;
  cmd.listen = &l;
  uint8_t buf[256];
  size_t n = netcore__v1__command__pack(&cmd, buf);
  send_raw(h, buf, n - 3);
  nct_event_free(nct_expect_error(h, "EPROTO"));
  nct_expect_none(h, l.server_id, 200);
  nct_env_bystander_check(e);
  nct_sync(h); /* the sender itself is still served */
  nct_env_finish(e);
}

static void test_badinput_unknown_command(void **state) {
  nct_env *e = *state;
  nct_client *h = start(e, "future");
  /* ref = 5, then field 99 (not in this protocol) as an empty message. */
  static const uint8_t cmd99[] = {0x08, 0x05, 0x9a, 0x06, 0x00};
  send_raw(h, cmd99, sizeof cmd99);
  nct_event *ev = nct_expect_error(h, "ERR_UNKNOWN_COMMAND");
  assert_int_equal(ev->ev->error->ref, 5);
  nct_event_free(ev);
  /* Field 19, inside the range of today's commands but unassigned. */
  static const uint8_t cmd19[] = {0x08, 0x06, 0x9a, 0x01, 0x00};
  send_raw(h, cmd19, sizeof cmd19);
  ev = nct_expect_error(h, "ERR_UNKNOWN_COMMAND");
  assert_int_equal(ev->ev->error->ref, 6);
  nct_event_free(ev);
  nct_env_bystander_check(e);
  nct_sync(h);
  nct_env_finish(e);
}

/* A frame over Welcome.max_frame (the default limit): EMSGSIZE. */
static void test_badinput_frame_too_large(void **state) {
  nct_env *e = *state;
  nct_client *h = start(e, "huge");
  uint64_t srv;
  int peer;
  uint64_t id = live_socket(h, &srv, &peer);
  size_t n = (size_t)h->max_frame + 1;
  uint8_t *big = calloc(1, n);
  assert_non_null(big);
  nct_cmd_write(h, id, big, n);
  nct_event *ev = nct_expect_error(h, "EMSGSIZE");
  assert_string_equal(ev->ev->error->command, "write");
  nct_event_free(ev);
  /* An envelope over the limit: a Hello with a huge name. */
  char *name = malloc(n + 1);
  memset(name, 'n', n);
  name[n] = '\0';
  Netcore__V1__Hello hello = NETCORE__V1__HELLO__INIT;
  hello.version = 1;
  hello.name = name;
  nct_cmd cmd = NETCORE__V1__COMMAND__INIT;
  cmd.command_case = NETCORE__V1__COMMAND__COMMAND_HELLO;
  cmd.hello = &hello;
  nct_send(h, &cmd, NULL, 0, 0);
  nct_event_free(nct_expect_error(h, "EMSGSIZE"));
  free(name);
  free(big);
  nct_peer_expect_quiet(peer, 200);
  nct_env_bystander_check(e);
  /* The socket is untouched (the oversize Hello did not reset the handler). */
  nct_cmd_write(h, id, "fine", 4);
  nct_peer_expect(peer, "fine", 4);
  drop_live_socket(h, srv, id, peer);
  nct_env_finish(e);
}

/* A payload frame where none belongs, or none where one is needed. */
static void test_badinput_payload_misplaced(void **state) {
  nct_env *e = *state;
  nct_client *h = start(e, "payloads");
  uint64_t srv;
  int peer;
  uint64_t id = live_socket(h, &srv, &peer);

  /* Ping + payload. */
  Netcore__V1__Ping ping = NETCORE__V1__PING__INIT;
  ping.nonce = 1;
  nct_cmd cmd = NETCORE__V1__COMMAND__INIT;
  cmd.command_case = NETCORE__V1__COMMAND__COMMAND_PING;
  cmd.ping = &ping;
  nct_send(h, &cmd, "extra", 5, 1);
  nct_event_free(nct_expect_error(h, "ERR_PAYLOAD"));

  /* Listen + payload: refused, nothing listens. */
  uint64_t bad_srv = nct_new_id(h);
  Netcore__V1__TcpEndpoint tcp = NETCORE__V1__TCP_ENDPOINT__INIT;
  tcp.host = "127.0.0.1";
  Netcore__V1__Listen l = NETCORE__V1__LISTEN__INIT;
  l.server_id = bad_srv;
  l.endpoint_case = NETCORE__V1__LISTEN__ENDPOINT_TCP;
  l.tcp = &tcp;
  cmd.command_case = NETCORE__V1__COMMAND__COMMAND_LISTEN;
  cmd.listen = &l;
  nct_send(h, &cmd, "extra", 5, 1);
  nct_event_free(nct_expect_error(h, "ERR_PAYLOAD"));

  /* Write without its payload. */
  Netcore__V1__Write w = NETCORE__V1__WRITE__INIT;
  w.socket_id = id;
  cmd.command_case = NETCORE__V1__COMMAND__COMMAND_WRITE;
  cmd.write = &w;
  nct_send(h, &cmd, NULL, 0, 0);
  nct_event_free(nct_expect_error(h, "ERR_PAYLOAD"));

  /* Write with two payload frames. */
  uint8_t env[64];
  size_t n = netcore__v1__command__pack(&cmd, env);
  const void *p[2] = {"one", "two"};
  const size_t lens[2] = {3, 3};
  nct_send_frames(h, env, n, 2, p, lens);
  nct_event_free(nct_expect_error(h, "ERR_PAYLOAD"));

  nct_expect_none(h, bad_srv, 0);
  nct_expect_none(h, id, 200);
  nct_peer_expect_quiet(peer, 200); /* none of those writes happened */
  nct_env_bystander_check(e);
  nct_cmd_write(h, id, "ok", 2);
  nct_peer_expect(peer, "ok", 2);
  drop_live_socket(h, srv, id, peer);
  nct_env_finish(e);
}

/* Every command naming an id that does not exist: EBADF, with the id. */
static void test_badinput_unknown_ids(void **state) {
  nct_env *e = *state;
  nct_client *h = start(e, "lost");
  const uint64_t ghosts[] = {0x777777ull, ((uint64_t)h->id_prefix << 32) | 0xffffff};
  for (int g = 0; g < 2; g++) {
    uint64_t id = ghosts[g];
    nct_cmd_write(h, id, "x", 1);
    nct_cmd_end(h, id, NULL, 0);
    nct_cmd_destroy(h, id);
    nct_cmd_pause(h, id);
    nct_cmd_resume(h, id);
    nct_cmd_credit(h, id, 100);
    nct_cmd_set_timeout(h, id, 100);
    nct_cmd_set_nodelay(h, id, 1);
    nct_cmd_set_keepalive(h, id, 1, 1000);
    const char *names[] = {"write",  "end",         "destroy",      "pause",         "resume",
                           "credit", "set_timeout", "set_no_delay", "set_keep_alive"};
    for (int i = 0; i < 9; i++) {
      nct_event *ev = nct_expect_error(h, "EBADF");
      assert_int_equal(ev->ev->error->socket_id, id);
      assert_string_equal(ev->ev->error->command, names[i]);
      nct_event_free(ev);
    }
    nct_cmd_server_pause(h, id, 100);
    nct_cmd_server_close(h, id);
    nct_cmd_server_set_max(h, id, 1);
    for (int i = 0; i < 3; i++) {
      nct_event *ev = nct_expect_error(h, "EBADF");
      assert_int_equal(ev->ev->error->server_id, id);
      nct_event_free(ev);
    }
  }
  nct_expect_silence(h, 200);
  nct_env_bystander_check(e);
  nct_env_finish(e);
}

/* Commands about another handler's socket or server: EBADF, exactly as for an
 * id that does not exist (PROTOCOL.md 3), and the owner notices nothing. */
static void test_badinput_foreign_objects(void **state) {
  nct_env *e = *state;
  nct_client *h = start(e, "meddler");
  uint64_t s = e->by_socket, srv = e->by_server;
  nct_cmd_write(h, s, "x", 1);
  nct_cmd_end(h, s, NULL, 0);
  nct_cmd_pause(h, s);
  nct_cmd_credit(h, s, 1);
  nct_cmd_set_timeout(h, s, 10);
  nct_cmd_set_nodelay(h, s, 1);
  nct_cmd_destroy(h, s);
  for (int i = 0; i < 7; i++) {
    nct_event *ev = nct_expect_error(h, "EBADF");
    assert_int_equal(ev->ev->error->socket_id, s);
    nct_event_free(ev);
  }
  nct_cmd_server_pause(h, srv, 5000);
  nct_cmd_server_set_max(h, srv, 1);
  nct_cmd_server_close(h, srv);
  for (int i = 0; i < 3; i++) {
    nct_event *ev = nct_expect_error(h, "EBADF");
    assert_int_equal(ev->ev->error->server_id, srv);
    nct_event_free(ev);
  }
  nct_expect_silence(h, 200);
  nct_peer_expect_quiet(e->by_peer, 200);
  nct_env_bystander_check(e);
  /* The server was neither paused, limited to 1 nor closed: a second
   * connection is accepted at once. */
  int second;
  uint64_t s2 = nct_accept_peer(e->observer, srv, e->by_port, &second);
  nct_close_both(e->observer, s2, second);
  nct_expect_none(e->observer, e->by_socket, 0);
  nct_env_finish(e);
}

static void test_badinput_bad_port(void **state) {
  nct_env *e = *state;
  nct_client *h = start(e, "ports");
  const int32_t bad[] = {-1, 65536, 100000, INT32_MIN};
  for (int i = 0; i < 4; i++) {
    uint64_t srv = nct_new_id(h);
    nct_cmd_listen_tcp(h, srv, "127.0.0.1", bad[i], 0, 0, 0, NULL);
    expect_server_error(h, srv, "ERR_SOCKET_BAD_PORT");
  }
  nct_env_bystander_check(e);
  nct_env_finish(e);
}

/* Connect with a bad port. Every outcome of a Connect is an event of the
 * socket it names (PROTOCOL.md 4): SocketError ERR_SOCKET_BAD_PORT, then
 * Closed{had_error}; client libraries also refuse the port before sending,
 * as Node's createConnection throws. */
static void test_badinput_connect_bad_port(void **state) {
  nct_env *e = *state;
  nct_client *h = start(e, "ports");
  const int32_t bad[] = {-1, 65536};
  for (int i = 0; i < 2; i++) {
    uint64_t id = nct_new_id(h);
    nct_cmd_connect_tcp(h, id, "127.0.0.1", bad[i], 0);
    nct_event *ev = nct_expect(h, SOCKET_ERROR, id);
    assert_string_equal(ev->ev->socket_error->code, "ERR_SOCKET_BAD_PORT");
    nct_event_free(ev);
    ev = nct_expect(h, CLOSED, id);
    assert_true(ev->ev->closed->had_error);
    nct_event_free(ev);
  }
  nct_env_bystander_check(e);
  nct_env_finish(e);
}

/* Hosts that are not IP literals and do not resolve: ENOTFOUND (PROTOCOL
 * §8, §10), for Listen as ServerError and for Connect asynchronously as
 * SocketError + Closed. */
static void test_badinput_invalid_host(void **state) {
  nct_env *e = *state;
  nct_client *h = start(e, "hosts");
  const char *hosts[] = {"not an ip!", "nonexistent.invalid"};
  for (int i = 0; i < 2; i++) {
    uint64_t srv = nct_new_id(h);
    nct_cmd_listen_tcp(h, srv, hosts[i], 0, 0, 0, 0, NULL);
    expect_server_error(h, srv, "ENOTFOUND");
  }
  uint64_t id = nct_new_id(h);
  nct_cmd_connect_tcp(h, id, "nonexistent.invalid", 80, 0);
  expect_socket_failure(h, id, "ENOTFOUND");
  nct_expect_silence(h, 200); /* asynchronous: no command Error */
  nct_env_bystander_check(e);
  nct_env_finish(e);
}

/* sun_path holds 107 bytes and a NUL: 107 works, 108 is ENAMETOOLONG. */
static void test_badinput_unix_path_too_long(void **state) {
  nct_env *e = *state;
  nct_client *h = start(e, "paths");
  char path[256];
  int base = snprintf(path, sizeof path, "%s/", e->d.dir);
  memset(path + base, 'p', sizeof path - (size_t)base);
  path[108] = '\0';
  uint64_t srv = nct_new_id(h);
  nct_cmd_listen_path(h, srv, path);
  nct_event *ev = nct_expect(h, SERVER_ERROR, srv);
  assert_string_equal(ev->ev->server_error->code, "ENAMETOOLONG");
  nct_event_free(ev);
  uint64_t id = nct_new_id(h);
  nct_cmd_connect_path(h, id, path);
  expect_socket_failure(h, id, "ENAMETOOLONG");

  path[107] = '\0';
  srv = nct_new_id(h);
  nct_cmd_listen_path(h, srv, path);
  ev = nct_expect(h, LISTENING, srv);
  assert_string_equal(ev->ev->listening->address->address, path);
  nct_event_free(ev);
  int peer = nct_unix_connect(path);
  ev = nct_expect_connection(h, srv);
  uint64_t s = ev->ev->connection->socket_id;
  nct_event_free(ev);
  nct_close_both(h, s, peer);
  nct_cmd_server_close(h, srv);
  nct_expect_drop(h, SERVER_CLOSED, srv);
  nct_env_bystander_check(e);
  nct_env_finish(e);
}

static void test_badinput_address_in_use(void **state) {
  nct_env *e = *state;
  nct_client *h = start(e, "squatter");
  uint16_t port = 0;
  int mine = nct_tcp_listen("127.0.0.1", &port); /* held by the test itself */
  uint64_t srv = nct_new_id(h);
  nct_cmd_listen_tcp(h, srv, "127.0.0.1", port, 0, 0, 0, NULL);
  expect_server_error(h, srv, "EADDRINUSE");
  /* The server id is dead. */
  nct_cmd_server_close(h, srv);
  nct_event_free(nct_expect_error(h, "EBADF"));
  close(mine);
  nct_env_bystander_check(e);
  nct_env_finish(e);
}

static void test_badinput_address_not_available(void **state) {
  nct_env *e = *state;
  nct_client *h = start(e, "elsewhere");
  uint64_t srv = nct_new_id(h);
  nct_cmd_listen_tcp(h, srv, "1.1.1.1", 0, 0, 0, 0, NULL);
  expect_server_error(h, srv, "EADDRNOTAVAIL");
  nct_env_bystander_check(e);
  nct_env_finish(e);
}

static void test_badinput_connect_refused(void **state) {
  nct_env *e = *state;
  nct_client *h = start(e, "refused");
  /* A bound but not listening socket: connections to it are refused, and
   * nobody else can take the port meanwhile. */
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  uint16_t port = nct_local_port(fd);
  uint64_t id = nct_new_id(h);
  nct_cmd_connect_tcp(h, id, "127.0.0.1", port, 0);
  nct_cmd_write(h, id, "queued", 6); /* queued behind the connect, never sent */
  expect_socket_failure(h, id, "ECONNREFUSED");
  nct_expect_none(h, id, 200);
  close(fd);
  nct_env_bystander_check(e);
  nct_env_finish(e);
}

static void test_badinput_connect_missing_path(void **state) {
  nct_env *e = *state;
  nct_client *h = start(e, "nopath");
  char path[256];
  nct_daemon_path(&e->d, "nobody-here.sock", path, sizeof path);
  uint64_t id = nct_new_id(h);
  nct_cmd_connect_path(h, id, path);
  expect_socket_failure(h, id, "ENOENT");

  /* A regular file: ECONNREFUSED (or ENOTSOCK), per the seed. */
  nct_daemon_path(&e->d, "plain-file", path, sizeof path);
  FILE *f = fopen(path, "w");
  fclose(f);
  id = nct_new_id(h);
  nct_cmd_connect_path(h, id, path);
  nct_event *ev = nct_expect(h, SOCKET_ERROR, id);
  const char *code = ev->ev->socket_error->code;
  if (strcmp(code, "ECONNREFUSED") != 0 && strcmp(code, "ENOTSOCK") != 0)
    nct_fail("connect to a regular file: %s, expected ECONNREFUSED or ENOTSOCK", code);
  nct_event_free(ev);
  ev = nct_expect(h, CLOSED, id);
  assert_true(ev->ev->closed->had_error);
  nct_event_free(ev);
  nct_env_bystander_check(e);
  nct_env_finish(e);
}

/* Write after End: SocketError EPIPE, then Closed{had_error}; what was
 * written before End still arrives, then the FIN. */
static void test_badinput_write_after_end(void **state) {
  nct_env *e = *state;
  nct_client *h = start(e, "late");
  uint64_t srv;
  int peer;
  uint64_t id = live_socket(h, &srv, &peer);
  nct_cmd_write(h, id, "before", 6);
  nct_cmd_end(h, id, NULL, 0);
  nct_cmd_write(h, id, "after", 5);
  nct_event *ev = nct_expect_skip(h, SOCKET_ERROR, id, NCT_SKIP(WRITE_ACK));
  assert_string_equal(ev->ev->socket_error->code, "EPIPE");
  nct_event_free(ev);
  ev = nct_expect(h, CLOSED, id);
  assert_true(ev->ev->closed->had_error);
  nct_event_free(ev);
  nct_peer_expect(peer, "before", 6);
  nct_peer_expect_eof(peer);
  close(peer);
  nct_cmd_server_close(h, srv);
  nct_expect_drop(h, SERVER_CLOSED, srv);
  nct_env_bystander_check(e);
  nct_env_finish(e);
}

/* Every socket command after Destroy: EBADF. */
static void test_badinput_commands_after_destroy(void **state) {
  nct_env *e = *state;
  nct_client *h = start(e, "zombie");
  uint64_t srv;
  int peer;
  uint64_t id = live_socket(h, &srv, &peer);
  nct_cmd_destroy(h, id);
  nct_expect_drop(h, CLOSED, id);
  nct_cmd_write(h, id, "x", 1);
  nct_cmd_end(h, id, "x", 1);
  nct_cmd_destroy(h, id);
  nct_cmd_pause(h, id);
  nct_cmd_resume(h, id);
  nct_cmd_credit(h, id, 10);
  nct_cmd_set_timeout(h, id, 10);
  nct_cmd_set_nodelay(h, id, 0);
  nct_cmd_set_keepalive(h, id, 0, 0);
  for (int i = 0; i < 9; i++) {
    nct_event *ev = nct_expect_error(h, "EBADF");
    assert_int_equal(ev->ev->error->socket_id, id);
    nct_event_free(ev);
  }
  nct_expect_silence(h, 200);
  nct_peer_expect_eof(peer);
  close(peer);
  nct_cmd_server_close(h, srv);
  nct_expect_drop(h, SERVER_CLOSED, srv);
  nct_env_bystander_check(e);
  nct_env_finish(e);
}

/* A handler flooding writes to a peer that never reads: its queue limit
 * stops it with ENOBUFS, later writes get EBADF, and netcore's memory stays
 * bounded by the limit, not by what the handler sent. */
static void test_badinput_flood_writes_bounded(void **state) {
  nct_env *e = *state;
  nct_client *h = start(e, "flooder");
  uint64_t srv;
  int peer;
  uint64_t id = live_socket(h, &srv, &peer);
  long rss0 = nct_rss_kib(e->d.pid), peak = rss0;
  const size_t limit = h->max_write_queue;
  enum { CHUNK = 64 * 1024 };
  const size_t total = 4 * limit + (64u << 20);
  uint8_t *buf = malloc(CHUNK);
  nct_pattern_fill(0, buf, CHUNK);
  for (size_t sent = 0; sent < total; sent += CHUNK) {
    nct_cmd_write(h, id, buf, CHUNK);
    if ((sent / CHUNK) % 16 == 0) {
      long r = nct_rss_kib(e->d.pid);
      if (r > peak) peak = r;
    }
  }
  free(buf);
  nct_event *ev = nct_expect_skip(h, SOCKET_ERROR, id, NCT_SKIP(WRITE_ACK));
  assert_string_equal(ev->ev->socket_error->code, "ENOBUFS");
  nct_event_free(ev);
  ev = nct_expect(h, CLOSED, id);
  assert_true(ev->ev->closed->had_error);
  nct_event_free(ev);
  nct_sync(h); /* every write has been handled */
  long r = nct_rss_kib(e->d.pid);
  if (r > peak) peak = r;
  /* Writes after the close are refused, each with an error, never silently. */
  int ebadf = 0;
  for (nct_event *x = h->inbox_head; x; x = x->next)
    if (x->ev->event_case == EV(ERROR)) {
      char s[512];
      if (strcmp(x->ev->error->code, "EBADF") != 0)
        nct_fail("flood: unexpected %s", nct_event_str(x, s, sizeof s));
      ebadf++;
    }
  if (ebadf == 0) nct_fail("writes after the ENOBUFS close were not refused");
  long growth = peak - rss0;
  long bound = (long)(limit / 1024) * 2 + 32 * 1024;
  if (growth > bound)
    nct_fail(
        "netcore's RSS grew by %ld KiB while a handler flooded %zu MiB (queue limit %zu KiB, "
        "bound %ld KiB)",
        growth, total >> 20, limit / 1024, bound);
  close(peer);
  nct_cmd_server_close(h, srv);
  nct_expect_drop(h, SERVER_CLOSED, srv);
  nct_env_bystander_check(e);
  nct_env_finish(e);
}

/* Ids must carry the handler's prefix and grow (PROTOCOL §3). */
static void test_badinput_id_rules(void **state) {
  nct_env *e = *state;
  nct_client *h = start(e, "ids");
  const uint64_t prefix = (uint64_t)h->id_prefix << 32;
  const uint64_t wrong[] = {
      ((uint64_t)(h->id_prefix + 1) << 32) | 1, /* someone else's prefix */
      0x1234,                                   /* netcore's prefix 0 */
  };
  for (int i = 0; i < 2; i++) {
    nct_cmd_listen_tcp(h, wrong[i], "127.0.0.1", 0, 0, 0, 0, NULL);
    nct_event *ev = nct_expect_error(h, "ERR_INVALID_ARG_VALUE");
    assert_string_equal(ev->ev->error->command, "listen");
    nct_event_free(ev);
    nct_cmd_connect_tcp(h, wrong[i], "127.0.0.1", 1, 0);
    ev = nct_expect_error(h, "ERR_INVALID_ARG_VALUE");
    assert_string_equal(ev->ev->error->command, "connect");
    nct_event_free(ev);
    nct_expect_none(h, wrong[i], 0);
  }
  /* A used id, even of a closed server, is never valid again. */
  uint16_t port;
  uint64_t srv = nct_listen_local(h, &port, 0);
  nct_cmd_server_close(h, srv);
  nct_expect_drop(h, SERVER_CLOSED, srv);
  nct_cmd_listen_tcp(h, srv, "127.0.0.1", 0, 0, 0, 0, NULL);
  nct_event_free(nct_expect_error(h, "ERR_INVALID_ARG_VALUE"));
  /* Nor is one below the largest used so far. */
  uint64_t high = prefix | 1000;
  nct_cmd_listen_tcp(h, high, "127.0.0.1", 0, 0, 0, 0, NULL);
  nct_expect_drop(h, LISTENING, high);
  nct_cmd_connect_tcp(h, prefix | 999, "127.0.0.1", port, 0);
  nct_event_free(nct_expect_error(h, "ERR_INVALID_ARG_VALUE"));
  nct_expect_none(h, prefix | 999, 200);
  nct_cmd_server_close(h, high);
  nct_expect_drop(h, SERVER_CLOSED, high);
  nct_env_bystander_check(e);
  nct_env_finish(e);
}

#define T(f) cmocka_unit_test_setup_teardown(f, nct_env_setup, nct_env_teardown)

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      T(test_badinput_malformed_protobuf),
      T(test_badinput_unknown_command),
      T(test_badinput_frame_too_large),
      T(test_badinput_payload_misplaced),
      T(test_badinput_unknown_ids),
      T(test_badinput_foreign_objects),
      T(test_badinput_bad_port),
      T(test_badinput_connect_bad_port),
      T(test_badinput_invalid_host),
      T(test_badinput_unix_path_too_long),
      T(test_badinput_address_in_use),
      T(test_badinput_address_not_available),
      T(test_badinput_connect_refused),
      T(test_badinput_connect_missing_path),
      T(test_badinput_write_after_end),
      T(test_badinput_commands_after_destroy),
      T(test_badinput_flood_writes_bounded),
      T(test_badinput_id_rules),
  };
  return NCT_RUN(argc, argv, tests);
}
