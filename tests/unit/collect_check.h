/* collect_check.h - the harness of the collector's packet tests: feeds a
 * message to a collector and, for every message, also feeds each of its
 * truncated prefixes to a fresh collector that saw the same history; a prefix
 * must be rejected (counted as malformed, with a reason) or decode only
 * records that the whole message also gave: never a half-decoded one.
 * Header-only, test use. */
#ifndef DIP_TEST_COLLECT_CHECK_H
#define DIP_TEST_COLLECT_CHECK_H

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collect/collect.h"
#include "collect_build.h"

struct flows {
    struct dip_flow *v;
    size_t n, cap;
};

static int flows_add(void *ctx, const struct dip_flow *f, size_t n)
{
    struct flows *fl = ctx;
    if (fl->n + n > fl->cap) {
        fl->cap = (fl->n + n) * 2 + 8;
        fl->v = realloc(fl->v, fl->cap * sizeof *fl->v);
        if (!fl->v) return DIP_ENOMEM;
    }
    memcpy(fl->v + fl->n, f, n * sizeof *f);
    fl->n += n;
    return DIP_OK;
}

#define RUN_HISTORY 24

struct run {
    struct dip_collect_limits lim;
    struct dip_collect *c;
    struct flows fl;         /* every record emitted so far */
    struct dip_addr exporter;
    struct pkt *hist;        /* messages fed so far, replayed for prefix checks */
    uint64_t hist_now[RUN_HISTORY];
    size_t nhist;
    int no_prefix_check;
    struct dip_errbuf eb;    /* of the last feed */
};

static void run_start(struct run *r, const struct dip_collect_limits *lim)
{
    memset(r, 0, sizeof *r);
    if (lim) r->lim = *lim;
    else dip_collect_limits_default(&r->lim);
    r->hist = calloc(RUN_HISTORY, sizeof *r->hist);
    dip_addr_from_v4(&r->exporter, 0xc0000201); /* 192.0.2.1 */
    CU_ASSERT_FATAL(r->hist && dip_collect_new(&r->lim, &r->c) == DIP_OK);
}

static void run_end(struct run *r)
{
    dip_collect_free(r->c);
    free(r->fl.v);
    free(r->hist);
}

static void flow_text(const struct dip_flow *f, char *out, size_t cap)
{
    struct dip_dynbuf b;
    dip_dynbuf_init(&b, 4096);
    dip_flow_xml_append(f, &b);
    snprintf(out, cap, "%s", b.data ? (char *)b.data : "");
    dip_dynbuf_free(&b);
}

static int flow_in(const struct dip_flow *f, const struct dip_flow *set, size_t n)
{
    char a[1024], b[1024];
    flow_text(f, a, sizeof a);
    for (size_t i = 0; i < n; i++) {
        flow_text(&set[i], b, sizeof b);
        if (!strcmp(a, b)) return 1;
    }
    return 0;
}

static struct dip_collect *replay(struct run *r)
{
    struct dip_collect *c2 = NULL;
    struct flows ignore = { 0 };
    struct dip_collect_sink sink = { flows_add, &ignore };
    if (dip_collect_new(&r->lim, &c2) != DIP_OK) return NULL;
    for (size_t i = 0; i < r->nhist; i++)
        dip_collect_packet(c2, r->hist[i].b, r->hist[i].n, &r->exporter, r->hist_now[i], &sink, NULL);
    free(ignore.v);
    return c2;
}

/* Every prefix of p: rejected and counted, or only whole records of the full
 * decode. IPFIX prefixes are fed twice: as cut (the header length then lies)
 * and with the header length patched to the cut, so that the sets inside are
 * what is truncated. */
static void check_prefix(struct run *r, const uint8_t *msg, size_t k, size_t n, uint64_t now,
                         const struct dip_flow *full, size_t nfull);

static void check_prefixes(struct run *r, const struct pkt *p, uint64_t now, const struct dip_flow *full, size_t nfull)
{
    static uint8_t patched[65536];
    for (size_t k = 0; k < p->n; k++) {
        check_prefix(r, p->b, k, p->n, now, full, nfull);
        if (p->n >= 16 && p->b[0] == 0 && p->b[1] == 10 && k >= 16) {
            memcpy(patched, p->b, k);
            patched[2] = (uint8_t)(k >> 8);
            patched[3] = (uint8_t)k;
            check_prefix(r, patched, k, p->n, now, full, nfull);
        }
    }
}

static void check_prefix(struct run *r, const uint8_t *msg, size_t k, size_t n, uint64_t now,
                         const struct dip_flow *full, size_t nfull)
{
    {
        struct dip_collect *c2 = replay(r);
        CU_ASSERT_PTR_NOT_NULL_FATAL(c2);
        struct dip_collect_totals before, after;
        dip_collect_totals_get(c2, &before);
        struct flows got = { 0 };
        struct dip_collect_sink sink = { flows_add, &got };
        struct dip_errbuf eb = { "" };
        int rc = dip_collect_packet(c2, msg, k, &r->exporter, now, &sink, &eb);
        dip_collect_totals_get(c2, &after);
        if (rc != DIP_OK) {
            if (rc != DIP_EINVAL) printf("\n  prefix %zu of %zu: rc %d (%s)\n", k, n, rc, eb.msg);
            CU_ASSERT_EQUAL(rc, DIP_EINVAL);
            CU_ASSERT_EQUAL(after.malformed, before.malformed + 1);
            CU_ASSERT(eb.msg[0] != 0);
        }
        CU_ASSERT(got.n <= nfull);
        for (size_t i = 0; i < got.n; i++) CU_ASSERT(flow_in(&got.v[i], full, nfull));
        free(got.v);
        dip_collect_free(c2);
    }
}

/* With DIP_COLLECT_SEED_DIR set, appends each message fed (2-byte length,
 * bytes) to DIR/fuzz_<protocol>/<test name>: the fuzz targets' seed format. */
static void dump_seed(const struct pkt *p)
{
    const char *dir = getenv("DIP_COLLECT_SEED_DIR");
    CU_pTest test = CU_get_current_test();
    if (!dir || !test || p->n < 2 || p->n > 0xffff) return;
    unsigned version = ((unsigned)p->b[0] << 8) | p->b[1];
    const char *target = version == 5 ? "fuzz_netflow_v5" : version == 9 ? "fuzz_netflow_v9" : "fuzz_ipfix";
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/%s", dir, target, test->pName);
    FILE *f = fopen(path, "ab");
    if (!f) return;
    fputc((int)(p->n >> 8), f);
    fputc((int)(p->n & 0xff), f);
    fwrite(p->b, 1, p->n, f);
    fclose(f);
}

/* Feeds p at time now. Returns the decoder's status; the records it emitted
 * are r->fl.v[*first .. r->fl.n). Runs the prefix check too. */
static int run_feed_at(struct run *r, const struct pkt *p, uint64_t now, size_t *first)
{
    size_t start = r->fl.n;
    dump_seed(p);
    struct dip_collect_sink sink = { flows_add, &r->fl };
    r->eb.msg[0] = 0;
    int rc = dip_collect_packet(r->c, p->b, p->n, &r->exporter, now, &sink, &r->eb);
    if (first) *first = start;
    if (!r->no_prefix_check) check_prefixes(r, p, now, r->fl.v + start, r->fl.n - start);
    if (r->nhist < RUN_HISTORY) {
        r->hist[r->nhist] = *p;
        r->hist_now[r->nhist++] = now;
    }
    return rc;
}

#define RUN_NOW 1700000000000ull
static int run_feed(struct run *r, const struct pkt *p) { return run_feed_at(r, p, RUN_NOW, NULL); }

static struct dip_collect_stats run_stats(struct run *r, uint8_t version, uint32_t domain)
{
    struct dip_collect_stats s;
    memset(&s, 0, sizeof s);
    CU_ASSERT_EQUAL(dip_collect_stats_find(r->c, &r->exporter, version, domain, &s), DIP_OK);
    return s;
}

#endif
