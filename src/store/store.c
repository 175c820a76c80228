/* store.c - a leaf store's life cycle: open and recover (manifest, WAL
 * replay, clean-up of files a crash left behind), durable inserts (plain, and
 * exactly-once tagged batches remembered in dedupe.c), sealing
 * the active part into segments, compaction, statistics. Queries are in
 * query.c. */
#include "store_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/cursor.h"
#include "common/paths.h"

void dip_store_options_default(struct dip_store_options *o)
{
    memset(o, 0, sizeof *o);
    o->memory_budget = (size_t)1 << 30;
    o->seal_records = 0; /* derived from the memory budget */
    o->chunk_records = DIP_STORE_CHUNK_RECORDS;
    /* igzip: 1.36 us of CPU a record for the whole insert and 29.4 B a
     * record after the merges that end an ingest; zlib level 4 3.3 us and
     * 25.9 B (10M flowgen records, tools/bench/bench_store.sh). */
    o->gzip_level = 0;
    o->compact_below = 0; /* derived: seal_records / 4 */
    o->max_result_records = 1000000;
    o->max_result_bytes = (size_t)256 << 20;
    o->max_query_seconds = 60;
    o->sync = true;
}

enum dip_tank_key dip_store_key(const struct dip_store *s) { return s->man.key; }

void dip_store_path(const struct dip_store *s, const char *name, char *out, size_t cap)
{
    /* dip_store_open refuses folders whose names leave no room for ours */
    if (snprintf(out, cap, "%s/%s", s->dir, name) >= (int)cap) out[0] = 0;
}

/* Appends n records to the active part and widens its time span, so
 * statistics need not walk the active records. */
static void take_active(struct dip_store *s, const struct dip_flow *flows, size_t n)
{
    if (!n) return;
    if (!s->nactive) {
        s->active_first_min = UINT64_MAX;
        s->active_last_max = 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (flows[i].first < s->active_first_min) s->active_first_min = flows[i].first;
        if (flows[i].last > s->active_last_max) s->active_last_max = flows[i].last;
    }
    memcpy(s->active + s->nactive, flows, n * sizeof *flows);
    s->nactive += n;
}

void dip_store_hint_huge(void *p, size_t len)
{
#ifdef MADV_HUGEPAGE
    const uintptr_t huge = (uintptr_t)2 << 20;
    uintptr_t a = ((uintptr_t)p + huge - 1) & ~(huge - 1), e = ((uintptr_t)p + len) & ~(huge - 1);
    if (e > a) (void)madvise((void *)a, e - a, MADV_HUGEPAGE);
#else
    (void)p;
    (void)len;
#endif
}

static int reserve_active(struct dip_store *s, size_t more)
{
    if (s->nactive + more <= s->active_cap) return DIP_OK;
    /* room for a whole active part at once: it fills up to seal_records
     * anyway, and growing by doubling would copy it over and over */
    size_t cap = s->active_cap ? s->active_cap : 4096;
    if (!s->active_cap && s->opt.seal_records <= ((size_t)1 << 22)) cap = s->opt.seal_records + 4096;
    while (cap < s->nactive + more) cap *= 2;
    struct dip_flow *p = realloc(s->active, cap * sizeof *p);
    if (!p) return DIP_ENOMEM;
    dip_store_hint_huge(p, cap * sizeof *p);
    s->active = p;
    s->active_cap = cap;
    return DIP_OK;
}

/* Replays one WAL entry. A tag is marked even when the manifest already
 * remembers it (a compaction writes the live memory while its batches are
 * still in the WAL): marking is idempotent, and every WAL entry was accepted
 * once, so its records are applied unconditionally. */
static int replay_batch(void *ctx, const struct dip_wal_tag *tag, const struct dip_flow *flows, size_t n)
{
    struct dip_store *s = ctx;
    if (reserve_active(s, n)) return DIP_ENOMEM;
    if (tag) {
        int rc = dip_dedupe_mark(&s->man.dedupe, tag->origin, tag->seq);
        if (rc) return rc;
    }
    take_active(s, flows, n);
    return DIP_OK;
}

/* Removes what a crash between writing a segment and replacing the manifest
 * (or between the manifest and deleting the old WAL) left behind. */
static void remove_strays(struct dip_store *s)
{
    DIR *d = opendir(s->dir);
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *n = de->d_name;
        bool ours = (strncmp(n, "seg-", 4) == 0 && (strstr(n, ".xml.gz") || strstr(n, ".chunks.xml"))) ||
                    (strncmp(n, "wal-", 4) == 0) || (strstr(n, ".tmp") != NULL);
        if (!ours || strcmp(n, s->man.wal) == 0) continue;
        bool listed = false;
        for (size_t i = 0; i < s->man.nsegs && !listed; i++) {
            char index[sizeof s->man.segs[i].file + 16];
            listed = strcmp(n, s->man.segs[i].file) == 0 ||
                     (dip_chunk_index_name(s->man.segs[i].file, index, sizeof index) == DIP_OK && strcmp(n, index) == 0);
        }
        if (listed) continue;
        char p[PATH_MAX];
        dip_store_path(s, n, p, sizeof p);
        unlink(p);
    }
    closedir(d);
}

static int open_segments(struct dip_store *s, struct dip_errbuf *eb)
{
    s->seg_fds = calloc(s->man.nsegs + 1, sizeof *s->seg_fds);
    if (!s->seg_fds) return DIP_ENOMEM;
    for (size_t i = 0; i < s->man.nsegs; i++) {
        char p[PATH_MAX];
        dip_store_path(s, s->man.segs[i].file, p, sizeof p);
        s->seg_fds[i] = open(p, O_RDONLY | O_CLOEXEC);
        if (s->seg_fds[i] < 0) {
            int e = errno;
            while (i--) close(s->seg_fds[i]);
            free(s->seg_fds);
            s->seg_fds = NULL;
            return dip_err_sys(eb, e, "open segment %s", p);
        }
    }
    return DIP_OK;
}

int dip_store_open(const char *dir, int key, const struct dip_store_options *opt, struct dip_store **out,
                   void (*warn)(const char *msg), struct dip_errbuf *eb)
{
    *out = NULL;
    struct dip_store *s = calloc(1, sizeof *s);
    if (!s) return DIP_ENOMEM;
    s->wal.fd = -1;
    if (opt) s->opt = *opt;
    else dip_store_options_default(&s->opt);
    if (!s->opt.chunk_records) s->opt.chunk_records = DIP_STORE_CHUNK_RECORDS;
    /* Bigger segments are fewer for a point query to read (one chunk each):
     * a sealing store peaks at ~530 bytes per active record (the records,
     * their sorted copy and the sort's own arrays), so seal at budget / 1 KiB
     * records (1M for the default 1 GiB: 10M records in 10 segments, not 38,
     * made per-host point queries 4x faster; 532 MB peak while ingesting). */
    if (!s->opt.seal_records) {
        s->opt.seal_records = s->opt.memory_budget / 1024;
        if (s->opt.seal_records < 262144) s->opt.seal_records = 262144;
    }
    if (!s->opt.compact_fanin) s->opt.compact_fanin = 8;
    if (!s->opt.compact_below) s->opt.compact_below = s->opt.seal_records / 4;
    dip_dynbuf_init(&s->scratch, (size_t)1 << 30);
    dip_cache_init(&s->cache, s->opt.memory_budget / 2);
    int rc;
    if (strlen(dir) > sizeof s->dir - 80) {
        rc = dip_err_set(eb, DIP_EINVAL, "store folder name too long: %.64s...", dir);
        goto err;
    }
    snprintf(s->dir, sizeof s->dir, "%s", dir);
    char mpath[PATH_MAX];
    dip_store_path(s, MANIFEST_NAME, mpath, sizeof mpath);
    if (access(mpath, F_OK) == 0) {
        if ((rc = dip_manifest_read(mpath, &s->man, eb))) goto err;
        if (key >= 0 && (int)s->man.key != key) {
            rc = dip_err_set(eb, DIP_EINVAL, "%s holds a store keyed by %s, not %s", dir, dip_tank_key_name(s->man.key),
                             dip_tank_key_name((enum dip_tank_key)key));
            goto err;
        }
    } else {
        if (key < 0 || key >= DIP_TANK_KEYS) {
            rc = dip_err_set(eb, DIP_ENOTFOUND, "%s holds no store (no %s); give a key to create one", dir,
                             MANIFEST_NAME);
            goto err;
        }
        if ((rc = dip_mkdir_p(dir, eb))) goto err;
        s->man.key = (enum dip_tank_key)key;
        s->man.next_seq = 1;
        snprintf(s->man.wal, sizeof s->man.wal, "wal-%06d.log", 1);
        if ((rc = dip_manifest_write(mpath, &s->man, eb))) goto err;
    }
    remove_strays(s);
    if ((rc = open_segments(s, eb))) goto err;
    char wpath[PATH_MAX], torn[256];
    dip_store_path(s, s->man.wal, wpath, sizeof wpath);
    if ((rc = dip_wal_open(&s->wal, wpath, replay_batch, s, torn, eb))) goto err;
    if (torn[0] && warn) warn(torn);
    if (s->nactive >= s->opt.seal_records && (rc = dip_store_seal(s, eb))) goto err;
    *out = s;
    return DIP_OK;
err:
    dip_store_close(s);
    return rc;
}

void dip_store_close(struct dip_store *s)
{
    if (!s) return;
    dip_wal_close(&s->wal);
    for (size_t i = 0; s->seg_fds && i < s->man.nsegs; i++) close(s->seg_fds[i]);
    free(s->seg_fds);
    dip_manifest_free(&s->man);
    free(s->active);
    dip_store_active_reset(s);
    free(s->runs);
    dip_dynbuf_free(&s->scratch);
    dip_cache_free(&s->cache);
    dip_reach_free_all(s);
    free(s);
}

int dip_store_insert(struct dip_store *s, const struct dip_flow *flows, size_t n, struct dip_errbuf *eb)
{
    if (!n) return DIP_OK;
    int rc = reserve_active(s, n);
    if (rc) return dip_err_set(eb, rc, "no memory for %zu more active records", n);
    dip_dynbuf_reset(&s->scratch);
    if ((rc = dip_batch_encode(flows, n, &s->scratch))) return dip_err_set(eb, rc, "cannot encode batch of %zu", n);
    if ((rc = dip_wal_append(&s->wal, s->scratch.data, s->scratch.len, s->opt.sync, eb))) return rc;
    take_active(s, flows, n);
    if (s->nactive >= s->opt.seal_records) {
        /* The records are durable in the WAL already; a failed seal (disk
         * full) is retried at the next insert and does not fail this one. */
        struct dip_errbuf ignored;
        dip_store_seal(s, &ignored);
    }
    return DIP_OK;
}

static int insert_tagged(struct dip_store *s, const char *origin, uint64_t seq, const struct dip_flow *flows,
                         size_t n, bool *duplicate, bool deferred, struct dip_errbuf *eb);

int dip_store_insert_batch(struct dip_store *s, const char *origin, uint64_t seq, const struct dip_flow *flows,
                           size_t n, bool *duplicate, struct dip_errbuf *eb)
{
    return insert_tagged(s, origin, seq, flows, n, duplicate, false, eb);
}

int dip_store_insert_batch_deferred(struct dip_store *s, const char *origin, uint64_t seq,
                                    const struct dip_flow *flows, size_t n, bool *duplicate, struct dip_errbuf *eb)
{
    return insert_tagged(s, origin, seq, flows, n, duplicate, true, eb);
}

uint64_t dip_store_batch_high(const struct dip_store *s, const char *origin)
{
    return dip_dedupe_high(&s->man.dedupe, origin);
}

int dip_store_sync(const struct dip_store *s, struct dip_errbuf *eb)
{
    if (s->opt.sync && fdatasync(s->wal.fd) != 0) return dip_err_sys(eb, errno, "fsync WAL %s", s->wal.path);
    return DIP_OK;
}

bool dip_store_seal_due(const struct dip_store *s) { return s->nactive >= s->opt.seal_records; }

static int insert_tagged(struct dip_store *s, const char *origin, uint64_t seq, const struct dip_flow *flows,
                         size_t n, bool *duplicate, bool deferred, struct dip_errbuf *eb)
{
    *duplicate = false;
    if (!origin || !dip_dedupe_origin_valid(origin))
        return dip_err_set(eb, DIP_EINVAL, "batch origin must be 1..%d bytes of [A-Za-z0-9._-]", DIP_DEDUPE_ORIGIN_MAX);
    if (seq < 1) return dip_err_set(eb, DIP_EINVAL, "batch seq of %s must be at least 1", origin);
    if (n && !flows) return dip_err_set(eb, DIP_EINVAL, "batch %s/%" PRIu64 " has no records", origin, seq);
    if (dip_dedupe_seen(&s->man.dedupe, origin, seq)) {
        *duplicate = true;
        return DIP_OK;
    }
    /* Everything that can fail happens before the WAL append: once the entry
     * is durable, taking its records and remembering its tag cannot fail. */
    int rc = reserve_active(s, n);
    if (rc) return dip_err_set(eb, rc, "no memory for %zu more active records", n);
    if ((rc = dip_dedupe_reserve(&s->man.dedupe, origin)) == DIP_ERANGE)
        return dip_err_set(eb, rc, "store remembers at most %d origins, %s would be one more", DIP_DEDUPE_MAX_ORIGINS,
                           origin);
    if (rc) return dip_err_set(eb, rc, "no memory to remember origin %s", origin);
    dip_dynbuf_reset(&s->scratch);
    if ((rc = dip_wal_encode_tagged(&s->scratch, origin, seq, flows, n)))
        return dip_err_set(eb, rc, "cannot encode batch %s/%" PRIu64 " of %zu", origin, seq, n);
    if ((rc = dip_wal_append(&s->wal, s->scratch.data, s->scratch.len, s->opt.sync && !deferred, eb))) return rc;
    if (n) {
        take_active(s, flows, n);
    }
    dip_dedupe_mark(&s->man.dedupe, origin, seq); /* reserved above */
    if (!deferred && s->nactive >= s->opt.seal_records) {
        /* as in dip_store_insert: durable already, a failed seal is retried */
        struct dip_errbuf ignored;
        dip_store_seal(s, &ignored);
    }
    return DIP_OK;
}
