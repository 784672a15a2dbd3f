/* test_client_pipe.c: nc_socket_pipe() carried out inside netcore
 * (PROTOCOL.md 17), through real sockets with libnc.
 *
 * 1 GiB through c.pipe(c) behind a slow reader with netcore's VmRSS flat;
 * end propagation (and {end: false}); a late on_data and unpipe() mid-stream
 * with a position-dependent pattern, so a lost or repeated byte shows, and
 * bytesRead exact; the destination's peer resetting; a proxy's two pipes
 * (client <-> upstream) both offloaded; and NETCORE_PIPE_OFFLOAD=0 keeping
 * the pipe in the library. netcore's piped-bytes counter proves the bytes
 * stayed inside netcore. */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "nct.h"

static uint8_t pat(uint64_t i) { return (uint8_t)(i * 131 + (i >> 11) * 7 + (i >> 23)); }

static void fill(uint8_t *p, size_t n, uint64_t off) {
  for (size_t i = 0; i < n; i++) p[i] = pat(off + i);
}

/* Index of the first byte that is not the pattern at off, or -1. */
static long check(const uint8_t *p, size_t n, uint64_t off) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != pat(off + i)) return (long)i;
  return -1;
}

/* ------------------------------------------------------------- common */

typedef struct {
  nc_loop_t *loop;
  nc_server_t *server;
  int port;
  nc_socket_t *sock[2];
  int nsock, closes, errors;
  int offloaded;              /* nc_socket_pipe_offloaded right after pipe() */
  uint64_t closed_read[2], closed_written[2];
  int close_error[2];
  /* late on_data / unpipe: what on_data got, in order */
  uint8_t *ondata;
  uint64_t ondata_bytes;
  int mode;                   /* 0: c.pipe(c); 1: a->b; 2: a->b {end: false} */
  double piped;               /* netcore_piped_bytes_total at the end */
} env_t;

static int index_of(env_t *t, nc_socket_t *s) { return t->sock[1] == s && s != NULL; }

static void on_close(nc_socket_t *s, int had_error) {
  env_t *t = nc_socket_get_data(s);
  int i = index_of(t, s);
  t->closed_read[i] = nc_socket_bytes_read(s);
  t->closed_written[i] = nc_socket_bytes_written(s);
  t->close_error[i] = had_error;
  t->sock[i] = NULL; /* freed when this returns */
  if (++t->closes == t->nsock) nc_server_close(t->server, NULL);
}

static void on_error(nc_socket_t *s, int err, const char *msg) {
  env_t *t = nc_socket_get_data(s);
  (void)s, (void)err, (void)msg;
  if (getenv("NCT_PIPE_DEBUG")) fprintf(stderr, "socket %d error: %s\n", index_of(t, s), msg);
  t->errors++;
}

/* a's end reaches b here only without the pipe (unpipe test, {end: false});
 * a itself ends too (half-open sockets). */
static void on_end_a(nc_socket_t *s) {
  env_t *t = nc_socket_get_data(s);
  if (t->sock[1] && (t->mode == 2 || !nc_socket_pipe_offloaded(s))) nc_socket_end(t->sock[1], NULL, 0);
  nc_socket_end(s, NULL, 0);
}

static const nc_socket_events_t plain = {.on_close = on_close, .on_error = on_error};
static const nc_socket_events_t with_end = {.on_close = on_close, .on_error = on_error,
                                            .on_end = on_end_a};

static void on_connection(nc_server_t *srv, nc_socket_t *c) {
  env_t *t = nc_server_get_data(srv);
  nc_socket_set_data(c, t);
  t->sock[t->nsock++] = c;
  if (t->mode == 0) {
    nc_socket_set_events(c, &plain);
    nc_socket_pipe(c, c);
    t->offloaded = nc_socket_pipe_offloaded(c);
    return;
  }
  nc_socket_set_events(c, t->nsock == 1 ? &with_end : &plain);
  if (t->nsock < 2) return;
  nc_pipe_options_t o = {.no_end = t->mode == 2};
  nc_socket_pipe_opts(t->sock[0], t->sock[1], &o);
  t->offloaded = nc_socket_pipe_offloaded(t->sock[0]);
}

static void on_listening(nc_server_t *s) {
  env_t *t = nc_server_get_data(s);
  nc_address_t a;
  nc_server_address(s, &a);
  t->port = a.port;
}

static void start(env_t *t, int mode) {
  memset(t, 0, sizeof *t);
  t->mode = mode;
  t->loop = nct_loop(&nct_daemon);
  nc_server_options_t o = {.allow_half_open = 1};
  nc_server_events_t ev = {.on_connection = on_connection, .on_listening = on_listening};
  assert_int_equal(nc_server_new(t->loop, &o, NULL, &t->server), 0);
  nc_server_set_data(t->server, t);
  nc_server_set_events(t->server, &ev);
  assert_int_equal(nc_server_listen(t->server, 0, "127.0.0.1", NULL), 0);
  while (t->port == 0) assert_true(nc_loop_process(t->loop) > 0);
}

/* Connects a peer and waits until the handler has its socket. */
static int connect_peer(env_t *t) {
  int want = t->nsock + 1, fd = nct_tcp_connect(t->port);
  while (t->nsock < want) assert_true(nc_loop_process(t->loop) >= 0);
  return fd;
}

static void got_stats(nc_loop_t *loop, int status, const nc_stats_t *st, void *arg) {
  env_t *t = arg;
  (void)loop;
  assert_int_equal(status, 0);
  t->piped = nc_stats_value(st, "netcore_piped_bytes_total", NULL, NULL);
}

/* netcore_piped_bytes_total now (the daemon is shared by the group's tests). */
static double piped_total(env_t *t) {
  t->piped = -1;
  assert_int_equal(nc_loop_stats(t->loop, got_stats, t), 0);
  while (t->piped < 0) assert_true(nc_loop_process(t->loop) >= 0);
  return t->piped;
}

/* Runs the loop until the server closed (every socket closed). */
static void finish(env_t *t) {
  assert_int_equal(nct_run(t->loop, 120000), 0);
}

/* ---------------------------------------------- 1 GiB, slow reader, RSS */

#define GIB (1ull << 30)

typedef struct {
  int fd;
  uint64_t total, got;
  long bad_at;
  long rss0, rss_max;
} stream_t;

static void *writer(void *arg) {
  stream_t *s = arg;
  size_t chunk = 1 << 20;
  uint8_t *buf = malloc(chunk);
  for (uint64_t off = 0; off < s->total; off += chunk) {
    size_t n = s->total - off < chunk ? (size_t)(s->total - off) : chunk;
    fill(buf, n, off);
    nct_write_all(s->fd, buf, n);
  }
  free(buf);
  shutdown(s->fd, SHUT_WR);
  return NULL;
}

/* Reads everything back, slowly at first, sampling netcore's RSS. */
static void *slow_reader(void *arg) {
  stream_t *s = arg;
  uint8_t *buf = malloc(65536);
  s->bad_at = -1;
  for (;;) {
    struct pollfd p = {.fd = s->fd, .events = POLLIN};
    if (poll(&p, 1, 20000) <= 0) break;
    ssize_t n = read(s->fd, buf, s->got < (64u << 20) ? 4096 : 65536);
    if (n <= 0) break;
    long bad = check(buf, (size_t)n, s->got);
    if (bad >= 0 && s->bad_at < 0) s->bad_at = (long)s->got + bad;
    uint64_t before = s->got;
    s->got += (uint64_t)n;
    if (s->got < (64u << 20)) usleep(100);
    if ((before >> 24) != (s->got >> 24)) { /* every 16 MiB */
      long rss = nct_rss_kib(nct_daemon.pid);
      if (rss > s->rss_max) s->rss_max = rss;
    }
  }
  free(buf);
  return NULL;
}

static void test_client_pipe_gib_slow_reader_flat_rss(void **state) {
  (void)state;
  env_t t;
  start(&t, 0);
  double piped0 = piped_total(&t);
  stream_t s = {.total = GIB};
  s.rss0 = s.rss_max = nct_rss_kib(nct_daemon.pid);
  s.fd = connect_peer(&t);
  assert_true(t.offloaded);
  pthread_t w = nct_thread(writer, &s), r = nct_thread(slow_reader, &s);
  finish(&t);
  pthread_join(w, NULL);
  pthread_join(r, NULL);
  close(s.fd);
  if (s.bad_at >= 0) fail_msg("byte %ld of the echo is wrong", s.bad_at);
  assert_int_equal(s.got, GIB);
  /* End propagation: the peer's FIN ended the echo (the reader saw EOF). */
  assert_int_equal(t.close_error[0], 0);
  assert_int_equal(t.closed_read[0], GIB);
  assert_int_equal(t.closed_written[0], GIB);
  if (s.rss_max - s.rss0 > 16 * 1024)
    fail_msg("netcore's RSS went from %ld to %ld KiB moving 1 GiB", s.rss0, s.rss_max);
  nc_loop_free(t.loop);
  t.loop = nct_loop(&nct_daemon);
  /* All but what netcore read before it had the Pipe (at most a credit
   * window, delivered as Data and written back by libnc) moved inside. */
  double piped = piped_total(&t) - piped0;
  if (piped < (double)GIB - 262144)
    fail_msg("only %.0f of the 1 GiB moved inside netcore", piped);
  nc_loop_free(t.loop);
}

/* ---------------------------------------------------- a -> b, end, no_end */

static void test_client_pipe_end_and_no_end(void **state) {
  (void)state;
  for (int mode = 1; mode <= 2; mode++) {
    env_t t;
    start(&t, mode);
    int pa = connect_peer(&t), pb = connect_peer(&t);
    assert_true(t.offloaded);
    uint8_t buf[100000], in[100000];
    fill(buf, sizeof buf, 0);
    nct_write_all(pa, buf, sizeof buf);
    shutdown(pa, SHUT_WR);
    pthread_t th;
    (void)th;
    /* b's peer reads everything, then EOF: with the default end, netcore
     * ended b; with {end: false} the handler's on_end did, after checking
     * that b was still open. */
    size_t got = 0;
    while (got < sizeof buf) {
      nc_loop_process(t.loop);
      struct pollfd p = {.fd = pb, .events = POLLIN};
      if (poll(&p, 1, 1) > 0) {
        ssize_t n = read(pb, in + got, sizeof in - got);
        assert_true(n > 0);
        got += (size_t)n;
      }
    }
    assert_int_equal(check(in, got, 0), -1);
    for (int eof = 0; !eof;) {
      nc_loop_process(t.loop);
      struct pollfd p = {.fd = pb, .events = POLLIN};
      if (poll(&p, 1, 1) > 0) {
        char c;
        assert_int_equal(read(pb, &c, 1), 0);
        eof = 1;
      }
    }
    shutdown(pb, SHUT_WR);
    close(pa);
    close(pb);
    finish(&t);
    assert_int_equal(t.close_error[1], 0);
    assert_int_equal(t.closed_read[0], sizeof buf);
    assert_int_equal(t.closed_written[1], sizeof buf);
    assert_int_equal(t.errors, 0);
    nc_loop_free(t.loop);
  }
}

/* ------------------------------------ late on_data, unpipe(), no loss */

#define LATE_TOTAL (24u << 20)

static void late_data(nc_socket_t *s, const char *d, size_t n) {
  env_t *t = nc_socket_get_data(s);
  if (t->ondata_bytes + n > LATE_TOTAL) fail_msg("on_data got more than was sent");
  memcpy(t->ondata + t->ondata_bytes, d, n);
  t->ondata_bytes += n;
  /* bytesRead is exact again from the Unpiped on: past what was delivered. */
  if (nc_socket_bytes_read(s) > LATE_TOTAL) fail_msg("bytesRead past what was sent");
}

typedef struct {
  env_t *t;
  int unpipe;
} late_t;

static void late_timer(nc_timer_t *timer) {
  late_t *l = nc_timer_get_data(timer);
  nc_socket_t *a = l->t->sock[0];
  if (a == NULL) fail_msg("the source closed before the late listener came");
  if (l->unpipe) nc_socket_unpipe(a);
  nc_socket_events_t ev = {.on_close = on_close, .on_error = on_error, .on_end = on_end_a,
                           .on_data = late_data};
  nc_socket_set_events(a, &ev);
  assert_false(nc_socket_pipe_offloaded(a));
  nc_timer_close(timer);
}

static void *slow_writer(void *arg) {
  stream_t *s = arg;
  uint8_t *buf = malloc(65536);
  for (uint64_t off = 0; off < s->total; off += 65536) {
    fill(buf, 65536, off);
    nct_write_all(s->fd, buf, 65536);
    usleep(1000);
  }
  free(buf);
  shutdown(s->fd, SHUT_WR);
  return NULL;
}

static void *reader(void *arg) {
  stream_t *s = arg;
  uint8_t *buf = malloc(65536);
  s->bad_at = -1;
  for (;;) {
    struct pollfd p = {.fd = s->fd, .events = POLLIN};
    if (poll(&p, 1, 20000) <= 0) break;
    ssize_t n = read(s->fd, buf, 65536);
    if (n <= 0) break;
    long bad = check(buf, (size_t)n, s->got);
    if (bad >= 0 && s->bad_at < 0) s->bad_at = (long)s->got + bad;
    s->got += (uint64_t)n;
  }
  shutdown(s->fd, SHUT_WR); /* the destination may close now */
  free(buf);
  return NULL;
}

static void late_case(int unpipe) {
  env_t t;
  start(&t, 1);
  t.ondata = malloc(LATE_TOTAL);
  stream_t a = {.total = LATE_TOTAL}, b = {0};
  a.fd = connect_peer(&t);
  b.fd = connect_peer(&t);
  assert_true(t.offloaded);
  late_t l = {&t, unpipe};
  nc_timer_t *timer;
  assert_int_equal(nc_timer_new(t.loop, &timer), 0);
  nc_timer_set_data(timer, &l);
  assert_int_equal(nc_timer_start(timer, late_timer, 150, 0), 0);
  pthread_t w = nct_thread(slow_writer, &a), r = nct_thread(reader, &b);
  finish(&t);
  pthread_join(w, NULL);
  pthread_join(r, NULL);
  close(a.fd);
  close(b.fd);
  if (b.bad_at >= 0) fail_msg("byte %ld of the destination's stream is wrong", b.bad_at);
  /* on_data got the stream's end, from where the Unpiped cut it. */
  uint64_t first = LATE_TOTAL - t.ondata_bytes;
  long bad = check(t.ondata, t.ondata_bytes, first);
  if (bad >= 0) fail_msg("on_data byte %llu is wrong", (unsigned long long)(first + (uint64_t)bad));
  assert_true(t.ondata_bytes > 0);
  assert_true(first > 0); /* the start moved inside netcore */
  assert_int_equal(t.closed_read[0], LATE_TOTAL);
  if (unpipe) /* dest got what netcore moved before the Unpiped, on_data the rest */
    assert_int_equal(b.got, first);
  else /* a data listener and the pipe both get the bytes, as in Node */
    assert_int_equal(b.got, LATE_TOTAL);
  assert_int_equal(t.closed_written[1], b.got);
  free(t.ondata);
  nc_loop_free(t.loop);
}

static void test_client_pipe_late_data_listener(void **state) {
  (void)state;
  late_case(0);
}

static void test_client_pipe_unpipe_mid_stream(void **state) {
  (void)state;
  late_case(1);
}

/* ------------------------------------------ the destination's peer resets */

static void test_client_pipe_dest_reset(void **state) {
  (void)state;
  env_t t;
  start(&t, 1);
  int pa = connect_peer(&t), pb = connect_peer(&t);
  assert_true(t.offloaded);
  nct_write_all(pa, "hello", 5);
  char in[5];
  size_t got = 0; /* the loop runs: "hello" may be Data on its way when the Pipe left */
  for (uint64_t end = nct_now_ms() + 10000; got < 5 && nct_now_ms() < end;) {
    nc_loop_process(t.loop);
    struct pollfd p = {.fd = pb, .events = POLLIN};
    if (poll(&p, 1, 1) > 0) {
      ssize_t n = read(pb, in + got, 5 - got);
      assert_true(n > 0);
      got += (size_t)n;
    }
  }
  assert_int_equal(got, 5);
  assert_memory_equal(in, "hello", 5);
  struct linger now = {.l_onoff = 1, .l_linger = 0};
  setsockopt(pb, SOL_SOCKET, SO_LINGER, &now, sizeof now);
  close(pb);
  /* Writes into the reset connection make netcore see it. */
  uint8_t zeros[4096] = {0};
  fcntl(pa, F_SETFL, fcntl(pa, F_GETFL) | O_NONBLOCK);
  for (uint64_t end = nct_now_ms() + 10000; t.closes == 0 && nct_now_ms() < end;) {
    (void)!write(pa, zeros, sizeof zeros);
    nc_loop_process(t.loop);
    usleep(1000);
  }
  assert_int_equal(t.closes, 1);
  assert_int_equal(t.close_error[1], 1);
  assert_int_equal(t.errors, 1);
  /* The source stays open and is no longer piped. */
  assert_false(nc_socket_pipe_offloaded(t.sock[0]));
  assert_int_equal(nc_socket_write(t.sock[0], "still", 5, NULL, NULL), 1);
  fcntl(pa, F_SETFL, fcntl(pa, F_GETFL) & ~O_NONBLOCK);
  shutdown(pa, SHUT_WR);
  char buf[6] = {0};
  for (uint64_t end = nct_now_ms() + 10000; nct_now_ms() < end && t.closes < 2;) {
    nc_loop_process(t.loop);
    struct pollfd p = {.fd = pa, .events = POLLIN};
    if (poll(&p, 1, 1) > 0 && read(pa, buf, 5) == 5) nc_socket_end(t.sock[0], NULL, 0);
  }
  assert_string_equal(buf, "still");
  close(pa);
  finish(&t);
  assert_int_equal(t.close_error[0], 0);
  nc_loop_free(t.loop);
}

/* -------------------------------------------------- a proxy, both ways */

typedef struct {
  env_t t;
  int target_port;
  nc_socket_t *client, *upstream;
  int offloaded_both;
} proxy_t;

static proxy_t px;

static void proxy_close(nc_socket_t *s, int had_error) {
  (void)had_error;
  if (++px.t.closes == 2) nc_server_close(px.t.server, NULL);
  (void)s;
}

static void proxy_connection(nc_server_t *srv, nc_socket_t *c) {
  (void)srv;
  static const nc_socket_events_t ev = {.on_close = proxy_close};
  nc_socket_options_t o = {.allow_half_open = 1};
  px.client = c;
  nc_socket_set_events(c, &ev);
  assert_int_equal(nc_create_connection(nc_server_loop(srv), &o, px.target_port, "127.0.0.1",
                                        NULL, &px.upstream), 0);
  nc_socket_set_events(px.upstream, &ev);
  /* As actors/proxy.c: piped both ways while upstream still connects. */
  nc_socket_pipe(c, px.upstream);
  nc_socket_pipe(px.upstream, c);
  px.offloaded_both = nc_socket_pipe_offloaded(c) && nc_socket_pipe_offloaded(px.upstream);
}

/* An upstream echo: reads and writes back until EOF, then closes. */
static void *target_echo(void *arg) {
  int lfd = (int)(intptr_t)arg, fd = nct_accept(lfd);
  char *buf = malloc(65536);
  for (;;) {
    ssize_t n = read(fd, buf, 65536);
    if (n <= 0) break;
    nct_write_all(fd, buf, (size_t)n);
  }
  free(buf);
  close(fd);
  return NULL;
}

static void test_client_pipe_proxy_both_ways(void **state) {
  (void)state;
  memset(&px, 0, sizeof px);
  int lfd = nct_tcp_listen(&px.target_port);
  px.t.loop = nct_loop(&nct_daemon);
  double piped0 = piped_total(&px.t);
  nc_server_options_t o = {.allow_half_open = 1};
  nc_server_events_t ev = {.on_connection = proxy_connection, .on_listening = on_listening};
  assert_int_equal(nc_server_new(px.t.loop, &o, NULL, &px.t.server), 0);
  nc_server_set_data(px.t.server, &px.t);
  nc_server_set_events(px.t.server, &ev);
  assert_int_equal(nc_server_listen(px.t.server, 0, "127.0.0.1", NULL), 0);
  while (px.t.port == 0) assert_true(nc_loop_process(px.t.loop) > 0);
  pthread_t tt = nct_thread(target_echo, (void *)(intptr_t)lfd);
  stream_t s = {.total = 16u << 20};
  s.fd = nct_tcp_connect(px.t.port);
  pthread_t w = nct_thread(writer, &s), r = nct_thread(reader, &s);
  finish(&px.t);
  pthread_join(w, NULL);
  pthread_join(r, NULL);
  pthread_join(tt, NULL);
  close(s.fd);
  close(lfd);
  assert_true(px.offloaded_both);
  if (s.bad_at >= 0) fail_msg("byte %ld through the proxy is wrong", s.bad_at);
  assert_int_equal(s.got, 16u << 20);
  px.t.piped = -1;
  nc_loop_free(px.t.loop);
  px.t.loop = nct_loop(&nct_daemon);
  /* All but what was read before netcore had the Pipes (at most a credit
   * window each way) moved inside netcore. */
  double piped = piped_total(&px.t) - piped0;
  if (piped < 2.0 * (16u << 20) - 2 * 262144)
    fail_msg("only %.0f of the proxy's bytes moved inside netcore", piped);
  nc_loop_free(px.t.loop);
}

/* ------------------------------------------- NETCORE_PIPE_OFFLOAD=0 */

static void test_client_pipe_offload_off(void **state) {
  (void)state;
  setenv("NETCORE_PIPE_OFFLOAD", "0", 1);
  env_t t;
  start(&t, 0);
  unsetenv("NETCORE_PIPE_OFFLOAD");
  stream_t s = {.total = 4u << 20};
  s.fd = connect_peer(&t);
  assert_false(t.offloaded);
  pthread_t w = nct_thread(writer, &s), r = nct_thread(reader, &s);
  finish(&t);
  pthread_join(w, NULL);
  pthread_join(r, NULL);
  close(s.fd);
  assert_int_equal(s.got, 4u << 20);
  assert_int_equal(s.bad_at, -1);
  assert_int_equal(t.closed_read[0], 4u << 20);
  assert_int_equal(t.closed_written[0], 4u << 20);
  nc_loop_free(t.loop);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_client_pipe_gib_slow_reader_flat_rss),
      cmocka_unit_test(test_client_pipe_end_and_no_end),
      cmocka_unit_test(test_client_pipe_late_data_listener),
      cmocka_unit_test(test_client_pipe_unpipe_mid_stream),
      cmocka_unit_test(test_client_pipe_dest_reset),
      cmocka_unit_test(test_client_pipe_proxy_both_ways),
      cmocka_unit_test(test_client_pipe_offload_off),
  };
  return cmocka_run_group_tests(tests, nct_setup, nct_teardown);
}
