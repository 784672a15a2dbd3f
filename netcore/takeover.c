/* takeover.c: see takeover.h.
 *
 * Wire (this process to itself across versions, not the handler protocol):
 * records of [u32 length][u8 type][body], integers little endian, strings as
 * u32 length + bytes; at most one fd rides on a record (SCM_RIGHTS).
 *   new -> old  'H' version, nbinds, binds
 *   old -> new  'S' version, next_prefix, next_socket_id, nbinds, binds
 *               'h' handler: index, prefix, principal, name, service, credit_window, lazy_acks
 *                   [resumable session (PROTOCOL.md 16.1): u8 1, token, last_id, lease_ms,
 *                   batch_events]
 *               'l' listener (+fd): index, is_unix, key, group, unlink_path, address, port, family
 *               'v' server: id, seq, handler index, listener index, allow_half_open, max_connections
 *                   [pause ms left]
 *               's' socket (+fd): id, seq, handler index, server id, is_unix, credit, bytes_read,
 *                   bytes_written, timeout_ms, flags, kept bytes, unsent bytes
 *                   [writes_in, acked writes, acked bytes, writes_out, idle ms]; server id 0
 *                   (outbound or fd-made) only for a resumable session
 *               'p' pipe inside netcore (pipe.h) between two shipped sockets: source id,
 *                   dest id, no_end, high_water_mark
 *               'E' end of state
 *               'R' refusal: reason (either side)
 *   new -> old  'A' ack
 *   old -> new  'D' done: the endpoints are free
 */
#include "takeover.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon.h"
#include "errors.h"
#include "handler.h"
#include "log.h"
#include "notify.h"
#include "pipe.h"
#include "server.h"
#include "socket.h"

#define IO_TIMEOUT_MS 5000
#define DONE_TIMEOUT_MS 10000

enum { F_PAUSED = 1, F_EOF = 2, F_ENDED = 4, F_SHUTDOWN_DONE = 8, F_HALF_OPEN = 16 };

static int listen_fd = -1;
static uv_poll_t listen_poll;
static char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];

/* ------------------------------------------------------------- records */

typedef struct {
  char *p;
  size_t len, cap, at; /* at: read position */
  int fail;
} buf_t;

static void put(buf_t *b, const void *data, size_t n) {
  if (b->fail) return;
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
      b->fail = 1;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, data, n);
  b->len += n;
}

static void put_u8(buf_t *b, uint8_t v) { put(b, &v, 1); }
static void put_u32(buf_t *b, uint32_t v) {
  uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
  put(b, x, 4);
}
static void put_u64(buf_t *b, uint64_t v) {
  put_u32(b, (uint32_t)v);
  put_u32(b, (uint32_t)(v >> 32));
}
static void put_bytes(buf_t *b, const void *data, size_t n) {
  put_u32(b, (uint32_t)n);
  put(b, data, n);
}
static void put_str(buf_t *b, const char *s) { put_bytes(b, s, strlen(s)); }

static const uint8_t *get(buf_t *b, size_t n) {
  if (b->fail || b->len - b->at < n) {
    b->fail = 1;
    return NULL;
  }
  const uint8_t *p = (const uint8_t *)b->p + b->at;
  b->at += n;
  return p;
}
static uint8_t get_u8(buf_t *b) {
  const uint8_t *p = get(b, 1);
  return p ? p[0] : 0;
}
static uint32_t get_u32(buf_t *b) {
  const uint8_t *p = get(b, 4);
  return p ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24 : 0;
}
static uint64_t get_u64(buf_t *b) {
  uint64_t lo = get_u32(b);
  return lo | (uint64_t)get_u32(b) << 32;
}
/* Bytes of a length-prefixed field, in place; *n its length. */
static const char *get_bytes(buf_t *b, size_t *n) {
  *n = get_u32(b);
  return (const char *)get(b, *n);
}
/* A string into out (cap bytes, terminated); too long is a failure. */
static void get_str(buf_t *b, char *out, size_t cap) {
  size_t n;
  const char *p = get_bytes(b, &n);
  if (!p || n >= cap) {
    b->fail = 1;
    out[0] = '\0';
    return;
  }
  memcpy(out, p, n);
  out[n] = '\0';
}

/* Sends one record of type with body b (may be NULL) and fd (-1: none). */
static int send_record(int conn, uint8_t type, const buf_t *b, int fd) {
  size_t blen = b ? b->len : 0;
  uint8_t head[5] = {(uint8_t)(blen + 1), (uint8_t)((blen + 1) >> 8), (uint8_t)((blen + 1) >> 16),
                     (uint8_t)((blen + 1) >> 24), type};
  struct iovec iov[2] = {{head, sizeof head}, {b ? b->p : NULL, blen}};
  union {
    struct cmsghdr h;
    char space[CMSG_SPACE(sizeof(int))];
  } ctl;
  struct msghdr msg = {.msg_iov = iov, .msg_iovlen = blen ? 2 : 1};
  if (fd >= 0) {
    memset(&ctl, 0, sizeof ctl);
    msg.msg_control = ctl.space;
    msg.msg_controllen = sizeof ctl.space;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
  }
  size_t total = sizeof head + blen, sent = 0;
  while (sent < total) {
    ssize_t n = sendmsg(conn, &msg, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    sent += (size_t)n;
    msg.msg_control = NULL; /* the fd went with the first bytes */
    msg.msg_controllen = 0;
    /* Skip what went out. */
    size_t skip = (size_t)n;
    while (msg.msg_iovlen && skip >= msg.msg_iov->iov_len) {
      skip -= msg.msg_iov->iov_len;
      msg.msg_iov++;
      msg.msg_iovlen--;
    }
    if (msg.msg_iovlen) {
      msg.msg_iov->iov_base = (char *)msg.msg_iov->iov_base + skip;
      msg.msg_iov->iov_len -= skip;
    }
  }
  return 0;
}

/* Reads exactly n bytes into p; an fd that arrives is kept in *fd (a second
 * one is closed). Returns 0, or -1 on EOF, timeout or error. */
static int recv_exact(int conn, void *p, size_t n, int *fd) {
  size_t got = 0;
  while (got < n) {
    union {
      struct cmsghdr h;
      char space[CMSG_SPACE(4 * sizeof(int))];
    } ctl;
    struct iovec iov = {(char *)p + got, n - got};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.space,
                         .msg_controllen = sizeof ctl.space};
    ssize_t r = recvmsg(conn, &msg, MSG_CMSG_CLOEXEC);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < k; i++) {
        int f;
        memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof f);
        if (*fd < 0) *fd = f;
        else close(f);
      }
    }
    got += (size_t)r;
  }
  return 0;
}

/* Reads one record into b (reset); *type, *fd (-1 if none). */
static int recv_record(int conn, buf_t *b, uint8_t *type, int *fd) {
  *fd = -1;
  uint8_t head[4];
  if (recv_exact(conn, head, 4, fd) != 0) return -1;
  uint32_t len = (uint32_t)head[0] | (uint32_t)head[1] << 8 | (uint32_t)head[2] << 16 |
                 (uint32_t)head[3] << 24;
  if (len == 0 || len > (1u << 30)) return -1;
  b->len = b->at = 0;
  b->fail = 0;
  if (len > b->cap) {
    char *p = realloc(b->p, len);
    if (!p) return -1;
    b->p = p;
    b->cap = len;
  }
  if (recv_exact(conn, b->p, len, fd) != 0) return -1;
  b->len = len;
  *type = get_u8(b);
  return 0;
}

static void set_timeouts(int conn, int ms) {
  struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
  setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(conn, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

static int refuse(int conn, const char *why) {
  buf_t b = {0};
  put_str(&b, why);
  int rc = b.fail ? -1 : send_record(conn, 'R', &b, -1);
  free(b.p);
  return rc;
}

/* The takeover socket's path: beside the first ipc:// endpoint with a path. */
static int takeover_path(void) {
  for (int i = 0; i < ncd.cfg.nbinds; i++) {
    const char *ep = ncd.cfg.binds[i];
    if (strncmp(ep, "ipc://", 6) != 0 || ep[6] == '\0' || ep[6] == '@' || strcmp(ep + 6, "*") == 0)
      continue;
    int n = snprintf(sock_path, sizeof sock_path, "%s.takeover", ep + 6);
    return n > 0 && (size_t)n < sizeof sock_path ? 0 : -1;
  }
  return -1;
}

static void put_binds(buf_t *b) {
  put_u32(b, (uint32_t)ncd.cfg.nbinds);
  for (int i = 0; i < ncd.cfg.nbinds; i++) put_str(b, ncd.cfg.binds[i]);
}

/* Whether b's bind list (next in b) is ours; why says the first difference. */
static int same_binds(buf_t *b, char *why, size_t cap) {
  uint32_t n = get_u32(b);
  if (b->fail) return 0;
  if (n != (uint32_t)ncd.cfg.nbinds) {
    snprintf(why, cap, "%u --bind endpoints there, %d here", n, ncd.cfg.nbinds);
    return 0;
  }
  for (uint32_t i = 0; i < n; i++) {
    char ep[512];
    get_str(b, ep, sizeof ep);
    if (b->fail) return 0;
    if (strcmp(ep, ncd.cfg.binds[i]) != 0) {
      snprintf(why, cap, "--bind %.150s there, %.150s here", ep, ncd.cfg.binds[i]);
      return 0;
    }
  }
  return 1;
}

/* ----------------------------------------------------------- old side */

/* Whether h's whole session goes (PROTOCOL.md 16.1): a live handler that
 * said Hello.resumable, or a previous netcore's such session not resumed yet. */
static int session_shipped(const ncd_handler *h) {
  return h->resumable && (!h->gone || (h->taken_over && h->parked_until));
}

static int accepted(const ncd_socket *s) {
  return s->server && !s->server->closing && s->server->listener;
}

/* Whether s goes to the new netcore: a live connection accepted by a server,
 * or any connected socket of a resumable session. */
static int shipped(const ncd_socket *s) {
  return !s->closing && !s->connecting && (accepted(s) || session_shipped(s->owner));
}

static uint32_t index_of_listener(const ncd_listener *want) {
  uint32_t i = 0;
  for (ncc_list *e = ncd.listeners.next; e != &ncd.listeners; e = e->next, i++)
    if (ncc_container_of(e, ncd_listener, link) == want) return i;
  return UINT32_MAX;
}

/* Handlers shipped: live ones and parked ones (not the ones being reaped). */
static int handler_shipped(const ncd_handler *h) { return !h->gone || h->parked_until; }

static int send_fd_of(int conn, uint8_t type, buf_t *b, uv_handle_t *handle) {
  uv_os_fd_t fd = -1;
  if (uv_fileno(handle, &fd) != 0) return -1;
  return send_record(conn, type, b, fd);
}

/* Sends the whole state; why says what failed. */
static int ship(int conn, char *why, size_t cap) {
  buf_t b = {0};
  int rc = 0;
  put_u32(&b, NCD_TAKEOVER_VERSION);
  put_u32(&b, ncd.next_prefix);
  put_u64(&b, ncd.next_socket_id);
  put_binds(&b);
  if (send_record(conn, 'S', &b, -1) != 0) goto io;

  uint32_t hi = 0;
  for (ncc_list *e = ncd.handlers.next; e != &ncd.handlers; e = e->next, hi++) {
    ncd_handler *h = ncc_container_of(e, ncd_handler, link);
    if (!handler_shipped(h)) continue;
    b.len = 0;
    put_u32(&b, hi);
    put_u32(&b, h->prefix);
    put_str(&b, h->principal);
    put_str(&b, h->name);
    put_str(&b, h->service);
    put_u32(&b, h->credit_window);
    put_u8(&b, (uint8_t)h->lazy_acks);
    if (session_shipped(h)) {
      put_u8(&b, 1);
      put_bytes(&b, h->session_token, sizeof h->session_token);
      put_u64(&b, h->last_id);
      put_u32(&b, h->lease_ms);
      put_u8(&b, (uint8_t)h->batch_events);
    }
    if (b.fail || send_record(conn, 'h', &b, -1) != 0) goto io;
  }
  uint32_t li = 0;
  for (ncc_list *e = ncd.listeners.next; e != &ncd.listeners; e = e->next, li++) {
    ncd_listener *l = ncc_container_of(e, ncd_listener, link);
    b.len = 0;
    put_u32(&b, li);
    put_u8(&b, (uint8_t)l->is_unix);
    put_str(&b, l->key);
    put_str(&b, l->group);
    put_str(&b, l->unlink_path);
    put_str(&b, l->address.address);
    put_u32(&b, l->address.port);
    put_u32(&b, (uint32_t)l->address.family);
    if (b.fail || send_record(conn, 'l', &b, l->fd) != 0) goto io;
  }
  hi = 0;
  for (ncc_list *e = ncd.handlers.next; e != &ncd.handlers; e = e->next, hi++) {
    ncd_handler *h = ncc_container_of(e, ncd_handler, link);
    if (!handler_shipped(h)) continue;
    for (ncc_list *f = h->servers.next; f != &h->servers; f = f->next) {
      ncd_server *srv = ncc_container_of(f, ncd_server, owner_link);
      if (srv->closing || !srv->listener) continue;
      b.len = 0;
      put_u64(&b, srv->id);
      put_u64(&b, srv->seq);
      put_u32(&b, hi);
      put_u32(&b, index_of_listener(srv->listener));
      put_u8(&b, (uint8_t)srv->allow_half_open);
      put_u32(&b, srv->max_connections);
      uint64_t now = uv_now(ncd.loop);
      put_u32(&b, srv->paused_until > now ? (uint32_t)(srv->paused_until - now) : 0);
      if (b.fail || send_record(conn, 'v', &b, -1) != 0) goto io;
    }
  }
  hi = 0;
  for (ncc_list *e = ncd.handlers.next; e != &ncd.handlers; e = e->next, hi++) {
    ncd_handler *h = ncc_container_of(e, ncd_handler, link);
    if (!handler_shipped(h)) continue;
    for (ncc_list *f = h->sockets.next; f != &h->sockets; f = f->next) {
      ncd_socket *s = ncc_container_of(f, ncd_socket, owner_link);
      if (!shipped(s)) continue;
      char *unsent;
      size_t unsent_len;
      if ((rc = ncd_socket_unsent(s, &unsent, &unsent_len)) != 0) {
        snprintf(why, cap, "socket %llu: %s", (unsigned long long)s->id,
                 rc == NCD_EBUSY ? "a write passing an fd is queued" : ncd_err_message(rc));
        free(b.p);
        return -1;
      }
      /* Bytes the kernel has from writes libuv has not completed yet. */
      uint64_t in_kernel = ncd_socket_unacked_written(s);
      b.len = 0;
      put_u64(&b, s->id);
      put_u64(&b, s->seq);
      put_u32(&b, hi);
      put_u64(&b, accepted(s) ? s->server->id : 0);
      put_u8(&b, (uint8_t)s->is_unix);
      put_u32(&b, s->credit);
      put_u64(&b, s->bytes_read);
      put_u64(&b, s->bytes_written + in_kernel);
      put_u32(&b, s->timeout_ms);
      put_u8(&b, (uint8_t)((s->paused ? F_PAUSED : 0) | (s->eof ? F_EOF : 0) |
                           (s->ended ? F_ENDED : 0) | (s->shutdown_done ? F_SHUTDOWN_DONE : 0) |
                           (s->allow_half_open ? F_HALF_OPEN : 0)));
      put_bytes(&b, s->kept ? s->kept + s->kept_off : "", s->kept_len);
      put_bytes(&b, unsent ? unsent : "", unsent_len);
      free(unsent);
      uint64_t now = uv_now(ncd.loop);
      put_u64(&b, s->writes_in);
      put_u64(&b, s->acked_writes_total);
      put_u64(&b, s->acked_bytes_total + in_kernel);
      put_u32(&b, s->writes_out);
      put_u32(&b, now > s->last_active ? (uint32_t)(now - s->last_active) : 0);
      if (b.fail || send_fd_of(conn, 's', &b, &s->h.handle) != 0) goto io;
    }
  }
  /* Pipes last: both their ends exist on the new side by then. One whose
   * destination is not shipped (an outbound socket) stops there. */
  for (ncc_list *e = ncd.handlers.next; e != &ncd.handlers; e = e->next) {
    ncd_handler *h = ncc_container_of(e, ncd_handler, link);
    if (!handler_shipped(h)) continue;
    for (ncc_list *f = h->sockets.next; f != &h->sockets; f = f->next) {
      ncd_socket *s = ncc_container_of(f, ncd_socket, owner_link);
      if (!shipped(s) || !s->pipe || !shipped(s->pipe->dest)) continue;
      b.len = 0;
      put_u64(&b, s->id);
      put_u64(&b, s->pipe->dest->id);
      put_u8(&b, (uint8_t)s->pipe->no_end);
      put_u32(&b, s->pipe->hwm);
      if (b.fail || send_record(conn, 'p', &b, -1) != 0) goto io;
    }
  }
  if (send_record(conn, 'E', NULL, -1) != 0) goto io;
  free(b.p);
  return 0;
io:
  snprintf(why, cap, "%s", b.fail ? "out of memory" : "the new netcore stopped reading");
  free(b.p);
  return -1;
}

/* One takeover attempt on conn, start to end, inside this callback: nothing
 * of this netcore moves meanwhile. Returns 1 when handed over. */
static int serve(int conn, pid_t pid) {
  char why[300] = "";
  buf_t b = {0};
  uint8_t type;
  int fd = -1, done = 0;
  if (recv_record(conn, &b, &type, &fd) != 0 || type != 'H') {
    snprintf(why, sizeof why, "no Hello from the new netcore");
  } else if (get_u32(&b) != NCD_TAKEOVER_VERSION || b.fail) {
    snprintf(why, sizeof why, "it speaks another takeover version (this netcore speaks %d)",
             NCD_TAKEOVER_VERSION);
    refuse(conn, why);
  } else if (!same_binds(&b, why, sizeof why)) {
    refuse(conn, why);
  } else if (ncd.shutting_down) {
    snprintf(why, sizeof why, "this netcore is shutting down");
    refuse(conn, why);
  } else if (ship(conn, why, sizeof why) != 0) {
    refuse(conn, why);
  } else {
    if (fd >= 0) close(fd);
    fd = -1;
    if (recv_record(conn, &b, &type, &fd) != 0) {
      snprintf(why, sizeof why, "the new netcore went away before acknowledging");
    } else if (type == 'R') {
      char reason[256];
      get_str(&b, reason, sizeof reason);
      snprintf(why, sizeof why, "the new netcore refused: %s", b.fail ? "(no reason)" : reason);
    } else if (type != 'A') {
      snprintf(why, sizeof why, "the new netcore sent record '%c' instead of an ack", type);
    } else {
      done = 1;
    }
  }
  if (fd >= 0) close(fd);
  free(b.p);
  if (!done) {
    ncd_warn("takeover: %s; this netcore serves on", why);
    return 0;
  }
  ncd_info("takeover: acknowledged; handing the endpoints over and exiting");
  /* Under systemd the new process is the service now (NotifyAccess=main: only
   * the main pid may say so, and only it may then say READY=1). */
  char mainpid[32];
  snprintf(mainpid, sizeof mainpid, "MAINPID=%ld", (long)pid);
  if (pid > 0) ncd_notify(mainpid);
  ncd_main_handed_over();
  ncd_takeover_stop();
  if (send_record(conn, 'D', NULL, -1) != 0)
    ncd_warn("takeover: the new netcore did not take Done (it finds the endpoints free anyway)");
  return 1;
}

/* Whether the peer of conn runs as our uid; *pid is its pid. */
static int peer_is_us(int conn, pid_t *pid) {
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return 0;
  *pid = cred.pid;
  return cred.uid == geteuid();
}

static void accept_cb(uv_poll_t *p, int status, int events) {
  int conn = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
  if (conn < 0) return;
  pid_t pid = 0;
  if (!peer_is_us(conn, &pid)) {
    ncd_warn("takeover: refused a peer of another uid on %s", sock_path);
    close(conn);
    return;
  }
  set_timeouts(conn, IO_TIMEOUT_MS);
  uint64_t t0 = uv_hrtime();
  int handed = serve(conn, pid);
  close(conn);
  if (handed)
    ncd_info("takeover: handed over in %.1f ms", (double)(uv_hrtime() - t0) / 1e6);
}

int ncd_takeover_listen(void) {
  if (takeover_path() != 0) {
    ncd_debug("takeover: no ipc:// endpoint with a path; netcore --takeover cannot find this one");
    return 0;
  }
  struct sockaddr_un sun = {.sun_family = AF_UNIX};
  snprintf(sun.sun_path, sizeof sun.sun_path, "%s", sock_path);
  /* The endpoint lock is ours: a file at the path is a dead netcore's. */
  unlink(sock_path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ncd_error("takeover: socket: %s", strerror(errno));
    return -1;
  }
  mode_t old = umask(0177); /* 0600 from the first moment */
  int rc = bind(fd, (struct sockaddr *)&sun, sizeof sun);
  umask(old);
  if (rc != 0 || listen(fd, 4) != 0) {
    ncd_error("takeover: cannot listen on %s: %s", sock_path, strerror(errno));
    close(fd);
    return -1;
  }
  if (ncd_uv_check(uv_poll_init(ncd.loop, &listen_poll, fd), "watch the takeover socket") != 0) {
    close(fd);
    unlink(sock_path);
    return -1;
  }
  listen_fd = fd;
  if (ncd_uv_check(uv_poll_start(&listen_poll, UV_READABLE, accept_cb),
                   "poll the takeover socket") != 0) {
    ncd_takeover_stop();
    return -1;
  }
  ncd_debug("takeover: listening on %s", sock_path);
  return 0;
}

void ncd_takeover_stop(void) {
  if (listen_fd < 0) return;
  uv_close((uv_handle_t *)&listen_poll, NULL);
  close(listen_fd);
  listen_fd = -1;
  unlink(sock_path);
}

/* ----------------------------------------------------------- new side */

typedef struct {
  ncd_handler **handlers; /* by the old netcore's index */
  uint32_t nhandlers;
  ncd_listener **listeners;
  uint32_t nlisteners;
  uint32_t nsockets, nservers;
} import_t;

static void *grow(void *arr, uint32_t *n, uint32_t want, size_t size) {
  if (want < *n) return arr;
  uint32_t cap = want + 16;
  void *p = realloc(arr, (size_t)cap * size);
  if (!p) return NULL;
  memset((char *)p + (size_t)*n * size, 0, (size_t)(cap - *n) * size);
  *n = cap;
  return p;
}

static int take_handler(import_t *im, buf_t *b) {
  uint32_t idx = get_u32(b), prefix = get_u32(b);
  char principal[96], name[64], service[64];
  get_str(b, principal, sizeof principal);
  get_str(b, name, sizeof name);
  get_str(b, service, sizeof service);
  uint32_t window = get_u32(b);
  int lazy = get_u8(b);
  int resumable = b->at < b->len ? get_u8(b) : 0;
  size_t token_len = 0;
  const char *token = resumable ? get_bytes(b, &token_len) : NULL;
  uint64_t last_id = resumable ? get_u64(b) : 0;
  uint32_t lease_ms = resumable ? get_u32(b) : 0;
  int batch = resumable ? get_u8(b) : 0;
  if (b->fail || idx > 1u << 24 || (resumable && token_len != 16)) return -1;
  ncd_handler **arr = grow(im->handlers, &im->nhandlers, idx, sizeof *arr);
  if (!arr) return -1;
  im->handlers = arr;
  if (arr[idx]) return -1;
  ncd_handler *h = ncd_handler_ghost(principal, name, service, prefix, window, lazy);
  if (!h) return -1;
  arr[idx] = h;
  if (resumable) {
    h->resumable = 1;
    memcpy(h->session_token, token, 16);
    if (last_id > h->last_id && (uint32_t)(last_id >> 32) == prefix) h->last_id = last_id;
    if (lease_ms) h->lease_ms = lease_ms;
    h->batch_events = batch;
  }
  return 0;
}

static int take_listener(import_t *im, buf_t *b, int fd) {
  uint32_t idx = get_u32(b);
  int is_unix = get_u8(b);
  char key[160], group[64], path[sizeof(((ncc_addr *)0)->address)];
  ncc_addr a;
  memset(&a, 0, sizeof a);
  get_str(b, key, sizeof key);
  get_str(b, group, sizeof group);
  get_str(b, path, sizeof path);
  get_str(b, a.address, sizeof a.address);
  a.port = get_u32(b);
  a.family = (int)get_u32(b);
  if (b->fail || fd < 0 || idx > 1u << 24) return -1;
  ncd_listener **arr = grow(im->listeners, &im->nlisteners, idx, sizeof *arr);
  if (!arr) return -1;
  im->listeners = arr;
  if (arr[idx]) return -1;
  return (arr[idx] = ncd_listener_restore(fd, is_unix, key, group, path, &a)) ? 0 : -1;
}

static ncd_handler *handler_at(import_t *im, uint32_t i) {
  return i < im->nhandlers ? im->handlers[i] : NULL;
}

static int take_server(import_t *im, buf_t *b) {
  uint64_t id = get_u64(b), seq = get_u64(b);
  uint32_t hi = get_u32(b), li = get_u32(b);
  int half = get_u8(b);
  uint32_t max = get_u32(b);
  ncd_handler *h = handler_at(im, hi);
  ncd_listener *l = li < im->nlisteners ? im->listeners[li] : NULL;
  if (b->fail || !h || !l || ncc_idmap_get(&ncd.servers, id)) return -1;
  uint32_t pause_ms = b->at < b->len ? get_u32(b) : 0;
  if (b->fail) return -1;
  ncd_server *srv = ncd_server_restore(h, id, l, half, max);
  if (!srv) return -1;
  srv->seq = seq;
  if (pause_ms) srv->paused_until = uv_now(ncd.loop) + pause_ms;
  im->nservers++;
  return 0;
}

static int take_socket(import_t *im, buf_t *b, int fd) {
  uint64_t id = get_u64(b), seq = get_u64(b);
  uint32_t hi = get_u32(b);
  uint64_t server_id = get_u64(b);
  int is_unix = get_u8(b);
  uint32_t credit = get_u32(b);
  uint64_t bytes_read = get_u64(b), bytes_written = get_u64(b);
  uint32_t timeout_ms = get_u32(b);
  int flags = get_u8(b);
  size_t kept_len, unsent_len;
  const char *kept = get_bytes(b, &kept_len);
  const char *unsent = get_bytes(b, &unsent_len);
  int extra = b->at < b->len;
  uint64_t writes_in = extra ? get_u64(b) : 0, acked_writes = extra ? get_u64(b) : 0;
  uint64_t acked_bytes = extra ? get_u64(b) : 0;
  uint32_t writes_out = extra ? get_u32(b) : 0, idle_ms = extra ? get_u32(b) : 0;
  ncd_handler *h = handler_at(im, hi);
  ncd_server *srv = server_id ? ncc_idmap_get(&ncd.servers, server_id) : NULL;
  if (b->fail || fd < 0 || !h || (server_id ? !srv || srv->owner != h : !h->resumable) ||
      ncc_idmap_get(&ncd.sockets, id)) {
    if (fd >= 0) close(fd);
    return -1;
  }
  ncd_socket *s = ncd_socket_restore(h, srv, id, fd, is_unix);
  if (!s) return -1;
  s->seq = seq;
  s->credit = credit;
  s->bytes_read = bytes_read;
  s->bytes_written = bytes_written;
  s->paused = (flags & F_PAUSED) != 0;
  s->eof = (flags & F_EOF) != 0;
  s->allow_half_open = (flags & F_HALF_OPEN) != 0;
  s->shutdown_done = (flags & F_SHUTDOWN_DONE) != 0;
  if (kept_len) {
    if (!(s->kept = malloc(kept_len))) return -1;
    memcpy(s->kept, kept, kept_len);
    s->kept_len = s->kept_cap = kept_len;
  }
  s->data_sent = kept_len; /* Data not credited: a pipe waits for it (pipe.h) */
  s->writes_in = writes_in;
  s->acked_writes_total = acked_writes;
  s->acked_bytes_total = acked_bytes;
  if (h->resumable)
    ncd_socket_restore_timeout(s, timeout_ms, idle_ms);
  else if (timeout_ms && ncd_socket_set_timeout(s, timeout_ms) != 0)
    return -1;
  int owe_fin = (flags & F_ENDED) && !s->shutdown_done;
  /* A resumable session's queued writes stay its own (their acks are due). */
  uint32_t own = h->resumable ? writes_out : 0;
  if (ncd_socket_restore_writes(s, unsent, unsent_len, owe_fin, own) != 0) return -1;
  s->ended = (flags & F_ENDED) != 0;
  im->nsockets++;
  return 0;
}

static int take_pipe(buf_t *b) {
  uint64_t src_id = get_u64(b), dest_id = get_u64(b);
  int no_end = get_u8(b);
  uint32_t hwm = get_u32(b);
  ncd_socket *src = ncc_idmap_get(&ncd.sockets, src_id), *dest = ncc_idmap_get(&ncd.sockets, dest_id);
  if (b->fail || !src || !dest || src->owner != dest->owner) return -1;
  return ncd_pipe_restore(src, dest, no_end, hwm) == 0 ? 0 : -1;
}

/* Reads the state up to 'E'. Returns 0, or -1 with why. */
static int take_state(int conn, import_t *im, char *why, size_t cap) {
  buf_t b = {0};
  uint8_t type;
  int fd, rc = -1;
  if (recv_record(conn, &b, &type, &fd) != 0) {
    snprintf(why, cap, "the running netcore closed the takeover socket");
    goto out;
  }
  if (type == 'R') {
    char reason[256];
    get_str(&b, reason, sizeof reason);
    snprintf(why, cap, "the running netcore refused: %s", reason);
    goto out;
  }
  if (type != 'S' || get_u32(&b) != NCD_TAKEOVER_VERSION) {
    snprintf(why, cap, "the running netcore speaks another takeover version");
    goto out;
  }
  ncd.next_prefix = get_u32(&b);
  ncd.next_socket_id = get_u64(&b);
  if (!same_binds(&b, why, cap)) {
    if (!why[0]) snprintf(why, cap, "a malformed state record");
    goto out;
  }
  for (;;) {
    if (fd >= 0) close(fd);
    if (recv_record(conn, &b, &type, &fd) != 0) {
      snprintf(why, cap, "the running netcore stopped in the middle of its state");
      goto out;
    }
    int ok;
    switch (type) {
    case 'h': ok = take_handler(im, &b); break;
    case 'l': ok = take_listener(im, &b, fd), fd = -1; break;
    case 'v': ok = take_server(im, &b); break;
    case 's': ok = take_socket(im, &b, fd), fd = -1; break;
    case 'p': ok = take_pipe(&b); break;
    case 'E': rc = 0; goto out;
    case 'R': {
      char reason[256];
      get_str(&b, reason, sizeof reason);
      snprintf(why, cap, "the running netcore gave up: %s", reason);
      goto out;
    }
    default: ok = -1;
    }
    if (ok != 0) {
      snprintf(why, cap, "record '%c' could not be taken over (malformed, or out of memory)", type);
      goto out;
    }
  }
out:
  if (fd >= 0) close(fd);
  free(b.p);
  return rc;
}

int ncd_takeover_run(void) {
  if (takeover_path() != 0) {
    ncd_error("EINVAL: --takeover finds the running netcore beside an ipc:// --bind endpoint; "
              "none is given");
    return -1;
  }
  int conn = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un sun = {.sun_family = AF_UNIX};
  snprintf(sun.sun_path, sizeof sun.sun_path, "%s", sock_path);
  if (conn < 0 || connect(conn, (struct sockaddr *)&sun, sizeof sun) != 0) {
    int e = errno;
    ncd_error("%s: --takeover: no running netcore answers on %s (%s)", ncd_err_name(-e), sock_path,
              strerror(e));
    if (conn >= 0) close(conn);
    return -1;
  }
  set_timeouts(conn, IO_TIMEOUT_MS);
  buf_t b = {0};
  put_u32(&b, NCD_TAKEOVER_VERSION);
  put_binds(&b);
  import_t im = {0};
  char why[400] = "";
  int rc = b.fail || send_record(conn, 'H', &b, -1) != 0 ? -1 : 0;
  if (rc != 0) snprintf(why, sizeof why, "the running netcore did not take Hello");
  if (rc == 0 && (rc = take_state(conn, &im, why, sizeof why)) != 0) refuse(conn, why);
  if (rc == 0 && send_record(conn, 'A', NULL, -1) != 0) {
    snprintf(why, sizeof why, "the running netcore went away before the ack");
    rc = -1;
  }
  free(im.handlers);
  free(im.listeners);
  if (rc != 0) {
    ncd_error("takeover failed: %s; the running netcore serves on", why);
    free(b.p);
    close(conn);
    return -1;
  }
  /* Ours now. The old netcore lets go of the endpoints, then says Done. */
  set_timeouts(conn, DONE_TIMEOUT_MS);
  uint8_t type = 0;
  int fd = -1;
  if (recv_record(conn, &b, &type, &fd) != 0 || type != 'D')
    ncd_warn("takeover: no Done from the old netcore; claiming the endpoints anyway");
  if (fd >= 0) close(fd);
  free(b.p);
  close(conn);
  ncd_listener_close_empty();
  ncd_info("takeover: %u listening servers and %u connections taken over; parked for %u ms "
           "until their handlers reconnect",
           im.nservers, im.nsockets, ncd.cfg.handoff_ms);
  return 0;
}
