/* collector.c - the collector object: the table of exporter domains (address,
 * version, domain) with their counters, sequence-number accounting, malformed
 * message reports, the per-call record buffer handed to the sink, dispatch by
 * version, expiry. Statistics formatting lives in stats.c. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collect_int.h"

/* A sequence number behind the expected one by at most this much is a late
 * message filling an earlier gap; further behind, the exporter restarted. */
#define SEQ_LATE_WINDOW_PACKETS 64u
#define SEQ_LATE_WINDOW_RECORDS 4096u

void dip_collect_limits_default(struct dip_collect_limits *l)
{
    l->template_timeout_ms = DIP_COLLECT_TEMPLATE_TIMEOUT_MS;
    l->pending_max_sets = DIP_COLLECT_PENDING_SETS;
    l->pending_max_bytes = DIP_COLLECT_PENDING_BYTES;
    l->pending_max_ms = DIP_COLLECT_PENDING_MS;
    l->max_domains = DIP_COLLECT_MAX_DOMAINS;
    l->max_templates = DIP_COLLECT_MAX_TEMPLATES;
    l->id_key = NULL;
}

int dip_collect_new(const struct dip_collect_limits *lim, struct dip_collect **out)
{
    struct dip_collect *c = calloc(1, sizeof *c);
    if (!c) return DIP_ENOMEM;
    if (lim) c->lim = *lim;
    else dip_collect_limits_default(&c->lim);
    if (!c->lim.max_domains) c->lim.max_domains = DIP_COLLECT_MAX_DOMAINS;
    if (!c->lim.max_templates) c->lim.max_templates = DIP_COLLECT_MAX_TEMPLATES;
    memcpy(c->id_key, c->lim.id_key ? c->lim.id_key : dip_flow_id_default_key, 16);
    c->lim.id_key = NULL;
    *out = c;
    return DIP_OK;
}

void dip_collect_free(struct dip_collect *c)
{
    if (!c) return;
    while (c->pend_head) {
        struct pending *p = c->pend_head;
        c->pend_head = p->next;
        free(p);
    }
    for (size_t i = 0; i < c->dom_count; i++) {
        struct domain *d = c->dom_list[i];
        collect_tmpl_clear(d, 1, 1);
        free(d);
    }
    free(c->dom_list);
    free(c->dom_hash);
    free(c->out);
    free(c);
}

/* ---- the domain table ---- */

static uint32_t dom_hash(const struct dip_addr *a, uint8_t version, uint32_t domain)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (int i = 0; i < 16; i++) h = (h ^ a->b[i]) * 16777619u;
    h = (h ^ version) * 16777619u;
    for (int i = 0; i < 4; i++) h = (h ^ ((domain >> (8 * i)) & 0xff)) * 16777619u;
    return h;
}

static int dom_match(const struct domain *d, const struct dip_addr *a, uint8_t version, uint32_t domain)
{
    return d->st.version == version && d->st.domain == domain && !memcmp(d->st.exporter.b, a->b, 16);
}

static struct domain *dom_lookup(const struct dip_collect *c, const struct dip_addr *a, uint8_t version,
                                 uint32_t domain)
{
    if (!c->dom_cap) return NULL;
    size_t mask = c->dom_cap - 1;
    for (size_t i = dom_hash(a, version, domain) & mask; c->dom_hash[i]; i = (i + 1) & mask)
        if (dom_match(c->dom_hash[i], a, version, domain)) return c->dom_hash[i];
    return NULL;
}

static int dom_grow(struct dip_collect *c)
{
    size_t cap = c->dom_cap ? c->dom_cap * 2 : 64;
    struct domain **slots = calloc(cap, sizeof *slots);
    struct domain **list = realloc(c->dom_list, cap / 2 * sizeof *list);
    if (!slots || !list) {
        free(slots);
        if (list) c->dom_list = list;
        return DIP_ENOMEM;
    }
    c->dom_list = list;
    for (size_t i = 0; i < c->dom_count; i++) {
        struct domain *d = list[i];
        size_t j = dom_hash(&d->st.exporter, d->st.version, d->st.domain) & (cap - 1);
        while (slots[j]) j = (j + 1) & (cap - 1);
        slots[j] = d;
    }
    free(c->dom_hash);
    c->dom_hash = slots;
    c->dom_cap = cap;
    return DIP_OK;
}

/* Returns: the domain, created on first sight; NULL when the table is full
 * (counted as refused) or memory ran out. */
struct domain *collect_domain_get(struct dip_collect *c, const struct dip_addr *addr, uint8_t version,
                                  uint32_t domain, uint64_t now_ms)
{
    struct domain *d = dom_lookup(c, addr, version, domain);
    if (!d) {
        if (c->dom_count >= c->lim.max_domains) {
            c->totals.refused_domains++;
            return NULL;
        }
        if ((c->dom_count + 1) * 2 > c->dom_cap && dom_grow(c) != DIP_OK) return NULL;
        if (!(d = calloc(1, sizeof *d))) return NULL;
        d->st.exporter = *addr;
        d->st.version = version;
        d->st.domain = domain;
        size_t j = dom_hash(addr, version, domain) & (c->dom_cap - 1);
        while (c->dom_hash[j]) j = (j + 1) & (c->dom_cap - 1);
        c->dom_hash[j] = d;
        c->dom_list[c->dom_count++] = d;
    }
    d->st.last_seen_ms = now_ms;
    return d;
}

/* ---- reports ---- */

int collect_malformed(struct dip_collect *c, struct domain *d, size_t offset, struct dip_errbuf *eb,
                      const char *fmt, ...)
{
    char reason[DIP_COLLECT_REASON_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    c->totals.malformed++;
    if (d) {
        d->st.malformed++;
        d->st.last_malformed_offset = offset;
        memcpy(d->st.last_malformed_reason, reason, sizeof reason);
        char addr[DIP_ADDR_TEXT_MAX];
        dip_addr_format(&d->st.exporter, addr);
        return dip_err_set(eb, DIP_EINVAL, "exporter %s v%u domain %u: malformed at byte %zu: %s", addr,
                           d->st.version, d->st.domain, offset, reason);
    }
    return dip_err_set(eb, DIP_EINVAL, "malformed at byte %zu: %s", offset, reason);
}

/* Sequence accounting at the end of a message (RFC 3954 5.1: v9 counts
 * packets; RFC 7011 3.1 and NetFlow v5: records). advance is what this message
 * adds to the counter, known = 0 when it cannot be told (an IPFIX message
 * with data sets waiting for their template, or a malformed one): the next
 * message then sets a new baseline. */
void collect_seq_update(struct domain *d, uint32_t seq, uint32_t advance, int known)
{
    int v9 = d->st.version == 9;
    uint64_t *lost = v9 ? &d->st.lost_packets : &d->st.lost_records;
    if (d->seq_valid && seq != d->seq_next) {
        uint32_t ahead = seq - d->seq_next, behind = d->seq_next - seq;
        if (ahead < 0x80000000u) {
            *lost += ahead;
        } else {
            d->st.out_of_order++;
            if (behind <= (v9 ? SEQ_LATE_WINDOW_PACKETS : SEQ_LATE_WINDOW_RECORDS)) {
                /* a late message: it fills part of a gap counted earlier */
                *lost -= *lost < advance ? *lost : advance;
                return;
            }
        }
    }
    d->seq_valid = known;
    d->seq_next = seq + advance;
}

int collect_out_reserve(struct dip_collect *c, size_t n)
{
    if (c->out_cap - c->out_n >= n) return DIP_OK;
    size_t cap = c->out_cap ? c->out_cap : 64;
    while (cap - c->out_n < n) cap *= 2;
    struct dip_flow *p = realloc(c->out, cap * sizeof *p);
    if (!p) return DIP_ENOMEM;
    c->out = p;
    c->out_cap = cap;
    return DIP_OK;
}

/* Ends a decode call: a failed message's records are dropped; buffered sets
 * whose template came are decoded; everything is handed to the sink once. */
int collect_finish_call(struct dip_collect *c, struct msg *m, int rc, const struct dip_collect_sink *sink)
{
    if (rc == DIP_OK) {
        if (m->dom) m->dom->st.records += c->out_n;
        c->totals.records += c->out_n;
    } else {
        c->out_n = 0;
    }
    if (c->tmpl_added) {
        c->tmpl_added = 0;
        collect_pending_drain(c, m->now_ms);
    }
    int erc = DIP_OK;
    if (c->out_n && sink && sink->emit) erc = sink->emit(sink->ctx, c->out, c->out_n);
    c->out_n = 0;
    return rc ? rc : erc;
}

/* ---- entry points shared by the decoders ---- */

int dip_collect_packet(struct dip_collect *c, const uint8_t *data, size_t len, const struct dip_addr *exporter,
                       uint64_t now_ms, const struct dip_collect_sink *sink, struct dip_errbuf *eb)
{
    uint16_t version = len >= 2 ? dip_get_u16(data) : 0;
    switch (version) {
    case 5: return dip_collect_netflow_v5(c, data, len, exporter, now_ms, sink, eb);
    case 9: return dip_collect_netflow_v9(c, data, len, exporter, now_ms, sink, eb);
    case 10: return dip_collect_ipfix(c, data, len, exporter, now_ms, sink, eb);
    default:
        c->totals.packets++;
        if (len < 2) {
            struct domain *d = collect_domain_get(c, exporter, 0, 0, now_ms);
            if (d) d->st.packets++;
            return collect_malformed(c, d, 0, eb, "message of %zu bytes has no version field", len);
        }
        c->totals.unsupported++;
        return dip_err_set(eb, DIP_EUNSUPP, "version %u is not NetFlow v5, v9 or IPFIX", version);
    }
}

void dip_collect_expire(struct dip_collect *c, uint64_t now_ms)
{
    for (size_t i = 0; i < c->dom_count; i++) {
        struct domain *d = c->dom_list[i];
        for (uint32_t j = 0; j < d->tmpl_cap;) {
            struct tmpl *t = d->tmpl[j];
            if (t && collect_tmpl_find(c, d, t->id, now_ms) == NULL) continue; /* removed: look at j again */
            j++;
        }
    }
    collect_pending_expire(c, now_ms);
}

void dip_collect_forget_exporter(struct dip_collect *c, const struct dip_addr *exporter)
{
    for (size_t i = 0; i < c->dom_count; i++) {
        struct domain *d = c->dom_list[i];
        if (memcmp(d->st.exporter.b, exporter->b, 16)) continue;
        collect_tmpl_clear(d, 1, 1);
        collect_pending_drop_domain(c, d);
        d->seq_valid = 0;
    }
}
