/* address.c: Node's net.isIP/isIPv4/isIPv6 and the JSON form of an address
 * (what Node prints for %j of server.address()). Pure functions. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "nc_int.h"
#include "utf8.h"

/* Node's IPv4 grammar: four decimal parts 0..255, no leading zeros, nothing
 * else (no spaces, no hex, no short forms). */
int nc_is_ipv4(const char *s) {
  if (s == NULL) return 0;
  for (int part = 0; part < 4; part++) {
    if (part > 0 && *s++ != '.') return 0;
    if (*s < '0' || *s > '9') return 0;
    int v = 0, digits = 0;
    const char *start = s;
    while (*s >= '0' && *s <= '9') {
      v = v * 10 + (*s++ - '0');
      if (++digits > 3) return 0;
    }
    if (v > 255 || (digits > 1 && *start == '0')) return 0;
  }
  return *s == '\0';
}

/* Node's IPv6 grammar: what inet_pton accepts (hex groups of 1..4 digits, at
 * most one "::", an optional dotted IPv4 tail), plus an optional zone
 * "%[0-9A-Za-z-.:]+". The dotted tail must itself be valid for nc_is_ipv4. */
int nc_is_ipv6(const char *s) {
  if (s == NULL || *s == '\0') return 0;
  char buf[64];
  const char *pct = strchr(s, '%');
  size_t n = pct ? (size_t)(pct - s) : strlen(s);
  if (n == 0 || n >= sizeof(buf)) return 0;
  if (pct != NULL) {
    const char *z = pct + 1;
    if (*z == '\0') return 0;
    for (; *z; z++) {
      char c = *z;
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            c == '-' || c == '.' || c == ':'))
        return 0;
    }
  }
  memcpy(buf, s, n);
  buf[n] = '\0';
  const char *colon = strrchr(buf, ':');
  if (colon != NULL && strchr(colon, '.') != NULL && !nc_is_ipv4(colon + 1)) return 0;
  unsigned char out[16];
  return inet_pton(AF_INET6, buf, out) == 1;
}

int nc_is_ip(const char *s) {
  if (nc_is_ipv4(s)) return 4;
  if (nc_is_ipv6(s)) return 6;
  return 0;
}

/* JSON string body: escapes quotes, backslashes and control characters. */
static size_t json_escape(const char *in, char *out, size_t size) {
  size_t n = 0;
  for (; *in; in++) {
    unsigned char c = (unsigned char)*in;
    char tmp[8];
    const char *piece = tmp;
    size_t plen;
    if (c == '"' || c == '\\') {
      tmp[0] = '\\';
      tmp[1] = (char)c;
      plen = 2;
    } else if (c < 0x20) {
      plen = (size_t)snprintf(tmp, sizeof(tmp), "\\u%04x", c);
    } else {
      tmp[0] = (char)c;
      plen = 1;
    }
    for (size_t i = 0; i < plen; i++, n++)
      if (n + 1 < size) out[n] = piece[i];
  }
  if (size > 0) out[n < size ? n : size - 1] = '\0';
  return n;
}

int nc_address_json(const nc_address_t *a, char *buf, size_t size) {
  /* JSON is UTF-8: a path that is not shows U+FFFD, as Node's address() does. */
  char shown[sizeof(a->address) * 3 + 1];
  char esc[sizeof(a->address) * 6 + 1];
  ncc_utf8_repair(a->address, strnlen(a->address, sizeof(a->address)), shown, sizeof(shown));
  json_escape(shown, esc, sizeof(esc));
  if (a->family == NC_FAMILY_UNIX) return snprintf(buf, size, "{\"address\":\"%s\"}", esc);
  return snprintf(buf, size, "{\"address\":\"%s\",\"port\":%d}", esc, a->port);
}

void nc__address(const ncc_addr *a, nc_address_t *out) {
  memset(out, 0, sizeof(*out));
  if (a == NULL) return;
  switch (a->family) {
  case NCC_FAMILY_IPV4:
    out->family = NC_FAMILY_IPV4;
    break;
  case NCC_FAMILY_IPV6:
    out->family = NC_FAMILY_IPV6;
    break;
  case NCC_FAMILY_UNIX:
    out->family = NC_FAMILY_UNIX;
    break;
  default:
    out->family = NC_FAMILY_NONE;
    break;
  }
  size_t n = strnlen(a->address, sizeof(a->address));
  if (n >= sizeof(out->address)) n = sizeof(out->address) - 1;
  memcpy(out->address, a->address, n);
  out->port = (int)a->port;
}
