/* pbwalk.h: looks at protobuf wire bytes without decoding them, so that what
 * protobuf-c would recurse on can be refused first.
 *
 * protobuf-c decodes nested messages recursively and without a depth limit,
 * and both envelopes (Command, Event) can hold a batch of envelopes: a few
 * kilobytes of nested batches overflow any stack. netcore walks every Command
 * and libnc every Event with this before unpacking. Knows the wire format
 * (PROTOCOL.md 1.1: field 50 is the batch, its field 1 the entries), not the
 * schema. Pure functions; any thread.
 */
#ifndef NC_PBWALK_H
#define NC_PBWALK_H

#include <stddef.h>

#include "visibility.h"

/* Walks the envelope data[0..len): counts the entries of its batch (field
 * batch_field) into *count, and checks the nesting: an entry that is itself a
 * batch is allowed (it is refused on its own when the batch runs), a batch
 * inside that one is not. Returns 0, 1 when nested too deep (*nested_at: the
 * 1-based entry where), or -1 when the bytes are not protobuf (groups, which
 * proto3 never uses and protobuf-c would recurse on, included). */
NCC_HIDDEN int ncc_pb_walk_batches(const void *data, size_t len, unsigned batch_field,
                                      size_t *count, size_t *nested_at);

#endif
