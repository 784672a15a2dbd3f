/* nc_int.h: libnc's internal declarations, shared by its modules.
 *
 *   loop.c    the loop: ZeroMQ link to netcore, Hello, poll, dispatch of
 *             events to servers and sockets, deferred work, liveness
 *   timer.c   timers and signal watches
 *   server.c  nc_server_*: listen, close and the server events
 *   socket.c  nc_socket_*: connect, write/ack, credits, pause, pipe, close
 *   encoding.c  setEncoding decoders (utf8, ascii, base64)
 *   address.c   isIP, address JSON, nc__address;  errors.c  nc_err_* over
 *               common/errtable
 *   ../../common/  shared with netcore: protocol (the protobuf-c glue:
 *               ncc_cmd packing, ncc_event unpacking), idmap (wire id ->
 *               handle), msgbatch, pbwalk, list, utf8, keyfile
 *
 * Everything here runs on the loop's thread. "nc__" names are internal and
 * not exported from the shared library.
 */
#ifndef NC_INT_H
#define NC_INT_H

#include <signal.h>
#include <stdint.h>
#include <zmq.h>

#include "idmap.h"
#include "list.h"
#include "msgbatch.h"
#include "protocol.h"
#include "nc/nc.h"

#include "visibility.h"

/* ------------------------------------------------------------------- wire */

/* Commands and events are common/protocol.h's ncc_cmd and ncc_event. Events
 * unpack into loop->arena (its first 8 KiB are loop->arena_block). */
#define NC__ARENA_BLOCK 8192

/* The public form of an address the protocol module unpacked (a path longer
 * than nc_address_t holds is cut); out is zeroed when a is NULL. */
NCC_HIDDEN void nc__address(const ncc_addr *a, nc_address_t *out);

/* --------------------------------------------------------------- encoding */

typedef enum { NC__ENC_NONE = 0, NC__ENC_UTF8, NC__ENC_ASCII, NC__ENC_BASE64 } nc__enc_t;

/* Streaming decoder state: bytes of an incomplete character (utf8) or of an
 * incomplete 3-byte group (base64) carried to the next read. */
typedef struct nc__decoder_s {
  nc__enc_t enc;
  uint32_t cp;          /* utf8: code point so far */
  uint8_t need, seen;   /* utf8: continuation bytes needed / seen */
  uint8_t lower, upper; /* utf8: allowed range of the next byte */
  uint8_t pend[3];      /* base64: carried bytes */
  uint8_t npend;
} nc__decoder_t;

NCC_HIDDEN int nc__decoder_set(nc__decoder_t *d, const char *encoding);
/* Largest output of decoding len bytes (plus the NUL). */
NCC_HIDDEN size_t nc__decoder_max_out(const nc__decoder_t *d, size_t len);
/* Decodes in[0..len) into out (nc__decoder_max_out bytes); returns the output
 * length and NUL-terminates. */
NCC_HIDDEN size_t nc__decoder_write(nc__decoder_t *d, const uint8_t *in, size_t len,
                                    char *out);
/* Flushes what is carried (end of stream); returns the output length. */
NCC_HIDDEN size_t nc__decoder_end(nc__decoder_t *d, char *out);

/* ------------------------------------------------------------------ loop */

/* A write whose callback is still to be called: seq is the write's number in
 * the socket's sequence of Write/End commands; 0 marks one that failed
 * locally (write after end). */
typedef struct {
  uint64_t seq;
  nc_write_cb cb;
  void *arg;
} nc__wreq_t;

typedef struct {
  nc__wreq_t *v;
  size_t cap, head, len;
} nc__wring_t;

/* A Write or End kept until netcore acknowledges it, to be sent again to the
 * netcore that resumes the session if the one that took over never read it
 * (PROTOCOL.md 16.1). msg shares the payload's bytes (zmq_msg_copy). */
typedef struct {
  uint64_t seq, fd_id;
  int is_end;
  zmq_msg_t msg;
} nc__wlog_ent_t;

typedef struct {
  nc__wlog_ent_t *v;
  size_t cap, head, len;
} nc__wlog_t;

/* Input held while a socket is paused, in arrival order. */
typedef enum { NC__IN_DATA, NC__IN_END, NC__IN_CLOSE } nc__in_kind_t;
typedef struct {
  nc__in_kind_t kind;
  int had_error;
  zmq_msg_t msg; /* NC__IN_DATA: the payload frame, moved here */
} nc__input_t;

typedef struct {
  nc__input_t *v;
  size_t cap, head, len;
} nc__inring_t;

/* Work to do on the next loop turn, never inside the user's own call. */
enum {
  NC__P_FLUSH_INPUT = 1u << 0,  /* socket: deliver input queued while paused */
  NC__P_FAILED_WRITES = 1u << 1, /* socket: write after end: callbacks, 'error' */
  NC__P_CLOSE = 1u << 2,        /* socket never connected / server not
                                   listening: emit 'close' and free */
  NC__P_ERROR = 1u << 3         /* socket: error found locally: 'error', destroy */
};

typedef enum { NC__H_SERVER = 1, NC__H_SOCKET = 2 } nc__htype_t;

/* Common head of servers and sockets. */
typedef struct nc__handle_s {
  nc__htype_t type;
  nc_loop_t *loop;
  void *data;
  ncc_list all;      /* loop->servers or loop->sockets */
  ncc_list pend;     /* loop->pending while pending_flags != 0 */
  unsigned pending_flags;
  int refd;            /* counted in loop->refs */
} nc__handle_t;

typedef enum {
  NC__SV_IDLE,      /* not listening (new, or after a listen error) */
  NC__SV_LISTENING_PENDING,
  NC__SV_LISTENING,
  NC__SV_CLOSING,   /* ServerClose sent, waiting for ServerClosed */
  NC__SV_RELISTEN   /* the link was lost: listens again after the next Welcome */
} nc__sv_state_t;

struct nc_server_s {
  nc__handle_t h;
  nc_server_events_t ev;
  nc_server_cb listen_cb, close_cb;
  nc__sv_state_t state;
  uint64_t id;
  int allow_half_open, backlog;
  char *group;
  unsigned max_connections, connections;
  int close_requested;
  uint64_t close_on_last; /* closed with the old netcore (EBADF after a resume):
                             the incarnation id whose last connection's close
                             completes the close (0: none) */
  nc_address_t addr;
  ncc_cmd req;  /* the last Listen (endpoint fields; host/path owned), for a relisten */
};

typedef enum {
  NC__SK_NEW,        /* no connection: new, or inside its close callback */
  NC__SK_CONNECTING,
  NC__SK_OPEN,
  NC__SK_CLOSED      /* its close callback is running */
} nc__sk_state_t;

struct nc_socket_s {
  nc__handle_t h;
  nc_socket_events_t ev;
  nc_socket_cb connect_cb, timeout_cb;
  nc__sk_state_t state;
  uint64_t id;
  nc_server_t *server;
  uint64_t server_id;  /* the server incarnation it was accepted under */
  int allow_half_open;
  int ended_local;    /* End sent (our FIN is queued) */
  int ended_remote;   /* 'end' delivered (or queued) */
  int uncounted;      /* already taken off server->connections (destroy() or close) */
  int destroyed;      /* destroy() called or the socket failed: no more
                         events but 'close' */
  int had_error;
  int paused, pipe_paused, need_drain;
  int soft_paused; /* paused by pipe() without a Pause command: credit alone stops netcore */
  int error_emitted;
  int closed_final;   /* Closed arrived: kernel_written is final */
  int adopted;        /* came by Adopted: another handler served it before */
  int local_err;      /* NC__P_ERROR: the error to emit */
  nc_address_t local, remote;
  uint64_t bytes_read, bytes_sent, kernel_written;
  size_t buffer_size, hwm;
  uint64_t write_seq, acked_seq;
  /* Session resumption (PROTOCOL.md 16.1): */
  uint64_t acked_bytes, credited; /* WriteAck bytes and Credit given, in total */
  int got_end;         /* Ended received (delivered or queued) */
  uint64_t last_seq;   /* seq of the last event received about it */
  int opts_dirty;      /* an option set while the link was down: send it again */
  unsigned opts_gen, opts_hello_gen; /* options set so far; as a resume Hello told them */
  ncc_endpoint connect_ep; /* the last Connect's endpoint (host/path owned): sent again
                              when the netcore that resumes the session lacks it */
  int resume_mark;     /* while a resumed Welcome is handled: 1 go on, 2 gone, 3 failed */
  uint64_t resume_writes; /* with mark 1: writes netcore carried out */
  nc__wlog_t wlog;     /* writes kept until acknowledged */
  nc__wring_t wreqs;   /* writes waiting for their ack */
  nc__wring_t failed;  /* writes after end, failing on the next turn */
  uint32_t unacked_credit; /* consumed but not yet granted back */
  nc__inring_t input;
  nc__decoder_t dec;
  nc_socket_t *pipe_dst, *pipe_srcs, *pipe_next;
  int pipe_no_end;          /* nc_socket_pipe_opts {end: false} */
  /* Pipes inside netcore (PROTOCOL.md 17) of this source: Pipe commands
   * sent (or named by Adopted) whose Unpiped has not come yet; unpiping:
   * Unpipe sent for the latest one. Each Pipe ends in exactly one Unpiped
   * (or an Error), in order. */
  unsigned pipes_out;
  int unpiping;
  uint64_t adopted_pipe_dst; /* Adopted named this dest, not adopted here yet */
  /* Options given before connect, sent once the connection exists. */
  unsigned timeout_ms;
  int nodelay, keepalive; /* -1 = never set */
  unsigned keepalive_delay;
};

struct nc_timer_s {
  nc_loop_t *loop;
  void *data;
  ncc_list link;  /* loop->timers, sorted by due, while active */
  ncc_list all;   /* loop->all_timers until closed */
  nc_timer_cb cb;
  uint64_t due, repeat, gen;
  int active, running, closing;
};

struct nc_loop_s {
  void *zctx, *dealer, *monitor;
  int dealer_fd, monitor_fd, epfd;
  int wake[2];        /* self-pipe: signals and nc_loop_stop() */
  char endpoint[256];
  char errmsg[512];
  char instance_id[64], server_version[32];
  uint32_t id_prefix, next_id;
  uint32_t credit_window, lease_ms, max_frame, max_write_queue;
  uint32_t minor_version; /* Welcome.minor_version: 2 = pipes inside netcore */
  int pipe_offload;       /* NETCORE_PIPE_OFFLOAD is not "0" */
  uint64_t now, last_send, last_recv, ping_nonce;
  int ping_outstanding;
  volatile sig_atomic_t stop;
  int gone;           /* 0, or the error netcore's loss is reported with */
  int gone_pending;   /* loss found inside a user call; reported next turn */
  int gone_done;      /* every handle has been told */
  int welcomed;       /* Hello answered: Bye is due at free */
  int shutdown;       /* netcore sent Shutdown */
  int more;           /* events were left unread (fairness budget) */
  unsigned refs;      /* what keeps nc_loop_run running */
  ncc_idmap_t socket_ids, server_ids;
  ncc_list servers, sockets, timers, all_timers, pending;
  uint64_t timer_gen;
  ncc_arena arena;    /* events unpack here (protocol.h) */
  _Alignas(16) unsigned char arena_block[NC__ARENA_BLOCK];
  int batching;       /* inside nc_loop_process: commands wait in out_batch */
  int sent_since_drain; /* sent since a receive found the dealer empty */
  /* The Data frame whose bytes an on_data callback is looking at: a write of
   * exactly those bytes shares the frame instead of copying it (socket.c). */
  zmq_msg_t *delivering;
  int curve;            /* the link uses CURVE (a tcp endpoint with keys) */
  char curve_server[41], curve_public[41], curve_secret[41]; /* Z85, for every new dealer */
  /* Reconnection (nc.h, no_reconnect): */
  int reconnect;        /* on */
  int relinking;        /* link lost: waiting for a new Welcome */
  unsigned link_gen;    /* dealers made so far (names the monitor endpoint) */
  uint64_t relink_at;   /* relinking without a dealer: open one at this time */
  uint64_t relink_deadline; /* relinking with a dealer: a new one after this */
  char hello_name[256];
  char hello_service[64]; /* Hello.service, "" = none (kept for every reconnect) */
  /* Session resumption across a netcore takeover (PROTOCOL.md 16.1): */
  int resumable;        /* Hello.resumable (NETCORE_RESUME=0 turns it off) */
  uint8_t session_token[16]; /* Welcome.session_token of this session */
  size_t session_token_len;
  int resuming;         /* the link is lost and the session may resume: sockets wait */
  uint64_t resume_deadline; /* resuming: the sockets fail after this */
  uint32_t hello_credit, hello_lease, hello_timeout;
  int in_run;         /* inside nc_loop_run, which knows what epoll saw */
  int left;           /* nc_loop_leave(): nothing more is sent or dispatched */
  int monitor_ready;  /* nc_loop_run: the monitor's fd was readable */
  ncc_msgbatch_t out_batch; /* commands of this turn (PROTOCOL.md 1.1) */
  char *scratch;      /* decoded text for 'data' */
  size_t scratch_cap;
  struct nc__stats_req *stats_head, *stats_tail; /* Stats asked, answers due in order */
  nc_signal_cb sig_cb[65];
  void *sig_arg[65];
  void *data;
};

/* Sends cmd (and a payload frame if payload != NULL; with payload_msg it is
 * moved from there instead of copied). A send failure marks netcore gone
 * (reported on the next turn). Returns 0 or a negative error. */
NCC_HIDDEN int nc__send(nc_loop_t *loop, const ncc_cmd *cmd, const void *payload,
                        size_t len, zmq_msg_t *payload_msg);
/* A fresh id for a Listen or Connect: (id_prefix << 32) | ++n. */
NCC_HIDDEN uint64_t nc__next_id(nc_loop_t *loop);
NCC_HIDDEN void nc__ref(nc__handle_t *h);
NCC_HIDDEN void nc__unref(nc__handle_t *h);
/* Queues deferred work for h (flags are OR'ed). */
NCC_HIDDEN void nc__pend(nc__handle_t *h, unsigned flags);
/* Scratch space of at least n bytes for decoded text; NULL if out of memory. */
NCC_HIDDEN char *nc__scratch(nc_loop_t *loop, size_t n);
NCC_HIDDEN int nc__err_code(const char *code);

/* Event handlers and deferred work in server.c and socket.c. */
NCC_HIDDEN void nc__server_event(nc_server_t *s, const ncc_event *ev);
NCC_HIDDEN void nc__server_pending(nc_server_t *s, unsigned flags);
NCC_HIDDEN void nc__server_gone(nc_server_t *s, int err, const char *msg);
NCC_HIDDEN void nc__server_free(nc_server_t *s);
NCC_HIDDEN void nc__server_error_event(nc_server_t *s, int err, const char *msg);
/* Error{server_id} about s: its listen fails, or its close completes, except
 * ERR_SERVER_NOT_RUNNING about a closing one (a ServerClose sent again after
 * a resume, PROTOCOL.md 16.1), which waits for its ServerClosed. */
NCC_HIDDEN void nc__server_refused(nc_server_t *s, int err, const char *msg);
/* A connection accepted by s has closed: a close that waits for the last
 * connection of its incarnation (close_on_last) completes on the next turn
 * once none is left. */
NCC_HIDDEN void nc__server_conn_closed(nc_server_t *s);
/* The link was lost (reconnection on): a listening server forgets its id and
 * waits in NC__SV_RELISTEN; 1 if it does, 0 if it was not listening. */
NCC_HIDDEN int nc__server_link_lost(nc_server_t *s);
/* After a new Welcome: a server in NC__SV_RELISTEN sends its Listen again. */
NCC_HIDDEN void nc__server_relisten(nc_server_t *s);
/* After Welcome{resumed}: a server whose Listen was sent under this session
 * and not answered sends it again under its id unless the new netcore holds
 * it (held; protocol 1.4, minor >= 4); one that waits to relisten, listens;
 * a closing one (ServerClose sent, no ServerClosed yet) sends ServerClose
 * again. */
NCC_HIDDEN void nc__server_resumed(nc_server_t *s, int held);
NCC_HIDDEN void nc__socket_event(nc_socket_t *s, const ncc_event *ev, zmq_msg_t *payload);
NCC_HIDDEN void nc__socket_accepted(nc_loop_t *loop, const ncc_event *ev);
/* netcore refused a Pipe (is_pipe) or an Unpipe of s (it raced with a
 * close, or the pipe had stopped): the pipe goes on in the library. */
NCC_HIDDEN void nc__socket_pipe_refused(nc_socket_t *s, int is_pipe);
NCC_HIDDEN void nc__socket_pending(nc_socket_t *s, unsigned flags);
NCC_HIDDEN void nc__socket_gone(nc_socket_t *s, int err, const char *msg);
NCC_HIDDEN void nc__socket_free(nc_socket_t *s);
NCC_HIDDEN void nc__socket_fail(nc_socket_t *s, int err, const char *msg);
/* Session resumption (PROTOCOL.md 16.1): whether s goes in a resume Hello,
 * and its entry; then, after Welcome{resumed}, s goes on: the writes netcore
 * did not carry out are sent again, then its pause, options and credit. No
 * callback runs. Returns 0, or NC_ENOMEM (s cannot go on). */
NCC_HIDDEN int nc__socket_resume_entry(nc_socket_t *s, ncc_resume_socket *out);
NCC_HIDDEN int nc__socket_resumed(nc_socket_t *s, uint64_t writes);
/* A connecting socket the resumed session lacks (protocol 1.4: the old
 * netcore never read its Connect, or it was still connecting): Connect again
 * under its id, its options, then every write. 0 or an error. */
NCC_HIDDEN int nc__socket_connect_again(nc_socket_t *s);
NCC_HIDDEN nc_socket_t *nc__socket_adopt(nc_loop_t *loop, uint64_t id,
                                         const nc_address_t *local,
                                         const nc_address_t *remote,
                                         int allow_half_open);
NCC_HIDDEN void nc__timers_run(nc_loop_t *loop);
NCC_HIDDEN int nc__timers_next(nc_loop_t *loop); /* ms to the next timer, -1 none */
NCC_HIDDEN void nc__timers_free(nc_loop_t *loop);
NCC_HIDDEN void nc__signals_dispatch(nc_loop_t *loop);
NCC_HIDDEN void nc__signals_reset(nc_loop_t *loop);
NCC_HIDDEN uint64_t nc__clock_ms(void);

#endif /* NC_INT_H */
