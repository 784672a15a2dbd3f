/* wire.h: the protobuf-c glue, the only module that sees Netcore__V1__* names.
 *
 * Commands are unpacked into ncd_cmd, a flat view whose strings point into a
 * per-command arena: they stay valid until ncd_wire_cmd_release(). Events are
 * described by ncd_event (pointers borrowed from the caller for the call only)
 * and packed straight into a zmq_msg_t. Loop thread only (the arena is static).
 */
#ifndef NCD_WIRE_H
#define NCD_WIRE_H

#include <stdint.h>
#include <zmq.h>

#include "addr.h"
#include "budget.h"
#include "msgbatch.h"

#define NCD_PROTOCOL_VERSION 1

typedef enum ncd_cmd_kind {
  NCD_CMD_NONE = 0,
  NCD_CMD_HELLO, NCD_CMD_BYE, NCD_CMD_PING,
  NCD_CMD_LISTEN, NCD_CMD_SERVER_PAUSE, NCD_CMD_SERVER_CLOSE, NCD_CMD_SERVER_SET_MAX,
  NCD_CMD_CONNECT, NCD_CMD_WRITE, NCD_CMD_END, NCD_CMD_DESTROY, NCD_CMD_PAUSE,
  NCD_CMD_RESUME, NCD_CMD_CREDIT, NCD_CMD_SET_TIMEOUT, NCD_CMD_SET_NO_DELAY,
  NCD_CMD_SET_KEEP_ALIVE, NCD_CMD_STATS, NCD_CMD_BATCH
} ncd_cmd_kind;

enum { NCD_EP_NONE, NCD_EP_TCP, NCD_EP_PATH, NCD_EP_FD };

/* Whether a command carries a payload frame. */
enum { NCD_PAYLOAD_NEVER, NCD_PAYLOAD_REQUIRED, NCD_PAYLOAD_OPTIONAL };

typedef struct ncd_endpoint {
  int kind;         /* NCD_EP_* */
  const char *host; /* TCP; "" when omitted */
  int64_t port;     /* TCP */
  const char *path; /* UNIX: Listen/Connect.path, or path_buf for path_bytes */
  int fd;           /* inherited listening fd */
  /* path_bytes made a C string. A longer path cannot fit in sun_path anyway:
   * it is cut to one byte more than fits, so it still fails ENAMETOOLONG.
   * path points here, so an ncd_cmd is never copied by value. */
  char path_buf[sizeof(((struct sockaddr_un *)0)->sun_path) + 2];
} ncd_endpoint;

/* One entry of Hello.resume_sockets (PROTOCOL.md 16.1). */
typedef struct ncd_resume_socket {
  uint64_t socket_id, bytes_received, bytes_credited, bytes_acked, writes_acked, last_seq;
  int saw_end;
} ncd_resume_socket;

typedef struct ncd_cmd {
  ncd_cmd_kind kind;
  const char *name; /* "write", "listen", ...: for errors and logs */
  uint64_t ref;
  uint64_t id;           /* socket_id or server_id */
  uint64_t fd_socket_id; /* Write */
  ncd_endpoint ep;       /* Listen, Connect */
  uint32_t version, credit_window, lease_ms; /* Hello */
  int lazy_acks, batch_events;                /* Hello */
  int ack_now;                                /* Write, End */
  const char *hello_name;
  const char *service;        /* Hello; "" when omitted */
  int resumable;              /* Hello.resumable */
  const uint8_t *resume_token; /* Hello.resume_token (NULL/0 when none) */
  size_t resume_token_len;
  const ncd_resume_socket *resume; /* Hello.resume_sockets */
  size_t nresume;
  int handoff;                /* Bye */
  uint64_t nonce;             /* Ping */
  int allow_half_open;        /* Listen, Connect */
  int32_t backlog;            /* Listen */
  uint32_t max_connections;   /* Listen, ServerSetMaxConnections */
  const char *group;          /* Listen */
  uint32_t msecs;             /* ServerPause, SetTimeout */
  uint32_t bytes;             /* Credit */
  int enable;                 /* SetNoDelay, SetKeepAlive */
  uint32_t initial_delay_ms;  /* SetKeepAlive */
  size_t batch_count;         /* CommandBatch: how many commands it holds */
} ncd_cmd;

/* Walks an envelope's wire bytes without decoding them: refuses batches
 * nested more than one level (a batch inside a batch inside a batch:
 * ERR_INVALID_ARG_VALUE; one level is refused per entry when the batch runs)
 * and a batch of more than max_batch
 * commands (EMSGSIZE), each with a message set by ncd_set_errmsg, and bytes
 * that are not protobuf (EPROTO). Must pass before ncd_wire_cmd_unpack, which
 * recurses. Returns 0 or one of those errors. */
int ncd_wire_cmd_check(const void *data, size_t len, size_t max_batch);

/* Whether the envelope is a Hello with a resume_token (PROTOCOL.md 16.1):
 * the one Hello that may be larger than NCD_MAX_HELLO_ENVELOPE, since it
 * lists the session's sockets. Looks at the wire bytes only. */
int ncd_wire_is_resume_hello(const void *data, size_t len);

/* Unpacks an envelope. Returns 0, NCD_EPROTO if it does not parse,
 * NCD_ERR_UNKNOWN_COMMAND if no command case is set (cmd->ref is still filled),
 * or NCD_ERR_INVALID_ARG_VALUE (ncd_wire_error() says why) when a string
 * field is not valid UTF-8 or path_bytes holds a NUL byte: cmd is filled, for
 * the Error, but must not be carried out. */
int ncd_wire_cmd_unpack(const void *data, size_t len, ncd_cmd *cmd);
/* Why the last unpack or batch command gave NCD_ERR_INVALID_ARG_VALUE (names
 * the field); a static buffer, valid until the next unpack. */
const char *ncd_wire_error(void);
/* The i-th command of the CommandBatch last unpacked, as ncd_wire_cmd_unpack
 * would give it alone. Valid until ncd_wire_cmd_release(). */
int ncd_wire_batch_cmd(size_t i, ncd_cmd *cmd);
/* Frees what the last unpack allocated; cmd's strings die here. */
void ncd_wire_cmd_release(void);
/* NCD_PAYLOAD_* for a command kind. */
int ncd_wire_payload_rule(ncd_cmd_kind kind);

typedef enum ncd_event_kind {
  NCD_EV_WELCOME, NCD_EV_ERROR, NCD_EV_PONG, NCD_EV_LISTENING, NCD_EV_SERVER_ERROR,
  NCD_EV_SERVER_CLOSED, NCD_EV_CONNECTION, NCD_EV_CONNECTED, NCD_EV_DATA, NCD_EV_ENDED,
  NCD_EV_WRITE_ACK, NCD_EV_TIMEOUT, NCD_EV_SOCKET_ERROR, NCD_EV_CLOSED, NCD_EV_FD,
  NCD_EV_SHUTDOWN, NCD_EV_ADOPTED, NCD_EV_STATS
} ncd_event_kind;

/* One entry of Welcome.resumed_sockets. */
typedef struct ncd_resumed_socket {
  uint64_t socket_id, writes;
} ncd_resumed_socket;

typedef struct ncd_welcome {
  const char *instance_id, *server_version;
  uint32_t id_prefix, credit_window, lease_ms, max_frame, max_write_queue;
  const uint8_t *session_token; /* borrowed */
  size_t session_token_len;
  int resumed;                             /* PROTOCOL.md 16.1 */
  const ncd_resumed_socket *resumed_sockets; /* borrowed */
  size_t nresumed;
} ncd_welcome;

typedef struct ncd_event {
  ncd_event_kind kind;
  uint64_t seq;
  uint64_t socket_id, server_id, new_socket_id;
  uint64_t ref, nonce;
  const char *code, *message, *command, *reason;
  const ncd_addr *local, *remote; /* Connection, Connected, Fd, Adopted; local = address for Listening */
  int flag;                       /* Connection, Adopted: allow_half_open; Closed: had_error */
  uint32_t count;                 /* Connection, Adopted: server_connections; WriteAck: writes */
  uint64_t bytes;                 /* WriteAck: bytes; Adopted: replay_bytes */
  uint64_t bytes_read, bytes_written, queued_bytes;
  int write_ended, peer_ended;    /* Adopted */
  const ncd_welcome *welcome;
  const struct ncd_mset *stats; /* Stats (metrics.h) */
  /* Lazy acks riding along with a socket event (Event.ack), when has_ack. */
  int has_ack;
  uint32_t ack_writes;
  uint64_t ack_bytes, ack_bytes_written, ack_queued_bytes;
} ncd_event;

/* Packs ev into msg (initialised here, charged to tally; the caller sends or
 * closes it). Returns 0 or NCD_ENOMEM. */
int ncd_wire_event_pack(const ncd_event *ev, ncd_tally *tally, zmq_msg_t *msg);

/* Appends ev to an EventBatch being collected. Returns 0 or NCD_ENOMEM
 * (batch unchanged). */
int ncd_wire_batch_append(nc__msgbatch_t *batch, const ncd_event *ev);

#endif
