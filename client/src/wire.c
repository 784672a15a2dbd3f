/* wire.c: the protobuf glue, and the only file of libnc that includes the
 * generated netcore.pb-c.h. It turns an nc__cmd_t into a packed Command and a
 * packed Event into an nc__event_t, so the rest of libnc speaks plain C.
 * Unpacking uses a per-loop bump arena: no malloc per event on the hot path.
 * Called only from the loop's thread. */
#include <stdlib.h>
#include <string.h>

#include "nc_int.h"
#include "pbwalk.h"
#include "netcore.pb-c.h"
#include "utf8.h"

/* ------------------------------------------------------------------ arena */

typedef struct overflow_s {
  struct overflow_s *next;
  max_align_t align[];
} overflow_t;

static void *arena_alloc(void *data, size_t size) {
  nc__arena_t *a = data;
  size_t need = (size + 15) & ~(size_t)15;
  if (need <= sizeof(a->block) - a->used) {
    void *p = a->block + a->used;
    a->used += need;
    return p;
  }
  overflow_t *o = malloc(sizeof(*o) + size);
  if (o == NULL) return NULL;
  o->next = a->overflow;
  a->overflow = o;
  return o->align;
}

static void arena_free(void *data, void *p) {
  (void)data;
  (void)p; /* everything goes at the next reset */
}

void nc__arena_reset(nc__arena_t *a) {
  overflow_t *o = a->overflow;
  while (o != NULL) {
    overflow_t *next = o->next;
    free(o);
    o = next;
  }
  a->overflow = NULL;
  a->used = 0;
  a->batch = NULL;
}

/* ---------------------------------------------------------------- packing */

static char *str(const char *s) { return (char *)(s ? s : ""); }

/* A UNIX path goes in the string field only when it is valid UTF-8, else as
 * path_bytes (PROTOCOL.md 1.2). Returns whether it is the string. */
static int path_is_text(const char *path, ProtobufCBinaryData *bytes) {
  const char *p = str(path);
  if (nc__utf8_valid(p, strlen(p))) return 1;
  bytes->data = (uint8_t *)p;
  bytes->len = strlen(p);
  return 0;
}

/* Packs c into buf (cap bytes) or, when batch is not NULL, as the next entry
 * of batch; see nc__wire_pack and nc__wire_pack_batched for the results. */
static int pack_command(const nc__cmd_t *c, uint8_t *buf, size_t cap, nc__msgbatch_t *batch) {
  Netcore__V1__Command cmd = NETCORE__V1__COMMAND__INIT;
  Netcore__V1__Hello hello = NETCORE__V1__HELLO__INIT;
  Netcore__V1__Bye bye = NETCORE__V1__BYE__INIT;
  Netcore__V1__Ping ping = NETCORE__V1__PING__INIT;
  Netcore__V1__Listen listen = NETCORE__V1__LISTEN__INIT;
  Netcore__V1__ServerPause spause = NETCORE__V1__SERVER_PAUSE__INIT;
  Netcore__V1__ServerClose sclose = NETCORE__V1__SERVER_CLOSE__INIT;
  Netcore__V1__ServerSetMaxConnections smax = NETCORE__V1__SERVER_SET_MAX_CONNECTIONS__INIT;
  Netcore__V1__Connect connect = NETCORE__V1__CONNECT__INIT;
  Netcore__V1__TcpEndpoint tcp = NETCORE__V1__TCP_ENDPOINT__INIT;
  Netcore__V1__Write write = NETCORE__V1__WRITE__INIT;
  Netcore__V1__End end = NETCORE__V1__END__INIT;
  Netcore__V1__Destroy destroy = NETCORE__V1__DESTROY__INIT;
  Netcore__V1__Pause pause = NETCORE__V1__PAUSE__INIT;
  Netcore__V1__Resume resume = NETCORE__V1__RESUME__INIT;
  Netcore__V1__Credit credit = NETCORE__V1__CREDIT__INIT;
  Netcore__V1__SetTimeout stimeout = NETCORE__V1__SET_TIMEOUT__INIT;
  Netcore__V1__SetNoDelay snodelay = NETCORE__V1__SET_NO_DELAY__INIT;
  Netcore__V1__SetKeepAlive skeep = NETCORE__V1__SET_KEEP_ALIVE__INIT;
  Netcore__V1__StatsQuery stats = NETCORE__V1__STATS_QUERY__INIT;
  Netcore__V1__ResumeSocket *rsv = NULL, **rsp = NULL; /* Hello.resume_sockets, freed below */

  tcp.host = str(c->host);
  tcp.port = c->port;
  switch (c->type) {
  case NC__CMD_HELLO:
    hello.version = 1;
    hello.name = str(c->name);
    hello.credit_window = c->u32;
    hello.lease_ms = c->u32b;
    hello.lazy_acks = c->flag != 0;
    hello.batch_events = c->flag2 != 0;
    hello.service = str(c->service);
    hello.resumable = c->resumable != 0;
    if (c->token_len) {
      hello.resume_token.data = (uint8_t *)c->token;
      hello.resume_token.len = c->token_len;
      if (c->nresume) {
        rsv = malloc(c->nresume * (sizeof *rsv + sizeof *rsp));
        if (rsv == NULL) return NC_ENOMEM;
        rsp = (Netcore__V1__ResumeSocket **)(rsv + c->nresume);
        for (size_t i = 0; i < c->nresume; i++) {
          netcore__v1__resume_socket__init(&rsv[i]);
          rsv[i].socket_id = c->resume[i].socket_id;
          rsv[i].bytes_received = c->resume[i].bytes_received;
          rsv[i].bytes_credited = c->resume[i].bytes_credited;
          rsv[i].writes_acked = c->resume[i].writes_acked;
          rsv[i].bytes_acked = c->resume[i].bytes_acked;
          rsv[i].saw_end = c->resume[i].saw_end != 0;
          rsv[i].last_seq = c->resume[i].last_seq;
          rsp[i] = &rsv[i];
        }
        hello.n_resume_sockets = c->nresume;
        hello.resume_sockets = rsp;
      }
    }
    cmd.command_case = NETCORE__V1__COMMAND__COMMAND_HELLO;
    cmd.hello = &hello;
    break;
  case NC__CMD_BYE:
    bye.handoff = c->flag != 0;
    cmd.command_case = NETCORE__V1__COMMAND__COMMAND_BYE;
    cmd.bye = &bye;
    break;
  case NC__CMD_STATS:
    cmd.command_case = NETCORE__V1__COMMAND__COMMAND_STATS;
    cmd.stats = &stats;
    break;
  case NC__CMD_PING:
    ping.nonce = c->id2;
    cmd.command_case = NETCORE__V1__COMMAND__COMMAND_PING;
    cmd.ping = &ping;
    break;
  case NC__CMD_LISTEN:
    listen.server_id = c->id;
    listen.allow_half_open = c->flag != 0;
    listen.backlog = c->backlog;
    listen.max_connections = c->u32;
    listen.group = str(c->group);
    if (c->ep == NC__EP_TCP) {
      listen.endpoint_case = NETCORE__V1__LISTEN__ENDPOINT_TCP;
      listen.tcp = &tcp;
    } else if (c->ep == NC__EP_PATH && path_is_text(c->path, &listen.path_bytes)) {
      listen.endpoint_case = NETCORE__V1__LISTEN__ENDPOINT_PATH;
      listen.path = str(c->path);
    } else if (c->ep == NC__EP_PATH) {
      listen.endpoint_case = NETCORE__V1__LISTEN__ENDPOINT_PATH_BYTES;
    } else {
      listen.endpoint_case = NETCORE__V1__LISTEN__ENDPOINT_FD;
      listen.fd = c->fd;
    }
    cmd.command_case = NETCORE__V1__COMMAND__COMMAND_LISTEN;
    cmd.listen = &listen;
    break;
  case NC__CMD_SERVER_PAUSE:
    spause.server_id = c->id;
    spause.msecs = c->u32;
    cmd.command_case = NETCORE__V1__COMMAND__COMMAND_SERVER_PAUSE;
    cmd.server_pause = &spause;
    break;
  case NC__CMD_SERVER_CLOSE:
    sclose.server_id = c->id;
    cmd.command_case = NETCORE__V1__COMMAND__COMMAND_SERVER_CLOSE;
    cmd.server_close = &sclose;
    break;
  case NC__CMD_SERVER_SET_MAX:
    smax.server_id = c->id;
    smax.max_connections = c->u32;
    cmd.command_case = NETCORE__V1__COMMAND__COMMAND_SERVER_SET_MAX_CONNECTIONS;
    cmd.server_set_max_connections = &smax;
    break;
  case NC__CMD_CONNECT:
    connect.socket_id = c->id;
    connect.allow_half_open = c->flag != 0;
    if (c->ep == NC__EP_TCP) {
      connect.endpoint_case = NETCORE__V1__CONNECT__ENDPOINT_TCP;
      connect.tcp = &tcp;
    } else if (path_is_text(c->path, &connect.path_bytes)) {
      connect.endpoint_case = NETCORE__V1__CONNECT__ENDPOINT_PATH;
      connect.path = str(c->path);
    } else {
      connect.endpoint_case = NETCORE__V1__CONNECT__ENDPOINT_PATH_BYTES;
    }
    cmd.command_case = NETCORE__V1__COMMAND__COMMAND_CONNECT;
    cmd.connect = &connect;
    break;
  case NC__CMD_WRITE:
    write.socket_id = c->id;
    write.fd_socket_id = c->id2;
    write.ack_now = c->flag != 0;
    cmd.command_case = NETCORE__V1__COMMAND__COMMAND_WRITE;
    cmd.write = &write;
    break;
  case NC__CMD_END:
    end.socket_id = c->id;
    end.ack_now = c->flag != 0;
    cmd.command_case = NETCORE__V1__COMMAND__COMMAND_END;
    cmd.end = &end;
    break;
  case NC__CMD_DESTROY:
    destroy.socket_id = c->id;
    cmd.command_case = NETCORE__V1__COMMAND__COMMAND_DESTROY;
    cmd.destroy = &destroy;
    break;
  case NC__CMD_PAUSE:
    pause.socket_id = c->id;
    cmd.command_case = NETCORE__V1__COMMAND__COMMAND_PAUSE;
    cmd.pause = &pause;
    break;
  case NC__CMD_RESUME:
    resume.socket_id = c->id;
    cmd.command_case = NETCORE__V1__COMMAND__COMMAND_RESUME;
    cmd.resume = &resume;
    break;
  case NC__CMD_CREDIT:
    credit.socket_id = c->id;
    credit.bytes = c->u32;
    cmd.command_case = NETCORE__V1__COMMAND__COMMAND_CREDIT;
    cmd.credit = &credit;
    break;
  case NC__CMD_SET_TIMEOUT:
    stimeout.socket_id = c->id;
    stimeout.msecs = c->u32;
    cmd.command_case = NETCORE__V1__COMMAND__COMMAND_SET_TIMEOUT;
    cmd.set_timeout = &stimeout;
    break;
  case NC__CMD_SET_NO_DELAY:
    snodelay.socket_id = c->id;
    snodelay.enable = c->flag != 0;
    cmd.command_case = NETCORE__V1__COMMAND__COMMAND_SET_NO_DELAY;
    cmd.set_no_delay = &snodelay;
    break;
  case NC__CMD_SET_KEEP_ALIVE:
    skeep.socket_id = c->id;
    skeep.enable = c->flag != 0;
    skeep.initial_delay_ms = c->u32b;
    cmd.command_case = NETCORE__V1__COMMAND__COMMAND_SET_KEEP_ALIVE;
    cmd.set_keep_alive = &skeep;
    break;
  default:
    return NC_EINVAL;
  }
  size_t n = netcore__v1__command__get_packed_size(&cmd);
  int rv = (int)n;
  if (n > (size_t)INT32_MAX) {
    rv = NC_EMSGSIZE;
  } else if (batch != NULL) {
    uint8_t *at = nc__msgbatch_entry(batch, n);
    if (at != NULL) netcore__v1__command__pack(&cmd, at);
    rv = at == NULL ? NC_ENOMEM : 0;
  } else if (n <= cap) {
    netcore__v1__command__pack(&cmd, buf);
  }
  free(rsv);
  return rv;
}

int nc__wire_pack(const nc__cmd_t *c, uint8_t *buf, size_t cap) {
  return pack_command(c, buf, cap, NULL);
}

/* -------------------------------------------------------------- unpacking */

static void addr(const Netcore__V1__Address *in, nc_address_t *out) {
  memset(out, 0, sizeof(*out));
  if (in == NULL) return;
  switch (in->family) {
  case NETCORE__V1__FAMILY__FAMILY_IPV4:
    out->family = NC_FAMILY_IPV4;
    break;
  case NETCORE__V1__FAMILY__FAMILY_IPV6:
    out->family = NC_FAMILY_IPV6;
    break;
  case NETCORE__V1__FAMILY__FAMILY_UNIX:
    out->family = NC_FAMILY_UNIX;
    break;
  default:
    out->family = NC_FAMILY_NONE;
    break;
  }
  /* address_bytes, when present, is the exact path; address only shows it. */
  const char *text = in->address_bytes.len > 0 ? (const char *)in->address_bytes.data : in->address;
  size_t n = in->address_bytes.len > 0 ? in->address_bytes.len : text ? strlen(text) : 0;
  if (n >= sizeof(out->address)) n = sizeof(out->address) - 1;
  if (n > 0) memcpy(out->address, text, n);
  out->port = (int)in->port;
}

int nc__wire_pack_batched(const nc__cmd_t *c, nc__msgbatch_t *batch) {
  return pack_command(c, NULL, 0, batch);
}

static void convert(const Netcore__V1__Event *e, nc__event_t *ev);

static const char *str_or_empty(const char *s) { return s ? s : ""; }

int nc__wire_unpack(const void *data, size_t len, nc__event_t *ev, nc__arena_t *arena) {
  ProtobufCAllocator alloc = {arena_alloc, arena_free, arena};
  nc__arena_reset(arena);
  memset(ev, 0, sizeof(*ev));
  ev->code = ev->message = ev->command = "";
  /* protobuf-c would recurse on nested batches without a limit (pbwalk.h). */
  size_t count, nested_at;
  if (nc__pb_walk_batches(data, len, NC__BATCH_FIELD, &count, &nested_at) != 0) return NC_EPROTO;
  Netcore__V1__Event *e = netcore__v1__event__unpack(&alloc, len, data);
  if (e == NULL) return NC_EPROTO;
  if (e->event_case == NETCORE__V1__EVENT__EVENT_BATCH) {
    ev->type = NC__EV_BATCH;
    ev->count = (uint32_t)e->batch->n_events;
    arena->batch = e->batch;
    return 0;
  }
  convert(e, ev);
  /* The unpacked message lives in the arena until the next reset. */
  return 0;
}

int nc__wire_batch_event(nc__arena_t *arena, size_t i, nc__event_t *ev) {
  const Netcore__V1__EventBatch *b = arena->batch;
  memset(ev, 0, sizeof(*ev));
  ev->code = ev->message = ev->command = "";
  if (b == NULL || i >= b->n_events) return NC_EPROTO;
  /* Batches do not nest (PROTOCOL.md 1.1): one inside is not understood. */
  if (b->events[i]->event_case == NETCORE__V1__EVENT__EVENT_BATCH) return 0;
  convert(b->events[i], ev);
  return 0;
}

void nc__wire_resumed(const nc__event_t *ev, size_t i, uint64_t *socket_id, uint64_t *writes) {
  const Netcore__V1__Welcome *w = ev->welcome;
  *socket_id = w->resumed_sockets[i]->socket_id;
  *writes = w->resumed_sockets[i]->writes;
}

static void convert(const Netcore__V1__Event *e, nc__event_t *ev) {
  ev->seq = e->seq;
  if (e->ack != NULL) {
    ev->has_ack = 1;
    ev->ack_writes = e->ack->writes;
    ev->ack_bytes = e->ack->bytes;
    ev->ack_bytes_written = e->ack->bytes_written;
  }
  switch (e->event_case) {
  case NETCORE__V1__EVENT__EVENT_WELCOME: {
    const Netcore__V1__Welcome *w = e->welcome;
    ev->type = NC__EV_WELCOME;
    ev->version = w->version;
    ev->instance_id = w->instance_id;
    ev->id_prefix = w->id_prefix;
    ev->credit_window = w->credit_window;
    ev->lease_ms = w->lease_ms;
    ev->max_frame = w->max_frame;
    ev->max_write_queue = w->max_write_queue;
    ev->server_version = w->server_version;
    ev->session_token = w->session_token.data;
    ev->session_token_len = w->session_token.len;
    ev->resumed = w->resumed;
    ev->nresumed = w->n_resumed_sockets;
    ev->welcome = w;
    break;
  }
  case NETCORE__V1__EVENT__EVENT_ERROR:
    ev->type = NC__EV_ERROR;
    ev->code = e->error->code;
    ev->message = e->error->message;
    ev->ref = e->error->ref;
    ev->command = e->error->command;
    ev->socket_id = e->error->socket_id;
    ev->server_id = e->error->server_id;
    break;
  case NETCORE__V1__EVENT__EVENT_PONG:
    ev->type = NC__EV_PONG;
    ev->nonce = e->pong->nonce;
    break;
  case NETCORE__V1__EVENT__EVENT_LISTENING:
    ev->type = NC__EV_LISTENING;
    ev->server_id = e->listening->server_id;
    addr(e->listening->address, &ev->local);
    break;
  case NETCORE__V1__EVENT__EVENT_SERVER_ERROR:
    ev->type = NC__EV_SERVER_ERROR;
    ev->server_id = e->server_error->server_id;
    ev->code = e->server_error->code;
    ev->message = e->server_error->message;
    break;
  case NETCORE__V1__EVENT__EVENT_SERVER_CLOSED:
    ev->type = NC__EV_SERVER_CLOSED;
    ev->server_id = e->server_closed->server_id;
    break;
  case NETCORE__V1__EVENT__EVENT_CONNECTION:
    ev->type = NC__EV_CONNECTION;
    ev->server_id = e->connection->server_id;
    ev->socket_id = e->connection->socket_id;
    addr(e->connection->local, &ev->local);
    addr(e->connection->remote, &ev->remote);
    ev->flag = e->connection->allow_half_open;
    ev->count = e->connection->server_connections;
    break;
  case NETCORE__V1__EVENT__EVENT_CONNECTED:
    ev->type = NC__EV_CONNECTED;
    ev->socket_id = e->connected->socket_id;
    addr(e->connected->local, &ev->local);
    addr(e->connected->remote, &ev->remote);
    break;
  case NETCORE__V1__EVENT__EVENT_DATA:
    ev->type = NC__EV_DATA;
    ev->socket_id = e->data->socket_id;
    break;
  case NETCORE__V1__EVENT__EVENT_ENDED:
    ev->type = NC__EV_ENDED;
    ev->socket_id = e->ended->socket_id;
    break;
  case NETCORE__V1__EVENT__EVENT_WRITE_ACK:
    ev->type = NC__EV_WRITE_ACK;
    ev->socket_id = e->write_ack->socket_id;
    ev->count = e->write_ack->writes;
    ev->bytes = e->write_ack->bytes;
    ev->bytes_written = e->write_ack->bytes_written;
    ev->queued_bytes = e->write_ack->queued_bytes;
    break;
  case NETCORE__V1__EVENT__EVENT_TIMEOUT:
    ev->type = NC__EV_TIMEOUT;
    ev->socket_id = e->timeout->socket_id;
    break;
  case NETCORE__V1__EVENT__EVENT_SOCKET_ERROR:
    ev->type = NC__EV_SOCKET_ERROR;
    ev->socket_id = e->socket_error->socket_id;
    ev->code = e->socket_error->code;
    ev->message = e->socket_error->message;
    break;
  case NETCORE__V1__EVENT__EVENT_CLOSED:
    ev->type = NC__EV_CLOSED;
    ev->socket_id = e->closed->socket_id;
    ev->flag = e->closed->had_error;
    ev->bytes_read = e->closed->bytes_read;
    ev->bytes_written = e->closed->bytes_written;
    break;
  case NETCORE__V1__EVENT__EVENT_FD:
    ev->type = NC__EV_FD;
    ev->socket_id = e->fd->socket_id;
    ev->new_socket_id = e->fd->new_socket_id;
    addr(e->fd->local, &ev->local);
    addr(e->fd->remote, &ev->remote);
    break;
  case NETCORE__V1__EVENT__EVENT_ADOPTED:
    ev->type = NC__EV_ADOPTED;
    ev->server_id = e->adopted->server_id;
    ev->socket_id = e->adopted->socket_id;
    addr(e->adopted->local, &ev->local);
    addr(e->adopted->remote, &ev->remote);
    ev->flag = e->adopted->allow_half_open;
    ev->count = e->adopted->server_connections;
    ev->bytes_read = e->adopted->bytes_read;
    ev->bytes_written = e->adopted->bytes_written;
    ev->queued_bytes = e->adopted->queued_bytes;
    ev->bytes = e->adopted->replay_bytes;
    ev->flag2 = e->adopted->write_ended;
    break;
  case NETCORE__V1__EVENT__EVENT_STATS:
    ev->type = NC__EV_STATS;
    ev->stats = e->stats;
    break;
  case NETCORE__V1__EVENT__EVENT_SHUTDOWN:
    ev->type = NC__EV_SHUTDOWN;
    ev->message = e->shutdown->reason;
    break;
  default:
    ev->type = NC__EV_NONE;
    break;
  }
  if (ev->code == NULL) ev->code = "";
  if (ev->message == NULL) ev->message = "";
  if (ev->command == NULL) ev->command = "";
}

int nc__wire_stats(const void *stats, nc_stats_t *out, void **mem) {
  const Netcore__V1__Stats *st = stats;
  size_t nsmp = 0, nlab = 0;
  for (size_t f = 0; f < st->n_families; f++) {
    nsmp += st->families[f]->n_samples;
    for (size_t i = 0; i < st->families[f]->n_samples; i++)
      nlab += st->families[f]->samples[i]->n_labels;
  }
  size_t size = st->n_families * sizeof(nc_stats_family_t) + nsmp * sizeof(nc_stats_sample_t) +
                nlab * sizeof(nc_stats_label_t);
  char *block = malloc(size ? size : 1);
  if (block == NULL) return NC_ENOMEM;
  nc_stats_family_t *fams = (nc_stats_family_t *)block;
  nc_stats_sample_t *smps = (nc_stats_sample_t *)(fams + st->n_families);
  nc_stats_label_t *labs = (nc_stats_label_t *)(smps + nsmp);
  for (size_t f = 0; f < st->n_families; f++) {
    const Netcore__V1__MetricFamily *mf = st->families[f];
    fams[f].name = str_or_empty(mf->name);
    fams[f].help = str_or_empty(mf->help);
    fams[f].type = str_or_empty(mf->type);
    fams[f].samples = smps;
    fams[f].nsamples = mf->n_samples;
    for (size_t i = 0; i < mf->n_samples; i++, smps++) {
      const Netcore__V1__MetricSample *ms = mf->samples[i];
      smps->name = str_or_empty(ms->name);
      smps->value = ms->value;
      smps->labels = labs;
      smps->nlabels = ms->n_labels;
      for (size_t k = 0; k < ms->n_labels; k++, labs++) {
        labs->name = str_or_empty(ms->labels[k]->name);
        labs->value = str_or_empty(ms->labels[k]->value);
      }
    }
  }
  out->instance_id = str_or_empty(st->instance_id);
  out->uptime_ms = st->uptime_ms;
  out->families = fams;
  out->nfamilies = st->n_families;
  *mem = block;
  return 0;
}
