/* seal.c - turning records into sealed segments: sealing the active part
 * (segment written and fsync'd, then a fresh WAL, then the manifest replaced
 * atomically, then the old WAL removed: a crash at any point leaves either
 * the old state or the new one) and statistics. Compaction is merge.c. */
#include "store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/paths.h"
#include "fast.h"

/* Replaces the manifest by m and, on success, makes it the store's. */
static int commit_manifest(struct dip_store *s, struct dip_manifest *m, struct dip_errbuf *eb)
{
    char mpath[PATH_MAX];
    dip_store_path(s, "MANIFEST.xml", mpath, sizeof mpath);
    return dip_manifest_write(mpath, m, eb);
}

struct dip_store_seal_job {
    const struct dip_flow *active; /* the store's active records (read only while the job runs) */
    size_t n, chunk_records;
    enum dip_tank_key key;
    int level;
    uint64_t seq;
    char spath[PATH_MAX];
    struct dip_segment seg;
};

int dip_store_seal_prepare(struct dip_store *s, struct dip_store_seal_job **job, struct dip_errbuf *eb)
{
    *job = NULL;
    if (!s->nactive) return DIP_OK;
    struct dip_store_seal_job *j = calloc(1, sizeof *j);
    if (!j) return dip_err_set(eb, DIP_ENOMEM, "no memory to seal %zu records", s->nactive);
    j->active = s->active;
    j->n = s->nactive;
    j->chunk_records = s->opt.chunk_records;
    j->key = s->man.key;
    j->level = dip_store_segment_level(&s->opt, false);
    j->seq = s->man.next_seq;
    snprintf(j->seg.file, sizeof j->seg.file, "seg-%06llu.xml.gz", (unsigned long long)j->seq);
    j->seg.seq = j->seq;
    dip_store_path(s, j->seg.file, j->spath, sizeof j->spath);
    *job = j;
    return DIP_OK;
}

int dip_store_seal_write(struct dip_store_seal_job *j, struct dip_errbuf *eb)
{
    /* the active records stay where they are (queries may read them
     * meanwhile): the segment is written through their document order */
    uint32_t *order;
    int rc = dip_store_order(j->active, j->n, j->key, &order);
    if (rc) return dip_err_set(eb, rc, "no memory to sort %zu records for sealing", j->n);
    rc = dip_segment_write(j->spath, j->key, j->seq, j->active, order, j->n, j->chunk_records, j->level, &j->seg, eb);
    free(order);
    return rc;
}

int dip_store_seal_finish(struct dip_store *s, struct dip_store_seal_job *j, int write_rc, struct dip_errbuf *eb)
{
    if (!j) return write_rc;
    int rc = write_rc;
    char wpath[PATH_MAX], newwal[64];
    int wfd = -1, segfd = -1;
    wpath[0] = 0;
    if (rc) goto fail;
    if (j->n != s->nactive || j->seq != s->man.next_seq) {
        rc = dip_err_set(eb, DIP_EINVAL, "the store changed while sealing");
        goto fail;
    }
    uint64_t seq = j->seq;
    snprintf(newwal, sizeof newwal, "wal-%06llu.log", (unsigned long long)(seq + 1));
    dip_store_path(s, newwal, wpath, sizeof wpath);
    wfd = open(wpath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    segfd = open(j->spath, O_RDONLY | O_CLOEXEC);
    int *fds = realloc(s->seg_fds, (s->man.nsegs + 2) * sizeof *fds);
    struct dip_segment *segs = realloc(s->man.segs, (s->man.nsegs + 1) * sizeof *segs);
    if (fds) s->seg_fds = fds;
    if (segs) s->man.segs = segs;
    if (wfd < 0 || segfd < 0 || !fds || !segs) {
        rc = wfd < 0 || segfd < 0 ? dip_err_sys(eb, errno, "open %s", wfd < 0 ? wpath : j->spath)
                                  : dip_err_set(eb, DIP_ENOMEM, "no memory to add a segment");
        goto fail;
    }
    struct dip_manifest next = s->man;
    next.segs[next.nsegs++] = j->seg;
    next.next_seq = seq + 1;
    snprintf(next.wal, sizeof next.wal, "%s", newwal);
    if ((rc = commit_manifest(s, &next, eb))) goto fail;
    /* Committed: switch to the new WAL and forget the sealed records. */
    char oldwal[PATH_MAX];
    dip_store_path(s, s->man.wal, oldwal, sizeof oldwal);
    dip_wal_close(&s->wal);
    unlink(oldwal);
    s->wal.fd = wfd;
    s->wal.size = 0;
    snprintf(s->wal.path, sizeof s->wal.path, "%s", wpath);
    s->man = next;
    s->seg_fds[s->man.nsegs - 1] = segfd;
    s->nactive = 0;
    dip_store_active_reset(s);
    free(j);
    return DIP_OK;
fail:
    if (wfd >= 0) close(wfd);
    if (segfd >= 0) close(segfd);
    if (wpath[0]) unlink(wpath);
    unlink(j->spath);
    dip_segment_free(&j->seg);
    free(j);
    return rc;
}

int dip_store_seal(struct dip_store *s, struct dip_errbuf *eb)
{
    struct dip_store_seal_job *j;
    int rc = dip_store_seal_prepare(s, &j, eb);
    if (rc || !j) return rc;
    return dip_store_seal_finish(s, j, dip_store_seal_write(j, eb), eb);
}

int dip_store_chunk_flows(enum dip_tank_key key, const char *text, size_t len, const char *file, size_t c,
                          struct dip_flow **flows, size_t *n, size_t *cap, struct dip_errbuf *eb)
{
    int rc = dip_chunk_decode(key, text, len, NULL, flows, n, cap);
    if (rc == DIP_ENOMEM) return dip_err_set(eb, rc, "no memory to decode %s chunk %zu", file, c);
    if (rc != DIP_EAGAIN) return rc;
    xmlDocPtr doc; /* not canonical: libxml2 reads it */
    char where[128];
    snprintf(where, sizeof where, "%s chunk %zu", file, c);
    if ((rc = dip_tree_parse_chunk(key, text, len, where, &doc, eb))) return rc;
    rc = dip_tree_collect(doc, flows, n, cap, eb);
    xmlFreeDoc(doc);
    return rc;
}

int dip_store_read_segment(struct dip_store *s, size_t i, struct dip_flow **flows, size_t *n, size_t *cap,
                              struct dip_errbuf *eb)
{
    const struct dip_segment *seg = &s->man.segs[i];
    struct dip_dynbuf text;
    dip_dynbuf_init(&text, (size_t)1 << 30);
    int rc = DIP_OK;
    for (size_t c = 0; !rc && c < seg->nchunks; c++) {
        rc = dip_segment_read_chunk(s->seg_fds[i], seg->file, &seg->chunks[c], &text, eb);
        if (!rc)
            rc = dip_store_chunk_flows(s->man.key, (const char *)text.data, text.len, seg->file, c, flows, n, cap, eb);
    }
    dip_dynbuf_free(&text);
    return rc;
}

void dip_store_stats(const struct dip_store *s, struct dip_store_stats *st)
{
    memset(st, 0, sizeof *st);
    st->key = s->man.key;
    struct dip_summary all;
    dip_summary_init(&all);
    for (size_t i = 0; i < s->man.nsegs; i++) {
        dip_summary_merge(&all, &s->man.segs[i].sum);
        st->chunks += s->man.segs[i].nchunks;
        st->segment_bytes += s->man.segs[i].bytes;
    }
    st->records = all.count + s->nactive;
    st->active_records = s->nactive;
    st->segments = s->man.nsegs;
    st->wal_bytes = s->wal.size;
    st->cache_bytes = s->cache.bytes;
    if (all.count) {
        st->first_min = all.min[SUM_FIRST].lo;
        st->last_max = all.max[SUM_LAST].lo;
    }
    if (s->nactive) { /* the active part's span is kept up to date by every insert */
        if (!all.count || s->active_first_min < st->first_min) st->first_min = s->active_first_min;
        if (!all.count || s->active_last_max > st->last_max) st->last_max = s->active_last_max;
    }
}
