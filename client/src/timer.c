/* timer.c: timers (a list sorted by due time: handlers have a handful, so a
 * heap would buy nothing) and signal watches (a self-pipe: the handler only
 * writes the signal number, the loop calls the callback). Loop thread only,
 * except the signal handler itself. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nc_int.h"

#define NSIGS 65

int nc_timer_new(nc_loop_t *loop, nc_timer_t **out) {
  if (loop == NULL || out == NULL) return NC_EINVAL;
  nc_timer_t *t = calloc(1, sizeof(*t));
  if (t == NULL) return NC_ENOMEM;
  t->loop = loop;
  ncc_list_init(&t->link);
  ncc_list_push(&loop->all_timers, &t->all);
  *out = t;
  return 0;
}

static void unlink_timer(nc_timer_t *t) {
  if (t->active) {
    ncc_list_remove(&t->link);
    t->active = 0;
    t->loop->refs--;
  }
}

static void insert_timer(nc_timer_t *t) {
  ncc_list *l = t->loop->timers.next;
  while (l != &t->loop->timers && ncc_container_of(l, nc_timer_t, link)->due <= t->due) l = l->next;
  ncc_list_push(l, &t->link); /* before l */
  t->active = 1;
  t->loop->refs++;
}

int nc_timer_start(nc_timer_t *t, nc_timer_cb cb, uint64_t timeout_ms, uint64_t repeat_ms) {
  if (t == NULL || cb == NULL || t->closing) return NC_EINVAL;
  unlink_timer(t);
  t->cb = cb;
  t->repeat = repeat_ms;
  t->due = nc__clock_ms() + timeout_ms;
  /* A timer (re)started by a timer callback waits for the next turn, even
   * with timeout 0, so a callback cannot starve the loop. */
  t->gen = t->loop->timer_gen;
  insert_timer(t);
  return 0;
}

void nc_timer_stop(nc_timer_t *t) {
  if (t != NULL) unlink_timer(t);
}

void nc_timer_close(nc_timer_t *t) {
  if (t == NULL) return;
  if (t->closing) return;
  unlink_timer(t);
  ncc_list_remove(&t->all);
  t->closing = 1;
  if (!t->running) free(t);
}

void nc_timer_set_data(nc_timer_t *t, void *data) { t->data = data; }
void *nc_timer_get_data(const nc_timer_t *t) { return t->data; }

void nc__timers_run(nc_loop_t *loop) {
  uint64_t gen = ++loop->timer_gen;
  for (;;) {
    ncc_list *l = loop->timers.next;
    if (l == &loop->timers) break;
    nc_timer_t *t = ncc_container_of(l, nc_timer_t, link);
    if (t->due > loop->now || t->gen == gen) break;
    unlink_timer(t);
    if (t->repeat > 0) {
      t->due = loop->now + t->repeat;
      t->gen = gen;
      insert_timer(t);
    }
    t->running = 1;
    t->cb(t);
    t->running = 0;
    if (t->closing) free(t);
  }
}

int nc__timers_next(nc_loop_t *loop) {
  if (ncc_list_empty(&loop->timers)) return -1;
  nc_timer_t *t = ncc_container_of(loop->timers.next, nc_timer_t, link);
  if (t->due <= loop->now) return 0;
  uint64_t d = t->due - loop->now;
  return d > 1000000000u ? 1000000000 : (int)d;
}

void nc__timers_free(nc_loop_t *loop) {
  while (!ncc_list_empty(&loop->all_timers)) {
    nc_timer_t *t = ncc_container_of(loop->all_timers.next, nc_timer_t, all);
    unlink_timer(t);
    ncc_list_remove(&t->all);
    free(t);
  }
}

/* ---------------------------------------------------------------- signals */

/* Per signal number, the write end of the watching loop's self-pipe. */
static volatile int sig_wake_fd[NSIGS];
static nc_loop_t *sig_owner[NSIGS];

static void on_signal(int signum) {
  int saved = errno;
  if (signum > 0 && signum < NSIGS && sig_wake_fd[signum] > 0) {
    unsigned char b = (unsigned char)signum;
    ssize_t n = write(sig_wake_fd[signum], &b, 1);
    (void)n; /* a full pipe already wakes the loop */
  }
  errno = saved;
}

int nc_loop_signal(nc_loop_t *loop, int signum, nc_signal_cb cb, void *arg) {
  if (loop == NULL || signum <= 0 || signum >= NSIGS) return NC_EINVAL;
  if (sig_owner[signum] != NULL && sig_owner[signum] != loop) return NC_EBUSY;
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sigemptyset(&sa.sa_mask);
  if (cb == NULL) {
    sa.sa_handler = SIG_DFL;
    sig_wake_fd[signum] = 0;
    sig_owner[signum] = NULL;
  } else {
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sig_wake_fd[signum] = loop->wake[1];
    sig_owner[signum] = loop;
  }
  loop->sig_cb[signum] = cb;
  loop->sig_arg[signum] = arg;
  if (sigaction(signum, &sa, NULL) != 0) return NC_EINVAL;
  return 0;
}

void nc__signals_dispatch(nc_loop_t *loop) {
  unsigned char buf[64];
  ssize_t n;
  while ((n = read(loop->wake[0], buf, sizeof(buf))) > 0) {
    for (ssize_t i = 0; i < n; i++) {
      int s = buf[i];
      if (s > 0 && s < NSIGS && loop->sig_cb[s] != NULL) loop->sig_cb[s](loop, s, loop->sig_arg[s]);
    }
  }
}

void nc__signals_reset(nc_loop_t *loop) {
  for (int s = 1; s < NSIGS; s++)
    if (sig_owner[s] == loop) nc_loop_signal(loop, s, NULL, NULL);
}
