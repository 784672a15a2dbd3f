/* test_launch.c: the C netcore launcher (nct_launch.h) against the real
 * netcore: ready means --ping is answered; a netcore that exits at start is
 * reported with its status; a test program that ends half-way (exit without
 * stopping what it started) leaves no netcore and no directory behind.
 * Usage: test_launch NETCORE */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nct_launch.h"

static const char *bin;
static int failures;

#define CHECK(cond, ...)                                   \
  do {                                                     \
    if (!(cond)) {                                         \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
      fprintf(stderr, __VA_ARGS__);                        \
      fputc('\n', stderr);                                 \
      failures++;                                          \
    }                                                      \
  } while (0)

static int start(nct_launch *l, const char *flag) {
  if (nct_launch_dir(l, "nc.sock") != 0) return -100;
  char *argv[] = {(char *)bin, "--bind", l->endpoint, "--log-level", "error", (char *)flag, NULL};
  if (nct_launch_spawn(l, argv, NULL, NULL, NULL) != 0) return -101;
  char why[200];
  return nct_launch_wait_ready(l, bin, 10000, why, sizeof why);
}

static void test_ready_and_stop(void) {
  nct_launch l;
  CHECK(start(&l, NULL) == 0, "netcore did not get ready");
  CHECK(l.pid > 0 && kill(l.pid, 0) == 0, "no running netcore after ready");
  int status = nct_launch_stop(&l, SIGTERM, 10000, NULL);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "SIGTERM: status 0x%x", status);
  CHECK(l.pid == 0, "pid not cleared after the reap");
  nct_launch_rmdir(&l);
}

static void test_exit_at_start_is_reported(void) {
  nct_launch l;
  CHECK(start(&l, "--no-such-flag") == -1, "a netcore that exits at start was not reported");
  CHECK(WIFEXITED(l.status) && WEXITSTATUS(l.status) == 2, "status 0x%x, not exit 2", l.status);
  nct_launch_rmdir(&l);
}

/* A child test program starts a netcore and exits (as after a failed
 * assertion): its atexit hook must kill the netcore and remove the dir. */
static void test_leftovers_reaped_at_exit(void) {
  int pfd[2];
  CHECK(pipe(pfd) == 0, "pipe");
  pid_t child = fork();
  if (child == 0) {
    nct_launch l;
    if (start(&l, NULL) != 0) _exit(99);
    dprintf(pfd[1], "%d %s\n", (int)l.pid, l.dir);
    exit(3);
  }
  close(pfd[1]);
  char line[128] = "";
  ssize_t n = read(pfd[0], line, sizeof line - 1);
  close(pfd[0]);
  int status;
  waitpid(child, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 3, "child status 0x%x", status);
  int pid = 0;
  char dir[64] = "";
  CHECK(n > 0 && sscanf(line, "%d %63s", &pid, dir) == 2, "child said '%s'", line);
  struct stat st;
  CHECK(pid > 0 && kill(pid, 0) != 0 && errno == ESRCH, "netcore %d still runs", pid);
  CHECK(dir[0] && stat(dir, &st) != 0, "%s is still there", dir);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: test_launch NETCORE\n");
    return 2;
  }
  bin = argv[1];
  test_ready_and_stop();
  test_exit_at_start_is_reported();
  test_leftovers_reaped_at_exit();
  if (!failures) printf("test_launch: 3 tests passed\n");
  return failures ? 1 : 0;
}
