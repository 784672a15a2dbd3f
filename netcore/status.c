/* status.c: see status.h. */
#include "status.h"

#include <nc/nc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATUS_TIMEOUT_MS 3000

static int json_out; /* status --json: the Stats as one JSON object */

/* --endpoint E and --timeout-ms MS after the subcommand; returns 0 or -1. */
static int parse(int argc, char **argv, int from, nc_loop_options_t *o, const char *what) {
  for (int i = from; i < argc; i++) {
    if (strcmp(argv[i], "--ping") == 0 && strcmp(what, "--ping") == 0) continue;
    if (strcmp(argv[i], "--json") == 0 && strcmp(what, "status") == 0) {
      json_out = 1;
      continue;
    }
    if (strcmp(argv[i], "--endpoint") == 0 && i + 1 < argc) {
      o->endpoint = argv[++i];
    } else if (strcmp(argv[i], "--timeout-ms") == 0 && i + 1 < argc) {
      char *end;
      unsigned long v = strtoul(argv[++i], &end, 10);
      if (*end || v == 0 || v > 600000) {
        fprintf(stderr, "netcore %s: --timeout-ms needs 1..600000, not '%s'\n", what, argv[i]);
        return -1;
      }
      o->hello_timeout_ms = (uint32_t)v;
    } else {
      fprintf(stderr,
              "netcore %s: unexpected '%s'\nUsage: netcore %s [--endpoint ENDPOINT] "
              "[--timeout-ms MS] [--json (status)]\n",
              what, argv[i], what);
      return -1;
    }
  }
  if (!o->hello_timeout_ms) o->hello_timeout_ms = STATUS_TIMEOUT_MS;
  return 0;
}

int ncd_ping_main(int argc, char **argv) {
  nc_loop_options_t o = {.name = "netcore-ping"};
  if (parse(argc, argv, 1, &o, "--ping") != 0) return 2;
  nc_loop_t *loop;
  char err[512];
  int rc = nc_loop_new(&loop, &o, err, sizeof err);
  if (rc != 0) {
    fprintf(stderr, "netcore --ping: %s: %s\n", nc_err_name(rc), err);
    return 1;
  }
  printf("netcore %s answered (instance %s)\n", nc_loop_server_version(loop),
         nc_loop_instance_id(loop));
  nc_loop_free(loop); /* says Bye */
  return 0;
}

/* ------------------------------------------------------------ the table */

typedef struct answer {
  int status, done;
  void (*print)(const nc_stats_t *st);
} answer;

static const char *label_of(const nc_stats_sample_t *s, const char *name) {
  const char *v = nc_stats_label(s, name);
  return v ? v : "";
}

/* The value of family `name`'s sample whose handler prefix is pfx. */
static double of_handler(const nc_stats_t *st, const char *name, const char *pfx) {
  return nc_stats_value(st, name, "prefix", pfx);
}

static void human_bytes(double b, char *out, size_t cap) {
  static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) b /= 1024, u++;
  if (u == 0)
    snprintf(out, cap, "%.0f B", b);
  else
    snprintf(out, cap, "%.1f %s", b, units[u]);
}

static void print_table(const nc_stats_t *st) {
  char a[32], b[32], c[32], d[32];
  printf("netcore instance %s, up %.1f s\n", st->instance_id, (double)st->uptime_ms / 1000);
  const nc_stats_family_t *info = nc_stats_family(st, "netcore_info");
  if (info && info->nsamples) printf("version %s\n", label_of(&info->samples[0], "version"));
  human_bytes(nc_stats_value(st, "netcore_resident_memory_bytes", NULL, NULL), a, sizeof a);
  printf(
      "memory %s, descriptors %.0f of %.0f, sockets %.0f of %.0f "
      "(connecting %.0f, open %.0f, half-closed %.0f, closing %.0f)\n",
      a, nc_stats_value(st, "netcore_open_fds", NULL, NULL),
      nc_stats_value(st, "netcore_max_fds", NULL, NULL),
      nc_stats_value(st, "netcore_sockets", NULL, NULL),
      nc_stats_value(st, "netcore_max_connections", NULL, NULL),
      nc_stats_value(st, "netcore_sockets", "state", "connecting"),
      nc_stats_value(st, "netcore_sockets", "state", "open"),
      nc_stats_value(st, "netcore_sockets", "state", "half_closed"),
      nc_stats_value(st, "netcore_sockets", "state", "closing"));
  human_bytes(nc_stats_value(st, "netcore_read_bytes_total", NULL, NULL), a, sizeof a);
  human_bytes(nc_stats_value(st, "netcore_written_bytes_total", NULL, NULL), b, sizeof b);
  printf("connections opened %.0f, refused %.0f; bytes read %s, written %s\n",
         nc_stats_value(st, "netcore_connections_opened_total", NULL, NULL),
         nc_stats_value(st, "netcore_connections_refused_total", NULL, NULL), a, b);

  const nc_stats_family_t *hs = nc_stats_family(st, "netcore_handler_info");
  printf("\nHANDLERS (%zu)\n", hs ? hs->nsamples : 0);
  printf("%-20s %6s %-22s %7s %7s %10s %10s %10s %10s %8s %s\n", "NAME", "PREFIX", "PRINCIPAL",
         "SOCKETS", "SERVERS", "READ", "WRITTEN", "QUEUED-TO", "WRITE-Q", "SESSION", "STATE");
  for (size_t i = 0; hs && i < hs->nsamples; i++) {
    const nc_stats_sample_t *s = &hs->samples[i];
    const char *pfx = label_of(s, "prefix");
    human_bytes(of_handler(st, "netcore_handler_read_bytes_total", pfx), a, sizeof a);
    human_bytes(of_handler(st, "netcore_handler_written_bytes_total", pfx), b, sizeof b);
    human_bytes(of_handler(st, "netcore_handler_queued_bytes", pfx), c, sizeof c);
    human_bytes(of_handler(st, "netcore_handler_write_queue_bytes", pfx), d, sizeof d);
    const char *state = of_handler(st, "netcore_handler_over_budget", pfx) > 0 ? "over-budget"
                        : of_handler(st, "netcore_handler_blocked", pfx) > 0   ? "blocked"
                                                                               : "ok";
    printf("%-20s %6s %-22s %7.0f %7.0f %10s %10s %10s %10s %7.0fs %s\n", label_of(s, "handler"),
           pfx, label_of(s, "principal"), of_handler(st, "netcore_handler_sockets", pfx),
           of_handler(st, "netcore_handler_servers", pfx), a, b, c, d,
           of_handler(st, "netcore_handler_session_seconds", pfx), state);
  }

  const nc_stats_family_t *ls = nc_stats_family(st, "netcore_listener_connections");
  printf("\nLISTENERS (%zu)\n", ls ? ls->nsamples : 0);
  printf("%-40s %-16s %7s %11s\n", "LISTENER", "GROUP", "MEMBERS", "CONNECTIONS");
  for (size_t i = 0; ls && i < ls->nsamples; i++) {
    const nc_stats_sample_t *s = &ls->samples[i];
    const char *g = label_of(s, "group");
    printf("%-40s %-16s %7s %11.0f\n", label_of(s, "listener"), *g ? g : "-",
           label_of(s, "members"), s->value);
  }
}

static void json_string(const char *s) {
  putchar('"');
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      printf("\\%c", c);
    else if (c < 0x20)
      printf("\\u%04x", c);
    else
      putchar(c);
  }
  putchar('"');
}

/* The shape the Python (stats_dict) and Node (stats()) libraries give. */
static void print_json(const nc_stats_t *st) {
  printf("{\"instance_id\":");
  json_string(st->instance_id);
  printf(",\"uptime_ms\":%llu,\"families\":[", (unsigned long long)st->uptime_ms);
  for (size_t f = 0; f < st->nfamilies; f++) {
    const nc_stats_family_t *fam = &st->families[f];
    printf("%s{\"name\":", f ? "," : "");
    json_string(fam->name);
    printf(",\"help\":");
    json_string(fam->help);
    printf(",\"type\":");
    json_string(fam->type);
    printf(",\"samples\":[");
    for (size_t i = 0; i < fam->nsamples; i++) {
      const nc_stats_sample_t *s = &fam->samples[i];
      printf("%s{\"name\":", i ? "," : "");
      json_string(s->name);
      printf(",\"labels\":{");
      for (size_t k = 0; k < s->nlabels; k++) {
        printf("%s", k ? "," : "");
        json_string(s->labels[k].name);
        putchar(':');
        json_string(s->labels[k].value);
      }
      printf("},\"value\":%.17g}", s->value);
    }
    printf("]}");
  }
  printf("]}\n");
}

static void timeout_cb(nc_timer_t *t) {
  nc_loop_stop(nc_timer_get_data(t));
}

static void stats_cb(nc_loop_t *loop, int status, const nc_stats_t *st, void *arg) {
  answer *ans = arg;
  ans->status = status;
  ans->done = 1;
  if (status == 0) ans->print(st);
  nc_loop_stop(loop);
}

int ncd_status_main(int argc, char **argv) {
  nc_loop_options_t o = {.name = "netcore-status"};
  if (parse(argc, argv, 1, &o, "status") != 0) return 2;
  nc_loop_t *loop;
  char err[512];
  int rc = nc_loop_new(&loop, &o, err, sizeof err);
  if (rc != 0) {
    fprintf(stderr, "netcore status: %s: %s\n", nc_err_name(rc), err);
    return 1;
  }
  answer ans = {.print = json_out ? print_json : print_table};
  nc_timer_t *timer = NULL;
  if (nc_timer_new(loop, &timer) == 0) {
    nc_timer_set_data(timer, loop);
    nc_timer_start(timer, timeout_cb, o.hello_timeout_ms, 0);
  }
  if ((rc = nc_loop_stats(loop, stats_cb, &ans)) == 0) rc = nc_loop_run(loop);
  if (timer) nc_timer_close(timer);
  if (!ans.done || ans.status != 0) {
    int why = ans.done ? ans.status : rc;
    fprintf(stderr, "netcore status: %s: %s\n", nc_err_name(why ? why : NC_ETIMEDOUT),
            nc_loop_error_message(loop));
    nc_loop_free(loop);
    return 1;
  }
  nc_loop_free(loop); /* says Bye */
  return 0;
}
