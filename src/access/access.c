/* access.c - the access point (access.h): one XPath line in, one XML
 * document out. Each query goes to the best tank with a deadline: to its
 * root, or straight to the one member below it whose range holds every key
 * the query can select (a point query goes to its leaf). A tank that is
 * down, silent or answers only in part makes the access point try the next
 * tank (the paper's redundancy) while time is left; a query that does not
 * decompose is evaluated here over the records gathered from one tank, in a
 * temporary store, on the thread pool.
 *
 * Going straight to the member is the descent the root would make, done
 * here with the same map: the root's hop relayed the whole answer through
 * one more TLS link and one more loop, which also forwards ingest (a
 * 16,000-record answer: ~2 ms more, and a small one waited behind ingest
 * batches). The member's link is made on first use; until it is up, or
 * when it is silent, the query goes to the root as before. A member that
 * fails or misses the deadline is a missing range, as the root reports it. */
#include "access/access.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>
#include <libxml/xpath.h>

#include "common/paths.h"
#include "route/node.h"
#include "route/proto.h"
#include "store/store.h"
#include "xpath/xpath.h"

#define ROOT_RECONNECT_MS 500u
#define CONNECT_TIMEOUT_MS 3000u

struct dip_access;

struct root_link {
    struct dip_access *a;
    int tank;
    int member;            /* the tree member it reaches (a tank root or, direct, one below) */
    bool direct;           /* a link straight to a member below the root (made on first use) */
    uint64_t retry_after_ms; /* direct: no new connection before then */
    struct dip_net_link *link;
    bool up;
    bool suspect;          /* up, but silent for DIP_SUSPECT_MS: skipped */
    uint64_t last_pong_ms;
    uv_timer_t retry;
};

struct client {
    struct dip_access *a;
    struct dip_net_link *link;  /* NULL once closed */
    struct dip_dynbuf line;
    bool busy;                  /* a query is running */
    /* the query */
    char *text;
    size_t text_len;
    struct dip_xpath *q;
    enum dip_xpath_shape shape;
    int order[DIP_TANK_KEYS];
    int norder, attempt;
    bool only_first;
    uint64_t request;           /* id of the message in flight to a root */
    int tank;                   /* the tank it went to */
    struct root_link *via;      /* the link it went by */
    struct timespec t0;
    uv_timer_t timer;
    bool timer_open;
    struct dip_dynbuf partial;  /* best partial result document so far */
    /* gather work */
    uv_work_t work;
    uint8_t *gathered;
    size_t gathered_len;
    struct dip_dynbuf out;
    int refs;
    char address[64];           /* the peer's address without its port (gather_admit) */
    bool gathering;             /* holds one of the access point's gather places */
    struct client *prev, *next;
};

struct dip_access {
    struct dip_node *node;
    struct dip_access_options opt;
    struct dip_net_listener *listener;
    struct root_link roots[DIP_TANK_KEYS];
    struct root_link *direct;   /* one per map member (direct links), NULL without memory */
    size_t ndirect;
    uint64_t direct_epoch;      /* of the map they were made for (another map: not used) */
    struct client *clients;
    uv_timer_t ping;
    uint64_t next_id;
    uint64_t queries, errors, partial, fallbacks;
    uint64_t direct_sent;       /* queries sent straight to a member below a root */
    size_t gathers;              /* gathers running (each holds a thread of libuv's pool while it evaluates) */
    struct dip_flow *flows;      /* a large answer's records, decoded (stream_result) */
    size_t nflows, flows_cap;
    struct dip_dynbuf slice;     /* the slice of a large answer being formatted */
    bool closing;
    int open_handles;
    void (*on_closed)(void *ctx);
    void *closed_ctx;
};

void dip_access_options_default(struct dip_access_options *o)
{
    o->query_timeout_ms = 10000;
    o->client_idle_ms = 30000;
    o->gather_max_records = 2000000;
    o->max_result_records = 1000000;
    o->max_clients = 1024;
    o->max_clients_per_address = 256;
    o->max_gathers = 3;
    o->max_gathers_per_address = 2;
}

static double elapsed_ms(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* ---- documents ---- */

static int put_escaped(struct dip_dynbuf *b, const char *s, size_t n)
{
    int rc = DIP_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        switch (s[i]) {
        case '<': rc = dip_dynbuf_addstr(b, "&lt;"); break;
        case '>': rc = dip_dynbuf_addstr(b, "&gt;"); break;
        case '&': rc = dip_dynbuf_addstr(b, "&amp;"); break;
        case '"': rc = dip_dynbuf_addstr(b, "&quot;"); break;
        default:
            if ((unsigned char)s[i] < 0x20 && s[i] != '\t') rc = dip_dynbuf_addstr(b, " ");
            else rc = dip_dynbuf_add(b, &s[i], 1);
        }
    }
    return rc;
}

static void error_doc(struct dip_dynbuf *b, int code, size_t column, const char *msg)
{
    dip_dynbuf_reset(b);
    dip_dynbuf_printf(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<error code=\"%s\"", dip_err_name(code));
    if (column) dip_dynbuf_printf(b, " column=\"%zu\"", column);
    dip_dynbuf_addstr(b, ">");
    put_escaped(b, msg, strlen(msg));
    dip_dynbuf_addstr(b, "</error>\n");
}

static const char *shape_name(enum dip_xpath_shape s)
{
    switch (s) {
    case DIP_XPATH_FLOWS: return "flows";
    case DIP_XPATH_COUNT: return "count";
    case DIP_XPATH_SUM: return "sum";
    case DIP_XPATH_BOOLEAN: return "boolean";
    default: return "gather";
    }
}

static int put_flow(void *ctx, const struct dip_flow *f)
{
    struct dip_dynbuf *b = ctx;
    int rc = dip_flow_xml_append(f, b);
    if (!rc) rc = dip_dynbuf_add(b, "\n", 1);
    return rc;
}

/* Starts the result document of a merged answer in b: the declaration, the
 * result element's start tag and the missing ranges. */
static int result_head(struct client *c, const struct dip_answer_merge *m, uint64_t count, struct dip_dynbuf *b)
{
    dip_dynbuf_reset(b);
    int rc = dip_dynbuf_printf(b,
                               "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<result complete=\"%s\" tank=\"%s\""
                               " count=\"%llu\" shape=\"%s\" elapsed-ms=\"%.3f\">\n",
                               m->complete ? "true" : "false", dip_tank_key_name((enum dip_tank_key)c->tank),
                               (unsigned long long)count, shape_name(c->shape), elapsed_ms(&c->t0));
    if (!rc && m->missing.len) rc = dip_dynbuf_add(b, m->missing.data, m->missing.len);
    return rc;
}

/* Writes the result document of a merged answer. */
static int result_doc(struct client *c, const struct dip_answer_merge *m, const char *body, size_t body_len,
                      uint64_t count, struct dip_dynbuf *b, struct dip_errbuf *eb)
{
    int rc = result_head(c, m, count, b);
    if (!rc && body) rc = dip_dynbuf_add(b, body, body_len);
    else if (!rc && m->kind == DIP_RESULT_NUMBER) {
        xmlChar *s = xmlXPathCastNumberToString(m->number);
        rc = dip_dynbuf_printf(b, "<number>%s</number>\n", s ? (const char *)s : "NaN");
        xmlFree(s);
    } else if (!rc && m->kind == DIP_RESULT_BOOLEAN) {
        rc = dip_dynbuf_printf(b, "<boolean>%s</boolean>\n", m->boolean ? "true" : "false");
    } else if (!rc) {
        /* records take ~180 bytes as XML: one allocation rather than ~20
         * doublings and their copies (a hint: the document may stay smaller) */
        if (m->records) (void)dip_dynbuf_reserve(b, (size_t)m->records * 200);
        rc = dip_answer_merge_each(m, put_flow, b, eb);
    }
    if (!rc) rc = dip_dynbuf_addstr(b, "</result>\n");
    return rc;
}

/* ---- clients ---- */

static void client_unref(struct client *c)
{
    if (--c->refs) return;
    if (c->gathering) c->a->gathers--;
    dip_dynbuf_free(&c->line);
    dip_dynbuf_free(&c->partial);
    dip_dynbuf_free(&c->out);
    dip_xpath_free(c->q);
    free(c->text);
    free(c->gathered);
    free(c);
}

static void timer_closed(uv_handle_t *h) { client_unref(h->data); }

/* Sends the document in b and closes the connection; the query is over. */
static void client_finish(struct client *c, struct dip_dynbuf *b)
{
    if (c->link) {
        dip_net_link_write(c->link, b->data, b->len);
        dip_net_link_close(c->link);
    }
    c->request = 0;
    if (c->timer_open) {
        c->timer_open = false;
        uv_timer_stop(&c->timer);
        uv_close((uv_handle_t *)&c->timer, timer_closed);
    }
}

static void client_fail(struct client *c, int code, size_t column, const char *msg)
{
    c->a->errors++;
    error_doc(&c->out, code, column, msg);
    client_finish(c, &c->out);
}

static void try_next_tank(struct client *c, const char *why);
static void direct_failed(struct client *c, const char *why);

static void query_timeout(uv_timer_t *t)
{
    struct client *c = t->data;
    if (!c->request) return;
    if (c->via->direct) {
        c->request = 0;
        direct_failed(c, "timeout");
        return;
    }
    char why[200];
    snprintf(why, sizeof why, "tank %s did not answer within %u ms", dip_tank_key_name((enum dip_tank_key)c->tank),
             c->a->opt.query_timeout_ms);
    c->request = 0;
    try_next_tank(c, why);
}

static uint32_t time_left(const struct client *c)
{
    double left = (double)c->a->opt.query_timeout_ms - elapsed_ms(&c->t0);
    return left < 1 ? 0 : (uint32_t)left;
}

static void direct_connect(struct root_link *rl);

/* The direct link for c's query: to the deepest member of the tank below
 * its root whose subtree holds every record the query can select, when
 * that link is up and answering. NULL: ask the root. Only node-sets under
 * the structured strategy (counts and sums stay with the root, which adds
 * them up; under the random strategy every member may hold a match). */
static struct root_link *direct_target(struct client *c)
{
    struct dip_access *a = c->a;
    const struct dip_map *map = dip_node_map(a->node);
    int root = map->roots[c->tank];
    if (!a->direct || map->epoch != a->direct_epoch || map->nmembers != a->ndirect || root < 0 ||
        map->strategy != DIP_MAP_STRUCTURED || c->shape != DIP_XPATH_FLOWS)
        return NULL;
    int mi = root;
    while (!map->members[mi].leaf) {
        int only = -1;
        for (size_t k = 0; k < map->members[mi].nchildren; k++) {
            int ch = map->members[mi].children[k];
            if (!dip_map_may_match(map, ch, c->q)) continue;
            if (only >= 0) {
                only = -1;
                break;
            }
            only = ch;
        }
        if (only < 0) break; /* several children (or none): mi merges them */
        mi = only;
    }
    if (mi == root || (size_t)mi >= a->ndirect) return NULL;
    struct root_link *rl = &a->direct[mi];
    if (!rl->link && dip_node_now_ms() >= rl->retry_after_ms) direct_connect(rl);
    return rl->up && !rl->suspect ? rl : NULL;
}

static void send_to_tank(struct client *c)
{
    struct dip_access *a = c->a;
    struct root_link *rl = direct_target(c);
    if (!rl) rl = &a->roots[c->tank];
    else a->direct_sent++;
    c->via = rl;
    struct dip_dynbuf b;
    dip_dynbuf_init(&b, DIP_XPATH_MAX_LEN + 64);
    uint32_t left = time_left(c);
    int rc = dip_msg_query_encode(&b, left, c->shape == DIP_XPATH_GATHER ? DIP_QUERY_GATHER : DIP_QUERY_ANSWER,
                                  c->text, c->text_len);
    c->request = ++a->next_id;
    if (!rc) rc = dip_net_link_send(rl->link, DIP_MSG_QUERY, c->request, b.data, b.len, NULL, 0);
    dip_dynbuf_free(&b);
    if (rc) {
        c->request = 0;
        try_next_tank(c, "cannot send to the tank root");
        return;
    }
    /* the root answers within `left`; allow the network a little more */
    uv_timer_start(&c->timer, query_timeout, left + 500, 0);
}

/* Tries the next tank of the client's order, or ends with the best partial
 * result (or an error) when none is left. */
static void try_next_tank(struct client *c, const char *why)
{
    struct dip_access *a = c->a;
    while (c->attempt < (c->only_first ? 1 : c->norder)) {
        int t = c->order[c->attempt++];
        if (dip_node_map(a->node)->roots[t] < 0) continue;
        if (!a->roots[t].up || a->roots[t].suspect) {
            dip_node_log(a->node, 1, "query: tank %s is unreachable, trying another", dip_tank_key_name((enum dip_tank_key)t));
            continue;
        }
        if (c->attempt > 1) a->fallbacks++;
        c->tank = t;
        if (time_left(c) == 0) break;
        send_to_tank(c);
        return;
    }
    if (c->partial.len) {
        a->partial++;
        client_finish(c, &c->partial);
        return;
    }
    char msg[400];
    snprintf(msg, sizeof msg, "no tank could answer: %s", why ? why : "every tank is unreachable");
    client_fail(c, DIP_EIO, 0, msg);
}

/* A direct member did not answer (why): its range is missing from the
 * result, as a root would report it, and the next tank is tried. */
static void direct_failed(struct client *c, const char *why)
{
    const struct dip_map *map = dip_node_map(c->a->node);
    if (!c->partial.len) {
        struct dip_answer_merge m;
        struct dip_errbuf eb;
        dip_answer_merge_init(&m, c->tank, map->strategy, 0, 0);
        m.kind = DIP_RESULT_NODES;
        if (dip_answer_merge_missing(&m, map, c->via->member, why) ||
            result_doc(c, &m, NULL, 0, 0, &c->partial, &eb))
            dip_dynbuf_reset(&c->partial);
        dip_answer_merge_free(&m);
    }
    char msg[400];
    snprintf(msg, sizeof msg, "%s did not answer: %s", map->nodes[map->members[c->via->member].node].name, why);
    try_next_tank(c, msg);
}

/* ---- gathering: evaluate at the access point ----
 * The records go into a temporary store, DIR/gather-PID-N-XXXXXX (unique
 * per process and query), evaluated there within the client's deadline
 * (dip_store_query_until stops libxml2 too) and removed after the query
 * whatever happened; those a crash left are removed when the access point
 * starts (remove_stale_gathers). */

struct gather_ctx {
    struct dip_store *s;
    uint64_t deadline_ms; /* dip_store_clock_ms() time */
    struct dip_errbuf *eb;
};

static int gather_batch(void *ctx, const struct dip_flow *flows, size_t n)
{
    struct gather_ctx *g = ctx;
    int rc = DIP_OK;
    for (size_t i = 0; !rc && i < n; i += 65536) {
        if (dip_store_clock_ms() >= g->deadline_ms) return dip_err_set(g->eb, DIP_ETIMEOUT, "deadline passed");
        rc = dip_store_insert(g->s, flows + i, n - i < 65536 ? n - i : 65536, g->eb);
    }
    return rc;
}

/* Stores the answer's records (a stream of batches, in document order). */
static int gather_insert(struct dip_store *s, const uint8_t *batch, size_t len, uint64_t deadline_ms,
                         struct dip_errbuf *eb)
{
    struct gather_ctx g = { s, deadline_ms, eb };
    return dip_batch_decode_stream(batch, len, 1u << 26, gather_batch, &g, eb);
}

/* The client's deadline in dip_store_clock_ms() time (c->t0 is CLOCK_MONOTONIC too). */
static uint64_t client_deadline_ms(const struct client *c)
{
    return (uint64_t)c->t0.tv_sec * 1000u + (uint64_t)c->t0.tv_nsec / 1000000u + c->a->opt.query_timeout_ms;
}

static void remove_tree(const char *dir)
{
    char cmd[1200];
    /* the folder is ours (mkdtemp); remove its files and itself */
    snprintf(cmd, sizeof cmd, "%s", dir);
    uv_fs_t req;
    uv_dirent_t ent;
    if (uv_fs_scandir(NULL, &req, dir, 0, NULL) >= 0) {
        while (uv_fs_scandir_next(&req, &ent) != UV_EOF) {
            char p[1400];
            snprintf(p, sizeof p, "%s/%s", dir, ent.name);
            if (ent.type == UV_DIRENT_DIR) remove_tree(p);
            else unlink(p);
        }
    }
    uv_fs_req_cleanup(&req);
    rmdir(cmd);
}

static void gather_work(uv_work_t *w)
{
    struct client *c = w->data;
    struct dip_access *a = c->a;
    struct dip_errbuf eb = { { 0 } };
    struct dip_msg_answer ans;
    static atomic_uint_fast64_t gathers;
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/gather-%ld-%llu-XXXXXX", dip_node_dir(a->node), (long)getpid(),
             (unsigned long long)atomic_fetch_add(&gathers, 1));
    uint64_t deadline = client_deadline_ms(c);
    struct dip_store *s = NULL;
    struct dip_store_options o;
    dip_store_options_default(&o);
    o.sync = false;
    o.seal_records = (size_t)1 << 40;
    o.max_result_records = a->opt.max_result_records;
    int rc = dip_msg_answer_decode(c->gathered, c->gathered_len, &ans, &eb);
    if (!rc && ans.count > a->opt.gather_max_records)
        rc = dip_err_set(&eb, DIP_ERANGE,
                         "this expression is evaluated over the whole tank, which holds %llu records; the access "
                         "point gathers at most %zu",
                         (unsigned long long)ans.count, a->opt.gather_max_records);
    if (!rc && !mkdtemp(dir)) rc = dip_err_sys(&eb, errno, "cannot create %s", dir);
    bool made = !rc;
    if (!rc) rc = dip_store_open(dir, c->tank, &o, &s, NULL, &eb);
    if (!rc) rc = gather_insert(s, ans.batch, ans.batch_len, deadline, &eb);
    struct dip_store_answer sa;
    size_t col = 0;
    if (!rc) rc = dip_store_query_until(s, c->text, c->text_len, deadline, &sa, &col, &eb);
    if (!rc) {
        struct dip_answer_merge m;
        dip_answer_merge_init(&m, c->tank, DIP_MAP_STRUCTURED, 0, 0);
        m.complete = ans.complete;
        dip_dynbuf_add(&m.missing, ans.missing, ans.missing_len);
        c->shape = DIP_XPATH_GATHER;
        rc = result_doc(c, &m, (const char *)sa.body.data, sa.body.len, sa.count, &c->out, &eb);
        dip_answer_merge_free(&m);
        dip_store_answer_free(&sa);
        if (rc) dip_err_set(&eb, rc, "result too large");
    }
    if (!rc && dip_store_clock_ms() >= deadline) rc = DIP_ETIMEOUT; /* late is never complete */
    if (rc == DIP_ETIMEOUT)
        snprintf(eb.msg, sizeof eb.msg, "the expression was not evaluated over the gathered records within the "
                                        "query's deadline of %u ms", a->opt.query_timeout_ms);
    if (s) dip_store_close(s);
    if (made) remove_tree(dir);
    if (rc) error_doc(&c->out, rc, col, eb.msg);
}

/* Removes the temporary stores a crash or a kill left in dir (a node's
 * folder: no other process uses it). */
/* A gather holds a thread of libuv's pool (4 by default) until its deadline:
 * at most max_gathers run, max_gathers_per_address from one address, so
 * that one client cannot take every thread. Returns: true when c may
 * gather; else c has been answered EAGAIN. */
static bool gather_admit(struct client *c)
{
    struct dip_access *a = c->a;
    size_t same = 0;
    for (struct client *o = a->clients; o; o = o->next) same += o->gathering && strcmp(o->address, c->address) == 0;
    if (a->gathers >= a->opt.max_gathers || same >= a->opt.max_gathers_per_address) {
        char msg[300];
        snprintf(msg, sizeof msg,
                 "busy: %zu queries that gather every record are running (at most %zu, %zu from one address); "
                 "try again later",
                 a->gathers, a->opt.max_gathers, a->opt.max_gathers_per_address);
        client_fail(c, DIP_EAGAIN, 0, msg);
        return false;
    }
    a->gathers++;
    c->gathering = true;
    return true;
}

static void remove_stale_gathers(const char *dir)
{
    uv_fs_t req;
    uv_dirent_t ent;
    if (uv_fs_scandir(NULL, &req, dir, 0, NULL) >= 0) {
        while (uv_fs_scandir_next(&req, &ent) != UV_EOF) {
            if (strncmp(ent.name, "gather-", 7) != 0 || ent.type != UV_DIRENT_DIR) continue;
            char p[1400];
            snprintf(p, sizeof p, "%s/%s", dir, ent.name);
            remove_tree(p);
        }
    }
    uv_fs_req_cleanup(&req);
}

static void gather_done(uv_work_t *w, int status)
{
    struct client *c = w->data;
    (void)status;
    free(c->gathered);
    c->gathered = NULL;
    client_finish(c, &c->out);
    client_unref(c);
}

/* ---- large answers, written as they are formatted ----
 * Formatting a 24,000-record answer as XML took the access point ~4 ms and
 * the client ~5 ms more to receive it, one after the other. The records
 * are decoded first (a corrupt batch is still an error document, not a
 * truncated result), then the document goes out in slices: the client
 * decrypts one while the next is formatted. The buffers are the access
 * point's and stay warm between queries (fresh memory is a page fault per
 * 4 KiB, ~10 us each on these machines). */

#define STREAM_MIN_RECORDS 2048  /* smaller answers go out in one write */
#define STREAM_SLICE (256u << 10) /* bytes formatted per write */
#define STREAM_KEEP_RECORDS 65536 /* decoded records kept allocated between queries */

/* Sends the complete node-set answer m to c as a document written in
 * slices, then closes the connection. Returns DIP_OK, or an error before
 * anything was written (eb says why when it can). */
static int stream_result(struct client *c, const struct dip_answer_merge *m, struct dip_errbuf *eb)
{
    struct dip_access *a = c->a;
    int rc = dip_answer_merge_records(m, &a->flows, &a->nflows, &a->flows_cap, eb);
    struct dip_dynbuf *b = &a->slice;
    if (!rc) rc = result_head(c, m, m->count, b);
    for (size_t i = 0; !rc && i < a->nflows; i++) {
        rc = put_flow(b, &a->flows[i]);
        if (!rc && b->len >= STREAM_SLICE) {
            if (c->link) dip_net_link_write(c->link, b->data, b->len);
            dip_dynbuf_reset(b);
        }
    }
    if (!rc) rc = dip_dynbuf_addstr(b, "</result>\n");
    if (!rc) client_finish(c, b);
    dip_dynbuf_reset(b);
    if (a->flows_cap > STREAM_KEEP_RECORDS) { /* a rare huge answer does not stay in memory */
        free(a->flows);
        a->flows = NULL;
        a->flows_cap = 0;
    }
    a->nflows = 0;
    return rc;
}

/* ---- answers from tank roots ---- */

static struct client *client_by_request(struct dip_access *a, uint64_t id)
{
    for (struct client *c = a->clients; c; c = c->next)
        if (c->request == id) return c;
    return NULL;
}

static void root_frame(struct dip_net_link *l, const struct dip_net_frame *f, void *ctx)
{
    struct root_link *rl = ctx;
    (void)l;
    rl->last_pong_ms = dip_node_now_ms();
    rl->suspect = false;
    if (f->type == DIP_MSG_PONG) return;
    struct client *c = client_by_request(rl->a, f->id);
    if (!c) return; /* late: the client gave up or went to another tank */
    c->request = 0;
    uv_timer_stop(&c->timer);
    if (f->type == DIP_MSG_ERROR) {
        int code;
        uint32_t column;
        char msg[600];
        if (dip_msg_status_decode(f->payload, f->len, &code, &column, msg, sizeof msg)) {
            client_fail(c, DIP_EPROTO, 0, "malformed error from the tank root");
            return;
        }
        if (rl->direct && (code == DIP_ETIMEOUT || code == DIP_EIO || code == DIP_EAGAIN)) direct_failed(c, msg);
        else if (code == DIP_ETIMEOUT || code == DIP_EIO) try_next_tank(c, msg);
        else client_fail(c, code, column, msg);
        return;
    }
    if (f->type != DIP_MSG_ANSWER) {
        client_fail(c, DIP_EPROTO, 0, "unexpected message from the tank root");
        return;
    }
    if (c->shape == DIP_XPATH_GATHER) {
        struct dip_msg_answer probe;
        struct dip_errbuf eb;
        if (dip_msg_answer_decode(f->payload, f->len, &probe, &eb)) {
            client_fail(c, DIP_EPROTO, 0, eb.msg);
            return;
        }
        c->gathered = malloc(f->len ? f->len : 1);
        if (!c->gathered) {
            client_fail(c, DIP_ENOMEM, 0, "out of memory");
            return;
        }
        memcpy(c->gathered, f->payload, f->len);
        c->gathered_len = f->len;
        c->work.data = c;
        c->refs++;
        if (uv_queue_work(dip_node_loop(c->a->node), &c->work, gather_work, gather_done)) {
            c->refs--;
            client_fail(c, DIP_EIO, 0, "cannot queue work");
        }
        return;
    }
    struct dip_answer_merge m;
    struct dip_errbuf eb = { { 0 } };
    dip_answer_merge_init(&m, c->tank, dip_node_map(rl->a->node)->strategy, 1, rl->a->opt.max_result_records);
    m.borrow = true; /* the document is written before this function returns: no copy of the records */
    int rc = dip_answer_merge_add(&m, 0, f->payload, f->len, &eb);
    if (rc) {
        dip_answer_merge_free(&m);
        client_fail(c, rc, 0, eb.msg);
        return;
    }
    eb.msg[0] = 0;
    if (m.complete && m.kind == DIP_RESULT_NODES && m.records >= STREAM_MIN_RECORDS) {
        rc = stream_result(c, &m, &eb);
        dip_answer_merge_free(&m);
        if (rc) client_fail(c, rc, 0, rc == DIP_ECORRUPT && eb.msg[0] ? eb.msg : "result too large");
        else rl->a->queries++;
        return;
    }
    struct dip_dynbuf *target = m.complete ? &c->out : &c->partial;
    if (m.complete || !c->partial.len) rc = result_doc(c, &m, NULL, 0, m.count, target, &eb);
    dip_answer_merge_free(&m);
    if (rc) {
        client_fail(c, rc, 0, rc == DIP_ECORRUPT && eb.msg[0] ? eb.msg : "result too large");
        return;
    }
    if (target == &c->out) {
        rl->a->queries++;
        client_finish(c, &c->out);
    } else {
        try_next_tank(c, "partial answer");
    }
}

static void root_open(struct dip_net_link *l, void *ctx)
{
    struct root_link *rl = ctx;
    (void)l;
    rl->up = true;
    rl->suspect = false;
    rl->last_pong_ms = dip_node_now_ms();
    if (!rl->direct)
        dip_node_log(rl->a->node, 1, "access: link to tank %s is up", dip_tank_key_name((enum dip_tank_key)rl->tank));
}

static void root_connect(struct root_link *rl);
static void access_release(struct dip_access *a);
static void root_retry(uv_timer_t *t) { root_connect(t->data); }
static void access_handle_closed(uv_handle_t *h);

static void root_close(struct dip_net_link *l, int code, const char *msg, void *ctx)
{
    struct root_link *rl = ctx;
    (void)l;
    (void)code;
    (void)msg;
    bool was_up = rl->up;
    rl->up = false;
    rl->link = NULL;
    struct dip_access *a = rl->a;
    if (rl->direct) { /* made again by the next query that wants it */
        rl->retry_after_ms = dip_node_now_ms() + ROOT_RECONNECT_MS;
        for (struct client *c = a->closing ? NULL : a->clients; c; c = c->next)
            if (c->request && c->via == rl) {
                c->request = 0;
                uv_timer_stop(&c->timer);
                direct_failed(c, "link lost");
            }
        access_release(a);
        return;
    }
    if (a->closing) {
        uv_close((uv_handle_t *)&rl->retry, access_handle_closed);
        return;
    }
    if (was_up) dip_node_log(a->node, 2, "access: link to tank %s lost", dip_tank_key_name((enum dip_tank_key)rl->tank));
    for (struct client *c = a->clients; c; c = c->next)
        if (c->request && c->via == rl) {
            c->request = 0;
            uv_timer_stop(&c->timer);
            try_next_tank(c, "link to the tank root lost");
        }
    uv_timer_start(&rl->retry, root_retry, ROOT_RECONNECT_MS, 0);
}

static const struct dip_net_link_callbacks root_callbacks = {
    .on_frame = root_frame,
    .on_open = root_open,
    .on_close = root_close,
};

static void root_connect(struct root_link *rl)
{
    struct dip_access *a = rl->a;
    if (a->closing) return;
    const struct dip_map *m = dip_node_map(a->node);
    const struct dip_map_node *nd = &m->nodes[m->members[m->roots[rl->tank]].node];
    struct dip_errbuf eb;
    if (dip_net_link_connect(dip_node_loop(a->node), dip_node_tls(a->node), nd->host, nd->port, CONNECT_TIMEOUT_MS, &root_callbacks, rl,
                             &rl->link, &eb)) {
        rl->link = NULL;
        uv_timer_start(&rl->retry, root_retry, ROOT_RECONNECT_MS * 4, 0);
    }
}

static void direct_connect(struct root_link *rl)
{
    struct dip_access *a = rl->a;
    if (a->closing) return;
    const struct dip_map *m = dip_node_map(a->node);
    const struct dip_map_node *nd = &m->nodes[m->members[rl->member].node];
    struct dip_errbuf eb;
    rl->retry_after_ms = dip_node_now_ms() + ROOT_RECONNECT_MS;
    if (dip_net_link_connect(dip_node_loop(a->node), dip_node_tls(a->node), nd->host, nd->port, CONNECT_TIMEOUT_MS,
                             &root_callbacks, rl, &rl->link, &eb)) {
        rl->link = NULL;
        return;
    }
    a->open_handles++; /* released by its close */
}

/* Pings every tank root; a root silent for DIP_SUSPECT_MS is skipped by
 * new queries (another tank answers) until it responds again. Direct links
 * are pinged too: a silent one is not used (the root is asked instead). */
static void ping_roots(uv_timer_t *t)
{
    struct dip_access *a = t->data;
    uint64_t now = dip_node_now_ms();
    for (int i = 0; i < DIP_TANK_KEYS; i++) {
        struct root_link *rl = &a->roots[i];
        if (!rl->up) continue;
        if (!rl->suspect && now - rl->last_pong_ms > DIP_SUSPECT_MS) {
            rl->suspect = true;
            dip_node_log(a->node, 2, "access: tank %s root does not respond: queries go to other tanks",
                         dip_tank_key_name((enum dip_tank_key)i));
        }
        dip_net_link_send(rl->link, DIP_MSG_PING, 0, NULL, 0, NULL, 0);
    }
    for (size_t i = 0; i < a->ndirect; i++) {
        struct root_link *rl = &a->direct[i];
        if (!rl->up) continue;
        rl->suspect = now - rl->last_pong_ms > DIP_SUSPECT_MS;
        dip_net_link_send(rl->link, DIP_MSG_PING, 0, NULL, 0, NULL, 0);
    }
}

/* ---- client connections ---- */

static void start_query(struct client *c)
{
    struct dip_access *a = c->a;
    size_t n = c->line.len;
    while (n && (c->line.data[n - 1] == '\n' || c->line.data[n - 1] == '\r')) n--;
    c->text = malloc(n + 1);
    if (!c->text) {
        client_fail(c, DIP_ENOMEM, 0, "out of memory");
        return;
    }
    memcpy(c->text, c->line.data, n);
    c->text[n] = 0;
    c->text_len = n;
    clock_gettime(CLOCK_MONOTONIC, &c->t0);
    struct dip_xpath_error xe = { 0 };
    int rc = dip_xpath_compile(c->text, n, &c->q, &xe);
    if (rc) {
        char msg[400];
        snprintf(msg, sizeof msg, "XPath error at %s", xe.message);
        client_fail(c, rc, xe.column, msg);
        return;
    }
    c->shape = dip_xpath_shape(c->q);
    if (c->shape == DIP_XPATH_GATHER && !gather_admit(c)) return;
    double share = 1;
    bool tie = false;
    int named = dip_xpath_named_tank(c->q);
    int best = named >= 0 ? named : dip_xpath_best_tank(c->q, &share, &tie);
    c->only_first = named >= 0; /* another tank would not hold the named tree */
    c->norder = 0;
    c->order[c->norder++] = best;
    for (int t = 0; t < DIP_TANK_KEYS; t++)
        if (t != best) c->order[c->norder++] = t;
    c->attempt = 0;
    uv_timer_init(dip_node_loop(a->node), &c->timer);
    c->timer.data = c;
    c->timer_open = true;
    c->refs++;
    try_next_tank(c, NULL);
}

static void client_data(struct dip_net_link *l, const uint8_t *data, size_t len, void *ctx)
{
    struct client *c = ctx;
    if (c->busy) return; /* one query per connection: bytes after the line are ignored */
    const uint8_t *nl = memchr(data, '\n', len);
    size_t take = nl ? (size_t)(nl - data) + 1 : len;
    if (dip_dynbuf_add(&c->line, data, take)) {
        c->busy = true;
        char msg[200];
        snprintf(msg, sizeof msg, "the expression is longer than %u bytes", (unsigned)DIP_XPATH_MAX_LEN);
        client_fail(c, DIP_ERANGE, 0, msg);
        return;
    }
    if (!nl) return;
    c->busy = true;
    dip_net_link_pause(l, true);
    dip_net_link_set_idle_timeout(l, 0);
    start_query(c);
}

static void client_close(struct dip_net_link *l, int code, const char *msg, void *ctx)
{
    struct client *c = ctx;
    (void)l;
    if (code == DIP_ETIMEOUT) dip_node_log(c->a->node, 1, "client dropped: %s", msg ? msg : "idle");
    c->link = NULL;
    c->request = 0;
    if (c->prev) c->prev->next = c->next;
    else c->a->clients = c->next;
    if (c->next) c->next->prev = c->prev;
    if (c->timer_open) {
        c->timer_open = false;
        uv_timer_stop(&c->timer);
        uv_close((uv_handle_t *)&c->timer, timer_closed);
    }
    client_unref(c);
}

static const struct dip_net_link_callbacks client_callbacks = {
    .on_data = client_data,
    .on_close = client_close,
};

/* Connections that close before they are accepted carry the listener's context. */
static void preaccept_close(struct dip_net_link *l, int code, const char *msg, void *ctx)
{
    (void)l;
    (void)code;
    (void)msg;
    (void)ctx;
}

static const struct dip_net_link_callbacks preaccept_callbacks = {
    .on_close = preaccept_close,
};

static void client_accept(struct dip_net_link *l, void *ctx)
{
    struct dip_access *a = ctx;
    if (!dip_net_link_is_tls(l) && !dip_net_link_peer_is_loopback(l)) {
        static const char refuse[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<error code=\"EPROTO\">plain TCP "
                                     "is accepted from loopback only; connect with TLS</error>\n";
        dip_net_link_set_raw(l, true);
        dip_net_link_write(l, refuse, sizeof refuse - 1);
        dip_net_link_close(l);
        return;
    }
    struct client *c = calloc(1, sizeof *c);
    if (!c) {
        dip_net_link_close(l);
        return;
    }
    c->a = a;
    c->link = l;
    c->refs = 1;
    snprintf(c->address, sizeof c->address, "%s", dip_net_link_peer(l));
    char *port = strrchr(c->address, ':');
    if (port) *port = 0;
    dip_dynbuf_init(&c->line, DIP_XPATH_MAX_LEN + 2);
    dip_dynbuf_init(&c->partial, DIP_NET_FRAME_MAX);
    dip_dynbuf_init(&c->out, DIP_NET_FRAME_MAX);
    c->next = a->clients;
    if (a->clients) a->clients->prev = c;
    a->clients = c;
    dip_net_link_set_raw(l, true);
    dip_net_link_set_callbacks(l, &client_callbacks, c);
    dip_net_link_set_idle_timeout(l, a->opt.client_idle_ms);
}

/* ---- life cycle ---- */

static int split_host_port(const char *hp, char *host, size_t cap, int *port)
{
    const char *colon = strrchr(hp, ':');
    if (!colon || colon == hp) return DIP_EINVAL;
    size_t n = (size_t)(colon - hp);
    if (hp[0] == '[' && n >= 2 && hp[n - 1] == ']') {
        hp++;
        n -= 2;
    }
    if (n >= cap) return DIP_EINVAL;
    memcpy(host, hp, n);
    host[n] = 0;
    *port = atoi(colon + 1);
    return *port > 0 && *port < 65536 ? DIP_OK : DIP_EINVAL;
}

int dip_access_open(struct dip_node *n, const struct dip_access_options *o, struct dip_access **out,
                    struct dip_errbuf *eb)
{
    struct dip_access *a = calloc(1, sizeof *a);
    if (!a) return DIP_ENOMEM;
    a->node = n;
    dip_dynbuf_init(&a->slice, DIP_NET_FRAME_MAX);
    if (o) a->opt = *o;
    else dip_access_options_default(&a->opt);
    remove_stale_gathers(dip_node_dir(n));
    if (dip_node_map(n)->front.query_timeout_ms) a->opt.query_timeout_ms = dip_node_map(n)->front.query_timeout_ms;
    char host[DIP_MAP_HOST_MAX];
    int port;
    if (split_host_port(dip_node_map(n)->front.client, host, sizeof host, &port)) {
        free(a);
        return dip_err_set(eb, DIP_EINVAL, "bad client address \"%s\" in the map", dip_node_map(n)->front.client);
    }
    int rc = dip_net_listen(dip_node_loop(n), dip_node_tls(n), DIP_NET_LISTEN_SNIFF, host, port, 10000, client_accept, &preaccept_callbacks,
                            a, &a->listener, eb);
    if (rc) {
        free(a);
        return rc;
    }
    static const char busy[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<error code=\"EAGAIN\">too many "
                               "client connections are open (from this address or in all); try again</error>\n";
    dip_net_listener_set_limits(a->listener, a->opt.max_clients, a->opt.max_clients_per_address, busy);
    uv_timer_init(dip_node_loop(n), &a->ping);
    a->ping.data = a;
    uv_timer_start(&a->ping, ping_roots, DIP_PING_MS, DIP_PING_MS);
    a->open_handles++;
    const struct dip_map *map = dip_node_map(n);
    if ((a->direct = calloc(map->nmembers ? map->nmembers : 1, sizeof *a->direct))) { /* else: every query via roots */
        a->ndirect = map->nmembers;
        a->direct_epoch = map->epoch;
        for (size_t i = 0; i < map->nmembers; i++)
            a->direct[i] = (struct root_link){ .a = a, .tank = map->members[i].tank, .member = (int)i, .direct = true };
    }
    for (int t = 0; t < DIP_TANK_KEYS; t++) {
        struct root_link *rl = &a->roots[t];
        rl->a = a;
        rl->tank = t;
        if (dip_node_map(n)->roots[t] < 0) continue;
        uv_timer_init(dip_node_loop(n), &rl->retry);
        rl->retry.data = rl;
        a->open_handles++;
        root_connect(rl);
    }
    *out = a;
    return DIP_OK;
}

int dip_access_status_xml(const struct dip_access *a, struct dip_dynbuf *out)
{
    int up = 0;
    for (int t = 0; t < DIP_TANK_KEYS; t++) up += a->roots[t].up;
    return dip_dynbuf_printf(out,
                             "<access client=\"%s\" queries=\"%llu\" errors=\"%llu\" partial=\"%llu\""
                             " fallbacks=\"%llu\" direct=\"%llu\" tanks-up=\"%d\" clients=\"%zu\""
                             " refused-clients=\"%llu\" gathers=\"%zu\"/>",
                             dip_node_map(a->node)->front.client, (unsigned long long)a->queries,
                             (unsigned long long)a->errors, (unsigned long long)a->partial,
                             (unsigned long long)a->fallbacks, (unsigned long long)a->direct_sent, up,
                             a->listener ? dip_net_listener_links(a->listener) : 0,
                             (unsigned long long)(a->listener ? dip_net_listener_refused(a->listener) : 0),
                             a->gathers);
}

static void access_release(struct dip_access *a)
{
    if (--a->open_handles) return;
    free(a->direct);
    free(a->flows);
    dip_dynbuf_free(&a->slice);
    free(a);
}
static void access_handle_closed(uv_handle_t *h) { access_release(((struct root_link *)h->data)->a); }
static void ping_closed(uv_handle_t *h) { access_release(h->data); }

void dip_access_close(struct dip_access *a)
{
    a->closing = true;
    dip_net_listener_close(a->listener);
    a->listener = NULL;
    for (struct client *c = a->clients; c; c = c->next)
        if (c->link) dip_net_link_close(c->link);
    uv_close((uv_handle_t *)&a->ping, ping_closed);
    for (int t = 0; t < DIP_TANK_KEYS; t++) {
        struct root_link *rl = &a->roots[t];
        if (dip_node_map(a->node)->roots[t] < 0) continue;
        if (rl->link) dip_net_link_close(rl->link);
        else uv_close((uv_handle_t *)&rl->retry, access_handle_closed);
    }
    for (size_t i = 0; i < a->ndirect; i++)
        if (a->direct[i].link) dip_net_link_close(a->direct[i].link);
}
