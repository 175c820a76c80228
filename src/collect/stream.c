/* stream.c - IPFIX message streams: splitting a TCP byte stream (RFC 7011
 * 10.4) or a file (RFC 5655) into messages by their length field, fed in any
 * split; and reading an IPFIX file through the decoder. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "collect_int.h"

#define IPFIX_HEADER 16

/* Checks a message header's version and length. Returns the length, or 0 on garbage. */
static size_t header_length(const uint8_t *p)
{
    uint16_t version = dip_get_u16(p), length = dip_get_u16(p + 2);
    return version == 10 && length >= IPFIX_HEADER ? length : 0;
}

int dip_collect_stream_feed(struct dip_collect_stream *s, const uint8_t *data, size_t len,
                            int (*on_message)(void *ctx, const uint8_t *msg, size_t msg_len), void *ctx,
                            struct dip_errbuf *eb)
{
    while (len > 0) {
        /* Fast path: whole messages straight from the caller's bytes. */
        if (s->have == 0 && len >= 4) {
            size_t mlen = header_length(data);
            if (!mlen) return dip_err_set(eb, DIP_EPROTO, "not an IPFIX message header after %" PRIu64 " messages",
                                          s->messages);
            if (len >= mlen) {
                s->messages++;
                int rc = on_message(ctx, data, mlen);
                if (rc) return rc;
                data += mlen;
                len -= mlen;
                continue;
            }
        }
        size_t want = 4;
        if (s->have >= 4) {
            want = header_length(s->buf);
            if (!want) return dip_err_set(eb, DIP_EPROTO, "not an IPFIX message header after %" PRIu64 " messages",
                                          s->messages);
        }
        size_t take = want - s->have < len ? want - s->have : len;
        memcpy(s->buf + s->have, data, take);
        s->have += take;
        data += take;
        len -= take;
        if (s->have < 4) continue;
        size_t mlen = header_length(s->buf);
        if (!mlen) return dip_err_set(eb, DIP_EPROTO, "not an IPFIX message header after %" PRIu64 " messages",
                                      s->messages);
        if (s->have == mlen) {
            s->have = 0;
            s->messages++;
            int rc = on_message(ctx, s->buf, mlen);
            if (rc) return rc;
        }
    }
    return DIP_OK;
}

struct file_ctx {
    struct dip_collect *c;
    const struct dip_addr *exporter;
    const struct dip_collect_sink *sink;
};

static int file_message(void *ctx, const uint8_t *msg, size_t len)
{
    struct file_ctx *fc = ctx;
    /* Record times come from the messages; their export time stands for "now". */
    uint64_t now_ms = (uint64_t)dip_get_u32(msg + 4) * 1000;
    int rc = dip_collect_ipfix_stream(fc->c, msg, len, fc->exporter, now_ms, fc->sink, NULL);
    return rc == DIP_EINVAL ? DIP_OK : rc; /* malformed: counted, go on */
}

int dip_collect_read_ipfix_file(struct dip_collect *c, const char *path, const struct dip_addr *exporter,
                                const struct dip_collect_sink *sink, uint64_t *messages, struct dip_errbuf *eb)
{
    struct dip_addr none;
    if (!exporter) {
        dip_addr_from_v4(&none, 0);
        exporter = &none;
    }
    FILE *f = fopen(path, "rb");
    if (!f) return dip_err_sys(eb, errno, "%s", path);
    struct dip_collect_stream *s = malloc(sizeof *s);
    if (!s) {
        fclose(f);
        return DIP_ENOMEM;
    }
    dip_collect_stream_init(s);
    struct file_ctx fc = { c, exporter, sink };
    uint8_t buf[65536];
    size_t n, offset = 0;
    int rc = DIP_OK;
    while (rc == DIP_OK && (n = fread(buf, 1, sizeof buf, f)) > 0) {
        rc = dip_collect_stream_feed(s, buf, n, file_message, &fc, eb);
        if (rc == DIP_EPROTO) {
            dip_err_set(eb, DIP_EPROTO, "%s: framing lost in the block at byte %zu after %" PRIu64 " messages",
                        path, offset, s->messages);
        }
        offset += n;
    }
    if (rc == DIP_OK && ferror(f)) rc = dip_err_sys(eb, errno, "%s", path);
    if (rc == DIP_OK && s->have)
        rc = dip_err_set(eb, DIP_EPROTO, "%s: ends inside a message (%zu bytes)", path, s->have);
    fclose(f);
    if (messages) *messages = s->messages;
    free(s);
    return rc;
}
