/* nct.h: helpers for libnc's tests: start and stop the real netcore binary
 * in a private temporary directory, make loops against it, run a loop with
 * a guard against hangs, and plain blocking sockets for the "other side" of
 * a connection (often run in a helper thread while the test runs its loop).
 * The netcore binary's path is compiled in (NETCORE_BIN) or taken from the
 * NETCORE_BIN environment variable. Test threads only; not thread-safe. */
#ifndef NCT_H
#define NCT_H

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cmocka.h>

#include "nc/nc.h"
#include "nct_launch.h"

/* A netcore of a test (tests/support/nct_launch.h): pid, its private
 * temporary directory (removed at stop) and endpoint ipc://<dir>/nc.sock. */
typedef nct_launch nct_netcore_t;

/* Starts netcore with extra flags (NULL-terminated list, may be NULL) and
 * waits until it answers Hello. Fails the test if it cannot. */
void nct_netcore_start(nct_netcore_t *d, const char *const *flags);
/* The same without --bind: netcore's default endpoint with XDG_RUNTIME_DIR
 * set to the directory (d->endpoint is ipc://<dir>/netcore/netcore.sock). */
void nct_netcore_start_default(nct_netcore_t *d);
/* The netcore binary the tests run. */
const char *nct_netcore_bin(void);
/* SIGTERM and wait (SIGKILL after 10 s); removes the directory. */
void nct_netcore_stop(nct_netcore_t *d);
/* SIGKILL and wait; keeps the directory (call nct_netcore_stop after). */
void nct_netcore_kill(nct_netcore_t *d);
/* pid, a netcore of these helpers that the test reaped itself (one that
 * exited after a takeover), is no longer killed at exit. */
void nct_forget(pid_t pid);
/* Starts netcore again on d's endpoint (after nct_netcore_kill) with extra
 * flags (may be NULL) and waits until it answers Hello. */
void nct_netcore_restart(nct_netcore_t *d, const char *const *flags);
/* One netcore for a cmocka test group: nct_setup starts nct_daemon (no
 * extra flags), nct_teardown stops it. */
extern nct_netcore_t nct_daemon;
int nct_setup(void **state);
int nct_teardown(void **state);
/* <dir>/<name>, for UNIX socket paths of a test. */
void nct_path(const nct_netcore_t *d, const char *name, char *out, size_t cap);

/* A loop connected to d; fails the test on error. */
nc_loop_t *nct_loop(const nct_netcore_t *d);
/* Runs the loop; fails the test if it has not returned after max_ms (a
 * hang). Returns nc_loop_run's result. */
int nct_run(nc_loop_t *loop, unsigned max_ms);
/* nc_loop_run() until a callback calls nc_loop_stop() (nct_run ends only
 * when nothing is left); fails the test if that takes over max_ms. */
void nct_run_until_stop(nc_loop_t *loop, unsigned max_ms);

/* Blocking plain sockets on 127.0.0.1 / a UNIX path. */
int nct_tcp_connect(int port);
int nct_unix_connect(const char *path);
int nct_tcp_listen(int *port);
int nct_accept(int lfd);
/* Reads until EOF or cap bytes (timeout_ms without progress fails). */
size_t nct_read_all(int fd, void *buf, size_t cap, int timeout_ms);
void nct_write_all(int fd, const void *buf, size_t len);

/* Runs fn(arg) in a thread. */
pthread_t nct_thread(void *(*fn)(void *), void *arg);

/* Resident memory (VmRSS) and peak (VmHWM) of a process, in KiB. */
long nct_rss_kib(pid_t pid);
long nct_hwm_kib(pid_t pid);

uint64_t nct_now_ms(void);

/* In a forked child before exec: the environment test children run with
 * (under ASan: no quarantine, so memory bounds measure live memory). */
void nct_child_env(void);

#endif /* NCT_H */
