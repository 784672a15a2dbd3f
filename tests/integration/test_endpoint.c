/* test_endpoint.c: netcore's ipc:// endpoint as a file (netcore/endpoint.h):
 * the default path and its private directory, one netcore per path (a second
 * one, or one of several started at once, exits with EADDRINUSE), a stale
 * socket file taken over, other files never replaced, and the files removed
 * when netcore exits. Besides the harness's daemon, these tests start netcore
 * themselves with a chosen environment (XDG_RUNTIME_DIR, no NETCORE_ENDPOINT)
 * and read what it writes on stderr. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

/* ------------------------------------------------------------ helpers */

#define MAX_PROCS 8

typedef struct proc {
  pid_t pid;           /* 0 once reaped */
  int status;
  char errfile[128];   /* its stderr */
} proc;

typedef struct fixture {
  nct_env *env;        /* the harness's daemon, for tests that want one */
  char dir[64];        /* a private temporary directory */
  proc procs[MAX_PROCS];
  int nprocs;
} fixture;

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static int fixture_setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  if (!f) return -1;
  void *env_state = NULL;
  if (nct_env_setup(&env_state) != 0) return -1;
  f->env = env_state;
  snprintf(f->dir, sizeof f->dir, "/tmp/nct-ep-XXXXXX");
  if (!mkdtemp(f->dir)) return -1;
  *state = f;
  return 0;
}

static void rm_rf(const char *path) {
  char cmd[600];
  snprintf(cmd, sizeof cmd, "chmod -R u+rwx '%s' 2>/dev/null; rm -rf '%s'", path, path);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", path);
}

static int fixture_teardown(void **state) {
  fixture *f = *state;
  for (int i = 0; i < f->nprocs; i++)
    if (f->procs[i].pid > 0) {
      kill(f->procs[i].pid, SIGKILL);
      waitpid(f->procs[i].pid, NULL, 0);
    }
  void *env_state = f->env;
  nct_env_teardown(&env_state);
  rm_rf(f->dir);
  free(f);
  return 0;
}

/* Starts netcore with args (NULL-terminated) and this environment: XDG_RUNTIME_DIR
 * = xdg (NULL: unset), NETCORE_ENDPOINT unset. Its stderr goes to a file. */
static proc *spawn(fixture *f, const char *xdg, const char *const *args) {
  if (f->nprocs == MAX_PROCS) nct_fail("too many netcores");
  proc *p = &f->procs[f->nprocs];
  snprintf(p->errfile, sizeof p->errfile, "%s/stderr-%d", f->dir, f->nprocs);
  f->nprocs++;
  char *argv[48];
  int argc = 0;
  char wrapper[512] = "";
  const char *wrap = getenv("NCT_NETCORE_WRAPPER");
  if (wrap) snprintf(wrapper, sizeof wrapper, "%s", wrap);
  for (char *save = NULL, *tok = strtok_r(wrapper, " ", &save); tok && argc < 32;
       tok = strtok_r(NULL, " ", &save))
    argv[argc++] = tok;
  argv[argc++] = (char *)nct_netcore_path();
  for (int i = 0; args && args[i] && argc < 47; i++) argv[argc++] = (char *)args[i];
  argv[argc] = NULL;
  pid_t pid = fork();
  if (pid < 0) nct_fail("fork: %s", strerror(errno));
  if (pid == 0) {
    int fd = open(p->errfile, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || dup2(fd, 2) < 0) _exit(126);
    syscall(SYS_close_range, 3, ~0U, 0);
    unsetenv("NETCORE_ENDPOINT");
    if (xdg) setenv("XDG_RUNTIME_DIR", xdg, 1);
    else unsetenv("XDG_RUNTIME_DIR");
    execvp(argv[0], argv);
    _exit(127);
  }
  p->pid = pid;
  return p;
}

/* Waits up to ms for p to exit; returns 1 if it did (status kept). */
static int reap(proc *p, int ms) {
  uint64_t deadline = nct_now_ms() + (uint64_t)ms;
  while (p->pid > 0) {
    if (waitpid(p->pid, &p->status, WNOHANG) == p->pid) p->pid = 0;
    else if (nct_now_ms() > deadline) return 0;
    else sleep_ms(5);
  }
  return 1;
}

/* Everything p wrote on stderr so far. */
static const char *errtext(const proc *p, char *buf, size_t cap) {
  buf[0] = '\0';
  FILE *fp = fopen(p->errfile, "r");
  if (!fp) return buf;
  size_t n = fread(buf, 1, cap - 1, fp);
  buf[n] = '\0';
  fclose(fp);
  return buf;
}

/* Asserts that p exits non-zero within the wait and that its stderr says
 * each of the NULL-terminated phrases. */
static void expect_refusal_at(const char *file, int line, proc *p, const char *const *says) {
  char err[4096];
  if (!reap(p, NCT_WAIT)) nct_fail_at(file, line, "netcore should have refused to start");
  errtext(p, err, sizeof err);
  if (!WIFEXITED(p->status) || WEXITSTATUS(p->status) == 0)
    nct_fail_at(file, line, "netcore exited with status 0x%x, want a non-zero exit; stderr: %s",
                p->status, err);
  for (int i = 0; says[i]; i++)
    if (!strstr(err, says[i]))
      nct_fail_at(file, line, "netcore's stderr does not say \"%s\": %s", says[i], err);
}
#define expect_refusal(p, ...) \
  expect_refusal_at(__FILE__, __LINE__, p, (const char *const[]){__VA_ARGS__, NULL})

/* A handler says Hello at endpoint and gets Welcome: someone serves it. */
static void expect_serves_at(const char *file, int line, const char *endpoint) {
  nct_client *c = nct_client_new(endpoint, "ep-probe", 0);
  nct_hello_at(file, line, c, 0, 0);
  nct_client_bye(c);
}
#define expect_serves(ep) expect_serves_at(__FILE__, __LINE__, ep)

/* SIGTERM (or sig), exit 0 within the wait. */
static void stop_at(const char *file, int line, proc *p, int sig) {
  kill(p->pid, sig);
  if (!reap(p, 15000 * nct_time_scale)) nct_fail_at(file, line, "netcore did not stop");
  if (!WIFEXITED(p->status) || WEXITSTATUS(p->status) != 0) {
    char err[4096];
    nct_fail_at(file, line, "netcore exited with status 0x%x after signal %d; stderr: %s",
                p->status, sig, errtext(p, err, sizeof err));
  }
}
#define stop(p, sig) stop_at(__FILE__, __LINE__, p, sig)

static int exists(const char *path) {
  struct stat st;
  return lstat(path, &st) == 0;
}

static mode_t mode_of(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0) nct_fail("stat %s: %s", path, strerror(errno));
  return st.st_mode;
}

static ino_t ino_of(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0) nct_fail("stat %s: %s", path, strerror(errno));
  return st.st_ino;
}

/* A UNIX socket file at path that nobody listens on any more (what a killed
 * server leaves behind). */
static void make_stale_socket(const char *path) {
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof sa.sun_path) nct_fail("path too long: %s", path);
  memcpy(sa.sun_path, path, strlen(path) + 1);
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) nct_fail("bind %s: %s", path, strerror(errno));
  close(fd);
}

/* ------------------------------------------------------------ tests */

/* A second netcore on the path of a live one exits non-zero, names the first
 * one's pid, and leaves the first one serving on the same socket file. */
static void test_endpoint_double_start_refused(void **state) {
  fixture *f = *state;
  nct_env *e = f->env;
  nct_env_start(e, NULL);
  nct_env_bystander_start(e);
  const char *path = e->d.endpoint + strlen("ipc://");
  ino_t before = ino_of(path);

  proc *second = spawn(f, NULL, (const char *const[]){"--bind", e->d.endpoint, NULL});
  char want[256], pid[32];
  snprintf(want, sizeof want, "EADDRINUSE: another process serves %s", e->d.endpoint);
  snprintf(pid, sizeof pid, "(pid %ld)", (long)e->d.pid);
  expect_refusal(second, want, pid);

  assert_true(ino_of(path) == before); /* not unlinked and bound over */
  expect_serves(e->d.endpoint);
  nct_env_bystander_check(e);
  nct_env_finish(e);
}

/* Several netcores started at the same moment on one path: exactly one goes
 * on (the lock file, not luck, decides), the others say EADDRINUSE. */
static void test_endpoint_simultaneous_starts_one_wins(void **state) {
  fixture *f = *state;
  char ep[160];
  snprintf(ep, sizeof ep, "ipc://%s/race.sock", f->dir);
  enum { N = 4 };
  proc *p[N];
  for (int i = 0; i < N; i++)
    p[i] = spawn(f, NULL, (const char *const[]){"--bind", ep, "--log-level", "warn", NULL});
  expect_serves(ep);
  uint64_t deadline = nct_now_ms() + NCT_WAIT;
  int alive;
  for (;;) {
    alive = 0;
    for (int i = 0; i < N; i++) alive += !reap(p[i], 0);
    if (alive <= 1 || nct_now_ms() > deadline) break;
    sleep_ms(10);
  }
  assert_int_equal(alive, 1);
  proc *winner = NULL;
  for (int i = 0; i < N; i++) {
    if (p[i]->pid > 0) {
      winner = p[i];
      continue;
    }
    expect_refusal(p[i], "EADDRINUSE: another process serves");
  }
  expect_serves(ep); /* still the winner's: nobody took the path from it */
  stop(winner, SIGTERM);
  assert_false(exists(ep + 6));
}

/* A socket file nobody listens on is taken over: one a killed netcore left
 * (with its lock file), and one of some other dead program. */
static void test_endpoint_stale_socket_taken_over(void **state) {
  fixture *f = *state;
  char ep[160], lock[200];
  snprintf(ep, sizeof ep, "ipc://%s/stale.sock", f->dir);
  snprintf(lock, sizeof lock, "%s.lock", ep + 6);
  const char *const args[] = {"--bind", ep, "--log-level", "warn", NULL};

  proc *first = spawn(f, NULL, args);
  expect_serves(ep);
  kill(first->pid, SIGKILL);
  reap(first, NCT_WAIT);
  assert_true(exists(ep + 6)); /* SIGKILL: nobody removed them */
  assert_true(exists(lock));
  proc *second = spawn(f, NULL, (const char *const[]){"--bind", ep, NULL}); /* info: */
  expect_serves(ep);
  char err[4096], want[256];
  snprintf(want, sizeof want, "removed the stale socket file %s", ep + 6);
  if (!strstr(errtext(second, err, sizeof err), want))
    nct_fail("netcore's log does not say \"%s\": %s", want, err);
  stop(second, SIGTERM);

  make_stale_socket(ep + 6);
  proc *third = spawn(f, NULL, args);
  expect_serves(ep);
  stop(third, SIGINT);
  assert_false(exists(ep + 6));
}

/* Something that is not netcore listens on the path: netcore does not take
 * the path from it, and names its pid (the kernel's peer credentials). */
static void test_endpoint_foreign_listener_refused(void **state) {
  fixture *f = *state;
  char ep[160], pid[32];
  snprintf(ep, sizeof ep, "ipc://%s/taken.sock", f->dir);
  int lfd = nct_unix_listen(ep + 6);
  ino_t ino = ino_of(ep + 6);
  proc *p = spawn(f, NULL, (const char *const[]){"--bind", ep, NULL});
  snprintf(pid, sizeof pid, "(pid %ld)", (long)getpid());
  expect_refusal(p, "EADDRINUSE", pid);
  assert_true(ino_of(ep + 6) == ino);
  int c = nct_unix_connect(ep + 6); /* still ours */
  close(c);
  close(lfd);
}

/* A file that is not a socket is never replaced (libzmq would unlink it). */
static void test_endpoint_regular_file_not_replaced(void **state) {
  fixture *f = *state;
  char ep[160];
  snprintf(ep, sizeof ep, "ipc://%s/data", f->dir);
  FILE *fp = fopen(ep + 6, "w");
  fputs("precious", fp);
  fclose(fp);
  proc *p = spawn(f, NULL, (const char *const[]){"--bind", ep, NULL});
  expect_refusal(p, "EEXIST", "is not a socket");
  char buf[16] = "";
  fp = fopen(ep + 6, "r");
  assert_non_null(fp);
  assert_non_null(fgets(buf, sizeof buf, fp));
  fclose(fp);
  assert_string_equal(buf, "precious");
}

/* SIGTERM and SIGINT both end with the socket file and its lock removed. */
static void test_endpoint_files_removed_on_exit(void **state) {
  fixture *f = *state;
  const int sigs[] = {SIGTERM, SIGINT};
  for (int i = 0; i < 2; i++) {
    char ep[160], lock[200];
    snprintf(ep, sizeof ep, "ipc://%s/exit%d.sock", f->dir, i);
    snprintf(lock, sizeof lock, "%s.lock", ep + 6);
    proc *p = spawn(f, NULL, (const char *const[]){"--bind", ep, "--log-level", "warn", NULL});
    expect_serves(ep);
    assert_true(exists(ep + 6));
    assert_true(exists(lock));
    assert_int_equal(mode_of(ep + 6) & 0777, 0600); /* not the umask's */
    stop(p, sigs[i]);
    if (exists(ep + 6) || exists(lock))
      nct_fail("after signal %d: %s %s, %s %s", sigs[i], ep + 6,
               exists(ep + 6) ? "left" : "gone", lock, exists(lock) ? "left" : "gone");
  }
}

/* No --bind, no NETCORE_ENDPOINT: the endpoint is
 * $XDG_RUNTIME_DIR/netcore/netcore.sock in a directory netcore makes 0700,
 * the socket 0600; with --group-access 0750 and 0660 (an existing directory
 * of netcore's own gets the wanted mode). */
static void test_endpoint_default_path_and_modes(void **state) {
  fixture *f = *state;
  char xdg[96], dir[128], sock[160], ep[176];
  snprintf(xdg, sizeof xdg, "%s/run", f->dir);
  assert_int_equal(mkdir(xdg, 0700), 0);
  snprintf(dir, sizeof dir, "%s/netcore", xdg);
  snprintf(sock, sizeof sock, "%s/netcore.sock", dir);
  snprintf(ep, sizeof ep, "ipc://%s", sock);

  /* A trailing slash changes nothing. */
  char xdg_slash[100];
  snprintf(xdg_slash, sizeof xdg_slash, "%s/", xdg);
  proc *p = spawn(f, xdg_slash, (const char *const[]){"--log-level", "warn", NULL});
  expect_serves(ep);
  assert_int_equal(mode_of(dir) & 07777, 0700);
  assert_true(S_ISSOCK(mode_of(sock)));
  assert_int_equal(mode_of(sock) & 0777, 0600);
  stop(p, SIGTERM);
  assert_false(exists(sock));
  assert_true(exists(dir)); /* the directory stays, ready for the next start */

  p = spawn(f, xdg, (const char *const[]){"--group-access", "--log-level", "warn", NULL});
  expect_serves(ep);
  assert_int_equal(mode_of(dir) & 07777, 0750);
  assert_int_equal(mode_of(sock) & 0777, 0660);
  stop(p, SIGTERM);

  /* Named explicitly, the default endpoint gets the same care. */
  assert_int_equal(chmod(dir, 0755), 0);
  p = spawn(f, xdg, (const char *const[]){"--bind", ep, "--log-level", "warn", NULL});
  expect_serves(ep);
  assert_int_equal(mode_of(dir) & 07777, 0700);
  stop(p, SIGTERM);
}

/* The default endpoint's directory must be netcore's own: one others may
 * write to, one of another user, or a symlink is refused before anything is
 * bound. */
static void test_endpoint_unsafe_directory_refused(void **state) {
  fixture *f = *state;
  char xdg[96], dir[128], sock[160];
  snprintf(xdg, sizeof xdg, "%s/run", f->dir);
  assert_int_equal(mkdir(xdg, 0700), 0);
  snprintf(dir, sizeof dir, "%s/netcore", xdg);
  snprintf(sock, sizeof sock, "%s/netcore.sock", dir);

  assert_int_equal(mkdir(dir, 0700), 0);
  assert_int_equal(chmod(dir, 0777), 0);
  proc *p = spawn(f, xdg, NULL);
  expect_refusal(p, "EACCES", "others may write", dir);
  assert_false(exists(sock));
  assert_int_equal(mode_of(dir) & 07777, 0777); /* reported, not silently "fixed" */

  assert_int_equal(chmod(dir, 0720), 0); /* group-writable is others too */
  p = spawn(f, xdg, NULL);
  expect_refusal(p, "EACCES", "others may write");

  if (geteuid() == 0) {
    assert_int_equal(chmod(dir, 0700), 0);
    assert_int_equal(chown(dir, 65534, 65534), 0);
    p = spawn(f, xdg, NULL);
    expect_refusal(p, "EACCES", "belongs to uid 65534");
    assert_false(exists(sock));
  } else {
    print_message("(not root: the directory of another user is not tried)\n");
  }
  rm_rf(dir);

  char target[128];
  snprintf(target, sizeof target, "%s/elsewhere", f->dir);
  assert_int_equal(mkdir(target, 0700), 0);
  assert_int_equal(symlink(target, dir), 0);
  p = spawn(f, xdg, NULL);
  expect_refusal(p, "is not a directory netcore can use");

  /* A parent that anyone may write to (without the sticky bit) lets others
   * swap the directory: refused too. */
  assert_int_equal(unlink(dir), 0);
  assert_int_equal(chmod(xdg, 0777), 0);
  p = spawn(f, xdg, NULL);
  expect_refusal(p, "EACCES", "lets another user replace");
  assert_false(exists(dir));
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_endpoint_double_start_refused, fixture_setup,
                                      fixture_teardown),
      cmocka_unit_test_setup_teardown(test_endpoint_simultaneous_starts_one_wins, fixture_setup,
                                      fixture_teardown),
      cmocka_unit_test_setup_teardown(test_endpoint_stale_socket_taken_over, fixture_setup,
                                      fixture_teardown),
      cmocka_unit_test_setup_teardown(test_endpoint_foreign_listener_refused, fixture_setup,
                                      fixture_teardown),
      cmocka_unit_test_setup_teardown(test_endpoint_regular_file_not_replaced, fixture_setup,
                                      fixture_teardown),
      cmocka_unit_test_setup_teardown(test_endpoint_files_removed_on_exit, fixture_setup,
                                      fixture_teardown),
      cmocka_unit_test_setup_teardown(test_endpoint_default_path_and_modes, fixture_setup,
                                      fixture_teardown),
      cmocka_unit_test_setup_teardown(test_endpoint_unsafe_directory_refused, fixture_setup,
                                      fixture_teardown),
  };
  return NCT_RUN(argc, argv, tests);
}
