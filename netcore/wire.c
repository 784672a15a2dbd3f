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

/* One varint at *p (below end); 0 when malformed. */
static int varint_at(const uint8_t **p, const uint8_t *end, uint64_t *v) {
  *v = 0;
  for (int shift = 0; shift < 64 && *p < end; shift += 7) {
    uint8_t b = *(*p)++;
    *v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) return 1;
  }
  return 0;
}

/* The first length-delimited field `want` of the message [p, end): its
 * bytes in *at, *n. Skips other fields; 0 when absent or malformed. */
static int find_bytes_field(const uint8_t *p, const uint8_t *end, uint64_t want,
                            const uint8_t **at, uint64_t *n) {
  while (p < end) {
    uint64_t key, v;
    if (!varint_at(&p, end, &key)) return 0;
    switch (key & 7) {
    case 0: if (!varint_at(&p, end, &v)) return 0; break;
    case 1: if (end - p < 8) return 0; p += 8; break;
    case 5: if (end - p < 4) return 0; p += 4; break;
    case 2:
      if (!varint_at(&p, end, &v) || v > (uint64_t)(end - p)) return 0;
      if (key >> 3 == want) {
        *at = p;
        *n = v;
        return 1;
      }
      p += v;
      break;
    default: return 0;
    }
  }
  return 0;
}

int ncd_wire_is_resume_hello(const void *data, size_t len) {
  const uint8_t *p = data, *hello, *token;
  uint64_t n, tn;
  /* Command.hello = 10, Hello.resume_token = 21. */
  return find_bytes_field(p, p + len, 10, &hello, &n) &&
         find_bytes_field(hello, hello + n, 21, &token, &tn) && tn > 0;
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
