/* bench_store.c - query figures of one leaf store, measured in one process
 * (as a leaf node holds its store open): point queries on the tank key
 * (p50/p99 over many random keys taken from the store) and a scan query on a
 * non-key attribute (records per second).
 *
 * usage: bench_store DIR [POINT_QUERIES] [SCAN_BYTES_THRESHOLD] */
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

/* Reservoir sample of source addresses from a full scan. */
static int take(void *ctx, const struct dip_flow *f)
{
    struct sample *s = ctx;
    s->seen++;
    if (s->n < s->cap) {
        s->keys[s->n++] = f->src;
        return 0;
    }
    s->rng = s->rng * 1103515245u + 12345u;
    size_t j = (size_t)(s->rng >> 4) % s->seen;
    if (j < s->cap) s->keys[j] = f->src;
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_store DIR [POINT_QUERIES] [SCAN_BYTES_THRESHOLD]\n");
        return 2;
    }
    size_t nq = argc > 2 ? strtoul(argv[2], NULL, 10) : 200;
    unsigned long long threshold = argc > 3 ? strtoull(argv[3], NULL, 10) : 1000000;
    struct dip_store_options o;
    dip_store_options_default(&o);
    o.max_result_records = 50000000;
    o.max_result_bytes = (size_t)8 << 30;
    o.max_query_seconds = 3600;
    struct dip_store *s;
    struct dip_errbuf eb;
    if (dip_store_open(argv[1], -1, &o, &s, NULL, &eb)) {
        fprintf(stderr, "bench_store: %s\n", eb.msg);
        return 1;
    }
    struct dip_store_stats st;
    dip_store_stats(s, &st);
    struct sample smp = { calloc(nq, sizeof(struct dip_addr)), 0, nq, 0, 7 };
    double t0 = now_ms();
    if (dip_store_scan(s, NULL, take, &smp, NULL, &eb)) {
        fprintf(stderr, "bench_store: %s\n", eb.msg);
        return 1;
    }
    double full = now_ms() - t0;
    printf("records,%llu\n", (unsigned long long)st.records);
    printf("full_scan_export_rec_per_s,%.0f\n", (double)st.records / (full / 1e3));

    double *lat = calloc(nq, sizeof *lat);
    uint64_t found = 0;
    for (size_t i = 0; i < smp.n; i++) {
        char q[128], a[DIP_ADDR_TEXT_MAX];
        dip_addr_format(&smp.keys[i], a);
        snprintf(q, sizeof q, "//flow[@src='%s']", a);
        struct dip_store_answer ans;
        double t = now_ms();
        if (dip_store_query(s, q, strlen(q), &ans, NULL, &eb)) {
            fprintf(stderr, "bench_store: %s: %s\n", q, eb.msg);
            return 1;
        }
        lat[i] = now_ms() - t;
        found += ans.count;
        dip_store_answer_free(&ans);
    }
    qsort(lat, smp.n, sizeof *lat, cmp_double);
    printf("point_queries,%zu\n", smp.n);
    printf("point_records_found,%llu\n", (unsigned long long)found);
    printf("point_p50_ms,%.3f\n", lat[smp.n / 2]);
    printf("point_p99_ms,%.3f\n", lat[(smp.n * 99) / 100 < smp.n ? (smp.n * 99) / 100 : smp.n - 1]);

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
    free(lat);
    free(smp.keys);
    return 0;
}
