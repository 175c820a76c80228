/* err.c - error buffers and error code names (see err.h). */
#include "err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int dip_err_set(struct dip_errbuf *eb, int code, const char *fmt, ...)
{
    if (eb) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(eb->msg, sizeof eb->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

int dip_err_from_errno(int errno_value)
{
    switch (errno_value) {
    case ENOSPC:
#ifdef EDQUOT
    case EDQUOT:
#endif
        return DIP_ENOSPC;
    case ENOMEM: return DIP_ENOMEM;
    case ENOENT: return DIP_ENOTFOUND;
    case EINVAL: return DIP_EINVAL;
    case ETIMEDOUT: return DIP_ETIMEOUT;
    default: return DIP_EIO;
    }
}

int dip_err_sys(struct dip_errbuf *eb, int errno_value, const char *fmt, ...)
{
    int code = dip_err_from_errno(errno_value);
    if (eb) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(eb->msg, sizeof eb->msg, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < sizeof eb->msg)
            snprintf(eb->msg + n, sizeof eb->msg - (size_t)n, ": %s", strerror(errno_value));
    }
    return code;
}

const char *dip_err_name(int code)
{
    switch (code) {
    case DIP_OK: return "OK";
    case DIP_EAGAIN: return "EAGAIN";
    case DIP_EINVAL: return "EINVAL";
    case DIP_ENOMEM: return "ENOMEM";
    case DIP_EIO: return "EIO";
    case DIP_ENOSPC: return "ENOSPC";
    case DIP_ERANGE: return "ERANGE";
    case DIP_ECORRUPT: return "ECORRUPT";
    case DIP_ENOTFOUND: return "ENOTFOUND";
    case DIP_ESYNTAX: return "ESYNTAX";
    case DIP_EUNSUPP: return "EUNSUPP";
    case DIP_ETIMEOUT: return "ETIMEOUT";
    case DIP_EPROTO: return "EPROTO";
    case DIP_EPERM: return "EPERM";
    default: return "EUNKNOWN";
    }
}
