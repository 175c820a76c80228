/* xpath_pred.c - predicates of the XPath analyser: XPath 1.0 comparison
 * rules (REC 3.4) on the attributes of the context node, and/or/not() with
 * may- and must-sets, starts-with(), constant folding (libxml2 evaluates
 * context-free subexpressions, so constants mean exactly what the evaluator
 * will compute) and static types. */
#include <libxml/parser.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "xpath_an.h"


enum { M_NODESET, M_STRING, M_NUMBER };

struct cval {
    int type;
    double num;
    bool exact; /* num is the double the evaluator computes */
    bool b;
    const char *s; /* NUL-terminated */
    size_t len;
};

static const char *const tank_names[DIP_XPATH_TANKS] = { "src", "dst", "sport", "dport" };

/* ---- static types ---- */

bool xp_an_call_is(const struct xp_node *e, const char *name)
{
    return e->kind == XN_CALL && e->u.call.prefix.len == 0 && xp_str_eq(e->u.call.local, name);
}

int xp_an_call_type(const struct xp_node *e)
{
    static const char *const nums[] = { "last", "position", "count", "string-length", "number", "sum",
                                        "floor", "ceiling", "round" };
    static const char *const strs[] = { "string", "concat", "substring", "substring-before", "substring-after",
                                        "normalize-space", "translate", "local-name", "namespace-uri", "name" };
    static const char *const bools[] = { "boolean", "not", "true", "false", "lang", "starts-with", "contains" };
    if (e->u.call.prefix.len) return TY_UNKNOWN;
    for (size_t i = 0; i < sizeof nums / sizeof *nums; i++) if (xp_an_call_is(e, nums[i])) return TY_NUM;
    for (size_t i = 0; i < sizeof strs / sizeof *strs; i++) if (xp_an_call_is(e, strs[i])) return TY_STR;
    for (size_t i = 0; i < sizeof bools / sizeof *bools; i++) if (xp_an_call_is(e, bools[i])) return TY_BOOL;
    if (xp_an_call_is(e, "id")) return TY_NODESET;
    return TY_UNKNOWN;
}

int xp_an_static_type(const struct xp_node *e)
{
    switch (e->kind) {
    case XN_NUMBER: case XN_NEG: return TY_NUM;
    case XN_LITERAL: return TY_STR;
    case XN_VAR: return TY_UNKNOWN;
    case XN_PATH: case XN_FILTER: return TY_NODESET;
    case XN_CALL: return xp_an_call_type(e);
    case XN_CHAIN: return e->u.chain.level <= 3 ? TY_BOOL : e->u.chain.level == 6 ? TY_NODESET : TY_NUM;
    }
    return TY_UNKNOWN;
}

/* ---- constants ---- */

/* Context-free: no paths, variables or context functions; arity as the REC. */
bool xp_an_is_const(const struct xp_node *e)
{
    switch (e->kind) {
    case XN_NUMBER: case XN_LITERAL: return true;
    case XN_NEG: return xp_an_is_const(e->u.neg.x);
    case XN_CHAIN:
        if (e->u.chain.level == 6) return false;
        for (uint32_t i = 0; i < e->u.chain.n; i++)
            if (!xp_an_is_const(e->u.chain.opnd[i])) return false;
        return true;
    case XN_CALL: {
        static const struct { const char *name; uint8_t lo, hi; } fns[] = {
            { "true", 0, 0 }, { "false", 0, 0 }, { "not", 1, 1 }, { "boolean", 1, 1 }, { "number", 1, 1 },
            { "string", 1, 1 }, { "string-length", 1, 1 }, { "normalize-space", 1, 1 }, { "floor", 1, 1 },
            { "ceiling", 1, 1 }, { "round", 1, 1 }, { "concat", 2, 255 }, { "substring", 2, 3 },
            { "substring-before", 2, 2 }, { "substring-after", 2, 2 }, { "starts-with", 2, 2 },
            { "contains", 2, 2 }, { "translate", 3, 3 },
        };
        uint32_t n = e->u.call.nargs;
        bool known = false;
        for (size_t i = 0; i < sizeof fns / sizeof *fns && !known; i++)
            known = xp_an_call_is(e, fns[i].name) && n >= fns[i].lo && n <= fns[i].hi;
        if (!known) return false;
        for (uint32_t i = 0; i < n; i++)
            if (!xp_an_is_const(e->u.call.args[i])) return false;
        return true;
    }
    default: return false;
    }
}

static void silent(void *ctx, xmlErrorPtr err) { (void)ctx; (void)err; }

void xp_an_const_free(struct an *A)
{
    if (A->xctx) xmlXPathFreeContext(A->xctx);
    if (A->doc) xmlFreeDoc(A->doc);
    A->xctx = NULL;
    A->doc = NULL;
}

static char *arena_strndup(struct an *A, const char *s, size_t n)
{
    char *d = xp_alloc(A->a, n + 1);
    memcpy(d, s, n);
    return d;
}

/* Evaluates a context-free subexpression with libxml2 itself. */
static bool libxml_eval(struct an *A, const struct xp_node *e, struct cval *out)
{
    if (!A->xctx) {
        A->doc = xmlNewDoc(BAD_CAST "1.0");
        if (!A->doc) return false;
        A->xctx = xmlXPathNewContext(A->doc);
        if (!A->xctx) return false;
        A->xctx->error = silent;
        A->xctx->node = (xmlNodePtr)A->doc;
    }
    char *src = arena_strndup(A, A->text + e->pos, e->end - e->pos);
    xmlXPathObjectPtr r = xmlXPathEval(BAD_CAST src, A->xctx);
    if (!r) return false;
    bool ok = true;
    memset(out, 0, sizeof *out);
    out->exact = true;
    switch (r->type) {
    case XPATH_BOOLEAN: out->type = TY_BOOL; out->b = r->boolval != 0; break;
    case XPATH_NUMBER: out->type = TY_NUM; out->num = r->floatval; break;
    case XPATH_STRING:
        out->type = TY_STR;
        out->len = strlen((const char *)r->stringval);
        out->s = arena_strndup(A, (const char *)r->stringval, out->len);
        break;
    default: ok = false;
    }
    xmlXPathFreeObject(r);
    return ok;
}

static bool const_eval(struct an *A, const struct xp_node *e, struct cval *out)
{
    if (!xp_an_is_const(e)) return false;
    memset(out, 0, sizeof *out);
    switch (e->kind) {
    case XN_LITERAL:
        out->type = TY_STR;
        out->len = e->u.lit.len;
        out->s = arena_strndup(A, e->u.lit.s, e->u.lit.len);
        return true;
    case XN_NUMBER:
        out->type = TY_NUM;
        out->num = e->u.num.value;
        out->exact = e->u.num.simple;
        if (out->exact || libxml_eval(A, e, out)) return true;
        out->type = TY_NUM;
        out->num = e->u.num.value;
        out->exact = false;
        return true;
    case XN_CALL:
        if (xp_an_call_is(e, "true") || xp_an_call_is(e, "false")) {
            out->type = TY_BOOL;
            out->b = xp_an_call_is(e, "true");
            return true;
        }
        return libxml_eval(A, e, out);
    default:
        return libxml_eval(A, e, out);
    }
}

static double c_num(const struct cval *c)
{
    switch (c->type) {
    case TY_NUM: return c->num;
    case TY_BOOL: return c->b ? 1 : 0;
    case TY_STR: return xmlXPathStringEvalNumber(BAD_CAST c->s);
    }
    return NAN;
}

static bool c_bool(const struct cval *c)
{
    switch (c->type) {
    case TY_NUM: return c->num != 0 && !isnan(c->num);
    case TY_BOOL: return c->b;
    case TY_STR: return c->len > 0;
    }
    return false;
}

static bool num_op(int op, double x, double y)
{
    switch (op) {
    case XO_EQ: return x == y;
    case XO_NE: return x != y;
    case XO_LT: return x < y;
    case XO_LE: return x <= y;
    case XO_GT: return x > y;
    case XO_GE: return x >= y;
    }
    return false;
}

/* Comparison of two non-node-set values (REC 3.4). */
static bool const_cmp(int op, const struct cval *x, const struct cval *y)
{
    if (op == XO_EQ || op == XO_NE) {
        bool eq;
        if (x->type == TY_BOOL || y->type == TY_BOOL) eq = c_bool(x) == c_bool(y);
        else if (x->type == TY_NUM || y->type == TY_NUM) return num_op(op, c_num(x), c_num(y));
        else eq = x->len == y->len && memcmp(x->s, y->s, x->len) == 0;
        return op == XO_EQ ? eq : !eq;
    }
    return num_op(op, c_num(x), c_num(y));
}

static struct cval c_str(const char *s)
{
    struct cval c = { .type = TY_STR, .s = s, .len = strlen(s), .exact = true };
    return c;
}
static struct cval c_nan(void)
{
    struct cval c = { .type = TY_NUM, .num = NAN, .exact = true };
    return c;
}

/* ---- predicate values ---- */

static struct pv *pv_unknown(struct an *A, const struct st *ctx)
{
    struct pv *p = xp_alloc(A->a, sizeof *p);
    for (int f = 0; f < XP_FIELDS; f++) {
        p->may[f] = ctx->f[f];
        p->must[f] = &xp_empty;
    }
    return p;
}

static struct pv *pv_const(struct an *A, const struct st *ctx, bool b)
{
    struct pv *p = xp_alloc(A->a, sizeof *p);
    for (int f = 0; f < XP_FIELDS; f++) p->may[f] = p->must[f] = b ? ctx->f[f] : &xp_empty;
    return p;
}

static void pv_smash(struct pv *p)
{
    for (int f = 0; f < XP_FIELDS; f++)
        if (xp_set_is_empty(p->may[f])) {
            for (int g = 0; g < XP_FIELDS; g++) p->may[g] = p->must[g] = &xp_empty;
            return;
        }
}

/* The predicate "field f has a value in may_set (surely if in must_set)". */
static struct pv *pv_field(struct an *A, const struct st *ctx, int f, const struct xp_iset *may_set,
                           const struct xp_iset *must_set)
{
    struct pv *p = pv_unknown(A, ctx);
    p->may[f] = xp_set_and(A->a, ctx->f[f], may_set);
    p->must[f] = xp_set_and(A->a, ctx->f[f], must_set);
    pv_smash(p);
    return p;
}

static struct pv *pv_not(struct an *A, const struct st *ctx, const struct pv *x)
{
    struct pv *p = xp_alloc(A->a, sizeof *p);
    for (int f = 0; f < XP_FIELDS; f++) {
        p->may[f] = xp_set_minus(A->a, f, ctx->f[f], x->must[f]);
        p->must[f] = xp_set_minus(A->a, f, ctx->f[f], x->may[f]);
    }
    pv_smash(p);
    return p;
}

static void pv_combine(struct an *A, struct pv *acc, const struct pv *x, bool and)
{
    for (int f = 0; f < XP_FIELDS; f++) {
        if (and) {
            acc->may[f] = xp_set_and(A->a, acc->may[f], x->may[f]);
            acc->must[f] = xp_set_and(A->a, acc->must[f], x->must[f]);
        } else {
            acc->may[f] = xp_set_or(A->a, acc->may[f], x->may[f]);
            acc->must[f] = xp_set_or(A->a, acc->must[f], x->must[f]);
        }
    }
    if (and) pv_smash(acc);
}

/* ---- the value of the context node or of one of its attributes ---- */

enum { E_FIELD, E_V, E_KEY, E_EMPTY, E_ABSENT, E_UNKNOWN };

struct extractor {
    int kind;
    int field;      /* E_FIELD: the field; E_V: the tank key */
    int owner;      /* E_V: the index element kind */
    bool maybe_absent;
};

/* `name` NULL: the context node itself. */
static struct extractor resolve(const struct an *A, const struct st *ctx, const struct xp_str *name)
{
    struct extractor x = { E_UNKNOWN, -1, 0, false };
    int k = ctx->kind;
    if (!name) {
        if (k == K_FLOW) x.kind = E_EMPTY; /* flows are empty elements */
        if (k != K_ATTR) return x;
        if (ctx->attr < XP_FIELDS) { x.kind = E_FIELD; x.field = ctx->attr; }
        else if (ctx->attr == A_V) { x.kind = E_V; x.field = A->tank; x.owner = ctx->owner; }
        else if (ctx->attr == A_KEY) x.kind = E_KEY;
        return x;
    }
    if (k == K_ROOT || k == K_TEXT || k == K_NS || k == K_ATTR) {
        x.kind = E_ABSENT;
    } else if (k == K_FLOW) {
        int f = xp_field_find(name->s, name->len);
        if (f >= 0) { x.kind = E_FIELD; x.field = f; x.maybe_absent = xp_field_optional(f); }
    } else if (k == K_TANK) {
        if (xp_str_eq(*name, "key")) x.kind = E_KEY;
    } else if (k != K_V6 && xp_str_eq(*name, "v")) {
        x.kind = E_V;
        x.field = A->tank;
        x.owner = k;
    }
    return x;
}

static bool is_addr_field(int f) { return f == XF_SRC || f == XF_DST; }

/* For E_V: where the element's value sits in the key, and its maximum. */
static void v_layout(const struct an *A, int owner, int *pos, int *width, u128i *max)
{
    if (!A->addr) { *pos = 0; *width = 128; *max = 65535; return; }
    if (owner >= K_O0 && owner <= K_O3) { *pos = 8 * (3 - (owner - K_O0)); *width = 8; *max = 255; return; }
    *pos = 16 * (7 - (owner - K_G0));
    *width = 16;
    *max = 65535;
}

/* Is s the decimal text the store writes for a number <= max? */
static bool canonical_decimal(const char *s, size_t len, u128i max, u128i *v)
{
    if (len == 0 || len > 39 || (s[0] == '0' && len > 1)) return false;
    u128i x = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9' || x > max / 10) return false;
        x = x * 10 + (u128i)(s[i] - '0');
    }
    *v = x;
    return x <= max;
}

/* The values v (of a numeric or address value space [0, max]) for which
 * `text(v) op C` holds, as may- and must-sets. */
static void value_sets(struct an *A, bool addr, u128i max, int op, const struct cval *C, int mode,
                       const struct xp_iset **may, const struct xp_iset **must)
{
    const struct xp_iset *all = xp_set_one(A->a, 0, max);
    bool string_eq = mode != M_NUMBER && (op == XO_EQ || op == XO_NE) && C->type == TY_STR;
    if (!string_eq && addr) { /* number("10.0.0.1") is NaN: only != holds */
        *may = *must = op == XO_NE ? all : &xp_empty;
        return;
    }
    if (!string_eq) {
        double c = c_num(C);
        xp_num_cmp(A->a, op, c, C->type != TY_NUM || C->exact, max, may, must);
        return;
    }
    const struct xp_iset *eq_may = &xp_empty, *eq_must = &xp_empty;
    u128i v;
    bool canonical;
    if (addr) {
        if (xp_addr_parse(C->s, C->len, &v, &canonical)) {
            eq_may = xp_set_one(A->a, v, v);
            if (canonical) eq_must = eq_may;
        }
    } else if (canonical_decimal(C->s, C->len, max, &v)) {
        eq_may = eq_must = xp_set_one(A->a, v, v);
    }
    if (op == XO_EQ) {
        *may = eq_may;
        *must = eq_must;
    } else {
        *may = xp_set_minus(A->a, XF_SRC, all, eq_must);
        *must = xp_set_minus(A->a, XF_SRC, all, eq_may);
    }
}

/* Turns value-space sets of an extractor into a predicate on the context. */
static struct pv *extracted(struct an *A, const struct st *ctx, const struct extractor *x,
                            const struct xp_iset *vmay, const struct xp_iset *vmust, bool absent_true)
{
    if (x->kind == E_V) {
        int pos, width;
        u128i max;
        v_layout(A, x->owner, &pos, &width, &max);
        const struct xp_iset *key = ctx->f[A->tank];
        if (width == 128)
            return pv_field(A, ctx, A->tank, vmay, vmust);
        return pv_field(A, ctx, A->tank, xp_set_lift(A->a, key, pos, width, vmay, true),
                        xp_set_lift(A->a, key, pos, width, vmust, false));
    }
    if (absent_true && x->maybe_absent) {
        const struct xp_iset *ab = xp_set_one(A->a, XP_ABSENT, XP_ABSENT);
        vmay = xp_set_or(A->a, vmay, ab);
        vmust = xp_set_or(A->a, vmust, ab);
    }
    return pv_field(A, ctx, x->field, vmay, vmust);
}

/* `value op C` for the value of the context node or of its attribute `name`,
 * converted by mode (M_NODESET: a missing attribute makes it false). */
static struct pv *self_cmp(struct an *A, const struct st *ctx, const struct xp_str *name, int op,
                           const struct cval *C, int mode)
{
    struct extractor x = resolve(A, ctx, name);
    struct cval absent = mode == M_NUMBER ? c_nan() : c_str("");
    switch (x.kind) {
    case E_UNKNOWN: return pv_unknown(A, ctx);
    case E_ABSENT: return pv_const(A, ctx, mode != M_NODESET && const_cmp(op, &absent, C));
    case E_EMPTY: {
        struct cval empty = mode == M_NUMBER ? c_nan() : c_str("");
        return pv_const(A, ctx, const_cmp(op, &empty, C));
    }
    case E_KEY: {
        struct cval key = mode == M_NUMBER ? c_nan() : c_str(tank_names[A->tank]);
        return pv_const(A, ctx, const_cmp(op, &key, C));
    }
    default: break;
    }
    const struct xp_iset *vmay, *vmust;
    if (x.kind == E_V) {
        int pos, width;
        u128i max;
        v_layout(A, x.owner, &pos, &width, &max);
        value_sets(A, false, max, op, C, mode, &vmay, &vmust);
    } else {
        value_sets(A, is_addr_field(x.field), xp_field_max(x.field), op, C, mode, &vmay, &vmust);
    }
    return extracted(A, ctx, &x, vmay, vmust, mode != M_NODESET && const_cmp(op, &absent, C));
}

/* starts-with(value, P) on the value of the context node or its attribute. */
static struct pv *self_starts(struct an *A, const struct st *ctx, const struct xp_str *name, const char *P,
                              size_t plen)
{
    struct extractor x = resolve(A, ctx, name);
    switch (x.kind) {
    case E_UNKNOWN: return pv_unknown(A, ctx);
    case E_ABSENT: case E_EMPTY: return pv_const(A, ctx, plen == 0);
    case E_KEY: return pv_const(A, ctx, strncmp(tank_names[A->tank], P, plen) == 0 && strlen(tank_names[A->tank]) >= plen);
    default: break;
    }
    const struct xp_iset *vmay, *vmust;
    if (x.kind == E_V) {
        int pos, width;
        u128i max;
        v_layout(A, x.owner, &pos, &width, &max);
        vmay = vmust = xp_set_decimal_prefix(A->a, P, plen, max);
    } else if (is_addr_field(x.field)) {
        vmay = plen ? xp_set_addr_prefix(A->a, P, plen, &vmust) : NULL;
        if (!plen) vmust = NULL;
    } else {
        vmay = vmust = xp_set_decimal_prefix(A->a, P, plen, xp_field_max(x.field));
    }
    return extracted(A, ctx, &x, vmay, vmust, plen == 0);
}

/* Does e denote, from the context node, exactly that node (self::node()
 * steps) or its attribute *name (one attribute step)? */
bool xp_an_self_ref(const struct xp_node *e, const struct xp_str **name)
{
    if (e->kind != XN_PATH || e->u.path.base || e->u.path.absolute || !e->u.path.nsteps) return false;
    uint32_t n = e->u.path.nsteps;
    for (uint32_t i = 0; i < n; i++) {
        const struct xp_step *s = &e->u.path.steps[i];
        if (s->npred) return false;
        if (s->axis == XA_SELF && s->test == XT_NODE) continue;
        if (i == n - 1 && s->axis == XA_ATTRIBUTE && s->test == XT_NAME && !s->prefix.len) {
            *name = &s->local;
            return true;
        }
        return false;
    }
    *name = NULL;
    return true;
}

/* string(X) / number(X) / string() / number() around a self reference. */
static bool converted_self_ref(const struct xp_node *e, const struct xp_str **name, int *mode)
{
    if (!xp_an_call_is(e, "string") && !xp_an_call_is(e, "number")) return false;
    *mode = xp_an_call_is(e, "string") ? M_STRING : M_NUMBER;
    if (e->u.call.nargs == 0) {
        *name = NULL;
        return true;
    }
    return e->u.call.nargs == 1 && xp_an_self_ref(e->u.call.args[0], name);
}

/* What the existence of nodes `v` (found from ctx, with their own
 * constraints) says about ctx: by their relation to it. */
static struct pv *map_back(struct an *A, const struct st *ctx, const struct sv *v)
{
    struct pv *p = pv_const(A, ctx, false);
    int kind = ctx->kind == K_ATTR ? ctx->owner : ctx->kind;
    for (uint32_t i = 0; i < v->n; i++) {
        const struct st *s = &v->s[i];
        for (int f = 0; f < XP_FIELDS; f++) {
            const struct xp_iset *c = ctx->f[f];
            if (s->rel == R_SELF) c = s->f[f];
            else if (f == A->tank && s->rel != R_OTHER)
                c = xp_set_and(A->a, c, xp_set_widen(A->a, s->f[f], xp_an_shift(A, kind)));
            p->may[f] = xp_set_or(A->a, p->may[f], c);
        }
    }
    pv_smash(p);
    return p;
}

/* Keeps, of the nodes v, those whose own value can satisfy `value op C`. */
static void filter_cmp(struct an *A, struct sv *v, int op, const struct cval *C)
{
    uint32_t m = 0;
    for (uint32_t i = 0; i < v->n; i++) {
        struct pv *r = self_cmp(A, &v->s[i], NULL, op, C, M_NODESET);
        struct st t = v->s[i];
        bool bottom = false;
        for (int f = 0; f < XP_FIELDS; f++) {
            t.f[f] = xp_set_and(A->a, t.f[f], r->may[f]);
            bottom |= xp_set_is_empty(t.f[f]);
        }
        if (!bottom) v->s[m++] = t;
    }
    v->n = m;
}

static struct pv *exists(struct an *A, const struct xp_node *e, const struct st *ctx)
{
    const struct xp_str *name;
    if (xp_an_self_ref(e, &name)) {
        if (!name) return pv_const(A, ctx, true);
        struct extractor x = resolve(A, ctx, name);
        switch (x.kind) {
        case E_ABSENT: return pv_const(A, ctx, false);
        case E_UNKNOWN: return pv_unknown(A, ctx);
        case E_FIELD:
            if (x.maybe_absent) {
                const struct xp_iset *present = xp_set_one(A->a, 0, xp_field_max(x.field));
                return pv_field(A, ctx, x.field, present, present);
            }
            return pv_const(A, ctx, true);
        default: return pv_const(A, ctx, true);
        }
    }
    struct sv v = { 0 };
    xp_an_nodes(A, e, ctx, &v);
    return map_back(A, ctx, &v);
}

int xp_an_mirror(int op)
{
    switch (op) {
    case XO_LT: return XO_GT;
    case XO_LE: return XO_GE;
    case XO_GT: return XO_LT;
    case XO_GE: return XO_LE;
    }
    return op;
}

static struct pv *compare(struct an *A, int op, const struct xp_node *l, const struct xp_node *r,
                          const struct st *ctx)
{
    struct cval C;
    if (const_eval(A, l, &C)) {
        const struct xp_node *t = l;
        l = r;
        r = t;
        op = xp_an_mirror(op);
    } else if (!const_eval(A, r, &C)) {
        return pv_unknown(A, ctx);
    }
    int t = xp_an_static_type(l);
    if (C.type == TY_BOOL || t == TY_BOOL) {
        /* both sides become booleans (REC 3.4) */
        if (op != XO_EQ && op != XO_NE) return pv_unknown(A, ctx);
        struct pv *b = xp_an_pred(A, l, ctx);
        return (op == XO_EQ) == c_bool(&C) ? b : pv_not(A, ctx, b);
    }
    const struct xp_str *name;
    int mode;
    if (t == TY_NODESET) {
        if (xp_an_self_ref(l, &name)) return self_cmp(A, ctx, name, op, &C, M_NODESET);
        struct sv v = { 0 };
        xp_an_nodes(A, l, ctx, &v);
        filter_cmp(A, &v, op, &C);
        return map_back(A, ctx, &v);
    }
    if (converted_self_ref(l, &name, &mode)) return self_cmp(A, ctx, name, op, &C, mode);
    return pv_unknown(A, ctx);
}

static struct pv *starts_with(struct an *A, const struct xp_node *e, const struct st *ctx)
{
    struct cval C;
    if (e->u.call.nargs != 2 || !const_eval(A, e->u.call.args[1], &C)) return pv_unknown(A, ctx);
    const char *P;
    if (C.type == TY_STR) P = C.s;
    else if (C.type == TY_BOOL) P = C.b ? "true" : "false";
    else {
        xmlChar *s = xmlXPathCastNumberToString(C.num);
        if (!s) return pv_unknown(A, ctx);
        P = arena_strndup(A, (const char *)s, strlen((const char *)s));
        xmlFree(s);
    }
    const struct xp_str *name;
    int mode;
    const struct xp_node *a = e->u.call.args[0];
    if (xp_an_self_ref(a, &name) || (converted_self_ref(a, &name, &mode) && mode == M_STRING))
        return self_starts(A, ctx, name, P, strlen(P));
    return pv_unknown(A, ctx);
}

struct pv *xp_an_pred(struct an *A, const struct xp_node *e, const struct st *ctx)
{
    if (--A->budget < 0 || A->a->total > XP_ANALYSIS_MEM) return pv_unknown(A, ctx);
    struct cval C;
    if (const_eval(A, e, &C)) /* a number in a predicate is a position */
        return C.type == TY_NUM ? pv_unknown(A, ctx) : pv_const(A, ctx, c_bool(&C));
    switch (e->kind) {
    case XN_CHAIN: {
        int level = e->u.chain.level;
        if (level <= 1) {
            struct pv *acc = xp_an_pred(A, e->u.chain.opnd[0], ctx);
            for (uint32_t i = 1; i < e->u.chain.n; i++) {
                struct pv *x = xp_an_pred(A, e->u.chain.opnd[i], ctx);
                pv_combine(A, acc, x, level == 1);
            }
            return acc;
        }
        if ((level == 2 || level == 3) && e->u.chain.n == 2)
            return compare(A, e->u.chain.ops[0], e->u.chain.opnd[0], e->u.chain.opnd[1], ctx);
        if (level == 6) return exists(A, e, ctx);
        return pv_unknown(A, ctx);
    }
    case XN_PATH:
    case XN_FILTER:
        return exists(A, e, ctx);
    case XN_CALL:
        if (xp_an_call_is(e, "not") && e->u.call.nargs == 1)
            return pv_not(A, ctx, xp_an_pred(A, e->u.call.args[0], ctx));
        if (xp_an_call_is(e, "boolean") && e->u.call.nargs == 1) {
            const struct xp_node *x = e->u.call.args[0];
            int t = xp_an_static_type(x);
            return t == TY_NODESET || t == TY_BOOL ? xp_an_pred(A, x, ctx) : pv_unknown(A, ctx);
        }
        if (xp_an_call_is(e, "starts-with")) return starts_with(A, e, ctx);
        if (xp_an_static_type(e) == TY_NODESET) return exists(A, e, ctx);
        return pv_unknown(A, ctx);
    default:
        return pv_unknown(A, ctx);
    }
}

/* ---- booleans that or-merge: the flows that can make them true ---- */

void xp_an_boolean_states(struct an *A, const struct xp_node *e, const struct st *ctx, struct sv *out)
{
    int op;
    const struct xp_node *c;
    if (e->kind == XN_CHAIN && e->u.chain.level == 0) {
        for (uint32_t i = 0; i < e->u.chain.n; i++) xp_an_boolean_states(A, e->u.chain.opnd[i], ctx, out);
        return;
    }
    if (xp_an_call_is(e, "boolean")) {
        xp_an_nodes(A, e->u.call.args[0], ctx, out);
        return;
    }
    const struct xp_node *F = xp_an_existential(e, &op, &c);
    struct sv v = { 0 };
    xp_an_nodes(A, F, ctx, &v);
    struct cval C;
    if (xp_an_static_type(c) != TY_BOOL && const_eval(A, c, &C)) filter_cmp(A, &v, op, &C);
    for (uint32_t i = 0; i < v.n; i++) {
        if (out->n == out->cap) {
            uint32_t cap = out->cap ? out->cap * 2 : 8;
            struct st *ns = xp_alloc(A->a, cap * sizeof *ns);
            if (out->n) memcpy(ns, out->s, out->n * sizeof *ns);
            out->s = ns;
            out->cap = cap;
        }
        out->s[out->n++] = v.s[i];
    }
}
