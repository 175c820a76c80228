/* test_collect_ipfix.c - the IPFIX decoder (RFC 7011/7012) on hand-built
 * messages: every time encoding, variable-length and enterprise elements,
 * reduced-size encoding, withdrawals, options (sampling, system init time),
 * sequence accounting, malformed input, stream framing and files. Every
 * message fed through run_feed() is also fed truncated at every byte. */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "collect_check.h"

#define E 1700000000u
#define NTP_OFFSET 2208988800ull

static const char *addr_str(const struct dip_addr *a)
{
    static char buf[4][DIP_ADDR_TEXT_MAX];
    static int i;
    i = (i + 1) % 4;
    dip_addr_format(a, buf[i]);
    return buf[i];
}

/* The 20-field template also used by the benchmark. */
static const uint16_t t20[] = { 8, 4, 12, 4, 7, 2, 11, 2, 4, 1, 5, 1, 6, 1, 10, 4, 14, 4, 2, 8,
                                1, 8, 152, 8, 153, 8, 16, 4, 17, 4, 9, 1, 13, 1, 15, 4, 61, 1, 136, 1 };

static void rec20(struct pkt *p, uint8_t host, uint16_t sport)
{
    pk_ip4(p, 10, 0, 0, host); pk_ip4(p, 10, 1, 0, 1); pk_u16(p, sport); pk_u16(p, 53); pk_u8(p, 17);
    pk_u8(p, 0x28); pk_u8(p, 0); pk_u32(p, 11); pk_u32(p, 12); pk_u64(p, 2); pk_u64(p, 150);
    pk_u64(p, (uint64_t)E * 1000 - 700); pk_u64(p, (uint64_t)E * 1000 - 200); pk_u32(p, 64512); pk_u32(p, 15169);
    pk_u8(p, 8); pk_u8(p, 24); pk_ip4(p, 10, 0, 0, 254); pk_u8(p, 0); pk_u8(p, 3);
}

static void test_ipfix_template_and_data_decode_all_fields(void)
{
    struct run r;
    struct pkt p;
    run_start(&r, NULL);
    ipfix_begin(&p, E, 0, 99);
    set_begin(&p, 2);
    tmpl_rec(&p, 256, 20, t20);
    set_end(&p);
    set_begin(&p, 256);
    rec20(&p, 1, 4001);
    rec20(&p, 2, 4002);
    set_end(&p);
    ipfix_end(&p);
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_OK);
    CU_ASSERT_EQUAL_FATAL(r.fl.n, 2);
    const struct dip_flow *f = &r.fl.v[1];
    CU_ASSERT_STRING_EQUAL(addr_str(&f->src), "10.0.0.2");
    CU_ASSERT_STRING_EQUAL(addr_str(&f->dst), "10.1.0.1");
    CU_ASSERT_EQUAL(f->sport, 4002);
    CU_ASSERT_EQUAL(f->dport, 53);
    CU_ASSERT_EQUAL(f->proto, 17);
    CU_ASSERT_EQUAL(f->tos, 0x28);
    CU_ASSERT_EQUAL(f->in, 11);
    CU_ASSERT_EQUAL(f->out, 12);
    CU_ASSERT_EQUAL(f->packets, 2);
    CU_ASSERT_EQUAL(f->bytes, 150);
    CU_ASSERT_EQUAL(f->first, (uint64_t)E * 1000 - 700);
    CU_ASSERT_EQUAL(f->last, (uint64_t)E * 1000 - 200);
    CU_ASSERT_EQUAL(f->srcas, 64512);
    CU_ASSERT_EQUAL(f->dstas, 15169);
    CU_ASSERT_EQUAL(f->smask, 8);
    CU_ASSERT_EQUAL(f->dmask, 24);
    CU_ASSERT_STRING_EQUAL(addr_str(&f->nexthop), "10.0.0.254");
    CU_ASSERT_EQUAL(f->domain, 99);
    CU_ASSERT_EQUAL(run_stats(&r, 10, 99).records, 2);
    run_end(&r);
}

/* One flow with the given start/end elements (8 or 4 bytes each). */
static void time_case(uint16_t start_ie, uint16_t end_ie, uint16_t len, uint64_t start, uint64_t end,
                      uint64_t want_first, uint64_t want_last)
{
    struct run r;
    struct pkt p;
    run_start(&r, NULL);
    ipfix_begin(&p, E, 0, 1);
    set_begin(&p, 2);
    const uint16_t f[] = { 8, 4, start_ie, len, end_ie, len };
    tmpl_rec(&p, 300, 3, f);
    set_end(&p);
    set_begin(&p, 300);
    pk_ip4(&p, 10, 0, 0, 1);
    if (len == 8) { pk_u64(&p, start); pk_u64(&p, end); }
    else { pk_u32(&p, (uint32_t)start); pk_u32(&p, (uint32_t)end); }
    set_end(&p);
    ipfix_end(&p);
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_OK);
    CU_ASSERT_EQUAL_FATAL(r.fl.n, 1);
    if (r.fl.v[0].first != want_first || r.fl.v[0].last != want_last)
        printf("\n  elements %u/%u: got %llu..%llu\n", start_ie, end_ie, (unsigned long long)r.fl.v[0].first,
               (unsigned long long)r.fl.v[0].last);
    CU_ASSERT_EQUAL(r.fl.v[0].first, want_first);
    CU_ASSERT_EQUAL(r.fl.v[0].last, want_last);
    run_end(&r);
}

static void test_ipfix_every_time_encoding_gives_epoch_milliseconds(void)
{
    const uint64_t ms = (uint64_t)E * 1000;
    const uint64_t half = 1ull << 31; /* 0.5 s as an NTP fraction */
    time_case(150, 151, 4, E - 10, E - 5, ms - 10000, ms - 5000);             /* flowStart/EndSeconds */
    time_case(152, 153, 8, ms - 1234, ms - 34, ms - 1234, ms - 34);           /* Milliseconds */
    time_case(154, 155, 8, ((E - 2 + NTP_OFFSET) << 32) | half,               /* Microseconds (NTP) */
              ((E - 1 + NTP_OFFSET) << 32), ms - 1500, ms - 1000);
    time_case(156, 157, 8, ((E - 3 + NTP_OFFSET) << 32) | (half >> 1),        /* Nanoseconds (NTP) */
              ((E + NTP_OFFSET) << 32), ms - 2750, ms);
    time_case(158, 159, 4, 2500000, 1000, ms - 2500, ms - 1);                 /* DeltaMicroseconds */
    time_case(152, 161, 8, ms - 5000, 3000, ms - 5000, ms - 2000);            /* start + durationMs */
    time_case(162, 153, 8, 4000000, ms - 1000, ms - 5000, ms - 1000);         /* durationUs + end */
}

static void test_ipfix_sysuptime_times_use_system_init_time_from_options(void)
{
    struct run r;
    struct pkt p;
    const uint64_t init = (uint64_t)E * 1000 - 86400000; /* booted a day ago */
    run_start(&r, NULL);
    ipfix_begin(&p, E, 0, 1);
    set_begin(&p, 3); /* options template 400: scope observationDomainId, systemInitTimeMilliseconds */
    pk_u16(&p, 400); pk_u16(&p, 2); pk_u16(&p, 1);
    pk_u16(&p, 149); pk_u16(&p, 4); pk_u16(&p, 160); pk_u16(&p, 8);
    set_pad(&p);
    set_end(&p);
    set_begin(&p, 400);
    pk_u32(&p, 1); pk_u64(&p, init);
    set_end(&p);
    set_begin(&p, 2);
    const uint16_t f[] = { 8, 4, 22, 4, 21, 4 }; /* flowStartSysUpTime, flowEndSysUpTime */
    tmpl_rec(&p, 401, 3, f);
    set_end(&p);
    set_begin(&p, 401);
    pk_ip4(&p, 10, 0, 0, 1); pk_u32(&p, 1000); pk_u32(&p, 2500);
    set_end(&p);
    ipfix_end(&p);
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_OK);
    CU_ASSERT_EQUAL_FATAL(r.fl.n, 1);
    CU_ASSERT_EQUAL(r.fl.v[0].first, init + 1000);
    CU_ASSERT_EQUAL(r.fl.v[0].last, init + 2500);
    CU_ASSERT_EQUAL(run_stats(&r, 10, 1).option_records, 1);
    run_end(&r);
}

static void test_ipfix_sysuptime_times_use_system_init_time_in_record(void)
{
    struct run r;
    struct pkt p;
    const uint64_t init = (uint64_t)E * 1000 - 5000;
    run_start(&r, NULL);
    ipfix_begin(&p, E, 0, 1);
    set_begin(&p, 2);
    const uint16_t f[] = { 8, 4, 160, 8, 22, 4, 21, 4 };
    tmpl_rec(&p, 402, 4, f);
    set_end(&p);
    set_begin(&p, 402);
    pk_ip4(&p, 10, 0, 0, 1); pk_u64(&p, init); pk_u32(&p, 100); pk_u32(&p, 200);
    set_end(&p);
    ipfix_end(&p);
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_OK);
    CU_ASSERT_EQUAL_FATAL(r.fl.n, 1);
    CU_ASSERT_EQUAL(r.fl.v[0].first, init + 100);
    CU_ASSERT_EQUAL(r.fl.v[0].last, init + 200);
    run_end(&r);
}

static void test_ipfix_variable_length_fields_decode_short_and_long_forms(void)
{
    struct run r;
    struct pkt p;
    run_start(&r, NULL);
    ipfix_begin(&p, E, 0, 1);
    set_begin(&p, 2);
    /* src, applicationName (96, variable), dst, a 2nd variable field (315), packets */
    const uint16_t f[] = { 8, 4, 96, 0xffff, 12, 4, 315, 0xffff, 2, 4 };
    tmpl_rec(&p, 500, 5, f);
    set_end(&p);
    set_begin(&p, 500);
    pk_ip4(&p, 10, 0, 0, 1); pk_u8(&p, 3); pk_bytes(&p, "dns", 3); pk_ip4(&p, 10, 0, 0, 2);
    pk_u8(&p, 255); pk_u16(&p, 300);
    for (int i = 0; i < 300; i++) pk_u8(&p, (uint8_t)i);
    pk_u32(&p, 5);
    pk_ip4(&p, 10, 0, 0, 3); pk_u8(&p, 0); pk_ip4(&p, 10, 0, 0, 4); pk_u8(&p, 0); pk_u32(&p, 6);
    set_end(&p);
    ipfix_end(&p);
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_OK);
    CU_ASSERT_EQUAL_FATAL(r.fl.n, 2);
    CU_ASSERT_STRING_EQUAL(addr_str(&r.fl.v[0].dst), "10.0.0.2");
    CU_ASSERT_EQUAL(r.fl.v[0].packets, 5);
    CU_ASSERT_STRING_EQUAL(addr_str(&r.fl.v[1].src), "10.0.0.3");
    CU_ASSERT_STRING_EQUAL(addr_str(&r.fl.v[1].dst), "10.0.0.4");
    CU_ASSERT_EQUAL(r.fl.v[1].packets, 6);
    run_end(&r);
}

static void test_ipfix_variable_length_overrun_is_malformed_without_records(void)
{
    struct run r;
    struct pkt p;
    run_start(&r, NULL);
    ipfix_begin(&p, E, 0, 1);
    set_begin(&p, 2);
    const uint16_t f[] = { 8, 4, 96, 0xffff };
    tmpl_rec(&p, 500, 2, f);
    set_end(&p);
    set_begin(&p, 500);
    pk_ip4(&p, 10, 0, 0, 1); pk_u8(&p, 2); pk_bytes(&p, "ok", 2);
    pk_ip4(&p, 10, 0, 0, 2); pk_u8(&p, 200); pk_bytes(&p, "short", 5); /* says 200 bytes */
    set_end(&p);
    ipfix_end(&p);
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_EINVAL);
    CU_ASSERT_EQUAL(r.fl.n, 0);
    CU_ASSERT(strstr(run_stats(&r, 10, 1).last_malformed_reason, "overruns") != NULL);
    run_end(&r);
}

static void test_ipfix_enterprise_fields_skipped_by_length(void)
{
    struct run r;
    struct pkt p;
    run_start(&r, NULL);
    ipfix_begin(&p, E, 0, 1);
    set_begin(&p, 2);
    pk_u16(&p, 600); pk_u16(&p, 4);
    pk_u16(&p, 8); pk_u16(&p, 4);
    pk_u16(&p, 0x8000 | 8); pk_u16(&p, 6); pk_u32(&p, 2636);      /* enterprise element 8: not an address */
    pk_u16(&p, 0x8000 | 1); pk_u16(&p, 0xffff); pk_u32(&p, 29305); /* variable-length enterprise element */
    pk_u16(&p, 2); pk_u16(&p, 4);
    set_end(&p);
    set_begin(&p, 600);
    pk_ip4(&p, 10, 0, 0, 1); pk_bytes(&p, "\x01\x02\x03\x04\x05\x06", 6); pk_u8(&p, 2); pk_u16(&p, 0xbeef);
    pk_u32(&p, 9);
    set_end(&p);
    ipfix_end(&p);
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_OK);
    CU_ASSERT_EQUAL_FATAL(r.fl.n, 1);
    CU_ASSERT_STRING_EQUAL(addr_str(&r.fl.v[0].src), "10.0.0.1");
    CU_ASSERT_EQUAL(r.fl.v[0].packets, 9);
    CU_ASSERT_EQUAL(r.fl.v[0].bytes, 0);
    run_end(&r);
}

static void test_ipfix_reduced_size_encoding(void)
{
    struct run r;
    struct pkt p;
    run_start(&r, NULL);
    ipfix_begin(&p, E, 0, 1);
    set_begin(&p, 2);
    const uint16_t f[] = { 8, 4, 1, 3, 2, 1, 10, 2, 16, 2, 6, 2 }; /* octets 3 B, packets 1 B, ... */
    tmpl_rec(&p, 700, 6, f);
    set_end(&p);
    set_begin(&p, 700);
    pk_ip4(&p, 10, 0, 0, 1); pk_u8(&p, 0x01); pk_u16(&p, 0x0203); pk_u8(&p, 200); pk_u16(&p, 513);
    pk_u16(&p, 65000); pk_u16(&p, 0x0112); /* 2-byte tcpControlBits: low byte is the TCP flags */
    set_pad(&p);
    set_end(&p);
    ipfix_end(&p);
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_OK);
    CU_ASSERT_EQUAL_FATAL(r.fl.n, 1);
    CU_ASSERT_EQUAL(r.fl.v[0].bytes, 0x010203);
    CU_ASSERT_EQUAL(r.fl.v[0].packets, 200);
    CU_ASSERT_EQUAL(r.fl.v[0].in, 513);
    CU_ASSERT_EQUAL(r.fl.v[0].srcas, 65000);
    CU_ASSERT_EQUAL(r.fl.v[0].flags, 0x12);
    run_end(&r);
}

static void test_ipfix_ipv6_flow_and_icmpv6_type_code(void)
{
    struct run r;
    struct pkt p;
    static const uint8_t a6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01 };
    static const uint8_t b6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02 };
    run_start(&r, NULL);
    ipfix_begin(&p, E, 0, 1);
    set_begin(&p, 2);
    const uint16_t f[] = { 27, 16, 28, 16, 4, 1, 139, 2, 62, 16, 29, 1, 30, 1 };
    tmpl_rec(&p, 800, 7, f);
    set_end(&p);
    set_begin(&p, 800);
    pk_bytes(&p, a6, 16); pk_bytes(&p, b6, 16); pk_u8(&p, 58); pk_u16(&p, 0x8100); pk_bytes(&p, a6, 16);
    pk_u8(&p, 64); pk_u8(&p, 128);
    set_end(&p);
    const uint16_t g[] = { 8, 4, 12, 4, 4, 1, 176, 1, 177, 1 }; /* icmpTypeIPv4, icmpCodeIPv4 */
    set_begin(&p, 2);
    tmpl_rec(&p, 801, 5, g);
    set_end(&p);
    set_begin(&p, 801);
    pk_ip4(&p, 10, 0, 0, 1); pk_ip4(&p, 10, 0, 0, 2); pk_u8(&p, 1); pk_u8(&p, 3); pk_u8(&p, 1);
    set_end(&p);
    ipfix_end(&p);
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_OK);
    CU_ASSERT_EQUAL_FATAL(r.fl.n, 2);
    CU_ASSERT_STRING_EQUAL(addr_str(&r.fl.v[0].src), "2001:db8::1");
    CU_ASSERT_STRING_EQUAL(addr_str(&r.fl.v[0].dst), "2001:db8::2");
    CU_ASSERT_STRING_EQUAL(addr_str(&r.fl.v[0].nexthop), "2001:db8::1");
    CU_ASSERT_EQUAL(r.fl.v[0].dport, 129 * 256); /* echo reply */
    CU_ASSERT_EQUAL(r.fl.v[0].proto, 58);
    CU_ASSERT_EQUAL(r.fl.v[0].dmask, 128);
    CU_ASSERT_EQUAL(r.fl.v[1].dport, 3 * 256 + 1); /* destination unreachable, host */
    run_end(&r);
}

/* Cisco-style mixed templates carry both families; the unused one is zero. */
static void test_ipfix_mixed_family_template_keeps_the_nonzero_address(void)
{
    static const uint8_t a6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x05 };
    static const uint8_t zero[16] = { 0 };
    struct run r;
    struct pkt p;
    run_start(&r, NULL);
    ipfix_begin(&p, E, 0, 1);
    set_begin(&p, 2);
    const uint16_t f[] = { 8, 4, 27, 16, 12, 4, 28, 16 };   /* v4 before v6 */
    tmpl_rec(&p, 820, 4, f);
    const uint16_t g[] = { 27, 16, 8, 4, 28, 16, 12, 4, 96, 0xffff }; /* v6 first, variable-length */
    tmpl_rec(&p, 821, 5, g);
    set_end(&p);
    set_begin(&p, 820);
    pk_u32(&p, 0); pk_bytes(&p, a6, 16); pk_u32(&p, 0); pk_bytes(&p, a6, 16);      /* an IPv6 flow */
    pk_ip4(&p, 10, 0, 0, 1); pk_bytes(&p, zero, 16); pk_ip4(&p, 10, 0, 0, 2); pk_bytes(&p, zero, 16);
    pk_u32(&p, 0); pk_bytes(&p, zero, 16); pk_u32(&p, 0); pk_bytes(&p, zero, 16);  /* nothing known */
    set_end(&p);
    set_begin(&p, 821);
    pk_bytes(&p, a6, 16); pk_u32(&p, 0); pk_bytes(&p, a6, 16); pk_u32(&p, 0); pk_u8(&p, 0);
    pk_bytes(&p, zero, 16); pk_ip4(&p, 10, 0, 0, 3); pk_bytes(&p, zero, 16); pk_ip4(&p, 10, 0, 0, 4); pk_u8(&p, 0);
    set_end(&p);
    ipfix_end(&p);
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_OK);
    CU_ASSERT_EQUAL_FATAL(r.fl.n, 5);
    CU_ASSERT_STRING_EQUAL(addr_str(&r.fl.v[0].src), "2001:db8::5");
    CU_ASSERT_STRING_EQUAL(addr_str(&r.fl.v[1].src), "10.0.0.1");
    CU_ASSERT_STRING_EQUAL(addr_str(&r.fl.v[1].dst), "10.0.0.2");
    CU_ASSERT_STRING_EQUAL(addr_str(&r.fl.v[2].src), "0.0.0.0");
    CU_ASSERT_STRING_EQUAL(addr_str(&r.fl.v[3].dst), "2001:db8::5");
    CU_ASSERT_STRING_EQUAL(addr_str(&r.fl.v[4].src), "10.0.0.3");
    CU_ASSERT_STRING_EQUAL(addr_str(&r.fl.v[4].dst), "10.0.0.4");
    run_end(&r);
}

/* ---- next hops, and a decoder resets all per-record state ---- */

static const uint8_t bgp6_fe[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xfe };
static const uint8_t no_addr6[16] = { 0 };

/* Kinds of record for the next-hop tests: the record under test carries zero
 * BGP next hops and nothing optional; the others set what it lacks. */
enum nh_kind { NH_ZERO = 0, NH_BGP4, NH_BGP6 };

/* Template 900, fixed length: src dst sport dport proto packets, then
 * bgpNextHopIPv4Address (18) and bgpNextHopIPv6Address (63), no ipNextHop. */
static const uint16_t t900[] = { 8, 4, 12, 4, 7, 2, 11, 2, 4, 1, 2, 4, 18, 4, 63, 16 };

static void rec900(struct pkt *p, enum nh_kind kind)
{
    pk_ip4(p, 10, 0, 0, (uint8_t)(9 + kind)); pk_ip4(p, 10, 1, 0, 1); pk_u16(p, (uint16_t)(4000 + kind));
    pk_u16(p, 53); pk_u8(p, 17); pk_u32(p, 1);
    if (kind == NH_BGP4) pk_ip4(p, 192, 0, 2, 254);
    else pk_u32(p, 0);
    pk_bytes(p, kind == NH_BGP6 ? bgp6_fe : no_addr6, 16);
}

/* Template 910, variable length: the same next hops around an
 * applicationName (96) and a dataLinkFrameSection (315), both variable. */
static const uint16_t t910[] = { 8, 4, 12, 4, 96, 0xffff, 18, 4, 63, 16, 315, 0xffff, 2, 4 };

static void rec910(struct pkt *p, enum nh_kind kind)
{
    static const uint8_t frame[42] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4, 5, 6, 0x08, 0x00, 0x45 };
    pk_ip4(p, 10, 0, 0, (uint8_t)(9 + kind)); pk_ip4(p, 10, 1, 0, 1);
    if (kind == NH_ZERO) pk_u8(p, 0);
    else { pk_u8(p, 3); pk_bytes(p, "dns", 3); }
    if (kind == NH_BGP4) pk_ip4(p, 192, 0, 2, 254);
    else pk_u32(p, 0);
    pk_bytes(p, kind == NH_BGP6 ? bgp6_fe : no_addr6, 16);
    if (kind == NH_ZERO) pk_u8(p, 0);
    else { pk_u8(p, sizeof frame); pk_bytes(p, frame, sizeof frame); }
    pk_u32(p, 1);
}

/* Template 901: a record with every optional field the decoder knows of a
 * flow: ipNextHop and BGP next hop, AS numbers, masks, interfaces, tos,
 * flags, samplingInterval, ICMP type/code, times in milliseconds. */
static const uint16_t t901[] = { 8, 4, 12, 4, 7, 2, 11, 2, 4, 1, 15, 4, 18, 4, 16, 4, 17, 4, 9, 1, 13, 1,
                                 10, 4, 14, 4, 5, 1, 6, 1, 34, 4, 32, 2, 152, 8, 153, 8, 2, 4, 1, 4 };

static void rec901(struct pkt *p)
{
    pk_ip4(p, 10, 9, 9, 9); pk_ip4(p, 10, 8, 8, 8); pk_u16(p, 0); pk_u16(p, 0); pk_u8(p, 1);
    pk_ip4(p, 10, 0, 0, 254); pk_ip4(p, 198, 51, 100, 1); pk_u32(p, 64512); pk_u32(p, 15169); pk_u8(p, 8);
    pk_u8(p, 24); pk_u32(p, 11); pk_u32(p, 12); pk_u8(p, 0x28); pk_u8(p, 0x12); pk_u32(p, 100);
    pk_u16(p, 0x0800); pk_u64(p, (uint64_t)E * 1000 - 700); pk_u64(p, (uint64_t)E * 1000 - 200);
    pk_u32(p, 5); pk_u32(p, 500);
}

static void test_ipfix_zero_bgp_next_hop_leaves_nexthop_out(void)
{
    struct run r;
    struct pkt p;
    run_start(&r, NULL);
    ipfix_begin(&p, E, 0, 1);
    set_begin(&p, 2);
    tmpl_rec(&p, 900, sizeof t900 / sizeof t900[0] / 2, t900);
    set_end(&p);
    set_begin(&p, 900);
    rec900(&p, NH_ZERO);
    rec900(&p, NH_BGP4);
    rec900(&p, NH_BGP6);
    set_end(&p);
    ipfix_end(&p);
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_OK);
    CU_ASSERT_EQUAL_FATAL(r.fl.n, 3);
    char text[1024];
    flow_text(&r.fl.v[0], text, sizeof text);
    CU_ASSERT(!(r.fl.v[0].present & DIP_F_NEXTHOP)); /* both zero: no BGP route, next hop unknown */
    CU_ASSERT(strstr(text, "nexthop=") == NULL);
    CU_ASSERT(r.fl.v[1].present & DIP_F_NEXTHOP);    /* a BGP next hop stands in for ipNextHop */
    CU_ASSERT_STRING_EQUAL(addr_str(&r.fl.v[1].nexthop), "192.0.2.254");
    CU_ASSERT_STRING_EQUAL(addr_str(&r.fl.v[2].nexthop), "2001:db8::fe");
    run_end(&r);
}

/* ipNextHopIPv4Address (15) = 0 is the exporter's own value of the next hop
 * (as in NetFlow v5) and is kept, even beside a BGP next hop. */
static void test_ipfix_zero_ip_next_hop_is_kept_as_written(void)
{
    struct run r;
    struct pkt p;
    run_start(&r, NULL);
    ipfix_begin(&p, E, 0, 1);
    set_begin(&p, 2);
    const uint16_t f[] = { 8, 4, 15, 4, 18, 4 };
    tmpl_rec(&p, 902, 3, f);
    set_end(&p);
    set_begin(&p, 902);
    pk_ip4(&p, 10, 0, 0, 1); pk_u32(&p, 0); pk_ip4(&p, 192, 0, 2, 254);
    set_end(&p);
    ipfix_end(&p);
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_OK);
    CU_ASSERT_EQUAL_FATAL(r.fl.n, 1);
    CU_ASSERT(r.fl.v[0].present & DIP_F_NEXTHOP);
    CU_ASSERT_STRING_EQUAL(addr_str(&r.fl.v[0].nexthop), "0.0.0.0");
    run_end(&r);
}

/* A template layout under test and its record writer. */
struct layout {
    uint16_t id;
    size_t nfields;
    const uint16_t *fields;
    void (*rec)(struct pkt *p, enum nh_kind kind);
};

/* What the decoder sees before the record under test (NH_ZERO). */
enum before { ALONE, AFTER_BGP4_IN_SET, AFTER_BGP6_IN_SET, AFTER_OTHER_TEMPLATE, AFTER_EARLIER_MESSAGE, NBEFORE };

/* Writes the messages of one case into msgs; returns how many. */
static size_t before_case(const struct layout *l, enum before b, struct pkt *msgs)
{
    struct pkt *p = &msgs[0];
    ipfix_begin(p, E, 0, 1);
    set_begin(p, 2);
    tmpl_rec(p, l->id, l->nfields, l->fields);
    tmpl_rec(p, 901, sizeof t901 / sizeof t901[0] / 2, t901);
    set_end(p);
    if (b == AFTER_OTHER_TEMPLATE || b == AFTER_EARLIER_MESSAGE) {
        set_begin(p, 901);
        rec901(p);
        set_end(p);
    }
    if (b == AFTER_EARLIER_MESSAGE) {
        set_begin(p, l->id);
        l->rec(p, NH_BGP4);
        l->rec(p, NH_BGP6);
        set_end(p);
        ipfix_end(p);
        p = &msgs[1];
        ipfix_begin(p, E, 3, 1);
    }
    set_begin(p, l->id);
    if (b == AFTER_BGP4_IN_SET) l->rec(p, NH_BGP4);
    if (b == AFTER_BGP6_IN_SET) l->rec(p, NH_BGP6);
    l->rec(p, NH_ZERO);
    set_end(p);
    ipfix_end(p);
    return b == AFTER_EARLIER_MESSAGE ? 2 : 1;
}

/* Feeds msgs to a fresh collector; writes the XML of the last record. */
static void last_record_text(const struct pkt *msgs, size_t n, char *out, size_t cap)
{
    struct run r;
    run_start(&r, NULL);
    for (size_t i = 0; i < n; i++) CU_ASSERT_EQUAL(run_feed(&r, &msgs[i]), DIP_OK);
    CU_ASSERT_FATAL(r.fl.n > 0);
    flow_text(&r.fl.v[r.fl.n - 1], out, cap);
    run_end(&r);
}

/* The record under test decodes to the same flow whatever came before it. */
static void check_same_record_after_anything(const struct layout *l)
{
    static struct pkt msgs[2];
    char alone[1024], after[1024];
    last_record_text(msgs, before_case(l, ALONE, msgs), alone, sizeof alone);
    for (int b = ALONE + 1; b < NBEFORE; b++) {
        last_record_text(msgs, before_case(l, (enum before)b, msgs), after, sizeof after);
        if (strcmp(after, alone)) printf("\n  template %u, case %d:\n  alone: %s\n  after: %s\n", l->id, b, alone, after);
        CU_ASSERT_STRING_EQUAL(after, alone);
    }
}

static void test_ipfix_fixed_length_decoder_resets_all_per_record_state(void)
{
    const struct layout l = { 900, sizeof t900 / sizeof t900[0] / 2, t900, rec900 };
    check_same_record_after_anything(&l);
}

static void test_ipfix_variable_length_decoder_resets_all_per_record_state(void)
{
    const struct layout l = { 910, sizeof t910 / sizeof t910[0] / 2, t910, rec910 };
    check_same_record_after_anything(&l);
}

static void define_two_templates(struct pkt *p, uint32_t seq)
{
    ipfix_begin(p, E, seq, 1);
    set_begin(p, 2);
    const uint16_t f[] = { 8, 4 };
    tmpl_rec(p, 256, 1, f);
    tmpl_rec(p, 257, 1, f);
    set_end(p);
    set_begin(p, 3);
    pk_u16(p, 258); pk_u16(p, 2); pk_u16(p, 1); pk_u16(p, 302); pk_u16(p, 4); pk_u16(p, 34); pk_u16(p, 4);
    set_pad(p);
    set_end(p);
    ipfix_end(p);
}

static void data_for(struct pkt *p, uint16_t tid, uint32_t seq)
{
    ipfix_begin(p, E, seq, 1);
    set_begin(p, tid);
    pk_ip4(p, 10, 0, 0, 7);
    set_end(p);
    ipfix_end(p);
}

static void test_ipfix_packet_samples_take_addresses_from_sampled_headers(void)
{
    struct run r;
    struct pkt p;
    run_start(&r, NULL);
    ipfix_begin(&p, E, 0, 1);
    set_begin(&p, 2);
    const uint16_t f[] = { 10, 4, 312, 2, 315, 0xffff }; /* dataLinkFrameSize, dataLinkFrameSection */
    tmpl_rec(&p, 810, 3, f);
    const uint16_t g[] = { 313, 28 }; /* ipHeaderPacketSection, fixed 28 bytes */
    tmpl_rec(&p, 811, 1, g);
    set_end(&p);
    set_begin(&p, 810);
    pk_u32(&p, 5); pk_u16(&p, 1514); pk_u8(&p, 14 + 4 + 20 + 4);
    static const uint8_t macs[12] = { 0 };
    pk_bytes(&p, macs, 12); pk_u16(&p, 0x8100); pk_u16(&p, 42); pk_u16(&p, 0x0800); /* 802.1Q, IPv4 */
    pk_u8(&p, 0x45); pk_u8(&p, 0xb8); pk_u16(&p, 1500); pk_u32(&p, 0); pk_u8(&p, 64); pk_u8(&p, 6); pk_u16(&p, 0);
    pk_ip4(&p, 198, 51, 100, 7); pk_ip4(&p, 203, 0, 113, 9); pk_u16(&p, 51000); pk_u16(&p, 443);
    set_end(&p);
    set_begin(&p, 811);
    pk_u8(&p, 0x45); pk_u8(&p, 0); pk_u16(&p, 84); pk_u32(&p, 0); pk_u8(&p, 64); pk_u8(&p, 1); pk_u16(&p, 0);
    pk_ip4(&p, 10, 0, 0, 1); pk_ip4(&p, 10, 0, 0, 2); pk_u8(&p, 8); pk_u8(&p, 0); pk_u16(&p, 0x1234);
    pk_u32(&p, 0);
    set_end(&p);
    ipfix_end(&p);
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_OK);
    CU_ASSERT_EQUAL_FATAL(r.fl.n, 2);
    CU_ASSERT_STRING_EQUAL(addr_str(&r.fl.v[0].src), "198.51.100.7");
    CU_ASSERT_STRING_EQUAL(addr_str(&r.fl.v[0].dst), "203.0.113.9");
    CU_ASSERT_EQUAL(r.fl.v[0].sport, 51000);
    CU_ASSERT_EQUAL(r.fl.v[0].dport, 443);
    CU_ASSERT_EQUAL(r.fl.v[0].proto, 6);
    CU_ASSERT_EQUAL(r.fl.v[0].tos, 0xb8);
    CU_ASSERT_EQUAL(r.fl.v[0].packets, 1);
    CU_ASSERT_EQUAL(r.fl.v[0].bytes, 1514);
    CU_ASSERT_EQUAL(r.fl.v[0].in, 5);
    CU_ASSERT_STRING_EQUAL(addr_str(&r.fl.v[1].src), "10.0.0.1");
    CU_ASSERT_EQUAL(r.fl.v[1].dport, 8 * 256); /* ICMP echo request */
    CU_ASSERT_EQUAL(r.fl.v[1].bytes, 84);
    run_end(&r);
}

static void test_ipfix_template_withdrawal_drops_cached_template(void)
{
    struct run r;
    struct pkt p;
    run_start(&r, NULL);
    r.no_prefix_check = 1;
    define_two_templates(&p, 0);
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_OK);
    ipfix_begin(&p, E, 0, 1);
    set_begin(&p, 2);
    pk_u16(&p, 256); pk_u16(&p, 0); /* withdraw 256 */
    set_end(&p);
    ipfix_end(&p);
    r.no_prefix_check = 0;
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_OK);
    r.no_prefix_check = 1;
    struct dip_collect_stats s = run_stats(&r, 10, 1);
    CU_ASSERT_EQUAL(s.templates, 2);
    CU_ASSERT_EQUAL(s.template_withdrawals, 1);
    data_for(&p, 256, 0);
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_OK);
    CU_ASSERT_EQUAL(r.fl.n, 0); /* no template: buffered */
    data_for(&p, 257, 0);
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_OK);
    CU_ASSERT_EQUAL(r.fl.n, 1);
    run_end(&r);
}

static void test_ipfix_withdraw_all_drops_every_template_of_its_kind(void)
{
    struct run r;
    struct pkt p;
    run_start(&r, NULL);
    r.no_prefix_check = 1;
    define_two_templates(&p, 0);
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_OK);
    ipfix_begin(&p, E, 0, 1);
    set_begin(&p, 2);
    pk_u16(&p, 2); pk_u16(&p, 0); /* all templates, options templates stay */
    set_end(&p);
    ipfix_end(&p);
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_OK);
    CU_ASSERT_EQUAL(run_stats(&r, 10, 1).templates, 1);
    ipfix_begin(&p, E, 0, 1);
    set_begin(&p, 3);
    pk_u16(&p, 3); pk_u16(&p, 0); /* all options templates */
    set_end(&p);
    ipfix_end(&p);
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_OK);
    struct dip_collect_stats s = run_stats(&r, 10, 1);
    CU_ASSERT_EQUAL(s.templates, 0);
    CU_ASSERT_EQUAL(s.template_withdrawals, 3);
    run_end(&r);
}

static void test_ipfix_options_selector_sampling_rates(void)
{
    struct run r;
    struct pkt p;
    run_start(&r, NULL);
    ipfix_begin(&p, E, 0, 1);
    set_begin(&p, 3); /* 900: selectorId; samplingPacketInterval, samplingPacketSpace (RFC 5477) */
    pk_u16(&p, 900); pk_u16(&p, 3); pk_u16(&p, 1);
    pk_u16(&p, 302); pk_u16(&p, 4); pk_u16(&p, 305); pk_u16(&p, 4); pk_u16(&p, 306); pk_u16(&p, 4);
    /* 901: selectorId; samplingSize, samplingPopulation (random n-out-of-N) */
    pk_u16(&p, 901); pk_u16(&p, 3); pk_u16(&p, 1);
    pk_u16(&p, 302); pk_u16(&p, 4); pk_u16(&p, 309); pk_u16(&p, 4); pk_u16(&p, 310); pk_u16(&p, 4);
    set_end(&p);
    set_begin(&p, 900);
    pk_u32(&p, 1); pk_u32(&p, 1); pk_u32(&p, 99); /* 1 packet in 100 */
    set_end(&p);
    set_begin(&p, 901);
    pk_u32(&p, 2); pk_u32(&p, 1); pk_u32(&p, 256);
    set_end(&p);
    set_begin(&p, 2);
    const uint16_t f[] = { 8, 4, 302, 1 };
    tmpl_rec(&p, 902, 2, f);
    const uint16_t g[] = { 8, 4, 50, 2 }; /* samplerRandomInterval in the data record */
    tmpl_rec(&p, 903, 2, g);
    set_end(&p);
    set_begin(&p, 902);
    pk_ip4(&p, 10, 0, 0, 1); pk_u8(&p, 1);
    pk_ip4(&p, 10, 0, 0, 2); pk_u8(&p, 2);
    pk_ip4(&p, 10, 0, 0, 3); pk_u8(&p, 3); /* no such selector: no sampling known */
    set_pad(&p);
    set_end(&p);
    set_begin(&p, 903);
    pk_ip4(&p, 10, 0, 0, 4); pk_u16(&p, 10);
    set_pad(&p);
    set_end(&p);
    ipfix_end(&p);
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_OK);
    CU_ASSERT_EQUAL_FATAL(r.fl.n, 4);
    CU_ASSERT_EQUAL(r.fl.v[0].sampling, 100);
    CU_ASSERT_EQUAL(r.fl.v[1].sampling, 256);
    CU_ASSERT(!(r.fl.v[2].present & DIP_F_SAMPLING));
    CU_ASSERT_EQUAL(r.fl.v[3].sampling, 10);
    run_end(&r);
}

static void test_ipfix_sequence_counts_data_records(void)
{
    struct run r;
    struct pkt p;
    run_start(&r, NULL);
    r.no_prefix_check = 1;
    define_two_templates(&p, 0);
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_OK); /* templates do not advance the sequence */
    ipfix_begin(&p, E, 0, 1);
    set_begin(&p, 256);
    for (int i = 0; i < 5; i++) pk_ip4(&p, 10, 0, 0, (uint8_t)i);
    set_end(&p);
    set_begin(&p, 258); /* options records count too */
    pk_u32(&p, 1); pk_u32(&p, 10);
    set_end(&p);
    ipfix_end(&p);
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_OK);
    data_for(&p, 256, 6);
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_OK);
    CU_ASSERT_EQUAL(run_stats(&r, 10, 1).lost_records, 0);
    data_for(&p, 256, 17); /* expected 7 */
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_OK);
    struct dip_collect_stats s = run_stats(&r, 10, 1);
    CU_ASSERT_EQUAL(s.lost_records, 10);
    CU_ASSERT_EQUAL(s.lost_packets, 0);
    CU_ASSERT_EQUAL(s.records, 7);
    run_end(&r);
}

static void test_ipfix_message_length_that_lies_is_malformed(void)
{
    struct run r;
    struct pkt p;
    run_start(&r, NULL);
    define_two_templates(&p, 0);
    p.b[3] += 8; /* longer than the datagram */
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_EINVAL);
    define_two_templates(&p, 0);
    p.b[3] -= 4; /* shorter than the datagram */
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_EINVAL);
    struct dip_collect_stats s = run_stats(&r, 10, 1);
    CU_ASSERT_EQUAL(s.malformed, 2);
    CU_ASSERT_EQUAL(s.templates, 0);
    CU_ASSERT_EQUAL(s.last_malformed_offset, 2);
    run_end(&r);
}

static void test_ipfix_zero_length_and_reserved_sets_are_malformed(void)
{
    struct run r;
    struct pkt p;
    run_start(&r, NULL);
    ipfix_begin(&p, E, 0, 1);
    pk_u16(&p, 256); pk_u16(&p, 0); pk_u32(&p, 0);
    ipfix_end(&p);
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_EINVAL);
    CU_ASSERT_EQUAL(run_stats(&r, 10, 1).last_malformed_offset, 16);
    ipfix_begin(&p, E, 0, 1);
    set_begin(&p, 7);
    pk_u32(&p, 0);
    set_end(&p);
    ipfix_end(&p);
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_EINVAL);
    CU_ASSERT(strstr(run_stats(&r, 10, 1).last_malformed_reason, "reserved") != NULL);
    CU_ASSERT_EQUAL(run_stats(&r, 10, 1).malformed, 2);
    run_end(&r);
}

static void test_ipfix_bad_templates_are_malformed_and_not_cached(void)
{
    struct run r;
    struct pkt p;
    run_start(&r, NULL);
    ipfix_begin(&p, E, 0, 1); /* options template with scope count 0 */
    set_begin(&p, 3);
    pk_u16(&p, 300); pk_u16(&p, 1); pk_u16(&p, 0); pk_u16(&p, 8); pk_u16(&p, 4);
    set_pad(&p);
    set_end(&p);
    ipfix_end(&p);
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_EINVAL);
    ipfix_begin(&p, E, 0, 1); /* a template whose field list is cut short by its set */
    set_begin(&p, 2);
    pk_u16(&p, 301); pk_u16(&p, 3); pk_u16(&p, 8); pk_u16(&p, 4); pk_u16(&p, 12); pk_u16(&p, 4);
    set_end(&p);
    ipfix_end(&p);
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_EINVAL);
    ipfix_begin(&p, E, 0, 1); /* withdrawal of a reserved id */
    set_begin(&p, 2);
    pk_u16(&p, 100); pk_u16(&p, 0);
    set_end(&p);
    ipfix_end(&p);
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_EINVAL);
    struct dip_collect_stats s = run_stats(&r, 10, 1);
    CU_ASSERT_EQUAL(s.malformed, 3);
    CU_ASSERT_EQUAL(s.templates, 0);
    run_end(&r);
}

static void test_ipfix_template_table_limit_is_enforced(void)
{
    struct dip_collect_limits lim;
    dip_collect_limits_default(&lim);
    lim.max_templates = 4;
    struct run r;
    struct pkt p;
    run_start(&r, &lim);
    r.no_prefix_check = 1;
    ipfix_begin(&p, E, 0, 1);
    set_begin(&p, 2);
    const uint16_t f[] = { 8, 4 };
    for (uint16_t i = 0; i < 5; i++) tmpl_rec(&p, (uint16_t)(256 + i), 1, f);
    set_end(&p);
    ipfix_end(&p);
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_EINVAL);
    struct dip_collect_stats s = run_stats(&r, 10, 1);
    CU_ASSERT_EQUAL(s.templates, 4);
    CU_ASSERT(strstr(s.last_malformed_reason, "full") != NULL);
    run_end(&r);
}

static void test_ipfix_many_templates_survive_withdrawals_in_any_order(void)
{
    struct run r;
    struct pkt p;
    run_start(&r, NULL); /* ids 1024 apart share a hash slot: long probe runs */
    r.no_prefix_check = 1;
    ipfix_begin(&p, E, 0, 1);
    set_begin(&p, 2);
    const uint16_t f[] = { 8, 4 };
    for (uint16_t i = 0; i < 60; i++) tmpl_rec(&p, (uint16_t)(256 + i * 1024), 1, f);
    set_end(&p);
    ipfix_end(&p);
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_OK);
    ipfix_begin(&p, E, 0, 1);
    set_begin(&p, 2);
    for (uint16_t i = 0; i < 60; i += 3) { pk_u16(&p, (uint16_t)(256 + i * 1024)); pk_u16(&p, 0); }
    set_end(&p);
    ipfix_end(&p);
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_OK);
    CU_ASSERT_EQUAL(run_stats(&r, 10, 1).templates, 40);
    ipfix_begin(&p, E, 0, 1);
    for (uint16_t i = 0; i < 60; i++) {
        set_begin(&p, (uint16_t)(256 + i * 1024));
        pk_ip4(&p, 10, 0, (uint8_t)(i >> 8), (uint8_t)i);
        set_end(&p);
    }
    ipfix_end(&p);
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_OK);
    CU_ASSERT_EQUAL(r.fl.n, 40);
    CU_ASSERT_EQUAL(run_stats(&r, 10, 1).pending_sets, 20);
    run_end(&r);
}

/* ---- streams (TCP) and files ---- */

static void test_ipfix_stream_templates_never_expire_datagram_ones_do(void)
{
    struct dip_collect_limits lim;
    dip_collect_limits_default(&lim);
    lim.template_timeout_ms = 1000;
    struct dip_collect *c;
    CU_ASSERT_FATAL(dip_collect_new(&lim, &c) == DIP_OK);
    struct dip_addr tcp, udp;
    dip_addr_from_v4(&tcp, 0x0a000001);
    dip_addr_from_v4(&udp, 0x0a000002);
    struct flows fl = { 0 };
    struct dip_collect_sink sink = { flows_add, &fl };
    struct pkt p;
    define_two_templates(&p, 0);
    CU_ASSERT_EQUAL(dip_collect_ipfix_stream(c, p.b, p.n, &tcp, RUN_NOW, &sink, NULL), DIP_OK);
    CU_ASSERT_EQUAL(dip_collect_ipfix(c, p.b, p.n, &udp, RUN_NOW, &sink, NULL), DIP_OK);
    data_for(&p, 256, 0);
    CU_ASSERT_EQUAL(dip_collect_ipfix_stream(c, p.b, p.n, &tcp, RUN_NOW + 3600000, &sink, NULL), DIP_OK);
    CU_ASSERT_EQUAL(dip_collect_ipfix(c, p.b, p.n, &udp, RUN_NOW + 3600000, &sink, NULL), DIP_OK);
    CU_ASSERT_EQUAL(fl.n, 1); /* only the stream's template was still there */
    struct dip_collect_stats s;
    CU_ASSERT_EQUAL(dip_collect_stats_find(c, &udp, 10, 1, &s), DIP_OK);
    CU_ASSERT_EQUAL(s.templates_expired, 1);
    dip_collect_forget_exporter(c, &tcp); /* the session ended */
    CU_ASSERT_EQUAL(dip_collect_stats_find(c, &tcp, 10, 1, &s), DIP_OK);
    CU_ASSERT_EQUAL(s.templates, 0);
    free(fl.v);
    dip_collect_free(c);
}

struct msgs {
    struct dip_collect *c;
    struct flows fl;
    int count;
};

static int on_msg(void *ctx, const uint8_t *msg, size_t len)
{
    struct msgs *m = ctx;
    struct dip_addr a;
    dip_addr_from_v4(&a, 0x7f000001);
    struct dip_collect_sink sink = { flows_add, &m->fl };
    m->count++;
    return dip_collect_ipfix(m->c, msg, len, &a, RUN_NOW, &sink, NULL);
}

static size_t three_messages(uint8_t *buf)
{
    struct pkt p;
    size_t n = 0;
    ipfix_begin(&p, E, 0, 1);
    set_begin(&p, 2);
    tmpl_rec(&p, 256, 20, t20);
    set_end(&p);
    ipfix_end(&p);
    memcpy(buf + n, p.b, p.n); n += p.n;
    for (int k = 0; k < 2; k++) {
        ipfix_begin(&p, E, (uint32_t)(2 * k), 1);
        set_begin(&p, 256);
        rec20(&p, (uint8_t)(2 * k), 1);
        rec20(&p, (uint8_t)(2 * k + 1), 2);
        set_end(&p);
        ipfix_end(&p);
        memcpy(buf + n, p.b, p.n); n += p.n;
    }
    return n;
}

static void test_ipfix_stream_split_at_every_byte_gives_same_records(void)
{
    static uint8_t buf[4096];
    size_t n = three_messages(buf);
    for (size_t cut = 0; cut <= n; cut++) {
        for (size_t cut2 = cut; cut2 <= n; cut2 += 37) {
            struct msgs m = { 0 };
            CU_ASSERT_FATAL(dip_collect_new(NULL, &m.c) == DIP_OK);
            struct dip_collect_stream *s = malloc(sizeof *s);
            dip_collect_stream_init(s);
            CU_ASSERT_EQUAL(dip_collect_stream_feed(s, buf, cut, on_msg, &m, NULL), DIP_OK);
            CU_ASSERT_EQUAL(dip_collect_stream_feed(s, buf + cut, cut2 - cut, on_msg, &m, NULL), DIP_OK);
            CU_ASSERT_EQUAL(dip_collect_stream_feed(s, buf + cut2, n - cut2, on_msg, &m, NULL), DIP_OK);
            CU_ASSERT_EQUAL(m.count, 3);
            CU_ASSERT_EQUAL(s->have, 0);
            CU_ASSERT_EQUAL(m.fl.n, 4);
            if (m.fl.n == 4) CU_ASSERT_STRING_EQUAL(addr_str(&m.fl.v[3].src), "10.0.0.3");
            free(s);
            free(m.fl.v);
            dip_collect_free(m.c);
        }
    }
}

static void test_ipfix_stream_garbage_is_a_protocol_error(void)
{
    static uint8_t buf[4096];
    size_t n = three_messages(buf);
    buf[n] = 0; buf[n + 1] = 9; buf[n + 2] = 0; buf[n + 3] = 20; /* a v9 header on an IPFIX stream */
    struct msgs m = { 0 };
    CU_ASSERT_FATAL(dip_collect_new(NULL, &m.c) == DIP_OK);
    struct dip_collect_stream *s = malloc(sizeof *s);
    dip_collect_stream_init(s);
    struct dip_errbuf eb = { "" };
    CU_ASSERT_EQUAL(dip_collect_stream_feed(s, buf, n + 4, on_msg, &m, &eb), DIP_EPROTO);
    CU_ASSERT_EQUAL(m.count, 3);
    CU_ASSERT(strstr(eb.msg, "3 messages") != NULL);
    dip_collect_stream_init(s); /* a length below the header size */
    buf[0] = 0; buf[1] = 10; buf[2] = 0; buf[3] = 15;
    CU_ASSERT_EQUAL(dip_collect_stream_feed(s, buf, 3, on_msg, &m, &eb), DIP_OK);
    CU_ASSERT_EQUAL(dip_collect_stream_feed(s, buf + 3, 1, on_msg, &m, &eb), DIP_EPROTO);
    free(s);
    free(m.fl.v);
    dip_collect_free(m.c);
}

static void test_ipfix_file_is_read_as_a_message_sequence(void)
{
    static uint8_t buf[4096];
    size_t n = three_messages(buf);
    char path[] = "/tmp/dip-collect-test-XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_FATAL(write(fd, buf, n) == (ssize_t)n);
    close(fd);
    struct dip_collect *c;
    CU_ASSERT_FATAL(dip_collect_new(NULL, &c) == DIP_OK);
    struct flows fl = { 0 };
    struct dip_collect_sink sink = { flows_add, &fl };
    uint64_t messages = 0;
    CU_ASSERT_EQUAL(dip_collect_read_ipfix_file(c, path, NULL, &sink, &messages, NULL), DIP_OK);
    CU_ASSERT_EQUAL(messages, 3);
    CU_ASSERT_EQUAL(fl.n, 4);
    fd = open(path, O_WRONLY | O_TRUNC); /* cut inside the last message */
    CU_ASSERT_FATAL(write(fd, buf, n - 5) == (ssize_t)(n - 5));
    close(fd);
    struct dip_errbuf eb = { "" };
    CU_ASSERT_EQUAL(dip_collect_read_ipfix_file(c, path, NULL, &sink, &messages, &eb), DIP_EPROTO);
    CU_ASSERT(strstr(eb.msg, "ends inside a message") != NULL);
    CU_ASSERT_EQUAL(dip_collect_read_ipfix_file(c, "/nonexistent/x.ipfix", NULL, &sink, NULL, &eb), DIP_ENOTFOUND);
    unlink(path);
    free(fl.v);
    dip_collect_free(c);
}

int dip_suite_collect_ipfix(void)
{
    CU_pSuite s = CU_add_suite("collect_ipfix", NULL, NULL);
    if (!s) return -1;
    CU_add_test(s, "test_ipfix_template_and_data_decode_all_fields", test_ipfix_template_and_data_decode_all_fields);
    CU_add_test(s, "test_ipfix_every_time_encoding_gives_epoch_milliseconds", test_ipfix_every_time_encoding_gives_epoch_milliseconds);
    CU_add_test(s, "test_ipfix_sysuptime_times_use_system_init_time_from_options",
                test_ipfix_sysuptime_times_use_system_init_time_from_options);
    CU_add_test(s, "test_ipfix_sysuptime_times_use_system_init_time_in_record",
                test_ipfix_sysuptime_times_use_system_init_time_in_record);
    CU_add_test(s, "test_ipfix_variable_length_fields_decode_short_and_long_forms",
                test_ipfix_variable_length_fields_decode_short_and_long_forms);
    CU_add_test(s, "test_ipfix_variable_length_overrun_is_malformed_without_records",
                test_ipfix_variable_length_overrun_is_malformed_without_records);
    CU_add_test(s, "test_ipfix_enterprise_fields_skipped_by_length", test_ipfix_enterprise_fields_skipped_by_length);
    CU_add_test(s, "test_ipfix_reduced_size_encoding", test_ipfix_reduced_size_encoding);
    CU_add_test(s, "test_ipfix_ipv6_flow_and_icmpv6_type_code", test_ipfix_ipv6_flow_and_icmpv6_type_code);
    CU_add_test(s, "test_ipfix_packet_samples_take_addresses_from_sampled_headers",
                test_ipfix_packet_samples_take_addresses_from_sampled_headers);
    CU_add_test(s, "test_ipfix_mixed_family_template_keeps_the_nonzero_address",
                test_ipfix_mixed_family_template_keeps_the_nonzero_address);
    CU_add_test(s, "test_ipfix_zero_bgp_next_hop_leaves_nexthop_out", test_ipfix_zero_bgp_next_hop_leaves_nexthop_out);
    CU_add_test(s, "test_ipfix_zero_ip_next_hop_is_kept_as_written", test_ipfix_zero_ip_next_hop_is_kept_as_written);
    CU_add_test(s, "test_ipfix_fixed_length_decoder_resets_all_per_record_state",
                test_ipfix_fixed_length_decoder_resets_all_per_record_state);
    CU_add_test(s, "test_ipfix_variable_length_decoder_resets_all_per_record_state",
                test_ipfix_variable_length_decoder_resets_all_per_record_state);
    CU_add_test(s, "test_ipfix_template_withdrawal_drops_cached_template", test_ipfix_template_withdrawal_drops_cached_template);
    CU_add_test(s, "test_ipfix_withdraw_all_drops_every_template_of_its_kind",
                test_ipfix_withdraw_all_drops_every_template_of_its_kind);
    CU_add_test(s, "test_ipfix_options_selector_sampling_rates", test_ipfix_options_selector_sampling_rates);
    CU_add_test(s, "test_ipfix_sequence_counts_data_records", test_ipfix_sequence_counts_data_records);
    CU_add_test(s, "test_ipfix_message_length_that_lies_is_malformed", test_ipfix_message_length_that_lies_is_malformed);
    CU_add_test(s, "test_ipfix_zero_length_and_reserved_sets_are_malformed", test_ipfix_zero_length_and_reserved_sets_are_malformed);
    CU_add_test(s, "test_ipfix_bad_templates_are_malformed_and_not_cached", test_ipfix_bad_templates_are_malformed_and_not_cached);
    CU_add_test(s, "test_ipfix_many_templates_survive_withdrawals_in_any_order",
                test_ipfix_many_templates_survive_withdrawals_in_any_order);
    CU_add_test(s, "test_ipfix_template_table_limit_is_enforced", test_ipfix_template_table_limit_is_enforced);
    CU_add_test(s, "test_ipfix_stream_templates_never_expire_datagram_ones_do",
                test_ipfix_stream_templates_never_expire_datagram_ones_do);
    CU_add_test(s, "test_ipfix_stream_split_at_every_byte_gives_same_records",
                test_ipfix_stream_split_at_every_byte_gives_same_records);
    CU_add_test(s, "test_ipfix_stream_garbage_is_a_protocol_error", test_ipfix_stream_garbage_is_a_protocol_error);
    CU_add_test(s, "test_ipfix_file_is_read_as_a_message_sequence", test_ipfix_file_is_read_as_a_message_sequence);
    return 0;
}
