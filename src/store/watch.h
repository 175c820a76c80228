/* watch.h - stopping libxml2 XPath evaluations at a query's deadline
 * (watch.c): what query.c and the whole-document path share, nobody else. */
#ifndef DIP_STORE_WATCH_H
#define DIP_STORE_WATCH_H

#include <libxml/xpath.h>
#include <stdbool.h>
#include <stdint.h>

/* One evaluation under watch: lives on the evaluating thread's stack from
 * dip_watch_begin to dip_watch_end. */
struct dip_watch {
    xmlXPathContextPtr ctx;   /* NULL: not watched (no deadline) */
    uint64_t deadline_ms;     /* dip_store_clock_ms() time */
    bool fired;               /* the deadline passed: ctx was told to stop */
    bool listed;              /* in the watchdog's list */
    struct dip_watch *prev, *next;
};

/* Watches ctx until dip_watch_end: once deadline_ms (dip_store_clock_ms
 * time; 0: none) passes, ctx's evaluation stops at its next counted
 * operation and returns NULL. Sets ctx's error handler to a silent one. */
void dip_watch_begin(struct dip_watch *w, xmlXPathContextPtr ctx, uint64_t deadline_ms);

/* Stops watching (before ctx is freed). Returns: whether the deadline
 * stopped the evaluation (or would have: it passed while watched). */
bool dip_watch_end(struct dip_watch *w);

#endif
