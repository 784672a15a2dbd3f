/* metrics.c: see metrics.h. */
#include "metrics.h"

#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "errors.h"
#include "fdlimit.h"
#include "log.h"
#include "router.h"
#include "wire.h"

#define GONE_REASONS 16
#define ACCEPT_ERRNOS 8

/* Upper bounds of the loop turn histogram, seconds. */
static const double turn_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                     0.025,  0.05,    0.1,    0.25,  0.5,    1,     2.5};
#define TURN_BUCKETS (sizeof turn_bounds / sizeof turn_bounds[0])

/* Why a socket closed (the label of netcore_sockets_closed_total). */
enum { CLOSE_FINISHED, CLOSE_ERROR, CLOSE_DESTROYED, CLOSE_CUT, CLOSE_OWNER_GONE, CLOSE_KINDS };
static const char *const close_names[CLOSE_KINDS] = {"finished", "error", "destroyed", "cut",
                                                     "owner_gone"};
static const char *const refusal_names[NCD_REFUSED_KINDS] = {"max_connections", "fd_reserve",
                                                             "fd_passed", "no_member"};
enum { OPEN_ACCEPTED, OPEN_CONNECTED, OPEN_RECEIVED, OPEN_KINDS };
static const char *const open_names[OPEN_KINDS] = {"accepted", "connected", "received"};

/* What no live object remembers: moments, and the totals of what is gone. */
static struct {
  uint64_t opened[OPEN_KINDS];
  uint64_t closed[CLOSE_KINDS];
  uint64_t refused[NCD_REFUSED_KINDS];
  int accept_errno[ACCEPT_ERRNOS]; /* negative errnos; 0 = free slot */
  uint64_t accept_errors[ACCEPT_ERRNOS + 1];
  uint64_t auth_refused;
  uint64_t adopted; /* sockets handed from a gone handler to another (failover) */
  uint64_t piped;   /* bytes moved by pipes inside netcore */
  uint64_t joined;
  const char *gone_reason[GONE_REASONS];
  uint64_t gone[GONE_REASONS + 1];
  /* Totals of handlers already freed. */
  uint64_t freed_read, freed_written, freed_payload, freed_events;
  uint64_t freed_commands[NCD_METRICS_CMD_KINDS];
  const char *cmd_names[NCD_METRICS_CMD_KINDS];
  /* The loop turn histogram. */
  uint64_t turn_buckets[TURN_BUCKETS];
  uint64_t turns;
  double turn_sum;
  uint64_t last_check_ns, last_idle_ns;
  uint64_t start_ms;
  double start_time; /* Unix time, seconds */
  uv_check_t check;
  int started;
} m;

/* -------------------------------------------------------------- loop turns */

/* A loop turn is the time from one check phase to the next without the time
 * spent waiting for I/O (libuv's idle time): what netcore spent working. */
static void check_cb(uv_check_t *c) {
  uint64_t now = uv_hrtime(), idle = uv_metrics_idle_time(ncd.loop);
  if (m.last_check_ns) {
    uint64_t span = now - m.last_check_ns, waited = idle - m.last_idle_ns;
    double secs = (double)(span > waited ? span - waited : 0) / 1e9;
    size_t b = 0;
    while (b < TURN_BUCKETS && secs > turn_bounds[b]) b++;
    if (b < TURN_BUCKETS) m.turn_buckets[b]++;
    m.turns++;
    m.turn_sum += secs;
  }
  m.last_check_ns = now;
  m.last_idle_ns = idle;
}

int ncd_metrics_start(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  m.start_time = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
  m.start_ms = uv_now(ncd.loop);
  int rc = ncd_uv_check(uv_check_init(ncd.loop, &m.check), "make the loop turn check");
  if (rc == 0) rc = ncd_uv_check(uv_check_start(&m.check, check_cb), "start the loop turn check");
  if (rc != 0) return rc;
  uv_unref((uv_handle_t *)&m.check);
  m.started = 1;
  return 0;
}

void ncd_metrics_stop(void) {
  if (m.started) uv_close((uv_handle_t *)&m.check, NULL);
  m.started = 0;
}

/* -------------------------------------------------------------- hooks */

/* "127.0.0.1:8124", "[::1]:8124" or a UNIX path ("" when unnamed). */
static void addr_text(const ncc_addr *a, char *out, size_t cap) {
  if (a->family == NCC_FAMILY_IPV4)
    snprintf(out, cap, "%s:%u", a->address, a->port);
  else if (a->family == NCC_FAMILY_IPV6)
    snprintf(out, cap, "[%s]:%u", a->address, a->port);
  else
    snprintf(out, cap, "%s", a->address);
}

static void socket_addrs(ncd_socket *s, char *local, char *remote, size_t cap) {
  uv_os_fd_t fd = -1;
  ncc_addr a;
  *local = *remote = 0;
  if (uv_fileno(&s->h.handle, &fd) != 0) return;
  if (ncd_addr_of_fd(fd, 0, &a) == 0) addr_text(&a, local, cap);
  if (ncd_addr_of_fd(fd, 1, &a) == 0) addr_text(&a, remote, cap);
}

void ncd_metrics_handler_joined(ncd_handler *h) {
  h->stats.joined_ms = uv_now(ncd.loop);
  m.joined++;
  ncd_log_event(NCD_LOG_INFO, 1, "handler_joined", "handler=%s prefix=%u principal=%s", h->name,
                h->prefix, h->principal);
}

void ncd_metrics_handler_gone(ncd_handler *h, const char *reason) {
  size_t i = 0;
  while (i < GONE_REASONS && m.gone_reason[i] && strcmp(m.gone_reason[i], reason) != 0) i++;
  if (i < GONE_REASONS && !m.gone_reason[i]) m.gone_reason[i] = reason;
  m.gone[i]++;
  ncd_log_event(NCD_LOG_INFO, 1, "handler_gone",
                "handler=%s prefix=%u principal=%s reason=%s session_s=%.3f sockets=%u servers=%u",
                h->name, h->prefix, h->principal, reason,
                (double)(uv_now(ncd.loop) - h->stats.joined_ms) / 1e3, h->nsockets, h->nservers);
}

void ncd_metrics_handler_freed(ncd_handler *h) {
  m.freed_read += h->stats.closed_read;
  m.freed_written += h->stats.closed_written;
  m.freed_payload += h->stats.payload_bytes;
  m.freed_events += h->stats.events;
  for (size_t k = 0; k < NCD_METRICS_CMD_KINDS; k++) m.freed_commands[k] += h->stats.commands[k];
}

void ncd_metrics_command(ncd_handler *h, int kind, const char *name, size_t payload_len) {
  if (kind < 0 || kind >= NCD_METRICS_CMD_KINDS) return;
  m.cmd_names[kind] = name;
  h->stats.commands[kind]++;
  h->stats.payload_bytes += payload_len;
}

void ncd_metrics_event(ncd_handler *h, const ncc_event *ev) {
  h->stats.events++;
  const char *code = NULL;
  if (ev->kind == NCC_EV_ERROR || ev->kind == NCC_EV_SOCKET_ERROR ||
      ev->kind == NCC_EV_SERVER_ERROR)
    code = ev->code;
  if (!code) return;
  size_t i = 0;
  while (i < NCD_METRICS_CODES && h->stats.codes[i] && strcmp(h->stats.codes[i], code) != 0) i++;
  if (i < NCD_METRICS_CODES && !h->stats.codes[i]) h->stats.codes[i] = code;
  h->stats.code_counts[i]++;
}

void ncd_metrics_socket_opened(ncd_socket *s, const char *how) {
  s->opened_ms = uv_now(ncd.loop);
  int k = strcmp(how, "accepted") == 0    ? OPEN_ACCEPTED
          : strcmp(how, "connected") == 0 ? OPEN_CONNECTED
                                          : OPEN_RECEIVED;
  m.opened[k]++;
  if (!ncd_log_enabled(NCD_LOG_DEBUG)) return;
  char local[128], remote[128];
  socket_addrs(s, local, remote, sizeof local);
  ncd_log_event(NCD_LOG_DEBUG, 1, "connection_opened",
                "socket=%llu how=%s owner=%s prefix=%u local=%s remote=%s",
                (unsigned long long)s->id, how, s->owner->name, s->owner->prefix, local, remote);
}

void ncd_metrics_socket_closed(ncd_socket *s) {
  int why = s->close_code                ? CLOSE_ERROR
            : !s->notify                 ? CLOSE_OWNER_GONE
            : s->had_error               ? CLOSE_CUT
            : s->eof && s->shutdown_done ? CLOSE_FINISHED
                                         : CLOSE_DESTROYED;
  m.closed[why]++;
  s->owner->stats.closed_read += s->bytes_read;
  s->owner->stats.closed_written += s->bytes_written;
  if (!ncd_log_enabled(NCD_LOG_DEBUG)) return;
  char local[128], remote[128];
  socket_addrs(s, local, remote, sizeof local);
  uint64_t since = s->opened_ms ? s->opened_ms : uv_now(ncd.loop);
  ncd_log_event(NCD_LOG_DEBUG, 1, "connection_closed",
                "socket=%llu owner=%s prefix=%u local=%s remote=%s bytes_read=%llu "
                "bytes_written=%llu duration_s=%.3f reason=%s code=%s",
                (unsigned long long)s->id, s->owner->name, s->owner->prefix, local, remote,
                (unsigned long long)s->bytes_read, (unsigned long long)s->bytes_written,
                (double)(uv_now(ncd.loop) - since) / 1e3, close_names[why],
                s->close_code ? s->close_code : "");
}

void ncd_metrics_refused(enum ncd_refusal why) {
  if ((unsigned)why >= NCD_REFUSED_KINDS) return;
  m.refused[why]++;
  ncd_log_event(NCD_LOG_DEBUG, 1, "connection_refused", "reason=%s", refusal_names[why]);
}

void ncd_metrics_accept_error(int err) {
  size_t i = 0;
  while (i < ACCEPT_ERRNOS && m.accept_errno[i] && m.accept_errno[i] != err) i++;
  if (i < ACCEPT_ERRNOS && !m.accept_errno[i]) m.accept_errno[i] = err;
  m.accept_errors[i]++;
  ncd_log_event(NCD_LOG_DEBUG, 1, "accept_failed", "errno=%s", ncd_err_name(err));
}

void ncd_metrics_auth_refused(void) {
  m.auth_refused++;
}

/* -------------------------------------------------------------- the set */

static int grow(void **arr, size_t *cap, size_t n, size_t size) {
  if (n < *cap) return 0;
  size_t c = *cap ? *cap * 2 : 64;
  void *p = realloc(*arr, c * size);
  if (!p) return -1;
  *arr = p;
  *cap = c;
  return 0;
}

static size_t add_text(ncd_mset *set, const char *s) {
  size_t len = strlen(s) + 1;
  while (set->ntext + len > set->captext) {
    size_t c = set->captext ? set->captext * 2 : 4096;
    char *p = realloc(set->text, c);
    if (!p) {
      set->oom = 1;
      return 0;
    }
    set->text = p;
    set->captext = c;
  }
  memcpy(set->text + set->ntext, s, len);
  set->ntext += len;
  return set->ntext - len;
}

static void family(ncd_mset *set, const char *name, const char *type, const char *help) {
  if (set->oom || grow((void **)&set->fam, &set->capfam, set->nfam, sizeof *set->fam) != 0) {
    set->oom = 1;
    return;
  }
  set->fam[set->nfam++] = (ncd_mfamily){
      .name = name, .help = help, .type = type, .first_sample = set->nsmp, .nsamples = 0};
}

/* A sample of the current family: nlabels pairs of (static name, value). */
static void sample(ncd_mset *set, const char *suffix, double value, int nlabels, ...) {
  if (set->oom || !set->nfam ||
      grow((void **)&set->smp, &set->capsmp, set->nsmp, sizeof *set->smp) != 0) {
    set->oom = 1;
    return;
  }
  ncd_msample *s = &set->smp[set->nsmp];
  *s = (ncd_msample){.suffix = suffix, .first_label = set->nlab, .value = value};
  va_list ap;
  va_start(ap, nlabels);
  for (int i = 0; i < nlabels; i++) {
    const char *name = va_arg(ap, const char *), *v = va_arg(ap, const char *);
    if (grow((void **)&set->lab, &set->caplab, set->nlab, sizeof *set->lab) != 0) {
      set->oom = 1;
      break;
    }
    set->lab[set->nlab++] = (ncd_mlabel){.name = name, .value = add_text(set, v)};
    s->nlabels++;
  }
  va_end(ap);
  set->nsmp++;
  set->fam[set->nfam - 1].nsamples++;
}

#define GAUGE(set, name, help, v) \
  (family(set, name, "gauge", help), sample(set, "", (double)(v), 0))
#define COUNTER(set, name, help, v) \
  (family(set, name, "counter", help), sample(set, "", (double)(v), 0))

/* Runs the statements once per live handler with h and its labels pfx (prefix text). */
#define EACH_HANDLER(h, pfx, ...)                                              \
  for (ncc_list *l_ = ncd.handlers.next; l_ != &ncd.handlers; l_ = l_->next) { \
    ncd_handler *h = ncc_container_of(l_, ncd_handler, link);                  \
    if (h->gone) continue;                                                     \
    char pfx[16];                                                              \
    snprintf(pfx, sizeof pfx, "%u", h->prefix);                                \
    __VA_ARGS__                                                                \
  }

/* What a handler's live sockets hold now. */
typedef struct live {
  uint64_t read, written, credit, queued;
} live;

static live live_of(const ncd_handler *h) {
  live v = {0};
  for (ncc_list *e = h->sockets.next; e != &h->sockets; e = e->next) {
    const ncd_socket *s = ncc_container_of(e, ncd_socket, owner_link);
    if (s->closing) continue; /* already in closed_read/closed_written */
    v.read += s->bytes_read;
    v.written += s->bytes_written;
    v.credit += s->credit;
    v.queued += s->queued_bytes + s->pending_bytes;
  }
  return v;
}

static void process_metrics(ncd_mset *set) {
  long pages = 0, rss = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f) {
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
    fclose(f);
  }
  GAUGE(set, "netcore_resident_memory_bytes", "Resident set size of the netcore process.",
        (double)rss * (double)sysconf(_SC_PAGESIZE));
  int fds = 0;
  DIR *d = opendir("/proc/self/fd");
  if (d) {
    for (struct dirent *e; (e = readdir(d));)
      if (e->d_name[0] != '.') fds++;
    closedir(d);
    fds--; /* the directory's own */
  }
  GAUGE(set, "netcore_open_fds", "Open file descriptors of the netcore process.", fds);
  struct rlimit rl;
  double maxfds =
      getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY ? (double)rl.rlim_cur : 0;
  GAUGE(set, "netcore_max_fds", "RLIMIT_NOFILE of the netcore process (after raising it).", maxfds);
}

void ncd_metrics_piped(uint64_t n) { m.piped += n; }

void ncd_metrics_adopted(ncd_handler *from, ncd_handler *to) {
  (void)from;
  to->stats.adopted++;
  m.adopted++;
}

static void global_metrics(ncd_mset *set) {
  family(set, "netcore_info", "gauge", "netcore's version and instance id (always 1).");
  sample(set, "", 1, 2, "version", NCD_VERSION, "instance", ncd.instance_id);
  GAUGE(set, "netcore_start_time_seconds", "When netcore started, Unix time.", m.start_time);
  process_metrics(set);

  family(set, "netcore_connections_opened_total", "counter",
         "Sockets netcore opened: accepted, connected (Connect) or received (fd passing).");
  for (int k = 0; k < OPEN_KINDS; k++)
    sample(set, "", (double)m.opened[k], 1, "how", open_names[k]);
  COUNTER(set, "netcore_sockets_adopted_total",
          "Sockets handed from a handler that went to one that adopted them (failover).",
          m.adopted);
  family(set, "netcore_connections_refused_total", "counter",
         "Connections (or received fds) closed at once, by reason.");
  for (int k = 0; k < NCD_REFUSED_KINDS; k++)
    sample(set, "", (double)m.refused[k], 1, "reason", refusal_names[k]);
  family(set, "netcore_accept_errors_total", "counter",
         "accept() failures that paused accepting, by errno.");
  for (size_t i = 0; i < ACCEPT_ERRNOS && m.accept_errno[i]; i++)
    sample(set, "", (double)m.accept_errors[i], 1, "errno", ncd_err_name(m.accept_errno[i]));
  if (m.accept_errors[ACCEPT_ERRNOS])
    sample(set, "", (double)m.accept_errors[ACCEPT_ERRNOS], 1, "errno", "other");
  COUNTER(set, "netcore_handler_links_refused_total",
          "Handler connections refused by authentication (uid, CURVE key, mechanism).",
          m.auth_refused);
  family(set, "netcore_sockets_closed_total", "counter", "Sockets closed, by reason.");
  for (int k = 0; k < CLOSE_KINDS; k++)
    sample(set, "", (double)m.closed[k], 1, "reason", close_names[k]);

  uint64_t st[4] = {0}; /* connecting, open, half_closed, closing */
  uint64_t read = m.freed_read, written = m.freed_written, queued = 0, nh = 0, npipes = 0;
  for (ncc_list *l = ncd.handlers.next; l != &ncd.handlers; l = l->next) {
    ncd_handler *h = ncc_container_of(l, ncd_handler, link);
    read += h->stats.closed_read;
    written += h->stats.closed_written;
    if (!h->gone) nh++;
    for (ncc_list *e = h->sockets.next; e != &h->sockets; e = e->next) {
      ncd_socket *s = ncc_container_of(e, ncd_socket, owner_link);
      st[s->closing ? 3 : s->connecting ? 0 : (s->eof || s->ended) ? 2 : 1]++;
      if (s->closing) continue;
      npipes += s->pipe != NULL;
      read += s->bytes_read;
      written += s->bytes_written;
      queued += s->queued_bytes + s->pending_bytes;
    }
  }
  family(set, "netcore_sockets", "gauge", "Sockets netcore holds, by state.");
  static const char *const states[] = {"connecting", "open", "half_closed", "closing"};
  for (int k = 0; k < 4; k++) sample(set, "", (double)st[k], 1, "state", states[k]);
  GAUGE(set, "netcore_max_connections", "Most sockets netcore holds (--max-connections).",
        ncd.cfg.max_connections);
  COUNTER(set, "netcore_read_bytes_total", "Bytes read from all sockets.", read);
  COUNTER(set, "netcore_written_bytes_total", "Bytes written to all sockets (reached the kernel).",
          written);
  GAUGE(set, "netcore_write_queue_bytes", "Bytes waiting in all sockets' write queues.", queued);
  GAUGE(set, "netcore_pipes", "Pipes inside netcore now (PROTOCOL.md 17), by source socket.", npipes);
  COUNTER(set, "netcore_piped_bytes_total",
          "Bytes pipes inside netcore moved from one socket into another's write queue.", m.piped);
  GAUGE(set, "netcore_write_memory_bytes",
        "Memory all write queues hold, with overhead (what --max-memory bounds).",
        ncd.write_memory);
  GAUGE(set, "netcore_write_memory_limit_bytes", "--max-memory.", ncd.cfg.max_memory);
  GAUGE(set, "netcore_handler_budget_bytes",
        "--handler-budget: bytes sent toward one handler and not yet taken before it is throttled.",
        ncd.cfg.handler_budget);

  GAUGE(set, "netcore_handlers", "Handlers connected now.", nh);
  COUNTER(set, "netcore_handlers_joined_total", "Handlers that said Hello.", m.joined);
  family(set, "netcore_handlers_gone_total", "counter", "Handlers that went away, by reason.");
  for (size_t i = 0; i < GONE_REASONS && m.gone_reason[i]; i++)
    sample(set, "", (double)m.gone[i], 1, "reason", m.gone_reason[i]);
  if (m.gone[GONE_REASONS]) sample(set, "", (double)m.gone[GONE_REASONS], 1, "reason", "other");

  family(set, "netcore_listeners", "gauge",
         "Listening sockets, with their member servers and connections.");
  uint64_t nl = 0;
  for (ncc_list *l = ncd.listeners.next; l != &ncd.listeners; l = l->next) nl++;
  sample(set, "", (double)nl, 0);
  family(set, "netcore_listener_connections", "gauge", "Live connections of a listener.");
  for (ncc_list *l = ncd.listeners.next; l != &ncd.listeners; l = l->next) {
    ncd_listener *li = ncc_container_of(l, ncd_listener, link);
    uint64_t conns = 0, members = 0;
    for (ncc_list *e = li->members.next; e != &li->members; e = e->next) {
      conns += ncc_container_of(e, ncd_server, member_link)->connections;
      members++;
    }
    char mem[16];
    snprintf(mem, sizeof mem, "%llu", (unsigned long long)members);
    sample(set, "", (double)conns, 3, "listener", li->key, "group", li->group, "members", mem);
  }

  family(set, "netcore_loop_turn_seconds", "histogram",
         "Time one turn of netcore's event loop spent working (waiting for I/O excluded).");
  uint64_t cum = 0;
  for (size_t b = 0; b < TURN_BUCKETS; b++) {
    char le[32];
    snprintf(le, sizeof le, "%g", turn_bounds[b]);
    cum += m.turn_buckets[b];
    sample(set, "_bucket", (double)cum, 1, "le", le);
  }
  sample(set, "_bucket", (double)m.turns, 1, "le", "+Inf");
  sample(set, "_sum", m.turn_sum, 0);
  sample(set, "_count", (double)m.turns, 0);
}

static void handler_metrics(ncd_mset *set) {
  uint64_t now = uv_now(ncd.loop);
  family(set, "netcore_handler_info", "gauge", "A connected handler (always 1).");
  EACH_HANDLER(h, pfx,
               sample(set, "", 1, 3, "handler", h->name, "prefix", pfx, "principal", h->principal);)
  family(set, "netcore_handler_sockets", "gauge", "Sockets a handler owns.");
  EACH_HANDLER(h, pfx, sample(set, "", h->nsockets, 2, "handler", h->name, "prefix", pfx);)
  family(set, "netcore_handler_servers", "gauge", "Servers a handler owns.");
  EACH_HANDLER(h, pfx, sample(set, "", h->nservers, 2, "handler", h->name, "prefix", pfx);)
  family(set, "netcore_handler_read_bytes_total", "counter",
         "Bytes read from a handler's sockets (sent toward it as Data).");
  EACH_HANDLER(h, pfx,
               sample(set, "", (double)(h->stats.closed_read + live_of(h).read), 2, "handler",
                      h->name, "prefix", pfx);)
  family(set, "netcore_handler_written_bytes_total", "counter",
         "Bytes a handler wrote to its sockets that reached the kernel.");
  EACH_HANDLER(h, pfx,
               sample(set, "", (double)(h->stats.closed_written + live_of(h).written), 2, "handler",
                      h->name, "prefix", pfx);)
  family(set, "netcore_handler_payload_bytes_total", "counter",
         "Bytes of payload frames a handler sent (Write, End).");
  EACH_HANDLER(
      h, pfx,
      sample(set, "", (double)h->stats.payload_bytes, 2, "handler", h->name, "prefix", pfx);)
  family(set, "netcore_handler_adopted_sockets_total", "counter",
         "Sockets a handler adopted from one that went (failover).");
  EACH_HANDLER(h, pfx,
               sample(set, "", (double)h->stats.adopted, 2, "handler", h->name, "prefix", pfx);)
  family(set, "netcore_handler_events_total", "counter",
         "Events (messages) sent toward a handler.");
  EACH_HANDLER(h, pfx,
               sample(set, "", (double)h->stats.events, 2, "handler", h->name, "prefix", pfx);)
  family(set, "netcore_handler_commands_total", "counter", "Commands a handler sent, by kind.");
  EACH_HANDLER(h, pfx,
               for (int k = 0; k < NCD_METRICS_CMD_KINDS; k++) if (h->stats.commands[k])
                   sample(set, "", (double)h->stats.commands[k], 3, "handler", h->name, "prefix",
                          pfx, "command", m.cmd_names[k]);)
  family(set, "netcore_handler_errors_total", "counter",
         "Errors sent to a handler (Error, SocketError, ServerError), by code.");
  EACH_HANDLER(h, pfx,
               for (int k = 0; k < NCD_METRICS_CODES && h->stats.codes[k]; k++)
                   sample(set, "", (double)h->stats.code_counts[k], 3, "handler", h->name, "prefix",
                          pfx, "code", h->stats.codes[k]);
               if (h->stats.code_counts[NCD_METRICS_CODES])
                   sample(set, "", (double)h->stats.code_counts[NCD_METRICS_CODES], 3, "handler",
                          h->name, "prefix", pfx, "code", "other");)
  family(set, "netcore_handler_queued_bytes", "gauge",
         "Bytes sent toward a handler that it has not taken yet (netcore's queue, ZeroMQ's pipe).");
  EACH_HANDLER(
      h, pfx,
      sample(set, "", (double)ncd_tally_in_flight(h->tally), 2, "handler", h->name, "prefix", pfx);)
  family(set, "netcore_handler_queued_messages", "gauge",
         "Messages waiting in netcore's own queue behind a handler's full pipe.");
  EACH_HANDLER(h, pfx, sample(set, "", (double)h->outq_len, 2, "handler", h->name, "prefix", pfx);)
  family(set, "netcore_handler_credit_bytes", "gauge",
         "Read credit outstanding over a handler's sockets: bytes netcore may still send it.");
  EACH_HANDLER(h, pfx,
               sample(set, "", (double)live_of(h).credit, 2, "handler", h->name, "prefix", pfx);)
  family(set, "netcore_handler_write_queue_bytes", "gauge",
         "Bytes waiting in the write queues of a handler's sockets.");
  EACH_HANDLER(h, pfx,
               sample(set, "", (double)live_of(h).queued, 2, "handler", h->name, "prefix", pfx);)
  family(set, "netcore_handler_blocked", "gauge",
         "1 while a handler's ZeroMQ pipe is full (its sockets are not read).");
  EACH_HANDLER(h, pfx, sample(set, "", h->blocked, 2, "handler", h->name, "prefix", pfx);)
  family(set, "netcore_handler_over_budget", "gauge",
         "1 while a handler is over --handler-budget (its sockets are not read).");
  EACH_HANDLER(h, pfx, sample(set, "", h->over_budget, 2, "handler", h->name, "prefix", pfx);)
  family(set, "netcore_handler_session_seconds", "gauge", "How long ago a handler said Hello.");
  EACH_HANDLER(h, pfx,
               sample(set, "", (double)(now - h->stats.joined_ms) / 1e3, 2, "handler", h->name,
                      "prefix", pfx);)
}

int ncd_metrics_collect(ncd_mset *set) {
  memset(set, 0, sizeof *set);
  set->uptime_ms = uv_now(ncd.loop) - m.start_ms;
  set->instance_id = ncd.instance_id;
  add_text(set, ""); /* offset 0 is "" */
  global_metrics(set);
  handler_metrics(set);
  if (set->oom) {
    ncd_mset_free(set);
    return NCD_ENOMEM;
  }
  return 0;
}

void ncd_mset_free(ncd_mset *set) {
  free(set->fam);
  free(set->smp);
  free(set->lab);
  free(set->text);
  memset(set, 0, sizeof *set);
}

/* -------------------------------------------------------------- exposition */

typedef struct buf {
  char *p;
  size_t n, cap;
  int oom;
} buf;

static void bput(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bput(buf *b, const char *fmt, ...) {
  for (;;) {
    if (b->oom) return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
    va_end(ap);
    if (k >= 0 && b->n + (size_t)k < b->cap) {
      b->n += (size_t)k;
      return;
    }
    size_t c = b->cap * 2 + (size_t)(k > 0 ? k : 0);
    char *p = realloc(b->p, c);
    if (!p) {
      b->oom = 1;
      return;
    }
    b->p = p;
    b->cap = c;
  }
}

/* Text with the exposition format's escapes: \\ and \n, and \" in label values. */
static void bput_escaped(buf *b, const char *s, int quotes) {
  for (; *s; s++) {
    if (*s == '\\')
      bput(b, "\\\\");
    else if (*s == '\n')
      bput(b, "\\n");
    else if (*s == '"' && quotes)
      bput(b, "\\\"");
    else
      bput(b, "%c", *s);
  }
}

static void bput_value(buf *b, double v) {
  if (isinf(v))
    bput(b, v > 0 ? "+Inf" : "-Inf");
  else if (isnan(v))
    bput(b, "NaN");
  else if (v == floor(v) && fabs(v) < 9007199254740992.0)
    bput(b, "%.0f", v);
  else
    bput(b, "%.15g", v);
}

int ncd_metrics_render(const ncd_mset *set, char **out, size_t *len) {
  buf b = {.p = malloc(16384), .cap = 16384};
  if (!b.p) return NCD_ENOMEM;
  b.p[0] = 0;
  for (size_t f = 0; f < set->nfam; f++) {
    const ncd_mfamily *mf = &set->fam[f];
    bput(&b, "# HELP %s ", mf->name);
    bput_escaped(&b, mf->help, 0);
    bput(&b, "\n# TYPE %s %s\n", mf->name, mf->type);
    for (size_t i = mf->first_sample; i < mf->first_sample + mf->nsamples; i++) {
      const ncd_msample *s = &set->smp[i];
      bput(&b, "%s%s", mf->name, s->suffix);
      for (size_t k = 0; k < s->nlabels; k++) {
        const ncd_mlabel *l = &set->lab[s->first_label + k];
        bput(&b, "%s%s=\"", k ? "," : "{", l->name);
        bput_escaped(&b, ncd_mset_text(set, l->value), 1);
        bput(&b, "\"");
      }
      bput(&b, "%s ", s->nlabels ? "}" : "");
      bput_value(&b, s->value);
      bput(&b, "\n");
    }
  }
  if (b.oom) {
    free(b.p);
    return NCD_ENOMEM;
  }
  *out = b.p;
  *len = b.n;
  return 0;
}

/* -------------------------------------------------------------- Stats */

/* The Stats message's view of set (common/protocol.h): families, samples
 * with their full names, labels, in one allocation (*mem, freed by the
 * caller). Returns 0 or NCD_ENOMEM. */
static int stats_view(const ncd_mset *set, ncc_stats *out, void **mem) {
  size_t names = 0;
  for (size_t f = 0; f < set->nfam; f++)
    for (size_t i = 0; i < set->fam[f].nsamples; i++)
      names += strlen(set->fam[f].name) + strlen(set->smp[set->fam[f].first_sample + i].suffix) + 1;
  size_t need = set->nfam * sizeof(ncc_stats_family) + set->nsmp * sizeof(ncc_stats_sample) +
                set->nlab * sizeof(ncc_stats_label);
  char *block = malloc(need + names + 1);
  if (block == NULL) return NCD_ENOMEM;
  ncc_stats_family *fams = (void *)block;
  ncc_stats_sample *smps = (void *)(fams + set->nfam);
  ncc_stats_label *labs = (void *)(smps + set->nsmp);
  char *text_at = (char *)(labs + set->nlab);
  for (size_t i = 0; i < set->nlab; i++) {
    labs[i].name = set->lab[i].name;
    labs[i].value = ncd_mset_text(set, set->lab[i].value);
  }
  for (size_t f = 0; f < set->nfam; f++) {
    const ncd_mfamily *mf = &set->fam[f];
    fams[f] = (ncc_stats_family){.name = mf->name, .help = mf->help, .type = mf->type,
                                 .samples = smps + mf->first_sample, .nsamples = mf->nsamples};
    for (size_t i = mf->first_sample; i < mf->first_sample + mf->nsamples; i++) {
      const ncd_msample *ms = &set->smp[i];
      smps[i] = (ncc_stats_sample){.name = text_at, .labels = labs + ms->first_label,
                                   .nlabels = ms->nlabels, .value = ms->value};
      text_at += sprintf(text_at, "%s%s", mf->name, ms->suffix) + 1;
    }
  }
  *out = (ncc_stats){.instance_id = set->instance_id, .uptime_ms = set->uptime_ms,
                     .families = fams, .nfamilies = set->nfam};
  *mem = block;
  return 0;
}

int ncd_metrics_send_stats(ncd_handler *h) {
  ncd_mset set;
  int rc = ncd_metrics_collect(&set);
  if (rc != 0) return rc;
  ncc_stats view;
  void *mem = NULL;
  rc = stats_view(&set, &view, &mem);
  if (rc == 0) {
    ncc_event ev = {.kind = NCC_EV_STATS, .stats = &view};
    ncd_router_send(h, &ev, NULL);
  }
  free(mem);
  ncd_mset_free(&set);
  return rc;
}
