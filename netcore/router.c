/* router.c: see router.h. */
#include "router.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "commands.h"
#include "endpoint.h"
#include "handler.h"
#include "log.h"
#include "socket.h"

/* One turn of the loop carries out at most this many commands, then lets the
 * sockets and timers run. ZeroMQ's ROUTER hands out messages round robin over
 * the handlers that have input, and one message holds at most --max-batch
 * commands, so no handler's input delays the others by more than that. */
#define TURN_COMMANDS 4096
#define RETRY_MS 2
#define STRANGERS_BUDGET (4u * 1024 * 1024)
#define RECV_HWM 1000
/* A batch of events leaves early once it is this big (PROTOCOL.md 1.1). */
#define BATCH_MAX_EVENTS 256
#define BATCH_MAX_PAYLOAD (64u * 1024) /* big payloads gain nothing by waiting */

static void retry_cb(uv_timer_t *t);

/* ZMQ_FD only signals new input once ZeroMQ has seen, while receiving, that
 * there is none; a send may process the commands that announce input and so
 * consume the signal. Input must be looked for after sends, but each look
 * costs libzmq a poll(2) and a getpid(2): this says whether one is needed. */
static int sent_since_drain = 1;

int ncd_frames_next(ncd_frames *f, zmq_msg_t *out) {
  return ncc_frame_next(ncd.router, out, &f->more) ? 0 : -1;
}

int ncd_frames_drain(ncd_frames *f) { return ncc_frames_drain(ncd.router, &f->more); }

/* Receives one whole multipart message and dispatches it; the dispatcher
 * receives the frames after the envelope as it needs them. Returns how many
 * commands it held, or -1 when nothing is waiting. */
static long recv_one(void) {
  zmq_msg_t rid, env;
  zmq_msg_init(&rid);
  if (zmq_msg_recv(&rid, ncd.router, ZMQ_DONTWAIT) < 0) {
    zmq_msg_close(&rid);
    sent_since_drain = 0;
    return -1;
  }
  ncd_frames rest = {.more = zmq_msg_more(&rid)};
  int has_env = ncd_frames_next(&rest, &env) == 0;
  size_t n = ncd_commands_dispatch(zmq_msg_data(&rid), zmq_msg_size(&rid), has_env ? &env : NULL,
                                   &rest);
  ncd_frames_drain(&rest);
  zmq_msg_close(&rid);
  zmq_msg_close(&env);
  return n ? (long)n : 1;
}

static int input_pending(void) {
  int events = 0;
  size_t len = sizeof events;
  if (!sent_since_drain) return 0;
  if (zmq_getsockopt(ncd.router, ZMQ_EVENTS, &events, &len) != 0) return 0;
  if (!(events & ZMQ_POLLIN)) sent_since_drain = 0;
  return events & ZMQ_POLLIN;
}

/* ZMQ_FD is edge-triggered and any send may consume the edge, so input is
 * always drained while ZMQ_EVENTS says so, and re-checked before the loop
 * blocks (prepare). The per-turn budget keeps sockets and timers fair against
 * chatty handlers. */
static void process_input(void);

/* More input waits: the idle handle runs process_input next turn (libuv
 * refuses only a closing handle, at exit). */
static void schedule_input(void) {
  ncd_uv_check(uv_idle_start(&ncd.router_idle, (uv_idle_cb)process_input), "schedule input");
}

static void process_input(void) {
  long done = 0, n = 0;
  while (done < TURN_COMMANDS && (n = recv_one()) >= 0) done += n;
  ncd_socket_flush_acks();
  if (n >= 0 || input_pending()) schedule_input();
  else uv_idle_stop(&ncd.router_idle);
}

static void poll_cb(uv_poll_t *p, int status, int events) { process_input(); }

/* The end of a loop turn: the events collected for batching handlers leave
 * now, before the loop blocks. Sending may consume ZMQ_FD's edge, so input is
 * checked after. */
static void prepare_cb(uv_prepare_t *p) {
  ncd_router_flush_batches();
  if (input_pending()) schedule_input();
}

/* A handler's connection closed (kill -9, close without Bye, a failed
 * heartbeat): the monitor names the connection's fd, and the handler bound
 * to that fd is gone at once, idle or busy. The monitor is drained before any
 * Hello binds a handler to an fd (ncd_router_poll_monitor), so an event about
 * an earlier connection that had the same fd can never hit a newer handler:
 * libzmq queues DISCONNECTED before it closes the fd. */
void ncd_router_poll_monitor(void) {
  if (!ncd.monitor) return;
  for (;;) {
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, ncd.monitor, ZMQ_DONTWAIT) < 0) {
      zmq_msg_close(&m);
      break;
    }
    uint16_t event = 0;
    uint32_t value = 0;
    if (zmq_msg_size(&m) >= 6) {
      memcpy(&event, zmq_msg_data(&m), 2);
      memcpy(&value, (char *)zmq_msg_data(&m) + 2, 4);
    }
    int more = zmq_msg_more(&m);
    zmq_msg_close(&m);
    while (more) { /* second frame: the endpoint */
      zmq_msg_init(&m);
      if (zmq_msg_recv(&m, ncd.monitor, 0) < 0) more = 0;
      else more = zmq_msg_more(&m);
      zmq_msg_close(&m);
    }
    if (event == ZMQ_EVENT_DISCONNECTED) ncd_handler_conn_closed((int)value);
  }
}

/* libzmq queues a connection's last messages in the ROUTER before it reports
 * the close on the monitor, but the loop may see the monitor first: a Bye
 * followed at once by the close (every library's graceful exit) would be
 * taken for a crash, and the handler's servers parked for --handoff-ms. So a
 * turn of the ROUTER's input (all of it unless other handlers flood) is
 * carried out before the closes. */
static void monitor_cb(uv_poll_t *p, int status, int events) {
  process_input();
  ncd_router_poll_monitor();
  ncd_handler_reap();
}

/* --heartbeat-ms bounds how long a silent tcp link lives: a PING every half of
 * it, and the link is dead half of it after an unanswered PING. On ipc the
 * kernel tells of a dead peer at once (the monitor), and a heartbeat would
 * only drop handlers that are alive but not reading for a moment: a peer's
 * PONG waits behind the events it has not taken. Options are taken by each
 * bind, so they are set before it. */
static int set_heartbeat(const char *endpoint) {
  int tcp = strncmp(endpoint, "tcp://", 6) == 0;
  int ivl = tcp ? (int)(ncd.cfg.heartbeat_ms / 2) : 0;
  int ttl = tcp ? (int)(ncd.cfg.heartbeat_ms - ncd.cfg.heartbeat_ms / 2) : 0;
  if (zmq_setsockopt(ncd.router, ZMQ_HEARTBEAT_IVL, &ivl, sizeof ivl) != 0 ||
      zmq_setsockopt(ncd.router, ZMQ_HEARTBEAT_TIMEOUT, &ttl, sizeof ttl) != 0) {
    ncd_error("cannot set heartbeats for %s: %s", endpoint, zmq_strerror(errno));
    return -1;
  }
  return 0;
}

int ncd_router_start(void) {
  if (!(ncd.strangers = ncd_tally_new())) return -1;
  ncd.zctx = zmq_ctx_new();
  /* ZAP first: a connection that arrives before it would not be decided. */
  if (ncd_auth_start() != 0) return -1;
  ncd.router = zmq_socket(ncd.zctx, ZMQ_ROUTER);
  if (!ncd.router) {
    ncd_error("zmq_socket: %s", zmq_strerror(errno));
    return -1;
  }
  int one = 1, hwm = (int)ncd.cfg.hwm, linger = 0;
  zmq_setsockopt(ncd.router, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
  zmq_setsockopt(ncd.router, ZMQ_SNDHWM, &hwm, sizeof hwm);
  /* 1 MiB of kernel buffer towards each handler: bulk data crosses in fewer,
   * larger writes of ZeroMQ's I/O thread (bench: 323 -> 280 us of CPU per
   * 64 KiB echoed, tests/bench/RESULTS.md). */
  int sndbuf = 1 << 20;
  zmq_setsockopt(ncd.router, ZMQ_SNDBUF, &sndbuf, sizeof sndbuf);
  /* Inbound, ZeroMQ buffers up to RCVHWM whole messages per handler before it
   * stops reading that handler's connection: keep that small (each holds at
   * most --max-envelope and its payload frames). A frame over --max-frame is
   * answered EMSGSIZE (commands.c); one over twice that is not even buffered:
   * ZeroMQ drops the connection (PROTOCOL.md 10). */
  int rcvhwm = RECV_HWM;
  int64_t maxmsg = 2 * (int64_t)ncd.cfg.max_frame;
  zmq_setsockopt(ncd.router, ZMQ_RCVHWM, &rcvhwm, sizeof rcvhwm);
  zmq_setsockopt(ncd.router, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
  zmq_setsockopt(ncd.router, ZMQ_LINGER, &linger, sizeof linger);
  /* The monitor tells which connection closed (by fd); it is set up before
   * any bind so no connection escapes it. Unbounded: one small event per
   * connection, read at once. */
  char mon[64];
  int unbounded = 0;
  snprintf(mon, sizeof mon, "inproc://netcore-monitor-%p", (void *)&ncd);
  ncd.monitor = zmq_socket(ncd.zctx, ZMQ_PAIR);
  if (zmq_socket_monitor(ncd.router, mon, ZMQ_EVENT_DISCONNECTED) != 0 || !ncd.monitor ||
      zmq_setsockopt(ncd.monitor, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
      zmq_setsockopt(ncd.monitor, ZMQ_RCVHWM, &unbounded, sizeof unbounded) != 0 ||
      zmq_connect(ncd.monitor, mon) != 0) {
    ncd_error("cannot monitor the handler socket: %s", zmq_strerror(errno));
    return -1;
  }
  for (int i = 0; i < ncd.cfg.nbinds; i++) {
    if (set_heartbeat(ncd.cfg.binds[i]) != 0) return -1;
    if (ncd_auth_setup_bind(ncd.router, ncd.cfg.binds[i]) != 0) return -1;
    if (ncd_endpoint_bind(ncd.router, ncd.cfg.binds[i]) != 0) return -1;
    char last[256];
    size_t last_len = sizeof last;
    if (zmq_getsockopt(ncd.router, ZMQ_LAST_ENDPOINT, last, &last_len) != 0) last[0] = '\0';
    ncd_info("handlers connect to %s (%s)", last[0] ? last : ncd.cfg.binds[i],
             ncd_auth_describe(ncd.cfg.binds[i]));
  }

  int fd;
  size_t len = sizeof fd;
  int rc, mfd;
  size_t mlen = sizeof mfd;
  if (zmq_getsockopt(ncd.router, ZMQ_FD, &fd, &len) != 0 ||
      zmq_getsockopt(ncd.monitor, ZMQ_FD, &mfd, &mlen) != 0) {
    ncd_error("cannot get the ROUTER's descriptors: %s", zmq_strerror(errno));
    return -1;
  }
  if ((rc = ncd_uv_check(uv_poll_init(ncd.loop, &ncd.router_poll, fd), "watch the ROUTER")) ||
      (rc = ncd_uv_check(uv_poll_start(&ncd.router_poll, UV_READABLE, poll_cb),
                         "poll the ROUTER")) ||
      (rc = ncd_uv_check(uv_idle_init(ncd.loop, &ncd.router_idle), "make the ROUTER idle")) ||
      (rc = ncd_uv_check(uv_prepare_init(ncd.loop, &ncd.router_prepare),
                         "make the ROUTER flush")) ||
      (rc = ncd_uv_check(uv_prepare_start(&ncd.router_prepare, prepare_cb),
                         "start the ROUTER flush")) ||
      (rc = ncd_uv_check(uv_timer_init(ncd.loop, &ncd.retry_timer), "make the retry timer")) ||
      (rc = ncd_uv_check(uv_poll_init(ncd.loop, &ncd.monitor_poll, mfd), "watch the monitor")) ||
      (rc = ncd_uv_check(uv_poll_start(&ncd.monitor_poll, UV_READABLE, monitor_cb),
                         "poll the monitor")))
    return -1;
  return 0;
}

void ncd_router_stop(void) {
  uv_close((uv_handle_t *)&ncd.router_poll, NULL);
  uv_close((uv_handle_t *)&ncd.router_idle, NULL);
  uv_close((uv_handle_t *)&ncd.router_prepare, NULL);
  uv_close((uv_handle_t *)&ncd.retry_timer, NULL);
  uv_close((uv_handle_t *)&ncd.monitor_poll, NULL);
  zmq_socket_monitor(ncd.router, NULL, 0);
  zmq_close(ncd.monitor);
  /* Give the last events (Closed, Shutdown) a moment to leave. Handed over
   * (takeover.h): none is owed (the new netcore replays uncredited input), and
   * the new one binds the endpoints only once this returns, so every
   * handler's pause would grow by the linger. */
  int linger = ncd.handed_over ? 0 : 500;
  zmq_setsockopt(ncd.router, ZMQ_LINGER, &linger, sizeof linger);
  zmq_close(ncd.router);
  ncd_auth_stop();
  zmq_ctx_term(ncd.zctx);
  ncd_tally_drop(ncd.strangers);
}

/* Tries to hand one message (frames[0..n)) to ZeroMQ. Returns 0 when sent
 * (frames moved), EAGAIN when the pipe is full (nothing sent), or EHOSTUNREACH. */
static int try_send(ncd_handler *h, zmq_msg_t *frames, size_t n) {
  sent_since_drain = 1;
  if (zmq_send(ncd.router, h->rid, h->rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) return errno;
  /* Once the routing frame is accepted, the rest of the message is too. */
  for (size_t i = 0; i < n; i++) zmq_msg_send(&frames[i], ncd.router, i + 1 < n ? ZMQ_SNDMORE : 0);
  return 0;
}

static void enqueue(ncd_handler *h, zmq_msg_t *frames, size_t n) {
  ncd_outmsg *m = malloc(sizeof *m + n * sizeof m->frames[0]);
  if (!m) {
    /* Out of memory: the stream to this handler can no longer be exact. */
    ncd_error("out of memory queueing for handler %s; dropping it", h->name);
    for (size_t i = 0; i < n; i++) zmq_msg_close(&frames[i]);
    ncd_handler_doom(h, "out of memory");
    return;
  }
  m->next = NULL;
  m->nframes = n;
  for (size_t i = 0; i < n; i++) {
    zmq_msg_init(&m->frames[i]);
    zmq_msg_move(&m->frames[i], &frames[i]);
  }
  if (h->outq_tail) h->outq_tail->next = m;
  else h->outq_head = m;
  h->outq_tail = m;
  h->outq_len++;
  if (!h->blocked) {
    h->blocked = 1;
    ncd_debug("handler %s: pipe full, pausing its sockets", h->name);
    ncd_handler_update_reading(h);
    if (!uv_is_active((uv_handle_t *)&ncd.retry_timer))
      ncd_uv_check(uv_timer_start(&ncd.retry_timer, retry_cb, RETRY_MS, RETRY_MS),
                   "start the retry timer"); /* fails only while the loop closes */
  }
}

/* Sends a whole message to h, or queues it behind what is already queued.
 * Every frame is moved or closed. */
static void deliver(ncd_handler *h, zmq_msg_t *frames, size_t n) {
  int rc = h->outq_head ? EAGAIN : try_send(h, frames, n);
  if (rc == 0) return;
  if (rc == EAGAIN) {
    enqueue(h, frames, n);
    return;
  }
  for (size_t i = 0; i < n; i++) zmq_msg_close(&frames[i]);
  ncd_handler_doom(h, "unreachable");
}

/* Sends the events h collected this turn as one message. */
static void send_batch(ncd_handler *h) {
  zmq_msg_t *frames;
  size_t n;
  if (ncc_msgbatch_seal(&h->batch, &frames, &n) != 0) {
    ncd_error("out of memory sending to handler %s; dropping it", h->name);
    ncc_msgbatch_clear(&h->batch);
    ncd_handler_doom(h, "out of memory");
    return;
  }
  deliver(h, frames, n);
  ncc_msgbatch_clear(&h->batch);
}

/* Past its budget a handler's sockets stop reading (and its pings and errors
 * go unanswered, commands.c) until it has taken half of what it was sent;
 * ncd_handler_check_budget() ends that, or the handler after a lease. */
static void check_budget(ncd_handler *h) {
  if (h->over_budget || ncd_tally_in_flight(h->tally) <= h->budget) return;
  h->over_budget = 1;
  h->over_since = uv_now(ncd.loop);
  ncd_warn("handler %s (prefix %u): %llu bytes sent to it and not taken, over its budget of %llu; "
           "its sockets stop reading until it catches up",
           h->name, h->prefix, (unsigned long long)ncd_tally_in_flight(h->tally),
           (unsigned long long)h->budget);
  ncd_handler_update_reading(h);
}

void ncd_router_send(ncd_handler *h, const ncc_event *ev, zmq_msg_t *payload) {
  if (ncd_handler_dead(h)) {
    if (payload) zmq_msg_close(payload);
    return;
  }
  ncd_metrics_event(h, ev);
  if (h->batch_events) {
    if (ncd_wire_batch_append(&h->batch, ev) != 0 ||
        (payload && ncc_msgbatch_frame(&h->batch, payload) != 0)) {
      if (payload) zmq_msg_close(payload);
      ncd_error("out of memory batching for handler %s; dropping it", h->name);
      ncd_handler_doom(h, "out of memory");
    } else if (h->batch.count >= BATCH_MAX_EVENTS || h->batch.payload_bytes >= BATCH_MAX_PAYLOAD) {
      send_batch(h);
    }
    if (!ncd_handler_dead(h)) check_budget(h);
    return;
  }
  zmq_msg_t frames[2];
  size_t n = 1;
  if (ncd_wire_event_pack(ev, h->tally, &frames[0]) != 0) {
    if (payload) zmq_msg_close(payload);
    return;
  }
  if (payload) {
    zmq_msg_init(&frames[1]);
    zmq_msg_move(&frames[1], payload);
    zmq_msg_close(payload);
    n = 2;
  }
  deliver(h, frames, n);
  if (!ncd_handler_dead(h)) check_budget(h);
}

void ncd_router_send_rid(const void *rid, size_t rid_len, const ncc_event *ev) {
  zmq_msg_t env;
  /* Peers that never said Hello may never read either: what they are owed
   * together is bounded, past that they get nothing. */
  if (ncd_tally_in_flight(ncd.strangers) > STRANGERS_BUDGET) return;
  if (ncd_wire_event_pack(ev, ncd.strangers, &env) != 0) return;
  sent_since_drain = 1;
  if (zmq_send(ncd.router, rid, rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0)
    zmq_msg_send(&env, ncd.router, 0);
  zmq_msg_close(&env);
}

void ncd_router_flush(ncd_handler *h) {
  while (h->outq_head && !ncd_handler_dead(h)) {
    ncd_outmsg *m = h->outq_head;
    int rc = try_send(h, m->frames, m->nframes);
    if (rc == EAGAIN) break;
    if (rc != 0) {
      ncd_handler_doom(h, "unreachable");
      return;
    }
    h->outq_head = m->next;
    if (!h->outq_head) h->outq_tail = NULL;
    h->outq_len--;
    free(m);
  }
  if (!ncd_handler_dead(h) && !ncc_msgbatch_empty(&h->batch)) send_batch(h);
  if (h->blocked && !h->outq_head) {
    h->blocked = 0;
    ncd_debug("handler %s: pipe drained, reading its sockets again", h->name);
    ncd_handler_update_reading(h);
  }
}

void ncd_router_flush_batches(void) {
  ncc_list *l, *next;
  for (l = ncd.handlers.next; l != &ncd.handlers; l = next) {
    next = l->next;
    ncd_handler *h = ncc_container_of(l, ncd_handler, link);
    if (!ncd_handler_dead(h) && !ncc_msgbatch_empty(&h->batch)) send_batch(h);
  }
}

static void retry_cb(uv_timer_t *t) {
  int still_blocked = 0;
  ncc_list *l, *next;
  for (l = ncd.handlers.next; l != &ncd.handlers; l = next) {
    next = l->next;
    ncd_handler *h = ncc_container_of(l, ncd_handler, link);
    if (h->blocked) {
      ncd_router_flush(h);
      still_blocked |= h->blocked;
    }
  }
  if (!still_blocked) uv_timer_stop(t);
}
