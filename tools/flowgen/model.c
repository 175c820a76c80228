/* model.c - the seeded traffic model of flowgen: a PRNG (xoshiro256**), O(1)
 * weighted sampling (alias method), Zipf-popular hosts in a few client and
 * server networks, weighted services and heavy-tailed packet counts. Produces
 * one struct dip_flow per call; output formats are main.c's and export.c's. */
#include "flowgen.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- xoshiro256** (Blackman & Vigna, 2018), seeded by splitmix64 ---- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void flowgen_rng_seed(struct flowgen_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t flowgen_rng_next(struct flowgen_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* Lemire's multiply-shift: the bias is below n / 2^64, irrelevant here. */
uint64_t flowgen_rng_below(struct flowgen_rng *r, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)flowgen_rng_next(r) * n) >> 64);
}

double flowgen_rng_unit(struct flowgen_rng *r)
{
    return (double)(flowgen_rng_next(r) >> 11) * 0x1.0p-53;
}

/* ---- alias method (Vose, "A linear algorithm for generating random numbers
 * with a given distribution", IEEE TSE 1991) ---- */

int flowgen_alias_init(struct flowgen_alias *a, const double *weights, uint32_t n)
{
    double total = 0;
    for (uint32_t i = 0; i < n; i++) total += weights[i];
    a->n = n;
    a->prob = malloc(n * sizeof *a->prob);
    a->alias = malloc(n * sizeof *a->alias);
    uint32_t *small = malloc(n * sizeof *small), *large = malloc(n * sizeof *large);
    double *scaled = malloc(n * sizeof *scaled);
    if (!a->prob || !a->alias || !small || !large || !scaled || n == 0 || total <= 0) {
        free(small); free(large); free(scaled);
        flowgen_alias_free(a);
        return DIP_ENOMEM;
    }
    uint32_t ns = 0, nl = 0;
    for (uint32_t i = 0; i < n; i++) {
        scaled[i] = weights[i] * n / total;
        if (scaled[i] < 1.0) small[ns++] = i;
        else large[nl++] = i;
    }
    while (ns && nl) {
        uint32_t s = small[--ns], l = large[--nl];
        a->prob[s] = scaled[s];
        a->alias[s] = l;
        scaled[l] = (scaled[l] + scaled[s]) - 1.0;
        if (scaled[l] < 1.0) small[ns++] = l;
        else large[nl++] = l;
    }
    /* What is left is 1 up to rounding. */
    while (nl) { uint32_t l = large[--nl]; a->prob[l] = 1.0; a->alias[l] = l; }
    while (ns) { uint32_t s = small[--ns]; a->prob[s] = 1.0; a->alias[s] = s; }
    free(small); free(large); free(scaled);
    return DIP_OK;
}

int flowgen_alias_init_zipf(struct flowgen_alias *a, uint32_t n, double s)
{
    double *w = malloc((n ? n : 1) * sizeof *w);
    if (!w) return DIP_ENOMEM;
    for (uint32_t k = 0; k < n; k++) w[k] = 1.0 / pow((double)k + 1.0, s);
    int rc = flowgen_alias_init(a, w, n);
    free(w);
    return rc;
}

void flowgen_alias_free(struct flowgen_alias *a)
{
    free(a->prob);
    free(a->alias);
    a->prob = NULL;
    a->alias = NULL;
    a->n = 0;
}

uint32_t flowgen_alias_draw(const struct flowgen_alias *a, struct flowgen_rng *r)
{
    uint64_t x = flowgen_rng_next(r);
    uint32_t i = (uint32_t)(((x >> 32) * a->n) >> 32);
    double u = (double)(x & 0xffffffffu) * 0x1.0p-32;
    return u < a->prob[i] ? i : a->alias[i];
}

/* ---- networks, exporters and services ---- */

enum role { CLIENT, SERVER };

struct network {
    const char *prefix; /* base address text */
    uint8_t plen;       /* prefix length in the family's own terms */
    enum role role;
    uint32_t asn;       /* origin AS; 0 for our own networks */
    double weight;      /* share of the family's hosts of that role */
};

/* Our own networks (AS 0 as exporters report local prefixes) and some remote
 * ones in documentation ranges (RFC 5737, RFC 2544, RFC 3849) and AS numbers
 * (RFC 5398) so that nothing collides with real traffic. */
static const struct network networks[] = {
    { "10.1.0.0", 16, CLIENT, 0, 4 },
    { "10.20.0.0", 16, CLIENT, 0, 3 },
    { "172.16.5.0", 24, CLIENT, 0, 1 },
    { "192.168.1.0", 24, CLIENT, 0, 1 },
    { "192.168.10.0", 24, CLIENT, 0, 1 },
    { "198.18.0.0", 15, CLIENT, 64510, 2 },
    { "10.0.0.0", 24, SERVER, 0, 2 },
    { "172.20.1.0", 24, SERVER, 0, 1 },
    { "198.51.100.0", 24, SERVER, 64501, 3 },
    { "203.0.113.0", 24, SERVER, 64502, 3 },
    { "192.0.2.0", 24, SERVER, 64503, 1 },
    { "2001:db8:1::", 48, CLIENT, 0, 3 },
    { "2001:db8:a::", 48, CLIENT, 0, 1 },
    { "2001:db8:77::", 48, CLIENT, 64510, 1 },
    { "2001:db8:ff::", 48, SERVER, 0, 1 },
    { "2001:db8:cafe::", 48, SERVER, 64511, 2 },
    { "2001:db8:beef::", 48, SERVER, 64505, 2 },
};
#define NETWORKS (sizeof networks / sizeof networks[0])

const struct flowgen_exporter flowgen_exporters[FLOWGEN_EXPORTERS] = {
    { { { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 255, 0, 1 } }, 1, true, 40 },
    { { { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 255, 0, 2 } }, 2, true, 25 },
    { { { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 168, 255, 1 } }, 3, false, 20 },
    { { { 0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 } }, 4, false, 15 },
};

enum kind { K_FIXED, K_ANY_PORT, K_ICMP };

/* A service as seen from its client: the request direction. Packet counts are
 * Pareto(pk_min, alpha) capped at pk_max; the mean packet size is uniform in
 * [lo, hi] (request) or [rlo, rhi] (reply), in bytes of IPv4 packet. */
struct service {
    uint8_t proto;
    enum kind kind;
    uint16_t port;            /* K_FIXED: the port; K_ICMP: ICMPv4 type*256+code */
    uint16_t icmp6;           /* K_ICMP: ICMPv6 type*256+code */
    uint16_t reply4, reply6;  /* K_ICMP: the reply's type*256+code */
    double weight;            /* per mille of records, documented in --help */
    uint32_t pk_min, pk_max;
    double alpha;
    uint16_t lo, hi, rlo, rhi;
    double gap_ms;            /* mean time between packets */
    uint8_t tos;
};

#define TCP 6
#define UDP 17
#define ICMP 1
#define ICMP6 58

/* The table --help documents: keep them in step. */
static const struct service services[] = {
    { TCP, K_FIXED, 443, 0, 0, 0, 280, 4, 1000000, 1.2, 60, 400, 600, 1460, 20, 0 },
    { UDP, K_FIXED, 443, 0, 0, 0, 60, 2, 1000000, 1.1, 80, 1350, 400, 1350, 10, 0 },
    { TCP, K_FIXED, 80, 0, 0, 0, 100, 4, 1000000, 1.3, 60, 500, 500, 1460, 25, 0 },
    { UDP, K_FIXED, 53, 0, 0, 0, 140, 1, 4, 3.0, 60, 90, 90, 512, 5, 0 },
    { TCP, K_FIXED, 22, 0, 0, 0, 50, 6, 1000000, 1.1, 60, 200, 60, 400, 300, 0x10 },
    { TCP, K_FIXED, 25, 0, 0, 0, 25, 8, 100000, 1.5, 60, 1460, 60, 200, 40, 0 },
    { UDP, K_FIXED, 123, 0, 0, 0, 40, 1, 4, 8.0, 76, 76, 76, 76, 1000, 0xb8 },
    { TCP, K_FIXED, 3389, 0, 0, 0, 20, 10, 1000000, 1.0, 80, 300, 200, 1460, 40, 0 },
    { TCP, K_FIXED, 8080, 0, 0, 0, 30, 4, 1000000, 1.3, 60, 500, 500, 1460, 25, 0 },
    { TCP, K_FIXED, 993, 0, 0, 0, 15, 6, 100000, 1.4, 60, 300, 100, 1460, 200, 0 },
    { TCP, K_FIXED, 587, 0, 0, 0, 10, 8, 100000, 1.5, 100, 1460, 60, 200, 40, 0 },
    { TCP, K_FIXED, 445, 0, 0, 0, 15, 6, 1000000, 1.1, 100, 1460, 100, 1460, 10, 0 },
    { TCP, K_FIXED, 3306, 0, 0, 0, 10, 6, 1000000, 1.2, 80, 400, 100, 1460, 5, 0 },
    { UDP, K_FIXED, 161, 0, 0, 0, 10, 1, 20, 2.5, 80, 200, 100, 600, 50, 0 },
    { UDP, K_FIXED, 514, 0, 0, 0, 10, 1, 100000, 1.3, 100, 600, 100, 600, 2000, 0 },
    { UDP, K_FIXED, 500, 0, 0, 0, 5, 2, 1000, 2.0, 200, 900, 200, 900, 500, 0 },
    { TCP, K_ANY_PORT, 0, 0, 0, 0, 50, 1, 100000, 2.5, 40, 1460, 40, 1460, 30, 0 },
    { UDP, K_ANY_PORT, 0, 0, 0, 0, 50, 1, 100000, 1.5, 60, 1400, 60, 1400, 30, 0 },
    /* echo request 8/0 (ICMPv6 128/0), the reply 0/0 (129/0) */
    { ICMP, K_ICMP, 8 << 8, 128 << 8, 0, 129 << 8, 50, 1, 1000, 1.8, 84, 84, 84, 84, 1000, 0 },
    /* port unreachable 3/3 (ICMPv6 1/4) */
    { ICMP, K_ICMP, 3 << 8 | 3, 1 << 8 | 4, 3 << 8 | 3, 1 << 8 | 4, 20, 1, 100, 2.5, 56, 576, 56, 576, 200, 0 },
    /* time exceeded in transit 11/0 (ICMPv6 3/0) */
    { ICMP, K_ICMP, 11 << 8, 3 << 8, 11 << 8, 3 << 8, 10, 1, 30, 3.0, 56, 96, 56, 96, 100, 0xc0 },
};
#define SERVICES (sizeof services / sizeof services[0])

/* ---- host populations ---- */

struct host {
    struct dip_addr addr;
    uint8_t net;   /* index into networks */
    uint8_t iface; /* interface the host sits behind */
};

struct pool {
    struct host *hosts; /* owned */
    struct flowgen_alias zipf; /* popularity by rank */
};

enum { POOL_C4, POOL_S4, POOL_C6, POOL_S6, POOLS };
static const uint32_t pool_sizes[POOLS] = { 20000, 2000, 4000, 500 };

struct flowgen_model {
    struct flowgen_params p;
    struct flowgen_rng rng;
    struct pool pools[POOLS];
    struct flowgen_alias service_pick;
    struct flowgen_alias exporter_pick;
    struct dip_addr base[NETWORKS];
    struct dip_addr nexthop[NETWORKS];
};

static bool net_is_v6(const struct network *n) { return strchr(n->prefix, ':') != NULL; }

/* A random host in network i: IPv4 any host number but the network and
 * broadcast ones; IPv6 one of 16 subnets with a random interface identifier
 * (clients, RFC 8981 style) or a small one (servers). */
static void make_host(struct flowgen_model *m, uint8_t i, struct host *h)
{
    const struct network *n = &networks[i];
    h->addr = m->base[i];
    h->net = i;
    if (!net_is_v6(n)) {
        uint32_t span = 1u << (32 - n->plen);
        uint32_t v4 = dip_addr_v4(&h->addr) + 1 + (uint32_t)flowgen_rng_below(&m->rng, span - 2);
        dip_addr_from_v4(&h->addr, v4);
    } else if (n->role == CLIENT) {
        uint64_t iid = flowgen_rng_next(&m->rng);
        h->addr.b[7] = (uint8_t)flowgen_rng_below(&m->rng, 16);
        for (int b = 0; b < 8; b++) h->addr.b[8 + b] = (uint8_t)(iid >> (8 * b));
    } else {
        h->addr.b[7] = (uint8_t)flowgen_rng_below(&m->rng, 4);
        uint16_t low = (uint16_t)(1 + flowgen_rng_below(&m->rng, 0x3ff));
        h->addr.b[14] = (uint8_t)(low >> 8);
        h->addr.b[15] = (uint8_t)low;
    }
    /* Remote hosts are behind the uplink (interface 1), ours behind 2..8. */
    h->iface = n->asn ? 1 : (uint8_t)(2 + flowgen_rng_below(&m->rng, 7));
}

static int pool_init(struct flowgen_model *m, int which)
{
    bool v6 = which == POOL_C6 || which == POOL_S6;
    enum role role = (which == POOL_C4 || which == POOL_C6) ? CLIENT : SERVER;
    double w[NETWORKS];
    for (size_t i = 0; i < NETWORKS; i++)
        w[i] = (net_is_v6(&networks[i]) == v6 && networks[i].role == role) ? networks[i].weight : 0;
    struct flowgen_alias pick;
    if (flowgen_alias_init(&pick, w, NETWORKS) != DIP_OK) return DIP_ENOMEM;
    struct pool *pl = &m->pools[which];
    uint32_t n = pool_sizes[which];
    pl->hosts = malloc(n * sizeof *pl->hosts);
    int rc = pl->hosts ? flowgen_alias_init_zipf(&pl->zipf, n, m->p.zipf_s) : DIP_ENOMEM;
    for (uint32_t k = 0; rc == DIP_OK && k < n; k++)
        make_host(m, (uint8_t)flowgen_alias_draw(&pick, &m->rng), &pl->hosts[k]);
    flowgen_alias_free(&pick);
    return rc;
}

struct flowgen_model *flowgen_model_new(const struct flowgen_params *p)
{
    struct flowgen_model *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->p = *p;
    flowgen_rng_seed(&m->rng, p->seed);
    for (size_t i = 0; i < NETWORKS; i++) {
        const struct network *n = &networks[i];
        if (dip_addr_parse(n->prefix, strlen(n->prefix), &m->base[i]) != DIP_OK) goto err;
        /* Remote networks are reached through the upstream peer, ours
         * through their gateway (the first host). */
        if (net_is_v6(n)) {
            static const uint8_t peer6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1 };
            if (n->asn) memcpy(m->nexthop[i].b, peer6, 16);
            else { m->nexthop[i] = m->base[i]; m->nexthop[i].b[15] = 1; }
        } else {
            dip_addr_from_v4(&m->nexthop[i], n->asn ? 0x0aff0101u : dip_addr_v4(&m->base[i]) + 1);
        }
    }
    double sw[SERVICES], ew[FLOWGEN_EXPORTERS];
    for (size_t i = 0; i < SERVICES; i++) sw[i] = services[i].weight;
    for (size_t i = 0; i < FLOWGEN_EXPORTERS; i++) ew[i] = flowgen_exporters[i].weight;
    if (flowgen_alias_init(&m->service_pick, sw, SERVICES) != DIP_OK) goto err;
    if (flowgen_alias_init(&m->exporter_pick, ew, FLOWGEN_EXPORTERS) != DIP_OK) goto err;
    for (int i = 0; i < POOLS; i++)
        if (pool_init(m, i) != DIP_OK) goto err;
    return m;
err:
    flowgen_model_free(m);
    return NULL;
}

void flowgen_model_free(struct flowgen_model *m)
{
    if (!m) return;
    for (int i = 0; i < POOLS; i++) {
        free(m->pools[i].hosts);
        flowgen_alias_free(&m->pools[i].zipf);
    }
    flowgen_alias_free(&m->service_pick);
    flowgen_alias_free(&m->exporter_pick);
    free(m);
}

/* ---- one record ---- */

#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_RST 0x04
#define TH_PSH 0x08
#define TH_ACK 0x10

/* Pareto(x_m = pk_min, alpha) rounded down: most flows are small, a few carry
 * most of the bytes (heavy tail), capped at pk_max. */
static uint64_t draw_packets(struct flowgen_model *m, const struct service *s)
{
    double u = 1.0 - flowgen_rng_unit(&m->rng); /* (0, 1] */
    double x = s->pk_min * pow(u, -1.0 / s->alpha);
    return x >= s->pk_max ? s->pk_max : (uint64_t)x;
}

/* TCP flags, the OR over the packets of one direction: unanswered SYNs and
 * resets for one- and two-packet flows, full handshakes otherwise, and for
 * flows cut by the active timeout the first, a middle or the last part. */
static uint8_t tcp_flags(struct flowgen_model *m, uint64_t packets, bool reply, bool cut)
{
    uint64_t r = flowgen_rng_below(&m->rng, 20);
    if (cut) return r < 7 ? TH_SYN | TH_PSH | TH_ACK : r < 14 ? TH_PSH | TH_ACK : TH_FIN | TH_PSH | TH_ACK;
    if (packets == 1) return reply ? TH_RST | TH_ACK : TH_SYN;
    if (packets == 2) return reply ? TH_SYN | TH_ACK : TH_SYN;
    if (r < 2) return TH_SYN | TH_RST | TH_PSH | TH_ACK;
    return TH_FIN | TH_SYN | TH_PSH | TH_ACK;
}

/* Sets packets, bytes, last and flags from the service profile. */
static void fill_counters(struct flowgen_model *m, const struct service *s, bool reply, bool v6,
                          struct dip_flow *f)
{
    uint64_t pk = draw_packets(m, s);
    if (pk == 0) pk = 1;
    double lo = reply ? s->rlo : s->lo, hi = reply ? s->rhi : s->hi;
    double mean = lo + (hi - lo) * flowgen_rng_unit(&m->rng) + (v6 ? 20 : 0);
    uint64_t bytes = (uint64_t)(mean * (double)pk + 0.5);
    if (bytes < 40 * pk) bytes = 40 * pk;
    if (bytes > 1500 * pk) bytes = 1500 * pk;
    f->packets = pk;
    f->bytes = bytes;

    uint64_t dur = 0;
    if (pk > 1) {
        double gap = -log(1.0 - flowgen_rng_unit(&m->rng)) * s->gap_ms;
        double d = gap * (double)(pk - 1);
        dur = d > 1e12 ? (uint64_t)1e12 : (uint64_t)d;
    }
    bool cut = dur >= m->p.active_timeout_ms;
    if (cut) dur = m->p.active_timeout_ms;
    uint64_t end = m->p.start_ms + m->p.duration_ms;
    f->last = f->first + dur > end ? (f->first > end ? f->first : end) : f->first + dur;
    f->flags = s->proto == TCP ? tcp_flags(m, pk, reply, cut) : 0;
}

static const struct host *pick_host(struct flowgen_model *m, int pool)
{
    const struct pool *pl = &m->pools[pool];
    return &pl->hosts[flowgen_alias_draw(&pl->zipf, &m->rng)];
}

/* Ports and protocol: ephemeral client ports 32768-60999 (Linux's default
 * range), ICMP type*256+code in dport with sport 0, NTP between servers from
 * port 123 now and then. */
static void fill_ports(struct flowgen_model *m, const struct service *s, bool reply, bool v6,
                       struct dip_flow *f)
{
    if (s->kind == K_ICMP) {
        f->proto = v6 ? ICMP6 : ICMP;
        f->sport = 0;
        f->dport = v6 ? (reply ? s->reply6 : s->icmp6) : (reply ? s->reply4 : s->port);
        return;
    }
    f->proto = s->proto;
    uint16_t svc = s->kind == K_ANY_PORT ? (uint16_t)(1024 + flowgen_rng_below(&m->rng, 48128)) : s->port;
    uint16_t eph = (uint16_t)(32768 + flowgen_rng_below(&m->rng, 60999 - 32768 + 1));
    if (s->port == 123 && flowgen_rng_below(&m->rng, 5) == 0) eph = 123;
    f->sport = reply ? svc : eph;
    f->dport = reply ? eph : svc;
}

void flowgen_model_next(struct flowgen_model *m, uint64_t index, struct dip_flow *f,
                        unsigned *exporter)
{
    memset(f, 0, sizeof *f);
    /* Record i starts in the i-th of `count` equal slices of the window, so
     * first times never decrease and the window is covered evenly. */
    uint64_t n = m->p.count ? m->p.count : 1;
    uint64_t a = (uint64_t)((unsigned __int128)index * m->p.duration_ms / n);
    uint64_t b = (uint64_t)((unsigned __int128)(index + 1) * m->p.duration_ms / n);
    f->first = m->p.start_ms + a + (b > a ? flowgen_rng_below(&m->rng, b - a) : 0);

    bool v6 = flowgen_rng_unit(&m->rng) < m->p.v6_share;
    const struct service *s = &services[flowgen_alias_draw(&m->service_pick, &m->rng)];
    bool reply = flowgen_rng_unit(&m->rng) < m->p.reply_share;
    const struct host *client = pick_host(m, v6 ? POOL_C6 : POOL_C4);
    const struct host *server = pick_host(m, v6 ? POOL_S6 : POOL_S4);
    const struct host *src = reply ? server : client, *dst = reply ? client : server;
    f->src = src->addr;
    f->dst = dst->addr;
    fill_ports(m, s, reply, v6, f);
    fill_counters(m, s, reply, v6, f);

    f->tos = s->tos;
    if (f->proto == TCP && flowgen_rng_below(&m->rng, 20) == 0) f->tos |= 0x02; /* ECT(0) */
    f->in = src->iface;
    f->out = dst->iface != src->iface ? dst->iface : (uint32_t)(src->iface % 8 + 1);
    f->present = DIP_F_FLAGS | DIP_F_TOS | DIP_F_IN | DIP_F_OUT | DIP_F_EXPORTER | DIP_F_DOMAIN;

    unsigned e = flowgen_alias_draw(&m->exporter_pick, &m->rng);
    const struct flowgen_exporter *ex = &flowgen_exporters[e];
    f->exporter = ex->addr;
    f->domain = ex->domain;
    if (ex->routing) {
        f->srcas = networks[src->net].asn;
        f->dstas = networks[dst->net].asn;
        f->smask = networks[src->net].plen;
        f->dmask = networks[dst->net].plen;
        f->nexthop = m->nexthop[dst->net];
        f->present |= DIP_F_SRCAS | DIP_F_DSTAS | DIP_F_SMASK | DIP_F_DMASK | DIP_F_NEXTHOP;
    }
    *exporter = e;
}
