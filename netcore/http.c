/* http.c: see http.h. */
#include "http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "daemon.h"
#include "errors.h"
#include "fdlimit.h"
#include "log.h"
#include "metrics.h"

typedef struct client {
  uv_tcp_t tcp;
  uv_timer_t deadline;
  uv_write_t wr;
  ncc_list link;
  char *resp; /* the response being written (malloc'ed) */
  size_t len;
  int closing, handles;
  char req[HTTP_MAX_REQUEST];
} client;

static uv_tcp_t listener;
static int listening;
static ncc_list clients = {&clients, &clients};
static unsigned nclients;

int ncd_http_parse_listen(const char *spec, char *host, unsigned long cap, int *port) {
  const char *colon = strrchr(spec, ':');
  const char *p = colon ? colon + 1 : spec;
  char *end;
  long v = strtol(p, &end, 10);
  if (!*p || *end || v < 0 || v > 65535) return -1;
  *port = (int)v;
  if (!colon || colon == spec) {
    snprintf(host, cap, "127.0.0.1");
    return 0;
  }
  size_t n = (size_t)(colon - spec);
  if (spec[0] == '[' && n >= 2 && spec[n - 1] == ']') spec++, n -= 2;
  if (n + 1 > cap) return -1;
  memcpy(host, spec, n);
  host[n] = 0;
  return 0;
}

static void handle_closed(uv_handle_t *h) {
  client *c = h->data;
  if (--c->handles > 0) return;
  free(c->resp);
  free(c);
}

static void client_close(client *c) {
  if (c->closing) return;
  c->closing = 1;
  ncc_list_remove(&c->link);
  nclients--;
  uv_close((uv_handle_t *)&c->deadline, handle_closed);
  uv_close((uv_handle_t *)&c->tcp, handle_closed);
}

static void written(uv_write_t *req, int status) {
  client_close(req->data);
}

static void respond(client *c, int status, const char *reason, const char *type, char *body,
                    size_t body_len, int head_only) {
  uv_read_stop((uv_stream_t *)&c->tcp);
  char head[256];
  int n = snprintf(head, sizeof head,
                   "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                   "Connection: close\r\n\r\n",
                   status, reason, type, body_len);
  size_t send_body = head_only ? 0 : body_len;
  c->resp = malloc((size_t)n + send_body);
  if (!c->resp) {
    free(body);
    client_close(c);
    return;
  }
  memcpy(c->resp, head, (size_t)n);
  if (send_body) memcpy(c->resp + n, body, send_body);
  free(body);
  c->len = (size_t)n + send_body;
  uv_buf_t b = uv_buf_init(c->resp, (unsigned)c->len);
  c->wr.data = c;
  if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, written) != 0) client_close(c);
}

static void respond_text(client *c, int status, const char *reason, const char *text) {
  char *body = strdup(text);
  respond(c, status, reason, "text/plain; charset=utf-8", body, body ? strlen(body) : 0, 0);
}

/* The request head is complete: "METHOD SP TARGET SP HTTP/1.x". */
static void serve(client *c) {
  char method[16], target[256], version[16];
  if (sscanf(c->req, "%15s %255s %15s", method, target, version) != 3 ||
      strncmp(version, "HTTP/1.", 7) != 0) {
    respond_text(c, 400, "Bad Request", "bad request line\n");
    return;
  }
  int head = strcmp(method, "HEAD") == 0;
  if (strcmp(method, "GET") != 0 && !head) {
    respond_text(c, 405, "Method Not Allowed", "only GET and HEAD\n");
    return;
  }
  char *q = strchr(target, '?');
  if (q) *q = 0;
  if (strcmp(target, "/metrics") != 0) {
    respond_text(c, 404, "Not Found", "netcore serves /metrics\n");
    return;
  }
  ncd_mset set;
  char *text = NULL;
  size_t len = 0;
  int rc = ncd_metrics_collect(&set);
  if (rc == 0) {
    rc = ncd_metrics_render(&set, &text, &len);
    ncd_mset_free(&set);
  }
  if (rc != 0) {
    respond_text(c, 503, "Service Unavailable", "out of memory\n");
    return;
  }
  respond(c, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", text, len, head);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  client *c = h->data;
  /* One byte is kept for the NUL that ends the head. */
  *buf = uv_buf_init(c->req + c->len, (unsigned)(sizeof c->req - 1 - c->len));
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  client *c = s->data;
  if (nread < 0) {
    client_close(c);
    return;
  }
  c->len += (size_t)nread;
  c->req[c->len] = 0;
  if (strstr(c->req, "\r\n\r\n") || strstr(c->req, "\n\n"))
    serve(c);
  else if (c->len >= sizeof c->req - 1)
    respond_text(c, 431, "Request Header Fields Too Large", "request head too large\n");
}

static void deadline_cb(uv_timer_t *t) {
  client *c = t->data;
  if (c->resp)
    client_close(c); /* a response nobody reads */
  else
    respond_text(c, 408, "Request Timeout", "request not complete in time\n");
}

static void connection_cb(uv_stream_t *server, int status) {
  if (status < 0) {
    ncd_debug("metrics accept: %s", uv_strerror(status));
    return;
  }
  client *c = calloc(1, sizeof *c);
  if (!c) return;
  if (ncd_uv_check(uv_tcp_init(ncd.loop, &c->tcp), "make a metrics connection") != 0) {
    free(c); /* the connection waits in the backlog for the next accept */
    return;
  }
  c->tcp.data = c->deadline.data = c;
  if (ncd_uv_check(uv_timer_init(ncd.loop, &c->deadline), "make a metrics deadline") != 0) {
    c->handles = 1;
    uv_close((uv_handle_t *)&c->tcp, handle_closed);
    return;
  }
  c->handles = 2;
  ncc_list_init(&c->link);
  ncc_list_push(&clients, &c->link);
  nclients++;
  uv_os_fd_t fd = -1;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 ||
      uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0 || ncd_fdlimit_in_reserve(fd) ||
      nclients > HTTP_MAX_CLIENTS) {
    ncd_log_event(NCD_LOG_DEBUG, 1, "metrics_client_refused", "clients=%u", nclients - 1);
    client_close(c);
    return;
  }
  if (ncd_uv_check(uv_timer_start(&c->deadline, deadline_cb, HTTP_DEADLINE_MS, 0),
                   "start a metrics deadline") != 0 ||
      ncd_uv_check(uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb),
                   "read a metrics request") != 0)
    client_close(c);
}

int ncd_http_start(void) {
  if (!ncd.cfg.metrics_listen) return 0;
  char host[128];
  int port;
  struct sockaddr_storage ss;
  socklen_t sl;
  if (ncd_http_parse_listen(ncd.cfg.metrics_listen, host, sizeof host, &port) != 0 ||
      ncd_addr_parse_ip(host, (uint32_t)port, &ss, &sl) != 0) {
    ncd_error("--metrics-listen %s: not HOST:PORT with an IP address", ncd.cfg.metrics_listen);
    return -1;
  }
  int rc;
  if (ncd_uv_check(uv_tcp_init(ncd.loop, &listener), "make the --metrics-listen socket") != 0)
    return -1;
  listening = 1;
  if ((rc = uv_tcp_bind(&listener, (struct sockaddr *)&ss, 0)) != 0 ||
      (rc = uv_listen((uv_stream_t *)&listener, 128, connection_cb)) != 0) {
    ncd_error("--metrics-listen %s: %s: %s", ncd.cfg.metrics_listen, uv_err_name(rc),
              uv_strerror(rc));
    return -1;
  }
  struct sockaddr_storage bound;
  int blen = sizeof bound;
  ncc_addr a;
  uv_tcp_getsockname(&listener, (struct sockaddr *)&bound, &blen);
  ncd_addr_from_sockaddr((struct sockaddr *)&bound, (socklen_t)blen, &a);
  ncd_info(a.family == NCC_FAMILY_IPV6 ? "metrics on http://[%s]:%u/metrics"
                                       : "metrics on http://%s:%u/metrics",
           a.address, a.port);
  return 0;
}

void ncd_http_stop(void) {
  while (!ncc_list_empty(&clients)) client_close(ncc_container_of(clients.next, client, link));
  if (listening && !uv_is_closing((uv_handle_t *)&listener))
    uv_close((uv_handle_t *)&listener, NULL);
  listening = 0;
}
