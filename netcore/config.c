/* config.c: see config.h. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "default_endpoint.h"
#include "log.h"

#ifndef NCD_VERSION
#define NCD_VERSION "0.0.0"
#endif

/* Long options without a short letter. */
enum { OPT_HEARTBEAT = 1000, OPT_CURVE_SECRET, OPT_CURVE_ALLOW, OPT_ALLOW_UID, OPT_INSECURE_TCP, OPT_POLICY,
       OPT_HANDOFF, OPT_TAKEOVER, OPT_METRICS_LISTEN, OPT_LOG_FORMAT };

static void usage(FILE *out) {
  fprintf(out,
          "Usage: netcore [options]\n"
          "The netcore daemon: owns TCP and UNIX sockets on one event loop and serves\n"
          "handler actors over ZeroMQ (protocol netcore.v1, see proto/PROTOCOL.md).\n\n"
          "  --bind ENDPOINT         ZeroMQ endpoint for handlers; repeatable\n"
          "                          (default $NETCORE_ENDPOINT, else\n"
          "                          ipc://$XDG_RUNTIME_DIR/netcore/netcore.sock, for root\n"
          "                          ipc:///run/netcore/netcore.sock, else\n"
          "                          ipc:///tmp/netcore-UID/netcore.sock)\n"
          "  --group-access          the default endpoint's directory 0750 and ipc socket\n"
          "                          files 0660: handlers of netcore's group may connect\n"
          "  --listen-fd N           adopt inherited listening fd N (repeatable; systemd's\n"
          "                          LISTEN_FDS/LISTEN_PID are honoured too)\n"
          "  --credit-window BYTES   initial read credit per socket (default 262144)\n"
          "  --lease-ms MS           handler lease: silence this long = gone (default 10000)\n"
          "  --max-frame BYTES       largest accepted frame (default 16777216)\n"
          "  --max-write-queue BYTES per-socket write queue limit (default 16777216)\n"
          "  --max-connections N     total sockets held (default, also for 0, and upper\n"
          "                          bound: the descriptor limit minus --fd-reserve)\n"
          "  --fd-reserve N          descriptors kept for ZeroMQ and netcore itself, at\n"
          "                          least 16 (default 64, or 1/32 of the limit if more)\n"
          "  --shutdown-ms MS        SIGTERM: time given to queued writes (default 2000)\n"
          "  --handoff-ms MS         how long a gone handler's connections wait for a group\n"
          "                          member or successor to adopt them (default 5000)\n"
          "  --takeover              take every listener and connection over from the\n"
          "                          netcore running on the same --bind (zero-downtime\n"
          "                          upgrade, README); it exits 0 once it holds nothing\n"
          "  --hwm N                 ZeroMQ send high-water mark, messages (default 100000)\n"
          "  --max-credit BYTES      largest read credit of one socket (default 16777216)\n"
          "  --max-envelope BYTES    largest envelope frame of a handler (default 1048576)\n"
          "  --max-batch N           most commands in one batch, >= 256 (default 1024)\n"
          "  --handler-budget BYTES  bytes queued toward one handler before netcore stops\n"
          "                          reading its sockets (default 67108864)\n"
          "  --max-memory BYTES      bytes all write queues may hold together (default 1073741824)\n"
          "  --max-handler-sockets N sockets one handler may own; 0 = only --max-connections\n"
          "                          (default 0)\n"
          "  --max-handler-servers N servers one handler may own (default 1024)\n"
          "  --log-level LEVEL       error, warn, info or debug (default info)\n"
          "  --log-format FORMAT     text or json (one object a line; default text)\n"
          "  --metrics-listen ADDR   serve Prometheus metrics at http://ADDR/metrics;\n"
          "                          HOST:PORT, or PORT alone for 127.0.0.1 (0 = any port)\n"
          "  --heartbeat-ms MS       a handler link silent this long is dead (ZMTP\n"
          "                          heartbeats; default 2000, 0 = off)\n"
          "  --curve-secret-file F   netcore's CURVE key pair (from netcore keygen): tcp\n"
          "                          binds use CURVE\n"
          "  --curve-allow FILE      handler public keys allowed in, 'NAME Z85KEY' a line\n"
          "  --allow-uid UID         also let this uid in over ipc (repeatable)\n"
          "  --insecure-tcp          allow a non-loopback tcp bind without CURVE\n"
          "  --policy FILE           what each handler may listen on, connect to and join,\n"
          "                          and its limits (docs/POLICY.md; SIGHUP reloads it);\n"
          "                          without it CURVE handlers may do nothing, ipc\n"
          "                          handlers anything\n"
          "Subcommand: netcore keygen FILE   writes a new key pair (mode 0600) to FILE\n"
          "                                  and prints its public key\n"
          "            netcore status [--endpoint E]   a running netcore's handlers,\n"
          "                                  sockets, queues and listeners (a table)\n"
          "            netcore --ping [--endpoint E]   exit 0 if a netcore answers Hello\n"
          "  --help, --version\n");
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

int ncd_config_parse(ncd_config *cfg, int argc, char **argv) {
  memset(cfg, 0, sizeof *cfg);
  cfg->credit_window = 256 * 1024;
  cfg->max_credit = 16 * 1024 * 1024;
  cfg->max_envelope = 1024 * 1024;
  cfg->max_batch = 1024;
  cfg->handler_budget = 64ull * 1024 * 1024;
  cfg->max_memory = 1024ull * 1024 * 1024;
  cfg->max_handler_servers = 1024;
  cfg->lease_ms = 10000;
  cfg->max_frame = 16 * 1024 * 1024;
  cfg->max_write_queue = 16 * 1024 * 1024;
  cfg->shutdown_ms = 2000;
  cfg->hwm = 100000;
  cfg->log_level = NCD_LOG_INFO;
  cfg->heartbeat_ms = 2000;
  cfg->handoff_ms = 5000;
  cfg->log_format = NCD_LOG_TEXT;

  static const struct option opts[] = {
      {"bind", required_argument, 0, 'b'},        {"listen-fd", required_argument, 0, 'f'},
      {"credit-window", required_argument, 0, 'c'}, {"lease-ms", required_argument, 0, 'l'},
      {"max-frame", required_argument, 0, 'F'},    {"max-write-queue", required_argument, 0, 'q'},
      {"max-connections", required_argument, 0, 'm'}, {"shutdown-ms", required_argument, 0, 's'},
      {"hwm", required_argument, 0, 'w'},           {"log-level", required_argument, 0, 'L'},
      {"max-credit", required_argument, 0, 'C'},    {"max-envelope", required_argument, 0, 'E'},
      {"max-batch", required_argument, 0, 'B'},     {"handler-budget", required_argument, 0, 'H'},
      {"max-memory", required_argument, 0, 'M'},    {"max-handler-sockets", required_argument, 0, 'S'},
      {"max-handler-servers", required_argument, 0, 'R'}, {"fd-reserve", required_argument, 0, 'r'},
      {"group-access", no_argument, 0, 'g'},        {"help", no_argument, 0, 'h'},
      {"version", no_argument, 0, 'V'},
      {"heartbeat-ms", required_argument, 0, OPT_HEARTBEAT},
      {"handoff-ms", required_argument, 0, OPT_HANDOFF},
      {"takeover", no_argument, 0, OPT_TAKEOVER},
      {"curve-secret-file", required_argument, 0, OPT_CURVE_SECRET},
      {"curve-allow", required_argument, 0, OPT_CURVE_ALLOW},
      {"allow-uid", required_argument, 0, OPT_ALLOW_UID},
      {"insecure-tcp", no_argument, 0, OPT_INSECURE_TCP},
      {"policy", required_argument, 0, OPT_POLICY},
      {"metrics-listen", required_argument, 0, OPT_METRICS_LISTEN},
      {"log-format", required_argument, 0, OPT_LOG_FORMAT},
      {0, 0, 0, 0}};
  int c;
  uint32_t v;
  optind = 1;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
    case 'b':
      if (cfg->nbinds == NCD_MAX_BINDS) {
        fprintf(stderr, "netcore: at most %d --bind endpoints\n", NCD_MAX_BINDS);
        return -1;
      }
      cfg->binds[cfg->nbinds++] = optarg;
      break;
    case 'f':
      if (parse_u32("--listen-fd", optarg, &v) != 0 || add_listen_fd(cfg, (int)v) != 0) return -1;
      break;
    case 'c':
      if (parse_u32("--credit-window", optarg, &cfg->credit_window) != 0) return -1;
      if (cfg->credit_window == 0) {
        fprintf(stderr, "netcore: --credit-window must be at least 1\n");
        return -1;
      }
      break;
    case 'l':
      if (parse_u32("--lease-ms", optarg, &cfg->lease_ms) != 0) return -1;
      break;
    case 'F':
      if (parse_u32("--max-frame", optarg, &cfg->max_frame) != 0) return -1;
      break;
    case 'q':
      if (parse_u32("--max-write-queue", optarg, &cfg->max_write_queue) != 0) return -1;
      break;
    case 'm':
      if (parse_u32("--max-connections", optarg, &cfg->max_connections) != 0) return -1;
      break;
    case 'r':
      if (parse_u32("--fd-reserve", optarg, &cfg->fd_reserve) != 0) return -1;
      if (cfg->fd_reserve < 16) {
        fprintf(stderr, "netcore: --fd-reserve must be at least 16 (ZeroMQ and netcore need them)\n");
        return -1;
      }
      break;
    case 's':
      if (parse_u32("--shutdown-ms", optarg, &cfg->shutdown_ms) != 0) return -1;
      break;
    case 'w':
      if (parse_u32("--hwm", optarg, &cfg->hwm) != 0) return -1;
      break;
    case 'L':
      if ((cfg->log_level = ncd_log_level_parse(optarg)) < 0) {
        fprintf(stderr, "netcore: --log-level is error, warn, info or debug, not '%s'\n", optarg);
        return -1;
      }
      break;
    case 'C':
      if (parse_u32("--max-credit", optarg, &cfg->max_credit) != 0) return -1;
      break;
    case 'E':
      if (parse_u32("--max-envelope", optarg, &cfg->max_envelope) != 0) return -1;
      break;
    case 'B':
      if (parse_u32("--max-batch", optarg, &cfg->max_batch) != 0) return -1;
      if (cfg->max_batch < 256) {
        fprintf(stderr, "netcore: --max-batch must be at least 256 (client libraries send up to 256)\n");
        return -1;
      }
      break;
    case 'H':
      if (parse_u64("--handler-budget", optarg, &cfg->handler_budget) != 0) return -1;
      break;
    case 'M':
      if (parse_u64("--max-memory", optarg, &cfg->max_memory) != 0) return -1;
      break;
    case 'S':
      if (parse_u32("--max-handler-sockets", optarg, &cfg->max_handler_sockets) != 0) return -1;
      break;
    case 'R':
      if (parse_u32("--max-handler-servers", optarg, &cfg->max_handler_servers) != 0) return -1;
      break;
    case 'g':
      cfg->group_access = 1;
      break;
    case OPT_TAKEOVER:
      cfg->takeover = 1;
      break;
    case OPT_HANDOFF:
      if (parse_u32("--handoff-ms", optarg, &cfg->handoff_ms) != 0) return -1;
      break;
    case OPT_HEARTBEAT:
      if (parse_u32("--heartbeat-ms", optarg, &cfg->heartbeat_ms) != 0) return -1;
      break;
    case OPT_CURVE_SECRET:
      cfg->curve_secret_file = optarg;
      break;
    case OPT_CURVE_ALLOW:
      cfg->curve_allow_file = optarg;
      break;
    case OPT_ALLOW_UID:
      if (cfg->nallow_uids == NCD_MAX_ALLOW_UIDS) {
        fprintf(stderr, "netcore: at most %d --allow-uid\n", NCD_MAX_ALLOW_UIDS);
        return -1;
      }
      if (parse_u32("--allow-uid", optarg, &cfg->allow_uids[cfg->nallow_uids]) != 0) return -1;
      cfg->nallow_uids++;
      break;
    case OPT_INSECURE_TCP:
      cfg->insecure_tcp = 1;
      break;
    case OPT_POLICY:
      cfg->policy_file = optarg;
      break;
    case OPT_METRICS_LISTEN:
      cfg->metrics_listen = optarg;
      break;
    case OPT_LOG_FORMAT:
      if ((cfg->log_format = ncd_log_format_parse(optarg)) < 0) {
        fprintf(stderr, "netcore: --log-format is text or json, not '%s'\n", optarg);
        return -1;
      }
      break;
    case 'h':
      usage(stdout);
      return 1;
    case 'V':
      printf("netcore %s (protocol netcore.v1)\n", NCD_VERSION);
      return 1;
    default:
      usage(stderr);
      return -1;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "netcore: unexpected argument '%s'\n", argv[optind]);
    usage(stderr);
    return -1;
  }
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
    fprintf(stderr, "netcore: CURVE needs both --curve-secret-file (netcore's key pair) and "
                    "--curve-allow (the handlers' public keys)\n");
    return -1;
  }
  return take_systemd_fds(cfg);
}
