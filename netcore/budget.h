/* budget.h: the bytes on their way to a handler, counted until ZeroMQ lets go.
 *
 * ZeroMQ's high-water mark counts messages, not bytes, and what netcore queues
 * itself behind a full pipe has no bound of its own. So every frame netcore
 * sends toward a handler is allocated here and charged to that handler's
 * tally: its length plus NCD_FRAME_OVERHEAD for the bookkeeping around it.
 * ZeroMQ frees a frame once it has written it to the handler's connection (or
 * dropped it with the connection) and the release is counted then; what is
 * charged and not yet released is what the handler has not taken yet, whether
 * it waits in netcore's own queue, in ZeroMQ's pipe or in the encoder.
 *
 * Threads: everything here is called from the loop thread, except the release
 * callback, which runs on ZeroMQ's I/O thread and touches only atomics. A
 * tally is reference counted (its owner plus one per frame in flight), so it
 * outlives a handler that is freed while ZeroMQ still holds its frames.
 */
#ifndef NCD_BUDGET_H
#define NCD_BUDGET_H

#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

/* What one frame costs besides its bytes: ZeroMQ's message content, the frame
 * header below, and a share of netcore's queue entry when the pipe is full. */
#define NCD_FRAME_OVERHEAD 256

typedef struct ncd_tally ncd_tally;

/* A new tally with one reference, its owner's. NULL when out of memory. */
ncd_tally *ncd_tally_new(void);
/* Drops the owner's reference; the tally is freed once no frame holds it. */
void ncd_tally_drop(ncd_tally *t);
/* Bytes charged and not yet released. */
uint64_t ncd_tally_in_flight(const ncd_tally *t);

/* A buffer of cap bytes that can later become a frame (ncd_tally_give), for
 * data that must be read before its length is known. NULL when out of memory.
 * Owned by the caller until given; free it with ncd_tally_buffer_free. */
void *ncd_tally_buffer(size_t cap);
/* Shrinks a buffer to len bytes (len > 0); returns the buffer, moved or not. */
void *ncd_tally_buffer_shrink(void *data, size_t len);
void ncd_tally_buffer_free(void *data);
/* Makes msg a frame of the first len bytes of buffer data, charged to t; msg
 * owns the buffer from now on (sent or closed by the caller). Returns 0, or -1
 * when out of memory (the buffer is freed then and msg is empty). */
int ncd_tally_give(ncd_tally *t, zmq_msg_t *msg, void *data, size_t len);

/* Initialises msg as a frame of len bytes charged to t and returns where to
 * write them, or NULL when out of memory (msg is then an empty message). */
void *ncd_tally_frame(ncd_tally *t, zmq_msg_t *msg, size_t len);
/* The same with the tally as a void *: ncc_msgbatch_t.alloc_frame. */
void *ncd_tally_alloc_frame(void *tally, zmq_msg_t *msg, size_t len);

#endif
