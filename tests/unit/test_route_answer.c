/* test_route_answer.c - merging answers on the way up a tank (answer.c):
 * structured parts pass through an indexer as the batches they came as and
 * come out in child order (read in place at the access point), random parts merge in document order, a damaged batch is
 * reported where it is decoded, and a stream of batches decodes whole. */
#include <CUnit/CUnit.h>
#include <stdlib.h>
#include <string.h>

#include "common/dynbuf.h"
#include "route/node.h"
#include "route/proto.h"
#include "store/store.h"

static void make(struct dip_flow *f, size_t n, uint32_t first_src, uint64_t bytes0)
{
    for (size_t i = 0; i < n; i++) {
        memset(&f[i], 0, sizeof f[i]);
        dip_addr_from_v4(&f[i].src, first_src + (uint32_t)(i / 2)); /* pairs of equal keys */
        dip_addr_from_v4(&f[i].dst, 0xc0a80001u);
        f[i].dport = 80;
        f[i].proto = 6;
        f[i].packets = 1;
        f[i].bytes = bytes0 + i;
        f[i].first = 1700000000000ull + i;
        f[i].last = f[i].first + 1;
        f[i].id = dip_flow_id_random(&f[i], dip_flow_id_default_key);
    }
}

/* An ANSWER payload of kind nodes holding flows as one batch, or as two
 * batches one after the other when split. */
static void answer_payload(struct dip_dynbuf *out, const struct dip_flow *f, size_t n, bool split)
{
    struct dip_msg_answer a = { .kind = DIP_RESULT_NODES, .complete = true, .count = n };
    dip_dynbuf_init(out, 1u << 26);
    CU_ASSERT_EQUAL_FATAL(dip_msg_answer_encode_head(out, &a), DIP_OK);
    if (split) {
        CU_ASSERT_EQUAL(dip_batch_encode(f, n / 2, out), DIP_OK);
        CU_ASSERT_EQUAL(dip_batch_encode(f + n / 2, n - n / 2, out), DIP_OK);
    } else {
        CU_ASSERT_EQUAL(dip_batch_encode(f, n, out), DIP_OK);
    }
}

struct seen {
    uint64_t bytes[64];
    size_t n;
};
static int note(void *ctx, const struct dip_flow *f)
{
    struct seen *s = ctx;
    if (s->n < 64) s->bytes[s->n] = f->bytes;
    s->n++;
    return DIP_OK;
}

static void test_structured_parts_pass_through_in_child_order(void)
{
    struct dip_flow a[6], b[4];
    make(a, 6, 0x0a000001u, 100); /* child 0: the lower keys */
    make(b, 4, 0x0b000001u, 200);
    struct dip_dynbuf pa, pb;
    answer_payload(&pa, a, 6, true);
    answer_payload(&pb, b, 4, false);
    /* an indexer over two leaves: answers arrive in any order */
    struct dip_answer_merge m;
    struct dip_errbuf eb;
    dip_answer_merge_init(&m, DIP_KEY_SRC, DIP_MAP_STRUCTURED, 2, 1000);
    CU_ASSERT_EQUAL(dip_answer_merge_add(&m, 1, pb.data, pb.len, &eb), DIP_OK);
    CU_ASSERT_EQUAL(dip_answer_merge_add(&m, 0, pa.data, pa.len, &eb), DIP_OK);
    CU_ASSERT_EQUAL(m.count, 10);
    struct dip_dynbuf up;
    dip_dynbuf_init(&up, 1u << 26);
    CU_ASSERT_EQUAL_FATAL(dip_answer_merge_encode(&m, &up), DIP_OK);
    dip_answer_merge_free(&m);
    /* the parent (an access point) reads the passed-on stream of batches
     * where they came (borrowed: the merge neither copies nor frees them) */
    dip_answer_merge_init(&m, DIP_KEY_SRC, DIP_MAP_STRUCTURED, 1, 1000);
    m.borrow = true;
    CU_ASSERT_EQUAL_FATAL(dip_answer_merge_add(&m, 0, up.data, up.len, &eb), DIP_OK);
    CU_ASSERT(m.raw[0] > up.data && m.raw[0] < up.data + up.len);
    CU_ASSERT_EQUAL(dip_answer_merge_add(&m, 0, up.data, up.len, &eb), DIP_EPROTO); /* one answer a part */
    struct seen s = { { 0 }, 0 };
    CU_ASSERT_EQUAL(dip_answer_merge_each(&m, note, &s, &eb), DIP_OK);
    CU_ASSERT_EQUAL_FATAL(s.n, 10);
    for (size_t i = 0; i < 6; i++) CU_ASSERT_EQUAL(s.bytes[i], 100 + i);
    for (size_t i = 0; i < 4; i++) CU_ASSERT_EQUAL(s.bytes[6 + i], 200 + i);
    dip_answer_merge_free(&m);
    /* the record limit holds without decoding */
    dip_answer_merge_init(&m, DIP_KEY_SRC, DIP_MAP_STRUCTURED, 1, 9);
    CU_ASSERT_EQUAL(dip_answer_merge_add(&m, 0, up.data, up.len, &eb), DIP_ERANGE);
    dip_answer_merge_free(&m);
    dip_dynbuf_free(&pa);
    dip_dynbuf_free(&pb);
    dip_dynbuf_free(&up);
}

static void test_damaged_batch_is_reported_where_decoded(void)
{
    struct dip_flow a[6];
    make(a, 6, 0x0a000001u, 100);
    struct dip_dynbuf pa;
    answer_payload(&pa, a, 6, true);
    pa.data[pa.len - 9] ^= 0x40; /* inside the second batch's last record */
    struct dip_answer_merge m;
    struct dip_errbuf eb = { { 0 } };
    dip_answer_merge_init(&m, DIP_KEY_SRC, DIP_MAP_STRUCTURED, 1, 1000);
    CU_ASSERT_EQUAL_FATAL(dip_answer_merge_add(&m, 0, pa.data, pa.len, &eb), DIP_OK); /* passed on as it is */
    struct seen s = { { 0 }, 0 };
    CU_ASSERT_EQUAL(dip_answer_merge_each(&m, note, &s, &eb), DIP_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "batch at byte"));
    dip_answer_merge_free(&m);
    /* the random strategy decodes at once and refuses it there */
    dip_answer_merge_init(&m, DIP_KEY_SRC, DIP_MAP_RANDOM, 1, 1000);
    CU_ASSERT_EQUAL(dip_answer_merge_add(&m, 0, pa.data, pa.len, &eb), DIP_ECORRUPT);
    dip_answer_merge_free(&m);
    dip_dynbuf_free(&pa);
}

static void test_random_parts_merge_in_document_order(void)
{
    struct dip_flow a[4], b[4];
    make(a, 4, 0x0a000001u, 100); /* keys 10.0.0.1 10.0.0.1 10.0.0.2 10.0.0.2 */
    make(b, 4, 0x0a000001u, 200); /* the same keys from another leaf */
    struct dip_dynbuf pa, pb;
    answer_payload(&pa, a, 4, true);
    answer_payload(&pb, b, 4, false);
    struct dip_answer_merge m;
    struct dip_errbuf eb;
    dip_answer_merge_init(&m, DIP_KEY_SRC, DIP_MAP_RANDOM, 2, 1000);
    CU_ASSERT_EQUAL(dip_answer_merge_add(&m, 1, pb.data, pb.len, &eb), DIP_OK);
    CU_ASSERT_EQUAL(dip_answer_merge_add(&m, 0, pa.data, pa.len, &eb), DIP_OK);
    struct seen s = { { 0 }, 0 };
    CU_ASSERT_EQUAL(dip_answer_merge_each(&m, note, &s, &eb), DIP_OK);
    /* by key, then (dst, ports and proto being equal) by first, then bytes */
    static const uint64_t want[8] = { 100, 200, 101, 201, 102, 202, 103, 203 };
    CU_ASSERT_EQUAL_FATAL(s.n, 8);
    for (size_t i = 0; i < 8; i++) CU_ASSERT_EQUAL(s.bytes[i], want[i]);
    dip_answer_merge_free(&m);
    dip_dynbuf_free(&pa);
    dip_dynbuf_free(&pb);
}

static int count_batch(void *ctx, const struct dip_flow *f, size_t n)
{
    (void)f;
    *(size_t *)ctx += n;
    return DIP_OK;
}

static void test_batch_stream_decodes_whole_batches_only(void)
{
    struct dip_flow a[5];
    make(a, 5, 0x0a000001u, 1);
    struct dip_dynbuf b;
    dip_dynbuf_init(&b, 1u << 20);
    dip_batch_encode(a, 2, &b);
    dip_batch_encode(a + 2, 3, &b);
    size_t n = 0;
    struct dip_errbuf eb;
    CU_ASSERT_EQUAL(dip_batch_decode_stream(b.data, b.len, 100, count_batch, &n, &eb), DIP_OK);
    CU_ASSERT_EQUAL(n, 5);
    n = 0;
    CU_ASSERT_EQUAL(dip_batch_decode_stream(b.data, b.len - 3, 100, count_batch, &n, &eb), DIP_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "truncated"));
    CU_ASSERT_EQUAL(dip_batch_decode_stream(b.data, b.len, 4, count_batch, &n, &eb), DIP_ECORRUPT); /* limit */
    n = 0;
    CU_ASSERT_EQUAL(dip_batch_decode_stream(b.data, 0, 100, count_batch, &n, &eb), DIP_OK);
    CU_ASSERT_EQUAL(n, 0);
    dip_dynbuf_free(&b);
}

int dip_suite_route_answer(void)
{
    CU_pSuite s = CU_add_suite("route_answer", NULL, NULL);
    if (!s) return -1;
    CU_add_test(s, "structured_parts_pass_through_in_child_order", test_structured_parts_pass_through_in_child_order);
    CU_add_test(s, "damaged_batch_is_reported_where_decoded", test_damaged_batch_is_reported_where_decoded);
    CU_add_test(s, "random_parts_merge_in_document_order", test_random_parts_merge_in_document_order);
    CU_add_test(s, "batch_stream_decodes_whole_batches_only", test_batch_stream_decodes_whole_batches_only);
    return 0;
}
