/* node_int.h - what node.c, leaf.c and indexer.c share inside src/route/. */
#ifndef DIP_ROUTE_NODE_INT_H
#define DIP_ROUTE_NODE_INT_H

#include <uv.h>

#include "route/node.h"
#include "route/proto.h"
#include "store/store.h"

/* An accepted link, kept alive by the operations that will answer on it:
 * the link goes away on close, the peer stays until its last reference. */
struct node_peer {
    struct dip_net_link *link; /* NULL once closed */
    int refs;
    struct dip_node *node;
    struct node_peer *prev, *next; /* the node's open peers */
};
void node_peer_ref(struct node_peer *p);
void node_peer_unref(struct node_peer *p);
/* Sends one frame back on the peer's link if it is still open. */
void node_peer_reply(struct node_peer *p, uint8_t type, uint64_t id, const void *a, size_t alen, const void *b,
                     size_t blen);
void node_peer_error(struct node_peer *p, uint64_t id, int code, uint32_t column, const char *msg);

struct leaf;
struct indexer;

struct dip_node {
    uv_loop_t *loop;
    struct dip_map *map;
    int self;   /* node index */
    int member; /* member index, -1 for nodes without a tank role */
    char name[DIP_MAP_NAME_MAX];
    char dir[1024];
    struct dip_net_tls *tls;
    struct dip_net_listener *listener;
    dip_node_log_fn log;
    uint64_t started_ms;
    struct leaf *leaf;
    struct indexer *indexer;
    int (*status_hook)(void *ctx, struct dip_dynbuf *out);
    void *status_ctx;
    struct node_peer *peers;   /* open accepted links */
    uint64_t refused;          /* frames and records refused: a sender's role, origin or range */
    bool closing;
};

uint64_t node_now_ms(void);
/* Counts and logs (rate-limited) a refused frame or batch from peer. */
void node_log_refusal(struct dip_node *n, const char *peer, const char *why);

int leaf_open(struct dip_node *n, struct leaf **out, struct dip_errbuf *eb);
void leaf_on_frame(struct leaf *l, struct node_peer *p, const struct dip_net_frame *f);
int leaf_status(struct leaf *l, struct dip_dynbuf *out);
void leaf_close(struct leaf *l);

int indexer_open(struct dip_node *n, struct indexer **out, struct dip_errbuf *eb);
void indexer_on_frame(struct indexer *x, struct node_peer *p, const struct dip_net_frame *f);
int indexer_status(struct indexer *x, struct dip_dynbuf *out);
void indexer_close(struct indexer *x);

#endif
