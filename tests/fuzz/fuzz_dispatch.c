/* fuzz_dispatch.c: libFuzzer harness of the daemon's command dispatch.
 *
 * The daemon runs in this process as main.c starts it (config, loop, id maps,
 * the ROUTER on inproc://, the lease timer, the per-turn check), so every
 * command goes the real way: a DEALER sends it, router.c receives it and
 * calls ncd_commands_dispatch, which receives the payload frames itself, and
 * servers, sockets and timers are real libuv handles on 127.0.0.1. Three
 * DEALERs play three handlers.
 *
 * An input is a little program, read byte by byte (running out of bytes
 * reads zeros); each step is one byte `op` (low 3 bits: what, next bits: which
 * handler) and its arguments:
 *   0 Hello      flags byte: batch_events, lazy_acks, wrong version, short
 *                lease, credit window choice, a payload frame; then waits
 *                for the answer (the ids it makes need Welcome.id_prefix)
 *   1 command    one generated command (see gen_cmd) and a frame-count byte
 *                (right, none, one or two too many)
 *   2 batch      a count byte (0..15, bit 4: also a Hello or a nested batch
 *                inside) and that many generated commands, then a frame-count
 *                byte (right, one fewer, one more, none)
 *   3 raw        a length byte, that many bytes as the envelope, a byte for
 *                0..3 payload frames (envelopes that would listen or connect
 *                outside the sandbox are not sent; see sandboxed())
 *   4 sync       Ping and wait for its answer, reading events
 *   5 Bye
 *   6 wait       let timers run for a few milliseconds
 *   7 big write  a 300 KiB Write to a socket the handler knows
 * Generated commands name ids the handlers learnt from their events (their
 * servers and sockets, another handler's, new ones, stale or random ones),
 * endpoints on 127.0.0.1 / ::1 / localhost (port 0 to listen, a port netcore
 * listens on or a refused one to connect), UNIX paths in a temporary
 * directory (removed at exit), bad ports, missing endpoints and overlong
 * paths.
 *
 * Every event netcore sends must parse as a netcore.v1.Event. At the end of
 * an input every handler says Bye and the harness waits until netcore holds
 * no handler, socket or listener: a stall there is reported as a crash
 * (abort) with the input that caused it. Single-threaded: libFuzzer's thread.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "fuzz_common.h"
#include "handler.h"
#include "log.h"
#include "netcore.pb-c.h" /* the generator writes raw commands, odd ones included */
#include "protocol.h"
#include "router.h"
#include "socket.h"

ncd_daemon ncd; /* main.c's, which the harness replaces */

#define NDEALERS 3
#define MAX_KNOWN 32
#define MAX_PORTS 16
#define SYNC_WAIT_MS 5000
#define DRAIN_WAIT_MS 10000
#define SENTINEL_BASE 0xF00D000000000000ull
#define BIG_WRITE (300 * 1024)

typedef struct dealer {
  void *z;
  uint32_t prefix; /* from Welcome; 0 = never welcomed */
  uint64_t next_n, last_new;
  uint64_t sockets[MAX_KNOWN], servers[MAX_KNOWN];
  int nsockets, nservers;
  uint64_t sentinel; /* the nonce/ref awaited, 0 = none */
  int sentinel_seen;
} dealer;

static dealer dealers[NDEALERS];
static uint32_t ports[MAX_PORTS]; /* ports netcore listened on, for Connect */
static int nports;
static uint64_t sentinel_counter;
static unsigned char big_payload[BIG_WRITE];
static char sandbox_dir[] = "/tmp/ncf-dispatch-XXXXXX"; /* UNIX paths live here */

/* ------------------------------------------------------------ the daemon */

static void check_cb(uv_check_t *c) { /* main.c's check_cb */
  ncd_socket_flush_acks();
  ncd_handler_reap();
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void fatal(const char *what) {
  fprintf(stderr, "fuzz_dispatch: %s\n", what);
  abort();
}

/* netcore unlinks the paths it listened on; a crash leaves them behind. */
static void remove_sandbox(void) {
  char p[sizeof sandbox_dir + 8];
  for (int i = 0; i < 4; i++) {
    snprintf(p, sizeof p, "%s/s%d", sandbox_dir, i);
    unlink(p);
  }
  rmdir(sandbox_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  if (!mkdtemp(sandbox_dir)) fatal("cannot make a temporary directory");
  atexit(remove_sandbox);
  char endpoint[64];
  snprintf(endpoint, sizeof endpoint, "inproc://ncf-dispatch-%d", (int)getpid());
  /* NCF_LOG_LEVEL=debug shows what netcore does with an input. */
  char *level = getenv("NCF_LOG_LEVEL") ? getenv("NCF_LOG_LEVEL") : "error";
  char *args[] = {"netcore", "--bind", endpoint, "--log-level", level, NULL};
  if (ncd_config_parse(&ncd.cfg, 5, args) != 0) fatal("config");
  ncd_log_set_level(ncd.cfg.log_level);
  signal(SIGPIPE, SIG_IGN);
  ncd.loop = uv_default_loop();
  ncd.next_prefix = 1;
  ncc_idmap_init(&ncd.sockets);
  ncc_idmap_init(&ncd.servers);
  ncc_list_init(&ncd.handlers);
  ncc_list_init(&ncd.listeners);
  ncc_list_init(&ncd.dirty);
  snprintf(ncd.instance_id, sizeof ncd.instance_id, "fuzz-dispatch");
  if (ncd_router_start() != 0) fatal("router start");
  ncd_handler_start();
  uv_check_init(ncd.loop, &ncd.ack_check);
  uv_check_start(&ncd.ack_check, check_cb);
  for (int i = 0; i < NDEALERS; i++) {
    char rid[16];
    int n = snprintf(rid, sizeof rid, "ncf-%d", i);
    dealers[i].z = zmq_socket(ncd.zctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(dealers[i].z, ZMQ_ROUTING_ID, rid, (size_t)n);
    zmq_setsockopt(dealers[i].z, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_connect(dealers[i].z, endpoint) != 0) fatal("dealer connect");
  }
  for (size_t i = 0; i < sizeof big_payload; i++) big_payload[i] = (unsigned char)(i * 7);
  return 0;
}

/* ------------------------------------------------------------ the input */

typedef struct input {
  const uint8_t *p, *end;
} input;

static uint8_t byte(input *in) { return in->p < in->end ? *in->p++ : 0; }

static uint32_t u32(input *in) {
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) v |= (uint32_t)byte(in) << (8 * i);
  return v;
}

/* ------------------------------------------------------------ what handlers learnt */

static void add_id(uint64_t *ids, int *n, uint64_t id) {
  for (int i = 0; i < *n; i++)
    if (ids[i] == id) return;
  if (*n < MAX_KNOWN) ids[(*n)++] = id;
  else ids[id % MAX_KNOWN] = id;
}

static void remove_id(uint64_t *ids, int *n, uint64_t id) {
  for (int i = 0; i < *n; i++)
    if (ids[i] == id) {
      ids[i] = ids[--(*n)];
      return;
    }
}

static void learn(dealer *d, const ncc_event *e) {
  switch (e->kind) {
  case NCC_EV_WELCOME:
    d->prefix = e->welcome->id_prefix;
    d->next_n = 0;
    d->nsockets = d->nservers = 0;
    break;
  case NCC_EV_LISTENING:
    add_id(d->servers, &d->nservers, e->server_id);
    if (e->local && e->local->port) {
      if (nports < MAX_PORTS) ports[nports++] = e->local->port;
      else ports[e->local->port % MAX_PORTS] = e->local->port;
    }
    break;
  case NCC_EV_SERVER_ERROR:
  case NCC_EV_SERVER_CLOSED:
    remove_id(d->servers, &d->nservers, e->server_id);
    break;
  case NCC_EV_CONNECTION:
    add_id(d->sockets, &d->nsockets, e->socket_id);
    break;
  case NCC_EV_FD:
    add_id(d->sockets, &d->nsockets, e->new_socket_id);
    break;
  case NCC_EV_CLOSED:
    remove_id(d->sockets, &d->nsockets, e->socket_id);
    break;
  case NCC_EV_PONG:
    if (d->sentinel && e->nonce == d->sentinel) d->sentinel_seen = 1;
    break;
  case NCC_EV_ERROR:
    if (d->sentinel && e->ref == d->sentinel) d->sentinel_seen = 1;
    break;
  default:
    break;
  }
}

/* Reads every message waiting for d (with common/protocol, as libnc does).
 * Each must be a netcore.v1.Event. */
static void read_events(dealer *d) {
  static _Alignas(16) unsigned char block[8192];
  static ncc_arena arena = {block, sizeof block, 0, NULL, NULL};
  for (;;) {
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, d->z, ZMQ_DONTWAIT) < 0) {
      zmq_msg_close(&m);
      return;
    }
    int more = zmq_msg_more(&m);
    ncc_event e;
    if (ncc_event_unpack(&arena, zmq_msg_data(&m), zmq_msg_size(&m), &e) != 0)
      fatal("netcore sent an envelope that is not a netcore.v1.Event");
    if (e.kind == NCC_EV_BATCH) {
      if (e.count < 2) fatal("an EventBatch of fewer than two events");
      for (uint32_t i = 0, n = e.count; i < n; i++) {
        ncc_event sub;
        if (ncc_event_batch_entry(&arena, i, &sub) != 0) fatal("an EventBatch entry is missing");
        learn(d, &sub);
      }
    } else {
      learn(d, &e);
    }
    ncc_arena_reset(&arena);
    zmq_msg_close(&m);
    while (more) { /* payload frames */
      zmq_msg_init(&m);
      if (zmq_msg_recv(&m, d->z, 0) < 0) more = 0;
      else more = zmq_msg_more(&m);
      zmq_msg_close(&m);
    }
  }
}

/* One turn of netcore's loop, then whatever the handlers got. */
static void turn(void) {
  uv_run(ncd.loop, UV_RUN_NOWAIT);
  for (int i = 0; i < NDEALERS; i++) read_events(&dealers[i]);
}

static void spin_ms(int ms) {
  uint64_t until = now_ms() + (uint64_t)ms;
  do {
    turn();
    usleep(200);
  } while (now_ms() < until);
}

/* ------------------------------------------------------------ sending */

static void send_frames(dealer *d, const void *env, size_t len, int nframes, const void *payload,
                        size_t plen) {
  zmq_send(d->z, env, len, nframes > 0 ? ZMQ_SNDMORE : 0);
  for (int i = 0; i < nframes; i++) zmq_send(d->z, payload, plen, i + 1 < nframes ? ZMQ_SNDMORE : 0);
}

static void send_cmd(dealer *d, const Netcore__V1__Command *c, int nframes, const void *payload,
                     size_t plen) {
  size_t len = netcore__v1__command__get_packed_size(c);
  uint8_t *buf = malloc(len ? len : 1);
  netcore__v1__command__pack(c, buf);
  send_frames(d, buf, len, nframes, payload, plen);
  free(buf);
}

/* Ping (ref and nonce a fresh sentinel) and wait for Pong or Error naming it. */
static void sync_dealer(dealer *d) {
  Netcore__V1__Command c = NETCORE__V1__COMMAND__INIT;
  Netcore__V1__Ping ping = NETCORE__V1__PING__INIT;
  d->sentinel = SENTINEL_BASE | ++sentinel_counter;
  d->sentinel_seen = 0;
  c.ref = ping.nonce = d->sentinel;
  c.command_case = NETCORE__V1__COMMAND__COMMAND_PING;
  c.ping = &ping;
  send_cmd(d, &c, 0, NULL, 0);
  uint64_t deadline = now_ms() + SYNC_WAIT_MS;
  while (!d->sentinel_seen) {
    if (now_ms() > deadline) fatal("a Ping got no answer within 5 s (netcore stalled)");
    turn();
  }
  d->sentinel = 0;
}

/* ------------------------------------------------------------ generating */

static const char *const hosts[] = {"127.0.0.1", "::1", "localhost"};

/* Storage for one generated command and its sub-messages. */
typedef struct gen {
  Netcore__V1__Command c;
  union {
    Netcore__V1__Hello hello;
    Netcore__V1__Bye bye;
    Netcore__V1__Ping ping;
    Netcore__V1__Listen listen;
    Netcore__V1__ServerPause spause;
    Netcore__V1__ServerClose sclose;
    Netcore__V1__ServerSetMaxConnections smax;
    Netcore__V1__Connect connect;
    Netcore__V1__Write write;
    Netcore__V1__End end;
    Netcore__V1__Destroy destroy;
    Netcore__V1__Pause pause;
    Netcore__V1__Resume resume;
    Netcore__V1__Credit credit;
    Netcore__V1__SetTimeout stimeout;
    Netcore__V1__SetNoDelay snodelay;
    Netcore__V1__SetKeepAlive skeep;
    Netcore__V1__Pipe pipe;
    Netcore__V1__Unpipe unpipe;
  } u;
  Netcore__V1__TcpEndpoint tcp;
  char path[160];
} gen;

static uint64_t pick_id(input *in, dealer *d, int server) {
  uint8_t sel = byte(in);
  int k = sel >> 3;
  dealer *o = &dealers[(d - dealers + 1 + (k & 1)) % NDEALERS];
  switch (sel & 7) {
  case 0:
    if (server && d->nservers) return d->servers[k % d->nservers];
    if (!server && d->nsockets) return d->sockets[k % d->nsockets];
    /* fall through: nothing known yet */
  case 1:
  case 2:
    d->last_new = ((uint64_t)d->prefix << 32) | (d->next_n += 1 + (k & 3));
    return d->last_new;
  case 3:
    if (server && o->nservers) return o->servers[k % o->nservers];
    if (!server && o->nsockets) return o->sockets[k % o->nsockets];
    return 0;
  case 4:
    return 0;
  case 5: {
    uint64_t hi = u32(in);
    return hi << 32 | u32(in);
  }
  case 6:
    return d->last_new; /* not greater than the last id used */
  default:
    return ((uint64_t)o->prefix << 32) | (uint64_t)(k + 1); /* another handler's prefix */
  }
}

/* The endpoint of a Listen or Connect, always inside the sandbox. */
static void pick_endpoint(input *in, gen *g, int is_connect, Netcore__V1__TcpEndpoint **tcp,
                          char **path, int *has_path) {
  uint8_t e = byte(in);
  netcore__v1__tcp_endpoint__init(&g->tcp);
  *has_path = 0;
  *tcp = NULL;
  switch (e & 7) {
  case 0:
  case 1:
  case 2:
    g->tcp.host = (char *)hosts[(e >> 3) % 3];
    if (is_connect) g->tcp.port = nports && (e & 0x80) == 0 ? (int32_t)ports[(e >> 5) % nports] : 1;
    *tcp = &g->tcp;
    break;
  case 3:
    snprintf(g->path, sizeof g->path, "%s/s%d", sandbox_dir, (e >> 3) & 3);
    *path = g->path, *has_path = 1;
    break;
  case 4: /* a port out of range: ERR_SOCKET_BAD_PORT */
    g->tcp.host = (char *)hosts[0];
    g->tcp.port = (e & 8) ? -1 - (int32_t)(e >> 4) : 65536 + (int32_t)(e >> 4);
    *tcp = &g->tcp;
    break;
  case 5: /* no endpoint at all */
    break;
  case 6: /* a path over 107 bytes: ENAMETOOLONG */
    memset(g->path, 'p', 120);
    g->path[120] = '\0';
    *path = g->path, *has_path = 1;
    break;
  default: /* an empty TCP endpoint: listen on any address would leave the sandbox */
    if (is_connect) {
      g->tcp.host = "";
      g->tcp.port = 1;
    } else {
      g->tcp.host = (char *)hosts[0];
    }
    *tcp = &g->tcp;
    break;
  }
}

/* Fills g with one command from the input; returns its kind's payload rule
 * as 1 (Write: needs a frame), 0 otherwise. */
static int gen_cmd(input *in, dealer *d, gen *g, int *payload_len) {
  netcore__v1__command__init(&g->c);
  uint8_t kind = byte(in);
  uint32_t v = u32(in);
  g->c.ref = kind & 0x80 ? v : 0;
  *payload_len = 0;
  switch ((kind & 0x7f) % 19) {
  case 0:
    netcore__v1__ping__init(&g->u.ping);
    g->u.ping.nonce = v;
    g->c.command_case = NETCORE__V1__COMMAND__COMMAND_PING, g->c.ping = &g->u.ping;
    break;
  case 1: {
    Netcore__V1__Listen *l = &g->u.listen;
    netcore__v1__listen__init(l);
    l->server_id = pick_id(in, d, 1);
    Netcore__V1__TcpEndpoint *tcp; /* the endpoints are a union: fill one */
    char *path;
    int has_path;
    pick_endpoint(in, g, 0, &tcp, &path, &has_path);
    if (tcp) l->endpoint_case = NETCORE__V1__LISTEN__ENDPOINT_TCP, l->tcp = tcp;
    else if (has_path) l->endpoint_case = NETCORE__V1__LISTEN__ENDPOINT_PATH, l->path = path;
    else if (v & 0x100) l->endpoint_case = NETCORE__V1__LISTEN__ENDPOINT_FD, l->fd = (int32_t)(v >> 24) - 8;
    l->allow_half_open = v & 1;
    l->backlog = (int32_t)((v >> 1) & 7) - 1;
    l->max_connections = (v >> 4) & 3;
    static char *groups[] = {"", "", "g1", "g2"};
    l->group = groups[(v >> 6) & 3];
    g->c.command_case = NETCORE__V1__COMMAND__COMMAND_LISTEN, g->c.listen = l;
    break;
  }
  case 2:
    netcore__v1__server_pause__init(&g->u.spause);
    g->u.spause.server_id = pick_id(in, d, 1);
    g->u.spause.msecs = v % 200;
    g->c.command_case = NETCORE__V1__COMMAND__COMMAND_SERVER_PAUSE, g->c.server_pause = &g->u.spause;
    break;
  case 3:
    netcore__v1__server_close__init(&g->u.sclose);
    g->u.sclose.server_id = pick_id(in, d, 1);
    g->c.command_case = NETCORE__V1__COMMAND__COMMAND_SERVER_CLOSE, g->c.server_close = &g->u.sclose;
    break;
  case 4:
    netcore__v1__server_set_max_connections__init(&g->u.smax);
    g->u.smax.server_id = pick_id(in, d, 1);
    g->u.smax.max_connections = v & 3;
    g->c.command_case = NETCORE__V1__COMMAND__COMMAND_SERVER_SET_MAX_CONNECTIONS;
    g->c.server_set_max_connections = &g->u.smax;
    break;
  case 5: {
    Netcore__V1__Connect *k = &g->u.connect;
    netcore__v1__connect__init(k);
    k->socket_id = pick_id(in, d, 0);
    Netcore__V1__TcpEndpoint *tcp;
    char *path;
    int has_path;
    pick_endpoint(in, g, 1, &tcp, &path, &has_path);
    if (tcp) k->endpoint_case = NETCORE__V1__CONNECT__ENDPOINT_TCP, k->tcp = tcp;
    else if (has_path) k->endpoint_case = NETCORE__V1__CONNECT__ENDPOINT_PATH, k->path = path;
    k->allow_half_open = v & 1;
    g->c.command_case = NETCORE__V1__COMMAND__COMMAND_CONNECT, g->c.connect = k;
    break;
  }
  case 6:
  case 7:
    netcore__v1__write__init(&g->u.write);
    g->u.write.socket_id = pick_id(in, d, 0);
    if (v & 0x10000) g->u.write.fd_socket_id = pick_id(in, d, 0);
    g->u.write.ack_now = (v >> 17) & 1;
    *payload_len = (int)((v >> 8) & 0xff);
    g->c.command_case = NETCORE__V1__COMMAND__COMMAND_WRITE, g->c.write = &g->u.write;
    return 1;
  case 8:
    netcore__v1__end__init(&g->u.end);
    g->u.end.socket_id = pick_id(in, d, 0);
    g->u.end.ack_now = v & 1;
    *payload_len = (int)((v >> 8) & 0xff);
    g->c.command_case = NETCORE__V1__COMMAND__COMMAND_END, g->c.end = &g->u.end;
    break;
  case 9:
    netcore__v1__destroy__init(&g->u.destroy);
    g->u.destroy.socket_id = pick_id(in, d, 0);
    g->c.command_case = NETCORE__V1__COMMAND__COMMAND_DESTROY, g->c.destroy = &g->u.destroy;
    break;
  case 10:
    netcore__v1__pause__init(&g->u.pause);
    g->u.pause.socket_id = pick_id(in, d, 0);
    g->c.command_case = NETCORE__V1__COMMAND__COMMAND_PAUSE, g->c.pause = &g->u.pause;
    break;
  case 11:
    netcore__v1__resume__init(&g->u.resume);
    g->u.resume.socket_id = pick_id(in, d, 0);
    g->c.command_case = NETCORE__V1__COMMAND__COMMAND_RESUME, g->c.resume = &g->u.resume;
    break;
  case 12:
    netcore__v1__credit__init(&g->u.credit);
    g->u.credit.socket_id = pick_id(in, d, 0);
    g->u.credit.bytes = v & 0x80000000u ? v : v & 0xffff;
    g->c.command_case = NETCORE__V1__COMMAND__COMMAND_CREDIT, g->c.credit = &g->u.credit;
    break;
  case 13:
    netcore__v1__set_timeout__init(&g->u.stimeout);
    g->u.stimeout.socket_id = pick_id(in, d, 0);
    g->u.stimeout.msecs = v % 100;
    g->c.command_case = NETCORE__V1__COMMAND__COMMAND_SET_TIMEOUT, g->c.set_timeout = &g->u.stimeout;
    break;
  case 14:
    netcore__v1__set_no_delay__init(&g->u.snodelay);
    g->u.snodelay.socket_id = pick_id(in, d, 0);
    g->u.snodelay.enable = v & 1;
    g->c.command_case = NETCORE__V1__COMMAND__COMMAND_SET_NO_DELAY, g->c.set_no_delay = &g->u.snodelay;
    break;
  case 15:
    netcore__v1__set_keep_alive__init(&g->u.skeep);
    g->u.skeep.socket_id = pick_id(in, d, 0);
    g->u.skeep.enable = v & 1;
    g->u.skeep.initial_delay_ms = v >> 1;
    g->c.command_case = NETCORE__V1__COMMAND__COMMAND_SET_KEEP_ALIVE, g->c.set_keep_alive = &g->u.skeep;
    break;
  case 16: /* pipes inside netcore: self, cycles, another dealer's sockets */
    netcore__v1__pipe__init(&g->u.pipe);
    g->u.pipe.socket_id = pick_id(in, d, 0);
    g->u.pipe.dest_socket_id = pick_id(in, d, 0);
    g->u.pipe.no_end = v & 1;
    g->u.pipe.high_water_mark = v >> 1;
    g->c.command_case = NETCORE__V1__COMMAND__COMMAND_PIPE, g->c.pipe = &g->u.pipe;
    break;
  case 17:
    netcore__v1__unpipe__init(&g->u.unpipe);
    g->u.unpipe.socket_id = pick_id(in, d, 0);
    g->c.command_case = NETCORE__V1__COMMAND__COMMAND_UNPIPE, g->c.unpipe = &g->u.unpipe;
    break;
  default:
    netcore__v1__bye__init(&g->u.bye);
    g->c.command_case = NETCORE__V1__COMMAND__COMMAND_BYE, g->c.bye = &g->u.bye;
    break;
  }
  return 0;
}

static unsigned char filler[256];

static void op_hello(input *in, dealer *d) {
  uint8_t f = byte(in);
  Netcore__V1__Command c = NETCORE__V1__COMMAND__INIT;
  Netcore__V1__Hello h = NETCORE__V1__HELLO__INIT;
  static const uint32_t credits[] = {0, 16, 1, 0xffffffffu};
  h.version = (f & 4) ? f >> 3 : 1;
  h.name = (f & 0x40) ? "" : "fuzz";
  h.batch_events = f & 1;
  h.lazy_acks = (f >> 1) & 1;
  h.lease_ms = (f & 8) ? 60 : 0;
  h.credit_window = credits[(f >> 4) & 3];
  c.command_case = NETCORE__V1__COMMAND__COMMAND_HELLO;
  c.hello = &h;
  send_cmd(d, &c, (f & 0x80) ? 1 : 0, filler, 3);
  sync_dealer(d); /* ids need Welcome.id_prefix: a handler waits for it too */
}

static void op_command(input *in, dealer *d) {
  gen g;
  int plen;
  int needs = gen_cmd(in, d, &g, &plen);
  int has_end_payload = g.c.command_case == NETCORE__V1__COMMAND__COMMAND_END && plen > 0;
  uint8_t mode = byte(in) & 3;
  int frames = mode == 0 ? (needs || has_end_payload) : mode == 1 ? 0 : mode;
  send_cmd(d, &g.c, frames, filler, (size_t)plen);
}

static void op_batch(input *in, dealer *d) {
  uint8_t cb = byte(in);
  size_t n = cb & 15, writes = 0;
  gen *gs = calloc(n + 1, sizeof *gs);
  Netcore__V1__Command **cmds = calloc(n + 1, sizeof *cmds);
  Netcore__V1__CommandBatch inner = NETCORE__V1__COMMAND_BATCH__INIT;
  Netcore__V1__Hello hello = NETCORE__V1__HELLO__INIT;
  int plen = 0, p;
  for (size_t i = 0; i < n; i++) {
    writes += (size_t)gen_cmd(in, d, &gs[i], &p);
    if (p) plen = p;
    cmds[i] = &gs[i].c;
  }
  if (cb & 16) { /* a Hello or a batch inside a batch: rejected entry by entry */
    netcore__v1__command__init(&gs[n].c);
    if (cb & 32) {
      hello.version = 1;
      gs[n].c.command_case = NETCORE__V1__COMMAND__COMMAND_HELLO, gs[n].c.hello = &hello;
    } else {
      gs[n].c.command_case = NETCORE__V1__COMMAND__COMMAND_BATCH, gs[n].c.batch = &inner;
    }
    cmds[n] = &gs[n].c;
    n++;
  }
  Netcore__V1__CommandBatch b = NETCORE__V1__COMMAND_BATCH__INIT;
  b.n_commands = n;
  b.commands = cmds;
  Netcore__V1__Command c = NETCORE__V1__COMMAND__INIT;
  c.command_case = NETCORE__V1__COMMAND__COMMAND_BATCH;
  c.batch = &b;
  uint8_t mode = byte(in) & 3;
  int frames = (int)writes;
  if (mode == 1) frames = frames > 0 ? frames - 1 : 0;
  else if (mode == 2) frames++;
  else if (mode == 3) frames = 0;
  send_cmd(d, &c, frames, filler, (size_t)plen);
  free(cmds);
  free(gs);
}

static int allowed_host(const char *h) {
  for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++)
    if (strcmp(h, hosts[i]) == 0) return 1;
  return 0;
}

static int allowed_port(int32_t port, int is_connect) {
  if (port < 0 || port > 65535) return 1; /* refused: ERR_SOCKET_BAD_PORT */
  if (!is_connect) return port == 0;
  if (port == 1) return 1;
  for (int i = 0; i < nports; i++)
    if ((uint32_t)port == ports[i]) return 1;
  return 0;
}

static int allowed_path(const char *p) {
  size_t n = strlen(sandbox_dir);
  if (strlen(p) > 107) return 1; /* refused: ENAMETOOLONG */
  return strncmp(p, sandbox_dir, n) == 0 && p[n] == '/' && !strstr(p, "..");
}

/* Whether one command stays in the sandbox: no listening beyond loopback
 * port 0, no connecting to ports this netcore does not listen on, no paths
 * outside the temporary directory. */
static int sandboxed_one(const Netcore__V1__Command *c) {
  if (c->command_case == NETCORE__V1__COMMAND__COMMAND_LISTEN) {
    const Netcore__V1__Listen *l = c->listen;
    if (l->endpoint_case == NETCORE__V1__LISTEN__ENDPOINT_TCP)
      return !l->tcp || (allowed_host(l->tcp->host) && allowed_port(l->tcp->port, 0));
    if (l->endpoint_case == NETCORE__V1__LISTEN__ENDPOINT_PATH) return allowed_path(l->path);
    return 1;
  }
  if (c->command_case == NETCORE__V1__COMMAND__COMMAND_CONNECT) {
    const Netcore__V1__Connect *k = c->connect;
    if (k->endpoint_case == NETCORE__V1__CONNECT__ENDPOINT_TCP)
      return k->tcp && allowed_host(k->tcp->host) && allowed_port(k->tcp->port, 1);
    if (k->endpoint_case == NETCORE__V1__CONNECT__ENDPOINT_PATH) return allowed_path(k->path);
    return 1;
  }
  return 1;
}

static int sandboxed(const uint8_t *env, size_t len) {
  Netcore__V1__Command *c = netcore__v1__command__unpack(NULL, len, env);
  if (!c) return 1; /* netcore will not parse it either */
  int ok = sandboxed_one(c);
  if (ok && c->command_case == NETCORE__V1__COMMAND__COMMAND_BATCH)
    for (size_t i = 0; ok && i < c->batch->n_commands; i++) ok = sandboxed_one(c->batch->commands[i]);
  netcore__v1__command__free_unpacked(c, NULL);
  return ok;
}

static void op_raw(input *in, dealer *d) {
  size_t n = byte(in);
  if (n > (size_t)(in->end - in->p)) n = (size_t)(in->end - in->p);
  const uint8_t *env = in->p;
  in->p += n;
  int frames = byte(in) & 3;
  if (!ncf_nesting_allowed(env, n) || !sandboxed(env, n)) return;
  send_frames(d, n ? env : (const void *)"", n, frames, filler, 5);
}

static void op_big_write(input *in, dealer *d) {
  gen g;
  netcore__v1__command__init(&g.c);
  netcore__v1__write__init(&g.u.write);
  g.u.write.socket_id = pick_id(in, d, 0);
  g.c.command_case = NETCORE__V1__COMMAND__COMMAND_WRITE, g.c.write = &g.u.write;
  send_cmd(d, &g.c, 1, big_payload, sizeof big_payload);
}

static void op_bye(dealer *d) {
  Netcore__V1__Command c = NETCORE__V1__COMMAND__INIT;
  Netcore__V1__Bye bye = NETCORE__V1__BYE__INIT;
  c.command_case = NETCORE__V1__COMMAND__COMMAND_BYE;
  c.bye = &bye;
  send_cmd(d, &c, 0, NULL, 0);
}

/* Every handler says Bye; then netcore must come back to holding nothing. */
static void drain_all(void) {
  for (int i = 0; i < NDEALERS; i++) op_bye(&dealers[i]);
  for (int i = 0; i < NDEALERS; i++) sync_dealer(&dealers[i]);
  uint64_t deadline = now_ms() + DRAIN_WAIT_MS;
  while (!ncc_list_empty(&ncd.handlers) || ncd.nsockets > 0 || !ncc_list_empty(&ncd.listeners)) {
    if (now_ms() > deadline) {
      fprintf(stderr, "fuzz_dispatch: %s handlers, %u sockets, %s listeners left after Bye\n",
              ncc_list_empty(&ncd.handlers) ? "no" : "some", ncd.nsockets,
              ncc_list_empty(&ncd.listeners) ? "no" : "some");
      fatal("netcore did not let go of a handler's objects within 10 s");
    }
    turn();
    usleep(100);
  }
  for (int i = 0; i < NDEALERS; i++) {
    dealers[i].prefix = 0;
    dealers[i].nsockets = dealers[i].nservers = 0;
  }
  nports = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len) {
  input in = {data, data + len};
  int steps = 0;
  while (in.p < in.end && steps++ < 256) {
    uint8_t op = byte(&in);
    dealer *d = &dealers[(op >> 3) % NDEALERS];
    switch (op & 7) {
    case 0: op_hello(&in, d); break;
    case 1: op_command(&in, d); break;
    case 2: op_batch(&in, d); break;
    case 3: op_raw(&in, d); break;
    case 4: sync_dealer(d); break;
    case 5: op_bye(d); break;
    case 6: spin_ms(1 + (byte(&in) & 15)); break;
    default: op_big_write(&in, d); break;
    }
    turn();
  }
  drain_all();
  return 0;
}
