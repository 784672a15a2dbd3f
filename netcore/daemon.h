/* daemon.h: the daemon's state and the objects it owns.
 *
 * One process, one libuv loop, one thread: everything here is touched only from
 * that loop. `ncd` is the single daemon instance (like Redis's `server`).
 * Ownership: a handler owns its sockets and servers (lists in the handler); a
 * listener is the real listening socket shared by one or more servers (its
 * members); a socket is owned by exactly one handler and may point at the
 * server that accepted it. Memory of a socket is freed in its uv_close callback,
 * after its Closed event; a handler is freed once it is gone and owns nothing.
 */
#ifndef NCD_DAEMON_H
#define NCD_DAEMON_H

#include <stdint.h>
#include <uv.h>
#include <zmq.h>

#include "addr.h"
#include "budget.h"
#include "msgbatch.h"
#include "config.h"
#include "idmap.h"
#include "list.h"
#include "policy.h"
#include "metrics.h"

typedef struct ncd_handler ncd_handler;
typedef struct ncd_server ncd_server;
typedef struct ncd_listener ncd_listener;
typedef struct ncd_socket ncd_socket;
typedef struct ncd_pipe ncd_pipe;

/* An event that could not be handed to ZeroMQ because the handler's pipe was
 * full; sent in order once the pipe drains. */
typedef struct ncd_outmsg {
  struct ncd_outmsg *next;
  size_t nframes;
  zmq_msg_t frames[]; /* envelope, then payload frames */
} ncd_outmsg;

struct ncd_handler {
  ncc_list link;             /* in ncd.handlers */
  unsigned char rid[256];    /* ZeroMQ routing id of its DEALER: an address, not an identity */
  size_t rid_len;
  /* Identity (auth.h): a handler is its connection. user_id is the ZAP
   * User-Id of that connection (unique per connection), principal who
   * authenticated it: "key:NAME", "uid:N" or "tcp:ADDR". */
  char user_id[128];
  char principal[96];
  int conn_fd;               /* libzmq's fd of that connection: its death is told by fd */
  uint8_t session_token[16]; /* Welcome.session_token: a secret naming this session */
  uint32_t prefix;           /* high 32 bits of the ids it creates */
  uint64_t last_id;          /* every new id must exceed this */
  /* Ids at or below last_id that a resumed session may use once more: the
   * Listen/Connect it sends again for a server or socket this netcore does
   * not hold (PROTOCOL.md 16.1, protocol 1.4); a set (zeroed = empty).
   * Freed with the handler. */
  ncc_idmap_t reclaim;
  char name[64];
  char service[64];          /* Hello.service: successors inherit (handoff.h); "" = none */
  uint64_t parked_until;     /* gone, its connections wait for an adopter until then; 0 = not */
  int taken_over;            /* a previous netcore's handler (takeover.h): adoptable without a service */
  int resumable;             /* Hello.resumable: a takeover ships its session; a taken_over one
                                waits for Hello.resume_token == session_token (PROTOCOL.md 16.1) */
  uint32_t credit_window;
  uint32_t lease_ms;
  uint64_t last_seen;        /* uv_now() of its last command */
  ncc_list sockets;          /* ncd_socket.owner_link */
  ncc_list servers;          /* ncd_server.owner_link */
  ncd_outmsg *outq_head, *outq_tail;
  size_t outq_len;
  int blocked;               /* its pipe is full: its sockets are not read */
  int lazy_acks;             /* Hello.lazy_acks: acks wait unless asked for */
  int batch_events;          /* Hello.batch_events: events go out in batches */
  ncc_msgbatch_t batch;      /* events of this loop turn, when batch_events */
  int gone;                  /* lease expired, Bye, or unreachable: sends are dropped */
  const char *doomed;        /* why it must go at the end of this turn (ncd_handler_doom) */
  ncd_tally *tally;          /* bytes sent toward it that it has not taken (budget.h) */
  ncd_slab *slab;            /* where its sockets' next reads go (budget.h), or NULL */
  int over_budget;           /* tally over --handler-budget: its sockets are not read */
  uint64_t over_since;       /* uv_now() when it went over */
  uint32_t nsockets, nservers; /* what it owns, for the per-handler limits */
  /* What it may do (policy.h): the entry of its principal, and its limits
   * (the --max-handler-* and --handler-budget flags unless the entry sets them). */
  const ncd_policy_entry *policy;
  uint32_t max_sockets;      /* 0 = only --max-connections */
  uint32_t max_servers;
  uint64_t budget;
  ncd_hstats stats;          /* its counters (metrics.h) */
};

struct ncd_listener {
  ncc_list link;        /* in ncd.listeners */
  uv_poll_t poll;
  uv_timer_t resume_timer; /* ends a server.pause() */
  int fd;
  int is_unix;
  int polling;
  int closing;
  int open_handles;     /* handles whose close callback is still due */
  char key[160];        /* "tcp:ADDR:PORT" or "unix:PATH": what sharing compares */
  char group[64];       /* "" = not shareable */
  char unlink_path[sizeof(((ncc_addr *)0)->address)]; /* "" = nothing to unlink */
  ncc_addr address;
  ncc_list members;     /* ncd_server.member_link, round-robin order */
};

struct ncd_server {
  uint64_t id;
  uint64_t seq;
  ncd_handler *owner;
  ncc_list owner_link;
  ncd_listener *listener; /* NULL once closed */
  ncc_list member_link;
  int allow_half_open;
  int closing;
  uint32_t max_connections;
  uint32_t connections;
  uint64_t paused_until;  /* uv_now() value; 0 = not paused */
};

struct ncd_socket {
  uint64_t id;
  uint64_t seq;
  union {
    uv_handle_t handle;
    uv_stream_t stream;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } h;
  ncd_handler *owner;
  ncc_list owner_link;
  ncd_server *server;     /* the server that accepted it, or NULL */
  ncc_list dirty_link;    /* in ncd.dirty while an ack waits to be sent */
  ncc_list pending;       /* writes/end queued while connecting (ncd_wreq.link) */
  ncc_list inflight;      /* writes handed to libuv, oldest first (ncd_wreq.link) */
  uint32_t credit;        /* bytes it may still read and forward */
  uint32_t ack_writes;    /* completed writes not yet acknowledged */
  uint64_t ack_bytes;
  uint64_t bytes_read, bytes_written, queued_bytes;
  uint64_t pending_bytes; /* bytes of writes queued while connecting */
  /* pipe.h: the pipe this socket is the source of (NULL = none), the pipes
   * writing into it (ncd_pipe.dest_link), and the bytes of piped writes in
   * its queue (in queued_bytes or pending_bytes, never acknowledged). */
  ncd_pipe *pipe;
  ncc_list piped_in;
  uint64_t piped_queued;
  uint64_t data_sent, credited; /* bytes sent as Data and credited since it got its owner */
  /* Input sent as Data that the owner has not credited yet, kept for an
   * adopter (handoff.h): kept[kept_off .. kept_off + kept_len). At most the
   * credit window. */
  char *kept;
  size_t kept_off, kept_len, kept_cap;
  uint32_t writes_out;    /* Write/End commands given and not yet completed */
  /* Session resumption (PROTOCOL.md 16.1): Write/End commands carried out, and
   * the writes and bytes acknowledged (or due to be) to the owner, in total. */
  uint64_t writes_in, acked_writes_total, acked_bytes_total;
  uint32_t skip_writes;   /* of those, a previous owner's: their acks are not sent */
  uint64_t skip_bytes;
  uv_timer_t *timer;      /* idle timeout, allocated on first SetTimeout */
  uint32_t timeout_ms;
  uint64_t last_active;
  uint64_t opened_ms;     /* uv_now() when it opened (metrics.h, for its close line) */
  const char *close_code; /* the error it failed with, for its close line; NULL = none */
  uv_getaddrinfo_t *gai;  /* name resolution in flight (outlives a destroy) */
  struct addrinfo *ai_list, *ai_next;
  uint32_t connect_port;
  char *target;           /* "host:port" or path while connecting, for errors */
  uv_connect_t connect_req;
  uv_shutdown_t shutdown_req;
  unsigned is_unix : 1;
  unsigned connecting : 1;
  unsigned allow_half_open : 1;
  unsigned paused : 1;
  unsigned reading : 1;
  unsigned eof : 1;           /* the peer's FIN arrived */
  unsigned ended : 1;         /* the handler sent End */
  unsigned shutdown_done : 1; /* our FIN is out */
  unsigned closing : 1;
  unsigned notify : 1;        /* send Closed to the owner when the close completes */
  unsigned had_error : 1;
  unsigned reconnecting : 1;  /* h is closing to try the next address */
  unsigned end_ack_now : 1;   /* the End asked for a prompt ack */
  unsigned end_uncounted : 1; /* a pipe ended it (pipe.h): the FIN is nobody's write */
  unsigned over_memory : 1;   /* a write failed on --max-memory (for the message) */
  unsigned over_handler_limit : 1; /* a connect failed on --max-handler-sockets */
  unsigned check_policy : 1;  /* no policy rule allows the host name: each address is checked */
};

/* Gone, or doomed to go at the end of this turn: nothing is sent to it. */
static inline int ncd_handler_dead(const ncd_handler *h) { return h->gone || h->doomed; }

typedef struct ncd_daemon {
  ncd_config cfg;
  uv_loop_t *loop;
  void *zctx;
  void *router;
  void *monitor;
  uv_poll_t router_poll, monitor_poll;
  uv_idle_t router_idle;     /* keeps the loop spinning while ZeroMQ has input queued */
  uv_prepare_t router_prepare;
  uv_check_t ack_check;      /* sends batched WriteAcks once per loop turn */
  uv_timer_t retry_timer;    /* retries blocked handlers' queues */
  uv_timer_t lease_timer;
  uv_timer_t shutdown_timer;
  uv_signal_t sigint, sigterm, sighup, sigusr2;
  int handed_over;           /* a takeover completed: everything is the new netcore's */
  char instance_id[40];
  uint32_t next_prefix;
  uint64_t next_socket_id;   /* prefix 0 ids of accepted sockets */
  uint32_t nsockets;         /* all live sockets, for --max-connections */
  uint64_t write_memory;     /* bytes all write queues hold, with overhead (--max-memory) */
  ncd_policy *policy;         /* --policy, or NULL (policy.h) */
  ncd_tally *strangers;      /* replies to peers that said no Hello (bounded, best effort) */
  ncc_idmap_t sockets, servers;
  ncc_list handlers, listeners, dirty;
  int inherited_used[NCD_MAX_LISTEN_FDS];
  int shutting_down;
} ncd_daemon;

extern ncd_daemon ncd;

#endif
