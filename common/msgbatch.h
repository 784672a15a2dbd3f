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

#define NC__BATCH_FIELD 50 /* Event.batch and Command.batch */

typedef struct nc__msgbatch_s {
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
} nc__msgbatch_t;

#define NC__HIDDEN_MB __attribute__((visibility("hidden")))

/* Room for one more message of len packed bytes: returns where to pack it, or
 * NULL when out of memory (the batch is then unchanged). */
NC__HIDDEN_MB unsigned char *nc__msgbatch_entry(nc__msgbatch_t *b, size_t len);

/* Appends a payload frame (moved from *frame, which is closed). Returns 0, or
 * -1 when out of memory (*frame is closed then too). */
NC__HIDDEN_MB int nc__msgbatch_frame(nc__msgbatch_t *b, zmq_msg_t *frame);

/* Wraps the entries into the envelope in frames[0]. On success *frames and *n
 * describe the whole message; send or move the frames, then call
 * nc__msgbatch_clear(). Returns 0 or -1 when out of memory. */
NC__HIDDEN_MB int nc__msgbatch_seal(nc__msgbatch_t *b, zmq_msg_t **frames, size_t *n);

/* Closes the frames left and empties the batch, keeping its memory. */
NC__HIDDEN_MB void nc__msgbatch_clear(nc__msgbatch_t *b);

/* Empties the batch and frees its memory. */
NC__HIDDEN_MB void nc__msgbatch_free(nc__msgbatch_t *b);

/* Receiving: the frames after the envelope of a message on zsock, one at a
 * time. *more says whether one is waiting (zmq_msg_more of the last frame);
 * *out is initialised either way (close it). Returns 1 if a frame was read. */
NC__HIDDEN_MB int nc__frame_next(void *zsock, zmq_msg_t *out, int *more);
/* Receives and drops the frames left; returns how many there were. */
NC__HIDDEN_MB int nc__frames_drain(void *zsock, int *more);

static inline int nc__msgbatch_empty(const nc__msgbatch_t *b) { return b->count == 0; }

#endif
