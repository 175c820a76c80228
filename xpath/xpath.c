/* xpath.c - the public face of the XPath analyser (xpath.h): compiles an
 * expression (parse, analyse), keeps the per-tank key ranges in a compact
 * form, and answers the router's and store's questions about them. */
#include "xpath_int.h"

#include <libxml/parser.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

struct ranges {
    const struct dip_xpath_range *r;
    size_t n;
    bool unconstrained;
};

struct dip_xpath {
    enum dip_xpath_shape shape;
    int named_tank;
    struct ranges key[DIP_XPATH_TANKS][DIP_XPATH_KEYS];
    struct ranges attr[XP_FIELDS]; /* over all tanks */
    struct dip_xpath_range *store;
};

/* The whole domain of each field, for unconstrained answers. */
static struct dip_xpath_range full[XP_FIELDS][2];
static size_t full_n[XP_FIELDS];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init_once(void)
{
    xmlInitParser();
    for (int f = 0; f < XP_FIELDS; f++) {
        const struct xp_iset *d = xp_field_domain(f);
        for (uint32_t i = 0; i < d->n; i++) {
            full[f][i].lo = u128_put(d->v[i].lo);
            full[f][i].hi = u128_put(d->v[i].hi);
        }
        full_n[f] = d->n;
    }
}

static size_t count_of(const struct xp_iset *s) { return s ? s->n : 0; }

static void put_ranges(struct ranges *r, int f, const struct xp_iset *s, struct dip_xpath_range **next)
{
    if (!s) {
        r->r = full[f];
        r->n = full_n[f];
        r->unconstrained = true;
        return;
    }
    r->r = *next;
    r->n = s->n;
    r->unconstrained = false;
    for (uint32_t i = 0; i < s->n; i++) {
        (*next)[i].lo = u128_put(s->v[i].lo);
        (*next)[i].hi = u128_put(s->v[i].hi);
    }
    *next += s->n;
}

static struct dip_xpath *build(struct xp_arena *a, const struct xp_analysis *an)
{
    const struct xp_iset *attr[XP_FIELDS];
    size_t total = 0;
    for (int f = 0; f < XP_FIELDS; f++) {
        attr[f] = &xp_empty;
        for (int t = 0; t < DIP_XPATH_TANKS; t++) attr[f] = xp_set_or(a, attr[f], an->tank[t].f[f]);
        if (attr[f] && xp_set_covers(f, attr[f])) attr[f] = NULL;
        total += count_of(attr[f]);
        for (int t = 0; t < DIP_XPATH_TANKS && f < DIP_XPATH_KEYS; t++) total += count_of(an->tank[t].f[f]);
    }
    struct dip_xpath *q = calloc(1, sizeof *q);
    if (!q) return NULL;
    q->store = calloc(total ? total : 1, sizeof *q->store);
    if (!q->store) {
        free(q);
        return NULL;
    }
    q->shape = an->shape;
    q->named_tank = an->named_tank;
    struct dip_xpath_range *next = q->store;
    for (int t = 0; t < DIP_XPATH_TANKS; t++)
        for (int k = 0; k < DIP_XPATH_KEYS; k++) put_ranges(&q->key[t][k], k, an->tank[t].f[k], &next);
    for (int f = 0; f < XP_FIELDS; f++) put_ranges(&q->attr[f], f, attr[f], &next);
    return q;
}

static int parse_into(struct xp_arena *a, jmp_buf *jb, const char *text, size_t len, char **copy,
                      struct xp_node **root, struct dip_xpath_error *err)
{
    a->oom = jb;
    if (len > DIP_XPATH_MAX_LEN) return xp_parse(a, text, len, root, err); /* reports the limit */
    /* the copy keeps an embedded NUL, which xp_parse refuses with its column */
    *copy = xp_alloc(a, len + 1);
    memcpy(*copy, text, len);
    return xp_parse(a, *copy, len, root, err);
}

static int oom_error(int why, struct dip_xpath_error *err)
{
    if (err) {
        err->column = 0;
        snprintf(err->message, sizeof err->message, "%s",
                 why == 2 ? "expression too costly to analyse (memory limit)" : "out of memory");
    }
    return why == 2 ? DIP_ERANGE : DIP_ENOMEM;
}

int dip_xpath_compile(const char *text, size_t len, struct dip_xpath **out, struct dip_xpath_error *err)
{
    pthread_once(&once, init_once);
    *out = NULL;
    struct xp_arena a = { 0 };
    jmp_buf jb;
    volatile int rc;
    int why = setjmp(jb);
    if (why) {
        xp_arena_free(&a);
        return oom_error(why, err);
    }
    char *copy = NULL;
    struct xp_node *root;
    rc = parse_into(&a, &jb, text, len, &copy, &root, err);
    if (rc == DIP_OK) {
        struct xp_analysis an;
        xp_analyse(&a, copy, root, &an);
        *out = build(&a, &an);
        if (!*out) rc = oom_error(1, err);
    }
    xp_arena_free(&a);
    return rc;
}

int dip_xpath_syntax(const char *text, size_t len, char *out, size_t cap, size_t *written,
                     struct dip_xpath_error *err)
{
    struct xp_arena a = { 0 };
    jmp_buf jb;
    int why = setjmp(jb);
    if (why) {
        xp_arena_free(&a);
        return oom_error(why, err);
    }
    char *copy = NULL;
    struct xp_node *root;
    int rc = parse_into(&a, &jb, text, len, &copy, &root, err);
    if (rc == DIP_OK) {
        int n = xp_unparse(root, out, cap);
        if (written) *written = (size_t)n;
    }
    xp_arena_free(&a);
    return rc;
}

void dip_xpath_free(struct dip_xpath *q)
{
    if (!q) return;
    free(q->store);
    free(q);
}

enum dip_xpath_shape dip_xpath_shape(const struct dip_xpath *q) { return q->shape; }
int dip_xpath_named_tank(const struct dip_xpath *q) { return q->named_tank; }

size_t dip_xpath_ranges(const struct dip_xpath *q, int tank, enum dip_xpath_key key,
                        const struct dip_xpath_range **out, bool *unconstrained)
{
    if (tank < 0 || tank >= DIP_XPATH_TANKS || (int)key < 0 || key >= DIP_XPATH_KEYS) {
        pthread_once(&once, init_once);
        *out = full[key < DIP_XPATH_KEYS ? key : 0];
        *unconstrained = true;
        return full_n[key < DIP_XPATH_KEYS ? key : 0];
    }
    const struct ranges *r = &q->key[tank][key];
    *out = r->r;
    *unconstrained = r->unconstrained;
    return r->n;
}

static int cmp128(struct dip_u128 a, struct dip_u128 b)
{
    if (a.hi != b.hi) return a.hi < b.hi ? -1 : 1;
    return a.lo < b.lo ? -1 : a.lo > b.lo;
}

static bool ranges_hit(const struct ranges *r, struct dip_u128 lo, struct dip_u128 hi)
{
    if (r->unconstrained) return true;
    size_t a = 0, b = r->n;
    while (a < b) { /* first interval whose end is >= lo */
        size_t m = (a + b) / 2;
        if (cmp128(r->r[m].hi, lo) < 0) a = m + 1;
        else b = m;
    }
    return a < r->n && cmp128(r->r[a].lo, hi) <= 0;
}

bool dip_xpath_may_match(const struct dip_xpath *q, int tank, enum dip_xpath_key key, struct dip_u128 lo,
                         struct dip_u128 hi)
{
    if (tank < 0 || tank >= DIP_XPATH_TANKS || (int)key < 0 || key >= DIP_XPATH_KEYS) return true;
    return ranges_hit(&q->key[tank][key], lo, hi);
}

size_t dip_xpath_attr_ranges(const struct dip_xpath *q, const char *attr, const struct dip_xpath_range **out,
                             bool *unconstrained)
{
    int f = xp_field_find(attr, strlen(attr));
    if (f < 0) {
        static const struct dip_xpath_range any = { { 0, 0 }, { UINT64_MAX, UINT64_MAX } };
        *out = &any;
        *unconstrained = true;
        return 1;
    }
    *out = q->attr[f].r;
    *unconstrained = q->attr[f].unconstrained;
    return q->attr[f].n;
}

bool dip_xpath_attr_may_match(const struct dip_xpath *q, const char *attr, struct dip_u128 lo, struct dip_u128 hi)
{
    int f = xp_field_find(attr, strlen(attr));
    return f < 0 || ranges_hit(&q->attr[f], lo, hi);
}

/* Share of the key space: for addresses the larger of the IPv4 share (of
 * 2^32) and the IPv6 share (of the rest), so that both families count. */
static double share_of(const struct ranges *r, int key)
{
    if (r->unconstrained) return 1;
    long double v4 = 0, v6 = 0, ports = 0;
    const u128i b4 = XP_V4_BASE, e4 = XP_V4_BASE | 0xffffffffu;
    for (size_t i = 0; i < r->n; i++) {
        u128i lo = u128_get(r->r[i].lo), hi = u128_get(r->r[i].hi);
        if (key == XF_SPORT || key == XF_DPORT) {
            ports += (long double)(hi - lo) + 1;
            continue;
        }
        u128i l4 = lo > b4 ? lo : b4, h4 = hi < e4 ? hi : e4;
        long double in4 = l4 <= h4 ? (long double)(h4 - l4) + 1 : 0;
        v4 += in4;
        v6 += (long double)(hi - lo) + 1 - in4;
    }
    if (key == XF_SPORT || key == XF_DPORT) return (double)(ports / 65536.0L);
    long double s4 = v4 / 4294967296.0L, s6 = v6 / (ldexpl(1.0L, 128) - 4294967296.0L);
    return (double)(s4 > s6 ? s4 : s6);
}

int dip_xpath_best_tank(const struct dip_xpath *q, double *share, bool *tie)
{
    double s[DIP_XPATH_TANKS];
    for (int t = 0; t < DIP_XPATH_TANKS; t++) s[t] = share_of(&q->key[t][t], t);
    *tie = false;
    if (q->named_tank >= 0) {
        *share = s[q->named_tank];
        return q->named_tank;
    }
    /* a tank on which q selects nothing only wins when all are like that */
    int best = -1;
    for (int t = 0; t < DIP_XPATH_TANKS; t++)
        if (s[t] > 0 && (best < 0 || s[t] < s[best])) best = t;
    if (best < 0) best = 0;
    for (int t = 0; t < DIP_XPATH_TANKS; t++)
        if (t != best && s[t] == s[best]) *tie = true;
    *share = s[best];
    return best;
}

/* ---- explain ---- */

static const char *const shape_names[] = { "flows", "count", "sum", "boolean", "gather" };
static const char *const key_names[DIP_XPATH_KEYS] = { "src", "dst", "sport", "dport", "proto", "first", "last" };


static void put_value(struct xp_out *o, int key, struct dip_u128 v)
{
    char buf[64];
    if (key == XF_SRC || key == XF_DST) {
        xp_addr_format(u128_get(v), buf);
        xp_put(o, "%s", buf);
    } else if (v.hi == DIP_XPATH_ABSENT_HI && v.lo == 0) {
        xp_put(o, "absent");
    } else {
        xp_put(o, "%llu", (unsigned long long)v.lo);
    }
}

static void put_ranges_text(struct xp_out *o, int key, const struct ranges *r)
{
    if (r->unconstrained) { xp_put(o, "*"); return; }
    if (r->n == 0) { xp_put(o, "none"); return; }
    for (size_t i = 0; i < r->n && i < 6; i++) {
        if (i) xp_put(o, ",");
        put_value(o, key, r->r[i].lo);
        if (cmp128(r->r[i].lo, r->r[i].hi) != 0) {
            xp_put(o, "-");
            put_value(o, key, r->r[i].hi);
        }
    }
    if (r->n > 6) xp_put(o, ",... (%zu ranges)", r->n);
}

int dip_xpath_explain(const struct dip_xpath *q, char *buf, size_t cap)
{
    struct xp_out o = { buf, cap, 0 };
    if (cap) buf[0] = 0;
    double share;
    bool tie;
    int best = dip_xpath_best_tank(q, &share, &tie);
    xp_put(&o, "shape: %s\n", shape_names[q->shape]);
    xp_put(&o, "named tank: %s\n", q->named_tank >= 0 ? key_names[q->named_tank] : "none");
    xp_put(&o, "best tank: %s (share %.3g of its key space%s)\n", key_names[best], share, tie ? ", tied" : "");
    for (int t = 0; t < DIP_XPATH_TANKS; t++) {
        xp_put(&o, "tank %s:", key_names[t]);
        for (int k = 0; k < DIP_XPATH_KEYS; k++) {
            xp_put(&o, " %s=", key_names[k]);
            put_ranges_text(&o, k, &q->key[t][k]);
        }
        xp_put(&o, "\n");
    }
    bool any = false;
    for (int f = DIP_XPATH_KEYS; f < XP_FIELDS; f++)
        if (!q->attr[f].unconstrained) {
            xp_put(&o, "%s %s=", any ? "" : "attributes:", xp_field_name(f));
            put_ranges_text(&o, f, &q->attr[f]);
            any = true;
        }
    if (any) xp_put(&o, "\n");
    return (int)o.len;
}
