/* xpath_analyse.c - abstract interpretation of an XPath expression over the
 * shape of a tank's logical document (ARCHITECTURE 4):
 *   root > tank > o(4 levels) | v6 > g(8 levels) | p > flow
 * An abstract node is a kind of node with, per tracked field, a set its values
 * lie in (for index elements: the block of keys below them). Predicates give a
 * may-set (where they can be true) and a must-set (where they surely are), so
 * not() stays sound. Everything not modelled is "unconstrained". */
#include "xpath_int.h"

#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>
#include <math.h>
#include <string.h>

#include "xpath_an.h"

/* ---- kinds ---- */

#define KB(k) (1u << (k))
static const char *const kind_names[NK] = {
    [K_ROOT] = "", [K_TANK] = "tank", [K_O0] = "o", [K_O1] = "o", [K_O2] = "o", [K_O3] = "o",
    [K_V6] = "v6", [K_G0] = "g", [K_G0 + 1] = "g", [K_G0 + 2] = "g", [K_G0 + 3] = "g",
    [K_G0 + 4] = "g", [K_G0 + 5] = "g", [K_G0 + 6] = "g", [K_G7] = "g", [K_P] = "p",
    [K_FLOW] = "flow", [K_TEXT] = "", [K_ATTR] = "", [K_NS] = "",
};

static bool is_element(int k) { return k >= K_TANK && k <= K_FLOW; }
static bool is_o(int k) { return k >= K_O0 && k <= K_O3; }
static bool is_g(int k) { return k >= K_G0 && k <= K_G7; }

static uint32_t children(const struct an *A, int k)
{
    if (A->addr) {
        if (k == K_ROOT) return KB(K_TANK);
        if (k == K_TANK) return KB(K_O0) | KB(K_V6) | KB(K_TEXT);
        if (k >= K_O0 && k < K_O3) return KB(k + 1) | KB(K_TEXT);
        if (k == K_O3 || k == K_G7) return KB(K_FLOW) | KB(K_TEXT);
        if (k == K_V6) return KB(K_G0) | KB(K_TEXT);
        if (k >= K_G0 && k < K_G7) return KB(k + 1) | KB(K_TEXT);
        return 0;
    }
    if (k == K_ROOT) return KB(K_TANK);
    if (k == K_TANK) return KB(K_P) | KB(K_TEXT);
    if (k == K_P) return KB(K_FLOW) | KB(K_TEXT);
    return 0;
}

static uint32_t parents(const struct an *A, int k)
{
    uint32_t m = 0;
    for (int p = 0; p < K_ATTR; p++)
        if (children(A, p) & KB(k)) m |= KB(p);
    return m;
}

static uint32_t closure(const struct an *A, uint32_t from, uint32_t (*step)(const struct an *, int))
{
    uint32_t seen = 0, todo = from;
    while (todo) {
        int k = __builtin_ctz(todo);
        todo &= todo - 1;
        uint32_t n = step(A, k) & ~seen;
        seen |= n;
        todo |= n;
    }
    return seen;
}

int xp_an_shift(const struct an *A, int k)
{
    if (k == K_FLOW) return 0;
    if (A->addr) {
        if (is_o(k)) return 24 - 8 * (k - K_O0);
        if (is_g(k)) return 112 - 16 * (k - K_G0);
        return 128;
    }
    return k == K_P ? 0 : 128;
}

static const struct xp_iset *v4_block(struct an *A)
{
    if (!A->v4) A->v4 = xp_set_one(A->a, XP_V4_BASE, XP_V4_BASE | 0xffffffffu);
    return A->v4;
}

static const struct xp_iset *v6_space(struct an *A)
{
    if (!A->v6) A->v6 = xp_set_minus(A->a, XF_SRC, NULL, v4_block(A));
    return A->v6;
}

/* The key set of a node of kind `to` reached downwards from kind `from`. */
static const struct xp_iset *enter_key(struct an *A, const struct xp_iset *key, int from, int to)
{
    if (!A->addr) return to == K_TEXT ? xp_set_widen(A->a, key, 128) : key;
    if (to == K_TEXT || to == K_V6) return xp_set_widen(A->a, key, 128);
    if (is_o(to) || (to == K_FLOW && is_o(from))) return xp_set_and(A->a, key, v4_block(A));
    if (to == K_FLOW && (is_g(from) || from == K_V6))
        return xp_set_and(A->a, key, v6_space(A));
    return key;
}

/* ---- states ---- */

static struct st *sv_add(struct an *A, struct sv *v, const struct st *s)
{
    for (uint32_t i = 0; i < v->n; i++) {
        struct st *t = &v->s[i];
        if (t->kind == s->kind && t->owner == s->owner && t->attr == s->attr && t->rel == s->rel) {
            for (int f = 0; f < XP_FIELDS; f++) t->f[f] = xp_set_or(A->a, t->f[f], s->f[f]);
            return t;
        }
    }
    if (v->n == v->cap) {
        uint32_t cap = v->cap ? v->cap * 2 : 8;
        struct st *ns = xp_alloc(A->a, cap * sizeof *ns);
        if (v->n) memcpy(ns, v->s, v->n * sizeof *ns);
        v->s = ns;
        v->cap = cap;
    }
    v->s[v->n] = *s;
    return &v->s[v->n++];
}

static bool st_bottom(const struct st *s)
{
    for (int f = 0; f < XP_FIELDS; f++)
        if (xp_set_is_empty(s->f[f])) return true;
    return false;
}

/* A state for kind k with only the key constrained (non-flow fields reset). */
static void st_make(struct st *s, int kind, int rel, const struct xp_iset *key, int tank)
{
    memset(s, 0, sizeof *s);
    s->kind = (uint8_t)kind;
    s->rel = (uint8_t)rel;
    s->attr = A_NONE;
    s->f[tank] = key;
}

/* Every node of the document, unrelated to the context: what unknown
 * node-set expressions (variables, id(), extension functions) may give. */
static void sv_any(struct an *A, struct sv *out)
{
    struct st s;
    for (int k = 0; k < K_ATTR; k++)
        if (k == K_ROOT || k == K_TEXT || (closure(A, KB(K_ROOT), children) & KB(k))) {
            st_make(&s, k, R_OTHER, NULL, A->tank);
            sv_add(A, out, &s);
        }
    st_make(&s, K_ATTR, R_OTHER, NULL, A->tank);
    s.attr = A_OTHER;
    s.owner = K_FLOW;
    sv_add(A, out, &s);
}

static int rel_down(int rel) { return rel == R_SELF || rel == R_DESC ? R_DESC : R_OTHER; }
static int rel_up(int rel)
{
    switch (rel) {
    case R_SELF: case R_ANC: return R_ANC;
    case R_DESC: case R_VERT: return R_VERT;
    default: return R_OTHER;
    }
}

/* ---- node tests ---- */

static bool name_matches(const struct xp_step *s, const char *name)
{
    if (s->test == XT_ANY || s->test == XT_NODE) return true;
    if (s->test != XT_NAME || s->prefix.len) return false;
    return xp_str_eq(s->local, name);
}

static bool test_matches(const struct xp_step *s, int kind)
{
    if (kind == K_TEXT) return s->test == XT_NODE || s->test == XT_TEXT || s->test == XT_COMMENT || s->test == XT_PI;
    if (kind == K_ROOT) return s->test == XT_NODE;
    if (kind == K_NS) return s->test == XT_NODE || s->test == XT_ANY || (s->test == XT_NAME && !s->prefix.len);
    return is_element(kind) && name_matches(s, kind_names[kind]);
}

/* Attribute states of an element state e for the step's name test. */
static void add_attrs(struct an *A, const struct st *e, const struct xp_step *step, struct sv *out)
{
    if (!is_element(e->kind) || step->test == XT_TEXT || step->test == XT_COMMENT || step->test == XT_PI ||
        step->test == XT_NS_ANY || (step->test == XT_NAME && step->prefix.len))
        return;
    struct st s = *e;
    s.kind = K_ATTR;
    s.owner = e->kind;
    s.attr = A_OTHER;
    if (step->test == XT_NAME) {
        if (e->kind == K_FLOW) {
            int f = xp_field_find(step->local.s, step->local.len);
            if (f >= 0) {
                s.attr = (uint8_t)f;
                if (xp_field_optional(f)) {
                    s.f[f] = xp_set_and(A->a, s.f[f], xp_set_one(A->a, 0, xp_field_max(f)));
                    if (xp_set_is_empty(s.f[f])) return;
                }
            }
        } else if ((is_o(e->kind) || is_g(e->kind) || e->kind == K_P) && xp_str_eq(step->local, "v")) {
            s.attr = A_V;
        } else if (e->kind == K_TANK && xp_str_eq(step->local, "key")) {
            s.attr = A_KEY;
        }
    }
    sv_add(A, out, &s);
}

/* ---- steps ---- */

static void add_kind(struct an *A, const struct st *from, int kind, int rel, const struct xp_iset *key,
                     const struct xp_step *step, struct sv *out)
{
    if (!test_matches(step, kind)) return;
    struct st s;
    st_make(&s, kind, rel, key, A->tank);
    if (kind == K_NS) s.f[A->tank] = xp_set_widen(A->a, key, 128);
    if (xp_set_is_empty(s.f[A->tank])) return;
    (void)from;
    sv_add(A, out, &s);
}

static void step_down(struct an *A, const struct st *s, uint32_t kinds, const struct xp_step *step, struct sv *out)
{
    for (uint32_t m = kinds; m; m &= m - 1) {
        int k = __builtin_ctz(m);
        add_kind(A, s, k, rel_down(s->rel), enter_key(A, s->f[A->tank], s->kind, k), step, out);
    }
}

static void step_up(struct an *A, const struct st *s, uint32_t kinds, int rel, const struct xp_step *step,
                    struct sv *out)
{
    for (uint32_t m = kinds; m; m &= m - 1) {
        int k = __builtin_ctz(m);
        add_kind(A, s, k, rel, xp_set_widen(A->a, s->f[A->tank], xp_an_shift(A, k)), step, out);
    }
}

/* Moves one abstract node along an axis, keeping the nodes that pass the test. */
static void axis_move(struct an *A, const struct st *s, const struct xp_step *step, struct sv *out)
{
    int k = s->kind;
    bool attr_like = k == K_ATTR || k == K_NS;
    /* an attribute's or namespace node's parent is its element; treat the
     * element as the starting point for upward axes */
    struct st owner = *s;
    uint32_t up_from = 0;
    if (k == K_ATTR) {
        owner.kind = s->owner;
        owner.attr = A_NONE;
    }
    switch (step->axis) {
    case XA_SELF:
        if (attr_like ? step->test == XT_NODE : test_matches(step, k)) sv_add(A, out, s);
        return;
    case XA_CHILD:
        if (!attr_like) step_down(A, s, children(A, k), step, out);
        return;
    case XA_DESCENDANT:
    case XA_DESCENDANT_OR_SELF:
        if (step->axis == XA_DESCENDANT_OR_SELF && (attr_like ? step->test == XT_NODE : test_matches(step, k)))
            sv_add(A, out, s);
        if (!attr_like) step_down(A, s, closure(A, KB(k), children), step, out);
        return;
    case XA_PARENT:
    case XA_ANCESTOR:
    case XA_ANCESTOR_OR_SELF:
        if (step->axis == XA_ANCESTOR_OR_SELF && (attr_like ? step->test == XT_NODE : test_matches(step, k)))
            sv_add(A, out, s);
        if (k == K_NS) {
            /* the namespace node's element is not tracked: any element */
            struct st any = *s;
            any.f[A->tank] = NULL;
            any.rel = R_OTHER;
            uint32_t els = closure(A, KB(K_ROOT), children) & ~KB(K_TEXT);
            step_up(A, &any, step->axis == XA_PARENT ? els : els | KB(K_ROOT), R_OTHER, step, out);
            return;
        }
        if (k == K_ATTR) {
            /* the owner keeps the attribute's relation to the context */
            if (test_matches(step, owner.kind)) {
                struct st o = owner;
                for (int f = 0; f < XP_FIELDS; f++)
                    if (f != A->tank && o.kind != K_FLOW) o.f[f] = NULL;
                sv_add(A, out, &o);
            }
            if (step->axis == XA_PARENT) return;
            up_from = closure(A, KB(owner.kind), parents);
            step_up(A, &owner, up_from, rel_up(owner.rel), step, out);
            return;
        }
        up_from = step->axis == XA_PARENT ? parents(A, k) : closure(A, KB(k), parents);
        step_up(A, s, up_from, rel_up(s->rel), step, out);
        return;
    case XA_FOLLOWING_SIBLING:
    case XA_PRECEDING_SIBLING: {
        if (attr_like) return;
        uint32_t ps = parents(A, k);
        for (uint32_t m = ps; m; m &= m - 1) {
            int p = __builtin_ctz(m);
            struct st par;
            st_make(&par, p, R_OTHER, xp_set_widen(A->a, s->f[A->tank], xp_an_shift(A, p)), A->tank);
            for (uint32_t c = children(A, p); c; c &= c - 1) {
                int ck = __builtin_ctz(c);
                add_kind(A, &par, ck, R_OTHER, enter_key(A, par.f[A->tank], p, ck), step, out);
            }
        }
        return;
    }
    case XA_FOLLOWING:
    case XA_PRECEDING: {
        uint32_t all = closure(A, KB(K_ROOT), children);
        for (uint32_t m = all; m; m &= m - 1) add_kind(A, s, __builtin_ctz(m), R_OTHER, NULL, step, out);
        return;
    }
    case XA_ATTRIBUTE:
        add_attrs(A, s, step, out);
        return;
    case XA_NAMESPACE:
        if (is_element(k)) add_kind(A, s, K_NS, R_OTHER, NULL, step, out);
        return;
    }
}

static void filter_preds(struct an *A, struct sv *v, uint32_t npred, struct xp_node *const *preds)
{
    if (A->no_preds) return;
    for (uint32_t p = 0; p < npred; p++) {
        uint32_t m = 0;
        for (uint32_t i = 0; i < v->n; i++) {
            struct st *s = &v->s[i];
            struct pv *r = xp_an_pred(A, preds[p], s);
            struct st t = *s;
            for (int f = 0; f < XP_FIELDS; f++) t.f[f] = xp_set_and(A->a, t.f[f], r->may[f]);
            if (!st_bottom(&t)) v->s[m++] = t;
        }
        v->n = m;
    }
}

void xp_an_nodes(struct an *A, const struct xp_node *e, const struct st *ctx, struct sv *out)
{
    if (!A->no_preds && (--A->budget < 0 || A->a->total > XP_ANALYSIS_MEM)) {
        A->gave_up = true;
        sv_any(A, out);
        return;
    }
    switch (e->kind) {
    case XN_PATH: {
        struct sv cur = { 0 };
        if (e->u.path.base) {
            xp_an_nodes(A, e->u.path.base, ctx, &cur);
        } else if (e->u.path.absolute) {
            struct st r;
            st_make(&r, K_ROOT, R_ANC, NULL, A->tank);
            sv_add(A, &cur, &r);
        } else {
            struct st self = *ctx;
            self.rel = R_SELF;
            sv_add(A, &cur, &self);
        }
        for (uint32_t i = 0; i < e->u.path.nsteps && cur.n; i++) {
            const struct xp_step *step = &e->u.path.steps[i];
            struct sv next = { 0 };
            for (uint32_t j = 0; j < cur.n; j++) {
                const struct st *s = &cur.s[j];
                /* the single element child of the root is the tank, an
                 * ancestor of everything but the root */
                if (s->kind == K_ROOT && s->rel == R_ANC && step->axis == XA_CHILD) {
                    if (test_matches(step, K_TANK)) {
                        struct st t;
                        st_make(&t, K_TANK, R_ANC, NULL, A->tank);
                        sv_add(A, &next, &t);
                    }
                    continue;
                }
                axis_move(A, s, step, &next);
            }
            filter_preds(A, &next, step->npred, step->preds);
            cur = next;
        }
        for (uint32_t j = 0; j < cur.n; j++) sv_add(A, out, &cur.s[j]);
        return;
    }
    case XN_FILTER: {
        struct sv cur = { 0 };
        xp_an_nodes(A, e->u.filter.primary, ctx, &cur);
        filter_preds(A, &cur, e->u.filter.npred, e->u.filter.preds);
        for (uint32_t j = 0; j < cur.n; j++) sv_add(A, out, &cur.s[j]);
        return;
    }
    case XN_CHAIN:
        if (e->u.chain.level == 6) {
            for (uint32_t i = 0; i < e->u.chain.n; i++) xp_an_nodes(A, e->u.chain.opnd[i], ctx, out);
            return;
        }
        break;
    default:
        break;
    }
    sv_any(A, out);
}

/* ---- the top level ---- */

static void result_states(struct an *A, const struct xp_node *root, enum dip_xpath_shape shape, struct sv *out)
{
    struct st r;
    st_make(&r, K_ROOT, R_SELF, NULL, A->tank);
    switch (shape) {
    case DIP_XPATH_FLOWS:
        xp_an_nodes(A, root, &r, out);
        return;
    case DIP_XPATH_COUNT:
    case DIP_XPATH_SUM:
        xp_an_nodes(A, root->u.call.args[0], &r, out);
        return;
    case DIP_XPATH_BOOLEAN:
        xp_an_boolean_states(A, root, &r, out);
        return;
    case DIP_XPATH_GATHER:
        return;
    }
}

/* Are all abstract results flows (or, for sums and booleans, their attributes)? */
static bool states_fit(const struct sv *v, enum dip_xpath_shape shape)
{
    for (uint32_t i = 0; i < v->n; i++) {
        const struct st *s = &v->s[i];
        bool flow_attr = s->kind == K_ATTR && s->owner == K_FLOW;
        if (s->kind != K_FLOW && !(flow_attr && (shape == DIP_XPATH_SUM || shape == DIP_XPATH_BOOLEAN)))
            return false;
    }
    return true;
}

static void const_cleanup(void *p) { xp_an_const_free(p); }

void xp_analyse(struct xp_arena *a, const char *text, const struct xp_node *root, struct xp_analysis *out)
{
    struct an *A = xp_alloc(a, sizeof *A);
    A->a = a;
    A->text = text;
    a->cleanup = const_cleanup;
    a->cleanup_arg = A;
    out->shape = xp_an_shape(root);
    out->named_tank = xp_an_named_tank(root);
    for (int t = 0; t < DIP_XPATH_TANKS; t++) {
        A->tank = t;
        A->addr = t == XF_SRC || t == XF_DST;
        A->budget = 200000;
        struct xp_tank_result *res = &out->tank[t];
        for (int f = 0; f < XP_FIELDS; f++) res->f[f] = NULL;
        if (out->shape == DIP_XPATH_GATHER) continue;
        struct sv states = { 0 };
        A->gave_up = false;
        result_states(A, root, out->shape, &states);
        if (A->gave_up) {
            /* too costly to follow the predicates: check the kinds of the
             * result without them (predicates only remove nodes) */
            A->no_preds = true;
            states.n = 0;
            result_states(A, root, out->shape, &states);
            A->no_preds = false;
            for (uint32_t i = 0; i < states.n; i++)
                for (int f = 0; f < XP_FIELDS; f++) states.s[i].f[f] = NULL;
        }
        if (!states_fit(&states, out->shape)) {
            out->shape = DIP_XPATH_GATHER;
            break;
        }
        for (int f = 0; f < XP_FIELDS; f++) res->f[f] = &xp_empty;
        for (uint32_t i = 0; i < states.n; i++)
            for (int f = 0; f < XP_FIELDS; f++) res->f[f] = xp_set_or(a, res->f[f], states.s[i].f[f]);
        for (int f = 0; f < XP_FIELDS; f++)
            if (res->f[f] && xp_set_covers(f, res->f[f])) res->f[f] = NULL;
    }
    if (out->shape == DIP_XPATH_GATHER)
        for (int t = 0; t < DIP_XPATH_TANKS; t++)
            for (int f = 0; f < XP_FIELDS; f++) out->tank[t].f[f] = NULL;
}
