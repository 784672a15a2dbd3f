/* log.h: leveled log lines on stderr for the daemon.
 *
 * Called only from the loop thread. A line is written with one fprintf so lines
 * from one process never interleave. The level is set once at start from
 * --log-level.
 */
#ifndef NCD_LOG_H
#define NCD_LOG_H

enum ncd_log_level { NCD_LOG_ERROR, NCD_LOG_WARN, NCD_LOG_INFO, NCD_LOG_DEBUG };

/* Parses "error", "warn", "info" or "debug"; returns -1 for anything else. */
int ncd_log_level_parse(const char *name);
void ncd_log_set_level(int level);
int ncd_log_enabled(int level);
void ncd_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define ncd_error(...) ncd_log(NCD_LOG_ERROR, __VA_ARGS__)
#define ncd_warn(...) ncd_log(NCD_LOG_WARN, __VA_ARGS__)
#define ncd_info(...) ncd_log(NCD_LOG_INFO, __VA_ARGS__)
#define ncd_debug(...) \
  do { if (ncd_log_enabled(NCD_LOG_DEBUG)) ncd_log(NCD_LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
