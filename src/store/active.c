/* active.c - the active part of a store in document order for queries: sorted
 * runs made from the records appended since the last query and merged as
 * they grow (see store_internal.h).
 *
 * Runs are merged only up to RUN_MERGE_MAX records. Merged without a limit,
 * the counter-like merging copied the whole active part now and then
 * (128k + 128k records: 37 MB of fresh memory, ~90 ms on machines where a
 * page fault costs ~10 us), inside the query that happened to come next:
 * under ingest those queries were the slowest of all. A query reads a few
 * more runs instead; each is a source of its merge like a segment. */
#include "store_internal.h"

#include <stdlib.h>
#include <string.h>

#define RUN_MERGE_MAX 32768 /* records: runs are not merged beyond this */

static void run_free(struct dip_active_run *r)
{
    free(r->flows);
    free(r->sums);
    r->flows = NULL;
    r->sums = NULL;
    r->n = 0;
}

/* Summarises each chunk_records slice of a run. Returns DIP_OK or DIP_ENOMEM. */
static int run_summarise(struct dip_active_run *r, size_t per)
{
    size_t nchunks = (r->n + per - 1) / per;
    struct dip_summary *sums = malloc((nchunks ? nchunks : 1) * sizeof *sums);
    if (!sums) return DIP_ENOMEM;
    for (size_t c = 0; c < nchunks; c++) {
        dip_summary_init(&sums[c]);
        for (size_t i = c * per; i < r->n && i < (c + 1) * per; i++) dip_summary_add(&sums[c], &r->flows[i]);
    }
    free(r->sums);
    r->sums = sums;
    return DIP_OK;
}

/* Merges run b (newer) into run a (older), stably. Returns DIP_OK or
 * DIP_ENOMEM (then both are unchanged). */
static int run_merge(struct dip_active_run *a, struct dip_active_run *b, enum dip_tank_key key, size_t per)
{
    struct dip_active_run m = { malloc((a->n + b->n) * sizeof *m.flows), a->n + b->n, NULL };
    if (!m.flows) return DIP_ENOMEM;
    size_t i = 0, j = 0, k = 0;
    while (i < a->n && j < b->n)
        m.flows[k++] = dip_flow_order_cmp(&b->flows[j], &a->flows[i], key) < 0 ? b->flows[j++] : a->flows[i++];
    memcpy(m.flows + k, a->flows + i, (a->n - i) * sizeof *m.flows);
    k += a->n - i;
    memcpy(m.flows + k, b->flows + j, (b->n - j) * sizeof *m.flows);
    if (run_summarise(&m, per)) {
        free(m.flows);
        return DIP_ENOMEM;
    }
    run_free(a);
    run_free(b);
    *a = m;
    return DIP_OK;
}

int dip_store_active_runs(struct dip_store *s, const struct dip_active_run **runs, size_t *n)
{
    size_t per = s->opt.chunk_records ? s->opt.chunk_records : DIP_STORE_CHUNK_RECORDS;
    if (s->run_covered < s->nactive) {
        if (s->nruns == s->runs_cap) {
            size_t cap = s->runs_cap ? s->runs_cap * 2 : 8;
            struct dip_active_run *p = realloc(s->runs, cap * sizeof *p);
            if (!p) return DIP_ENOMEM;
            s->runs = p;
            s->runs_cap = cap;
        }
        struct dip_active_run r = { NULL, s->nactive - s->run_covered, NULL };
        r.flows = malloc(r.n * sizeof *r.flows);
        if (!r.flows) return DIP_ENOMEM;
        memcpy(r.flows, s->active + s->run_covered, r.n * sizeof *r.flows);
        dip_store_sort(r.flows, r.n, s->man.key);
        if (run_summarise(&r, per)) {
            free(r.flows);
            return DIP_ENOMEM;
        }
        s->runs[s->nruns++] = r;
        s->run_covered = s->nactive;
        /* out of memory while merging leaves more runs, which is still right */
        while (s->nruns >= 2 && s->runs[s->nruns - 2].n <= 2 * s->runs[s->nruns - 1].n &&
               s->runs[s->nruns - 2].n + s->runs[s->nruns - 1].n <= RUN_MERGE_MAX &&
               run_merge(&s->runs[s->nruns - 2], &s->runs[s->nruns - 1], s->man.key, per) == DIP_OK)
            s->nruns--;
    }
    *runs = s->runs;
    *n = s->nruns;
    return DIP_OK;
}

void dip_store_active_reset(struct dip_store *s)
{
    for (size_t i = 0; i < s->nruns; i++) run_free(&s->runs[i]);
    s->nruns = 0;
    s->run_covered = 0;
}

int dip_store_index_active(struct dip_store *s, struct dip_errbuf *eb)
{
    const struct dip_active_run *runs;
    size_t n;
    if (dip_store_active_runs(s, &runs, &n))
        return dip_err_set(eb, DIP_ENOMEM, "no memory to sort the %zu active records", s->nactive - s->run_covered);
    return DIP_OK;
}

size_t dip_store_active_unindexed(const struct dip_store *s) { return s->nactive - s->run_covered; }
