/* test_store_deadline.c - a store query stops at its deadline
 * (dip_store_query_until, dip_store_scan_until): long libxml2 evaluations
 * over the whole document and heavy per-chunk evaluations answer
 * DIP_ETIMEOUT soon after it, never a partial answer; a far deadline
 * changes nothing. Functional checks with generous bounds, not benchmarks. */
#include <CUnit/CUnit.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "store/watch.h"

#define RECORDS 20000
#define DEADLINE_MS 200
/* the stop must come well within a second of the deadline; the bound is
 * generous for loaded test machines */
#define STOPPED_WITHIN_MS 3000

static char dir[256];
static struct dip_store *store;

/* Records in 10.0-3.x.y, dports from a small set (the shape of test_store.c's). */
static void make_flows(struct dip_flow *f, size_t n)
{
    uint32_t x = 12345;
    for (size_t i = 0; i < n; i++) {
        memset(&f[i], 0, sizeof f[i]);
        x = x * 1103515245u + 12345u;
        dip_addr_from_v4(&f[i].src, 0x0a000000u | ((x >> 10) & 0x3ffff));
        dip_addr_from_v4(&f[i].dst, 0xc0a80000u | ((x >> 3) & 0xff));
        static const uint16_t ports[] = { 22, 53, 80, 443, 8080 };
        f[i].dport = ports[(x >> 20) % 5];
        f[i].sport = (uint16_t)(1024 + (x >> 7) % 60000);
        f[i].proto = 6;
        f[i].packets = 1 + (x >> 5) % 100;
        f[i].bytes = 40 * f[i].packets;
        f[i].first = 1700000000000ull + i * 7;
        f[i].last = f[i].first + 100;
        f[i].id = dip_flow_id_random(&f[i], dip_flow_id_default_key);
    }
}

/* One store for the suite: RECORDS records in a few segments and an active part. */
static int suite_init(void)
{
    snprintf(dir, sizeof dir, "/tmp/dip-test-deadline-XXXXXX");
    if (!mkdtemp(dir)) return -1;
    struct dip_store_options o;
    dip_store_options_default(&o);
    o.sync = false;
    o.seal_records = (size_t)1 << 40;
    struct dip_errbuf eb;
    if (dip_store_open(dir, DIP_KEY_SRC, &o, &store, NULL, &eb)) return -1;
    struct dip_flow *f = malloc(RECORDS * sizeof *f);
    if (!f) return -1;
    make_flows(f, RECORDS);
    int rc = DIP_OK;
    for (size_t part = 0; part < 4 && !rc; part++) { /* three segments and an active part */
        rc = dip_store_insert(store, f + part * (RECORDS / 4), RECORDS / 4, &eb);
        if (!rc && part < 3) rc = dip_store_seal(store, &eb);
    }
    free(f);
    return rc ? -1 : 0;
}

static int suite_clean(void)
{
    if (store) dip_store_close(store);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (dir[0] && system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
    return 0;
}

/* Runs q with a deadline DEADLINE_MS from now; returns its code and how
 * long after the deadline it returned (ms, negative: before). */
static int query_with_deadline(const char *q, long *after_ms)
{
    struct dip_store_answer a;
    struct dip_errbuf eb = { { 0 } };
    uint64_t deadline = dip_store_clock_ms() + DEADLINE_MS;
    int rc = dip_store_query_until(store, q, strlen(q), deadline, &a, NULL, &eb);
    *after_ms = (long)(dip_store_clock_ms() - deadline);
    if (!rc) dip_store_answer_free(&a);
    printf("\n    %.60s%s: %s, %ld ms after the deadline %s", q, strlen(q) > 60 ? "..." : "", dip_err_name(rc), *after_ms, rc ? eb.msg : "");
    return rc;
}

/* The watchdog itself, on a libxml2 evaluation in this thread: n^2 steps
 * (many seconds if let run) stop soon after the deadline with NULL, and the
 * watch says it fired. (It once ran unwatched: the thread was never made.) */
static void test_watchdog_stops_a_libxml2_evaluation(void)
{
    xmlDocPtr doc = xmlNewDoc(BAD_CAST "1.0");
    xmlNodePtr root = xmlNewNode(NULL, BAD_CAST "r");
    xmlDocSetRootElement(doc, root);
    for (int i = 0; i < 20000; i++) xmlNewChild(root, NULL, BAD_CAST "e", NULL);
    xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
    CU_ASSERT_FATAL(ctx != NULL);
    struct dip_watch w;
    uint64_t deadline = dip_store_clock_ms() + DEADLINE_MS;
    dip_watch_begin(&w, ctx, deadline);
    xmlXPathObjectPtr obj = xmlXPathEval(BAD_CAST "count(//e[count(//e) > 0])", ctx);
    CU_ASSERT_TRUE(dip_watch_end(&w));
    long after = (long)(dip_store_clock_ms() - deadline);
    printf("\n    watched evaluation: %s, %ld ms after the deadline", obj ? "finished" : "stopped", after);
    CU_ASSERT_PTR_NULL(obj);
    CU_ASSERT(after < STOPPED_WITHIN_MS);
    xmlXPathFreeObject(obj);
    xmlXPathFreeContext(ctx);
    xmlFreeDoc(doc);
}

/* The whole-document path: O(n^2) in libxml2 (seconds at 20,000 records),
 * cut at the deadline by the watchdog. */
static void test_quadratic_gather_stops_at_its_deadline(void)
{
    long after;
    CU_ASSERT_EQUAL(query_with_deadline("count(//flow[count(//flow) > 0])", &after), DIP_ETIMEOUT);
    CU_ASSERT(after < STOPPED_WITHIN_MS);
}

/* A position over a union of two node-sets needs the logical document too
 * ([1]: over 10 s at 20,000 records if let run). */
static void test_union_with_a_position_stops_at_its_deadline(void)
{
    long after;
    CU_ASSERT_EQUAL(query_with_deadline("(//flow[count(//flow) > 0] | //flow[@dport=443])[1]", &after), DIP_ETIMEOUT);
    CU_ASSERT(after < STOPPED_WITHIN_MS);
    CU_ASSERT_EQUAL(query_with_deadline("(//flow[@dport=22] | //flow[count(following::flow) > 0])[last()]", &after),
                    DIP_ETIMEOUT);
    CU_ASSERT(after < STOPPED_WITHIN_MS);
}

/* A node-set evaluated chunk by chunk: a heavy expression in each chunk's
 * evaluation (a union of many point lookups, as a leaf gets them). */
static void test_heavy_union_of_lookups_stops_at_its_deadline(void)
{
    enum { BRANCHES = 1800 }; /* ~60 KB, below DIP_XPATH_MAX_LEN */
    char *q = malloc(BRANCHES * 48);
    CU_ASSERT_FATAL(q != NULL);
    size_t len = 0;
    for (int i = 0; i < BRANCHES; i++)
        len += (size_t)sprintf(q + len, "%s//flow[@dport=%d or @sport=%d]", i ? " | " : "", 22 + i % 3, 1024 + i);
    long after;
    int rc = query_with_deadline(q, &after);
    CU_ASSERT_EQUAL(rc, DIP_ETIMEOUT);
    CU_ASSERT(after < STOPPED_WITHIN_MS);
    free(q);
}

static int count_flow(void *ctx, const struct dip_flow *f)
{
    (void)f;
    (*(size_t *)ctx)++;
    return 0;
}

/* A scan stops too, with DIP_ETIMEOUT; a deadline already past stops
 * before any work. */
static void test_scan_and_late_queries_stop(void)
{
    struct dip_errbuf eb;
    size_t n = 0;
    uint64_t past = dip_store_clock_ms() - 1;
    CU_ASSERT_EQUAL(dip_store_scan_until(store, NULL, past, count_flow, &n, NULL, &eb), DIP_ETIMEOUT);
    CU_ASSERT_EQUAL(n, 0);
    struct dip_store_answer a;
    CU_ASSERT_EQUAL(dip_store_query_until(store, "count(//flow)", 13, past, &a, NULL, &eb), DIP_ETIMEOUT);
    CU_ASSERT(strstr(eb.msg, "deadline") != NULL);
    /* a far one: every record */
    CU_ASSERT_EQUAL(dip_store_scan_until(store, NULL, dip_store_clock_ms() + 60000, count_flow, &n, NULL, &eb), DIP_OK);
    CU_ASSERT_EQUAL(n, RECORDS);
}

/* With a far deadline every kind of query answers as without one. */
static void test_far_deadline_changes_no_answer(void)
{
    static const char *const queries[] = {
        "//flow[@dport=443 and @packets > 90]",
        "count(//flow[@dport=22])",
        "sum(//flow[@dport=80]/@bytes)",
        "(//flow[@dport=22] | //flow[@dport=443])[1]",
        "count(/tank/o)",
        "//flow[@src='10.1.2.3']",
    };
    for (size_t i = 0; i < sizeof queries / sizeof queries[0]; i++) {
        const char *q = queries[i];
        struct dip_store_answer a, b;
        struct dip_errbuf eb;
        CU_ASSERT_EQUAL_FATAL(dip_store_query(store, q, strlen(q), &a, NULL, &eb), DIP_OK);
        CU_ASSERT_EQUAL_FATAL(
            dip_store_query_until(store, q, strlen(q), dip_store_clock_ms() + 60000, &b, NULL, &eb), DIP_OK);
        CU_ASSERT_EQUAL(a.kind, b.kind);
        CU_ASSERT_EQUAL(a.count, b.count);
        CU_ASSERT_EQUAL(a.body.len, b.body.len);
        CU_ASSERT(a.body.len == b.body.len && (!a.body.len || memcmp(a.body.data, b.body.data, a.body.len) == 0));
        dip_store_answer_free(&a);
        dip_store_answer_free(&b);
    }
}

int dip_suite_store_deadline(void)
{
    CU_pSuite s = CU_add_suite("store_deadline", suite_init, suite_clean);
    if (!s) return -1;
#define T(name)                                                                        \
    do {                                                                               \
        CU_pTest t = CU_add_test(s, #name, name);                                      \
        if (!t) return -1;                                                             \
    } while (0)
    T(test_watchdog_stops_a_libxml2_evaluation);
    T(test_quadratic_gather_stops_at_its_deadline);
    T(test_union_with_a_position_stops_at_its_deadline);
    T(test_heavy_union_of_lookups_stops_at_its_deadline);
    T(test_scan_and_late_queries_stop);
    T(test_far_deadline_changes_no_answer);
#undef T
    return 0;
}
