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
#include "nc/nc.h"
#include "options.h"
#include "serve.h"

static void on_connection(nc_server_t *server, nc_socket_t *socket) {
  (void)server;
  nc_socket_end(socket, "goodbye\n", 8);
}

int main(int argc, char **argv) {
  nca_serve_t s = {.host = "127.0.0.1", .fd = -1, .prog = "goodbye",
                   .banner = "opened server on", .on_connection = on_connection};
  nca_option_t options[1];
  int n = nca_serve_options(&s, options, NCA_SERVE_ENDPOINT);
  const nca_program_t prog = {
      "goodbye", "[--endpoint E]",
      "The seed's server.address() example: listens on an OS-assigned port on 127.0.0.1,\n"
      "prints its address and says goodbye to every connection."};
  int code = nca_options_parse(&prog, options, n, argc, argv);
  if (code >= 0) return code;

  if (nca_serve_open(&s) != 0) return 1;
  return nca_serve_run(&s);
}
