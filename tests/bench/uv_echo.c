/*
 * uv_echo: the seed's echo server (`c.write('hello\r\n'); c.pipe(c)`) as one libuv process
 * with no framework around it: the in-process limit of netcore's design, which runs the
 * same libuv loop but adds a ZeroMQ hop to a handler actor.
 *
 * Same command line and stdout line as the example actors:
 *   uv_echo [--port N] [--host H] [--path P]
 *   -> echo server listening on {"address":"127.0.0.1","port":N}
 * Like Node's pipe(): echo what arrives, stop reading while more than HIGH_WATER bytes wait
 * in the kernel-bound queue, and answer the peer's FIN with ours once the queue is flushed
 * (allowHalfOpen false). Nagle stays on, as in Node and the seed. One loop, one thread; a
 * connection owns its write requests and is freed in its close callback.
 */
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#define READ_BUF_LEN (64 * 1024)
#define HIGH_WATER (64 * 1024) /* Node's default highWaterMark for a socket's writable side */
#define BACKLOG 511            /* Node's default */

struct conn {
  union {
    uv_stream_t stream;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } h;
  bool is_pipe;
  bool reading;
  bool eof;
  uv_shutdown_t shut;
};

struct wreq {
  uv_write_t req;
  uv_buf_t buf;
  char data[]; /* the bytes the kernel did not take at once */
};

static uv_loop_t *loop;
static union {
  uv_tcp_t tcp;
  uv_pipe_t pipe;
} server;
static bool server_is_pipe;
static const char *unix_path;
static uv_signal_t sigint_h, sigterm_h;
/* One read buffer for the whole loop: every read is consumed before the next alloc. */
static char read_buf[READ_BUF_LEN];

static uv_stream_t *conn_stream(struct conn *c) {
  return &c->h.stream;
}

static void on_close(uv_handle_t *h) {
  free(h->data);
}

static void conn_close(struct conn *c) {
  uv_handle_t *h = (uv_handle_t *)conn_stream(c);
  if (!uv_is_closing(h)) uv_close(h, on_close);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  (void)suggested;
  *buf = uv_buf_init(read_buf, sizeof read_buf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void on_shutdown(uv_shutdown_t *req, int status) {
  (void)status;
  conn_close(req->data);
}

static void maybe_resume(struct conn *c) {
  uv_stream_t *s = conn_stream(c);
  if (!c->reading && !c->eof && uv_stream_get_write_queue_size(s) <= HIGH_WATER) {
    if (uv_read_start(s, on_alloc, on_read) == 0) c->reading = true;
  }
}

static void on_write(uv_write_t *req, int status) {
  struct wreq *w = (struct wreq *)req;
  struct conn *c = req->handle->data;
  free(w);
  if (status < 0) {
    if (status != UV_ECANCELED) conn_close(c);
    return;
  }
  maybe_resume(c);
}

/* Writes at once what the kernel takes; copies only the rest into a queued request. */
static int send_bytes(struct conn *c, const char *p, size_t n) {
  uv_stream_t *s = conn_stream(c);
  uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
  int rv = 0;
  if (uv_stream_get_write_queue_size(s) == 0) {
    rv = uv_try_write(s, &b, 1);
    if (rv == (int)n) return 0;
    if (rv < 0 && rv != UV_EAGAIN) return rv;
    if (rv < 0) rv = 0;
  }
  size_t left = n - (size_t)rv;
  struct wreq *w = malloc(sizeof *w + left);
  if (!w) return UV_ENOMEM;
  memcpy(w->data, p + rv, left);
  w->buf = uv_buf_init(w->data, (unsigned)left);
  if ((rv = uv_write(&w->req, s, &w->buf, 1, on_write)) != 0) {
    free(w);
    return rv;
  }
  if (uv_stream_get_write_queue_size(s) > HIGH_WATER && c->reading) {
    uv_read_stop(s); /* pipe() pauses the source while the destination is full */
    c->reading = false;
  }
  return 0;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  struct conn *c = s->data;
  if (nread > 0) {
    if (send_bytes(c, buf->base, (size_t)nread) != 0) conn_close(c);
    return;
  }
  if (nread == UV_EOF) {
    /* The peer's FIN: ours follows once every queued write has reached the kernel. */
    uv_read_stop(s);
    c->reading = false;
    c->eof = true;
    c->shut.data = c;
    if (uv_shutdown(&c->shut, s, on_shutdown) != 0) conn_close(c);
    return;
  }
  if (nread < 0) conn_close(c);
}

static void on_connection(uv_stream_t *srv, int status) {
  if (status < 0) {
    fprintf(stderr, "uv_echo: accept: %s\n", uv_err_name(status));
    return;
  }
  struct conn *c = calloc(1, sizeof *c);
  if (!c) return;
  c->is_pipe = server_is_pipe;
  uv_stream_t *s = conn_stream(c);
  if (c->is_pipe)
    uv_pipe_init(loop, &c->h.pipe, 0);
  else
    uv_tcp_init(loop, &c->h.tcp);
  s->data = c;
  if (uv_accept(srv, s) != 0) {
    conn_close(c);
    return;
  }
  static const char greeting[] = "hello\r\n";
  if (send_bytes(c, greeting, sizeof greeting - 1) != 0) {
    conn_close(c);
    return;
  }
  c->reading = false;
  maybe_resume(c);
}

static void close_walk(uv_handle_t *h, void *arg) {
  (void)arg;
  if (uv_is_closing(h)) return;
  if (h == (uv_handle_t *)&server || h == (uv_handle_t *)&sigint_h ||
      h == (uv_handle_t *)&sigterm_h)
    uv_close(h, NULL);
  else
    uv_close(h, on_close);
}

static void on_signal(uv_signal_t *h, int sig) {
  (void)h;
  (void)sig;
  if (unix_path) unlink(unix_path); /* Node unlinks a UNIX server's path on close */
  uv_walk(loop, close_walk, NULL);
}

static int listen_on(const char *host, int port, const char *path, char *addr_json, size_t len) {
  int rv;
  if (path) {
    server_is_pipe = true;
    unix_path = path;
    uv_pipe_init(loop, &server.pipe, 0);
    if ((rv = uv_pipe_bind(&server.pipe, path)) != 0) return rv;
    snprintf(addr_json, len, "{\"address\":\"%s\"}", path);
  } else {
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    if (getaddrinfo(host, portstr, &hints, &res) != 0) return UV_EAI_NONAME;
    uv_tcp_init(loop, &server.tcp);
    rv = uv_tcp_bind(&server.tcp, res->ai_addr, 0);
    freeaddrinfo(res);
    if (rv != 0) return rv;
  }
  if ((rv = uv_listen((uv_stream_t *)&server, BACKLOG, on_connection)) != 0) return rv;
  if (!path) {
    struct sockaddr_storage ss;
    int sl = sizeof ss;
    char ip[64];
    uv_tcp_getsockname(&server.tcp, (struct sockaddr *)&ss, &sl);
    if (ss.ss_family == AF_INET6) {
      uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof ip);
      port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    } else {
      uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof ip);
      port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
    snprintf(addr_json, len, "{\"address\":\"%s\",\"port\":%d}", ip, port);
  }
  return 0;
}

int main(int argc, char **argv) {
  const char *host = "localhost", *path = NULL;
  int port = 8124;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
      port = atoi(argv[++i]);
    else if (strcmp(argv[i], "--host") == 0 && i + 1 < argc)
      host = argv[++i];
    else if (strcmp(argv[i], "--path") == 0 && i + 1 < argc)
      path = argv[++i];
    else {
      fprintf(stderr, "usage: uv_echo [--port N] [--host H] [--path P]\n");
      return 1;
    }
  }
  loop = uv_default_loop();
  char addr_json[256];
  int rv = listen_on(host, port, path, addr_json, sizeof addr_json);
  if (rv != 0) {
    fprintf(stderr, "uv_echo: %s: %s\n", uv_err_name(rv), uv_strerror(rv));
    uv_walk(loop, close_walk, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    return 1;
  }
  uv_signal_init(loop, &sigint_h);
  uv_signal_start(&sigint_h, on_signal, SIGINT);
  uv_signal_init(loop, &sigterm_h);
  uv_signal_start(&sigterm_h, on_signal, SIGTERM);
  printf("echo server listening on %s\n", addr_json);
  fflush(stdout);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_loop_close(loop);
  return 0;
}
