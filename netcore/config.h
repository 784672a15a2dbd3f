/* config.h: the daemon's settings, from defaults and the command line.
 *
 * Filled once by ncd_config_parse() in main before the loop starts, then only
 * read. Every limit of the daemon lives here so --help can list it.
 */
#ifndef NCD_CONFIG_H
#define NCD_CONFIG_H

#include <stdint.h>

#define NCD_MAX_BINDS 16
#define NCD_MAX_LISTEN_FDS 64
#define NCD_MAX_ALLOW_UIDS 64

typedef struct ncd_config {
  const char *binds[NCD_MAX_BINDS]; /* ZeroMQ endpoints; point into argv, env or below */
  int nbinds;
  char default_endpoint[256]; /* default_endpoint.h's rule for this process */
  int group_access;           /* --group-access: endpoint dir 0750, socket files 0660 */
  int listen_fds[NCD_MAX_LISTEN_FDS]; /* inherited listening fds (--listen-fd, LISTEN_FDS) */
  int nlisten_fds;
  uint32_t credit_window;   /* default initial read credit per socket, bytes */
  uint32_t max_credit;      /* largest window a handler may ask for in Hello */
  uint32_t lease_ms;        /* default handler lease */
  uint32_t max_frame;       /* largest accepted ZeroMQ frame */
  uint32_t max_write_queue; /* per-socket write queue limit, bytes */
  uint32_t max_connections; /* total sockets netcore holds; 0 = RLIMIT_NOFILE - fd_reserve */
  uint32_t fd_reserve;      /* descriptors kept for ZeroMQ and netcore itself; 0 = default */
  uint32_t shutdown_ms;     /* how long SIGTERM waits for queued writes */
  uint32_t hwm;             /* ZeroMQ send high-water mark per handler, messages */
  uint32_t max_envelope;    /* largest accepted envelope frame of a known handler */
  uint32_t max_batch;       /* most commands in one CommandBatch */
  uint64_t handler_budget;  /* bytes queued toward one handler before it is throttled */
  uint64_t max_memory;      /* bytes all write queues together may hold */
  uint32_t max_handler_sockets; /* sockets one handler may own; 0 = no limit of its own */
  uint32_t max_handler_servers; /* servers one handler may own */
  int log_level;
  /* Who may be a handler (auth.h). */
  const char *curve_secret_file; /* netcore's CURVE key pair; NULL = no CURVE */
  const char *curve_allow_file;  /* allowed handler public keys */
  uint32_t allow_uids[NCD_MAX_ALLOW_UIDS]; /* ipc peers' uids let in besides our own */
  int nallow_uids;
  int insecure_tcp;              /* a non-loopback tcp bind without CURVE is allowed */
  uint32_t heartbeat_ms;         /* ZMTP heartbeat: a silent link is dead after this */
  const char *policy_file;       /* --policy: what each handler may do (policy.h); NULL = none */
  uint32_t handoff_ms;           /* how long a gone handler's connections wait for an adopter */
  int takeover;                  /* --takeover: take every socket over from the running netcore */
  const char *metrics_listen;    /* --metrics-listen HOST:PORT (http.h); NULL = none */
  int log_format;                /* --log-format: NCD_LOG_TEXT or NCD_LOG_JSON */
} ncd_config;

/* Parses argv into cfg. Returns 0 to run, 1 when --help/--version was
 * printed (exit 0), or -1 after printing a usage error (exit 2). */
int ncd_config_parse(ncd_config *cfg, int argc, char **argv);

#endif
