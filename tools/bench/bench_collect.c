/* bench_collect.c - decoder throughput: CPU time per record for NetFlow v5
 * (30 records a packet) and IPFIX with a 20-field template (30 records a
 * message), both including flow IDs, exporter and domain on every record.
 * Each figure is the best of 5 runs (the machine may be shared).
 * Usage: bench_collect [packets]   (default 200000 of each per run) */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "collect/collect.h"
#include "tests/unit/collect_build.h"

static int count_sink(void *ctx, const struct dip_flow *f, size_t n)
{
    uint64_t *sum = ctx;
    for (size_t i = 0; i < n; i++) *sum += f[i].bytes;
    return 0;
}

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const uint16_t t20[] = { 8, 4, 12, 4, 7, 2, 11, 2, 4, 1, 5, 1, 6, 1, 10, 4, 14, 4, 2, 8,
                                1, 8, 152, 8, 153, 8, 16, 4, 17, 4, 9, 1, 13, 1, 15, 4, 61, 1, 136, 1 };

static void rec20(struct pkt *p, uint32_t i)
{
    pk_u32(p, 0x0a000000 + i); pk_u32(p, 0xc0a80001); pk_u16(p, (uint16_t)(1024 + i)); pk_u16(p, 443);
    pk_u8(p, 6); pk_u8(p, 0); pk_u8(p, 0x18); pk_u32(p, 1); pk_u32(p, 2); pk_u64(p, 10); pk_u64(p, 1500 + i);
    pk_u64(p, 1700000000000ull - 900); pk_u64(p, 1700000000000ull - 100); pk_u32(p, 64512); pk_u32(p, 15169);
    pk_u8(p, 24); pk_u8(p, 16); pk_u32(p, 0x0a0000fe); pk_u8(p, 0); pk_u8(p, 3);
}

static int run(const char *name, struct dip_collect *c, const struct pkt *p, long packets, uint32_t per_packet,
               double *ns_per_record)
{
    struct dip_addr exporter;
    dip_addr_from_v4(&exporter, 0xc0000201);
    uint64_t sum = 0;
    struct dip_collect_sink sink = { count_sink, &sum };
    struct dip_errbuf eb;
    double dt = 1e30;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = cpu_seconds();
        for (long i = 0; i < packets; i++) {
            if (dip_collect_packet(c, p->b, p->n, &exporter, 1700000000000ull, &sink, &eb) != DIP_OK) {
                fprintf(stderr, "%s: %s\n", name, eb.msg);
                return 1;
            }
        }
        double t = cpu_seconds() - t0;
        if (t < dt) dt = t;
    }
    *ns_per_record = dt * 1e9 / ((double)packets * per_packet);
    printf("%-28s %10.1f ns/record  %8.2f M records/s  (%ld packets, checksum %llu)\n", name, *ns_per_record,
           (double)packets * per_packet / dt / 1e6, packets, (unsigned long long)sum);
    return 0;
}

int main(int argc, char **argv)
{
    long packets = argc > 1 ? atol(argv[1]) : 200000;
    static struct pkt p;
    struct dip_collect *c;
    double v5_ns, ipfix_ns;
    if (dip_collect_new(NULL, &c)) return 1;

    v5_begin(&p, 30, 500000, 1700000000, 0, 0, 0, 0, 0);
    for (uint32_t i = 0; i < 30; i++)
        v5_rec(&p, 0x0a000000 + i, 0xc0a80001, (uint16_t)(1024 + i), 443, 6, 10, 1500 + i, 499000, 499900);
    /* the sequence number stays: every packet after the first counts as out of order, cheaply */
    if (run("netflow v5 (30/packet)", c, &p, packets, 30, &v5_ns)) return 1;

    ipfix_begin(&p, 1700000000, 0, 1);
    set_begin(&p, 2);
    tmpl_rec(&p, 256, 20, t20);
    set_end(&p);
    ipfix_end(&p);
    struct dip_addr exporter;
    dip_addr_from_v4(&exporter, 0xc0000201);
    dip_collect_packet(c, p.b, p.n, &exporter, 1700000000000ull, NULL, NULL);
    ipfix_begin(&p, 1700000000, 0, 1);
    set_begin(&p, 256);
    for (uint32_t i = 0; i < 30; i++) rec20(&p, i);
    set_end(&p);
    ipfix_end(&p);
    if (run("ipfix 20 fields (30/message)", c, &p, packets, 30, &ipfix_ns)) return 1;
    printf("ipfix speed / v5 speed: %.2f\n", v5_ns / ipfix_ns);
    dip_collect_free(c);
    return 0;
}
