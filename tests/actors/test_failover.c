/* Connections outlive their handler, with the example echo actors as real
 * processes (PROTOCOL.md 13). argv[1] picks the echo: "c", "python" or
 * "node". Every test streams a position-dependent pattern from 20 clients
 * and checks, for every connection: exactly one greeting, every byte back
 * exactly once and in order, a clean end after the client's half-close, and
 * no stall over 2 s.
 *  - kill -9 of one of two members of a group, mid-stream;
 *  - a rolling restart: a third member starts, the second gets SIGTERM;
 *  - one ungrouped echo with --service, killed and restarted within
 *    --handoff-ms: its connections resume; restarted after it: they were
 *    closed, the port is free and the new echo listens. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nct.h"

static const char *lang = "c";

typedef struct {
  pid_t pid;
  int out;
} actor_t;

/* Starts the chosen echo with args and waits for its "listening" line;
 * returns the port it reports. */
static int echo_start(actor_t *a, const char *endpoint, const char *const *args) {
  const char *argv[24];
  int n = 0;
  if (strcmp(lang, "python") == 0) {
    argv[n++] = "/usr/bin/python3";
    argv[n++] = PY_ECHO;
  } else if (strcmp(lang, "node") == 0) {
    argv[n++] = NODE_BIN;
    argv[n++] = NODE_ECHO;
  } else {
    argv[n++] = ECHO_BIN;
  }
  argv[n++] = "--endpoint";
  argv[n++] = endpoint;
  for (int i = 0; args[i] != NULL && n < 23; i++) argv[n++] = args[i];
  argv[n] = NULL;
  int out[2];
  if (pipe(out) != 0) fail_msg("pipe: %s", strerror(errno));
  a->pid = fork();
  if (a->pid == 0) {
    nct_child_env();
    dup2(out[1], 1);
    close(out[0]);
    execvp(argv[0], (char *const *)argv);
    _exit(127);
  }
  close(out[1]);
  a->out = out[0];
  char line[512];
  size_t k = 0;
  while (k + 1 < sizeof line) {
    struct pollfd p = {.fd = a->out, .events = POLLIN};
    if (poll(&p, 1, 20000) <= 0) fail_msg("%s echo printed no line within 20 s", lang);
    if (read(a->out, line + k, 1) != 1) fail_msg("%s echo ended before listening", lang);
    if (line[k] == '\n') break;
    k++;
  }
  line[k] = '\0';
  const char *p = strstr(line, "\"port\":");
  if (p == NULL) fail_msg("no port in '%s'", line);
  return atoi(p + 7);
}

/* Signals the actor and reaps it (SIGKILL after 10 s); returns the status. */
static int echo_stop(actor_t *a, int sig) {
  kill(a->pid, sig);
  uint64_t deadline = nct_now_ms() + 10000;
  int status = 0;
  while (waitpid(a->pid, &status, WNOHANG) == 0) {
    if (nct_now_ms() > deadline) {
      kill(a->pid, SIGKILL);
      waitpid(a->pid, &status, 0);
      fail_msg("%s echo did not exit within 10 s of signal %d", lang, sig);
    }
    usleep(2000);
  }
  close(a->out);
  return status;
}

/* ------------------------------------------------------------------ clients */

#define NCLIENTS 20
#define TOTAL (512u * 1024) /* bytes each client streams */
#define CHUNK 4096
#define WINDOW (64u * 1024) /* bytes a client has in flight at most */
#define STALL_MS 2000

static const char greeting[] = "hello\r\n";

typedef struct {
  int fd;
  size_t sent, got, greet;
  int shut, done;
  uint64_t last;
} client_t;

static uint8_t pat(size_t i) { return (uint8_t)(i * 7 + (i >> 9) + (i >> 17)); }

/* Something to do once the clients have sent `at` bytes in all. */
typedef struct {
  size_t at;
  void (*fn)(void *);
  void *arg;
  int fired;
} trigger_t;

static void clients_connect(client_t *c, int port) {
  for (int i = 0; i < NCLIENTS; i++) {
    memset(&c[i], 0, sizeof c[i]);
    c[i].fd = nct_tcp_connect(port);
    fcntl(c[i].fd, F_SETFL, fcntl(c[i].fd, F_GETFL) | O_NONBLOCK);
    c[i].last = nct_now_ms();
  }
}

/* Streams the pattern on every client until all have their bytes back and
 * the echo's end; fires the triggers on the way. */
static void clients_run(client_t *c, trigger_t *t, int nt) {
  uint8_t buf[CHUNK];
  int left = NCLIENTS;
  while (left > 0) {
    size_t total = 0;
    for (int i = 0; i < NCLIENTS; i++) total += c[i].sent;
    for (int k = 0; k < nt; k++)
      if (!t[k].fired && total >= t[k].at) {
        t[k].fired = 1;
        t[k].fn(t[k].arg);
        for (int i = 0; i < NCLIENTS; i++) c[i].last = nct_now_ms(); /* our pause, not a stall */
      }
    struct pollfd p[NCLIENTS];
    for (int i = 0; i < NCLIENTS; i++) {
      p[i].fd = c[i].done ? -1 : c[i].fd;
      p[i].events = POLLIN | (c[i].sent < TOTAL && c[i].sent - c[i].got < WINDOW ? POLLOUT : 0);
    }
    poll(p, NCLIENTS, 50);
    uint64_t now = nct_now_ms();
    for (int i = 0; i < NCLIENTS; i++) {
      client_t *x = &c[i];
      if (x->done) continue;
      if ((p[i].revents & POLLOUT) && x->sent < TOTAL) {
        size_t n = TOTAL - x->sent < CHUNK ? TOTAL - x->sent : CHUNK;
        for (size_t j = 0; j < n; j++) buf[j] = pat(x->sent + j);
        ssize_t w = write(x->fd, buf, n);
        if (w > 0) x->sent += (size_t)w;
      }
      if (x->sent == TOTAL && !x->shut) {
        shutdown(x->fd, SHUT_WR);
        x->shut = 1;
      }
      if (p[i].revents & (POLLIN | POLLHUP | POLLERR)) {
        ssize_t r = read(x->fd, buf, sizeof buf);
        if (r > 0) {
          x->last = now;
          size_t j = 0;
          for (; j < (size_t)r && x->greet < sizeof greeting - 1; j++, x->greet++)
            if (buf[j] != (uint8_t)greeting[x->greet])
              fail_msg("client %d: byte %zu of the greeting is 0x%02x", i, x->greet, buf[j]);
          for (; j < (size_t)r; j++, x->got++)
            if (x->got >= TOTAL || buf[j] != pat(x->got))
              fail_msg("client %d: echoed byte %zu is 0x%02x, expected 0x%02x (lost, repeated "
                       "or a second greeting)", i, x->got, buf[j], x->got < TOTAL ? pat(x->got) : 0);
        } else if (r == 0) {
          if (x->got != TOTAL)
            fail_msg("client %d: the echo ended after %zu of %u bytes", i, x->got, TOTAL);
          x->done = 1;
          left--;
          close(x->fd);
        } else if (errno != EAGAIN) {
          fail_msg("client %d: %s after %zu of %u bytes", i, strerror(errno), x->got, TOTAL);
        }
      }
      if (!x->done && now - x->last > STALL_MS)
        fail_msg("client %d stalled for %d ms at %zu of %u bytes back", i, STALL_MS, x->got, TOTAL);
    }
  }
}

static void kill9(void *arg) {
  actor_t *a = arg;
  echo_stop(a, SIGKILL);
}

static void sigterm(void *arg) {
  actor_t *a = arg;
  int status = echo_stop(a, SIGTERM);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    fail_msg("%s echo exited with status 0x%x on SIGTERM", lang, status);
}

typedef struct {
  actor_t *a;
  const char *endpoint;
  const char *const *args;
} start_arg_t;

static void start_member(void *arg) {
  start_arg_t *s = arg;
  echo_start(s->a, s->endpoint, s->args);
}

/* ------------------------------------------------------------------- tests */

static void test_failover_group_kill9(void **state) {
  (void)state;
  nct_netcore_t d;
  nct_netcore_start(&d, NULL);
  actor_t a, b;
  const char *args0[] = {"--port", "0", "--host", "127.0.0.1", "--group", "g", NULL};
  int port = echo_start(&a, d.endpoint, args0);
  char ps[16];
  snprintf(ps, sizeof ps, "%d", port);
  const char *args[] = {"--port", ps, "--host", "127.0.0.1", "--group", "g", NULL};
  echo_start(&b, d.endpoint, args);
  client_t c[NCLIENTS];
  clients_connect(c, port);
  trigger_t t[] = {{.at = NCLIENTS * TOTAL / 3, .fn = kill9, .arg = &b}};
  clients_run(c, t, 1);
  echo_stop(&a, SIGKILL);
  nct_netcore_stop(&d);
}

static void test_failover_rolling_restart(void **state) {
  (void)state;
  nct_netcore_t d;
  nct_netcore_start(&d, NULL);
  actor_t a, b, c3;
  const char *args0[] = {"--port", "0", "--host", "127.0.0.1", "--group", "g", NULL};
  int port = echo_start(&a, d.endpoint, args0);
  char ps[16];
  snprintf(ps, sizeof ps, "%d", port);
  const char *args[] = {"--port", ps, "--host", "127.0.0.1", "--group", "g", NULL};
  echo_start(&b, d.endpoint, args);
  client_t c[NCLIENTS];
  clients_connect(c, port);
  start_arg_t third = {&c3, d.endpoint, args};
  trigger_t t[] = {{.at = NCLIENTS * TOTAL / 4, .fn = start_member, .arg = &third},
                   {.at = NCLIENTS * TOTAL / 2, .fn = sigterm, .arg = &b}};
  clients_run(c, t, 2);
  sigterm(&a);
  sigterm(&c3);
  nct_netcore_stop(&d);
}

typedef struct {
  actor_t *a;
  const char *endpoint;
  const char *const *args;
} restart_arg_t;

static void kill_and_restart(void *arg) {
  restart_arg_t *r = arg;
  echo_stop(r->a, SIGKILL);
  usleep(300 * 1000); /* well within --handoff-ms (5000) */
  echo_start(r->a, r->endpoint, r->args);
}

static void test_failover_service_restart(void **state) {
  (void)state;
  nct_netcore_t d;
  const char *flags[] = {"--handoff-ms", "5000", NULL};
  nct_netcore_start(&d, flags);
  actor_t a;
  const char *args0[] = {"--port", "0", "--host", "127.0.0.1", "--service", "echo1", NULL};
  int port = echo_start(&a, d.endpoint, args0);
  char ps[16];
  snprintf(ps, sizeof ps, "%d", port);
  const char *args[] = {"--port", ps, "--host", "127.0.0.1", "--service", "echo1", NULL};
  client_t c[NCLIENTS];
  clients_connect(c, port);
  restart_arg_t r = {&a, d.endpoint, args};
  trigger_t t[] = {{.at = NCLIENTS * TOTAL / 3, .fn = kill_and_restart, .arg = &r}};
  clients_run(c, t, 1);
  echo_stop(&a, SIGKILL);
  nct_netcore_stop(&d);
}

/* Restarted after --handoff-ms: the old connections were closed, the port
 * was freed, and the new echo listens on it and greets anew. */
static void test_failover_service_restart_too_late(void **state) {
  (void)state;
  nct_netcore_t d;
  const char *flags[] = {"--handoff-ms", "300", NULL};
  nct_netcore_start(&d, flags);
  actor_t a;
  const char *args0[] = {"--port", "0", "--host", "127.0.0.1", "--service", "echo1", NULL};
  int port = echo_start(&a, d.endpoint, args0);
  int old = nct_tcp_connect(port);
  char g[8];
  assert_int_equal(nct_read_all(old, g, 7, 5000), 7);
  echo_stop(&a, SIGKILL);
  char rest[8];
  uint64_t t0 = nct_now_ms();
  assert_int_equal(nct_read_all(old, rest, sizeof rest, 5000), 0); /* EOF */
  if (nct_now_ms() - t0 < 250) fail_msg("closed before --handoff-ms");
  close(old);
  char ps[16];
  snprintf(ps, sizeof ps, "%d", port);
  const char *args[] = {"--port", ps, "--host", "127.0.0.1", "--service", "echo1", NULL};
  assert_int_equal(echo_start(&a, d.endpoint, args), port);
  int fresh = nct_tcp_connect(port);
  assert_int_equal(nct_read_all(fresh, g, 7, 5000), 7);
  assert_memory_equal(g, greeting, 7);
  close(fresh);
  echo_stop(&a, SIGKILL);
  nct_netcore_stop(&d);
}

int main(int argc, char **argv) {
  if (argc > 1) lang = argv[1];
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest c_tests[] = {
      cmocka_unit_test(test_failover_group_kill9),
      cmocka_unit_test(test_failover_rolling_restart),
      cmocka_unit_test(test_failover_service_restart),
      cmocka_unit_test(test_failover_service_restart_too_late),
  };
  /* Python and Node.js: the rolling restart (and the kill, which costs
   * nothing more to run). */
  const struct CMUnitTest other_tests[] = {
      cmocka_unit_test(test_failover_group_kill9),
      cmocka_unit_test(test_failover_rolling_restart),
  };
  if (strcmp(lang, "c") == 0) return cmocka_run_group_tests_name("failover_c", c_tests, NULL, NULL);
  return cmocka_run_group_tests_name(lang, other_tests, NULL, NULL);
}
