/* fuzz_chunk.c - libFuzzer target for the chunk text decoder of the leaf
 * store (src/store/chunkdec.c): any bytes as a segment chunk's inflated text
 * (damaged files reach it), for each tank key, whole and through a key
 * filter. The first byte picks the key and the filter's range. Whatever
 * the decoder accepts must be records whose element text, where it gave a
 * span, is exactly what the writer writes for them. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/fast.h"

static bool keep_half(void *ctx, struct dip_u128 lo, struct dip_u128 hi)
{
    const uint8_t *pick = ctx;
    return (hi.lo & 0xff) >= *pick || (lo.lo & 0xff) <= *pick; /* drops some subtrees, keeps others */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    uint8_t pick = data[0];
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    enum dip_tank_key key = (enum dip_tank_key)(pick % 4);
    struct dip_chunk_filter flt = { keep_half, &pick, (pick & 8) != 0 };
    struct dip_flow *flows = NULL;
    size_t n = 0, cap = 0;
    struct dip_span_vec spans = { NULL, 0 };
    int rc = dip_chunk_decode_spans(key, text, len, (pick & 4) ? &flt : NULL, &flows, &n, &cap, &spans);
    if (rc != DIP_OK && rc != DIP_EAGAIN && rc != DIP_ENOMEM) abort();
    if (rc != DIP_OK && n != 0) abort(); /* a refusal appends nothing */
    struct dip_dynbuf b;
    dip_dynbuf_init(&b, 1 << 20);
    for (size_t i = 0; rc == DIP_OK && i < n; i++) {
        if (!spans.v[i].len) continue;
        if ((size_t)spans.v[i].off + spans.v[i].len > len) abort();
        dip_dynbuf_reset(&b);
        if (dip_flow_xml_append_stored(&flows[i], &b) != DIP_OK) abort();
        if (b.len != spans.v[i].len || memcmp(b.data, text + spans.v[i].off, b.len) != 0) abort();
    }
    dip_dynbuf_free(&b);
    free(flows);
    free(spans.v);
    return 0;
}
