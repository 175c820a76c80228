/* ipfix.c - IPFIX message framing (RFC 7011 3.1, 3.3): the 16-byte header
 * whose length covers the whole message, then sets: 2 templates, 3 options
 * templates, >= 256 data. The template engine (template.c) does the rest,
 * shared with NetFlow v9. Layer: access (collector). */
#include "collect_int.h"

#define IPFIX_HEADER 16

static int ipfix_sets(struct dip_collect *c, struct msg *m, struct dip_cursor *cur, struct dip_errbuf *eb)
{
    while (cur->left > 0) {
        size_t off = dip_cursor_offset(cur);
        uint16_t id, length;
        struct dip_cursor set;
        if (!dip_cursor_u16(cur, &id) || !dip_cursor_u16(cur, &length))
            return collect_malformed(c, m->dom, off, eb, "set header truncated");
        if (length < 4)
            return collect_malformed(c, m->dom, off, eb, "set %u length %u is shorter than its header", id, length);
        if (!dip_cursor_sub(cur, length - 4u, &set))
            return collect_malformed(c, m->dom, off, eb, "set %u length %u exceeds the %zu bytes left", id, length,
                                     cur->left + 4);
        int rc;
        if (id == 2 || id == 3) rc = collect_template_set(c, m, &set, id, eb);
        else if (id < 256) rc = collect_malformed(c, m->dom, off, eb, "set id %u is reserved", id);
        else rc = collect_data_or_pend(c, m, id, &set, eb);
        if (rc) return rc;
    }
    return DIP_OK;
}

static int ipfix_message(struct dip_collect *c, const uint8_t *data, size_t len, const struct dip_addr *exporter,
                         uint64_t now_ms, int stream, const struct dip_collect_sink *sink, struct dip_errbuf *eb)
{
    struct dip_cursor cur = dip_cursor_make(data, len);
    uint16_t version, length;
    uint32_t export_secs, seq, domain;
    struct msg m = { .version = 10, .now_ms = now_ms, .stream = stream };
    c->totals.packets++;
    if (!dip_cursor_u16(&cur, &version) || !dip_cursor_u16(&cur, &length) || !dip_cursor_u32(&cur, &export_secs) ||
        !dip_cursor_u32(&cur, &seq) || !dip_cursor_u32(&cur, &domain)) {
        m.dom = collect_domain_get(c, exporter, 10, 0, now_ms);
        if (m.dom) m.dom->st.packets++;
        return collect_malformed(c, m.dom, len, eb, "IPFIX header truncated (%zu of %u bytes)", len, IPFIX_HEADER);
    }
    if (version != 10) {
        c->totals.unsupported++;
        return dip_err_set(eb, DIP_EUNSUPP, "version %u is not IPFIX", version);
    }
    if (!(m.dom = collect_domain_get(c, exporter, 10, domain, now_ms)))
        return dip_err_set(eb, DIP_ERANGE, "too many exporter domains");
    m.dom->st.packets++;
    if (length != len) {
        collect_seq_update(m.dom, seq, 0, 0);
        return collect_finish_call(c, &m, collect_malformed(c, m.dom, 2, eb,
                                   "message length %u but %zu bytes received", length, len), sink);
    }
    m.export_ms = (uint64_t)export_secs * 1000;
    int rc = ipfix_sets(c, &m, &cur, eb);
    /* The sequence number counts data records (RFC 7011 3.1), options ones too. */
    collect_seq_update(m.dom, seq, m.records, rc == DIP_OK && !m.pending);
    return collect_finish_call(c, &m, rc, sink);
}

int dip_collect_ipfix(struct dip_collect *c, const uint8_t *data, size_t len, const struct dip_addr *exporter,
                      uint64_t now_ms, const struct dip_collect_sink *sink, struct dip_errbuf *eb)
{
    return ipfix_message(c, data, len, exporter, now_ms, 0, sink, eb);
}

int dip_collect_ipfix_stream(struct dip_collect *c, const uint8_t *data, size_t len, const struct dip_addr *exporter,
                             uint64_t now_ms, const struct dip_collect_sink *sink, struct dip_errbuf *eb)
{
    return ipfix_message(c, data, len, exporter, now_ms, 1, sink, eb);
}
