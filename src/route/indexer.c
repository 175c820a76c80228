/* indexer.c - the indexer role (paper section III): an ingest batch is split
 * by the key range (or flow ID range) each child owns and forwarded, and
 * acknowledged once every child has stored its part; a query goes only to
 * the children whose ranges may match, and their answers are merged within
 * the query's deadline: a child that is down or late becomes a <missing/>
 * range of a partial answer, never a hang. */
#include "route/node_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "route/authz.h"
#include "xpath/xpath.h"

#define INGEST_TIMEOUT_MS 30000u
#define RECONNECT_MS 500u
#define CONNECT_TIMEOUT_MS 3000u

struct indexer;

enum child_state { CHILD_DOWN, CHILD_CONNECTING, CHILD_UP };

/* A message sent to a child and not yet answered. */
struct pending {
    uint64_t id;
    bool query;
    void *op;
    size_t slot;
    uint64_t sent_ms;
    struct pending *next;
};

struct child {
    struct indexer *x;
    int member;
    enum child_state state;
    struct dip_net_link *link;
    uv_timer_t retry;
    struct pending *pending;
    uint64_t failures;
    uint64_t last_pong_ms;  /* last sign of life (pong or any answer) */
    bool suspect;           /* up, but silent for DIP_SUSPECT_MS */
};

struct ingest_op {
    struct node_peer *peer;
    uint64_t id;
    size_t waiting;
    int rc;
    char why[600];
};

struct query_op {
    struct indexer *x;
    struct node_peer *peer;
    uint64_t id;
    struct dip_answer_merge merge;
    size_t nslots;
    int *slot_member; /* member index of each slot */
    int *slot_child;  /* child position of each slot */
    bool *answered;
    size_t waiting;
    uv_timer_t timer;
    bool done;
};

/* The highest batch a tank root took from one origin (dip_authz_seq_plausible). */
struct origin_high {
    char origin[DIP_MSG_ORIGIN_MAX + 1];
    uint64_t high;
};
#define ORIGINS_MAX 64

struct indexer {
    struct dip_node *node;
    int member;
    struct origin_high origins[ORIGINS_MAX]; /* a tank root's; the map's collectors, far fewer */
    size_t norigins;
    struct child *children;
    size_t nchildren;
    uint64_t next_id;
    uv_timer_t sweep;
    uint64_t batches, records, queries, partial;
    bool closing;
    int open_handles;
};

static void connect_child(struct child *c);
static void retry_fire(uv_timer_t *t);

/* ---- pending messages ---- */

static struct pending *pending_take(struct child *c, uint64_t id)
{
    for (struct pending **pp = &c->pending; *pp; pp = &(*pp)->next)
        if ((*pp)->id == id) {
            struct pending *p = *pp;
            *pp = p->next;
            return p;
        }
    return NULL;
}

static void pending_drop_op(struct indexer *x, void *op)
{
    for (size_t i = 0; i < x->nchildren; i++)
        for (struct pending **pp = &x->children[i].pending; *pp;) {
            if ((*pp)->op == op) {
                struct pending *p = *pp;
                *pp = p->next;
                free(p);
            } else {
                pp = &(*pp)->next;
            }
        }
}

static int send_to_child(struct child *c, uint8_t type, const void *a, size_t alen, const void *b, size_t blen,
                         bool query, void *op, size_t slot)
{
    if (c->state != CHILD_UP) return DIP_EIO;
    struct pending *p = calloc(1, sizeof *p);
    if (!p) return DIP_ENOMEM;
    p->id = ++c->x->next_id;
    p->query = query;
    p->op = op;
    p->slot = slot;
    p->sent_ms = node_now_ms();
    int rc = dip_net_link_send(c->link, type, p->id, a, alen, b, blen);
    if (rc) {
        free(p);
        return rc;
    }
    p->next = c->pending;
    c->pending = p;
    return DIP_OK;
}

static const char *child_name(const struct child *c)
{
    const struct dip_map *m = c->x->node->map;
    return m->nodes[m->members[c->member].node].name;
}

/* ---- ingest ---- */

static void ingest_part_done(struct ingest_op *op, int rc, const char *why)
{
    if (rc && !op->rc) {
        op->rc = rc;
        snprintf(op->why, sizeof op->why, "%s", why);
    }
    if (--op->waiting) return;
    struct dip_dynbuf b;
    dip_dynbuf_init(&b, 4096);
    dip_msg_status_encode(&b, op->rc, 0, op->rc ? op->why : "stored");
    node_peer_reply(op->peer, DIP_MSG_ACK, op->id, b.data, b.len, NULL, 0);
    dip_dynbuf_free(&b);
    node_peer_unref(op->peer);
    free(op);
}

/* Returns: the slot of origin in a tank root's table, added when new; NULL
 * when the table is full. */
static struct origin_high *origin_slot(struct indexer *x, const char *origin)
{
    for (size_t i = 0; i < x->norigins; i++)
        if (strcmp(x->origins[i].origin, origin) == 0) return &x->origins[i];
    if (x->norigins == ORIGINS_MAX) return NULL;
    struct origin_high *o = &x->origins[x->norigins++];
    snprintf(o->origin, sizeof o->origin, "%s", origin);
    o->high = 0;
    return o;
}

/* A tank root refuses a batch whose seq jumps far past its origin's, and
 * every indexer one holding records outside its range. Returns DIP_OK or
 * DIP_EPERM with why. */
static int admit_batch(struct indexer *x, const struct dip_msg_ingest *m, const struct dip_flow *flows, size_t n,
                       char *why, size_t cap)
{
    const struct dip_map *map = x->node->map;
    size_t first, outside = dip_authz_records_outside(map, x->member, flows, n, &first);
    if (outside) return dip_authz_refuse_records(map, x->member, flows, n, outside, first, why, cap);
    if (map->members[x->member].parent >= 0) return DIP_OK;
    struct origin_high *o = origin_slot(x, m->origin);
    if (!o) {
        snprintf(why, cap, "batch of origin %s refused: a tank root follows at most %d origins", m->origin,
                 ORIGINS_MAX);
        return DIP_EPERM;
    }
    if (!dip_authz_seq_plausible(o->high, m->seq)) {
        snprintf(why, cap, "batch %s/%llu refused: %llu batches past the highest taken from %s (%llu)", m->origin,
                 (unsigned long long)m->seq, (unsigned long long)(m->seq - o->high), m->origin,
                 (unsigned long long)o->high);
        return DIP_EPERM;
    }
    if (m->seq > o->high) o->high = m->seq;
    return DIP_OK;
}

static void on_ingest(struct indexer *x, struct node_peer *p, const struct dip_net_frame *f)
{
    struct dip_errbuf eb = { { 0 } };
    struct dip_msg_ingest m;
    struct dip_flow *flows = NULL;
    size_t n = 0;
    int rc = dip_msg_ingest_decode(f->payload, f->len, &m, &eb);
    if (!rc && m.batch_len) rc = dip_batch_decode(m.batch, m.batch_len, 1u << 20, &flows, &n, &eb);
    if (!rc && (rc = admit_batch(x, &m, flows, n, eb.msg, sizeof eb.msg)))
        node_log_refusal(x->node, p->link ? dip_net_link_peer(p->link) : "?", eb.msg);
    if (rc) {
        free(flows);
        node_peer_error(p, f->id, rc, 0, eb.msg);
        return;
    }
    x->batches++;
    x->records += n;
    /* Count per child, then place each record in its child's run. */
    size_t *count = calloc(x->nchildren, sizeof *count), *at = calloc(x->nchildren, sizeof *at);
    size_t *route = malloc((n ? n : 1) * sizeof *route);
    struct dip_flow *sorted = malloc((n ? n : 1) * sizeof *sorted);
    struct ingest_op *op = calloc(1, sizeof *op);
    if (!count || !at || !route || !sorted || !op) {
        node_peer_error(p, f->id, DIP_ENOMEM, 0, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        route[i] = dip_map_route(x->node->map, x->member, &flows[i]);
        count[route[i]]++;
    }
    for (size_t c = 1; c < x->nchildren; c++) at[c] = at[c - 1] + count[c - 1];
    for (size_t i = 0; i < n; i++) sorted[at[route[i]]++] = flows[i];
    op->peer = p;
    op->id = f->id;
    op->waiting = 1; /* held until every part is sent */
    node_peer_ref(p);
    struct dip_dynbuf b;
    dip_dynbuf_init(&b, DIP_NET_FRAME_MAX);
    size_t start = 0;
    for (size_t c = 0; c < x->nchildren; c++) {
        if (!count[c]) continue;
        struct child *ch = &x->children[c];
        dip_dynbuf_reset(&b);
        rc = dip_batch_encode(sorted + start, count[c], &b);
        start += count[c];
        size_t head = b.len;
        if (!rc) rc = dip_msg_ingest_encode(&b, m.origin, m.seq, NULL, 0);
        op->waiting++;
        /* header after the batch in b: send header first, batch second */
        if (!rc) rc = send_to_child(ch, DIP_MSG_INGEST, b.data + head, b.len - head, b.data, head, false, op, c);
        if (rc) {
            char why[200];
            snprintf(why, sizeof why, "%s: %s", child_name(ch),
                     rc == DIP_EIO ? "unreachable" : dip_err_name(rc));
            ingest_part_done(op, rc == DIP_EIO ? DIP_EIO : rc, why);
        }
    }
    dip_dynbuf_free(&b);
    ingest_part_done(op, DIP_OK, "");
    op = NULL;
out:
    free(op);
    free(count);
    free(at);
    free(route);
    free(sorted);
    free(flows);
}

/* ---- queries ---- */

static void query_timer_closed(uv_handle_t *h)
{
    struct query_op *q = h->data;
    dip_answer_merge_free(&q->merge);
    free(q->slot_member);
    free(q->slot_child);
    free(q->answered);
    free(q);
}

static void query_finish(struct query_op *q, int err, uint32_t column, const char *why)
{
    if (q->done) return;
    q->done = true;
    struct indexer *x = q->x;
    pending_drop_op(x, q);
    if (err) {
        node_peer_error(q->peer, q->id, err, column, why);
    } else {
        for (size_t s = 0; s < q->nslots; s++)
            if (!q->answered[s]) dip_answer_merge_missing(&q->merge, x->node->map, q->slot_member[s], "timeout");
        if (!q->merge.complete) x->partial++;
        struct dip_dynbuf b;
        dip_dynbuf_init(&b, DIP_NET_FRAME_MAX);
        int rc = dip_answer_merge_encode(&q->merge, &b);
        if (rc) node_peer_error(q->peer, q->id, rc, 0, "merged answer too large");
        else node_peer_reply(q->peer, DIP_MSG_ANSWER, q->id, b.data, b.len, NULL, 0);
        dip_dynbuf_free(&b);
    }
    node_peer_unref(q->peer);
    uv_timer_stop(&q->timer);
    uv_close((uv_handle_t *)&q->timer, query_timer_closed);
}

static void query_timeout(uv_timer_t *t) { query_finish(t->data, DIP_OK, 0, NULL); }

static void query_part(struct query_op *q, size_t slot, const struct dip_net_frame *f, const char *lost)
{
    if (q->done || q->answered[slot]) return;
    q->answered[slot] = true;
    q->waiting--;
    const struct dip_map *map = q->x->node->map;
    struct dip_errbuf eb = { { 0 } };
    if (lost) {
        dip_answer_merge_missing(&q->merge, map, q->slot_member[slot], lost);
    } else if (f->type == DIP_MSG_ANSWER) {
        int rc = dip_answer_merge_add(&q->merge, slot, f->payload, f->len, &eb);
        if (rc) {
            query_finish(q, rc, 0, eb.msg);
            return;
        }
    } else {
        int code;
        uint32_t column;
        char msg[512];
        if (dip_msg_status_decode(f->payload, f->len, &code, &column, msg, sizeof msg)) {
            code = DIP_EPROTO;
            snprintf(msg, sizeof msg, "malformed error message");
        }
        /* A child that could not answer in time or is busy is a missing
         * range; a query it rejects is the client's error. */
        if (code == DIP_ETIMEOUT || code == DIP_EIO || code == DIP_EAGAIN) {
            char why[600];
            snprintf(why, sizeof why, "%s", msg);
            dip_answer_merge_missing(&q->merge, map, q->slot_member[slot], why);
        } else {
            query_finish(q, code, column, msg);
            return;
        }
    }
    if (!q->waiting) query_finish(q, DIP_OK, 0, NULL);
}

static void on_query(struct indexer *x, struct node_peer *p, const struct dip_net_frame *f)
{
    uint64_t received_ms = node_now_ms();
    struct dip_errbuf eb = { { 0 } };
    struct dip_msg_query m;
    char *text = malloc(DIP_XPATH_MAX_LEN + 1);
    struct dip_xpath *xq = NULL;
    struct query_op *q = calloc(1, sizeof *q);
    if (!text || !q) {
        node_peer_error(p, f->id, DIP_ENOMEM, 0, "out of memory");
        goto out;
    }
    int rc = dip_msg_query_decode(f->payload, f->len, &m, text, DIP_XPATH_MAX_LEN + 1, &eb);
    struct dip_xpath_error xe = { 0 };
    if (!rc && (rc = dip_xpath_compile(m.xpath, m.xpath_len, &xq, &xe)))
        snprintf(eb.msg, sizeof eb.msg, "%s", xe.message);
    if (rc) {
        node_peer_error(p, f->id, rc, (uint32_t)xe.column, eb.msg);
        goto out;
    }
    x->queries++;
    const struct dip_map *map = x->node->map;
    const struct dip_map_member *me = &map->members[x->member];
    q->x = x;
    q->peer = p;
    q->id = f->id;
    q->slot_member = calloc(x->nchildren, sizeof *q->slot_member);
    q->slot_child = calloc(x->nchildren, sizeof *q->slot_child);
    q->answered = calloc(x->nchildren, sizeof *q->answered);
    if (!q->slot_member || !q->slot_child || !q->answered) {
        node_peer_error(p, f->id, DIP_ENOMEM, 0, "out of memory");
        free(q->slot_member);
        free(q->slot_child);
        free(q->answered);
        goto out;
    }
    for (size_t c = 0; c < x->nchildren; c++) {
        int mi = me->children[c];
        if (m.mode == DIP_QUERY_GATHER || dip_map_may_match(map, mi, xq)) {
            q->slot_member[q->nslots] = mi;
            q->slot_child[q->nslots++] = (int)c;
        }
    }
    dip_answer_merge_init(&q->merge, me->tank, map->strategy, q->nslots, 1000000);
    switch (dip_xpath_shape(xq)) {
    case DIP_XPATH_COUNT:
    case DIP_XPATH_SUM: q->merge.kind = DIP_RESULT_NUMBER; q->merge.count = 1; break;
    case DIP_XPATH_BOOLEAN: q->merge.kind = DIP_RESULT_BOOLEAN; q->merge.count = 1; break;
    default: q->merge.kind = DIP_RESULT_NODES;
    }
    if (m.mode == DIP_QUERY_GATHER) q->merge.kind = DIP_RESULT_NODES;
    node_peer_ref(p);
    uv_timer_init(x->node->loop, &q->timer);
    q->timer.data = q;
    /* the deadline counts from receipt: the analysis above (30-200 ms for a
     * union of 2,000 lookups) is time the children no longer have */
    uint32_t deadline = m.deadline_ms ? m.deadline_ms : 10000;
    uint64_t spent = node_now_ms() - received_ms;
    deadline = spent < deadline ? deadline - (uint32_t)spent : 1;
    uint32_t mine = deadline - (deadline / 20 < 50 ? deadline / 20 : 50);
    uint32_t theirs = mine - (mine / 10 < 50 ? mine / 10 : 50);
    uv_timer_start(&q->timer, query_timeout, mine, 0);
    struct dip_dynbuf b;
    dip_dynbuf_init(&b, DIP_XPATH_MAX_LEN + 64);
    dip_msg_query_encode(&b, theirs, m.mode, m.xpath, m.xpath_len);
    q->waiting = q->nslots;
    struct query_op *keep = q;
    for (size_t s = 0; s < keep->nslots && !keep->done; s++) {
        struct child *ch = &x->children[keep->slot_child[s]];
        if (ch->suspect) query_part(keep, s, NULL, "not responding");
        else if (send_to_child(ch, DIP_MSG_QUERY, b.data, b.len, NULL, 0, true, keep, s))
            query_part(keep, s, NULL, ch->state == CHILD_UP ? "send failed" : "unreachable");
    }
    dip_dynbuf_free(&b);
    if (!keep->nslots) query_finish(keep, DIP_OK, 0, NULL);
    q = NULL;
out:
    if (q) free(q);
    dip_xpath_free(xq);
    free(text);
}

/* ---- child links ---- */

static void fail_pending(struct child *c, const char *why)
{
    while (c->pending) {
        struct pending *p = c->pending;
        c->pending = p->next;
        if (p->query) {
            query_part(p->op, p->slot, NULL, why);
        } else {
            char msg[200];
            snprintf(msg, sizeof msg, "%s: %s", child_name(c), why);
            ingest_part_done(p->op, DIP_EIO, msg);
        }
        free(p);
    }
}

static void child_frame(struct dip_net_link *l, const struct dip_net_frame *f, void *ctx)
{
    struct child *c = ctx;
    (void)l;
    c->last_pong_ms = node_now_ms();
    if (c->suspect) {
        c->suspect = false;
        dip_node_log(c->x->node, 1, "%s responds again", child_name(c));
    }
    if (f->type == DIP_MSG_PONG) return;
    struct pending *p = pending_take(c, f->id);
    if (!p) return; /* the operation gave up on it */
    if (p->query) {
        query_part(p->op, p->slot, f, NULL);
    } else {
        int code = DIP_EPROTO;
        uint32_t column;
        char msg[300];
        if (dip_msg_status_decode(f->payload, f->len, &code, &column, msg, sizeof msg)) code = DIP_EPROTO;
        char why[400];
        snprintf(why, sizeof why, "%s: %s", child_name(c), msg);
        ingest_part_done(p->op, code, why);
    }
    free(p);
}

static void child_open(struct dip_net_link *l, void *ctx)
{
    struct child *c = ctx;
    (void)l;
    c->state = CHILD_UP;
    c->last_pong_ms = node_now_ms();
    c->suspect = false;
    dip_node_log(c->x->node, 1, "link to %s is up", child_name(c));
}

static void indexer_handle_closed(struct indexer *x)
{
    if (--x->open_handles == 0) {
        free(x->children);
        free(x);
    }
}

static void retry_closed(uv_handle_t *h) { indexer_handle_closed(((struct child *)h->data)->x); }

static void child_close(struct dip_net_link *l, int code, const char *msg, void *ctx)
{
    struct child *c = ctx;
    (void)l;
    bool was_up = c->state == CHILD_UP;
    c->state = CHILD_DOWN;
    c->link = NULL;
    fail_pending(c, code == DIP_OK ? "link closed" : "link lost");
    if (c->x->closing) {
        uv_close((uv_handle_t *)&c->retry, retry_closed);
        return;
    }
    if (was_up || c->failures == 0)
        dip_node_log(c->x->node, 2, "link to %s: %s", child_name(c), msg ? msg : dip_err_name(code));
    c->failures++;
    uv_timer_start(&c->retry, retry_fire, RECONNECT_MS, 0);
}

static const struct dip_net_link_callbacks child_callbacks = {
    .on_frame = child_frame,
    .on_open = child_open,
    .on_close = child_close,
};

static void connect_child(struct child *c)
{
    if (c->x->closing) return;
    const struct dip_map *m = c->x->node->map;
    const struct dip_map_node *nd = &m->nodes[m->members[c->member].node];
    struct dip_errbuf eb;
    c->state = CHILD_CONNECTING;
    if (dip_net_link_connect(c->x->node->loop, c->x->node->tls, nd->host, nd->port, CONNECT_TIMEOUT_MS,
                             &child_callbacks, c, &c->link, &eb)) {
        c->state = CHILD_DOWN;
        c->link = NULL;
        dip_node_log(c->x->node, 3, "cannot connect to %s: %s", nd->name, eb.msg);
        uv_timer_start(&c->retry, retry_fire, RECONNECT_MS * 10, 0);
    }
}

static void retry_fire(uv_timer_t *t) { connect_child(t->data); }

/* Ingest messages a child never answers fail after INGEST_TIMEOUT_MS, so the
 * replicator retries them (leaves drop what they already stored). */
static void sweep(uv_timer_t *t)
{
    struct indexer *x = t->data;
    uint64_t now = node_now_ms();
    for (size_t i = 0; i < x->nchildren; i++) {
        struct child *c = &x->children[i];
        if (c->state == CHILD_UP) {
            if (!c->suspect && now - c->last_pong_ms > DIP_SUSPECT_MS) {
                c->suspect = true;
                dip_node_log(x->node, 2, "%s does not respond (no answer for %llu ms): queries skip it", child_name(c),
                             (unsigned long long)(now - c->last_pong_ms));
            }
            dip_net_link_send(c->link, DIP_MSG_PING, 0, NULL, 0, NULL, 0);
        }
        for (struct pending **pp = &c->pending; *pp;) {
            struct pending *p = *pp;
            if (!p->query && now - p->sent_ms > INGEST_TIMEOUT_MS) {
                *pp = p->next;
                char msg[200];
                snprintf(msg, sizeof msg, "%s: no acknowledgement within %u ms", child_name(c), INGEST_TIMEOUT_MS);
                ingest_part_done(p->op, DIP_ETIMEOUT, msg);
                free(p);
            } else {
                pp = &p->next;
            }
        }
    }
}

int indexer_open(struct dip_node *n, struct indexer **out, struct dip_errbuf *eb)
{
    const struct dip_map_member *me = &n->map->members[n->member];
    struct indexer *x = calloc(1, sizeof *x);
    if (!x || !(x->children = calloc(me->nchildren ? me->nchildren : 1, sizeof *x->children))) {
        free(x);
        return dip_err_set(eb, DIP_ENOMEM, "out of memory");
    }
    x->node = n;
    x->member = n->member;
    x->nchildren = me->nchildren;
    uv_timer_init(n->loop, &x->sweep);
    x->sweep.data = x;
    uv_timer_start(&x->sweep, sweep, DIP_PING_MS, DIP_PING_MS);
    x->open_handles = 1;
    for (size_t i = 0; i < x->nchildren; i++) {
        struct child *c = &x->children[i];
        c->x = x;
        c->member = me->children[i];
        uv_timer_init(n->loop, &c->retry);
        c->retry.data = c;
        x->open_handles++;
    }
    for (size_t i = 0; i < x->nchildren; i++) connect_child(&x->children[i]);
    *out = x;
    return DIP_OK;
}

void indexer_on_frame(struct indexer *x, struct node_peer *p, const struct dip_net_frame *f)
{
    if (f->type == DIP_MSG_INGEST) on_ingest(x, p, f);
    else if (f->type == DIP_MSG_QUERY) on_query(x, p, f);
    else node_peer_error(p, f->id, DIP_EPROTO, 0, "an indexer answers ingest, query and status messages only");
}

int indexer_status(struct indexer *x, struct dip_dynbuf *out)
{
    size_t up = 0;
    for (size_t i = 0; i < x->nchildren; i++) up += x->children[i].state == CHILD_UP;
    return dip_dynbuf_printf(out,
                             " children=\"%zu\" children-up=\"%zu\" batches=\"%llu\" forwarded=\"%llu\""
                             " queries=\"%llu\" partial=\"%llu\"",
                             x->nchildren, up, (unsigned long long)x->batches, (unsigned long long)x->records,
                             (unsigned long long)x->queries, (unsigned long long)x->partial);
}

static void sweep_closed(uv_handle_t *h) { indexer_handle_closed(h->data); }

void indexer_close(struct indexer *x)
{
    x->closing = true;
    uv_close((uv_handle_t *)&x->sweep, sweep_closed);
    for (size_t i = 0; i < x->nchildren; i++) {
        struct child *c = &x->children[i];
        if (c->link) {
            dip_net_link_close(c->link); /* child_close closes the retry timer */
        } else {
            uv_timer_stop(&c->retry);
            uv_close((uv_handle_t *)&c->retry, retry_closed);
        }
    }
}
