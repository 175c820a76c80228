/* authz.h - who may send what to a node of the storage network: the role a
 * node's certificate names (from the cluster map), the check of every
 * message a node accepts against its sender's certificate and the map, the
 * origins an ingest batch may carry, and the records a member may store.
 * Pure functions over the map: the policy is unit-tested without sockets.
 *
 * Layer: routing. Depends on src/route/map.h, src/net/net.h (role names). */
#ifndef DIP_ROUTE_AUTHZ_H
#define DIP_ROUTE_AUTHZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flow/flow.h"
#include "route/map.h"

/* Returns: the role (DIP_NET_ROLE_*) the certificate of node ni names: leaf
 * or indexer for tank members, front for the collector and access point,
 * bootstrap for bootstrap servers (static string). */
const char *dip_authz_node_role(const struct dip_map *m, int ni);

/* The sender of a frame as its certificate names it. */
struct dip_authz_peer {
    const char *name; /* CN */
    const char *role; /* OU: DIP_NET_ROLE_* */
};

/* Decides whether node self (index into m->nodes) accepts a frame of type
 * (enum dip_msg_type) from peer:
 *   PING, STATUS  from any certificate of the cluster's CA that names a role;
 *   INGEST        to a tank root from the front (a collector of the map), to
 *                 any other member from its parent indexer only;
 *   QUERY         from the front (the access point of the map) or the
 *                 member's parent indexer.
 * A peer that claims a node's name must hold that node's role in the map.
 * Other types are left to the node's role, which answers them as protocol
 * errors. Returns DIP_OK, or DIP_EPERM with why (cap bytes) saying who sent
 * what and why it is refused. */
int dip_authz_frame(const struct dip_map *m, int self, const struct dip_authz_peer *peer, uint8_t type, char *why,
                    size_t cap);

/* Decides whether an INGEST batch that peer sent to node self may carry
 * origin: at a tank root the origin is the sending front's own name (a
 * replicator speaks only for itself); below, the parent relays what its root
 * accepted, so the origin must name a collector of the map. Returns DIP_OK
 * or DIP_EPERM with why. */
int dip_authz_origin(const struct dip_map *m, int self, const struct dip_authz_peer *peer, const char *origin,
                     char *why, size_t cap);

/* The furthest an INGEST's seq may run ahead of the highest a tank root has
 * taken from its origin. A replicator sends its spool's batches to a tank
 * root in order, a few in flight, so only a broken or forged sender jumps
 * further; refusing the jump keeps it from moving the leaves' dedupe windows
 * past the batches still to come (which they would then drop as seen). */
#define DIP_AUTHZ_SEQ_LEAP 4096u

/* Returns: true when a tank root may take batch seq of an origin whose
 * highest batch so far was high (0: none yet). */
bool dip_authz_seq_plausible(uint64_t high, uint64_t seq);

/* Writes the refusal of a batch holding `outside` records (the first at
 * position first) that member mi does not own. Returns DIP_EPERM. */
int dip_authz_refuse_records(const struct dip_map *m, int mi, const struct dip_flow *flows, size_t n,
                             size_t outside, size_t first, char *why, size_t cap);

/* Returns: how many of the n records member mi does not own (by key, or by
 * ID under the random strategy); *first_outside (may be NULL) gets the
 * position of the first one, n when none. */
size_t dip_authz_records_outside(const struct dip_map *m, int mi, const struct dip_flow *flows, size_t n,
                                 size_t *first_outside);

#endif
