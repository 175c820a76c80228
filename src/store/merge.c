/* merge.c - compaction: consecutive segments merged into one, streamed chunk
 * by chunk (a k-way merge in document order, dip_flow_order_cmp, so the
 * logical document is unchanged), in three steps like sealing so that a
 * leaf keeps ingesting and answering while a merge runs.
 *
 * Which segments merge (dip_store_merge_prepare):
 *   - a run of small segments (below compact_below records, left by restarts
 *     and by the end of an ingest) into one of at most seal_records;
 *   - tiered: a segment's tier is how many times compact_fanin goes into its
 *     record count over seal_records (tier 0 below seal_records x fanin);
 *     compact_fanin consecutive segments of one tier merge into one of the
 *     next tier. A point query reads one chunk of every segment, so it costs
 *     O(fanin x log_fanin(records / seal_records)) chunk reads instead of
 *     O(records / seal_records), and every record is rewritten about once per
 *     tier it climbs. */
#include "store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fast.h"

#define MERGE_MAX_INPUTS 32 /* segments one merge reads at once */

/* One input segment: its chunks read one at a time. */
struct merge_input {
    char file[64];
    uint64_t seq, count;
    int fd;                   /* a duplicate: the store may close its own meanwhile */
    struct dip_chunk *chunks; /* a copy */
    size_t nchunks, next;
    struct dip_flow *flows;   /* the current chunk's records */
    size_t n, pos, cap;
};

struct dip_store_merge_job {
    enum dip_tank_key key;
    size_t chunk_records;
    int level;
    struct merge_input in[MERGE_MAX_INPUTS];
    size_t nin;
    uint64_t records;
    char spath[PATH_MAX];
    struct dip_segment seg; /* the output */
};

/* Returns: the tier of a segment of count records. */
static unsigned tier_of(uint64_t count, uint64_t seal, uint64_t fanin)
{
    unsigned t = 0;
    uint64_t unit = seal ? seal : 1;
    while (count >= unit * fanin && unit <= UINT64_MAX / fanin / fanin) {
        unit *= fanin;
        t++;
    }
    return t;
}

/* Picks segments [*from, *to) to merge. Returns: false when none is due. */
static bool pick(const struct dip_store *s, size_t *from, size_t *to)
{
    const struct dip_segment *segs = s->man.segs;
    size_t n = s->man.nsegs;
    for (size_t i = 0; i < n; i++) { /* runs of small segments first */
        size_t j = i;
        uint64_t sum = 0;
        while (j < n && j - i < MERGE_MAX_INPUTS && segs[j].sum.count < s->opt.compact_below &&
               sum + segs[j].sum.count <= s->opt.seal_records) {
            sum += segs[j].sum.count;
            j++;
        }
        if (j - i >= 2) {
            *from = i;
            *to = j;
            return true;
        }
    }
    size_t fanin = s->opt.compact_fanin;
    if (fanin < 2 || fanin > MERGE_MAX_INPUTS) return false;
    for (size_t i = 0; i + fanin <= n; i++) {
        unsigned t = tier_of(segs[i].sum.count, s->opt.seal_records, fanin);
        size_t j = i + 1;
        while (j < i + fanin && tier_of(segs[j].sum.count, s->opt.seal_records, fanin) == t) j++;
        if (j == i + fanin) {
            *from = i;
            *to = j;
            return true;
        }
    }
    return false;
}

bool dip_store_merge_due(const struct dip_store *s)
{
    size_t from, to;
    return pick(s, &from, &to);
}

static void job_free(struct dip_store_merge_job *j)
{
    for (size_t i = 0; i < j->nin; i++) {
        if (j->in[i].fd >= 0) close(j->in[i].fd);
        free(j->in[i].chunks);
        free(j->in[i].flows);
    }
    dip_segment_free(&j->seg);
    free(j);
}

int dip_store_merge_prepare(struct dip_store *s, struct dip_store_merge_job **job, struct dip_errbuf *eb)
{
    *job = NULL;
    size_t from, to;
    if (!pick(s, &from, &to)) return DIP_OK;
    struct dip_store_merge_job *j = calloc(1, sizeof *j);
    if (!j) return dip_err_set(eb, DIP_ENOMEM, "no memory to merge segments");
    j->key = s->man.key;
    j->chunk_records = s->opt.chunk_records;
    j->level = dip_store_segment_level(&s->opt, true);
    for (size_t i = from; i < to; i++) {
        const struct dip_segment *seg = &s->man.segs[i];
        struct merge_input *in = &j->in[j->nin++];
        in->fd = -1;
        snprintf(in->file, sizeof in->file, "%s", seg->file);
        in->seq = seg->seq;
        in->count = seg->sum.count;
        j->records += seg->sum.count;
        in->nchunks = seg->nchunks;
        in->chunks = malloc((seg->nchunks ? seg->nchunks : 1) * sizeof *in->chunks);
        in->fd = dup(s->seg_fds[i]);
        if (!in->chunks || in->fd < 0) {
            int e = errno;
            job_free(j);
            return in->fd < 0 ? dip_err_sys(eb, e, "dup %s", seg->file)
                              : dip_err_set(eb, DIP_ENOMEM, "no memory to merge segments");
        }
        memcpy(in->chunks, seg->chunks, seg->nchunks * sizeof *in->chunks);
    }
    /* Named by its first segment and record count: a later merge of the same
     * first segment holds more records, so names never repeat; a file left
     * by a crash before the manifest named it is removed at the next open. */
    snprintf(j->seg.file, sizeof j->seg.file, "seg-%06llu-%llu.xml.gz", (unsigned long long)j->in[0].seq,
             (unsigned long long)j->records);
    j->seg.seq = j->in[0].seq; /* keeps its place among the other segments */
    dip_store_path(s, j->seg.file, j->spath, sizeof j->spath);
    *job = j;
    return DIP_OK;
}

/* Reads the next chunk of in that holds records. Returns DIP_OK with in->n
 * == 0 at the end of the segment. */
static int input_fill(struct merge_input *in, enum dip_tank_key key, struct dip_dynbuf *text, struct dip_errbuf *eb)
{
    in->n = in->pos = 0;
    while (!in->n && in->next < in->nchunks) {
        size_t c = in->next++;
        int rc = dip_segment_read_chunk(in->fd, in->file, &in->chunks[c], text, eb);
        if (!rc)
            rc = dip_store_chunk_flows(key, (const char *)text->data, text->len, in->file, c, &in->flows, &in->n,
                                       &in->cap, eb);
        if (rc) return rc;
    }
    return DIP_OK;
}

#define MERGE_OUT_RECORDS 4096

int dip_store_merge_write(struct dip_store_merge_job *j, struct dip_errbuf *eb)
{
    struct dip_segment_writer *w;
    int rc = dip_segment_writer_open(&w, j->spath, j->key, j->seg.seq, j->chunk_records, j->level, eb);
    if (rc) return rc;
    struct dip_dynbuf text;
    dip_dynbuf_init(&text, (size_t)1 << 30);
    struct dip_flow *out = malloc(MERGE_OUT_RECORDS * sizeof *out);
    size_t nout = 0;
    uint64_t written = 0;
    if (!out) rc = dip_err_set(eb, DIP_ENOMEM, "no memory to merge segments");
    for (size_t i = 0; !rc && i < j->nin; i++) rc = input_fill(&j->in[i], j->key, &text, eb);
    while (!rc) {
        /* the first in document order; among equal records the earliest segment */
        size_t best = SIZE_MAX;
        for (size_t i = 0; i < j->nin; i++) {
            const struct merge_input *in = &j->in[i];
            if (in->pos == in->n) continue;
            if (best == SIZE_MAX ||
                dip_flow_order_cmp(&in->flows[in->pos], &j->in[best].flows[j->in[best].pos], j->key) < 0)
                best = i;
        }
        if (best == SIZE_MAX) break;
        struct merge_input *in = &j->in[best];
        out[nout++] = in->flows[in->pos++];
        if (in->pos == in->n) rc = input_fill(in, j->key, &text, eb);
        if (!rc && nout == MERGE_OUT_RECORDS) {
            rc = dip_segment_writer_add(w, out, nout, eb);
            written += nout;
            nout = 0;
        }
    }
    written += nout;
    if (!rc && written != j->records)
        rc = dip_err_set(eb, DIP_ECORRUPT, "merging %s..%s: read %llu records where the manifest lists %llu",
                         j->in[0].file, j->in[j->nin - 1].file, (unsigned long long)written,
                         (unsigned long long)j->records);
    if (rc) dip_segment_writer_abort(w);
    else rc = dip_segment_writer_finish(w, out, nout, &j->seg, eb);
    free(out);
    dip_dynbuf_free(&text);
    for (size_t i = 0; i < j->nin; i++) { /* the decoded chunks are not needed any more */
        free(j->in[i].flows);
        j->in[i].flows = NULL;
        j->in[i].n = j->in[i].pos = j->in[i].cap = 0;
    }
    return rc;
}

int dip_store_merge_finish(struct dip_store *s, struct dip_store_merge_job *j, int write_rc, struct dip_errbuf *eb)
{
    if (!j) return write_rc;
    int rc = write_rc, fd = -1;
    struct dip_segment *nsegs = NULL;
    if (rc) goto fail;
    /* the inputs are still consecutive: only merges remove segments, and one
     * runs at a time; seals append after them */
    size_t from = 0;
    while (from < s->man.nsegs && strcmp(s->man.segs[from].file, j->in[0].file) != 0) from++;
    bool same = from + j->nin <= s->man.nsegs;
    for (size_t i = 0; same && i < j->nin; i++) same = strcmp(s->man.segs[from + i].file, j->in[i].file) == 0;
    if (!same) {
        rc = dip_err_set(eb, DIP_EINVAL, "the store's segments changed while merging");
        goto fail;
    }
    size_t to = from + j->nin;
    fd = open(j->spath, O_RDONLY | O_CLOEXEC);
    nsegs = malloc(s->man.nsegs * sizeof *nsegs);
    if (fd < 0 || !nsegs) {
        rc = fd < 0 ? dip_err_sys(eb, errno, "open %s", j->spath) : dip_err_set(eb, DIP_ENOMEM, "no memory to merge");
        goto fail;
    }
    struct dip_manifest next = s->man;
    memcpy(nsegs, s->man.segs, from * sizeof *nsegs);
    nsegs[from] = j->seg;
    memcpy(nsegs + from + 1, s->man.segs + to, (s->man.nsegs - to) * sizeof *nsegs);
    next.segs = nsegs;
    next.nsegs = s->man.nsegs - j->nin + 1;
    char mpath[PATH_MAX];
    dip_store_path(s, MANIFEST_NAME, mpath, sizeof mpath);
    if ((rc = dip_manifest_write(mpath, &next, eb))) goto fail;
    /* Committed: the inputs go. */
    for (size_t i = from; i < to; i++) {
        char old[PATH_MAX];
        dip_store_path(s, s->man.segs[i].file, old, sizeof old);
        close(s->seg_fds[i]);
        dip_segment_unlink(old);
        dip_cache_forget(&s->cache, s->man.segs[i].file);
        dip_segment_free(&s->man.segs[i]);
    }
    s->seg_fds[from] = fd;
    memmove(s->seg_fds + from + 1, s->seg_fds + to, (s->man.nsegs - to) * sizeof *s->seg_fds);
    free(s->man.segs);
    s->man = next;
    j->seg.chunks = NULL; /* the manifest's now */
    job_free(j);
    return DIP_OK;
fail:
    free(nsegs);
    if (fd >= 0) close(fd);
    dip_segment_unlink(j->spath);
    job_free(j);
    return rc;
}

int dip_store_compact(struct dip_store *s, size_t *merged, struct dip_errbuf *eb)
{
    size_t total = 0;
    for (;;) {
        struct dip_store_merge_job *j;
        int rc = dip_store_merge_prepare(s, &j, eb);
        if (rc) return rc;
        if (!j) break;
        size_t n = j->nin;
        if ((rc = dip_store_merge_finish(s, j, dip_store_merge_write(j, eb), eb))) return rc;
        total += n;
    }
    if (merged) *merged = total;
    return DIP_OK;
}
