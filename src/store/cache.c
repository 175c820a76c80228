/* cache.c - parsed chunk trees and decoded chunk records kept for later
 * queries, least recently used first out, within a byte budget (a share of
 * the store's memory budget). Entries are keyed by segment file name (never
 * reused) and chunk index; records cost ~150 bytes each, trees ~3.5 KB. */
#include "store_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dip_cache_init(struct dip_cache *c, size_t budget)
{
    memset(c, 0, sizeof *c);
    c->budget = budget;
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
    c->entries = NULL;
    c->cap = 0;
}

static struct dip_cache_entry *find(struct dip_cache *c, const char *file, size_t chunk, bool records)
{
    for (size_t i = 0; i < c->n; i++) {
        struct dip_cache_entry *e = &c->entries[i];
        if (e->chunk == chunk && (e->doc == NULL) == records && strcmp(e->file, file) == 0) {
            e->used = ++c->clock;
            c->hits++;
            return e;
        }
    }
    c->misses++;
    return NULL;
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
    while (c->n && c->bytes + bytes > c->budget) {
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

void dip_cache_forget(struct dip_cache *c, const char *file)
{
    for (size_t i = 0; i < c->n;) {
        if (strcmp(c->entries[i].file, file) == 0) drop(c, i);
        else i++;
    }
}
