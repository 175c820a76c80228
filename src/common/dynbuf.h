/* dynbuf.h - a growable byte buffer with a size cap.
 *
 * Every growing buffer in dipstorage has a cap so untrusted input cannot make
 * it grow without bound; appends past the cap fail with DIP_ERANGE. */
#ifndef DIP_DYNBUF_H
#define DIP_DYNBUF_H

#include <stddef.h>
#include <stdint.h>

struct dip_dynbuf {
    uint8_t *data; /* owned; NUL-terminated after each append for text use */
    size_t len;
    size_t cap;    /* allocated bytes */
    size_t max;    /* hard cap on len */
};

/* Initialises an empty buffer that may grow to max bytes. Allocates nothing. */
void dip_dynbuf_init(struct dip_dynbuf *b, size_t max);
/* Frees the storage; the buffer is empty and reusable afterwards. */
void dip_dynbuf_free(struct dip_dynbuf *b);
/* Empties the buffer, keeping its storage for reuse. */
static inline void dip_dynbuf_reset(struct dip_dynbuf *b) { b->len = 0; if (b->data) b->data[0] = 0; }
/* Ensures room for n more bytes. Returns DIP_OK, DIP_ERANGE past max, DIP_ENOMEM. */
int dip_dynbuf_reserve(struct dip_dynbuf *b, size_t n);
int dip_dynbuf_add(struct dip_dynbuf *b, const void *data, size_t n);
int dip_dynbuf_addstr(struct dip_dynbuf *b, const char *s);
int dip_dynbuf_printf(struct dip_dynbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Returns: the storage, now owned by the caller (free()); the buffer is left empty. */
uint8_t *dip_dynbuf_take(struct dip_dynbuf *b, size_t *len);

#endif
