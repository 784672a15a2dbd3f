/* test_backpressure.c: end-to-end backpressure with real sockets. A peer
 * thread pushes a position-dependent byte stream as fast as the kernel lets
 * it; netcore must stop reading when the handler gives no credit, or when the
 * handler's ZeroMQ pipe is full, so that the TCP window stops the peer and
 * netcore's memory stays flat; afterwards every byte arrives, in order. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

/* ---- the pushing peer (its own thread: no cmocka calls in here) ------- */

typedef struct pusher {
  int fd;
  uint64_t total;
  _Atomic uint64_t written;
  _Atomic int done;
  _Atomic int stop;
  int err; /* errno of a failed send, 0 if none */
  pthread_t th;
} pusher;

static void *push_main(void *arg) {
  pusher *p = arg;
  enum { CHUNK = 256 * 1024 };
  uint8_t *buf = malloc(CHUNK);
  fcntl(p->fd, F_SETFL, fcntl(p->fd, F_GETFL) | O_NONBLOCK);
  uint64_t w = 0;
  while (w < p->total && !atomic_load(&p->stop)) {
    size_t n = p->total - w < CHUNK ? (size_t)(p->total - w) : CHUNK;
    nct_pattern_fill(w, buf, n);
    size_t off = 0;
    while (off < n && !atomic_load(&p->stop)) {
      ssize_t k = send(p->fd, buf + off, n - off, MSG_NOSIGNAL);
      if (k > 0) {
        off += (size_t)k;
        atomic_store(&p->written, w + off);
      } else if (k < 0 && (errno == EAGAIN || errno == EINTR)) {
        struct pollfd pf = {p->fd, POLLOUT, 0};
        poll(&pf, 1, 100);
      } else {
        p->err = errno;
        atomic_store(&p->stop, 1);
      }
    }
    w += off;
  }
  if (w == p->total) shutdown(p->fd, SHUT_WR);
  free(buf);
  atomic_store(&p->done, 1);
  return NULL;
}

/* The pusher running, if any: a failed test leaves its frame (and the
 * pusher on it) before push_join; the teardown stops and joins it, so its
 * thread never writes into a reused stack or a later test's fd. */
static pusher *running;

static void push_start(pusher *p, int fd, uint64_t total) {
  memset(p, 0, sizeof *p);
  running = p;
  p->fd = fd;
  p->total = total;
  if (pthread_create(&p->th, NULL, push_main, p) != 0) nct_fail("pthread_create");
}

static void push_join(pusher *p) {
  atomic_store(&p->stop, 1);
  pthread_join(p->th, NULL);
  running = NULL;
}

static int teardown(void **state) {
  if (running) push_join(running);
  return nct_env_teardown(state);
}

/* Waits until the peer made no progress for quiet_ms (it is blocked by the
 * TCP window), pumping h's events meanwhile if h is not NULL. Returns the
 * bytes written by then. */
static uint64_t wait_blocked(pusher *p, nct_client *h, int quiet_ms, int max_ms) {
  uint64_t deadline = nct_now_ms() + (uint64_t)max_ms;
  uint64_t last = atomic_load(&p->written), since = nct_now_ms();
  for (;;) {
    if (h)
      nct_pump(h, 20);
    else {
      struct timespec ts = {0, 20 * 1000 * 1000};
      nanosleep(&ts, NULL);
    }
    uint64_t now = nct_now_ms(), w = atomic_load(&p->written);
    if (w != last) {
      last = w;
      since = now;
    } else if (now - since >= (uint64_t)quiet_ms) {
      return w;
    }
    if (atomic_load(&p->done))
      nct_fail("the peer wrote all %llu bytes (error %d): netcore never pushed back",
               (unsigned long long)p->total, p->err);
    if (now > deadline) nct_fail("the peer never got blocked within %d ms", max_ms);
  }
}

/* Drains socket id of h until `total` bytes and Ended arrived, checking the
 * pattern from offset `from` and granting credit back in batches, as a
 * client library does. */
static void drain_all(nct_client *h, uint64_t id, uint64_t from, uint64_t total, uint32_t batch) {
  uint64_t got = from, since_grant = 0;
  uint64_t deadline = nct_now_ms() + 60000;
  while (got < total) {
    nct_event *ev = nct_take(h, -1, id, 5000);
    if (!ev)
      nct_fail("stream stalled at byte %llu of %llu", (unsigned long long)got,
               (unsigned long long)total);
    if (ev->ev->event_case == EV(DATA)) {
      long bad = nct_pattern_check(got, ev->data, ev->len);
      if (bad >= 0)
        nct_fail("byte %llu of the stream is wrong (lost, repeated or reordered data)",
                 (unsigned long long)(got + (uint64_t)bad));
      if (got + ev->len > total) nct_fail("more bytes than the peer sent");
      got += ev->len;
      since_grant += ev->len;
      if (since_grant >= batch) {
        nct_cmd_credit(h, id, (uint32_t)since_grant);
        since_grant = 0;
      }
    } else if (ev->ev->event_case != EV(WRITE_ACK)) {
      char s[512];
      nct_fail("at byte %llu of %llu: unexpected %s", (unsigned long long)got,
               (unsigned long long)total, nct_event_str(ev, s, sizeof s));
    }
    nct_event_free(ev);
    if (nct_now_ms() > deadline) nct_fail("draining took over 60 s");
  }
  nct_cmd_credit(h, id, batch); /* so netcore reads the FIN */
  nct_expect_drop(h, ENDED, id);
}

/* A peer pushes up to 1 GiB at a handler that grants nothing beyond its
 * initial window: the handler gets exactly the window, netcore's RSS stays
 * flat, the peer is blocked; granting credit then delivers every byte. */
static void test_backpressure_credit_stops_peer(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  enum { WINDOW = 64 * 1024 };
  nct_client *h = nct_env_handler_opt(e, "slow", WINDOW, 0);
  assert_int_equal(h->credit_window, WINDOW);
  uint16_t port;
  uint64_t srv = nct_listen_local(h, &port, 0);
  int peer;
  uint64_t id = nct_accept_peer(h, srv, port, &peer);
  long rss0 = nct_rss_kib(e->d.pid);

  const uint64_t total = 1ull << 30;
  static pusher p; /* static: see running */
  push_start(&p, peer, total);
  uint64_t blocked_at = wait_blocked(&p, h, 1000, 30000);
  long rss1 = nct_rss_kib(e->d.pid);

  /* Exactly the window reached the handler, and nothing after it. */
  uint8_t *first = malloc(WINDOW);
  nct_read_data(h, id, first, WINDOW);
  nct_expect_none(h, id, NCT_QUIET);
  assert_int_equal(nct_pattern_check(0, first, WINDOW), -1);
  free(first);
  print_message("peer blocked after %llu bytes; netcore RSS %ld -> %ld KiB\n",
                (unsigned long long)blocked_at, rss0, rss1);
  if (rss1 - rss0 > 4 * 1024)
    nct_fail(
        "netcore's RSS grew by %ld KiB while the peer pushed %llu bytes at a handler "
        "without credit",
        rss1 - rss0, (unsigned long long)blocked_at);
  nct_env_bystander_check(e); /* (no bystander here: just Ping) */

  /* Credit again: the rest of the gigabyte arrives, byte-exact. */
  nct_cmd_credit(h, id, 4u << 20);
  drain_all(h, id, WINDOW, total, 1u << 20);
  long rss2 = nct_rss_kib(e->d.pid);
  if (rss2 - rss0 > 16 * 1024)
    nct_fail("netcore's RSS grew by %ld KiB moving 1 GiB with 4 MiB of credit", rss2 - rss0);
  push_join(&p);
  assert_int_equal(atomic_load(&p.written), total);
  nct_cmd_end(h, id, NULL, 0);
  nct_peer_expect_eof(peer);
  nct_event *ev = nct_expect_skip(h, CLOSED, id, NCT_SKIP(WRITE_ACK));
  assert_false(ev->ev->closed->had_error);
  assert_int_equal(ev->ev->closed->bytes_read, total);
  nct_event_free(ev);
  close(peer);
  nct_cmd_server_close(h, srv);
  nct_expect_drop(h, SERVER_CLOSED, srv);
  nct_env_finish(e);
}

/* A handler that stops reading its DEALER: its pipe fills, netcore stops
 * reading the handler's sockets (the peer is blocked although credit is
 * plentiful), netcore's memory stays bounded and other handlers are served;
 * once the handler reads again everything arrives in order. */
static void test_backpressure_full_pipe_stops_reading(void **state) {
  nct_env *e = *state;
  /* A small ZeroMQ high-water mark makes the pipe fill after a few MiB. */
  const char *flags[] = {"--hwm", "16", "--max-credit", "67108864", NULL};
  nct_env_start(e, flags);
  nct_client *h = nct_client_new(e->d.endpoint, "deaf", 16);
  nct_env_adopt(e, h);
  nct_hello(h, 64u << 20, 60000);
  uint32_t credit = h->credit_window;
  assert_true(credit >= (16u << 20));
  uint16_t port;
  uint64_t srv = nct_listen_local(h, &port, 0);
  int peer;
  uint64_t id = nct_accept_peer(h, srv, port, &peer);
  long rss0 = nct_rss_kib(e->d.pid);

  const uint64_t total = 256ull << 20;
  static pusher p; /* static: see running */
  push_start(&p, peer, total);
  /* h reads nothing from here on. */
  uint64_t blocked_at = wait_blocked(&p, NULL, 1000, 30000);
  long rss1 = nct_rss_kib(e->d.pid);
  nct_sync(e->observer); /* netcore's loop is not stuck */
  print_message("peer blocked after %llu bytes (credit %u); netcore RSS %ld -> %ld KiB\n",
                (unsigned long long)blocked_at, credit, rss0, rss1);
  if (blocked_at >= credit / 2)
    nct_fail(
        "the peer wrote %llu bytes to a handler that reads nothing: netcore kept reading "
        "up to the credit (%u) instead of stopping at the full pipe",
        (unsigned long long)blocked_at, credit);
  if (rss1 - rss0 > 16 * 1024)
    nct_fail("netcore's RSS grew by %ld KiB while the handler's pipe was full", rss1 - rss0);
  /* Still flat a while later. */
  wait_blocked(&p, NULL, 500, 30000);
  long rss2 = nct_rss_kib(e->d.pid);
  if (rss2 - rss1 > 2 * 1024) nct_fail("netcore's RSS keeps growing: %ld -> %ld KiB", rss1, rss2);

  /* The handler reads again: every byte, in order. */
  drain_all(h, id, 0, total, 4u << 20);
  push_join(&p);
  nct_cmd_end(h, id, NULL, 0);
  nct_peer_expect_eof(peer);
  nct_event *ev = nct_expect_skip(h, CLOSED, id, NCT_SKIP(WRITE_ACK));
  assert_int_equal(ev->ev->closed->bytes_read, total);
  nct_event_free(ev);
  close(peer);
  nct_cmd_server_close(h, srv);
  nct_expect_drop(h, SERVER_CLOSED, srv);
  nct_env_finish(e);
}

#define T(f) cmocka_unit_test_setup_teardown(f, nct_env_setup, teardown)

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      T(test_backpressure_credit_stops_peer),
      T(test_backpressure_full_pipe_stops_reading),
  };
  return NCT_RUN(argc, argv, tests);
}
