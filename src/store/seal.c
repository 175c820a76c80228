/* seal.c - turning records into sealed segments: sealing the active part
 * (segment written and fsync'd, then a fresh WAL, then the manifest replaced
 * atomically, then the old WAL removed: a crash at any point leaves either
 * the old state or the new one; all of it in the write step, beside queries,
 * so the finish only switches the store over in memory) and statistics.
 * Compaction is merge.c. */
#include "store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/paths.h"
#include "fast.h"

struct dip_store_seal_job {
    const struct dip_flow *active; /* the store's active records (read only while the job runs) */
    size_t n, chunk_records;
    enum dip_tank_key key;
    int level;
    uint64_t seq;
    char spath[PATH_MAX];
    struct dip_segment seg;
    /* made by the write step once the segment is on disk */
    bool committed;                /* the manifest naming the segment and the new WAL is on disk */
    int wfd, segfd;                /* the new WAL, the segment (read side) */
    char wal[64], wpath[PATH_MAX]; /* the new WAL's name and path */
    struct dip_segment *segs;      /* the store's segment list with the new one: a new array */
    int *fds;                      /* the same for the segments' descriptors */
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
    j->wfd = j->segfd = -1;
    *job = j;
    return DIP_OK;
}

/* The manifest that follows the seal: the store's, plus the segment, naming
 * the new WAL. Fills j's new arrays and opens the files the finish switches
 * to; nothing of the store is changed. */
static int seal_commit(const struct dip_store *s, struct dip_store_seal_job *j, struct dip_errbuf *eb)
{
    snprintf(j->wal, sizeof j->wal, "wal-%06llu.log", (unsigned long long)(j->seq + 1));
    dip_store_path(s, j->wal, j->wpath, sizeof j->wpath);
    j->wfd = open(j->wpath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (j->wfd < 0) return dip_err_sys(eb, errno, "open %s", j->wpath);
    j->segfd = open(j->spath, O_RDONLY | O_CLOEXEC);
    if (j->segfd < 0) return dip_err_sys(eb, errno, "open %s", j->spath);
    /* new arrays, not realloc'd ones: queries read the old ones meanwhile */
    size_t nsegs = s->man.nsegs;
    j->segs = malloc((nsegs + 1) * sizeof *j->segs);
    j->fds = malloc((nsegs + 2) * sizeof *j->fds);
    if (!j->segs || !j->fds) return dip_err_set(eb, DIP_ENOMEM, "no memory to add a segment");
    if (nsegs) {
        memcpy(j->segs, s->man.segs, nsegs * sizeof *j->segs);
        memcpy(j->fds, s->seg_fds, nsegs * sizeof *j->fds);
    }
    j->segs[nsegs] = j->seg;
    j->fds[nsegs] = j->segfd;
    struct dip_manifest next = s->man;
    next.segs = j->segs;
    next.nsegs = nsegs + 1;
    next.next_seq = j->seq + 1;
    snprintf(next.wal, sizeof next.wal, "%s", j->wal);
    char mpath[PATH_MAX];
    dip_store_path(s, MANIFEST_NAME, mpath, sizeof mpath);
    int rc = dip_manifest_write(mpath, &next, eb);
    if (rc) return rc;
    j->committed = true;
    /* the old WAL's records are in the segment now */
    char oldwal[PATH_MAX];
    dip_store_path(s, s->man.wal, oldwal, sizeof oldwal);
    unlink(oldwal);
    return DIP_OK;
}

int dip_store_seal_write(const struct dip_store *s, struct dip_store_seal_job *j, struct dip_errbuf *eb)
{
    if (j->n != s->nactive || j->seq != s->man.next_seq)
        return dip_err_set(eb, DIP_EINVAL, "the store changed while sealing");
    /* the active records stay where they are (queries may read them
     * meanwhile): the segment is written through their document order */
    uint32_t *order;
    int rc = dip_store_order(j->active, j->n, j->key, &order);
    if (rc) return dip_err_set(eb, rc, "no memory to sort %zu records for sealing", j->n);
    rc = dip_segment_write(j->spath, j->key, j->seq, j->active, order, j->n, j->chunk_records, j->level, &j->seg, eb);
    free(order);
    return rc ? rc : seal_commit(s, j, eb);
}

int dip_store_seal_finish(struct dip_store *s, struct dip_store_seal_job *j, int write_rc, struct dip_errbuf *eb)
{
    (void)eb;
    if (!j) return write_rc;
    if (!j->committed) { /* the old state stands: drop what the write step made */
        if (j->wfd >= 0) close(j->wfd);
        if (j->segfd >= 0) close(j->segfd);
        if (j->wpath[0]) unlink(j->wpath);
        dip_segment_unlink(j->spath);
        dip_segment_free(&j->seg);
        free(j->segs);
        free(j->fds);
        free(j);
        return write_rc ? write_rc : DIP_EIO;
    }
    /* Committed on disk (whatever write_rc says): switch to the new WAL and
     * segment list and forget the sealed records. */
    dip_wal_close(&s->wal);
    s->wal.fd = j->wfd;
    s->wal.size = 0;
    snprintf(s->wal.path, sizeof s->wal.path, "%s", j->wpath);
    free(s->man.segs);
    free(s->seg_fds);
    s->man.segs = j->segs;
    s->seg_fds = j->fds;
    s->man.nsegs++;
    s->man.next_seq = j->seq + 1;
    snprintf(s->man.wal, sizeof s->man.wal, "%s", j->wal);
    s->nactive = 0;
    dip_store_active_reset(s);
    free(j);
    return DIP_OK;
}

int dip_store_seal(struct dip_store *s, struct dip_errbuf *eb)
{
    struct dip_store_seal_job *j;
    int rc = dip_store_seal_prepare(s, &j, eb);
    if (rc || !j) return rc;
    return dip_store_seal_finish(s, j, dip_store_seal_write(s, j, eb), eb);
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

int dip_store_read_segment(struct dip_store *s, size_t i, uint64_t deadline_ms, struct dip_flow **flows, size_t *n,
                           size_t *cap, struct dip_errbuf *eb)
{
    const struct dip_segment *seg = &s->man.segs[i];
    struct dip_dynbuf text;
    dip_dynbuf_init(&text, (size_t)1 << 30);
    int rc = DIP_OK;
    for (size_t c = 0; !rc && c < seg->nchunks; c++) {
        if (deadline_ms && dip_store_clock_ms() >= deadline_ms) {
            rc = dip_err_set(eb, DIP_ETIMEOUT, "deadline passed while reading %s", seg->file);
            break;
        }
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
