/* fuzz_common.c: see fuzz_common.h.
 *
 * The scan reads the wire format iteratively (an explicit stack of message
 * ends), so the scanner itself cannot overflow on the inputs it guards
 * against. */
#include "fuzz_common.h"

#include <stdlib.h>

#define BATCH_FIELD 50
#define MAX_SCAN_DEPTH 100000

static int varint(const uint8_t **p, const uint8_t *end, uint64_t *out) {
  uint64_t v = 0;
  for (int shift = 0; shift < 64 && *p < end; shift += 7) {
    uint8_t b = *(*p)++;
    v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *out = v;
      return 0;
    }
  }
  return -1;
}

int ncf_nesting_depth(const uint8_t *data, size_t len) {
  static const uint8_t *ends[MAX_SCAN_DEPTH];
  /* Levels alternate: even = a Command/Event (batch is field 50), odd = a
   * CommandBatch/EventBatch (its messages are field 1). */
  int level = 0, deepest = 0;
  const uint8_t *p = data;
  ends[0] = data + len;
  for (;;) {
    while (p == ends[level]) {
      if (level == 0) return deepest;
      level--;
    }
    uint64_t key, n;
    if (varint(&p, ends[level], &key) != 0) return deepest;
    switch (key & 7) {
    case 0:
      if (varint(&p, ends[level], &n) != 0) return deepest;
      break;
    case 1:
      if (ends[level] - p < 8) return deepest;
      p += 8;
      break;
    case 5:
      if (ends[level] - p < 4) return deepest;
      p += 4;
      break;
    case 2: {
      if (varint(&p, ends[level], &n) != 0 || n > (uint64_t)(ends[level] - p)) return deepest;
      uint64_t field = key >> 3;
      int descend = (level % 2 == 0) ? field == BATCH_FIELD : field == 1;
      if (descend && level + 1 < MAX_SCAN_DEPTH) {
        ends[++level] = p + n;
        if (level % 2 == 1 && (level + 1) / 2 > deepest) deepest = (level + 1) / 2;
      } else {
        p += n;
      }
      break;
    }
    default:
      return deepest;
    }
  }
}

int ncf_max_nesting(void) {
  static int cap = -1;
  if (cap < 0) {
    const char *s = getenv("NCF_MAX_NESTING");
    cap = s ? atoi(s) : 0;
    if (cap < 0) cap = 0;
  }
  return cap;
}

int ncf_nesting_allowed(const uint8_t *data, size_t len) {
  int cap = ncf_max_nesting();
  return cap == 0 || ncf_nesting_depth(data, len) <= cap;
}
