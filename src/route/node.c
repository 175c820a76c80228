/* node.c - a node of the storage network: map, TLS identity, the link
 * listener, the check of every incoming frame against its sender's role
 * (authz.h), and dispatch to the node's tank role (leaf.c, indexer.c).
 * STATUS is answered here for every role. */
#include "route/node_int.h"

#include "common/paths.h"
#include "route/authz.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t node_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void dip_node_log(const struct dip_node *n, int level, const char *fmt, ...)
{
    if (!n->log) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    n->log(level, msg);
}

void node_peer_ref(struct node_peer *p) { p->refs++; }

void node_peer_unref(struct node_peer *p)
{
    if (--p->refs == 0) free(p);
}

void node_peer_reply(struct node_peer *p, uint8_t type, uint64_t id, const void *a, size_t alen, const void *b,
                     size_t blen)
{
    if (!p->link) return;
    int rc = dip_net_link_send(p->link, type, id, a, alen, b, blen);
    if (rc) dip_node_log(p->node, 2, "reply to %s failed: %s", dip_net_link_peer(p->link), dip_err_name(rc));
}

void node_peer_error(struct node_peer *p, uint64_t id, int code, uint32_t column, const char *msg)
{
    struct dip_dynbuf b;
    dip_dynbuf_init(&b, 64u << 10);
    if (!dip_msg_status_encode(&b, code, column, msg)) node_peer_reply(p, DIP_MSG_ERROR, id, b.data, b.len, NULL, 0);
    dip_dynbuf_free(&b);
}

static int status_reply(struct dip_node *n, struct dip_dynbuf *out)
{
    const struct dip_map_node *me = &n->map->nodes[n->self];
    int rc = dip_dynbuf_printf(out, "<node name=\"%s\" address=\"%s:%d\" uptime-ms=\"%llu\" refused=\"%llu\"",
                               me->name, me->host, me->port, (unsigned long long)(node_now_ms() - n->started_ms),
                               (unsigned long long)n->refused);
    if (!rc && n->member >= 0) {
        const struct dip_map_member *mm = &n->map->members[n->member];
        char attrs[512];
        dip_map_range_attrs(n->map, n->member, attrs, sizeof attrs);
        rc = dip_dynbuf_printf(out, " tank=\"%s\" role=\"%s\" %s", dip_tank_key_name((enum dip_tank_key)mm->tank),
                               mm->leaf ? "leaf" : "indexer", attrs);
    }
    if (!rc && n->leaf) rc = leaf_status(n->leaf, out);
    if (!rc && n->indexer) rc = indexer_status(n->indexer, out);
    if (!rc) rc = dip_dynbuf_addstr(out, ">");
    if (!rc && n->status_hook) rc = n->status_hook(n->status_ctx, out);
    if (!rc) rc = dip_dynbuf_addstr(out, "</node>\n");
    return rc;
}

/* Logs a refusal: every one while they are few, then one in 1000, so that a
 * flood of forged frames cannot fill the log. */
void node_log_refusal(struct dip_node *n, const char *peer, const char *why)
{
    n->refused++;
    if (n->refused <= 100 || n->refused % 1000 == 0)
        dip_node_log(n, 2, "%s: %s (%llu refused so far)", peer, why, (unsigned long long)n->refused);
}

/* Checks the frame against its sender's role (authz.h); an INGEST's origin
 * too. Answers a refusal itself. Returns: true when the frame may go on. */
static bool authorized(struct dip_node *n, struct node_peer *p, const struct dip_net_frame *f)
{
    struct dip_authz_peer who = { dip_net_link_peer_name(p->link), dip_net_link_peer_role(p->link) };
    char why[400];
    int rc = dip_authz_frame(n->map, n->self, &who, f->type, why, sizeof why);
    if (!rc && f->type == DIP_MSG_INGEST) {
        struct dip_msg_ingest m;
        struct dip_errbuf eb = { { 0 } };
        if (dip_msg_ingest_decode(f->payload, f->len, &m, &eb) == DIP_OK)
            rc = dip_authz_origin(n->map, n->self, &who, m.origin, why, sizeof why);
    }
    if (!rc) return true;
    node_log_refusal(n, dip_net_link_peer(p->link), why);
    node_peer_error(p, f->id, rc, 0, why);
    return false;
}

static void on_frame(struct dip_net_link *l, const struct dip_net_frame *f, void *ctx)
{
    struct node_peer *p = ctx;
    struct dip_node *n = p->node;
    (void)l;
    if (!authorized(n, p, f)) return;
    if (f->type == DIP_MSG_PING) {
        node_peer_reply(p, DIP_MSG_PONG, f->id, NULL, 0, NULL, 0);
        return;
    }
    if (f->type == DIP_MSG_STATUS) {
        struct dip_dynbuf b;
        dip_dynbuf_init(&b, 1u << 20);
        if (!status_reply(n, &b)) node_peer_reply(p, DIP_MSG_STATUS_REPLY, f->id, b.data, b.len, NULL, 0);
        dip_dynbuf_free(&b);
        return;
    }
    if (n->closing) {
        node_peer_error(p, f->id, DIP_EIO, 0, "node is shutting down");
        return;
    }
    if (n->leaf) leaf_on_frame(n->leaf, p, f);
    else if (n->indexer) indexer_on_frame(n->indexer, p, f);
    else node_peer_error(p, f->id, DIP_EUNSUPP, 0, "this node has no tank role");
}

static void on_close(struct dip_net_link *l, int code, const char *msg, void *ctx)
{
    struct node_peer *p = ctx;
    (void)l;
    struct dip_node *n = p->node;
    if (code && code != DIP_EIO && !n->closing) dip_node_log(n, 1, "link closed: %s", msg ? msg : dip_err_name(code));
    p->link = NULL;
    if (p->prev) p->prev->next = p->next;
    else n->peers = p->next;
    if (p->next) p->next->prev = p->prev;
    node_peer_unref(p);
}

static const struct dip_net_link_callbacks peer_callbacks = {
    .on_frame = on_frame,
    .on_close = on_close,
};

/* Links that close before they are accepted (a failed TLS handshake, a port
 * probe) carry the listener's context, the node. */
static void preaccept_close(struct dip_net_link *l, int code, const char *msg, void *ctx)
{
    struct dip_node *n = ctx;
    (void)l;
    if (code && code != DIP_EIO && !n->closing) dip_node_log(n, 1, "connection refused: %s", msg ? msg : dip_err_name(code));
}

static const struct dip_net_link_callbacks preaccept_callbacks = {
    .on_close = preaccept_close,
};

static void on_accept(struct dip_net_link *l, void *ctx)
{
    struct dip_node *n = ctx;
    struct node_peer *p = calloc(1, sizeof *p);
    if (!p) {
        dip_net_link_close(l);
        return;
    }
    p->link = l;
    p->refs = 1;
    p->node = n;
    p->next = n->peers;
    if (n->peers) n->peers->prev = p;
    n->peers = p;
    dip_net_link_set_callbacks(l, &peer_callbacks, p);
}

int dip_node_open(uv_loop_t *loop, const struct dip_node_options *o, struct dip_node **out, struct dip_errbuf *eb)
{
    struct dip_node *n = calloc(1, sizeof *n);
    if (!n) return DIP_ENOMEM;
    n->loop = loop;
    n->log = o->log;
    n->started_ms = node_now_ms();
    n->member = -1;
    snprintf(n->name, sizeof n->name, "%s", o->name);
    snprintf(n->dir, sizeof n->dir, "%s", o->dir);
    int rc = dip_map_load(o->map_path, &n->map, eb);
    if (rc) goto err;
    n->self = dip_map_node_find(n->map, o->name);
    if (n->self < 0) {
        rc = dip_err_set(eb, DIP_ENOTFOUND, "%s: no node named \"%s\"", o->map_path, o->name);
        goto err;
    }
    n->member = dip_map_member_of_node(n->map, n->self);
    char ca[1200], cert[1200], key[1200];
    snprintf(ca, sizeof ca, "%s/ca.pem", o->tls_dir);
    snprintf(cert, sizeof cert, "%s/%s.pem", o->tls_dir, o->name);
    snprintf(key, sizeof key, "%s/%s.key", o->tls_dir, o->name);
    rc = dip_net_tls_new(ca, cert, key, true, &n->tls, eb);
    if (rc) goto err;
    rc = dip_mkdir_p(n->dir, eb);
    if (rc) goto err;
    if (n->member >= 0) {
        if (n->map->members[n->member].leaf) rc = leaf_open(n, &n->leaf, eb);
        else rc = indexer_open(n, &n->indexer, eb);
        if (rc) goto err;
    }
    *out = n;
    return DIP_OK;
err:
    dip_node_close(n);
    dip_node_free(n);
    return rc;
}

/* Node links come from the map's nodes and from status commands: far fewer
 * than these caps, which bound what unauthenticated connections can hold. */
#define NODE_MAX_LINKS 4096
#define NODE_MAX_LINKS_PER_ADDRESS 1024

int dip_node_listen(struct dip_node *n, struct dip_errbuf *eb)
{
    const struct dip_map_node *me = &n->map->nodes[n->self];
    int rc = dip_net_listen(n->loop, n->tls, DIP_NET_LISTEN_TLS, me->host, me->port, 10000, on_accept,
                            &preaccept_callbacks, n, &n->listener, eb);
    if (!rc) dip_net_listener_set_limits(n->listener, NODE_MAX_LINKS, NODE_MAX_LINKS_PER_ADDRESS, NULL);
    return rc;
}

void dip_node_close(struct dip_node *n)
{
    if (!n || n->closing) return;
    n->closing = true;
    if (n->listener) dip_net_listener_close(n->listener);
    n->listener = NULL;
    for (struct node_peer *p = n->peers; p; p = p->next)
        if (p->link) dip_net_link_close(p->link);
    if (n->indexer) indexer_close(n->indexer);
    if (n->leaf) leaf_close(n->leaf);
}

void dip_node_free(struct dip_node *n)
{
    if (!n) return;
    if (n->tls) dip_net_tls_free(n->tls);
    if (n->map) dip_map_free(n->map);
    free(n);
}

const struct dip_map *dip_node_map(const struct dip_node *n) { return n->map; }
uv_loop_t *dip_node_loop(const struct dip_node *n) { return n->loop; }
uint64_t dip_node_now_ms(void) { return node_now_ms(); }
int dip_node_self(const struct dip_node *n) { return n->self; }
struct dip_net_tls *dip_node_tls(struct dip_node *n) { return n->tls; }
const char *dip_node_dir(const struct dip_node *n) { return n->dir; }

void dip_node_set_status_hook(struct dip_node *n, int (*fn)(void *ctx, struct dip_dynbuf *out), void *ctx)
{
    n->status_hook = fn;
    n->status_ctx = ctx;
}
