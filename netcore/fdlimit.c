/* fdlimit.c: see fdlimit.h. */
#include "fdlimit.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "daemon.h"
#include "errors.h"
#include "log.h"
#include "metrics.h"

#define RESERVE_MIN 64
#define RESERVE_FRACTION 32 /* the default reserve is at least limit / 32 */
#define REPORT_MS 1000      /* at most one report line a second */

static unsigned limit, reserve;

/* Counts since the last report line. */
static uint64_t refused[NCD_FD_NREFUSALS];
static uint64_t pauses;
static int pause_err;
static unsigned pause_ms;
static int resumed;

static uv_timer_t report_timer;
static int report_timer_ready;
static int reported_once;
static uint64_t last_report;

/* The hard limit may be RLIM_INFINITY; the kernel still refuses more than
 * fs.nr_open. */
static rlim_t nr_open(void) {
  FILE *f = fopen("/proc/sys/fs/nr_open", "r");
  unsigned long v = 0;
  if (f) {
    if (fscanf(f, "%lu", &v) != 1) v = 0;
    fclose(f);
  }
  return v ? (rlim_t)v : (rlim_t)1 << 20;
}

/* Redis's adjustOpenFilesLimit, aimed at the hard limit: try it, then step
 * down until the kernel agrees; never below what we had. */
static void raise_nofile(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
    ncd_warn("getrlimit(RLIMIT_NOFILE): %s; assuming 1024 descriptors", strerror(errno));
    limit = 1024;
    return;
  }
  rlim_t old = rl.rlim_cur, want = rl.rlim_max;
  if (want == RLIM_INFINITY || want > nr_open()) want = nr_open();
  if (old != RLIM_INFINITY && want > old) {
    int err = 0;
    for (rlim_t n = want; n > old; n = n - (n - old + 1) / 2) {
      struct rlimit next = {.rlim_cur = n, .rlim_max = rl.rlim_max};
      if (setrlimit(RLIMIT_NOFILE, &next) == 0) {
        rl.rlim_cur = n;
        break;
      }
      err = errno;
    }
    if (rl.rlim_cur == old)
      ncd_warn("could not raise RLIMIT_NOFILE from %llu (hard limit %llu): %s",
               (unsigned long long)old, (unsigned long long)rl.rlim_max, strerror(err));
    else
      ncd_info("RLIMIT_NOFILE raised from %llu to %llu", (unsigned long long)old,
               (unsigned long long)rl.rlim_cur);
  }
  rlim_t cur = rl.rlim_cur == RLIM_INFINITY ? nr_open() : rl.rlim_cur;
  limit = cur > UINT32_MAX / 2 ? UINT32_MAX / 2 : (unsigned)cur;
}

int ncd_fdlimit_init(ncd_config *cfg) {
  raise_nofile();
  reserve = cfg->fd_reserve;
  if (!reserve)
    reserve = limit / RESERVE_FRACTION > RESERVE_MIN ? limit / RESERVE_FRACTION : RESERVE_MIN;
  if (reserve >= limit) {
    ncd_error(
        "RLIMIT_NOFILE is %u: with a reserve of %u descriptors (--fd-reserve) none is left "
        "for connections; raise the hard limit (ulimit -Hn, systemd's LimitNOFILE=)",
        limit, reserve);
    return -1;
  }
  cfg->fd_reserve = reserve;
  uint32_t room = limit - reserve;
  if (cfg->max_connections > room)
    ncd_warn(
        "--max-connections %u lowered to %u: RLIMIT_NOFILE is %u and %u descriptors are kept "
        "in reserve (--fd-reserve)",
        cfg->max_connections, room, limit, reserve);
  if (!cfg->max_connections || cfg->max_connections > room) cfg->max_connections = room;
  ncd_info("descriptors: limit %u, %u in reserve, at most %u connections", limit, reserve,
           cfg->max_connections);
  return 0;
}

int ncd_fdlimit_in_reserve(int fd) {
  return fd >= 0 && (unsigned)fd >= limit - reserve / 2;
}

/* ---------------------------------------------------------------- reports */

/* Appends "; " and a formatted part to a report line (cut at cap). */
static void add(char *line, size_t cap, size_t *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void add(char *line, size_t cap, size_t *n, const char *fmt, ...) {
  if (*n && *n + 2 < cap) *n += (size_t)snprintf(line + *n, cap - *n, "; ");
  if (*n + 1 >= cap) return;
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(line + *n, cap - *n, fmt, ap);
  va_end(ap);
  if (k > 0) *n = *n + (size_t)k < cap ? *n + (size_t)k : cap - 1;
}

static void report(void) {
  char line[512] = "";
  size_t n = 0;
  if (refused[NCD_FD_MAX_CONNECTIONS])
    add(line, sizeof line, &n, "%llu connections closed at once (--max-connections %u reached)",
        (unsigned long long)refused[NCD_FD_MAX_CONNECTIONS], ncd.cfg.max_connections);
  if (refused[NCD_FD_RESERVE])
    add(line, sizeof line, &n,
        "%llu connections closed at once (fewer than %u of %u descriptors free)",
        (unsigned long long)refused[NCD_FD_RESERVE], reserve / 2, limit);
  if (refused[NCD_FD_PASSED])
    add(line, sizeof line, &n, "%llu received fds closed (--max-connections or the fd reserve)",
        (unsigned long long)refused[NCD_FD_PASSED]);
  if (pauses)
    add(line, sizeof line, &n,
        "accept failed with %s %llu times: accepting paused, next try in %u ms",
        ncd_err_name(pause_err), (unsigned long long)pauses, pause_ms);
  if (resumed) add(line, sizeof line, &n, "accepting again");
  memset(refused, 0, sizeof refused);
  pauses = 0;
  resumed = 0;
  reported_once = 1;
  last_report = uv_now(ncd.loop);
  if (n) ncd_warn("descriptors: %s", line);
}

static void report_cb(uv_timer_t *t) {
  report();
}

/* Reports now if the last line is a second old, else arms the timer so the
 * counts come out at most a second late. */
static void note(void) {
  uint64_t now = uv_now(ncd.loop);
  if (!reported_once || now - last_report >= REPORT_MS) {
    report();
    return;
  }
  if (!report_timer_ready) {
    if (ncd_uv_check(uv_timer_init(ncd.loop, &report_timer), "make the fd report timer") != 0) {
      report(); /* no timer: the counts come out now */
      return;
    }
    uv_unref((uv_handle_t *)&report_timer); /* never keeps the loop alive */
    report_timer_ready = 1;
  }
  if (!uv_is_active((uv_handle_t *)&report_timer) &&
      ncd_uv_check(uv_timer_start(&report_timer, report_cb, REPORT_MS - (now - last_report), 0),
                   "start the fd report timer") != 0)
    report();
}

void ncd_fdlimit_refused(enum ncd_fd_refusal why) {
  refused[why]++;
  ncd_metrics_refused((enum ncd_refusal)why);
  note();
}

void ncd_fdlimit_paused(int err, unsigned ms) {
  pauses++;
  ncd_metrics_accept_error(err);
  pause_err = err;
  pause_ms = ms;
  note();
}

void ncd_fdlimit_resumed(void) {
  resumed = 1;
  note();
}
