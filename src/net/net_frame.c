/* net_frame.c - the frame format of node links (see net.h): a 13-byte header
 * (u32 length, u8 type, u64 id, big-endian) and the payload, and the
 * incremental reader that splits a byte stream fed in any split into frames.
 * Pure functions of (bytes, state): no I/O. */
#include <stdlib.h>

#include "common/cursor.h"
#include "net/net.h"

/* Buffers above this capacity are released after their frame so that one
 * large frame does not pin its memory for the life of the link. */
#define KEEP_CAP (256u << 10)

void dip_net_frame_header(uint8_t hdr[DIP_NET_FRAME_HEADER], uint8_t type, uint64_t id, size_t len)
{
    dip_put_u32(hdr, (uint32_t)len);
    hdr[4] = type;
    dip_put_u64(hdr + 5, id);
}

void dip_net_frame_reader_init(struct dip_net_frame_reader *r, size_t max_payload)
{
    if (max_payload > DIP_NET_FRAME_MAX) max_payload = DIP_NET_FRAME_MAX;
    dip_dynbuf_init(&r->buf, max_payload + DIP_NET_FRAME_HEADER);
    r->max_payload = max_payload;
    r->offset = 0;
}

void dip_net_frame_reader_free(struct dip_net_frame_reader *r) { dip_dynbuf_free(&r->buf); }

static int too_long(const struct dip_net_frame_reader *r, uint32_t plen, struct dip_errbuf *eb)
{
    return dip_err_set(eb, DIP_EPROTO, "frame at stream offset %llu: payload length %u exceeds the limit of %zu",
                       (unsigned long long)r->offset, plen, r->max_payload);
}

static struct dip_net_frame frame_at(const uint8_t *p, size_t plen)
{
    struct dip_net_frame f;
    f.type = p[4];
    f.id = dip_get_u64(p + 5);
    f.payload = p + DIP_NET_FRAME_HEADER;
    f.len = plen;
    return f;
}

/* Completes the buffered partial frame from data; *used says how much of data
 * it took. Delivers the frame when whole. */
static int feed_buffered(struct dip_net_frame_reader *r, const uint8_t *data, size_t len, size_t *used,
                         int (*on_frame)(void *ctx, const struct dip_net_frame *f), void *ctx,
                         struct dip_errbuf *eb)
{
    struct dip_dynbuf *b = &r->buf;
    size_t take = 0;
    if (b->len < 4) {
        take = 4 - b->len < len ? 4 - b->len : len;
        int rc = dip_dynbuf_add(b, data, take);
        if (rc) return rc == DIP_ERANGE ? DIP_EPROTO : rc;
        if (b->len < 4) { *used = take; return DIP_OK; }
    }
    uint32_t plen = dip_get_u32(b->data);
    if (plen > r->max_payload) return too_long(r, plen, eb);
    size_t whole = DIP_NET_FRAME_HEADER + (size_t)plen;
    int rc = dip_dynbuf_reserve(b, whole - b->len); /* one allocation for the whole frame */
    if (rc) return rc == DIP_ERANGE ? DIP_EPROTO : rc;
    size_t more = whole - b->len;
    if (more > len - take) more = len - take;
    dip_dynbuf_add(b, data + take, more); /* room reserved above */
    *used = take + more;
    return dip_net_frame_reader_filled(r, 0, on_frame, ctx);
}

uint8_t *dip_net_frame_reader_space(struct dip_net_frame_reader *r, size_t *n)
{
    struct dip_dynbuf *b = &r->buf;
    if (b->len < DIP_NET_FRAME_HEADER) return NULL; /* nothing pending, or no length or header yet */
    size_t whole = DIP_NET_FRAME_HEADER + (size_t)dip_get_u32(b->data);
    if (b->cap < whole || b->len >= whole) return NULL;
    *n = whole - b->len;
    return b->data + b->len;
}

int dip_net_frame_reader_filled(struct dip_net_frame_reader *r, size_t k,
                                int (*on_frame)(void *ctx, const struct dip_net_frame *f), void *ctx)
{
    struct dip_dynbuf *b = &r->buf;
    b->len += k;
    if (!on_frame || b->len < DIP_NET_FRAME_HEADER) return DIP_OK;
    uint32_t plen = dip_get_u32(b->data);
    size_t whole = DIP_NET_FRAME_HEADER + (size_t)plen;
    if (b->len < whole) return DIP_OK;
    struct dip_net_frame f = frame_at(b->data, plen);
    int rc = on_frame(ctx, &f);
    r->offset += whole;
    if (b->cap > KEEP_CAP) dip_dynbuf_free(b);
    else dip_dynbuf_reset(b);
    return rc;
}

int dip_net_frame_reader_feed(struct dip_net_frame_reader *r, const uint8_t *data, size_t len,
                              int (*on_frame)(void *ctx, const struct dip_net_frame *f), void *ctx,
                              struct dip_errbuf *eb)
{
    while (len > 0) {
        if (r->buf.len > 0) {
            size_t used = 0;
            int rc = feed_buffered(r, data, len, &used, on_frame, ctx, eb);
            data += used;
            len -= used;
            if (rc) return rc;
            continue;
        }
        /* Nothing buffered: frames wholly inside data go out without a copy. */
        if (len >= 4) {
            uint32_t plen = dip_get_u32(data);
            if (plen > r->max_payload) return too_long(r, plen, eb);
            size_t whole = DIP_NET_FRAME_HEADER + (size_t)plen;
            if (len >= whole) {
                struct dip_net_frame f = frame_at(data, plen);
                int rc = on_frame(ctx, &f);
                r->offset += whole;
                data += whole;
                len -= whole;
                if (rc) return rc;
                continue;
            }
        }
        size_t used = 0;
        int rc = feed_buffered(r, data, len, &used, on_frame, ctx, eb);
        data += used;
        len -= used;
        if (rc) return rc;
    }
    return DIP_OK;
}
