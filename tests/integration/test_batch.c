/* test_batch.c: batches (PROTOCOL.md 1.1) through real sockets: a
 * CommandBatch carried out in order with one payload frame per Write; every
 * kind of bad batch answered with its own Error while the good commands of
 * the same batch still run; EventBatches for a handler that asked, never for
 * one that did not, with the events of one loop turn in one message. The
 * whole integration suite also runs with every handler asking for batched
 * events (ctest's integration_*_batched entries, NCT_BATCH_EVENTS=1). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define NPEERS 20

/* A command with ref, of the given case, pointing at a sub-message. */
#define CMD(var, ref_, kase, field, sub)                   \
  nct_cmd var = NETCORE__V1__COMMAND__INIT;                \
  var.ref = (ref_);                                        \
  var.command_case = NETCORE__V1__COMMAND__COMMAND_##kase; \
  var.field = (sub)

static nct_client *batching_handler(nct_env *e, const char *name) {
  nct_client *c = nct_client_new(e->d.endpoint, name, 0);
  c->batch_events = 1;
  nct_hello(c, 0, 60000);
  nct_env_adopt(e, c);
  return c;
}

/* Write, Write, SetNoDelay, Write, End in one message: the peer gets the bytes
 * in order, then EOF; acks count four writes (End is one). */
static void test_batch_commands_in_order(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_client *h = nct_env_handler(e, "batcher");
  uint16_t port;
  uint64_t srv = nct_listen_local(h, &port, 0);
  int peer;
  uint64_t id = nct_accept_peer(h, srv, port, &peer);

  Netcore__V1__Write w = NETCORE__V1__WRITE__INIT;
  w.socket_id = id;
  Netcore__V1__SetNoDelay nd = NETCORE__V1__SET_NO_DELAY__INIT;
  nd.socket_id = id;
  nd.enable = 1;
  Netcore__V1__End end = NETCORE__V1__END__INIT;
  end.socket_id = id;
  CMD(c1, 1, WRITE, write, &w);
  CMD(c2, 2, WRITE, write, &w);
  CMD(c3, 3, SET_NO_DELAY, set_no_delay, &nd);
  CMD(c4, 4, WRITE, write, &w);
  CMD(c5, 5, END, end, &end);
  nct_cmd *cmds[] = {&c1, &c2, &c3, &c4, &c5};
  const void *p[] = {"one,", "two,", "three"};
  const size_t l[] = {4, 4, 5};
  nct_send_batch(h, cmds, 5, 3, p, l);
  nct_peer_expect(peer, "one,two,three", 13);
  assert_int_equal(nct_peer_expect_eof(peer), 0);
  nct_wait_acks(h, id, 4, 13);
  close(peer);
  nct_event_free(nct_expect_skip(h, ENDED, id, NCT_SKIP(WRITE_ACK)));
  nct_event *closed = nct_expect_skip(h, CLOSED, id, NCT_SKIP(WRITE_ACK));
  assert_false(closed->ev->closed->had_error);
  nct_event_free(closed);
  nct_env_finish(e);
}

/* Every entry of a bad batch gets its own Error naming its ref; the good
 * entries around them still run, in order. */
static void test_batch_bad_entries(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_env_bystander_start(e);
  nct_client *h = nct_env_handler(e, "bad-batcher");
  uint16_t port;
  uint64_t srv = nct_listen_local(h, &port, 0);
  int peer;
  uint64_t id = nct_accept_peer(h, srv, port, &peer);

  Netcore__V1__Write w = NETCORE__V1__WRITE__INIT, stray = NETCORE__V1__WRITE__INIT;
  w.socket_id = id;
  stray.socket_id = (uint64_t)h->id_prefix << 32 | 999999; /* no such socket */
  Netcore__V1__Hello hello = NETCORE__V1__HELLO__INIT;
  hello.version = 1;
  Netcore__V1__CommandBatch inner = NETCORE__V1__COMMAND_BATCH__INIT;
  Netcore__V1__Ping ping = NETCORE__V1__PING__INIT;
  ping.nonce = 77;
  CMD(c1, 11, WRITE, write, &w);      /* "a" */
  CMD(c2, 12, WRITE, write, &stray);  /* "x": EBADF, its frame is used up */
  CMD(c3, 13, HELLO, hello, &hello);  /* not inside a batch */
  CMD(c4, 14, BATCH, batch, &inner);  /* batches do not nest */
  CMD(c5, 15, WRITE, write, &w);      /* "b" */
  CMD(c6, 16, PING, ping, &ping);
  CMD(c7, 17, WRITE, write, &w);      /* no frame left: ERR_PAYLOAD */
  nct_cmd *cmds[] = {&c1, &c2, &c3, &c4, &c5, &c6, &c7};
  const void *p[] = {"a", "x", "b"};
  const size_t l[] = {1, 1, 1};
  nct_send_batch(h, cmds, 7, 3, p, l);

  struct { uint64_t ref; const char *code, *command; } want[] = {
      {12, "EBADF", "write"},
      {13, "ERR_INVALID_ARG_VALUE", "hello"},
      {14, "ERR_INVALID_ARG_VALUE", "batch"},
      {17, "ERR_PAYLOAD", "write"},
  };
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    nct_event *err = nct_expect_global(h, ERROR);
    assert_int_equal(err->ev->error->ref, want[i].ref);
    assert_string_equal(err->ev->error->code, want[i].code);
    assert_string_equal(err->ev->error->command, want[i].command);
    nct_event_free(err);
    if (i == 2) { /* the Ping sits between the errors of refs 14 and 17 */
      nct_event *pong = nct_expect_global(h, PONG);
      assert_int_equal(pong->ev->pong->nonce, 77);
      nct_event_free(pong);
    }
  }
  nct_peer_expect(peer, "ab", 2);

  /* Frames left over after the last Write: one Error for the batch. */
  CMD(c8, 18, WRITE, write, &w);
  nct_cmd *one[] = {&c8};
  const void *p2[] = {"c", "extra", "extra"};
  const size_t l2[] = {1, 5, 5};
  nct_send_batch(h, one, 1, 3, p2, l2);
  nct_event *err = nct_expect_global(h, ERROR);
  assert_string_equal(err->ev->error->code, "ERR_PAYLOAD");
  assert_string_equal(err->ev->error->command, "batch");
  assert_non_null(strstr(err->ev->error->message, "2 payload frames"));
  nct_event_free(err);
  nct_peer_expect(peer, "c", 1);

  /* An End in a batch takes no frame: a frame for it is left over. */
  Netcore__V1__End end = NETCORE__V1__END__INIT;
  end.socket_id = id;
  CMD(c9, 19, END, end, &end);
  nct_cmd *ends[] = {&c9};
  const void *p3[] = {"late"};
  const size_t l3[] = {4};
  nct_send_batch(h, ends, 1, 1, p3, l3);
  err = nct_expect_global(h, ERROR);
  assert_string_equal(err->ev->error->code, "ERR_PAYLOAD");
  nct_event_free(err);
  assert_int_equal(nct_peer_expect_eof(peer), 0);
  close(peer);
  nct_event_free(nct_expect_skip(h, ENDED, id, NCT_SKIP(WRITE_ACK)));
  nct_event_free(nct_expect_skip(h, CLOSED, id, NCT_SKIP(WRITE_ACK)));
  nct_env_bystander_check(e);
  nct_env_finish(e);
}

/* A batch before Hello is refused like any command before Hello. */
static void test_batch_before_hello(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_client *c = nct_client_new(e->d.endpoint, "early", 0);
  nct_env_adopt(e, c);
  Netcore__V1__Ping ping = NETCORE__V1__PING__INIT;
  CMD(c1, 1, PING, ping, &ping);
  nct_cmd *cmds[] = {&c1};
  nct_send_batch(c, cmds, 1, 0, NULL, NULL);
  nct_event *err = nct_expect_error(c, "ERR_NO_HELLO");
  assert_string_equal(err->ev->error->command, "batch");
  nct_event_free(err);
  nct_env_finish(e);
}

/* NPEERS clients wait in the backlog of a paused server: when the pause ends
 * they are all accepted in one loop turn, and a handler that asked for
 * batches gets their Connection events in one message. Their data, written
 * while their sockets were paused, comes back in one message too once one
 * CommandBatch resumes them all. A handler that did not ask never gets a batch. */
static void test_batch_events_one_turn(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_client *h = batching_handler(e, "batched");
  uint16_t port;
  uint64_t srv = nct_listen_local(h, &port, 0);
  nct_cmd_server_pause(h, srv, 300);
  nct_sync(h);
  int peers[NPEERS];
  uint64_t ids[NPEERS];
  for (int i = 0; i < NPEERS; i++) peers[i] = nct_tcp_connect("127.0.0.1", port);
  int batch = -1;
  for (int i = 0; i < NPEERS; i++) {
    nct_event *c = nct_expect_connection(h, srv);
    ids[i] = c->ev->connection->socket_id;
    if (batch < 0) batch = c->batch;
    assert_true(c->batch > 0);
    assert_int_equal(c->batch, batch); /* all in the same message */
    nct_event_free(c);
  }
  Netcore__V1__Pause pz[NPEERS];
  Netcore__V1__Resume rs[NPEERS];
  nct_cmd pc[NPEERS], rc[NPEERS], *pcs[NPEERS], *rcs[NPEERS];
  for (int i = 0; i < NPEERS; i++) {
    netcore__v1__pause__init(&pz[i]);
    netcore__v1__resume__init(&rs[i]);
    netcore__v1__command__init(&pc[i]);
    netcore__v1__command__init(&rc[i]);
    pz[i].socket_id = rs[i].socket_id = ids[i];
    pc[i].command_case = NETCORE__V1__COMMAND__COMMAND_PAUSE, pc[i].pause = &pz[i];
    rc[i].command_case = NETCORE__V1__COMMAND__COMMAND_RESUME, rc[i].resume = &rs[i];
    pcs[i] = &pc[i];
    rcs[i] = &rc[i];
  }
  nct_send_batch(h, pcs, NPEERS, 0, NULL, NULL);
  nct_sync(h);
  /* The peers do not know which accepted socket is theirs: each sends its
   * own index, and each socket's Data tells which peer it is. */
  for (int i = 0; i < NPEERS; i++) {
    char msg[8];
    snprintf(msg, sizeof msg, "p%02d", i);
    nct_peer_write(peers[i], msg, 3);
  }
  usleep(100 * 1000); /* let every byte reach netcore's receive buffers */
  nct_send_batch(h, rcs, NPEERS, 0, NULL, NULL);
  batch = -1;
  int seen[NPEERS] = {0};
  for (int i = 0; i < NPEERS; i++) {
    char got[4] = {0};
    nct_event *d = nct_take(h, EV(DATA), ids[i], NCT_WAIT);
    if (!d) nct_fail("no Data for socket %d", i);
    assert_int_equal(d->len, 3);
    memcpy(got, d->data, 3);
    int who = atoi(got + 1);
    assert_true(got[0] == 'p' && who >= 0 && who < NPEERS && !seen[who]);
    seen[who] = 1;
    if (batch < 0) batch = d->batch;
    assert_true(d->batch > 0);
    assert_int_equal(d->batch, batch);
    nct_event_free(d);
    nct_cmd_write(h, ids[i], "ok", 2);
  }
  for (int i = 0; i < NPEERS; i++) {
    nct_peer_expect(peers[i], "ok", 2);
    close(peers[i]);
  }
  for (int i = 0; i < NPEERS; i++) {
    nct_event_free(nct_expect_skip(h, ENDED, ids[i], NCT_SKIP(WRITE_ACK)));
    nct_cmd_end(h, ids[i], NULL, 0);
    nct_event_free(nct_expect_skip(h, CLOSED, ids[i], NCT_SKIP(WRITE_ACK)));
  }
  assert_true(h->batches >= 2);

  /* The same burst of connections to a handler that did not ask: no batch
   * (the harness fails on any EventBatch it did not ask for). */
  nct_client *plain = nct_client_new(e->d.endpoint, "plain", 0);
  plain->batch_events = 0;
  nct_hello(plain, 0, 60000);
  nct_env_adopt(e, plain);
  srv = nct_listen_local(plain, &port, 0);
  nct_cmd_server_pause(plain, srv, 300);
  nct_sync(plain);
  for (int i = 0; i < NPEERS; i++) peers[i] = nct_tcp_connect("127.0.0.1", port);
  for (int i = 0; i < NPEERS; i++) {
    nct_event *c = nct_expect_connection(plain, srv);
    assert_int_equal(c->batch, 0);
    ids[i] = c->ev->connection->socket_id;
    nct_event_free(c);
  }
  for (int i = 0; i < NPEERS; i++) {
    close(peers[i]);
    nct_expect_drop(plain, ENDED, ids[i]);
    nct_cmd_end(plain, ids[i], NULL, 0);
    nct_event_free(nct_expect_skip(plain, CLOSED, ids[i], NCT_SKIP(WRITE_ACK)));
  }
  assert_int_equal(plain->batches, 0);
  nct_env_finish(e);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_batch_commands_in_order, nct_env_setup, nct_env_teardown),
      cmocka_unit_test_setup_teardown(test_batch_bad_entries, nct_env_setup, nct_env_teardown),
      cmocka_unit_test_setup_teardown(test_batch_before_hello, nct_env_setup, nct_env_teardown),
      cmocka_unit_test_setup_teardown(test_batch_events_one_turn, nct_env_setup, nct_env_teardown),
  };
  return NCT_RUN(argc, argv, tests);
}
