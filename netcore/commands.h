/* commands.h: the dispatcher from handler commands to the daemon's modules.
 *
 * Called by the router for every received message. Enforces the protocol's
 * envelope rules (frame size, Hello first, payload frames, ids, ownership) and
 * answers anything it rejects with an Error event to the sender alone. Loop
 * thread only.
 */
#ifndef NCD_COMMANDS_H
#define NCD_COMMANDS_H

#include <stddef.h>
#include <zmq.h>

/* One message from routing id rid: env is the envelope frame (NULL if the
 * message had none), payload the second frame or NULL, nframes the number of
 * frames after the routing id. The dispatcher may move *payload. */
void ncd_commands_dispatch(const void *rid, size_t rid_len, zmq_msg_t *env, zmq_msg_t *payload,
                           int nframes);

#endif
