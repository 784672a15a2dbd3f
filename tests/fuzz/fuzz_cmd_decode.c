/* fuzz_cmd_decode.c: libFuzzer harness of the daemon's command decoder.
 *
 * Every input is an envelope as a handler would send it. It goes through
 * what commands.c does with one: ncd_wire_cmd_check (the wire walk that
 * refuses nesting before anything recurses; a refused input stops there),
 * ncd_wire_cmd_unpack, for a CommandBatch
 * ncd_wire_batch_cmd for each entry (and one past the end, which must fail),
 * ncc_cmd_payload_rule for every kind, then ncd_wire_cmd_release. Every
 * string the flat view hands out is read to its end, so a dangling or
 * unterminated pointer is an ASan report. No nesting cap: the walk is what
 * keeps protobuf-c from recursing (the 4,400-deep seed is its regression).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "daemon.h"
#include "errors.h"
#include "wire.h"

ncd_daemon ncd; /* main.c's; the walk's error messages live in commands.c */

static volatile size_t sink;

static void touch(const char *s) {
  if (s) sink += strlen(s);
}

/* Reads every field of a decoded command and checks what wire.h promises. */
static void check_cmd(int rc, const ncc_cmd *c) {
  if (!c->name) abort(); /* errors name the command: never NULL */
  touch(c->name);
  if (rc != 0) {
    /* ERR_INVALID_ARG_VALUE: a string that is not UTF-8 (PROTOCOL.md 1.2) */
    if (rc != NCD_EPROTO && rc != NCD_ERR_UNKNOWN_COMMAND && rc != NCD_ERR_INVALID_ARG_VALUE)
      abort();
    return;
  }
  if (c->kind <= NCC_CMD_NONE || c->kind > NCC_CMD_BATCH) abort();
  touch(c->hello_name);
  touch(c->group);
  switch (c->ep.kind) {
  case NCC_EP_TCP:
    if (!c->ep.host) abort(); /* "" when omitted */
    touch(c->ep.host);
    break;
  case NCC_EP_PATH:
    if (!c->ep.path) abort();
    touch(c->ep.path);
    break;
  default:
    break;
  }
  int rule = ncc_cmd_payload_rule(c->kind);
  if (rule != NCC_PAYLOAD_NEVER && rule != NCC_PAYLOAD_REQUIRED && rule != NCC_PAYLOAD_OPTIONAL)
    abort();
  sink += (size_t)c->id + c->ref + c->nonce + c->version + c->bytes + c->msecs;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  char *args[] = {"netcore", NULL};
  return ncd_config_parse(&ncd.cfg, 1, args) == 0 ? 0 : 1; /* the default limits */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len) {
  int check = ncd_wire_cmd_check(data, len, ncd.cfg.max_batch);
  if (check != 0) {
    if (check != NCD_EPROTO && check != NCD_EMSGSIZE && check != NCD_ERR_INVALID_ARG_VALUE)
      abort();
    return 0;
  }
  ncc_cmd cmd;
  int rc = ncd_wire_cmd_unpack(data, len, &cmd);
  check_cmd(rc, &cmd);
  if (rc == 0 && cmd.kind == NCC_CMD_BATCH) {
    size_t n = cmd.batch_count;
    for (size_t i = 0; i < n; i++) {
      ncc_cmd sub;
      check_cmd(ncd_wire_batch_cmd(i, &sub), &sub);
    }
    ncc_cmd past;
    if (ncd_wire_batch_cmd(n, &past) == 0) abort(); /* one past the end must fail */
    check_cmd(NCD_ERR_UNKNOWN_COMMAND, &past);
  } else {
    ncc_cmd none;
    if (ncd_wire_batch_cmd(0, &none) == 0) abort(); /* not a batch: no entries */
  }
  ncd_wire_cmd_release();
  /* Released twice is what commands.c does on some paths: must be harmless. */
  ncd_wire_cmd_release();
  return 0;
}
