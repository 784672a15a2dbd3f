/* budget.c: see budget.h. */
#include "budget.h"

#include <stdatomic.h>
#include <stdlib.h>

struct ncd_tally {
  uint64_t charged;           /* loop thread only */
  _Atomic uint64_t released;  /* added to by ZeroMQ's I/O thread */
  _Atomic uint32_t refs;
};

/* In front of every frame's bytes; 16 bytes keep the data aligned as malloc's. */
typedef struct frame_head {
  ncd_tally *tally;
  uint64_t charge;
} frame_head;

#define HEAD(data) ((frame_head *)(data) - 1)

ncd_tally *ncd_tally_new(void) {
  ncd_tally *t = calloc(1, sizeof *t);
  if (t) atomic_init(&t->refs, 1);
  return t;
}

static void unref(ncd_tally *t) {
  if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1) free(t);
}

void ncd_tally_drop(ncd_tally *t) {
  if (t) unref(t);
}

uint64_t ncd_tally_in_flight(const ncd_tally *t) {
  return t->charged - atomic_load_explicit(&t->released, memory_order_acquire);
}

void *ncd_tally_buffer(size_t cap) {
  frame_head *h = malloc(sizeof *h + cap);
  return h ? h + 1 : NULL;
}

void *ncd_tally_buffer_shrink(void *data, size_t len) {
  frame_head *h = realloc(HEAD(data), sizeof *h + len);
  return h ? h + 1 : data;
}

void ncd_tally_buffer_free(void *data) {
  if (data) free(HEAD(data));
}

/* ZeroMQ is done with a frame: on its I/O thread, or on the loop thread when a
 * frame is closed unsent. */
static void release(void *data, void *hint) {
  frame_head *h = hint;
  ncd_tally *t = h->tally;
  atomic_fetch_add_explicit(&t->released, h->charge, memory_order_release);
  free(h);
  unref(t);
}

int ncd_tally_give(ncd_tally *t, zmq_msg_t *msg, void *data, size_t len) {
  frame_head *h = HEAD(data);
  h->tally = t;
  h->charge = len + NCD_FRAME_OVERHEAD;
  t->charged += h->charge;
  atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
  /* zmq_msg_init_data fails only when it cannot allocate its own record. */
  if (zmq_msg_init_data(msg, data, len, release, h) != 0) {
    zmq_msg_init(msg);
    release(data, h);
    return -1;
  }
  return 0;
}

void *ncd_tally_frame(ncd_tally *t, zmq_msg_t *msg, size_t len) {
  void *data = ncd_tally_buffer(len);
  if (!data) {
    zmq_msg_init(msg);
    return NULL;
  }
  return ncd_tally_give(t, msg, data, len) == 0 ? data : NULL;
}

void *ncd_tally_alloc_frame(void *tally, zmq_msg_t *msg, size_t len) {
  return ncd_tally_frame(tally, msg, len);
}
