/* test_route_map.c - the cluster map (src/route/map.h): even splitting of
 * every tank's key space and of ID ranges, routing of random IPv4 and IPv6
 * records, child ranges against analysed XPath queries (IPv4 before IPv6 in
 * document order against the analyser's numeric space), local maps written,
 * validated against dipstorage.xsd and read back, and broken maps reported
 * with file and line. */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/dynbuf.h"
#include "common/schema.h"
#include "route/map.h"
#include "xpath/xpath.h"

#define ALL_ONES6 "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"

/* splitmix64: a small deterministic generator for the random records */
static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static struct dip_map_key key_of(int tank, const char *text)
{
    struct dip_map_key k;
    CU_ASSERT_EQUAL_FATAL(dip_map_key_parse(tank, text, &k), DIP_OK);
    return k;
}

static struct dip_map_range range_of(int tank, const char *from, const char *to)
{
    struct dip_map_range r;
    dip_map_range_full(tank, &r);
    r.from = key_of(tank, from);
    r.to = key_of(tank, to);
    return r;
}

static void range_text(int tank, const struct dip_map_range *r, char *out, size_t cap)
{
    char a[DIP_ADDR_TEXT_MAX], b[DIP_ADDR_TEXT_MAX];
    dip_map_key_format(tank, &r->from, a, sizeof a);
    dip_map_key_format(tank, &r->to, b, sizeof b);
    snprintf(out, cap, "%s-%s", a, b);
}

/* Returns: 1 when parts[0..n-1] tile r: in order, no gap, no overlap, the
 * first starting at r's start, the last ending at its end (keys and IDs). */
static int tiles(int tank, const struct dip_map_range *r, const struct dip_map_range *parts, size_t n)
{
    if (dip_map_key_cmp(tank, &parts[0].from, &r->from) || parts[0].id_from != r->id_from) return 0;
    for (size_t i = 0; i < n; i++) {
        if (dip_map_key_cmp(tank, &parts[i].from, &parts[i].to) > 0 || parts[i].id_from > parts[i].id_to) return 0;
        if (i + 1 < n) {
            struct dip_map_key next;
            if (!dip_map_key_next(tank, &parts[i].to, &next)) return 0;
            if (dip_map_key_cmp(tank, &next, &parts[i + 1].from) || parts[i].id_to + 1 != parts[i + 1].id_from)
                return 0;
        }
    }
    return dip_map_key_cmp(tank, &parts[n - 1].to, &r->to) == 0 && parts[n - 1].id_to == r->id_to;
}

static void test_split_of_every_tank_tiles_the_range(void)
{
    static const size_t counts[] = { 1, 2, 3, 4, 16, 256, 300 };
    static struct dip_map_range parts[300], sub[3];
    for (int tank = 0; tank < DIP_TANK_KEYS; tank++)
        for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
            struct dip_map_range full;
            dip_map_range_full(tank, &full);
            size_t n = counts[c];
            CU_ASSERT_EQUAL_FATAL(dip_map_split(tank, &full, n, parts, NULL), DIP_OK);
            CU_ASSERT(tiles(tank, &full, parts, n));
            /* every part splits again into three */
            for (size_t i = 0; i < n; i++) {
                CU_ASSERT_EQUAL_FATAL(dip_map_split(tank, &parts[i], 3, sub, NULL), DIP_OK);
                CU_ASSERT(tiles(tank, &parts[i], sub, 3));
            }
        }
}

static void expect_split(int tank, const char *from, const char *to, size_t n, const char *const *want)
{
    struct dip_map_range r = range_of(tank, from, to), parts[8];
    char text[128];
    CU_ASSERT_EQUAL_FATAL(dip_map_split(tank, &r, n, parts, NULL), DIP_OK);
    CU_ASSERT(tiles(tank, &r, parts, n));
    for (size_t i = 0; i < n; i++) {
        range_text(tank, &parts[i], text, sizeof text);
        CU_ASSERT_STRING_EQUAL(text, want[i]);
    }
}

static void test_split_at_the_coarsest_octet_boundary(void)
{
    static const char *const whole4[] = { "0.0.0.0-63.255.255.255", "64.0.0.0-127.255.255.255",
                                          "128.0.0.0-191.255.255.255", "192.0.0.0-" ALL_ONES6 };
    expect_split(DIP_KEY_SRC, "0.0.0.0", ALL_ONES6, 4, whole4);
    static const char *const whole3[] = { "0.0.0.0-85.255.255.255", "86.0.0.0-170.255.255.255",
                                          "171.0.0.0-" ALL_ONES6 };
    expect_split(DIP_KEY_DST, "0.0.0.0", ALL_ONES6, 3, whole3);
    static const char *const ten[] = { "10.0.0.0-10.63.255.255", "10.64.0.0-10.127.255.255",
                                       "10.128.0.0-10.191.255.255", "10.192.0.0-10.255.255.255" };
    expect_split(DIP_KEY_SRC, "10.0.0.0", "10.255.255.255", 4, ten);
    /* not aligned: the first and last parts are clipped */
    static const char *const odd[] = { "10.0.0.5-10.0.1.255", "10.0.2.0-10.0.3.7" };
    expect_split(DIP_KEY_SRC, "10.0.0.5", "10.0.3.7", 2, odd);
    /* fewer IPv4 addresses than parts: IPv6 is split among the others */
    static const char *const few4[] = { "255.255.255.254-255.255.255.255", "::-55ff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                                        "5600::-aaff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ab00::-" ALL_ONES6 };
    expect_split(DIP_KEY_SRC, "255.255.255.254", ALL_ONES6, 4, few4);
    /* IPv6 around the IPv4-mapped block: no part starts or ends inside it */
    static const char *const around[] = { "::fffe:0:0-::fffe:ffff:ffff", "::1:0:0:0-::1:0:ffff:ffff" };
    expect_split(DIP_KEY_SRC, "::fffe:0:0", "::1:0:ffff:ffff", 2, around);
    static const char *const ports[] = { "0-16383", "16384-32767", "32768-49151", "49152-65535" };
    expect_split(DIP_KEY_SPORT, "0", "65535", 4, ports);
    static const char *const ports3[] = { "1000-1003", "1004-1006", "1007-1009" };
    expect_split(DIP_KEY_DPORT, "1000", "1009", 3, ports3);

    struct dip_map_range ids, parts[4];
    dip_map_range_full(DIP_KEY_SRC, &ids);
    CU_ASSERT_EQUAL(dip_map_split(DIP_KEY_SRC, &ids, 4, parts, NULL), DIP_OK);
    CU_ASSERT_EQUAL(parts[0].id_from, 0);
    CU_ASSERT_EQUAL(parts[0].id_to, 0x3fffffffffffffffull);
    CU_ASSERT_EQUAL(parts[3].id_from, 0xc000000000000000ull);
    CU_ASSERT_EQUAL(parts[3].id_to, UINT64_MAX);
}

static void test_split_refuses_more_parts_than_keys(void)
{
    struct dip_map_range parts[4];
    struct dip_errbuf eb = { "" };
    struct dip_map_range r = range_of(DIP_KEY_SRC, "10.0.0.1", "10.0.0.2");
    CU_ASSERT_EQUAL(dip_map_split(DIP_KEY_SRC, &r, 3, parts, &eb), DIP_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "fewer than 3 keys"));
    r = range_of(DIP_KEY_DPORT, "5", "6");
    CU_ASSERT_EQUAL(dip_map_split(DIP_KEY_DPORT, &r, 3, parts, NULL), DIP_EINVAL);
    CU_ASSERT_EQUAL(dip_map_split(DIP_KEY_DPORT, &r, 2, parts, NULL), DIP_OK);
    r = range_of(DIP_KEY_DPORT, "6", "5");
    CU_ASSERT_EQUAL(dip_map_split(DIP_KEY_DPORT, &r, 1, parts, NULL), DIP_EINVAL);
}

static void test_key_order_puts_ipv4_before_ipv6_and_skips_the_mapped_block(void)
{
    struct dip_map_key k, next;
    char text[DIP_ADDR_TEXT_MAX];
    k = key_of(DIP_KEY_SRC, "255.255.255.255");
    CU_ASSERT(dip_map_key_next(DIP_KEY_SRC, &k, &next));
    dip_map_key_format(DIP_KEY_SRC, &next, text, sizeof text);
    CU_ASSERT_STRING_EQUAL(text, "::");
    k = key_of(DIP_KEY_SRC, "::fffe:ffff:ffff");
    CU_ASSERT(dip_map_key_next(DIP_KEY_SRC, &k, &next));
    dip_map_key_format(DIP_KEY_SRC, &next, text, sizeof text);
    CU_ASSERT_STRING_EQUAL(text, "::1:0:0:0");
    k = key_of(DIP_KEY_SRC, "10.0.0.255");
    CU_ASSERT(dip_map_key_next(DIP_KEY_SRC, &k, &next));
    dip_map_key_format(DIP_KEY_SRC, &next, text, sizeof text);
    CU_ASSERT_STRING_EQUAL(text, "10.0.1.0");
    k = key_of(DIP_KEY_DST, ALL_ONES6);
    CU_ASSERT_FALSE(dip_map_key_next(DIP_KEY_DST, &k, &next));
    k = key_of(DIP_KEY_SPORT, "65535");
    CU_ASSERT_FALSE(dip_map_key_next(DIP_KEY_SPORT, &k, &next));
    struct dip_map_key a = key_of(DIP_KEY_SRC, "255.0.0.1"), b = key_of(DIP_KEY_SRC, "::1");
    CU_ASSERT(dip_map_key_cmp(DIP_KEY_SRC, &a, &b) < 0);
    struct dip_map_key p;
    CU_ASSERT_EQUAL(dip_map_key_parse(DIP_KEY_SPORT, "65536", &p), DIP_EINVAL);
    CU_ASSERT_EQUAL(dip_map_key_parse(DIP_KEY_SPORT, "022", &p), DIP_EINVAL);
    CU_ASSERT_EQUAL(dip_map_key_parse(DIP_KEY_SPORT, "10.0.0.1", &p), DIP_EINVAL);
    CU_ASSERT_EQUAL(dip_map_key_parse(DIP_KEY_SRC, "80", &p), DIP_EINVAL);
}

/* ---- local maps ---- */

static struct dip_map *local_map(size_t leaves, size_t fanout, enum dip_map_strategy strategy)
{
    struct dip_map_local_options o;
    dip_map_local_options_default(&o);
    o.leaves = leaves;
    o.fanout = fanout;
    o.strategy = strategy;
    struct dip_map *m = NULL;
    struct dip_errbuf eb = { "" };
    int rc = dip_map_build_local(&o, &m, &eb);
    if (rc) fprintf(stderr, "build_local: %s\n", eb.msg);
    CU_ASSERT_EQUAL(rc, DIP_OK);
    return m;
}

static const char *node_of(const struct dip_map *m, int mi) { return m->nodes[m->members[mi].node].name; }

static void test_build_local_shapes_names_and_ports(void)
{
    struct dip_map *m = local_map(4, 16, DIP_MAP_STRUCTURED);
    CU_ASSERT_FATAL(m != NULL);
    CU_ASSERT_STRING_EQUAL(m->name, "local");
    CU_ASSERT_EQUAL(m->nnodes, 1 + 4 * 5);
    CU_ASSERT_STRING_EQUAL(m->nodes[0].name, "front");
    CU_ASSERT_EQUAL(m->nodes[0].roles, DIP_ROLE_COLLECTOR | DIP_ROLE_ACCESS);
    for (size_t i = 0; i < m->nnodes; i++) {
        CU_ASSERT_EQUAL(m->nodes[i].port, 7700 + (int)i);
        CU_ASSERT_STRING_EQUAL(m->nodes[i].host, "127.0.0.1");
    }
    CU_ASSERT_STRING_EQUAL(m->nodes[1].name, "src-root");
    CU_ASSERT_STRING_EQUAL(m->nodes[2].name, "src-leaf-0");
    CU_ASSERT_STRING_EQUAL(m->nodes[6].name, "dst-root");
    CU_ASSERT_STRING_EQUAL(m->front.client, "127.0.0.1:7600");
    CU_ASSERT_EQUAL(m->front.nlisten, 3);
    CU_ASSERT_STRING_EQUAL(m->front.listen[0], "udp://127.0.0.1:2055");
    CU_ASSERT_STRING_EQUAL(m->front.listen[1], "udp://127.0.0.1:4739");
    CU_ASSERT_STRING_EQUAL(m->front.listen[2], "tcp://127.0.0.1:4739");
    for (int t = 0; t < DIP_TANK_KEYS; t++) {
        const struct dip_map_member *root = &m->members[m->roots[t]];
        CU_ASSERT_FALSE(root->leaf);
        CU_ASSERT_EQUAL(root->parent, -1);
        CU_ASSERT_EQUAL(root->nchildren, 4);
        CU_ASSERT_EQUAL(root->tank, t);
        for (size_t c = 0; c < root->nchildren; c++) {
            CU_ASSERT(m->members[root->children[c]].leaf);
            CU_ASSERT_EQUAL(m->members[root->children[c]].parent, m->roots[t]);
        }
    }
    int ni = dip_map_node_find(m, "sport-leaf-2");
    CU_ASSERT(ni > 0);
    int mi = dip_map_member_of_node(m, ni);
    CU_ASSERT(mi >= 0 && m->members[mi].leaf && m->members[mi].tank == DIP_KEY_SPORT);
    CU_ASSERT_EQUAL(dip_map_member_of_node(m, 0), -1);
    CU_ASSERT_EQUAL(dip_map_node_find(m, "nobody"), -1);
    dip_map_free(m);

    /* more leaves than the fanout: root -> ceil(20/16) = 2 indexers -> 10 leaves each */
    m = local_map(20, 16, DIP_MAP_STRUCTURED);
    CU_ASSERT_FATAL(m != NULL);
    CU_ASSERT_EQUAL(m->nnodes, 1 + 4 * (1 + 2 + 20));
    const struct dip_map_member *root = &m->members[m->roots[DIP_KEY_DST]];
    CU_ASSERT_EQUAL(root->nchildren, 2);
    for (size_t c = 0; c < 2; c++) {
        const struct dip_map_member *idx = &m->members[root->children[c]];
        CU_ASSERT_FALSE(idx->leaf);
        CU_ASSERT_EQUAL(idx->nchildren, 10);
    }
    CU_ASSERT_STRING_EQUAL(node_of(m, root->children[1]), "dst-idx-1");
    CU_ASSERT_STRING_EQUAL(node_of(m, m->members[root->children[1]].children[9]), "dst-leaf-19");
    dip_map_free(m);

    /* one leaf: the tank is that leaf */
    m = local_map(1, 16, DIP_MAP_STRUCTURED);
    CU_ASSERT_FATAL(m != NULL);
    CU_ASSERT_EQUAL(m->nnodes, 5);
    CU_ASSERT(m->members[m->roots[DIP_KEY_SRC]].leaf);
    CU_ASSERT_STRING_EQUAL(node_of(m, m->roots[DIP_KEY_DPORT]), "dport-leaf-0");
    dip_map_free(m);

    struct dip_map_local_options o;
    dip_map_local_options_default(&o);
    o.fanout = 1;
    CU_ASSERT_EQUAL(dip_map_build_local(&o, &m, NULL), DIP_EINVAL);
    dip_map_local_options_default(&o);
    o.base_port = 65530;
    CU_ASSERT_EQUAL(dip_map_build_local(&o, &m, NULL), DIP_EINVAL);
    dip_map_local_options_default(&o);
    o.host = "bad host";
    CU_ASSERT_EQUAL(dip_map_build_local(&o, &m, NULL), DIP_EINVAL);
}

static void random_flow(uint64_t *state, struct dip_flow *f)
{
    memset(f, 0, sizeof *f);
    struct dip_addr *addrs[2] = { &f->src, &f->dst };
    for (int i = 0; i < 2; i++) {
        uint64_t r = next_random(state);
        switch (r % 4) {
        case 0: /* IPv6 anywhere */
            for (int b = 0; b < 16; b++) addrs[i]->b[b] = (uint8_t)next_random(state);
            if (dip_addr_is_v4(addrs[i])) addrs[i]->b[0] = 0x20;
            break;
        case 1: /* IPv6 with a small value, below the mapped block */
            memset(addrs[i]->b, 0, 16);
            addrs[i]->b[15] = (uint8_t)(r >> 8);
            addrs[i]->b[11] = (uint8_t)(r >> 16) & 1;
            break;
        default: dip_addr_from_v4(addrs[i], (uint32_t)(r >> 32)); break;
        }
    }
    uint64_t r = next_random(state);
    f->sport = (uint16_t)r;
    f->dport = (uint16_t)(r >> 16) & (r & 0x10000000000ull ? 0xffff : 0x3ff);
    f->id = next_random(state);
}

/* Routes n random records from each root down to a leaf; every member on the
 * way owns the record, and the leaf is the only leaf that does. */
static void route_records(const struct dip_map *m, size_t n, int check_unique)
{
    uint64_t state = 42;
    for (size_t i = 0; i < n; i++) {
        struct dip_flow f;
        random_flow(&state, &f);
        for (int t = 0; t < DIP_TANK_KEYS; t++) {
            int mi = m->roots[t];
            CU_ASSERT(dip_map_owns(m, mi, &f));
            while (!m->members[mi].leaf) {
                size_t c = dip_map_route(m, mi, &f);
                CU_ASSERT_FATAL(c < m->members[mi].nchildren);
                mi = m->members[mi].children[c];
                CU_ASSERT(dip_map_owns(m, mi, &f));
            }
            if (!check_unique) continue;
            size_t owners = 0;
            for (size_t j = 0; j < m->nmembers; j++)
                if (m->members[j].tank == t && m->members[j].leaf && dip_map_owns(m, (int)j, &f)) owners++;
            CU_ASSERT_EQUAL(owners, 1);
        }
    }
}

static void test_route_random_records_to_the_owning_child(void)
{
    struct dip_map *m = local_map(4, 16, DIP_MAP_STRUCTURED);
    CU_ASSERT_FATAL(m != NULL);
    route_records(m, 2000, 1);
    /* exact children for known keys */
    struct dip_flow f;
    memset(&f, 0, sizeof f);
    dip_addr_from_v4(&f.src, 0x0a010203);
    dip_addr_parse("2001:db8::1", 11, &f.dst);
    f.sport = 16384;
    f.dport = 16383;
    CU_ASSERT_EQUAL(dip_map_route(m, m->roots[DIP_KEY_SRC], &f), 0);
    CU_ASSERT_EQUAL(dip_map_route(m, m->roots[DIP_KEY_DST], &f), 3);
    CU_ASSERT_EQUAL(dip_map_route(m, m->roots[DIP_KEY_SPORT], &f), 1);
    CU_ASSERT_EQUAL(dip_map_route(m, m->roots[DIP_KEY_DPORT], &f), 0);
    dip_addr_from_v4(&f.src, 0xc0000000);
    CU_ASSERT_EQUAL(dip_map_route(m, m->roots[DIP_KEY_SRC], &f), 3);
    dip_addr_from_v4(&f.src, 0xbfffffff);
    CU_ASSERT_EQUAL(dip_map_route(m, m->roots[DIP_KEY_SRC], &f), 2);
    dip_map_free(m);

    m = local_map(20, 16, DIP_MAP_STRUCTURED); /* two levels */
    CU_ASSERT_FATAL(m != NULL);
    route_records(m, 1000, 1);
    dip_map_free(m);
    m = local_map(300, 16, DIP_MAP_STRUCTURED); /* three levels */
    CU_ASSERT_FATAL(m != NULL);
    route_records(m, 1000, 0);
    dip_map_free(m);

    m = local_map(7, 16, DIP_MAP_RANDOM); /* by flow ID */
    CU_ASSERT_FATAL(m != NULL);
    route_records(m, 1000, 1);
    f.id = 0;
    CU_ASSERT_EQUAL(dip_map_route(m, m->roots[DIP_KEY_SRC], &f), 0);
    f.id = UINT64_MAX;
    CU_ASSERT_EQUAL(dip_map_route(m, m->roots[DIP_KEY_SRC], &f), 6);
    dip_map_free(m);
}

/* ---- queries ---- */

static struct dip_xpath *compile(const char *text)
{
    struct dip_xpath *q = NULL;
    struct dip_xpath_error err;
    CU_ASSERT_EQUAL_FATAL(dip_xpath_compile(text, strlen(text), &q, &err), DIP_OK);
    return q;
}

/* Asserts which children of tank's root may match q: want is a string of
 * '1' and '0', one per child. */
static void expect_children(const struct dip_map *m, int tank, const char *query, const char *want)
{
    struct dip_xpath *q = compile(query);
    const struct dip_map_member *root = &m->members[m->roots[tank]];
    CU_ASSERT_EQUAL(root->nchildren, strlen(want));
    char got[DIP_MAP_MAX_CHILDREN + 1];
    size_t i;
    for (i = 0; i < root->nchildren && i < DIP_MAP_MAX_CHILDREN; i++)
        got[i] = dip_map_may_match(m, root->children[i], q) ? '1' : '0';
    got[i] = 0;
    if (strcmp(got, want))
        fprintf(stderr, "\n%s on %s: children %s, want %s\n", query, dip_tank_key_name(tank), got, want);
    CU_ASSERT_STRING_EQUAL(got, want);
    CU_ASSERT(dip_map_may_match(m, m->roots[tank], q) == (strchr(want, '1') != NULL));
    dip_xpath_free(q);
}

static void test_may_match_against_analysed_queries(void)
{
    struct dip_map *m = local_map(4, 16, DIP_MAP_STRUCTURED);
    CU_ASSERT_FATAL(m != NULL);
    expect_children(m, DIP_KEY_SRC, "//flow[@src='10.1.2.3']", "1000");
    expect_children(m, DIP_KEY_DST, "//flow[@src='10.1.2.3']", "1111");
    expect_children(m, DIP_KEY_DPORT, "//flow[@dport=22]", "1000");
    expect_children(m, DIP_KEY_SPORT, "//flow[@dport=22]", "1111");
    expect_children(m, DIP_KEY_DPORT, "//flow[@dport>=16383 and @dport<=16384]", "1100");
    expect_children(m, DIP_KEY_SRC, "//flow[starts-with(@src,'192.')]", "0001");
    /* 7.*, 70-79.* and IPv6 7...: */
    expect_children(m, DIP_KEY_SRC, "//flow[starts-with(@src,'7')]", "1101");
    /* the last child owns 192.0.0.0 up to all of IPv6 */
    expect_children(m, DIP_KEY_SRC, "//flow[@src='::1']", "0001");
    expect_children(m, DIP_KEY_SRC, "//flow[@src='2001:db8::1']", "0001");
    expect_children(m, DIP_KEY_SRC, "//flow[@src='200.1.1.1']", "0001");
    expect_children(m, DIP_KEY_SRC, "//flow[@src='10.1.1.1']", "1000");
    expect_children(m, DIP_KEY_DST, "//flow[@dst='10.1.1.1' or @dst='ffff::1']", "1001");
    for (int t = 0; t < DIP_TANK_KEYS; t++) expect_children(m, t, "//flow[@bytes>5]", "1111");
    expect_children(m, DIP_KEY_SRC, "//flow[@src='10.1.1.1' and @src='10.1.1.2']", "0000");
    dip_map_free(m);

    /* under the random strategy every child may hold anything */
    m = local_map(4, 16, DIP_MAP_RANDOM);
    CU_ASSERT_FATAL(m != NULL);
    expect_children(m, DIP_KEY_SRC, "//flow[@src='10.1.2.3']", "1111");
    expect_children(m, DIP_KEY_DPORT, "//flow[@dport=22]", "1111");
    dip_map_free(m);
}

/* A child owning the IPv6 addresses :: to ::1:0:0:0 spans the IPv4-mapped
 * block numerically but owns none of its addresses. */
static const char ipv6_map[] =
    "<cluster name=\"v6\" strategy=\"structured\">\n"
    "  <node id=\"r\" address=\"[::1]:7001\" roles=\"indexer\"/>\n"
    "  <node id=\"a\" address=\"localhost:7002\" roles=\"leaf\"/>\n"
    "  <node id=\"b\" address=\"127.0.0.1:7003\" roles=\"leaf\"/>\n"
    "  <node id=\"c\" address=\"127.0.0.1:7004\" roles=\"leaf\"/>\n"
    "  <tank key=\"src\"><indexer node=\"r\">\n"
    "    <leaf node=\"a\" from=\"0.0.0.0\" to=\"255.255.255.255\"/>\n"
    "    <leaf node=\"b\" from=\"::\" to=\"::1:0:0:0\"/>\n"
    "    <leaf node=\"c\" from=\"::1:0:0:1\" to=\"" ALL_ONES6 "\"/>\n"
    "  </indexer></tank>\n"
    "</cluster>\n";

static void test_may_match_excludes_the_mapped_block_from_ipv6_ranges(void)
{
    struct dip_map *m = NULL;
    struct dip_errbuf eb = { "" };
    int rc = dip_map_parse(ipv6_map, strlen(ipv6_map), "v6.xml", &m, &eb);
    if (rc) fprintf(stderr, "%s\n", eb.msg);
    CU_ASSERT_EQUAL_FATAL(rc, DIP_OK);
    CU_ASSERT_STRING_EQUAL(m->nodes[0].host, "::1");
    CU_ASSERT_EQUAL(m->nodes[0].port, 7001);
    expect_children(m, DIP_KEY_SRC, "//flow[@src='10.1.1.1']", "100");
    expect_children(m, DIP_KEY_SRC, "//flow[@src='::1']", "010");
    expect_children(m, DIP_KEY_SRC, "//flow[@src='::1:0:0:0']", "010");
    expect_children(m, DIP_KEY_SRC, "//flow[@src='::1:0:0:1']", "001");
    expect_children(m, DIP_KEY_SRC, "//flow[starts-with(@src,'255.')]", "100");
    char text[128];
    dip_map_range_text(m, m->members[m->roots[DIP_KEY_SRC]].children[1], text, sizeof text);
    CU_ASSERT_STRING_EQUAL(text, "::-::1:0:0:0");
    /* routing agrees */
    struct dip_flow f;
    memset(&f, 0, sizeof f);
    dip_addr_parse("::ffff", 6, &f.src);
    CU_ASSERT_EQUAL(dip_map_route(m, m->roots[DIP_KEY_SRC], &f), 1);
    dip_addr_from_v4(&f.src, 0xffffffff);
    CU_ASSERT_EQUAL(dip_map_route(m, m->roots[DIP_KEY_SRC], &f), 0);
    dip_addr_parse("::1:0:0:1", 9, &f.src);
    CU_ASSERT_EQUAL(dip_map_route(m, m->roots[DIP_KEY_SRC], &f), 2);
    dip_map_free(m);
}

static void test_range_text_and_attributes(void)
{
    struct dip_map *m = local_map(4, 16, DIP_MAP_STRUCTURED);
    CU_ASSERT_FATAL(m != NULL);
    char text[256];
    const struct dip_map_member *src = &m->members[m->roots[DIP_KEY_SRC]];
    dip_map_range_text(m, src->children[0], text, sizeof text);
    CU_ASSERT_STRING_EQUAL(text, "0.0.0.0-63.255.255.255");
    dip_map_range_text(m, src->children[3], text, sizeof text);
    CU_ASSERT_STRING_EQUAL(text, "192.0.0.0-" ALL_ONES6);
    dip_map_range_text(m, m->roots[DIP_KEY_SRC], text, sizeof text);
    CU_ASSERT_STRING_EQUAL(text, "0.0.0.0-" ALL_ONES6);
    dip_map_range_text(m, m->members[m->roots[DIP_KEY_SPORT]].children[0], text, sizeof text);
    CU_ASSERT_STRING_EQUAL(text, "0-16383");
    dip_map_range_attrs(m, src->children[0], text, sizeof text);
    CU_ASSERT_STRING_EQUAL(text, "from=\"0.0.0.0\" to=\"63.255.255.255\"");
    size_t full = strlen(text); /* snprintf style: the whole length, truncated text */
    CU_ASSERT_EQUAL(dip_map_range_attrs(m, src->children[0], text, 8), (int)full);
    CU_ASSERT_EQUAL(strlen(text), 7);
    dip_map_free(m);
    m = local_map(4, 16, DIP_MAP_RANDOM);
    CU_ASSERT_FATAL(m != NULL);
    src = &m->members[m->roots[DIP_KEY_SRC]];
    dip_map_range_text(m, src->children[0], text, sizeof text);
    CU_ASSERT_STRING_EQUAL(text, "id 0000000000000000-3fffffffffffffff");
    dip_map_range_attrs(m, src->children[3], text, sizeof text);
    CU_ASSERT_STRING_EQUAL(text, "id-from=\"c000000000000000\" id-to=\"ffffffffffffffff\"");
    dip_map_free(m);
}

/* ---- writing and reading back ---- */

static void round_trip(const struct dip_map_local_options *o, const char *dir, const char **expect_lines)
{
    struct dip_map *m = NULL, *back = NULL;
    struct dip_errbuf eb = { "" };
    CU_ASSERT_EQUAL_FATAL(dip_map_build_local(o, &m, &eb), DIP_OK);
    char path[512];
    snprintf(path, sizeof path, "%s/cluster.xml", dir);
    int rc = dip_map_write(m, path, &eb);
    if (rc) fprintf(stderr, "write: %s\n", eb.msg);
    CU_ASSERT_EQUAL_FATAL(rc, DIP_OK);
    /* what xmllint --noout --schema dipstorage.xsd checks */
    const struct dip_schema *schema;
    CU_ASSERT_EQUAL_FATAL(dip_schema_shared(&schema, &eb), DIP_OK);
    struct dip_schema_report rep;
    rc = dip_schema_validate_file(schema, path, NULL, NULL, &rep, &eb);
    if (rc) fprintf(stderr, "validate: %s\n", eb.msg);
    CU_ASSERT_EQUAL(rc, DIP_OK);
    CU_ASSERT_EQUAL(rep.kind, DIP_DOC_CLUSTER);
    rc = dip_map_load(path, &back, &eb);
    if (rc) fprintf(stderr, "load: %s\n", eb.msg);
    CU_ASSERT_EQUAL_FATAL(rc, DIP_OK);
    CU_ASSERT(dip_map_equal(m, back));
    CU_ASSERT(dip_map_equal(back, m));
    /* the text is stable */
    struct dip_dynbuf a, b;
    dip_dynbuf_init(&a, 1 << 24);
    dip_dynbuf_init(&b, 1 << 24);
    CU_ASSERT_EQUAL(dip_map_format(m, &a), DIP_OK);
    CU_ASSERT_EQUAL(dip_map_format(back, &b), DIP_OK);
    CU_ASSERT(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
    for (size_t i = 0; expect_lines && expect_lines[i]; i++) {
        int found = strstr((const char *)a.data, expect_lines[i]) != NULL;
        if (!found) fprintf(stderr, "\nmissing line: %s\n", expect_lines[i]);
        CU_ASSERT(found);
    }
    /* a changed map differs, and replaces the file */
    back->epoch++;
    CU_ASSERT_FALSE(dip_map_equal(m, back));
    CU_ASSERT_EQUAL(dip_map_write(back, path, NULL), DIP_OK);
    struct dip_map *again = NULL;
    CU_ASSERT_EQUAL_FATAL(dip_map_load(path, &again, NULL), DIP_OK);
    CU_ASSERT_EQUAL(again->epoch, m->epoch + 1);
    CU_ASSERT(dip_map_equal(again, back));
    dip_dynbuf_free(&a);
    dip_dynbuf_free(&b);
    dip_map_free(again);
    dip_map_free(back);
    dip_map_free(m);
    unlink(path);
}

static void test_written_map_validates_and_reads_back_identically(void)
{
    char dir[] = "/tmp/dip-test-map-XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    struct dip_map_local_options o;
    dip_map_local_options_default(&o);
    o.leaf_memory = 268435456;
    static const char *lines[] = {
        "<cluster name=\"local\" strategy=\"structured\" epoch=\"1\" leaf-memory=\"268435456\">",
        "<node id=\"front\" address=\"127.0.0.1:7700\" roles=\"collector access\"/>",
        "<node id=\"src-root\" address=\"127.0.0.1:7701\" roles=\"indexer\"/>",
        "<node id=\"src-leaf-0\" address=\"127.0.0.1:7702\" roles=\"leaf\"/>",
        "<front node=\"front\" client=\"127.0.0.1:7600\">",
        "<listen url=\"tcp://127.0.0.1:4739\"/>",
        "<tank key=\"src\">\n    <indexer node=\"src-root\">\n"
        "      <leaf node=\"src-leaf-0\" from=\"0.0.0.0\" to=\"63.255.255.255\"/>",
        "<leaf node=\"src-leaf-3\" from=\"192.0.0.0\" to=\"" ALL_ONES6 "\"/>",
        "<leaf node=\"sport-leaf-0\" from=\"0\" to=\"16383\"/>",
        NULL,
    };
    round_trip(&o, dir, lines);
    dip_map_local_options_default(&o);
    o.strategy = DIP_MAP_RANDOM;
    static const char *random_lines[] = {
        "<leaf node=\"dst-leaf-0\" id-from=\"0000000000000000\" id-to=\"3fffffffffffffff\"/>",
        NULL,
    };
    round_trip(&o, dir, random_lines);
    dip_map_local_options_default(&o);
    o.leaves = 40;
    o.fanout = 4; /* three levels */
    o.host = "::1";
    o.name = "lab & <co>";
    static const char *v6_lines[] = {
        "<node id=\"front\" address=\"[::1]:7700\"",
        "<front node=\"front\" client=\"[::1]:7600\">",
        "<listen url=\"udp://[::1]:2055\"/>",
        "name=\"lab &amp; &lt;co&gt;\"",
        NULL,
    };
    round_trip(&o, dir, v6_lines);
    dip_map_local_options_default(&o);
    o.leaves = 1;
    round_trip(&o, dir, NULL);
    rmdir(dir);
    struct dip_map *m = NULL;
    struct dip_errbuf eb = { "" };
    CU_ASSERT_NOT_EQUAL(dip_map_load("/nonexistent/cluster.xml", &m, &eb), DIP_OK);
    CU_ASSERT_PTR_NULL(m);
}

/* ---- broken maps ---- */

#define HEAD                                                                                                          \
    "<cluster name=\"t\" strategy=\"structured\">\n"                 /* line 1 */                                    \
    "<node id=\"r\" address=\"127.0.0.1:7001\" roles=\"indexer\"/>\n" /* 2 */                                          \
    "<node id=\"a\" address=\"127.0.0.1:7002\" roles=\"leaf\"/>\n"    /* 3 */                                          \
    "<node id=\"b\" address=\"127.0.0.1:7003\" roles=\"leaf\"/>\n"    /* 4 */                                          \
    "<tank key=\"src\">\n"                                            /* 5 */
#define TAIL "</indexer>\n</tank>\n</cluster>\n"

struct broken_case {
    const char *why;
    const char *xml;
    const char *where; /* "t.xml:LINE:" */
    const char *what;  /* part of the message */
};

static const struct broken_case broken[] = {
    { "a gap between children",
      HEAD "<indexer node=\"r\">\n"
           "<leaf node=\"a\" from=\"0.0.0.0\" to=\"9.255.255.255\"/>\n"
           "<leaf node=\"b\" from=\"11.0.0.0\" to=\"" ALL_ONES6 "\"/>\n" TAIL,
      "t.xml:8:", "must start at 10.0.0.0" },
    { "overlapping children",
      HEAD "<indexer node=\"r\">\n"
           "<leaf node=\"a\" from=\"0.0.0.0\" to=\"9.255.255.255\"/>\n"
           "<leaf node=\"b\" from=\"9.0.0.0\" to=\"" ALL_ONES6 "\"/>\n" TAIL,
      "t.xml:8:", "must start at 10.0.0.0" },
    { "children out of order",
      HEAD "<indexer node=\"r\">\n"
           "<leaf node=\"a\" from=\"10.0.0.0\" to=\"" ALL_ONES6 "\"/>\n"
           "<leaf node=\"b\" from=\"0.0.0.0\" to=\"9.255.255.255\"/>\n" TAIL,
      "t.xml:7:", "where its parent's range starts" },
    { "children not reaching the parent's end",
      HEAD "<indexer node=\"r\">\n"
           "<leaf node=\"a\" from=\"0.0.0.0\" to=\"9.255.255.255\"/>\n"
           "<leaf node=\"b\" from=\"10.0.0.0\" to=\"255.255.255.255\"/>\n" TAIL,
      "t.xml:8:", "ends at 255.255.255.255" },
    { "a node serving two members",
      HEAD "<indexer node=\"r\">\n"
           "<leaf node=\"a\" from=\"0.0.0.0\" to=\"9.255.255.255\"/>\n"
           "<leaf node=\"a\" from=\"10.0.0.0\" to=\"" ALL_ONES6 "\"/>\n" TAIL,
      "t.xml:8:", "already serves the leaf member at line 7" },
    { "a port in an address tank",
      HEAD "<indexer node=\"r\">\n"
           "<leaf node=\"a\" from=\"0\" to=\"80\"/>\n"
           "<leaf node=\"b\" from=\"10.0.0.0\" to=\"" ALL_ONES6 "\"/>\n" TAIL,
      "t.xml:7:", "is not an address" },
    { "a range that ends before it starts",
      HEAD "<indexer node=\"r\">\n"
           "<leaf node=\"a\" from=\"9.0.0.0\" to=\"8.255.255.255\"/>\n"
           "<leaf node=\"b\" from=\"10.0.0.0\" to=\"" ALL_ONES6 "\"/>\n" TAIL,
      "t.xml:7:", "comes after" },
    { "a member without a range",
      HEAD "<indexer node=\"r\">\n"
           "<leaf node=\"a\"/>\n"
           "<leaf node=\"b\" from=\"10.0.0.0\" to=\"" ALL_ONES6 "\"/>\n" TAIL,
      "t.xml:7:", "needs both from and to" },
    { "a root owning less than the whole space",
      HEAD "<indexer node=\"r\" from=\"0.0.0.0\" to=\"9.255.255.255\">\n"
           "<leaf node=\"a\" from=\"0.0.0.0\" to=\"9.0.0.0\"/>\n"
           "<leaf node=\"b\" from=\"9.0.0.1\" to=\"9.255.255.255\"/>\n" TAIL,
      "t.xml:6:", "owns the whole key space" },
    { "ID ranges in a structured map",
      HEAD "<indexer node=\"r\">\n"
           "<leaf node=\"a\" id-from=\"0000000000000000\" id-to=\"7fffffffffffffff\"/>\n"
           "<leaf node=\"b\" from=\"10.0.0.0\" to=\"" ALL_ONES6 "\"/>\n" TAIL,
      "t.xml:7:", "random strategy" },
    { "a leaf on a node without the leaf role",
      "<cluster name=\"t\" strategy=\"structured\">\n"
      "<node id=\"a\" address=\"127.0.0.1:7002\" roles=\"indexer access\"/>\n"
      "<tank key=\"sport\">\n"
      "<leaf node=\"a\"/>\n"
      "</tank>\n</cluster>\n",
      "t.xml:4:", "lacks the role leaf" },
    { "an unknown node (schema keyref)",
      HEAD "<indexer node=\"r\">\n"
           "<leaf node=\"a\" from=\"0.0.0.0\" to=\"9.255.255.255\"/>\n"
           "<leaf node=\"zz\" from=\"10.0.0.0\" to=\"" ALL_ONES6 "\"/>\n" TAIL,
      "t.xml:8:", "zz" },
    { "a flow ID of 14 digits (schema)",
      "<cluster name=\"t\" strategy=\"random\">\n"
      "<node id=\"a\" address=\"127.0.0.1:7002\" roles=\"leaf\"/>\n"
      "<tank key=\"dport\">\n"
      "<leaf node=\"a\" id-from=\"00000000000000\"/>\n"
      "</tank>\n</cluster>\n",
      "t.xml:4:", "id-from" },
    { "random IDs that do not cover the parent",
      "<cluster name=\"t\" strategy=\"random\">\n"
      "<node id=\"r\" address=\"127.0.0.1:7001\" roles=\"indexer\"/>\n"
      "<node id=\"a\" address=\"127.0.0.1:7002\" roles=\"leaf\"/>\n"
      "<node id=\"b\" address=\"127.0.0.1:7003\" roles=\"leaf\"/>\n"
      "<tank key=\"dport\"><indexer node=\"r\">\n"
      "<leaf node=\"a\" id-from=\"0000000000000000\" id-to=\"7fffffffffffffff\"/>\n"
      "<leaf node=\"b\" id-from=\"8000000000000000\" id-to=\"fffffffffffffffe\"/>\n"
      "</indexer></tank>\n</cluster>\n",
      "t.xml:7:", "ends at fffffffffffffffe" },
    { "not well-formed",
      HEAD "<indexer node=\"r\">\n<leaf node=\"a\"></leef>\n" TAIL, "t.xml:7:", "" },
};

static void test_broken_maps_are_reported_with_file_and_line(void)
{
    for (size_t i = 0; i < sizeof broken / sizeof broken[0]; i++) {
        const struct broken_case *c = &broken[i];
        struct dip_map *m = (struct dip_map *)1;
        struct dip_errbuf eb = { "" };
        int rc = dip_map_parse(c->xml, strlen(c->xml), "t.xml", &m, &eb);
        int ok = rc != DIP_OK && m == NULL && strncmp(eb.msg, c->where, strlen(c->where)) == 0 &&
                 strstr(eb.msg, c->what) != NULL;
        if (!ok)
            fprintf(stderr, "\n%s: rc %d, message \"%s\"; want %s ... %s\n", c->why, rc, eb.msg, c->where, c->what);
        CU_ASSERT(ok);
        if (rc == DIP_OK) dip_map_free(m);
    }
    /* the same document with the defect removed loads */
    const char *good = HEAD "<indexer node=\"r\">\n"
                            "<leaf node=\"a\" from=\"0.0.0.0\" to=\"9.255.255.255\"/>\n"
                            "<leaf node=\"b\" from=\"10.0.0.0\" to=\"" ALL_ONES6 "\"/>\n" TAIL;
    struct dip_map *m = NULL;
    struct dip_errbuf eb = { "" };
    int rc = dip_map_parse(good, strlen(good), "t.xml", &m, &eb);
    if (rc) fprintf(stderr, "%s\n", eb.msg);
    CU_ASSERT_EQUAL_FATAL(rc, DIP_OK);
    CU_ASSERT_EQUAL(m->nmembers, 3);
    CU_ASSERT_EQUAL(m->roots[DIP_KEY_SRC], 0);
    CU_ASSERT_EQUAL(m->roots[DIP_KEY_DST], -1);
    CU_ASSERT_EQUAL(m->front.node, -1);
    CU_ASSERT_EQUAL(m->epoch, 0);
    dip_map_free(m);
}

int dip_suite_route_map(void)
{
    CU_pSuite s = CU_add_suite("route_map", NULL, NULL);
    if (!s) return -1;
    CU_add_test(s, "split_of_every_tank_tiles_the_range", test_split_of_every_tank_tiles_the_range);
    CU_add_test(s, "split_at_the_coarsest_octet_boundary", test_split_at_the_coarsest_octet_boundary);
    CU_add_test(s, "split_refuses_more_parts_than_keys", test_split_refuses_more_parts_than_keys);
    CU_add_test(s, "key_order_puts_ipv4_before_ipv6_and_skips_the_mapped_block",
                test_key_order_puts_ipv4_before_ipv6_and_skips_the_mapped_block);
    CU_add_test(s, "build_local_shapes_names_and_ports", test_build_local_shapes_names_and_ports);
    CU_add_test(s, "route_random_records_to_the_owning_child", test_route_random_records_to_the_owning_child);
    CU_add_test(s, "may_match_against_analysed_queries", test_may_match_against_analysed_queries);
    CU_add_test(s, "may_match_excludes_the_mapped_block_from_ipv6_ranges",
                test_may_match_excludes_the_mapped_block_from_ipv6_ranges);
    CU_add_test(s, "range_text_and_attributes", test_range_text_and_attributes);
    CU_add_test(s, "written_map_validates_and_reads_back_identically",
                test_written_map_validates_and_reads_back_identically);
    CU_add_test(s, "broken_maps_are_reported_with_file_and_line", test_broken_maps_are_reported_with_file_and_line);
    return 0;
}
