/* handler.h: the registry of handler actors, their ids, ownership and lease.
 *
 * A handler is one DEALER connection that said Hello: the connection, as ZAP
 * named it (its User-Id, auth.h), never the routing id the peer chose. It
 * owns the sockets and
 * servers it created or accepted; this module answers "who is this" and "may
 * this handler touch that id" for the command dispatcher, and tears a
 * handler's objects down when it goes away (Bye, lease expiry, unreachable).
 * A gone handler's memory is freed later, by ncd_handler_reap(), once its
 * sockets' close callbacks have run, so callers may keep using it for the rest
 * of the current callback. Loop thread only.
 */
#ifndef NCD_HANDLER_H
#define NCD_HANDLER_H

#include "daemon.h"
#include "errors.h"
#include "wire.h"

/* The live handler of the connection user_id (the envelope's ZAP User-Id)
 * that has routing id rid, or NULL. A live handler with rid but another
 * connection has lost its own: the ROUTER hands a routing id to a second
 * connection only once the first one's pipe is gone. It is made gone here,
 * and the newcomer gets none of its objects. user_id NULL: NULL. */
ncd_handler *ncd_handler_find(const void *rid, size_t rid_len, const char *user_id);

/* Handles Hello from rid on connection user_id (libzmq fd conn_fd): checks the
 * version, resets the connection's existing handler or makes a new one, and
 * sends Welcome with a fresh session token. Returns 0 or a negative error for
 * the dispatcher to report (the handler then does not exist), its detail in
 * err (the caller's). */
int ncd_handler_hello(const void *rid, size_t rid_len, const char *user_id, int conn_fd,
                      const ncc_cmd *cmd, ncd_err *err);

/* The connection with libzmq fd conn_fd closed: its handler is gone. */
void ncd_handler_conn_closed(int conn_fd);

/* The handler is gone for good: destroys its sockets (without events),
 * closes its servers, leaves shared listeners to their other members. Also
 * ends a parked handler (handoff.h) whose connections found no adopter.
 * Idempotent. */
void ncd_handler_gone(ncd_handler *h, const char *reason);

/* The handler died or left with Bye{handoff}: its connections pass to group
 * members or are parked for --handoff-ms (handoff.h); what cannot be adopted
 * goes as in ncd_handler_gone. While netcore shuts down, ncd_handler_gone. */
void ncd_handler_lost(ncd_handler *h, const char *reason);

/* A send found h unreachable (or out of memory): from now on nothing more is
 * sent to it and it is no longer found, but its teardown (ncd_handler_gone)
 * waits for the end of this loop turn (ncd_handler_reap), so whoever was
 * sending may go on using the socket or server it was sending about. reason
 * must be a static string. */
void ncd_handler_doom(ncd_handler *h, const char *reason);

/* Looks up h's policy entry (policy.h) in ncd.policy and sets its limits
 * from it and the flags; at Hello and after the policy is reloaded. */
void ncd_handler_apply_policy(ncd_handler *h);

/* Takeover (takeover.h): a handler of the previous netcore, gone and parked
 * for --handoff-ms, whose servers and sockets the same principal adopts on
 * its next Listen (handoff.h). NULL when out of memory. */
ncd_handler *ncd_handler_ghost(const char *principal, const char *name, const char *service,
                               uint32_t prefix, uint32_t credit_window, int lazy_acks);

/* The Welcome every session of h starts with (resume.c adds what it resumed). */
ncc_welcome ncd_handler_welcome(const ncd_handler *h);

/* Renews the lease. */
void ncd_handler_touch(ncd_handler *h);

/* Re-evaluates reading on all of h's sockets (after h blocked or unblocked). */
void ncd_handler_update_reading(ncd_handler *h);

/* Checks a handler-chosen id for a new object (prefix, strictly increasing)
 * and records it. Returns 0 or NCD_ERR_INVALID_ARG_VALUE, with why in err. */
int ncd_handler_claim_id(ncd_handler *h, uint64_t id, ncd_err *err);

/* Finds a socket/server by id for a command from h. Returns 0 or NCD_EBADF:
 * another handler's id answers exactly as an id that does not exist, so a
 * handler learns nothing of the others; err says which id. */
int ncd_handler_socket(ncd_handler *h, uint64_t id, ncd_socket **out, ncd_err *err);
int ncd_handler_server(ncd_handler *h, uint64_t id, ncd_server **out, ncd_err *err);

/* Whether h may own one more socket (--max-handler-sockets). */
int ncd_handler_socket_room(const ncd_handler *h);

/* Starts the lease timer (which also ends or drops over-budget handlers).
 * Returns 0 or the libuv error, logged. */
int ncd_handler_start(void);
void ncd_handler_stop(void);

/* Tears doomed handlers down, then frees gone handlers that own nothing any
 * more. Called at safe points: the end of a loop turn, the lease timer. */
void ncd_handler_reap(void);

#endif
