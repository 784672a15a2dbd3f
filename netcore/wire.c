/* wire.c: see wire.h. */
#include "wire.h"

#include "errors.h"
#include "pbwalk.h"

/* Unpacking a command allocates a few small objects. A bump arena reset
 * before every command keeps malloc off the hot path; what does not fit goes
 * to malloc until the next reset. */
#define ARENA_SIZE (64 * 1024)
static _Alignas(16) unsigned char arena_block[ARENA_SIZE];
static ncc_arena arena = {arena_block, ARENA_SIZE, 0, NULL, NULL};
static char wire_error[256];

void ncd_wire_cmd_release(void) { ncc_arena_reset(&arena); }

const char *ncd_wire_error(void) { return wire_error; }

static char wire_error[256];

int ncd_wire_cmd_check(const void *data, size_t len, size_t max_batch) {
  size_t count = 0, nested_at = 0;
  int rc = ncc_pb_walk_batches(data, len, NCC_BATCH_FIELD, &count, &nested_at);
  if (rc < 0) return NCD_EPROTO;
  if (rc > 0) {
    snprintf(wire_error, sizeof wire_error,
             "command %zu of the batch holds batches inside a batch: batches never nest", nested_at - 1);
    return NCD_ERR_INVALID_ARG_VALUE;
  }
  if (count > max_batch) {
    snprintf(wire_error, sizeof wire_error, "a batch of %zu commands is over the limit of %zu", count, max_batch);
    return NCD_EMSGSIZE;
  }
  return 0;
}

int ncd_wire_cmd_unpack(const void *data, size_t len, ncc_cmd *c) {
  return ncc_cmd_unpack(&arena, data, len, c, wire_error, sizeof wire_error);
}

int ncd_wire_batch_cmd(size_t i, ncc_cmd *c) {
  return ncc_cmd_batch_entry(&arena, i, c, wire_error, sizeof wire_error);
}

typedef struct frame_place {
  ncd_tally *tally;
  zmq_msg_t *msg;
  int made; /* ncd_tally_frame initialised msg */
} frame_place;

static void *in_frame(void *arg, size_t len) {
  frame_place *f = arg;
  f->made = 1;
  return ncd_tally_frame(f->tally, f->msg, len);
}

int ncd_wire_event_pack(const ncc_event *ev, ncd_tally *tally, zmq_msg_t *msg) {
  frame_place f = {tally, msg, 0};
  int rc = ncc_event_pack(ev, in_frame, &f);
  if (!f.made) zmq_msg_init(msg);
  return rc ? NCD_ENOMEM : 0;
}

int ncd_wire_batch_append(ncc_msgbatch_t *batch, const ncc_event *ev) {
  return ncc_event_pack(ev, ncc_place_in_batch, batch) ? NCD_ENOMEM : 0;
}
