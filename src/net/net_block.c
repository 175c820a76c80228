/* net_block.c - blocking helpers for commands that are not event loops: one
 * request frame and its reply, or the client protocol's "write, read until
 * the peer closes". Each runs a private libuv loop, bounded by a timer. */
#include <stdio.h>
#include <string.h>

#include "net/net_int.h"

struct call {
    struct dip_net_link *link; /* NULL after on_close */
    uv_timer_t timer;
    uint32_t timeout_ms;
    char target[96];
    /* request */
    uint8_t type;
    const void *data;
    size_t len;
    bool framed, got_reply;
    uint8_t reply_type;
    struct dip_dynbuf *reply;
    int reply_rc;
    /* outcome */
    int code;
    char msg[512];
};

static void call_open(struct dip_net_link *l, void *ctx)
{
    struct call *c = ctx;
    int rc = c->framed ? dip_net_link_send(l, c->type, 1, c->data, c->len, NULL, 0)
                       : dip_net_link_write(l, c->data, c->len);
    if (rc) dip_net_link_abort(l, rc, "cannot queue the request");
}

static void call_frame(struct dip_net_link *l, const struct dip_net_frame *f, void *ctx)
{
    struct call *c = ctx;
    if (c->got_reply) return;
    c->got_reply = true;
    c->reply_type = f->type;
    c->reply_rc = dip_dynbuf_add(c->reply, f->payload, f->len);
    dip_net_link_close(l);
}

static void call_data(struct dip_net_link *l, const uint8_t *data, size_t len, void *ctx)
{
    struct call *c = ctx;
    int rc = dip_dynbuf_add(c->reply, data, len);
    if (rc) {
        c->reply_rc = rc;
        char m[160];
        snprintf(m, sizeof m, "%s: reply larger than %zu bytes", c->target, c->reply->max);
        dip_net_link_abort(l, rc, m);
    }
}

static void call_close(struct dip_net_link *l, int code, const char *msg, void *ctx)
{
    struct call *c = ctx;
    c->link = NULL;
    c->code = code;
    snprintf(c->msg, sizeof c->msg, "%s", msg ? msg : "");
    uv_timer_stop(&c->timer);
}

static void call_timeout(uv_timer_t *t)
{
    struct call *c = t->data;
    if (!c->link) return;
    char m[160];
    snprintf(m, sizeof m, "%s: no %s within %u ms", c->target, c->framed ? "reply" : "complete reply", c->timeout_ms);
    dip_net_link_abort(c->link, DIP_ETIMEOUT, m);
}

/* Returns: true when reply is one whole <error> document. A server that
 * refuses a connection (too many open) writes one and closes at once; when
 * our request reached it after that, its kernel answers with a reset, which
 * may come before we read to the end: the refusal is still the answer, while
 * a reset inside a result stays an error. */
static bool whole_error_document(const struct dip_dynbuf *reply)
{
    static const char tail[] = "</error>\n";
    size_t n = sizeof tail - 1;
    return reply->len > n && memmem(reply->data, reply->len < 64 ? reply->len : 64, "<error ", 7) &&
           memcmp(reply->data + reply->len - n, tail, n) == 0;
}

/* Runs c to its end on a private loop. Returns the link's outcome. */
static int run_call(struct call *c, struct dip_net_tls *tls, const char *host, int port, struct dip_errbuf *eb)
{
    uv_loop_t loop;
    int r = uv_loop_init(&loop);
    if (r < 0) return dip_err_set(eb, DIP_EIO, "cannot create an event loop: %s", uv_strerror(r));
    if (strchr(host, ':')) snprintf(c->target, sizeof c->target, "[%s]:%d", host, port);
    else snprintf(c->target, sizeof c->target, "%s:%d", host, port);
    uv_timer_init(&loop, &c->timer);
    c->timer.data = c;
    struct dip_net_link_callbacks cb = { .on_frame = call_frame, .on_data = call_data, .on_open = call_open,
                                         .on_close = call_close };
    int rc = dip_net_link_connect(&loop, tls, host, port, c->timeout_ms, &cb, c, &c->link, eb);
    if (rc == DIP_OK) {
        if (!c->framed) dip_net_link_set_raw(c->link, true);
        uv_timer_start(&c->timer, call_timeout, c->timeout_ms, 0);
        uv_run(&loop, UV_RUN_DEFAULT); /* ends when the link is gone and the timer stopped */
    }
    uv_close((uv_handle_t *)&c->timer, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    if (rc) return rc;
    if (c->reply_rc) return dip_err_set(eb, c->reply_rc, "%s: reply larger than %zu bytes", c->target, c->reply->max);
    if (c->framed && c->got_reply) return DIP_OK;
    if (c->framed && c->code == DIP_OK)
        return dip_err_set(eb, DIP_EPROTO, "%s: closed the link without a reply", c->target);
    if (!c->framed && c->code == DIP_EIO && whole_error_document(c->reply)) return DIP_OK;
    if (c->code) dip_err_set(eb, c->code, "%s", c->msg);
    return c->code;
}

int dip_net_request(struct dip_net_tls *tls, const char *host, int port, uint8_t type, const void *payload,
                    size_t len, uint32_t timeout_ms, uint8_t *reply_type, struct dip_dynbuf *reply,
                    struct dip_errbuf *eb)
{
    if (!host || !reply) return dip_err_set(eb, DIP_EINVAL, "no host or reply buffer");
    if (len > DIP_NET_FRAME_MAX) return dip_err_set(eb, DIP_ERANGE, "request of %zu bytes is too large", len);
    struct call c;
    memset(&c, 0, sizeof c);
    c.framed = true;
    c.type = type;
    c.data = payload;
    c.len = len;
    c.reply = reply;
    c.timeout_ms = timeout_ms ? timeout_ms : 10000;
    int rc = run_call(&c, tls, host, port, eb);
    if (rc == DIP_OK && reply_type) *reply_type = c.reply_type;
    return rc;
}

int dip_net_exchange(struct dip_net_tls *tls, const char *host, int port, const void *data, size_t len,
                     uint32_t timeout_ms, struct dip_dynbuf *reply, struct dip_errbuf *eb)
{
    if (!host || !reply) return dip_err_set(eb, DIP_EINVAL, "no host or reply buffer");
    struct call c;
    memset(&c, 0, sizeof c);
    c.data = data;
    c.len = len;
    c.reply = reply;
    c.timeout_ms = timeout_ms ? timeout_ms : 10000;
    return run_call(&c, tls, host, port, eb);
}
