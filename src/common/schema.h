/* schema.h - validating dipstorage documents (flows, tanks and segments,
 * manifests, results, errors, the cluster map) against dipstorage.xsd with
 * libxml2's XML Schema validator. Files are validated as a stream (no tree
 * is built, gzip-compressed files are read transparently); messages name the
 * document and line of the first error. */
#ifndef DIP_SCHEMA_H
#define DIP_SCHEMA_H

#include <libxml/tree.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* The document kinds of ARCHITECTURE section 4, by root element. */
enum dip_doc_kind {
    DIP_DOC_UNKNOWN = 0,
    DIP_DOC_FLOW,     /* <flow>: one record */
    DIP_DOC_FLOWS,    /* <flows>: an export */
    DIP_DOC_TANK,     /* <tank>: a tank document or a sealed segment */
    DIP_DOC_MANIFEST, /* <manifest>: a leaf store's MANIFEST.xml */
    DIP_DOC_RESULT,   /* <result>: a query answer */
    DIP_DOC_ERROR,    /* <error>: a query error */
    DIP_DOC_CLUSTER,  /* <cluster>: the cluster map */
    DIP_DOC_CHUNKS,   /* <chunks>: a sealed segment's chunk index */
};

/* Returns: the kind whose root element is named name (DIP_DOC_UNKNOWN if none). */
enum dip_doc_kind dip_doc_kind_of(const char *root_name);
/* Returns: a static name for kind: its root element name, or "unknown". */
const char *dip_doc_kind_name(enum dip_doc_kind kind);

/* A compiled schema. Read-only once loaded: any number of threads may
 * validate with one schema at the same time. */
struct dip_schema;

/* Loads and compiles the schema at xsd_path, or, when xsd_path is NULL, the
 * shipped dipstorage.xsd found with dip_path_find(). Parts it includes are
 * read relative to its own folder; nothing outside that folder is read.
 * Returns DIP_OK with *out new (dip_schema_free), DIP_ENOTFOUND, or
 * DIP_ESYNTAX with the schema's own error in eb. */
int dip_schema_load(const char *xsd_path, struct dip_schema **out, struct dip_errbuf *eb);
void dip_schema_free(struct dip_schema *schema);

/* The shipped dipstorage.xsd, loaded on first use and kept for the life of
 * the process (thread-safe; a failed load is retried on the next call).
 * Returns DIP_OK with *out borrowed, or the dip_schema_load error. */
int dip_schema_shared(const struct dip_schema **out, struct dip_errbuf *eb);

/* What a validation found, beyond its return code. */
struct dip_schema_report {
    enum dip_doc_kind kind; /* from the root element, when one was read */
    unsigned long errors;   /* schema and well-formedness errors found */
    unsigned long line;     /* line of the first error; 0 if none or unknown */
    uint64_t elements;      /* elements read (stream validation only) */
    uint64_t flows;         /* `flow` elements read (stream validation only) */
};

/* Called for every start tag in a streamed document, after the validator
 * has seen it: depth 0 is the root; attrs holds name, value pairs and ends
 * with NULL. All pointers are borrowed for the duration of the call. */
typedef void (*dip_schema_element_fn)(void *arg, int depth, const char *name, const char *const *attrs);

/* Validates the file at path (plain or gzip-compressed XML) as a stream,
 * with the safety of src/common/xmlsafe.h (no network, no external entities,
 * no DTD). on_element (may be NULL) sees each start tag. rep may be NULL.
 * Returns DIP_OK if valid; DIP_EINVAL if well-formed but not valid, with
 * "path:line: message" of the first error in eb (and " (N more errors)");
 * DIP_ESYNTAX if not well-formed; DIP_ENOTFOUND or DIP_EIO if unreadable. */
int dip_schema_validate_file(const struct dip_schema *schema, const char *path, dip_schema_element_fn on_element,
                             void *arg, struct dip_schema_report *rep, struct dip_errbuf *eb);

/* The same for len bytes in memory named `name` in messages. */
int dip_schema_validate_memory(const struct dip_schema *schema, const char *data, size_t len, const char *name,
                               struct dip_schema_report *rep, struct dip_errbuf *eb);

/* Validates a parsed document (doc is borrowed and not changed). Messages
 * name doc->URL (or "document") and the line of the offending element.
 * Returns DIP_OK, DIP_EINVAL with the first error in eb, or DIP_ENOMEM. */
int dip_schema_validate_doc(const struct dip_schema *schema, xmlDocPtr doc, struct dip_schema_report *rep,
                            struct dip_errbuf *eb);

#endif
