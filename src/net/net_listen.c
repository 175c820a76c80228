/* net_listen.c - listening sockets for node links: plain TCP, TLS, or SNIFF
 * (TLS when the first byte is a TLS handshake record, else plain). Accepted
 * connections become links (net_link.c) that outlive their listener. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/net_int.h"

struct dip_net_listener {
    uv_tcp_t tcp;
    struct dip_net_tls *tls;
    enum dip_net_listen_mode mode;
    uint32_t handshake_timeout_ms;
    void (*on_accept)(struct dip_net_link *l, void *ctx);
    struct dip_net_link_callbacks cb;
    void *ctx;
    int port;
};

static void listener_closed(uv_handle_t *h) { free(h->data); }

static void on_connection(uv_stream_t *server, int status)
{
    struct dip_net_listener *ls = server->data;
    if (status < 0) return; /* e.g. EMFILE: libuv retries on the next connection */
    struct dip_net_tls *tls = ls->mode == DIP_NET_LISTEN_PLAIN ? NULL : ls->tls;
    /* A failed accept is dropped: the peer sees a reset, there is nobody to tell. */
    dip_net_link_accepted(server->loop, server, tls, ls->mode == DIP_NET_LISTEN_SNIFF, ls->handshake_timeout_ms,
                          ls->on_accept, &ls->cb, ls->ctx);
}

static int resolve(const char *host, int port, struct sockaddr_storage *ss, struct dip_errbuf *eb)
{
    memset(ss, 0, sizeof *ss);
    if (!host || !*host) host = "0.0.0.0";
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0) return DIP_OK;
    if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0) return DIP_OK;
    return dip_err_set(eb, DIP_EINVAL, "cannot listen on \"%s\": not a numeric IPv4 or IPv6 address", host);
}

int dip_net_listen(struct uv_loop_s *loop, struct dip_net_tls *tls, enum dip_net_listen_mode mode, const char *host,
                   int port, uint32_t handshake_timeout_ms, void (*on_accept)(struct dip_net_link *l, void *ctx),
                   const struct dip_net_link_callbacks *cb, void *ctx, struct dip_net_listener **out,
                   struct dip_errbuf *eb)
{
    *out = NULL;
    if (port < 0 || port > 65535) return dip_err_set(eb, DIP_EINVAL, "bad port %d", port);
    if (mode != DIP_NET_LISTEN_PLAIN && !tls)
        return dip_err_set(eb, DIP_EINVAL, "a TLS or SNIFF listener needs a TLS context");
    struct sockaddr_storage ss;
    int rc = resolve(host, port, &ss, eb);
    if (rc) return rc;
    struct dip_net_listener *ls = calloc(1, sizeof *ls);
    if (!ls) return dip_err_set(eb, DIP_ENOMEM, "out of memory");
    ls->tls = tls;
    ls->mode = mode;
    ls->handshake_timeout_ms = handshake_timeout_ms;
    ls->on_accept = on_accept;
    if (cb) ls->cb = *cb;
    ls->ctx = ctx;
    uv_tcp_init(loop, &ls->tcp);
    ls->tcp.data = ls;
    const char *h = host && *host ? host : "0.0.0.0";
    int r = uv_tcp_bind(&ls->tcp, (const struct sockaddr *)&ss, 0);
    if (r == 0) r = uv_listen((uv_stream_t *)&ls->tcp, 128, on_connection);
    if (r == 0) {
        struct sockaddr_storage bound;
        int len = (int)sizeof bound;
        r = uv_tcp_getsockname(&ls->tcp, (struct sockaddr *)&bound, &len);
        if (r == 0)
            ls->port = ntohs(bound.ss_family == AF_INET ? ((struct sockaddr_in *)&bound)->sin_port
                                                        : ((struct sockaddr_in6 *)&bound)->sin6_port);
    }
    if (r != 0) {
        dip_err_set(eb, DIP_EIO, "cannot listen on %s%s%s:%d: %s", strchr(h, ':') ? "[" : "", h,
                    strchr(h, ':') ? "]" : "", port, uv_strerror(r));
        uv_close((uv_handle_t *)&ls->tcp, listener_closed);
        return DIP_EIO;
    }
    *out = ls;
    return DIP_OK;
}

int dip_net_listener_port(const struct dip_net_listener *l) { return l->port; }

void dip_net_listener_close(struct dip_net_listener *l)
{
    if (!l) return;
    uv_close((uv_handle_t *)&l->tcp, listener_closed);
}
