/* The C example actors as real processes against the real netcore: echo
 * (TCP and UNIX, every byte back, half-close honoured, SIGTERM exits 0,
 * netcore missing or killed exits 1), goodbye (prints its address, says
 * goodbye), proxy (100 MiB through a slow reader, identical bytes, bounded
 * memory, the bytes moved inside netcore by its two pipes: PROTOCOL.md 17), chat (everyone else gets every line; a client that does not read
 * grows nobody's memory), and their command line (--help exits 0; a bad
 * number, an unknown option or a stray argument exits 2 with Node's code). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nct.h"

typedef struct {
  pid_t pid;
  int out, err;
} actor_t;

static void actor_start(actor_t *a, const char *bin, const char *const *args) {
  int out[2], err[2];
  if (pipe(out) != 0 || pipe(err) != 0) fail_msg("pipe: %s", strerror(errno));
  const char *argv[16];
  int n = 0;
  argv[n++] = bin;
  for (int i = 0; args[i] != NULL && n < 15; i++) argv[n++] = args[i];
  argv[n] = NULL;
  a->pid = fork();
  if (a->pid == 0) {
    nct_child_env();
    dup2(out[1], 1);
    dup2(err[1], 2);
    close(out[0]);
    close(err[0]);
    execv(bin, (char *const *)argv);
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  a->out = out[0];
  a->err = err[0];
}

/* The first stdout line (without the newline). */
static void actor_line(actor_t *a, char *buf, size_t cap) {
  size_t n = 0;
  while (n + 1 < cap) {
    struct pollfd p = {.fd = a->out, .events = POLLIN};
    if (poll(&p, 1, 10000) <= 0) fail_msg("no line from the actor within 10 s");
    if (read(a->out, buf + n, 1) != 1) {
      char e[512] = "";
      ssize_t r = read(a->err, e, sizeof(e) - 1);
      e[r > 0 ? r : 0] = '\0';
      fail_msg("the actor ended before printing a line; stderr: %s", e);
    }
    if (buf[n] == '\n') break;
    n++;
  }
  buf[n] = '\0';
}

/* Waits for the exit (killing it after timeout_ms) and returns the status;
 * stderr's text goes to errtext. */
static int actor_wait(actor_t *a, int timeout_ms, char *errtext, size_t cap) {
  uint64_t deadline = nct_now_ms() + (uint64_t)timeout_ms;
  int status = 0;
  while (waitpid(a->pid, &status, WNOHANG) == 0) {
    if (nct_now_ms() > deadline) {
      kill(a->pid, SIGKILL);
      waitpid(a->pid, &status, 0);
      fail_msg("the actor did not exit within %d ms", timeout_ms);
    }
    usleep(5000);
  }
  ssize_t r = read(a->err, errtext, cap - 1);
  errtext[r > 0 ? r : 0] = '\0';
  close(a->out);
  close(a->err);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int port_of(const char *line) {
  const char *p = strstr(line, "\"port\":");
  if (p == NULL) fail_msg("no port in '%s'", line);
  return atoi(p + 7);
}

static void fill_pattern(uint8_t *p, size_t n, size_t off) {
  for (size_t i = 0; i < n; i++) p[i] = (uint8_t)((off + i) * 13 + ((off + i) >> 10));
}

static int pattern_ok(const uint8_t *p, size_t n, size_t off) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != (uint8_t)((off + i) * 13 + ((off + i) >> 10))) return 0;
  return 1;
}

/* -------------------------------------------------------------------- echo */

#define ECHO_BYTES (1u << 20)

typedef struct {
  int fd;
} writer_arg_t;

static void *echo_writer(void *arg) {
  int fd = ((writer_arg_t *)arg)->fd;
  uint8_t *all = malloc(ECHO_BYTES);
  fill_pattern(all, ECHO_BYTES, 0);
  nct_write_all(fd, all, ECHO_BYTES);
  free(all);
  shutdown(fd, SHUT_WR); /* half-close: every byte must still come back */
  return NULL;
}

static void echo_check(int fd) {
  char hello[7];
  assert_int_equal(nct_read_all(fd, hello, 7, 10000), 7);
  assert_memory_equal(hello, "hello\r\n", 7);
  writer_arg_t w = {fd};
  pthread_t th = nct_thread(echo_writer, &w);
  uint8_t *back = malloc(ECHO_BYTES + 1);
  size_t got = nct_read_all(fd, back, ECHO_BYTES + 1, 10000);
  pthread_join(th, NULL);
  assert_int_equal(got, ECHO_BYTES);
  assert_true(pattern_ok(back, got, 0));
  free(back);
  close(fd);
}

static void test_actors_echo_tcp(void **state) {
  (void)state;
  nct_netcore_t d;
  actor_t a;
  char line[256], err[1024];
  nct_netcore_start(&d, NULL);
  const char *args[] = {"--port", "0", "--host", "127.0.0.1", "--endpoint", d.endpoint, NULL};
  actor_start(&a, ECHO_BIN, args);
  actor_line(&a, line, sizeof(line));
  regex_t re;
  assert_int_equal(regcomp(&re, "^echo server listening on \\{\"address\":\"127\\.0\\.0\\.1\",\"port\":[1-9][0-9]*\\}$", REG_EXTENDED), 0);
  if (regexec(&re, line, 0, NULL, 0) != 0) fail_msg("unexpected line '%s'", line);
  regfree(&re);
  echo_check(nct_tcp_connect(port_of(line)));
  echo_check(nct_tcp_connect(port_of(line))); /* and again: the server lives on */
  kill(a.pid, SIGTERM);
  assert_int_equal(actor_wait(&a, 10000, err, sizeof(err)), 0);
  nct_netcore_stop(&d);
}

static void test_actors_echo_unix_and_netcore_killed(void **state) {
  (void)state;
  nct_netcore_t d;
  actor_t a;
  char line[512], path[200], want[400], err[1024];
  nct_netcore_start(&d, NULL);
  nct_path(&d, "echo.sock", path, sizeof(path));
  const char *args[] = {"--path", path, "--endpoint", d.endpoint, NULL};
  setenv("NETCORE_RECONNECT", "0", 1); /* libnc would reconnect by default */
  actor_start(&a, ECHO_BIN, args);
  unsetenv("NETCORE_RECONNECT");
  actor_line(&a, line, sizeof(line));
  snprintf(want, sizeof(want), "echo server listening on {\"address\":\"%s\"}", path);
  assert_string_equal(line, want);
  echo_check(nct_unix_connect(path));
  /* netcore dies under it: an error on stderr and exit status 1. */
  nct_netcore_kill(&d);
  assert_int_equal(actor_wait(&a, 15000, err, sizeof(err)), 1);
  assert_non_null(strstr(err, "ERR_NETCORE_GONE"));
  nct_netcore_stop(&d);
}

/* netcore's own SIGTERM (docker stop, systemctl stop): netcore drains and
 * announces Shutdown; the echo (reconnection off) takes that as the end of its
 * work and exits 0, so a container or unit around it ends cleanly too. */
static void test_actors_echo_netcore_shutdown_exits_0(void **state) {
  (void)state;
  nct_netcore_t d;
  actor_t a;
  char line[256], err[1024];
  nct_netcore_start(&d, NULL);
  const char *args[] = {"--port", "0", "--host", "127.0.0.1", "--endpoint", d.endpoint, NULL};
  /* Without reconnection: with it (the default) the echo waits for the next netcore. */
  setenv("NETCORE_RECONNECT", "0", 1);
  actor_start(&a, ECHO_BIN, args);
  unsetenv("NETCORE_RECONNECT");
  actor_line(&a, line, sizeof(line));
  echo_check(nct_tcp_connect(port_of(line)));
  kill(d.pid, SIGTERM);
  assert_int_equal(actor_wait(&a, 15000, err, sizeof(err)), 0);
  if (err[0] != '\0') fail_msg("unexpected stderr: %s", err);
  nct_netcore_stop(&d);
}

static void test_actors_echo_netcore_not_running(void **state) {
  (void)state;
  actor_t a;
  char err[1024];
  const char *args[] = {"--port", "0", "--endpoint", "ipc:///tmp/nct-no-netcore-here/nc.sock", NULL};
  actor_start(&a, ECHO_BIN, args);
  assert_int_equal(actor_wait(&a, 15000, err, sizeof(err)), 1);
  assert_non_null(strstr(err, "ERR_NETCORE_UNAVAILABLE"));
  assert_non_null(strstr(err, "ipc:///tmp/nct-no-netcore-here/nc.sock"));
}

/* ----------------------------------------------------------- command line */

/* Everything the actor prints on stdout until it closes it (at most cap-1 bytes). */
static void actor_stdout(actor_t *a, char *buf, size_t cap) {
  size_t n = 0;
  for (;;) {
    struct pollfd p = {.fd = a->out, .events = POLLIN};
    if (poll(&p, 1, 10000) <= 0) fail_msg("the actor's stdout stayed open for 10 s");
    ssize_t r = read(a->out, buf + n, cap - 1 - n);
    if (r <= 0) break;
    n += (size_t)r;
    if (n + 1 == cap) fail_msg("more than %zu bytes on stdout", cap - 1);
  }
  buf[n] = '\0';
}

/* --help: the usage on stdout, every option named, nothing on stderr, exit 0. */
static void help_check(const char *bin, const char *name, const char *const *must) {
  actor_t a;
  char out[4096], err[1024], usage[64];
  const char *args[] = {"--help", NULL};
  actor_start(&a, bin, args);
  actor_stdout(&a, out, sizeof(out));
  assert_int_equal(actor_wait(&a, 10000, err, sizeof(err)), 0);
  if (err[0] != '\0') fail_msg("%s --help wrote to stderr: %s", name, err);
  snprintf(usage, sizeof(usage), "usage: %s ", name);
  if (strncmp(out, usage, strlen(usage)) != 0) fail_msg("%s --help printed '%s'", name, out);
  for (int i = 0; must[i] != NULL; i++)
    if (strstr(out, must[i]) == NULL) fail_msg("%s --help does not mention %s", name, must[i]);
}

static void test_actors_help_exits_0(void **state) {
  (void)state;
  const char *echo[] = {"--port N", "--host H", "--path P", "--fd N", "--endpoint E", "--group G",
                        "--service S", "--via-handler", "--help", NULL};
  const char *redis[] = {"--port N", "--host H", "--path P", "--endpoint E", NULL};
  const char *goodbye[] = {"--endpoint E", "--help", NULL};
  const char *proxy[] = {"--port N", "--to-port N", "--to-host H", "--to-path P", "--endpoint E",
                         NULL};
  const char *chat[] = {"--port N", "--host H", "--path P", "--endpoint E", NULL};
  help_check(ECHO_BIN, "echo", echo);
  help_check(GOODBYE_BIN, "goodbye", goodbye);
  help_check(PROXY_BIN, "proxy", proxy);
  help_check(CHAT_BIN, "chat", chat);
  help_check(REDIS_BIN, "redis", redis);
}

/* A usage error: exit 2 before anything listens, one line naming the Node code
 * and the culprit on stderr, nothing on stdout. netcore runs, so an actor that
 * took `--port abc` for port 0 would listen and not exit: the wait fails. */
static void usage_check(const char *bin, const char *const *args, const char *code,
                        const char *culprit) {
  nct_netcore_t d;
  actor_t a;
  char out[1024], err[1024];
  const char *argv[12];
  int n = 0;
  for (; args[n] != NULL && n < 8; n++) argv[n] = args[n];
  nct_netcore_start(&d, NULL);
  argv[n++] = "--endpoint";
  argv[n++] = d.endpoint;
  argv[n] = NULL;
  actor_start(&a, bin, argv);
  actor_stdout(&a, out, sizeof(out));
  assert_int_equal(actor_wait(&a, 10000, err, sizeof(err)), 2);
  if (out[0] != '\0') fail_msg("%s %s printed '%s' on stdout", bin, args[0], out);
  if (strstr(err, code) == NULL || strstr(err, culprit) == NULL)
    fail_msg("%s %s: stderr '%s' lacks %s or %s", bin, args[0], err, code, culprit);
  nct_netcore_stop(&d);
}

static void test_actors_bad_number_exits_2(void **state) {
  (void)state;
  const char *v = "ERR_PARSE_ARGS_INVALID_OPTION_VALUE";
  usage_check(ECHO_BIN, (const char *const[]){"--port", "abc", NULL}, v, "'abc'");
  usage_check(ECHO_BIN, (const char *const[]){"--port", "8124x", NULL}, v, "'8124x'");
  usage_check(ECHO_BIN, (const char *const[]){"--port", "65536", NULL}, v, "0..65535");
  usage_check(ECHO_BIN, (const char *const[]){"--port", "", NULL}, v, "--port");
  usage_check(ECHO_BIN, (const char *const[]){"--fd", "-1", NULL}, v, "--fd");
  usage_check(CHAT_BIN, (const char *const[]){"--port", "abc", NULL}, v, "'abc'");
  usage_check(PROXY_BIN, (const char *const[]){"--to-port", "abc", NULL}, v, "--to-port");
  usage_check(PROXY_BIN, (const char *const[]){"--port", "0", NULL}, v, "--to-port or --to-path");
  usage_check(ECHO_BIN, (const char *const[]){"--via-handler=1", NULL}, v,
              "--via-handler takes no value");
  usage_check(REDIS_BIN, (const char *const[]){"--port", "x", NULL}, v, "'x'");
}

static void test_actors_unknown_option_exits_2(void **state) {
  (void)state;
  usage_check(ECHO_BIN, (const char *const[]){"--prot", "1", NULL},
              "ERR_PARSE_ARGS_UNKNOWN_OPTION", "'--prot'");
  usage_check(GOODBYE_BIN, (const char *const[]){"--port", "1", NULL},
              "ERR_PARSE_ARGS_UNKNOWN_OPTION", "'--port'");
  usage_check(CHAT_BIN, (const char *const[]){"extra", NULL},
              "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL", "'extra'");
}

/* ----------------------------------------------------------------- goodbye */

static void test_actors_goodbye(void **state) {
  (void)state;
  nct_netcore_t d;
  actor_t a;
  char line[256], err[1024], buf[32];
  nct_netcore_start(&d, NULL);
  const char *args[] = {"--endpoint", d.endpoint, NULL};
  actor_start(&a, GOODBYE_BIN, args);
  actor_line(&a, line, sizeof(line));
  regex_t re;
  assert_int_equal(regcomp(&re, "^opened server on \\{\"address\":\"127\\.0\\.0\\.1\",\"port\":[1-9][0-9]*\\}$", REG_EXTENDED), 0);
  if (regexec(&re, line, 0, NULL, 0) != 0) fail_msg("unexpected line '%s'", line);
  regfree(&re);
  for (int i = 0; i < 3; i++) {
    int fd = nct_tcp_connect(port_of(line));
    size_t n = nct_read_all(fd, buf, sizeof(buf), 10000); /* up to EOF */
    assert_int_equal(n, 8);
    assert_memory_equal(buf, "goodbye\n", 8);
    close(fd);
  }
  kill(a.pid, SIGINT);
  assert_int_equal(actor_wait(&a, 10000, err, sizeof(err)), 0);
  nct_netcore_stop(&d);
}

/* ------------------------------------------------------------------- proxy */

#define PROXY_BYTES (100ull << 20)

typedef struct {
  int lfd;
  uint64_t got;
  int ok;
} target_t;

/* The target reads slowly for the first 16 MiB, then at full speed. */
static void *proxy_target(void *arg) {
  target_t *t = arg;
  int fd = nct_accept(t->lfd);
  uint8_t *buf = malloc(65536);
  t->ok = 1;
  for (;;) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 20000) <= 0) break;
    ssize_t n = read(fd, buf, t->got < (16u << 20) ? 4096 : 65536);
    if (n <= 0) break;
    if (!pattern_ok(buf, (size_t)n, t->got)) t->ok = 0;
    t->got += (uint64_t)n;
    if (t->got < (16u << 20)) usleep(200);
  }
  free(buf);
  close(fd);
  return NULL;
}

static void *proxy_client(void *arg) {
  int fd = (int)(intptr_t)arg;
  uint8_t *chunk = malloc(1 << 20);
  for (uint64_t off = 0; off < PROXY_BYTES; off += 1 << 20) {
    fill_pattern(chunk, 1 << 20, off);
    nct_write_all(fd, chunk, 1 << 20);
  }
  free(chunk);
  shutdown(fd, SHUT_WR);
  char c;
  nct_read_all(fd, &c, 1, 30000); /* EOF once the target has closed */
  close(fd);
  return NULL;
}

static void got_piped(nc_loop_t *loop, int status, const nc_stats_t *st, void *arg) {
  (void)loop;
  assert_int_equal(status, 0);
  *(double *)arg = nc_stats_value(st, "netcore_piped_bytes_total", NULL, NULL);
}

/* netcore_piped_bytes_total of d now. */
static double piped_bytes(nct_netcore_t *d) {
  nc_loop_t *loop = nct_loop(d);
  double v = -1;
  assert_int_equal(nc_loop_stats(loop, got_piped, &v), 0);
  while (v < 0) assert_true(nc_loop_process(loop) >= 0);
  nc_loop_free(loop);
  return v;
}

static void test_actors_proxy_100mib_slow_reader(void **state) {
  (void)state;
  nct_netcore_t d;
  actor_t a;
  char line[256], err[1024], to_port[16];
  target_t t = {0};
  int tport;
  nct_netcore_start(&d, NULL);
  t.lfd = nct_tcp_listen(&tport);
  snprintf(to_port, sizeof(to_port), "%d", tport);
  const char *args[] = {"--port", "0", "--to-port", to_port, "--to-host", "127.0.0.1",
                        "--endpoint", d.endpoint, NULL};
  actor_start(&a, PROXY_BIN, args);
  actor_line(&a, line, sizeof(line));
  long proxy_base = nct_rss_kib(a.pid), netcore_base = nct_rss_kib(d.pid);
  pthread_t tt = nct_thread(proxy_target, &t);
  pthread_t ct = nct_thread(proxy_client, (void *)(intptr_t)nct_tcp_connect(port_of(line)));
  pthread_join(ct, NULL);
  pthread_join(tt, NULL);
  long proxy_peak = nct_hwm_kib(a.pid), netcore_peak = nct_hwm_kib(d.pid);
  assert_int_equal(t.got, PROXY_BYTES);
  assert_true(t.ok);
  /* Flat memory: a small fraction of the 100 MiB that went through. */
  if (proxy_peak - proxy_base > 32 * 1024)
    fail_msg("proxy grew from %ld to %ld KiB", proxy_base, proxy_peak);
  if (netcore_peak - netcore_base > 32 * 1024)
    fail_msg("netcore grew from %ld to %ld KiB", netcore_base, netcore_peak);
  /* The proxy's pipe() ran inside netcore: all but the first credit window
   * (read before netcore had the Pipe) never reached the actor. */
  double piped = piped_bytes(&d);
  if (piped < (double)(PROXY_BYTES - (1u << 20)))
    fail_msg("only %.0f of %llu bytes moved inside netcore", piped, (unsigned long long)PROXY_BYTES);
  kill(a.pid, SIGTERM);
  assert_int_equal(actor_wait(&a, 10000, err, sizeof(err)), 0);
  close(t.lfd);
  nct_netcore_stop(&d);
}

/* -------------------------------------------------------------------- chat */

#define FLOOD_LINES 100000

static size_t read_lines(int fd, char *buf, size_t cap, int want_lines) {
  size_t n = 0;
  int lines = 0;
  while (lines < want_lines) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 10000) <= 0) fail_msg("chat: waited 10 s for a line");
    ssize_t r = read(fd, buf + n, 1);
    if (r != 1) fail_msg("chat: connection ended");
    if (buf[n] == '\n') lines++;
    if (++n >= cap) fail_msg("chat: too much text");
  }
  buf[n] = '\0';
  return n;
}

typedef struct {
  int fd;
  uint64_t lines;
} flood_reader_t;

static void *flood_reader(void *arg) {
  flood_reader_t *r = arg;
  char buf[65536];
  while (r->lines < FLOOD_LINES) {
    struct pollfd p = {.fd = r->fd, .events = POLLIN};
    if (poll(&p, 1, 20000) <= 0) break;
    ssize_t n = read(r->fd, buf, sizeof(buf));
    if (n <= 0) break;
    for (ssize_t i = 0; i < n; i++) r->lines += buf[i] == '\n';
  }
  return NULL;
}

static void test_actors_chat(void **state) {
  (void)state;
  nct_netcore_t d;
  actor_t a;
  char line[256], err[1024], text[256];
  nct_netcore_start(&d, NULL);
  const char *args[] = {"--port", "0", "--endpoint", d.endpoint, NULL};
  actor_start(&a, CHAT_BIN, args);
  actor_line(&a, line, sizeof(line));
  int port = port_of(line);
  int fds[3];
  for (int i = 0; i < 3; i++) fds[i] = nct_tcp_connect(port);
  usleep(200000); /* all three joined before anyone speaks */
  nct_write_all(fds[0], "from 0\n", 7);
  assert_int_equal(read_lines(fds[1], text, sizeof(text), 1), 7);
  assert_string_equal(text, "from 0\n");
  assert_int_equal(read_lines(fds[2], text, sizeof(text), 1), 7);
  nct_write_all(fds[1], "from 1\n", 7);
  nct_write_all(fds[2], "from 2\n", 7);
  read_lines(fds[0], text, sizeof(text), 2);
  assert_non_null(strstr(text, "from 1\n"));
  assert_non_null(strstr(text, "from 2\n"));
  assert_null(strstr(text, "from 0"));
  read_lines(fds[1], text, sizeof(text), 1);
  assert_string_equal(text, "from 2\n");
  read_lines(fds[2], text, sizeof(text), 1);
  assert_string_equal(text, "from 1\n");

  /* fds[2] stops reading while fds[0] floods: fds[1] still gets every
   * line, and neither chat nor netcore holds the backlog. */
  long chat_base = nct_rss_kib(a.pid), netcore_base = nct_rss_kib(d.pid);
  flood_reader_t r = {.fd = fds[1]};
  pthread_t th = nct_thread(flood_reader, &r);
  char flood[100];
  memset(flood, 'x', sizeof(flood));
  flood[sizeof(flood) - 1] = '\n';
  for (int i = 0; i < FLOOD_LINES; i++) nct_write_all(fds[0], flood, sizeof(flood));
  pthread_join(th, NULL);
  assert_int_equal(r.lines, FLOOD_LINES);
  long chat_peak = nct_hwm_kib(a.pid), netcore_peak = nct_hwm_kib(d.pid);
  if (chat_peak - chat_base > 16 * 1024) fail_msg("chat grew from %ld to %ld KiB", chat_base, chat_peak);
  if (netcore_peak - netcore_base > 16 * 1024)
    fail_msg("netcore grew from %ld to %ld KiB", netcore_base, netcore_peak);
  /* The silent client was disconnected once its backlog passed the limit. */
  char sink[65536];
  ssize_t n;
  size_t drained = 0;
  while ((n = read(fds[2], sink, sizeof(sink))) > 0) drained += (size_t)n;
  assert_true(drained < (size_t)FLOOD_LINES * sizeof(flood));
  for (int i = 0; i < 3; i++) close(fds[i]);
  kill(a.pid, SIGTERM);
  assert_int_equal(actor_wait(&a, 10000, err, sizeof(err)), 0);
  assert_non_null(strstr(err, "does not read"));
  nct_netcore_stop(&d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_actors_echo_tcp),
      cmocka_unit_test(test_actors_echo_unix_and_netcore_killed),
      cmocka_unit_test(test_actors_echo_netcore_shutdown_exits_0),
      cmocka_unit_test(test_actors_echo_netcore_not_running),
      cmocka_unit_test(test_actors_goodbye),
      cmocka_unit_test(test_actors_proxy_100mib_slow_reader),
      cmocka_unit_test(test_actors_chat),
      cmocka_unit_test(test_actors_help_exits_0),
      cmocka_unit_test(test_actors_bad_number_exits_2),
      cmocka_unit_test(test_actors_unknown_option_exits_2),
  };
  return cmocka_run_group_tests_name("actors_c", tests, NULL, NULL);
}
