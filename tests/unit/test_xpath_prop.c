/* test_xpath_prop.c - property test of the XPath analyser against libxml2.
 *
 * Random flow records are laid out as a tank document (ARCHITECTURE 4) for a
 * random tank; random expressions are compiled and evaluated by libxml2 on
 * the whole document, on the document without the flows the analysis rules
 * out (must not change the result: soundness), and, for decomposable shapes,
 * on two random halves whose merged results must equal the whole.
 * DIP_XPATH_CASES (default 100000) and DIP_XPATH_SEED select the run. */
#include <CUnit/CUnit.h>
#include <libxml/parser.h>
#include <libxml/xpath.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/dynbuf.h"
#include "common/err.h"
#include "flow/flow.h"
#include "xpath/xpath.h"

#define MAXF 8

static uint64_t rng_state;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static int pick(int n) { return (int)(rnd() % (uint64_t)n); }

/* ---- flows ---- */

static void rand_addr(struct dip_addr *a)
{
    static const char *const pool[] = { "10.0.0.1", "10.1.2.3", "10.10.0.5", "10.100.3.4", "10.1.0.0",
                                        "192.168.1.1", "1.2.3.4", "0.0.0.0", "255.255.255.255", "10.19.255.255",
                                        "2001:db8::1", "2001:db8:0:1::5", "::1", "fe80::1", "2001:db8::ffff:1",
                                        "::1.2.3.4", "64:ff9b::a00:1", "10.0.0.2" };
    if (pick(4)) {
        const char *s = pool[pick(sizeof pool / sizeof *pool)];
        dip_addr_parse(s, strlen(s), a);
        return;
    }
    static const int second[] = { 0, 1, 10, 11, 100, 199 };
    dip_addr_from_v4(a, (uint32_t)10 << 24 | (uint32_t)second[pick(6)] << 16 | (uint32_t)pick(3) << 8 | (uint32_t)pick(256));
}

static uint64_t rand_counter(void)
{
    switch (pick(6)) {
    case 0: return 0;
    case 1: return 9007199254740992ull + (uint64_t)pick(4);
    case 2: return UINT64_MAX - (uint64_t)pick(3);
    case 3: return 1000 + (uint64_t)pick(2000);
    default: return (uint64_t)pick(100);
    }
}

static void gen_flow(struct dip_flow *f, uint64_t id)
{
    static const uint16_t ports[] = { 0, 1, 21, 22, 23, 53, 80, 443, 1023, 1024, 2047, 2048, 8080, 65535 };
    static const uint8_t protos[] = { 1, 6, 17, 0, 255 };
    memset(f, 0, sizeof *f);
    rand_addr(&f->src);
    rand_addr(&f->dst);
    rand_addr(&f->nexthop);
    rand_addr(&f->exporter);
    f->sport = pick(5) ? ports[pick(14)] : (uint16_t)rnd();
    f->dport = pick(5) ? ports[pick(14)] : (uint16_t)rnd();
    f->proto = protos[pick(5)];
    f->first = 1700000000000ull + (uint64_t)pick(3) * 1800000 + (uint64_t)pick(1000);
    f->last = f->first + (uint64_t)pick(100000);
    f->packets = rand_counter();
    f->bytes = rand_counter();
    f->id = id;
    f->present = (uint16_t)(rnd() & DIP_F_ALL_OPTIONAL);
    static const uint8_t u8s[] = { 0, 2, 3, 18, 24, 255 };
    static const uint32_t u32s[] = { 0, 1, 2, 3, 1000, 65000, 4294967295u };
    f->flags = u8s[pick(6)];
    f->tos = u8s[pick(6)];
    f->smask = u8s[pick(6)];
    f->dmask = u8s[pick(6)];
    f->in = u32s[pick(7)];
    f->out = u32s[pick(7)];
    f->srcas = u32s[pick(7)];
    f->dstas = u32s[pick(7)];
    f->domain = u32s[pick(7)];
    f->sampling = u32s[pick(7)];
}

/* ---- documents ---- */

static int doc_tank;
static int cmp_flow(const void *a, const void *b)
{
    const struct dip_flow *x = *(const struct dip_flow *const *)a, *y = *(const struct dip_flow *const *)b;
    int c = dip_flow_key_cmp(x, y, (enum dip_tank_key)doc_tank);
    return c ? c : (x->id > y->id) - (x->id < y->id);
}

/* The index path of a flow in the tank: element names and values. */
static int index_path(const struct dip_flow *f, int tank, char names[9][3], unsigned vals[9])
{
    if (tank >= 2) {
        strcpy(names[0], "p");
        vals[0] = tank == 2 ? f->sport : f->dport;
        return 1;
    }
    const struct dip_addr *a = tank == 0 ? &f->src : &f->dst;
    if (dip_addr_is_v4(a)) {
        for (int i = 0; i < 4; i++) strcpy(names[i], "o"), vals[i] = a->b[12 + i];
        return 4;
    }
    strcpy(names[0], "v6");
    vals[0] = ~0u;
    for (int i = 0; i < 8; i++) strcpy(names[i + 1], "g"), vals[i + 1] = (unsigned)a->b[2 * i] << 8 | a->b[2 * i + 1];
    return 9;
}

static xmlDocPtr build_doc(int tank, struct dip_flow *const *fl, size_t n, bool ws)
{
    static const char *const keys[] = { "src", "dst", "sport", "dport" };
    struct dip_flow *sorted[MAXF];
    memcpy(sorted, fl, n * sizeof *fl);
    doc_tank = tank;
    qsort(sorted, n, sizeof *sorted, cmp_flow);
    struct dip_dynbuf b;
    dip_dynbuf_init(&b, 1 << 20);
    dip_dynbuf_printf(&b, "<tank key=\"%s\" leaf=\"t\">", keys[tank]);
    char open_names[9][3];
    unsigned open_vals[9];
    int depth = 0;
    for (size_t i = 0; i < n; i++) {
        char names[9][3];
        unsigned vals[9];
        int d = index_path(sorted[i], tank, names, vals), common = 0;
        while (common < depth && common < d && strcmp(open_names[common], names[common]) == 0 &&
               open_vals[common] == vals[common])
            common++;
        while (depth > common) dip_dynbuf_printf(&b, "</%s>", open_names[--depth]);
        for (; depth < d; depth++) {
            if (ws) dip_dynbuf_addstr(&b, "\n ");
            if (vals[depth] == ~0u) dip_dynbuf_printf(&b, "<%s>", names[depth]);
            else dip_dynbuf_printf(&b, "<%s v=\"%u\">", names[depth], vals[depth]);
            strcpy(open_names[depth], names[depth]);
            open_vals[depth] = vals[depth];
        }
        if (ws) dip_dynbuf_addstr(&b, "\n  ");
        dip_flow_xml_append(sorted[i], &b);
    }
    while (depth > 0) dip_dynbuf_printf(&b, "</%s>", open_names[--depth]);
    dip_dynbuf_addstr(&b, "</tank>");
    xmlDocPtr doc = xmlReadMemory((const char *)b.data, (int)b.len, "t.xml", NULL, XML_PARSE_NONET);
    dip_dynbuf_free(&b);
    return doc;
}

/* ---- evaluation ---- */

struct result {
    int type; /* xmlXPathObjectType, or -1 on error */
    size_t n;
    uint64_t ids[4 * 32];
    size_t nonflow;
    double num;
    bool b;
};

static void silent(void *ctx, xmlErrorPtr err) { (void)ctx; (void)err; }

static uint64_t flow_id_of(xmlNodePtr n)
{
    xmlChar *v = xmlGetProp(n, BAD_CAST "id");
    uint64_t id = v ? strtoull((const char *)v, NULL, 16) : 0;
    xmlFree(v);
    return id;
}

static void evaluate(xmlDocPtr doc, const char *expr, struct result *r)
{
    memset(r, 0, sizeof *r);
    xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
    ctx->error = silent;
    xmlXPathObjectPtr o = xmlXPathEval(BAD_CAST expr, ctx);
    r->type = o ? (int)o->type : -1;
    if (o && o->type == XPATH_NODESET && o->nodesetval) {
        for (int i = 0; i < o->nodesetval->nodeNr; i++) {
            xmlNodePtr nd = o->nodesetval->nodeTab[i];
            if (nd->type == XML_ATTRIBUTE_NODE && nd->parent && xmlStrEqual(nd->parent->name, BAD_CAST "flow"))
                nd = nd->parent;
            if (nd->type == XML_ELEMENT_NODE && xmlStrEqual(nd->name, BAD_CAST "flow")) {
                if (r->n < sizeof r->ids / sizeof *r->ids) r->ids[r->n++] = flow_id_of(nd);
            } else {
                r->nonflow++;
            }
        }
    } else if (o && o->type == XPATH_NUMBER) {
        r->num = o->floatval;
    } else if (o && o->type == XPATH_BOOLEAN) {
        r->b = o->boolval != 0;
    }
    xmlXPathFreeObject(o);
    xmlXPathFreeContext(ctx);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* The distinct flow ids of a node-set result, sorted. */
static size_t id_set(struct result *r, uint64_t *out)
{
    memcpy(out, r->ids, r->n * sizeof *out);
    qsort(out, r->n, sizeof *out, cmp_u64);
    size_t m = 0;
    for (size_t i = 0; i < r->n; i++)
        if (m == 0 || out[m - 1] != out[i]) out[m++] = out[i];
    return m;
}

static bool same_number(double a, double b)
{
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    if (a == b) return true;
    return fabs(a - b) <= 1e-12 * fmax(fabs(a), fabs(b));
}

/* ---- is a flow inside the ranges? ---- */

static struct dip_u128 addr_value(const struct dip_addr *a)
{
    struct dip_u128 v = { 0, 0 };
    for (int k = 0; k < 8; k++) v.hi = v.hi << 8 | a->b[k], v.lo = v.lo << 8 | a->b[k + 8];
    return v;
}

static bool flow_may_match(const struct dip_xpath *q, int tank, const struct dip_flow *f, const char **why)
{
    struct dip_u128 keys[7] = {
        addr_value(&f->src), addr_value(&f->dst), { 0, f->sport }, { 0, f->dport }, { 0, f->proto },
        { 0, f->first }, { 0, f->last },
    };
    static const char *const knames[] = { "src", "dst", "sport", "dport", "proto", "first", "last" };
    for (int k = 0; k < 7; k++)
        if (!dip_xpath_may_match(q, tank, (enum dip_xpath_key)k, keys[k], keys[k]) ||
            !dip_xpath_attr_may_match(q, knames[k], keys[k], keys[k])) {
            *why = knames[k];
            return false;
        }
    static const char *const attrs[] = { "packets", "bytes", "flags", "tos", "in", "out", "srcas", "dstas",
                                         "smask", "dmask", "domain", "sampling" };
    for (size_t i = 0; i < sizeof attrs / sizeof *attrs; i++) {
        const struct dip_field *fd = dip_flow_field_find(attrs[i], strlen(attrs[i]));
        struct dip_u128 v = { 0, dip_flow_get_u64(f, fd) };
        if (fd->opt_bit && !(f->present & fd->opt_bit)) v = (struct dip_u128){ DIP_XPATH_ABSENT_HI, 0 };
        if (!dip_xpath_attr_may_match(q, attrs[i], v, v)) {
            *why = attrs[i];
            return false;
        }
    }
    return true;
}

/* ---- random expressions ---- */

struct gen {
    char *p, *end;
    struct dip_flow *const *fl;
    size_t n;
    int depth;
};

__attribute__((format(printf, 2, 3)))
static void emit(struct gen *g, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(g->p, (size_t)(g->end - g->p), fmt, ap);
    va_end(ap);
    if (k > 0) g->p += k < g->end - g->p ? k : g->end - g->p - 1;
}

static const char *const all_attrs[] = { "src", "dst", "sport", "dport", "proto", "first", "last", "packets",
                                         "bytes", "flags", "tos", "in", "out", "srcas", "dstas", "smask",
                                         "dmask", "domain", "sampling", "id", "nexthop", "exporter", "foo" };
#define NATTRS (sizeof all_attrs / sizeof *all_attrs)

/* The text a flow has for attribute name ("" when absent). */
static void attr_text(const struct dip_flow *f, const char *name, char *out)
{
    char attrs[DIP_FLOW_XML_ATTRS_MAX + 1];
    size_t n = dip_flow_xml_attrs(f, attrs);
    attrs[n] = 0;
    char key[32];
    snprintf(key, sizeof key, " %s=\"", name);
    const char *p = strstr(attrs, key);
    out[0] = 0;
    if (!p) return;
    p += strlen(key);
    const char *e = strchr(p, '"');
    memcpy(out, p, (size_t)(e - p));
    out[e - p] = 0;
}

/* A constant that often equals or nearly equals a value in the document. */
static void gen_const(struct gen *g, const char *attr)
{
    char t[64];
    attr_text(g->fl[pick((int)g->n)], attr, t);
    if (!t[0] || pick(8) == 0) snprintf(t, sizeof t, "%d", pick(3) ? pick(70000) : pick(300));
    bool numeric = t[0] >= '0' && t[0] <= '9' && strspn(t, "0123456789") == strlen(t);
    switch (pick(14)) {
    case 0: case 1: case 2: if (numeric) { emit(g, "%s", t); break; } /* fall through */
    case 3: case 4: emit(g, "'%s'", t); break;
    case 5: if (numeric) { emit(g, "%s.5", t); break; } emit(g, "'%.*s'", (int)strlen(t) / 2, t); break;
    case 6: emit(g, "'0%s'", t); break;
    case 7: emit(g, "' %s'", t); break;
    case 8: emit(g, numeric ? "%s - 1" : "'%s '", t); break;
    case 9: emit(g, "%s", pick(2) ? "9007199254740993" : "18446744073709551615"); break;
    case 10: emit(g, "concat('%.*s', '%s')", (int)strlen(t) / 2, t, t + strlen(t) / 2); break;
    case 11: emit(g, "%s", pick(2) ? "true()" : "false()"); break;
    case 12: emit(g, numeric ? "number('%s')" : "'%s'", t); break;
    default: emit(g, numeric ? "%s.0000000000000001" : "\"%s\"", t); break;
    }
}

static const char *const ops[] = { "=", "!=", "<", "<=", ">", ">=" };

static void gen_pred(struct gen *g);

static void gen_cmp(struct gen *g)
{
    const char *a = all_attrs[pick(NATTRS)];
    const char *op = ops[pick(6)];
    int form = pick(10);
    const char *wrap = form == 7 ? "string" : form == 8 ? "number" : NULL;
    if (form == 9) {
        gen_const(g, a);
        emit(g, " %s @%s", op, a);
        return;
    }
    if (wrap) emit(g, "%s(@%s) %s ", wrap, a, op);
    else emit(g, "@%s %s ", a, op);
    gen_const(g, a);
}

static void gen_pred(struct gen *g)
{
    if (++g->depth > 4) {
        gen_cmp(g);
        g->depth--;
        return;
    }
    switch (pick(24)) {
    case 0: case 1: case 2: case 3: case 4: case 5: gen_cmp(g); break;
    case 6: case 7: {
        const char *a = pick(3) ? (pick(2) ? "src" : "dst") : all_attrs[pick(NATTRS)];
        char t[64];
        attr_text(g->fl[pick((int)g->n)], a, t);
        emit(g, "starts-with(@%s, '%.*s')", a, pick((int)strlen(t) + 2), t);
        break;
    }
    case 8: emit(g, "not("); gen_pred(g); emit(g, ")"); break;
    case 9: case 10: emit(g, "("); gen_pred(g); emit(g, " and "); gen_pred(g); emit(g, ")"); break;
    case 11: emit(g, "("); gen_pred(g); emit(g, " or "); gen_pred(g); emit(g, ")"); break;
    case 12: emit(g, "@%s", all_attrs[pick(NATTRS)]); break;
    case 13: emit(g, "../@v %s %d", ops[pick(6)], pick(3) ? 10 : pick(300)); break;
    case 14: emit(g, "ancestor::%s[@v %s %d]", pick(2) ? "o" : "*", ops[pick(6)], pick(2) ? 10 : pick(256)); break;
    case 15: emit(g, "contains(@src, '%d')", pick(10)); break;
    case 16: emit(g, "@sport %s @dport", ops[pick(6)]); break;
    case 17: emit(g, "position() %s %d", ops[pick(6)], pick(4)); break;
    case 18: emit(g, "%s", pick(2) ? "true()" : "false()"); break;
    case 19: emit(g, "@dport + 0 %s ", ops[pick(6)]); gen_const(g, "dport"); break;
    case 20: emit(g, "boolean(@%s)", all_attrs[pick(NATTRS)]); break;
    case 21: emit(g, "@%s = %s", all_attrs[pick(NATTRS)], pick(2) ? "true()" : "false()"); break;
    case 22: emit(g, "/tank/@key = '%s'", pick(2) ? "src" : "dport"); break;
    default: emit(g, "self::node()/@%s %s ", "dport", ops[pick(6)]); gen_const(g, "dport"); break;
    }
    g->depth--;
}

static void gen_flowset(struct gen *g)
{
    char t[64];
    const struct dip_flow *f = g->fl[pick((int)g->n)];
    switch (pick(16)) {
    case 0: case 1: case 2: case 3: emit(g, "//flow["); gen_pred(g); emit(g, "]"); break;
    case 4: emit(g, "/tank[@key='%s']//flow[", (const char *[]){ "src", "dst", "sport", "dport" }[pick(4)]);
        gen_pred(g);
        emit(g, "]");
        break;
    case 5: emit(g, "/tank/o[@v=%d]//flow", pick(2) ? 10 : f->src.b[12]); break;
    case 6: emit(g, "/tank/o[@v=%d]/o[@v %s %d]//flow[", pick(2) ? 10 : f->dst.b[12], ops[pick(6)],
                  pick(2) ? 1 : f->dst.b[13]);
        gen_pred(g);
        emit(g, "]");
        break;
    case 7: emit(g, "//p[@v %s %u]/flow", ops[pick(6)], pick(2) ? f->sport : f->dport); break;
    case 8: emit(g, "//o[@v=%d]//flow[", pick(2) ? 10 : 1); gen_pred(g); emit(g, "]"); break;
    case 9: emit(g, "/tank/v6/g[@v=%d]//flow", pick(2) ? 8193 : 0); break;
    case 10: emit(g, "//*[@v %s %d]/flow", ops[pick(6)], pick(2) ? 22 : 3); break;
    case 11: emit(g, "(//flow)["); gen_pred(g); emit(g, "]"); break;
    case 12: emit(g, "//flow["); gen_pred(g); emit(g, "]["); gen_pred(g); emit(g, "]"); break;
    case 13: emit(g, "//flow["); gen_pred(g); emit(g, "] | //flow["); gen_pred(g); emit(g, "]"); break;
    case 14: emit(g, "/descendant::flow["); gen_pred(g); emit(g, "]/self::flow"); break;
    default:
        attr_text(f, "src", t);
        emit(g, "/tank/*/*/*/*/flow[starts-with(@src, '%.*s')]", pick((int)strlen(t) + 1), t);
        break;
    }
}

static void gen_expr(struct gen *g)
{
    switch (pick(20)) {
    case 0: case 1: case 2: case 3: case 4: case 5: case 6: gen_flowset(g); break;
    case 7: case 8: emit(g, "count("); gen_flowset(g); emit(g, ")"); break;
    case 9: case 10: emit(g, "sum("); gen_flowset(g); emit(g, "/@%s)", pick(2) ? "bytes" : "dport"); break;
    case 11: emit(g, "boolean("); gen_flowset(g); emit(g, ")"); break;
    case 12: case 13: {
        const char *a = all_attrs[pick(NATTRS)];
        gen_flowset(g);
        emit(g, "/@%s %s ", a, ops[pick(6)]);
        gen_const(g, a);
        break;
    }
    case 14: emit(g, "("); gen_flowset(g); emit(g, "/@dport = 22) or ("); gen_flowset(g); emit(g, "/@src = '10.0.0.1')"); break;
    case 15: emit(g, "("); gen_flowset(g); emit(g, ")[%d]", 1 + pick(2)); break;
    case 16: emit(g, "count(//o[@v=%d]) + count(", pick(2) ? 10 : 1); gen_flowset(g); emit(g, ")"); break;
    case 17: emit(g, "not("); gen_flowset(g); emit(g, ")"); break;
    case 18: gen_flowset(g); emit(g, "/.."); break;
    default: emit(g, "//flow[@dport = //flow[%d]/@dport]", 1 + pick(3)); break;
    }
}

/* ---- the property ---- */

static bool same_result(enum dip_xpath_shape shape, struct result *a, struct result *b)
{
    if (a->type != b->type) return false;
    if (shape == DIP_XPATH_FLOWS) {
        uint64_t x[128], y[128];
        size_t n = id_set(a, x), m = id_set(b, y);
        return n == m && memcmp(x, y, n * sizeof *x) == 0;
    }
    if (a->type == XPATH_NUMBER) return same_number(a->num, b->num);
    if (a->type == XPATH_BOOLEAN) return a->b == b->b;
    return true;
}

static bool merged_equals(enum dip_xpath_shape shape, struct result *w, struct result *a, struct result *b)
{
    switch (shape) {
    case DIP_XPATH_FLOWS: {
        struct result u = *a;
        for (size_t i = 0; i < b->n && u.n < 128; i++) u.ids[u.n++] = b->ids[i];
        return same_result(shape, w, &u);
    }
    case DIP_XPATH_COUNT: case DIP_XPATH_SUM: return same_number(w->num, a->num + b->num);
    case DIP_XPATH_BOOLEAN: return w->b == (a->b || b->b);
    default: return true;
    }
}

static unsigned long failures;

static void report(const char *what, int tank, const char *expr, const struct dip_xpath *q)
{
    if (++failures > 20) return;
    char buf[4096];
    dip_xpath_explain(q, buf, sizeof buf);
    fprintf(stderr, "\n  %s on tank %d: %s\n%s", what, tank, expr, buf);
}

/* One case: returns false when libxml2 could not evaluate the expression. */
static bool run_case(void)
{
    struct dip_flow flows[MAXF], *all[MAXF], *kept[MAXF], *half[2][MAXF];
    size_t n = 1 + (size_t)pick(MAXF), nk = 0, nh[2] = { 0, 0 };
    for (size_t i = 0; i < n; i++) {
        gen_flow(&flows[i], i + 1);
        if (i && pick(3) == 0) { /* share keys with an earlier flow */
            flows[i].src = flows[pick((int)i)].src;
            flows[i].sport = flows[pick((int)i)].sport;
        }
        all[i] = &flows[i];
    }
    char expr[2048];
    struct gen g = { expr, expr + sizeof expr, all, n, 0 };
    gen_expr(&g);
    int tank = pick(4);
    bool ws = pick(2);
    struct dip_xpath *q;
    struct dip_xpath_error e;
    if (dip_xpath_compile(expr, strlen(expr), &q, &e) != DIP_OK) {
        fprintf(stderr, "\n  does not compile: %s: %s\n", expr, e.message);
        failures++;
        return false;
    }
    xmlDocPtr whole = build_doc(tank, all, n, ws);
    struct result rw;
    evaluate(whole, expr, &rw);
    xmlFreeDoc(whole);
    if (rw.type < 0) {
        dip_xpath_free(q);
        return false;
    }
    enum dip_xpath_shape shape = dip_xpath_shape(q);
    const char *why = NULL;
    for (size_t i = 0; i < n; i++) {
        const char *w;
        if (flow_may_match(q, tank, all[i], &w)) kept[nk++] = all[i];
        else why = w;
    }
    nh[0] = nh[1] = 0;
    for (size_t i = 0; i < n; i++) {
        int h = pick(2);
        half[h][nh[h]++] = all[i];
    }
    if (shape == DIP_XPATH_GATHER) {
        for (int k = 0; k < DIP_XPATH_KEYS; k++) {
            const struct dip_xpath_range *r;
            bool unc;
            dip_xpath_ranges(q, tank, (enum dip_xpath_key)k, &r, &unc);
            if (!unc) report("gather with ranges", tank, expr, q);
        }
    } else {
        if (shape == DIP_XPATH_FLOWS && rw.nonflow) report("FLOWS shape selected other nodes", tank, expr, q);
        struct result rk;
        xmlDocPtr pruned = build_doc(tank, kept, nk, ws);
        evaluate(pruned, expr, &rk);
        xmlFreeDoc(pruned);
        if (!same_result(shape, &rw, &rk)) {
            report("UNSOUND: pruning changed the result", tank, expr, q);
            if (why && failures <= 20) fprintf(stderr, "  (a flow was ruled out by %s)\n", why);
        }
        struct result ra, rb;
        xmlDocPtr da = build_doc(tank, half[0], nh[0], ws), db = build_doc(tank, half[1], nh[1], ws);
        evaluate(da, expr, &ra);
        evaluate(db, expr, &rb);
        xmlFreeDoc(da);
        xmlFreeDoc(db);
        if (!merged_equals(shape, &rw, &ra, &rb)) report("halves do not merge to the whole", tank, expr, q);
    }
    dip_xpath_free(q);
    return true;
}

static void test_random_expressions_are_sound_and_merge_against_libxml2(void)
{
    const char *env = getenv("DIP_XPATH_CASES");
    unsigned long cases = env ? strtoul(env, NULL, 10) : 100000;
    env = getenv("DIP_XPATH_SEED");
    rng_state = env ? strtoull(env, NULL, 10) | 1 : 0x9e3779b97f4a7c15ull;
    unsigned long evaluated = 0;
    failures = 0;
    for (unsigned long i = 0; i < cases; i++) evaluated += run_case();
    if (failures) fprintf(stderr, "\n  %lu failures in %lu cases\n", failures, cases);
    CU_ASSERT_EQUAL(failures, 0);
    CU_ASSERT(evaluated > cases / 2); /* most generated expressions are valid for libxml2 */
}

int dip_suite_xpath_prop(void)
{
    CU_pSuite s = CU_add_suite("xpath_prop", NULL, NULL);
    if (!s) return -1;
    CU_add_test(s, "random_expressions_are_sound_and_merge_against_libxml2",
                test_random_expressions_are_sound_and_merge_against_libxml2);
    return 0;
}
