/* answer.c - merging query answers on the way up a tank (ARCHITECTURE 1):
 * node-sets in key order (concatenated for structured maps, merged by the
 * tank key for random ones), counts and sums added, booleans or-ed, and the
 * key ranges that did not answer listed as <missing/> elements.
 * For structured maps the parts' binary batches are concatenated as they
 * came, not decoded and encoded again: an indexer passes a 24,000-record
 * answer on without touching its records (decoding and re-encoding them was
 * half the root's CPU for such answers), and the access point decodes the
 * stream of batches once, checking every batch's CRC. */
#include "route/node.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "route/proto.h"
#include "store/store.h"

void dip_answer_merge_init(struct dip_answer_merge *m, int tank, enum dip_map_strategy strategy, size_t slots,
                           size_t max_records)
{
    memset(m, 0, sizeof *m);
    m->tank = tank;
    m->strategy = strategy;
    m->kind = -1;
    m->complete = true;
    m->slots = slots;
    m->max_records = max_records;
    dip_dynbuf_init(&m->missing, 16u << 20);
    if (slots) {
        m->parts = calloc(slots, sizeof *m->parts);
        m->nparts = calloc(slots, sizeof *m->nparts);
        m->raw = calloc(slots, sizeof *m->raw);
        m->nraw = calloc(slots, sizeof *m->nraw);
        if (!m->parts || !m->nparts || !m->raw || !m->nraw) { /* add refuses without parts */
            free(m->parts);
            m->parts = NULL;
        }
    }
}

void dip_answer_merge_free(struct dip_answer_merge *m)
{
    for (size_t i = 0; m->parts && i < m->slots; i++) free(m->parts[i]);
    for (size_t i = 0; m->raw && !m->borrow && i < m->slots; i++) free(m->raw[i]);
    free(m->parts);
    free(m->nparts);
    free(m->raw);
    free(m->nraw);
    dip_dynbuf_free(&m->missing);
    memset(m, 0, sizeof *m);
}

/* Appends a decoded batch to a growing array of records. */
struct collect {
    struct dip_flow *flows;
    size_t n, cap;
};
static int collect_batch(void *ctx, const struct dip_flow *flows, size_t n)
{
    struct collect *c = ctx;
    if (c->n + n > c->cap) {
        size_t cap = c->cap * 2 > c->n + n ? c->cap * 2 : c->n + n;
        struct dip_flow *p = realloc(c->flows, cap * sizeof *p);
        if (!p) return DIP_ENOMEM;
        c->flows = p;
        c->cap = cap;
    }
    memcpy(c->flows + c->n, flows, n * sizeof *flows);
    c->n += n;
    return DIP_OK;
}

int dip_answer_merge_add(struct dip_answer_merge *m, size_t slot, const uint8_t *payload, size_t len,
                         struct dip_errbuf *eb)
{
    struct dip_msg_answer a;
    int rc = dip_msg_answer_decode(payload, len, &a, eb);
    if (rc) return rc;
    if (slot >= m->slots || !m->parts) return dip_err_set(eb, DIP_ENOMEM, "answer merge has no slot %zu", slot);
    if (m->kind >= 0 && m->kind != a.kind)
        return dip_err_set(eb, DIP_EPROTO, "parts of one answer disagree on its kind (%d, %u)", m->kind, a.kind);
    m->kind = a.kind;
    if (!a.complete) m->complete = false;
    if (a.missing_len && dip_dynbuf_add(&m->missing, a.missing, a.missing_len))
        return dip_err_set(eb, DIP_ERANGE, "too many missing ranges");
    m->chunks_read += a.chunks_read;
    m->chunks_skipped += a.chunks_skipped;
    switch (a.kind) {
    case DIP_RESULT_NODES: {
        if (!a.batch_len) return DIP_OK;
        if (m->records + a.count > m->max_records)
            return dip_err_set(eb, DIP_ERANGE, "result exceeds the limit of %zu records", m->max_records);
        if (m->strategy == DIP_MAP_STRUCTURED) { /* kept as they came: checked where they are decoded */
            if (m->raw[slot]) return dip_err_set(eb, DIP_EPROTO, "part %zu answered twice", slot);
            if (m->borrow) {
                m->raw[slot] = (uint8_t *)a.batch;
            } else {
                uint8_t *copy = malloc(a.batch_len);
                if (!copy) return dip_err_set(eb, DIP_ENOMEM, "no memory for an answer of %zu bytes", a.batch_len);
                memcpy(copy, a.batch, a.batch_len);
                m->raw[slot] = copy;
            }
            m->nraw[slot] = a.batch_len;
            m->records += a.count;
            m->count += a.count;
            return DIP_OK;
        }
        struct collect c = { NULL, 0, 0 };
        rc = dip_batch_decode_stream(a.batch, a.batch_len, m->max_records - m->records, collect_batch, &c, eb);
        if (rc) {
            free(c.flows);
            return rc == DIP_ENOMEM ? dip_err_set(eb, rc, "no memory for an answer of %zu bytes", a.batch_len) : rc;
        }
        free(m->parts[slot]);
        m->parts[slot] = c.flows;
        m->nparts[slot] = c.n;
        m->records += c.n;
        m->count += c.n;
        return DIP_OK;
    }
    case DIP_RESULT_NUMBER:
        m->number += a.number;
        m->count = 1;
        return DIP_OK;
    case DIP_RESULT_BOOLEAN:
        m->boolean = m->boolean || a.boolean;
        m->count = 1;
        return DIP_OK;
    default: return dip_err_set(eb, DIP_EPROTO, "a string answer cannot be merged");
    }
}

int dip_answer_merge_missing(struct dip_answer_merge *m, const struct dip_map *map, int mi, const char *reason)
{
    char attrs[512], full[300] = "";
    dip_map_range_attrs(map, mi, attrs, sizeof attrs);
    if (map->strategy == DIP_MAP_RANDOM) /* the missing records may have any key */
        snprintf(full, sizeof full, "%s", m->tank < 2 ? "from=\"0.0.0.0\" to=\"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff\" "
                                                      : "from=\"0\" to=\"65535\" ");
    m->complete = false;
    int rc = dip_dynbuf_printf(&m->missing, "<missing tank=\"%s\" %s%s node=\"%s\" reason=\"",
                               dip_tank_key_name((enum dip_tank_key)m->tank), full, attrs,
                               map->nodes[map->members[mi].node].name);
    for (const char *r = reason; !rc && *r; r++) {
        switch (*r) {
        case '<': rc = dip_dynbuf_addstr(&m->missing, "&lt;"); break;
        case '&': rc = dip_dynbuf_addstr(&m->missing, "&amp;"); break;
        case '"': rc = dip_dynbuf_addstr(&m->missing, "&quot;"); break;
        default: rc = dip_dynbuf_add(&m->missing, r, 1);
        }
    }
    return rc ? rc : dip_dynbuf_addstr(&m->missing, "\"/>\n");
}

struct each_ctx {
    int (*fn)(void *ctx, const struct dip_flow *f);
    void *ctx;
};
static int each_batch(void *ctx, const struct dip_flow *flows, size_t n)
{
    struct each_ctx *e = ctx;
    for (size_t i = 0; i < n; i++) {
        int rc = e->fn(e->ctx, &flows[i]);
        if (rc) return rc;
    }
    return DIP_OK;
}

int dip_answer_merge_each(const struct dip_answer_merge *m, int (*fn)(void *ctx, const struct dip_flow *f), void *ctx,
                          struct dip_errbuf *eb)
{
    if (m->kind != DIP_RESULT_NODES || !m->parts) return DIP_OK;
    if (m->strategy == DIP_MAP_STRUCTURED) {
        struct each_ctx e = { fn, ctx };
        for (size_t s = 0; s < m->slots; s++) {
            int rc = dip_batch_decode_stream(m->raw[s], m->nraw[s], m->max_records, each_batch, &e, eb);
            if (rc) return rc;
        }
        return DIP_OK;
    }
    /* Random strategy: each part is in document order; merge them (equal
     * records, the same text, by part). */
    size_t *pos = calloc(m->slots ? m->slots : 1, sizeof *pos);
    if (!pos) return DIP_ENOMEM;
    int rc = DIP_OK;
    for (;;) {
        size_t best = m->slots;
        for (size_t s = 0; s < m->slots; s++) {
            if (pos[s] >= m->nparts[s]) continue;
            if (best == m->slots ||
                dip_flow_order_cmp(&m->parts[s][pos[s]], &m->parts[best][pos[best]], (enum dip_tank_key)m->tank) < 0)
                best = s;
        }
        if (best == m->slots) break;
        rc = fn(ctx, &m->parts[best][pos[best]++]);
        if (rc) break;
    }
    free(pos);
    return rc;
}

struct collect_ctx {
    struct dip_flow *flows;
    size_t n, cap;
};
static int collect_one(void *ctx, const struct dip_flow *f)
{
    struct collect_ctx *c = ctx;
    if (c->n == c->cap) return DIP_ECORRUPT; /* the batches hold more records than the parts said */
    c->flows[c->n++] = *f;
    return DIP_OK;
}

int dip_answer_merge_records(const struct dip_answer_merge *m, struct dip_flow **flows, size_t *n, size_t *cap,
                             struct dip_errbuf *eb)
{
    *n = 0;
    if (m->kind != DIP_RESULT_NODES || !m->records) return DIP_OK;
    if (*cap < m->records) { /* every part was counted when added: one allocation */
        struct dip_flow *p = realloc(*flows, m->records * sizeof *p);
        if (!p) return dip_err_set(eb, DIP_ENOMEM, "no memory for the %llu records of the answer",
                                   (unsigned long long)m->records);
        *flows = p;
        *cap = m->records;
    }
    struct collect_ctx c = { *flows, 0, *cap };
    int rc = dip_answer_merge_each(m, collect_one, &c, eb);
    if (rc == DIP_ECORRUPT && c.n == c.cap)
        dip_err_set(eb, rc, "an answer's batches hold more records than its parts counted (%llu)",
                    (unsigned long long)m->records);
    *n = c.n;
    return rc;
}

int dip_answer_merge_encode(const struct dip_answer_merge *m, struct dip_dynbuf *out)
{
    struct dip_msg_answer a = {
        .kind = (uint8_t)(m->kind < 0 ? DIP_RESULT_NODES : m->kind),
        .complete = m->complete,
        .boolean = m->boolean,
        .count = m->count,
        .number = m->number,
        .chunks_read = m->chunks_read,
        .chunks_skipped = m->chunks_skipped,
        .missing = (const char *)m->missing.data,
        .missing_len = m->missing.len,
    };
    int rc = dip_msg_answer_encode_head(out, &a);
    if (rc || a.kind != DIP_RESULT_NODES || !m->records) return rc;
    if (m->strategy == DIP_MAP_STRUCTURED) {
        for (size_t s = 0; !rc && s < m->slots; s++)
            if (m->nraw[s]) rc = dip_dynbuf_add(out, m->raw[s], m->nraw[s]);
        return rc;
    }
    struct dip_flow *flows = NULL;
    size_t n, cap = 0;
    struct dip_errbuf eb;
    rc = dip_answer_merge_records(m, &flows, &n, &cap, &eb);
    if (!rc) rc = dip_batch_encode(flows, n, out);
    free(flows);
    return rc;
}
