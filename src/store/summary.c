/* summary.c - min/max summaries of segments and chunks over the required
 * flow attributes, and the test whether a query can match inside one. */
#include "store_internal.h"

#include <string.h>

const char *const dip_summary_names[SUM_FIELDS] = { "src", "dst", "sport", "dport", "proto",
                                                    "packets", "bytes", "first", "last" };

void dip_summary_init(struct dip_summary *s)
{
    memset(s, 0, sizeof *s);
    for (int i = 0; i < SUM_FIELDS; i++) s->min[i] = (struct dip_u128){ UINT64_MAX, UINT64_MAX };
}

struct dip_u128 dip_summary_value(const struct dip_flow *f, enum summary_field field)
{
    struct dip_u128 v = { 0, 0 };
    switch (field) {
    case SUM_SRC:
    case SUM_DST: v = dip_u128_from_bytes(field == SUM_SRC ? f->src.b : f->dst.b); break;
    case SUM_SPORT: v.lo = f->sport; break;
    case SUM_DPORT: v.lo = f->dport; break;
    case SUM_PROTO: v.lo = f->proto; break;
    case SUM_PACKETS: v.lo = f->packets; break;
    case SUM_BYTES: v.lo = f->bytes; break;
    case SUM_FIRST: v.lo = f->first; break;
    case SUM_LAST: v.lo = f->last; break;
    default: break;
    }
    return v;
}

void dip_summary_add(struct dip_summary *s, const struct dip_flow *f)
{
    for (int i = 0; i < SUM_FIELDS; i++) {
        struct dip_u128 v = dip_summary_value(f, (enum summary_field)i);
        if (dip_u128_cmp(v, s->min[i]) < 0) s->min[i] = v;
        if (dip_u128_cmp(v, s->max[i]) > 0) s->max[i] = v;
    }
    s->count++;
}

void dip_summary_merge(struct dip_summary *into, const struct dip_summary *from)
{
    if (!from->count) return;
    for (int i = 0; i < SUM_FIELDS; i++) {
        if (dip_u128_cmp(from->min[i], into->min[i]) < 0) into->min[i] = from->min[i];
        if (dip_u128_cmp(from->max[i], into->max[i]) > 0) into->max[i] = from->max[i];
    }
    into->count += from->count;
}

/* The analyser constrains these summary fields directly. */
static const int analysed[][2] = {
    { SUM_SRC, DIP_XK_SRC }, { SUM_DST, DIP_XK_DST }, { SUM_SPORT, DIP_XK_SPORT }, { SUM_DPORT, DIP_XK_DPORT },
    { SUM_PROTO, DIP_XK_PROTO }, { SUM_FIRST, DIP_XK_FIRST }, { SUM_LAST, DIP_XK_LAST },
};

bool dip_summary_may_match(const struct dip_summary *s, const struct dip_xpath *q, int tank)
{
    if (!s->count) return false;
    for (size_t i = 0; i < sizeof analysed / sizeof analysed[0]; i++)
        if (!dip_xpath_may_match(q, tank, (enum dip_xpath_key)analysed[i][1], s->min[analysed[i][0]],
                                 s->max[analysed[i][0]]))
            return false;
    return true;
}
