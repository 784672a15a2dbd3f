/* redis: a small Redis-protocol server as a netcore handler actor (libnc),
 * the benchmark's real-client load (issue 18): redis-benchmark and redis-cli
 * talk to it as to redis-server.
 *
 * RESP (https://redis.io/docs/reference/protocol-spec/): multibulk commands
 * ("*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n") and inline ones ("PING\r\n", words
 * split on blanks, without Redis's quoting), pipelined, split across reads
 * at any byte. Commands: PING [msg], ECHO msg, SET key value, GET key; any
 * other gets Redis's "-ERR unknown command 'X', with args beginning with: ...".
 * Every reply to the commands of one read goes out in one write.
 *
 * Bounds, as Redis's defaults: a bulk argument of at most 512 MiB, an inline
 * command or a "*N" / "$N" line of at most 64 KiB, at most 1,048,576
 * arguments. A protocol error (a bad length, a missing '$', a line too long)
 * gets Redis's "-ERR Protocol error: ..." and the connection is ended after
 * it; other connections are not affected.
 *
 * The same logic in JavaScript (actors/node/resp.js, under actors/node/redis.js
 * and tests/bench/node-redis.js) and Python (actors/python/resp.py, under
 * actors/python/redis.py and tests/bench/asyncio-redis.py).
 *
 * Usage: redis [--port N] [--host H] [--path P] [--endpoint E]
 * Prints one line once listening: redis server listening on <address() JSON>.
 * Single-threaded: everything runs on the libnc loop's thread. */
#include <ctype.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nc/nc.h"
#include "options.h"

#define MAX_BULK (512u * 1024 * 1024)
#define MAX_INLINE (64u * 1024)
#define MAX_ARGS (1024 * 1024)

static int exit_code;

/* ---------------------------------------------------------------- buffers */

typedef struct {
  char *p;
  size_t len, cap;
} buf_t;

/* Makes room for n more bytes; exits on out of memory (a benchmark server). */
static void buf_reserve(buf_t *b, size_t n) {
  if (b->len + n <= b->cap) return;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + n) cap *= 2;
  char *p = realloc(b->p, cap);
  if (p == NULL) {
    fprintf(stderr, "redis: ENOMEM: out of memory\n");
    exit(1);
  }
  b->p = p;
  b->cap = cap;
}

static void buf_add(buf_t *b, const void *data, size_t n) {
  buf_reserve(b, n);
  memcpy(b->p + b->len, data, n);
  b->len += n;
}

static void buf_str(buf_t *b, const char *s) {
  buf_add(b, s, strlen(s));
}

/* "$<n>\r\n<bytes>\r\n" */
static void reply_bulk(buf_t *out, const char *p, size_t n) {
  char head[32];
  int h = snprintf(head, sizeof(head), "$%zu\r\n", n);
  buf_reserve(out, (size_t)h + n + 2);
  buf_add(out, head, (size_t)h);
  buf_add(out, p, n);
  buf_add(out, "\r\n", 2);
}

/* "-ERR ...\r\n" of a message whose CR and LF became blanks, as Redis does. */
static void reply_error(buf_t *out, const char *p, size_t n) {
  buf_reserve(out, n + 3);
  buf_add(out, "-", 1);
  for (size_t i = 0; i < n; i++) out->p[out->len++] = (p[i] == '\r' || p[i] == '\n') ? ' ' : p[i];
  buf_add(out, "\r\n", 2);
}

/* ------------------------------------------------------------------ store */

/* The keys and values, shared by every connection: chained hash table,
 * doubled when it holds as many entries as buckets. Owns every entry. */
typedef struct entry {
  struct entry *next;
  uint64_t hash;
  char *val;
  size_t vlen, klen;
  char key[];
} entry_t;

static struct {
  entry_t **buckets;
  size_t nbuckets, count;
} store;

static uint64_t hash_of(const char *p, size_t n) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
  return h;
}

static entry_t *store_find(const char *k, size_t klen, uint64_t h) {
  if (store.nbuckets == 0) return NULL;
  for (entry_t *e = store.buckets[h & (store.nbuckets - 1)]; e; e = e->next)
    if (e->hash == h && e->klen == klen && memcmp(e->key, k, klen) == 0) return e;
  return NULL;
}

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (p == NULL) {
    fprintf(stderr, "redis: ENOMEM: out of memory\n");
    exit(1);
  }
  return p;
}

static void store_grow(void) {
  size_t n = store.nbuckets ? store.nbuckets * 2 : 64;
  entry_t **b = calloc(n, sizeof(*b));
  if (b == NULL) return; /* stays correct, only slower */
  for (size_t i = 0; i < store.nbuckets; i++) {
    for (entry_t *e = store.buckets[i], *next; e; e = next) {
      next = e->next;
      e->next = b[e->hash & (n - 1)];
      b[e->hash & (n - 1)] = e;
    }
  }
  free(store.buckets);
  store.buckets = b;
  store.nbuckets = n;
}

static void store_set(const char *k, size_t klen, const char *v, size_t vlen) {
  uint64_t h = hash_of(k, klen);
  entry_t *e = store_find(k, klen, h);
  char *val = xmalloc(vlen);
  memcpy(val, v, vlen);
  if (e != NULL) {
    free(e->val);
  } else {
    if (store.count >= store.nbuckets) store_grow();
    e = xmalloc(sizeof(*e) + klen);
    e->hash = h;
    e->klen = klen;
    memcpy(e->key, k, klen);
    e->next = store.buckets[h & (store.nbuckets - 1)];
    store.buckets[h & (store.nbuckets - 1)] = e;
    store.count++;
  }
  e->val = val;
  e->vlen = vlen;
}

/* --------------------------------------------------------------- commands */

typedef struct {
  const char *p;
  size_t n;
} arg_t;

/* The arguments of the command being parsed: point into the read buffer. */
static struct {
  arg_t *v;
  size_t n, cap;
} args;

static void args_push(const char *p, size_t n) {
  if (args.n == args.cap) {
    size_t cap = args.cap ? args.cap * 2 : 16;
    arg_t *v = realloc(args.v, cap * sizeof(*v));
    if (v == NULL) {
      fprintf(stderr, "redis: ENOMEM: out of memory\n");
      exit(1);
    }
    args.v = v;
    args.cap = cap;
  }
  args.v[args.n++] = (arg_t){p, n};
}

static int is_cmd(const arg_t *a, const char *name) {
  size_t n = strlen(name);
  if (a->n != n) return 0;
  for (size_t i = 0; i < n; i++)
    if (toupper((unsigned char)a->p[i]) != name[i]) return 0;
  return 1;
}

static void wrong_args(buf_t *out, const char *cmd) {
  char msg[96];
  int n = snprintf(msg, sizeof(msg), "ERR wrong number of arguments for '%s' command", cmd);
  reply_error(out, msg, (size_t)n);
}

/* Redis's message: the name and the first arguments, 128 bytes of each at most. */
static void unknown_command(buf_t *out) {
  buf_t m = {0};
  buf_str(&m, "ERR unknown command '");
  buf_add(&m, args.v[0].p, args.v[0].n < 128 ? args.v[0].n : 128);
  buf_str(&m, "', with args beginning with: ");
  size_t start = m.len;
  for (size_t i = 1; i < args.n && m.len - start < 128; i++) {
    size_t room = 128 - (m.len - start);
    buf_add(&m, "'", 1);
    buf_add(&m, args.v[i].p, args.v[i].n < room ? args.v[i].n : room);
    buf_add(&m, "' ", 2);
  }
  reply_error(out, m.p, m.len);
  free(m.p);
}

static void execute(buf_t *out) {
  const arg_t *a = args.v;
  if (is_cmd(&a[0], "PING")) {
    if (args.n == 1)
      buf_str(out, "+PONG\r\n");
    else if (args.n == 2)
      reply_bulk(out, a[1].p, a[1].n);
    else
      wrong_args(out, "ping");
  } else if (is_cmd(&a[0], "ECHO")) {
    if (args.n == 2)
      reply_bulk(out, a[1].p, a[1].n);
    else
      wrong_args(out, "echo");
  } else if (is_cmd(&a[0], "SET")) {
    if (args.n < 3) {
      wrong_args(out, "set");
    } else if (args.n > 3) {
      buf_str(out, "-ERR syntax error\r\n"); /* Redis's options (EX, NX, ...) are not here */
    } else {
      store_set(a[1].p, a[1].n, a[2].p, a[2].n);
      buf_str(out, "+OK\r\n");
    }
  } else if (is_cmd(&a[0], "GET")) {
    if (args.n != 2) {
      wrong_args(out, "get");
    } else {
      entry_t *e = store_find(a[1].p, a[1].n, hash_of(a[1].p, a[1].n));
      if (e == NULL)
        buf_str(out, "$-1\r\n");
      else
        reply_bulk(out, e->val, e->vlen);
    }
  } else {
    unknown_command(out);
  }
}

/* ----------------------------------------------------------------- parser */

/* parse() results: a command in args (and *used bytes), more bytes needed,
 * or a protocol error (*err: Redis's message, static). */
enum { PARSED = 1, NEED_MORE = 0, PROTO_ERROR = -1 };

/* The end of the line at p (the '\r' of "\r\n"), or NULL. */
static const char *find_crlf(const char *p, const char *end) {
  for (const char *q = p; q + 1 < end; q++) {
    q = memchr(q, '\r', (size_t)(end - q - 1));
    if (q == NULL) return NULL;
    if (q[1] == '\n') return q;
  }
  return NULL;
}

/* A decimal integer filling [p, end) exactly: 0, or -1 if it is not one. */
static int parse_ll(const char *p, const char *end, long long *out) {
  int neg = 0;
  if (p < end && *p == '-') {
    neg = 1;
    p++;
  }
  if (p == end || end - p > 18) return -1;
  long long v = 0;
  for (; p < end; p++) {
    if (*p < '0' || *p > '9') return -1;
    v = v * 10 + (*p - '0');
  }
  *out = neg ? -v : v;
  return 0;
}

/* One line "<prefix>N\r\n" at p: PARSED with *num and *next, NEED_MORE, or
 * PROTO_ERROR (*err). */
static int parse_count(const char *p, const char *end, const char *too_big, long long *num,
                       const char **next, const char **err, const char *invalid) {
  const char *cr = find_crlf(p, end);
  if (cr == NULL) {
    if ((size_t)(end - p) > MAX_INLINE) {
      *err = too_big;
      return PROTO_ERROR;
    }
    return NEED_MORE;
  }
  if ((size_t)(cr - p) > MAX_INLINE) {
    *err = too_big;
    return PROTO_ERROR;
  }
  if (parse_ll(p + 1, cr, num) != 0) {
    *err = invalid;
    return PROTO_ERROR;
  }
  *next = cr + 2;
  return PARSED;
}

static int parse_multibulk(const char *p, const char *end, size_t *used, const char **err) {
  long long count, len;
  const char *q;
  int rv = parse_count(p, end, "ERR Protocol error: too big mbulk count string", &count, &q, err,
                       "ERR Protocol error: invalid multibulk length");
  if (rv != PARSED) return rv;
  if (count > MAX_ARGS) {
    *err = "ERR Protocol error: invalid multibulk length";
    return PROTO_ERROR;
  }
  for (long long i = 0; i < count; i++) {
    if (q == end) return NEED_MORE;
    if (*q != '$') {
      static char msg[64];
      snprintf(msg, sizeof(msg), "ERR Protocol error: expected '$', got '%c'", *q);
      *err = msg;
      return PROTO_ERROR;
    }
    rv = parse_count(q, end, "ERR Protocol error: too big bulk count string", &len, &q, err,
                     "ERR Protocol error: invalid bulk length");
    if (rv != PARSED) return rv;
    if (len < 0 || len > (long long)MAX_BULK) {
      *err = "ERR Protocol error: invalid bulk length";
      return PROTO_ERROR;
    }
    if ((size_t)(end - q) < (size_t)len + 2) return NEED_MORE;
    args_push(q, (size_t)len);
    q += len + 2; /* Redis does not look at the two bytes after the data either */
  }
  *used = (size_t)(q - p);
  return PARSED;
}

static int parse_inline(const char *p, const char *end, size_t *used, const char **err) {
  const char *nl = memchr(p, '\n', (size_t)(end - p));
  if (nl == NULL || (size_t)(nl - p) > MAX_INLINE) {
    if (nl == NULL && (size_t)(end - p) <= MAX_INLINE) return NEED_MORE;
    *err = "ERR Protocol error: too big inline request";
    return PROTO_ERROR;
  }
  const char *q = p, *stop = (nl > p && nl[-1] == '\r') ? nl - 1 : nl;
  while (q < stop) {
    while (q < stop && (*q == ' ' || *q == '\t')) q++;
    const char *w = q;
    while (q < stop && *q != ' ' && *q != '\t') q++;
    if (q > w) args_push(w, (size_t)(q - w));
  }
  *used = (size_t)(nl + 1 - p);
  return PARSED;
}

/* Runs every whole command in [p, p + n) and appends the replies to out.
 * Returns the bytes consumed; *failed is set (and the error appended) on a
 * protocol error, after which the rest must be dropped. */
static size_t run_commands(const char *p, size_t n, buf_t *out, int *failed) {
  size_t off = 0;
  while (off < n) {
    const char *err = NULL;
    size_t used = 0;
    args.n = 0;
    int rv = p[off] == '*' ? parse_multibulk(p + off, p + n, &used, &err)
                           : parse_inline(p + off, p + n, &used, &err);
    if (rv == NEED_MORE) break;
    if (rv == PROTO_ERROR) {
      reply_error(out, err, strlen(err));
      *failed = 1;
      return n;
    }
    off += used;
    if (args.n > 0) execute(out); /* "*0", "*-1" and blank lines are no command */
  }
  return off;
}

/* ------------------------------------------------------------ connections */

/* One per connection, the socket's data pointer: the bytes of a command not
 * complete yet. Freed in on_close, or after nc_loop_free() (which frees the
 * sockets still open without calling on_close): hence the list. */
typedef struct conn {
  buf_t in;
  struct conn *prev, *next;
} conn_t;

static conn_t *conns;

static void conn_free(conn_t *c) {
  if (c->prev != NULL)
    c->prev->next = c->next;
  else
    conns = c->next;
  if (c->next != NULL) c->next->prev = c->prev;
  free(c->in.p);
  free(c);
}

static buf_t out; /* the replies of one read: written (copied by libnc) before on_data returns */

static void on_data(nc_socket_t *s, const char *data, size_t len) {
  conn_t *c = nc_socket_get_data(s);
  int failed = 0;
  out.len = 0;
  if (c->in.len == 0) { /* the usual case: whole commands, parsed where they are */
    size_t used = run_commands(data, len, &out, &failed);
    if (!failed && used < len) buf_add(&c->in, data + used, len - used);
  } else {
    buf_add(&c->in, data, len);
    size_t used = run_commands(c->in.p, c->in.len, &out, &failed);
    memmove(c->in.p, c->in.p + used, c->in.len - used);
    c->in.len -= used;
  }
  if (failed) {
    c->in.len = 0;
    nc_socket_pause(s); /* nothing more is read: the error is the last reply */
    nc_socket_end(s, out.p, out.len);
  } else if (out.len > 0 && nc_socket_write(s, out.p, out.len, NULL, NULL) == 0) {
    nc_socket_pause(s); /* the client does not read its replies: stop reading its commands */
  }
}

static void on_drain(nc_socket_t *s) {
  nc_socket_resume(s);
}

static void on_close(nc_socket_t *s, int had_error) {
  (void)had_error;
  conn_free(nc_socket_get_data(s));
}

static void on_error(nc_socket_t *s, int err, const char *message) {
  (void)s;
  (void)err;
  (void)message; /* a client's reset: that connection closes, nothing else happens */
}

static const nc_socket_events_t conn_events = {
    .on_data = on_data, .on_drain = on_drain, .on_close = on_close, .on_error = on_error};

static void on_connection(nc_server_t *server, nc_socket_t *s) {
  (void)server;
  conn_t *c = calloc(1, sizeof(*c));
  if (c == NULL) {
    nc_socket_destroy(s);
    return;
  }
  c->next = conns;
  if (conns != NULL) conns->prev = c;
  conns = c;
  nc_socket_set_data(s, c);
  nc_socket_set_events(s, &conn_events);
}

static void on_listening(nc_server_t *server) {
  nc_address_t addr;
  char json[256];
  nc_server_address(server, &addr);
  nc_address_json(&addr, json, sizeof(json));
  printf("redis server listening on %s\n", json);
  fflush(stdout);
}

static void on_server_error(nc_server_t *server, int err, const char *message) {
  if (err == NC_ERR_NETCORE_SHUTDOWN) return;
  fprintf(stderr, "redis: %s: %s\n", nc_err_name(err), message);
  exit_code = 1;
  nc_server_close(server, NULL);
}

static void on_signal(nc_loop_t *loop, int signum, void *arg) {
  (void)signum;
  (void)arg;
  nc_loop_stop(loop);
}

int main(int argc, char **argv) {
  int port = 6379;
  const char *host = "127.0.0.1", *path = NULL, *endpoint = NULL;
  const nca_option_t options[] = {
      {"port", "N", "TCP port to listen on (default 6379; 0: one the OS picks)", NCA_OPT_INT, &port,
       0, 65535},
      {"host", "H", "address to listen on (default 127.0.0.1)", NCA_OPT_STRING, &host, 0, 0},
      {"path", "P", "listen on this UNIX socket path instead", NCA_OPT_STRING, &path, 0, 0},
      {"endpoint", "E", "netcore's endpoint (default: NETCORE_ENDPOINT, then the default rule)",
       NCA_OPT_STRING, &endpoint, 0, 0},
  };
  const nca_program_t prog = {
      "redis", "[--port N] [--host H] [--path P] [--endpoint E]",
      "A small Redis-protocol server (PING, ECHO, SET, GET) as a netcore handler actor."};
  int code =
      nca_options_parse(&prog, options, (int)(sizeof(options) / sizeof(options[0])), argc, argv);
  if (code >= 0) return code;

  nc_loop_t *loop;
  nc_server_t *server;
  char err[512];
  nc_loop_options_t opts = {.endpoint = endpoint, .name = "redis"};
  int rv = nc_loop_new(&loop, &opts, err, sizeof(err));
  if (rv != 0) {
    fprintf(stderr, "redis: %s: %s\n", nc_err_name(rv), err);
    return 1;
  }
  nc_server_new(loop, NULL, on_connection, &server);
  nc_server_events_t events = {
      .on_connection = on_connection, .on_listening = on_listening, .on_error = on_server_error};
  nc_server_set_events(server, &events);
  nc_loop_signal(loop, SIGINT, on_signal, NULL);
  nc_loop_signal(loop, SIGTERM, on_signal, NULL);

  rv =
      path ? nc_server_listen_path(server, path, NULL) : nc_server_listen(server, port, host, NULL);
  if (rv == 0) rv = nc_loop_run(loop);
  if (rv != 0 && rv != NC_ERR_NETCORE_SHUTDOWN) {
    fprintf(stderr, "redis: %s: %s\n", nc_err_name(rv), nc_loop_error_message(loop));
    exit_code = 1;
  }
  nc_loop_free(loop);
  while (conns != NULL) conn_free(conns);
  free(out.p);
  free(args.v);
  for (size_t i = 0; i < store.nbuckets; i++) {
    for (entry_t *e = store.buckets[i], *next; e; e = next) {
      next = e->next;
      free(e->val);
      free(e);
    }
  }
  free(store.buckets);
  return exit_code;
}
