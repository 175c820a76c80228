/* cache.c - parsed chunk trees kept for later queries, least recently used
 * first out, within a byte budget (a share of the store's memory budget).
 * Entries are keyed by segment file name (never reused) and chunk index. */
#include "store_internal.h"

#include <stdlib.h>
#include <string.h>

void dip_cache_init(struct dip_cache *c, size_t budget)
{
    memset(c, 0, sizeof *c);
    c->budget = budget;
}

static void drop(struct dip_cache *c, size_t i)
{
    xmlFreeDoc(c->entries[i].doc);
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

xmlDocPtr dip_cache_get(struct dip_cache *c, const char *file, size_t chunk)
{
    for (size_t i = 0; i < c->n; i++) {
        struct dip_cache_entry *e = &c->entries[i];
        if (e->chunk == chunk && strcmp(e->file, file) == 0) {
            e->used = ++c->clock;
            c->hits++;
            return e->doc;
        }
    }
    c->misses++;
    return NULL;
}

bool dip_cache_put(struct dip_cache *c, const char *file, size_t chunk, xmlDocPtr doc, size_t bytes)
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
    e->bytes = bytes;
    e->used = ++c->clock;
    c->bytes += bytes;
    return true;
}

void dip_cache_forget(struct dip_cache *c, const char *file)
{
    for (size_t i = 0; i < c->n;) {
        if (strcmp(c->entries[i].file, file) == 0) drop(c, i);
        else i++;
    }
}
