/* via_echo: the echo of the benchmark through the handler, for measuring the path
 * data -> Data event -> handler -> Write -> netcore -> kernel (issue 18): the data
 * callback writes back what it got, pauses when write() returns 0 and resumes on
 * 'drain' (Node's manual form of pipe()). profile.sh --actor via-c runs it.
 *
 *   via_echo [--port N] [--host H] [--path P] [--endpoint E]
 *
 * Prints "echo server listening on <address() JSON>" once listening; SIGINT/SIGTERM
 * stop it (exit 0); errors go to stderr with Node's code (exit 1). */
#include <signal.h>
#include <stdio.h>

#include "nc/nc.h"
#include "options.h"

static void on_data(nc_socket_t *c, const char *data, size_t len) {
  if (nc_socket_write(c, data, len, NULL, NULL) == 0) nc_socket_pause(c);
}

static void on_drain(nc_socket_t *c) { nc_socket_resume(c); }

static void on_connection(nc_server_t *server, nc_socket_t *c) {
  (void)server;
  nc_socket_events_t ev = {.on_data = on_data, .on_drain = on_drain};
  nc_socket_set_events(c, &ev);
  nc_socket_write(c, "hello\r\n", 7, NULL, NULL);
}

static void on_listening(nc_server_t *server) {
  nc_address_t addr;
  char json[256];
  nc_server_address(server, &addr);
  nc_address_json(&addr, json, sizeof(json));
  printf("echo server listening on %s\n", json);
  fflush(stdout);
}

static void on_signal(nc_loop_t *loop, int signum, void *server) {
  (void)signum;
  nc_server_close(server, NULL);
  nc_loop_stop(loop);
}

int main(int argc, char **argv) {
  int port = 8124;
  const char *host = "localhost", *path = NULL, *endpoint = NULL;
  const nca_option_t options[] = {
      {"port", "N", "TCP port to listen on (0: one the OS picks)", NCA_OPT_INT, &port, 0, 65535},
      {"host", "H", "address to listen on (default localhost)", NCA_OPT_STRING, &host, 0, 0},
      {"path", "P", "listen on this UNIX socket path instead", NCA_OPT_STRING, &path, 0, 0},
      {"endpoint", "E", "netcore's endpoint", NCA_OPT_STRING, &endpoint, 0, 0},
  };
  const nca_program_t prog = {"via_echo", "[--port N] [--host H] [--path P] [--endpoint E]",
                              "Echo through the handler: write() from the data callback."};
  int code = nca_options_parse(&prog, options, (int)(sizeof(options) / sizeof(options[0])), argc,
                               argv);
  if (code >= 0) return code;
  nc_loop_t *loop;
  nc_server_t *server;
  char err[512];
  nc_loop_options_t opts = {.endpoint = endpoint, .name = "via_echo"};
  int rv = nc_loop_new(&loop, &opts, err, sizeof(err));
  if (rv != 0) {
    fprintf(stderr, "via_echo: %s: %s\n", nc_err_name(rv), err);
    return 1;
  }
  nc_server_new(loop, NULL, on_connection, &server);
  nc_server_events_t events = {.on_connection = on_connection, .on_listening = on_listening};
  nc_server_set_events(server, &events);
  nc_loop_signal(loop, SIGINT, on_signal, server);
  nc_loop_signal(loop, SIGTERM, on_signal, server);
  rv = path ? nc_server_listen_path(server, path, NULL) : nc_server_listen(server, port, host, NULL);
  if (rv == 0) rv = nc_loop_run(loop);
  if (rv != 0) fprintf(stderr, "via_echo: %s: %s\n", nc_err_name(rv), nc_loop_error_message(loop));
  nc_loop_free(loop);
  return rv != 0;
}
