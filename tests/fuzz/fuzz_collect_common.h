/* fuzz_collect_common.h - shared driver of the collector's fuzz targets: an
 * input is a sequence of messages, each prefixed by a 2-byte big-endian
 * length (the last one takes what is left), all fed to one collector so
 * templates, buffered sets and sequence state carry across messages. */
#ifndef DIP_FUZZ_COLLECT_COMMON_H
#define DIP_FUZZ_COLLECT_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "collect/collect.h"

static inline int fuzz_sink(void *ctx, const struct dip_flow *f, size_t n)
{
    size_t *count = ctx;
    for (size_t i = 0; i < n; i++) *count += f[i].packets & 1; /* touch every record */
    return 0;
}

typedef int (*fuzz_decoder)(struct dip_collect *, const uint8_t *, size_t, const struct dip_addr *, uint64_t,
                            const struct dip_collect_sink *, struct dip_errbuf *);

static inline void fuzz_messages(fuzz_decoder decode, const uint8_t *data, size_t size)
{
    struct dip_collect_limits lim;
    dip_collect_limits_default(&lim);
    lim.pending_max_sets = 8;
    lim.pending_max_bytes = 4096;
    lim.max_templates = 64;
    lim.max_domains = 16;
    lim.template_timeout_ms = 10000;
    struct dip_collect *c;
    if (dip_collect_new(&lim, &c)) return;
    struct dip_addr exporter;
    dip_addr_from_v4(&exporter, 0xc0000201);
    size_t count = 0;
    struct dip_collect_sink sink = { fuzz_sink, &count };
    uint64_t now = 1700000000000ull;
    while (size > 0) {
        size_t len = size;
        if (size >= 2) {
            size_t want = ((size_t)data[0] << 8) | data[1];
            data += 2;
            size -= 2;
            len = want < size ? want : size;
        }
        /* each message in its own allocation so ASan sees reads past it */
        uint8_t *msg = malloc(len ? len : 1);
        if (!msg) break;
        for (size_t i = 0; i < len; i++) msg[i] = data[i];
        struct dip_errbuf eb;
        decode(c, msg, len, &exporter, now, &sink, &eb);
        free(msg);
        data += len;
        size -= len;
        now += 3000;
        if (len & 1) exporter.b[15] ^= 1; /* a second exporter now and then */
    }
    dip_collect_expire(c, now + 100000);
    struct dip_dynbuf b;
    dip_dynbuf_init(&b, 1 << 20);
    dip_collect_stats_text(c, &b);
    dip_collect_stats_xml(c, &b);
    dip_dynbuf_free(&b);
    dip_collect_free(c);
}

#endif
