/* result_doc.h - writing query answers as <result> documents and failures as
 * <error> documents (ARCHITECTURE 4, schema/result.xsd). */
#ifndef DIP_RESULT_DOC_H
#define DIP_RESULT_DOC_H

#include <stdio.h>

#include "store/store.h"

/* Writes <result complete="true" tank=.. count=.. shape=.. elapsed-ms=..>body</result>. */
void dip_result_doc_write(FILE *out, const struct dip_store_answer *ans, const char *tank, double elapsed_ms);
/* Writes <error code=".." [column=".."]>message</error>. */
void dip_error_doc_write(FILE *out, int code, size_t column, const char *message);
/* Writes s escaped for XML text and attribute values. */
void dip_xml_escape_write(FILE *out, const char *s);

#endif
