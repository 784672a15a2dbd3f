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
 * them, and a connection adopted from an echo that died or left is not
 * greeted again: its peer already was.
 *
 * SIGUSR1 prints "echo connections N adopted M": the 'connection' events so
 * far, and how many of them were adopted ones (a session resumed after a
 * netcore takeover has none new, PROTOCOL.md 16.1). */
#include <limits.h>
#include <signal.h>
#include <stdio.h>

#include "nc/nc.h"
#include "options.h"

static int exit_code;
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
  if (!nc_socket_adopted(c)) nc_socket_write(c, "hello\r\n", 7, NULL, NULL);
  if (via_handler)
    nc_socket_set_events(c, &via_events);
  else
    nc_socket_pipe(c, c);
}

static void on_listening(nc_server_t *server) {
  nc_address_t addr;
  char json[256];
  nc_server_address(server, &addr);
  nc_address_json(&addr, json, sizeof(json));
  printf("echo server listening on %s\n", json);
  fflush(stdout);
}

static void on_error(nc_server_t *server, int err, const char *message) {
  if (err == NC_ERR_NETCORE_SHUTDOWN) return; /* the end of netcore's drain, not a failure */
  fprintf(stderr, "echo: %s: %s\n", nc_err_name(err), message);
  exit_code = 1;
  nc_server_close(server, NULL);
}

static void on_usr1(nc_loop_t *loop, int signum, void *arg) {
  (void)loop, (void)signum, (void)arg;
  printf("echo connections %lu adopted %lu\n", connections, adopted);
  fflush(stdout);
}

static void on_signal(nc_loop_t *loop, int signum, void *server) {
  (void)signum;
  nc_server_close(server, NULL);
  nc_loop_stop(loop); /* nc_loop_free's Bye drops the open connections */
}

int main(int argc, char **argv) {
  int port = 8124, fd = -1;
  const char *host = "localhost", *path = NULL, *endpoint = NULL, *group = NULL, *service = NULL;
  const nca_option_t options[] = {
      {"port", "N", "TCP port to listen on (default 8124; 0: one the OS picks)", NCA_OPT_INT,
       &port, 0, 65535},
      {"host", "H", "address to listen on (default localhost)", NCA_OPT_STRING, &host, 0, 0},
      {"path", "P", "listen on this UNIX socket path instead", NCA_OPT_STRING, &path, 0, 0},
      {"fd", "N", "listen on a descriptor netcore inherited instead", NCA_OPT_INT, &fd, 0,
       INT_MAX},
      {"endpoint", "E", "netcore's endpoint (default: NETCORE_ENDPOINT, then the default rule)",
       NCA_OPT_STRING, &endpoint, 0, 0},
      {"group", "G", "share the port with every echo of this group", NCA_OPT_STRING, &group, 0,
       0},
      {"service", "S", "name this echo so that a successor inherits its connections",
       NCA_OPT_STRING, &service, 0, 0},
      {"via-handler", "", "echo with write/pause/resume here instead of pipe()", NCA_OPT_FLAG,
       &via_handler, 0, 0},
  };
  const nca_program_t prog = {
      "echo", "[--port N] [--host H] [--path P] [--fd N] [--endpoint E] [--group G] [--service S]"
              " [--via-handler]",
      "The seed's echo server as a netcore handler actor: greets every connection with\n"
      "\"hello\" and echoes every byte back."};
  int code = nca_options_parse(&prog, options, (int)(sizeof(options) / sizeof(options[0])), argc,
                               argv);
  if (code >= 0) return code;

  nc_loop_t *loop;
  nc_server_t *server;
  char err[512];
  int handoff = group != NULL || service != NULL;
  nc_loop_options_t opts = {
      .endpoint = endpoint, .name = "echo", .service = service, .handoff_on_signal = handoff};
  int rv = nc_loop_new(&loop, &opts, err, sizeof(err));
  if (rv != 0) {
    fprintf(stderr, "echo: %s: %s\n", nc_err_name(rv), err);
    return 1;
  }
  nc_server_options_t sopts = {.group = group};
  nc_server_new(loop, &sopts, on_connection, &server);
  nc_server_events_t events = {.on_connection = on_connection, .on_listening = on_listening,
                               .on_error = on_error};
  nc_server_set_events(server, &events);
  nc_loop_signal(loop, SIGUSR1, on_usr1, NULL);
  if (!handoff) {
    nc_loop_signal(loop, SIGINT, on_signal, server);
    nc_loop_signal(loop, SIGTERM, on_signal, server);
  }

  rv = fd >= 0  ? nc_server_listen_fd(server, fd, NULL)
       : path    ? nc_server_listen_path(server, path, NULL)
                 : nc_server_listen(server, port, host, NULL);
  if (rv == 0) rv = nc_loop_run(loop);
  if (rv != 0 && rv != NC_ERR_NETCORE_SHUTDOWN) {
    fprintf(stderr, "echo: %s: %s\n", nc_err_name(rv), nc_loop_error_message(loop));
    exit_code = 1;
  }
  nc_loop_free(loop);
  return exit_code;
}
