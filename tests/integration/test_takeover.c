/* test_takeover.c: `netcore --takeover` (PROTOCOL.md 16) through the raw
 * protocol: real netcore processes, real TCP and UNIX peers.
 *
 * A handler with a service name holds connections in states that must carry
 * over exactly; a new netcore takes over; a successor handler (same
 * principal, same service name) listens on the same endpoint and adopts
 * them. Checked: writes queued toward a peer that does not read reach it
 * exactly once, uncredited input is replayed exactly, seq numbers go on, a
 * UNIX listener keeps its path, a half-open socket (peer ended) can still be
 * written, a new netcore killed in the middle leaves the old one serving
 * everything, and 1,000 connections with data both ways carry over. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static nct_daemon d;
static nct_clients clients; /* ended by teardown */
static pid_t stray = 0; /* a netcore --takeover a test started and has not reaped */

static int setup(void **state) {
  (void)state;
  memset(&d, 0, sizeof d);
  return 0;
}

/* Whatever a failed test left: its handlers, the new netcore, the old one. */
static int teardown(void **state) {
  (void)state;
  nct_clients_end(&clients, 0);
  if (stray > 0) {
    kill(stray, SIGKILL);
    waitpid(stray, NULL, 0);
    stray = 0;
  }
  if (d.dir[0]) nct_daemon_kill(&d);
  return 0;
}

/* A handler that said Hello{service, credit_window}. */
static nct_client *handler(const char *name, const char *service, uint32_t credit) {
  nct_client *c = nct_client_new(d.endpoint, name, 0);
  nct_clients_keep(&clients, c);
  Netcore__V1__Hello hello = NETCORE__V1__HELLO__INIT;
  hello.version = 1;
  hello.name = c->name;
  hello.lease_ms = 60000;
  hello.credit_window = credit;
  hello.batch_events = c->batch_events;
  hello.service = (char *)service;
  nct_cmd cmd = NETCORE__V1__COMMAND__INIT;
  cmd.command_case = NETCORE__V1__COMMAND__COMMAND_HELLO;
  cmd.hello = &hello;
  nct_send(c, &cmd, NULL, 0, 0);
  nct_event *ev = nct_expect_global(c, WELCOME);
  c->welcomed = 1;
  c->id_prefix = ev->ev->welcome->id_prefix;
  c->credit_window = ev->ev->welcome->credit_window;
  nct_event_free(ev);
  return c;
}

static uint64_t listen_tcp(nct_client *c, uint16_t *port, int half_open) {
  uint64_t id = nct_new_id(c);
  nct_cmd_listen_tcp(c, id, "127.0.0.1", *port, half_open, 0, 0, NULL);
  nct_event *ev = nct_expect(c, LISTENING, id);
  *port = (uint16_t)ev->ev->listening->address->port;
  nct_event_free(ev);
  return id;
}

static uint64_t accepted(nct_client *c, uint64_t srv) {
  nct_event *ev = nct_expect_connection(c, srv);
  uint64_t id = ev->ev->connection->socket_id;
  nct_event_free(ev);
  return id;
}

/* The Adopted of socket id at c, checked against server, seq and replay.
 * seq | AT_LEAST: the old netcore may have sent events the test did not see
 * (a WriteAck after the last sync), so the seq only has to be past it. */
#define AT_LEAST (1ull << 63)
static Netcore__V1__Adopted adopted_of(nct_client *c, uint64_t id, uint64_t srv, uint64_t seq,
                                       uint64_t replay) {
  nct_event *ev = nct_take(c, EV(ADOPTED), id, NCT_WAIT);
  if (!ev) nct_fail("[%s] no Adopted for socket 0x%llx", c->name, (unsigned long long)id);
  Netcore__V1__Adopted a = *ev->ev->adopted;
  int at_least = (seq & AT_LEAST) != 0;
  seq &= ~AT_LEAST;
  if (at_least ? ev->ev->seq < seq : ev->ev->seq != seq)
    nct_fail("socket 0x%llx: Adopted has seq %llu, the old netcore's last was %llu",
             (unsigned long long)id, (unsigned long long)ev->ev->seq,
             (unsigned long long)(seq - 1));
  assert_int_equal(a.server_id, srv);
  assert_int_equal(a.replay_bytes, replay);
  a.local = a.remote = NULL;
  nct_event_free(ev);
  return a;
}

static const char *const handoff_flags[] = {"--handoff-ms", "10000", NULL};

/* Writes queued toward a peer that does not read, input delivered and not
 * credited, seq: all go on across the takeover. */
static void test_takeover_queued_writes_and_replay(void **state) {
  (void)state;
  nct_daemon_start(&d, handoff_flags, NULL);
  nct_client *h = handler("h", "svc", 0);
  uint16_t port = 0;
  uint64_t srv = listen_tcp(h, &port, 0);
  int peer = nct_tcp_connect("127.0.0.1", port);
  int small = 16384;
  setsockopt(peer, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  uint64_t id = accepted(h, srv);

  /* 8 MiB toward a peer that reads nothing yet: most of it queues in netcore. */
  enum { TOTAL = 8 << 20, PIECE = 64 << 10 };
  static uint8_t buf[PIECE];
  for (uint64_t at = 0; at < TOTAL; at += PIECE) {
    nct_pattern_fill(at, buf, PIECE);
    nct_cmd_write(h, id, buf, PIECE);
  }
  nct_peer_write(peer, "abc", 3);
  nct_expect_data(h, id, "abc", 3); /* never credited */
  nct_sync(h);
  uint64_t last = nct_last_seq(h, id);

  nct_daemon_takeover(&d, handoff_flags);
  nct_clients_drop(&clients, h, 0); /* its link went with the old netcore */

  nct_client *h2 = handler("h2", "svc", 0);
  uint16_t same = port;
  uint64_t srv2 = listen_tcp(h2, &same, 0);
  assert_int_equal(same, port);
  Netcore__V1__Adopted a = adopted_of(h2, id, srv2, (last + 1) | AT_LEAST, 3);
  print_message("queued at the takeover: %llu of %d bytes\n", (unsigned long long)a.queued_bytes, TOTAL);
  assert_true(a.queued_bytes > 0); /* the test saw writes still queued */
  assert_int_equal(a.bytes_written + a.queued_bytes, TOTAL);
  nct_expect_data(h2, id, "abc", 3);
  nct_cmd_credit(h2, id, 3);

  /* Every byte of the 8 MiB exactly once, in order, then what h2 adds. */
  for (uint64_t at = 0; at < TOTAL; at += PIECE) {
    int eof = 0;
    size_t n = nct_fd_read(peer, buf, PIECE, NCT_WAIT, &eof);
    if (n != PIECE) nct_fail("peer got %llu of 8 MiB (eof %d)", (unsigned long long)(at + n), eof);
    long bad = nct_pattern_check(at, buf, PIECE);
    if (bad >= 0) nct_fail("peer byte %llu differs (lost or repeated)", (unsigned long long)(at + bad));
  }
  nct_cmd_end(h2, id, "end", 3);
  nct_peer_expect(peer, "end", 3);
  nct_peer_write(peer, "more", 4);
  nct_expect_data(h2, id, "more", 4);
  shutdown(peer, SHUT_WR);
  nct_expect_drop(h2, ENDED, id);
  nct_expect_drop(h2, CLOSED, id);
  assert_int_equal(nct_peer_expect_eof(peer), 0);
  close(peer);
  nct_clients_drop(&clients, h2, 0);
  nct_daemon_stop(&d);
}

/* A UNIX listener keeps its path: the adopter listens on it again, a new
 * client connects to it, and the old connection carries on. */
static void test_takeover_unix_listener(void **state) {
  (void)state;
  nct_daemon_start(&d, handoff_flags, NULL);
  nct_client *h = handler("h", "svc", 0);
  char path[128];
  nct_daemon_path(&d, "l.sock", path, sizeof path);
  uint64_t srv = nct_new_id(h);
  nct_cmd_listen_path(h, srv, path);
  nct_expect_drop(h, LISTENING, srv);
  int peer = nct_unix_connect(path);
  uint64_t id = accepted(h, srv);
  nct_cmd_write(h, id, "one", 3);
  nct_peer_expect(peer, "one", 3);
  nct_wait_acks(h, id, 1, 3); /* acks leave at the end of a loop turn, maybe after a Pong */
  nct_sync(h);
  uint64_t last = nct_last_seq(h, id);

  nct_daemon_takeover(&d, handoff_flags);
  nct_clients_drop(&clients, h, 0);
  struct stat st;
  if (lstat(path, &st) != 0 || !S_ISSOCK(st.st_mode))
    nct_fail("%s is gone after the takeover", path);

  nct_client *h2 = handler("h2", "svc", 0);
  uint64_t srv2 = nct_new_id(h2);
  nct_cmd_listen_path(h2, srv2, path);
  nct_expect_drop(h2, LISTENING, srv2);
  adopted_of(h2, id, srv2, last + 1, 0);
  nct_peer_write(peer, "two", 3);
  nct_expect_data(h2, id, "two", 3);
  nct_cmd_write(h2, id, "three", 5);
  nct_peer_expect(peer, "three", 5);
  int fresh = nct_unix_connect(path);
  uint64_t id2 = accepted(h2, srv2);
  nct_cmd_write(h2, id2, "hi", 2);
  nct_peer_expect(fresh, "hi", 2);
  close(fresh);
  close(peer);
  nct_clients_drop(&clients, h2, 0);
  nct_daemon_stop(&d);
  if (lstat(path, &st) == 0) nct_fail("%s is left behind after netcore stopped", path);
}

/* allowHalfOpen, the peer ended before the takeover: the adopter learns it
 * (peer_ended, then Ended) and can still write; the peer gets it, then FIN. */
static void test_takeover_half_open(void **state) {
  (void)state;
  nct_daemon_start(&d, handoff_flags, NULL);
  nct_client *h = handler("h", "svc", 0);
  uint16_t port = 0;
  uint64_t srv = listen_tcp(h, &port, 1);
  int peer = nct_tcp_connect("127.0.0.1", port);
  uint64_t id = accepted(h, srv);
  nct_peer_write(peer, "bye", 3);
  shutdown(peer, SHUT_WR);
  nct_expect_data(h, id, "bye", 3);
  nct_cmd_credit(h, id, 3); /* consumed: not replayed */
  nct_expect_drop(h, ENDED, id);
  nct_sync(h);
  uint64_t last = nct_last_seq(h, id);

  nct_daemon_takeover(&d, handoff_flags);
  nct_clients_drop(&clients, h, 0);
  nct_client *h2 = handler("h2", "svc", 0);
  uint16_t same = port;
  uint64_t srv2 = listen_tcp(h2, &same, 1);
  Netcore__V1__Adopted a = adopted_of(h2, id, srv2, last + 1, 0);
  assert_true(a.peer_ended);
  assert_false(a.write_ended);
  assert_true(a.allow_half_open);
  assert_int_equal(a.bytes_read, 3);
  nct_expect_drop(h2, ENDED, id);
  nct_cmd_write(h2, id, "still here", 10);
  nct_peer_expect(peer, "still here", 10);
  nct_cmd_end(h2, id, NULL, 0);
  assert_int_equal(nct_peer_expect_eof(peer), 0);
  nct_event_free(nct_expect_skip(h2, CLOSED, id, NCT_SKIP(WRITE_ACK)));
  close(peer);
  nct_clients_drop(&clients, h2, 0);
  nct_daemon_stop(&d);
}

/* Data both ways on a connection of h, checked. */
static void both_ways(nct_client *h, uint64_t id, int peer, const char *tag) {
  char in[32], out[32];
  int n = snprintf(in, sizeof in, "to-%s", tag), m = snprintf(out, sizeof out, "from-%s", tag);
  nct_peer_write(peer, in, (size_t)n);
  nct_expect_data(h, id, in, (size_t)n);
  nct_cmd_credit(h, id, (uint32_t)n);
  nct_cmd_write(h, id, out, (size_t)m);
  nct_peer_expect(peer, out, (size_t)m);
}

/* The new netcore is killed in the middle of the takeover (it said Hello and
 * waits for the state; the old one, stopped meanwhile, ships into a dead
 * socket): the old one serves on, the same handler link, every connection,
 * new ones, and a later takeover works. */
static void test_takeover_new_killed_midway(void **state) {
  (void)state;
  nct_daemon_start(&d, handoff_flags, NULL);
  nct_client *h = handler("h", "svc", 0);
  uint16_t port = 0;
  uint64_t srv = listen_tcp(h, &port, 0);
  int peers[3];
  uint64_t ids[3];
  for (int i = 0; i < 3; i++) {
    peers[i] = nct_tcp_connect("127.0.0.1", port);
    ids[i] = accepted(h, srv);
    both_ways(h, ids[i], peers[i], "before");
  }
  /* Data on its way at the moment of the takeover. */
  nct_cmd_write(h, ids[0], "queued", 6);
  nct_sync(h);

  kill(d.pid, SIGSTOP);
  stray = nct_daemon_takeover_spawn_at(__FILE__, __LINE__, &d, handoff_flags);
  usleep(300 * 1000); /* it connects and says Hello; the old one is stopped */
  kill(stray, SIGKILL);
  int st;
  waitpid(stray, &st, 0);
  stray = 0;
  kill(d.pid, SIGCONT);

  nct_peer_expect(peers[0], "queued", 6);
  for (int i = 0; i < 3; i++) both_ways(h, ids[i], peers[i], "after");
  int fresh = nct_tcp_connect("127.0.0.1", port);
  uint64_t fid = accepted(h, srv);
  both_ways(h, fid, fresh, "fresh");
  nct_sync(h);
  if (waitpid(d.pid, &st, WNOHANG) != 0) nct_fail("the old netcore exited");

  /* It still takes a takeover afterwards. */
  uint64_t last = nct_last_seq(h, ids[1]);
  nct_daemon_takeover(&d, handoff_flags);
  nct_clients_drop(&clients, h, 0);
  nct_client *h2 = handler("h2", "svc", 0);
  uint16_t same = port;
  uint64_t srv2 = listen_tcp(h2, &same, 0);
  adopted_of(h2, ids[1], srv2, last + 1, 0);
  both_ways(h2, ids[1], peers[1], "taken");
  for (int i = 0; i < 3; i++) close(peers[i]);
  close(fresh);
  nct_clients_drop(&clients, h2, 0);
  nct_daemon_stop(&d);
}

/* Bytes the thousand-connection test writes toward peer i. */
static size_t out_len(int i) { return i % 100 == 0 ? (size_t)6 << 20 : (size_t)64 << 10; }

/* A TCP client to 127.0.0.1:port with a small receive buffer from the SYN
 * on: the writes toward it queue in netcore instead of the kernel. */
static int slow_reader(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int small = 4096;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof sin) != 0)
    nct_fail("connect 127.0.0.1:%u: %s", port, strerror(errno));
  return fd;
}

/* 1,000 connections (as the descriptor limit allows) with data both ways at
 * the moment of the takeover: per connection, writes queued toward a peer
 * that reads only afterwards and input delivered but not credited. */
static void test_takeover_thousand_connections(void **state) {
  (void)state;
  enum { WANT = 1000, OUT = 64 << 10, IN = 100 };
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  getrlimit(RLIMIT_NOFILE, &rl);
  int n = WANT;
  if (rl.rlim_cur < (rlim_t)WANT + 200) n = (int)rl.rlim_cur - 200;
  if (n < 100) {
    print_message("skipped: RLIMIT_NOFILE %llu\n", (unsigned long long)rl.rlim_cur);
    skip();
  }
  if (n < WANT) print_message("%d connections (RLIMIT_NOFILE %llu)\n", n, (unsigned long long)rl.rlim_cur);
  const char *const flags[] = {"--handoff-ms", "20000", NULL};
  nct_daemon_start(&d, flags, NULL);
  nct_client *h = handler("h", "svc", 0);
  uint16_t port = 0;
  uint64_t srv = listen_tcp(h, &port, 0);
  int *peers = calloc((size_t)n, sizeof *peers);
  uint64_t *ids = calloc((size_t)n, sizeof *ids), *last = calloc((size_t)n, sizeof *last);
  uint8_t *buf = malloc(OUT);
  for (int i = 0; i < n; i++) {
    peers[i] = slow_reader(port);
    ids[i] = accepted(h, srv);
  }
  for (int i = 0; i < n; i++) {
    /* The kernel takes some MiB per TCP connection itself: every 100th peer
     * is sent more than that, so part of it is in netcore's queue. */
    for (size_t at = 0; at < out_len(i); at += OUT) {
      nct_pattern_fill((uint64_t)i + at, buf, OUT);
      nct_cmd_write(h, ids[i], buf, OUT);
    }
    nct_pattern_fill((uint64_t)i + 7, buf, IN);
    nct_peer_write(peers[i], buf, IN);
  }
  for (int i = 0; i < n; i++) {
    nct_pattern_fill((uint64_t)i + 7, buf, IN);
    nct_expect_data(h, ids[i], buf, IN); /* not credited */
  }
  nct_sync(h);
  for (int i = 0; i < n; i++) last[i] = nct_last_seq(h, ids[i]);

  nct_daemon_takeover(&d, flags);
  nct_clients_drop(&clients, h, 0);
  nct_client *h2 = handler("h2", "svc", 0);
  uint16_t same = port;
  uint64_t srv2 = listen_tcp(h2, &same, 0);
  uint64_t queued = 0;
  for (int i = 0; i < n; i++) {
    queued += adopted_of(h2, ids[i], srv2, (last[i] + 1) | AT_LEAST, IN).queued_bytes;
    nct_pattern_fill((uint64_t)i + 7, buf, IN);
    nct_expect_data(h2, ids[i], buf, IN);
    nct_cmd_credit(h2, ids[i], IN);
    nct_cmd_end(h2, ids[i], "Z", 1);
  }
  print_message("%d connections, %llu bytes of writes queued in netcore at the takeover\n", n,
                (unsigned long long)queued);
  assert_true(queued > 0);
  for (int i = 0; i < n; i++) {
    for (size_t at = 0; at < out_len(i); at += OUT) {
      int eof = 0;
      size_t got = nct_fd_read(peers[i], buf, OUT, NCT_WAIT, &eof);
      if (got != OUT)
        nct_fail("connection %d: %zu of %zu bytes (eof %d)", i, at + got, out_len(i), eof);
      long bad = nct_pattern_check((uint64_t)i + at, buf, OUT);
      if (bad >= 0) nct_fail("connection %d: byte %zu differs", i, at + (size_t)bad);
    }
    nct_peer_expect(peers[i], "Z", 1);
    assert_int_equal(nct_peer_expect_eof(peers[i]), 0);
    close(peers[i]);
  }
  free(peers);
  free(ids);
  free(last);
  free(buf);
  nct_clients_drop(&clients, h2, 0);
  nct_daemon_stop(&d);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_takeover_queued_writes_and_replay, setup, teardown),
      cmocka_unit_test_setup_teardown(test_takeover_unix_listener, setup, teardown),
      cmocka_unit_test_setup_teardown(test_takeover_half_open, setup, teardown),
      cmocka_unit_test_setup_teardown(test_takeover_new_killed_midway, setup, teardown),
      cmocka_unit_test_setup_teardown(test_takeover_thousand_connections, setup, teardown),
  };
  return NCT_RUN(argc, argv, tests);
}
