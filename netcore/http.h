/* http.h: the tiny HTTP/1.1 server of --metrics-listen, on netcore's loop.
 *
 * It answers GET (and HEAD) /metrics with the Prometheus text of metrics.h
 * and nothing else: every other path is 404, every other method 405. It must
 * never cost the loop more than a scrape: reads are non-blocking, a request
 * head larger than HTTP_MAX_REQUEST bytes is answered 431 and closed, each
 * connection has one deadline for its whole life (a slowloris that trickles
 * bytes gets 408 when it runs out, however often it sends), at most
 * HTTP_MAX_CLIENTS are served at once (more are closed as they arrive), and
 * a connection whose fd falls into the descriptor reserve is closed at once.
 * Every response is Connection: close. Loop thread only.
 */
#ifndef NCD_HTTP_H
#define NCD_HTTP_H

#define HTTP_MAX_REQUEST 8192
#define HTTP_MAX_CLIENTS 32
#define HTTP_DEADLINE_MS 5000

/* Parses "HOST:PORT", "[V6]:PORT" or ":PORT"/"PORT" (loopback) into host
 * (cap bytes) and *port. Returns 0 or -1. */
int ncd_http_parse_listen(const char *spec, char *host, unsigned long cap, int *port);

/* Binds and listens on --metrics-listen, if given; logs the address it got
 * ("metrics on http://127.0.0.1:PORT/metrics", info). Returns 0 or -1 after
 * logging why. */
int ncd_http_start(void);

/* Closes the listener and every connection. */
void ncd_http_stop(void);

#endif
