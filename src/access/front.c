/* front.c - the front node's collector and replicator (access.h): listeners
 * for NetFlow v5/v9 and IPFIX at the map's collector URLs, every decoded
 * record handed to the replicator, which spools it and sends it to every
 * tank; plus the access point, and their counters in STATUS replies. */
#include "access/access.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "collect/collect.h"
#include "route/node.h"
#include "route/replicator.h"

#define EXPIRE_MS 10000u

struct dip_front {
    struct dip_node *node;
    struct dip_collect *collect;
    struct dip_collect_listener *listeners[4];
    size_t nlisteners;
    struct dip_replicator *replicator;
    struct dip_access *access;
    struct dip_collect_sink sink;
    uv_timer_t expire;
    uv_timer_t resume;  /* while TCP exporters are paused: checks whether the spool caught up */
    bool paused;
    uint64_t hold_until; /* TCP exporters wait until the replicator has settled this many records */
    bool hold_flush;     /* the records held for are not yet cut into a batch */
    struct dip_collect_sink stream_sink; /* the sink of IPFIX over TCP (emit_stream) */
    int open_timers;    /* f is freed when both timers are closed */
    uint64_t refused_logged;
};

#define RESUME_CHECK_MS 2

static void pause_tcp(struct dip_front *f, bool pause)
{
    f->paused = pause;
    for (size_t i = 0; i < f->nlisteners; i++) dip_collect_listener_pause(f->listeners[i], pause);
}

/* Runs at the next turn of the loop after a pause, then every
 * RESUME_CHECK_MS: spools what TCP exporters sent (one batch for all that
 * the turn read) and resumes them once it is durable. */
static void resume_check(uv_timer_t *t)
{
    struct dip_front *f = t->data;
    struct dip_errbuf eb;
    if (f->hold_flush && dip_replicator_flush(f->replicator, &eb))
        dip_node_log(f->node, 3, "collector: records refused: %s", eb.msg);
    f->hold_flush = false;
    if (dip_replicator_busy(f->replicator) || dip_replicator_settled(f->replicator) < f->hold_until) return;
    uv_timer_stop(&f->resume);
    pause_tcp(f, false);
}

static void hold_tcp(struct dip_front *f)
{
    if (f->paused) return;
    pause_tcp(f, true);
    uv_timer_start(&f->resume, resume_check, 0, RESUME_CHECK_MS);
}

static int emit(void *ctx, const struct dip_flow *flows, size_t n)
{
    struct dip_front *f = ctx;
    struct dip_errbuf eb;
    int rc = dip_replicator_add(f->replicator, flows, n, &eb);
    if (rc && f->refused_logged++ % 1000 == 0)
        dip_node_log(f->node, 3, "collector: records refused (%llu times so far): %s",
                     (unsigned long long)f->refused_logged, eb.msg);
    /* The spool is behind: exporters over TCP wait (their windows fill)
     * until it catches up; UDP cannot wait and is refused only when the
     * spool's queue is full. */
    if (dip_replicator_busy(f->replicator)) hold_tcp(f);
    return DIP_OK; /* refusal is counted by the replicator; keep decoding other exporters */
}

/* Records from an IPFIX/TCP exporter: its session reads no more until they
 * are in the spool, so a kill -9 of the front loses at most what the
 * kernel's socket buffers hold (IPFIX has no acknowledgement to resend by). */
static int emit_stream(void *ctx, const struct dip_flow *flows, size_t n)
{
    struct dip_front *f = ctx;
    int rc = emit(f, flows, n);
    f->hold_until = dip_replicator_taken(f->replicator);
    f->hold_flush = true;
    hold_tcp(f);
    return rc;
}

static void listener_log(void *ctx, int level, const char *msg)
{
    struct dip_front *f = ctx;
    dip_node_log(f->node, level, "collector: %s", msg);
}

static void expire(uv_timer_t *t)
{
    struct dip_front *f = t->data;
    dip_collect_expire(f->collect, dip_node_now_ms());
}

static int status(void *ctx, struct dip_dynbuf *out)
{
    struct dip_front *f = ctx;
    int rc = dip_replicator_status_xml(f->replicator, out);
    if (!rc) rc = dip_access_status_xml(f->access, out);
    if (!rc) rc = dip_collect_stats_xml(f->collect, out);
    return rc;
}

int dip_front_open(struct dip_node *n, struct dip_front **out, struct dip_errbuf *eb)
{
    struct dip_front *f = calloc(1, sizeof *f);
    if (!f) return DIP_ENOMEM;
    f->node = n;
    char spool[1200];
    snprintf(spool, sizeof spool, "%s/spool", dip_node_dir(n));
    int rc = dip_replicator_open(n, spool, 0, &f->replicator, eb);
    if (rc) goto err;
    rc = dip_access_open(n, NULL, &f->access, eb);
    if (rc) goto err;
    struct dip_collect_limits lim;
    dip_collect_limits_default(&lim);
    rc = dip_collect_new(&lim, &f->collect);
    if (rc) goto err;
    f->sink.emit = emit;
    f->sink.ctx = f;
    f->stream_sink.emit = emit_stream;
    f->stream_sink.ctx = f;
    struct dip_collect_listen_options lo;
    dip_collect_listen_options_default(&lo);
    lo.log = listener_log;
    lo.log_ctx = f;
    for (size_t i = 0; i < dip_node_map(n)->front.nlisten; i++) {
        const char *url = dip_node_map(n)->front.listen[i];
        bool stream = strncmp(url, "tcp://", 6) == 0;
        rc = dip_collect_listen(dip_node_loop(n), f->collect, url, &lo, stream ? &f->stream_sink : &f->sink,
                                &f->listeners[f->nlisteners], eb);
        if (rc) goto err;
        f->nlisteners++;
    }
    uv_timer_init(dip_node_loop(n), &f->expire);
    uv_timer_init(dip_node_loop(n), &f->resume);
    f->expire.data = f->resume.data = f;
    f->open_timers = 2;
    uv_timer_start(&f->expire, expire, EXPIRE_MS, EXPIRE_MS);
    dip_node_set_status_hook(n, status, f);
    *out = f;
    return DIP_OK;
err:
    for (size_t i = 0; i < f->nlisteners; i++) dip_collect_listener_close(f->listeners[i]);
    if (f->collect) dip_collect_free(f->collect);
    if (f->access) dip_access_close(f->access);
    if (f->replicator) dip_replicator_close(f->replicator);
    free(f);
    return rc;
}

static void timer_closed(uv_handle_t *h)
{
    struct dip_front *f = h->data;
    if (--f->open_timers) return;
    dip_collect_free(f->collect);
    free(f);
}

void dip_front_close(struct dip_front *f)
{
    dip_node_set_status_hook(f->node, NULL, NULL);
    for (size_t i = 0; i < f->nlisteners; i++) dip_collect_listener_close(f->listeners[i]);
    dip_access_close(f->access);
    dip_replicator_close(f->replicator);
    uv_close((uv_handle_t *)&f->expire, timer_closed);
    uv_close((uv_handle_t *)&f->resume, timer_closed);
}
