/* wire.c: see wire.h. */
#include "wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "pbwalk.h"
#include "metrics.h"
#include "netcore.pb-c.h"
#include "utf8.h"

/* Unpacking a command allocates a few small objects. A bump arena reset after
 * every command keeps malloc off the hot path; oversized requests fall back to
 * malloc and are freed individually. */
#define ARENA_SIZE (64 * 1024)
static _Alignas(16) unsigned char arena[ARENA_SIZE];
static size_t arena_used;
static Netcore__V1__Command *current;

static void *arena_alloc(void *data, size_t size) {
  size_t need = (size + 15) & ~(size_t)15;
  if (need <= ARENA_SIZE - arena_used) {
    void *p = arena + arena_used;
    arena_used += need;
    return p;
  }
  return malloc(size);
}

static void arena_free(void *data, void *p) {
  if ((unsigned char *)p >= arena && (unsigned char *)p < arena + ARENA_SIZE) return;
  free(p);
}

static ProtobufCAllocator arena_allocator = {arena_alloc, arena_free, NULL};

/* Hello.resume_sockets made flat (ncd_cmd.resume), in the arena or not. */
static void *resume_flat;

void ncd_wire_cmd_release(void) {
  if (current) protobuf_c_message_free_unpacked(&current->base, &arena_allocator);
  current = NULL;
  if (resume_flat) arena_free(NULL, resume_flat);
  resume_flat = NULL;
  arena_used = 0;
}

/* A path_bytes endpoint: its bytes as a C string in ep->path_buf. */
static void take_path_bytes(ncd_endpoint *ep, const ProtobufCBinaryData *b) {
  size_t n = b->len < sizeof ep->path_buf - 1 ? b->len : sizeof ep->path_buf - 1;
  memcpy(ep->path_buf, b->data, n);
  ep->path_buf[n] = '\0';
  ep->kind = NCD_EP_PATH;
  ep->path = ep->path_buf;
}

static void take_endpoint(ncd_endpoint *ep, int is_tcp, Netcore__V1__TcpEndpoint *tcp,
                          const char *path) {
  if (is_tcp && tcp) {
    ep->kind = NCD_EP_TCP;
    ep->host = tcp->host ? tcp->host : "";
    ep->port = tcp->port;
  } else if (is_tcp) {
    ep->kind = NCD_EP_TCP; /* empty sub-message: port 0 on any address */
    ep->host = "";
  } else if (path) {
    ep->kind = NCD_EP_PATH;
    ep->path = path;
  }
}

/* The flat view of one unpacked command. */
static int convert(const Netcore__V1__Command *m, ncd_cmd *c) {
  memset(c, 0, sizeof *c);
  c->name = "unknown";
  c->ref = m->ref;
  switch (m->command_case) {
  case NETCORE__V1__COMMAND__COMMAND_HELLO:
    c->kind = NCD_CMD_HELLO, c->name = "hello";
    c->version = m->hello->version;
    c->hello_name = m->hello->name;
    c->credit_window = m->hello->credit_window;
    c->lease_ms = m->hello->lease_ms;
    c->lazy_acks = m->hello->lazy_acks;
    c->batch_events = m->hello->batch_events;
    c->service = m->hello->service ? m->hello->service : "";
    c->resumable = m->hello->resumable;
    c->resume_token = m->hello->resume_token.data;
    c->resume_token_len = m->hello->resume_token.len;
    if (m->hello->n_resume_sockets) {
      size_t n = m->hello->n_resume_sockets;
      ncd_resume_socket *r = n <= SIZE_MAX / sizeof *r ? arena_alloc(NULL, n * sizeof *r) : NULL;
      if (!r) return NCD_ENOMEM;
      resume_flat = r;
      for (size_t i = 0; i < n; i++) {
        const Netcore__V1__ResumeSocket *rs = m->hello->resume_sockets[i];
        r[i] = (ncd_resume_socket){.socket_id = rs->socket_id,
                                   .bytes_received = rs->bytes_received,
                                   .bytes_credited = rs->bytes_credited,
                                   .last_seq = rs->last_seq,
                                   .bytes_acked = rs->bytes_acked,
                                   .writes_acked = rs->writes_acked,
                                   .saw_end = rs->saw_end};
      }
      c->resume = r;
      c->nresume = n;
    }
    break;
  case NETCORE__V1__COMMAND__COMMAND_BYE:
    c->kind = NCD_CMD_BYE, c->name = "bye";
    c->handoff = m->bye && m->bye->handoff;
    break;
  case NETCORE__V1__COMMAND__COMMAND_PING:
    c->kind = NCD_CMD_PING, c->name = "ping";
    c->nonce = m->ping->nonce;
    break;
  case NETCORE__V1__COMMAND__COMMAND_LISTEN: {
    Netcore__V1__Listen *l = m->listen;
    c->kind = NCD_CMD_LISTEN, c->name = "listen";
    c->id = l->server_id;
    if (l->endpoint_case == NETCORE__V1__LISTEN__ENDPOINT_FD) {
      c->ep.kind = NCD_EP_FD;
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
    break;
  }
  case NETCORE__V1__COMMAND__COMMAND_SERVER_PAUSE:
    c->kind = NCD_CMD_SERVER_PAUSE, c->name = "server_pause";
    c->id = m->server_pause->server_id;
    c->msecs = m->server_pause->msecs;
    break;
  case NETCORE__V1__COMMAND__COMMAND_SERVER_CLOSE:
    c->kind = NCD_CMD_SERVER_CLOSE, c->name = "server_close";
    c->id = m->server_close->server_id;
    break;
  case NETCORE__V1__COMMAND__COMMAND_SERVER_SET_MAX_CONNECTIONS:
    c->kind = NCD_CMD_SERVER_SET_MAX, c->name = "server_set_max_connections";
    c->id = m->server_set_max_connections->server_id;
    c->max_connections = m->server_set_max_connections->max_connections;
    break;
  case NETCORE__V1__COMMAND__COMMAND_CONNECT: {
    Netcore__V1__Connect *k = m->connect;
    c->kind = NCD_CMD_CONNECT, c->name = "connect";
    c->id = k->socket_id;
    take_endpoint(&c->ep, k->endpoint_case == NETCORE__V1__CONNECT__ENDPOINT_TCP, k->tcp,
                  k->endpoint_case == NETCORE__V1__CONNECT__ENDPOINT_PATH ? k->path : NULL);
    if (k->endpoint_case == NETCORE__V1__CONNECT__ENDPOINT_PATH_BYTES)
      take_path_bytes(&c->ep, &k->path_bytes);
    c->allow_half_open = k->allow_half_open;
    break;
  }
  case NETCORE__V1__COMMAND__COMMAND_WRITE:
    c->kind = NCD_CMD_WRITE, c->name = "write";
    c->id = m->write->socket_id;
    c->fd_socket_id = m->write->fd_socket_id;
    c->ack_now = m->write->ack_now;
    break;
  case NETCORE__V1__COMMAND__COMMAND_END:
    c->kind = NCD_CMD_END, c->name = "end";
    c->id = m->end->socket_id;
    c->ack_now = m->end->ack_now;
    break;
  case NETCORE__V1__COMMAND__COMMAND_DESTROY:
    c->kind = NCD_CMD_DESTROY, c->name = "destroy";
    c->id = m->destroy->socket_id;
    break;
  case NETCORE__V1__COMMAND__COMMAND_PAUSE:
    c->kind = NCD_CMD_PAUSE, c->name = "pause";
    c->id = m->pause->socket_id;
    break;
  case NETCORE__V1__COMMAND__COMMAND_RESUME:
    c->kind = NCD_CMD_RESUME, c->name = "resume";
    c->id = m->resume->socket_id;
    break;
  case NETCORE__V1__COMMAND__COMMAND_CREDIT:
    c->kind = NCD_CMD_CREDIT, c->name = "credit";
    c->id = m->credit->socket_id;
    c->bytes = m->credit->bytes;
    break;
  case NETCORE__V1__COMMAND__COMMAND_SET_TIMEOUT:
    c->kind = NCD_CMD_SET_TIMEOUT, c->name = "set_timeout";
    c->id = m->set_timeout->socket_id;
    c->msecs = m->set_timeout->msecs;
    break;
  case NETCORE__V1__COMMAND__COMMAND_SET_NO_DELAY:
    c->kind = NCD_CMD_SET_NO_DELAY, c->name = "set_no_delay";
    c->id = m->set_no_delay->socket_id;
    c->enable = m->set_no_delay->enable;
    break;
  case NETCORE__V1__COMMAND__COMMAND_SET_KEEP_ALIVE:
    c->kind = NCD_CMD_SET_KEEP_ALIVE, c->name = "set_keep_alive";
    c->id = m->set_keep_alive->socket_id;
    c->enable = m->set_keep_alive->enable;
    c->initial_delay_ms = m->set_keep_alive->initial_delay_ms;
    break;
  case NETCORE__V1__COMMAND__COMMAND_STATS:
    c->kind = NCD_CMD_STATS, c->name = "stats";
    break;
  case NETCORE__V1__COMMAND__COMMAND_BATCH:
    c->kind = NCD_CMD_BATCH, c->name = "batch";
    c->batch_count = m->batch->n_commands;
    break;
  default:
    return NCD_ERR_UNKNOWN_COMMAND;
  }
  return 0;
}

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
    if (f->label == PROTOBUF_C_LABEL_REPEATED) continue; /* commands have none */
    if (f->type == PROTOBUF_C_TYPE_STRING) {
      const char *s = *(char *const *)member;
      if (s && !nc__utf8_valid(s, strlen(s))) {
        snprintf(where, cap, "%s", f->name);
        return 1;
      }
    } else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
      const ProtobufCMessage *sub = *(ProtobufCMessage *const *)member;
      size_t n = (size_t)snprintf(where, cap, "%s.", f->name);
      if (sub && n < cap && bad_string(sub, where + n, cap - n)) return 1;
    }
  }
  return 0;
}

int ncd_wire_cmd_check(const void *data, size_t len, size_t max_batch) {
  size_t count = 0, nested_at = 0;
  int rc = nc__pb_walk_batches(data, len, NC__BATCH_FIELD, &count, &nested_at);
  if (rc < 0) return NCD_EPROTO;
  if (rc > 0) {
    ncd_set_errmsg("command %zu of the batch holds batches inside a batch: batches never nest",
                   nested_at - 1);
    return NCD_ERR_INVALID_ARG_VALUE;
  }
  if (count > max_batch) {
    ncd_set_errmsg("a batch of %zu commands is over the limit of %zu", count, max_batch);
    return NCD_EMSGSIZE;
  }
  return 0;
}

static char wire_error[256];

const char *ncd_wire_error(void) { return wire_error; }

/* PROTOCOL.md 1.2: strings must be valid UTF-8, and a path given as bytes
 * must still be a C string. Returns 0 or NCD_ERR_INVALID_ARG_VALUE with the
 * field named in wire_error. */
static int check_strings(const Netcore__V1__Command *m, const ncd_cmd *c) {
  char where[128];
  if (bad_string(&m->base, where, sizeof where)) {
    int is_path = strlen(where) >= 5 && strcmp(where + strlen(where) - 5, ".path") == 0;
    snprintf(wire_error, sizeof wire_error, "%s is not valid UTF-8%s", where,
                   is_path ? ": send a path that is not UTF-8 as path_bytes" : "");
    return NCD_ERR_INVALID_ARG_VALUE;
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
    snprintf(wire_error, sizeof wire_error,
             "%s.path_bytes holds a NUL byte: a UNIX socket path cannot", c->name);
    return NCD_ERR_INVALID_ARG_VALUE;
  }
  return 0;
}

/* One varint at *p (below end); 0 when malformed. */
static int varint_at(const uint8_t **p, const uint8_t *end, uint64_t *v) {
  *v = 0;
  for (int shift = 0; shift < 64 && *p < end; shift += 7) {
    uint8_t b = *(*p)++;
    *v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) return 1;
  }
  return 0;
}

/* The first length-delimited field `want` of the message [p, end): its
 * bytes in *at, *n. Skips other fields; 0 when absent or malformed. */
static int find_bytes_field(const uint8_t *p, const uint8_t *end, uint64_t want,
                            const uint8_t **at, uint64_t *n) {
  while (p < end) {
    uint64_t key, v;
    if (!varint_at(&p, end, &key)) return 0;
    switch (key & 7) {
    case 0: if (!varint_at(&p, end, &v)) return 0; break;
    case 1: if (end - p < 8) return 0; p += 8; break;
    case 5: if (end - p < 4) return 0; p += 4; break;
    case 2:
      if (!varint_at(&p, end, &v) || v > (uint64_t)(end - p)) return 0;
      if (key >> 3 == want) {
        *at = p;
        *n = v;
        return 1;
      }
      p += v;
      break;
    default: return 0;
    }
  }
  return 0;
}

int ncd_wire_is_resume_hello(const void *data, size_t len) {
  const uint8_t *p = data, *hello, *token;
  uint64_t n, tn;
  /* Command.hello = 10, Hello.resume_token = 21. */
  return find_bytes_field(p, p + len, 10, &hello, &n) &&
         find_bytes_field(hello, hello + n, 21, &token, &tn) && tn > 0;
}

int ncd_wire_cmd_unpack(const void *data, size_t len, ncd_cmd *c) {
  ncd_wire_cmd_release();
  memset(c, 0, sizeof *c);
  c->name = "unknown";
  current = netcore__v1__command__unpack(&arena_allocator, len, data);
  if (!current) return NCD_EPROTO;
  int rc = convert(current, c);
  return rc ? rc : check_strings(current, c);
}

int ncd_wire_batch_cmd(size_t i, ncd_cmd *c) {
  if (!current || current->command_case != NETCORE__V1__COMMAND__COMMAND_BATCH ||
      i >= current->batch->n_commands) {
    memset(c, 0, sizeof *c);
    c->name = "unknown";
    return NCD_ERR_UNKNOWN_COMMAND;
  }
  int rc = convert(current->batch->commands[i], c);
  return rc ? rc : check_strings(current->batch->commands[i], c);
}

int ncd_wire_payload_rule(ncd_cmd_kind kind) {
  if (kind == NCD_CMD_WRITE) return NCD_PAYLOAD_REQUIRED;
  if (kind == NCD_CMD_END) return NCD_PAYLOAD_OPTIONAL;
  return NCD_PAYLOAD_NEVER;
}

/* Room for repaired copies of an event's strings that are not valid UTF-8
 * (rare: a UNIX path, or a message quoting one). Enough for an Error with a
 * full ncd_set_errmsg message of invalid bytes; anything longer is cut. */
#define REPAIR_ROOM 2048

/* An Event and the sub-messages it points to, all on the caller's stack. */
typedef struct event_parts {
  size_t repaired; /* bytes of repair in use */
  char repair[REPAIR_ROOM];
  Netcore__V1__Event e;
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
  } u;
} event_parts;



/* The one sanitizer of everything netcore packs into a string field
 * (PROTOCOL.md 1.2): s itself when it is valid UTF-8, else a copy in p with
 * each invalid sequence replaced by U+FFFD. NULL gives "". */
static char *text(event_parts *p, const char *s) {
  if (!s) return "";
  size_t n = strlen(s);
  if (nc__utf8_valid(s, n)) return (char *)s;
  if (p->repaired >= sizeof p->repair) return "";
  char *out = p->repair + p->repaired;
  p->repaired += nc__utf8_repair(s, n, out, sizeof p->repair - p->repaired) + 1;
  return out;
}

/* Wire form of an address, in buf; a UNIX path that is not UTF-8 goes as
 * address_bytes with its display form in address. a lives on the caller's stack. */
static Netcore__V1__Address *address(event_parts *p, const ncd_addr *a,
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
static int fill_stats(event_parts *p, const ncd_mset *set) {
  size_t need = set->nfam * (sizeof(Netcore__V1__MetricFamily) + sizeof(void *)) +
                set->nsmp * (sizeof(Netcore__V1__MetricSample) + sizeof(void *)) +
                set->nlab * (sizeof(Netcore__V1__MetricLabel) + sizeof(void *));
  size_t names = 0;
  for (size_t i = 0; i < set->nsmp; i++) names += strlen(set->smp[i].suffix) + 1;
  for (size_t i = 0; i < set->nfam; i++)
    names += (strlen(set->fam[i].name) + 1) * set->fam[i].nsamples;
  char *mem = malloc(need + names + 1);
  if (!mem) return -1;
  p->heap = mem;
  Netcore__V1__MetricFamily *fams = (void *)mem;
  Netcore__V1__MetricSample *smps = (void *)(fams + set->nfam);
  Netcore__V1__MetricLabel *labs = (void *)(smps + set->nsmp);
  Netcore__V1__MetricFamily **famp = (void *)(labs + set->nlab);
  Netcore__V1__MetricSample **smpp = (void *)(famp + set->nfam);
  Netcore__V1__MetricLabel **labp = (void *)(smpp + set->nsmp);
  char *text_at = (char *)(labp + set->nlab);
  for (size_t i = 0; i < set->nlab; i++) {
    netcore__v1__metric_label__init(&labs[i]);
    labs[i].name = (char *)set->lab[i].name;
    labs[i].value = text(p, ncd_mset_text(set, set->lab[i].value));
    labp[i] = &labs[i];
  }
  for (size_t f = 0; f < set->nfam; f++) {
    const ncd_mfamily *mf = &set->fam[f];
    netcore__v1__metric_family__init(&fams[f]);
    fams[f].name = (char *)mf->name;
    fams[f].help = (char *)mf->help;
    fams[f].type = (char *)mf->type;
    fams[f].n_samples = mf->nsamples;
    fams[f].samples = smpp + mf->first_sample;
    famp[f] = &fams[f];
    for (size_t i = mf->first_sample; i < mf->first_sample + mf->nsamples; i++) {
      const ncd_msample *ms = &set->smp[i];
      netcore__v1__metric_sample__init(&smps[i]);
      smps[i].name = text_at;
      text_at += sprintf(text_at, "%s%s", mf->name, ms->suffix) + 1;
      smps[i].n_labels = ms->nlabels;
      smps[i].labels = labp + ms->first_label;
      smps[i].value = ms->value;
      smpp[i] = &smps[i];
    }
  }
  netcore__v1__stats__init(&p->u.stats);
  p->u.stats.instance_id = text(p, set->instance_id);
  p->u.stats.uptime_ms = set->uptime_ms;
  p->u.stats.n_families = set->nfam;
  p->u.stats.families = famp;
  return 0;
}

/* Fills p->e (and what it points to) from ev. Returns 0, or -1 when out of
 * memory. */
static int fill_event(const ncd_event *ev, event_parts *p) {
  Netcore__V1__Event e = NETCORE__V1__EVENT__INIT;
  p->repaired = 0;
  p->heap = NULL;
  e.seq = ev->seq;
  if (ev->has_ack) {
    netcore__v1__write_ack__init(&p->piggyback);
    p->piggyback.socket_id = ev->socket_id;
    p->piggyback.writes = ev->ack_writes;
    p->piggyback.bytes = ev->ack_bytes;
    p->piggyback.bytes_written = ev->ack_bytes_written;
    p->piggyback.queued_bytes = ev->ack_queued_bytes;
    e.ack = &p->piggyback;
  }
  switch (ev->kind) {
  case NCD_EV_WELCOME: {
    const ncd_welcome *w = ev->welcome;
    netcore__v1__welcome__init(&p->u.welcome);
    p->u.welcome.version = NCD_PROTOCOL_VERSION;
    p->u.welcome.instance_id = text(p, w->instance_id);
    p->u.welcome.id_prefix = w->id_prefix;
    p->u.welcome.credit_window = w->credit_window;
    p->u.welcome.lease_ms = w->lease_ms;
    p->u.welcome.max_frame = w->max_frame;
    p->u.welcome.max_write_queue = w->max_write_queue;
    p->u.welcome.server_version = text(p, w->server_version);
    p->u.welcome.session_token.data = (uint8_t *)w->session_token;
    p->u.welcome.session_token.len = w->session_token_len;
    p->u.welcome.resumed = w->resumed;
    if (w->nresumed) {
      /* One block: the pointers, then the messages (freed after packing). */
      size_t n = w->nresumed;
      Netcore__V1__ResumedSocket **ptrs = malloc(n * (sizeof *ptrs + sizeof **ptrs));
      if (!ptrs) return -1;
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
    }
    e.event_case = NETCORE__V1__EVENT__EVENT_WELCOME, e.welcome = &p->u.welcome;
    break;
  }
  case NCD_EV_ERROR:
    netcore__v1__error__init(&p->u.error);
    p->u.error.code = text(p, ev->code);
    p->u.error.message = text(p, ev->message);
    p->u.error.ref = ev->ref;
    p->u.error.command = text(p, ev->command);
    p->u.error.socket_id = ev->socket_id;
    p->u.error.server_id = ev->server_id;
    e.event_case = NETCORE__V1__EVENT__EVENT_ERROR, e.error = &p->u.error;
    break;
  case NCD_EV_PONG:
    netcore__v1__pong__init(&p->u.pong);
    p->u.pong.nonce = ev->nonce;
    e.event_case = NETCORE__V1__EVENT__EVENT_PONG, e.pong = &p->u.pong;
    break;
  case NCD_EV_LISTENING:
    netcore__v1__listening__init(&p->u.listening);
    p->u.listening.server_id = ev->server_id;
    p->u.listening.address = address(p, ev->local, &p->a1);
    e.event_case = NETCORE__V1__EVENT__EVENT_LISTENING, e.listening = &p->u.listening;
    break;
  case NCD_EV_SERVER_ERROR:
    netcore__v1__server_error__init(&p->u.server_error);
    p->u.server_error.server_id = ev->server_id;
    p->u.server_error.code = text(p, ev->code);
    p->u.server_error.message = text(p, ev->message);
    e.event_case = NETCORE__V1__EVENT__EVENT_SERVER_ERROR, e.server_error = &p->u.server_error;
    break;
  case NCD_EV_SERVER_CLOSED:
    netcore__v1__server_closed__init(&p->u.server_closed);
    p->u.server_closed.server_id = ev->server_id;
    e.event_case = NETCORE__V1__EVENT__EVENT_SERVER_CLOSED, e.server_closed = &p->u.server_closed;
    break;
  case NCD_EV_CONNECTION:
    netcore__v1__connection__init(&p->u.connection);
    p->u.connection.server_id = ev->server_id;
    p->u.connection.socket_id = ev->socket_id;
    p->u.connection.local = address(p, ev->local, &p->a1);
    p->u.connection.remote = address(p, ev->remote, &p->a2);
    p->u.connection.allow_half_open = ev->flag;
    p->u.connection.server_connections = ev->count;
    e.event_case = NETCORE__V1__EVENT__EVENT_CONNECTION, e.connection = &p->u.connection;
    break;
  case NCD_EV_CONNECTED:
    netcore__v1__connected__init(&p->u.connected);
    p->u.connected.socket_id = ev->socket_id;
    p->u.connected.local = address(p, ev->local, &p->a1);
    p->u.connected.remote = address(p, ev->remote, &p->a2);
    e.event_case = NETCORE__V1__EVENT__EVENT_CONNECTED, e.connected = &p->u.connected;
    break;
  case NCD_EV_DATA:
    netcore__v1__data__init(&p->u.data);
    p->u.data.socket_id = ev->socket_id;
    e.event_case = NETCORE__V1__EVENT__EVENT_DATA, e.data = &p->u.data;
    break;
  case NCD_EV_ENDED:
    netcore__v1__ended__init(&p->u.ended);
    p->u.ended.socket_id = ev->socket_id;
    e.event_case = NETCORE__V1__EVENT__EVENT_ENDED, e.ended = &p->u.ended;
    break;
  case NCD_EV_WRITE_ACK:
    netcore__v1__write_ack__init(&p->u.write_ack);
    p->u.write_ack.socket_id = ev->socket_id;
    p->u.write_ack.writes = ev->count;
    p->u.write_ack.bytes = ev->bytes;
    p->u.write_ack.bytes_written = ev->bytes_written;
    p->u.write_ack.queued_bytes = ev->queued_bytes;
    e.event_case = NETCORE__V1__EVENT__EVENT_WRITE_ACK, e.write_ack = &p->u.write_ack;
    break;
  case NCD_EV_TIMEOUT:
    netcore__v1__timeout__init(&p->u.timeout);
    p->u.timeout.socket_id = ev->socket_id;
    e.event_case = NETCORE__V1__EVENT__EVENT_TIMEOUT, e.timeout = &p->u.timeout;
    break;
  case NCD_EV_SOCKET_ERROR:
    netcore__v1__socket_error__init(&p->u.socket_error);
    p->u.socket_error.socket_id = ev->socket_id;
    p->u.socket_error.code = text(p, ev->code);
    p->u.socket_error.message = text(p, ev->message);
    e.event_case = NETCORE__V1__EVENT__EVENT_SOCKET_ERROR, e.socket_error = &p->u.socket_error;
    break;
  case NCD_EV_CLOSED:
    netcore__v1__closed__init(&p->u.closed);
    p->u.closed.socket_id = ev->socket_id;
    p->u.closed.had_error = ev->flag;
    p->u.closed.bytes_read = ev->bytes_read;
    p->u.closed.bytes_written = ev->bytes_written;
    e.event_case = NETCORE__V1__EVENT__EVENT_CLOSED, e.closed = &p->u.closed;
    break;
  case NCD_EV_FD:
    netcore__v1__fd__init(&p->u.fd);
    p->u.fd.socket_id = ev->socket_id;
    p->u.fd.new_socket_id = ev->new_socket_id;
    p->u.fd.local = address(p, ev->local, &p->a1);
    p->u.fd.remote = address(p, ev->remote, &p->a2);
    e.event_case = NETCORE__V1__EVENT__EVENT_FD, e.fd = &p->u.fd;
    break;
  case NCD_EV_SHUTDOWN:
    netcore__v1__shutdown__init(&p->u.shutdown);
    p->u.shutdown.reason = text(p, ev->reason);
    e.event_case = NETCORE__V1__EVENT__EVENT_SHUTDOWN, e.shutdown = &p->u.shutdown;
    break;
  case NCD_EV_ADOPTED: {
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
    e.event_case = NETCORE__V1__EVENT__EVENT_ADOPTED, e.adopted = a;
    break;
  }
  case NCD_EV_STATS:
    if (fill_stats(p, ev->stats) != 0) return -1;
    e.event_case = NETCORE__V1__EVENT__EVENT_STATS, e.stats = &p->u.stats;
    break;
  }
  p->e = e;
  return 0;
}

int ncd_wire_event_pack(const ncd_event *ev, ncd_tally *tally, zmq_msg_t *msg) {
  event_parts p;
  if (fill_event(ev, &p) != 0) {
    zmq_msg_init(msg);
    return NCD_ENOMEM;
  }
  size_t len = netcore__v1__event__get_packed_size(&p.e);
  void *at = ncd_tally_frame(tally, msg, len);
  if (at) netcore__v1__event__pack(&p.e, at);
  free(p.heap);
  return at ? 0 : NCD_ENOMEM;
}

int ncd_wire_batch_append(nc__msgbatch_t *batch, const ncd_event *ev) {
  event_parts p;
  if (fill_event(ev, &p) != 0) return NCD_ENOMEM;
  size_t len = netcore__v1__event__get_packed_size(&p.e);
  unsigned char *at = nc__msgbatch_entry(batch, len);
  if (at) netcore__v1__event__pack(&p.e, at);
  free(p.heap);
  return at ? 0 : NCD_ENOMEM;
}
