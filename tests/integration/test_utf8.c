/* test_utf8.c: only valid UTF-8 in string fields, both ways (PROTOCOL.md 1.2).
 * UNIX paths that are not UTF-8 (a peer bound to one, Listen/Connect with
 * path_bytes, error messages that quote one) reach the handler as valid UTF-8
 * plus the exact bytes in Address.address_bytes; commands with invalid UTF-8
 * in a string field get ERR_INVALID_ARG_VALUE and change nothing. Every event
 * the tests look at has all its string fields checked with glibc's iconv, a
 * validator independent of netcore's. */
#include <errno.h>
#include <iconv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "harness.h"

/* Two invalid bytes, an overlong NUL and a lone surrogate. */
#define BAD "\xff\xfe-\xc0\x80-\xed\xa0\x80"
/* What U+FFFD substitution of maximal subparts makes of BAD (one U+FFFD per
 * invalid byte here: none of them starts a sequence that could go on). */
#define FFFD "\xef\xbf\xbd"
#define BAD_SHOWN FFFD FFFD "-" FFFD FFFD "-" FFFD FFFD FFFD

static int utf8_ok(const char *s, size_t n) {
  iconv_t cd = iconv_open("UTF-32LE", "UTF-8");
  if (cd == (iconv_t)-1) nct_fail("iconv_open: %s", strerror(errno));
  char *in = (char *)s, out[4096];
  size_t left = n;
  int ok = 1;
  while (left > 0 && ok) {
    char *o = out;
    size_t room = sizeof out;
    if (iconv(cd, &in, &left, &o, &room) == (size_t)-1 && errno != E2BIG) ok = 0;
  }
  iconv_close(cd);
  return ok;
}

/* Asserts that every string field under m is valid UTF-8. */
static void check_strings(const ProtobufCMessage *m, const char *where) {
  const ProtobufCMessageDescriptor *d = m->descriptor;
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    const char *member = (const char *)m + f->offset;
    if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
        *(const uint32_t *)((const char *)m + f->quantifier_offset) != f->id)
      continue;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
      size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
      ProtobufCMessage *const *subs = *(ProtobufCMessage *const *const *)member;
      for (size_t k = 0; f->type == PROTOBUF_C_TYPE_MESSAGE && k < n; k++)
        check_strings(subs[k], where);
      continue;
    }
    if (f->type == PROTOBUF_C_TYPE_STRING) {
      const char *s = *(char *const *)member;
      if (s && !utf8_ok(s, strlen(s)))
        nct_fail("%s: %s.%s is not valid UTF-8: \"%s\"", where, d->short_name, f->name, s);
    } else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
      const ProtobufCMessage *sub = *(ProtobufCMessage *const *)member;
      if (sub) check_strings(sub, where);
    }
  }
}

static nct_event *checked(nct_event *e, const char *where) {
  check_strings(&e->ev->base, where);
  return e;
}

static void set_path(struct sockaddr_un *sa, const char *path) {
  if (strlen(path) >= sizeof sa->sun_path) nct_fail("path %s is too long", path);
  memcpy(sa->sun_path, path, strlen(path) + 1);
}

static void bind_path(int fd, const char *path) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  set_path(&sa, path);
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
    nct_fail("bind(%s): %s", path, strerror(errno));
}

/* A UNIX peer bound to `self` connected to `target`. */
static int peer_bound_at(const char *self, const char *target) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  bind_path(fd, self);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  set_path(&sa, target);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
    nct_fail("connect(%s): %s", target, strerror(errno));
  return fd;
}

static void listen_path_bytes(nct_client *h, uint64_t srv, const void *bytes, size_t n) {
  Netcore__V1__Listen m = NETCORE__V1__LISTEN__INIT;
  m.server_id = srv;
  m.endpoint_case = NETCORE__V1__LISTEN__ENDPOINT_PATH_BYTES;
  m.path_bytes.data = (uint8_t *)bytes;
  m.path_bytes.len = n;
  nct_cmd cmd = NETCORE__V1__COMMAND__INIT;
  cmd.command_case = NETCORE__V1__COMMAND__COMMAND_LISTEN;
  cmd.listen = &m;
  nct_send(h, &cmd, NULL, 0, 0);
}

static void connect_path_bytes(nct_client *h, uint64_t sock, const void *bytes, size_t n) {
  Netcore__V1__Connect m = NETCORE__V1__CONNECT__INIT;
  m.socket_id = sock;
  m.endpoint_case = NETCORE__V1__CONNECT__ENDPOINT_PATH_BYTES;
  m.path_bytes.data = (uint8_t *)bytes;
  m.path_bytes.len = n;
  nct_cmd cmd = NETCORE__V1__COMMAND__INIT;
  cmd.command_case = NETCORE__V1__COMMAND__COMMAND_CONNECT;
  cmd.connect = &m;
  nct_send(h, &cmd, NULL, 0, 0);
}

/* a is a UNIX address whose path is `path` (not UTF-8) shown as `shown`. */
static void expect_bytes_address(const nct_addr *a, const char *path, const char *shown) {
  assert_non_null(a);
  assert_int_equal(a->family, FAM(UNIX));
  if (strcmp(a->address, shown) != 0)
    nct_fail("address \"%s\", expected the display form \"%s\"", a->address, shown);
  if (a->address_bytes.len != strlen(path) || memcmp(a->address_bytes.data, path, strlen(path)))
    nct_fail("address_bytes (%zu bytes) are not the exact path %s", a->address_bytes.len, path);
}

static void exchange(nct_client *h, uint64_t sock, int peer) {
  nct_peer_write(peer, "ping", 4);
  nct_expect_data(h, sock, "ping", 4);
  nct_cmd_write(h, sock, "pong", 4);
  nct_peer_expect(peer, "pong", 4);
  nct_wait_acks(h, sock, 1, 4);
}

/* The case: a peer bound to a non-UTF-8 path connects to a UNIX
 * server. Connection.remote shows it in valid UTF-8, with the exact bytes. */
static void test_utf8_peer_bound_to_non_utf8_path(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_client *h = nct_env_handler(e, "unix");
  char srv_path[256], peer_path[256], shown[512];
  nct_daemon_path(&e->d, "srv.sock", srv_path, sizeof srv_path);
  nct_daemon_path(&e->d, "peer-" BAD, peer_path, sizeof peer_path);
  nct_daemon_path(&e->d, "peer-" BAD_SHOWN, shown, sizeof shown);
  uint64_t srv = nct_new_id(h);
  nct_cmd_listen_path(h, srv, srv_path);
  nct_event *ev = checked(nct_expect(h, LISTENING, srv), "Listening");
  assert_int_equal(ev->ev->listening->address->address_bytes.len, 0); /* UTF-8: no bytes */
  nct_event_free(ev);

  int peer = peer_bound_at(peer_path, srv_path);
  ev = checked(nct_expect_connection(h, srv), "Connection");
  Netcore__V1__Connection *c = ev->ev->connection;
  expect_bytes_address(c->remote, peer_path, shown);
  assert_string_equal(c->local->address, srv_path);
  assert_int_equal(c->local->address_bytes.len, 0);
  uint64_t sock = c->socket_id;
  nct_event_free(ev);
  exchange(h, sock, peer);
  nct_close_both(h, sock, peer);
  unlink(peer_path);
  nct_cmd_server_close(h, srv);
  nct_expect_drop(h, SERVER_CLOSED, srv);
  nct_env_finish(e);
}

/* Listen and Connect with path_bytes: the server binds the exact bytes, its
 * address and its connections' local addresses carry them, ServerClose unlinks
 * them; a Connect reaches a listener bound to such a path. */
static void test_utf8_listen_and_connect_path_bytes(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_client *h = nct_env_handler(e, "bytes");
  char path[256], shown[512];
  nct_daemon_path(&e->d, "srv-" BAD, path, sizeof path);
  nct_daemon_path(&e->d, "srv-" BAD_SHOWN, shown, sizeof shown);
  uint64_t srv = nct_new_id(h);
  listen_path_bytes(h, srv, path, strlen(path));
  nct_event *ev = checked(nct_expect(h, LISTENING, srv), "Listening");
  expect_bytes_address(ev->ev->listening->address, path, shown);
  nct_event_free(ev);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_true(S_ISSOCK(st.st_mode));

  int peer = nct_unix_connect(path);
  ev = checked(nct_expect_connection(h, srv), "Connection");
  expect_bytes_address(ev->ev->connection->local, path, shown);
  uint64_t sock = ev->ev->connection->socket_id;
  nct_event_free(ev);
  exchange(h, sock, peer);
  nct_close_both(h, sock, peer);
  nct_cmd_server_close(h, srv);
  nct_expect_drop(h, SERVER_CLOSED, srv);
  if (stat(path, &st) == 0) nct_fail("%s still exists after ServerClosed", path);

  /* Outbound: a listener of the test bound to a non-UTF-8 path. */
  char target[256], target_shown[512];
  nct_daemon_path(&e->d, "up-" BAD, target, sizeof target);
  nct_daemon_path(&e->d, "up-" BAD_SHOWN, target_shown, sizeof target_shown);
  int lfd = nct_unix_listen(target);
  uint64_t out = nct_new_id(h);
  connect_path_bytes(h, out, target, strlen(target));
  int up = nct_accept(lfd, NCT_WAIT);
  assert_true(up >= 0);
  ev = checked(nct_expect(h, CONNECTED, out), "Connected");
  expect_bytes_address(ev->ev->connected->remote, target, target_shown);
  nct_event_free(ev);
  exchange(h, out, up);
  nct_close_both(h, out, up);
  close(lfd);
  unlink(target);
  nct_env_finish(e);
}

/* A command with invalid UTF-8 in a string field is refused as a whole with
 * ERR_INVALID_ARG_VALUE naming the field; nothing is created and the id stays
 * free. Alone and inside a batch. */
static void test_utf8_invalid_strings_rejected(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_env_bystander_start(e);
  nct_client *h = nct_env_handler(e, "strict");
  char path[256];
  nct_daemon_path(&e->d, "x-" BAD, path, sizeof path);

  uint64_t srv = nct_new_id(h);
  nct_cmd_listen_path(h, srv, path); /* a string field with invalid UTF-8 */
  nct_event *ev = checked(nct_expect_error(h, "ERR_INVALID_ARG_VALUE"), "Error");
  Netcore__V1__Error *err = ev->ev->error;
  assert_string_equal(err->command, "listen");
  assert_int_equal(err->server_id, srv);
  if (!strstr(err->message, "listen.path") || !strstr(err->message, "path_bytes"))
    nct_fail("message \"%s\" should name listen.path and point to path_bytes", err->message);
  nct_event_free(ev);
  nct_expect_none(h, srv, NCT_QUIET);
  struct stat st;
  if (stat(path, &st) == 0) nct_fail("a refused Listen created %s", path);

  /* The id was not used: the same Listen as path_bytes works. */
  listen_path_bytes(h, srv, path, strlen(path));
  nct_event_free(checked(nct_expect(h, LISTENING, srv), "Listening"));

  nct_cmd_listen_tcp(h, nct_new_id(h), "127.0.0.1", 0, 0, 0, 0, "g-\xff");
  ev = checked(nct_expect_error(h, "ERR_INVALID_ARG_VALUE"), "Error");
  if (!strstr(ev->ev->error->message, "listen.group"))
    nct_fail("message \"%s\" should name listen.group", ev->ev->error->message);
  nct_event_free(ev);

  uint64_t sock = nct_new_id(h);
  nct_cmd_connect_tcp(h, sock, "local\xc3host", 1, 0);
  ev = checked(nct_expect_error(h, "ERR_INVALID_ARG_VALUE"), "Error");
  assert_string_equal(ev->ev->error->command, "connect");
  assert_int_equal(ev->ev->error->socket_id, sock);
  if (!strstr(ev->ev->error->message, "connect.tcp.host"))
    nct_fail("message \"%s\" should name connect.tcp.host", ev->ev->error->message);
  nct_event_free(ev);
  nct_expect_none(h, sock, NCT_QUIET);

  /* path_bytes must still be a C string. */
  connect_path_bytes(h, nct_new_id(h), "/tmp/a\0b", 8);
  ev = checked(nct_expect_error(h, "ERR_INVALID_ARG_VALUE"), "Error");
  if (!strstr(ev->ev->error->message, "NUL"))
    nct_fail("message \"%s\" should say path_bytes holds a NUL", ev->ev->error->message);
  nct_event_free(ev);

  /* In a batch: the bad entry alone is refused, the next runs. */
  Netcore__V1__Listen bad = NETCORE__V1__LISTEN__INIT;
  bad.server_id = nct_new_id(h);
  bad.endpoint_case = NETCORE__V1__LISTEN__ENDPOINT_PATH;
  bad.path = path;
  nct_cmd c1 = NETCORE__V1__COMMAND__INIT, c2 = NETCORE__V1__COMMAND__INIT;
  c1.command_case = NETCORE__V1__COMMAND__COMMAND_LISTEN;
  c1.listen = &bad;
  c1.ref = 77;
  Netcore__V1__Ping ping = NETCORE__V1__PING__INIT;
  ping.nonce = 4242;
  c2.command_case = NETCORE__V1__COMMAND__COMMAND_PING;
  c2.ping = &ping;
  nct_cmd *cmds[] = {&c1, &c2};
  nct_send_batch(h, cmds, 2, 0, NULL, NULL);
  ev = checked(nct_expect_error(h, "ERR_INVALID_ARG_VALUE"), "Error");
  assert_int_equal(ev->ev->error->ref, 77);
  nct_event_free(ev);
  ev = nct_expect_global(h, PONG);
  assert_int_equal(ev->ev->pong->nonce, 4242);
  nct_event_free(ev);

  /* A Hello whose name is not UTF-8 gets no Welcome. */
  nct_client *x = nct_client_new(e->d.endpoint, "badname", 0);
  nct_env_adopt(e, x);
  Netcore__V1__Hello hello = NETCORE__V1__HELLO__INIT;
  hello.version = 1;
  hello.name = "echo-\xff";
  nct_cmd hc = NETCORE__V1__COMMAND__INIT;
  hc.command_case = NETCORE__V1__COMMAND__COMMAND_HELLO;
  hc.hello = &hello;
  nct_send(x, &hc, NULL, 0, 0);
  ev = checked(nct_expect_error(x, "ERR_INVALID_ARG_VALUE"), "Error");
  if (!strstr(ev->ev->error->message, "hello.name"))
    nct_fail("message \"%s\" should name hello.name", ev->ev->error->message);
  nct_event_free(ev);
  nct_cmd_ping(x, 1);
  nct_event_free(nct_expect_error(x, "ERR_NO_HELLO"));
  nct_env_release(e, x, 0);

  nct_cmd_server_close(h, srv);
  nct_expect_drop(h, SERVER_CLOSED, srv);
  nct_env_bystander_check(e);
  nct_env_finish(e);
}

/* Error messages that quote a path which is not UTF-8 are valid UTF-8 (with
 * U+FFFD for the invalid sequences): a listen on a regular file, a path that
 * is too long, a connect to nothing. */
static void test_utf8_error_messages_quoting_paths(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_client *h = nct_env_handler(e, "errors");
  char file[256], shown[512];
  nct_daemon_path(&e->d, "file-" BAD, file, sizeof file);
  nct_daemon_path(&e->d, "file-" BAD_SHOWN, shown, sizeof shown);
  FILE *f = fopen(file, "w");
  assert_non_null(f);
  fclose(f);

  uint64_t srv = nct_new_id(h);
  listen_path_bytes(h, srv, file, strlen(file));
  nct_event *ev = checked(nct_expect(h, SERVER_ERROR, srv), "ServerError");
  if (!strstr(ev->ev->server_error->message, shown))
    nct_fail("message \"%s\" does not show the path as \"%s\"", ev->ev->server_error->message,
             shown);
  nct_event_free(ev);
  unlink(file);

  char lng[200];
  memset(lng, '\xff', sizeof lng);
  srv = nct_new_id(h);
  listen_path_bytes(h, srv, lng, sizeof lng);
  ev = checked(nct_expect(h, SERVER_ERROR, srv), "ServerError");
  assert_string_equal(ev->ev->server_error->code, "ENAMETOOLONG");
  nct_event_free(ev);

  char none[256];
  nct_daemon_path(&e->d, "none-" BAD, none, sizeof none);
  uint64_t sock = nct_new_id(h);
  connect_path_bytes(h, sock, none, strlen(none));
  ev = checked(nct_expect(h, SOCKET_ERROR, sock), "SocketError");
  assert_string_equal(ev->ev->socket_error->code, "ENOENT");
  nct_event_free(ev);
  nct_event_free(checked(nct_expect(h, CLOSED, sock), "Closed"));
  nct_env_finish(e);
}

int main(int argc, char **argv) {
#define T(f) cmocka_unit_test_setup_teardown(f, nct_env_setup, nct_env_teardown)
  const struct CMUnitTest tests[] = {
      T(test_utf8_peer_bound_to_non_utf8_path),
      T(test_utf8_listen_and_connect_path_bytes),
      T(test_utf8_invalid_strings_rejected),
      T(test_utf8_error_messages_quoting_paths),
  };
  return NCT_RUN(argc, argv, tests);
}
