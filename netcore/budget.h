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

/* A read slab: one buffer that successive reads of one handler's sockets
 * fill end to end, each read becoming a frame that points into it. ZeroMQ's
 * own record of the frame is then the only allocation per read, and no byte
 * is copied (before slabs: a frame allocation, that record, and a copy of
 * every small read). A slab lives while its owner holds it or any of its
 * frames is in flight. Frames are charged like any other (len plus
 * NCD_FRAME_OVERHEAD); the slab's unused room is not: a slab is only retired
 * (ncd_slab_drop) once more than half of it went into frames (socket.c), so
 * the memory behind a handler's frames stays below twice their charge plus
 * the one slab it holds. Loop thread only, except the frames' release. */
typedef struct ncd_slab ncd_slab;
/* A new slab of cap bytes charging its frames to t, held by the caller.
 * NULL when out of memory. */
ncd_slab *ncd_slab_new(ncd_tally *t, size_t cap);
/* Where the next frame's bytes go and, in *room, how many fit. */
char *ncd_slab_room(ncd_slab *s, size_t *room);
/* Makes msg a frame of the len bytes just written at ncd_slab_room() (len <=
 * room); the slab moves past them. Returns 0, or -1 when out of memory (msg is
 * then empty and the bytes are not used). */
int ncd_slab_give(ncd_slab *s, zmq_msg_t *msg, size_t len);
/* The holder lets go (NULL is fine); freed once no frame points into it. */
void ncd_slab_drop(ncd_slab *s);

/* Initialises msg as a frame of len bytes charged to t and returns where to
 * write them, or NULL when out of memory (msg is then an empty message). */
void *ncd_tally_frame(ncd_tally *t, zmq_msg_t *msg, size_t len);
/* The same with the tally as a void *: ncc_msgbatch_t.alloc_frame. */
void *ncd_tally_alloc_frame(void *tally, zmq_msg_t *msg, size_t len);

#endif
