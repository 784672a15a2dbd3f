/* test_pipe.c: pipe() inside netcore (PROTOCOL.md 17), over the raw protocol.
 *
 * A Pipe moves what netcore reads from one socket into another's write queue
 * without a Data event: the seed's c.pipe(c) echo, a proxy's two pipes (a
 * cycle a->b->a), end propagation (or not, no_end), Unpipe handing the
 * stream back with no byte lost or repeated, Data in flight when the Pipe
 * left reaching the destination first, errors and closes of either side in
 * the order of section 17, Pipe in a batch with a Destroy of either side, a
 * destination whose peer never reads (the source's peer is pushed back by
 * TCP, netcore's memory stays flat, the loop keeps serving), validation
 * (EBADF, EINVAL), and a pipe that outlives its handler: it keeps moving
 * while parked and the group successor's Adopted names it, and one that
 * outlives netcore itself (--takeover). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define UNPIPE(name) NETCORE__V1__UNPIPE_REASON__UNPIPE_##name

/* Waits for socket id's Unpiped (other events of it stay in the inbox
 * unless they are WriteAcks) and checks reason and dest. */
static Netcore__V1__Unpiped *expect_unpiped(nct_client *c, uint64_t id, uint64_t dest, int reason,
                                            nct_event **keep) {
  nct_event *ev = nct_expect_skip(c, UNPIPED, id, NCT_SKIP(WRITE_ACK));
  Netcore__V1__Unpiped *u = ev->ev->unpiped;
  assert_int_equal(u->socket_id, id);
  assert_int_equal(u->dest_socket_id, dest);
  if ((int)u->reason != reason) nct_fail("Unpiped reason %d, expected %d", u->reason, reason);
  *keep = ev;
  return u;
}

/* A peer connected to h's server srv; *id gets netcore's socket. */
static int accept_one(nct_client *h, uint64_t srv, uint16_t port, uint64_t *id) {
  int peer;
  *id = nct_accept_peer(h, srv, port, &peer);
  return peer;
}

/* Sends and reads back n bytes of the pattern from offset at through an echo. */
static void echo_round(int peer, uint64_t at, size_t n) {
  char *out = malloc(n), *in = malloc(n);
  nct_pattern_fill(at, out, n);
  nct_peer_write(peer, out, n);
  nct_peer_expect(peer, out, n);
  free(out);
  free(in);
}

static void reset_peer(int fd) {
  struct linger now = {.l_onoff = 1, .l_linger = 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &now, sizeof now);
  close(fd);
}

/* c.pipe(c): echo inside netcore, no Data to the handler; the peer's end
 * ends the socket (Ended, then Unpiped{SOURCE_ENDED, dest_ended}), and
 * Closed counts every byte. */
static void test_pipe_self_echo_and_end(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_client *h = nct_env_handler(e, "echo");
  assert_true(h->minor_version >= 2); /* 2: pipes inside netcore */
  uint16_t port = 0;
  uint64_t srv = nct_listen_local(h, &port, 1), id;
  int peer = accept_one(h, srv, port, &id);
  nct_cmd_pipe(h, id, id, 0, 0);
  nct_sync(h);
  uint64_t total = 0;
  for (size_t n = 1; n <= 256 * 1024; n *= 4) {
    echo_round(peer, total, n);
    total += n;
  }
  nct_expect_none(h, id, 100); /* no Data, no WriteAck: the bytes never left netcore */
  shutdown(peer, SHUT_WR);
  nct_expect_drop(h, ENDED, id);
  nct_event *ev;
  Netcore__V1__Unpiped *u = expect_unpiped(h, id, id, UNPIPE(SOURCE_ENDED), &ev);
  assert_int_equal(u->bytes, total);
  assert_int_equal(u->bytes_read, total);
  assert_true(u->dest_ended);
  nct_event_free(ev);
  assert_int_equal(nct_peer_expect_eof(peer), 0);
  ev = nct_expect(h, CLOSED, id);
  assert_false(ev->ev->closed->had_error);
  assert_int_equal(ev->ev->closed->bytes_read, total);
  assert_int_equal(ev->ev->closed->bytes_written, total);
  nct_event_free(ev);
  close(peer);
  nct_env_finish(e);
}

/* A proxy: a->b and b->a, a cycle of two pipes; the handler's own writes
 * queued before the Pipe go first; no_end keeps b open when a ends. */
static void test_pipe_proxy_both_ways_no_end(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_client *h = nct_env_handler(e, "proxy");
  uint16_t port = 0;
  uint64_t srv = nct_listen_local(h, &port, 1), a, b;
  int pa = accept_one(h, srv, port, &a), pb = accept_one(h, srv, port, &b);
  nct_cmd_write(h, b, "hello ", 6);
  nct_cmd_pipe(h, a, b, 1, 0);
  nct_cmd_pipe(h, b, a, 0, 0);
  nct_sync(h);
  char buf[70000];
  nct_pattern_fill(0, buf, sizeof buf);
  nct_peer_write(pa, buf, sizeof buf);
  nct_peer_expect(pb, "hello ", 6);
  nct_peer_expect(pb, buf, sizeof buf);
  nct_peer_write(pb, "back", 4);
  nct_peer_expect(pa, "back", 4);
  nct_wait_acks(h, b, 1, 6); /* its own write only */
  shutdown(pa, SHUT_WR); /* a ends: b stays open (no_end) */
  nct_expect_drop(h, ENDED, a);
  nct_event *ev;
  Netcore__V1__Unpiped *u = expect_unpiped(h, a, b, UNPIPE(SOURCE_ENDED), &ev);
  assert_int_equal(u->bytes, sizeof buf);
  assert_false(u->dest_ended);
  nct_event_free(ev);
  nct_peer_expect_quiet(pb, 100);
  nct_peer_write(pb, "still", 5); /* b->a carries on */
  nct_peer_expect(pa, "still", 5);
  nct_cmd_destroy(h, a); /* a closes: the pipe into it stops first */
  u = expect_unpiped(h, b, a, UNPIPE(DEST_CLOSED), &ev);
  assert_int_equal(u->bytes, 9);
  nct_event_free(ev);
  nct_expect_drop(h, CLOSED, a);
  nct_peer_write(pb, "data", 4); /* b's input is the handler's again */
  nct_expect_data(h, b, "data", 4);
  nct_close_both(h, b, pb);
  close(pa);
  nct_env_finish(e);
}

/* Unpipe mid-stream: every byte before the Unpiped went to dest, every one
 * after it comes as Data, under the credit the source had. */
static void test_pipe_unpipe_hands_back(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_client *h = nct_env_handler_opt(e, "h", 4096, 0);
  uint16_t port = 0;
  uint64_t srv = nct_listen_local(h, &port, 1), a, b;
  int pa = accept_one(h, srv, port, &a), pb = accept_one(h, srv, port, &b);
  nct_cmd_pipe(h, a, b, 0, 0);
  nct_sync(h);
  enum { PIPED = 300000, AFTER = 10000 };
  char *buf = malloc(PIPED + AFTER);
  nct_pattern_fill(0, buf, PIPED + AFTER);
  nct_peer_write(pa, buf, PIPED);
  nct_peer_expect(pb, buf, PIPED); /* far past the 4096-byte credit window */
  nct_cmd_unpipe(h, a);
  nct_event *ev;
  Netcore__V1__Unpiped *u = expect_unpiped(h, a, b, UNPIPE(REQUESTED), &ev);
  assert_int_equal(u->bytes, PIPED);
  assert_int_equal(u->bytes_read, PIPED);
  assert_int_equal(u->bytes_written, PIPED);
  nct_event_free(ev);
  nct_cmd_unpipe(h, a);
  nct_event_free(nct_expect_error(h, "EINVAL"));
  nct_peer_write(pa, buf + PIPED, AFTER);
  nct_read_data(h, a, buf, 4096); /* the window: then nothing until credit */
  assert_int_equal(nct_pattern_check(PIPED, buf, 4096), -1);
  nct_expect_none(h, a, 100);
  nct_cmd_credit(h, a, 4096);
  nct_read_data(h, a, buf, 4096);
  assert_int_equal(nct_pattern_check(PIPED + 4096, buf, 4096), -1);
  nct_cmd_credit(h, a, 8192);
  nct_read_data(h, a, buf, AFTER - 8192);
  assert_int_equal(nct_pattern_check(PIPED + 8192, buf, AFTER - 8192), -1);
  nct_peer_expect_quiet(pb, 100);
  free(buf);
  nct_close_both(h, a, pa);
  nct_close_both(h, b, pb);
  nct_env_finish(e);
}

/* Data in flight when the Pipe left: netcore moves nothing until the
 * handler credited it (having written it to dest), so dest sees the stream
 * in order. */
static void test_pipe_waits_for_data_in_flight(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_client *h = nct_env_handler(e, "h");
  uint16_t port = 0;
  uint64_t srv = nct_listen_local(h, &port, 1), a, b;
  int pa = accept_one(h, srv, port, &a), pb = accept_one(h, srv, port, &b);
  nct_peer_write(pa, "first ", 6);
  nct_expect_data(h, a, "first ", 6); /* as if still on its way when Pipe left */
  nct_cmd_pipe(h, a, b, 0, 0);
  nct_sync(h);
  nct_peer_write(pa, "second", 6);
  nct_peer_expect_quiet(pb, 200);
  nct_expect_none(h, a, 1); /* not read: no Data either */
  nct_cmd_write(h, b, "first ", 6);
  nct_cmd_credit(h, a, 6);
  nct_peer_expect(pb, "first second", 12);
  nct_cmd_unpipe(h, a);
  nct_event *ev;
  assert_int_equal(expect_unpiped(h, a, b, UNPIPE(REQUESTED), &ev)->bytes, 6);
  nct_event_free(ev);
  nct_close_both(h, a, pa);
  nct_close_both(h, b, pb);

  /* The source's last Data and its end were on their way: dest ends only
   * after the handler wrote and credited them. */
  int pc = accept_one(h, srv, port, &a), pd = accept_one(h, srv, port, &b);
  nct_peer_write(pc, "last", 4);
  shutdown(pc, SHUT_WR);
  nct_expect_data(h, a, "last", 4);
  nct_expect_drop(h, ENDED, a);
  nct_cmd_pipe(h, a, b, 0, 0);
  nct_sync(h);
  nct_expect_none(h, a, 100);
  nct_peer_expect_quiet(pd, 1);
  nct_cmd_write(h, b, "last", 4);
  nct_cmd_credit(h, a, 4);
  Netcore__V1__Unpiped *u = expect_unpiped(h, a, b, UNPIPE(SOURCE_ENDED), &ev);
  assert_true(u->dest_ended);
  nct_event_free(ev);
  nct_peer_expect(pd, "last", 4);
  assert_int_equal(nct_peer_expect_eof(pd), 0);
  nct_cmd_end(h, a, NULL, 0);
  nct_event_free(nct_expect_skip(h, CLOSED, a, NCT_SKIP(WRITE_ACK)));
  shutdown(pd, SHUT_WR);
  nct_event_free(nct_expect_skip(h, ENDED, b, NCT_SKIP(WRITE_ACK)));
  nct_event_free(nct_expect_skip(h, CLOSED, b, NCT_SKIP(WRITE_ACK)));
  close(pc), close(pd);
  nct_env_finish(e);
}

/* Validation: unknown ids and another handler's dest are EBADF and change
 * nothing; Pipe of an ended source unpipes at once and ends dest; Pipe of a
 * closed socket is EBADF; a paused source moves on Resume; a second Pipe
 * replaces the first. */
static void test_pipe_validation_and_states(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_client *h = nct_env_handler(e, "h"), *o = nct_env_handler(e, "other");
  uint16_t port = 0, oport = 0;
  uint64_t srv = nct_listen_local(h, &port, 1), osrv = nct_listen_local(o, &oport, 1), a, b, c, x;
  int pa = accept_one(h, srv, port, &a), pb = accept_one(h, srv, port, &b);
  int pc = accept_one(h, srv, port, &c), px = accept_one(o, osrv, oport, &x);
  nct_cmd_pipe(h, a, x, 0, 0); /* another handler's dest */
  nct_event *ev = nct_expect_error(h, "EBADF");
  assert_string_equal(ev->ev->error->command, "pipe");
  nct_event_free(ev);
  nct_cmd_pipe(h, 0x7777, b, 0, 0);
  nct_event_free(nct_expect_error(h, "EBADF"));
  nct_cmd_pipe(h, a, 0x7777, 0, 0);
  nct_event_free(nct_expect_error(h, "EBADF"));
  nct_cmd_pipe(o, x, a, 0, 0);
  nct_event_free(nct_expect_error(o, "EBADF"));
  nct_peer_write(pa, "mine", 4); /* a was not piped */
  nct_expect_data(h, a, "mine", 4);

  nct_cmd_pause(h, a);
  nct_cmd_pipe(h, a, b, 0, 0);
  nct_sync(h);
  nct_peer_write(pa, "held", 4);
  nct_peer_expect_quiet(pb, 150);
  nct_cmd_credit(h, a, 4); /* "mine" was consumed */
  nct_peer_expect_quiet(pb, 50);
  nct_cmd_resume(h, a);
  nct_peer_expect(pb, "held", 4);
  nct_cmd_pipe(h, a, c, 0, 0); /* replaces a->b */
  Netcore__V1__Unpiped *u = expect_unpiped(h, a, b, UNPIPE(REQUESTED), &ev);
  assert_int_equal(u->bytes, 4);
  nct_event_free(ev);
  nct_peer_write(pa, "to c", 4);
  nct_peer_expect(pc, "to c", 4);
  nct_peer_expect_quiet(pb, 50);

  shutdown(pc, SHUT_WR); /* c ended: a Pipe of it unpipes at once and ends b */
  nct_expect_drop(h, ENDED, c);
  nct_cmd_pipe(h, c, b, 0, 0);
  u = expect_unpiped(h, c, b, UNPIPE(SOURCE_ENDED), &ev);
  assert_true(u->dest_ended);
  assert_int_equal(u->bytes, 0);
  nct_event_free(ev);
  assert_int_equal(nct_peer_expect_eof(pb), 0);
  nct_cmd_pipe(h, a, b, 0, 0); /* b ended: nothing to move, a's pipe into c stops */
  u = expect_unpiped(h, a, c, UNPIPE(REQUESTED), &ev);
  nct_event_free(ev);
  u = expect_unpiped(h, a, b, UNPIPE(DEST_CLOSED), &ev);
  assert_int_equal(u->bytes, 0);
  nct_event_free(ev);
  nct_peer_write(pa, "back", 4);
  nct_expect_data(h, a, "back", 4);
  nct_cmd_destroy(h, c);
  nct_expect_drop(h, CLOSED, c);
  nct_cmd_pipe(h, c, a, 0, 0); /* closed */
  nct_event_free(nct_expect_error(h, "EBADF"));
  nct_cmd_destroy(h, a);
  nct_cmd_destroy(h, b);
  nct_cmd_destroy(o, x);
  nct_expect_drop(h, CLOSED, a);
  nct_event_free(nct_expect_skip(h, CLOSED, b, NCT_SKIP(WRITE_ACK)));
  nct_expect_drop(o, CLOSED, x);
  close(pa), close(pb), close(pc), close(px);
  nct_env_finish(e);
}

/* Pipe in a batch, then Destroy of its destination, then of a source, in
 * the same batch: each Unpiped comes before the Closed it is about. */
static void test_pipe_batch_with_destroy(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_client *h = nct_env_handler(e, "h");
  uint16_t port = 0;
  uint64_t srv = nct_listen_local(h, &port, 1), a, b, c;
  int pa = accept_one(h, srv, port, &a), pb = accept_one(h, srv, port, &b);
  int pc = accept_one(h, srv, port, &c);
  Netcore__V1__Pipe p1 = NETCORE__V1__PIPE__INIT, p2 = NETCORE__V1__PIPE__INIT;
  p1.socket_id = a, p1.dest_socket_id = b;
  p2.socket_id = c, p2.dest_socket_id = c;
  Netcore__V1__Destroy d1 = NETCORE__V1__DESTROY__INIT, d2 = NETCORE__V1__DESTROY__INIT;
  d1.socket_id = b, d2.socket_id = c;
  nct_cmd c1 = NETCORE__V1__COMMAND__INIT, c2 = NETCORE__V1__COMMAND__INIT;
  nct_cmd c3 = NETCORE__V1__COMMAND__INIT, c4 = NETCORE__V1__COMMAND__INIT;
  c1.command_case = NETCORE__V1__COMMAND__COMMAND_PIPE, c1.pipe = &p1;
  c2.command_case = NETCORE__V1__COMMAND__COMMAND_PIPE, c2.pipe = &p2;
  c3.command_case = NETCORE__V1__COMMAND__COMMAND_DESTROY, c3.destroy = &d1;
  c4.command_case = NETCORE__V1__COMMAND__COMMAND_DESTROY, c4.destroy = &d2;
  nct_cmd *cmds[] = {&c1, &c2, &c3, &c4};
  nct_send_batch(h, cmds, 4, 0, NULL, NULL);
  nct_event *ev;
  expect_unpiped(h, a, b, UNPIPE(DEST_CLOSED), &ev);
  nct_event_free(ev);
  expect_unpiped(h, c, c, UNPIPE(SOURCE_CLOSED), &ev);
  nct_event_free(ev);
  nct_expect_drop(h, CLOSED, b);
  nct_expect_drop(h, CLOSED, c);
  nct_peer_write(pa, "live", 4);
  nct_expect_data(h, a, "live", 4);
  nct_close_both(h, a, pa);
  close(pb), close(pc);
  nct_env_finish(e);
}

/* The destination's peer resets: Unpiped{DEST_CLOSED} on the source before
 * dest's SocketError; the source stays open, its input comes as Data. The
 * source's peer resets: Unpiped{SOURCE_CLOSED} before its SocketError. */
static void test_pipe_errors_either_side(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_client *h = nct_env_handler(e, "h");
  uint16_t port = 0;
  uint64_t srv = nct_listen_local(h, &port, 1), a, b, c, d;
  int pa = accept_one(h, srv, port, &a), pb = accept_one(h, srv, port, &b);
  nct_cmd_pipe(h, a, b, 0, 0);
  nct_sync(h);
  nct_peer_write(pa, "x", 1);
  nct_peer_expect(pb, "x", 1);
  reset_peer(pb);
  /* A write into the reset connection is what makes netcore see it. */
  char chunk[4096] = {0};
  nct_event *ev = NULL;
  for (int i = 0; i < 200 && !(ev = nct_take(h, EV(UNPIPED), a, 20)); i++)
    nct_peer_write(pa, chunk, sizeof chunk);
  if (!ev) nct_fail("no Unpiped after the destination's peer reset");
  assert_int_equal(ev->ev->unpiped->reason, UNPIPE(DEST_CLOSED));
  nct_event_free(ev);
  ev = nct_expect_skip(h, SOCKET_ERROR, b, NCT_SKIP(ENDED));
  nct_event_free(ev);
  nct_expect_drop(h, CLOSED, b);
  nct_sync(h);
  /* What a sends now is the handler's (after the pushed zeros). */
  nct_peer_write(pa, "A", 1);
  uint64_t deadline = nct_now_ms() + NCT_WAIT;
  for (int seen = 0; !seen;) {
    ev = nct_take(h, EV(DATA), a, NCT_WAIT);
    if (!ev || nct_now_ms() > deadline) nct_fail("a's input never reached the handler");
    seen = ev->len && ev->data[ev->len - 1] == 'A';
    nct_cmd_credit(h, a, (uint32_t)ev->len);
    nct_event_free(ev);
  }

  int pc = accept_one(h, srv, port, &c), pd = accept_one(h, srv, port, &d);
  nct_cmd_pipe(h, c, d, 0, 0);
  nct_sync(h);
  reset_peer(pc);
  expect_unpiped(h, c, d, UNPIPE(SOURCE_CLOSED), &ev);
  nct_event_free(ev);
  nct_expect_drop(h, SOCKET_ERROR, c);
  nct_expect_drop(h, CLOSED, c);
  nct_peer_write(pd, "d", 1); /* d stays open, its input the handler's */
  nct_expect_data(h, d, "d", 1);
  nct_close_both(h, d, pd);
  nct_cmd_destroy(h, a);
  nct_event_free(nct_expect_skip(h, CLOSED, a, NCT_SKIP(DATA)));
  close(pa);
  nct_env_finish(e);
}

/* ---- a destination whose peer never reads ----------------------------- */

typedef struct pusher {
  int fd;
  uint64_t total;
  _Atomic uint64_t written;
  _Atomic int stop;
  pthread_t th;
} pusher;

static void *push_main(void *arg) {
  pusher *p = arg;
  enum { CHUNK = 64 * 1024 };
  char *buf = malloc(CHUNK);
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
        poll(&pf, 1, 50);
      } else {
        atomic_store(&p->stop, 1);
      }
    }
    w += off;
  }
  free(buf);
  return NULL;
}

/* 64 MiB into a pipe whose destination is not read: the pusher is stopped
 * by TCP, netcore's RSS stays flat, Ping and a bystander are served; then
 * the reader drains it all, in order. */
static void test_pipe_slow_reader_bounded(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_env_bystander_start(e);
  nct_client *h = nct_env_handler(e, "h");
  uint16_t port = 0;
  uint64_t srv = nct_listen_local(h, &port, 1), a, b;
  int pa = accept_one(h, srv, port, &a), pb = accept_one(h, srv, port, &b);
  nct_cmd_pipe(h, a, b, 0, 0);
  nct_sync(h);
  long rss0 = nct_rss_kib(e->d.pid);
  pusher p = {.fd = pa, .total = 64ull << 20};
  pthread_create(&p.th, NULL, push_main, &p);
  uint64_t last = 0, since = nct_now_ms();
  while (nct_now_ms() - since < 300) { /* until the pusher is blocked */
    nct_pump(h, 20);
    uint64_t w = atomic_load(&p.written);
    if (w != last) last = w, since = nct_now_ms();
    if (w >= p.total) nct_fail("all 64 MiB went in: nothing pushed back");
  }
  long rss1 = nct_rss_kib(e->d.pid);
  nct_sync(h);
  nct_env_bystander_check(e);
  nct_expect_none(h, a, 1);
  if (rss1 - rss0 > 4096)
    nct_fail("netcore grew by %ld KiB behind a reader that never reads", rss1 - rss0);
  /* Now read it all, checking every byte. */
  char *buf = malloc(1 << 20);
  uint64_t got = 0;
  while (got < p.total) {
    int eof = 0;
    size_t n = nct_fd_read(pb, buf, 1 << 20, NCT_WAIT, &eof);
    if (n == 0) nct_fail("the stream stalled at byte %llu", (unsigned long long)got);
    long bad = nct_pattern_check(got, buf, n);
    if (bad >= 0) nct_fail("byte %llu is wrong", (unsigned long long)(got + (uint64_t)bad));
    got += n;
  }
  pthread_join(p.th, NULL);
  long rss2 = nct_rss_kib(e->d.pid);
  if (rss2 - rss0 > 4096) nct_fail("netcore grew by %ld KiB moving 64 MiB", rss2 - rss0);
  free(buf);
  nct_cmd_unpipe(h, a);
  nct_event *ev;
  assert_int_equal(expect_unpiped(h, a, b, UNPIPE(REQUESTED), &ev)->bytes, p.total);
  nct_event_free(ev);
  nct_close_both(h, a, pa);
  nct_close_both(h, b, pb);
  nct_env_finish(e);
}

/* ---- a pipe outlives its handler ---------------------------------------- */

static uint64_t listen_group(nct_client *c, uint16_t *port, const char *group) {
  uint64_t id = nct_new_id(c);
  nct_cmd_listen_tcp(c, id, "127.0.0.1", *port, 1, 0, 0, group);
  nct_event *ev = nct_expect(c, LISTENING, id);
  *port = (uint16_t)ev->ev->listening->address->port;
  nct_event_free(ev);
  return id;
}

/* The only member of a group dies (kill -9: its DEALER just closes): the
 * echo goes on with no handler at all; a member that joins adopts the
 * socket, its Adopted names the pipe; then it unpipes and gets the input. */
static void test_pipe_survives_handler_death(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_client *a = nct_env_handler(e, "a");
  uint16_t port = 0;
  uint64_t sa = listen_group(a, &port, "g"), id;
  int peer = accept_one(a, sa, port, &id);
  nct_cmd_pipe(a, id, id, 0, 32768);
  nct_sync(a);
  echo_round(peer, 0, 1000);
  nct_env_die(e, a); /* dies, and netcore has seen it: the echo runs with no handler */
  for (int i = 0; i < 20; i++) echo_round(peer, 1000 + (uint64_t)i * 5000, 5000);
  nct_client *b = nct_env_handler(e, "b");
  uint64_t sb = listen_group(b, &port, "g");
  nct_event *ev = nct_take(b, EV(ADOPTED), id, NCT_WAIT);
  if (!ev) nct_fail("no Adopted");
  Netcore__V1__Adopted *ad = ev->ev->adopted;
  assert_int_equal(ad->server_id, sb);
  assert_int_equal(ad->pipe_dest_socket_id, id);
  assert_int_equal(ad->pipe_high_water_mark, 32768);
  assert_false(ad->pipe_no_end);
  assert_int_equal(ad->replay_bytes, 0);
  assert_int_equal(ad->bytes_read, 101000);
  assert_int_equal(ad->bytes_written, 101000);
  nct_event_free(ev);
  echo_round(peer, 101000, 3000);
  nct_expect_none(b, id, 50);
  nct_cmd_unpipe(b, id);
  Netcore__V1__Unpiped *u = expect_unpiped(b, id, id, UNPIPE(REQUESTED), &ev);
  assert_int_equal(u->bytes, 3000); /* since the adoption */
  assert_int_equal(u->bytes_read, 104000);
  nct_event_free(ev);
  nct_peer_write(peer, "mine", 4);
  nct_expect_data(b, id, "mine", 4);
  nct_close_both(b, id, peer);
  nct_env_finish(e);
}

/* A proxy's two sockets (x->y, y->x) go to one heir when their owner
 * dies, although heirs take a dead member's sockets in turn. */
static void test_pipe_ends_move_together(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_client *a = nct_env_handler(e, "a");
  uint16_t port = 0;
  uint64_t sa = listen_group(a, &port, "g"), x, y;
  int px = accept_one(a, sa, port, &x), py = accept_one(a, sa, port, &y);
  nct_cmd_pipe(a, x, y, 0, 0);
  nct_cmd_pipe(a, y, x, 0, 0);
  nct_client *b = nct_env_handler(e, "b"), *c = nct_env_handler(e, "c");
  uint64_t sb = listen_group(b, &port, "g"), sc = listen_group(c, &port, "g");
  nct_sync(a);
  nct_env_release(e, a, 0);
  nct_event *ex = NULL, *ey = NULL;
  nct_client *hx = NULL, *hy = NULL;
  for (uint64_t end = nct_now_ms() + NCT_WAIT; (!ex || !ey) && nct_now_ms() < end;) {
    nct_client *hs[2] = {b, c};
    for (int i = 0; i < 2; i++) {
      nct_event *ev;
      if (!ex && (ev = nct_take(hs[i], EV(ADOPTED), x, 10))) ex = ev, hx = hs[i];
      if (!ey && (ev = nct_take(hs[i], EV(ADOPTED), y, 10))) ey = ev, hy = hs[i];
    }
  }
  if (!ex || !ey) nct_fail("both sockets were not adopted");
  if (hx != hy) nct_fail("the two ends of the pipes went to %s and %s", hx->name, hy->name);
  assert_int_equal(ex->ev->adopted->pipe_dest_socket_id, y);
  assert_int_equal(ey->ev->adopted->pipe_dest_socket_id, x);
  assert_int_equal(ex->ev->adopted->server_id, hx == b ? sb : sc);
  nct_event_free(ex);
  nct_event_free(ey);
  nct_peer_write(px, "over", 4);
  nct_peer_expect(py, "over", 4);
  nct_peer_write(py, "back", 4);
  nct_peer_expect(px, "back", 4);
  nct_cmd_destroy(hx, x);
  nct_cmd_destroy(hx, y);
  nct_event_free(nct_expect_skip(hx, CLOSED, x, NCT_SKIP(UNPIPED)));
  nct_event_free(nct_expect_skip(hx, CLOSED, y, NCT_SKIP(UNPIPED)));
  close(px), close(py);
  nct_env_finish(e);
}

/* `netcore --takeover` replaces the running netcore under a self-pipe: the
 * echo goes on in the new process with no handler, a handler of the same
 * principal that listens again adopts it (Adopted names the pipe, bytes
 * moved so far carry over), and Unpipe hands the input back. */
static void test_pipe_survives_takeover(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_client *h = nct_env_handler(e, "h");
  uint16_t port = 0;
  uint64_t srv = nct_listen_local(h, &port, 1), id;
  int peer = accept_one(h, srv, port, &id);
  nct_cmd_pipe(h, id, id, 1, 0);
  nct_sync(h);
  echo_round(peer, 0, 70000);

  pid_t old = e->d.pid, pid = fork();
  if (pid < 0) nct_fail("fork");
  if (pid == 0) {
    execl(nct_netcore_path(), nct_netcore_path(), "--bind", e->d.endpoint, "--takeover",
          "--handoff-ms", "20000", "--log-level", "error", (char *)NULL);
    _exit(127);
  }
  int status = 0;
  if (waitpid(old, &status, 0) != old || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    nct_fail("the old netcore did not exit 0 after the takeover (status 0x%x)", status);
  e->d.pid = pid;
  nct_env_release(e, h, 0); /* its link was to the old netcore */
  for (int i = 0; i < 10; i++) echo_round(peer, 70000 + (uint64_t)i * 3000, 3000);

  nct_client *n = nct_client_new(e->d.endpoint, "n", 0);
  nct_env_adopt(e, n);
  nct_hello(n, 0, 60000);
  uint64_t srv2 = nct_new_id(n);
  nct_cmd_listen_tcp(n, srv2, "127.0.0.1", port, 1, 0, 0, NULL);
  nct_expect_drop(n, LISTENING, srv2);
  nct_event *ev = nct_take(n, EV(ADOPTED), id, NCT_WAIT);
  if (!ev) nct_fail("no Adopted after the takeover");
  assert_int_equal(ev->ev->adopted->pipe_dest_socket_id, id);
  assert_true(ev->ev->adopted->pipe_no_end);
  assert_int_equal(ev->ev->adopted->pipe_high_water_mark, 16384);
  nct_event_free(ev);
  echo_round(peer, 100000, 5000);
  nct_cmd_unpipe(n, id);
  Netcore__V1__Unpiped *u = expect_unpiped(n, id, id, UNPIPE(REQUESTED), &ev);
  assert_int_equal(u->bytes, 5000); /* since the adoption */
  assert_int_equal(u->bytes_read, 105000);
  assert_int_equal(u->bytes_written, 105000);
  nct_event_free(ev);
  nct_peer_write(peer, "mine", 4);
  nct_expect_data(n, id, "mine", 4);
  nct_close_both(n, id, peer);
  nct_env_release(e, n, 1);
  nct_daemon_stop(&e->d);
}

#define T(f) cmocka_unit_test_setup_teardown(f, nct_env_setup, nct_env_teardown)

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      T(test_pipe_self_echo_and_end),
      T(test_pipe_proxy_both_ways_no_end),
      T(test_pipe_unpipe_hands_back),
      T(test_pipe_waits_for_data_in_flight),
      T(test_pipe_validation_and_states),
      T(test_pipe_batch_with_destroy),
      T(test_pipe_errors_either_side),
      T(test_pipe_slow_reader_bounded),
      T(test_pipe_survives_handler_death),
      T(test_pipe_ends_move_together),
      T(test_pipe_survives_takeover),
  };
  return NCT_RUN(argc, argv, tests);
}
