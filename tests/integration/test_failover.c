/* test_failover.c: connections outlive their handler (PROTOCOL.md 13).
 *
 * Raw-protocol handlers, so every byte of credit is the test's own: a group
 * member that dies hands its connections to a survivor, which gets Adopted
 * and exactly the input the dead one had not credited; credited input is
 * never repeated; a lone member's connections wait (parked, listener open,
 * clients in the backlog) for a member that joins, or a successor under the
 * same service name, for --handoff-ms, then go as before; Bye{handoff} hands
 * over as a death does; another principal adopts nothing. */
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "harness.h"

/* A handler that said Hello{service} (service NULL: none), owned by e. */
static nct_client *handler_svc(nct_env *e, const char *name, const char *service) {
  nct_client *c = nct_client_new(e->d.endpoint, name, 0);
  nct_env_adopt(e, c);
  Netcore__V1__Hello hello = NETCORE__V1__HELLO__INIT;
  hello.version = 1;
  hello.name = c->name;
  hello.lease_ms = 60000;
  hello.batch_events = c->batch_events;
  hello.service = (char *)(service ? service : "");
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

/* The handler's process dies: its DEALER closes without a Bye. Everything it
 * sent before was carried out (nct_sync), and netcore has seen it go before
 * the test goes on (nct_env_die): its connections are handed on or parked. */
static void die(nct_env *e, nct_client *c) {
  nct_sync(c);
  nct_env_die(e, c);
}

static uint64_t listen_at(nct_client *c, uint16_t *port, const char *group) {
  uint64_t id = nct_new_id(c);
  nct_cmd_listen_tcp(c, id, "127.0.0.1", *port, 0, 0, 0, group);
  nct_event *ev = nct_expect(c, LISTENING, id);
  *port = (uint16_t)ev->ev->listening->address->port;
  nct_event_free(ev);
  return id;
}

/* Waits for the Adopted of socket id at c and checks what it says; replay
 * (UINT64_MAX: any) is returned. */
static uint64_t expect_adopted(nct_client *c, uint64_t id, uint64_t server_id, uint64_t bytes_read,
                               uint64_t replay) {
  nct_event *ev = nct_take(c, EV(ADOPTED), id, NCT_WAIT);
  if (!ev) nct_fail("[%s] no Adopted for socket 0x%llx", c->name, (unsigned long long)id);
  Netcore__V1__Adopted *a = ev->ev->adopted;
  assert_int_equal(a->server_id, server_id);
  assert_int_equal(a->bytes_read, bytes_read);
  if (replay != UINT64_MAX) assert_int_equal(a->replay_bytes, replay);
  replay = a->replay_bytes;
  assert_true(ev->ev->seq > 1); /* the socket's seq goes on */
  assert_int_equal(a->remote->family, FAM(IPV4));
  assert_string_equal(a->local->address, "127.0.0.1");
  nct_event_free(ev);
  return replay;
}

/* One peer connected to a group of a and b: who got it, and its id. */
static uint64_t accept_either(nct_client *a, uint64_t sa, nct_client *b, uint64_t sb,
                              uint16_t port, int *peer, nct_client **owner) {
  *peer = nct_tcp_connect("127.0.0.1", port);
  uint64_t deadline = nct_now_ms() + NCT_WAIT;
  while (nct_now_ms() < deadline) {
    nct_pump(a, 5);
    nct_pump(b, 5);
    nct_client *who = nct_count_connections(a, sa) ? a : nct_count_connections(b, sb) ? b : NULL;
    if (who) {
      nct_event *ev = nct_expect_connection(who, who == a ? sa : sb);
      uint64_t id = ev->ev->connection->socket_id;
      nct_event_free(ev);
      *owner = who;
      return id;
    }
  }
  nct_fail("no member got the connection");
}

/* The value of the sample `name` in a Stats answer to c; with lname, of the
 * one labelled lname = lvalue. *found says whether there was one. */
static double stat_sample(nct_client *c, const char *name, const char *lname, const char *lvalue,
                          int *found) {
  Netcore__V1__StatsQuery q = NETCORE__V1__STATS_QUERY__INIT;
  nct_cmd cmd = NETCORE__V1__COMMAND__INIT;
  cmd.command_case = NETCORE__V1__COMMAND__COMMAND_STATS;
  cmd.stats = &q;
  nct_send(c, &cmd, NULL, 0, 0);
  nct_event *ev = nct_expect_global(c, STATS);
  const Netcore__V1__Stats *st = ev->ev->stats;
  double v = 0;
  *found = 0;
  for (size_t f = 0; f < st->n_families; f++)
    for (size_t i = 0; i < st->families[f]->n_samples; i++) {
      const Netcore__V1__MetricSample *smp = st->families[f]->samples[i];
      if (strcmp(smp->name, name) != 0) continue;
      int match = lname == NULL;
      for (size_t k = 0; !match && k < smp->n_labels; k++)
        match = strcmp(smp->labels[k]->name, lname) == 0 && strcmp(smp->labels[k]->value, lvalue) == 0;
      if (match) v = smp->value, *found = 1;
    }
  nct_event_free(ev);
  return v;
}

/* The value of the sample `name` (no labels asked); fails if there is none. */
static double stat_value(nct_client *c, const char *name) {
  int found;
  double v = stat_sample(c, name, NULL, NULL, &found);
  if (!found) nct_fail("no sample %s in Stats", name);
  return v;
}

/* The sample `name` with label lname = lvalue; 0 when there is none (a
 * counter of a reason not seen yet). */
static double stat_labelled(nct_client *c, const char *name, const char *lname, const char *lvalue) {
  int found;
  return stat_sample(c, name, lname, lvalue, &found);
}

/* A group member dies with input delivered but not credited: the survivor
 * adopts the socket and gets exactly those bytes, then new input; the
 * writes the dead one made are the peer's once; the peer sees one stream. */
static void test_failover_group_member_dies(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_client *a = nct_env_handler(e, "a");
  nct_client *b = nct_env_handler(e, "b");
  uint16_t port = 0;
  uint64_t sa = listen_at(a, &port, "g"), sb = listen_at(b, &port, "g");
  int peer;
  nct_client *owner;
  uint64_t id = accept_either(a, sa, b, sb, port, &peer, &owner);
  nct_client *heir = owner == a ? b : a;
  uint64_t heir_srv = owner == a ? sb : sa;

  nct_cmd_write(owner, id, "hi\n", 3);
  nct_peer_expect(peer, "hi\n", 3);
  nct_peer_write(peer, "one two", 7);
  nct_expect_data(owner, id, "one two", 7); /* delivered, never credited */
  die(e, owner);

  expect_adopted(heir, id, heir_srv, 0, 7);
  nct_expect_data(heir, id, "one two", 7);
  nct_peer_write(peer, " three", 6);
  nct_expect_data(heir, id, " three", 6);
  nct_cmd_write(heir, id, "ok", 2);
  nct_wait_acks(heir, id, 1, 2); /* its own write only */
  nct_peer_expect(peer, "ok", 2);
  nct_peer_expect_quiet(peer, 100); /* the greeting did not come again */
  assert_int_equal((int)stat_value(heir, "netcore_sockets_adopted_total"), 1); /* metrics */
  nct_close_both(heir, id, peer);
  nct_env_finish(e);
}

/* Input credited in the batch of the writes it produced is never replayed;
 * what came after it (and a part-credited rest) is, exactly. */
static void test_failover_credited_not_replayed(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_client *a = nct_env_handler(e, "a");
  nct_client *b = nct_env_handler(e, "b");
  uint16_t port = 0;
  uint64_t sa = listen_at(a, &port, "g"), sb = listen_at(b, &port, "g");
  int peer;
  nct_client *owner;
  uint64_t id = accept_either(a, sa, b, sb, port, &peer, &owner);
  nct_client *heir = owner == a ? b : a;

  nct_peer_write(peer, "abc", 3);
  nct_expect_data(owner, id, "abc", 3);
  /* The echo and its credit in one batch, as the libraries send them. */
  Netcore__V1__Write w = NETCORE__V1__WRITE__INIT;
  w.socket_id = id;
  Netcore__V1__Credit cr = NETCORE__V1__CREDIT__INIT;
  cr.socket_id = id;
  cr.bytes = 3;
  nct_cmd cw = NETCORE__V1__COMMAND__INIT, cc = NETCORE__V1__COMMAND__INIT;
  cw.command_case = NETCORE__V1__COMMAND__COMMAND_WRITE, cw.write = &w;
  cc.command_case = NETCORE__V1__COMMAND__COMMAND_CREDIT, cc.credit = &cr;
  nct_cmd *cmds[] = {&cw, &cc};
  const void *payloads[] = {"ABC"};
  size_t lens[] = {3};
  nct_send_batch(owner, cmds, 2, 1, payloads, lens);
  nct_peer_expect(peer, "ABC", 3);
  nct_peer_write(peer, "defgh", 5);
  nct_expect_data(owner, id, "defgh", 5);
  nct_cmd_credit(owner, id, 2); /* "de" consumed, "fgh" not */
  die(e, owner);

  expect_adopted(heir, id, owner == a ? sb : sa, 5, 3);
  nct_expect_data(heir, id, "fgh", 3);
  nct_peer_expect_quiet(peer, 100); /* "ABC" went once */
  nct_close_both(heir, id, peer);
  nct_env_finish(e);
}

/* The last member dies: the listener stays open but accepts nothing (new
 * clients wait in the backlog), the socket is not read; a member joining the
 * group adopts the socket, then gets the waiting client. */
static void test_failover_parked_until_member_joins(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_client *a = nct_env_handler(e, "a");
  uint16_t port = 0;
  uint64_t sa = listen_at(a, &port, "g");
  int peer;
  uint64_t id = nct_accept_peer(a, sa, port, &peer);
  nct_peer_write(peer, "x", 1);
  nct_expect_data(a, id, "x", 1);
  die(e, a);

  nct_peer_write(peer, "yz", 2);      /* waits in the kernel meanwhile */
  int late = nct_tcp_connect("127.0.0.1", port); /* the port is still bound */
  nct_sync(e->observer);
  uint32_t backlog, queued;
  if (nct_tcp_listen_queue(AF_INET, port, &backlog, &queued) != 0) nct_fail("no listener on %u", port);
  assert_int_equal(queued, 1); /* late waits in the backlog, not accepted */
  nct_client *b = nct_env_handler(e, "b");
  uint64_t sb = listen_at(b, &port, "g");
  /* Netcore saw a die before "yz" was written: it replays "x" alone and
   * reads "yz" once b has the socket. */
  expect_adopted(b, id, sb, 0, 1);
  nct_expect_data(b, id, "xyz", 3);
  nct_event *ev = nct_expect_connection(b, sb);
  uint64_t lid = ev->ev->connection->socket_id;
  assert_int_equal(ev->ev->connection->server_connections, 2);
  nct_event_free(ev);
  nct_close_both(b, lid, late);
  nct_close_both(b, id, peer);
  nct_env_finish(e);
}

/* Without a group: a successor under the same service name listens on the
 * same endpoint and inherits the server's connections; a handler without the
 * name gets EADDRINUSE meanwhile. */
static void test_failover_service_successor(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_client *a = handler_svc(e, "a", "echo-svc");
  uint16_t port = 0;
  uint64_t sa = listen_at(a, &port, NULL);
  int peer;
  uint64_t id = nct_accept_peer(a, sa, port, &peer);
  nct_peer_write(peer, "pending", 7);
  nct_expect_data(a, id, "pending", 7);
  die(e, a);

  nct_client *other = handler_svc(e, "other", "another-svc");
  uint64_t so = nct_new_id(other);
  nct_cmd_listen_tcp(other, so, "127.0.0.1", port, 0, 0, 0, NULL);
  nct_event *ev = nct_expect(other, SERVER_ERROR, so);
  assert_string_equal(ev->ev->server_error->code, "EADDRINUSE");
  nct_event_free(ev);

  nct_client *b = handler_svc(e, "b", "echo-svc");
  uint64_t sb = listen_at(b, &port, NULL);
  expect_adopted(b, id, sb, 0, 7);
  nct_expect_data(b, id, "pending", 7);
  nct_cmd_write(b, id, "!", 1);
  nct_peer_expect(peer, "!", 1);
  nct_close_both(b, id, peer);
  nct_env_finish(e);
}

/* Nobody comes within --handoff-ms: the connection is closed, the port is
 * free, and a successor arriving later just listens. */
static void test_failover_handoff_expires(void **state) {
  nct_env *e = *state;
  const char *flags[] = {"--handoff-ms", "300", NULL};
  nct_env_start(e, flags);
  nct_client *a = handler_svc(e, "a", "echo-svc");
  uint16_t port = 0;
  uint64_t sa = listen_at(a, &port, NULL);
  int peer;
  uint64_t id = nct_accept_peer(a, sa, port, &peer);
  (void)id;
  die(e, a);
  uint64_t t0 = nct_now_ms();
  nct_peer_expect_eof(peer);
  close(peer);
  if (nct_now_ms() - t0 < 250) nct_fail("the parked connection closed before --handoff-ms");
  nct_client *b = handler_svc(e, "b", "echo-svc");
  uint64_t sb = listen_at(b, &port, NULL);
  uint64_t nid = nct_accept_peer(b, sb, port, &peer);
  nct_expect_none(b, id, 100); /* nothing of the old one */
  nct_close_both(b, nid, peer);
  nct_env_finish(e);
}

/* Bye{handoff} hands over as a death does (a rolling restart's graceful
 * exit); the bytes written before it are delivered. */
static void test_failover_bye_handoff(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_client *a = nct_env_handler(e, "a");
  nct_client *b = nct_env_handler(e, "b");
  uint16_t port = 0;
  uint64_t sa = listen_at(a, &port, "g"), sb = listen_at(b, &port, "g");
  int peer;
  nct_client *owner;
  uint64_t id = accept_either(a, sa, b, sb, port, &peer, &owner);
  nct_client *heir = owner == a ? b : a;
  nct_peer_write(peer, "q", 1);
  nct_expect_data(owner, id, "q", 1);
  nct_cmd_write(owner, id, "last words", 10);
  Netcore__V1__Bye bye = NETCORE__V1__BYE__INIT;
  bye.handoff = 1;
  nct_cmd cmd = NETCORE__V1__COMMAND__INIT;
  cmd.command_case = NETCORE__V1__COMMAND__COMMAND_BYE;
  cmd.bye = &bye;
  nct_send(owner, &cmd, NULL, 0, 0);
  expect_adopted(heir, id, owner == a ? sb : sa, 0, 1);
  nct_expect_data(heir, id, "q", 1);
  nct_peer_expect(peer, "last words", 10);
  nct_env_release(e, owner, 0);
  nct_close_both(heir, id, peer);
  nct_env_finish(e);
}

/* A member that says Bye and closes its DEALER at once (every library's
 * graceful exit) is gone by its Bye, not lost: its group listener closes at
 * once instead of waiting --handoff-ms for an adopter. netcore reads the
 * close on its ZeroMQ monitor, which may come first; many rounds give that
 * order its chances. */
static void test_failover_bye_then_close(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  /* Data netcore sends meanwhile to another handler: a send may take the
   * ROUTER's news of the Bye, so the loop sees the monitor first. */
  nct_client *o = nct_env_handler(e, "o");
  uint16_t oport = 0;
  uint64_t so = listen_at(o, &oport, NULL);
  int peer;
  uint64_t id = nct_accept_peer(o, so, oport, &peer);
  enum { ROUNDS = 100, CHUNK = 64 * 1024 };
  static uint8_t chunk[CHUNK], got[CHUNK];
  for (int i = 0; i < ROUNDS; i++) {
    nct_client *a = nct_env_handler(e, "a");
    uint32_t prefix = a->id_prefix;
    uint16_t port = 0;
    listen_at(a, &port, "g");
    nct_pattern_fill((uint64_t)i * CHUNK, chunk, CHUNK);
    nct_peer_write(peer, chunk, CHUNK);
    nct_env_release(e, a, 1); /* Bye, then the DEALER closes */
    nct_env_wait_gone(e, prefix);
    nct_read_data(o, id, got, CHUNK);
    if (nct_pattern_check((uint64_t)i * CHUNK, got, CHUNK) >= 0) nct_fail("round %d: data differ", i);
    nct_cmd_credit(o, id, CHUNK);
  }
  nct_close_both(o, id, peer);
  int lost = (int)stat_labelled(e->observer, "netcore_handlers_gone_total", "reason",
                                "connection closed");
  if (lost) nct_fail("%d of %d handlers that said Bye were taken for crashed", lost, ROUNDS);
  assert_int_equal((int)stat_value(e->observer, "netcore_listeners"), 1); /* o's; none parked */
  nct_env_finish(e);
}

/* Hello.service longer than netcore keeps is refused, clearly. */
static void test_failover_service_too_long(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_client *c = nct_client_new(e->d.endpoint, "long", 0);
  nct_env_adopt(e, c);
  char name[100];
  memset(name, 's', sizeof name - 1);
  name[sizeof name - 1] = '\0';
  Netcore__V1__Hello hello = NETCORE__V1__HELLO__INIT;
  hello.version = 1;
  hello.service = name;
  nct_cmd cmd = NETCORE__V1__COMMAND__INIT;
  cmd.command_case = NETCORE__V1__COMMAND__COMMAND_HELLO;
  cmd.hello = &hello;
  nct_send(c, &cmd, NULL, 0, 0);
  nct_event *ev = nct_expect_error(c, "ERR_INVALID_ARG_VALUE");
  assert_non_null(strstr(ev->ev->error->message, "service"));
  nct_event_free(ev);
  nct_env_finish(e);
}

/* --------------------------------------------------------------- impostor */

/* Sends one command on a raw DEALER (the child has no cmocka). */
static void raw_send(void *s, const nct_cmd *cmd) {
  uint8_t buf[512];
  zmq_send(s, buf, netcore__v1__command__pack(cmd, buf), 0);
}

/* Next event within ms, or NULL. */
static nct_pb_event *raw_recv(void *s, int ms) {
  zmq_pollitem_t it = {s, 0, ZMQ_POLLIN, 0};
  uint8_t buf[4096];
  if (zmq_poll(&it, 1, ms) <= 0) return NULL;
  int n = zmq_recv(s, buf, sizeof buf, 0);
  int more = 0;
  size_t ml = sizeof more;
  zmq_getsockopt(s, ZMQ_RCVMORE, &more, &ml);
  while (more) { /* a payload frame: not the child's business */
    zmq_recv(s, NULL, 0, 0);
    zmq_getsockopt(s, ZMQ_RCVMORE, &more, &ml);
  }
  return n > 0 ? netcore__v1__event__unpack(NULL, (size_t)n, buf) : NULL;
}

/* Child, as nobody: Hello{service}, Listen without a group on port (must be
 * EADDRINUSE), Listen in group g (must be Listening and no Adopted within
 * 700 ms), then it closes that server and says Bye, so nothing of it waits
 * parked for --handoff-ms. Exit 0 when so; 10+ says what went wrong. */
static void impostor(const char *endpoint, uint16_t port) {
  struct passwd *pw = getpwnam("nobody");
  if (!pw || setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0)
    _exit(3);
  void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_DEALER);
  int linger = 0;
  zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
  if (zmq_connect(s, endpoint) != 0) _exit(4);
  Netcore__V1__Hello hello = NETCORE__V1__HELLO__INIT;
  hello.version = 1;
  hello.name = "impostor";
  hello.service = "svc";
  nct_cmd cmd = NETCORE__V1__COMMAND__INIT;
  cmd.command_case = NETCORE__V1__COMMAND__COMMAND_HELLO;
  cmd.hello = &hello;
  raw_send(s, &cmd);
  nct_pb_event *ev = raw_recv(s, 3000);
  if (!ev || ev->event_case != EV(WELCOME)) _exit(5);
  uint64_t base = (uint64_t)ev->welcome->id_prefix << 32;
  Netcore__V1__TcpEndpoint tcp = NETCORE__V1__TCP_ENDPOINT__INIT;
  tcp.host = "127.0.0.1";
  tcp.port = port;
  Netcore__V1__Listen l = NETCORE__V1__LISTEN__INIT;
  l.endpoint_case = NETCORE__V1__LISTEN__ENDPOINT_TCP;
  l.tcp = &tcp;
  l.server_id = base + 1;
  cmd.command_case = NETCORE__V1__COMMAND__COMMAND_LISTEN;
  cmd.listen = &l;
  raw_send(s, &cmd);
  ev = raw_recv(s, 3000);
  if (!ev || ev->event_case != EV(SERVER_ERROR) || strcmp(ev->server_error->code, "EADDRINUSE"))
    _exit(10);
  l.server_id = base + 2;
  l.group = "g";
  raw_send(s, &cmd);
  ev = raw_recv(s, 3000);
  if (!ev || ev->event_case != EV(LISTENING)) _exit(11);
  while ((ev = raw_recv(s, 700)))
    if (ev->event_case == EV(ADOPTED)) _exit(12);
  Netcore__V1__ServerClose sc = NETCORE__V1__SERVER_CLOSE__INIT;
  sc.server_id = base + 2;
  cmd.command_case = NETCORE__V1__COMMAND__COMMAND_SERVER_CLOSE;
  cmd.server_close = &sc;
  raw_send(s, &cmd);
  while ((ev = raw_recv(s, NCT_WAIT)) && ev->event_case != EV(SERVER_CLOSED)) {
  }
  if (!ev) _exit(13);
  Netcore__V1__Bye bye = NETCORE__V1__BYE__INIT;
  cmd.command_case = NETCORE__V1__COMMAND__COMMAND_BYE;
  cmd.bye = &bye;
  raw_send(s, &cmd);
  linger = NCT_WAIT;
  zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
  zmq_close(s);
  zmq_ctx_term(ctx);
  _exit(0);
}

/* Another principal (an ipc peer of another uid, let in with --allow-uid)
 * with the same service and group name adopts nothing; the right one then
 * does. */
static void test_failover_impostor_adopts_nothing(void **state) {
  nct_env *e = *state;
  if (geteuid() != 0 || !getpwnam("nobody")) skip();
  char uid[16];
  snprintf(uid, sizeof uid, "%u", (unsigned)getpwnam("nobody")->pw_uid);
  /* a's connection waits parked while the impostors run (two processes and
   * a 700 ms watch): a handoff no loaded machine outlasts. The impostors
   * leave nothing parked behind (they close their server and say Bye). */
  const char *flags[] = {"--allow-uid", uid, "--handoff-ms", "60000", NULL};
  nct_env_start(e, flags);
  char sock[128];
  nct_daemon_path(&e->d, "nc.sock", sock, sizeof sock);
  if (chmod(e->d.dir, 0755) != 0 || chmod(sock, 0777) != 0) nct_fail("chmod failed");

  /* Two listeners of one handler: the ungrouped one (service svc) is what the
   * impostor's plain Listen meets, the group one what it joins. */
  nct_client *a = handler_svc(e, "a", "svc");
  uint16_t port = 0, gport = 0;
  uint64_t sa = listen_at(a, &port, NULL);
  (void)sa;
  uint64_t ga = listen_at(a, &gport, "g");
  int peer;
  uint64_t id = nct_accept_peer(a, ga, gport, &peer);
  nct_peer_write(peer, "secret", 6);
  nct_expect_data(a, id, "secret", 6);
  die(e, a);

  pid_t pid = fork();
  if (pid == 0) {
    /* The plain Listen goes to `port`, the group Listen to `gport`: the
     * child tries both on one port, so run it once per port. */
    impostor(e->d.endpoint, port);
  }
  int status;
  waitpid(pid, &status, 0);
  /* On `port` the group Listen also fails (no group there): exit 11 means
   * the plain Listen was refused as it must be. */
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 11)
    nct_fail("impostor on the ungrouped port: exit %d", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  pid = fork();
  if (pid == 0) impostor(e->d.endpoint, gport);
  waitpid(pid, &status, 0);
  /* On gport the plain Listen is EADDRINUSE, the group Listen joins. */
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    nct_fail("impostor on the group port: exit %d (12: it adopted, 13: no ServerClosed)", WIFEXITED(status) ? WEXITSTATUS(status) : -1);

  nct_client *b = handler_svc(e, "b", "svc");
  uint64_t gb = listen_at(b, &gport, "g");
  expect_adopted(b, id, gb, 0, 6);
  nct_expect_data(b, id, "secret", 6);
  uint64_t sb = listen_at(b, &port, NULL); /* and the ungrouped one, by service */
  (void)sb;
  nct_close_both(b, id, peer);
  nct_env_finish(e);
}

#define T(f) cmocka_unit_test_setup_teardown(f, nct_env_setup, nct_env_teardown)

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      T(test_failover_group_member_dies),
      T(test_failover_credited_not_replayed),
      T(test_failover_parked_until_member_joins),
      T(test_failover_service_successor),
      T(test_failover_handoff_expires),
      T(test_failover_bye_handoff),
      T(test_failover_bye_then_close),
      T(test_failover_service_too_long),
      T(test_failover_impostor_adopts_nothing),
  };
  return NCT_RUN(argc, argv, tests);
}
