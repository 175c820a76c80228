/* test_flow.c - the flow record: addresses, XML attributes, binary batches
 * (fed whole, truncated at every byte and corrupted at every byte), the
 * streaming XML reader (fed in pieces; DOCTYPEs, entities and records that
 * end before they start refused) and flow IDs. */
#include <CUnit/CUnit.h>
#include <arpa/inet.h>
#include <libxml/tree.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "flow/flow.h"

static struct dip_flow sample_flow(int v6, int all_optional)
{
    struct dip_flow f;
    memset(&f, 0, sizeof f);
    if (v6) {
        dip_addr_parse("2001:db8::1", 11, &f.src);
        dip_addr_parse("2001:db8:0:1::ff", 16, &f.dst);
    } else {
        dip_addr_from_v4(&f.src, 0x0a010203);
        dip_addr_from_v4(&f.dst, 0xc0a80001);
    }
    f.sport = 51515;
    f.dport = 443;
    f.proto = 6;
    f.packets = 12;
    f.bytes = 3456;
    f.first = 1700000000123ull;
    f.last = 1700000004567ull;
    if (all_optional) {
        f.present = DIP_F_ALL_OPTIONAL;
        f.flags = 0x1b; f.tos = 32; f.in = 3; f.out = 7; f.srcas = 64512; f.dstas = 4200000000u;
        f.smask = 24; f.dmask = 16; f.domain = 42; f.sampling = 1000;
        dip_addr_parse("fe80::1", 7, &f.nexthop);
        dip_addr_from_v4(&f.exporter, 0xc0000201);
    }
    f.id = dip_flow_id_random(&f, dip_flow_id_default_key);
    return f;
}

static void test_addr_parse_and_format_round_trip_rfc5952(void)
{
    static const char *const good[] = { "0.0.0.0", "10.1.2.3", "255.255.255.255", "2001:db8::1", "::1", "::",
                                        "fe80::1:2:3:4", "2001:db8:0:1:1:1:1:1", "1::" };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        struct dip_addr a;
        char text[DIP_ADDR_TEXT_MAX];
        CU_ASSERT_EQUAL_FATAL(dip_addr_parse(good[i], strlen(good[i]), &a), DIP_OK);
        dip_addr_format(&a, text);
        CU_ASSERT_STRING_EQUAL(text, good[i]);
    }
    struct dip_addr a;
    char text[DIP_ADDR_TEXT_MAX];
    CU_ASSERT_EQUAL(dip_addr_parse("2001:DB8:0:0:0:0:0:1", 20, &a), DIP_OK);
    dip_addr_format(&a, text);
    CU_ASSERT_STRING_EQUAL(text, "2001:db8::1"); /* lowercase, longest zero run compressed */
}

/* dip_addr_format has its own IPv6 formatting: it must write what
 * inet_ntop writes (the text stored segments hold), on every pattern of zero
 * groups and on random values, including the dotted IPv4-compatible form. */
/* The reference order: IPv4 (mapped) before IPv6, then byte by byte. */
static int addr_cmp_reference(const struct dip_addr *a, const struct dip_addr *b)
{
    static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    bool a4 = memcmp(a->b, mapped, 12) == 0, b4 = memcmp(b->b, mapped, 12) == 0;
    if (a4 != b4) return a4 ? -1 : 1;
    return memcmp(a->b, b->b, 16);
}

static int sign(int v) { return (v > 0) - (v < 0); }

static void test_addr_cmp_equals_reference_order(void)
{
    /* addresses from a few patterns, so that equal words and near misses of
     * the mapped prefix are frequent */
    uint32_t rng = 777;
    struct dip_addr pool[64];
    for (int i = 0; i < 64; i++) {
        struct dip_addr *a = &pool[i];
        for (int k = 0; k < 16; k++) {
            rng = rng * 1103515245u + 12345u;
            a->b[k] = (uint8_t)(rng >> 16);
        }
        switch (i % 4) {
        case 0: dip_addr_from_v4(a, rng); break;                    /* IPv4 */
        case 1: memset(a->b, 0, 10); a->b[10] = 0xff; a->b[11] = (uint8_t)(i & 1 ? 0xfe : 0xff); break;
        case 2: memset(a->b, 0, 8); break;                          /* ::x:y:z:w */
        default: break;                                             /* any IPv6 */
        }
        if (i >= 60) pool[i] = pool[i - 8];                         /* equal pairs */
    }
    for (int i = 0; i < 64; i++)
        for (int j = 0; j < 64; j++)
            CU_ASSERT_EQUAL(sign(dip_addr_cmp(&pool[i], &pool[j])), sign(addr_cmp_reference(&pool[i], &pool[j])));
}

static void test_addr_format_v6_equals_inet_ntop(void)
{
    uint32_t rng = 12345;
    for (unsigned zeros = 0; zeros < 256; zeros++) {
        for (int round = 0; round < 40; round++) {
            struct dip_addr a;
            for (int g = 0; g < 8; g++) {
                rng = rng * 1103515245u + 12345u;
                unsigned v = (rng >> 8) & 0xffff;
                unsigned width = round % 5; /* groups of 1 to 4 hex digits, and 0xffff */
                v = width == 4 ? 0xffff : v >> (4 * (3 - width));
                if (zeros & (1u << g)) v = 0;
                a.b[2 * g] = (uint8_t)(v >> 8);
                a.b[2 * g + 1] = (uint8_t)v;
            }
            if (dip_addr_is_v4(&a)) continue; /* written dotted, without inet_ntop */
            char want[INET6_ADDRSTRLEN], got[DIP_ADDR_TEXT_MAX];
            CU_ASSERT_PTR_NOT_NULL_FATAL(inet_ntop(AF_INET6, a.b, want, sizeof want));
            size_t n = dip_addr_format(&a, got);
            CU_ASSERT_STRING_EQUAL(got, want);
            CU_ASSERT_EQUAL(n, strlen(want));
            struct dip_addr back;
            CU_ASSERT_EQUAL(dip_addr_parse(got, n, &back), DIP_OK);
            CU_ASSERT_EQUAL(memcmp(back.b, a.b, 16), 0);
        }
    }
}

/* The longest record there can be (every attribute at its widest) fits
 * DIP_FLOW_XML_ATTRS_MAX with the 16 bytes the writer may run past its end,
 * and the writer touches nothing beyond that buffer. */
static void test_longest_record_fits_the_attribute_buffer(void)
{
    struct dip_flow f;
    memset(&f, 0xff, sizeof f);
    f.present = DIP_F_ALL_OPTIONAL;
    const char *wide = "1111:2222:3333:4444:5555:6666:7777:8888";
    dip_addr_parse(wide, strlen(wide), &f.src);
    f.dst = f.nexthop = f.exporter = f.src;
    char out[DIP_FLOW_XML_ATTRS_MAX + 64];
    memset(out, '#', sizeof out);
    size_t n = dip_flow_xml_attrs(&f, out);
    CU_ASSERT(n + 16 <= DIP_FLOW_XML_ATTRS_MAX);
    for (size_t i = DIP_FLOW_XML_ATTRS_MAX; i < sizeof out; i++) CU_ASSERT_EQUAL_FATAL(out[i], '#');
    CU_ASSERT(strstr(out, " bytes=\"18446744073709551615\"") != NULL);
    CU_ASSERT(strstr(out, " src=\"1111:2222:3333:4444:5555:6666:7777:8888\"") != NULL);
    /* numbers of every width come back as written */
    for (uint64_t v = 1, k = 0; k < 20; k++, v *= 10) {
        for (int d = -1; d <= 1; d++) {
            struct dip_flow g = sample_flow(0, 0);
            g.bytes = v + (uint64_t)d;
            struct dip_dynbuf b;
            dip_dynbuf_init(&b, 1 << 20);
            CU_ASSERT_EQUAL(dip_flow_xml_append(&g, &b), DIP_OK);
            char want[32];
            snprintf(want, sizeof want, " bytes=\"%llu\"", (unsigned long long)g.bytes);
            CU_ASSERT(strstr((const char *)b.data, want) != NULL);
            dip_dynbuf_free(&b);
        }
    }
}

/* A random number of a random width: every digit count, and the
 * boundaries 10^k - 1 and 10^k, turn up. */
static uint64_t random_width(unsigned *seed, unsigned bits)
{
    uint64_t v = ((uint64_t)rand_r(seed) << 42) ^ ((uint64_t)rand_r(seed) << 21) ^ (uint64_t)rand_r(seed);
    unsigned w = (unsigned)rand_r(seed) % (bits + 1);
    v = w == 64 ? v : v & ((1ull << w) - 1);
    if (rand_r(seed) % 8 == 0) {
        uint64_t p = 1;
        for (unsigned k = (unsigned)rand_r(seed) % 20; k > 0 && p <= UINT64_MAX / 10; k--) p *= 10;
        v = p - (uint64_t)(rand_r(seed) % 2);
    }
    return bits == 64 || v < (1ull << bits) ? v : v & ((1ull << bits) - 1);
}

static void random_addr(unsigned *seed, struct dip_addr *a)
{
    if (rand_r(seed) % 3) {
        dip_addr_from_v4(a, (uint32_t)random_width(seed, 32));
        return;
    }
    for (int i = 0; i < 16; i++) a->b[i] = rand_r(seed) % 3 ? 0 : (uint8_t)rand_r(seed);
}

/* The attributes as the field table describes them, written with snprintf
 * and inet_ntop: the reference for the straight-line writer. */
static size_t reference_attrs(const struct dip_flow *f, char *out, size_t cap)
{
    size_t nf, n = 0;
    const struct dip_field *fd = dip_flow_fields(&nf);
    for (size_t i = 0; i < nf; i++, fd++) {
        if (fd->opt_bit && !(f->present & fd->opt_bit)) continue;
        char v[64];
        if (fd->type == DIP_FT_ADDR) {
            const struct dip_addr *a = (const struct dip_addr *)((const uint8_t *)f + fd->offset);
            if (dip_addr_is_v4(a)) inet_ntop(AF_INET, a->b + 12, v, sizeof v);
            else inet_ntop(AF_INET6, a->b, v, sizeof v);
        } else if (fd->type == DIP_FT_ID) {
            snprintf(v, sizeof v, "%016llx", (unsigned long long)f->id);
        } else {
            snprintf(v, sizeof v, "%llu", (unsigned long long)dip_flow_get_u64(f, fd));
        }
        n += (size_t)snprintf(out + n, cap - n, " %s=\"%s\"", fd->name, v);
    }
    return n;
}

/* The writer gives what the field table says, in its order, for records
 * with any optional attributes, both address families and numbers of every
 * width. */
static void test_xml_writer_equals_the_field_table(void)
{
    unsigned seed = 5;
    for (int k = 0; k < 20000; k++) {
        struct dip_flow f;
        memset(&f, 0, sizeof f);
        random_addr(&seed, &f.src);
        random_addr(&seed, &f.dst);
        random_addr(&seed, &f.nexthop);
        random_addr(&seed, &f.exporter);
        f.sport = (uint16_t)random_width(&seed, 16);
        f.dport = (uint16_t)random_width(&seed, 16);
        f.proto = (uint8_t)random_width(&seed, 8);
        f.packets = random_width(&seed, 64);
        f.bytes = random_width(&seed, 64);
        f.first = random_width(&seed, 64);
        f.last = random_width(&seed, 64);
        f.id = random_width(&seed, 64);
        f.flags = (uint8_t)random_width(&seed, 8);
        f.tos = (uint8_t)random_width(&seed, 8);
        f.smask = (uint8_t)random_width(&seed, 8);
        f.dmask = (uint8_t)random_width(&seed, 8);
        f.in = (uint32_t)random_width(&seed, 32);
        f.out = (uint32_t)random_width(&seed, 32);
        f.srcas = (uint32_t)random_width(&seed, 32);
        f.dstas = (uint32_t)random_width(&seed, 32);
        f.domain = (uint32_t)random_width(&seed, 32);
        f.sampling = (uint32_t)random_width(&seed, 32);
        f.present = (uint16_t)(rand_r(&seed) & DIP_F_ALL_OPTIONAL);
        char got[DIP_FLOW_XML_ATTRS_MAX], want[2048];
        size_t n = dip_flow_xml_attrs(&f, got);
        got[n] = 0;
        size_t m = reference_attrs(&f, want, sizeof want);
        CU_ASSERT_EQUAL_FATAL(n, m);
        CU_ASSERT_STRING_EQUAL_FATAL(got, want);
    }
}

static void test_addr_parse_rejects_garbage(void)
{
    static const char *const bad[] = { "", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.04x", "01234.1.1.1", "a.b.c.d",
                                       "1:2:3:4:5:6:7:8:9", "::g", " 1.2.3.4", "1.2.3.4 " };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct dip_addr a;
        CU_ASSERT_NOT_EQUAL(dip_addr_parse(bad[i], strlen(bad[i]), &a), DIP_OK);
    }
}

static void test_addr_order_puts_ipv4_before_ipv6(void)
{
    struct dip_addr v4, v6;
    dip_addr_from_v4(&v4, 0xffffffff);
    dip_addr_parse("::1", 3, &v6);
    CU_ASSERT(dip_addr_cmp(&v4, &v6) < 0);
    CU_ASSERT(dip_addr_cmp(&v6, &v4) > 0);
}

static void test_flow_xml_round_trip_with_and_without_optional_fields(void)
{
    for (int v6 = 0; v6 < 2; v6++)
        for (int opt = 0; opt < 2; opt++) {
            struct dip_flow f = sample_flow(v6, opt), g;
            xmlNodePtr n = xmlNewNode(NULL, BAD_CAST "flow");
            CU_ASSERT_EQUAL_FATAL(dip_flow_to_xml_node(&f, n), DIP_OK);
            struct dip_errbuf eb;
            CU_ASSERT_EQUAL(dip_flow_from_xml_node(&g, n, &eb), DIP_OK);
            CU_ASSERT_EQUAL(memcmp(&f, &g, sizeof f), 0);
            xmlFreeNode(n);
            /* the text writer gives the same attributes */
            struct dip_dynbuf b;
            dip_dynbuf_init(&b, 4096);
            CU_ASSERT_EQUAL(dip_flow_xml_append(&f, &b), DIP_OK);
            CU_ASSERT_PTR_NOT_NULL(strstr((char *)b.data, opt ? " sampling=\"1000\"" : "\" id=\""));
            CU_ASSERT_PTR_NULL(strstr((char *)b.data, "=\"\"")); /* never an empty attribute */
            dip_dynbuf_free(&b);
        }
}

static void test_flow_from_attrs_names_the_bad_attribute(void)
{
    const char *names[] = { "src", "dst", "sport", "dport", "proto", "packets", "bytes", "first", "last", "id" };
    const char *values[] = { "10.0.0.1", "10.0.0.2", "70000", "22", "6", "1", "40", "1", "2", "0123456789abcdef" };
    struct dip_flow f;
    struct dip_errbuf eb;
    CU_ASSERT_EQUAL(dip_flow_from_attrs(&f, names, values, 10, &eb), DIP_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "sport"));
    values[2] = "1234";
    CU_ASSERT_EQUAL(dip_flow_from_attrs(&f, names, values, 10, &eb), DIP_OK);
    CU_ASSERT_EQUAL(dip_flow_from_attrs(&f, names, values, 9, &eb), DIP_EINVAL); /* no id */
    CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "id"));
    names[4] = "color";
    CU_ASSERT_EQUAL(dip_flow_from_attrs(&f, names, values, 10, &eb), DIP_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "color"));
}

static void test_batch_round_trip_mixed_records(void)
{
    struct dip_flow in[4] = { sample_flow(0, 0), sample_flow(1, 0), sample_flow(0, 1), sample_flow(1, 1) };
    struct dip_dynbuf b;
    dip_dynbuf_init(&b, 1 << 20);
    CU_ASSERT_EQUAL_FATAL(dip_batch_encode(in, 4, &b), DIP_OK);
    struct dip_flow *out;
    size_t n;
    struct dip_errbuf eb;
    CU_ASSERT_EQUAL_FATAL(dip_batch_decode(b.data, b.len, 100, &out, &n, &eb), DIP_OK);
    CU_ASSERT_EQUAL(n, 4);
    CU_ASSERT_EQUAL(memcmp(in, out, sizeof in), 0);
    free(out);
    dip_dynbuf_free(&b);
}

/* A batch built record by record, after other bytes in the buffer, is the
 * same bytes dip_batch_encode writes, and decodes to the same records. */
static void test_batch_built_one_record_at_a_time_equals_encode(void)
{
    struct dip_flow in[4] = { sample_flow(0, 0), sample_flow(1, 0), sample_flow(0, 1), sample_flow(1, 1) };
    struct dip_dynbuf whole, parts;
    dip_dynbuf_init(&whole, 1 << 20);
    dip_dynbuf_init(&parts, 1 << 20);
    CU_ASSERT_EQUAL_FATAL(dip_batch_encode(in, 4, &whole), DIP_OK);
    CU_ASSERT_EQUAL_FATAL(dip_dynbuf_add(&parts, "head", 4), DIP_OK);
    size_t start = 0;
    CU_ASSERT_EQUAL_FATAL(dip_batch_begin(&parts, &start), DIP_OK);
    CU_ASSERT_EQUAL(start, 4);
    for (size_t i = 0; i < 4; i++) CU_ASSERT_EQUAL_FATAL(dip_batch_add(&parts, &in[i]), DIP_OK);
    CU_ASSERT_EQUAL_FATAL(dip_batch_end(&parts, start, 4), DIP_OK);
    CU_ASSERT_EQUAL_FATAL(parts.len, whole.len + 4);
    CU_ASSERT_EQUAL(memcmp(parts.data + 4, whole.data, whole.len), 0);
    CU_ASSERT_EQUAL(dip_batch_end(&parts, parts.len - 2, 4), DIP_ERANGE); /* no header there */
    struct dip_flow *out;
    size_t n;
    struct dip_errbuf eb;
    CU_ASSERT_EQUAL_FATAL(dip_batch_decode(parts.data + 4, whole.len, 100, &out, &n, &eb), DIP_OK);
    CU_ASSERT_EQUAL(n, 4);
    CU_ASSERT_EQUAL(memcmp(in, out, sizeof in), 0);
    free(out);
    dip_dynbuf_free(&whole);
    dip_dynbuf_free(&parts);
}

static void test_batch_truncated_at_every_byte_needs_more_or_fails(void)
{
    struct dip_flow in[3] = { sample_flow(0, 1), sample_flow(1, 1), sample_flow(0, 0) };
    struct dip_dynbuf b;
    dip_dynbuf_init(&b, 1 << 20);
    dip_batch_encode(in, 3, &b);
    for (size_t cut = 0; cut < b.len; cut++) {
        struct dip_flow *out = NULL;
        size_t n = 0, used = 0;
        struct dip_errbuf eb;
        int rc = dip_batch_decode_prefix(b.data, cut, 100, &out, &n, &used, &eb);
        CU_ASSERT(rc == DIP_EAGAIN || rc == DIP_ECORRUPT);
        CU_ASSERT_PTR_NULL(out);
        CU_ASSERT_NOT_EQUAL(dip_batch_decode(b.data, cut, 100, &out, &n, &eb), DIP_OK);
    }
    dip_dynbuf_free(&b);
}

static void test_batch_corruption_at_every_byte_is_detected(void)
{
    struct dip_flow in[2] = { sample_flow(0, 1), sample_flow(1, 0) };
    struct dip_dynbuf b;
    dip_dynbuf_init(&b, 1 << 20);
    dip_batch_encode(in, 2, &b);
    for (size_t i = 0; i < b.len; i++) {
        b.data[i] ^= 0x5a;
        struct dip_flow *out = NULL;
        size_t n;
        struct dip_errbuf eb;
        CU_ASSERT_NOT_EQUAL(dip_batch_decode(b.data, b.len, 100, &out, &n, &eb), DIP_OK);
        CU_ASSERT_PTR_NULL(out);
        b.data[i] ^= 0x5a;
    }
    dip_dynbuf_free(&b);
}

static void test_batch_stream_of_concatenated_batches(void)
{
    struct dip_flow in[3] = { sample_flow(0, 0), sample_flow(1, 1), sample_flow(0, 1) };
    struct dip_dynbuf b;
    dip_dynbuf_init(&b, 1 << 20);
    dip_batch_encode(in, 1, &b);
    size_t first = b.len;
    dip_batch_encode(in + 1, 2, &b);
    struct dip_flow *out;
    size_t n, used;
    struct dip_errbuf eb;
    CU_ASSERT_EQUAL_FATAL(dip_batch_decode_prefix(b.data, b.len, 100, &out, &n, &used, &eb), DIP_OK);
    CU_ASSERT_EQUAL(used, first);
    CU_ASSERT_EQUAL(n, 1);
    free(out);
    CU_ASSERT_EQUAL_FATAL(dip_batch_decode_prefix(b.data + used, b.len - used, 100, &out, &n, &used, &eb), DIP_OK);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_EQUAL(memcmp(out, in + 1, 2 * sizeof *out), 0);
    free(out);
    dip_dynbuf_free(&b);
}

static void test_random_id_is_deterministic_keyed_and_spread(void)
{
    struct dip_flow f = sample_flow(0, 0);
    uint64_t a = dip_flow_id_random(&f, dip_flow_id_default_key);
    CU_ASSERT_EQUAL(a, dip_flow_id_random(&f, dip_flow_id_default_key));
    uint8_t other[16] = { 1 };
    CU_ASSERT_NOT_EQUAL(a, dip_flow_id_random(&f, other));
    /* top bits spread evenly: 4096 flows over 16 buckets */
    int buckets[16] = { 0 };
    for (int i = 0; i < 4096; i++) {
        f.sport = (uint16_t)i;
        buckets[dip_flow_id_random(&f, dip_flow_id_default_key) >> 60]++;
    }
    for (int i = 0; i < 16; i++) CU_ASSERT(buckets[i] > 256 / 2 && buckets[i] < 256 * 2);
}

/* OpenSSL's SIPHASH MAC with an 8-byte output, read little-endian. */
static uint64_t openssl_siphash(const uint8_t key[16], const uint8_t *in, size_t len)
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "SIPHASH", NULL);
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    size_t size = 8, outlen = 0;
    uint8_t out[8] = { 0 };
    OSSL_PARAM params[] = { OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size), OSSL_PARAM_construct_end() };
    CU_ASSERT_FATAL(ctx && EVP_MAC_init(ctx, key, 16, params) && EVP_MAC_update(ctx, in, len) &&
                    EVP_MAC_final(ctx, out, &outlen, sizeof out) && outlen == 8);
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | out[i];
    return v;
}

static void test_siphash_equals_openssl_on_random_inputs(void)
{
    /* the reference vector of the SipHash paper: key 00..0f, input 00..0e */
    uint8_t key[16], in[128];
    for (int i = 0; i < 16; i++) key[i] = (uint8_t)i;
    for (int i = 0; i < 15; i++) in[i] = (uint8_t)i;
    CU_ASSERT_EQUAL(dip_siphash24(key, in, 15), 0xa129ca6149be45e5ull);
    /* every length from 0 to 128 under random keys and inputs */
    uint32_t r = 12345;
    for (int round = 0; round < 20; round++)
        for (size_t len = 0; len <= sizeof in; len++) {
            for (int i = 0; i < 16; i++) key[i] = (uint8_t)((r = r * 1103515245u + 12345u) >> 16);
            for (size_t i = 0; i < len; i++) in[i] = (uint8_t)((r = r * 1103515245u + 12345u) >> 16);
            CU_ASSERT_EQUAL(dip_siphash24(key, in, len), openssl_siphash(key, in, len));
        }
}

static void test_structured_id_preserves_key_order(void)
{
    struct dip_flow a = sample_flow(0, 0), b = a, c = sample_flow(1, 0);
    dip_addr_from_v4(&a.src, 0x0a000001);
    dip_addr_from_v4(&b.src, 0x0a000002);
    CU_ASSERT(dip_flow_id_structured(&a, DIP_KEY_SRC) < dip_flow_id_structured(&b, DIP_KEY_SRC));
    CU_ASSERT(dip_flow_id_structured(&b, DIP_KEY_SRC) < dip_flow_id_structured(&c, DIP_KEY_SRC));
    a.dport = 22;
    b.dport = 23;
    CU_ASSERT(dip_flow_id_structured(&a, DIP_KEY_DPORT) < dip_flow_id_structured(&b, DIP_KEY_DPORT));
    CU_ASSERT_EQUAL(dip_flow_id_structured(&a, DIP_KEY_DPORT) >> 48, 22);
}

/* ---- the streaming XML reader (dip_flow_read_xml_fd) ---- */

struct read_sink {
    struct dip_flow flows[64];
    size_t n;
    size_t sizes[64], calls; /* the batches as delivered */
};

static int sink_batch(void *ctx, const struct dip_flow *flows, size_t n)
{
    struct read_sink *k = ctx;
    for (size_t i = 0; i < n && k->n < 64; i++) k->flows[k->n++] = flows[i];
    if (k->calls < 64) k->sizes[k->calls++] = n;
    return DIP_OK;
}

struct feeder {
    int fd;
    const uint8_t *data;
    size_t len, piece;
};

/* Sends the bytes in pieces of `piece` bytes (all at once for 0), then
 * closes. MSG_NOSIGNAL: a reader that stops early must not kill the test. */
static void *feed(void *arg)
{
    struct feeder *fd = arg;
    size_t piece = fd->piece ? fd->piece : fd->len;
    for (size_t at = 0; at < fd->len; at += piece) {
        size_t n = fd->len - at < piece ? fd->len - at : piece;
        if (send(fd->fd, fd->data + at, n, MSG_NOSIGNAL) != (ssize_t)n) break;
    }
    close(fd->fd);
    return NULL;
}

/* Reads len bytes as the file "in.xml" through a socket fed in pieces, with
 * dip_flow_read_fd (told the format by the first bytes) or, when not
 * detect, dip_flow_read_xml_fd. */
static int read_bytes(const void *data, size_t len, size_t piece, size_t batch, bool detect, struct read_sink *sink,
                      uint64_t *delivered, struct dip_errbuf *eb)
{
    memset(sink, 0, sizeof *sink);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return DIP_EIO;
    struct feeder fd = { sv[1], data, len, piece };
    pthread_t t;
    if (pthread_create(&t, NULL, feed, &fd) != 0) {
        close(sv[0]);
        close(sv[1]);
        return DIP_EIO;
    }
    int rc = detect ? dip_flow_read_fd(sv[0], "in.xml", batch, sink_batch, sink, delivered, eb)
                    : dip_flow_read_xml_fd(sv[0], "in.xml", batch, sink_batch, sink, delivered, eb);
    close(sv[0]);
    pthread_join(t, NULL);
    return rc;
}

static int read_text(const char *text, size_t piece, size_t batch, struct read_sink *sink, uint64_t *delivered,
                     struct dip_errbuf *eb)
{
    return read_bytes(text, strlen(text), piece, batch, false, sink, delivered, eb);
}

static void test_xml_reader_gives_the_same_batches_however_the_input_is_split(void)
{
    struct dip_flow want[5] = { sample_flow(0, 0), sample_flow(1, 1), sample_flow(0, 1), sample_flow(1, 0),
                                sample_flow(0, 0) };
    want[4].last = want[4].first; /* a flow of one instant is fine */
    want[4].id = dip_flow_id_random(&want[4], dip_flow_id_default_key);
    struct dip_dynbuf doc;
    dip_dynbuf_init(&doc, 1 << 16);
    /* flows at any depth, with text, comments and other elements between */
    dip_dynbuf_addstr(&doc, "<?xml version=\"1.0\"?>\n<tank key=\"src\"><o v=\"10\">\n");
    for (int i = 0; i < 5; i++) {
        dip_flow_xml_append(&want[i], &doc);
        dip_dynbuf_addstr(&doc, i == 2 ? "</o><!-- a comment --> text &amp; more\n" : "\n");
    }
    dip_dynbuf_addstr(&doc, "</tank>\n");
    static const size_t pieces[] = { 0, 1, 2, 3, 7, 61 };
    for (size_t p = 0; p < 2 * sizeof pieces / sizeof pieces[0]; p++) {
        struct read_sink sink;
        uint64_t delivered = 99;
        struct dip_errbuf eb = { { 0 } };
        bool detect = p % 2; /* dip_flow_read_fd takes its first bytes for a prefix */
        CU_ASSERT_EQUAL_FATAL(read_bytes(doc.data, doc.len, pieces[p / 2], 2, detect, &sink, &delivered, &eb), DIP_OK);
        CU_ASSERT_EQUAL(delivered, 5);
        CU_ASSERT_EQUAL_FATAL(sink.n, 5);
        CU_ASSERT_EQUAL(sink.calls, 3);
        CU_ASSERT(sink.sizes[0] == 2 && sink.sizes[1] == 2 && sink.sizes[2] == 1);
        for (int i = 0; i < 5; i++) CU_ASSERT_EQUAL(memcmp(&sink.flows[i], &want[i], sizeof want[i]), 0);
    }
    dip_dynbuf_free(&doc);
}

static void test_reader_tells_batches_from_xml_by_the_first_bytes_however_split(void)
{
    struct dip_flow want[5] = { sample_flow(0, 0), sample_flow(1, 1), sample_flow(0, 1), sample_flow(1, 0),
                                sample_flow(0, 0) };
    struct dip_dynbuf bin;
    dip_dynbuf_init(&bin, 1 << 16);
    CU_ASSERT_EQUAL_FATAL(dip_batch_encode(want, 3, &bin), DIP_OK);
    CU_ASSERT_EQUAL_FATAL(dip_batch_encode(want + 3, 2, &bin), DIP_OK);
    static const size_t pieces[] = { 0, 1, 2, 3, 5, 61 };
    for (size_t p = 0; p < sizeof pieces / sizeof pieces[0]; p++) {
        struct read_sink sink;
        uint64_t delivered = 99;
        struct dip_errbuf eb = { { 0 } };
        /* the batch size is the file's own, whatever `batch` says */
        CU_ASSERT_EQUAL_FATAL(read_bytes(bin.data, bin.len, pieces[p], 4, true, &sink, &delivered, &eb), DIP_OK);
        CU_ASSERT_EQUAL(delivered, 5);
        CU_ASSERT(sink.calls == 2 && sink.sizes[0] == 3 && sink.sizes[1] == 2);
        for (int i = 0; i < 5; i++) CU_ASSERT_EQUAL(memcmp(&sink.flows[i], &want[i], sizeof want[i]), 0);
    }
    /* shorter than the magic: an empty XML document, not a crash */
    struct read_sink sink;
    uint64_t delivered;
    struct dip_errbuf eb = { { 0 } };
    CU_ASSERT_EQUAL(read_bytes("DI", 2, 1, 4, true, &sink, &delivered, &eb), DIP_ESYNTAX);
    CU_ASSERT_EQUAL(read_bytes("", 0, 0, 4, true, &sink, &delivered, &eb), DIP_ESYNTAX);
    dip_dynbuf_free(&bin);
}

static void test_xml_reader_refuses_billion_laughs_at_its_doctype(void)
{
    /* ten levels of ten: expanded, one attribute would be 10^9 bytes */
    struct dip_dynbuf doc;
    dip_dynbuf_init(&doc, 1 << 16);
    dip_dynbuf_addstr(&doc, "<?xml version=\"1.0\"?>\n<!DOCTYPE flows [\n <!ENTITY lol0 \"lol\">\n");
    for (int level = 1; level < 10; level++) {
        dip_dynbuf_printf(&doc, " <!ENTITY lol%d \"", level);
        for (int i = 0; i < 10; i++) dip_dynbuf_printf(&doc, "&lol%d;", level - 1);
        dip_dynbuf_addstr(&doc, "\">\n");
    }
    dip_dynbuf_addstr(&doc, "]>\n<flows><flow src=\"&lol9;\" dst=\"10.0.0.2\" sport=\"1\" dport=\"2\" proto=\"6\" "
                            "packets=\"1\" bytes=\"1\" first=\"1\" last=\"2\" id=\"00000000000000b1\"/>&lol9;</flows>\n");
    struct read_sink sink;
    uint64_t delivered = 99;
    struct dip_errbuf eb = { { 0 } };
    CU_ASSERT_EQUAL(read_text((const char *)doc.data, 0, 1, &sink, &delivered, &eb), DIP_ESYNTAX);
    CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "in.xml:2:"));
    CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "DOCTYPE"));
    CU_ASSERT_EQUAL(delivered, 0);
    CU_ASSERT_EQUAL(sink.calls, 0);
    dip_dynbuf_free(&doc);
}

static void test_xml_reader_refuses_external_entities_and_undeclared_references(void)
{
    static const char *const refused[] = {
        /* XXE: an external general entity, an external DTD, a parameter entity */
        "<!DOCTYPE flows [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><flows>&x;</flows>",
        "<!DOCTYPE flows SYSTEM \"http://127.0.0.1:9/flows.dtd\"><flows/>",
        "<!DOCTYPE flows [<!ENTITY % p SYSTEM \"file:///etc/passwd\"> %p;]><flows/>",
        "<!DOCTYPE flows><flows/>", /* none is needed, so none is read */
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        struct read_sink sink;
        uint64_t delivered;
        struct dip_errbuf eb = { { 0 } };
        CU_ASSERT_EQUAL(read_text(refused[i], 0, 4, &sink, &delivered, &eb), DIP_ESYNTAX);
        CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "in.xml:1:"));
        CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "DOCTYPE"));
    }
    /* with no declaration a reference is undeclared: a well-formedness error */
    static const char undeclared[] =
        "<flows><flow src=\"10.0.0.1\" dst=\"10.0.0.2\" sport=\"1\" dport=\"2\" proto=\"6\" packets=\"1\" "
        "bytes=\"1\" first=\"1\" last=\"2\" id=\"00000000000000b1\"/>\n<flow src=\"&x;\"/></flows>";
    struct read_sink sink;
    uint64_t delivered;
    struct dip_errbuf eb = { { 0 } };
    CU_ASSERT_EQUAL(read_text(undeclared, 0, 4, &sink, &delivered, &eb), DIP_ESYNTAX);
    CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "in.xml:2:"));
    CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "'x'"));
    CU_ASSERT_EQUAL(sink.calls, 0); /* the batch in progress is not delivered */
}

static void test_xml_reader_refuses_a_flow_that_ends_before_it_starts(void)
{
    struct dip_flow f[3] = { sample_flow(0, 0), sample_flow(1, 0), sample_flow(0, 1) };
    f[2].last = f[2].first - 1;
    struct dip_dynbuf doc;
    dip_dynbuf_init(&doc, 1 << 16);
    dip_dynbuf_addstr(&doc, "<flows>\n");
    for (int i = 0; i < 3; i++) {
        dip_flow_xml_append(&f[i], &doc);
        dip_dynbuf_addstr(&doc, "\n");
    }
    dip_dynbuf_addstr(&doc, "</flows>\n");
    struct read_sink sink;
    uint64_t delivered = 99;
    struct dip_errbuf eb = { { 0 } };
    CU_ASSERT_EQUAL(read_text((const char *)doc.data, 0, 2, &sink, &delivered, &eb), DIP_EINVAL);
    /* the file, line 4, and both values */
    CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "in.xml:4:"));
    CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "last=\"1700000000122\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "first=\"1700000000123\""));
    /* the whole batch before it was delivered, the one holding it not */
    CU_ASSERT_EQUAL(delivered, 2);
    CU_ASSERT_EQUAL(sink.calls, 1);
    dip_dynbuf_free(&doc);
}

int dip_suite_flow(void)
{
    CU_pSuite s = CU_add_suite("flow", NULL, NULL);
    if (!s) return -1;
    CU_add_test(s, "addr_parse_and_format_round_trip_rfc5952", test_addr_parse_and_format_round_trip_rfc5952);
    CU_add_test(s, "addr_cmp_equals_reference_order", test_addr_cmp_equals_reference_order);
    CU_add_test(s, "addr_format_v6_equals_inet_ntop", test_addr_format_v6_equals_inet_ntop);
    CU_add_test(s, "longest_record_fits_the_attribute_buffer", test_longest_record_fits_the_attribute_buffer);
    CU_add_test(s, "xml_writer_equals_the_field_table", test_xml_writer_equals_the_field_table);
    CU_add_test(s, "addr_parse_rejects_garbage", test_addr_parse_rejects_garbage);
    CU_add_test(s, "addr_order_puts_ipv4_before_ipv6", test_addr_order_puts_ipv4_before_ipv6);
    CU_add_test(s, "flow_xml_round_trip_with_and_without_optional_fields",
                test_flow_xml_round_trip_with_and_without_optional_fields);
    CU_add_test(s, "flow_from_attrs_names_the_bad_attribute", test_flow_from_attrs_names_the_bad_attribute);
    CU_add_test(s, "batch_round_trip_mixed_records", test_batch_round_trip_mixed_records);
    CU_add_test(s, "batch_built_one_record_at_a_time_equals_encode", test_batch_built_one_record_at_a_time_equals_encode);
    CU_add_test(s, "batch_truncated_at_every_byte_needs_more_or_fails",
                test_batch_truncated_at_every_byte_needs_more_or_fails);
    CU_add_test(s, "batch_corruption_at_every_byte_is_detected", test_batch_corruption_at_every_byte_is_detected);
    CU_add_test(s, "batch_stream_of_concatenated_batches", test_batch_stream_of_concatenated_batches);
    CU_add_test(s, "random_id_is_deterministic_keyed_and_spread", test_random_id_is_deterministic_keyed_and_spread);
    CU_add_test(s, "siphash_equals_openssl_on_random_inputs", test_siphash_equals_openssl_on_random_inputs);
    CU_add_test(s, "structured_id_preserves_key_order", test_structured_id_preserves_key_order);
    CU_add_test(s, "xml_reader_gives_the_same_batches_however_the_input_is_split",
                test_xml_reader_gives_the_same_batches_however_the_input_is_split);
    CU_add_test(s, "reader_tells_batches_from_xml_by_the_first_bytes_however_split",
                test_reader_tells_batches_from_xml_by_the_first_bytes_however_split);
    CU_add_test(s, "xml_reader_refuses_billion_laughs_at_its_doctype",
                test_xml_reader_refuses_billion_laughs_at_its_doctype);
    CU_add_test(s, "xml_reader_refuses_external_entities_and_undeclared_references",
                test_xml_reader_refuses_external_entities_and_undeclared_references);
    CU_add_test(s, "xml_reader_refuses_a_flow_that_ends_before_it_starts",
                test_xml_reader_refuses_a_flow_that_ends_before_it_starts);
    return 0;
}
