/* nct_launch.h: the one way the C tests start the real netcore.
 *
 * Used by the integration harness (tests/integration/harness.c), libnc's
 * test helpers (tests/client/nct.c) and through them the actors' tests. A
 * launch owns a private temp directory with the ipc endpoint inside, the
 * process it forked, and its reaping: every process still running and every
 * directory still there when the test program exits (a cmocka failure jumps
 * out of a test half-way) is killed, reaped and removed by an atexit hook.
 * The test's main thread only (one static table).
 */
#ifndef NCT_LAUNCH_H
#define NCT_LAUNCH_H

#include <stddef.h>
#include <sys/types.h>

/* The fields of a launch, also spelled out in harness.h's nct_daemon. */
#define NCT_LAUNCH_FIELDS                                           \
  pid_t pid;          /* the running netcore, 0 once reaped */      \
  int status;         /* its wait status once reaped */             \
  char dir[64];       /* its private directory ("" once removed) */ \
  char endpoint[160]; /* ipc://DIR/<sock> */

typedef struct nct_launch {
  NCT_LAUNCH_FIELDS
} nct_launch;

/* Makes a fresh l->dir (/tmp/nct-XXXXXX) and l->endpoint "ipc://DIR/<sock>";
 * l->pid is 0. The dir is removed at exit unless nct_launch_rmdir ran.
 * Returns 0 or -errno. */
int nct_launch_dir(nct_launch *l, const char *sock);

/* Forks and execs argv (argv[0] looked up in PATH) with envp (NULL: this
 * process's environment); in the child, setup(ctx) runs first if given (it
 * may arrange fds and limits, and _exit(126) if that fails). Sets l->pid; the
 * child is tracked until reaped. Returns 0 or -errno (fork). */
int nct_launch_spawn(nct_launch *l, char *const argv[], char *const envp[],
                     void (*setup)(void *ctx), void *ctx);

/* Waits until `bin --ping --endpoint l->endpoint` exits 0 (netcore answers
 * Hello there). Returns 0; -1 if netcore exited first (reaped, why says
 * how); -2 after timeout_ms (still running: the caller kills it). */
int nct_launch_wait_ready(nct_launch *l, const char *bin, int timeout_ms, char *why, size_t cap);

/* Sends sig (0: none, only waits) and waits up to timeout_ms for the exit,
 * then SIGKILL. Reaps
 * it; returns its wait status (also in l->status); *killed (may be NULL) is
 * 1 when SIGKILL was needed. No process: returns l->status. */
int nct_launch_stop(nct_launch *l, int sig, int timeout_ms, int *killed);

/* Stops tracking pid: the caller reaped it itself (waitpid), so the exit hook
 * must not kill a pid that may have been reused. */
void nct_launch_forget(pid_t pid);
/* SIGKILL and reap (no-op without a process); the directory stays. */
void nct_launch_kill(nct_launch *l);

/* Removes l->dir and everything in it. */
void nct_launch_rmdir(nct_launch *l);

/* Kills and reaps every launched process not reaped yet and removes every
 * directory not removed yet. Runs at exit; call it before an _exit. */
void nct_launch_cleanup(void);

/* "exit status 1", "killed by signal 9 (Killed)": a wait status in words. */
void nct_launch_describe(int status, char *buf, size_t cap);

#endif
