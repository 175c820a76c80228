/* net_link.c - one node link on a libuv loop: TCP, optionally TLS driven
 * (ciphertext in through a memory BIO, out through one that writes to the
 * socket), frames in (net_frame.c) and out, a write queue with
 * byte accounting and back-pressure, pause/resume, deadlines (connect plus
 * handshake, idle, close), and a close path that flushes, shuts down, lingers
 * for the peer's EOF and calls on_close exactly once before freeing. */
#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "net/net_int.h"

#define CLOSE_TIMEOUT_MS 5000 /* flushing queued output at close */
#define LINGER_MS 2000        /* waiting for the peer's EOF after our FIN */
#define DEFAULT_TIMEOUT_MS 10000
#define BACKLOG_MAX (4u << 20)
#define STOP 1                /* frame callback: stop feeding (paused, closing, switched to raw) */
#define TLS_SLICE (1u << 16)  /* plaintext encrypted per step of a large frame */
#define TX_KEEP (256u << 10)  /* the tx buffer keeps this much capacity between flushes (a slice's records) */
#define TLS_SMALL 4096        /* frames up to this size are copied into one record */

struct wreq {
    uv_write_t req;
    size_t len;
    uint8_t data[];
};

/* The bytes of one read and the plaintext OpenSSL decrypts from them, shared
 * by every link of a loop thread: both are consumed (delivered, copied into a
 * frame or the backlog) before the callback returns, and reads never nest.
 * In each link they took 80 KiB, which 16,000 idle clients made 1.37 GB. */
static _Thread_local uint8_t read_buffer[65536];
static _Thread_local uint8_t plain_buffer[16384];

static void on_timer(uv_timer_t *t);
static void on_kick(uv_timer_t *t);
static void start_read(struct dip_net_link *l);
static void begin_close(struct dip_net_link *l);
static void pump(struct dip_net_link *l);
static void on_shutdown(uv_shutdown_t *req, int status);

/* ---- life cycle ---- */

static void link_free(struct dip_net_link *l)
{
    if (l->admission) dip_net_admission_leave(l);
    SSL_free(l->ssl); /* frees both BIOs */
    dip_net_frame_reader_free(&l->reader);
    dip_dynbuf_free(&l->backlog);
    dip_dynbuf_free(&l->tx);
    for (struct pending *p = l->pend_head, *n; p; p = n) {
        n = p->next;
        free(p);
    }
    free(l);
}

static void link_release(struct dip_net_link *l)
{
    if (--l->refs == 0) link_free(l);
}

static void on_handle_closed(uv_handle_t *h) { link_release(h->data); }

static struct dip_net_link *link_new(uv_loop_t *loop, struct dip_net_tls *tls,
                                     const struct dip_net_link_callbacks *cb, void *ctx)
{
    struct dip_net_link *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    l->loop = loop;
    l->tls = tls;
    if (cb) l->cb = *cb;
    l->ctx = ctx;
    uv_tcp_init(loop, &l->tcp);
    uv_timer_init(loop, &l->timer);
    uv_timer_init(loop, &l->kick);
    l->tcp.data = l->timer.data = l->kick.data = l;
    l->connect_req.data = l->shutdown_req.data = l->gai.data = l;
    l->refs = 3;
    dip_net_frame_reader_init(&l->reader, DIP_NET_FRAME_MAX);
    dip_dynbuf_init(&l->backlog, BACKLOG_MAX);
    dip_dynbuf_init(&l->tx, (size_t)1 << 30);
    l->last_rx = uv_now(loop);
    return l;
}

/* Frees a link nobody has seen yet (no on_close). */
static void link_discard(struct dip_net_link *l)
{
    l->state = LINK_DEAD;
    l->cb.on_close = NULL;
    uv_close((uv_handle_t *)&l->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&l->timer, on_handle_closed);
    uv_close((uv_handle_t *)&l->kick, on_handle_closed);
}

/* Records the close reason; the first error wins over everything else. */
static void set_reason(struct dip_net_link *l, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_reason(struct dip_net_link *l, int code, const char *fmt, ...)
{
    if (l->code != DIP_OK || (code == DIP_OK && l->msg[0])) return;
    l->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->msg, sizeof l->msg, fmt, ap);
    va_end(ap);
}

/* Moves to DEAD; on_close and the handle closes follow from the loop, never
 * from inside a caller's function. */
static void finish(struct dip_net_link *l)
{
    if (l->state == LINK_DEAD) return;
    l->state = LINK_DEAD;
    uv_timer_stop(&l->timer);
    if (l->reading) uv_read_stop((uv_stream_t *)&l->tcp);
    l->reading = false;
    uv_timer_start(&l->kick, on_kick, 0, 0);
}

static void final_close(struct dip_net_link *l)
{
    if (!l->msg[0]) snprintf(l->msg, sizeof l->msg, "%s: closed", l->peer);
    if (l->ssl && !l->server && l->tls) dip_net_tls_remember(l->tls, l->peer, l->ssl);
    if (l->resolving) uv_cancel((uv_req_t *)&l->gai);
    if (l->cb.on_close) l->cb.on_close(l, l->code, l->msg, l->ctx);
    l->cb.on_close = NULL;
    uv_close((uv_handle_t *)&l->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&l->timer, on_handle_closed);
    uv_close((uv_handle_t *)&l->kick, on_handle_closed);
}

static void on_kick(uv_timer_t *t)
{
    struct dip_net_link *l = t->data;
    if (l->state == LINK_DEAD) {
        if (!uv_is_closing((uv_handle_t *)&l->kick)) final_close(l);
        return;
    }
    pump(l);
}

void dip_net_link_abort(struct dip_net_link *l, int code, const char *msg)
{
    if (!l || l->state == LINK_DEAD) return;
    set_reason(l, code, "%s", msg ? msg : "");
    finish(l);
}

static void fail(struct dip_net_link *l, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(struct dip_net_link *l, int code, const char *fmt, ...)
{
    if (l->state == LINK_DEAD) return;
    if (l->code == DIP_OK) {
        l->code = code;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(l->msg, sizeof l->msg, fmt, ap);
        va_end(ap);
    }
    finish(l);
}

/* ---- output ---- */

static void on_write(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    struct dip_net_link *l = req->data;
    l->queued -= w->len;
    free(w);
    if (l->state == LINK_DEAD) return;
    if (status < 0) {
        fail(l, DIP_EIO, "%s: %s", l->peer, uv_strerror(status));
        return;
    }
    if (l->above_high && l->queued < DIP_NET_LINK_LOW_WATER) {
        l->above_high = false;
        if (l->state == LINK_OPEN && l->cb.on_drain) l->cb.on_drain(l, l->ctx);
    }
}

static void count_queued(struct dip_net_link *l, size_t n)
{
    l->queued += n;
    if (l->queued > DIP_NET_LINK_HIGH_WATER) l->above_high = true;
}

/* Hands w (bytes for the socket) to libuv; frees it on failure. */
static int submit(struct dip_net_link *l, struct wreq *w)
{
    uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)w->len);
    w->req.data = l;
    int r = uv_write(&w->req, (uv_stream_t *)&l->tcp, &b, 1, on_write);
    if (r < 0) {
        free(w);
        fail(l, DIP_EIO, "%s: %s", l->peer, uv_strerror(r));
        return DIP_EIO;
    }
    count_queued(l, w->len);
    return DIP_OK;
}

/* ---- the TLS output BIO ----
 * OpenSSL's encrypted records collect in the link's tx buffer; tls_flush
 * writes them to the socket at once when libuv has nothing queued and the
 * socket takes them, and copies only the rest into a write request. A
 * memory BIO cost another copy of every byte sent (into the BIO, then out
 * into the request). Records are not written one by one: a 64 KiB slice is
 * four records, and four small writes woke the peer four times. */

static int out_bio_write(BIO *b, const char *data, int len)
{
    struct dip_net_link *l = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (len <= 0) return 0;
    if (!l || dip_dynbuf_add(&l->tx, data, (size_t)len)) return -1;
    return len;
}

static long out_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0; /* nothing is ever held back */
}

static int out_bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static BIO_METHOD *out_bio_method;
static void out_bio_method_make(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "dipstorage link output");
    if (m && BIO_meth_set_write(m, out_bio_write) && BIO_meth_set_ctrl(m, out_bio_ctrl) &&
        BIO_meth_set_create(m, out_bio_create))
        out_bio_method = m;
    else BIO_meth_free(m);
}

/* Gives l a TLS session (server or client side) whose output goes to l's
 * socket. Returns DIP_OK or DIP_ENOMEM. */
static int attach_tls(struct dip_net_link *l, bool server)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, out_bio_method_make);
    BIO *out = out_bio_method ? BIO_new(out_bio_method) : NULL;
    if (!out) return DIP_ENOMEM;
    BIO_set_data(out, l);
    l->ssl = dip_net_tls_ssl(l->tls, server, out);
    if (!l->ssl) return DIP_ENOMEM;
    l->rbio = SSL_get_rbio(l->ssl);
    return DIP_OK;
}

/* Sends what OpenSSL wrote into the tx buffer. */
static int tls_flush(struct dip_net_link *l)
{
    if (!l->tx.len) return DIP_OK;
    size_t done = 0;
    uv_buf_t buf = uv_buf_init((char *)l->tx.data, (unsigned)l->tx.len);
    int r = uv_try_write((uv_stream_t *)&l->tcp, &buf, 1);
    if (r > 0) done = (size_t)r;
    else if (r != UV_EAGAIN && r != UV_ENOSYS) {
        dip_dynbuf_reset(&l->tx);
        fail(l, DIP_EIO, "%s: %s", l->peer, uv_strerror(r));
        return DIP_EIO;
    }
    int rc = DIP_OK;
    if (done < l->tx.len) {
        struct wreq *w = malloc(sizeof *w + (l->tx.len - done));
        if (w) {
            w->len = l->tx.len - done;
            memcpy(w->data, l->tx.data + done, w->len);
            rc = submit(l, w);
        } else {
            rc = DIP_ENOMEM;
            fail(l, rc, "%s: out of memory", l->peer);
        }
    }
    if (l->tx.cap > TX_KEEP) dip_dynbuf_free(&l->tx); /* a handshake's or an alert's burst */
    else dip_dynbuf_reset(&l->tx);
    return rc;
}

/* Encrypts len bytes in slices, sending each slice's records at once, so
 * OpenSSL's output buffer never holds more than one slice. */
static int tls_write(struct dip_net_link *l, const uint8_t *data, size_t len)
{
    while (len > 0) {
        size_t n = len < TLS_SLICE ? len : TLS_SLICE;
        ERR_clear_error();
        int r = SSL_write(l->ssl, data, (int)n);
        if (r <= 0) {
            fail(l, DIP_EPROTO, "TLS with %s failed: %s", l->peer, dip_net_tls_reason());
            return DIP_EIO;
        }
        int rc = tls_flush(l);
        if (rc) return rc;
        data += r;
        len -= (size_t)r;
    }
    return DIP_OK;
}

/* Queues the concatenation of up to three parts: on the socket (plain), through
 * TLS, or as a pending frame until the link opens. */
static int emit(struct dip_net_link *l, const void *p1, size_t n1, const void *p2, size_t n2, const void *p3,
                size_t n3)
{
    size_t total = n1 + n2 + n3;
    if (total == 0) return DIP_OK;
    if (l->state == LINK_OPEN && l->ssl && total > TLS_SMALL) {
        int rc = tls_write(l, p1, n1);
        if (rc == DIP_OK) rc = tls_write(l, p2, n2);
        if (rc == DIP_OK) rc = tls_write(l, p3, n3);
        return rc;
    }
    uint8_t small[TLS_SMALL];
    uint8_t *dst;
    struct wreq *w = NULL;
    struct pending *p = NULL;
    if (l->state == LINK_OPEN && !l->ssl) dst = (w = malloc(sizeof *w + total)) ? w->data : NULL;
    else if (l->state == LINK_OPEN) dst = small; /* one TLS record for a small frame */
    else dst = (p = malloc(sizeof *p + total)) ? p->data : NULL;
    if (!dst) return DIP_ENOMEM;
    if (n1) memcpy(dst, p1, n1);
    if (n2) memcpy(dst + n1, p2, n2);
    if (n3) memcpy(dst + n1 + n2, p3, n3);
    if (w) {
        w->len = total;
        return submit(l, w);
    }
    if (p) {
        p->len = total;
        p->next = NULL;
        if (l->pend_tail) l->pend_tail->next = p;
        else l->pend_head = p;
        l->pend_tail = p;
        count_queued(l, total);
        return DIP_OK;
    }
    return tls_write(l, small, total);
}

int dip_net_link_send(struct dip_net_link *l, uint8_t type, uint64_t id, const void *a, size_t alen, const void *b,
                      size_t blen)
{
    if (!l || l->state >= LINK_CLOSING || l->close_requested) return DIP_EIO;
    if ((alen && !a) || (blen && !b)) return DIP_EINVAL;
    if (alen > DIP_NET_FRAME_MAX || blen > DIP_NET_FRAME_MAX - alen) return DIP_ERANGE;
    uint8_t hdr[DIP_NET_FRAME_HEADER];
    dip_net_frame_header(hdr, type, id, alen + blen);
    return emit(l, hdr, sizeof hdr, a, alen, b, blen);
}

int dip_net_link_write(struct dip_net_link *l, const void *data, size_t len)
{
    if (!l || l->state >= LINK_CLOSING || l->close_requested) return DIP_EIO;
    if (len && !data) return DIP_EINVAL;
    return emit(l, data, len, NULL, 0, NULL, 0);
}

size_t dip_net_link_queued(const struct dip_net_link *l) { return l ? l->queued : 0; }

/* ---- the state machine ---- */

static void arm_idle(struct dip_net_link *l)
{
    if (l->state != LINK_OPEN) return;
    if (l->idle_ms) uv_timer_start(&l->timer, on_timer, l->idle_ms, 0);
    else uv_timer_stop(&l->timer);
}

/* Copies the subject's entry nid into out ("" when absent or not plain
 * text: an embedded NUL would let a name pass for another). */
static void subject_text(X509 *c, int nid, char *out, size_t cap)
{
    out[0] = 0;
    int len = c ? X509_NAME_get_text_by_NID(X509_get_subject_name(c), nid, out, (int)cap) : -1;
    if (len < 0 || strlen(out) != (size_t)len) out[0] = 0;
}

static void peer_identity_from_cert(struct dip_net_link *l)
{
    X509 *c = SSL_get0_peer_certificate(l->ssl);
    subject_text(c, NID_commonName, l->peer_name, sizeof l->peer_name);
    subject_text(c, NID_organizationalUnitName, l->peer_role, sizeof l->peer_role);
}

/* Connected (plain) or handshake done (TLS): flush what was queued before,
 * then tell the owner. */
static void link_opened(struct dip_net_link *l)
{
    l->state = LINK_OPEN;
    uv_timer_stop(&l->timer);
    if (l->ssl) peer_identity_from_cert(l);
    struct pending *p = l->pend_head;
    l->pend_head = l->pend_tail = NULL;
    while (p) {
        struct pending *n = p->next;
        l->queued -= p->len;
        int rc = l->state == LINK_OPEN ? emit(l, p->data, p->len, NULL, 0, NULL, 0) : DIP_OK;
        if (rc && l->state == LINK_OPEN) fail(l, rc, "%s: cannot queue output: %s", l->peer, dip_err_name(rc));
        free(p);
        p = n;
    }
    if (l->state != LINK_OPEN) return;
    if (l->close_requested) {
        begin_close(l);
        return;
    }
    if (l->server) {
        if (l->on_accept) l->on_accept(l, l->ctx);
    } else if (l->cb.on_open) {
        l->cb.on_open(l, l->ctx);
    }
    if (l->state != LINK_OPEN) return;
    l->last_rx = uv_now(l->loop);
    arm_idle(l);
    if (!l->paused) start_read(l);
}

/* Graceful close: TLS close_notify, flush, FIN, then linger for the peer's
 * EOF (so our last bytes are not destroyed by a reset); all bounded. */
static void begin_close(struct dip_net_link *l)
{
    if (l->state >= LINK_CLOSING) return;
    if (l->state == LINK_CONNECTING || (l->state == LINK_HANDSHAKE && !l->ssl)) {
        finish(l);
        return;
    }
    /* Frames queued before a handshake that failed are dropped. */
    for (struct pending *p = l->pend_head, *n; p; p = n) {
        n = p->next;
        l->queued -= p->len;
        free(p);
    }
    l->pend_head = l->pend_tail = NULL;
    bool was_open = l->state == LINK_OPEN;
    l->state = LINK_CLOSING;
    set_reason(l, DIP_OK, "%s: closed", l->peer);
    if (l->ssl && was_open && l->code == DIP_OK) {
        ERR_clear_error();
        SSL_shutdown(l->ssl);
        ERR_clear_error();
    }
    if (l->ssl && tls_flush(l) != DIP_OK) return;
    uv_timer_start(&l->timer, on_timer, CLOSE_TIMEOUT_MS, 0);
    if (!l->eof) start_read(l);
    l->shutdown_req.data = l;
    if (uv_shutdown(&l->shutdown_req, (uv_stream_t *)&l->tcp, on_shutdown) < 0) finish(l);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct dip_net_link *l = req->data;
    l->shutdown_sent = true;
    if (l->state != LINK_CLOSING) return;
    if (status < 0 || l->eof) finish(l);
    else uv_timer_start(&l->timer, on_timer, LINGER_MS, 0);
}

static void on_timer(uv_timer_t *t)
{
    struct dip_net_link *l = t->data;
    switch (l->state) {
    case LINK_CONNECTING:
        fail(l, DIP_ETIMEOUT, "%s: connect timed out after %u ms", l->peer, l->timeout_ms);
        break;
    case LINK_HANDSHAKE:
        if (l->ssl) fail(l, DIP_ETIMEOUT, "TLS handshake with %s timed out after %u ms", l->peer, l->timeout_ms);
        else fail(l, DIP_ETIMEOUT, "%s: nothing received within %u ms", l->peer, l->timeout_ms);
        break;
    case LINK_OPEN: {
        uint64_t now = uv_now(l->loop), idle = l->idle_ms;
        if (!idle) break;
        if (l->paused) l->last_rx = now; /* a paused link is not idle: we are not reading */
        if (now - l->last_rx >= idle) fail(l, DIP_ETIMEOUT, "%s: nothing received for %u ms", l->peer, l->idle_ms);
        else uv_timer_start(&l->timer, on_timer, idle - (now - l->last_rx), 0);
        break;
    }
    case LINK_CLOSING:
        if (l->queued)
            fail(l, DIP_ETIMEOUT, "%s: could not flush %zu queued bytes within %d ms", l->peer, l->queued,
                 CLOSE_TIMEOUT_MS);
        else finish(l);
        break;
    case LINK_DEAD: break;
    }
}

/* ---- input ---- */

static int link_frame(void *ctx, const struct dip_net_frame *f)
{
    struct dip_net_link *l = ctx;
    if (l->state != LINK_OPEN || l->raw) return STOP;
    if (l->cb.on_frame) l->cb.on_frame(l, f, l->ctx);
    return (l->state != LINK_OPEN || l->paused || l->raw) ? STOP : 0;
}

/* Hands plaintext to the owner (frames or raw bytes) while the link is open
 * and not paused; what is left waits in the backlog. */
static void deliver(struct dip_net_link *l, const uint8_t *data, size_t len)
{
    while (len > 0 && l->state == LINK_OPEN && !l->paused) {
        if (l->raw) {
            if (l->cb.on_data) l->cb.on_data(l, data, len, l->ctx);
            return;
        }
        uint64_t start = l->reader.offset + l->reader.buf.len;
        struct dip_errbuf eb;
        eb.msg[0] = 0;
        int rc = dip_net_frame_reader_feed(&l->reader, data, len, link_frame, l, &eb);
        if (rc == DIP_OK) return;
        if (rc != STOP) {
            if (rc != DIP_EPROTO) snprintf(eb.msg, sizeof eb.msg, "input: %s", dip_err_name(rc));
            set_reason(l, rc, "%s: %s", l->peer, eb.msg);
            begin_close(l);
            return;
        }
        size_t used = (size_t)(l->reader.offset + l->reader.buf.len - start);
        data += used;
        len -= used;
    }
    if (len > 0 && l->state == LINK_OPEN) {
        int rc = dip_dynbuf_add(&l->backlog, data, len);
        if (rc) fail(l, rc, "%s: input backlog: %s", l->peer, dip_err_name(rc));
    }
}

/* Delivers the backlog, then (TLS) what OpenSSL has decrypted. */
static void pump(struct dip_net_link *l)
{
    while (l->state == LINK_OPEN && !l->paused) {
        if (l->backlog.len) {
            struct dip_dynbuf b = l->backlog;
            dip_dynbuf_init(&l->backlog, BACKLOG_MAX);
            deliver(l, b.data, b.len);
            dip_dynbuf_free(&b);
            continue;
        }
        if (!l->ssl) break;
        ERR_clear_error();
        /* the rest of a large frame is decrypted straight into its buffer
         * (a 3 MB answer: one copy of it less) */
        size_t room = 0;
        uint8_t *space = l->raw ? NULL : dip_net_frame_reader_space(&l->reader, &room);
        bool direct = space && room >= sizeof plain_buffer;
        int r = direct ? SSL_read(l->ssl, space, room > INT_MAX ? INT_MAX : (int)room)
                       : SSL_read(l->ssl, plain_buffer, (int)sizeof plain_buffer);
        if (r > 0) {
            if (direct) (void)dip_net_frame_reader_filled(&l->reader, (size_t)r, link_frame, l); /* loop checks state */
            else deliver(l, plain_buffer, (size_t)r);
            continue;
        }
        int e = SSL_get_error(l->ssl, r);
        if (tls_flush(l) != DIP_OK) return;
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) break;
        if (e == SSL_ERROR_ZERO_RETURN) {
            set_reason(l, DIP_OK, "%s: closed by peer", l->peer);
        } else {
            set_reason(l, DIP_EPROTO, "TLS with %s failed: %s", l->peer, dip_net_tls_reason());
        }
        begin_close(l);
        break;
    }
}

static void handshake_failed(struct dip_net_link *l)
{
    const char *reason = dip_net_tls_reason();
    long v = SSL_get_verify_result(l->ssl);
    if (v != X509_V_OK)
        set_reason(l, DIP_EPROTO, "TLS handshake with %s failed: %s (%s)", l->peer, reason,
                   X509_verify_cert_error_string(v));
    else set_reason(l, DIP_EPROTO, "TLS handshake with %s failed: %s", l->peer, reason);
    begin_close(l); /* sends the alert */
}

static void tls_input(struct dip_net_link *l)
{
    if (l->state == LINK_HANDSHAKE) {
        ERR_clear_error();
        int r = SSL_do_handshake(l->ssl);
        int e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(l->ssl, r);
        if (tls_flush(l) != DIP_OK) return;
        if (r == 1) {
            link_opened(l);
        } else if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            return;
        } else {
            handshake_failed(l);
            return;
        }
    }
    pump(l);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h;
    *buf = uv_buf_init((char *)read_buffer, sizeof read_buffer);
}

static void on_eof(struct dip_net_link *l)
{
    l->eof = true;
    if (l->reading) uv_read_stop((uv_stream_t *)&l->tcp);
    l->reading = false;
    switch (l->state) {
    case LINK_CLOSING:
        if (l->shutdown_sent) finish(l);
        return;
    case LINK_HANDSHAKE:
        if (l->ssl) fail(l, DIP_EPROTO, "TLS handshake with %s failed: connection closed by peer", l->peer);
        else fail(l, DIP_OK, "%s: closed before sending anything", l->peer);
        return;
    case LINK_OPEN:
        if (!l->raw && l->reader.buf.len)
            set_reason(l, DIP_EPROTO, "%s: connection closed inside a frame at stream offset %llu", l->peer,
                       (unsigned long long)l->reader.offset);
        else if (l->ssl && l->raw && !(SSL_get_shutdown(l->ssl) & SSL_RECEIVED_SHUTDOWN))
            set_reason(l, DIP_EPROTO, "%s: connection closed without TLS close_notify (data may be truncated)",
                       l->peer);
        else set_reason(l, DIP_OK, "%s: closed by peer", l->peer);
        begin_close(l);
        return;
    default: return;
    }
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct dip_net_link *l = s->data;
    if (nread == 0 || l->state == LINK_DEAD) return;
    if (nread < 0) {
        if (nread == UV_EOF) on_eof(l);
        else if (l->state == LINK_CLOSING) finish(l);
        else fail(l, DIP_EIO, "%s: %s", l->peer, uv_strerror((int)nread));
        return;
    }
    l->last_rx = uv_now(l->loop);
    if (l->state == LINK_CLOSING) return; /* lingering: the owner is gone */
    const uint8_t *data = (const uint8_t *)buf->base;
    size_t len = (size_t)nread;
    if (l->sniff) {
        l->sniff = false;
        if (data[0] == 0x16 && l->tls) {
            if (attach_tls(l, true)) {
                fail(l, DIP_ENOMEM, "%s: cannot create a TLS session", l->peer);
                return;
            }
        } else {
            link_opened(l);
        }
    }
    if (l->ssl) {
        if (BIO_write(l->rbio, data, (int)len) != (int)len) {
            fail(l, DIP_ENOMEM, "%s: out of memory", l->peer);
            return;
        }
        tls_input(l);
        return;
    }
    if (l->backlog.len) {
        int rc = dip_dynbuf_add(&l->backlog, data, len);
        if (rc) fail(l, rc, "%s: input backlog: %s", l->peer, dip_err_name(rc));
        else pump(l);
        return;
    }
    deliver(l, data, len);
}

static void start_read(struct dip_net_link *l)
{
    if (l->reading || l->eof || l->state == LINK_DEAD) return;
    int r = uv_read_start((uv_stream_t *)&l->tcp, on_alloc, on_read);
    if (r < 0) fail(l, DIP_EIO, "%s: %s", l->peer, uv_strerror(r));
    else l->reading = true;
}

/* ---- outgoing links ---- */

static void format_peer(char *out, size_t n, const struct sockaddr *sa)
{
    char a[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, a, sizeof a);
        port = ntohs(s4->sin_port);
        snprintf(out, n, "%s:%d", a, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof a);
        port = ntohs(s6->sin6_port);
        snprintf(out, n, "[%s]:%d", a, port);
    } else {
        snprintf(out, n, "?");
    }
}

static void on_connect(uv_connect_t *req, int status)
{
    struct dip_net_link *l = req->data;
    if (l->state == LINK_DEAD) return;
    if (status < 0) {
        fail(l, DIP_EIO, "%s: %s", l->peer, uv_strerror(status));
        return;
    }
    uv_tcp_nodelay(&l->tcp, 1);
    start_read(l);
    if (l->state != LINK_CONNECTING) return;
    if (l->ssl) {
        l->state = LINK_HANDSHAKE;
        tls_input(l); /* the ClientHello */
    } else {
        link_opened(l);
    }
}

static void start_connect(struct dip_net_link *l)
{
    int r = uv_tcp_connect(&l->connect_req, &l->tcp, (const struct sockaddr *)&l->addr, on_connect);
    if (r < 0) fail(l, DIP_EIO, "%s: %s", l->peer, uv_strerror(r));
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct dip_net_link *l = req->data;
    l->resolving = false;
    if (l->state != LINK_DEAD) {
        if (status < 0 || !res) {
            fail(l, DIP_EIO, "%s: cannot resolve %s: %s", l->peer, l->host, uv_strerror(status));
        } else {
            memcpy(&l->addr, res->ai_addr, res->ai_addrlen);
            start_connect(l);
        }
    }
    if (res) uv_freeaddrinfo(res);
    link_release(l);
}

static bool host_name_ok(const char *h)
{
    size_t n = strlen(h);
    if (n == 0 || n >= 64) return false;
    for (size_t i = 0; i < n; i++) {
        char c = h[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
              c == '_'))
            return false;
    }
    return true;
}

int dip_net_link_connect(struct uv_loop_s *loop, struct dip_net_tls *tls, const char *host, int port,
                         uint32_t timeout_ms, const struct dip_net_link_callbacks *cb, void *ctx,
                         struct dip_net_link **out, struct dip_errbuf *eb)
{
    *out = NULL;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    bool numeric = false;
    if (!host || port <= 0 || port > 65535) return dip_err_set(eb, DIP_EINVAL, "bad address %s:%d", host ? host : "", port);
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) == 0) numeric = true;
    else if (strchr(host, ':') && uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) == 0) numeric = true;
    else if (!host_name_ok(host)) return dip_err_set(eb, DIP_EINVAL, "bad host \"%s\"", host);
    struct dip_net_link *l = link_new(loop, tls, cb, ctx);
    if (!l) return dip_err_set(eb, DIP_ENOMEM, "out of memory");
    snprintf(l->host, sizeof l->host, "%s", host);
    if (strchr(host, ':')) snprintf(l->peer, sizeof l->peer, "[%s]:%d", host, port);
    else snprintf(l->peer, sizeof l->peer, "%s:%d", host, port);
    l->port = port;
    l->timeout_ms = timeout_ms ? timeout_ms : DEFAULT_TIMEOUT_MS;
    if (tls) {
        if (attach_tls(l, false)) {
            link_discard(l);
            return dip_err_set(eb, DIP_ENOMEM, "cannot create a TLS session for %s", l->peer);
        }
        dip_net_tls_resume(tls, l->peer, l->ssl);
    }
    l->state = LINK_CONNECTING;
    uv_timer_start(&l->timer, on_timer, l->timeout_ms, 0);
    *out = l;
    if (numeric) {
        l->addr = ss;
        start_connect(l);
        return DIP_OK;
    }
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    l->refs++;
    l->resolving = true; /* a resolution in flight */
    int r = uv_getaddrinfo(loop, &l->gai, on_resolved, host, portstr, &hints);
    if (r < 0) {
        l->refs--;
        l->resolving = false;
        fail(l, DIP_EIO, "%s: cannot resolve %s: %s", l->peer, host, uv_strerror(r));
    }
    return DIP_OK;
}

/* ---- accepted links ---- */

/* Writes text to a connection about to be closed unread, reads what the peer
 * already sent and ends our side: closing with unread input would make the
 * kernel reset the connection, and the peer might lose the text. Best
 * effort, never blocking: the socket's buffers are empty. */
static void refuse_politely(struct dip_net_link *l, const char *text)
{
    uv_buf_t b = uv_buf_init((char *)text, (unsigned)strlen(text));
    (void)uv_try_write((uv_stream_t *)&l->tcp, &b, 1);
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&l->tcp, &fd) != 0) return;
    for (int i = 0; i < 16 && recv(fd, read_buffer, sizeof read_buffer, MSG_DONTWAIT) > 0; i++) {
    }
    shutdown(fd, SHUT_WR);
}

struct dip_net_link *dip_net_link_accepted(uv_loop_t *loop, uv_stream_t *server, struct dip_net_admission *admission,
                                           struct dip_net_tls *tls, bool sniff, uint32_t handshake_timeout_ms,
                                           void (*on_accept)(struct dip_net_link *l, void *ctx),
                                           const struct dip_net_link_callbacks *cb, void *ctx)
{
    struct dip_net_link *l = link_new(loop, tls, cb, ctx);
    if (!l) return NULL;
    l->server = true;
    l->on_accept = on_accept;
    if (uv_accept(server, (uv_stream_t *)&l->tcp) != 0) {
        link_discard(l);
        return NULL;
    }
    int alen = (int)sizeof l->addr;
    if (uv_tcp_getpeername(&l->tcp, (struct sockaddr *)&l->addr, &alen) == 0)
        format_peer(l->peer, sizeof l->peer, (struct sockaddr *)&l->addr);
    else snprintf(l->peer, sizeof l->peer, "?");
    if (admission && !dip_net_admit(admission, l)) {
        if (admission->refusal) refuse_politely(l, admission->refusal);
        link_discard(l);
        return NULL;
    }
    uv_tcp_nodelay(&l->tcp, 1);
    l->timeout_ms = handshake_timeout_ms ? handshake_timeout_ms : DEFAULT_TIMEOUT_MS;
    if (!tls) {
        link_opened(l);
        return l;
    }
    l->state = LINK_HANDSHAKE;
    if (sniff) {
        l->sniff = true;
    } else {
        if (attach_tls(l, true)) {
            link_discard(l);
            return NULL;
        }
    }
    uv_timer_start(&l->timer, on_timer, l->timeout_ms, 0);
    start_read(l);
    return l;
}

/* ---- control and accessors ---- */

void dip_net_link_close(struct dip_net_link *l)
{
    if (!l || l->state >= LINK_CLOSING || l->close_requested) return;
    if (l->state == LINK_CONNECTING || l->state == LINK_HANDSHAKE) {
        if (l->pend_head) {
            l->close_requested = true; /* flush them once open */
        } else {
            set_reason(l, DIP_OK, "%s: closed", l->peer);
            finish(l);
        }
        return;
    }
    l->close_requested = true;
    begin_close(l);
}

void dip_net_link_pause(struct dip_net_link *l, bool paused)
{
    if (!l || l->paused == paused) return;
    l->paused = paused;
    if (l->state != LINK_OPEN) return;
    if (paused) {
        if (l->reading) uv_read_stop((uv_stream_t *)&l->tcp);
        l->reading = false;
        return;
    }
    l->last_rx = uv_now(l->loop);
    start_read(l);
    /* Backlog and already-decrypted input are delivered from the loop. */
    uv_timer_start(&l->kick, on_kick, 0, 0);
}

void dip_net_link_set_idle_timeout(struct dip_net_link *l, uint32_t ms)
{
    if (!l) return;
    l->idle_ms = ms;
    l->last_rx = uv_now(l->loop);
    arm_idle(l);
}

void dip_net_link_set_raw(struct dip_net_link *l, bool raw)
{
    if (!l || l->raw == raw) return;
    l->raw = raw;
    if (raw && l->reader.buf.len) {
        /* A partial frame already read becomes the first raw bytes. */
        struct dip_dynbuf b;
        dip_dynbuf_init(&b, BACKLOG_MAX);
        if (dip_dynbuf_add(&b, l->reader.buf.data, l->reader.buf.len) != DIP_OK ||
            dip_dynbuf_add(&b, l->backlog.data, l->backlog.len) != DIP_OK) {
            dip_dynbuf_free(&b);
            fail(l, DIP_ENOMEM, "%s: out of memory", l->peer);
            return;
        }
        l->reader.offset += l->reader.buf.len;
        dip_dynbuf_reset(&l->reader.buf);
        dip_dynbuf_free(&l->backlog);
        l->backlog = b;
    }
    if (l->state == LINK_OPEN && l->backlog.len) uv_timer_start(&l->kick, on_kick, 0, 0);
}

void dip_net_link_set_callbacks(struct dip_net_link *l, const struct dip_net_link_callbacks *cb, void *ctx)
{
    if (!l) return;
    if (cb) l->cb = *cb;
    else memset(&l->cb, 0, sizeof l->cb);
    l->ctx = ctx;
}

const char *dip_net_link_peer(const struct dip_net_link *l) { return l->peer; }

const char *dip_net_link_peer_name(const struct dip_net_link *l) { return l->peer_name; }
const char *dip_net_link_peer_role(const struct dip_net_link *l) { return l->peer_role; }

bool dip_net_link_peer_is_loopback(const struct dip_net_link *l)
{
    if (l->addr.ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)&l->addr;
        return (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
    }
    if (l->addr.ss_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)&l->addr)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a)) return true;
        return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
    }
    return false;
}

bool dip_net_link_is_tls(const struct dip_net_link *l) { return l->ssl != NULL; }

void dip_net_link_set_user(struct dip_net_link *l, void *user) { l->user = user; }

void *dip_net_link_user(const struct dip_net_link *l) { return l->user; }
