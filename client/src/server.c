/* server.c: nc_server_*, Node's net.Server over netcore's Listen,
 * ServerPause, ServerSetMaxConnections and ServerClose commands. Every listen
 * attempt uses a fresh wire id (a failed id is dead in netcore), so the same
 * server can listen again after EADDRINUSE. Loop thread only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nc_int.h"

#define MAX_GROUP 255

int nc_server_new(nc_loop_t *loop, const nc_server_options_t *opts,
                  void (*on_connection)(nc_server_t *, nc_socket_t *), nc_server_t **out) {
  if (loop == NULL || out == NULL) return NC_EINVAL;
  *out = NULL;
  nc_server_t *s = calloc(1, sizeof(*s));
  if (s == NULL) return NC_ENOMEM;
  if (opts != NULL) {
    s->allow_half_open = opts->allow_half_open != 0;
    s->backlog = opts->backlog;
    if (opts->group != NULL && opts->group[0] != '\0') {
      if (strlen(opts->group) > MAX_GROUP || (s->group = strdup(opts->group)) == NULL) {
        free(s);
        return strlen(opts->group) > MAX_GROUP ? NC_EINVAL : NC_ENOMEM;
      }
    }
  }
  s->h.type = NC__H_SERVER;
  s->h.loop = loop;
  ncc_list_init(&s->h.pend);
  ncc_list_push(&loop->servers, &s->h.all);
  s->ev.on_connection = on_connection;
  s->state = NC__SV_IDLE;
  *out = s;
  return 0;
}

void nc_server_set_events(nc_server_t *s, const nc_server_events_t *events) {
  if (events != NULL)
    s->ev = *events;
  else
    memset(&s->ev, 0, sizeof(s->ev));
}

/* Keeps the endpoint of cmd in s->req (host and path copied), for a relisten. */
static int keep_request(nc_server_t *s, const ncc_cmd *cmd) {
  char *host = NULL, *path = NULL;
  if ((cmd->ep.host != NULL && (host = strdup(cmd->ep.host)) == NULL) ||
      (cmd->ep.path != NULL && (path = strdup(cmd->ep.path)) == NULL)) {
    free(host);
    return NC_ENOMEM;
  }
  free((char *)s->req.ep.host);
  free((char *)s->req.ep.path);
  s->req = (ncc_cmd){.ep = {.kind = cmd->ep.kind, .host = host, .port = cmd->ep.port, .path = path,
                            .fd = cmd->ep.fd}};
  return 0;
}

/* Sends Listen for s->req under a fresh id. */
/* s's Listen under id: its request as listen() kept it. */
static int send_listen_cmd(nc_server_t *s, uint64_t id) {
  ncc_cmd cmd = s->req;
  cmd.kind = NCC_CMD_LISTEN;
  cmd.id = id;
  cmd.allow_half_open = s->allow_half_open;
  cmd.backlog = s->backlog;
  cmd.max_connections = s->max_connections;
  cmd.group = s->group;
  return nc__send(s->h.loop, &cmd, NULL, 0, NULL);
}

static int send_listen(nc_server_t *s) {
  nc_loop_t *loop = s->h.loop;
  int rv;
  uint64_t id = nc__next_id(loop);
  if ((rv = ncc_idmap_put(&loop->server_ids, id, s)) != 0) return rv;
  if ((rv = send_listen_cmd(s, id)) != 0) {
    ncc_idmap_del(&loop->server_ids, id);
    return rv;
  }
  s->id = id;
  s->state = NC__SV_LISTENING_PENDING;
  return 0;
}

static int listen_common(nc_server_t *s, ncc_cmd *cmd, nc_server_cb cb) {
  nc_loop_t *loop = s->h.loop;
  int rv;
  if (s->close_requested) return NC_ERR_SERVER_NOT_RUNNING;
  if (s->state != NC__SV_IDLE) return NC_ERR_SERVER_ALREADY_LISTEN;
  if (loop->gone || loop->gone_pending) return loop->gone ? loop->gone : loop->gone_pending;
  if (loop->shutdown) return NC_ERR_NETCORE_SHUTDOWN; /* netcore accepts nothing new */
  if ((rv = keep_request(s, cmd)) != 0) return rv;
  if (loop->relinking) {
    s->state = NC__SV_RELISTEN; /* sent after the new Welcome */
  } else if ((rv = send_listen(s)) != 0) {
    return rv;
  }
  s->listen_cb = cb;
  nc__ref(&s->h);
  return 0;
}

int nc_server_listen(nc_server_t *s, int port, const char *host, nc_server_cb cb) {
  if (s == NULL) return NC_EINVAL;
  if (port < 0 || port > 65535) return NC_ERR_SOCKET_BAD_PORT;
  ncc_cmd cmd = {.ep = {.kind = NCC_EP_TCP, .host = host ? host : "", .port = port}};
  return listen_common(s, &cmd, cb);
}

int nc_server_listen_path(nc_server_t *s, const char *path, nc_server_cb cb) {
  if (s == NULL || path == NULL || path[0] == '\0') return NC_EINVAL;
  ncc_cmd cmd = {.ep = {.kind = NCC_EP_PATH, .path = path}};
  return listen_common(s, &cmd, cb);
}

int nc_server_listen_fd(nc_server_t *s, int fd, nc_server_cb cb) {
  if (s == NULL || fd < 0) return NC_EINVAL;
  ncc_cmd cmd = {.ep = {.kind = NCC_EP_FD, .fd = fd}};
  return listen_common(s, &cmd, cb);
}

int nc_server_pause(nc_server_t *s, unsigned msecs) {
  if (s == NULL) return NC_EINVAL;
  if (s->state != NC__SV_LISTENING) return NC_ERR_SERVER_NOT_RUNNING;
  ncc_cmd cmd = {.kind = NCC_CMD_SERVER_PAUSE, .id = s->id, .msecs = msecs};
  return nc__send(s->h.loop, &cmd, NULL, 0, NULL);
}

int nc_server_set_max_connections(nc_server_t *s, unsigned n) {
  if (s == NULL) return NC_EINVAL;
  s->max_connections = n;
  if (s->state != NC__SV_LISTENING && s->state != NC__SV_LISTENING_PENDING) return 0;
  ncc_cmd cmd = {.kind = NCC_CMD_SERVER_SET_MAX, .id = s->id, .max_connections = n};
  return nc__send(s->h.loop, &cmd, NULL, 0, NULL);
}

unsigned nc_server_max_connections(const nc_server_t *s) { return s->max_connections; }
unsigned nc_server_connections(const nc_server_t *s) { return s->connections; }

int nc_server_address(const nc_server_t *s, nc_address_t *addr) {
  if (s == NULL || addr == NULL) return NC_EINVAL;
  if (s->state != NC__SV_LISTENING) return NC_ERR_SERVER_NOT_RUNNING;
  *addr = s->addr;
  return 0;
}

int nc_server_close(nc_server_t *s, nc_server_cb cb) {
  if (s == NULL) return NC_EINVAL;
  if (s->close_requested) return 0;
  s->close_requested = 1;
  s->close_cb = cb;
  nc__ref(&s->h);
  if ((s->state == NC__SV_LISTENING || s->state == NC__SV_LISTENING_PENDING) &&
      !s->h.loop->gone) {
    ncc_cmd cmd = {.kind = NCC_CMD_SERVER_CLOSE, .id = s->id};
    s->state = NC__SV_CLOSING;
    nc__send(s->h.loop, &cmd, NULL, 0, NULL); /* on failure, the loss of netcore closes it */
    return 0;
  }
  nc__pend(&s->h, NC__P_CLOSE);
  return 0;
}

nc_loop_t *nc_server_loop(const nc_server_t *s) { return s->h.loop; }
void nc_server_set_data(nc_server_t *s, void *data) { s->h.data = data; }
void *nc_server_get_data(const nc_server_t *s) { return s->h.data; }

/* ------------------------------------------------------------- internals */

static void forget_id(nc_server_t *s) {
  if (s->id != 0) {
    ncc_idmap_del(&s->h.loop->server_ids, s->id);
    s->id = 0;
  }
}

void nc__server_free(nc_server_t *s) {
  nc_loop_t *loop = s->h.loop;
  forget_id(s);
  ncc_list_remove(&s->h.all);
  if (s->h.pending_flags) ncc_list_remove(&s->h.pend);
  for (ncc_list *l = loop->sockets.next; l != &loop->sockets; l = l->next) {
    nc_socket_t *sock = ncc_container_of(l, nc_socket_t, h.all);
    if (sock->server == s) sock->server = NULL;
  }
  nc__unref(&s->h);
  free(s->group);
  free((char *)s->req.ep.host);
  free((char *)s->req.ep.path);
  free(s);
}

/* 'close' (the on_close event, then close()'s own callback), then free. */
static void finish_close(nc_server_t *s) {
  nc_server_cb cb = s->close_cb;
  forget_id(s);
  s->state = NC__SV_IDLE;
  if (s->ev.on_close != NULL) s->ev.on_close(s);
  if (cb != NULL) cb(s);
  nc__server_free(s);
}

void nc__server_error_event(nc_server_t *s, int err, const char *msg) {
  forget_id(s);
  if (s->close_requested) {
    finish_close(s);
    return;
  }
  s->state = NC__SV_IDLE;
  s->listen_cb = NULL;
  nc__unref(&s->h);
  if (s->ev.on_error != NULL) s->ev.on_error(s, err, msg);
}

/* 1 if a connection accepted under s's incarnation id is still open. */
static int has_open_conn(const nc_server_t *s, uint64_t id) {
  nc_loop_t *loop = s->h.loop;
  for (ncc_list *l = loop->sockets.next; l != &loop->sockets; l = l->next) {
    const nc_socket_t *sock = ncc_container_of(l, nc_socket_t, h.all);
    if (sock->server == s && sock->server_id == id && sock->state != NC__SK_CLOSED) return 1;
  }
  return 0;
}

void nc__server_refused(nc_server_t *s, int err, const char *msg) {
  /* A ServerClose sent again after a resume (nc__server_resumed) to a
   * netcore that is closing the server already: its ServerClosed follows. */
  if (s->state == NC__SV_CLOSING && err == NC_ERR_SERVER_NOT_RUNNING) return;
  /* EBADF about a closing one: the old netcore had it closing and did not
   * ship it, but shipped its connections with the session. As in Node, the
   * close completes when the last of them has closed (nc__server_conn_closed). */
  if (s->state == NC__SV_CLOSING && err == NC_EBADF && s->id != 0 && has_open_conn(s, s->id)) {
    s->close_on_last = s->id;
    forget_id(s); /* dead in netcore; its connections keep s and the id */
    return;
  }
  /* Anything else ends it; EBADF with no connection left (the old netcore
   * closed it and its ServerClosed was lost) completes the close now. */
  nc__server_error_event(s, err, msg);
}

void nc__server_conn_closed(nc_server_t *s) {
  if (s->close_on_last == 0 || (s->h.pending_flags & NC__P_CLOSE)) return;
  if (has_open_conn(s, s->close_on_last)) return;
  nc__pend(&s->h, NC__P_CLOSE); /* after the socket's own 'close', as Node */
}

void nc__server_event(nc_server_t *s, const ncc_event *ev) {
  switch (ev->kind) {
  case NCC_EV_LISTENING: {
    if (s->state != NC__SV_LISTENING_PENDING) break; /* closed meanwhile */
    s->state = NC__SV_LISTENING;
    nc__address(ev->local, &s->addr);
    /* A relisten asks for the port netcore chose, so clients find it again. */
    if (s->req.ep.kind == NCC_EP_TCP && s->req.ep.port == 0) s->req.ep.port = s->addr.port;
    nc_server_cb cb = s->listen_cb;
    s->listen_cb = NULL;
    if (cb != NULL) cb(s);
    if (s->state == NC__SV_LISTENING && s->ev.on_listening != NULL) s->ev.on_listening(s);
    break;
  }
  case NCC_EV_SERVER_ERROR: {
    char msg[512];
    snprintf(msg, sizeof(msg), "%s%s%s", ev->code, ev->message[0] ? ": " : "", ev->message);
    nc__server_error_event(s, nc__err_code(ev->code), msg);
    break;
  }
  case NCC_EV_SERVER_CLOSED:
    if (!s->close_requested && s->h.loop->shutdown && nc__server_link_lost(s)) {
      break; /* netcore is restarting: listen again on the next netcore */
    }
    if (!s->close_requested) {
      /* netcore closed it on its own: it is shutting down. */
      nc_loop_t *loop = s->h.loop;
      int err = loop->shutdown ? NC_ERR_NETCORE_SHUTDOWN : NC_ERR_SERVER_NOT_RUNNING;
      s->close_requested = 1;
      if (s->ev.on_error != NULL) s->ev.on_error(s, err, loop->errmsg);
    }
    finish_close(s);
    break;
  default:
    break;
  }
}

void nc__server_pending(nc_server_t *s, unsigned flags) {
  if (flags & NC__P_CLOSE) finish_close(s);
}

int nc__server_link_lost(nc_server_t *s) {
  if (!s->h.loop->reconnect || s->close_requested) return 0;
  if (s->state != NC__SV_LISTENING && s->state != NC__SV_LISTENING_PENDING &&
      s->state != NC__SV_RELISTEN)
    return 0;
  forget_id(s);
  s->state = NC__SV_RELISTEN;
  return 1;
}

void nc__server_relisten(nc_server_t *s) {
  if (s->state != NC__SV_RELISTEN) return;
  s->connections = 0;
  /* A failed send marks the link lost again; the server keeps waiting. */
  (void)send_listen(s);
}

void nc__server_resumed(nc_server_t *s, int held) {
  if (s->state == NC__SV_RELISTEN) {
    nc__server_relisten(s);
    return;
  }
  if (s->state == NC__SV_CLOSING && s->id != 0) {
    /* Its ServerClose may never have been read by the old netcore, or its
     * ServerClosed was lost with it: the same ServerClose again. The answer
     * is ServerClosed (closed now, or when its last connection closes),
     * ERR_SERVER_NOT_RUNNING (closing already: keep waiting) or EBADF (gone
     * with the old netcore: closed), nc__server_refused. */
    ncc_cmd cmd = {.kind = NCC_CMD_SERVER_CLOSE, .id = s->id};
    (void)nc__send(s->h.loop, &cmd, NULL, 0, NULL); /* a failure loses the link again */
    return;
  }
  if (s->state != NC__SV_LISTENING_PENDING || held || s->id == 0) return;
  /* Its Listen was lost with the old netcore: the same one, the same id. */
  (void)send_listen_cmd(s, s->id);
}

void nc__server_gone(nc_server_t *s, int err, const char *msg) {
  forget_id(s);
  if (!s->close_requested) {
    s->close_requested = 1;
    if (s->ev.on_error != NULL) s->ev.on_error(s, err, msg);
  }
  finish_close(s);
}
