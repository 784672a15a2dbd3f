/* proxy: a TCP/UNIX forwarder. Every connection accepted here gets its own
 * connection to the target, and the two are piped into each other:
 *
 *   net.createServer({allowHalfOpen: true}, function (client) {
 *     var upstream = net.createConnection(TO_PORT, TO_HOST);
 *     client.pipe(upstream);
 *     upstream.pipe(client);
 *   });
 *
 * pipe() is where backpressure lives: when one side's write() returns false
 * the other side is paused (and netcore stops reading it, so TCP pushes back
 * on the sender) until 'drain'. Memory stays flat however slow one side is.
 * Half-closes travel through (allowHalfOpen on both sides); an error on one
 * side destroys the other.
 *
 * Usage: proxy [--port N] [--host H] [--path P]
 *              (--to-port N [--to-host H] | --to-path P) [--endpoint E]
 * Prints one line once listening: proxy listening on <address() JSON>. */
#include <signal.h>
#include <stdio.h>

#include "nc/nc.h"
#include "options.h"

static struct {
  int to_port;
  const char *to_host, *to_path;
} target = {0, "localhost", NULL};

static int exit_code;

/* Each socket's data pointer is its partner; cleared when the partner goes. */
static void on_close(nc_socket_t *s, int had_error) {
  nc_socket_t *partner = nc_socket_get_data(s);
  if (partner == NULL) return;
  nc_socket_set_data(partner, NULL);
  if (had_error) nc_socket_destroy(partner); /* a clean close already ended it */
}

static void on_error(nc_socket_t *s, int err, const char *message) {
  (void)s;
  fprintf(stderr, "proxy: %s: %s\n", nc_err_name(err), message);
}

static const nc_socket_events_t events = {.on_close = on_close, .on_error = on_error};

static void on_connection(nc_server_t *server, nc_socket_t *client) {
  nc_socket_options_t opts = {.allow_half_open = 1};
  nc_socket_t *upstream;
  nc_loop_t *loop = nc_server_loop(server);
  int rv = target.to_path
               ? nc_create_connection_path(loop, &opts, target.to_path, NULL, &upstream)
               : nc_create_connection(loop, &opts, target.to_port, target.to_host, NULL, &upstream);
  if (rv != 0) {
    fprintf(stderr, "proxy: %s: cannot connect to the target\n", nc_err_name(rv));
    nc_socket_destroy(client);
    return;
  }
  nc_socket_set_events(client, &events);
  nc_socket_set_events(upstream, &events);
  nc_socket_set_data(client, upstream);
  nc_socket_set_data(upstream, client);
  nc_socket_pipe(client, upstream);
  nc_socket_pipe(upstream, client);
}

static void on_listening(nc_server_t *server) {
  nc_address_t addr;
  char json[256];
  nc_server_address(server, &addr);
  nc_address_json(&addr, json, sizeof(json));
  printf("proxy listening on %s\n", json);
  fflush(stdout);
}

static void on_server_error(nc_server_t *server, int err, const char *message) {
  fprintf(stderr, "proxy: %s: %s\n", nc_err_name(err), message);
  exit_code = 1;
  nc_server_close(server, NULL);
}

static void on_signal(nc_loop_t *loop, int signum, void *arg) {
  (void)signum;
  (void)arg;
  nc_loop_stop(loop);
}

int main(int argc, char **argv) {
  int port = 0;
  const char *host = "127.0.0.1", *path = NULL, *endpoint = NULL;
  const nca_option_t options[] = {
      {"port", "N", "TCP port to listen on (default 0: one the OS picks)", NCA_OPT_INT, &port, 0,
       65535},
      {"host", "H", "address to listen on (default 127.0.0.1)", NCA_OPT_STRING, &host, 0, 0},
      {"path", "P", "listen on this UNIX socket path instead", NCA_OPT_STRING, &path, 0, 0},
      {"to-port", "N", "the target's TCP port", NCA_OPT_INT, &target.to_port, 1, 65535},
      {"to-host", "H", "the target's host (default localhost)", NCA_OPT_STRING, &target.to_host,
       0, 0},
      {"to-path", "P", "the target's UNIX socket path (instead of --to-port)", NCA_OPT_STRING,
       &target.to_path, 0, 0},
      {"endpoint", "E", "netcore's endpoint (default: NETCORE_ENDPOINT, then the default rule)",
       NCA_OPT_STRING, &endpoint, 0, 0},
  };
  const nca_program_t prog = {
      "proxy", "[--port N] [--host H] [--path P] (--to-port N [--to-host H] | --to-path P) "
               "[--endpoint E]",
      "Forwards every connection to the target, with backpressure and half-closes."};
  int code = nca_options_parse(&prog, options, (int)(sizeof(options) / sizeof(options[0])), argc,
                               argv);
  if (code >= 0) return code;
  if (target.to_port <= 0 && target.to_path == NULL)
    return nca_usage_error(&prog, "ERR_PARSE_ARGS_INVALID_OPTION_VALUE",
                           "--to-port or --to-path is required");

  nc_loop_t *loop;
  nc_server_t *server;
  char err[512];
  nc_loop_options_t opts = {.endpoint = endpoint, .name = "proxy"};
  int rv = nc_loop_new(&loop, &opts, err, sizeof(err));
  if (rv != 0) {
    fprintf(stderr, "proxy: %s: %s\n", nc_err_name(rv), err);
    return 1;
  }
  nc_server_options_t sopts = {.allow_half_open = 1};
  nc_server_new(loop, &sopts, on_connection, &server);
  nc_server_events_t sevents = {.on_connection = on_connection, .on_listening = on_listening,
                                .on_error = on_server_error};
  nc_server_set_events(server, &sevents);
  nc_loop_signal(loop, SIGINT, on_signal, NULL);
  nc_loop_signal(loop, SIGTERM, on_signal, NULL);

  rv = path ? nc_server_listen_path(server, path, NULL) : nc_server_listen(server, port, host, NULL);
  if (rv == 0) rv = nc_loop_run(loop);
  if (rv != 0) {
    fprintf(stderr, "proxy: %s: %s\n", nc_err_name(rv), nc_loop_error_message(loop));
    exit_code = 1;
  }
  nc_loop_free(loop);
  return exit_code;
}
