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

/* The protocol 1.4 fields of cmd checked against session h: 0, or an error
 * naming the first bad entry. */
static int check_fields(const ncd_handler *h, const ncc_cmd *cmd, ncd_err *err) {
  for (size_t i = 0; i < cmd->nresume; i++) {
    const ncc_resume_socket *r = &cmd->resume[i];
    if (r->has_options && (r->no_delay > 2 || r->keep_alive > 2))
      return ncd_err_set(err, NCD_ERR_INVALID_ARG_VALUE,
                         "resume_sockets[%zu] (socket %llu): no_delay %u, keep_alive %u: each "
                         "must be 0 (never set), 1 (off) or 2 (on)",
                         i, (unsigned long long)r->socket_id, r->no_delay, r->keep_alive);
  }
  for (size_t i = 0; i < cmd->nresume_servers; i++) {
    uint64_t id = cmd->resume_servers[i];
    if ((uint32_t)(id >> 32) != h->prefix || (uint32_t)id == 0)
      return ncd_err_set(err, NCD_ERR_INVALID_ARG_VALUE,
                         "resume_servers[%zu]: id %llu is no server id of this session "
                         "(prefix %u)",
                         i, (unsigned long long)id, h->prefix);
  }
  return 0;
}

/* Lets h use id once more if it is its own and no object of it holds it
 * (the Listen or Connect that created it never reached this netcore). */
static void may_reclaim(ncd_handler *h, uint64_t id) {
  if ((uint32_t)(id >> 32) != h->prefix || id > h->last_id) return; /* a new id anyway */
  if (ncc_idmap_get(&ncd.sockets, id) || ncc_idmap_get(&ncd.servers, id)) return;
  /* Out of memory: that Connect/Listen then fails with a clear error. */
  (void)ncc_idmap_put(&h->reclaim, id, h);
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
  int rc = check_fields(h, cmd, err);
  if (rc != 0) {
    ncd_warn("handler %s (%s): resume refused: %s", h->name, principal, err ? err->message : "");
    return rc;
  }
  /* The servers it awaits Listening for that are here, by id, and the
   * listed sockets of this session, by id (the first entry of an id). */
  ncc_idmap_t awaited, listed;
  ncc_idmap_init(&awaited);
  ncc_idmap_init(&listed);
  uint64_t *servers = NULL;
  ncc_resumed_socket *list = NULL;
  size_t nservers = 0, n = 0;
  if ((cmd->nresume_servers && !(servers = calloc(cmd->nresume_servers, sizeof *servers))) ||
      (cmd->nresume && !(list = calloc(cmd->nresume, sizeof *list))))
    goto no_memory;
  for (size_t i = 0; i < cmd->nresume_servers; i++) {
    uint64_t id = cmd->resume_servers[i];
    ncd_server *srv = ncc_idmap_get(&ncd.servers, id);
    if (ncc_idmap_get(&awaited, id)) continue;
    if (!srv || srv->owner != h || srv->closing || !srv->listener) {
      may_reclaim(h, id);
      continue;
    }
    if (ncc_idmap_put(&awaited, id, srv) != 0) goto no_memory;
    servers[nservers++] = id;
  }
  for (size_t i = 0; i < cmd->nresume; i++) {
    const ncc_resume_socket *r = &cmd->resume[i];
    ncd_socket *s = ncc_idmap_get(&ncd.sockets, r->socket_id);
    if (!s || s->owner != h || s->closing) {
      /* A Connect it awaits an answer to that is not here: it sends it again. */
      if (r->connecting) may_reclaim(h, r->socket_id);
      continue;
    }
    if (ncc_idmap_get(&listed, s->id)) continue;
    if (ncc_idmap_put(&listed, s->id, (void *)r) != 0) goto no_memory;
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
  ncc_welcome w = ncd_handler_welcome(h);
  w.resumed = 1;
  w.resumed_sockets = list;
  w.nresumed = n;
  w.resumed_servers = servers;
  w.nresumed_servers = nservers;
  ncc_event ev = {.kind = NCC_EV_WELCOME, .welcome = &w};
  ncd_router_send(h, &ev, NULL);
  free(list);
  /* Listening the old netcore sent and the handler never got, again. */
  for (size_t i = 0; i < nservers; i++)
    ncd_server_listening_again(ncc_idmap_get(&awaited, servers[i]));
  ncc_idmap_free(&awaited);
  free(servers);
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
           "%u unknown to it ended, %u servers (%zu listening again), %zu ids to send again",
           h->name, h->prefix, h->principal, named, announced, ended, h->nservers, nservers,
           h->reclaim.count);
  return 1;

no_memory:
  ncc_idmap_free(&awaited);
  ncc_idmap_free(&listed);
  free(servers);
  free(list);
  return ncd_err_set(err, NCD_ENOMEM, "no memory for the %zu sockets and %zu servers of the "
                     "resumed session", cmd->nresume, cmd->nresume_servers);
}
