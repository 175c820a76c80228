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

int dip_flow_read_xml_fd(int fd, const char *name, size_t batch, dip_flow_batch_fn fn, void *ctx, uint64_t *delivered,
                         struct dip_errbuf *eb)
{
    *delivered = 0;
    struct xml_input in = { .name = name, .batch = batch ? batch : 1024, .fn = fn, .ctx = ctx,
                            .delivered = delivered };
    if (!(in.buf = malloc(in.batch * sizeof *in.buf))) return DIP_ENOMEM;
    int rc = dip_xml_stream_fd(fd, name, on_element, &in, eb);
    if (!rc && in.n) {
        rc = fn(ctx, in.buf, in.n);
        if (!rc) *delivered += in.n;
    }
    free(in.buf);
    return rc;
}

/* ---- binary batches ---- */

int dip_flow_read_batches_fd(int fd, const char *name, dip_flow_batch_fn fn, void *ctx, uint64_t *delivered,
                             struct dip_errbuf *eb)
{
    *delivered = 0;
    struct dip_dynbuf in;
    dip_dynbuf_init(&in, (size_t)1 << 30);
    uint64_t offset = 0; /* of in.data[0] in the stream */
    size_t start = 0;
    bool eof = false;
    int rc = DIP_OK;
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
