/* fastq.c - an exact evaluator, over decoded records, for the XPath forms
 * that make up most store queries: //flow with predicates of comparisons of
 * attributes with literals, combined by and/or/not, plain or inside count(),
 * boolean() or sum(.../@attr). It follows XPath 1.0 as libxml2 implements
 * it: an absent attribute is an empty node-set (every comparison false), =
 * and != with a string compare the attribute's text, the other comparisons
 * and those with a number compare number(text) as libxml2 converts it.
 * Forms whose semantics need more (addresses or IDs as numbers, fractional
 * literals, functions, other axes, positions) are refused: the caller then
 * lets libxml2 decide. */
#include "fast.h"

#include <libxml/xpath.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum op { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE };
enum node_kind { N_TRUE, N_AND, N_OR, N_NOT, N_HAS, N_NUM, N_STR };

struct node {
    enum node_kind kind;
    int a, b;                 /* children (N_AND, N_OR, N_NOT) */
    const struct dip_field *fd;
    enum op op;
    double num;               /* N_NUM: the literal as a number */
    bool never;               /* N_STR: the literal is no canonical text of the field */
    uint64_t u;               /* N_STR: the field's value whose text equals the literal */
    struct dip_addr addr;
};

#define MAX_NODES 128

struct dip_fastq {
    enum dip_fastq_kind kind;
    const struct dip_field *sum; /* DIP_FASTQ_SUM */
    int root;
    int nnodes;
    struct node nodes[MAX_NODES];
};

struct parser {
    const char *p, *end;
    struct dip_fastq *q;
    int depth;
};

static void skip_ws(struct parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')) ps->p++;
}

static bool is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
           c == '.' || c == ':';
}

/* Consumes the literal token s (a name when it ends in a letter: not followed by a name character). */
static bool eat(struct parser *ps, const char *s)
{
    skip_ws(ps);
    size_t n = strlen(s);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, s, n) != 0) return false;
    char last = s[n - 1];
    if (((last >= 'a' && last <= 'z')) && ps->p + n < ps->end && is_name_char(ps->p[n])) return false;
    ps->p += n;
    return true;
}

static bool peek(struct parser *ps, const char *s)
{
    const char *save = ps->p;
    bool ok = eat(ps, s);
    ps->p = save;
    return ok;
}

static int new_node(struct parser *ps, enum node_kind kind)
{
    if (ps->q->nnodes == MAX_NODES) return -1;
    int i = ps->q->nnodes++;
    memset(&ps->q->nodes[i], 0, sizeof ps->q->nodes[i]);
    ps->q->nodes[i].kind = kind;
    return i;
}

/* @name: a field of the record. */
static const struct dip_field *attr(struct parser *ps)
{
    if (!eat(ps, "@")) return NULL;
    const char *s = ps->p;
    while (ps->p < ps->end && is_name_char(*ps->p)) ps->p++;
    return dip_flow_field_find(s, (size_t)(ps->p - s));
}

/* A literal: a string, or an integer of at most 15 digits (exact as a double
 * however libxml2 converts it), optionally negated. */
static bool literal(struct parser *ps, bool *is_str, const char **s, size_t *len, double *num)
{
    skip_ws(ps);
    if (ps->p >= ps->end) return false;
    char c = *ps->p;
    if (c == '\'' || c == '"') {
        const char *e = memchr(ps->p + 1, c, (size_t)(ps->end - ps->p - 1));
        if (!e) return false;
        *is_str = true;
        *s = ps->p + 1;
        *len = (size_t)(e - ps->p - 1);
        ps->p = e + 1;
        return true;
    }
    bool neg = false;
    if (c == '-') {
        neg = true;
        ps->p++;
        skip_ws(ps);
    }
    const char *d = ps->p;
    double v = 0;
    while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') v = v * 10 + (*ps->p++ - '0');
    size_t nd = (size_t)(ps->p - d);
    if (nd == 0 || nd > 15 || (ps->p < ps->end && (*ps->p == '.' || is_name_char(*ps->p)))) return false;
    *is_str = false;
    *num = neg ? -v : v;
    return true;
}

static bool comparison_op(struct parser *ps, enum op *op)
{
    skip_ws(ps);
    static const struct { const char *t; enum op op; } ops[] = {
        { "!=", OP_NE }, { "<=", OP_LE }, { ">=", OP_GE }, { "=", OP_EQ }, { "<", OP_LT }, { ">", OP_GT },
    };
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        size_t n = strlen(ops[i].t);
        if ((size_t)(ps->end - ps->p) >= n && memcmp(ps->p, ops[i].t, n) == 0) {
            ps->p += n;
            *op = ops[i].op;
            return true;
        }
    }
    return false;
}

static enum op flip(enum op op)
{
    switch (op) {
    case OP_LT: return OP_GT;
    case OP_LE: return OP_GE;
    case OP_GT: return OP_LT;
    case OP_GE: return OP_LE;
    default: return op;
    }
}

static bool numeric_field(const struct dip_field *fd) { return fd->type != DIP_FT_ADDR && fd->type != DIP_FT_ID; }

/* Fills a string-equality node: the value whose canonical text is s, or never. */
static void string_target(struct node *n, const char *s, size_t len)
{
    const struct dip_field *fd = n->fd;
    n->never = true;
    if (fd->type == DIP_FT_ADDR) {
        char back[DIP_ADDR_TEXT_MAX];
        if (len < DIP_ADDR_TEXT_MAX && dip_addr_parse(s, len, &n->addr) == DIP_OK &&
            dip_addr_format(&n->addr, back) == len && memcmp(back, s, len) == 0)
            n->never = false;
        return;
    }
    if (fd->type == DIP_FT_ID) {
        if (len != 16) return;
        uint64_t v = 0;
        for (size_t i = 0; i < 16; i++) {
            char c = s[i];
            unsigned d = c >= '0' && c <= '9' ? (unsigned)(c - '0') : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10) : 16;
            if (d > 15) return;
            v = (v << 4) | d;
        }
        n->u = v;
        n->never = false;
        return;
    }
    uint64_t max = fd->type == DIP_FT_U8 ? UINT8_MAX : fd->type == DIP_FT_U16 ? UINT16_MAX
                 : fd->type == DIP_FT_U32 ? UINT32_MAX : UINT64_MAX;
    if (len == 0 || len > 20 || (len > 1 && s[0] == '0')) return;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (d > 9 || v > (max - d) / 10) return;
        v = v * 10 + d;
    }
    n->u = v;
    n->never = false;
}

static int or_expr(struct parser *ps);

/* @A, @A op literal, literal op @A */
static int comparison(struct parser *ps)
{
    const struct dip_field *fd = NULL;
    bool is_str = false;
    const char *s = NULL;
    size_t len = 0;
    double num = 0;
    enum op op;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == '@') {
        if (!(fd = attr(ps))) return -1;
        const char *save = ps->p;
        if (!comparison_op(ps, &op)) {
            ps->p = save;
            int i = new_node(ps, N_HAS);
            if (i >= 0) ps->q->nodes[i].fd = fd;
            return i;
        }
        if (!literal(ps, &is_str, &s, &len, &num)) return -1;
    } else {
        if (!literal(ps, &is_str, &s, &len, &num) || !comparison_op(ps, &op)) return -1;
        if (!(fd = attr(ps))) return -1;
        op = flip(op);
    }
    if (is_str && (op == OP_EQ || op == OP_NE)) {
        int i = new_node(ps, N_STR);
        if (i < 0) return -1;
        struct node *n = &ps->q->nodes[i];
        n->fd = fd;
        n->op = op;
        string_target(n, s, len);
        return i;
    }
    if (!numeric_field(fd)) return -1;
    if (is_str) { /* number(string) as libxml2 converts it */
        char *t = strndup(s, len);
        if (!t) return -1;
        num = xmlXPathCastStringToNumber(BAD_CAST t);
        free(t);
    }
    int i = new_node(ps, N_NUM);
    if (i < 0) return -1;
    ps->q->nodes[i].fd = fd;
    ps->q->nodes[i].op = op;
    ps->q->nodes[i].num = num;
    return i;
}

static int unary(struct parser *ps)
{
    if (++ps->depth > 64) return -1;
    int r;
    if (peek(ps, "not")) {
        eat(ps, "not");
        if (!eat(ps, "(")) return -1;
        int a = or_expr(ps);
        if (a < 0 || !eat(ps, ")")) return -1;
        if ((r = new_node(ps, N_NOT)) >= 0) ps->q->nodes[r].a = a;
    } else if (peek(ps, "(")) {
        eat(ps, "(");
        r = or_expr(ps);
        if (r < 0 || !eat(ps, ")")) return -1;
    } else {
        r = comparison(ps);
    }
    ps->depth--;
    return r;
}

static int and_expr(struct parser *ps)
{
    int a = unary(ps);
    while (a >= 0 && eat(ps, "and")) {
        int b = unary(ps), n = b >= 0 ? new_node(ps, N_AND) : -1;
        if (n < 0) return -1;
        ps->q->nodes[n].a = a;
        ps->q->nodes[n].b = b;
        a = n;
    }
    return a;
}

static int or_expr(struct parser *ps)
{
    int a = and_expr(ps);
    while (a >= 0 && eat(ps, "or")) {
        int b = and_expr(ps), n = b >= 0 ? new_node(ps, N_OR) : -1;
        if (n < 0) return -1;
        ps->q->nodes[n].a = a;
        ps->q->nodes[n].b = b;
        a = n;
    }
    return a;
}

/* //flow[P][P]... : the predicates joined by and. */
static int path(struct parser *ps)
{
    if (!eat(ps, "//") || !eat(ps, "flow")) return -1;
    int r = new_node(ps, N_TRUE);
    while (r >= 0 && eat(ps, "[")) {
        int p = or_expr(ps);
        if (p < 0 || !eat(ps, "]")) return -1;
        int n = new_node(ps, N_AND);
        if (n < 0) return -1;
        ps->q->nodes[n].a = r;
        ps->q->nodes[n].b = p;
        r = n;
    }
    return r;
}

struct dip_fastq *dip_fastq_compile(const char *text, size_t len)
{
    struct dip_fastq *q = calloc(1, sizeof *q);
    if (!q) return NULL;
    struct parser ps = { text, text + len, q, 0 };
    int root = -1;
    if (eat(&ps, "count")) {
        q->kind = DIP_FASTQ_COUNT;
        if (eat(&ps, "(") && (root = path(&ps)) >= 0 && !eat(&ps, ")")) root = -1;
    } else if (eat(&ps, "boolean")) {
        q->kind = DIP_FASTQ_BOOLEAN;
        if (eat(&ps, "(") && (root = path(&ps)) >= 0 && !eat(&ps, ")")) root = -1;
    } else if (eat(&ps, "sum")) {
        q->kind = DIP_FASTQ_SUM;
        if (eat(&ps, "(") && (root = path(&ps)) >= 0) {
            if (!eat(&ps, "/") || !(q->sum = attr(&ps)) || !numeric_field(q->sum) || !eat(&ps, ")")) root = -1;
        }
    } else {
        q->kind = DIP_FASTQ_FLOWS;
        root = path(&ps);
    }
    skip_ws(&ps);
    if (root < 0 || ps.p != ps.end) {
        free(q);
        return NULL;
    }
    q->root = root;
    return q;
}

void dip_fastq_free(struct dip_fastq *q) { free(q); }

enum dip_fastq_kind dip_fastq_kind(const struct dip_fastq *q) { return q->kind; }

static bool present(const struct dip_flow *f, const struct dip_field *fd)
{
    return !fd->opt_bit || (f->present & fd->opt_bit);
}

/* number(string(@A)) as libxml2 computes it: exact below 2^53. */
static double field_number(const struct dip_flow *f, const struct dip_field *fd)
{
    uint64_t v = dip_flow_get_u64(f, fd);
    if (v < ((uint64_t)1 << 53)) return (double)v;
    char buf[24];
    size_t n = 0;
    char tmp[24];
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++) buf[i] = tmp[n - 1 - i];
    buf[n] = 0;
    return xmlXPathCastStringToNumber(BAD_CAST buf);
}

static bool eval(const struct dip_fastq *q, int i, const struct dip_flow *f)
{
    const struct node *n = &q->nodes[i];
    switch (n->kind) {
    case N_TRUE: return true;
    case N_AND: return eval(q, n->a, f) && eval(q, n->b, f);
    case N_OR: return eval(q, n->a, f) || eval(q, n->b, f);
    case N_NOT: return !eval(q, n->a, f);
    case N_HAS: return present(f, n->fd);
    case N_STR: {
        if (!present(f, n->fd)) return false;
        bool eq;
        if (n->never) eq = false;
        else if (n->fd->type == DIP_FT_ADDR)
            eq = memcmp((const uint8_t *)f + n->fd->offset, n->addr.b, 16) == 0;
        else eq = dip_flow_get_u64(f, n->fd) == n->u;
        return n->op == OP_EQ ? eq : !eq;
    }
    case N_NUM: {
        if (!present(f, n->fd)) return false;
        double x = field_number(f, n->fd);
        switch (n->op) {
        case OP_EQ: return x == n->num;
        case OP_NE: return x != n->num;
        case OP_LT: return x < n->num;
        case OP_LE: return x <= n->num;
        case OP_GT: return x > n->num;
        case OP_GE: return x >= n->num;
        }
    }
    }
    return false;
}

bool dip_fastq_match(const struct dip_fastq *q, const struct dip_flow *f) { return eval(q, q->root, f); }

double dip_fastq_value(const struct dip_fastq *q, const struct dip_flow *f, bool *has)
{
    *has = q->sum && present(f, q->sum);
    return *has ? field_number(f, q->sum) : 0;
}
