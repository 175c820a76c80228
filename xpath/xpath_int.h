/* xpath_int.h - internals shared by the files of the XPath analyser: the
 * arena, the syntax tree the parser builds, interval sets over 128-bit
 * values, and the entry points between parser, analysis and public API.
 *
 * Not a public header: only the files of xpath/ include it. */
#ifndef DIP_XPATH_INT_H
#define DIP_XPATH_INT_H

#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xpath.h"

typedef unsigned __int128 u128i;
#define U128_MAX (~(u128i)0)

static inline u128i u128_get(struct dip_u128 v) { return ((u128i)v.hi << 64) | v.lo; }
static inline struct dip_u128 u128_put(u128i v)
{
    struct dip_u128 r = { (uint64_t)(v >> 64), (uint64_t)v };
    return r;
}

/* ---- arena: every allocation of one compilation, freed at once ---- */

struct xp_chunk;
struct xp_arena {
    struct xp_chunk *head;
    char *cur, *end;
    size_t total;     /* bytes allocated so far */
    jmp_buf *oom;     /* longjmp target when malloc fails or the cap is hit */
    void (*cleanup)(void *); /* called by xp_arena_free, e.g. to free libxml2 objects */
    void *cleanup_arg;
};
#define XP_ARENA_MAX (256u * 1024 * 1024)

void *xp_alloc(struct xp_arena *a, size_t n); /* zeroed; never returns NULL */
void xp_arena_free(struct xp_arena *a);

/* ---- syntax tree ---- */

enum xp_node_kind {
    XN_NUMBER, XN_LITERAL, XN_VAR, XN_CALL, XN_CHAIN, XN_NEG, XN_PATH, XN_FILTER,
};

/* Operators of n-ary chains, grouped by the REC's precedence levels. */
enum xp_op {
    XO_OR, XO_AND, XO_EQ, XO_NE, XO_LT, XO_LE, XO_GT, XO_GE,
    XO_ADD, XO_SUB, XO_MUL, XO_DIV, XO_MOD, XO_UNION,
};

enum xp_axis {
    XA_ANCESTOR, XA_ANCESTOR_OR_SELF, XA_ATTRIBUTE, XA_CHILD, XA_DESCENDANT,
    XA_DESCENDANT_OR_SELF, XA_FOLLOWING, XA_FOLLOWING_SIBLING, XA_NAMESPACE,
    XA_PARENT, XA_PRECEDING, XA_PRECEDING_SIBLING, XA_SELF,
};
#define XP_AXES 13

enum xp_test { XT_NAME, XT_ANY, XT_NS_ANY, XT_NODE, XT_TEXT, XT_COMMENT, XT_PI };

struct xp_str {
    const char *s; /* points into the compilation's copy of the text */
    uint32_t len;
};

struct xp_node;

struct xp_step {
    uint8_t axis, test;
    struct xp_str prefix, local; /* name test; local = PI target for XT_PI */
    uint32_t pos;
    uint32_t npred;
    struct xp_node **preds;
};

struct xp_node {
    uint8_t kind;
    uint32_t pos, end; /* byte span [pos, end) in the text */
    union {
        struct { double value; bool simple; } num; /* simple: integer, <= 15 digits */
        struct xp_str lit;                           /* XN_LITERAL */
        struct { struct xp_str prefix, local; } var; /* XN_VAR */
        struct {
            struct xp_str prefix, local;
            uint32_t nargs;
            struct xp_node **args;
        } call;
        struct {
            uint8_t level; /* precedence level: 0 or .. 6 union */
            uint32_t n;
            struct xp_node **opnd;
            uint8_t *ops; /* ops[i] joins opnd[i] and opnd[i + 1] */
        } chain;
        struct { uint32_t count; struct xp_node *x; } neg;
        struct {
            struct xp_node *base; /* filter expression the path starts from, or NULL */
            bool absolute;
            uint32_t nsteps;
            struct xp_step *steps;
        } path;
        struct {
            struct xp_node *primary;
            uint32_t npred;
            struct xp_node **preds;
        } filter;
    } u;
};

/* A text being written into a caller's buffer (dip_xpath_explain, dip_xpath_syntax). */
struct xp_out {
    char *buf;
    size_t cap, len;
};
void xp_put(struct xp_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Checks that text (len bytes, may hold NULs) is what a query may be made
 * of: well-formed UTF-8 of XML characters, no NUL, no control character but
 * tab, CR and LF, no DEL or C1 control, no byte-order mark outside a string
 * literal. Returns: len when it is; else the byte offset of the first
 * character that is not, with the reason in why (cap bytes; the caller adds
 * the column). Costs one pass over the text. */
size_t xp_text_check(const char *text, size_t len, char *why, size_t cap);

/* Parses text (a NUL-terminated copy owned by the caller, len bytes; it may
 * hold NULs before the end, which are refused) into a tree allocated in a,
 * after xp_text_check. Returns DIP_OK with *root set, or DIP_ESYNTAX /
 * DIP_ERANGE with err filled. */
int xp_parse(struct xp_arena *a, const char *text, size_t len, struct xp_node **root,
             struct dip_xpath_error *err);

/* Writes the unabbreviated, fully parenthesised form of a tree. */
int xp_unparse(const struct xp_node *n, char *out, size_t cap);

const char *xp_axis_name(int axis);
bool xp_str_eq(struct xp_str s, const char *lit);

/* ---- interval sets ---- */

struct xp_iv {
    u128i lo, hi;
};
/* An immutable sorted disjoint set of inclusive intervals, allocated in an
 * arena. The NULL pointer stands for "the whole domain" of the field. */
struct xp_iset {
    uint32_t n;
    struct xp_iv v[];
};
extern const struct xp_iset xp_empty;
#define XP_SET_CAP 1024 /* more intervals are merged (may-sets) or dropped (must-sets) */

/* The fields the analysis tracks: the seven keys, then the numeric flow
 * attributes. Optional attributes have the extra value XP_ABSENT. */
enum xp_field {
    XF_SRC, XF_DST, XF_SPORT, XF_DPORT, XF_PROTO, XF_FIRST, XF_LAST,
    XF_PACKETS, XF_BYTES, XF_FLAGS, XF_TOS, XF_IN, XF_OUT, XF_SRCAS, XF_DSTAS,
    XF_SMASK, XF_DMASK, XF_DOMAIN, XF_SAMPLING,
};
#define XP_FIELDS 19
#define XP_ABSENT ((u128i)1 << 64)

const char *xp_field_name(int f);
int xp_field_find(const char *name, size_t len); /* -1 when not tracked */
bool xp_field_optional(int f);
u128i xp_field_max(int f); /* largest present value */
const struct xp_iset *xp_field_domain(int f);

const struct xp_iset *xp_set_one(struct xp_arena *a, u128i lo, u128i hi);
const struct xp_iset *xp_set_and(struct xp_arena *a, const struct xp_iset *x, const struct xp_iset *y);
const struct xp_iset *xp_set_or(struct xp_arena *a, const struct xp_iset *x, const struct xp_iset *y);
/* u \ x; u NULL means the domain of field f. */
const struct xp_iset *xp_set_minus(struct xp_arena *a, int f, const struct xp_iset *u,
                                   const struct xp_iset *x);
/* Rounds every interval out to multiples of 2^shift (shift 128: all or nothing). */
const struct xp_iset *xp_set_widen(struct xp_arena *a, const struct xp_iset *x, int shift);
/* Caps the interval count: over-approximating (merge nearest) or under (drop smallest). */
const struct xp_iset *xp_set_cap(struct xp_arena *a, struct xp_iv *v, size_t n, bool over);
bool xp_set_is_empty(const struct xp_iset *x);
bool xp_set_covers(int f, const struct xp_iset *x); /* x is the whole domain of f */
bool xp_set_has(const struct xp_iset *x, u128i v);

/* {x in u : bits [pos, pos+width) of x lie in vals}; NULL u = all 128-bit
 * values. When that takes too many intervals the result is u for may-sets
 * and empty for must-sets. */
const struct xp_iset *xp_set_lift(struct xp_arena *a, const struct xp_iset *u, int pos, int width,
                                  const struct xp_iset *vals, bool may);

/* Values of [0, max] whose decimal text starts with digits (len bytes). */
const struct xp_iset *xp_set_decimal_prefix(struct xp_arena *a, const char *digits, size_t len,
                                            u128i max);
/* Over-approximation of the addresses whose text starts with prefix; *exact_v4
 * receives the exact IPv4 part (a must-set). */
const struct xp_iset *xp_set_addr_prefix(struct xp_arena *a, const char *prefix, size_t len,
                                         const struct xp_iset **exact_v4);

/* Numeric comparison `x op c` for integers x in [0, max] whose XPath number
 * is exact up to 2^53 and within a relative 2^-40 beyond; c_exact false widens
 * c by a relative 2^-40 too. Writes the may- and must-sets (subsets of [0, max]). */
void xp_num_cmp(struct xp_arena *a, int op, double c, bool c_exact, u128i max,
                const struct xp_iset **may, const struct xp_iset **must);

/* Parses an address literal as the store writes it. Returns true with *v set
 * (IPv4 mapped); *canonical tells whether text is exactly the stored form. */
bool xp_addr_parse(const char *text, size_t len, u128i *v, bool *canonical);
size_t xp_addr_format(u128i v, char *out); /* >= 46 bytes */

#define XP_V4_BASE (((u128i)0xffff) << 32)

/* ---- analysis ---- */

/* What the analysis produced for one tank. */
struct xp_tank_result {
    const struct xp_iset *f[XP_FIELDS]; /* NULL: unconstrained */
};

struct xp_analysis {
    enum dip_xpath_shape shape;
    int named_tank;
    struct xp_tank_result tank[DIP_XPATH_TANKS];
};

/* Analyses root (parsed in a); the sets live in a. */
void xp_analyse(struct xp_arena *a, const char *text, const struct xp_node *root,
                struct xp_analysis *out);

#endif
