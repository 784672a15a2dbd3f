/* goodbye: the seed's server.address() example as a netcore handler actor.
 *
 *   var server = net.createServer(function (socket) {
 *     socket.end("goodbye\n");
 *   });
 *   server.listen(function() {
 *     address = server.address();
 *     console.log("opened server on %j", address);
 *   });
 *
 * Usage: goodbye [--endpoint E]. Listens on an OS-assigned port on 127.0.0.1.
 * SIGINT/SIGTERM: exit 0; a usage error: exit 2. */
#include <signal.h>
#include <stdio.h>

#include "nc/nc.h"
#include "options.h"

static int exit_code;

static void on_connection(nc_server_t *server, nc_socket_t *socket) {
  (void)server;
  nc_socket_end(socket, "goodbye\n", 8);
}

static void on_listening(nc_server_t *server) {
  nc_address_t address;
  char json[256];
  nc_server_address(server, &address);
  nc_address_json(&address, json, sizeof(json));
  printf("opened server on %s\n", json);
  fflush(stdout);
}

static void on_error(nc_server_t *server, int err, const char *message) {
  fprintf(stderr, "goodbye: %s: %s\n", nc_err_name(err), message);
  exit_code = 1;
  nc_server_close(server, NULL);
}

static void on_signal(nc_loop_t *loop, int signum, void *arg) {
  (void)signum;
  (void)arg;
  nc_loop_stop(loop);
}

int main(int argc, char **argv) {
  const char *endpoint = NULL;
  const nca_option_t options[] = {
      {"endpoint", "E", "netcore's endpoint (default: NETCORE_ENDPOINT, then the default rule)",
       NCA_OPT_STRING, &endpoint, 0, 0},
  };
  const nca_program_t prog = {
      "goodbye", "[--endpoint E]",
      "The seed's server.address() example: listens on an OS-assigned port on 127.0.0.1,\n"
      "prints its address and says goodbye to every connection."};
  int code = nca_options_parse(&prog, options, (int)(sizeof(options) / sizeof(options[0])), argc,
                               argv);
  if (code >= 0) return code;

  nc_loop_t *loop;
  nc_server_t *server;
  char err[512];
  nc_loop_options_t opts = {.endpoint = endpoint, .name = "goodbye"};
  int rv = nc_loop_new(&loop, &opts, err, sizeof(err));
  if (rv != 0) {
    fprintf(stderr, "goodbye: %s: %s\n", nc_err_name(rv), err);
    return 1;
  }
  nc_server_new(loop, NULL, on_connection, &server);
  nc_server_events_t events = {.on_connection = on_connection, .on_error = on_error};
  nc_server_set_events(server, &events);
  nc_loop_signal(loop, SIGINT, on_signal, NULL);
  nc_loop_signal(loop, SIGTERM, on_signal, NULL);

  rv = nc_server_listen(server, 0, "127.0.0.1", on_listening);
  if (rv == 0) rv = nc_loop_run(loop);
  if (rv != 0) {
    fprintf(stderr, "goodbye: %s: %s\n", nc_err_name(rv), nc_loop_error_message(loop));
    exit_code = 1;
  }
  nc_loop_free(loop);
  return exit_code;
}
