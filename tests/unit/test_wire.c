/* Unit tests of netcore/wire.c: command decoding, payload rules, event encoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "errors.h"
#include "netcore.pb-c.h"
#include "wire.h"

static ncd_tally *tally;

static size_t pack_cmd(Netcore__V1__Command *c, uint8_t *buf) {
  return netcore__v1__command__pack(c, buf);
}

static void test_wire_decodes_listen(void **state) {
  Netcore__V1__Command c = NETCORE__V1__COMMAND__INIT;
  Netcore__V1__Listen l = NETCORE__V1__LISTEN__INIT;
  Netcore__V1__TcpEndpoint tcp = NETCORE__V1__TCP_ENDPOINT__INIT;
  tcp.host = "::1";
  tcp.port = -5;
  l.server_id = (7ULL << 32) | 1;
  l.endpoint_case = NETCORE__V1__LISTEN__ENDPOINT_TCP;
  l.tcp = &tcp;
  l.allow_half_open = 1;
  l.group = "workers";
  l.max_connections = 3;
  c.ref = 99;
  c.command_case = NETCORE__V1__COMMAND__COMMAND_LISTEN;
  c.listen = &l;
  uint8_t buf[256];
  size_t n = pack_cmd(&c, buf);
  ncc_cmd cmd;
  assert_int_equal(ncd_wire_cmd_unpack(buf, n, &cmd), 0);
  assert_int_equal(cmd.kind, NCC_CMD_LISTEN);
  assert_string_equal(cmd.name, "listen");
  assert_int_equal(cmd.ref, 99);
  assert_int_equal(cmd.id, (7ULL << 32) | 1);
  assert_int_equal(cmd.ep.kind, NCC_EP_TCP);
  assert_string_equal(cmd.ep.host, "::1");
  assert_int_equal(cmd.ep.port, -5);
  assert_true(cmd.allow_half_open);
  assert_string_equal(cmd.group, "workers");
  assert_int_equal(cmd.max_connections, 3);
  ncd_wire_cmd_release();
}

static void test_wire_rejects_garbage(void **state) {
  ncc_cmd cmd;
  const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x01};
  assert_int_equal(ncd_wire_cmd_unpack(junk, sizeof junk, &cmd), NCD_EPROTO);
  ncd_wire_cmd_release();
}

static void test_wire_unknown_command_case(void **state) {
  /* Field 99 (varint 1) is no command this version knows; ref (field 1) = 5. */
  const uint8_t unknown[] = {0x08, 0x05, 0x98, 0x06, 0x01};
  ncc_cmd cmd;
  assert_int_equal(ncd_wire_cmd_unpack(unknown, sizeof unknown, &cmd), NCD_ERR_UNKNOWN_COMMAND);
  assert_int_equal(cmd.ref, 5);
  ncd_wire_cmd_release();
  assert_int_equal(ncd_wire_cmd_unpack(NULL, 0, &cmd), NCD_ERR_UNKNOWN_COMMAND);
  ncd_wire_cmd_release();
}

static void test_wire_payload_rules(void **state) {
  assert_int_equal(ncc_cmd_payload_rule(NCC_CMD_WRITE), NCC_PAYLOAD_REQUIRED);
  assert_int_equal(ncc_cmd_payload_rule(NCC_CMD_END), NCC_PAYLOAD_OPTIONAL);
  assert_int_equal(ncc_cmd_payload_rule(NCC_CMD_LISTEN), NCC_PAYLOAD_NEVER);
  assert_int_equal(ncc_cmd_payload_rule(NCC_CMD_CREDIT), NCC_PAYLOAD_NEVER);
}

static void test_wire_encodes_connection(void **state) {
  ncc_addr local = {.family = NCC_FAMILY_IPV4, .address = "127.0.0.1", .port = 8124};
  ncc_addr remote = {.family = NCC_FAMILY_IPV4, .address = "127.0.0.1", .port = 50000};
  ncc_event ev = {.kind = NCC_EV_CONNECTION, .seq = 1, .server_id = 4, .socket_id = 9,
                  .local = &local, .remote = &remote, .flag = 1, .count = 2};
  zmq_msg_t msg;
  assert_int_equal(ncd_wire_event_pack(&ev, tally, &msg), 0);
  Netcore__V1__Event *e = netcore__v1__event__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
  assert_non_null(e);
  assert_int_equal(e->event_case, NETCORE__V1__EVENT__EVENT_CONNECTION);
  assert_int_equal(e->seq, 1);
  assert_int_equal(e->connection->socket_id, 9);
  assert_int_equal(e->connection->server_id, 4);
  assert_string_equal(e->connection->remote->address, "127.0.0.1");
  assert_int_equal(e->connection->remote->port, 50000);
  assert_true(e->connection->allow_half_open);
  assert_int_equal(e->connection->server_connections, 2);
  netcore__v1__event__free_unpacked(e, NULL);
  zmq_msg_close(&msg);
}

static void test_wire_encodes_error_and_ack(void **state) {
  ncc_event ev = {.kind = NCC_EV_ERROR, .code = "EBADF", .message = "no socket", .ref = 3,
                  .command = "write", .socket_id = 12};
  zmq_msg_t msg;
  assert_int_equal(ncd_wire_event_pack(&ev, tally, &msg), 0);
  Netcore__V1__Event *e = netcore__v1__event__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
  assert_int_equal(e->event_case, NETCORE__V1__EVENT__EVENT_ERROR);
  assert_string_equal(e->error->code, "EBADF");
  assert_string_equal(e->error->command, "write");
  assert_int_equal(e->error->ref, 3);
  netcore__v1__event__free_unpacked(e, NULL);
  zmq_msg_close(&msg);

  ncc_event ack = {.kind = NCC_EV_WRITE_ACK, .socket_id = 1, .count = 3, .bytes = 300,
                   .bytes_written = 1300, .queued_bytes = 7};
  assert_int_equal(ncd_wire_event_pack(&ack, tally, &msg), 0);
  e = netcore__v1__event__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
  assert_int_equal(e->write_ack->writes, 3);
  assert_int_equal(e->write_ack->bytes, 300);
  assert_int_equal(e->write_ack->bytes_written, 1300);
  assert_int_equal(e->write_ack->queued_bytes, 7);
  netcore__v1__event__free_unpacked(e, NULL);
  zmq_msg_close(&msg);
}

/* EventBatch packed by hand (msgbatch.c) must read back with protobuf-c, and a
 * batch of one must be the plain event. */
static void test_wire_event_batch(void **state) {
  ncc_msgbatch_t b = {0};
  zmq_msg_t *frames, data;
  size_t n;
  ncc_event d = {.kind = NCC_EV_DATA, .seq = 2, .socket_id = 5};
  assert_int_equal(ncd_wire_batch_append(&b, &d), 0);
  zmq_msg_init_size(&data, 3);
  memcpy(zmq_msg_data(&data), "abc", 3);
  assert_int_equal(ncc_msgbatch_frame(&b, &data), 0);
  assert_int_equal(ncc_msgbatch_seal(&b, &frames, &n), 0);
  assert_int_equal(n, 2);
  Netcore__V1__Event *e = netcore__v1__event__unpack(NULL, zmq_msg_size(&frames[0]),
                                                     zmq_msg_data(&frames[0]));
  assert_non_null(e);
  assert_int_equal(e->event_case, NETCORE__V1__EVENT__EVENT_DATA);
  assert_int_equal(e->data->socket_id, 5);
  assert_memory_equal(zmq_msg_data(&frames[1]), "abc", 3);
  netcore__v1__event__free_unpacked(e, NULL);
  ncc_msgbatch_clear(&b);

  /* 300 events (a body longer than one varint byte can say) and 2 payloads */
  for (uint64_t i = 1; i <= 300; i++) {
    ncc_event ev = {.kind = i % 150 == 0 ? NCC_EV_DATA : NCC_EV_ENDED, .seq = i, .socket_id = i,
                    .has_ack = i == 7, .ack_writes = 2, .ack_bytes = 64};
    assert_int_equal(ncd_wire_batch_append(&b, &ev), 0);
    if (ev.kind == NCC_EV_DATA) {
      zmq_msg_init_size(&data, 1);
      *(char *)zmq_msg_data(&data) = (char)i;
      assert_int_equal(ncc_msgbatch_frame(&b, &data), 0);
    }
  }
  assert_int_equal(ncc_msgbatch_seal(&b, &frames, &n), 0);
  assert_int_equal(n, 3);
  e = netcore__v1__event__unpack(NULL, zmq_msg_size(&frames[0]), zmq_msg_data(&frames[0]));
  assert_non_null(e);
  assert_int_equal(e->event_case, NETCORE__V1__EVENT__EVENT_BATCH);
  assert_int_equal(e->seq, 0);
  assert_int_equal(e->batch->n_events, 300);
  for (size_t i = 0; i < 300; i++) {
    assert_int_equal(e->batch->events[i]->seq, i + 1);
    assert_int_equal(e->batch->events[i]->event_case, (i + 1) % 150 == 0
                                                          ? NETCORE__V1__EVENT__EVENT_DATA
                                                          : NETCORE__V1__EVENT__EVENT_ENDED);
  }
  assert_non_null(e->batch->events[6]->ack);
  assert_int_equal(e->batch->events[6]->ack->writes, 2);
  assert_null(e->batch->events[7]->ack);
  assert_int_equal(*(char *)zmq_msg_data(&frames[2]), (char)300);
  netcore__v1__event__free_unpacked(e, NULL);
  ncc_msgbatch_free(&b);
}

/* A CommandBatch unpacks into its commands, each as it would come alone. */
static void test_wire_command_batch(void **state) {
  Netcore__V1__Command outer = NETCORE__V1__COMMAND__INIT, c1 = NETCORE__V1__COMMAND__INIT,
                       c2 = NETCORE__V1__COMMAND__INIT, *cmds[] = {&c1, &c2};
  Netcore__V1__CommandBatch batch = NETCORE__V1__COMMAND_BATCH__INIT;
  Netcore__V1__Write w = NETCORE__V1__WRITE__INIT;
  Netcore__V1__Credit cr = NETCORE__V1__CREDIT__INIT;
  w.socket_id = 11;
  w.ack_now = 1;
  c1.ref = 1, c1.command_case = NETCORE__V1__COMMAND__COMMAND_WRITE, c1.write = &w;
  cr.socket_id = 12, cr.bytes = 4096;
  c2.ref = 2, c2.command_case = NETCORE__V1__COMMAND__COMMAND_CREDIT, c2.credit = &cr;
  batch.n_commands = 2, batch.commands = cmds;
  outer.command_case = NETCORE__V1__COMMAND__COMMAND_BATCH, outer.batch = &batch;
  uint8_t buf[256];
  size_t n = pack_cmd(&outer, buf);
  ncc_cmd cmd;
  assert_int_equal(ncd_wire_cmd_unpack(buf, n, &cmd), 0);
  assert_int_equal(cmd.kind, NCC_CMD_BATCH);
  assert_int_equal(cmd.batch_count, 2);
  assert_int_equal(ncd_wire_batch_cmd(0, &cmd), 0);
  assert_int_equal(cmd.kind, NCC_CMD_WRITE);
  assert_int_equal(cmd.id, 11);
  assert_true(cmd.ack_now);
  assert_int_equal(cmd.ref, 1);
  assert_int_equal(ncd_wire_batch_cmd(1, &cmd), 0);
  assert_int_equal(cmd.kind, NCC_CMD_CREDIT);
  assert_int_equal(cmd.bytes, 4096);
  assert_int_equal(ncd_wire_batch_cmd(2, &cmd), NCD_ERR_UNKNOWN_COMMAND);
  ncd_wire_cmd_release();
}

/* A Command nesting `batch` depth deep, packed by hand from the inside out
 * (protobuf-c's own packer would recurse as deep). Returns its length in buf. */
static size_t nested_batches(size_t depth, uint8_t *buf, size_t cap) {
  /* innermost: Command{ping{}} = field 12, length 0 */
  size_t len = 2, start = cap - 2;
  buf[start] = (12 << 3) | 2, buf[start + 1] = 0;
  for (size_t d = 0; d < depth; d++) {
    /* CommandBatch{commands: <inner>} then Command{batch: <that>}: two
     * length-delimited wrappers (key, varint length). */
    for (int wrap = 0; wrap < 2; wrap++) {
      uint8_t head[12];
      size_t h = 0;
      head[h++] = wrap == 0 ? (1 << 3) | 2 : (uint8_t)((50 << 3) | 2), head[h] = 0;
      if (wrap == 1) head[h++] = 3; /* field 50 needs a two-byte key: 0x92 0x03 */
      if (wrap == 1) head[0] = 0x92;
      for (size_t v = len; ; v >>= 7) {
        head[h++] = (uint8_t)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
        if (v < 0x80) break;
      }
      assert_true(start >= h);
      start -= h;
      memcpy(buf + start, head, h);
      len += h;
    }
  }
  memmove(buf, buf + start, len);
  return len;
}

/* Nesting is refused by the wire walk before protobuf-c could recurse on it;
 * one level (a plain batch) passes; too many commands are EMSGSIZE. */
static void test_wire_check_refuses_nesting(void **state) {
  static uint8_t buf[200000];
  size_t n = nested_batches(1, buf, sizeof buf);
  assert_int_equal(ncd_wire_cmd_check(buf, n, 1024), 0);
  n = nested_batches(2, buf, sizeof buf); /* refused per entry when it runs */
  assert_int_equal(ncd_wire_cmd_check(buf, n, 1024), 0);
  n = nested_batches(3, buf, sizeof buf);
  assert_int_equal(ncd_wire_cmd_check(buf, n, 1024), NCD_ERR_INVALID_ARG_VALUE);
  n = nested_batches(20000, buf, sizeof buf); /* far beyond any stack */
  assert_true(n > 80000);
  assert_int_equal(ncd_wire_cmd_check(buf, n, 1024), NCD_ERR_INVALID_ARG_VALUE);
  assert_int_equal(ncd_wire_cmd_check(buf, n - 1, 1024), NCD_EPROTO); /* truncated */

  /* a flat batch of 2000 pings: over a limit of 1024, under 4096 */
  size_t len = 0;
  uint8_t *p = buf + 4;
  for (int i = 0; i < 2000; i++) {
    p[len++] = (1 << 3) | 2, p[len++] = 2; /* commands: Command{ping{}} */
    p[len++] = (12 << 3) | 2, p[len++] = 0;
  }
  buf[0] = 0x92, buf[1] = 0x03, buf[2] = (uint8_t)(len | 0x80), buf[3] = (uint8_t)(len >> 7);
  assert_true(len < (1 << 14));
  assert_int_equal(ncd_wire_cmd_check(buf, len + 4, 1024), NCD_EMSGSIZE);
  assert_int_equal(ncd_wire_cmd_check(buf, len + 4, 4096), 0);
  ncc_cmd cmd;
  assert_int_equal(ncd_wire_cmd_unpack(buf, len + 4, &cmd), 0);
  assert_int_equal(cmd.batch_count, 2000);
  ncd_wire_cmd_release();
  /* a group wire type (3) is not proto3 and never reaches protobuf-c */
  uint8_t group[] = {(12 << 3) | 3, (12 << 3) | 4};
  assert_int_equal(ncd_wire_cmd_check(group, sizeof group, 1024), NCD_EPROTO);
}

/* A tally charges each frame until ZeroMQ lets go of it, and outlives its
 * owner while frames are in flight. */
static void test_wire_tally_counts_frames(void **state) {
  ncd_tally *t = ncd_tally_new();
  zmq_msg_t a, b;
  assert_non_null(ncd_tally_frame(t, &a, 100));
  assert_int_equal(ncd_tally_in_flight(t), 100 + NCD_FRAME_OVERHEAD);
  /* Frames of a slab point into it, one after the other, no copy. */
  ncd_slab *slab = ncd_slab_new(t, 65536);
  size_t room;
  char *at = ncd_slab_room(slab, &room);
  assert_true(room >= 5000 && room < 65536);
  memset(at, 'x', 5000);
  assert_int_equal(ncd_slab_give(slab, &b, 5000), 0);
  assert_ptr_equal(zmq_msg_data(&b), at);
  assert_int_equal(zmq_msg_size(&b), 5000);
  assert_int_equal(ncd_tally_in_flight(t), 5100 + 2 * NCD_FRAME_OVERHEAD);
  zmq_msg_t c;
  char *next = ncd_slab_room(slab, &room);
  assert_true(next >= at + 5000 && ((uintptr_t)next & 15) == 0);
  assert_int_equal(ncd_slab_give(slab, &c, 10), 0);
  assert_ptr_equal(zmq_msg_data(&c), next);
  zmq_msg_close(&a);
  assert_int_equal(ncd_tally_in_flight(t), 5010 + 2 * NCD_FRAME_OVERHEAD);
  ncd_slab_drop(slab); /* its frames still hold it */
  assert_int_equal(((char *)zmq_msg_data(&b))[4999], 'x');
  ncd_tally_drop(t); /* the frames still hold it (LeakSanitizer checks the rest) */
  zmq_msg_close(&b);
  zmq_msg_close(&c);
}

int main(void) {
  tally = ncd_tally_new();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_wire_check_refuses_nesting),
      cmocka_unit_test(test_wire_tally_counts_frames),
      cmocka_unit_test(test_wire_decodes_listen),
      cmocka_unit_test(test_wire_rejects_garbage),
      cmocka_unit_test(test_wire_unknown_command_case),
      cmocka_unit_test(test_wire_payload_rules),
      cmocka_unit_test(test_wire_encodes_connection),
      cmocka_unit_test(test_wire_encodes_error_and_ack),
      cmocka_unit_test(test_wire_event_batch),
      cmocka_unit_test(test_wire_command_batch),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  ncd_tally_drop(tally);
  return rc;
}
