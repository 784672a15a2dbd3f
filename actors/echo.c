/* echo: the seed's first example as a netcore handler actor.
 *
 *   var server = net.createServer(function (c) {
 *     c.write('hello\r\n');
 *     c.pipe(c);
 *   });
 *   server.listen(8124, 'localhost');
 *
 * Usage: echo [--port N] [--host H] [--path P] [--fd N] [--endpoint E] [--group G] [--service S]
 *             [--via-handler]
 * --via-handler: echo from the data callback instead of pipe(): write()
 * every chunk back, pause() when write() returns 0 (false), resume() on
 * 'drain'. The same bytes, but every one passes through this process, so the
 * benchmark measures the path through a handler (the default, pipe(), may be
 * done inside netcore).
 * --fd N: listenFD(N), a listener netcore inherited (--listen-fd, or systemd's
 * socket activation: the first is 3).
 * Prints one line once listening: echo server listening on <address() JSON>.
 * Errors go to stderr with Node's code; exit 1 (a usage error: exit 2; --help: exit 0). SIGINT/SIGTERM, and netcore
 * announcing its own shutdown (it drains, then closes everything): exit 0.
 *
 * --group G shares the port with every echo started with the same group
 * (`echo --group g --port 8124` twice); --service S names this echo so that a
 * restarted one inherits its connections (PROTOCOL.md 13). With either,
 * SIGINT/SIGTERM hand the connections over (Bye{handoff}) instead of closing
 * them. A connection adopted from an echo that died or left is greeted only
 * when nothing was written to it yet (nc_socket_bytes_written() == 0: the
 * Adopted's bytes_written and queued_bytes are both 0, the old echo died
 * before its greeting reached netcore); otherwise its peer was greeted already.
 *
 * SIGUSR1 prints "echo connections N adopted M": the 'connection' events so
 * far, and how many of them were adopted ones (a session resumed after a
 * netcore takeover has none new, PROTOCOL.md 16.1). */
#include <signal.h>
#include <stdio.h>

#include "nc/nc.h"
#include "options.h"
#include "serve.h"

static unsigned long connections, adopted;
static int via_handler;

/* --via-handler: Node's hand-written pipe, data -> write, false -> pause, drain -> resume. */
static void on_data(nc_socket_t *c, const char *data, size_t len) {
  if (nc_socket_write(c, data, len, NULL, NULL) == 0) nc_socket_pause(c);
}

static void on_drain(nc_socket_t *c) { nc_socket_resume(c); }

static const nc_socket_events_t via_events = {.on_data = on_data, .on_drain = on_drain};

static void on_connection(nc_server_t *server, nc_socket_t *c) {
  (void)server;
  connections++;
  adopted += nc_socket_adopted(c) != 0;
  /* An adopted peer was greeted already unless nothing was ever written to it. */
  if (!nc_socket_adopted(c) || nc_socket_bytes_written(c) == 0)
    nc_socket_write(c, "hello\r\n", 7, NULL, NULL);
  if (via_handler)
    nc_socket_set_events(c, &via_events);
  else
    nc_socket_pipe(c, c);
}

static void on_usr1(nc_loop_t *loop, int signum, void *arg) {
  (void)loop, (void)signum, (void)arg;
  printf("echo connections %lu adopted %lu\n", connections, adopted);
  fflush(stdout);
}

int main(int argc, char **argv) {
  nca_serve_t s = {.port = 8124, .host = "localhost", .fd = -1, .prog = "echo",
                   .banner = "echo server listening on", .on_connection = on_connection,
                   .shutdown_ok = 1};
  const char *group = NULL;
  nca_option_t options[8];
  int n = nca_serve_options(&s, options, NCA_SERVE_PORT | NCA_SERVE_HOST | NCA_SERVE_PATH |
                                             NCA_SERVE_FD | NCA_SERVE_ENDPOINT);
  options[n++] = (nca_option_t){"group", "G", "share the port with every echo of this group",
                                NCA_OPT_STRING, &group, 0, 0};
  options[n++] = (nca_option_t){"service", "S",
                                "name this echo so that a successor inherits its connections",
                                NCA_OPT_STRING, &s.service, 0, 0};
  options[n++] = (nca_option_t){"via-handler", "",
                                "echo with write/pause/resume here instead of pipe()", NCA_OPT_FLAG,
                                &via_handler, 0, 0};
  const nca_program_t prog = {
      "echo", "[--port N] [--host H] [--path P] [--fd N] [--endpoint E] [--group G] [--service S]"
              " [--via-handler]",
      "The seed's echo server as a netcore handler actor: greets every connection with\n"
      "\"hello\" and echoes every byte back."};
  int code = nca_options_parse(&prog, options, n, argc, argv);
  if (code >= 0) return code;

  s.server_options.group = group;
  s.handoff = group != NULL || s.service != NULL;
  if (nca_serve_open(&s) != 0) return 1;
  nc_loop_signal(s.loop, SIGUSR1, on_usr1, NULL);
  return nca_serve_run(&s);
}
