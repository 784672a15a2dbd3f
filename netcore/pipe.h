/* pipe.h: src.pipe(dst) carried out inside netcore (PROTOCOL.md 17).
 *
 * One job: the pipes between netcore sockets. A pipe belongs to its source
 * (ncd_socket.pipe) and is linked into its destination (ncd_socket.piped_in;
 * a destination may have several sources, a source one destination, the
 * two may be the same socket). What socket.c reads from a piped source goes
 * into the destination's write queue in the buffer libuv read it into (no
 * copy), not to the handler, and uses no read credit; the source is not read
 * while the destination's queue, past high_water_mark, waits to be written
 * out (Node's pipe(): write() returned false, resume on 'drain'). This module
 * owns the pipe records and the Unpiped events; socket.c calls its hooks at
 * the points where a socket reads, ends, drains or closes. A pipe starts
 * moving only once the handler has credited every byte it was sent as Data,
 * so Data still in flight when Pipe left reaches dst (written by the library)
 * before anything netcore moves. Pipes carry on when their handler goes
 * (handoff.h) or netcore is taken over (takeover.h). Loop thread only.
 */
#ifndef NCD_PIPE_H
#define NCD_PIPE_H

#include "daemon.h"
#include "errors.h"

/* Node's writableHighWaterMark: the mark of a Pipe that gives none. */
#define NCD_PIPE_DEFAULT_HWM 16384

/* Why a pipe stopped: the wire's UnpipeReason values. */
enum {
  NCD_UNPIPE_REQUESTED = 1,
  NCD_UNPIPE_SOURCE_ENDED = 2,
  NCD_UNPIPE_SOURCE_CLOSED = 3,
  NCD_UNPIPE_DEST_CLOSED = 4
};

struct ncd_pipe {
  ncd_socket *src, *dest;
  ncc_list dest_link; /* in dest->piped_in */
  uint64_t bytes;     /* moved since the Pipe (or the adoption) */
  uint64_t start_at;  /* moves once src->credited reaches this (bytes sent as Data) */
  uint32_t hwm;
  unsigned no_end : 1;
  unsigned waiting : 1; /* dest went past hwm: src is not read until dest's queue is empty */
};

/* Pipe command: src into dest (both live sockets of one handler, possibly
 * the same). A pipe src already has is replaced (its Unpiped first); an
 * ended source is unpiped at once (dest ended unless no_end), and so is a
 * pipe into a destination the handler ended. Returns 0 or NCD_ENOMEM
 * (nothing changed). */
int ncd_pipe_start(ncd_socket *src, ncd_socket *dest, int no_end, uint32_t hwm);
/* Unpipe command: stops src's pipe with Unpiped{REQUESTED}. Returns 0, or
 * NCD_EINVAL when src has none. */
int ncd_pipe_unpipe(ncd_socket *src, ncd_err *err);

/* Takeover (takeover.h) restores a pipe shipped by the previous netcore.
 * Returns 0, or NCD_EINVAL when src has one already (a malformed state). */
int ncd_pipe_restore(ncd_socket *src, ncd_socket *dest, int no_end, uint32_t hwm);

/* Hooks of socket.c. */
/* How many bytes piped src may read now (0: not now): room in dest's queue,
 * at most max; 0 while waiting for dest's drain or for the handler's credit. */
size_t ncd_pipe_read_room(const ncd_socket *src, size_t max);
/* n bytes read from src were queued on dest: counts them, and stops reading
 * src when dest is now past the mark. */
void ncd_pipe_moved(ncd_socket *src, size_t n);
/* src's peer ended (its Ended was sent): ends dest unless no_end, then
 * Unpiped{SOURCE_ENDED}. */
void ncd_pipe_source_ended(ncd_socket *src);
/* The handler (or a pipe) ended d: the pipes into d stop (DEST_CLOSED). */
void ncd_pipe_dest_ended(ncd_socket *d);
/* s fails or closes: its own pipe stops (SOURCE_CLOSED), then the pipes
 * into it (DEST_CLOSED), each Unpiped before s's SocketError or Closed. */
void ncd_pipe_socket_closing(ncd_socket *s);
/* The handler credited src: a pipe of an ended source whose Data in flight
 * is now all credited ends as at the source's end. */
void ncd_pipe_credited(ncd_socket *src);
/* d's queue is written out: its waiting sources read again. */
void ncd_pipe_drained(ncd_socket *d);

#endif
