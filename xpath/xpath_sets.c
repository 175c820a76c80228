/* xpath_sets.c - the value domain of the XPath analyser: an arena, sorted
 * interval sets over 128-bit values, the tracked flow fields, and the sets a
 * single comparison denotes (numbers under XPath's double rounding, decimal
 * and address text prefixes, address literals as the store writes them). */
#include "xpath_int.h"

#include <arpa/inet.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- arena ---- */

struct xp_chunk {
    struct xp_chunk *next;
    max_align_t data[];
};

void *xp_alloc(struct xp_arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if ((size_t)(a->end - a->cur) < n) {
        size_t size = n > 16384 ? n : 16384;
        if (a->total + size > XP_ARENA_MAX) longjmp(*a->oom, 2);
        struct xp_chunk *c = malloc(sizeof *c + size);
        if (!c) longjmp(*a->oom, 1);
        c->next = a->head;
        a->head = c;
        a->cur = (char *)c->data;
        a->end = a->cur + size;
        a->total += size;
    }
    void *p = a->cur;
    a->cur += n;
    memset(p, 0, n);
    return p;
}

void xp_arena_free(struct xp_arena *a)
{
    if (a->cleanup) a->cleanup(a->cleanup_arg);
    a->cleanup = NULL;
    struct xp_chunk *c = a->head;
    while (c) {
        struct xp_chunk *n = c->next;
        free(c);
        c = n;
    }
    a->head = NULL;
    a->cur = a->end = NULL;
    a->total = 0;
}

/* ---- fields ---- */

static const struct {
    const char *name;
    u128i max;
    bool optional;
} fields[XP_FIELDS] = {
    [XF_SRC] = { "src", U128_MAX, false },
    [XF_DST] = { "dst", U128_MAX, false },
    [XF_SPORT] = { "sport", 65535, false },
    [XF_DPORT] = { "dport", 65535, false },
    [XF_PROTO] = { "proto", 255, false },
    [XF_FIRST] = { "first", UINT64_MAX, false },
    [XF_LAST] = { "last", UINT64_MAX, false },
    [XF_PACKETS] = { "packets", UINT64_MAX, false },
    [XF_BYTES] = { "bytes", UINT64_MAX, false },
    [XF_FLAGS] = { "flags", 255, true },
    [XF_TOS] = { "tos", 255, true },
    [XF_IN] = { "in", UINT32_MAX, true },
    [XF_OUT] = { "out", UINT32_MAX, true },
    [XF_SRCAS] = { "srcas", UINT32_MAX, true },
    [XF_DSTAS] = { "dstas", UINT32_MAX, true },
    [XF_SMASK] = { "smask", 255, true },
    [XF_DMASK] = { "dmask", 255, true },
    [XF_DOMAIN] = { "domain", UINT32_MAX, true },
    [XF_SAMPLING] = { "sampling", UINT32_MAX, true },
};

const struct xp_iset xp_empty = { 0 };

/* Domains: [0, max], plus XP_ABSENT for optional attributes. */
static struct {
    uint32_t n;
    struct xp_iv v[2];
} domains[XP_FIELDS];
static bool domains_ready;

static void domains_init(void)
{
    if (domains_ready) return; /* idempotent; concurrent first calls write equal values */
    for (int f = 0; f < XP_FIELDS; f++) {
        domains[f].v[0] = (struct xp_iv){ 0, fields[f].max };
        domains[f].n = 1;
        if (fields[f].optional) domains[f].v[domains[f].n++] = (struct xp_iv){ XP_ABSENT, XP_ABSENT };
    }
    __atomic_store_n(&domains_ready, true, __ATOMIC_RELEASE);
}

const char *xp_field_name(int f) { return f >= 0 && f < XP_FIELDS ? fields[f].name : "?"; }
bool xp_field_optional(int f) { return fields[f].optional; }
u128i xp_field_max(int f) { return fields[f].max; }

int xp_field_find(const char *name, size_t len)
{
    for (int f = 0; f < XP_FIELDS; f++)
        if (strlen(fields[f].name) == len && memcmp(fields[f].name, name, len) == 0) return f;
    return -1;
}

const struct xp_iset *xp_field_domain(int f)
{
    if (!__atomic_load_n(&domains_ready, __ATOMIC_ACQUIRE)) domains_init();
    return (const struct xp_iset *)&domains[f];
}

/* ---- sets ---- */

static struct xp_iset *set_new(struct xp_arena *a, size_t n)
{
    struct xp_iset *s = xp_alloc(a, sizeof *s + n * sizeof(struct xp_iv));
    s->n = (uint32_t)n;
    return s;
}

const struct xp_iset *xp_set_one(struct xp_arena *a, u128i lo, u128i hi)
{
    if (lo > hi) return &xp_empty;
    struct xp_iset *s = set_new(a, 1);
    s->v[0] = (struct xp_iv){ lo, hi };
    return s;
}

bool xp_set_is_empty(const struct xp_iset *x) { return x && x->n == 0; }

bool xp_set_has(const struct xp_iset *x, u128i v)
{
    if (!x) return true;
    size_t lo = 0, hi = x->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (x->v[mid].hi < v) lo = mid + 1;
        else hi = mid;
    }
    return lo < x->n && x->v[lo].lo <= v;
}

bool xp_set_covers(int f, const struct xp_iset *x)
{
    if (!x) return true;
    const struct xp_iset *d = xp_field_domain(f);
    for (uint32_t i = 0; i < d->n; i++) {
        /* each domain interval must lie inside one interval of x */
        size_t lo = 0, hi = x->n;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (x->v[mid].hi < d->v[i].lo) lo = mid + 1;
            else hi = mid;
        }
        if (lo == x->n || x->v[lo].lo > d->v[i].lo || x->v[lo].hi < d->v[i].hi) return false;
    }
    return true;
}

static int cmp_gap(const void *a, const void *b)
{
    const u128i *x = a, *y = b;
    return *x < *y ? -1 : *x > *y;
}

/* v: sorted, disjoint, non-adjacent-merged intervals. */
const struct xp_iset *xp_set_cap(struct xp_arena *a, struct xp_iv *v, size_t n, bool over)
{
    if (n > XP_SET_CAP) {
        size_t drop = n - XP_SET_CAP;
        if (over) {
            /* merge across the `drop` smallest gaps */
            u128i *gaps = xp_alloc(a, (n - 1) * sizeof *gaps);
            for (size_t i = 0; i + 1 < n; i++) gaps[i] = v[i + 1].lo - v[i].hi;
            qsort(gaps, n - 1, sizeof *gaps, cmp_gap);
            u128i limit = gaps[drop - 1];
            size_t below = 0;
            for (size_t i = 0; i < drop; i++) below += gaps[i] < limit;
            size_t at_limit = drop - below, m = 0;
            for (size_t i = 0; i < n; i++) {
                if (m > 0) {
                    u128i gap = v[i].lo - v[m - 1].hi;
                    bool merge = gap < limit || (gap == limit && at_limit > 0);
                    if (merge) {
                        if (gap == limit) at_limit--;
                        v[m - 1].hi = v[i].hi;
                        continue;
                    }
                }
                v[m++] = v[i];
            }
            n = m;
        } else {
            /* keep the XP_SET_CAP widest intervals */
            u128i *w = xp_alloc(a, n * sizeof *w);
            for (size_t i = 0; i < n; i++) w[i] = v[i].hi - v[i].lo;
            qsort(w, n, sizeof *w, cmp_gap);
            u128i limit = w[n - XP_SET_CAP];
            size_t above = 0;
            for (size_t i = 0; i < n; i++) above += w[i] > limit;
            size_t at_limit = XP_SET_CAP - above, m = 0;
            for (size_t i = 0; i < n; i++) {
                u128i width = v[i].hi - v[i].lo;
                if (width > limit || (width == limit && at_limit > 0)) {
                    if (width == limit) at_limit--;
                    v[m++] = v[i];
                }
            }
            n = m;
        }
    }
    struct xp_iset *s = set_new(a, n);
    memcpy(s->v, v, n * sizeof *v);
    return s;
}

/* Appends [lo, hi] to a sorted list under construction, merging adjacency. */
static void push_iv(struct xp_iv *v, size_t *n, u128i lo, u128i hi)
{
    if (*n > 0 && (v[*n - 1].hi == U128_MAX || v[*n - 1].hi + 1 >= lo)) {
        if (hi > v[*n - 1].hi) v[*n - 1].hi = hi;
        return;
    }
    v[(*n)++] = (struct xp_iv){ lo, hi };
}

/* A set being built in place with room for cap intervals. */
static struct xp_iset *set_build(struct xp_arena *a, size_t cap)
{
    struct xp_iset *s = xp_alloc(a, sizeof *s + (cap ? cap : 1) * sizeof(struct xp_iv));
    return s;
}

static const struct xp_iset *set_done(struct xp_arena *a, struct xp_iset *s, size_t n, bool over)
{
    if (n > XP_SET_CAP) return xp_set_cap(a, s->v, n, over);
    s->n = (uint32_t)n;
    return s;
}

const struct xp_iset *xp_set_and(struct xp_arena *a, const struct xp_iset *x, const struct xp_iset *y)
{
    if (!x) return y;
    if (!y || x == y) return x;
    if (!x->n) return x;
    if (!y->n) return y;
    if (x->n == 1 && y->n == 1) {
        if (x->v[0].lo >= y->v[0].lo && x->v[0].hi <= y->v[0].hi) return x;
        if (y->v[0].lo >= x->v[0].lo && y->v[0].hi <= x->v[0].hi) return y;
    }
    struct xp_iset *r = set_build(a, x->n + y->n);
    struct xp_iv *v = r->v;
    size_t n = 0, i = 0, j = 0;
    while (i < x->n && j < y->n) {
        u128i lo = x->v[i].lo > y->v[j].lo ? x->v[i].lo : y->v[j].lo;
        u128i hi = x->v[i].hi < y->v[j].hi ? x->v[i].hi : y->v[j].hi;
        if (lo <= hi) push_iv(v, &n, lo, hi);
        if (x->v[i].hi < y->v[j].hi) i++;
        else j++;
    }
    if (n == x->n && memcmp(v, x->v, n * sizeof *v) == 0) return x;
    if (n == y->n && memcmp(v, y->v, n * sizeof *v) == 0) return y;
    if (n == 0) return &xp_empty;
    return set_done(a, r, n, true);
}

const struct xp_iset *xp_set_or(struct xp_arena *a, const struct xp_iset *x, const struct xp_iset *y)
{
    if (!x || !y) return NULL;
    if (!x->n || x == y) return y;
    if (!y->n) return x;
    if (x->n == 1 && y->n == 1) {
        if (x->v[0].lo <= y->v[0].lo && x->v[0].hi >= y->v[0].hi) return x;
        if (y->v[0].lo <= x->v[0].lo && y->v[0].hi >= x->v[0].hi) return y;
    }
    struct xp_iset *r = set_build(a, x->n + y->n);
    struct xp_iv *v = r->v;
    size_t n = 0, i = 0, j = 0;
    while (i < x->n || j < y->n) {
        const struct xp_iv *t;
        if (j == y->n || (i < x->n && x->v[i].lo <= y->v[j].lo)) t = &x->v[i++];
        else t = &y->v[j++];
        push_iv(v, &n, t->lo, t->hi);
    }
    if (n == x->n && memcmp(v, x->v, n * sizeof *v) == 0) return x;
    if (n == y->n && memcmp(v, y->v, n * sizeof *v) == 0) return y;
    return set_done(a, r, n, true);
}

const struct xp_iset *xp_set_minus(struct xp_arena *a, int f, const struct xp_iset *u, const struct xp_iset *x)
{
    if (!x) return &xp_empty;
    if (!x->n) return u;
    if (!u) u = xp_field_domain(f);
    if (!u->n) return u;
    struct xp_iset *r = set_build(a, u->n + x->n + 1);
    struct xp_iv *v = r->v;
    size_t n = 0, j = 0;
    for (uint32_t i = 0; i < u->n; i++) {
        u128i lo = u->v[i].lo, hi = u->v[i].hi;
        bool done = false;
        while (j < x->n && x->v[j].hi < lo) j++;
        for (size_t k = j; k < x->n && x->v[k].lo <= hi; k++) {
            if (x->v[k].lo > lo) push_iv(v, &n, lo, x->v[k].lo - 1);
            if (x->v[k].hi >= hi) { done = true; break; }
            lo = x->v[k].hi + 1;
        }
        if (!done) push_iv(v, &n, lo, hi);
    }
    /* more than the cap: merging over-approximates, as may-sets need; a
     * must-set complement comes from a may-set, which the cap kept small */
    if (n == 0) return &xp_empty;
    return set_done(a, r, n, true);
}

const struct xp_iset *xp_set_widen(struct xp_arena *a, const struct xp_iset *x, int shift)
{
    if (!x || shift <= 0) return x;
    if (shift >= 128) return x->n ? NULL : x;
    u128i mask = ((u128i)1 << shift) - 1;
    bool aligned = true;
    for (uint32_t i = 0; i < x->n && aligned; i++) aligned = !(x->v[i].lo & mask) && (x->v[i].hi & mask) == mask;
    if (aligned) return x;
    struct xp_iset *r = set_build(a, x->n);
    size_t n = 0;
    for (uint32_t i = 0; i < x->n; i++) push_iv(r->v, &n, x->v[i].lo & ~mask, x->v[i].hi | mask);
    return set_done(a, r, n, true);
}

const struct xp_iset *xp_set_lift(struct xp_arena *a, const struct xp_iset *u, int pos, int width,
                                  const struct xp_iset *vals, bool may)
{
    static const struct xp_iset full128 = { 1, { { 0, U128_MAX } } };
    if (!vals) return u;
    if (!vals->n) return &xp_empty;
    if (!u) u = &full128;
    int above = pos + width;
    u128i low_mask = pos ? (((u128i)1 << pos) - 1) : 0;
    /* count the output before building it */
    u128i blocks = 0;
    for (uint32_t i = 0; i < u->n; i++) {
        u128i b = above >= 128 ? 0 : (u->v[i].hi >> above) - (u->v[i].lo >> above);
        if (b >= XP_SET_CAP) return may ? u : &xp_empty;
        blocks += b + 1;
        if (blocks * vals->n > XP_SET_CAP) return may ? u : &xp_empty;
    }
    struct xp_iv *v = xp_alloc(a, (size_t)(blocks * vals->n + 1) * sizeof *v);
    size_t n = 0;
    for (uint32_t i = 0; i < u->n; i++) {
        u128i first = above >= 128 ? 0 : u->v[i].lo >> above;
        u128i last = above >= 128 ? 0 : u->v[i].hi >> above;
        for (u128i b = first;; b++) {
            u128i base = above >= 128 ? 0 : b << above;
            for (uint32_t k = 0; k < vals->n; k++) {
                u128i lo = base | (vals->v[k].lo << pos), hi = base | (vals->v[k].hi << pos) | low_mask;
                if (lo < u->v[i].lo) lo = u->v[i].lo;
                if (hi > u->v[i].hi) hi = u->v[i].hi;
                if (lo <= hi) push_iv(v, &n, lo, hi);
            }
            if (b == last) break;
        }
    }
    return xp_set_cap(a, v, n, may);
}

/* ---- text prefixes ---- */

const struct xp_iset *xp_set_decimal_prefix(struct xp_arena *a, const char *digits, size_t len, u128i max)
{
    if (len == 0) return xp_set_one(a, 0, max);
    for (size_t i = 0; i < len; i++)
        if (digits[i] < '0' || digits[i] > '9') return &xp_empty;
    if (digits[0] == '0') return len == 1 ? xp_set_one(a, 0, 0) : &xp_empty;
    if (len > 39) return &xp_empty;
    u128i p = 0;
    for (size_t i = 0; i < len; i++) {
        if (p > max) return &xp_empty;
        p = p * 10 + (u128i)(digits[i] - '0');
    }
    struct xp_iv v[40];
    size_t n = 0;
    u128i scale = 1;
    for (int k = 0; k < 39 && p <= max; k++) {
        u128i lo = p, hi = p + scale - 1;
        if (hi > max) hi = max;
        push_iv(v, &n, lo, hi);
        if (p > max / 10 || scale > max / 10) break;
        p *= 10;
        scale *= 10;
    }
    return xp_set_cap(a, v, n, true);
}

/* Values of a 16-bit group whose lowercase hex (no leading zeros) starts with h. */
static size_t hex_prefix(const char *h, size_t len, struct xp_iv *v)
{
    if (len == 0) { v[0] = (struct xp_iv){ 0, 0xffff }; return 1; }
    if (len > 4) return 0;
    unsigned p = 0;
    for (size_t i = 0; i < len; i++) {
        int c = h[i], d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return 0;
        p = p * 16 + (unsigned)d;
    }
    if (h[0] == '0') {
        if (len > 1) return 0;
        v[0] = (struct xp_iv){ 0, 0 };
        return 1;
    }
    size_t n = 0;
    for (unsigned scale = 1; p <= 0xffff; p *= 16, scale *= 16) v[n++] = (struct xp_iv){ p, p + scale - 1 };
    return n;
}

static const struct xp_iset *v4_prefix(struct xp_arena *a, const char *s, size_t len)
{
    u128i fixed = 0;
    int octets = 0;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != '.') {
            if (s[i] < '0' || s[i] > '9') return &xp_empty;
            continue;
        }
        if (i == len) break;
        /* a complete octet s[start, i) */
        size_t n = i - start;
        if (n == 0 || n > 3 || (n > 1 && s[start] == '0') || octets == 3) return &xp_empty;
        unsigned val = 0;
        for (size_t k = start; k < i; k++) val = val * 10 + (unsigned)(s[k] - '0');
        if (val > 255) return &xp_empty;
        fixed = (fixed << 8) | val;
        octets++;
        start = i + 1;
    }
    const struct xp_iset *part = xp_set_decimal_prefix(a, s + start, len - start, 255);
    int pos = (3 - octets) * 8;
    u128i base = XP_V4_BASE | (octets ? fixed << (pos + 8) : 0);
    u128i block_hi = base | (octets ? (((u128i)1 << (pos + 8)) - 1) : 0xffffffffu);
    return xp_set_lift(a, xp_set_one(a, base, block_hi), pos, 8, part, true);
}

static const struct xp_iset *v6_prefix(struct xp_arena *a, const char *s, size_t len)
{
    bool colon = memchr(s, ':', len) != NULL;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == ':' || c == '.')) return &xp_empty;
    }
    if (!colon && memchr(s, '.', len)) return &xp_empty; /* IPv6 text has ':' before any '.' */
    if (len > 0 && (s[0] == ':' || memmem(s, len, "::", 2))) return NULL; /* compressed: not modelled */
    u128i fixed = 0;
    int groups = 0;
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != ':') continue;
        struct xp_iv g[5];
        size_t n = i - start;
        if (n == 0 || hex_prefix(s + start, n, g) == 0 || g[0].hi != g[0].lo) return &xp_empty;
        if (groups == 8) return &xp_empty;
        fixed = (fixed << 16) | g[0].lo;
        groups++;
        start = i + 1;
    }
    if (groups >= 8) return &xp_empty;
    const char *tail = s + start;
    size_t tlen = len - start;
    int pos = (7 - groups) * 16;
    u128i base = groups ? fixed << (pos + 16) : 0;
    u128i hi = base | (pos + 16 >= 128 ? U128_MAX : (((u128i)1 << (pos + 16)) - 1));
    const struct xp_iset *block = xp_set_one(a, base, hi);
    if (memchr(tail, '.', tlen) || (groups >= 6 && tlen && strspn(tail, "0123456789") >= tlen))
        return block; /* possibly mixed notation: only the full groups are known */
    struct xp_iv g[5];
    size_t n = hex_prefix(tail, tlen, g);
    if (!n) return &xp_empty;
    struct xp_iset *vals = xp_alloc(a, sizeof *vals + n * sizeof g[0]);
    vals->n = (uint32_t)n;
    memcpy(vals->v, g, n * sizeof g[0]);
    return xp_set_lift(a, block, pos, 16, vals, true);
}

const struct xp_iset *xp_set_addr_prefix(struct xp_arena *a, const char *prefix, size_t len,
                                         const struct xp_iset **exact_v4)
{
    const struct xp_iset *v4 = v4_prefix(a, prefix, len);
    *exact_v4 = v4;
    const struct xp_iset *v6 = v6_prefix(a, prefix, len);
    return xp_set_or(a, v4, v6);
}

/* ---- numbers ---- */

/* The XPath number of the decimal text of x: exact to 2^53, then within a
 * relative 2^-40 (libxml2 accumulates digits in doubles). */
static long double low_d(u128i x)
{
    long double d = (long double)x;
    return x <= ((u128i)1 << 53) ? d : d * (1.0L - 0x1p-40L);
}
static long double high_d(u128i x)
{
    long double d = (long double)x;
    return x <= ((u128i)1 << 53) ? d : d * (1.0L + 0x1p-40L);
}

/* Largest x in [0, max] with pred(x) (pred true on a prefix of [0, max]),
 * or -1 as *found = false. */
static u128i last_true(u128i max, bool (*pred)(u128i, long double), long double c, bool *found)
{
    if (!pred(0, c)) { *found = false; return 0; }
    *found = true;
    u128i lo = 0, hi = max;
    while (lo < hi) {
        u128i mid = lo + (hi - lo + 1) / 2;
        if (pred(mid, c)) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

static bool p_low_lt(u128i x, long double c) { return low_d(x) < c; }
static bool p_low_le(u128i x, long double c) { return low_d(x) <= c; }
static bool p_high_lt(u128i x, long double c) { return high_d(x) < c; }
static bool p_high_le(u128i x, long double c) { return high_d(x) <= c; }

/* {x <= max : pred(x)} for pred true on a prefix; complement-style for suffix. */
static const struct xp_iset *prefix_set(struct xp_arena *a, u128i max, bool (*pred)(u128i, long double),
                                        long double c)
{
    bool found;
    u128i last = last_true(max, pred, c, &found);
    return found ? xp_set_one(a, 0, last) : &xp_empty;
}
static const struct xp_iset *suffix_set(struct xp_arena *a, u128i max, bool (*not_pred)(u128i, long double),
                                        long double c)
{
    /* pred(x) = !not_pred(x), not_pred true on a prefix */
    bool found;
    u128i last = last_true(max, not_pred, c, &found);
    if (!found) return xp_set_one(a, 0, max);
    return last == max ? &xp_empty : xp_set_one(a, last + 1, max);
}

void xp_num_cmp(struct xp_arena *a, int op, double c, bool c_exact, u128i max,
                const struct xp_iset **may, const struct xp_iset **must)
{
    if (isnan(c)) {
        bool ne = op == XO_NE;
        *may = *must = ne ? xp_set_one(a, 0, max) : &xp_empty;
        return;
    }
    if (c_exact && fabs(c) <= 0x1p52) {
        /* the boundary lies where every number is exact, and any x beyond
         * 2^53 compares as larger: plain integer bounds */
        const struct xp_iset *all = xp_set_one(a, 0, max), *r = &xp_empty;
        double fl = floor(c), ce = ceil(c);
        switch (op) {
        case XO_LT: r = c <= 0 ? &xp_empty : xp_set_one(a, 0, (u128i)ce - 1); break;
        case XO_LE: r = c < 0 ? &xp_empty : xp_set_one(a, 0, (u128i)fl); break;
        case XO_GT: r = c < 0 ? all : xp_set_one(a, (u128i)fl + 1, max); break;
        case XO_GE: r = c <= 0 ? all : xp_set_one(a, (u128i)ce, max); break;
        case XO_EQ: case XO_NE:
            r = c >= 0 && c == fl ? xp_set_one(a, (u128i)c, (u128i)c) : &xp_empty;
            break;
        default: r = all; break;
        }
        r = xp_set_and(a, r, all);
        *may = *must = op == XO_NE ? xp_set_minus(a, XF_SRC, all, r) : r;
        return;
    }
    long double clo = c, chi = c;
    if (!c_exact) {
        long double e = fabsl((long double)c) * 0x1p-40L;
        clo -= e;
        chi += e;
    }
    switch (op) {
    case XO_LT:
        *may = prefix_set(a, max, p_low_lt, chi);
        *must = prefix_set(a, max, p_high_lt, clo);
        return;
    case XO_LE:
        *may = prefix_set(a, max, p_low_le, chi);
        *must = prefix_set(a, max, p_high_le, clo);
        return;
    case XO_GT: /* high_d(x) > clo  <=>  !(high_d(x) <= clo) */
        *may = suffix_set(a, max, p_high_le, clo);
        *must = suffix_set(a, max, p_low_le, chi);
        return;
    case XO_GE:
        *may = suffix_set(a, max, p_high_lt, clo);
        *must = suffix_set(a, max, p_low_lt, chi);
        return;
    case XO_EQ:
    case XO_NE: {
        const struct xp_iset *eq_may =
            xp_set_and(a, prefix_set(a, max, p_low_le, chi), suffix_set(a, max, p_high_lt, clo));
        const struct xp_iset *eq_must = &xp_empty;
        if (c_exact && c >= 0 && c <= 0x1p53 && c == floor(c) && (u128i)c <= max)
            eq_must = xp_set_one(a, (u128i)c, (u128i)c);
        const struct xp_iset *all = xp_set_one(a, 0, max);
        if (op == XO_EQ) {
            *may = eq_may;
            *must = eq_must;
        } else {
            *may = xp_set_minus(a, XF_SRC, all, eq_must);
            *must = xp_set_minus(a, XF_SRC, all, eq_may);
        }
        return;
    }
    default:
        *may = xp_set_one(a, 0, max);
        *must = &xp_empty;
    }
}

/* ---- addresses ---- */

bool xp_addr_parse(const char *text, size_t len, u128i *v, bool *canonical)
{
    char buf[64];
    if (len == 0 || len >= sizeof buf) return false;
    memcpy(buf, text, len);
    buf[len] = 0;
    unsigned char b[16];
    if (inet_pton(AF_INET, buf, b) == 1) {
        *v = XP_V4_BASE | ((u128i)b[0] << 24) | ((u128i)b[1] << 16) | ((u128i)b[2] << 8) | b[3];
        *canonical = true; /* inet_pton takes only the strict dotted quad */
        return true;
    }
    if (inet_pton(AF_INET6, buf, b) != 1) return false;
    u128i x = 0;
    for (int i = 0; i < 16; i++) x = (x << 8) | b[i];
    *v = x;
    char out[64];
    xp_addr_format(x, out);
    *canonical = strcmp(out, buf) == 0;
    return true;
}

size_t xp_addr_format(u128i v, char *out)
{
    unsigned char b[16];
    for (int i = 15; i >= 0; i--, v >>= 8) b[i] = (unsigned char)v;
    static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    const char *r = memcmp(b, mapped, 12) == 0 ? inet_ntop(AF_INET, b + 12, out, 46)
                                               : inet_ntop(AF_INET6, b, out, 46);
    if (!r) {
        out[0] = 0;
        return 0;
    }
    return strlen(out);
}
