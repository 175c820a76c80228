/* test_store.c - a leaf store: durability (WAL replay, torn tails), sealing
 * and compaction keep the logical document, chunk pruning, limits, errors. */
#include <CUnit/CUnit.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "store/store.h"

static char dir[256];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/dip-test-store-XXXXXX");
    if (!mkdtemp(dir)) dir[0] = 0;
}

static void teardown(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (dir[0] && system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
}

/* Deterministic records: sources in 10.0-3.x.y and a few IPv6, ports from a
 * small set so that keys repeat across batches and segments. */
static void make_flows(struct dip_flow *f, size_t n, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        memset(&f[i], 0, sizeof f[i]);
        x = x * 1103515245u + 12345u;
        if (x % 11 == 0) {
            dip_addr_parse("2001:db8::5", 11, &f[i].src);
            f[i].src.b[15] = (uint8_t)(x >> 8);
        } else {
            dip_addr_from_v4(&f[i].src, 0x0a000000u | ((x >> 10) & 0x3ffff));
        }
        dip_addr_from_v4(&f[i].dst, 0xc0a80000u | ((x >> 3) & 0xff));
        static const uint16_t ports[] = { 22, 53, 80, 443, 8080 };
        f[i].dport = ports[(x >> 20) % 5];
        f[i].sport = (uint16_t)(1024 + (x >> 7) % 60000);
        f[i].proto = (x >> 27) % 3 ? 6 : 17;
        f[i].packets = 1 + (x >> 5) % 100;
        f[i].bytes = 40 * f[i].packets + (x >> 9) % 1000;
        f[i].first = 1700000000000ull + i * 7;
        f[i].last = f[i].first + (x >> 12) % 5000;
        f[i].id = dip_flow_id_random(&f[i], dip_flow_id_default_key);
    }
}

static struct dip_store *open_small(struct dip_store_options *o)
{
    dip_store_options_default(o);
    o->seal_records = 3000;
    o->chunk_records = 128;
    o->sync = false;
    struct dip_store *s = NULL;
    struct dip_errbuf eb;
    CU_ASSERT_EQUAL(dip_store_open(dir, DIP_KEY_SRC, o, &s, NULL, &eb), DIP_OK);
    return s;
}

static char *query_text(struct dip_store *s, const char *q, uint64_t *count)
{
    struct dip_store_answer a;
    struct dip_errbuf eb;
    int rc = dip_store_query(s, q, strlen(q), &a, NULL, &eb);
    CU_ASSERT_EQUAL_FATAL(rc, DIP_OK);
    if (count) *count = a.count;
    char *text = strdup(a.body.data ? (char *)a.body.data : "");
    dip_store_answer_free(&a);
    return text;
}

static void test_records_survive_reopen_through_wal_replay(void)
{
    struct dip_store_options o;
    struct dip_store *s = open_small(&o);
    struct dip_flow f[1000];
    make_flows(f, 1000, 1);
    CU_ASSERT_EQUAL(dip_store_insert(s, f, 1000, NULL), DIP_OK);
    char *before = query_text(s, "//flow[@dport=22]", NULL);
    dip_store_close(s);
    s = open_small(&o);
    struct dip_store_stats st;
    dip_store_stats(s, &st);
    CU_ASSERT_EQUAL(st.records, 1000);
    CU_ASSERT_EQUAL(st.active_records, 1000);
    char *after = query_text(s, "//flow[@dport=22]", NULL);
    CU_ASSERT_STRING_EQUAL(before, after);
    free(before);
    free(after);
    dip_store_close(s);
}

static void test_sealing_keeps_the_logical_document(void)
{
    struct dip_store_options o;
    struct dip_store *s = open_small(&o);
    struct dip_flow f[2500];
    make_flows(f, 2500, 2);
    dip_store_insert(s, f, 2500, NULL);
    uint64_t n1, n2;
    char *before = query_text(s, "//flow[@proto=17]", &n1);
    char *cnt_before = query_text(s, "count(/tank/o/o)", NULL);
    struct dip_errbuf eb;
    CU_ASSERT_EQUAL(dip_store_seal(s, &eb), DIP_OK);
    struct dip_store_stats st;
    dip_store_stats(s, &st);
    CU_ASSERT_EQUAL(st.segments, 1);
    CU_ASSERT(st.chunks >= 2500 / 128);
    char *after = query_text(s, "//flow[@proto=17]", &n2);
    char *cnt_after = query_text(s, "count(/tank/o/o)", NULL);
    CU_ASSERT_EQUAL(n1, n2);
    CU_ASSERT_STRING_EQUAL(before, after);
    CU_ASSERT_STRING_EQUAL(cnt_before, cnt_after);
    free(before); free(after); free(cnt_before); free(cnt_after);
    dip_store_close(s);
}

/* Equal keys in several segments and the active part come out in the order
 * they were stored: segment order, then the active part. */
/* Among equal keys the document order is the rest of the record (the src
 * tank: dst first), however the records were segmented: here three
 * segments and the active part, each record of the key in another. */
static void test_equal_keys_are_in_document_order_however_sealed(void)
{
    struct dip_store_options o;
    struct dip_store *s = open_small(&o);
    struct dip_flow f[4];
    make_flows(f, 4, 3);
    static const uint32_t dst[4] = { 0x0a000003, 0x0a000001, 0x0a000004, 0x0a000002 };
    for (int i = 0; i < 4; i++) {
        dip_addr_from_v4(&f[i].src, 0x0a090909);
        dip_addr_from_v4(&f[i].dst, dst[i]);
        f[i].bytes = 100 + (uint64_t)i;
    }
    struct dip_errbuf eb;
    for (int i = 0; i < 4; i++) {
        dip_store_insert(s, &f[i], 1, NULL);
        if (i < 3) dip_store_seal(s, &eb);
    }
    char *text = query_text(s, "//flow[@src='10.9.9.9']", NULL);
    const char *p = text;
    static const char *const want[4] = { "bytes=\"101\"", "bytes=\"103\"", "bytes=\"100\"", "bytes=\"102\"" };
    for (int i = 0; i < 4; i++) { /* by dst: .1 .2 .3 .4 */
        const char *q = strstr(p, want[i]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(q);
        p = q;
    }
    size_t merged_segs = 0;
    CU_ASSERT_EQUAL(dip_store_compact(s, &merged_segs, &eb), DIP_OK); /* one segment: the same order */
    CU_ASSERT_EQUAL(merged_segs, 3);
    char *merged = query_text(s, "//flow[@src='10.9.9.9']", NULL);
    CU_ASSERT_STRING_EQUAL(text, merged);
    free(merged);
    free(text);
    dip_store_close(s);
}

static char warnings[512];
static void record_warning(const char *msg) { snprintf(warnings, sizeof warnings, "%s", msg); }

static void test_torn_wal_tail_is_dropped_with_a_warning(void)
{
    struct dip_store_options o;
    struct dip_store *s = open_small(&o);
    struct dip_flow f[100];
    make_flows(f, 100, 4);
    dip_store_insert(s, f, 60, NULL);
    dip_store_insert(s, f + 60, 40, NULL);
    dip_store_close(s);
    /* cut the last entry in half, as a crash during its write would */
    char wal[400];
    snprintf(wal, sizeof wal, "%s/wal-000001.log", dir);
    int fd = open(wal, O_RDWR);
    CU_ASSERT_FATAL(fd >= 0);
    off_t size = lseek(fd, 0, SEEK_END);
    CU_ASSERT_EQUAL(ftruncate(fd, size - 50), 0);
    close(fd);
    dip_store_options_default(&o);
    struct dip_errbuf eb;
    warnings[0] = 0;
    s = NULL;
    CU_ASSERT_EQUAL(dip_store_open(dir, -1, &o, &s, record_warning, &eb), DIP_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(warnings, "torn"));
    struct dip_store_stats st;
    dip_store_stats(s, &st);
    CU_ASSERT_EQUAL(st.records, 60);
    /* the store takes new records after the repair */
    CU_ASSERT_EQUAL(dip_store_insert(s, f + 60, 40, NULL), DIP_OK);
    dip_store_close(s);
    s = NULL;
    CU_ASSERT_EQUAL(dip_store_open(dir, -1, &o, &s, NULL, &eb), DIP_OK);
    dip_store_stats(s, &st);
    CU_ASSERT_EQUAL(st.records, 100);
    dip_store_close(s);
}

/* Inserts parts * per records of f, sealing a segment after each part. */
static void insert_sealed(struct dip_store *s, const struct dip_flow *f, size_t per, int parts)
{
    struct dip_errbuf eb;
    for (int i = 0; i < parts; i++) {
        CU_ASSERT_EQUAL(dip_store_insert(s, f + (size_t)i * per, per, NULL), DIP_OK);
        CU_ASSERT_EQUAL(dip_store_seal(s, &eb), DIP_OK);
    }
}

static void test_compaction_merges_small_segments_without_changing_answers(void)
{
    struct dip_store_options o;
    struct dip_store *s = open_small(&o);
    struct dip_flow f[600];
    make_flows(f, 600, 5);
    struct dip_errbuf eb;
    insert_sealed(s, f, 100, 6);
    char *before = query_text(s, "//flow[@dport=443]", NULL);
    size_t merged = 0;
    CU_ASSERT_EQUAL(dip_store_compact(s, &merged, &eb), DIP_OK);
    CU_ASSERT_EQUAL(merged, 6);
    struct dip_store_stats st;
    dip_store_stats(s, &st);
    CU_ASSERT_EQUAL(st.segments, 1);
    CU_ASSERT_EQUAL(st.records, 600);
    char *after = query_text(s, "//flow[@dport=443]", NULL);
    CU_ASSERT_STRING_EQUAL(before, after);
    free(before);
    free(after);
    dip_store_close(s);
}

/* Reads a file of the test folder into a new string (NULL if absent). */
static char *slurp(const char *name)
{
    char path[400];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    char *buf = calloc(1, 1 << 20);
    size_t n = buf ? fread(buf, 1, (1 << 20) - 1, fp) : 0;
    fclose(fp);
    if (buf) buf[n] = 0;
    return buf;
}

static void spill(const char *name, const char *text)
{
    char path[400];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
    fputs(text, fp);
    fclose(fp);
}

static int exists(const char *name)
{
    char path[400];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

/* Each segment's chunks are in its chunk index, written with it and gone
 * with it; the manifest names the index and lists no chunk; a stray index
 * is removed at open; and a manifest of the older form, chunks inline,
 * still opens to the same answers. */
static void test_chunk_indexes_beside_segments(void)
{
    struct dip_store_options o;
    struct dip_store *s = open_small(&o);
    struct dip_flow f[900];
    make_flows(f, 900, 9);
    struct dip_errbuf eb;
    insert_sealed(s, f, 300, 3);
    CU_ASSERT(exists("seg-000001.chunks.xml") && exists("seg-000002.chunks.xml") && exists("seg-000003.chunks.xml"));
    char *man = slurp("MANIFEST.xml");
    CU_ASSERT_PTR_NOT_NULL_FATAL(man);
    CU_ASSERT_PTR_NULL(strstr(man, "<chunk "));
    CU_ASSERT_PTR_NOT_NULL(strstr(man, "file=\"seg-000002.xml.gz\" chunks=\"seg-000002.chunks.xml\""));
    free(man);
    char *idx = slurp("seg-000002.chunks.xml");
    CU_ASSERT_PTR_NOT_NULL_FATAL(idx);
    CU_ASSERT_PTR_NOT_NULL(strstr(idx, "<chunks version=\"1\" segment=\"seg-000002.xml.gz\" count=\"300\">"));
    CU_ASSERT_PTR_NOT_NULL(strstr(idx, "<chunk offset="));
    free(idx);
    char *before = query_text(s, "//flow[@dport=80]", NULL);
    size_t merged = 0;
    CU_ASSERT_EQUAL(dip_store_compact(s, &merged, &eb), DIP_OK);
    CU_ASSERT_EQUAL(merged, 3);
    CU_ASSERT(!exists("seg-000001.chunks.xml") && !exists("seg-000002.chunks.xml") && !exists("seg-000003.chunks.xml"));
    CU_ASSERT(exists("seg-000001-900.xml.gz") && exists("seg-000001-900.chunks.xml"));
    struct dip_store_stats st0;
    dip_store_stats(s, &st0);
    dip_store_close(s);

    spill("seg-000042.chunks.xml", "left by a crash");
    s = open_small(&o);
    CU_ASSERT(!exists("seg-000042.chunks.xml"));
    struct dip_store_stats st;
    dip_store_stats(s, &st);
    CU_ASSERT_EQUAL(st.chunks, st0.chunks);
    char *after = query_text(s, "//flow[@dport=80]", NULL);
    CU_ASSERT_STRING_EQUAL(before, after);
    free(after);
    dip_store_close(s);

    /* the older form: the index's <chunk> lines inside <segment> */
    man = slurp("MANIFEST.xml");
    idx = slurp("seg-000001-900.chunks.xml");
    CU_ASSERT_PTR_NOT_NULL_FATAL(man);
    CU_ASSERT_PTR_NOT_NULL_FATAL(idx);
    char *attr = strstr(man, " chunks=\"seg-000001-900.chunks.xml\"");
    char *first = strstr(idx, "  <chunk "), *last = strstr(idx, "</chunks>");
    CU_ASSERT_PTR_NOT_NULL_FATAL(attr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(first);
    CU_ASSERT_PTR_NOT_NULL_FATAL(last);
    char *end = strstr(attr, "/>\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(end);
    size_t cap = strlen(man) + strlen(idx) + 64;
    char *old = malloc(cap);
    CU_ASSERT_PTR_NOT_NULL_FATAL(old);
    const char *rest = attr + strlen(" chunks=\"seg-000001-900.chunks.xml\"");
    snprintf(old, cap, "%.*s%.*s>\n%.*s  </segment>\n%s", (int)(attr - man), man, (int)(end - rest), rest,
             (int)(last - first), first, end + 3);
    spill("MANIFEST.xml", old);
    char path[400];
    snprintf(path, sizeof path, "%s/seg-000001-900.chunks.xml", dir);
    unlink(path);
    free(man);
    free(idx);
    free(old);
    s = open_small(&o);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    dip_store_stats(s, &st);
    CU_ASSERT_EQUAL(st.chunks, st0.chunks);
    after = query_text(s, "//flow[@dport=80]", NULL);
    CU_ASSERT_STRING_EQUAL(before, after);
    free(after);
    free(before);
    dip_store_close(s);
}

/* A small store whose segments merge by fanin. */
static struct dip_store *open_tiered(struct dip_store_options *o, size_t seal_records, size_t fanin)
{
    dip_store_options_default(o);
    o->seal_records = seal_records;
    o->chunk_records = 128;
    o->compact_fanin = fanin;
    o->sync = false;
    struct dip_store *s = NULL;
    struct dip_errbuf eb;
    CU_ASSERT_EQUAL_FATAL(dip_store_open(dir, DIP_KEY_SRC, o, &s, NULL, &eb), DIP_OK);
    return s;
}

/* Tiered compaction in its three steps, with a seal between prepare and
 * write (as a leaf seals while a merge runs): the merged segment replaces
 * exactly its inputs, answers and the order of equal keys stay the same. */
static void test_tiered_merge_runs_beside_a_seal_and_keeps_the_document(void)
{
    struct dip_store_options o;
    struct dip_store *s = open_tiered(&o, 3000, 3);
    struct dip_errbuf eb;
    static struct dip_flow f[12000];
    make_flows(f, 12000, 9);
    for (int i = 0; i < 12; i++) { /* one key in every segment, told apart by bytes */
        dip_addr_from_v4(&f[i * 1000 + 17].src, 0x0a090909);
        f[i * 1000 + 17].bytes = 1000 + (uint64_t)i;
    }
    CU_ASSERT_FALSE(dip_store_merge_due(s));
    for (int i = 0; i < 3; i++) /* three sealed segments of tier 0 */
        CU_ASSERT_EQUAL(dip_store_insert(s, f + i * 3000, 3000, &eb), DIP_OK);
    CU_ASSERT_TRUE(dip_store_merge_due(s));
    struct dip_store_merge_job *j = NULL;
    CU_ASSERT_EQUAL_FATAL(dip_store_merge_prepare(s, &j, &eb), DIP_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_EQUAL(dip_store_insert(s, f + 9000, 3000, &eb), DIP_OK); /* a fourth segment meanwhile */
    uint64_t n1, n2;
    char *before = query_text(s, "//flow[@dport=443]", &n1);
    char *key_before = query_text(s, "//flow[@src='10.9.9.9']", NULL);
    char *tree_before = query_text(s, "count(/tank/o/o/o)", NULL);
    CU_ASSERT_EQUAL(dip_store_merge_finish(s, j, dip_store_merge_write(j, &eb), &eb), DIP_OK);
    struct dip_store_stats st;
    dip_store_stats(s, &st);
    CU_ASSERT_EQUAL(st.segments, 2);
    CU_ASSERT_EQUAL(st.records, 12000);
    char *after = query_text(s, "//flow[@dport=443]", &n2);
    char *key_after = query_text(s, "//flow[@src='10.9.9.9']", NULL);
    char *tree_after = query_text(s, "count(/tank/o/o/o)", NULL);
    CU_ASSERT_EQUAL(n1, n2);
    CU_ASSERT_STRING_EQUAL(before, after);
    CU_ASSERT_STRING_EQUAL(key_before, key_after);
    CU_ASSERT_STRING_EQUAL(tree_before, tree_after);
    for (int i = 0; i < 12; i++) { /* every record of the key */
        char want[32];
        snprintf(want, sizeof want, "bytes=\"%d\"", 1000 + i);
        CU_ASSERT_PTR_NOT_NULL(strstr(key_after, want));
    }
    /* the merged file is named by its first segment and its records; the inputs are gone */
    char path[400];
    snprintf(path, sizeof path, "%s/seg-000001-9000.xml.gz", dir);
    CU_ASSERT_EQUAL(access(path, R_OK), 0);
    snprintf(path, sizeof path, "%s/seg-000002.xml.gz", dir);
    CU_ASSERT_NOT_EQUAL(access(path, F_OK), 0);
    CU_ASSERT_FALSE(dip_store_merge_due(s)); /* tier 1 and tier 0: nothing to merge */
    dip_store_close(s);
    s = NULL;
    CU_ASSERT_EQUAL_FATAL(dip_store_open(dir, -1, &o, &s, NULL, &eb), DIP_OK);
    char *reopened = query_text(s, "//flow[@dport=443]", NULL);
    CU_ASSERT_STRING_EQUAL(before, reopened);
    free(before); free(after); free(key_before); free(key_after); free(tree_before); free(tree_after); free(reopened);
    dip_store_close(s);
}

/* A merge whose write failed leaves the store as it was, file removed. */
static void test_failed_merge_changes_nothing(void)
{
    struct dip_store_options o;
    struct dip_store *s = open_tiered(&o, 1000, 2);
    struct dip_errbuf eb;
    static struct dip_flow f[2000];
    make_flows(f, 2000, 10);
    CU_ASSERT_EQUAL(dip_store_insert(s, f, 1000, &eb), DIP_OK);
    CU_ASSERT_EQUAL(dip_store_insert(s, f + 1000, 1000, &eb), DIP_OK);
    char *before = query_text(s, "//flow[@proto=17]", NULL);
    struct dip_store_merge_job *j = NULL;
    CU_ASSERT_EQUAL_FATAL(dip_store_merge_prepare(s, &j, &eb), DIP_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_EQUAL(dip_store_merge_write(j, &eb), DIP_OK);
    char path[400];
    snprintf(path, sizeof path, "%s/seg-000001-2000.xml.gz", dir);
    CU_ASSERT_EQUAL(access(path, F_OK), 0);
    CU_ASSERT_EQUAL(dip_store_merge_finish(s, j, DIP_EIO, &eb), DIP_EIO); /* as if the write had failed */
    CU_ASSERT_NOT_EQUAL(access(path, F_OK), 0);
    struct dip_store_stats st;
    dip_store_stats(s, &st);
    CU_ASSERT_EQUAL(st.segments, 2);
    char *after = query_text(s, "//flow[@proto=17]", NULL);
    CU_ASSERT_STRING_EQUAL(before, after);
    free(before);
    free(after);
    dip_store_close(s);
}

/* A seal in steps: queries between the steps see the same records; the
 * write step commits (a crash after it, modelled by a copy of the folder,
 * reopens with every record once, from the segment); a finish told the write
 * failed switches over once the write had committed. */
static void test_seal_steps_commit_in_the_write_step(void)
{
    struct dip_store_options o;
    struct dip_store *s = open_small(&o);
    struct dip_errbuf eb;
    static struct dip_flow f[2000];
    make_flows(f, 2000, 11);
    CU_ASSERT_EQUAL(dip_store_insert(s, f, 2000, &eb), DIP_OK);
    uint64_t n0, n1, n2;
    char *before = query_text(s, "//flow[@dport=80]", &n0);
    struct dip_store_seal_job *j = NULL;
    CU_ASSERT_EQUAL_FATAL(dip_store_seal_prepare(s, &j, &eb), DIP_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_EQUAL(dip_store_seal_write(s, j, &eb), DIP_OK);
    char *between = query_text(s, "//flow[@dport=80]", &n1);
    CU_ASSERT_EQUAL(n0, n1);
    CU_ASSERT_STRING_EQUAL(before, between);
    char copy[300], cmd[1000];
    snprintf(copy, sizeof copy, "%s-copy", dir);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -a '%s' '%s'", copy, dir, copy);
    CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
    CU_ASSERT_EQUAL(dip_store_seal_finish(s, j, DIP_EIO, &eb), DIP_OK); /* committed: switches */
    struct dip_store_stats st;
    dip_store_stats(s, &st);
    CU_ASSERT_EQUAL(st.segments, 1);
    CU_ASSERT_EQUAL(st.active_records, 0);
    CU_ASSERT_EQUAL(st.records, 2000);
    char *after = query_text(s, "//flow[@dport=80]", &n2);
    CU_ASSERT_STRING_EQUAL(before, after);
    CU_ASSERT_EQUAL(dip_store_insert(s, f, 10, &eb), DIP_OK); /* into the new WAL */
    dip_store_close(s);
    s = NULL;
    CU_ASSERT_EQUAL_FATAL(dip_store_open(dir, -1, &o, &s, NULL, &eb), DIP_OK);
    dip_store_stats(s, &st);
    CU_ASSERT_EQUAL(st.records, 2010);
    CU_ASSERT_EQUAL(st.active_records, 10);
    dip_store_close(s);
    s = NULL;
    CU_ASSERT_EQUAL_FATAL(dip_store_open(copy, -1, &o, &s, NULL, &eb), DIP_OK);
    dip_store_stats(s, &st);
    CU_ASSERT_EQUAL(st.records, 2000);
    CU_ASSERT_EQUAL(st.segments, 1);
    CU_ASSERT_EQUAL(st.active_records, 0);
    char *crashed = query_text(s, "//flow[@dport=80]", NULL);
    CU_ASSERT_STRING_EQUAL(before, crashed);
    dip_store_close(s);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", copy);
    CU_ASSERT_EQUAL(system(cmd), 0);
    free(before); free(between); free(after); free(crashed);
}

/* A seal whose write failed before its commit leaves the store as it was. */
static void test_failed_seal_changes_nothing(void)
{
    struct dip_store_options o;
    struct dip_store *s = open_small(&o);
    struct dip_errbuf eb;
    static struct dip_flow f[1000];
    make_flows(f, 1000, 12);
    CU_ASSERT_EQUAL(dip_store_insert(s, f, 1000, &eb), DIP_OK);
    uint64_t n_before;
    char *before = query_text(s, "//flow[@proto=17]", &n_before);
    struct dip_store_seal_job *j = NULL;
    CU_ASSERT_EQUAL_FATAL(dip_store_seal_prepare(s, &j, &eb), DIP_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_EQUAL(dip_store_insert(s, f, 5, &eb), DIP_OK); /* not allowed: the write step notices */
    CU_ASSERT_EQUAL(dip_store_seal_write(s, j, &eb), DIP_EINVAL);
    CU_ASSERT_EQUAL(dip_store_seal_finish(s, j, DIP_EINVAL, &eb), DIP_EINVAL);
    char path[400];
    snprintf(path, sizeof path, "%s/seg-000001.xml.gz", dir);
    CU_ASSERT_NOT_EQUAL(access(path, F_OK), 0);
    struct dip_store_stats st;
    dip_store_stats(s, &st);
    CU_ASSERT_EQUAL(st.segments, 0);
    CU_ASSERT_EQUAL(st.records, 1005);
    dip_store_close(s);
    s = NULL;
    CU_ASSERT_EQUAL_FATAL(dip_store_open(dir, -1, &o, &s, NULL, &eb), DIP_OK);
    dip_store_stats(s, &st);
    CU_ASSERT_EQUAL(st.records, 1005);
    uint64_t n_after, more = 0;
    for (int i = 0; i < 5; i++) more += f[i].proto == 17;
    char *after = query_text(s, "//flow[@proto=17]", &n_after);
    CU_ASSERT_EQUAL(n_after, n_before + more);
    free(before);
    free(after);
    dip_store_close(s);
}

static void test_point_query_on_the_key_skips_chunks(void)
{
    struct dip_store_options o;
    struct dip_store *s = open_small(&o);
    struct dip_flow f[2900];
    make_flows(f, 2900, 6);
    dip_store_insert(s, f, 2900, NULL);
    struct dip_errbuf eb;
    dip_store_seal(s, &eb);
    char q[128], src[DIP_ADDR_TEXT_MAX];
    dip_addr_format(&f[17].src, src);
    snprintf(q, sizeof q, "//flow[@src='%s']", src);
    struct dip_store_answer a;
    CU_ASSERT_EQUAL_FATAL(dip_store_query(s, q, strlen(q), &a, NULL, &eb), DIP_OK);
    CU_ASSERT(a.count >= 1);
    CU_ASSERT(a.chunks_read <= 2);
    CU_ASSERT(a.chunks_skipped >= 20);
    dip_store_answer_free(&a);
    dip_store_close(s);
}

static void test_limits_and_errors_are_reported(void)
{
    struct dip_store_options o;
    struct dip_store *s = open_small(&o);
    struct dip_flow f[200];
    make_flows(f, 200, 7);
    dip_store_insert(s, f, 200, NULL);
    dip_store_close(s);
    dip_store_options_default(&o);
    o.max_result_records = 10;
    struct dip_errbuf eb;
    CU_ASSERT_EQUAL_FATAL(dip_store_open(dir, DIP_KEY_SRC, &o, &s, NULL, &eb), DIP_OK);
    struct dip_store_answer a;
    CU_ASSERT_EQUAL(dip_store_query(s, "//flow", 6, &a, NULL, &eb), DIP_ERANGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "limit"));
    size_t col = 0;
    CU_ASSERT_EQUAL(dip_store_query(s, "//flow[@src=", 12, &a, &col, &eb), DIP_ESYNTAX);
    CU_ASSERT(col > 0);
    dip_store_close(s);
    /* a store keyed by src cannot be opened as dport */
    CU_ASSERT_EQUAL(dip_store_open(dir, DIP_KEY_DPORT, &o, &s, NULL, &eb), DIP_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "src"));
}

struct scan_state {
    struct dip_flow prev;
    size_t n;
    int unordered;
};

static int visit(void *ctx, const struct dip_flow *fl)
{
    struct scan_state *st = ctx;
    if (st->n && dip_flow_key_cmp(&st->prev, fl, DIP_KEY_SRC) > 0) st->unordered++;
    st->prev = *fl;
    st->n++;
    return 0;
}

static void test_scan_streams_every_record_in_key_order(void)
{
    struct dip_store_options o;
    struct dip_store *s = open_small(&o);
    struct dip_flow f[700];
    make_flows(f, 700, 8);
    struct dip_errbuf eb;
    dip_store_insert(s, f, 300, NULL);
    dip_store_seal(s, &eb);
    dip_store_insert(s, f + 300, 400, NULL);
    struct scan_state st = { .n = 0 };
    CU_ASSERT_EQUAL(dip_store_scan(s, NULL, visit, &st, NULL, &eb), DIP_OK);
    CU_ASSERT_EQUAL(st.n, 700);
    CU_ASSERT_EQUAL(st.unordered, 0);
    dip_store_close(s);
}

/* Queries between inserts see the active part in key order (sorted runs
 * made and merged as records come): the same answers as a store that
 * sorts all of it at once after a restart. */
static void test_queries_between_inserts_match_a_fresh_sort(void)
{
    struct dip_store_options o;
    struct dip_store *s = open_small(&o);
    static struct dip_flow f[2900];
    make_flows(f, 2900, 5);
    static const char *const qs[] = { "//flow[@dport=22]", "//flow[@src='10.0.0.7' or @src='10.0.0.9']",
                                      "count(//flow[@proto=17])", "/tank/o/o/o/o[1]/flow[1]" };
    size_t done = 0, step = 1;
    while (done < 2900) {
        size_t n = step < 2900 - done ? step : 2900 - done;
        CU_ASSERT_EQUAL_FATAL(dip_store_insert(s, f + done, n, NULL), DIP_OK);
        done += n;
        step = step * 3 % 701 + 1; /* batch sizes from 1 to 701 */
        /* the reference: a new store given the same records in one insert */
        char ref_dir[300];
        snprintf(ref_dir, sizeof ref_dir, "%s/ref-%zu", dir, done);
        struct dip_store *ref = NULL;
        struct dip_errbuf eb;
        CU_ASSERT_EQUAL_FATAL(dip_store_open(ref_dir, DIP_KEY_SRC, &o, &ref, NULL, &eb), DIP_OK);
        CU_ASSERT_EQUAL_FATAL(dip_store_insert(ref, f, done, NULL), DIP_OK);
        for (int k = 0; k < 4; k++) {
            char *incremental = query_text(s, qs[k], NULL), *fresh = query_text(ref, qs[k], NULL);
            CU_ASSERT_STRING_EQUAL(incremental, fresh);
            free(fresh);
            free(incremental);
        }
        dip_store_close(ref);
    }
    struct dip_store_stats st;
    dip_store_stats(s, &st);
    CU_ASSERT_EQUAL(st.active_records, 2900);
    dip_store_close(s);
}

/* An active part larger than the runs may grow (RUN_MERGE_MAX) and sorted
 * ahead of the queries (dip_store_index_active) reads like one sorted at
 * once: the same answers, and nothing left for a query to sort. */
static void test_active_part_indexed_ahead_in_capped_runs(void)
{
    struct dip_store_options o;
    dip_store_options_default(&o);
    o.seal_records = 1000000;
    o.chunk_records = 1024;
    o.sync = false;
    struct dip_store *s = NULL, *ref = NULL;
    struct dip_errbuf eb;
    CU_ASSERT_EQUAL_FATAL(dip_store_open(dir, DIP_KEY_SRC, &o, &s, NULL, &eb), DIP_OK);
    enum { N = 90000 };
    struct dip_flow *f = malloc(N * sizeof *f);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    make_flows(f, N, 11);
    for (size_t done = 0, k = 0; done < N; k++) {
        size_t n = k % 3 == 0 ? 20000 : 2500; /* new runs bigger and smaller than the last */
        if (n > N - done) n = N - done;
        CU_ASSERT_EQUAL_FATAL(dip_store_insert(s, f + done, n, NULL), DIP_OK);
        done += n;
        CU_ASSERT_EQUAL(dip_store_active_unindexed(s), n);
        CU_ASSERT_EQUAL(dip_store_index_active(s, &eb), DIP_OK);
        CU_ASSERT_EQUAL(dip_store_active_unindexed(s), 0);
    }
    char ref_dir[300];
    snprintf(ref_dir, sizeof ref_dir, "%s/ref", dir);
    CU_ASSERT_EQUAL_FATAL(dip_store_open(ref_dir, DIP_KEY_SRC, &o, &ref, NULL, &eb), DIP_OK);
    CU_ASSERT_EQUAL_FATAL(dip_store_insert(ref, f, N, NULL), DIP_OK);
    static const char *const qs[] = { "//flow[@dport=22]", "//flow[@src='10.0.0.7' or @src='10.0.0.9']",
                                      "count(//flow[@proto=17])", "/tank/o/o/o/o[1]/flow[1]", "//flow[@sport<1200]" };
    for (int k = 0; k < 5; k++) {
        uint64_t c1 = 0, c2 = 0;
        char *indexed = query_text(s, qs[k], &c1), *fresh = query_text(ref, qs[k], &c2);
        CU_ASSERT_STRING_EQUAL(indexed, fresh);
        CU_ASSERT_EQUAL(c1, c2);
        free(fresh);
        free(indexed);
    }
    dip_store_close(ref);
    dip_store_close(s);
    free(f);
}

/* A query narrowed on the tank key reads only the records of each active
 * run between two binary searches (IPv4 keys, then IPv6 ones, rise in two
 * pieces): in every tank, answers from a dozen runs equal those of the same
 * records sealed, for keys in either piece, both, and none. */
static void test_runs_read_within_the_key_window(void)
{
    enum { N = 9000, PER_RUN = 700 };
    struct dip_flow *f = malloc(N * sizeof *f);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    make_flows(f, N, 23);
    char v4[64], v6[64];
    size_t i6 = 0;
    while (i6 < N && dip_addr_is_v4(&f[i6].src)) i6++;
    CU_ASSERT_FATAL(i6 < N);
    dip_addr_format(&f[7].src, v4);
    dip_addr_format(&f[i6].src, v6);
    for (int key = DIP_KEY_SRC; key <= DIP_KEY_DPORT; key++) {
        struct dip_store_options o;
        dip_store_options_default(&o);
        o.seal_records = 1000000;
        o.chunk_records = 64;
        o.sync = false;
        char runs_dir[300], sealed_dir[300];
        snprintf(runs_dir, sizeof runs_dir, "%s/runs-%d", dir, key);
        snprintf(sealed_dir, sizeof sealed_dir, "%s/sealed-%d", dir, key);
        struct dip_store *s = NULL, *ref = NULL;
        struct dip_errbuf eb;
        CU_ASSERT_EQUAL_FATAL(dip_store_open(runs_dir, (enum dip_tank_key)key, &o, &s, NULL, &eb), DIP_OK);
        CU_ASSERT_EQUAL_FATAL(dip_store_open(sealed_dir, (enum dip_tank_key)key, &o, &ref, NULL, &eb), DIP_OK);
        for (size_t done = 0; done < N; done += PER_RUN) {
            size_t n = N - done < PER_RUN ? N - done : PER_RUN;
            CU_ASSERT_EQUAL_FATAL(dip_store_insert(s, f + done, n, NULL), DIP_OK);
            CU_ASSERT_EQUAL(dip_store_index_active(s, &eb), DIP_OK);
        }
        CU_ASSERT_EQUAL_FATAL(dip_store_insert(ref, f, N, NULL), DIP_OK);
        CU_ASSERT_EQUAL_FATAL(dip_store_seal(ref, &eb), DIP_OK);
        const char *attr = key == DIP_KEY_SRC ? "src" : key == DIP_KEY_DST ? "dst" : key == DIP_KEY_SPORT ? "sport" : "dport";
        char dst4[64];
        dip_addr_format(&f[11].dst, dst4);
        const char *qs[8];
        char buf[8][400];
        int nq = 0;
        if (key == DIP_KEY_SRC) {
            snprintf(buf[nq], sizeof buf[nq], "//flow[@src='%s']", v4), nq++;
            snprintf(buf[nq], sizeof buf[nq], "//flow[@src='%s']", v6), nq++;
            snprintf(buf[nq], sizeof buf[nq], "//flow[@src='%s' or @src='%s']", v4, v6), nq++;
            snprintf(buf[nq], sizeof buf[nq], "count(//flow[@src='10.255.255.255'])"), nq++;
            snprintf(buf[nq], sizeof buf[nq], "count(//flow[@src='2001:db8::4'])"), nq++;
        } else if (key == DIP_KEY_DST) {
            snprintf(buf[nq], sizeof buf[nq], "//flow[@dst='%s']", dst4), nq++;
            snprintf(buf[nq], sizeof buf[nq], "count(//flow[@dst='::1'])"), nq++;
        } else {
            snprintf(buf[nq], sizeof buf[nq], "//flow[@%s=%u]", attr, key == DIP_KEY_SPORT ? f[3].sport : 443u), nq++;
            snprintf(buf[nq], sizeof buf[nq], "count(//flow[@%s>=1024 and @%s<=9000])", attr, attr), nq++;
            snprintf(buf[nq], sizeof buf[nq], "count(//flow[@%s=65535])", attr), nq++;
        }
        for (int k = 0; k < nq; k++) qs[k] = buf[k];
        for (int k = 0; k < nq; k++) {
            uint64_t c1 = 0, c2 = 0;
            char *from_runs = query_text(s, qs[k], &c1), *sealed = query_text(ref, qs[k], &c2);
            CU_ASSERT_STRING_EQUAL(from_runs, sealed);
            CU_ASSERT_EQUAL(c1, c2);
            if (k == 0) CU_ASSERT(c1 > 0); /* the first query of each tank finds records */
            free(from_runs);
            free(sealed);
        }
        dip_store_close(ref);
        dip_store_close(s);
    }
    free(f);
}

/* Splits text into lines and sorts them (answers of two tanks hold the
 * same records in different orders). The lines point into text. */
static int line_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }
static char **sorted_lines(char *text, size_t *n)
{
    size_t cap = 1;
    for (const char *p = text; *p; p++) cap += *p == '\n';
    char **v = malloc(cap * sizeof *v);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    *n = 0;
    for (char *save = NULL, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) v[(*n)++] = l;
    qsort(v, *n, sizeof *v, line_cmp);
    return v;
}

/* A point query whose key reaches hundreds of chunks in several segments
 * reads them ahead on two threads: its answer holds the same records as
 * the same query on a tank it does not narrow (whole chunks read in the
 * merge), in the key's order; the chunks it decoded whole stay cached. */
static void test_point_query_read_ahead_equals_the_plain_read(void)
{
    enum { N = 40000 };
    struct dip_flow *f = malloc(N * sizeof *f);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    make_flows(f, N, 31);
    struct dip_store *s[2] = { NULL, NULL };
    static const enum dip_tank_key keys[2] = { DIP_KEY_DPORT, DIP_KEY_SRC };
    for (int k = 0; k < 2; k++) {
        struct dip_store_options o;
        dip_store_options_default(&o);
        o.chunk_records = 16; /* dport 22: ~8,000 records, ~500 chunks in 4 segments */
        o.seal_records = N / 4;
        o.compact_fanin = 1;
        o.sync = false;
        char d[300];
        snprintf(d, sizeof d, "%s/ahead-%d", dir, k);
        struct dip_errbuf eb;
        CU_ASSERT_EQUAL_FATAL(dip_store_open(d, keys[k], &o, &s[k], NULL, &eb), DIP_OK);
        for (size_t done = 0; done < N; done += N / 4) {
            CU_ASSERT_EQUAL_FATAL(dip_store_insert(s[k], f + done, N / 4, NULL), DIP_OK);
            CU_ASSERT_EQUAL_FATAL(dip_store_seal(s[k], &eb), DIP_OK);
        }
    }
    static const char *const qs[] = { "//flow[@dport=22]", "//flow[@dport=22 or @dport=443]", "//flow[@dport>=53 and @dport<=80]" };
    for (size_t q = 0; q < sizeof qs / sizeof qs[0]; q++) {
        struct dip_store_stats st;
        dip_store_stats(s[0], &st);
        uint64_t cached_before = st.cache_bytes;
        uint64_t c1 = 0, c2 = 0;
        char *ahead = query_text(s[0], qs[q], &c1), *plain = query_text(s[1], qs[q], &c2);
        CU_ASSERT_EQUAL(c1, c2);
        CU_ASSERT(c1 > 4096); /* enough records for the read-ahead */
        if (q == 0) {
            /* the chunks dport 22 fills alone were decoded whole by the
             * read-ahead and kept: the cache holds them after one query, and
             * the same query answered from there gives the same document */
            CU_ASSERT_EQUAL(cached_before, 0);
            dip_store_stats(s[0], &st);
            CU_ASSERT(st.cache_bytes > 0);
            uint64_t c3 = 0;
            char *again = query_text(s[0], qs[q], &c3);
            CU_ASSERT_EQUAL(c3, c1);
            CU_ASSERT_STRING_EQUAL(again, ahead);
            free(again);
        }
        /* in the key's order: dport never falls */
        unsigned last = 0;
        for (const char *p = ahead; (p = strstr(p, " dport=\"")); p += 8) {
            unsigned v = (unsigned)strtoul(p + 8, NULL, 10);
            CU_ASSERT_FATAL(v >= last);
            last = v;
        }
        size_t n1, n2;
        char **l1 = sorted_lines(ahead, &n1), **l2 = sorted_lines(plain, &n2);
        CU_ASSERT_EQUAL_FATAL(n1, n2);
        for (size_t i = 0; i < n1; i++) CU_ASSERT_STRING_EQUAL_FATAL(l1[i], l2[i]);
        free(l1);
        free(l2);
        free(ahead);
        free(plain);
    }
    dip_store_close(s[0]);
    dip_store_close(s[1]);
    free(f);
}

/* Inflates a whole gzip file through zlib's reader (which checks the CRC
 * and length in the trailer). Returns: the text length, or -1. */
static long gunzip_length(const char *path)
{
    gzFile g = gzopen(path, "rb");
    if (!g) return -1;
    char buf[65536];
    long total = 0;
    int n;
    while ((n = gzread(g, buf, sizeof buf)) > 0) total += n;
    int err;
    gzerror(g, &err);
    gzclose(g);
    return n < 0 || (err != Z_OK && err != Z_STREAM_END) ? -1 : total;
}

/* Segments deflated by zlib (level 4), by igzip level 2 (sealed) and by
 * igzip level 3 (merged) hold the same logical document and are each one
 * valid gzip stream for zlib. */
static void test_igzip_segments_read_like_zlib_ones(void)
{
    struct dip_flow f[2500];
    make_flows(f, 2500, 3);
    static const char *const names[3] = { "zlib", "sealed", "merged" };
    char *text[3];
    uint64_t n[3];
    long plain[3], bytes[3];
    for (int v = 0; v < 3; v++) {
        struct dip_store_options o;
        dip_store_options_default(&o);
        o.seal_records = 100000;
        o.chunk_records = 128;
        o.sync = false;
        o.gzip_level = v == 0 ? 4 : 0;
        char sub[300], seg[400];
        snprintf(sub, sizeof sub, "%s/%s", dir, names[v]);
        struct dip_store *s = NULL;
        struct dip_errbuf eb;
        CU_ASSERT_EQUAL_FATAL(dip_store_open(sub, DIP_KEY_SRC, &o, &s, NULL, &eb), DIP_OK);
        for (int part = 0; part < (v == 2 ? 3 : 1); part++) { /* three segments to merge */
            size_t from = v == 2 ? (size_t)part * 1000 : 0, to = v == 2 && part < 2 ? from + 1000 : 2500;
            CU_ASSERT_EQUAL(dip_store_insert(s, f + from, to - from, &eb), DIP_OK);
            CU_ASSERT_EQUAL(dip_store_seal(s, &eb), DIP_OK);
        }
        size_t merged = 0;
        if (v == 2) {
            CU_ASSERT_EQUAL(dip_store_compact(s, &merged, &eb), DIP_OK);
            CU_ASSERT_EQUAL(merged, 3);
        }
        text[v] = query_text(s, "//flow[@dport=22 or @proto=17]", &n[v]);
        dip_store_close(s);
        snprintf(seg, sizeof seg, v == 2 ? "%s/seg-000001-2500.xml.gz" : "%s/seg-000001.xml.gz", sub);
        plain[v] = gunzip_length(seg);
        struct stat st;
        bytes[v] = stat(seg, &st) == 0 ? (long)st.st_size : -1;
        CU_ASSERT(plain[v] > 2500 * 100);
    }
    CU_ASSERT(n[0] > 100);
    for (int v = 1; v < 3; v++) {
        CU_ASSERT_EQUAL(n[0], n[v]);
        CU_ASSERT_STRING_EQUAL(text[0], text[v]);
        CU_ASSERT_EQUAL(plain[0], plain[v]);
    }
    /* igzip level 3 is denser than level 2, zlib level 4 denser still */
    CU_ASSERT(bytes[0] > 0 && bytes[0] < bytes[2] && bytes[2] < bytes[1]);
    for (int v = 0; v < 3; v++) free(text[v]);
}

/* Answers copy sealed records' text from their chunks instead of formatting
 * them: the text must be what formatting gives, for records whose ID was
 * left out as the default and for those that keep theirs, on every path a
 * chunk takes (read in part for a rare key, decoded whole once read often,
 * then from the cache), in range and point queries alike. */
static void test_answers_from_chunk_text_equal_formatted_records(void)
{
    struct dip_store_options o;
    struct dip_store *s = open_small(&o);
    enum { N = 2500 };
    struct dip_flow *f = calloc(N, sizeof *f);
    make_flows(f, N, 9);
    for (size_t i = 0; i < N; i += 3) f[i].id ^= 0x5a5a; /* not the default: stored with the record */
    CU_ASSERT_EQUAL(dip_store_insert(s, f, N, NULL), DIP_OK);
    char point[64], two[128], a[DIP_ADDR_TEXT_MAX], b[DIP_ADDR_TEXT_MAX];
    dip_addr_format(&f[N / 2].src, a);
    dip_addr_format(&f[N / 3].src, b);
    snprintf(point, sizeof point, "//flow[@src='%s']", a);
    snprintf(two, sizeof two, "//flow[@src='%s' or @src='%s']", b, a);
    const char *queries[] = { point, two, "//flow[@dport=22]" };
    enum { NQ = sizeof queries / sizeof queries[0] };
    char *before[NQ];
    for (size_t q = 0; q < NQ; q++) before[q] = query_text(s, queries[q], NULL); /* the active part: formatted */
    struct dip_errbuf eb;
    CU_ASSERT_EQUAL_FATAL(dip_store_seal(s, &eb), DIP_OK);
    for (int round = 0; round < 10 /* past the reads that admit a chunk to the cache */; round++) {
        for (size_t q = 0; q < NQ; q++) {
            char *after = query_text(s, queries[q], NULL);
            CU_ASSERT(strlen(before[q]) > 0);
            CU_ASSERT_STRING_EQUAL(before[q], after);
            free(after);
        }
    }
    for (size_t q = 0; q < NQ; q++) free(before[q]);
    free(f);
    dip_store_close(s);
}

int dip_suite_store(void)
{
    /* every test gets a fresh folder */
    CU_pSuite s = CU_add_suite_with_setup_and_teardown("store", NULL, NULL, setup, teardown);
    if (!s) return -1;
#define T(name)                                                                        \
    do {                                                                               \
        CU_pTest t = CU_add_test(s, #name, name);                                      \
        if (!t) return -1;                                                             \
    } while (0)
    T(test_records_survive_reopen_through_wal_replay);
    T(test_sealing_keeps_the_logical_document);
    T(test_equal_keys_are_in_document_order_however_sealed);
    T(test_torn_wal_tail_is_dropped_with_a_warning);
    T(test_compaction_merges_small_segments_without_changing_answers);
    T(test_chunk_indexes_beside_segments);
    T(test_tiered_merge_runs_beside_a_seal_and_keeps_the_document);
    T(test_failed_merge_changes_nothing);
    T(test_seal_steps_commit_in_the_write_step);
    T(test_failed_seal_changes_nothing);
    T(test_point_query_on_the_key_skips_chunks);
    T(test_limits_and_errors_are_reported);
    T(test_scan_streams_every_record_in_key_order);
    T(test_igzip_segments_read_like_zlib_ones);
    T(test_queries_between_inserts_match_a_fresh_sort);
    T(test_active_part_indexed_ahead_in_capped_runs);
    T(test_runs_read_within_the_key_window);
    T(test_point_query_read_ahead_equals_the_plain_read);
    T(test_answers_from_chunk_text_equal_formatted_records);
#undef T
    return 0;
}
