/* order.c - putting records in a tank's document order (dip_flow_order_cmp):
 * an LSD radix sort of small items on the key bytes that differ, then each
 * run of equal keys sorted on the tie-break hint and, where hints tie, on
 * whole records. The records themselves do not move: sealing writes them
 * through the resulting index, so a seal allocates 68 bytes a record (two
 * item arrays and the index) where sorting copies of the records took 320. */
#include "store_internal.h"

#include <stdlib.h>
#include <string.h>

#include "common/cursor.h"

struct sort_item {
    uint64_t hi, lo; /* the key: an address's two halves, or a port in lo */
    uint64_t hint;   /* dip_flow_order_hint, set only where keys tie */
    uint32_t idx;    /* position in the records */
    uint32_t family; /* 0 IPv4 (and ports), 1 IPv6: IPv4 comes first in a tank */
};

/* Byte b of an item's key, b = 0 the least significant, 16 the family. */
static inline unsigned key_byte(const struct sort_item *it, int b)
{
    if (b < 8) return (unsigned)(it->lo >> (8 * b)) & 0xff;
    if (b < 16) return (unsigned)(it->hi >> (8 * (b - 8))) & 0xff;
    return it->family;
}

#define KEY_BYTES 17

/* Sorts a[0..n) by key into a or tmp, *sorted set to the one holding them.
 * Returns DIP_OK or DIP_ENOMEM. */
static int radix_sort(struct sort_item *a, struct sort_item *tmp, size_t n, struct sort_item **sorted)
{
    size_t(*count)[256] = calloc(KEY_BYTES, sizeof *count);
    if (!count) return DIP_ENOMEM;
    for (size_t i = 0; i < n; i++)
        for (int b = 0; b < KEY_BYTES; b++) count[b][key_byte(&a[i], b)]++;
    struct sort_item *from = a, *to = tmp;
    for (int b = 0; b < KEY_BYTES; b++) {
        if (count[b][key_byte(&from[0], b)] == n) continue; /* one value: nothing to order */
        size_t pos[256], sum = 0;
        for (int v = 0; v < 256; v++) {
            pos[v] = sum;
            sum += count[b][v];
        }
        for (size_t i = 0; i < n; i++) to[pos[key_byte(&from[i], b)]++] = from[i];
        struct sort_item *t = from;
        from = to;
        to = t;
    }
    free(count);
    *sorted = from;
    return DIP_OK;
}

static int tie_cmp(const void *x, const void *y, void *ctx)
{
    const struct sort_item *a = x, *b = y;
    if (a->hint != b->hint) return a->hint < b->hint ? -1 : 1;
    const struct dip_flow *flows = ((const void **)ctx)[0];
    enum dip_tank_key key = *(const enum dip_tank_key *)((const void **)ctx)[1];
    return dip_flow_order_cmp(&flows[a->idx], &flows[b->idx], key);
}

static bool same_key(const struct sort_item *a, const struct sort_item *b)
{
    return a->lo == b->lo && a->hi == b->hi && a->family == b->family;
}

int dip_store_order(const struct dip_flow *flows, size_t n, enum dip_tank_key key, uint32_t **order)
{
    *order = NULL;
    if (n > UINT32_MAX) return DIP_ERANGE;
    uint32_t *out = malloc((n ? n : 1) * sizeof *out);
    struct sort_item *items = malloc((n ? n : 1) * sizeof *items);
    struct sort_item *tmp = malloc((n ? n : 1) * sizeof *tmp);
    if (!out || !items || !tmp) {
        free(out);
        free(items);
        free(tmp);
        return DIP_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const struct dip_flow *f = &flows[i];
        struct sort_item *it = &items[i];
        it->idx = (uint32_t)i;
        it->family = 0;
        if (key == DIP_KEY_SPORT || key == DIP_KEY_DPORT) {
            it->hi = 0;
            it->lo = key == DIP_KEY_SPORT ? f->sport : f->dport;
        } else {
            const struct dip_addr *a = key == DIP_KEY_SRC ? &f->src : &f->dst;
            it->hi = dip_get_u64(a->b);
            it->lo = dip_get_u64(a->b + 8);
            it->family = !dip_addr_is_v4(a);
        }
    }
    struct sort_item *sorted = items;
    if (n > 1 && radix_sort(items, tmp, n, &sorted)) {
        free(out);
        free(items);
        free(tmp);
        return DIP_ENOMEM;
    }
    const void *ctx[2] = { flows, &key };
    for (size_t i = 0; i < n;) {
        size_t end = i + 1;
        while (end < n && same_key(&sorted[i], &sorted[end])) end++;
        if (end - i > 1) { /* hints are needed only where keys tie */
            for (size_t k = i; k < end; k++) sorted[k].hint = dip_flow_order_hint(&flows[sorted[k].idx], key);
            qsort_r(sorted + i, end - i, sizeof *sorted, tie_cmp, (void *)ctx);
        }
        i = end;
    }
    for (size_t i = 0; i < n; i++) out[i] = sorted[i].idx;
    free(items);
    free(tmp);
    *order = out;
    return DIP_OK;
}

void dip_store_sort(struct dip_flow *flows, size_t n, enum dip_tank_key key)
{
    if (n < 2) return;
    uint32_t *order;
    struct dip_flow *tmp = malloc(n * sizeof *tmp);
    if (!tmp || dip_store_order(flows, n, key, &order)) {
        /* without extra memory: an insertion sort */
        free(tmp);
        for (size_t i = 1; i < n; i++) {
            struct dip_flow f = flows[i];
            size_t j = i;
            while (j > 0 && dip_flow_order_cmp(&flows[j - 1], &f, key) > 0) {
                flows[j] = flows[j - 1];
                j--;
            }
            flows[j] = f;
        }
        return;
    }
    dip_store_hint_huge(tmp, n * sizeof *tmp);
    for (size_t i = 0; i < n; i++) tmp[i] = flows[order[i]];
    memcpy(flows, tmp, n * sizeof *tmp);
    free(order);
    free(tmp);
}
