/* store.h - a leaf's flow store (ARCHITECTURE section 6): the public face of
 * src/store/.
 *
 * One store is one folder holding the records of one tank key: a write-ahead
 * log of records not yet sealed, an in-memory active part, sealed segments
 * (multi-member gzip XML documents in the tank's tree shape, one member per
 * chunk of records) and MANIFEST.xml listing them with summaries. Queries are
 * XPath 1.0 over the store's logical document <tank key="...">.
 *
 * Layer: storage. Depends on src/flow, src/common and xpath/.
 * Not thread-safe: one thread uses a store at a time. */
#ifndef DIP_STORE_H
#define DIP_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/dynbuf.h"
#include "common/err.h"
#include "flow/flow.h"

/* Records per chunk of a segment by default. A point query inflates and
 * parses, in every segment, the chunk holding its key up to the key: 256
 * records halve that work against 1024 (bench_store on 5M records, hosts
 * drawn uniformly: p50 0.12-0.17 ms against 0.23-0.25) for ~6% more disk
 * (a chunk's deflate starts without history) and 312 bytes of summary a
 * chunk in memory (~1.2 bytes a record). */
#define DIP_STORE_CHUNK_RECORDS 256

struct dip_store_options {
    size_t memory_budget;      /* bytes the store may hold in parsed trees and buffers (default 1 GiB) */
    size_t seal_records;       /* seal the active part into a segment at this many records (default: the
                                  memory budget / 1 KiB, at least 262144) */
    size_t chunk_records;      /* records per chunk of a segment (default DIP_STORE_CHUNK_RECORDS) */
    int gzip_level;            /* 0 (default): deflate segments with igzip (ISA-L), level 2 when sealing (on
                                  the insert path), level 3 when merging (in the background, ~5% denser);
                                  1..9: zlib at that level for both (level 4: ~15% denser, 2x the CPU) */
    bool fast_deflate;         /* with gzip_level 0: merges at igzip level 2 too (what cluster leaves do) */
    size_t compact_below;      /* segments with fewer records are merged by compaction (default seal_records / 4) */
    size_t compact_fanin;      /* tiered compaction merges this many segments of one tier (default 8; 1: never) */
    size_t max_result_records; /* a query returning more records fails with DIP_ERANGE (default 1,000,000) */
    size_t max_result_bytes;   /* same for the serialized result (default 256 MiB) */
    double max_query_seconds;  /* a query running longer fails with DIP_ETIMEOUT (default 60) */
    bool sync;                 /* fsync the WAL per batch (default true; false only for benchmarks of the rest) */
};

/* Fills o with the defaults above. */
void dip_store_options_default(struct dip_store_options *o);

struct dip_store;

/* Opens the store in dir, creating dir and an empty store for `key` when dir
 * holds none (key -1 only opens an existing store). Replays the WAL; a torn
 * last WAL entry is dropped and reported through warn (may be NULL).
 * Returns DIP_OK with *out new (dip_store_close), or an error in eb. */
int dip_store_open(const char *dir, int key, const struct dip_store_options *opt, struct dip_store **out,
                   void (*warn)(const char *msg), struct dip_errbuf *eb);

/* Closes the store. Everything acknowledged is already durable. */
void dip_store_close(struct dip_store *s);

/* Returns: the store's tank key. */
enum dip_tank_key dip_store_key(const struct dip_store *s);

/* Appends n records. When it returns DIP_OK they are durable (WAL fsync'd)
 * and visible to queries; on any error none of them is stored (DIP_ENOSPC
 * when the disk is full: the store stays consistent and accepts inserts again
 * once space is back). May seal the active part into a segment. */
int dip_store_insert(struct dip_store *s, const struct dip_flow *flows, size_t n, struct dip_errbuf *eb);

/* Seals the active part into a segment now (no-op when it is empty). */
int dip_store_seal(struct dip_store *s, struct dip_errbuf *eb);

/* Merges segments until no merge is due (see dip_store_merge_prepare), all
 * at once. *merged gets how many segments were replaced (may be NULL). */
int dip_store_compact(struct dip_store *s, size_t *merged, struct dip_errbuf *eb);

struct dip_store_stats {
    enum dip_tank_key key;
    uint64_t records;          /* all records, sealed and active */
    uint64_t active_records;   /* in the WAL, not yet sealed */
    uint64_t segments, chunks;
    uint64_t segment_bytes;    /* compressed bytes on disk in segments */
    uint64_t wal_bytes;
    uint64_t first_min, last_max; /* time span of all records (0 when empty) */
    uint64_t cache_bytes;      /* parsed chunk trees held in the cache */
};
void dip_store_stats(const struct dip_store *s, struct dip_store_stats *st);

/* The index path of a record in a tank's tree (ARCHITECTURE 4): element
 * names (static strings) and values, outermost first, into arrays of
 * DIP_STORE_PATH_MAX; value -1 is an element without `v` (the v6 wrapper).
 * Returns: the depth (4 for IPv4, 9 for IPv6, 1 for ports). */
#define DIP_STORE_PATH_MAX 9
int dip_store_index_path(const struct dip_flow *f, enum dip_tank_key key, const char **names, int *vals);

/* ---- queries ---- */

enum dip_result_kind { DIP_RESULT_NODES, DIP_RESULT_NUMBER, DIP_RESULT_STRING, DIP_RESULT_BOOLEAN };

/* What a query found. body holds the XML of the result's children (flow
 * elements in document order, or one <number>/<string>/<boolean>). */
struct dip_store_answer {
    enum dip_result_kind kind;
    uint64_t count;          /* nodes in a node-set; 1 for other kinds */
    double number;           /* DIP_RESULT_NUMBER */
    bool boolean;            /* DIP_RESULT_BOOLEAN */
    const char *shape;       /* "flows", "count", "sum", "boolean" or "gather" */
    uint64_t chunks_read;    /* chunks parsed or built to answer */
    uint64_t chunks_skipped; /* chunks whose summaries ruled them out */
    struct dip_dynbuf body;  /* owned; dip_store_answer_free */
};
void dip_store_answer_free(struct dip_store_answer *a);

/* Evaluates an XPath 1.0 expression over the logical document. Returns DIP_OK
 * with *ans filled (free with dip_store_answer_free), DIP_ESYNTAX with the
 * column in *err_column (may be NULL), DIP_ERANGE or DIP_ETIMEOUT beyond the
 * limits, DIP_ECORRUPT for a damaged segment (file and chunk named). The
 * query stops after max_query_seconds. */
int dip_store_query(struct dip_store *s, const char *xpath, size_t len, struct dip_store_answer *ans,
                    size_t *err_column, struct dip_errbuf *eb);

/* The clock of deadlines: CLOCK_MONOTONIC in milliseconds. */
uint64_t dip_store_clock_ms(void);

/* The same, stopped at deadline_ms (dip_store_clock_ms time; 0: none) or
 * after max_query_seconds, whichever comes first: the query then fails with
 * DIP_ETIMEOUT, a few milliseconds past it (its own loops look at the
 * clock per chunk, libxml2's evaluations are stopped from outside), and
 * never returns a partial answer. */
int dip_store_query_until(struct dip_store *s, const char *xpath, size_t len, uint64_t deadline_ms,
                          struct dip_store_answer *ans, size_t *err_column, struct dip_errbuf *eb);

/* Streams records to a callback in document order: all of them (xpath NULL)
 * or those of a node-set expression. Stops with the callback's non-zero return. */
typedef int (*dip_store_flow_fn)(void *ctx, const struct dip_flow *f);
int dip_store_scan(struct dip_store *s, const char *xpath, dip_store_flow_fn fn, void *ctx, size_t *err_column,
                   struct dip_errbuf *eb);
/* The same, stopped at deadline_ms as dip_store_query_until is (DIP_ETIMEOUT,
 * after fn may have had some of the records). */
int dip_store_scan_until(struct dip_store *s, const char *xpath, uint64_t deadline_ms, dip_store_flow_fn fn,
                         void *ctx, size_t *err_column, struct dip_errbuf *eb);


/* ---- exactly-once batches ---- */

/* Appends the n records of batch seq (>= 1) from origin (a replicator's name,
 * 1..64 bytes of [A-Za-z0-9._-]) unless that batch is already stored: then
 * *duplicate is set and nothing is stored. Durable like dip_store_insert. The
 * store remembers, per origin, the highest seq and which of the
 * DIP_STORE_DEDUPE_WINDOW seqs below it were stored; a seq older than the
 * window counts as stored. The memory survives restarts, sealing and compaction. */
#define DIP_STORE_DEDUPE_WINDOW 4096
int dip_store_insert_batch(struct dip_store *s, const char *origin, uint64_t seq, const struct dip_flow *flows,
                           size_t n, bool *duplicate, struct dip_errbuf *eb);

/* ---- group commit and sealing in steps (a leaf serving queries meanwhile) ---- */

/* Like dip_store_insert_batch, but the WAL entry is written without fsync and
 * the store never seals here: the records are visible at once and durable
 * only after dip_store_sync returns DIP_OK, so acknowledge them only then.
 * Several deferred inserts share one dip_store_sync (group commit). */
int dip_store_insert_batch_deferred(struct dip_store *s, const char *origin, uint64_t seq,
                                    const struct dip_flow *flows, size_t n, bool *duplicate, struct dip_errbuf *eb);
/* Returns: the highest batch seq stored from origin (0: none). */
uint64_t dip_store_batch_high(const struct dip_store *s, const char *origin);

/* Makes every insert so far durable (fdatasync of the WAL). Touches only the
 * WAL file, so it may run on another thread while a query uses the store,
 * but not together with an insert or a seal step. On an error the deferred
 * records are not known to be durable: close and reopen the store (the WAL
 * replay then shows what is). */
int dip_store_sync(const struct dip_store *s, struct dip_errbuf *eb);

/* Returns: whether the active part has reached seal_records. */
bool dip_store_seal_due(const struct dip_store *s);

/* Queries read the active part in document order, sorting the records
 * inserted since the last query first. dip_store_index_active does that
 * sorting ahead, so that the next query finds it done (a leaf calls it when
 * it has no work waiting); dip_store_active_unindexed says how many
 * records it would sort. Uses the store: no other thread may meanwhile.
 * Returns DIP_OK or DIP_ENOMEM (eb says so; queries sort them later). */
int dip_store_index_active(struct dip_store *s, struct dip_errbuf *eb);
size_t dip_store_active_unindexed(const struct dip_store *s);

/* Sealing in three steps, so that queries can run during the long middle one:
 * dip_store_seal_prepare (uses the store: no other thread may), then
 * dip_store_seal_write (reads the store: queries may run on another thread
 * meanwhile; inserts, other seal steps and merge finishes may not, from the
 * prepare to the finish), which writes the segment and commits it (new WAL,
 * manifest, old WAL removed), then dip_store_seal_finish (uses the store:
 * switches it over in memory, a few microseconds), which frees the job
 * whatever happened. Once the write step has committed, the finish switches
 * over even when told it failed. *job is NULL when there is nothing to seal.
 * dip_store_seal is the three in a row. */
struct dip_store_seal_job;
int dip_store_seal_prepare(struct dip_store *s, struct dip_store_seal_job **job, struct dip_errbuf *eb);
int dip_store_seal_write(const struct dip_store *s, struct dip_store_seal_job *job, struct dip_errbuf *eb);
int dip_store_seal_finish(struct dip_store *s, struct dip_store_seal_job *job, int write_rc, struct dip_errbuf *eb);

/* Compaction in the same three steps: dip_store_merge_prepare picks
 * consecutive segments to merge (a run of small ones, or compact_fanin of
 * one tier: merge.c) and *job is NULL when none is due; dip_store_merge_write
 * reads them and writes the merged segment using the job alone (queries,
 * inserts and seal steps may run meanwhile on other threads, other merges
 * may not); dip_store_merge_finish (uses the store) replaces them in the
 * manifest and frees the job whatever happened. */
struct dip_store_merge_job;
bool dip_store_merge_due(const struct dip_store *s);
int dip_store_merge_prepare(struct dip_store *s, struct dip_store_merge_job **job, struct dip_errbuf *eb);
int dip_store_merge_write(struct dip_store_merge_job *job, struct dip_errbuf *eb);
int dip_store_merge_finish(struct dip_store *s, struct dip_store_merge_job *job, int write_rc, struct dip_errbuf *eb);

#endif
