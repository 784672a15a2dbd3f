/* Unit tests of common/protocol.c: every command and event survives its own
 * pack and unpack (so both directions agree), and what the packer writes is
 * the schema's message (checked with the generated decoder), including the
 * messages of protocol 1.2 (Pipe, Unpipe, Unpiped, Welcome.minor_version,
 * Adopted.pipe_*) and of session resumption (Hello.resumable/resume_token/
 * resume_sockets, Welcome.resumed/resumed_sockets, PROTOCOL.md 16.1). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "errtable.h"
#include "netcore.pb-c.h"
#include "protocol.h"

static _Alignas(16) unsigned char block[4096];
static ncc_arena arena;

typedef struct buf {
  uint8_t data[4096];
  size_t len;
} buf;

static void *in_buf(void *arg, size_t len) {
  buf *b = arg;
  b->len = len;
  return len <= sizeof b->data ? b->data : NULL;
}

static void *nowhere(void *arg, size_t len) { return NULL; }

/* c packed, then unpacked into out (arena's). */
static void cmd_round_trip(const ncc_cmd *c, ncc_cmd *out, buf *b) {
  char why[128] = "";
  assert_int_equal(ncc_cmd_pack(c, in_buf, b), 0);
  assert_int_equal(ncc_cmd_unpack(&arena, b->data, b->len, out, why, sizeof why), 0);
  assert_int_equal(out->kind, c->kind);
  assert_int_equal(out->ref, c->ref);
}

static void test_protocol_pipe_commands(void **state) {
  buf b;
  ncc_cmd out;
  ncc_cmd pipe = {.kind = NCC_CMD_PIPE, .ref = 5, .id = (3ULL << 32) | 9,
                  .dest_socket_id = (3ULL << 32) | 10, .no_end = 1, .high_water_mark = 65536};
  cmd_round_trip(&pipe, &out, &b);
  assert_string_equal(out.name, "pipe");
  assert_true(out.id == pipe.id && out.dest_socket_id == pipe.dest_socket_id);
  assert_int_equal(out.no_end, 1);
  assert_int_equal(out.high_water_mark, 65536);
  assert_int_equal(ncc_cmd_payload_rule(out.kind), NCC_PAYLOAD_NEVER);
  /* the schema's Command.pipe (40) */
  Netcore__V1__Command *m = netcore__v1__command__unpack(NULL, b.len, b.data);
  assert_non_null(m);
  assert_int_equal(m->command_case, NETCORE__V1__COMMAND__COMMAND_PIPE);
  assert_true(m->pipe->dest_socket_id == pipe.dest_socket_id);
  netcore__v1__command__free_unpacked(m, NULL);

  ncc_cmd unpipe = {.kind = NCC_CMD_UNPIPE, .id = 77};
  cmd_round_trip(&unpipe, &out, &b);
  assert_string_equal(out.name, "unpipe");
  assert_int_equal(out.id, 77);
  m = netcore__v1__command__unpack(NULL, b.len, b.data);
  assert_int_equal(m->command_case, NETCORE__V1__COMMAND__COMMAND_UNPIPE);
  netcore__v1__command__free_unpacked(m, NULL);
  ncc_arena_reset(&arena);
}

static void test_protocol_every_command(void **state) {
  buf b;
  ncc_cmd out;
  ncc_cmd hello = {.kind = NCC_CMD_HELLO, .version = 1, .hello_name = "t", .credit_window = 7,
                   .lease_ms = 8, .lazy_acks = 1, .batch_events = 1, .service = "svc"};
  cmd_round_trip(&hello, &out, &b);
  assert_string_equal(out.hello_name, "t");
  assert_string_equal(out.service, "svc");
  assert_true(out.version == 1 && out.credit_window == 7 && out.lease_ms == 8);
  assert_true(out.lazy_acks && out.batch_events);

  ncc_cmd listen = {.kind = NCC_CMD_LISTEN, .id = 4, .allow_half_open = 1, .backlog = 9,
                    .max_connections = 2, .group = "g",
                    .ep = {.kind = NCC_EP_TCP, .host = "::1", .port = 8080}};
  cmd_round_trip(&listen, &out, &b);
  assert_int_equal(out.ep.kind, NCC_EP_TCP);
  assert_string_equal(out.ep.host, "::1");
  assert_int_equal(out.ep.port, 8080);
  assert_true(out.backlog == 9 && out.max_connections == 2 && out.allow_half_open);
  assert_string_equal(out.group, "g");

  /* a path that is not UTF-8 travels as path_bytes and comes back exact */
  ncc_cmd connect = {.kind = NCC_CMD_CONNECT, .id = 5, .ep = {.kind = NCC_EP_PATH, .path = "/tmp/\xff"}};
  cmd_round_trip(&connect, &out, &b);
  assert_int_equal(out.ep.kind, NCC_EP_PATH);
  assert_string_equal(out.ep.path, "/tmp/\xff");
  ncc_cmd fdl = {.kind = NCC_CMD_LISTEN, .id = 6, .ep = {.kind = NCC_EP_FD, .fd = 3}};
  cmd_round_trip(&fdl, &out, &b);
  assert_true(out.ep.kind == NCC_EP_FD && out.ep.fd == 3);

  ncc_cmd write = {.kind = NCC_CMD_WRITE, .id = 1, .fd_socket_id = 2, .ack_now = 1};
  cmd_round_trip(&write, &out, &b);
  assert_true(out.fd_socket_id == 2 && out.ack_now);
  assert_int_equal(ncc_cmd_payload_rule(out.kind), NCC_PAYLOAD_REQUIRED);
  ncc_cmd keep = {.kind = NCC_CMD_SET_KEEP_ALIVE, .id = 1, .enable = 1, .initial_delay_ms = 500};
  cmd_round_trip(&keep, &out, &b);
  assert_true(out.enable && out.initial_delay_ms == 500);
  ncc_cmd credit = {.kind = NCC_CMD_CREDIT, .id = 1, .bytes = 4096};
  cmd_round_trip(&credit, &out, &b);
  assert_int_equal(out.bytes, 4096);
  ncc_cmd ping = {.kind = NCC_CMD_PING, .nonce = 42};
  cmd_round_trip(&ping, &out, &b);
  assert_int_equal(out.nonce, 42);
  ncc_cmd bye = {.kind = NCC_CMD_BYE, .handoff = 1};
  cmd_round_trip(&bye, &out, &b);
  assert_int_equal(out.handoff, 1);
  ncc_cmd_kind simple[] = {NCC_CMD_STATS, NCC_CMD_SERVER_CLOSE, NCC_CMD_END, NCC_CMD_DESTROY,
                           NCC_CMD_PAUSE, NCC_CMD_RESUME, NCC_CMD_SET_NO_DELAY};
  for (size_t i = 0; i < sizeof simple / sizeof simple[0]; i++) {
    ncc_cmd c = {.kind = simple[i], .id = 11};
    cmd_round_trip(&c, &out, &b);
  }
  ncc_cmd bad = {.kind = NCC_CMD_BATCH};
  assert_int_equal(ncc_cmd_pack(&bad, in_buf, &b), NCC_EINVAL);
  assert_int_equal(ncc_cmd_pack(&ping, nowhere, NULL), NCC_ENOMEM);
  ncc_arena_reset(&arena);
}

static void event_round_trip(const ncc_event *ev, ncc_event *out, buf *b) {
  assert_int_equal(ncc_event_pack(ev, in_buf, b), 0);
  assert_int_equal(ncc_event_unpack(&arena, b->data, b->len, out), 0);
  assert_int_equal(out->kind, ev->kind);
  assert_int_equal(out->seq, ev->seq);
}

static void test_protocol_pipe_events(void **state) {
  buf b;
  ncc_event out;
  ncc_event unpiped = {.kind = NCC_EV_UNPIPED, .seq = 4, .socket_id = 9, .dest_socket_id = 10,
                       .unpipe_reason = NCC_UNPIPE_SOURCE_ENDED, .bytes = 1000,
                       .bytes_read = 1200, .bytes_written = 900, .flag = 1};
  event_round_trip(&unpiped, &out, &b);
  assert_true(out.socket_id == 9 && out.dest_socket_id == 10);
  assert_int_equal(out.unpipe_reason, NCC_UNPIPE_SOURCE_ENDED);
  assert_true(out.bytes == 1000 && out.bytes_read == 1200 && out.bytes_written == 900);
  assert_int_equal(out.flag, 1);
  Netcore__V1__Event *m = netcore__v1__event__unpack(NULL, b.len, b.data);
  assert_int_equal(m->event_case, NETCORE__V1__EVENT__EVENT_UNPIPED);
  assert_int_equal(m->unpiped->reason, NETCORE__V1__UNPIPE_REASON__UNPIPE_SOURCE_ENDED);
  netcore__v1__event__free_unpacked(m, NULL);

  ncc_addr local = {.family = NCC_FAMILY_IPV4, .address = "127.0.0.1", .port = 80};
  ncc_addr remote = {.family = NCC_FAMILY_UNIX, .address = "/tmp/\xfe.sock"};
  ncc_event adopted = {.kind = NCC_EV_ADOPTED, .seq = 7, .server_id = 3, .socket_id = 9,
                       .local = &local, .remote = &remote, .flag = 1, .count = 2,
                       .bytes_read = 11, .bytes_written = 12, .queued_bytes = 13, .bytes = 14,
                       .write_ended = 1, .peer_ended = 1, .dest_socket_id = 10,
                       .pipe_no_end = 1, .pipe_high_water_mark = 32768};
  event_round_trip(&adopted, &out, &b);
  assert_true(out.dest_socket_id == 10 && out.pipe_no_end && out.pipe_high_water_mark == 32768);
  assert_true(out.write_ended && out.peer_ended && out.bytes == 14 && out.queued_bytes == 13);
  assert_string_equal(out.local->address, "127.0.0.1");
  assert_int_equal(out.local->port, 80);
  assert_int_equal(out.remote->family, NCC_FAMILY_UNIX);
  assert_string_equal(out.remote->address, "/tmp/\xfe.sock"); /* exact, by address_bytes */

  uint8_t token[16] = {1, 2, 3};
  ncc_welcome w = {.minor_version = 2, .instance_id = "abc", .server_version = "0.1.0",
                   .id_prefix = 5, .credit_window = 6, .lease_ms = 7, .max_frame = 8,
                   .max_write_queue = 9, .session_token = token, .session_token_len = 16};
  ncc_event welcome = {.kind = NCC_EV_WELCOME, .welcome = &w};
  event_round_trip(&welcome, &out, &b);
  assert_int_equal(out.welcome->version, NCC_PROTOCOL_VERSION);
  assert_int_equal(out.welcome->minor_version, 2);
  assert_string_equal(out.welcome->instance_id, "abc");
  assert_true(out.welcome->id_prefix == 5 && out.welcome->max_write_queue == 9);
  assert_int_equal(out.welcome->session_token_len, 16);
  assert_memory_equal(out.welcome->session_token, token, 16);
  ncc_arena_reset(&arena);
}

static void test_protocol_every_event(void **state) {
  buf b;
  ncc_event out;
  ncc_event err = {.kind = NCC_EV_ERROR, .code = "EBADF", .message = "bad \xc3", .ref = 3,
                   .command = "write", .socket_id = 4, .server_id = 5};
  event_round_trip(&err, &out, &b);
  assert_string_equal(out.code, "EBADF");
  assert_string_equal(out.message, "bad \xef\xbf\xbd"); /* repaired to U+FFFD */
  assert_string_equal(out.command, "write");
  assert_true(out.ref == 3 && out.socket_id == 4 && out.server_id == 5);
  assert_string_equal(out.reason, "");

  ncc_event shut = {.kind = NCC_EV_SHUTDOWN, .reason = "SIGTERM"};
  event_round_trip(&shut, &out, &b);
  assert_string_equal(out.reason, "SIGTERM");
  ncc_event ack = {.kind = NCC_EV_WRITE_ACK, .seq = 2, .socket_id = 1, .count = 3, .bytes = 4,
                   .bytes_written = 5, .queued_bytes = 6};
  event_round_trip(&ack, &out, &b);
  assert_true(out.count == 3 && out.bytes == 4 && out.bytes_written == 5 && out.queued_bytes == 6);
  ncc_event data = {.kind = NCC_EV_DATA, .seq = 9, .socket_id = 8, .has_ack = 1, .ack_writes = 1,
                    .ack_bytes = 10, .ack_bytes_written = 20, .ack_queued_bytes = 30};
  event_round_trip(&data, &out, &b);
  assert_true(out.has_ack && out.ack_writes == 1 && out.ack_bytes == 10);
  assert_true(out.ack_bytes_written == 20 && out.ack_queued_bytes == 30);
  ncc_event closed = {.kind = NCC_EV_CLOSED, .seq = 3, .socket_id = 8, .flag = 1,
                      .bytes_read = 7, .bytes_written = 6};
  event_round_trip(&closed, &out, &b);
  assert_true(out.flag && out.bytes_read == 7 && out.bytes_written == 6);
  ncc_addr a = {.family = NCC_FAMILY_IPV6, .address = "::1", .port = 9};
  ncc_event fd = {.kind = NCC_EV_FD, .socket_id = 1, .new_socket_id = 2, .local = &a};
  event_round_trip(&fd, &out, &b);
  assert_int_equal(out.new_socket_id, 2);
  assert_int_equal(out.local->family, NCC_FAMILY_IPV6);
  assert_null(out.remote);

  ncc_stats_label labels[] = {{"handler", "echo"}};
  ncc_stats_sample samples[] = {{"x_total", labels, 1, 3}, {"x_total", NULL, 0, 4}};
  ncc_stats_family fams[] = {{"x_total", "help", "counter", samples, 2}};
  ncc_stats st = {"inst", 1234, fams, 1};
  ncc_event stats = {.kind = NCC_EV_STATS, .stats = &st};
  event_round_trip(&stats, &out, &b);
  assert_string_equal(out.stats->instance_id, "inst");
  assert_int_equal(out.stats->uptime_ms, 1234);
  assert_int_equal(out.stats->nfamilies, 1);
  assert_string_equal(out.stats->families[0].type, "counter");
  assert_int_equal(out.stats->families[0].nsamples, 2);
  assert_string_equal(out.stats->families[0].samples[0].labels[0].value, "echo");
  assert_true(out.stats->families[0].samples[1].value == 4);
  assert_int_equal(ncc_event_pack(&ack, nowhere, NULL), NCC_ENOMEM);
  ncc_arena_reset(&arena);
}

static void test_protocol_event_batch(void **state) {
  ncc_msgbatch_t batch;
  memset(&batch, 0, sizeof batch);
  ncc_event ended = {.kind = NCC_EV_ENDED, .seq = 1, .socket_id = 3};
  ncc_event unp = {.kind = NCC_EV_UNPIPED, .seq = 2, .socket_id = 3, .dest_socket_id = 4};
  assert_int_equal(ncc_event_pack(&ended, ncc_place_in_batch, &batch), 0);
  assert_int_equal(ncc_event_pack(&unp, ncc_place_in_batch, &batch), 0);
  zmq_msg_t *frames;
  size_t nframes;
  assert_int_equal(ncc_msgbatch_seal(&batch, &frames, &nframes), 0);
  assert_int_equal(nframes, 1);
  ncc_event out;
  assert_int_equal(
      ncc_event_unpack(&arena, zmq_msg_data(&frames[0]), zmq_msg_size(&frames[0]), &out), 0);
  assert_int_equal(out.kind, NCC_EV_BATCH);
  assert_int_equal(out.count, 2);
  assert_int_equal(ncc_event_batch_entry(&arena, 0, &out), 0);
  assert_int_equal(out.kind, NCC_EV_ENDED);
  assert_int_equal(ncc_event_batch_entry(&arena, 1, &out), 0);
  assert_int_equal(out.kind, NCC_EV_UNPIPED);
  assert_int_equal(out.dest_socket_id, 4);
  assert_int_equal(ncc_event_batch_entry(&arena, 2, &out), NCC_EPROTO);
  ncc_msgbatch_free(&batch);
  uint8_t junk[] = {0xff, 0xff, 0xff};
  assert_int_equal(ncc_event_unpack(&arena, junk, sizeof junk, &out), NCC_EPROTO);
  ncc_arena_reset(&arena);
}

/* Hello 20-22 and Welcome 20-21 (PROTOCOL.md 16.1) both ways, and what the
 * schema's decoder reads of them. */
static void test_protocol_resume(void **state) {
  buf b;
  ncc_cmd out;
  static const uint8_t token[16] = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6};
  /* more entries than the 4 KiB arena block holds flat: the overflow path */
  enum { N = 100 };
  ncc_resume_socket rs[N];
  for (size_t i = 0; i < N; i++)
    rs[i] = (ncc_resume_socket){.socket_id = (7ULL << 32) | (i + 1),
                                .bytes_received = 1000 + i,
                                .bytes_credited = 900 + i,
                                .bytes_acked = 50 + i,
                                .writes_acked = i,
                                .last_seq = 20 + i,
                                .saw_end = (int)(i & 1),
                                /* protocol 1.4 */
                                .has_options = (int)(i % 3 != 0),
                                .timeout_ms = (uint32_t)(i * 100),
                                .no_delay = (uint32_t)(i % 3),
                                .keep_alive = (uint32_t)((i + 1) % 3),
                                .keep_alive_delay_ms = (uint32_t)i,
                                .connecting = (int)(i % 5 == 0)};
  rs[0].bytes_received = UINT64_MAX; /* 64-bit counts survive */
  rs[1].timeout_ms = UINT32_MAX;
  const uint64_t servers[2] = {(7ULL << 32) | 500, (7ULL << 32) | UINT32_MAX};
  ncc_cmd hello = {.kind = NCC_CMD_HELLO, .version = 1, .hello_name = "h", .resumable = 1,
                   .resume_token = token, .resume_token_len = sizeof token, .resume = rs,
                   .nresume = N, .resume_servers = servers, .nresume_servers = 2};
  cmd_round_trip(&hello, &out, &b);
  assert_int_equal(out.resumable, 1);
  assert_int_equal(out.resume_token_len, 16);
  assert_memory_equal(out.resume_token, token, 16);
  assert_int_equal(out.nresume, N);
  for (size_t i = 0; i < N; i++) {
    assert_true(out.resume[i].socket_id == rs[i].socket_id);
    assert_true(out.resume[i].bytes_received == rs[i].bytes_received);
    assert_true(out.resume[i].bytes_credited == rs[i].bytes_credited);
    assert_true(out.resume[i].bytes_acked == rs[i].bytes_acked);
    assert_true(out.resume[i].writes_acked == rs[i].writes_acked);
    assert_true(out.resume[i].last_seq == rs[i].last_seq);
    assert_int_equal(out.resume[i].saw_end, rs[i].saw_end);
    assert_int_equal(out.resume[i].has_options, rs[i].has_options);
    assert_true(out.resume[i].timeout_ms == rs[i].timeout_ms);
    assert_true(out.resume[i].no_delay == rs[i].no_delay);
    assert_true(out.resume[i].keep_alive == rs[i].keep_alive);
    assert_true(out.resume[i].keep_alive_delay_ms == rs[i].keep_alive_delay_ms);
    assert_int_equal(out.resume[i].connecting, rs[i].connecting);
  }
  assert_int_equal(out.nresume_servers, 2);
  assert_true(out.resume_servers[0] == servers[0] && out.resume_servers[1] == servers[1]);
  Netcore__V1__Command *m = netcore__v1__command__unpack(NULL, b.len, b.data);
  assert_non_null(m);
  assert_true(m->hello->resumable);
  assert_int_equal(m->hello->resume_token.len, 16);
  assert_int_equal(m->hello->n_resume_sockets, N);
  assert_true(m->hello->resume_sockets[3]->last_seq == 23);
  assert_true(m->hello->resume_sockets[3]->bytes_credited == 903);
  netcore__v1__command__free_unpacked(m, NULL);
  /* the room for the entries is freed when the frame cannot be had */
  assert_int_equal(ncc_cmd_pack(&hello, nowhere, NULL), NCC_ENOMEM);

  /* a plain Hello: no token, no entries */
  ncc_cmd plain = {.kind = NCC_CMD_HELLO, .version = 1};
  cmd_round_trip(&plain, &out, &b);
  assert_int_equal(out.resumable, 0);
  assert_null(out.resume_token);
  assert_int_equal(out.resume_token_len, 0);
  assert_null(out.resume);
  assert_int_equal(out.nresume, 0);
  assert_null(out.resume_servers);
  assert_int_equal(out.nresume_servers, 0);

  ncc_resumed_socket done[3] = {{(7ULL << 32) | 1, 0}, {(7ULL << 32) | 2, 5}, {(7ULL << 32) | 9, UINT64_MAX}};
  ncc_welcome w = {.minor_version = NCC_PROTOCOL_MINOR, .instance_id = "i", .id_prefix = 7,
                   .session_token = token, .session_token_len = 16, .resumed = 1,
                   .resumed_sockets = done, .nresumed = 3, .resumed_servers = servers,
                   .nresumed_servers = 2};
  ncc_event ev = {.kind = NCC_EV_WELCOME, .welcome = &w}, got;
  event_round_trip(&ev, &got, &b);
  assert_int_equal(got.welcome->resumed, 1);
  assert_int_equal(got.welcome->id_prefix, 7);
  assert_int_equal(got.welcome->nresumed, 3);
  assert_int_equal(got.welcome->nresumed_servers, 2);
  assert_true(got.welcome->resumed_servers[1] == servers[1]);
  for (size_t i = 0; i < 3; i++) {
    assert_true(got.welcome->resumed_sockets[i].socket_id == done[i].socket_id);
    assert_true(got.welcome->resumed_sockets[i].writes == done[i].writes);
  }
  Netcore__V1__Event *e = netcore__v1__event__unpack(NULL, b.len, b.data);
  assert_non_null(e);
  assert_true(e->welcome->resumed);
  assert_int_equal(e->welcome->n_resumed_sockets, 3);
  assert_true(e->welcome->resumed_sockets[1]->writes == 5);
  netcore__v1__event__free_unpacked(e, NULL);
  assert_int_equal(ncc_event_pack(&ev, nowhere, NULL), NCC_ENOMEM);

  /* a new session's Welcome says not resumed, with no entries */
  ncc_welcome fresh = {.instance_id = "i", .id_prefix = 8};
  ncc_event ev2 = {.kind = NCC_EV_WELCOME, .welcome = &fresh};
  event_round_trip(&ev2, &got, &b);
  assert_int_equal(got.welcome->resumed, 0);
  assert_int_equal(got.welcome->nresumed, 0);
  assert_null(got.welcome->resumed_sockets);
  ncc_arena_reset(&arena);
}

int main(void) {
  ncc_arena_init(&arena, block, sizeof block);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_protocol_pipe_commands),
      cmocka_unit_test(test_protocol_every_command),
      cmocka_unit_test(test_protocol_pipe_events),
      cmocka_unit_test(test_protocol_every_event),
      cmocka_unit_test(test_protocol_event_batch),
      cmocka_unit_test(test_protocol_resume),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
