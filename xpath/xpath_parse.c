/* xpath_parse.c - the XPath 1.0 lexer and parser (W3C REC xpath-19991116,
 * sections 2-3): untrusted text to a syntax tree with byte positions.
 *
 * Lexing follows the REC's disambiguation rules (3.7). Binary operators are
 * parsed with an explicit operator stack and location steps with a loop, so
 * recursion happens only for '(', '[' and function arguments, and is bounded
 * by DIP_XPATH_MAX_DEPTH. */
#include "xpath_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

enum tok_type {
    TK_EOF, TK_LPAREN, TK_RPAREN, TK_LBRACK, TK_RBRACK, TK_DOT, TK_DOTDOT, TK_AT, TK_COMMA,
    TK_COLONCOLON, TK_NAMETEST, TK_NODETYPE, TK_OPERATOR, TK_FUNCNAME, TK_AXISNAME,
    TK_LITERAL, TK_NUMBER, TK_VARREF,
};

/* Operator tokens: the chain operators of enum xp_op plus the path ones. */
enum { OPT_SLASH = 100, OPT_DSLASH, OPT_MINUS_OR_SUB };

struct token {
    uint8_t type;
    uint8_t op;        /* TK_OPERATOR: enum xp_op or OPT_*; TK_NAMETEST: enum xp_test */
    uint8_t axis;      /* TK_AXISNAME */
    uint32_t pos, end;
    struct xp_str prefix, local; /* names; literal body in local */
    double num;
    bool simple;
};

struct parser {
    struct xp_arena *a;
    const char *text;
    size_t len;
    struct token *tok;
    size_t ntok, i;
    int depth;
    struct dip_xpath_error *err;
    jmp_buf fail;
    int code;
};

static const char *const axis_names[XP_AXES] = {
    "ancestor", "ancestor-or-self", "attribute", "child", "descendant", "descendant-or-self",
    "following", "following-sibling", "namespace", "parent", "preceding", "preceding-sibling", "self",
};

const char *xp_axis_name(int axis) { return axis >= 0 && axis < XP_AXES ? axis_names[axis] : "?"; }

bool xp_str_eq(struct xp_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && memcmp(s.s, lit, n) == 0;
}

/* 1-based column in characters (UTF-8 continuation bytes do not count). */
static size_t column_of(const char *text, size_t len, size_t pos)
{
    size_t col = 1;
    for (size_t i = 0; i < pos && i < len; i++)
        if (((unsigned char)text[i] & 0xc0) != 0x80) col++;
    return col;
}

__attribute__((noreturn, format(printf, 4, 5)))
static void fail(struct parser *p, int code, size_t pos, const char *fmt, ...)
{
    if (p->err) {
        p->err->column = column_of(p->text, p->len, pos);
        int n = snprintf(p->err->message, sizeof p->err->message, "column %zu: ", p->err->column);
        va_list ap;
        va_start(ap, fmt);
        if (n > 0 && (size_t)n < sizeof p->err->message)
            vsnprintf(p->err->message + n, sizeof p->err->message - (size_t)n, fmt, ap);
        va_end(ap);
    }
    p->code = code;
    longjmp(p->fail, 1);
}

/* ---- lexer ---- */

static bool is_ws(int c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
static bool is_digit(int c) { return c >= '0' && c <= '9'; }
/* NCName characters; bytes >= 0x80 are taken as letters (UTF-8). */
static bool is_name_start(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80; }
static bool is_name_char(int c) { return is_name_start(c) || is_digit(c) || c == '-' || c == '.'; }

static size_t skip_ws(const struct parser *p, size_t i)
{
    while (i < p->len && is_ws((unsigned char)p->text[i])) i++;
    return i;
}

static size_t scan_ncname(const struct parser *p, size_t i)
{
    if (i >= p->len || !is_name_start((unsigned char)p->text[i])) return i;
    i++;
    while (i < p->len && is_name_char((unsigned char)p->text[i])) i++;
    return i;
}

/* The REC's rule 1: does the previous token let `*` / a name be an operand? */
static bool operand_may_follow(const struct parser *p)
{
    if (p->ntok == 0) return true;
    const struct token *t = &p->tok[p->ntok - 1];
    return t->type == TK_AT || t->type == TK_COLONCOLON || t->type == TK_LPAREN ||
           t->type == TK_LBRACK || t->type == TK_COMMA || t->type == TK_OPERATOR;
}

static int axis_lookup(struct xp_str s)
{
    for (int i = 0; i < XP_AXES; i++)
        if (xp_str_eq(s, axis_names[i])) return i;
    return -1;
}

static void lex_number(struct parser *p, struct token *t, size_t i)
{
    size_t start = i, digits = 0;
    bool frac = false;
    while (i < p->len && is_digit((unsigned char)p->text[i])) i++, digits++;
    if (i < p->len && p->text[i] == '.') {
        frac = true;
        i++;
        while (i < p->len && is_digit((unsigned char)p->text[i])) i++;
    }
    size_t n = i - start;
    t->type = TK_NUMBER;
    t->end = (uint32_t)i;
    t->simple = !frac && digits <= 15;
    char *tmp = xp_alloc(p->a, n + 1); /* NUL-terminated copy for strtod */
    memcpy(tmp, p->text + start, n);
    t->num = strtod(tmp, NULL);
}

/* A QName, NCName:* or NCName at i (a name start). */
static size_t lex_name(struct parser *p, struct token *t, size_t i)
{
    size_t e = scan_ncname(p, i);
    t->local = (struct xp_str){ p->text + i, (uint32_t)(e - i) };
    t->prefix = (struct xp_str){ NULL, 0 };
    if (e + 1 < p->len && p->text[e] == ':' && p->text[e + 1] != ':') {
        if (p->text[e + 1] == '*') {
            t->prefix = t->local;
            t->local = (struct xp_str){ p->text + e + 1, 1 };
            t->op = XT_NS_ANY;
            return e + 2;
        }
        size_t e2 = scan_ncname(p, e + 1);
        if (e2 > e + 1) {
            t->prefix = t->local;
            t->local = (struct xp_str){ p->text + e + 1, (uint32_t)(e2 - e - 1) };
            return e2;
        }
    }
    return e;
}

static void lex_word(struct parser *p, struct token *t, size_t i)
{
    bool op_context = !operand_may_follow(p);
    size_t e = lex_name(p, t, i);
    t->end = (uint32_t)e;
    if (op_context) {
        static const struct { const char *name; uint8_t op; } names[] = {
            { "and", XO_AND }, { "or", XO_OR }, { "mod", XO_MOD }, { "div", XO_DIV },
        };
        if (t->prefix.len == 0 && t->op != XT_NS_ANY)
            for (size_t k = 0; k < 4; k++)
                if (xp_str_eq(t->local, names[k].name)) {
                    t->type = TK_OPERATOR;
                    t->op = names[k].op;
                    return;
                }
        fail(p, DIP_ESYNTAX, i, "expected an operator (and, or, div, mod, =, |, ...) or the end, found '%.*s'",
             (int)(e - i), p->text + i);
    }
    size_t after = skip_ws(p, e);
    if (t->op != XT_NS_ANY && after < p->len && p->text[after] == '(') {
        static const char *const types[] = { "comment", "text", "processing-instruction", "node" };
        static const uint8_t tests[] = { XT_COMMENT, XT_TEXT, XT_PI, XT_NODE };
        if (t->prefix.len == 0)
            for (size_t k = 0; k < 4; k++)
                if (xp_str_eq(t->local, types[k])) {
                    t->type = TK_NODETYPE;
                    t->op = tests[k];
                    return;
                }
        t->type = TK_FUNCNAME;
        return;
    }
    if (t->prefix.len == 0 && after + 1 < p->len && p->text[after] == ':' && p->text[after + 1] == ':') {
        int ax = axis_lookup(t->local);
        if (ax < 0) fail(p, DIP_ESYNTAX, i, "unknown axis '%.*s'", (int)t->local.len, t->local.s);
        t->type = TK_AXISNAME;
        t->axis = (uint8_t)ax;
        return;
    }
    t->type = TK_NAMETEST;
    if (t->op != XT_NS_ANY) t->op = XT_NAME;
}

static void lex_one(struct parser *p, struct token *t, size_t i)
{
    const char *s = p->text;
    int c = (unsigned char)s[i], c1 = i + 1 < p->len ? (unsigned char)s[i + 1] : 0;
    t->pos = (uint32_t)i;
    t->end = (uint32_t)i + 1;
    switch (c) {
    case '(': t->type = TK_LPAREN; return;
    case ')': t->type = TK_RPAREN; return;
    case '[': t->type = TK_LBRACK; return;
    case ']': t->type = TK_RBRACK; return;
    case '@': t->type = TK_AT; return;
    case ',': t->type = TK_COMMA; return;
    case '.':
        if (c1 == '.') { t->type = TK_DOTDOT; t->end++; return; }
        if (is_digit(c1)) { lex_number(p, t, i); return; }
        t->type = TK_DOT;
        return;
    case ':':
        if (c1 == ':') { t->type = TK_COLONCOLON; t->end++; return; }
        fail(p, DIP_ESYNTAX, i, "unexpected ':' (expected '::' after an axis name)");
    case '"': case '\'': {
        const char *q = memchr(s + i + 1, c, p->len - i - 1);
        if (!q) fail(p, DIP_ESYNTAX, i, "string literal opened here is not closed (expected %c)", c);
        t->type = TK_LITERAL;
        t->local = (struct xp_str){ s + i + 1, (uint32_t)(q - s - (long)i - 1) };
        t->end = (uint32_t)(q - s) + 1;
        return;
    }
    case '$': {
        size_t e = scan_ncname(p, i + 1);
        if (e == i + 1) fail(p, DIP_ESYNTAX, i + 1, "expected a variable name after '$'");
        lex_name(p, t, i + 1);
        if (t->op == XT_NS_ANY) fail(p, DIP_ESYNTAX, i + 1, "a variable name cannot end in ':*'");
        t->type = TK_VARREF;
        t->end = (uint32_t)(t->local.s + t->local.len - s);
        return;
    }
    case '*':
        if (operand_may_follow(p)) { t->type = TK_NAMETEST; t->op = XT_ANY; t->local = (struct xp_str){ s + i, 1 }; }
        else { t->type = TK_OPERATOR; t->op = XO_MUL; }
        return;
    case '/':
        t->type = TK_OPERATOR;
        t->op = OPT_SLASH;
        if (c1 == '/') { t->op = OPT_DSLASH; t->end++; }
        return;
    case '|': t->type = TK_OPERATOR; t->op = XO_UNION; return;
    case '+': t->type = TK_OPERATOR; t->op = XO_ADD; return;
    case '-': t->type = TK_OPERATOR; t->op = OPT_MINUS_OR_SUB; return;
    case '=': t->type = TK_OPERATOR; t->op = XO_EQ; return;
    case '!':
        if (c1 != '=') fail(p, DIP_ESYNTAX, i, "expected '=' after '!'");
        t->type = TK_OPERATOR; t->op = XO_NE; t->end++;
        return;
    case '<': case '>':
        t->type = TK_OPERATOR;
        t->op = c == '<' ? XO_LT : XO_GT;
        if (c1 == '=') { t->op = c == '<' ? XO_LE : XO_GE; t->end++; }
        return;
    default:
        break;
    }
    if (is_digit(c)) { lex_number(p, t, i); return; }
    if (is_name_start(c)) { lex_word(p, t, i); return; }
    if (c >= 0x20 && c < 0x7f) fail(p, DIP_ESYNTAX, i, "unexpected character '%c'", c);
    fail(p, DIP_ESYNTAX, i, "unexpected byte 0x%02x", (unsigned)c);
}

static void lex(struct parser *p)
{
    p->tok = xp_alloc(p->a, (p->len + 1) * sizeof *p->tok);
    size_t i = skip_ws(p, 0);
    while (i < p->len) {
        struct token *t = &p->tok[p->ntok];
        memset(t, 0, sizeof *t);
        lex_one(p, t, i);
        p->ntok++;
        i = skip_ws(p, t->end);
    }
    struct token *t = &p->tok[p->ntok];
    memset(t, 0, sizeof *t);
    t->type = TK_EOF;
    t->pos = t->end = (uint32_t)p->len;
}

/* ---- parser ---- */

static struct token *peek(struct parser *p) { return &p->tok[p->i]; }
static struct token *next(struct parser *p) { return &p->tok[p->i < p->ntok ? p->i++ : p->i]; }

static const char *tok_desc(const struct parser *p, const struct token *t, char *buf, size_t cap)
{
    if (t->type == TK_EOF) return "the end of the expression";
    snprintf(buf, cap, "'%.*s'", (int)(t->end - t->pos > 40 ? 40 : t->end - t->pos), p->text + t->pos);
    return buf;
}

__attribute__((noreturn))
static void expected(struct parser *p, const char *what)
{
    char buf[64];
    struct token *t = peek(p);
    fail(p, DIP_ESYNTAX, t->pos, "expected %s, found %s", what, tok_desc(p, t, buf, sizeof buf));
}

static void expect(struct parser *p, int type, const char *what)
{
    if (peek(p)->type != type) expected(p, what);
    next(p);
}

static struct xp_node *new_node(struct parser *p, int kind, uint32_t pos)
{
    struct xp_node *n = xp_alloc(p->a, sizeof *n);
    n->kind = (uint8_t)kind;
    n->pos = pos;
    n->end = pos;
    return n;
}

/* A growable array of pointers in the arena. */
struct vec {
    void **v;
    uint32_t n, cap;
};

static void vec_push(struct parser *p, struct vec *v, void *x)
{
    if (v->n == v->cap) {
        uint32_t cap = v->cap ? v->cap * 2 : 4;
        void **nv = xp_alloc(p->a, cap * sizeof *nv);
        if (v->n) memcpy(nv, v->v, v->n * sizeof *nv);
        v->v = nv;
        v->cap = cap;
    }
    v->v[v->n++] = x;
}

static struct xp_node *parse_expr(struct parser *p);

static void enter(struct parser *p, uint32_t pos)
{
    if (++p->depth > DIP_XPATH_MAX_DEPTH)
        fail(p, DIP_ERANGE, pos, "expression nested deeper than %d levels of '(', '[' and function calls",
             DIP_XPATH_MAX_DEPTH);
}

static void parse_predicates(struct parser *p, uint32_t *npred, struct xp_node ***preds)
{
    struct vec v = { 0 };
    while (peek(p)->type == TK_LBRACK) {
        struct token *open = next(p);
        enter(p, open->pos);
        vec_push(p, &v, parse_expr(p));
        p->depth--;
        if (peek(p)->type != TK_RBRACK) {
            char m[96];
            snprintf(m, sizeof m, "']' closing the predicate opened at column %zu",
                     column_of(p->text, p->len, open->pos));
            expected(p, m);
        }
        next(p);
    }
    *npred = v.n;
    *preds = (struct xp_node **)v.v;
}

static bool step_start(const struct token *t)
{
    return t->type == TK_NAMETEST || t->type == TK_NODETYPE || t->type == TK_AXISNAME ||
           t->type == TK_AT || t->type == TK_DOT || t->type == TK_DOTDOT;
}

static void parse_node_test(struct parser *p, struct xp_step *s)
{
    struct token *t = peek(p);
    if (t->type == TK_NAMETEST) {
        next(p);
        s->test = t->op;
        s->prefix = t->prefix;
        s->local = t->local;
        return;
    }
    if (t->type != TK_NODETYPE) expected(p, "a node test (a name, '*', node(), text(), comment() or processing-instruction())");
    next(p);
    s->test = t->op;
    s->local = t->local;
    expect(p, TK_LPAREN, "'('");
    if (s->test == XT_PI && peek(p)->type == TK_LITERAL) {
        s->local = next(p)->local;
    } else if (s->test != XT_PI) {
        s->local = (struct xp_str){ NULL, 0 };
    } else {
        s->local = (struct xp_str){ NULL, 0 };
    }
    if (peek(p)->type != TK_RPAREN)
        expected(p, s->test == XT_PI ? "')' or a string literal" : "')' (node type tests take no argument)");
    next(p);
}

static void parse_step(struct parser *p, struct xp_step *s)
{
    struct token *t = peek(p);
    memset(s, 0, sizeof *s);
    s->pos = t->pos;
    if (t->type == TK_DOT || t->type == TK_DOTDOT) {
        next(p);
        s->axis = t->type == TK_DOT ? XA_SELF : XA_PARENT;
        s->test = XT_NODE;
        if (peek(p)->type == TK_LBRACK)
            fail(p, DIP_ESYNTAX, peek(p)->pos, "'.' and '..' take no predicate in XPath 1.0 (write self::node()[...])");
        return;
    }
    s->axis = XA_CHILD;
    if (t->type == TK_AT) {
        next(p);
        s->axis = XA_ATTRIBUTE;
    } else if (t->type == TK_AXISNAME) {
        next(p);
        s->axis = t->axis;
        expect(p, TK_COLONCOLON, "'::' after the axis name");
    }
    parse_node_test(p, s);
    parse_predicates(p, &s->npred, &s->preds);
}

static void push_dslash_step(struct parser *p, struct vec *steps, uint32_t pos)
{
    struct xp_step *s = xp_alloc(p->a, sizeof *s);
    s->axis = XA_DESCENDANT_OR_SELF;
    s->test = XT_NODE;
    s->pos = pos;
    vec_push(p, steps, s);
}

/* RelativeLocationPath after an optional leading step list; `need` says a
 * step is required at the start. */
static void parse_relative(struct parser *p, struct vec *steps, bool need)
{
    if (!step_start(peek(p))) {
        if (need) expected(p, "a location step");
        return;
    }
    for (;;) {
        struct xp_step *s = xp_alloc(p->a, sizeof *s);
        parse_step(p, s);
        vec_push(p, steps, s);
        struct token *t = peek(p);
        if (t->type != TK_OPERATOR || (t->op != OPT_SLASH && t->op != OPT_DSLASH)) return;
        next(p);
        if (t->op == OPT_DSLASH) push_dslash_step(p, steps, t->pos);
        if (!step_start(peek(p))) expected(p, "a location step after '/'");
    }
}

static struct xp_node *make_path(struct parser *p, struct xp_node *base, bool absolute, struct vec *steps,
                                 uint32_t pos)
{
    struct xp_node *n = new_node(p, XN_PATH, pos);
    n->u.path.base = base;
    n->u.path.absolute = absolute;
    n->u.path.nsteps = steps->n;
    n->u.path.steps = xp_alloc(p->a, (steps->n ? steps->n : 1) * sizeof(struct xp_step));
    for (uint32_t i = 0; i < steps->n; i++) n->u.path.steps[i] = *(struct xp_step *)steps->v[i];
    n->end = p->tok[p->i ? p->i - 1 : 0].end;
    return n;
}

static struct xp_node *parse_primary(struct parser *p)
{
    struct token *t = next(p);
    struct xp_node *n;
    switch (t->type) {
    case TK_LITERAL:
        n = new_node(p, XN_LITERAL, t->pos);
        n->u.lit = t->local;
        break;
    case TK_NUMBER:
        n = new_node(p, XN_NUMBER, t->pos);
        n->u.num.value = t->num;
        n->u.num.simple = t->simple;
        break;
    case TK_VARREF:
        n = new_node(p, XN_VAR, t->pos);
        n->u.var.prefix = t->prefix;
        n->u.var.local = t->local;
        break;
    case TK_LPAREN:
        enter(p, t->pos);
        n = parse_expr(p);
        p->depth--;
        if (peek(p)->type != TK_RPAREN) {
            char m[96];
            snprintf(m, sizeof m, "')' closing the '(' at column %zu", column_of(p->text, p->len, t->pos));
            expected(p, m);
        }
        /* the span includes the parentheses, so that it is an expression text */
        n->pos = t->pos;
        n->end = next(p)->end;
        return n;
    case TK_FUNCNAME: {
        n = new_node(p, XN_CALL, t->pos);
        n->u.call.prefix = t->prefix;
        n->u.call.local = t->local;
        expect(p, TK_LPAREN, "'('");
        enter(p, t->pos);
        struct vec args = { 0 };
        if (peek(p)->type != TK_RPAREN)
            for (;;) {
                vec_push(p, &args, parse_expr(p));
                if (peek(p)->type != TK_COMMA) break;
                next(p);
            }
        p->depth--;
        if (peek(p)->type != TK_RPAREN) expected(p, "',' or ')' in the argument list");
        next(p);
        n->u.call.nargs = args.n;
        n->u.call.args = (struct xp_node **)args.v;
        break;
    }
    default:
        p->i--;
        expected(p, "a location path, number, string, variable, function call or '('");
    }
    n->end = p->tok[p->i - 1].end;
    return n;
}

static struct xp_node *parse_path_expr(struct parser *p)
{
    struct token *t = peek(p);
    struct vec steps = { 0 };
    if (t->type == TK_OPERATOR && (t->op == OPT_SLASH || t->op == OPT_DSLASH)) {
        next(p);
        if (t->op == OPT_DSLASH) push_dslash_step(p, &steps, t->pos);
        parse_relative(p, &steps, t->op == OPT_DSLASH);
        return make_path(p, NULL, true, &steps, t->pos);
    }
    if (step_start(t)) {
        parse_relative(p, &steps, true);
        return make_path(p, NULL, false, &steps, t->pos);
    }
    struct xp_node *prim = parse_primary(p);
    if (peek(p)->type == TK_LBRACK) {
        struct xp_node *f = new_node(p, XN_FILTER, prim->pos);
        f->u.filter.primary = prim;
        parse_predicates(p, &f->u.filter.npred, &f->u.filter.preds);
        f->end = p->tok[p->i - 1].end;
        prim = f;
    }
    struct token *s = peek(p);
    if (s->type == TK_OPERATOR && (s->op == OPT_SLASH || s->op == OPT_DSLASH)) {
        next(p);
        if (s->op == OPT_DSLASH) push_dslash_step(p, &steps, s->pos);
        parse_relative(p, &steps, true);
        struct xp_node *n = make_path(p, prim, false, &steps, prim->pos);
        return n;
    }
    return prim;
}

static struct xp_node *make_chain(struct parser *p, int level, struct xp_node *l, int op, struct xp_node *r)
{
    if (l->kind == XN_CHAIN && l->u.chain.level == level) {
        /* left-associative: append, so long chains stay flat */
        uint32_t n = l->u.chain.n;
        if ((n & (n - 1)) == 0) { /* grow at powers of two */
            struct xp_node **o = xp_alloc(p->a, 2 * n * sizeof *o);
            uint8_t *ops = xp_alloc(p->a, 2 * n);
            memcpy(o, l->u.chain.opnd, n * sizeof *o);
            memcpy(ops, l->u.chain.ops, n - 1);
            l->u.chain.opnd = o;
            l->u.chain.ops = ops;
        }
        l->u.chain.opnd[n] = r;
        l->u.chain.ops[n - 1] = (uint8_t)op;
        l->u.chain.n = n + 1;
        l->end = r->end;
        return l;
    }
    struct xp_node *c = new_node(p, XN_CHAIN, l->pos);
    c->u.chain.level = (uint8_t)level;
    c->u.chain.n = 2;
    c->u.chain.opnd = xp_alloc(p->a, 2 * sizeof *c->u.chain.opnd);
    c->u.chain.ops = xp_alloc(p->a, 2);
    c->u.chain.opnd[0] = l;
    c->u.chain.opnd[1] = r;
    c->u.chain.ops[0] = (uint8_t)op;
    c->end = r->end;
    return c;
}

static struct xp_node *parse_union(struct parser *p)
{
    struct xp_node *n = parse_path_expr(p);
    while (peek(p)->type == TK_OPERATOR && peek(p)->op == XO_UNION) {
        next(p);
        n = make_chain(p, 6, n, XO_UNION, parse_path_expr(p));
    }
    return n;
}

static struct xp_node *parse_unary(struct parser *p)
{
    uint32_t count = 0, pos = peek(p)->pos;
    while (peek(p)->type == TK_OPERATOR && peek(p)->op == OPT_MINUS_OR_SUB) {
        next(p);
        count++;
    }
    struct xp_node *x = parse_union(p);
    if (!count) return x;
    struct xp_node *n = new_node(p, XN_NEG, pos);
    n->u.neg.count = count;
    n->u.neg.x = x;
    n->end = x->end;
    return n;
}

static int binary_level(const struct token *t, int *op)
{
    if (t->type != TK_OPERATOR) return -1;
    switch (t->op) {
    case XO_OR: *op = XO_OR; return 0;
    case XO_AND: *op = XO_AND; return 1;
    case XO_EQ: case XO_NE: *op = t->op; return 2;
    case XO_LT: case XO_LE: case XO_GT: case XO_GE: *op = t->op; return 3;
    case XO_ADD: *op = XO_ADD; return 4;
    case OPT_MINUS_OR_SUB: *op = XO_SUB; return 4;
    case XO_MUL: case XO_DIV: case XO_MOD: *op = t->op; return 5;
    default: return -1;
    }
}

/* Expr: operator precedence with explicit stacks (no recursion per operator). */
static struct xp_node *parse_expr(struct parser *p)
{
    size_t cap = 16, nv = 0, no = 0;
    struct xp_node **vals = xp_alloc(p->a, cap * sizeof *vals);
    uint8_t *ops = xp_alloc(p->a, cap), *lvls = xp_alloc(p->a, cap);
    vals[nv++] = parse_unary(p);
    for (;;) {
        int op, level = binary_level(peek(p), &op);
        while (no > 0 && (level < 0 || lvls[no - 1] >= level)) {
            no--;
            struct xp_node *r = vals[--nv];
            vals[nv - 1] = make_chain(p, lvls[no], vals[nv - 1], ops[no], r);
        }
        if (level < 0) break;
        next(p);
        if (nv == cap) {
            size_t ncap = cap * 2;
            struct xp_node **nvals = xp_alloc(p->a, ncap * sizeof *nvals);
            uint8_t *nops = xp_alloc(p->a, ncap), *nlv = xp_alloc(p->a, ncap);
            memcpy(nvals, vals, nv * sizeof *vals);
            memcpy(nops, ops, no);
            memcpy(nlv, lvls, no);
            vals = nvals, ops = nops, lvls = nlv, cap = ncap;
        }
        ops[no] = (uint8_t)op;
        lvls[no++] = (uint8_t)level;
        vals[nv++] = parse_unary(p);
    }
    return vals[0];
}

int xp_parse(struct xp_arena *a, const char *text, size_t len, struct xp_node **root,
             struct dip_xpath_error *err)
{
    struct parser p = { .a = a, .text = text, .len = len, .err = err };
    if (err) {
        err->column = 0;
        err->message[0] = 0;
    }
    if (setjmp(p.fail)) return p.code;
    if (len > DIP_XPATH_MAX_LEN)
        fail(&p, DIP_ERANGE, DIP_XPATH_MAX_LEN, "expression longer than %d bytes", DIP_XPATH_MAX_LEN);
    char why[200];
    size_t bad = xp_text_check(text, len, why, sizeof why);
    if (bad < len) fail(&p, DIP_ESYNTAX, bad, "%s", why);
    lex(&p);
    if (p.ntok == 0) fail(&p, DIP_ESYNTAX, 0, "empty expression: expected a location path or expression");
    struct xp_node *n = parse_expr(&p);
    if (peek(&p)->type != TK_EOF) {
        char buf[64];
        struct token *t = peek(&p);
        if (t->type == TK_RPAREN || t->type == TK_RBRACK)
            fail(&p, DIP_ESYNTAX, t->pos, "unbalanced %s: nothing to close", tok_desc(&p, t, buf, sizeof buf));
        fail(&p, DIP_ESYNTAX, t->pos, "expected an operator or the end of the expression, found %s",
             tok_desc(&p, t, buf, sizeof buf));
    }
    *root = n;
    return DIP_OK;
}

/* ---- unparsing: the unabbreviated form, for tests and --explain ---- */

/* Appends formatted text to o with snprintf semantics: o->len counts what
 * would have been written, so callers learn the size a full text needs. */
void xp_put(struct xp_out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->len < o->cap ? o->buf + o->len : NULL, o->len < o->cap ? o->cap - o->len : 0, fmt, ap);
    va_end(ap);
    if (n > 0) o->len += (size_t)n;
}

static void put_qname(struct xp_out *o, struct xp_str prefix, struct xp_str local)
{
    if (prefix.len) xp_put(o, "%.*s:", (int)prefix.len, prefix.s);
    xp_put(o, "%.*s", (int)local.len, local.s);
}

static void unparse(struct xp_out *o, const struct xp_node *n);

static void unparse_preds(struct xp_out *o, uint32_t npred, struct xp_node *const *preds)
{
    for (uint32_t i = 0; i < npred; i++) {
        xp_put(o, "[");
        unparse(o, preds[i]);
        xp_put(o, "]");
    }
}

static void unparse_step(struct xp_out *o, const struct xp_step *s)
{
    xp_put(o, "%s::", xp_axis_name(s->axis));
    switch (s->test) {
    case XT_NAME: put_qname(o, s->prefix, s->local); break;
    case XT_ANY: xp_put(o, "*"); break;
    case XT_NS_ANY: xp_put(o, "%.*s:*", (int)s->prefix.len, s->prefix.s); break;
    case XT_NODE: xp_put(o, "node()"); break;
    case XT_TEXT: xp_put(o, "text()"); break;
    case XT_COMMENT: xp_put(o, "comment()"); break;
    case XT_PI:
        if (s->local.s) xp_put(o, "processing-instruction('%.*s')", (int)s->local.len, s->local.s);
        else xp_put(o, "processing-instruction()");
        break;
    }
    unparse_preds(o, s->npred, s->preds);
}

static void unparse(struct xp_out *o, const struct xp_node *n)
{
    static const char *const ops[] = { "or", "and", "=", "!=", "<", "<=", ">", ">=",
                                       "+", "-", "*", "div", "mod", "|" };
    switch (n->kind) {
    case XN_NUMBER: xp_put(o, "%.17g", n->u.num.value); break;
    case XN_LITERAL: {
        char q = memchr(n->u.lit.s, '"', n->u.lit.len) ? '\'' : '"';
        xp_put(o, "%c%.*s%c", q, (int)n->u.lit.len, n->u.lit.s, q);
        break;
    }
    case XN_VAR: xp_put(o, "$"); put_qname(o, n->u.var.prefix, n->u.var.local); break;
    case XN_CALL:
        put_qname(o, n->u.call.prefix, n->u.call.local);
        xp_put(o, "(");
        for (uint32_t i = 0; i < n->u.call.nargs; i++) {
            if (i) xp_put(o, ", ");
            unparse(o, n->u.call.args[i]);
        }
        xp_put(o, ")");
        break;
    case XN_CHAIN:
        xp_put(o, "(");
        for (uint32_t i = 0; i < n->u.chain.n; i++) {
            if (i) xp_put(o, " %s ", ops[n->u.chain.ops[i - 1]]);
            unparse(o, n->u.chain.opnd[i]);
        }
        xp_put(o, ")");
        break;
    case XN_NEG:
        xp_put(o, "-%u(", n->u.neg.count);
        unparse(o, n->u.neg.x);
        xp_put(o, ")");
        break;
    case XN_FILTER:
        xp_put(o, "(");
        unparse(o, n->u.filter.primary);
        xp_put(o, ")");
        unparse_preds(o, n->u.filter.npred, n->u.filter.preds);
        break;
    case XN_PATH:
        if (n->u.path.base) {
            xp_put(o, "(");
            unparse(o, n->u.path.base);
            xp_put(o, ")");
        }
        for (uint32_t i = 0; i < n->u.path.nsteps; i++) {
            if (i || n->u.path.absolute || n->u.path.base) xp_put(o, "/");
            unparse_step(o, &n->u.path.steps[i]);
        }
        if (n->u.path.absolute && n->u.path.nsteps == 0) xp_put(o, "/");
        break;
    }
}

int xp_unparse(const struct xp_node *n, char *buf, size_t cap)
{
    struct xp_out o = { buf, cap, 0 };
    if (cap) buf[0] = 0;
    unparse(&o, n);
    return (int)o.len;
}
