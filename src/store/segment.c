/* segment.c - sealed segments: the records of a sealed active part, in
 * document order (dip_flow_order_cmp), as one XML document <tank key=".."
 * segment="N"> in one gzip member. Each chunk of records is deflated on its
 * own and ends at a full flush point (RFC 1951 stored empty block, no
 * history carried over), so a query inflates a chunk's bytes alone, with a
 * raw inflater, while zcat, xmllint and libxml2 still read the file as one
 * ordinary gzip stream. (A gzip member per chunk would be simpler, but
 * libxml2's gzip reader stops after the first member.) A chunk holds
 * complete subtrees from the tank element down; a subtree split between two
 * chunks appears in both, and the logical document merges them. Chunks are
 * deflated by ISA-L's igzip, at level 2 when sealed (on the insert path)
 * and level 3 when merged (in the background), or by zlib at a chosen
 * level; measured on 3M generated records in document order, igzip level 2
 * takes 0.23 us and 32.1 B a record, level 3 0.7 us and 30.7 B, zlib level
 * 4 1.5 us and 26.5 B. Either way the file is the same kind of gzip stream
 * and zlib reads it. A flow whose `id` is the SipHash of its identity
 * under the default key is written without it (implicit-id): the random IDs
 * are a third of the compressed bytes otherwise, and readers (chunkdec.c,
 * dip_tree_parse_chunk) compute them again. Chunks are written and
 * compressed on two threads: deflate is most of the cost of sealing. */
#include "store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <isa-l/crc.h>
#include <isa-l/igzip_lib.h>
#include <unistd.h>
#include <zlib.h>

#define CHUNK_TEXT_MAX (64u << 20)
#define RAW_DEFLATE (-15) /* windowBits for raw deflate/inflate, no wrapper */

static int write_full(int fd, const uint8_t *p, size_t len)
{
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return errno;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Deflates text into out with z (raw), ending with a full flush, or with
 * the final block when last. */
static int deflate_piece(z_stream *z, const uint8_t *text, size_t len, bool last, struct dip_dynbuf *out)
{
    if (deflateReset(z) != Z_OK) return DIP_EIO;
    int rc = dip_dynbuf_reserve(out, deflateBound(z, (uLong)len) + 64);
    if (rc) return rc;
    z->next_in = (Bytef *)text;
    z->avail_in = (uInt)len;
    z->next_out = out->data + out->len;
    z->avail_out = (uInt)(out->cap - out->len - 1);
    int zrc = deflate(z, last ? Z_FINISH : Z_FULL_FLUSH);
    if (last ? zrc != Z_STREAM_END : (zrc != Z_OK || z->avail_in || !z->avail_out)) return DIP_EIO;
    out->len = out->cap - 1 - z->avail_out;
    return DIP_OK;
}

/* The same with igzip at level 2 or 3: a stateless full-flush deflate,
 * byte-aligned and not final, so the next piece can follow it in the
 * stream. */
#define IGZIP_LEVEL_BUF ISAL_DEF_LVL3_DEFAULT /* enough for both levels */
static int igzip_piece(int level, uint8_t *level_buf, const uint8_t *text, size_t len, struct dip_dynbuf *out)
{
    if (len > UINT32_MAX / 2) return DIP_ERANGE;
    int rc = dip_dynbuf_reserve(out, len + len / 8 + 1024); /* room for incompressible text */
    if (rc) return rc;
    struct isal_zstream z;
    /* zeroed first: isal_deflate_stateless_init leaves fields that the
     * stateless levels read, and stack garbage there cost matches (a merged
     * segment of test_igzip_segments_read_like_zlib_ones came out 1.7-2.6x
     * larger, varying from run to run, once sealing allocated differently;
     * valgrind reported the reads) */
    memset(&z, 0, sizeof z);
    isal_deflate_stateless_init(&z);
    z.level = (uint32_t)level;
    z.level_buf = level_buf;
    z.level_buf_size = IGZIP_LEVEL_BUF;
    z.flush = FULL_FLUSH;
    z.end_of_stream = 0;
    z.next_in = (uint8_t *)text;
    z.avail_in = (uint32_t)len;
    z.next_out = out->data + out->len;
    z.avail_out = (uint32_t)(out->cap - out->len - 1 > UINT32_MAX ? UINT32_MAX : out->cap - out->len - 1);
    if (isal_deflate_stateless(&z) != COMP_OK || z.avail_in) return DIP_EIO;
    out->len += z.total_out;
    return DIP_OK;
}

static bool same_family(const struct dip_flow *a, const struct dip_flow *b, enum dip_tank_key key)
{
    if (key == DIP_KEY_SPORT || key == DIP_KEY_DPORT) return true;
    const struct dip_addr *x = key == DIP_KEY_SRC ? &a->src : &a->dst;
    const struct dip_addr *y = key == DIP_KEY_SRC ? &b->src : &b->dst;
    return dip_addr_is_v4(x) == dip_addr_is_v4(y);
}

/* One chunk to compress: its records (positions start.. in the work's
 * order) and, once done, its summary, its deflated bytes, the CRC-32 and
 * length of its text (for the gzip trailer). */
struct chunk_job {
    size_t start, n;
    struct dip_summary sum;
    struct dip_dynbuf deflated;
    uLong crc;
    size_t text_len;
    int rc;
};

struct seal_work {
    enum dip_tank_key key;
    int level; /* zlib's, or igzip's when igzip */
    bool igzip;
    const struct dip_flow *flows; /* the records: flows[order[i]], or flows[i] without order */
    const uint32_t *order;
    size_t chunk_records;
    struct chunk_job *jobs;
    size_t njobs;
    size_t next; /* next job to take, under lock */
    pthread_mutex_t lock;
};

static const struct dip_flow *work_flow(const struct seal_work *w, size_t i)
{
    return &w->flows[w->order ? w->order[i] : i];
}

/* A worker: takes chunks in turn, writes their text and deflates it. */
static void *seal_worker(void *arg)
{
    struct seal_work *w = arg;
    struct dip_dynbuf text, packed; /* a chunk's text and its deflated bytes, reused */
    dip_dynbuf_init(&text, CHUNK_TEXT_MAX);
    dip_dynbuf_init(&packed, CHUNK_TEXT_MAX);
    z_stream z;
    memset(&z, 0, sizeof z);
    uint8_t *level_buf = w->igzip ? malloc(IGZIP_LEVEL_BUF) : NULL;
    bool zok = w->igzip ? level_buf != NULL : deflateInit2(&z, w->level, Z_DEFLATED, RAW_DEFLATE, 8, Z_FILTERED) == Z_OK;
    /* records given through an order are gathered a chunk at a time */
    struct dip_flow *gathered = w->order ? malloc(w->chunk_records * sizeof *gathered) : NULL;
    if (w->order && !gathered) zok = false;
    for (;;) {
        pthread_mutex_lock(&w->lock);
        size_t i = w->next++;
        pthread_mutex_unlock(&w->lock);
        if (i >= w->njobs) break;
        struct chunk_job *j = &w->jobs[i];
        dip_dynbuf_reset(&text);
        const struct dip_flow *flows = w->flows + j->start;
        if (gathered) { /* random reads of the active part: fetch a few ahead */
            const uint32_t *ord = w->order + j->start;
            for (size_t k = 0; k < j->n; k++) {
                if (k + 8 < j->n) __builtin_prefetch(&w->flows[ord[k + 8]]);
                gathered[k] = w->flows[ord[k]];
            }
            flows = gathered;
        }
        dip_summary_init(&j->sum);
        for (size_t k = 0; k < j->n; k++) dip_summary_add(&j->sum, &flows[k]);
        j->rc = zok ? dip_tree_write_text(w->key, flows, j->n, &text) : DIP_ENOMEM;
        /* deflated into the worker's buffer (room for the worst case, ~1.1x
         * the text) and copied to one of the right size: a worst-case buffer
         * per chunk was a fresh mapping per chunk */
        dip_dynbuf_reset(&packed);
        if (!j->rc)
            j->rc = w->igzip ? igzip_piece(w->level, level_buf, text.data, text.len, &packed)
                             : deflate_piece(&z, text.data, text.len, false, &packed);
        if (!j->rc) j->rc = dip_dynbuf_add(&j->deflated, packed.data, packed.len);
        j->crc = crc32_gzip_refl(0, text.data, text.len); /* zlib's crc32, ~6x faster */
        j->text_len = text.len;
    }
    if (!w->igzip) deflateEnd(&z);
    free(level_buf);
    free(gathered);
    dip_dynbuf_free(&text);
    dip_dynbuf_free(&packed);
    return NULL;
}

#define SEAL_THREADS 2

/* Cuts the work's n sorted records into chunk jobs: at most chunk_records
 * each, never across address families. In document order all IPv4 keys come
 * before all IPv6 ones, so a chunk whose ends agree is of one family, and
 * otherwise a binary search finds where it changes (looking at every record
 * through the order cost a cache miss a record). Returns: the number of jobs. */
static size_t plan_chunks(const struct seal_work *w, size_t n, struct chunk_job *jobs, size_t cap)
{
    size_t njobs = 0;
    for (size_t start = 0; start < n && njobs < cap;) {
        size_t end = n - start > w->chunk_records ? start + w->chunk_records : n;
        const struct dip_flow *first = work_flow(w, start);
        if (!same_family(first, work_flow(w, end - 1), w->key)) {
            size_t lo = start + 1, hi = end - 1; /* the first of the other family is in (start, end - 1] */
            while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (same_family(first, work_flow(w, mid), w->key)) lo = mid + 1;
                else hi = mid;
            }
            end = lo;
        }
        jobs[njobs].start = start;
        jobs[njobs].n = end - start;
        dip_dynbuf_init(&jobs[njobs].deflated, CHUNK_TEXT_MAX);
        njobs++;
        start = end;
    }
    return njobs;
}

static void run_workers(struct seal_work *work)
{
    pthread_mutex_init(&work->lock, NULL);
    pthread_t threads[SEAL_THREADS - 1];
    int started = 0;
    for (int t = 0; t < SEAL_THREADS - 1; t++)
        if (pthread_create(&threads[t], NULL, seal_worker, work) == 0) started++;
    seal_worker(work);
    for (int t = 0; t < started; t++) pthread_join(threads[t], NULL);
    pthread_mutex_destroy(&work->lock);
}

/* A segment being written: the gzip stream so far and the chunks written. */
struct dip_segment_writer {
    enum dip_tank_key key;
    int level; /* zlib level, or DIP_SEGMENT_IGZIP or DIP_SEGMENT_FAST */
    size_t chunk_records;
    int fd;
    char path[PATH_MAX];
    z_stream z;       /* the header and trailer pieces */
    bool z_ok;
    uLong crc;        /* CRC-32 of the text so far */
    uint64_t total;   /* length of the text so far */
    uint64_t offset;  /* bytes written */
    struct dip_segment seg;
    size_t chunks_cap;
    struct dip_flow *buf; /* records added but not written yet (a partial chunk at most, between adds) */
    size_t nbuf, capbuf;
};

/* Records buffered by dip_segment_writer_add before they are compressed. */
#define WRITER_FLUSH_CHUNKS 64

static int writer_fail(struct dip_segment_writer *w, int rc, struct dip_errbuf *eb, const char *what, int e)
{
    return e ? dip_err_sys(eb, e, "%s %s", what, w->path) : dip_err_set(eb, rc, "%s %s", what, w->path);
}

int dip_segment_writer_open(struct dip_segment_writer **out, const char *path, enum dip_tank_key key, uint64_t seq,
                            size_t chunk_records, int level, struct dip_errbuf *eb)
{
    *out = NULL;
    struct dip_segment_writer *w = calloc(1, sizeof *w);
    if (!w) return dip_err_set(eb, DIP_ENOMEM, "no memory to write segment %s", path);
    w->key = key;
    w->level = level;
    w->chunk_records = chunk_records ? chunk_records : DIP_STORE_CHUNK_RECORDS;
    w->fd = -1;
    snprintf(w->path, sizeof w->path, "%s", path);
    dip_summary_init(&w->seg.sum);
    if (deflateInit2(&w->z, level > 0 ? level : 1, Z_DEFLATED, RAW_DEFLATE, 8, Z_FILTERED) != Z_OK) {
        free(w);
        return dip_err_set(eb, DIP_ENOMEM, "no memory to write segment %s", path);
    }
    w->z_ok = true;
    int rc = DIP_OK;
    w->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        rc = dip_err_sys(eb, errno, "create segment %s", path);
        dip_segment_writer_abort(w);
        return rc;
    }
    /* gzip header (RFC 1952): no name, no mtime, OS unknown */
    static const uint8_t gz_header[10] = { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255 };
    struct dip_dynbuf text, piece;
    dip_dynbuf_init(&text, 4096);
    dip_dynbuf_init(&piece, CHUNK_TEXT_MAX);
    int e = write_full(w->fd, gz_header, sizeof gz_header);
    rc = e ? writer_fail(w, 0, eb, "write", e)
           : dip_dynbuf_printf(&text, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<tank key=\"%s\" segment=\"%llu\" "
                                      "implicit-id=\"siphash-2-4-default\">\n",
                               dip_tank_key_name(key), (unsigned long long)seq);
    if (!rc) rc = deflate_piece(&w->z, text.data, text.len, false, &piece);
    if (!rc && (e = write_full(w->fd, piece.data, piece.len))) rc = writer_fail(w, 0, eb, "write", e);
    w->offset = sizeof gz_header + piece.len;
    w->crc = crc32(0, text.data, (uInt)text.len);
    w->total = text.len;
    dip_dynbuf_free(&text);
    dip_dynbuf_free(&piece);
    if (rc) {
        if (!eb->msg[0]) dip_err_set(eb, rc, "cannot start segment %s", path);
        dip_segment_writer_abort(w);
        return rc;
    }
    *out = w;
    return DIP_OK;
}

/* Compresses and writes the chunks of n records, flows[order[i]] or
 * flows[i] without order (in document order, following what was written
 * before); unless final, a last chunk that is not full stays unwritten.
 * Returns DIP_OK with *used set to the records written. */
static int write_chunks(struct dip_segment_writer *w, const struct dip_flow *flows, const uint32_t *order, size_t n,
                        bool final, size_t *used, struct dip_errbuf *eb)
{
    *used = 0;
    if (!n) return DIP_OK;
    struct seal_work work = { .key = w->key, .igzip = w->level <= 0, .flows = flows, .order = order,
                              .chunk_records = w->chunk_records };
    work.level = w->level == DIP_SEGMENT_FAST ? 2 : w->level == DIP_SEGMENT_IGZIP ? 3 : w->level;
    size_t cap = n / w->chunk_records + 3;
    work.jobs = calloc(cap, sizeof *work.jobs);
    if (!work.jobs) return dip_err_set(eb, DIP_ENOMEM, "no memory to seal %zu records", n);
    work.njobs = plan_chunks(&work, n, work.jobs, cap);
    if (!final && work.njobs) {
        struct chunk_job *last = &work.jobs[work.njobs - 1];
        if (last->start + last->n == n && last->n < w->chunk_records) { /* may grow with the next records */
            dip_dynbuf_free(&last->deflated);
            work.njobs--;
        }
    }
    if (w->seg.nchunks + work.njobs > w->chunks_cap) {
        size_t ncap = w->chunks_cap * 2 > w->seg.nchunks + work.njobs ? w->chunks_cap * 2 : w->seg.nchunks + work.njobs;
        struct dip_chunk *c = realloc(w->seg.chunks, ncap * sizeof *c);
        if (!c) {
            for (size_t i = 0; i < work.njobs; i++) dip_dynbuf_free(&work.jobs[i].deflated);
            free(work.jobs);
            return dip_err_set(eb, DIP_ENOMEM, "no memory for the chunks of %s", w->path);
        }
        w->seg.chunks = c;
        w->chunks_cap = ncap;
    }
    run_workers(&work);
    int rc = DIP_OK, e;
    for (size_t i = 0; !rc && i < work.njobs; i++) {
        struct chunk_job *j = &work.jobs[i];
        if ((rc = j->rc)) {
            rc = dip_err_set(eb, rc, "cannot compress chunk %zu of %s", w->seg.nchunks, w->path);
            break;
        }
        struct dip_chunk *c = &w->seg.chunks[w->seg.nchunks++];
        c->sum = j->sum;
        dip_summary_merge(&w->seg.sum, &c->sum);
        c->offset = w->offset;
        c->length = j->deflated.len;
        if ((e = write_full(w->fd, j->deflated.data, j->deflated.len))) rc = writer_fail(w, 0, eb, "write", e);
        w->offset += j->deflated.len;
        w->crc = crc32_combine(w->crc, j->crc, (z_off_t)j->text_len);
        w->total += j->text_len;
        *used += j->n;
    }
    for (size_t i = 0; i < work.njobs; i++) dip_dynbuf_free(&work.jobs[i].deflated);
    free(work.jobs);
    return rc;
}

int dip_segment_writer_add(struct dip_segment_writer *w, const struct dip_flow *flows, size_t n,
                           struct dip_errbuf *eb)
{
    while (n) {
        size_t flush = w->chunk_records * WRITER_FLUSH_CHUNKS;
        if (w->nbuf == w->capbuf) {
            size_t ncap = w->capbuf ? w->capbuf * 2 : flush + w->chunk_records;
            struct dip_flow *b = realloc(w->buf, ncap * sizeof *b);
            if (!b) return dip_err_set(eb, DIP_ENOMEM, "no memory to write %s", w->path);
            w->buf = b;
            w->capbuf = ncap;
        }
        size_t take = w->capbuf - w->nbuf < n ? w->capbuf - w->nbuf : n;
        memcpy(w->buf + w->nbuf, flows, take * sizeof *flows);
        w->nbuf += take;
        flows += take;
        n -= take;
        if (w->nbuf >= flush) {
            size_t used;
            int rc = write_chunks(w, w->buf, NULL, w->nbuf, false, &used, eb);
            if (rc) return rc;
            memmove(w->buf, w->buf + used, (w->nbuf - used) * sizeof *w->buf);
            w->nbuf -= used;
        }
    }
    return DIP_OK;
}

int dip_segment_writer_finish(struct dip_segment_writer *w, const struct dip_flow *flows, size_t n,
                              struct dip_segment *seg, struct dip_errbuf *eb)
{
    size_t used;
    int rc = DIP_OK, e;
    if (n && w->nbuf) rc = dip_segment_writer_add(w, flows, n, eb);
    else if (n) rc = write_chunks(w, flows, NULL, n, true, &used, eb);
    if (!rc) rc = write_chunks(w, w->buf, NULL, w->nbuf, true, &used, eb);
    if (!rc) {
        static const char end[] = "</tank>\n";
        struct dip_dynbuf piece;
        dip_dynbuf_init(&piece, CHUNK_TEXT_MAX);
        rc = deflate_piece(&w->z, (const uint8_t *)end, sizeof end - 1, true, &piece);
        w->crc = crc32_combine(w->crc, crc32(0, (const Bytef *)end, sizeof end - 1), sizeof end - 1);
        w->total += sizeof end - 1;
        uint8_t trailer[8]; /* CRC-32 and length mod 2^32, little-endian */
        for (int i = 0; i < 4; i++) {
            trailer[i] = (uint8_t)(w->crc >> (8 * i));
            trailer[4 + i] = (uint8_t)(w->total >> (8 * i));
        }
        if (rc) rc = dip_err_set(eb, rc, "cannot finish %s", w->path);
        if (!rc && (e = write_full(w->fd, piece.data, piece.len))) rc = writer_fail(w, 0, eb, "write", e);
        if (!rc && (e = write_full(w->fd, trailer, 8))) rc = writer_fail(w, 0, eb, "write", e);
        w->offset += piece.len + 8;
        dip_dynbuf_free(&piece);
    }
    if (!rc && fsync(w->fd) != 0) rc = dip_err_sys(eb, errno, "fsync segment %s", w->path);
    w->seg.bytes = w->offset;
    if (!rc) rc = dip_chunk_index_write(w->path, &w->seg, eb);
    if (rc) {
        dip_segment_writer_abort(w);
        return rc;
    }
    close(w->fd);
    seg->sum = w->seg.sum;
    seg->chunks = w->seg.chunks;
    seg->nchunks = w->seg.nchunks;
    seg->bytes = w->seg.bytes;
    deflateEnd(&w->z);
    free(w->buf);
    free(w);
    return DIP_OK;
}

void dip_segment_unlink(const char *path)
{
    unlink(path);
    char index[PATH_MAX];
    if (dip_chunk_index_path(path, index, sizeof index) == DIP_OK) unlink(index);
}

void dip_segment_writer_abort(struct dip_segment_writer *w)
{
    if (!w) return;
    if (w->fd >= 0) {
        close(w->fd);
        unlink(w->path);
    }
    if (w->z_ok) deflateEnd(&w->z);
    dip_segment_free(&w->seg);
    free(w->buf);
    free(w);
}

int dip_segment_write(const char *path, enum dip_tank_key key, uint64_t seq, const struct dip_flow *flows,
                      const uint32_t *order, size_t n, size_t chunk_records, int level, struct dip_segment *seg,
                      struct dip_errbuf *eb)
{
    struct dip_segment_writer *w;
    size_t used;
    int rc = dip_segment_writer_open(&w, path, key, seq, chunk_records, level, eb);
    if (rc) return rc;
    if (order && (rc = write_chunks(w, flows, order, n, true, &used, eb))) {
        dip_segment_writer_abort(w);
        return rc;
    }
    return dip_segment_writer_finish(w, order ? NULL : flows, order ? 0 : n, seg, eb);
}

int dip_segment_read_chunk(int fd, const char *file, const struct dip_chunk *c, struct dip_dynbuf *out,
                           struct dip_errbuf *eb)
{
    return dip_segment_read_chunk_until(fd, file, c, out, NULL, NULL, eb);
}

#define INFLATE_STEP ((size_t)32 << 10)    /* output of one step when a caller may stop early */
#define INFLATE_ROOM_MIN ((size_t)4 << 10) /* less room than this left: the buffer doubles */
#define INFLATE_GUESS_MAX ((size_t)8 << 20) /* room made up front at most */

int dip_segment_read_chunk_until(int fd, const char *file, const struct dip_chunk *c, struct dip_dynbuf *out,
                                 dip_segment_enough_fn enough, void *ctx, struct dip_errbuf *eb)
{
    if (c->length > CHUNK_TEXT_MAX)
        return dip_err_set(eb, DIP_ECORRUPT, "%s: chunk at byte %llu too long", file, (unsigned long long)c->offset);
    uint8_t *in = malloc(c->length ? c->length : 1);
    if (!in) return DIP_ENOMEM;
    size_t got = 0;
    while (got < c->length) {
        ssize_t r = pread(fd, in + got, c->length - got, (off_t)(c->offset + got));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            free(in);
            if (r == 0)
                return dip_err_set(eb, DIP_ECORRUPT, "%s: truncated at byte %llu", file,
                                   (unsigned long long)(c->offset + got));
            return dip_err_sys(eb, errno, "read %s", file);
        }
        got += (size_t)r;
    }
    /* igzip's inflater: 2.4x zlib's speed on these chunks (1.8 vs 0.8 GB/s),
     * and a point query inflates a chunk of every segment it reads */
    struct inflate_state *st = malloc(sizeof *st);
    if (!st) {
        free(in);
        return DIP_ENOMEM;
    }
    isal_inflate_init(st);
    st->crc_flag = ISAL_DEFLATE;
    st->next_in = in;
    st->avail_in = (uint32_t)c->length;
    dip_dynbuf_reset(out);
    int rc = DIP_OK;
    /* The chunk ends at a full flush point: inflate until its bytes are
     * used up. Room for all of it is made once (chunk text inflates ~5x)
     * and doubled only when it runs short: asking for the same room again
     * after every step grew the buffer through a realloc and a copy of the
     * text so far in most chunks (~6% of a leaf's CPU in point queries
     * answering 12,000-61,000 records went to those copies). */
    size_t guess = c->length * 6;
    if (guess < INFLATE_ROOM_MIN) guess = INFLATE_ROOM_MIN;
    if (guess > INFLATE_GUESS_MAX) guess = INFLATE_GUESS_MAX;
    rc = dip_dynbuf_reserve(out, guess);
    while (!rc) {
        size_t room = out->cap - out->len - 1;
        if (room < INFLATE_ROOM_MIN) {
            if ((rc = dip_dynbuf_reserve(out, out->len > guess ? out->len : guess))) break;
            room = out->cap - out->len - 1;
        }
        if (enough && room > INFLATE_STEP) room = INFLATE_STEP;
        st->next_out = out->data + out->len;
        st->avail_out = room > UINT32_MAX ? UINT32_MAX : (uint32_t)room;
        uint32_t before = st->avail_out, in_before = st->avail_in;
        int zrc = isal_inflate(st);
        out->len += before - st->avail_out;
        if (zrc != ISAL_DECOMP_OK || (st->block_state == ISAL_BLOCK_FINISH && st->avail_in)) {
            rc = dip_err_set(eb, DIP_ECORRUPT, "%s: chunk at byte %llu does not inflate (igzip error %d)", file,
                             (unsigned long long)c->offset, zrc);
            break;
        }
        if (st->block_state == ISAL_BLOCK_FINISH || (!st->avail_in && st->avail_out)) break;
        size_t cut = enough ? enough(ctx, (const char *)out->data, out->len) : 0;
        if (cut) {
            out->len = cut < out->len ? cut : out->len;
            break;
        }
        if (before == st->avail_out && in_before == st->avail_in) {
            rc = dip_err_set(eb, DIP_ECORRUPT, "%s: chunk at byte %llu does not inflate (no progress)", file,
                             (unsigned long long)c->offset);
            break;
        }
    }
    if (out->data) out->data[out->len] = 0;
    free(st);
    free(in);
    return rc;
}

void dip_segment_free(struct dip_segment *seg)
{
    free(seg->chunks);
    seg->chunks = NULL;
    seg->nchunks = 0;
}
