/* test_hostile.c: what an attacker of the handler link or a TCP peer tried
 * against netcore (issue "nothing a handler or a peer sends can crash, stall
 * or bloat netcore"), each through the real binary: nested batches before and
 * after Hello, oversized batches and a fair loop, writes queued on a
 * connecting socket, handlers that never read (pings, credit), the global
 * write memory, per-handler limits, and the RST of a stream cut at shutdown. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <zmq.h>

#include "harness.h"

/* ---------------------------------------------------------------- helpers */

/* Appends a protobuf varint. */
static size_t varint(uint8_t *p, uint64_t v) {
  size_t n = 0;
  for (; v >= 0x80; v >>= 7) p[n++] = (uint8_t)(v | 0x80);
  p[n++] = (uint8_t)v;
  return n;
}

/* A Command nesting `batch` depth deep around a Ping, packed from the inside
 * out by hand (protobuf-c's packer would recurse as deep as its unpacker).
 * Returns its length; the bytes are at the start of buf. */
static size_t nested_batches(size_t depth, uint8_t *buf, size_t cap) {
  size_t start = cap - 2, len = 2;
  buf[start] = (12 << 3) | 2, buf[start + 1] = 0; /* Command{ping{}} */
  for (size_t d = 0; d < depth; d++) {
    for (int wrap = 0; wrap < 2; wrap++) {
      uint8_t head[16];
      size_t h = 0;
      if (wrap == 0) head[h++] = (1 << 3) | 2;         /* CommandBatch.commands */
      else head[h++] = 0x92, head[h++] = 0x03;          /* Command.batch (field 50) */
      h += varint(head + h, len);
      if (start < h) fail_msg("nested_batches: buffer too small");
      start -= h;
      memcpy(buf + start, head, h);
      len += h;
    }
  }
  memmove(buf, buf + start, len);
  return len;
}

/* A Command{batch} of n Pings with nonces first, first+1, ...; malloc'd. */
static uint8_t *ping_batch(size_t n, uint64_t first, size_t *out_len) {
  uint8_t *body = malloc(n * 16 + 16), *msg;
  size_t len = 0;
  for (size_t i = 0; i < n; i++) {
    uint8_t ping[12], cmd[16];
    size_t pl = 0, cl = 0;
    ping[pl++] = 1 << 3; /* Ping.nonce, varint */
    pl += varint(ping + pl, first + i);
    cmd[cl++] = (12 << 3) | 2; /* Command.ping */
    cl += varint(cmd + cl, pl);
    memcpy(cmd + cl, ping, pl);
    cl += pl;
    body[len++] = (1 << 3) | 2; /* CommandBatch.commands */
    len += varint(body + len, cl);
    memcpy(body + len, cmd, cl);
    len += cl;
  }
  msg = malloc(len + 16);
  size_t h = 0;
  msg[h++] = 0x92, msg[h++] = 0x03;
  h += varint(msg + h, len);
  memcpy(msg + h, body, len);
  free(body);
  *out_len = h + len;
  return msg;
}

/* How long a Ping of c takes to be answered, in ms. */
static uint64_t ping_ms(nct_client *c) {
  uint64_t t0 = nct_now_ms();
  nct_sync(c);
  return nct_now_ms() - t0;
}

/* Whether 127.0.0.1:port can be bound (nobody listens there). A bind, not a
 * connect: a connect could reach another test's listener that took the port. */
static int port_free(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int rc = bind(fd, (struct sockaddr *)&sin, sizeof sin);
  close(fd);
  return rc == 0;
}

#define WAIT_UNTIL(cond, ms)                                                  \
  do {                                                                        \
    uint64_t until_ = nct_now_ms() + (uint64_t)(ms);                          \
    while (!(cond) && nct_now_ms() < until_) usleep(20000);                   \
  } while (0)

/* ---------------------------------------------------------------- parsing */

/* A Command nesting batch 4,400 deep (35 KB), sent before any Hello, used to
 * overflow netcore's stack. Before Hello only a small Hello is read at all;
 * after Hello deep nesting is refused by the wire walk; netcore stays up and
 * welcomes the next handler. */
static void test_hostile_nested_batch_before_hello(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_env_bystander_start(e);
  static uint8_t buf[400000];
  nct_client *x = nct_client_new(e->d.endpoint, "x", 0);
  nct_env_adopt(e, x);

  size_t n = nested_batches(4400, buf, sizeof buf);
  assert_true(n > 30000);
  nct_send_frames(x, buf, n, 0, NULL, NULL);
  nct_event_free(nct_expect_error(x, "EMSGSIZE"));
  n = nested_batches(300, buf, sizeof buf); /* small enough to be read before Hello */
  assert_true(n < 4096);
  nct_send_frames(x, buf, n, 0, NULL, NULL);
  nct_event_free(nct_expect_error(x, "ERR_INVALID_ARG_VALUE"));

  nct_hello(x, 0, 60000);
  n = nested_batches(40000, buf, sizeof buf); /* within --max-envelope */
  nct_send_frames(x, buf, n, 0, NULL, NULL);
  nct_event *ev = nct_expect_error(x, "ERR_INVALID_ARG_VALUE");
  assert_non_null(strstr(ev->ev->error->message, "never nest"));
  nct_event_free(ev);
  nct_sync(x);

  nct_client *y = nct_env_handler(e, "after");
  nct_sync(y);
  nct_env_bystander_check(e);
  nct_env_finish(e);
}

/* A batch of a million commands is refused before it runs (EMSGSIZE); a flood
 * of full-size batches is carried out completely, every Ping answered, while a
 * bystander's Ping is answered between them (the loop stays fair). */
static void test_hostile_batches_keep_loop_fair(void **state) {
  nct_env *e = *state;
  const char *flags[] = {"--max-envelope", "16777216", "--handler-budget", "1073741824", NULL};
  nct_env_start(e, flags);
  nct_env_bystander_start(e);
  nct_client *a = nct_env_handler(e, "flood");

  size_t len;
  uint8_t *huge = ping_batch(1000000, 1, &len);
  nct_send_frames(a, huge, len, 0, NULL, NULL);
  free(huge);
  nct_event *ev = nct_expect_error(a, "EMSGSIZE");
  assert_non_null(strstr(ev->ev->error->message, "1000000 commands"));
  nct_event_free(ev);

  enum { BATCHES = 300, PER = 1024 };
  for (uint64_t b = 0; b < BATCHES; b++) {
    uint8_t *m = ping_batch(PER, 1000 + b * PER, &len);
    nct_send_frames(a, m, len, 0, NULL, NULL);
    free(m);
  }
  uint64_t worst = 0;
  for (int i = 0; i < 10; i++) {
    uint64_t ms = ping_ms(e->observer);
    if (ms > worst) worst = ms;
  }
  print_message("bystander ping during a flood of %d x %d commands: worst %llu ms\n", BATCHES,
                PER, (unsigned long long)worst);
  if (worst > (uint64_t)(1000 * nct_time_scale))
    nct_fail("a bystander's ping took %llu ms while another handler flooded",
             (unsigned long long)worst);
  /* Every Ping of the flood is answered, in order. */
  for (uint64_t i = 0; i < (uint64_t)BATCHES * PER; i++) {
    nct_event *p = nct_expect_global(a, PONG);
    if (p->ev->pong->nonce != 1000 + i)
      nct_fail("pong %llu has nonce %llu", (unsigned long long)i,
               (unsigned long long)p->ev->pong->nonce);
    nct_event_free(p);
  }
  nct_env_bystander_check(e);
  nct_env_finish(e);
}

/* 120,000 one-byte Writes to a socket still connecting cost linear time: a
 * Ping behind them is answered promptly, and once connected every byte
 * arrives in order. */
static void test_hostile_writes_while_connecting(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_client *h = nct_env_handler(e, "writer");
  /* A listener whose accept queue is full drops SYNs: the connect waits. */
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(lfd, (struct sockaddr *)&sin, sizeof sin), 0);
  assert_int_equal(listen(lfd, 0), 0);
  uint16_t port = nct_local_port(lfd);
  int filler = nct_tcp_connect("127.0.0.1", port);
  usleep(100000);

  uint64_t id = nct_new_id(h);
  nct_cmd_connect_tcp(h, id, "127.0.0.1", port, 0);
  enum { N = 120000, PER = 1000 };
  static uint8_t bytes[N];
  nct_pattern_fill(0, bytes, N);
  Netcore__V1__Write w = NETCORE__V1__WRITE__INIT;
  w.socket_id = id;
  nct_cmd c = NETCORE__V1__COMMAND__INIT;
  c.command_case = NETCORE__V1__COMMAND__COMMAND_WRITE;
  c.write = &w;
  nct_cmd *cmds[PER];
  const void *p[PER];
  size_t l[PER];
  for (int i = 0; i < PER; i++) cmds[i] = &c, l[i] = 1;
  for (int b = 0; b < N / PER; b++) {
    for (int i = 0; i < PER; i++) p[i] = &bytes[b * PER + i];
    nct_send_batch(h, cmds, PER, PER, p, l);
  }
  uint64_t ms = ping_ms(h);
  print_message("ping behind %d queued writes: %llu ms\n", N, (unsigned long long)ms);
  if (ms > (uint64_t)(3000 * nct_time_scale))
    nct_fail("a ping behind %d writes to a connecting socket took %llu ms", N,
             (unsigned long long)ms);

  int first = nct_accept(lfd, NCT_WAIT); /* the filler: makes room */
  assert_true(first >= 0);
  int peer = nct_accept(lfd, 3 * NCT_WAIT); /* netcore's SYN is retried */
  assert_true(peer >= 0);
  nct_expect_drop(h, CONNECTED, id);
  static uint8_t got[N];
  size_t n = nct_fd_read(peer, got, N, NCT_WAIT, NULL);
  assert_int_equal(n, N);
  assert_int_equal(nct_pattern_check(0, got, N), -1);
  nct_wait_acks(h, id, N, N);
  nct_close_both(h, id, peer);
  close(first);
  close(filler);
  close(lfd);
  nct_env_finish(e);
}

/* A handler that vanishes right after commands whose answers are about a
 * server (a Listen that fails, a Listen that works, a ServerClose): the send
 * that finds it gone must not tear the server down under the code that is
 * still using it (the live fuzzer found a use-after-free there; ASan checks). */
static void test_hostile_vanish_after_server_commands(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_env_bystander_start(e);
  char bad[256];
  nct_daemon_path(&e->d, "no-such-dir/x.sock", bad, sizeof bad);
  for (int i = 0; i < 200; i++) {
    nct_client *c = nct_client_new(e->d.endpoint, "vanisher", 0);
    nct_hello(c, 0, 60000);
    uint64_t a = nct_new_id(c), b = nct_new_id(c);
    nct_cmd_listen_path(c, a, bad);                           /* ServerError */
    nct_cmd_listen_tcp(c, b, "127.0.0.1", 0, 0, 0, 0, NULL); /* Listening */
    if (i % 2) nct_cmd_server_close(c, b);                   /* ServerClosed */
    nct_client_free(c); /* gone without Bye, answers still on their way */
  }
  nct_client *after = nct_env_handler(e, "after");
  nct_sync(after);
  nct_env_bystander_check(e);
  nct_env_finish(e);
}

/* ---------------------------------------------------------------- budgets */

/* A handler that sends Pings and never reads: past --handler-budget its
 * Pings go unanswered, netcore's memory stays bounded, and after a lease over
 * the budget it is dropped (its server closed) although it never went quiet. */
static void test_hostile_budget_pings_never_read(void **state) {
  nct_env *e = *state;
  const char *flags[] = {"--handler-budget", "1048576", NULL};
  nct_env_start(e, flags);
  nct_env_bystander_start(e);
  nct_client *p = nct_env_handler_opt(e, "deaf", 0, 2000);
  uint16_t port;
  nct_listen_local(p, &port, 0);
  long rss0 = nct_rss_kib(e->d.pid), peak = rss0;
  uint64_t start = nct_now_ms(), dropped_at = 0;
  size_t len;
  uint64_t nonce = 1;
  /* Pings without end, never reading, so its lease never lapses; kernel
   * buffers take a while to fill with tiny Pongs, then it stays over. */
  uint64_t deadline = start + 30000 * (uint64_t)nct_time_scale;
  for (int b = 0; !dropped_at && nct_now_ms() < deadline; b++) {
    uint8_t *m = ping_batch(1024, nonce, &len);
    /* netcore reads at its own pace: a full pipe here is backpressure, not an error */
    while (zmq_send(p->dealer, m, len, ZMQ_DONTWAIT) < 0 && zmq_errno() == EAGAIN &&
           nct_now_ms() < deadline)
      usleep(5000);
    nonce += 1024;
    free(m);
    if (b % 50 == 49) {
      long r = nct_rss_kib(e->d.pid);
      if (r > peak) peak = r;
      if (port_free(port)) dropped_at = nct_now_ms();
      usleep(50000);
    }
  }
  long r = nct_rss_kib(e->d.pid);
  if (r > peak) peak = r;
  print_message("never-reading handler: dropped after %llu ms, netcore RSS %ld -> peak %ld KiB\n",
                (unsigned long long)(dropped_at - start), rss0, peak);
  if (!dropped_at) nct_fail("a handler over its budget for its whole lease was not dropped");
  if (peak - rss0 > 48 * 1024)
    nct_fail("netcore grew by %ld KiB for a handler with a 1 MiB budget", peak - rss0);
  /* It got far fewer Pongs than Pings: answers stopped at the budget. */
  int pongs = 0;
  while (nct_pump(p, 200) > 0) continue;
  for (nct_event *ev = p->inbox_head; ev; ev = ev->next) pongs += ev->ev->event_case == EV(PONG);
  print_message("pongs received: %d of %llu pings\n", pongs, (unsigned long long)nonce - 1);
  assert_true(pongs > 0 && pongs < (int)(nonce - 1) / 2);
  nct_env_release(e, p, 0);
  nct_env_bystander_check(e);
  nct_env_finish(e);
}

/* Credit{4294967295} on a socket of a handler that never reads: netcore
 * reads the peer only up to --max-credit and the handler's budget, so the
 * peer is pushed back; once the handler reads, every byte arrives in order. */
static void test_hostile_budget_credit_flood(void **state) {
  nct_env *e = *state;
  const char *flags[] = {"--handler-budget", "4194304", "--max-credit", "8388608", NULL};
  nct_env_start(e, flags);
  /* A small receive high-water mark: what the test process's own ZeroMQ
   * would buffer for it does not count as taken. */
  nct_client *h = nct_client_new(e->d.endpoint, "greedy", 16);
  nct_env_adopt(e, h);
  nct_hello(h, 0, 60000);
  uint16_t port;
  uint64_t srv = nct_listen_local(h, &port, 0);
  int peer;
  uint64_t id = nct_accept_peer(h, srv, port, &peer);
  nct_cmd_credit(h, id, 4294967295u);
  nct_sync(h);
  long rss0 = nct_rss_kib(e->d.pid);

  fcntl(peer, F_SETFL, fcntl(peer, F_GETFL) | O_NONBLOCK);
  enum { CHUNK = 65536 };
  static uint8_t buf[CHUNK];
  uint64_t offered = 0, stuck_since = nct_now_ms();
  while (offered < (512u << 20) && nct_now_ms() - stuck_since < 1000) {
    nct_pattern_fill(offered, buf, CHUNK);
    ssize_t n = write(peer, buf, CHUNK);
    if (n > 0) {
      offered += (uint64_t)n;
      stuck_since = nct_now_ms();
    } else {
      usleep(10000);
    }
  }
  long rss = nct_rss_kib(e->d.pid);
  print_message("credit flood: the peer got %llu bytes in before being pushed back; RSS +%ld KiB\n",
                (unsigned long long)offered, rss - rss0);
  if (offered > (64u << 20))
    nct_fail("netcore took %llu bytes from a peer for a handler that never reads",
             (unsigned long long)offered);
  if (rss - rss0 > 48 * 1024) nct_fail("netcore grew by %ld KiB", rss - rss0);
  fcntl(peer, F_SETFL, fcntl(peer, F_GETFL) & ~O_NONBLOCK);

  /* The handler reads at last: everything arrives exactly. */
  uint8_t *got = malloc(offered);
  for (uint64_t at = 0; at < offered;) { /* as a library: credit for what it consumed */
    nct_event *d = nct_expect_skip(h, DATA, id, NCT_SKIP(WRITE_ACK));
    if (at + d->len > offered) nct_fail("more data than the peer wrote");
    memcpy(got + at, d->data, d->len);
    at += d->len;
    nct_cmd_credit(h, id, (uint32_t)d->len);
    nct_event_free(d);
  }
  assert_int_equal(nct_pattern_check(0, got, offered), -1);
  free(got);
  nct_close_both(h, id, peer);
  nct_cmd_server_close(h, srv);
  nct_expect_drop(h, SERVER_CLOSED, srv);
  nct_env_finish(e);
}

/* --max-memory: writes that would take netcore's write queues together past
 * it fail their own socket with ENOBUFS; other sockets carry on. */
static void test_hostile_max_memory(void **state) {
  nct_env *e = *state;
  const char *flags[] = {"--max-memory", "2097152", NULL};
  nct_env_start(e, flags);
  nct_env_bystander_start(e);
  nct_client *h = nct_env_handler(e, "hoarder");
  uint16_t port;
  uint64_t srv = nct_listen_local(h, &port, 0);
  int stuck, fine;
  uint64_t a = nct_accept_peer(h, srv, port, &stuck);
  uint64_t b = nct_accept_peer(h, srv, port, &fine);
  enum { CHUNK = 65536 };
  static uint8_t buf[CHUNK];
  nct_event *err = NULL;
  for (int i = 0; i < 1024 && !err; i++) { /* up to 64 MiB */
    nct_cmd_write(h, a, buf, CHUNK);
    if (i % 16 == 15) nct_sync(h);
    err = nct_take(h, EV(SOCKET_ERROR), a, 0);
  }
  if (!err) err = nct_take(h, EV(SOCKET_ERROR), a, NCT_WAIT);
  if (!err) nct_fail("64 MiB queued toward a peer that never reads, under a 2 MiB --max-memory");
  assert_string_equal(err->ev->socket_error->code, "ENOBUFS");
  assert_non_null(strstr(err->ev->socket_error->message, "write queues together"));
  nct_event_free(err);
  nct_event *ev = nct_expect_skip(h, CLOSED, a, NCT_SKIP(WRITE_ACK));
  assert_true(ev->ev->closed->had_error);
  nct_event_free(ev);
  close(stuck);
  nct_cmd_write(h, b, "still fine", 10);
  nct_peer_expect(fine, "still fine", 10);
  nct_close_both(h, b, fine);
  nct_cmd_server_close(h, srv);
  nct_expect_drop(h, SERVER_CLOSED, srv);
  nct_env_bystander_check(e);
  nct_env_finish(e);
}

/* --max-handler-sockets and --max-handler-servers: past them Listen is a
 * ServerError EMFILE, Connect a SocketError EMFILE, and connections for the
 * handler are closed unseen; another handler has its own count. */
static void test_hostile_handler_limits(void **state) {
  nct_env *e = *state;
  const char *flags[] = {"--max-handler-sockets", "2", "--max-handler-servers", "2", NULL};
  nct_env_start(e, flags);
  nct_client *h = nct_env_handler(e, "greedy");
  uint16_t p1, p2, tport = 0;
  uint64_t s1 = nct_listen_local(h, &p1, 0);
  uint64_t s2 = nct_listen_local(h, &p2, 0);
  uint64_t s3 = nct_new_id(h);
  nct_cmd_listen_tcp(h, s3, "127.0.0.1", 0, 0, 0, 0, NULL);
  nct_event *ev = nct_expect(h, SERVER_ERROR, s3);
  assert_string_equal(ev->ev->server_error->code, "EMFILE");
  nct_event_free(ev);

  int target = nct_tcp_listen("127.0.0.1", &tport);
  uint64_t c1 = nct_new_id(h);
  nct_cmd_connect_tcp(h, c1, "127.0.0.1", tport, 0);
  nct_expect_drop(h, CONNECTED, c1);
  int c1peer = nct_accept(target, NCT_WAIT);
  int peer;
  uint64_t a1 = nct_accept_peer(h, s1, p1, &peer);
  /* Two sockets owned: the next connection is closed unseen, the next connect fails. */
  int extra = nct_tcp_connect("127.0.0.1", p2);
  nct_peer_expect_eof(extra);
  close(extra);
  nct_expect_no_connection(h, s2, NCT_QUIET);
  uint64_t c2 = nct_new_id(h);
  nct_cmd_connect_tcp(h, c2, "127.0.0.1", tport, 0);
  ev = nct_expect(h, SOCKET_ERROR, c2);
  assert_string_equal(ev->ev->socket_error->code, "EMFILE");
  assert_non_null(strstr(ev->ev->socket_error->message, "limit of 2 sockets"));
  nct_event_free(ev);
  nct_expect_drop(h, CLOSED, c2);

  nct_client *g = nct_env_handler(e, "other");
  uint16_t gp;
  uint64_t gs = nct_listen_local(g, &gp, 0);
  int gpeers[2];
  uint64_t gids[2];
  for (int i = 0; i < 2; i++) gids[i] = nct_accept_peer(g, gs, gp, &gpeers[i]);
  for (int i = 0; i < 2; i++) nct_close_both(g, gids[i], gpeers[i]);
  nct_cmd_server_close(g, gs);
  nct_expect_drop(g, SERVER_CLOSED, gs);

  nct_close_both(h, a1, peer);
  /* A place is free again. */
  uint64_t a2 = nct_accept_peer(h, s2, p2, &peer);
  nct_close_both(h, a2, peer);
  nct_cmd_destroy(h, c1);
  nct_expect_drop(h, CLOSED, c1);
  close(c1peer);
  close(target);
  nct_cmd_server_close(h, s1);
  nct_expect_drop(h, SERVER_CLOSED, s1);
  nct_cmd_server_close(h, s2);
  nct_expect_drop(h, SERVER_CLOSED, s2);
  nct_env_finish(e);
}

/* ---------------------------------------------------------------- shutdown */

/* When --shutdown-ms passes with bytes still queued, the peer gets RST, not a
 * FIN that would make the cut stream look complete; Closed says had_error. */
static void test_hostile_cut_stream_resets(void **state) {
  nct_env *e = *state;
  const char *flags[] = {"--shutdown-ms", "300", NULL};
  nct_env_start(e, flags);
  nct_client *h = nct_env_handler(e, "writer");
  uint16_t port;
  uint64_t srv = nct_listen_local(h, &port, 0);
  int peer;
  uint64_t id = nct_accept_peer(h, srv, port, &peer);
  enum { CHUNK = 65536, N = 128 }; /* 8 MiB: more than the kernel buffers hold */
  static uint8_t buf[CHUNK];
  for (int i = 0; i < N; i++) {
    nct_pattern_fill((uint64_t)i * CHUNK, buf, CHUNK);
    nct_cmd_write(h, id, buf, CHUNK);
  }
  nct_sync(h);
  kill(e->d.pid, SIGTERM);
  usleep(600000); /* past --shutdown-ms: the queue is cut */
  static uint8_t got[CHUNK * N];
  int eof = 0;
  size_t n = nct_fd_read(peer, got, sizeof got, NCT_WAIT, &eof);
  print_message("cut stream: the peer read %zu of %d bytes, then %s\n", n, CHUNK * N,
                eof == -ECONNRESET ? "RST" : eof == 1 ? "FIN" : "nothing");
  assert_true(n < (size_t)CHUNK * N);
  assert_int_equal(nct_pattern_check(0, got, n), -1);
  assert_int_equal(eof, -ECONNRESET);
  nct_event *ev = nct_expect_skip(h, CLOSED, id, NCT_SKIP(WRITE_ACK));
  assert_true(ev->ev->closed->had_error);
  nct_event_free(ev);
  int status = nct_daemon_signal_wait(&e->d, 0, 15000);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  close(peer);
}

#define T(f) cmocka_unit_test_setup_teardown(f, nct_env_setup, nct_env_teardown)

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      T(test_hostile_nested_batch_before_hello),
      T(test_hostile_batches_keep_loop_fair),
      T(test_hostile_writes_while_connecting),
      T(test_hostile_vanish_after_server_commands),
      T(test_hostile_budget_pings_never_read),
      T(test_hostile_budget_credit_flood),
      T(test_hostile_max_memory),
      T(test_hostile_handler_limits),
      T(test_hostile_cut_stream_resets),
  };
  return NCT_RUN(argc, argv, tests);
}
