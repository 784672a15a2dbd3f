/* loop.c: the loop. It owns the ZeroMQ DEALER connected to netcore (and a
 * monitor on it that reports a lost connection), says Hello, waits on one
 * epoll fd (the DEALER's ZMQ_FD, the monitor's, and a self-pipe for signals
 * and nc_loop_stop) and dispatches every event to its server or socket.
 *
 * ZMQ_FD is edge-triggered in disguise: it only says "look at ZMQ_EVENTS",
 * and a send may consume the notification of a message that has already
 * arrived. So the loop drains while ZMQ_EVENTS has POLLIN and re-checks
 * ZMQ_EVENTS right before it sleeps (nc_loop_timeout).
 *
 * Callbacks never run inside a user's call: work found there (a write after
 * end, a close of a never-connected socket, a failed send) is queued on
 * loop->pending and done at the next turn, which makes closing from any
 * callback safe. Called only from the loop's thread, except nc_loop_stop. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pipe2 */
#endif
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "default_endpoint.h"
#include "keyfile.h"
#include "nc_int.h"

struct nc__stats_req;
static struct nc__stats_req *stats_pop(nc_loop_t *loop);
static int open_dealer(nc_loop_t *loop);
static void close_dealer(nc_loop_t *loop);

#define DEFAULT_HELLO_TIMEOUT_MS 2000
#define RECV_BUDGET 4096 /* events per turn, so timers and signals get a turn */

uint64_t nc__clock_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int zsock_fd(void *sock) {
  int fd = -1;
  size_t sz = sizeof(fd);
  zmq_getsockopt(sock, ZMQ_FD, &fd, &sz);
  return fd;
}

static int zsock_readable(void *sock) {
  int events = 0;
  size_t sz = sizeof(events);
  if (sock == NULL || zmq_getsockopt(sock, ZMQ_EVENTS, &events, &sz) != 0) return 0;
  return (events & ZMQ_POLLIN) != 0;
}

/* Whether the dealer may hold input that ZMQ_FD will not announce: ZeroMQ
 * signals new input only once a receive found none, and a send may consume
 * that signal. Looking costs libzmq a poll(2) and a getpid(2), so libnc looks
 * only after sends. */
static int dealer_unsure(nc_loop_t *loop) {
  if (!loop->sent_since_drain) return 0;
  int readable = zsock_readable(loop->dealer);
  if (!readable) loop->sent_since_drain = 0;
  return readable;
}

/* ------------------------------------------------------------- sending */

/* A batch of commands leaves early once it is this big. */
#define BATCH_MAX_COMMANDS 256
#define BATCH_MAX_PAYLOAD (64u * 1024) /* big payloads gain nothing by waiting */

static void link_failed(nc_loop_t *loop) {
  /* With an unlimited send queue this only happens when the link is dead;
   * the loss is reported at the next turn, not inside the user's call. */
  snprintf(loop->errmsg, sizeof(loop->errmsg), "sending to netcore at %s failed: %s",
           loop->endpoint, zmq_strerror(errno));
  loop->gone_pending = NC_ERR_NETCORE_GONE;
}

/* Sends the commands collected this turn as one message. */
static void flush_batch(nc_loop_t *loop) {
  zmq_msg_t *frames;
  size_t n;
  if (ncc_msgbatch_empty(&loop->out_batch)) return;
  if (loop->gone || loop->gone_pending || loop->dealer == NULL) {
    ncc_msgbatch_clear(&loop->out_batch);
    return;
  }
  if (ncc_msgbatch_seal(&loop->out_batch, &frames, &n) != 0) {
    errno = ENOMEM;
    link_failed(loop);
  } else {
    loop->sent_since_drain = 1;
    for (size_t i = 0; i < n; i++) {
      if (zmq_msg_send(&frames[i], loop->dealer, (i + 1 < n ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT) < 0) {
        link_failed(loop);
        break;
      }
    }
  }
  ncc_msgbatch_clear(&loop->out_batch);
}

/* nc__send inside a turn of the loop: cmd joins the batch. Only Write carries
 * a payload frame in a batch (nc_socket_end sends its data as a Write). */
static int send_batched(nc_loop_t *loop, const ncc_cmd *cmd, const void *payload, size_t len,
                        zmq_msg_t *payload_msg) {
  ncc_msgbatch_t *b = &loop->out_batch;
  /* A full batch leaves before a Write, never after it: the Credit for the
   * data that Write answers comes next and must share its message
   * (PROTOCOL.md 13), so a Write needs room for two. BATCH_MAX_COMMANDS is
   * netcore's lowest --max-batch: no netcore refuses a batch of libnc's. */
  if (cmd->kind == NCC_CMD_WRITE ? b->count >= BATCH_MAX_COMMANDS - 1 || b->payload_bytes >= BATCH_MAX_PAYLOAD
                                 : b->count >= BATCH_MAX_COMMANDS)
    flush_batch(loop);
  int rv = ncc_cmd_pack(cmd, ncc_place_in_batch, b);
  if (rv == 0 && cmd->kind == NCC_CMD_WRITE) {
    zmq_msg_t m;
    if (payload_msg != NULL) {
      zmq_msg_init(&m);
      zmq_msg_move(&m, payload_msg);
      payload_msg = NULL;
    } else if (zmq_msg_init_size(&m, len) == 0) {
      if (len > 0) memcpy(zmq_msg_data(&m), payload, len); /* the one copy of the data */
    } else {
      rv = NC_ENOMEM;
    }
    if (rv == 0 && ncc_msgbatch_frame(b, &m) != 0) rv = NC_ENOMEM;
  }
  if (payload_msg != NULL) zmq_msg_close(payload_msg);
  if (rv != 0) {
    /* The batch may now hold a Write without its frame: it cannot go. */
    errno = ENOMEM;
    link_failed(loop);
    ncc_msgbatch_clear(b);
    return NC_ERR_NETCORE_GONE;
  }
  loop->last_send = loop->now;
  return 0;
}

/* Why nothing may be sent now (0: it may): netcore gone or being replaced,
 * no dealer, or nc_loop_leave(). */
static int send_refused(const nc_loop_t *loop) {
  if (loop->relinking && !loop->gone) return NC_ERR_NETCORE_UNAVAILABLE; /* no ids before the new Welcome */
  if (loop->gone || loop->gone_pending || loop->dealer == NULL || loop->left)
    return NC_ERR_NETCORE_GONE;
  return 0;
}

/* Where a command packed alone goes: the caller's stack buffer when it fits,
 * else the heap (heap is then set, for the caller to free). */
typedef struct envelope_buf {
  uint8_t *stack;
  size_t cap, len;
  uint8_t *heap;
} envelope_buf;

static void *in_envelope(void *arg, size_t len) {
  envelope_buf *e = arg;
  e->len = len;
  if (len <= e->cap) return e->stack;
  return e->heap = malloc(len);
}

/* Sends the envelope and the payload frame, if any (payload_msg is moved).
 * 0, or -1 when the dealer refused (the link is then failed by the caller). */
static int send_frames(nc_loop_t *loop, const void *env, size_t env_len, const void *payload,
                       size_t len, zmq_msg_t *payload_msg) {
  int more = (payload != NULL || payload_msg != NULL) ? ZMQ_SNDMORE : 0;
  loop->sent_since_drain = 1;
  if (zmq_send(loop->dealer, env, env_len, more | ZMQ_DONTWAIT) < 0) return -1;
  if (payload_msg != NULL) return zmq_msg_send(payload_msg, loop->dealer, ZMQ_DONTWAIT) < 0 ? -1 : 0;
  if (payload == NULL) return 0;
  /* The one copy of the data: into the frame ZeroMQ will send. */
  zmq_msg_t m;
  if (zmq_msg_init_size(&m, len) != 0) return -1;
  if (len > 0) memcpy(zmq_msg_data(&m), payload, len);
  if (zmq_msg_send(&m, loop->dealer, ZMQ_DONTWAIT) < 0) {
    zmq_msg_close(&m);
    return -1;
  }
  return 0;
}

int nc__send(nc_loop_t *loop, const ncc_cmd *cmd, const void *payload, size_t len,
             zmq_msg_t *payload_msg) {
  int rv = send_refused(loop);
  if (rv == 0 && loop->batching &&
      (cmd->kind == NCC_CMD_WRITE || (payload == NULL && payload_msg == NULL)))
    return send_batched(loop, cmd, payload, len, payload_msg);
  uint8_t stackbuf[512];
  envelope_buf env = {stackbuf, sizeof(stackbuf), 0, NULL};
  if (rv == 0) {
    flush_batch(loop); /* keep the order */
    rv = ncc_cmd_pack(cmd, in_envelope, &env);
  }
  if (rv == 0 && send_frames(loop, env.heap ? env.heap : stackbuf, env.len, payload, len,
                             payload_msg) != 0) {
    link_failed(loop);
    rv = NC_ERR_NETCORE_GONE;
  } else if (rv == 0) {
    loop->last_send = loop->now;
    payload_msg = NULL; /* sent */
  }
  free(env.heap);
  if (rv != 0 && payload_msg != NULL) zmq_msg_close(payload_msg);
  return rv;
}

uint64_t nc__next_id(nc_loop_t *loop) {
  return (uint64_t)loop->id_prefix << 32 | ++loop->next_id;
}

void nc__ref(nc__handle_t *h) {
  if (!h->refd) {
    h->refd = 1;
    h->loop->refs++;
  }
}

void nc__unref(nc__handle_t *h) {
  if (h->refd) {
    h->refd = 0;
    h->loop->refs--;
  }
}

void nc__pend(nc__handle_t *h, unsigned flags) {
  if (h->pending_flags == 0) ncc_list_push(&h->loop->pending, &h->pend);
  h->pending_flags |= flags;
}

char *nc__scratch(nc_loop_t *loop, size_t n) {
  if (n > loop->scratch_cap) {
    size_t cap = loop->scratch_cap ? loop->scratch_cap : 4096;
    while (cap < n) cap *= 2;
    char *p = realloc(loop->scratch, cap);
    if (p == NULL) return NULL;
    loop->scratch = p;
    loop->scratch_cap = cap;
  }
  return loop->scratch;
}

/* ------------------------------------------------------------ creation */

static int set_int(void *sock, int opt, int value) {
  return zmq_setsockopt(sock, opt, &value, sizeof(value));
}

/* The next monitor event (0 if none could be read) and its value. */
static int monitor_next(nc_loop_t *loop, uint16_t *event, uint32_t *value) {
  zmq_msg_t m;
  *event = 0;
  *value = 0;
  zmq_msg_init(&m);
  if (zmq_msg_recv(&m, loop->monitor, ZMQ_DONTWAIT) < 0) {
    zmq_msg_close(&m);
    return 0;
  }
  if (zmq_msg_size(&m) >= 6) {
    memcpy(event, zmq_msg_data(&m), sizeof(*event));
    memcpy(value, (char *)zmq_msg_data(&m) + 2, sizeof(*value));
  }
  int more = zmq_msg_more(&m);
  zmq_msg_close(&m);
  ncc_frames_drain(loop->monitor, &more);
  return 1;
}

/* NC_EACCES (netcore's ZAP said no) or NC_EPROTO for a failed handshake,
 * with loop->errmsg set; 0 for any other event. */
static int handshake_error(nc_loop_t *loop, uint16_t event, uint32_t value) {
  if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
    snprintf(loop->errmsg, sizeof(loop->errmsg),
             "netcore at %s refused this handler (ZAP status %u): %s", loop->endpoint,
             (unsigned)value,
             loop->curve ? "its public key is not in netcore's --curve-allow file"
                         : "its uid may not connect (netcore's own uid or gid, or --allow-uid)");
    return NC_EACCES;
  }
  if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) {
    snprintf(loop->errmsg, sizeof(loop->errmsg),
             "the handshake with netcore at %s failed (ZMTP error 0x%x): %s", loop->endpoint,
             (unsigned)value,
             loop->curve ? "does netcore use CURVE (--curve-secret-file) on this endpoint?"
                         : "netcore uses CURVE here: set NETCORE_SERVER_KEY and NETCORE_SECRET_FILE");
    return NC_EPROTO;
  }
  return 0;
}

/* A handshake failure the monitor reported while waiting for Welcome: NC_EACCES
 * (netcore's ZAP said no), NC_EPROTO, or 0 for none. *dropped is set when a
 * connection of the dealer closed. */
static int handshake_failure(nc_loop_t *loop, int *dropped) {
  int rv = 0;
  uint16_t event;
  uint32_t value;
  while (rv == 0 && zsock_readable(loop->monitor) && monitor_next(loop, &event, &value)) {
    rv = handshake_error(loop, event, value);
    if (event == ZMQ_EVENT_DISCONNECTED) *dropped = 1;
  }
  return rv;
}

/* Sends Hello on the current dealer (the first, or one made to reconnect). */
static int send_hello(nc_loop_t *loop) {
  ncc_cmd cmd = {.kind = NCC_CMD_HELLO,
                 .version = NCC_PROTOCOL_VERSION,
                 .hello_name = loop->hello_name,
                 .credit_window = loop->hello_credit,
                 .lease_ms = loop->hello_lease,
                 .lazy_acks = 1,   /* see write_common() */
                 .batch_events = 1 /* see read_events() */,
                 .service = loop->hello_service[0] ? loop->hello_service : NULL,
                 .resumable = loop->resumable};
  ncc_resume_socket *list = NULL;
  uint64_t *servers = NULL;
  if (loop->resuming) {
    /* The session of the netcore that was taken over (PROTOCOL.md 16.1):
     * its token, and what this side has seen of each socket. */
    size_t n = 0;
    for (ncc_list *l = loop->sockets.next; l != &loop->sockets; l = l->next) n++;
    if (n && (list = malloc(n * sizeof(*list))) == NULL) return NC_ENOMEM;
    cmd.resume_token = loop->session_token;
    cmd.resume_token_len = loop->session_token_len;
    cmd.resume = list;
    for (ncc_list *l = loop->sockets.next; l != &loop->sockets; l = l->next)
      cmd.nresume += nc__socket_resume_entry(ncc_container_of(l, nc_socket_t, h.all), &list[cmd.nresume]);
    /* The servers whose Listen is unanswered (protocol 1.4). */
    n = 0;
    for (ncc_list *l = loop->servers.next; l != &loop->servers; l = l->next) n++;
    if (n && (servers = malloc(n * sizeof(*servers))) == NULL) {
      free(list);
      return NC_ENOMEM;
    }
    for (ncc_list *l = loop->servers.next; l != &loop->servers; l = l->next) {
      nc_server_t *sv = ncc_container_of(l, nc_server_t, h.all);
      if (sv->state == NC__SV_LISTENING_PENDING && sv->id != 0) servers[cmd.nresume_servers++] = sv->id;
    }
    cmd.resume_servers = servers;
  }
  /* Hello goes alone, first, and past nc__send's hold on a relinking loop. */
  int relinking = loop->relinking, batching = loop->batching;
  loop->relinking = loop->batching = 0;
  int rv = nc__send(loop, &cmd, NULL, 0, NULL);
  loop->relinking = relinking;
  loop->batching = batching;
  free(list);
  free(servers);
  return rv;
}

/* What a Welcome says, kept for the loop (the first one and every new one). */
static void take_welcome(nc_loop_t *loop, const ncc_welcome *w) {
  loop->welcomed = 1;
  loop->id_prefix = w->id_prefix;
  loop->next_id = 0;
  loop->credit_window = w->credit_window;
  loop->lease_ms = w->lease_ms;
  loop->max_frame = w->max_frame;
  loop->max_write_queue = w->max_write_queue;
  loop->minor_version = w->minor_version;
  snprintf(loop->instance_id, sizeof(loop->instance_id), "%s", w->instance_id);
  snprintf(loop->server_version, sizeof(loop->server_version), "%s", w->server_version);
  loop->session_token_len = w->session_token_len <= sizeof(loop->session_token) ? w->session_token_len : 0;
  if (loop->session_token_len) memcpy(loop->session_token, w->session_token, loop->session_token_len);
}

/* Waits for Welcome; returns 0, or an error with loop->errmsg set. */
static int hello(nc_loop_t *loop) {
  int rv = send_hello(loop);
  if (rv != 0) return NC_ERR_NETCORE_UNAVAILABLE;
  uint32_t wait_ms = loop->hello_timeout;
  uint64_t deadline = nc__clock_ms() + wait_ms;
  for (;;) {
    uint64_t now = nc__clock_ms();
    if (now >= deadline) break;
    zmq_pollitem_t items[2] = {{loop->dealer, 0, ZMQ_POLLIN, 0},
                               {loop->monitor, 0, ZMQ_POLLIN, 0}};
    int n = zmq_poll(items, 2, (long)(deadline - now));
    if (n < 0 && errno != EINTR) break;
    if (n <= 0) continue;
    int dropped = 0;
    if ((items[1].revents & ZMQ_POLLIN) && (rv = handshake_failure(loop, &dropped)) != 0)
      return rv;
    if (dropped) {
      /* The connection closed before Welcome: it may have reached a netcore
       * being taken over, which took our Hello with it (ZeroMQ reconnects
       * the dealer to the new one, without the Hello). A fresh dealer says
       * it again. */
      close_dealer(loop);
      if (open_dealer(loop) != 0 || send_hello(loop) != 0) return NC_ERR_NETCORE_UNAVAILABLE;
      continue;
    }
    if (!(items[0].revents & ZMQ_POLLIN)) continue;
    zmq_msg_t env;
    zmq_msg_init(&env);
    if (zmq_msg_recv(&env, loop->dealer, ZMQ_DONTWAIT) < 0) {
      zmq_msg_close(&env);
      continue;
    }
    int more = zmq_msg_more(&env);
    ncc_frames_drain(loop->dealer, &more); /* a payload frame here would be a protocol error */
    ncc_event ev;
    rv = ncc_event_unpack(&loop->arena, zmq_msg_data(&env), zmq_msg_size(&env), &ev);
    zmq_msg_close(&env);
    if (rv != 0) continue;
    if (ev.kind == NCC_EV_WELCOME) {
      take_welcome(loop, ev.welcome);
      return 0;
    }
    if (ev.kind == NCC_EV_ERROR) {
      snprintf(loop->errmsg, sizeof(loop->errmsg), "netcore at %s refused Hello: %s: %s",
               loop->endpoint, ev.code, ev.message);
      int err = nc__err_code(ev.code);
      return err == NC_EIO ? NC_EPROTO : err;
    }
  }
  snprintf(loop->errmsg, sizeof(loop->errmsg),
           "netcore is not reachable at %s: no answer to Hello within %u ms "
           "(is netcore running there?)",
           loop->endpoint, (unsigned)wait_ms);
  return NC_ERR_NETCORE_UNAVAILABLE;
}

/* CURVE for a tcp:// endpoint, from the options or NETCORE_SERVER_KEY and
 * NETCORE_SECRET_FILE (see nc.h). Keys are checked for every endpoint and
 * kept for tcp only (every dealer of the loop uses them): netcore
 * authenticates ipc peers by uid. Returns 0 or NC_EINVAL with loop->errmsg
 * set. */
static int setup_curve(nc_loop_t *loop, const nc_loop_options_t *o) {
  const char *server_key = o->server_key ? o->server_key : getenv("NETCORE_SERVER_KEY");
  const char *secret_file = o->secret_file ? o->secret_file : getenv("NETCORE_SECRET_FILE");
  char pub[NCC_Z85_KEY_LEN + 1], sec[NCC_Z85_KEY_LEN + 1], err[400];
  if (server_key != NULL && *server_key == '\0') server_key = NULL;
  if (secret_file != NULL && *secret_file == '\0') secret_file = NULL;
  if (server_key == NULL && secret_file == NULL) return 0;
  if (server_key == NULL || secret_file == NULL) {
    snprintf(loop->errmsg, sizeof(loop->errmsg),
             "CURVE needs both netcore's public key (server_key or NETCORE_SERVER_KEY) and this "
             "handler's key pair file (secret_file or NETCORE_SECRET_FILE); only the %s is set",
             server_key ? "public key" : "key pair file");
    return NC_EINVAL;
  }
  if (!ncc_z85_key_valid(server_key, NULL)) {
    snprintf(loop->errmsg, sizeof(loop->errmsg),
             "netcore's public key (server_key or NETCORE_SERVER_KEY) is not a CURVE key: it "
             "must be the 40 Z85 characters `netcore keygen` prints");
    return NC_EINVAL;
  }
  if (ncc_keyfile_read(secret_file, pub, sec, err, sizeof(err)) != 0) {
    snprintf(loop->errmsg, sizeof(loop->errmsg), "this handler's key pair: %s", err);
    return NC_EINVAL;
  }
  if (strncmp(loop->endpoint, "tcp://", 6) == 0) {
    memcpy(loop->curve_server, server_key, NCC_Z85_KEY_LEN + 1);
    memcpy(loop->curve_public, pub, sizeof(pub));
    memcpy(loop->curve_secret, sec, sizeof(sec));
    loop->curve = 1;
  }
  memset(sec, 0, sizeof(sec));
  return 0;
}

/* A new DEALER (and its monitor) connected to netcore: the first one, and one
 * per reconnection attempt, so nothing queued for a lost netcore reaches the
 * next. libzmq retries the connection itself, 50 ms doubling to 500 ms. */
static int open_dealer(nc_loop_t *loop) {
  char mon[96];
  if ((loop->dealer = zmq_socket(loop->zctx, ZMQ_DEALER)) == NULL) return NC_ENOMEM;
  /* Unlimited send queue: memory is bounded by write()'s high-water mark
   * and by read credits, not by dropping or blocking here. */
  set_int(loop->dealer, ZMQ_SNDHWM, 0);
  set_int(loop->dealer, ZMQ_SNDBUF, 1 << 20); /* as netcore's: fewer, larger bulk writes */
  set_int(loop->dealer, ZMQ_LINGER, 0);
  set_int(loop->dealer, ZMQ_RECONNECT_IVL, 50);
  set_int(loop->dealer, ZMQ_RECONNECT_IVL_MAX, 500);
  /* ZMTP heartbeats find a dead TCP link; for ipc the kernel tells at once. */
  set_int(loop->dealer, ZMQ_HEARTBEAT_IVL, 1000);
  set_int(loop->dealer, ZMQ_HEARTBEAT_TIMEOUT, 3000);
  snprintf(mon, sizeof(mon), "inproc://nc-monitor-%p-%u", (void *)loop, ++loop->link_gen);
  if (zmq_socket_monitor(loop->dealer, mon,
                         ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                             ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) != 0)
    return NC_ENOMEM;
  if ((loop->monitor = zmq_socket(loop->zctx, ZMQ_PAIR)) == NULL) return NC_ENOMEM;
  set_int(loop->monitor, ZMQ_LINGER, 0);
  if (zmq_connect(loop->monitor, mon) != 0) return NC_ENOMEM;
  if (loop->curve &&
      (zmq_setsockopt(loop->dealer, ZMQ_CURVE_SERVERKEY, loop->curve_server, NCC_Z85_KEY_LEN + 1) ||
       zmq_setsockopt(loop->dealer, ZMQ_CURVE_PUBLICKEY, loop->curve_public, NCC_Z85_KEY_LEN + 1) ||
       zmq_setsockopt(loop->dealer, ZMQ_CURVE_SECRETKEY, loop->curve_secret, NCC_Z85_KEY_LEN + 1))) {
    snprintf(loop->errmsg, sizeof(loop->errmsg), "CURVE: %s", zmq_strerror(errno));
    return NC_EINVAL;
  }
  if (zmq_connect(loop->dealer, loop->endpoint) != 0) {
    snprintf(loop->errmsg, sizeof(loop->errmsg), "bad netcore endpoint '%s': %s",
             loop->endpoint, zmq_strerror(errno));
    return NC_EINVAL;
  }
  loop->sent_since_drain = 0;
  return 0;
}

/* Closes the dealer and its monitor (and takes their fds out of epoll). */
static void close_dealer(nc_loop_t *loop) {
  if (loop->epfd >= 0 && loop->dealer_fd >= 0) {
    epoll_ctl(loop->epfd, EPOLL_CTL_DEL, loop->dealer_fd, NULL);
    epoll_ctl(loop->epfd, EPOLL_CTL_DEL, loop->monitor_fd, NULL);
  }
  loop->dealer_fd = loop->monitor_fd = -1;
  ncc_msgbatch_clear(&loop->out_batch);
  /* The monitor stops before its reader closes: libzmq's I/O thread reports
   * events with a blocking send, which a closed reader would leave blocked for
   * good (holding the lock zmq_socket_monitor takes). */
  if (loop->dealer != NULL) zmq_socket_monitor(loop->dealer, NULL, 0);
  if (loop->monitor != NULL) zmq_close(loop->monitor);
  if (loop->dealer != NULL) zmq_close(loop->dealer);
  loop->monitor = loop->dealer = NULL;
}

int nc_default_endpoint(char *buf, size_t size) {
  if (buf == NULL) return NC_EINVAL;
  return ncc_default_endpoint(getenv("XDG_RUNTIME_DIR"), (unsigned long)geteuid(), buf, size) == 0
             ? 0
             : NC_ENAMETOOLONG;
}

static int add_fd(nc_loop_t *loop, int fd) {
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
  return epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : -errno;
}

/* The dealer's and the monitor's fds into the loop's epoll set. */
static int watch_dealer(nc_loop_t *loop) {
  int rv;
  loop->dealer_fd = zsock_fd(loop->dealer);
  loop->monitor_fd = zsock_fd(loop->monitor);
  if ((rv = add_fd(loop, loop->dealer_fd)) != 0 || (rv = add_fd(loop, loop->monitor_fd)) != 0)
    return rv;
  /* ZMQ_FD signals a message only to a reader that found its pipe empty: look
   * once now, or the first event (a DISCONNECTED from a netcore taken over)
   * wakes nobody and the link sits on a dead connection until hello_timeout
   * (two takeovers in a row took 1.9 s to rejoin). */
  (void)zsock_readable(loop->monitor);
  loop->monitor_ready = 1;
  return 0;
}

void nc_loop_leave(nc_loop_t *loop, int handoff) {
  if (loop == NULL || loop->left) return;
  flush_batch(loop); /* the writes and credits of this turn go first */
  if (loop->dealer != NULL && loop->welcomed && !loop->gone && !loop->gone_pending) {
    ncc_cmd bye = {.kind = NCC_CMD_BYE, .handoff = handoff};
    int batching = loop->batching;
    loop->batching = 0;
    set_int(loop->dealer, ZMQ_LINGER, 2000); /* let it leave before the process does */
    nc__send(loop, &bye, NULL, 0, NULL);
    loop->batching = batching;
  }
  loop->left = 1;
  loop->stop = 1;
}

static void handoff_signal(nc_loop_t *loop, int signum, void *arg) {
  (void)signum;
  (void)arg;
  nc_loop_leave(loop, 1);
}

int nc_loop_new(nc_loop_t **out, const nc_loop_options_t *opts, char *errmsg,
                size_t errmsg_size) {
  nc_loop_options_t o = {0};
  int rv;
  if (out == NULL) return NC_EINVAL;
  *out = NULL;
  if (opts != NULL) o = *opts;
  const char *ep = o.endpoint;
  if (ep == NULL || *ep == '\0') ep = getenv("NETCORE_ENDPOINT");
  char defep[256];
  if (ep == NULL || *ep == '\0') {
    if ((rv = nc_default_endpoint(defep, sizeof(defep))) != 0) {
      if (errmsg != NULL && errmsg_size > 0)
        snprintf(errmsg, errmsg_size, "XDG_RUNTIME_DIR is too long for netcore's endpoint");
      return rv;
    }
    ep = defep;
  }

  nc_loop_t *loop = calloc(1, sizeof(*loop));
  if (loop == NULL) return NC_ENOMEM;
  loop->wake[0] = loop->wake[1] = loop->epfd = loop->dealer_fd = loop->monitor_fd = -1;
  ncc_list_init(&loop->servers);
  ncc_list_init(&loop->sockets);
  ncc_list_init(&loop->timers);
  ncc_list_init(&loop->all_timers);
  ncc_list_init(&loop->pending);
  ncc_arena_init(&loop->arena, loop->arena_block, sizeof(loop->arena_block));
  ncc_idmap_init(&loop->socket_ids);
  ncc_idmap_init(&loop->server_ids);
  loop->now = loop->last_send = loop->last_recv = nc__clock_ms();
  snprintf(loop->errmsg, sizeof(loop->errmsg), "no error");
  if (strlen(ep) >= sizeof(loop->endpoint)) {
    snprintf(loop->errmsg, sizeof(loop->errmsg), "netcore endpoint too long");
    rv = NC_EINVAL;
    goto fail;
  }
  strcpy(loop->endpoint, ep);
  if (pipe2(loop->wake, O_NONBLOCK | O_CLOEXEC) != 0 ||
      (loop->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) {
    snprintf(loop->errmsg, sizeof(loop->errmsg), "cannot create the loop: %s",
             strerror(errno));
    rv = errno == EMFILE ? NC_EMFILE : NC_ENOMEM;
    goto fail;
  }
  snprintf(loop->hello_name, sizeof(loop->hello_name), "%s", o.name ? o.name : "libnc");
  snprintf(loop->hello_service, sizeof(loop->hello_service), "%s", o.service ? o.service : "");
  loop->hello_credit = o.credit_window;
  loop->hello_lease = o.lease_ms;
  loop->hello_timeout = o.hello_timeout_ms ? o.hello_timeout_ms : DEFAULT_HELLO_TIMEOUT_MS;
  const char *env_reconnect = getenv("NETCORE_RECONNECT");
  loop->reconnect = !o.no_reconnect && !(env_reconnect != NULL && strcmp(env_reconnect, "0") == 0);
  /* Sessions resume after a netcore takeover (PROTOCOL.md 16.1) unless
   * NETCORE_RESUME=0 (netcore then keeps less input per socket). */
  const char *env_resume = getenv("NETCORE_RESUME");
  loop->resumable = loop->reconnect && !(env_resume != NULL && strcmp(env_resume, "0") == 0);
  const char *env_offload = getenv("NETCORE_PIPE_OFFLOAD");
  loop->pipe_offload = !(env_offload != NULL && strcmp(env_offload, "0") == 0);
  if ((loop->zctx = zmq_ctx_new()) == NULL) {
    rv = NC_ENOMEM;
    goto fail;
  }
  if ((rv = setup_curve(loop, &o)) != 0 || (rv = open_dealer(loop)) != 0) goto fail;
  if ((rv = hello(loop)) != 0) goto fail;
  if ((rv = add_fd(loop, loop->wake[0])) != 0 || (rv = watch_dealer(loop)) != 0) {
    snprintf(loop->errmsg, sizeof(loop->errmsg), "epoll: %s", strerror(-rv));
    rv = NC_ENOMEM;
    goto fail;
  }
  if (o.handoff_on_signal && ((rv = nc_loop_signal(loop, SIGTERM, handoff_signal, NULL)) != 0 ||
                              (rv = nc_loop_signal(loop, SIGINT, handoff_signal, NULL)) != 0))
    goto fail;
  loop->now = loop->last_recv = nc__clock_ms();
  *out = loop;
  return 0;
fail:
  if (errmsg != NULL && errmsg_size > 0) snprintf(errmsg, errmsg_size, "%s", loop->errmsg);
  nc_loop_free(loop);
  return rv;
}

void nc_loop_free(nc_loop_t *loop) {
  if (loop == NULL) return;
  nc__signals_reset(loop);
  flush_batch(loop);
  loop->batching = 0;
  if (loop->dealer != NULL && loop->welcomed && !loop->gone && !loop->gone_pending &&
      !loop->relinking && !loop->left) {
    ncc_cmd bye = {.kind = NCC_CMD_BYE};
    /* Give the Bye a moment to leave; netcore would find us gone anyway. */
    set_int(loop->dealer, ZMQ_LINGER, 200);
    nc__send(loop, &bye, NULL, 0, NULL);
  }
  while (!ncc_list_empty(&loop->sockets))
    nc__socket_free(ncc_container_of(loop->sockets.next, nc_socket_t, h.all));
  while (!ncc_list_empty(&loop->servers))
    nc__server_free(ncc_container_of(loop->servers.next, nc_server_t, h.all));
  nc__timers_free(loop);
  for (struct nc__stats_req *r; (r = stats_pop(loop)) != NULL;) free(r);
  close_dealer(loop);
  memset(loop->curve_secret, 0, sizeof(loop->curve_secret));
  if (loop->zctx != NULL) zmq_ctx_term(loop->zctx);
  if (loop->epfd >= 0) close(loop->epfd);
  if (loop->wake[0] >= 0) close(loop->wake[0]);
  if (loop->wake[1] >= 0) close(loop->wake[1]);
  ncc_idmap_free(&loop->socket_ids);
  ncc_idmap_free(&loop->server_ids);
  ncc_arena_reset(&loop->arena);
  ncc_msgbatch_free(&loop->out_batch);
  free(loop->scratch);
  free(loop);
}

/* ------------------------------------------------------------ dispatch */

/* netcore is gone: every live socket gets 'error' then 'close'(1), every
 * server that listens or closes gets 'error' (unless closing) then 'close'.
 * Handles are looked up afresh after every callback, since callbacks may
 * create or destroy handles. */
/* A Stats request waiting for its answer (answers come in order). */
struct nc__stats_req {
  nc_stats_cb cb;
  void *arg;
  struct nc__stats_req *next;
};

static struct nc__stats_req *stats_pop(nc_loop_t *loop) {
  struct nc__stats_req *r = loop->stats_head;
  if (r == NULL) return NULL;
  loop->stats_head = r->next;
  if (loop->stats_head == NULL) loop->stats_tail = NULL;
  loop->refs--;
  return r;
}

int nc_loop_stats(nc_loop_t *loop, nc_stats_cb cb, void *arg) {
  if (loop->gone || loop->gone_pending) return NC_ERR_NETCORE_GONE;
  struct nc__stats_req *r = calloc(1, sizeof(*r));
  if (r == NULL) return NC_ENOMEM;
  ncc_cmd cmd = {.kind = NCC_CMD_STATS};
  int rv = nc__send(loop, &cmd, NULL, 0, NULL);
  if (rv != 0) {
    free(r);
    return rv;
  }
  r->cb = cb;
  r->arg = arg;
  if (loop->stats_tail) loop->stats_tail->next = r;
  else loop->stats_head = r;
  loop->stats_tail = r;
  loop->refs++;
  return 0;
}

/* The public nc_stats_t of what the protocol module unpacked: arrays in one
 * malloc'ed block (*mem, the caller frees it), strings in the arena. Returns
 * 0 or NC_ENOMEM. */
static int public_stats(const ncc_stats *in, nc_stats_t *out, void **mem) {
  size_t nsmp = 0, nlab = 0;
  for (size_t f = 0; f < in->nfamilies; f++) {
    nsmp += in->families[f].nsamples;
    for (size_t i = 0; i < in->families[f].nsamples; i++) nlab += in->families[f].samples[i].nlabels;
  }
  size_t size = in->nfamilies * sizeof(nc_stats_family_t) + nsmp * sizeof(nc_stats_sample_t) +
                nlab * sizeof(nc_stats_label_t);
  char *block = malloc(size ? size : 1);
  if (block == NULL) return NC_ENOMEM;
  nc_stats_family_t *fams = (nc_stats_family_t *)(void *)block;
  nc_stats_sample_t *smps = (nc_stats_sample_t *)(fams + in->nfamilies);
  nc_stats_label_t *labs = (nc_stats_label_t *)(smps + nsmp);
  for (size_t f = 0; f < in->nfamilies; f++) {
    const ncc_stats_family *mf = &in->families[f];
    fams[f] = (nc_stats_family_t){mf->name, mf->help, mf->type, smps, mf->nsamples};
    for (size_t i = 0; i < mf->nsamples; i++, smps++) {
      const ncc_stats_sample *ms = &mf->samples[i];
      *smps = (nc_stats_sample_t){ms->name, labs, ms->nlabels, ms->value};
      for (size_t k = 0; k < ms->nlabels; k++, labs++)
        *labs = (nc_stats_label_t){ms->labels[k].name, ms->labels[k].value};
    }
  }
  *out = (nc_stats_t){in->instance_id, in->uptime_ms, fams, in->nfamilies};
  *mem = block;
  return 0;
}

static void on_stats_event(nc_loop_t *loop, const ncc_event *ev) {
  struct nc__stats_req *r = stats_pop(loop);
  if (r == NULL) return; /* nobody asked (another library on this link?) */
  nc_stats_t st;
  void *mem = NULL;
  int rv = public_stats(ev->stats, &st, &mem);
  r->cb(loop, rv, rv == 0 ? &st : NULL, r->arg);
  free(mem);
  free(r);
}

const nc_stats_family_t *nc_stats_family(const nc_stats_t *stats, const char *name) {
  for (size_t f = 0; f < stats->nfamilies; f++)
    if (strcmp(stats->families[f].name, name) == 0) return &stats->families[f];
  return NULL;
}

const char *nc_stats_label(const nc_stats_sample_t *sample, const char *label) {
  for (size_t k = 0; k < sample->nlabels; k++)
    if (strcmp(sample->labels[k].name, label) == 0) return sample->labels[k].value;
  return NULL;
}

double nc_stats_value(const nc_stats_t *stats, const char *name, const char *label,
                      const char *value) {
  double sum = 0;
  for (size_t f = 0; f < stats->nfamilies; f++) {
    const nc_stats_family_t *fam = &stats->families[f];
    if (strncmp(name, fam->name, strlen(fam->name)) != 0) continue;
    for (size_t i = 0; i < fam->nsamples; i++) {
      const nc_stats_sample_t *s = &fam->samples[i];
      if (strcmp(s->name, name) != 0) continue;
      const char *v = label ? nc_stats_label(s, label) : NULL;
      if (label == NULL || (v != NULL && value != NULL && strcmp(v, value) == 0)) sum += s->value;
    }
  }
  return sum;
}

/* Every live socket gets 'error' err then 'close', and every server that is
 * not idle (or was asked to close) its end too; keep_relisten spares the
 * servers waiting to listen again on the next netcore. A callback may free
 * any object, so the lists are searched again after each one. */
static void fail_all(nc_loop_t *loop, int err, const char *msg, int keep_relisten) {
  for (;;) {
    nc_socket_t *victim = NULL;
    for (ncc_list *l = loop->sockets.next; l != &loop->sockets; l = l->next) {
      nc_socket_t *s = ncc_container_of(l, nc_socket_t, h.all);
      if (s->state == NC__SK_CONNECTING || s->state == NC__SK_OPEN) {
        victim = s;
        break;
      }
    }
    if (victim == NULL) break;
    nc__socket_gone(victim, err, msg);
  }
  for (;;) {
    nc_server_t *victim = NULL;
    for (ncc_list *l = loop->servers.next; l != &loop->servers; l = l->next) {
      nc_server_t *s = ncc_container_of(l, nc_server_t, h.all);
      if ((!keep_relisten || s->state != NC__SV_RELISTEN) &&
          (s->state != NC__SV_IDLE || s->close_requested)) {
        victim = s;
        break;
      }
    }
    if (victim == NULL) break;
    nc__server_gone(victim, err, msg);
  }
}

static void netcore_gone(nc_loop_t *loop, int err) {
  char msg[sizeof(loop->errmsg)];
  loop->gone = err;
  loop->gone_pending = 0;
  loop->relinking = 0;
  snprintf(msg, sizeof(msg), "%s", loop->errmsg);
  for (struct nc__stats_req *r; (r = stats_pop(loop)) != NULL; free(r)) r->cb(loop, err, NULL, r->arg);
  fail_all(loop, err, msg, 0);
  loop->gone_done = 1;
}

/* The link is lost and reconnection is on (nc.h, no_reconnect): every live
 * socket gets 'error' NC_ERR_NETCORE_GONE then 'close'; listening servers
 * wait for the next Welcome (nc__server_link_lost), closing ones close; then
 * relink_step() opens a new dealer and says Hello. */
/* How long a session waits for a netcore that resumes it before its
 * sockets fail as after any lost link: the new netcore's default
 * --handoff-ms, how long it keeps an unclaimed session (a handler
 * reconnects within milliseconds of a takeover). */
#define RESUME_WAIT_MS 5000

static void relinked(nc_loop_t *loop, const ncc_event *ev);

/* The session will not resume: what a lost link ends, ends now. */
static void resume_abandoned(nc_loop_t *loop, const char *msg) {
  loop->resuming = 0;
  for (ncc_list *l = loop->servers.next; l != &loop->servers; l = l->next)
    nc__server_link_lost(ncc_container_of(l, nc_server_t, h.all));
  fail_all(loop, NC_ERR_NETCORE_GONE, msg, 1);
  loop->shutdown = 0;
}

static void link_lost(nc_loop_t *loop) {
  char msg[sizeof(loop->errmsg)];
  int again = loop->relinking; /* lost while reconnecting: wait a little */
  snprintf(msg, sizeof(msg), "%s", loop->errmsg);
  loop->gone_pending = 0;
  loop->relinking = 1;
  loop->ping_outstanding = 0;
  close_dealer(loop);
  loop->relink_at = loop->now + (again ? 100 : 0);
  /* A resumable session that was not shut down waits as it is: the next
   * netcore may hold it (a takeover, PROTOCOL.md 16.1); its Welcome says. */
  if (loop->resuming || (loop->resumable && loop->session_token_len && !loop->shutdown)) {
    if (!loop->resuming) loop->resume_deadline = loop->now + RESUME_WAIT_MS;
    loop->resuming = 1;
    return;
  }
  loop->shutdown = 0;
  for (ncc_list *l = loop->servers.next; l != &loop->servers; l = l->next)
    nc__server_link_lost(ncc_container_of(l, nc_server_t, h.all));
  fail_all(loop, NC_ERR_NETCORE_GONE, msg, 1);
}

/* Reconnecting: a new dealer when it is time, and a fresh one when the last
 * got no Welcome within hello_timeout_ms (libzmq keeps retrying the
 * connection of each dealer with its own backoff). */
static void relink_step(nc_loop_t *loop) {
  if (!loop->relinking || loop->gone) return;
  if (loop->resuming && loop->now >= loop->resume_deadline) {
    char msg[sizeof(loop->errmsg)];
    snprintf(msg, sizeof(msg), "netcore at %s went away and no netcore resumed this session "
             "within %d ms", loop->endpoint, RESUME_WAIT_MS);
    resume_abandoned(loop, msg);
  }
  if (loop->dealer != NULL) {
    if (loop->now < loop->relink_deadline) return;
    close_dealer(loop);
  }
  if (loop->now < loop->relink_at) return;
  int rv = open_dealer(loop);
  if (rv == 0 && watch_dealer(loop) != 0) rv = NC_ENOMEM;
  if (rv == 0) rv = send_hello(loop);
  if (rv != 0) {
    close_dealer(loop);
    loop->relink_at = loop->now + 500;
    return;
  }
  loop->relink_deadline = loop->now + loop->hello_timeout;
}

/* Welcome on the new dealer of a session waiting to resume: it goes on with
 * every object, or, not resumed (another netcore, a restart), it ends as a
 * lost link does and a new session begins (relinked). */
static void resume_answered(nc_loop_t *loop, const ncc_event *ev) {
  const ncc_welcome *w = ev->welcome;
  loop->resuming = 0;
  if (!w->resumed || w->id_prefix != loop->id_prefix) {
    char msg[sizeof(loop->errmsg)];
    snprintf(msg, sizeof(msg), "netcore at %s went away (the new one does not hold this session)",
             loop->endpoint);
    resume_abandoned(loop, msg);
    relinked(loop, ev);
    return;
  }
  /* The same session: same prefix and ids (next_id goes on), same token. */
  snprintf(loop->instance_id, sizeof(loop->instance_id), "%s", w->instance_id);
  snprintf(loop->server_version, sizeof(loop->server_version), "%s", w->server_version);
  loop->max_frame = w->max_frame;
  loop->max_write_queue = w->max_write_queue;
  loop->minor_version = w->minor_version;
  loop->relinking = 0;
  loop->last_recv = loop->last_send = loop->now;
  for (ncc_list *l = loop->sockets.next; l != &loop->sockets; l = l->next) {
    nc_socket_t *s = ncc_container_of(l, nc_socket_t, h.all);
    s->resume_mark = s->state == NC__SK_CONNECTING || s->state == NC__SK_OPEN ? 2 : 0;
  }
  for (size_t i = 0; i < w->nresumed; i++) {
    nc_socket_t *s = ncc_idmap_get(&loop->socket_ids, w->resumed_sockets[i].socket_id);
    if (s != NULL && s->resume_mark == 2) {
      s->resume_mark = 1;
      s->resume_writes = w->resumed_sockets[i].writes;
    }
    if (s != NULL && s->resume_mark == 1 && s->state == NC__SK_CONNECTING && w->minor_version < 4) {
      /* A netcore of 1.3 never says Connected again: the socket ends. */
      ncc_cmd destroy = {.kind = NCC_CMD_DESTROY, .id = s->id};
      nc__send(loop, &destroy, NULL, 0, NULL);
      s->resume_mark = 2;
    }
  }
  /* Servers whose Listen the new netcore lacks listen again (protocol 1.4),
   * as do those that waited for the link. */
  for (ncc_list *l = loop->servers.next; l != &loop->servers; l = l->next) {
    nc_server_t *sv = ncc_container_of(l, nc_server_t, h.all);
    int held = loop->minor_version < 4; /* an older netcore cannot tell: no duplicate */
    for (size_t i = 0; i < w->nresumed_servers && !held; i++) held = w->resumed_servers[i] == sv->id;
    nc__server_resumed(sv, held);
  }
  /* The sockets that go on (no callback runs), in one pass; a connecting one
   * the new netcore lacks connects again (protocol 1.4)... */
  for (ncc_list *l = loop->sockets.next; l != &loop->sockets; l = l->next) {
    nc_socket_t *s = ncc_container_of(l, nc_socket_t, h.all);
    if (s->resume_mark == 1) s->resume_mark = nc__socket_resumed(s, s->resume_writes) == 0 ? 0 : 3;
    else if (s->resume_mark == 2 && s->state == NC__SK_CONNECTING && !s->destroyed &&
             loop->minor_version >= 4 && s->connect_ep.kind != 0)
      s->resume_mark = nc__socket_connect_again(s) == 0 ? 0 : 3;
  }
  /* ...then the gone ones: a callback may free any socket, so the search
   * starts again after each one. */
  for (;;) {
    nc_socket_t *s = NULL;
    for (ncc_list *l = loop->sockets.next; l != &loop->sockets && s == NULL; l = l->next) {
      nc_socket_t *c = ncc_container_of(l, nc_socket_t, h.all);
      if (c->resume_mark) s = c;
    }
    if (s == NULL) break;
    int mark = s->resume_mark;
    s->resume_mark = 0;
    if (mark == 3)
      nc__socket_fail(s, NC_ENOMEM, "no memory to send a write again");
    else
      nc__socket_gone(s, NC_ERR_NETCORE_GONE, "the socket did not survive the netcore takeover");
  }
}

/* A Welcome on the new dealer: the new session's ids, and every waiting server
 * listens again. */
static void relinked(nc_loop_t *loop, const ncc_event *ev) {
  take_welcome(loop, ev->welcome);
  loop->relinking = 0;
  loop->last_recv = loop->last_send = loop->now;
  for (ncc_list *l = loop->servers.next; l != &loop->servers; l = l->next)
    nc__server_relisten(ncc_container_of(l, nc_server_t, h.all));
}

static void on_error_event(nc_loop_t *loop, const ncc_event *ev) {
  int err = nc__err_code(ev->code);
  if (loop->relinking) {
    /* The new netcore refused our Hello (ERR_UNSUPPORTED_VERSION, ...). */
    snprintf(loop->errmsg, sizeof(loop->errmsg), "netcore at %s refused Hello: %s: %s",
             loop->endpoint, ev->code, ev->message);
    loop->gone_pending = err == NC_EIO ? NC_EPROTO : err;
    return;
  }
  if (strcmp(ev->code, "ERR_NO_HELLO") == 0) {
    /* netcore restarted and our link reconnected to a stranger. */
    snprintf(loop->errmsg, sizeof(loop->errmsg),
             "netcore at %s restarted: it no longer knows this handler", loop->endpoint);
    loop->gone_pending = NC_ERR_NETCORE_GONE;
    return;
  }
  nc_socket_t *s = ncc_idmap_get(&loop->socket_ids, ev->socket_id);
  if (s != NULL && (strcmp(ev->command, "pipe") == 0 || strcmp(ev->command, "unpipe") == 0)) {
    /* A pipe inside netcore that raced with a close, or had stopped already:
     * the pipe in the library carries on, the Unpiped (or the close) says
     * the rest (PROTOCOL.md 17). */
    nc__socket_pipe_refused(s, strcmp(ev->command, "pipe") == 0);
    return;
  }
  if (s != NULL && err == NC_EBADF && strcmp(ev->command, "connect") != 0) {
    /* netcore forgets an id when it starts closing the socket and says Closed
     * once the close is done: a command sent meanwhile (an End or a Credit
     * racing with the close) meets EBADF, and Closed follows (PROTOCOL.md 15). */
    return;
  }
  if (s != NULL) {
    nc__socket_fail(s, err, ev->message);
    return;
  }
  nc_server_t *sv = ncc_idmap_get(&loop->server_ids, ev->server_id);
  if (sv != NULL) {
    nc__server_refused(sv, err, ev->message);
    return;
  }
  /* About an object that is already closed (a Credit racing with Closed, for
   * one) or about none: nothing to tell, but keep it for diagnosis. */
  snprintf(loop->errmsg, sizeof(loop->errmsg), "netcore: %s: %s (command %s)", ev->code,
           ev->message, ev->command);
}

static void dispatch(nc_loop_t *loop, const ncc_event *ev, zmq_msg_t *payload) {
  if (loop->left) return; /* netcore gives it to whoever adopts the socket */
  switch (ev->kind) {
  case NCC_EV_ERROR:
    on_error_event(loop, ev);
    break;
  case NCC_EV_WELCOME:
    if (loop->relinking && loop->resuming)
      resume_answered(loop, ev);
    else if (loop->relinking)
      relinked(loop, ev);
    break;
  case NCC_EV_STATS:
    on_stats_event(loop, ev);
    break;
  case NCC_EV_SHUTDOWN:
    loop->shutdown = 1;
    snprintf(loop->errmsg, sizeof(loop->errmsg), "netcore is shutting down: %s",
             ev->reason[0] ? ev->reason : "no reason given");
    break;
  case NCC_EV_LISTENING:
  case NCC_EV_SERVER_ERROR:
  case NCC_EV_SERVER_CLOSED: {
    nc_server_t *s = ncc_idmap_get(&loop->server_ids, ev->server_id);
    if (s != NULL) nc__server_event(s, ev);
    break;
  }
  case NCC_EV_CONNECTION:
  case NCC_EV_ADOPTED:
    nc__socket_accepted(loop, ev);
    break;
  case NCC_EV_CONNECTED:
  case NCC_EV_DATA:
  case NCC_EV_ENDED:
  case NCC_EV_WRITE_ACK:
  case NCC_EV_TIMEOUT:
  case NCC_EV_SOCKET_ERROR:
  case NCC_EV_CLOSED:
  case NCC_EV_UNPIPED:
  case NCC_EV_FD: {
    nc_socket_t *s = ncc_idmap_get(&loop->socket_ids, ev->socket_id);
    if (s != NULL) nc__socket_event(s, ev, payload);
    break;
  }
  default: /* Pong, or an event newer than this library */
    break;
  }
}

/* The events of an EventBatch, in order; one payload frame per Data event,
 * the first already received (first, or NULL), the rest still waiting. */
static void dispatch_batch(nc_loop_t *loop, uint32_t count, zmq_msg_t *first, int more) {
  for (uint32_t i = 0; i < count; i++) {
    ncc_event ev;
    if (ncc_event_batch_entry(&loop->arena, i, &ev) != 0) break;
    if (ev.kind != NCC_EV_DATA) {
      dispatch(loop, &ev, NULL);
      continue;
    }
    zmq_msg_t payload;
    int has_payload;
    if (first != NULL) {
      zmq_msg_init(&payload);
      zmq_msg_move(&payload, first);
      has_payload = 1;
      first = NULL;
    } else {
      has_payload = ncc_frame_next(loop->dealer, &payload, &more);
    }
    if (has_payload) dispatch(loop, &ev, &payload);
    zmq_msg_close(&payload);
  }
  ncc_frames_drain(loop->dealer, &more); /* frames the batch did not account for */
}

static void read_events(nc_loop_t *loop) {
  int budget = RECV_BUDGET;
  loop->more = 0;
  while (!loop->gone && !loop->gone_pending && loop->dealer != NULL) {
    if (budget-- == 0) {
      loop->more = 1;
      break;
    }
    zmq_msg_t env, payload;
    zmq_msg_init(&env);
    if (zmq_msg_recv(&env, loop->dealer, ZMQ_DONTWAIT) < 0) {
      zmq_msg_close(&env);
      loop->sent_since_drain = 0;
      break;
    }
    int more = zmq_msg_more(&env);
    int has_payload = ncc_frame_next(loop->dealer, &payload, &more);
    loop->last_recv = loop->now;
    loop->ping_outstanding = 0;
    ncc_event ev;
    int rv = ncc_event_unpack(&loop->arena, zmq_msg_data(&env), zmq_msg_size(&env), &ev);
    if (rv == 0 && ev.kind == NCC_EV_BATCH) {
      dispatch_batch(loop, ev.count, has_payload ? &payload : NULL, more);
    } else {
      ncc_frames_drain(loop->dealer, &more); /* more than one payload frame: not ours to guess */
      if (rv == 0) dispatch(loop, &ev, has_payload ? &payload : NULL);
    }
    zmq_msg_close(&env);
    zmq_msg_close(&payload);
  }
}

static void read_monitor(nc_loop_t *loop) {
  uint16_t event;
  uint32_t value;
  while (zsock_readable(loop->monitor) && monitor_next(loop, &event, &value)) {
    int err = handshake_error(loop, event, value);
    if (err != 0 && loop->relinking && !loop->gone_pending) {
      loop->gone_pending = err; /* the new netcore refuses us: reconnecting cannot help */
      return;
    }
    if (event == ZMQ_EVENT_DISCONNECTED && !loop->gone_pending) {
      snprintf(loop->errmsg, sizeof(loop->errmsg),
               loop->shutdown ? "netcore at %s shut down" : "netcore at %s went away",
               loop->endpoint);
      loop->gone_pending = loop->shutdown ? NC_ERR_NETCORE_SHUTDOWN : NC_ERR_NETCORE_GONE;
    }
  }
}

static void run_pending(nc_loop_t *loop) {
  ncc_list batch;
  ncc_list_init(&batch);
  if (ncc_list_empty(&loop->pending)) return;
  /* Work queued by this batch waits for the next turn. */
  batch.next = loop->pending.next;
  batch.prev = loop->pending.prev;
  batch.next->prev = &batch;
  batch.prev->next = &batch;
  ncc_list_init(&loop->pending);
  while (!ncc_list_empty(&batch)) {
    ncc_list *l = batch.next;
    ncc_list_remove(l);
    nc__handle_t *h = ncc_container_of(l, nc__handle_t, pend);
    unsigned flags = h->pending_flags;
    h->pending_flags = 0;
    if (h->type == NC__H_SOCKET)
      nc__socket_pending((nc_socket_t *)h, flags);
    else
      nc__server_pending((nc_server_t *)h, flags);
  }
}

/* Keeps our lease (a Ping when we have been silent for lease/3) and finds a
 * netcore that stopped answering (nothing received for a whole lease). */
static void liveness(nc_loop_t *loop) {
  if (loop->gone || loop->gone_pending || loop->relinking || loop->lease_ms == 0) return;
  uint64_t third = loop->lease_ms / 3 ? loop->lease_ms / 3 : 1;
  if (loop->now - loop->last_recv >= loop->lease_ms) {
    snprintf(loop->errmsg, sizeof(loop->errmsg),
             "netcore at %s did not answer for %u ms", loop->endpoint, loop->lease_ms);
    loop->gone_pending = NC_ERR_NETCORE_GONE;
    return;
  }
  if (loop->now - loop->last_send >= third ||
      (loop->now - loop->last_recv >= third && !loop->ping_outstanding)) {
    ncc_cmd ping = {.kind = NCC_CMD_PING, .nonce = ++loop->ping_nonce};
    if (nc__send(loop, &ping, NULL, 0, NULL) == 0) loop->ping_outstanding = 1;
  }
}

static int liveness_timeout(nc_loop_t *loop) {
  if (loop->relinking && !loop->gone) {
    uint64_t due = loop->dealer != NULL ? loop->relink_deadline : loop->relink_at;
    return due <= loop->now ? 0 : (int)(due - loop->now);
  }
  if (loop->gone || loop->lease_ms == 0) return -1;
  uint64_t third = loop->lease_ms / 3 ? loop->lease_ms / 3 : 1;
  uint64_t due = loop->last_send + third;
  uint64_t recv_due = loop->last_recv + (loop->ping_outstanding ? loop->lease_ms : third);
  if (recv_due < due) due = recv_due;
  return due <= loop->now ? 0 : (int)(due - loop->now);
}

static int alive(const nc_loop_t *loop) {
  return loop->refs > 0 || !ncc_list_empty(&loop->pending);
}

int nc_loop_process(nc_loop_t *loop) {
  /* Commands issued from here to the end of the turn leave as one batch
   * (nested calls from callbacks keep the outer turn's batch). */
  int outer = !loop->batching;
  loop->batching = 1;
  loop->now = nc__clock_ms();
  nc__signals_dispatch(loop);
  if (loop->left) {
    loop->batching = outer ? 0 : loop->batching;
    return 0;
  }
  relink_step(loop);
  if (!loop->gone && !loop->gone_pending) {
    read_events(loop);
    /* Under nc_loop_run, the monitor is read only when epoll saw its fd:
     * its ZMQ_FD stays readable while it has something to say. */
    if (!loop->in_run || loop->monitor_ready) read_monitor(loop);
    loop->monitor_ready = 0;
  }
  run_pending(loop);
  loop->now = nc__clock_ms();
  nc__timers_run(loop);
  liveness(loop);
  if (outer) {
    flush_batch(loop);
    loop->batching = 0;
  }
  if (loop->gone_pending && !loop->gone) {
    int lost = loop->gone_pending;
    if (loop->reconnect && (lost == NC_ERR_NETCORE_GONE || lost == NC_ERR_NETCORE_SHUTDOWN))
      link_lost(loop);
    else
      netcore_gone(loop, lost);
  }
  if (loop->gone) return loop->gone;
  if (!alive(loop) && loop->shutdown) return NC_ERR_NETCORE_SHUTDOWN;
  return alive(loop) ? 1 : 0;
}

int nc_loop_timeout(nc_loop_t *loop) {
  if (!ncc_list_empty(&loop->pending) || loop->more || (loop->gone_pending && !loop->gone))
    return 0;
  /* Readable ZMQ_FDs wake the epoll fd by themselves; only input a send may
   * have hidden needs a look (see dealer_unsure). */
  if (!loop->gone && dealer_unsure(loop)) return 0;
  loop->now = nc__clock_ms();
  int t = nc__timers_next(loop);
  int l = liveness_timeout(loop);
  if (t < 0 || (l >= 0 && l < t)) t = l;
  return t;
}

static int run(nc_loop_t *loop);

int nc_loop_run(nc_loop_t *loop) {
  int outer = !loop->in_run;
  loop->in_run = 1;
  loop->monitor_ready = 1;
  int rv = run(loop);
  if (outer) loop->in_run = 0;
  return rv;
}

static int run(nc_loop_t *loop) {
  for (;;) {
    int rv = nc_loop_process(loop);
    if (rv <= 0) return rv;
    if (loop->stop) {
      loop->stop = 0;
      return 0;
    }
    int t = nc_loop_timeout(loop);
    if (t != 0) {
      struct epoll_event evs[4];
      int n = epoll_wait(loop->epfd, evs, 4, t);
      for (int i = 0; i < n; i++)
        if (evs[i].data.fd == loop->monitor_fd) loop->monitor_ready = 1;
    } /* not waited: a readable monitor fd is seen at the next wait */
    if (loop->stop) {
      loop->stop = 0;
      return 0;
    }
  }
}

void nc_loop_stop(nc_loop_t *loop) {
  int saved = errno;
  loop->stop = 1;
  char b = 0;
  ssize_t n = write(loop->wake[1], &b, 1);
  (void)n; /* a full pipe already wakes the loop */
  errno = saved;
}

int nc_loop_fd(const nc_loop_t *loop) { return loop->epfd; }
uint64_t nc_loop_now(const nc_loop_t *loop) { return loop->now; }
const char *nc_loop_error_message(const nc_loop_t *loop) { return loop->errmsg; }
const char *nc_loop_instance_id(const nc_loop_t *loop) { return loop->instance_id; }
const char *nc_loop_server_version(const nc_loop_t *loop) { return loop->server_version; }
void nc_loop_set_data(nc_loop_t *loop, void *data) { loop->data = data; }
void *nc_loop_get_data(const nc_loop_t *loop) { return loop->data; }
