/* log.h - messages to stderr, for main()s and daemons only (library layers
 * report through struct dip_errbuf instead). */
#ifndef DIP_LOG_H
#define DIP_LOG_H

enum dip_log_level { DIP_LOG_DEBUG, DIP_LOG_INFO, DIP_LOG_WARN, DIP_LOG_ERROR };

/* Messages below this level are dropped (default DIP_LOG_INFO). */
void dip_log_set_level(enum dip_log_level level);
/* Prefix for every line, normally the program or subcommand name. */
void dip_log_set_prefix(const char *prefix);
void dip_log(enum dip_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define dip_warn(...) dip_log(DIP_LOG_WARN, __VA_ARGS__)
#define dip_error(...) dip_log(DIP_LOG_ERROR, __VA_ARGS__)
#define dip_info(...) dip_log(DIP_LOG_INFO, __VA_ARGS__)
#define dip_debug(...) dip_log(DIP_LOG_DEBUG, __VA_ARGS__)

#endif
