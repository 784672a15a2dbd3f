/* keyfile.c: see keyfile.h. */
#include "keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#define HEADER "# netcore CURVE key pair (Z85). Keep this file secret.\n"

int ncc_z85_key_valid(const char *s, unsigned char *out32) {
  unsigned char buf[32];
  if (s == NULL || strlen(s) != NCC_Z85_KEY_LEN) return 0;
  if (zmq_z85_decode(buf, s) == NULL) return 0;
  if (out32 != NULL) memcpy(out32, buf, sizeof buf);
  return 1;
}

/* Parses `name = "value"` (spaces optional) into value. Returns 1 when line
 * is such an assignment of name, 0 when it names something else, -1 when it
 * is malformed. */
static int parse_assign(const char *line, char *name, size_t namecap, char *value, size_t cap) {
  const char *p = line;
  size_t n = 0;
  while (*p == ' ' || *p == '\t') p++;
  while (*p && *p != ' ' && *p != '\t' && *p != '=') {
    if (n + 1 < namecap) name[n++] = *p;
    p++;
  }
  name[n] = '\0';
  while (*p == ' ' || *p == '\t') p++;
  if (*p++ != '=') return -1;
  while (*p == ' ' || *p == '\t') p++;
  if (*p++ != '"') return -1;
  const char *end = strchr(p, '"');
  if (end == NULL || (size_t)(end - p) >= cap) return -1;
  memcpy(value, p, (size_t)(end - p));
  value[end - p] = '\0';
  for (p = end + 1; *p; p++)
    if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') return -1;
  return 1;
}

int ncc_keyfile_read(const char *path, char *public_z85, char *secret_z85, char *err,
                     size_t errcap) {
  FILE *f = fopen(path, "r");
  if (f == NULL) {
    snprintf(err, errcap, "cannot open key pair file %s: %s", path, strerror(errno));
    return -1;
  }
  char line[256], name[32], value[64];
  int lineno = 0, rc = -1;
  public_z85[0] = secret_z85[0] = '\0';
  while (fgets(line, sizeof line, f) != NULL) {
    lineno++;
    const char *p = line;
    while (*p == ' ' || *p == '\t') p++;
    if (*p == '#' || *p == '\n' || *p == '\r' || *p == '\0') continue;
    char *dst = NULL;
    if (parse_assign(line, name, sizeof name, value, sizeof value) == 1) {
      if (strcmp(name, "public-key") == 0) dst = public_z85;
      else if (strcmp(name, "secret-key") == 0) dst = secret_z85;
    }
    if (dst == NULL) {
      snprintf(err, errcap, "%s:%d: expected public-key = \"...\" or secret-key = \"...\"", path,
               lineno);
      goto out;
    }
    if (!ncc_z85_key_valid(value, NULL)) {
      snprintf(err, errcap, "%s:%d: %s is not a %d-character Z85 CURVE key", path, lineno, name,
               NCC_Z85_KEY_LEN);
      goto out;
    }
    memcpy(dst, value, NCC_Z85_KEY_LEN + 1);
  }
  if (!public_z85[0] || !secret_z85[0]) {
    snprintf(err, errcap, "%s: needs both public-key and secret-key (as `netcore keygen` writes)",
             path);
    goto out;
  }
  char derived[NCC_Z85_KEY_LEN + 1];
  if (zmq_curve_public(derived, secret_z85) != 0 || strcmp(derived, public_z85) != 0) {
    snprintf(err, errcap, "%s: its public-key does not belong to its secret-key", path);
    goto out;
  }
  rc = 0;
out:
  fclose(f);
  return rc;
}

int ncc_keyfile_generate(const char *path, char *public_z85, char *err, size_t errcap) {
  char pub[NCC_Z85_KEY_LEN + 1], sec[NCC_Z85_KEY_LEN + 1], text[256];
  if (zmq_curve_keypair(pub, sec) != 0) {
    snprintf(err, errcap, "cannot make a CURVE key pair: %s (libzmq without CURVE?)",
             zmq_strerror(zmq_errno()));
    return -1;
  }
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    snprintf(err, errcap, "cannot create %s: %s%s", path, strerror(errno),
             errno == EEXIST ? " (netcore keygen never overwrites a key file)" : "");
    return -1;
  }
  int n = snprintf(text, sizeof text, HEADER "public-key = \"%s\"\nsecret-key = \"%s\"\n", pub,
                   sec);
  /* open()'s mode is filtered by the umask; the file must be 0600 whatever it is. */
  if (fchmod(fd, 0600) != 0 || write(fd, text, (size_t)n) != n || fsync(fd) != 0) {
    snprintf(err, errcap, "cannot write %s: %s", path, strerror(errno));
    close(fd);
    unlink(path);
    return -1;
  }
  close(fd);
  memcpy(public_z85, pub, sizeof pub);
  return 0;
}
