/* test_groups.c: shared listeners (Listen.group): two handlers, two DEALER
 * sockets, one listening socket; connections spread round robin; a member
 * that leaves hands the listener to the rest; no group means EADDRINUSE. */
#include <string.h>
#include <unistd.h>

#include "harness.h"

/* Both handlers join group g on 127.0.0.1:port (a listens first on port 0). */
static void join(nct_client *a, nct_client *b, const char *group, uint64_t *sa, uint64_t *sb,
                 uint16_t *port) {
  *sa = nct_new_id(a);
  nct_cmd_listen_tcp(a, *sa, "127.0.0.1", 0, 0, 0, 0, group);
  nct_event *ev = nct_expect(a, LISTENING, *sa);
  *port = (uint16_t)ev->ev->listening->address->port;
  nct_event_free(ev);
  *sb = nct_new_id(b);
  nct_cmd_listen_tcp(b, *sb, "127.0.0.1", *port, 0, 0, 0, group);
  ev = nct_expect(b, LISTENING, *sb);
  assert_int_equal(ev->ev->listening->address->port, *port);
  assert_string_equal(ev->ev->listening->address->address, "127.0.0.1");
  nct_event_free(ev);
}

/* Waits until a and b together hold `total` Connection events for their
 * servers; returns how many a got. */
static int gather(nct_client *a, uint64_t sa, nct_client *b, uint64_t sb, int total) {
  uint64_t deadline = nct_now_ms() + NCT_WAIT;
  int na, nb;
  for (;;) {
    na = nct_count_connections(a, sa);
    nb = nct_count_connections(b, sb);
    if (na + nb >= total || nct_now_ms() > deadline) break;
    nct_pump(a, 10);
    nct_pump(b, 10);
  }
  if (na + nb != total)
    nct_fail("the group got %d + %d connections, expected %d in all", na, nb, total);
  return na;
}

/* Takes every queued Connection of srv, writes a tag on it, returns the ids. */
static int serve_all(nct_client *h, uint64_t srv, char tag, uint64_t *ids) {
  int n = 0;
  nct_event *ev;
  while ((ev = nct_count_connections(h, srv) ? nct_expect_connection(h, srv) : NULL)) {
    ids[n++] = ev->ev->connection->socket_id;
    nct_event_free(ev);
    nct_cmd_write(h, ids[n - 1], &tag, 1);
  }
  return n;
}

static void test_groups_connections_spread(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_client *a = nct_env_handler(e, "a");
  nct_client *b = nct_env_handler(e, "b");
  uint64_t sa, sb;
  uint16_t port;
  join(a, b, "workers", &sa, &sb, &port);

  enum { K = 6 };
  int peers[K];
  for (int i = 0; i < K; i++) peers[i] = nct_tcp_connect("127.0.0.1", port);
  int na = gather(a, sa, b, sb, K);
  /* Round robin over two members. */
  if (na != K / 2) nct_fail("round robin over 2 members gave a %d of %d connections", na, K);

  /* Each peer is served by exactly one of them. */
  uint64_t ia[K], ib[K];
  int ka = serve_all(a, sa, 'a', ia), kb = serve_all(b, sb, 'b', ib);
  assert_int_equal(ka + kb, K);
  int seen_a = 0, seen_b = 0;
  for (int i = 0; i < K; i++) {
    char c;
    int eof;
    size_t got = nct_fd_read(peers[i], &c, 1, NCT_WAIT, &eof);
    if (got != 1) nct_fail("peer %d got no greeting from either member", i);
    seen_a += c == 'a';
    seen_b += c == 'b';
  }
  assert_int_equal(seen_a, ka);
  assert_int_equal(seen_b, kb);
  for (int i = 0; i < K; i++) close(peers[i]);
  for (int i = 0; i < ka; i++) {
    nct_event_free(nct_expect_skip(a, ENDED, ia[i], NCT_SKIP(WRITE_ACK)));
    nct_cmd_end(a, ia[i], NULL, 0);
    nct_event_free(nct_expect_skip(a, CLOSED, ia[i], NCT_SKIP(WRITE_ACK)));
  }
  for (int i = 0; i < kb; i++) {
    nct_event_free(nct_expect_skip(b, ENDED, ib[i], NCT_SKIP(WRITE_ACK)));
    nct_cmd_end(b, ib[i], NULL, 0);
    nct_event_free(nct_expect_skip(b, CLOSED, ib[i], NCT_SKIP(WRITE_ACK)));
  }
  nct_cmd_server_close(a, sa);
  nct_expect_drop(a, SERVER_CLOSED, sa);
  nct_cmd_server_close(b, sb);
  nct_expect_drop(b, SERVER_CLOSED, sb);
  nct_env_finish(e);
}

/* A member that says Bye leaves the listener to the other, which then gets
 * every connection; its own connections are unaffected. */
static void test_groups_member_leaves(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_client *a = nct_env_handler(e, "a");
  nct_client *b = nct_env_handler(e, "b");
  uint64_t sa, sb;
  uint16_t port;
  join(a, b, "workers", &sa, &sb, &port);

  /* a has a live connection before b leaves. */
  int p0 = nct_tcp_connect("127.0.0.1", port);
  int p0b = nct_tcp_connect("127.0.0.1", port);
  gather(a, sa, b, sb, 2);
  uint64_t ia[8], ib[8];
  int ka = serve_all(a, sa, 'a', ia), kb = serve_all(b, sb, 'b', ib);
  assert_int_equal(ka, 1);
  assert_int_equal(kb, 1);
  char c0, c1;
  int eof;
  assert_int_equal(nct_fd_read(p0, &c0, 1, NCT_WAIT, &eof), 1);
  assert_int_equal(nct_fd_read(p0b, &c1, 1, NCT_WAIT, &eof), 1);
  int pa = c0 == 'a' ? p0 : p0b, pb = c0 == 'a' ? p0b : p0;

  nct_env_release(e, b, 1); /* Bye */
  nct_peer_expect_eof(pb);  /* b's connection went with it */
  close(pb);

  enum { K = 4 };
  int peers[K];
  for (int i = 0; i < K; i++) {
    peers[i] = nct_tcp_connect("127.0.0.1", port);
    nct_event *ev = nct_expect_connection(a, sa);
    uint64_t id = ev->ev->connection->socket_id;
    nct_event_free(ev);
    nct_cmd_write(a, id, "A", 1);
    nct_peer_expect(peers[i], "A", 1);
    ia[ka++] = id;
  }
  /* a's first connection still works. */
  nct_peer_write(pa, "still", 5);
  nct_expect_data(a, ia[0], "still", 5);

  close(pa);
  for (int i = 0; i < K; i++) close(peers[i]);
  for (int i = 0; i < ka; i++) {
    nct_event_free(nct_expect_skip(a, ENDED, ia[i], NCT_SKIP(WRITE_ACK)));
    nct_cmd_end(a, ia[i], NULL, 0);
    nct_event_free(nct_expect_skip(a, CLOSED, ia[i], NCT_SKIP(WRITE_ACK)));
  }
  nct_cmd_server_close(a, sa);
  nct_expect_drop(a, SERVER_CLOSED, sa);
  /* With the last member gone, the port is free. */
  uint64_t again = nct_new_id(e->observer);
  nct_cmd_listen_tcp(e->observer, again, "127.0.0.1", port, 0, 0, 0, NULL);
  nct_expect_drop(e->observer, LISTENING, again);
  nct_cmd_server_close(e->observer, again);
  nct_expect_drop(e->observer, SERVER_CLOSED, again);
  nct_env_finish(e);
}

/* Without a group (or with a different one) a second listen is EADDRINUSE. */
static void test_groups_without_group_is_eaddrinuse(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_client *a = nct_env_handler(e, "a");
  nct_client *b = nct_env_handler(e, "b");
  uint16_t port;
  uint64_t sa = nct_listen_local(a, &port, 0); /* no group */
  const char *groups[] = {"", "workers"};
  for (int i = 0; i < 2; i++) {
    uint64_t sb = nct_new_id(b);
    nct_cmd_listen_tcp(b, sb, "127.0.0.1", port, 0, 0, 0, groups[i]);
    nct_event *ev = nct_expect(b, SERVER_ERROR, sb);
    assert_string_equal(ev->ev->server_error->code, "EADDRINUSE");
    nct_event_free(ev);
  }
  /* Two groups with different names do not share either. */
  uint64_t g1 = nct_new_id(a);
  nct_cmd_listen_tcp(a, g1, "127.0.0.1", 0, 0, 0, 0, "one");
  nct_event *ev = nct_expect(a, LISTENING, g1);
  uint16_t gport = (uint16_t)ev->ev->listening->address->port;
  nct_event_free(ev);
  uint64_t g2 = nct_new_id(b);
  nct_cmd_listen_tcp(b, g2, "127.0.0.1", gport, 0, 0, 0, "two");
  ev = nct_expect(b, SERVER_ERROR, g2);
  assert_string_equal(ev->ev->server_error->code, "EADDRINUSE");
  nct_event_free(ev);

  int peer;
  uint64_t s = nct_accept_peer(a, sa, port, &peer);
  nct_close_both(a, s, peer);
  nct_cmd_server_close(a, sa);
  nct_expect_drop(a, SERVER_CLOSED, sa);
  nct_cmd_server_close(a, g1);
  nct_expect_drop(a, SERVER_CLOSED, g1);
  nct_env_finish(e);
}

/* Shared UNIX path listeners work the same way. */
static void test_groups_unix_path_shared(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_client *a = nct_env_handler(e, "a");
  nct_client *b = nct_env_handler(e, "b");
  char path[256];
  nct_daemon_path(&e->d, "group.sock", path, sizeof path);
  uint64_t sa = nct_new_id(a), sb = nct_new_id(b);
  Netcore__V1__Listen m = NETCORE__V1__LISTEN__INIT;
  m.endpoint_case = NETCORE__V1__LISTEN__ENDPOINT_PATH;
  m.path = path;
  m.group = "ux";
  nct_cmd cmd = NETCORE__V1__COMMAND__INIT;
  cmd.command_case = NETCORE__V1__COMMAND__COMMAND_LISTEN;
  cmd.listen = &m;
  m.server_id = sa;
  nct_send(a, &cmd, NULL, 0, 0);
  nct_expect_drop(a, LISTENING, sa);
  m.server_id = sb;
  nct_send(b, &cmd, NULL, 0, 0);
  nct_event *ev = nct_expect(b, LISTENING, sb);
  assert_string_equal(ev->ev->listening->address->address, path);
  nct_event_free(ev);

  int peers[4];
  for (int i = 0; i < 4; i++) peers[i] = nct_unix_connect(path);
  int na = gather(a, sa, b, sb, 4);
  assert_int_equal(na, 2);
  uint64_t ia[4], ib[4];
  int ka = serve_all(a, sa, 'a', ia), kb = serve_all(b, sb, 'b', ib);
  /* Read the greetings first: closing a UNIX socket with unread data resets it. */
  for (int i = 0; i < 4; i++) {
    char c;
    int eof;
    assert_int_equal(nct_fd_read(peers[i], &c, 1, NCT_WAIT, &eof), 1);
    close(peers[i]);
  }
  for (int i = 0; i < ka; i++) {
    nct_event_free(nct_expect_skip(a, ENDED, ia[i], NCT_SKIP(WRITE_ACK)));
    nct_cmd_end(a, ia[i], NULL, 0);
    nct_event_free(nct_expect_skip(a, CLOSED, ia[i], NCT_SKIP(WRITE_ACK)));
  }
  for (int i = 0; i < kb; i++) {
    nct_event_free(nct_expect_skip(b, ENDED, ib[i], NCT_SKIP(WRITE_ACK)));
    nct_cmd_end(b, ib[i], NULL, 0);
    nct_event_free(nct_expect_skip(b, CLOSED, ib[i], NCT_SKIP(WRITE_ACK)));
  }
  nct_cmd_server_close(a, sa);
  nct_expect_drop(a, SERVER_CLOSED, sa);
  /* b still holds the path. */
  int late = nct_unix_connect(path);
  ev = nct_expect_connection(b, sb);
  uint64_t ls = ev->ev->connection->socket_id;
  nct_event_free(ev);
  nct_close_both(b, ls, late);
  nct_cmd_server_close(b, sb);
  nct_expect_drop(b, SERVER_CLOSED, sb);
  nct_env_finish(e);
}

#define T(f) cmocka_unit_test_setup_teardown(f, nct_env_setup, nct_env_teardown)

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      T(test_groups_connections_spread),
      T(test_groups_member_leaves),
      T(test_groups_without_group_is_eaddrinuse),
      T(test_groups_unix_path_shared),
  };
  return NCT_RUN(argc, argv, tests);
}
