/* libnc's flow control against the real netcore: throttle (write() false,
 * bufferSize, 'drain'), pause()/resume() with nothing lost, write after end
 * (ours and the peer's), setTimeout, pipe() backpressure keeping buffers
 * bounded, and destroy() from inside callbacks. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "nc_int.h"
#include "nct.h"

static void fill_pattern(uint8_t *p, size_t n, size_t offset) {
  for (size_t i = 0; i < n; i++) p[i] = (uint8_t)((offset + i) * 7 + ((offset + i) >> 11));
}

static void check_pattern(const uint8_t *p, size_t n, size_t offset) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != (uint8_t)((offset + i) * 7 + ((offset + i) >> 11)))
      fail_msg("byte %zu differs", offset + i);
}

/* ------------------------------------------------------------- throttle */

#define TH_CHUNK 10240
#define TH_CHUNKS 16

typedef struct {
  int lfd;
  atomic_int go;
  size_t got;
  uint8_t *buf;
  int first_false, drains, closes, had_error, acks;
  size_t buffer_at_false;
} throttle_t;

static void *throttle_peer(void *arg) {
  throttle_t *t = arg;
  int fd = nct_accept(t->lfd);
  while (!atomic_load(&t->go)) usleep(1000); /* does not read until told */
  t->got = nct_read_all(fd, t->buf, TH_CHUNK * TH_CHUNKS + 1, 10000);
  close(fd);
  return NULL;
}

static void th_write_cb(nc_socket_t *s, int status, void *arg) {
  throttle_t *t = arg;
  (void)s;
  assert_int_equal(status, 0);
  t->acks++;
}

static void th_connect(nc_socket_t *s) {
  throttle_t *t = nc_socket_get_data(s);
  static uint8_t chunk[TH_CHUNK];
  t->first_false = -1;
  for (int i = 0; i < TH_CHUNKS; i++) {
    fill_pattern(chunk, sizeof(chunk), (size_t)i * TH_CHUNK);
    int rv = nc_socket_write(s, chunk, sizeof(chunk), th_write_cb, t);
    assert_true(rv == 0 || rv == 1);
    if (rv == 0 && t->first_false < 0) {
      t->first_false = i;
      t->buffer_at_false = nc_socket_buffer_size(s);
    }
  }
  atomic_store(&t->go, 1);
}

static void th_drain(nc_socket_t *s) {
  throttle_t *t = nc_socket_get_data(s);
  t->drains++;
  assert_int_equal(nc_socket_buffer_size(s), 0);
  nc_socket_end(s, NULL, 0);
}

static void th_close(nc_socket_t *s, int had_error) {
  throttle_t *t = nc_socket_get_data(s);
  t->closes++;
  t->had_error = had_error;
}

static void test_client_flow_throttle_and_drain(void **state) {
  (void)state;
  nc_loop_t *loop = nct_loop(&nct_daemon);
  throttle_t t = {0};
  int port;
  t.lfd = nct_tcp_listen(&port);
  t.buf = malloc(TH_CHUNK * TH_CHUNKS + 1);
  pthread_t th = nct_thread(throttle_peer, &t);
  nc_socket_t *s;
  nc_socket_events_t ev = {.on_connect = th_connect, .on_drain = th_drain, .on_close = th_close};
  assert_int_equal(nc_create_connection(loop, NULL, port, "127.0.0.1", NULL, &s), 0);
  nc_socket_set_data(s, &t);
  nc_socket_set_events(s, &ev);
  assert_int_equal(nct_run(loop, 20000), 0);
  pthread_join(th, NULL);
  assert_true(t.first_false >= 0);
  assert_true(t.buffer_at_false > 0);
  assert_int_equal(t.drains, 1);
  assert_int_equal(t.acks, TH_CHUNKS);
  assert_int_equal(t.closes, 1);
  assert_int_equal(t.had_error, 0);
  assert_int_equal(t.got, TH_CHUNK * TH_CHUNKS);
  check_pattern(t.buf, t.got, 0);
  free(t.buf);
  close(t.lfd);
  nc_loop_free(loop);
}

/* ---------------------------------------------------------- pause/resume */

#define PR_TOTAL (2u << 20)

typedef struct {
  int port;
  nc_server_t *server;
  uint8_t *buf;
  size_t got;
  int data_while_paused, resumes, closes, had_error;
  size_t mid_paused_at;
  nc_timer_t *timer;
  nc_socket_t *sock;
  uint64_t bytes_read;
} pause_t;

static void *pause_peer(void *arg) {
  pause_t *t = arg;
  int fd = nct_tcp_connect(t->port);
  uint8_t *all = malloc(PR_TOTAL);
  fill_pattern(all, PR_TOTAL, 0);
  nct_write_all(fd, all, PR_TOTAL);
  free(all);
  shutdown(fd, SHUT_WR);
  char b[4];
  nct_read_all(fd, b, sizeof(b), 20000);
  close(fd);
  return NULL;
}

static void pr_resume(nc_timer_t *tm) {
  pause_t *t = nc_timer_get_data(tm);
  t->resumes++;
  assert_int_equal(t->data_while_paused, 0);
  nc_socket_resume(t->sock);
}

static void pr_data(nc_socket_t *c, const char *d, size_t n) {
  pause_t *t = nc_socket_get_data(c);
  if (nc_socket_is_paused(c)) t->data_while_paused++;
  assert_true(t->got + n <= PR_TOTAL);
  memcpy(t->buf + t->got, d, n);
  t->got += n;
  if (t->mid_paused_at == 0 && t->got >= PR_TOTAL / 2) {
    /* Pause in the middle of the stream, from a data callback. */
    t->mid_paused_at = t->got;
    nc_socket_pause(c);
    nc_timer_start(t->timer, pr_resume, 100, 0);
  }
}

static void pr_close(nc_socket_t *c, int had_error) {
  pause_t *t = nc_socket_get_data(c);
  t->closes++;
  t->had_error = had_error;
  t->bytes_read = nc_socket_bytes_read(c);
  nc_server_close(t->server, NULL);
}

static void pr_connection(nc_server_t *s, nc_socket_t *c) {
  pause_t *t = nc_server_get_data(s);
  nc_socket_events_t ev = {.on_data = pr_data, .on_close = pr_close};
  t->sock = c;
  nc_socket_set_data(c, t);
  nc_socket_set_events(c, &ev);
  nc_socket_pause(c); /* paused from the start; the peer keeps sending */
  nc_timer_start(t->timer, pr_resume, 300, 0);
}

static void pr_listening(nc_server_t *s) {
  pause_t *t = nc_server_get_data(s);
  nc_address_t a;
  nc_server_address(s, &a);
  t->port = a.port;
}

static void test_client_flow_pause_resume(void **state) {
  (void)state;
  nc_loop_t *loop = nct_loop(&nct_daemon);
  pause_t t = {0};
  t.buf = malloc(PR_TOTAL);
  nc_timer_new(loop, &t.timer);
  nc_timer_set_data(t.timer, &t);
  nc_server_events_t ev = {.on_connection = pr_connection, .on_listening = pr_listening};
  assert_int_equal(nc_server_new(loop, NULL, NULL, &t.server), 0);
  nc_server_set_data(t.server, &t);
  nc_server_set_events(t.server, &ev);
  assert_int_equal(nc_server_listen(t.server, 0, "127.0.0.1", NULL), 0);
  /* Run until listening, then start the peer. */
  while (t.port == 0) assert_true(nc_loop_process(loop) > 0);
  pthread_t th = nct_thread(pause_peer, &t);
  assert_int_equal(nct_run(loop, 30000), 0);
  pthread_join(th, NULL);
  assert_int_equal(t.data_while_paused, 0);
  assert_int_equal(t.resumes, 2);
  assert_int_equal(t.got, PR_TOTAL);
  assert_int_equal(t.bytes_read, PR_TOTAL);
  check_pattern(t.buf, t.got, 0);
  assert_int_equal(t.closes, 1);
  assert_int_equal(t.had_error, 0);
  nc_timer_close(t.timer);
  free(t.buf);
  nc_loop_free(loop);
}

/* ------------------------------------------------------ write after end */

typedef struct {
  nc_server_t *server;
  char log[128];
  int in_call;
  int closes;
} wae_t;

static void wae_log(wae_t *t, const char *what) {
  strncat(t->log, what, sizeof(t->log) - strlen(t->log) - 1);
}

static void wae_cb(nc_socket_t *s, int status, void *arg) {
  wae_t *t = arg;
  (void)s;
  assert_false(t->in_call); /* never from inside write() */
  assert_int_equal(status, NC_EPIPE);
  wae_log(t, "cb,");
}

static void wae_error(nc_socket_t *s, int err, const char *msg) {
  wae_t *t = nc_socket_get_data(s);
  (void)msg;
  assert_false(t->in_call);
  assert_int_equal(err, NC_EPIPE);
  wae_log(t, "error,");
}

static int wae_closes; /* both sides' closes; the server goes after them */

static void wae_close(nc_socket_t *s, int had_error) {
  wae_t *t = nc_socket_get_data(s);
  wae_log(t, had_error ? "close1," : "close0,");
  if (++wae_closes == 2) nc_server_close(t->server, NULL);
}

/* Our own end(), then write(). */
static void wae_client_connect(nc_socket_t *s) {
  wae_t *t = nc_socket_get_data(s);
  assert_int_equal(nc_socket_end(s, "last", 4), 0);
  t->in_call = 1;
  assert_int_equal(nc_socket_write(s, "x", 1, wae_cb, t), 0);
  t->in_call = 0;
  wae_log(t, "wrote,");
}

/* The peer's end, our own end() after it, then write(). */
static void wae_server_end(nc_socket_t *c) {
  wae_t *t = nc_socket_get_data(c);
  assert_int_equal(nc_socket_end(c, NULL, 0), 0);
  t->in_call = 1;
  assert_int_equal(nc_socket_write(c, "late", 4, wae_cb, t), 0);
  t->in_call = 0;
}

static void wae_server_data(nc_socket_t *c, const char *d, size_t n) {
  (void)c;
  (void)d;
  (void)n;
}

static void wae_server_close(nc_socket_t *c, int had_error) {
  wae_t *t = nc_socket_get_data(c);
  (void)had_error;
  if (++wae_closes == 2) nc_server_close(t->server, NULL);
}

static void wae_connection(nc_server_t *s, nc_socket_t *c) {
  wae_t *t = nc_server_get_data(s);
  nc_socket_events_t ev = {.on_data = wae_server_data, .on_end = wae_server_end,
                           .on_error = wae_error, .on_close = wae_server_close};
  nc_socket_set_data(c, t + 1); /* the second log: the server side */
  nc_socket_set_events(c, &ev);
}

static void wae_listening(nc_server_t *s) {
  wae_t *t = nc_server_get_data(s);
  nc_address_t a;
  nc_socket_t *c;
  nc_server_address(s, &a);
  nc_socket_events_t ev = {.on_connect = wae_client_connect, .on_error = wae_error,
                           .on_close = wae_close};
  assert_int_equal(nc_create_connection(nc_server_loop(s), NULL, a.port, "127.0.0.1", NULL, &c), 0);
  nc_socket_set_data(c, t);
  nc_socket_set_events(c, &ev);
}

static void test_client_flow_write_after_end(void **state) {
  (void)state;
  nc_loop_t *loop = nct_loop(&nct_daemon);
  wae_t t[2];
  memset(t, 0, sizeof(t));
  nc_server_events_t ev = {.on_connection = wae_connection, .on_listening = wae_listening};
  assert_int_equal(nc_server_new(loop, NULL, NULL, &t[0].server), 0);
  t[1].server = t[0].server;
  nc_server_set_data(t[0].server, &t[0]);
  nc_server_set_events(t[0].server, &ev);
  assert_int_equal(nc_server_listen(t[0].server, 0, "127.0.0.1", NULL), 0);
  /* Each side counts both closes through its own log's counter. */
  assert_int_equal(nct_run(loop, 10000), 0);
  /* Client: write() returned false at once; then the callback (EPIPE), the
   * 'error' (EPIPE) and 'close'(1), all on later turns. */
  assert_string_equal(t[0].log, "wrote,cb,error,close1,");
  /* Server: the peer ended, our side ended with it; a later write fails the
   * same way. */
  assert_string_equal(t[1].log, "cb,error,");
  nc_loop_free(loop);
}

/* --------------------------------------------------------------- timeout */

typedef struct {
  nc_server_t *server;
  nc_socket_t *client;
  int timeouts, once_cbs, closes;
  nc_timer_t *timer;
  int phase;
} to_t;

static void to_once(nc_socket_t *s) {
  to_t *t = nc_socket_get_data(s);
  t->once_cbs++;
}

static void to_phase(nc_timer_t *tm) {
  to_t *t = nc_timer_get_data(tm);
  if (t->phase == 0) {
    /* setTimeout(0) disabled it: still one timeout after a quiet while. */
    assert_int_equal(t->timeouts, 1);
    t->phase = 1;
    /* Armed again, then destroyed at once: no timeout after destroy(). */
    assert_int_equal(nc_socket_set_timeout(t->client, 50, NULL), 0);
    nc_socket_destroy(t->client);
    nc_timer_start(tm, to_phase, 300, 0);
  } else {
    assert_int_equal(t->timeouts, 1);
    nc_server_close(t->server, NULL);
  }
}

static void to_timeout(nc_socket_t *s) {
  to_t *t = nc_socket_get_data(s);
  t->timeouts++;
  assert_int_equal(t->phase, 0);
  /* The socket is still open and usable. */
  assert_int_equal(nc_socket_write(s, "still here", 10, NULL, NULL), 1);
  assert_int_equal(nc_socket_set_timeout(s, 0, NULL), 0);
  nc_timer_start(t->timer, to_phase, 300, 0);
}

static void to_close(nc_socket_t *s, int had_error) {
  to_t *t = nc_socket_get_data(s);
  (void)had_error;
  t->closes++;
}

static void to_server_sock_data(nc_socket_t *c, const char *d, size_t n) {
  (void)c;
  (void)d;
  (void)n;
}

static void to_connection(nc_server_t *s, nc_socket_t *c) {
  nc_socket_events_t ev = {.on_data = to_server_sock_data};
  (void)s;
  nc_socket_set_events(c, &ev);
}

static void to_listening(nc_server_t *s) {
  to_t *t = nc_server_get_data(s);
  nc_address_t a;
  nc_server_address(s, &a);
  nc_socket_events_t ev = {.on_timeout = to_timeout, .on_close = to_close};
  assert_int_equal(nc_create_connection(nc_server_loop(s), NULL, a.port, NULL, NULL, &t->client), 0);
  nc_socket_set_data(t->client, t);
  nc_socket_set_events(t->client, &ev);
  /* Set before the connection exists: applied once it does. */
  assert_int_equal(nc_socket_set_timeout(t->client, 100, to_once), 0);
}

static void test_client_flow_set_timeout(void **state) {
  (void)state;
  nc_loop_t *loop = nct_loop(&nct_daemon);
  to_t t = {0};
  nc_timer_new(loop, &t.timer);
  nc_timer_set_data(t.timer, &t);
  nc_server_events_t ev = {.on_connection = to_connection, .on_listening = to_listening};
  assert_int_equal(nc_server_new(loop, NULL, NULL, &t.server), 0);
  nc_server_set_data(t.server, &t);
  nc_server_set_events(t.server, &ev);
  assert_int_equal(nc_server_listen(t.server, 0, "127.0.0.1", NULL), 0);
  assert_int_equal(nct_run(loop, 10000), 0);
  assert_int_equal(t.timeouts, 1);
  assert_int_equal(t.once_cbs, 1);
  assert_int_equal(t.closes, 1);
  nc_timer_close(t.timer);
  nc_loop_free(loop);
}

/* ------------------------------------------------- pipe() backpressure */

#define PIPE_TOTAL (8u << 20)

typedef struct {
  int port;
  nc_server_t *server;
  size_t max_buffer;
  int drains, closes;
  uint8_t *echo;
  size_t echo_got;
} pipe_t;

static void *pipe_writer(void *arg) {
  int fd = (int)(intptr_t)arg;
  uint8_t *all = malloc(PIPE_TOTAL);
  fill_pattern(all, PIPE_TOTAL, 0);
  nct_write_all(fd, all, PIPE_TOTAL);
  free(all);
  shutdown(fd, SHUT_WR);
  return NULL;
}

static void pipe_data(nc_socket_t *c, const char *d, size_t n) {
  pipe_t *t = nc_server_get_data(nc_socket_server(c));
  (void)d;
  (void)n;
  if (nc_socket_buffer_size(c) > t->max_buffer) t->max_buffer = nc_socket_buffer_size(c);
}

static void pipe_drain(nc_socket_t *c) {
  pipe_t *t = nc_server_get_data(nc_socket_server(c));
  t->drains++;
}

static void pipe_close(nc_socket_t *c, int had_error) {
  pipe_t *t = nc_server_get_data(nc_socket_server(c));
  assert_int_equal(had_error, 0);
  t->closes++;
  nc_server_close(t->server, NULL);
}

static void pipe_connection(nc_server_t *s, nc_socket_t *c) {
  nc_socket_events_t ev = {.on_data = pipe_data, .on_drain = pipe_drain, .on_close = pipe_close};
  (void)s;
  nc_socket_set_events(c, &ev);
  nc_socket_pipe(c, c);
}

static void *pipe_slow_reader(void *arg) {
  pipe_t *t = arg;
  int fd = nct_tcp_connect(t->port);
  pthread_t w = nct_thread(pipe_writer, (void *)(intptr_t)fd);
  size_t got = 0;
  for (;;) {
    /* Slow: small reads with pauses, so the echo backs up. */
    size_t n = nct_read_all(fd, t->echo + got, got + 16384 <= PIPE_TOTAL ? 16384 : PIPE_TOTAL - got,
                            20000);
    got += n;
    if (n < 16384 || got == PIPE_TOTAL) break;
    if ((got >> 14) % 16 == 0) usleep(1000);
  }
  char extra;
  if (got == PIPE_TOTAL) nct_read_all(fd, &extra, 1, 20000);
  t->echo_got = got;
  pthread_join(w, NULL);
  close(fd);
  return NULL;
}

static void pipe_listening(nc_server_t *s) {
  pipe_t *t = nc_server_get_data(s);
  nc_address_t a;
  nc_server_address(s, &a);
  t->port = a.port;
}

static void test_client_flow_pipe_backpressure(void **state) {
  (void)state;
  nc_loop_t *loop = nct_loop(&nct_daemon);
  pipe_t t = {0};
  t.echo = malloc(PIPE_TOTAL);
  nc_server_options_t o = {.allow_half_open = 1};
  nc_server_events_t ev = {.on_connection = pipe_connection, .on_listening = pipe_listening};
  assert_int_equal(nc_server_new(loop, &o, NULL, &t.server), 0);
  nc_server_set_data(t.server, &t);
  nc_server_set_events(t.server, &ev);
  assert_int_equal(nc_server_listen(t.server, 0, "127.0.0.1", NULL), 0);
  while (t.port == 0) assert_true(nc_loop_process(loop) > 0);
  pthread_t th = nct_thread(pipe_slow_reader, &t);
  assert_int_equal(nct_run(loop, 60000), 0);
  pthread_join(th, NULL);
  assert_int_equal(t.echo_got, PIPE_TOTAL);
  check_pattern(t.echo, PIPE_TOTAL, 0);
  assert_int_equal(t.closes, 1);
  /* The source was paused at the high-water mark and resumed on 'drain';
   * what is buffered never exceeds the mark plus one credit window. */
  assert_true(t.drains > 0);
  size_t bound = 16384 + loop->credit_window + (loop->max_frame ? loop->max_frame : 65536);
  if (t.max_buffer > bound) fail_msg("bufferSize reached %zu (bound %zu)", t.max_buffer, bound);
  free(t.echo);
  nc_loop_free(loop);
}

/* ------------------------------------------- destroy from inside callbacks */

typedef struct {
  nc_server_t *server;
  int port, closes, server_closes, connects, errors;
  int write_cbs;
} dst_t;

static void dst_close(nc_socket_t *s, int had_error) {
  dst_t *t = nc_socket_get_data(s);
  (void)had_error;
  t->closes++;
  nc_socket_destroy(s); /* harmless inside 'close' too */
  if (t->closes == 5) nc_server_close(t->server, NULL);
}

static void dst_error(nc_socket_t *s, int err, const char *msg) {
  dst_t *t = nc_socket_get_data(s);
  (void)err;
  (void)msg;
  t->errors++;
}

static void dst_destroy_on_connect(nc_socket_t *s) {
  dst_t *t = nc_socket_get_data(s);
  t->connects++;
  nc_socket_destroy(s);
  nc_socket_destroy(s);
  assert_int_equal(nc_socket_write(s, "x", 1, NULL, NULL), NC_ERR_SOCKET_CLOSED);
}

static void dst_write_cb(nc_socket_t *s, int status, void *arg) {
  dst_t *t = arg;
  t->write_cbs++;
  if (status == 0) nc_socket_destroy(s);
}

static void dst_write_on_connect(nc_socket_t *s) {
  dst_t *t = nc_socket_get_data(s);
  t->connects++;
  nc_socket_write(s, "abc", 3, dst_write_cb, t);
  nc_socket_write(s, "def", 3, dst_write_cb, t);
}

static void dst_server_data(nc_socket_t *c, const char *d, size_t n) {
  (void)d;
  (void)n;
  nc_socket_destroy(c); /* from inside 'data' */
  nc_socket_pause(c);
  nc_socket_resume(c);
}

static void dst_connection(nc_server_t *s, nc_socket_t *c) {
  dst_t *t = nc_server_get_data(s);
  nc_socket_events_t ev = {.on_data = dst_server_data, .on_close = dst_close, .on_error = dst_error};
  nc_socket_set_data(c, t);
  nc_socket_set_events(c, &ev);
}

static void dst_listening(nc_server_t *s) {
  dst_t *t = nc_server_get_data(s);
  nc_address_t a;
  nc_server_address(s, &a);
  nc_loop_t *loop = nc_server_loop(s);
  nc_socket_events_t e1 = {.on_connect = dst_destroy_on_connect, .on_close = dst_close,
                           .on_error = dst_error};
  nc_socket_events_t e2 = {.on_connect = dst_write_on_connect, .on_close = dst_close,
                           .on_error = dst_error};
  for (int i = 0; i < 2; i++) {
    nc_socket_t *c;
    assert_int_equal(nc_create_connection(loop, NULL, a.port, "127.0.0.1", NULL, &c), 0);
    nc_socket_set_data(c, t);
    nc_socket_set_events(c, i == 0 ? &e1 : &e2);
  }
  /* Destroyed before it ever connected: 'close' on the next turn. */
  nc_socket_t *c;
  assert_int_equal(nc_socket_new(loop, NULL, &c), 0);
  nc_socket_set_data(c, t);
  nc_socket_set_events(c, &e1);
  nc_socket_destroy(c);
}

static void test_client_flow_destroy_inside_callbacks(void **state) {
  (void)state;
  nc_loop_t *loop = nct_loop(&nct_daemon);
  dst_t t = {0};
  nc_server_events_t ev = {.on_connection = dst_connection, .on_listening = dst_listening};
  assert_int_equal(nc_server_new(loop, NULL, NULL, &t.server), 0);
  nc_server_set_data(t.server, &t);
  nc_server_set_events(t.server, &ev);
  assert_int_equal(nc_server_listen(t.server, 0, "127.0.0.1", NULL), 0);
  assert_int_equal(nct_run(loop, 10000), 0);
  /* 3 client sockets and 2 accepted ones: every close exactly once. */
  assert_int_equal(t.connects, 2);
  assert_int_equal(t.write_cbs, 2);
  assert_int_equal(t.closes, 5);
  nc_loop_free(loop);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_client_flow_throttle_and_drain),
      cmocka_unit_test(test_client_flow_pause_resume),
      cmocka_unit_test(test_client_flow_write_after_end),
      cmocka_unit_test(test_client_flow_set_timeout),
      cmocka_unit_test(test_client_flow_pipe_backpressure),
      cmocka_unit_test(test_client_flow_destroy_inside_callbacks),
  };
  return cmocka_run_group_tests_name("client_flow", tests, nct_setup, nct_teardown);
}
