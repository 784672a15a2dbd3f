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
#include <stdio.h>

#include "nc/nc.h"
#include "options.h"
#include "serve.h"

static struct {
  int to_port;
  const char *to_host, *to_path;
} target = {0, "localhost", NULL};

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

int main(int argc, char **argv) {
  nca_serve_t s = {.host = "127.0.0.1", .fd = -1, .prog = "proxy", .banner = "proxy listening on",
                   .on_connection = on_connection, .server_options = {.allow_half_open = 1}};
  nca_option_t options[7];
  int n = nca_serve_options(&s, options, NCA_SERVE_PORT | NCA_SERVE_HOST | NCA_SERVE_PATH);
  options[n++] = (nca_option_t){"to-port", "N", "the target's TCP port", NCA_OPT_INT,
                                &target.to_port, 1, 65535};
  options[n++] = (nca_option_t){"to-host", "H", "the target's host (default localhost)",
                                NCA_OPT_STRING, &target.to_host, 0, 0};
  options[n++] = (nca_option_t){"to-path", "P",
                                "the target's UNIX socket path (instead of --to-port)",
                                NCA_OPT_STRING, &target.to_path, 0, 0};
  n += nca_serve_options(&s, options + n, NCA_SERVE_ENDPOINT);
  const nca_program_t prog = {
      "proxy", "[--port N] [--host H] [--path P] (--to-port N [--to-host H] | --to-path P) "
               "[--endpoint E]",
      "Forwards every connection to the target, with backpressure and half-closes."};
  int code = nca_options_parse(&prog, options, n, argc, argv);
  if (code >= 0) return code;
  if (target.to_port <= 0 && target.to_path == NULL)
    return nca_usage_error(&prog, "ERR_PARSE_ARGS_INVALID_OPTION_VALUE",
                           "--to-port or --to-path is required");

  if (nca_serve_open(&s) != 0) return 1;
  return nca_serve_run(&s);
}
