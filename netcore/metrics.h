/* metrics.h: netcore's counters, gauges and histogram, and their two views.
 *
 * Counters that only a moment can see (commands, events, refusals, handlers
 * that came and went, loop turns) are bumped here by one-line hooks in the
 * modules that see them; everything that is already state (sockets, credit,
 * write queues, bytes a handler has not taken) is read from the daemon's own
 * structures when someone asks. A scrape collects both into an ncd_mset: a
 * list of metric families with their samples, in exposition order. The same
 * set becomes the Prometheus text of /metrics (http.h) and the Stats event
 * (wire.c), so both show the same numbers by construction.
 *
 * The debug log lines of connections and handlers come from the same hooks.
 * Loop thread only.
 */
#ifndef NCD_METRICS_H
#define NCD_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct ncd_handler;
struct ncd_socket;
struct ncc_event;

/* Per handler, kept inside ncd_handler (daemon.h). */
#define NCD_METRICS_CMD_KINDS 24 /* > the number of ncc_cmd_kind values */
#define NCD_METRICS_CODES 12     /* distinct error codes counted per handler */
typedef struct ncd_hstats {
  uint64_t joined_ms;                          /* uv_now() of its Hello */
  uint64_t commands[NCD_METRICS_CMD_KINDS];    /* by ncc_cmd_kind */
  uint64_t events;                             /* messages (events) sent toward it */
  uint64_t payload_bytes;                      /* bytes of its Write/End payload frames */
  uint64_t closed_read, closed_written;        /* bytes of its sockets that are closed */
  uint64_t adopted;                            /* sockets it adopted (PROTOCOL.md 13) */
  const char *codes[NCD_METRICS_CODES];        /* error codes sent to it (static strings) */
  uint64_t code_counts[NCD_METRICS_CODES + 1]; /* the last one: any other code */
} ncd_hstats;

/* ------------------------------------------------------------ the set */

typedef struct ncd_mlabel {
  const char *name; /* static */
  size_t value;     /* offset in ncd_mset.text */
} ncd_mlabel;

typedef struct ncd_msample {
  const char *suffix; /* "" or a histogram's "_bucket", "_sum", "_count" (static) */
  size_t first_label, nlabels;
  double value;
} ncd_msample;

typedef struct ncd_mfamily {
  const char *name, *help, *type; /* static */
  size_t first_sample, nsamples;
} ncd_mfamily;

/* A snapshot of every metric. Owned by whoever collected it; free with
 * ncd_mset_free. Label values live in text (copied at collection). */
typedef struct ncd_mset {
  ncd_mfamily *fam;
  size_t nfam, capfam;
  ncd_msample *smp;
  size_t nsmp, capsmp;
  ncd_mlabel *lab;
  size_t nlab, caplab;
  char *text;
  size_t ntext, captext;
  int oom; /* an allocation failed: the set is incomplete */
  uint64_t uptime_ms;
  const char *instance_id; /* ncd.instance_id */
} ncd_mset;

/* Fills *set with a snapshot of everything now. Returns 0 or NCD_ENOMEM
 * (the set is then freed). */
int ncd_metrics_collect(ncd_mset *set);
void ncd_mset_free(ncd_mset *set);
/* A label value of the set (NUL-terminated, inside set->text). */
static inline const char *ncd_mset_text(const ncd_mset *set, size_t off) {
  return set->text + off;
}

/* Prometheus text exposition format 0.0.4 of the set, in a malloc'ed buffer
 * (*out, *len; the caller frees). Returns 0 or NCD_ENOMEM. */
int ncd_metrics_render(const ncd_mset *set, char **out, size_t *len);

/* ------------------------------------------------------------ lifecycle */

/* Starts the loop turn histogram (a check handle and libuv's idle time
 * metric; the loop must have been configured with UV_METRICS_IDLE_TIME).
 * Returns 0 or the libuv error, logged. */
int ncd_metrics_start(void);
void ncd_metrics_stop(void);

/* Answers a Stats command of h with a Stats event. Returns 0 or NCD_ENOMEM. */
int ncd_metrics_send_stats(struct ncd_handler *h);

/* ------------------------------------------------------------ hooks */

/* Why a connection (or a received fd) was closed at once. The first three
 * are fdlimit.h's enum ncd_fd_refusal, in its order. */
enum ncd_refusal {
  NCD_REFUSED_MAX_CONNECTIONS, /* --max-connections reached */
  NCD_REFUSED_FD_RESERVE,      /* the new fd was inside the descriptor reserve */
  NCD_REFUSED_FD_PASSED,       /* a received fd past either limit */
  NCD_REFUSED_NO_MEMBER,       /* no server of the listener could take it: maxConnections,
                                  paused, over budget, at its socket limit */
  NCD_REFUSED_KINDS
};

void ncd_metrics_handler_joined(struct ncd_handler *h);
/* reason: a static string ("said Bye", "lease expired", ...). */
void ncd_metrics_handler_gone(struct ncd_handler *h, const char *reason);
/* Before h is freed: its byte totals move into netcore's own. */
void ncd_metrics_handler_freed(struct ncd_handler *h);
/* A command h sent: its ncc_cmd_kind, its name (static) and its payload
 * frame's bytes (0 if none). */
void ncd_metrics_command(struct ncd_handler *h, int kind, const char *name, size_t payload_len);
/* An event is on its way to h (errors are counted by code; codes are static
 * strings, as ncd_err_name gives them). */
void ncd_metrics_event(struct ncd_handler *h, const struct ncc_event *ev);
/* A socket is open: how is "accepted", "connected" or "received". */
void ncd_metrics_socket_opened(struct ncd_socket *s, const char *how);
/* A socket starts closing (its fd is still open). */
void ncd_metrics_socket_closed(struct ncd_socket *s);
void ncd_metrics_refused(enum ncd_refusal why);
/* accept() failed with err (negative errno). */
void ncd_metrics_accept_error(int err);
/* A would-be handler's connection was refused by authentication. */
void ncd_metrics_auth_refused(void);
/* A socket moved from the handler `from` (gone or leaving) to `to`. */
void ncd_metrics_adopted(struct ncd_handler *from, struct ncd_handler *to);
/* n bytes moved by a pipe inside netcore (pipe.h). */
void ncd_metrics_piped(uint64_t n);

#endif
