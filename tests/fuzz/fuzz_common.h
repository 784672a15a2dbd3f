/* fuzz_common.h: what the libFuzzer harnesses share.
 *
 * The nesting cap: Command.batch and Event.batch (field 50) hold messages
 * whose field 1 is again a Command or Event, so an envelope can nest without
 * limit, and protobuf-c recurses once per level without a bound (issue 9,
 * item 1: ~4,400 levels overflow the stack). netcore now walks the wire bytes
 * first; libnc does not yet. A harness whose decoder has no walk skips
 * inputs nested deeper than $NCF_MAX_NESTING (tests/fuzz/run.sh sets it;
 * unset or 0 = no cap, every input is decoded). Pure functions, any thread.
 */
#ifndef NCF_FUZZ_COMMON_H
#define NCF_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* How many batch levels (field 50 -> field 1 -> field 50 ...) the protobuf
 * encoding in data[0..len) holds; a malformed field ends the scan there. */
int ncf_nesting_depth(const uint8_t *data, size_t len);

/* $NCF_MAX_NESTING read once; 0 = no cap. */
int ncf_max_nesting(void);

/* Whether a harness should decode this input under the cap. */
int ncf_nesting_allowed(const uint8_t *data, size_t len);

#endif
