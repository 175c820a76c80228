/* test_store_fast.c - the leaf store's fast query paths (src/store/fast.h):
 * chunk text decodes to exactly the records written, non-canonical text is
 * refused (left to libxml2), and the exact evaluator agrees with libxml2 on
 * a tree of the same records for every form it accepts. */
#include <CUnit/CUnit.h>
#include <libxml/xpath.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmlsafe.h"
#include "store/fast.h"
#include "store/store_internal.h"

#define N 600

static uint32_t rng = 12345;
static uint32_t next_rand(void)
{
    rng = rng * 1103515245u + 12345u;
    return rng >> 8;
}

/* Random records: IPv4 keys in a small space (many equal keys), optional
 * fields present or not, a few huge counters. */
static void make_flows(struct dip_flow *f, size_t n, bool v6)
{
    for (size_t i = 0; i < n; i++) {
        memset(&f[i], 0, sizeof f[i]);
        if (v6) {
            f[i].src.b[0] = 0x20;
            f[i].src.b[1] = 0x01;
            f[i].src.b[15] = (uint8_t)(next_rand() % 7);
            f[i].src.b[7] = (uint8_t)(next_rand() % 2);
        } else {
            dip_addr_from_v4(&f[i].src, 0x0a000000u | (next_rand() % 40));
        }
        dip_addr_from_v4(&f[i].dst, 0xc0a80000u | (next_rand() % 300));
        f[i].sport = (uint16_t)(next_rand() % 4 ? 443 + next_rand() % 3 : next_rand() % 65536);
        f[i].dport = (uint16_t)(next_rand() % 65536);
        f[i].proto = (uint8_t)(next_rand() % 2 ? 6 : 17);
        f[i].packets = next_rand() % 100;
        f[i].bytes = next_rand() % 5 ? next_rand() % 100000 : ((uint64_t)1 << 60) + next_rand();
        f[i].first = 1700000000000ull + next_rand() % 100000;
        f[i].last = f[i].first + next_rand() % 1000;
        f[i].id = ((uint64_t)next_rand() << 40) ^ next_rand();
        if (next_rand() % 2) {
            f[i].present |= DIP_F_FLAGS;
            f[i].flags = (uint8_t)(next_rand() % 64);
        }
        if (next_rand() % 3 == 0) {
            f[i].present |= DIP_F_SRCAS;
            f[i].srcas = next_rand() % 10;
        }
        if (next_rand() % 10 == 0) { /* the ends of every value range, IPv6 exporters */
            f[i].bytes = next_rand() % 2 ? UINT64_MAX : 10000000000000000000ull;
            f[i].packets = 0;
            f[i].dport = 65535;
            f[i].proto = 255;
            f[i].present |= DIP_F_DSTAS | DIP_F_EXPORTER | DIP_F_TOS;
            f[i].dstas = UINT32_MAX;
            dip_addr_parse("2001:db8::1", 11, &f[i].exporter);
            f[i].exporter.b[14] = (uint8_t)(next_rand() % 2);
        }
        /* most records carry their random flow ID, which segments leave out */
        if (next_rand() % 4) f[i].id = dip_flow_id_random(&f[i], dip_flow_id_default_key);
    }
}

static void text_of(const struct dip_flow *f, size_t n, struct dip_dynbuf *out)
{
    for (size_t i = 0; i < n; i++) {
        dip_flow_xml_append(&f[i], out);
        dip_dynbuf_add(out, "\n", 1);
    }
}

static void check_roundtrip(enum dip_tank_key key, bool v6)
{
    struct dip_flow *f = calloc(N, sizeof *f), *got = NULL;
    make_flows(f, N, v6);
    dip_store_sort(f, N, key);
    struct dip_dynbuf text, a, b;
    dip_dynbuf_init(&text, 1 << 26);
    dip_dynbuf_init(&a, 1 << 26);
    dip_dynbuf_init(&b, 1 << 26);
    CU_ASSERT_EQUAL_FATAL(dip_tree_write_text(key, f, N, &text), DIP_OK);
    /* only the IDs that are not the default SipHash are written */
    size_t explicit_ids = 0, written_ids = 0;
    for (size_t i = 0; i < N; i++) explicit_ids += f[i].id != dip_flow_id_random(&f[i], dip_flow_id_default_key);
    for (const char *p = (const char *)text.data; (p = strstr(p, " id=\"")); p++) written_ids++;
    CU_ASSERT(explicit_ids > 0 && explicit_ids < N / 2);
    CU_ASSERT_EQUAL(written_ids, explicit_ids);
    size_t n = 0, cap = 0;
    struct dip_span_vec spans = { NULL, 0 };
    CU_ASSERT_EQUAL(dip_chunk_decode_spans(key, (const char *)text.data, text.len, NULL, &got, &n, &cap, &spans),
                    DIP_OK);
    CU_ASSERT_EQUAL_FATAL(n, N);
    text_of(f, N, &a);
    text_of(got, n, &b);
    CU_ASSERT(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
    /* each record's span is its element, as the store writes it */
    for (size_t i = 0; i < n; i++) {
        dip_dynbuf_reset(&b);
        dip_flow_xml_append_stored(&got[i], &b);
        CU_ASSERT_EQUAL(spans.v[i].len, b.len);
        CU_ASSERT(spans.v[i].len == b.len && memcmp(text.data + spans.v[i].off, b.data, b.len) == 0);
    }
    free(spans.v);
    dip_dynbuf_reset(&b);
    /* libxml2's reading restores the same IDs */
    xmlDocPtr doc = NULL;
    struct dip_errbuf eb;
    n = 0;
    CU_ASSERT_EQUAL_FATAL(dip_tree_parse_chunk(key, (const char *)text.data, text.len, "t", &doc, &eb), DIP_OK);
    CU_ASSERT_EQUAL(dip_tree_collect(doc, &got, &n, &cap, &eb), DIP_OK);
    xmlFreeDoc(doc);
    CU_ASSERT_EQUAL_FATAL(n, N);
    dip_dynbuf_reset(&b);
    text_of(got, n, &b);
    CU_ASSERT(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
    free(got);
    free(f);
    dip_dynbuf_free(&text);
    dip_dynbuf_free(&a);
    dip_dynbuf_free(&b);
}

static void test_chunk_text_decodes_to_the_records_written(void)
{
    check_roundtrip(DIP_KEY_SRC, false);
    check_roundtrip(DIP_KEY_SRC, true);
    check_roundtrip(DIP_KEY_DST, false);
    check_roundtrip(DIP_KEY_SPORT, false);
    check_roundtrip(DIP_KEY_DPORT, true);
}

/* A filter keeping the subtrees that may hold a key in [lo, hi]; counts calls. */
struct keep_range {
    struct dip_u128 lo, hi;
    size_t calls;
};
static int u128_cmp(struct dip_u128 a, struct dip_u128 b)
{
    return a.hi != b.hi ? (a.hi < b.hi ? -1 : 1) : a.lo != b.lo ? (a.lo < b.lo ? -1 : 1) : 0;
}
static bool keep_range(void *ctx, struct dip_u128 lo, struct dip_u128 hi)
{
    struct keep_range *k = ctx;
    k->calls++;
    CU_ASSERT(u128_cmp(lo, hi) <= 0);
    return u128_cmp(hi, k->lo) >= 0 && u128_cmp(lo, k->hi) <= 0;
}

/* Decoding with a filter gives exactly the records whose key is in the
 * range (plus none outside the kept subtrees), for a point and for a range. */
static void check_filtered(enum dip_tank_key key, bool v6)
{
    struct dip_flow *f = calloc(N, sizeof *f), *got = NULL;
    make_flows(f, N, v6);
    dip_store_sort(f, N, key);
    struct dip_dynbuf text;
    dip_dynbuf_init(&text, 1 << 26);
    CU_ASSERT_EQUAL_FATAL(dip_tree_write_text(key, f, N, &text), DIP_OK);
    enum summary_field sf = key == DIP_KEY_SRC ? SUM_SRC : key == DIP_KEY_DST ? SUM_DST
                          : key == DIP_KEY_SPORT ? SUM_SPORT : SUM_DPORT;
    for (int trial = 0; trial < 2; trial++) {
        struct keep_range k = { dip_summary_value(&f[N / 3], sf), dip_summary_value(&f[N / 3], sf), 0 };
        if (trial) k.hi = dip_summary_value(&f[N / 2], sf); /* a range over several keys */
        size_t n = 0, cap = 0, want = 0;
        struct dip_chunk_filter flt = { keep_range, &k, false };
        CU_ASSERT_EQUAL_FATAL(dip_chunk_decode(key, (const char *)text.data, text.len, &flt, &got, &n, &cap), DIP_OK);
        CU_ASSERT(k.calls > 0);
        size_t j = 0;
        for (size_t i = 0; i < N; i++) {
            struct dip_u128 v = dip_summary_value(&f[i], sf);
            if (u128_cmp(v, k.lo) < 0 || u128_cmp(v, k.hi) > 0) continue;
            want++;
            /* the kept records come in order, each equal to the one written */
            while (j < n && u128_cmp(dip_summary_value(&got[j], sf), v) < 0) j++;
            CU_ASSERT(j < n && memcmp(&got[j], &f[i], sizeof f[i]) == 0);
            j++;
        }
        CU_ASSERT(want > 0);
        CU_ASSERT_EQUAL(n, want); /* ports and full addresses: a kept subtree is exactly the range */
    }
    free(got);
    free(f);
    dip_dynbuf_free(&text);
}

static void test_chunk_filter_decodes_only_the_kept_subtrees(void)
{
    check_filtered(DIP_KEY_SRC, false);
    check_filtered(DIP_KEY_SRC, true);
    check_filtered(DIP_KEY_DST, false);
    check_filtered(DIP_KEY_SPORT, false);
    check_filtered(DIP_KEY_DPORT, true);
}

static int decode(const char *text)
{
    struct dip_flow *f = NULL;
    size_t n = 0, cap = 0;
    int rc = dip_chunk_decode(DIP_KEY_SRC, text, strlen(text), NULL, &f, &n, &cap);
    if (rc) CU_ASSERT_EQUAL(n, 0);
    free(f);
    return rc;
}

#define REST "dport=\"2\" proto=\"6\" packets=\"1\" bytes=\"1\" first=\"1\" last=\"1\" id=\"00000000000000ab\"/>"

static void test_non_canonical_text_is_left_to_libxml2(void)
{
    CU_ASSERT_EQUAL(decode("<o v=\"10\"><o v=\"0\"><o v=\"0\"><o v=\"1\"><flow src=\"10.0.0.1\" dst=\"10.0.0.2\" "
                           "sport=\"1\" " REST "\n</o></o></o></o>"), DIP_OK);
    /* a leading zero, an entity, a single quote, attributes out of order */
    CU_ASSERT_EQUAL(decode("<o v=\"10\"><o v=\"0\"><o v=\"0\"><o v=\"1\"><flow src=\"10.0.0.1\" dst=\"10.0.0.2\" "
                           "sport=\"01\" " REST "</o></o></o></o>"), DIP_EAGAIN);
    CU_ASSERT_EQUAL(decode("<o v=\"10\"><o v=\"0\"><o v=\"0\"><o v=\"1\"><flow src=\"10.0.0.1\" dst=\"10.0.0.2\" "
                           "sport=\"&#49;\" " REST "</o></o></o></o>"), DIP_EAGAIN);
    CU_ASSERT_EQUAL(decode("<o v=\"10\"><o v=\"0\"><o v=\"0\"><o v=\"1\"><flow src='10.0.0.1' dst=\"10.0.0.2\" "
                           "sport=\"1\" " REST "</o></o></o></o>"), DIP_EAGAIN);
    CU_ASSERT_EQUAL(decode("<o v=\"10\"><o v=\"0\"><o v=\"0\"><o v=\"1\"><flow dst=\"10.0.0.2\" src=\"10.0.0.1\" "
                           "sport=\"1\" " REST "</o></o></o></o>"), DIP_EAGAIN);
    /* a record under another record's index path, unbalanced tags, a comment, an empty element */
    CU_ASSERT_EQUAL(decode("<o v=\"10\"><o v=\"0\"><o v=\"0\"><o v=\"2\"><flow src=\"10.0.0.1\" dst=\"10.0.0.2\" "
                           "sport=\"1\" " REST "</o></o></o></o>"), DIP_EAGAIN);
    CU_ASSERT_EQUAL(decode("<o v=\"10\"><o v=\"0\"><o v=\"0\"><o v=\"1\"><flow src=\"10.0.0.1\" dst=\"10.0.0.2\" "
                           "sport=\"1\" " REST "</o></o></o>"), DIP_EAGAIN);
    CU_ASSERT_EQUAL(decode("<!-- x --><o v=\"10\"><o v=\"0\"><o v=\"0\"><o v=\"1\"><flow src=\"10.0.0.1\" "
                           "dst=\"10.0.0.2\" sport=\"1\" " REST "</o></o></o></o>"), DIP_EAGAIN);
    CU_ASSERT_EQUAL(decode("<o v=\"10\"></o>"), DIP_EAGAIN);
    /* a required attribute missing */
    CU_ASSERT_EQUAL(decode("<o v=\"10\"><o v=\"0\"><o v=\"0\"><o v=\"1\"><flow src=\"10.0.0.1\" dst=\"10.0.0.2\" "
                           REST "</o></o></o></o>"), DIP_EAGAIN);
}

/* A filter that keeps the first `keep` subtrees it is asked about and drops
 * the rest: with keep = the key's depth, a damaged chunk's path is kept as
 * far as a record's may go and whatever is nested deeper is skipped. */
struct keep_first {
    size_t keep, calls;
};
static bool keep_first(void *ctx, struct dip_u128 lo, struct dip_u128 hi)
{
    struct keep_first *k = ctx;
    CU_ASSERT(u128_cmp(lo, hi) <= 0);
    return k->calls++ < k->keep;
}

#define FLOW4 "<flow src=\"10.0.0.1\" dst=\"10.0.0.2\" sport=\"1\" " REST
#define FLOW6 "<flow src=\"2001:db8::1\" dst=\"10.0.0.2\" sport=\"1\" " REST
#define V4PATH "<o v=\"10\"><o v=\"0\"><o v=\"0\"><o v=\"1\">"
#define V6PATH "<v6><g v=\"8193\"><g v=\"3512\"><g v=\"0\"><g v=\"0\"><g v=\"0\"><g v=\"0\"><g v=\"0\"><g v=\"1\">"

/* A damaged chunk whose index nests deeper than its key allows (a fifth
 * octet, a ninth IPv6 group, a port under a port) is refused, whether
 * decoded whole, through a filter that reads or skips the extra level, or
 * as a first part: never taken for an empty subtree, and no key range is
 * computed for a path the key cannot have (a negative shift before). */
static void test_index_deeper_than_its_key_is_refused(void)
{
    static const struct {
        enum dip_tank_key key;
        size_t filter_calls; /* how many index elements a record's path asks the filter about */
        const char *text;
    } cases[] = {
        { DIP_KEY_SRC, 4, V4PATH "<o v=\"7\">" FLOW4 "</o></o></o></o></o>" },
        { DIP_KEY_SRC, 4, V4PATH "<o v=\"7\"><o v=\"7\"><o v=\"7\"><o v=\"7\"><o v=\"7\">" FLOW4
                          "</o></o></o></o></o></o></o></o></o>" },
        { DIP_KEY_DST, 4, "<o v=\"10\"><o v=\"0\"><o v=\"0\"><o v=\"2\"><o v=\"0\"></o></o></o></o></o>" },
        { DIP_KEY_SRC, 8, V6PATH "<g v=\"5\">" FLOW6 "</g></g></g></g></g></g></g></g></g></v6>" },
        { DIP_KEY_SPORT, 1, "<p v=\"1\"><p v=\"1\">" FLOW4 "</p></p>" },
        { DIP_KEY_SPORT, 1, "<p v=\"1\"><p v=\"2\"><p v=\"3\"></p></p></p>" },
        { DIP_KEY_DPORT, 1, "<p v=\"2\"><p v=\"2\">" FLOW4 "</p></p>" },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const char *text = cases[c].text;
        for (int mode = 0; mode < 5; mode++) {
            /* 0: whole; 1, 2: keep all / drop past the key's depth; 3, 4: the same as a first part */
            struct keep_first k = { mode % 2 ? SIZE_MAX : cases[c].filter_calls, 0 };
            struct dip_chunk_filter flt = { keep_first, &k, mode >= 3 };
            struct dip_flow *f = NULL;
            size_t n = 0, cap = 0;
            int rc = dip_chunk_decode(cases[c].key, text, strlen(text), mode ? &flt : NULL, &f, &n, &cap);
            if (rc != DIP_EAGAIN) fprintf(stderr, "case %zu mode %d: %d, %zu records\n", c, mode, rc, n);
            CU_ASSERT_EQUAL(rc, DIP_EAGAIN);
            CU_ASSERT_EQUAL(n, 0);
            free(f);
        }
    }
    /* the same paths at the key's own depth decode: only the extra level is refused */
    struct dip_flow *f = NULL;
    size_t n = 0, cap = 0;
    const char *v4 = V4PATH FLOW4 "</o></o></o></o>", *v6 = V6PATH FLOW6 "</g></g></g></g></g></g></g></g></v6>",
               *port = "<p v=\"1\">" FLOW4 "</p>";
    CU_ASSERT_EQUAL(dip_chunk_decode(DIP_KEY_SRC, v4, strlen(v4), NULL, &f, &n, &cap), DIP_OK);
    CU_ASSERT_EQUAL(dip_chunk_decode(DIP_KEY_SRC, v6, strlen(v6), NULL, &f, &n, &cap), DIP_OK);
    CU_ASSERT_EQUAL(dip_chunk_decode(DIP_KEY_SPORT, port, strlen(port), NULL, &f, &n, &cap), DIP_OK);
    CU_ASSERT_EQUAL(n, 3);
    free(f);
}

static const char *const accepted[] = {
    "//flow",
    "//flow[@src = '10.0.0.3']",
    "//flow[@src != '10.0.0.3']",
    "//flow['10.0.0.3' = @src]",
    "//flow[@src = '10.0.0.03']",
    "//flow[@dst = '192.168.0.7' or @sport = 443]",
    "//flow[@sport = '443' and not(@proto = 17)]",
    "//flow[@sport = '0443']",
    "//flow[@bytes > 50000]",
    "//flow[@bytes >= '1152921504606846976']",
    "//flow[@bytes > 115292150460684]",
    "//flow[50000 < @bytes][@packets <= 10]",
    "//flow[@flags]",
    "//flow[not(@flags)]",
    "//flow[@flags < 10]",
    "//flow[@flags != 3]",
    "//flow[@srcas = 0 or (@packets > 50 and @proto = 6)]",
    "//flow[@id = '00000000000000ab']",
    "//flow[@packets = -1]",
    "//flow[@packets > 'abc']",
    "count(//flow)",
    "count(//flow[@dport < 1024])",
    "count(//flow[@src = '2001::5'])",
    "boolean(//flow[@dport = 7])",
    "boolean(//flow[@packets > 1000])",
    "sum(//flow/@bytes)",
    "sum(//flow[@proto = 6]/@packets)",
    "sum(//flow[@sport = 443]/@flags)",
    " count( //flow [ @dport >= 60000 ] ) ",
};

static const char *const refused[] = {
    "//flow[1]", "//flow[last()]", "//flow[@src > 5]", "//flow[@id > 5]", "//flow[contains(@dst, '10')]",
    "//flow[@bytes > 1.5]", "//flow[@bytes > 1152921504606846]", "//o/flow", "sum(//flow)", "sum(//flow/@src)", "count(//o)", "//flow[@nosuch = 1]",
    "//flow[@a = @b]", "//flow[@sport = 443] | //flow[@dport = 80]", "//flow/@sport", "//flows",
};

/* The value libxml2 gives expr on the document, and ours over the records. */
static void compare(xmlDocPtr doc, const struct dip_flow *f, size_t n, const char *expr)
{
    struct dip_fastq *q = dip_fastq_compile(expr, strlen(expr));
    if (!q) fprintf(stderr, "\n  refused %s\n", expr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(q);
    xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
    xmlXPathObjectPtr obj = xmlXPathEvalExpression(BAD_CAST expr, ctx);
    CU_ASSERT_PTR_NOT_NULL_FATAL(obj);
    size_t count = 0;
    double sum = 0;
    bool any = false;
    struct dip_flow *sel = calloc(n ? n : 1, sizeof *sel);
    for (size_t i = 0; i < n; i++) {
        if (!dip_fastq_match(q, &f[i])) continue;
        sel[count++] = f[i];
        any = true;
        bool has;
        double v = dip_fastq_value(q, &f[i], &has);
        if (has) sum += v;
    }
    switch (dip_fastq_kind(q)) {
    case DIP_FASTQ_FLOWS: {
        CU_ASSERT_EQUAL_FATAL(obj->type, XPATH_NODESET);
        size_t nodes = obj->nodesetval ? (size_t)obj->nodesetval->nodeNr : 0;
        CU_ASSERT_EQUAL(nodes, count);
        for (size_t k = 0; k < nodes && k < count; k++) {
            struct dip_flow g;
            struct dip_errbuf eb;
            CU_ASSERT_EQUAL(dip_flow_from_xml_node(&g, obj->nodesetval->nodeTab[k], &eb), DIP_OK);
            CU_ASSERT_EQUAL(g.id, sel[k].id);
        }
        break;
    }
    case DIP_FASTQ_COUNT: CU_ASSERT_EQUAL(xmlXPathCastToNumber(obj), (double)count); break;
    case DIP_FASTQ_SUM: CU_ASSERT_EQUAL(xmlXPathCastToNumber(obj), sum); break;
    case DIP_FASTQ_BOOLEAN: CU_ASSERT_EQUAL(xmlXPathCastToBoolean(obj), any); break;
    }
    if (count && dip_fastq_kind(q) == DIP_FASTQ_FLOWS && obj->nodesetval &&
        (size_t)obj->nodesetval->nodeNr != count)
        fprintf(stderr, "\n  mismatch on %s: libxml2 %d, ours %zu\n", expr, obj->nodesetval->nodeNr, count);
    free(sel);
    xmlXPathFreeObject(obj);
    xmlXPathFreeContext(ctx);
    dip_fastq_free(q);
}

static void test_fast_evaluator_agrees_with_libxml2(void)
{
    dip_xml_init();
    for (int v6 = 0; v6 < 2; v6++) {
        struct dip_flow *f = calloc(N, sizeof *f);
        make_flows(f, N, v6);
        f[3].src = f[0].src; /* equal keys */
        dip_store_sort(f, N, DIP_KEY_SRC);
        xmlDocPtr doc = dip_tree_build(DIP_KEY_SRC, f, N);
        CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
        for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++) compare(doc, f, N, accepted[i]);
        xmlFreeDoc(doc);
        free(f);
    }
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        struct dip_fastq *q = dip_fastq_compile(refused[i], strlen(refused[i]));
        if (q) fprintf(stderr, "\n  accepted %s\n", refused[i]);
        CU_ASSERT_PTR_NULL(q);
        dip_fastq_free(q);
    }
}

/* A marked tree leads from each flow node back to its record. */
static void test_marked_tree_points_back_to_records(void)
{
    struct dip_flow f[50];
    make_flows(f, 50, false);
    dip_store_sort(f, 50, DIP_KEY_DST);
    xmlDocPtr doc = dip_tree_build_marked(DIP_KEY_DST, f, 50);
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
    xmlXPathObjectPtr obj = xmlXPathEvalExpression(BAD_CAST "//flow", ctx);
    CU_ASSERT_EQUAL_FATAL(obj->nodesetval->nodeNr, 50);
    for (int k = 0; k < 50; k++) CU_ASSERT_EQUAL((size_t)(uintptr_t)obj->nodesetval->nodeTab[k]->_private, (size_t)k + 1);
    xmlXPathFreeObject(obj);
    xmlXPathFreeContext(ctx);
    xmlFreeDoc(doc);
}

int dip_suite_store_fast(void)
{
    CU_pSuite s = CU_add_suite("store_fast", NULL, NULL);
    if (!s) return -1;
#define T(name)                                                                        \
    do {                                                                               \
        CU_pTest t = CU_add_test(s, #name, name);                                      \
        if (!t) return -1;                                                             \
    } while (0)
    T(test_chunk_text_decodes_to_the_records_written);
    T(test_chunk_filter_decodes_only_the_kept_subtrees);
    T(test_non_canonical_text_is_left_to_libxml2);
    T(test_index_deeper_than_its_key_is_refused);
    T(test_fast_evaluator_agrees_with_libxml2);
    T(test_marked_tree_points_back_to_records);
#undef T
    return 0;
}
