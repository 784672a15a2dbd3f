/* resume.c: see resume.h. */
#include "resume.h"

#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "errors.h"
#include "handler.h"
#include "log.h"
#include "router.h"
#include "server.h"
#include "socket.h"

/* Compares the whole token whatever differs first: the token is a secret. */
static int same_token(const uint8_t *a, const uint8_t *b, size_t n) {
  unsigned diff = 0;
  for (size_t i = 0; i < n; i++) diff |= (unsigned)(a[i] ^ b[i]);
  return diff == 0;
}

/* The parked session of principal named by token, or NULL. */
static ncd_handler *find_session(const char *principal, const uint8_t *token, size_t len) {
  if (len != sizeof ((ncd_handler *)0)->session_token) return NULL;
  for (ncc_list *e = ncd.handlers.next; e != &ncd.handlers; e = e->next) {
    ncd_handler *h = ncc_container_of(e, ncd_handler, link);
    if (h->resumable && h->taken_over && h->parked_until && !h->doomed &&
        same_token(h->session_token, token, len) && strcmp(h->principal, principal) == 0)
      return h;
  }
  return NULL;
}

int ncd_resume_hello(const void *rid, size_t rid_len, const char *user_id, int conn_fd,
                     const ncc_cmd *cmd, ncd_err *err) {
  const char *principal = ncd_auth_principal(user_id);
  ncd_handler *h = find_session(principal, cmd->resume_token, cmd->resume_token_len);
  if (!h) {
    ncd_info("handler %s (%s): no session to resume with that token here; a new one",
             cmd->hello_name && *cmd->hello_name ? cmd->hello_name : "handler", principal);
    return 0;
  }
  /* The listed sockets of this session, by id (the first entry of an id). */
  ncc_idmap_t listed;
  ncc_idmap_init(&listed);
  ncc_resumed_socket *list = NULL;
  size_t n = 0;
  if (cmd->nresume && !(list = calloc(cmd->nresume, sizeof *list)))
    return ncd_err_set(err, NCD_ENOMEM, "no memory for the %zu sockets of the resumed session",
                       cmd->nresume);
  for (size_t i = 0; i < cmd->nresume; i++) {
    const ncc_resume_socket *r = &cmd->resume[i];
    ncd_socket *s = ncc_idmap_get(&ncd.sockets, r->socket_id);
    if (!s || s->owner != h || s->closing || ncc_idmap_get(&listed, s->id)) continue;
    if (ncc_idmap_put(&listed, s->id, (void *)r) != 0) {
      ncc_idmap_free(&listed);
      free(list);
      return ncd_err_set(err, NCD_ENOMEM, "no memory for the sockets of the resumed session");
    }
    list[n++] = (ncc_resumed_socket){.socket_id = s->id, .writes = s->writes_in};
  }
  /* The session is this connection's now. */
  memcpy(h->rid, rid, rid_len);
  h->rid_len = rid_len;
  snprintf(h->user_id, sizeof h->user_id, "%s", user_id);
  h->conn_fd = conn_fd;
  h->gone = 0;
  h->parked_until = 0;
  h->taken_over = 0;
  ncd_handler_apply_policy(h);
  ncd_handler_touch(h);
  ncc_welcome w = {.minor_version = NCC_PROTOCOL_MINOR,
                   .instance_id = ncd.instance_id,
                   .server_version = NCD_VERSION,
                   .id_prefix = h->prefix,
                   .credit_window = h->credit_window,
                   .lease_ms = h->lease_ms,
                   .max_frame = ncd.cfg.max_frame,
                   .max_write_queue = ncd.cfg.max_write_queue,
                   .session_token = h->session_token,
                   .session_token_len = sizeof h->session_token,
                   .resumed = 1,
                   .resumed_sockets = list,
                   .nresumed = n};
  ncc_event ev = {.kind = NCC_EV_WELCOME, .welcome = &w};
  ncd_router_send(h, &ev, NULL);
  free(list);
  ncd_metrics_handler_joined(h);
  uint32_t named = 0, announced = 0, ended = 0;
  ncc_list *e, *next;
  for (e = h->sockets.next; e != &h->sockets; e = next) {
    next = e->next;
    ncd_socket *s = ncc_container_of(e, ncd_socket, owner_link);
    if (s->closing) continue;
    const ncc_resume_socket *r = ncc_idmap_get(&listed, s->id);
    if (r) {
      ncd_socket_resume_session(s, r), named++;
    } else if (s->server) {
      ncd_socket_announce(s), announced++;
    } else {
      ncd_socket_destroy(s, 0), ended++; /* it knows nothing of it: nobody could use it */
    }
  }
  ncc_idmap_free(&listed);
  for (e = h->servers.next; e != &h->servers; e = e->next) {
    ncd_server *srv = ncc_container_of(e, ncd_server, owner_link);
    if (srv->listener) ncd_listener_update(srv->listener);
  }
  ncd_info("handler %s (prefix %u, %s): session resumed: %u sockets go on, %u announced, "
           "%u unknown to it ended, %u servers",
           h->name, h->prefix, h->principal, named, announced, ended, h->nservers);
  return 1;
}
