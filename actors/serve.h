/* serve: the part of main() every C example actor shares (echo, goodbye,
 * proxy, chat, redis): the --port/--host/--path/--fd/--endpoint option rows,
 * the loop (nc_loop_new, its error on stderr), the server and its events
 * (the "X listening on {json}" line, a listen error on stderr), SIGINT/SIGTERM,
 * the listen (fd, path, or port and host), nc_loop_run, the report of the
 * loop's error and nc_loop_free.
 *
 * The actor owns its nca_serve_t (on main()'s stack): it sets the defaults
 * and the fields marked "the actor's" before nca_serve_options and
 * nca_serve_open; this module fills loop, server and exit_code and owns the
 * server's user data (nc_server_set_data). An actor's own work goes between
 * nca_serve_open and nca_serve_run (a timer, say) and after nca_serve_run
 * (freeing its records). Messages start with "PROG: "; errors carry the Node
 * code (nc_err_name). Exit status: 0, or 1 after any error.
 *
 * Prefix nca_ (netcore actors): this module belongs to actors/, not to libnc.
 * Called from main() and the loop's thread only (the loop is not thread-safe). */
#ifndef NCA_SERVE_H
#define NCA_SERVE_H

#include "nc/nc.h"
#include "options.h"

typedef struct {
  /* The listen address and netcore's endpoint: the actor's defaults, then
   * whatever the option rows of nca_serve_options read. fd >= 0 wins over
   * path, path over port and host. */
  int port;
  const char *host;
  const char *path;
  int fd;
  const char *endpoint;
  /* The actor's. */
  const char *prog;   /* "echo": the loop's name and the first word of every message */
  const char *banner; /* "echo server listening on": printed before the address JSON */
  void (*on_connection)(nc_server_t *server, nc_socket_t *socket);
  nc_server_options_t server_options; /* group, allow_half_open */
  const char *service;                /* Hello.service, or NULL */
  int handoff;       /* SIGINT/SIGTERM are libnc's (handoff_on_signal): no handlers here */
  int shutdown_ok;   /* NC_ERR_NETCORE_SHUTDOWN (the end of netcore's drain) is no error */
  int stop_on_error; /* a listen error also stops the loop (a timer would keep it running) */
  /* This module's. */
  nc_loop_t *loop;
  nc_server_t *server;
  int exit_code;
  char port_help[80];
  char host_help[96];
} nca_serve_t;

/* Which option rows nca_serve_options writes, in this order. */
enum {
  NCA_SERVE_PORT = 1,     /* --port N (default s->port) */
  NCA_SERVE_HOST = 2,     /* --host H (default s->host) */
  NCA_SERVE_PATH = 4,     /* --path P */
  NCA_SERVE_FD = 8,       /* --fd N */
  NCA_SERVE_ENDPOINT = 16 /* --endpoint E */
};

/* Writes the rows named by `which` into rows (room for 5) and returns how
 * many; their help texts show s's defaults, so set those first. The rows
 * point into s, which must outlive nca_options_parse. */
int nca_serve_options(nca_serve_t *s, nca_option_t *rows, unsigned which);

/* Opens the loop (name s->prog), the server and its events, and unless
 * s->handoff the SIGINT/SIGTERM handlers (close the server, stop the loop).
 * Returns 0, or 1 (the exit status) after printing nc_loop_new's error. */
int nca_serve_open(nca_serve_t *s);

/* Listens, runs the loop until it ends or stops, reports its error, frees it
 * (the Bye drops open connections). Returns the exit status. */
int nca_serve_run(nca_serve_t *s);

#endif
