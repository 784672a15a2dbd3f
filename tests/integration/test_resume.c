/* test_resume.c: a handler's session goes on after `netcore --takeover`
 * (PROTOCOL.md 16.1) through the raw protocol: real netcore processes, real
 * TCP peers.
 *
 * A handler says Hello{resumable}; its sockets and servers are in states that
 * must carry over (a paused server, a socket with a pending setTimeout and
 * input it did not receive, an outbound socket, acknowledgements it did not
 * see); a new netcore takes over; a new connection says Hello{resume_token,
 * resume_sockets} and gets Welcome{resumed} with the same prefix and token,
 * every socket with its id and its seq going on (the harness checks every
 * seq), no Adopted, nothing reset. A wrong token or another principal gets a
 * new session, and the old one's connections are adopted as before.
 * Protocol 1.4: the handler's view of each socket's options applies where it
 * differs, a socket still connecting at the takeover (not shipped) and a
 * Listen the old netcore never read go again under their ids, and malformed
 * new fields get an Error with the session left parked. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static nct_daemon d;
static nct_clients clients; /* ended by teardown */

static int setup(void **state) {
  (void)state;
  memset(&d, 0, sizeof d);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  nct_clients_end(&clients, 0);
  if (d.dir[0]) nct_daemon_kill(&d);
  return 0;
}

/* Sends c's Hello: resumable, with c's batch_events and lazy_acks; resuming
 * `from` (its token) with the n entries of rs and the ns ids of servers when
 * from is given. */
static void send_hello(nct_client *c, const nct_client *from, Netcore__V1__ResumeSocket **rs, size_t n,
                       uint64_t *servers, size_t ns) {
  Netcore__V1__Hello h = NETCORE__V1__HELLO__INIT;
  h.version = 1;
  h.name = c->name;
  h.lease_ms = 60000;
  h.batch_events = c->batch_events;
  h.lazy_acks = c->lazy_acks;
  h.resumable = 1;
  if (from) {
    h.resume_token.data = (uint8_t *)from->session_token;
    h.resume_token.len = from->session_token_len;
    h.n_resume_sockets = n;
    h.resume_sockets = rs;
    h.n_resume_servers = ns;
    h.resume_servers = servers;
  }
  nct_cmd cmd = NETCORE__V1__COMMAND__INIT;
  cmd.command_case = NETCORE__V1__COMMAND__COMMAND_HELLO;
  cmd.hello = &h;
  nct_send(c, &cmd, NULL, 0, 0);
}

/* A new client of endpoint that says Hello (lazy acks if lazy; resuming
 * `from` with rs and servers as send_hello, and then going on with its seq
 * bookkeeping) and returns with its Welcome in *welcome (to free). */
static nct_client *hello_servers(const char *endpoint, const char *name, int lazy, const nct_client *from,
                                 Netcore__V1__ResumeSocket **rs, size_t n, uint64_t *servers, size_t ns,
                                 nct_event **welcome) {
  nct_client *c = nct_client_new(endpoint, name, 0);
  nct_clients_keep(&clients, c);
  c->lazy_acks = lazy;
  if (from) nct_client_carry(c, from); /* events may ride in the Welcome's batch */
  send_hello(c, from, rs, n, servers, ns);
  nct_event *ev = nct_expect_global(c, WELCOME);
  Netcore__V1__Welcome *w = ev->ev->welcome;
  c->welcomed = 1;
  c->id_prefix = w->id_prefix;
  c->credit_window = w->credit_window;
  c->session_token_len = w->session_token.len < 16 ? w->session_token.len : 16;
  memcpy(c->session_token, w->session_token.data, c->session_token_len);
  *welcome = ev;
  return c;
}

/* hello_servers without servers. */
static nct_client *hello(const char *endpoint, const char *name, int lazy, const nct_client *from,
                         Netcore__V1__ResumeSocket **rs, size_t n, nct_event **welcome) {
  return hello_servers(endpoint, name, lazy, from, rs, n, NULL, 0, welcome);
}

static nct_client *handler(const char *name) {
  nct_event *w;
  nct_client *c = hello(d.endpoint, name, 0, NULL, NULL, 0, &w);
  assert_false(w->ev->welcome->resumed);
  nct_event_free(w);
  return c;
}

static uint64_t listen_tcp(nct_client *c, uint16_t *port) {
  uint64_t id = nct_new_id(c);
  nct_cmd_listen_tcp(c, id, "127.0.0.1", *port, 0, 0, 0, NULL);
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

static uint64_t resumed_writes(const nct_event *welcome, uint64_t id) {
  const Netcore__V1__Welcome *w = welcome->ev->welcome;
  for (size_t i = 0; i < w->n_resumed_sockets; i++)
    if (w->resumed_sockets[i]->socket_id == id) return w->resumed_sockets[i]->writes;
  nct_fail("Welcome.resumed_sockets does not name socket 0x%llx", (unsigned long long)id);
  return 0;
}

static const char *const flags[] = {"--handoff-ms", "10000", NULL};

/* A paused server, a socket with a pending setTimeout and input the handler
 * did not receive, acks it did not see, an outbound socket: all go on. */
static void test_resume_session_goes_on(void **state) {
  (void)state;
  nct_daemon_start(&d, flags, NULL);
  nct_client *h = handler("h");
  uint16_t port = 0, pport = 0;
  uint64_t srv = listen_tcp(h, &port);
  uint64_t psrv = listen_tcp(h, &pport);
  int peer = nct_tcp_connect("127.0.0.1", port);
  uint64_t s1 = accepted(h, srv);

  nct_cmd_write(h, s1, "x", 1);
  nct_peer_expect(peer, "x", 1);
  nct_wait_acks(h, s1, 1, 1);
  nct_peer_write(peer, "abc", 3);
  nct_expect_data(h, s1, "abc", 3); /* received, not credited yet (its Credit is "lost") */
  uint64_t seq_abc = nct_last_seq(h, s1);
  nct_peer_write(peer, "def", 3);
  nct_expect_data(h, s1, "def", 3); /* the handler will say it never got this */
  nct_cmd_set_timeout(h, s1, 1500);

  /* An outbound socket. */
  uint16_t oport = 0;
  int olisten = nct_tcp_listen("127.0.0.1", &oport);
  uint64_t s2 = nct_new_id(h);
  nct_cmd_connect_tcp(h, s2, "127.0.0.1", oport, 0);
  nct_expect_drop(h, CONNECTED, s2);
  int opeer = nct_accept(olisten, NCT_WAIT);
  assert_true(opeer >= 0);
  nct_cmd_write(h, s2, "out1", 4);
  nct_peer_expect(opeer, "out1", 4);
  nct_wait_acks(h, s2, 1, 4);

  /* A paused server: a client that connects waits in the backlog. */
  nct_cmd_server_pause(h, psrv, 2500);
  nct_sync(h);
  uint64_t paused_at = nct_now_ms();
  int ppeer = nct_tcp_connect("127.0.0.1", pport);
  nct_expect_no_connection(h, psrv, 100);
  nct_sync(h);
  uint64_t seq1 = nct_last_seq(h, s1), seq2 = nct_last_seq(h, s2);

  nct_daemon_takeover(&d, flags);
  nct_client *old = h;
  /* What the handler saw: all of s1's "abc" but not "def", and not the ack
   * of s2's write (lost: netcore sends it again). */
  Netcore__V1__ResumeSocket r1 = NETCORE__V1__RESUME_SOCKET__INIT, r2 = NETCORE__V1__RESUME_SOCKET__INIT;
  r1.socket_id = s1, r1.bytes_received = 3, r1.writes_acked = 1, r1.bytes_acked = 1;
  r1.last_seq = seq_abc;
  r2.socket_id = s2, r2.bytes_received = 0, r2.writes_acked = 0, r2.bytes_acked = 0;
  r2.last_seq = seq2 - 1; /* before the ack it "lost" */
  nct_set_last_seq(old, s1, seq_abc);
  nct_set_last_seq(old, s2, seq2 - 1);
  Netcore__V1__ResumeSocket *rs[] = {&r1, &r2};
  nct_event *welcome;
  nct_client *h2 = hello(d.endpoint, "h2", 0, old, rs, 2, &welcome);
  const Netcore__V1__Welcome *w = welcome->ev->welcome;
  assert_true(w->resumed);
  assert_int_equal(w->id_prefix, old->id_prefix);
  assert_int_equal(w->session_token.len, 16);
  assert_memory_equal(w->session_token.data, old->session_token, 16);
  assert_int_equal(resumed_writes(welcome, s1), 1);
  assert_int_equal(resumed_writes(welcome, s2), 1);
  nct_event_free(welcome);
  nct_clients_drop(&clients, old, 0);

  /* s1: "def" again, numbered on from what it saw (no gap); s2: the ack it
   * missed, likewise. */
  nct_expect_data(h2, s1, "def", 3);
  assert_int_equal(nct_last_seq(h2, s1), seq_abc + 1);
  assert_true(seq1 > seq_abc);
  nct_event *ack = nct_expect(h2, WRITE_ACK, s2);
  assert_int_equal(ack->ev->write_ack->writes, 1);
  assert_int_equal(ack->ev->write_ack->bytes, 4);
  assert_int_equal(ack->ev->seq, seq2);
  nct_event_free(ack);
  nct_cmd_credit(h2, s1, 6);

  /* The setTimeout set before the takeover fires on the new netcore. */
  nct_expect_drop(h2, TIMEOUT, s1);
  /* Both sockets carry on both ways. */
  nct_cmd_write(h2, s1, "y", 1);
  nct_peer_expect(peer, "y", 1);
  nct_peer_write(peer, "ghi", 3);
  nct_expect_data(h2, s1, "ghi", 3);
  nct_cmd_credit(h2, s1, 3);
  nct_cmd_write(h2, s2, "out2", 4);
  nct_peer_expect(opeer, "out2", 4);
  nct_peer_write(opeer, "in", 2);
  nct_expect_data(h2, s2, "in", 2);
  nct_cmd_credit(h2, s2, 2);

  /* The paused server accepts once its pause is over, not before. */
  nct_event *conn = nct_expect_connection(h2, psrv);
  uint64_t waited = nct_now_ms() - paused_at;
  print_message("the paused server accepted %llu ms after server.pause(2500)\n",
                (unsigned long long)waited);
  assert_true(waited >= 2400);
  uint64_t s3 = conn->ev->connection->socket_id;
  nct_event_free(conn);
  nct_cmd_destroy(h2, s3);
  nct_expect_drop(h2, CLOSED, s3);

  /* New ids go on above the old session's. */
  uint64_t srv3 = nct_new_id(h2);
  uint16_t p3 = 0;
  nct_cmd_listen_tcp(h2, srv3, "127.0.0.1", p3, 0, 0, 0, NULL);
  nct_expect_drop(h2, LISTENING, srv3);

  nct_cmd_end(h2, s1, NULL, 0);
  assert_int_equal(nct_peer_expect_eof(peer), 0);
  close(peer);
  close(ppeer);
  close(opeer);
  close(olisten);
  nct_clients_drop(&clients, h2, 0);
  nct_daemon_stop(&d);
}

/* Lazy acks pending at the takeover, and a socket whose Connection the
 * handler never saw: the acks arrive, the socket is announced. A socket the
 * handler does not name and that no server accepted (outbound) ends. */
static void test_resume_unseen_socket_and_lazy_acks(void **state) {
  (void)state;
  nct_daemon_start(&d, flags, NULL);
  nct_event *w0;
  nct_client *h = hello(d.endpoint, "h", 1, NULL, NULL, 0, &w0);
  nct_event_free(w0);
  uint16_t port = 0;
  uint64_t srv = listen_tcp(h, &port);
  int peer1 = nct_tcp_connect("127.0.0.1", port);
  uint64_t s1 = accepted(h, srv);
  nct_cmd_write(h, s1, "lazy", 4); /* its ack waits (lazy) */
  nct_peer_expect(peer1, "lazy", 4);
  int peer2 = nct_tcp_connect("127.0.0.1", port);
  uint64_t s2 = accepted(h, srv);
  nct_peer_write(peer2, "hello", 5);
  nct_expect_data(h, s2, "hello", 5);
  uint16_t oport = 0;
  int olisten = nct_tcp_listen("127.0.0.1", &oport);
  uint64_t s3 = nct_new_id(h);
  nct_cmd_connect_tcp(h, s3, "127.0.0.1", oport, 0);
  nct_expect_drop(h, CONNECTED, s3);
  int opeer = nct_accept(olisten, NCT_WAIT);
  nct_sync(h);

  nct_daemon_takeover(&d, flags);
  nct_client *old = h;
  /* The handler names s1 only. */
  Netcore__V1__ResumeSocket r1 = NETCORE__V1__RESUME_SOCKET__INIT;
  r1.socket_id = s1;
  Netcore__V1__ResumeSocket *rs[] = {&r1};
  nct_event *welcome;
  nct_client *h2 = hello(d.endpoint, "h2", 1, old, rs, 1, &welcome);
  assert_true(welcome->ev->welcome->resumed);
  assert_int_equal(welcome->ev->welcome->n_resumed_sockets, 1);
  nct_event_free(welcome);
  /* The lazy ack that waited comes now (alone, or riding on an event). */
  nct_wait_acks(h2, s1, 1, 4);
  /* s2, accepted but not named (its Connection "lost"): announced by
   * Connection with its seq going on, then its uncredited input. */
  nct_event *conn = nct_expect_connection(h2, srv);
  assert_int_equal(conn->ev->connection->socket_id, s2);
  assert_true(conn->ev->seq > 1);
  nct_event_free(conn);
  nct_expect_data(h2, s2, "hello", 5);
  nct_clients_drop(&clients, old, 0);
  /* s3 ends with no event (the handler does not know it); its peer sees EOF. */
  assert_int_equal(nct_peer_expect_eof(opeer), 0);
  close(opeer);
  close(olisten);
  close(peer1);
  close(peer2);
  nct_clients_drop(&clients, h2, 0);
  nct_daemon_stop(&d);
}

/* A resume with a wrong token, or from another principal: a new session
 * (Welcome{resumed: false}, another prefix), and the old session's
 * connections wait parked and are adopted by a Listen on the same endpoint,
 * exactly as after a takeover without resumption (PROTOCOL.md 16). */
static void test_resume_refused(void **state) {
  (void)state;
  /* A loopback tcp endpoint besides the ipc one: its handlers are another
   * principal (tcp:127.0.0.1) than the ipc ones (uid:N). The port is picked
   * free, then named, since --takeover needs the same --bind list. */
  uint16_t zport = 0;
  int probe = nct_tcp_listen("127.0.0.1", &zport);
  close(probe);
  char tcp_ep[64], bindarg[64];
  snprintf(tcp_ep, sizeof tcp_ep, "tcp://127.0.0.1:%u", zport);
  snprintf(bindarg, sizeof bindarg, "%s", tcp_ep);
  const char *const tflags[] = {"--handoff-ms", "10000", "--bind", bindarg, NULL};
  nct_daemon_start(&d, tflags, NULL);
  nct_client *h = handler("h");
  uint16_t port = 0;
  uint64_t srv = listen_tcp(h, &port);
  int peer = nct_tcp_connect("127.0.0.1", port);
  uint64_t s1 = accepted(h, srv);
  nct_peer_write(peer, "abc", 3);
  nct_expect_data(h, s1, "abc", 3);
  nct_sync(h);
  uint64_t seq1 = nct_last_seq(h, s1);

  nct_daemon_takeover(&d, tflags);
  Netcore__V1__ResumeSocket r1 = NETCORE__V1__RESUME_SOCKET__INIT;
  r1.socket_id = s1;
  Netcore__V1__ResumeSocket *rs[] = {&r1};
  nct_event *welcome;
  /* The right token from another principal. */
  nct_client *other = hello(tcp_ep, "other", 0, h, rs, 1, &welcome);
  assert_false(welcome->ev->welcome->resumed);
  assert_int_equal(welcome->ev->welcome->n_resumed_sockets, 0);
  assert_int_not_equal(welcome->ev->welcome->id_prefix, h->id_prefix);
  nct_event_free(welcome);
  nct_expect_silence(other, 200);
  /* A wrong token from the same principal. */
  nct_client fake = *h;
  fake.session_token[0] ^= 0x5a;
  nct_client *h2 = hello(d.endpoint, "h2", 0, &fake, rs, 1, &welcome);
  assert_false(welcome->ev->welcome->resumed);
  assert_int_not_equal(welcome->ev->welcome->id_prefix, h->id_prefix);
  nct_event_free(welcome);
  nct_expect_silence(h2, 200);
  nct_clients_drop(&clients, h, 0);
  /* Today's path: h2 listens on the same endpoint and adopts. */
  uint16_t same = port;
  uint64_t srv2 = listen_tcp(h2, &same);
  assert_int_equal(same, port);
  nct_event *a = nct_take(h2, EV(ADOPTED), s1, NCT_WAIT);
  if (!a) nct_fail("no Adopted for the parked socket");
  assert_int_equal(a->ev->adopted->server_id, srv2);
  assert_int_equal(a->ev->adopted->replay_bytes, 3);
  assert_true(a->ev->seq > seq1);
  nct_event_free(a);
  nct_expect_data(h2, s1, "abc", 3);
  close(peer);
  nct_clients_drop(&clients, other, 0);
  nct_clients_drop(&clients, h2, 0);
  nct_daemon_stop(&d);
}

/* A session of 600 sockets: its resume Hello (over 4 KB) is larger than a
 * stranger's Hello may be (PROTOCOL.md 10) and is taken all the same. */
static void test_resume_large_session(void **state) {
  (void)state;
  enum { N = 600 };
  nct_daemon_start(&d, flags, NULL);
  nct_client *h = handler("h");
  uint16_t port = 0;
  uint64_t srv = listen_tcp(h, &port);
  static int peers[N];
  static uint64_t ids[N];
  static Netcore__V1__ResumeSocket rs[N];
  static Netcore__V1__ResumeSocket *rsp[N];
  for (int i = 0; i < N; i++) {
    peers[i] = nct_tcp_connect("127.0.0.1", port);
    ids[i] = accepted(h, srv);
  }
  nct_sync(h);
  nct_daemon_takeover(&d, flags);
  for (int i = 0; i < N; i++) {
    netcore__v1__resume_socket__init(&rs[i]);
    rs[i].socket_id = ids[i];
    rs[i].last_seq = nct_last_seq(h, ids[i]);
    rsp[i] = &rs[i];
  }
  Netcore__V1__Hello probe = NETCORE__V1__HELLO__INIT;
  probe.n_resume_sockets = N;
  probe.resume_sockets = rsp;
  size_t size = netcore__v1__hello__get_packed_size(&probe);
  print_message("resume Hello of %d sockets: over %zu bytes\n", N, size);
  assert_true(size > 4096);
  nct_event *welcome;
  nct_client *h2 = hello(d.endpoint, "h2", 0, h, rsp, N, &welcome);
  assert_true(welcome->ev->welcome->resumed);
  assert_int_equal(welcome->ev->welcome->n_resumed_sockets, N);
  nct_event_free(welcome);
  nct_clients_drop(&clients, h, 0);
  for (int i = 0; i < N; i += 37) {
    nct_cmd_write(h2, ids[i], "ok", 2);
    nct_peer_expect(peers[i], "ok", 2);
  }
  for (int i = 0; i < N; i++) close(peers[i]);
  nct_clients_drop(&clients, h2, 0);
  nct_daemon_stop(&d);
}

/* A resume Hello that netcore refuses with an Error of code (the session
 * stays parked): from's token, the n entries of rs, the ns servers. */
static void hello_refused(const nct_client *from, Netcore__V1__ResumeSocket **rs, size_t n,
                          uint64_t *servers, size_t ns, const char *code, const char *says) {
  nct_client *c = nct_client_new(d.endpoint, "bad", 0);
  nct_clients_keep(&clients, c);
  send_hello(c, from, rs, n, servers, ns);
  nct_event *ev = nct_expect_error(c, code);
  if (!strstr(ev->ev->error->message, says))
    nct_fail("Error says \"%s\", not \"%s\"", ev->ev->error->message, says);
  nct_event_free(ev);
  nct_clients_drop(&clients, c, 0);
}

/* Whether the kernel's established TCP socket with this local port has a
 * keep-alive timer (/proc/net/tcp "tr" 2: SO_KEEPALIVE on, idle). */
static int keepalive_on(int local_port) {
  FILE *f = fopen("/proc/net/tcp", "r");
  assert_non_null(f);
  char line[512];
  int found = 0;
  while (!found && fgets(line, sizeof line, f)) {
    unsigned lport, st, tr;
    if (sscanf(line, " %*d: %*x:%x %*x:%*x %x %*x:%*x %x:", &lport, &st, &tr) == 3 &&
        (int)lport == local_port && st == 1)
      found = tr == 2 ? 1 : -1;
  }
  fclose(f);
  return found == 1;
}

static int peer_port(int fd) {
  struct sockaddr_in sa;
  socklen_t len = sizeof sa;
  assert_int_equal(getpeername(fd, (struct sockaddr *)&sa, &len), 0);
  return ntohs(sa.sin_port);
}

/* Protocol 1.4: what the handler sent that the old netcore never read. s1
 * has the timeout netcore holds (unchanged: it goes on and fires once) and
 * a keep-alive it lost; s2 a timeout it lost; s3 was still connecting at the
 * takeover (its peer's listen queue is full), so it was not shipped, and the
 * handler says Connect again under its id; a Listen never read goes again
 * under its id too. Malformed fields first: Error, the session stays. */
static void test_resume_commands_in_flight(void **state) {
  (void)state;
  nct_daemon_start(&d, flags, NULL);
  nct_client *h = handler("h");
  uint16_t oport = 0;
  int olisten = nct_tcp_listen("127.0.0.1", &oport);
  uint64_t s1 = nct_new_id(h), s2 = nct_new_id(h);
  nct_cmd_connect_tcp(h, s1, "127.0.0.1", oport, 0);
  nct_expect_drop(h, CONNECTED, s1);
  int p1 = nct_accept(olisten, NCT_WAIT);
  nct_cmd_connect_tcp(h, s2, "127.0.0.1", oport, 0);
  nct_expect_drop(h, CONNECTED, s2);
  int p2 = nct_accept(olisten, NCT_WAIT);
  nct_cmd_set_timeout(h, s1, 1200);
  uint64_t srv = nct_new_id(h); /* its Listen is "lost": never sent */
  /* A listener whose queue is full: a Connect to it stays connecting. */
  int full = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in fa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(full, (struct sockaddr *)&fa, sizeof fa), 0);
  assert_int_equal(listen(full, 0), 0);
  socklen_t flen = sizeof fa;
  assert_int_equal(getsockname(full, (struct sockaddr *)&fa, &flen), 0);
  uint16_t fport = ntohs(fa.sin_port);
  int filler = nct_tcp_connect("127.0.0.1", fport);
  uint32_t backlog = 0, queued = 0;
  for (int i = 0; i < 200; i++) {
    if (nct_tcp_listen_queue(AF_INET, fport, &backlog, &queued) == 0 && queued >= backlog + 1) break;
    usleep(5000);
  }
  uint64_t s3 = nct_new_id(h);
  nct_cmd_connect_tcp(h, s3, "127.0.0.1", fport, 0);
  nct_sync(h);
  nct_expect_none(h, s3, 200); /* still connecting */
  assert_false(keepalive_on(peer_port(p1)));

  nct_daemon_takeover(&d, flags);
  Netcore__V1__ResumeSocket r1 = NETCORE__V1__RESUME_SOCKET__INIT,
                            r2 = NETCORE__V1__RESUME_SOCKET__INIT,
                            r3 = NETCORE__V1__RESUME_SOCKET__INIT;
  r1.socket_id = s1;
  r1.last_seq = 1;
  r1.has_options = 1;
  r1.timeout_ms = 1200; /* as netcore has it */
  r1.keep_alive = 2;    /* lost */
  r1.keep_alive_delay_ms = 1000;
  r2.socket_id = s2;
  r2.last_seq = 1;
  r2.has_options = 1;
  r2.timeout_ms = 700; /* lost */
  r2.no_delay = 2;
  r3.socket_id = s3;
  r3.connecting = 1;
  Netcore__V1__ResumeSocket *rs[] = {&r1, &r2, &r3};
  /* Hostile values: refused, nothing of the session changes. */
  r2.no_delay = 7;
  hello_refused(h, rs, 3, NULL, 0, "ERR_INVALID_ARG_VALUE", "no_delay 7");
  r2.no_delay = 2;
  uint64_t foreign = ((uint64_t)(h->id_prefix + 1) << 32) | 5;
  hello_refused(h, rs, 3, &foreign, 1, "ERR_INVALID_ARG_VALUE", "no server id of this session");

  nct_event *welcome;
  nct_client *h2 = hello_servers(d.endpoint, "h2", 0, h, rs, 3, &srv, 1, &welcome);
  const Netcore__V1__Welcome *w = welcome->ev->welcome;
  assert_true(w->resumed);
  assert_true(w->minor_version >= 4);
  assert_int_equal(w->n_resumed_sockets, 2); /* s3 was not shipped */
  assert_int_equal(w->n_resumed_servers, 0); /* nor is srv here */
  nct_event_free(welcome);
  nct_clients_drop(&clients, h, 0);

  /* The Connect and the Listen again, under the same ids (below the last). */
  nct_cmd_connect_tcp(h2, s3, "127.0.0.1", fport, 0);
  nct_cmd_listen_tcp(h2, srv, "127.0.0.1", 0, 0, 0, 0, NULL);
  nct_event *lev = nct_expect(h2, LISTENING, srv);
  assert_true(lev->ev->listening->address->port > 0);
  nct_event_free(lev);
  close(nct_accept(full, NCT_WAIT)); /* the queue has room: s3 connects */
  nct_expect_drop(h2, CONNECTED, s3);
  int p3 = nct_accept(full, NCT_WAIT);
  nct_cmd_write(h2, s3, "s3", 2);
  nct_peer_expect(p3, "s3", 2);
  /* The timeout lost (s2) applies; the one netcore had (s1) fires once. */
  nct_expect_drop(h2, TIMEOUT, s2);
  nct_expect_drop(h2, TIMEOUT, s1);
  assert_true(keepalive_on(peer_port(p1)));
  nct_expect_none(h2, s1, 300);
  close(p1);
  close(p2);
  close(p3);
  close(filler);
  close(full);
  close(olisten);
  nct_clients_drop(&clients, h2, 0);
  nct_daemon_stop(&d);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_resume_session_goes_on, setup, teardown),
      cmocka_unit_test_setup_teardown(test_resume_unseen_socket_and_lazy_acks, setup, teardown),
      cmocka_unit_test_setup_teardown(test_resume_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_resume_large_session, setup, teardown),
      cmocka_unit_test_setup_teardown(test_resume_commands_in_flight, setup, teardown),
  };
  return NCT_RUN(argc, argv, tests);
}
