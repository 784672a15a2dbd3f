/* pbwalk.c: see pbwalk.h. */
#include "pbwalk.h"

#include <stdint.h>

/* Reads a varint at *p (< end). Returns 0, or -1 if truncated or too long. */
static int get_varint(const uint8_t **p, const uint8_t *end, uint64_t *out) {
  uint64_t v = 0;
  for (unsigned shift = 0; shift < 64 && *p < end; shift += 7) {
    uint8_t b = *(*p)++;
    v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *out = v;
      return 0;
    }
  }
  return -1;
}

/* One field of a message: its number, wire type and, for length-delimited
 * fields, its bytes. */
typedef struct field {
  uint64_t number;
  unsigned type;
  const uint8_t *data;
  size_t len;
} field;

/* Reads the field at *p. Returns 0, or -1 on malformed input. */
static int next_field(const uint8_t **p, const uint8_t *end, field *f) {
  uint64_t key, v;
  if (get_varint(p, end, &key) != 0) return -1;
  f->number = key >> 3;
  f->type = (unsigned)(key & 7);
  f->data = NULL;
  f->len = 0;
  switch (f->type) {
  case 0:
    return get_varint(p, end, &v);
  case 1:
    if (end - *p < 8) return -1;
    *p += 8;
    return 0;
  case 5:
    if (end - *p < 4) return -1;
    *p += 4;
    return 0;
  case 2:
    if (get_varint(p, end, &v) != 0 || v > (uint64_t)(end - *p)) return -1;
    f->data = *p;
    f->len = (size_t)v;
    *p += v;
    return 0;
  default:
    return -1; /* groups (3, 4) */
  }
}

/* Walks the batch bytes [p, end) at nesting level 0 (the envelope's batch) or
 * 1 (a batch entry that is a batch); an entry holding a batch at level 1 is
 * too deep. Recursion depth is at most 2. */
static int walk_batch(const uint8_t *p, const uint8_t *end, unsigned batch_field, int level,
                      size_t *count, size_t *nested_at) {
  field f, g;
  while (p < end) {
    if (next_field(&p, end, &f) != 0) return -1;
    if (f.number != 1 || f.type != 2) continue;
    if (level == 0) ++*count;
    const uint8_t *q = f.data, *qend = f.data + f.len;
    while (q < qend) {
      if (next_field(&q, qend, &g) != 0) return -1;
      if (g.number != batch_field) continue;
      if (level == 1 || g.type != 2) {
        if (!*nested_at) *nested_at = *count;
        return 1;
      }
      int rc = walk_batch(g.data, g.data + g.len, batch_field, 1, count, nested_at);
      if (rc != 0) return rc;
    }
  }
  return 0;
}

int ncc_pb_walk_batches(const void *data, size_t len, unsigned batch_field, size_t *count,
                        size_t *nested_at) {
  const uint8_t *p = data, *end = p + len;
  field f;
  *count = 0;
  *nested_at = 0;
  while (p < end) {
    if (next_field(&p, end, &f) != 0) return -1;
    if (f.number != batch_field) continue;
    if (f.type != 2) return -1;
    int rc = walk_batch(f.data, f.data + f.len, batch_field, 0, count, nested_at);
    if (rc != 0) return rc;
  }
  return 0;
}
