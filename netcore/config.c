/* config.c: see config.h.
 *
 * One table (options[]) holds every option: its name, the kind of argument,
 * the default, the lower bound, where in ncd_config it goes and its help.
 * getopt_long's option array, the defaults and --help are all made from it, so
 * an option is added in one place. README's option table is checked against
 * --help by tests/integration/cli_options.py. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "default_endpoint.h"
#include "log.h"

#ifndef NCD_VERSION
#define NCD_VERSION "0.0.0"
#endif

typedef enum arg_kind {
  ARG_FLAG,       /* no argument: the int at offset becomes 1 */
  ARG_U32,        /* a number 0 .. UINT32_MAX into a uint32_t */
  ARG_U64,        /* a number of bytes into a uint64_t */
  ARG_STR,        /* a string (points into argv) */
  ARG_BIND,       /* a --bind endpoint, appended to binds[] */
  ARG_LISTEN_FD,  /* an inherited fd, appended to listen_fds[] */
  ARG_ALLOW_UID,  /* a uid, appended to allow_uids[] */
  ARG_LOG_LEVEL,  /* ncd_log_level_parse() */
  ARG_LOG_FORMAT, /* ncd_log_format_parse() */
  ARG_HELP,
  ARG_VERSION,
} arg_kind;

typedef struct option_spec {
  const char *name;    /* without the leading "--" */
  const char *metavar; /* the argument in --help; NULL for kinds without one */
  arg_kind kind;
  size_t offset;       /* of the field in ncd_config (numbers, strings, flags) */
  uint64_t def;        /* default of a number (or log level/format) */
  int show_default;    /* --help ends the text with "(default <def>)" */
  uint32_t min;        /* smallest value accepted (numbers) */
  const char *min_why; /* why, said after "must be at least <min>"; or NULL */
  const char *help;
} option_spec;

#define AT(field) offsetof(ncd_config, field)

static const option_spec options[] = {
    {"bind", "ENDPOINT", ARG_BIND, 0, 0, 0, 0, NULL,
     "ZeroMQ endpoint for handlers; repeatable (default $NETCORE_ENDPOINT, else "
     "ipc://$XDG_RUNTIME_DIR/netcore/netcore.sock, for root ipc:///run/netcore/netcore.sock, "
     "else ipc:///tmp/netcore-UID/netcore.sock)"},
    {"group-access", NULL, ARG_FLAG, AT(group_access), 0, 0, 0, NULL,
     "the default endpoint's directory 0750 and ipc socket files 0660: handlers of netcore's "
     "group may connect"},
    {"listen-fd", "N", ARG_LISTEN_FD, 0, 0, 0, 0, NULL,
     "adopt inherited listening fd N (repeatable; systemd's LISTEN_FDS/LISTEN_PID are honoured "
     "too)"},
    {"credit-window", "BYTES", ARG_U32, AT(credit_window), 256 * 1024, 1, 1, NULL,
     "initial read credit per socket"},
    {"lease-ms", "MS", ARG_U32, AT(lease_ms), 10000, 1, 0, NULL,
     "handler lease: silence this long = gone"},
    {"max-frame", "BYTES", ARG_U32, AT(max_frame), 16 * 1024 * 1024, 1, 0, NULL,
     "largest accepted frame"},
    {"max-write-queue", "BYTES", ARG_U32, AT(max_write_queue), 16 * 1024 * 1024, 1, 0, NULL,
     "per-socket write queue limit"},
    {"max-connections", "N", ARG_U32, AT(max_connections), 0, 0, 0, NULL,
     "total sockets held (default, also for 0, and upper bound: the descriptor limit minus "
     "--fd-reserve)"},
    {"fd-reserve", "N", ARG_U32, AT(fd_reserve), 0, 0, 16, "ZeroMQ and netcore need them",
     "descriptors kept for ZeroMQ and netcore itself, at least 16 (default 64, or 1/32 of the "
     "limit if more)"},
    {"shutdown-ms", "MS", ARG_U32, AT(shutdown_ms), 2000, 1, 0, NULL,
     "SIGTERM: time given to queued writes"},
    {"handoff-ms", "MS", ARG_U32, AT(handoff_ms), 5000, 1, 0, NULL,
     "how long a gone handler's connections wait for a group member or successor to adopt "
     "them"},
    {"takeover", NULL, ARG_FLAG, AT(takeover), 0, 0, 0, NULL,
     "take every listener and connection over from the netcore running on the same --bind "
     "(zero-downtime upgrade, README); it exits 0 once it holds nothing"},
    {"hwm", "N", ARG_U32, AT(hwm), 100000, 1, 0, NULL, "ZeroMQ send high-water mark, messages"},
    {"max-credit", "BYTES", ARG_U32, AT(max_credit), 16 * 1024 * 1024, 1, 0, NULL,
     "largest read credit of one socket"},
    {"max-envelope", "BYTES", ARG_U32, AT(max_envelope), 1024 * 1024, 1, 0, NULL,
     "largest envelope frame of a handler"},
    {"max-batch", "N", ARG_U32, AT(max_batch), 1024, 1, 256, "client libraries send up to 256",
     "most commands in one batch, >= 256"},
    {"handler-budget", "BYTES", ARG_U64, AT(handler_budget), 64ull * 1024 * 1024, 1, 0, NULL,
     "bytes queued toward one handler before netcore stops reading its sockets"},
    {"max-memory", "BYTES", ARG_U64, AT(max_memory), 1024ull * 1024 * 1024, 1, 0, NULL,
     "bytes all write queues may hold together"},
    {"max-handler-sockets", "N", ARG_U32, AT(max_handler_sockets), 0, 1, 0, NULL,
     "sockets one handler may own; 0 = only --max-connections"},
    {"max-handler-servers", "N", ARG_U32, AT(max_handler_servers), 1024, 1, 0, NULL,
     "servers one handler may own"},
    {"log-level", "LEVEL", ARG_LOG_LEVEL, AT(log_level), NCD_LOG_INFO, 0, 0, NULL,
     "error, warn, info or debug (default info)"},
    {"log-format", "FORMAT", ARG_LOG_FORMAT, AT(log_format), NCD_LOG_TEXT, 0, 0, NULL,
     "text or json (one object a line; default text)"},
    {"metrics-listen", "ADDR", ARG_STR, AT(metrics_listen), 0, 0, 0, NULL,
     "serve Prometheus metrics at http://ADDR/metrics; HOST:PORT, or PORT alone for 127.0.0.1 "
     "(0 = any port)"},
    {"heartbeat-ms", "MS", ARG_U32, AT(heartbeat_ms), 2000, 1, 0, NULL,
     "a handler link silent this long is dead (ZMTP heartbeats; 0 = off)"},
    {"curve-secret-file", "F", ARG_STR, AT(curve_secret_file), 0, 0, 0, NULL,
     "netcore's CURVE key pair (from netcore keygen): tcp binds use CURVE"},
    {"curve-allow", "FILE", ARG_STR, AT(curve_allow_file), 0, 0, 0, NULL,
     "handler public keys allowed in, 'NAME Z85KEY' a line"},
    {"allow-uid", "UID", ARG_ALLOW_UID, 0, 0, 0, 0, NULL,
     "also let this uid in over ipc (repeatable)"},
    {"insecure-tcp", NULL, ARG_FLAG, AT(insecure_tcp), 0, 0, 0, NULL,
     "allow a non-loopback tcp bind without CURVE"},
    {"policy", "FILE", ARG_STR, AT(policy_file), 0, 0, 0, NULL,
     "what each handler may listen on, connect to and join, and its limits (docs/POLICY.md; "
     "SIGHUP reloads it); without it CURVE handlers may do nothing, ipc handlers anything"},
    {"help", NULL, ARG_HELP, 0, 0, 0, 0, NULL, "print this and exit"},
    {"version", NULL, ARG_VERSION, 0, 0, 0, 0, NULL, "print the version and exit"},
};

#define NOPTIONS (sizeof options / sizeof options[0])
#define OPT_BASE 1000  /* getopt_long's value of options[i] is OPT_BASE + i */
#define HELP_COLUMN 26 /* where the text of an option starts in --help */
#define HELP_WIDTH 80

/* Prints text, the cursor at HELP_COLUMN: words wrapped at HELP_WIDTH,
 * continuation lines indented to HELP_COLUMN. */
static void print_wrapped(FILE *out, const char *text) {
  size_t col = HELP_COLUMN;
  while (*text) {
    size_t word = strcspn(text, " ");
    if (col > HELP_COLUMN && col + 1 + word > HELP_WIDTH) {
      fprintf(out, "\n%*s", HELP_COLUMN, "");
      col = HELP_COLUMN;
    } else if (col > HELP_COLUMN) {
      fputc(' ', out);
      col++;
    }
    fprintf(out, "%.*s", (int)word, text);
    col += word;
    text += word;
    text += strspn(text, " ");
  }
  fputc('\n', out);
}

static void usage(FILE *out) {
  fputs(
      "Usage: netcore [options]\n"
      "The netcore daemon: owns TCP and UNIX sockets on one event loop and serves\n"
      "handler actors over ZeroMQ (protocol netcore.v1, see proto/PROTOCOL.md).\n\n",
      out);
  for (size_t i = 0; i < NOPTIONS; i++) {
    const option_spec *o = &options[i];
    int n =
        fprintf(out, "  --%s%s%s", o->name, o->metavar ? " " : "", o->metavar ? o->metavar : "");
    if (n < HELP_COLUMN)
      fprintf(out, "%*s", HELP_COLUMN - n, "");
    else
      fprintf(out, "\n%*s", HELP_COLUMN, "");
    char text[512];
    if (o->show_default)
      snprintf(text, sizeof text, "%s (default %llu)", o->help, (unsigned long long)o->def);
    else
      snprintf(text, sizeof text, "%s", o->help);
    print_wrapped(out, text);
  }
  fputs(
      "Subcommand: netcore keygen FILE   writes a new key pair (mode 0600) to FILE\n"
      "                                  and prints its public key\n"
      "            netcore status [--endpoint E]   a running netcore's handlers,\n"
      "                                  sockets, queues and listeners (a table)\n"
      "            netcore --ping [--endpoint E]   exit 0 if a netcore answers Hello\n",
      out);
}

static int parse_u32(const char *opt, const char *s, uint32_t *out) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *s == '\0' || *end != '\0' || *s == '-' || v > UINT32_MAX) {
    fprintf(stderr, "netcore: %s needs a number from 0 to %u, not '%s'\n", opt, UINT32_MAX, s);
    return -1;
  }
  *out = (uint32_t)v;
  return 0;
}

static int parse_u64(const char *opt, const char *s, uint64_t *out) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *s == '\0' || *end != '\0' || *s == '-') {
    fprintf(stderr, "netcore: %s needs a number of bytes, not '%s'\n", opt, s);
    return -1;
  }
  *out = (uint64_t)v;
  return 0;
}

static int add_listen_fd(ncd_config *cfg, int fd) {
  if (cfg->nlisten_fds == NCD_MAX_LISTEN_FDS) {
    fprintf(stderr, "netcore: at most %d listening fds\n", NCD_MAX_LISTEN_FDS);
    return -1;
  }
  cfg->listen_fds[cfg->nlisten_fds++] = fd;
  return 0;
}

/* systemd socket activation: fds 3 .. 3+LISTEN_FDS-1, meant for us if
 * LISTEN_PID is our pid (or absent). */
static int take_systemd_fds(ncd_config *cfg) {
  const char *n = getenv("LISTEN_FDS"), *pid = getenv("LISTEN_PID");
  if (!n) return 0;
  if (pid && strtol(pid, NULL, 10) != (long)getpid()) return 0;
  long count = strtol(n, NULL, 10);
  for (long i = 0; i < count; i++)
    if (add_listen_fd(cfg, 3 + (int)i) != 0) return -1;
  return 0;
}

static void set_defaults(ncd_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  for (size_t i = 0; i < NOPTIONS; i++) {
    const option_spec *o = &options[i];
    void *field = (char *)cfg + o->offset;
    if (o->kind == ARG_U32)
      *(uint32_t *)field = (uint32_t)o->def;
    else if (o->kind == ARG_U64)
      *(uint64_t *)field = o->def;
    else if (o->kind == ARG_LOG_LEVEL || o->kind == ARG_LOG_FORMAT)
      *(int *)field = (int)o->def;
  }
}

/* A number's lower bound; prints why it is refused. */
static int check_min(const option_spec *o, const char *opt, uint32_t v) {
  if (v >= o->min) return 0;
  fprintf(stderr, "netcore: %s must be at least %u%s%s%s\n", opt, o->min, o->min_why ? " (" : "",
          o->min_why ? o->min_why : "", o->min_why ? ")" : "");
  return -1;
}

/* Stores one option's argument. Returns 0, 1 for --help/--version (printed),
 * or -1 after printing what is wrong. */
static int apply(ncd_config *cfg, const option_spec *o, const char *arg) {
  char opt[64];
  snprintf(opt, sizeof opt, "--%s", o->name);
  void *field = (char *)cfg + o->offset;
  uint32_t v;
  switch (o->kind) {
    case ARG_FLAG:
      *(int *)field = 1;
      return 0;
    case ARG_U32:
      if (parse_u32(opt, arg, &v) != 0 || check_min(o, opt, v) != 0) return -1;
      *(uint32_t *)field = v;
      return 0;
    case ARG_U64:
      return parse_u64(opt, arg, (uint64_t *)field);
    case ARG_STR:
      *(const char **)field = arg;
      return 0;
    case ARG_BIND:
      if (cfg->nbinds == NCD_MAX_BINDS) {
        fprintf(stderr, "netcore: at most %d --bind endpoints\n", NCD_MAX_BINDS);
        return -1;
      }
      cfg->binds[cfg->nbinds++] = arg;
      return 0;
    case ARG_LISTEN_FD:
      return parse_u32(opt, arg, &v) != 0 || add_listen_fd(cfg, (int)v) != 0 ? -1 : 0;
    case ARG_ALLOW_UID:
      if (cfg->nallow_uids == NCD_MAX_ALLOW_UIDS) {
        fprintf(stderr, "netcore: at most %d --allow-uid\n", NCD_MAX_ALLOW_UIDS);
        return -1;
      }
      if (parse_u32(opt, arg, &cfg->allow_uids[cfg->nallow_uids]) != 0) return -1;
      cfg->nallow_uids++;
      return 0;
    case ARG_LOG_LEVEL:
      if ((*(int *)field = ncd_log_level_parse(arg)) >= 0) return 0;
      fprintf(stderr, "netcore: --log-level is error, warn, info or debug, not '%s'\n", arg);
      return -1;
    case ARG_LOG_FORMAT:
      if ((*(int *)field = ncd_log_format_parse(arg)) >= 0) return 0;
      fprintf(stderr, "netcore: --log-format is text or json, not '%s'\n", arg);
      return -1;
    case ARG_HELP:
      usage(stdout);
      return 1;
    case ARG_VERSION:
      printf("netcore %s (protocol netcore.v1)\n", NCD_VERSION);
      return 1;
  }
  return -1;
}

/* What follows from the options together: the default endpoint, bounds that
 * depend on each other, and the fds systemd passed. */
static int finish(ncd_config *cfg) {
  if (ncc_default_endpoint(getenv("XDG_RUNTIME_DIR"), (unsigned long)geteuid(),
                           cfg->default_endpoint, sizeof cfg->default_endpoint) != 0) {
    fprintf(stderr, "netcore: ENAMETOOLONG: XDG_RUNTIME_DIR is too long for an endpoint\n");
    return -1;
  }
  if (cfg->nbinds == 0) {
    const char *env = getenv("NETCORE_ENDPOINT");
    cfg->binds[cfg->nbinds++] = env && *env ? env : cfg->default_endpoint;
  }
  if (cfg->lease_ms < 50) cfg->lease_ms = 50;
  if (cfg->credit_window > cfg->max_credit) cfg->max_credit = cfg->credit_window;
  if (!cfg->curve_secret_file != !cfg->curve_allow_file) {
    fprintf(stderr,
            "netcore: CURVE needs both --curve-secret-file (netcore's key pair) and "
            "--curve-allow (the handlers' public keys)\n");
    return -1;
  }
  return take_systemd_fds(cfg);
}

int ncd_config_parse(ncd_config *cfg, int argc, char **argv) {
  struct option longopts[NOPTIONS + 1];
  for (size_t i = 0; i < NOPTIONS; i++) {
    int takes_arg = options[i].metavar != NULL;
    longopts[i] = (struct option){options[i].name, takes_arg ? required_argument : no_argument, 0,
                                  OPT_BASE + (int)i};
  }
  longopts[NOPTIONS] = (struct option){0, 0, 0, 0};
  set_defaults(cfg);
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    if (c < OPT_BASE || (size_t)(c - OPT_BASE) >= NOPTIONS) { /* '?': getopt_long said why */
      usage(stderr);
      return -1;
    }
    int rc = apply(cfg, &options[c - OPT_BASE], optarg);
    if (rc != 0) return rc;
  }
  if (optind < argc) {
    fprintf(stderr, "netcore: unexpected argument '%s'\n", argv[optind]);
    usage(stderr);
    return -1;
  }
  return finish(cfg);
}
