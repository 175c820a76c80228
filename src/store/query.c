/* query.c - XPath 1.0 over a leaf store's logical document.
 *
 * The analyser (xpath/) says how the expression decomposes. Decomposable
 * ones (node-sets of flows, count, sum, boolean) are evaluated by libxml2
 * chunk by chunk, skipping chunks whose summaries cannot match, and merged:
 * node-sets by a k-way merge of the sources (segments in seq order, then the
 * active part) in key order, numbers added, booleans or-ed. Anything else is
 * evaluated over the whole logical document built in memory, within the
 * memory budget. Either way the answer is libxml2's on the whole document.
 *
 * Chunks are decoded into records (no trees) and kept in the store's cache.
 * Expressions the exact evaluator of fastq.c knows are decided on the records
 * directly; for the others, each record is tested against the analyser's
 * attribute ranges (a superset of what can match) and libxml2 judges a small
 * tree of just the candidates. Chunks whose text is not in canonical form
 * are parsed and evaluated by libxml2 as a whole, as before. */
#include "store_internal.h"

#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>
#include <math.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/xmlsafe.h"
#include "fast.h"
#include "watch.h"

/* A prefilter: records whose field lies outside the ranges cannot match. */
struct prefilter {
    const struct dip_field *fd;
    const struct dip_xpath_range *ranges;
    size_t n;
};

/* A chunk of a point query read ahead: its text up to the query's last
 * key, the records the key constraint reaches and their spans. */
struct prefetched {
    size_t seg, chunk;
    int rc;                  /* DIP_OK; DIP_EAGAIN: not canonical (the merge parses it); or an error (eb) */
    struct dip_dynbuf text;
    struct dip_flow *flows;
    size_t n, cap;
    struct dip_span_vec spans;
    struct dip_errbuf eb;
};

struct query_run {
    struct dip_store *s;
    struct dip_fastq *fq;            /* exact evaluator, or NULL */
    struct prefilter pf[24];
    size_t npf;
    bool none;                       /* the ranges say nothing can match */
    struct dip_flow *dec, *cand;     /* decoded chunk (when not cached), candidates */
    size_t ndec, capdec, ncand, capcand;
    bool want_text;                  /* answers copy the records' text from chunks (spans) */
    struct dip_span_vec spans;       /* with want_text: the decoded chunk's spans */
    const struct dip_xpath *q;       /* NULL: every record (export) */
    xmlXPathCompExprPtr comp;        /* NULL with q */
    enum dip_xpath_shape shape;
    bool cache;                      /* keep parsed chunks: the query is selective on the key */
    bool narrow;                     /* the query constrains the tank key: decode only its subtrees */
    struct dip_u128 key_min, key_max; /* with narrow: the smallest and largest keys it can select */
    uint64_t started_ms, deadline_ms; /* dip_store_clock_ms() times: the query stops at the deadline */
    struct dip_dynbuf text;          /* inflated chunk text for libxml2, reused */
    uint64_t chunks_read, chunks_skipped;
    const struct dip_active_run *runs; /* the active part as sorted runs */
    size_t nruns;
    struct prefetched *pre;          /* chunks read ahead on two threads, by (seg, chunk) */
    size_t npre;
    atomic_size_t pre_next;          /* the next of them to read */
    bool timed_out;                  /* an evaluation was stopped at the deadline */
    struct dip_errbuf *eb;
};

/* One source of records in key order: a segment or a run of the active part. */
struct source {
    size_t seg;                 /* index in the manifest; SIZE_MAX for a run of the active part */
    size_t run;                 /* which run (with seg SIZE_MAX) */
    size_t next_chunk, end;     /* the chunks still to read: [next_chunk, end) */
    size_t first, last;         /* of a run: the records its key window holds, [first, last) */
    struct dip_flow *flows;     /* the current chunk's selected records */
    struct dip_text_span *spans; /* and where each lies in text (len 0: not there) */
    size_t n, pos, cap;
    struct dip_dynbuf text;     /* the current chunk's text */
    bool done;
};

/* ---- deadlines ----
 * A query stops at its deadline: the caller's (a leaf's: its requester's;
 * the access point's: its client's) or max_query_seconds after it started,
 * whichever comes first. Our loops look at the clock per chunk (a few
 * hundred records) and every DEADLINE_EVERY records they pass on; libxml2's
 * evaluations are stopped from outside (watch.c). A query that reaches its
 * deadline fails with DIP_ETIMEOUT, never with a partial answer. */
#define DEADLINE_EVERY 4096

static bool past_deadline(const struct query_run *r) { return dip_store_clock_ms() >= r->deadline_ms; }

static int timeout_err(const struct query_run *r, struct dip_errbuf *eb)
{
    return dip_err_set(eb, DIP_ETIMEOUT, "query ran past its deadline (%.1f s after it started)",
                       (double)(r->deadline_ms - r->started_ms) / 1e3);
}

/* The records of active chunk i: a slice of a sorted run, within the
 * source's key window. */
static const struct dip_flow *active_slice(const struct query_run *r, const struct source *src, size_t i, size_t *n)
{
    const struct dip_active_run *run = &r->runs[src->run];
    size_t per = r->s->opt.chunk_records, start = i * per, stop = start + per;
    if (start < src->first) start = src->first;
    if (stop > src->last) stop = src->last;
    *n = stop > start ? stop - start : 0;
    return run->flows + start;
}

/* ---- key windows of active runs ----
 * A run is sorted in document order: by the tank key first, IPv4
 * addresses before IPv6 ones (dip_addr_cmp). In the analyser's value space
 * the IPv4 keys are the block ::ffff:0:0/96, in the middle of the IPv6
 * keys, so a run's keys rise in two pieces, its IPv4 records then the
 * rest; port keys rise in one. A query narrowed on the key reads only the
 * records between two binary searches of the piece its keys fall in. Under
 * ingest the active part is a dozen runs of up to 32,768 records, and a
 * point query tested every record of the chunk reaching its key in each:
 * ~10,000 records and a third of a small query's time at a leaf. */

static struct dip_u128 run_key(const struct query_run *r, const struct dip_flow *f)
{
    return dip_summary_value(f, (enum summary_field)r->s->man.key);
}

/* The IPv4 block of the value space, ::ffff:0.0.0.0 to ::ffff:255.255.255.255. */
static const struct dip_u128 v4_lo = { 0, (uint64_t)0xffff << 32 }, v4_hi = { 0, ((uint64_t)0xffff << 32) | 0xffffffffu };

static bool key_is_v4(struct dip_u128 v) { return dip_u128_cmp(v, v4_lo) >= 0 && dip_u128_cmp(v, v4_hi) <= 0; }

/* First position in [lo, hi) of run whose key is above v (above: strictly
 * greater) or at least v, where keys rise over [lo, hi). */
static size_t run_search(const struct query_run *r, const struct dip_active_run *run, size_t lo, size_t hi,
                         struct dip_u128 v, bool above)
{
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = dip_u128_cmp(run_key(r, &run->flows[mid]), v);
        if (above ? c <= 0 : c < 0) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* Sets src->first and src->last to the records of its run that the
 * query's keys [key_min, key_max] can reach; the whole run when they reach
 * both pieces of an address tank. */
static void run_window(const struct query_run *r, struct source *src)
{
    const struct dip_active_run *run = &r->runs[src->run];
    size_t lo = 0, hi = run->n;
    src->first = 0;
    src->last = run->n;
    if (!r->narrow) return;
    if (r->s->man.key == DIP_KEY_SRC || r->s->man.key == DIP_KEY_DST) {
        /* the first non-IPv4 record: IPv4 ones come first, as dip_addr_cmp orders them */
        bool src_key = r->s->man.key == DIP_KEY_SRC;
        size_t a = 0, b = run->n;
        while (a < b) {
            size_t mid = a + (b - a) / 2;
            if (dip_addr_is_v4(src_key ? &run->flows[mid].src : &run->flows[mid].dst)) a = mid + 1;
            else b = mid;
        }
        if (key_is_v4(r->key_min) && key_is_v4(r->key_max)) {
            hi = a; /* within the IPv4 block */
        } else if (dip_u128_cmp(r->key_max, v4_lo) < 0 || dip_u128_cmp(r->key_min, v4_hi) > 0) {
            lo = a; /* IPv6 keys only */
        } else {
            return; /* both pieces */
        }
    }
    src->first = run_search(r, run, lo, hi, r->key_min, false);
    src->last = run_search(r, run, src->first, hi, r->key_max, true);
}

/* Sets the sources of a query: segment i for i < nsegs, then the runs; a
 * query narrowed on the key reads only the chunks of a segment its keys
 * can reach. */
static void source_init(struct query_run *r, struct source *src, size_t i)
{
    memset(src, 0, sizeof *src);
    dip_dynbuf_init(&src->text, (size_t)1 << 30);
    if (i < r->s->man.nsegs) {
        size_t nchunks = r->s->man.segs[i].nchunks;
        src->seg = i;
        src->end = nchunks;
        if (r->narrow) {
            dip_reach_window(r->s, i, r->key_min, r->key_max, &src->next_chunk, &src->end);
            r->chunks_skipped += nchunks - (src->end - src->next_chunk);
        }
    } else {
        size_t per = r->s->opt.chunk_records;
        src->seg = SIZE_MAX;
        src->run = i - r->s->man.nsegs;
        run_window(r, src);
        src->next_chunk = src->first / per;
        src->end = src->last > src->first ? (src->last + per - 1) / per : src->next_chunk;
        r->chunks_skipped += (r->runs[src->run].n + per - 1) / per - (src->end - src->next_chunk);
    }
}

static bool summary_may_match(const struct query_run *r, const struct dip_summary *sum)
{
    if (r->none) return false;
    if (!dip_summary_may_match(sum, r->q, r->s->man.key)) return false;
    return dip_xpath_attr_may_match(r->q, "bytes", sum->min[SUM_BYTES], sum->max[SUM_BYTES]) &&
           dip_xpath_attr_may_match(r->q, "packets", sum->min[SUM_PACKETS], sum->max[SUM_PACKETS]);
}

_Static_assert(SUM_SRC == (int)DIP_KEY_SRC && SUM_DST == (int)DIP_KEY_DST && SUM_SPORT == (int)DIP_KEY_SPORT &&
                   SUM_DPORT == (int)DIP_KEY_DPORT,
               "summary fields of the keys in tank key order");

static bool chunk_may_match(const struct query_run *r, const struct source *src, size_t i)
{
    if (!r->q) return true;
    if (src->seg != SIZE_MAX) {
        const struct dip_summary *sum = &r->s->man.segs[src->seg].chunks[i].sum;
        /* a point query passes over thousands of chunks outside its keys:
         * two comparisons each before the analyser's full test */
        int k = (int)r->s->man.key; /* SUM_SRC..SUM_DPORT in tank key order */
        if (r->narrow && (dip_u128_cmp(sum->max[k], r->key_min) < 0 || dip_u128_cmp(r->key_max, sum->min[k]) < 0))
            return false;
        return summary_may_match(r, sum);
    }
    return summary_may_match(r, &r->runs[src->run].sums[i]);
}

static bool keep_subtree(void *ctx, struct dip_u128 lo, struct dip_u128 hi)
{
    const struct query_run *r = ctx;
    int key = r->s->man.key;
    return dip_xpath_may_match(r->q, key, (enum dip_xpath_key)key, lo, hi);
}

/* For dip_segment_read_chunk_until: a chunk's text is in key order, so once
 * a complete flow has a key above everything the query can select, the text
 * up to that flow is all it needs. Returns that length, or 0 to go on. */
static size_t past_key_max(void *ctx, const char *text, size_t len)
{
    const struct query_run *r = ctx;
    static const char *const attr[] = { " src=\"", " dst=\"", " sport=\"", " dport=\"" };
    int key = r->s->man.key;
    const char *close = NULL;
    for (const char *p = text + len - 1; p > text && !close && text + len - p < 4096; p--)
        if (p[-1] == '/' && p[0] == '>') close = p + 1;
    if (!close) return 0;
    const char *open = memrchr(text, '<', (size_t)(close - text));
    if (!open || strncmp(open, "<flow ", 6) != 0) return 0;
    size_t alen = strlen(attr[key]);
    const char *v = memmem(open, (size_t)(close - open), attr[key], alen);
    if (!v) return 0;
    v += alen;
    const char *q = memchr(v, '"', (size_t)(close - v));
    if (!q) return 0;
    struct dip_u128 k = { 0, 0 };
    if (key == DIP_KEY_SRC || key == DIP_KEY_DST) {
        struct dip_addr a;
        if (dip_addr_parse(v, (size_t)(q - v), &a) != DIP_OK) return 0;
        k = dip_u128_from_bytes(a.b);
    } else {
        for (const char *p = v; p < q; p++) {
            if (*p < '0' || *p > '9') return 0;
            k.lo = k.lo * 10 + (uint64_t)(*p - '0');
        }
    }
    return dip_u128_cmp(k, r->key_max) > 0 ? (size_t)(close - text) : 0;
}

/* ---- point queries: chunks read ahead on two threads ---- */

/* A point query that selects many records spends nearly all its time
 * inflating and decoding the chunks its key reaches, one after another
 * (13,000-18,000 records of one host: ~15 chunks, ~20 ms). Those chunks are
 * known before the merge starts, so they are read ahead by the query's
 * thread and a helper, and the merge takes them as it goes. */
/* The bounds are in records, so they hold whatever the chunk size (they
 * were 4-64 chunks of 1024): fewer are not worth starting a thread, more
 * would be held at once in too much memory (~300 bytes of text a record).
 * On a 20M-record network, answers of 16k-61k records took the same time
 * with the upper bound at 16,384 records as at 65,536. */
#define PREFETCH_MIN_RECORDS 4096
#define PREFETCH_MAX_RECORDS 65536

static int prefetched_cmp(size_t seg, size_t chunk, const struct prefetched *p)
{
    if (seg != p->seg) return seg < p->seg ? -1 : 1;
    return chunk < p->chunk ? -1 : chunk > p->chunk;
}

/* Returns: the read-ahead chunk (seg, chunk), or NULL (the plan is sorted). */
static struct prefetched *prefetched_find(struct query_run *r, size_t seg, size_t chunk)
{
    size_t lo = 0, hi = r->npre;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = prefetched_cmp(seg, chunk, &r->pre[mid]);
        if (!c) return &r->pre[mid];
        if (c < 0) hi = mid;
        else lo = mid + 1;
    }
    return NULL;
}

/* Hands a read-ahead chunk to src as chunk_records would have read it. */
static int prefetched_take(struct query_run *r, struct prefetched *p, struct source *src, const struct dip_flow **flows,
                           size_t *n, const struct dip_text_span **spans)
{
    if (p->rc == DIP_EAGAIN) return DIP_EAGAIN;
    if (p->rc) return dip_err_set(r->eb, p->rc, "%s", p->eb.msg);
    struct dip_dynbuf t = src->text; /* the spans point into the chunk's text: it becomes the source's */
    src->text = p->text;
    p->text = t;
    *flows = p->flows;
    *n = p->n;
    *spans = r->want_text ? p->spans.v : NULL;
    return DIP_OK;
}

static void prefetch_one(struct query_run *r, struct prefetched *p)
{
    const struct dip_segment *seg = &r->s->man.segs[p->seg];
    if (past_deadline(r)) {
        p->rc = timeout_err(r, &p->eb);
        return;
    }
    p->rc = dip_segment_read_chunk_until(r->s->seg_fds[p->seg], seg->file, &seg->chunks[p->chunk], &p->text,
                                         past_key_max, r, &p->eb);
    if (p->rc) return;
    struct dip_chunk_filter flt = { keep_subtree, r, true };
    int rc = dip_chunk_decode_spans(r->s->man.key, (const char *)p->text.data, p->text.len, &flt, &p->flows, &p->n,
                                    &p->cap, r->want_text ? &p->spans : NULL);
    if (rc == DIP_ENOMEM) p->rc = dip_err_set(&p->eb, rc, "no memory to decode %s chunk %zu", seg->file, p->chunk);
    else if (rc) p->rc = DIP_EAGAIN;
}

/* Reads planned chunks until none is left (on both threads). */
static void *prefetch_main(void *arg)
{
    struct query_run *r = arg;
    for (size_t i; (i = atomic_fetch_add(&r->pre_next, 1)) < r->npre;) prefetch_one(r, &r->pre[i]);
    return NULL;
}

/* Plans the chunks of a query narrowed on the key that would be read and
 * decoded in part (not cached, read rarely: as chunk_records decides) and
 * reads them ahead; those that turn out decoded whole are cached when the
 * query is over (prefetch_free). Out of memory or without a thread, the
 * query reads them itself as before. */
static void prefetch(struct query_run *r, const struct source *srcs, size_t nsrc)
{
    if (!r->narrow || !r->q) return;
    size_t per = r->s->opt.chunk_records, min = PREFETCH_MIN_RECORDS / per, max = PREFETCH_MAX_RECORDS / per;
    if (min < 2) min = 2;
    if (max < min) max = min;
    size_t want = 0;
    for (size_t k = 0; k < nsrc && want <= max; k++)
        if (srcs[k].seg != SIZE_MAX && !srcs[k].done) want += srcs[k].end - srcs[k].next_chunk;
    /* more: a large answer, read in the merge's order as it goes (held all
     * at once, the chunks cost more in fresh memory than two threads gain) */
    if (want < min || want > max) return;
    struct prefetched *pre = calloc(want, sizeof *pre);
    if (!pre) return;
    size_t n = 0;
    for (size_t k = 0; k < nsrc && n < want; k++) {
        const struct source *src = &srcs[k];
        if (src->seg == SIZE_MAX || src->done) continue;
        const struct dip_segment *seg = &r->s->man.segs[src->seg];
        for (size_t i = src->next_chunk; i < src->end && n < want; i++) {
            size_t cached;
            if (!chunk_may_match(r, src, i) || dip_cache_get_flows(&r->s->cache, seg->file, i, &cached)) continue;
            /* read often: chunk_records decodes it whole and caches it (its
             * own count of this read leaves the count at its top, 7) */
            if (dip_cache_reads(&r->s->cache, seg->file, i) >= DIP_CACHE_ADMIT) continue;
            pre[n] = (struct prefetched){ .seg = src->seg, .chunk = i };
            dip_dynbuf_init(&pre[n].text, (size_t)1 << 30);
            n++;
        }
    }
    r->pre = pre;
    r->npre = n;
    atomic_store(&r->pre_next, 0);
    if (n < min) { /* the rest were cached or read often: read in the merge as before */
        prefetch_main(r);
        return;
    }
    pthread_t helper;
    bool two = pthread_create(&helper, NULL, prefetch_main, r) == 0;
    prefetch_main(r);
    if (two) pthread_join(helper, NULL);
}

/* Frees the read-ahead chunks once the merge is over. A chunk whose
 * records all fell in the query's key range (most chunks of a host with
 * thousands of records) was decoded whole: it goes to the cache as
 * chunk_records would have put it after DIP_CACHE_ADMIT reads, at no cost
 * but its memory, so the host's next query reads it from there. */
static void prefetch_free(struct query_run *r)
{
    for (size_t i = 0; i < r->npre; i++) {
        struct prefetched *p = &r->pre[i];
        const struct dip_segment *seg = &r->s->man.segs[p->seg];
        if (p->rc == DIP_OK && p->n && p->n == seg->chunks[p->chunk].sum.count) {
            /* the decoder's array starts at 1024 records: the cache counts
             * only what it holds, so it gets no more (shrinking is in place) */
            struct dip_flow *fit = p->cap > p->n ? realloc(p->flows, p->n * sizeof *fit) : NULL;
            if (fit) {
                p->flows = fit;
                p->cap = p->n;
            }
            if (p->cap == p->n && dip_cache_put_flows(&r->s->cache, seg->file, p->chunk, p->flows, p->n))
                p->flows = NULL;
        }
        dip_dynbuf_free(&p->text);
        free(p->flows);
        free(p->spans.v);
    }
    free(r->pre);
    r->pre = NULL;
    r->npre = 0;
}

/* The records of chunk i of a source, borrowed until the next call, and
 * with want_text where each lies in src->text (*spans; NULL when the
 * records come from memory). DIP_EAGAIN: the chunk's text is not
 * canonical, use chunk_doc. */
static int chunk_records(struct query_run *r, struct source *src, size_t i, const struct dip_flow **flows, size_t *n,
                         const struct dip_text_span **spans)
{
    *spans = NULL;
    if (src->seg == SIZE_MAX) {
        *flows = active_slice(r, src, i, n);
        return DIP_OK;
    }
    const struct dip_segment *seg = &r->s->man.segs[src->seg];
    struct prefetched *p = prefetched_find(r, src->seg, i);
    if (p) return prefetched_take(r, p, src, flows, n, spans);
    if ((*flows = dip_cache_get_flows(&r->s->cache, seg->file, i, n))) return DIP_OK;
    bool filtered = r->narrow && dip_cache_reads(&r->s->cache, seg->file, i) < DIP_CACHE_ADMIT;
    struct dip_dynbuf *text = &src->text;
    struct dip_span_vec *sv = r->want_text ? &r->spans : NULL;
    int rc = filtered ? dip_segment_read_chunk_until(r->s->seg_fds[src->seg], seg->file, &seg->chunks[i], text,
                                                     past_key_max, r, r->eb)
                      : dip_segment_read_chunk(r->s->seg_fds[src->seg], seg->file, &seg->chunks[i], text, r->eb);
    if (rc) return rc;
    if (filtered) {
        /* A query narrowed on the key, on a chunk read rarely: only the
         * subtrees the constraint reaches (a point query reads a chunk ~4x
         * faster than decoding all of it), not cached. A chunk asked for
         * often is decoded whole and cached below: random point queries
         * meet in a chunk now and then, and paying a full decode for each
         * such meeting made them slower than never caching. */
        struct dip_chunk_filter flt = { keep_subtree, r, true };
        r->ndec = 0;
        rc = dip_chunk_decode_spans(r->s->man.key, (const char *)text->data, text->len, &flt, &r->dec, &r->ndec,
                                    &r->capdec, sv);
        if (rc == DIP_ENOMEM) return dip_err_set(r->eb, rc, "no memory to decode %s chunk %zu", seg->file, i);
        if (rc) return DIP_EAGAIN;
        *flows = r->dec;
        *n = r->ndec;
        if (sv) *spans = sv->v;
        return DIP_OK;
    }
    /* Decoded records (~150 bytes each, against ~3.5 KB for a tree) stay in
     * the cache for later queries: always for queries narrowed on the key,
     * for scans only while the cache has room (a scan never evicts; it
     * decodes into one reused buffer instead of touching fresh memory). */
    struct dip_flow *own = NULL;
    size_t nown = 0, capown = 0;
    size_t want = (size_t)seg->chunks[i].sum.count * sizeof *own + 128;
    bool keep = r->cache || r->s->cache.bytes + want <= r->s->cache.budget;
    if (keep && seg->chunks[i].sum.count <= (uint64_t)1 << 20) {
        capown = seg->chunks[i].sum.count ? (size_t)seg->chunks[i].sum.count : 1;
        own = malloc(capown * sizeof *own);
    }
    struct dip_flow **dst = own ? &own : &r->dec;
    size_t *dn = own ? &nown : &r->ndec, *dcap = own ? &capown : &r->capdec;
    *dn = 0;
    rc = dip_chunk_decode_spans(r->s->man.key, (const char *)text->data, text->len, NULL, dst, dn, dcap, sv);
    if (rc) {
        free(own);
        if (rc == DIP_ENOMEM) return dip_err_set(r->eb, rc, "no memory to decode %s chunk %zu", seg->file, i);
        return DIP_EAGAIN;
    }
    *flows = *dst;
    *n = *dn;
    if (sv) *spans = sv->v;
    if (own && !dip_cache_put_flows(&r->s->cache, seg->file, i, own, nown)) {
        /* no room: keep them for this query only */
        free(r->dec);
        r->dec = own;
        r->ndec = nown;
        r->capdec = capown;
    }
    return DIP_OK;
}

static struct dip_u128 field_value(const struct dip_flow *f, const struct dip_field *fd)
{
    struct dip_u128 v = { 0, 0 };
    if (fd->type == DIP_FT_ADDR) {
        v = dip_u128_from_bytes((const uint8_t *)f + fd->offset);
    } else if (fd->opt_bit && !(f->present & fd->opt_bit)) {
        v.hi = DIP_XPATH_ABSENT_HI;
    } else {
        v.lo = dip_flow_get_u64(f, fd);
    }
    return v;
}

static bool in_ranges(const struct prefilter *p, struct dip_u128 v)
{
    size_t lo = 0, hi = p->n;
    while (lo < hi) { /* first range whose upper end is >= v */
        size_t mid = (lo + hi) / 2;
        const struct dip_u128 *u = &p->ranges[mid].hi;
        if (u->hi < v.hi || (u->hi == v.hi && u->lo < v.lo)) lo = mid + 1;
        else hi = mid;
    }
    if (lo == p->n) return false;
    const struct dip_u128 *l = &p->ranges[lo].lo;
    return l->hi < v.hi || (l->hi == v.hi && l->lo <= v.lo);
}

static bool may_select(const struct query_run *r, const struct dip_flow *f)
{
    for (size_t k = 0; k < r->npf; k++)
        if (!in_ranges(&r->pf[k], field_value(f, r->pf[k].fd))) return false;
    return true;
}

static int push_flow(struct source *src, const struct dip_flow *f, const struct dip_text_span *span);
static xmlXPathObjectPtr eval_on(struct query_run *r, xmlDocPtr doc);
static int eval_failed(struct query_run *r);

/* Evaluates the query on the records of one chunk: selected flows go to out
 * (node-set shapes), numbers add to *num, booleans or into *any. Returns
 * DIP_EAGAIN when libxml2's result is not a node-set of flows. */
static int eval_records(struct query_run *r, const struct dip_flow *f, const struct dip_text_span *spans, size_t n,
                        struct source *out, double *num, bool *any)
{
    if (r->fq) {
        enum dip_fastq_kind kind = dip_fastq_kind(r->fq);
        double part = 0;
        uint64_t count = 0;
        for (size_t k = 0; k < n; k++) {
            if (!dip_fastq_match(r->fq, &f[k])) continue;
            switch (kind) {
            case DIP_FASTQ_FLOWS:
                if (push_flow(out, &f[k], spans ? &spans[k] : NULL)) return DIP_ENOMEM;
                break;
            case DIP_FASTQ_COUNT: count++; break;
            case DIP_FASTQ_SUM: {
                bool has;
                double v = dip_fastq_value(r->fq, &f[k], &has);
                if (has) part += v;
                break;
            }
            case DIP_FASTQ_BOOLEAN: *any = true; return DIP_OK;
            }
        }
        if (kind == DIP_FASTQ_COUNT) *num += (double)count;
        else if (kind == DIP_FASTQ_SUM) *num += part;
        return DIP_OK;
    }
    r->ncand = 0;
    for (size_t k = 0; k < n; k++) {
        if (!may_select(r, &f[k])) continue;
        if (r->ncand == r->capcand) {
            size_t cap = r->capcand ? r->capcand * 2 : 256;
            struct dip_flow *p = realloc(r->cand, cap * sizeof *p);
            if (!p) return DIP_ENOMEM;
            r->cand = p;
            r->capcand = cap;
        }
        r->cand[r->ncand++] = f[k];
    }
    if (!r->ncand) return DIP_OK; /* the analyser's ranges: nothing here can be selected */
    xmlDocPtr doc = dip_tree_build_marked(r->s->man.key, r->cand, r->ncand);
    if (!doc) return dip_err_set(r->eb, DIP_ENOMEM, "no memory for a tree of %zu records", r->ncand);
    xmlXPathObjectPtr obj = eval_on(r, doc);
    int rc = DIP_OK;
    if (!obj) rc = eval_failed(r);
    else if (r->shape == DIP_XPATH_BOOLEAN) *any = xmlXPathCastToBoolean(obj);
    else if (r->shape != DIP_XPATH_FLOWS) *num += xmlXPathCastToNumber(obj);
    else if (obj->type != XPATH_NODESET) rc = DIP_EAGAIN;
    else {
        for (int k = 0; !rc && obj->nodesetval && k < obj->nodesetval->nodeNr; k++) {
            xmlNodePtr node = obj->nodesetval->nodeTab[k];
            if (node->type != XML_ELEMENT_NODE || strcmp((const char *)node->name, "flow") != 0 || !node->_private) {
                rc = DIP_EAGAIN; /* not a node-set of flows after all: gather instead */
                break;
            }
            size_t idx = (size_t)(uintptr_t)node->_private - 1;
            rc = idx < r->ncand ? push_flow(out, &r->cand[idx], NULL) : DIP_EAGAIN;
        }
    }
    if (obj) xmlXPathFreeObject(obj);
    xmlFreeDoc(doc);
    return rc;
}

/* Makes the tree of chunk i of a source. *owned tells whether the caller
 * must free it (trees of sealed chunks stay in the store's cache). */
static int chunk_doc(struct query_run *r, const struct source *src, size_t i, xmlDocPtr *doc, bool *owned)
{
    *owned = true;
    if (src->seg == SIZE_MAX) {
        size_t n;
        const struct dip_flow *f = active_slice(r, src, i, &n);
        *doc = dip_tree_build(r->s->man.key, f, n);
        return *doc ? DIP_OK : dip_err_set(r->eb, DIP_ENOMEM, "no memory to build a tree of %zu records", n);
    }
    const struct dip_segment *seg = &r->s->man.segs[src->seg];
    if ((*doc = dip_cache_get(&r->s->cache, seg->file, i))) {
        *owned = false;
        return DIP_OK;
    }
    int rc = dip_segment_read_chunk(r->s->seg_fds[src->seg], seg->file, &seg->chunks[i], &r->text, r->eb);
    if (rc) return rc;
    char where[128];
    snprintf(where, sizeof where, "%s chunk %zu", seg->file, i);
    rc = dip_tree_parse_chunk(r->s->man.key, (const char *)r->text.data, r->text.len, where, doc, r->eb);
    if (rc) return rc == DIP_ESYNTAX ? DIP_ECORRUPT : rc;
    size_t bytes = (size_t)seg->chunks[i].sum.count * DIP_TREE_BYTES_PER_RECORD;
    if (r->cache && dip_cache_put(&r->s->cache, seg->file, i, *doc, bytes)) *owned = false;
    return DIP_OK;
}

/* Evaluates the query on doc, stopped at the deadline. Returns: new
 * (xmlXPathFreeObject), or NULL: then eval_failed says why. */
static xmlXPathObjectPtr eval_on(struct query_run *r, xmlDocPtr doc)
{
    xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
    if (!ctx) return NULL;
    ctx->node = (xmlNodePtr)doc;
    struct dip_watch w;
    dip_watch_begin(&w, ctx, r->deadline_ms);
    xmlXPathObjectPtr obj = xmlXPathCompiledEval(r->comp, ctx);
    if (dip_watch_end(&w) && !obj) r->timed_out = true;
    xmlXPathFreeContext(ctx);
    return obj;
}

/* The error of an evaluation that returned NULL: the deadline, or libxml2. */
static int eval_failed(struct query_run *r)
{
    if (r->timed_out || past_deadline(r)) return timeout_err(r, r->eb);
    return dip_err_set(r->eb, DIP_EINVAL, "XPath evaluation failed");
}

static int push_flow(struct source *src, const struct dip_flow *f, const struct dip_text_span *span)
{
    if (src->n == src->cap) {
        size_t cap = src->cap ? src->cap * 2 : 256;
        struct dip_flow *p = realloc(src->flows, cap * sizeof *p);
        if (!p) return DIP_ENOMEM;
        src->flows = p;
        struct dip_text_span *sp = realloc(src->spans, cap * sizeof *sp);
        if (!sp) return DIP_ENOMEM;
        src->spans = sp;
        src->cap = cap;
    }
    src->spans[src->n] = span ? *span : (struct dip_text_span){ 0, 0 };
    src->flows[src->n++] = *f;
    return DIP_OK;
}

/* A chunk of a source ready to be evaluated: its records (and where each
 * lies in its text, or NULL), or, when its text is not in canonical form,
 * its tree (doc; owned: the caller frees it). */
struct chunk_view {
    const struct dip_flow *flows;
    const struct dip_text_span *spans;
    size_t n;
    xmlDocPtr doc;
    bool owned;
};

/* Reads the next chunk of src whose summary may match, skipping the others.
 * Returns DIP_OK with *got false when the source has none left. */
static int next_chunk(struct query_run *r, struct source *src, struct chunk_view *v, bool *got)
{
    *got = false;
    while (src->next_chunk < src->end) {
        size_t i = src->next_chunk++;
        if (!chunk_may_match(r, src, i)) {
            r->chunks_skipped++;
            continue;
        }
        if (past_deadline(r)) return timeout_err(r, r->eb);
        r->chunks_read++;
        memset(v, 0, sizeof *v);
        int rc = chunk_records(r, src, i, &v->flows, &v->n, &v->spans);
        if (rc == DIP_EAGAIN) rc = chunk_doc(r, src, i, &v->doc, &v->owned);
        if (rc) return rc;
        *got = true;
        return DIP_OK;
    }
    return DIP_OK;
}

static void chunk_view_release(struct chunk_view *v)
{
    if (v->doc && v->owned) xmlFreeDoc(v->doc);
    v->doc = NULL;
}

/* Fills src with the selected records of a tree's chunk (libxml2 decides). */
static int tree_fill(struct query_run *r, struct source *src, xmlDocPtr doc)
{
    if (!r->q) return dip_tree_collect(doc, &src->flows, &src->n, &src->cap, r->eb);
    xmlXPathObjectPtr obj = eval_on(r, doc);
    if (!obj) return eval_failed(r);
    int rc = obj->type != XPATH_NODESET ? DIP_EAGAIN : DIP_OK;
    for (int k = 0; !rc && obj->nodesetval && k < obj->nodesetval->nodeNr; k++) {
        xmlNodePtr node = obj->nodesetval->nodeTab[k];
        struct dip_flow f;
        if (node->type != XML_ELEMENT_NODE || strcmp((const char *)node->name, "flow") != 0) {
            rc = DIP_EAGAIN; /* not a node-set of flows after all: gather instead */
            break;
        }
        rc = dip_flow_from_xml_node(&f, node, r->eb);
        if (!rc) rc = push_flow(src, &f, NULL);
    }
    xmlXPathFreeObject(obj);
    return rc;
}

/* Fills src with the selected records of its next chunk that has any. */
static int source_fill(struct query_run *r, struct source *src)
{
    src->n = src->pos = 0;
    while (src->n == 0) {
        struct chunk_view v;
        bool got;
        int rc = next_chunk(r, src, &v, &got);
        if (rc) return rc;
        if (!got) break;
        if (v.doc) {
            rc = tree_fill(r, src, v.doc);
            chunk_view_release(&v);
        } else if (!r->q) {
            for (size_t k = 0; k < v.n && !rc; k++) rc = push_flow(src, &v.flows[k], v.spans ? &v.spans[k] : NULL);
        } else {
            double num = 0;
            bool any = false;
            rc = eval_records(r, v.flows, v.spans, v.n, src, &num, &any);
        }
        if (rc) return rc;
    }
    if (src->n == 0) src->done = true;
    return DIP_OK;
}

/* Orders two sources by their current records in document order; equal
 * records (the same text) earlier source first. */
static bool source_before(const struct source *srcs, size_t x, size_t y, enum dip_tank_key key)
{
    int c = dip_flow_order_cmp(&srcs[x].flows[srcs[x].pos], &srcs[y].flows[srcs[y].pos], key);
    return c < 0 || (c == 0 && x < y);
}

/* Restores the min-heap property of heap[0..n) below position i. */
static void sift_down(size_t *heap, size_t n, size_t i, const struct source *srcs, enum dip_tank_key key)
{
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < n && source_before(srcs, heap[l], heap[m], key)) m = l;
        if (l + 1 < n && source_before(srcs, heap[l + 1], heap[m], key)) m = l + 1;
        if (m == i) return;
        size_t t = heap[i];
        heap[i] = heap[m];
        heap[m] = t;
        i = m;
    }
}

/* Receives the next record of an answer and, when the chunk text held it in
 * the canonical form, that text ("<flow .../>", len bytes), else NULL. */
typedef int (*emit_fn)(void *ctx, const struct dip_flow *f, const char *text, size_t len);

/* Streams the selected records of every source in document order (a k-way
 * merge through a binary heap of the sources). */
static int merge_sources(struct query_run *r, emit_fn fn, void *ctx)
{
    size_t nsrc = r->s->man.nsegs + r->nruns;
    enum dip_tank_key key = r->s->man.key;
    struct source *srcs = calloc(nsrc, sizeof *srcs);
    size_t *heap = calloc(nsrc, sizeof *heap);
    if (!srcs || !heap) {
        free(srcs);
        free(heap);
        return DIP_ENOMEM;
    }
    int rc = DIP_OK;
    size_t n = 0;
    for (size_t i = 0; i < nsrc; i++) source_init(r, &srcs[i], i);
    prefetch(r, srcs, nsrc);
    for (size_t i = 0; i < nsrc && !rc; i++) {
        rc = source_fill(r, &srcs[i]);
        if (!rc && !srcs[i].done) heap[n++] = i;
    }
    for (size_t i = n / 2; i-- > 0;) sift_down(heap, n, i, srcs, key);
    for (size_t emitted = 0; !rc && n; emitted++) {
        if (emitted % DEADLINE_EVERY == DEADLINE_EVERY - 1 && past_deadline(r)) {
            rc = timeout_err(r, r->eb);
            break;
        }
        struct source *best = &srcs[heap[0]];
        const struct dip_text_span *sp = &best->spans[best->pos];
        rc = fn(ctx, &best->flows[best->pos], sp->len ? (const char *)best->text.data + sp->off : NULL, sp->len);
        if (rc) break;
        if (++best->pos == best->n && (rc = source_fill(r, best))) break;
        if (best->done) heap[0] = heap[--n];
        sift_down(heap, n, 0, srcs, key);
    }
    for (size_t i = 0; i < nsrc; i++) {
        free(srcs[i].flows);
        free(srcs[i].spans);
        dip_dynbuf_free(&srcs[i].text);
    }
    free(srcs);
    free(heap);
    prefetch_free(r);
    return rc;
}

/* ---- decomposable aggregates: count, sum, boolean ---- */

/* Adds the chunks of one source to *total, or sets *any. */
static int aggregate_source(struct query_run *r, struct source *src, double *total, bool *any)
{
    while (!*any) {
        struct chunk_view v;
        bool got;
        int rc = next_chunk(r, src, &v, &got);
        if (rc) return rc;
        if (!got) break;
        if (!v.doc) {
            rc = eval_records(r, v.flows, NULL, v.n, NULL, total, any);
            if (rc) return rc == DIP_EAGAIN ? DIP_EINVAL : rc;
            continue;
        }
        xmlXPathObjectPtr obj = eval_on(r, v.doc);
        if (obj && r->shape == DIP_XPATH_BOOLEAN) *any = xmlXPathCastToBoolean(obj);
        else if (obj) *total += xmlXPathCastToNumber(obj);
        xmlXPathFreeObject(obj);
        chunk_view_release(&v);
        if (!obj) return eval_failed(r);
    }
    return DIP_OK;
}

static int aggregate(struct query_run *r, struct dip_store_answer *ans)
{
    double total = 0;
    bool any = false;
    size_t nsrc = r->s->man.nsegs + r->nruns;
    for (size_t si = 0; si < nsrc && !any; si++) {
        struct source src;
        source_init(r, &src, si);
        int rc = aggregate_source(r, &src, &total, &any);
        dip_dynbuf_free(&src.text);
        if (rc) return rc;
    }
    if (r->shape == DIP_XPATH_BOOLEAN) {
        ans->kind = DIP_RESULT_BOOLEAN;
        ans->boolean = any;
    } else {
        ans->kind = DIP_RESULT_NUMBER;
        ans->number = total;
    }
    return DIP_OK;
}

/* ---- results ---- */

struct flow_sink {
    struct dip_store_answer *ans;
    const struct dip_store_options *opt;
    struct dip_errbuf *eb;
};

/* Appends a record's element as dip_flow_xml_append writes it, from its
 * text in a chunk ("<flow .../>" as sealed: the ID left out when it is the
 * default one, so it is written out here). */
static int append_flow_text(struct dip_dynbuf *b, const struct dip_flow *f, const char *text, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    enum { ID_ATTR = 22 }; /* ` id="`, 16 hex digits, `"` */
    bool has_id = len >= ID_ATTR + 2 && memcmp(text + len - 2 - ID_ATTR, " id=\"", 5) == 0;
    int rc = dip_dynbuf_reserve(b, len + ID_ATTR);
    if (rc) return rc;
    char *p = (char *)b->data + b->len;
    memcpy(p, text, len - 2);
    p += len - 2;
    if (!has_id) {
        memcpy(p, " id=\"", 5);
        for (int i = 0, sh = 60; sh >= 0; i++, sh -= 4) p[5 + i] = hex[(f->id >> sh) & 15];
        p[21] = '"';
        p += ID_ATTR;
    }
    memcpy(p, "/>", 2);
    b->len = (size_t)(p + 2 - (char *)b->data);
    b->data[b->len] = 0;
    return DIP_OK;
}

static int sink_flow(void *ctx, const struct dip_flow *f, const char *text, size_t len)
{
    struct flow_sink *k = ctx;
    if (k->ans->count >= k->opt->max_result_records)
        return dip_err_set(k->eb, DIP_ERANGE, "result exceeds the limit of %zu records", k->opt->max_result_records);
    int rc = text ? append_flow_text(&k->ans->body, f, text, len) : dip_flow_xml_append(f, &k->ans->body);
    if (!rc) rc = dip_dynbuf_add(&k->ans->body, "\n", 1);
    if (rc == DIP_ERANGE)
        return dip_err_set(k->eb, DIP_ERANGE, "result exceeds the limit of %zu bytes", k->opt->max_result_bytes);
    if (rc) return rc;
    k->ans->count++;
    return DIP_OK;
}

static int put_scalar(struct dip_store_answer *ans)
{
    switch (ans->kind) {
    case DIP_RESULT_NUMBER: {
        xmlChar *s = xmlXPathCastNumberToString(ans->number);
        int rc = dip_dynbuf_printf(&ans->body, "<number>%s</number>\n", s ? (const char *)s : "NaN");
        xmlFree(s);
        return rc;
    }
    case DIP_RESULT_BOOLEAN:
        return dip_dynbuf_printf(&ans->body, "<boolean>%s</boolean>\n", ans->boolean ? "true" : "false");
    default: return DIP_OK;
    }
}

/* Appends text escaped for XML character data or attribute values. */
static int put_escaped(struct dip_dynbuf *b, const char *s)
{
    int rc = DIP_OK;
    for (; *s && !rc; s++) {
        switch (*s) {
        case '<': rc = dip_dynbuf_addstr(b, "&lt;"); break;
        case '>': rc = dip_dynbuf_addstr(b, "&gt;"); break;
        case '&': rc = dip_dynbuf_addstr(b, "&amp;"); break;
        case '"': rc = dip_dynbuf_addstr(b, "&quot;"); break;
        default: rc = dip_dynbuf_add(b, s, 1);
        }
    }
    return rc;
}

/* Writes an arbitrary XPath value of a gathered evaluation. */
static int put_object(struct query_run *r, struct dip_store_answer *ans, xmlXPathObjectPtr obj)
{
    const struct dip_store_options *opt = &r->s->opt;
    struct dip_errbuf *eb = r->eb;
    int rc = DIP_OK;
    switch (obj->type) {
    case XPATH_NODESET: {
        ans->kind = DIP_RESULT_NODES;
        xmlBufferPtr xb = xmlBufferCreate();
        if (!xb) return DIP_ENOMEM;
        for (int i = 0; !rc && obj->nodesetval && i < obj->nodesetval->nodeNr; i++) {
            xmlNodePtr n = obj->nodesetval->nodeTab[i];
            if (ans->count >= opt->max_result_records) {
                rc = dip_err_set(eb, DIP_ERANGE, "result exceeds the limit of %zu nodes", opt->max_result_records);
                break;
            }
            if (i % DEADLINE_EVERY == DEADLINE_EVERY - 1 && past_deadline(r)) {
                rc = timeout_err(r, eb);
                break;
            }
            if (n->type == XML_ATTRIBUTE_NODE) {
                xmlChar *v = xmlNodeGetContent(n);
                rc = dip_dynbuf_printf(&ans->body, "<attribute name=\"%s\" value=\"", (const char *)n->name);
                if (!rc) rc = put_escaped(&ans->body, v ? (const char *)v : "");
                if (!rc) rc = dip_dynbuf_addstr(&ans->body, "\"/>\n");
                xmlFree(v);
            } else {
                xmlNodePtr what = n->type == XML_DOCUMENT_NODE ? xmlDocGetRootElement((xmlDocPtr)n) : n;
                xmlBufferEmpty(xb);
                if (what && xmlNodeDump(xb, what->doc, what, 0, 0) >= 0) {
                    rc = dip_dynbuf_add(&ans->body, xmlBufferContent(xb), (size_t)xmlBufferLength(xb));
                    if (!rc) rc = dip_dynbuf_add(&ans->body, "\n", 1);
                }
            }
            ans->count++;
        }
        xmlBufferFree(xb);
        if (rc == DIP_ERANGE && !eb->msg[0])
            dip_err_set(eb, rc, "result exceeds the limit of %zu bytes", opt->max_result_bytes);
        return rc;
    }
    case XPATH_NUMBER:
        ans->kind = DIP_RESULT_NUMBER;
        ans->number = obj->floatval;
        ans->count = 1;
        return put_scalar(ans);
    case XPATH_BOOLEAN:
        ans->kind = DIP_RESULT_BOOLEAN;
        ans->boolean = obj->boolval;
        ans->count = 1;
        return put_scalar(ans);
    case XPATH_STRING:
        ans->kind = DIP_RESULT_STRING;
        ans->count = 1;
        rc = dip_dynbuf_addstr(&ans->body, "<string>");
        if (!rc) rc = put_escaped(&ans->body, obj->stringval ? (const char *)obj->stringval : "");
        if (!rc) rc = dip_dynbuf_addstr(&ans->body, "</string>\n");
        return rc;
    default: return dip_err_set(eb, DIP_EINVAL, "unsupported XPath result type %d", obj->type);
    }
}

/* ---- the whole document's evaluation, in a child process ----
 * libxml2 stops at its operation limit (watch.c) everywhere but in the
 * merge of a union, which compares every node of one set with every node
 * of the other without counting: over the whole document of 100,000
 * records, (//flow[@dport=22] | //flow[@dport=443])[last()] ran 2-5 s past
 * its deadline. So the whole document is built and evaluated by a forked
 * child, from the records read here, and the answer comes back through a
 * pipe; at the deadline the child is killed, whatever libxml2 is doing.
 * The tree (~3.5 KB a record) never lives in this process: its memory goes
 * with the child at once, where freeing it node by node took 0.1-0.7 s of
 * CPU past the deadline. The fork costs a few milliseconds against the
 * build's hundreds. The child takes no lock another thread may have held
 * at the fork (the XPath context is made before it, the tree has no
 * dictionary, glibc's malloc is fork-safe) and dies with its parent
 * (PR_SET_PDEATHSIG). Without a child (fork fails), the same runs here,
 * under the watchdog. */

struct child_head {
    int32_t rc;
    int32_t kind;
    int32_t boolean;
    uint64_t count;
    double number;
    uint64_t body_len;
    char msg[sizeof(((struct dip_errbuf *)0)->msg)];
};

static bool write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t k = write(fd, c, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return false;
        c += k;
        n -= (size_t)k;
    }
    return true;
}

/* Reads n bytes from fd by the deadline. Returns DIP_OK, DIP_ETIMEOUT, or
 * DIP_EIO when the child ended first. */
static int read_by(const struct query_run *r, int fd, void *p, size_t n)
{
    char *c = p;
    while (n) {
        uint64_t now = dip_store_clock_ms();
        if (now >= r->deadline_ms) return DIP_ETIMEOUT;
        struct pollfd pf = { fd, POLLIN, 0 };
        uint64_t wait = r->deadline_ms - now;
        int k = poll(&pf, 1, wait > 60000 ? 60000 : (int)wait);
        if (k < 0 && errno != EINTR) return DIP_EIO;
        if (k <= 0) continue;
        ssize_t got = read(fd, c, n);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return DIP_EIO;
        c += got;
        n -= (size_t)got;
    }
    return DIP_OK;
}

/* Builds the document of flows[0..n) (in document order) and evaluates the
 * query over it with ctx (made without a document) into ans. */
static int build_and_eval(struct query_run *r, const struct dip_flow *flows, size_t n, xmlXPathContextPtr ctx,
                          struct dip_store_answer *ans)
{
    bool late = false;
    xmlDocPtr doc = dip_tree_build_until(r->s->man.key, flows, n, r->deadline_ms, &late);
    if (late) return timeout_err(r, r->eb);
    if (!doc) return dip_err_set(r->eb, DIP_ENOMEM, "no memory for the document of %zu records", n);
    ctx->doc = doc;
    ctx->node = (xmlNodePtr)doc;
    xmlXPathObjectPtr obj = xmlXPathCompiledEval(r->comp, ctx);
    if (!obj && dip_store_clock_ms() >= r->deadline_ms) r->timed_out = true;
    int rc = obj ? put_object(r, ans, obj) : eval_failed(r);
    xmlXPathFreeObject(obj);
    ctx->doc = NULL;
    ctx->node = NULL;
    xmlFreeDoc(doc);
    return rc;
}

/* In the child: closes every descriptor but fd, which becomes 3, and
 * returns it. A client's socket the child kept open would stay open after
 * the parent closed it: a client reading to the end (one query a
 * connection) would wait for the child. */
static int keep_only(int fd)
{
    if (fd != 3 && dup2(fd, 3) < 0) _exit(1);
    if (close_range(4, ~0u, 0) == 0) return 3;
    struct rlimit rl;
    rlim_t max = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536 ? rl.rlim_cur : 65536;
    for (rlim_t i = 4; i < max; i++) close((int)i);
    return 3;
}

/* In the child: builds, evaluates and writes the answer to fd, then exits
 * (the kernel takes back the tree: nothing is freed). */
static void child_eval(struct query_run *r, const struct dip_flow *flows, size_t n, xmlXPathContextPtr ctx, int fd,
                       pid_t parent)
{
    /* no handler of the parent's (libuv's write to its own pipe, whose
     * number may now be ours) runs here: the child ends by SIGKILL only */
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, NULL);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1); /* the parent died before the line above */
    fd = keep_only(fd);
    /* a whole-document evaluation is the heaviest work a node does: it
     * yields the CPUs to ingest and small queries, as merges do (nice 10) */
    if (setpriority(PRIO_PROCESS, 0, 10) != 0) { /* an unprivileged process may always lower itself */
    }
    struct dip_errbuf eb = { { 0 } };
    struct dip_store_answer a;
    memset(&a, 0, sizeof a);
    dip_dynbuf_init(&a.body, r->s->opt.max_result_bytes);
    r->eb = &eb;
    struct child_head h = { 0 };
    bool late = false;
    xmlDocPtr doc = dip_tree_build_until(r->s->man.key, flows, n, r->deadline_ms, &late);
    if (doc) {
        ctx->doc = doc;
        ctx->node = (xmlNodePtr)doc;
        xmlXPathObjectPtr obj = xmlXPathCompiledEval(r->comp, ctx);
        h.rc = obj ? put_object(r, &a, obj) : eval_failed(r);
    } else {
        h.rc = late ? timeout_err(r, &eb) : dip_err_set(&eb, DIP_ENOMEM, "no memory for the document of %zu records", n);
    }
    h.kind = (int32_t)a.kind;
    h.boolean = a.boolean;
    h.count = a.count;
    h.number = a.number;
    h.body_len = h.rc ? 0 : a.body.len;
    memcpy(h.msg, eb.msg, sizeof h.msg);
    bool ok = write_all(fd, &h, sizeof h) && (!h.body_len || write_all(fd, a.body.data, a.body.len));
    _exit(ok ? 0 : 1);
}

/* Evaluates the query over the document of flows[0..n) (in document
 * order) into ans, in a child process killed at the deadline. Takes
 * ownership of flows (freed here once the child has its copy). */
static int eval_whole(struct query_run *r, struct dip_flow *flows, size_t n, struct dip_store_answer *ans)
{
    xmlXPathContextPtr ctx = xmlXPathNewContext(NULL);
    if (!ctx) {
        free(flows);
        return dip_err_set(r->eb, DIP_ENOMEM, "no memory for an XPath context");
    }
    struct dip_watch w;
    dip_watch_begin(&w, ctx, r->deadline_ms); /* silences errors; stops the evaluation here if fork fails */
    int fds[2] = { -1, -1 };
    pid_t parent = getpid(), pid = pipe2(fds, O_CLOEXEC) == 0 ? fork() : -1;
    if (pid == 0) {
        close(fds[0]);
        child_eval(r, flows, n, ctx, fds[1], parent);
    }
    int rc;
    if (pid < 0) { /* no child: here, under the watchdog */
        if (fds[0] >= 0) close(fds[0]);
        if (fds[1] >= 0) close(fds[1]);
        rc = build_and_eval(r, flows, n, ctx, ans);
        if (dip_watch_end(&w) && rc == DIP_EINVAL) rc = timeout_err(r, r->eb);
        free(flows);
        xmlXPathFreeContext(ctx);
        return rc;
    }
    dip_watch_end(&w);
    free(flows); /* the child has its own copy */
    close(fds[1]);
    struct child_head h;
    rc = read_by(r, fds[0], &h, sizeof h);
    if (!rc && h.rc) rc = dip_err_set(r->eb, h.rc, "%.*s", (int)sizeof h.msg - 1, h.msg);
    if (!rc && h.body_len) {
        rc = dip_dynbuf_reserve(&ans->body, (size_t)h.body_len);
        if (!rc) rc = read_by(r, fds[0], ans->body.data + ans->body.len, (size_t)h.body_len);
        if (!rc) {
            ans->body.len += (size_t)h.body_len;
            ans->body.data[ans->body.len] = 0;
        }
    }
    if (!rc) {
        ans->kind = (enum dip_result_kind)h.kind;
        ans->boolean = h.boolean;
        ans->count = h.count;
        ans->number = h.number;
    }
    int status = 0;
    if (rc) kill(pid, SIGKILL); /* late, or it failed: it stops now */
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    close(fds[0]);
    xmlXPathFreeContext(ctx);
    if (rc == DIP_ETIMEOUT) return timeout_err(r, r->eb);
    if (rc == DIP_EIO)
        return dip_err_set(r->eb, DIP_EIO, "the evaluation's process ended without an answer (%s %d)",
                           WIFSIGNALED(status) ? "signal" : "exit status",
                           WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    return rc;
}

/* Evaluates over the whole logical document, built in memory. */
static int gather(struct query_run *r, struct dip_store_answer *ans)
{
    struct dip_store_stats st;
    dip_store_stats(r->s, &st);
    uint64_t limit = r->s->opt.memory_budget / DIP_TREE_BYTES_PER_RECORD;
    if (st.records > limit)
        return dip_err_set(r->eb, DIP_ERANGE,
                           "this expression needs the whole document (%llu records) in memory, above the limit of "
                           "%llu records the memory budget allows; select flows by their attributes "
                           "(e.g. //flow[...]) so the query can be evaluated piecewise",
                           (unsigned long long)st.records, (unsigned long long)limit);
    struct dip_flow *flows = NULL;
    size_t n = 0, cap = 0;
    int rc = DIP_OK;
    for (size_t i = 0; !rc && i < r->s->man.nsegs; i++)
        rc = dip_store_read_segment(r->s, i, r->deadline_ms, &flows, &n, &cap, r->eb);
    if (rc == DIP_ETIMEOUT) rc = timeout_err(r, r->eb);
    if (!rc && r->s->nactive) {
        struct dip_flow *p = realloc(flows, (n + r->s->nactive) * sizeof *p);
        if (!p) rc = DIP_ENOMEM;
        else {
            flows = p;
            memcpy(flows + n, r->s->active, r->s->nactive * sizeof *flows);
            n += r->s->nactive;
        }
    }
    if (rc) {
        free(flows);
        return rc;
    }
    dip_store_sort(flows, n, r->s->man.key);
    r->chunks_read = st.chunks + 1;
    return eval_whole(r, flows, n, ans);
}

static const char *shape_name(enum dip_xpath_shape s)
{
    static const char *const names[] = { "flows", "count", "sum", "boolean", "gather" };
    return (unsigned)s <= DIP_XPATH_GATHER ? names[s] : "gather";
}

static int prepare(struct query_run *r, struct dip_store *s, const char *xpath, size_t len, uint64_t deadline_ms,
                   struct dip_xpath **q, size_t *err_column, struct dip_errbuf *eb)
{
    memset(r, 0, sizeof *r);
    r->s = s;
    r->eb = eb;
    dip_dynbuf_init(&r->text, (size_t)1 << 30);
    r->started_ms = dip_store_clock_ms();
    double secs = s->opt.max_query_seconds > 0 ? s->opt.max_query_seconds : 1e6;
    r->deadline_ms = r->started_ms + (uint64_t)(secs * 1e3);
    if (deadline_ms && deadline_ms < r->deadline_ms) r->deadline_ms = deadline_ms;
    if (err_column) *err_column = 0;
    if (past_deadline(r)) return timeout_err(r, eb);
    if (dip_store_active_runs(s, &r->runs, &r->nruns))
        return dip_err_set(eb, DIP_ENOMEM, "no memory to sort the %zu active records", s->nactive);
    if (!xpath) return DIP_OK;
    struct dip_xpath_error xe = { 0 };
    int rc = dip_xpath_compile(xpath, len, q, &xe);
    if (rc) {
        if (err_column) *err_column = xe.column;
        return dip_err_set(eb, rc, "XPath error at %s", xe.message);
    }
    char *text = strndup(xpath, len);
    if (!text) return DIP_ENOMEM;
    dip_xml_init();
    r->comp = xmlXPathCompile(BAD_CAST text);
    free(text);
    if (!r->comp) return dip_err_set(eb, DIP_ESYNTAX, "XPath error: libxml2 cannot compile the expression");
    r->q = *q;
    r->shape = dip_xpath_shape(*q);
    /* Scans and exports pass through without filling the cache with trees
     * nobody asks for again; queries narrowed on the key keep theirs. */
    const struct dip_xpath_range *ranges;
    bool unconstrained = true;
    size_t nranges = dip_xpath_ranges(*q, s->man.key, (enum dip_xpath_key)s->man.key, &ranges, &unconstrained);
    r->cache = !unconstrained;
    r->narrow = !unconstrained && nranges; /* no range: nothing can match, the chunks are skipped anyway */
    if (r->narrow) {
        r->key_min = ranges[0].lo;
        r->key_max = ranges[nranges - 1].hi;
    }
    if (r->shape == DIP_XPATH_FLOWS || r->shape == DIP_XPATH_COUNT || r->shape == DIP_XPATH_SUM ||
        r->shape == DIP_XPATH_BOOLEAN) {
        static const enum dip_fastq_kind kinds[] = { DIP_FASTQ_FLOWS, DIP_FASTQ_COUNT, DIP_FASTQ_SUM, DIP_FASTQ_BOOLEAN };
        r->fq = dip_fastq_compile(xpath, len);
        if (r->fq && dip_fastq_kind(r->fq) != kinds[r->shape]) { /* the two readings disagree: trust libxml2 */
            dip_fastq_free(r->fq);
            r->fq = NULL;
        }
        size_t nfields;
        const struct dip_field *fd = dip_flow_fields(&nfields);
        for (size_t i = 0; i < nfields && r->npf < sizeof r->pf / sizeof r->pf[0]; i++) {
            if (fd[i].type == DIP_FT_ID || fd[i].opt_bit == DIP_F_NEXTHOP || fd[i].opt_bit == DIP_F_EXPORTER) continue;
            bool unc = true;
            size_t n = dip_xpath_attr_ranges(*q, fd[i].name, &ranges, &unc);
            if (unc) continue;
            if (!n) r->none = true;
            r->pf[r->npf++] = (struct prefilter){ &fd[i], ranges, n };
        }
    }
    return DIP_OK;
}

static void finish(struct query_run *r, struct dip_xpath *q)
{
    if (r->comp) xmlXPathFreeCompExpr(r->comp);
    dip_fastq_free(r->fq);
    free(r->dec);
    free(r->cand);
    free(r->spans.v);
    dip_xpath_free(q);
    dip_dynbuf_free(&r->text);
}

int dip_store_query(struct dip_store *s, const char *xpath, size_t len, struct dip_store_answer *ans,
                    size_t *err_column, struct dip_errbuf *eb)
{
    return dip_store_query_until(s, xpath, len, 0, ans, err_column, eb);
}

int dip_store_query_until(struct dip_store *s, const char *xpath, size_t len, uint64_t deadline_ms,
                          struct dip_store_answer *ans, size_t *err_column, struct dip_errbuf *eb)
{
    memset(ans, 0, sizeof *ans);
    dip_dynbuf_init(&ans->body, s->opt.max_result_bytes);
    struct query_run r;
    struct dip_xpath *q = NULL;
    int rc = prepare(&r, s, xpath, len, deadline_ms, &q, err_column, eb);
    if (rc) goto out;
    ans->shape = shape_name(r.shape);
    if (r.shape == DIP_XPATH_FLOWS) {
        struct flow_sink sink = { ans, &s->opt, eb };
        ans->kind = DIP_RESULT_NODES;
        r.want_text = true;
        rc = merge_sources(&r, sink_flow, &sink);
        if (rc == DIP_EAGAIN) { /* the analyser was too optimistic: answer exactly anyway */
            dip_dynbuf_reset(&ans->body);
            ans->count = 0;
            ans->shape = "gather";
            rc = gather(&r, ans);
        }
    } else if (r.shape == DIP_XPATH_COUNT || r.shape == DIP_XPATH_SUM || r.shape == DIP_XPATH_BOOLEAN) {
        rc = aggregate(&r, ans);
        ans->count = 1;
        if (!rc) rc = put_scalar(ans);
    } else {
        rc = gather(&r, ans);
    }
    /* an answer finished late (an evaluation libxml2 does not count, see
     * watch.c) is not given as complete */
    if (!rc && past_deadline(&r)) rc = timeout_err(&r, eb);
    ans->chunks_read = r.chunks_read;
    ans->chunks_skipped = r.chunks_skipped;
out:
    finish(&r, q);
    if (rc) dip_store_answer_free(ans);
    return rc;
}

struct scan_sink {
    dip_store_flow_fn fn;
    void *ctx;
};

static int scan_flow(void *ctx, const struct dip_flow *f, const char *text, size_t len)
{
    const struct scan_sink *k = ctx;
    return k->fn(k->ctx, f);
}

int dip_store_scan(struct dip_store *s, const char *xpath, dip_store_flow_fn fn, void *ctx, size_t *err_column,
                   struct dip_errbuf *eb)
{
    return dip_store_scan_until(s, xpath, 0, fn, ctx, err_column, eb);
}

int dip_store_scan_until(struct dip_store *s, const char *xpath, uint64_t deadline_ms, dip_store_flow_fn fn,
                         void *ctx, size_t *err_column, struct dip_errbuf *eb)
{
    struct scan_sink sink = { fn, ctx };
    struct query_run r;
    struct dip_xpath *q = NULL;
    int rc = prepare(&r, s, xpath, xpath ? strlen(xpath) : 0, deadline_ms, &q, err_column, eb);
    if (!rc && xpath && r.shape != DIP_XPATH_FLOWS)
        rc = dip_err_set(eb, DIP_EINVAL, "export needs an expression selecting flow elements (such as //flow[...]), "
                                         "not a %s expression", shape_name(r.shape));
    if (!rc) rc = merge_sources(&r, scan_flow, &sink);
    if (rc == DIP_EAGAIN) rc = dip_err_set(eb, DIP_EINVAL, "export needs an expression selecting flow elements");
    if (!rc && past_deadline(&r)) rc = timeout_err(&r, eb);
    finish(&r, q);
    return rc;
}

void dip_store_answer_free(struct dip_store_answer *a) { dip_dynbuf_free(&a->body); }
