/* netcore --takeover under the example echo actors as real processes
 * (PROTOCOL.md 14). argv[1] picks the echo: "c", "python" or "node". 20
 * clients stream a position-dependent pattern; mid-stream a new netcore
 * takes over. Checked for every connection: exactly one greeting, every byte
 * back exactly once and in order, no reset, a clean end after the client's
 * half-close, no stall over 2 s; the old netcore exits 0, the same echo
 * process serves on, and new clients connect afterwards.
 *  - takeover with a --service echo and with a --group echo;
 *  - a would-be new netcore that takes the state and dies before its ack, and
 *    one with another --bind list (it refuses): the old one serves on. */
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


static nct_netcore_t d;

/* Starts netcore --takeover on d's endpoint; the old one must exit 0. */
static void takeover(void *arg) {
  (void)arg;
  pid_t old = d.pid;
  const char *flags[] = {"--takeover", "--handoff-ms", "5000", NULL};
  d.pid = 0; /* the new one is started while the old one runs */
  nct_netcore_restart(&d, flags);
  int status = 0;
  uint64_t deadline = nct_now_ms() + 10000;
  while (waitpid(old, &status, WNOHANG) == 0) {
    if (nct_now_ms() > deadline) fail_msg("the old netcore did not exit within 10 s of the takeover");
    usleep(2000);
  }
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

/* A new netcore with another --bind list refuses (exit 1); the old serves on. */
static void new_with_other_binds(void *arg) {
  (void)arg;
  char other[300];
  snprintf(other, sizeof other, "%s2", d.endpoint);
  pid_t pid = fork();
  if (pid == 0) {
    nct_child_env();
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 2);
    execl(nct_netcore_bin(), nct_netcore_bin(), "--bind", d.endpoint, "--bind", other,
          "--takeover", (char *)NULL);
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 1)
    fail_msg("netcore --takeover with another --bind list ended with 0x%x, not exit 1", status);
  if (kill(d.pid, 0) != 0) fail_msg("the old netcore is gone");
}

static void greeted_fresh(int port) {
  int fresh = nct_tcp_connect(port);
  char g[8];
  assert_int_equal(nct_read_all(fresh, g, 7, 5000), 7);
  assert_memory_equal(g, greeting, 7);
  close(fresh);
}

static void run_takeover(const char *kind, const char *name, void (*fn)(void *)) {
  nct_netcore_start(&d, (const char *const[]){"--handoff-ms", "5000", NULL});
  actor_t a;
  const char *args0[] = {"--port", "0", "--host", "127.0.0.1", kind, name, NULL};
  int port = echo_start(&a, d.endpoint, args0);
  client_t c[NCLIENTS];
  clients_connect(c, port);
  trigger_t t[] = {{.at = NCLIENTS * TOTAL / 3, .fn = fn, .arg = NULL}};
  clients_run(c, t, 1);
  if (kill(a.pid, 0) != 0) fail_msg("the echo process is gone");
  greeted_fresh(port);
  echo_stop(&a, SIGKILL);
  nct_netcore_stop(&d);
}

static void test_takeover_service(void **state) { run_takeover("--service", "echo1", takeover); }
static void test_takeover_group(void **state) { run_takeover("--group", "g", takeover); }
static void test_takeover_new_dies(void **state) {
  run_takeover("--service", "echo1", fake_new_dies);
}
static void test_takeover_refused(void **state) {
  run_takeover("--service", "echo1", new_with_other_binds);
}

int main(int argc, char **argv) {
  if (argc > 1) lang = argv[1];
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest c_tests[] = {
      cmocka_unit_test(test_takeover_service), cmocka_unit_test(test_takeover_group),
      cmocka_unit_test(test_takeover_new_dies),
      cmocka_unit_test(test_takeover_refused),
  };
  const struct CMUnitTest other_tests[] = {
      cmocka_unit_test(test_takeover_service),
      cmocka_unit_test(test_takeover_group),
  };
  if (strcmp(lang, "c") == 0) return cmocka_run_group_tests_name("takeover_c", c_tests, NULL, NULL);
  return cmocka_run_group_tests_name(lang, other_tests, NULL, NULL);
}
