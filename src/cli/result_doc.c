/* result_doc.c - <result> and <error> documents for the command line. */
#include "result_doc.h"

void dip_xml_escape_write(FILE *out, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '&': fputs("&amp;", out); break;
        case '"': fputs("&quot;", out); break;
        default: fputc(*s, out);
        }
    }
}

void dip_result_doc_write(FILE *out, const struct dip_store_answer *ans, const char *tank, double elapsed_ms)
{
    fprintf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    fprintf(out, "<result complete=\"true\" tank=\"%s\" count=\"%llu\" shape=\"%s\" elapsed-ms=\"%.3f\">\n", tank,
            (unsigned long long)ans->count, ans->shape ? ans->shape : "gather", elapsed_ms);
    if (ans->body.len) fwrite(ans->body.data, 1, ans->body.len, out);
    fprintf(out, "</result>\n");
}

void dip_error_doc_write(FILE *out, int code, size_t column, const char *message)
{
    fprintf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<error code=\"%s\"", dip_err_name(code));
    if (column) fprintf(out, " column=\"%zu\"", column);
    fputc('>', out);
    dip_xml_escape_write(out, message);
    fputs("</error>\n", out);
}
