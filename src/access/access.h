/* access.h - the front of a storage network (ARCHITECTURE 1 and 5): the
 * access point that answers clients' XPath queries, and the collector whose
 * decoded records the replicator sends to every tank.
 *
 * Client protocol (a contract): a client connects to the access point (plain
 * TCP from loopback, or TLS with a certificate of the cluster's CA, told
 * apart by the first byte), sends one line holding an XPath 1.0 expression
 * and receives one XML document: <result> or <error>; then the connection
 * closes. The access point analyses the query (xpath/), sends it to the tank
 * whose key it constrains best (falling back to another tank when that one
 * is down or answers only in part), and evaluates expressions that do not
 * decompose over the records it gathers from a tank.
 *
 * Layer: access. Depends on src/route, src/collect, src/store, xpath/. */
#ifndef DIP_ACCESS_H
#define DIP_ACCESS_H

#include <stdint.h>

#include "common/err.h"
#include "route/node.h"

struct dip_access;

struct dip_access_options {
    uint32_t query_timeout_ms;   /* deadline of a query (default 10000) */
    uint32_t client_idle_ms;     /* a client that sends no complete line this long is dropped (default 30000) */
    size_t gather_max_records;   /* records an access point gathers to evaluate a query (default 2,000,000) */
    size_t max_result_records;   /* default 1,000,000 */
    size_t max_clients;          /* client connections open at once, TLS handshakes included (default 1024) */
    size_t max_clients_per_address; /* from one address (default 256); beyond either cap a connection is
                                       closed at once and counted (refused-clients in status) */
    size_t max_gathers;          /* queries that gather every record, running at once (default 3) */
    size_t max_gathers_per_address; /* from one address (default 2); beyond either: EAGAIN "busy" */
};
void dip_access_options_default(struct dip_access_options *o);

/* Starts the access point of node n at the map's client address and links
 * to every tank root. Returns DIP_OK with *out new, or an error in eb. */
int dip_access_open(struct dip_node *n, const struct dip_access_options *o, struct dip_access **out,
                    struct dip_errbuf *eb);
/* Appends <access .../> status. */
int dip_access_status_xml(const struct dip_access *a, struct dip_dynbuf *out);
/* Stops listening and closes links (the loop must run to finish). */
void dip_access_close(struct dip_access *a);

/* The collector and replicator of the front: listens on the map's collector
 * URLs and spools every decoded record for every tank. */
struct dip_front;
int dip_front_open(struct dip_node *n, struct dip_front **out, struct dip_errbuf *eb);
void dip_front_close(struct dip_front *f);

#endif
