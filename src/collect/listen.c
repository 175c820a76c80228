/* listen.c - the collector's transports on a libuv loop: UDP sockets with a
 * large receive buffer, read with recvmmsg, for NetFlow v5/v9 and IPFIX datagrams, and IPFIX over
 * TCP (RFC 7011 10.4) with one session per exporter, framed by the message
 * length, an allow-list, and stalled or garbage-sending exporters dropped
 * with a logged reason while the others go on. SCTP is refused clearly. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "collect_int.h"

#define LOG_DEBUG 0
#define LOG_INFO 1
#define LOG_WARN 2
#define LOG_ERROR 3

/* Datagrams one recvmmsg call may return (libuv reads up to 20). */
#define UDP_BATCH 16

struct session {
    uv_tcp_t tcp; /* first: handles cast back to the session */
    uv_timer_t idle;
    struct dip_collect_listener *l;
    struct session *prev, *next;
    struct dip_addr peer;
    char peer_text[DIP_ADDR_TEXT_MAX + 8];
    int closing;
    struct dip_collect_stream stream;
    uint8_t rbuf[65536];
};

struct dip_collect_listener {
    union {
        uv_udp_t udp;
        uv_tcp_t tcp;
    } h;
    int is_tcp;
    bool paused;  /* TCP: sessions do not read (dip_collect_listener_pause) */
    int port;
    int open_handles; /* freed when this drops to 0 after close */
    int closing;
    struct dip_collect *c;
    struct dip_collect_sink sink;
    struct dip_collect_listen_options opt;
    struct dip_collect_listener_stats st;
    struct session *sessions;
    size_t nsessions;
    unsigned wake_datagrams; /* read since the socket was last empty */
    uint64_t last_empty;     /* uv_hrtime() when it was */
    uint8_t ubuf[UDP_BATCH * 65536]; /* recvmmsg: one datagram of up to 64 KiB a slot */
};

void dip_collect_listen_options_default(struct dip_collect_listen_options *o)
{
    memset(o, 0, sizeof *o);
    o->udp_rcvbuf = DIP_COLLECT_UDP_RCVBUF;
    o->tcp_idle_ms = DIP_COLLECT_TCP_IDLE_MS;
    o->tcp_max_sessions = DIP_COLLECT_TCP_SESSIONS;
    o->tcp_rcvbuf = DIP_COLLECT_TCP_RCVBUF;
    o->udp_coalesce_us = DIP_COLLECT_UDP_COALESCE_US;
}

static void lg(struct dip_collect_listener *l, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void lg(struct dip_collect_listener *l, int level, const char *fmt, ...)
{
    if (!l->opt.log) return;
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    l->opt.log(l->opt.log_ctx, level, msg);
}

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int sockaddr_to_addr(const struct sockaddr *sa, struct dip_addr *a)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        dip_addr_from_v4(a, ntohl(in->sin_addr.s_addr));
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        memcpy(a->b, ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr, 16);
        return 0;
    }
    return -1;
}

static int allowed(const struct dip_collect_listener *l, const struct dip_addr *a)
{
    if (!l->opt.allow) return 1;
    for (size_t i = 0; i < l->opt.nallow; i++)
        if (!memcmp(l->opt.allow[i].b, a->b, 16)) return 1;
    return 0;
}

static void release(struct dip_collect_listener *l)
{
    if (--l->open_handles == 0 && l->closing) free(l);
}

/* ---- UDP ---- */

static void udp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct dip_collect_listener *l = h->data;
    (void)suggested;
    buf->base = (char *)l->ubuf;
    buf->len = sizeof l->ubuf;
}

/* Called when a wake-up has emptied the socket. Each wake-up costs a context
 * switch, epoll_wait and a recvmmsg that finds nothing, which at a few
 * datagrams a wake-up cost more than decoding their records. So when
 * wake-ups come more often than one a millisecond and this one read less
 * than a full batch, the loop pauses udp_coalesce_us and lets the kernel
 * queue more: the receive buffer holds far more than a pause brings in
 * (3M records/s: ~20 datagrams in 200 us), records wait at most that long,
 * and an idle or lightly loaded socket is never paused. Measured on
 * loopback, NetFlow v5 at 2-3M records/s: 0.18 -> 0.12-0.13 us of CPU a
 * record. */
static void coalesce(struct dip_collect_listener *l)
{
    uint64_t now = uv_hrtime();
    int busy = now - l->last_empty < 1000000u;
    if (busy && l->opt.udp_coalesce_us && l->wake_datagrams < UDP_BATCH) {
        uint32_t us = l->opt.udp_coalesce_us < 100000 ? l->opt.udp_coalesce_us : 100000;
        struct timespec ts = { 0, (long)us * 1000 };
        nanosleep(&ts, NULL);
        now = uv_hrtime();
    }
    l->last_empty = now;
    l->wake_datagrams = 0;
}

static void udp_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *from, unsigned flags)
{
    struct dip_collect_listener *l = h->data;
    struct dip_addr exporter;
    if (nread < 0) {
        l->st.receive_errors++;
        lg(l, LOG_WARN, "udp receive: %s", uv_strerror((int)nread));
        return;
    }
    if (!from) {
        if (!(flags & UV_UDP_MMSG_FREE)) coalesce(l); /* the socket is empty */
        return;
    }
    if (sockaddr_to_addr(from, &exporter)) return;
    l->wake_datagrams++;
    l->st.datagrams++;
    if (!allowed(l, &exporter)) {
        l->st.denied++;
        return;
    }
    if (flags & UV_UDP_PARTIAL) l->st.receive_errors++; /* truncated by the buffer: the decoder reports it */
    struct dip_errbuf eb;
    int rc = dip_collect_packet(l->c, (const uint8_t *)buf->base, (size_t)nread, &exporter, wall_ms(), &l->sink, &eb);
    if (rc != DIP_OK && rc != DIP_EINVAL && rc != DIP_EUNSUPP && rc != DIP_ERANGE) {
        l->st.sink_errors++;
        lg(l, LOG_ERROR, "storing records failed: %s", dip_err_name(rc));
    }
}

/* Sets the receive buffer, forcing past net.core.rmem_max when permitted. */
static void set_rcvbuf(struct dip_collect_listener *l)
{
    uv_os_fd_t fd;
    int want = l->opt.udp_rcvbuf > 0x7fffffff ? 0x7fffffff : (int)l->opt.udp_rcvbuf;
    if (want <= 0) return;
    if (uv_fileno((uv_handle_t *)&l->h.udp, &fd) == 0) {
#ifdef SO_RCVBUFFORCE
        if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof want) != 0)
#endif
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof want);
    }
    int got = 0;
    uv_recv_buffer_size((uv_handle_t *)&l->h.udp, &got);
    l->st.udp_rcvbuf = (uint32_t)got;
    if (got < want) /* Linux reports twice what it grants for bookkeeping */
        lg(l, LOG_WARN, "udp receive buffer is %d bytes, %d asked (raise net.core.rmem_max)", got, want);
}

/* ---- TCP sessions ---- */

static void session_closed(uv_handle_t *h)
{
    struct session *s = h->data;
    struct dip_collect_listener *l = s->l;
    if (h == (uv_handle_t *)&s->idle) {
        free(s);
        release(l);
    }
}

static void session_tcp_closed(uv_handle_t *h)
{
    struct session *s = h->data;
    uv_close((uv_handle_t *)&s->idle, session_closed);
}

static void session_drop(struct session *s, const char *why)
{
    struct dip_collect_listener *l = s->l;
    if (s->closing) return;
    s->closing = 1;
    if (why) {
        l->st.sessions_dropped++;
        lg(l, LOG_WARN, "dropping IPFIX exporter %s: %s", s->peer_text, why);
    } else {
        lg(l, LOG_INFO, "IPFIX exporter %s closed its session", s->peer_text);
    }
    if (s->prev) s->prev->next = s->next;
    else l->sessions = s->next;
    if (s->next) s->next->prev = s->prev;
    l->nsessions--;
    /* Templates are scoped to the session (RFC 7011 8); they are kept per
     * exporter address, so forget them when its last session ends. */
    int others = 0;
    for (const struct session *o = l->sessions; o; o = o->next)
        others |= !memcmp(o->peer.b, s->peer.b, 16);
    if (!others) dip_collect_forget_exporter(l->c, &s->peer);
    uv_timer_stop(&s->idle);
    uv_close((uv_handle_t *)&s->tcp, session_tcp_closed);
}

/* Fires every tcp_idle_ms without a complete message. A session waiting
 * between messages is fine (TCP keepalive finds dead peers); one stuck inside
 * a message (stalled, or dripping bytes) is dropped. */
static void session_idle(uv_timer_t *t)
{
    struct session *s = t->data;
    if (s->stream.have == 0) return;
    char why[96];
    snprintf(why, sizeof why, "no complete message for %u ms (%zu bytes of one waiting)", s->l->opt.tcp_idle_ms,
             s->stream.have);
    session_drop(s, why);
}

static void session_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct session *s = h->data;
    (void)suggested;
    buf->base = (char *)s->rbuf;
    buf->len = sizeof s->rbuf;
}

static int session_message(void *ctx, const uint8_t *msg, size_t len)
{
    struct session *s = ctx;
    struct dip_collect_listener *l = s->l;
    struct dip_errbuf eb;
    int rc = dip_collect_ipfix_stream(l->c, msg, len, &s->peer, wall_ms(), &l->sink, &eb);
    if (rc == DIP_OK) uv_timer_again(&s->idle); /* progress: a whole message */
    if (rc == DIP_OK || rc == DIP_EINVAL || rc == DIP_ERANGE) return DIP_OK; /* counted per exporter */
    l->st.sink_errors++;
    lg(l, LOG_ERROR, "storing records from %s failed: %s", s->peer_text, dip_err_name(rc));
    return DIP_OK;
}

static void session_read(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf)
{
    struct session *s = h->data;
    if (nread == UV_EOF) {
        session_drop(s, s->stream.have ? "session ended inside a message" : NULL);
        return;
    }
    if (nread < 0) {
        session_drop(s, uv_strerror((int)nread));
        return;
    }
    struct dip_errbuf eb = { "" };
    int rc = dip_collect_stream_feed(&s->stream, (const uint8_t *)buf->base, (size_t)nread, session_message, s, &eb);
    if (rc != DIP_OK) session_drop(s, eb.msg[0] ? eb.msg : "not an IPFIX stream");
}

static void tcp_connection(uv_stream_t *server, int status)
{
    struct dip_collect_listener *l = server->data;
    if (status < 0) {
        lg(l, LOG_WARN, "tcp accept: %s", uv_strerror(status));
        return;
    }
    struct session *s = calloc(1, sizeof *s);
    if (!s) return;
    s->l = l;
    uv_tcp_init(server->loop, &s->tcp);
    uv_timer_init(server->loop, &s->idle);
    s->tcp.data = s->idle.data = s;
    l->open_handles++;
    struct sockaddr_storage ss;
    int sslen = sizeof ss;
    int ok = uv_accept(server, (uv_stream_t *)&s->tcp) == 0 &&
             uv_tcp_getpeername(&s->tcp, (struct sockaddr *)&ss, &sslen) == 0 &&
             sockaddr_to_addr((struct sockaddr *)&ss, &s->peer) == 0;
    if (ok) dip_addr_format(&s->peer, s->peer_text);
    else snprintf(s->peer_text, sizeof s->peer_text, "(unknown)");
    s->next = l->sessions;
    if (l->sessions) l->sessions->prev = s;
    l->sessions = s;
    l->nsessions++;
    dip_collect_stream_init(&s->stream);
    if (!ok) {
        session_drop(s, "cannot read the peer address");
        return;
    }
    if (!allowed(l, &s->peer)) {
        l->st.denied++;
        session_drop(s, "not in the allow-list");
        return;
    }
    if (l->nsessions > l->opt.tcp_max_sessions) {
        session_drop(s, "too many sessions");
        return;
    }
    l->st.sessions++;
    lg(l, LOG_INFO, "IPFIX exporter %s connected", s->peer_text);
    uv_tcp_keepalive(&s->tcp, 1, 60);
    if (l->paused) return; /* reads start at the resume */
    uv_timer_start(&s->idle, session_idle, l->opt.tcp_idle_ms, l->opt.tcp_idle_ms);
    uv_read_start((uv_stream_t *)&s->tcp, session_alloc, session_read);
}

void dip_collect_listener_pause(struct dip_collect_listener *l, bool pause)
{
    if (!l->is_tcp || l->paused == pause) return;
    l->paused = pause;
    for (struct session *s = l->sessions; s; s = s->next) {
        if (s->closing) continue;
        if (pause) { /* a paused session is not idle: its exporter waits for us */
            uv_read_stop((uv_stream_t *)&s->tcp);
            uv_timer_stop(&s->idle);
        } else {
            uv_timer_start(&s->idle, session_idle, l->opt.tcp_idle_ms, l->opt.tcp_idle_ms);
            uv_read_start((uv_stream_t *)&s->tcp, session_alloc, session_read);
        }
    }
}

/* ---- setup ---- */

enum scheme { S_UDP, S_TCP, S_SCTP };

static int parse_url(const char *url, enum scheme *scheme, struct sockaddr_storage *ss, struct dip_errbuf *eb)
{
    const char *rest;
    if (!strncmp(url, "udp://", 6)) *scheme = S_UDP, rest = url + 6;
    else if (!strncmp(url, "tcp://", 6)) *scheme = S_TCP, rest = url + 6;
    else if (!strncmp(url, "sctp://", 7)) *scheme = S_SCTP, rest = url + 7;
    else return dip_err_set(eb, DIP_EINVAL, "%s: expected udp://, tcp:// or sctp://ADDR:PORT", url);
    char host[64];
    const char *port;
    if (*rest == '[') {
        const char *end = strchr(rest, ']');
        if (!end || end[1] != ':' || (size_t)(end - rest - 1) >= sizeof host)
            return dip_err_set(eb, DIP_EINVAL, "%s: expected [IPv6]:PORT", url);
        memcpy(host, rest + 1, (size_t)(end - rest - 1));
        host[end - rest - 1] = 0;
        port = end + 2;
    } else {
        const char *colon = strrchr(rest, ':');
        if (!colon || (size_t)(colon - rest) >= sizeof host)
            return dip_err_set(eb, DIP_EINVAL, "%s: expected ADDR:PORT", url);
        memcpy(host, rest, (size_t)(colon - rest));
        host[colon - rest] = 0;
        port = colon + 1;
    }
    char *end;
    long p = strtol(port, &end, 10);
    if (!*port || *end || p < 0 || p > 65535) return dip_err_set(eb, DIP_EINVAL, "%s: bad port '%s'", url, port);
    if (uv_ip4_addr(host, (int)p, (struct sockaddr_in *)ss) != 0 &&
        uv_ip6_addr(host, (int)p, (struct sockaddr_in6 *)ss) != 0)
        return dip_err_set(eb, DIP_EINVAL, "%s: '%s' is not a numeric IPv4 or IPv6 address", url, host);
    return DIP_OK;
}

/* SCTP (RFC 7011 10.2) needs kernel support; libuv has no SCTP transport. */
static int sctp_unsupported(const char *url, const struct sockaddr_storage *ss, struct dip_errbuf *eb)
{
    int fd = socket(ss->ss_family, SOCK_STREAM, IPPROTO_SCTP);
    if (fd < 0) return dip_err_set(eb, DIP_EUNSUPP, "%s: SCTP is not supported by this kernel (%s)", url, strerror(errno));
    close(fd);
    return dip_err_set(eb, DIP_EUNSUPP, "%s: this kernel has SCTP, but this build collects IPFIX over UDP and TCP only",
                       url);
}

static void listener_closed(uv_handle_t *h) { release(h->data); }

int dip_collect_listen(struct uv_loop_s *loop, struct dip_collect *c, const char *url,
                       const struct dip_collect_listen_options *opt, const struct dip_collect_sink *sink,
                       struct dip_collect_listener **out, struct dip_errbuf *eb)
{
    enum scheme scheme = S_UDP;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    int rc = parse_url(url, &scheme, &ss, eb);
    if (rc) return rc;
    if (scheme == S_SCTP) return sctp_unsupported(url, &ss, eb);
    struct dip_collect_listener *l = calloc(1, sizeof *l);
    if (!l) return DIP_ENOMEM;
    if (opt) l->opt = *opt;
    else dip_collect_listen_options_default(&l->opt);
    if (!l->opt.tcp_idle_ms) l->opt.tcp_idle_ms = DIP_COLLECT_TCP_IDLE_MS;
    if (!l->opt.tcp_max_sessions) l->opt.tcp_max_sessions = DIP_COLLECT_TCP_SESSIONS;
    l->c = c;
    if (sink) l->sink = *sink;
    l->is_tcp = scheme == S_TCP;
    l->open_handles = 1;
    int err;
    if (l->is_tcp) {
        uv_tcp_init(loop, &l->h.tcp);
        l->h.tcp.data = l;
        err = uv_tcp_bind(&l->h.tcp, (struct sockaddr *)&ss, 0);
        if (!err && l->opt.tcp_rcvbuf) { /* set before listen: sessions inherit it and its window scale */
            int size = l->opt.tcp_rcvbuf > 0x7fffffff ? 0x7fffffff : (int)l->opt.tcp_rcvbuf;
            err = uv_recv_buffer_size((uv_handle_t *)&l->h.tcp, &size);
        }
        if (!err) err = uv_listen((uv_stream_t *)&l->h.tcp, 128, tcp_connection);
    } else {
        uv_udp_init_ex(loop, &l->h.udp, AF_UNSPEC | UV_UDP_RECVMMSG);
        l->h.udp.data = l;
        err = uv_udp_bind(&l->h.udp, (struct sockaddr *)&ss, 0);
        if (!err) {
            set_rcvbuf(l);
            err = uv_udp_recv_start(&l->h.udp, udp_alloc, udp_recv);
        }
    }
    if (err) {
        l->closing = 1;
        uv_close((uv_handle_t *)&l->h, listener_closed);
        return dip_err_set(eb, DIP_EIO, "%s: %s", url, uv_strerror(err));
    }
    struct sockaddr_storage bound;
    int blen = sizeof bound;
    if (l->is_tcp) uv_tcp_getsockname(&l->h.tcp, (struct sockaddr *)&bound, &blen);
    else uv_udp_getsockname(&l->h.udp, (struct sockaddr *)&bound, &blen);
    l->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                : ((struct sockaddr_in *)&bound)->sin_port);
    *out = l;
    return DIP_OK;
}

int dip_collect_listener_port(const struct dip_collect_listener *l) { return l->port; }

void dip_collect_listener_stats(const struct dip_collect_listener *l, struct dip_collect_listener_stats *out)
{
    *out = l->st;
}

void dip_collect_listener_close(struct dip_collect_listener *l)
{
    if (!l || l->closing) return;
    l->closing = 1;
    while (l->sessions) session_drop(l->sessions, NULL);
    uv_close((uv_handle_t *)&l->h, listener_closed);
}
