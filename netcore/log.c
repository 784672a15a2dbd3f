/* log.c: see log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int current_level = NCD_LOG_INFO;
static int current_format = NCD_LOG_TEXT;
static const char *const level_names[] = {"error", "warn", "info", "debug"};

int ncd_log_level_parse(const char *name) {
  for (int i = 0; i < 4; i++)
    if (strcmp(name, level_names[i]) == 0) return i;
  return -1;
}

int ncd_log_format_parse(const char *name) {
  if (strcmp(name, "text") == 0) return NCD_LOG_TEXT;
  if (strcmp(name, "json") == 0) return NCD_LOG_JSON;
  return -1;
}

void ncd_log_set_level(int level) {
  current_level = level;
}
void ncd_log_set_format(int format) {
  current_format = format;
}

int ncd_log_enabled(int level) {
  return level <= current_level;
}

/* A growing line, cut (never overflowed) at its capacity. */
typedef struct line {
  char buf[2048];
  size_t n;
} line;

static void put(line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(line *l, const char *fmt, ...) {
  if (l->n + 1 >= sizeof l->buf) return;
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(l->buf + l->n, sizeof l->buf - l->n, fmt, ap);
  va_end(ap);
  if (k > 0) l->n = l->n + (size_t)k < sizeof l->buf ? l->n + (size_t)k : sizeof l->buf - 1;
}

/* s as a JSON string (quotes included); control bytes as \u00XX. Bytes that
 * are not UTF-8 pass through: log text comes from netcore and handler names,
 * which the wire already checked. */
static void put_json_string(line *l, const char *s) {
  put(l, "\"");
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      put(l, "\\%c", c);
    else if (c == '\n')
      put(l, "\\n");
    else if (c < 0x20 || c == 0x7f)
      put(l, "\\u%04x", c);
    else
      put(l, "%c", c);
  }
  put(l, "\"");
}

/* A text value: bare when it is one word, else quoted with \" and \\. */
static void put_text_value(line *l, const char *s) {
  int bare = *s != 0;
  for (const char *p = s; *p; p++)
    if (*p == ' ' || *p == '"' || *p == '\\' || (unsigned char)*p < 0x20) bare = 0;
  if (bare) {
    put(l, "%s", s);
    return;
  }
  put(l, "\"");
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      put(l, "\\%c", c);
    else if (c < 0x20)
      put(l, "\\x%02x", c);
    else
      put(l, "%c", c);
  }
  put(l, "\"");
}

static void start_line(line *l, int level) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char when[64];
  snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
  l->n = 0;
  if (current_format == NCD_LOG_JSON)
    put(l, "{\"time\":\"%s\",\"level\":\"%s\"", when, level_names[level]);
  else
    put(l, "%s netcore %s: ", when, level_names[level]);
}

static void end_line(line *l) {
  if (current_format == NCD_LOG_JSON) {
    if (l->n + 2 >= sizeof l->buf) l->n = sizeof l->buf - 3; /* keep the object closed */
    put(l, "}");
  }
  fprintf(stderr, "%.*s\n", (int)l->n, l->buf);
}

void ncd_log(int level, const char *fmt, ...) {
  if (!ncd_log_enabled(level)) return;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  line l;
  start_line(&l, level);
  if (current_format == NCD_LOG_JSON) {
    put(&l, ",\"msg\":");
    put_json_string(&l, msg);
  } else {
    put(&l, "%s", msg);
  }
  end_line(&l);
}

/* ------------------------------------------------------------ rate limits */

#define LIMITED_EVENTS 16

/* Per event name (the pointer: names are static strings): lines in the
 * current second and those left out. */
static struct limit {
  const char *event;
  time_t second;
  unsigned lines;
  unsigned long long dropped;
} limits[LIMITED_EVENTS];

/* Whether a line of event may go out now; *dropped is what was left out
 * before it (to say so on this line). */
static int allow(const char *event, unsigned long long *dropped) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  struct limit *slot = NULL;
  for (int i = 0; i < LIMITED_EVENTS && !slot; i++)
    if (limits[i].event == event || !limits[i].event) slot = &limits[i];
  if (!slot) slot = &limits[LIMITED_EVENTS - 1]; /* shared by the rest */
  slot->event = event;
  if (slot->second != ts.tv_sec) {
    slot->second = ts.tv_sec;
    slot->lines = 0;
  }
  if (slot->lines >= NCD_LOG_BURST) {
    slot->dropped++;
    return 0;
  }
  slot->lines++;
  *dropped = slot->dropped;
  slot->dropped = 0;
  return 1;
}

/* ------------------------------------------------------------ event lines */

static void put_field_name(line *l, const char *key, size_t klen) {
  if (current_format == NCD_LOG_JSON)
    put(l, ",\"%.*s\":", (int)klen, key);
  else
    put(l, " %.*s=", (int)klen, key);
}

void ncd_log_event(int level, int limited, const char *event, const char *fmt, ...) {
  if (!ncd_log_enabled(level)) return;
  unsigned long long dropped = 0;
  if (limited && !allow(event, &dropped)) return;
  line l;
  start_line(&l, level);
  if (current_format == NCD_LOG_JSON) {
    put(&l, ",\"event\":");
    put_json_string(&l, event);
  } else {
    put(&l, "%s", event);
  }
  va_list ap;
  va_start(ap, fmt);
  const char *p = fmt;
  while (*p) {
    while (*p == ' ') p++;
    const char *key = p;
    while (*p && *p != '=') p++;
    if (*p != '=' || p[1] != '%') break; /* a malformed spec ends the fields */
    size_t klen = (size_t)(p - key);
    p += 2;
    int prec = -1;
    if (*p == '.') {
      char *after;
      prec = (int)strtol(p + 1, &after, 10);
      p = after;
    }
    int longs = 0;
    while (*p == 'l') longs++, p++;
    char conv = *p ? *p++ : 0;
    put_field_name(&l, key, klen);
    switch (conv) {
      case 's': {
        const char *v = va_arg(ap, const char *);
        if (!v) v = "";
        if (current_format == NCD_LOG_JSON)
          put_json_string(&l, v);
        else
          put_text_value(&l, v);
        break;
      }
      case 'd':
        if (longs >= 2)
          put(&l, "%lld", va_arg(ap, long long));
        else
          put(&l, "%d", va_arg(ap, int));
        break;
      case 'u':
        if (longs >= 2)
          put(&l, "%llu", va_arg(ap, unsigned long long));
        else
          put(&l, "%u", va_arg(ap, unsigned));
        break;
      case 'f':
        put(&l, "%.*f", prec < 0 ? 6 : prec, va_arg(ap, double));
        break;
      default:
        put(&l, "null");
        break;
    }
  }
  va_end(ap);
  if (dropped) {
    put_field_name(&l, "suppressed", 10);
    put(&l, "%llu", dropped);
  }
  end_line(&l);
}
