/* options: the command line of the C example actors (echo, goodbye, proxy,
 * chat), from one table per actor.
 *
 * Each actor describes its options once (name, value name, help text, where
 * the value goes, and for numbers the allowed range); nca_options_parse reads
 * argv with getopt_long against that table. Numbers are strict: the whole
 * argument must be a decimal integer inside the range, so `--port abc` or
 * `--port 8124x` is an error, never port 0. `--help` (or `-h`) prints the
 * usage to stdout and asks for exit 0; a usage error prints one line with
 * Node's code (ERR_PARSE_ARGS_UNKNOWN_OPTION, ERR_PARSE_ARGS_INVALID_OPTION_VALUE,
 * ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL) to stderr and asks for exit 2.
 *
 * Prefix nca_ (netcore actors): this module belongs to actors/, not to libnc.
 * Called from main() only, before the loop exists; not thread-safe (getopt's
 * globals). The table and every string it points to are the caller's and
 * must outlive the call; values stored through `dest` point into argv. */
#ifndef NCA_OPTIONS_H
#define NCA_OPTIONS_H

/* What an option's value is and where it goes. */
typedef enum {
  NCA_OPT_STRING, /* dest is const char **: the argument itself (into argv) */
  NCA_OPT_INT,    /* dest is int *: a decimal integer in [min, max] */
  NCA_OPT_FLAG    /* dest is int *: set to 1 when the option is given; it takes no value */
} nca_opt_kind_t;

typedef struct {
  const char *name;  /* long name without the dashes: "port" for --port */
  const char *value; /* the value's name in the usage: "N", "HOST" ("" for a flag) */
  const char *help;  /* one line for --help */
  nca_opt_kind_t kind;
  void *dest;        /* written only when the option is given */
  long min, max;     /* NCA_OPT_INT only, inclusive */
} nca_option_t;

/* The actor's name and usage text for --help and error messages. */
typedef struct {
  const char *prog;    /* "echo": the first word of every message */
  const char *synopsis; /* after "usage: PROG ": "[--port N] [--host H]" */
  const char *about;   /* a paragraph printed after the usage line, or NULL */
} nca_program_t;

/* Parses argv against the n options of opts (at most 32). Returns -1 when the
 * actor should go on, or the exit status it should return now: 0 after
 * --help, 2 after a usage error (already reported on stderr). */
int nca_options_parse(const nca_program_t *prog, const nca_option_t *opts, int n, int argc,
                      char **argv);

/* Reports a usage error the table cannot express (a missing required option,
 * two options that exclude each other) the same way nca_options_parse does:
 * "PROG: CODE: message" and a pointer to --help on stderr. Returns 2, the
 * exit status of a usage error. */
int nca_usage_error(const nca_program_t *prog, const char *code, const char *message);

#endif
