/* main.c: netcore's entry point: configuration, start, signals, shutdown.
 *
 * Startup binds the ROUTER before anything else so a handler started right
 * after netcore finds it. Shutdown (SIGINT/SIGTERM) is staged so that nothing
 * written by a handler is lost when it can be helped: tell handlers, stop
 * accepting and reading, let queued writes reach the kernel for at most
 * --shutdown-ms, then close every socket (Closed events go out), remove the
 * ipc socket files (endpoint.h), and exit 0.
 * A second signal skips the wait. SIGHUP reloads the --policy file.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "daemon.h"
#include "endpoint.h"
#include "fdlimit.h"
#include "handler.h"
#include "http.h"
#include "log.h"
#include "notify.h"
#include "router.h"
#include "server.h"
#include "socket.h"
#include "status.h"
#include "takeover.h"

ncd_daemon ncd;

#define SHUTDOWN_POLL_MS 10

static uint64_t shutdown_started;

static void check_cb(uv_check_t *c) {
  ncd_socket_flush_acks();
  ncd_handler_reap();
}

/* A socket whose queued bytes are discarded is reset (ncd_socket_cut), so
 * its TCP peer cannot take the cut stream for a complete one. */
static void close_all_sockets(void) {
  for (ncc_list *l = ncd.handlers.next; l != &ncd.handlers; l = l->next) {
    ncd_handler *h = ncc_container_of(l, ncd_handler, link);
    ncc_list *e, *next;
    for (e = h->sockets.next; e != &h->sockets; e = next) {
      next = e->next;
      ncd_socket_cut(ncc_container_of(e, ncd_socket, owner_link));
    }
  }
}

static void walk_close(uv_handle_t *h, void *arg) {
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

/* Stops the ROUTER, the servers of HTTP and metrics and every loop handle of
 * main: the loop then runs out. */
static void stop_all(void) {
  ncd_takeover_stop();
  ncd_http_stop();
  ncd_metrics_stop();
  ncd_router_stop();
  ncd_handler_stop();
  uv_close((uv_handle_t *)&ncd.ack_check, NULL);
  uv_close((uv_handle_t *)&ncd.shutdown_timer, NULL);
  uv_close((uv_handle_t *)&ncd.sigint, NULL);
  uv_close((uv_handle_t *)&ncd.sigterm, NULL);
  uv_close((uv_handle_t *)&ncd.sighup, NULL);
  uv_close((uv_handle_t *)&ncd.sigusr2, NULL);
  uv_stop(ncd.loop);
}

/* Last stage: the Closed events have been handed to ZeroMQ; stop everything. */
static void finish_cb(uv_timer_t *t) {
  for (ncc_list *l = ncd.handlers.next; l != &ncd.handlers; l = l->next)
    ncd_router_flush(ncc_container_of(l, ncd_handler, link));
  stop_all();
}

void ncd_main_handed_over(void) {
  ncd.handed_over = 1;
  /* No STOPPING=1: the service goes on in the new process (takeover.c told
   * the service manager its pid); a stopping main process would make systemd
   * stop the unit, the new netcore with it. */
  /* The paths of UNIX listeners are the new netcore's now. */
  for (ncc_list *e = ncd.listeners.next; e != &ncd.listeners; e = e->next)
    ncc_container_of(e, ncd_listener, link)->unlink_path[0] = '\0';
  /* Without events (nothing more goes to handlers) and without FIN: the
   * new process holds every shipped fd, so closing ours ends nothing. */
  for (ncc_list *l = ncd.handlers.next; l != &ncd.handlers; l = l->next)
    ncd_handler_gone(ncc_container_of(l, ncd_handler, link), "netcore taken over");
  uv_timer_stop(&ncd.shutdown_timer);
  stop_all();
  ncd_endpoint_release();
}

/* SIGUSR2: upgrade in place, nginx-style: start our own binary (as it is on
 * disk now) with the same arguments and --takeover. */
static char **saved_argv;
static void sigusr2_cb(uv_signal_t *sig, int signum) {
  if (ncd.shutting_down || ncd.handed_over) return;
  int n = 0;
  while (saved_argv[n]) n++;
  char **argv = calloc((size_t)n + 2, sizeof *argv);
  if (!argv) return;
  int k = 0, has = 0;
  for (int i = 0; i < n; i++) {
    if (strcmp(saved_argv[i], "--takeover") == 0) has = 1;
    argv[k++] = saved_argv[i];
  }
  if (!has) argv[k++] = "--takeover";
  uv_process_options_t o = {.file = "/proc/self/exe", .args = argv, .exit_cb = NULL,
                            .flags = UV_PROCESS_DETACHED};
  uv_stdio_container_t stdio[3] = {{.flags = UV_INHERIT_FD, .data.fd = 0},
                                   {.flags = UV_INHERIT_FD, .data.fd = 1},
                                   {.flags = UV_INHERIT_FD, .data.fd = 2}};
  o.stdio = stdio;
  o.stdio_count = 3;
  static uv_process_t proc;
  int rc = uv_spawn(ncd.loop, &proc, &o);
  free(argv);
  if (rc != 0) {
    ncd_error("SIGUSR2: cannot start %s --takeover: %s", saved_argv[0], uv_strerror(rc));
    return;
  }
  ncd_info("SIGUSR2: started pid %d with --takeover", proc.pid);
  uv_unref((uv_handle_t *)&proc);
  uv_close((uv_handle_t *)&proc, NULL);
}

/* Arms a shutdown timer; if libuv refuses, the loop stops now rather than
 * wait for a timer that never fires. */
static void arm_shutdown(uv_timer_t *t, uv_timer_cb cb, uint64_t ms, uint64_t repeat) {
  if (ncd_uv_check(uv_timer_start(t, cb, ms, repeat), "start the shutdown timer") != 0)
    uv_stop(ncd.loop);
}

static void drain_cb(uv_timer_t *t) {
  uint64_t waited = uv_now(ncd.loop) - shutdown_started;
  if (ncd_socket_total_queued() > 0 && waited < ncd.cfg.shutdown_ms) return;
  if (ncd_socket_total_queued() > 0)
    ncd_warn("shutdown: %llu queued bytes not flushed after %u ms",
             (unsigned long long)ncd_socket_total_queued(), ncd.cfg.shutdown_ms);
  close_all_sockets();
  arm_shutdown(t, finish_cb, 50, 0);
}

static void signal_cb(uv_signal_t *s, int signum) {
  if (ncd.shutting_down) {
    ncd_warn("second signal: closing at once");
    close_all_sockets();
    arm_shutdown(&ncd.shutdown_timer, finish_cb, 10, 0);
    return;
  }
  ncd.shutting_down = 1;
  ncd_takeover_stop(); /* no takeover of a netcore that is going */
  ncd_notify("STOPPING=1");
  shutdown_started = uv_now(ncd.loop);
  ncd_info("%s: shutting down", signum == SIGINT ? "SIGINT" : "SIGTERM");
  ncc_event ev = {.kind = NCC_EV_SHUTDOWN, .reason = signum == SIGINT ? "SIGINT" : "SIGTERM"};
  for (ncc_list *l = ncd.handlers.next; l != &ncd.handlers; l = l->next) {
    ncd_handler *h = ncc_container_of(l, ncd_handler, link);
    ncd_router_send(h, &ev, NULL);
    ncd_handler_update_reading(h);
  }
  ncd_server_close_all();
  arm_shutdown(&ncd.shutdown_timer, drain_cb, 0, SHUTDOWN_POLL_MS);
}

/* SIGHUP: reads the policy file again. A file that does not parse leaves the
 * old policy in force. Handlers keep what they already hold; their next
 * commands, and their limits, follow the new entries at once. */
static void sighup_cb(uv_signal_t *s, int signum) {
  if (!ncd.cfg.policy_file) {
    ncd_info("SIGHUP: no --policy to reload");
    return;
  }
  char err[600];
  ncd_policy *p = ncd_policy_load(ncd.cfg.policy_file, err, sizeof err);
  if (!p) {
    ncd_error("SIGHUP: %s; the policy in force stays", err);
    return;
  }
  ncd_policy *old = ncd.policy;
  ncd.policy = p;
  for (ncc_list *l = ncd.handlers.next; l != &ncd.handlers; l = l->next)
    ncd_handler_apply_policy(ncc_container_of(l, ncd_handler, link));
  ncd_policy_free(old);
  ncd_info("SIGHUP: policy %s reloaded: %zu handler entries", ncd.cfg.policy_file,
           ncd_policy_count(p));
}

static void make_instance_id(void) {
  unsigned char r[16];
  if (uv_random(NULL, NULL, r, sizeof r, 0, NULL) != 0) {
    uint64_t t = uv_hrtime();
    memcpy(r, &t, sizeof t);
    memcpy(r + 8, &t, sizeof t);
  }
  for (size_t i = 0; i < sizeof r; i++) sprintf(ncd.instance_id + 2 * i, "%02x", r[i]);
}

/* The loop handles of main itself: the ack check, the shutdown timer and the
 * signals. Returns 0 or the first libuv error (logged). */
static int start_loop_handles(void) {
  static const struct {
    uv_signal_t *h;
    uv_signal_cb cb;
    int signum;
    const char *what;
  } signals[] = {{&ncd.sigint, signal_cb, SIGINT, "watch SIGINT"},
                 {&ncd.sigterm, signal_cb, SIGTERM, "watch SIGTERM"},
                 {&ncd.sighup, sighup_cb, SIGHUP, "watch SIGHUP"},
                 {&ncd.sigusr2, sigusr2_cb, SIGUSR2, "watch SIGUSR2"}};
  int rc;
  if ((rc = ncd_uv_check(uv_check_init(ncd.loop, &ncd.ack_check), "make the ack check")) != 0 ||
      (rc = ncd_uv_check(uv_check_start(&ncd.ack_check, check_cb), "start the ack check")) != 0 ||
      (rc = ncd_uv_check(uv_timer_init(ncd.loop, &ncd.shutdown_timer), "make the shutdown timer")))
    return rc;
  for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++)
    if ((rc = ncd_uv_check(uv_signal_init(ncd.loop, signals[i].h), signals[i].what)) != 0 ||
        (rc = ncd_uv_check(uv_signal_start(signals[i].h, signals[i].cb, signals[i].signum),
                           signals[i].what)) != 0)
      return rc;
  return 0;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "keygen") == 0) return ncd_auth_keygen(argc - 1, argv + 1);
  if (argc > 1 && strcmp(argv[1], "status") == 0) return ncd_status_main(argc - 1, argv + 1);
  for (int i = 1; i < argc; i++)
    if (strcmp(argv[i], "--ping") == 0) return ncd_ping_main(argc, argv);
  int rc = ncd_config_parse(&ncd.cfg, argc, argv);
  if (rc != 0) return rc > 0 ? 0 : 2;
  ncd_log_set_level(ncd.cfg.log_level);
  if (ncd.cfg.policy_file) {
    char err[600];
    if (!(ncd.policy = ncd_policy_load(ncd.cfg.policy_file, err, sizeof err))) {
      fprintf(stderr, "netcore: --policy: %s\n", err);
      return 2;
    }
    ncd_info("policy %s: %zu handler entries", ncd.cfg.policy_file, ncd_policy_count(ncd.policy));
  }
  ncd_log_set_format(ncd.cfg.log_format);
  if ((rc = ncd_auth_init()) != 0) return rc;
  signal(SIGPIPE, SIG_IGN);
  if (ncd_fdlimit_init(&ncd.cfg) != 0) return 1;

  if (!(ncd.loop = uv_default_loop())) {
    ncd_error("cannot make the event loop");
    return 1;
  }
  /* libuv opens a spare descriptor (its EMFILE reserve) with the first stream
   * handle of a loop and keeps it: open it now, so that netcore's descriptor
   * count does not grow by one at its first connection. */
  static uv_pipe_t first_stream;
  if (uv_pipe_init(ncd.loop, &first_stream, 0) == 0) uv_close((uv_handle_t *)&first_stream, NULL);
  uv_loop_configure(ncd.loop, UV_METRICS_IDLE_TIME); /* the loop turn histogram */
  ncd.next_prefix = 1;
  ncc_idmap_init(&ncd.sockets);
  ncc_idmap_init(&ncd.servers);
  ncc_list_init(&ncd.handlers);
  ncc_list_init(&ncd.listeners);
  ncc_list_init(&ncd.dirty);
  make_instance_id();
  saved_argv = argv;

  /* --takeover: everything of the running netcore first; it lets go of the
   * endpoints before they are claimed here (takeover.h). */
  if (ncd.cfg.takeover && ncd_takeover_run() != 0) return 1;
  /* ipc:// paths are claimed (or refused) before ZeroMQ may touch them. */
  if (ncd_endpoint_claim(&ncd.cfg) != 0 || ncd_router_start() != 0 || ncd_http_start() != 0 ||
      ncd_takeover_listen() != 0) {
    ncd_endpoint_release();
    return 1;
  }
  if (ncd_metrics_start() != 0 || ncd_handler_start() != 0 || start_loop_handles() != 0) {
    ncd_error("netcore cannot start its event loop handles; exiting");
    ncd_endpoint_release();
    return 1;
  }
  ncd_info("netcore %s ready (instance %s)", NCD_VERSION, ncd.instance_id);
  ncd_notify("READY=1");

  uv_run(ncd.loop, UV_RUN_DEFAULT);

  /* Whatever is still open (listeners mid-close, resolver requests) ends here. */
  uv_walk(ncd.loop, walk_close, NULL);
  uv_run(ncd.loop, UV_RUN_DEFAULT);
  ncd_handler_reap();
  ncc_idmap_free(&ncd.sockets);
  ncc_idmap_free(&ncd.servers);
  uv_loop_close(ncd.loop);
  ncd_endpoint_release();
  ncd_policy_free(ncd.policy);
  ncd_info("bye");
  return 0;
}
