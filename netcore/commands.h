/* commands.h: the dispatcher from handler commands to the daemon's modules.
 *
 * Called by the router for every received message. Enforces the protocol's
 * envelope rules (frame size, Hello first, payload frames, ids, ownership),
 * unpacks CommandBatch into its commands (PROTOCOL.md 1.1) and answers anything
 * it rejects with an Error event to the sender alone. Loop thread only.
 */
#ifndef NCD_COMMANDS_H
#define NCD_COMMANDS_H

#include <stddef.h>
#include <zmq.h>

/* The frames of a message after its envelope, received one at a time as the
 * dispatcher needs them (a batch has one per Write). Owned by router.c. */
typedef struct ncd_frames {
  int more; /* another frame of this message is waiting */
} ncd_frames;

/* Receives the next frame into *out (always initialised; the caller closes it).
 * Returns 0, or -1 when the message has no frame left. */
int ncd_frames_next(ncd_frames *f, zmq_msg_t *out);

/* Receives and drops the frames left. Returns how many there were. */
int ncd_frames_drain(ncd_frames *f);

/* Before Hello, an envelope larger than this is refused unread (a Hello is a
 * few dozen bytes). */
#define NCD_MAX_HELLO_ENVELOPE 4096

/* One message from routing id rid: env is the envelope frame (NULL if the
 * message had none), rest the frames after it. The dispatcher may move the
 * payload frames it receives. Returns how many commands the message held
 * (what the router's per-turn budget counts). */
size_t ncd_commands_dispatch(const void *rid, size_t rid_len, zmq_msg_t *env, ncd_frames *rest);

#endif
