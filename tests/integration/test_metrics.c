/* test_metrics.c: netcore's numbers (issue 16): the Stats command and the
 * Prometheus text of --metrics-listen agree with a known load and with each
 * other, and the HTTP server survives hostile clients (an oversized head, a
 * slowloris, a crowd of idle connections) without the handlers noticing. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

/* Starts netcore with --metrics-listen 127.0.0.1:0 (and flags) and returns
 * the port it logged. */
static uint16_t start_with_metrics(nct_env *e, const char *const *more) {
  const char *flags[16] = {"--metrics-listen", "127.0.0.1:0", "--log-level", "info"};
  int n = 4;
  for (; more && *more && n < 15; more++) flags[n++] = *more;
  flags[n] = NULL;
  const nct_daemon_opts opts = {.capture_stderr = 1};
  nct_env_start_opts(e, flags, &opts);
  char log[16384];
  for (int i = 0; i < 100; i++) {
    nct_daemon_stderr(&e->d, log, sizeof log);
    const char *at = strstr(log, "metrics on http://127.0.0.1:");
    if (at) return (uint16_t)atoi(at + strlen("metrics on http://127.0.0.1:"));
    usleep(20000);
  }
  nct_fail("netcore did not log its metrics address: %s", log);
}

/* One HTTP exchange: sends req, reads the whole response (netcore closes). */
static char *http(uint16_t port, const char *req, size_t *len) {
  int fd = nct_tcp_connect("127.0.0.1", port);
  nct_peer_write(fd, req, strlen(req));
  size_t cap = 4 << 20;
  char *buf = malloc(cap + 1);
  int eof = 0;
  size_t n = nct_fd_read(fd, buf, cap, NCT_WAIT, &eof);
  close(fd);
  buf[n] = 0;
  if (len) *len = n;
  if (eof != 1) nct_fail("no complete HTTP response (%zu bytes, eof %d)", n, eof);
  return buf;
}

static char *scrape(uint16_t port) {
  char *r = http(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", NULL);
  if (strncmp(r, "HTTP/1.1 200 OK\r\n", 17) != 0) nct_fail("scrape: %.200s", r);
  return r;
}

/* The value of the line `series ` (name with its labels exactly as
 * exposed), or -1. */
static double text_value(const char *text, const char *series) {
  size_t n = strlen(series);
  for (const char *p = text; (p = strstr(p, series)); p += n)
    if ((p == text || p[-1] == '\n') && p[n] == ' ') return strtod(p + n + 1, NULL);
  return -1;
}

/* ----------------------------------------------------------- Stats */

static nct_event *ask_stats(nct_client *c) {
  Netcore__V1__StatsQuery q = NETCORE__V1__STATS_QUERY__INIT;
  nct_cmd cmd = NETCORE__V1__COMMAND__INIT;
  cmd.command_case = NETCORE__V1__COMMAND__COMMAND_STATS;
  cmd.stats = &q;
  nct_send(c, &cmd, NULL, 0, 0);
  return nct_expect_global(c, STATS);
}

static const char *label(const Netcore__V1__MetricSample *s, const char *name) {
  for (size_t i = 0; i < s->n_labels; i++)
    if (strcmp(s->labels[i]->name, name) == 0) return s->labels[i]->value;
  return NULL;
}

/* The sample `name` whose label `lname` is `lvalue` (lname NULL: the only
 * one); fails when there is none. */
static double stat(const nct_event *ev, const char *name, const char *lname, const char *lvalue) {
  const Netcore__V1__Stats *st = ev->ev->stats;
  for (size_t f = 0; f < st->n_families; f++)
    for (size_t i = 0; i < st->families[f]->n_samples; i++) {
      const Netcore__V1__MetricSample *s = st->families[f]->samples[i];
      if (strcmp(s->name, name) != 0) continue;
      const char *v = lname ? label(s, lname) : NULL;
      if (!lname || (v && strcmp(v, lvalue) == 0)) return s->value;
    }
  nct_fail("no sample %s{%s=%s}", name, lname ? lname : "", lvalue ? lvalue : "");
}

/* N connections, M bytes each way: the counters per handler and in total
 * are exactly what was sent, in Stats and in /metrics alike; every family
 * of Stats is in /metrics with the same sample values. */
static void test_metrics_counters_equal_load(void **state) {
  nct_env *e = *state;
  uint16_t mport = start_with_metrics(e, NULL);
  nct_client *h = nct_env_handler(e, "loaded");
  /* The harness's own probes (a Hello at start, a check connection) came before. */
  nct_event *base = ask_stats(h);
  double opened0 = stat(base, "netcore_connections_opened_total", "how", "accepted");
  double finished0 = stat(base, "netcore_sockets_closed_total", "reason", "finished");
  assert_int_equal(stat(base, "netcore_read_bytes_total", NULL, NULL), 0);
  nct_event_free(base);
  char pfx[16];
  snprintf(pfx, sizeof pfx, "%u", h->id_prefix);
  uint16_t port;
  uint64_t srv = nct_listen_local(h, &port, 0);
  enum { N = 5, M = 100000 };
  uint8_t *buf = malloc(M), *got = malloc(M);
  nct_pattern_fill(0, buf, M);
  int peers[N];
  uint64_t ids[N];
  for (int i = 0; i < N; i++) {
    ids[i] = nct_accept_peer(h, srv, port, &peers[i]);
    nct_peer_write(peers[i], buf, M);
    nct_read_data(h, ids[i], got, M);
    assert_int_equal(nct_pattern_check(0, got, M), -1);
    nct_cmd_write(h, ids[i], buf, M);
    nct_peer_expect(peers[i], buf, M);
    nct_wait_acks(h, ids[i], 1, M);
  }
  /* Half of them closed, half still open: both kinds are counted. */
  for (int i = 0; i < N / 2; i++) nct_close_both(h, ids[i], peers[i]);

  nct_event *st = ask_stats(h);
  assert_string_equal(st->ev->stats->instance_id, h->instance_id);
  assert_true(st->ev->stats->n_families > 20);
  assert_int_equal(stat(st, "netcore_handler_read_bytes_total", "prefix", pfx), N * M);
  assert_int_equal(stat(st, "netcore_handler_written_bytes_total", "prefix", pfx), N * M);
  assert_int_equal(stat(st, "netcore_handler_payload_bytes_total", "prefix", pfx), N * M);
  assert_int_equal(stat(st, "netcore_read_bytes_total", NULL, NULL), N * M);
  assert_int_equal(stat(st, "netcore_written_bytes_total", NULL, NULL), N * M);
  assert_int_equal(stat(st, "netcore_connections_opened_total", "how", "accepted"), opened0 + N);
  assert_int_equal(stat(st, "netcore_handler_sockets", "prefix", pfx), N - N / 2);
  assert_int_equal(stat(st, "netcore_handler_servers", "prefix", pfx), 1);
  assert_int_equal(stat(st, "netcore_sockets_closed_total", "reason", "finished"),
                   finished0 + N / 2);
  assert_int_equal(stat(st, "netcore_sockets", "state", "open"), N - N / 2);
  assert_int_equal(stat(st, "netcore_handlers", NULL, NULL), 2); /* with the observer */
  assert_int_equal(stat(st, "netcore_handler_write_queue_bytes", "prefix", pfx), 0);
  assert_int_equal(stat(st, "netcore_listeners", NULL, NULL), 1);
  assert_true(stat(st, "netcore_loop_turn_seconds_count", NULL, NULL) > 0);
  assert_true(stat(st, "netcore_resident_memory_bytes", NULL, NULL) > 0);

  /* The same numbers over HTTP (nothing moved on the sockets since). */
  char *text = scrape(mport);
  char series[256];
  snprintf(series, sizeof series,
           "netcore_handler_read_bytes_total{handler=\"loaded\",prefix=\"%s\"}", pfx);
  assert_int_equal(text_value(text, series), N * M);
  snprintf(series, sizeof series,
           "netcore_handler_written_bytes_total{handler=\"loaded\",prefix=\"%s\"}", pfx);
  assert_int_equal(text_value(text, series), N * M);
  snprintf(series, sizeof series,
           "netcore_handler_commands_total{handler=\"loaded\",prefix=\"%s\",command=\"write\"}",
           pfx);
  assert_int_equal(text_value(text, series), N);
  assert_int_equal(text_value(text, "netcore_read_bytes_total"), N * M);
  assert_int_equal(text_value(text, "netcore_connections_opened_total{how=\"accepted\"}"),
                   opened0 + N);
  const Netcore__V1__Stats *s = st->ev->stats;
  for (size_t f = 0; f < s->n_families; f++) {
    char want[256];
    snprintf(want, sizeof want, "# TYPE %s %s\n", s->families[f]->name, s->families[f]->type);
    if (!strstr(text, want)) nct_fail("/metrics lacks %s", want);
  }
  free(text);
  nct_event_free(st);

  /* Errors are counted by code: two EBADF. */
  nct_cmd_destroy(h, 999);
  nct_event_free(nct_expect_error(h, "EBADF"));
  nct_cmd_pause(h, 998);
  nct_event_free(nct_expect_error(h, "EBADF"));
  st = ask_stats(h);
  const Netcore__V1__Stats *s2 = st->ev->stats;
  double ebadf = 0;
  for (size_t f = 0; f < s2->n_families; f++)
    if (strcmp(s2->families[f]->name, "netcore_handler_errors_total") == 0)
      for (size_t i = 0; i < s2->families[f]->n_samples; i++) {
        const Netcore__V1__MetricSample *x = s2->families[f]->samples[i];
        if (strcmp(label(x, "prefix"), pfx) == 0 && strcmp(label(x, "code"), "EBADF") == 0)
          ebadf = x->value;
      }
  assert_int_equal(ebadf, 2);
  assert_int_equal(stat(st, "netcore_handler_commands_total", "command", "stats"), 3);
  nct_event_free(st);

  for (int i = N / 2; i < N; i++) nct_close_both(h, ids[i], peers[i]);
  nct_cmd_server_close(h, srv);
  nct_expect_drop(h, SERVER_CLOSED, srv);
  free(buf);
  free(got);
  nct_env_finish(e);
}

/* Handlers that leave are counted by reason, and their bytes stay in the
 * totals after they are gone. */
static void test_metrics_handlers_gone(void **state) {
  nct_env *e = *state;
  start_with_metrics(e, NULL);
  nct_event *base = ask_stats(e->observer);
  double bye0 = stat(base, "netcore_handlers_gone_total", "reason", "said Bye");
  double joined0 = stat(base, "netcore_handlers_joined_total", NULL, NULL);
  double gone0 = stat(base, "netcore_sockets_closed_total", "reason", "owner_gone");
  nct_event_free(base);
  nct_client *h = nct_env_handler(e, "leaver");
  uint16_t port;
  uint64_t srv = nct_listen_local(h, &port, 0);
  int peer;
  uint64_t id = nct_accept_peer(h, srv, port, &peer);
  nct_peer_write(peer, "12345", 5);
  nct_expect_data(h, id, "12345", 5);
  nct_env_release(e, h, 1); /* Bye */
  nct_peer_expect_eof(peer);
  close(peer);
  nct_event *st = ask_stats(e->observer);
  assert_int_equal(stat(st, "netcore_handlers_gone_total", "reason", "said Bye"), bye0 + 1);
  assert_int_equal(stat(st, "netcore_handlers_joined_total", NULL, NULL), joined0 + 1);
  assert_int_equal(stat(st, "netcore_read_bytes_total", NULL, NULL), 5);
  assert_int_equal(stat(st, "netcore_sockets_closed_total", "reason", "owner_gone"), gone0 + 1);
  nct_event_free(st);
  nct_env_finish(e);
}

/* ----------------------------------------------------------- hostile HTTP */

/* Wrong paths and methods get their status; an oversized head gets 431;
 * HEAD gets the headers only. */
static void test_metrics_http_bad_requests(void **state) {
  nct_env *e = *state;
  uint16_t mport = start_with_metrics(e, NULL);
  char *r = http(mport, "GET /nothing HTTP/1.1\r\n\r\n", NULL);
  assert_int_equal(strncmp(r, "HTTP/1.1 404 ", 13), 0);
  free(r);
  r = http(mport, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", NULL);
  assert_int_equal(strncmp(r, "HTTP/1.1 405 ", 13), 0);
  free(r);
  r = http(mport, "garbage\r\n\r\n", NULL);
  assert_int_equal(strncmp(r, "HTTP/1.1 400 ", 13), 0);
  free(r);
  size_t len;
  r = http(mport, "HEAD /metrics HTTP/1.0\r\n\r\n", &len);
  assert_int_equal(strncmp(r, "HTTP/1.1 200 ", 13), 0);
  assert_non_null(strstr(r, "\r\n\r\n"));
  assert_int_equal(strlen(strstr(r, "\r\n\r\n")), 4); /* no body */
  free(r);
  /* A 100 KB head: answered 431 once 8 KB are in, then closed. */
  int fd = nct_tcp_connect("127.0.0.1", mport);
  char *big = malloc(100000);
  memset(big, 'a', 100000);
  memcpy(big, "GET /metrics HTTP/1.1\r\nX: ", 26);
  nct_fd_write(fd, big, 100000); /* may fail with EPIPE/ECONNRESET once netcore closed */
  char resp[512] = "";
  int eof;
  nct_fd_read(fd, resp, sizeof resp - 1, NCT_WAIT, &eof);
  assert_int_equal(strncmp(resp, "HTTP/1.1 431 ", 13), 0);
  close(fd);
  free(big);
  free(scrape(mport));
  nct_sync(e->observer);
  nct_env_finish(e);
}

/* A slowloris trickling one byte every 100 ms, and a crowd of idle
 * connections: handlers and their sockets never wait for them, excess
 * connections are closed at once, every slow one gets 408 at its deadline,
 * and scraping works again after. */
static void test_metrics_http_slowloris_and_crowd(void **state) {
  nct_env *e = *state;
  uint16_t mport = start_with_metrics(e, NULL);
  nct_env_bystander_start(e);
  int slow = nct_tcp_connect("127.0.0.1", mport);
  enum { CROWD = 100 };
  int crowd[CROWD];
  for (int i = 0; i < CROWD; i++) crowd[i] = nct_tcp_connect("127.0.0.1", mport);
  /* The excess (beyond 32 served at once) is closed at once. */
  int closed = 0;
  usleep(300000);
  for (int i = 0; i < CROWD; i++) {
    struct pollfd p = {.fd = crowd[i], .events = POLLIN};
    if (poll(&p, 1, 0) == 1) {
      char c;
      if (read(crowd[i], &c, 1) <= 0) closed++;
    }
  }
  assert_true(closed >= CROWD - 32 - 1);
  uint64_t t0 = nct_now_ms();
  const char *req = "GET /metrics HTTP/1.1\r\n";
  size_t sent = 0;
  int eof = 0;
  char resp[256] = "";
  /* While the slowloris trickles, the bystander's echo and Ping stay prompt. */
  while (nct_now_ms() - t0 < 10000) {
    if (send(slow, req + (sent % strlen(req)), 1, MSG_NOSIGNAL) == 1) sent++;
    struct pollfd p = {.fd = slow, .events = POLLIN};
    if (poll(&p, 1, 100) == 1) {
      nct_fd_read(slow, resp, sizeof resp - 1, NCT_WAIT, &eof);
      break;
    }
    if (sent % 10 == 0) nct_env_bystander_check(e);
  }
  uint64_t took = nct_now_ms() - t0;
  assert_int_equal(strncmp(resp, "HTTP/1.1 408 ", 13), 0);
  assert_true(took < 9000); /* the deadline (5 s) counts from the connect, not from each byte */
  close(slow);
  for (int i = 0; i < CROWD; i++) close(crowd[i]);
  /* Slots are free again. */
  char *r = NULL;
  for (int i = 0; i < 50 && !r; i++) {
    r = http(mport, "GET /metrics HTTP/1.1\r\n\r\n", NULL);
    if (strncmp(r, "HTTP/1.1 200 ", 13) != 0) {
      free(r);
      r = NULL;
      usleep(100000);
    }
  }
  assert_non_null(r);
  free(r);
  nct_env_bystander_check(e);
  nct_env_finish(e);
}

#define T(f) cmocka_unit_test_setup_teardown(f, nct_env_setup, nct_env_teardown)

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      T(test_metrics_counters_equal_load),
      T(test_metrics_handlers_gone),
      T(test_metrics_http_bad_requests),
      T(test_metrics_http_slowloris_and_crowd),
  };
  return NCT_RUN(argc, argv, tests);
}
