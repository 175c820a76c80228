/* collect_build.h - builds NetFlow v5, v9 and IPFIX messages byte by byte for
 * the collector's tests, fuzz seeds and benchmark. Header-only, test use. */
#ifndef DIP_TEST_COLLECT_BUILD_H
#define DIP_TEST_COLLECT_BUILD_H

#include <stdint.h>
#include <string.h>

struct pkt {
    uint8_t b[65536];
    size_t n;
    size_t set_at;  /* offset of the open set header */
    size_t count;   /* v9: records added, for the header count */
};

static inline void pk_u8(struct pkt *p, uint8_t v) { p->b[p->n++] = v; }
static inline void pk_u16(struct pkt *p, uint16_t v) { pk_u8(p, (uint8_t)(v >> 8)); pk_u8(p, (uint8_t)v); }
static inline void pk_u32(struct pkt *p, uint32_t v) { pk_u16(p, (uint16_t)(v >> 16)); pk_u16(p, (uint16_t)v); }
static inline void pk_u64(struct pkt *p, uint64_t v) { pk_u32(p, (uint32_t)(v >> 32)); pk_u32(p, (uint32_t)v); }
static inline void pk_bytes(struct pkt *p, const void *d, size_t n) { memcpy(p->b + p->n, d, n); p->n += n; }
static inline void pk_ip4(struct pkt *p, uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
    pk_u8(p, a); pk_u8(p, b); pk_u8(p, c); pk_u8(p, d);
}

/* IPFIX header (RFC 7011 3.1); the length is patched by ipfix_end. */
static inline void ipfix_begin(struct pkt *p, uint32_t export_secs, uint32_t seq, uint32_t domain)
{
    p->n = 0; p->count = 0;
    pk_u16(p, 10); pk_u16(p, 0); pk_u32(p, export_secs); pk_u32(p, seq); pk_u32(p, domain);
}
static inline void ipfix_end(struct pkt *p) { p->b[2] = (uint8_t)(p->n >> 8); p->b[3] = (uint8_t)p->n; }

/* NetFlow v9 header (RFC 3954 5.1); count is patched by v9_end from p->count. */
static inline void v9_begin(struct pkt *p, uint32_t uptime, uint32_t secs, uint32_t seq, uint32_t source)
{
    p->n = 0; p->count = 0;
    pk_u16(p, 9); pk_u16(p, 0); pk_u32(p, uptime); pk_u32(p, secs); pk_u32(p, seq); pk_u32(p, source);
}
static inline void v9_end(struct pkt *p) { p->b[2] = (uint8_t)(p->count >> 8); p->b[3] = (uint8_t)p->count; }

static inline void set_begin(struct pkt *p, uint16_t id) { p->set_at = p->n; pk_u16(p, id); pk_u16(p, 0); }
static inline void set_end(struct pkt *p)
{
    size_t len = p->n - p->set_at;
    p->b[p->set_at + 2] = (uint8_t)(len >> 8); p->b[p->set_at + 3] = (uint8_t)len;
}
/* Pads the open set to a multiple of 4 bytes with zeros. */
static inline void set_pad(struct pkt *p) { while ((p->n - p->set_at) % 4) pk_u8(p, 0); }

/* A template record: id, then (element, length) pairs. */
static inline void tmpl_rec(struct pkt *p, uint16_t id, size_t nfields, const uint16_t *fields)
{
    pk_u16(p, id); pk_u16(p, (uint16_t)nfields);
    for (size_t i = 0; i < nfields; i++) { pk_u16(p, fields[2 * i]); pk_u16(p, fields[2 * i + 1]); }
    p->count++;
}

/* NetFlow v5 header (24 bytes) for count records. */
static inline void v5_begin(struct pkt *p, uint16_t count, uint32_t uptime, uint32_t secs, uint32_t nsecs,
                            uint32_t seq, uint8_t engine_type, uint8_t engine_id, uint16_t sampling)
{
    p->n = 0;
    pk_u16(p, 5); pk_u16(p, count); pk_u32(p, uptime); pk_u32(p, secs); pk_u32(p, nsecs); pk_u32(p, seq);
    pk_u8(p, engine_type); pk_u8(p, engine_id); pk_u16(p, sampling);
}

/* One 48-byte v5 record. */
static inline void v5_rec(struct pkt *p, uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport, uint8_t proto,
                          uint32_t packets, uint32_t bytes, uint32_t first, uint32_t last)
{
    pk_u32(p, src); pk_u32(p, dst); pk_u32(p, 0x0a000001); pk_u16(p, 3); pk_u16(p, 4);
    pk_u32(p, packets); pk_u32(p, bytes); pk_u32(p, first); pk_u32(p, last);
    pk_u16(p, sport); pk_u16(p, dport); pk_u8(p, 0); pk_u8(p, 0x1b); pk_u8(p, proto); pk_u8(p, 0x10);
    pk_u16(p, 65001); pk_u16(p, 65002); pk_u8(p, 24); pk_u8(p, 16); pk_u16(p, 0);
}

#endif
