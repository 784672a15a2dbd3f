/* server.c: see server.h. */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errors.h"
#include "fdlimit.h"
#include "handoff.h"
#include "handler.h"
#include "log.h"
#include "router.h"
#include "socket.h"

#define ACCEPT_BATCH 128
#define DEFAULT_BACKLOG 511
#define FD_PAUSE_MIN_MS 50
#define FD_PAUSE_MAX_MS 1000

/* Out of descriptors (or kernel memory) in accept(): the connection stays in
 * the backlog and the listener stays readable, so polling on would spin.
 * Every listener stops (descriptors are the process's, not one listener's)
 * for 50 ms, doubling up to 1 s while it lasts; clients wait in the kernel's
 * backlogs and are accepted by themselves once descriptors return. */
static uv_timer_t fd_pause_timer;
static int fd_pause_timer_ready;
static int fd_paused;         /* listeners are stopped until the timer fires */
static unsigned fd_pause_ms;  /* length of the last pause; 0 = accept works */

static void emit(ncd_server *srv, ncc_event *ev) {
  ev->seq = ++srv->seq;
  ev->server_id = srv->id;
  ncd_router_send(srv->owner, ev, NULL);
}

static void server_free(ncd_server *srv) {
  ncc_idmap_del(&ncd.servers, srv->id);
  ncc_list_remove(&srv->owner_link);
  srv->owner->nservers--;
  free(srv);
}

/* Sends ServerError with Node's message form ("listen EADDRINUSE: address
 * already in use 127.0.0.1:8124") and frees the server. */
static void listen_failed(ncd_server *srv, int err, const char *where) {
  char msg[900];
  snprintf(msg, sizeof msg, "listen %s: %s %s", ncd_err_name(err), ncd_err_message(err), where);
  ncc_event ev = {.kind = NCC_EV_SERVER_ERROR, .code = ncd_err_name(err), .message = msg};
  emit(srv, &ev);
  ncd_debug("server %llu: %s", (unsigned long long)srv->id, msg);
  server_free(srv);
}

/* The policy (policy.h) refused this Listen: EACCES naming the rule, before
 * anything is bound or resolved. */
static void policy_denied(ncd_server *srv, const char *why) {
  char where[700];
  snprintf(where, sizeof where, "(policy: %s)", why);
  ncd_debug("handler %s (%s): listen denied by the policy: %s", srv->owner->name,
           srv->owner->principal, why);
  listen_failed(srv, NCD_EACCES, where);
}

/* ------------------------------------------------------------- accepting */

/* A member whose handler is over its budget or owns its limit of sockets is
 * passed over, as a paused one is. */
static int member_can_take(ncd_server *m, uint64_t now) {
  return !m->closing && !ncd_handler_dead(m->owner) && (!m->paused_until || m->paused_until <= now) &&
         (!m->max_connections || m->connections < m->max_connections) &&
         !m->owner->over_budget && ncd_handler_socket_room(m->owner);
}

static ncd_server *pick_member(ncd_listener *l) {
  uint64_t now = uv_now(ncd.loop);
  for (ncc_list *e = l->members.next; e != &l->members; e = e->next) {
    ncd_server *m = ncc_container_of(e, ncd_server, member_link);
    if (member_can_take(m, now)) {
      ncc_list_remove(e); /* round robin: to the back of the line */
      ncc_list_push(&l->members, e);
      return m;
    }
  }
  return NULL;
}

static void accept_one(ncd_listener *l, int fd, const struct sockaddr_storage *peer,
                       socklen_t peer_len) {
  ncd_server *m = pick_member(l);
  if (!m || ncd.shutting_down) {
    close(fd); /* maxConnections: accepted and closed at once, unseen */
    ncd_metrics_refused(NCD_REFUSED_NO_MEMBER);
    return;
  }
  if (ncd.nsockets >= ncd.cfg.max_connections) {
    close(fd); /* --max-connections: the same, and reported */
    ncd_fdlimit_refused(NCD_FD_MAX_CONNECTIONS);
    return;
  }
  ncd_socket *s = ncd_socket_adopt(m->owner, fd, l->is_unix);
  if (!s) return;
  s->server = m;
  s->allow_half_open = m->allow_half_open;
  m->connections++;
  ncc_addr local, remote;
  /* A listener on one address accepts on that address: one getsockname() less. */
  if (ncd_addr_is_wildcard(&l->address)) ncd_addr_of_fd(fd, 0, &local);
  else local = l->address;
  /* accept4() already said who the peer is: one getpeername() less per connection. */
  if (ncd_addr_from_sockaddr((const struct sockaddr *)peer, peer_len, &remote) != 0)
    ncd_addr_of_fd(fd, 1, &remote);
  ncc_event ev = {.kind = NCC_EV_CONNECTION,
                  .server_id = m->id,
                  .local = &local,
                  .remote = &remote,
                  .flag = m->allow_half_open,
                  .count = m->connections};
  ncd_socket_emit(s, &ev, NULL);
  ncd_metrics_socket_opened(s, "accepted");
  ncd_socket_update_reading(s);
}

static void update_all_listeners(void) {
  for (ncc_list *e = ncd.listeners.next; e != &ncd.listeners; e = e->next)
    ncd_listener_update(ncc_container_of(e, ncd_listener, link));
}

static void fd_pause_cb(uv_timer_t *t) {
  fd_paused = 0;
  update_all_listeners();
}

static void pause_accepting(int err) {
  fd_pause_ms = fd_pause_ms ? fd_pause_ms * 2 : FD_PAUSE_MIN_MS;
  if (fd_pause_ms > FD_PAUSE_MAX_MS) fd_pause_ms = FD_PAUSE_MAX_MS;
  if (!fd_pause_timer_ready) {
    if (ncd_uv_check(uv_timer_init(ncd.loop, &fd_pause_timer), "make the accept pause timer"))
      return; /* no pause: the next accept tries again */
    fd_pause_timer_ready = 1;
  }
  if (ncd_uv_check(uv_timer_start(&fd_pause_timer, fd_pause_cb, fd_pause_ms, 0),
                   "start the accept pause timer"))
    return;
  fd_paused = 1;
  update_all_listeners();
  ncd_fdlimit_paused(err, fd_pause_ms);
}

static void poll_cb(uv_poll_t *p, int status, int events) {
  ncd_listener *l = p->data;
  for (int i = 0; i < ACCEPT_BATCH && l->polling; i++) {
    struct sockaddr_storage peer;
    socklen_t peer_len = sizeof peer;
    int fd = accept4(l->fd, (struct sockaddr *)&peer, &peer_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      if (err == EAGAIN || err == EWOULDBLOCK) return;
      /* EINTR, ECONNABORTED and the network errors accept(2) passes on from
       * the new connection concern only that connection: take the next. */
      if (err == EINTR || err == ECONNABORTED || err == EPROTO || err == ENETDOWN ||
          err == ENOPROTOOPT || err == EHOSTDOWN || err == ENONET || err == EHOSTUNREACH ||
          err == EOPNOTSUPP || err == ENETUNREACH || err == EPERM) {
        ncd_debug("accept on %s: %s", l->key, strerror(err));
        continue;
      }
      /* EMFILE, ENFILE, ENOBUFS, ENOMEM (or anything unexpected): the
       * connection stays queued, so retrying now would spin. */
      pause_accepting(-err);
      return;
    }
    if (ncd_fdlimit_in_reserve(fd)) {
      close(fd); /* handlers and listeners ate into the reserve: keep it for ZeroMQ */
      ncd_fdlimit_refused(NCD_FD_RESERVE);
      continue;
    }
    if (fd_pause_ms) {
      fd_pause_ms = 0;
      ncd_fdlimit_resumed();
    }
    accept_one(l, fd, &peer, peer_len);
  }
}

static void resume_cb(uv_timer_t *t);

/* Polls while some member accepts; while all are paused (or parked, their
 * handler gone: handoff.h), clients wait in the backlog and a timer wakes the
 * listener at the end of the earliest pause. */
void ncd_listener_update(ncd_listener *l) {
  if (l->closing) return;
  uint64_t now = uv_now(ncd.loop), wake = 0;
  int active = 0;
  for (ncc_list *e = l->members.next; e != &l->members; e = e->next) {
    ncd_server *m = ncc_container_of(e, ncd_server, member_link);
    if (m->paused_until && m->paused_until <= now) m->paused_until = 0;
    if (m->paused_until) {
      if (!wake || m->paused_until < wake) wake = m->paused_until;
    } else if (!m->closing && !ncd_handler_dead(m->owner)) {
      active = 1;
    }
  }
  if (active && !l->polling && !ncd.shutting_down && !fd_paused) {
    l->polling = ncd_uv_check(uv_poll_start(&l->poll, UV_READABLE, poll_cb), "poll a listener") == 0;
  } else if ((!active || fd_paused) && l->polling) {
    uv_poll_stop(&l->poll);
    l->polling = 0;
  }
  if (wake) ncd_uv_check(uv_timer_start(&l->resume_timer, resume_cb, wake - now, 0),
                         "start a listener's resume timer"); /* refused only while closing */
  else uv_timer_stop(&l->resume_timer);
}

static void resume_cb(uv_timer_t *t) { ncd_listener_update(t->data); }

/* --------------------------------------------------------------- closing */

static void listener_handle_closed_cb(uv_handle_t *h) {
  ncd_listener *l = h->data;
  if (--l->open_handles == 0) free(l);
}

/* The fd is closed here, not in a close callback: once ServerClosed is out the
 * port must be free (Node's promise), and uv_close() has already taken the fd
 * out of epoll synchronously, so its number can be reused at once. */
static void listener_close(ncd_listener *l) {
  if (l->closing) return;
  l->closing = 1;
  l->polling = 0;
  ncc_list_remove(&l->link);
  if (l->unlink_path[0]) unlink(l->unlink_path);
  l->open_handles = 2;
  uv_close((uv_handle_t *)&l->poll, listener_handle_closed_cb);
  uv_close((uv_handle_t *)&l->resume_timer, listener_handle_closed_cb);
  close(l->fd);
  l->fd = -1;
}

static void maybe_closed(ncd_server *srv) {
  if (!srv->closing || srv->connections) return;
  ncc_event ev = {.kind = NCC_EV_SERVER_CLOSED};
  emit(srv, &ev);
  server_free(srv);
}

int ncd_server_close(ncd_server *srv) {
  if (srv->closing) return NCD_ERR_SERVER_NOT_RUNNING;
  srv->closing = 1;
  ncd_listener *l = srv->listener;
  if (l) {
    ncc_list_remove(&srv->member_link);
    srv->listener = NULL;
    if (ncc_list_empty(&l->members)) listener_close(l);
    else ncd_listener_update(l);
  }
  maybe_closed(srv);
  return 0;
}

void ncd_server_connection_closed(ncd_server *srv) {
  srv->connections--;
  if (srv->closing) maybe_closed(srv);
  else if (srv->listener) ncd_listener_update(srv->listener);
}

void ncd_server_close_all(void) {
  while (!ncc_list_empty(&ncd.listeners)) {
    ncd_listener *l = ncc_container_of(ncd.listeners.next, ncd_listener, link);
    while (!ncc_list_empty(&l->members))
      ncd_server_close(ncc_container_of(l->members.next, ncd_server, member_link));
  }
}

void ncd_server_pause(ncd_server *srv, uint32_t msecs) {
  srv->paused_until = uv_now(ncd.loop) + (msecs ? msecs : 1000);
  if (srv->listener) ncd_listener_update(srv->listener);
}

void ncd_server_set_max_connections(ncd_server *srv, uint32_t max) {
  srv->max_connections = max;
}

/* -------------------------------------------------------------- listening */

static void join(ncd_server *srv, ncd_listener *l) {
  srv->listener = l;
  ncc_list_push(&l->members, &srv->member_link);
  ncd_listener_update(l);
  ncc_event ev = {.kind = NCC_EV_LISTENING, .local = &l->address};
  emit(srv, &ev);
}

void ncd_server_listening_again(ncd_server *srv) {
  srv->seq = 0; /* the handler saw none of its events */
  ncc_event ev = {.kind = NCC_EV_LISTENING, .local = &srv->listener->address};
  emit(srv, &ev);
}

static ncd_listener *find_listener(const char *key) {
  for (ncc_list *e = ncd.listeners.next; e != &ncd.listeners; e = e->next) {
    ncd_listener *l = ncc_container_of(e, ncd_listener, link);
    if (strcmp(l->key, key) == 0) return l;
  }
  return NULL;
}

static void free_on_close(uv_handle_t *h) { free(h->data); }

/* The poll and resume timer of a new listener around l->fd. Returns 0, or the
 * libuv error (logged) after l is given back: its fd closed, l freed now or
 * by its timer's close callback. */
static int init_listener_handles(ncd_listener *l) {
  l->poll.data = l;
  l->resume_timer.data = l;
  int rc = ncd_uv_check(uv_timer_init(ncd.loop, &l->resume_timer), "make a listener timer");
  if (rc != 0) {
    close(l->fd);
    free(l);
    return rc;
  }
  if ((rc = ncd_uv_check(uv_poll_init(ncd.loop, &l->poll, l->fd), "watch a listener")) != 0) {
    close(l->fd);
    uv_close((uv_handle_t *)&l->resume_timer, free_on_close);
  }
  return rc;
}

/* Makes a listener around a bound, listening fd and makes srv its first member. */
static void start_listener(ncd_server *srv, int fd, int is_unix, const char *key,
                           const char *group, const char *unlink_path) {
  ncd_listener *l = calloc(1, sizeof *l);
  if (!l) {
    close(fd);
    listen_failed(srv, NCD_ENOMEM, key);
    return;
  }
  l->fd = fd;
  l->is_unix = is_unix;
  snprintf(l->key, sizeof l->key, "%s", key);
  snprintf(l->group, sizeof l->group, "%s", group);
  snprintf(l->unlink_path, sizeof l->unlink_path, "%s", unlink_path ? unlink_path : "");
  ncd_addr_of_fd(fd, 0, &l->address);
  if (is_unix && unlink_path) snprintf(l->address.address, sizeof l->address.address, "%s", unlink_path);
  ncc_list_init(&l->members);
  int rc = init_listener_handles(l);
  if (rc != 0) {
    listen_failed(srv, rc, key);
    return;
  }
  ncc_list_push(&ncd.listeners, &l->link);
  /* A port-0 listener's key is only known once bound. */
  if (!is_unix && !unlink_path && strncmp(key, "fd:", 3) != 0)
    snprintf(l->key, sizeof l->key, "tcp:%s:%u", l->address.address, l->address.port);
  join(srv, l);
}

/* Sharing rule (docs/ARCHITECTURE.md rule 5): same endpoint and same non-empty group joins,
 * and so does a successor of a parked server (handoff.h); otherwise an
 * endpoint in use is EADDRINUSE, as in Node. Returns 1 when the
 * request was settled here (joined or failed). */
static int try_share(ncd_server *srv, const char *key, const char *group, const char *where) {
  ncd_listener *l = find_listener(key);
  if (!l) return 0;
  if (ncd_handoff_may_join(srv->owner, l, group)) {
    join(srv, l);
    ncd_handoff_joined(srv); /* a successor takes the parked connections */
  } else {
    listen_failed(srv, NCD_EADDRINUSE, where);
  }
  return 1;
}

static int bind_listen(int fd, const struct sockaddr *sa, socklen_t len, int backlog) {
  if (bind(fd, sa, len) != 0 || listen(fd, backlog) != 0) return -errno;
  return 0;
}

/* Binds and listens on one address. With dual set (Node's listen() without a
 * host: "::" with IPV6_V6ONLY off, so IPv4 peers come in too), a socket or
 * bind failure returns it instead of failing the server, so that the caller
 * falls back to 0.0.0.0 as Node does where IPv6 is absent. */
static int listen_tcp_addr(ncd_server *srv, const struct sockaddr *sa, socklen_t len, int backlog,
                           const char *group, int dual) {
  ncc_addr a;
  ncd_addr_from_sockaddr(sa, len, &a);
  char key[160], where[140];
  snprintf(where, sizeof where, a.family == NCC_FAMILY_IPV6 ? "[%s]:%u" : "%s:%u", a.address, a.port);
  snprintf(key, sizeof key, "tcp:%s:%u", a.address, a.port);
  if (a.port != 0 && try_share(srv, key, group, where)) return 0;
  int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    if (dual) return -errno;
    listen_failed(srv, -errno, where);
    return 0;
  }
  int one = 1; /* Node sets SO_REUSEADDR on every listening socket */
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  int zero = 0;
  if (dual && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero) != 0) {
    close(fd);
    return -errno;
  }
  int rc = bind_listen(fd, sa, len, backlog);
  if (rc != 0) {
    close(fd);
    if (dual) return rc;
    listen_failed(srv, rc, where);
    return 0;
  }
  start_listener(srv, fd, 0, key, group, NULL);
  return 0;
}

/* State of a Listen waiting for its host name to resolve. */
typedef struct pending_listen {
  uv_getaddrinfo_t req;
  uint64_t server_id;
  uint32_t port;
  int backlog;
  int check_policy; /* no rule allows the name itself: each address is checked */
  char group[64];
  char host[256];
} pending_listen;

static void listen_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  pending_listen *p = ncc_container_of(req, pending_listen, req);
  /* The server may have been closed (or its handler gone) meanwhile. */
  ncd_server *srv = ncc_idmap_get(&ncd.servers, p->server_id);
  if (srv && !srv->closing) {
    if (status < 0) {
      char where[300];
      snprintf(where, sizeof where, "%s", p->host);
      listen_failed(srv, status, where);
    } else {
      /* Prefer IPv4, as Node's listen(port, 'localhost') does in practice;
       * under the policy, the first address it allows. */
      struct addrinfo *ai, *pick = NULL;
      char why[600] = "";
      for (int pass = 0; pass < 2 && !pick; pass++)
        for (ai = res; ai && !pick; ai = ai->ai_next) {
          if ((ai->ai_family == AF_INET) != (pass == 0)) continue;
          /* The first denial's message is the one kept. */
          if (!p->check_policy ||
              ncd_policy_tcp(srv->owner->policy, 0, p->host, ai->ai_addr, p->port, why,
                             why[0] ? 0 : sizeof why) == NCD_POLICY_ALLOW)
            pick = ai;
        }
      if (!pick) {
        policy_denied(srv, why);
        uv_freeaddrinfo(res);
        free(p);
        return;
      }
      struct sockaddr_storage ss;
      memcpy(&ss, pick->ai_addr, pick->ai_addrlen);
      if (ss.ss_family == AF_INET) ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)p->port);
      else ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)p->port);
      (void)listen_tcp_addr(srv, (struct sockaddr *)&ss, pick->ai_addrlen, p->backlog, p->group, 0);
    }
  } else if (srv) {
    server_free(srv);
  }
  if (res) uv_freeaddrinfo(res);
  free(p);
}

static void listen_tcp(ncd_server *srv, const ncc_cmd *cmd, int backlog) {
  int rc = ncd_addr_check_port(cmd->ep.port, 1);
  if (rc != 0) {
    char where[64];
    snprintf(where, sizeof where, "(port %lld; it should be >= 0 and < 65536)", (long long)cmd->ep.port);
    listen_failed(srv, rc, where);
    return;
  }
  const char *host = cmd->ep.host;
  struct sockaddr_storage ss;
  socklen_t len;
  char why[600];
  uint32_t port = (uint32_t)cmd->ep.port;
  if (!*host) {
    /* No host: "::" dual-stack (Node's listen(port)) where the policy allows that
     * wildcard and the machine has IPv6, else 0.0.0.0. */
    if (ncd_addr_parse_ip("::", port, &ss, &len) == 0 &&
        ncd_policy_tcp(srv->owner->policy, 0, NULL, (struct sockaddr *)&ss, port, why,
                       sizeof why) == NCD_POLICY_ALLOW &&
        listen_tcp_addr(srv, (struct sockaddr *)&ss, len, backlog, cmd->group, 1) == 0)
      return;
    host = "0.0.0.0";
  }
  if (ncd_addr_parse_ip(host, port, &ss, &len) == 0) {
    if (ncd_policy_tcp(srv->owner->policy, 0, NULL, (struct sockaddr *)&ss, port, why,
                       sizeof why) != NCD_POLICY_ALLOW)
      policy_denied(srv, why);
    else
      (void)listen_tcp_addr(srv, (struct sockaddr *)&ss, len, backlog, cmd->group, 0);
    return;
  }
  int verdict = ncd_policy_tcp(srv->owner->policy, 0, host, NULL, port, why, sizeof why);
  if (verdict == NCD_POLICY_DENY) {
    policy_denied(srv, why);
    return;
  }
  pending_listen *p = calloc(1, sizeof *p);
  if (!p) {
    listen_failed(srv, NCD_ENOMEM, host);
    return;
  }
  p->server_id = srv->id;
  p->port = port;
  p->check_policy = verdict == NCD_POLICY_RESOLVE;
  p->backlog = backlog;
  snprintf(p->group, sizeof p->group, "%s", cmd->group);
  snprintf(p->host, sizeof p->host, "%s", host);
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
  rc = uv_getaddrinfo(ncd.loop, &p->req, listen_resolved, host, NULL, &hints);
  if (rc != 0) {
    free(p);
    listen_failed(srv, rc, host);
  }
}

static void listen_unix(ncd_server *srv, const ncc_cmd *cmd, int backlog) {
  struct sockaddr_un sun;
  socklen_t len;
  const char *path = cmd->ep.path;
  int rc = ncd_addr_unix(path, &sun, &len);
  if (rc != 0) {
    listen_failed(srv, rc, path);
    return;
  }
  char why[600];
  if (ncd_policy_unix(srv->owner->policy, 0, path, why, sizeof why) != NCD_POLICY_ALLOW) {
    policy_denied(srv, why);
    return;
  }
  char key[160];
  snprintf(key, sizeof key, "unix:%s", path);
  if (try_share(srv, key, cmd->group, path)) return;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    listen_failed(srv, -errno, path);
    return;
  }
  if ((rc = bind_listen(fd, (struct sockaddr *)&sun, len, backlog)) != 0) {
    close(fd);
    listen_failed(srv, rc, path);
    return;
  }
  start_listener(srv, fd, 1, key, cmd->group, path);
}

static void listen_fd(ncd_server *srv, const ncc_cmd *cmd) {
  char why[600];
  if (ncd_policy_listen_fd(srv->owner->policy, cmd->ep.fd, why, sizeof why) != NCD_POLICY_ALLOW) {
    policy_denied(srv, why);
    return;
  }
  int idx = -1;
  for (int i = 0; i < ncd.cfg.nlisten_fds; i++)
    if (ncd.cfg.listen_fds[i] == cmd->ep.fd && !ncd.inherited_used[i]) idx = i;
  char where[64];
  snprintf(where, sizeof where, "fd %d", cmd->ep.fd);
  int accepting = 0;
  socklen_t len = sizeof accepting;
  if (idx < 0 || getsockopt(cmd->ep.fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) != 0 ||
      !accepting) {
    listen_failed(srv, NCD_EBADF, where);
    return;
  }
  ncd.inherited_used[idx] = 1;
  int fd = cmd->ep.fd;
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  fcntl(fd, F_SETFD, FD_CLOEXEC);
  ncc_addr a;
  ncd_addr_of_fd(fd, 0, &a);
  char key[160];
  snprintf(key, sizeof key, "fd:%d", fd);
  start_listener(srv, fd, a.family == NCC_FAMILY_UNIX, key, "", NULL);
}

int ncd_server_listen(ncd_handler *h, const ncc_cmd *cmd) {
  ncd_server *srv = calloc(1, sizeof *srv);
  if (!srv) return NCD_ENOMEM;
  srv->id = cmd->id;
  srv->owner = h;
  srv->allow_half_open = cmd->allow_half_open;
  srv->max_connections = cmd->max_connections;
  ncc_list_init(&srv->member_link);
  ncc_list_init(&srv->owner_link);
  if (ncc_idmap_put(&ncd.servers, srv->id, srv) != 0) {
    free(srv);
    return NCD_ENOMEM;
  }
  ncc_list_push(&h->servers, &srv->owner_link);
  if (++h->nservers > h->max_servers) {
    char where[80];
    snprintf(where, sizeof where, "(this handler already owns its limit of %u servers)",
             h->max_servers);
    listen_failed(srv, NCD_EMFILE, where);
    return 0;
  }
  char why[600];
  if (cmd->group[0] &&
      ncd_policy_join(h->policy, cmd->group, why, sizeof why) != NCD_POLICY_ALLOW) {
    policy_denied(srv, why);
    return 0;
  }
  int backlog = cmd->backlog > 0 ? cmd->backlog : DEFAULT_BACKLOG;
  switch (cmd->ep.kind) {
  case NCC_EP_TCP:
    listen_tcp(srv, cmd, backlog);
    break;
  case NCC_EP_PATH:
    listen_unix(srv, cmd, backlog);
    break;
  case NCC_EP_FD:
    listen_fd(srv, cmd);
    break;
  default:
    listen_failed(srv, NCD_ERR_INVALID_ARG_VALUE, "(no tcp endpoint, path or fd given)");
  }
  return 0;
}

/* --------------------------------------------------------------- takeover */

ncd_listener *ncd_listener_restore(int fd, int is_unix, const char *key, const char *group,
                                   const char *unlink_path, const ncc_addr *address) {
  ncd_listener *l = calloc(1, sizeof *l);
  if (!l) {
    close(fd);
    return NULL;
  }
  l->fd = fd;
  l->is_unix = is_unix;
  snprintf(l->key, sizeof l->key, "%s", key);
  snprintf(l->group, sizeof l->group, "%s", group);
  snprintf(l->unlink_path, sizeof l->unlink_path, "%s", unlink_path);
  l->address = *address;
  ncc_list_init(&l->members);
  if (init_listener_handles(l) != 0) return NULL;
  ncc_list_push(&ncd.listeners, &l->link);
  return l;
}

ncd_server *ncd_server_restore(ncd_handler *owner, uint64_t id, ncd_listener *l,
                               int allow_half_open, uint32_t max_connections) {
  ncd_server *srv = calloc(1, sizeof *srv);
  if (!srv) return NULL;
  srv->id = id;
  srv->owner = owner;
  srv->allow_half_open = allow_half_open;
  srv->max_connections = max_connections;
  ncc_list_init(&srv->member_link);
  ncc_list_init(&srv->owner_link);
  if (ncc_idmap_put(&ncd.servers, id, srv) != 0) {
    free(srv);
    return NULL;
  }
  ncc_list_push(&owner->servers, &srv->owner_link);
  owner->nservers++;
  srv->listener = l;
  ncc_list_push(&l->members, &srv->member_link);
  return srv;
}

void ncd_listener_close_empty(void) {
  ncc_list *e, *next;
  for (e = ncd.listeners.next; e != &ncd.listeners; e = next) {
    next = e->next;
    ncd_listener *l = ncc_container_of(e, ncd_listener, link);
    if (ncc_list_empty(&l->members)) listener_close(l);
    else ncd_listener_update(l);
  }
}
