/* utf8.c: see utf8.h. */
#include "utf8.h"

#include <string.h>

/* Length (1..4) of the well-formed sequence at s, or 0 with *bad set to the
 * length of its maximal invalid subpart (>= 1): the bytes that one U+FFFD
 * replaces (Unicode 15, 3.9, "U+FFFD Substitution of Maximal Subparts"). */
static size_t sequence(const unsigned char *s, size_t n, size_t *bad) {
  unsigned c = s[0];
  size_t need;
  unsigned lo = 0x80, hi = 0xBF;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) need = 1;
  else if (c == 0xE0) need = 2, lo = 0xA0;       /* no overlong 3-byte forms */
  else if (c >= 0xE1 && c <= 0xEC) need = 2;
  else if (c == 0xED) need = 2, hi = 0x9F;       /* no surrogates */
  else if (c == 0xEE || c == 0xEF) need = 2;
  else if (c == 0xF0) need = 3, lo = 0x90;       /* no overlong 4-byte forms */
  else if (c >= 0xF1 && c <= 0xF3) need = 3;
  else if (c == 0xF4) need = 3, hi = 0x8F;       /* nothing above U+10FFFF */
  else {
    *bad = 1;
    return 0;
  }
  for (size_t i = 1; i <= need; i++) {
    if (i >= n || s[i] < lo || s[i] > hi) {
      *bad = i;
      return 0;
    }
    lo = 0x80, hi = 0xBF;
  }
  return need + 1;
}

int ncc_utf8_valid(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0, bad;
  while (i < n) {
    if (p[i] < 0x80) {
      i++;
      continue;
    }
    size_t k = sequence(p + i, n - i, &bad);
    if (k == 0) return 0;
    i += k;
  }
  return 1;
}

size_t ncc_utf8_repair(const char *s, size_t n, char *out, size_t cap) {
  static const char replacement[] = "\xEF\xBF\xBD";
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0, o = 0, bad = 0;
  while (i < n) {
    size_t k = sequence(p + i, n - i, &bad);
    const char *from = k ? s + i : replacement;
    size_t len = k ? k : 3;
    if (o + len >= cap) break;
    memcpy(out + o, from, len);
    o += len;
    i += k ? k : bad;
  }
  out[o] = '\0';
  return o;
}
