/* store_internal.h - what the files of src/store/ share and nobody else
 * sees: the store struct, summaries, and the WAL, segment, manifest and
 * tree-building helpers. */
#ifndef DIP_STORE_INTERNAL_H
#define DIP_STORE_INTERNAL_H

#include <libxml/tree.h>
#include <limits.h>

#include "store.h"
#include "xpath/xpath.h"

/* Summary fields: min/max of every required attribute (addresses as 128-bit
 * numbers with IPv4 mapped, the analyser's value space). */
enum summary_field { SUM_SRC, SUM_DST, SUM_SPORT, SUM_DPORT, SUM_PROTO, SUM_PACKETS, SUM_BYTES, SUM_FIRST, SUM_LAST,
                     SUM_FIELDS };
extern const char *const dip_summary_names[SUM_FIELDS];

/* A 16-byte address as the analyser's 128-bit number (big-endian). */
static inline struct dip_u128 dip_u128_from_bytes(const uint8_t b[16])
{
    struct dip_u128 v = { 0, 0 };
    for (int i = 0; i < 8; i++) v.hi = (v.hi << 8) | b[i];
    for (int i = 8; i < 16; i++) v.lo = (v.lo << 8) | b[i];
    return v;
}

/* Orders two values of the analyser's value space: <0, 0, >0. */
static inline int dip_u128_cmp(struct dip_u128 a, struct dip_u128 b)
{
    if (a.hi != b.hi) return a.hi < b.hi ? -1 : 1;
    if (a.lo != b.lo) return a.lo < b.lo ? -1 : 1;
    return 0;
}

struct dip_summary {
    uint64_t count;
    struct dip_u128 min[SUM_FIELDS], max[SUM_FIELDS];
};
void dip_summary_init(struct dip_summary *s);
void dip_summary_add(struct dip_summary *s, const struct dip_flow *f);
void dip_summary_merge(struct dip_summary *into, const struct dip_summary *from);
struct dip_u128 dip_summary_value(const struct dip_flow *f, enum summary_field field);
/* Returns: false only if no record summarised by s can be selected by q on tank. */
bool dip_summary_may_match(const struct dip_summary *s, const struct dip_xpath *q, int tank);

struct dip_chunk {
    uint64_t offset, length; /* the chunk's gzip member in the segment file */
    struct dip_summary sum;
};

struct dip_segment {
    char file[64];           /* name inside the store folder */
    uint64_t seq;            /* order of sealing */
    uint64_t bytes;          /* file size */
    struct dip_summary sum;
    struct dip_chunk *chunks;
    size_t nchunks;
};

/* ---- WAL (wal.c) ---- */
struct dip_wal {
    int fd;
    uint64_t size;
    char path[PATH_MAX];
};
/* The (origin, seq) tag of a batch inserted by dip_store_insert_batch. */
struct dip_wal_tag {
    char origin[65]; /* DIP_DEDUPE_ORIGIN_MAX + 1 */
    uint64_t seq;
};
/* Receives one replayed entry: tag is NULL for untagged batches (the
 * original entry format, written by dip_store_insert). */
typedef int (*dip_wal_replay_fn)(void *ctx, const struct dip_wal_tag *tag, const struct dip_flow *flows, size_t n);
/* Opens or creates path, replays its entries to fn, truncates a torn tail
 * (reported through *torn_msg, which must hold 256 bytes, empty when none). */
int dip_wal_open(struct dip_wal *w, const char *path, dip_wal_replay_fn fn, void *ctx, char *torn_msg,
                 struct dip_errbuf *eb);
/* Appends to out the WAL entry of a tagged batch: the tag and the records
 * in one entry, so replay finds both or neither. */
int dip_wal_encode_tagged(struct dip_dynbuf *out, const char *origin, uint64_t seq, const struct dip_flow *flows,
                          size_t n);
/* Appends one batch; durable on DIP_OK when sync. On failure the WAL is
 * truncated back to its previous size so no partial entry remains. */
int dip_wal_append(struct dip_wal *w, const uint8_t *batch, size_t len, bool sync, struct dip_errbuf *eb);
void dip_wal_close(struct dip_wal *w);

/* ---- segments (segment.c) ---- */
/* Writes n records in document order, flows[order[i]] (or flows[i] when
 * order is NULL), as segment file `path`, fsync'd, deflated at zlib level
 * 1..9, with igzip level 3 (DIP_SEGMENT_IGZIP) or level 2 (DIP_SEGMENT_FAST).
 * Fills seg's summaries and chunks (seg->file and seq are the caller's). */
#define DIP_SEGMENT_IGZIP 0
#define DIP_SEGMENT_FAST (-1)
/* The deflate of a segment being sealed (on the insert path: the fast one
 * unless zlib is asked for) or merged (in the background: denser unless
 * fast_deflate says otherwise). */
static inline int dip_store_segment_level(const struct dip_store_options *o, bool merging)
{
    if (o->gzip_level > 0) return o->gzip_level;
    return merging && !o->fast_deflate ? DIP_SEGMENT_IGZIP : DIP_SEGMENT_FAST;
}
int dip_segment_write(const char *path, enum dip_tank_key key, uint64_t seq, const struct dip_flow *flows,
                      const uint32_t *order, size_t n, size_t chunk_records, int level, struct dip_segment *seg,
                      struct dip_errbuf *eb);
/* The same written in steps, for records that arrive in document order (a
 * merge): open, add any number of times, then finish with the last records
 * (or none); abort drops the file. At most a few thousand records are held
 * between steps. On failure finish and add leave the writer to abort, except
 * that a failed finish has aborted it already. */
struct dip_segment_writer;
int dip_segment_writer_open(struct dip_segment_writer **w, const char *path, enum dip_tank_key key, uint64_t seq,
                            size_t chunk_records, int level, struct dip_errbuf *eb);
int dip_segment_writer_add(struct dip_segment_writer *w, const struct dip_flow *flows, size_t n,
                           struct dip_errbuf *eb);
/* Fills seg's summaries, chunks and bytes (file and seq are the caller's). */
int dip_segment_writer_finish(struct dip_segment_writer *w, const struct dip_flow *flows, size_t n,
                              struct dip_segment *seg, struct dip_errbuf *eb);
void dip_segment_writer_abort(struct dip_segment_writer *w);
/* Reads and inflates one chunk: the XML text of its subtrees into out. */
int dip_segment_read_chunk(int fd, const char *file, const struct dip_chunk *c, struct dip_dynbuf *out,
                           struct dip_errbuf *eb);
/* The same, inflating in steps of a few tens of kilobytes and stopping once
 * enough(ctx, text, len) returns a length n > 0: out then holds the first n
 * bytes of the chunk's text (a point query needs the text only up to the
 * first record past its keys: on average half the inflating). */
typedef size_t (*dip_segment_enough_fn)(void *ctx, const char *text, size_t len);
int dip_segment_read_chunk_until(int fd, const char *file, const struct dip_chunk *c, struct dip_dynbuf *out,
                                 dip_segment_enough_fn enough, void *ctx, struct dip_errbuf *eb);
void dip_segment_free(struct dip_segment *seg);
/* Removes the segment file at path and its chunk index. */
void dip_segment_unlink(const char *path);

/* ---- exactly-once batches (dedupe.c) ---- */
#define DIP_DEDUPE_ORIGIN_MAX 64
#define DIP_DEDUPE_WORDS (DIP_STORE_DEDUPE_WINDOW / 64)
#define DIP_DEDUPE_HEX_MAX (DIP_STORE_DEDUPE_WINDOW / 4)
#define DIP_DEDUPE_MAX_ORIGINS 4096 /* replicators a store remembers */
struct dip_dedupe_origin {
    char name[DIP_DEDUPE_ORIGIN_MAX + 1];
    uint64_t high;                    /* highest seq stored */
    uint64_t bits[DIP_DEDUPE_WORDS];  /* bit i (word i/64, bit i%64): seq high-1-i stored */
};
struct dip_dedupe {
    struct dip_dedupe_origin *origins; /* in order of arrival; owned */
    uint32_t *by_name;                 /* indices into origins, sorted by name; owned */
    size_t n, cap;
};
/* Returns: true when name is 1..64 bytes of [A-Za-z0-9._-]. */
bool dip_dedupe_origin_valid(const char *name);
/* Returns: true when batch seq of origin counts as stored. */
bool dip_dedupe_seen(const struct dip_dedupe *d, const char *origin, uint64_t seq);
/* Returns: the highest seq stored from origin, 0 when none. */
uint64_t dip_dedupe_high(const struct dip_dedupe *d, const char *origin);
/* Makes room so that the next dip_dedupe_mark of origin cannot fail.
 * Returns DIP_OK, DIP_ENOMEM or DIP_ERANGE (DIP_DEDUPE_MAX_ORIGINS reached). */
int dip_dedupe_reserve(struct dip_dedupe *d, const char *origin);
/* Remembers batch seq of origin as stored (idempotent, order-independent). */
int dip_dedupe_mark(struct dip_dedupe *d, const char *origin, uint64_t seq);
/* Writes o's window as lowercase hex into hex (DIP_DEDUPE_HEX_MAX + 1 bytes):
 * digit k holds bits 4k..4k+3, bit 4k as its high bit; trailing zero digits
 * are left out. */
void dip_dedupe_window_hex(const struct dip_dedupe_origin *o, char *hex);
/* Adds an origin read from a manifest. Returns DIP_ECORRUPT with *why (static)
 * for a bad or repeated entry. */
int dip_dedupe_add(struct dip_dedupe *d, const char *origin, uint64_t high, const char *hex, const char **why);
void dip_dedupe_free(struct dip_dedupe *d);

/* ---- manifest (manifest.c) ---- */
#define MANIFEST_NAME "MANIFEST.xml" /* in the store folder */
struct dip_manifest {
    enum dip_tank_key key;
    uint64_t next_seq;
    char wal[64];
    struct dip_segment *segs;
    size_t nsegs;
    /* The store's live batch memory (owned; copies of the struct share it):
     * every manifest write persists it together with the segment list. */
    struct dip_dedupe dedupe;
};
int dip_manifest_read(const char *path, struct dip_manifest *m, struct dip_errbuf *eb);
int dip_manifest_write(const char *path, const struct dip_manifest *m, struct dip_errbuf *eb);
void dip_manifest_free(struct dip_manifest *m);
/* A segment's chunk index, beside it: "seg-N.chunks.xml" for "seg-N.xml.gz"
 * (DIP_EINVAL for another name, DIP_ERANGE when cap is too small). Written
 * once when the segment is, it keeps the manifest, rewritten at every seal
 * and merge, from growing with the store: with every chunk inline it took
 * 6.6 MB and 40-70 ms of CPU (and an fsync of it) per seal at 4M records. */
int dip_chunk_index_name(const char *segment_file, char *out, size_t cap);
/* The same for a path: the index's path beside the segment at segment_path. */
int dip_chunk_index_path(const char *segment_path, char *out, size_t cap);
/* Writes seg's chunks and their summaries to the index of the segment file
 * at segment_path (atomically, fsync'd). */
int dip_chunk_index_write(const char *segment_path, const struct dip_segment *seg, struct dip_errbuf *eb);

/* ---- trees (tree.c) ---- */
/* Builds a <tank key> document holding flows (sorted by key) in the tank's
 * tree shape. Returns: new doc (xmlFreeDoc) or NULL when out of memory. */
xmlDocPtr dip_tree_build(enum dip_tank_key key, const struct dip_flow *flows, size_t n);
/* The same, given up at deadline_ms (dip_store_clock_ms time; 0: none):
 * then NULL with *late set (a whole tank's document takes seconds). */
xmlDocPtr dip_tree_build_until(enum dip_tank_key key, const struct dip_flow *flows, size_t n, uint64_t deadline_ms,
                               bool *late);
/* Appends the chunk text of flows (sorted, one family for address keys) to out. */
int dip_tree_write_text(enum dip_tank_key key, const struct dip_flow *flows, size_t n, struct dip_dynbuf *out);
/* Parses chunk text (subtrees of the tank element) into a <tank key> document. */
int dip_tree_parse_chunk(enum dip_tank_key key, const char *text, size_t len, const char *where, xmlDocPtr *doc,
                         struct dip_errbuf *eb);
/* Collects every flow element of a document in document order. */
int dip_tree_collect(xmlDocPtr doc, struct dip_flow **flows, size_t *n, size_t *cap, struct dip_errbuf *eb);
/* Approximate bytes a tree of n records occupies (for the memory budget). */
#define DIP_TREE_BYTES_PER_RECORD 3584

/* ---- parsed chunk trees kept between queries (cache.c) ---- */
struct dip_cache_entry {
    char file[64];
    size_t chunk;
    xmlDocPtr doc;   /* owned by the cache */
    struct dip_flow *flows; /* or the chunk's decoded records, owned (then doc is NULL) */
    size_t nflows;
    size_t bytes;    /* estimate: records * DIP_TREE_BYTES_PER_RECORD */
    uint64_t used;   /* clock of the last use */
};
#define DIP_CACHE_SEEN 16384 /* chunks remembered as read once (a power of two) */
struct dip_cache {
    struct dip_cache_entry *entries;
    size_t n, cap, bytes, budget;
    uint64_t clock, hits, misses;
    uint32_t *index;  /* open addressing: entry number + 1, 0 empty; rebuilt when entries move */
    size_t index_cap; /* a power of two, at least twice n */
    uint64_t *seen;   /* DIP_CACHE_SEEN fingerprints and read counts (dip_cache_reads) */
};
void dip_cache_init(struct dip_cache *c, size_t budget);
void dip_cache_free(struct dip_cache *c);
/* Returns: the cached tree (borrowed: valid until the next dip_cache_put or
 * dip_cache_forget) or NULL. */
xmlDocPtr dip_cache_get(struct dip_cache *c, const char *file, size_t chunk);
/* Takes ownership of doc when it returns true (evicting older trees to fit);
 * when false the caller still owns doc. */
bool dip_cache_put(struct dip_cache *c, const char *file, size_t chunk, xmlDocPtr doc, size_t bytes);
/* The same for decoded records of a chunk: get returns them borrowed (NULL
 * when absent); put takes ownership of flows when it returns true. */
const struct dip_flow *dip_cache_get_flows(struct dip_cache *c, const char *file, size_t chunk, size_t *n);
bool dip_cache_put_flows(struct dip_cache *c, const char *file, size_t chunk, struct dip_flow *flows, size_t n);
/* Returns how often chunk of file was read before (0..7; approximate: a
 * table of DIP_CACHE_SEEN fingerprints, newer overwriting older), and counts
 * this read. A query narrowed on the key decodes only the subtrees it needs
 * from a chunk read less than DIP_CACHE_ADMIT times before, and decodes and
 * caches the whole chunk after that. */
#define DIP_CACHE_ADMIT 7
unsigned dip_cache_reads(struct dip_cache *c, const char *file, size_t chunk);
/* Drops every tree of a segment file (after compaction replaced it). */
void dip_cache_forget(struct dip_cache *c, const char *file);

/* ---- the store ---- */
struct dip_active_run;
struct dip_store {
    char dir[PATH_MAX];
    struct dip_store_options opt;
    struct dip_manifest man;
    struct dip_wal wal;
    int *seg_fds;            /* open fd per segment, parallel to man.segs */
    struct dip_flow *active; /* insertion order */
    size_t nactive, active_cap;
    uint64_t active_first_min, active_last_max; /* time span of the active part (when nactive) */
    struct dip_active_run *runs; /* the active part sorted, as runs (active.c) */
    size_t nruns, runs_cap;
    size_t run_covered;          /* active[0..run_covered) are in the runs */
    struct dip_dynbuf scratch; /* batch encoding for inserts */
    struct dip_cache cache;    /* half of the memory budget */
    struct dip_reach *reach;   /* per segment: where narrowed queries start and stop (reach.c) */
    size_t nreach, reach_cap;
};

/* ---- the chunks a query narrowed on the key can reach (reach.c) ---- */
struct dip_reach;
/* Sets [*first, *end) to the chunks of segment seg that may hold keys in
 * [lo, hi] (the analyser's value space); chunks outside cannot. Builds the
 * segment's arrays on first use (without memory: the whole segment). */
void dip_reach_window(struct dip_store *s, size_t seg, struct dip_u128 lo, struct dip_u128 hi, size_t *first,
                      size_t *end);
void dip_reach_free_all(struct dip_store *s);

/* Asks the kernel for huge pages behind a large buffer (fewer page faults
 * when it is first filled); a hint only, ignored where unsupported. */
void dip_store_hint_huge(void *p, size_t len);

/* Writes the path of a file in the store's folder into out. */
void dip_store_path(const struct dip_store *s, const char *name, char *out, size_t cap);

/* ---- the active part as sorted runs (active.c) ----
 * Queries read the active part in document order. Sorting all of it again after
 * every insert cost a query 20-90 ms under ingest (262144 records), so the
 * records appended since the last query are sorted into a new run, and the
 * newest runs are merged while the older is at most twice the newer: a few
 * runs (logarithmically many), each record merged a few times in all. */
struct dip_active_run {
    struct dip_flow *flows;   /* in document order; owned */
    size_t n;
    struct dip_summary *sums; /* one per chunk_records slice; owned */
};
/* Brings the runs up to date with the active part and gives them in *runs
 * (borrowed, valid until the next insert, query or seal; *n of them).
 * Returns DIP_OK or DIP_ENOMEM. */
int dip_store_active_runs(struct dip_store *s, const struct dip_active_run **runs, size_t *n);
/* Forgets every run (after sealing the active part, or when closing). */
void dip_store_active_reset(struct dip_store *s);

/* Appends the records of one chunk's text (read from `file` chunk c) to
 * *flows: the canonical decoder, or libxml2 when the text is not canonical. */
int dip_store_chunk_flows(enum dip_tank_key key, const char *text, size_t len, const char *file, size_t c,
                          struct dip_flow **flows, size_t *n, size_t *cap, struct dip_errbuf *eb);
/* Appends every record of segment i, in its document order, to *flows;
 * DIP_ETIMEOUT once deadline_ms (dip_store_clock_ms time; 0: none) passes,
 * looked at per chunk. */
int dip_store_read_segment(struct dip_store *s, size_t i, uint64_t deadline_ms, struct dip_flow **flows, size_t *n,
                           size_t *cap, struct dip_errbuf *eb);

/* ---- document order (order.c) ---- */
/* Sets *order (malloc'd, n indexes) to flows[0..n) in document order
 * (dip_flow_order_cmp). Returns DIP_OK, DIP_ENOMEM or DIP_ERANGE (n >= 2^32). */
int dip_store_order(const struct dip_flow *flows, size_t n, enum dip_tank_key key, uint32_t **order);
/* Sorts flows into document order in place. */
void dip_store_sort(struct dip_flow *flows, size_t n, enum dip_tank_key key);

#endif
