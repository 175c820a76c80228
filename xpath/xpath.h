/* xpath.h - the XPath 1.0 analyser of dipstorage (ARCHITECTURE section 7).
 *
 * Parses the whole XPath 1.0 grammar into an AST and derives, for each tank a
 * query may run on, what the query says about the flow keys: a sound
 * over-approximation (every flow the expression can select lies in the
 * returned ranges). libxml2 stays the evaluator; this module only decides
 * where a query needs to go and what it may skip.
 *
 * Layer: query language. Depends on src/common only. */
#ifndef DIP_XPATH_H
#define DIP_XPATH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The attributes the analyser constrains. The first four are the tank keys,
 * in the order of enum dip_tank_key (src/flow/flow.h). */
enum dip_xpath_key {
    DIP_XK_SRC = 0,
    DIP_XK_DST = 1,
    DIP_XK_SPORT = 2,
    DIP_XK_DPORT = 3,
    DIP_XK_PROTO = 4,
    DIP_XK_FIRST = 5,
    DIP_XK_LAST = 6,
};
#define DIP_XPATH_KEYS 7
#define DIP_XPATH_TANKS 4

/* A 128-bit unsigned value. Value spaces: src/dst are IPv6 addresses with
 * IPv4 mapped (::ffff:a.b.c.d, so 10.0.0.1 is hi=0, lo=0x0000ffff0a000001);
 * sport/dport 0..65535, proto 0..255, first/last milliseconds, all in lo. */
struct dip_u128 {
    uint64_t hi, lo;
};

/* An inclusive interval [lo, hi]. */
struct dip_xpath_range {
    struct dip_u128 lo, hi;
};

/* How an expression's value decomposes over a partition of the flow records
 * (ARCHITECTURE 4: what may be pushed down to leaves and merged). */
enum dip_xpath_shape {
    /* A node-set of `flow` elements in which whether a flow belongs depends
     * only on that flow's attributes and its ancestors (the tank element and
     * the index elements above it): evaluated over any part of the document
     * that holds the flow with its ancestor chain, it selects the same flows.
     * Merge: union in document order. */
    DIP_XPATH_FLOWS,
    /* count(F) with F as above. Merge: add. */
    DIP_XPATH_COUNT,
    /* sum(F) or sum(F/@attr) with F as above. Merge: add. */
    DIP_XPATH_SUM,
    /* A boolean that is true iff it is true on some part: boolean(F),
     * F-existential comparisons such as `//flow/@dport = 22`. Merge: or. */
    DIP_XPATH_BOOLEAN,
    /* Anything else (positions, last(), string value of a first node, counts
     * of index elements, arithmetic on counts, ...): must be evaluated over
     * the whole logical document, gathered at one place. */
    DIP_XPATH_GATHER,
};

struct dip_xpath; /* a parsed and analysed expression; opaque */

/* Limits on untrusted expressions: longer or deeper input is refused with a
 * clear error, and the parser never recurses deeper than DIP_XPATH_MAX_DEPTH. */
#define DIP_XPATH_MAX_LEN (64 * 1024)
#define DIP_XPATH_MAX_DEPTH 256

struct dip_xpath_error {
    size_t column;      /* 1-based column of the error in the expression; 0 if none */
    char message[256];  /* what was wrong and what was expected */
};

/* Parses and analyses text (len bytes, need not be NUL-terminated).
 * A query is well-formed UTF-8 of XML characters: a NUL, a control character
 * other than tab, CR and LF, DEL or a C1 control (U+007F-U+009F), an invalid
 * UTF-8 sequence (overlong, surrogate, above U+10FFFF, truncated) or a
 * byte-order mark outside a string literal is refused with DIP_ESYNTAX and
 * the column of that character, before anything reaches libxml2 (which
 * evaluates invalid UTF-8 in literals instead of refusing it).
 * Returns DIP_OK with *out new (free with dip_xpath_free), or DIP_ESYNTAX /
 * DIP_ERANGE (too long or too deep) with err filled (err may be NULL). */
int dip_xpath_compile(const char *text, size_t len, struct dip_xpath **out, struct dip_xpath_error *err);
void dip_xpath_free(struct dip_xpath *q);

/* Returns: how the expression's value decomposes (see enum dip_xpath_shape). */
enum dip_xpath_shape dip_xpath_shape(const struct dip_xpath *q);

/* The constraints of q when evaluated on the logical document of the tank
 * whose key is `tank` (0..3): index steps such as /tank/o[@v=10] or
 * //p[@v=22] constrain that tank's key, and /tank[@key='dst'] on another tank
 * selects nothing (an empty set). For shapes other than FLOWS, COUNT, SUM and
 * BOOLEAN the ranges are "unconstrained" unless the analyser proves more.
 *
 * dip_xpath_ranges returns the sorted, disjoint, inclusive intervals for key
 * (borrowed, valid until dip_xpath_free) and sets *unconstrained when the key
 * is not constrained at all (then the returned list is the whole space).
 * An empty list (return 0, *unconstrained false) means nothing can match. */
size_t dip_xpath_ranges(const struct dip_xpath *q, int tank, enum dip_xpath_key key,
                        const struct dip_xpath_range **out, bool *unconstrained);

/* Returns: false only if no flow whose `key` lies in [lo, hi] can be selected
 * by q on tank `tank` (a child's key range, a segment's or chunk's summary).
 * Costs a binary search over the ranges: <= 100 ns. */
bool dip_xpath_may_match(const struct dip_xpath *q, int tank, enum dip_xpath_key key,
                         struct dip_u128 lo, struct dip_u128 hi);

/* The tank that answers q with the least work: the one whose key q confines
 * to the smallest share of that key's space. *share gets that share (0..1;
 * 1 = full scan), *tie is set when several tanks have the same share.
 * A query naming a tank (/tank[@key='dport']...) returns that tank.
 * Returns: 0..3 (enum dip_tank_key order). */
int dip_xpath_best_tank(const struct dip_xpath *q, double *share, bool *tie);

/* Returns: the tank key named by an explicit /tank[@key='...'] step that
 * every path of q starts with, or -1 when q names none. */
int dip_xpath_named_tank(const struct dip_xpath *q);

/* Writes a human-readable description of the analysis (shape, ranges per key
 * per tank) for `dipstorage query --explain` and tests. Returns: length written
 * (snprintf semantics). */
int dip_xpath_explain(const struct dip_xpath *q, char *out, size_t cap);

/* ---- additions ---- */

/* The value that stands for "attribute absent" in dip_xpath_attr_ranges: one
 * above every 64-bit value ({hi = 1, lo = 0}). */
#define DIP_XPATH_ABSENT_HI 1

/* The ranges of one flow attribute, by name, over all tanks: every numeric
 * attribute (src dst sport dport proto first last packets bytes flags tos in
 * out srcas dstas smask dmask domain sampling; values in lo, addresses as in
 * struct dip_u128). Sound under XPath's double arithmetic (values beyond
 * 2^53 are compared with a safety margin). For optional attributes the value
 * {DIP_XPATH_ABSENT_HI, 0} is in the list when a flow lacking the attribute
 * may match, so a chunk summary should count absence as that value.
 * Unknown names and shapes other than FLOWS/COUNT/SUM/BOOLEAN give
 * *unconstrained. Returns: the count; *out borrowed until dip_xpath_free. */
size_t dip_xpath_attr_ranges(const struct dip_xpath *q, const char *attr, const struct dip_xpath_range **out,
                             bool *unconstrained);

/* Like dip_xpath_may_match for any attribute dip_xpath_attr_ranges knows. */
bool dip_xpath_attr_may_match(const struct dip_xpath *q, const char *attr, struct dip_u128 lo,
                              struct dip_u128 hi);

/* Parses text and writes its unabbreviated, fully parenthesised form (every
 * step with its axis, `//` expanded, operators grouped) into out: for tests
 * and for showing how an expression was read. Returns DIP_OK, DIP_ESYNTAX or
 * DIP_ERANGE (err filled); *written gets the snprintf-style length. */
int dip_xpath_syntax(const char *text, size_t len, char *out, size_t cap, size_t *written,
                     struct dip_xpath_error *err);

/* ---- the catalogue of named example queries (xpath/queries/catalogue.xml) ---- */

struct dip_xpath_query_info {
    char *name;        /* all owned by the catalogue */
    char *description;
    char *tank;        /* the tank expected to answer: src, dst, sport, dport or "any" */
    char *expression;
};
struct dip_xpath_catalogue {
    struct dip_xpath_query_info *queries;
    size_t n;
};

/* Reads dir/catalogue.xml (dir: the queries directory, e.g. "xpath/queries").
 * Returns DIP_OK with *out filled (free with dip_xpath_catalogue_free),
 * DIP_ENOTFOUND / DIP_EIO (cannot open), DIP_ECORRUPT (malformed), with a
 * message in eb. */
struct dip_errbuf;
int dip_xpath_catalogue_load(const char *dir, struct dip_xpath_catalogue *out, struct dip_errbuf *eb);
void dip_xpath_catalogue_free(struct dip_xpath_catalogue *c);
/* Returns: the query named name (borrowed from c), or NULL. */
const struct dip_xpath_query_info *dip_xpath_catalogue_find(const struct dip_xpath_catalogue *c, const char *name);
/* Returns: the names, in file order, as a borrowed array of c->n entries via *names
 * (newly allocated array of borrowed strings; free() the array). DIP_OK or DIP_ENOMEM. */
int dip_xpath_catalogue_list(const struct dip_xpath_catalogue *c, const char ***names);

#endif
