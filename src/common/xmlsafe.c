/* xmlsafe.c - safe libxml2 parsing with positioned error messages (see
 * xmlsafe.h): whole documents into trees, large ones streamed through SAX.
 * Layer: common. */
#include "xmlsafe.h"
#include "dynbuf.h"

#include <errno.h>
#include <libxml/SAX2.h>
#include <libxml/xmlerror.h>
#include <zlib.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* No document may pull in anything from outside: every external entity or
 * DTD load is refused. */
static xmlParserInputPtr no_external_loader(const char *url, const char *id, xmlParserCtxtPtr ctxt)
{
    (void)url; (void)id; (void)ctxt;
    return NULL;
}

static void silent(void *ctx, const char *msg, ...) { (void)ctx; (void)msg; }

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void init_once_fn(void)
{
    xmlInitParser();
    xmlSetExternalEntityLoader(no_external_loader);
    xmlSetGenericErrorFunc(NULL, silent);
}

void dip_xml_init(void) { pthread_once(&init_once, init_once_fn); }

static int report(xmlParserCtxtPtr ctxt, const char *name, struct dip_errbuf *eb)
{
    const xmlError *e = xmlCtxtGetLastError(ctxt);
    if (!e) return dip_err_set(eb, DIP_ESYNTAX, "%s: not a well-formed XML document", name);
    char msg[256];
    snprintf(msg, sizeof msg, "%s", e->message ? e->message : "malformed XML");
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' ')) msg[--n] = 0;
    return dip_err_set(eb, DIP_ESYNTAX, "%s:%d:%d: %s", name, e->line, e->int2, msg);
}

int dip_xml_parse_memory(const char *data, size_t len, const char *name, xmlDocPtr *doc, struct dip_errbuf *eb)
{
    dip_xml_init();
    *doc = NULL;
    if (len > (size_t)INT32_MAX) return dip_err_set(eb, DIP_ERANGE, "%s: document of %zu bytes is too large", name, len);
    xmlParserCtxtPtr ctxt = xmlNewParserCtxt();
    if (!ctxt) return DIP_ENOMEM;
    xmlSetGenericErrorFunc(NULL, silent);
    xmlDocPtr d = xmlCtxtReadMemory(ctxt, data, (int)len, name, NULL, DIP_XML_SAFE_OPTIONS | XML_PARSE_HUGE);
    int rc = DIP_OK;
    if (!d || !ctxt->wellFormed) {
        rc = report(ctxt, name, eb);
        xmlFreeDoc(d);
        d = NULL;
    }
    xmlFreeParserCtxt(ctxt);
    *doc = d;
    return rc;
}

int dip_xml_parse_file(const char *path, xmlDocPtr *doc, struct dip_errbuf *eb)
{
    /* Read the bytes ourselves (zlib reads plain and gzip files alike): the
     * external entity loader refuses every load, the document's own included. */
    *doc = NULL;
    gzFile gz = gzopen(path, "rb");
    if (!gz) return dip_err_sys(eb, errno ? errno : ENOENT, "open %s", path);
    struct dip_dynbuf buf;
    dip_dynbuf_init(&buf, (size_t)INT32_MAX);
    int rc = DIP_OK;
    for (;;) {
        if ((rc = dip_dynbuf_reserve(&buf, 1 << 16))) {
            rc = dip_err_set(eb, rc, "%s: too large to parse in memory", path);
            break;
        }
        int n = gzread(gz, buf.data + buf.len, 1 << 16);
        if (n < 0) {
            int zerr;
            rc = dip_err_set(eb, DIP_ECORRUPT, "%s: %s", path, gzerror(gz, &zerr));
            break;
        }
        if (n == 0) break;
        buf.len += (size_t)n;
    }
    gzclose(gz);
    if (!rc) rc = dip_xml_parse_memory(buf.data ? (const char *)buf.data : "", buf.len, path, doc, eb);
    dip_dynbuf_free(&buf);
    return rc;
}

/* ---- streaming (dip_xml_stream_fd) ---- */

struct stream {
    xmlParserCtxtPtr ctxt;
    const char *name;
    dip_xml_element_fn fn;
    void *arg;
    struct dip_errbuf *eb;
    int rc;                 /* the first failure: ours, fn's, or the parser's */
    struct dip_dynbuf text; /* one element's attribute names and values */
};

/* Keeps the parser's first error with its position (the line, and in int2
 * the column). Warnings are not failures. */
static void stream_error(void *arg, xmlErrorPtr e)
{
    struct stream *st = arg;
    if (st->rc || !e || e->level < XML_ERR_ERROR) return;
    char msg[256];
    snprintf(msg, sizeof msg, "%s", e->message ? e->message : "malformed XML");
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' ')) msg[--n] = 0;
    st->rc = dip_err_set(st->eb, DIP_ESYNTAX, "%s:%d:%d: %s", st->name, e->line, e->int2, msg);
}

/* Called where <!DOCTYPE ...> has been read up to its internal subset:
 * stops before any declaration in it is parsed. */
static void stream_doctype(void *arg, const xmlChar *name, const xmlChar *external_id, const xmlChar *system_id)
{
    (void)name; (void)external_id; (void)system_id;
    struct stream *st = arg;
    if (st->rc) return;
    st->rc = dip_err_set(st->eb, DIP_ESYNTAX,
                         "%s:%d:%d: document type declaration (<!DOCTYPE>) refused: a dipstorage document needs "
                         "none, and entities are never declared or expanded",
                         st->name, xmlSAX2GetLineNumber(st->ctxt), xmlSAX2GetColumnNumber(st->ctxt));
    xmlStopParser(st->ctxt);
}

/* Appends s[0..len) and a NUL to the element's text. Returns: its offset, or -1 past the cap. */
static long stream_keep(struct stream *st, const xmlChar *prefix, const xmlChar *s, size_t len)
{
    size_t at = st->text.len;
    if (prefix && (dip_dynbuf_addstr(&st->text, (const char *)prefix) || dip_dynbuf_add(&st->text, ":", 1)))
        return -1;
    if (dip_dynbuf_add(&st->text, s, len) || dip_dynbuf_add(&st->text, "", 1)) return -1;
    return (long)at;
}

/* SAX2 element start: attributes come as (localname, prefix, URI, value,
 * value end) with values not NUL-terminated; copies them for fn. */
static void stream_start(void *arg, const xmlChar *localname, const xmlChar *prefix, const xmlChar *uri,
                         int nb_namespaces, const xmlChar **namespaces, int nb_attributes, int nb_defaulted,
                         const xmlChar **attributes)
{
    (void)prefix; (void)uri; (void)nb_namespaces; (void)namespaces; (void)nb_defaulted;
    struct stream *st = arg;
    if (st->rc) return;
    int line = xmlSAX2GetLineNumber(st->ctxt), column = xmlSAX2GetColumnNumber(st->ctxt);
    if (nb_attributes > DIP_XML_STREAM_MAX_ATTRS) {
        st->rc = dip_err_set(st->eb, DIP_ERANGE, "%s:%d:%d: element %s has %d attributes, at most %d are read",
                             st->name, line, column, (const char *)localname, nb_attributes,
                             DIP_XML_STREAM_MAX_ATTRS);
        xmlStopParser(st->ctxt);
        return;
    }
    long offsets[2 * DIP_XML_STREAM_MAX_ATTRS];
    dip_dynbuf_reset(&st->text);
    for (int i = 0; i < nb_attributes; i++) {
        const xmlChar *const *a = attributes + 5 * i;
        offsets[2 * i] = stream_keep(st, a[1], a[0], strlen((const char *)a[0]));
        offsets[2 * i + 1] = stream_keep(st, NULL, a[3], (size_t)(a[4] - a[3]));
        if (offsets[2 * i] < 0 || offsets[2 * i + 1] < 0) {
            st->rc = dip_err_set(st->eb, DIP_ERANGE, "%s:%d:%d: the attributes of element %s exceed %u bytes",
                                 st->name, line, column, (const char *)localname, DIP_XML_STREAM_MAX_ATTR_BYTES);
            xmlStopParser(st->ctxt);
            return;
        }
    }
    const char *names[DIP_XML_STREAM_MAX_ATTRS], *values[DIP_XML_STREAM_MAX_ATTRS];
    for (int i = 0; i < nb_attributes; i++) { /* pointers only now: the buffer may have moved while growing */
        names[i] = (const char *)st->text.data + offsets[2 * i];
        values[i] = (const char *)st->text.data + offsets[2 * i + 1];
    }
    struct dip_xml_element e = { (const char *)localname, names, values, (size_t)nb_attributes, line, column };
    int rc = st->fn(st->arg, &e, st->eb);
    if (rc) {
        st->rc = rc;
        xmlStopParser(st->ctxt);
    }
}

/* Hands len bytes (end: the last) to the parser; a failure it did not
 * report through stream_error is recorded here rather than passed over. */
static void stream_feed(struct stream *st, const char *data, size_t len, bool end)
{
    int perr = xmlParseChunk(st->ctxt, data, (int)len, end);
    if (!st->rc && (perr || (end && !st->ctxt->wellFormed)))
        st->rc = dip_err_set(st->eb, DIP_ESYNTAX, "%s:%d: malformed XML (libxml2 error %d)", st->name,
                             xmlSAX2GetLineNumber(st->ctxt), perr);
}

int dip_xml_stream_fd(int fd, const void *prefix, size_t prefix_len, const char *name, dip_xml_element_fn fn,
                      void *arg, struct dip_errbuf *eb)
{
    dip_xml_init();
    enum { BLOCK = 1 << 16 };
    if (prefix_len > BLOCK) return dip_err_set(eb, DIP_EINVAL, "%s: a prefix of %zu bytes is too long", name, prefix_len);
    /* Only these callbacks: with no entity, subset or reference handlers the
     * parser declares and resolves no entity, and text is passed over. */
    xmlSAXHandler sax;
    memset(&sax, 0, sizeof sax);
    sax.initialized = XML_SAX2_MAGIC;
    sax.startElementNs = stream_start;
    sax.internalSubset = stream_doctype;
    sax.serror = stream_error;
    struct stream st = { .name = name, .fn = fn, .arg = arg, .eb = eb };
    dip_dynbuf_init(&st.text, DIP_XML_STREAM_MAX_ATTR_BYTES);
    st.ctxt = xmlCreatePushParserCtxt(&sax, &st, NULL, 0, name);
    if (!st.ctxt) return dip_err_set(eb, DIP_ENOMEM, "%s: cannot start the XML parser", name);
    xmlCtxtUseOptions(st.ctxt, DIP_XML_SAFE_OPTIONS);
    char *block = malloc(BLOCK);
    if (!block) st.rc = dip_err_set(eb, DIP_ENOMEM, "%s: no memory for the XML parser", name);
    if (!st.rc && prefix_len) stream_feed(&st, prefix, prefix_len, false);
    bool end = false;
    while (!st.rc && !end) {
        ssize_t got = read(fd, block, BLOCK);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            st.rc = dip_err_sys(eb, errno, "read %s", name);
            break;
        }
        end = got == 0;
        stream_feed(&st, block, (size_t)got, end);
    }
    free(block);
    xmlFreeParserCtxt(st.ctxt);
    dip_dynbuf_free(&st.text);
    return st.rc;
}
