/* nct_launch.c: see nct_launch.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "nct_launch.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Processes and directories a test made and has not cleaned up yet. Copies,
 * not pointers: an nct_launch may live on the stack of a failed test. */
enum { MAX_LIVE = 64 };
static pid_t live_pids[MAX_LIVE];
static char live_dirs[MAX_LIVE][64];

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  remove(path);
  return 0;
}

static void rm_tree(const char *dir) {
  if (dir[0]) nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void nct_launch_cleanup(void) {
  for (int i = 0; i < MAX_LIVE; i++) {
    if (live_pids[i] > 0) {
      kill(live_pids[i], SIGKILL);
      waitpid(live_pids[i], NULL, 0);
      live_pids[i] = 0;
    }
  }
  for (int i = 0; i < MAX_LIVE; i++) {
    rm_tree(live_dirs[i]);
    live_dirs[i][0] = '\0';
  }
}

static void register_cleanup(void) {
  static int done;
  if (!done) {
    atexit(nct_launch_cleanup);
    done = 1;
  }
}

static void track_pid(pid_t pid, int add) {
  register_cleanup();
  for (int i = 0; i < MAX_LIVE; i++)
    if (add ? live_pids[i] == 0 : live_pids[i] == pid) {
      live_pids[i] = add ? pid : 0;
      return;
    }
}

static void track_dir(const char *dir, int add) {
  register_cleanup();
  for (int i = 0; i < MAX_LIVE; i++)
    if (add ? live_dirs[i][0] == '\0' : strcmp(live_dirs[i], dir) == 0) {
      snprintf(live_dirs[i], sizeof live_dirs[i], "%s", add ? dir : "");
      return;
    }
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(int ms) {
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

int nct_launch_dir(nct_launch *l, const char *sock) {
  memset(l, 0, sizeof *l);
  snprintf(l->dir, sizeof l->dir, "/tmp/nct-XXXXXX");
  if (!mkdtemp(l->dir)) {
    int err = errno;
    l->dir[0] = '\0';
    return -err;
  }
  track_dir(l->dir, 1);
  snprintf(l->endpoint, sizeof l->endpoint, "ipc://%s/%s", l->dir, sock);
  return 0;
}

int nct_launch_spawn(nct_launch *l, char *const argv[], char *const envp[],
                     void (*setup)(void *ctx), void *ctx) {
  extern char **environ;
  pid_t pid = fork();
  if (pid < 0) return -errno;
  if (pid == 0) {
    if (setup) setup(ctx);
    execvpe(argv[0], argv, envp ? envp : environ);
    fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  l->pid = pid;
  l->status = 0;
  track_pid(pid, 1);
  return 0;
}

/* One `bin --ping`: 1 if netcore answered. Its output goes to /dev/null. */
static int ping_once(const char *bin, const char *endpoint) {
  pid_t pid = fork();
  if (pid < 0) return 0;
  if (pid == 0) {
    int null = open("/dev/null", O_WRONLY);
    if (null >= 0) {
      dup2(null, 1);
      dup2(null, 2);
    }
    /* The test's sockets and ZeroMQ fds stay out of it (a peer the test
     * closes must not stay open in the probe). */
    syscall(SYS_close_range, 3, ~0U, 0);
    execl(bin, bin, "--ping", "--endpoint", endpoint, "--timeout-ms", "1000", (char *)NULL);
    _exit(127);
  }
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

void nct_launch_forget(pid_t pid) { track_pid(pid, 0); }

/* Reaps l's process if it has exited. Returns 1 if it had. */
static int reaped(nct_launch *l) {
  int status;
  if (l->pid <= 0 || waitpid(l->pid, &status, WNOHANG) != l->pid) return 0;
  track_pid(l->pid, 0);
  l->pid = 0;
  l->status = status;
  return 1;
}

int nct_launch_wait_ready(nct_launch *l, const char *bin, int timeout_ms, char *why, size_t cap) {
  uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
  for (;;) {
    if (reaped(l)) {
      nct_launch_describe(l->status, why, cap);
      return -1;
    }
    if (ping_once(bin, l->endpoint)) return 0;
    if (now_ms() > deadline) {
      snprintf(why, cap, "no answer to --ping on %s within %d ms", l->endpoint, timeout_ms);
      return -2;
    }
    sleep_ms(10);
  }
}

int nct_launch_stop(nct_launch *l, int sig, int timeout_ms, int *killed) {
  if (killed) *killed = 0;
  if (l->pid <= 0) return l->status;
  kill(l->pid, sig);
  uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
  while (!reaped(l)) {
    if (now_ms() > deadline) {
      if (killed) *killed = 1;
      nct_launch_kill(l);
      break;
    }
    sleep_ms(5);
  }
  return l->status;
}

void nct_launch_kill(nct_launch *l) {
  if (l->pid <= 0) return;
  kill(l->pid, SIGKILL);
  int status = 0;
  while (waitpid(l->pid, &status, 0) < 0 && errno == EINTR) {
  }
  track_pid(l->pid, 0);
  l->pid = 0;
  l->status = status;
}

void nct_launch_rmdir(nct_launch *l) {
  if (!l->dir[0]) return;
  rm_tree(l->dir);
  track_dir(l->dir, 0);
  l->dir[0] = '\0';
}

void nct_launch_describe(int status, char *buf, size_t cap) {
  if (WIFEXITED(status))
    snprintf(buf, cap, "exit status %d", WEXITSTATUS(status));
  else if (WIFSIGNALED(status))
    snprintf(buf, cap, "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
  else
    snprintf(buf, cap, "wait status 0x%x", status);
}
