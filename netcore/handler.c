/* handler.c: see handler.h. */
#include "handler.h"

#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "errors.h"
#include "handoff.h"
#include "log.h"
#include "resume.h"
#include "router.h"
#include "server.h"
#include "socket.h"

#define LEASE_CHECK_MS 50

ncd_handler *ncd_handler_find(const void *rid, size_t rid_len, const char *user_id) {
  if (!user_id) return NULL;
  for (ncc_list *l = ncd.handlers.next; l != &ncd.handlers; l = l->next) {
    ncd_handler *h = ncc_container_of(l, ncd_handler, link);
    if (!ncd_handler_dead(h) && h->rid_len == rid_len && memcmp(h->rid, rid, rid_len) == 0) {
      if (strcmp(h->user_id, user_id) != 0) {
        ncd_warn("handler %s (%s): connection %s now has its routing id; its own connection "
                 "is closed", h->name, h->principal, user_id);
        ncd_handler_lost(h, "connection replaced");
        return NULL;
      }
      /* Move to front: the busiest handlers are found first. */
      if (ncd.handlers.next != l) {
        ncc_list_remove(l);
        l->next = ncd.handlers.next;
        l->prev = &ncd.handlers;
        ncd.handlers.next->prev = l;
        ncd.handlers.next = l;
      }
      return h;
    }
  }
  return NULL;
}

static uint32_t clamp_credit(uint32_t asked) {
  if (asked == 0) return ncd.cfg.credit_window;
  return asked > ncd.cfg.max_credit ? ncd.cfg.max_credit : asked;
}

void ncd_handler_conn_closed(int conn_fd) {
  ncc_list *l, *next;
  for (l = ncd.handlers.next; l != &ncd.handlers; l = next) {
    next = l->next;
    ncd_handler *h = ncc_container_of(l, ncd_handler, link);
    if (!h->gone && h->conn_fd == conn_fd) ncd_handler_lost(h, "connection closed");
  }
}

int ncd_handler_hello(const void *rid, size_t rid_len, const char *user_id, int conn_fd,
                      const ncc_cmd *cmd, ncd_err *err) {
  if (cmd->version != NCC_PROTOCOL_VERSION)
    return ncd_err_set(err, NCD_ERR_UNSUPPORTED_VERSION,
                       "protocol version %u is not supported; netcore speaks %d", cmd->version,
                       NCC_PROTOCOL_VERSION);
  if (ncd.shutting_down) return NCD_ERR_NETCORE_SHUTDOWN;
  if (cmd->service && strlen(cmd->service) >= sizeof ((ncd_handler *)0)->service)
    return ncd_err_set(err, NCD_ERR_INVALID_ARG_VALUE, "service name of %zu bytes; at most %zu",
                       strlen(cmd->service), sizeof ((ncd_handler *)0)->service - 1);
  if (!user_id || conn_fd < 0)
    return ncd_err_set(err, NCD_EACCES, "this connection was not authenticated");
  /* Closes of earlier connections first: one that had this fd is dead. */
  ncd_router_poll_monitor();
  ncd_handler *old = ncd_handler_find(rid, rid_len, user_id);
  if (old) ncd_handler_gone(old, "said Hello again");
  if (cmd->resume_token_len) { /* PROTOCOL.md 16.1 */
    int rc = ncd_resume_hello(rid, rid_len, user_id, conn_fd, cmd, err);
    if (rc != 0) return rc < 0 ? rc : 0;
  }
  ncd_handler *h = calloc(1, sizeof *h);
  if (!h || !(h->tally = ncd_tally_new())) {
    free(h);
    return NCD_ENOMEM;
  }
  if (uv_random(NULL, NULL, h->session_token, sizeof h->session_token, 0, NULL) != 0) {
    ncd_tally_drop(h->tally);
    free(h);
    return ncd_err_set(err, NCD_EIO, "no randomness for a session token");
  }
  h->batch.alloc_frame = ncd_tally_alloc_frame;
  h->batch.alloc_ctx = h->tally;
  memcpy(h->rid, rid, rid_len);
  h->rid_len = rid_len;
  snprintf(h->user_id, sizeof h->user_id, "%s", user_id);
  snprintf(h->principal, sizeof h->principal, "%s", ncd_auth_principal(user_id));
  ncd_handler_apply_policy(h);
  h->conn_fd = conn_fd;
  h->prefix = ncd.next_prefix++;
  h->last_id = (uint64_t)h->prefix << 32;
  snprintf(h->name, sizeof h->name, "%s", cmd->hello_name && *cmd->hello_name ? cmd->hello_name : "handler");
  snprintf(h->service, sizeof h->service, "%s", cmd->service ? cmd->service : "");
  h->credit_window = clamp_credit(cmd->credit_window);
  h->lazy_acks = cmd->lazy_acks;
  h->batch_events = cmd->batch_events;
  h->resumable = cmd->resumable;
  h->lease_ms = cmd->lease_ms ? cmd->lease_ms : ncd.cfg.lease_ms;
  if (h->lease_ms < 50) h->lease_ms = 50;
  ncc_list_init(&h->sockets);
  ncc_list_init(&h->servers);
  ncc_list_init(&h->link);
  ncc_list_push(&ncd.handlers, &h->link);
  ncd_handler_touch(h);

  ncc_welcome w = ncd_handler_welcome(h);
  ncc_event ev = {.kind = NCC_EV_WELCOME, .welcome = &w};
  ncd_router_send(h, &ev, NULL);
  ncd_metrics_handler_joined(h);
  return 0;
}

/* Nothing more goes to h: its queued events are dropped. */
static void drop_link(ncd_handler *h, const char *reason) {
  h->gone = 1;
  ncd_metrics_handler_gone(h, reason);
  while (h->outq_head) {
    ncd_outmsg *m = h->outq_head;
    h->outq_head = m->next;
    for (size_t i = 0; i < m->nframes; i++) zmq_msg_close(&m->frames[i]);
    free(m);
  }
  h->outq_tail = NULL;
  h->outq_len = 0;
  h->blocked = 0;
  ncc_msgbatch_clear(&h->batch);
}

/* Closes h's servers and destroys its sockets (without events). */
static void teardown(ncd_handler *h) {
  /* Servers first, so no new connection lands on a handler being emptied. */
  ncc_list *l, *next;
  for (l = h->servers.next; l != &h->servers; l = next) {
    next = l->next;
    ncd_server_close(ncc_container_of(l, ncd_server, owner_link));
  }
  for (l = h->sockets.next; l != &h->sockets; l = next) {
    next = l->next;
    ncd_socket_destroy(ncc_container_of(l, ncd_socket, owner_link), 0);
  }
}

void ncd_handler_apply_policy(ncd_handler *h) {
  h->policy = ncd_policy_entry_for(ncd.policy, h->principal);
  h->max_sockets = ncd.cfg.max_handler_sockets;
  h->max_servers = ncd.cfg.max_handler_servers;
  h->budget = ncd.cfg.handler_budget;
  ncd_policy_limits(h->policy, &h->max_sockets, &h->max_servers, &h->budget);
}

void ncd_handler_gone(ncd_handler *h, const char *reason) {
  if (h->gone && !h->parked_until) return;
  if (h->parked_until) {
    h->parked_until = 0;
    ncd_info("handler %s (prefix %u, %s): %u connections not adopted: %s", h->name, h->prefix,
             h->principal, h->nsockets, reason);
  } else {
    ncd_info("handler %s (prefix %u, %s) gone: %s", h->name, h->prefix, h->principal, reason);
    drop_link(h, reason);
  }
  teardown(h);
}

void ncd_handler_lost(ncd_handler *h, const char *reason) {
  if (h->gone) return;
  if (ncd.shutting_down) {
    ncd_handler_gone(h, reason);
    return;
  }
  ncd_info("handler %s (prefix %u, %s) gone: %s", h->name, h->prefix, h->principal, reason);
  drop_link(h, reason);
  uint32_t before = h->nsockets;
  if (ncd_handoff_start(h) > 0) {
    /* At least 1 ms: an adopter is looked for at the next lease check. */
    h->parked_until = uv_now(ncd.loop) + (ncd.cfg.handoff_ms ? ncd.cfg.handoff_ms : 1);
    ncd_info("handler %s (prefix %u): %u of %u connections handed on, %u parked for %u ms", h->name,
             h->prefix, before - h->nsockets, before, h->nsockets, ncd.cfg.handoff_ms);
  } else {
    teardown(h);
  }
}

ncd_handler *ncd_handler_ghost(const char *principal, const char *name, const char *service,
                               uint32_t prefix, uint32_t credit_window, int lazy_acks) {
  ncd_handler *h = calloc(1, sizeof *h);
  if (!h || !(h->tally = ncd_tally_new())) {
    free(h);
    return NULL;
  }
  h->batch.alloc_frame = ncd_tally_alloc_frame;
  h->batch.alloc_ctx = h->tally;
  snprintf(h->principal, sizeof h->principal, "%s", principal);
  snprintf(h->name, sizeof h->name, "%s", name);
  snprintf(h->service, sizeof h->service, "%s", service);
  ncd_handler_apply_policy(h);
  h->conn_fd = -1;
  h->prefix = prefix;
  h->last_id = (uint64_t)prefix << 32;
  h->credit_window = clamp_credit(credit_window);
  h->lazy_acks = lazy_acks;
  h->lease_ms = ncd.cfg.lease_ms;
  h->gone = 1;
  h->taken_over = 1;
  uv_update_time(ncd.loop);
  h->parked_until = uv_now(ncd.loop) + (ncd.cfg.handoff_ms ? ncd.cfg.handoff_ms : 1);
  ncc_list_init(&h->sockets);
  ncc_list_init(&h->servers);
  ncc_list_init(&h->link);
  ncc_list_push(&ncd.handlers, &h->link);
  return h;
}

ncc_welcome ncd_handler_welcome(const ncd_handler *h) {
  return (ncc_welcome){.minor_version = NCC_PROTOCOL_MINOR,
                       .instance_id = ncd.instance_id,
                       .server_version = NCD_VERSION,
                       .id_prefix = h->prefix,
                       .credit_window = h->credit_window,
                       .lease_ms = h->lease_ms,
                       .max_frame = ncd.cfg.max_frame,
                       .max_write_queue = ncd.cfg.max_write_queue,
                       .session_token = h->session_token,
                       .session_token_len = sizeof h->session_token};
}

void ncd_handler_touch(ncd_handler *h) { h->last_seen = uv_now(ncd.loop); }

void ncd_handler_update_reading(ncd_handler *h) {
  for (ncc_list *l = h->sockets.next; l != &h->sockets; l = l->next)
    ncd_socket_update_reading(ncc_container_of(l, ncd_socket, owner_link));
}

int ncd_handler_claim_id(ncd_handler *h, uint64_t id, ncd_err *err) {
  if ((uint32_t)(id >> 32) != h->prefix)
    return ncd_err_set(err, NCD_ERR_INVALID_ARG_VALUE,
                       "id %llu does not carry this handler's prefix %u", (unsigned long long)id,
                       h->prefix);
  if (id <= h->last_id && ncc_idmap_get(&h->reclaim, id)) { /* sent again after a resume: once */
    ncc_idmap_del(&h->reclaim, id);
    return 0;
  }
  if (id <= h->last_id)
    return ncd_err_set(err, NCD_ERR_INVALID_ARG_VALUE,
                       "id %llu is not greater than the last id used (%llu)",
                       (unsigned long long)id, (unsigned long long)h->last_id);
  h->last_id = id;
  return 0;
}

/* The rule both lookups share: an unknown id and another handler's id get the
 * same EBADF and the same message, so ids of others cannot be probed. */
static int check_owned(const void *obj, const ncd_handler *owner, const ncd_handler *h,
                       const char *what, uint64_t id, ncd_err *err) {
  if (!obj || owner != h)
    return ncd_err_set(err, NCD_EBADF, "no %s with id %llu", what, (unsigned long long)id);
  return 0;
}

int ncd_handler_socket(ncd_handler *h, uint64_t id, ncd_socket **out, ncd_err *err) {
  ncd_socket *s = ncc_idmap_get(&ncd.sockets, id);
  int rc = check_owned(s, s ? s->owner : NULL, h, "socket", id, err);
  if (rc == 0) *out = s;
  return rc;
}

int ncd_handler_server(ncd_handler *h, uint64_t id, ncd_server **out, ncd_err *err) {
  ncd_server *srv = ncc_idmap_get(&ncd.servers, id);
  int rc = check_owned(srv, srv ? srv->owner : NULL, h, "server", id, err);
  if (rc == 0) *out = srv;
  return rc;
}

int ncd_handler_socket_room(const ncd_handler *h) {
  return !h->max_sockets || h->nsockets < h->max_sockets;
}

/* A handler over its budget reads again once it has taken half of what was
 * charged to it; one that stays over for a whole lease is dropped, which
 * frees all of it (router.c check_budget says why). */
static void check_budget(ncd_handler *h, uint64_t now) {
  uint64_t owed = ncd_tally_in_flight(h->tally);
  if (owed <= h->budget / 2) {
    h->over_budget = 0;
    ncd_info("handler %s (prefix %u) caught up (%llu bytes not taken); reading its sockets again",
             h->name, h->prefix, (unsigned long long)owed);
    ncd_handler_update_reading(h);
  } else if (now - h->over_since > h->lease_ms) {
    ncd_handler_lost(h, "stayed over its memory budget for a lease");
  }
}

static void lease_cb(uv_timer_t *t) {
  uint64_t now = uv_now(ncd.loop);
  ncc_list *l, *next;
  for (l = ncd.handlers.next; l != &ncd.handlers; l = next) {
    next = l->next;
    ncd_handler *h = ncc_container_of(l, ncd_handler, link);
    if (!h->gone && now - h->last_seen > h->lease_ms) ncd_handler_lost(h, "lease expired");
    if (h->parked_until && now >= h->parked_until)
      ncd_handler_gone(h, "no adopter within --handoff-ms");
    if (!h->gone && h->over_budget) check_budget(h, now);
  }
  ncd_handler_reap();
}

int ncd_handler_start(void) {
  int rc = ncd_uv_check(uv_timer_init(ncd.loop, &ncd.lease_timer), "make the lease timer");
  if (rc == 0)
    rc = ncd_uv_check(uv_timer_start(&ncd.lease_timer, lease_cb, LEASE_CHECK_MS, LEASE_CHECK_MS),
                      "start the lease timer");
  return rc;
}

void ncd_handler_stop(void) { uv_close((uv_handle_t *)&ncd.lease_timer, NULL); }

void ncd_handler_doom(ncd_handler *h, const char *reason) {
  if (!h->doomed) h->doomed = reason;
}

void ncd_handler_reap(void) {
  ncc_list *l, *next;
  for (l = ncd.handlers.next; l != &ncd.handlers; l = next) {
    next = l->next;
    ncd_handler *h = ncc_container_of(l, ncd_handler, link);
    if (h->doomed && !h->gone) ncd_handler_lost(h, h->doomed);
  }
  for (l = ncd.handlers.next; l != &ncd.handlers; l = next) {
    next = l->next;
    ncd_handler *h = ncc_container_of(l, ncd_handler, link);
    if (h->gone && ncc_list_empty(&h->sockets) && ncc_list_empty(&h->servers)) {
      ncd_metrics_handler_freed(h);
      ncc_list_remove(&h->link);
      ncc_msgbatch_free(&h->batch);
      ncd_slab_drop(h->slab);
      ncd_tally_drop(h->tally);
      ncc_idmap_free(&h->reclaim);
      free(h);
    }
  }
}
