/* fuzz_common.h: what the libFuzzer harnesses share.
 *
 * The nesting cap: Command.batch and Event.batch (field 50) hold messages
 * whose field 1 is again a Command or Event, so an envelope can nest without
 * limit, and protobuf-c recurses once per level without a bound (issue 9,
 * item 1: ~4,400 levels overflow the stack). netcore and libnc both walk the
 * wire bytes first (common/pbwalk) and refuse a batch inside a batch inside
 * a batch. With $NCF_MAX_NESTING set (non-zero; tests/fuzz/run.sh passes it)
 * a harness skips the inputs that walk refuses for nesting, to spend its time
 * on the rest; unset or 0 = no cap, every input is decoded. Pure functions,
 * any thread.
 */
#ifndef NCF_FUZZ_COMMON_H
#define NCF_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* Whether common/pbwalk refuses data[0..len) for nesting batches too deep. */
int ncf_nesting_too_deep(const uint8_t *data, size_t len);

/* $NCF_MAX_NESTING read once; 0 = no cap. */
int ncf_max_nesting(void);

/* Whether a harness should decode this input under the cap. */
int ncf_nesting_allowed(const uint8_t *data, size_t len);

#endif
