/* reach.c - which chunks of a segment a query narrowed on the tank key can
 * reach, found by binary search instead of testing every chunk's summary.
 *
 * A point query on a 10M-record store passed over ~10,000 chunk summaries
 * (312 bytes each) to find the few holding its key: a tenth of its time.
 * Chunks follow document order, but their key ranges are not monotone in
 * the analyser's value space (IPv4 keys come first and map into the middle
 * of the IPv6 space), so each segment gets two monotone arrays, built once
 * and kept while the segment exists: the largest key in chunks 0..i and the
 * smallest key in chunks i..n-1. Chunks before the first whose running
 * largest key reaches the query's smallest, and after the last whose
 * running smallest key is within its largest, cannot hold a match. */
#include "store_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct dip_reach {
    char file[64];
    size_t n;
    struct dip_u128 *upto_max; /* upto_max[i]: the largest key of chunks 0..i */
    struct dip_u128 *from_min; /* from_min[i]: the smallest key of chunks i..n-1 */
    bool live;                 /* still in the manifest (a sweep's mark) */
};

static void reach_free(struct dip_reach *r)
{
    free(r->upto_max);
    free(r->from_min);
}

/* Drops the arrays of segments no longer in the manifest (merged away). */
static void sweep(struct dip_store *s)
{
    for (size_t i = 0; i < s->nreach; i++) s->reach[i].live = false;
    for (size_t k = 0; k < s->man.nsegs; k++)
        for (size_t i = 0; i < s->nreach; i++)
            if (strcmp(s->reach[i].file, s->man.segs[k].file) == 0) s->reach[i].live = true;
    size_t kept = 0;
    for (size_t i = 0; i < s->nreach; i++) {
        if (s->reach[i].live) s->reach[kept++] = s->reach[i];
        else reach_free(&s->reach[i]);
    }
    s->nreach = kept;
}

static struct dip_reach *reach_of(struct dip_store *s, const struct dip_segment *seg)
{
    for (size_t i = 0; i < s->nreach; i++)
        if (strcmp(s->reach[i].file, seg->file) == 0 && s->reach[i].n == seg->nchunks) return &s->reach[i];
    if (s->nreach >= s->man.nsegs) sweep(s);
    if (s->nreach == s->reach_cap) {
        size_t cap = s->reach_cap ? s->reach_cap * 2 : 8;
        struct dip_reach *p = realloc(s->reach, cap * sizeof *p);
        if (!p) return NULL;
        s->reach = p;
        s->reach_cap = cap;
    }
    struct dip_reach *r = &s->reach[s->nreach];
    memset(r, 0, sizeof *r);
    size_t n = seg->nchunks;
    r->upto_max = malloc((n ? n : 1) * sizeof *r->upto_max);
    r->from_min = malloc((n ? n : 1) * sizeof *r->from_min);
    if (!r->upto_max || !r->from_min) {
        reach_free(r);
        return NULL;
    }
    int k = (int)s->man.key; /* SUM_SRC..SUM_DPORT in tank key order */
    for (size_t i = 0; i < n; i++) {
        struct dip_u128 v = seg->chunks[i].sum.max[k];
        r->upto_max[i] = i && dip_u128_cmp(r->upto_max[i - 1], v) > 0 ? r->upto_max[i - 1] : v;
    }
    for (size_t i = n; i-- > 0;) {
        struct dip_u128 v = seg->chunks[i].sum.min[k];
        r->from_min[i] = i + 1 < n && dip_u128_cmp(r->from_min[i + 1], v) < 0 ? r->from_min[i + 1] : v;
    }
    snprintf(r->file, sizeof r->file, "%s", seg->file);
    r->n = n;
    s->nreach++;
    return r;
}

void dip_reach_window(struct dip_store *s, size_t seg, struct dip_u128 lo, struct dip_u128 hi, size_t *first,
                      size_t *end)
{
    const struct dip_segment *sg = &s->man.segs[seg];
    *first = 0;
    *end = sg->nchunks;
    const struct dip_reach *r = reach_of(s, sg);
    if (!r) return; /* no memory for the arrays: every chunk is tested, as before */
    size_t a = 0, b = r->n; /* first i with upto_max[i] >= lo */
    while (a < b) {
        size_t m = a + (b - a) / 2;
        if (dip_u128_cmp(r->upto_max[m], lo) < 0) a = m + 1;
        else b = m;
    }
    *first = a;
    a = 0, b = r->n; /* first i with from_min[i] > hi */
    while (a < b) {
        size_t m = a + (b - a) / 2;
        if (dip_u128_cmp(r->from_min[m], hi) <= 0) a = m + 1;
        else b = m;
    }
    *end = a > *first ? a : *first;
}

void dip_reach_free_all(struct dip_store *s)
{
    for (size_t i = 0; i < s->nreach; i++) reach_free(&s->reach[i]);
    free(s->reach);
    s->reach = NULL;
    s->nreach = s->reach_cap = 0;
}
