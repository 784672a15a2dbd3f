/*
 * loadgen: the load generator of the benchmark suite (tests/bench).
 *
 * One thread, one epoll set, non-blocking sockets, no allocation after start-up. It drives
 * any echo server that greets first (the seed's `c.write('hello\r\n'); c.pipe(c)`) in one
 * of three modes:
 *   - persistent (default): N connections each keep D messages of S bytes in flight for T
 *     seconds; requests/s, MB/s and per-message latency are measured.
 *   - churn (--churn): N parallel connectors each connect, read the greeting, exchange one
 *     message, end their side, wait for the server's FIN and start again; connections/s.
 *   - idle (--idle N): open N connections (at most --conns connecting at once), one
 *     exchange each, then hold them and read the VmRSS of the given server pids.
 *
 * Every byte sent is a position-dependent pattern (a random table whose period is a prime,
 * entered at a per-connection offset), and every byte echoed is checked against it, so
 * loss, duplication, reordering and bytes crossing connections are all counted as corrupt.
 * The exit status is non-zero on any corrupt byte or failed connection.
 * The process owns everything it allocates and frees it before exit (valgrind-clean).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* A prime period: a chunk displaced by anything but a multiple of 131071 bytes mismatches. */
#define PAT_PERIOD 131071u
#define RBUF_LEN (256u * 1024u)
#define MAX_RSS_PIDS 4
#define MAX_EVENTS 512

enum mode { MODE_PERSISTENT, MODE_CHURN, MODE_IDLE };

enum cstate {
  C_FREE,       /* slot unused */
  C_RETRY,      /* connect() said EAGAIN (UNIX backlog full): try again shortly */
  C_CONNECTING, /* non-blocking connect in progress */
  C_GREETING,   /* reading the server's greeting */
  C_READY,      /* persistent mode: greeted, waiting for the start signal */
  C_ACTIVE,     /* exchanging the pattern */
  C_IDLE,       /* idle mode: one exchange done, holding the connection */
  C_CLOSING,    /* our FIN sent, waiting for the server's */
  C_DONE        /* finished or failed; fd closed */
};

enum fail_reason { F_CONNECT, F_GREETING, F_RESET, F_EOF, F_TIMEOUT, F_EXCESS, F__COUNT };
static const char *const fail_names[F__COUNT] = {"connect error",
                                                 "greeting mismatch",
                                                 "reset/error",
                                                 "unexpected EOF",
                                                 "timeout (bytes or FIN missing)",
                                                 "bytes never sent were echoed"};

struct conn {
  int fd;
  uint32_t gen; /* bumped per connection in this slot, guards against stale epoll events */
  enum cstate st;
  uint32_t greet_got;
  uint32_t seed;      /* pattern offset of this connection's stream */
  uint64_t issue_off; /* pattern bytes the load has asked to send */
  uint64_t send_off;  /* pattern bytes handed to the kernel */
  uint64_t recv_off;  /* pattern bytes echoed and checked */
  uint64_t t_begin;   /* connect() time (churn and idle latency) */
  uint64_t t_retry;
  uint64_t *t_send; /* depth slots: issue time of message m at [m % depth] */
};

/* Log-linear histogram of nanoseconds: 64 sub-buckets per power of two (~1.6% error). */
#define HIST_SUB 64
#define HIST_BUCKETS (HIST_SUB * 60)
struct hist {
  uint64_t n[HIST_BUCKETS];
  uint64_t count, max;
};

struct opts {
  const char *host;
  int port;
  const char *path;
  int conns, depth;
  size_t size;
  double seconds, timeout;
  enum mode mode;
  int idle;
  uint8_t greeting[256];
  size_t greeting_len;
  bool json;
  int sources;
  pid_t rss_pid[MAX_RSS_PIDS];
  int n_rss;
  int settle_ms;
  double hold;
  const char *label;
};

struct rss {
  long before_kb, after_kb;
};

static struct opts o;
static uint8_t pat[2 * PAT_PERIOD]; /* doubled so any window of <= PAT_PERIOD is contiguous */
static uint8_t *rbuf;
static int ep = -1;
static struct conn *cs;
static int ncs;
static uint64_t *tsend_all;
static struct hist h;
static struct sockaddr_storage dst;
static socklen_t dst_len;

static bool issuing; /* persistent: new messages may be issued */
static uint64_t win_start, win_end;
static uint64_t done_msgs;  /* messages (or churn connections) completed inside the window */
static uint64_t done_bytes; /* echoed payload bytes completed inside the window */
static uint64_t corrupt;
static uint64_t failed[F__COUNT];
static uint64_t cycle; /* connections started so far (churn: also the seed source) */
static int n_ready, n_done, n_retry;
static volatile sig_atomic_t interrupted;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void hist_add(struct hist *hh, uint64_t v) {
  unsigned idx;
  if (v < HIST_SUB) {
    idx = (unsigned)v;
  } else {
    unsigned e = 63u - (unsigned)__builtin_clzll(v); /* >= 6 */
    idx = (e - 5u) * HIST_SUB + (unsigned)((v >> (e - 6u)) & (HIST_SUB - 1));
  }
  if (idx >= HIST_BUCKETS) idx = HIST_BUCKETS - 1;
  hh->n[idx]++;
  hh->count++;
  if (v > hh->max) hh->max = v;
}

/* The middle of the bucket that holds the q-quantile, in nanoseconds. */
static double hist_quantile(const struct hist *hh, double q) {
  if (hh->count == 0) return 0;
  uint64_t want = (uint64_t)(q * (double)hh->count);
  if (want >= hh->count) want = hh->count - 1;
  uint64_t seen = 0;
  for (unsigned i = 0; i < HIST_BUCKETS; i++) {
    seen += hh->n[i];
    if (seen > want) {
      if (i < HIST_SUB) return i;
      unsigned e = i / HIST_SUB + 5u, sub = i % HIST_SUB;
      double lo = (double)((uint64_t)(HIST_SUB + sub) << (e - 6u));
      double w = (double)(1ull << (e - 6u));
      double v = lo + w / 2;
      return v > (double)hh->max ? (double)hh->max : v;
    }
  }
  return (double)hh->max;
}

static void pat_init(void) {
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (unsigned i = 0; i < PAT_PERIOD; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    pat[i] = (uint8_t)(x >> 32);
  }
  memcpy(pat + PAT_PERIOD, pat, PAT_PERIOD);
}

static const uint8_t *pat_at(const struct conn *c, uint64_t off) {
  return pat + (c->seed + off) % PAT_PERIOD;
}

static long read_rss_kb(pid_t pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  long kb = -1;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "VmRSS:", 6) == 0) {
      kb = strtol(line + 6, NULL, 10);
      break;
    }
  }
  fclose(f);
  return kb;
}

static void conn_close_fd(struct conn *c) {
  if (c->fd >= 0) {
    close(c->fd); /* also removes it from the epoll set */
    c->fd = -1;
  }
}

static void start_conn(struct conn *c);

/* A slot is finished. While churning, the next connection of the slot starts at once
 * after a success, and 1 ms later after a failure (a refused connect fails synchronously
 * and must not recurse). */
static void conn_finish(struct conn *c, bool ok) {
  conn_close_fd(c);
  if (o.mode == MODE_CHURN && issuing && !interrupted) {
    if (ok) {
      c->st = C_DONE;
      n_done++;
      start_conn(c);
    } else {
      c->st = C_RETRY;
      c->t_retry = now_ns() + 1000000u;
      n_retry++;
    }
    return;
  }
  c->st = C_DONE;
  n_done++;
}

static void conn_fail(struct conn *c, enum fail_reason why) {
  failed[why]++;
  if (c->st == C_READY || c->st == C_IDLE) n_ready--;
  conn_finish(c, false);
}

static void start_conn(struct conn *c) {
  bool tcp = o.path == NULL;
  c->gen++;
  c->greet_got = 0;
  c->issue_off = c->send_off = c->recv_off = 0;
  c->seed = (uint32_t)((cycle * 2654435761u) % PAT_PERIOD);
  c->t_begin = now_ns();
  if (c->st == C_DONE) n_done--;
  c->st = C_CONNECTING;
  cycle++;

  int fd = socket(tcp ? dst.ss_family : AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    fprintf(stderr, "loadgen: socket: %s\n", strerror(errno));
    c->fd = -1;
    failed[F_CONNECT]++;
    c->st = C_DONE;
    n_done++;
    return;
  }
  c->fd = fd;
  if (tcp) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (o.sources > 1 && dst.ss_family == AF_INET) {
      /* Spread the 4-tuples over 127.0.0.1..N so TIME_WAIT never exhausts the ports. */
      struct sockaddr_in src = {.sin_family = AF_INET};
      src.sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)(cycle % (uint64_t)o.sources));
      setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
      if (bind(fd, (struct sockaddr *)&src, sizeof src) != 0) {
        fprintf(stderr, "loadgen: bind source: %s\n", strerror(errno));
        conn_fail(c, F_CONNECT);
        return;
      }
    }
  }
  if (connect(fd, (struct sockaddr *)&dst, dst_len) != 0 && errno != EINPROGRESS) {
    if (errno == EAGAIN) { /* UNIX socket backlog full: not a failure, try again */
      conn_close_fd(c);
      c->st = C_RETRY;
      c->t_retry = now_ns() + 1000000u;
      n_retry++;
      return;
    }
    static bool said;
    if (!said) {
      fprintf(stderr, "loadgen: connect: %s\n", strerror(errno));
      said = true;
    }
    conn_fail(c, F_CONNECT);
    return;
  }
  /* Added after connect(): edge-triggered, the current state is reported once. */
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                           .data.u64 = ((uint64_t)c->gen << 32) | (uint64_t)(c - cs)};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
    fprintf(stderr, "loadgen: epoll_ctl: %s\n", strerror(errno));
    conn_fail(c, F_CONNECT);
  }
}

/* Sends what was issued and not yet sent; a short write means the kernel buffer is full
 * and the edge-triggered EPOLLOUT will call us again. Returns false if the conn failed. */
static bool flush_conn(struct conn *c) {
  while (c->send_off < c->issue_off) {
    uint64_t left = c->issue_off - c->send_off;
    size_t len = left > PAT_PERIOD ? PAT_PERIOD : (size_t)left;
    ssize_t n = send(c->fd, pat_at(c, c->send_off), len, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return true;
      conn_fail(c, F_RESET);
      return false;
    }
    c->send_off += (uint64_t)n;
    if ((size_t)n < len) return true;
  }
  return true;
}

static void issue(struct conn *c, uint64_t t) {
  uint64_t m = c->issue_off / o.size;
  c->t_send[m % (uint64_t)o.depth] = t;
  c->issue_off += o.size;
}

static void begin_exchange(struct conn *c, uint64_t t) {
  c->st = C_ACTIVE;
  int n = o.mode == MODE_PERSISTENT ? o.depth : 1;
  for (int i = 0; i < n; i++) issue(c, t);
  flush_conn(c);
}

static void end_our_side(struct conn *c) {
  c->st = C_CLOSING;
  shutdown(c->fd, SHUT_WR);
}

/* The greeting is done (or there is none): what happens next depends on the mode. */
static void greeted(struct conn *c, uint64_t t) {
  if (o.mode == MODE_PERSISTENT) {
    c->st = C_READY;
    n_ready++;
    if (issuing) begin_exchange(c, t);
  } else {
    begin_exchange(c, t);
  }
}

/* Counts the bytes of buf that differ from the pattern at the connection's recv offset. */
static uint64_t count_corrupt(const struct conn *c, const uint8_t *buf, size_t n) {
  uint64_t bad = 0;
  size_t done = 0;
  while (done < n) {
    size_t k = n - done > PAT_PERIOD ? PAT_PERIOD : n - done;
    const uint8_t *p = pat_at(c, c->recv_off + done);
    if (memcmp(p, buf + done, k) != 0)
      for (size_t i = 0; i < k; i++) bad += p[i] != buf[done + i];
    done += k;
  }
  return bad;
}

/* Checks n echoed bytes and completes the messages they finish. Returns false if the
 * connection is gone. */
static bool on_pattern(struct conn *c, const uint8_t *buf, size_t n, uint64_t t) {
  bool live = c->st == C_ACTIVE || c->st == C_CLOSING;
  uint64_t allowed = live ? c->send_off - c->recv_off : 0;
  if (n > allowed) {
    /* More than we sent: the server invented bytes. */
    corrupt += n - allowed;
    conn_fail(c, F_EXCESS);
    return false;
  }
  corrupt += count_corrupt(c, buf, n);
  uint64_t before = c->recv_off / o.size;
  c->recv_off += n;
  uint64_t after = c->recv_off / o.size;
  for (uint64_t m = before; m < after; m++) {
    uint64_t lat = t - c->t_send[m % (uint64_t)o.depth];
    if (o.mode == MODE_PERSISTENT) {
      hist_add(&h, lat);
      if (t >= win_start && t < win_end) {
        done_msgs++;
        done_bytes += o.size;
      }
      if (issuing) issue(c, t);
    }
  }
  if (o.mode == MODE_PERSISTENT) {
    if (after > before && issuing) return flush_conn(c);
  } else if (c->st == C_ACTIVE && c->recv_off == c->issue_off) {
    if (o.mode == MODE_CHURN) {
      end_our_side(c);
    } else {
      c->st = C_IDLE;
      n_ready++;
    }
  }
  return true;
}

static void on_readable(struct conn *c, uint64_t t) {
  for (;;) {
    ssize_t n = recv(c->fd, rbuf, RBUF_LEN, 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      conn_fail(c, F_RESET);
      return;
    }
    if (n == 0) {
      if (c->st == C_CLOSING && c->recv_off == c->send_off) {
        if (o.mode == MODE_CHURN) {
          hist_add(&h, t - c->t_begin);
          if (t >= win_start && t < win_end) done_msgs++;
        }
        conn_finish(c, true);
      } else {
        conn_fail(c, F_EOF);
      }
      return;
    }
    const uint8_t *p = rbuf;
    size_t left = (size_t)n;
    if (c->st == C_GREETING) {
      size_t k = o.greeting_len - c->greet_got;
      if (k > left) k = left;
      uint64_t bad = 0;
      for (size_t i = 0; i < k; i++) bad += p[i] != o.greeting[c->greet_got + i];
      c->greet_got += (uint32_t)k;
      p += k;
      left -= k;
      if (bad) {
        corrupt += bad;
        conn_fail(c, F_GREETING);
        return;
      }
      if (c->greet_got == o.greeting_len) greeted(c, t);
    }
    if (left > 0 && !on_pattern(c, p, left, t)) return;
    if ((size_t)n < RBUF_LEN) /* short read: drained; the next arrival is a new edge */
      return;
  }
}

static void on_event(uint64_t data, uint32_t events) {
  struct conn *c = &cs[(uint32_t)data];
  if ((uint32_t)(data >> 32) != c->gen || c->fd < 0)
    return; /* an event of the slot's previous connection */
  uint64_t t = now_ns();
  if (c->st == C_CONNECTING) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err != 0) {
      static bool said;
      if (!said) {
        fprintf(stderr, "loadgen: connect: %s\n", strerror(err));
        said = true;
      }
      conn_fail(c, F_CONNECT);
      return;
    }
    if (!(events & (EPOLLOUT | EPOLLIN | EPOLLHUP | EPOLLRDHUP))) return;
    c->st = C_GREETING;
    if (o.greeting_len == 0) greeted(c, t);
    if (c->fd < 0) return;
  }
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
    on_readable(c, t);
    if (c->fd < 0) return;
  }
  if ((events & EPOLLOUT) && c->st == C_ACTIVE) flush_conn(c);
}

/* Runs the loop until pred() holds or the deadline (ns) passes. */
static void loop_until(bool (*pred)(void), uint64_t deadline) {
  struct epoll_event evs[MAX_EVENTS];
  for (;;) {
    if (pred() || interrupted) return;
    uint64_t t = now_ns();
    if (t >= deadline) return;
    if (n_retry > 0) {
      for (int i = 0; i < ncs; i++) {
        struct conn *c = &cs[i];
        if (c->st == C_RETRY && c->t_retry <= t) {
          n_retry--;
          if (o.mode == MODE_CHURN && !issuing) {
            c->st = C_DONE;
            n_done++;
          } else {
            start_conn(c);
          }
        }
      }
    }
    uint64_t wait_ms = (deadline - t + 999999u) / 1000000u;
    if (wait_ms > 100) wait_ms = 100;
    if (n_retry > 0) wait_ms = 1;
    int n = epoll_wait(ep, evs, MAX_EVENTS, (int)wait_ms);
    if (n < 0 && errno != EINTR) {
      perror("loadgen: epoll_wait");
      return;
    }
    for (int i = 0; i < n; i++) on_event(evs[i].data.u64, evs[i].events);
  }
}

static bool never(void) {
  return false;
}
static bool all_settled(void) {
  return n_ready + n_done >= ncs;
}
static bool all_done(void) {
  return n_done >= ncs;
}
static bool all_drained(void) {
  for (int i = 0; i < ncs; i++)
    if (cs[i].st == C_ACTIVE && cs[i].recv_off < cs[i].issue_off) return false;
  return true;
}
static int idle_started;
static bool idle_settled(void) {
  /* Keep at most o.conns connections in setup at once: backlogs stay unflooded. */
  int in_setup = idle_started - n_ready - n_done;
  while (in_setup < o.conns && idle_started < ncs) {
    start_conn(&cs[idle_started++]);
    in_setup++;
  }
  return idle_started >= ncs && all_settled();
}

/* Setup is over: whoever is not greeted (persistent) or idle (idle mode) by now failed. */
static void fail_unsettled(void) {
  for (int i = 0; i < ncs; i++) {
    struct conn *c = &cs[i];
    if (c->st == C_READY || c->st == C_IDLE || c->st == C_DONE) continue;
    if (c->st == C_RETRY) n_retry--;
    if (c->st == C_FREE || c->st == C_RETRY) {
      failed[F_TIMEOUT]++;
      c->st = C_DONE;
      n_done++;
    } else {
      conn_fail(c, F_TIMEOUT);
    }
  }
}

/* Ends every live connection: our FIN, then the server's FIN, bounded by the timeout. */
static void close_all(void) {
  for (int i = 0; i < ncs; i++) {
    struct conn *c = &cs[i];
    if (c->st == C_READY || c->st == C_ACTIVE || c->st == C_IDLE) {
      if (c->st != C_ACTIVE) n_ready--;
      if (c->st == C_READY) /* never started: it has nothing to drain */
        c->st = C_ACTIVE;
      end_our_side(c);
    }
  }
  loop_until(all_done, now_ns() + (uint64_t)(o.timeout * 1e9));
  for (int i = 0; i < ncs; i++) {
    struct conn *c = &cs[i];
    if (c->st == C_RETRY) {
      n_retry--;
      c->st = C_DONE;
      n_done++;
    } else if (c->st != C_DONE && c->st != C_FREE) {
      conn_fail(c, F_TIMEOUT);
    }
  }
}

static int parse_greeting(const char *s) {
  size_t n = 0;
  while (*s) {
    if (n >= sizeof o.greeting) return -1;
    if (*s != '\\') {
      o.greeting[n++] = (uint8_t)*s++;
      continue;
    }
    s++;
    switch (*s) {
      case 'r':
        o.greeting[n++] = '\r';
        s++;
        break;
      case 'n':
        o.greeting[n++] = '\n';
        s++;
        break;
      case 't':
        o.greeting[n++] = '\t';
        s++;
        break;
      case '0':
        o.greeting[n++] = 0;
        s++;
        break;
      case '\\':
        o.greeting[n++] = '\\';
        s++;
        break;
      case 'x': {
        char hex[3] = {0};
        if (!s[1] || !s[2]) return -1;
        hex[0] = s[1];
        hex[1] = s[2];
        char *end;
        long v = strtol(hex, &end, 16);
        if (*end) return -1;
        o.greeting[n++] = (uint8_t)v;
        s += 3;
        break;
      }
      default:
        return -1;
    }
  }
  o.greeting_len = n;
  return 0;
}

static void usage(FILE *f) {
  fputs(
      "usage: loadgen (--host H --port P | --path F) [--conns N] [--depth D] [--size S]\n"
      "               [--seconds T] [--churn | --idle N] [--greeting STR] [--sources K]\n"
      "               [--rss-pid PID]... [--settle-ms MS] [--hold T] [--timeout T]\n"
      "               [--label NAME] [--json]\n"
      "  persistent (default): N connections, D messages of S bytes in flight each, T s\n"
      "  --churn: N parallel connectors: connect, greeting, one S-byte exchange, FIN, again\n"
      "  --idle N: open N connections (--conns at once), one exchange each, hold; the\n"
      "            VmRSS of each --rss-pid is read before and after (+ --settle-ms)\n"
      "  --greeting: expected first bytes of every connection, C escapes (\\r \\n \\xHH);\n"
      "              default 'hello\\r\\n', '' for none\n"
      "  --sources K: TCP to 127.x: bind sources 127.0.0.1..K round robin (default 64 for\n"
      "               churn and idle, 1 otherwise)\n"
      "Exit status 1 on any corrupt byte or failed connection, 2 on bad usage.\n",
      f);
}

static int parse_args(int argc, char **argv) {
  o.host = "127.0.0.1";
  o.port = -1;
  o.conns = -1;
  o.depth = 1;
  o.size = 64;
  o.seconds = 5;
  o.timeout = 30;
  o.sources = -1;
  o.settle_ms = 1000;
  parse_greeting("hello\\r\\n");
  enum {
    O_HOST = 256,
    O_PORT,
    O_PATH,
    O_CONNS,
    O_DEPTH,
    O_SIZE,
    O_SECONDS,
    O_CHURN,
    O_IDLE,
    O_GREETING,
    O_JSON,
    O_SOURCES,
    O_RSS,
    O_SETTLE,
    O_HOLD,
    O_TIMEOUT,
    O_LABEL,
    O_HELP
  };
  static const struct option lo[] = {{"host", 1, 0, O_HOST},
                                     {"port", 1, 0, O_PORT},
                                     {"path", 1, 0, O_PATH},
                                     {"conns", 1, 0, O_CONNS},
                                     {"depth", 1, 0, O_DEPTH},
                                     {"size", 1, 0, O_SIZE},
                                     {"seconds", 1, 0, O_SECONDS},
                                     {"churn", 0, 0, O_CHURN},
                                     {"idle", 1, 0, O_IDLE},
                                     {"greeting", 1, 0, O_GREETING},
                                     {"json", 0, 0, O_JSON},
                                     {"sources", 1, 0, O_SOURCES},
                                     {"rss-pid", 1, 0, O_RSS},
                                     {"settle-ms", 1, 0, O_SETTLE},
                                     {"hold", 1, 0, O_HOLD},
                                     {"timeout", 1, 0, O_TIMEOUT},
                                     {"label", 1, 0, O_LABEL},
                                     {"help", 0, 0, O_HELP},
                                     {0, 0, 0, 0}};
  int ch;
  while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
    switch (ch) {
      case O_HOST:
        o.host = optarg;
        break;
      case O_PORT:
        o.port = atoi(optarg);
        break;
      case O_PATH:
        o.path = optarg;
        break;
      case O_CONNS:
        o.conns = atoi(optarg);
        break;
      case O_DEPTH:
        o.depth = atoi(optarg);
        break;
      case O_SIZE:
        o.size = (size_t)strtoull(optarg, NULL, 10);
        break;
      case O_SECONDS:
        o.seconds = atof(optarg);
        break;
      case O_CHURN:
        o.mode = MODE_CHURN;
        break;
      case O_IDLE:
        o.mode = MODE_IDLE;
        o.idle = atoi(optarg);
        break;
      case O_GREETING:
        if (parse_greeting(optarg) != 0) {
          fprintf(stderr, "loadgen: bad --greeting escape in '%s'\n", optarg);
          return -1;
        }
        break;
      case O_JSON:
        o.json = true;
        break;
      case O_SOURCES:
        o.sources = atoi(optarg);
        break;
      case O_RSS:
        if (o.n_rss == MAX_RSS_PIDS) {
          fprintf(stderr, "loadgen: at most %d --rss-pid\n", MAX_RSS_PIDS);
          return -1;
        }
        o.rss_pid[o.n_rss++] = (pid_t)atoi(optarg);
        break;
      case O_SETTLE:
        o.settle_ms = atoi(optarg);
        break;
      case O_HOLD:
        o.hold = atof(optarg);
        break;
      case O_TIMEOUT:
        o.timeout = atof(optarg);
        break;
      case O_LABEL:
        o.label = optarg;
        break;
      case O_HELP:
        usage(stdout);
        exit(0);
      default:
        usage(stderr);
        return -1;
    }
  }
  if (optind != argc || (o.path == NULL && (o.port <= 0 || o.port > 65535))) {
    usage(stderr);
    return -1;
  }
  if (o.conns < 0) o.conns = o.mode == MODE_CHURN ? 8 : o.mode == MODE_IDLE ? 256 : 100;
  if (o.sources < 0) o.sources = o.mode == MODE_PERSISTENT ? 1 : 64;
  if (o.sources > 254) o.sources = 254;
  if (o.conns < 1 || o.depth < 1 || o.size < 1 || o.seconds <= 0 || o.timeout <= 0 ||
      (o.mode == MODE_IDLE && o.idle < 1)) {
    fprintf(stderr,
            "loadgen: --conns, --depth, --size, --seconds, --timeout, --idle must be > 0\n");
    return -1;
  }
  if (o.mode != MODE_PERSISTENT) o.depth = 1;
  return 0;
}

static int resolve(void) {
  if (o.path) {
    struct sockaddr_un *un = (struct sockaddr_un *)&dst;
    if (strlen(o.path) >= sizeof un->sun_path) {
      fprintf(stderr, "loadgen: path too long: %s\n", o.path);
      return -1;
    }
    un->sun_family = AF_UNIX;
    strcpy(un->sun_path, o.path);
    dst_len = sizeof *un;
    return 0;
  }
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
  char port[16];
  snprintf(port, sizeof port, "%d", o.port);
  int rv = getaddrinfo(o.host, port, &hints, &res);
  if (rv != 0) {
    fprintf(stderr, "loadgen: %s: %s\n", o.host, gai_strerror(rv));
    return -1;
  }
  memcpy(&dst, res->ai_addr, res->ai_addrlen);
  dst_len = res->ai_addrlen;
  freeaddrinfo(res);
  if (dst.ss_family != AF_INET ||
      (ntohl(((struct sockaddr_in *)&dst)->sin_addr.s_addr) >> 24) != 127)
    o.sources = 1;
  return 0;
}

static void on_signal(int sig) {
  (void)sig;
  interrupted = 1;
}

static const char *mode_name(void) {
  return o.mode == MODE_CHURN ? "churn" : o.mode == MODE_IDLE ? "idle" : "persistent";
}

static void report(double elapsed, const struct rss *rss) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double self_cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                    (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
  uint64_t nfailed = 0;
  for (int i = 0; i < F__COUNT; i++) nfailed += failed[i];
  double rate = elapsed > 0 ? (double)done_msgs / elapsed : 0;
  double mbps = elapsed > 0 ? (double)done_bytes / elapsed / 1e6 : 0;
  double p50 = hist_quantile(&h, 0.50) / 1e3, p99 = hist_quantile(&h, 0.99) / 1e3;
  double mx = (double)h.max / 1e3;
  for (int i = 0; i < F__COUNT; i++)
    if (failed[i])
      fprintf(stderr, "loadgen: %" PRIu64 " connection(s) failed: %s\n", failed[i], fail_names[i]);
  if (o.json) {
    printf(
        "{\"label\":\"%s\",\"mode\":\"%s\",\"transport\":\"%s\",\"conns\":%d,\"depth\":%d,"
        "\"size\":%zu,\"seconds\":%.3f,\"count\":%" PRIu64
        ",\"rate\":%.1f,\"mbps\":%.2f,"
        "\"p50_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f,\"samples\":%" PRIu64
        ",\"corrupt_bytes\":%" PRIu64 ",\"failed_conns\":%" PRIu64
        ",\"idle_conns\":%d,"
        "\"self_cpu_s\":%.3f,\"rss\":[",
        o.label ? o.label : "", mode_name(), o.path ? "unix" : "tcp", o.conns, o.depth, o.size,
        elapsed, done_msgs, rate, mbps, p50, p99, mx, h.count, corrupt, nfailed,
        o.mode == MODE_IDLE ? o.idle : 0, self_cpu);
    for (int i = 0; i < o.n_rss; i++)
      printf("%s{\"pid\":%d,\"before_kb\":%ld,\"after_kb\":%ld}", i ? "," : "", (int)o.rss_pid[i],
             rss[i].before_kb, rss[i].after_kb);
    printf("]}\n");
  } else {
    printf("loadgen: %s %s %s conns=%d depth=%d size=%zu seconds=%.2f", mode_name(),
           o.path ? "unix" : "tcp", o.path ? o.path : o.host, o.conns, o.depth, o.size, elapsed);
    if (o.mode == MODE_IDLE) printf(" idle=%d (%" PRIu64 " open)", o.idle, done_msgs);
    printf("\n");
    if (o.mode == MODE_PERSISTENT)
      printf("  requests %" PRIu64 "  %.1f/s  %.2f MB/s (echoed payload)\n", done_msgs, rate, mbps);
    else if (o.mode == MODE_CHURN)
      printf("  connections %" PRIu64 "  %.1f/s\n", done_msgs, rate);
    if (o.mode != MODE_IDLE)
      printf("  latency us  p50 %.1f  p99 %.1f  max %.1f  (%" PRIu64 " samples)\n", p50, p99, mx,
             h.count);
    for (int i = 0; i < o.n_rss; i++)
      printf("  pid %d VmRSS %ld kB -> %ld kB: %.2f KiB per connection\n", (int)o.rss_pid[i],
             rss[i].before_kb, rss[i].after_kb,
             o.idle ? (double)(rss[i].after_kb - rss[i].before_kb) / o.idle : 0.0);
    printf("  corrupt bytes %" PRIu64 "  failed connections %" PRIu64 "\n", corrupt, nfailed);
  }
  fflush(stdout);
}

int main(int argc, char **argv) {
  if (parse_args(argc, argv) != 0) return 2;
  if (resolve() != 0) return 2;
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  pat_init();

  ncs = o.mode == MODE_IDLE ? o.idle : o.conns;
  rbuf = malloc(RBUF_LEN);
  cs = calloc((size_t)ncs, sizeof *cs);
  tsend_all = calloc((size_t)ncs * (size_t)o.depth, sizeof *tsend_all);
  ep = epoll_create1(EPOLL_CLOEXEC);
  if (!rbuf || !cs || !tsend_all || ep < 0) {
    fprintf(stderr, "loadgen: out of memory or epoll: %s\n", strerror(errno));
    return 2;
  }
  for (int i = 0; i < ncs; i++) {
    cs[i].fd = -1;
    cs[i].t_send = tsend_all + (size_t)i * (size_t)o.depth;
  }

  struct rss rss[MAX_RSS_PIDS];
  for (int i = 0; i < o.n_rss; i++) rss[i].before_kb = rss[i].after_kb = read_rss_kb(o.rss_pid[i]);

  uint64_t setup_deadline = now_ns() + (uint64_t)(o.timeout * 1e9);
  double elapsed = 0;
  if (o.mode == MODE_PERSISTENT) {
    for (int i = 0; i < ncs; i++) start_conn(&cs[i]);
    loop_until(all_settled, setup_deadline);
    fail_unsettled();
    /* Everyone greeted (or failed): the measured window starts for all at once. */
    win_start = now_ns();
    win_end = win_start + (uint64_t)(o.seconds * 1e9);
    issuing = true;
    for (int i = 0; i < ncs; i++)
      if (cs[i].st == C_READY) begin_exchange(&cs[i], win_start);
    loop_until(all_done, win_end); /* all done before the end: every connection failed */
    issuing = false;
    elapsed = (double)(now_ns() - win_start) / 1e9;
    if (elapsed > o.seconds) elapsed = o.seconds;
    loop_until(all_drained, now_ns() + (uint64_t)(o.timeout * 1e9));
    close_all();
  } else if (o.mode == MODE_CHURN) {
    win_start = now_ns();
    win_end = win_start + (uint64_t)(o.seconds * 1e9);
    issuing = true;
    for (int i = 0; i < ncs; i++) start_conn(&cs[i]);
    loop_until(never, win_end);
    issuing = false;
    elapsed = (double)(now_ns() - win_start) / 1e9;
    if (elapsed > o.seconds) elapsed = o.seconds;
    loop_until(all_done, now_ns() + (uint64_t)(o.timeout * 1e9));
    close_all();
  } else {
    uint64_t t0 = now_ns();
    loop_until(idle_settled, setup_deadline);
    fail_unsettled();
    elapsed = (double)(now_ns() - t0) / 1e9;
    done_msgs = (uint64_t)n_ready;
    /* Let the servers finish their bookkeeping (and Node its allocations) first. */
    loop_until(never, now_ns() + (uint64_t)o.settle_ms * 1000000u);
    for (int i = 0; i < o.n_rss; i++) rss[i].after_kb = read_rss_kb(o.rss_pid[i]);
    if (o.hold > 0) loop_until(never, now_ns() + (uint64_t)(o.hold * 1e9));
    close_all();
  }
  if (interrupted) fprintf(stderr, "loadgen: interrupted\n");

  report(elapsed, rss);
  uint64_t nfailed = 0;
  for (int i = 0; i < F__COUNT; i++) nfailed += failed[i];
  for (int i = 0; i < ncs; i++) conn_close_fd(&cs[i]);
  close(ep);
  free(tsend_all);
  free(cs);
  free(rbuf);
  return (corrupt || nfailed || interrupted) ? 1 : 0;
}
