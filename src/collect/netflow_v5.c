/* netflow_v5.c - NetFlow v5 decoder: a fixed 24-byte header and 48-byte
 * records (Cisco's NetFlow Export Datagram Format), times relative to the
 * header's sysUptime, sampling interval in the header, flow_sequence counting
 * records. Layer: access (collector). */
#include <string.h>

#include "collect_int.h"

#define V5_HEADER 24
#define V5_RECORD 48

/* One 48-byte record, read field by field:
 *   0 srcaddr  4 dstaddr  8 nexthop  12 input u16  14 output u16
 *  16 dPkts u32  20 dOctets u32  24 First  28 Last (sysUptime ms)
 *  32 srcport  34 dstport  36 pad  37 tcp_flags  38 prot  39 tos
 *  40 src_as u16  42 dst_as u16  44 src_mask  45 dst_mask  46 pad u16 */
static void v5_record(const uint8_t *p, const struct msg *m, uint32_t sampling, const uint8_t *key,
                      struct dip_flow *f)
{
    static const struct dip_flow zero;
    *f = zero;
    dip_addr_from_v4(&f->src, dip_get_u32(p));
    dip_addr_from_v4(&f->dst, dip_get_u32(p + 4));
    dip_addr_from_v4(&f->nexthop, dip_get_u32(p + 8));
    f->in = dip_get_u16(p + 12);
    f->out = dip_get_u16(p + 14);
    f->packets = dip_get_u32(p + 16);
    f->bytes = dip_get_u32(p + 20);
    f->first = collect_uptime_ms(m->export_ms, m->sysuptime, dip_get_u32(p + 24));
    f->last = collect_uptime_ms(m->export_ms, m->sysuptime, dip_get_u32(p + 28));
    f->sport = dip_get_u16(p + 32);
    f->dport = dip_get_u16(p + 34); /* ICMP: type * 256 + code, as exporters put it */
    f->flags = p[37];
    f->proto = p[38];
    f->tos = p[39];
    f->srcas = dip_get_u16(p + 40);
    f->dstas = dip_get_u16(p + 42);
    f->smask = p[44];
    f->dmask = p[45];
    f->exporter = m->dom->st.exporter;
    f->domain = m->dom->st.domain;
    f->present = DIP_F_FLAGS | DIP_F_TOS | DIP_F_IN | DIP_F_OUT | DIP_F_SRCAS | DIP_F_DSTAS | DIP_F_SMASK |
                 DIP_F_DMASK | DIP_F_NEXTHOP | DIP_F_EXPORTER | DIP_F_DOMAIN;
    if (sampling) {
        f->sampling = sampling;
        f->present |= DIP_F_SAMPLING;
    }
    f->id = dip_flow_id_random(f, key);
}

int dip_collect_netflow_v5(struct dip_collect *c, const uint8_t *data, size_t len, const struct dip_addr *exporter,
                           uint64_t now_ms, const struct dip_collect_sink *sink, struct dip_errbuf *eb)
{
    struct dip_cursor cur = dip_cursor_make(data, len);
    uint16_t version, count, sampling;
    uint32_t uptime, secs, nsecs, seq;
    uint8_t engine_type, engine_id;
    struct msg m = { .version = 5, .now_ms = now_ms };
    c->totals.packets++;
    if (!dip_cursor_u16(&cur, &version) || !dip_cursor_u16(&cur, &count) || !dip_cursor_u32(&cur, &uptime) ||
        !dip_cursor_u32(&cur, &secs) || !dip_cursor_u32(&cur, &nsecs) || !dip_cursor_u32(&cur, &seq) ||
        !dip_cursor_u8(&cur, &engine_type) || !dip_cursor_u8(&cur, &engine_id) || !dip_cursor_u16(&cur, &sampling)) {
        m.dom = collect_domain_get(c, exporter, 5, 0, now_ms);
        if (m.dom) m.dom->st.packets++;
        return collect_malformed(c, m.dom, len, eb, "NetFlow v5 header truncated (%zu of %u bytes)", len, V5_HEADER);
    }
    if (version != 5) {
        c->totals.unsupported++;
        return dip_err_set(eb, DIP_EUNSUPP, "version %u is not NetFlow v5", version);
    }
    /* domain: engine_type * 256 + engine_id, the v5 exporter's engine */
    if (!(m.dom = collect_domain_get(c, exporter, 5, ((uint32_t)engine_type << 8) | engine_id, now_ms)))
        return dip_err_set(eb, DIP_ERANGE, "too many exporter domains");
    struct domain *d = m.dom;
    d->st.packets++;
    if ((size_t)count * V5_RECORD > cur.left)
        return collect_finish_call(c, &m, collect_malformed(c, d, V5_HEADER, eb,
                                   "header count %u needs %u bytes of records, %zu present", count,
                                   count * V5_RECORD, cur.left), sink);
    m.export_ms = (uint64_t)secs * 1000 + nsecs / 1000000;
    m.sysuptime = uptime;
    int rc = collect_out_reserve(c, count);
    if (rc) return collect_finish_call(c, &m, rc, sink);
    uint32_t rate = sampling & 0x3fff; /* top two bits: sampling mode */
    for (uint16_t i = 0; i < count; i++)
        v5_record(cur.p + (size_t)i * V5_RECORD, &m, rate, c->id_key, &c->out[c->out_n++]);
    collect_seq_update(d, seq, count, 1);
    return collect_finish_call(c, &m, DIP_OK, sink);
}
