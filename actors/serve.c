/* serve: the shared part of the C actors' main(); see serve.h. */
#include "serve.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>

int nca_serve_options(nca_serve_t *s, nca_option_t *rows, unsigned which) {
  int n = 0;
  if (s->port == 0)
    snprintf(s->port_help, sizeof(s->port_help),
             "TCP port to listen on (default 0: one the OS picks)");
  else
    snprintf(s->port_help, sizeof(s->port_help),
             "TCP port to listen on (default %d; 0: one the OS picks)", s->port);
  snprintf(s->host_help, sizeof(s->host_help), "address to listen on (default %s)",
           s->host ? s->host : "all");
  if (which & NCA_SERVE_PORT)
    rows[n++] = (nca_option_t){"port", "N", s->port_help, NCA_OPT_INT, &s->port, 0, 65535};
  if (which & NCA_SERVE_HOST)
    rows[n++] = (nca_option_t){"host", "H", s->host_help, NCA_OPT_STRING, &s->host, 0, 0};
  if (which & NCA_SERVE_PATH)
    rows[n++] = (nca_option_t){"path", "P", "listen on this UNIX socket path instead",
                               NCA_OPT_STRING, &s->path, 0, 0};
  if (which & NCA_SERVE_FD)
    rows[n++] = (nca_option_t){"fd", "N", "listen on a descriptor netcore inherited instead",
                               NCA_OPT_INT, &s->fd, 0, INT_MAX};
  if (which & NCA_SERVE_ENDPOINT)
    rows[n++] = (nca_option_t){
        "endpoint", "E", "netcore's endpoint (default: NETCORE_ENDPOINT, then the default rule)",
        NCA_OPT_STRING, &s->endpoint, 0, 0};
  return n;
}

static void on_listening(nc_server_t *server) {
  nca_serve_t *s = nc_server_get_data(server);
  nc_address_t addr;
  char json[256];
  nc_server_address(server, &addr);
  nc_address_json(&addr, json, sizeof(json));
  printf("%s %s\n", s->banner, json);
  fflush(stdout);
}

static void on_error(nc_server_t *server, int err, const char *message) {
  nca_serve_t *s = nc_server_get_data(server);
  if (s->shutdown_ok && err == NC_ERR_NETCORE_SHUTDOWN) return;
  fprintf(stderr, "%s: %s: %s\n", s->prog, nc_err_name(err), message);
  s->exit_code = 1;
  nc_server_close(server, NULL);
  if (s->stop_on_error) nc_loop_stop(s->loop);
}

static void on_signal(nc_loop_t *loop, int signum, void *server) {
  (void)signum;
  nc_server_close(server, NULL);
  nc_loop_stop(loop); /* nc_loop_free's Bye drops the open connections */
}

int nca_serve_open(nca_serve_t *s) {
  char err[512];
  nc_loop_options_t opts = {.endpoint = s->endpoint,
                            .name = s->prog,
                            .service = s->service,
                            .handoff_on_signal = s->handoff};
  s->exit_code = 0;
  int rv = nc_loop_new(&s->loop, &opts, err, sizeof(err));
  if (rv != 0) {
    fprintf(stderr, "%s: %s: %s\n", s->prog, nc_err_name(rv), err);
    return 1;
  }
  nc_server_new(s->loop, &s->server_options, s->on_connection, &s->server);
  nc_server_set_data(s->server, s);
  nc_server_events_t events = {
      .on_connection = s->on_connection, .on_listening = on_listening, .on_error = on_error};
  nc_server_set_events(s->server, &events);
  if (!s->handoff) {
    nc_loop_signal(s->loop, SIGINT, on_signal, s->server);
    nc_loop_signal(s->loop, SIGTERM, on_signal, s->server);
  }
  return 0;
}

int nca_serve_run(nca_serve_t *s) {
  int rv = s->fd >= 0 ? nc_server_listen_fd(s->server, s->fd, NULL)
           : s->path  ? nc_server_listen_path(s->server, s->path, NULL)
                      : nc_server_listen(s->server, s->port, s->host, NULL);
  if (rv == 0) rv = nc_loop_run(s->loop);
  if (rv != 0 && !(s->shutdown_ok && rv == NC_ERR_NETCORE_SHUTDOWN)) {
    fprintf(stderr, "%s: %s: %s\n", s->prog, nc_err_name(rv), nc_loop_error_message(s->loop));
    s->exit_code = 1;
  }
  nc_loop_free(s->loop);
  s->loop = NULL;
  s->server = NULL;
  return s->exit_code;
}
