/* watch.c - stops libxml2 XPath evaluations at their query's deadline
 * (ARCHITECTURE 6, "Deadlines"). Layer: storage.
 *
 * libxml2 cannot be told to stop an evaluation, and cannot resume one cut
 * into slices. But it counts operations against xmlXPathContext.opLimit
 * whenever the limit is not 0 (2.9.14: the steps of the compiled
 * expression and the nodes an axis visits) and unwinds with XPATH_OP_LIMIT_EXCEEDED, returning NULL, once the count
 * passes it. So one watchdog thread per process keeps the evaluations that
 * run with a deadline in a list and sleeps until the earliest; when it
 * passes, it sets that context's opLimit to 1 and the evaluating thread
 * stops at its next counted operation (count(//flow[count(//flow) > 0])
 * over 20,000 records: stopped 0-16 ms after the deadline).
 *
 * This is a benign race, on purpose: the watchdog writes one aligned
 * unsigned long that the evaluating thread reads without a lock, inside
 * libxml2. The write is a single store (atomic on every platform we build
 * for), so the reader sees the old limit (0: none, and goes on to its next
 * check) or the new one, never a torn value; the watchdog writes only under
 * the list's mutex, and a context leaves the list before it is freed, so it
 * never writes freed memory.
 *
 * Not stopped: one merge of two large node-sets in a union. libxml2 2.9
 * removes duplicates by comparing every node of one set with every node of
 * the other, without counting (count(A | B) with 33,000 nodes each: ~6 s).
 * Only the whole-document path meets sets that large, and evaluates in a
 * child process killed at the deadline instead (query.c). */
#include "watch.h"

#include <pthread.h>
#include <time.h>

#include "store.h"

static pthread_mutex_t watch_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t watch_cv;
static pthread_once_t watch_once = PTHREAD_ONCE_INIT;
static bool watch_running;                    /* the watchdog thread exists */
static struct dip_watch *watch_list;          /* evaluations with a deadline, under watch_mu */
static uint64_t watch_sleep_until = UINT64_MAX; /* when the watchdog wakes next (UINT64_MAX: when told) */

uint64_t dip_store_clock_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

static void fire(struct dip_watch *w)
{
    w->fired = true;
    __atomic_store_n(&w->ctx->opLimit, 1ul, __ATOMIC_RELAXED);
}

static void *watchdog(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&watch_mu);
    for (;;) {
        uint64_t now = dip_store_clock_ms(), next = UINT64_MAX;
        for (struct dip_watch *w = watch_list; w; w = w->next) {
            if (w->fired) continue;
            if (w->deadline_ms <= now) fire(w);
            else if (w->deadline_ms < next) next = w->deadline_ms;
        }
        watch_sleep_until = next;
        if (next == UINT64_MAX) {
            pthread_cond_wait(&watch_cv, &watch_mu);
        } else {
            struct timespec ts = { (time_t)(next / 1000u), (long)(next % 1000u) * 1000000L };
            pthread_cond_timedwait(&watch_cv, &watch_mu, &ts);
        }
    }
    return NULL;
}

static void watch_init(void)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&watch_cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_attr_t a;
    pthread_t t;
    pthread_attr_init(&a);
    /* the default stack: a small one (64 KiB) failed with EINVAL, the
     * static TLS of the libraries we link taking more than that */
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    /* without the thread (no resources), evaluations run unwatched: the
     * store's own loops still stop at the deadline between chunks */
    watch_running = pthread_create(&t, &a, watchdog, NULL) == 0;
    pthread_attr_destroy(&a);
}

static void silent_error(void *ctx, xmlErrorPtr e) { (void)ctx; (void)e; }

void dip_watch_begin(struct dip_watch *w, xmlXPathContextPtr ctx, uint64_t deadline_ms)
{
    *w = (struct dip_watch){ .deadline_ms = deadline_ms };
    ctx->error = silent_error; /* a stopped evaluation is an answer (ETIMEOUT), not a message on stderr */
    if (!deadline_ms) return;
    w->ctx = ctx;
    if (dip_store_clock_ms() >= deadline_ms) {
        fire(w); /* already late: stop at once, no thread needed */
        return;
    }
    pthread_once(&watch_once, watch_init);
    pthread_mutex_lock(&watch_mu);
    w->listed = true;
    w->next = watch_list;
    if (watch_list) watch_list->prev = w;
    watch_list = w;
    if (watch_running && deadline_ms < watch_sleep_until) {
        watch_sleep_until = deadline_ms; /* one wake-up, not one per evaluation */
        pthread_cond_signal(&watch_cv);
    }
    pthread_mutex_unlock(&watch_mu);
}

bool dip_watch_end(struct dip_watch *w)
{
    if (!w->ctx) return false;
    bool fired = w->fired;
    if (w->listed) {
        pthread_mutex_lock(&watch_mu);
        if (w->prev) w->prev->next = w->next;
        else watch_list = w->next;
        if (w->next) w->next->prev = w->prev;
        fired = w->fired;
        pthread_mutex_unlock(&watch_mu);
    }
    w->ctx = NULL;
    return fired || dip_store_clock_ms() >= w->deadline_ms;
}
