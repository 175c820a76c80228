/* test_collect_real.c - the decoders against captures from real exporters
 * (Cisco, Huawei, Juniper routers, ipfixprobe, softflowd-style probes), read
 * from $DIP_REALFLOWS (default ../shared/realflows relative to the source
 * tree). They are not shipped with the project: every test here prints why
 * it skips when the folder is absent. */
#include <CUnit/CUnit.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "collect/collect.h"
#include "collect_pcap.h"

static const char *realflows_dir(void)
{
    const char *d = getenv("DIP_REALFLOWS");
    return d && *d ? d : "../shared/realflows";
}

/* Returns 1 when the captures are there; otherwise prints the reason once per test. */
static int have_realflows(const char *test)
{
    char path[1024];
    struct stat sb;
    snprintf(path, sizeof path, "%s/README.md", realflows_dir());
    if (stat(path, &sb) == 0) return 1;
    printf("\n  SKIP %s: no captures at %s (set DIP_REALFLOWS to the realflows folder)\n", test, realflows_dir());
    return 0;
}

struct flows {
    struct dip_flow *v;
    size_t n, cap;
};

static int collect_flows(void *ctx, const struct dip_flow *f, size_t n)
{
    struct flows *fl = ctx;
    if (fl->n + n > fl->cap) {
        fl->cap = (fl->n + n) * 2;
        fl->v = realloc(fl->v, fl->cap * sizeof *fl->v);
        if (!fl->v) return DIP_ENOMEM;
    }
    memcpy(fl->v + fl->n, f, n * sizeof *f);
    fl->n += n;
    return DIP_OK;
}

/* Feeds every UDP payload of the named captures (in order) to c; every
 * message must decode. Returns the number of messages. */
static size_t feed(struct dip_collect *c, const char *sub, const char *const *files, struct flows *out)
{
    struct dip_collect_sink sink = { collect_flows, out };
    size_t messages = 0;
    for (; *files; files++) {
        char path[1024];
        struct pcap_file pf;
        struct pcap_udp u;
        snprintf(path, sizeof path, "%s/%s/%s", realflows_dir(), sub, *files);
        CU_ASSERT_EQUAL_FATAL(pcap_open(&pf, path), 0);
        while (pcap_next_udp(&pf, &u)) {
            struct dip_errbuf eb = { "" };
            int rc = dip_collect_packet(c, u.payload, u.len, &u.src, u.ts_ms, &sink, &eb);
            if (rc != DIP_OK) printf("\n  %s: %s\n", path, eb.msg);
            CU_ASSERT_EQUAL(rc, DIP_OK);
            messages++;
        }
        pcap_close(&pf);
    }
    return messages;
}

/* No message malformed, no data set left without its template, nothing
 * refused: every record the captures hold was decoded. */
static void assert_clean(const struct dip_collect *c)
{
    struct dip_collect_totals t;
    dip_collect_totals_get(c, &t);
    CU_ASSERT_EQUAL(t.malformed, 0);
    CU_ASSERT_EQUAL(t.unsupported, 0);
    CU_ASSERT_EQUAL(t.refused_domains, 0);
    CU_ASSERT_EQUAL(t.pending_dropped, 0);
    for (size_t i = 0; i < dip_collect_stats_count(c); i++) {
        struct dip_collect_stats s;
        dip_collect_stats_get(c, i, &s);
        CU_ASSERT_EQUAL(s.malformed, 0);
        CU_ASSERT_EQUAL(s.pending_dropped, 0);
    }
}

static struct dip_collect *new_collector(void)
{
    struct dip_collect_limits lim;
    dip_collect_limits_default(&lim);
    lim.template_timeout_ms = 0; /* captures taken days apart belong together here */
    lim.pending_max_ms = 0xffffffffu;
    struct dip_collect *c = NULL;
    CU_ASSERT_FATAL(dip_collect_new(&lim, &c) == DIP_OK);
    return c;
}

static const char *addr_text(const struct dip_addr *a, char *buf)
{
    dip_addr_format(a, buf);
    return buf;
}

/* ---- pmacct: compare with its own decoding, field by field ---- */

/* Finds "name": in a JSON line and copies its scalar value (string without
 * quotes, number, or the raw [...] of an array). Returns 1 if found. */
static int json_get(const char *line, const char *name, char *out, size_t cap)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": ", name);
    const char *p = strstr(line, pat);
    if (!p) return 0;
    p += strlen(pat);
    const char *end;
    if (*p == '"') end = strchr(++p, '"');
    else if (*p == '[') end = strchr(p, ']') + 1;
    else end = p + strcspn(p, ",}");
    size_t n = (size_t)(end - p) < cap - 1 ? (size_t)(end - p) : cap - 1;
    memcpy(out, p, n);
    out[n] = 0;
    return 1;
}

static unsigned proto_number(const char *name)
{
    static const struct { const char *name; unsigned num; } names[] = {
        { "icmp", 1 }, { "tcp", 6 }, { "udp", 17 }, { "gre", 47 }, { "esp", 50 },
        { "ipv6-icmp", 58 }, { "ospf", 89 }, { "vrrp", 112 },
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(names[i].name, name)) return names[i].num;
    return (unsigned)atoi(name);
}

static unsigned tcp_flag_bits(const char *list)
{
    static const char *const bits[] = { "FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR" };
    unsigned v = 0;
    for (int i = 0; i < 8; i++) {
        char q[8];
        snprintf(q, sizeof q, "\"%s\"", bits[i]);
        if (strstr(list, q)) v |= 1u << i;
    }
    return v;
}

struct agg {
    char key[400];
    uint64_t packets, bytes;
};

static int agg_cmp(const void *a, const void *b) { return strcmp(((const struct agg *)a)->key, ((const struct agg *)b)->key); }

/* Sums entries with equal keys (pmacct sums records sharing its printed fields). */
static size_t agg_merge(struct agg *v, size_t n)
{
    qsort(v, n, sizeof *v, agg_cmp);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k && !strcmp(v[k - 1].key, v[i].key)) {
            v[k - 1].packets += v[i].packets;
            v[k - 1].bytes += v[i].bytes;
        } else {
            v[k++] = v[i];
        }
    }
    return k;
}

struct printed { int mask, ts; };

/* The key of one of our records over the fields pmacct printed. pmacct prints
 * v9/IPFIX start and end times in whole seconds, rounding up
 * (export - (uptime - first) / 1000 in integer seconds). */
static void flow_key(const struct dip_flow *f, struct printed pr, char *key, size_t cap)
{
    char s[DIP_ADDR_TEXT_MAX], d[DIP_ADDR_TEXT_MAX];
    int n = snprintf(key, cap, "%s|%s|%u|%u|%u|%u|%u|%u|%u", addr_text(&f->src, s), addr_text(&f->dst, d), f->sport,
                     f->dport, f->proto, f->tos, f->in, f->out, f->proto == 6 ? f->flags : 0u);
    if (pr.mask) n += snprintf(key + n, cap - (size_t)n, "|%u|%u", f->smask, f->dmask);
    if (pr.ts)
        snprintf(key + n, cap - (size_t)n, "|%" PRIu64 "|%" PRIu64, (f->first + 999) / 1000, (f->last + 999) / 1000);
}

static int json_key(const char *line, struct printed pr, char *key, size_t cap)
{
    char v[16][128];
    static const char *const names[] = { "ip_src", "ip_dst", "port_src", "port_dst", "ip_proto", "tos",
                                         "iface_in", "iface_out", "tcp_flags", "mask_src", "mask_dst",
                                         "timestamp_start", "timestamp_end" };
    size_t want = 9 + (pr.mask ? 2 : 0);
    for (size_t i = 0; i < 13; i++) {
        if (i >= 9 && i < 11 && !pr.mask) continue;
        if (i >= 11 && !pr.ts) continue;
        if (!json_get(line, names[i], v[i], sizeof v[i])) return 0;
    }
    (void)want;
    struct dip_addr s, d;
    char st[DIP_ADDR_TEXT_MAX], dt[DIP_ADDR_TEXT_MAX];
    if (dip_addr_parse(v[0], strlen(v[0]), &s) || dip_addr_parse(v[1], strlen(v[1]), &d)) return 0;
    int n = snprintf(key, cap, "%s|%s|%s|%s|%u|%s|%s|%s|%u", addr_text(&s, st), addr_text(&d, dt), v[2], v[3],
                     proto_number(v[4]), v[5], v[6], v[7], tcp_flag_bits(v[8]));
    if (pr.mask) n += snprintf(key + n, cap - (size_t)n, "|%s|%s", v[9], v[10]);
    if (pr.ts) snprintf(key + n, cap - (size_t)n, "|%lld|%lld", atoll(v[11]), atoll(v[12]));
    return 1;
}

static void compare_pmacct(const char *folder)
{
    char test[256];
    snprintf(test, sizeof test, "pmacct/%s", folder);
    if (!have_realflows(test)) return;
    struct dip_collect *c = new_collector();
    struct flows fl = { 0 };
    const char *files[] = { "traffic-00.pcap", NULL };
    CU_ASSERT(feed(c, test, files, &fl) > 0);
    assert_clean(c);

    char path[1024], line[8192];
    snprintf(path, sizeof path, "%s/%s/output-flow-00.json", realflows_dir(), test);
    FILE *jf = fopen(path, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(jf);
    struct agg *want = calloc(4096, sizeof *want), *got = calloc(fl.n + 1, sizeof *got);
    size_t nwant = 0;
    struct printed pr = { -1, -1 };
    while (fgets(line, sizeof line, jf) && nwant < 4096) {
        char v[64];
        if (pr.mask < 0) {
            pr.mask = json_get(line, "mask_src", v, sizeof v);
            pr.ts = json_get(line, "timestamp_start", v, sizeof v);
        }
        CU_ASSERT_FATAL(json_key(line, pr, want[nwant].key, sizeof want[nwant].key));
        CU_ASSERT_FATAL(json_get(line, "packets", v, sizeof v));
        want[nwant].packets = strtoull(v, NULL, 10);
        CU_ASSERT_FATAL(json_get(line, "bytes", v, sizeof v));
        want[nwant].bytes = strtoull(v, NULL, 10);
        nwant++;
    }
    fclose(jf);
    for (size_t i = 0; i < fl.n; i++) {
        /* pmacct renormalises sampled counters; we keep the raw ones and the rate */
        uint64_t rate = (fl.v[i].present & DIP_F_SAMPLING) ? fl.v[i].sampling : 1;
        flow_key(&fl.v[i], pr, got[i].key, sizeof got[i].key);
        got[i].packets = fl.v[i].packets * rate;
        got[i].bytes = fl.v[i].bytes * rate;
    }
    nwant = agg_merge(want, nwant);
    size_t ngot = agg_merge(got, fl.n);
    CU_ASSERT_EQUAL(ngot, nwant);
    for (size_t i = 0; i < nwant && i < ngot; i++) {
        if (strcmp(want[i].key, got[i].key) || want[i].packets != got[i].packets || want[i].bytes != got[i].bytes)
            printf("\n  %s: pmacct %s %" PRIu64 " pkts %" PRIu64 " bytes, we %s %" PRIu64 " pkts %" PRIu64 " bytes\n",
                   folder, want[i].key, want[i].packets, want[i].bytes, got[i].key, got[i].packets, got[i].bytes);
        CU_ASSERT_STRING_EQUAL(want[i].key, got[i].key);
        CU_ASSERT_EQUAL(want[i].packets, got[i].packets);
        CU_ASSERT_EQUAL(want[i].bytes, got[i].bytes);
    }
    free(want);
    free(got);
    free(fl.v);
    dip_collect_free(c);
}

static void test_pmacct_ipfix_cisco_matches_pmacct_output(void) { compare_pmacct("100-IPFIXv10-CISCO"); }
static void test_pmacct_v9_cisco_asr9k_matches_pmacct_output(void) { compare_pmacct("101-NFv9-CISCO-cust_primitives"); }
static void test_pmacct_ipfix_ipv6_sampling_option_matches_pmacct_output(void)
{
    compare_pmacct("104-IPFIXv10-IPv6-CISCO-sampling_option");
}
static void test_pmacct_ipfix_huawei_matches_pmacct_output(void) { compare_pmacct("106-IPFIXv10-HUAWEI-vrf_name"); }

/* ---- Akvorado's captures, cross-checked against tshark ----
 * Expected values below were read from
 *   mergecap -a -w all.pcap <files in the order fed>;
 *   tshark -r all.pcap -d udp.port==PORT,cflow -V
 * (times: header CurrentSecs*1000 - (SysUptime - StartTime) in ms). */

static const struct dip_flow *find_src(const struct flows *fl, const char *src, uint16_t sport)
{
    struct dip_addr a;
    if (dip_addr_parse(src, strlen(src), &a)) return NULL;
    for (size_t i = 0; i < fl->n; i++)
        if (!dip_addr_cmp(&fl->v[i].src, &a) && fl->v[i].sport == sport) return &fl->v[i];
    return NULL;
}

static void assert_addr(const struct dip_addr *a, const char *want)
{
    char buf[DIP_ADDR_TEXT_MAX];
    CU_ASSERT_STRING_EQUAL(addr_text(a, buf), want);
}

static void test_akvorado_netflow_v5_matches_tshark(void)
{
    if (!have_realflows("akvorado/nfv5")) return;
    struct dip_collect *c = new_collector();
    struct flows fl = { 0 };
    const char *files[] = { "nfv5.pcap", NULL };
    CU_ASSERT_EQUAL(feed(c, "akvorado", files, &fl), 1);
    assert_clean(c);
    CU_ASSERT_EQUAL_FATAL(fl.n, 29); /* tshark: "pdu 1/29" */
    const struct dip_flow *f = &fl.v[0];
    /* tshark pdu 1: SrcAddr 161.202.212.212 DstAddr 202.152.70.24 NextHop 61.6.255.150 InputInt 117
     * OutputInt 86 Packets 1 Octets 133 SrcPort 30104 DstPort 11963 TCP Flags 0x18 Protocol 6
     * SrcAS 36351 DstAS 10101 SrcMask 19 DstMask 24 */
    assert_addr(&f->src, "161.202.212.212");
    assert_addr(&f->dst, "202.152.70.24");
    assert_addr(&f->nexthop, "61.6.255.150");
    CU_ASSERT_EQUAL(f->in, 117);
    CU_ASSERT_EQUAL(f->out, 86);
    CU_ASSERT_EQUAL(f->packets, 1);
    CU_ASSERT_EQUAL(f->bytes, 133);
    CU_ASSERT_EQUAL(f->sport, 30104);
    CU_ASSERT_EQUAL(f->dport, 11963);
    CU_ASSERT_EQUAL(f->flags, 0x18);
    CU_ASSERT_EQUAL(f->proto, 6);
    CU_ASSERT_EQUAL(f->srcas, 36351);
    CU_ASSERT_EQUAL(f->dstas, 10101);
    CU_ASSERT_EQUAL(f->smask, 19);
    CU_ASSERT_EQUAL(f->dmask, 24);
    struct dip_collect_stats s;
    CU_ASSERT_EQUAL(dip_collect_stats_get(c, 0, &s), DIP_OK);
    CU_ASSERT_EQUAL(s.records, 29);
    CU_ASSERT_EQUAL(s.lost_records, 0);
    free(fl.v);
    dip_collect_free(c);
}

static void test_akvorado_v9_options_sampling_applies_to_data(void)
{
    if (!have_realflows("akvorado/options+data")) return;
    struct dip_collect *c = new_collector();
    struct flows fl = { 0 };
    const char *files[] = { "options-template.pcap", "options-data.pcap", "template.pcap", "data.pcap", NULL };
    CU_ASSERT_EQUAL(feed(c, "akvorado", files, &fl), 4);
    assert_clean(c);
    CU_ASSERT_EQUAL_FATAL(fl.n, 4);
    /* tshark: options records SamplerID 1, SamplerRandomInterval 30000; data Flow 1: Packets 1
     * Octets 1500 SrcAddr 198.38.121.178 DstAddr 91.170.143.87 InputInt 335 OutputInt 450
     * SrcPort 443 DstPort 19624 BGPNextHop 194.149.174.63 SrcMask 24 DstMask 14 TCP Flags 0x10
     * SamplerID 1; SysUptime 944951.609 s, CurrentSecs 1647285928, StartTime 944948.659 s */
    const struct dip_flow *f = find_src(&fl, "198.38.121.178", 443);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    assert_addr(&f->dst, "91.170.143.87");
    CU_ASSERT_EQUAL(f->dport, 19624);
    CU_ASSERT_EQUAL(f->packets, 1);
    CU_ASSERT_EQUAL(f->bytes, 1500);
    CU_ASSERT_EQUAL(f->in, 335);
    CU_ASSERT_EQUAL(f->out, 450);
    CU_ASSERT_EQUAL(f->smask, 24);
    CU_ASSERT_EQUAL(f->dmask, 14);
    CU_ASSERT_EQUAL(f->flags, 0x10);
    assert_addr(&f->nexthop, "194.149.174.63");
    CU_ASSERT_EQUAL(f->first, 1647285928000ull - (944951609ull - 944948659ull));
    CU_ASSERT_EQUAL(f->sampling, 30000);
    CU_ASSERT(f->present & DIP_F_SAMPLING);
    free(fl.v);
    dip_collect_free(c);
}

static void test_akvorado_v9_multiple_sampling_rates_by_sampler_id(void)
{
    if (!have_realflows("akvorado/multiplesamplingrates")) return;
    struct dip_collect *c = new_collector();
    struct flows fl = { 0 };
    const char *files[] = { "multiplesamplingrates-options-template.pcap", "multiplesamplingrates-options-data.pcap",
                            "multiplesamplingrates-template.pcap", "multiplesamplingrates-data.pcap", NULL };
    CU_ASSERT_EQUAL(feed(c, "akvorado", files, &fl), 4);
    assert_clean(c);
    /* tshark: sampler 1 = 1 out of 2000, sampler 2 = 1 out of 4000; data Flow 1 (ffff::68, 18
     * packets, 1348 octets) names sampler 2, Flow 2 (ffff::5a, 4 packets, 579 octets) sampler 1. */
    const struct dip_flow *f1 = find_src(&fl, "ffff::68", 443), *f2 = find_src(&fl, "ffff::5a", 2121);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f2);
    CU_ASSERT_EQUAL(f1->packets, 18);
    CU_ASSERT_EQUAL(f1->bytes, 1348);
    CU_ASSERT_EQUAL(f1->sampling, 4000);
    CU_ASSERT_EQUAL(f2->packets, 4);
    CU_ASSERT_EQUAL(f2->bytes, 579);
    CU_ASSERT_EQUAL(f2->sampling, 2000);
    for (size_t i = 0; i < fl.n; i++) CU_ASSERT(fl.v[i].sampling == 2000 || fl.v[i].sampling == 4000);
    free(fl.v);
    dip_collect_free(c);
}

static void test_akvorado_v9_icmp_type_code_in_dport(void)
{
    if (!have_realflows("akvorado/icmp")) return;
    struct dip_collect *c = new_collector();
    struct flows fl = { 0 };
    const char *files[] = { "icmp-template.pcap", "icmp-data.pcap", NULL };
    CU_ASSERT_EQUAL(feed(c, "akvorado", files, &fl), 2);
    assert_clean(c);
    CU_ASSERT_EQUAL_FATAL(fl.n, 4);
    /* tshark: ICMPv6 2001:db8:: -> 2001:db8::1 type 128 (echo request), the reply type 129;
     * ICMP 203.0.113.4 -> 203.0.113.5 type 8 code 0, the reply type 0 code 0. */
    int seen = 0;
    for (size_t i = 0; i < fl.n; i++) {
        char s[DIP_ADDR_TEXT_MAX];
        addr_text(&fl.v[i].src, s);
        if (!strcmp(s, "2001:db8::")) { CU_ASSERT_EQUAL(fl.v[i].dport, 128 * 256); CU_ASSERT_EQUAL(fl.v[i].proto, 58); seen |= 1; }
        if (!strcmp(s, "2001:db8::1")) { CU_ASSERT_EQUAL(fl.v[i].dport, 129 * 256); seen |= 2; }
        if (!strcmp(s, "203.0.113.4")) { CU_ASSERT_EQUAL(fl.v[i].dport, 8 * 256); CU_ASSERT_EQUAL(fl.v[i].proto, 1); seen |= 4; }
        if (!strcmp(s, "203.0.113.5")) { CU_ASSERT_EQUAL(fl.v[i].dport, 0); seen |= 8; }
    }
    CU_ASSERT_EQUAL(seen, 15);
    free(fl.v);
    dip_collect_free(c);
}

static void test_akvorado_ipfixprobe_matches_tshark(void)
{
    if (!have_realflows("akvorado/ipfixprobe")) return;
    struct dip_collect *c = new_collector();
    struct flows fl = { 0 };
    const char *files[] = { "ipfixprobe-templates.pcap", "ipfixprobe-data.pcap", NULL };
    CU_ASSERT_EQUAL(feed(c, "akvorado", files, &fl), 2);
    assert_clean(c);
    CU_ASSERT_EQUAL_FATAL(fl.n, 4);
    /* tshark: 10.10.1.4:1470 -> 74.53.140.153:25 TCP, 28 packets, 21673 octets, flags 0x1b,
     * flowStartMilliseconds 2009-10-05 06:06:07.529 UTC, flowEndMilliseconds 06:06:15.106 */
    const struct dip_flow *f = find_src(&fl, "10.10.1.4", 1470);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    assert_addr(&f->dst, "74.53.140.153");
    CU_ASSERT_EQUAL(f->dport, 25);
    CU_ASSERT_EQUAL(f->proto, 6);
    CU_ASSERT_EQUAL(f->packets, 28);
    CU_ASSERT_EQUAL(f->bytes, 21673);
    CU_ASSERT_EQUAL(f->flags, 0x1b);
    CU_ASSERT_EQUAL(f->first, 1254722767529ull);
    CU_ASSERT_EQUAL(f->last, 1254722775106ull);
    free(fl.v);
    dip_collect_free(c);
}

static void test_akvorado_v9_data_and_templates_in_one_capture(void)
{
    if (!have_realflows("akvorado/data+templates")) return;
    struct dip_collect *c = new_collector();
    struct flows fl = { 0 };
    const char *files[] = { "data+templates.pcap", NULL };
    CU_ASSERT_EQUAL(feed(c, "akvorado", files, &fl), 1);
    assert_clean(c);
    CU_ASSERT(fl.n > 0);
    for (size_t i = 0; i < fl.n; i++) CU_ASSERT_EQUAL(fl.v[i].sampling, 100); /* tshark: sampling options, 1 out of 100 */
    free(fl.v);
    dip_collect_free(c);
}

static void test_akvorado_juniper_packet_sample_decodes(void)
{
    if (!have_realflows("akvorado/juniper-cpid")) return;
    struct dip_collect *c = new_collector();
    struct flows fl = { 0 };
    const char *files[] = { "juniper-cpid-template.pcap", "juniper-cpid-data.pcap", NULL };
    CU_ASSERT_EQUAL(feed(c, "akvorado", files, &fl), 2);
    assert_clean(c);
    CU_ASSERT_EQUAL_FATAL(fl.n, 1);
    /* tshark: INPUT_SNMP 737, OUTPUT_SNMP 0, Data Link Frame Size 118, Data Link Frame Section:
     * Ethernet, IPv6 fc30:2200:1b::f -> fc30:2200:23:e009::, Next Header IPIP (4), Traffic Class 0;
     * the Juniper enterprise fields are skipped */
    CU_ASSERT_EQUAL(fl.v[0].in, 737);
    CU_ASSERT_EQUAL(fl.v[0].out, 0);
    assert_addr(&fl.v[0].src, "fc30:2200:1b::f");
    assert_addr(&fl.v[0].dst, "fc30:2200:23:e009::");
    CU_ASSERT_EQUAL(fl.v[0].proto, 4);
    CU_ASSERT_EQUAL(fl.v[0].packets, 1);
    CU_ASSERT_EQUAL(fl.v[0].bytes, 118);
    free(fl.v);
    dip_collect_free(c);
}

int dip_suite_collect_real(void)
{
    CU_pSuite s = CU_add_suite("collect_real", NULL, NULL);
    if (!s) return -1;
    CU_add_test(s, "test_pmacct_ipfix_cisco_matches_pmacct_output", test_pmacct_ipfix_cisco_matches_pmacct_output);
    CU_add_test(s, "test_pmacct_v9_cisco_asr9k_matches_pmacct_output", test_pmacct_v9_cisco_asr9k_matches_pmacct_output);
    CU_add_test(s, "test_pmacct_ipfix_ipv6_sampling_option_matches_pmacct_output",
                test_pmacct_ipfix_ipv6_sampling_option_matches_pmacct_output);
    CU_add_test(s, "test_pmacct_ipfix_huawei_matches_pmacct_output", test_pmacct_ipfix_huawei_matches_pmacct_output);
    CU_add_test(s, "test_akvorado_netflow_v5_matches_tshark", test_akvorado_netflow_v5_matches_tshark);
    CU_add_test(s, "test_akvorado_v9_options_sampling_applies_to_data", test_akvorado_v9_options_sampling_applies_to_data);
    CU_add_test(s, "test_akvorado_v9_multiple_sampling_rates_by_sampler_id",
                test_akvorado_v9_multiple_sampling_rates_by_sampler_id);
    CU_add_test(s, "test_akvorado_v9_icmp_type_code_in_dport", test_akvorado_v9_icmp_type_code_in_dport);
    CU_add_test(s, "test_akvorado_ipfixprobe_matches_tshark", test_akvorado_ipfixprobe_matches_tshark);
    CU_add_test(s, "test_akvorado_v9_data_and_templates_in_one_capture", test_akvorado_v9_data_and_templates_in_one_capture);
    CU_add_test(s, "test_akvorado_juniper_packet_sample_decodes", test_akvorado_juniper_packet_sample_decodes);
    return 0;
}
