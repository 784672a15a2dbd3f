/* test_limits.c: netcore's command-line limits, each provoked through real
 * sockets: --max-connections, --max-write-queue, --credit-window,
 * --max-frame. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

/* --max-connections N: sockets past N in all are accepted and closed at
 * once, unseen by handlers; a freed place is used again. */
static void test_limits_max_connections_total(void **state) {
  nct_env *e = *state;
  const char *flags[] = {"--max-connections", "3", NULL};
  nct_env_start(e, flags);
  nct_client *a = nct_env_handler(e, "a");
  nct_client *b = nct_env_handler(e, "b");
  uint16_t pa, pb;
  uint64_t sa = nct_listen_local(a, &pa, 0);
  uint64_t sb = nct_listen_local(b, &pb, 0);
  int peers[3];
  uint64_t ids[3];
  /* Two servers of two handlers share the total. */
  ids[0] = nct_accept_peer(a, sa, pa, &peers[0]);
  ids[1] = nct_accept_peer(b, sb, pb, &peers[1]);
  ids[2] = nct_accept_peer(a, sa, pa, &peers[2]);
  for (int i = 0; i < 2; i++) {
    int extra = nct_tcp_connect("127.0.0.1", i ? pb : pa);
    nct_peer_expect_eof(extra);
    close(extra);
  }
  nct_expect_no_connection(a, sa, NCT_QUIET);
  nct_expect_no_connection(b, sb, 0);
  /* The accepted ones still work. */
  nct_peer_write(peers[1], "b?", 2);
  nct_expect_data(b, ids[1], "b?", 2);

  nct_close_both(a, ids[0], peers[0]);
  int next;
  uint64_t nid = nct_accept_peer(b, sb, pb, &next);
  nct_cmd_write(b, nid, "in", 2);
  nct_peer_expect(next, "in", 2);
  nct_close_both(b, nid, next);
  nct_close_both(b, ids[1], peers[1]);
  nct_close_both(a, ids[2], peers[2]);
  nct_cmd_server_close(a, sa);
  nct_expect_drop(a, SERVER_CLOSED, sa);
  nct_cmd_server_close(b, sb);
  nct_expect_drop(b, SERVER_CLOSED, sb);
  nct_env_finish(e);
}

/* --max-write-queue: writing to a peer that never reads ends with
 * SocketError ENOBUFS then Closed{had_error}, never silently. */
static void test_limits_max_write_queue(void **state) {
  nct_env *e = *state;
  const char *flags[] = {"--max-write-queue", "65536", NULL};
  nct_env_start(e, flags);
  nct_client *h = nct_env_handler(e, "writer");
  assert_int_equal(h->max_write_queue, 65536);
  uint16_t port;
  uint64_t srv = nct_listen_local(h, &port, 0);
  int peer;
  uint64_t id = nct_accept_peer(h, srv, port, &peer);

  enum { CHUNK = 16 * 1024 };
  uint8_t *buf = malloc(CHUNK);
  nct_pattern_fill(0, buf, CHUNK);
  size_t sent = 0, limit = 256u << 20;
  uint64_t max_queued = 0;
  nct_event *err = NULL;
  while (!err && sent < limit) {
    nct_cmd_write(h, id, buf, CHUNK);
    sent += CHUNK;
    nct_pump(h, 0);
    nct_event *ack;
    while ((ack = nct_take(h, EV(WRITE_ACK), id, 0))) {
      if (ack->ev->write_ack->queued_bytes > max_queued)
        max_queued = ack->ev->write_ack->queued_bytes;
      nct_event_free(ack);
    }
    err = nct_take(h, EV(SOCKET_ERROR), id, 0);
  }
  free(buf);
  if (!err) {
    /* Everything sent might still be in flight: wait for the verdict. */
    err = nct_take(h, EV(SOCKET_ERROR), id, NCT_WAIT);
    if (!err) nct_fail("%zu bytes written to a peer that never reads, and no ENOBUFS", sent);
  }
  assert_string_equal(err->ev->socket_error->code, "ENOBUFS");
  nct_event_free(err);
  if (max_queued > 65536)
    nct_fail("WriteAck reported %llu bytes queued, over the 65536 limit",
             (unsigned long long)max_queued);
  nct_event *ev = nct_expect_skip(h, CLOSED, id, NCT_SKIP(WRITE_ACK));
  assert_true(ev->ev->closed->had_error);
  nct_event_free(ev);
  close(peer);
  nct_cmd_server_close(h, srv);
  nct_expect_drop(h, SERVER_CLOSED, srv);
  nct_env_finish(e);
}

/* --credit-window: the default window of every handler. */
static void test_limits_credit_window(void **state) {
  nct_env *e = *state;
  const char *flags[] = {"--credit-window", "1000", NULL};
  nct_env_start(e, flags);
  nct_client *h = nct_env_handler(e, "reader");
  assert_int_equal(h->credit_window, 1000);
  uint16_t port;
  uint64_t srv = nct_listen_local(h, &port, 0);
  int peer;
  uint64_t id = nct_accept_peer(h, srv, port, &peer);
  uint8_t buf[10000], got[10000];
  nct_pattern_fill(0, buf, sizeof buf);
  nct_peer_write(peer, buf, sizeof buf);
  nct_read_data(h, id, got, 1000);
  nct_expect_none(h, id, NCT_QUIET);
  nct_cmd_credit(h, id, 9000 + 1000);
  nct_read_data(h, id, got + 1000, 9000);
  assert_int_equal(nct_pattern_check(0, got, sizeof got), -1);
  nct_close_both(h, id, peer);
  nct_cmd_server_close(h, srv);
  nct_expect_drop(h, SERVER_CLOSED, srv);
  nct_env_finish(e);
}

/* --max-frame: a larger frame (payload or envelope) is refused with
 * EMSGSIZE; netcore keeps serving the sender and everyone else. */
static void test_limits_max_frame(void **state) {
  nct_env *e = *state;
  const char *flags[] = {"--max-frame", "4096", NULL};
  nct_env_start(e, flags);
  nct_env_bystander_start(e);
  nct_client *h = nct_env_handler(e, "framer");
  assert_int_equal(h->max_frame, 4096);
  uint16_t port;
  uint64_t srv = nct_listen_local(h, &port, 0);
  int peer;
  uint64_t id = nct_accept_peer(h, srv, port, &peer);

  uint8_t *big = malloc(8192);
  nct_pattern_fill(0, big, 8192);
  Netcore__V1__Write w = NETCORE__V1__WRITE__INIT;
  w.socket_id = id;
  nct_cmd cmd = NETCORE__V1__COMMAND__INIT;
  cmd.ref = 41;
  cmd.command_case = NETCORE__V1__COMMAND__COMMAND_WRITE;
  cmd.write = &w;
  nct_send(h, &cmd, big, 4097, 1);
  nct_event *ev = nct_expect_error(h, "EMSGSIZE");
  assert_int_equal(ev->ev->error->ref, 41);
  nct_event_free(ev);
  nct_peer_expect_quiet(peer, 200); /* nothing of it was written */

  /* An envelope over the limit. */
  char *group = malloc(5000);
  memset(group, 'g', 4999);
  group[4999] = '\0';
  uint64_t big_srv = nct_new_id(h);
  nct_cmd_listen_tcp(h, big_srv, "127.0.0.1", 0, 0, 0, 0, group);
  nct_event_free(nct_expect_error(h, "EMSGSIZE"));
  free(group);
  nct_env_bystander_check(e);

  /* Exactly the limit is fine. */
  nct_cmd_write(h, id, big, 4096);
  nct_peer_expect(peer, big, 4096);
  nct_wait_acks(h, id, 1, 4096);
  free(big);
  nct_close_both(h, id, peer);
  nct_cmd_server_close(h, srv);
  nct_expect_drop(h, SERVER_CLOSED, srv);
  nct_env_finish(e);
}

#define T(f) cmocka_unit_test_setup_teardown(f, nct_env_setup, nct_env_teardown)

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      T(test_limits_max_connections_total),
      T(test_limits_max_write_queue),
      T(test_limits_credit_window),
      T(test_limits_max_frame),
  };
  return NCT_RUN(argc, argv, tests);
}
