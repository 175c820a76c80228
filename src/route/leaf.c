/* leaf.c - the leaf role: a store of its tank key (src/store/) fed by ingest
 * batches and asked queries by its parent. Store work runs on libuv's thread
 * pool; the loop thread only decodes frames, schedules and sends replies.
 * Queries go before ingest and run one at a time. Ingest is group-committed:
 * the waiting batches are appended to the WAL in one step (the store to
 * itself), then made durable by one fsync during which queries may run, and
 * acknowledged after it; an append stops where the store is due to seal
 * and leaves the rest of its group for after the seal, so segments stay
 * near seal_records under a flood of ingest. Sealing is done in steps too
 * (store_seal_prepare / write / finish): queries run while the segment is
 * written and committed (fsyncs included), and the exclusive finish only
 * switches the store over in memory.
 * Compaction (merging segments, src/store/merge.c) runs beside all of it:
 * its long write step on a thread of its own at the lowest CPU priority
 * (SCHED_IDLE), so ingest and queries go first when the CPUs are busy, and its short
 * finish step as an exclusive job. */
#include "route/node_int.h"

#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "route/authz.h"
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

/* The job beside the queries: exclusive ones use the store alone, shared
 * ones may run while a query does. */
enum job { JOB_NONE, JOB_APPEND, JOB_SYNC, JOB_SEAL_WRITE, JOB_SEAL_FINISH, JOB_MERGE_FINISH, JOB_REOPEN, JOB_INDEX };

struct leaf {
    struct dip_node *node;
    struct dip_store *store;   /* NULL when a reopen failed: every operation is refused */
    struct dip_store_options opt;
    char dir[1100];
    int tank;
    uv_work_t qwork, jwork;
    struct op *running;        /* the query running, if any */
    struct dip_dynbuf answer;  /* its records as a batch; kept between queries (ANSWER_KEEP_BYTES) */
    enum job job;              /* the job running (JOB_NONE: none) */
    struct op *group, *group_tail; /* ingest batches of the group being committed */
    size_t ngroup;
    struct op *group_rest;     /* the group's batches an append left for after the seal */
    struct dip_store_seal_job *seal;
    int seal_rc;               /* result of the seal's write step */
    bool reopen;               /* a WAL fsync failed: reopen the store before anything else */
    uint64_t seal_after_ms;    /* after a failed seal, the next try waits until then */
    unsigned passed;           /* queries started while an exclusive job waited */
    struct dip_store_merge_job *merge; /* a merge being written, or written and waiting for its finish */
    bool merge_writing;        /* its thread runs */
    int merge_rc;              /* result of its write step */
    struct dip_errbuf merge_eb;
    uv_thread_t merge_thread;
    uv_async_t *merge_done;    /* the thread's signal to the loop (its own allocation: closed after the leaf) */
    bool seal_threaded;        /* a seal's write step runs on seal_thread (see start_job) */
    uv_thread_t seal_thread;
    uv_async_t *seal_done;     /* its signal to the loop (own allocation; NULL: seals use the pool) */
    uint64_t merge_after_ms;   /* after a failed merge, the next try waits until then */
    uint64_t last_query_ms;    /* when the last query ended (0: none yet) */
    uint64_t index_after_ms;   /* after a failed JOB_INDEX, the next waits until then */
    int job_rc;
    struct dip_errbuf job_eb;
    struct dip_store_stats job_stats;
    /* waiting operations: queries go before ingest batches, so a query is
     * not stuck behind a backlog of inserts */
    struct op *head, *tail;   /* ingest */
    struct op *qhead, *qtail; /* queries */
    size_t queued;
    struct dip_store_stats stats; /* snapshot taken after each operation */
    uint64_t ingested, duplicates, queries, groups, seals, merges;
    bool closing;
};

#define LEAF_MAX_QUEUE 1024
#define GROUP_MAX_OPS 64          /* ingest batches committed by one fsync */
#define GROUP_MAX_BYTES (64u << 20)
#define QUERIES_BEFORE_JOB 4      /* queries that may pass a waiting exclusive job */
/* A query's records are encoded as they come into one batch buffer that
 * the next query reuses when it is at most ANSWER_KEEP_BYTES (~120,000
 * records). They were first gathered in an array of records (144 bytes
 * each) and then encoded: a copy and twice the memory for nothing. */
#define ANSWER_KEEP_BYTES (8u << 20)
#define ANSWER_HEAD_ROOM 4096     /* the answer's head, in the same frame */
/* While queries come, the active part's newest records are sorted for them
 * when the leaf has nothing waiting and INDEX_MIN_RECORDS have come
 * (JOB_INDEX), so a query sorts only a few: the first query after a
 * restart sorted the whole active part (the WAL replayed), 100-150 ms, and
 * under ingest now and then a query merged runs of 100,000 records. Each
 * job is a round trip to the thread pool that a query may wait behind, so
 * a few thousand records at a time: sorting after every append made
 * queries under ingest slower. Without queries for INDEX_AFTER_QUERY_MS,
 * ingest alone does not pay for the sorting. */
#define INDEX_AFTER_QUERY_MS 30000
#define INDEX_MIN_RECORDS 4096

static void after_merge_write(uv_async_t *h);
static void after_seal_write(uv_async_t *h);

static void store_warn(const char *msg) { fprintf(stderr, "dipstorage node: %s\n", msg); }

int leaf_open(struct dip_node *n, struct leaf **out, struct dip_errbuf *eb)
{
    struct leaf *l = calloc(1, sizeof *l);
    if (!l) return DIP_ENOMEM;
    l->node = n;
    l->tank = n->map->members[n->member].tank;
    dip_dynbuf_init(&l->answer, DIP_NET_FRAME_MAX - ANSWER_HEAD_ROOM);
    struct dip_store_options o;
    dip_store_options_default(&o);
    if (n->map->leaf_memory) o.memory_budget = n->map->leaf_memory;
    if (n->map->leaf_seal_records) o.seal_records = n->map->leaf_seal_records;
    /* Sealing and merging are most of a leaf's CPU and deflate most of
     * them, and every record is stored four times: merges too deflate at
     * igzip level 2 (~0.25 us a record) rather than level 3 (~0.75 us),
     * for ~5% more disk. */
    o.fast_deflate = true;
    l->opt = o;
    char *dir = l->dir;
    snprintf(l->dir, sizeof l->dir, "%s/store", n->dir);
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
    struct dip_errbuf ieb;
    if (dip_store_index_active(l->store, &ieb)) dip_node_log(n, 2, "leaf: %s (queries will sort them)", ieb.msg);
    dip_store_stats(l->store, &l->stats);
    if ((l->merge_done = malloc(sizeof *l->merge_done)) && uv_async_init(n->loop, l->merge_done, after_merge_write) == 0) {
        l->merge_done->data = l;
    } else { /* no compaction then: the store works without it */
        free(l->merge_done);
        l->merge_done = NULL;
        dip_node_log(n, 3, "leaf: cannot set up compaction; segments will not be merged");
    }
    if ((l->seal_done = malloc(sizeof *l->seal_done)) && uv_async_init(n->loop, l->seal_done, after_seal_write) == 0) {
        l->seal_done->data = l;
    } else { /* seals run on the pool then */
        free(l->seal_done);
        l->seal_done = NULL;
    }
    *out = l;
    return DIP_OK;
}

/* ---- on the worker thread ---- */

/* A leaf stores only records of its own range, and as a tank root (a tank
 * of one leaf) refuses a seq far past its origin's highest, as a root
 * indexer does (authz.h). Returns DIP_OK or DIP_EPERM with eb. */
static int admit_batch(struct leaf *l, const struct dip_msg_ingest *m, const struct dip_flow *flows, size_t n,
                       struct dip_errbuf *eb)
{
    const struct dip_map *map = l->node->map;
    int mi = l->node->member;
    size_t first, outside = dip_authz_records_outside(map, mi, flows, n, &first);
    if (outside) return dip_authz_refuse_records(map, mi, flows, n, outside, first, eb->msg, sizeof eb->msg);
    uint64_t high = map->members[mi].parent < 0 ? dip_store_batch_high(l->store, m->origin) : 0;
    if (dip_authz_seq_plausible(high, m->seq)) return DIP_OK;
    return dip_err_set(eb, DIP_EPERM, "batch %s/%llu refused: %llu batches past the highest stored from %s (%llu)",
                       m->origin, (unsigned long long)m->seq, (unsigned long long)(m->seq - high), m->origin,
                       (unsigned long long)high);
}

static void do_ingest(struct leaf *l, struct op *o)
{
    struct dip_msg_ingest m;
    struct dip_flow *flows = NULL;
    size_t n = 0;
    bool dup = false;
    o->rc = dip_msg_ingest_decode(o->payload, o->len, &m, &o->eb);
    if (!o->rc && m.batch_len) o->rc = dip_batch_decode(m.batch, m.batch_len, 1u << 20, &flows, &n, &o->eb);
    if (!o->rc) o->rc = admit_batch(l, &m, flows, n, &o->eb);
    if (!o->rc) o->rc = dip_store_insert_batch_deferred(l->store, m.origin, m.seq, flows, n, &dup, &o->eb);
    free(flows);
    if (!o->rc) {
        o->duplicate = dup;
        o->stored = dup ? 0 : n;
    }
    /* the acknowledgement is encoded once the group's fsync is done */
}

/* A query's records, encoded into the leaf's answer batch as they come. */
struct answer_sink {
    struct dip_dynbuf *batch;
    size_t n, max;
    struct dip_errbuf *eb;
};

static int answer_add(void *ctx, const struct dip_flow *f)
{
    struct answer_sink *k = ctx;
    if (k->n == k->max) return dip_err_set(k->eb, DIP_ERANGE, "result exceeds the limit of %zu records", k->max);
    int rc = dip_batch_add(k->batch, f);
    if (rc == DIP_ERANGE) return dip_err_set(k->eb, rc, "answer exceeds %zu bytes", k->batch->max);
    if (rc) return rc;
    k->n++;
    return DIP_OK;
}

static void do_query(struct leaf *l, struct op *o)
{
    struct dip_msg_query m;
    char *text = malloc(DIP_XPATH_MAX_LEN + 1);
    struct dip_msg_answer a = { .kind = DIP_RESULT_NODES, .complete = true };
    struct answer_sink sink = { .batch = &l->answer, .max = 1000000, .eb = &o->eb };
    size_t col = 0, start = 0;
    dip_dynbuf_reset(&l->answer);
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
    /* The store stops at the requester's deadline, not at its own limit
     * (60 s): past it nobody reads the answer, and the leaf has other work.
     * received_ms is wall-clock time (node_now_ms), the store's deadlines
     * are monotonic: the time left is carried over. */
    uint64_t until = 0;
    if (m.deadline_ms) {
        uint64_t end = o->received_ms + m.deadline_ms, now = node_now_ms();
        until = dip_store_clock_ms() + (end > now ? end - now : 0);
    }
    o->rc = dip_batch_begin(&l->answer, &start);
    if (o->rc) goto out;
    if (m.mode == DIP_QUERY_GATHER) {
        o->rc = dip_store_scan_until(l->store, NULL, until, answer_add, &sink, &col, &o->eb);
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
            o->rc = dip_store_scan_until(l->store, m.xpath, until, answer_add, &sink, &col, &o->eb);
        } else if (shape == DIP_XPATH_GATHER) {
            o->rc = dip_err_set(&o->eb, DIP_EINVAL, "this expression must be gathered at the access point");
        } else {
            struct dip_store_answer ans;
            o->rc = dip_store_query_until(l->store, m.xpath, m.xpath_len, until, &ans, &col, &o->eb);
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
    if (a.kind == DIP_RESULT_NODES) a.count = sink.n;
    o->rc = dip_msg_answer_encode_head(&o->reply, &a);
    if (!o->rc && sink.n) o->rc = dip_batch_end(&l->answer, start, sink.n);
    else dip_dynbuf_reset(&l->answer); /* no records: no batch */
    if (o->rc && !o->eb.msg[0]) dip_err_set(&o->eb, o->rc, "answer too large to send");
out:
    free(text);
    if (o->rc) {
        dip_dynbuf_reset(&l->answer);
        dip_dynbuf_reset(&o->reply);
        o->reply_type = DIP_MSG_ERROR;
        dip_msg_status_encode(&o->reply, o->rc, o->column, o->eb.msg[0] ? o->eb.msg : dip_err_name(o->rc));
    } else {
        o->reply_type = DIP_MSG_ANSWER;
    }
}

static void query_work(uv_work_t *w)
{
    struct leaf *l = w->data;
    struct op *o = l->running;
    do_query(l, o);
    dip_store_stats(l->store, &o->stats);
}

static void job_work(uv_work_t *w)
{
    struct leaf *l = w->data;
    l->job_rc = DIP_OK;
    l->job_eb.msg[0] = 0;
    switch (l->job) {
    case JOB_APPEND:
        /* up to the seal: the rest of the group waits for it, so segments
         * stay near seal_records however much ingest queued up meanwhile */
        l->group_rest = NULL;
        for (struct op *o = l->group; o; o = o->next) {
            if (o != l->group && dip_store_seal_due(l->store)) {
                l->group_rest = o;
                break;
            }
            do_ingest(l, o);
        }
        break;
    case JOB_SYNC:
        l->job_rc = dip_store_sync(l->store, &l->job_eb);
        return; /* shared: the store's state is not read */
    case JOB_SEAL_WRITE:
        l->seal_rc = dip_store_seal_write(l->store, l->seal, &l->job_eb);
        return;
    case JOB_SEAL_FINISH:
        l->job_rc = dip_store_seal_finish(l->store, l->seal, l->seal_rc, &l->job_eb);
        l->seal = NULL;
#ifdef __GLIBC__
        malloc_trim(0); /* the sealed records' buffers go back to the system, not only to malloc */
#endif
        break;
    case JOB_MERGE_FINISH:
        l->job_rc = dip_store_merge_finish(l->store, l->merge, l->merge_rc, &l->job_eb);
        l->merge = NULL;
        break;
    case JOB_REOPEN:
        dip_store_close(l->store);
        l->store = NULL;
        l->job_rc = dip_store_open(l->dir, l->tank, &l->opt, &l->store, store_warn, &l->job_eb);
        if (l->job_rc) l->store = NULL;
        else (void)dip_store_index_active(l->store, &l->job_eb); /* else queries sort them */
        break;
    case JOB_INDEX:
        l->job_rc = dip_store_index_active(l->store, &l->job_eb);
        break;
    default: break;
    }
    if (l->store) dip_store_stats(l->store, &l->job_stats);
}

/* ---- on the loop thread ---- */

static void schedule(struct leaf *l);

static void op_free(struct op *o)
{
    node_peer_unref(o->peer);
    free(o->payload);
    dip_dynbuf_free(&o->reply);
    free(o);
}

static void close_handle_free(uv_handle_t *h) { free(h); }

static void leaf_free_if_idle(struct leaf *l)
{
    if (l->running || l->job != JOB_NONE || l->merge_writing) return;
    if (l->seal) dip_store_seal_finish(l->store, l->seal, DIP_EIO, &l->job_eb); /* drops the unfinished segment */
    l->seal = NULL;
    if (l->merge) dip_store_merge_finish(l->store, l->merge, DIP_EIO, &l->job_eb); /* drops the merged file */
    l->merge = NULL;
    if (l->merge_done) uv_close((uv_handle_t *)l->merge_done, close_handle_free);
    if (l->seal_done) uv_close((uv_handle_t *)l->seal_done, close_handle_free);
    if (l->store) dip_store_close(l->store);
    dip_dynbuf_free(&l->answer);
    free(l);
}

static void after_query(uv_work_t *w, int status)
{
    struct leaf *l = w->data;
    struct op *o = l->running;
    l->running = NULL;
    l->stats = o->stats;
    l->queries++;
    l->last_query_ms = node_now_ms();
    if (status == 0) node_peer_reply(o->peer, o->reply_type, o->id, o->reply.data, o->reply.len, l->answer.data,
                                     l->answer.len);
    dip_dynbuf_reset(&l->answer);
    if (l->answer.cap > ANSWER_KEEP_BYTES) dip_dynbuf_free(&l->answer);
    op_free(o);
    if (l->closing) {
        leaf_free_if_idle(l);
        return;
    }
    schedule(l);
}

/* Puts the batches an append left (l->group_rest) back at the head of the
 * ingest queue, in their order: the group is then what was appended. */
static void unappended_back(struct leaf *l)
{
    struct op *rest = l->group_rest;
    if (!rest) return;
    l->group_rest = NULL;
    struct op *last = l->group;
    while (last->next != rest) last = last->next;
    last->next = NULL;
    size_t moved = 1;
    for (struct op *o = rest; o != l->group_tail; o = o->next) moved++;
    l->group_tail->next = l->head;
    if (!l->head) l->tail = l->group_tail;
    l->head = rest;
    l->group_tail = last;
    l->ngroup -= moved;
    l->queued += moved;
}

/* Acknowledges every batch of the group: stored once the fsync succeeded. */
static void group_reply(struct leaf *l, int sync_rc, const char *why)
{
    while (l->group) {
        struct op *o = l->group;
        l->group = o->next;
        if (!o->rc && sync_rc) {
            o->rc = sync_rc;
            dip_err_set(&o->eb, sync_rc, "%s", why);
            o->stored = 0;
            o->duplicate = false;
        }
        l->ingested += o->stored;
        l->duplicates += o->duplicate;
        dip_dynbuf_reset(&o->reply);
        dip_msg_status_encode(&o->reply, o->rc, 0, o->rc ? o->eb.msg : (o->duplicate ? "duplicate" : "stored"));
        if (!l->closing) node_peer_reply(o->peer, DIP_MSG_ACK, o->id, o->reply.data, o->reply.len, NULL, 0);
        const char *peer = o->peer->link ? dip_net_link_peer(o->peer->link) : "?";
        if (o->rc == DIP_EPERM) node_log_refusal(l->node, peer, o->eb.msg);
        else if (o->rc) dip_node_log(l->node, 2, "ingest from %s failed: %s", peer, o->eb.msg);
        op_free(o);
    }
    l->group_tail = NULL;
    l->ngroup = 0;
}

static void start_job(struct leaf *l, enum job j);

static void after_job(uv_work_t *w, int status)
{
    struct leaf *l = w->data;
    enum job j = l->job;
    l->job = JOB_NONE;
    if (status) { /* cancelled: cannot happen for a started job, but never leave a group hanging */
        if (j == JOB_APPEND || j == JOB_SYNC) group_reply(l, DIP_EIO, "store work was cancelled");
    } else {
        switch (j) {
        case JOB_APPEND:
            l->stats = l->job_stats;
            l->groups++;
            if (!l->closing) unappended_back(l); /* else the whole group is refused below */
            break;
        case JOB_SYNC:
            if (l->job_rc) {
                dip_node_log(l->node, 3, "leaf: %s; reopening the store", l->job_eb.msg);
                l->reopen = true;
            }
            group_reply(l, l->job_rc, l->job_eb.msg);
            break;
        case JOB_SEAL_WRITE:
            break;
        case JOB_SEAL_FINISH:
            if (l->job_rc) {
                dip_node_log(l->node, 3, "leaf: sealing failed (retried in 1 s): %s", l->job_eb.msg);
                l->seal_after_ms = node_now_ms() + 1000;
            } else {
                l->seals++;
            }
            if (l->store) l->stats = l->job_stats;
            break;
        case JOB_MERGE_FINISH:
            if (l->job_rc) {
                dip_node_log(l->node, 3, "leaf: merging segments failed (retried in 10 s): %s", l->job_eb.msg);
                l->merge_after_ms = node_now_ms() + 10000;
            } else {
                l->merges++;
            }
            if (l->store) l->stats = l->job_stats;
            break;
        case JOB_REOPEN:
            if (l->job_rc) dip_node_log(l->node, 4, "leaf: cannot reopen the store: %s", l->job_eb.msg);
            else l->stats = l->job_stats;
            l->reopen = false;
            break;
        case JOB_INDEX:
            if (l->job_rc) {
                dip_node_log(l->node, 2, "leaf: %s (retried in 1 s; queries sort them meanwhile)", l->job_eb.msg);
                l->index_after_ms = node_now_ms() + 1000;
            }
            break;
        default: break;
        }
    }
    if (l->closing) {
        group_reply(l, DIP_EIO, "leaf closing");
        leaf_free_if_idle(l);
        return;
    }
    /* a group's append is followed at once by its fsync */
    if (j == JOB_APPEND && !status) {
        start_job(l, JOB_SYNC);
        return;
    }
    schedule(l);
}

/* ---- the seal thread ----
 * A seal's write step (sorting and deflating up to seal_records records,
 * the most CPU a leaf spends on ingest) runs on a thread of its own at a
 * lower priority (background_priority) than queries, like a merge; it is shared, so
 * queries run beside it. Under 50k rec/s of ingest a query shared the two
 * CPUs with the seals of sixteen leaves and took 2-3 times as long as
 * idle. The other jobs stay on the loop's thread pool at the normal
 * priority: queries wait for the exclusive ones, and at nice 10 an append
 * that a query waited for was itself held back by the roots' and the
 * front's ingest work (with every job at nice 10 the bench measured p50
 * under load at 1.42x idle; with only the seals, 1.30x). */

/* Puts the calling thread (only it: a seal's or a merge's, which ends
 * with its work) below all work at normal priority: SCHED_IDLE, which runs
 * when a CPU has nothing else to do, or nice 10 where that is refused. Two
 * busy loops beside point queries on these 2-CPU machines raised the
 * queries' p50 1.58x at nice 19 and 1.33x under SCHED_IDLE. Neither is
 * fatal to miss: the work then runs at normal priority. */
static void background_priority(void)
{
    struct sched_param none = { 0 };
    if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &none) == 0) return;
    if (setpriority(PRIO_PROCESS, (id_t)gettid(), 10) != 0) { /* normal priority, then */ }
}

static void seal_main(void *arg)
{
    struct leaf *l = arg;
    background_priority();
    job_work(&l->jwork);
    uv_async_send(l->seal_done);
}

static void after_seal_write(uv_async_t *h)
{
    struct leaf *l = h->data;
    if (!l->seal_threaded) return;
    uv_thread_join(&l->seal_thread);
    l->seal_threaded = false;
    after_job(&l->jwork, 0);
}

static void start_job(struct leaf *l, enum job j)
{
    l->job = j;
    l->jwork.data = l;
    if (j == JOB_SEAL_WRITE && l->seal_done && uv_thread_create(&l->seal_thread, seal_main, l) == 0) {
        l->seal_threaded = true;
        return;
    } /* else on the pool, at the queries' priority */
    if (uv_queue_work(l->node->loop, &l->jwork, job_work, after_job)) {
        /* cannot happen with a live loop: run it here rather than lose it */
        job_work(&l->jwork);
        after_job(&l->jwork, 0);
    }
}

static bool job_is_shared(enum job j) { return j == JOB_SYNC || j == JOB_SEAL_WRITE; }

static struct op *pop(struct op **head, struct op **tail)
{
    struct op *o = *head;
    *head = o->next;
    if (!*head) *tail = NULL;
    o->next = NULL;
    return o;
}

/* The exclusive job that would run next, JOB_NONE when there is none. */
static enum job next_exclusive(struct leaf *l)
{
    if (!l->store) return JOB_NONE;
    if (l->seal) return JOB_SEAL_FINISH; /* committed by its write step, maybe: switch over first */
    if (l->reopen) return JOB_REOPEN;
    if (l->merge && !l->merge_writing) return JOB_MERGE_FINISH;
    if (dip_store_seal_due(l->store) && node_now_ms() >= l->seal_after_ms)
        return JOB_SEAL_WRITE; /* after its (quick) prepare */
    if (l->head) return JOB_APPEND;
    uint64_t now = node_now_ms();
    if (!l->qhead && l->last_query_ms && now - l->last_query_ms < INDEX_AFTER_QUERY_MS && now >= l->index_after_ms &&
        dip_store_active_unindexed(l->store) >= INDEX_MIN_RECORDS)
        return JOB_INDEX;
    return JOB_NONE;
}

static void start_query(struct leaf *l)
{
    struct op *o = pop(&l->qhead, &l->qtail);
    l->queued--;
    l->running = o;
    l->qwork.data = l;
    if (uv_queue_work(l->node->loop, &l->qwork, query_work, after_query)) {
        l->running = NULL;
        node_peer_error(o->peer, o->id, DIP_EIO, 0, "cannot queue store work");
        op_free(o);
    }
}

/* ---- compaction ---- */

static void merge_main(void *arg)
{
    struct leaf *l = arg;
    background_priority(); /* below ingest and queries when the CPUs are busy */
    l->merge_eb.msg[0] = 0;
    l->merge_rc = dip_store_merge_write(l->merge, &l->merge_eb);
    uv_async_send(l->merge_done);
}

static void after_merge_write(uv_async_t *h)
{
    struct leaf *l = h->data;
    if (!l->merge_writing) return;
    uv_thread_join(&l->merge_thread);
    l->merge_writing = false;
    if (l->merge_rc) dip_node_log(l->node, 3, "leaf: merging segments: %s", l->merge_eb.msg);
    if (l->closing) {
        leaf_free_if_idle(l);
        return;
    }
    schedule(l); /* the finish is an exclusive job */
}

/* Starts a merge when one is due and the store's segment list is not being
 * changed by a job (preparing reads it). */
static void maybe_start_merge(struct leaf *l)
{
    if (l->merge || !l->store || l->reopen || l->closing || !l->merge_done) return;
    if (!(l->job == JOB_NONE || job_is_shared(l->job)) || node_now_ms() < l->merge_after_ms) return;
    if (!dip_store_merge_due(l->store)) return;
    struct dip_errbuf eb = { { 0 } };
    struct dip_store_merge_job *j = NULL;
    if (dip_store_merge_prepare(l->store, &j, &eb) || !j) {
        if (j == NULL && eb.msg[0]) dip_node_log(l->node, 3, "leaf: cannot merge segments: %s", eb.msg);
        l->merge_after_ms = node_now_ms() + 10000;
        return;
    }
    l->merge = j;
    l->merge_writing = true;
    if (uv_thread_create(&l->merge_thread, merge_main, l) != 0) {
        l->merge_writing = false;
        l->merge_rc = dip_err_set(&l->merge_eb, DIP_ENOMEM, "cannot start a thread to merge segments");
    }
}

static void refuse_all(struct leaf *l)
{
    while (l->qhead || l->head) {
        struct op *o = l->qhead ? pop(&l->qhead, &l->qtail) : pop(&l->head, &l->tail);
        l->queued--;
        node_peer_error(o->peer, o->id, DIP_EIO, 0, "leaf store unavailable (see the node log)");
        op_free(o);
    }
}

static void schedule(struct leaf *l)
{
    if (!l->store && !l->reopen) {
        if (!l->running && l->job == JOB_NONE) refuse_all(l);
        return;
    }
    maybe_start_merge(l);
    for (;;) {
        enum job ex = l->job == JOB_NONE ? next_exclusive(l) : JOB_NONE;
        bool job_shared_or_idle = l->job == JOB_NONE || job_is_shared(l->job);
        /* a query, unless an exclusive job has waited for too many of them */
        if (!l->running && l->qhead && job_shared_or_idle && !(ex != JOB_NONE && l->passed >= QUERIES_BEFORE_JOB)) {
            if (ex != JOB_NONE) l->passed++;
            start_query(l);
            continue;
        }
        if (ex == JOB_NONE || l->running) return;
        l->passed = 0;
        if (ex == JOB_SEAL_WRITE) {
            struct dip_errbuf eb;
            int rc = dip_store_seal_prepare(l->store, &l->seal, &eb);
            if (rc || !l->seal) {
                /* nothing was changed: log and let ingest go on */
                if (rc) dip_node_log(l->node, 3, "leaf: cannot seal: %s", eb.msg);
                l->seal = NULL;
                l->seal_after_ms = node_now_ms() + 1000;
                if (!l->head) return;
                ex = JOB_APPEND;
            } else {
                l->seal_rc = DIP_OK;
                start_job(l, JOB_SEAL_WRITE);
                continue; /* queries may run beside it */
            }
        }
        if (ex == JOB_APPEND) {
            size_t bytes = 0;
            while (l->head && l->ngroup < GROUP_MAX_OPS && bytes < GROUP_MAX_BYTES) {
                struct op *o = pop(&l->head, &l->tail);
                l->queued--;
                bytes += o->len;
                if (l->group_tail) l->group_tail->next = o;
                else l->group = o;
                l->group_tail = o;
                l->ngroup++;
            }
        }
        start_job(l, ex);
        return;
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
    schedule(l);
}

int leaf_status(struct leaf *l, struct dip_dynbuf *out)
{
    const struct dip_store_stats *st = &l->stats;
    return dip_dynbuf_printf(out,
                             " records=\"%llu\" active=\"%llu\" segments=\"%llu\" disk-bytes=\"%llu\""
                             " ingested=\"%llu\" duplicates=\"%llu\" queries=\"%llu\" queued=\"%zu\""
                             " groups=\"%llu\" seals=\"%llu\" merges=\"%llu\" merging=\"%d\"",
                             (unsigned long long)st->records, (unsigned long long)st->active_records,
                             (unsigned long long)st->segments,
                             (unsigned long long)(st->segment_bytes + st->wal_bytes), (unsigned long long)l->ingested,
                             (unsigned long long)l->duplicates, (unsigned long long)l->queries, l->queued,
                             (unsigned long long)l->groups, (unsigned long long)l->seals,
                             (unsigned long long)l->merges, l->merge != NULL);
}

void leaf_close(struct leaf *l)
{
    /* Operations waiting are dropped (their peers are closing); the query and
     * the job running finish on the pool, and the last one frees the leaf. */
    l->closing = true;
    while (l->head || l->qhead) {
        struct op *o = l->qhead ? pop(&l->qhead, &l->qtail) : pop(&l->head, &l->tail);
        op_free(o);
    }
    l->queued = 0;
    if (l->job == JOB_NONE) group_reply(l, DIP_EIO, "leaf closing");
    leaf_free_if_idle(l);
}
