/* test_policy.c: what each handler may do (--policy, policy.h). For an ipc
 * handler (principal uid:N) and a CURVE one (key:NAME): a denial, and the
 * allowed counterpart, for every command kind (listen on an address and
 * port, connect to a host and port, UNIX paths for listen and connect, a
 * group join), each denial an EACCES naming the entry with nothing else
 * happening; CURVE without a policy; limits from the policy overriding the
 * flags; a bad policy file refused at start; uids named by the policy let
 * in over ipc. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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

/* ------------------------------------------------------------ files */

static void make_dir(char *dir, size_t cap) {
  snprintf(dir, cap, "/tmp/nct-policy-XXXXXX");
  if (!mkdtemp(dir)) nct_fail("mkdtemp: %s", strerror(errno));
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  remove(path);
  return 0;
}

static void rm_dir(const char *dir) {
  nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

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

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (!f || fputs(text, f) < 0 || fclose(f) != 0) nct_fail("write %s: %s", path, strerror(errno));
}

static void wait_log(const char *path, const char *needle) {
  static char buf[1 << 16];
  uint64_t deadline = nct_now_ms() + NCT_WAIT;
  while (read_file(path, buf, sizeof buf), !strstr(buf, needle)) {
    if (nct_now_ms() > deadline)
      nct_fail("log %s never said '%s'; it holds:\n%s", path, needle, buf);
    sleep_ms(20);
  }
}

static int log_has(const char *path, const char *needle) {
  static char buf[1 << 16];
  read_file(path, buf, sizeof buf);
  return strstr(buf, needle) != NULL;
}

/* Runs netcore with args (NULL-terminated), its stdout and stderr into out.
 * Returns the exit status. */
static int run_netcore(const char *const *args, char *out, size_t cap) {
  char path[] = "/tmp/nct-policy-out-XXXXXX";
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

static void keygen(const char *dir, const char *name, keypair *k) {
  char out[512], text[512];
  snprintf(k->path, sizeof k->path, "%s/%s", dir, name);
  const char *args[] = {"keygen", k->path, NULL};
  if (run_netcore(args, out, sizeof out) != 0) nct_fail("netcore keygen: %s", out);
  read_file(k->path, text, sizeof text);
  const char *p = strstr(text, "public-key = \""), *s = strstr(text, "secret-key = \"");
  if (!p || !s) nct_fail("keygen wrote:\n%s", text);
  snprintf(k->pub, sizeof k->pub, "%.40s", p + 14);
  snprintf(k->sec, sizeof k->sec, "%.40s", s + 14);
}

static int open_log(const char *dir, char *path, size_t cap) {
  snprintf(path, cap, "%s/netcore.log", dir);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
  if (fd < 0) nct_fail("open %s: %s", path, strerror(errno));
  return fd;
}

static void logged_tcp_endpoint(const char *log, char *ep, size_t cap) {
  static char buf[1 << 16];
  wait_log(log, "handlers connect to tcp://");
  read_file(log, buf, sizeof buf);
  const char *p = strstr(buf, "handlers connect to tcp://") + strlen("handlers connect to ");
  snprintf(ep, cap, "%.*s", (int)strcspn(p, " \n"), p);
}

/* ------------------------------------------------------------ commands */

/* A TCP port of 127.0.0.1 nobody listens on right now, and none this
 * process was given before: a port closed at once may well be the kernel's
 * next choice too (then a test's "unbound" port was its group's, which its
 * policy allows). Bound without SO_REUSEADDR, so never a port in use. */
static uint16_t free_port(void) {
  static uint16_t given[64];
  static size_t ngiven;
  for (;;) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
      nct_fail("free_port: %s", strerror(errno));
    uint16_t port = nct_local_port(fd);
    close(fd);
    int seen = 0;
    for (size_t i = 0; i < ngiven && !seen; i++) seen = given[i] == port;
    if (seen) continue;
    if (ngiven < sizeof given / sizeof *given) given[ngiven++] = port;
    return port;
  }
}

/* The test itself can still bind ip:port: netcore did not. */
static void expect_unbound(const char *ip, uint16_t port) {
  uint16_t p = port;
  int fd = nct_tcp_listen(ip, &p);
  if (fd < 0) nct_fail("%s:%u is bound although the Listen was denied", ip, port);
  close(fd);
}

static uint64_t listen_tcp(nct_client *c, const char *host, int port, const char *group) {
  uint64_t id = nct_new_id(c);
  nct_cmd_listen_tcp(c, id, host, port, 0, 0, 0, group);
  return id;
}

static uint16_t expect_listening(nct_client *c, uint64_t id) {
  nct_event *ev = nct_expect(c, LISTENING, id);
  uint16_t port = (uint16_t)ev->ev->listening->address->port;
  nct_event_free(ev);
  return port;
}

/* ServerError EACCES whose message holds want; nothing else about the server. */
static void expect_listen_denied(nct_client *c, uint64_t id, const char *want) {
  nct_event *ev = nct_expect(c, SERVER_ERROR, id);
  assert_string_equal(ev->ev->server_error->code, "EACCES");
  if (!strstr(ev->ev->server_error->message, "listen EACCES: permission denied (policy: ") ||
      !strstr(ev->ev->server_error->message, want))
    nct_fail("ServerError message '%s' does not say '%s'", ev->ev->server_error->message, want);
  nct_event_free(ev);
}

/* SocketError EACCES naming the rule, then Closed{had_error}. */
static void expect_connect_denied(nct_client *c, uint64_t id, const char *want) {
  nct_event *ev = nct_expect(c, SOCKET_ERROR, id);
  assert_string_equal(ev->ev->socket_error->code, "EACCES");
  if (!strstr(ev->ev->socket_error->message, "connect EACCES ") ||
      !strstr(ev->ev->socket_error->message, "(policy: ") ||
      !strstr(ev->ev->socket_error->message, want))
    nct_fail("SocketError message '%s' does not say '%s'", ev->ev->socket_error->message, want);
  nct_event_free(ev);
  ev = nct_expect(c, CLOSED, id);
  assert_true(ev->ev->closed->had_error);
  nct_event_free(ev);
}

static uint64_t connect_tcp(nct_client *c, const char *host, uint16_t port) {
  uint64_t id = nct_new_id(c);
  nct_cmd_connect_tcp(c, id, host, port, 0);
  return id;
}

static uint64_t connect_path(nct_client *c, const char *path) {
  uint64_t id = nct_new_id(c);
  nct_cmd_connect_path(c, id, path);
  return id;
}

/* The test's listener lfd still listens (else a refused connect is the
 * test's doing, not netcore's: say so). */
static void check_listener(int lfd) {
  int on = 0;
  socklen_t len = sizeof on;
  if (getsockopt(lfd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) != 0)
    nct_fail("the test's listener fd %d is gone: %s", lfd, strerror(errno));
  if (!on) nct_fail("the test's listener fd %d (port %d) no longer listens", lfd, nct_local_port(lfd));
}

/* The connect succeeded and its peer is accepted by the test's listener;
 * then both sides close. */
static void expect_connected(nct_client *c, uint64_t id, int lfd) {
  check_listener(lfd);
  nct_expect_drop(c, CONNECTED, id);
  int peer = nct_accept(lfd, NCT_WAIT);
  if (peer < 0) nct_fail("the allowed connect reached no one");
  nct_close_both(c, id, peer);
}

/* Nobody reached the test's listener. */
static void expect_no_peer(int lfd) {
  int peer = nct_accept(lfd, 0);
  if (peer >= 0) nct_fail("a denied connect reached its target");
}

/* ------------------------------------------------------------ the world */

/* What both principals' tests use: TCP targets (a: allowed by address,
 * b: never allowed, n: allowed only by the name "localhost") and UNIX ones
 * (pub/peer.sock allowed, secret.sock never), directories for UNIX listens. */
typedef struct world {
  char dir[64];
  uint16_t pa, pb, pn, unbound;
  int la, lb, ln;
  char pub_sock[128], secret_sock[128], sneaky[160];
  int lpub, lsecret;
  char srv_dir[128], srv_ok[160], srv_bad[160];
} world;

static void world_make(world *w, const char *srv_sub) {
  /* Zeroed first: the ports are in-out for nct_tcp_listen, and a stack
   * leftover there asked for a port in use (CI: EADDRINUSE, fd -1). */
  memset(w, 0, sizeof *w);
  make_dir(w->dir, sizeof w->dir);
  w->la = nct_tcp_listen("127.0.0.1", &w->pa);
  w->lb = nct_tcp_listen("127.0.0.1", &w->pb);
  w->ln = nct_tcp_listen("127.0.0.1", &w->pn);
  w->unbound = free_port();
  char pub[96];
  snprintf(pub, sizeof pub, "%s/pub", w->dir);
  mkdir(pub, 0700);
  snprintf(w->pub_sock, sizeof w->pub_sock, "%s/peer.sock", pub);
  snprintf(w->secret_sock, sizeof w->secret_sock, "%s/secret.sock", w->dir);
  snprintf(w->sneaky, sizeof w->sneaky, "%s/../secret.sock", pub);
  w->lpub = nct_unix_listen(w->pub_sock);
  w->lsecret = nct_unix_listen(w->secret_sock);
  if (w->la < 0 || w->lb < 0 || w->ln < 0 || w->lpub < 0 || w->lsecret < 0)
    nct_fail("world_make: a listener of the test failed: %s", strerror(errno));
  snprintf(w->srv_dir, sizeof w->srv_dir, "%s/%s", w->dir, srv_sub);
  mkdir(w->srv_dir, 0700);
  snprintf(w->srv_ok, sizeof w->srv_ok, "%s/ok.sock", w->srv_dir);
  snprintf(w->srv_bad, sizeof w->srv_bad, "%s/bad.sock", w->dir);
}

static void world_free(world *w) {
  close(w->la), close(w->lb), close(w->ln), close(w->lpub), close(w->lsecret);
  rm_dir(w->dir);
}

/* The rules both principals get, in an entry opened by the caller. */
static void world_rules(const world *w, char *out, size_t cap) {
  snprintf(out, cap,
           "  listen tcp 127.0.0.1 0\n"
           "  listen unix %s\n"
           "  connect tcp 127.0.0.1 %u\n"
           "  connect tcp localhost %u\n"
           "  connect unix %s/pub\n"
           "  join web\n",
           w->srv_dir, w->pa, w->pn, w->dir);
}

/* Every command kind, denied and allowed, for handler c governed by
 * world_rules; entry is how denials name it ("FILE:LINE (handler P)"). */
static void exercise(nct_client *c, const world *w, const char *entry) {
  uint64_t id;
  char want[300];
  /* Listen on an address and port. */
  expect_listening(c, listen_tcp(c, "127.0.0.1", 0, NULL));
  id = listen_tcp(c, "0.0.0.0", 0, NULL);
  snprintf(want, sizeof want, "%s: no 'listen tcp' rule allows 0.0.0.0 (a wildcard address", entry);
  expect_listen_denied(c, id, want);
  id = listen_tcp(c, "127.0.0.1", w->unbound, NULL);
  snprintf(want, sizeof want, "no 'listen tcp' rule allows 127.0.0.1 port %u", w->unbound);
  expect_listen_denied(c, id, want);
  nct_sync(c);
  expect_unbound("127.0.0.1", w->unbound);
  expect_unbound("0.0.0.0", w->unbound);
  /* A name: resolved, then its address decides. */
  expect_listening(c, listen_tcp(c, "localhost", 0, NULL));
  id = listen_tcp(c, "localhost", w->unbound, NULL);
  expect_listen_denied(c, id, "no 'listen tcp' rule allows localhost");

  /* Connect to a host and port. */
  expect_connected(c, connect_tcp(c, "127.0.0.1", w->pa), w->la);
  id = connect_tcp(c, "127.0.0.1", w->pb);
  snprintf(want, sizeof want, "%s: no 'connect tcp' rule allows 127.0.0.1 port %u", entry, w->pb);
  expect_connect_denied(c, id, want);
  /* A name rule allows the name as given, not its address... */
  expect_connected(c, connect_tcp(c, "localhost", w->pn), w->ln);
  expect_connect_denied(c, connect_tcp(c, "127.0.0.1", w->pn), "rule allows 127.0.0.1 port");
  /* ...and a name no name rule allows reaches only allowed addresses. */
  expect_connected(c, connect_tcp(c, "localhost", w->pa), w->la);
  expect_connect_denied(c, connect_tcp(c, "localhost", w->pb), "rule allows localhost port");
  expect_connect_denied(c, connect_tcp(c, "::ffff:127.0.0.1", w->pb), "rule allows 127.0.0.1");
  nct_sync(c);
  expect_no_peer(w->lb);

  /* UNIX paths: listen. */
  uint64_t sid = nct_new_id(c);
  nct_cmd_listen_path(c, sid, w->srv_ok);
  expect_listening(c, sid);
  sid = nct_new_id(c);
  nct_cmd_listen_path(c, sid, w->srv_bad);
  snprintf(want, sizeof want, "%s: no 'listen unix' rule allows %s", entry, w->srv_bad);
  expect_listen_denied(c, sid, want);
  struct stat st;
  if (stat(w->srv_bad, &st) == 0) nct_fail("the denied listen made %s", w->srv_bad);

  /* UNIX paths: connect. */
  expect_connected(c, connect_path(c, w->pub_sock), w->lpub);
  snprintf(want, sizeof want, "%s: no 'connect unix' rule allows %s", entry, w->secret_sock);
  expect_connect_denied(c, connect_path(c, w->secret_sock), want);
  expect_connect_denied(c, connect_path(c, w->sneaky), "not a canonical absolute path");
  nct_sync(c);
  expect_no_peer(w->lsecret);

  /* Groups: "web" may be made (or joined), "ops" not. */
  expect_listening(c, listen_tcp(c, "127.0.0.1", 0, "web"));
  id = listen_tcp(c, "127.0.0.1", 0, "ops");
  snprintf(want, sizeof want, "%s: no 'join' rule allows group 'ops'", entry);
  expect_listen_denied(c, id, want);
  nct_sync(c);
  nct_expect_silence(c, 100);
}

/* ------------------------------------------------------------ tests */

static void test_policy_uid_principal(void **state) {
  nct_env *e = *state;
  world w;
  world_make(&w, "srv");
  char rules[1024], text[2048], policy[128];
  world_rules(&w, rules, sizeof rules);
  snprintf(text, sizeof text, "# the test's uid: the observer and the handler\nhandler uid:%u\n%s",
           (unsigned)geteuid(), rules);
  snprintf(policy, sizeof policy, "%s/policy", w.dir);
  write_file(policy, text);
  const char *flags[] = {"--policy", policy, NULL};
  nct_env_start(e, flags);
  nct_client *c = nct_env_handler(e, "ipc");
  char entry[256];
  snprintf(entry, sizeof entry, "%s:2 (handler uid:%u)", policy, (unsigned)geteuid());
  exercise(c, &w, entry);
  nct_env_finish(e);
  world_free(&w);
}

typedef struct curve_env {
  char log[128], ep[128], policy[128];
  keypair srv, alice, bob, carol;
} curve_env;

/* netcore on its ipc endpoint and on tcp://127.0.0.1:* with CURVE; alice,
 * bob and carol are allowed in. policy_text NULL: no --policy. */
static void curve_start(nct_env *e, curve_env *ce, const char *dir, const char *policy_text) {
  char allow[128];
  keygen(dir, "srv.key", &ce->srv);
  keygen(dir, "alice.key", &ce->alice);
  keygen(dir, "bob.key", &ce->bob);
  keygen(dir, "carol.key", &ce->carol);
  snprintf(allow, sizeof allow, "%s/allow", dir);
  char text[512];
  snprintf(text, sizeof text, "alice %s\nbob %s\ncarol %s\n", ce->alice.pub, ce->bob.pub,
           ce->carol.pub);
  write_file(allow, text);
  int lfd = open_log(dir, ce->log, sizeof ce->log);
  const char *flags[16] = {"--bind",
                           "tcp://127.0.0.1:*",
                           "--curve-secret-file",
                           ce->srv.path,
                           "--curve-allow",
                           allow,
                           "--log-level",
                           "info",
                           NULL};
  if (policy_text) {
    snprintf(ce->policy, sizeof ce->policy, "%s/policy", dir);
    write_file(ce->policy, policy_text);
    flags[8] = "--policy";
    flags[9] = ce->policy;
    flags[10] = NULL;
  }
  int fds[] = {lfd, 2, -1};
  nct_env_start_fds(e, flags, fds);
  close(lfd);
  logged_tcp_endpoint(ce->log, ce->ep, sizeof ce->ep);
}

static nct_client *curve_handler(nct_env *e, curve_env *ce, const char *name, const keypair *k) {
  nct_client_opts o = {.server_key = ce->srv.pub, .public_key = k->pub, .secret_key = k->sec};
  nct_client *c = nct_client_new_opts(ce->ep, name, &o);
  nct_env_adopt(e, c);
  nct_hello(c, 0, 60000);
  return c;
}

static void test_policy_curve_principal(void **state) {
  nct_env *e = *state;
  world w;
  world_make(&w, "alice");
  char rules[1024], text[4096];
  world_rules(&w, rules, sizeof rules);
  uint16_t port = free_port(); /* the group's */
  snprintf(text, sizeof text,
           "handler uid:%u\n"
           "  listen tcp 127.0.0.1 *\n"
           "  join web\n"
           "\n"
           "handler key:alice\n"
           "%s"
           "  listen tcp 127.0.0.1 %u\n"
           "handler key:bob\n"
           "  listen tcp 127.0.0.1 *\n",
           (unsigned)geteuid(), rules, port);
  curve_env ce;
  curve_start(e, &ce, w.dir, text);
  nct_client *alice = curve_handler(e, &ce, "alice", &ce.alice);
  nct_client *bob = curve_handler(e, &ce, "bob", &ce.bob);
  nct_client *carol = curve_handler(e, &ce, "carol", &ce.carol);
  char entry[256];
  snprintf(entry, sizeof entry, "%s:5 (handler key:alice)", ce.policy);
  exercise(alice, &w, entry);

  /* The group: the observer (our uid) makes "web", alice may join it, bob
   * may not; connections go to the observer and alice only. */
  uint64_t os = listen_tcp(e->observer, "127.0.0.1", port, "web");
  assert_int_equal(expect_listening(e->observer, os), port);
  uint64_t as = listen_tcp(alice, "127.0.0.1", port, "web");
  assert_int_equal(expect_listening(alice, as), port);
  uint64_t bs = listen_tcp(bob, "127.0.0.1", port, "web");
  char want[300];
  snprintf(want, sizeof want, "%s:13 (handler key:bob): no 'join' rule allows group 'web'",
           ce.policy);
  expect_listen_denied(bob, bs, want);
  int peers[4];
  for (int i = 0; i < 4; i++) peers[i] = nct_tcp_connect("127.0.0.1", port);
  uint64_t mine[2];
  for (int i = 0; i < 2; i++) {
    nct_event *ev = nct_expect_connection(e->observer, os);
    mine[i] = ev->ev->connection->socket_id;
    nct_event_free(ev);
    nct_event_free(nct_expect_connection(alice, as));
  }
  nct_expect_silence(bob, NCT_QUIET);
  for (int i = 0; i < 4; i++) close(peers[i]);
  for (int i = 0; i < 2; i++) {
    nct_cmd_destroy(e->observer, mine[i]);
    nct_event_free(nct_expect_skip(e->observer, CLOSED, mine[i], NCT_SKIP(ENDED)));
  }
  nct_cmd_server_close(e->observer, os);
  nct_expect_drop(e->observer, SERVER_CLOSED, os);
  /* Bob's own rule still works; listening where the group is gets EADDRINUSE. */
  expect_listening(bob, listen_tcp(bob, "127.0.0.1", 0, NULL));
  nct_expect_drop(bob, SERVER_ERROR, listen_tcp(bob, "127.0.0.1", port, NULL));

  /* carol is let in (her key is allowed) but has no entry and there is no default. */
  uint64_t cs = listen_tcp(carol, "127.0.0.1", 0, NULL);
  expect_listen_denied(carol, cs,
                       "policy: no entry for this handler and no 'handler default': "
                       "may not listen anywhere");
  expect_connect_denied(carol, connect_tcp(carol, "127.0.0.1", w.pa), "may not connect anywhere");
  nct_sync(carol);
  expect_no_peer(w.la);
  nct_env_finish(e);
  world_free(&w);
}

/* Without --policy a CURVE handler may do nothing, and netcore says so at
 * start; an ipc handler of netcore's own uid may do anything. */
static void test_policy_curve_without_policy(void **state) {
  nct_env *e = *state;
  char dir[64];
  make_dir(dir, sizeof dir);
  curve_env ce;
  curve_start(e, &ce, dir, NULL);
  wait_log(ce.log,
           "no --policy: CURVE handlers may connect to netcore but not listen, connect or "
           "join a group");
  nct_client *alice = curve_handler(e, &ce, "alice", &ce.alice);
  uint64_t id = listen_tcp(alice, "127.0.0.1", 0, NULL);
  expect_listen_denied(alice, id,
                       "no --policy: a CURVE handler may do only what a policy entry "
                       "allows: may not listen anywhere (asked: 127.0.0.1 port 0)");
  uint16_t port = 0;
  int l = nct_tcp_listen("127.0.0.1", &port);
  expect_connect_denied(alice, connect_tcp(alice, "127.0.0.1", port), "may not connect anywhere");
  char path[128];
  snprintf(path, sizeof path, "%s/a.sock", dir);
  uint64_t sid = nct_new_id(alice);
  nct_cmd_listen_path(alice, sid, path);
  expect_listen_denied(alice, sid, "no --policy");
  nct_sync(alice);
  expect_no_peer(l);
  /* Today's behaviour for our own uid: a wildcard listen, a connect anywhere. */
  nct_client *own = nct_env_handler(e, "own");
  expect_listening(own, listen_tcp(own, "0.0.0.0", 0, NULL));
  expect_connected(own, connect_tcp(own, "127.0.0.1", port), l);
  close(l);
  nct_env_finish(e);
  rm_dir(dir);
}

/* Limits of an entry beat the flags, upward and downward. */
static void test_policy_limits(void **state) {
  nct_env *e = *state;
  char dir[64], policy[128], text[512];
  make_dir(dir, sizeof dir);
  snprintf(policy, sizeof policy, "%s/policy", dir);
  snprintf(text, sizeof text,
           "handler uid:%u\n  listen tcp 127.0.0.1 *\n  connect tcp 127.0.0.1 *\n"
           "  max-servers 3\n  max-sockets 2\n",
           (unsigned)geteuid());
  write_file(policy, text);
  const char *flags[] = {"--policy", policy, "--max-handler-servers", "1", NULL};
  nct_env_start(e, flags);
  nct_client *h = nct_env_handler(e, "limited");
  for (int i = 0; i < 3; i++) expect_listening(h, listen_tcp(h, "127.0.0.1", 0, NULL));
  uint64_t id = listen_tcp(h, "127.0.0.1", 0, NULL);
  nct_event *ev = nct_expect(h, SERVER_ERROR, id);
  assert_string_equal(ev->ev->server_error->code, "EMFILE");
  assert_non_null(strstr(ev->ev->server_error->message, "limit of 3 servers"));
  nct_event_free(ev);
  uint16_t port = 0;
  int l = nct_tcp_listen("127.0.0.1", &port);
  int peers[2];
  for (int i = 0; i < 2; i++) {
    nct_expect_drop(h, CONNECTED, connect_tcp(h, "127.0.0.1", port));
    peers[i] = nct_accept(l, NCT_WAIT);
  }
  id = connect_tcp(h, "127.0.0.1", port);
  ev = nct_expect(h, SOCKET_ERROR, id);
  assert_string_equal(ev->ev->socket_error->code, "EMFILE");
  assert_non_null(strstr(ev->ev->socket_error->message, "limit of 2 sockets"));
  nct_event_free(ev);
  nct_expect_drop(h, CLOSED, id);
  for (int i = 0; i < 2; i++) close(peers[i]);
  close(l);
  nct_env_finish(e);
  rm_dir(dir);
}

/* An entry's budget replaces --handler-budget: a handler that does not read
 * is found over 65536 bytes, not the global 64 MiB. */
static void test_policy_budget(void **state) {
  nct_env *e = *state;
  char dir[64], policy[128], text[512], log[128];
  make_dir(dir, sizeof dir);
  snprintf(policy, sizeof policy, "%s/policy", dir);
  snprintf(text, sizeof text, "handler uid:%u\n  listen tcp 127.0.0.1 *\n  budget 65536\n",
           (unsigned)geteuid());
  write_file(policy, text);
  int lfd = open_log(dir, log, sizeof log);
  const char *flags[] = {"--policy", policy, NULL};
  int fds[] = {lfd, 2, -1};
  nct_env_start_fds(e, flags, fds);
  close(lfd);
  nct_client *h = nct_client_new(e->d.endpoint, "deaf", 16);
  nct_env_adopt(e, h);
  nct_hello(h, 0, 60000);
  uint16_t port;
  uint64_t srv = nct_listen_local(h, &port, 0);
  int peer;
  uint64_t sid = nct_accept_peer(h, srv, port, &peer);
  nct_cmd_credit(h, sid, 16 * 1024 * 1024);
  nct_sync(h);
  fcntl(peer, F_SETFL, fcntl(peer, F_GETFL) | O_NONBLOCK);
  static char chunk[65536];
  uint64_t deadline = nct_now_ms() + 4 * NCT_WAIT;
  while (!log_has(log, "over its budget of 65536;")) {
    if (nct_now_ms() > deadline) nct_fail("the handler was never found over its 65536-byte budget");
    while (write(peer, chunk, sizeof chunk) > 0) continue;
    sleep_ms(20);
  }
  close(peer);
  nct_env_release(e, h, 0);
  nct_env_finish(e);
  rm_dir(dir);
}

/* SIGHUP reads the file again: a new rule works at once for a handler
 * already in; a file that does not parse leaves the old policy in force. */
static void test_policy_sighup_reload(void **state) {
  nct_env *e = *state;
  char dir[64], policy[128], text[512], log[128];
  make_dir(dir, sizeof dir);
  snprintf(policy, sizeof policy, "%s/policy", dir);
  snprintf(text, sizeof text, "handler uid:%u\n  listen tcp 127.0.0.1 0\n", (unsigned)geteuid());
  write_file(policy, text);
  int lfd = open_log(dir, log, sizeof log);
  const char *flags[] = {"--policy", policy, "--log-level", "info", NULL};
  int fds[] = {lfd, 2, -1};
  nct_env_start_fds(e, flags, fds);
  close(lfd);
  nct_client *h = nct_env_handler(e, "reloaded");
  expect_listen_denied(h, listen_tcp(h, "0.0.0.0", 0, NULL), "policy:1 (handler uid:");
  snprintf(text, sizeof text, "handler uid:%u\n  listen tcp 127.0.0.1 0\n  listen tcp 0.0.0.0 0\n",
           (unsigned)geteuid());
  write_file(policy, text);
  kill(e->d.pid, SIGHUP);
  wait_log(log, "reloaded: 1 handler entries");
  expect_listening(h, listen_tcp(h, "0.0.0.0", 0, NULL));
  write_file(policy, "handler uid:0\n  listen everywhere\n");
  kill(e->d.pid, SIGHUP);
  wait_log(log, "policy:2: expected 'listen tcp|unix|fd ...'; the policy in force stays");
  expect_listening(h, listen_tcp(h, "0.0.0.0", 0, NULL));
  nct_env_finish(e);
  rm_dir(dir);
}

/* A policy file that does not parse stops netcore at start: exit 2, and
 * the file and line of the mistake on stderr. */
static void test_policy_bad_file_refused(void **state) {
  (void)state;
  char dir[64], policy[128], out[2048], want[256];
  make_dir(dir, sizeof dir);
  snprintf(policy, sizeof policy, "%s/policy", dir);
  static const struct {
    const char *text;
    int line;
    const char *why;
  } cases[] = {
      {"handler uid:0\n  listen tcp 127.0.0.1 80\n  connect tcp 10.0.0.1/8 5432\n", 3,
       "the address has bits set past its prefix"},
      {"# no entry yet\n  listen tcp * *\n", 2, "a rule before the first 'handler' line"},
      {"handler key:a\n  listen tcp 127.0.0.1 99999\n", 2, "ports are '*', N, N-M"},
      {"handler default\n  permit everything\n", 2, "unknown directive"},
      {"handler uid:1\nhandler uid:1\n", 2, "this principal already has an entry above"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    write_file(policy, cases[i].text);
    char ep[128];
    snprintf(ep, sizeof ep, "ipc://%s/nc.sock", dir);
    const char *args[] = {"--bind", ep, "--policy", policy, NULL};
    assert_int_equal(run_netcore(args, out, sizeof out), 2);
    snprintf(want, sizeof want, "netcore: --policy: %s:%d: %s", policy, cases[i].line,
             cases[i].why);
    if (!strstr(out, want)) nct_fail("case %zu: wanted '%s', netcore said:\n%s", i, want, out);
  }
  char missing[160];
  snprintf(missing, sizeof missing, "%s/none", dir);
  const char *args[] = {"--policy", missing, NULL};
  assert_int_equal(run_netcore(args, out, sizeof out), 2);
  assert_non_null(strstr(out, "cannot open --policy file"));
  rm_dir(dir);
}

/* ------------------------------------------------------------ uids let in */

/* Child: becomes nobody, connects, says Hello; exits 0 on a Welcome within
 * 1.5 s, 1 if nothing came. */
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

static int run_as_nobody(nct_daemon *d) {
  char sock[128];
  nct_daemon_path(d, "nc.sock", sock, sizeof sock);
  if (chmod(d->dir, 0755) != 0 || chmod(sock, 0777) != 0) nct_fail("chmod: %s", strerror(errno));
  pid_t pid = fork();
  if (pid == 0) nobody_child(d->endpoint);
  int status;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* A "handler uid:N" entry lets uid N in over ipc; a default entry lets no
 * uid in. */
static void test_policy_names_uid(void **state) {
  nct_env *e = *state;
  if (geteuid() != 0 || !getpwnam("nobody")) skip();
  char dir[64], policy[128], text[256];
  make_dir(dir, sizeof dir);
  snprintf(policy, sizeof policy, "%s/policy", dir);
  snprintf(text, sizeof text, "handler uid:0\n  listen tcp 127.0.0.1 *\nhandler default\n  all\n");
  write_file(policy, text);
  const char *flags[] = {"--policy", policy, NULL};
  nct_env_start(e, flags);
  assert_int_equal(run_as_nobody(&e->d), 1);
  nct_env_finish(e);

  snprintf(text, sizeof text, "handler uid:0\n  listen tcp 127.0.0.1 *\nhandler uid:%u\n",
           (unsigned)getpwnam("nobody")->pw_uid);
  write_file(policy, text);
  nct_env_start(e, flags);
  assert_int_equal(run_as_nobody(&e->d), 0);
  nct_env_finish(e);
  rm_dir(dir);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_policy_uid_principal, nct_env_setup, nct_env_teardown),
      cmocka_unit_test_setup_teardown(test_policy_curve_principal, nct_env_setup, nct_env_teardown),
      cmocka_unit_test_setup_teardown(test_policy_curve_without_policy, nct_env_setup,
                                      nct_env_teardown),
      cmocka_unit_test_setup_teardown(test_policy_limits, nct_env_setup, nct_env_teardown),
      cmocka_unit_test_setup_teardown(test_policy_budget, nct_env_setup, nct_env_teardown),
      cmocka_unit_test_setup_teardown(test_policy_sighup_reload, nct_env_setup, nct_env_teardown),
      cmocka_unit_test(test_policy_bad_file_refused),
      cmocka_unit_test_setup_teardown(test_policy_names_uid, nct_env_setup, nct_env_teardown),
  };
  return NCT_RUN(argc, argv, tests);
}
