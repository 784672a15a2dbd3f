/* options: getopt_long over an actor's option table (see options.h). */
#include "options.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_OPTIONS 32
#define HELP_VAL 'h'
#define FIRST_VAL 256 /* getopt_long's val of opts[i] is FIRST_VAL + i: no clash with chars */

int nca_usage_error(const nca_program_t *prog, const char *code, const char *message) {
  fprintf(stderr, "%s: %s: %s\n", prog->prog, code, message);
  fprintf(stderr, "Try '%s --help'.\n", prog->prog);
  return 2;
}

static void print_help(const nca_program_t *prog, const nca_option_t *opts, int n) {
  printf("usage: %s %s\n", prog->prog, prog->synopsis);
  if (prog->about != NULL) printf("%s\n", prog->about);
  printf("\noptions:\n");
  for (int i = 0; i < n; i++) {
    char left[64];
    snprintf(left, sizeof(left), opts[i].kind == NCA_OPT_FLAG ? "--%s" : "--%s %s", opts[i].name,
             opts[i].value);
    if (opts[i].kind == NCA_OPT_INT)
      printf("  %-22s %s (%ld..%ld)\n", left, opts[i].help, opts[i].min, opts[i].max);
    else
      printf("  %-22s %s\n", left, opts[i].help);
  }
  printf("  %-22s %s\n", "-h, --help", "print this help and exit");
  printf("\nexit status: 0 on SIGINT/SIGTERM, 1 on a runtime error, 2 on a usage error\n");
}

/* Strict decimal: optional '-', digits only, nothing after, inside [min, max]. */
static int parse_int(const char *text, long min, long max, int *out) {
  const char *p = text[0] == '-' ? text + 1 : text;
  if (*p < '0' || *p > '9') return -1; /* strtol would skip blanks and take "" as 0 */
  char *end;
  errno = 0;
  long v = strtol(text, &end, 10);
  if (errno != 0 || *end != '\0' || v < min || v > max) return -1;
  *out = (int)v;
  return 0;
}

static int store(const nca_program_t *prog, const nca_option_t *opt, const char *arg) {
  if (opt->kind == NCA_OPT_FLAG) {
    *(int *)opt->dest = 1;
    return -1;
  }
  if (opt->kind == NCA_OPT_STRING) {
    *(const char **)opt->dest = arg;
    return -1;
  }
  if (parse_int(arg, opt->min, opt->max, (int *)opt->dest) == 0) return -1;
  char msg[256];
  snprintf(msg, sizeof(msg), "--%s must be an integer in %ld..%ld, got '%s'", opt->name, opt->min,
           opt->max, arg);
  return nca_usage_error(prog, "ERR_PARSE_ARGS_INVALID_OPTION_VALUE", msg);
}

int nca_options_parse(const nca_program_t *prog, const nca_option_t *opts, int n, int argc,
                      char **argv) {
  struct option longopts[MAX_OPTIONS + 2];
  if (n > MAX_OPTIONS) return nca_usage_error(prog, "ERR_INTERNAL_ASSERTION", "too many options");
  for (int i = 0; i < n; i++)
    longopts[i] = (struct option){opts[i].name,
                                  opts[i].kind == NCA_OPT_FLAG ? no_argument : required_argument,
                                  NULL, FIRST_VAL + i};
  longopts[n] = (struct option){"help", no_argument, NULL, HELP_VAL};
  longopts[n + 1] = (struct option){NULL, 0, NULL, 0};

  char msg[256];
  opterr = 0; /* our messages, with Node's codes */
  optind = 1;
  /* '+': stop at the first operand (reported below) instead of permuting argv;
   * ':': a missing value comes back as ':' rather than '?'. */
  for (;;) {
    int c = getopt_long(argc, argv, "+:h", longopts, NULL);
    if (c == -1) break;
    if (c == HELP_VAL) {
      print_help(prog, opts, n);
      return 0;
    }
    if (c == ':') {
      snprintf(msg, sizeof(msg), "%s needs a value", argv[optind - 1]);
      return nca_usage_error(prog, "ERR_PARSE_ARGS_INVALID_OPTION_VALUE", msg);
    }
    if (c == '?' && optopt >= FIRST_VAL && optopt < FIRST_VAL + n) { /* "--flag=value" */
      snprintf(msg, sizeof(msg), "--%s takes no value", opts[optopt - FIRST_VAL].name);
      return nca_usage_error(prog, "ERR_PARSE_ARGS_INVALID_OPTION_VALUE", msg);
    }
    if (c < FIRST_VAL || c >= FIRST_VAL + n) { /* '?': unknown or ambiguous */
      snprintf(msg, sizeof(msg), "unknown option '%s'", argv[optind - 1]);
      return nca_usage_error(prog, "ERR_PARSE_ARGS_UNKNOWN_OPTION", msg);
    }
    int rv = store(prog, &opts[c - FIRST_VAL], optarg);
    if (rv >= 0) return rv;
  }
  if (optind < argc) {
    snprintf(msg, sizeof(msg), "unexpected argument '%s'", argv[optind]);
    return nca_usage_error(prog, "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL", msg);
  }
  return -1;
}
