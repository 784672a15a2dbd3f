/* ping.c: netcore-ping, the health probe of containers and service managers.
 *
 *   netcore-ping [--endpoint E] [--timeout-ms MS]
 *
 * Says Hello to netcore over the handler endpoint (E, else $NETCORE_ENDPOINT,
 * else the default) exactly as a handler would, and waits for Welcome: exit 0
 * with one line "netcore VERSION at E (instance ID)", or exit 1 with the
 * reason on stderr when netcore does not answer in time (default 2000 ms).
 * A client of netcore, so it links libnc and nothing of the daemon. Until
 * netcore has a --ping of its own, Docker's HEALTHCHECK runs this.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nc/nc.h"

int main(int argc, char **argv) {
  nc_loop_options_t opts = {.name = "netcore-ping", .hello_timeout_ms = 2000};
  for (int i = 1; i < argc; i++) {
    const char *val = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(argv[i], "--endpoint") == 0 && val) opts.endpoint = argv[++i];
    else if (strcmp(argv[i], "--timeout-ms") == 0 && val && atoi(val) > 0)
      opts.hello_timeout_ms = (uint32_t)atoi(argv[++i]);
    else {
      fprintf(stderr, "usage: netcore-ping [--endpoint E] [--timeout-ms MS]\n");
      return 2;
    }
  }
  nc_loop_t *loop;
  char err[512];
  int rv = nc_loop_new(&loop, &opts, err, sizeof err);
  if (rv != 0) {
    fprintf(stderr, "netcore-ping: %s: %s\n", nc_err_name(rv), err);
    return 1;
  }
  const char *ep = opts.endpoint ? opts.endpoint : getenv("NETCORE_ENDPOINT");
  char def[512];
  if (!ep || !*ep) ep = nc_default_endpoint(def, sizeof def) == 0 ? def : "(default)";
  printf("netcore %s at %s (instance %s)\n", nc_loop_server_version(loop), ep,
         nc_loop_instance_id(loop));
  nc_loop_free(loop);
  return 0;
}
