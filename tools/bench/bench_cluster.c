/* bench_cluster.c - the query load generator of `make bench-cluster`: N client
 * threads ask a storage network's access point the XPath queries of a file
 * (one per line, taken in turn), each query one end-to-end exchange of the
 * client protocol (connect, TLS handshake, one line in, one document out)
 * through dip_net_exchange; prints latency percentiles and queries/s.
 *
 *   bench_cluster -c HOST:PORT -q FILE [--tls DIR] [-t THREADS] [-n QUERIES]
 *                 [-s SECONDS] [-w WARMUP] [--timeout MS]
 *
 * Output: one line of key=value pairs (queries, ok, errors, partial, failed,
 * seconds, qps, p50_ms, p90_ms, p99_ms, mean_ms, min_ms, max_ms,
 * mean_count); exit 0 when every query was answered completely, 1 when some
 * were not, 2 on bad usage. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/dynbuf.h"
#include "common/err.h"
#include "net/net.h"

#define MAX_QUERIES 1000000   /* lines read from the query file */
#define MAX_LINE 65536        /* longest query accepted */
#define MAX_THREADS 256
#define REPLY_MAX (1024u << 20) /* a reply larger than this is counted as failed */

struct query {
    char *line; /* with its '\n' */
    size_t len;
};

struct sample {
    long query;  /* which line of the query file */
    double ms;
    long count;  /* the result's count attribute, -1 when absent */
    double server_ms; /* the result's elapsed-ms (the access point's time), -1 when absent */
    int outcome; /* 0 complete, 1 partial, 2 error document, 3 exchange failed */
};

struct bench {
    const char *host;
    int port;
    const char *tls_dir;
    uint32_t timeout_ms;
    struct query *queries;
    size_t nqueries;
    long total;      /* queries to ask (all threads together); <= 0: until the time is up */
    double deadline; /* monotonic seconds; 0: none */
    atomic_long next;
    /* results: one slot per query asked, filled by whichever thread asked it */
    struct sample *samples;
    long cap;
    atomic_long used;
    char first_error[640];
    pthread_mutex_t lock;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void note_error(struct bench *b, const char *msg)
{
    pthread_mutex_lock(&b->lock);
    if (!b->first_error[0]) snprintf(b->first_error, sizeof b->first_error, "%s", msg);
    pthread_mutex_unlock(&b->lock);
}

/* Classifies a reply document: complete result, partial result or error. */
static int classify(const char *doc, long *count, double *server_ms)
{
    *count = -1;
    *server_ms = -1;
    const char *r = strstr(doc, "<result");
    if (!r) return 2;
    const char *gt = strchr(r, '>');
    if (!gt) return 2;
    size_t head = (size_t)(gt - r); /* the start tag only: the records after it can be megabytes */
    const char *c = memmem(r, head, " count=\"", 8);
    if (c) *count = strtol(c + 8, NULL, 10);
    const char *e = memmem(r, head, " elapsed-ms=\"", 13);
    if (e) *server_ms = strtod(e + 13, NULL);
    return memmem(r, head, "complete=\"false\"", 16) ? 1 : 0;
}

/* Asks one query; returns its sample. */
static struct sample ask(struct bench *b, struct dip_net_tls *tls, const struct query *q, struct dip_dynbuf *reply)
{
    struct sample s = { 0, 0, -1, -1, 3 };
    struct dip_errbuf eb = { "" };
    dip_dynbuf_reset(reply);
    double t0 = now();
    int rc = dip_net_exchange(tls, b->host, b->port, q->line, q->len, b->timeout_ms, reply, &eb);
    s.ms = (now() - t0) * 1000.0;
    if (rc != DIP_OK) {
        char m[600];
        snprintf(m, sizeof m, "exchange failed (%d): %s", rc, eb.msg);
        note_error(b, m);
        return s;
    }
    s.outcome = classify(reply->data ? (const char *)reply->data : "", &s.count, &s.server_ms);
    if (s.outcome == 2) {
        char m[600];
        snprintf(m, sizeof m, "error reply to %.*s: %.300s", (int)(q->len - 1), q->line,
                 reply->data ? (const char *)reply->data : "(empty)");
        note_error(b, m);
    }
    return s;
}

static void *client(void *arg)
{
    struct bench *b = arg;
    struct dip_net_tls *tls = NULL;
    struct dip_errbuf eb = { "" };
    if (b->tls_dir) {
        char ca[4200], cert[4200], key[4200];
        snprintf(ca, sizeof ca, "%s/ca.pem", b->tls_dir);
        snprintf(cert, sizeof cert, "%s/client.pem", b->tls_dir);
        snprintf(key, sizeof key, "%s/client.key", b->tls_dir);
        if (dip_net_tls_new(ca, cert, key, true, &tls, &eb) != DIP_OK) {
            note_error(b, eb.msg);
            return NULL;
        }
    }
    struct dip_dynbuf reply;
    dip_dynbuf_init(&reply, REPLY_MAX);
    for (;;) {
        if (b->deadline > 0 && now() >= b->deadline) break;
        long k = atomic_fetch_add(&b->next, 1);
        if (b->total > 0 && k >= b->total) break;
        struct sample s = ask(b, tls, &b->queries[(size_t)k % b->nqueries], &reply);
        s.query = (long)((size_t)k % b->nqueries);
        long slot = atomic_fetch_add(&b->used, 1);
        if (slot < b->cap) b->samples[slot] = s;
    }
    dip_dynbuf_free(&reply);
    if (tls) dip_net_tls_free(tls);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The p-th percentile (0..100) of sorted v[0..n), nearest rank. */
static double percentile(const double *v, long n, double p)
{
    if (n <= 0) return 0;
    long rank = (long)(p / 100.0 * (double)n + 0.999999);
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    return v[rank - 1];
}

static int read_queries(const char *path, struct bench *b)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        return -1;
    }
    size_t cap = 0;
    char *line = malloc(MAX_LINE + 2);
    if (!line) {
        fclose(f);
        return -1;
    }
    while (b->nqueries < MAX_QUERIES && fgets(line, MAX_LINE + 2, f)) {
        size_t n = strcspn(line, "\r\n");
        if (n == 0) continue;
        if (n > MAX_LINE) {
            fprintf(stderr, "%s: a query longer than %d bytes\n", path, MAX_LINE);
            break;
        }
        if (b->nqueries == cap) {
            cap = cap ? cap * 2 : 256;
            struct query *q = realloc(b->queries, cap * sizeof *q);
            if (!q) break;
            b->queries = q;
        }
        struct query *q = &b->queries[b->nqueries];
        q->line = malloc(n + 1);
        if (!q->line) break;
        memcpy(q->line, line, n);
        q->line[n] = '\n';
        q->len = n + 1;
        b->nqueries++;
    }
    free(line);
    fclose(f);
    return b->nqueries ? 0 : -1;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_cluster -c HOST:PORT -q FILE [--tls DIR] [-t THREADS] [-n QUERIES]\n"
            "                     [-s SECONDS] [-w WARMUP] [--timeout MS]\n"
            "  -c HOST:PORT   the access point (IPv4 or a name)\n"
            "  -q FILE        XPath queries, one per line, asked in turn (cycling)\n"
            "      --tls DIR  TLS with DIR/ca.pem, DIR/client.pem, DIR/client.key (else plain TCP)\n"
            "  -t THREADS     parallel clients (default 1)\n"
            "  -n QUERIES     queries to ask in all (default: the file's line count)\n"
            "  -s SECONDS     stop after this long even if -n is not reached (0: no limit)\n"
            "  -w WARMUP      queries asked first and not counted (default 0)\n"
            "      --timeout MS  per-query deadline (default 30000)\n"
            "      --samples FILE  write each query's line number, time (ms), count, outcome\n"
            "                 (0 complete, 1 partial, 2 error, 3 failed) and the result's\n"
            "                 elapsed-ms (the access point's own time; -1: none) as CSV\n");
}

int main(int argc, char **argv)
{
    struct bench b;
    memset(&b, 0, sizeof b);
    pthread_mutex_init(&b.lock, NULL);
    const char *connect = NULL, *qfile = NULL, *samples_path = NULL;
    int threads = 1;
    long warmup = 0;
    double seconds = 0;
    b.timeout_ms = 30000;
    static const struct option opts[] = { { "connect", required_argument, NULL, 'c' },
                                          { "queries", required_argument, NULL, 'q' },
                                          { "tls", required_argument, NULL, 'T' },
                                          { "threads", required_argument, NULL, 't' },
                                          { "count", required_argument, NULL, 'n' },
                                          { "seconds", required_argument, NULL, 's' },
                                          { "warmup", required_argument, NULL, 'w' },
                                          { "timeout", required_argument, NULL, 'O' },
                                          { "samples", required_argument, NULL, 'S' },
                                          { "help", no_argument, NULL, 'h' },
                                          { NULL, 0, NULL, 0 } };
    int o;
    while ((o = getopt_long(argc, argv, "c:q:t:n:s:w:h", opts, NULL)) != -1) {
        switch (o) {
        case 'c': connect = optarg; break;
        case 'q': qfile = optarg; break;
        case 'T': b.tls_dir = optarg; break;
        case 't': threads = atoi(optarg); break;
        case 'n': b.total = atol(optarg); break;
        case 's': seconds = atof(optarg); break;
        case 'w': warmup = atol(optarg); break;
        case 'O': b.timeout_ms = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'S': samples_path = optarg; break;
        case 'h': usage(); return 0;
        default: usage(); return 2;
        }
    }
    if (!connect || !qfile || threads < 1 || threads > MAX_THREADS || b.total < 0 || seconds < 0 || warmup < 0) {
        usage();
        return 2;
    }
    static char host[256];
    const char *colon = strrchr(connect, ':');
    if (!colon || colon == connect || (size_t)(colon - connect) >= sizeof host || !(b.port = atoi(colon + 1))) {
        fprintf(stderr, "bench_cluster: -c wants HOST:PORT, not %s\n", connect);
        return 2;
    }
    memcpy(host, connect, (size_t)(colon - connect));
    b.host = host;
    if (read_queries(qfile, &b)) {
        fprintf(stderr, "bench_cluster: no queries in %s\n", qfile);
        return 2;
    }
    if (b.total == 0 && seconds == 0) b.total = (long)b.nqueries;

    /* warm-up: one thread, not counted (first connections, cold caches) */
    if (warmup > 0) {
        long total = b.total;
        b.total = warmup;
        atomic_init(&b.next, 0);
        atomic_init(&b.used, 0);
        client(&b); /* cap 0: samples are not kept */
        b.total = total;
    }

    b.cap = b.total > 0 ? b.total : 4000000;
    b.samples = calloc((size_t)b.cap, sizeof *b.samples);
    if (!b.samples) {
        fprintf(stderr, "bench_cluster: out of memory\n");
        return 2;
    }
    atomic_init(&b.next, 0);
    atomic_init(&b.used, 0);
    pthread_t tid[MAX_THREADS];
    double t0 = now();
    if (seconds > 0) b.deadline = t0 + seconds;
    int started = 0;
    for (int i = 0; i < threads; i++) {
        if (pthread_create(&tid[i], NULL, client, &b) != 0) break;
        started++;
    }
    for (int i = 0; i < started; i++) pthread_join(tid[i], NULL);
    double elapsed = now() - t0;

    long n = atomic_load(&b.used);
    if (n > b.cap) n = b.cap;
    double *ms = malloc((size_t)(n ? n : 1) * sizeof *ms);
    if (!ms) return 2;
    long ok = 0, partial = 0, errors = 0, failed = 0, counted = 0;
    double sum = 0, count_sum = 0;
    for (long i = 0; i < n; i++) {
        ms[i] = b.samples[i].ms;
        sum += ms[i];
        switch (b.samples[i].outcome) {
        case 0: ok++; break;
        case 1: partial++; break;
        case 2: errors++; break;
        default: failed++; break;
        }
        if (b.samples[i].count >= 0) {
            count_sum += (double)b.samples[i].count;
            counted++;
        }
    }
    if (samples_path) {
        FILE *f = fopen(samples_path, "w");
        if (!f) {
            fprintf(stderr, "bench_cluster: cannot write %s: %s\n", samples_path, strerror(errno));
            return 2;
        }
        fprintf(f, "line,ms,count,outcome,server_ms\n");
        for (long i = 0; i < n; i++)
            fprintf(f, "%ld,%.3f,%ld,%d,%.3f\n", b.samples[i].query + 1, b.samples[i].ms, b.samples[i].count,
                    b.samples[i].outcome, b.samples[i].server_ms);
        if (fclose(f)) {
            fprintf(stderr, "bench_cluster: cannot write %s: %s\n", samples_path, strerror(errno));
            return 2;
        }
    }
    qsort(ms, (size_t)n, sizeof *ms, cmp_double);
    printf("queries=%ld ok=%ld errors=%ld partial=%ld failed=%ld threads=%d seconds=%.3f qps=%.1f "
           "p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f mean_ms=%.3f min_ms=%.3f max_ms=%.3f mean_count=%.1f\n",
           n, ok, errors, partial, failed, started, elapsed, elapsed > 0 ? (double)n / elapsed : 0,
           percentile(ms, n, 50), percentile(ms, n, 90), percentile(ms, n, 99), n ? sum / (double)n : 0,
           n ? ms[0] : 0, n ? ms[n - 1] : 0, counted ? count_sum / (double)counted : 0);
    if (b.first_error[0]) fprintf(stderr, "bench_cluster: first problem: %s\n", b.first_error);
    free(ms);
    free(b.samples);
    for (size_t i = 0; i < b.nqueries; i++) free(b.queries[i].line);
    free(b.queries);
    return (ok == n && n > 0) ? 0 : 1;
}
