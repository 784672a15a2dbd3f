/* encoding.c: the decoders behind socket.setEncoding(), with the semantics of
 * Node's StringDecoder: a character (utf8) or a 3-byte group (base64) split
 * across reads is carried over and delivered whole with the next read; what
 * is still carried at the end of the stream is flushed by nc__decoder_end().
 * Invalid UTF-8 becomes U+FFFD per maximal invalid subsequence, as V8 does.
 * "ascii" clears the high bit of each byte, as Node's Buffer does. */
#include <string.h>
#include <strings.h>

#include "nc_int.h"

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void utf8_reset(nc__decoder_t *d) {
  d->cp = 0;
  d->need = d->seen = 0;
  d->lower = 0x80;
  d->upper = 0xBF;
}

int nc__decoder_set(nc__decoder_t *d, const char *encoding) {
  nc__enc_t enc;
  if (encoding == NULL)
    enc = NC__ENC_NONE;
  else if (strcasecmp(encoding, "utf8") == 0 || strcasecmp(encoding, "utf-8") == 0)
    enc = NC__ENC_UTF8;
  else if (strcasecmp(encoding, "ascii") == 0)
    enc = NC__ENC_ASCII;
  else if (strcasecmp(encoding, "base64") == 0)
    enc = NC__ENC_BASE64;
  else
    return NC_EINVAL;
  memset(d, 0, sizeof(*d));
  d->enc = enc;
  utf8_reset(d);
  return 0;
}

size_t nc__decoder_max_out(const nc__decoder_t *d, size_t len) {
  switch (d->enc) {
  case NC__ENC_UTF8:
    return len * 3 + 4; /* every byte may become U+FFFD (3 bytes) */
  case NC__ENC_BASE64:
    return (len + 3) / 3 * 4 + 5;
  default:
    return len + 1;
  }
}

static size_t put_cp(uint32_t cp, char *out) {
  if (cp < 0x80) {
    out[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (char)(0xE0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = (char)(0xF0 | (cp >> 18));
  out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  out[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

#define REPLACEMENT 0xFFFDu

/* The WHATWG UTF-8 decoder, one byte at a time, state kept across calls. */
static size_t utf8_write(nc__decoder_t *d, const uint8_t *in, size_t len, char *out) {
  size_t n = 0;
  for (size_t i = 0; i < len; i++) {
    uint8_t b = in[i];
    if (d->need == 0) {
      if (b < 0x80) {
        out[n++] = (char)b;
      } else if (b >= 0xC2 && b <= 0xDF) {
        d->need = 1;
        d->cp = b & 0x1F;
      } else if (b >= 0xE0 && b <= 0xEF) {
        if (b == 0xE0) d->lower = 0xA0;
        if (b == 0xED) d->upper = 0x9F;
        d->need = 2;
        d->cp = b & 0x0F;
      } else if (b >= 0xF0 && b <= 0xF4) {
        if (b == 0xF0) d->lower = 0x90;
        if (b == 0xF4) d->upper = 0x8F;
        d->need = 3;
        d->cp = b & 0x07;
      } else {
        n += put_cp(REPLACEMENT, out + n);
      }
      continue;
    }
    if (b < d->lower || b > d->upper) {
      /* The sequence so far is invalid: one U+FFFD, then this byte starts
       * afresh. */
      utf8_reset(d);
      n += put_cp(REPLACEMENT, out + n);
      i--;
      continue;
    }
    d->lower = 0x80;
    d->upper = 0xBF;
    d->cp = (d->cp << 6) | (b & 0x3F);
    if (++d->seen == d->need) {
      n += put_cp(d->cp, out + n);
      utf8_reset(d);
    }
  }
  return n;
}

static size_t b64_group(const uint8_t *g, size_t k, char *out) {
  uint32_t v = (uint32_t)g[0] << 16 | (k > 1 ? (uint32_t)g[1] << 8 : 0) | (k > 2 ? g[2] : 0);
  out[0] = b64[(v >> 18) & 63];
  out[1] = b64[(v >> 12) & 63];
  out[2] = k > 1 ? b64[(v >> 6) & 63] : '=';
  out[3] = k > 2 ? b64[v & 63] : '=';
  return 4;
}

static size_t b64_write(nc__decoder_t *d, const uint8_t *in, size_t len, char *out) {
  size_t n = 0, i = 0;
  while (d->npend > 0 && d->npend < 3 && i < len) d->pend[d->npend++] = in[i++];
  if (d->npend == 3) {
    n += b64_group(d->pend, 3, out + n);
    d->npend = 0;
  }
  for (; i + 3 <= len; i += 3) n += b64_group(in + i, 3, out + n);
  while (i < len) d->pend[d->npend++] = in[i++];
  return n;
}

size_t nc__decoder_write(nc__decoder_t *d, const uint8_t *in, size_t len, char *out) {
  size_t n = 0;
  switch (d->enc) {
  case NC__ENC_UTF8:
    n = utf8_write(d, in, len, out);
    break;
  case NC__ENC_ASCII:
    for (; n < len; n++) out[n] = (char)(in[n] & 0x7F);
    break;
  case NC__ENC_BASE64:
    n = b64_write(d, in, len, out);
    break;
  case NC__ENC_NONE:
    memcpy(out, in, len);
    n = len;
    break;
  }
  out[n] = '\0';
  return n;
}

size_t nc__decoder_end(nc__decoder_t *d, char *out) {
  size_t n = 0;
  if (d->enc == NC__ENC_UTF8 && d->need != 0) {
    n = put_cp(REPLACEMENT, out);
    utf8_reset(d);
  } else if (d->enc == NC__ENC_BASE64 && d->npend > 0) {
    n = b64_group(d->pend, d->npend, out);
    d->npend = 0;
  }
  out[n] = '\0';
  return n;
}
