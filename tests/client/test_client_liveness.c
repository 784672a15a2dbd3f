/* libnc when netcore is not there: not running at start (a clear error in
 * bounded time); without reconnection (no_reconnect): killed while the
 * handler runs (every socket and server gets 'error' ERR_NETCORE_GONE then
 * 'close', the loop returns, nothing hangs or leaks), silent (the lease finds
 * it), shutting down (SIGTERM); with reconnection (the default): killed -9 or
 * shut down and started again on the same endpoint (sockets get
 * ERR_NETCORE_GONE then 'close', the server listens again on its port and
 * serves a new client); a netcore takeover: the session resumes (an outbound
 * socket goes on as the same object, PROTOCOL.md 16.1), and the commands
 * sent that the old netcore never read (setTimeout, setKeepAlive, Listen,
 * Connect) take effect on the new one, once each. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/ptrace.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <string.h>
#include <unistd.h>

#include "nct.h"

static void test_client_liveness_not_running(void **state) {
  (void)state;
  char endpoint[128], err[512];
  snprintf(endpoint, sizeof(endpoint), "ipc:///tmp/nct-none-%d/nc.sock", (int)getpid());
  nc_loop_options_t o = {.endpoint = endpoint, .hello_timeout_ms = 300};
  nc_loop_t *loop = (nc_loop_t *)&o; /* must be reset to NULL */
  int rv = nc_loop_new(&loop, &o, err, sizeof(err));
  assert_int_equal(rv, NC_ERR_NETCORE_UNAVAILABLE);
  assert_null(loop);
  assert_non_null(strstr(err, endpoint));
  assert_non_null(strstr(err, "not reachable"));
  /* A malformed endpoint is a different, immediate error. */
  o.endpoint = "nonsense://x";
  assert_int_equal(nc_loop_new(&loop, &o, err, sizeof(err)), NC_EINVAL);
}

typedef struct {
  nct_netcore_t *d;
  nc_server_t *server;
  int socket_errors, socket_closes, close_with_error, server_errors, server_closes;
  int connected;
} gone_t;

static void g_sock_error(nc_socket_t *s, int err, const char *msg) {
  gone_t *t = nc_socket_get_data(s);
  assert_non_null(msg);
  if (err == NC_ERR_NETCORE_GONE) t->socket_errors++;
}

static void g_sock_close(nc_socket_t *s, int had_error) {
  gone_t *t = nc_socket_get_data(s);
  t->socket_closes++;
  t->close_with_error += had_error;
  /* Connecting again cannot work now: an error, at once. */
  assert_true(nc_socket_connect(s, 1, NULL, NULL) < 0);
}

static void g_server_error(nc_server_t *s, int err, const char *msg) {
  gone_t *t = nc_server_get_data(s);
  (void)msg;
  if (err == NC_ERR_NETCORE_GONE || err == NC_ERR_NETCORE_SHUTDOWN) t->server_errors++;
}

static void g_server_close(nc_server_t *s) { ((gone_t *)nc_server_get_data(s))->server_closes++; }

static const nc_socket_events_t g_sock_events = {.on_error = g_sock_error, .on_close = g_sock_close};

static void g_connection(nc_server_t *s, nc_socket_t *c) {
  gone_t *t = nc_server_get_data(s);
  nc_socket_set_data(c, t);
  nc_socket_set_events(c, &g_sock_events);
  nc_socket_pause(c); /* a paused socket is told too */
}

static void g_connected(nc_socket_t *s) {
  gone_t *t = nc_socket_get_data(s);
  t->connected = 1;
  nc_socket_write(s, "queued", 6, NULL, NULL);
}

static void g_listening(nc_server_t *s) {
  gone_t *t = nc_server_get_data(s);
  nc_address_t a;
  nc_socket_t *c;
  nc_server_address(s, &a);
  assert_int_equal(nc_create_connection(nc_server_loop(s), NULL, a.port, "127.0.0.1", g_connected, &c), 0);
  nc_socket_set_data(c, t);
  nc_socket_set_events(c, &g_sock_events);
}

static gone_t *g_start(nc_loop_t **loop, nct_netcore_t *d, gone_t *t) {
  memset(t, 0, sizeof(*t));
  t->d = d;
  char err[256];
  nc_loop_options_t o = {.endpoint = d->endpoint, .hello_timeout_ms = 5000, .no_reconnect = 1};
  if (nc_loop_new(loop, &o, err, sizeof(err)) != 0) fail_msg("nc_loop_new: %s", err);
  nc_server_events_t ev = {.on_connection = g_connection, .on_listening = g_listening,
                           .on_error = g_server_error, .on_close = g_server_close};
  assert_int_equal(nc_server_new(*loop, NULL, NULL, &t->server), 0);
  nc_server_set_data(t->server, t);
  nc_server_set_events(t->server, &ev);
  assert_int_equal(nc_server_listen(t->server, 0, "127.0.0.1", NULL), 0);
  /* Up to both connections open. */
  uint64_t deadline = nct_now_ms() + 10000;
  while (!(t->connected && nc_server_connections(t->server) == 1)) {
    assert_true(nc_loop_process(*loop) > 0);
    assert_true(nct_now_ms() < deadline);
    usleep(1000);
  }
  return t;
}

static void test_client_liveness_netcore_killed(void **state) {
  (void)state;
  nct_netcore_t d;
  nc_loop_t *loop;
  gone_t t;
  nct_netcore_start(&d, NULL);
  g_start(&loop, &d, &t);
  nct_netcore_kill(&d);
  assert_int_equal(nct_run(loop, 15000), NC_ERR_NETCORE_GONE);
  assert_int_equal(t.socket_errors, 2);
  assert_int_equal(t.socket_closes, 2);
  assert_int_equal(t.close_with_error, 2);
  assert_int_equal(t.server_errors, 1);
  assert_int_equal(t.server_closes, 1);
  assert_non_null(strstr(nc_loop_error_message(loop), "went away"));
  /* Nothing can be started any more; freeing is clean. */
  nc_server_t *s;
  assert_int_equal(nc_server_new(loop, NULL, NULL, &s), 0);
  assert_int_equal(nc_server_listen(s, 0, NULL, NULL), NC_ERR_NETCORE_GONE);
  nc_loop_free(loop);
  nct_netcore_stop(&d);
}

static void test_client_liveness_lease_expires(void **state) {
  (void)state;
  nct_netcore_t d;
  nc_loop_t *loop;
  gone_t t;
  const char *flags[] = {"--lease-ms", "600", NULL};
  nct_netcore_start(&d, flags);
  g_start(&loop, &d, &t);
  /* Alive but silent: only the lease can tell. */
  kill(d.pid, SIGSTOP);
  int rv = nct_run(loop, 15000);
  kill(d.pid, SIGCONT);
  assert_int_equal(rv, NC_ERR_NETCORE_GONE);
  assert_int_equal(t.socket_closes, 2);
  assert_int_equal(t.server_closes, 1);
  nc_loop_free(loop);
  nct_netcore_stop(&d);
}

static void test_client_liveness_netcore_shutdown(void **state) {
  (void)state;
  nct_netcore_t d;
  nc_loop_t *loop;
  gone_t t;
  nct_netcore_start(&d, NULL);
  g_start(&loop, &d, &t);
  kill(d.pid, SIGTERM);
  assert_int_equal(nct_run(loop, 15000), NC_ERR_NETCORE_SHUTDOWN);
  assert_int_equal(t.socket_closes, 2);
  assert_int_equal(t.server_errors, 1);
  assert_int_equal(t.server_closes, 1);
  nc_loop_free(loop);
  nct_netcore_stop(&d);
}

/* ------------------------------------------------------------ reconnection */

typedef struct {
  nc_server_t *server;
  int listening, port, connections, sock_errors, sock_error, sock_closes, server_errors;
  char server_error[256];
} rc_t;

static void rc_sock_error(nc_socket_t *s, int err, const char *msg) {
  rc_t *t = nc_socket_get_data(s);
  (void)msg;
  t->sock_errors++;
  t->sock_error = err;
}

static void rc_sock_close(nc_socket_t *s, int had_error) {
  rc_t *t = nc_socket_get_data(s);
  (void)had_error;
  t->sock_closes++;
}

static void rc_connection(nc_server_t *server, nc_socket_t *c) {
  rc_t *t = nc_server_get_data(server);
  static const nc_socket_events_t ev = {.on_error = rc_sock_error, .on_close = rc_sock_close};
  t->connections++;
  nc_socket_set_data(c, t);
  nc_socket_set_events(c, &ev);
  nc_socket_write(c, "hi\n", 3, NULL, NULL);
}

static void rc_listening(nc_server_t *server) {
  rc_t *t = nc_server_get_data(server);
  nc_address_t a;
  assert_int_equal(nc_server_address(server, &a), 0);
  if (t->listening++ > 0) assert_int_equal(a.port, t->port); /* the same port again */
  t->port = a.port;
}

static void rc_server_error(nc_server_t *server, int err, const char *msg) {
  rc_t *t = nc_server_get_data(server);
  t->server_errors++;
  snprintf(t->server_error, sizeof(t->server_error), "%s: %s", nc_err_name(err), msg);
}

/* Runs the loop until *flag >= want (fails after 15 s or if the loop ends). */
static void rc_until(nc_loop_t *loop, const int *flag, int want) {
  uint64_t deadline = nct_now_ms() + 15000;
  while (*flag < want) {
    int rv = nc_loop_process(loop);
    if (*flag >= want) break;
    if (rv <= 0) fail_msg("the loop ended (%s): %s", nc_err_name(rv), nc_loop_error_message(loop));
    if (nct_now_ms() > deadline) fail_msg("waited 15 s for %d (have %d)", want, *flag);
    int t = nc_loop_timeout(loop);
    struct pollfd p = {.fd = nc_loop_fd(loop), .events = POLLIN};
    poll(&p, 1, t < 0 || t > 20 ? 20 : t);
  }
}

/* Connects to port, reads the greeting, closes. */
static void rc_client(nc_loop_t *loop, rc_t *t, int port) {
  int fd = nct_tcp_connect(port);
  int before = t->connections;
  rc_until(loop, &t->connections, before + 1);
  char buf[8];
  size_t n = 0;
  uint64_t deadline = nct_now_ms() + 15000;
  while (n < 3) {
    nc_loop_process(loop);
    ssize_t r = recv(fd, buf + n, sizeof(buf) - n, MSG_DONTWAIT);
    if (r > 0) n += (size_t)r;
    if (r == 0 || nct_now_ms() > deadline) fail_msg("no greeting from the server");
    usleep(1000);
  }
  assert_memory_equal(buf, "hi\n", 3);
  close(fd);
}

static void reconnect_after(int how) {
  nct_netcore_t d;
  rc_t t = {0};
  nct_netcore_start(&d, NULL);
  nc_loop_t *loop = nct_loop(&d); /* reconnection is the default */
  nc_server_events_t ev = {.on_connection = rc_connection, .on_listening = rc_listening,
                           .on_error = rc_server_error};
  assert_int_equal(nc_server_new(loop, NULL, NULL, &t.server), 0);
  nc_server_set_data(t.server, &t);
  nc_server_set_events(t.server, &ev);
  assert_int_equal(nc_server_listen(t.server, 0, "127.0.0.1", NULL), 0);
  rc_until(loop, &t.listening, 1);
  char first_instance[64];
  snprintf(first_instance, sizeof(first_instance), "%s", nc_loop_instance_id(loop));
  int old = nct_tcp_connect(t.port); /* stays open through the restart */
  rc_until(loop, &t.connections, 1);

  if (how == SIGKILL) {
    nct_netcore_kill(&d);
  } else {
    kill(d.pid, SIGTERM);
    waitpid(d.pid, NULL, 0);
    d.pid = 0;
  }
  /* The lost socket: 'error' ERR_NETCORE_GONE, then 'close' (netcore shutting
   * down closes it itself); the loop goes on. */
  rc_until(loop, &t.sock_closes, 1);
  if (how == SIGKILL) {
    assert_int_equal(t.sock_errors, 1);
    assert_int_equal(t.sock_error, NC_ERR_NETCORE_GONE);
  }
  assert_int_equal(t.server_errors, 0);
  nc_socket_t *c;
  assert_int_equal(nc_create_connection(loop, NULL, t.port, "127.0.0.1", NULL, &c),
                   NC_ERR_NETCORE_UNAVAILABLE); /* no netcore to ask meanwhile */
  usleep(300 * 1000); /* netcore stays away for a while: libnc retries */
  for (int i = 0; i < 20; i++) assert_true(nc_loop_process(loop) > 0);

  uint64_t back = nct_now_ms();
  nct_netcore_restart(&d, NULL);
  rc_until(loop, &t.listening, 2);
  printf("listening again %llu ms after netcore was back\n",
         (unsigned long long)(nct_now_ms() - back));
  assert_int_equal(t.server_errors, 0);
  assert_string_not_equal(nc_loop_instance_id(loop), first_instance);
  rc_client(loop, &t, t.port);
  close(old);
  nc_loop_free(loop);
  nct_netcore_stop(&d);
}

static void test_client_liveness_reconnect_after_kill(void **state) {
  (void)state;
  reconnect_after(SIGKILL);
}

static void test_client_liveness_reconnect_after_shutdown(void **state) {
  (void)state;
  reconnect_after(SIGTERM);
}

/* The address is gone when netcore is back (another process took the port):
 * that server gets 'error' (EADDRINUSE), the loop keeps running. */
static void test_client_liveness_relisten_fails(void **state) {
  (void)state;
  nct_netcore_t d;
  rc_t t = {0};
  nct_netcore_start(&d, NULL);
  nc_loop_t *loop = nct_loop(&d);
  nc_server_events_t ev = {.on_connection = rc_connection, .on_listening = rc_listening,
                           .on_error = rc_server_error};
  assert_int_equal(nc_server_new(loop, NULL, NULL, &t.server), 0);
  nc_server_set_data(t.server, &t);
  nc_server_set_events(t.server, &ev);
  assert_int_equal(nc_server_listen(t.server, 0, "127.0.0.1", NULL), 0);
  rc_until(loop, &t.listening, 1);
  nct_netcore_kill(&d);
  for (int i = 0; i < 50; i++) {
    nc_loop_process(loop);
    usleep(2000);
  }
  int port = t.port;
  int squatter = -1;
  /* Take the port while netcore is away. */
  {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    squatter = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(bind(squatter, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(squatter, 1), 0);
  }
  nct_netcore_restart(&d, NULL);
  rc_until(loop, &t.server_errors, 1);
  assert_non_null(strstr(t.server_error, "EADDRINUSE"));
  assert_int_equal(t.listening, 1);
  /* The server may listen again, elsewhere. */
  t.listening = 0;
  assert_int_equal(nc_server_listen(t.server, 0, "127.0.0.1", NULL), 0);
  rc_until(loop, &t.listening, 1);
  rc_client(loop, &t, t.port);
  close(squatter);
  nc_loop_free(loop);
  nct_netcore_stop(&d);
}

/* A netcore takeover (PROTOCOL.md 16.1): the session resumes. An outbound
 * socket (which a takeover without resumption ends) goes on as the same
 * object: its pending setTimeout fires on the new netcore, a write made
 * while the link is down reaches the peer exactly once, its callback runs
 * once, input arrives, and no 'error' or 'close' comes. */
typedef struct {
  int connected, timeouts, errors, closes, write_cbs;
  char got[64];
  size_t got_len;
} tk_t;

static void tk_connect(nc_socket_t *s) { ((tk_t *)nc_socket_get_data(s))->connected++; }
static void tk_timeout(nc_socket_t *s) { ((tk_t *)nc_socket_get_data(s))->timeouts++; }
static void tk_error(nc_socket_t *s, int err, const char *msg) {
  (void)err;
  printf("outbound socket error: %s\n", msg);
  ((tk_t *)nc_socket_get_data(s))->errors++;
}
static void tk_close(nc_socket_t *s, int had_error) {
  (void)had_error;
  ((tk_t *)nc_socket_get_data(s))->closes++;
}
static void tk_data(nc_socket_t *s, const char *data, size_t len) {
  tk_t *t = nc_socket_get_data(s);
  if (t->got_len + len <= sizeof(t->got)) memcpy(t->got + t->got_len, data, len);
  t->got_len += len;
}
static void tk_written(nc_socket_t *s, int status, void *arg) {
  (void)s;
  assert_int_equal(status, 0);
  ((tk_t *)arg)->write_cbs++;
}

/* Processes the loop until *v >= want (15 s at most). */
#define tk_until(loop, v, want) tk_until_at((loop), (v), (want), #v)
static void tk_until_at(nc_loop_t *loop, const int *v, int want, const char *what) {
  uint64_t deadline = nct_now_ms() + 15000;
  while (*v < want) {
    if (nct_now_ms() > deadline) fail_msg("timed out waiting for %s (have %d, want %d)", what, *v, want);
    nc_loop_process(loop);
    int t = nc_loop_timeout(loop);
    struct pollfd p = {.fd = nc_loop_fd(loop), .events = POLLIN};
    poll(&p, 1, t < 0 || t > 20 ? 20 : t);
  }
}

static void test_client_liveness_takeover_resumes(void **state) {
  (void)state;
  nct_netcore_t d;
  tk_t t = {0};
  nct_netcore_start(&d, (const char *const[]){"--handoff-ms", "5000", NULL});
  nc_loop_t *loop = nct_loop(&d);
  int port = 0, lfd = nct_tcp_listen(&port);
  nc_socket_t *s;
  assert_int_equal(nc_create_connection(loop, NULL, port, "127.0.0.1", tk_connect, &s), 0);
  nc_socket_set_data(s, &t);
  nc_socket_events_t ev = {.on_data = tk_data, .on_timeout = tk_timeout, .on_error = tk_error,
                           .on_close = tk_close};
  nc_socket_set_events(s, &ev);
  tk_until(loop, &t.connected, 1);
  int peer = nct_accept(lfd);
  /* Sent just before the takeover: the old netcore may never read them
   * (the resume Hello carries the timeout, protocol 1.4; writes are resent). */
  assert_int_equal(nc_socket_set_timeout(s, 1500, NULL), 0);
  assert_int_equal(nc_socket_write(s, "one|", 4, tk_written, &t) >= 0, 1);
  nc_loop_process(loop);

  /* The takeover, while this loop does nothing. */
  pid_t old = d.pid;
  d.pid = 0;
  nct_netcore_restart(&d, (const char *const[]){"--takeover", "--handoff-ms", "5000", NULL});
  int status = 0;
  waitpid(old, &status, 0);
  nct_forget(old);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  /* The link is down (or about to be found so): this write waits for the
   * resumed session. */
  assert_int_equal(nc_socket_write(s, "two|", 4, tk_written, &t) >= 0, 1);
  tk_until(loop, &t.write_cbs, 2);
  nct_write_all(peer, "in", 2);
  int got = 0;
  uint64_t deadline = nct_now_ms() + 15000;
  while (t.got_len < 2 && nct_now_ms() < deadline) {
    nc_loop_process(loop);
    usleep(2000);
  }
  got = (int)t.got_len;
  assert_int_equal(got, 2);
  assert_memory_equal(t.got, "in", 2);
  tk_until(loop, &t.timeouts, 1); /* the setTimeout set before the takeover */
  nc_socket_end(s, NULL, 0);
  char buf[16];
  size_t n = nct_read_all(peer, buf, sizeof(buf), 10000);
  assert_int_equal(n, 8);
  assert_memory_equal(buf, "one|two|", 8); /* each write once, in order */
  assert_int_equal(t.errors, 0);
  assert_int_equal(t.closes, 0);
  assert_int_equal(t.connected, 1);
  close(peer);
  close(lfd);
  nc_loop_free(loop);
  nct_netcore_stop(&d);
}

/* Commands in flight at a takeover (PROTOCOL.md 16.1, protocol 1.4): sent
 * on a link that looked up, never read by the old netcore. To make that
 * certain, the old netcore's ZeroMQ I/O thread is stopped (ptrace, that
 * thread only) while the handler sends them: they wait in the kernel, the
 * takeover runs (the old netcore's loop thread ships the session and says
 * Done), and when the thread goes on its connections close unread. Then
 * the setTimeout must fire, the keep-alive be on in the kernel, the server
 * listen and the socket connect, each once. */
static pid_t io_thread_of(pid_t pid) {
  char dir[64], path[384], comm[64];
  snprintf(dir, sizeof(dir), "/proc/%d/task", (int)pid);
  DIR *d = opendir(dir);
  assert_non_null(d);
  pid_t tid = 0;
  struct dirent *e;
  while (tid == 0 && (e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    snprintf(path, sizeof(path), "%s/%s/comm", dir, e->d_name);
    FILE *f = fopen(path, "r");
    if (f == NULL) continue;
    if (fgets(comm, sizeof(comm), f) != NULL && strncmp(comm, "ZMQbg/IO/", 9) == 0)
      tid = (pid_t)atoi(e->d_name);
    fclose(f);
  }
  closedir(d);
  if (tid == 0) fail_msg("no ZeroMQ I/O thread in netcore %d", (int)pid);
  return tid;
}

static void thread_stop(pid_t tid) {
  if (ptrace(PTRACE_SEIZE, tid, NULL, NULL) != 0 || ptrace(PTRACE_INTERRUPT, tid, NULL, NULL) != 0)
    fail_msg("ptrace %d: %s", (int)tid, strerror(errno));
  int st = 0;
  if (waitpid(tid, &st, __WALL) != tid || !WIFSTOPPED(st)) fail_msg("thread %d did not stop", (int)tid);
}

static void thread_go(pid_t tid) {
  if (ptrace(PTRACE_DETACH, tid, NULL, NULL) != 0) fail_msg("ptrace detach: %s", strerror(errno));
}

/* Whether the kernel's TCP socket with this local port has a keep-alive
 * timer (/proc/net/tcp "tr" 2): SO_KEEPALIVE is on and the socket is idle. */
static int keepalive_on(int local_port) {
  FILE *f = fopen("/proc/net/tcp", "r");
  assert_non_null(f);
  char line[512];
  int found = 0;
  while (!found && fgets(line, sizeof(line), f) != NULL) {
    unsigned lport, tr, st;
    if (sscanf(line, " %*d: %*x:%x %*x:%*x %x %*x:%*x %x:", &lport, &st, &tr) == 3 &&
        (int)lport == local_port && st == 1)
      found = tr == 2 ? 1 : -1;
  }
  fclose(f);
  return found == 1;
}

typedef struct {
  nct_netcore_t *d;
  volatile int done;
} tk_restart_t;

static void *tk_restart(void *arg) {
  tk_restart_t *r = arg;
  nct_netcore_restart(r->d, (const char *const[]){"--takeover", "--handoff-ms", "5000", NULL});
  r->done = 1;
  return NULL;
}

static int tk_listening;
static void tk_listen_cb(nc_server_t *srv) {
  (void)srv;
  tk_listening++;
}

/* netcore --takeover on d's endpoint while this loop does nothing; io, if
 * not 0, is the old netcore's stopped ZeroMQ I/O thread, which goes on once
 * the old netcore has shipped everything (its connections then close with
 * what they held unread). */
static void frozen_takeover(nct_netcore_t *d, pid_t io) {
  char tk_path[300];
  snprintf(tk_path, sizeof(tk_path), "%s.takeover", d->endpoint + strlen("ipc://"));
  assert_int_equal(access(tk_path, F_OK), 0);
  pid_t old = d->pid;
  d->pid = 0;
  tk_restart_t r = {.d = d};
  pthread_t th = nct_thread(tk_restart, &r);
  uint64_t deadline = nct_now_ms() + 15000;
  while (io != 0 && access(tk_path, F_OK) == 0 && nct_now_ms() < deadline) usleep(1000);
  if (io != 0) thread_go(io);
  pthread_join(th, NULL);
  assert_true(r.done);
  int status = 0;
  waitpid(old, &status, 0);
  nct_forget(old);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_client_liveness_takeover_commands_in_flight(void **state) {
  (void)state;
  nct_netcore_t d;
  tk_t t = {0}, t2 = {0};
  nct_netcore_start(&d, (const char *const[]){"--handoff-ms", "5000", NULL});
  nc_loop_t *loop = nct_loop(&d);
  int port = 0, lfd = nct_tcp_listen(&port);
  nc_socket_t *s, *s2 = NULL;
  nc_socket_events_t ev = {.on_data = tk_data, .on_timeout = tk_timeout, .on_error = tk_error,
                           .on_close = tk_close};
  assert_int_equal(nc_create_connection(loop, NULL, port, "127.0.0.1", tk_connect, &s), 0);
  nc_socket_set_data(s, &t);
  nc_socket_set_events(s, &ev);
  tk_until(loop, &t.connected, 1);
  int peer = nct_accept(lfd);
  struct sockaddr_in sa;
  socklen_t slen = sizeof(sa);
  assert_int_equal(getpeername(peer, (struct sockaddr *)&sa, &slen), 0);
  int s_port = ntohs(sa.sin_port); /* netcore's end of s */
  assert_false(keepalive_on(s_port));
  nc_server_t *srv;
  assert_int_equal(nc_server_new(loop, NULL, NULL, &srv), 0);
  tk_listening = 0;

  /* The old netcore reads nothing from now on; the link looks up. */
  pid_t io = io_thread_of(d.pid);
  thread_stop(io);
  assert_int_equal(nc_socket_set_timeout(s, 1500, NULL), 0);
  assert_int_equal(nc_socket_set_no_delay(s, 1), 0);
  assert_int_equal(nc_socket_set_keep_alive(s, 1, 1000), 0);
  assert_int_equal(nc_server_listen(srv, 0, "127.0.0.1", tk_listen_cb), 0);
  assert_int_equal(nc_create_connection(loop, NULL, port, "127.0.0.1", tk_connect, &s2), 0);
  nc_socket_set_data(s2, &t2);
  nc_socket_set_events(s2, &ev);
  assert_int_equal(nc_socket_write(s2, "two|", 4, NULL, NULL) >= 0, 1);
  for (int i = 0; i < 10; i++) { /* out of libnc, into the kernel */
    nc_loop_process(loop);
    usleep(10000);
  }

  /* The takeover: the old netcore's loop ships the session, stops its
   * takeover listener (<endpoint>.takeover goes) and waits for ZeroMQ to
   * close; only then does its I/O thread go on, and its connections close
   * with what they held unread. The new netcore then serves. */
  frozen_takeover(&d, io);

  /* Each command took effect on the new netcore. */
  tk_until(loop, &tk_listening, 1);
  nc_address_t a;
  assert_int_equal(nc_server_address(srv, &a), 0);
  assert_true(a.port > 0);
  tk_until(loop, &t2.connected, 1);
  int peer2 = nct_accept(lfd);
  tk_until(loop, &t.timeouts, 1);
  assert_true(keepalive_on(s_port));
  nc_socket_end(s2, NULL, 0);
  char buf[16];
  assert_int_equal(nct_read_all(peer2, buf, sizeof(buf), 10000), 4);
  assert_memory_equal(buf, "two|", 4);
  int c = nct_tcp_connect(a.port); /* the server serves */
  close(c);
  assert_int_equal(t.errors + t2.errors, 0);
  assert_int_equal(t.closes, 0);
  assert_int_equal(t.connected, 1);
  assert_int_equal(t2.connected, 1);
  assert_int_equal(tk_listening, 1);
  close(peer);
  close(peer2);
  close(lfd);
  nc_loop_free(loop);
  nct_netcore_stop(&d);
}

/* A server.close() that crosses a takeover (PROTOCOL.md 16.1): after the
 * resumed Welcome libnc sends ServerClose again for every server whose
 * ServerClosed has not come. */
typedef struct {
  int close_cbs, close_events, errors, connections;
  int conn_closes_at_close; /* the watched connection's 'close' count at the server's 'close' */
} sc_t;

static tk_t *sc_watch; /* a connection's tk_t whose 'close' count sc_on_close notes */
static void sc_close_cb(nc_server_t *srv) { ((sc_t *)nc_server_get_data(srv))->close_cbs++; }
static void sc_on_close(nc_server_t *srv) {
  sc_t *t = nc_server_get_data(srv);
  t->close_events++;
  t->conn_closes_at_close = sc_watch != NULL ? sc_watch->closes : -1;
}
static void sc_on_error(nc_server_t *srv, int err, const char *msg) {
  (void)err;
  printf("server error: %s\n", msg);
  ((sc_t *)nc_server_get_data(srv))->errors++;
}
static nc_socket_t *sc_conn;
static void sc_on_connection(nc_server_t *srv, nc_socket_t *c) {
  ((sc_t *)nc_server_get_data(srv))->connections++;
  sc_conn = c;
}
static void sc_listening(nc_server_t *srv) {
  (void)srv;
  tk_listening++;
}

/* A listening server on 127.0.0.1 (a port netcore chose); returns it, its
 * port in *port. */
static nc_server_t *sc_listen(nc_loop_t *loop, sc_t *t, int *port) {
  nc_server_t *srv;
  assert_int_equal(nc_server_new(loop, NULL, NULL, &srv), 0);
  nc_server_set_data(srv, t);
  nc_server_events_t ev = {.on_connection = sc_on_connection, .on_close = sc_on_close,
                           .on_error = sc_on_error, .on_listening = sc_listening};
  nc_server_set_events(srv, &ev);
  tk_listening = 0;
  assert_int_equal(nc_server_listen(srv, 0, "127.0.0.1", NULL), 0);
  tk_until(loop, &tk_listening, 1);
  nc_address_t a;
  assert_int_equal(nc_server_address(srv, &a), 0);
  *port = a.port;
  return srv;
}


/* 1 if a TCP connect to 127.0.0.1:port is refused (nothing listens). */
static int sc_refused(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_true(fd >= 0);
  int rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
  int err = errno;
  close(fd);
  return rc != 0 && err == ECONNREFUSED;
}

/* Processes the loop for ms milliseconds. */
static void sc_spin(nc_loop_t *loop, int ms) {
  uint64_t end = nct_now_ms() + (uint64_t)ms;
  while (nct_now_ms() < end) {
    nc_loop_process(loop);
    struct pollfd p = {.fd = nc_loop_fd(loop), .events = POLLIN};
    poll(&p, 1, 10);
  }
}

/* Whether fd's connection ends (EOF or reset) within 10 s, the loop turning. */
static int sc_peer_ends(nc_loop_t *loop, int fd) {
  uint64_t deadline = nct_now_ms() + 10000;
  while (nct_now_ms() < deadline) {
    nc_loop_process(loop);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 10) == 1) {
      char b[16];
      ssize_t n = recv(fd, b, sizeof(b), 0);
      if (n <= 0) return 1;
    }
  }
  return 0;
}

/* Case A: the old netcore never reads the ServerClose (its I/O thread is
 * stopped), so the new one holds the server listening: libnc's ServerClose
 * sent again closes it there. The close callback and 'close' come once, the
 * port is free, and a connection made to the closed server meanwhile (the
 * old netcore accepted it, or the new one did from the backlog, and the
 * resumed session announces it) is destroyed, never given to the user. */
static void test_client_liveness_takeover_server_close_in_flight(void **state) {
  (void)state;
  nct_netcore_t d;
  sc_t t = {0};
  nct_netcore_start(&d, (const char *const[]){"--handoff-ms", "5000", NULL});
  nc_loop_t *loop = nct_loop(&d);
  int port = 0;
  nc_server_t *srv = sc_listen(loop, &t, &port);

  pid_t io = io_thread_of(d.pid);
  thread_stop(io);
  assert_int_equal(nc_server_close(srv, sc_close_cb), 0);
  for (int i = 0; i < 10; i++) { /* out of libnc, into the kernel */
    nc_loop_process(loop);
    usleep(10000);
  }
  int late = nct_tcp_connect(port); /* the old netcore still listens */
  frozen_takeover(&d, io);

  tk_until(loop, &t.close_cbs, 1);
  assert_int_equal(t.close_events, 1);
  assert_true(sc_peer_ends(loop, late));
  close(late);
  sc_spin(loop, 300); /* nothing more comes */
  assert_int_equal(t.close_cbs, 1);
  assert_int_equal(t.close_events, 1);
  assert_int_equal(t.errors, 0);
  assert_int_equal(t.connections, 0);
  assert_true(sc_refused(port));
  nc_loop_free(loop);
  nct_netcore_stop(&d);
}

static int sc_stats_done;
static void sc_stats(nc_loop_t *loop, int status, const nc_stats_t *stats, void *arg) {
  (void)loop;
  (void)stats;
  (void)arg;
  assert_int_equal(status, 0);
  sc_stats_done++;
}

/* Case B: the old netcore read the ServerClose (a Stats asked after it was
 * answered, and netcore runs commands in order), but a connection is open,
 * so its ServerClosed was still to come when the takeover shipped the
 * session: the connection goes on, the closing server goes nowhere. libnc's
 * ServerClose sent again meets EBADF (the new netcore does not know the id).
 * As in Node, the close completes only when the server's last connection
 * has closed: not while it is open and working after the resume, and then
 * once, after that connection's 'close', without an error. */
static void test_client_liveness_takeover_server_closed_lost(void **state) {
  (void)state;
  nct_netcore_t d;
  sc_t t = {0};
  tk_t c = {0};
  nct_netcore_start(&d, (const char *const[]){"--handoff-ms", "5000", NULL});
  nc_loop_t *loop = nct_loop(&d);
  int port = 0;
  nc_server_t *srv = sc_listen(loop, &t, &port);
  sc_conn = NULL;
  int peer = nct_tcp_connect(port);
  tk_until(loop, &t.connections, 1);
  nc_socket_set_data(sc_conn, &c);
  nc_socket_events_t ev = {.on_data = tk_data, .on_error = tk_error, .on_close = tk_close};
  nc_socket_set_events(sc_conn, &ev);
  sc_watch = &c;

  assert_int_equal(nc_server_close(srv, sc_close_cb), 0);
  sc_stats_done = 0;
  assert_int_equal(nc_loop_stats(loop, sc_stats, NULL), 0);
  tk_until(loop, &sc_stats_done, 1);
  assert_true(sc_refused(port)); /* netcore closed the listener... */
  sc_spin(loop, 100);
  assert_int_equal(t.close_cbs, 0); /* ...and waits for the connection */
  frozen_takeover(&d, 0);

  /* The session resumed: the connection works on the new netcore. */
  nct_write_all(peer, "hi", 2);
  uint64_t deadline = nct_now_ms() + 15000;
  while (c.got_len < 2 && nct_now_ms() < deadline) sc_spin(loop, 10);
  assert_int_equal((int)c.got_len, 2);
  assert_memory_equal(c.got, "hi", 2);
  sc_spin(loop, 300); /* the ServerClose went again and met EBADF */
  assert_int_equal(t.close_cbs, 0); /* its connection is open: no 'close' yet */
  assert_int_equal(t.close_events, 0);
  assert_int_equal(c.errors + c.closes, 0);
  assert_true(sc_refused(port));

  close(peer); /* the peer ends it: 'end', our end (no half-open), 'close' */
  tk_until(loop, &c.closes, 1);
  tk_until(loop, &t.close_cbs, 1);
  assert_int_equal(t.close_events, 1);
  assert_int_equal(t.conn_closes_at_close, 1); /* after the connection's 'close' */
  sc_spin(loop, 300);
  assert_int_equal(t.close_cbs, 1);
  assert_int_equal(t.close_events, 1);
  assert_int_equal(t.errors, 0);
  assert_int_equal(c.errors, 0);
  assert_int_equal(c.closes, 1);
  sc_watch = NULL;
  nc_loop_free(loop);
  nct_netcore_stop(&d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_client_liveness_not_running),
      cmocka_unit_test(test_client_liveness_netcore_killed),
      cmocka_unit_test(test_client_liveness_lease_expires),
      cmocka_unit_test(test_client_liveness_netcore_shutdown),
      cmocka_unit_test(test_client_liveness_reconnect_after_kill),
      cmocka_unit_test(test_client_liveness_reconnect_after_shutdown),
      cmocka_unit_test(test_client_liveness_relisten_fails),
      cmocka_unit_test(test_client_liveness_takeover_resumes),
      cmocka_unit_test(test_client_liveness_takeover_commands_in_flight),
      cmocka_unit_test(test_client_liveness_takeover_server_close_in_flight),
      cmocka_unit_test(test_client_liveness_takeover_server_closed_lost),
  };
  return cmocka_run_group_tests_name("client_liveness", tests, NULL, NULL);
}
