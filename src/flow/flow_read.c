/* flow_read.c - streaming input of flow records from a file descriptor: XML
 * documents holding `flow` elements at any depth (<flows>, <tank>, <result>)
 * through the safe SAX stream of common/xmlsafe, or concatenated binary
 * batches. Records reach the caller in batches; a malformed record or
 * document stops the stream with its line and column, and the batch in
 * progress is not delivered. */
#include "flow.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/xmlsafe.h"

/* ---- XML ---- */

struct xml_input {
    const char *name;
    struct dip_flow *buf;
    size_t n, batch;
    dip_flow_batch_fn fn;
    void *ctx;
    uint64_t *delivered;
};

/* Each `flow` element becomes a record of the batch in progress; a full
 * batch is handed on. A record that ends before it starts is refused, not
 * repaired: `first` is part of its identity (the flow ID), so the only
 * honest repair would be a guess at `last`. */
static int on_element(void *arg, const struct dip_xml_element *e, struct dip_errbuf *eb)
{
    struct xml_input *in = arg;
    if (strcmp(e->name, "flow") != 0) return DIP_OK;
    struct dip_flow *f = &in->buf[in->n];
    struct dip_errbuf why;
    if (dip_flow_from_attrs(f, e->attr_names, e->attr_values, e->nattrs, &why) != DIP_OK)
        return dip_err_set(eb, DIP_EINVAL, "%s:%d:%d: %s", in->name, e->line, e->column, why.msg);
    if (f->last < f->first)
        return dip_err_set(eb, DIP_EINVAL, "%s:%d:%d: flow ends before it starts: last=\"%llu\" is earlier than "
                           "first=\"%llu\"", in->name, e->line, e->column, (unsigned long long)f->last,
                           (unsigned long long)f->first);
    if (++in->n < in->batch) return DIP_OK;
    int rc = in->fn(in->ctx, in->buf, in->n);
    if (rc) return rc;
    *in->delivered += in->n;
    in->n = 0;
    return DIP_OK;
}

/* Reads the document made of prefix (bytes already read from fd) and the rest of fd. */
static int read_xml(int fd, const uint8_t *prefix, size_t prefix_len, const char *name, size_t batch,
                    dip_flow_batch_fn fn, void *ctx, uint64_t *delivered, struct dip_errbuf *eb)
{
    *delivered = 0;
    struct xml_input in = { .name = name, .batch = batch ? batch : 1024, .fn = fn, .ctx = ctx,
                            .delivered = delivered };
    if (!(in.buf = malloc(in.batch * sizeof *in.buf))) return DIP_ENOMEM;
    int rc = dip_xml_stream_fd(fd, prefix, prefix_len, name, on_element, &in, eb);
    if (!rc && in.n) {
        rc = fn(ctx, in.buf, in.n);
        if (!rc) *delivered += in.n;
    }
    free(in.buf);
    return rc;
}

int dip_flow_read_xml_fd(int fd, const char *name, size_t batch, dip_flow_batch_fn fn, void *ctx, uint64_t *delivered,
                         struct dip_errbuf *eb)
{
    return read_xml(fd, NULL, 0, name, batch, fn, ctx, delivered, eb);
}

/* ---- binary batches ---- */

/* Reads the batches made of prefix (bytes already read from fd) and the rest of fd. */
static int read_batches(int fd, const uint8_t *prefix, size_t prefix_len, const char *name, dip_flow_batch_fn fn,
                        void *ctx, uint64_t *delivered, struct dip_errbuf *eb)
{
    *delivered = 0;
    struct dip_dynbuf in;
    dip_dynbuf_init(&in, (size_t)1 << 30);
    int rc = prefix_len ? dip_dynbuf_add(&in, prefix, prefix_len) : DIP_OK;
    uint64_t offset = 0; /* of in.data[0] in the stream */
    size_t start = 0;
    bool eof = false;
    while (!rc) {
        struct dip_flow *flows;
        size_t n, used;
        struct dip_errbuf why;
        int drc = in.len > start ? dip_batch_decode_prefix(in.data + start, in.len - start, 1u << 24, &flows, &n,
                                                           &used, &why)
                                 : DIP_EAGAIN;
        if (drc == DIP_OK) {
            rc = fn(ctx, flows, n);
            free(flows);
            if (!rc) *delivered += n;
            start += used;
            continue;
        }
        if (drc != DIP_EAGAIN) {
            rc = dip_err_set(eb, DIP_ECORRUPT, "%s: batch at byte %llu: %s", name,
                             (unsigned long long)(offset + start), why.msg);
            break;
        }
        if (eof) {
            if (in.len > start)
                rc = dip_err_set(eb, DIP_ECORRUPT, "%s: truncated batch at byte %llu", name,
                                 (unsigned long long)(offset + start));
            break;
        }
        /* keep the unread tail, read more (nothing to move before the first read) */
        if (start) memmove(in.data, in.data + start, in.len - start);
        in.len -= start;
        offset += start;
        start = 0;
        if ((rc = dip_dynbuf_reserve(&in, 1 << 20))) break;
        ssize_t got = read(fd, in.data + in.len, 1 << 20);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) rc = dip_err_sys(eb, errno, "read %s", name);
        else if (got == 0) eof = true;
        else in.len += (size_t)got;
    }
    dip_dynbuf_free(&in);
    return rc;
}

int dip_flow_read_batches_fd(int fd, const char *name, dip_flow_batch_fn fn, void *ctx, uint64_t *delivered,
                             struct dip_errbuf *eb)
{
    return read_batches(fd, NULL, 0, name, fn, ctx, delivered, eb);
}

/* ---- either, by the first bytes ---- */

int dip_flow_read_fd(int fd, const char *name, size_t batch, dip_flow_batch_fn fn, void *ctx,
                     uint64_t *delivered, struct dip_errbuf *eb)
{
    /* Read, not peeked: a pipe cannot give bytes back, so the readers take
     * them as a prefix. */
    uint8_t magic[4];
    size_t have = 0;
    *delivered = 0;
    while (have < sizeof magic) {
        ssize_t got = read(fd, magic + have, sizeof magic - have);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) return dip_err_sys(eb, errno, "read %s", name);
        if (got == 0) break;
        have += (size_t)got;
    }
    return have == 4 && memcmp(magic, "DIPB", 4) == 0 ? read_batches(fd, magic, have, name, fn, ctx, delivered, eb)
                   : read_xml(fd, magic, have, name, batch, fn, ctx, delivered, eb);
}
