/* test_collect.c - NetFlow v5 and v9 decoders, the shared template cache,
 * buffering of data before its template, sequence accounting and the
 * statistics API, on hand-built messages. Every message fed through
 * run_feed() is also fed truncated at every byte (collect_check.h). */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <string.h>

#include "collect_check.h"

#define E 1700000000u /* export time, seconds */
#define U 500000u     /* exporter sysUpTime at export, ms */

static const char *addr_str(const struct dip_addr *a)
{
    static char buf[4][DIP_ADDR_TEXT_MAX];
    static int i;
    i = (i + 1) % 4;
    dip_addr_format(a, buf[i]);
    return buf[i];
}

/* ---- NetFlow v5 ---- */

static void test_v5_decodes_every_field_and_uptime_relative_times(void)
{
    struct run r;
    struct pkt p;
    run_start(&r, NULL);
    v5_begin(&p, 2, U, E, 250000000, 1000, 1, 2, 0);
    v5_rec(&p, 0x0a010203, 0xc0a80001, 1234, 80, 6, 10, 5000, U - 3000, U - 1000);
    v5_rec(&p, 0x0a010204, 0xc0a80002, 0, 0x0800, 1, 1, 84, U - 10, U);
    size_t first;
    CU_ASSERT_EQUAL(run_feed_at(&r, &p, RUN_NOW, &first), DIP_OK);
    CU_ASSERT_EQUAL_FATAL(r.fl.n, 2);
    const struct dip_flow *f = &r.fl.v[0];
    CU_ASSERT_STRING_EQUAL(addr_str(&f->src), "10.1.2.3");
    CU_ASSERT_STRING_EQUAL(addr_str(&f->dst), "192.168.0.1");
    CU_ASSERT_STRING_EQUAL(addr_str(&f->nexthop), "10.0.0.1");
    CU_ASSERT_EQUAL(f->sport, 1234);
    CU_ASSERT_EQUAL(f->dport, 80);
    CU_ASSERT_EQUAL(f->proto, 6);
    CU_ASSERT_EQUAL(f->packets, 10);
    CU_ASSERT_EQUAL(f->bytes, 5000);
    CU_ASSERT_EQUAL(f->first, (uint64_t)E * 1000 + 250 - 3000);
    CU_ASSERT_EQUAL(f->last, (uint64_t)E * 1000 + 250 - 1000);
    CU_ASSERT_EQUAL(f->in, 3);
    CU_ASSERT_EQUAL(f->out, 4);
    CU_ASSERT_EQUAL(f->flags, 0x1b);
    CU_ASSERT_EQUAL(f->tos, 0x10);
    CU_ASSERT_EQUAL(f->srcas, 65001);
    CU_ASSERT_EQUAL(f->dstas, 65002);
    CU_ASSERT_EQUAL(f->smask, 24);
    CU_ASSERT_EQUAL(f->dmask, 16);
    CU_ASSERT_EQUAL(f->domain, 0x0102); /* engine_type 1, engine_id 2 */
    CU_ASSERT_STRING_EQUAL(addr_str(&f->exporter), "192.0.2.1");
    CU_ASSERT(f->present & DIP_F_EXPORTER);
    CU_ASSERT(!(f->present & DIP_F_SAMPLING));
    CU_ASSERT_EQUAL(f->id, dip_flow_id_random(f, dip_flow_id_default_key));
    CU_ASSERT_EQUAL(r.fl.v[1].dport, 0x0800); /* ICMP echo request: type 8 code 0 as sent */
    struct dip_collect_stats s = run_stats(&r, 5, 0x0102);
    CU_ASSERT_EQUAL(s.packets, 1);
    CU_ASSERT_EQUAL(s.records, 2);
    CU_ASSERT_EQUAL(s.malformed, 0);
    run_end(&r);
}

static void test_v5_flow_started_before_uptime_wrapped_lands_before_export(void)
{
    struct run r;
    struct pkt p;
    run_start(&r, NULL);
    /* sysUpTime wrapped 2 s ago (now 2000 ms); the flow started 5 s before export */
    v5_begin(&p, 1, 2000, E, 0, 0, 0, 0, 0);
    v5_rec(&p, 1, 2, 3, 4, 17, 1, 100, (uint32_t)(2000u - 5000u), 1500);
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_OK);
    CU_ASSERT_EQUAL_FATAL(r.fl.n, 1);
    CU_ASSERT_EQUAL(r.fl.v[0].first, (uint64_t)E * 1000 - 5000);
    CU_ASSERT_EQUAL(r.fl.v[0].last, (uint64_t)E * 1000 - 500);
    run_end(&r);
}

static void test_v5_sampling_interval_from_header(void)
{
    struct run r;
    struct pkt p;
    run_start(&r, NULL);
    v5_begin(&p, 1, U, E, 0, 0, 0, 0, (1u << 14) | 512); /* mode 1, 1 out of 512 */
    v5_rec(&p, 1, 2, 3, 4, 17, 1, 100, U, U);
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_OK);
    CU_ASSERT_EQUAL_FATAL(r.fl.n, 1);
    CU_ASSERT_EQUAL(r.fl.v[0].sampling, 512);
    CU_ASSERT(r.fl.v[0].present & DIP_F_SAMPLING);
    run_end(&r);
}

static void test_v5_sequence_gap_counts_lost_records(void)
{
    struct run r;
    struct pkt p;
    run_start(&r, NULL);
    r.no_prefix_check = 1;
    v5_begin(&p, 2, U, E, 0, 100, 0, 0, 0);
    v5_rec(&p, 1, 2, 3, 4, 17, 1, 100, U, U);
    v5_rec(&p, 1, 2, 3, 5, 17, 1, 100, U, U);
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_OK);
    v5_begin(&p, 1, U, E, 0, 102, 0, 0, 0); /* expected 102: no loss */
    v5_rec(&p, 1, 2, 3, 4, 17, 1, 100, U, U);
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_OK);
    CU_ASSERT_EQUAL(run_stats(&r, 5, 0).lost_records, 0);
    v5_begin(&p, 1, U, E, 0, 110, 0, 0, 0); /* expected 103: 7 records lost */
    v5_rec(&p, 1, 2, 3, 4, 17, 1, 100, U, U);
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_OK);
    CU_ASSERT_EQUAL(run_stats(&r, 5, 0).lost_records, 7);
    v5_begin(&p, 1, U, E, 0, 105, 0, 0, 0); /* a late one from the gap */
    v5_rec(&p, 1, 2, 3, 4, 17, 1, 100, U, U);
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_OK);
    struct dip_collect_stats s = run_stats(&r, 5, 0);
    CU_ASSERT_EQUAL(s.lost_records, 6);
    CU_ASSERT_EQUAL(s.out_of_order, 1);
    run_end(&r);
}

static void test_v5_count_larger_than_payload_is_malformed(void)
{
    struct run r;
    struct pkt p;
    run_start(&r, NULL);
    v5_begin(&p, 3, U, E, 0, 0, 0, 0, 0); /* says 3 records, carries 2 */
    v5_rec(&p, 1, 2, 3, 4, 17, 1, 100, U, U);
    v5_rec(&p, 1, 2, 3, 4, 17, 1, 100, U, U);
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_EINVAL);
    CU_ASSERT_EQUAL(r.fl.n, 0);
    struct dip_collect_stats s = run_stats(&r, 5, 0);
    CU_ASSERT_EQUAL(s.malformed, 1);
    CU_ASSERT_EQUAL(s.last_malformed_offset, 24);
    CU_ASSERT(strstr(s.last_malformed_reason, "count 3") != NULL);
    CU_ASSERT(strstr(r.eb.msg, "192.0.2.1") != NULL);
    run_end(&r);
}

static void test_v5_truncated_header_is_malformed(void)
{
    struct run r;
    struct pkt p;
    run_start(&r, NULL);
    v5_begin(&p, 0, U, E, 0, 0, 0, 0, 0);
    p.n = 20;
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_EINVAL);
    CU_ASSERT_EQUAL(run_stats(&r, 5, 0).malformed, 1);
    run_end(&r);
}

static void test_unknown_version_is_counted_unsupported(void)
{
    struct run r;
    struct pkt p;
    run_start(&r, NULL);
    r.no_prefix_check = 1; /* every prefix of 2 bytes or more names version 7 too */
    p.n = 0;
    pk_u16(&p, 7);
    pk_u16(&p, 0);
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_EUNSUPP);
    struct dip_collect_totals t;
    dip_collect_totals_get(r.c, &t);
    CU_ASSERT_EQUAL(t.unsupported, 1);
    run_end(&r);
}

/* ---- NetFlow v9 ---- */

/* Template 256: src dst sport dport proto packets bytes first last in out flags tos. */
static const uint16_t v9_fields[] = { 8, 4, 12, 4, 7, 2, 11, 2, 4, 1, 2, 4, 1, 4, 22, 4, 21, 4,
                                      10, 2, 14, 2, 6, 1, 5, 1 };
#define V9_NFIELDS (sizeof v9_fields / sizeof v9_fields[0] / 2)

static void v9_template(struct pkt *p, uint16_t id)
{
    set_begin(p, 0);
    tmpl_rec(p, id, V9_NFIELDS, v9_fields);
    set_end(p);
}

static void v9_record(struct pkt *p, uint32_t src, uint16_t sport, uint32_t first, uint32_t last)
{
    pk_u32(p, src); pk_ip4(p, 192, 168, 1, 1); pk_u16(p, sport); pk_u16(p, 443); pk_u8(p, 6);
    pk_u32(p, 3); pk_u32(p, 180); pk_u32(p, first); pk_u32(p, last); pk_u16(p, 7); pk_u16(p, 8);
    pk_u8(p, 0x12); pk_u8(p, 0);
    p->count++;
}

static void test_v9_template_then_data_decodes(void)
{
    struct run r;
    struct pkt p;
    run_start(&r, NULL);
    v9_begin(&p, U, E, 1, 42);
    v9_template(&p, 256);
    set_begin(&p, 256);
    v9_record(&p, 0x0a000001, 1000, U - 2000, U - 100);
    v9_record(&p, 0x0a000002, 1001, U - 50, U);
    set_pad(&p);
    set_end(&p);
    v9_end(&p);
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_OK);
    CU_ASSERT_EQUAL_FATAL(r.fl.n, 2);
    const struct dip_flow *f = &r.fl.v[0];
    CU_ASSERT_STRING_EQUAL(addr_str(&f->src), "10.0.0.1");
    CU_ASSERT_STRING_EQUAL(addr_str(&f->dst), "192.168.1.1");
    CU_ASSERT_EQUAL(f->sport, 1000);
    CU_ASSERT_EQUAL(f->dport, 443);
    CU_ASSERT_EQUAL(f->packets, 3);
    CU_ASSERT_EQUAL(f->bytes, 180);
    CU_ASSERT_EQUAL(f->first, (uint64_t)E * 1000 - 2000);
    CU_ASSERT_EQUAL(f->last, (uint64_t)E * 1000 - 100);
    CU_ASSERT_EQUAL(f->in, 7);
    CU_ASSERT_EQUAL(f->out, 8);
    CU_ASSERT_EQUAL(f->flags, 0x12);
    CU_ASSERT_EQUAL(f->domain, 42);
    CU_ASSERT(f->present & DIP_F_TOS);
    CU_ASSERT(!(f->present & DIP_F_SRCAS)); /* not in the template: left out */
    struct dip_collect_stats s = run_stats(&r, 9, 42);
    CU_ASSERT_EQUAL(s.templates, 1);
    CU_ASSERT_EQUAL(s.records, 2);
    run_end(&r);
}

static void test_v9_uptime_wraparound_between_flow_and_export(void)
{
    struct run r;
    struct pkt p;
    run_start(&r, NULL);
    v9_begin(&p, 1000, E, 1, 0); /* uptime wrapped 1 s ago */
    v9_template(&p, 256);
    set_begin(&p, 256);
    v9_record(&p, 1, 1, 0xffffffffu - 999, 500); /* started 2 s before export */
    set_end(&p);
    v9_end(&p);
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_OK);
    CU_ASSERT_EQUAL_FATAL(r.fl.n, 1);
    CU_ASSERT_EQUAL(r.fl.v[0].first, (uint64_t)E * 1000 - 2000);
    CU_ASSERT_EQUAL(r.fl.v[0].last, (uint64_t)E * 1000 - 500);
    run_end(&r);
}

static void test_v9_data_before_template_is_buffered_then_decoded(void)
{
    struct run r;
    struct pkt p;
    run_start(&r, NULL);
    v9_begin(&p, U, E, 1, 0);
    set_begin(&p, 300);
    v9_record(&p, 0x0a000009, 9, U, U);
    set_end(&p);
    v9_end(&p);
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_OK);
    CU_ASSERT_EQUAL(r.fl.n, 0);
    CU_ASSERT_EQUAL(run_stats(&r, 9, 0).pending_sets, 1);
    v9_begin(&p, U + 10, E, 2, 0);
    v9_template(&p, 300);
    v9_end(&p);
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_OK);
    CU_ASSERT_EQUAL_FATAL(r.fl.n, 1);
    CU_ASSERT_STRING_EQUAL(addr_str(&r.fl.v[0].src), "10.0.0.9");
    CU_ASSERT_EQUAL(r.fl.v[0].first, (uint64_t)E * 1000); /* times of the message that carried it */
    struct dip_collect_stats s = run_stats(&r, 9, 0);
    CU_ASSERT_EQUAL(s.records, 1);
    CU_ASSERT_EQUAL(s.pending_dropped, 0);
    run_end(&r);
}

static void test_pending_sets_bounded_by_count_bytes_and_age(void)
{
    struct dip_collect_limits lim;
    dip_collect_limits_default(&lim);
    lim.pending_max_sets = 2;
    lim.pending_max_bytes = 1000;
    lim.pending_max_ms = 5000;
    struct run r;
    struct pkt p;
    run_start(&r, &lim);
    r.no_prefix_check = 1;
    for (uint16_t i = 0; i < 3; i++) { /* the third evicts the first */
        v9_begin(&p, U, E, i, 0);
        set_begin(&p, (uint16_t)(300 + i));
        v9_record(&p, 1, i, U, U);
        set_end(&p);
        v9_end(&p);
        CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_OK);
    }
    CU_ASSERT_EQUAL(run_stats(&r, 9, 0).pending_dropped, 1);
    v9_begin(&p, U, E, 3, 0); /* larger than the byte budget: dropped at once */
    set_begin(&p, 310);
    for (int i = 0; i < 40; i++) v9_record(&p, 1, 1, U, U);
    set_end(&p);
    v9_end(&p);
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_OK);
    CU_ASSERT_EQUAL(run_stats(&r, 9, 0).pending_dropped, 2);
    dip_collect_expire(r.c, RUN_NOW + 6000); /* the other two age out */
    CU_ASSERT_EQUAL(run_stats(&r, 9, 0).pending_dropped, 4);
    v9_begin(&p, U, E, 4, 0);
    v9_template(&p, 301);
    v9_template(&p, 302);
    v9_end(&p);
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_OK);
    CU_ASSERT_EQUAL(r.fl.n, 0);
    run_end(&r);
}

static void test_v9_options_sampling_by_sampler_id_and_default(void)
{
    struct run r;
    struct pkt p;
    run_start(&r, NULL);
    v9_begin(&p, U, E, 1, 0);
    set_begin(&p, 1); /* options template 260: scope System(4); sampler id(1), random interval(4) */
    pk_u16(&p, 260); pk_u16(&p, 4); pk_u16(&p, 8);
    pk_u16(&p, 1); pk_u16(&p, 4);
    pk_u16(&p, 48); pk_u16(&p, 1); pk_u16(&p, 50); pk_u16(&p, 4);
    p.count++;
    set_pad(&p);
    set_end(&p);
    set_begin(&p, 1); /* options template 261: exporter-wide samplingInterval */
    pk_u16(&p, 261); pk_u16(&p, 4); pk_u16(&p, 4);
    pk_u16(&p, 1); pk_u16(&p, 4);
    pk_u16(&p, 34); pk_u16(&p, 4);
    p.count++;
    set_end(&p);
    set_begin(&p, 260);
    pk_u32(&p, 0); pk_u8(&p, 5); pk_u32(&p, 1000); p.count++;
    pk_u32(&p, 0); pk_u8(&p, 6); pk_u32(&p, 64); p.count++;
    set_pad(&p);
    set_end(&p);
    set_begin(&p, 261);
    pk_u32(&p, 0); pk_u32(&p, 10); p.count++;
    set_end(&p);
    /* data template 262: src, sampler id */
    set_begin(&p, 0);
    const uint16_t f[] = { 8, 4, 48, 1 };
    tmpl_rec(&p, 262, 2, f);
    const uint16_t g[] = { 8, 4 };
    tmpl_rec(&p, 263, 1, g);
    set_end(&p);
    set_begin(&p, 262);
    pk_u32(&p, 1); pk_u8(&p, 5); p.count++;
    pk_u32(&p, 2); pk_u8(&p, 6); p.count++;
    pk_u32(&p, 3); pk_u8(&p, 7); p.count++; /* unknown sampler: the exporter-wide rate */
    set_pad(&p);
    set_end(&p);
    set_begin(&p, 263);
    pk_u32(&p, 4); p.count++;
    set_end(&p);
    v9_end(&p);
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_OK);
    CU_ASSERT_EQUAL_FATAL(r.fl.n, 4);
    CU_ASSERT_EQUAL(r.fl.v[0].sampling, 1000);
    CU_ASSERT_EQUAL(r.fl.v[1].sampling, 64);
    CU_ASSERT_EQUAL(r.fl.v[2].sampling, 10);
    CU_ASSERT_EQUAL(r.fl.v[3].sampling, 10);
    CU_ASSERT_EQUAL(run_stats(&r, 9, 0).option_records, 3);
    run_end(&r);
}

static void test_v9_sequence_gap_counts_lost_packets(void)
{
    struct run r;
    struct pkt p;
    run_start(&r, NULL);
    r.no_prefix_check = 1;
    const uint32_t seqs[] = { 10, 11, 14, 15 };
    for (int i = 0; i < 4; i++) {
        v9_begin(&p, U, E, seqs[i], 3);
        v9_template(&p, 256);
        v9_end(&p);
        CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_OK);
    }
    struct dip_collect_stats s = run_stats(&r, 9, 3);
    CU_ASSERT_EQUAL(s.lost_packets, 2);
    CU_ASSERT_EQUAL(s.lost_records, 0);
    run_end(&r);
}

static void test_v9_template_id_below_256_is_malformed(void)
{
    struct run r;
    struct pkt p;
    run_start(&r, NULL);
    v9_begin(&p, U, E, 1, 0);
    v9_template(&p, 255);
    v9_end(&p);
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_EINVAL);
    struct dip_collect_stats s = run_stats(&r, 9, 0);
    CU_ASSERT_EQUAL(s.malformed, 1);
    CU_ASSERT_EQUAL(s.templates, 0);
    CU_ASSERT(strstr(s.last_malformed_reason, "255") != NULL);
    CU_ASSERT_EQUAL(s.last_malformed_offset, 24);
    run_end(&r);
}

static void test_v9_flowset_length_beyond_packet_is_malformed(void)
{
    struct run r;
    struct pkt p;
    run_start(&r, NULL);
    v9_begin(&p, U, E, 1, 0);
    v9_template(&p, 256);
    set_begin(&p, 256);
    v9_record(&p, 1, 1, U, U);
    set_end(&p);
    v9_end(&p);
    p.b[p.set_at + 3] += 4; /* the data flowset claims 4 more bytes than sent */
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_EINVAL);
    CU_ASSERT_EQUAL(r.fl.n, 0); /* no half-decoded records, none at all */
    struct dip_collect_stats s = run_stats(&r, 9, 0);
    CU_ASSERT_EQUAL(s.malformed, 1);
    CU_ASSERT_EQUAL(s.last_malformed_offset, p.set_at);
    run_end(&r);
}

static void test_v9_zero_length_flowset_is_malformed(void)
{
    struct run r;
    struct pkt p;
    run_start(&r, NULL);
    v9_begin(&p, U, E, 1, 0);
    pk_u16(&p, 256);
    pk_u16(&p, 0);
    pk_u32(&p, 0);
    p.count = 1;
    v9_end(&p);
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_EINVAL);
    CU_ASSERT_EQUAL(run_stats(&r, 9, 0).malformed, 1);
    run_end(&r);
}

static void test_v9_header_count_above_records_is_malformed(void)
{
    struct run r;
    struct pkt p;
    run_start(&r, NULL);
    v9_begin(&p, U, E, 1, 0);
    v9_template(&p, 256);
    p.count = 2; /* the second flowset was cut off at a flowset boundary */
    v9_end(&p);
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_EINVAL);
    CU_ASSERT(strstr(run_stats(&r, 9, 0).last_malformed_reason, "count 2") != NULL);
    run_end(&r);
}

static void test_v9_absurd_field_length_rejects_template(void)
{
    struct run r;
    struct pkt p;
    run_start(&r, NULL);
    v9_begin(&p, U, E, 1, 0);
    set_begin(&p, 0);
    const uint16_t f[] = { 8, 4, 100, 65535 }; /* v9 has no variable length: 65539-byte records */
    tmpl_rec(&p, 256, 2, f);
    set_end(&p);
    v9_end(&p);
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_EINVAL);
    struct dip_collect_stats s = run_stats(&r, 9, 0);
    CU_ASSERT_EQUAL(s.templates, 0);
    CU_ASSERT(strstr(s.last_malformed_reason, "record length") != NULL);
    run_end(&r);
}

static void test_v9_template_change_mid_stream_uses_new_layout(void)
{
    struct run r;
    struct pkt p;
    run_start(&r, NULL);
    v9_begin(&p, U, E, 1, 0);
    v9_template(&p, 256);
    set_begin(&p, 256);
    v9_record(&p, 0x0a000001, 1, U, U);
    set_end(&p);
    v9_end(&p);
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_OK);
    v9_begin(&p, U, E, 2, 0);
    set_begin(&p, 0);
    const uint16_t f[] = { 12, 4, 8, 4, 2, 2 }; /* dst, src, 2-byte packets */
    tmpl_rec(&p, 256, 3, f);
    set_end(&p);
    set_begin(&p, 256);
    pk_ip4(&p, 10, 9, 9, 9); pk_ip4(&p, 10, 8, 8, 8); pk_u16(&p, 77); p.count++;
    set_end(&p);
    v9_end(&p);
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_OK);
    CU_ASSERT_EQUAL_FATAL(r.fl.n, 2);
    CU_ASSERT_STRING_EQUAL(addr_str(&r.fl.v[1].src), "10.8.8.8");
    CU_ASSERT_STRING_EQUAL(addr_str(&r.fl.v[1].dst), "10.9.9.9");
    CU_ASSERT_EQUAL(r.fl.v[1].packets, 77);
    struct dip_collect_stats s = run_stats(&r, 9, 0);
    CU_ASSERT_EQUAL(s.template_changes, 1);
    CU_ASSERT_EQUAL(s.templates, 1);
    run_end(&r);
}

static void test_v9_template_expires_without_refresh(void)
{
    struct dip_collect_limits lim;
    dip_collect_limits_default(&lim);
    lim.template_timeout_ms = 60000;
    struct run r;
    struct pkt p;
    run_start(&r, &lim);
    r.no_prefix_check = 1;
    v9_begin(&p, U, E, 1, 0);
    v9_template(&p, 256);
    v9_end(&p);
    CU_ASSERT_EQUAL(run_feed_at(&r, &p, RUN_NOW, NULL), DIP_OK);
    CU_ASSERT_EQUAL(run_feed_at(&r, &p, RUN_NOW + 50000, NULL), DIP_OK); /* refresh */
    v9_begin(&p, U, E, 3, 0);
    set_begin(&p, 256);
    v9_record(&p, 1, 1, U, U);
    set_end(&p);
    v9_end(&p);
    CU_ASSERT_EQUAL(run_feed_at(&r, &p, RUN_NOW + 100000, NULL), DIP_OK); /* 50 s after refresh */
    CU_ASSERT_EQUAL(r.fl.n, 1);
    CU_ASSERT_EQUAL(run_feed_at(&r, &p, RUN_NOW + 200000, NULL), DIP_OK); /* expired: buffered */
    CU_ASSERT_EQUAL(r.fl.n, 1);
    struct dip_collect_stats s = run_stats(&r, 9, 0);
    CU_ASSERT_EQUAL(s.templates_expired, 1);
    CU_ASSERT_EQUAL(s.templates, 0);
    CU_ASSERT_EQUAL(s.pending_sets, 1);
    run_end(&r);
}

/* ---- next hops, and a decoder resets all per-record state ---- */

/* Template 260: the 13 fields of 256, then BGP_IPV4_NEXT_HOP (18) and
 * BGP_IPV6_NEXT_HOP (63), no IPV4_NEXT_HOP. */
static void v9_bgp_template(struct pkt *p)
{
    uint16_t f[V9_NFIELDS * 2 + 4];
    memcpy(f, v9_fields, sizeof v9_fields);
    f[V9_NFIELDS * 2] = 18; f[V9_NFIELDS * 2 + 1] = 4;
    f[V9_NFIELDS * 2 + 2] = 63; f[V9_NFIELDS * 2 + 3] = 16;
    tmpl_rec(p, 260, V9_NFIELDS + 2, f);
}

/* A record of template 260: with a BGP next hop, or (the record under test)
 * both BGP next hops zero. */
static void v9_bgp_record(struct pkt *p, int with_bgp)
{
    static const uint8_t bgp6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xfe };
    static const uint8_t zero6[16] = { 0 };
    v9_record(p, with_bgp ? 0x0a000001 : 0x0a000009, with_bgp ? 1001 : 1009, U - 2000, U - 100);
    if (with_bgp) pk_ip4(p, 192, 0, 2, 254);
    else pk_u32(p, 0);
    pk_bytes(p, with_bgp ? bgp6 : zero6, 16);
}

/* Template 261: a flow with every optional field v9 gives: IPV4_NEXT_HOP
 * and BGP next hop, AS numbers, masks, interfaces, tos, flags,
 * SAMPLING_INTERVAL, ICMP_TYPE. */
static const uint16_t v9_rich_fields[] = { 8, 4, 12, 4, 4, 1, 15, 4, 18, 4, 16, 2, 17, 2, 9, 1, 13, 1, 10, 2,
                                           14, 2, 5, 1, 6, 1, 34, 4, 32, 2, 22, 4, 21, 4, 2, 4, 1, 4 };

static void v9_rich_record(struct pkt *p)
{
    pk_ip4(p, 10, 9, 9, 9); pk_ip4(p, 10, 8, 8, 8); pk_u8(p, 1); pk_ip4(p, 10, 0, 0, 254);
    pk_ip4(p, 198, 51, 100, 1); pk_u16(p, 64512); pk_u16(p, 15169); pk_u8(p, 8); pk_u8(p, 24);
    pk_u16(p, 11); pk_u16(p, 12); pk_u8(p, 0x28); pk_u8(p, 0x12); pk_u32(p, 100); pk_u16(p, 0x0800);
    pk_u32(p, U - 700); pk_u32(p, U - 200); pk_u32(p, 5); pk_u32(p, 500);
    p->count++;
}

/* What the decoder sees before the record under test. */
enum v9_before { V9_ALONE, V9_AFTER_BGP_IN_FLOWSET, V9_AFTER_OTHER_TEMPLATE, V9_AFTER_EARLIER_PACKET,
                 V9_BUFFERED_AFTER_OTHER_TEMPLATE, V9_NBEFORE };

static void v9_templates(struct pkt *p)
{
    set_begin(p, 0);
    v9_bgp_template(p);
    tmpl_rec(p, 261, sizeof v9_rich_fields / sizeof v9_rich_fields[0] / 2, v9_rich_fields);
    set_end(p);
}

static void v9_rich_flowset(struct pkt *p)
{
    set_begin(p, 261);
    v9_rich_record(p);
    set_pad(p);
    set_end(p);
}

/* Writes the packets of one case into pkts; returns how many. The record
 * under test is always the last one decoded. */
static size_t v9_before_case(enum v9_before b, struct pkt *pkts)
{
    struct pkt *p = &pkts[0];
    v9_begin(p, U, E, 1, 0);
    if (b == V9_BUFFERED_AFTER_OTHER_TEMPLATE) { /* data first; its template comes after another record */
        set_begin(p, 260);
        v9_bgp_record(p, 0);
        set_end(p);
        v9_end(p);
        p = &pkts[1];
        v9_begin(p, U, E, 2, 0);
        v9_templates(p);
        v9_rich_flowset(p);
        v9_end(p);
        return 2;
    }
    v9_templates(p);
    if (b == V9_AFTER_OTHER_TEMPLATE || b == V9_AFTER_EARLIER_PACKET) v9_rich_flowset(p);
    if (b == V9_AFTER_EARLIER_PACKET) {
        set_begin(p, 260);
        v9_bgp_record(p, 1);
        set_end(p);
        v9_end(p);
        p = &pkts[1];
        v9_begin(p, U, E, 2, 0);
    }
    set_begin(p, 260);
    if (b == V9_AFTER_BGP_IN_FLOWSET) v9_bgp_record(p, 1);
    v9_bgp_record(p, 0);
    set_end(p);
    v9_end(p);
    return b == V9_AFTER_EARLIER_PACKET ? 2 : 1;
}

/* Feeds pkts to a fresh collector; writes the XML of the last record. */
static void last_record_text(const struct pkt *pkts, size_t n, char *out, size_t cap)
{
    struct run r;
    run_start(&r, NULL);
    for (size_t i = 0; i < n; i++) CU_ASSERT_EQUAL(run_feed(&r, &pkts[i]), DIP_OK);
    CU_ASSERT_FATAL(r.fl.n > 0);
    flow_text(&r.fl.v[r.fl.n - 1], out, cap);
    run_end(&r);
}

static void test_v9_zero_bgp_next_hop_leaves_nexthop_out(void)
{
    static struct pkt pkts[2];
    char text[1024];
    last_record_text(pkts, v9_before_case(V9_ALONE, pkts), text, sizeof text);
    CU_ASSERT(strstr(text, "nexthop=") == NULL);
    last_record_text(pkts, v9_before_case(V9_AFTER_BGP_IN_FLOWSET, pkts), text, sizeof text);
    CU_ASSERT(strstr(text, "nexthop=") == NULL);
}

/* The record under test decodes to the same flow whatever came before it:
 * a record that set a BGP next hop, one with every optional field, another
 * packet, or nothing; and also when it waited for its template. */
static void test_v9_decoder_resets_all_per_record_state(void)
{
    static struct pkt pkts[2];
    char alone[1024], after[1024];
    last_record_text(pkts, v9_before_case(V9_ALONE, pkts), alone, sizeof alone);
    for (int b = V9_ALONE + 1; b < V9_NBEFORE; b++) {
        last_record_text(pkts, v9_before_case((enum v9_before)b, pkts), after, sizeof after);
        if (strcmp(after, alone)) printf("\n  case %d:\n  alone: %s\n  after: %s\n", b, alone, after);
        CU_ASSERT_STRING_EQUAL(after, alone);
    }
}

static void test_templates_are_kept_per_exporter_and_domain(void)
{
    struct run r;
    struct pkt p;
    run_start(&r, NULL);
    r.no_prefix_check = 1;
    v9_begin(&p, U, E, 1, 1);
    v9_template(&p, 256);
    v9_end(&p);
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_OK);
    v9_begin(&p, U, E, 1, 2); /* another source id: template 256 unknown there */
    set_begin(&p, 256);
    v9_record(&p, 1, 1, U, U);
    set_end(&p);
    v9_end(&p);
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_OK);
    CU_ASSERT_EQUAL(r.fl.n, 0);
    dip_addr_from_v4(&r.exporter, 0xc0000202); /* another exporter, same source id 1 */
    p.b[19] = 1;
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_OK);
    CU_ASSERT_EQUAL(r.fl.n, 0);
    dip_addr_from_v4(&r.exporter, 0xc0000201);
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_OK);
    CU_ASSERT_EQUAL(r.fl.n, 1);
    CU_ASSERT_EQUAL(dip_collect_stats_count(r.c), 3);
    run_end(&r);
}

static void test_stats_text_and_xml_name_exporter_and_counters(void)
{
    struct run r;
    struct pkt p;
    run_start(&r, NULL);
    r.no_prefix_check = 1;
    v9_begin(&p, U, E, 1, 7);
    v9_template(&p, 256);
    set_begin(&p, 256);
    v9_record(&p, 1, 1, U, U);
    set_end(&p);
    v9_end(&p);
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_OK);
    v9_begin(&p, U, E, 5, 7);
    v9_template(&p, 12);
    v9_end(&p);
    CU_ASSERT_EQUAL(run_feed(&r, &p), DIP_EINVAL);
    struct dip_dynbuf b;
    dip_dynbuf_init(&b, 1 << 16);
    CU_ASSERT_EQUAL(dip_collect_stats_xml(r.c, &b), DIP_OK);
    CU_ASSERT(strstr((char *)b.data, "<exporter address=\"192.0.2.1\" version=\"9\" domain=\"7\" packets=\"2\" "
                                     "records=\"1\" lost-records=\"0\" lost-packets=\"3\"") != NULL);
    CU_ASSERT(strstr((char *)b.data, "malformed=\"1\"") != NULL);
    CU_ASSERT(strstr((char *)b.data, "last-malformed-offset=\"24\"") != NULL);
    dip_dynbuf_reset(&b);
    CU_ASSERT_EQUAL(dip_collect_stats_text(r.c, &b), DIP_OK);
    CU_ASSERT(strstr((char *)b.data, "192.0.2.1 v9 domain 7: packets=2 records=1") != NULL);
    CU_ASSERT(strstr((char *)b.data, "total: packets=2 records=1 malformed=1") != NULL);
    dip_dynbuf_free(&b);
    run_end(&r);
}

int dip_suite_collect(void)
{
    CU_pSuite s = CU_add_suite("collect", NULL, NULL);
    if (!s) return -1;
    CU_add_test(s, "test_v5_decodes_every_field_and_uptime_relative_times", test_v5_decodes_every_field_and_uptime_relative_times);
    CU_add_test(s, "test_v5_flow_started_before_uptime_wrapped_lands_before_export",
                test_v5_flow_started_before_uptime_wrapped_lands_before_export);
    CU_add_test(s, "test_v5_sampling_interval_from_header", test_v5_sampling_interval_from_header);
    CU_add_test(s, "test_v5_sequence_gap_counts_lost_records", test_v5_sequence_gap_counts_lost_records);
    CU_add_test(s, "test_v5_count_larger_than_payload_is_malformed", test_v5_count_larger_than_payload_is_malformed);
    CU_add_test(s, "test_v5_truncated_header_is_malformed", test_v5_truncated_header_is_malformed);
    CU_add_test(s, "test_unknown_version_is_counted_unsupported", test_unknown_version_is_counted_unsupported);
    CU_add_test(s, "test_v9_template_then_data_decodes", test_v9_template_then_data_decodes);
    CU_add_test(s, "test_v9_uptime_wraparound_between_flow_and_export", test_v9_uptime_wraparound_between_flow_and_export);
    CU_add_test(s, "test_v9_data_before_template_is_buffered_then_decoded",
                test_v9_data_before_template_is_buffered_then_decoded);
    CU_add_test(s, "test_pending_sets_bounded_by_count_bytes_and_age", test_pending_sets_bounded_by_count_bytes_and_age);
    CU_add_test(s, "test_v9_options_sampling_by_sampler_id_and_default", test_v9_options_sampling_by_sampler_id_and_default);
    CU_add_test(s, "test_v9_sequence_gap_counts_lost_packets", test_v9_sequence_gap_counts_lost_packets);
    CU_add_test(s, "test_v9_template_id_below_256_is_malformed", test_v9_template_id_below_256_is_malformed);
    CU_add_test(s, "test_v9_flowset_length_beyond_packet_is_malformed", test_v9_flowset_length_beyond_packet_is_malformed);
    CU_add_test(s, "test_v9_zero_length_flowset_is_malformed", test_v9_zero_length_flowset_is_malformed);
    CU_add_test(s, "test_v9_header_count_above_records_is_malformed", test_v9_header_count_above_records_is_malformed);
    CU_add_test(s, "test_v9_absurd_field_length_rejects_template", test_v9_absurd_field_length_rejects_template);
    CU_add_test(s, "test_v9_template_change_mid_stream_uses_new_layout", test_v9_template_change_mid_stream_uses_new_layout);
    CU_add_test(s, "test_v9_template_expires_without_refresh", test_v9_template_expires_without_refresh);
    CU_add_test(s, "test_v9_zero_bgp_next_hop_leaves_nexthop_out", test_v9_zero_bgp_next_hop_leaves_nexthop_out);
    CU_add_test(s, "test_v9_decoder_resets_all_per_record_state", test_v9_decoder_resets_all_per_record_state);
    CU_add_test(s, "test_templates_are_kept_per_exporter_and_domain", test_templates_are_kept_per_exporter_and_domain);
    CU_add_test(s, "test_stats_text_and_xml_name_exporter_and_counters", test_stats_text_and_xml_name_exporter_and_counters);
    return 0;
}
