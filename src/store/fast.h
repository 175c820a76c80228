/* fast.h - the fast paths of the leaf store's queries, shared by the files of
 * src/store/ only: decoding chunk text straight into records (chunkdec.c)
 * and an exact evaluator for a small family of XPath expressions over
 * records (fastq.c). Both refuse what they do not fully understand, and the
 * caller then takes the general libxml2 path, so answers never change. */
#ifndef DIP_STORE_FAST_H
#define DIP_STORE_FAST_H

#include <libxml/tree.h>
#include <stdbool.h>
#include <stddef.h>

#include "flow/flow.h"
#include "xpath/xpath.h"

/* Appends the records of chunk text (subtrees of a tank element as
 * dip_tree_write_text writes them) to *flows (grown as needed, *n records of
 * *cap). Returns DIP_OK; DIP_EAGAIN when the text is not exactly in the
 * canonical form (then nothing is appended and libxml2 must parse it: that
 * also reports errors properly); DIP_ENOMEM. With DIP_OK, writing the records
 * back with dip_tree_write_text gives the same text up to whitespace. */
struct dip_chunk_filter;
int dip_chunk_decode(enum dip_tank_key key, const char *text, size_t len, const struct dip_chunk_filter *flt,
                     struct dip_flow **flows, size_t *n, size_t *cap);

/* Where a decoded record's element lies in the chunk text: "<flow .../>" at
 * off, len bytes, exactly as dip_flow_xml_append_stored writes the record
 * (len 0: the element was in another layout). An answer copies that text
 * instead of formatting the record again (a third of a large point query's
 * time). */
struct dip_text_span {
    uint32_t off, len;
};
struct dip_span_vec {
    struct dip_text_span *v; /* v[i]: the span of (*flows)[i]; owned */
    size_t cap;
};
/* dip_chunk_decode that also sets spans->v[i] for each record appended at
 * (*flows)[i] (grown as needed). Text longer than 4 GiB gets no spans. */
int dip_chunk_decode_spans(enum dip_tank_key key, const char *text, size_t len, const struct dip_chunk_filter *flt,
                           struct dip_flow **flows, size_t *n, size_t *cap, struct dip_span_vec *spans);

/* Which index subtrees dip_chunk_decode decodes (NULL: all): keep gets the
 * range of tank keys a subtree holds (the analyser's value space: addresses
 * as 128-bit numbers, IPv4 mapped) and returns false to skip it unread. A
 * skipped subtree is passed over by its tags alone (several times faster
 * than decoding its records), so a point query reads a chunk in a fraction
 * of a full decode; the records appended are then only those of the kept
 * subtrees, and must not be cached as the chunk. */
struct dip_chunk_filter {
    bool (*keep)(void *ctx, struct dip_u128 lo, struct dip_u128 hi);
    void *ctx;
    bool prefix; /* the text is a chunk's first part, cut after a flow: index elements may stay open */
};

/* Builds a <tank key> document of flows (sorted by key) like dip_tree_build,
 * with each flow element's _private set to (void *)(index + 1). */
xmlDocPtr dip_tree_build_marked(enum dip_tank_key key, const struct dip_flow *flows, size_t n);

/* ---- the exact evaluator (fastq.c) ---- */

enum dip_fastq_kind { DIP_FASTQ_FLOWS, DIP_FASTQ_COUNT, DIP_FASTQ_SUM, DIP_FASTQ_BOOLEAN };

struct dip_fastq; /* opaque */

/* Compiles text when it is one of the forms the evaluator decides exactly:
 * //flow[P]... , count(//flow[P]...), boolean(//flow[P]...) or
 * sum(//flow[P].../@A) where each P is built from and, or, not(), (),
 * @A (existence) and @A compared (= != < <= > >=) with a literal. Returns:
 * new evaluator (dip_fastq_free) or NULL when text is of another form. */
struct dip_fastq *dip_fastq_compile(const char *text, size_t len);
void dip_fastq_free(struct dip_fastq *q);
enum dip_fastq_kind dip_fastq_kind(const struct dip_fastq *q);
/* Returns: whether f is selected by the expression's path. */
bool dip_fastq_match(const struct dip_fastq *q, const struct dip_flow *f);
/* For DIP_FASTQ_SUM: the number libxml2 gives the summed attribute of f, or
 * 0 without adding when f lacks it (*has false). */
double dip_fastq_value(const struct dip_fastq *q, const struct dip_flow *f, bool *has);

#endif
