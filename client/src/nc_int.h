/* nc_int.h: libnc's internal declarations, shared by its modules.
 *
 *   loop.c    the loop: ZeroMQ link to netcore, Hello, poll, dispatch of
 *             events to servers and sockets, deferred work, liveness
 *   timer.c   timers and signal watches
 *   server.c  nc_server_*: listen, close and the server events
 *   socket.c  nc_socket_*: connect, write/ack, credits, pause, pipe, close
 *   wire.c    the only module that knows the protobuf-c names: packs
 *             commands and unpacks events into the plain structs below
 *   encoding.c  setEncoding decoders (utf8, ascii, base64)
 *   address.c   isIP and address JSON;  errors.c  the error table;
 *   ../../common/idmap.c  wire id -> handle hash map (shared with netcore)
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
#include "msgbatch.h"
#include "nc/nc.h"

#define NC__HIDDEN __attribute__((visibility("hidden")))

/* ------------------------------------------------------------ intrusive list */

typedef struct nc__link_s {
  struct nc__link_s *prev, *next;
} nc__link_t;

#define NC__CONTAINER(ptr, type, field) \
  ((type *)(void *)((char *)(ptr) - offsetof(type, field)))

static inline void nc__list_init(nc__link_t *head) { head->prev = head->next = head; }
static inline int nc__list_empty(const nc__link_t *head) { return head->next == head; }
static inline void nc__list_push(nc__link_t *head, nc__link_t *l) {
  l->prev = head->prev;
  l->next = head;
  head->prev->next = l;
  head->prev = l;
}
static inline void nc__list_remove(nc__link_t *l) {
  l->prev->next = l->next;
  l->next->prev = l->prev;
  l->prev = l->next = l;
}

/* ------------------------------------------------------------------- wire */

typedef enum {
  NC__CMD_HELLO = 1,
  NC__CMD_BYE,
  NC__CMD_PING,
  NC__CMD_LISTEN,
  NC__CMD_SERVER_PAUSE,
  NC__CMD_SERVER_CLOSE,
  NC__CMD_SERVER_SET_MAX,
  NC__CMD_CONNECT,
  NC__CMD_WRITE,
  NC__CMD_END,
  NC__CMD_DESTROY,
  NC__CMD_PAUSE,
  NC__CMD_RESUME,
  NC__CMD_CREDIT,
  NC__CMD_SET_TIMEOUT,
  NC__CMD_SET_NO_DELAY,
  NC__CMD_SET_KEEP_ALIVE,
  NC__CMD_STATS
} nc__cmd_type_t;

/* Where a Listen or Connect goes. */
typedef enum { NC__EP_NONE, NC__EP_TCP, NC__EP_PATH, NC__EP_FD } nc__ep_kind_t;

/* One socket of a session to resume (Hello.resume_sockets, PROTOCOL.md 16.1). */
typedef struct {
  uint64_t socket_id, bytes_received, bytes_credited, writes_acked, bytes_acked, last_seq;
  int saw_end;
} nc__resume_sock_t;

/* One command in plain C; the fields a command does not use are ignored.
 * Strings are borrowed for the duration of nc__wire_pack(). */
typedef struct {
  nc__cmd_type_t type;
  uint64_t id;        /* socket_id or server_id */
  uint64_t id2;       /* Write.fd_socket_id, Ping.nonce */
  uint32_t u32;       /* Credit.bytes, msecs, max_connections, Hello.credit_window */
  uint32_t u32b;      /* SetKeepAlive.initial_delay_ms, Hello.lease_ms */
  int flag;           /* enable, allow_half_open, Write/End.ack_now, Hello.lazy_acks */
  int flag2;          /* Hello.batch_events */
  nc__ep_kind_t ep;   /* Listen / Connect endpoint */
  const char *host;
  int port;
  const char *path;
  int fd;
  int backlog;
  const char *group;
  const char *name;   /* Hello.name */
  const char *service; /* Hello.service */
  int resumable;       /* Hello.resumable */
  const uint8_t *token; /* Hello.resume_token (token_len 0: none) */
  size_t token_len;
  const nc__resume_sock_t *resume; /* Hello.resume_sockets */
  size_t nresume;
} nc__cmd_t;

typedef enum {
  NC__EV_NONE = 0,
  NC__EV_WELCOME,
  NC__EV_ERROR,
  NC__EV_PONG,
  NC__EV_LISTENING,
  NC__EV_SERVER_ERROR,
  NC__EV_SERVER_CLOSED,
  NC__EV_CONNECTION,
  NC__EV_CONNECTED,
  NC__EV_DATA,
  NC__EV_ENDED,
  NC__EV_WRITE_ACK,
  NC__EV_TIMEOUT,
  NC__EV_SOCKET_ERROR,
  NC__EV_CLOSED,
  NC__EV_FD,
  NC__EV_SHUTDOWN,
  NC__EV_ADOPTED, /* a Connection handed over from a handler that went (bytes = replay_bytes) */
  NC__EV_STATS,
  NC__EV_BATCH /* an EventBatch: count events, see nc__wire_batch_event() */
} nc__ev_type_t;

/* One event in plain C. Strings point into the decoder's arena and are valid
 * until the next nc__wire_unpack() on the same arena. */
typedef struct {
  nc__ev_type_t type;
  uint64_t seq;
  uint64_t socket_id, server_id, new_socket_id, ref;
  nc_address_t local, remote;  /* filled for Listening (local), Connection,
                                  Connected and Fd */
  const char *code, *message, *command;
  int flag;                    /* allow_half_open (Connection), had_error (Closed) */
  int flag2;                   /* Adopted.write_ended */
  uint32_t count;              /* server_connections, WriteAck.writes, batch size */
  uint64_t bytes, bytes_written, queued_bytes, bytes_read, nonce;
  /* Welcome */
  uint32_t version, id_prefix, credit_window, lease_ms, max_frame, max_write_queue;
  const char *instance_id, *server_version;
  const uint8_t *session_token; /* Welcome.session_token (in the arena) */
  size_t session_token_len;
  int resumed;                  /* Welcome.resumed */
  size_t nresumed;              /* Welcome.resumed_sockets: see nc__wire_resumed() */
  const void *welcome;          /* the unpacked Welcome, in the arena */
  /* Event.ack: acknowledgements riding along with a socket event (lazy acks) */
  int has_ack;
  uint32_t ack_writes;
  uint64_t ack_bytes, ack_bytes_written;
  const void *stats;           /* Stats: the unpacked message, in the arena */
} nc__event_t;

/* Bump allocator for unpacking events without a malloc per event. */
typedef struct nc__arena_s {
  char block[8192];
  size_t used;
  void *overflow; /* list of malloc'd blocks when one event is large */
  const void *batch; /* the EventBatch last unpacked, or NULL */
} nc__arena_t;

/* Packs cmd into buf (cap bytes). Returns the packed length, or the length
 * needed if it is > cap (nothing written then), or a negative error. */
NC__HIDDEN int nc__wire_pack(const nc__cmd_t *cmd, uint8_t *buf, size_t cap);

/* Unpacks one envelope into ev, using arena (reset first). NC_EPROTO if it
 * does not parse; ev->type NC__EV_NONE for an event this version does not
 * know. */
NC__HIDDEN int nc__wire_unpack(const void *data, size_t len, nc__event_t *ev,
                               nc__arena_t *arena);
NC__HIDDEN void nc__arena_reset(nc__arena_t *arena);
/* The i-th event of the EventBatch last unpacked into arena (ev->type was
 * NC__EV_BATCH), as nc__wire_unpack would give it alone. NC_EPROTO if there
 * is no such event. */
NC__HIDDEN int nc__wire_batch_event(nc__arena_t *arena, size_t i, nc__event_t *ev);
/* Entry i of a Welcome's resumed_sockets (i < ev->nresumed). */
NC__HIDDEN void nc__wire_resumed(const nc__event_t *ev, size_t i, uint64_t *socket_id,
                                 uint64_t *writes);
/* The nc_stats_t view of a Stats event's message (ev->stats): arrays in one
 * malloc'ed block (*mem, the caller frees it), strings in the arena. Returns
 * 0 or NC_ENOMEM. */
NC__HIDDEN int nc__wire_stats(const void *stats, nc_stats_t *out, void **mem);
/* Packs cmd as the next command of a CommandBatch. 0 or NC_ENOMEM. */
NC__HIDDEN int nc__wire_pack_batched(const nc__cmd_t *cmd, nc__msgbatch_t *batch);


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

NC__HIDDEN int nc__decoder_set(nc__decoder_t *d, const char *encoding);
/* Largest output of decoding len bytes (plus the NUL). */
NC__HIDDEN size_t nc__decoder_max_out(const nc__decoder_t *d, size_t len);
/* Decodes in[0..len) into out (nc__decoder_max_out bytes); returns the output
 * length and NUL-terminates. */
NC__HIDDEN size_t nc__decoder_write(nc__decoder_t *d, const uint8_t *in, size_t len,
                                    char *out);
/* Flushes what is carried (end of stream); returns the output length. */
NC__HIDDEN size_t nc__decoder_end(nc__decoder_t *d, char *out);

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
  nc__link_t all;      /* loop->servers or loop->sockets */
  nc__link_t pend;     /* loop->pending while pending_flags != 0 */
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
  nc_address_t addr;
  nc__cmd_t req;  /* the last Listen (endpoint fields; host/path owned), for a relisten */
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
  int resume_mark;     /* while a resumed Welcome is handled: 1 go on, 2 gone, 3 failed */
  uint64_t resume_writes; /* with mark 1: writes netcore carried out */
  nc__wlog_t wlog;     /* writes kept until acknowledged */
  nc__wring_t wreqs;   /* writes waiting for their ack */
  nc__wring_t failed;  /* writes after end, failing on the next turn */
  uint32_t unacked_credit; /* consumed but not yet granted back */
  nc__inring_t input;
  nc__decoder_t dec;
  nc_socket_t *pipe_dst, *pipe_srcs, *pipe_next;
  /* Options given before connect, sent once the connection exists. */
  unsigned timeout_ms;
  int nodelay, keepalive; /* -1 = never set */
  unsigned keepalive_delay;
};

struct nc_timer_s {
  nc_loop_t *loop;
  void *data;
  nc__link_t link;  /* loop->timers, sorted by due, while active */
  nc__link_t all;   /* loop->all_timers until closed */
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
  nc__idmap_t socket_ids, server_ids;
  nc__link_t servers, sockets, timers, all_timers, pending;
  uint64_t timer_gen;
  nc__arena_t arena;
  int batching;       /* inside nc_loop_process: commands wait in out_batch */
  int sent_since_drain; /* sent since a receive found the dealer empty */
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
  nc__msgbatch_t out_batch; /* commands of this turn (PROTOCOL.md 1.1) */
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
NC__HIDDEN int nc__send(nc_loop_t *loop, const nc__cmd_t *cmd, const void *payload,
                        size_t len, zmq_msg_t *payload_msg);
/* A fresh id for a Listen or Connect: (id_prefix << 32) | ++n. */
NC__HIDDEN uint64_t nc__next_id(nc_loop_t *loop);
NC__HIDDEN void nc__ref(nc__handle_t *h);
NC__HIDDEN void nc__unref(nc__handle_t *h);
/* Queues deferred work for h (flags are OR'ed). */
NC__HIDDEN void nc__pend(nc__handle_t *h, unsigned flags);
/* Scratch space of at least n bytes for decoded text; NULL if out of memory. */
NC__HIDDEN char *nc__scratch(nc_loop_t *loop, size_t n);
NC__HIDDEN int nc__err_code(const char *code);

/* Event handlers and deferred work in server.c and socket.c. */
NC__HIDDEN void nc__server_event(nc_server_t *s, const nc__event_t *ev);
NC__HIDDEN void nc__server_pending(nc_server_t *s, unsigned flags);
NC__HIDDEN void nc__server_gone(nc_server_t *s, int err, const char *msg);
NC__HIDDEN void nc__server_free(nc_server_t *s);
NC__HIDDEN void nc__server_error_event(nc_server_t *s, int err, const char *msg);
/* The link was lost (reconnection on): a listening server forgets its id and
 * waits in NC__SV_RELISTEN; 1 if it does, 0 if it was not listening. */
NC__HIDDEN int nc__server_link_lost(nc_server_t *s);
/* After a new Welcome: a server in NC__SV_RELISTEN sends its Listen again. */
NC__HIDDEN void nc__server_relisten(nc_server_t *s);
NC__HIDDEN void nc__socket_event(nc_socket_t *s, const nc__event_t *ev, zmq_msg_t *payload);
NC__HIDDEN void nc__socket_accepted(nc_loop_t *loop, const nc__event_t *ev);
NC__HIDDEN void nc__socket_pending(nc_socket_t *s, unsigned flags);
NC__HIDDEN void nc__socket_gone(nc_socket_t *s, int err, const char *msg);
NC__HIDDEN void nc__socket_free(nc_socket_t *s);
NC__HIDDEN void nc__socket_fail(nc_socket_t *s, int err, const char *msg);
/* Session resumption (PROTOCOL.md 16.1): whether s goes in a resume Hello,
 * and its entry; then, after Welcome{resumed}, s goes on: the writes netcore
 * did not carry out are sent again, then its pause, options and credit. No
 * callback runs. Returns 0, or NC_ENOMEM (s cannot go on). */
NC__HIDDEN int nc__socket_resume_entry(const nc_socket_t *s, nc__resume_sock_t *out);
NC__HIDDEN int nc__socket_resumed(nc_socket_t *s, uint64_t writes);
NC__HIDDEN nc_socket_t *nc__socket_adopt(nc_loop_t *loop, uint64_t id,
                                         const nc_address_t *local,
                                         const nc_address_t *remote,
                                         int allow_half_open);
NC__HIDDEN void nc__timers_run(nc_loop_t *loop);
NC__HIDDEN int nc__timers_next(nc_loop_t *loop); /* ms to the next timer, -1 none */
NC__HIDDEN void nc__timers_free(nc_loop_t *loop);
NC__HIDDEN void nc__signals_dispatch(nc_loop_t *loop);
NC__HIDDEN void nc__signals_reset(nc_loop_t *loop);
NC__HIDDEN uint64_t nc__clock_ms(void);

#endif /* NC_INT_H */
