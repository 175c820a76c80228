/* log.c - stderr logging for main()s (see log.h). */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>

static enum dip_log_level min_level = DIP_LOG_INFO;
static const char *log_prefix = "dipstorage";

void dip_log_set_level(enum dip_log_level level) { min_level = level; }
void dip_log_set_prefix(const char *prefix) { log_prefix = prefix; }

void dip_log(enum dip_log_level level, const char *fmt, ...)
{
    static const char *names[] = { "debug", "info", "warning", "error" };
    if (level < min_level) return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: %s: ", log_prefix, names[level]);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}
