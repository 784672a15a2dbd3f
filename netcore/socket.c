/* socket.c: see socket.h. */
#include "socket.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errors.h"
#include "fdlimit.h"
#include "log.h"
#include "metrics.h"
#include "pipe.h"
#include "router.h"
#include "server.h"

#define READ_MAX (64 * 1024)
/* Each handler's reads go end to end into a slab of this size (budget.h): a
 * read is offered the slab's room only when a whole READ_MAX (or the
 * socket's credit, if less) fits, so a slab is retired more than half used. */
#define SLAB_SIZE (2 * READ_MAX + 256)
/* What a queued write costs besides its bytes (the request, the ZeroMQ
 * message it keeps alive), counted against --max-memory. */
#define WRITE_OVERHEAD (sizeof(ncd_wreq) + 64)

/* One queued write: the ZeroMQ payload frame (or, for a pipe inside netcore,
 * the buffer its source was read into) stays alive until the kernel has the
 * bytes, so they are never copied. Recycled through a free list. */
typedef struct ncd_wreq {
  uv_write_t req;
  zmq_msg_t payload;
  char *buf;            /* piped: a read buffer (malloc, READ_MAX) instead of payload */
  size_t buf_len;
  ncc_list link;        /* in ncd_socket.pending while connecting */
  size_t offset;        /* bytes already written by try_write */
  uint64_t fd_socket_id;
  uint32_t counts;      /* Write commands it completes: 1, 0 for End's payload, k for a
                           previous netcore's unsent bytes of k writes (takeover) */
  unsigned is_end : 1;  /* an End marker queued while connecting */
  unsigned ack_now : 1; /* acknowledge promptly on completion (lazy acks) */
  unsigned piped : 1;   /* moved by a pipe (pipe.h): never acknowledged */
  struct ncd_wreq *next_free;
} ncd_wreq;

static ncd_wreq *free_wreqs;
static size_t nfree_wreqs;
static uint64_t total_queued;

static void start_shutdown(ncd_socket *s);
static void unpend(ncd_socket *s, ncd_wreq *w);
static void try_next_address(ncd_socket *s);
static int write_allowed(ncd_socket *s, size_t len);
static void submit(ncd_socket *s, struct ncd_wreq *w);

static size_t wreq_size(ncd_wreq *w) { return w->buf ? w->buf_len : zmq_msg_size(&w->payload); }
static char *wreq_data(ncd_wreq *w) { return w->buf ? w->buf : zmq_msg_data(&w->payload); }

static ncd_wreq *wreq_new(void) {
  ncd_wreq *w = free_wreqs;
  if (w) {
    free_wreqs = w->next_free;
    nfree_wreqs--;
  } else if (!(w = malloc(sizeof *w))) {
    return NULL;
  }
  memset(w, 0, sizeof *w);
  zmq_msg_init(&w->payload);
  ncc_list_init(&w->link);
  return w;
}

/* A piped read buffer cut to the len bytes it holds (the same one if realloc
 * cannot). */
static char *shrink(char *buf, size_t len) {
  char *p = realloc(buf, len);
  return p ? p : buf;
}

static void wreq_free(ncd_wreq *w) {
  zmq_msg_close(&w->payload);
  free(w->buf);
  if (nfree_wreqs < 1024) {
    w->next_free = free_wreqs;
    free_wreqs = w;
    nfree_wreqs++;
  } else {
    free(w);
  }
}

void ncd_socket_emit(ncd_socket *s, ncc_event *ev, zmq_msg_t *payload) {
  ev->seq = ++s->seq;
  ev->socket_id = s->id;
  /* Lazy acks ride along with whatever the socket says next (PROTOCOL.md 7). */
  if (s->owner->lazy_acks && ev->kind != NCC_EV_WRITE_ACK && (s->ack_writes || s->ack_bytes)) {
    ev->has_ack = 1;
    ev->ack_writes = s->ack_writes;
    ev->ack_bytes = s->ack_bytes;
    ev->ack_bytes_written = s->bytes_written;
    ev->ack_queued_bytes = s->queued_bytes;
    s->ack_writes = 0;
    s->ack_bytes = 0;
    ncc_list_remove(&s->dirty_link);
  }
  ncd_router_send(s->owner, ev, payload);
}

static void send_ack(ncd_socket *s) {
  if (!s->ack_writes && !s->ack_bytes) return;
  ncc_event ev = {.kind = NCC_EV_WRITE_ACK,
                  .count = s->ack_writes,
                  .bytes = s->ack_bytes,
                  .bytes_written = s->bytes_written,
                  .queued_bytes = s->queued_bytes};
  s->ack_writes = 0;
  s->ack_bytes = 0;
  ncc_list_remove(&s->dirty_link);
  ncd_socket_emit(s, &ev, NULL);
}

void ncd_socket_flush_acks(void) {
  while (!ncc_list_empty(&ncd.dirty))
    send_ack(ncc_container_of(ncd.dirty.next, ncd_socket, dirty_link));
}

uint64_t ncd_socket_total_queued(void) { return total_queued; }

/* Notes completed writes; prompt ones (or all, without lazy acks) are sent at
 * the end of this loop turn. */
static void ack(ncd_socket *s, uint32_t writes, uint64_t bytes, int prompt) {
  s->writes_out -= writes < s->writes_out ? writes : s->writes_out;
  /* A previous owner's writes complete first (they were queued first); their
   * acks are nobody's now (handoff.h). */
  if (s->skip_writes || s->skip_bytes) {
    uint32_t w = writes < s->skip_writes ? writes : s->skip_writes;
    uint64_t b = bytes < s->skip_bytes ? bytes : s->skip_bytes;
    s->skip_writes -= w, writes -= w;
    s->skip_bytes -= b, bytes -= b;
    if (!writes && !bytes) return;
  }
  s->ack_writes += writes;
  s->ack_bytes += bytes;
  s->acked_writes_total += writes;
  s->acked_bytes_total += bytes;
  /* A parked owner gets nothing: its acks wait (for a resumed session,
   * PROTOCOL.md 16.1) and never use up a seq. */
  if ((prompt || !s->owner->lazy_acks) && !s->owner->gone && ncc_list_empty(&s->dirty_link))
    ncc_list_push(&ncd.dirty, &s->dirty_link);
}

/* ------------------------------------------------------------ idle timeout */

static void timer_cb(uv_timer_t *t) {
  ncd_socket *s = t->data;
  uint64_t idle = uv_now(ncd.loop) - s->last_active;
  if (idle < s->timeout_ms) {
    ncd_uv_check(uv_timer_start(t, timer_cb, s->timeout_ms - idle, 0), "restart an idle timer");
    return; /* refused only while the timer closes: the socket is going */
  }
  /* Fires once per idle period; the next activity re-arms it (Node's rule). */
  ncc_event ev = {.kind = NCC_EV_TIMEOUT};
  ncd_socket_emit(s, &ev, NULL);
}

/* Reads and writes count as activity. Restarting a libuv timer on every read
 * would cost more than the read, so only the time is noted; the timer checks it. */
static void activity(ncd_socket *s) {
  if (!s->timeout_ms) return;
  s->last_active = uv_now(ncd.loop);
  if (!uv_is_active((uv_handle_t *)s->timer))
    ncd_uv_check(uv_timer_start(s->timer, timer_cb, s->timeout_ms, 0), "restart an idle timer");
}

int ncd_socket_set_timeout(ncd_socket *s, uint32_t msecs) {
  s->timeout_ms = msecs;
  if (msecs == 0) {
    if (s->timer) uv_timer_stop(s->timer);
    return 0;
  }
  int rc;
  if (!s->timer) {
    if (!(s->timer = malloc(sizeof *s->timer))) return NCD_ENOMEM;
    if ((rc = ncd_uv_check(uv_timer_init(ncd.loop, s->timer), "make an idle timer")) != 0) {
      free(s->timer);
      s->timer = NULL;
      s->timeout_ms = 0;
      return rc;
    }
    s->timer->data = s;
  }
  s->last_active = uv_now(ncd.loop);
  if ((rc = ncd_uv_check(uv_timer_start(s->timer, timer_cb, msecs, 0), "start an idle timer"))) {
    s->timeout_ms = 0;
    return rc;
  }
  return 0;
}

/* ---------------------------------------------------------------- lifetime */

/* Close callback of a socket that never got registered. */
static void free_unregistered(uv_handle_t *handle) { free(handle->data); }

static ncd_socket *socket_new(ncd_handler *owner, uint64_t id, int is_unix) {
  ncd_socket *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->id = id;
  s->owner = owner;
  s->is_unix = is_unix;
  s->credit = owner->credit_window;
  ncc_list_init(&s->owner_link);
  ncc_list_init(&s->dirty_link);
  ncc_list_init(&s->pending);
  ncc_list_init(&s->inflight);
  ncc_list_init(&s->piped_in);
  int rc = is_unix ? uv_pipe_init(ncd.loop, &s->h.pipe, 1) : uv_tcp_init(ncd.loop, &s->h.tcp);
  if (ncd_uv_check(rc, "make a socket handle") != 0) {
    free(s);
    return NULL;
  }
  s->h.handle.data = s;
  if (ncc_idmap_put(&ncd.sockets, id, s) != 0) {
    uv_close(&s->h.handle, free_unregistered);
    return NULL;
  }
  ncc_list_push(&owner->sockets, &s->owner_link);
  ncd.nsockets++;
  owner->nsockets++;
  return s;
}

/* A socket with this id around fd, which it owns from here on (closed on
 * failure). */
static ncd_socket *socket_open_fd(ncd_handler *owner, uint64_t id, int fd, int is_unix) {
  ncd_socket *s = socket_new(owner, id, is_unix);
  if (!s) {
    close(fd);
    return NULL;
  }
  int rc = is_unix ? uv_pipe_open(&s->h.pipe, fd) : uv_tcp_open(&s->h.tcp, fd);
  if (rc != 0) {
    close(fd);
    ncd_socket_destroy(s, 0);
    return NULL;
  }
  return s;
}

ncd_socket *ncd_socket_adopt(ncd_handler *owner, int fd, int is_unix) {
  return socket_open_fd(owner, ++ncd.next_socket_id, fd, is_unix);
}

static void timer_close_cb(uv_handle_t *h) { free(h); }

static void close_cb(uv_handle_t *handle) {
  ncd_socket *s = handle->data;
  if (s->notify && !s->owner->gone) {
    send_ack(s);
    ncc_event ev = {.kind = NCC_EV_CLOSED,
                    .flag = s->had_error,
                    .bytes_read = s->bytes_read,
                    .bytes_written = s->bytes_written};
    ncd_socket_emit(s, &ev, NULL);
  }
  ncc_list_remove(&s->dirty_link);
  ncc_list_remove(&s->owner_link);
  free(s->kept);
  if (s->ai_list) uv_freeaddrinfo(s->ai_list);
  free(s->target);
  ncd.nsockets--;
  s->owner->nsockets--;
  if (s->server) ncd_server_connection_closed(s->server);
  free(s);
}

void ncd_socket_destroy(ncd_socket *s, int notify) {
  if (s->closing) return;
  s->closing = 1;
  s->notify = notify;
  ncd_pipe_socket_closing(s); /* Unpiped before Closed (PROTOCOL.md 17) */
  ncd_metrics_socket_closed(s);
  ncc_idmap_del(&ncd.sockets, s->id);
  if (s->gai) {
    /* The resolver callback frees the request; it must not find the socket. */
    s->gai->data = NULL;
    uv_cancel((uv_req_t *)s->gai);
    s->gai = NULL;
  }
  while (!ncc_list_empty(&s->pending)) {
    ncd_wreq *w = ncc_container_of(s->pending.next, ncd_wreq, link);
    ncc_list_remove(&w->link);
    unpend(s, w);
    wreq_free(w);
  }
  if (s->timer) {
    uv_close((uv_handle_t *)s->timer, timer_close_cb);
    s->timer = NULL;
  }
  if (!s->reconnecting) uv_close(&s->h.handle, close_cb);
}

void ncd_socket_cut(ncd_socket *s) {
  if (s->closing) return;
  if (s->queued_bytes || s->pending_bytes) {
    s->had_error = 1;
    uv_os_fd_t fd;
    /* SO_LINGER with a zero timeout makes close(2) send RST. */
    struct linger now = {.l_onoff = 1, .l_linger = 0};
    if (!s->is_unix && uv_fileno(&s->h.handle, &fd) == 0)
      setsockopt(fd, SOL_SOCKET, SO_LINGER, &now, sizeof now);
  }
  ncd_socket_destroy(s, 1);
}

/* Why err happened, in words, for Node's message form. */
static void explain(const ncd_socket *s, int err, char *out, size_t cap) {
  if (err == NCD_ENOBUFS && s->over_memory)
    snprintf(out, cap, "netcore's write queues together are at their limit of %llu bytes",
             (unsigned long long)ncd.cfg.max_memory);
  else if (err == NCD_ENOBUFS)
    snprintf(out, cap, "write queue over its limit of %u bytes", ncd.cfg.max_write_queue);
  else if (err == NCD_EPIPE && s->ended) snprintf(out, cap, "write after end");
  else if (err == NCD_EMFILE && s->over_handler_limit)
    snprintf(out, cap, "this handler already owns its limit of %u sockets",
             s->owner->max_sockets);
  else snprintf(out, cap, "%s", ncd_err_message(err));
}

void ncd_socket_fail(ncd_socket *s, int err, const char *syscall) {
  if (s->closing) return;
  ncd_pipe_socket_closing(s); /* Unpiped before SocketError (PROTOCOL.md 17) */
  s->had_error = 1;
  s->close_code = ncd_err_name(err);
  send_ack(s);
  /* Node's form: "connect ECONNREFUSED 127.0.0.1:1", "write EPIPE (...)". */
  char msg[400], why[200];
  if (s->target && !s->over_handler_limit)
    snprintf(msg, sizeof msg, "%s %s %s", syscall, ncd_err_name(err), s->target);
  else {
    explain(s, err, why, sizeof why);
    snprintf(msg, sizeof msg, "%s %s (%s)", syscall, ncd_err_name(err), why);
  }
  ncc_event ev = {.kind = NCC_EV_SOCKET_ERROR, .code = ncd_err_name(err), .message = msg};
  ncd_socket_emit(s, &ev, NULL);
  ncd_debug("socket %llu: %s", (unsigned long long)s->id, msg);
  ncd_socket_destroy(s, 1);
}

/* Both directions are finished: close without error. */
static void maybe_finish(ncd_socket *s) {
  if (s->eof && s->shutdown_done && !s->closing) ncd_socket_destroy(s, 1);
}

/* ----------------------------------------------------------------- reading */

/* The read buffer of the next piped read (malloc, READ_MAX): it becomes the
 * destination's write request (pipe_read), or comes back here when the
 * kernel took the write at once. Loop thread only. */
static char *spare;

/* The read lands in the owner's slab, where read_cb makes a frame of it in
 * place: no copy, and ZeroMQ's record of the frame the only allocation. */
static void alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
  ncd_socket *s = handle->data;
  if (s->pipe) { /* a pipe inside netcore reads into a buffer that becomes a write */
    if (!spare) spare = malloc(READ_MAX);
    size_t n = ncd_pipe_read_room(s, READ_MAX);
    *buf = uv_buf_init(spare, spare ? (unsigned)n : 0);
    return;
  }
  ncd_handler *h = s->owner;
  size_t want = s->credit < READ_MAX ? s->credit : READ_MAX, room = 0;
  char *at = h->slab ? ncd_slab_room(h->slab, &room) : NULL;
  if (room < want) {
    ncd_slab_drop(h->slab);
    h->slab = ncd_slab_new(h->tally, SLAB_SIZE);
    at = h->slab ? ncd_slab_room(h->slab, &room) : NULL;
  }
  *buf = uv_buf_init(at, at ? (unsigned)(want < room ? want : room) : 0);
}

/* fds that arrived with data on a UNIX socket become sockets of the same
 * owner, announced before the data (PROTOCOL.md 7). Past --max-connections,
 * or inside the fd reserve, they are closed unseen, like accepted
 * connections past the limit (the kernel itself drops what does not fit
 * under RLIMIT_NOFILE). */
static void take_passed_fds(ncd_socket *s) {
  while (uv_pipe_pending_count(&s->h.pipe) > 0) {
    uv_handle_type type = uv_pipe_pending_type(&s->h.pipe);
    int is_unix = type != UV_TCP;
    int over = ncd.nsockets >= ncd.cfg.max_connections;
    ncd_socket *n = socket_new(s->owner, ++ncd.next_socket_id, is_unix);
    if (!n) break;
    if (uv_accept(&s->h.stream, &n->h.stream) != 0 || (type != UV_TCP && type != UV_NAMED_PIPE)) {
      ncd_socket_destroy(n, 0);
      continue;
    }
    uv_os_fd_t fd = -1;
    uv_fileno(&n->h.handle, &fd);
    if (over || ncd_fdlimit_in_reserve(fd)) {
      ncd_socket_destroy(n, 0);
      ncd_fdlimit_refused(NCD_FD_PASSED);
      continue;
    }
    ncc_addr local, remote;
    ncd_addr_of_fd(fd, 0, &local);
    ncd_addr_of_fd(fd, 1, &remote);
    ncc_event ev = {.kind = NCC_EV_FD, .new_socket_id = n->id, .local = &local, .remote = &remote};
    ncd_socket_emit(s, &ev, NULL);
    ncd_metrics_socket_opened(n, "received");
    ncd_socket_update_reading(n);
  }
}

/* Whether s could be adopted if its owner went (handoff.h): accepted by a
 * server of a group listener, or of a handler with a service name. Only then
 * is its input kept until credited. */
static int keeps_input(const ncd_socket *s) {
  const ncd_server *srv = s->server;
  if (s->owner->resumable) return 1; /* replayed after a takeover (PROTOCOL.md 16.1) */
  return srv && !srv->closing && srv->listener && (srv->listener->group[0] || s->owner->service[0]);
}

/* The smallest buffer of kept input, kept while empty (see unkeep). */
#define KEPT_MIN 512

static int keep(ncd_socket *s, const char *data, size_t n) {
  if (s->kept_off + s->kept_len + n > s->kept_cap) {
    if (s->kept_off) memmove(s->kept, s->kept + s->kept_off, s->kept_len);
    s->kept_off = 0;
    if (s->kept_len + n > s->kept_cap) {
      size_t cap = s->kept_cap ? s->kept_cap : KEPT_MIN;
      while (cap < s->kept_len + n) cap *= 2;
      char *p = realloc(s->kept, cap);
      if (!p) return NCD_ENOMEM;
      s->kept = p;
      s->kept_cap = cap;
    }
  }
  memcpy(s->kept + s->kept_off + s->kept_len, data, n);
  s->kept_len += n;
  return 0;
}

/* The owner consumed n more bytes: they will never be replayed. */
static void unkeep(ncd_socket *s, size_t n) {
  if (n > s->kept_len) n = s->kept_len;
  s->kept_off += n;
  s->kept_len -= n;
  if (s->kept_len == 0) {
    s->kept_off = 0;
    /* All consumed: the memory goes back but a small buffer's, so that an
     * idle connection holds at most KEPT_MIN for its input (it held 4 KiB
     * from its first read on, and a burst's buffer until the next one). */
    if (s->kept_cap > KEPT_MIN) {
      free(s->kept);
      s->kept = NULL;
      s->kept_cap = 0;
    }
  }
}

/* Sends the nread bytes just read into buf (the owner's slab) to the owner
 * as Data, under its credit. */
static void deliver(ncd_socket *s, const uv_buf_t *buf, ssize_t nread) {
  if (keeps_input(s) && keep(s, buf->base, (size_t)nread) != 0) {
    ncd_socket_fail(s, NCD_ENOMEM, "read");
    return;
  }
  /* The frame is charged to the owner's budget (budget.h) until ZeroMQ has
   * written it. */
  zmq_msg_t payload;
  int rc;
  if (spare && buf->base == spare) { /* a piped read its destination refused (pipe_read) */
    void *at = ncd_tally_frame(s->owner->tally, &payload, (size_t)nread);
    if (at) memcpy(at, buf->base, (size_t)nread);
    rc = at ? 0 : -1;
  } else { /* the read landed in the owner's slab: it becomes the frame in place */
    rc = ncd_slab_give(s->owner->slab, &payload, (size_t)nread);
  }
  if (rc != 0) {
    zmq_msg_close(&payload);
    ncd_socket_fail(s, NCD_ENOMEM, "read");
    return;
  }
  /* Only a destination failing under a pipe hands over more than the
   * credit left (pipe_read): the window then closes. */
  s->credit -= (uint32_t)nread < s->credit ? (uint32_t)nread : s->credit;
  s->data_sent += (uint64_t)nread;
  ncc_event ev = {.kind = NCC_EV_DATA};
  ncd_socket_emit(s, &ev, &payload);
  if (s->credit == 0) ncd_socket_update_reading(s);
}

/* n bytes read from piped s go to its destination's write queue in the
 * buffer they were read into (pipe.h). */
static void pipe_read(ncd_socket *s, const uv_buf_t *buf, size_t n) {
  ncd_socket *d = s->pipe->dest;
  int rc = write_allowed(d, n);
  ncd_wreq *w = rc == 0 ? wreq_new() : NULL;
  if (rc == 0 && !w) rc = NCD_ENOMEM;
  if (rc != 0) {
    /* dest cannot take them (--max-memory): it fails, its pipes stop first,
     * and the bytes reach the handler as Data after the Unpiped. */
    ncd_socket_fail(d, rc, "write");
    if (!s->closing) deliver(s, buf, (ssize_t)n);
    return;
  }
  w->buf = spare;
  w->buf_len = n;
  w->piped = 1;
  spare = NULL;
  submit(d, w);
  if (s->pipe) ncd_pipe_moved(s, n);
}

static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  ncd_socket *s = stream->data;
  if (nread > 0) {
    if (s->is_unix) take_passed_fds(s);
    s->bytes_read += (uint64_t)nread;
    activity(s);
    if (s->pipe && spare && buf->base == spare) pipe_read(s, buf, (size_t)nread);
    else deliver(s, buf, nread);
  } else if (nread == UV_EOF) {
    s->eof = 1;
    ncd_socket_update_reading(s);
    ncc_event ev = {.kind = NCC_EV_ENDED};
    ncd_socket_emit(s, &ev, NULL);
    if (s->pipe) ncd_pipe_source_ended(s);
    maybe_finish(s);
  } else if (nread == UV_ENOBUFS) {
    ncd_socket_update_reading(s);
  } else if (nread < 0) {
    ncd_socket_fail(s, (int)nread, "read");
  }
}

void ncd_socket_update_reading(ncd_socket *s) {
  int want = !s->closing && !s->connecting && !s->eof && !s->paused && !ncd.shutting_down;
  /* Piped bytes never go to the owner: only the destination's queue holds a
   * pipe back, whoever owns it and whatever it may take (pipe.h). */
  if (s->pipe) want = want && ncd_pipe_read_room(s, 1) > 0;
  else
    want = want && s->credit > 0 && !s->owner->blocked && !s->owner->over_budget &&
           !s->owner->gone;
  if (want && !s->reading) {
    int rc = uv_read_start(&s->h.stream, alloc_cb, read_cb);
    if (rc != 0) {
      ncd_socket_fail(s, rc, "read");
      return;
    }
    s->reading = 1;
  } else if (!want && s->reading) {
    uv_read_stop(&s->h.stream);
    s->reading = 0;
  }
}

void ncd_socket_pause(ncd_socket *s) {
  s->paused = 1;
  ncd_socket_update_reading(s);
}

void ncd_socket_resume(ncd_socket *s) {
  s->paused = 0;
  ncd_socket_update_reading(s);
}

void ncd_socket_credit(ncd_socket *s, uint32_t bytes) {
  /* A grant never lifts a socket's window past --max-credit (PROTOCOL.md 6). */
  unkeep(s, bytes); /* credit says "consumed" (PROTOCOL.md 13) */
  uint64_t c = (uint64_t)s->credit + bytes;
  s->credit = c > ncd.cfg.max_credit ? ncd.cfg.max_credit : (uint32_t)c;
  s->credited += bytes;
  ncd_socket_update_reading(s);
  if (s->pipe) ncd_pipe_credited(s);
}

/* ----------------------------------------------------------------- writing */

static void write_cb(uv_write_t *req, int status) {
  ncd_wreq *w = ncc_container_of(req, ncd_wreq, req);
  ncd_socket *s = req->handle->data;
  size_t len = wreq_size(w) - w->offset;
  unsigned counts = w->counts, prompt = w->ack_now, piped = w->piped;
  ncc_list_remove(&w->link);
  s->queued_bytes -= len;
  if (piped) s->piped_queued -= len;
  total_queued -= len;
  ncd.write_memory -= len + WRITE_OVERHEAD;
  wreq_free(w);
  if (status == UV_ECANCELED || s->closing) return;
  if (status < 0) {
    ncd_socket_fail(s, status, "write");
    return;
  }
  s->bytes_written += len;
  if (!piped) ack(s, counts, len, prompt);
  activity(s);
  if (s->queued_bytes == 0 && s->pending_bytes == 0) ncd_pipe_drained(s);
}

/* Hands w to the kernel: at once if nothing is queued ahead of it, else behind
 * the queue. Takes w. */
static void do_write(ncd_socket *s, ncd_wreq *w) {
  size_t size = wreq_size(w);
  uv_buf_t buf = uv_buf_init(wreq_data(w), (unsigned)size);
  int rc;
  if (w->fd_socket_id) {
    ncd_socket *fs = ncc_idmap_get(&ncd.sockets, w->fd_socket_id);
    if (!fs || fs->owner != s->owner) {
      wreq_free(w);
      ncd_socket_fail(s, NCD_EBADF, "write"); /* another handler's: as unknown */
      return;
    }
    rc = uv_write2(&w->req, &s->h.stream, &buf, 1, &fs->h.stream, write_cb);
  } else {
    if (s->queued_bytes == 0) {
      int n = uv_try_write(&s->h.stream, &buf, 1);
      if (n == (int)size) {
        s->bytes_written += size;
        if (!w->piped) ack(s, w->counts, size, w->ack_now);
        activity(s);
        if (w->buf && !spare) { /* the kernel took a piped read at once: read into it again */
          spare = w->buf;
          w->buf = NULL;
        }
        wreq_free(w);
        return;
      }
      if (n > 0) {
        w->offset = (size_t)n;
        s->bytes_written += (uint64_t)n;
        /* An ack_now write that has to queue says so at once (queued_bytes):
         * the library's write() and 'drain' follow netcore's queue. */
        if (!w->piped) ack(s, 0, (uint64_t)n, w->ack_now);
      } else if (n != UV_EAGAIN && n != UV_ENOSYS) {
        wreq_free(w);
        ncd_socket_fail(s, n, "write");
        return;
      }
    }
    /* A piped read buffer waits in the queue at its length, not READ_MAX. */
    if (w->buf && w->buf_len < READ_MAX) w->buf = shrink(w->buf, w->buf_len);
    buf = uv_buf_init(wreq_data(w) + w->offset, (unsigned)(size - w->offset));
    rc = uv_write(&w->req, &s->h.stream, &buf, 1, write_cb);
  }
  if (rc != 0) {
    wreq_free(w);
    ncd_socket_fail(s, rc, "write");
    return;
  }
  ncc_list_push(&s->inflight, &w->link);
  s->queued_bytes += buf.len;
  if (w->piped) s->piped_queued += buf.len;
  total_queued += buf.len;
  ncd.write_memory += buf.len + WRITE_OVERHEAD;
}

/* Queues (while connecting) or writes w. Takes w. */
static void submit(ncd_socket *s, ncd_wreq *w) {
  if (s->connecting) {
    size_t len = wreq_size(w);
    ncc_list_push(&s->pending, &w->link);
    s->pending_bytes += len;
    if (w->piped) s->piped_queued += len;
    ncd.write_memory += len + WRITE_OVERHEAD;
  } else if (w->is_end) {
    wreq_free(w);
    start_shutdown(s);
  } else do_write(s, w);
}

/* w leaves the connecting socket's queue (to be written, or dropped). */
static void unpend(ncd_socket *s, ncd_wreq *w) {
  size_t len = wreq_size(w);
  s->pending_bytes -= len;
  if (w->piped) s->piped_queued -= len;
  ncd.write_memory -= len + WRITE_OVERHEAD;
}

/* Checks a write of len bytes against the state, the socket's queue limit and
 * netcore's write memory. */
static int write_allowed(ncd_socket *s, size_t len) {
  if (s->ended) return NCD_EPIPE;
  if (s->queued_bytes + s->pending_bytes + len > ncd.cfg.max_write_queue) return NCD_ENOBUFS;
  if (ncd.write_memory + len + WRITE_OVERHEAD > ncd.cfg.max_memory) {
    s->over_memory = 1;
    return NCD_ENOBUFS;
  }
  return 0;
}

void ncd_socket_write(ncd_socket *s, zmq_msg_t *payload, uint64_t fd_socket_id, int ack_now) {
  size_t len = zmq_msg_size(payload);
  int rc = write_allowed(s, len);
  if (rc == 0 && fd_socket_id && (!s->is_unix || len == 0)) rc = NCD_EINVAL;
  ncd_wreq *w = rc == 0 ? wreq_new() : NULL;
  if (rc == 0 && !w) rc = NCD_ENOMEM;
  if (rc != 0) {
    zmq_msg_close(payload);
    ncd_socket_fail(s, rc, "write");
    return;
  }
  zmq_msg_move(&w->payload, payload);
  s->writes_out++;
  s->writes_in++;
  w->counts = 1;
  w->ack_now = ack_now != 0;
  w->fd_socket_id = fd_socket_id;
  submit(s, w);
}

static void shutdown_cb(uv_shutdown_t *req, int status) {
  ncd_socket *s = req->handle->data;
  if (status == UV_ECANCELED || s->closing) return;
  if (status < 0) {
    ncd_socket_fail(s, status, "shutdown");
    return;
  }
  s->shutdown_done = 1;
  if (!s->end_uncounted) ack(s, 1, 0, s->end_ack_now);
  maybe_finish(s);
}

static void start_shutdown(ncd_socket *s) {
  int rc = uv_shutdown(&s->shutdown_req, &s->h.stream, shutdown_cb);
  if (rc != 0) ncd_socket_fail(s, rc, "shutdown");
}

void ncd_socket_end(ncd_socket *s, zmq_msg_t *payload, int ack_now) {
  size_t len = payload ? zmq_msg_size(payload) : 0;
  s->writes_out++;
  s->writes_in++;
  if (s->ended) {
    /* Node: a second end() does nothing. It still completes as a write. */
    if (payload) zmq_msg_close(payload);
    ack(s, 1, 0, ack_now);
    return;
  }
  int rc = len ? write_allowed(s, len) : 0;
  if (rc != 0) {
    zmq_msg_close(payload);
    ncd_socket_fail(s, rc, "write");
    return;
  }
  if (len) {
    ncd_wreq *w = wreq_new();
    if (!w) {
      zmq_msg_close(payload);
      ncd_socket_fail(s, NCD_ENOMEM, "write");
      return;
    }
    zmq_msg_move(&w->payload, payload);
    submit(s, w);
    if (s->closing) return;
  } else if (payload) {
    zmq_msg_close(payload);
  }
  s->ended = 1;
  s->end_ack_now = ack_now != 0;
  ncd_pipe_dest_ended(s); /* Node's pipe stops at the destination's 'finish' */
  ncd_wreq *end = wreq_new();
  if (!end) {
    ncd_socket_fail(s, NCD_ENOMEM, "end");
    return;
  }
  end->is_end = 1;
  submit(s, end);
}

void ncd_socket_end_piped(ncd_socket *s) {
  if (s->ended || s->closing) return;
  s->ended = 1;
  s->end_uncounted = 1;
  ncd_pipe_dest_ended(s);
  ncd_wreq *end = wreq_new();
  if (!end) {
    ncd_socket_fail(s, NCD_ENOMEM, "end");
    return;
  }
  end->is_end = 1;
  submit(s, end);
}

/* ------------------------------------------------------------- connecting */

/* Connected, with the socket's two addresses, to its owner. */
static void emit_connected(ncd_socket *s) {
  uv_os_fd_t fd = -1;
  uv_fileno(&s->h.handle, &fd);
  ncc_addr local, remote;
  ncd_addr_of_fd(fd, 0, &local);
  ncd_addr_of_fd(fd, 1, &remote);
  ncc_event ev = {.kind = NCC_EV_CONNECTED, .local = &local, .remote = &remote};
  ncd_socket_emit(s, &ev, NULL);
}

static void connected(ncd_socket *s) {
  s->connecting = 0;
  free(s->target); /* only connect errors name the target */
  s->target = NULL;
  emit_connected(s);
  ncd_metrics_socket_opened(s, "connected");
  while (!ncc_list_empty(&s->pending) && !s->closing) {
    ncd_wreq *w = ncc_container_of(s->pending.next, ncd_wreq, link);
    ncc_list_remove(&w->link);
    unpend(s, w);
    submit(s, w);
  }
  if (s->closing) return;
  ncd_socket_update_reading(s);
  if (!s->closing && s->queued_bytes == 0 && s->pending_bytes == 0) ncd_pipe_drained(s);
}

static void reconnect_close_cb(uv_handle_t *handle);

static void connect_cb(uv_connect_t *req, int status) {
  ncd_socket *s = req->handle->data;
  if (status == UV_ECANCELED || s->closing) return;
  if (status == 0) {
    connected(s);
  } else if (s->ai_next) {
    /* Another address of the name is left: a fresh handle tries it, as Node's
     * autoSelectFamily does. The socket keeps its id and queued writes. */
    s->reconnecting = 1;
    uv_close(&s->h.handle, reconnect_close_cb);
  } else {
    ncd_socket_fail(s, status, "connect");
  }
}

/* The policy (policy.h) refused this Connect: EACCES, the message naming
 * the rule after the target. */
static int policy_denied(ncd_socket *s, const char *why) {
  char *target = malloc(strlen(s->target ? s->target : "") + strlen(why) + 16);
  if (target) {
    sprintf(target, "%s (policy: %s)", s->target ? s->target : "", why);
    free(s->target);
    s->target = target;
  }
  ncd_debug("handler %s (%s): connect denied by the policy: %s", s->owner->name,
            s->owner->principal, why);
  return NCD_EACCES;
}

/* Decides a Connect before anything is resolved or connected. A host name
 * that no rule allows as given may still reach an allowed address: then
 * each address it resolves to is checked (try_next_address). */
static int check_policy(ncd_socket *s, const ncc_cmd *cmd, const char *host) {
  char why[600];
  const ncd_policy_entry *e = s->owner->policy;
  if (cmd->ep.kind == NCC_EP_PATH)
    return ncd_policy_unix(e, 1, cmd->ep.path, why, sizeof why) == NCD_POLICY_ALLOW
               ? 0
               : policy_denied(s, why);
  struct sockaddr_storage ss;
  socklen_t len;
  uint32_t port = (uint32_t)cmd->ep.port;
  int literal = ncd_addr_parse_ip(host, port, &ss, &len) == 0;
  int verdict = ncd_policy_tcp(e, 1, literal ? NULL : host, literal ? (struct sockaddr *)&ss : NULL,
                               port, why, sizeof why);
  if (verdict == NCD_POLICY_DENY) return policy_denied(s, why);
  s->check_policy = verdict == NCD_POLICY_RESOLVE;
  return 0;
}

/* Connects to the next resolved address that libuv accepts (and, for a
 * name, that the policy allows). */
static void try_next_address(ncd_socket *s) {
  int rc = UV_EAI_NONAME, denied = 0;
  char why[600] = "", host[300];
  snprintf(host, sizeof host, "%s", s->target ? s->target : "");
  if (strrchr(host, ':')) *strrchr(host, ':') = '\0'; /* a name: "name:port" */
  while (s->ai_next) {
    struct addrinfo *ai = s->ai_next;
    s->ai_next = ai->ai_next;
    if (ai->ai_family == AF_INET) ((struct sockaddr_in *)ai->ai_addr)->sin_port = htons((uint16_t)s->connect_port);
    else if (ai->ai_family == AF_INET6) ((struct sockaddr_in6 *)ai->ai_addr)->sin6_port = htons((uint16_t)s->connect_port);
    else continue;
    /* The first denial's message is the one kept. */
    if (s->check_policy &&
        ncd_policy_tcp(s->owner->policy, 1, host, ai->ai_addr, s->connect_port, why,
                       denied ? 0 : sizeof why) != NCD_POLICY_ALLOW) {
      denied = 1;
      continue;
    }
    rc = uv_tcp_connect(&s->connect_req, &s->h.tcp, ai->ai_addr, connect_cb);
    if (rc == 0) return;
  }
  if (denied && rc == UV_EAI_NONAME) rc = policy_denied(s, why);
  ncd_socket_fail(s, rc, "connect");
}

static void reconnect_close_cb(uv_handle_t *handle) {
  ncd_socket *s = handle->data;
  s->reconnecting = 0;
  if (s->closing) { /* destroyed meanwhile: finish that close now */
    close_cb(handle);
    return;
  }
  int rc = ncd_uv_check(uv_tcp_init(ncd.loop, &s->h.tcp), "make a socket for the next address");
  if (rc != 0) {
    s->reconnecting = 1; /* the handle is closed already: destroy must not close it again */
    ncd_socket_fail(s, rc, "connect");
    close_cb(handle);
    return;
  }
  s->h.handle.data = s;
  try_next_address(s);
}

static void getaddrinfo_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  ncd_socket *s = req->data;
  free(req);
  if (!s) { /* destroyed while resolving */
    if (res) uv_freeaddrinfo(res);
    return;
  }
  s->gai = NULL;
  if (status < 0) {
    /* Node names just the host here: "getaddrinfo ENOTFOUND example.invalid". */
    char *colon = s->target ? strrchr(s->target, ':') : NULL;
    if (colon) *colon = '\0';
    ncd_socket_fail(s, status, "getaddrinfo");
    return;
  }
  s->ai_list = s->ai_next = res;
  try_next_address(s);
}

int ncd_socket_connect(ncd_handler *h, const ncc_cmd *cmd) {
  ncd_socket *s = socket_new(h, cmd->id, cmd->ep.kind == NCC_EP_PATH);
  if (!s) return NCD_ENOMEM;
  s->connecting = 1;
  s->allow_half_open = cmd->allow_half_open;
  char target[300];
  if (cmd->ep.kind == NCC_EP_PATH) snprintf(target, sizeof target, "%s", cmd->ep.path);
  else if (cmd->ep.kind == NCC_EP_TCP)
    snprintf(target, sizeof target, strchr(cmd->ep.host, ':') ? "[%s]:%lld" : "%s:%lld",
             *cmd->ep.host ? cmd->ep.host : "localhost", (long long)cmd->ep.port);
  else snprintf(target, sizeof target, "(no tcp endpoint or path given)");
  s->target = strdup(target);
  /* Every outcome of a Connect is an event of the socket it names (PROTOCOL.md 4). */
  int rc = 0;
  struct sockaddr_un sun;
  socklen_t len;
  if (cmd->ep.kind == NCC_EP_TCP) rc = ncd_addr_check_port(cmd->ep.port, 0);
  else if (cmd->ep.kind == NCC_EP_PATH) rc = ncd_addr_unix(cmd->ep.path, &sun, &len);
  else rc = NCD_ERR_INVALID_ARG_VALUE;
  if (rc == 0 && ncd.nsockets > ncd.cfg.max_connections) rc = NCD_EMFILE; /* counts s itself */
  if (rc == 0 && h->max_sockets && h->nsockets > h->max_sockets) {
    s->over_handler_limit = 1;
    rc = NCD_EMFILE;
  }
  const char *host = cmd->ep.kind == NCC_EP_TCP && *cmd->ep.host ? cmd->ep.host : "localhost";
  if (rc == 0) rc = check_policy(s, cmd, host);
  if (rc != 0) {
    ncd_socket_fail(s, rc, "connect");
    return 0;
  }
  if (s->is_unix) {
    uv_pipe_connect(&s->connect_req, &s->h.pipe, cmd->ep.path, connect_cb);
    return 0;
  }
  s->connect_port = (uint32_t)cmd->ep.port;
  struct sockaddr_storage ss;
  socklen_t sslen;
  if (ncd_addr_parse_ip(host, s->connect_port, &ss, &sslen) == 0) {
    rc = uv_tcp_connect(&s->connect_req, &s->h.tcp, (struct sockaddr *)&ss, connect_cb);
    if (rc != 0) ncd_socket_fail(s, rc, "connect");
    return 0;
  }
  uv_getaddrinfo_t *req = malloc(sizeof *req);
  if (!req) {
    ncd_socket_fail(s, NCD_ENOMEM, "getaddrinfo");
    return 0;
  }
  req->data = s;
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
  rc = uv_getaddrinfo(ncd.loop, req, getaddrinfo_cb, host, NULL, &hints);
  if (rc != 0) {
    free(req);
    ncd_socket_fail(s, rc, "getaddrinfo");
    return 0;
  }
  s->gai = req;
  return 0;
}

/* ---------------------------------------------------------------- options */

int ncd_socket_set_nodelay(ncd_socket *s, int enable) {
  if (s->is_unix) return 0; /* Node ignores it on pipes */
  return uv_tcp_nodelay(&s->h.tcp, enable);
}

int ncd_socket_set_keepalive(ncd_socket *s, int enable, uint32_t initial_delay_ms) {
  if (s->is_unix) return 0;
  uv_os_fd_t fd;
  int rc = uv_fileno(&s->h.handle, &fd);
  if (rc != 0) return rc;
  int on = enable ? 1 : 0;
  if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on) != 0) return uv_translate_sys_error(errno);
  if (enable && initial_delay_ms) {
    int secs = (int)((initial_delay_ms + 999) / 1000);
    if (setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &secs, sizeof secs) != 0)
      return uv_translate_sys_error(errno);
  }
  return 0;
}

/* ---------------------------------------------------------------- handoff */

/* Sends s's kept input from byte `from` on to h as Data, in frames no larger
 * than a read (adoption, PROTOCOL.md 13; resumption, 16.1). Returns 0, or -1
 * after failing s when out of memory. */
static int replay_kept(ncd_socket *s, ncd_handler *h, size_t from) {
  for (size_t at = from; at < s->kept_len && !ncd_handler_dead(h);) {
    size_t n = s->kept_len - at < READ_MAX ? s->kept_len - at : READ_MAX;
    zmq_msg_t payload;
    void *p = ncd_tally_frame(h->tally, &payload, n);
    if (!p) {
      zmq_msg_close(&payload);
      ncd_socket_fail(s, NCD_ENOMEM, "read");
      return -1;
    }
    memcpy(p, s->kept + s->kept_off + at, n);
    ncc_event data = {.kind = NCC_EV_DATA};
    ncd_socket_emit(s, &data, &payload);
    at += n;
  }
  return 0;
}

void ncd_socket_move(ncd_socket *s, ncd_server *to) {
  ncd_handler *h = to->owner;
  ncd_metrics_adopted(s->owner, h);
  ncc_list_remove(&s->owner_link);
  s->owner->nsockets--;
  s->owner = h;
  ncc_list_push(&h->sockets, &s->owner_link);
  h->nsockets++;
  s->server->connections--;
  s->server = to;
  to->connections++;
  /* Completed writes not yet acknowledged, and the acks of those still
   * queued, were the old owner's business. */
  s->ack_writes = 0;
  s->ack_bytes = 0;
  ncc_list_remove(&s->dirty_link);
  s->skip_writes = s->writes_out;
  s->skip_bytes = s->queued_bytes + s->pending_bytes - s->piped_queued; /* piped: never acked */
  /* The adopter's writes and acks count from zero (PROTOCOL.md 16.1). */
  s->writes_in = s->acked_writes_total = s->acked_bytes_total = 0;
  s->data_sent = s->kept_len; /* what the replay sends; the adopter credits from 0 */
  s->credited = 0;
  if (s->pipe) { /* Unpiped counts what moved since the adopter has it */
    s->pipe->start_at = s->kept_len;
    s->pipe->bytes = 0;
  }
  /* The adopter starts as with a new connection: flowing, no timeout, its
   * own window less what is replayed. */
  s->paused = 0;
  ncd_socket_set_timeout(s, 0);
  s->credit = h->credit_window > s->kept_len ? h->credit_window - (uint32_t)s->kept_len : 0;

  uv_os_fd_t fd = -1;
  uv_fileno(&s->h.handle, &fd);
  ncc_addr local, remote;
  ncd_addr_of_fd(fd, 0, &local);
  ncd_addr_of_fd(fd, 1, &remote);
  ncc_event ev = {.kind = NCC_EV_ADOPTED,
                  .server_id = to->id,
                  .local = &local,
                  .remote = &remote,
                  .flag = s->allow_half_open,
                  .count = to->connections,
                  .bytes_read = s->bytes_read - s->kept_len,
                  .bytes_written = s->bytes_written,
                  .queued_bytes = s->queued_bytes + s->pending_bytes, /* piped ones too */
                  .bytes = s->kept_len,
                  .write_ended = s->ended,
                  .peer_ended = s->eof,
                  .dest_socket_id = s->pipe ? s->pipe->dest->id : 0,
                  .pipe_no_end = s->pipe && s->pipe->no_end,
                  .pipe_high_water_mark = s->pipe ? s->pipe->hwm : 0};
  ncd_socket_emit(s, &ev, NULL);
  /* The replay: what the old owner was given and did not credit, exactly,
   * in frames no larger than a read. */
  if (replay_kept(s, h, 0) != 0) return;
  if (s->eof) {
    ncc_event ended = {.kind = NCC_EV_ENDED};
    ncd_socket_emit(s, &ended, NULL);
  }
  ncd_socket_update_reading(s);
}

/* --------------------------------------------------------------- takeover */

int ncd_socket_unsent(ncd_socket *s, char **out, size_t *len) {
  *out = NULL;
  *len = 0;
  /* libuv advances partly written requests in place: what is left of every
   * queued write is the last write_queue_size bytes of the queue. */
  size_t left = uv_stream_get_write_queue_size(&s->h.stream), total = 0;
  for (ncc_list *e = s->inflight.next; e != &s->inflight; e = e->next) {
    ncd_wreq *w = ncc_container_of(e, ncd_wreq, link);
    if (w->fd_socket_id) return NCD_EBUSY; /* an fd in flight cannot be shipped */
    total += wreq_size(w) - w->offset;
  }
  if (left > total) return NCD_EIO;
  if (left == 0) return 0;
  char *p = malloc(left);
  if (!p) return NCD_ENOMEM;
  size_t skip = total - left, at = 0;
  for (ncc_list *e = s->inflight.next; e != &s->inflight; e = e->next) {
    ncd_wreq *w = ncc_container_of(e, ncd_wreq, link);
    const char *data = wreq_data(w) + w->offset;
    size_t n = wreq_size(w) - w->offset;
    if (skip >= n) {
      skip -= n;
      continue;
    }
    memcpy(p + at, data + skip, n - skip);
    at += n - skip;
    skip = 0;
  }
  *out = p;
  *len = left;
  return 0;
}

ncd_socket *ncd_socket_restore(ncd_handler *owner, ncd_server *srv, uint64_t id, int fd,
                               int is_unix) {
  ncd_socket *s = socket_open_fd(owner, id, fd, is_unix);
  if (!s) return NULL;
  s->server = srv;
  if (srv) srv->connections++;
  ncd_metrics_socket_opened(s, srv ? "accepted" : "connected");
  return s;
}

int ncd_socket_restore_writes(ncd_socket *s, const char *unsent, size_t len, int end,
                              uint32_t writes) {
  /* writes == 0: a handler that cannot resume; the writes are nobody's (one
   * for the bytes, one for the FIN). Else they are the owner's, acknowledged
   * to it as they complete (PROTOCOL.md 16.1). */
  int own = writes != 0;
  uint32_t data_writes = own ? writes - (end ? 1 : 0) : 1;
  if (len) {
    ncd_wreq *w = wreq_new();
    if (!w || zmq_msg_init_size(&w->payload, len) != 0) {
      if (w) wreq_free(w);
      return NCD_ENOMEM;
    }
    memcpy(zmq_msg_data(&w->payload), unsent, len);
    w->counts = data_writes;
    s->writes_out += data_writes;
    if (!own) {
      s->skip_writes++;
      s->skip_bytes += len;
    }
    do_write(s, w);
    if (s->closing) return NCD_EIO;
  } else if (own && data_writes) {
    s->writes_out += data_writes; /* their bytes are in the kernel already */
    ack(s, data_writes, 0, 0);
  }
  if (end) {
    s->writes_out++;
    if (!own) s->skip_writes++;
    start_shutdown(s);
  }
  return 0;
}

uint64_t ncd_socket_unacked_written(ncd_socket *s) {
  size_t left = uv_stream_get_write_queue_size(&s->h.stream), total = 0;
  for (ncc_list *e = s->inflight.next; e != &s->inflight; e = e->next) {
    ncd_wreq *w = ncc_container_of(e, ncd_wreq, link);
    total += wreq_size(w) - w->offset;
  }
  return total > left ? total - left : 0;
}

void ncd_socket_restore_timeout(ncd_socket *s, uint32_t msecs, uint32_t idle_ms) {
  if (!msecs || ncd_socket_set_timeout(s, msecs) != 0) return;
  uint64_t now = uv_now(ncd.loop);
  s->last_active = idle_ms < now ? now - idle_ms : 0;
  uv_timer_stop(s->timer); /* armed when the session resumes */
}

void ncd_socket_resume_session(ncd_socket *s, const ncc_resume_socket *r) {
  ncd_handler *h = s->owner;
  /* Events lost with the old netcore are sent again below (or were only
   * acks and Data, which come again): number on from what it saw. */
  if (r->last_seq && r->last_seq < s->seq) s->seq = r->last_seq;
  /* It awaits Connected (protocol 1.4): the old netcore sent it, it was
   * lost. It comes again first, numbered on from what the handler saw. */
  if (r->connecting && !s->server && !s->connecting) {
    s->seq = r->last_seq;
    emit_connected(s);
  }
  /* Its view of the options (protocol 1.4): a command the old netcore never
   * read is applied now; one it carried out changes nothing (an unchanged
   * timeout keeps its idle period; the kernel options are set as they are). */
  if (r->has_options) {
    if (r->timeout_ms != s->timeout_ms && ncd_socket_set_timeout(s, r->timeout_ms) != 0)
      ncd_warn("socket %llu: its timeout could not be set again on resume",
               (unsigned long long)s->id);
    if (r->no_delay) ncd_socket_set_nodelay(s, r->no_delay == 2);
    if (r->keep_alive) ncd_socket_set_keepalive(s, r->keep_alive == 2, r->keep_alive_delay_ms);
  }
  /* Credit the handler gave that the old netcore never read (lost with
   * it) counts now; what it received and has not credited yet is not sent
   * again (it still holds it), nor credited. */
  uint64_t base = s->bytes_read - s->kept_len;
  uint64_t credited = r->bytes_credited < base ? base
                      : r->bytes_credited > s->bytes_read ? s->bytes_read
                                                           : r->bytes_credited;
  uint64_t received = r->bytes_received < credited ? credited
                      : r->bytes_received > s->bytes_read ? s->bytes_read
                                                           : r->bytes_received;
  if (credited > base) ncd_socket_credit(s, (uint32_t)(credited - base));
  size_t held = (size_t)(received - credited), skip = held < s->kept_len ? held : s->kept_len;
  /* Acknowledgements it has not seen: lost in flight, lazy, or completed
   * while parked. They go out first, at the end of this turn. */
  s->ack_writes = r->writes_acked < s->acked_writes_total
                      ? (uint32_t)(s->acked_writes_total - r->writes_acked) : 0;
  s->ack_bytes = r->bytes_acked < s->acked_bytes_total ? s->acked_bytes_total - r->bytes_acked : 0;
  if ((s->ack_writes || s->ack_bytes) && ncc_list_empty(&s->dirty_link))
    ncc_list_push(&ncd.dirty, &s->dirty_link);
  /* The input it never received, exactly, then Ended if it missed that. */
  if (replay_kept(s, h, skip) != 0) return;
  if (s->eof && !r->saw_end) {
    ncc_event ended = {.kind = NCC_EV_ENDED};
    ncd_socket_emit(s, &ended, NULL);
  }
  /* A pending setTimeout goes on where it was (the pause counts as idle). */
  if (s->timeout_ms && s->timer) {
    uint64_t idle = uv_now(ncd.loop) - s->last_active;
    uv_timer_start(s->timer, timer_cb, idle < s->timeout_ms ? s->timeout_ms - idle : 0, 0);
  }
  ncd_socket_update_reading(s);
}

void ncd_socket_announce(ncd_socket *s) {
  uv_os_fd_t fd = -1;
  uv_fileno(&s->h.handle, &fd);
  ncc_addr local, remote;
  ncd_addr_of_fd(fd, 0, &local);
  ncd_addr_of_fd(fd, 1, &remote);
  ncc_event ev = {.kind = NCC_EV_CONNECTION,
                  .server_id = s->server->id,
                  .local = &local,
                  .remote = &remote,
                  .flag = s->allow_half_open,
                  .count = s->server->connections};
  ncd_socket_emit(s, &ev, NULL);
  ncc_resume_socket none = {.socket_id = s->id};
  ncd_socket_resume_session(s, &none);
}
