/* uvfail.c: an LD_PRELOAD shim for tests/integration/uv_failures.py.
 *
 * The libuv start call named by $NCT_UV_FAIL (uv_check_start, uv_poll_start,
 * uv_prepare_start, uv_timer_start, or uv_signal_start, which fails for
 * SIGTERM only) returns UV_EMFILE instead of running; every other call goes to
 * libuv. Only start calls are shimmed: libuv's own loop setup calls the init
 * functions, and they must keep working. Any thread (reads the environment). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static int failing(const char *name) {
  const char *f = getenv("NCT_UV_FAIL");
  return f && strcmp(f, name) == 0;
}

#define REAL(name) ((__typeof__(&name))dlsym(RTLD_NEXT, #name))

int uv_check_start(uv_check_t *h, uv_check_cb cb) {
  return failing("uv_check_start") ? UV_EMFILE : REAL(uv_check_start)(h, cb);
}

int uv_poll_start(uv_poll_t *h, int events, uv_poll_cb cb) {
  return failing("uv_poll_start") ? UV_EMFILE : REAL(uv_poll_start)(h, events, cb);
}

int uv_prepare_start(uv_prepare_t *h, uv_prepare_cb cb) {
  return failing("uv_prepare_start") ? UV_EMFILE : REAL(uv_prepare_start)(h, cb);
}

int uv_timer_start(uv_timer_t *h, uv_timer_cb cb, uint64_t timeout, uint64_t repeat) {
  return failing("uv_timer_start") ? UV_EMFILE : REAL(uv_timer_start)(h, cb, timeout, repeat);
}

int uv_signal_start(uv_signal_t *h, uv_signal_cb cb, int signum) {
  if (signum == SIGTERM && failing("uv_signal_start")) return UV_EMFILE;
  return REAL(uv_signal_start)(h, cb, signum);
}
