/* xmlsafe.h - parsing XML that comes from outside safely with libxml2: no
 * network, no external entities, no DTD loading, bounded size; errors carry
 * the file (or "input"), line and column. Whole documents become trees;
 * large ones (flow files) stream through SAX. */
#ifndef DIP_XMLSAFE_H
#define DIP_XMLSAFE_H

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stddef.h>

#include "err.h"

/* The libxml2 parser options every untrusted document is read with. */
#define DIP_XML_SAFE_OPTIONS (XML_PARSE_NONET | XML_PARSE_NOCDATA | XML_PARSE_COMPACT | XML_PARSE_NOBLANKS)

/* Parses len bytes named `name` (for messages). Returns DIP_OK with *doc new
 * (xmlFreeDoc), or DIP_ESYNTAX with "name:line:column: message" in eb. */
int dip_xml_parse_memory(const char *data, size_t len, const char *name, xmlDocPtr *doc, struct dip_errbuf *eb);
/* Same for a file (gzip-compressed files are read transparently). Note that
 * the process-wide entity loader refuses every load, so xmlReadFile and
 * friends cannot open files: read documents through this function. */
int dip_xml_parse_file(const char *path, xmlDocPtr *doc, struct dip_errbuf *eb);

/* Installs process-wide protections once (no external entity loading). Safe to call repeatedly. */
void dip_xml_init(void);

/* ---- streaming a large document (SAX) ---- */

/* One element start as dip_xml_stream_fd reports it. All strings are
 * NUL-terminated and borrowed, valid during the callback only. Values are
 * what libxml2 gives without entity substitution: character references and
 * the predefined entities are decoded, except that '&' stays "&#38;". */
struct dip_xml_element {
    const char *name;              /* local name (any namespace) */
    const char *const *attr_names; /* local names; "prefix:name" when prefixed */
    const char *const *attr_values;
    size_t nattrs;
    int line, column;              /* where the start tag ends */
};
#define DIP_XML_STREAM_MAX_ATTRS 64              /* per element */
#define DIP_XML_STREAM_MAX_ATTR_BYTES (1u << 20) /* names and values of one element */

/* Called at every element start. A non-zero return stops the stream, which
 * returns that code with eb as fn left it. */
typedef int (*dip_xml_element_fn)(void *arg, const struct dip_xml_element *e, struct dip_errbuf *eb);

/* Streams the XML document made of the prefix bytes (when some were read
 * from fd already; NULL, 0 for none) and the rest of fd (plain, not closed) through
 * libxml2's SAX2 push parser with DIP_XML_SAFE_OPTIONS and libxml2's default
 * limits (no XML_PARSE_HUGE: 10 MB a text or attribute, depth 256), calling
 * fn at every element start. A document type declaration is refused where it
 * starts, before any of its declarations is read: a dipstorage document needs
 * none, and so no entity is ever declared, loaded or expanded (billion laughs,
 * XXE). Returns DIP_OK at the end of a well-formed document; DIP_ESYNTAX with
 * "name:line:column: why" at the first well-formedness error or at a
 * DOCTYPE, fn being called for nothing after it; fn's code when fn stops
 * the stream; DIP_EIO when reading fails. Memory: libxml2's input window and
 * one element's attributes, whatever the document's size. */
int dip_xml_stream_fd(int fd, const void *prefix, size_t prefix_len, const char *name, dip_xml_element_fn fn,
                      void *arg, struct dip_errbuf *eb);

#endif
