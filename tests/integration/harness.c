/* harness.c: see harness.h. */
#include "harness.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

/* ---------------------------------------------------------------- runner */

static const char *netcore_bin;
int nct_time_scale = 1;

const char *nct_netcore_path(void) {
  return netcore_bin;
}

int nct_main(int argc, char **argv, const char *group, const struct CMUnitTest *tests,
             size_t ntests) {
  netcore_bin = argc > 1 ? argv[1] : getenv("NETCORE_BIN");
  if (!netcore_bin || access(netcore_bin, X_OK) != 0) {
    fprintf(stderr, "usage: %s NETCORE_BINARY [TEST_FILTER] (or set NETCORE_BIN)\n", argv[0]);
    return 2;
  }
  if (argc > 2) cmocka_set_test_filter(argv[2]);
  const char *scale = getenv("NCT_TIME_SCALE");
  if (scale && atoi(scale) > 0) nct_time_scale = atoi(scale);
  /* A peer that netcore closed must give EPIPE to the test, not kill it. */
  signal(SIGPIPE, SIG_IGN);
  const char *base = strrchr(group, '/');
  int rc = _cmocka_run_group_tests(base ? base + 1 : group, tests, ntests, NULL, NULL);
  nct_launch_cleanup();
  if (rc != 0) {
    /* A failed test jumped out holding events and buffers; skip the exit
     * handlers (LeakSanitizer's among them) so only the failure is
     * reported. A run without failures exits normally and is leak-checked. */
    fflush(stdout);
    fflush(stderr);
    _exit(rc);
  }
  return rc;
}

void nct_fail_at(const char *file, int line, const char *fmt, ...) {
  char msg[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  print_error("%s:%d: %s\n", file, line, msg);
  _fail(file, line);
  abort(); /* _fail jumps out of the test; never reached */
}

uint64_t nct_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* ---------------------------------------------------------------- daemon */

void nct_daemon_path(const nct_daemon *d, const char *name, char *out, size_t cap) {
  snprintf(out, cap, "%s/%s", d->dir, name);
}

typedef struct child_setup {
  const int *fds;
  const nct_daemon_opts *opts;
  const char *stderr_path;
} child_setup;

/* Child side of nct_daemon_start, before the exec (nct_launch_spawn): put
 * the inherited fds in place, close the rest (ZeroMQ contexts and peers of
 * the test must not leak into netcore: they would distort its fd count). */
static void setup_child(void *ctx) {
  const child_setup *c = ctx;
  const int *fds = c->fds;
  const nct_daemon_opts *opts = c->opts;
  const char *stderr_path = c->stderr_path;
  enum { PARK = 900 };
  int n = 0;
  if (stderr_path) {
    int efd = open(stderr_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (efd < 0 || dup2(efd, 2) < 0) _exit(126);
    close(efd);
  }
  if (fds)
    for (; fds[2 * n] >= 0; n++)
      if (fcntl(fds[2 * n], F_DUPFD, PARK + n) != PARK + n) _exit(126);
  syscall(SYS_close_range, 3, PARK - 1, 0);
  for (int i = 0; i < n; i++)
    if (dup2(PARK + i, fds[2 * i + 1]) < 0) _exit(126);
  syscall(SYS_close_range, PARK, ~0U, 0);
  if (opts && opts->nofile_hard) {
    struct rlimit rl = {.rlim_cur = opts->nofile_soft ? opts->nofile_soft : opts->nofile_hard,
                        .rlim_max = opts->nofile_hard};
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) _exit(126);
  }
}


void nct_daemon_start_at(const char *file, int line, nct_daemon *d, const char *const *flags,
                         const int *fds) {
  nct_daemon_start_opts_at(file, line, d, flags, fds, NULL);
}

static void stderr_path(const nct_daemon *d, char *out, size_t cap) {
  nct_daemon_path(d, "netcore.stderr", out, cap);
}

int nct_daemon_stderr(const nct_daemon *d, char *out, size_t cap) {
  char path[128];
  stderr_path(d, path, sizeof path);
  out[0] = '\0';
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  int lines = 0, c;
  size_t n = 0;
  while ((c = fgetc(f)) != EOF) {
    if (c == '\n') lines++;
    if (n + 1 < cap) out[n++] = (char)c;
  }
  out[n] = '\0';
  fclose(f);
  return lines;
}

void nct_daemon_start_opts_at(const char *file, int line, nct_daemon *d, const char *const *flags,
                              const int *fds, const nct_daemon_opts *opts) {
  memset(d, 0, sizeof *d);
  int rc = nct_launch_dir(&d->launch, "nc.sock");
  if (rc != 0) nct_fail_at(file, line, "mkdtemp: %s", strerror(-rc));

  char *argv[64];
  int argc = 0;
  char wrapper[512] = "";
  const char *wrap = getenv("NCT_NETCORE_WRAPPER");
  if (wrap) snprintf(wrapper, sizeof wrapper, "%s", wrap);
  for (char *save = NULL, *tok = strtok_r(wrapper, " ", &save); tok && argc < 32;
       tok = strtok_r(NULL, " ", &save))
    argv[argc++] = tok;
  argv[argc++] = (char *)netcore_bin;
  argv[argc++] = "--bind";
  argv[argc++] = d->endpoint;
  argv[argc++] = "--log-level";
  argv[argc++] = "warn";
  for (int i = 0; flags && flags[i] && argc < 62; i++) argv[argc++] = (char *)flags[i];
  argv[argc] = NULL;

  /* Under AddressSanitizer freed memory sits in a quarantine that would
   * read as growth to the RSS tests, which measure netcore's own buffering:
   * keep the quarantine empty (the option means nothing to other builds). */
  extern char **environ;
  size_t nenv = 0;
  while (environ[nenv]) nenv++;
  char **envp = calloc(nenv + 2, sizeof *envp);
  char asan[512];
  const char *old = getenv("ASAN_OPTIONS");
  snprintf(asan, sizeof asan, "ASAN_OPTIONS=%s%squarantine_size_mb=0", old ? old : "",
           old && *old ? ":" : "");
  size_t k = 0;
  for (size_t i = 0; i < nenv; i++)
    if (strncmp(environ[i], "ASAN_OPTIONS=", 13) != 0) envp[k++] = environ[i];
  envp[k++] = asan;
  envp[k] = NULL;

  char errpath[128];
  stderr_path(d, errpath, sizeof errpath);
  child_setup setup = {fds, opts, opts && opts->capture_stderr ? errpath : NULL};
  rc = nct_launch_spawn(&d->launch, argv, envp, setup_child, &setup);
  free(envp);
  if (rc != 0) nct_fail_at(file, line, "fork: %s", strerror(-rc));

  /* Ready = `netcore --ping` is answered (nct_launch_wait_ready). */
  char why[160];
  rc = nct_launch_wait_ready(&d->launch, netcore_bin, 10000 * nct_time_scale, why, sizeof why);
  if (rc == -1) {
    nct_launch_rmdir(&d->launch);
    nct_fail_at(file, line, "netcore (%s) died before answering Hello: %s", netcore_bin, why);
  }
  if (rc != 0) {
    nct_daemon_kill(d);
    nct_fail_at(file, line, "netcore did not answer: %s", why);
  }
  /* Its instance id, from the Welcome of one probe Hello. */
  nct_client *probe = nct_client_new(d->endpoint, "probe", 0);
  Netcore__V1__Hello hello = NETCORE__V1__HELLO__INIT;
  hello.version = 1;
  hello.name = "probe";
  nct_cmd cmd = NETCORE__V1__COMMAND__INIT;
  cmd.command_case = NETCORE__V1__COMMAND__COMMAND_HELLO;
  cmd.hello = &hello;
  nct_send_at(file, line, probe, &cmd, NULL, 0, 0);
  nct_event *w = nct_expect_global_at(file, line, probe, EV(WELCOME), NCT_WAIT);
  snprintf(d->instance_id, sizeof d->instance_id, "%s", w->ev->welcome->instance_id);
  nct_event_free(w);
  nct_client_bye(probe);
}

int nct_daemon_signal_wait(nct_daemon *d, int sig, int timeout_ms) {
  int killed;
  int status = nct_launch_stop(&d->launch, sig, timeout_ms, &killed);
  if (killed)
    nct_fail("netcore did not exit within %d ms of signal %d (%s); killed it", timeout_ms, sig,
             strsignal(sig));
  return status;
}

void nct_daemon_stop(nct_daemon *d) {
  int status = nct_daemon_signal_wait(d, SIGTERM, 15000 * nct_time_scale);
  nct_launch_rmdir(&d->launch);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    char why[96];
    nct_launch_describe(status, why, sizeof why);
    nct_fail("netcore did not exit 0 after SIGTERM: %s", why);
  }
}

pid_t nct_daemon_takeover_spawn_at(const char *file, int line, const nct_daemon *d,
                                   const char *const *flags) {
  char *argv[64];
  int argc = 0;
  char wrapper[512] = "";
  const char *wrap = getenv("NCT_NETCORE_WRAPPER");
  if (wrap) snprintf(wrapper, sizeof wrapper, "%s", wrap);
  for (char *save = NULL, *tok = strtok_r(wrapper, " ", &save); tok && argc < 32;
       tok = strtok_r(NULL, " ", &save))
    argv[argc++] = tok;
  argv[argc++] = (char *)netcore_bin;
  argv[argc++] = "--bind";
  argv[argc++] = (char *)d->endpoint;
  argv[argc++] = "--log-level";
  argv[argc++] = "warn";
  argv[argc++] = "--takeover";
  for (int i = 0; flags && flags[i] && argc < 62; i++) argv[argc++] = (char *)flags[i];
  argv[argc] = NULL;
  nct_launch l = {0};
  int rc = nct_launch_spawn(&l, argv, NULL, NULL, NULL);
  if (rc != 0) nct_fail_at(file, line, "fork: %s", strerror(-rc));
  return l.pid;
}

void nct_daemon_takeover_at(const char *file, int line, nct_daemon *d, const char *const *flags) {
  pid_t old = d->pid;
  pid_t pid = nct_daemon_takeover_spawn_at(file, line, d, flags);
  uint64_t deadline = nct_now_ms() + 10000 * (uint64_t)nct_time_scale;
  int status = 0;
  for (;;) {
    if (waitpid(old, &status, WNOHANG) == old) break;
    int st;
    if (waitpid(pid, &st, WNOHANG) == pid) {
      nct_launch_forget(pid);
      char why[96];
      nct_launch_describe(st, why, sizeof why);
      nct_fail_at(file, line, "netcore --takeover ended (%s) and the old one still runs", why);
    }
    if (nct_now_ms() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, NULL, 0);
      nct_launch_forget(pid);
      nct_fail_at(file, line, "the old netcore did not exit within 10 s of netcore --takeover");
    }
    usleep(2000);
  }
  nct_launch_forget(old);
  d->pid = pid;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    char why[96];
    nct_launch_describe(status, why, sizeof why);
    nct_fail_at(file, line, "the netcore taken over ended with %s, not exit status 0", why);
  }
  nct_client *probe = nct_client_new(d->endpoint, "probe", 0);
  Netcore__V1__Hello hello = NETCORE__V1__HELLO__INIT;
  hello.version = 1;
  hello.name = "probe";
  nct_cmd cmd = NETCORE__V1__COMMAND__INIT;
  cmd.command_case = NETCORE__V1__COMMAND__COMMAND_HELLO;
  cmd.hello = &hello;
  nct_send_at(file, line, probe, &cmd, NULL, 0, 0);
  nct_event *w = nct_expect_global_at(file, line, probe, EV(WELCOME), NCT_WAIT);
  if (strcmp(d->instance_id, w->ev->welcome->instance_id) == 0)
    nct_fail_at(file, line, "the new netcore has the old one's instance id");
  snprintf(d->instance_id, sizeof d->instance_id, "%s", w->ev->welcome->instance_id);
  nct_event_free(w);
  nct_client_bye(probe);
}

void nct_daemon_kill(nct_daemon *d) {
  nct_launch_kill(&d->launch);
  nct_launch_rmdir(&d->launch);
}

/* ---------------------------------------------------------------- client */

enum { OBJ_NONE = 0, OBJ_SOCKET = 1, OBJ_SERVER = 2 };

struct nct_objseq {
  int kind;
  uint64_t id;
  uint64_t last; /* last seq seen */
  int done;      /* Closed / ServerClosed / ServerError seen */
  int ended;     /* Ended seen */
  int errored;   /* SocketError seen */
  int listening; /* Listening seen */
};

/* Where the current public call came from, for failures detected deep
 * inside (a seq gap found while pumping). */
static const char *cur_file = "harness";
static int cur_line;
#define AT(f, l) (cur_file = (f), cur_line = (l))
#define FAIL(...) nct_fail_at(cur_file, cur_line, __VA_ARGS__)

static uint64_t ev_object(const nct_pb_event *ev, int *kind) {
  *kind = OBJ_SOCKET;
  switch (ev->event_case) {
    case EV(LISTENING):
      *kind = OBJ_SERVER;
      return ev->listening->server_id;
    case EV(SERVER_ERROR):
      *kind = OBJ_SERVER;
      return ev->server_error->server_id;
    case EV(SERVER_CLOSED):
      *kind = OBJ_SERVER;
      return ev->server_closed->server_id;
    case EV(CONNECTION):
      return ev->connection->socket_id;
    case EV(CONNECTED):
      return ev->connected->socket_id;
    case EV(DATA):
      return ev->data->socket_id;
    case EV(ENDED):
      return ev->ended->socket_id;
    case EV(WRITE_ACK):
      return ev->write_ack->socket_id;
    case EV(TIMEOUT):
      return ev->timeout->socket_id;
    case EV(SOCKET_ERROR):
      return ev->socket_error->socket_id;
    case EV(CLOSED):
      return ev->closed->socket_id;
    case EV(FD):
      return ev->fd->socket_id;
    case EV(ADOPTED):
      return ev->adopted->socket_id;
    case EV(UNPIPED):
      return ev->unpiped->socket_id;
    default:
      *kind = OBJ_NONE;
      return 0;
  }
}

static nct_objseq *obj_find(nct_client *c, int kind, uint64_t id, int create) {
  for (size_t i = 0; i < c->nobjs; i++)
    if (c->objs[i].kind == kind && c->objs[i].id == id) return &c->objs[i];
  if (!create) return NULL;
  if (c->nobjs == c->capobjs) {
    c->capobjs = c->capobjs ? 2 * c->capobjs : 64;
    c->objs = realloc(c->objs, c->capobjs * sizeof *c->objs);
    if (!c->objs) abort();
  }
  nct_objseq *o = &c->objs[c->nobjs++];
  memset(o, 0, sizeof *o);
  o->kind = kind;
  o->id = id;
  return o;
}

uint64_t nct_last_seq(nct_client *c, uint64_t socket_id) {
  nct_objseq *o = obj_find(c, OBJ_SOCKET, socket_id, 0);
  return o ? o->last : 0;
}

void nct_set_last_seq(nct_client *c, uint64_t socket_id, uint64_t seq) {
  nct_objseq *o = obj_find(c, OBJ_SOCKET, socket_id, 1);
  o->last = seq;
  o->ended = o->errored = 0;
}

const char *nct_event_name(int type) {
  switch (type) {
    case EV(WELCOME):
      return "Welcome";
    case EV(ERROR):
      return "Error";
    case EV(PONG):
      return "Pong";
    case EV(LISTENING):
      return "Listening";
    case EV(SERVER_ERROR):
      return "ServerError";
    case EV(SERVER_CLOSED):
      return "ServerClosed";
    case EV(CONNECTION):
      return "Connection";
    case EV(CONNECTED):
      return "Connected";
    case EV(DATA):
      return "Data";
    case EV(ENDED):
      return "Ended";
    case EV(WRITE_ACK):
      return "WriteAck";
    case EV(TIMEOUT):
      return "Timeout";
    case EV(SOCKET_ERROR):
      return "SocketError";
    case EV(CLOSED):
      return "Closed";
    case EV(FD):
      return "Fd";
    case EV(SHUTDOWN):
      return "Shutdown";
    case EV(ADOPTED):
      return "Adopted";
    case EV(UNPIPED):
      return "Unpiped";
    default:
      return "(unknown event)";
  }
}

const char *nct_event_str(const nct_event *e, char *buf, size_t cap) {
  const nct_pb_event *ev = e->ev;
  int kind;
  uint64_t id = ev_object(ev, &kind);
  int n = snprintf(buf, cap, "%s seq=%llu", nct_event_name(ev->event_case),
                   (unsigned long long)ev->seq);
  if (kind != OBJ_NONE && n > 0 && (size_t)n < cap)
    n += snprintf(buf + n, cap - (size_t)n, " %s=0x%llx", kind == OBJ_SERVER ? "server" : "socket",
                  (unsigned long long)id);
  if (n < 0 || (size_t)n >= cap) return buf;
  switch (ev->event_case) {
    case EV(ERROR):
      snprintf(buf + n, cap - (size_t)n,
               " code=%s command=%s ref=%llu socket=0x%llx server=0x%llx msg=\"%s\"",
               ev->error->code, ev->error->command, (unsigned long long)ev->error->ref,
               (unsigned long long)ev->error->socket_id, (unsigned long long)ev->error->server_id,
               ev->error->message);
      break;
    case EV(SERVER_ERROR):
      snprintf(buf + n, cap - (size_t)n, " code=%s msg=\"%s\"", ev->server_error->code,
               ev->server_error->message);
      break;
    case EV(SOCKET_ERROR):
      snprintf(buf + n, cap - (size_t)n, " code=%s msg=\"%s\"", ev->socket_error->code,
               ev->socket_error->message);
      break;
    case EV(CLOSED):
      snprintf(buf + n, cap - (size_t)n, " had_error=%d bytes_read=%llu bytes_written=%llu",
               ev->closed->had_error, (unsigned long long)ev->closed->bytes_read,
               (unsigned long long)ev->closed->bytes_written);
      break;
    case EV(DATA):
      snprintf(buf + n, cap - (size_t)n, " len=%zu", e->len);
      break;
    case EV(WRITE_ACK):
      snprintf(buf + n, cap - (size_t)n, " writes=%u bytes=%llu bytes_written=%llu queued=%llu",
               ev->write_ack->writes, (unsigned long long)ev->write_ack->bytes,
               (unsigned long long)ev->write_ack->bytes_written,
               (unsigned long long)ev->write_ack->queued_bytes);
      break;
    case EV(CONNECTION):
      snprintf(buf + n, cap - (size_t)n, " for server=0x%llx count=%u",
               (unsigned long long)ev->connection->server_id, ev->connection->server_connections);
      break;
    case EV(ADOPTED):
      snprintf(buf + n, cap - (size_t)n,
               " for server=0x%llx bytes_read=%llu replay=%llu queued=%llu peer_ended=%d",
               (unsigned long long)ev->adopted->server_id,
               (unsigned long long)ev->adopted->bytes_read,
               (unsigned long long)ev->adopted->replay_bytes,
               (unsigned long long)ev->adopted->queued_bytes, ev->adopted->peer_ended);
      break;
    case EV(UNPIPED):
      snprintf(buf + n, cap - (size_t)n,
               " dest=0x%llx reason=%d bytes=%llu bytes_read=%llu bytes_written=%llu dest_ended=%d",
               (unsigned long long)ev->unpiped->dest_socket_id, ev->unpiped->reason,
               (unsigned long long)ev->unpiped->bytes, (unsigned long long)ev->unpiped->bytes_read,
               (unsigned long long)ev->unpiped->bytes_written, ev->unpiped->dest_ended);
      break;
    case EV(FD):
      snprintf(buf + n, cap - (size_t)n, " new_socket=0x%llx",
               (unsigned long long)ev->fd->new_socket_id);
      break;
    case EV(PONG):
      snprintf(buf + n, cap - (size_t)n, " nonce=%llu", (unsigned long long)ev->pong->nonce);
      break;
    default:
      break;
  }
  return buf;
}

/* The protocol's ordering rules, checked on every event as it arrives, so
 * every test verifies seq continuity and "Closed exactly once, last". */
static void check_order(nct_client *c, const nct_event *e) {
  const nct_pb_event *ev = e->ev;
  char s[512];
  int kind;
  uint64_t id = ev_object(ev, &kind);
  if (kind == OBJ_NONE) {
    if (ev->seq != 0)
      FAIL("[%s] %s belongs to no object but has seq %llu (expected 0)", c->name,
           nct_event_str(e, s, sizeof s), (unsigned long long)ev->seq);
    return;
  }
  nct_objseq *o = obj_find(c, kind, id, 1);
  /* An adopted socket is new to this handler and goes on from where its old
   * owner was (PROTOCOL.md 13). */
  if (ev->event_case == EV(ADOPTED) && o->last == 0 && ev->seq > 0) o->last = ev->seq - 1;
  int announced = c->resumed && ev->event_case == EV(CONNECTION) && ev->seq > 0;
  if (announced) o->last = ev->seq - 1;
  if (o->done)
    FAIL("[%s] %s arrived after the %s's last event (Closed/ServerClosed/ServerError)", c->name,
         nct_event_str(e, s, sizeof s), kind == OBJ_SERVER ? "server" : "socket");
  if (ev->seq != o->last + 1)
    FAIL("[%s] seq gap: %s, expected seq %llu", c->name, nct_event_str(e, s, sizeof s),
         (unsigned long long)(o->last + 1));
  o->last = ev->seq;
  switch (ev->event_case) {
    case EV(CONNECTION):
    case EV(CONNECTED):
      if (ev->seq != 1 && !announced)
        FAIL("[%s] %s is not the socket's first event", c->name, nct_event_str(e, s, sizeof s));
      if (ev->event_case == EV(CONNECTION)) {
        nct_objseq *srv = obj_find(c, OBJ_SERVER, ev->connection->server_id, 0);
        if (srv && srv->done)
          FAIL("[%s] %s for a server that is already closed", c->name,
               nct_event_str(e, s, sizeof s));
      }
      break;
    case EV(DATA):
      if (o->ended) FAIL("[%s] %s after Ended", c->name, nct_event_str(e, s, sizeof s));
      if (o->errored) FAIL("[%s] %s after SocketError", c->name, nct_event_str(e, s, sizeof s));
      break;
    case EV(ENDED):
      if (o->ended) FAIL("[%s] second Ended: %s", c->name, nct_event_str(e, s, sizeof s));
      if (o->errored) FAIL("[%s] %s after SocketError", c->name, nct_event_str(e, s, sizeof s));
      o->ended = 1;
      break;
    case EV(SOCKET_ERROR):
      if (o->errored) FAIL("[%s] second SocketError: %s", c->name, nct_event_str(e, s, sizeof s));
      o->errored = 1;
      break;
    case EV(CLOSED):
      o->done = 1;
      break;
    case EV(LISTENING):
      if (o->listening) FAIL("[%s] second Listening: %s", c->name, nct_event_str(e, s, sizeof s));
      o->listening = 1;
      break;
    case EV(SERVER_ERROR):
    case EV(SERVER_CLOSED):
      o->done = 1;
      break;
    case EV(FD): {
      /* The new socket's own events are numbered from 1. */
      nct_objseq *n = obj_find(c, OBJ_SOCKET, ev->fd->new_socket_id, 0);
      if (n)
        FAIL("[%s] %s names a socket id already in use", c->name, nct_event_str(e, s, sizeof s));
      obj_find(c, OBJ_SOCKET, ev->fd->new_socket_id, 1);
      break;
    }
    default:
      if (o->errored && ev->event_case != EV(CLOSED))
        FAIL("[%s] %s after SocketError (only Closed may follow)", c->name,
             nct_event_str(e, s, sizeof s));
      break;
  }
}

void nct_client_carry(nct_client *to, const nct_client *from) {
  free(to->objs);
  to->objs = NULL;
  to->nobjs = to->capobjs = 0;
  if (from->nobjs) {
    to->objs = malloc(from->nobjs * sizeof *to->objs);
    if (!to->objs) abort();
    memcpy(to->objs, from->objs, from->nobjs * sizeof *to->objs);
    to->nobjs = to->capobjs = from->nobjs;
  }
  to->id_prefix = from->id_prefix;
  to->last_id = from->last_id;
  to->resumed = 1;
}

nct_client *nct_client_new(const char *endpoint, const char *name, int rcvhwm) {
  nct_client_opts o = {.rcvhwm = rcvhwm};
  return nct_client_new_opts(endpoint, name, &o);
}

nct_client *nct_client_new_opts(const char *endpoint, const char *name, const nct_client_opts *o) {
  int rcvhwm = o->rcvhwm;
  nct_client *c = calloc(1, sizeof *c);
  if (!c) abort();
  snprintf(c->name, sizeof c->name, "%s", name);
  c->zctx = zmq_ctx_new();
  c->dealer = zmq_socket(c->zctx, ZMQ_DEALER);
  int ivl = 20, linger = 0, sndtimeo = 15000;
  zmq_setsockopt(c->dealer, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl);
  zmq_setsockopt(c->dealer, ZMQ_LINGER, &linger, sizeof linger);
  zmq_setsockopt(c->dealer, ZMQ_SNDTIMEO, &sndtimeo, sizeof sndtimeo);
  if (rcvhwm > 0) zmq_setsockopt(c->dealer, ZMQ_RCVHWM, &rcvhwm, sizeof rcvhwm);
  if (o->routing_id) zmq_setsockopt(c->dealer, ZMQ_ROUTING_ID, o->routing_id, strlen(o->routing_id));
  if (o->server_key &&
      (zmq_setsockopt(c->dealer, ZMQ_CURVE_SERVERKEY, o->server_key, 41) != 0 ||
       zmq_setsockopt(c->dealer, ZMQ_CURVE_PUBLICKEY, o->public_key, 41) != 0 ||
       zmq_setsockopt(c->dealer, ZMQ_CURVE_SECRETKEY, o->secret_key, 41) != 0))
    FAIL("CURVE options: %s", zmq_strerror(zmq_errno()));
  const char *batch = getenv("NCT_BATCH_EVENTS");
  c->batch_events = batch && *batch == '1';
  if (zmq_connect(c->dealer, endpoint) != 0)
    FAIL("zmq_connect(%s): %s", endpoint, zmq_strerror(zmq_errno()));
  return c;
}

void nct_client_free(nct_client *c) {
  if (!c) return;
  int linger = 0;
  zmq_setsockopt(c->dealer, ZMQ_LINGER, &linger, sizeof linger);
  zmq_close(c->dealer);
  zmq_ctx_term(c->zctx);
  while (c->inbox_head) {
    nct_event *e = c->inbox_head;
    c->inbox_head = e->next;
    nct_event_free(e);
  }
  free(c->objs);
  free(c);
}

void nct_client_bye(nct_client *c) {
  if (!c) return;
  Netcore__V1__Bye bye = NETCORE__V1__BYE__INIT;
  nct_cmd cmd = NETCORE__V1__COMMAND__INIT;
  cmd.command_case = NETCORE__V1__COMMAND__COMMAND_BYE;
  cmd.bye = &bye;
  size_t len = netcore__v1__command__get_packed_size(&cmd);
  uint8_t buf[16];
  netcore__v1__command__pack(&cmd, buf);
  /* Linger long enough for the Bye to leave, bounded if netcore is gone. */
  int linger = 2000;
  zmq_setsockopt(c->dealer, ZMQ_LINGER, &linger, sizeof linger);
  zmq_send(c->dealer, buf, len, ZMQ_DONTWAIT);
  zmq_close(c->dealer);
  zmq_ctx_term(c->zctx);
  c->dealer = NULL;
  c->zctx = NULL;
  while (c->inbox_head) {
    nct_event *e = c->inbox_head;
    c->inbox_head = e->next;
    nct_event_free(e);
  }
  free(c->objs);
  free(c);
}

void nct_clients_keep(nct_clients *s, nct_client *c) {
  for (int i = 0; i < NCT_MAX_HANDLERS; i++)
    if (!s->c[i]) {
      s->c[i] = c;
      return;
    }
  nct_fail("too many handlers in one test (max %d)", NCT_MAX_HANDLERS);
}

void nct_clients_drop(nct_clients *s, nct_client *c, int bye) {
  for (int i = 0; i < NCT_MAX_HANDLERS; i++)
    if (s->c[i] == c) s->c[i] = NULL;
  if (bye)
    nct_client_bye(c);
  else
    nct_client_free(c);
}

void nct_clients_end(nct_clients *s, int bye) {
  for (int i = 0; i < NCT_MAX_HANDLERS; i++)
    if (s->c[i]) nct_clients_drop(s, s->c[i], bye);
}

void nct_event_free(nct_event *e) {
  if (!e) return;
  netcore__v1__event__free_unpacked(e->ev, NULL);
  free(e->data);
  free(e);
}

void nct_send_frames(nct_client *c, const void *env, size_t env_len, int npayload,
                     const void *const *payloads, const size_t *lens) {
  if (zmq_send(c->dealer, env, env_len, npayload > 0 ? ZMQ_SNDMORE : 0) < 0)
    FAIL("[%s] zmq_send(envelope): %s", c->name, zmq_strerror(zmq_errno()));
  for (int i = 0; i < npayload; i++)
    if (zmq_send(c->dealer, payloads[i], lens[i], i + 1 < npayload ? ZMQ_SNDMORE : 0) < 0)
      FAIL("[%s] zmq_send(payload): %s", c->name, zmq_strerror(zmq_errno()));
}

void nct_send_at(const char *file, int line, nct_client *c, const nct_cmd *cmd, const void *payload,
                 size_t len, int has_payload) {
  AT(file, line);
  size_t n = netcore__v1__command__get_packed_size(cmd);
  uint8_t stackbuf[512];
  uint8_t *buf = n <= sizeof stackbuf ? stackbuf : malloc(n);
  if (!buf) abort();
  netcore__v1__command__pack(cmd, buf);
  const void *p[1] = {payload ? payload : ""};
  size_t l[1] = {len};
  nct_send_frames(c, buf, n, has_payload ? 1 : 0, p, l);
  if (buf != stackbuf) free(buf);
}

void nct_send_batch_at(const char *file, int line, nct_client *c, nct_cmd *const *cmds, size_t n,
                       int npayload, const void *const *payloads, const size_t *lens) {
  AT(file, line);
  Netcore__V1__CommandBatch batch = NETCORE__V1__COMMAND_BATCH__INIT;
  batch.n_commands = n;
  batch.commands = (Netcore__V1__Command **)cmds;
  nct_cmd outer = NETCORE__V1__COMMAND__INIT;
  outer.command_case = NETCORE__V1__COMMAND__COMMAND_BATCH;
  outer.batch = &batch;
  size_t len = netcore__v1__command__get_packed_size(&outer);
  uint8_t *buf = malloc(len ? len : 1);
  if (!buf) abort();
  netcore__v1__command__pack(&outer, buf);
  nct_send_frames(c, buf, len, npayload, payloads, lens);
  free(buf);
}

/* Receives one message within timeout_ms into the inbox. Returns 1 if one
 * arrived, 0 on timeout. Protocol violations fail the test here. */
static void inbox_push(nct_client *c, nct_event *e) {
  check_order(c, e);
  if (c->inbox_tail)
    c->inbox_tail->next = e;
  else
    c->inbox_head = e;
  c->inbox_tail = e;
  c->inbox_len++;
}

/* Receives the next frame of a message into a fresh buffer. */
static uint8_t *recv_frame(nct_client *c, size_t *len, int *more) {
  zmq_msg_t pay;
  zmq_msg_init(&pay);
  if (zmq_msg_recv(&pay, c->dealer, 0) < 0)
    FAIL("[%s] zmq_msg_recv(payload): %s", c->name, zmq_strerror(zmq_errno()));
  *len = zmq_msg_size(&pay);
  uint8_t *data = malloc(*len ? *len : 1);
  if (!data) abort();
  memcpy(data, zmq_msg_data(&pay), *len);
  *more = zmq_msg_more(&pay);
  zmq_msg_close(&pay);
  return data;
}

static void check_event(nct_client *c, const nct_event *e) {
  char s[512];
  if (e->ev->event_case == EV(DATA) && !e->has_payload)
    FAIL("[%s] %s without its payload frame", c->name, nct_event_str(e, s, sizeof s));
  if (e->ev->event_case != EV(DATA) && e->has_payload)
    FAIL("[%s] %s carries a payload frame (only Data may)", c->name, nct_event_str(e, s, sizeof s));
  if (e->ev->event_case == NETCORE__V1__EVENT__EVENT__NOT_SET)
    FAIL("[%s] netcore sent an Event with no event set", c->name);
}

/* An EventBatch (PROTOCOL.md 1.1): only after Hello.batch_events, never
 * nested, no seq or ack of its own, one payload frame per Data event. Each
 * event goes to the inbox as if it had come alone, marked with the batch. */
static void unbatch(nct_client *c, Netcore__V1__Event *outer, int more) {
  if (!c->batch_events) FAIL("[%s] an EventBatch without Hello.batch_events", c->name);
  if (outer->seq != 0 || outer->ack) FAIL("[%s] an EventBatch with a seq or an ack", c->name);
  if (outer->batch->n_events < 2)
    FAIL("[%s] an EventBatch of %zu events (one goes alone)", c->name, outer->batch->n_events);
  c->batches++;
  for (size_t i = 0; i < outer->batch->n_events; i++) {
    Netcore__V1__Event *in = outer->batch->events[i];
    if (in->event_case == NETCORE__V1__EVENT__EVENT_BATCH)
      FAIL("[%s] an EventBatch inside an EventBatch", c->name);
    nct_event *e = calloc(1, sizeof *e);
    if (!e) abort();
    size_t n = netcore__v1__event__get_packed_size(in);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) abort();
    netcore__v1__event__pack(in, buf);
    e->ev = netcore__v1__event__unpack(NULL, n, buf);
    free(buf);
    e->batch = c->batches;
    if (in->event_case == EV(DATA)) {
      if (!more) FAIL("[%s] an EventBatch with fewer payload frames than Data events", c->name);
      e->data = recv_frame(c, &e->len, &more);
      e->has_payload = 1;
    }
    check_event(c, e);
    inbox_push(c, e);
  }
  if (more) FAIL("[%s] an EventBatch with more payload frames than Data events", c->name);
}

/* Receives one message within timeout_ms into the inbox. Returns 1 if one
 * arrived, 0 on timeout. Protocol violations fail the test here. */
static int recv_one(nct_client *c, int timeout_ms) {
  zmq_pollitem_t it = {c->dealer, 0, ZMQ_POLLIN, 0};
  int r = zmq_poll(&it, 1, timeout_ms);
  if (r < 0) {
    if (zmq_errno() == EINTR) return 0;
    FAIL("[%s] zmq_poll: %s", c->name, zmq_strerror(zmq_errno()));
  }
  if (r == 0) return 0;
  zmq_msg_t env;
  zmq_msg_init(&env);
  if (zmq_msg_recv(&env, c->dealer, 0) < 0)
    FAIL("[%s] zmq_msg_recv: %s", c->name, zmq_strerror(zmq_errno()));
  Netcore__V1__Event *ev = netcore__v1__event__unpack(NULL, zmq_msg_size(&env), zmq_msg_data(&env));
  int more = zmq_msg_more(&env);
  size_t envlen = zmq_msg_size(&env);
  zmq_msg_close(&env);
  if (!ev) FAIL("[%s] netcore sent an envelope of %zu bytes that is not an Event", c->name, envlen);
  if (ev->event_case == NETCORE__V1__EVENT__EVENT_BATCH) {
    unbatch(c, ev, more);
    netcore__v1__event__free_unpacked(ev, NULL);
    return 1;
  }
  nct_event *e = calloc(1, sizeof *e);
  if (!e) abort();
  e->ev = ev;
  int extra = 0;
  while (more) {
    size_t len;
    uint8_t *data = recv_frame(c, &len, &more);
    if (extra++ == 0) {
      e->has_payload = 1;
      e->len = len;
      e->data = data;
    } else {
      free(data);
    }
  }
  char s[512];
  if (extra > 1)
    FAIL("[%s] %s came with %d payload frames (at most 1 allowed)", c->name,
         nct_event_str(e, s, sizeof s), extra);
  check_event(c, e);
  inbox_push(c, e);
  return 1;
}

int nct_pump(nct_client *c, int timeout_ms) {
  int n = 0;
  uint64_t deadline = nct_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
  for (;;) {
    uint64_t now = nct_now_ms();
    int left = now >= deadline ? 0 : (int)(deadline - now);
    if (!recv_one(c, n == 0 ? left : 0)) {
      if (n > 0 || left == 0) return n;
      continue;
    }
    n++;
  }
}

static void inbox_remove(nct_client *c, nct_event *prev, nct_event *e) {
  if (prev)
    prev->next = e->next;
  else
    c->inbox_head = e->next;
  if (c->inbox_tail == e) c->inbox_tail = prev;
  e->next = NULL;
  c->inbox_len--;
}

static void inbox_dump(nct_client *c, char *out, size_t cap) {
  size_t n = 0;
  out[0] = '\0';
  int shown = 0;
  for (nct_event *e = c->inbox_head; e && n + 2 < cap; e = e->next) {
    if (shown++ == 12) {
      snprintf(out + n, cap - n, "\n    ... (%zu in all)", c->inbox_len);
      return;
    }
    char s[512];
    int k = snprintf(out + n, cap - n, "\n    %s", nct_event_str(e, s, sizeof s));
    if (k < 0) return;
    n += (size_t)k;
  }
  if (!c->inbox_head) snprintf(out, cap, " (empty)");
}

/* Finds the first inbox event matching (type or -1, object id or any when
 * match_id is 0, object-less when want_none). */
typedef struct match {
  int type;  /* event case, or -1 for any */
  int by_id; /* match the object id */
  uint64_t id;
  int global;   /* object-less events only */
  int conn_srv; /* Connection for server `id` */
} match;

static int matches(const match *m, const nct_event *e) {
  int kind;
  uint64_t id = ev_object(e->ev, &kind);
  if (m->conn_srv)
    return e->ev->event_case == EV(CONNECTION) && e->ev->connection->server_id == m->id;
  if (m->global && kind != OBJ_NONE) return 0;
  if (m->by_id && (kind == OBJ_NONE || id != m->id)) return 0;
  if (m->type >= 0 && (int)e->ev->event_case != m->type) return 0;
  return 1;
}

/* Removes and returns the first matching event, receiving more until the
 * deadline; NULL on timeout. */
static nct_event *take_match(nct_client *c, const match *m, int timeout_ms) {
  uint64_t deadline = nct_now_ms() + (uint64_t)timeout_ms;
  nct_event *scanned = NULL; /* events up to here were already checked */
  for (;;) {
    nct_event *prev = scanned, *e = scanned ? scanned->next : c->inbox_head;
    for (; e; prev = e, e = e->next) {
      if (matches(m, e)) {
        inbox_remove(c, prev, e);
        return e;
      }
    }
    scanned = c->inbox_tail;
    uint64_t now = nct_now_ms();
    if (now >= deadline) return NULL;
    recv_one(c, (int)(deadline - now));
  }
}

void nct_hello_at(const char *file, int line, nct_client *c, uint32_t credit_window,
                  uint32_t lease_ms) {
  AT(file, line);
  Netcore__V1__Hello hello = NETCORE__V1__HELLO__INIT;
  hello.version = 1;
  hello.name = c->name;
  hello.credit_window = credit_window;
  hello.lease_ms = lease_ms;
  hello.lazy_acks = c->lazy_acks;
  hello.batch_events = c->batch_events;
  nct_cmd cmd = NETCORE__V1__COMMAND__INIT;
  cmd.command_case = NETCORE__V1__COMMAND__COMMAND_HELLO;
  cmd.hello = &hello;
  nct_send_at(file, line, c, &cmd, NULL, 0, 0);
  nct_event *e = nct_expect_global_at(file, line, c, EV(WELCOME), NCT_WAIT);
  Netcore__V1__Welcome *w = e->ev->welcome;
  if (w->version != 1) nct_fail_at(file, line, "Welcome.version is %u, expected 1", w->version);
  if (w->id_prefix == 0)
    nct_fail_at(file, line, "Welcome.id_prefix is 0 (prefix 0 belongs to netcore's own ids)");
  c->welcomed = 1;
  c->id_prefix = w->id_prefix;
  c->credit_window = w->credit_window;
  c->lease_ms = w->lease_ms;
  c->max_frame = w->max_frame;
  c->max_write_queue = w->max_write_queue;
  snprintf(c->instance_id, sizeof c->instance_id, "%s", w->instance_id ? w->instance_id : "");
  c->minor_version = w->minor_version;
  snprintf(c->server_version, sizeof c->server_version, "%s",
           w->server_version ? w->server_version : "");
  c->session_token_len = w->session_token.len;
  if (c->session_token_len > sizeof c->session_token) c->session_token_len = sizeof c->session_token;
  memcpy(c->session_token, w->session_token.data, c->session_token_len);
  nct_event_free(e);
}

uint64_t nct_new_id(nct_client *c) {
  uint64_t base = (uint64_t)c->id_prefix << 32;
  if (c->last_id < base) c->last_id = base;
  return ++c->last_id;
}

static void send_simple(nct_client *c, nct_cmd *cmd) {
  nct_send_at(cur_file, cur_line, c, cmd, NULL, 0, 0);
}

void nct_cmd_ping(nct_client *c, uint64_t nonce) {
  Netcore__V1__Ping m = NETCORE__V1__PING__INIT;
  m.nonce = nonce;
  nct_cmd cmd = NETCORE__V1__COMMAND__INIT;
  cmd.command_case = NETCORE__V1__COMMAND__COMMAND_PING;
  cmd.ping = &m;
  send_simple(c, &cmd);
}

void nct_cmd_listen_tcp(nct_client *c, uint64_t server_id, const char *host, int32_t port,
                        int allow_half_open, int32_t backlog, uint32_t max_conn,
                        const char *group) {
  Netcore__V1__TcpEndpoint tcp = NETCORE__V1__TCP_ENDPOINT__INIT;
  tcp.host = (char *)(host ? host : "");
  tcp.port = port;
  Netcore__V1__Listen m = NETCORE__V1__LISTEN__INIT;
  m.server_id = server_id;
  m.endpoint_case = NETCORE__V1__LISTEN__ENDPOINT_TCP;
  m.tcp = &tcp;
  m.allow_half_open = allow_half_open;
  m.backlog = backlog;
  m.max_connections = max_conn;
  m.group = (char *)(group ? group : "");
  nct_cmd cmd = NETCORE__V1__COMMAND__INIT;
  cmd.command_case = NETCORE__V1__COMMAND__COMMAND_LISTEN;
  cmd.listen = &m;
  send_simple(c, &cmd);
}

void nct_cmd_listen_path(nct_client *c, uint64_t server_id, const char *path) {
  Netcore__V1__Listen m = NETCORE__V1__LISTEN__INIT;
  m.server_id = server_id;
  m.endpoint_case = NETCORE__V1__LISTEN__ENDPOINT_PATH;
  m.path = (char *)path;
  nct_cmd cmd = NETCORE__V1__COMMAND__INIT;
  cmd.command_case = NETCORE__V1__COMMAND__COMMAND_LISTEN;
  cmd.listen = &m;
  send_simple(c, &cmd);
}

void nct_cmd_listen_fd(nct_client *c, uint64_t server_id, int32_t fd) {
  Netcore__V1__Listen m = NETCORE__V1__LISTEN__INIT;
  m.server_id = server_id;
  m.endpoint_case = NETCORE__V1__LISTEN__ENDPOINT_FD;
  m.fd = fd;
  nct_cmd cmd = NETCORE__V1__COMMAND__INIT;
  cmd.command_case = NETCORE__V1__COMMAND__COMMAND_LISTEN;
  cmd.listen = &m;
  send_simple(c, &cmd);
}

void nct_cmd_server_pause(nct_client *c, uint64_t server_id, uint32_t msecs) {
  Netcore__V1__ServerPause m = NETCORE__V1__SERVER_PAUSE__INIT;
  m.server_id = server_id;
  m.msecs = msecs;
  nct_cmd cmd = NETCORE__V1__COMMAND__INIT;
  cmd.command_case = NETCORE__V1__COMMAND__COMMAND_SERVER_PAUSE;
  cmd.server_pause = &m;
  send_simple(c, &cmd);
}

void nct_cmd_server_close(nct_client *c, uint64_t server_id) {
  Netcore__V1__ServerClose m = NETCORE__V1__SERVER_CLOSE__INIT;
  m.server_id = server_id;
  nct_cmd cmd = NETCORE__V1__COMMAND__INIT;
  cmd.command_case = NETCORE__V1__COMMAND__COMMAND_SERVER_CLOSE;
  cmd.server_close = &m;
  send_simple(c, &cmd);
}

void nct_cmd_server_set_max(nct_client *c, uint64_t server_id, uint32_t max) {
  Netcore__V1__ServerSetMaxConnections m = NETCORE__V1__SERVER_SET_MAX_CONNECTIONS__INIT;
  m.server_id = server_id;
  m.max_connections = max;
  nct_cmd cmd = NETCORE__V1__COMMAND__INIT;
  cmd.command_case = NETCORE__V1__COMMAND__COMMAND_SERVER_SET_MAX_CONNECTIONS;
  cmd.server_set_max_connections = &m;
  send_simple(c, &cmd);
}

void nct_cmd_connect_tcp(nct_client *c, uint64_t socket_id, const char *host, int32_t port,
                         int allow_half_open) {
  Netcore__V1__TcpEndpoint tcp = NETCORE__V1__TCP_ENDPOINT__INIT;
  tcp.host = (char *)(host ? host : "");
  tcp.port = port;
  Netcore__V1__Connect m = NETCORE__V1__CONNECT__INIT;
  m.socket_id = socket_id;
  m.endpoint_case = NETCORE__V1__CONNECT__ENDPOINT_TCP;
  m.tcp = &tcp;
  m.allow_half_open = allow_half_open;
  nct_cmd cmd = NETCORE__V1__COMMAND__INIT;
  cmd.command_case = NETCORE__V1__COMMAND__COMMAND_CONNECT;
  cmd.connect = &m;
  send_simple(c, &cmd);
}

void nct_cmd_connect_path(nct_client *c, uint64_t socket_id, const char *path) {
  Netcore__V1__Connect m = NETCORE__V1__CONNECT__INIT;
  m.socket_id = socket_id;
  m.endpoint_case = NETCORE__V1__CONNECT__ENDPOINT_PATH;
  m.path = (char *)path;
  nct_cmd cmd = NETCORE__V1__COMMAND__INIT;
  cmd.command_case = NETCORE__V1__COMMAND__COMMAND_CONNECT;
  cmd.connect = &m;
  send_simple(c, &cmd);
}

void nct_cmd_write_fd(nct_client *c, uint64_t socket_id, uint64_t fd_socket_id, const void *data,
                      size_t len) {
  Netcore__V1__Write m = NETCORE__V1__WRITE__INIT;
  m.socket_id = socket_id;
  m.fd_socket_id = fd_socket_id;
  m.ack_now = c->ack_now;
  nct_cmd cmd = NETCORE__V1__COMMAND__INIT;
  cmd.command_case = NETCORE__V1__COMMAND__COMMAND_WRITE;
  cmd.write = &m;
  nct_send_at(cur_file, cur_line, c, &cmd, data, len, 1);
}

void nct_cmd_write(nct_client *c, uint64_t socket_id, const void *data, size_t len) {
  nct_cmd_write_fd(c, socket_id, 0, data, len);
}

void nct_cmd_end(nct_client *c, uint64_t socket_id, const void *data, size_t len) {
  Netcore__V1__End m = NETCORE__V1__END__INIT;
  m.socket_id = socket_id;
  nct_cmd cmd = NETCORE__V1__COMMAND__INIT;
  cmd.command_case = NETCORE__V1__COMMAND__COMMAND_END;
  cmd.end = &m;
  nct_send_at(cur_file, cur_line, c, &cmd, data, len, data != NULL);
}

#define SOCKET_CMD(fn, Type, TYPE, field, CASE)              \
  void fn(nct_client *c, uint64_t socket_id) {               \
    Netcore__V1__##Type m = NETCORE__V1__##TYPE##__INIT;     \
    m.socket_id = socket_id;                                 \
    nct_cmd cmd = NETCORE__V1__COMMAND__INIT;                \
    cmd.command_case = NETCORE__V1__COMMAND__COMMAND_##CASE; \
    cmd.field = &m;                                          \
    send_simple(c, &cmd);                                    \
  }
SOCKET_CMD(nct_cmd_destroy, Destroy, DESTROY, destroy, DESTROY)
SOCKET_CMD(nct_cmd_pause, Pause, PAUSE, pause, PAUSE)
SOCKET_CMD(nct_cmd_resume, Resume, RESUME, resume, RESUME)

void nct_cmd_credit(nct_client *c, uint64_t socket_id, uint32_t bytes) {
  Netcore__V1__Credit m = NETCORE__V1__CREDIT__INIT;
  m.socket_id = socket_id;
  m.bytes = bytes;
  nct_cmd cmd = NETCORE__V1__COMMAND__INIT;
  cmd.command_case = NETCORE__V1__COMMAND__COMMAND_CREDIT;
  cmd.credit = &m;
  send_simple(c, &cmd);
}

void nct_cmd_set_timeout(nct_client *c, uint64_t socket_id, uint32_t msecs) {
  Netcore__V1__SetTimeout m = NETCORE__V1__SET_TIMEOUT__INIT;
  m.socket_id = socket_id;
  m.msecs = msecs;
  nct_cmd cmd = NETCORE__V1__COMMAND__INIT;
  cmd.command_case = NETCORE__V1__COMMAND__COMMAND_SET_TIMEOUT;
  cmd.set_timeout = &m;
  send_simple(c, &cmd);
}

void nct_cmd_set_nodelay(nct_client *c, uint64_t socket_id, int enable) {
  Netcore__V1__SetNoDelay m = NETCORE__V1__SET_NO_DELAY__INIT;
  m.socket_id = socket_id;
  m.enable = enable;
  nct_cmd cmd = NETCORE__V1__COMMAND__INIT;
  cmd.command_case = NETCORE__V1__COMMAND__COMMAND_SET_NO_DELAY;
  cmd.set_no_delay = &m;
  send_simple(c, &cmd);
}

void nct_cmd_set_keepalive(nct_client *c, uint64_t socket_id, int enable, uint32_t delay_ms) {
  Netcore__V1__SetKeepAlive m = NETCORE__V1__SET_KEEP_ALIVE__INIT;
  m.socket_id = socket_id;
  m.enable = enable;
  m.initial_delay_ms = delay_ms;
  nct_cmd cmd = NETCORE__V1__COMMAND__INIT;
  cmd.command_case = NETCORE__V1__COMMAND__COMMAND_SET_KEEP_ALIVE;
  cmd.set_keep_alive = &m;
  send_simple(c, &cmd);
}

void nct_cmd_pipe(nct_client *c, uint64_t src, uint64_t dest, int no_end, uint32_t hwm) {
  Netcore__V1__Pipe m = NETCORE__V1__PIPE__INIT;
  m.socket_id = src;
  m.dest_socket_id = dest;
  m.no_end = no_end;
  m.high_water_mark = hwm;
  nct_cmd cmd = NETCORE__V1__COMMAND__INIT;
  cmd.command_case = NETCORE__V1__COMMAND__COMMAND_PIPE;
  cmd.pipe = &m;
  send_simple(c, &cmd);
}

void nct_cmd_unpipe(nct_client *c, uint64_t src) {
  Netcore__V1__Unpipe m = NETCORE__V1__UNPIPE__INIT;
  m.socket_id = src;
  nct_cmd cmd = NETCORE__V1__COMMAND__INIT;
  cmd.command_case = NETCORE__V1__COMMAND__COMMAND_UNPIPE;
  cmd.unpipe = &m;
  send_simple(c, &cmd);
}

void nct_sync_at(const char *file, int line, nct_client *c) {
  static uint64_t nonce = 0x5e0000;
  AT(file, line);
  uint64_t mine = ++nonce;
  nct_cmd_ping(c, mine);
  match m = {.type = EV(PONG), .global = 1};
  nct_event *e = take_match(c, &m, NCT_WAIT);
  if (!e) {
    char dump[4096];
    inbox_dump(c, dump, sizeof dump);
    nct_fail_at(file, line, "[%s] no Pong within %d ms (inbox:%s)", c->name, NCT_WAIT, dump);
  }
  if (e->ev->pong->nonce != mine)
    nct_fail_at(file, line, "[%s] Pong nonce %llu, expected %llu", c->name,
                (unsigned long long)e->ev->pong->nonce, (unsigned long long)mine);
  nct_event_free(e);
}

nct_event *nct_expect_at(const char *file, int line, nct_client *c, int type, uint64_t id,
                         uint64_t skip_mask, int timeout_ms) {
  AT(file, line);
  match m = {.type = -1, .by_id = 1, .id = id};
  uint64_t deadline = nct_now_ms() + (uint64_t)timeout_ms;
  for (;;) {
    uint64_t now = nct_now_ms();
    nct_event *e = take_match(c, &m, now >= deadline ? 0 : (int)(deadline - now));
    char s[512], dump[4096];
    if (!e) {
      inbox_dump(c, dump, sizeof dump);
      nct_fail_at(file, line, "[%s] timed out after %d ms waiting for %s about 0x%llx (inbox:%s)",
                  c->name, timeout_ms, nct_event_name(type), (unsigned long long)id, dump);
    }
    int t = (int)e->ev->event_case;
    if (t == type) return e;
    if (t < 64 && (skip_mask & (1ull << t))) {
      nct_event_free(e);
      continue;
    }
    nct_fail_at(file, line, "[%s] expected %s about 0x%llx, got %s", c->name, nct_event_name(type),
                (unsigned long long)id, nct_event_str(e, s, sizeof s));
  }
}

nct_event *nct_take(nct_client *c, int type, uint64_t id, int timeout_ms) {
  match m = {.type = type, .by_id = 1, .id = id};
  return take_match(c, &m, timeout_ms);
}

nct_event *nct_expect_connection_at(const char *file, int line, nct_client *c, uint64_t server_id,
                                    int timeout_ms) {
  AT(file, line);
  match m = {.conn_srv = 1, .id = server_id};
  nct_event *e = take_match(c, &m, timeout_ms);
  if (!e) {
    char dump[4096];
    inbox_dump(c, dump, sizeof dump);
    nct_fail_at(file, line, "[%s] no Connection for server 0x%llx within %d ms (inbox:%s)", c->name,
                (unsigned long long)server_id, timeout_ms, dump);
  }
  return e;
}

void nct_expect_no_connection_at(const char *file, int line, nct_client *c, uint64_t server_id,
                                 int ms) {
  AT(file, line);
  match m = {.conn_srv = 1, .id = server_id};
  nct_event *e = take_match(c, &m, ms);
  if (e) {
    char s[512];
    nct_fail_at(file, line, "[%s] unexpected %s", c->name, nct_event_str(e, s, sizeof s));
  }
}

int nct_count_connections(nct_client *c, uint64_t server_id) {
  int n = 0;
  match m = {.conn_srv = 1, .id = server_id};
  for (nct_event *e = c->inbox_head; e; e = e->next) n += matches(&m, e);
  return n;
}

nct_event *nct_expect_global_at(const char *file, int line, nct_client *c, int type,
                                int timeout_ms) {
  AT(file, line);
  match m = {.type = -1, .global = 1};
  nct_event *e = take_match(c, &m, timeout_ms);
  char s[512], dump[4096];
  if (!e) {
    inbox_dump(c, dump, sizeof dump);
    nct_fail_at(file, line, "[%s] timed out after %d ms waiting for %s (inbox:%s)", c->name,
                timeout_ms, nct_event_name(type), dump);
  }
  if ((int)e->ev->event_case != type)
    nct_fail_at(file, line, "[%s] expected %s, got %s", c->name, nct_event_name(type),
                nct_event_str(e, s, sizeof s));
  return e;
}

nct_event *nct_expect_error_at(const char *file, int line, nct_client *c, const char *code) {
  nct_event *e = nct_expect_global_at(file, line, c, EV(ERROR), NCT_WAIT);
  char s[512];
  if (!e->ev->error->code || strcmp(e->ev->error->code, code) != 0)
    nct_fail_at(file, line, "[%s] expected Error %s, got %s", c->name, code,
                nct_event_str(e, s, sizeof s));
  return e;
}

void nct_expect_silence_at(const char *file, int line, nct_client *c, int ms) {
  AT(file, line);
  nct_pump(c, ms);
  if (c->inbox_head) {
    char dump[4096];
    inbox_dump(c, dump, sizeof dump);
    nct_fail_at(file, line, "[%s] expected no events, got:%s", c->name, dump);
  }
}

void nct_expect_none_at(const char *file, int line, nct_client *c, uint64_t id, int ms) {
  AT(file, line);
  match m = {.type = -1, .by_id = 1, .id = id};
  nct_event *e = take_match(c, &m, ms);
  if (e) {
    char s[512];
    nct_fail_at(file, line, "[%s] expected no event about 0x%llx for %d ms, got %s", c->name,
                (unsigned long long)id, ms, nct_event_str(e, s, sizeof s));
  }
}

void nct_read_data_at(const char *file, int line, nct_client *c, uint64_t id, void *buf, size_t n,
                      int timeout_ms) {
  size_t got = 0;
  uint64_t deadline = nct_now_ms() + (uint64_t)timeout_ms;
  while (got < n) {
    uint64_t now = nct_now_ms();
    AT(file, line);
    match m = {.type = -1, .by_id = 1, .id = id};
    nct_event *e = take_match(c, &m, now >= deadline ? 0 : (int)(deadline - now));
    char s[512];
    if (!e)
      nct_fail_at(file, line, "[%s] socket 0x%llx: got %zu of %zu data bytes within %d ms", c->name,
                  (unsigned long long)id, got, n, timeout_ms);
    if (e->ev->event_case == EV(WRITE_ACK)) {
      nct_event_free(e);
      continue;
    }
    if (e->ev->event_case != EV(DATA))
      nct_fail_at(file, line, "[%s] socket 0x%llx: expected Data (%zu of %zu bytes so far), got %s",
                  c->name, (unsigned long long)id, got, n, nct_event_str(e, s, sizeof s));
    if (e->len > n - got)
      nct_fail_at(file, line,
                  "[%s] socket 0x%llx: Data of %zu bytes overshoots: %zu of %zu expected", c->name,
                  (unsigned long long)id, e->len, got, n);
    memcpy((uint8_t *)buf + got, e->data, e->len);
    got += e->len;
    nct_event_free(e);
  }
}

void nct_expect_data_at(const char *file, int line, nct_client *c, uint64_t id, const void *want,
                        size_t n) {
  uint8_t *buf = malloc(n ? n : 1);
  if (!buf) abort();
  nct_read_data_at(file, line, c, id, buf, n, NCT_WAIT);
  for (size_t i = 0; i < n; i++)
    if (buf[i] != ((const uint8_t *)want)[i]) {
      uint8_t got = buf[i];
      free(buf);
      nct_fail_at(file, line, "[%s] socket 0x%llx: data byte %zu is 0x%02x, expected 0x%02x",
                  c->name, (unsigned long long)id, i, got, ((const uint8_t *)want)[i]);
    }
  free(buf);
}

uint64_t nct_wait_acks_at(const char *file, int line, nct_client *c, uint64_t id, uint32_t writes,
                          uint64_t bytes) {
  uint32_t w = 0;
  uint64_t b = 0, written = 0;
  uint64_t deadline = nct_now_ms() + NCT_WAIT;
  while (w < writes || b < bytes) {
    uint64_t now = nct_now_ms();
    AT(file, line);
    nct_event *e = nct_take(c, EV(WRITE_ACK), id, now >= deadline ? 0 : (int)(deadline - now));
    if (!e)
      nct_fail_at(file, line,
                  "[%s] socket 0x%llx: acks for %u writes / %llu bytes, expected %u / %llu",
                  c->name, (unsigned long long)id, w, (unsigned long long)b, writes,
                  (unsigned long long)bytes);
    w += e->ev->write_ack->writes;
    b += e->ev->write_ack->bytes;
    written = e->ev->write_ack->bytes_written;
    nct_event_free(e);
  }
  if (w != writes || b != bytes)
    nct_fail_at(file, line,
                "[%s] socket 0x%llx: acks add up to %u writes / %llu bytes, expected %u / %llu",
                c->name, (unsigned long long)id, w, (unsigned long long)b, writes,
                (unsigned long long)bytes);
  return written;
}

/* ---------------------------------------------------------------- peers */

static int make_addr(const char *ip, uint16_t port, struct sockaddr_storage *ss, socklen_t *len) {
  memset(ss, 0, sizeof *ss);
  struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
  if (inet_pton(AF_INET, ip, &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons(port);
    *len = sizeof *a4;
    return AF_INET;
  }
  if (inet_pton(AF_INET6, ip, &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(port);
    *len = sizeof *a6;
    return AF_INET6;
  }
  return -1;
}

int nct_tcp_listen(const char *ip, uint16_t *port) {
  struct sockaddr_storage ss;
  socklen_t len;
  int fam = make_addr(ip, *port, &ss, &len);
  if (fam < 0) return -1;
  int fd = socket(fam, SOCK_STREAM | SOCK_CLOEXEC, 0);
  /* SO_REUSEADDR only to listen again on a given port (past TIME_WAIT);
   * bind(0) needs none. *port is in-out: callers must zero it. */
  int one = 1;
  if (*port != 0) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 128) != 0) {
    close(fd);
    return -1;
  }
  *port = nct_local_port(fd);
  return fd;
}

int nct_unix_listen(const char *path) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof sa.sun_path) return -1;
  strcpy(sa.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 128) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

int nct_tcp_connect_at(const char *file, int line, const char *ip, uint16_t port) {
  struct sockaddr_storage ss;
  socklen_t len;
  int fam = make_addr(ip, port, &ss, &len);
  if (fam < 0) nct_fail_at(file, line, "bad IP literal %s", ip);
  int fd = socket(fam, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (connect(fd, (struct sockaddr *)&ss, len) != 0) {
    int err = errno;
    close(fd);
    nct_fail_at(file, line, "connect(%s port %u): %s", ip, port, strerror(err));
  }
  return fd;
}

int nct_unix_connect_at(const char *file, int line, const char *path) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    int err = errno;
    close(fd);
    nct_fail_at(file, line, "connect(%s): %s", path, strerror(err));
  }
  return fd;
}

int nct_accept(int lfd, int timeout_ms) {
  struct pollfd p = {lfd, POLLIN, 0};
  if (poll(&p, 1, timeout_ms) <= 0) return -1;
  return accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
}

static uint16_t port_of(const struct sockaddr_storage *ss) {
  if (ss->ss_family == AF_INET) return ntohs(((const struct sockaddr_in *)ss)->sin_port);
  if (ss->ss_family == AF_INET6) return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
  return 0;
}

uint16_t nct_local_port(int fd) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) return 0;
  return port_of(&ss);
}

uint16_t nct_remote_port(int fd) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0) return 0;
  return port_of(&ss);
}

size_t nct_fd_read(int fd, void *buf, size_t n, int timeout_ms, int *eof) {
  size_t got = 0;
  if (eof) *eof = 0;
  uint64_t deadline = nct_now_ms() + (uint64_t)timeout_ms;
  while (got < n) {
    uint64_t now = nct_now_ms();
    if (now >= deadline) break;
    struct pollfd p = {fd, POLLIN, 0};
    int r = poll(&p, 1, (int)(deadline - now));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    /* read(), not recv(): pipes are read with this too. poll() said there
     * is something, so this does not block. */
    ssize_t k = read(fd, (uint8_t *)buf + got, n - got);
    if (k == 0) {
      if (eof) *eof = 1;
      break;
    }
    if (k < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      if (eof) *eof = -errno;
      break;
    }
    got += (size_t)k;
  }
  return got;
}

void nct_peer_expect_at(const char *file, int line, int fd, const void *want, size_t n) {
  uint8_t *buf = malloc(n ? n : 1);
  if (!buf) abort();
  int eof;
  size_t got = nct_fd_read(fd, buf, n, NCT_WAIT, &eof);
  if (got != n) {
    free(buf);
    nct_fail_at(file, line, "peer fd %d read %zu of %zu bytes (%s)", fd, got, n,
                eof == 1  ? "EOF"
                : eof < 0 ? strerror(-eof)
                          : "timeout");
  }
  if (want)
    for (size_t i = 0; i < n; i++)
      if (buf[i] != ((const uint8_t *)want)[i]) {
        uint8_t b = buf[i];
        free(buf);
        nct_fail_at(file, line, "peer fd %d: byte %zu is 0x%02x, expected 0x%02x", fd, i, b,
                    ((const uint8_t *)want)[i]);
      }
  free(buf);
}

int nct_peer_expect_eof_at(const char *file, int line, int fd, int timeout_ms) {
  uint8_t buf[256];
  int eof;
  size_t got = nct_fd_read(fd, buf, sizeof buf, timeout_ms, &eof);
  if (got > 0) nct_fail_at(file, line, "peer fd %d: expected EOF, got %zu bytes of data", fd, got);
  if (eof == 1) return 0;
  if (eof == -ECONNRESET) return -ECONNRESET;
  nct_fail_at(file, line, "peer fd %d: no EOF within %d ms (%s)", fd, timeout_ms,
              eof < 0 ? strerror(-eof) : "timeout");
}

void nct_peer_expect_quiet_at(const char *file, int line, int fd, int ms) {
  struct pollfd p = {fd, POLLIN, 0};
  if (poll(&p, 1, ms) > 0) {
    uint8_t b[64];
    ssize_t k = recv(fd, b, sizeof b, MSG_PEEK | MSG_DONTWAIT);
    nct_fail_at(file, line, "peer fd %d: expected nothing for %d ms, got %s", fd, ms,
                k > 0    ? "data"
                : k == 0 ? "EOF"
                         : strerror(errno));
  }
}

int nct_fd_write(int fd, const void *buf, size_t n) {
  size_t done = 0;
  while (done < n) {
    ssize_t k = send(fd, (const uint8_t *)buf + done, n - done, MSG_NOSIGNAL);
    if (k < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    done += (size_t)k;
  }
  return 0;
}

void nct_peer_write_at(const char *file, int line, int fd, const void *buf, size_t n) {
  int r = nct_fd_write(fd, buf, n);
  if (r != 0) nct_fail_at(file, line, "peer fd %d write of %zu bytes: %s", fd, n, strerror(-r));
}

static inline uint8_t pattern_byte(uint64_t i) {
  uint64_t x = (i >> 3) * 0x9E3779B97F4A7C15ull;
  x ^= x >> 29;
  return (uint8_t)(x >> (8 * (i & 7)));
}

void nct_pattern_fill(uint64_t offset, void *buf, size_t n) {
  uint8_t *p = buf;
  for (size_t i = 0; i < n; i++) p[i] = pattern_byte(offset + i);
}

long nct_pattern_check(uint64_t offset, const void *buf, size_t n) {
  const uint8_t *p = buf;
  for (size_t i = 0; i < n; i++)
    if (p[i] != pattern_byte(offset + i)) return (long)i;
  return -1;
}

/* ---------------------------------------------------------------- probes */

long nct_cpu_ms(pid_t pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  /* Fields after the command name, which may hold spaces: skip to its ')'.
   * utime and stime are fields 14 and 15, i.e. the 12th and 13th after it. */
  char *p = strrchr(buf, ')');
  if (!p) return -1;
  unsigned long utime, stime;
  if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
    return -1;
  return (long)((utime + stime) * 1000 / (unsigned long)sysconf(_SC_CLK_TCK));
}

long nct_rss_kib(pid_t pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  long kib = -1;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) break;
  fclose(f);
  return kib;
}

int nct_fd_count(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
  DIR *d = opendir(path);
  if (!d) return -1;
  int n = 0;
  struct dirent *de;
  while ((de = readdir(d)))
    if (de->d_name[0] != '.') n++;
  closedir(d);
  return n;
}

/* What a socket inode is, from /proc/PID/net: "tcp LISTEN 127.0.0.1:port",
 * "tcp state local remote" (hex as the kernel gives them) or "unix path". */
static void socket_kind(pid_t pid, const char *target, char *out, size_t cap) {
  unsigned long inode = 0;
  out[0] = '\0';
  if (sscanf(target, "socket:[%lu]", &inode) != 1) return;
  static const char *const tables[] = {"tcp", "tcp6", "unix"};
  for (size_t t = 0; t < sizeof tables / sizeof *tables; t++) {
    char path[64], line[512];
    snprintf(path, sizeof path, "/proc/%d/net/%s", (int)pid, tables[t]);
    FILE *f = fopen(path, "r");
    if (!f) continue;
    while (fgets(line, sizeof line, f)) {
      char local[64], remote[64], name[256] = "";
      unsigned st = 0;
      unsigned long ino = 0;
      if (t < 2) {
        if (sscanf(line, " %*d: %63s %63s %x %*s %*s %*s %*s %*s %lu", local, remote, &st, &ino) == 4 &&
            ino == inode) {
          snprintf(out, cap, " (%s state %02X %s -> %s)", tables[t], st, local, remote);
          break;
        }
      } else if (sscanf(line, "%*s %*s %*s %*s %*s %x %lu %255s", &st, &ino, name) >= 2 &&
                 ino == inode) {
        snprintf(out, cap, " (unix state %02X %s)", st, name);
        break;
      }
    }
    fclose(f);
    if (out[0]) return;
  }
}

void nct_fd_list(pid_t pid, char *out, size_t cap) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
  DIR *d = opendir(path);
  size_t n = 0;
  out[0] = '\0';
  if (!d) return;
  struct dirent *de;
  while ((de = readdir(d)) && n + 1 < cap) {
    if (de->d_name[0] == '.') continue;
    char link[384], target[256];
    snprintf(link, sizeof link, "%s/%s", path, de->d_name);
    ssize_t k = readlink(link, target, sizeof target - 1);
    target[k > 0 ? k : 0] = '\0';
    char kind[400];
    socket_kind(pid, target, kind, sizeof kind);
    int w = snprintf(out + n, cap - n, "\n    %s -> %s%s", de->d_name, target, kind);
    if (w < 0) break;
    n += (size_t)w;
  }
  closedir(d);
}

static int same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b) {
  if (a->ss_family != b->ss_family) return 0;
  if (a->ss_family == AF_INET) {
    const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  if (a->ss_family == AF_INET6) {
    const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
    return x->sin6_port == y->sin6_port && !memcmp(&x->sin6_addr, &y->sin6_addr, 16);
  }
  return 0;
}

int nct_steal_peer_socket(pid_t pid, int peer_fd) {
  struct sockaddr_storage ploc, prem;
  socklen_t l1 = sizeof ploc, l2 = sizeof prem;
  if (getsockname(peer_fd, (struct sockaddr *)&ploc, &l1) != 0 ||
      getpeername(peer_fd, (struct sockaddr *)&prem, &l2) != 0)
    return -1;
  int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (pidfd < 0) return -1; /* errno from pidfd_open */
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
  DIR *d = opendir(path);
  int found = -1, err = ENOENT;
  struct dirent *de;
  while (d && found < 0 && (de = readdir(d))) {
    if (de->d_name[0] == '.') continue;
    int fd = (int)syscall(SYS_pidfd_getfd, pidfd, atoi(de->d_name), 0);
    if (fd < 0) {
      if (errno == ENOSYS || errno == EPERM) err = errno;
      continue;
    }
    struct sockaddr_storage loc, rem;
    socklen_t a = sizeof loc, b = sizeof rem;
    if (getsockname(fd, (struct sockaddr *)&loc, &a) == 0 &&
        getpeername(fd, (struct sockaddr *)&rem, &b) == 0 && same_addr(&loc, &prem) &&
        same_addr(&rem, &ploc))
      found = fd;
    else
      close(fd);
  }
  if (d) closedir(d);
  close(pidfd);
  if (found < 0) errno = err;
  return found;
}

/* Dumps the TCP sockets of a family in the given states with sock_diag and
 * returns the queues of the first whose local port is sport and (if dport is
 * not 0) whose remote port is dport. Returns 0, or -1 if none matched. */
static int tcp_diag(int family, uint32_t states, uint16_t sport, uint16_t dport, uint32_t *rqueue,
                    uint32_t *wqueue) {
  int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (nl < 0) return -1;
  struct {
    struct nlmsghdr nlh;
    struct inet_diag_req_v2 r;
  } req;
  memset(&req, 0, sizeof req);
  req.nlh.nlmsg_len = sizeof req;
  req.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  req.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.r.sdiag_family = (uint8_t)family;
  req.r.sdiag_protocol = IPPROTO_TCP;
  req.r.idiag_states = states;
  if (send(nl, &req, sizeof req, 0) < 0) {
    close(nl);
    return -1;
  }
  int found = -1;
  static char buf[65536];
  for (int done = 0; !done;) {
    ssize_t n = recv(nl, buf, sizeof buf, 0);
    if (n <= 0) break;
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
         h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR) {
        done = 1;
        break;
      }
      struct inet_diag_msg *m = NLMSG_DATA(h);
      if (found < 0 && ntohs(m->id.idiag_sport) == sport &&
          (dport == 0 || ntohs(m->id.idiag_dport) == dport)) {
        *rqueue = m->idiag_rqueue;
        *wqueue = m->idiag_wqueue;
        found = 0;
      }
    }
  }
  close(nl);
  return found;
}

int nct_tcp_listen_queue(int family, uint16_t port, uint32_t *backlog, uint32_t *queued) {
  /* For a listener, rqueue is the accept queue and wqueue the backlog. */
  return tcp_diag(family, 1u << 10 /* TCP_LISTEN */, port, 0, queued, backlog);
}

long nct_tcp_unread(int peer_fd) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(peer_fd, (struct sockaddr *)&ss, &len) != 0) return -1;
  uint32_t rq, wq;
  /* The other end: local port = our remote port, remote port = our local
   * port. ESTABLISHED (1) or CLOSE_WAIT (8) once we sent a FIN. */
  if (tcp_diag(ss.ss_family, (1u << 1) | (1u << 8), nct_remote_port(peer_fd),
               nct_local_port(peer_fd), &rq, &wq) != 0)
    return -1;
  return rq;
}

/* ---------------------------------------------------------------- env */

/* Waits until netcore's open fds are back at the baseline (fails otherwise). */
static void check_fds(const char *file, int line, nct_env *e) {
  uint64_t deadline = nct_now_ms() + NCT_WAIT;
  int n;
  while ((n = nct_fd_count(e->d.pid)) != e->baseline_fds && nct_now_ms() < deadline) sleep_ms(10);
  if (n != e->baseline_fds) {
    char list[4096];
    nct_fd_list(e->d.pid, list, sizeof list);
    nct_fail_at(file, line, "netcore has %d open fds, %d expected (leak?):%s", n, e->baseline_fds,
                list);
  }
}

int nct_env_setup(void **state) {
  nct_env *e = calloc(1, sizeof *e);
  if (!e) return -1;
  e->by_peer = -1;
  *state = e;
  return 0;
}

/* Runs after every test, passed or failed: whatever is left is killed
 * without checks (a passing test already ran nct_env_finish). */
int nct_env_teardown(void **state) {
  nct_env *e = *state;
  *state = NULL;
  if (!e) return 0;
  nct_clients_end(&e->handlers, 0);
  if (e->observer) nct_client_free(e->observer);
  if (e->by_peer >= 0) close(e->by_peer);
  if (e->started) nct_daemon_kill(&e->d);
  free(e);
  return 0;
}

void nct_env_finish_at(const char *file, int line, nct_env *e) {
  AT(file, line);
  nct_clients_end(&e->handlers, 1);
  if (e->by_peer >= 0) {
    nct_close_both_at(file, line, e->observer, e->by_socket, e->by_peer);
    e->by_peer = -1;
    nct_cmd_server_close(e->observer, e->by_server);
    nct_event_free(
        nct_expect_at(file, line, e->observer, EV(SERVER_CLOSED), e->by_server, 0, NCT_WAIT));
  }
  /* The observer must still be served after whatever the test did. */
  nct_sync_at(file, line, e->observer);
  check_fds(file, line, e);
  nct_client_bye(e->observer);
  e->observer = NULL;
  nct_daemon_stop(&e->d);
  e->started = 0;
}

static void env_start(const char *file, int line, nct_env *e, const char *const *flags,
                      const int *fds, const nct_daemon_opts *opts);

void nct_env_start_at(const char *file, int line, nct_env *e, const char *const *flags,
                      const int *fds) {
  env_start(file, line, e, flags, fds, NULL);
}

void nct_env_start_opts_at(const char *file, int line, nct_env *e, const char *const *flags,
                           const nct_daemon_opts *opts) {
  env_start(file, line, e, flags, NULL, opts);
}

static void env_start(const char *file, int line, nct_env *e, const char *const *flags,
                      const int *fds, const nct_daemon_opts *opts) {
  nct_daemon_start_opts_at(file, line, &e->d, flags, fds, opts);
  e->started = 1;
  /* Count fds with the observer connected, so the baseline does not depend
   * on when netcore notices the probe has gone. The count must be stable
   * first: the probe's connection closes asynchronously. */
  e->observer = nct_client_new(e->d.endpoint, "observer", 0);
  nct_hello_at(file, line, e->observer, 0, 60000);
  /* Warm up: libuv opens some fds once per loop, lazily (the /dev/null it
   * keeps for the EMFILE trick when it first accepts); they are not leaks. */
  uint16_t port;
  uint64_t srv = nct_listen_local_at(file, line, e->observer, &port, 0);
  int peer;
  uint64_t sock = nct_accept_peer_at(file, line, e->observer, srv, port, &peer);
  nct_close_both_at(file, line, e->observer, sock, peer);
  nct_cmd_server_close(e->observer, srv);
  nct_event_free(nct_expect_at(file, line, e->observer, EV(SERVER_CLOSED), srv, 0, NCT_WAIT));
  int prev = -1, n, stable = 0;
  uint64_t deadline = nct_now_ms() + NCT_WAIT;
  while (stable < 10 && nct_now_ms() < deadline) {
    n = nct_fd_count(e->d.pid);
    stable = n == prev ? stable + 1 : 0;
    prev = n;
    sleep_ms(10);
  }
  e->baseline_fds = prev;
}

void nct_env_adopt(nct_env *e, nct_client *c) {
  nct_clients_keep(&e->handlers, c);
}

nct_client *nct_env_handler_at(const char *file, int line, nct_env *e, const char *name,
                               uint32_t credit_window, uint32_t lease_ms) {
  nct_client *c = nct_client_new(e->d.endpoint, name, 0);
  nct_env_adopt(e, c);
  nct_hello_at(file, line, c, credit_window, lease_ms ? lease_ms : 60000);
  return c;
}

void nct_env_release(nct_env *e, nct_client *c, int bye) {
  nct_clients_drop(&e->handlers, c, bye);
}

int nct_env_handler_live_at(const char *file, int line, nct_env *e, uint32_t prefix) {
  AT(file, line);
  Netcore__V1__StatsQuery q = NETCORE__V1__STATS_QUERY__INIT;
  nct_cmd cmd = NETCORE__V1__COMMAND__INIT;
  cmd.command_case = NETCORE__V1__COMMAND__COMMAND_STATS;
  cmd.stats = &q;
  nct_send_at(file, line, e->observer, &cmd, NULL, 0, 0);
  nct_event *ev = nct_expect_global_at(file, line, e->observer, EV(STATS), NCT_WAIT);
  char want[16];
  snprintf(want, sizeof want, "%u", prefix);
  int live = 0, seen = 0;
  const Netcore__V1__Stats *st = ev->ev->stats;
  for (size_t f = 0; f < st->n_families; f++) {
    if (strcmp(st->families[f]->name, "netcore_handler_info") != 0) continue;
    seen = 1;
    for (size_t i = 0; i < st->families[f]->n_samples; i++) {
      const Netcore__V1__MetricSample *s = st->families[f]->samples[i];
      for (size_t k = 0; k < s->n_labels; k++)
        if (strcmp(s->labels[k]->name, "prefix") == 0 && strcmp(s->labels[k]->value, want) == 0)
          live = 1;
    }
  }
  nct_event_free(ev);
  /* The observer itself is always there: a Stats without the family would
   * make every handler look gone. */
  if (!seen) nct_fail_at(file, line, "Stats has no netcore_handler_info family");
  return live;
}

void nct_env_wait_gone_at(const char *file, int line, nct_env *e, uint32_t prefix) {
  uint64_t deadline = nct_now_ms() + NCT_WAIT;
  while (nct_env_handler_live_at(file, line, e, prefix)) {
    if (nct_now_ms() > deadline)
      nct_fail_at(file, line, "netcore still holds handler prefix %u %d ms after it went", prefix,
                  NCT_WAIT);
    sleep_ms(5); /* a poll interval: the answer above is the signal */
  }
}

void nct_env_die_at(const char *file, int line, nct_env *e, nct_client *c) {
  uint32_t prefix = c->id_prefix;
  if (!c->welcomed) nct_fail_at(file, line, "[%s] dies before its Welcome", c->name);
  nct_env_release(e, c, 0);
  nct_env_wait_gone_at(file, line, e, prefix);
}

uint64_t nct_listen_local_at(const char *file, int line, nct_client *c, uint16_t *port,
                             int allow_half_open) {
  AT(file, line);
  uint64_t id = nct_new_id(c);
  nct_cmd_listen_tcp(c, id, "127.0.0.1", 0, allow_half_open, 0, 0, NULL);
  nct_event *e = nct_expect_at(file, line, c, EV(LISTENING), id, 0, NCT_WAIT);
  nct_addr *a = e->ev->listening->address;
  if (!a || a->port == 0 || a->port > 65535)
    nct_fail_at(file, line, "Listening on 127.0.0.1:0 reports port %u", a ? a->port : 0);
  *port = (uint16_t)a->port;
  nct_event_free(e);
  return id;
}

uint64_t nct_accept_peer_at(const char *file, int line, nct_client *c, uint64_t server_id,
                            uint16_t port, int *peer) {
  *peer = nct_tcp_connect_at(file, line, "127.0.0.1", port);
  nct_event *e = nct_expect_connection_at(file, line, c, server_id, NCT_WAIT);
  Netcore__V1__Connection *cn = e->ev->connection;
  if (!cn->remote || cn->remote->port != nct_local_port(*peer)) {
    /* Connections may be accepted in another order than connect() returned
     * only when several peers race; callers connect one at a time. */
    nct_fail_at(file, line, "Connection.remote.port %u is not the peer's port %u",
                cn->remote ? cn->remote->port : 0, nct_local_port(*peer));
  }
  uint64_t id = cn->socket_id;
  nct_event_free(e);
  return id;
}

void nct_close_both_at(const char *file, int line, nct_client *c, uint64_t id, int peer) {
  AT(file, line);
  close(peer);
  nct_event_free(nct_expect_at(file, line, c, EV(ENDED), id, NCT_SKIP(WRITE_ACK), NCT_WAIT));
  nct_cmd_end(c, id, NULL, 0);
  nct_event *e = nct_expect_at(file, line, c, EV(CLOSED), id, NCT_SKIP(WRITE_ACK), NCT_WAIT);
  if (e->ev->closed->had_error) {
    char s[512];
    nct_fail_at(file, line, "expected a clean close, got %s", nct_event_str(e, s, sizeof s));
  }
  nct_event_free(e);
}

void nct_env_bystander_start_at(const char *file, int line, nct_env *e) {
  e->by_server = nct_listen_local_at(file, line, e->observer, &e->by_port, 0);
  e->by_socket = nct_accept_peer_at(file, line, e->observer, e->by_server, e->by_port, &e->by_peer);
}

void nct_env_bystander_check_at(const char *file, int line, nct_env *e) {
  static const char ping[] = "bystander-ping", pong[] = "bystander-pong";
  AT(file, line);
  nct_sync_at(file, line, e->observer);
  if (e->by_peer < 0) return;
  nct_peer_write_at(file, line, e->by_peer, ping, sizeof ping - 1);
  nct_expect_data_at(file, line, e->observer, e->by_socket, ping, sizeof ping - 1);
  nct_cmd_write(e->observer, e->by_socket, pong, sizeof pong - 1);
  nct_peer_expect_at(file, line, e->by_peer, pong, sizeof pong - 1);
  nct_wait_acks_at(file, line, e->observer, e->by_socket, 1, sizeof pong - 1);
}
