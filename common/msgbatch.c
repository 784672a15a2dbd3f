/* msgbatch.c: see msgbatch.h.
 *
 * Protobuf wire format: a length-delimited field is its key (field number << 3
 * | 2, a varint), the length (a varint), then the bytes. */
#include "msgbatch.h"

#include <stdlib.h>
#include <string.h>

#define VARINT_MAX 10
#define KEY(field) (((uint64_t)(field) << 3) | 2u)

static size_t put_varint(unsigned char *p, uint64_t v) {
  size_t n = 0;
  while (v >= 0x80) {
    p[n++] = (unsigned char)(v | 0x80);
    v >>= 7;
  }
  p[n++] = (unsigned char)v;
  return n;
}

static size_t varint_len(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) v >>= 7, n++;
  return n;
}

unsigned char *ncc_msgbatch_entry(ncc_msgbatch_t *b, size_t len) {
  size_t need = 1 + VARINT_MAX + len;
  if (b->cap - b->len < need) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < need) cap *= 2;
    unsigned char *p = realloc(b->data, cap);
    if (p == NULL) return NULL;
    b->data = p;
    b->cap = cap;
  }
  if (b->count == 0) b->first_off = b->len + 1 + varint_len(len);
  b->data[b->len++] = (unsigned char)KEY(1);
  b->len += put_varint(b->data + b->len, len);
  unsigned char *at = b->data + b->len;
  b->len += len;
  b->count++;
  return at;
}

/* Room for one more frame; slot 0 is kept for the envelope. */
static int reserve_frame(ncc_msgbatch_t *b) {
  if (b->nframes == 0) b->nframes = 1;
  if (b->nframes < b->frames_cap) return 0;
  size_t cap = b->frames_cap ? b->frames_cap * 2 : 16;
  zmq_msg_t *f = realloc(b->frames, cap * sizeof(*f));
  if (f == NULL) return -1;
  b->frames = f;
  b->frames_cap = cap;
  return 0;
}

int ncc_msgbatch_frame(ncc_msgbatch_t *b, zmq_msg_t *frame) {
  if (reserve_frame(b) != 0) {
    zmq_msg_close(frame);
    return -1;
  }
  zmq_msg_t *slot = &b->frames[b->nframes++];
  zmq_msg_init(slot);
  zmq_msg_move(slot, frame);
  zmq_msg_close(frame);
  b->payload_bytes += zmq_msg_size(slot);
  return 0;
}

/* The envelope frame of len bytes: where to write them, or NULL. */
static unsigned char *envelope(ncc_msgbatch_t *b, zmq_msg_t *env, size_t len) {
  if (b->alloc_frame) return b->alloc_frame(b->alloc_ctx, env, len);
  return zmq_msg_init_size(env, len) == 0 ? zmq_msg_data(env) : NULL;
}

int ncc_msgbatch_seal(ncc_msgbatch_t *b, zmq_msg_t **frames, size_t *n) {
  if (reserve_frame(b) != 0) return -1;
  zmq_msg_t *env = &b->frames[0];
  unsigned char *at;
  if (b->count == 1) { /* one message goes alone, as if never batched */
    size_t len = b->len - b->first_off;
    if ((at = envelope(b, env, len)) == NULL) return -1;
    memcpy(at, b->data + b->first_off, len);
  } else {
    unsigned char head[2 * VARINT_MAX];
    size_t h = put_varint(head, KEY(NCC_BATCH_FIELD));
    h += put_varint(head + h, b->len);
    if ((at = envelope(b, env, h + b->len)) == NULL) return -1;
    memcpy(at, head, h);
    if (b->len > 0) memcpy(at + h, b->data, b->len);
  }
  b->sealed = 1;
  *frames = b->frames;
  *n = b->nframes;
  return 0;
}

void ncc_msgbatch_clear(ncc_msgbatch_t *b) {
  /* Frame 0 holds a message only once sealed; closing a sent frame is harmless. */
  for (size_t i = b->sealed ? 0 : 1; i < b->nframes; i++) zmq_msg_close(&b->frames[i]);
  b->sealed = 0;
  b->nframes = 0;
  b->payload_bytes = 0;
  b->len = 0;
  b->count = 0;
}

void ncc_msgbatch_free(ncc_msgbatch_t *b) {
  ncc_msgbatch_clear(b);
  free(b->frames);
  free(b->data);
  b->frames = NULL;
  b->data = NULL;
  b->len = b->cap = b->frames_cap = 0;
}

int ncc_frame_next(void *zsock, zmq_msg_t *out, int *more) {
  zmq_msg_init(out);
  if (!*more) return 0;
  if (zmq_msg_recv(out, zsock, 0) < 0) {
    *more = 0;
    return 0;
  }
  *more = zmq_msg_more(out);
  return 1;
}

int ncc_frames_drain(void *zsock, int *more) {
  int n = 0;
  zmq_msg_t m;
  while (ncc_frame_next(zsock, &m, more)) {
    zmq_msg_close(&m);
    n++;
  }
  zmq_msg_close(&m);
  return n;
}
