/* map_split.c - the key space of the cluster map: keys of a tank in document
 * order, even splitting of a range among children, routing a record to the
 * child that owns it, testing a member's range against an analysed query,
 * and ranges as text. The map document itself is in map.c.
 *
 * Layer: routing. Depends on src/flow and xpath/. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "route/map.h"
#include "xpath/xpath.h"

typedef unsigned __int128 u128;

/* Addresses as 128-bit numbers (big-endian bytes): IPv4 is the block
 * ::ffff:0:0/96 of IPv4-mapped addresses. */
#define V4_BLOCK_LO (((u128)0xffff) << 32)
#define V4_BLOCK_HI (V4_BLOCK_LO | 0xffffffffu)
#define V4_SPACE ((u128)1 << 32)

static bool is_addr_tank(int tank) { return tank == DIP_KEY_SRC || tank == DIP_KEY_DST; }

static u128 addr_num(const struct dip_addr *a)
{
    u128 x = 0;
    for (int i = 0; i < 16; i++) x = (x << 8) | a->b[i];
    return x;
}

static void num_addr(u128 x, struct dip_addr *a)
{
    for (int i = 15; i >= 0; i--) {
        a->b[i] = (uint8_t)(x & 0xff);
        x >>= 8;
    }
}

static bool in_v4_block(u128 x) { return x >= V4_BLOCK_LO && x <= V4_BLOCK_HI; }

/* The position of an address in document order: IPv4 addresses take
 * 0 .. 2^32-1, the other 2^128 - 2^32 addresses follow in numeric order,
 * so the ordinals are exactly the 2^128 values of a u128. */
static u128 addr_ordinal(const struct dip_addr *a)
{
    u128 x = addr_num(a);
    if (in_v4_block(x)) return x - V4_BLOCK_LO;
    return x < V4_BLOCK_LO ? x + V4_SPACE : x;
}

static void ordinal_addr(u128 o, struct dip_addr *a)
{
    if (o < V4_SPACE) num_addr(V4_BLOCK_LO + o, a);
    else if (o - V4_SPACE < V4_BLOCK_LO) num_addr(o - V4_SPACE, a);
    else num_addr(o, a);
}

/* ---- keys ---- */

int dip_map_key_parse(int tank, const char *text, struct dip_map_key *out)
{
    memset(out, 0, sizeof *out);
    if (is_addr_tank(tank)) return dip_addr_parse(text, strlen(text), &out->addr);
    if (tank != DIP_KEY_SPORT && tank != DIP_KEY_DPORT) return DIP_EINVAL;
    /* decimal without sign, spaces or leading zeros, 0..65535 */
    size_t n = strlen(text);
    if (n == 0 || n > 5 || (n > 1 && text[0] == '0')) return DIP_EINVAL;
    uint32_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (text[i] < '0' || text[i] > '9') return DIP_EINVAL;
        v = v * 10 + (uint32_t)(text[i] - '0');
    }
    if (v > 65535) return DIP_EINVAL;
    out->port = v;
    return DIP_OK;
}

int dip_map_key_format(int tank, const struct dip_map_key *k, char *out, size_t cap)
{
    if (is_addr_tank(tank)) {
        char text[DIP_ADDR_TEXT_MAX];
        dip_addr_format(&k->addr, text);
        return snprintf(out, cap, "%s", text);
    }
    return snprintf(out, cap, "%" PRIu32, k->port);
}

int dip_map_key_cmp(int tank, const struct dip_map_key *a, const struct dip_map_key *b)
{
    if (is_addr_tank(tank)) return dip_addr_cmp(&a->addr, &b->addr);
    return a->port < b->port ? -1 : a->port > b->port;
}

bool dip_map_key_next(int tank, const struct dip_map_key *k, struct dip_map_key *next)
{
    memset(next, 0, sizeof *next);
    if (is_addr_tank(tank)) {
        u128 o = addr_ordinal(&k->addr);
        if (o == ~(u128)0) return false;
        ordinal_addr(o + 1, &next->addr);
        return true;
    }
    if (k->port >= 65535) return false;
    next->port = k->port + 1;
    return true;
}

void dip_map_flow_key(int tank, const struct dip_flow *f, struct dip_map_key *out)
{
    memset(out, 0, sizeof *out);
    switch (tank) {
    case DIP_KEY_SRC: out->addr = f->src; break;
    case DIP_KEY_DST: out->addr = f->dst; break;
    case DIP_KEY_SPORT: out->port = f->sport; break;
    case DIP_KEY_DPORT: out->port = f->dport; break;
    default: break;
    }
}

void dip_map_range_full(int tank, struct dip_map_range *r)
{
    memset(r, 0, sizeof *r);
    if (is_addr_tank(tank)) {
        ordinal_addr(0, &r->from.addr);
        ordinal_addr(~(u128)0, &r->to.addr);
    } else {
        r->from.port = 0;
        r->to.port = 65535;
    }
    r->id_from = 0;
    r->id_to = UINT64_MAX;
}

/* ---- splitting ---- */

/* Splits the numbers [lo, hi] of `bytes` bytes into n runs of whole prefix
 * groups at the coarsest byte depth that has at least n groups, the first
 * and last clipped to lo and hi. With skip_block (IPv6 in document order)
 * groups wholly inside the IPv4-mapped block are not counted and part ends
 * that fall inside it are moved out of it (lo and hi must lie outside it).
 * Returns DIP_OK, or DIP_EINVAL when [lo, hi] holds fewer than n values. */
static int split_prefix(u128 lo, u128 hi, unsigned bytes, bool skip_block, size_t n, u128 *plo, u128 *phi)
{
    for (unsigned depth = 1; depth <= bytes; depth++) {
        unsigned shift = 8 * (bytes - depth);
        u128 glo = lo >> shift, ghi = hi >> shift;
        u128 total = ghi - glo + 1; /* wraps only for 2^128 groups: never reached, n < 2^64 */
        /* groups wholly inside the block: only when a group is no larger than it */
        u128 blo = 1, bhi = 0;
        if (skip_block && shift <= 32) {
            blo = V4_BLOCK_LO >> shift;
            bhi = V4_BLOCK_HI >> shift;
            if (blo < glo) blo = glo;
            if (bhi > ghi) bhi = ghi;
        }
        u128 excluded = blo <= bhi ? bhi - blo + 1 : 0;
        u128 count = total - excluded;
        if (count < n) continue;
        u128 q = count / n, r = count % n, next = 0;
        u128 mask = ((u128)1 << shift) - 1;
        for (size_t i = 0; i < n; i++) {
            u128 len = q + (i < r ? 1 : 0);
            u128 first = glo + next, last = glo + next + len - 1;
            if (excluded && first >= blo) first += excluded;
            if (excluded && last >= blo) last += excluded;
            next += len;
            u128 a = first << shift, b = (last << shift) | mask;
            if (a < lo) a = lo;
            if (b > hi) b = hi;
            if (skip_block && in_v4_block(a)) a = V4_BLOCK_HI + 1;
            if (skip_block && in_v4_block(b)) b = V4_BLOCK_LO - 1;
            plo[i] = a;
            phi[i] = b;
        }
        return DIP_OK;
    }
    return DIP_EINVAL;
}

/* Splits the IPv6 addresses [from, to] (document order, both IPv6) into n
 * parts written to parts[0..n-1].from/to. */
static int split_v6(const struct dip_addr *from, const struct dip_addr *to, size_t n, struct dip_map_range *parts)
{
    u128 *lo = malloc(n * sizeof *lo), *hi = malloc(n * sizeof *hi);
    int rc = DIP_ENOMEM;
    if (lo && hi) rc = split_prefix(addr_num(from), addr_num(to), 16, true, n, lo, hi);
    for (size_t i = 0; rc == DIP_OK && i < n; i++) {
        num_addr(lo[i], &parts[i].from.addr);
        num_addr(hi[i], &parts[i].to.addr);
    }
    free(lo);
    free(hi);
    return rc;
}

static int split_addresses(const struct dip_map_range *r, size_t n, struct dip_map_range *parts)
{
    bool from4 = dip_addr_is_v4(&r->from.addr), to4 = dip_addr_is_v4(&r->to.addr);
    if (!from4) return split_v6(&r->from.addr, &r->to.addr, n, parts);
    uint32_t lo4 = dip_addr_v4(&r->from.addr), hi4 = to4 ? dip_addr_v4(&r->to.addr) : UINT32_MAX;
    if (to4 || (uint64_t)hi4 - lo4 + 1 >= n) {
        /* IPv4 by octets; any IPv6 goes to the last part */
        u128 *lo = malloc(n * sizeof *lo), *hi = malloc(n * sizeof *hi);
        int rc = lo && hi ? split_prefix(lo4, hi4, 4, false, n, lo, hi) : DIP_ENOMEM;
        for (size_t i = 0; rc == DIP_OK && i < n; i++) {
            dip_addr_from_v4(&parts[i].from.addr, (uint32_t)lo[i]);
            dip_addr_from_v4(&parts[i].to.addr, (uint32_t)hi[i]);
        }
        if (rc == DIP_OK && !to4) parts[n - 1].to.addr = r->to.addr;
        free(lo);
        free(hi);
        return rc;
    }
    /* fewer IPv4 addresses than parts: they all go to the first part and
     * the IPv6 addresses are split among the others */
    struct dip_addr v6_first;
    ordinal_addr(V4_SPACE, &v6_first);
    int rc = split_v6(&v6_first, &r->to.addr, n - 1, parts + 1);
    if (rc) return rc;
    parts[0].from.addr = r->from.addr;
    dip_addr_from_v4(&parts[0].to.addr, UINT32_MAX);
    return DIP_OK;
}

/* Equal runs over [lo, hi]: the first count % n runs one longer. */
static int split_runs(u128 lo, u128 hi, size_t n, u128 *plo, u128 *phi)
{
    u128 count = hi - lo + 1; /* callers' ranges hold at most 2^64 values */
    if (count < n) return DIP_EINVAL;
    u128 q = count / n, r = count % n, at = lo;
    for (size_t i = 0; i < n; i++) {
        u128 len = q + (i < r ? 1 : 0);
        plo[i] = at;
        phi[i] = at + len - 1;
        at += len;
    }
    return DIP_OK;
}

int dip_map_split(int tank, const struct dip_map_range *r, size_t n, struct dip_map_range *parts,
                  struct dip_errbuf *eb)
{
    if (tank < 0 || tank >= DIP_TANK_KEYS || n == 0) return dip_err_set(eb, DIP_EINVAL, "split: bad tank or count");
    if (dip_map_key_cmp(tank, &r->from, &r->to) > 0 || r->id_from > r->id_to)
        return dip_err_set(eb, DIP_EINVAL, "split: the range ends before it starts");
    u128 *lo = malloc(n * sizeof *lo), *hi = malloc(n * sizeof *hi);
    if (!lo || !hi) {
        free(lo);
        free(hi);
        return dip_err_set(eb, DIP_ENOMEM, "split: out of memory");
    }
    memset(parts, 0, n * sizeof *parts);
    int rc = split_runs(r->id_from, r->id_to, n, lo, hi);
    for (size_t i = 0; rc == DIP_OK && i < n; i++) {
        parts[i].id_from = (uint64_t)lo[i];
        parts[i].id_to = (uint64_t)hi[i];
    }
    if (rc == DIP_OK) {
        if (is_addr_tank(tank)) rc = split_addresses(r, n, parts);
        else {
            rc = split_runs(r->from.port, r->to.port, n, lo, hi);
            for (size_t i = 0; rc == DIP_OK && i < n; i++) {
                parts[i].from.port = (uint32_t)lo[i];
                parts[i].to.port = (uint32_t)hi[i];
            }
        }
    }
    free(lo);
    free(hi);
    if (rc == DIP_EINVAL) {
        char text[2 * DIP_ADDR_TEXT_MAX + 64];
        char a[DIP_ADDR_TEXT_MAX], b[DIP_ADDR_TEXT_MAX];
        dip_map_key_format(tank, &r->from, a, sizeof a);
        dip_map_key_format(tank, &r->to, b, sizeof b);
        snprintf(text, sizeof text, "%s-%s (ids %016" PRIx64 "-%016" PRIx64 ")", a, b, r->id_from, r->id_to);
        return dip_err_set(eb, rc, "split: the %s range %s holds fewer than %zu keys", dip_tank_key_name(tank),
                           text, n);
    }
    if (rc) return dip_err_set(eb, rc, "split: out of memory");
    return DIP_OK;
}

/* ---- routing ---- */

/* Compares f with the start of range r: <0 when f lies before it. */
static int flow_vs_start(const struct dip_map *m, int tank, const struct dip_map_range *r, const struct dip_flow *f,
                         const struct dip_map_key *key)
{
    if (m->strategy == DIP_MAP_RANDOM) return f->id < r->id_from ? -1 : f->id > r->id_from;
    return dip_map_key_cmp(tank, key, &r->from);
}

size_t dip_map_route(const struct dip_map *m, int mi, const struct dip_flow *f)
{
    const struct dip_map_member *p = &m->members[mi];
    if (p->nchildren == 0) return 0;
    struct dip_map_key key;
    dip_map_flow_key(p->tank, f, &key);
    /* the last child that starts at or before the key */
    size_t lo = 0, hi = p->nchildren; /* answer in [lo, hi) */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (flow_vs_start(m, p->tank, &m->members[p->children[mid]].range, f, &key) >= 0) lo = mid;
        else hi = mid;
    }
    return lo;
}

bool dip_map_owns(const struct dip_map *m, int mi, const struct dip_flow *f)
{
    const struct dip_map_member *p = &m->members[mi];
    if (m->strategy == DIP_MAP_RANDOM) return f->id >= p->range.id_from && f->id <= p->range.id_to;
    struct dip_map_key key;
    dip_map_flow_key(p->tank, f, &key);
    return dip_map_key_cmp(p->tank, &key, &p->range.from) >= 0 && dip_map_key_cmp(p->tank, &key, &p->range.to) <= 0;
}

/* ---- queries ---- */

static struct dip_u128 to_xpath(u128 x)
{
    struct dip_u128 v = { (uint64_t)(x >> 64), (uint64_t)x };
    return v;
}

static bool may_match_num(const struct dip_xpath *q, int tank, u128 lo, u128 hi)
{
    return dip_xpath_may_match(q, tank, (enum dip_xpath_key)tank, to_xpath(lo), to_xpath(hi));
}

/* The analyser's address space is numeric (IPv4 mapped), document order puts
 * the mapped block first: an interval becomes up to three numeric ones. */
static bool may_match_addresses(const struct dip_xpath *q, int tank, const struct dip_map_range *r)
{
    u128 from = addr_num(&r->from.addr), to = addr_num(&r->to.addr);
    bool from4 = in_v4_block(from), to4 = in_v4_block(to);
    if (from4 && may_match_num(q, tank, from, to4 ? to : V4_BLOCK_HI)) return true;
    if (to4) return false;
    u128 lo6 = from4 ? 0 : from; /* IPv6 part [lo6, to] without the block */
    if (lo6 < V4_BLOCK_LO && may_match_num(q, tank, lo6, to < V4_BLOCK_LO ? to : V4_BLOCK_LO - 1)) return true;
    if (to > V4_BLOCK_HI && may_match_num(q, tank, lo6 > V4_BLOCK_HI ? lo6 : V4_BLOCK_HI + 1, to)) return true;
    return false;
}

bool dip_map_may_match(const struct dip_map *m, int mi, const struct dip_xpath *q)
{
    if (m->strategy == DIP_MAP_RANDOM) return true;
    const struct dip_map_member *p = &m->members[mi];
    if (is_addr_tank(p->tank)) return may_match_addresses(q, p->tank, &p->range);
    return may_match_num(q, p->tank, p->range.from.port, p->range.to.port);
}

/* ---- text ---- */

int dip_map_range_text(const struct dip_map *m, int mi, char *out, size_t cap)
{
    const struct dip_map_member *p = &m->members[mi];
    if (m->strategy == DIP_MAP_RANDOM)
        return snprintf(out, cap, "id %016" PRIx64 "-%016" PRIx64, p->range.id_from, p->range.id_to);
    char a[DIP_ADDR_TEXT_MAX], b[DIP_ADDR_TEXT_MAX];
    dip_map_key_format(p->tank, &p->range.from, a, sizeof a);
    dip_map_key_format(p->tank, &p->range.to, b, sizeof b);
    return snprintf(out, cap, "%s-%s", a, b);
}

int dip_map_range_attrs(const struct dip_map *m, int mi, char *out, size_t cap)
{
    const struct dip_map_member *p = &m->members[mi];
    if (m->strategy == DIP_MAP_RANDOM)
        return snprintf(out, cap, "id-from=\"%016" PRIx64 "\" id-to=\"%016" PRIx64 "\"", p->range.id_from,
                        p->range.id_to);
    char a[DIP_ADDR_TEXT_MAX], b[DIP_ADDR_TEXT_MAX];
    dip_map_key_format(p->tank, &p->range.from, a, sizeof a);
    dip_map_key_format(p->tank, &p->range.to, b, sizeof b);
    return snprintf(out, cap, "from=\"%s\" to=\"%s\"", a, b);
}
