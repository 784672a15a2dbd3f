/* policy.c: see policy.h; the format is docs/POLICY.md. */
#include "policy.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_FILE (1024 * 1024)
#define MAX_TOKENS 8
#define MAX_PORT_RANGES 16
#define MAX_PRINCIPAL 95 /* fits ncd_handler.principal */

typedef enum rule_kind {
  R_LISTEN_TCP,
  R_CONNECT_TCP,
  R_LISTEN_UNIX,
  R_CONNECT_UNIX,
  R_LISTEN_FD,
  R_JOIN
} rule_kind;

typedef struct port_range {
  uint32_t lo, hi;
} port_range;

/* One permission line. A tcp rule is "*", an address block (family, addr,
 * prefix) or a host name (text); a path rule a canonical path or "*"; a join
 * rule a group or "*"; an fd rule a number or "*". */
typedef struct rule {
  rule_kind kind;
  int line;
  int any;
  int family; /* AF_INET or AF_INET6 for address blocks, 0 otherwise */
  uint8_t addr[16];
  int prefix;
  char *text;
  int fd;
  int nports;
  port_range ports[MAX_PORT_RANGES];
} rule;

struct ncd_policy_entry {
  char where[300];   /* "FILE:LINE (handler P)", for messages */
  char **principals; /* "uid:N", "key:NAME", "tcp:ADDR" or "default" */
  size_t nprincipals;
  int all; /* may do anything netcore can */
  rule *rules;
  size_t nrules;
  int has_max_sockets, has_max_servers, has_budget;
  uint32_t max_sockets, max_servers;
  uint64_t budget;
};

struct ncd_policy {
  char file[256];
  ncd_policy_entry **entries;
  size_t nentries;
  ncd_policy_entry nothing; /* for principals without an entry and no default */
};

/* Without a policy file: CURVE keys may do nothing, everyone else anything. */
static ncd_policy_entry builtin_all = {.where = "no --policy", .all = 1};
static ncd_policy_entry builtin_curve = {
    .where = "no --policy: a CURVE handler may do only what a policy entry allows"};

/* ------------------------------------------------------------ helpers */

static void say(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *out, size_t cap, const char *fmt, ...) {
  if (!out || !cap) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(out, cap, fmt, ap);
  va_end(ap);
}

static void entry_free(ncd_policy_entry *e) {
  if (!e) return;
  for (size_t i = 0; i < e->nprincipals; i++) free(e->principals[i]);
  free(e->principals);
  for (size_t i = 0; i < e->nrules; i++) free(e->rules[i].text);
  free(e->rules);
  free(e);
}

void ncd_policy_free(ncd_policy *p) {
  if (!p) return;
  for (size_t i = 0; i < p->nentries; i++) entry_free(p->entries[i]);
  free(p->entries);
  free(p);
}

static int parse_uint(const char *s, uint64_t max, uint64_t *out) {
  if (!isdigit((unsigned char)*s)) return -1;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end || v > max) return -1;
  *out = v;
  return 0;
}

/* "*", "N", "N-M", comma-separated. */
static const char *parse_ports(const char *s, rule *r) {
  if (strcmp(s, "*") == 0) {
    r->nports = 1;
    r->ports[0] = (port_range){0, 65535};
    return NULL;
  }
  char buf[256];
  snprintf(buf, sizeof buf, "%s", s);
  for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    uint64_t lo, hi;
    char *dash = strchr(tok, '-');
    if (dash) *dash = '\0';
    if (parse_uint(tok, 65535, &lo) != 0 || (dash && parse_uint(dash + 1, 65535, &hi) != 0))
      return "ports are '*', N, N-M or a comma-separated list of them, each 0..65535";
    if (!dash) hi = lo;
    if (hi < lo) return "a port range goes from low to high";
    if (r->nports == MAX_PORT_RANGES) return "at most 16 port ranges in one rule";
    r->ports[r->nports++] = (port_range){(uint32_t)lo, (uint32_t)hi};
  }
  if (r->nports == 0) return "no ports given";
  return NULL;
}

static int valid_host_name(const char *s) {
  size_t n = strlen(s);
  int letter = 0;
  if (n == 0 || n > 253 || s[0] == '.' || s[0] == '-') return 0;
  for (; *s; s++) {
    if (isalpha((unsigned char)*s))
      letter = 1;
    else if (!isdigit((unsigned char)*s) && *s != '.' && *s != '-' && *s != '_')
      return 0;
  }
  return letter; /* "10.0.0" is a broken address, not a name */
}

/* "*", an address, ADDR/PREFIX (IPv6 optionally in brackets), or a name. */
static const char *parse_host(const char *s, rule *r) {
  if (strcmp(s, "*") == 0) {
    r->any = 1;
    return NULL;
  }
  char buf[128];
  snprintf(buf, sizeof buf, "%s", s);
  char *slash = strchr(buf, '/');
  if (slash) *slash = '\0';
  char *a = buf;
  size_t n = strlen(a);
  if (n >= 2 && a[0] == '[' && a[n - 1] == ']') a[n - 1] = '\0', a++;
  if (inet_pton(AF_INET, a, r->addr) == 1) {
    r->family = AF_INET;
    r->prefix = 32;
  } else if (inet_pton(AF_INET6, a, r->addr) == 1) {
    r->family = AF_INET6;
    r->prefix = 128;
  } else if (!slash && valid_host_name(s)) {
    r->text = strdup(s);
    return r->text ? NULL : "out of memory";
  } else {
    return "not '*', an IP address, ADDRESS/PREFIX or a host name";
  }
  if (r->family == AF_INET6 && IN6_IS_ADDR_V4MAPPED((struct in6_addr *)r->addr))
    return "write an IPv4-mapped address as IPv4 (it matches both forms)";
  if (slash) {
    uint64_t pfx;
    if (parse_uint(slash + 1, (uint64_t)r->prefix, &pfx) != 0)
      return r->family == AF_INET ? "an IPv4 prefix is 0..32" : "an IPv6 prefix is 0..128";
    r->prefix = (int)pfx;
  }
  for (int bit = r->prefix; bit < (r->family == AF_INET ? 32 : 128); bit++)
    if (r->addr[bit / 8] & (0x80 >> (bit % 8)))
      return "the address has bits set past its prefix (write the network's first address)";
  return NULL;
}

/* Canonical: absolute, no empty, "." or ".." component. A trailing slash is
 * allowed only on the rule side (stripped there). */
static int canonical_path(const char *p) {
  if (p[0] != '/') return 0;
  for (const char *c = p; *c;) {
    c++; /* past '/' */
    size_t n = strcspn(c, "/");
    if (n == 0 && c[0] == '/') return 0;
    if ((n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.')) return 0;
    c += n;
  }
  return 1;
}

static const char *parse_path(const char *s, rule *r) {
  if (strcmp(s, "*") == 0) {
    r->any = 1;
    return NULL;
  }
  char buf[512];
  snprintf(buf, sizeof buf, "%s", s);
  size_t n = strlen(buf);
  while (n > 1 && buf[n - 1] == '/') buf[--n] = '\0';
  if (!canonical_path(buf))
    return "a path rule is '*' or an absolute path without '.', '..' or '//'";
  r->text = strdup(buf);
  return r->text ? NULL : "out of memory";
}

static int valid_key_name(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > 64) return 0;
  for (; *s; s++)
    if (!isalnum((unsigned char)*s) && !strchr("._-@", *s)) return 0;
  return 1;
}

static const char *check_principal(const char *s) {
  uint64_t v;
  if (strcmp(s, "default") == 0) return NULL;
  if (strlen(s) > MAX_PRINCIPAL) return "a principal is at most 95 characters";
  if (strncmp(s, "uid:", 4) == 0)
    return parse_uint(s + 4, UINT32_MAX, &v) == 0 ? NULL : "uid:N needs a number";
  if (strncmp(s, "key:", 4) == 0)
    return valid_key_name(s + 4) ? NULL : "key:NAME needs a name as in --curve-allow";
  if (strncmp(s, "tcp:", 4) == 0) {
    unsigned char a[16];
    return inet_pton(AF_INET, s + 4, a) == 1 || inet_pton(AF_INET6, s + 4, a) == 1
               ? NULL
               : "tcp:ADDR needs an IP address";
  }
  return "a handler is named uid:N, key:NAME, tcp:ADDR or default";
}

static ncd_policy_entry *find_exact(const ncd_policy *p, const char *principal) {
  for (size_t i = 0; i < p->nentries; i++)
    for (size_t j = 0; j < p->entries[i]->nprincipals; j++)
      if (strcmp(p->entries[i]->principals[j], principal) == 0) return p->entries[i];
  return NULL;
}

/* ------------------------------------------------------------ parsing */

static const char *parse_handler_line(ncd_policy *p, char **tok, int ntok, int line,
                                      ncd_policy_entry **cur) {
  if (ntok < 2)
    return "'handler' needs one or more principals (uid:N, key:NAME, tcp:ADDR, default)";
  ncd_policy_entry *e = calloc(1, sizeof *e);
  if (!e) return "out of memory";
  ncd_policy_entry **grown = realloc(p->entries, (p->nentries + 1) * sizeof *grown);
  if (!grown) {
    free(e);
    return "out of memory";
  }
  p->entries = grown;
  p->entries[p->nentries++] = e;
  *cur = e;
  snprintf(e->where, sizeof e->where, "%s:%d (handler", p->file, line);
  for (int i = 1; i < ntok; i++) {
    const char *why = check_principal(tok[i]);
    if (why) return why;
    if (find_exact(p, tok[i])) return "this principal already has an entry above";
    char **ps = realloc(e->principals, (e->nprincipals + 1) * sizeof *ps);
    if (!ps) return "out of memory";
    e->principals = ps;
    if (!(ps[e->nprincipals] = strdup(tok[i]))) return "out of memory";
    e->nprincipals++;
    size_t len = strlen(e->where);
    snprintf(e->where + len, sizeof e->where - len, " %s", tok[i]);
  }
  size_t len = strlen(e->where);
  snprintf(e->where + len, sizeof e->where - len, ")");
  return NULL;
}

static const char *parse_limit(ncd_policy_entry *e, const char *name, char **tok, int ntok) {
  uint64_t v;
  if (ntok != 2) return "a limit takes one number";
  int budget = strcmp(name, "budget") == 0;
  if (parse_uint(tok[1], budget ? UINT64_MAX : UINT32_MAX, &v) != 0)
    return budget ? "budget needs a number of bytes"
                  : "a limit needs a number from 0 to 4294967295";
  if (strcmp(name, "max-sockets") == 0)
    e->has_max_sockets = 1, e->max_sockets = (uint32_t)v;
  else if (strcmp(name, "max-servers") == 0)
    e->has_max_servers = 1, e->max_servers = (uint32_t)v;
  else
    e->has_budget = 1, e->budget = v;
  return NULL;
}

static const char *parse_rule(ncd_policy_entry *e, char **tok, int ntok, int line) {
  rule r = {.line = line};
  const char *why = NULL;
  int listen = strcmp(tok[0], "listen") == 0;
  if (strcmp(tok[0], "join") == 0) {
    if (ntok != 2) return "'join' takes one group name, or '*'";
    if (strlen(tok[1]) > 63) return "a group name is at most 63 bytes";
    r.kind = R_JOIN;
    r.any = strcmp(tok[1], "*") == 0;
    if (!r.any && !(r.text = strdup(tok[1]))) return "out of memory";
  } else if (ntok >= 2 && strcmp(tok[1], "tcp") == 0) {
    if (ntok != 4)
      return listen ? "expected 'listen tcp ADDRESS PORTS'" : "expected 'connect tcp HOST PORTS'";
    r.kind = listen ? R_LISTEN_TCP : R_CONNECT_TCP;
    if (!(why = parse_host(tok[2], &r))) why = parse_ports(tok[3], &r);
  } else if (ntok >= 2 && strcmp(tok[1], "unix") == 0) {
    if (ntok != 3) return listen ? "expected 'listen unix PATH'" : "expected 'connect unix PATH'";
    r.kind = listen ? R_LISTEN_UNIX : R_CONNECT_UNIX;
    why = parse_path(tok[2], &r);
  } else if (listen && ntok >= 2 && strcmp(tok[1], "fd") == 0) {
    uint64_t fd = 0;
    if (ntok != 3) return "expected 'listen fd N' or 'listen fd *'";
    r.kind = R_LISTEN_FD;
    r.any = strcmp(tok[2], "*") == 0;
    if (!r.any && parse_uint(tok[2], 65535, &fd) != 0) return "'listen fd' takes a number or '*'";
    r.fd = (int)fd;
  } else {
    return listen ? "expected 'listen tcp|unix|fd ...'" : "expected 'connect tcp|unix ...'";
  }
  if (why) {
    free(r.text);
    return why;
  }
  rule *grown = realloc(e->rules, (e->nrules + 1) * sizeof *grown);
  if (!grown) {
    free(r.text);
    return "out of memory";
  }
  e->rules = grown;
  e->rules[e->nrules++] = r;
  return NULL;
}

static const char *parse_line(ncd_policy *p, char *text, int line, ncd_policy_entry **cur) {
  char *tok[MAX_TOKENS + 1];
  int ntok = 0;
  for (char *save = NULL, *t = strtok_r(text, " \t\r", &save); t;
       t = strtok_r(NULL, " \t\r", &save)) {
    if (t[0] == '#') break; /* a comment to the end of the line */
    if (ntok == MAX_TOKENS) return "too many words on one line";
    tok[ntok++] = t;
  }
  if (ntok == 0) return NULL;
  if (strcmp(tok[0], "handler") == 0) return parse_handler_line(p, tok, ntok, line, cur);
  if (!*cur) return "a rule before the first 'handler' line";
  if (strcmp(tok[0], "all") == 0) {
    if (ntok != 1) return "'all' takes nothing";
    (*cur)->all = 1;
    return NULL;
  }
  if (strcmp(tok[0], "max-sockets") == 0 || strcmp(tok[0], "max-servers") == 0 ||
      strcmp(tok[0], "budget") == 0)
    return parse_limit(*cur, tok[0], tok, ntok);
  if (strcmp(tok[0], "listen") == 0 || strcmp(tok[0], "connect") == 0 ||
      strcmp(tok[0], "join") == 0)
    return parse_rule(*cur, tok, ntok, line);
  return "unknown directive (handler, listen, connect, join, all, max-sockets, max-servers, "
         "budget)";
}

ncd_policy *ncd_policy_parse(const char *text, const char *file, char *err, size_t cap) {
  ncd_policy *p = calloc(1, sizeof *p);
  if (!p) {
    say(err, cap, "%s: out of memory", file);
    return NULL;
  }
  snprintf(p->file, sizeof p->file, "%s", file);
  snprintf(p->nothing.where, sizeof p->nothing.where,
           "%s: no entry for this handler and no 'handler default'", file);
  ncd_policy_entry *cur = NULL;
  int line = 0;
  for (const char *s = text; *s;) {
    size_t n = strcspn(s, "\n");
    line++;
    char buf[1024];
    if (n >= sizeof buf) {
      say(err, cap, "%s:%d: line longer than %zu bytes", file, line, sizeof buf - 1);
      ncd_policy_free(p);
      return NULL;
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
    const char *why = parse_line(p, buf, line, &cur);
    if (why) {
      say(err, cap, "%s:%d: %s", file, line, why);
      ncd_policy_free(p);
      return NULL;
    }
    s += n;
    if (*s == '\n') s++;
  }
  return p;
}

ncd_policy *ncd_policy_load(const char *path, char *err, size_t cap) {
  FILE *f = fopen(path, "r");
  if (!f) {
    say(err, cap, "cannot open --policy file %s: %s", path, strerror(errno));
    return NULL;
  }
  char *text = malloc(MAX_FILE + 1);
  size_t n = text ? fread(text, 1, MAX_FILE + 1, f) : 0;
  int bad = ferror(f);
  fclose(f);
  if (!text || bad || n > MAX_FILE) {
    say(err, cap, "%s: %s", path,
        !text ? "out of memory"
        : bad ? "read error"
              : "larger than 1 MiB");
    free(text);
    return NULL;
  }
  text[n] = '\0';
  if (strlen(text) != n) {
    say(err, cap, "%s: holds a NUL byte", path);
    free(text);
    return NULL;
  }
  ncd_policy *p = ncd_policy_parse(text, path, err, cap);
  free(text);
  return p;
}

/* ------------------------------------------------------------ lookups */

const ncd_policy_entry *ncd_policy_entry_for(const ncd_policy *p, const char *principal) {
  if (!p) return strncmp(principal, "key:", 4) == 0 ? &builtin_curve : &builtin_all;
  ncd_policy_entry *e = find_exact(p, principal);
  if (!e) e = find_exact(p, "default");
  return e ? e : &p->nothing;
}

int ncd_policy_names_uid(const ncd_policy *p, unsigned long uid) {
  char name[32];
  snprintf(name, sizeof name, "uid:%lu", uid);
  return p && find_exact(p, name) != NULL;
}

size_t ncd_policy_count(const ncd_policy *p) {
  return p ? p->nentries : 0;
}

void ncd_policy_limits(const ncd_policy_entry *e, uint32_t *max_sockets, uint32_t *max_servers,
                       uint64_t *budget) {
  if (e->has_max_sockets) *max_sockets = e->max_sockets;
  if (e->has_max_servers) *max_servers = e->max_servers;
  if (e->has_budget) *budget = e->budget;
}

/* ------------------------------------------------------------ decisions */

static int port_in(const rule *r, uint32_t port) {
  for (int i = 0; i < r->nports; i++)
    if (r->ports[i].lo <= port && port <= r->ports[i].hi) return 1;
  return 0;
}

static int names_equal(const char *a, const char *b) {
  size_t na = strlen(a), nb = strlen(b);
  if (na && a[na - 1] == '.') na--;
  if (nb && b[nb - 1] == '.') nb--;
  return na == nb && strncasecmp(a, b, na) == 0;
}

/* The family and 16 address bytes of sa; an IPv4-mapped IPv6 address is
 * IPv4 (it reaches the same host). */
static int addr_of(const struct sockaddr *sa, uint8_t out[16]) {
  if (sa->sa_family == AF_INET) {
    memcpy(out, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    return AF_INET;
  }
  if (sa->sa_family != AF_INET6) return 0;
  const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
  if (IN6_IS_ADDR_V4MAPPED(a6)) {
    memcpy(out, a6->s6_addr + 12, 4);
    return AF_INET;
  }
  memcpy(out, a6->s6_addr, 16);
  return AF_INET6;
}

static int is_zero(const uint8_t *a, int family) {
  for (int i = 0; i < (family == AF_INET ? 4 : 16); i++)
    if (a[i]) return 0;
  return 1;
}

static int block_has(const rule *r, int family, const uint8_t *a, int wildcard) {
  if (r->family != family) return 0;
  if (wildcard) return r->prefix == (family == AF_INET ? 32 : 128) && is_zero(r->addr, family);
  int full = r->prefix / 8, rest = r->prefix % 8;
  if (memcmp(r->addr, a, (size_t)full) != 0) return 0;
  return !rest || ((r->addr[full] ^ a[full]) & (0xff << (8 - rest)) & 0xff) == 0;
}

static int deny_all(const ncd_policy_entry *e, const char *what, char *why, size_t cap) {
  say(why, cap, "%s: may not %s", e->where, what);
  return NCD_POLICY_DENY;
}

int ncd_policy_tcp(const ncd_policy_entry *e, int connect, const char *name,
                   const struct sockaddr *sa, uint32_t port, char *why, size_t cap) {
  if (e->all) return NCD_POLICY_ALLOW;
  rule_kind kind = connect ? R_CONNECT_TCP : R_LISTEN_TCP;
  const char *verb = connect ? "connect" : "listen";
  uint8_t a[16];
  int family = sa ? addr_of(sa, a) : 0;
  int wildcard = family && !connect && is_zero(a, family);
  int could_resolve = 0;
  for (size_t i = 0; i < e->nrules; i++) {
    const rule *r = &e->rules[i];
    if (r->kind != kind || !port_in(r, port)) continue;
    if (r->any) return NCD_POLICY_ALLOW;
    if (r->text) {
      if (name && names_equal(r->text, name)) return NCD_POLICY_ALLOW;
    } else if (family) {
      if (block_has(r, family, a, wildcard)) return NCD_POLICY_ALLOW;
    } else {
      could_resolve = 1;
    }
  }
  if (!sa && name && could_resolve) return NCD_POLICY_RESOLVE;
  /* What was asked, for the message: "name (address)", "name" or "address". */
  char addr[INET6_ADDRSTRLEN] = "", text[INET6_ADDRSTRLEN + 300];
  if (family) inet_ntop(family, a, addr, sizeof addr);
  if (name && family)
    snprintf(text, sizeof text, "%s (%s)", name, addr);
  else
    snprintf(text, sizeof text, "%s", name ? name : addr);
  if (e->nrules == 0 && !e->all) {
    char what[400];
    snprintf(what, sizeof what, "%s anywhere (asked: %s port %u)", verb, text, port);
    return deny_all(e, what, why, cap);
  }
  say(why, cap, "%s: no '%s tcp' rule allows %s%s port %u", e->where, verb, text,
      wildcard ? " (a wildcard address: only a rule for '*' or that address allows it)" : "", port);
  return NCD_POLICY_DENY;
}

int ncd_policy_unix(const ncd_policy_entry *e, int connect, const char *path, char *why,
                    size_t cap) {
  if (e->all) return NCD_POLICY_ALLOW;
  rule_kind kind = connect ? R_CONNECT_UNIX : R_LISTEN_UNIX;
  const char *verb = connect ? "connect" : "listen";
  int canonical = canonical_path(path);
  for (size_t i = 0; i < e->nrules; i++) {
    const rule *r = &e->rules[i];
    if (r->kind != kind) continue;
    if (r->any) return NCD_POLICY_ALLOW;
    if (!canonical) continue;
    size_t n = strlen(r->text);
    if (strcmp(r->text, "/") == 0 ||
        (strncmp(path, r->text, n) == 0 && (path[n] == '\0' || path[n] == '/')))
      return NCD_POLICY_ALLOW;
  }
  say(why, cap, "%s: no '%s unix' rule allows %s%s", e->where, verb, path,
      canonical ? "" : " (not a canonical absolute path: only '*' matches it)");
  return NCD_POLICY_DENY;
}

int ncd_policy_listen_fd(const ncd_policy_entry *e, int fd, char *why, size_t cap) {
  if (e->all) return NCD_POLICY_ALLOW;
  for (size_t i = 0; i < e->nrules; i++) {
    const rule *r = &e->rules[i];
    if (r->kind == R_LISTEN_FD && (r->any || r->fd == fd)) return NCD_POLICY_ALLOW;
  }
  say(why, cap, "%s: no 'listen fd' rule allows fd %d", e->where, fd);
  return NCD_POLICY_DENY;
}

int ncd_policy_join(const ncd_policy_entry *e, const char *group, char *why, size_t cap) {
  if (e->all) return NCD_POLICY_ALLOW;
  for (size_t i = 0; i < e->nrules; i++) {
    const rule *r = &e->rules[i];
    if (r->kind == R_JOIN && (r->any || strcmp(r->text, group) == 0)) return NCD_POLICY_ALLOW;
  }
  say(why, cap, "%s: no 'join' rule allows group '%s'", e->where, group);
  return NCD_POLICY_DENY;
}
