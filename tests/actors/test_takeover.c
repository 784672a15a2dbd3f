/* netcore --takeover under the example echo actors as real processes
 * (PROTOCOL.md 16). argv[1] picks the echo: "c", "python" or "node". 20
 * clients stream a position-dependent pattern; mid-stream a new netcore
 * takes over. Checked for every connection: exactly one greeting, every byte
 * back exactly once and in order, no reset, a clean end after the client's
 * half-close, no stall over 2 s; the old netcore exits 0, the same echo
 * process serves on, and new clients connect afterwards.
 *  - takeover with a --service echo and with a --group echo;
 *  - a would-be new netcore that takes the state and dies before its ack, and
 *    one with another --bind list (it refuses): the old one serves on;
 *  - the session resumes (PROTOCOL.md 16.1): a plain echo (no service, no
 *    group) and a --service one keep their connections as the same objects:
 *    the echo (SIGUSR1) counts no 'connection' event but the clients' and the
 *    fresh one's, and no adopted one; NETCORE_RESUME=0 gets adoption instead. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nct.h"
#include "streamers.h"

static nct_netcore_t d;
static pid_t old_pid; /* the netcore taken over, until reaped */

/* Whatever a test started and did not stop (it failed half-way): the echo,
 * the old and the new netcore, killed and reaped. */
static int teardown(void **state) {
  actors_teardown(state);
  if (old_pid > 0) {
    kill(old_pid, SIGKILL);
    waitpid(old_pid, NULL, 0);
    nct_forget(old_pid);
    old_pid = 0;
  }
  nct_netcore_stop(&d);
  return 0;
}

/* Starts netcore --takeover on d's endpoint; the old one must exit 0. */
static void takeover(void *arg) {
  (void)arg;
  old_pid = d.pid;
  const char *flags[] = {"--takeover", "--handoff-ms", "5000", NULL};
  d.pid = 0; /* the new one is started while the old one runs */
  nct_netcore_restart(&d, flags);
  int status = 0;
  uint64_t deadline = nct_now_ms() + 10000;
  while (waitpid(old_pid, &status, WNOHANG) == 0) {
    if (nct_now_ms() > deadline) fail_msg("the old netcore did not exit within 10 s of the takeover");
    usleep(2000);
  }
  nct_forget(old_pid);
  old_pid = 0;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    fail_msg("the old netcore ended with status 0x%x", status);
}

/* <path>.takeover beside d's endpoint. */
static void takeover_path(char *out, size_t cap) {
  if (snprintf(out, cap, "%.96s.takeover", d.endpoint + strlen("ipc://")) >= (int)cap)
    fail_msg("endpoint path too long");
}

/* A new netcore that dies before acknowledging: it says Hello, reads part
 * of the state (the old one has stopped and shipped) and closes. */
static void fake_new_dies(void *arg) {
  (void)arg;
  struct sockaddr_un sun = {.sun_family = AF_UNIX};
  takeover_path(sun.sun_path, sizeof sun.sun_path);
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  if (connect(fd, (struct sockaddr *)&sun, sizeof sun) != 0)
    fail_msg("connect %s: %s", sun.sun_path, strerror(errno));
  /* Hello: version 1 and the same single --bind. */
  uint8_t rec[512];
  size_t elen = strlen(d.endpoint), n = 0;
  uint32_t len = (uint32_t)(1 + 4 + 4 + 4 + elen);
  memcpy(rec + n, &len, 4), n += 4;
  rec[n++] = 'H';
  uint32_t v = 1, nb = 1, el = (uint32_t)elen;
  memcpy(rec + n, &v, 4), n += 4;
  memcpy(rec + n, &nb, 4), n += 4;
  memcpy(rec + n, &el, 4), n += 4;
  memcpy(rec + n, d.endpoint, elen), n += elen;
  if (write(fd, rec, n) != (ssize_t)n) fail_msg("write Hello: %s", strerror(errno));
  char got[64];
  if (nct_read_all(fd, got, sizeof got, 5000) <= 0) fail_msg("no state from the old netcore");
  close(fd); /* "killed" before the ack; its fds die with it */
}

/* Child setup of a netcore whose complaints are expected: stderr to /dev/null. */
static void quiet_child(void *ctx) {
  (void)ctx;
  nct_child_env();
  int null = open("/dev/null", O_WRONLY);
  dup2(null, 2);
}

/* A new netcore with another --bind list refuses (exit 1); the old serves on. */
static void new_with_other_binds(void *arg) {
  (void)arg;
  char other[300];
  snprintf(other, sizeof other, "%s2", d.endpoint);
  const char *argv[] = {nct_netcore_bin(), "--bind", d.endpoint, "--bind", other, "--takeover",
                        NULL};
  nct_launch refused = {0};
  if (nct_launch_spawn(&refused, (char *const *)argv, NULL, quiet_child, NULL) != 0)
    fail_msg("fork: %s", strerror(errno));
  int status = nct_launch_stop(&refused, 0, 10000, NULL); /* signal 0: only waits */
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 1)
    fail_msg("netcore --takeover with another --bind list ended with 0x%x, not exit 1", status);
  if (kill(d.pid, 0) != 0) fail_msg("the old netcore is gone");
}

/* The echo's 'connection' events so far, and how many were adopted ones. */
static void echo_counts(actor_t *a, unsigned long *conns, unsigned long *adopted) {
  if (kill(a->pid, SIGUSR1) != 0) fail_msg("SIGUSR1 to the echo: %s", strerror(errno));
  char line[256];
  /* Other lines may come first ("listening" again, after a relisten). */
  do {
    size_t k = 0;
    while (k + 1 < sizeof line) {
      struct pollfd p = {.fd = a->out, .events = POLLIN};
      if (poll(&p, 1, 5000) <= 0) fail_msg("the echo did not print its counts");
      if (read(a->out, line + k, 1) != 1) fail_msg("the echo's stdout closed");
      if (line[k] == '\n') break;
      k++;
    }
    line[k] = '\0';
  } while (sscanf(line, "echo connections %lu adopted %lu", conns, adopted) != 2);
}

static void greeted_fresh(int port) {
  int fresh = nct_tcp_connect(port);
  char g[8];
  assert_int_equal(nct_read_all(fresh, g, 7, 5000), 7);
  assert_memory_equal(g, greeting, 7);
  close(fresh);
}

/* What a trigger gets: the echo and the clients. */
typedef struct {
  actor_t *a;
  client_t *c;
} run_t;

/* Connections takeover_adopted saw open at its takeover: the echo must adopt them all. */
static unsigned long adoptions_due;

/* NETCORE_RESUME=0: the takeover, then, while the clients wait, until the
 * echo has adopted every connection that was surely open at the takeover (its
 * client had not had every byte back). The echo's pipes run inside netcore
 * (PROTOCOL.md 17) and echo without it, so clients that went on streaming
 * could be done and gone before it came back (and a few may be done before
 * the takeover); an echo that never comes back fails here (issue 12: the
 * Node.js library's ZeroMQ I/O thread blocked for good, its link never
 * reached the new netcore). */
static void takeover_adopted(void *arg) {
  run_t *r = arg;
  unsigned long open = 0;
  for (int i = 0; i < NCLIENTS; i++)
    if (r->c[i].got < TOTAL) open++;
  takeover(NULL);
  adoptions_due += open;
  uint64_t deadline = nct_now_ms() + 5000;
  unsigned long conns = 0, adopted = 0;
  for (;;) {
    echo_counts(r->a, &conns, &adopted);
    if (adopted >= adoptions_due) return;
    if (nct_now_ms() > deadline)
      fail_msg("the echo adopted %lu of the %lu connections open at the takeover within 5 s",
               adopted, adoptions_due);
    usleep(10000);
  }
}

/* fn once the clients have sent a third of their bytes, and again at two
 * thirds if twice. */
/* What run_takeovers checks of the echo's 'connection' events afterwards. */
enum { COUNT_ANY, COUNT_RESUMED, COUNT_ADOPTED };
static int expect_count = COUNT_ANY;

static void run_takeovers(const char *kind, const char *name, void (*fn)(void *), int twice) {
  nct_netcore_start(&d, (const char *const[]){"--handoff-ms", "5000", NULL});
  actor_t a;
  const char *args0[] = {"--port", "0", "--host", "127.0.0.1", kind, name, NULL};
  if (kind == NULL) args0[4] = NULL;
  int port = echo_start(&a, d.endpoint, args0);
  client_t c[NCLIENTS];
  clients_connect(c, port);
  run_t r = {&a, c};
  adoptions_due = 0;
  trigger_t t[] = {{.at = NCLIENTS * TOTAL / 3, .fn = fn, .arg = &r},
                   {.at = NCLIENTS * TOTAL / 3 * 2, .fn = fn, .arg = &r}};
  clients_run(c, t, twice ? 2 : 1);
  uint64_t gap = 0;
  for (int i = 0; i < NCLIENTS; i++)
    if (c[i].max_gap > gap) gap = c[i].max_gap;
  print_message("%s echo: longest pause a client saw: %llu ms\n", lang, (unsigned long long)gap);
  if (kill(a.pid, 0) != 0) fail_msg("the echo process is gone");
  greeted_fresh(port);
  if (expect_count != COUNT_ANY) {
    unsigned long conns = 0, adopted = 0;
    echo_counts(&a, &conns, &adopted);
    print_message("%s echo: %lu 'connection' events, %lu adopted\n", lang, conns, adopted);
    if (expect_count == COUNT_RESUMED) {
      assert_int_equal(adopted, 0);
      assert_int_equal(conns, NCLIENTS + 1); /* the clients and the fresh one, each once */
    } else {
      /* Each connection open at the takeover once; those that were done
       * (echoed by the pipe inside netcore) before it, not at all. */
      if (adopted < adoptions_due || adopted > (unsigned long)NCLIENTS * (twice ? 2 : 1))
        fail_msg("%lu adopted connections: not between %lu and %d", adopted, adoptions_due,
                 NCLIENTS * (twice ? 2 : 1));
    }
  }
  echo_stop(&a, SIGKILL);
  nct_netcore_stop(&d);
}

static void test_takeover_service(void **state) {
  run_takeovers("--service", "echo1", takeover, 0);
}
static void test_takeover_group(void **state) { run_takeovers("--group", "g", takeover, 0); }
/* Two takeovers in a row: the echo rejoins each new netcore. */
static void test_takeover_twice(void **state) { run_takeovers("--service", "echo1", takeover, 1); }
static void test_takeover_new_dies(void **state) {
  run_takeovers("--service", "echo1", fake_new_dies, 0);
}
static void test_takeover_refused(void **state) {
  run_takeovers("--service", "echo1", new_with_other_binds, 0);
}
/* The session resumes: no new 'connection', none adopted; twice in a row. */
static void test_takeover_resume_plain(void **state) {
  expect_count = COUNT_RESUMED;
  run_takeovers(NULL, NULL, takeover, 1);
  expect_count = COUNT_ANY;
}
static void test_takeover_resume_service(void **state) {
  expect_count = COUNT_RESUMED;
  run_takeovers("--service", "echo1", takeover, 0);
  expect_count = COUNT_ANY;
}
/* NETCORE_RESUME=0: the echo's connections are adopted, as before 1.3, with
 * the echoes' pipes inside netcore (takeover_adopted). */
static void test_takeover_no_resume(void **state) {
  setenv("NETCORE_RESUME", "0", 1);
  expect_count = COUNT_ADOPTED;
  run_takeovers("--service", "echo1", takeover_adopted, 0);
  expect_count = COUNT_ANY;
  unsetenv("NETCORE_RESUME");
}

int main(int argc, char **argv) {
  if (argc > 1) lang = argv[1];
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest c_tests[] = {
      cmocka_unit_test_teardown(test_takeover_service, teardown),
      cmocka_unit_test_teardown(test_takeover_group, teardown),
      cmocka_unit_test_teardown(test_takeover_twice, teardown),
      cmocka_unit_test_teardown(test_takeover_new_dies, teardown),
      cmocka_unit_test_teardown(test_takeover_refused, teardown),
      cmocka_unit_test_teardown(test_takeover_resume_plain, teardown),
      cmocka_unit_test_teardown(test_takeover_resume_service, teardown),
      cmocka_unit_test_teardown(test_takeover_no_resume, teardown),
  };
  const struct CMUnitTest other_tests[] = {
      cmocka_unit_test_teardown(test_takeover_service, teardown),
      cmocka_unit_test_teardown(test_takeover_group, teardown),
      cmocka_unit_test_teardown(test_takeover_twice, teardown),
      cmocka_unit_test_teardown(test_takeover_resume_plain, teardown),
      cmocka_unit_test_teardown(test_takeover_no_resume, teardown),
  };
  if (strcmp(lang, "c") == 0) return cmocka_run_group_tests_name("takeover_c", c_tests, NULL, NULL);
  return cmocka_run_group_tests_name(lang, other_tests, NULL, NULL);
}
