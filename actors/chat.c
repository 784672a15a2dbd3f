/* chat: every line a client sends goes to every other client.
 *
 * A client that does not read must not grow anyone's memory. When a write to
 * a client returns false (its backlog passed the high-water mark), the
 * sender is paused: netcore stops reading it and TCP pushes back on it, so
 * no line is lost and no queue grows. When every congested client has
 * drained, the senders resume. A client that stays congested for SLOW_MS is
 * one that does not read: it is disconnected, so it cannot stall the others
 * for long either. Lines longer than MAX_LINE go on in MAX_LINE pieces.
 *
 * Usage: chat [--port N] [--host H] [--path P] [--endpoint E]
 * Prints one line once listening: chat server listening on <address() JSON>. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nc/nc.h"
#include "options.h"
#include "serve.h"

#define MAX_LINE 4096
#define SLOW_MS 2000

typedef struct client_s {
  nc_socket_t *socket;
  struct client_s *prev, *next;
  int paused;           /* a sender we paused because someone is congested */
  uint64_t congested;   /* since when its writes wait (0 = not congested) */
  size_t len;
  char line[MAX_LINE];
} client_t;

static client_t *clients;
static int congested_clients;

static void resume_senders_if_clear(void) {
  if (congested_clients > 0) return;
  for (client_t *c = clients; c != NULL; c = c->next) {
    if (c->paused) {
      c->paused = 0;
      nc_socket_resume(c->socket);
    }
  }
}

static void broadcast(client_t *from, const char *line, size_t len) {
  for (client_t *c = clients; c != NULL; c = c->next) {
    if (c == from) continue;
    if (nc_socket_write(c->socket, line, len, NULL, NULL) == 0 && c->congested == 0) {
      c->congested = nc_loop_now(nc_socket_loop(c->socket));
      congested_clients++;
    }
  }
  if (congested_clients > 0 && !from->paused) {
    from->paused = 1;
    nc_socket_pause(from->socket);
  }
}

static void on_data(nc_socket_t *s, const char *data, size_t len) {
  client_t *me = nc_socket_get_data(s);
  for (size_t i = 0; i < len; i++) {
    me->line[me->len++] = data[i];
    if (data[i] == '\n' || me->len == MAX_LINE) {
      broadcast(me, me->line, me->len);
      me->len = 0;
    }
  }
}

static void not_congested(client_t *c) {
  if (c->congested != 0) {
    c->congested = 0;
    congested_clients--;
  }
}

static void on_drain(nc_socket_t *s) {
  not_congested(nc_socket_get_data(s));
  resume_senders_if_clear();
}

static void on_close(nc_socket_t *s, int had_error) {
  client_t *me = nc_socket_get_data(s);
  (void)had_error;
  not_congested(me);
  if (me->prev) me->prev->next = me->next;
  else clients = me->next;
  if (me->next) me->next->prev = me->prev;
  free(me);
  resume_senders_if_clear();
}

/* Every half second: disconnect whoever has not read for SLOW_MS. */
static void on_watchdog(nc_timer_t *timer) {
  uint64_t now = nc_loop_now(nc_timer_get_data(timer));
  for (client_t *c = clients; c != NULL; c = c->next) {
    if (c->congested != 0 && now - c->congested > SLOW_MS) {
      fprintf(stderr, "chat: disconnecting a client that does not read\n");
      not_congested(c);
      nc_socket_destroy(c->socket);
    }
  }
  resume_senders_if_clear();
}

static void on_connection(nc_server_t *server, nc_socket_t *s) {
  (void)server;
  client_t *me = calloc(1, sizeof(*me));
  if (me == NULL) {
    nc_socket_destroy(s);
    return;
  }
  nc_socket_events_t events = {.on_data = on_data, .on_drain = on_drain, .on_close = on_close};
  me->socket = s;
  me->next = clients;
  if (clients) clients->prev = me;
  clients = me;
  nc_socket_set_data(s, me);
  nc_socket_set_events(s, &events);
}

int main(int argc, char **argv) {
  nca_serve_t s = {.host = "127.0.0.1", .fd = -1, .prog = "chat",
                   .banner = "chat server listening on", .on_connection = on_connection,
                   .stop_on_error = 1 /* the watchdog timer would keep it running */};
  nca_option_t options[4];
  int n = nca_serve_options(&s, options,
                            NCA_SERVE_PORT | NCA_SERVE_HOST | NCA_SERVE_PATH | NCA_SERVE_ENDPOINT);
  const nca_program_t prog = {
      "chat", "[--port N] [--host H] [--path P] [--endpoint E]",
      "Every line a client sends goes to every other client; a client that does not read\n"
      "grows nobody's memory."};
  int code = nca_options_parse(&prog, options, n, argc, argv);
  if (code >= 0) return code;

  if (nca_serve_open(&s) != 0) return 1;
  nc_timer_t *watchdog;
  nc_timer_new(s.loop, &watchdog);
  nc_timer_set_data(watchdog, s.loop);
  nc_timer_start(watchdog, on_watchdog, 500, 500);
  code = nca_serve_run(&s); /* frees the sockets; our client records go next */
  while (clients != NULL) {
    client_t *next = clients->next;
    free(clients);
    clients = next;
  }
  return code;
}
