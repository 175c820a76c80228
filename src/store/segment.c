/* segment.c - sealed segments: the records of a sealed active part, sorted by
 * the tank key, as one XML document <tank key=".." segment="N"> in gzip.
 * Each chunk of records is its own gzip member (a file of concatenated
 * members is still one gzip stream to zcat, xmllint and libxml2), so a query
 * inflates only the chunks whose summaries can match. A chunk holds complete
 * subtrees from the tank element down; a subtree split between two chunks
 * appears in both, and the logical document merges them. Chunks are written
 * and compressed on two threads (deflate is most of the cost of sealing). */
#include "store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define CHUNK_TEXT_MAX (64u << 20)

struct gz_writer {
    int fd;
    uint64_t offset;
    z_stream z;
    uint8_t out[1 << 16];
    const char *path;
};

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

/* Compresses text as one complete gzip member appended to the file. */
static int gz_member(struct gz_writer *w, const uint8_t *text, size_t len, struct dip_errbuf *eb)
{
    if (deflateReset(&w->z) != Z_OK) return dip_err_set(eb, DIP_EIO, "deflateReset failed");
    w->z.next_in = (Bytef *)text;
    w->z.avail_in = (uInt)len;
    int zrc;
    do {
        w->z.next_out = w->out;
        w->z.avail_out = sizeof w->out;
        zrc = deflate(&w->z, Z_FINISH);
        if (zrc == Z_STREAM_ERROR) return dip_err_set(eb, DIP_EIO, "deflate failed for %s", w->path);
        size_t have = sizeof w->out - w->z.avail_out;
        int e = write_full(w->fd, w->out, have);
        if (e) return dip_err_sys(eb, e, "write %s", w->path);
        w->offset += have;
    } while (zrc != Z_STREAM_END);
    return DIP_OK;
}

static bool same_family(const struct dip_flow *a, const struct dip_flow *b, enum dip_tank_key key)
{
    if (key == DIP_KEY_SPORT || key == DIP_KEY_DPORT) return true;
    const struct dip_addr *x = key == DIP_KEY_SRC ? &a->src : &a->dst;
    const struct dip_addr *y = key == DIP_KEY_SRC ? &b->src : &b->dst;
    return dip_addr_is_v4(x) == dip_addr_is_v4(y);
}

/* One chunk to compress: its records and, once done, its gzip member. */
struct chunk_job {
    const struct dip_flow *flows;
    size_t n;
    struct dip_dynbuf member;
    int rc;
};

struct seal_work {
    enum dip_tank_key key;
    int level;
    struct chunk_job *jobs;
    size_t njobs;
    size_t next; /* next job to take, under lock */
    pthread_mutex_t lock;
};

/* Compresses text as one complete gzip member into out. */
static int deflate_member(z_stream *z, const uint8_t *text, size_t len, struct dip_dynbuf *out)
{
    if (deflateReset(z) != Z_OK) return DIP_EIO;
    int rc = dip_dynbuf_reserve(out, deflateBound(z, (uLong)len) + 32);
    if (rc) return rc;
    z->next_in = (Bytef *)text;
    z->avail_in = (uInt)len;
    z->next_out = out->data + out->len;
    z->avail_out = (uInt)(out->cap - out->len - 1);
    if (deflate(z, Z_FINISH) != Z_STREAM_END) return DIP_EIO;
    out->len = out->cap - 1 - z->avail_out;
    return DIP_OK;
}

/* A worker: takes chunks in turn, writes their text and compresses it. */
static void *seal_worker(void *arg)
{
    struct seal_work *w = arg;
    struct dip_dynbuf text;
    dip_dynbuf_init(&text, CHUNK_TEXT_MAX);
    z_stream z;
    memset(&z, 0, sizeof z);
    bool zok = deflateInit2(&z, w->level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK;
    for (;;) {
        pthread_mutex_lock(&w->lock);
        size_t i = w->next++;
        pthread_mutex_unlock(&w->lock);
        if (i >= w->njobs) break;
        struct chunk_job *j = &w->jobs[i];
        dip_dynbuf_reset(&text);
        j->rc = zok ? dip_tree_write_text(w->key, j->flows, j->n, &text) : DIP_ENOMEM;
        if (!j->rc) j->rc = deflate_member(&z, text.data, text.len, &j->member);
    }
    if (zok) deflateEnd(&z);
    dip_dynbuf_free(&text);
    return NULL;
}

#define SEAL_THREADS 2

int dip_segment_write(const char *path, enum dip_tank_key key, uint64_t seq, const struct dip_flow *flows, size_t n,
                      size_t chunk_records, int level, struct dip_segment *seg, struct dip_errbuf *eb)
{
    struct gz_writer w = { .path = path, .fd = -1 };
    struct seal_work work = { .key = key, .level = level };
    struct dip_dynbuf text;
    int rc = DIP_OK;
    if (!chunk_records) chunk_records = 1024;
    dip_summary_init(&seg->sum);
    seg->nchunks = 0;
    /* cut into chunks: at most chunk_records, never across address families */
    size_t cap = n / chunk_records + 3;
    seg->chunks = calloc(cap, sizeof *seg->chunks);
    work.jobs = calloc(cap, sizeof *work.jobs);
    dip_dynbuf_init(&text, CHUNK_TEXT_MAX);
    memset(&w.z, 0, sizeof w.z);
    if (!seg->chunks || !work.jobs || deflateInit2(&w.z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        free(work.jobs);
        dip_segment_free(seg);
        return dip_err_set(eb, DIP_ENOMEM, "no memory to seal %zu records", n);
    }
    for (size_t start = 0; start < n && work.njobs < cap;) {
        size_t end = start + 1;
        while (end < n && end - start < chunk_records && same_family(&flows[start], &flows[end], key)) end++;
        struct chunk_job *j = &work.jobs[work.njobs++];
        j->flows = flows + start;
        j->n = end - start;
        dip_dynbuf_init(&j->member, CHUNK_TEXT_MAX);
        start = end;
    }
    /* compress the chunks on SEAL_THREADS threads, then write them in order */
    pthread_mutex_init(&work.lock, NULL);
    pthread_t threads[SEAL_THREADS - 1];
    int started = 0;
    for (int t = 0; t < SEAL_THREADS - 1; t++)
        if (pthread_create(&threads[t], NULL, seal_worker, &work) == 0) started++;
    seal_worker(&work);
    for (int t = 0; t < started; t++) pthread_join(threads[t], NULL);
    pthread_mutex_destroy(&work.lock);

    w.fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w.fd < 0) {
        rc = dip_err_sys(eb, errno, "create segment %s", path);
        goto out;
    }
    rc = dip_dynbuf_printf(&text, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<tank key=\"%s\" segment=\"%llu\">\n",
                           dip_tank_key_name(key), (unsigned long long)seq);
    if (!rc) rc = gz_member(&w, text.data, text.len, eb);
    for (size_t i = 0; !rc && i < work.njobs; i++) {
        struct chunk_job *j = &work.jobs[i];
        if ((rc = j->rc)) {
            rc = dip_err_set(eb, rc, "cannot compress chunk %zu of %s", i, path);
            break;
        }
        struct dip_chunk *c = &seg->chunks[seg->nchunks++];
        dip_summary_init(&c->sum);
        for (size_t k = 0; k < j->n; k++) dip_summary_add(&c->sum, &j->flows[k]);
        dip_summary_merge(&seg->sum, &c->sum);
        c->offset = w.offset;
        c->length = j->member.len;
        int e = write_full(w.fd, j->member.data, j->member.len);
        if (e) rc = dip_err_sys(eb, e, "write %s", path);
        w.offset += j->member.len;
    }
    if (!rc) rc = gz_member(&w, (const uint8_t *)"</tank>\n", 8, eb);
    if (!rc && fsync(w.fd) != 0) rc = dip_err_sys(eb, errno, "fsync segment %s", path);
    seg->bytes = w.offset;
out:
    if (w.fd >= 0) close(w.fd);
    deflateEnd(&w.z);
    dip_dynbuf_free(&text);
    for (size_t i = 0; i < work.njobs; i++) dip_dynbuf_free(&work.jobs[i].member);
    free(work.jobs);
    if (rc) {
        unlink(path);
        dip_segment_free(seg);
    }
    return rc;
}

int dip_segment_read_chunk(int fd, const char *file, const struct dip_chunk *c, struct dip_dynbuf *out,
                           struct dip_errbuf *eb)
{
    if (c->length > CHUNK_TEXT_MAX) return dip_err_set(eb, DIP_ECORRUPT, "%s: chunk at byte %llu too long", file,
                                                       (unsigned long long)c->offset);
    uint8_t *in = malloc(c->length ? c->length : 1);
    if (!in) return DIP_ENOMEM;
    size_t got = 0;
    while (got < c->length) {
        ssize_t r = pread(fd, in + got, c->length - got, (off_t)(c->offset + got));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            free(in);
            if (r == 0) return dip_err_set(eb, DIP_ECORRUPT, "%s: truncated at byte %llu", file,
                                           (unsigned long long)(c->offset + got));
            return dip_err_sys(eb, errno, "read %s", file);
        }
        got += (size_t)r;
    }
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 15 + 16) != Z_OK) {
        free(in);
        return DIP_ENOMEM;
    }
    z.next_in = in;
    z.avail_in = (uInt)c->length;
    dip_dynbuf_reset(out);
    int zrc = Z_OK, rc = DIP_OK;
    while (zrc != Z_STREAM_END) {
        if ((rc = dip_dynbuf_reserve(out, 1 << 16))) break;
        z.next_out = out->data + out->len;
        z.avail_out = (uInt)(out->cap - out->len - 1);
        size_t before = z.avail_out;
        zrc = inflate(&z, Z_NO_FLUSH);
        out->len += before - z.avail_out;
        if (zrc == Z_STREAM_END) break;
        if (zrc != Z_OK || (z.avail_in == 0 && before == z.avail_out)) {
            rc = dip_err_set(eb, DIP_ECORRUPT, "%s: chunk at byte %llu does not inflate (%s)", file,
                             (unsigned long long)c->offset, z.msg ? z.msg : "truncated");
            break;
        }
    }
    if (out->data) out->data[out->len] = 0;
    inflateEnd(&z);
    free(in);
    return rc;
}

void dip_segment_free(struct dip_segment *seg)
{
    free(seg->chunks);
    seg->chunks = NULL;
    seg->nchunks = 0;
}
