/* record.c - from template fields to a struct dip_flow: which Information
 * Element feeds which record field (RFC 7012 numbering, which NetFlow v9 field
 * types 1-127 share), time conversions (sysUpTime with 32-bit wrap-around,
 * seconds, milliseconds, NTP micro/nanoseconds, deltas), ICMP type/code and
 * sampling, and options records that configure sampling and system init time.
 * Part of the collector's shared template engine (collect_int.h). */
#include <stddef.h>
#include <string.h>

#include "collect_int.h"

#define NTP_UNIX_OFFSET 2208988800ull /* seconds from 1900-01-01 to 1970-01-01 */
#define BIT(t) (1ull << (t))

static uint8_t if_uint(uint16_t len, uint8_t target) { return len >= 1 && len <= 8 ? target : T_SKIP; }
static uint8_t if_len(uint16_t len, uint16_t want, uint8_t target) { return len == want ? target : T_SKIP; }

/* Maps an IANA IPFIX Information Element (or v9 field type) of the given
 * length to its target. Unsigned fields accept reduced-size encoding (RFC
 * 7011 6.2); addresses and NTP timestamps need their exact size. Anything
 * else, and v9 option scope fields (their numbers are scope types, not
 * elements), is skipped by length. */
uint8_t collect_target_of(uint16_t ie, uint16_t len, int v9_scope)
{
    if (v9_scope) return T_SKIP;
    if (ie == 315) return T_FRAME_L2; /* dataLinkFrameSection, any length */
    if (ie == 313) return T_FRAME_IP; /* ipHeaderPacketSection */
    if (len == VAR_LEN) return T_SKIP;
    switch (ie) {
    case 1: return if_uint(len, T_BYTES);
    case 2: return if_uint(len, T_PACKETS);
    case 85: return if_uint(len, T_BYTES_TOTAL);
    case 86: return if_uint(len, T_PACKETS_TOTAL);
    case 4: return if_uint(len, T_PROTO);
    case 5: return if_uint(len, T_TOS);
    case 6: return if_uint(len, T_FLAGS);
    case 7: return if_uint(len, T_SPORT);
    case 11: return if_uint(len, T_DPORT);
    case 8: return if_len(len, 4, T_SRC4);
    case 12: return if_len(len, 4, T_DST4);
    case 27: return if_len(len, 16, T_SRC6);
    case 28: return if_len(len, 16, T_DST6);
    case 9: case 29: return if_uint(len, T_SMASK);
    case 13: case 30: return if_uint(len, T_DMASK);
    case 10: return if_uint(len, T_IN);
    case 14: return if_uint(len, T_OUT);
    case 15: return if_len(len, 4, T_NH4);
    case 62: return if_len(len, 16, T_NH6);
    case 18: return if_len(len, 4, T_BGPNH4);
    case 63: return if_len(len, 16, T_BGPNH6);
    case 16: return if_uint(len, T_SRCAS);
    case 17: return if_uint(len, T_DSTAS);
    case 21: return if_uint(len, T_UP_LAST);
    case 22: return if_uint(len, T_UP_FIRST);
    case 150: return if_uint(len, T_START_S);
    case 151: return if_uint(len, T_END_S);
    case 152: return if_uint(len, T_START_MS);
    case 153: return if_uint(len, T_END_MS);
    case 154: return if_len(len, 8, T_START_US);
    case 155: return if_len(len, 8, T_END_US);
    case 156: return if_len(len, 8, T_START_NS);
    case 157: return if_len(len, 8, T_END_NS);
    case 158: return if_uint(len, T_START_DUS);
    case 159: return if_uint(len, T_END_DUS);
    case 160: return if_uint(len, T_SYSINIT);
    case 161: return if_uint(len, T_DUR_MS);
    case 162: return if_uint(len, T_DUR_US);
    case 32: case 139: return if_uint(len, T_ICMP_TC);
    case 176: case 178: return if_uint(len, T_ICMP_TYPE);
    case 177: case 179: return if_uint(len, T_ICMP_CODE);
    case 34: return if_uint(len, T_SAMP_INTERVAL);
    case 48: return if_uint(len, T_SAMPLER_ID);
    case 50: return if_uint(len, T_SAMPLER_RAND);
    case 302: return if_uint(len, T_SELECTOR_ID);
    case 305: return if_uint(len, T_SAMP_PKT_INTERVAL);
    case 306: return if_uint(len, T_SAMP_PKT_SPACE);
    case 309: return if_uint(len, T_SAMP_SIZE);
    case 310: return if_uint(len, T_SAMP_POP);
    case 312: return if_uint(len, T_FRAME_SIZE);
    default: return T_SKIP;
    }
}

/* Chooses op->kind for a mapped field of a fixed-length template. */
void collect_op_compile(struct field_op *op)
{
    static const struct { uint8_t target, width; uint8_t off; uint16_t present; } direct[] = {
        { T_BYTES, 8, offsetof(struct dip_flow, bytes), 0 },
        { T_PACKETS, 8, offsetof(struct dip_flow, packets), 0 },
        { T_PROTO, 1, offsetof(struct dip_flow, proto), 0 },
        { T_TOS, 1, offsetof(struct dip_flow, tos), DIP_F_TOS },
        { T_FLAGS, 1, offsetof(struct dip_flow, flags), DIP_F_FLAGS },
        { T_SMASK, 1, offsetof(struct dip_flow, smask), DIP_F_SMASK },
        { T_DMASK, 1, offsetof(struct dip_flow, dmask), DIP_F_DMASK },
        { T_SPORT, 2, offsetof(struct dip_flow, sport), 0 },
        { T_DPORT, 2, offsetof(struct dip_flow, dport), 0 },
        { T_IN, 4, offsetof(struct dip_flow, in), DIP_F_IN },
        { T_OUT, 4, offsetof(struct dip_flow, out), DIP_F_OUT },
        { T_SRCAS, 4, offsetof(struct dip_flow, srcas), DIP_F_SRCAS },
        { T_DSTAS, 4, offsetof(struct dip_flow, dstas), DIP_F_DSTAS },
        { T_SRC4, 16, offsetof(struct dip_flow, src), 0 },
        { T_DST4, 16, offsetof(struct dip_flow, dst), 0 },
        { T_NH4, 16, offsetof(struct dip_flow, nexthop), DIP_F_NEXTHOP },
        { T_SRC6, 16, offsetof(struct dip_flow, src), 0 },
        { T_DST6, 16, offsetof(struct dip_flow, dst), 0 },
        { T_NH6, 16, offsetof(struct dip_flow, nexthop), DIP_F_NEXTHOP },
    };
    op->kind = SK_SLOW;
    op->present = 0;
    if (op->target > T_LAST_DIRECT && op->target < T_FRAME_L2) {
        op->kind = SK_RAW;
        return;
    }
    for (size_t i = 0; i < sizeof direct / sizeof direct[0]; i++) {
        if (direct[i].target != op->target) continue;
        uint8_t w = direct[i].width;
        uint16_t len = op->len;
        if (w == 16) op->kind = len == 4 ? SK_ADDR4 : SK_ADDR16;
        else if (w == 1 && len == 1) op->kind = SK_U8_1;
        else if (w == 2 && len == 2) op->kind = SK_U16_2;
        else if (w == 4 && len == 2) op->kind = SK_U32_2;
        else if (w == 4 && len == 4) op->kind = SK_U32_4;
        else if (w == 8 && len == 4) op->kind = SK_U64_4;
        else if (w == 8 && len == 8) op->kind = SK_U64_8;
        op->store_off = direct[i].off;
        op->present = direct[i].present;
        return;
    }
}

/* NTP timestamp (RFC 5905: seconds since 1900, 32-bit fraction) to Unix ms. */
static uint64_t ntp_to_ms(uint64_t ntp)
{
    uint64_t secs = ntp >> 32, frac = ntp & 0xffffffffu;
    if (secs < NTP_UNIX_OFFSET) return 0;
    return (secs - NTP_UNIX_OFFSET) * 1000 + ((frac * 1000) >> 32);
}

/* A sysUpTime-relative time to Unix ms. NetFlow v5/v9: relative to the
 * header's sysUpTime at export time; the difference is taken modulo 2^32 and
 * read as signed, so a flow that started before the 32-bit uptime counter
 * wrapped (every ~49.7 days) still lands just before the export time.
 * IPFIX: relative to systemInitTimeMilliseconds (RFC 7011 / IANA 21, 22),
 * from the record or an options record; unknown: the export time. */
uint64_t collect_uptime_ms(uint64_t export_ms, uint32_t sysuptime, uint32_t up)
{
    int64_t ago = (int32_t)(sysuptime - up);
    if (ago > 0 && (uint64_t)ago > export_ms) return 0;
    return (uint64_t)((int64_t)export_ms - ago);
}

static uint64_t uptime_to_ms(const struct msg *m, const struct rec *r, uint64_t up)
{
    if (m->version == 10) {
        if (r->have & BIT(T_SYSINIT)) return r->v[T_SYSINIT] + up;
        if (m->dom->has_sysinit) return m->dom->sysinit_ms + up;
        return m->export_ms;
    }
    return collect_uptime_ms(m->export_ms, m->sysuptime, (uint32_t)up);
}

static uint64_t sub_floor(uint64_t a, uint64_t b) { return a > b ? a - b : 0; }

/* Start (end = 0) or end (end = 1) time from the most precise element present. */
static int rec_time(const struct msg *m, const struct rec *r, int end, uint64_t *out)
{
    const uint64_t *v = r->v;
    uint64_t have = r->have;
    if (have & BIT(T_START_MS + end)) *out = v[T_START_MS + end];
    else if (have & BIT(T_START_US + end)) *out = ntp_to_ms(v[T_START_US + end]);
    else if (have & BIT(T_START_NS + end)) *out = ntp_to_ms(v[T_START_NS + end]);
    else if (have & BIT(T_START_S + end)) *out = v[T_START_S + end] * 1000;
    else if (have & BIT(T_START_DUS + end)) *out = sub_floor(m->export_ms, v[T_START_DUS + end] / 1000);
    else if (have & BIT(end ? T_UP_LAST : T_UP_FIRST)) *out = uptime_to_ms(m, r, v[end ? T_UP_LAST : T_UP_FIRST]);
    else return 0;
    return 1;
}

static int rec_duration(const struct rec *r, uint64_t *ms)
{
    if (r->have & BIT(T_DUR_MS)) *ms = r->v[T_DUR_MS];
    else if (r->have & BIT(T_DUR_US)) *ms = r->v[T_DUR_US] / 1000;
    else return 0;
    return 1;
}

static void rec_times(const struct msg *m, const struct rec *r, struct dip_flow *f)
{
    uint64_t first = 0, last = 0, dur;
    int has_first = rec_time(m, r, 0, &first), has_last = rec_time(m, r, 1, &last);
    if (has_first && !has_last) last = rec_duration(r, &dur) ? first + dur : first;
    else if (!has_first && has_last) first = rec_duration(r, &dur) ? sub_floor(last, dur) : last;
    else if (!has_first) first = last = m->export_ms;
    f->first = first;
    f->last = last;
}

/* The sampling rate an options record or a data record carries itself:
 * samplerRandomInterval or samplingInterval (RFC 3954 8: 1 out of N),
 * systematic count-based interval+space, or random n-out-of-N size and
 * population (RFC 5477 8.2). 0 when none. */
static uint32_t inline_rate(const struct rec *r)
{
    const uint64_t *v = r->v;
    uint64_t have = r->have, rate = 0;
    const uint64_t pkt = BIT(T_SAMP_PKT_INTERVAL) | BIT(T_SAMP_PKT_SPACE), npop = BIT(T_SAMP_SIZE) | BIT(T_SAMP_POP);
    if (have & BIT(T_SAMPLER_RAND)) rate = v[T_SAMPLER_RAND];
    else if (have & BIT(T_SAMP_INTERVAL)) rate = v[T_SAMP_INTERVAL];
    else if ((have & pkt) == pkt && v[T_SAMP_PKT_INTERVAL])
        rate = (v[T_SAMP_PKT_INTERVAL] + v[T_SAMP_PKT_SPACE]) / v[T_SAMP_PKT_INTERVAL];
    else if ((have & npop) == npop && v[T_SAMP_SIZE])
        rate = v[T_SAMP_POP] / v[T_SAMP_SIZE];
    return rate > 0xffffffffu ? 0xffffffffu : (uint32_t)rate;
}

static int rec_sampler_id(const struct rec *r, uint64_t *id)
{
    if (r->have & BIT(T_SELECTOR_ID)) *id = r->v[T_SELECTOR_ID];
    else if (r->have & BIT(T_SAMPLER_ID)) *id = r->v[T_SAMPLER_ID];
    else return 0;
    return 1;
}

static uint32_t rec_sampling(const struct domain *d, const struct rec *r)
{
    uint32_t rate = inline_rate(r);
    if (rate) return rate;
    uint64_t id;
    if (rec_sampler_id(r, &id))
        for (uint32_t i = 0; i < d->nsamplers; i++)
            if (d->samplers[i].id == id) return d->samplers[i].rate;
    return d->default_rate;
}

/* A packet sample (RFC 7133 / IANA 313, 315: the first bytes of a packet)
 * instead of a flow: the outer IP header and ports give the record's key.
 * Ethernet with 802.1Q/802.1ad tags, then IPv4 or IPv6 (no extension headers
 * followed). Returns 1 when addresses were found. */
static int rec_from_frame(const struct rec *r, struct dip_flow *f, uint64_t *ip_len)
{
    struct dip_cursor c = dip_cursor_make(r->frame, r->frame_len);
    uint16_t type = 0;
    uint8_t vihl, tos, proto;
    if (r->have & BIT(T_FRAME_L2)) {
        if (!dip_cursor_skip(&c, 12) || !dip_cursor_u16(&c, &type)) return 0;
        while ((type == 0x8100 || type == 0x88a8) && dip_cursor_skip(&c, 2))
            if (!dip_cursor_u16(&c, &type)) return 0;
    } else if (c.left) {
        type = (c.p[0] >> 4) == 6 ? 0x86dd : 0x0800;
    }
    const uint8_t *ip = c.p;
    if (type == 0x0800) {
        uint16_t total, frag;
        if (!dip_cursor_u8(&c, &vihl) || (vihl >> 4) != 4 || !dip_cursor_u8(&c, &tos) || !dip_cursor_u16(&c, &total) ||
            !dip_cursor_skip(&c, 2) || !dip_cursor_u16(&c, &frag) || !dip_cursor_skip(&c, 1) ||
            !dip_cursor_u8(&c, &proto) || !dip_cursor_skip(&c, 2) || c.left < 8)
            return 0;
        dip_addr_from_v4(&f->src, dip_get_u32(c.p));
        dip_addr_from_v4(&f->dst, dip_get_u32(c.p + 4));
        *ip_len = total;
        c = dip_cursor_make(ip, r->frame_len - (size_t)(ip - r->frame));
        if ((frag & 0x1fff) || !dip_cursor_skip(&c, (size_t)(vihl & 15) * 4)) c.left = 0; /* no L4 header */
    } else if (type == 0x86dd) {
        uint32_t vtc;
        uint16_t plen;
        if (!dip_cursor_u32(&c, &vtc) || !dip_cursor_u16(&c, &plen) || !dip_cursor_u8(&c, &proto) ||
            !dip_cursor_skip(&c, 1) || c.left < 32)
            return 0;
        tos = (uint8_t)(vtc >> 20);
        memcpy(f->src.b, c.p, 16);
        memcpy(f->dst.b, c.p + 16, 16);
        dip_cursor_skip(&c, 32);
        *ip_len = (uint64_t)plen + 40;
    } else {
        return 0;
    }
    f->proto = proto;
    f->tos = tos;
    f->present |= DIP_F_TOS;
    uint16_t a = 0, b = 0;
    if ((proto == 6 || proto == 17 || proto == 132) && c.left >= 4) {
        dip_cursor_u16(&c, &a);
        dip_cursor_u16(&c, &b);
        f->sport = a;
        f->dport = b;
    } else if ((proto == 1 || proto == 58) && c.left >= 2) {
        f->dport = (uint16_t)((c.p[0] << 8) | c.p[1]); /* type * 256 + code */
    }
    return 1;
}

/* Starts a record in the output slot f: the slot and every field of r before
 * v[] zeroed; v[] is reset by clearing have (collect_int.h). The one place a
 * record's state is reset. v[] is not zeroed: its 456 bytes compile to
 * `rep stos`, which slowed the IPFIX decoder noticeably for values nothing
 * reads without their have bit. */
_Static_assert(offsetof(struct rec, v) + sizeof((struct rec *)0)->v == sizeof(struct rec),
               "v[] must be the last field of struct rec: collect_rec_begin() zeroes what comes before it");
void collect_rec_begin(struct rec *r, struct dip_flow *f)
{
    static const struct dip_flow no_flow;
    memset(r, 0, offsetof(struct rec, v));
    *f = no_flow;
    r->f = f;
}

/* A zero address of either family: 0.0.0.0 or ::. */
static int addr_unspecified(const struct dip_addr *a)
{
    static const struct dip_addr none;
    return !memcmp(a->b, none.b, 16) || (dip_addr_is_v4(a) && dip_addr_v4(a) == 0);
}

/* The BGP next hop stands in for an ipNextHop (IE 15/62) the template does
 * not carry, but only when it names a router. Exporters send 0.0.0.0 or ::
 * in IE 18/63 for flows with no BGP route (connected or IGP destinations):
 * that says nothing about the IP next hop, so nexthop stays out (unknown).
 * A zero IE 15/62 is different and is kept as written: it is the exporter's
 * own value of the attribute, as NetFlow v5's always-present nexthop is. */
static void rec_bgp_nexthop(const struct rec *r, struct dip_flow *f)
{
    if ((f->present & DIP_F_NEXTHOP) || !(r->have & (BIT(T_BGPNH4) | BIT(T_BGPNH6)))) return;
    if (addr_unspecified(&r->bgp_nh)) return;
    f->nexthop = r->bgp_nh;
    f->present |= DIP_F_NEXTHOP;
}

/* Completes a decoded data record in place: counters, times, ICMP, sampling,
 * exporter, domain and the flow ID. */
void collect_rec_finish(const struct dip_collect *c, const struct msg *m, struct rec *r)
{
    struct dip_flow *f = r->f;
    uint64_t have = r->have;
    uint64_t ip_len = 0;
    if ((have & (BIT(T_FRAME_L2) | BIT(T_FRAME_IP))) && !(have & (BIT(T_SRC4) | BIT(T_SRC6))) &&
        rec_from_frame(r, f, &ip_len)) {
        have |= BIT(T_SRC4) | BIT(T_DST4);
        if (!(have & (BIT(T_PACKETS) | BIT(T_PACKETS_TOTAL)))) f->packets = 1; /* one sampled packet */
        if (!(have & (BIT(T_BYTES) | BIT(T_BYTES_TOTAL))))
            f->bytes = (have & BIT(T_FRAME_SIZE)) ? r->v[T_FRAME_SIZE] : ip_len;
    }
    if (!(have & (BIT(T_SRC4) | BIT(T_SRC6)))) dip_addr_from_v4(&f->src, 0);
    if (!(have & (BIT(T_DST4) | BIT(T_DST6)))) dip_addr_from_v4(&f->dst, 0);
    if (!(have & BIT(T_BYTES)) && (have & BIT(T_BYTES_TOTAL))) f->bytes = r->v[T_BYTES_TOTAL];
    if (!(have & BIT(T_PACKETS)) && (have & BIT(T_PACKETS_TOTAL))) f->packets = r->v[T_PACKETS_TOTAL];
    rec_bgp_nexthop(r, f);
    rec_times(m, r, f);
    if (f->proto == 1 || f->proto == 58) {
        /* ICMP: type * 256 + code in dport, as NetFlow does (ARCHITECTURE 4). */
        if (have & BIT(T_ICMP_TC)) {
            f->dport = (uint16_t)r->v[T_ICMP_TC];
            f->sport = 0;
        } else if (have & (BIT(T_ICMP_TYPE) | BIT(T_ICMP_CODE))) {
            uint64_t type = (have & BIT(T_ICMP_TYPE)) ? r->v[T_ICMP_TYPE] : 0;
            uint64_t code = (have & BIT(T_ICMP_CODE)) ? r->v[T_ICMP_CODE] : 0;
            f->dport = (uint16_t)(((type & 0xff) << 8) | (code & 0xff));
            f->sport = 0;
        }
    }
    uint32_t rate = rec_sampling(m->dom, r);
    if (rate) {
        f->sampling = rate;
        f->present |= DIP_F_SAMPLING;
    }
    f->exporter = m->dom->st.exporter;
    f->domain = m->dom->st.domain;
    f->present |= DIP_F_EXPORTER | DIP_F_DOMAIN;
    f->id = dip_flow_id_random(f, c->id_key);
}

/* An options data record: learns sampler rates (RFC 3954 8 sampling options,
 * RFC 5477 selector reports, samplerId/samplerRandomInterval) and the
 * exporter's systemInitTimeMilliseconds. Other options are ignored. */
void collect_rec_apply_options(struct msg *m, const struct rec *r)
{
    struct domain *d = m->dom;
    if (r->have & BIT(T_SYSINIT)) {
        d->sysinit_ms = r->v[T_SYSINIT];
        d->has_sysinit = 1;
    }
    uint32_t rate = inline_rate(r);
    if (!rate) return;
    uint64_t id;
    if (!rec_sampler_id(r, &id)) {
        d->default_rate = rate;
        return;
    }
    for (uint32_t i = 0; i < d->nsamplers; i++)
        if (d->samplers[i].id == id) {
            d->samplers[i].rate = rate;
            return;
        }
    if (d->nsamplers < MAX_SAMPLERS) {
        d->samplers[d->nsamplers].id = id;
        d->samplers[d->nsamplers].rate = rate;
        d->nsamplers++;
    } else {
        d->samplers[id % MAX_SAMPLERS].id = id; /* full: replace one, bounded memory */
        d->samplers[id % MAX_SAMPLERS].rate = rate;
    }
}
