/* pending.c - data sets that arrived before their template (common over UDP
 * after a collector restart): kept in arrival order within a count, byte and
 * age budget, oldest dropped first, and decoded as soon as the template comes
 * (RFC 7011 8: a collector MAY buffer such data). */
#include <stdlib.h>
#include <string.h>

#include "collect_int.h"

static void unlink_after(struct dip_collect *c, struct pending *prev, struct pending *p)
{
    if (prev) prev->next = p->next;
    else c->pend_head = p->next;
    if (c->pend_tail == p) c->pend_tail = prev;
    c->pend_count--;
    c->pend_bytes -= p->len;
    free(p);
}

static void drop_oldest(struct dip_collect *c)
{
    struct pending *p = c->pend_head;
    p->dom->st.pending_dropped++;
    c->totals.pending_dropped++;
    unlink_after(c, NULL, p);
}

int collect_pending_add(struct dip_collect *c, const struct msg *m, uint16_t tid, const uint8_t *data, size_t len)
{
    struct domain *d = m->dom;
    d->st.pending_sets++;
    c->totals.pending_sets++;
    if (!c->lim.pending_max_sets || len > c->lim.pending_max_bytes) {
        d->st.pending_dropped++;
        c->totals.pending_dropped++;
        return DIP_OK;
    }
    while (c->pend_head && (c->pend_count >= c->lim.pending_max_sets || c->pend_bytes + len > c->lim.pending_max_bytes))
        drop_oldest(c);
    struct pending *p = malloc(sizeof *p + len);
    if (!p) return DIP_ENOMEM;
    p->next = NULL;
    p->dom = d;
    p->arrival_ms = m->now_ms;
    p->export_ms = m->export_ms;
    p->sysuptime = m->sysuptime;
    p->tid = tid;
    p->len = (uint32_t)len;
    memcpy(p->data, data, len);
    if (c->pend_tail) c->pend_tail->next = p;
    else c->pend_head = p;
    c->pend_tail = p;
    c->pend_count++;
    c->pend_bytes += len;
    return DIP_OK;
}

static int too_old(const struct dip_collect *c, const struct pending *p, uint64_t now_ms)
{
    return now_ms > p->arrival_ms && now_ms - p->arrival_ms > c->lim.pending_max_ms;
}

/* Decodes every buffered set whose template is now known, in arrival order,
 * appending to c->out. A set that turns out malformed is counted and dropped. */
void collect_pending_drain(struct dip_collect *c, uint64_t now_ms)
{
    struct pending *prev = NULL, *p = c->pend_head;
    while (p) {
        struct pending *next = p->next;
        if (too_old(c, p, now_ms)) {
            p->dom->st.pending_dropped++;
            c->totals.pending_dropped++;
            unlink_after(c, prev, p);
            p = next;
            continue;
        }
        const struct tmpl *t = collect_tmpl_find(c, p->dom, p->tid, now_ms);
        if (!t) {
            prev = p;
            p = next;
            continue;
        }
        struct msg m = { .dom = p->dom, .version = p->dom->st.version, .export_ms = p->export_ms,
                         .sysuptime = p->sysuptime, .now_ms = now_ms };
        struct dip_cursor set = dip_cursor_make(p->data, p->len);
        size_t mark = c->out_n;
        if (collect_data_set(c, &m, t, &set, NULL) == DIP_OK) {
            p->dom->st.records += c->out_n - mark;
            c->totals.records += c->out_n - mark;
        } else {
            c->out_n = mark;
        }
        unlink_after(c, prev, p);
        p = next;
    }
}

void collect_pending_expire(struct dip_collect *c, uint64_t now_ms)
{
    struct pending *prev = NULL, *p = c->pend_head;
    while (p) {
        struct pending *next = p->next;
        if (too_old(c, p, now_ms)) {
            p->dom->st.pending_dropped++;
            c->totals.pending_dropped++;
            unlink_after(c, prev, p);
        } else {
            prev = p;
        }
        p = next;
    }
}

void collect_pending_drop_domain(struct dip_collect *c, struct domain *d)
{
    struct pending *prev = NULL, *p = c->pend_head;
    while (p) {
        struct pending *next = p->next;
        if (p->dom == d) {
            d->st.pending_dropped++;
            c->totals.pending_dropped++;
            unlink_after(c, prev, p);
        } else {
            prev = p;
        }
        p = next;
    }
}
