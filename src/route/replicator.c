/* replicator.c - one spooled copy of every batch, one sender per tank
 * (replicator.h). A sender keeps up to DIP_REPLICATOR_WINDOW batches in
 * flight to its tank root; on an error or a lost link it goes back to the
 * first unacknowledged batch after a pause (leaves drop batches they already
 * hold), and it records its position in the spool so a restart resumes there. */
#include "route/replicator.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "route/node_int.h"
#include "route/spool.h"

#define RETRY_MS 500u
#define CONNECT_TIMEOUT_MS 3000u
#define ACK_PERSIST_MS 1000u
#define MAX_QUEUED_BATCHES 64   /* encoded batches waiting for the spool writer */

struct dip_replicator;

struct sender {
    struct dip_replicator *r;
    int tank;
    size_t reader;           /* spool reader index */
    int member;              /* the tank root */
    struct dip_net_link *link;
    bool up;
    uv_timer_t retry;
    uint64_t gen;            /* bumped on every go-back; replies of older generations only count as acks */
    uint64_t acked;          /* every batch <= acked is stored by the tank */
    uint64_t next;           /* next batch to send */
    uint64_t persisted;      /* acked position written to the spool */
    uint8_t done[DIP_REPLICATOR_WINDOW * 4]; /* acks beyond `acked`, by seq - acked - 1 */
    size_t inflight;
    uint64_t errors;
    uint64_t refused;        /* batches the tank refused (DIP_EPERM: this front's role, origin or records) */
    char last_error[256];
};

/* The spool writer: appends and fsyncs run on a thread of its own, so the
 * loop keeps receiving while the disk works (an fsync costs ~10 ms here),
 * and no query on libuv's thread pool (the access point's gathers) can hold
 * up the spool. The spool itself is shared under `lock`; the fsync runs
 * outside it. */
struct writer {
    uv_thread_t thread;
    uv_mutex_t wake_lock;
    uv_cond_t wake;
    bool job_ready;           /* under wake_lock: the thread has a job to run */
    bool stop;                /* under wake_lock: the thread ends */
    uv_async_t *done;         /* the thread's signal to the loop (its own allocation: closed after r is freed) */
    bool busy;
    struct dip_dynbuf *queue[MAX_QUEUED_BATCHES]; /* encoded batches, oldest first */
    size_t queue_records[MAX_QUEUED_BATCHES];      /* records of each */
    size_t nqueue;
    struct dip_dynbuf *taken[MAX_QUEUED_BATCHES];  /* the ones the running job writes */
    size_t taken_records[MAX_QUEUED_BATCHES];
    size_t ntaken;
    size_t appended;          /* how many of them the job appended */
    bool synced;              /* and made durable */
    uint64_t last_seq;        /* sequence number of the last one appended */
    uint64_t acks[DIP_TANK_KEYS]; /* positions the job persists */
    bool persist;
    int rc;
    struct dip_errbuf eb;
};

struct dip_replicator {
    struct dip_node *node;
    struct dip_spool *spool;
    uv_mutex_t lock;         /* guards spool */
    uint64_t durable;        /* every batch <= durable is fsync'd: senders send up to here */
    struct writer w;
    bool persist_due;
    struct sender senders[DIP_TANK_KEYS];
    size_t nsenders;
    struct dip_flow *pending;
    size_t npending;
    uv_timer_t flush_timer, persist_timer;
    struct dip_dynbuf scratch;
    struct dip_replicator_stats st;
    uint64_t durable_records;  /* records of the batches <= durable */
    uint64_t unsynced_records; /* appended by a job whose fsync failed: durable with the next one */
    bool closing;
    int open_handles;
};

static void pump(struct sender *s);
static void sender_connect(struct sender *s);
static void retry_fire(uv_timer_t *t);

static const char *origin(const struct dip_replicator *r) { return r->node->name; }

static void spool_warn(const char *msg) { fprintf(stderr, "dipstorage node: spool: %s\n", msg); }

/* ---- acknowledgements ---- */

static void mark_done(struct sender *s, uint64_t seq)
{
    if (seq <= s->acked) return;
    uint64_t off = seq - s->acked - 1;
    if (off >= sizeof s->done) return;
    s->done[off] = 1;
    size_t shift = 0;
    while (shift < sizeof s->done && s->done[shift]) shift++;
    if (!shift) return;
    memmove(s->done, s->done + shift, sizeof s->done - shift);
    memset(s->done + sizeof s->done - shift, 0, shift);
    s->acked += shift;
    if (s->next <= s->acked) s->next = s->acked + 1;
}

static void writer_start(struct dip_replicator *r);
static void replicator_handle_closed(struct dip_replicator *r);

/* Acknowledged positions are persisted by the spool writer about once a
 * second: after a restart at most that much is sent again (and dropped by
 * the leaves as duplicates). */
static void persist(uv_timer_t *t)
{
    struct dip_replicator *r = t->data;
    r->persist_due = true;
    writer_start(r);
}

static void go_back(struct sender *s, const char *why)
{
    s->errors++;
    if (strcmp(s->last_error, why) != 0)
        dip_node_log(s->r->node, 2, "tank %s: %s; resending from batch %llu",
                     dip_tank_key_name((enum dip_tank_key)s->tank), why, (unsigned long long)s->acked + 1);
    snprintf(s->last_error, sizeof s->last_error, "%s", why);
    s->gen++;
    s->inflight = 0;
    s->next = s->acked + 1;
    if (!s->r->closing && !uv_is_active((uv_handle_t *)&s->retry))
        uv_timer_start(&s->retry, retry_fire, RETRY_MS, 0);
}

/* ---- the link to a tank root ---- */

static void on_frame(struct dip_net_link *l, const struct dip_net_frame *f, void *ctx)
{
    struct sender *s = ctx;
    (void)l;
    uint64_t gen = f->id >> 40, seq = f->id & ((1ull << 40) - 1);
    int code = DIP_EPROTO;
    uint32_t column;
    char msg[300] = "malformed acknowledgement";
    if (f->type == DIP_MSG_ACK || f->type == DIP_MSG_ERROR)
        dip_msg_status_decode(f->payload, f->len, &code, &column, msg, sizeof msg);
    if (code == DIP_OK && f->type == DIP_MSG_ACK) {
        mark_done(s, seq);
        if (gen == (s->gen & 0xffffff) && s->inflight) s->inflight--;
        s->last_error[0] = 0;
        pump(s);
    } else if (gen == (s->gen & 0xffffff)) {
        if (code == DIP_EPERM) s->refused++;
        go_back(s, msg);
    }
}

static void on_open(struct dip_net_link *l, void *ctx)
{
    struct sender *s = ctx;
    (void)l;
    s->up = true;
    dip_node_log(s->r->node, 1, "replicator: link to tank %s is up", dip_tank_key_name((enum dip_tank_key)s->tank));
    s->last_error[0] = 0;
    pump(s);
}

static void handle_closed(uv_handle_t *h);

static void on_close(struct dip_net_link *l, int code, const char *msg, void *ctx)
{
    struct sender *s = ctx;
    (void)l;
    s->link = NULL;
    s->up = false;
    if (s->r->closing) {
        uv_close((uv_handle_t *)&s->retry, handle_closed);
        return;
    }
    go_back(s, msg ? msg : dip_err_name(code));
}

static const struct dip_net_link_callbacks sender_callbacks = {
    .on_frame = on_frame,
    .on_open = on_open,
    .on_close = on_close,
};

static void retry_fire(uv_timer_t *t)
{
    struct sender *s = t->data;
    if (!s->link) sender_connect(s);
    else pump(s);
}

static void sender_connect(struct sender *s)
{
    const struct dip_map *m = s->r->node->map;
    const struct dip_map_node *nd = &m->nodes[m->members[s->member].node];
    struct dip_errbuf eb;
    if (dip_net_link_connect(s->r->node->loop, s->r->node->tls, nd->host, nd->port, CONNECT_TIMEOUT_MS,
                             &sender_callbacks, s, &s->link, &eb)) {
        s->link = NULL;
        go_back(s, eb.msg);
    }
}

/* Sends spooled batches while the window has room. */
static void pump(struct sender *s)
{
    struct dip_replicator *r = s->r;
    if (!s->up || !s->link || uv_is_active((uv_handle_t *)&s->retry)) return;
    while (s->inflight < DIP_REPLICATOR_WINDOW && s->next <= r->durable &&
           s->next <= s->acked + sizeof s->done) {
        if (s->next > s->acked && s->done[s->next - s->acked - 1]) {
            s->next++;
            continue;
        }
        struct dip_errbuf eb;
        uint64_t seq;
        dip_dynbuf_reset(&r->scratch);
        uv_mutex_lock(&r->lock);
        int rc = dip_spool_read(r->spool, s->reader, s->next - 1, &r->scratch, &seq, &eb);
        uv_mutex_unlock(&r->lock);
        if (rc == DIP_EAGAIN) return;
        if (rc) {
            dip_node_log(r->node, 3, "replicator: %s", eb.msg);
            go_back(s, eb.msg);
            return;
        }
        uint8_t head[DIP_MSG_ORIGIN_MAX + 16];
        struct dip_dynbuf h;
        dip_dynbuf_init(&h, sizeof head + 16);
        dip_msg_ingest_encode(&h, origin(r), seq, NULL, 0);
        uint64_t id = ((s->gen & 0xffffff) << 40) | seq;
        rc = dip_net_link_send(s->link, DIP_MSG_INGEST, id, h.data, h.len, r->scratch.data, r->scratch.len);
        dip_dynbuf_free(&h);
        if (rc) {
            go_back(s, "send failed");
            return;
        }
        s->inflight++;
        s->next = seq + 1;
    }
}

/* ---- batches into the spool ---- */

static void writer_work(struct dip_replicator *r)
{
    struct writer *w = &r->w;
    w->rc = DIP_OK;
    w->appended = 0;
    int fd = -1;
    uv_mutex_lock(&r->lock);
    for (size_t i = 0; i < w->ntaken && !w->rc; i++) {
        w->rc = dip_spool_append(r->spool, w->taken[i]->data, w->taken[i]->len, false, &w->last_seq, &w->eb);
        if (!w->rc) w->appended++;
    }
    if (w->appended) fd = dip_spool_append_fd(r->spool);
    uv_mutex_unlock(&r->lock);
    w->synced = true;
    if (fd >= 0 && fdatasync(fd) != 0) {
        /* appended but not durable: they become durable with the next
         * successful fsync, and are not sent before */
        w->synced = false;
        if (!w->rc) w->rc = dip_err_sys(&w->eb, errno, "fsync of the spool");
    }
    if (w->persist) {
        uv_mutex_lock(&r->lock);
        for (size_t i = 0; i < r->nsenders; i++) {
            struct dip_errbuf eb;
            if (w->acks[i] > dip_spool_acked(r->spool, i) && dip_spool_ack(r->spool, i, w->acks[i], &eb) && !w->rc)
                w->eb = eb; /* reported, not fatal: the position is persisted next time */
        }
        uv_mutex_unlock(&r->lock);
    }
}

static void writer_done(uv_async_t *a)
{
    struct dip_replicator *r = a->data;
    struct writer *w = &r->w;
    if (!w->busy) return; /* a signal coalesced with one already handled */
    w->busy = false;
    r->st.spooled_batches += w->appended;
    if (w->appended && w->synced) r->durable = w->last_seq;
    for (size_t i = 0; i < w->appended; i++) r->unsynced_records += w->taken_records[i];
    if (w->synced) {
        r->durable_records += r->unsynced_records;
        r->unsynced_records = 0;
    }
    for (size_t i = 0; i < w->ntaken; i++) {
        if (i >= w->appended) {
            /* the records of a batch that could not be spooled are refused */
            struct dip_flow *flows = NULL;
            size_t n = 0;
            if (!dip_batch_decode(w->taken[i]->data, w->taken[i]->len, 1u << 20, &flows, &n, NULL)) r->st.refused += n;
            free(flows);
        }
        dip_dynbuf_free(w->taken[i]);
        free(w->taken[i]);
    }
    if (w->rc) dip_node_log(r->node, 3, "replicator: spool: %s", w->eb.msg);
    if (w->persist)
        for (size_t i = 0; i < r->nsenders; i++) r->senders[i].persisted = w->acks[i];
    w->ntaken = 0;
    for (size_t i = 0; i < r->nsenders; i++) pump(&r->senders[i]);
    if (r->w.nqueue || r->persist_due) writer_start(r);
    replicator_handle_closed(r); /* the job's hold on the replicator */
}

static void writer_start(struct dip_replicator *r)
{
    struct writer *w = &r->w;
    if (w->busy || (!w->nqueue && !r->persist_due)) return;
    memcpy(w->taken, w->queue, w->nqueue * sizeof *w->queue);
    memcpy(w->taken_records, w->queue_records, w->nqueue * sizeof *w->queue_records);
    w->ntaken = w->nqueue;
    w->nqueue = 0;
    w->persist = r->persist_due;
    r->persist_due = false;
    for (size_t i = 0; i < r->nsenders; i++) w->acks[i] = r->senders[i].acked;
    w->busy = true;
    r->open_handles++;
    uv_mutex_lock(&w->wake_lock);
    w->job_ready = true;
    uv_cond_signal(&w->wake);
    uv_mutex_unlock(&w->wake_lock);
}

static void writer_thread(void *arg)
{
    struct dip_replicator *r = arg;
    struct writer *w = &r->w;
    for (;;) {
        uv_mutex_lock(&w->wake_lock);
        while (!w->job_ready && !w->stop) uv_cond_wait(&w->wake, &w->wake_lock);
        bool run = w->job_ready;
        w->job_ready = false;
        uv_mutex_unlock(&w->wake_lock);
        if (!run) return;
        writer_work(r);
        uv_async_send(w->done);
    }
}

static void free_handle(uv_handle_t *h) { free(h); }

/* Starts the writer's thread and its signal. Returns DIP_OK or DIP_ENOMEM. */
static int writer_open(struct dip_replicator *r)
{
    struct writer *w = &r->w;
    if (!(w->done = malloc(sizeof *w->done))) return DIP_ENOMEM;
    if (uv_async_init(r->node->loop, w->done, writer_done)) {
        free(w->done);
        return DIP_ENOMEM;
    }
    w->done->data = r;
    uv_mutex_init(&w->wake_lock);
    uv_cond_init(&w->wake);
    if (uv_thread_create(&w->thread, writer_thread, r)) {
        uv_close((uv_handle_t *)w->done, free_handle);
        uv_cond_destroy(&w->wake);
        uv_mutex_destroy(&w->wake_lock);
        return DIP_ENOMEM;
    }
    return DIP_OK;
}

/* Ends the writer's thread (idle: every job it ran is done) and closes its signal. */
static void writer_close(struct writer *w)
{
    uv_mutex_lock(&w->wake_lock);
    w->stop = true;
    uv_cond_signal(&w->wake);
    uv_mutex_unlock(&w->wake_lock);
    uv_thread_join(&w->thread);
    uv_cond_destroy(&w->wake);
    uv_mutex_destroy(&w->wake_lock);
    uv_close((uv_handle_t *)w->done, free_handle);
}

bool dip_replicator_busy(const struct dip_replicator *r) { return r->w.nqueue >= MAX_QUEUED_BATCHES / 2; }

int dip_replicator_flush(struct dip_replicator *r, struct dip_errbuf *eb)
{
    if (!r->npending) return DIP_OK;
    if (r->w.nqueue == MAX_QUEUED_BATCHES) {
        r->st.refused += r->npending;
        r->npending = 0;
        return dip_err_set(eb, DIP_ENOSPC, "the spool cannot keep up: %d batches wait for the disk",
                           MAX_QUEUED_BATCHES);
    }
    struct dip_dynbuf *b = malloc(sizeof *b);
    if (!b) return DIP_ENOMEM;
    dip_dynbuf_init(b, DIP_NET_FRAME_MAX);
    int rc = dip_batch_encode(r->pending, r->npending, b);
    if (rc) {
        dip_dynbuf_free(b);
        free(b);
        r->st.refused += r->npending;
        r->npending = 0;
        return dip_err_set(eb, rc, "cannot encode a batch");
    }
    r->w.queue_records[r->w.nqueue] = r->npending;
    r->npending = 0;
    r->w.queue[r->w.nqueue++] = b;
    writer_start(r);
    return DIP_OK;
}

uint64_t dip_replicator_taken(const struct dip_replicator *r) { return r->st.records; }

uint64_t dip_replicator_settled(const struct dip_replicator *r) { return r->durable_records + r->st.refused; }

static void flush_fire(uv_timer_t *t)
{
    struct dip_replicator *r = t->data;
    struct dip_errbuf eb;
    if (dip_replicator_flush(r, &eb)) dip_node_log(r->node, 3, "replicator: records refused: %s", eb.msg);
}

int dip_replicator_add(struct dip_replicator *r, const struct dip_flow *flows, size_t n, struct dip_errbuf *eb)
{
    r->st.records += n;
    while (n) {
        size_t take = DIP_REPLICATOR_BATCH - r->npending;
        if (take > n) take = n;
        memcpy(r->pending + r->npending, flows, take * sizeof *flows);
        r->npending += take;
        flows += take;
        n -= take;
        if (r->npending == DIP_REPLICATOR_BATCH) {
            int rc = dip_replicator_flush(r, eb);
            if (rc) {
                r->st.refused += n;
                return rc;
            }
        }
    }
    if (r->npending && !uv_is_active((uv_handle_t *)&r->flush_timer))
        uv_timer_start(&r->flush_timer, flush_fire, DIP_REPLICATOR_FLUSH_MS, 0);
    return DIP_OK;
}

/* ---- life cycle ---- */

int dip_replicator_open(struct dip_node *n, const char *spool_dir, uint64_t max_spool_bytes,
                        struct dip_replicator **out, struct dip_errbuf *eb)
{
    struct dip_replicator *r = calloc(1, sizeof *r);
    if (!r || !(r->pending = malloc(DIP_REPLICATOR_BATCH * sizeof *r->pending))) {
        free(r);
        return dip_err_set(eb, DIP_ENOMEM, "out of memory");
    }
    r->node = n;
    dip_dynbuf_init(&r->scratch, DIP_NET_FRAME_MAX);
    const char *names[DIP_TANK_KEYS];
    for (int t = 0; t < DIP_TANK_KEYS; t++) {
        if (n->map->roots[t] < 0) continue;
        struct sender *s = &r->senders[r->nsenders];
        s->r = r;
        s->tank = t;
        s->reader = r->nsenders;
        s->member = n->map->roots[t];
        names[r->nsenders++] = dip_tank_key_name((enum dip_tank_key)t);
    }
    int rc = dip_spool_open(spool_dir, names, r->nsenders, max_spool_bytes, spool_warn, &r->spool, eb);
    if (rc) {
        dip_dynbuf_free(&r->scratch);
        free(r->pending);
        free(r);
        return rc;
    }
    if ((rc = writer_open(r))) {
        dip_spool_close(r->spool);
        dip_dynbuf_free(&r->scratch);
        free(r->pending);
        free(r);
        return dip_err_set(eb, rc, "cannot start the spool writer's thread");
    }
    uv_mutex_init(&r->lock);
    r->durable = dip_spool_last(r->spool);
    uv_timer_init(n->loop, &r->flush_timer);
    r->flush_timer.data = r;
    uv_timer_init(n->loop, &r->persist_timer);
    r->persist_timer.data = r;
    uv_timer_start(&r->persist_timer, persist, ACK_PERSIST_MS, ACK_PERSIST_MS);
    r->open_handles = 2;
    for (size_t i = 0; i < r->nsenders; i++) {
        struct sender *s = &r->senders[i];
        s->acked = s->persisted = dip_spool_acked(r->spool, s->reader);
        s->next = s->acked + 1;
        uv_timer_init(n->loop, &s->retry);
        s->retry.data = s;
        r->open_handles++;
        sender_connect(s);
    }
    *out = r;
    return DIP_OK;
}

void dip_replicator_stats(const struct dip_replicator *r, struct dip_replicator_stats *st)
{
    *st = r->st;
    uv_mutex_lock((uv_mutex_t *)&r->lock);
    st->spool_bytes = dip_spool_bytes(r->spool);
    st->last_batch = dip_spool_last(r->spool);
    uv_mutex_unlock((uv_mutex_t *)&r->lock);
    for (size_t i = 0; i < r->nsenders; i++) st->tank_acked[r->senders[i].tank] = r->senders[i].acked;
}

int dip_replicator_status_xml(const struct dip_replicator *r, struct dip_dynbuf *out)
{
    uv_mutex_lock((uv_mutex_t *)&r->lock);
    uint64_t last = dip_spool_last(r->spool), bytes = dip_spool_bytes(r->spool);
    uv_mutex_unlock((uv_mutex_t *)&r->lock);
    int rc = dip_dynbuf_printf(out,
                               "<replicator records=\"%llu\" refused=\"%llu\" batches=\"%llu\" spool-bytes=\"%llu\">",
                               (unsigned long long)r->st.records, (unsigned long long)r->st.refused,
                               (unsigned long long)last, (unsigned long long)bytes);
    for (size_t i = 0; i < r->nsenders && !rc; i++) {
        const struct sender *s = &r->senders[i];
        rc = dip_dynbuf_printf(out,
                               "<sender tank=\"%s\" acked=\"%llu\" behind=\"%llu\" up=\"%s\" errors=\"%llu\""
                               " refused-batches=\"%llu\"/>",
                               dip_tank_key_name((enum dip_tank_key)s->tank), (unsigned long long)s->acked,
                               (unsigned long long)(last - s->acked), s->up ? "true" : "false",
                               (unsigned long long)s->errors, (unsigned long long)s->refused);
    }
    if (!rc) rc = dip_dynbuf_addstr(out, "</replicator>");
    return rc;
}

static void replicator_handle_closed(struct dip_replicator *r)
{
    if (--r->open_handles) return;
    writer_close(&r->w);
    dip_spool_close(r->spool);
    uv_mutex_destroy(&r->lock);
    dip_dynbuf_free(&r->scratch);
    free(r->pending);
    free(r);
}

static void timer_closed(uv_handle_t *h) { replicator_handle_closed(h->data); }
static void handle_closed(uv_handle_t *h) { replicator_handle_closed(((struct sender *)h->data)->r); }

void dip_replicator_close(struct dip_replicator *r)
{
    struct dip_errbuf eb;
    if (dip_replicator_flush(r, &eb)) dip_node_log(r->node, 3, "replicator: records refused at exit: %s", eb.msg);
    persist(&r->persist_timer);
    r->closing = true;
    uv_close((uv_handle_t *)&r->flush_timer, timer_closed);
    uv_close((uv_handle_t *)&r->persist_timer, timer_closed);
    for (size_t i = 0; i < r->nsenders; i++) {
        struct sender *s = &r->senders[i];
        if (s->link) dip_net_link_close(s->link); /* on_close closes the retry timer */
        else uv_close((uv_handle_t *)&s->retry, handle_closed);
    }
}
