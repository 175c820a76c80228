/* replicator.h - the replicator (paper section III): every record the
 * collector decodes goes to every tank. Records are gathered into batches,
 * each batch appended once to a durable spool (route/spool.h) and then sent
 * to each tank's root by a sender of its own with a window of batches in
 * flight; a tank that is slow or down only makes its sender fall behind in
 * the spool, and it catches up when the tank returns. Batches carry (origin,
 * spool sequence number) so leaves store each exactly once (dedupe).
 *
 * Layer: routing. Runs on the node's loop. */
#ifndef DIP_ROUTE_REPLICATOR_H
#define DIP_ROUTE_REPLICATOR_H

#include <stddef.h>
#include <stdint.h>

#include "common/dynbuf.h"
#include "common/err.h"
#include "flow/flow.h"
#include "route/node.h"

struct dip_replicator;

#define DIP_REPLICATOR_BATCH 4096       /* records per spooled batch */
#define DIP_REPLICATOR_FLUSH_MS 50      /* a partial batch waits at most this long */
#define DIP_REPLICATOR_WINDOW 16        /* batches in flight per tank */

/* Opens the spool in spool_dir (replaying what was not yet acknowledged by
 * every tank) and starts one sender per tank root of the node's map.
 * max_spool_bytes: 0 for the spool's default. Returns DIP_OK with *out new. */
int dip_replicator_open(struct dip_node *n, const char *spool_dir, uint64_t max_spool_bytes,
                        struct dip_replicator **out, struct dip_errbuf *eb);

/* Returns: true while half the batches the spool writer may hold wait for
 * it (the disk is behind): a sender that can wait (IPFIX over TCP) should
 * pause until it is false again, before dip_replicator_add refuses records. */
bool dip_replicator_busy(const struct dip_replicator *r);

/* Takes n records (copied). They are durable once the batch holding them is
 * spooled: at the latest DIP_REPLICATOR_FLUSH_MS later, or at once with
 * dip_replicator_flush. Returns DIP_OK, or DIP_ENOSPC when the spool is full
 * (the records are counted as refused). */
int dip_replicator_add(struct dip_replicator *r, const struct dip_flow *flows, size_t n, struct dip_errbuf *eb);
int dip_replicator_flush(struct dip_replicator *r, struct dip_errbuf *eb);

/* Returns: records taken so far (dip_replicator_add). */
uint64_t dip_replicator_taken(const struct dip_replicator *r);
/* Returns: records settled so far: fsync'd in the spool, or refused and
 * counted. Records settle in the order they were taken, so once settled
 * reaches what dip_replicator_taken returned at some moment, every record
 * taken until then is settled (what an exporter that can wait waits for). */
uint64_t dip_replicator_settled(const struct dip_replicator *r);

/* Counters. */
struct dip_replicator_stats {
    uint64_t records;       /* taken */
    uint64_t refused;       /* not spooled: spool full or failing */
    uint64_t spooled_batches;
    uint64_t spool_bytes;
    uint64_t tank_acked[DIP_TANK_KEYS]; /* last batch every tank has stored, in order */
    uint64_t last_batch;
};
void dip_replicator_stats(const struct dip_replicator *r, struct dip_replicator_stats *st);
/* Appends <replicator .../> with one <sender tank=".." .../> per tank. */
int dip_replicator_status_xml(const struct dip_replicator *r, struct dip_dynbuf *out);

/* Flushes, then closes links and timers (the loop must run to finish) and the spool. */
void dip_replicator_close(struct dip_replicator *r);

#endif
