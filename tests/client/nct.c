/* nct.c: see nct.h. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "nct.h"

#ifndef NETCORE_BIN
#define NETCORE_BIN "netcore"
#endif

static void ignore_sigpipe(void) {
  static int done;
  if (!done) signal(SIGPIPE, SIG_IGN); /* a peer closed by netcore gives EPIPE, not death */
  done = 1;
}

void nct_child_env(void) {
#if defined(__SANITIZE_ADDRESS__)
  /* ASan's quarantine keeps freed memory resident; the memory bounds of the
   * tests are about live memory, so children run without it. */
  char opts[512];
  const char *old = getenv("ASAN_OPTIONS");
  snprintf(opts, sizeof(opts), "%s%squarantine_size_mb=0:thread_local_quarantine_size_kb=0",
           old ? old : "", old && *old ? ":" : "");
  setenv("ASAN_OPTIONS", opts, 1);
#endif
}

uint64_t nct_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

const char *nct_netcore_bin(void) {
  const char *bin = getenv("NETCORE_BIN");
  return bin == NULL || *bin == '\0' ? NETCORE_BIN : bin;
}

/* Starts netcore in d->dir: with --bind d->endpoint, or (use_default) with
 * no --bind, XDG_RUNTIME_DIR=d->dir and NETCORE_ENDPOINT unset. */
static void spawn(nct_netcore_t *d, int use_default, const char *const *flags);

static void start(nct_netcore_t *d, int use_default, const char *const *flags) {
  int rc = nct_launch_dir(d, use_default ? "netcore/netcore.sock" : "nc.sock");
  if (rc != 0) fail_msg("mkdtemp: %s", strerror(-rc));
  spawn(d, use_default, flags);
}

void nct_netcore_restart(nct_netcore_t *d, const char *const *flags) {
  if (d->pid > 0) fail_msg("nct_netcore_restart: netcore %d still runs", (int)d->pid);
  spawn(d, 0, flags);
}

typedef struct child_setup {
  const char *dir;
  int use_default;
} child_setup;

/* In the child, before the exec: sanitizer options and, for the default
 * endpoint, its environment. */
static void setup_child(void *ctx) {
  const child_setup *c = ctx;
  nct_child_env();
  if (c->use_default) {
    setenv("XDG_RUNTIME_DIR", c->dir, 1);
    unsetenv("NETCORE_ENDPOINT");
  }
}

/* Runs netcore for d (its dir and endpoint set) and waits until it answers. */
static void spawn(nct_netcore_t *d, int use_default, const char *const *flags) {
  ignore_sigpipe();
  const char *bin = nct_netcore_bin();
  const char *argv[40];
  int argc = 0;
  argv[argc++] = bin;
  if (!use_default) {
    argv[argc++] = "--bind";
    argv[argc++] = d->endpoint;
  }
  argv[argc++] = "--log-level";
  argv[argc++] = "error";
  for (int i = 0; flags != NULL && flags[i] != NULL && argc < 38; i++) argv[argc++] = flags[i];
  argv[argc] = NULL;
  child_setup setup = {d->dir, use_default};
  int rc = nct_launch_spawn(d, (char *const *)argv, NULL, setup_child, &setup);
  if (rc != 0) fail_msg("fork: %s", strerror(-rc));
  /* Ready = `netcore --ping` is answered (nct_launch_wait_ready). */
  char why[200];
  rc = nct_launch_wait_ready(d, bin, 10000, why, sizeof(why));
  if (rc == -2) nct_launch_kill(d);
  if (rc != 0) fail_msg("netcore %s did not start: %s", bin, why);
}

void nct_netcore_start(nct_netcore_t *d, const char *const *flags) { start(d, 0, flags); }

void nct_netcore_start_default(nct_netcore_t *d) { start(d, 1, NULL); }

void nct_netcore_stop(nct_netcore_t *d) {
  nct_launch_stop(d, SIGTERM, 10000, NULL);
  nct_launch_rmdir(d);
}

void nct_netcore_kill(nct_netcore_t *d) { nct_launch_kill(d); }

void nct_forget(pid_t pid) { nct_launch_forget(pid); }

void nct_path(const nct_netcore_t *d, const char *name, char *out, size_t cap) {
  snprintf(out, cap, "%s/%s", d->dir, name);
}

nc_loop_t *nct_loop(const nct_netcore_t *d) {
  nc_loop_t *loop;
  char err[256];
  nc_loop_options_t o = {.endpoint = d->endpoint, .name = "nc-test", .hello_timeout_ms = 5000};
  int rv = nc_loop_new(&loop, &o, err, sizeof(err));
  if (rv != 0) fail_msg("nc_loop_new: %s: %s", nc_err_name(rv), err);
  return loop;
}

/* Drives the loop the way a foreign event loop would (nc_loop_fd,
 * nc_loop_timeout, nc_loop_process), with a deadline against hangs. */
int nct_run(nc_loop_t *loop, unsigned max_ms) {
  uint64_t deadline = nct_now_ms() + max_ms;
  for (;;) {
    int rv = nc_loop_process(loop);
    if (rv <= 0) return rv;
    uint64_t now = nct_now_ms();
    if (now >= deadline) fail_msg("the loop did not finish within %u ms (a hang)", max_ms);
    int t = nc_loop_timeout(loop);
    if (t < 0 || (uint64_t)t > deadline - now) t = (int)(deadline - now);
    struct pollfd p = {.fd = nc_loop_fd(loop), .events = POLLIN};
    if (t != 0) poll(&p, 1, t);
  }
}

static void stop_guard_fired(nc_timer_t *timer) {
  fail_msg("the loop was not stopped within %u ms (a hang)",
           (unsigned)(uintptr_t)nc_timer_get_data(timer));
}

void nct_run_until_stop(nc_loop_t *loop, unsigned max_ms) {
  nc_timer_t *guard;
  if (nc_timer_new(loop, &guard) != 0) fail_msg("nc_timer_new failed");
  nc_timer_set_data(guard, (void *)(uintptr_t)max_ms);
  if (nc_timer_start(guard, stop_guard_fired, max_ms, 0) != 0) fail_msg("nc_timer_start failed");
  int rv = nc_loop_run(loop);
  nc_timer_close(guard);
  if (rv != 0) fail_msg("the loop ended (%s) before it was stopped", nc_err_name(rv));
}

int nct_tcp_connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
    fail_msg("connect 127.0.0.1:%d: %s", port, strerror(errno));
  return fd;
}

int nct_unix_connect(const char *path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
  if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
    fail_msg("connect %s: %s", path, strerror(errno));
  return fd;
}

int nct_tcp_listen(int *port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  socklen_t len = sizeof(a);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 64) != 0 ||
      getsockname(fd, (struct sockaddr *)&a, &len) != 0)
    fail_msg("listen: %s", strerror(errno));
  *port = ntohs(a.sin_port);
  return fd;
}

int nct_accept(int lfd) {
  int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
  if (fd < 0) fail_msg("accept: %s", strerror(errno));
  return fd;
}

size_t nct_read_all(int fd, void *buf, size_t cap, int timeout_ms) {
  size_t got = 0;
  while (got < cap) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int n = poll(&p, 1, timeout_ms);
    if (n == 0) fail_msg("read: no data for %d ms after %zu bytes", timeout_ms, got);
    ssize_t r = read(fd, (char *)buf + got, cap - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) fail_msg("read: %s", strerror(errno));
    if (r == 0) break;
    got += (size_t)r;
  }
  return got;
}

void nct_write_all(int fd, const void *buf, size_t len) {
  size_t done = 0;
  while (done < len) {
    ssize_t w = write(fd, (const char *)buf + done, len - done);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) fail_msg("write: %s", strerror(errno));
    done += (size_t)w;
  }
}

pthread_t nct_thread(void *(*fn)(void *), void *arg) {
  pthread_t t;
  if (pthread_create(&t, NULL, fn, arg) != 0) fail_msg("pthread_create failed");
  return t;
}

static long status_kib(pid_t pid, const char *key) {
  char path[64], line[256];
  snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  long v = -1;
  if (f == NULL) return -1;
  while (fgets(line, sizeof(line), f) != NULL)
    if (strncmp(line, key, strlen(key)) == 0) v = strtol(line + strlen(key), NULL, 10);
  fclose(f);
  return v;
}

long nct_rss_kib(pid_t pid) { return status_kib(pid, "VmRSS:"); }
long nct_hwm_kib(pid_t pid) { return status_kib(pid, "VmHWM:"); }

nct_netcore_t nct_daemon;

int nct_setup(void **state) {
  (void)state;
  nct_netcore_start(&nct_daemon, NULL);
  return 0;
}

int nct_teardown(void **state) {
  (void)state;
  nct_netcore_stop(&nct_daemon);
  return 0;
}
