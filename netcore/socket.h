/* socket.h: stream sockets (TCP and UNIX), accepted or outbound.
 *
 * A socket reads only while its owner has granted credit, has not paused it,
 * and can take events (its ZeroMQ pipe is not full); it writes the payload
 * frames of Write commands straight from the ZeroMQ message (no copy) and
 * acknowledges them in batches once the kernel has them. A socket is closed
 * asynchronously: after ncd_socket_destroy() its id is gone at once, its
 * memory stays valid until the uv_close callback, which sends Closed (the
 * last event, exactly once). Loop thread only.
 */
#ifndef NCD_SOCKET_H
#define NCD_SOCKET_H

#include "daemon.h"
#include "wire.h"

/* Wraps an accepted (or inherited) connected fd in a new socket owned by
 * owner with a netcore-chosen id. Returns the socket (not yet reading, no
 * event sent) or NULL after closing fd. */
ncd_socket *ncd_socket_adopt(ncd_handler *owner, int fd, int is_unix);

/* Sends ev as the next event of s (fills seq and socket_id). Takes *payload. */
void ncd_socket_emit(ncd_socket *s, ncc_event *ev, zmq_msg_t *payload);

/* Connect command; cmd->id was already claimed. Always creates the socket;
 * failures arrive as SocketError + Closed. Returns 0, or an error for the
 * dispatcher when the arguments are invalid (no socket is created). */
int ncd_socket_connect(ncd_handler *h, const ncc_cmd *cmd);

/* Write command: takes *payload. Failures arrive as SocketError + Closed.
 * ack_now: acknowledge promptly even if the owner asked for lazy acks. */
void ncd_socket_write(ncd_socket *s, zmq_msg_t *payload, uint64_t fd_socket_id, int ack_now);
/* End command: optional payload (taken), then FIN after queued writes. */
void ncd_socket_end(ncd_socket *s, zmq_msg_t *payload, int ack_now);

/* A pipe's End (pipe.h): FIN after the queued writes, acknowledged to
 * nobody; nothing when s already ended. */
void ncd_socket_end_piped(ncd_socket *s);

/* Closes s now, dropping queued writes. notify: send Closed to the owner. */
void ncd_socket_destroy(ncd_socket *s, int notify);
/* Closes s now, with Closed to the owner; if bytes it was asked to write are
 * still queued, they are discarded, a TCP peer gets RST instead of FIN, and
 * Closed says had_error. */
void ncd_socket_cut(ncd_socket *s);
/* Sends SocketError{err} then closes with had_error. */
void ncd_socket_fail(ncd_socket *s, int err, const char *syscall);

void ncd_socket_pause(ncd_socket *s);
void ncd_socket_resume(ncd_socket *s);
void ncd_socket_credit(ncd_socket *s, uint32_t bytes);
int ncd_socket_set_timeout(ncd_socket *s, uint32_t msecs);
int ncd_socket_set_nodelay(ncd_socket *s, int enable);
int ncd_socket_set_keepalive(ncd_socket *s, int enable, uint32_t initial_delay_ms);

/* Starts or stops reading as credit, pause, owner and state say. */
void ncd_socket_update_reading(ncd_socket *s);

/* Sends the WriteAcks batched since the last call. */
void ncd_socket_flush_acks(void);

/* Hands s (accepted by another server) to server `to` and its owner: the
 * socket keeps its id and seq, sends Adopted, then replays the input its old
 * owner had not credited (kept since it was read), then Ended if the peer had
 * ended; the old owner's queued writes still go out, their acks unsent.
 * Called by handoff.c only. */
void ncd_socket_move(ncd_socket *s, ncd_server *to);

/* Takeover (takeover.h). The bytes of s's queued writes that the kernel
 * does not have yet, copied into *out (malloc'd, NULL when none). Returns 0,
 * or NCD_EBUSY while a write passing an fd is queued. */
int ncd_socket_unsent(ncd_socket *s, char **out, size_t *len);
/* A connection shipped by a previous netcore: socket `id` of owner, accepted
 * by srv (NULL: outbound or fd-made, of a resumable session), around fd; not
 * reading. NULL after closing fd. */
ncd_socket *ncd_socket_restore(ncd_handler *owner, ncd_server *srv, uint64_t id, int fd,
                               int is_unix);
/* Queues the previous netcore's unsent bytes, then (end) the FIN it still
 * owed. writes 0: their acks are nobody's; else they complete `writes`
 * Write/End commands of the owner (a resumable session, PROTOCOL.md 16.1),
 * the End included. Returns 0 or an error (s is closing). */
int ncd_socket_restore_writes(ncd_socket *s, const char *unsent, size_t len, int end,
                              uint32_t writes);
/* Bytes of queued writes the kernel already has whose completion libuv has
 * not reported yet (shipped as written). */
uint64_t ncd_socket_unacked_written(ncd_socket *s);
/* A resumable session's timeout: set, idle for idle_ms, not armed until
 * ncd_socket_resume_session. */
void ncd_socket_restore_timeout(ncd_socket *s, uint32_t msecs, uint32_t idle_ms);

/* Session resumption (PROTOCOL.md 16.1), once Welcome{resumed} is sent: what
 * the handler consumed beyond its last Credit counts as credited, the acks it
 * has not seen go out, the input it did not receive is replayed as Data,
 * then Ended if it missed that; its timeout goes on; reading starts. */
void ncd_socket_resume_session(ncd_socket *s, const ncc_resume_socket *r);
/* Resumption of an accepted socket the handler did not list (its Connection
 * was lost): Connection, then as ncd_socket_resume_session from nothing seen. */
void ncd_socket_announce(ncd_socket *s);

/* Bytes still queued for the kernel on every socket (shutdown waits for 0). */
uint64_t ncd_socket_total_queued(void);

#endif
