/* router.h: the ZeroMQ ROUTER socket that handlers talk to, driven by libuv.
 *
 * Owns ncd.router and its uv handles. Receives commands in batches and hands
 * each to ncd_commands_dispatch(); sends events with ZMQ_ROUTER_MANDATORY and
 * never blocks: an event for a handler whose pipe is full goes to that
 * handler's queue, the handler is marked blocked (its sockets stop reading,
 * see socket.h) and the queue is retried on a short timer. A send that finds
 * the handler's connection gone marks the handler gone, and so does the
 * connection monitor when that connection closes. Events for a handler
 * that said Hello.batch_events are collected in its batch (common/msgbatch.h) and sent
 * once per loop turn, from the prepare callback, or when the batch is full.
 * Loop thread only.
 */
#ifndef NCD_ROUTER_H
#define NCD_ROUTER_H

#include "daemon.h"
#include "wire.h"

/* Creates the context and socket and binds every cfg endpoint. Returns 0 or -1
 * after logging why. */
int ncd_router_start(void);

/* Closes the uv handles and the socket (linger bounded), terminates the context. */
void ncd_router_stop(void);

/* Sends ev to h, followed by *payload if payload is not NULL. Takes ownership
 * of *payload (it is moved or closed). Dropped silently if h is gone. */
void ncd_router_send(ncd_handler *h, const ncc_event *ev, zmq_msg_t *payload);

/* Sends ev to whoever has routing id rid (used before a Hello made a handler).
 * Best effort: dropped if the peer's pipe is full. */
void ncd_router_send_rid(const void *rid, size_t rid_len, const ncc_event *ev);

/* Tries to send h's queued events, then its batch; unblocks h when its queue
 * is empty. */
void ncd_router_flush(ncd_handler *h);

/* Reads the connection monitor: a closed connection's handler is gone
 * (ncd_handler_conn_closed). Called by the monitor's poll callback and before
 * a Hello binds a handler to its connection. */
void ncd_router_poll_monitor(void);

/* Sends every handler's collected batch (called at the end of each loop turn). */
void ncd_router_flush_batches(void);

#endif
