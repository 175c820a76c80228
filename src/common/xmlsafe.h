/* xmlsafe.h - parsing XML that comes from outside safely with libxml2: no
 * network, no external entities, no DTD loading, bounded size; errors carry
 * the file (or "input"), line and column. */
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

#endif
