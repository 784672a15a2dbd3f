/* protocol.c: see protocol.h. Four parts: the arena, commands (pack, then
 * unpack), events (pack, then unpack). */
#include "protocol.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errtable.h"
#include "netcore.pb-c.h"
#include "pbwalk.h"
#include "utf8.h"

/* ------------------------------------------------------------------ arena */

struct ncc_overflow {
  struct ncc_overflow *next;
  max_align_t align[];
};

static void *arena_alloc(void *data, size_t size) {
  ncc_arena *a = data;
  size_t need = (size + 15) & ~(size_t)15;
  if (need <= a->cap - a->used) {
    void *p = a->block + a->used;
    a->used += need;
    return p;
  }
  struct ncc_overflow *o = malloc(sizeof(*o) + size);
  if (o == NULL) return NULL;
  o->next = a->overflow;
  a->overflow = o;
  return o->align;
}

static void arena_free(void *data, void *p) {
  (void)data;
  (void)p; /* everything goes at the next reset */
}

void ncc_arena_init(ncc_arena *a, void *block, size_t cap) {
  memset(a, 0, sizeof(*a));
  a->block = block;
  a->cap = cap;
}

void ncc_arena_reset(ncc_arena *a) {
  struct ncc_overflow *o = a->overflow;
  while (o != NULL) {
    struct ncc_overflow *next = o->next;
    free(o);
    o = next;
  }
  a->overflow = NULL;
  a->used = 0;
  a->root = NULL;
}

void *ncc_place_in_batch(void *batch, size_t len) { return ncc_msgbatch_entry(batch, len); }

/* ------------------------------------------------------- commands: packing */

static char *str(const char *s) { return (char *)(s ? s : ""); }

/* A UNIX path goes in the string field only when it is valid UTF-8, else as
 * path_bytes (PROTOCOL.md 1.2). Returns whether it is the string. */
static int path_is_text(const char *path, ProtobufCBinaryData *bytes) {
  const char *p = str(path);
  if (ncc_utf8_valid(p, strlen(p))) return 1;
  bytes->data = (uint8_t *)p;
  bytes->len = strlen(p);
  return 0;
}

/* The sub-messages a Command may point to, on the packer's stack. */
typedef struct cmd_parts {
  Netcore__V1__TcpEndpoint tcp;
  void *heap; /* what a Hello's resume_sockets allocated, freed after packing */
  union {
    Netcore__V1__Hello hello;
    Netcore__V1__Bye bye;
    Netcore__V1__Ping ping;
    Netcore__V1__StatsQuery stats;
    Netcore__V1__Listen listen;
    Netcore__V1__ServerPause server_pause;
    Netcore__V1__ServerClose server_close;
    Netcore__V1__ServerSetMaxConnections server_set_max;
    Netcore__V1__Connect connect;
    Netcore__V1__Write write;
    Netcore__V1__End end;
    Netcore__V1__Destroy destroy;
    Netcore__V1__Pause pause;
    Netcore__V1__Resume resume;
    Netcore__V1__Credit credit;
    Netcore__V1__SetTimeout set_timeout;
    Netcore__V1__SetNoDelay set_no_delay;
    Netcore__V1__SetKeepAlive set_keep_alive;
    Netcore__V1__Pipe pipe;
    Netcore__V1__Unpipe unpipe;
  } u;
} cmd_parts;

static void fill_listen(const ncc_cmd *c, cmd_parts *p, Netcore__V1__Command *m) {
  Netcore__V1__Listen *l = &p->u.listen;
  netcore__v1__listen__init(l);
  l->server_id = c->id;
  l->allow_half_open = c->allow_half_open != 0;
  l->backlog = c->backlog;
  l->max_connections = c->max_connections;
  l->group = str(c->group);
  if (c->ep.kind == NCC_EP_TCP) {
    l->endpoint_case = NETCORE__V1__LISTEN__ENDPOINT_TCP;
    l->tcp = &p->tcp;
  } else if (c->ep.kind == NCC_EP_PATH && path_is_text(c->ep.path, &l->path_bytes)) {
    l->endpoint_case = NETCORE__V1__LISTEN__ENDPOINT_PATH;
    l->path = str(c->ep.path);
  } else if (c->ep.kind == NCC_EP_PATH) {
    l->endpoint_case = NETCORE__V1__LISTEN__ENDPOINT_PATH_BYTES;
  } else {
    l->endpoint_case = NETCORE__V1__LISTEN__ENDPOINT_FD;
    l->fd = c->ep.fd;
  }
  m->command_case = NETCORE__V1__COMMAND__COMMAND_LISTEN;
  m->listen = l;
}

static void fill_connect(const ncc_cmd *c, cmd_parts *p, Netcore__V1__Command *m) {
  Netcore__V1__Connect *k = &p->u.connect;
  netcore__v1__connect__init(k);
  k->socket_id = c->id;
  k->allow_half_open = c->allow_half_open != 0;
  if (c->ep.kind == NCC_EP_TCP) {
    k->endpoint_case = NETCORE__V1__CONNECT__ENDPOINT_TCP;
    k->tcp = &p->tcp;
  } else if (path_is_text(c->ep.path, &k->path_bytes)) {
    k->endpoint_case = NETCORE__V1__CONNECT__ENDPOINT_PATH;
    k->path = str(c->ep.path);
  } else {
    k->endpoint_case = NETCORE__V1__CONNECT__ENDPOINT_PATH_BYTES;
  }
  m->command_case = NETCORE__V1__COMMAND__COMMAND_CONNECT;
  m->connect = k;
}

/* Hello.resume_sockets: one block (the pointers, then the messages) in
 * p->heap, freed after packing. Returns 0 or -1 when out of memory. */
static int fill_resume_sockets(const ncc_cmd *c, cmd_parts *p) {
  size_t n = c->nresume;
  if (n > SIZE_MAX / (sizeof(Netcore__V1__ResumeSocket *) + sizeof(Netcore__V1__ResumeSocket)))
    return -1;
  Netcore__V1__ResumeSocket **ptrs = malloc(n * (sizeof *ptrs + sizeof **ptrs));
  if (ptrs == NULL) return -1;
  Netcore__V1__ResumeSocket *rs = (Netcore__V1__ResumeSocket *)(ptrs + n);
  for (size_t i = 0; i < n; i++) {
    netcore__v1__resume_socket__init(&rs[i]);
    rs[i].socket_id = c->resume[i].socket_id;
    rs[i].bytes_received = c->resume[i].bytes_received;
    rs[i].bytes_credited = c->resume[i].bytes_credited;
    rs[i].writes_acked = c->resume[i].writes_acked;
    rs[i].bytes_acked = c->resume[i].bytes_acked;
    rs[i].saw_end = c->resume[i].saw_end != 0;
    rs[i].last_seq = c->resume[i].last_seq;
    rs[i].has_options = c->resume[i].has_options != 0;
    rs[i].timeout_ms = c->resume[i].timeout_ms;
    rs[i].no_delay = c->resume[i].no_delay;
    rs[i].keep_alive = c->resume[i].keep_alive;
    rs[i].keep_alive_delay_ms = c->resume[i].keep_alive_delay_ms;
    rs[i].connecting = c->resume[i].connecting != 0;
    ptrs[i] = &rs[i];
  }
  p->heap = ptrs;
  p->u.hello.n_resume_sockets = n;
  p->u.hello.resume_sockets = ptrs;
  return 0;
}

/* Sets the case of m and its sub-message (initialised by INIT, then filled by
 * the statement that follows the macro). */
#define CASE(KIND, CASE_NAME, member, init)                 \
  case KIND:                                                \
    init(&p->u.member);                                     \
    m->command_case = NETCORE__V1__COMMAND__COMMAND_##CASE_NAME; \
    m->member = &p->u.member;

/* Fills m (and p) from c. Returns 0 or NCC_EINVAL for a kind that is no command. */
static int fill_command(const ncc_cmd *c, cmd_parts *p, Netcore__V1__Command *m) {
  netcore__v1__tcp_endpoint__init(&p->tcp);
  p->heap = NULL;
  p->tcp.host = str(c->ep.host);
  p->tcp.port = (int32_t)c->ep.port;
  m->ref = c->ref;
  switch (c->kind) {
  CASE(NCC_CMD_HELLO, HELLO, hello, netcore__v1__hello__init)
    p->u.hello.version = c->version;
    p->u.hello.name = str(c->hello_name);
    p->u.hello.credit_window = c->credit_window;
    p->u.hello.lease_ms = c->lease_ms;
    p->u.hello.lazy_acks = c->lazy_acks != 0;
    p->u.hello.batch_events = c->batch_events != 0;
    p->u.hello.service = str(c->service);
    p->u.hello.resumable = c->resumable != 0;
    p->u.hello.resume_token.data = (uint8_t *)c->resume_token;
    p->u.hello.resume_token.len = c->resume_token ? c->resume_token_len : 0;
    if (c->nresume && fill_resume_sockets(c, p) != 0) return NCC_ENOMEM;
    p->u.hello.n_resume_servers = c->nresume_servers;
    p->u.hello.resume_servers = (uint64_t *)c->resume_servers;
    break;
  CASE(NCC_CMD_BYE, BYE, bye, netcore__v1__bye__init)
    p->u.bye.handoff = c->handoff != 0;
    break;
  CASE(NCC_CMD_STATS, STATS, stats, netcore__v1__stats_query__init)
    break;
  CASE(NCC_CMD_PING, PING, ping, netcore__v1__ping__init)
    p->u.ping.nonce = c->nonce;
    break;
  case NCC_CMD_LISTEN:
    fill_listen(c, p, m);
    break;
  CASE(NCC_CMD_SERVER_PAUSE, SERVER_PAUSE, server_pause, netcore__v1__server_pause__init)
    p->u.server_pause.server_id = c->id;
    p->u.server_pause.msecs = c->msecs;
    break;
  CASE(NCC_CMD_SERVER_CLOSE, SERVER_CLOSE, server_close, netcore__v1__server_close__init)
    p->u.server_close.server_id = c->id;
    break;
  case NCC_CMD_SERVER_SET_MAX:
    netcore__v1__server_set_max_connections__init(&p->u.server_set_max);
    p->u.server_set_max.server_id = c->id;
    p->u.server_set_max.max_connections = c->max_connections;
    m->command_case = NETCORE__V1__COMMAND__COMMAND_SERVER_SET_MAX_CONNECTIONS;
    m->server_set_max_connections = &p->u.server_set_max;
    break;
  case NCC_CMD_CONNECT:
    fill_connect(c, p, m);
    break;
  CASE(NCC_CMD_WRITE, WRITE, write, netcore__v1__write__init)
    p->u.write.socket_id = c->id;
    p->u.write.fd_socket_id = c->fd_socket_id;
    p->u.write.ack_now = c->ack_now != 0;
    break;
  CASE(NCC_CMD_END, END, end, netcore__v1__end__init)
    p->u.end.socket_id = c->id;
    p->u.end.ack_now = c->ack_now != 0;
    break;
  CASE(NCC_CMD_DESTROY, DESTROY, destroy, netcore__v1__destroy__init)
    p->u.destroy.socket_id = c->id;
    break;
  CASE(NCC_CMD_PAUSE, PAUSE, pause, netcore__v1__pause__init)
    p->u.pause.socket_id = c->id;
    break;
  CASE(NCC_CMD_RESUME, RESUME, resume, netcore__v1__resume__init)
    p->u.resume.socket_id = c->id;
    break;
  CASE(NCC_CMD_CREDIT, CREDIT, credit, netcore__v1__credit__init)
    p->u.credit.socket_id = c->id;
    p->u.credit.bytes = c->bytes;
    break;
  CASE(NCC_CMD_SET_TIMEOUT, SET_TIMEOUT, set_timeout, netcore__v1__set_timeout__init)
    p->u.set_timeout.socket_id = c->id;
    p->u.set_timeout.msecs = c->msecs;
    break;
  CASE(NCC_CMD_SET_NO_DELAY, SET_NO_DELAY, set_no_delay, netcore__v1__set_no_delay__init)
    p->u.set_no_delay.socket_id = c->id;
    p->u.set_no_delay.enable = c->enable != 0;
    break;
  CASE(NCC_CMD_SET_KEEP_ALIVE, SET_KEEP_ALIVE, set_keep_alive, netcore__v1__set_keep_alive__init)
    p->u.set_keep_alive.socket_id = c->id;
    p->u.set_keep_alive.enable = c->enable != 0;
    p->u.set_keep_alive.initial_delay_ms = c->initial_delay_ms;
    break;
  CASE(NCC_CMD_PIPE, PIPE, pipe, netcore__v1__pipe__init)
    p->u.pipe.socket_id = c->id;
    p->u.pipe.dest_socket_id = c->dest_socket_id;
    p->u.pipe.no_end = c->no_end != 0;
    p->u.pipe.high_water_mark = c->high_water_mark;
    break;
  CASE(NCC_CMD_UNPIPE, UNPIPE, unpipe, netcore__v1__unpipe__init)
    p->u.unpipe.socket_id = c->id;
    break;
  default:
    return NCC_EINVAL;
  }
  return 0;
}
#undef CASE

int ncc_cmd_pack(const ncc_cmd *c, ncc_place_fn place, void *arg) {
  Netcore__V1__Command m = NETCORE__V1__COMMAND__INIT;
  cmd_parts p;
  int rc = fill_command(c, &p, &m);
  if (rc != 0) return rc;
  size_t n = netcore__v1__command__get_packed_size(&m);
  uint8_t *at = NULL;
  if (n > (size_t)INT32_MAX) {
    rc = NCC_EMSGSIZE;
  } else if ((at = place(arg, n)) == NULL) {
    rc = NCC_ENOMEM;
  } else {
    netcore__v1__command__pack(&m, at);
  }
  free(p.heap);
  return rc;
}

int ncc_cmd_payload_rule(ncc_cmd_kind kind) {
  if (kind == NCC_CMD_WRITE) return NCC_PAYLOAD_REQUIRED;
  if (kind == NCC_CMD_END) return NCC_PAYLOAD_OPTIONAL;
  return NCC_PAYLOAD_NEVER;
}

/* ----------------------------------------------------- commands: unpacking */

/* A path_bytes endpoint: its bytes as a C string in ep->path_buf. */
static void take_path_bytes(ncc_endpoint *ep, const ProtobufCBinaryData *b) {
  size_t n = b->len < sizeof ep->path_buf - 1 ? b->len : sizeof ep->path_buf - 1;
  if (n) memcpy(ep->path_buf, b->data, n); /* an empty one may have no data at all */
  ep->path_buf[n] = '\0';
  ep->kind = NCC_EP_PATH;
  ep->path = ep->path_buf;
}

static void take_endpoint(ncc_endpoint *ep, int is_tcp, Netcore__V1__TcpEndpoint *tcp,
                          const char *path) {
  if (is_tcp && tcp) {
    ep->kind = NCC_EP_TCP;
    ep->host = tcp->host ? tcp->host : "";
    ep->port = tcp->port;
  } else if (is_tcp) {
    ep->kind = NCC_EP_TCP; /* empty sub-message: port 0 on any address */
    ep->host = "";
  } else if (path) {
    ep->kind = NCC_EP_PATH;
    ep->path = path;
  }
}

static void take_listen(const Netcore__V1__Listen *l, ncc_cmd *c) {
  c->id = l->server_id;
  if (l->endpoint_case == NETCORE__V1__LISTEN__ENDPOINT_FD) {
    c->ep.kind = NCC_EP_FD;
    c->ep.fd = l->fd;
  } else {
    take_endpoint(&c->ep, l->endpoint_case == NETCORE__V1__LISTEN__ENDPOINT_TCP, l->tcp,
                  l->endpoint_case == NETCORE__V1__LISTEN__ENDPOINT_PATH ? l->path : NULL);
  }
  if (l->endpoint_case == NETCORE__V1__LISTEN__ENDPOINT_PATH_BYTES)
    take_path_bytes(&c->ep, &l->path_bytes);
  c->allow_half_open = l->allow_half_open;
  c->backlog = l->backlog;
  c->max_connections = l->max_connections;
  c->group = l->group ? l->group : "";
}

static void take_connect(const Netcore__V1__Connect *k, ncc_cmd *c) {
  c->id = k->socket_id;
  take_endpoint(&c->ep, k->endpoint_case == NETCORE__V1__CONNECT__ENDPOINT_TCP, k->tcp,
                k->endpoint_case == NETCORE__V1__CONNECT__ENDPOINT_PATH ? k->path : NULL);
  if (k->endpoint_case == NETCORE__V1__CONNECT__ENDPOINT_PATH_BYTES)
    take_path_bytes(&c->ep, &k->path_bytes);
  c->allow_half_open = k->allow_half_open;
}

#define KIND(K, N) c->kind = (K), c->name = (N)

/* Hello.resume_sockets made flat (c->resume), in the arena. Returns 0 or -1
 * when out of memory. */
static int take_resume_sockets(ncc_arena *a, const Netcore__V1__Hello *h, ncc_cmd *c) {
  size_t n = h->n_resume_sockets;
  ncc_resume_socket *r = n <= SIZE_MAX / sizeof *r ? arena_alloc(a, n * sizeof *r) : NULL;
  if (r == NULL) return -1;
  for (size_t i = 0; i < n; i++) {
    const Netcore__V1__ResumeSocket *rs = h->resume_sockets[i];
    r[i] = (ncc_resume_socket){.socket_id = rs->socket_id,
                               .bytes_received = rs->bytes_received,
                               .bytes_credited = rs->bytes_credited,
                               .bytes_acked = rs->bytes_acked,
                               .writes_acked = rs->writes_acked,
                               .last_seq = rs->last_seq,
                               .saw_end = rs->saw_end,
                               .has_options = rs->has_options,
                               .timeout_ms = rs->timeout_ms,
                               .no_delay = rs->no_delay,
                               .keep_alive = rs->keep_alive,
                               .keep_alive_delay_ms = rs->keep_alive_delay_ms,
                               .connecting = rs->connecting};
  }
  c->resume = r;
  c->nresume = n;
  return 0;
}

/* A repeated uint64 copied into the arena (*out NULL when n is 0). Returns 0
 * or -1 when out of memory. */
static int take_ids(ncc_arena *a, const uint64_t *ids, size_t n, const uint64_t **out,
                    size_t *nout) {
  *out = NULL;
  *nout = 0;
  if (n == 0) return 0;
  uint64_t *v = n <= SIZE_MAX / sizeof *v ? arena_alloc(a, n * sizeof *v) : NULL;
  if (v == NULL) return -1;
  memcpy(v, ids, n * sizeof *v);
  *out = v;
  *nout = n;
  return 0;
}

/* The flat view of one unpacked command. */
static int convert_command(ncc_arena *a, const Netcore__V1__Command *m, ncc_cmd *c) {
  memset(c, 0, sizeof *c);
  c->name = "unknown";
  c->ref = m->ref;
  switch (m->command_case) {
  case NETCORE__V1__COMMAND__COMMAND_HELLO:
    KIND(NCC_CMD_HELLO, "hello");
    c->version = m->hello->version;
    c->hello_name = m->hello->name;
    c->credit_window = m->hello->credit_window;
    c->lease_ms = m->hello->lease_ms;
    c->lazy_acks = m->hello->lazy_acks;
    c->batch_events = m->hello->batch_events;
    c->service = m->hello->service ? m->hello->service : "";
    c->resumable = m->hello->resumable;
    c->resume_token = m->hello->resume_token.len ? m->hello->resume_token.data : NULL;
    c->resume_token_len = m->hello->resume_token.len;
    if (m->hello->n_resume_sockets && take_resume_sockets(a, m->hello, c) != 0)
      return NCC_EPROTO;
    if (take_ids(a, m->hello->resume_servers, m->hello->n_resume_servers, &c->resume_servers,
                 &c->nresume_servers) != 0)
      return NCC_EPROTO;
    break;
  case NETCORE__V1__COMMAND__COMMAND_BYE:
    KIND(NCC_CMD_BYE, "bye");
    c->handoff = m->bye && m->bye->handoff;
    break;
  case NETCORE__V1__COMMAND__COMMAND_PING:
    KIND(NCC_CMD_PING, "ping");
    c->nonce = m->ping->nonce;
    break;
  case NETCORE__V1__COMMAND__COMMAND_LISTEN:
    KIND(NCC_CMD_LISTEN, "listen");
    take_listen(m->listen, c);
    break;
  case NETCORE__V1__COMMAND__COMMAND_SERVER_PAUSE:
    KIND(NCC_CMD_SERVER_PAUSE, "server_pause");
    c->id = m->server_pause->server_id;
    c->msecs = m->server_pause->msecs;
    break;
  case NETCORE__V1__COMMAND__COMMAND_SERVER_CLOSE:
    KIND(NCC_CMD_SERVER_CLOSE, "server_close");
    c->id = m->server_close->server_id;
    break;
  case NETCORE__V1__COMMAND__COMMAND_SERVER_SET_MAX_CONNECTIONS:
    KIND(NCC_CMD_SERVER_SET_MAX, "server_set_max_connections");
    c->id = m->server_set_max_connections->server_id;
    c->max_connections = m->server_set_max_connections->max_connections;
    break;
  case NETCORE__V1__COMMAND__COMMAND_CONNECT:
    KIND(NCC_CMD_CONNECT, "connect");
    take_connect(m->connect, c);
    break;
  case NETCORE__V1__COMMAND__COMMAND_WRITE:
    KIND(NCC_CMD_WRITE, "write");
    c->id = m->write->socket_id;
    c->fd_socket_id = m->write->fd_socket_id;
    c->ack_now = m->write->ack_now;
    break;
  case NETCORE__V1__COMMAND__COMMAND_END:
    KIND(NCC_CMD_END, "end");
    c->id = m->end->socket_id;
    c->ack_now = m->end->ack_now;
    break;
  case NETCORE__V1__COMMAND__COMMAND_DESTROY:
    KIND(NCC_CMD_DESTROY, "destroy");
    c->id = m->destroy->socket_id;
    break;
  case NETCORE__V1__COMMAND__COMMAND_PAUSE:
    KIND(NCC_CMD_PAUSE, "pause");
    c->id = m->pause->socket_id;
    break;
  case NETCORE__V1__COMMAND__COMMAND_RESUME:
    KIND(NCC_CMD_RESUME, "resume");
    c->id = m->resume->socket_id;
    break;
  case NETCORE__V1__COMMAND__COMMAND_CREDIT:
    KIND(NCC_CMD_CREDIT, "credit");
    c->id = m->credit->socket_id;
    c->bytes = m->credit->bytes;
    break;
  case NETCORE__V1__COMMAND__COMMAND_SET_TIMEOUT:
    KIND(NCC_CMD_SET_TIMEOUT, "set_timeout");
    c->id = m->set_timeout->socket_id;
    c->msecs = m->set_timeout->msecs;
    break;
  case NETCORE__V1__COMMAND__COMMAND_SET_NO_DELAY:
    KIND(NCC_CMD_SET_NO_DELAY, "set_no_delay");
    c->id = m->set_no_delay->socket_id;
    c->enable = m->set_no_delay->enable;
    break;
  case NETCORE__V1__COMMAND__COMMAND_SET_KEEP_ALIVE:
    KIND(NCC_CMD_SET_KEEP_ALIVE, "set_keep_alive");
    c->id = m->set_keep_alive->socket_id;
    c->enable = m->set_keep_alive->enable;
    c->initial_delay_ms = m->set_keep_alive->initial_delay_ms;
    break;
  case NETCORE__V1__COMMAND__COMMAND_STATS:
    KIND(NCC_CMD_STATS, "stats");
    break;
  case NETCORE__V1__COMMAND__COMMAND_PIPE:
    KIND(NCC_CMD_PIPE, "pipe");
    c->id = m->pipe->socket_id;
    c->dest_socket_id = m->pipe->dest_socket_id;
    c->no_end = m->pipe->no_end;
    c->high_water_mark = m->pipe->high_water_mark;
    break;
  case NETCORE__V1__COMMAND__COMMAND_UNPIPE:
    KIND(NCC_CMD_UNPIPE, "unpipe");
    c->id = m->unpipe->socket_id;
    break;
  case NETCORE__V1__COMMAND__COMMAND_BATCH:
    KIND(NCC_CMD_BATCH, "batch");
    c->batch_count = m->batch->n_commands;
    break;
  default:
    return NCC_ERR_UNKNOWN_COMMAND;
  }
  return 0;
}
#undef KIND

/* The dotted name ("listen.tcp.host") of the first string field under m
 * that is not valid UTF-8, written into where; 0 if there is none. A batch's
 * commands are not descended into: each is checked when it is converted. */
static int bad_string(const ProtobufCMessage *m, char *where, size_t cap) {
  const ProtobufCMessageDescriptor *d = m->descriptor;
  if (d == &netcore__v1__command_batch__descriptor) return 0;
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    const char *member = (const char *)m + f->offset;
    if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
        *(const uint32_t *)((const char *)m + f->quantifier_offset) != f->id)
      continue;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) continue; /* none holds a string */
    if (f->type == PROTOBUF_C_TYPE_STRING) {
      const char *s = *(char *const *)member;
      if (s && !ncc_utf8_valid(s, strlen(s))) {
        snprintf(where, cap, "%s", f->name);
        return 1;
      }
    } else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
      const ProtobufCMessage *sub = *(ProtobufCMessage *const *)member;
      char inner[128]; /* the name is built only for a bad string: no printf per command */
      if (!sub || !bad_string(sub, inner, sizeof inner)) continue;
      return snprintf(where, cap, "%s.%s", f->name, inner) >= 0; /* cut if long: fine */
    }
  }
  return 0;
}

/* PROTOCOL.md 1.2: strings must be valid UTF-8, and a path given as bytes
 * must still be a C string. Returns 0 or NCC_ERR_INVALID_ARG_VALUE with the
 * field named in why. */
static int check_strings(const Netcore__V1__Command *m, const ncc_cmd *c, char *why,
                         size_t why_cap) {
  char where[128];
  if (bad_string(&m->base, where, sizeof where)) {
    int is_path = strlen(where) >= 5 && strcmp(where + strlen(where) - 5, ".path") == 0;
    snprintf(why, why_cap, "%s is not valid UTF-8%s", where,
             is_path ? ": send a path that is not UTF-8 as path_bytes" : "");
    return NCC_ERR_INVALID_ARG_VALUE;
  }
  const ProtobufCBinaryData *b =
      m->command_case == NETCORE__V1__COMMAND__COMMAND_LISTEN &&
              m->listen->endpoint_case == NETCORE__V1__LISTEN__ENDPOINT_PATH_BYTES
          ? &m->listen->path_bytes
      : m->command_case == NETCORE__V1__COMMAND__COMMAND_CONNECT &&
              m->connect->endpoint_case == NETCORE__V1__CONNECT__ENDPOINT_PATH_BYTES
          ? &m->connect->path_bytes
          : NULL;
  if (b && b->len > 0 && memchr(b->data, '\0', b->len)) {
    snprintf(why, why_cap, "%s.path_bytes holds a NUL byte: a UNIX socket path cannot",
             c->name);
    return NCC_ERR_INVALID_ARG_VALUE;
  }
  return 0;
}

int ncc_cmd_unpack(ncc_arena *a, const void *data, size_t len, ncc_cmd *c, char *why,
                   size_t why_cap) {
  ProtobufCAllocator alloc = {arena_alloc, arena_free, a};
  ncc_arena_reset(a);
  memset(c, 0, sizeof *c);
  c->name = "unknown";
  const Netcore__V1__Command *m = netcore__v1__command__unpack(&alloc, len, data);
  if (m == NULL) return NCC_EPROTO;
  a->root = m;
  int rc = convert_command(a, m, c);
  return rc ? rc : check_strings(m, c, why, why_cap);
}

int ncc_cmd_batch_entry(ncc_arena *a, size_t i, ncc_cmd *c, char *why, size_t why_cap) {
  const Netcore__V1__Command *m = a->root;
  if (m == NULL || m->command_case != NETCORE__V1__COMMAND__COMMAND_BATCH ||
      i >= m->batch->n_commands) {
    memset(c, 0, sizeof *c);
    c->name = "unknown";
    return NCC_ERR_UNKNOWN_COMMAND;
  }
  const Netcore__V1__Command *e = m->batch->commands[i];
  int rc = convert_command(a, e, c);
  return rc ? rc : check_strings(e, c, why, why_cap);
}

/* --------------------------------------------------------- events: packing */

/* Room for repaired copies of an event's strings that are not valid UTF-8
 * (rare: a UNIX path, or a message quoting one). Enough for an Error with a
 * full message of invalid bytes; anything longer is cut. */
#define REPAIR_ROOM 2048

/* An Event and the sub-messages it points to, all on the packer's stack. */
typedef struct event_parts {
  size_t repaired; /* bytes of repair in use */
  char repair[REPAIR_ROOM];
  Netcore__V1__Address a1, a2;
  Netcore__V1__WriteAck piggyback;
  void *heap; /* what a Stats event allocated (stats_parts), freed after packing */
  union {
    Netcore__V1__Welcome welcome;
    Netcore__V1__Error error;
    Netcore__V1__Pong pong;
    Netcore__V1__Listening listening;
    Netcore__V1__ServerError server_error;
    Netcore__V1__ServerClosed server_closed;
    Netcore__V1__Connection connection;
    Netcore__V1__Connected connected;
    Netcore__V1__Data data;
    Netcore__V1__Ended ended;
    Netcore__V1__WriteAck write_ack;
    Netcore__V1__Timeout timeout;
    Netcore__V1__SocketError socket_error;
    Netcore__V1__Closed closed;
    Netcore__V1__Fd fd;
    Netcore__V1__Shutdown shutdown;
    Netcore__V1__Adopted adopted;
    Netcore__V1__Stats stats;
    Netcore__V1__Unpiped unpiped;
  } u;
} event_parts;

/* The one sanitizer of everything packed into an event's string field
 * (PROTOCOL.md 1.2): s itself when it is valid UTF-8, else a copy in p with
 * each invalid sequence replaced by U+FFFD. NULL gives "". */
static char *text(event_parts *p, const char *s) {
  if (!s) return "";
  size_t n = strlen(s);
  if (ncc_utf8_valid(s, n)) return (char *)s;
  if (p->repaired >= sizeof p->repair) return "";
  char *out = p->repair + p->repaired;
  p->repaired += ncc_utf8_repair(s, n, out, sizeof p->repair - p->repaired) + 1;
  return out;
}

/* Wire form of an address, in buf; a UNIX path that is not UTF-8 goes as
 * address_bytes with its display form in address. */
static Netcore__V1__Address *address(event_parts *p, const ncc_addr *a,
                                     Netcore__V1__Address *buf) {
  if (!a) return NULL;
  netcore__v1__address__init(buf);
  buf->family = (Netcore__V1__Family)a->family;
  buf->address = text(p, a->address);
  if (buf->address != a->address) {
    buf->address_bytes.data = (uint8_t *)a->address;
    buf->address_bytes.len = strlen(a->address);
  }
  buf->port = a->port;
  return buf;
}

/* The sub-messages of a Stats event, in one allocation: families, samples,
 * labels and the pointer arrays protobuf-c wants. */
static int fill_stats(event_parts *p, const ncc_stats *st) {
  size_t nsmp = 0, nlab = 0;
  for (size_t f = 0; f < st->nfamilies; f++) {
    nsmp += st->families[f].nsamples;
    for (size_t i = 0; i < st->families[f].nsamples; i++)
      nlab += st->families[f].samples[i].nlabels;
  }
  size_t need = st->nfamilies * (sizeof(Netcore__V1__MetricFamily) + sizeof(void *)) +
                nsmp * (sizeof(Netcore__V1__MetricSample) + sizeof(void *)) +
                nlab * (sizeof(Netcore__V1__MetricLabel) + sizeof(void *));
  char *mem = malloc(need + 1);
  if (!mem) return -1;
  p->heap = mem;
  Netcore__V1__MetricFamily *fams = (void *)mem;
  Netcore__V1__MetricSample *smps = (void *)(fams + st->nfamilies);
  Netcore__V1__MetricLabel *labs = (void *)(smps + nsmp);
  Netcore__V1__MetricFamily **famp = (void *)(labs + nlab);
  Netcore__V1__MetricSample **smpp = (void *)(famp + st->nfamilies);
  Netcore__V1__MetricLabel **labp = (void *)(smpp + nsmp);
  size_t si = 0, li = 0;
  for (size_t f = 0; f < st->nfamilies; f++) {
    const ncc_stats_family *mf = &st->families[f];
    netcore__v1__metric_family__init(&fams[f]);
    fams[f].name = text(p, mf->name);
    fams[f].help = text(p, mf->help);
    fams[f].type = text(p, mf->type);
    fams[f].n_samples = mf->nsamples;
    fams[f].samples = smpp + si;
    famp[f] = &fams[f];
    for (size_t i = 0; i < mf->nsamples; i++, si++) {
      const ncc_stats_sample *ms = &mf->samples[i];
      netcore__v1__metric_sample__init(&smps[si]);
      smps[si].name = text(p, ms->name);
      smps[si].n_labels = ms->nlabels;
      smps[si].labels = labp + li;
      smps[si].value = ms->value;
      smpp[si] = &smps[si];
      for (size_t k = 0; k < ms->nlabels; k++, li++) {
        netcore__v1__metric_label__init(&labs[li]);
        labs[li].name = text(p, ms->labels[k].name);
        labs[li].value = text(p, ms->labels[k].value);
        labp[li] = &labs[li];
      }
    }
  }
  netcore__v1__stats__init(&p->u.stats);
  p->u.stats.instance_id = text(p, st->instance_id);
  p->u.stats.uptime_ms = st->uptime_ms;
  p->u.stats.n_families = st->nfamilies;
  p->u.stats.families = famp;
  return 0;
}

static void fill_welcome(event_parts *p, const ncc_welcome *w) {
  netcore__v1__welcome__init(&p->u.welcome);
  p->u.welcome.version = NCC_PROTOCOL_VERSION;
  p->u.welcome.minor_version = w->minor_version;
  p->u.welcome.instance_id = text(p, w->instance_id);
  p->u.welcome.id_prefix = w->id_prefix;
  p->u.welcome.credit_window = w->credit_window;
  p->u.welcome.lease_ms = w->lease_ms;
  p->u.welcome.max_frame = w->max_frame;
  p->u.welcome.max_write_queue = w->max_write_queue;
  p->u.welcome.server_version = text(p, w->server_version);
  p->u.welcome.session_token.data = (uint8_t *)w->session_token;
  p->u.welcome.session_token.len = w->session_token_len;
  p->u.welcome.resumed = w->resumed != 0;
  p->u.welcome.n_resumed_servers = w->nresumed_servers;
  p->u.welcome.resumed_servers = (uint64_t *)w->resumed_servers;
}

/* Welcome.resumed_sockets: one block (the pointers, then the messages) in
 * p->heap, freed after packing. Returns 0 or -1 when out of memory. */
static int fill_resumed_sockets(event_parts *p, const ncc_welcome *w) {
  size_t n = w->nresumed;
  if (n > SIZE_MAX / (sizeof(Netcore__V1__ResumedSocket *) + sizeof(Netcore__V1__ResumedSocket)))
    return -1;
  Netcore__V1__ResumedSocket **ptrs = malloc(n * (sizeof *ptrs + sizeof **ptrs));
  if (ptrs == NULL) return -1;
  Netcore__V1__ResumedSocket *rs = (Netcore__V1__ResumedSocket *)(ptrs + n);
  for (size_t i = 0; i < n; i++) {
    netcore__v1__resumed_socket__init(&rs[i]);
    rs[i].socket_id = w->resumed_sockets[i].socket_id;
    rs[i].writes = w->resumed_sockets[i].writes;
    ptrs[i] = &rs[i];
  }
  p->heap = ptrs;
  p->u.welcome.n_resumed_sockets = n;
  p->u.welcome.resumed_sockets = ptrs;
  return 0;
}

static void fill_adopted(event_parts *p, const ncc_event *ev) {
  Netcore__V1__Adopted *a = &p->u.adopted;
  netcore__v1__adopted__init(a);
  a->server_id = ev->server_id;
  a->socket_id = ev->socket_id;
  a->local = address(p, ev->local, &p->a1);
  a->remote = address(p, ev->remote, &p->a2);
  a->allow_half_open = ev->flag;
  a->server_connections = ev->count;
  a->bytes_read = ev->bytes_read;
  a->bytes_written = ev->bytes_written;
  a->queued_bytes = ev->queued_bytes;
  a->replay_bytes = ev->bytes;
  a->write_ended = ev->write_ended;
  a->peer_ended = ev->peer_ended;
  a->pipe_dest_socket_id = ev->dest_socket_id;
  a->pipe_no_end = ev->pipe_no_end;
  a->pipe_high_water_mark = ev->pipe_high_water_mark;
}

static void fill_unpiped(event_parts *p, const ncc_event *ev) {
  Netcore__V1__Unpiped *u = &p->u.unpiped;
  netcore__v1__unpiped__init(u);
  u->socket_id = ev->socket_id;
  u->dest_socket_id = ev->dest_socket_id;
  u->reason = (Netcore__V1__UnpipeReason)ev->unpipe_reason;
  u->bytes = ev->bytes;
  u->bytes_read = ev->bytes_read;
  u->bytes_written = ev->bytes_written;
  u->dest_ended = ev->flag;
}

/* Sets e's case and its sub-message (initialised by init), as the statement
 * that follows goes on to fill. */
#define CASE(KIND, CASE_NAME, member, init)             \
  case KIND:                                            \
    init(&p->u.member);                                 \
    e->event_case = NETCORE__V1__EVENT__EVENT_##CASE_NAME; \
    e->member = &p->u.member;

/* Fills e (and p) from ev. Returns 0, or -1 when out of memory. */
static int fill_event(const ncc_event *ev, event_parts *p, Netcore__V1__Event *e) {
  p->repaired = 0;
  p->heap = NULL;
  e->seq = ev->seq;
  if (ev->has_ack) {
    netcore__v1__write_ack__init(&p->piggyback);
    p->piggyback.socket_id = ev->socket_id;
    p->piggyback.writes = ev->ack_writes;
    p->piggyback.bytes = ev->ack_bytes;
    p->piggyback.bytes_written = ev->ack_bytes_written;
    p->piggyback.queued_bytes = ev->ack_queued_bytes;
    e->ack = &p->piggyback;
  }
  switch (ev->kind) {
  case NCC_EV_WELCOME:
    fill_welcome(p, ev->welcome);
    if (ev->welcome->nresumed && fill_resumed_sockets(p, ev->welcome) != 0) return -1;
    e->event_case = NETCORE__V1__EVENT__EVENT_WELCOME, e->welcome = &p->u.welcome;
    break;
  CASE(NCC_EV_ERROR, ERROR, error, netcore__v1__error__init)
    p->u.error.code = text(p, ev->code);
    p->u.error.message = text(p, ev->message);
    p->u.error.ref = ev->ref;
    p->u.error.command = text(p, ev->command);
    p->u.error.socket_id = ev->socket_id;
    p->u.error.server_id = ev->server_id;
    break;
  CASE(NCC_EV_PONG, PONG, pong, netcore__v1__pong__init)
    p->u.pong.nonce = ev->nonce;
    break;
  CASE(NCC_EV_LISTENING, LISTENING, listening, netcore__v1__listening__init)
    p->u.listening.server_id = ev->server_id;
    p->u.listening.address = address(p, ev->local, &p->a1);
    break;
  CASE(NCC_EV_SERVER_ERROR, SERVER_ERROR, server_error, netcore__v1__server_error__init)
    p->u.server_error.server_id = ev->server_id;
    p->u.server_error.code = text(p, ev->code);
    p->u.server_error.message = text(p, ev->message);
    break;
  CASE(NCC_EV_SERVER_CLOSED, SERVER_CLOSED, server_closed, netcore__v1__server_closed__init)
    p->u.server_closed.server_id = ev->server_id;
    break;
  CASE(NCC_EV_CONNECTION, CONNECTION, connection, netcore__v1__connection__init)
    p->u.connection.server_id = ev->server_id;
    p->u.connection.socket_id = ev->socket_id;
    p->u.connection.local = address(p, ev->local, &p->a1);
    p->u.connection.remote = address(p, ev->remote, &p->a2);
    p->u.connection.allow_half_open = ev->flag;
    p->u.connection.server_connections = ev->count;
    break;
  CASE(NCC_EV_CONNECTED, CONNECTED, connected, netcore__v1__connected__init)
    p->u.connected.socket_id = ev->socket_id;
    p->u.connected.local = address(p, ev->local, &p->a1);
    p->u.connected.remote = address(p, ev->remote, &p->a2);
    break;
  CASE(NCC_EV_DATA, DATA, data, netcore__v1__data__init)
    p->u.data.socket_id = ev->socket_id;
    break;
  CASE(NCC_EV_ENDED, ENDED, ended, netcore__v1__ended__init)
    p->u.ended.socket_id = ev->socket_id;
    break;
  CASE(NCC_EV_WRITE_ACK, WRITE_ACK, write_ack, netcore__v1__write_ack__init)
    p->u.write_ack.socket_id = ev->socket_id;
    p->u.write_ack.writes = ev->count;
    p->u.write_ack.bytes = ev->bytes;
    p->u.write_ack.bytes_written = ev->bytes_written;
    p->u.write_ack.queued_bytes = ev->queued_bytes;
    break;
  CASE(NCC_EV_TIMEOUT, TIMEOUT, timeout, netcore__v1__timeout__init)
    p->u.timeout.socket_id = ev->socket_id;
    break;
  CASE(NCC_EV_SOCKET_ERROR, SOCKET_ERROR, socket_error, netcore__v1__socket_error__init)
    p->u.socket_error.socket_id = ev->socket_id;
    p->u.socket_error.code = text(p, ev->code);
    p->u.socket_error.message = text(p, ev->message);
    break;
  CASE(NCC_EV_CLOSED, CLOSED, closed, netcore__v1__closed__init)
    p->u.closed.socket_id = ev->socket_id;
    p->u.closed.had_error = ev->flag;
    p->u.closed.bytes_read = ev->bytes_read;
    p->u.closed.bytes_written = ev->bytes_written;
    break;
  CASE(NCC_EV_FD, FD, fd, netcore__v1__fd__init)
    p->u.fd.socket_id = ev->socket_id;
    p->u.fd.new_socket_id = ev->new_socket_id;
    p->u.fd.local = address(p, ev->local, &p->a1);
    p->u.fd.remote = address(p, ev->remote, &p->a2);
    break;
  CASE(NCC_EV_SHUTDOWN, SHUTDOWN, shutdown, netcore__v1__shutdown__init)
    p->u.shutdown.reason = text(p, ev->reason);
    break;
  case NCC_EV_ADOPTED:
    fill_adopted(p, ev);
    e->event_case = NETCORE__V1__EVENT__EVENT_ADOPTED, e->adopted = &p->u.adopted;
    break;
  case NCC_EV_UNPIPED:
    fill_unpiped(p, ev);
    e->event_case = NETCORE__V1__EVENT__EVENT_UNPIPED, e->unpiped = &p->u.unpiped;
    break;
  case NCC_EV_STATS:
    if (fill_stats(p, ev->stats) != 0) return -1;
    e->event_case = NETCORE__V1__EVENT__EVENT_STATS, e->stats = &p->u.stats;
    break;
  default: /* NONE, BATCH: an empty Event */
    break;
  }
  return 0;
}
#undef CASE

int ncc_event_pack(const ncc_event *ev, ncc_place_fn place, void *arg) {
  Netcore__V1__Event e = NETCORE__V1__EVENT__INIT;
  event_parts p;
  if (fill_event(ev, &p, &e) != 0) return NCC_ENOMEM;
  size_t len = netcore__v1__event__get_packed_size(&e);
  uint8_t *at = place(arg, len);
  if (at) netcore__v1__event__pack(&e, at);
  free(p.heap);
  return at ? 0 : NCC_ENOMEM;
}

/* ------------------------------------------------------- events: unpacking */

static const char *or_empty(const char *s) { return s ? s : ""; }

/* The ncc_addr of in, in the arena; NULL if in is NULL or memory is short
 * (an absent address then). */
static const ncc_addr *take_addr(ncc_arena *a, const Netcore__V1__Address *in) {
  if (in == NULL) return NULL;
  ncc_addr *out = arena_alloc(a, sizeof(*out));
  if (out == NULL) return NULL;
  memset(out, 0, sizeof(*out));
  switch (in->family) {
  case NETCORE__V1__FAMILY__FAMILY_IPV4:
    out->family = NCC_FAMILY_IPV4;
    break;
  case NETCORE__V1__FAMILY__FAMILY_IPV6:
    out->family = NCC_FAMILY_IPV6;
    break;
  case NETCORE__V1__FAMILY__FAMILY_UNIX:
    out->family = NCC_FAMILY_UNIX;
    break;
  default:
    out->family = NCC_FAMILY_UNSPECIFIED;
    break;
  }
  /* address_bytes, when present, is the exact path; address only shows it. */
  const char *s = in->address_bytes.len > 0 ? (const char *)in->address_bytes.data : in->address;
  size_t n = in->address_bytes.len > 0 ? in->address_bytes.len : s ? strlen(s) : 0;
  if (n >= sizeof(out->address)) n = sizeof(out->address) - 1;
  if (n > 0) memcpy(out->address, s, n);
  out->port = in->port;
  return out;
}

static const ncc_welcome *take_welcome(ncc_arena *a, const Netcore__V1__Welcome *w) {
  ncc_welcome *out = arena_alloc(a, sizeof(*out));
  if (out == NULL) return NULL;
  memset(out, 0, sizeof(*out));
  out->version = w->version;
  out->minor_version = w->minor_version;
  out->instance_id = or_empty(w->instance_id);
  out->server_version = or_empty(w->server_version);
  out->id_prefix = w->id_prefix;
  out->credit_window = w->credit_window;
  out->lease_ms = w->lease_ms;
  out->max_frame = w->max_frame;
  out->max_write_queue = w->max_write_queue;
  out->session_token = w->session_token.data;
  out->session_token_len = w->session_token.len;
  out->resumed = w->resumed;
  if (w->n_resumed_sockets) {
    size_t n = w->n_resumed_sockets;
    ncc_resumed_socket *rs = n <= SIZE_MAX / sizeof *rs ? arena_alloc(a, n * sizeof *rs) : NULL;
    if (rs == NULL) return NULL;
    for (size_t i = 0; i < n; i++) {
      rs[i].socket_id = w->resumed_sockets[i]->socket_id;
      rs[i].writes = w->resumed_sockets[i]->writes;
    }
    out->resumed_sockets = rs;
    out->nresumed = n;
  }
  if (take_ids(a, w->resumed_servers, w->n_resumed_servers, &out->resumed_servers,
               &out->nresumed_servers) != 0)
    return NULL;
  return out;
}

/* The ncc_stats view of a Stats message, arrays in the arena. */
static const ncc_stats *take_stats(ncc_arena *a, const Netcore__V1__Stats *st) {
  size_t nsmp = 0, nlab = 0;
  for (size_t f = 0; f < st->n_families; f++) {
    nsmp += st->families[f]->n_samples;
    for (size_t i = 0; i < st->families[f]->n_samples; i++)
      nlab += st->families[f]->samples[i]->n_labels;
  }
  ncc_stats *out = arena_alloc(a, sizeof(*out) + st->n_families * sizeof(ncc_stats_family) +
                                      nsmp * sizeof(ncc_stats_sample) +
                                      nlab * sizeof(ncc_stats_label));
  if (out == NULL) return NULL;
  ncc_stats_family *fams = (ncc_stats_family *)(out + 1);
  ncc_stats_sample *smps = (ncc_stats_sample *)(fams + st->n_families);
  ncc_stats_label *labs = (ncc_stats_label *)(smps + nsmp);
  out->instance_id = or_empty(st->instance_id);
  out->uptime_ms = st->uptime_ms;
  out->families = fams;
  out->nfamilies = st->n_families;
  for (size_t f = 0; f < st->n_families; f++) {
    const Netcore__V1__MetricFamily *mf = st->families[f];
    fams[f].name = or_empty(mf->name);
    fams[f].help = or_empty(mf->help);
    fams[f].type = or_empty(mf->type);
    fams[f].samples = smps;
    fams[f].nsamples = mf->n_samples;
    for (size_t i = 0; i < mf->n_samples; i++, smps++) {
      const Netcore__V1__MetricSample *ms = mf->samples[i];
      smps->name = or_empty(ms->name);
      smps->value = ms->value;
      smps->labels = labs;
      smps->nlabels = ms->n_labels;
      for (size_t k = 0; k < ms->n_labels; k++, labs++) {
        labs->name = or_empty(ms->labels[k]->name);
        labs->value = or_empty(ms->labels[k]->value);
      }
    }
  }
  return out;
}

static void take_adopted(ncc_arena *a, const Netcore__V1__Adopted *m, ncc_event *ev) {
  ev->server_id = m->server_id;
  ev->socket_id = m->socket_id;
  ev->local = take_addr(a, m->local);
  ev->remote = take_addr(a, m->remote);
  ev->flag = m->allow_half_open;
  ev->count = m->server_connections;
  ev->bytes_read = m->bytes_read;
  ev->bytes_written = m->bytes_written;
  ev->queued_bytes = m->queued_bytes;
  ev->bytes = m->replay_bytes;
  ev->write_ended = m->write_ended;
  ev->peer_ended = m->peer_ended;
  ev->dest_socket_id = m->pipe_dest_socket_id;
  ev->pipe_no_end = m->pipe_no_end;
  ev->pipe_high_water_mark = m->pipe_high_water_mark;
}

static void take_unpiped(const Netcore__V1__Unpiped *m, ncc_event *ev) {
  ev->socket_id = m->socket_id;
  ev->dest_socket_id = m->dest_socket_id;
  ev->unpipe_reason = (int)m->reason;
  ev->bytes = m->bytes;
  ev->bytes_read = m->bytes_read;
  ev->bytes_written = m->bytes_written;
  ev->flag = m->dest_ended;
}

/* Fills ev (memset by the caller) from e. */
static void convert_event(ncc_arena *a, const Netcore__V1__Event *e, ncc_event *ev) {
  ev->seq = e->seq;
  if (e->ack != NULL) {
    ev->has_ack = 1;
    ev->ack_writes = e->ack->writes;
    ev->ack_bytes = e->ack->bytes;
    ev->ack_bytes_written = e->ack->bytes_written;
    ev->ack_queued_bytes = e->ack->queued_bytes;
  }
  switch (e->event_case) {
  case NETCORE__V1__EVENT__EVENT_WELCOME:
    ev->kind = NCC_EV_WELCOME;
    ev->welcome = take_welcome(a, e->welcome);
    if (ev->welcome == NULL) ev->kind = NCC_EV_NONE;
    break;
  case NETCORE__V1__EVENT__EVENT_ERROR:
    ev->kind = NCC_EV_ERROR;
    ev->code = e->error->code;
    ev->message = e->error->message;
    ev->ref = e->error->ref;
    ev->command = e->error->command;
    ev->socket_id = e->error->socket_id;
    ev->server_id = e->error->server_id;
    break;
  case NETCORE__V1__EVENT__EVENT_PONG:
    ev->kind = NCC_EV_PONG;
    ev->nonce = e->pong->nonce;
    break;
  case NETCORE__V1__EVENT__EVENT_LISTENING:
    ev->kind = NCC_EV_LISTENING;
    ev->server_id = e->listening->server_id;
    ev->local = take_addr(a, e->listening->address);
    break;
  case NETCORE__V1__EVENT__EVENT_SERVER_ERROR:
    ev->kind = NCC_EV_SERVER_ERROR;
    ev->server_id = e->server_error->server_id;
    ev->code = e->server_error->code;
    ev->message = e->server_error->message;
    break;
  case NETCORE__V1__EVENT__EVENT_SERVER_CLOSED:
    ev->kind = NCC_EV_SERVER_CLOSED;
    ev->server_id = e->server_closed->server_id;
    break;
  case NETCORE__V1__EVENT__EVENT_CONNECTION:
    ev->kind = NCC_EV_CONNECTION;
    ev->server_id = e->connection->server_id;
    ev->socket_id = e->connection->socket_id;
    ev->local = take_addr(a, e->connection->local);
    ev->remote = take_addr(a, e->connection->remote);
    ev->flag = e->connection->allow_half_open;
    ev->count = e->connection->server_connections;
    break;
  case NETCORE__V1__EVENT__EVENT_CONNECTED:
    ev->kind = NCC_EV_CONNECTED;
    ev->socket_id = e->connected->socket_id;
    ev->local = take_addr(a, e->connected->local);
    ev->remote = take_addr(a, e->connected->remote);
    break;
  case NETCORE__V1__EVENT__EVENT_DATA:
    ev->kind = NCC_EV_DATA;
    ev->socket_id = e->data->socket_id;
    break;
  case NETCORE__V1__EVENT__EVENT_ENDED:
    ev->kind = NCC_EV_ENDED;
    ev->socket_id = e->ended->socket_id;
    break;
  case NETCORE__V1__EVENT__EVENT_WRITE_ACK:
    ev->kind = NCC_EV_WRITE_ACK;
    ev->socket_id = e->write_ack->socket_id;
    ev->count = e->write_ack->writes;
    ev->bytes = e->write_ack->bytes;
    ev->bytes_written = e->write_ack->bytes_written;
    ev->queued_bytes = e->write_ack->queued_bytes;
    break;
  case NETCORE__V1__EVENT__EVENT_TIMEOUT:
    ev->kind = NCC_EV_TIMEOUT;
    ev->socket_id = e->timeout->socket_id;
    break;
  case NETCORE__V1__EVENT__EVENT_SOCKET_ERROR:
    ev->kind = NCC_EV_SOCKET_ERROR;
    ev->socket_id = e->socket_error->socket_id;
    ev->code = e->socket_error->code;
    ev->message = e->socket_error->message;
    break;
  case NETCORE__V1__EVENT__EVENT_CLOSED:
    ev->kind = NCC_EV_CLOSED;
    ev->socket_id = e->closed->socket_id;
    ev->flag = e->closed->had_error;
    ev->bytes_read = e->closed->bytes_read;
    ev->bytes_written = e->closed->bytes_written;
    break;
  case NETCORE__V1__EVENT__EVENT_FD:
    ev->kind = NCC_EV_FD;
    ev->socket_id = e->fd->socket_id;
    ev->new_socket_id = e->fd->new_socket_id;
    ev->local = take_addr(a, e->fd->local);
    ev->remote = take_addr(a, e->fd->remote);
    break;
  case NETCORE__V1__EVENT__EVENT_ADOPTED:
    ev->kind = NCC_EV_ADOPTED;
    take_adopted(a, e->adopted, ev);
    break;
  case NETCORE__V1__EVENT__EVENT_UNPIPED:
    ev->kind = NCC_EV_UNPIPED;
    take_unpiped(e->unpiped, ev);
    break;
  case NETCORE__V1__EVENT__EVENT_STATS:
    ev->kind = NCC_EV_STATS;
    ev->stats = take_stats(a, e->stats);
    if (ev->stats == NULL) ev->kind = NCC_EV_NONE;
    break;
  case NETCORE__V1__EVENT__EVENT_SHUTDOWN:
    ev->kind = NCC_EV_SHUTDOWN;
    ev->reason = e->shutdown->reason;
    break;
  default:
    ev->kind = NCC_EV_NONE;
    break;
  }
  ev->code = or_empty(ev->code);
  ev->message = or_empty(ev->message);
  ev->command = or_empty(ev->command);
  ev->reason = or_empty(ev->reason);
}

int ncc_event_unpack(ncc_arena *a, const void *data, size_t len, ncc_event *ev) {
  ProtobufCAllocator alloc = {arena_alloc, arena_free, a};
  ncc_arena_reset(a);
  memset(ev, 0, sizeof(*ev));
  ev->code = ev->message = ev->command = ev->reason = "";
  /* protobuf-c would recurse on nested batches without a limit (pbwalk.h). */
  size_t count, nested_at;
  if (ncc_pb_walk_batches(data, len, NCC_BATCH_FIELD, &count, &nested_at) != 0) return NCC_EPROTO;
  const Netcore__V1__Event *e = netcore__v1__event__unpack(&alloc, len, data);
  if (e == NULL) return NCC_EPROTO;
  a->root = e;
  if (e->event_case == NETCORE__V1__EVENT__EVENT_BATCH) {
    ev->kind = NCC_EV_BATCH;
    ev->count = (uint32_t)e->batch->n_events;
    return 0;
  }
  convert_event(a, e, ev);
  return 0;
}

int ncc_event_batch_entry(ncc_arena *a, size_t i, ncc_event *ev) {
  const Netcore__V1__Event *root = a->root;
  memset(ev, 0, sizeof(*ev));
  ev->code = ev->message = ev->command = ev->reason = "";
  if (root == NULL || root->event_case != NETCORE__V1__EVENT__EVENT_BATCH ||
      i >= root->batch->n_events)
    return NCC_EPROTO;
  /* Batches do not nest (PROTOCOL.md 1.1): one inside is not understood. */
  if (root->batch->events[i]->event_case == NETCORE__V1__EVENT__EVENT_BATCH) return 0;
  convert_event(a, root->batch->events[i], ev);
  return 0;
}
