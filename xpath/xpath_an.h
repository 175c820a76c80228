/* xpath_an.h - the abstract domain shared by xpath_analyse.c (node sets,
 * axes, the top level) and xpath_pred.c (predicates, comparisons, shapes).
 *
 * Not a public header. */
#ifndef DIP_XPATH_AN_H
#define DIP_XPATH_AN_H

#include "xpath_int.h"

/* Node kinds of a tank document. */
enum {
    K_ROOT, K_TANK, K_O0, K_O1, K_O2, K_O3, K_V6, K_G0, K_G7 = K_G0 + 7, K_P, K_FLOW,
    K_TEXT, /* text, comment and processing-instruction nodes */
    K_ATTR, K_NS, NK,
};

/* Which attribute an attribute node is: a tracked field, or these. */
enum { A_V = XP_FIELDS, A_KEY, A_OTHER, A_NONE };

/* How a node relates to the context node a predicate is evaluated on. */
enum { R_SELF, R_ANC, R_DESC, R_VERT, R_OTHER };

/* An abstract node: a kind and, per field, the set the value lies in (NULL:
 * anything). For index elements the tank key field is the block of keys
 * below them, aligned to the element's level. */
struct st {
    uint8_t kind, owner, attr, rel;
    const struct xp_iset *f[XP_FIELDS];
};

struct sv {
    uint32_t n, cap;
    struct st *s;
};

/* A predicate on the context node: may[f] holds every value f has where the
 * predicate is true; a value in must[f] makes it true whatever the rest. */
struct pv {
    const struct xp_iset *may[XP_FIELDS];
    const struct xp_iset *must[XP_FIELDS];
};

/* Past this much memory the analysis gives up (soundly: unconstrained). */
#define XP_ANALYSIS_MEM (48u * 1024 * 1024)

struct _xmlXPathContext;
struct _xmlDoc;

struct an {
    struct xp_arena *a;
    const char *text;
    int tank;
    bool addr;
    long budget; /* work left before giving up (sound: unconstrained) */
    bool gave_up;
    bool no_preds; /* kinds only: predicates are skipped (they only filter) */
    const struct xp_iset *v4, *v6; /* the IPv4-mapped block and the rest */
    struct _xmlXPathContext *xctx; /* for folding constant subexpressions */
    struct _xmlDoc *doc;
};

/* Low bits of the key an index node of this kind leaves open (128: all). */
int xp_an_shift(const struct an *A, int kind);
void xp_an_nodes(struct an *A, const struct xp_node *e, const struct st *ctx, struct sv *out);
/* Returns: arena-allocated. */
struct pv *xp_an_pred(struct an *A, const struct xp_node *e, const struct st *ctx);
/* For a BOOLEAN-shaped expression: the flows that can make it true. */
void xp_an_boolean_states(struct an *A, const struct xp_node *e, const struct st *ctx, struct sv *out);
enum dip_xpath_shape xp_an_shape(const struct xp_node *root);
int xp_an_named_tank(const struct xp_node *root);
void xp_an_const_free(struct an *A);

/* Static types of expressions (REC 4: the function library). */
enum { TY_NODESET, TY_BOOL, TY_NUM, TY_STR, TY_UNKNOWN };
bool xp_an_call_is(const struct xp_node *e, const char *name);
int xp_an_call_type(const struct xp_node *e);
int xp_an_static_type(const struct xp_node *e);
/* Context-free: no paths, variables or context functions. */
bool xp_an_is_const(const struct xp_node *e);
/* Does e denote the context node (*name NULL) or exactly its attribute *name? */
bool xp_an_self_ref(const struct xp_node *e, const struct xp_str **name);
int xp_an_mirror(int op);
/* `F op C` with F a chain-local node-set and C a constant: F (and *c), or NULL. */
const struct xp_node *xp_an_existential(const struct xp_node *e, int *op, const struct xp_node **c);

#endif
