/* fuzz_net_frame.c - libFuzzer target for the node-link frame reader
 * (src/net/net_frame.c). The first byte picks the limit and a split step;
 * the rest is the stream, fed once whole and once in pieces: both runs must
 * see the same frames and end with the same status, and every frame must
 * respect the limit. */
#include <stdlib.h>
#include <string.h>

#include "net/net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct digest {
    uint64_t h;
    size_t frames;
    size_t max;
};

static int on_frame(void *ctx, const struct dip_net_frame *f)
{
    struct digest *d = ctx;
    if (f->len > d->max) abort();
    uint64_t h = d->h ^ ((uint64_t)f->type << 56) ^ f->id ^ f->len;
    for (size_t i = 0; i < f->len; i++) h = (h ^ f->payload[i]) * 1099511628211ull; /* FNV-1a over the payload */
    d->h = h;
    d->frames++;
    return d->frames >= 1000 ? 9 : 0; /* a callback stop must be honoured too */
}

static int run(const uint8_t *s, size_t n, size_t max, size_t step, struct digest *d, struct dip_errbuf *eb)
{
    struct dip_net_frame_reader r;
    dip_net_frame_reader_init(&r, max);
    memset(d, 0, sizeof *d);
    d->max = max;
    int rc = DIP_OK;
    for (size_t i = 0; i < n && rc == DIP_OK; i += step)
        rc = dip_net_frame_reader_feed(&r, s + i, step < n - i ? step : n - i, on_frame, d, eb);
    if (rc == DIP_OK && r.offset + r.buf.len != n) abort(); /* every byte consumed or buffered */
    dip_net_frame_reader_free(&r);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t max = (size_t)(data[0] & 0x0f) * 97; /* 0..1455: small, so oversize lengths are common */
    size_t step = (size_t)(data[0] >> 4) + 1;
    struct digest whole, split;
    struct dip_errbuf e1, e2;
    int a = run(data + 1, size - 1, max, size, &whole, &e1);
    int b = run(data + 1, size - 1, max, step, &split, &e2);
    if (a != b || whole.frames != split.frames || whole.h != split.h) abort();
    if (a == DIP_EPROTO && strcmp(e1.msg, e2.msg) != 0) abort(); /* same offset named */
    return 0;
}
