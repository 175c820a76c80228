/* node.h - one node of the storage network (ARCHITECTURE 3): the process's
 * libuv loop, its TLS identity, the cluster map, its link listener, and the
 * tank role the map gives it: a leaf (a store answering ingest and queries on
 * the thread pool) or an indexer (forwarding batches to the child owning each
 * key, fanning queries out to the children whose ranges may match, merging
 * their answers within the query's deadline). The front (collector,
 * replicator, access point) is layered on top in src/access/.
 *
 * Layer: routing. Not thread-safe: everything runs on the loop thread except
 * store work, which runs on the thread pool one operation at a time. */
#ifndef DIP_ROUTE_NODE_H
#define DIP_ROUTE_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/dynbuf.h"
#include "common/err.h"
#include "net/net.h"
#include "route/map.h"

struct uv_loop_s;
struct dip_node;

/* How a node tells its owner what happens (level as dip_log: 0 debug .. 3 error). */
typedef void (*dip_node_log_fn)(int level, const char *msg);

struct dip_node_options {
    const char *map_path; /* the cluster map */
    const char *name;     /* this node's id in the map */
    const char *dir;      /* this node's data folder (the leaf's store lives in DIR/store) */
    const char *tls_dir;  /* ca.pem and NAME.pem/NAME.key (dip_net_pki_ensure) */
    dip_node_log_fn log;  /* may be NULL */
};

/* Loads the map and TLS identity and opens the leaf's store (replaying its
 * WAL). Returns DIP_OK with *out new (dip_node_close), or an error in eb. */
int dip_node_open(struct uv_loop_s *loop, const struct dip_node_options *o, struct dip_node **out,
                  struct dip_errbuf *eb);

/* Starts listening for node links at the node's address. Call it once every
 * other listener of the process (a front's collector and client ports) is
 * bound: `dipstorage up` takes a node whose link port answers as ready.
 * Returns DIP_OK, or DIP_EIO with eb (e.g. the address is in use). */
int dip_node_listen(struct dip_node *n, struct dip_errbuf *eb);

/* Stops listening, closes every link and, once store work in flight is
 * done, the store. Run the loop until it has no more handles, then call
 * dip_node_free. */
void dip_node_close(struct dip_node *n);
void dip_node_free(struct dip_node *n);

const struct dip_map *dip_node_map(const struct dip_node *n);
struct uv_loop_s *dip_node_loop(const struct dip_node *n);
/* Returns: wall-clock milliseconds since the Unix epoch. */
uint64_t dip_node_now_ms(void);
int dip_node_self(const struct dip_node *n);        /* node index in the map */
struct dip_net_tls *dip_node_tls(struct dip_node *n);
const char *dip_node_dir(const struct dip_node *n);

/* Lets a layer above add to STATUS replies: fn appends child elements
 * inside this node's <node> element. */
void dip_node_set_status_hook(struct dip_node *n, int (*fn)(void *ctx, struct dip_dynbuf *out), void *ctx);

/* Log through the owner's function. */
void dip_node_log(const struct dip_node *n, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- answers: shared by indexers and the access point ---- */

/* A query answer being assembled from parts (one per child or per tank). */
struct dip_answer_merge {
    int tank;
    enum dip_map_strategy strategy;
    int kind;                  /* enum dip_result_kind; -1 until the first part */
    bool complete;
    bool boolean;
    uint64_t count;
    double number;
    uint64_t chunks_read, chunks_skipped;
    struct dip_dynbuf missing; /* <missing/> elements */
    struct dip_flow **parts;   /* random strategy: decoded flows of each part, in child order */
    size_t *nparts;
    uint8_t **raw;             /* structured strategy: each part's batches as received */
    size_t *nraw;
    size_t slots;
    size_t max_records;        /* more records in total is DIP_ERANGE */
    uint64_t records;
    bool borrow;               /* the payloads added outlive the merge: raw batches point into them */
};
void dip_answer_merge_init(struct dip_answer_merge *m, int tank, enum dip_map_strategy strategy, size_t slots,
                           size_t max_records);
void dip_answer_merge_free(struct dip_answer_merge *m);
/* Adds the answer of part `slot` (an ANSWER payload; with m->borrow set, the
 * payload must stay unchanged until the merge is freed). Returns DIP_OK,
 * DIP_EPROTO (malformed, eb says why), DIP_ERANGE (too many records). */
int dip_answer_merge_add(struct dip_answer_merge *m, size_t slot, const uint8_t *payload, size_t len,
                         struct dip_errbuf *eb);
/* Records that member mi of the map did not answer (reason: "timeout",
 * "unreachable", ...): the answer becomes partial. */
int dip_answer_merge_missing(struct dip_answer_merge *m, const struct dip_map *map, int mi, const char *reason);
/* Calls fn for every record in document order (concatenation in child order
 * for structured maps, a k-way merge by the tank key for random ones).
 * Returns fn's first non-zero return, or DIP_ECORRUPT for a damaged batch
 * (eb says where). */
int dip_answer_merge_each(const struct dip_answer_merge *m, int (*fn)(void *ctx, const struct dip_flow *f),
                          void *ctx, struct dip_errbuf *eb);
/* Encodes the merged answer as an ANSWER payload. */
int dip_answer_merge_encode(const struct dip_answer_merge *m, struct dip_dynbuf *out);
/* Sets (*flows)[0..*n) to the answer's records in document order, reusing
 * *flows (of *cap records; grown to the answer's size when smaller).
 * Returns DIP_OK, DIP_ENOMEM or DIP_ECORRUPT (eb says where). */
int dip_answer_merge_records(const struct dip_answer_merge *m, struct dip_flow **flows, size_t *n, size_t *cap,
                             struct dip_errbuf *eb);

#endif
