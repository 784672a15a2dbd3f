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

/* ZeroMQ is done with a frame: on its I/O thread, or on the loop thread when a
 * frame is closed unsent. */
static void release(void *data, void *hint) {
  frame_head *h = hint;
  ncd_tally *t = h->tally;
  atomic_fetch_add_explicit(&t->released, h->charge, memory_order_release);
  free(h);
  unref(t);
}

void *ncd_tally_frame(ncd_tally *t, zmq_msg_t *msg, size_t len) {
  frame_head *h = malloc(sizeof *h + len);
  if (!h) {
    zmq_msg_init(msg);
    return NULL;
  }
  h->tally = t;
  h->charge = len + NCD_FRAME_OVERHEAD;
  t->charged += h->charge;
  atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
  /* zmq_msg_init_data fails only when it cannot allocate its own record. */
  if (zmq_msg_init_data(msg, h + 1, len, release, h) != 0) {
    zmq_msg_init(msg);
    release(h + 1, h);
    return NULL;
  }
  return h + 1;
}

void *ncd_tally_alloc_frame(void *tally, zmq_msg_t *msg, size_t len) {
  return ncd_tally_frame(tally, msg, len);
}

/* ------------------------------------------------------------------ slabs */

struct ncd_slab {
  ncd_tally *tally;
  _Atomic uint32_t refs; /* its holder's, plus one per frame in flight */
  size_t used, cap;      /* loop thread only */
  _Alignas(16) char data[];
};

/* In front of each frame inside a slab. */
typedef struct slab_head {
  ncd_slab *slab;
  uint64_t charge;
} slab_head;

#define ALIGN16(n) (((n) + 15) & ~(size_t)15)

static void slab_unref(ncd_slab *s) {
  if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1) free(s);
}

ncd_slab *ncd_slab_new(ncd_tally *t, size_t cap) {
  ncd_slab *s = malloc(sizeof *s + cap);
  if (!s) return NULL;
  s->tally = t;
  atomic_init(&s->refs, 1);
  s->used = 0;
  s->cap = cap;
  return s;
}

char *ncd_slab_room(ncd_slab *s, size_t *room) {
  size_t at = s->used + sizeof(slab_head);
  *room = at < s->cap ? s->cap - at : 0;
  return s->data + at;
}

/* ZeroMQ is done with a frame of a slab (I/O thread, or the loop thread for
 * a frame closed unsent). The frame's tally reference keeps the tally alive. */
static void slab_release(void *data, void *hint) {
  slab_head *h = hint;
  ncd_tally *t = h->slab->tally;
  atomic_fetch_add_explicit(&t->released, h->charge, memory_order_release);
  slab_unref(h->slab);
  unref(t);
}

int ncd_slab_give(ncd_slab *s, zmq_msg_t *msg, size_t len) {
  slab_head *h = (slab_head *)(s->data + s->used);
  h->slab = s;
  h->charge = len + NCD_FRAME_OVERHEAD;
  s->tally->charged += h->charge;
  atomic_fetch_add_explicit(&s->tally->refs, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
  s->used = ALIGN16(s->used + sizeof *h + len);
  if (s->used > s->cap) s->used = s->cap;
  if (zmq_msg_init_data(msg, h + 1, len, slab_release, h) != 0) {
    zmq_msg_init(msg);
    slab_release(h + 1, h);
    return -1;
  }
  return 0;
}

void ncd_slab_drop(ncd_slab *s) {
  if (s) slab_unref(s);
}
