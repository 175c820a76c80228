/* netflow_v9.c - NetFlow v9 message framing (RFC 3954 5): the 20-byte
 * header, then FlowSets: 0 templates, 1 options templates, >= 256 data. The
 * template engine (template.c) does the rest, shared with IPFIX.
 * Layer: access (collector). */
#include "collect_int.h"

#define V9_HEADER 20

/* Walks the flowsets after the header. */
static int v9_sets(struct dip_collect *c, struct msg *m, struct dip_cursor *cur, struct dip_errbuf *eb)
{
    while (cur->left >= 4) {
        size_t off = dip_cursor_offset(cur);
        uint16_t id, length;
        struct dip_cursor set;
        dip_cursor_u16(cur, &id);
        dip_cursor_u16(cur, &length);
        if (length < 4)
            return collect_malformed(c, m->dom, off, eb, "flowset %u length %u is shorter than its header", id, length);
        if (!dip_cursor_sub(cur, length - 4u, &set))
            return collect_malformed(c, m->dom, off, eb, "flowset %u length %u exceeds the %zu bytes left", id,
                                     length, cur->left + 4);
        int rc;
        if (id == 0 || id == 1) rc = collect_template_set(c, m, &set, id, eb);
        else if (id < 256) rc = collect_malformed(c, m->dom, off, eb, "flowset id %u is reserved", id);
        else rc = collect_data_or_pend(c, m, id, &set, eb);
        if (rc) return rc;
    }
    return DIP_OK; /* fewer than 4 bytes left: padding */
}

int dip_collect_netflow_v9(struct dip_collect *c, const uint8_t *data, size_t len, const struct dip_addr *exporter,
                           uint64_t now_ms, const struct dip_collect_sink *sink, struct dip_errbuf *eb)
{
    struct dip_cursor cur = dip_cursor_make(data, len);
    uint16_t version, count;
    uint32_t uptime, secs, seq, source;
    struct msg m = { .version = 9, .now_ms = now_ms };
    c->totals.packets++;
    if (!dip_cursor_u16(&cur, &version) || !dip_cursor_u16(&cur, &count) || !dip_cursor_u32(&cur, &uptime) ||
        !dip_cursor_u32(&cur, &secs) || !dip_cursor_u32(&cur, &seq) || !dip_cursor_u32(&cur, &source)) {
        m.dom = collect_domain_get(c, exporter, 9, 0, now_ms);
        if (m.dom) m.dom->st.packets++;
        return collect_malformed(c, m.dom, len, eb, "NetFlow v9 header truncated (%zu of %u bytes)", len, V9_HEADER);
    }
    if (version != 9) {
        c->totals.unsupported++;
        return dip_err_set(eb, DIP_EUNSUPP, "version %u is not NetFlow v9", version);
    }
    if (!(m.dom = collect_domain_get(c, exporter, 9, source, now_ms)))
        return dip_err_set(eb, DIP_ERANGE, "too many exporter domains");
    m.dom->st.packets++;
    m.export_ms = (uint64_t)secs * 1000;
    m.sysuptime = uptime;
    int rc = v9_sets(c, &m, &cur, eb);
    /* The header counts template, options template and data records
     * (RFC 3954 5.1): fewer means the packet was cut at a flowset boundary.
     * Unknown when a data flowset waits for its template. */
    if (rc == DIP_OK && !m.pending && m.records + m.tmpl_records < count)
        rc = collect_malformed(c, m.dom, len, eb, "header count %u but %u records: packet truncated", count,
                               m.records + m.tmpl_records);
    collect_seq_update(m.dom, seq, 1, 1);
    return collect_finish_call(c, &m, rc, sink);
}
