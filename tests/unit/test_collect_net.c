/* test_collect_net.c - the collector's listeners on loopback: UDP datagrams,
 * IPFIX over TCP from several exporters at once (one sending garbage and one
 * stalling are dropped with a reason while the good one goes on), the
 * allow-list, SCTP refusal and bad URLs. */
#include <CUnit/CUnit.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "collect/collect.h"
#include "collect_build.h"

struct got {
    size_t records;
    char log[4096];
};

static int count_records(void *ctx, const struct dip_flow *f, size_t n)
{
    (void)f;
    ((struct got *)ctx)->records += n;
    return 0;
}

static void keep_log(void *ctx, int level, const char *msg)
{
    struct got *g = ctx;
    size_t len = strlen(g->log);
    snprintf(g->log + len, sizeof g->log - len, "%d %s\n", level, msg);
}

/* Runs the loop until *records reaches want or ms pass. */
static void run_until(uv_loop_t *loop, const size_t *records, size_t want, int ms)
{
    for (int i = 0; i < ms / 5 && (!records || *records < want); i++) {
        uv_run(loop, UV_RUN_NOWAIT);
        struct timespec ts = { 0, 5000000 };
        nanosleep(&ts, NULL);
    }
    uv_run(loop, UV_RUN_NOWAIT);
}

static void drain_and_close(uv_loop_t *loop)
{
    uv_run(loop, UV_RUN_DEFAULT);
    CU_ASSERT_EQUAL(uv_loop_close(loop), 0);
}

static struct sockaddr_in loopback(int port)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(0x7f000001);
    return a;
}

static void v5_packet(struct pkt *p, uint16_t n)
{
    v5_begin(p, n, 1000, 1700000000, 0, 0, 0, 0, 0);
    for (uint16_t i = 0; i < n; i++) v5_rec(p, 0x0a000001 + i, 0x0a000002, 1, 2, 6, 1, 40, 900, 950);
}

static void test_udp_listener_decodes_datagrams_with_large_buffer(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct dip_collect *c;
    CU_ASSERT_FATAL(dip_collect_new(NULL, &c) == DIP_OK);
    struct got g = { 0, "" };
    struct dip_collect_sink sink = { count_records, &g };
    struct dip_collect_listen_options opt;
    dip_collect_listen_options_default(&opt);
    opt.log = keep_log;
    opt.log_ctx = &g;
    struct dip_collect_listener *l;
    struct dip_errbuf eb = { "" };
    CU_ASSERT_FATAL(dip_collect_listen(&loop, c, "udp://127.0.0.1:0", &opt, &sink, &l, &eb) == DIP_OK);
    int port = dip_collect_listener_port(l);
    CU_ASSERT(port > 0);
    struct dip_collect_listener_stats ls;
    dip_collect_listener_stats(l, &ls);
    CU_ASSERT(ls.udp_rcvbuf >= 4u << 20); /* granted (Linux reports double) */
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in to = loopback(port);
    static struct pkt p;
    v5_packet(&p, 30);
    for (int i = 0; i < 10; i++) sendto(fd, p.b, p.n, 0, (struct sockaddr *)&to, sizeof to);
    run_until(&loop, &g.records, 300, 2000);
    CU_ASSERT_EQUAL(g.records, 300);
    dip_collect_listener_stats(l, &ls);
    CU_ASSERT_EQUAL(ls.datagrams, 10);
    close(fd);
    dip_collect_listener_close(l);
    drain_and_close(&loop);
    dip_collect_free(c);
}

static void test_udp_allow_list_drops_other_exporters(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct dip_collect *c;
    CU_ASSERT_FATAL(dip_collect_new(NULL, &c) == DIP_OK);
    struct got g = { 0, "" };
    struct dip_collect_sink sink = { count_records, &g };
    struct dip_collect_listen_options opt;
    dip_collect_listen_options_default(&opt);
    struct dip_addr allow;
    dip_addr_from_v4(&allow, 0x0a000001);
    opt.allow = &allow;
    opt.nallow = 1;
    struct dip_collect_listener *l;
    CU_ASSERT_FATAL(dip_collect_listen(&loop, c, "udp://127.0.0.1:0", &opt, &sink, &l, NULL) == DIP_OK);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in to = loopback(dip_collect_listener_port(l));
    static struct pkt p;
    v5_packet(&p, 1);
    sendto(fd, p.b, p.n, 0, (struct sockaddr *)&to, sizeof to);
    run_until(&loop, NULL, 0, 200);
    struct dip_collect_listener_stats ls;
    dip_collect_listener_stats(l, &ls);
    CU_ASSERT_EQUAL(ls.denied, 1);
    CU_ASSERT_EQUAL(g.records, 0);
    close(fd);
    dip_collect_listener_close(l);
    drain_and_close(&loop);
    dip_collect_free(c);
}

static int tcp_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in to = loopback(port);
    if (connect(fd, (struct sockaddr *)&to, sizeof to) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static size_t ipfix_stream(uint8_t *buf, int messages)
{
    static const uint16_t f[] = { 8, 4, 12, 4, 2, 4, 1, 4 };
    static struct pkt p;
    size_t n = 0;
    ipfix_begin(&p, 1700000000, 0, 5);
    set_begin(&p, 2);
    tmpl_rec(&p, 256, 4, f);
    set_end(&p);
    ipfix_end(&p);
    memcpy(buf, p.b, p.n);
    n += p.n;
    for (int m = 0; m < messages; m++) {
        ipfix_begin(&p, 1700000000, (uint32_t)(m * 10), 5);
        set_begin(&p, 256);
        for (int i = 0; i < 10; i++) { pk_ip4(&p, 10, 0, (uint8_t)m, (uint8_t)i); pk_ip4(&p, 10, 9, 9, 9); pk_u32(&p, 1); pk_u32(&p, 64); }
        set_end(&p);
        ipfix_end(&p);
        memcpy(buf + n, p.b, p.n);
        n += p.n;
    }
    return n;
}

/* A loop, a collector and a TCP listener on a free loopback port whose log
 * goes to g, dropping exporters stuck for idle_ms. */
static struct dip_collect_listener *tcp_listener(uv_loop_t *loop, struct dip_collect **c,
                                                 const struct dip_collect_sink *sink, struct got *g, uint32_t idle_ms)
{
    uv_loop_init(loop);
    CU_ASSERT_FATAL(dip_collect_new(NULL, c) == DIP_OK);
    struct dip_collect_listen_options opt;
    dip_collect_listen_options_default(&opt);
    opt.tcp_idle_ms = idle_ms;
    opt.log = keep_log;
    opt.log_ctx = g;
    struct dip_collect_listener *l = NULL;
    CU_ASSERT_FATAL(dip_collect_listen(loop, *c, "tcp://127.0.0.1:0", &opt, sink, &l, NULL) == DIP_OK);
    return l;
}

static void test_tcp_drops_garbage_and_stalled_exporters_keeps_quiet_ones(void)
{
    uv_loop_t loop;
    struct dip_collect *c;
    struct got g = { 0, "" };
    struct dip_collect_sink sink = { count_records, &g };
    struct dip_collect_listener *l = tcp_listener(&loop, &c, &sink, &g, 150);
    int port = dip_collect_listener_port(l);
    static uint8_t buf[8192];
    size_t n = ipfix_stream(buf, 5);

    int garbage = tcp_connect(port), stalled = tcp_connect(port), good = tcp_connect(port);
    CU_ASSERT_FATAL(garbage >= 0 && stalled >= 0 && good >= 0);
    CU_ASSERT(write(garbage, "GET / HTTP/1.0\r\n\r\n", 18) == 18);
    CU_ASSERT(write(stalled, buf, 30) == 30); /* a message that never completes */
    /* the good one trickles in 20-byte pieces, a whole message every ~45 ms, for
     * longer than the stalled one may wait */
    for (size_t off = 0; off < n; off += 20) {
        size_t k = off + 20 <= n ? 20 : n - off;
        CU_ASSERT(write(good, buf + off, k) == (ssize_t)k);
        run_until(&loop, NULL, 0, 5);
    }
    run_until(&loop, &g.records, 50, 2000);
    if (g.records != 50) printf("\n  records %zu, log:\n%s", g.records, g.log);
    CU_ASSERT_EQUAL(g.records, 50);
    run_until(&loop, NULL, 0, 400); /* the good one, quiet between messages, stays */
    struct dip_collect_listener_stats ls;
    dip_collect_listener_stats(l, &ls);
    CU_ASSERT_EQUAL(ls.sessions, 3);
    CU_ASSERT_EQUAL(ls.sessions_dropped, 2);
    CU_ASSERT(strstr(g.log, "not an IPFIX message header") != NULL);
    CU_ASSERT(strstr(g.log, "no complete message for 150 ms (30 bytes") != NULL);
    close(garbage);
    close(stalled);
    close(good);
    dip_collect_listener_close(l);
    drain_and_close(&loop);
    dip_collect_free(c);
}

/* A paused TCP listener reads nothing (and drops nobody as idle, however
 * long the pause), new sessions included; resumed, it takes every record. */
static void test_tcp_pause_holds_exporters_back_and_loses_nothing(void)
{
    uv_loop_t loop;
    struct dip_collect *c;
    struct got g = { 0, "" };
    struct dip_collect_sink sink = { count_records, &g };
    struct dip_collect_listener *l = tcp_listener(&loop, &c, &sink, &g, 100);
    int port = dip_collect_listener_port(l);
    static uint8_t buf[8192];
    size_t n = ipfix_stream(buf, 5);
    int early = tcp_connect(port);
    CU_ASSERT_FATAL(early >= 0);
    run_until(&loop, NULL, 0, 20); /* accepted, reading */
    dip_collect_listener_pause(l, true);
    int late = tcp_connect(port); /* accepted while paused */
    CU_ASSERT_FATAL(late >= 0);
    CU_ASSERT(write(early, buf, n) == (ssize_t)n);
    CU_ASSERT(write(late, buf, n) == (ssize_t)n);
    run_until(&loop, NULL, 0, 300); /* three idle periods */
    CU_ASSERT_EQUAL(g.records, 0);
    dip_collect_listener_pause(l, false);
    run_until(&loop, &g.records, 100, 2000);
    if (g.records != 100) printf("\n  records %zu, log:\n%s", g.records, g.log);
    CU_ASSERT_EQUAL(g.records, 100);
    struct dip_collect_listener_stats ls;
    dip_collect_listener_stats(l, &ls);
    CU_ASSERT_EQUAL(ls.sessions, 2);
    CU_ASSERT_EQUAL(ls.sessions_dropped, 0);
    close(early);
    close(late);
    dip_collect_listener_close(l);
    drain_and_close(&loop);
    dip_collect_free(c);
}

static void test_sctp_and_bad_urls_are_refused_clearly(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct dip_collect *c;
    CU_ASSERT_FATAL(dip_collect_new(NULL, &c) == DIP_OK);
    struct dip_collect_listener *l = NULL;
    struct dip_errbuf eb = { "" };
    CU_ASSERT_EQUAL(dip_collect_listen(&loop, c, "sctp://127.0.0.1:4739", NULL, NULL, &l, &eb), DIP_EUNSUPP);
    int fd = socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP);
    if (fd < 0) {
        CU_ASSERT(strstr(eb.msg, "SCTP is not supported by this kernel") != NULL);
    } else {
        close(fd);
    }
    CU_ASSERT_EQUAL(dip_collect_listen(&loop, c, "http://127.0.0.1:80", NULL, NULL, &l, &eb), DIP_EINVAL);
    CU_ASSERT_EQUAL(dip_collect_listen(&loop, c, "udp://127.0.0.1", NULL, NULL, &l, &eb), DIP_EINVAL);
    CU_ASSERT_EQUAL(dip_collect_listen(&loop, c, "udp://host.example:2055", NULL, NULL, &l, &eb), DIP_EINVAL);
    CU_ASSERT_EQUAL(dip_collect_listen(&loop, c, "tcp://[::1]:70000", NULL, NULL, &l, &eb), DIP_EINVAL);
    CU_ASSERT_EQUAL(dip_collect_listen(&loop, c, "udp://[::1]:0", NULL, NULL, &l, &eb) == DIP_OK ||
                        strstr(eb.msg, "address") != NULL, 1);
    if (l) dip_collect_listener_close(l);
    drain_and_close(&loop);
    dip_collect_free(c);
}

int dip_suite_collect_net(void)
{
    CU_pSuite s = CU_add_suite("collect_net", NULL, NULL);
    if (!s) return -1;
    CU_add_test(s, "test_udp_listener_decodes_datagrams_with_large_buffer", test_udp_listener_decodes_datagrams_with_large_buffer);
    CU_add_test(s, "test_udp_allow_list_drops_other_exporters", test_udp_allow_list_drops_other_exporters);
    CU_add_test(s, "test_tcp_pause_holds_exporters_back_and_loses_nothing",
                test_tcp_pause_holds_exporters_back_and_loses_nothing);
    CU_add_test(s, "test_tcp_drops_garbage_and_stalled_exporters_keeps_quiet_ones",
                test_tcp_drops_garbage_and_stalled_exporters_keeps_quiet_ones);
    CU_add_test(s, "test_sctp_and_bad_urls_are_refused_clearly", test_sctp_and_bad_urls_are_refused_clearly);
    return 0;
}
