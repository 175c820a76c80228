/* xmlsafe.c - safe libxml2 parsing with positioned error messages (see xmlsafe.h). */
#include "xmlsafe.h"
#include "dynbuf.h"

#include <errno.h>
#include <libxml/xmlerror.h>
#include <zlib.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

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
