/* test_auth.c: who may be a handler (auth.h). The routing-id takeover, prompt
 * death detection (kill -9, close without Bye, a stopped process on tcp),
 * CURVE with unknown and allowed keys, peer credentials of another uid on
 * ipc, the refused non-loopback bind, keygen's file, the session token, and
 * EBADF for another handler's ids. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "harness.h"

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static double now_ms_f(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ------------------------------------------------------------ files */

/* A scratch directory for keys and logs, removed by rm_dir. */
static void make_dir(char *dir, size_t cap) {
  snprintf(dir, cap, "/tmp/nct-auth-XXXXXX");
  if (!mkdtemp(dir)) nct_fail("mkdtemp: %s", strerror(errno));
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  remove(path);
  return 0;
}

static void rm_dir(const char *dir) { nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

static size_t read_file(const char *path, char *buf, size_t cap) {
  int fd = open(path, O_RDONLY);
  size_t n = 0;
  if (fd >= 0) {
    ssize_t r;
    while (n + 1 < cap && (r = read(fd, buf + n, cap - 1 - n)) > 0) n += (size_t)r;
    close(fd);
  }
  buf[n] = '\0';
  return n;
}

/* Waits until the file at path contains needle; fails after NCT_WAIT. */
static void wait_log(const char *path, const char *needle) {
  static char buf[1 << 16];
  uint64_t deadline = nct_now_ms() + NCT_WAIT;
  while (read_file(path, buf, sizeof buf), !strstr(buf, needle)) {
    if (nct_now_ms() > deadline) nct_fail("log %s never said '%s'; it holds:\n%s", path, needle, buf);
    sleep_ms(20);
  }
}

/* Runs netcore with args (NULL-terminated) and waits for it; its stdout and
 * stderr go to out. Returns the exit status (or 128 + signal). */
static int run_netcore(const char *const *args, char *out, size_t cap) {
  char path[] = "/tmp/nct-auth-out-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) nct_fail("mkstemp: %s", strerror(errno));
  pid_t pid = fork();
  if (pid == 0) {
    char *argv[32];
    int n = 0;
    argv[n++] = (char *)nct_netcore_path();
    for (int i = 0; args[i] && n < 31; i++) argv[n++] = (char *)args[i];
    argv[n] = NULL;
    dup2(fd, 1);
    dup2(fd, 2);
    execv(argv[0], argv);
    _exit(127);
  }
  close(fd);
  int status = 0;
  uint64_t deadline = nct_now_ms() + NCT_WAIT;
  while (waitpid(pid, &status, WNOHANG) != pid) {
    if (nct_now_ms() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      unlink(path);
      nct_fail("netcore %s ... did not exit", args[0]);
    }
    sleep_ms(10);
  }
  read_file(path, out, cap);
  unlink(path);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

typedef struct keypair {
  char path[128];
  char pub[41], sec[41];
} keypair;

/* `netcore keygen` into dir/name, and the keys read back from its file. */
static void keygen(const char *dir, const char *name, keypair *k) {
  char out[512];
  snprintf(k->path, sizeof k->path, "%s/%s", dir, name);
  const char *args[] = {"keygen", k->path, NULL};
  int rc = run_netcore(args, out, sizeof out);
  if (rc != 0) nct_fail("netcore keygen %s: exit %d: %s", k->path, rc, out);
  char text[512];
  read_file(k->path, text, sizeof text);
  const char *p = strstr(text, "public-key = \""), *s = strstr(text, "secret-key = \"");
  if (!p || !s) nct_fail("keygen wrote:\n%s", text);
  snprintf(k->pub, sizeof k->pub, "%.40s", p + 14);
  snprintf(k->sec, sizeof k->sec, "%.40s", s + 14);
  if (strncmp(out, k->pub, 40) != 0 || out[40] != '\n' || out[41] != '\0')
    nct_fail("keygen printed '%s', not its public key %s", out, k->pub);
}

/* Opens a log file for netcore's stderr: {fd, 2, -1} for nct_env_start_fds. */
static int open_log(const char *dir, char *path, size_t cap) {
  snprintf(path, cap, "%s/netcore.log", dir);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
  if (fd < 0) nct_fail("open %s: %s", path, strerror(errno));
  return fd;
}

/* The tcp endpoint netcore logged for its `tcp://127.0.0.1:*` bind. */
static void logged_tcp_endpoint(const char *log, char *ep, size_t cap) {
  static char buf[1 << 16];
  wait_log(log, "handlers connect to tcp://");
  read_file(log, buf, sizeof buf);
  const char *p = strstr(buf, "handlers connect to tcp://") + strlen("handlers connect to ");
  size_t n = strcspn(p, " \n");
  snprintf(ep, cap, "%.*s", (int)n, p);
}

/* Sends Hello and returns 1 if a Welcome came within ms, 0 if nothing did. */
static int hello_answered(nct_client *c, int ms) {
  Netcore__V1__Hello hello = NETCORE__V1__HELLO__INIT;
  hello.version = 1;
  hello.name = c->name;
  nct_cmd cmd = NETCORE__V1__COMMAND__INIT;
  cmd.command_case = NETCORE__V1__COMMAND__COMMAND_HELLO;
  cmd.hello = &hello;
  nct_send(c, &cmd, NULL, 0, 0);
  nct_event *ev = nct_take(c, EV(WELCOME), 0, ms);
  if (!ev) {
    if (c->inbox_len) nct_fail("a refused handler got an event");
    return 0;
  }
  nct_event_free(ev);
  return 1;
}

/* ------------------------------------------------------------ keygen */

static void test_auth_keygen_format(void **state) {
  (void)state;
  char dir[64], text[512], out[512];
  make_dir(dir, sizeof dir);
  keypair k;
  keygen(dir, "k.key", &k);
  read_file(k.path, text, sizeof text);
  char want[512];
  snprintf(want, sizeof want,
           "# netcore CURVE key pair (Z85). Keep this file secret.\n"
           "public-key = \"%s\"\nsecret-key = \"%s\"\n",
           k.pub, k.sec);
  assert_string_equal(text, want);
  struct stat st;
  assert_int_equal(stat(k.path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  char derived[41];
  assert_int_equal(zmq_curve_public(derived, k.sec), 0);
  assert_string_equal(derived, k.pub);
  /* Never overwrites. */
  const char *again[] = {"keygen", k.path, NULL};
  assert_int_equal(run_netcore(again, out, sizeof out), 1);
  assert_non_null(strstr(out, "never overwrites"));
  read_file(k.path, text, sizeof text);
  assert_string_equal(text, want);
  /* A second key pair is another one. */
  keypair k2;
  keygen(dir, "k2.key", &k2);
  assert_string_not_equal(k.pub, k2.pub);
  const char *bare[] = {"keygen", NULL};
  assert_int_equal(run_netcore(bare, out, sizeof out), 2);
  assert_non_null(strstr(out, "usage: netcore keygen FILE"));
  rm_dir(dir);
}

/* Broken key and allow files stop netcore at start with a message. */
static void test_auth_bad_key_files(void **state) {
  (void)state;
  char dir[64], out[1024], allow[128], bad[128];
  make_dir(dir, sizeof dir);
  keypair srv, h;
  keygen(dir, "srv.key", &srv);
  keygen(dir, "h.key", &h);
  snprintf(allow, sizeof allow, "%s/allow", dir);
  FILE *f = fopen(allow, "w");
  fprintf(f, "# name key\nalice %s\nbob not-a-key\n", h.pub);
  fclose(f);
  const char *a1[] = {"--bind", "tcp://127.0.0.1:*", "--curve-secret-file", srv.path,
                      "--curve-allow", allow, NULL};
  assert_int_equal(run_netcore(a1, out, sizeof out), 2);
  assert_non_null(strstr(out, "allow:3: not a 40-character Z85 CURVE public key"));
  /* A key pair whose public key is not its secret key's. */
  snprintf(bad, sizeof bad, "%s/bad.key", dir);
  f = fopen(bad, "w");
  fprintf(f, "public-key = \"%s\"\nsecret-key = \"%s\"\n", h.pub, srv.sec);
  fclose(f);
  f = fopen(allow, "w");
  fprintf(f, "alice %s\n", h.pub);
  fclose(f);
  const char *a2[] = {"--bind", "tcp://127.0.0.1:*", "--curve-secret-file", bad,
                      "--curve-allow", allow, NULL};
  assert_int_equal(run_netcore(a2, out, sizeof out), 2);
  assert_non_null(strstr(out, "does not belong to its secret-key"));
  const char *a3[] = {"--bind", "tcp://127.0.0.1:*", "--curve-secret-file", srv.path, NULL};
  assert_int_equal(run_netcore(a3, out, sizeof out), 2);
  assert_non_null(strstr(out, "needs both"));
  rm_dir(dir);
}

/* ------------------------------------------------------------ binds */

static void test_auth_nonloopback_tcp_refused(void **state) {
  nct_env *e = *state;
  char out[2048];
  const char *wild[] = {"--bind", "tcp://0.0.0.0:*", NULL};
  assert_int_equal(run_netcore(wild, out, sizeof out), 2);
  assert_non_null(strstr(out, "refusing to bind tcp://0.0.0.0:* without CURVE"));
  assert_non_null(strstr(out, "--insecure-tcp"));
  const char *star[] = {"--bind", "ipc:///tmp/nct-auth-never.sock", "--bind", "tcp://*:0", NULL};
  assert_int_equal(run_netcore(star, out, sizeof out), 2);
  const char *ws[] = {"--bind", "ws://127.0.0.1:0", NULL};
  assert_int_equal(run_netcore(ws, out, sizeof out), 2);
  assert_non_null(strstr(out, "only ipc:// and tcp://"));

  /* --insecure-tcp lets it start; a handler over tcp is "tcp:ADDR". */
  char dir[64], log[128], ep[128];
  make_dir(dir, sizeof dir);
  int lfd = open_log(dir, log, sizeof log);
  const char *flags[] = {"--bind", "tcp://0.0.0.0:*", "--insecure-tcp", "--log-level", "info", NULL};
  int fds[] = {lfd, 2, -1};
  nct_env_start_fds(e, flags, fds);
  close(lfd);
  wait_log(log, "has no authentication (--insecure-tcp)");
  logged_tcp_endpoint(log, ep, sizeof ep);
  const char *port = strrchr(ep, ':') + 1;
  char local[64];
  snprintf(local, sizeof local, "tcp://127.0.0.1:%s", port);
  nct_client *c = nct_client_new(local, "overtcp", 0);
  nct_env_adopt(e, c);
  nct_hello(c, 0, 60000);
  wait_log(log, "handler_joined handler=overtcp prefix=");
  wait_log(log, "principal=tcp:127.0.0.1");
  nct_env_finish(e);
  rm_dir(dir);
}

static void test_auth_loopback_tcp_warns(void **state) {
  nct_env *e = *state;
  char dir[64], log[128];
  make_dir(dir, sizeof dir);
  int lfd = open_log(dir, log, sizeof log);
  const char *flags[] = {"--bind", "tcp://127.0.0.1:*", NULL};
  int fds[] = {lfd, 2, -1};
  nct_env_start_fds(e, flags, fds);
  close(lfd);
  wait_log(log, "tcp://127.0.0.1:* has no CURVE: any local user can become a handler");
  nct_env_finish(e);
  rm_dir(dir);
}

/* ------------------------------------------------------------ CURVE */

static void test_auth_curve_keys(void **state) {
  nct_env *e = *state;
  char dir[64], log[128], allow[128], ep[128], policy[128];
  make_dir(dir, sizeof dir);
  keypair srv, alice, mallory;
  keygen(dir, "srv.key", &srv);
  keygen(dir, "alice.key", &alice);
  keygen(dir, "mallory.key", &mallory);
  snprintf(allow, sizeof allow, "%s/allow", dir);
  FILE *f = fopen(allow, "w");
  fprintf(f, "# handlers allowed in\n\nalice %s\n", alice.pub);
  fclose(f);
  /* Without a policy a CURVE handler may do nothing (test_policy.c); the
   * harness's observer (our uid) listens on loopback too. */
  snprintf(policy, sizeof policy, "%s/policy", dir);
  f = fopen(policy, "w");
  fprintf(f, "handler key:alice uid:%u\n  listen tcp 127.0.0.1 *\n", (unsigned)geteuid());
  fclose(f);
  int lfd = open_log(dir, log, sizeof log);
  const char *flags[] = {"--bind", "tcp://127.0.0.1:*", "--curve-secret-file", srv.path,
                         "--curve-allow", allow, "--policy", policy, "--log-level", "info", NULL};
  int fds[] = {lfd, 2, -1};
  nct_env_start_fds(e, flags, fds);
  close(lfd);
  logged_tcp_endpoint(log, ep, sizeof ep);

  /* An unknown key: no Welcome, and a log line naming the key. */
  nct_client_opts mo = {.server_key = srv.pub, .public_key = mallory.pub, .secret_key = mallory.sec};
  nct_client *m = nct_client_new_opts(ep, "mallory", &mo);
  nct_env_adopt(e, m);
  assert_false(hello_answered(m, NCT_QUIET));
  char want[160];
  snprintf(want, sizeof want, "refused a handler connection: CURVE key %s from 127.0.0.1", mallory.pub);
  wait_log(log, want);
  nct_env_release(e, m, 0);

  /* Without CURVE at all: the handshake fails, nothing arrives. */
  nct_client *plain = nct_client_new(ep, "plain", 0);
  nct_env_adopt(e, plain);
  assert_false(hello_answered(plain, NCT_QUIET));
  nct_env_release(e, plain, 0);

  /* The allowed key works: listen, accept, echo. */
  nct_client_opts ao = {.server_key = srv.pub, .public_key = alice.pub, .secret_key = alice.sec};
  nct_client *a = nct_client_new_opts(ep, "alice", &ao);
  nct_env_adopt(e, a);
  nct_hello(a, 0, 60000);
  wait_log(log, "handler_joined handler=alice prefix=");
  wait_log(log, "principal=key:alice");
  uint16_t port;
  uint64_t srvid = nct_listen_local(a, &port, 0);
  int peer;
  uint64_t sid = nct_accept_peer(a, srvid, port, &peer);
  nct_peer_write(peer, "over curve", 10);
  nct_expect_data(a, sid, "over curve", 10);
  nct_cmd_write(a, sid, "back", 4);
  nct_peer_expect(peer, "back", 4);
  nct_close_both(a, sid, peer);
  nct_cmd_server_close(a, srvid);
  nct_expect_drop(a, SERVER_CLOSED, srvid);
  nct_env_finish(e);
  rm_dir(dir);
}

/* ------------------------------------------------------------ peer credentials */

/* Child: becomes nobody, connects to endpoint, says Hello; exits 0 if a
 * Welcome came within 1.5 s, 1 if nothing did, 3+ on setup errors. */
static void nobody_child(const char *endpoint) {
  struct passwd *pw = getpwnam("nobody");
  if (!pw) _exit(3);
  if (setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) _exit(4);
  void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_DEALER);
  int linger = 0;
  zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
  if (zmq_connect(s, endpoint) != 0) _exit(5);
  Netcore__V1__Hello hello = NETCORE__V1__HELLO__INIT;
  hello.version = 1;
  hello.name = "nobody";
  nct_cmd cmd = NETCORE__V1__COMMAND__INIT;
  cmd.command_case = NETCORE__V1__COMMAND__COMMAND_HELLO;
  cmd.hello = &hello;
  uint8_t buf[512];
  zmq_send(s, buf, netcore__v1__command__pack(&cmd, buf), ZMQ_DONTWAIT);
  zmq_pollitem_t it = {s, 0, ZMQ_POLLIN, 0};
  int got = zmq_poll(&it, 1, 1500) > 0 && zmq_recv(s, buf, sizeof buf, 0) > 0;
  _exit(got ? 0 : 1);
}

static int run_as_nobody(const char *endpoint) {
  pid_t pid = fork();
  if (pid == 0) nobody_child(endpoint);
  int status;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* The daemon's directory and socket open to everyone, so only netcore's own
 * check stands between nobody and the handler socket. */
static void open_endpoint(nct_daemon *d) {
  char sock[128];
  nct_daemon_path(d, "nc.sock", sock, sizeof sock);
  if (chmod(d->dir, 0755) != 0 || chmod(sock, 0777) != 0) nct_fail("chmod: %s", strerror(errno));
}

static void test_auth_other_uid_refused(void **state) {
  nct_env *e = *state;
  if (geteuid() != 0 || !getpwnam("nobody")) skip();
  char dir[64], log[128];
  make_dir(dir, sizeof dir);
  int lfd = open_log(dir, log, sizeof log);
  int fds[] = {lfd, 2, -1};
  nct_env_start_fds(e, NULL, fds);
  close(lfd);
  open_endpoint(&e->d);
  assert_int_equal(run_as_nobody(e->d.endpoint), 1);
  struct passwd *pw = getpwnam("nobody");
  char want[128];
  snprintf(want, sizeof want, "ipc peer uid %u gid %u", (unsigned)pw->pw_uid, (unsigned)pw->pw_gid);
  wait_log(log, want);
  wait_log(log, "is not allowed: netcore runs as uid 0");
  nct_env_finish(e);
  rm_dir(dir);
}

/* The same child gets in once its uid is allowed: the refusal above was
 * netcore's, not the file system's. */
static void test_auth_allow_uid(void **state) {
  nct_env *e = *state;
  if (geteuid() != 0 || !getpwnam("nobody")) skip();
  char uid[16];
  snprintf(uid, sizeof uid, "%u", (unsigned)getpwnam("nobody")->pw_uid);
  const char *flags[] = {"--allow-uid", uid, NULL};
  nct_env_start(e, flags);
  open_endpoint(&e->d);
  assert_int_equal(run_as_nobody(e->d.endpoint), 0);
  nct_env_finish(e);
}

/* ------------------------------------------------------------ takeover */

/* A victim handler with a fixed routing id owns a server and a connection,
 * then drops without Bye (lease 60 s: netcore must see it some other way).
 * After `delay` ms an attacker connects with the same routing id and tries
 * the victim's ids before and after its own Hello. Returns 1 if anything of
 * the victim's reached the attacker or anything of the attacker's reached
 * the victim's peer. */
static int takeover_trial(nct_env *e, int delay, int trial) {
  char rid[32];
  snprintf(rid, sizeof rid, "victim-%d", trial);
  nct_client_opts o = {.routing_id = rid};
  nct_client *v = nct_client_new_opts(e->d.endpoint, "victim", &o);
  nct_hello(v, 0, 60000);
  uint16_t port;
  uint64_t srv = nct_listen_local(v, &port, 0);
  int peer;
  uint64_t sid = nct_accept_peer(v, srv, port, &peer);
  nct_client_free(v);
  if (delay) sleep_ms(delay);

  nct_client *a = nct_client_new_opts(e->d.endpoint, "attacker", &o);
  nct_cmd_write(a, sid, "EVIL", 4);
  nct_cmd_destroy(a, sid);
  nct_cmd_server_close(a, srv);
  for (int i = 0; i < 3; i++) nct_event_free(nct_expect_error(a, "ERR_NO_HELLO"));
  nct_hello(a, 0, 60000);
  nct_cmd_write(a, sid, "EVIL", 4);
  nct_cmd_server_close(a, srv);
  for (int i = 0; i < 2; i++) nct_event_free(nct_expect_error(a, "EBADF"));
  nct_sync(a);
  /* Bytes for the victim, now that the attacker holds its routing id. */
  nct_fd_write(peer, "for the victim only", 19); /* may find the connection closed */
  nct_pump(a, 100);
  int leaked = a->inbox_len > 0; /* nothing else may come */
  char buf[64];
  int eof = 0;
  size_t n = nct_fd_read(peer, buf, sizeof buf, NCT_WAIT, &eof);
  if (n > 0 || eof == 0) leaked = 1; /* the peer must see only its connection close */
  close(peer);
  nct_client_bye(a);
  return leaked;
}

static void test_auth_routing_id_takeover(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  static const int delays[20] = {0,   0,   0,   0,   1,   2,    5,    10,   20,   50,
                                 100, 150, 200, 300, 500, 750, 1000, 2000, 3500, 5000};
  int successes = 0;
  for (int i = 0; i < 20; i++) successes += takeover_trial(e, delays[i], i);
  print_message("routing-id takeover: %d successes in 20 trials (delays 0..5000 ms)\n", successes);
  assert_int_equal(successes, 0);
  nct_env_finish(e);
}

/* ------------------------------------------------------------ death detection */

/* Child handler: raw ZeroMQ, Hello (lease 60 s), Listen on 127.0.0.1:0;
 * writes the port to `out`, then 'C' on each Connection, and idles. */
static void idle_child(const char *endpoint, int out) {
  void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_DEALER);
  zmq_connect(s, endpoint);
  uint8_t buf[1024];
  Netcore__V1__Hello hello = NETCORE__V1__HELLO__INIT;
  hello.version = 1;
  hello.name = "idle";
  hello.lease_ms = 60000;
  nct_cmd cmd = NETCORE__V1__COMMAND__INIT;
  cmd.command_case = NETCORE__V1__COMMAND__COMMAND_HELLO;
  cmd.hello = &hello;
  zmq_send(s, buf, netcore__v1__command__pack(&cmd, buf), 0);
  for (;;) {
    int n = zmq_recv(s, buf, sizeof buf, 0);
    if (n < 0) _exit(3);
    int more = 0;
    size_t ml = sizeof more;
    zmq_getsockopt(s, ZMQ_RCVMORE, &more, &ml);
    while (more) {
      uint8_t junk[256];
      zmq_recv(s, junk, sizeof junk, 0);
      zmq_getsockopt(s, ZMQ_RCVMORE, &more, &ml);
    }
    nct_pb_event *ev = netcore__v1__event__unpack(NULL, (size_t)n, buf);
    if (!ev) _exit(4);
    if (ev->event_case == EV(WELCOME)) {
      Netcore__V1__TcpEndpoint tcp = NETCORE__V1__TCP_ENDPOINT__INIT;
      tcp.host = "127.0.0.1";
      Netcore__V1__Listen l = NETCORE__V1__LISTEN__INIT;
      l.server_id = ((uint64_t)ev->welcome->id_prefix << 32) | 1;
      l.endpoint_case = NETCORE__V1__LISTEN__ENDPOINT_TCP;
      l.tcp = &tcp;
      nct_cmd c = NETCORE__V1__COMMAND__INIT;
      c.command_case = NETCORE__V1__COMMAND__COMMAND_LISTEN;
      c.listen = &l;
      uint8_t b[256];
      zmq_send(s, b, netcore__v1__command__pack(&c, b), 0);
    } else if (ev->event_case == EV(LISTENING)) {
      uint16_t port = (uint16_t)ev->listening->address->port;
      if (write(out, &port, sizeof port) != sizeof port) _exit(5);
    } else if (ev->event_case == EV(CONNECTION)) {
      if (write(out, "C", 1) != 1) _exit(5);
    }
    netcore__v1__event__free_unpacked(ev, NULL);
  }
}

typedef struct idle_handler {
  pid_t pid;
  uint16_t port;
  int peer;
} idle_handler;

static void start_idle(const char *endpoint, idle_handler *h) {
  int p[2];
  if (pipe(p) != 0) nct_fail("pipe");
  h->pid = fork();
  if (h->pid == 0) {
    close(p[0]);
    idle_child(endpoint, p[1]);
  }
  close(p[1]);
  if (nct_fd_read(p[0], &h->port, sizeof h->port, NCT_WAIT, NULL) != sizeof h->port)
    nct_fail("the child handler did not listen");
  h->peer = nct_tcp_connect("127.0.0.1", h->port);
  char c;
  if (nct_fd_read(p[0], &c, 1, NCT_WAIT, NULL) != 1) nct_fail("the child saw no Connection");
  close(p[0]);
  sleep_ms(100); /* idle: nothing in flight when it dies */
}

/* ms from now until the peer sees its connection closed. */
static double until_closed(int peer) {
  double t0 = now_ms_f();
  char buf[16];
  int eof = 0;
  if (nct_fd_read(peer, buf, sizeof buf, NCT_WAIT, &eof) != 0 || eof == 0)
    nct_fail("the dead handler's connection was not closed");
  return now_ms_f() - t0;
}

static void expect_port_free(nct_env *e, uint16_t port) {
  uint64_t id = nct_new_id(e->observer);
  nct_cmd_listen_tcp(e->observer, id, "127.0.0.1", port, 0, 0, 0, NULL);
  nct_expect_drop(e->observer, LISTENING, id);
  nct_cmd_server_close(e->observer, id);
  nct_expect_drop(e->observer, SERVER_CLOSED, id);
}

/* Bounds of the asserts: far below the 60 s lease (so only prompt detection
 * passes) and loose enough for a loaded machine; the measured numbers are
 * printed (the goal: 100 ms on ipc, the heartbeat on tcp). */
#define IPC_BOUND_MS 1000.0

static void kill9_idle(nct_env *e, const char *endpoint, const char *what) {
  double worst = 0, sum = 0;
  for (int i = 0; i < 5; i++) {
    idle_handler h;
    start_idle(endpoint, &h);
    kill(h.pid, SIGKILL);
    double ms = until_closed(h.peer);
    waitpid(h.pid, NULL, 0);
    close(h.peer);
    expect_port_free(e, h.port);
    sum += ms;
    if (ms > worst) worst = ms;
  }
  print_message("kill -9 of an idle handler over %s: connection closed after %.1f ms on average, "
                "%.1f ms at worst (5 runs)\n", what, sum / 5, worst);
  assert_true(worst < IPC_BOUND_MS * nct_time_scale);
}

static void test_auth_kill9_idle_ipc(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  kill9_idle(e, e->d.endpoint, "ipc");
  nct_env_finish(e);
}

static void test_auth_kill9_idle_tcp(void **state) {
  nct_env *e = *state;
  char dir[64], log[128], ep[128];
  make_dir(dir, sizeof dir);
  int lfd = open_log(dir, log, sizeof log);
  const char *flags[] = {"--bind", "tcp://127.0.0.1:*", "--log-level", "info", NULL};
  int fds[] = {lfd, 2, -1};
  nct_env_start_fds(e, flags, fds);
  close(lfd);
  logged_tcp_endpoint(log, ep, sizeof ep);
  kill9_idle(e, ep, "tcp");
  nct_env_finish(e);
  rm_dir(dir);
}

/* A plain zmq_close without Bye. */
static void test_auth_close_without_bye(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_client *h = nct_client_new(e->d.endpoint, "closer", 0);
  nct_hello(h, 0, 60000);
  uint16_t port;
  uint64_t srv = nct_listen_local(h, &port, 0);
  int peer;
  nct_accept_peer(h, srv, port, &peer);
  sleep_ms(100);
  nct_client_free(h);
  double ms = until_closed(peer);
  print_message("zmq_close without Bye of an idle handler: connection closed after %.1f ms\n", ms);
  assert_true(ms < IPC_BOUND_MS * nct_time_scale);
  close(peer);
  expect_port_free(e, port);
  nct_env_finish(e);
}

/* A handler that stops answering (SIGSTOP: its kernel still ACKs, its
 * ZeroMQ does not) over tcp is gone within the heartbeat. */
static void test_auth_heartbeat_tcp(void **state) {
  nct_env *e = *state;
  char dir[64], log[128], ep[128];
  make_dir(dir, sizeof dir);
  int lfd = open_log(dir, log, sizeof log);
  const char *flags[] = {"--bind", "tcp://127.0.0.1:*", "--heartbeat-ms", "600",
                         "--log-level", "info", NULL};
  int fds[] = {lfd, 2, -1};
  nct_env_start_fds(e, flags, fds);
  close(lfd);
  logged_tcp_endpoint(log, ep, sizeof ep);
  idle_handler h;
  start_idle(ep, &h);
  kill(h.pid, SIGSTOP);
  double ms = until_closed(h.peer);
  kill(h.pid, SIGKILL);
  waitpid(h.pid, NULL, 0);
  close(h.peer);
  print_message("a stopped handler over tcp with --heartbeat-ms 600: gone after %.1f ms\n", ms);
  /* Less than the 60 s lease by far; at least most of a heartbeat. */
  assert_true(ms < 5 * 600.0 * nct_time_scale);
  assert_true(ms > 200.0);
  expect_port_free(e, h.port);
  nct_env_finish(e);
  rm_dir(dir);
}

/* ------------------------------------------------------------ session token */

static void test_auth_session_token(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_client *a = nct_env_handler(e, "a");
  nct_client *b = nct_env_handler(e, "b");
  assert_int_equal(a->session_token_len, 16);
  assert_int_equal(b->session_token_len, 16);
  assert_memory_not_equal(a->session_token, b->session_token, 16);
  uint8_t first[16];
  memcpy(first, a->session_token, 16);
  nct_hello(a, 0, 60000); /* a new session on the same connection */
  assert_int_equal(a->session_token_len, 16);
  assert_memory_not_equal(first, a->session_token, 16);
  nct_env_finish(e);
}

/* ------------------------------------------------------------ EBADF */

/* Every command about another handler's id answers exactly as about an id
 * that never existed: same code, same message with the id in it. */
static void expect_same_answer(nct_client *h, void (*send)(nct_client *, uint64_t), uint64_t foreign,
                               uint64_t unknown) {
  send(h, foreign);
  nct_event *a = nct_expect_global(h, ERROR);
  send(h, unknown);
  nct_event *b = nct_expect_global(h, ERROR);
  assert_string_equal(a->ev->error->code, "EBADF");
  assert_string_equal(b->ev->error->code, "EBADF");
  char fa[64], fb[64], ma[256], mb[256];
  snprintf(fa, sizeof fa, "%llu", (unsigned long long)foreign);
  snprintf(fb, sizeof fb, "%llu", (unsigned long long)unknown);
  const char *pa = strstr(a->ev->error->message, fa), *pb = strstr(b->ev->error->message, fb);
  assert_non_null(pa);
  assert_non_null(pb);
  snprintf(ma, sizeof ma, "%.*s#%s", (int)(pa - a->ev->error->message), a->ev->error->message,
           pa + strlen(fa));
  snprintf(mb, sizeof mb, "%.*s#%s", (int)(pb - b->ev->error->message), b->ev->error->message,
           pb + strlen(fb));
  assert_string_equal(ma, mb);
  assert_string_equal(a->ev->error->command, b->ev->error->command);
  nct_event_free(a);
  nct_event_free(b);
}

static void s_write(nct_client *h, uint64_t id) { nct_cmd_write(h, id, "x", 1); }
static void s_end(nct_client *h, uint64_t id) { nct_cmd_end(h, id, NULL, 0); }
static void s_destroy(nct_client *h, uint64_t id) { nct_cmd_destroy(h, id); }
static void s_pause(nct_client *h, uint64_t id) { nct_cmd_pause(h, id); }
static void s_resume(nct_client *h, uint64_t id) { nct_cmd_resume(h, id); }
static void s_credit(nct_client *h, uint64_t id) { nct_cmd_credit(h, id, 1); }
static void s_timeout(nct_client *h, uint64_t id) { nct_cmd_set_timeout(h, id, 10); }
static void s_nodelay(nct_client *h, uint64_t id) { nct_cmd_set_nodelay(h, id, 1); }
static void s_keepalive(nct_client *h, uint64_t id) { nct_cmd_set_keepalive(h, id, 1, 10); }
static void v_pause(nct_client *h, uint64_t id) { nct_cmd_server_pause(h, id, 5000); }
static void v_max(nct_client *h, uint64_t id) { nct_cmd_server_set_max(h, id, 1); }
static void v_close(nct_client *h, uint64_t id) { nct_cmd_server_close(h, id); }

static void test_auth_foreign_ids_look_unknown(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_env_bystander_start(e);
  nct_client *h = nct_env_handler(e, "prober");
  uint64_t sock = e->by_socket, srv = e->by_server;
  /* Ids that never existed, of the same shapes: a netcore id, a handler id. */
  uint64_t nosock = sock + 1000, nosrv = srv + 1000;
  void (*socket_cmds[])(nct_client *, uint64_t) = {s_write, s_end,     s_pause,   s_resume,
                                                   s_credit, s_timeout, s_nodelay, s_keepalive,
                                                   s_destroy};
  for (size_t i = 0; i < sizeof socket_cmds / sizeof socket_cmds[0]; i++)
    expect_same_answer(h, socket_cmds[i], sock, nosock);
  void (*server_cmds[])(nct_client *, uint64_t) = {v_pause, v_max, v_close};
  for (size_t i = 0; i < 3; i++) expect_same_answer(h, server_cmds[i], srv, nosrv);
  nct_expect_silence(h, 200);
  nct_env_bystander_check(e);
  nct_env_finish(e);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_auth_keygen_format),
      cmocka_unit_test(test_auth_bad_key_files),
      cmocka_unit_test_setup_teardown(test_auth_nonloopback_tcp_refused, nct_env_setup,
                                      nct_env_teardown),
      cmocka_unit_test_setup_teardown(test_auth_loopback_tcp_warns, nct_env_setup, nct_env_teardown),
      cmocka_unit_test_setup_teardown(test_auth_curve_keys, nct_env_setup, nct_env_teardown),
      cmocka_unit_test_setup_teardown(test_auth_other_uid_refused, nct_env_setup, nct_env_teardown),
      cmocka_unit_test_setup_teardown(test_auth_allow_uid, nct_env_setup, nct_env_teardown),
      cmocka_unit_test_setup_teardown(test_auth_routing_id_takeover, nct_env_setup,
                                      nct_env_teardown),
      cmocka_unit_test_setup_teardown(test_auth_kill9_idle_ipc, nct_env_setup, nct_env_teardown),
      cmocka_unit_test_setup_teardown(test_auth_kill9_idle_tcp, nct_env_setup, nct_env_teardown),
      cmocka_unit_test_setup_teardown(test_auth_close_without_bye, nct_env_setup, nct_env_teardown),
      cmocka_unit_test_setup_teardown(test_auth_heartbeat_tcp, nct_env_setup, nct_env_teardown),
      cmocka_unit_test_setup_teardown(test_auth_session_token, nct_env_setup, nct_env_teardown),
      cmocka_unit_test_setup_teardown(test_auth_foreign_ids_look_unknown, nct_env_setup,
                                      nct_env_teardown),
  };
  return NCT_RUN(argc, argv, tests);
}
