/* socket.c: nc_socket_*, Node's net.Socket over netcore's socket commands.
 *
 * Writes: each Write/End gets a number (write_seq); WriteAck says how many
 * completed, in order, so a FIFO of (number, callback) gives the callbacks
 * and bufferSize is bytes sent minus bytes acknowledged. write() returns 0
 * at the high-water mark and 'drain' follows when bufferSize is back to 0.
 *
 * Reads: data consumed by the application (its 'data' callback returned) is
 * granted back to netcore as credit at once, in the same batch as the writes
 * it produced, so netcore knows exactly what was handled. pause()
 * sends Pause and stops granting; what is already on its way is queued here
 * (moved, not copied, in its ZeroMQ frame) and delivered after resume().
 *
 * Pipes: nc_socket_pipe() asks netcore to move the bytes itself (Pipe,
 * PROTOCOL.md 17) when nothing here consumes the source's data; until
 * netcore has the Pipe, Data still on its way is written to dst here as in
 * the library's own pipe, and netcore starts moving only once that is
 * credited. A late on_data, an encoding or unpipe() sends Unpipe; Unpiped
 * gives the counts back, and data after it flows through here again.
 *
 * Lifetime: a socket is freed right after its close callback, which only
 * ever runs from the loop (an event, the pending queue, or netcore's loss).
 * Loop thread only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nc_int.h"

#define DEFAULT_HWM 16384

/* ------------------------------------------------------------------ rings */

/* Doubles a full ring of `size`-byte entries (16 at first), oldest first at
 * index 0. The entries move as bytes: a zmq_msg_t may (libnc never keeps a
 * pointer into one). */
static int ring_grow(void **v, size_t *cap, size_t *head, size_t len, size_t size) {
  size_t ncap = *cap ? *cap * 2 : 16;
  char *nv = malloc(ncap * size);
  if (nv == NULL) return NC_ENOMEM;
  for (size_t i = 0; i < len; i++)
    memcpy(nv + i * size, (char *)*v + ((*head + i) % *cap) * size, size);
  free(*v);
  *v = nv;
  *cap = ncap;
  *head = 0;
  return 0;
}

static int wring_push(nc__wring_t *r, uint64_t seq, nc_write_cb cb, void *arg) {
  if (r->len == r->cap && ring_grow((void **)&r->v, &r->cap, &r->head, r->len, sizeof(*r->v)) != 0)
    return NC_ENOMEM;
  nc__wreq_t *w = &r->v[(r->head + r->len) % r->cap];
  w->seq = seq;
  w->cb = cb;
  w->arg = arg;
  r->len++;
  return 0;
}

static int wring_reserve(nc__wring_t *r) {
  if (r->len < r->cap) return 0;
  if (wring_push(r, 0, NULL, NULL) != 0) return NC_ENOMEM;
  r->len--;
  return 0;
}

static nc__wreq_t wring_pop(nc__wring_t *r) {
  nc__wreq_t w = r->v[r->head];
  r->head = (r->head + 1) % r->cap;
  r->len--;
  return w;
}

/* The write log (PROTOCOL.md 16.1): entries in seq order, oldest first. */
static int wlog_push(nc__wlog_t *r, uint64_t seq, uint64_t fd_id, int is_end, zmq_msg_t *msg) {
  if (r->len == r->cap && ring_grow((void **)&r->v, &r->cap, &r->head, r->len, sizeof(*r->v)) != 0)
    return NC_ENOMEM;
  nc__wlog_ent_t *e = &r->v[(r->head + r->len) % r->cap];
  e->seq = seq;
  e->fd_id = fd_id;
  e->is_end = is_end;
  zmq_msg_init(&e->msg);
  if (msg != NULL && zmq_msg_copy(&e->msg, msg) != 0) {
    zmq_msg_close(&e->msg);
    return NC_ENOMEM;
  }
  r->len++;
  return 0;
}

/* Drops the entries up to seq (acknowledged), or all. */
static void wlog_trim(nc__wlog_t *r, uint64_t seq, int all) {
  while (r->len > 0 && (all || r->v[r->head].seq <= seq)) {
    zmq_msg_close(&r->v[r->head].msg);
    r->head = (r->head + 1) % r->cap;
    r->len--;
  }
}

static int inring_push(nc__inring_t *r, nc__in_kind_t kind, int had_error, zmq_msg_t *msg) {
  if (r->len == r->cap) {
    size_t ncap = r->cap ? r->cap * 2 : 8;
    nc__input_t *v = malloc(ncap * sizeof(*v));
    if (v == NULL) return NC_ENOMEM;
    for (size_t i = 0; i < r->len; i++) {
      nc__input_t *from = &r->v[(r->head + i) % r->cap];
      v[i].kind = from->kind;
      v[i].had_error = from->had_error;
      zmq_msg_init(&v[i].msg);
      zmq_msg_move(&v[i].msg, &from->msg);
      zmq_msg_close(&from->msg);
    }
    free(r->v);
    r->v = v;
    r->cap = ncap;
    r->head = 0;
  }
  nc__input_t *in = &r->v[(r->head + r->len) % r->cap];
  in->kind = kind;
  in->had_error = had_error;
  zmq_msg_init(&in->msg);
  if (msg != NULL) zmq_msg_move(&in->msg, msg);
  r->len++;
  return 0;
}

/* Moves the oldest input out; the caller closes out->msg. */
static void inring_pop(nc__inring_t *r, nc__input_t *out) {
  nc__input_t *in = &r->v[r->head];
  out->kind = in->kind;
  out->had_error = in->had_error;
  zmq_msg_init(&out->msg);
  zmq_msg_move(&out->msg, &in->msg);
  zmq_msg_close(&in->msg);
  r->head = (r->head + 1) % r->cap;
  r->len--;
}

static void inring_clear(nc__inring_t *r) {
  while (r->len > 0) {
    nc__input_t in;
    inring_pop(r, &in);
    zmq_msg_close(&in.msg);
  }
}

/* ---------------------------------------------------------------- helpers */

static int live(const nc_socket_t *s) {
  return (s->state == NC__SK_CONNECTING || s->state == NC__SK_OPEN) && !s->destroyed;
}

static int send_simple(nc_socket_t *s, ncc_cmd_kind kind) {
  ncc_cmd cmd = {.kind = kind, .id = s->id};
  return nc__send(s->h.loop, &cmd, NULL, 0, NULL);
}

static void sock_init(nc_socket_t *s, nc_loop_t *loop, int allow_half_open) {
  s->h.type = NC__H_SOCKET;
  s->h.loop = loop;
  ncc_list_init(&s->h.pend);
  ncc_list_push(&loop->sockets, &s->h.all);
  s->state = NC__SK_NEW;
  s->allow_half_open = allow_half_open != 0;
  s->hwm = DEFAULT_HWM;
  s->nodelay = s->keepalive = -1;
  nc__decoder_set(&s->dec, NULL);
}

/* Fresh per-connection state; the socket's settings (events, encoding,
 * timeout, options, high-water mark) carry over to a reconnect. */
static void reset_connection(nc_socket_t *s) {
  s->ended_local = s->ended_remote = s->destroyed = s->had_error = 0;
  s->paused = s->pipe_paused = s->need_drain = s->error_emitted = s->local_err = 0;
  s->soft_paused = 0;
  s->bytes_read = s->bytes_sent = s->kernel_written = 0;
  s->buffer_size = 0;
  s->write_seq = s->acked_seq = 0;
  s->acked_bytes = s->credited = 0;
  s->got_end = s->opts_dirty = s->resume_mark = 0;
  wlog_trim(&s->wlog, 0, 1);
  s->unacked_credit = 0;
  s->closed_final = 0;
  s->adopted = 0;
  s->pipes_out = 0;
  s->unpiping = 0;
  s->adopted_pipe_dst = 0;
  memset(&s->local, 0, sizeof(s->local));
  memset(&s->remote, 0, sizeof(s->remote));
  nc__decoder_t d = s->dec;
  nc__decoder_set(&s->dec, NULL);
  s->dec.enc = d.enc;
}

static void send_options(nc_socket_t *s) {
  nc_loop_t *loop = s->h.loop;
  if (s->timeout_ms > 0) {
    ncc_cmd c = {.kind = NCC_CMD_SET_TIMEOUT, .id = s->id, .msecs = s->timeout_ms};
    nc__send(loop, &c, NULL, 0, NULL);
  }
  if (s->nodelay >= 0) {
    ncc_cmd c = {.kind = NCC_CMD_SET_NO_DELAY, .id = s->id, .enable = s->nodelay};
    nc__send(loop, &c, NULL, 0, NULL);
  }
  if (s->keepalive >= 0) {
    ncc_cmd c = {.kind = NCC_CMD_SET_KEEP_ALIVE, .id = s->id, .enable = s->keepalive,
                   .initial_delay_ms = s->keepalive_delay};
    nc__send(loop, &c, NULL, 0, NULL);
  }
}

/* ------------------------------------------------------------ creation */

int nc_socket_new(nc_loop_t *loop, const nc_socket_options_t *opts, nc_socket_t **out) {
  if (loop == NULL || out == NULL) return NC_EINVAL;
  nc_socket_t *s = calloc(1, sizeof(*s));
  *out = NULL;
  if (s == NULL) return NC_ENOMEM;
  sock_init(s, loop, opts != NULL && opts->allow_half_open);
  *out = s;
  return 0;
}

nc_socket_t *nc__socket_adopt(nc_loop_t *loop, uint64_t id, const nc_address_t *local,
                              const nc_address_t *remote, int allow_half_open) {
  nc_socket_t *s = calloc(1, sizeof(*s));
  if (s == NULL) return NULL;
  sock_init(s, loop, allow_half_open);
  if (ncc_idmap_put(&loop->socket_ids, id, s) != 0) {
    ncc_list_remove(&s->h.all);
    free(s);
    return NULL;
  }
  s->id = id;
  s->state = NC__SK_OPEN;
  s->local = *local;
  s->remote = *remote;
  nc__ref(&s->h);
  return s;
}

static void pipe_attach(nc_socket_t *src, nc_socket_t *dst, int no_end);

/* Adopted (PROTOCOL.md 17): s's pipe inside netcore carries on, and so does
 * any pipe of an adopted socket that waited for s as its destination. Both
 * ends come to this handler, in either order; a source's input waits until
 * its destination is here. */
static void adopt_pipes(nc_loop_t *loop, nc_socket_t *s, const ncc_event *ev) {
  if (ev->dest_socket_id != 0) {
    s->pipes_out = 1;
    s->pipe_no_end = ev->pipe_no_end;
    nc_socket_t *dst = ncc_idmap_get(&loop->socket_ids, ev->dest_socket_id);
    if (dst != NULL) pipe_attach(s, dst, ev->pipe_no_end);
    else s->adopted_pipe_dst = ev->dest_socket_id;
  }
  for (ncc_list *l = loop->sockets.next; l != &loop->sockets; l = l->next) {
    nc_socket_t *src = ncc_container_of(l, nc_socket_t, h.all);
    if (src->adopted_pipe_dst != s->id) continue;
    src->adopted_pipe_dst = 0;
    pipe_attach(src, s, src->pipe_no_end);
    if (src->input.len > 0) nc__pend(&src->h, NC__P_FLUSH_INPUT);
  }
}

void nc__socket_accepted(nc_loop_t *loop, const ncc_event *ev) {
  nc_server_t *server = ncc_idmap_get(&loop->server_ids, ev->server_id);
  nc_address_t local, remote;
  nc__address(ev->local, &local);
  nc__address(ev->remote, &remote);
  nc_socket_t *s = nc__socket_adopt(loop, ev->socket_id, &local, &remote, ev->flag);
  if (s == NULL) { /* out of memory: refuse the connection rather than lose track */
    ncc_cmd cmd = {.kind = NCC_CMD_DESTROY, .id = ev->socket_id};
    nc__send(loop, &cmd, NULL, 0, NULL);
    return;
  }
  /* A server the user closed accepts nothing more (Node): a Connection that
   * crossed its ServerClose, or one a resumed session announces (PROTOCOL.md
   * 16.1), is destroyed. */
  if (server != NULL && server->close_requested) server = NULL;
  s->server = server;
  s->server_id = server != NULL ? ev->server_id : 0;
  s->last_seq = ev->seq;
  if (server == NULL) {
    nc_socket_destroy(s);
    return;
  }
  if (ev->kind == NCC_EV_ADOPTED) {
    /* Its history so far (PROTOCOL.md 13); the replayed Data follows. */
    s->adopted = 1;
    s->bytes_read = ev->bytes_read;
    s->credited = ev->bytes_read; /* what the old owner consumed was credited */
    s->kernel_written = ev->bytes_written;
    s->bytes_sent = ev->bytes_written + ev->queued_bytes;
    s->ended_local = ev->write_ended;
    adopt_pipes(loop, s, ev);
  }
  server->connections = ev->count;
  if (server->ev.on_connection != NULL) server->ev.on_connection(server, s);
}

static void offload_stop(nc_socket_t *s);

void nc_socket_set_events(nc_socket_t *s, const nc_socket_events_t *events) {
  if (events != NULL)
    s->ev = *events;
  else
    memset(&s->ev, 0, sizeof(s->ev));
  if (s->ev.on_data != NULL) offload_stop(s); /* a 'data' listener: the bytes must come here */
}

static int connect_common(nc_socket_t *s, ncc_cmd *cmd, nc_socket_cb cb) {
  nc_loop_t *loop = s->h.loop;
  int rv;
  if (s->state == NC__SK_OPEN) return NC_EISCONN;
  if (s->state == NC__SK_CONNECTING) return NC_EALREADY;
  if (s->h.pending_flags & NC__P_CLOSE) return NC_ERR_SOCKET_CLOSED; /* destroyed */
  if (loop->gone || loop->gone_pending) return loop->gone ? loop->gone : loop->gone_pending;
  if (loop->shutdown) return NC_ERR_NETCORE_SHUTDOWN; /* netcore accepts nothing new */
  char *host = NULL, *path = NULL;
  if ((cmd->ep.host != NULL && (host = strdup(cmd->ep.host)) == NULL) ||
      (cmd->ep.path != NULL && (path = strdup(cmd->ep.path)) == NULL)) {
    free(host);
    return NC_ENOMEM;
  }
  free((char *)s->connect_ep.host);
  free((char *)s->connect_ep.path);
  s->connect_ep = (ncc_endpoint){.kind = cmd->ep.kind, .host = host, .port = cmd->ep.port,
                                 .path = path, .fd = -1};
  uint64_t id = nc__next_id(loop);
  if ((rv = ncc_idmap_put(&loop->socket_ids, id, s)) != 0) return rv;
  cmd->kind = NCC_CMD_CONNECT;
  cmd->id = id;
  cmd->allow_half_open = s->allow_half_open;
  if ((rv = nc__send(loop, cmd, NULL, 0, NULL)) != 0) {
    ncc_idmap_del(&loop->socket_ids, id);
    return rv;
  }
  reset_connection(s);
  s->server = NULL;
  s->server_id = 0;
  s->id = id;
  s->state = NC__SK_CONNECTING;
  s->connect_cb = cb;
  nc__ref(&s->h);
  send_options(s);
  return 0;
}

int nc_socket_connect(nc_socket_t *s, int port, const char *host, nc_socket_cb cb) {
  if (s == NULL) return NC_EINVAL;
  if (port <= 0 || port > 65535) return NC_ERR_SOCKET_BAD_PORT;
  ncc_cmd cmd = {.ep = {.kind = NCC_EP_TCP, .port = port, .host = host ? host : "localhost"}};
  return connect_common(s, &cmd, cb);
}

int nc_socket_connect_path(nc_socket_t *s, const char *path, nc_socket_cb cb) {
  if (s == NULL || path == NULL || path[0] == '\0') return NC_EINVAL;
  ncc_cmd cmd = {.ep = {.kind = NCC_EP_PATH, .path = path}};
  return connect_common(s, &cmd, cb);
}

int nc_create_connection(nc_loop_t *loop, const nc_socket_options_t *opts, int port,
                         const char *host, nc_socket_cb cb, nc_socket_t **out) {
  nc_socket_t *s;
  int rv;
  if (out == NULL) return NC_EINVAL;
  *out = NULL;
  if ((rv = nc_socket_new(loop, opts, &s)) != 0) return rv;
  if ((rv = nc_socket_connect(s, port, host, cb)) != 0) {
    nc__socket_free(s);
    return rv;
  }
  *out = s;
  return 0;
}

int nc_create_connection_path(nc_loop_t *loop, const nc_socket_options_t *opts,
                              const char *path, nc_socket_cb cb, nc_socket_t **out) {
  nc_socket_t *s;
  int rv;
  if (out == NULL) return NC_EINVAL;
  *out = NULL;
  if ((rv = nc_socket_new(loop, opts, &s)) != 0) return rv;
  if ((rv = nc_socket_connect_path(s, path, cb)) != 0) {
    nc__socket_free(s);
    return rv;
  }
  *out = s;
  return 0;
}

/* ------------------------------------------------------------------ write */

/* Whether this session may resume after a takeover (PROTOCOL.md 16.1): its
 * writes are then kept until acknowledged. */
static int session_kept(const nc_loop_t *loop) {
  return loop->resumable && loop->session_token_len > 0 && loop->reconnect;
}

/* Sends one Write or End (cmd) with msg (taken; NULL for End) as the
 * socket's next write. In a resumable session it is kept until its ack;
 * while the link is down (resuming) it is only kept, and a send that finds
 * the link dead counts as done: the resumed session sends it again (or, not
 * resumed, the socket fails). */
static int send_write(nc_socket_t *s, const ncc_cmd *cmd, zmq_msg_t *msg) {
  nc_loop_t *loop = s->h.loop;
  uint64_t seq = s->write_seq + 1;
  int kept = session_kept(loop);
  if (kept && wlog_push(&s->wlog, seq, cmd->fd_socket_id, cmd->kind == NCC_CMD_END, msg) != 0) {
    if (msg != NULL) zmq_msg_close(msg);
    return NC_ENOMEM;
  }
  int rv = 0;
  if (loop->resuming) {
    if (msg != NULL) zmq_msg_close(msg);
  } else {
    rv = nc__send(loop, cmd, NULL, 0, msg);
    if (kept && (rv == NC_ERR_NETCORE_GONE || rv == NC_ERR_NETCORE_UNAVAILABLE)) rv = 0;
  }
  if (rv != 0) {
    if (kept) s->wlog.len--; /* the entry just pushed */
    return rv;
  }
  s->write_seq = seq;
  return 0;
}

/* Sends one write (split at netcore's frame limit); msg, if given, holds the
 * bytes already (a pipe forwarding a received frame without copying). */
static int write_common(nc_socket_t *s, const void *data, size_t len, zmq_msg_t *msg,
                        uint64_t fd_id, nc_write_cb cb, void *arg) {
  nc_loop_t *loop = s->h.loop;
  int rv;
  if (!live(s)) {
    if (msg != NULL) zmq_msg_close(msg);
    return NC_ERR_SOCKET_CLOSED;
  }
  if (s->ended_local) {
    /* Write after end: fail it locally and asynchronously (today's Node). */
    if (msg != NULL) zmq_msg_close(msg);
    if (wring_push(&s->failed, 0, cb, arg) != 0) return NC_ENOMEM;
    nc__pend(&s->h, NC__P_FAILED_WRITES);
    return 0;
  }
  if (cb != NULL && (rv = wring_reserve(&s->wreqs)) != 0) {
    if (msg != NULL) zmq_msg_close(msg);
    return rv;
  }
  size_t chunk = loop->max_frame ? loop->max_frame : len;
  const char *p = data;
  size_t left = len;
  ncc_cmd cmd = {.kind = NCC_CMD_WRITE, .id = s->id, .fd_socket_id = fd_id};
  /* Lazy acks (PROTOCOL.md 7): ask for a prompt one only when something waits
   * for it, a write callback or a 'drain' this write makes due. */
  int prompt = cb != NULL || s->buffer_size + len >= s->hwm;
  zmq_msg_t shared;
  zmq_msg_t *d = loop->delivering;
  if (msg == NULL && d != NULL && len > 0 && len <= chunk && data == zmq_msg_data(d) &&
      len == zmq_msg_size(d)) {
    /* Writing back the very bytes on_data was given (an echo, a forward):
     * the received frame goes out again, shared, not copied. */
    zmq_msg_init(&shared);
    if (zmq_msg_copy(&shared, d) == 0) msg = &shared;
    else zmq_msg_close(&shared);
  }
  if (msg != NULL) {
    cmd.ack_now = prompt;
    if ((rv = send_write(s, &cmd, msg)) != 0) return rv;
  } else {
    do {
      size_t n = left < chunk ? left : chunk;
      cmd.ack_now = prompt && n == left; /* the last part's ack covers the rest */
      zmq_msg_t m;
      if (zmq_msg_init_size(&m, n) != 0) return NC_ENOMEM;
      if (n > 0) memcpy(zmq_msg_data(&m), p, n); /* the one copy of the data */
      if ((rv = send_write(s, &cmd, &m)) != 0) return rv;
      cmd.fd_socket_id = 0; /* the fd goes with the first part only */
      p += n;
      left -= n;
    } while (left > 0);
  }
  if (cb != NULL) wring_push(&s->wreqs, s->write_seq, cb, arg);
  s->buffer_size += len;
  s->bytes_sent += len;
  if (s->buffer_size >= s->hwm) {
    s->need_drain = 1;
    return 0;
  }
  return 1;
}

int nc_socket_write(nc_socket_t *s, const void *data, size_t len, nc_write_cb cb, void *arg) {
  if (s == NULL || (data == NULL && len > 0)) return NC_EINVAL;
  return write_common(s, data, len, NULL, 0, cb, arg);
}

int nc_socket_write_fd(nc_socket_t *s, const void *data, size_t len, nc_socket_t *fd_socket,
                       nc_write_cb cb, void *arg) {
  if (s == NULL || data == NULL || len == 0 || fd_socket == NULL) return NC_EINVAL;
  if (fd_socket->id == 0 || !live(fd_socket)) return NC_EBADF;
  return write_common(s, data, len, NULL, fd_socket->id, cb, arg);
}

int nc_socket_end(nc_socket_t *s, const void *data, size_t len) {
  if (s == NULL || (data == NULL && len > 0)) return NC_EINVAL;
  if (!live(s)) return NC_ERR_SOCKET_CLOSED;
  if (s->ended_local) {
    if (len > 0) write_common(s, data, len, NULL, 0, NULL, NULL);
    return 0;
  }
  nc_loop_t *loop = s->h.loop;
  int rv;
  /* end(data) is write(data) then end(), as in Node; End itself never carries
   * data, so it can ride in a batch (PROTOCOL.md 1.1). */
  if (len > 0 && (rv = write_common(s, data, len, NULL, 0, NULL, NULL)) < 0) return rv;
  /* No ack_now: nothing waits for the FIN's ack (no drain after end), and it
   * rides along with Closed, which follows as soon as the peer has ended too. */
  ncc_cmd cmd = {.kind = NCC_CMD_END, .id = s->id};
  (void)loop;
  if ((rv = send_write(s, &cmd, NULL)) != 0) return rv;
  s->ended_local = 1;
  s->need_drain = 0; /* no 'drain' once ending, as in Node's Writable */
  return 0;
}

/* ---------------------------------------------------------------- reading */

static void grant(nc_socket_t *s) {
  ncc_cmd cmd = {.kind = NCC_CMD_CREDIT, .id = s->id, .bytes = s->unacked_credit};
  if (s->unacked_credit == 0 || s->h.loop->resuming) return; /* granted once resumed */
  uint32_t n = s->unacked_credit;
  s->unacked_credit = 0;
  if (nc__send(s->h.loop, &cmd, NULL, 0, NULL) == 0)
    s->credited += n;
  else if (session_kept(s->h.loop))
    s->unacked_credit = n; /* to the netcore that resumes the session */
}

/* Credit is netcore's proof that the bytes were handled (PROTOCOL.md 13):
 * granted for every delivery as soon as the data callback returns, so it
 * joins this turn's batch right behind the writes those bytes produced. A
 * paused socket grants too: netcore then sends at most one more window,
 * which waits here undelivered and uncredited. */
static void consumed(nc_socket_t *s, size_t n) {
  s->unacked_credit += (uint32_t)n;
  if (live(s)) grant(s);
}

static void pipe_detach(nc_socket_t *src) {
  nc_socket_t *dst = src->pipe_dst;
  if (dst == NULL) return;
  for (nc_socket_t **pp = &dst->pipe_srcs; *pp != NULL; pp = &(*pp)->pipe_next) {
    if (*pp == src) {
      *pp = src->pipe_next;
      break;
    }
  }
  src->pipe_dst = NULL;
  src->pipe_next = NULL;
}

static void pipe_write(nc_socket_t *src, zmq_msg_t *msg) {
  nc_socket_t *dst = src->pipe_dst;
  if (!live(dst)) {
    nc_socket_unpipe(src);
    return;
  }
  zmq_msg_t copy; /* shares the received frame: no byte is copied */
  zmq_msg_init(&copy);
  zmq_msg_copy(&copy, msg);
  if (write_common(dst, NULL, zmq_msg_size(&copy), &copy, 0, NULL, NULL) == 0 && !src->paused) {
    /* A soft pause: withholding credit stops netcore within one window, with no
     * Pause/Resume round of commands on every high-water crossing. */
    src->paused = 1;
    src->soft_paused = 1;
    src->pipe_paused = 1;
  }
}

static void deliver_data(nc_socket_t *s, zmq_msg_t *msg) {
  const char *p = zmq_msg_data(msg);
  size_t n = zmq_msg_size(msg);
  if (s->ev.on_data != NULL) {
    if (s->dec.enc == NC__ENC_NONE) {
      nc_loop_t *loop = s->h.loop;
      zmq_msg_t *outer = loop->delivering; /* a callback may run a nested loop turn */
      loop->delivering = msg;
      s->ev.on_data(s, p, n);
      loop->delivering = outer;
    } else {
      char *out = nc__scratch(s->h.loop, nc__decoder_max_out(&s->dec, n));
      if (out == NULL) {
        nc__socket_fail(s, NC_ENOMEM, "no memory to decode data");
        return;
      }
      size_t m = nc__decoder_write(&s->dec, (const uint8_t *)p, n, out);
      if (m > 0) s->ev.on_data(s, out, m);
    }
  }
  if (s->pipe_dst != NULL && !s->destroyed) pipe_write(s, msg);
  consumed(s, n);
}

static void deliver_end(nc_socket_t *s) {
  s->ended_remote = 1;
  if (s->dec.enc != NC__ENC_NONE && s->ev.on_data != NULL) {
    char *out = nc__scratch(s->h.loop, 8);
    size_t m = out ? nc__decoder_end(&s->dec, out) : 0;
    if (m > 0 && !s->destroyed) s->ev.on_data(s, out, m);
  }
  if (!s->destroyed && s->ev.on_end != NULL) s->ev.on_end(s);
  if (!s->destroyed && s->pipe_dst != NULL) {
    /* A pipe inside netcore stops at the source's end by itself (its
     * Unpiped follows): no Unpipe. Ending dst again there is a no-op. */
    nc_socket_t *dst = s->pipe_dst;
    pipe_detach(s);
    if (s->pipe_paused) nc_socket_resume(s);
    if (!s->pipe_no_end && live(dst)) nc_socket_end(dst, NULL, 0);
  }
  /* Without allowHalfOpen the peer's FIN ends our side too, after the
   * writes already queued (Node's behaviour; netcore leaves it to us). */
  if (!s->destroyed && !s->allow_half_open && !s->ended_local) nc_socket_end(s, NULL, 0);
}

/* ------------------------------------------------------------------ close */

static void fail_writes(nc_socket_t *s) {
  int err = s->local_err ? s->local_err : NC_ECANCELED;
  while (s->wreqs.len > 0) {
    nc__wreq_t w = wring_pop(&s->wreqs);
    w.cb(s, err, w.arg);
  }
  while (s->failed.len > 0) {
    nc__wreq_t w = wring_pop(&s->failed);
    if (w.cb != NULL) w.cb(s, NC_EPIPE, w.arg);
  }
}

static void unpipe_all(nc_socket_t *s, int resume) {
  pipe_detach(s);
  while (s->pipe_srcs != NULL) {
    nc_socket_t *src = s->pipe_srcs;
    pipe_detach(src);
    if (src->pipe_paused) {
      src->pipe_paused = 0;
      if (resume) nc_socket_resume(src);
    }
  }
}

/* Takes an accepted socket off its server's count, once: at destroy(), as
 * Node's destroy() does (10 -> 9, and 9 again when called twice), or at
 * close for a socket the peer or netcore closed. */
static void uncount(nc_socket_t *s) {
  if (s->uncounted) return;
  s->uncounted = 1;
  if (s->server != NULL && s->server->connections > 0) s->server->connections--;
}

/* The socket's 'close': everything pending fails, the close callback runs,
 * and the socket is freed unless that callback connected it again. */
static void finish_close(nc_socket_t *s, int had_error) {
  nc_loop_t *loop = s->h.loop;
  if (s->id != 0) ncc_idmap_del(&loop->socket_ids, s->id);
  s->id = 0;
  s->state = NC__SK_CLOSED;
  if (s->h.pending_flags) {
    ncc_list_remove(&s->h.pend);
    s->h.pending_flags = 0;
  }
  unpipe_all(s, 1);
  inring_clear(&s->input);
  wlog_trim(&s->wlog, 0, 1);
  fail_writes(s);
  uncount(s);
  /* A server whose close waits for its last connection (nc__server_refused)
   * completes after this 'close'. */
  if (s->server != NULL) nc__server_conn_closed(s->server);
  if (s->ev.on_close != NULL) s->ev.on_close(s, had_error);
  if (s->state == NC__SK_CLOSED) nc__socket_free(s);
}

void nc__socket_free(nc_socket_t *s) {
  nc_loop_t *loop = s->h.loop;
  if (s->id != 0) ncc_idmap_del(&loop->socket_ids, s->id);
  ncc_list_remove(&s->h.all);
  if (s->h.pending_flags) ncc_list_remove(&s->h.pend);
  unpipe_all(s, 0);
  inring_clear(&s->input);
  free(s->input.v);
  wlog_trim(&s->wlog, 0, 1);
  free(s->wlog.v);
  free(s->wreqs.v);
  free(s->failed.v);
  free((char *)s->connect_ep.host);
  free((char *)s->connect_ep.path);
  nc__unref(&s->h);
  free(s);
}

void nc_socket_destroy(nc_socket_t *s) {
  if (s == NULL) return;
  if (s->state == NC__SK_NEW) {
    nc__pend(&s->h, NC__P_CLOSE);
    return;
  }
  if (!live(s)) return;
  s->destroyed = 1;
  uncount(s);
  send_simple(s, NCC_CMD_DESTROY); /* if netcore is gone, its loss closes us */
}

/* A failure found by libnc or reported by an Error event: 'error', then
 * destroy; 'close'(1) follows. */
void nc__socket_fail(nc_socket_t *s, int err, const char *msg) {
  if (!live(s)) return;
  s->had_error = 1;
  s->local_err = err;
  if (!s->error_emitted) {
    s->error_emitted = 1;
    if (s->ev.on_error != NULL) s->ev.on_error(s, err, msg);
  }
  nc_socket_destroy(s);
}

void nc__socket_gone(nc_socket_t *s, int err, const char *msg) {
  if (!s->destroyed && !s->error_emitted) {
    s->error_emitted = 1;
    s->local_err = err;
    if (s->ev.on_error != NULL) s->ev.on_error(s, err, msg);
  }
  if (!s->destroyed) s->had_error = 1;
  finish_close(s, s->had_error);
}

/* --------------------------------------------------------------- events */

static void flush_input(nc_socket_t *s) {
  while (!s->paused && !s->adopted_pipe_dst && s->input.len > 0 && s->state == NC__SK_OPEN) {
    nc__input_t in;
    inring_pop(&s->input, &in);
    switch (in.kind) {
    case NC__IN_DATA:
      if (!s->destroyed) deliver_data(s, &in.msg);
      zmq_msg_close(&in.msg);
      break;
    case NC__IN_END:
      zmq_msg_close(&in.msg);
      if (!s->destroyed) deliver_end(s);
      break;
    case NC__IN_CLOSE:
      zmq_msg_close(&in.msg);
      finish_close(s, in.had_error || s->had_error);
      return; /* s may be freed */
    }
  }
}

static void on_ack(nc_socket_t *s, const ncc_event *ev) {
  s->acked_seq += ev->count;
  s->acked_bytes += ev->bytes;
  wlog_trim(&s->wlog, s->acked_seq, 0);
  s->buffer_size -= ev->bytes < s->buffer_size ? (size_t)ev->bytes : s->buffer_size;
  s->kernel_written = ev->bytes_written;
  while (s->wreqs.len > 0 && s->wreqs.v[s->wreqs.head].seq <= s->acked_seq) {
    nc__wreq_t w = wring_pop(&s->wreqs);
    w.cb(s, 0, w.arg);
  }
  if (s->need_drain && s->buffer_size == 0 && live(s)) {
    s->need_drain = 0;
    for (nc_socket_t *src = s->pipe_srcs; src != NULL; src = src->pipe_next) {
      if (src->pipe_paused) {
        src->pipe_paused = 0;
        nc_socket_resume(src);
      }
    }
    if (s->ev.on_drain != NULL && live(s)) s->ev.on_drain(s);
  }
}

/* One function per socket event kind (nc__socket_event dispatches); payload
 * is the Data event's frame, NULL for the others. */
typedef void (*event_fn)(nc_socket_t *s, const ncc_event *ev, zmq_msg_t *payload);

static void on_connected(nc_socket_t *s, const ncc_event *ev, zmq_msg_t *payload) {
  if (s->state != NC__SK_CONNECTING) return;
  s->state = NC__SK_OPEN;
  nc__address(ev->local, &s->local);
  nc__address(ev->remote, &s->remote);
  nc_socket_cb cb = s->connect_cb;
  s->connect_cb = NULL;
  if (s->destroyed) return;
  if (cb != NULL) cb(s);
  if (live(s) && s->ev.on_connect != NULL) s->ev.on_connect(s);
}

static void on_data(nc_socket_t *s, const ncc_event *ev, zmq_msg_t *payload) {
  if (payload == NULL) return;
  s->bytes_read += zmq_msg_size(payload);
  if (s->destroyed) return;
  if (s->paused || s->input.len > 0 || s->adopted_pipe_dst) {
    if (inring_push(&s->input, NC__IN_DATA, 0, payload) != 0)
      nc__socket_fail(s, NC_ENOMEM, "no memory to queue data while paused");
  } else {
    deliver_data(s, payload);
  }
}

static void on_ended(nc_socket_t *s, const ncc_event *ev, zmq_msg_t *payload) {
  s->got_end = 1;
  if (s->destroyed) return;
  if (s->paused || s->input.len > 0 || s->adopted_pipe_dst) {
    if (inring_push(&s->input, NC__IN_END, 0, NULL) != 0)
      nc__socket_fail(s, NC_ENOMEM, "no memory to queue end while paused");
  } else {
    deliver_end(s);
  }
}

static void on_write_ack(nc_socket_t *s, const ncc_event *ev, zmq_msg_t *payload) {
  on_ack(s, ev);
}

static void on_timeout(nc_socket_t *s, const ncc_event *ev, zmq_msg_t *payload) {
  if (!live(s)) return;
  nc_socket_cb cb = s->timeout_cb;
  s->timeout_cb = NULL;
  if (cb != NULL) cb(s);
  if (live(s) && s->ev.on_timeout != NULL) s->ev.on_timeout(s);
}

static void on_socket_error(nc_socket_t *s, const ncc_event *ev, zmq_msg_t *payload) {
  int err = nc__err_code(ev->code);
  int quiet = s->destroyed; /* after destroy(), only 'close' */
  s->had_error = 1;
  s->local_err = err;
  s->destroyed = 1;
  if (quiet || s->error_emitted) return;
  char msg[512];
  s->error_emitted = 1;
  snprintf(msg, sizeof(msg), "%s%s%s", ev->code, ev->message[0] ? ": " : "", ev->message);
  if (s->ev.on_error != NULL) s->ev.on_error(s, err, msg);
}

static void on_closed(nc_socket_t *s, const ncc_event *ev, zmq_msg_t *payload) {
  int had_error = ev->flag || s->had_error;
  s->kernel_written = ev->bytes_written;
  s->closed_final = 1;
  if (!had_error && !s->destroyed && (s->paused || s->input.len > 0)) {
    /* A clean close waits behind the input the application has not
     * read yet, as Node's 'close' waits for 'end'. */
    if (inring_push(&s->input, NC__IN_CLOSE, 0, NULL) == 0) return;
  }
  finish_close(s, had_error);
}

static void on_fd(nc_socket_t *s, const ncc_event *ev, zmq_msg_t *payload) {
  nc_loop_t *loop = s->h.loop;
  nc_address_t local, remote;
  nc__address(ev->local, &local);
  nc__address(ev->remote, &remote);
  nc_socket_t *n = nc__socket_adopt(loop, ev->new_socket_id, &local, &remote, s->allow_half_open);
  if (n == NULL) {
    ncc_cmd cmd = {.kind = NCC_CMD_DESTROY, .id = ev->new_socket_id};
    nc__send(loop, &cmd, NULL, 0, NULL);
    return;
  }
  if (live(s) && s->ev.on_fd != NULL)
    s->ev.on_fd(s, n);
  else
    nc_socket_destroy(n);
}

/* A pipe inside netcore stopped (PROTOCOL.md 17): its bytes count now, on
 * both ends; when the destination failed, ended or closed, the source is
 * unpiped as Node does on the destination's 'error'/'close'/'finish'. */
static void on_unpiped(nc_socket_t *s, const ncc_event *ev, zmq_msg_t *payload) {
  (void)payload;
  nc_socket_t *dst = ncc_idmap_get(&s->h.loop->socket_ids, ev->dest_socket_id);
  s->bytes_read += ev->bytes;
  if (dst != NULL) {
    dst->bytes_sent += ev->bytes;
    if (ev->bytes_written > dst->kernel_written) dst->kernel_written = ev->bytes_written;
  }
  if (s->pipes_out > 0) s->pipes_out--;
  if (s->adopted_pipe_dst == ev->dest_socket_id) { /* its destination never came to us */
    s->adopted_pipe_dst = 0;
    if (s->input.len > 0) nc__pend(&s->h, NC__P_FLUSH_INPUT);
  }
  if (s->pipes_out > 0) return; /* a newer Pipe replaced this one */
  s->unpiping = 0;
  if (ev->unpipe_reason == NCC_UNPIPE_DEST_CLOSED && s->pipe_dst != NULL && s->pipe_dst == dst) {
    pipe_detach(s);
    if (s->pipe_paused) nc_socket_resume(s);
  }
}

void nc__socket_pipe_refused(nc_socket_t *s, int is_pipe) {
  if (is_pipe && s->pipes_out > 0) s->pipes_out--;
  if (s->pipes_out == 0) s->unpiping = 0;
}

static const event_fn socket_events[NCC_EV_BATCH + 1] = {
    [NCC_EV_CONNECTED] = on_connected,       [NCC_EV_DATA] = on_data,
    [NCC_EV_ENDED] = on_ended,               [NCC_EV_WRITE_ACK] = on_write_ack,
    [NCC_EV_TIMEOUT] = on_timeout,           [NCC_EV_SOCKET_ERROR] = on_socket_error,
    [NCC_EV_CLOSED] = on_closed,             [NCC_EV_FD] = on_fd,
    [NCC_EV_UNPIPED] = on_unpiped,
};

void nc__socket_event(nc_socket_t *s, const ncc_event *ev, zmq_msg_t *payload) {
  if (ev->seq) s->last_seq = ev->seq;
  if (ev->has_ack) { /* acks that waited for this event come first */
    ncc_event ack = {.count = ev->ack_writes, .bytes = ev->ack_bytes,
                     .bytes_written = ev->ack_bytes_written};
    on_ack(s, &ack);
  }
  if ((unsigned)ev->kind <= NCC_EV_BATCH && socket_events[ev->kind] != NULL)
    socket_events[ev->kind](s, ev, payload);
}

void nc__socket_pending(nc_socket_t *s, unsigned flags) {
  if (flags & NC__P_CLOSE) {
    if (s->state == NC__SK_NEW) finish_close(s, 0);
    return; /* s is freed (or reconnected, with nothing else pending) */
  }
  if (flags & NC__P_FAILED_WRITES) {
    while (s->failed.len > 0) {
      nc__wreq_t w = wring_pop(&s->failed);
      if (w.cb != NULL) w.cb(s, NC_EPIPE, w.arg);
    }
    nc__socket_fail(s, NC_EPIPE, "EPIPE: write after end");
  }
  if (flags & NC__P_FLUSH_INPUT) flush_input(s);
}

/* ------------------------------------------------------- flow and options */

void nc_socket_pause(nc_socket_t *s) {
  if (s == NULL || (s->paused && !s->soft_paused)) return;
  s->paused = 1;
  s->soft_paused = 0; /* the application's pause stops reading at once */
  if (live(s)) send_simple(s, NCC_CMD_PAUSE);
}

void nc_socket_resume(nc_socket_t *s) {
  if (s == NULL || !s->paused) return;
  int soft = s->soft_paused;
  s->paused = 0;
  s->soft_paused = 0;
  s->pipe_paused = 0;
  if (!live(s)) return;
  if (!soft) send_simple(s, NCC_CMD_RESUME);
  grant(s);
  if (s->input.len > 0) nc__pend(&s->h, NC__P_FLUSH_INPUT);
}

int nc_socket_is_paused(const nc_socket_t *s) { return s->paused; }

int nc_socket_set_timeout(nc_socket_t *s, unsigned msecs, nc_socket_cb cb) {
  if (s == NULL) return NC_EINVAL;
  s->timeout_ms = msecs;
  s->timeout_cb = msecs > 0 ? cb : NULL;
  s->opts_gen++;
  if (!live(s)) return 0;
  if (s->h.loop->resuming) return s->opts_dirty = 1, 0; /* sent once resumed */
  ncc_cmd c = {.kind = NCC_CMD_SET_TIMEOUT, .id = s->id, .msecs = msecs};
  return nc__send(s->h.loop, &c, NULL, 0, NULL);
}

int nc_socket_set_no_delay(nc_socket_t *s, int enable) {
  if (s == NULL) return NC_EINVAL;
  s->nodelay = enable != 0;
  s->opts_gen++;
  if (!live(s)) return 0;
  if (s->h.loop->resuming) return s->opts_dirty = 1, 0;
  ncc_cmd c = {.kind = NCC_CMD_SET_NO_DELAY, .id = s->id, .enable = s->nodelay};
  return nc__send(s->h.loop, &c, NULL, 0, NULL);
}

int nc_socket_set_keep_alive(nc_socket_t *s, int enable, unsigned initial_delay_ms) {
  if (s == NULL) return NC_EINVAL;
  s->keepalive = enable != 0;
  s->keepalive_delay = initial_delay_ms;
  s->opts_gen++;
  if (!live(s)) return 0;
  if (s->h.loop->resuming) return s->opts_dirty = 1, 0;
  ncc_cmd c = {.kind = NCC_CMD_SET_KEEP_ALIVE, .id = s->id, .enable = s->keepalive,
                 .initial_delay_ms = initial_delay_ms};
  return nc__send(s->h.loop, &c, NULL, 0, NULL);
}

int nc_socket_set_encoding(nc_socket_t *s, const char *encoding) {
  if (s == NULL) return NC_EINVAL;
  int rv = nc__decoder_set(&s->dec, encoding);
  if (rv == 0 && s->dec.enc != NC__ENC_NONE) offload_stop(s); /* decoded text is made here */
  return rv;
}

static void pipe_attach(nc_socket_t *src, nc_socket_t *dst, int no_end) {
  src->pipe_dst = dst;
  src->pipe_no_end = no_end != 0;
  src->pipe_next = dst->pipe_srcs;
  dst->pipe_srcs = src;
}

/* Whether netcore can carry src.pipe(dst) out itself (nc.h, nc_socket_pipe). */
static int offloadable(const nc_socket_t *src, const nc_socket_t *dst) {
  const nc_loop_t *loop = src->h.loop;
  return loop->pipe_offload && loop->minor_version >= 2 && src->ev.on_data == NULL &&
         src->dec.enc == NC__ENC_NONE && live(src) && live(dst) && !src->ended_remote &&
         !dst->ended_local;
}

/* Hands the pipe to netcore. */
static void offload_start(nc_socket_t *src, nc_socket_t *dst) {
  uint32_t hwm = dst->hwm > UINT32_MAX ? UINT32_MAX : (uint32_t)dst->hwm;
  ncc_cmd cmd = {.kind = NCC_CMD_PIPE, .id = src->id, .dest_socket_id = dst->id,
                 .no_end = src->pipe_no_end, .high_water_mark = hwm};
  if (nc__send(src->h.loop, &cmd, NULL, 0, NULL) != 0) return; /* the library pipes */
  src->pipes_out++;
  src->unpiping = 0;
}

/* Takes s's bytes back from a pipe inside netcore: Unpipe, once; data read
 * after its Unpiped comes here again. */
static void offload_stop(nc_socket_t *s) {
  if (s->pipes_out == 0 || s->unpiping || !live(s)) return;
  ncc_cmd cmd = {.kind = NCC_CMD_UNPIPE, .id = s->id};
  if (nc__send(s->h.loop, &cmd, NULL, 0, NULL) == 0) s->unpiping = 1;
}

int nc_socket_pipe_opts(nc_socket_t *src, nc_socket_t *dst, const nc_pipe_options_t *opts) {
  if (src == NULL || dst == NULL) return NC_EINVAL;
  int no_end = opts != NULL && opts->no_end;
  if (src->pipe_dst == dst && src->pipe_no_end == no_end) return 0;
  nc_socket_unpipe(src);
  pipe_attach(src, dst, no_end);
  nc_socket_resume(src); /* pipe() starts the flow, as in Node */
  if (offloadable(src, dst)) offload_start(src, dst);
  return 0;
}

int nc_socket_pipe(nc_socket_t *src, nc_socket_t *dst) { return nc_socket_pipe_opts(src, dst, NULL); }

void nc_socket_unpipe(nc_socket_t *src) {
  if (src == NULL || src->pipe_dst == NULL) return;
  pipe_detach(src);
  offload_stop(src);
  if (src->pipe_paused) nc_socket_resume(src);
}

int nc_socket_pipe_offloaded(const nc_socket_t *src) {
  return src != NULL && src->pipes_out > 0 && !src->unpiping;
}

size_t nc_socket_buffer_size(const nc_socket_t *s) { return s->buffer_size; }
void nc_socket_set_high_water_mark(nc_socket_t *s, size_t bytes) { s->hwm = bytes ? bytes : 1; }
uint64_t nc_socket_bytes_read(const nc_socket_t *s) { return s->bytes_read; }

int nc_socket_adopted(const nc_socket_t *s) { return s != NULL && s->adopted; }

uint64_t nc_socket_bytes_written(const nc_socket_t *s) {
  return s->closed_final ? s->kernel_written : s->bytes_sent;
}

int nc_socket_address(const nc_socket_t *s, nc_address_t *addr) {
  if (s == NULL || addr == NULL) return NC_EINVAL;
  if (s->local.family == NC_FAMILY_NONE && s->state != NC__SK_OPEN) return NC_ENOTCONN;
  *addr = s->local;
  return 0;
}

const char *nc_socket_remote_address(const nc_socket_t *s) { return s->remote.address; }
int nc_socket_remote_port(const nc_socket_t *s) { return s->remote.port; }
nc_server_t *nc_socket_server(const nc_socket_t *s) { return s->server; }
nc_loop_t *nc_socket_loop(const nc_socket_t *s) { return s->h.loop; }
void nc_socket_set_data(nc_socket_t *s, void *data) { s->h.data = data; }
void *nc_socket_get_data(const nc_socket_t *s) { return s->h.data; }

/* --------------------------------------------------- session resumption */

int nc__socket_resume_entry(nc_socket_t *s, ncc_resume_socket *out) {
  /* A connecting socket goes too (protocol 1.4): netcore says Connected
   * again, or it is not there and its Connect goes again. */
  if ((s->state != NC__SK_OPEN && s->state != NC__SK_CONNECTING) || s->id == 0) return 0;
  *out = (ncc_resume_socket){.socket_id = s->id,
                             .bytes_received = s->bytes_read,
                             .bytes_credited = s->credited,
                             .writes_acked = s->acked_seq,
                             .bytes_acked = s->acked_bytes,
                             .saw_end = s->got_end,
                             .last_seq = s->last_seq,
                             .connecting = s->state == NC__SK_CONNECTING,
                             /* Its view of the options: one sent that the
                              * old netcore never read is applied by the new
                              * one (PROTOCOL.md 16.1). */
                             .has_options = 1,
                             .timeout_ms = s->timeout_ms,
                             .no_delay = s->nodelay < 0 ? 0 : (uint32_t)s->nodelay + 1,
                             .keep_alive = s->keepalive < 0 ? 0 : (uint32_t)s->keepalive + 1,
                             .keep_alive_delay_ms = s->keepalive_delay};
  s->opts_hello_gen = s->opts_gen;
  return 1;
}

int nc__socket_connect_again(nc_socket_t *s) {
  nc_loop_t *loop = s->h.loop;
  ncc_cmd cmd = {.kind = NCC_CMD_CONNECT, .id = s->id, .allow_half_open = s->allow_half_open,
                 .ep = s->connect_ep};
  int rv = nc__send(loop, &cmd, NULL, 0, NULL);
  if (rv != 0) return rv;
  send_options(s);
  s->opts_dirty = 0;
  s->opts_hello_gen = s->opts_gen;
  return nc__socket_resumed(s, 0);
}

int nc__socket_resumed(nc_socket_t *s, uint64_t writes) {
  nc_loop_t *loop = s->h.loop;
  /* The writes the old netcore never read, in order (their data is shared
   * with the log, which keeps it until the ack). */
  for (size_t i = 0; i < s->wlog.len; i++) {
    nc__wlog_ent_t *e = &s->wlog.v[(s->wlog.head + i) % s->wlog.cap];
    if (e->seq <= writes) continue;
    ncc_cmd cmd = {.kind = e->is_end ? NCC_CMD_END : NCC_CMD_WRITE, .id = s->id,
                   .fd_socket_id = e->fd_id, .ack_now = 1};
    if (e->is_end) {
      nc__send(loop, &cmd, NULL, 0, NULL);
      continue;
    }
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_copy(&m, &e->msg) != 0) {
      zmq_msg_close(&m);
      return NC_ENOMEM;
    }
    nc__send(loop, &cmd, NULL, 0, &m);
  }
  /* What may have been lost in flight, said again: the pause state (either
   * command is harmless when it changes nothing), a destroy, the options set
   * while the link was down, the credit not yet given. */
  if (s->destroyed) {
    send_simple(s, NCC_CMD_DESTROY);
    return 0;
  }
  send_simple(s, s->paused && !s->soft_paused ? NCC_CMD_PAUSE : NCC_CMD_RESUME);
  /* A netcore of protocol 1.4 applied the options the resume Hello told;
   * an older one only gets those set while the link was down. */
  if (loop->minor_version >= 4 ? s->opts_gen != s->opts_hello_gen : s->opts_dirty)
    send_options(s);
  s->opts_dirty = 0;
  grant(s);
  return 0;
}
