/* flow_read.c - streaming input of flow records from a file descriptor: XML
 * documents holding `flow` elements at any depth (<flows>, <tank>, <result>)
 * through libxml2's reader, or concatenated binary batches. Records reach the
 * caller in batches; a malformed record or document stops the stream with
 * its line and column, and the batch in progress is not delivered. */
#include "flow.h"

#include <errno.h>
#include <libxml/xmlreader.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct reader_error {
    char msg[400];
    int line, column;
};

/* Keeps the first error with its position (libxml2 reports the line and,
 * in int2, the column). */
static void on_reader_error(void *arg, xmlErrorPtr e)
{
    struct reader_error *re = arg;
    if (re->msg[0] || !e || e->level < XML_ERR_ERROR) return;
    snprintf(re->msg, sizeof re->msg, "%s", e->message ? e->message : "malformed XML");
    size_t n = strlen(re->msg);
    while (n && (re->msg[n - 1] == '\n' || re->msg[n - 1] == ' ')) re->msg[--n] = 0;
    re->line = e->line;
    re->column = e->int2;
}

static int read_flow_element(xmlTextReaderPtr r, struct dip_flow *f, struct dip_errbuf *eb)
{
    const char *names[32], *values[32];
    size_t n = 0;
    int more = xmlTextReaderMoveToFirstAttribute(r);
    while (more == 1) {
        if (n == 32) return dip_err_set(eb, DIP_EINVAL, "flow element has too many attributes");
        names[n] = (const char *)xmlTextReaderConstName(r);
        values[n] = (const char *)xmlTextReaderConstValue(r);
        n++;
        more = xmlTextReaderMoveToNextAttribute(r);
    }
    xmlTextReaderMoveToElement(r);
    return dip_flow_from_attrs(f, names, values, n, eb);
}

int dip_flow_read_xml_fd(int fd, const char *name, size_t batch, dip_flow_batch_fn fn, void *ctx, uint64_t *delivered,
                         struct dip_errbuf *eb)
{
    *delivered = 0;
    if (!batch) batch = 1024;
    struct dip_flow *buf = malloc(batch * sizeof *buf);
    if (!buf) return DIP_ENOMEM;
    xmlTextReaderPtr r = xmlReaderForFd(fd, name, NULL, XML_PARSE_NONET | XML_PARSE_COMPACT | XML_PARSE_HUGE);
    if (!r) {
        free(buf);
        return dip_err_set(eb, DIP_ENOMEM, "%s: cannot start the XML reader", name);
    }
    struct reader_error re = { { 0 }, 0, 0 };
    xmlTextReaderSetStructuredErrorHandler(r, on_reader_error, &re);
    size_t n = 0;
    int rc = DIP_OK, ret;
    while ((ret = xmlTextReaderRead(r)) == 1) {
        if (xmlTextReaderNodeType(r) != XML_READER_TYPE_ELEMENT) continue;
        if (strcmp((const char *)xmlTextReaderConstLocalName(r), "flow") != 0) continue;
        struct dip_errbuf why;
        if (read_flow_element(r, &buf[n], &why) != DIP_OK) {
            rc = dip_err_set(eb, DIP_EINVAL, "%s:%d:%d: %s", name, xmlTextReaderGetParserLineNumber(r),
                             xmlTextReaderGetParserColumnNumber(r), why.msg);
            break;
        }
        if (++n == batch) {
            if ((rc = fn(ctx, buf, n))) break;
            *delivered += n;
            n = 0;
        }
    }
    if (!rc && ret != 0) {
        int line = re.line ? re.line : xmlTextReaderGetParserLineNumber(r);
        int col = re.line ? re.column : xmlTextReaderGetParserColumnNumber(r);
        rc = dip_err_set(eb, DIP_ESYNTAX, "%s:%d:%d: %s", name, line, col, re.msg[0] ? re.msg : "malformed XML");
    }
    if (!rc && n) {
        rc = fn(ctx, buf, n);
        if (!rc) *delivered += n;
    }
    xmlFreeTextReader(r);
    free(buf);
    return rc;
}

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
