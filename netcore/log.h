/* log.h: leveled log lines on stderr for the daemon, as text or JSON.
 *
 * Called only from the loop thread. A line is written with one fprintf so lines
 * from one process never interleave. The level and the format are set once at
 * start from --log-level and --log-format. In JSON every line is one object:
 * {"time":...,"level":...,"msg":...} for plain lines, and for event lines
 * (ncd_log_event) {"time":...,"level":...,"event":..., one member per field}.
 */
#ifndef NCD_LOG_H
#define NCD_LOG_H

enum ncd_log_level { NCD_LOG_ERROR, NCD_LOG_WARN, NCD_LOG_INFO, NCD_LOG_DEBUG };
enum ncd_log_format { NCD_LOG_TEXT, NCD_LOG_JSON };

/* Parses "error", "warn", "info" or "debug"; returns -1 for anything else. */
int ncd_log_level_parse(const char *name);
/* Parses "text" or "json"; returns -1 for anything else. */
int ncd_log_format_parse(const char *name);
void ncd_log_set_level(int level);
void ncd_log_set_format(int format);
int ncd_log_enabled(int level);
void ncd_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* An event line: `event` names what happened ("connection_closed"); fmt is a
 * space-separated list of key=CONVERSION (conversions: %s %d %u %lld %llu %f
 * with an optional precision, e.g. "socket=%llu owner=%s secs=%.3f"), the
 * values follow as for printf. Text: "event key=value ..." (values with
 * spaces or quotes are quoted); JSON: numbers stay numbers. limited: at
 * most NCD_LOG_BURST lines of this event a second, the rest are counted and
 * the next line that goes out says how many were left out. */
#define NCD_LOG_BURST 50
void ncd_log_event(int level, int limited, const char *event, const char *fmt, ...);

#define ncd_error(...) ncd_log(NCD_LOG_ERROR, __VA_ARGS__)
#define ncd_warn(...) ncd_log(NCD_LOG_WARN, __VA_ARGS__)
#define ncd_info(...) ncd_log(NCD_LOG_INFO, __VA_ARGS__)
#define ncd_debug(...)                                                       \
  do {                                                                       \
    if (ncd_log_enabled(NCD_LOG_DEBUG)) ncd_log(NCD_LOG_DEBUG, __VA_ARGS__); \
  } while (0)

#endif
