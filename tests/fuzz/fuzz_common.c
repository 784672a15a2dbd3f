/* fuzz_common.c: see fuzz_common.h. The nesting is judged by the decoders'
 * own walk, common/pbwalk (iterative but for two levels, so it cannot
 * overflow on the inputs it guards against). */
#include "fuzz_common.h"

#include <stdlib.h>

#include "pbwalk.h"
#include "msgbatch.h"

int ncf_nesting_too_deep(const uint8_t *data, size_t len) {
  size_t count, nested_at;
  return ncc_pb_walk_batches(data, len, NCC_BATCH_FIELD, &count, &nested_at) > 0;
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
  return ncf_max_nesting() == 0 || !ncf_nesting_too_deep(data, len);
}
