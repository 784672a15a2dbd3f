/* msgbatch.h: several protobuf messages and their payload frames in one
 * ZeroMQ message (PROTOCOL.md 1.1), shared by netcore (EventBatch) and libnc
 * (CommandBatch).
 *
 * A batch envelope is an Event or Command whose `batch` case (field 50) holds
 * a message with one `repeated` field 1. The builder appends each message as a
 * packed `field 1` entry as soon as it is known, keeps the payload frames that
 * go with them in order, and at the end wraps the entries into the envelope:
 * a batch of one is sent as that message alone, so batching never changes
 * what a single message looks like; the receiving side reads the frames that
 * follow an envelope one by one. Knows the protobuf wire format, not the
 * schema. Not thread-safe; each batch belongs to one loop.
 */
#ifndef NC_MSGBATCH_H
#define NC_MSGBATCH_H

#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#define NCC_BATCH_FIELD 50 /* Event.batch and Command.batch */

typedef struct ncc_msgbatch_s {
  unsigned char *data;   /* the packed entries */
  size_t len, cap;
  size_t first_off;      /* where the first message's own bytes start */
  uint32_t count;        /* messages in the batch */
  zmq_msg_t *frames;     /* [0]: the envelope once sealed; then the payloads */
  size_t nframes, frames_cap;
  size_t payload_bytes;
  int sealed;
  /* Optional: makes the envelope frame (msg initialised, len bytes to fill;
   * returns where, or NULL when out of memory). NULL = zmq_msg_init_size.
   * netcore charges its frames to the receiving handler this way. */
  void *(*alloc_frame)(void *ctx, zmq_msg_t *msg, size_t len);
  void *alloc_ctx;
} ncc_msgbatch_t;

#include "visibility.h"

/* Room for one more message of len packed bytes: returns where to pack it, or
 * NULL when out of memory (the batch is then unchanged). */
NCC_HIDDEN unsigned char *ncc_msgbatch_entry(ncc_msgbatch_t *b, size_t len);

/* Appends a payload frame (moved from *frame, which is closed). Returns 0, or
 * -1 when out of memory (*frame is closed then too). */
NCC_HIDDEN int ncc_msgbatch_frame(ncc_msgbatch_t *b, zmq_msg_t *frame);

/* Wraps the entries into the envelope in frames[0]. On success *frames and *n
 * describe the whole message; send or move the frames, then call
 * ncc_msgbatch_clear(). Returns 0 or -1 when out of memory. */
NCC_HIDDEN int ncc_msgbatch_seal(ncc_msgbatch_t *b, zmq_msg_t **frames, size_t *n);

/* Closes the frames left and empties the batch, keeping its memory. */
NCC_HIDDEN void ncc_msgbatch_clear(ncc_msgbatch_t *b);

/* Empties the batch and frees its memory. */
NCC_HIDDEN void ncc_msgbatch_free(ncc_msgbatch_t *b);

/* Receiving: the frames after the envelope of a message on zsock, one at a
 * time. *more says whether one is waiting (zmq_msg_more of the last frame);
 * *out is initialised either way (close it). Returns 1 if a frame was read. */
NCC_HIDDEN int ncc_frame_next(void *zsock, zmq_msg_t *out, int *more);
/* Receives and drops the frames left; returns how many there were. */
NCC_HIDDEN int ncc_frames_drain(void *zsock, int *more);

static inline int ncc_msgbatch_empty(const ncc_msgbatch_t *b) { return b->count == 0; }

#endif
