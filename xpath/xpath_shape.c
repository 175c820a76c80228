/* xpath_shape.c - the syntactic side of the analysis: which expressions
 * decompose over parts of a tank document (ARCHITECTURE 4: a flow's
 * membership depends on its ancestor chain only; counts, sums and or-able
 * booleans over such sets) and which name their tank. */
#include <string.h>

#include "xpath_an.h"

static const char *const tank_names[DIP_XPATH_TANKS] = { "src", "dst", "sport", "dport" };

/* Is e's value, at a context node, a function of that node's ancestor chain
 * (ancestors-or-self and their attributes) alone? allow_pos: position() and
 * last() refer to an axis within the chain; value: string values are used. */
static bool chain_local(const struct xp_node *e, bool allow_pos, bool value)
{
    switch (e->kind) {
    case XN_NUMBER: case XN_LITERAL: return true;
    case XN_VAR: case XN_FILTER: return false;
    case XN_NEG: return chain_local(e->u.neg.x, allow_pos, true);
    case XN_CHAIN:
        for (uint32_t i = 0; i < e->u.chain.n; i++) {
            int lv = e->u.chain.level;
            if (!chain_local(e->u.chain.opnd[i], allow_pos, lv == 6 ? value : lv >= 2)) return false;
        }
        return true;
    case XN_CALL: {
        uint32_t n = e->u.call.nargs;
        if (xp_an_call_type(e) == TY_UNKNOWN || xp_an_call_is(e, "id")) return false;
        if (xp_an_call_is(e, "position") || xp_an_call_is(e, "last")) return allow_pos;
        if (n == 0) /* string() and friends read the string value of the node */
            return !(xp_an_call_is(e, "string") || xp_an_call_is(e, "number") || xp_an_call_is(e, "string-length") ||
                     xp_an_call_is(e, "normalize-space"));
        bool by_existence = xp_an_call_is(e, "count") || xp_an_call_is(e, "boolean") || xp_an_call_is(e, "not") ||
                            xp_an_call_is(e, "name") || xp_an_call_is(e, "local-name") || xp_an_call_is(e, "namespace-uri");
        for (uint32_t i = 0; i < n; i++)
            if (!chain_local(e->u.call.args[i], allow_pos, !by_existence)) return false;
        return true;
    }
    case XN_PATH: {
        if (e->u.path.base) return false;
        uint32_t i = 0, n = e->u.path.nsteps;
        if (e->u.path.absolute) {
            if (n == 0) return !value;
            /* the root's only element child is the tank, on every chain */
            if (e->u.path.steps[0].axis != XA_CHILD && e->u.path.steps[0].axis != XA_SELF) return false;
        }
        for (; i < n; i++) {
            const struct xp_step *s = &e->u.path.steps[i];
            bool first_from_root = e->u.path.absolute && i == 0;
            if (!first_from_root && s->axis != XA_SELF && s->axis != XA_PARENT && s->axis != XA_ANCESTOR &&
                s->axis != XA_ANCESTOR_OR_SELF && s->axis != XA_ATTRIBUTE && s->axis != XA_NAMESPACE)
                return false;
            for (uint32_t k = 0; k < s->npred; k++)
                if (!chain_local(s->preds[k], true, false)) return false;
        }
        if (value) {
            if (n == 0) return false;
            int last = e->u.path.steps[n - 1].axis;
            return last == XA_ATTRIBUTE || last == XA_NAMESPACE;
        }
        return true;
    }
    }
    return false;
}

static bool local_pred(const struct xp_node *p)
{
    int t = xp_an_static_type(p);
    return (t == TY_BOOL || t == TY_NODESET || t == TY_STR) && chain_local(p, false, false);
}

/* A node-set reached from the root by downward steps whose predicates each
 * depend on the node's own chain: membership of a node depends on its chain. */
static bool downward_local(const struct xp_node *e)
{
    switch (e->kind) {
    case XN_PATH:
        if (e->u.path.base && !downward_local(e->u.path.base)) return false;
        for (uint32_t i = 0; i < e->u.path.nsteps; i++) {
            const struct xp_step *s = &e->u.path.steps[i];
            if (s->axis != XA_CHILD && s->axis != XA_DESCENDANT && s->axis != XA_DESCENDANT_OR_SELF &&
                s->axis != XA_SELF && s->axis != XA_ATTRIBUTE)
                return false;
            for (uint32_t k = 0; k < s->npred; k++)
                if (!local_pred(s->preds[k])) return false;
        }
        return true;
    case XN_FILTER:
        for (uint32_t k = 0; k < e->u.filter.npred; k++)
            if (!local_pred(e->u.filter.preds[k])) return false;
        return downward_local(e->u.filter.primary);
    case XN_CHAIN:
        if (e->u.chain.level != 6) return false;
        for (uint32_t i = 0; i < e->u.chain.n; i++)
            if (!downward_local(e->u.chain.opnd[i])) return false;
        return true;
    default:
        return false;
    }
}

static bool is_true_call(const struct xp_node *e) { return xp_an_call_is(e, "true") && e->u.call.nargs == 0; }
static bool is_false_call(const struct xp_node *e) { return xp_an_call_is(e, "false") && e->u.call.nargs == 0; }

/* F op C with F a local node-set and C a constant: the node-set side, or NULL. */
const struct xp_node *xp_an_existential(const struct xp_node *e, int *op, const struct xp_node **c)
{
    if (e->kind != XN_CHAIN || (e->u.chain.level != 2 && e->u.chain.level != 3) || e->u.chain.n != 2)
        return NULL;
    const struct xp_node *l = e->u.chain.opnd[0], *r = e->u.chain.opnd[1];
    *op = e->u.chain.ops[0];
    if (xp_an_is_const(l) && !xp_an_is_const(r)) {
        const struct xp_node *t = l;
        l = r;
        r = t;
        *op = xp_an_mirror(*op);
    }
    if (!xp_an_is_const(r) || !downward_local(l)) return NULL;
    if (xp_an_static_type(r) == TY_BOOL) {
        /* F = true() is boolean(F); other boolean comparisons do not merge by or */
        if (!((*op == XO_EQ && is_true_call(r)) || (*op == XO_NE && is_false_call(r)))) return NULL;
    } else if (xp_an_static_type(r) != TY_NUM && xp_an_static_type(r) != TY_STR) {
        return NULL;
    }
    *c = r;
    return l;
}

static bool boolean_shape(const struct xp_node *e)
{
    int op;
    const struct xp_node *c;
    if (e->kind == XN_CHAIN && e->u.chain.level == 0) {
        for (uint32_t i = 0; i < e->u.chain.n; i++)
            if (!boolean_shape(e->u.chain.opnd[i])) return false;
        return true;
    }
    if (xp_an_call_is(e, "boolean") && e->u.call.nargs == 1) return downward_local(e->u.call.args[0]);
    return xp_an_existential(e, &op, &c) != NULL;
}

enum dip_xpath_shape xp_an_shape(const struct xp_node *root)
{
    if (downward_local(root)) return DIP_XPATH_FLOWS;
    if (xp_an_call_is(root, "count") && root->u.call.nargs == 1 && downward_local(root->u.call.args[0]))
        return DIP_XPATH_COUNT;
    if (xp_an_call_is(root, "sum") && root->u.call.nargs == 1 && downward_local(root->u.call.args[0]))
        return DIP_XPATH_SUM;
    if (boolean_shape(root)) return DIP_XPATH_BOOLEAN;
    return DIP_XPATH_GATHER;
}

/* ---- tank names ---- */

static int key_literal(const struct xp_node *p)
{
    if (p->kind == XN_CHAIN && p->u.chain.level == 1) {
        for (uint32_t i = 0; i < p->u.chain.n; i++) {
            int t = key_literal(p->u.chain.opnd[i]);
            if (t >= 0) return t;
        }
        return -1;
    }
    if (p->kind != XN_CHAIN || p->u.chain.level != 2 || p->u.chain.n != 2 || p->u.chain.ops[0] != XO_EQ)
        return -1;
    const struct xp_node *l = p->u.chain.opnd[0], *r = p->u.chain.opnd[1];
    if (l->kind == XN_LITERAL) {
        const struct xp_node *t = l;
        l = r;
        r = t;
    }
    const struct xp_str *name;
    if (r->kind != XN_LITERAL || !xp_an_self_ref(l, &name) || !name || !xp_str_eq(*name, "key")) return -1;
    for (int t = 0; t < DIP_XPATH_TANKS; t++)
        if (xp_str_eq(r->u.lit, tank_names[t])) return t;
    return -1;
}

/* -2: no location path in e; -1: some path names no tank (or they differ). */
static int named(const struct xp_node *e)
{
    int acc = -2;
    const struct xp_node *const *kids = NULL;
    uint32_t nk = 0;
    switch (e->kind) {
    case XN_NUMBER: case XN_LITERAL: case XN_VAR: return -2;
    case XN_NEG: return named(e->u.neg.x);
    case XN_FILTER: return named(e->u.filter.primary);
    case XN_CALL: kids = (const struct xp_node *const *)e->u.call.args; nk = e->u.call.nargs; break;
    case XN_CHAIN: kids = (const struct xp_node *const *)e->u.chain.opnd; nk = e->u.chain.n; break;
    case XN_PATH: {
        if (e->u.path.base) return named(e->u.path.base);
        if (!e->u.path.nsteps) return -1;
        const struct xp_step *s = &e->u.path.steps[0];
        if (s->axis != XA_CHILD || s->test != XT_NAME || s->prefix.len || !xp_str_eq(s->local, "tank")) return -1;
        for (uint32_t i = 0; i < s->npred; i++) {
            int t = key_literal(s->preds[i]);
            if (t >= 0) return t;
        }
        return -1;
    }
    }
    for (uint32_t i = 0; i < nk; i++) {
        int t = named(kids[i]);
        if (t == -2) continue;
        if (t == -1 || (acc >= 0 && acc != t)) return -1;
        acc = t;
    }
    return acc;
}

int xp_an_named_tank(const struct xp_node *root)
{
    int t = named(root);
    return t >= 0 ? t : -1;
}
