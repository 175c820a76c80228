/* flow_batch.c - compact, versioned, endian-safe binary batches of flow
 * records: the form records take between nodes and in a leaf's WAL.
 * The layout is documented in flow.h next to the prototypes. */
#include "flow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <isa-l/crc.h>
#include <zlib.h>

#include "../common/cursor.h"

static const uint8_t magic[4] = { 'D', 'I', 'P', 'B' };

static size_t put_addr(uint8_t *p, const struct dip_addr *a)
{
    if (dip_addr_is_v4(a)) {
        memcpy(p, a->b + 12, 4);
        return 4;
    }
    memcpy(p, a->b, 16);
    return 16;
}

static size_t encode_one(const struct dip_flow *f, uint8_t *p)
{
    uint8_t fam = 0;
    if (!dip_addr_is_v4(&f->src)) fam |= 1;
    if (!dip_addr_is_v4(&f->dst)) fam |= 2;
    if ((f->present & DIP_F_NEXTHOP) && !dip_addr_is_v4(&f->nexthop)) fam |= 4;
    if ((f->present & DIP_F_EXPORTER) && !dip_addr_is_v4(&f->exporter)) fam |= 8;
    size_t n = 0;
    dip_put_u16(p, f->present & DIP_F_ALL_OPTIONAL); n += 2;
    p[n++] = fam;
    n += put_addr(p + n, &f->src);
    n += put_addr(p + n, &f->dst);
    dip_put_u16(p + n, f->sport); n += 2;
    dip_put_u16(p + n, f->dport); n += 2;
    p[n++] = f->proto;
    dip_put_u64(p + n, f->packets); n += 8;
    dip_put_u64(p + n, f->bytes); n += 8;
    dip_put_u64(p + n, f->first); n += 8;
    dip_put_u64(p + n, f->last); n += 8;
    dip_put_u64(p + n, f->id); n += 8;
    uint16_t pr = f->present;
    if (pr & DIP_F_FLAGS) p[n++] = f->flags;
    if (pr & DIP_F_TOS) p[n++] = f->tos;
    if (pr & DIP_F_IN) { dip_put_u32(p + n, f->in); n += 4; }
    if (pr & DIP_F_OUT) { dip_put_u32(p + n, f->out); n += 4; }
    if (pr & DIP_F_SRCAS) { dip_put_u32(p + n, f->srcas); n += 4; }
    if (pr & DIP_F_DSTAS) { dip_put_u32(p + n, f->dstas); n += 4; }
    if (pr & DIP_F_SMASK) p[n++] = f->smask;
    if (pr & DIP_F_DMASK) p[n++] = f->dmask;
    if (pr & DIP_F_NEXTHOP) n += put_addr(p + n, &f->nexthop);
    if (pr & DIP_F_EXPORTER) n += put_addr(p + n, &f->exporter);
    if (pr & DIP_F_DOMAIN) { dip_put_u32(p + n, f->domain); n += 4; }
    if (pr & DIP_F_SAMPLING) { dip_put_u32(p + n, f->sampling); n += 4; }
    return n;
}

int dip_batch_begin(struct dip_dynbuf *out, size_t *start)
{
    int rc = dip_dynbuf_reserve(out, DIP_BATCH_HEADER + DIP_BATCH_TRAILER);
    if (rc) return rc;
    uint8_t *p = out->data + out->len;
    memcpy(p, magic, 4);
    p[4] = DIP_BATCH_VERSION;
    p[5] = 0;
    dip_put_u16(p + 6, 0);
    dip_put_u32(p + 8, 0); /* the count: written by dip_batch_end */
    *start = out->len;
    out->len += DIP_BATCH_HEADER;
    out->data[out->len] = 0;
    return DIP_OK;
}

int dip_batch_add(struct dip_dynbuf *out, const struct dip_flow *f)
{
    int rc = dip_dynbuf_reserve(out, DIP_BATCH_MAX_RECORD + DIP_BATCH_TRAILER);
    if (rc) return rc;
    out->len += encode_one(f, out->data + out->len);
    out->data[out->len] = 0;
    return DIP_OK;
}

int dip_batch_end(struct dip_dynbuf *out, size_t start, size_t n)
{
    if (n > UINT32_MAX || start > out->len || out->len - start < DIP_BATCH_HEADER) return DIP_ERANGE;
    int rc = dip_dynbuf_reserve(out, DIP_BATCH_TRAILER);
    if (rc) return rc;
    uint8_t *s = out->data + start;
    dip_put_u32(s + 8, (uint32_t)n);
    uint32_t crc = crc32_gzip_refl(0, s, (uint64_t)(out->len - start)); /* zlib's crc32, ~6x faster */
    dip_put_u32(out->data + out->len, crc);
    out->len += DIP_BATCH_TRAILER;
    out->data[out->len] = 0;
    return DIP_OK;
}

int dip_batch_encode(const struct dip_flow *flows, size_t n, struct dip_dynbuf *out)
{
    if (n > UINT32_MAX) return DIP_ERANGE;
    /* room for every record at once: the loop below writes without checks */
    int rc = dip_dynbuf_reserve(out, DIP_BATCH_HEADER + n * DIP_BATCH_MAX_RECORD + DIP_BATCH_TRAILER);
    size_t start;
    if (!rc) rc = dip_batch_begin(out, &start);
    if (rc) return rc;
    uint8_t *p = out->data + out->len;
    for (size_t i = 0; i < n; i++) p += encode_one(&flows[i], p);
    out->len = (size_t)(p - out->data);
    return dip_batch_end(out, start, n);
}

static bool get_addr(struct dip_cursor *c, bool v6, struct dip_addr *a)
{
    if (v6) return dip_cursor_bytes(c, a->b, 16);
    uint32_t v4;
    if (!dip_cursor_u32(c, &v4)) return false;
    dip_addr_from_v4(a, v4);
    return true;
}

static bool decode_one(struct dip_cursor *c, struct dip_flow *f)
{
    uint16_t pr;
    uint8_t fam;
    memset(f, 0, sizeof *f);
    if (!dip_cursor_u16(c, &pr) || (pr & ~DIP_F_ALL_OPTIONAL) || !dip_cursor_u8(c, &fam) || (fam & 0xf0)) return false;
    f->present = pr;
    bool ok = get_addr(c, fam & 1, &f->src) && get_addr(c, fam & 2, &f->dst) && dip_cursor_u16(c, &f->sport) &&
              dip_cursor_u16(c, &f->dport) && dip_cursor_u8(c, &f->proto) && dip_cursor_u64(c, &f->packets) &&
              dip_cursor_u64(c, &f->bytes) && dip_cursor_u64(c, &f->first) && dip_cursor_u64(c, &f->last) &&
              dip_cursor_u64(c, &f->id);
    if (!ok) return false;
    if ((pr & DIP_F_FLAGS) && !dip_cursor_u8(c, &f->flags)) return false;
    if ((pr & DIP_F_TOS) && !dip_cursor_u8(c, &f->tos)) return false;
    if ((pr & DIP_F_IN) && !dip_cursor_u32(c, &f->in)) return false;
    if ((pr & DIP_F_OUT) && !dip_cursor_u32(c, &f->out)) return false;
    if ((pr & DIP_F_SRCAS) && !dip_cursor_u32(c, &f->srcas)) return false;
    if ((pr & DIP_F_DSTAS) && !dip_cursor_u32(c, &f->dstas)) return false;
    if ((pr & DIP_F_SMASK) && !dip_cursor_u8(c, &f->smask)) return false;
    if ((pr & DIP_F_DMASK) && !dip_cursor_u8(c, &f->dmask)) return false;
    if ((pr & DIP_F_NEXTHOP) && !get_addr(c, fam & 4, &f->nexthop)) return false;
    if ((pr & DIP_F_EXPORTER) && !get_addr(c, fam & 8, &f->exporter)) return false;
    if ((pr & DIP_F_DOMAIN) && !dip_cursor_u32(c, &f->domain)) return false;
    if ((pr & DIP_F_SAMPLING) && !dip_cursor_u32(c, &f->sampling)) return false;
    return true;
}

int dip_batch_decode_prefix(const uint8_t *data, size_t len, size_t max_records, struct dip_flow **flows, size_t *n,
                            size_t *consumed, struct dip_errbuf *eb)
{
    *flows = NULL;
    *n = 0;
    *consumed = 0;
    if (len < DIP_BATCH_HEADER) return DIP_EAGAIN;
    if (memcmp(data, magic, 4) != 0) return dip_err_set(eb, DIP_ECORRUPT, "batch does not start with DIPB (byte 0)");
    if (data[4] != DIP_BATCH_VERSION)
        return dip_err_set(eb, DIP_ECORRUPT, "batch version %u is not supported (byte 4)", data[4]);
    uint32_t count = dip_get_u32(data + 8);
    if (count > max_records)
        return dip_err_set(eb, DIP_ECORRUPT, "batch claims %u records, above the limit %zu", count, max_records);
    /* Records are variable-length: walk them to find the end, then check the CRC. */
    struct dip_flow *out = count ? malloc(count * sizeof *out) : NULL;
    if (count && !out) return DIP_ENOMEM;
    struct dip_cursor c = dip_cursor_make(data, len);
    dip_cursor_skip(&c, DIP_BATCH_HEADER);
    for (uint32_t i = 0; i < count; i++) {
        if (!decode_one(&c, &out[i])) {
            free(out);
            if (c.left < DIP_BATCH_MAX_RECORD) return DIP_EAGAIN; /* may just be cut short */
            return dip_err_set(eb, DIP_ECORRUPT, "batch record %u is malformed at byte %zu", i, dip_cursor_offset(&c));
        }
    }
    size_t body = dip_cursor_offset(&c);
    uint32_t crc;
    if (!dip_cursor_u32(&c, &crc)) {
        free(out);
        return DIP_EAGAIN;
    }
    if (crc32_gzip_refl(0, data, body) != crc) {
        free(out);
        return dip_err_set(eb, DIP_ECORRUPT, "batch checksum mismatch (%zu bytes)", body + 4);
    }
    *flows = out;
    *n = count;
    *consumed = body + 4;
    return DIP_OK;
}

int dip_batch_decode_stream(const uint8_t *data, size_t len, size_t max_records,
                            int (*fn)(void *ctx, const struct dip_flow *flows, size_t n), void *ctx,
                            struct dip_errbuf *eb)
{
    size_t off = 0, total = 0;
    while (off < len) {
        struct dip_flow *flows;
        size_t n, used;
        int rc = dip_batch_decode_prefix(data + off, len - off, max_records - total, &flows, &n, &used, eb);
        if (rc == DIP_EAGAIN)
            return dip_err_set(eb, DIP_ECORRUPT, "batch at byte %zu of %zu is truncated", off, len);
        if (rc) {
            char why[sizeof eb->msg];
            snprintf(why, sizeof why, "%s", eb->msg);
            return dip_err_set(eb, rc, "batch at byte %zu: %s", off, why);
        }
        total += n;
        rc = n ? fn(ctx, flows, n) : DIP_OK;
        free(flows);
        if (rc) return rc;
        off += used;
    }
    return DIP_OK;
}

int dip_batch_decode(const uint8_t *data, size_t len, size_t max_records, struct dip_flow **flows, size_t *n,
                     struct dip_errbuf *eb)
{
    size_t used;
    int rc = dip_batch_decode_prefix(data, len, max_records, flows, n, &used, eb);
    if (rc == DIP_EAGAIN) return dip_err_set(eb, DIP_ECORRUPT, "batch of %zu bytes is truncated", len);
    if (rc) return rc;
    if (used != len) {
        free(*flows);
        *flows = NULL;
        *n = 0;
        return dip_err_set(eb, DIP_ECORRUPT, "batch has %zu stray bytes at byte %zu", len - used, used);
    }
    return DIP_OK;
}
