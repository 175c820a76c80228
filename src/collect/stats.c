/* stats.c - reading and formatting the collector's per-exporter counters:
 * plain text for logs and an XML element per exporter domain for reports. */
#include <inttypes.h>
#include <string.h>

#include "collect_int.h"

size_t dip_collect_stats_count(const struct dip_collect *c) { return c->dom_count; }

int dip_collect_stats_get(const struct dip_collect *c, size_t i, struct dip_collect_stats *out)
{
    if (i >= c->dom_count) return DIP_ENOTFOUND;
    *out = c->dom_list[i]->st;
    return DIP_OK;
}

int dip_collect_stats_find(const struct dip_collect *c, const struct dip_addr *exporter, uint8_t version,
                           uint32_t domain, struct dip_collect_stats *out)
{
    for (size_t i = 0; i < c->dom_count; i++) {
        const struct dip_collect_stats *s = &c->dom_list[i]->st;
        if (s->version == version && s->domain == domain && !memcmp(s->exporter.b, exporter->b, 16)) {
            *out = *s;
            return DIP_OK;
        }
    }
    return DIP_ENOTFOUND;
}

void dip_collect_totals_get(const struct dip_collect *c, struct dip_collect_totals *out) { *out = c->totals; }

int dip_collect_stats_text(const struct dip_collect *c, struct dip_dynbuf *out)
{
    int rc = DIP_OK;
    for (size_t i = 0; i < c->dom_count && rc == DIP_OK; i++) {
        const struct dip_collect_stats *s = &c->dom_list[i]->st;
        char addr[DIP_ADDR_TEXT_MAX];
        dip_addr_format(&s->exporter, addr);
        rc = dip_dynbuf_printf(out,
                               "%s v%u domain %" PRIu32 ": packets=%" PRIu64 " records=%" PRIu64
                               " options=%" PRIu64 " lost-records=%" PRIu64 " lost-packets=%" PRIu64
                               " out-of-order=%" PRIu64 " malformed=%" PRIu64 " templates=%" PRIu64
                               " pending=%" PRIu64 " pending-dropped=%" PRIu64,
                               addr, s->version, s->domain, s->packets, s->records, s->option_records,
                               s->lost_records, s->lost_packets, s->out_of_order, s->malformed, s->templates,
                               s->pending_sets, s->pending_dropped);
        if (rc == DIP_OK && s->malformed)
            rc = dip_dynbuf_printf(out, " last-malformed=\"%s\" at byte %zu", s->last_malformed_reason,
                                   s->last_malformed_offset);
        if (rc == DIP_OK) rc = dip_dynbuf_addstr(out, "\n");
    }
    const struct dip_collect_totals *t = &c->totals;
    if (rc == DIP_OK)
        rc = dip_dynbuf_printf(out,
                               "total: packets=%" PRIu64 " records=%" PRIu64 " malformed=%" PRIu64
                               " unsupported=%" PRIu64 " refused-domains=%" PRIu64 " pending-dropped=%" PRIu64 "\n",
                               t->packets, t->records, t->malformed, t->unsupported, t->refused_domains,
                               t->pending_dropped);
    return rc;
}

/* Appends text escaped for an XML attribute value. */
static int add_attr_text(struct dip_dynbuf *out, const char *s)
{
    int rc = DIP_OK;
    for (; *s && rc == DIP_OK; s++) {
        switch (*s) {
        case '&': rc = dip_dynbuf_addstr(out, "&amp;"); break;
        case '<': rc = dip_dynbuf_addstr(out, "&lt;"); break;
        case '>': rc = dip_dynbuf_addstr(out, "&gt;"); break;
        case '"': rc = dip_dynbuf_addstr(out, "&quot;"); break;
        default:
            if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f) rc = dip_dynbuf_addstr(out, "?");
            else rc = dip_dynbuf_add(out, s, 1);
        }
    }
    return rc;
}

int dip_collect_stats_xml_one(const struct dip_collect_stats *s, struct dip_dynbuf *out)
{
    char addr[DIP_ADDR_TEXT_MAX];
    dip_addr_format(&s->exporter, addr);
    int rc = dip_dynbuf_printf(out,
                               "<exporter address=\"%s\" version=\"%u\" domain=\"%" PRIu32 "\" packets=\"%" PRIu64
                               "\" records=\"%" PRIu64 "\" lost-records=\"%" PRIu64 "\" lost-packets=\"%" PRIu64
                               "\" out-of-order=\"%" PRIu64 "\" malformed=\"%" PRIu64 "\" templates=\"%" PRIu64
                               "\" pending-dropped=\"%" PRIu64 "\"",
                               addr, s->version, s->domain, s->packets, s->records, s->lost_records,
                               s->lost_packets, s->out_of_order, s->malformed, s->templates, s->pending_dropped);
    if (rc == DIP_OK && s->malformed) {
        rc = dip_dynbuf_addstr(out, " last-malformed=\"");
        if (rc == DIP_OK) rc = add_attr_text(out, s->last_malformed_reason);
        if (rc == DIP_OK) rc = dip_dynbuf_printf(out, "\" last-malformed-offset=\"%zu\"", s->last_malformed_offset);
    }
    if (rc == DIP_OK) rc = dip_dynbuf_addstr(out, "/>");
    return rc;
}

int dip_collect_stats_xml(const struct dip_collect *c, struct dip_dynbuf *out)
{
    int rc = dip_dynbuf_addstr(out, "<exporters>\n");
    for (size_t i = 0; i < c->dom_count && rc == DIP_OK; i++) {
        rc = dip_dynbuf_addstr(out, "  ");
        if (rc == DIP_OK) rc = dip_collect_stats_xml_one(&c->dom_list[i]->st, out);
        if (rc == DIP_OK) rc = dip_dynbuf_addstr(out, "\n");
    }
    if (rc == DIP_OK) rc = dip_dynbuf_addstr(out, "</exporters>\n");
    return rc;
}
