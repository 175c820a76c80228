/* bench_xpath.c - how fast the XPath analyser compiles a typical query and
 * answers dip_xpath_may_match (targets: <= 20 us and <= 100 ns).
 *
 *   bench_xpath [iterations]     prints one line per measurement */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "xpath/xpath.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A typical query of about 200 characters: a subnet, a port set, a time
 * window and a protocol. */
static const char *const typical =
    "/tank[@key='src']//flow[starts-with(@src, '10.1.') and (@dport = 22 or @dport = 443 or "
    "(@dport >= 8000 and @dport < 8100)) and @first >= 1700000000000 and @first < 1700003600000 "
    "and @proto = 6 and not(@dst = '10.1.2.3')]";

int main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 20000;
    struct dip_xpath *q;
    struct dip_xpath_error err;
    if (dip_xpath_compile(typical, strlen(typical), &q, &err) != DIP_OK) {
        fprintf(stderr, "bench_xpath: %s\n", err.message);
        return 1;
    }
    dip_xpath_free(q);
    double t0 = now();
    for (long i = 0; i < iters; i++) {
        dip_xpath_compile(typical, strlen(typical), &q, &err);
        dip_xpath_free(q);
    }
    double per = (now() - t0) / (double)iters;
    printf("compile (parse + analyse) of a %zu-char query: %.2f us\n", strlen(typical), per * 1e6);

    const char *many = "//flow[@dport = 1 or @dport = 3 or @dport = 5 or @dport = 7 or @dport = 9 or @dport = 11 "
                       "or @dport = 13 or @dport = 15 or @dport = 17 or @dport = 19 or @dport = 21 or @dport = 23 "
                       "or @dport = 25 or @dport = 27 or @dport = 29 or @dport = 31]";
    dip_xpath_compile(typical, strlen(typical), &q, &err);
    struct dip_xpath *q2;
    dip_xpath_compile(many, strlen(many), &q2, &err);
    long probes = iters * 500;
    unsigned hits = 0;
    uint64_t x = 88172645463325252ull;
    struct dip_u128 *lo = malloc(1024 * sizeof *lo);
    for (int i = 0; i < 1024; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        lo[i].hi = 0;
        lo[i].lo = 0x0000ffff0a000000ull | (x & 0x3ffff);
    }
    t0 = now();
    for (long i = 0; i < probes; i++) {
        struct dip_u128 l = lo[i & 1023], h = l;
        h.lo += 255;
        hits += dip_xpath_may_match(q, 0, DIP_XK_SRC, l, h);
    }
    per = (now() - t0) / (double)probes;
    printf("may_match (1 range, src): %.1f ns (%u hits)\n", per * 1e9, hits);
    t0 = now();
    for (long i = 0; i < probes; i++) {
        struct dip_u128 l = { 0, (uint64_t)(i & 63) }, h = l;
        hits += dip_xpath_may_match(q2, 3, DIP_XK_DPORT, l, h);
    }
    per = (now() - t0) / (double)probes;
    printf("may_match (16 ranges, dport): %.1f ns (%u hits)\n", per * 1e9, hits);
    free(lo);
    dip_xpath_free(q);
    dip_xpath_free(q2);
    return 0;
}
