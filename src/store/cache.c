/* cache.c - parsed chunk trees and decoded chunk records kept for later
 * queries, least recently used first out, within a byte budget (a share of
 * the store's memory budget). Entries are keyed by segment file name (never
 * reused) and chunk index, found through a hash index (a lookup scanned
 * every entry before: ~7000 of them at a 1 GiB budget, tens of microseconds
 * a chunk); records cost ~150 bytes each, trees ~3.5 KB. */
#include "store_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dip_cache_init(struct dip_cache *c, size_t budget)
{
    memset(c, 0, sizeof *c);
    c->budget = budget;
}

/* FNV-1a over the file name, then the chunk and the kind of entry. */
static uint64_t key_hash(const char *file, size_t chunk, bool records)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (const unsigned char *p = (const unsigned char *)file; *p; p++) h = (h ^ *p) * 0x100000001b3ull;
    h = (h ^ (uint64_t)chunk) * 0x100000001b3ull;
    h = (h ^ (records ? 1u : 2u)) * 0x100000001b3ull;
    return h ^ (h >> 29);
}

/* Rebuilds the index over entries[0..n); on no memory the index is dropped
 * and lookups scan (slower, still right). */
static void reindex(struct dip_cache *c)
{
    size_t want = 64;
    while (want < 2 * c->n + 2) want *= 2;
    if (want != c->index_cap) {
        uint32_t *p = realloc(c->index, want * sizeof *p);
        if (!p) {
            free(c->index);
            c->index = NULL;
            c->index_cap = 0;
            return;
        }
        c->index = p;
        c->index_cap = want;
    }
    memset(c->index, 0, c->index_cap * sizeof *c->index);
    for (size_t i = 0; i < c->n; i++) {
        const struct dip_cache_entry *e = &c->entries[i];
        size_t k = key_hash(e->file, e->chunk, e->doc == NULL) & (c->index_cap - 1);
        while (c->index[k]) k = (k + 1) & (c->index_cap - 1);
        c->index[k] = (uint32_t)(i + 1);
    }
}

static void drop(struct dip_cache *c, size_t i)
{
    if (c->entries[i].doc) xmlFreeDoc(c->entries[i].doc);
    free(c->entries[i].flows);
    c->bytes -= c->entries[i].bytes;
    c->entries[i] = c->entries[--c->n];
}

void dip_cache_free(struct dip_cache *c)
{
    while (c->n) drop(c, c->n - 1);
    free(c->entries);
    free(c->index);
    free(c->seen);
    c->entries = NULL;
    c->index = NULL;
    c->seen = NULL;
    c->cap = c->index_cap = 0;
}

static bool same(const struct dip_cache_entry *e, const char *file, size_t chunk, bool records)
{
    return e->chunk == chunk && (e->doc == NULL) == records && strcmp(e->file, file) == 0;
}

static struct dip_cache_entry *find(struct dip_cache *c, const char *file, size_t chunk, bool records)
{
    struct dip_cache_entry *hit = NULL;
    if (c->index) {
        size_t k = key_hash(file, chunk, records) & (c->index_cap - 1);
        for (; c->index[k]; k = (k + 1) & (c->index_cap - 1))
            if (same(&c->entries[c->index[k] - 1], file, chunk, records)) {
                hit = &c->entries[c->index[k] - 1];
                break;
            }
    } else {
        for (size_t i = 0; i < c->n && !hit; i++)
            if (same(&c->entries[i], file, chunk, records)) hit = &c->entries[i];
    }
    if (!hit) {
        c->misses++;
        return NULL;
    }
    hit->used = ++c->clock;
    c->hits++;
    return hit;
}

xmlDocPtr dip_cache_get(struct dip_cache *c, const char *file, size_t chunk)
{
    struct dip_cache_entry *e = find(c, file, chunk, false);
    return e ? e->doc : NULL;
}

const struct dip_flow *dip_cache_get_flows(struct dip_cache *c, const char *file, size_t chunk, size_t *n)
{
    struct dip_cache_entry *e = find(c, file, chunk, true);
    *n = e ? e->nflows : 0;
    return e ? e->flows : NULL;
}

static bool put(struct dip_cache *c, const char *file, size_t chunk, xmlDocPtr doc, struct dip_flow *flows,
                size_t nflows, size_t bytes)
{
    if (bytes > c->budget / 4) return false; /* never let one tree take the cache */
    bool moved = false; /* an eviction moved an entry: the index is stale */
    while (c->n && c->bytes + bytes > c->budget) {
        moved = true;
        size_t oldest = 0;
        for (size_t i = 1; i < c->n; i++)
            if (c->entries[i].used < c->entries[oldest].used) oldest = i;
        drop(c, oldest);
    }
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        struct dip_cache_entry *p = realloc(c->entries, cap * sizeof *p);
        if (!p) return false;
        c->entries = p;
        c->cap = cap;
    }
    struct dip_cache_entry *e = &c->entries[c->n++];
    snprintf(e->file, sizeof e->file, "%s", file);
    e->chunk = chunk;
    e->doc = doc;
    e->flows = flows;
    e->nflows = nflows;
    e->bytes = bytes;
    e->used = ++c->clock;
    c->bytes += bytes;
    if (moved || !c->index || 2 * c->n + 2 > c->index_cap) {
        reindex(c);
    } else {
        size_t k = key_hash(file, chunk, doc == NULL) & (c->index_cap - 1);
        while (c->index[k]) k = (k + 1) & (c->index_cap - 1);
        c->index[k] = (uint32_t)c->n;
    }
    return true;
}

bool dip_cache_put(struct dip_cache *c, const char *file, size_t chunk, xmlDocPtr doc, size_t bytes)
{
    return put(c, file, chunk, doc, NULL, 0, bytes);
}

bool dip_cache_put_flows(struct dip_cache *c, const char *file, size_t chunk, struct dip_flow *flows, size_t n)
{
    return put(c, file, chunk, NULL, flows, n, n * sizeof *flows + 128);
}

unsigned dip_cache_reads(struct dip_cache *c, const char *file, size_t chunk)
{
    if (!c->seen && !(c->seen = calloc(DIP_CACHE_SEEN, sizeof *c->seen))) return UINT32_MAX; /* no memory: cache */
    uint64_t h = key_hash(file, chunk, true) & ~(uint64_t)7; /* the low 3 bits count reads */
    uint64_t *slot = &c->seen[(h >> 3) & (DIP_CACHE_SEEN - 1)];
    unsigned before = (*slot & ~(uint64_t)7) == h ? (unsigned)(*slot & 7) : 0;
    *slot = h | (before < 7 ? before + 1 : 7);
    return before;
}

void dip_cache_forget(struct dip_cache *c, const char *file)
{
    for (size_t i = 0; i < c->n;) {
        if (strcmp(c->entries[i].file, file) == 0) drop(c, i);
        else i++;
    }
    reindex(c);
}
