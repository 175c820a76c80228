/* test_store_dedupe.c - exactly-once batch insertion into a leaf store
 * (dip_store_insert_batch): duplicates in a session, out-of-order seqs in
 * the window, and the batch memory across WAL replay, torn WAL tails,
 * sealing, compaction and the manifest; old untagged WAL entries still replay. */
#include <CUnit/CUnit.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/schema.h"
#include "store/store.h"

static char dir[256];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/dip-test-dedupe-XXXXXX");
    if (!mkdtemp(dir)) dir[0] = 0;
}

static void teardown(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (dir[0] && system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
}

/* Records with distinct ids, so a record stored twice shows in the counts. */
static void make_flows(struct dip_flow *f, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        memset(&f[i], 0, sizeof f[i]);
        uint32_t x = (seed * 7919u + (uint32_t)i) * 2654435761u;
        dip_addr_from_v4(&f[i].src, 0x0a000000u | (x >> 12));
        dip_addr_from_v4(&f[i].dst, 0xc0a80000u | ((x >> 3) & 0xff));
        f[i].sport = (uint16_t)(1024 + seed % 1000);
        f[i].dport = (uint16_t)(i % 7 ? 443 : 53);
        f[i].proto = 6;
        f[i].packets = 1 + i % 10;
        f[i].bytes = 100 * f[i].packets;
        f[i].first = 1700000000000ull + seed * 1000ull + i;
        f[i].last = f[i].first + 5;
        f[i].id = dip_flow_id_random(&f[i], dip_flow_id_default_key);
    }
}

static struct dip_store *open_store(size_t seal_records)
{
    struct dip_store_options o;
    dip_store_options_default(&o);
    o.seal_records = seal_records;
    o.chunk_records = 64;
    o.sync = false;
    struct dip_store *s = NULL;
    struct dip_errbuf eb = { { 0 } };
    int rc = dip_store_open(dir, DIP_KEY_SRC, &o, &s, NULL, &eb);
    if (rc) fprintf(stderr, "\n  open: %s\n", eb.msg);
    CU_ASSERT_EQUAL(rc, DIP_OK);
    return s;
}

static uint64_t records(struct dip_store *s)
{
    struct dip_store_stats st;
    dip_store_stats(s, &st);
    return st.records;
}

/* Returns: 1 stored, 0 duplicate, -1 error. Each (origin, seq) gets its own records. */
static int put(struct dip_store *s, const char *origin, uint64_t seq, size_t n)
{
    struct dip_flow f[64];
    CU_ASSERT_FATAL(n <= 64);
    make_flows(f, n, (uint32_t)seq * 31u + (uint32_t)strlen(origin));
    bool dup = true;
    struct dip_errbuf eb = { { 0 } };
    int rc = dip_store_insert_batch(s, origin, seq, f, n, &dup, &eb);
    if (rc) return -1;
    return dup ? 0 : 1;
}

/* Returns: the value of a number expression (a count). */
static uint64_t count_query(struct dip_store *s, const char *q)
{
    struct dip_store_answer a;
    struct dip_errbuf eb = { { 0 } };
    CU_ASSERT_EQUAL_FATAL(dip_store_query(s, q, strlen(q), &a, NULL, &eb), DIP_OK);
    uint64_t n = (uint64_t)a.number;
    dip_store_answer_free(&a);
    return n;
}

static void test_a_repeated_batch_is_reported_as_duplicate_and_not_stored(void)
{
    struct dip_store *s = open_store(100000);
    CU_ASSERT_FATAL(s != NULL);
    CU_ASSERT_EQUAL(put(s, "repl-a", 1, 10), 1);
    CU_ASSERT_EQUAL(put(s, "repl-a", 1, 10), 0);
    CU_ASSERT_EQUAL(put(s, "repl-a", 2, 5), 1);
    CU_ASSERT_EQUAL(put(s, "repl-a", 2, 5), 0);
    CU_ASSERT_EQUAL(put(s, "repl-a", 1, 10), 0);
    /* seqs are per origin */
    CU_ASSERT_EQUAL(put(s, "repl.b_2", 1, 7), 1);
    CU_ASSERT_EQUAL(put(s, "repl.b_2", 1, 7), 0);
    CU_ASSERT_EQUAL(records(s), 22);
    CU_ASSERT_EQUAL(count_query(s, "count(//flow)"), 22);
    /* a duplicate leaves no trace in the WAL either */
    struct dip_store_stats before, after;
    dip_store_stats(s, &before);
    CU_ASSERT_EQUAL(put(s, "repl-a", 2, 5), 0);
    dip_store_stats(s, &after);
    CU_ASSERT_EQUAL(after.wal_bytes, before.wal_bytes);
    dip_store_close(s);
}

static void test_bad_origins_and_seqs_are_refused(void)
{
    struct dip_store *s = open_store(100000);
    CU_ASSERT_FATAL(s != NULL);
    char long_name[80];
    memset(long_name, 'x', 65);
    long_name[65] = 0;
    const char *bad[] = { "", "a b", "a/b", "ü", "a\"b", long_name };
    struct dip_flow f[1];
    make_flows(f, 1, 1);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bool dup = true;
        struct dip_errbuf eb = { { 0 } };
        CU_ASSERT_EQUAL(dip_store_insert_batch(s, bad[i], 1, f, 1, &dup, &eb), DIP_EINVAL);
        CU_ASSERT_FALSE(dup);
    }
    bool dup;
    CU_ASSERT_EQUAL(dip_store_insert_batch(s, "ok", 0, f, 1, &dup, NULL), DIP_EINVAL);
    CU_ASSERT_EQUAL(dip_store_insert_batch(s, "ok", 1, NULL, 1, &dup, NULL), DIP_EINVAL);
    long_name[64] = 0; /* 64 bytes is the longest name */
    CU_ASSERT_EQUAL(dip_store_insert_batch(s, long_name, 1, f, 1, &dup, NULL), DIP_OK);
    CU_ASSERT_FALSE(dup);
    CU_ASSERT_EQUAL(records(s), 1);
    dip_store_close(s);
}

static void test_out_of_order_batches_within_the_window_are_each_stored_once(void)
{
    struct dip_store *s = open_store(100000);
    CU_ASSERT_FATAL(s != NULL);
    const uint64_t order[] = { 5, 3, 4, 1, 9 };
    for (size_t i = 0; i < 5; i++) CU_ASSERT_EQUAL(put(s, "r", order[i], 3), 1);
    for (size_t i = 0; i < 5; i++) CU_ASSERT_EQUAL(put(s, "r", order[i], 3), 0);
    /* the gaps are still open, once */
    const uint64_t gaps[] = { 2, 6, 7, 8 };
    for (size_t i = 0; i < 4; i++) CU_ASSERT_EQUAL(put(s, "r", gaps[i], 3), 1);
    for (uint64_t q = 1; q <= 9; q++) CU_ASSERT_EQUAL(put(s, "r", q, 3), 0);
    CU_ASSERT_EQUAL(records(s), 27);
    /* the window: seq 10000 makes 10000-4096 the oldest open seq; older ones
     * count as stored (tag-only batches keep this cheap) */
    CU_ASSERT_EQUAL(put(s, "w", 10000, 0), 1);
    CU_ASSERT_EQUAL(put(s, "w", 10000 - DIP_STORE_DEDUPE_WINDOW - 1, 0), 0);
    CU_ASSERT_EQUAL(put(s, "w", 1, 0), 0);
    CU_ASSERT_EQUAL(put(s, "w", 10000 - DIP_STORE_DEDUPE_WINDOW, 2), 1);
    CU_ASSERT_EQUAL(put(s, "w", 10000 - DIP_STORE_DEDUPE_WINDOW, 2), 0);
    CU_ASSERT_EQUAL(put(s, "w", 9999, 0), 1);
    /* moving the top by less than the window keeps what was stored below */
    CU_ASSERT_EQUAL(put(s, "w", 10100, 0), 1);
    CU_ASSERT_EQUAL(put(s, "w", 10000, 0), 0);
    CU_ASSERT_EQUAL(put(s, "w", 9999, 0), 0);
    CU_ASSERT_EQUAL(put(s, "w", 10050, 0), 1);
    CU_ASSERT_EQUAL(put(s, "w", 10050, 0), 0);
    /* seqs more than 4096 below the top (10100) count as stored */
    CU_ASSERT_EQUAL(put(s, "w", 10000 - DIP_STORE_DEDUPE_WINDOW + 50, 0), 0);
    CU_ASSERT_EQUAL(records(s), 29);
    dip_store_close(s);
}

/* Stores seqs 1..top of origin except multiples of 7 (as tag-only batches,
 * a few with records), to be checked by expect_pattern.
 * Returns: the records stored. */
static uint64_t put_pattern(struct dip_store *s, const char *origin, uint64_t top)
{
    uint64_t n = 0;
    int failed = 0;
    for (uint64_t q = 1; q <= top; q++) {
        if (q % 7 == 0) continue;
        size_t k = q % 100 == 1 ? 4 : 0;
        if (put(s, origin, q, k) != 1) failed++;
        n += k;
    }
    CU_ASSERT_EQUAL(failed, 0);
    return n;
}

/* The memory put_pattern left: gaps inside the window are open (and get
 * filled now), everything else is a duplicate. */
static void expect_pattern(struct dip_store *s, const char *origin, uint64_t top)
{
    int wrong = 0;
    for (uint64_t q = top; q >= 1; q--) {
        bool open_gap = q % 7 == 0 && q + DIP_STORE_DEDUPE_WINDOW >= top;
        if (put(s, origin, q, 0) != (open_gap ? 1 : 0)) wrong++;
    }
    CU_ASSERT_EQUAL(wrong, 0);
}

static void test_batch_memory_survives_reopen_through_wal_replay(void)
{
    struct dip_store *s = open_store(100000);
    CU_ASSERT_FATAL(s != NULL);
    uint64_t n = put_pattern(s, "r", 5000);
    CU_ASSERT(n > 0);
    CU_ASSERT_EQUAL(put(s, "other", 3, 6), 1);
    n += 6;
    CU_ASSERT_EQUAL(records(s), n);
    dip_store_close(s); /* a crash: nothing sealed, all in the WAL */
    s = open_store(100000);
    CU_ASSERT_FATAL(s != NULL);
    CU_ASSERT_EQUAL(records(s), n);
    expect_pattern(s, "r", 5000);
    CU_ASSERT_EQUAL(put(s, "other", 3, 6), 0);
    CU_ASSERT_EQUAL(put(s, "other", 2, 6), 1);
    CU_ASSERT_EQUAL(records(s), n + 6);
    dip_store_close(s);
}

static void validate_manifest(void)
{
    const struct dip_schema *schema;
    struct dip_errbuf eb = { { 0 } };
    CU_ASSERT_EQUAL_FATAL(dip_schema_shared(&schema, &eb), DIP_OK);
    char path[400];
    snprintf(path, sizeof path, "%s/MANIFEST.xml", dir);
    struct dip_schema_report rep;
    int rc = dip_schema_validate_file(schema, path, NULL, NULL, &rep, &eb);
    if (rc) fprintf(stderr, "\n  %s\n", eb.msg);
    CU_ASSERT_EQUAL(rc, DIP_OK);
}

static bool manifest_has(const char *needle)
{
    char path[400];
    snprintf(path, sizeof path, "%s/MANIFEST.xml", dir);
    FILE *f = fopen(path, "r");
    if (!f) return false;
    static char text[1 << 16];
    size_t len = fread(text, 1, sizeof text - 1, f);
    text[len] = 0;
    fclose(f);
    return strstr(text, needle) != NULL;
}

static void test_batch_memory_survives_seal_compaction_and_reopen(void)
{
    struct dip_store *s = open_store(1000);
    CU_ASSERT_FATAL(s != NULL);
    struct dip_errbuf eb = { { 0 } };
    /* small segments (sealed every third batch), so that compaction merges them */
    for (uint64_t q = 1; q <= 40; q++) {
        if (q != 17) CU_ASSERT_EQUAL(put(s, "seal", q, 30), 1);
        if (q % 3 == 0) CU_ASSERT_EQUAL(dip_store_seal(s, &eb), DIP_OK);
    }
    uint64_t pattern = put_pattern(s, "r", 5000);
    CU_ASSERT_EQUAL(put(s, "seal", 41, 30), 1);
    CU_ASSERT_EQUAL(dip_store_seal(s, &eb), DIP_OK); /* seals with r's tags in the WAL */
    struct dip_store_stats st;
    dip_store_stats(s, &st);
    CU_ASSERT(st.segments >= 10);
    CU_ASSERT_EQUAL(st.wal_bytes, 0); /* the tags now live in the manifest only */
    uint64_t n = st.records;
    CU_ASSERT_EQUAL(n, 40 * 30 + pattern);
    CU_ASSERT(manifest_has("<origin name=\"seal\" seq=\"41\""));
    CU_ASSERT(manifest_has("<origin name=\"r\" seq=\"5000\""));
    validate_manifest();
    size_t merged = 0;
    CU_ASSERT_EQUAL(dip_store_compact(s, &merged, &eb), DIP_OK);
    CU_ASSERT(merged >= 2);
    CU_ASSERT(manifest_has("<origin name=\"seal\" seq=\"41\""));
    validate_manifest();
    CU_ASSERT_EQUAL(put(s, "seal", 5, 30), 0);
    dip_store_close(s);

    s = open_store(1000);
    CU_ASSERT_FATAL(s != NULL);
    CU_ASSERT_EQUAL(records(s), n);
    for (uint64_t q = 1; q <= 41; q++) CU_ASSERT_EQUAL(put(s, "seal", q, 30), q == 17 ? 1 : 0);
    expect_pattern(s, "r", 5000);
    CU_ASSERT_EQUAL(records(s), n + 30);
    CU_ASSERT_EQUAL(count_query(s, "count(//flow)"), n + 30);
    dip_store_close(s);
}

static void test_compaction_between_seals_does_not_double_wal_batches(void)
{
    /* compaction writes the live memory while tagged batches are still in
     * the WAL; a restart must replay them once and keep them remembered */
    struct dip_store *s = open_store(1000);
    CU_ASSERT_FATAL(s != NULL);
    struct dip_errbuf eb = { { 0 } };
    for (uint64_t q = 1; q <= 12; q++) {
        CU_ASSERT_EQUAL(put(s, "c", q, 25), 1);
        if (q % 2 == 0) CU_ASSERT_EQUAL(dip_store_seal(s, &eb), DIP_OK);
    }
    CU_ASSERT_EQUAL(put(s, "c", 14, 10), 1); /* stays in the WAL */
    size_t merged = 0;
    CU_ASSERT_EQUAL(dip_store_compact(s, &merged, &eb), DIP_OK);
    CU_ASSERT(merged >= 2);
    CU_ASSERT(manifest_has("<origin name=\"c\" seq=\"14\""));
    uint64_t n = records(s);
    CU_ASSERT_EQUAL(n, 12 * 25 + 10);
    dip_store_close(s);
    s = open_store(1000);
    CU_ASSERT_FATAL(s != NULL);
    CU_ASSERT_EQUAL(records(s), n);
    CU_ASSERT_EQUAL(put(s, "c", 14, 10), 0);
    CU_ASSERT_EQUAL(put(s, "c", 13, 10), 1);
    CU_ASSERT_EQUAL(records(s), n + 10);
    dip_store_close(s);
}

static void write_file(const char *path, const uint8_t *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static char warned[512];
static void on_warning(const char *msg) { snprintf(warned, sizeof warned, "%s", msg); }

/* Cuts the WAL inside its last entry (a tagged batch of last_n records) at
 * every byte: after reopening, the batch is there with its tag or neither. */
static void torn_tail_every_byte(size_t last_n)
{
    struct dip_store *s = open_store(100000);
    CU_ASSERT_FATAL(s != NULL);
    CU_ASSERT_EQUAL(put(s, "t", 1, 5), 1);
    struct dip_flow old[3];
    make_flows(old, 3, 999);
    CU_ASSERT_EQUAL(dip_store_insert(s, old, 3, NULL), DIP_OK); /* untagged */
    struct dip_store_stats st;
    dip_store_stats(s, &st);
    size_t keep = (size_t)st.wal_bytes;
    CU_ASSERT_EQUAL(put(s, "t", 2, last_n), 1);
    dip_store_stats(s, &st);
    size_t full = (size_t)st.wal_bytes;
    dip_store_close(s);

    char wal[400];
    snprintf(wal, sizeof wal, "%s/wal-000001.log", dir);
    uint8_t *bytes = malloc(full);
    CU_ASSERT_FATAL(bytes != NULL);
    int fd = open(wal, O_RDONLY);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL_FATAL(read(fd, bytes, full), (ssize_t)full);
    close(fd);
    int with = 0, without = 0, wrong = 0;
    for (size_t cut = keep; cut <= full; cut++) {
        write_file(wal, bytes, cut);
        struct dip_store_options o;
        dip_store_options_default(&o);
        o.sync = false;
        struct dip_store *r = NULL;
        struct dip_errbuf eb = { { 0 } };
        warned[0] = 0;
        if (dip_store_open(dir, -1, &o, &r, on_warning, &eb) != DIP_OK) {
            wrong++;
            continue;
        }
        uint64_t n = records(r);
        bool dup2 = put(r, "t", 2, last_n) == 0;
        if (put(r, "t", 1, 5) != 0) wrong++;
        if (n == 8 + last_n && dup2 && cut == full && !warned[0]) with++;
        else if (n == 8 && !dup2 && cut < full && (cut == keep || strstr(warned, "torn"))) without++;
        else wrong++;
        /* either way the batch is now stored exactly once */
        if (records(r) != 8 + last_n) wrong++;
        dip_store_close(r);
    }
    CU_ASSERT_EQUAL(wrong, 0);
    CU_ASSERT_EQUAL(with, 1);
    CU_ASSERT_EQUAL((size_t)without, full - keep);
    free(bytes);
}

static void test_a_torn_tagged_entry_loses_records_and_tag_together(void) { torn_tail_every_byte(6); }

static void test_a_torn_tag_only_entry_is_dropped_whole(void) { torn_tail_every_byte(0); }

static void test_untagged_wal_entries_of_the_old_format_still_replay(void)
{
    struct dip_store *s = open_store(100000);
    CU_ASSERT_FATAL(s != NULL);
    struct dip_flow f[20];
    make_flows(f, 20, 77);
    CU_ASSERT_EQUAL(dip_store_insert(s, f, 8, NULL), DIP_OK);
    dip_store_close(s);
    /* dip_store_insert still writes the original entry: [u32 length]["DIPB"...] */
    char wal[400];
    snprintf(wal, sizeof wal, "%s/wal-000001.log", dir);
    int fd = open(wal, O_RDONLY);
    CU_ASSERT_FATAL(fd >= 0);
    uint8_t head[8];
    CU_ASSERT_EQUAL(read(fd, head, 8), 8);
    close(fd);
    CU_ASSERT_EQUAL(memcmp(head + 4, "DIPB", 4), 0);

    s = open_store(100000);
    CU_ASSERT_FATAL(s != NULL);
    CU_ASSERT_EQUAL(records(s), 8);
    /* old and new entries mixed in one WAL */
    CU_ASSERT_EQUAL(put(s, "mix", 1, 4), 1);
    CU_ASSERT_EQUAL(dip_store_insert(s, f + 8, 12, NULL), DIP_OK);
    dip_store_close(s);
    s = open_store(100000);
    CU_ASSERT_FATAL(s != NULL);
    CU_ASSERT_EQUAL(records(s), 24);
    CU_ASSERT_EQUAL(put(s, "mix", 1, 4), 0);
    CU_ASSERT_EQUAL(count_query(s, "count(//flow[@sport=1101])"), 20); /* make_flows seed 77 */
    dip_store_close(s);
}

/* Rewrites MANIFEST.xml with one attribute value replaced. */
static void patch_manifest(const char *from, const char *to)
{
    char path[400];
    snprintf(path, sizeof path, "%s/MANIFEST.xml", dir);
    FILE *f = fopen(path, "r");
    CU_ASSERT_FATAL(f != NULL);
    static char text[1 << 16], out[1 << 16];
    size_t len = fread(text, 1, sizeof text - 1, f);
    text[len] = 0;
    fclose(f);
    char *at = strstr(text, from);
    CU_ASSERT_FATAL(at != NULL);
    snprintf(out, sizeof out, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    write_file(path, (const uint8_t *)out, strlen(out));
}

static void test_a_damaged_origin_in_the_manifest_is_reported(void)
{
    struct dip_store *s = open_store(100000);
    CU_ASSERT_FATAL(s != NULL);
    CU_ASSERT_EQUAL(put(s, "m", 1, 3), 1);
    CU_ASSERT_EQUAL(put(s, "m", 3, 3), 1);
    struct dip_errbuf eb = { { 0 } };
    CU_ASSERT_EQUAL(dip_store_seal(s, &eb), DIP_OK);
    dip_store_close(s);
    CU_ASSERT(manifest_has("<origin name=\"m\" seq=\"3\" window=\"4\"/>"));
    /* a window bit for seq 0 */
    patch_manifest("window=\"4\"", "window=\"6\"");
    struct dip_store_options o;
    dip_store_options_default(&o);
    struct dip_store *r = NULL;
    CU_ASSERT_EQUAL(dip_store_open(dir, -1, &o, &r, NULL, &eb), DIP_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "origin"));
    patch_manifest("window=\"6\"", "window=\"4x\"");
    CU_ASSERT_EQUAL(dip_store_open(dir, -1, &o, &r, NULL, &eb), DIP_ECORRUPT);
    patch_manifest("window=\"4x\"", "window=\"4\"");
    CU_ASSERT_EQUAL(dip_store_open(dir, -1, &o, &r, NULL, &eb), DIP_OK);
    CU_ASSERT_EQUAL(put(r, "m", 1, 3), 0);
    CU_ASSERT_EQUAL(put(r, "m", 3, 3), 0);
    CU_ASSERT_EQUAL(put(r, "m", 2, 3), 1);
    dip_store_close(r);
}

static void test_the_number_of_origins_is_bounded(void)
{
    struct dip_store *s = open_store(100000);
    CU_ASSERT_FATAL(s != NULL);
    char name[16];
    int stored = 0;
    for (int i = 0; i < 4096; i++) {
        snprintf(name, sizeof name, "o%d", i);
        stored += put(s, name, 1, 0) == 1;
    }
    CU_ASSERT_EQUAL(stored, 4096);
    bool dup;
    struct dip_errbuf eb = { { 0 } };
    CU_ASSERT_EQUAL(dip_store_insert_batch(s, "one-more", 1, NULL, 0, &dup, &eb), DIP_ERANGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "one-more"));
    /* known origins go on */
    CU_ASSERT_EQUAL(put(s, "o17", 2, 1), 1);
    CU_ASSERT_EQUAL(put(s, "o17", 1, 1), 0);
    dip_store_close(s);
}

int dip_suite_store_dedupe(void)
{
    CU_pSuite s = CU_add_suite_with_setup_and_teardown("store_dedupe", NULL, NULL, setup, teardown);
    if (!s) return -1;
#define T(name)                                                                        \
    do {                                                                               \
        CU_pTest t = CU_add_test(s, #name, name);                                      \
        if (!t) return -1;                                                             \
    } while (0)
    T(test_a_repeated_batch_is_reported_as_duplicate_and_not_stored);
    T(test_bad_origins_and_seqs_are_refused);
    T(test_out_of_order_batches_within_the_window_are_each_stored_once);
    T(test_batch_memory_survives_reopen_through_wal_replay);
    T(test_batch_memory_survives_seal_compaction_and_reopen);
    T(test_compaction_between_seals_does_not_double_wal_batches);
    T(test_a_torn_tagged_entry_loses_records_and_tag_together);
    T(test_a_torn_tag_only_entry_is_dropped_whole);
    T(test_untagged_wal_entries_of_the_old_format_still_replay);
    T(test_a_damaged_origin_in_the_manifest_is_reported);
    T(test_the_number_of_origins_is_bounded);
#undef T
    return 0;
}
