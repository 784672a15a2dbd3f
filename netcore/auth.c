/* auth.c: see auth.h. */
#include "auth.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "daemon.h"
#include "errors.h"
#include "keyfile.h"
#include "log.h"
#include "router.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define DOMAIN_IPC "netcore-ipc"
#define DOMAIN_TCP "netcore-tcp"
#define MAX_ALLOWED 4096
#define NAME_MAX_LEN 64 /* "key:" + name fits ncd_handler.principal */
#define ZAP_MAX_FRAMES 8
/* Refusals logged per second; more are counted and summed up. */
#define REFUSAL_LOG_BURST 10

typedef struct allowed_key {
  char name[NAME_MAX_LEN + 1];
  unsigned char key[32];
} allowed_key;

static struct {
  int curve;                      /* tcp binds use CURVE */
  unsigned char secret[32];       /* netcore's CURVE secret key */
  char public_z85[NCC_Z85_KEY_LEN + 1];
  allowed_key *keys;
  size_t nkeys;
  uid_t uid;
  gid_t gid;
  void *zap;
  uv_poll_t poll;
  int polling;
  unsigned long long next_conn; /* numbers each accepted connection */
  uint64_t log_window;          /* uv_now() second of the refusals being counted */
  unsigned logged, suppressed;
} auth;

/* ------------------------------------------------------------ keygen */

int ncd_auth_keygen(int argc, char **argv) {
  if (argc != 2 || argv[1][0] == '-') {
    fprintf(stderr, "usage: netcore keygen FILE\n"
                    "Writes a new CURVE key pair to FILE (mode 0600; never overwrites) and\n"
                    "prints its public key (Z85) on stdout.\n");
    return 2;
  }
  char pub[NCC_Z85_KEY_LEN + 1], err[512];
  if (ncc_keyfile_generate(argv[1], pub, err, sizeof err) != 0) {
    fprintf(stderr, "netcore keygen: %s\n", err);
    return 1;
  }
  printf("%s\n", pub);
  return 0;
}

/* ------------------------------------------------------------ start-up checks */

/* "ipc", "tcp" or NULL, and for tcp the host part (brackets stripped). */
static const char *endpoint_kind(const char *ep, char *host, size_t cap) {
  if (strncmp(ep, "ipc://", 6) == 0) return "ipc";
  if (strncmp(ep, "tcp://", 6) != 0) return NULL;
  const char *h = ep + 6, *colon = strrchr(h, ':');
  size_t n = colon ? (size_t)(colon - h) : strlen(h);
  if (n >= 2 && h[0] == '[' && h[n - 1] == ']') h++, n -= 2;
  if (n >= cap) n = cap - 1;
  memcpy(host, h, n);
  host[n] = '\0';
  return "tcp";
}

static int is_loopback(const char *host) {
  struct in_addr a4;
  struct in6_addr a6;
  if (strcmp(host, "localhost") == 0 || strcmp(host, "lo") == 0) return 1;
  if (inet_pton(AF_INET, host, &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
  if (inet_pton(AF_INET6, host, &a6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&a6)) return 1;
    return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
  }
  return 0;
}

static int check_binds(void) {
  for (int i = 0; i < ncd.cfg.nbinds; i++) {
    const char *ep = ncd.cfg.binds[i];
    char host[256];
    const char *kind = endpoint_kind(ep, host, sizeof host);
    if (!kind) {
      fprintf(stderr, "netcore: cannot serve handlers on %s: only ipc:// and tcp:// endpoints "
                      "can be authenticated\n", ep);
      return -1;
    }
    if (strcmp(kind, "tcp") != 0 || auth.curve) continue;
    if (is_loopback(host)) {
      ncd_warn("%s has no CURVE: any local user can become a handler there "
               "(see SECURITY.md; --curve-secret-file and --curve-allow close it)", ep);
    } else if (!ncd.cfg.insecure_tcp) {
      fprintf(stderr,
              "netcore: refusing to bind %s without CURVE: anyone who reaches it would get "
              "netcore's whole network and filesystem reach. Use --curve-secret-file and "
              "--curve-allow (see SECURITY.md), a loopback address, or --insecure-tcp if "
              "the network itself is trusted.\n", ep);
      return -1;
    } else {
      ncd_warn("%s has no authentication (--insecure-tcp): anyone who reaches it can become "
               "a handler", ep);
    }
  }
  return 0;
}

/* ------------------------------------------------------------ allow file */

static int valid_name(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > NAME_MAX_LEN) return 0;
  for (; *s; s++)
    if (!(('a' <= *s && *s <= 'z') || ('A' <= *s && *s <= 'Z') || ('0' <= *s && *s <= '9') ||
          strchr("._-@", *s)))
      return 0;
  return 1;
}

static int load_allow(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) {
    fprintf(stderr, "netcore: cannot open --curve-allow file %s: %s\n", path, strerror(errno));
    return -1;
  }
  char line[512];
  int lineno = 0;
  while (fgets(line, sizeof line, f)) {
    lineno++;
    char name[128], key[128], extra[8];
    char *p = line;
    while (*p == ' ' || *p == '\t') p++;
    if (*p == '#' || *p == '\n' || *p == '\r' || *p == '\0') continue;
    int n = sscanf(p, "%127s %127s %7s", name, key, extra);
    const char *why = NULL;
    unsigned char raw[32];
    if (n != 2) why = "expected 'NAME Z85KEY'";
    else if (!valid_name(name)) why = "a name is 1 to 64 of A-Z a-z 0-9 . _ - @";
    else if (!ncc_z85_key_valid(key, raw)) why = "not a 40-character Z85 CURVE public key";
    for (size_t i = 0; !why && i < auth.nkeys; i++) {
      if (strcmp(auth.keys[i].name, name) == 0) why = "this name is already used above";
      else if (memcmp(auth.keys[i].key, raw, 32) == 0) why = "this key is already listed above";
    }
    if (!why && auth.nkeys == MAX_ALLOWED) why = "too many keys";
    if (why) {
      fprintf(stderr, "netcore: %s:%d: %s\n", path, lineno, why);
      fclose(f);
      return -1;
    }
    allowed_key *k = realloc(auth.keys, (auth.nkeys + 1) * sizeof *k);
    if (!k) {
      fclose(f);
      fprintf(stderr, "netcore: out of memory reading %s\n", path);
      return -1;
    }
    auth.keys = k;
    snprintf(k[auth.nkeys].name, sizeof k[auth.nkeys].name, "%s", name);
    memcpy(k[auth.nkeys].key, raw, 32);
    auth.nkeys++;
  }
  fclose(f);
  if (auth.nkeys == 0) ncd_warn("%s allows no key: no handler can connect over tcp", path);
  return 0;
}

int ncd_auth_init(void) {
  auth.uid = geteuid();
  auth.gid = getegid();
  if (ncd.cfg.curve_secret_file) {
    char sec[NCC_Z85_KEY_LEN + 1], err[512];
    if (!zmq_has("curve")) {
      fprintf(stderr, "netcore: this libzmq was built without CURVE\n");
      return 2;
    }
    if (ncc_keyfile_read(ncd.cfg.curve_secret_file, auth.public_z85, sec, err, sizeof err) != 0) {
      fprintf(stderr, "netcore: --curve-secret-file: %s\n", err);
      return 2;
    }
    struct stat st;
    if (stat(ncd.cfg.curve_secret_file, &st) == 0 && (st.st_mode & 077))
      ncd_warn("%s can be read by other users (mode %03o): its secret key is not secret",
               ncd.cfg.curve_secret_file, (unsigned)(st.st_mode & 0777));
    zmq_z85_decode(auth.secret, sec);
    memset(sec, 0, sizeof sec);
    if (load_allow(ncd.cfg.curve_allow_file) != 0) return 2;
    auth.curve = 1;
    if (!ncd.policy)
      ncd_warn("no --policy: CURVE handlers may connect to netcore but not listen, connect or "
               "join a group (docs/POLICY.md)");
  }
  return check_binds() == 0 ? 0 : 2;
}

/* ------------------------------------------------------------ ZAP */

static void log_refusal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void log_refusal(const char *fmt, ...) {
  ncd_metrics_auth_refused();
  uint64_t second = uv_now(ncd.loop) / 1000;
  if (second != auth.log_window) {
    if (auth.suppressed)
      ncd_warn("... and %u more handler connections refused", auth.suppressed);
    auth.log_window = second;
    auth.logged = auth.suppressed = 0;
  }
  if (auth.logged >= REFUSAL_LOG_BURST) {
    auth.suppressed++;
    return;
  }
  auth.logged++;
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  ncd_warn("refused a handler connection: %s", msg);
}

static int uid_allowed(unsigned long uid, unsigned long gid) {
  if (uid == auth.uid || gid == auth.gid) return 1;
  if (ncd_policy_names_uid(ncd.policy, uid)) return 1; /* a "handler uid:N" entry */
  for (int i = 0; i < ncd.cfg.nallow_uids; i++)
    if (uid == ncd.cfg.allow_uids[i]) return 1;
  return 0;
}

/* ipc: the address ends in ":uid:gid:pid" (libzmq's stream_engine_base.cpp,
 * SO_PEERCRED). */
static int decide_ipc(const char *address, char *principal, size_t cap) {
  unsigned long uid, gid, pid;
  const char *p = address + strlen(address);
  int colons = 0;
  while (p > address && colons < 3)
    if (*--p == ':') colons++;
  if (colons < 3 || sscanf(p, ":%lu:%lu:%lu", &uid, &gid, &pid) != 3) {
    log_refusal("ipc peer without credentials (address '%s')", address);
    return 0;
  }
  if (!uid_allowed(uid, gid)) {
    log_refusal("ipc peer uid %lu gid %lu (pid %lu) is not allowed: netcore runs as uid %lu "
                "gid %lu; --allow-uid or a 'handler uid:N' policy entry lets another uid in",
                uid, gid, pid, (unsigned long)auth.uid, (unsigned long)auth.gid);
    return 0;
  }
  snprintf(principal, cap, "uid:%lu", uid);
  return 1;
}

static int decide_curve(const char *address, const unsigned char *key, size_t len,
                        char *principal, size_t cap) {
  char z85[NCC_Z85_KEY_LEN + 1] = "?";
  if (len == 32) zmq_z85_encode(z85, key, 32);
  for (size_t i = 0; len == 32 && i < auth.nkeys; i++)
    if (memcmp(auth.keys[i].key, key, 32) == 0) {
      snprintf(principal, cap, "key:%s", auth.keys[i].name);
      return 1;
    }
  log_refusal("CURVE key %s from %s is not in %s", z85, address, ncd.cfg.curve_allow_file);
  return 0;
}

/* The frames of one ZAP request: version, request id, domain, address,
 * routing id, mechanism, credentials... */
static void zap_answer(zmq_msg_t *f, int n) {
  char domain[32] = "", address[256] = "", mechanism[16] = "", principal[96] = "";
  char user_id[128] = "";
  const char *status = "400", *text = "not allowed";
#define COPY(dst, i)                                                              \
  snprintf(dst, sizeof dst, "%.*s", (int)(zmq_msg_size(&f[i]) < sizeof dst ? zmq_msg_size(&f[i]) \
                                                                          : sizeof dst - 1), \
           (const char *)zmq_msg_data(&f[i]))
  if (n < 6 || zmq_msg_size(&f[0]) != 3 || memcmp(zmq_msg_data(&f[0]), "1.0", 3) != 0) {
    ncd_error("malformed ZAP request (%d frames)", n);
    if (n < 2) return; /* nothing to answer to */
    status = "500", text = "malformed ZAP request";
  } else {
    COPY(domain, 2);
    COPY(address, 3);
    COPY(mechanism, 5);
    int ok = 0;
    if (strcmp(domain, DOMAIN_IPC) == 0 && strcmp(mechanism, "NULL") == 0) {
      ok = decide_ipc(address, principal, sizeof principal);
    } else if (strcmp(domain, DOMAIN_TCP) == 0 && strcmp(mechanism, "CURVE") == 0 && auth.curve) {
      ok = n >= 7 && decide_curve(address, zmq_msg_data(&f[6]), zmq_msg_size(&f[6]), principal,
                                  sizeof principal);
    } else if (strcmp(domain, DOMAIN_TCP) == 0 && strcmp(mechanism, "NULL") == 0 && !auth.curve) {
      snprintf(principal, sizeof principal, "tcp:%s", address);
      ok = 1;
    } else {
      log_refusal("mechanism %s on domain %s from '%s' is not one netcore offers", mechanism,
                  domain, address);
    }
    if (ok) {
      /* Closes of earlier connections first: a handler whose connection
       * closed is gone before a newcomer can take its routing id. */
      ncd_router_poll_monitor();
      status = "200", text = "OK";
      snprintf(user_id, sizeof user_id, "%llu:%s", ++auth.next_conn, principal);
      ncd_debug("handler connection %s from '%s' accepted", user_id, address);
    }
  }
#undef COPY
  /* REP puts the requester's envelope back in front. */
  const char *parts[6] = {"1.0", NULL, status, text, user_id, ""};
  for (int i = 0; i < 6; i++) {
    int flags = i < 5 ? ZMQ_SNDMORE : 0;
    if (i == 1) zmq_send(auth.zap, zmq_msg_data(&f[1]), zmq_msg_size(&f[1]), flags);
    else zmq_send(auth.zap, parts[i], strlen(parts[i]), flags);
  }
}

/* ZMQ_FD is edge-triggered: drain every request each time. */
static void zap_cb(uv_poll_t *p, int status, int events) {
  for (;;) {
    zmq_msg_t f[ZAP_MAX_FRAMES];
    int n = 0, more = 1;
    zmq_msg_init(&f[0]);
    if (zmq_msg_recv(&f[0], auth.zap, ZMQ_DONTWAIT) < 0) {
      zmq_msg_close(&f[0]);
      return;
    }
    more = zmq_msg_more(&f[0]);
    n = 1;
    while (more) { /* the rest of a multipart message is already there */
      zmq_msg_t m;
      zmq_msg_init(&m);
      if (zmq_msg_recv(&m, auth.zap, 0) < 0) {
        zmq_msg_close(&m);
        break;
      }
      more = zmq_msg_more(&m);
      if (n < ZAP_MAX_FRAMES) {
        zmq_msg_init(&f[n]);
        zmq_msg_move(&f[n++], &m);
      }
      zmq_msg_close(&m);
    }
    zap_answer(f, n);
    for (int i = 0; i < n; i++) zmq_msg_close(&f[i]);
  }
}

int ncd_auth_start(void) {
  int linger = 0, fd;
  size_t len = sizeof fd;
  auth.zap = zmq_socket(ncd.zctx, ZMQ_REP);
  if (!auth.zap || zmq_setsockopt(auth.zap, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
      zmq_bind(auth.zap, ZAP_ENDPOINT) != 0 ||
      zmq_getsockopt(auth.zap, ZMQ_FD, &fd, &len) != 0) {
    ncd_error("cannot start the ZAP handler on %s: %s", ZAP_ENDPOINT, zmq_strerror(errno));
    return -1;
  }
  if (ncd_uv_check(uv_poll_init(ncd.loop, &auth.poll, fd), "watch the ZAP socket") != 0)
    return -1;
  auth.polling = 1; /* initialised: closed at exit */
  if (ncd_uv_check(uv_poll_start(&auth.poll, UV_READABLE, zap_cb), "poll the ZAP socket") != 0)
    return -1;
  return 0;
}

int ncd_auth_setup_bind(void *router, const char *endpoint) {
  char host[256];
  const char *kind = endpoint_kind(endpoint, host, sizeof host);
  int tcp = kind && strcmp(kind, "tcp") == 0, curve = tcp && auth.curve;
  const char *domain = tcp ? DOMAIN_TCP : DOMAIN_IPC;
  if (zmq_setsockopt(router, ZMQ_ZAP_DOMAIN, domain, strlen(domain)) != 0 ||
      zmq_setsockopt(router, ZMQ_CURVE_SERVER, &curve, sizeof curve) != 0 ||
      (curve && zmq_setsockopt(router, ZMQ_CURVE_SECRETKEY, auth.secret, 32) != 0)) {
    ncd_error("cannot set up authentication for %s: %s", endpoint, zmq_strerror(errno));
    return -1;
  }
  return 0;
}

const char *ncd_auth_describe(const char *endpoint) {
  static char buf[128];
  char host[256];
  const char *kind = endpoint_kind(endpoint, host, sizeof host);
  if (kind && strcmp(kind, "ipc") == 0) return "peer credentials";
  if (!auth.curve) return "no authentication";
  snprintf(buf, sizeof buf, "CURVE, server key %s", auth.public_z85);
  return buf;
}

void ncd_auth_stop(void) {
  if (auth.polling) uv_close((uv_handle_t *)&auth.poll, NULL);
  auth.polling = 0;
  if (auth.zap) zmq_close(auth.zap);
  auth.zap = NULL;
  free(auth.keys);
  auth.keys = NULL;
  auth.nkeys = 0;
  memset(auth.secret, 0, sizeof auth.secret);
}

const char *ncd_auth_principal(const char *user_id) {
  const char *colon = strchr(user_id, ':');
  return colon ? colon + 1 : user_id;
}
