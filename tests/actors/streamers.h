/* streamers.h: the example echo actors as real processes and 20 clients
 * streaming a position-dependent pattern through them, for the failover and
 * takeover tests (tests/actors). Every client checks exactly one greeting,
 * every byte back once and in order, a clean end after its half-close, and no
 * stall over STALL_MS. Test main thread only; cmocka assertions.
 */
#ifndef NCT_STREAMERS_H
#define NCT_STREAMERS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Which echo echo_start() runs: "c", "python" or "node" (argv[1]). */
extern const char *lang;
extern const char greeting[];

typedef struct {
  pid_t pid;
  int out;
} actor_t;

#define NCLIENTS 20
#define TOTAL (512u * 1024) /* bytes each client streams */
#define CHUNK 4096
#define WINDOW (64u * 1024) /* bytes a client has in flight at most */
#define STALL_MS 2000

typedef struct {
  int fd;
  size_t sent, got, greet;
  int shut, done;
  uint64_t last;
  uint64_t max_gap; /* longest time between two reads, ms (the triggers' own time excluded) */
} client_t;

/* Something to do once the clients have sent `at` bytes in all. */
typedef struct {
  size_t at;
  void (*fn)(void *);
  void *arg;
  int fired;
} trigger_t;

/* Starts the chosen echo (with args, on endpoint) and waits for its
 * "listening" line; returns the port it reports. */
int echo_start(actor_t *a, const char *endpoint, const char *const *args);
/* The old owner of the adoption tests: a forked libnc handler of the same
 * uid that listens in `group` on 127.0.0.1 port 0 and, for every connection,
 * writes nothing (greet 0) or the greeting (greet 1), then tells the test
 * (owner_wait_connection: after the greeting reached the kernel). Returns its
 * port; echo_stop(a, SIGKILL) kills it. */
int owner_start(actor_t *a, const char *endpoint, const char *group, int greet);
void owner_wait_connection(actor_t *a);
/* SIGKILLs and reaps every echo started and not stopped (a failed test's). */
void actors_reap_all(void);
/* The same as a cmocka teardown. */
int actors_teardown(void **state);
/* Sends sig and waits for the exit; returns the wait status. */
int echo_stop(actor_t *a, int sig);
/* Connects the NCLIENTS clients (non-blocking) to 127.0.0.1:port and reads
 * their greetings: the triggers of clients_run then strike mid-stream, with
 * every connection taken by an echo. */
void clients_connect(client_t *c, int port);
/* Streams the pattern on every client until all have their bytes back and
 * the echo's end; fires the triggers on the way. */
void clients_run(client_t *c, trigger_t *t, int nt);

#endif
