/* test_net.c - node links (src/net/): the frame reader fed in every split and
 * refusing oversize frames, the private CA, TLS 1.3 echo with mutual
 * authentication (a 20 MB frame both ways, a foreign CA refused), plain and
 * sniffing listeners, refused connects, idle timeouts, back-pressure, and the
 * blocking helpers against a server loop in another thread. All on loopback,
 * ephemeral ports, a PKI generated into a temporary directory. */
#include <CUnit/CUnit.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <time.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "net/net.h"

static char pki_dir[64], evil_dir[64];

static void path_in(char *out, size_t n, const char *dir, const char *file)
{
    snprintf(out, n, "%s/%s", dir, file);
}

/* TLS context for NAME from dir, trusting ca_dir's CA. */
static struct dip_net_tls *tls_for(const char *ca_dir, const char *dir, const char *name)
{
    char ca[128], cert[128], key[128], f[80];
    path_in(ca, sizeof ca, ca_dir, "ca.pem");
    snprintf(f, sizeof f, "%s.pem", name);
    path_in(cert, sizeof cert, dir, f);
    snprintf(f, sizeof f, "%s.key", name);
    path_in(key, sizeof key, dir, f);
    struct dip_net_tls *t = NULL;
    struct dip_errbuf eb = { "" };
    int rc = dip_net_tls_new(ca, cert, key, true, &t, &eb);
    if (rc) printf("\n  tls_for(%s): %s\n", name, eb.msg);
    return t;
}

static int suite_init(void)
{
    snprintf(pki_dir, sizeof pki_dir, "/tmp/dip_net_XXXXXX");
    snprintf(evil_dir, sizeof evil_dir, "/tmp/dip_net_evil_XXXXXX");
    if (!mkdtemp(pki_dir) || !mkdtemp(evil_dir)) return -1;
    static const struct dip_net_pki_name names[] = { { "server", DIP_NET_ROLE_LEAF },
                                                     { "client", DIP_NET_ROLE_CLIENT } };
    static const struct dip_net_pki_name evil[] = { { "evil", DIP_NET_ROLE_FRONT } };
    struct dip_errbuf eb = { "" };
    if (dip_net_pki_ensure(pki_dir, names, 2, &eb) != DIP_OK) return -1;
    if (dip_net_pki_ensure(evil_dir, evil, 1, &eb) != DIP_OK) return -1;
    return 0;
}

static int suite_clean(void)
{
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", pki_dir, evil_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- the frame reader ---- */

struct got_frames {
    int n;
    uint8_t type[8];
    uint64_t id[8];
    size_t len[8];
    uint8_t payload[8][400];
};

static int collect_frame(void *ctx, const struct dip_net_frame *f)
{
    struct got_frames *g = ctx;
    if (g->n >= 8 || f->len > sizeof g->payload[0]) return DIP_ERANGE;
    g->type[g->n] = f->type;
    g->id[g->n] = f->id;
    g->len[g->n] = f->len;
    memcpy(g->payload[g->n], f->payload, f->len);
    g->n++;
    return 0;
}

static size_t build_stream(uint8_t *out)
{
    static const size_t lens[] = { 0, 5, 300, 1 };
    size_t n = 0;
    for (int i = 0; i < 4; i++) {
        dip_net_frame_header(out + n, (uint8_t)(10 + i), 0x0102030405060708ull * (uint64_t)(i + 1), lens[i]);
        n += DIP_NET_FRAME_HEADER;
        for (size_t j = 0; j < lens[i]; j++) out[n++] = (uint8_t)(j * 3 + (size_t)i);
    }
    return n;
}

static void check_frames(const struct got_frames *g)
{
    static const size_t lens[] = { 0, 5, 300, 1 };
    CU_ASSERT_EQUAL_FATAL(g->n, 4);
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL(g->type[i], 10 + i);
        CU_ASSERT_EQUAL(g->id[i], 0x0102030405060708ull * (uint64_t)(i + 1));
        CU_ASSERT_EQUAL_FATAL(g->len[i], lens[i]);
        for (size_t j = 0; j < lens[i]; j++) CU_ASSERT_EQUAL_FATAL(g->payload[i][j], (uint8_t)(j * 3 + (size_t)i));
    }
}

static void test_frame_reader_split_at_every_byte(void)
{
    uint8_t s[1024];
    size_t n = build_stream(s);
    for (size_t cut = 0; cut <= n; cut++) { /* two pieces */
        struct dip_net_frame_reader r;
        struct got_frames g = { 0 };
        dip_net_frame_reader_init(&r, 1000);
        CU_ASSERT_EQUAL(dip_net_frame_reader_feed(&r, s, cut, collect_frame, &g, NULL), DIP_OK);
        CU_ASSERT_EQUAL(dip_net_frame_reader_feed(&r, s + cut, n - cut, collect_frame, &g, NULL), DIP_OK);
        check_frames(&g);
        CU_ASSERT_EQUAL(r.offset, n);
        CU_ASSERT_EQUAL(r.buf.len, 0);
        dip_net_frame_reader_free(&r);
    }
    for (size_t a = 1; a < n; a += 7) /* three pieces */
        for (size_t b = a; b <= n; b += 3) {
            struct dip_net_frame_reader r;
            struct got_frames g = { 0 };
            dip_net_frame_reader_init(&r, 1000);
            dip_net_frame_reader_feed(&r, s, a, collect_frame, &g, NULL);
            dip_net_frame_reader_feed(&r, s + a, b - a, collect_frame, &g, NULL);
            dip_net_frame_reader_feed(&r, s + b, n - b, collect_frame, &g, NULL);
            check_frames(&g);
            dip_net_frame_reader_free(&r);
        }
    struct dip_net_frame_reader r; /* one byte at a time */
    struct got_frames g = { 0 };
    dip_net_frame_reader_init(&r, 1000);
    for (size_t i = 0; i < n; i++) CU_ASSERT_EQUAL(dip_net_frame_reader_feed(&r, s + i, 1, collect_frame, &g, NULL), 0);
    check_frames(&g);
    dip_net_frame_reader_free(&r);
}

/* The rest of a frame written in place (as a TLS link decrypts into it)
 * gives the frames a feed of the same bytes gives. */
static void test_frame_reader_space_takes_the_rest_of_a_frame_in_place(void)
{
    uint8_t s[1024];
    size_t n = build_stream(s);
    size_t third = 2 * DIP_NET_FRAME_HEADER + 5; /* the 300-byte frame starts here */
    for (size_t cut = third; cut < third + DIP_NET_FRAME_HEADER + 300; cut++) {
        struct dip_net_frame_reader r;
        struct got_frames g = { 0 };
        size_t room = 0;
        dip_net_frame_reader_init(&r, 1000);
        CU_ASSERT_PTR_NULL(dip_net_frame_reader_space(&r, &room)); /* nothing pending */
        CU_ASSERT_EQUAL(dip_net_frame_reader_feed(&r, s, cut, collect_frame, &g, NULL), DIP_OK);
        uint8_t *space = dip_net_frame_reader_space(&r, &room);
        if (cut < third + DIP_NET_FRAME_HEADER) { /* the header is not whole: the frame's length is not known */
            CU_ASSERT_PTR_NULL(space);
            CU_ASSERT_EQUAL(dip_net_frame_reader_feed(&r, s + cut, n - cut, collect_frame, &g, NULL), DIP_OK);
        } else {
            size_t end = third + DIP_NET_FRAME_HEADER + 300;
            CU_ASSERT_PTR_NOT_NULL_FATAL(space);
            CU_ASSERT_EQUAL_FATAL(room, end - cut);
            size_t half = room / 2;
            memcpy(space, s + cut, half);
            CU_ASSERT_EQUAL(dip_net_frame_reader_filled(&r, half, collect_frame, &g), DIP_OK);
            CU_ASSERT_EQUAL(g.n, 2);
            space = dip_net_frame_reader_space(&r, &room);
            CU_ASSERT_PTR_NOT_NULL_FATAL(space);
            CU_ASSERT_EQUAL_FATAL(room, end - cut - half);
            memcpy(space, s + cut + half, room);
            CU_ASSERT_EQUAL(dip_net_frame_reader_filled(&r, room, collect_frame, &g), DIP_OK);
            CU_ASSERT_EQUAL(g.n, 3);
            CU_ASSERT_PTR_NULL(dip_net_frame_reader_space(&r, &room)); /* delivered */
            CU_ASSERT_EQUAL(dip_net_frame_reader_feed(&r, s + end, n - end, collect_frame, &g, NULL), DIP_OK);
        }
        check_frames(&g);
        CU_ASSERT_EQUAL(r.offset, n);
        CU_ASSERT_EQUAL(r.buf.len, 0);
        dip_net_frame_reader_free(&r);
    }
}

static int stop_after_first(void *ctx, const struct dip_net_frame *f)
{
    (*(int *)ctx)++;
    return 7;
}

static void test_frame_reader_stops_at_callback_error(void)
{
    uint8_t s[1024];
    size_t n = build_stream(s);
    struct dip_net_frame_reader r;
    int calls = 0;
    dip_net_frame_reader_init(&r, 1000);
    CU_ASSERT_EQUAL(dip_net_frame_reader_feed(&r, s, n, stop_after_first, &calls, NULL), 7);
    CU_ASSERT_EQUAL(calls, 1);
    CU_ASSERT_EQUAL(r.offset, DIP_NET_FRAME_HEADER); /* the first frame (empty) was consumed */
    dip_net_frame_reader_free(&r);
}

static void test_frame_reader_refuses_oversize_frame_naming_offset(void)
{
    uint8_t s[200];
    size_t n = 0;
    dip_net_frame_header(s, 1, 1, 20);
    memset(s + DIP_NET_FRAME_HEADER, 'x', 20);
    n = DIP_NET_FRAME_HEADER + 20;
    dip_net_frame_header(s + n, 2, 2, 101); /* one beyond the limit */
    n += DIP_NET_FRAME_HEADER;
    for (size_t step = 1; step <= n; step = step == 1 ? n : n + 1) {
        struct dip_net_frame_reader r;
        struct got_frames g = { 0 };
        struct dip_errbuf eb = { "" };
        dip_net_frame_reader_init(&r, 100);
        int rc = DIP_OK;
        for (size_t i = 0; i < n && rc == DIP_OK; i += step)
            rc = dip_net_frame_reader_feed(&r, s + i, step < n - i ? step : n - i, collect_frame, &g, &eb);
        CU_ASSERT_EQUAL(rc, DIP_EPROTO);
        CU_ASSERT_EQUAL(g.n, 1);
        CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "offset 33"));
        CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "101"));
        dip_net_frame_reader_free(&r);
    }
    /* A limit of exactly the length is fine. */
    struct dip_net_frame_reader r;
    uint8_t one[DIP_NET_FRAME_HEADER + 100];
    dip_net_frame_header(one, 3, 3, 100);
    memset(one + DIP_NET_FRAME_HEADER, 0, 100);
    dip_net_frame_reader_init(&r, 100);
    int calls = 0;
    CU_ASSERT_EQUAL(dip_net_frame_reader_feed(&r, one, sizeof one, stop_after_first, &calls, NULL), 7);
    CU_ASSERT_EQUAL(calls, 1);
    dip_net_frame_reader_free(&r);
}

/* ---- PKI ---- */

static X509 *read_cert(const char *dir, const char *file)
{
    char p[128];
    path_in(p, sizeof p, dir, file);
    FILE *f = fopen(p, "r");
    if (!f) return NULL;
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    return x;
}

static void test_pki_ensure_issues_signed_certs_and_is_idempotent(void)
{
    char p[128];
    struct stat st;
    path_in(p, sizeof p, pki_dir, "server.key");
    CU_ASSERT_EQUAL_FATAL(stat(p, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
    path_in(p, sizeof p, pki_dir, "ca.key");
    CU_ASSERT_EQUAL_FATAL(stat(p, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);

    X509 *ca = read_cert(pki_dir, "ca.pem"), *srv = read_cert(pki_dir, "server.pem");
    X509 *evil = read_cert(evil_dir, "evil.pem");
    CU_ASSERT_PTR_NOT_NULL_FATAL(ca);
    CU_ASSERT_PTR_NOT_NULL_FATAL(srv);
    CU_ASSERT_PTR_NOT_NULL_FATAL(evil);
    char cn[64] = "";
    X509_NAME_get_text_by_NID(X509_get_subject_name(srv), NID_commonName, cn, sizeof cn);
    CU_ASSERT_STRING_EQUAL(cn, "server");
    EVP_PKEY *ca_pub = X509_get0_pubkey(ca);
    CU_ASSERT_EQUAL(X509_verify(srv, ca_pub), 1);
    CU_ASSERT_NOT_EQUAL(X509_verify(evil, ca_pub), 1);
    CU_ASSERT_EQUAL(X509_check_host(srv, "localhost", 0, 0, NULL), 1);
    CU_ASSERT_EQUAL(X509_check_ip_asc(srv, "127.0.0.1", 0), 1);
    CU_ASSERT_EQUAL(X509_check_ip_asc(srv, "::1", 0), 1);
    CU_ASSERT_EQUAL(X509_check_host(srv, "server", 0, 0, NULL), 1);

    char ou[32] = "";
    X509_NAME_get_text_by_NID(X509_get_subject_name(srv), NID_organizationalUnitName, ou, sizeof ou);
    CU_ASSERT_STRING_EQUAL(ou, DIP_NET_ROLE_LEAF);

    /* Idempotent: existing files stay, a new name is added under the same CA. */
    static const struct dip_net_pki_name names[] = {
        { "server", DIP_NET_ROLE_LEAF }, { "client", DIP_NET_ROLE_CLIENT }, { "third", DIP_NET_ROLE_INDEXER } };
    struct dip_errbuf eb = { "" };
    CU_ASSERT_EQUAL_FATAL(dip_net_pki_ensure(pki_dir, names, 3, &eb), DIP_OK);
    X509 *srv2 = read_cert(pki_dir, "server.pem"), *third = read_cert(pki_dir, "third.pem");
    CU_ASSERT_PTR_NOT_NULL_FATAL(srv2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(third);
    CU_ASSERT_EQUAL(X509_cmp(srv, srv2), 0);
    CU_ASSERT_EQUAL(X509_verify(third, ca_pub), 1);
    CU_ASSERT_NOT_EQUAL(ASN1_INTEGER_cmp(X509_get0_serialNumber(srv), X509_get0_serialNumber(third)), 0);

    static const struct dip_net_pki_name bad[] = { { "../x", DIP_NET_ROLE_LEAF } };
    CU_ASSERT_EQUAL(dip_net_pki_ensure(pki_dir, bad, 1, &eb), DIP_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "../x"));
    static const struct dip_net_pki_name no_role[] = { { "fourth", "root" } };
    CU_ASSERT_EQUAL(dip_net_pki_ensure(pki_dir, no_role, 1, &eb), DIP_EINVAL);

    /* A certificate naming another role is issued anew (same CA, new key). */
    static const struct dip_net_pki_name moved[] = { { "third", DIP_NET_ROLE_LEAF } };
    CU_ASSERT_EQUAL_FATAL(dip_net_pki_ensure(pki_dir, moved, 1, &eb), DIP_OK);
    X509 *third2 = read_cert(pki_dir, "third.pem");
    CU_ASSERT_PTR_NOT_NULL_FATAL(third2);
    X509_NAME_get_text_by_NID(X509_get_subject_name(third2), NID_organizationalUnitName, ou, sizeof ou);
    CU_ASSERT_STRING_EQUAL(ou, DIP_NET_ROLE_LEAF);
    CU_ASSERT_EQUAL(X509_verify(third2, ca_pub), 1);
    CU_ASSERT_NOT_EQUAL(X509_cmp(third, third2), 0);
    X509_free(third2);
    X509_free(ca);
    X509_free(srv);
    X509_free(srv2);
    X509_free(third);
    X509_free(evil);
}

/* ---- a loop with an echo server ---- */

struct side {
    int opened, closed, code, frames, accepted;
    char msg[512];
    char name[64];
    char role[32];
    bool tls_seen[4];
    size_t bytes;        /* payload bytes seen */
    bool bad_payload;
    int drains;
    uint32_t idle_ms;    /* server: set on accepted links */
    bool pause;          /* server: pause accepted links */
    bool echo;           /* server: echo frames back */
    struct dip_net_link *link;
};

/* Payload pattern of frame id: checkable without storing 20 MB twice. */
static uint8_t pattern(uint64_t id, size_t i) { return (uint8_t)(i * 7 + id * 13 + (i >> 9)); }

static void check_pattern(struct side *s, const struct dip_net_frame *f)
{
    for (size_t i = 0; i < f->len; i++)
        if (f->payload[i] != pattern(f->id, i)) {
            s->bad_payload = true;
            break;
        }
    s->bytes += f->len;
    s->frames++;
}

static void srv_frame(struct dip_net_link *l, const struct dip_net_frame *f, void *ctx)
{
    struct side *s = ctx;
    check_pattern(s, f);
    if (s->echo) CU_ASSERT_EQUAL(dip_net_link_send(l, (uint8_t)(f->type + 1), f->id, f->payload, f->len, NULL, 0), 0);
}

static void srv_close(struct dip_net_link *l, int code, const char *msg, void *ctx)
{
    struct side *s = ctx;
    s->closed++;
    if (code || !s->code) {
        s->code = code;
        snprintf(s->msg, sizeof s->msg, "%s", msg);
    }
}

static void srv_accept(struct dip_net_link *l, void *ctx)
{
    struct side *s = ctx;
    if (s->accepted < 4) s->tls_seen[s->accepted] = dip_net_link_is_tls(l);
    s->accepted++;
    snprintf(s->name, sizeof s->name, "%s", dip_net_link_peer_name(l));
    snprintf(s->role, sizeof s->role, "%s", dip_net_link_peer_role(l));
    CU_ASSERT(dip_net_link_peer_is_loopback(l));
    if (s->idle_ms) dip_net_link_set_idle_timeout(l, s->idle_ms);
    if (s->pause) dip_net_link_pause(l, true);
    s->link = l;
}

static const struct dip_net_link_callbacks srv_cb = { .on_frame = srv_frame, .on_close = srv_close };

static void cli_frame(struct dip_net_link *l, const struct dip_net_frame *f, void *ctx)
{
    struct side *s = ctx;
    check_pattern(s, f);
}

static void cli_open(struct dip_net_link *l, void *ctx)
{
    struct side *s = ctx;
    s->opened++;
    snprintf(s->name, sizeof s->name, "%s", dip_net_link_peer_name(l));
    snprintf(s->role, sizeof s->role, "%s", dip_net_link_peer_role(l));
}

static void cli_drain(struct dip_net_link *l, void *ctx)
{
    struct side *s = ctx;
    s->drains++;
    CU_ASSERT(dip_net_link_queued(l) < DIP_NET_LINK_LOW_WATER);
    CU_ASSERT(dip_net_link_queued(l) > 0 || s->drains == 1);
}

static void cli_close(struct dip_net_link *l, int code, const char *msg, void *ctx)
{
    struct side *s = ctx;
    s->closed++;
    s->code = code;
    snprintf(s->msg, sizeof s->msg, "%s", msg);
    s->link = NULL;
}

static const struct dip_net_link_callbacks cli_cb = { .on_frame = cli_frame, .on_open = cli_open,
                                                      .on_drain = cli_drain, .on_close = cli_close };

static void wake(uv_timer_t *t) {}

/* Runs loop until *until reaches want or ms pass. Returns: true if reached. */
static bool run_until(uv_loop_t *loop, const int *until, int want, uint64_t ms)
{
    uv_timer_t guard;
    uv_timer_init(loop, &guard);
    uv_timer_start(&guard, wake, 20, 20);
    uv_update_time(loop);
    uint64_t end = uv_now(loop) + ms;
    while (*until < want && uv_now(loop) < end) uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return *until >= want;
}

/* Closes the listener and requires that every handle goes away. */
static void finish_loop(uv_loop_t *loop, struct dip_net_listener *ls)
{
    if (ls) dip_net_listener_close(ls);
    int never = 0;
    run_until(loop, &never, 1, 300);
    for (int i = 0; i < 200 && uv_loop_alive(loop); i++) uv_run(loop, UV_RUN_NOWAIT);
    CU_ASSERT_EQUAL(uv_loop_close(loop), 0);
}

static uint8_t *make_payload(uint64_t id, size_t n)
{
    uint8_t *p = malloc(n ? n : 1);
    for (size_t i = 0; i < n; i++) p[i] = pattern(id, i);
    return p;
}

/* Echoes two frames (a small one and `big` bytes) over a link of the given kind. */
static void echo_round_trip(enum dip_net_listen_mode mode, bool client_tls, size_t big)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct dip_net_tls *st = tls_for(pki_dir, pki_dir, "server"), *ct = tls_for(pki_dir, pki_dir, "client");
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ct);
    struct side srv = { .echo = true }, cli = { 0 };
    struct dip_net_listener *ls = NULL;
    struct dip_errbuf eb = { "" };
    CU_ASSERT_EQUAL_FATAL(dip_net_listen(&loop, mode == DIP_NET_LISTEN_PLAIN ? NULL : st, mode, "127.0.0.1", 0, 5000,
                                         srv_accept, &srv_cb, &srv, &ls, &eb),
                          DIP_OK);
    int port = dip_net_listener_port(ls);
    CU_ASSERT(port > 0);
    struct dip_net_link *l = NULL;
    CU_ASSERT_EQUAL_FATAL(dip_net_link_connect(&loop, client_tls ? ct : NULL, "127.0.0.1", port, 5000, &cli_cb, &cli,
                                               &l, &eb),
                          DIP_OK);
    cli.link = l;
    uint8_t *small = make_payload(5, 100), *large = make_payload(6, big);
    /* Queued before the link opens: flushed once connected (and after the handshake). */
    CU_ASSERT_EQUAL(dip_net_link_send(l, 1, 5, small, 60, small + 60, 40), DIP_OK);
    CU_ASSERT_EQUAL(dip_net_link_send(l, 1, 6, large, big, NULL, 0), DIP_OK);
    CU_ASSERT(dip_net_link_queued(l) >= big);
    CU_ASSERT(run_until(&loop, &cli.frames, 2, 30000));
    CU_ASSERT_EQUAL(cli.opened, 1);
    CU_ASSERT_EQUAL(srv.frames, 2);
    CU_ASSERT_EQUAL(cli.bytes, 100 + big);
    CU_ASSERT_FALSE(cli.bad_payload);
    CU_ASSERT_FALSE(srv.bad_payload);
    CU_ASSERT_EQUAL(srv.tls_seen[0], client_tls);
    CU_ASSERT_EQUAL(dip_net_link_is_tls(l), client_tls);
    if (client_tls) {
        CU_ASSERT_STRING_EQUAL(cli.name, "server");
        CU_ASSERT_STRING_EQUAL(srv.name, "client");
        CU_ASSERT_STRING_EQUAL(srv.role, DIP_NET_ROLE_CLIENT);
    } else {
        CU_ASSERT_STRING_EQUAL(cli.name, "");
        CU_ASSERT_STRING_EQUAL(srv.name, "");
    }
    CU_ASSERT_EQUAL(dip_net_link_queued(l), 0);
    dip_net_link_close(l);
    dip_net_link_close(l); /* idempotent */
    CU_ASSERT(run_until(&loop, &srv.closed, 1, 5000));
    CU_ASSERT(run_until(&loop, &cli.closed, 1, 5000));
    CU_ASSERT_EQUAL(cli.closed, 1);
    CU_ASSERT_EQUAL(srv.closed, 1);
    CU_ASSERT_EQUAL(cli.code, DIP_OK);
    CU_ASSERT_EQUAL(srv.code, DIP_OK);
    free(small);
    free(large);
    finish_loop(&loop, ls);
    dip_net_tls_free(st);
    dip_net_tls_free(ct);
}

static void test_tls_echo_both_directions_with_20mb_frame(void)
{
    echo_round_trip(DIP_NET_LISTEN_TLS, true, 20u << 20);
}

static void test_plain_link_echo(void) { echo_round_trip(DIP_NET_LISTEN_PLAIN, false, 3u << 20); }

static void test_sniff_listener_serves_tls_and_plain(void)
{
    echo_round_trip(DIP_NET_LISTEN_SNIFF, true, 100000);
    echo_round_trip(DIP_NET_LISTEN_SNIFF, false, 100000);
}

static void test_client_from_another_ca_is_refused(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct dip_net_tls *st = tls_for(pki_dir, pki_dir, "server"), *evil = tls_for(pki_dir, evil_dir, "evil");
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_PTR_NOT_NULL_FATAL(evil);
    struct side srv = { .echo = true }, cli = { 0 };
    struct dip_net_listener *ls = NULL;
    struct dip_errbuf eb = { "" };
    CU_ASSERT_EQUAL_FATAL(
        dip_net_listen(&loop, st, DIP_NET_LISTEN_TLS, "127.0.0.1", 0, 5000, srv_accept, &srv_cb, &srv, &ls, &eb), 0);
    struct dip_net_link *l = NULL;
    CU_ASSERT_EQUAL_FATAL(
        dip_net_link_connect(&loop, evil, "127.0.0.1", dip_net_listener_port(ls), 5000, &cli_cb, &cli, &l, &eb), 0);
    uint8_t *p = make_payload(1, 10);
    dip_net_link_send(l, 1, 1, p, 10, NULL, 0);
    CU_ASSERT(run_until(&loop, &srv.closed, 1, 5000));
    CU_ASSERT(run_until(&loop, &cli.closed, 1, 5000));
    CU_ASSERT_EQUAL(srv.accepted, 0); /* never handed to the owner */
    CU_ASSERT_EQUAL(srv.frames, 0);
    CU_ASSERT_EQUAL(cli.frames, 0);
    CU_ASSERT_EQUAL(srv.code, DIP_EPROTO);
    CU_ASSERT_EQUAL(cli.code, DIP_EPROTO);
    CU_ASSERT_PTR_NOT_NULL(strstr(srv.msg, "TLS handshake with 127.0.0.1:"));
    CU_ASSERT_PTR_NOT_NULL(strstr(srv.msg, "certificate verify failed"));
    CU_ASSERT_PTR_NOT_NULL(strstr(cli.msg, "127.0.0.1:"));
    free(p);
    finish_loop(&loop, ls);
    dip_net_tls_free(st);
    dip_net_tls_free(evil);
}

static void test_server_from_another_ca_is_refused_by_client(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct dip_net_tls *st = tls_for(evil_dir, evil_dir, "evil"), *ct = tls_for(pki_dir, pki_dir, "client");
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ct);
    struct side srv = { 0 }, cli = { 0 };
    struct dip_net_listener *ls = NULL;
    struct dip_errbuf eb = { "" };
    CU_ASSERT_EQUAL_FATAL(
        dip_net_listen(&loop, st, DIP_NET_LISTEN_TLS, "127.0.0.1", 0, 5000, srv_accept, &srv_cb, &srv, &ls, &eb), 0);
    struct dip_net_link *l = NULL;
    int port = dip_net_listener_port(ls);
    CU_ASSERT_EQUAL_FATAL(dip_net_link_connect(&loop, ct, "127.0.0.1", port, 5000, &cli_cb, &cli, &l, &eb), 0);
    CU_ASSERT(run_until(&loop, &cli.closed, 1, 5000));
    CU_ASSERT(run_until(&loop, &srv.closed, 1, 5000));
    CU_ASSERT_EQUAL(cli.opened, 0);
    CU_ASSERT_EQUAL(cli.code, DIP_EPROTO);
    char want[96];
    snprintf(want, sizeof want, "TLS handshake with 127.0.0.1:%d failed: certificate verify failed", port);
    CU_ASSERT_PTR_NOT_NULL(strstr(cli.msg, want));
    CU_ASSERT_EQUAL(srv.code, DIP_EPROTO);
    finish_loop(&loop, ls);
    dip_net_tls_free(st);
    dip_net_tls_free(ct);
}

static void test_connect_to_closed_port_fails_quickly_with_eio(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct side srv = { 0 }, cli = { 0 };
    struct dip_net_listener *ls = NULL;
    struct dip_errbuf eb = { "" };
    CU_ASSERT_EQUAL_FATAL(dip_net_listen(&loop, NULL, DIP_NET_LISTEN_PLAIN, "127.0.0.1", 0, 0, NULL, &srv_cb, &srv,
                                         &ls, &eb),
                          0);
    int port = dip_net_listener_port(ls);
    dip_net_listener_close(ls); /* the port is now closed */
    uv_run(&loop, UV_RUN_NOWAIT);
    struct dip_net_link *l = NULL;
    uv_update_time(&loop);
    uint64_t t0 = uv_now(&loop);
    CU_ASSERT_EQUAL_FATAL(dip_net_link_connect(&loop, NULL, "127.0.0.1", port, 5000, &cli_cb, &cli, &l, &eb), 0);
    CU_ASSERT(run_until(&loop, &cli.closed, 1, 5000));
    CU_ASSERT(uv_now(&loop) - t0 < 1000);
    CU_ASSERT_EQUAL(cli.code, DIP_EIO);
    CU_ASSERT_EQUAL(cli.opened, 0);
    char want[64];
    snprintf(want, sizeof want, "127.0.0.1:%d: connection refused", port);
    CU_ASSERT_STRING_EQUAL(cli.msg, want);
    /* A bad address is refused at once. */
    CU_ASSERT_EQUAL(dip_net_link_connect(&loop, NULL, "no such host!", 1, 100, &cli_cb, &cli, &l, &eb), DIP_EINVAL);
    CU_ASSERT_EQUAL(dip_net_link_connect(&loop, NULL, "127.0.0.1", 0, 100, &cli_cb, &cli, &l, &eb), DIP_EINVAL);
    finish_loop(&loop, NULL);
}

static void test_listen_on_busy_port_says_address_in_use(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct side srv = { 0 };
    struct dip_net_listener *a = NULL, *b = NULL;
    struct dip_errbuf eb = { "" };
    CU_ASSERT_EQUAL_FATAL(
        dip_net_listen(&loop, NULL, DIP_NET_LISTEN_PLAIN, "127.0.0.1", 0, 0, NULL, &srv_cb, &srv, &a, &eb), 0);
    CU_ASSERT_EQUAL(dip_net_listen(&loop, NULL, DIP_NET_LISTEN_PLAIN, "127.0.0.1", dip_net_listener_port(a), 0, NULL,
                                   &srv_cb, &srv, &b, &eb),
                    DIP_EIO);
    CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, "address already in use"));
    CU_ASSERT_PTR_NULL(b);
    finish_loop(&loop, a);
}


static void accept_raw_silent(struct dip_net_link *l, void *ctx)
{
    dip_net_link_set_raw(l, true); /* takes the ClientHello as bytes and never answers */
}

static void test_handshake_timeouts_on_both_sides(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct dip_net_tls *st = tls_for(pki_dir, pki_dir, "server"), *ct = tls_for(pki_dir, pki_dir, "client");
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ct);
    struct side srv = { 0 }, cli = { 0 }, silent = { 0 }, cli2 = { 0 };
    struct dip_net_listener *tls_ls = NULL, *raw_ls = NULL;
    struct dip_errbuf eb = { "" };
    /* A TLS listener and a plain client that says nothing: the server gives up. */
    CU_ASSERT_EQUAL_FATAL(
        dip_net_listen(&loop, st, DIP_NET_LISTEN_TLS, "127.0.0.1", 0, 200, srv_accept, &srv_cb, &srv, &tls_ls, &eb), 0);
    struct dip_net_link *l = NULL;
    CU_ASSERT_EQUAL_FATAL(
        dip_net_link_connect(&loop, NULL, "127.0.0.1", dip_net_listener_port(tls_ls), 5000, &cli_cb, &cli, &l, &eb), 0);
    /* A TLS client and a server that never answers: the client gives up. */
    CU_ASSERT_EQUAL_FATAL(dip_net_listen(&loop, NULL, DIP_NET_LISTEN_PLAIN, "127.0.0.1", 0, 0, accept_raw_silent,
                                         &srv_cb, &silent, &raw_ls, &eb),
                          0);
    struct dip_net_link *l2 = NULL;
    int port2 = dip_net_listener_port(raw_ls);
    CU_ASSERT_EQUAL_FATAL(dip_net_link_connect(&loop, ct, "127.0.0.1", port2, 300, &cli_cb, &cli2, &l2, &eb), 0);
    uv_update_time(&loop);
    uint64_t t0 = uv_now(&loop);
    CU_ASSERT(run_until(&loop, &srv.closed, 1, 3000));
    CU_ASSERT(run_until(&loop, &cli2.closed, 1, 3000));
    CU_ASSERT(uv_now(&loop) - t0 < 2000);
    CU_ASSERT_EQUAL(srv.code, DIP_ETIMEOUT);
    CU_ASSERT_EQUAL(srv.accepted, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(srv.msg, "TLS handshake with 127.0.0.1:"));
    CU_ASSERT_EQUAL(cli2.code, DIP_ETIMEOUT);
    CU_ASSERT_EQUAL(cli2.opened, 0);
    char want[80];
    snprintf(want, sizeof want, "TLS handshake with 127.0.0.1:%d timed out after 300 ms", port2);
    CU_ASSERT_STRING_EQUAL(cli2.msg, want);
    CU_ASSERT(run_until(&loop, &cli.closed, 1, 3000));
    CU_ASSERT(run_until(&loop, &silent.closed, 1, 3000));
    dip_net_listener_close(raw_ls);
    finish_loop(&loop, tls_ls);
    dip_net_tls_free(st);
    dip_net_tls_free(ct);
}


static void test_close_flushes_queued_output_first(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct dip_net_tls *st = tls_for(pki_dir, pki_dir, "server"), *ct = tls_for(pki_dir, pki_dir, "client");
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ct);
    struct side srv = { 0 }, cli = { 0 };
    struct dip_net_listener *ls = NULL;
    struct dip_errbuf eb = { "" };
    CU_ASSERT_EQUAL_FATAL(
        dip_net_listen(&loop, st, DIP_NET_LISTEN_TLS, "127.0.0.1", 0, 5000, srv_accept, &srv_cb, &srv, &ls, &eb), 0);
    struct dip_net_link *l = NULL;
    CU_ASSERT_EQUAL_FATAL(
        dip_net_link_connect(&loop, ct, "127.0.0.1", dip_net_listener_port(ls), 5000, &cli_cb, &cli, &l, &eb), 0);
    CU_ASSERT(run_until(&loop, &cli.opened, 1, 3000));
    size_t big = 16u << 20;
    uint8_t *p = make_payload(4, big);
    CU_ASSERT_EQUAL(dip_net_link_send(l, 1, 4, p, big, NULL, 0), 0);
    CU_ASSERT_EQUAL(dip_net_link_send(l, 1, 4, p, 1000, NULL, 0), 0);
    /* the socket took what its buffers hold (a few MB: the peer has not
     * read yet), the rest waits in the link */
    CU_ASSERT(dip_net_link_queued(l) > big / 2);
    dip_net_link_close(l);
    CU_ASSERT_EQUAL(dip_net_link_send(l, 1, 4, p, 10, NULL, 0), DIP_EIO); /* closing: no more output */
    CU_ASSERT(run_until(&loop, &cli.closed, 1, 5000));
    CU_ASSERT(run_until(&loop, &srv.closed, 1, 5000));
    CU_ASSERT_EQUAL(srv.frames, 2);
    CU_ASSERT_EQUAL(srv.bytes, big + 1000);
    CU_ASSERT_FALSE(srv.bad_payload);
    CU_ASSERT_EQUAL(cli.code, DIP_OK);
    CU_ASSERT_EQUAL(srv.code, DIP_OK);
    free(p);
    finish_loop(&loop, ls);
    dip_net_tls_free(st);
    dip_net_tls_free(ct);
}

static void test_oversize_frame_on_a_link_closes_it_with_eproto(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct side srv = { 0 }, cli = { 0 };
    struct dip_net_listener *ls = NULL;
    struct dip_errbuf eb = { "" };
    CU_ASSERT_EQUAL_FATAL(dip_net_listen(&loop, NULL, DIP_NET_LISTEN_PLAIN, "127.0.0.1", 0, 0, srv_accept, &srv_cb,
                                         &srv, &ls, &eb),
                          0);
    struct dip_net_link *l = NULL;
    CU_ASSERT_EQUAL_FATAL(
        dip_net_link_connect(&loop, NULL, "127.0.0.1", dip_net_listener_port(ls), 5000, &cli_cb, &cli, &l, &eb), 0);
    uint8_t p[40];
    dip_net_frame_header(p, 1, 1, 14);
    memset(p + DIP_NET_FRAME_HEADER, 0, 14);
    for (int i = 0; i < 14; i++) p[DIP_NET_FRAME_HEADER + i] = pattern(1, (size_t)i);
    dip_net_frame_header(p + 27, 1, 2, (size_t)DIP_NET_FRAME_MAX + 1);
    CU_ASSERT_EQUAL(dip_net_link_write(l, p, sizeof p), 0);
    CU_ASSERT_EQUAL(dip_net_link_send(l, 1, 1, p, DIP_NET_FRAME_MAX, p, 1), DIP_ERANGE);
    CU_ASSERT(run_until(&loop, &srv.closed, 1, 3000));
    CU_ASSERT(run_until(&loop, &cli.closed, 1, 3000));
    CU_ASSERT_EQUAL(srv.frames, 1);
    CU_ASSERT_EQUAL(srv.code, DIP_EPROTO);
    CU_ASSERT_PTR_NOT_NULL(strstr(srv.msg, "127.0.0.1:"));
    CU_ASSERT_PTR_NOT_NULL(strstr(srv.msg, "stream offset 27"));
    finish_loop(&loop, ls);
}

static void test_idle_timeout_closes_silent_link(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct side srv = { .idle_ms = 200 }, cli = { 0 };
    struct dip_net_listener *ls = NULL;
    struct dip_errbuf eb = { "" };
    CU_ASSERT_EQUAL_FATAL(dip_net_listen(&loop, NULL, DIP_NET_LISTEN_PLAIN, "127.0.0.1", 0, 0, srv_accept, &srv_cb,
                                         &srv, &ls, &eb),
                          0);
    struct dip_net_link *l = NULL;
    CU_ASSERT_EQUAL_FATAL(
        dip_net_link_connect(&loop, NULL, "127.0.0.1", dip_net_listener_port(ls), 5000, &cli_cb, &cli, &l, &eb), 0);
    CU_ASSERT(run_until(&loop, &cli.opened, 1, 2000));
    uv_update_time(&loop);
    uint64_t t0 = uv_now(&loop);
    CU_ASSERT(run_until(&loop, &srv.closed, 1, 3000));
    uint64_t waited = uv_now(&loop) - t0;
    CU_ASSERT(waited >= 150 && waited < 1500);
    CU_ASSERT_EQUAL(srv.code, DIP_ETIMEOUT);
    CU_ASSERT_PTR_NOT_NULL(strstr(srv.msg, "127.0.0.1:"));
    CU_ASSERT(run_until(&loop, &cli.closed, 1, 3000)); /* the client sees the server go */
    finish_loop(&loop, ls);
}

/* A TCP connection from local address `from` to 127.0.0.1:port (-1 on error). */
static int connect_from(const char *from, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET }, to = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    inet_pton(AF_INET, from, &a.sin_addr);
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) || connect(fd, (struct sockaddr *)&to, sizeof to)) {
        if (fd >= 0) close(fd);
        return -1;
    }
    return fd;
}

/* Runs the loop until the listener has admitted `links` and refused `refused`. */
static bool admitted(uv_loop_t *loop, struct dip_net_listener *ls, size_t links, uint64_t refused)
{
    for (int i = 0; i < 400; i++) {
        uv_run(loop, UV_RUN_NOWAIT);
        if (dip_net_listener_links(ls) == links && dip_net_listener_refused(ls) == refused) return true;
        usleep(5000);
    }
    return false;
}

static void test_listener_caps_links_in_all_and_per_address(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct side srv = { 0 };
    struct dip_net_listener *ls = NULL;
    struct dip_errbuf eb = { "" };
    CU_ASSERT_EQUAL_FATAL(dip_net_listen(&loop, NULL, DIP_NET_LISTEN_PLAIN, "127.0.0.1", 0, 0, srv_accept, &srv_cb,
                                         &srv, &ls, &eb),
                          0);
    dip_net_listener_set_limits(ls, 3, 2, "busy\n");
    int port = dip_net_listener_port(ls);
    int a1 = connect_from("127.0.0.1", port), a2 = connect_from("127.0.0.1", port);
    int a3 = connect_from("127.0.0.1", port); /* a third from one address */
    CU_ASSERT(a1 >= 0 && a2 >= 0 && a3 >= 0);
    CU_ASSERT(admitted(&loop, ls, 2, 1));
    char said[8] = "";
    CU_ASSERT_EQUAL(recv(a3, said, sizeof said, MSG_WAITALL), 5); /* told, then closed at once */
    CU_ASSERT_EQUAL(memcmp(said, "busy\n", 5), 0);
    int b1 = connect_from("127.0.0.2", port), b2 = connect_from("127.0.0.2", port);
    CU_ASSERT(admitted(&loop, ls, 3, 2)); /* the second from .2 is one beyond 3 in all */
    CU_ASSERT_EQUAL(recv(b2, said, sizeof said, MSG_WAITALL), 5);
    close(a1); /* its link goes, and so does its place */
    CU_ASSERT(admitted(&loop, ls, 2, 2));
    int b3 = connect_from("127.0.0.2", port);
    CU_ASSERT(admitted(&loop, ls, 3, 2));
    CU_ASSERT_EQUAL(srv.accepted, 4); /* a1, a2, b1, b3 */
    close(a2);
    close(a3);
    close(b1);
    close(b2);
    close(b3);
    CU_ASSERT(admitted(&loop, ls, 0, 2));
    finish_loop(&loop, ls);
}

static void test_back_pressure_calls_on_drain(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct side srv = { .pause = true }, cli = { 0 };
    struct dip_net_listener *ls = NULL;
    struct dip_errbuf eb = { "" };
    CU_ASSERT_EQUAL_FATAL(dip_net_listen(&loop, NULL, DIP_NET_LISTEN_PLAIN, "127.0.0.1", 0, 0, srv_accept, &srv_cb,
                                         &srv, &ls, &eb),
                          0);
    struct dip_net_link *l = NULL;
    CU_ASSERT_EQUAL_FATAL(
        dip_net_link_connect(&loop, NULL, "127.0.0.1", dip_net_listener_port(ls), 5000, &cli_cb, &cli, &l, &eb), 0);
    CU_ASSERT(run_until(&loop, &cli.opened, 1, 2000));
    CU_ASSERT(run_until(&loop, &srv.accepted, 1, 2000));
    size_t chunk = 1u << 20;
    uint8_t *p = make_payload(9, chunk);
    int sent = 0;
    while (dip_net_link_queued(l) <= DIP_NET_LINK_HIGH_WATER + chunk && sent < 40) {
        CU_ASSERT_EQUAL_FATAL(dip_net_link_send(l, 1, 9, p, chunk, NULL, 0), 0);
        sent++;
    }
    CU_ASSERT(dip_net_link_queued(l) > DIP_NET_LINK_HIGH_WATER);
    int never = 0;
    run_until(&loop, &never, 1, 300); /* the server reads nothing: the queue stays high */
    CU_ASSERT_EQUAL(cli.drains, 0);
    CU_ASSERT(dip_net_link_queued(l) > DIP_NET_LINK_LOW_WATER);
    CU_ASSERT_EQUAL(srv.frames, 0);
    dip_net_link_pause(srv.link, false);
    CU_ASSERT(run_until(&loop, &cli.drains, 1, 10000));
    CU_ASSERT(run_until(&loop, &srv.frames, sent, 10000));
    CU_ASSERT_EQUAL(cli.drains, 1);
    CU_ASSERT_FALSE(srv.bad_payload);
    dip_net_link_close(l);
    CU_ASSERT(run_until(&loop, &srv.closed, 1, 5000));
    CU_ASSERT(run_until(&loop, &cli.closed, 1, 5000));
    free(p);
    finish_loop(&loop, ls);
}


/* Pausing inside on_frame holds the frames after it (even those already
 * read), and switching to raw inside on_frame hands the rest over as bytes. */
struct flow_ctl {
    int frames, paused_at, resumed, raw_bytes;
    char raw[64];
    uv_timer_t resume;
    struct dip_net_link *link;
    int closed;
};

static void fc_resume(uv_timer_t *t)
{
    struct flow_ctl *c = t->data;
    c->resumed = c->frames;
    dip_net_link_pause(c->link, false);
}

static void fc_frame(struct dip_net_link *l, const struct dip_net_frame *f, void *ctx)
{
    struct flow_ctl *c = ctx;
    c->frames++;
    c->link = l;
    if (c->frames == 1) {
        dip_net_link_pause(l, true);
        c->paused_at = 1;
        uv_timer_start(&c->resume, fc_resume, 150, 0);
    }
    if (f->type == 99) dip_net_link_set_raw(l, true);
}

static void fc_data(struct dip_net_link *l, const uint8_t *data, size_t len, void *ctx)
{
    struct flow_ctl *c = ctx;
    for (size_t i = 0; i < len && c->raw_bytes < 63; i++) c->raw[c->raw_bytes++] = (char)data[i];
}

static void fc_close(struct dip_net_link *l, int code, const char *msg, void *ctx) { ((struct flow_ctl *)ctx)->closed++; }

static void test_pause_in_on_frame_holds_later_frames_and_raw_switch_keeps_bytes(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct flow_ctl fc = { 0 };
    uv_timer_init(&loop, &fc.resume);
    fc.resume.data = &fc;
    static const struct dip_net_link_callbacks fcb = { .on_frame = fc_frame, .on_data = fc_data, .on_close = fc_close };
    struct side cli = { 0 };
    struct dip_net_listener *ls = NULL;
    struct dip_errbuf eb = { "" };
    CU_ASSERT_EQUAL_FATAL(
        dip_net_listen(&loop, NULL, DIP_NET_LISTEN_PLAIN, "127.0.0.1", 0, 0, NULL, &fcb, &fc, &ls, &eb), 0);
    struct dip_net_link *l = NULL;
    CU_ASSERT_EQUAL_FATAL(
        dip_net_link_connect(&loop, NULL, "127.0.0.1", dip_net_listener_port(ls), 5000, &cli_cb, &cli, &l, &eb), 0);
    uint8_t buf[3 * DIP_NET_FRAME_HEADER + 8 + 5];
    size_t n = 0;
    dip_net_frame_header(buf, 1, 1, 4);
    memcpy(buf + DIP_NET_FRAME_HEADER, "abcd", 4);
    n = DIP_NET_FRAME_HEADER + 4;
    dip_net_frame_header(buf + n, 2, 2, 4);
    memcpy(buf + n + DIP_NET_FRAME_HEADER, "efgh", 4);
    n += DIP_NET_FRAME_HEADER + 4;
    dip_net_frame_header(buf + n, 99, 3, 0);
    n += DIP_NET_FRAME_HEADER;
    memcpy(buf + n, "HELLO", 5);
    n += 5;
    CU_ASSERT_EQUAL(dip_net_link_write(l, buf, n), 0); /* one write: usually one read on the other side */
    CU_ASSERT(run_until(&loop, &fc.raw_bytes, 5, 3000));
    CU_ASSERT_EQUAL(fc.paused_at, 1);
    CU_ASSERT_EQUAL(fc.resumed, 1); /* nothing arrived while paused */
    CU_ASSERT_EQUAL(fc.frames, 3);
    CU_ASSERT_EQUAL(fc.raw_bytes, 5);
    CU_ASSERT(memcmp(fc.raw, "HELLO", 5) == 0);
    dip_net_link_close(l);
    CU_ASSERT(run_until(&loop, &fc.closed, 1, 5000));
    CU_ASSERT(run_until(&loop, &cli.closed, 1, 5000));
    uv_close((uv_handle_t *)&fc.resume, NULL);
    finish_loop(&loop, ls);
}

/* ---- blocking helpers against a server loop in a thread ---- */

struct bg {
    uv_loop_t loop;
    uv_async_t stop;
    pthread_t thread;
    struct dip_net_listener *ls;
    struct dip_net_tls *tls;
    bool answer; /* false: accept and never answer */
    char line[256];
    size_t line_len;
};

static void bg_frame(struct dip_net_link *l, const struct dip_net_frame *f, void *ctx)
{
    struct bg *b = ctx;
    if (b->answer) dip_net_link_send(l, (uint8_t)(f->type + 1), f->id, "re:", 3, f->payload, f->len);
}

/* Raw protocol: one line in, "result:LINE" out, then close. */
static void bg_data(struct dip_net_link *l, const uint8_t *data, size_t len, void *ctx)
{
    struct bg *b = ctx;
    for (size_t i = 0; i < len; i++) {
        if (data[i] == '\n') {
            if (b->answer) {
                dip_net_link_write(l, "result:", 7);
                dip_net_link_write(l, b->line, b->line_len);
                dip_net_link_close(l);
            }
            return;
        }
        if (b->line_len < sizeof b->line) b->line[b->line_len++] = (char)data[i];
    }
}

static void bg_close(struct dip_net_link *l, int code, const char *msg, void *ctx) {}

static void bg_accept_raw(struct dip_net_link *l, void *ctx)
{
    struct bg *b = ctx;
    b->line_len = 0;
    dip_net_link_set_raw(l, true);
}

static void bg_stop(uv_async_t *a)
{
    struct bg *b = a->data;
    dip_net_listener_close(b->ls);
    uv_close((uv_handle_t *)a, NULL);
}

static void *bg_main(void *arg)
{
    struct bg *b = arg;
    uv_run(&b->loop, UV_RUN_DEFAULT);
    return NULL;
}

static int bg_start(struct bg *b, enum dip_net_listen_mode mode, bool raw, bool answer)
{
    static const struct dip_net_link_callbacks cb = { .on_frame = bg_frame, .on_data = bg_data, .on_close = bg_close };
    memset(b, 0, sizeof *b);
    b->answer = answer;
    uv_loop_init(&b->loop);
    uv_async_init(&b->loop, &b->stop, bg_stop);
    b->stop.data = b;
    b->tls = tls_for(pki_dir, pki_dir, "server");
    struct dip_errbuf eb = { "" };
    if (dip_net_listen(&b->loop, b->tls, mode, "127.0.0.1", 0, 5000, raw ? bg_accept_raw : NULL, &cb, b, &b->ls, &eb))
        return -1;
    pthread_create(&b->thread, NULL, bg_main, b);
    return dip_net_listener_port(b->ls);
}

static void bg_end(struct bg *b)
{
    uv_async_send(&b->stop);
    pthread_join(b->thread, NULL);
    CU_ASSERT_EQUAL(uv_loop_close(&b->loop), 0);
    dip_net_tls_free(b->tls);
}

static void test_request_round_trip_plain_and_tls(void)
{
    struct bg b;
    int port = bg_start(&b, DIP_NET_LISTEN_SNIFF, false, true);
    CU_ASSERT_FATAL(port > 0);
    struct dip_net_tls *ct = tls_for(pki_dir, pki_dir, "client");
    for (int tls = 0; tls < 2; tls++) {
        struct dip_dynbuf reply;
        dip_dynbuf_init(&reply, 1 << 20);
        uint8_t type = 0;
        struct dip_errbuf eb = { "" };
        int rc = dip_net_request(tls ? ct : NULL, "127.0.0.1", port, 41, "ping", 4, 5000, &type, &reply, &eb);
        CU_ASSERT_EQUAL(rc, DIP_OK);
        if (rc) printf("\n  request: %s\n", eb.msg);
        CU_ASSERT_EQUAL(type, 42);
        CU_ASSERT_EQUAL(reply.len, 7);
        CU_ASSERT(reply.len == 7 && memcmp(reply.data, "re:ping", 7) == 0);
        dip_dynbuf_free(&reply);
    }
    dip_net_tls_free(ct);
    bg_end(&b);
}

static void test_request_times_out_against_silent_server(void)
{
    struct bg b;
    int port = bg_start(&b, DIP_NET_LISTEN_PLAIN, false, false);
    CU_ASSERT_FATAL(port > 0);
    struct dip_dynbuf reply;
    dip_dynbuf_init(&reply, 1 << 20);
    uint8_t type = 0;
    struct dip_errbuf eb = { "" };
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CU_ASSERT_EQUAL(dip_net_request(NULL, "127.0.0.1", port, 1, "x", 1, 300, &type, &reply, &eb), DIP_ETIMEOUT);
    CU_ASSERT_EQUAL(dip_net_exchange(NULL, "127.0.0.1", port, "q\n", 2, 300, &reply, &eb), DIP_ETIMEOUT);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    CU_ASSERT(s >= 0.5 && s < 3.0);
    char want[64];
    snprintf(want, sizeof want, "127.0.0.1:%d", port);
    CU_ASSERT_PTR_NOT_NULL(strstr(eb.msg, want));
    CU_ASSERT_EQUAL(reply.len, 0);
    dip_dynbuf_free(&reply);
    bg_end(&b);
    /* And against a closed port: refused, naming it. */
    CU_ASSERT_EQUAL(dip_net_request(NULL, "127.0.0.1", port, 1, "x", 1, 2000, &type, &reply, &eb), DIP_EIO);
    snprintf(want, sizeof want, "127.0.0.1:%d: connection refused", port);
    CU_ASSERT_STRING_EQUAL(eb.msg, want);
}

static void test_exchange_round_trip_plain_and_tls(void)
{
    struct bg b;
    int port = bg_start(&b, DIP_NET_LISTEN_SNIFF, true, true);
    CU_ASSERT_FATAL(port > 0);
    struct dip_net_tls *ct = tls_for(pki_dir, pki_dir, "client");
    for (int tls = 0; tls < 2; tls++) {
        struct dip_dynbuf reply;
        dip_dynbuf_init(&reply, 1 << 20);
        struct dip_errbuf eb = { "" };
        const char *q = "//flow[@dport=443]\n";
        int rc = dip_net_exchange(tls ? ct : NULL, "127.0.0.1", port, q, strlen(q), 5000, &reply, &eb);
        CU_ASSERT_EQUAL(rc, DIP_OK);
        if (rc) printf("\n  exchange: %s\n", eb.msg);
        CU_ASSERT_STRING_EQUAL((const char *)reply.data, "result://flow[@dport=443]");
        dip_dynbuf_free(&reply);
        /* A reply beyond the buffer's cap. */
        dip_dynbuf_init(&reply, 10);
        CU_ASSERT_EQUAL(dip_net_exchange(tls ? ct : NULL, "127.0.0.1", port, q, strlen(q), 5000, &reply, &eb),
                        DIP_ERANGE);
        dip_dynbuf_free(&reply);
    }
    dip_net_tls_free(ct);
    bg_end(&b);
}

static void test_tls_client_resumes_its_session(void)
{
    struct bg b;
    int port = bg_start(&b, DIP_NET_LISTEN_SNIFF, true, true);
    CU_ASSERT_FATAL(port > 0);
    struct dip_net_tls *ct = tls_for(pki_dir, pki_dir, "client");
    for (int i = 0; i < 3; i++) {
        struct dip_dynbuf reply;
        dip_dynbuf_init(&reply, 1 << 20);
        struct dip_errbuf eb = { "" };
        const char *q = "count(//flow)\n";
        int rc = dip_net_exchange(ct, "127.0.0.1", port, q, strlen(q), 5000, &reply, &eb);
        CU_ASSERT_EQUAL(rc, DIP_OK);
        if (rc) printf("\n  exchange %d: %s\n", i, eb.msg);
        CU_ASSERT_STRING_EQUAL((const char *)reply.data, "result:count(//flow)");
        dip_dynbuf_free(&reply);
        CU_ASSERT_EQUAL(dip_net_tls_resumed(ct), (unsigned long)i); /* the first handshake is a full one */
    }
    dip_net_tls_free(ct);
    bg_end(&b);
}

int dip_suite_net(void)
{
    CU_pSuite s = CU_add_suite("net", suite_init, suite_clean);
    if (!s) return -1;
    CU_add_test(s, "frame_reader_split_at_every_byte", test_frame_reader_split_at_every_byte);
    CU_add_test(s, "frame_reader_space_takes_the_rest_of_a_frame_in_place",
                test_frame_reader_space_takes_the_rest_of_a_frame_in_place);
    CU_add_test(s, "frame_reader_stops_at_callback_error", test_frame_reader_stops_at_callback_error);
    CU_add_test(s, "frame_reader_refuses_oversize_frame_naming_offset",
                test_frame_reader_refuses_oversize_frame_naming_offset);
    CU_add_test(s, "listener_caps_links_in_all_and_per_address", test_listener_caps_links_in_all_and_per_address);
    CU_add_test(s, "pki_ensure_issues_signed_certs_and_is_idempotent",
                test_pki_ensure_issues_signed_certs_and_is_idempotent);
    CU_add_test(s, "tls_echo_both_directions_with_20mb_frame", test_tls_echo_both_directions_with_20mb_frame);
    CU_add_test(s, "plain_link_echo", test_plain_link_echo);
    CU_add_test(s, "tls_client_resumes_its_session", test_tls_client_resumes_its_session);
    CU_add_test(s, "sniff_listener_serves_tls_and_plain", test_sniff_listener_serves_tls_and_plain);
    CU_add_test(s, "client_from_another_ca_is_refused", test_client_from_another_ca_is_refused);
    CU_add_test(s, "server_from_another_ca_is_refused_by_client", test_server_from_another_ca_is_refused_by_client);
    CU_add_test(s, "connect_to_closed_port_fails_quickly_with_eio", test_connect_to_closed_port_fails_quickly_with_eio);
    CU_add_test(s, "listen_on_busy_port_says_address_in_use", test_listen_on_busy_port_says_address_in_use);
    CU_add_test(s, "handshake_timeouts_on_both_sides", test_handshake_timeouts_on_both_sides);
    CU_add_test(s, "close_flushes_queued_output_first", test_close_flushes_queued_output_first);
    CU_add_test(s, "oversize_frame_on_a_link_closes_it_with_eproto", test_oversize_frame_on_a_link_closes_it_with_eproto);
    CU_add_test(s, "idle_timeout_closes_silent_link", test_idle_timeout_closes_silent_link);
    CU_add_test(s, "back_pressure_calls_on_drain", test_back_pressure_calls_on_drain);
    CU_add_test(s, "pause_in_on_frame_holds_later_frames_and_raw_switch_keeps_bytes",
                test_pause_in_on_frame_holds_later_frames_and_raw_switch_keeps_bytes);
    CU_add_test(s, "request_round_trip_plain_and_tls", test_request_round_trip_plain_and_tls);
    CU_add_test(s, "request_times_out_against_silent_server", test_request_times_out_against_silent_server);
    CU_add_test(s, "exchange_round_trip_plain_and_tls", test_exchange_round_trip_plain_and_tls);
    return 0;
}
