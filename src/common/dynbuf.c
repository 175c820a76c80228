/* dynbuf.c - growable, capped byte buffers (see dynbuf.h). */
#include "dynbuf.h"
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dip_dynbuf_init(struct dip_dynbuf *b, size_t max)
{
    b->data = NULL; b->len = 0; b->cap = 0; b->max = max;
}

void dip_dynbuf_free(struct dip_dynbuf *b)
{
    free(b->data);
    b->data = NULL; b->len = 0; b->cap = 0;
}

int dip_dynbuf_reserve(struct dip_dynbuf *b, size_t n)
{
    if (n > b->max || b->len > b->max - n) return DIP_ERANGE;
    size_t need = b->len + n + 1; /* room for the terminating NUL */
    if (need <= b->cap) return DIP_OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) cap *= 2;
    uint8_t *p = realloc(b->data, cap);
    if (!p) return DIP_ENOMEM;
    b->data = p; b->cap = cap;
    return DIP_OK;
}

int dip_dynbuf_add(struct dip_dynbuf *b, const void *data, size_t n)
{
    int rc = dip_dynbuf_reserve(b, n);
    if (rc) return rc;
    if (n) memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = 0;
    return DIP_OK;
}

int dip_dynbuf_addstr(struct dip_dynbuf *b, const char *s) { return dip_dynbuf_add(b, s, strlen(s)); }

int dip_dynbuf_printf(struct dip_dynbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return DIP_EINVAL;
    int rc = dip_dynbuf_reserve(b, (size_t)n);
    if (rc) return rc;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return DIP_OK;
}

uint8_t *dip_dynbuf_take(struct dip_dynbuf *b, size_t *len)
{
    uint8_t *p = b->data;
    if (len) *len = b->len;
    b->data = NULL; b->len = 0; b->cap = 0;
    return p;
}
