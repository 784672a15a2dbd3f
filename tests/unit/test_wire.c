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
  ncd_cmd cmd;
  assert_int_equal(ncd_wire_cmd_unpack(buf, n, &cmd), 0);
  assert_int_equal(cmd.kind, NCD_CMD_LISTEN);
  assert_string_equal(cmd.name, "listen");
  assert_int_equal(cmd.ref, 99);
  assert_int_equal(cmd.id, (7ULL << 32) | 1);
  assert_int_equal(cmd.ep.kind, NCD_EP_TCP);
  assert_string_equal(cmd.ep.host, "::1");
  assert_int_equal(cmd.ep.port, -5);
  assert_true(cmd.allow_half_open);
  assert_string_equal(cmd.group, "workers");
  assert_int_equal(cmd.max_connections, 3);
  ncd_wire_cmd_release();
}

static void test_wire_rejects_garbage(void **state) {
  ncd_cmd cmd;
  const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x01};
  assert_int_equal(ncd_wire_cmd_unpack(junk, sizeof junk, &cmd), NCD_EPROTO);
  ncd_wire_cmd_release();
}

static void test_wire_unknown_command_case(void **state) {
  /* Field 99 (varint 1) is no command this version knows; ref (field 1) = 5. */
  const uint8_t unknown[] = {0x08, 0x05, 0x98, 0x06, 0x01};
  ncd_cmd cmd;
  assert_int_equal(ncd_wire_cmd_unpack(unknown, sizeof unknown, &cmd), NCD_ERR_UNKNOWN_COMMAND);
  assert_int_equal(cmd.ref, 5);
  ncd_wire_cmd_release();
  assert_int_equal(ncd_wire_cmd_unpack(NULL, 0, &cmd), NCD_ERR_UNKNOWN_COMMAND);
  ncd_wire_cmd_release();
}

static void test_wire_payload_rules(void **state) {
  assert_int_equal(ncd_wire_payload_rule(NCD_CMD_WRITE), NCD_PAYLOAD_REQUIRED);
  assert_int_equal(ncd_wire_payload_rule(NCD_CMD_END), NCD_PAYLOAD_OPTIONAL);
  assert_int_equal(ncd_wire_payload_rule(NCD_CMD_LISTEN), NCD_PAYLOAD_NEVER);
  assert_int_equal(ncd_wire_payload_rule(NCD_CMD_CREDIT), NCD_PAYLOAD_NEVER);
}

static void test_wire_encodes_connection(void **state) {
  ncd_addr local = {.family = NCD_FAMILY_IPV4, .address = "127.0.0.1", .port = 8124};
  ncd_addr remote = {.family = NCD_FAMILY_IPV4, .address = "127.0.0.1", .port = 50000};
  ncd_event ev = {.kind = NCD_EV_CONNECTION, .seq = 1, .server_id = 4, .socket_id = 9,
                  .local = &local, .remote = &remote, .flag = 1, .count = 2};
  zmq_msg_t msg;
  assert_int_equal(ncd_wire_event_pack(&ev, &msg), 0);
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
  ncd_event ev = {.kind = NCD_EV_ERROR, .code = "EBADF", .message = "no socket", .ref = 3,
                  .command = "write", .socket_id = 12};
  zmq_msg_t msg;
  assert_int_equal(ncd_wire_event_pack(&ev, &msg), 0);
  Netcore__V1__Event *e = netcore__v1__event__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
  assert_int_equal(e->event_case, NETCORE__V1__EVENT__EVENT_ERROR);
  assert_string_equal(e->error->code, "EBADF");
  assert_string_equal(e->error->command, "write");
  assert_int_equal(e->error->ref, 3);
  netcore__v1__event__free_unpacked(e, NULL);
  zmq_msg_close(&msg);

  ncd_event ack = {.kind = NCD_EV_WRITE_ACK, .socket_id = 1, .count = 3, .bytes = 300,
                   .bytes_written = 1300, .queued_bytes = 7};
  assert_int_equal(ncd_wire_event_pack(&ack, &msg), 0);
  e = netcore__v1__event__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
  assert_int_equal(e->write_ack->writes, 3);
  assert_int_equal(e->write_ack->bytes, 300);
  assert_int_equal(e->write_ack->bytes_written, 1300);
  assert_int_equal(e->write_ack->queued_bytes, 7);
  netcore__v1__event__free_unpacked(e, NULL);
  zmq_msg_close(&msg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_wire_decodes_listen),
      cmocka_unit_test(test_wire_rejects_garbage),
      cmocka_unit_test(test_wire_unknown_command_case),
      cmocka_unit_test(test_wire_payload_rules),
      cmocka_unit_test(test_wire_encodes_connection),
      cmocka_unit_test(test_wire_encodes_error_and_ack),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
