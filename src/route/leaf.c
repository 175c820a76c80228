/* leaf.c - the leaf role: a store of its tank key (src/store/) fed by ingest
 * batches and asked queries by its parent. Store work runs on libuv's thread
 * pool, one operation at a time (the store is not thread-safe): waiting
 * queries first, then ingest batches in arrival order; the loop thread only
 * decodes frames and sends replies. */
#include "route/node_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xpath/xpath.h"

enum op_kind { OP_INGEST, OP_QUERY };

struct op {
    enum op_kind kind;
    struct leaf *leaf;
    struct node_peer *peer;
    uint64_t id;
    uint64_t received_ms;
    uint8_t *payload; /* owned copy of the frame payload */
    size_t len;
    /* results, filled on the worker */
    int rc;
    uint32_t column;
    struct dip_errbuf eb;
    struct dip_dynbuf reply;
    uint8_t reply_type;
    uint64_t stored;   /* records stored by an ingest */
    bool duplicate;    /* the ingest batch was stored before */
    struct dip_store_stats stats; /* after the operation */
    struct op *next;
};

struct leaf {
    struct dip_node *node;
    struct dip_store *store;
    int tank;
    uv_work_t work;
    struct op *running;
    /* waiting operations: queries go before ingest batches, so a query is
     * not stuck behind a backlog of inserts (each one a WAL fsync) */
    struct op *head, *tail;   /* ingest */
    struct op *qhead, *qtail; /* queries */
    size_t queued;
    struct dip_store_stats stats; /* snapshot taken after each operation */
    uint64_t ingested, duplicates, queries;
    bool closing;
};

#define LEAF_MAX_QUEUE 1024

static void store_warn(const char *msg) { fprintf(stderr, "dipstorage node: %s\n", msg); }

int leaf_open(struct dip_node *n, struct leaf **out, struct dip_errbuf *eb)
{
    struct leaf *l = calloc(1, sizeof *l);
    if (!l) return DIP_ENOMEM;
    l->node = n;
    l->tank = n->map->members[n->member].tank;
    struct dip_store_options o;
    dip_store_options_default(&o);
    if (n->map->leaf_memory) o.memory_budget = n->map->leaf_memory;
    char dir[1100];
    snprintf(dir, sizeof dir, "%s/store", n->dir);
    int rc = dip_store_open(dir, l->tank, &o, &l->store, store_warn, eb);
    if (rc) {
        free(l);
        return rc;
    }
    if (dip_store_key(l->store) != (enum dip_tank_key)l->tank) {
        rc = dip_err_set(eb, DIP_EINVAL, "%s holds a %s store, but the map makes this node a %s leaf", dir,
                         dip_tank_key_name(dip_store_key(l->store)), dip_tank_key_name((enum dip_tank_key)l->tank));
        dip_store_close(l->store);
        free(l);
        return rc;
    }
    dip_store_stats(l->store, &l->stats);
    *out = l;
    return DIP_OK;
}

/* ---- on the worker thread ---- */

static void do_ingest(struct leaf *l, struct op *o)
{
    struct dip_msg_ingest m;
    struct dip_flow *flows = NULL;
    size_t n = 0;
    bool dup = false;
    o->rc = dip_msg_ingest_decode(o->payload, o->len, &m, &o->eb);
    if (!o->rc && m.batch_len) o->rc = dip_batch_decode(m.batch, m.batch_len, 1u << 20, &flows, &n, &o->eb);
    if (!o->rc) o->rc = dip_store_insert_batch(l->store, m.origin, m.seq, flows, n, &dup, &o->eb);
    free(flows);
    if (!o->rc) {
        o->duplicate = dup;
        o->stored = dup ? 0 : n;
    }
    o->reply_type = DIP_MSG_ACK;
    dip_msg_status_encode(&o->reply, o->rc, 0, o->rc ? o->eb.msg : (dup ? "duplicate" : "stored"));
}

struct flow_vec {
    struct dip_flow *v;
    size_t n, cap, max;
    struct dip_errbuf *eb;
};

static int vec_add(void *ctx, const struct dip_flow *f)
{
    struct flow_vec *fv = ctx;
    if (fv->n == fv->max) return dip_err_set(fv->eb, DIP_ERANGE, "result exceeds the limit of %zu records", fv->max);
    if (fv->n == fv->cap) {
        size_t cap = fv->cap ? fv->cap * 2 : 1024;
        struct dip_flow *v = realloc(fv->v, cap * sizeof *v);
        if (!v) return DIP_ENOMEM;
        fv->v = v;
        fv->cap = cap;
    }
    fv->v[fv->n++] = *f;
    return DIP_OK;
}

static void do_query(struct leaf *l, struct op *o)
{
    struct dip_msg_query m;
    char *text = malloc(DIP_XPATH_MAX_LEN + 1);
    struct dip_msg_answer a = { .kind = DIP_RESULT_NODES, .complete = true };
    struct flow_vec fv = { .max = 1000000, .eb = &o->eb };
    size_t col = 0;
    if (!text) {
        o->rc = DIP_ENOMEM;
        goto out;
    }
    o->rc = dip_msg_query_decode(o->payload, o->len, &m, text, DIP_XPATH_MAX_LEN + 1, &o->eb);
    if (o->rc) goto out;
    if (m.deadline_ms && node_now_ms() > o->received_ms + m.deadline_ms) {
        o->rc = dip_err_set(&o->eb, DIP_ETIMEOUT, "the query waited past its deadline");
        goto out;
    }
    if (m.mode == DIP_QUERY_GATHER) {
        o->rc = dip_store_scan(l->store, NULL, vec_add, &fv, &col, &o->eb);
    } else {
        struct dip_xpath *q = NULL;
        struct dip_xpath_error xe = { 0 };
        o->rc = dip_xpath_compile(m.xpath, m.xpath_len, &q, &xe);
        if (o->rc) {
            o->column = (uint32_t)xe.column;
            dip_err_set(&o->eb, o->rc, "%s", xe.message);
            goto out;
        }
        enum dip_xpath_shape shape = dip_xpath_shape(q);
        dip_xpath_free(q);
        if (shape == DIP_XPATH_FLOWS) {
            o->rc = dip_store_scan(l->store, m.xpath, vec_add, &fv, &col, &o->eb);
        } else if (shape == DIP_XPATH_GATHER) {
            o->rc = dip_err_set(&o->eb, DIP_EINVAL, "this expression must be gathered at the access point");
        } else {
            struct dip_store_answer ans;
            o->rc = dip_store_query(l->store, m.xpath, m.xpath_len, &ans, &col, &o->eb);
            if (!o->rc) {
                a.kind = (uint8_t)ans.kind;
                a.count = ans.count;
                a.number = ans.number;
                a.boolean = ans.boolean;
                a.chunks_read = ans.chunks_read;
                a.chunks_skipped = ans.chunks_skipped;
                dip_store_answer_free(&ans);
            }
        }
    }
    o->column = (uint32_t)col;
    if (o->rc) goto out;
    if (a.kind == DIP_RESULT_NODES) a.count = fv.n;
    o->rc = dip_msg_answer_encode_head(&o->reply, &a);
    if (!o->rc && fv.n) o->rc = dip_batch_encode(fv.v, fv.n, &o->reply);
    if (o->rc && !o->eb.msg[0]) dip_err_set(&o->eb, o->rc, "answer too large to send");
out:
    free(fv.v);
    free(text);
    if (o->rc) {
        dip_dynbuf_reset(&o->reply);
        o->reply_type = DIP_MSG_ERROR;
        dip_msg_status_encode(&o->reply, o->rc, o->column, o->eb.msg[0] ? o->eb.msg : dip_err_name(o->rc));
    } else {
        o->reply_type = DIP_MSG_ANSWER;
    }
}

static void work_cb(uv_work_t *w)
{
    struct leaf *l = w->data;
    struct op *o = l->running;
    if (o->kind == OP_INGEST) do_ingest(l, o);
    else do_query(l, o);
    dip_store_stats(l->store, &o->stats);
}

/* ---- on the loop thread ---- */

static void start_next(struct leaf *l);

static void op_free(struct op *o)
{
    node_peer_unref(o->peer);
    free(o->payload);
    dip_dynbuf_free(&o->reply);
    free(o);
}

static void after_work_cb(uv_work_t *w, int status)
{
    struct leaf *l = w->data;
    struct op *o = l->running;
    l->running = NULL;
    l->stats = o->stats;
    if (o->kind == OP_QUERY) l->queries++;
    l->ingested += o->stored;
    l->duplicates += o->duplicate;
    if (status == 0) node_peer_reply(o->peer, o->reply_type, o->id, o->reply.data, o->reply.len, NULL, 0);
    if (o->rc && o->kind == OP_INGEST)
        dip_node_log(l->node, 2, "ingest from %s failed: %s", o->peer->link ? dip_net_link_peer(o->peer->link) : "?",
                     o->eb.msg);
    op_free(o);
    if (l->closing) {
        dip_store_close(l->store);
        free(l);
        return;
    }
    start_next(l);
}

static void start_next(struct leaf *l)
{
    if (l->running || (!l->head && !l->qhead)) return;
    struct op *o;
    if (l->qhead) {
        o = l->qhead;
        l->qhead = o->next;
        if (!l->qhead) l->qtail = NULL;
    } else {
        o = l->head;
        l->head = o->next;
        if (!l->head) l->tail = NULL;
    }
    l->queued--;
    l->running = o;
    l->work.data = l;
    if (uv_queue_work(l->node->loop, &l->work, work_cb, after_work_cb)) {
        l->running = NULL;
        node_peer_error(o->peer, o->id, DIP_EIO, 0, "cannot queue store work");
        op_free(o);
    }
}

void leaf_on_frame(struct leaf *l, struct node_peer *p, const struct dip_net_frame *f)
{
    if (f->type != DIP_MSG_INGEST && f->type != DIP_MSG_QUERY) {
        node_peer_error(p, f->id, DIP_EPROTO, 0, "a leaf answers ingest, query and status messages only");
        return;
    }
    if (l->queued >= LEAF_MAX_QUEUE) {
        node_peer_error(p, f->id, DIP_EAGAIN, 0, "leaf busy: too many operations waiting");
        return;
    }
    struct op *o = calloc(1, sizeof *o);
    if (!o || !(o->payload = malloc(f->len ? f->len : 1))) {
        free(o);
        node_peer_error(p, f->id, DIP_ENOMEM, 0, "out of memory");
        return;
    }
    memcpy(o->payload, f->payload, f->len);
    o->len = f->len;
    o->kind = f->type == DIP_MSG_INGEST ? OP_INGEST : OP_QUERY;
    o->leaf = l;
    o->peer = p;
    node_peer_ref(p);
    o->id = f->id;
    o->received_ms = node_now_ms();
    dip_dynbuf_init(&o->reply, DIP_NET_FRAME_MAX);
    struct op **head = o->kind == OP_QUERY ? &l->qhead : &l->head, **tail = o->kind == OP_QUERY ? &l->qtail : &l->tail;
    if (*tail) (*tail)->next = o;
    else *head = o;
    *tail = o;
    l->queued++;
    start_next(l);
}

int leaf_status(struct leaf *l, struct dip_dynbuf *out)
{
    const struct dip_store_stats *st = &l->stats;
    return dip_dynbuf_printf(out,
                             " records=\"%llu\" active=\"%llu\" segments=\"%llu\" disk-bytes=\"%llu\""
                             " ingested=\"%llu\" duplicates=\"%llu\" queries=\"%llu\" queued=\"%zu\"",
                             (unsigned long long)st->records, (unsigned long long)st->active_records,
                             (unsigned long long)st->segments,
                             (unsigned long long)(st->segment_bytes + st->wal_bytes), (unsigned long long)l->ingested,
                             (unsigned long long)l->duplicates, (unsigned long long)l->queries, l->queued);
}

void leaf_close(struct leaf *l)
{
    /* Operations waiting are dropped (their peers are closing); the one
     * running finishes on the pool and frees the leaf. */
    l->closing = true;
    while (l->head || l->qhead) {
        struct op *o = l->qhead ? l->qhead : l->head;
        if (o == l->qhead) l->qhead = o->next;
        else l->head = o->next;
        op_free(o);
    }
    l->tail = l->qtail = NULL;
    l->queued = 0;
    if (!l->running) {
        dip_store_close(l->store);
        free(l);
    }
}
