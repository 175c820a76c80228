/* err.h - the one error vocabulary of dipstorage.
 *
 * Every fallible function returns an int from enum dip_err (DIP_OK == 0,
 * failures negative). Details go into an optional caller-provided error
 * buffer; library layers never print or exit (only main()s log). */
#ifndef DIP_ERR_H
#define DIP_ERR_H

#include <stddef.h>

enum dip_err {
    DIP_OK = 0,
    DIP_EAGAIN = -1,    /* need more input (incremental decoders) */
    DIP_EINVAL = -2,    /* bad argument or malformed input */
    DIP_ENOMEM = -3,    /* allocation failed or a memory budget was hit */
    DIP_EIO = -4,       /* an operating-system I/O call failed */
    DIP_ENOSPC = -5,    /* the disk is full */
    DIP_ERANGE = -6,    /* a size, count or time limit was exceeded */
    DIP_ECORRUPT = -7,  /* stored data failed a checksum or parse */
    DIP_ENOTFOUND = -8, /* a named thing does not exist */
    DIP_ESYNTAX = -9,   /* syntax error in XML or XPath */
    DIP_EUNSUPP = -10,  /* not supported here (e.g. SCTP on this kernel) */
    DIP_ETIMEOUT = -11, /* a wait ran out */
    DIP_EPROTO = -12,   /* a peer broke the protocol */
    DIP_EPERM = -13,    /* the sender's role may not do this (authorization) */
};

/* A caller-owned buffer for a human-readable message about the last error.
 * Functions that take `struct dip_errbuf *eb` accept NULL. */
struct dip_errbuf {
    char msg[512];
};

/* Formats a message into eb (if not NULL) and returns code, so that
 * `return dip_err_set(eb, DIP_EINVAL, "bad %s", what);` reads naturally. */
int dip_err_set(struct dip_errbuf *eb, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Like dip_err_set, appending ": strerror(errno_value)". */
int dip_err_sys(struct dip_errbuf *eb, int errno_value, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Maps an errno value to the closest dip_err (ENOSPC/EDQUOT -> DIP_ENOSPC, ...). */
int dip_err_from_errno(int errno_value);

/* Returns: a static short name for code ("EINVAL", ...). */
const char *dip_err_name(int code);

#endif
