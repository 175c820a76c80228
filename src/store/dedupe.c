/* dedupe.c - the memory behind exactly-once batch insertion
 * (dip_store_insert_batch): per origin (a replicator), the highest batch
 * seq stored and a bitmap of the DIP_STORE_DEDUPE_WINDOW seqs below it. The
 * WAL carries each batch's tag (wal.c) and MANIFEST.xml the windows at the
 * last manifest write (manifest.c), so the memory is as durable as the records. */
#include "store_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool dip_dedupe_origin_valid(const char *name)
{
    size_t len = 0;
    for (; name[len]; len++) {
        char ch = name[len];
        bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' ||
                  ch == '_' || ch == '-';
        if (!ok || len >= DIP_DEDUPE_ORIGIN_MAX) return false;
    }
    return len > 0;
}

/* Returns: the position of origin in by_name, or where it would be
 * inserted (*found false). */
static size_t find(const struct dip_dedupe *d, const char *origin, bool *found)
{
    size_t lo = 0, hi = d->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(d->origins[d->by_name[mid]].name, origin);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    *found = false;
    return lo;
}

static bool bit_get(const struct dip_dedupe_origin *o, uint64_t i) { return (o->bits[i / 64] >> (i % 64)) & 1; }

static void bit_set(struct dip_dedupe_origin *o, uint64_t i) { o->bits[i / 64] |= (uint64_t)1 << (i % 64); }

/* Moves every bit d places up (towards older seqs), dropping those that
 * leave the window. */
static void shift_up(struct dip_dedupe_origin *o, uint64_t d)
{
    if (d >= DIP_STORE_DEDUPE_WINDOW) {
        memset(o->bits, 0, sizeof o->bits);
        return;
    }
    size_t words = (size_t)(d / 64), bits = (size_t)(d % 64);
    for (size_t w = DIP_DEDUPE_WORDS; w-- > 0;) {
        uint64_t v = 0;
        if (w >= words) {
            v = o->bits[w - words] << bits;
            if (bits && w > words) v |= o->bits[w - words - 1] >> (64 - bits);
        }
        o->bits[w] = v;
    }
}

bool dip_dedupe_seen(const struct dip_dedupe *d, const char *origin, uint64_t seq)
{
    bool found;
    size_t at = find(d, origin, &found);
    if (!found) return false;
    const struct dip_dedupe_origin *o = &d->origins[d->by_name[at]];
    if (seq >= o->high) return seq == o->high;
    uint64_t i = o->high - 1 - seq;
    return i >= DIP_STORE_DEDUPE_WINDOW || bit_get(o, i);
}

uint64_t dip_dedupe_high(const struct dip_dedupe *d, const char *origin)
{
    bool found;
    size_t at = find(d, origin, &found);
    return found ? d->origins[d->by_name[at]].high : 0;
}

int dip_dedupe_reserve(struct dip_dedupe *d, const char *origin)
{
    bool found;
    find(d, origin, &found);
    if (found || d->n < d->cap) return DIP_OK;
    if (d->n >= DIP_DEDUPE_MAX_ORIGINS) return DIP_ERANGE;
    size_t cap = d->cap ? d->cap * 2 : 8;
    if (cap > DIP_DEDUPE_MAX_ORIGINS) cap = DIP_DEDUPE_MAX_ORIGINS;
    struct dip_dedupe_origin *p = realloc(d->origins, cap * sizeof *p);
    if (!p) return DIP_ENOMEM;
    d->origins = p;
    uint32_t *idx = realloc(d->by_name, cap * sizeof *idx);
    if (!idx) return DIP_ENOMEM; /* cap stays: the larger origins array is harmless */
    d->by_name = idx;
    d->cap = cap;
    return DIP_OK;
}

/* Returns: the entry of origin, added (empty) when new; NULL when the table
 * cannot grow. */
static struct dip_dedupe_origin *get_or_add(struct dip_dedupe *d, const char *origin, int *rc)
{
    bool found;
    size_t at = find(d, origin, &found);
    if (found) return &d->origins[d->by_name[at]];
    if ((*rc = dip_dedupe_reserve(d, origin))) return NULL;
    memmove(d->by_name + at + 1, d->by_name + at, (d->n - at) * sizeof *d->by_name);
    d->by_name[at] = (uint32_t)d->n;
    struct dip_dedupe_origin *o = &d->origins[d->n++];
    memset(o, 0, sizeof *o);
    snprintf(o->name, sizeof o->name, "%s", origin);
    return o;
}

int dip_dedupe_mark(struct dip_dedupe *d, const char *origin, uint64_t seq)
{
    int rc = DIP_OK;
    struct dip_dedupe_origin *o = get_or_add(d, origin, &rc);
    if (!o) return rc;
    if (seq > o->high) {
        uint64_t up = seq - o->high;
        shift_up(o, up);
        /* the old highest seq is now one of the window's */
        if (o->high && up - 1 < DIP_STORE_DEDUPE_WINDOW) bit_set(o, up - 1);
        o->high = seq;
    } else if (seq < o->high && o->high - 1 - seq < DIP_STORE_DEDUPE_WINDOW) {
        bit_set(o, o->high - 1 - seq);
    }
    return DIP_OK;
}

/* Hex digit k holds window bits 4k..4k+3, the first (newest seq) as its high bit. */
void dip_dedupe_window_hex(const struct dip_dedupe_origin *o, char *hex)
{
    static const char digits[] = "0123456789abcdef";
    size_t len = 0;
    for (size_t k = 0; k < DIP_DEDUPE_HEX_MAX; k++) {
        unsigned v = 0;
        for (unsigned b = 0; b < 4; b++) v = (v << 1) | (unsigned)bit_get(o, 4 * k + b);
        hex[k] = digits[v];
        if (v) len = k + 1;
    }
    hex[len] = 0;
}

int dip_dedupe_add(struct dip_dedupe *d, const char *origin, uint64_t high, const char *hex, const char **why)
{
    *why = NULL;
    if (!dip_dedupe_origin_valid(origin)) *why = "origin name is not 1..64 of [A-Za-z0-9._-]";
    else if (high < 1) *why = "seq is below 1";
    else if (strlen(hex) > DIP_DEDUPE_HEX_MAX) *why = "window has more than DIP_STORE_DEDUPE_WINDOW / 4 hex digits";
    if (*why) return DIP_ECORRUPT;
    bool found;
    find(d, origin, &found);
    if (found) {
        *why = "origin is listed twice";
        return DIP_ECORRUPT;
    }
    struct dip_dedupe_origin o;
    memset(&o, 0, sizeof o);
    o.high = high;
    for (size_t k = 0; hex[k]; k++) {
        char ch = hex[k];
        unsigned v;
        if (ch >= '0' && ch <= '9') v = (unsigned)(ch - '0');
        else if (ch >= 'a' && ch <= 'f') v = (unsigned)(ch - 'a' + 10);
        else {
            *why = "window is not lowercase hex";
            return DIP_ECORRUPT;
        }
        for (unsigned b = 0; b < 4; b++) {
            if (!((v >> (3 - b)) & 1)) continue;
            uint64_t i = 4 * k + b;
            if (i >= high - 1) { /* would be seq 0 or below */
                *why = "window marks seqs below 1";
                return DIP_ECORRUPT;
            }
            bit_set(&o, i);
        }
    }
    int rc = DIP_OK;
    struct dip_dedupe_origin *slot = get_or_add(d, origin, &rc);
    if (!slot) {
        *why = rc == DIP_ERANGE ? "too many origins" : "out of memory";
        return rc;
    }
    memcpy(slot->bits, o.bits, sizeof o.bits);
    slot->high = high;
    return DIP_OK;
}

void dip_dedupe_free(struct dip_dedupe *d)
{
    free(d->origins);
    free(d->by_name);
    d->origins = NULL;
    d->by_name = NULL;
    d->n = d->cap = 0;
}
