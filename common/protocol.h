/* protocol.h: the protobuf-c glue of netcore and libnc, and the only module
 * that includes the generated netcore.pb-c.h (proto/netcore.proto).
 *
 * Every Command and every Event has one plain C form here, ncc_cmd and
 * ncc_event, used in both directions: libnc packs commands and unpacks
 * events, netcore unpacks commands and packs events, the tests and fuzzers do
 * either. One pack and one unpack per direction:
 *
 *   ncc_cmd_pack      ncc_cmd   -> Command bytes   (libnc, tests)
 *   ncc_cmd_unpack    bytes     -> ncc_cmd         (netcore)
 *   ncc_event_pack    ncc_event -> Event bytes     (netcore, tests)
 *   ncc_event_unpack  bytes     -> ncc_event       (libnc)
 *
 * Packing writes into memory a ncc_place_fn gives for the exact size (a
 * ZeroMQ frame, a batch entry, a stack buffer): no copy, no allocation of
 * its own but for a Stats event. Unpacking allocates from a ncc_arena the
 * caller owns (a bump allocator reset before each unpack): strings and
 * addresses of the result point into it and stay valid until the next
 * unpack or ncc_arena_reset on that arena. A given arena belongs to one
 * thread; the functions keep no state of their own, so separate arenas may
 * be used from separate threads.
 */
#ifndef NCC_PROTOCOL_H
#define NCC_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/un.h>

#include "msgbatch.h"
#include "visibility.h"

#define NCC_PROTOCOL_VERSION 1
/* Welcome.minor_version: 1 = batches (PROTOCOL.md 1.1), 2 = Pipe/Unpipe/Unpiped
 * (PROTOCOL.md 17), 3 = session resumption after a takeover (PROTOCOL.md 16.1),
 * 4 = options, Listen and Connect in flight at a takeover are not lost (16.1). */
#define NCC_PROTOCOL_MINOR 4

/* ------------------------------------------------------------------ memory */

/* Where to pack len bytes: a pointer to at least len writable bytes, or NULL
 * (out of memory). */
typedef void *(*ncc_place_fn)(void *arg, size_t len);

/* A ncc_place_fn that appends an entry to the ncc_msgbatch_t at arg. */
NCC_HIDDEN void *ncc_place_in_batch(void *batch, size_t len);

struct ncc_overflow;
typedef struct ncc_arena {
  unsigned char *block; /* caller's memory, 16-byte aligned */
  size_t cap, used;
  struct ncc_overflow *overflow; /* malloc'ed blocks for what did not fit */
  const void *root;              /* the message last unpacked */
} ncc_arena;

/* block (cap bytes, 16-byte aligned) is the arena's first memory. */
NCC_HIDDEN void ncc_arena_init(ncc_arena *a, void *block, size_t cap);
/* Forgets everything the last unpack gave (frees the overflow blocks). */
NCC_HIDDEN void ncc_arena_reset(ncc_arena *a);

/* ------------------------------------------------------------------ shared */

enum { NCC_FAMILY_UNSPECIFIED = 0, NCC_FAMILY_IPV4 = 1, NCC_FAMILY_IPV6 = 2, NCC_FAMILY_UNIX = 3 };

/* One end of a socket (Address). address is the IP text or the UNIX path's
 * exact bytes (one more than sun_path, so a full path still ends in NUL);
 * packing sends a path that is not UTF-8 as address_bytes with a repaired
 * display form, unpacking prefers address_bytes. */
typedef struct ncc_addr {
  int family; /* NCC_FAMILY_* */
  char address[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
  uint32_t port;
} ncc_addr;

/* ---------------------------------------------------------------- commands */

typedef enum ncc_cmd_kind {
  NCC_CMD_NONE = 0,
  NCC_CMD_HELLO, NCC_CMD_BYE, NCC_CMD_PING, NCC_CMD_STATS,
  NCC_CMD_LISTEN, NCC_CMD_SERVER_PAUSE, NCC_CMD_SERVER_CLOSE, NCC_CMD_SERVER_SET_MAX,
  NCC_CMD_CONNECT, NCC_CMD_WRITE, NCC_CMD_END, NCC_CMD_DESTROY, NCC_CMD_PAUSE,
  NCC_CMD_RESUME, NCC_CMD_CREDIT, NCC_CMD_SET_TIMEOUT, NCC_CMD_SET_NO_DELAY,
  NCC_CMD_SET_KEEP_ALIVE, NCC_CMD_PIPE, NCC_CMD_UNPIPE, NCC_CMD_BATCH
} ncc_cmd_kind;

enum { NCC_EP_NONE, NCC_EP_TCP, NCC_EP_PATH, NCC_EP_FD };

/* Whether a command carries a payload frame. */
enum { NCC_PAYLOAD_NEVER, NCC_PAYLOAD_REQUIRED, NCC_PAYLOAD_OPTIONAL };

typedef struct ncc_endpoint {
  int kind;         /* NCC_EP_* */
  const char *host; /* TCP; "" when omitted */
  int64_t port;     /* TCP */
  const char *path; /* UNIX; packed as path_bytes when not UTF-8 */
  int fd;           /* inherited listening fd */
  /* Unpacking: path_bytes made a C string (path points here, so an unpacked
   * ncc_cmd is never copied by value). A longer path cannot fit in sun_path
   * anyway: it is cut to one byte more than fits, so it still fails
   * ENAMETOOLONG. */
  char path_buf[sizeof(((struct sockaddr_un *)0)->sun_path) + 2];
} ncc_endpoint;

/* One entry of Hello.resume_sockets (PROTOCOL.md 16.1): what the handler
 * has seen of one socket of the session it resumes. */
typedef struct ncc_resume_socket {
  uint64_t socket_id, bytes_received, bytes_credited, bytes_acked, writes_acked, last_seq;
  int saw_end;
  /* Protocol 1.4: the handler's view of the options (with has_options), and
   * whether it still waits for Connected. no_delay, keep_alive: 0 never set,
   * 1 off, 2 on (anything else is refused by netcore). */
  int has_options, connecting;
  uint32_t timeout_ms, no_delay, keep_alive, keep_alive_delay_ms;
} ncc_resume_socket;

/* One command; the fields its kind does not use are ignored (packing) or 0
 * (unpacking). Strings are borrowed while packing; unpacked ones live in the
 * arena and are never NULL where the comment says "". */
typedef struct ncc_cmd {
  ncc_cmd_kind kind;
  const char *name;      /* unpacked: "write", "listen", ...: for errors and logs */
  uint64_t ref;
  uint64_t id;           /* socket_id or server_id (Pipe, Unpipe: the source) */
  uint64_t fd_socket_id; /* Write */
  ncc_endpoint ep;       /* Listen, Connect */
  uint32_t version, credit_window, lease_ms; /* Hello */
  int lazy_acks, batch_events;                /* Hello */
  int ack_now;                                /* Write, End */
  const char *hello_name;     /* Hello */
  const char *service;        /* Hello; "" when omitted */
  int resumable;              /* Hello.resumable */
  const uint8_t *resume_token; /* Hello.resume_token (NULL/0 when none) */
  size_t resume_token_len;
  const ncc_resume_socket *resume; /* Hello.resume_sockets (unpacked: in the arena) */
  size_t nresume;
  const uint64_t *resume_servers; /* Hello.resume_servers (unpacked: in the arena) */
  size_t nresume_servers;
  int handoff;                /* Bye */
  uint64_t nonce;             /* Ping */
  int allow_half_open;        /* Listen, Connect */
  int32_t backlog;            /* Listen */
  uint32_t max_connections;   /* Listen, ServerSetMaxConnections */
  const char *group;          /* Listen; "" when omitted */
  uint32_t msecs;             /* ServerPause, SetTimeout */
  uint32_t bytes;             /* Credit */
  int enable;                 /* SetNoDelay, SetKeepAlive */
  uint32_t initial_delay_ms;  /* SetKeepAlive */
  uint64_t dest_socket_id;    /* Pipe */
  int no_end;                 /* Pipe */
  uint32_t high_water_mark;   /* Pipe */
  size_t batch_count;         /* CommandBatch: how many commands it holds */
} ncc_cmd;

/* Packs c (not a batch: see ncc_place_in_batch for collecting one) into
 * place(arg, size). Returns 0, NCC_ENOMEM (place gave NULL, or the room for
 * a Hello's resume_sockets could not be had), NCC_EINVAL (no such kind) or
 * NCC_EMSGSIZE (over 2 GiB). */
NCC_HIDDEN int ncc_cmd_pack(const ncc_cmd *c, ncc_place_fn place, void *arg);

/* Unpacks a Command envelope (arena reset first). Returns 0, NCC_EPROTO if it
 * does not parse (or the arena cannot hold a Hello's resume_sockets), NCC_ERR_UNKNOWN_COMMAND if no command case is set (c->ref
 * is still filled), or NCC_ERR_INVALID_ARG_VALUE (why says which field) when
 * a string is not valid UTF-8 or path_bytes holds a NUL byte: c is filled,
 * for the Error, but must not be carried out. Recurses into batches: check
 * the nesting with ncc_pb_walk_batches (pbwalk.h) first. */
NCC_HIDDEN int ncc_cmd_unpack(ncc_arena *a, const void *data, size_t len, ncc_cmd *c,
                              char *why, size_t why_cap);
/* The i-th command of the CommandBatch last unpacked into a, as
 * ncc_cmd_unpack would give it alone; NCC_ERR_UNKNOWN_COMMAND past the end. */
NCC_HIDDEN int ncc_cmd_batch_entry(ncc_arena *a, size_t i, ncc_cmd *c, char *why,
                                   size_t why_cap);
/* NCC_PAYLOAD_* for a command kind. */
NCC_HIDDEN int ncc_cmd_payload_rule(ncc_cmd_kind kind);

/* ------------------------------------------------------------------ events */

typedef enum ncc_event_kind {
  NCC_EV_NONE = 0, /* unpacked: an event this version does not know */
  NCC_EV_WELCOME, NCC_EV_ERROR, NCC_EV_PONG, NCC_EV_LISTENING, NCC_EV_SERVER_ERROR,
  NCC_EV_SERVER_CLOSED, NCC_EV_CONNECTION, NCC_EV_CONNECTED, NCC_EV_DATA, NCC_EV_ENDED,
  NCC_EV_WRITE_ACK, NCC_EV_TIMEOUT, NCC_EV_SOCKET_ERROR, NCC_EV_CLOSED, NCC_EV_FD,
  NCC_EV_SHUTDOWN, NCC_EV_ADOPTED, NCC_EV_STATS, NCC_EV_UNPIPED,
  NCC_EV_BATCH /* unpacked: an EventBatch of count events, see ncc_event_batch_entry */
} ncc_event_kind;

/* UnpipeReason */
enum {
  NCC_UNPIPE_UNSPECIFIED = 0, NCC_UNPIPE_REQUESTED = 1, NCC_UNPIPE_SOURCE_ENDED = 2,
  NCC_UNPIPE_SOURCE_CLOSED = 3, NCC_UNPIPE_DEST_CLOSED = 4
};

/* One entry of Welcome.resumed_sockets (PROTOCOL.md 16.1). */
typedef struct ncc_resumed_socket {
  uint64_t socket_id, writes;
} ncc_resumed_socket;

typedef struct ncc_welcome {
  uint32_t version, minor_version; /* packing sends NCC_PROTOCOL_VERSION as version */
  const char *instance_id, *server_version;
  uint32_t id_prefix, credit_window, lease_ms, max_frame, max_write_queue;
  const uint8_t *session_token;
  size_t session_token_len;
  int resumed;                               /* PROTOCOL.md 16.1 */
  const ncc_resumed_socket *resumed_sockets; /* unpacked: in the arena */
  size_t nresumed;
  const uint64_t *resumed_servers; /* protocol 1.4; unpacked: in the arena */
  size_t nresumed_servers;
} ncc_welcome;

/* Stats: the metric families as the Stats message holds them (the same
 * shape as libnc's public nc_stats_t). */
typedef struct ncc_stats_label {
  const char *name, *value;
} ncc_stats_label;
typedef struct ncc_stats_sample {
  const char *name; /* full name: a histogram's name_bucket, _sum, _count */
  const ncc_stats_label *labels;
  size_t nlabels;
  double value;
} ncc_stats_sample;
typedef struct ncc_stats_family {
  const char *name, *help, *type;
  const ncc_stats_sample *samples;
  size_t nsamples;
} ncc_stats_family;
typedef struct ncc_stats {
  const char *instance_id;
  uint64_t uptime_ms;
  const ncc_stats_family *families;
  size_t nfamilies;
} ncc_stats;

/* One event. Packing borrows every pointer for the call; unpacked ones point
 * into the arena, and code/message/command/reason are "" when absent. */
typedef struct ncc_event {
  ncc_event_kind kind;
  uint64_t seq;
  uint64_t socket_id, server_id, new_socket_id;
  uint64_t dest_socket_id;        /* Unpiped; Adopted: pipe_dest_socket_id */
  uint64_t ref, nonce;
  const char *code, *message, *command, *reason; /* reason: Shutdown */
  const ncc_addr *local, *remote; /* Connection, Connected, Fd, Adopted; local = Listening's */
  int flag;                       /* Connection, Adopted: allow_half_open; Closed: had_error;
                                     Unpiped: dest_ended */
  uint32_t count;                 /* Connection, Adopted: server_connections; WriteAck:
                                     writes; unpacked batch: its events */
  uint64_t bytes;                 /* WriteAck: bytes; Adopted: replay_bytes; Unpiped: bytes */
  uint64_t bytes_read, bytes_written, queued_bytes;
  int write_ended, peer_ended;    /* Adopted */
  int pipe_no_end;                /* Adopted */
  uint32_t pipe_high_water_mark;  /* Adopted */
  int unpipe_reason;              /* Unpiped: NCC_UNPIPE_* */
  const ncc_welcome *welcome;     /* Welcome */
  const ncc_stats *stats;         /* Stats */
  /* Lazy acks riding along with a socket event (Event.ack), when has_ack. */
  int has_ack;
  uint32_t ack_writes;
  uint64_t ack_bytes, ack_bytes_written, ack_queued_bytes;
} ncc_event;

/* Packs ev into place(arg, size). Every string is sent as valid UTF-8 (an
 * invalid sequence becomes U+FFFD; PROTOCOL.md 1.2). Returns 0 or NCC_ENOMEM. */
NCC_HIDDEN int ncc_event_pack(const ncc_event *ev, ncc_place_fn place, void *arg);

/* Unpacks an Event envelope (arena reset first). Returns 0 or NCC_EPROTO (it
 * does not parse, or batches nest: pbwalk.h). An EventBatch gives kind
 * NCC_EV_BATCH and count; take its events with ncc_event_batch_entry. */
NCC_HIDDEN int ncc_event_unpack(ncc_arena *a, const void *data, size_t len, ncc_event *ev);
/* The i-th event of the EventBatch last unpacked into a; NCC_EPROTO if there
 * is none. A batch inside the batch gives kind NCC_EV_NONE (batches do not
 * nest, PROTOCOL.md 1.1). */
NCC_HIDDEN int ncc_event_batch_entry(ncc_arena *a, size_t i, ncc_event *ev);

#endif
