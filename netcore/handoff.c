/* handoff.c: see handoff.h. */
#include "handoff.h"

#include <stdlib.h>
#include <string.h>

#include "pipe.h"
#include "server.h"
#include "socket.h"

static int same_principal(const ncd_handler *a, const ncd_handler *b) {
  return strcmp(a->principal, b->principal) == 0;
}

/* A parked member of l whose connections h may take. */
static int adoptable(const ncd_server *m, const ncd_listener *l, const ncd_handler *h) {
  const ncd_handler *o = m->owner;
  if (!o->parked_until || m->closing || !same_principal(o, h)) return 0;
  if (l->group[0]) return 1;
  /* A previous netcore's handler (takeover.h) is succeeded by the same
   * principal under the same service name, none included. */
  if (o->taken_over) return strcmp(o->service, h->service) == 0;
  return h->service[0] && strcmp(o->service, h->service) == 0;
}

/* The next live member of l with dead's principal, in round-robin order. */
static ncd_server *heir(ncd_listener *l, const ncd_handler *dead) {
  for (ncc_list *e = l->members.next; e != &l->members; e = e->next) {
    ncd_server *m = ncc_container_of(e, ncd_server, member_link);
    if (m->owner != dead && !ncd_handler_dead(m->owner) && !m->closing &&
        same_principal(m->owner, dead)) {
      ncc_list_remove(e);
      ncc_list_push(&l->members, e);
      return m;
    }
  }
  return NULL;
}

static int has_live_member(const ncd_listener *l) {
  for (const ncc_list *e = l->members.next; e != &l->members; e = e->next) {
    const ncd_server *m = ncc_container_of(e, ncd_server, member_link);
    if (!ncd_handler_dead(m->owner) && !m->closing) return 1;
  }
  return 0;
}

static int linked(const ncd_socket *s) { return s->pipe || !ncc_list_empty(&s->piped_in); }

/* A work list of sockets (move_linked). */
typedef struct todo {
  ncd_socket **at;
  size_t n, cap;
} todo;

static void push(todo *t, ncd_socket *s) {
  if (t->n == t->cap) {
    size_t cap = t->cap ? 2 * t->cap : 8;
    ncd_socket **p = realloc(t->at, cap * sizeof *p);
    if (!p) return; /* left behind: its pipes stop when it goes */
    t->at = p, t->cap = cap;
  }
  t->at[t->n++] = s;
}

/* Moves s to `to`, and with it every accepted socket a chain of pipes links
 * it to (pipe.h): both ends of a pipe always have one owner. A work list,
 * not recursion: a handler may chain thousands of sockets. */
static void move_linked(ncd_socket *s, ncd_server *to) {
  todo t = {0};
  for (ncd_socket *x = s;; x = t.at[--t.n]) {
    if (x->owner != to->owner && !x->closing && x->server) {
      ncd_socket_move(x, to);
      if (!x->closing && x->pipe) push(&t, x->pipe->dest);
      if (!x->closing)
        for (ncc_list *e = x->piped_in.next; e != &x->piped_in; e = e->next)
          push(&t, ncc_container_of(e, ncd_pipe, dest_link)->src);
    }
    if (!t.n) break;
  }
  free(t.at);
}

/* Moves the live connections srv accepted to `to`, or, when to is NULL, to
 * heirs in srv's listener group (spread round robin) while there are any. */
static void move_sockets(ncd_server *srv, ncd_server *to) {
  ncd_handler *h = srv->owner;
  ncc_list *e, *next;
  for (e = h->sockets.next; e != &h->sockets; e = next) {
    next = e->next;
    ncd_socket *s = ncc_container_of(e, ncd_socket, owner_link);
    if (s->server != srv || s->closing) continue;
    ncd_server *dest = to ? to : heir(srv->listener, h);
    if (!dest) return;
    if (!linked(s)) {
      ncd_socket_move(s, dest);
      continue;
    }
    move_linked(s, dest);
    next = h->sockets.next; /* the sockets moved with it may have included next */
  }
}

int ncd_handoff_start(ncd_handler *h) {
  int parked = 0;
  ncc_list *e, *next;
  for (e = h->servers.next; e != &h->servers; e = next) {
    next = e->next;
    ncd_server *srv = ncc_container_of(e, ncd_server, owner_link);
    ncd_listener *l = srv->listener;
    if (srv->closing) continue;
    if (!l || (!l->group[0] && !h->service[0])) {
      ncd_server_close(srv); /* nobody may adopt it: today's end */
      continue;
    }
    if (l->group[0]) {
      move_sockets(srv, NULL);
      if (srv->connections == 0 && has_live_member(l)) {
        ncd_server_close(srv); /* its share of the listener is the others' now */
        continue;
      }
    }
    parked++;
    ncd_listener_update(l); /* with no live member left, clients wait in the backlog */
  }
  for (e = h->sockets.next; e != &h->sockets; e = next) {
    next = e->next;
    ncd_socket *s = ncc_container_of(e, ncd_socket, owner_link);
    if (s->closing) continue;
    if (s->server && s->server->owner == h && !s->server->closing)
      ncd_socket_update_reading(s); /* parked: not read, its writes still drain */
    else
      ncd_socket_destroy(s, 0);
  }
  return parked;
}

int ncd_handoff_may_join(const ncd_handler *h, const ncd_listener *l, const char *group) {
  if (l->closing) return 0;
  if (group[0]) return strcmp(group, l->group) == 0;
  if (l->group[0] || ncc_list_empty(&l->members)) return 0;
  for (const ncc_list *e = l->members.next; e != &l->members; e = e->next)
    if (!adoptable(ncc_container_of(e, ncd_server, member_link), l, h)) return 0;
  return 1;
}

void ncd_handoff_joined(ncd_server *srv) {
  ncd_listener *l = srv->listener;
  ncc_list *e, *next;
  for (e = l->members.next; e != &l->members; e = next) {
    next = e->next;
    ncd_server *m = ncc_container_of(e, ncd_server, member_link);
    if (m == srv || !adoptable(m, l, srv->owner)) continue;
    move_sockets(m, srv);
    ncd_server_close(m);
  }
}
