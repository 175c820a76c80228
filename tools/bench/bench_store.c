/* bench_store.c - query figures of one leaf store, measured in one process
 * (as a leaf node holds its store open): point queries on the tank key
 * (p50/p99 over many random keys taken from the store) and a scan query on a
 * non-key attribute (records per second). Point queries are timed twice:
 * keys drawn per record (so busy hosts come up as often as they occur, and
 * the slowest queries are those returning a large share of the store) and
 * keys drawn per distinct host (any host alike).
 *
 * With --per-host, only keys drawn per host are asked, within the store's
 * default result limits (a store's memory figure at any size: keys drawn
 * per record return millions of records at 50M, an answer that big is the
 * client's memory, not the store's).
 *
 * usage: bench_store DIR [POINT_QUERIES] [SCAN_BYTES_THRESHOLD] [--per-host] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store.h"

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

struct sample {
    struct dip_addr *keys;
    size_t n, cap, seen;
    uint32_t rng;
};

/* Reservoir sampling: offers key as the seen-th item. */
static void offer(struct sample *s, const struct dip_addr *key)
{
    s->seen++;
    if (s->n < s->cap) {
        s->keys[s->n++] = *key;
        return;
    }
    s->rng = s->rng * 1103515245u + 12345u;
    size_t j = (size_t)(s->rng >> 4) % s->seen;
    if (j < s->cap) s->keys[j] = *key;
}

struct samples {
    struct sample per_record, per_host;
    struct dip_addr last;
    bool any;
};

/* Samples source addresses from a full scan in key order (equal keys are
 * consecutive, so a new key is a new host). */
static int take(void *ctx, const struct dip_flow *f)
{
    struct samples *s = ctx;
    offer(&s->per_record, &f->src);
    if (!s->any || memcmp(&s->last, &f->src, sizeof f->src) != 0) offer(&s->per_host, &f->src);
    s->last = f->src;
    s->any = true;
    return 0;
}

struct timing {
    double ms;
    uint64_t found;
};

static int cmp_timing(const void *a, const void *b)
{
    double x = ((const struct timing *)a)->ms, y = ((const struct timing *)b)->ms;
    return x < y ? -1 : x > y;
}

/* Times a point query for each key and prints p50/p99 as NAME_p50_ms etc. */
static int point_queries(struct dip_store *s, const struct sample *smp, const char *name)
{
    struct timing *t = calloc(smp->n ? smp->n : 1, sizeof *t);
    uint64_t found = 0;
    double total_ms = 0;
    for (size_t i = 0; i < smp->n; i++) {
        char q[128], a[DIP_ADDR_TEXT_MAX];
        dip_addr_format(&smp->keys[i], a);
        snprintf(q, sizeof q, "//flow[@src='%s']", a);
        struct dip_store_answer ans;
        struct dip_errbuf eb;
        double t0 = now_ms();
        if (dip_store_query(s, q, strlen(q), &ans, NULL, &eb)) {
            fprintf(stderr, "bench_store: %s: %s\n", q, eb.msg);
            free(t);
            return -1;
        }
        t[i].ms = now_ms() - t0;
        t[i].found = ans.count;
        found += ans.count;
        total_ms += t[i].ms;
        dip_store_answer_free(&ans);
    }
    if (!smp->n) {
        free(t);
        return 0;
    }
    qsort(t, smp->n, sizeof *t, cmp_timing);
    size_t p99 = (smp->n * 99) / 100 < smp->n ? (smp->n * 99) / 100 : smp->n - 1;
    printf("%s_queries,%zu\n", name, smp->n);
    printf("%s_records_found,%llu\n", name, (unsigned long long)found);
    printf("%s_p50_ms,%.3f\n", name, t[smp->n / 2].ms);
    printf("%s_p99_ms,%.3f\n", name, t[p99].ms);
    printf("%s_p99_records,%llu\n", name, (unsigned long long)t[p99].found);
    printf("%s_max_records,%llu\n", name, (unsigned long long)t[smp->n - 1].found);
    printf("%s_us_per_record_found,%.3f\n", name, found ? total_ms * 1e3 / (double)found : 0.0);
    free(t);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || (argc > 4 && strcmp(argv[4], "--per-host") != 0)) {
        fprintf(stderr, "usage: bench_store DIR [POINT_QUERIES] [SCAN_BYTES_THRESHOLD] [--per-host]\n");
        return 2;
    }
    size_t nq = argc > 2 ? strtoul(argv[2], NULL, 10) : 200;
    unsigned long long threshold = argc > 3 ? strtoull(argv[3], NULL, 10) : 1000000;
    bool per_host_only = argc > 4;
    struct dip_store_options o;
    dip_store_options_default(&o);
    if (!per_host_only) {
        o.max_result_records = 50000000;
        o.max_result_bytes = (size_t)8 << 30;
    }
    o.max_query_seconds = 3600;
    struct dip_store *s;
    struct dip_errbuf eb;
    if (dip_store_open(argv[1], -1, &o, &s, NULL, &eb)) {
        fprintf(stderr, "bench_store: %s\n", eb.msg);
        return 1;
    }
    struct dip_store_stats st;
    dip_store_stats(s, &st);
    struct samples smp;
    memset(&smp, 0, sizeof smp);
    smp.per_record = (struct sample){ calloc(nq, sizeof(struct dip_addr)), 0, nq, 0, 7 };
    smp.per_host = (struct sample){ calloc(nq, sizeof(struct dip_addr)), 0, nq, 0, 11 };
    double t0 = now_ms();
    if (dip_store_scan(s, NULL, take, &smp, NULL, &eb)) {
        fprintf(stderr, "bench_store: %s\n", eb.msg);
        return 1;
    }
    double full = now_ms() - t0;
    printf("records,%llu\n", (unsigned long long)st.records);
    printf("hosts,%zu\n", smp.per_host.seen);
    printf("full_scan_export_rec_per_s,%.0f\n", (double)st.records / (full / 1e3));
    if ((!per_host_only && point_queries(s, &smp.per_record, "point")) || point_queries(s, &smp.per_host, "point_host"))
        return 1;

    char q[128];
    snprintf(q, sizeof q, "count(//flow[@bytes > %llu])", threshold);
    struct dip_store_answer ans;
    t0 = now_ms();
    if (dip_store_query(s, q, strlen(q), &ans, NULL, &eb)) {
        fprintf(stderr, "bench_store: %s\n", eb.msg);
        return 1;
    }
    double scan = now_ms() - t0;
    printf("scan_query,%s\n", q);
    printf("scan_result,%.0f\n", ans.number);
    printf("scan_ms,%.1f\n", scan);
    printf("scan_rec_per_s,%.0f\n", (double)st.records / (scan / 1e3));
    dip_store_answer_free(&ans);
    printf("disk_bytes_per_record,%.1f\n", (double)(st.segment_bytes + st.wal_bytes) / (double)st.records);
    dip_store_close(s);
    free(smp.per_record.keys);
    free(smp.per_host.keys);
    return 0;
}
