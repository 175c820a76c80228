/* proto.c - encoding and decoding the payloads of node-link messages
 * (proto.h). Decoders treat every byte as untrusted. */
#include "proto.h"

#include <string.h>

#include "common/cursor.h"

static int put_u8(struct dip_dynbuf *b, uint8_t v) { return dip_dynbuf_add(b, &v, 1); }
static int put_u32(struct dip_dynbuf *b, uint32_t v)
{
    uint8_t p[4];
    dip_put_u32(p, v);
    return dip_dynbuf_add(b, p, 4);
}
static int put_u64(struct dip_dynbuf *b, uint64_t v)
{
    uint8_t p[8];
    dip_put_u64(p, v);
    return dip_dynbuf_add(b, p, 8);
}

static bool origin_ok(const char *s, size_t n)
{
    if (n == 0 || n > DIP_MSG_ORIGIN_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

int dip_msg_ingest_encode(struct dip_dynbuf *out, const char *origin, uint64_t seq, const void *batch, size_t len)
{
    size_t n = strlen(origin);
    if (!origin_ok(origin, n)) return DIP_EINVAL;
    int rc = put_u8(out, (uint8_t)n);
    if (!rc) rc = dip_dynbuf_add(out, origin, n);
    if (!rc) rc = put_u64(out, seq);
    if (!rc && len) rc = dip_dynbuf_add(out, batch, len);
    return rc;
}

int dip_msg_ingest_decode(const uint8_t *p, size_t len, struct dip_msg_ingest *m, struct dip_errbuf *eb)
{
    struct dip_cursor c = dip_cursor_make(p, len);
    uint8_t n;
    if (!dip_cursor_u8(&c, &n) || !dip_cursor_bytes(&c, m->origin, n) || !dip_cursor_u64(&c, &m->seq))
        return dip_err_set(eb, DIP_EPROTO, "ingest message truncated at byte %zu", dip_cursor_offset(&c));
    m->origin[n] = 0;
    if (!origin_ok(m->origin, n)) return dip_err_set(eb, DIP_EPROTO, "ingest message: bad origin name");
    m->batch = c.p;
    m->batch_len = c.left;
    return DIP_OK;
}

int dip_msg_status_encode(struct dip_dynbuf *out, int code, uint32_t column, const char *message)
{
    int rc = put_u32(out, (uint32_t)code);
    if (!rc) rc = put_u32(out, column);
    if (!rc && message) rc = dip_dynbuf_add(out, message, strlen(message));
    return rc;
}

int dip_msg_status_decode(const uint8_t *p, size_t len, int *code, uint32_t *column, char *message, size_t cap)
{
    struct dip_cursor c = dip_cursor_make(p, len);
    uint32_t v;
    if (!dip_cursor_u32(&c, &v) || !dip_cursor_u32(&c, column)) return DIP_EPROTO;
    *code = (int32_t)v;
    size_t n = c.left;
    if (cap) {
        if (n >= cap) n = cap - 1;
        memcpy(message, c.p, n);
        message[n] = 0;
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)message[i] < 0x20 && message[i] != '\n' && message[i] != '\t') message[i] = '?';
    }
    return DIP_OK;
}

int dip_msg_query_encode(struct dip_dynbuf *out, uint32_t deadline_ms, uint8_t mode, const char *xpath, size_t len)
{
    int rc = put_u32(out, deadline_ms);
    if (!rc) rc = put_u8(out, mode);
    if (!rc) rc = dip_dynbuf_add(out, xpath, len);
    return rc;
}

int dip_msg_query_decode(const uint8_t *p, size_t len, struct dip_msg_query *m, char *buf, size_t cap,
                         struct dip_errbuf *eb)
{
    struct dip_cursor c = dip_cursor_make(p, len);
    if (!dip_cursor_u32(&c, &m->deadline_ms) || !dip_cursor_u8(&c, &m->mode))
        return dip_err_set(eb, DIP_EPROTO, "query message truncated");
    if (m->mode > DIP_QUERY_GATHER) return dip_err_set(eb, DIP_EPROTO, "query message: unknown mode %u", m->mode);
    size_t n = c.left;
    if (n >= cap) return dip_err_set(eb, DIP_ERANGE, "query of %zu bytes is too long", n);
    if (memchr(c.p, 0, n)) return dip_err_set(eb, DIP_EPROTO, "query message: NUL byte in the expression");
    memcpy(buf, c.p, n);
    buf[n] = 0;
    m->xpath = buf;
    m->xpath_len = n;
    return DIP_OK;
}

/* Answer head: u8 kind, u8 flags (1 complete, 2 boolean), u64 count, u64
 * number bits, u64 chunks read, u64 chunks skipped, u32 missing length,
 * missing text; the batch follows to the end. */
int dip_msg_answer_encode_head(struct dip_dynbuf *out, const struct dip_msg_answer *a)
{
    uint64_t bits;
    memcpy(&bits, &a->number, 8);
    int rc = put_u8(out, a->kind);
    if (!rc) rc = put_u8(out, (uint8_t)((a->complete ? 1 : 0) | (a->boolean ? 2 : 0)));
    if (!rc) rc = put_u64(out, a->count);
    if (!rc) rc = put_u64(out, bits);
    if (!rc) rc = put_u64(out, a->chunks_read);
    if (!rc) rc = put_u64(out, a->chunks_skipped);
    if (!rc) rc = put_u32(out, (uint32_t)a->missing_len);
    if (!rc && a->missing_len) rc = dip_dynbuf_add(out, a->missing, a->missing_len);
    return rc;
}

int dip_msg_answer_decode(const uint8_t *p, size_t len, struct dip_msg_answer *a, struct dip_errbuf *eb)
{
    struct dip_cursor c = dip_cursor_make(p, len);
    uint8_t flags;
    uint64_t bits;
    uint32_t mlen;
    memset(a, 0, sizeof *a);
    if (!dip_cursor_u8(&c, &a->kind) || !dip_cursor_u8(&c, &flags) || !dip_cursor_u64(&c, &a->count) ||
        !dip_cursor_u64(&c, &bits) || !dip_cursor_u64(&c, &a->chunks_read) ||
        !dip_cursor_u64(&c, &a->chunks_skipped) || !dip_cursor_u32(&c, &mlen) || c.left < mlen)
        return dip_err_set(eb, DIP_EPROTO, "answer message truncated at byte %zu", dip_cursor_offset(&c));
    if (a->kind > 3) return dip_err_set(eb, DIP_EPROTO, "answer message: unknown kind %u", a->kind);
    memcpy(&a->number, &bits, 8);
    a->complete = flags & 1;
    a->boolean = (flags & 2) != 0;
    a->missing = (const char *)c.p;
    a->missing_len = mlen;
    dip_cursor_skip(&c, mlen);
    a->batch = c.p;
    a->batch_len = c.left;
    return DIP_OK;
}
