/* getpid.c: a getpid() that asks the kernel once per process.
 *
 * libzmq 4.3 calls getpid() around every operation on its internal signalers
 * (each message sent or received, on both of its threads) to notice a fork,
 * and glibc stopped caching the pid in 2.25, so each call is a system call: a
 * third of all the system calls netcore made under connection churn
 * (tests/bench/profile.sh). netcore never forks, but stays correct if a
 * child ever calls this: pthread_atfork() makes the child ask again. Linked
 * into the netcore executable only (never into a library), where it takes
 * the place of libc's getpid() for the whole process, libzmq included.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

static atomic_int cached_pid;

static void forget_pid(void) { atomic_store(&cached_pid, 0); }

static void remember_at_fork(void) { pthread_atfork(NULL, NULL, forget_pid); }

pid_t getpid(void) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  int pid = atomic_load_explicit(&cached_pid, memory_order_relaxed);
  if (pid == 0) {
    pthread_once(&once, remember_at_fork);
    pid = (int)syscall(SYS_getpid);
    atomic_store_explicit(&cached_pid, pid, memory_order_relaxed);
  }
  return (pid_t)pid;
}
