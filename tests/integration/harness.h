/* harness.h: what the integration tests need to drive the real netcore binary.
 *
 * Four parts, all used from the test's main thread only (cmocka assertions
 * jump out of the running test, so nothing here may be called from a helper
 * thread except the nct_fd_* / nct_pattern_* peer functions, which never
 * assert):
 *  - the daemon: starts `netcore` as a child on a fresh ipc:// endpoint in a
 *    mkdtemp directory, waits until it answers a Hello, stops it (SIGTERM,
 *    wait, exit status 0) and removes the directory; optionally under a given
 *    RLIMIT_NOFILE and with its stderr captured in a file;
 *  - a raw protocol client (a ZeroMQ DEALER speaking netcore.v1 with
 *    protobuf-c, no client library): it sends any Command with an optional
 *    payload frame and keeps received events in an inbox, checking on arrival
 *    that per-socket and per-server seq numbers go 1, 2, 3, ... and that
 *    nothing follows Closed / ServerClosed / ServerError;
 *  - real peers: TCP and UNIX sockets of the test process;
 *  - probes of the daemon process: RSS, CPU time, open fds, a duplicate of one of its
 *    sockets (pidfd_getfd) and the listen queue of a TCP port (sock_diag).
 * An nct_env bundles a daemon with an observer handler and checks after each
 * test that the observer still works and that netcore's fd count is back to
 * where it was before the test.
 *
 * Ownership: nct_event and nct_client objects are owned by the caller of the
 * function that returned them and freed with nct_event_free / nct_client_*;
 * events left in an inbox die with their client.
 */
#ifndef NCT_HARNESS_H
#define NCT_HARNESS_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <sys/types.h>

#include <cmocka.h>

#include "netcore.pb-c.h"
#include "nct_launch.h"

/* How long a test waits for something that must happen (ms). Generous: a
 * slow CI machine must never turn a correct daemon into a failure. The
 * environment variable NCT_TIME_SCALE multiplies it (for valgrind runs). */
extern int nct_time_scale;
#define NCT_WAIT (5000 * nct_time_scale)
/* How long a test watches for something that must not happen (ms). */
#define NCT_QUIET 500

/* Short names for the generated types (the harness is the only place that
 * spells the long ones out for the tests). */
typedef Netcore__V1__Command nct_cmd;
typedef Netcore__V1__Event nct_pb_event;
typedef Netcore__V1__Address nct_addr;
#define EV(name) NETCORE__V1__EVENT__EVENT_##name
#define FAM(name) NETCORE__V1__FAMILY__FAMILY_##name

/* ---------------------------------------------------------------- runner */

/* Runs a cmocka group. argv[1] (or env NETCORE_BIN) is the netcore binary;
 * an optional argv[2] is a cmocka test-name filter ("test_sockets_*").
 * Env NCT_NETCORE_WRAPPER (e.g. "valgrind --error-exitcode=99 -q") is put
 * in front of every netcore command line; a wrapper that reports errors
 * through the exit status fails the test at nct_daemon_stop. */
int nct_main(int argc, char **argv, const char *group, const struct CMUnitTest *tests,
             size_t ntests);
#define NCT_RUN(argc, argv, tests) \
  nct_main((argc), (argv), __FILE__, (tests), sizeof(tests) / sizeof((tests)[0]))

const char *nct_netcore_path(void);

/* Fails the running test with a message, naming the caller's file and line. */
void nct_fail_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));
#define nct_fail(...) nct_fail_at(__FILE__, __LINE__, __VA_ARGS__)

uint64_t nct_now_ms(void);

/* ---------------------------------------------------------------- daemon */

/* A netcore of a test: the launch (tests/support/nct_launch.h: pid, status,
 * dir, where tests may create paths, and endpoint "ipc://<dir>/nc.sock"),
 * its fields also reachable directly (d->pid), and its Welcome's instance id. */
typedef struct nct_daemon {
  union {
    nct_launch launch;
    struct {
      NCT_LAUNCH_FIELDS
    };
  };
  char instance_id[64];
} nct_daemon;

/* Starts netcore with --bind <endpoint> --log-level warn, then `flags`
 * (NULL-terminated, may be NULL). `fds` maps test fds into the child:
 * pairs {src, dst}, terminated by -1 (may be NULL); every other fd above 2 is
 * closed in the child. Returns once a Hello was answered by a Welcome. */
void nct_daemon_start_at(const char *file, int line, nct_daemon *d, const char *const *flags,
                         const int *fds);
#define nct_daemon_start(d, flags, fds) nct_daemon_start_at(__FILE__, __LINE__, d, flags, fds)
/* How to start netcore beyond its flags. */
typedef struct nct_daemon_opts {
  unsigned long nofile_soft, nofile_hard; /* RLIMIT_NOFILE of netcore (as prlimit
                                             --nofile=S:H); 0 = inherit the test's */
  int capture_stderr; /* netcore's stderr goes to a file in its directory
                         (nct_daemon_stderr) instead of the test's */
} nct_daemon_opts;
void nct_daemon_start_opts_at(const char *file, int line, nct_daemon *d, const char *const *flags,
                              const int *fds, const nct_daemon_opts *opts);
/* What netcore wrote to its stderr so far (capture_stderr), NUL-terminated
 * in out (cut at cap); returns the number of lines. */
int nct_daemon_stderr(const nct_daemon *d, char *out, size_t cap);
/* Sends sig and waits up to timeout_ms for the exit; returns the wait status.
 * Fails (after SIGKILL) if netcore does not exit in time. */
int nct_daemon_signal_wait(nct_daemon *d, int sig, int timeout_ms);
/* SIGTERM, wait, assert exit status 0, remove the directory. */
void nct_daemon_stop(nct_daemon *d);
/* `netcore --bind <d's endpoint> --takeover` + flags, started (not waited
 * for); its pid, killed at exit if still running. */
pid_t nct_daemon_takeover_spawn_at(const char *file, int line, const nct_daemon *d,
                                   const char *const *flags);
/* The same, then waits until the old netcore exited 0 and the new one answers
 * a Hello with another instance id; d then names the new one (same dir and
 * endpoint). */
void nct_daemon_takeover_at(const char *file, int line, nct_daemon *d, const char *const *flags);
#define nct_daemon_takeover(d, flags) nct_daemon_takeover_at(__FILE__, __LINE__, d, flags)
/* Cleanup after a failed test: SIGKILL if still running, remove the directory. */
void nct_daemon_kill(nct_daemon *d);
/* A path inside the daemon's directory (static buffer per call site is the
 * caller's: writes into out). */
void nct_daemon_path(const nct_daemon *d, const char *name, char *out, size_t cap);

/* ---------------------------------------------------------------- client */

typedef struct nct_event {
  nct_pb_event *ev; /* unpacked envelope */
  uint8_t *data;    /* payload frame (Data), NULL if none */
  size_t len;
  int has_payload;
  int batch;              /* number of the EventBatch it came in; 0 = alone */
  struct nct_event *next; /* inbox link */
} nct_event;

typedef struct nct_objseq nct_objseq;

typedef struct nct_client {
  void *zctx, *dealer;
  char name[32];
  nct_event *inbox_head, *inbox_tail;
  size_t inbox_len;
  nct_objseq *objs; /* seq bookkeeping per (kind, id) */
  size_t nobjs, capobjs;
  /* from Welcome */
  int welcomed;
  uint32_t id_prefix, credit_window, lease_ms, max_frame, max_write_queue;
  char instance_id[64];
  char server_version[64];
  uint32_t minor_version; /* Welcome.minor_version */
  uint8_t session_token[16]; /* Welcome.session_token */
  size_t session_token_len;
  uint64_t last_id;
  int lazy_acks; /* set before Hello: Hello.lazy_acks */
  int ack_now;   /* Write.ack_now of the writes sent while set */
  int batch_events; /* set before Hello: Hello.batch_events (default: $NCT_BATCH_EVENTS=1) */
  int batches;      /* EventBatches received so far */
  int resumed;      /* it resumed another client's session (PROTOCOL.md 16.1) */
} nct_client;

/* A DEALER connected to endpoint; rcvhwm 0 keeps ZeroMQ's default. */
nct_client *nct_client_new(const char *endpoint, const char *name, int rcvhwm);
/* Options for nct_client_new_opts; zero = the default. */
typedef struct nct_client_opts {
  int rcvhwm;
  const char *routing_id;   /* ZMQ_ROUTING_ID of the DEALER */
  const char *server_key;   /* netcore's CURVE public key (Z85): use CURVE */
  const char *public_key, *secret_key; /* this client's CURVE key pair (Z85) */
} nct_client_opts;
nct_client *nct_client_new_opts(const char *endpoint, const char *name, const nct_client_opts *o);
/* `to` goes on with from's session (PROTOCOL.md 16.1): its seq bookkeeping,
 * id prefix and last id; a Connection of a socket it has not seen may then
 * carry any seq (netcore announces a socket whose Connection was lost). */
void nct_client_carry(nct_client *to, const nct_client *from);
/* Closes the DEALER at once (no Bye): for handlers that "die". */
void nct_client_free(nct_client *c);
/* Sends Bye, lets ZeroMQ deliver it, then frees. */
void nct_client_bye(nct_client *c);

/* The clients of a test that its teardown ends (a failed test jumps out
 * before it ends its own). A kept client belongs to the set until dropped:
 * nct_clients_drop forgets c and Byes it (bye) or frees it; nct_clients_end
 * does that to every client left and empties the set. */
#define NCT_MAX_HANDLERS 16
typedef struct nct_clients {
  nct_client *c[NCT_MAX_HANDLERS];
} nct_clients;
void nct_clients_keep(nct_clients *s, nct_client *c); /* fails the test when s is full */
void nct_clients_drop(nct_clients *s, nct_client *c, int bye);
void nct_clients_end(nct_clients *s, int bye);

/* Sends Hello{version 1, name, credit_window, lease_ms} and asserts Welcome. */
void nct_hello_at(const char *file, int line, nct_client *c, uint32_t credit_window,
                  uint32_t lease_ms);
#define nct_hello(c, credit, lease) nct_hello_at(__FILE__, __LINE__, c, credit, lease)

/* The next id this handler may create: prefix << 32 | ++n. */
uint64_t nct_new_id(nct_client *c);

/* Sends cmd, followed by a payload frame if has_payload. */
void nct_send_at(const char *file, int line, nct_client *c, const nct_cmd *cmd, const void *payload,
                 size_t len, int has_payload);
#define nct_send(c, cmd, p, n, hp) nct_send_at(__FILE__, __LINE__, c, cmd, p, n, hp)
/* Sends raw frames: an envelope that need not parse, then payload frames
 * (npayload of them, each given as pointer + length). */
void nct_send_frames(nct_client *c, const void *env, size_t env_len, int npayload,
                     const void *const *payloads, const size_t *lens);

/* Sends a CommandBatch of the n commands, then the payload frames. */
void nct_send_batch_at(const char *file, int line, nct_client *c, nct_cmd *const *cmds, size_t n,
                       int npayload, const void *const *payloads, const size_t *lens);
#define nct_send_batch(c, cmds, n, np, p, l) nct_send_batch_at(__FILE__, __LINE__, c, cmds, n, np, p, l)

/* Command helpers; each only sends (answers are awaited with nct_expect*). */
void nct_cmd_ping(nct_client *c, uint64_t nonce);
void nct_cmd_listen_tcp(nct_client *c, uint64_t server_id, const char *host, int32_t port,
                        int allow_half_open, int32_t backlog, uint32_t max_conn, const char *group);
void nct_cmd_listen_path(nct_client *c, uint64_t server_id, const char *path);
void nct_cmd_listen_fd(nct_client *c, uint64_t server_id, int32_t fd);
void nct_cmd_server_pause(nct_client *c, uint64_t server_id, uint32_t msecs);
void nct_cmd_server_close(nct_client *c, uint64_t server_id);
void nct_cmd_server_set_max(nct_client *c, uint64_t server_id, uint32_t max);
void nct_cmd_connect_tcp(nct_client *c, uint64_t socket_id, const char *host, int32_t port,
                         int allow_half_open);
void nct_cmd_connect_path(nct_client *c, uint64_t socket_id, const char *path);
void nct_cmd_write(nct_client *c, uint64_t socket_id, const void *data, size_t len);
void nct_cmd_write_fd(nct_client *c, uint64_t socket_id, uint64_t fd_socket_id, const void *data,
                      size_t len);
/* data NULL = no payload frame. */
void nct_cmd_end(nct_client *c, uint64_t socket_id, const void *data, size_t len);
void nct_cmd_destroy(nct_client *c, uint64_t socket_id);
void nct_cmd_pause(nct_client *c, uint64_t socket_id);
void nct_cmd_resume(nct_client *c, uint64_t socket_id);
void nct_cmd_credit(nct_client *c, uint64_t socket_id, uint32_t bytes);
void nct_cmd_set_timeout(nct_client *c, uint64_t socket_id, uint32_t msecs);
void nct_cmd_set_nodelay(nct_client *c, uint64_t socket_id, int enable);
void nct_cmd_set_keepalive(nct_client *c, uint64_t socket_id, int enable, uint32_t delay_ms);
/* Pipe{src, dest, no_end, hwm} and Unpipe{src} (PROTOCOL.md 17). */
void nct_cmd_pipe(nct_client *c, uint64_t src, uint64_t dest, int no_end, uint32_t hwm);
void nct_cmd_unpipe(nct_client *c, uint64_t src);

/* Ping with a fresh nonce and wait for its Pong: every command sent before
 * has then been processed by netcore (commands of one handler are handled in
 * order). Other events stay in the inbox. */
void nct_sync_at(const char *file, int line, nct_client *c);
#define nct_sync(c) nct_sync_at(__FILE__, __LINE__, c)

/* Receives whatever arrives within timeout_ms into the inbox (0 = only what
 * is already there). Returns how many events arrived. */
int nct_pump(nct_client *c, int timeout_ms);

/* Waits for the next event about object `id` (a socket or a server; for
 * Connection the socket) and asserts its type. Event types in skip_mask (bit
 * n = event case n, see NCT_SKIP) about that object are dropped on the way.
 * Events about other objects stay in the inbox. */
#define NCT_SKIP(name) (1ull << EV(name))
nct_event *nct_expect_at(const char *file, int line, nct_client *c, int type, uint64_t id,
                         uint64_t skip_mask, int timeout_ms);
#define nct_expect(c, type, id) nct_expect_at(__FILE__, __LINE__, c, EV(type), id, 0, NCT_WAIT)
#define nct_expect_skip(c, type, id, mask) \
  nct_expect_at(__FILE__, __LINE__, c, EV(type), id, mask, NCT_WAIT)
/* Same, and frees the event. */
#define nct_expect_drop(c, type, id) nct_event_free(nct_expect(c, type, id))

/* The first event of this type about object id anywhere in the inbox
 * (waiting for it), leaving other events where they are; NULL on timeout. */
nct_event *nct_take(nct_client *c, int type, uint64_t id, int timeout_ms);

/* The next Connection event for server_id (asserted). */
nct_event *nct_expect_connection_at(const char *file, int line, nct_client *c, uint64_t server_id,
                                    int timeout_ms);
#define nct_expect_connection(c, srv) nct_expect_connection_at(__FILE__, __LINE__, c, srv, NCT_WAIT)
/* Asserts that no Connection for server_id arrives within ms. */
void nct_expect_no_connection_at(const char *file, int line, nct_client *c, uint64_t server_id,
                                 int ms);
#define nct_expect_no_connection(c, srv, ms) \
  nct_expect_no_connection_at(__FILE__, __LINE__, c, srv, ms)
/* Counts queued Connection events for server_id (without removing them). */
int nct_count_connections(nct_client *c, uint64_t server_id);

/* The next object-less event of a type (Error, Pong, Welcome, Shutdown). */
nct_event *nct_expect_global_at(const char *file, int line, nct_client *c, int type,
                                int timeout_ms);
#define nct_expect_global(c, type) nct_expect_global_at(__FILE__, __LINE__, c, EV(type), NCT_WAIT)
/* The next Error, asserting its code. */
nct_event *nct_expect_error_at(const char *file, int line, nct_client *c, const char *code);
#define nct_expect_error(c, code) nct_expect_error_at(__FILE__, __LINE__, c, code)
/* Asserts that nothing at all arrives within ms (the inbox must be empty too). */
void nct_expect_silence_at(const char *file, int line, nct_client *c, int ms);
#define nct_expect_silence(c, ms) nct_expect_silence_at(__FILE__, __LINE__, c, ms)
/* Asserts that no event about object id arrives within ms. */
void nct_expect_none_at(const char *file, int line, nct_client *c, uint64_t id, int ms);
#define nct_expect_none(c, id, ms) nct_expect_none_at(__FILE__, __LINE__, c, id, ms)

/* Collects exactly n bytes of Data for socket id into buf (in order), dropping
 * WriteAcks about it on the way; any other event about the socket before n
 * bytes fails the test, and so does a Data event that would overshoot n. */
void nct_read_data_at(const char *file, int line, nct_client *c, uint64_t id, void *buf, size_t n,
                      int timeout_ms);
#define nct_read_data(c, id, buf, n) nct_read_data_at(__FILE__, __LINE__, c, id, buf, n, NCT_WAIT)
/* Like nct_read_data, for data that must equal `want`. */
void nct_expect_data_at(const char *file, int line, nct_client *c, uint64_t id, const void *want,
                        size_t n);
#define nct_expect_data(c, id, want, n) nct_expect_data_at(__FILE__, __LINE__, c, id, want, n)
/* Waits until WriteAcks for socket id sum up to `writes` writes and `bytes`
 * bytes (other events about it are left in place). Returns the last ack's
 * bytes_written. */
uint64_t nct_wait_acks_at(const char *file, int line, nct_client *c, uint64_t id, uint32_t writes,
                          uint64_t bytes);
#define nct_wait_acks(c, id, w, b) nct_wait_acks_at(__FILE__, __LINE__, c, id, w, b)

/* The seq of the last event c received about socket id (0: none yet). */
uint64_t nct_last_seq(nct_client *c, uint64_t socket_id);
/* Makes c's bookkeeping say it last saw seq of socket id (a client that
 * pretends it lost the events after it, PROTOCOL.md 16.1). */
void nct_set_last_seq(nct_client *c, uint64_t socket_id, uint64_t seq);
void nct_event_free(nct_event *e);
/* A one-line description of an event, for failure messages. */
const char *nct_event_str(const nct_event *e, char *buf, size_t cap);
const char *nct_event_name(int type);

/* ---------------------------------------------------------------- peers */

/* Listening sockets owned by the test (so netcore can connect to them). */
int nct_tcp_listen(const char *ip, uint16_t *port); /* port 0 = OS-assigned, written back */
int nct_unix_listen(const char *path);
/* Blocking connects; fail the test on error. */
int nct_tcp_connect_at(const char *file, int line, const char *ip, uint16_t port);
#define nct_tcp_connect(ip, port) nct_tcp_connect_at(__FILE__, __LINE__, ip, port)
int nct_unix_connect_at(const char *file, int line, const char *path);
#define nct_unix_connect(path) nct_unix_connect_at(__FILE__, __LINE__, path)
/* accept() with a timeout; -1 on timeout. */
int nct_accept(int lfd, int timeout_ms);
/* Local / remote port of a TCP socket. */
uint16_t nct_local_port(int fd);
uint16_t nct_remote_port(int fd);

/* Reads until n bytes, EOF, an error or the timeout. Returns bytes read;
 * *eof (if not NULL) is 1 on EOF, -errno on error (ECONNRESET), 0 otherwise.
 * Thread-safe, never asserts. */
size_t nct_fd_read(int fd, void *buf, size_t n, int timeout_ms, int *eof);
/* Asserts n bytes arrive and equal want (NULL = any; then buf gets them). */
void nct_peer_expect_at(const char *file, int line, int fd, const void *want, size_t n);
#define nct_peer_expect(fd, want, n) nct_peer_expect_at(__FILE__, __LINE__, fd, want, n)
/* Asserts the peer sees EOF (or a reset) with no data before it. Returns 0
 * for EOF, -ECONNRESET for a reset. */
int nct_peer_expect_eof_at(const char *file, int line, int fd, int timeout_ms);
#define nct_peer_expect_eof(fd) nct_peer_expect_eof_at(__FILE__, __LINE__, fd, NCT_WAIT)
/* Asserts nothing (no data, no EOF) arrives within ms. */
void nct_peer_expect_quiet_at(const char *file, int line, int fd, int ms);
#define nct_peer_expect_quiet(fd, ms) nct_peer_expect_quiet_at(__FILE__, __LINE__, fd, ms)
/* Writes all of buf (blocking). Thread-safe; returns 0 or -errno. */
int nct_fd_write(int fd, const void *buf, size_t n);
void nct_peer_write_at(const char *file, int line, int fd, const void *buf, size_t n);
#define nct_peer_write(fd, buf, n) nct_peer_write_at(__FILE__, __LINE__, fd, buf, n)

/* A position-dependent byte pattern, so a lost, repeated or reordered byte
 * is caught wherever it happens. */
void nct_pattern_fill(uint64_t offset, void *buf, size_t n);
/* Index of the first byte that differs from the pattern, or -1. */
long nct_pattern_check(uint64_t offset, const void *buf, size_t n);

/* ---------------------------------------------------------------- probes */

long nct_rss_kib(pid_t pid);
/* CPU time (user + system, all threads) the process has used so far, ms. */
long nct_cpu_ms(pid_t pid);
int nct_fd_count(pid_t pid);
/* Writes "fd -> target" lines of /proc/<pid>/fd into out, for messages. */
void nct_fd_list(pid_t pid, char *out, size_t cap);
/* A duplicate (pidfd_getfd) of the socket in process pid whose local and
 * remote addresses are the remote and local addresses of our peer_fd: the
 * other end of a TCP connection. -1 if none was found, with errno ENOSYS or
 * EPERM if pidfd_getfd itself failed, ENOENT otherwise. */
int nct_steal_peer_socket(pid_t pid, int peer_fd);
/* Bytes waiting unread in the kernel receive buffer of the other end of our
 * TCP connection peer_fd (in netcore: what it has not read yet), via
 * sock_diag. -1 if the socket was not found. */
long nct_tcp_unread(int peer_fd);
/* The listen queue of a TCP listener on 127.0.0.1/::1 port `port` found by
 * sock_diag: *backlog = its listen(2) backlog, *queued = connections waiting
 * to be accepted. Returns 0, or -1 if no such listener. */
int nct_tcp_listen_queue(int family, uint16_t port, uint32_t *backlog, uint32_t *queued);

/* ---------------------------------------------------------------- env */

typedef struct nct_env {
  nct_daemon d;
  int started;
  nct_client *observer; /* a second handler that must keep working */
  int baseline_fds;
  nct_clients handlers;
  /* the observer's own live connection, proven after bad input */
  uint64_t by_server, by_socket;
  uint16_t by_port;
  int by_peer;
} nct_env;

/* cmocka setup/teardown: allocate an unstarted env / kill whatever a test
 * left (a failed test jumps out before nct_env_finish). */
int nct_env_setup(void **state);
int nct_env_teardown(void **state);
/* The last call of every test that started an env: Byes every registered
 * handler, closes the bystander connection cleanly, checks that the observer
 * still answers, that netcore's fd count is back at the baseline, and that
 * netcore exits 0 on SIGTERM. */
void nct_env_finish_at(const char *file, int line, nct_env *e);
#define nct_env_finish(e) nct_env_finish_at(__FILE__, __LINE__, e)
/* Starts the daemon with flags (NULL-terminated, may be NULL) and fds (see
 * nct_daemon_start), says Hello with an observer and takes the fd baseline. */
void nct_env_start_at(const char *file, int line, nct_env *e, const char *const *flags,
                      const int *fds);
#define nct_env_start(e, flags) nct_env_start_at(__FILE__, __LINE__, e, flags, NULL)
#define nct_env_start_fds(e, flags, fds) nct_env_start_at(__FILE__, __LINE__, e, flags, fds)
void nct_env_start_opts_at(const char *file, int line, nct_env *e, const char *const *flags,
                           const nct_daemon_opts *opts);
#define nct_env_start_opts(e, flags, opts) nct_env_start_opts_at(__FILE__, __LINE__, e, flags, opts)
/* A new handler that said Hello (lease 60 s unless lease_ms is given),
 * owned by the env until nct_env_bye / teardown. */
nct_client *nct_env_handler_at(const char *file, int line, nct_env *e, const char *name,
                               uint32_t credit_window, uint32_t lease_ms);
#define nct_env_handler(e, name) nct_env_handler_at(__FILE__, __LINE__, e, name, 0, 0)
#define nct_env_handler_opt(e, name, credit, lease) \
  nct_env_handler_at(__FILE__, __LINE__, e, name, credit, lease)
/* Adds an existing client to the env's list (teardown frees it). */
void nct_env_adopt(nct_env *e, nct_client *c);
/* Removes c from the env and Byes it (or just frees it when bye is 0). */
void nct_env_release(nct_env *e, nct_client *c, int bye);
/* Whether netcore holds the handler of id prefix `prefix` as connected: its
 * netcore_handler_info sample in a Stats answer to the observer. */
int nct_env_handler_live_at(const char *file, int line, nct_env *e, uint32_t prefix);
#define nct_env_handler_live(e, prefix) nct_env_handler_live_at(__FILE__, __LINE__, e, prefix)
/* Waits until netcore has seen the handler of prefix `prefix` go (Stats no
 * longer names it; its connections are then handed on, parked or closed);
 * fails after NCT_WAIT. A DEALER that closed is noticed by netcore's I/O
 * thread later: a test that goes on at once races with that. */
void nct_env_wait_gone_at(const char *file, int line, nct_env *e, uint32_t prefix);
#define nct_env_wait_gone(e, prefix) nct_env_wait_gone_at(__FILE__, __LINE__, e, prefix)
/* c's process dies: c leaves the env and its DEALER closes without a Bye
 * (c is freed); returns once netcore has seen it gone (nct_env_wait_gone). */
void nct_env_die_at(const char *file, int line, nct_env *e, nct_client *c);
#define nct_env_die(e, c) nct_env_die_at(__FILE__, __LINE__, e, c)
/* The observer listens and gets one live connection; nct_env_bystander_check
 * proves data still flows both ways on it and that Ping still works. */
void nct_env_bystander_start_at(const char *file, int line, nct_env *e);
#define nct_env_bystander_start(e) nct_env_bystander_start_at(__FILE__, __LINE__, e)
void nct_env_bystander_check_at(const char *file, int line, nct_env *e);
#define nct_env_bystander_check(e) nct_env_bystander_check_at(__FILE__, __LINE__, e)
/* Listen on 127.0.0.1 port 0 and return the server id; *port gets the port. */
uint64_t nct_listen_local_at(const char *file, int line, nct_client *c, uint16_t *port,
                             int allow_half_open);
#define nct_listen_local(c, port, aho) nct_listen_local_at(__FILE__, __LINE__, c, port, aho)
/* Connect a TCP peer to 127.0.0.1:port and return the socket id of the
 * Connection that server_id got; *peer gets the peer's fd. */
uint64_t nct_accept_peer_at(const char *file, int line, nct_client *c, uint64_t server_id,
                            uint16_t port, int *peer);
#define nct_accept_peer(c, srv, port, peer) \
  nct_accept_peer_at(__FILE__, __LINE__, c, srv, port, peer)
/* Ends a socket cleanly from both sides: the peer closes, the handler gets
 * Ended, sends End, and gets Closed{had_error false}. Closes peer. */
void nct_close_both_at(const char *file, int line, nct_client *c, uint64_t id, int peer);
#define nct_close_both(c, id, peer) nct_close_both_at(__FILE__, __LINE__, c, id, peer)

#endif /* NCT_HARNESS_H */
