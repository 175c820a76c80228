/* schema.c - XML Schema validation of dipstorage documents (see schema.h):
 * loading dipstorage.xsd with its included parts, and validating files (as a
 * stream, plain or gzip), memory and parsed documents with positioned
 * messages. Layer: common; used by the validate command, tests and stores. */
#include "schema.h"

#include <errno.h>
#include <fcntl.h>
#include <libxml/parserInternals.h>
#include <libxml/xmlschemas.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "paths.h"
#include "xmlsafe.h"

struct dip_schema {
    xmlSchemaPtr xsd;
};

/* ---- document kinds ---- */

static const char *const kind_names[] = {
    [DIP_DOC_UNKNOWN] = "unknown", [DIP_DOC_FLOW] = "flow",     [DIP_DOC_FLOWS] = "flows",
    [DIP_DOC_TANK] = "tank",       [DIP_DOC_MANIFEST] = "manifest", [DIP_DOC_RESULT] = "result",
    [DIP_DOC_ERROR] = "error",     [DIP_DOC_CLUSTER] = "cluster",   [DIP_DOC_CHUNKS] = "chunks",
};
#define KIND_COUNT (sizeof kind_names / sizeof kind_names[0])

enum dip_doc_kind dip_doc_kind_of(const char *root_name)
{
    for (size_t k = 1; root_name && k < KIND_COUNT; k++)
        if (strcmp(root_name, kind_names[k]) == 0) return (enum dip_doc_kind)k;
    return DIP_DOC_UNKNOWN;
}

const char *dip_doc_kind_name(enum dip_doc_kind kind)
{
    return (size_t)kind < KIND_COUNT ? kind_names[kind] : kind_names[0];
}

/* ---- errors: the first one is kept with its line, the others counted ---- */

struct collector {
    const char *name;      /* the document, for messages */
    unsigned long errors;
    unsigned long line;
    int parse_error;       /* a well-formedness (not a validity) error was seen */
    char first[400];
};

static void collect_error(void *arg, xmlErrorPtr e)
{
    struct collector *c = arg;
    if (!e || e->level < XML_ERR_ERROR) return;
    if (e->domain != XML_FROM_SCHEMASV && e->domain != XML_FROM_SCHEMASP) c->parse_error = 1;
    if (c->errors++ == 0) {
        c->line = e->line > 0 ? (unsigned long)e->line : 0;
        snprintf(c->first, sizeof c->first, "%s", e->message ? e->message : "error");
        size_t n = strlen(c->first);
        while (n && (c->first[n - 1] == '\n' || c->first[n - 1] == ' ')) c->first[--n] = 0;
        /* stream validation processes no DTD, so declared entities are unknown */
        if (e->code == XML_ERR_UNDECLARED_ENTITY || e->code == XML_WAR_UNDECLARED_ENTITY)
            snprintf(c->first + n, sizeof c->first - n, " (entity declarations are not processed)");
    }
}

/* Formats the first collected error as "name:line: message (N more errors)". */
static int collected(const struct collector *c, int code, struct dip_errbuf *eb)
{
    char more[48] = "";
    if (c->errors > 1) snprintf(more, sizeof more, " (%lu more error%s)", c->errors - 1, c->errors > 2 ? "s" : "");
    if (c->line) return dip_err_set(eb, code, "%s:%lu: %s%s", c->name, c->line, c->first, more);
    return dip_err_set(eb, code, "%s: %s%s", c->name, c->first, more);
}

/* ---- loading the schema ----
 *
 * xmlsafe.c installs a process-wide external entity loader that refuses
 * everything, and libxml2 (2.9) reads a schema's xs:include parts, and the
 * schema file itself, through that loader. While a schema is compiled, a
 * loader is installed that lets the compiling thread read regular files
 * inside the schema's own folder and hands every other request (and every
 * other thread's) to the refusing loader. Loads are serialised so the saved
 * loader is always the refusing one. */

static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;
static xmlExternalEntityLoader outer_loader;
static __thread const char *loader_folder; /* realpath, with trailing '/' */

static xmlParserInputPtr folder_loader(const char *url, const char *id, xmlParserCtxtPtr ctxt)
{
    if (loader_folder && url) {
        char real[PATH_MAX];
        struct stat st;
        if (realpath(url, real) && strncmp(real, loader_folder, strlen(loader_folder)) == 0 &&
            stat(real, &st) == 0 && S_ISREG(st.st_mode))
            return xmlNewInputFromFile(ctxt, real);
    }
    return outer_loader ? outer_loader(url, id, ctxt) : NULL;
}

static int compile(const char *path, xmlSchemaPtr *out, struct dip_errbuf *eb)
{
    char real[PATH_MAX], folder[PATH_MAX];
    if (!realpath(path, real)) return dip_err_sys(eb, errno, "schema %s", path);
    snprintf(folder, sizeof folder, "%s", real);
    char *slash = strrchr(folder, '/');
    slash[1] = 0; /* realpath is absolute: there is a slash */

    struct collector c = { .name = path };
    xmlSchemaParserCtxtPtr pctxt = xmlSchemaNewParserCtxt(real);
    if (!pctxt) return DIP_ENOMEM;
    xmlSchemaSetParserStructuredErrors(pctxt, collect_error, &c);

    pthread_mutex_lock(&load_lock);
    xmlExternalEntityLoader saved = xmlGetExternalEntityLoader();
    if (outer_loader != saved) outer_loader = saved; /* written only when it changes: other threads read it */
    loader_folder = folder;
    xmlSetExternalEntityLoader(folder_loader);
    *out = xmlSchemaParse(pctxt);
    xmlSetExternalEntityLoader(saved);
    loader_folder = NULL;
    pthread_mutex_unlock(&load_lock);

    xmlSchemaFreeParserCtxt(pctxt);
    if (*out) return DIP_OK;
    if (!c.errors) return dip_err_set(eb, DIP_ESYNTAX, "%s: cannot compile the schema", path);
    return collected(&c, DIP_ESYNTAX, eb);
}

int dip_schema_load(const char *xsd_path, struct dip_schema **out, struct dip_errbuf *eb)
{
    char found[PATH_MAX];
    *out = NULL;
    dip_xml_init(); /* the refusing loader is in place before ours is stacked on it */
    if (!xsd_path) {
        int rc = dip_path_find("dipstorage.xsd", found, sizeof found, eb);
        if (rc) return rc;
        xsd_path = found;
    }
    struct dip_schema *s = calloc(1, sizeof *s);
    if (!s) return DIP_ENOMEM;
    int rc = compile(xsd_path, &s->xsd, eb);
    if (rc) {
        free(s);
        return rc;
    }
    *out = s;
    return DIP_OK;
}

void dip_schema_free(struct dip_schema *schema)
{
    if (!schema) return;
    xmlSchemaFree(schema->xsd);
    free(schema);
}

int dip_schema_shared(const struct dip_schema **out, struct dip_errbuf *eb)
{
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static struct dip_schema *shared;
    int rc = DIP_OK;
    pthread_mutex_lock(&lock);
    if (!shared) rc = dip_schema_load(NULL, &shared, eb);
    *out = shared;
    pthread_mutex_unlock(&lock);
    return rc;
}

/* ---- stream validation ---- */

struct stream {
    struct collector errs;
    struct dip_schema_report rep;
    dip_schema_element_fn on_element;
    void *arg;
    int depth;
    gzFile gz;
    char io_error[128];
};

#define MAX_ATTRS 32

static void on_start(void *ctx, const xmlChar *localname, const xmlChar *prefix, const xmlChar *uri,
                     int nb_namespaces, const xmlChar **namespaces, int nb_attributes, int nb_defaulted,
                     const xmlChar **attributes)
{
    (void)prefix; (void)uri; (void)nb_namespaces; (void)namespaces; (void)nb_defaulted;
    struct stream *s = ctx;
    const char *name = (const char *)localname;
    if (s->depth == 0 && s->rep.elements == 0) s->rep.kind = dip_doc_kind_of(name);
    s->rep.elements++;
    if (strcmp(name, "flow") == 0) s->rep.flows++;
    if (s->on_element) {
        /* SAX2 gives each attribute as (localname, prefix, URI, value, end). */
        char *pairs[2 * MAX_ATTRS + 1];
        int n = nb_attributes < MAX_ATTRS ? nb_attributes : MAX_ATTRS, k = 0;
        for (int i = 0; i < n; i++) {
            const xmlChar *const *a = attributes + 5 * i;
            char *value = (char *)xmlStrndup(a[3], (int)(a[4] - a[3]));
            if (!value) break;
            pairs[k++] = (char *)a[0];
            pairs[k++] = value;
        }
        pairs[k] = NULL;
        s->on_element(s->arg, s->depth, name, (const char *const *)pairs);
        for (int i = 1; i < k; i += 2) xmlFree(pairs[i]);
    }
    s->depth++;
}

static void on_end(void *ctx, const xmlChar *localname, const xmlChar *prefix, const xmlChar *uri)
{
    (void)localname; (void)prefix; (void)uri;
    struct stream *s = ctx;
    s->depth--;
}

static int gz_read(void *ctx, char *buf, int len)
{
    struct stream *s = ctx;
    int n = gzread(s->gz, buf, (unsigned)len);
    if (n < 0) {
        int zerr;
        const char *msg = gzerror(s->gz, &zerr);
        snprintf(s->io_error, sizeof s->io_error, "%s", zerr == Z_ERRNO ? strerror(errno) : msg);
    }
    return n;
}

static int gz_close(void *ctx)
{
    struct stream *s = ctx;
    if (s->gz) gzclose(s->gz);
    s->gz = NULL;
    return 0;
}

/* Runs the validator over input (taken) and turns what it found into a code. */
static int run_stream(const struct dip_schema *schema, xmlParserInputBufferPtr input, struct stream *s,
                      struct dip_schema_report *rep, struct dip_errbuf *eb)
{
    xmlSchemaValidCtxtPtr vctxt = xmlSchemaNewValidCtxt(schema->xsd);
    if (!vctxt) {
        xmlFreeParserInputBuffer(input);
        return DIP_ENOMEM;
    }
    xmlSchemaSetValidStructuredErrors(vctxt, collect_error, &s->errs);
    /* Only element callbacks: with no entity, DTD or subset handlers the
     * parser resolves no entity and loads nothing. Well-formedness errors
     * reach the thread's structured error handler (the validator's SAX
     * plug does not pass a handler's serror on), so it is borrowed for
     * the run. */
    xmlSAXHandler sax;
    memset(&sax, 0, sizeof sax);
    sax.initialized = XML_SAX2_MAGIC;
    sax.startElementNs = on_start;
    sax.endElementNs = on_end;
    xmlStructuredErrorFunc saved_fn = xmlStructuredError;
    void *saved_ctx = xmlStructuredErrorContext;
    xmlSetStructuredErrorFunc(&s->errs, collect_error);
    int ret = xmlSchemaValidateStream(vctxt, input, XML_CHAR_ENCODING_NONE, &sax, s);
    xmlSetStructuredErrorFunc(saved_ctx, saved_fn);
    xmlSchemaFreeValidCtxt(vctxt);

    int rc = DIP_OK;
    if (s->io_error[0]) {
        rc = dip_err_set(eb, DIP_EIO, "%s: %s", s->errs.name, s->io_error);
    } else if (s->errs.errors) {
        rc = collected(&s->errs, s->errs.parse_error ? DIP_ESYNTAX : DIP_EINVAL, eb);
    } else if (ret != 0) {
        rc = dip_err_set(eb, DIP_ESYNTAX, "%s: not a valid document (validator code %d)", s->errs.name, ret);
        s->errs.errors = 1;
    }
    s->rep.errors = s->errs.errors;
    s->rep.line = s->errs.line;
    if (rep) *rep = s->rep;
    return rc;
}

int dip_schema_validate_file(const struct dip_schema *schema, const char *path, dip_schema_element_fn on_element,
                             void *arg, struct dip_schema_report *rep, struct dip_errbuf *eb)
{
    if (rep) memset(rep, 0, sizeof *rep);
    dip_xml_init();
    /* Opened here rather than by libxml2, whose file callbacks would also
     * accept http:// and ftp:// names. gzread reads plain files unchanged. */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return dip_err_sys(eb, errno, "%s", path); /* ENOENT: DIP_ENOTFOUND */
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return dip_err_set(eb, DIP_EINVAL, "%s: not a regular file", path);
    }
    struct stream *s = calloc(1, sizeof *s);
    if (!s) {
        close(fd);
        return DIP_ENOMEM;
    }
    s->errs.name = path;
    s->on_element = on_element;
    s->arg = arg;
    s->gz = gzdopen(fd, "rb");
    if (!s->gz) {
        close(fd);
        free(s);
        return DIP_ENOMEM;
    }
    xmlParserInputBufferPtr input = xmlParserInputBufferCreateIO(gz_read, gz_close, s, XML_CHAR_ENCODING_NONE);
    if (!input) {
        gz_close(s);
        free(s);
        return DIP_ENOMEM;
    }
    int rc = run_stream(schema, input, s, rep, eb);
    gz_close(s); /* in case the parser stopped before closing its input */
    free(s);
    return rc;
}

int dip_schema_validate_memory(const struct dip_schema *schema, const char *data, size_t len, const char *name,
                               struct dip_schema_report *rep, struct dip_errbuf *eb)
{
    if (rep) memset(rep, 0, sizeof *rep);
    dip_xml_init();
    if (len > (size_t)INT_MAX) return dip_err_set(eb, DIP_ERANGE, "%s: document of %zu bytes is too large", name, len);
    xmlParserInputBufferPtr input = xmlParserInputBufferCreateMem(data, (int)len, XML_CHAR_ENCODING_NONE);
    if (!input) return DIP_ENOMEM;
    struct stream s;
    memset(&s, 0, sizeof s);
    s.errs.name = name;
    return run_stream(schema, input, &s, rep, eb);
}

/* ---- tree validation ---- */

int dip_schema_validate_doc(const struct dip_schema *schema, xmlDocPtr doc, struct dip_schema_report *rep,
                            struct dip_errbuf *eb)
{
    struct dip_schema_report r;
    memset(&r, 0, sizeof r);
    const xmlNode *root = xmlDocGetRootElement(doc);
    if (root) r.kind = dip_doc_kind_of((const char *)root->name);
    struct collector c = { .name = doc->URL ? (const char *)doc->URL : "document" };
    xmlSchemaValidCtxtPtr vctxt = xmlSchemaNewValidCtxt(schema->xsd);
    if (!vctxt) return DIP_ENOMEM;
    xmlSchemaSetValidStructuredErrors(vctxt, collect_error, &c);
    int ret = xmlSchemaValidateDoc(vctxt, doc);
    xmlSchemaFreeValidCtxt(vctxt);
    int rc = DIP_OK;
    if (c.errors) rc = collected(&c, DIP_EINVAL, eb);
    else if (ret != 0) {
        c.errors = 1;
        rc = dip_err_set(eb, ret < 0 ? DIP_ENOMEM : DIP_EINVAL, "%s: not a valid document (validator code %d)",
                         c.name, ret);
    }
    r.errors = c.errors;
    r.line = c.line;
    if (rep) *rep = r;
    return rc;
}
