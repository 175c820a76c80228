/* cursor.h - bounds-checked reading of untrusted bytes (packets, frames, files).
 *
 * A cursor is a pointer and a remaining length. Every read checks the length
 * first and, when short, returns false and leaves the cursor unchanged; the
 * caller reports the offset (dip_cursor_offset). Never lay a packed struct over
 * wire bytes: read each field through these helpers (big-endian, network order). */
#ifndef DIP_CURSOR_H
#define DIP_CURSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct dip_cursor {
    const uint8_t *base; /* start of the whole buffer (for offsets in messages) */
    const uint8_t *p;    /* next unread byte */
    size_t left;         /* bytes remaining after p */
};

static inline struct dip_cursor dip_cursor_make(const void *data, size_t len)
{
    struct dip_cursor c = { (const uint8_t *)data, (const uint8_t *)data, len };
    return c;
}

/* Returns: bytes consumed since the start of the buffer. */
static inline size_t dip_cursor_offset(const struct dip_cursor *c) { return (size_t)(c->p - c->base); }

static inline bool dip_cursor_skip(struct dip_cursor *c, size_t n)
{
    if (c->left < n) return false;
    c->p += n; c->left -= n;
    return true;
}

static inline bool dip_cursor_bytes(struct dip_cursor *c, void *out, size_t n)
{
    if (c->left < n) return false;
    memcpy(out, c->p, n);
    c->p += n; c->left -= n;
    return true;
}

/* Takes a sub-cursor of the next n bytes (its base stays the parent's base so
 * offsets remain absolute) and advances the parent past them. */
static inline bool dip_cursor_sub(struct dip_cursor *c, size_t n, struct dip_cursor *sub)
{
    if (c->left < n) return false;
    sub->base = c->base; sub->p = c->p; sub->left = n;
    c->p += n; c->left -= n;
    return true;
}

static inline bool dip_cursor_u8(struct dip_cursor *c, uint8_t *v)
{
    if (c->left < 1) return false;
    *v = c->p[0]; c->p += 1; c->left -= 1;
    return true;
}

static inline bool dip_cursor_u16(struct dip_cursor *c, uint16_t *v)
{
    if (c->left < 2) return false;
    *v = (uint16_t)((c->p[0] << 8) | c->p[1]); c->p += 2; c->left -= 2;
    return true;
}

static inline bool dip_cursor_u32(struct dip_cursor *c, uint32_t *v)
{
    if (c->left < 4) return false;
    *v = ((uint32_t)c->p[0] << 24) | ((uint32_t)c->p[1] << 16) | ((uint32_t)c->p[2] << 8) | c->p[3];
    c->p += 4; c->left -= 4;
    return true;
}

static inline bool dip_cursor_u64(struct dip_cursor *c, uint64_t *v)
{
    if (c->left < 8) return false;
    uint64_t x = 0;
    for (int i = 0; i < 8; i++) x = (x << 8) | c->p[i];
    c->p += 8; c->left -= 8;
    *v = x;
    return true;
}

/* Reads an unsigned big-endian integer of 1..8 bytes (reduced-size encoding, RFC 7011 6.2). */
static inline bool dip_cursor_uint(struct dip_cursor *c, size_t n, uint64_t *v)
{
    if (n == 0 || n > 8 || c->left < n) return false;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) x = (x << 8) | c->p[i];
    c->p += n; c->left -= n;
    *v = x;
    return true;
}

/* Big-endian writers into a raw byte array (caller guarantees room). */
static inline void dip_put_u16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void dip_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static inline void dip_put_u64(uint8_t *p, uint64_t v) { dip_put_u32(p, (uint32_t)(v >> 32)); dip_put_u32(p + 4, (uint32_t)v); }
static inline uint16_t dip_get_u16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline uint32_t dip_get_u32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint64_t dip_get_u64(const uint8_t *p) { return ((uint64_t)dip_get_u32(p) << 32) | dip_get_u32(p + 4); }

#endif
