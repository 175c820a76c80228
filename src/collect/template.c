/* template.c - the one template engine behind NetFlow v9 (RFC 3954 5.2, 6.1)
 * and IPFIX (RFC 7011 3.4, 8): template and options template records parsed
 * and compiled, cached per (exporter, domain, template id), refreshed,
 * changed, withdrawn (IPFIX, withdraw-all too) and expired; data sets decoded
 * through a compiled template, fixed-length ones by offset, variable-length
 * ones (RFC 7011 7) by walking every field. */
#include <stdlib.h>
#include <string.h>

#include "collect_int.h"

#define MAX_RECORD_LEN 65515u /* largest record an IPFIX message can carry */

/* ---- the per-domain template table: open addressing, linear probing ---- */

static uint32_t tmpl_hash(uint16_t id, uint32_t cap) { return (uint32_t)(id * 40503u) & (cap - 1); }

static long tmpl_slot(const struct domain *d, uint16_t id)
{
    if (!d->tmpl_cap) return -1;
    for (uint32_t i = tmpl_hash(id, d->tmpl_cap);; i = (i + 1) & (d->tmpl_cap - 1)) {
        if (!d->tmpl[i]) return -1;
        if (d->tmpl[i]->id == id) return (long)i;
    }
}

/* Removes slot i, shifting back the entries of its probe run. */
static void tmpl_remove(struct domain *d, uint32_t i)
{
    uint32_t mask = d->tmpl_cap - 1;
    free(d->tmpl[i]);
    d->tmpl[i] = NULL;
    d->tmpl_count--;
    for (uint32_t j = (i + 1) & mask; d->tmpl[j]; j = (j + 1) & mask) {
        uint32_t home = tmpl_hash(d->tmpl[j]->id, d->tmpl_cap);
        /* Move j to the hole i if its home is not in (i, j] cyclically. */
        if (((j - home) & mask) >= ((j - i) & mask)) {
            d->tmpl[i] = d->tmpl[j];
            d->tmpl[j] = NULL;
            i = j;
        }
    }
    d->st.templates = d->tmpl_count;
}

static int tmpl_insert(struct domain *d, struct tmpl *t)
{
    if ((d->tmpl_count + 1) * 2 > d->tmpl_cap) {
        uint32_t cap = d->tmpl_cap ? d->tmpl_cap * 2 : 16;
        struct tmpl **slots = calloc(cap, sizeof *slots);
        if (!slots) return DIP_ENOMEM;
        for (uint32_t i = 0; i < d->tmpl_cap; i++) {
            if (!d->tmpl[i]) continue;
            uint32_t j = tmpl_hash(d->tmpl[i]->id, cap);
            while (slots[j]) j = (j + 1) & (cap - 1);
            slots[j] = d->tmpl[i];
        }
        free(d->tmpl);
        d->tmpl = slots;
        d->tmpl_cap = cap;
    }
    uint32_t j = tmpl_hash(t->id, d->tmpl_cap);
    while (d->tmpl[j]) j = (j + 1) & (d->tmpl_cap - 1);
    d->tmpl[j] = t;
    d->tmpl_count++;
    d->st.templates = d->tmpl_count;
    return DIP_OK;
}

struct tmpl *collect_tmpl_find(struct dip_collect *c, struct domain *d, uint16_t id, uint64_t now_ms)
{
    long i = tmpl_slot(d, id);
    if (i < 0) return NULL;
    struct tmpl *t = d->tmpl[i];
    uint32_t timeout = c->lim.template_timeout_ms;
    if (timeout && !t->no_expiry && now_ms > t->refreshed_ms && now_ms - t->refreshed_ms > timeout) {
        tmpl_remove(d, (uint32_t)i);
        d->st.templates_expired++;
        return NULL;
    }
    return t;
}

/* Drops the domain's options templates and/or flow templates. */
void collect_tmpl_clear(struct domain *d, int options_too, int flows_too)
{
    for (uint32_t i = 0; i < d->tmpl_cap;) {
        struct tmpl *t = d->tmpl[i];
        if (t && ((t->options && options_too) || (!t->options && flows_too))) {
            tmpl_remove(d, i); /* an entry may have moved into i: look again */
            continue;
        }
        i++;
    }
    if (!d->tmpl_count) {
        free(d->tmpl);
        d->tmpl = NULL;
        d->tmpl_cap = 0;
    }
}

/* ---- template records ---- */

/* The layout of one template record, read before anything is cached. */
struct tmpl_head {
    uint16_t id;
    uint16_t nfields;
    uint16_t nscope;
    int options;
};

static int all_zero(const struct dip_cursor *cur)
{
    for (size_t i = 0; i < cur->left; i++)
        if (cur->p[i]) return 0;
    return 1;
}

/* Sorts the mapped fields of a fixed-length template by store kind (stable:
 * template order within a kind) so the data loop runs one tight loop per
 * kind instead of an indirect jump per field; the target and present bits of
 * the fast kinds are the same for every record and are precomputed. */
static void group_by_kind(struct tmpl *t)
{
    struct field_op sorted[64];
    uint16_t n = 0;
    memset(t->group, 0, sizeof t->group);
    t->fast_have = 0;
    t->fast_present = 0;
    if (t->nmapped > 64) { /* unusual: keep template order, everything on the slow path */
        for (uint16_t i = 0; i < t->nmapped; i++) t->mapped[i].kind = SK_SLOW;
        for (int k = 1; k <= SK_COUNT; k++) t->group[k] = t->nmapped;
        return;
    }
    for (int k = 0; k < SK_COUNT; k++) {
        t->group[k] = n;
        for (uint16_t i = 0; i < t->nmapped; i++) {
            if (t->mapped[i].kind != k) continue;
            sorted[n++] = t->mapped[i];
            if (k != SK_SLOW) {
                t->fast_have |= 1ull << t->mapped[i].target;
                t->fast_present |= t->mapped[i].present;
            }
        }
    }
    t->group[SK_COUNT] = n;
    memcpy(t->mapped, sorted, n * sizeof sorted[0]);
}

/* Reads and compiles the field specifiers of one template record. */
static int compile_fields(struct dip_collect *c, struct msg *m, struct dip_cursor *cur, const struct tmpl_head *h,
                          size_t rec_off, struct tmpl **out, struct dip_errbuf *eb)
{
    int ipfix = m->version == 10;
    size_t def_start = rec_off;
    size_t need = sizeof(struct tmpl) + (size_t)h->nfields * 2 * sizeof(struct field_op);
    struct tmpl *t = calloc(1, need + (cur->p - cur->base - rec_off) + (size_t)h->nfields * 8);
    if (!t) return DIP_ENOMEM;
    t->ops = (struct field_op *)(t + 1);
    t->mapped = t->ops + h->nfields;
    t->def = (uint8_t *)(t->mapped + h->nfields);
    t->id = h->id;
    t->options = (uint8_t)h->options;
    t->fixed = 1;
    uint32_t offset = 0;
    for (uint16_t i = 0; i < h->nfields; i++) {
        uint16_t type, len;
        uint32_t pen = 0;
        if (!dip_cursor_u16(cur, &type) || !dip_cursor_u16(cur, &len) ||
            (ipfix && (type & 0x8000) && !dip_cursor_u32(cur, &pen))) {
            free(t);
            return collect_malformed(c, m->dom, dip_cursor_offset(cur), eb,
                                     "template %u: field %u of %u truncated", h->id, i + 1, h->nfields);
        }
        int enterprise = ipfix && (type & 0x8000);
        int var = ipfix && len == VAR_LEN;
        uint8_t target = enterprise ? T_SKIP : collect_target_of(type & 0x7fff, len, !ipfix && i < h->nscope);
        struct field_op op = { len, (uint16_t)(offset > 0xffff ? 0xffff : offset), target, SK_SLOW, 0, 0 };
        if (target != T_SKIP && !var) collect_op_compile(&op);
        t->ops[i] = op;
        if (var) {
            t->fixed = 0;
            t->min_len += 1;
        } else {
            t->min_len += len;
        }
        if (t->fixed) offset += len;
        if (target != T_SKIP && t->fixed) t->mapped[t->nmapped++] = op;
        (void)pen;
    }
    t->nops = h->nfields;
    group_by_kind(t);
    if (t->min_len == 0 || t->min_len > MAX_RECORD_LEN) {
        uint32_t len = t->min_len;
        free(t);
        return collect_malformed(c, m->dom, def_start, eb, "template %u: record length %u is %s", h->id, len,
                                 len ? "larger than any message" : "zero");
    }
    t->def_len = (uint32_t)(cur->p - cur->base - def_start);
    memcpy(t->def, cur->base + def_start, t->def_len);
    *out = t;
    return DIP_OK;
}

/* Caches t (taking it), replacing a template of the same id. */
static int install(struct dip_collect *c, struct msg *m, struct tmpl *t, size_t rec_off, struct dip_errbuf *eb)
{
    struct domain *d = m->dom;
    long i = tmpl_slot(d, t->id);
    t->refreshed_ms = m->now_ms;
    t->no_expiry = (uint8_t)m->stream;
    if (i >= 0) {
        struct tmpl *old = d->tmpl[i];
        if (old->def_len == t->def_len && old->options == t->options && !memcmp(old->def, t->def, t->def_len)) {
            old->refreshed_ms = m->now_ms; /* a refresh: keep the compiled one */
            old->no_expiry = t->no_expiry;
            free(t);
            return DIP_OK;
        }
        d->st.template_changes++;
        free(old);
        d->tmpl[i] = t;
        c->tmpl_added = 1;
        return DIP_OK;
    }
    if (d->tmpl_count >= c->lim.max_templates) {
        uint16_t id = t->id;
        free(t);
        return collect_malformed(c, d, rec_off, eb, "template %u: the exporter's %zu-template table is full", id,
                                 c->lim.max_templates);
    }
    int rc = tmpl_insert(d, t);
    if (rc) {
        free(t);
        return rc;
    }
    c->tmpl_added = 1;
    return DIP_OK;
}

/* IPFIX Template Withdrawal (RFC 7011 8.1): field count 0. Template id equal
 * to the set id withdraws every template (2) or options template (3). */
static int withdraw(struct dip_collect *c, struct msg *m, uint16_t set_id, uint16_t id, size_t off,
                    struct dip_errbuf *eb)
{
    struct domain *d = m->dom;
    if (id == set_id) {
        uint32_t before = d->tmpl_count;
        collect_tmpl_clear(d, set_id == 3, set_id == 2);
        d->st.template_withdrawals += before - d->tmpl_count;
        return DIP_OK;
    }
    if (id < 256) return collect_malformed(c, d, off, eb, "template withdrawal for reserved id %u", id);
    long i = tmpl_slot(d, id);
    if (i >= 0) {
        tmpl_remove(d, (uint32_t)i);
        d->st.template_withdrawals++;
    }
    return DIP_OK;
}

/* Reads the header of one template record; returns 1 for a withdrawal. */
static int read_head(struct dip_collect *c, struct msg *m, struct dip_cursor *cur, uint16_t set_id,
                     struct tmpl_head *h, struct dip_errbuf *eb)
{
    int ipfix = m->version == 10;
    size_t off = dip_cursor_offset(cur);
    uint16_t count;
    h->options = ipfix ? set_id == 3 : set_id == 1;
    h->nscope = 0;
    if (!dip_cursor_u16(cur, &h->id) || !dip_cursor_u16(cur, &count))
        return collect_malformed(c, m->dom, off, eb, "template record header truncated");
    if (ipfix && count == 0) return 1;
    if (h->id < 256) return collect_malformed(c, m->dom, off, eb, "template id %u is reserved (< 256)", h->id);
    if (!h->options) {
        if (!count) return collect_malformed(c, m->dom, off, eb, "template %u has no fields", h->id);
        h->nfields = count;
        return 0;
    }
    uint16_t second;
    if (!dip_cursor_u16(cur, &second))
        return collect_malformed(c, m->dom, off, eb, "options template %u header truncated", h->id);
    if (ipfix) { /* field count, scope field count (RFC 7011 3.4.2.2) */
        if (second == 0 || second > count)
            return collect_malformed(c, m->dom, off, eb, "options template %u: scope count %u of %u fields",
                                     h->id, second, count);
        h->nfields = count;
        h->nscope = second;
        return 0;
    }
    /* v9: option scope length and option length in bytes (RFC 3954 6.1) */
    if (count % 4 || second % 4 || count + second == 0)
        return collect_malformed(c, m->dom, off, eb, "options template %u: scope length %u, option length %u",
                                 h->id, count, second);
    h->nscope = count / 4;
    h->nfields = (uint16_t)((count + second) / 4);
    return 0;
}

int collect_template_set(struct dip_collect *c, struct msg *m, struct dip_cursor *set, uint16_t set_id,
                         struct dip_errbuf *eb)
{
    while (set->left >= 4 && !all_zero(set)) { /* shorter or zero tails are padding */
        size_t off = dip_cursor_offset(set);
        struct tmpl_head h = { 0, 0, 0, 0 };
        int rc = read_head(c, m, set, set_id, &h, eb);
        if (rc == 1) {
            rc = withdraw(c, m, set_id, h.id, off, eb);
            if (rc) return rc;
            m->tmpl_records++;
            continue;
        }
        if (rc) return rc;
        struct tmpl *t = NULL;
        if ((rc = compile_fields(c, m, set, &h, off, &t, eb)) != DIP_OK) return rc;
        if ((rc = install(c, m, t, off, eb)) != DIP_OK) return rc;
        m->tmpl_records++;
    }
    return DIP_OK;
}

/* ---- data sets ---- */

static int emit_rec(struct dip_collect *c, struct msg *m, const struct tmpl *t, struct rec *r)
{
    m->records++;
    if (t->options) {
        collect_rec_apply_options(m, r);
        m->dom->st.option_records++;
        return DIP_OK;
    }
    collect_rec_finish(c, m, r);
    c->out_n++;
    return DIP_OK;
}

static int data_fixed(struct dip_collect *c, struct msg *m, const struct tmpl *t, struct dip_cursor *set)
{
    size_t n = set->left / t->min_len;
    int rc = collect_out_reserve(c, n);
    if (rc) return rc;
    const uint8_t *p = set->p;
    struct rec r;
    const struct field_op *ops = t->mapped;
    const uint16_t *g = t->group;
#define EACH(kind) for (uint16_t i = g[kind]; i < g[(kind) + 1]; i++)
#define AT(op) (fb + (op).store_off)
    for (size_t k = 0; k < n; k++, p += t->min_len) {
        collect_rec_begin(&r, &c->out[c->out_n]);
        r.have = t->fast_have; /* the fast kinds below set no bits of their own */
        uint8_t *fb = (uint8_t *)r.f;
        EACH(SK_ADDR4) set_addr4((struct dip_addr *)AT(ops[i]), dip_get_u32(p + ops[i].offset));
        EACH(SK_ADDR16) set_addr16((struct dip_addr *)AT(ops[i]), p + ops[i].offset);
        EACH(SK_U8_1) *AT(ops[i]) = p[ops[i].offset];
        EACH(SK_U16_2) { uint16_t v = dip_get_u16(p + ops[i].offset); memcpy(AT(ops[i]), &v, 2); }
        EACH(SK_U32_2) { uint32_t v = dip_get_u16(p + ops[i].offset); memcpy(AT(ops[i]), &v, 4); }
        EACH(SK_U32_4) { uint32_t v = dip_get_u32(p + ops[i].offset); memcpy(AT(ops[i]), &v, 4); }
        EACH(SK_U64_4) { uint64_t v = dip_get_u32(p + ops[i].offset); memcpy(AT(ops[i]), &v, 8); }
        EACH(SK_U64_8) { uint64_t v = dip_get_u64(p + ops[i].offset); memcpy(AT(ops[i]), &v, 8); }
        EACH(SK_RAW) r.v[ops[i].target] = be_uint(p + ops[i].offset, ops[i].len);
        r.f->present = t->fast_present;
        EACH(SK_SLOW) collect_rec_field(&r, ops[i].target, p + ops[i].offset, ops[i].len);
        emit_rec(c, m, t, &r);
    }
#undef EACH
#undef AT
    dip_cursor_skip(set, set->left); /* the rest is padding, shorter than a record */
    return DIP_OK;
}

/* Variable-length field: 1 length byte, or 255 and a 2-byte length (RFC 7011 7). */
static int data_var(struct dip_collect *c, struct msg *m, const struct tmpl *t, struct dip_cursor *set,
                    struct dip_errbuf *eb)
{
    struct rec r;
    while (set->left >= t->min_len) {
        size_t rec_off = dip_cursor_offset(set);
        int rc = collect_out_reserve(c, 1);
        if (rc) return rc;
        collect_rec_begin(&r, &c->out[c->out_n]);
        for (uint16_t i = 0; i < t->nops; i++) {
            uint16_t len = t->ops[i].len;
            if (len == VAR_LEN) {
                uint8_t l8;
                if (!dip_cursor_u8(set, &l8)) goto overrun;
                len = l8;
                if (l8 == 255 && !dip_cursor_u16(set, &len)) goto overrun;
            }
            const uint8_t *p = set->p;
            if (!dip_cursor_skip(set, len)) goto overrun;
            if (t->ops[i].target != T_SKIP) collect_rec_field(&r, t->ops[i].target, p, len);
            continue;
        overrun:
            return collect_malformed(c, m->dom, rec_off, eb, "template %u: record overruns its set (field %u)",
                                     t->id, i + 1);
        }
        emit_rec(c, m, t, &r);
    }
    dip_cursor_skip(set, set->left);
    return DIP_OK;
}

int collect_data_set(struct dip_collect *c, struct msg *m, const struct tmpl *t, struct dip_cursor *set,
                     struct dip_errbuf *eb)
{
    return t->fixed ? data_fixed(c, m, t, set) : data_var(c, m, t, set, eb);
}

int collect_data_or_pend(struct dip_collect *c, struct msg *m, uint16_t set_id, struct dip_cursor *set,
                         struct dip_errbuf *eb)
{
    const struct tmpl *t = collect_tmpl_find(c, m->dom, set_id, m->now_ms);
    if (t) return collect_data_set(c, m, t, set, eb);
    m->pending = 1;
    int rc = collect_pending_add(c, m, set_id, set->p, set->left);
    dip_cursor_skip(set, set->left);
    return rc;
}
