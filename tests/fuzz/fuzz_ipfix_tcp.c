/* fuzz_ipfix_tcp.c - libFuzzer target for IPFIX over a byte stream (TCP,
 * files): the input is the stream; its first byte picks the chunk size the
 * framer is fed in, each framed message goes to the decoder. */
#include "fuzz_collect_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct tcp_ctx {
    struct dip_collect *c;
    struct dip_addr exporter;
    size_t count;
};

static int on_message(void *ctx, const uint8_t *msg, size_t len)
{
    struct tcp_ctx *t = ctx;
    struct dip_collect_sink sink = { fuzz_sink, &t->count };
    int rc = dip_collect_ipfix_stream(t->c, msg, len, &t->exporter, 1700000000000ull, &sink, NULL);
    return rc == DIP_EINVAL ? 0 : rc; /* a malformed message is counted; the stream goes on */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t chunk = (size_t)data[0] * 7 + 1;
    data++;
    size--;
    struct tcp_ctx t = { NULL, { { 0 } }, 0 };
    struct dip_collect_limits lim;
    dip_collect_limits_default(&lim);
    lim.template_timeout_ms = 1000;
    lim.max_templates = 64;
    if (dip_collect_new(&lim, &t.c)) return 0;
    dip_addr_from_v4(&t.exporter, 0x7f000001);
    struct dip_collect_stream *s = malloc(sizeof *s);
    if (!s) {
        dip_collect_free(t.c);
        return 0;
    }
    dip_collect_stream_init(s);
    while (size > 0) {
        size_t n = chunk < size ? chunk : size;
        uint8_t *piece = malloc(n);
        if (!piece) break;
        for (size_t i = 0; i < n; i++) piece[i] = data[i];
        int rc = dip_collect_stream_feed(s, piece, n, on_message, &t, NULL);
        free(piece);
        if (rc) break;
        data += n;
        size -= n;
    }
    dip_collect_forget_exporter(t.c, &t.exporter);
    free(s);
    dip_collect_free(t.c);
    return 0;
}
