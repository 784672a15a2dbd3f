/* nc.h: libnc, Node's `net` module in C for netcore handler actors.
 *
 * netcore owns every real TCP/UNIX socket; a handler actor talks to it over
 * one ZeroMQ DEALER socket. libnc hides that conversation behind the API of
 * Node's `net` module (the seed), with libuv's conventions:
 *
 *   - Handles (nc_loop_t, nc_server_t, nc_socket_t, nc_timer_t) are opaque and
 *     allocated by libnc. Each carries a user data pointer (…_set_data).
 *   - Functions return 0 (or a documented non-negative value) on success and a
 *     negative error on failure. The error numbers are NC_<NAME>, where NAME is
 *     Node's error code ("EADDRINUSE", "ECONNREFUSED", ...), from the one table
 *     in nc_errors.h; nc_err_name() gives the name, nc_strerror() a message.
 *     A call that returns an error never calls its callback.
 *   - Events are callbacks. A server's and a socket's callbacks are set with
 *     one struct (nc_server_events_t, nc_socket_events_t); unset ones are
 *     ignored. Callbacks run only from nc_loop_run() / nc_loop_process(),
 *     never from inside another libnc call, so any libnc function (closing
 *     included) may be called from any callback.
 *
 * Ownership and lifetime (the rules every handle follows):
 *   - A socket stays valid until its close callback has returned; libnc then
 *     frees it. The one exception: calling nc_socket_connect() from inside the
 *     close callback reuses the socket (Node's socket.connect() on a closed
 *     socket), and it lives on until its next close callback.
 *   - A server stays valid until the close callback that follows
 *     nc_server_close() (or the loss of netcore) has returned.
 *   - A timer stays valid until nc_timer_close(); it is freed at once if idle
 *     or after its running callback returns.
 *   - nc_loop_free() frees every handle still alive, without callbacks.
 *   - Buffers given to libnc (write data, host names, paths) are copied before
 *     the call returns; the caller keeps ownership. Buffers libnc hands to a
 *     callback (received data, error messages, addresses) belong to libnc and
 *     are valid only until that callback returns; copy what you keep.
 *
 * Threads: a loop and all its handles belong to the thread that runs the loop.
 * Only nc_loop_stop() may be called from another thread or a signal handler.
 */
#ifndef NC_NC_H
#define NC_NC_H

#include <stddef.h>
#include <stdint.h>

#include "nc_errors.h"
#include "nc_version.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ----------------------------------------------------------------- version */

/* The version of the libnc a program runs against: NC_VERSION_HEX's
 * encoding, and "MAJOR.MINOR.PATCH" (a static string). */
NC_EXTERN unsigned nc_version(void);
NC_EXTERN const char *nc_version_string(void);

/* ------------------------------------------------------------------ errors */

/* NC_EADDRINUSE, NC_ECONNREFUSED, ..., NC_ERR_NETCORE_GONE: all negative. */
typedef enum {
#define NC_ERRNO_ENUM_(name, value, message) NC_##name = (value),
  NC_ERRNO_MAP(NC_ERRNO_ENUM_)
#undef NC_ERRNO_ENUM_
} nc_errno_t;

/* Node's code name of err ("EADDRINUSE"); "UNKNOWN" for a number not in the
 * table. The string is static. */
NC_EXTERN const char *nc_err_name(int err);

/* A short static description of err ("address already in use"). */
NC_EXTERN const char *nc_strerror(int err);

/* The number for a code name as netcore sends it; NC_EIO for a name that is
 * not in the table (the callback's message then still names it). */
NC_EXTERN int nc_err_from_name(const char *name);

/* --------------------------------------------------------------- addresses */

typedef enum {
  NC_FAMILY_NONE = 0, /* not known (not connected yet, or unnamed) */
  NC_FAMILY_UNIX = 1,
  NC_FAMILY_IPV4 = 4,
  NC_FAMILY_IPV6 = 6
} nc_family_t;

/* One end of a socket or a listener as the OS reports it: Node's address(),
 * remoteAddress and remotePort. Plain value type: copy it freely. */
typedef struct nc_address_s {
  nc_family_t family;
  char address[108]; /* "127.0.0.1", "::1", or a UNIX path ("" if unnamed): the
                        path's exact bytes, which need not be UTF-8 */
  int port;          /* TCP port; 0 for UNIX sockets */
} nc_address_t;

/* Writes Node's JSON of an address into buf (always NUL-terminated):
 * {"address":"127.0.0.1","port":8124} for TCP and {"address":"/tmp/x.sock"}
 * for UNIX, as the seed's examples print it (a path that is not UTF-8 shows
 * U+FFFD for each invalid sequence, as Node does). Returns the length it needed
 * (like snprintf): a value >= size means buf was too small. */
NC_EXTERN int nc_address_json(const nc_address_t *addr, char *buf, size_t size);

/* Node's net.isIP(): 4, 6 or 0. NULL and "" give 0. A zone ("fe80::1%eth0")
 * is allowed on IPv6. */
NC_EXTERN int nc_is_ip(const char *input);
NC_EXTERN int nc_is_ipv4(const char *input); /* 1 or 0 */
NC_EXTERN int nc_is_ipv6(const char *input); /* 1 or 0 */

/* -------------------------------------------------------------------- loop */

typedef struct nc_loop_s nc_loop_t;
typedef struct nc_server_s nc_server_t;
typedef struct nc_socket_s nc_socket_t;
typedef struct nc_timer_s nc_timer_t;

/* netcore's default endpoint for this process, the same rule as netcore's
 * own and every client library's: ipc://$XDG_RUNTIME_DIR/netcore/netcore.sock
 * when XDG_RUNTIME_DIR is an absolute path, else for root
 * ipc:///run/netcore/netcore.sock, else ipc:///tmp/netcore-<uid>/netcore.sock.
 * Writes it into buf (size bytes, NUL-terminated). Returns 0, or
 * NC_ENAMETOOLONG if it does not fit (buf is then ""). NETCORE_ENDPOINT is
 * not looked at: it overrides this default, see nc_loop_options_t. */
NC_EXTERN int nc_default_endpoint(char *buf, size_t size);

typedef struct nc_loop_options_s {
  /* netcore's ZeroMQ endpoint. NULL: the environment variable
   * NETCORE_ENDPOINT, else nc_default_endpoint(). Copied. */
  const char *endpoint;
  const char *name;           /* this handler's name in netcore's logs; NULL = "libnc" */
  uint32_t credit_window;     /* read window per socket, bytes; 0 = netcore's default */
  uint32_t lease_ms;          /* netcore's lease for this handler; 0 = netcore's default */
  uint32_t hello_timeout_ms;  /* how long nc_loop_new waits for netcore; 0 = 2000 */
  /* CURVE on a tcp:// endpoint (netcore --curve-secret-file). server_key is
   * netcore's public key (Z85, 40 characters, as `netcore keygen` prints);
   * NULL: the environment variable NETCORE_SERVER_KEY. secret_file is this
   * handler's key pair file as `netcore keygen` writes it; NULL: the
   * environment variable NETCORE_SECRET_FILE. Both or neither. ipc://
   * endpoints are authenticated by the handler's uid instead and use no keys
   * (they are still checked). Copied / read during nc_loop_new. */
  const char *server_key;
  const char *secret_file;
  /* 0 (the default): when the link to netcore is lost (netcore killed or
   * restarted, the link silent for a lease, netcore answering ERR_NO_HELLO),
   * every socket gets 'error' NC_ERR_NETCORE_GONE then 'close', and the loop
   * reconnects (libzmq's backoff: 50 ms doubling to 500 ms), says Hello
   * again and listens again on every server that was listening, with the
   * same options and the port it had (on_listening runs again; a listen that
   * fails now is that server's on_error). Meanwhile nc_socket_connect()
   * returns NC_ERR_NETCORE_UNAVAILABLE and listens wait for the new Welcome.
   * A reconnect refused by netcore (NC_EACCES, NC_EPROTO) ends the loop as
   * without reconnection. Non-zero, or the environment variable
   * NETCORE_RECONNECT=0: no reconnection; the loss of netcore ends the loop
   * (nc_loop_run returns NC_ERR_NETCORE_GONE) after every socket and server
   * has had 'error' and 'close'. */
  int no_reconnect;
  /* Hello.service (PROTOCOL.md 13): a later handler with the same service
   * name and the same credentials inherits this one's servers and their
   * connections when this one dies or leaves with nc_loop_leave(loop, 1).
   * NULL or "": none (groups hand over without it). Copied. */
  const char *service;
  /* Nonzero: SIGTERM and SIGINT call nc_loop_leave(loop, 1), a graceful
   * handoff exit for rolling restarts; nc_loop_run() then returns 0. */
  int handoff_on_signal;
} nc_loop_options_t;

/* Connects to netcore and says Hello; blocks until netcore answers Welcome or
 * hello_timeout_ms have passed. opts may be NULL (all defaults).
 * On success *loop is a new loop (free it with nc_loop_free()).
 * Errors: NC_ERR_NETCORE_UNAVAILABLE (netcore did not answer: not running, or
 * a wrong endpoint), NC_ERR_UNSUPPORTED_VERSION, NC_EINVAL (bad endpoint, a
 * bad key or key pair file), NC_EACCES (netcore refused this handler: its key
 * is not in netcore's --curve-allow file, or its uid may not connect over
 * ipc), NC_EPROTO (the handshake failed: CURVE on one side only), NC_ENOMEM. On error *loop is NULL; if errmsg is not NULL, a clear message
 * (naming the endpoint) is written into it (errmsg_size bytes, NUL-terminated). */
NC_EXTERN int nc_loop_new(nc_loop_t **loop, const nc_loop_options_t *opts, char *errmsg,
                size_t errmsg_size);

/* Says Bye to netcore (which then drops everything this handler owns), frees
 * every handle still alive without calling its callbacks, and frees the loop.
 * Must not be called from a callback of this loop. NULL is ignored. */
NC_EXTERN void nc_loop_free(nc_loop_t *loop);

/* Runs callbacks until nothing is left to wait for (no listening or pending
 * server, no socket that is connecting or open, no active timer), until
 * nc_loop_stop(), or until netcore is gone. Returns 0, or
 * NC_ERR_NETCORE_GONE / NC_ERR_NETCORE_SHUTDOWN once netcore disappeared or
 * announced its shutdown (every socket and server has then had its error and
 * close callbacks) and the loop does not reconnect (no_reconnect, or netcore
 * refused the reconnection: then NC_EACCES / NC_EPROTO). With reconnection a
 * lost netcore does not end the loop while a server waits to listen again. */
NC_EXTERN int nc_loop_run(nc_loop_t *loop);

/* Makes nc_loop_run() return after the current callback. Async-signal-safe and
 * thread-safe. */
NC_EXTERN void nc_loop_stop(nc_loop_t *loop);

/* Leaves netcore now: sends what this turn has batched (writes and the
 * credits of the data they answered), then Bye{handoff}. With handoff the
 * connections pass to a member of the same listener group or a successor
 * under the same service name, which gets each as a connection with
 * nc_socket_adopted() true and the data this handler had not finished with
 * again (PROTOCOL.md 13); without, netcore closes them. Afterwards no
 * callback runs again: nc_loop_run() returns 0, and the handles stay until
 * nc_loop_free() (which then sends nothing). Loop thread only. */
NC_EXTERN void nc_loop_leave(nc_loop_t *loop, int handoff);

/* For driving libnc from another event loop: a file descriptor that becomes
 * readable when libnc has work; watch it for POLLIN (level-triggered is
 * fine). Valid until nc_loop_free(). */
NC_EXTERN int nc_loop_fd(const nc_loop_t *loop);

/* Does all the work that is ready now (events from netcore, expired timers,
 * deferred callbacks) without blocking. Returns 1 while the loop has things
 * to wait for, 0 when nothing is left (what ends nc_loop_run), or
 * NC_ERR_NETCORE_GONE / NC_ERR_NETCORE_SHUTDOWN. */
NC_EXTERN int nc_loop_process(nc_loop_t *loop);

/* Milliseconds the caller's loop may sleep on nc_loop_fd() before calling
 * nc_loop_process() again: 0 if work is already pending, -1 for no limit. */
NC_EXTERN int nc_loop_timeout(nc_loop_t *loop);

/* The loop's clock: milliseconds from an arbitrary start (CLOCK_MONOTONIC),
 * updated once per loop iteration. */
NC_EXTERN uint64_t nc_loop_now(const nc_loop_t *loop);

/* Text of the loop's last loop-level failure (why netcore is considered
 * gone, or an error netcore reported about no object). Static to the loop;
 * never NULL. */
NC_EXTERN const char *nc_loop_error_message(const nc_loop_t *loop);

/* What Welcome said: netcore's instance id (changes on every start) and
 * release. Valid until nc_loop_free(). */
NC_EXTERN const char *nc_loop_instance_id(const nc_loop_t *loop);
NC_EXTERN const char *nc_loop_server_version(const nc_loop_t *loop);

/* Calls cb from the loop (not from the signal handler) when signum arrives.
 * One callback per signal number; cb == NULL removes it and restores the
 * default disposition. A signal watch does not keep nc_loop_run() running. */
typedef void (*nc_signal_cb)(nc_loop_t *loop, int signum, void *arg);
NC_EXTERN int nc_loop_signal(nc_loop_t *loop, int signum, nc_signal_cb cb, void *arg);

/* netcore's numbers (the Stats command, PROTOCOL.md 14): the same metric
 * families, samples and values as its Prometheus /metrics. Everything is
 * borrowed: valid only during the callback. */
typedef struct nc_stats_label_s {
  const char *name, *value;
} nc_stats_label_t;
typedef struct nc_stats_sample_s {
  const char *name; /* the family's name, or a histogram's name_bucket / _sum / _count */
  const nc_stats_label_t *labels;
  size_t nlabels;
  double value;
} nc_stats_sample_t;
typedef struct nc_stats_family_s {
  const char *name, *help, *type; /* type: "counter", "gauge" or "histogram" */
  const nc_stats_sample_t *samples;
  size_t nsamples;
} nc_stats_family_t;
typedef struct nc_stats_s {
  const char *instance_id;
  uint64_t uptime_ms;
  const nc_stats_family_t *families;
  size_t nfamilies;
} nc_stats_t;
/* status 0 with stats, or NC_ERR_NETCORE_GONE / NC_ERR_NETCORE_SHUTDOWN /
 * NC_ENOMEM with stats NULL. */
typedef void (*nc_stats_cb)(nc_loop_t *loop, int status, const nc_stats_t *stats, void *arg);

/* Asks netcore for its numbers; cb runs once, from the loop, with the answer.
 * A pending request keeps nc_loop_run() running. Answers come in the order
 * asked. nc_loop_free() drops pending requests without calling them.
 * Returns 0 or NC_ERR_NETCORE_GONE (cb is then never called). */
NC_EXTERN int nc_loop_stats(nc_loop_t *loop, nc_stats_cb cb, void *arg);

/* The family called name, or NULL. */
NC_EXTERN const nc_stats_family_t *nc_stats_family(const nc_stats_t *stats, const char *name);
/* The sum of the values of the samples called name whose label `label` is
 * `value` (label NULL: all of them); 0 if there is none. */
NC_EXTERN double nc_stats_value(const nc_stats_t *stats, const char *name, const char *label,
                      const char *value);
/* The value of label `label` of a sample, or NULL. */
NC_EXTERN const char *nc_stats_label(const nc_stats_sample_t *sample, const char *label);

NC_EXTERN void nc_loop_set_data(nc_loop_t *loop, void *data);
NC_EXTERN void *nc_loop_get_data(const nc_loop_t *loop);

/* ------------------------------------------------------------------ timers */

typedef void (*nc_timer_cb)(nc_timer_t *timer);

/* A new, idle timer. Free it with nc_timer_close(). */
NC_EXTERN int nc_timer_new(nc_loop_t *loop, nc_timer_t **timer);

/* Calls cb after timeout_ms, then every repeat_ms if repeat_ms > 0
 * (restarting an active timer reschedules it). An active timer keeps
 * nc_loop_run() running. */
NC_EXTERN int nc_timer_start(nc_timer_t *timer, nc_timer_cb cb, uint64_t timeout_ms,
                   uint64_t repeat_ms);
NC_EXTERN void nc_timer_stop(nc_timer_t *timer);

/* Stops and frees the timer (after its callback returns, if it is running). */
NC_EXTERN void nc_timer_close(nc_timer_t *timer);

NC_EXTERN void nc_timer_set_data(nc_timer_t *timer, void *data);
NC_EXTERN void *nc_timer_get_data(const nc_timer_t *timer);

/* ----------------------------------------------------------------- servers */

typedef struct nc_server_options_s {
  int allow_half_open; /* copied to every accepted socket (see 'end') */
  int backlog;         /* listen(2) backlog; 0 = 511 like Node */
  /* Non-NULL, non-empty: share the listener with every handler that listens
   * on the same address with the same group (connections are spread over
   * them, Node's cluster). NULL: a second listen is EADDRINUSE. Copied. */
  const char *group;
} nc_server_options_t;

/* Server events (Node's net.Server events). 'error' is a listen failure
 * (EADDRINUSE, EADDRNOTAVAIL, EACCES, ENOENT, ...) or the loss of netcore
 * (NC_ERR_NETCORE_GONE, followed by 'close'). After a listen failure the
 * server is not listening and may listen again (the seed's retry example). */
typedef struct nc_server_events_s {
  void (*on_listening)(nc_server_t *server);
  /* socket is new, open, and the application's: set its events here. */
  void (*on_connection)(nc_server_t *server, nc_socket_t *socket);
  void (*on_close)(nc_server_t *server);
  /* message: detail from netcore, valid during the callback. */
  void (*on_error)(nc_server_t *server, int err, const char *message);
} nc_server_events_t;

/* Node's net.createServer([options], [connectionListener]). opts may be NULL
 * (defaults). on_connection may be NULL (set events later). */
NC_EXTERN int nc_server_new(nc_loop_t *loop, const nc_server_options_t *opts,
                  void (*on_connection)(nc_server_t *, nc_socket_t *),
                  nc_server_t **server);

/* Replaces all of the server's callbacks (copied). */
NC_EXTERN void nc_server_set_events(nc_server_t *server, const nc_server_events_t *events);

typedef void (*nc_server_cb)(nc_server_t *server);

/* server.listen(port, [host], [cb]). port 0 = OS-assigned (Node's listen()
 * with no port). host NULL or "" = any IPv4 address; names such as
 * "localhost" are resolved by netcore. cb (may be NULL) runs once with
 * 'listening'. Errors returned here: NC_ERR_SOCKET_BAD_PORT,
 * NC_ERR_SERVER_ALREADY_LISTEN, NC_ERR_NETCORE_GONE; the rest come as
 * 'error'. */
NC_EXTERN int nc_server_listen(nc_server_t *server, int port, const char *host,
                     nc_server_cb cb);

/* server.listen(path, [cb]): a UNIX socket server; the path is unlinked on
 * close. Any bytes but NUL: a path that is not UTF-8 goes as path_bytes. */
NC_EXTERN int nc_server_listen_path(nc_server_t *server, const char *path, nc_server_cb cb);

/* server.listenFD(fd): adopt a listening fd that netcore inherited at start
 * (netcore --listen-fd N, or systemd's LISTEN_FDS). fd is netcore's number,
 * not one of this process. */
NC_EXTERN int nc_server_listen_fd(nc_server_t *server, int fd, nc_server_cb cb);

/* server.pause(msecs): accept nothing for msecs (0 = 1000); clients wait in
 * the backlog. Returns NC_ERR_SERVER_NOT_RUNNING if not listening. */
NC_EXTERN int nc_server_pause(nc_server_t *server, unsigned msecs);

/* server.close([cb]): stop accepting now; 'close' (and cb, if not NULL) once
 * every connection of the server has closed; then the server is freed. A
 * server that is not listening closes on the next loop turn. Calling it
 * twice is harmless (the second cb is ignored). No on_connection runs after
 * it: a connection netcore reports for the closed server is destroyed. A
 * close that crosses a netcore takeover (the session resumed, PROTOCOL.md
 * 16.1) completes too, once: the ServerClose goes again to the new netcore,
 * which closes the server or no longer knows it (the old one closed it, or
 * had it closing and shipped only its connections: 'close' then comes once
 * the last of them has closed, as always). */
NC_EXTERN int nc_server_close(nc_server_t *server, nc_server_cb cb);

/* server.address(): the bound address. NC_ERR_SERVER_NOT_RUNNING if the
 * server is not listening. */
NC_EXTERN int nc_server_address(const nc_server_t *server, nc_address_t *addr);

/* server.maxConnections = n (0 = unlimited): connections past n are accepted
 * and closed at once by netcore, unseen here. Applies now and to later
 * listens. */
NC_EXTERN int nc_server_set_max_connections(nc_server_t *server, unsigned n);
NC_EXTERN unsigned nc_server_max_connections(const nc_server_t *server);

/* server.connections: live connections of this server. */
NC_EXTERN unsigned nc_server_connections(const nc_server_t *server);

NC_EXTERN nc_loop_t *nc_server_loop(const nc_server_t *server);
NC_EXTERN void nc_server_set_data(nc_server_t *server, void *data);
NC_EXTERN void *nc_server_get_data(const nc_server_t *server);

/* ----------------------------------------------------------------- sockets */

typedef struct nc_socket_options_s {
  /* Do not end our side when the peer ends (Node's allowHalfOpen): after
   * 'end' the socket stays writable until nc_socket_end(). */
  int allow_half_open;
} nc_socket_options_t;

/* Socket events (Node's net.Socket events). */
typedef struct nc_socket_events_s {
  /* 'connect': an outbound connection is established (never for accepted
   * sockets, as in today's Node). */
  void (*on_connect)(nc_socket_t *socket);
  /* 'data': len bytes at data, owned by libnc and valid only during the
   * callback. Without an encoding these are the raw bytes. With one
   * (nc_socket_set_encoding) they are the decoded text, followed by a NUL
   * (data[len] == '\0'); a character split across reads is delivered whole.
   * Returning from the callback consumes the data (read credit goes back to
   * netcore); call nc_socket_pause() to stop the flow. */
  void (*on_data)(nc_socket_t *socket, const char *data, size_t len);
  /* 'end': the peer sent FIN. Unless allow_half_open, libnc then ends our
   * side itself (after the writes already queued). */
  void (*on_end)(nc_socket_t *socket);
  /* 'timeout': idle for the time given to nc_socket_set_timeout(). The
   * socket stays open. */
  void (*on_timeout)(nc_socket_t *socket);
  /* 'drain': every byte written has reached the kernel, after a write()
   * returned 0 (false). */
  void (*on_drain)(nc_socket_t *socket);
  /* 'error': err is NC_<CODE>; message (valid during the callback) has the
   * detail. 'close' with had_error = 1 follows. */
  void (*on_error)(nc_socket_t *socket, int err, const char *message);
  /* 'close': the last event, exactly once per connection. had_error is 1 if
   * the socket closed because of an error. The socket is freed when this
   * returns, unless nc_socket_connect() was called on it here. */
  void (*on_close)(nc_socket_t *socket, int had_error);
  /* 'fd': a file descriptor arrived with data on this UNIX socket. netcore
   * made it a new socket, received, open and now the application's (set its
   * events, or destroy it). Called before the 'data' it came with. */
  void (*on_fd)(nc_socket_t *socket, nc_socket_t *received);
} nc_socket_events_t;

/* new net.Socket([options]): a socket that is not connected yet. opts may be
 * NULL. Connect it with nc_socket_connect*(), or free it with
 * nc_socket_destroy() (its close callback then runs on the next turn). */
NC_EXTERN int nc_socket_new(nc_loop_t *loop, const nc_socket_options_t *opts,
                  nc_socket_t **socket);

/* Replaces all of the socket's callbacks (copied). */
NC_EXTERN void nc_socket_set_events(nc_socket_t *socket, const nc_socket_events_t *events);

typedef void (*nc_socket_cb)(nc_socket_t *socket);

/* socket.connect(port, [host], [cb]): host NULL = "localhost". cb (may be
 * NULL) runs once with 'connect'. Failures (ECONNREFUSED, ENOTFOUND, ...)
 * come as 'error' then 'close'(1). Valid on a new socket or from inside the
 * close callback; else NC_EISCONN (open) or NC_EALREADY (connecting).
 * Writes may follow at once: they are sent once connected. */
NC_EXTERN int nc_socket_connect(nc_socket_t *socket, int port, const char *host,
                      nc_socket_cb cb);

/* socket.connect(path, [cb]): a UNIX socket connection (any bytes but NUL,
 * as for nc_server_listen_path). */
NC_EXTERN int nc_socket_connect_path(nc_socket_t *socket, const char *path, nc_socket_cb cb);

/* net.createConnection(port, [host], [cb]) = nc_socket_new + connect. */
NC_EXTERN int nc_create_connection(nc_loop_t *loop, const nc_socket_options_t *opts,
                         int port, const char *host, nc_socket_cb cb,
                         nc_socket_t **socket);

/* net.createConnection(path, [cb]). */
NC_EXTERN int nc_create_connection_path(nc_loop_t *loop, const nc_socket_options_t *opts,
                              const char *path, nc_socket_cb cb,
                              nc_socket_t **socket);

/* Called once per write, when its bytes have reached the kernel (status 0) or
 * failed (status < 0: NC_EPIPE for a write after end, NC_ECANCELED if the
 * socket was destroyed first, or the socket's error). arg is the caller's. */
typedef void (*nc_write_cb)(nc_socket_t *socket, int status, void *arg);

/* socket.write(data, [cb]). The len bytes are copied before it returns.
 * Returns 1 (Node's true) while bufferSize stays below the high-water mark,
 * 0 (false) when the data was queued past it: stop writing until 'drain'.
 * After nc_socket_end(): returns 0, cb gets NC_EPIPE and 'error' (EPIPE)
 * follows on the next loop turn, then 'close'(1) (today's Node).
 * Errors (cb not called): NC_ERR_SOCKET_CLOSED (never connected, destroyed
 * or closed), NC_EINVAL (data NULL with len > 0). Writes larger than
 * netcore's frame limit are split transparently. */
NC_EXTERN int nc_socket_write(nc_socket_t *socket, const void *data, size_t len,
                    nc_write_cb cb, void *arg);

/* socket.write(data, fd): also sends, over this UNIX socket, the file
 * descriptor of fd_socket (another socket of this handler; fds never leave
 * netcore). fd_socket stays open. data must not be empty (NC_EINVAL). The
 * receiver gets an 'fd' event. */
NC_EXTERN int nc_socket_write_fd(nc_socket_t *socket, const void *data, size_t len,
                       nc_socket_t *fd_socket, nc_write_cb cb, void *arg);

/* socket.end([data]): write data (may be NULL/0) then send FIN once every
 * queued write has reached the kernel. Further writes fail with EPIPE (see
 * nc_socket_write). A second end() is a no-op. */
NC_EXTERN int nc_socket_end(nc_socket_t *socket, const void *data, size_t len);

/* socket.destroy(): close now, dropping queued writes (their callbacks get
 * NC_ECANCELED). 'close' follows; no other event does. Safe to call more than
 * once and from any callback. */
NC_EXTERN void nc_socket_destroy(nc_socket_t *socket);

/* socket.pause() / resume(): stop and restart 'data' (and 'end'). While
 * paused no read credit is granted and netcore stops reading the socket, so
 * the peer is pushed back by TCP. */
NC_EXTERN void nc_socket_pause(nc_socket_t *socket);
NC_EXTERN void nc_socket_resume(nc_socket_t *socket);
NC_EXTERN int nc_socket_is_paused(const nc_socket_t *socket);

/* socket.setTimeout(msecs, [cb]): 'timeout' after msecs without reads or
 * writes; 0 disables it. cb (may be NULL) is called at the next timeout
 * only (Node's once listener). */
NC_EXTERN int nc_socket_set_timeout(nc_socket_t *socket, unsigned msecs, nc_socket_cb cb);

/* socket.setNoDelay(enable): TCP_NODELAY. */
NC_EXTERN int nc_socket_set_no_delay(nc_socket_t *socket, int enable);

/* socket.setKeepAlive(enable, initialDelay): SO_KEEPALIVE and its idle time
 * in ms (0 = leave unchanged). */
NC_EXTERN int nc_socket_set_keep_alive(nc_socket_t *socket, int enable,
                             unsigned initial_delay_ms);

/* socket.setEncoding(NULL | "utf8" | "ascii" | "base64"): how 'data' is
 * delivered (see on_data). "utf-8" is accepted too. NC_EINVAL otherwise. */
NC_EXTERN int nc_socket_set_encoding(nc_socket_t *socket, const char *encoding);

/* src.pipe(dst): every byte read from src is written to dst; when dst's
 * write() returns 0, src is paused until dst's 'drain'; when src ends, dst is
 * ended. src's own callbacks still run. src may be dst (the seed's
 * c.pipe(c)). If dst closes first, src is unpiped and resumed.
 *
 * Inside netcore (PROTOCOL.md 17): when netcore speaks protocol 1.2 or later
 * (Welcome.minor_version >= 2), the environment does not set
 * NETCORE_PIPE_OFFLOAD=0, and nothing in this process consumes src's data at
 * the time of the call (src has no on_data callback and no encoding, is not
 * ended, and dst is not ended), netcore moves the bytes itself and they never
 * reach this process; the mark is dst's high-water mark. Setting an on_data
 * callback (nc_socket_set_events) or an encoding on src later, or
 * nc_socket_unpipe(), takes the stream back: every byte goes either to dst or
 * through this process, none lost or repeated. While the bytes move inside
 * netcore, nc_socket_bytes_read(src) and nc_socket_bytes_written(dst) do not
 * grow; they are exact again once the pipe stops (unpipe, either end ending
 * or closing) and at 'close'. */
NC_EXTERN int nc_socket_pipe(nc_socket_t *src, nc_socket_t *dst);

typedef struct nc_pipe_options_s {
  /* pipe(dst, {end: false}): src's end does not end dst. */
  int no_end;
} nc_pipe_options_t;

/* src.pipe(dst, options): nc_socket_pipe with options (NULL = defaults). */
NC_EXTERN int nc_socket_pipe_opts(nc_socket_t *src, nc_socket_t *dst, const nc_pipe_options_t *opts);
NC_EXTERN void nc_socket_unpipe(nc_socket_t *src);
/* 1 while src's pipe runs inside netcore (asked for and not taken back). */
NC_EXTERN int nc_socket_pipe_offloaded(const nc_socket_t *src);

/* socket.bufferSize: bytes written but not yet handed to the kernel. */
NC_EXTERN size_t nc_socket_buffer_size(const nc_socket_t *socket);

/* The high-water mark for write()'s return value, bytes (default 16384). */
NC_EXTERN void nc_socket_set_high_water_mark(nc_socket_t *socket, size_t bytes);

/* socket.bytesRead: bytes received so far (delivered or queued while
 * paused). socket.bytesWritten: bytes accepted by write()/end() so far,
 * queued ones included (today's Node); after 'close', exactly the bytes
 * that reached the kernel. */
NC_EXTERN uint64_t nc_socket_bytes_read(const nc_socket_t *socket);
NC_EXTERN uint64_t nc_socket_bytes_written(const nc_socket_t *socket);

/* socket.address(): the local end. NC_ENOTCONN before 'connect'. */
NC_EXTERN int nc_socket_address(const nc_socket_t *socket, nc_address_t *addr);

/* socket.remoteAddress / remotePort: "" and 0 before 'connect'. The string
 * is valid as long as the socket. */
NC_EXTERN const char *nc_socket_remote_address(const nc_socket_t *socket);
NC_EXTERN int nc_socket_remote_port(const nc_socket_t *socket);

/* 1 when the connection came to this handler from one that died or left
 * (an 'Adopted' event, PROTOCOL.md 13): its peer was served before.
 * bytesRead and bytesWritten start from what the old handler did (bytesWritten
 * at Adopted.bytes_written + Adopted.queued_bytes: its writes that reached the
 * kernel or are still queued in netcore), and the data it had not finished
 * with come again first. So nc_socket_bytes_written() == 0 on an adopted
 * socket means nothing was ever written to its peer: a greeting is still due
 * (the old handler died before its greeting reached netcore).
 * 0 for a connection of this handler's own. */
NC_EXTERN int nc_socket_adopted(const nc_socket_t *socket);

/* The server that accepted this socket, or NULL (outbound, received fd, or
 * the server is gone). */
NC_EXTERN nc_server_t *nc_socket_server(const nc_socket_t *socket);

NC_EXTERN nc_loop_t *nc_socket_loop(const nc_socket_t *socket);
NC_EXTERN void nc_socket_set_data(nc_socket_t *socket, void *data);
NC_EXTERN void *nc_socket_get_data(const nc_socket_t *socket);

#ifdef __cplusplus
}
#endif

#endif /* NC_NC_H */
