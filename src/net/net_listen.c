/* net_listen.c - listening sockets for node links: plain TCP, TLS, or SNIFF
 * (TLS when the first byte is a TLS handshake record, else plain). Accepted
 * connections become links (net_link.c) that outlive their listener; the
 * listener's admission caps how many are alive, in all and per address. */
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
    struct dip_net_admission *admission;
};

static void listener_closed(uv_handle_t *h)
{
    struct dip_net_listener *ls = h->data;
    dip_net_admission_unref(ls->admission);
    free(ls);
}

static bool same_address(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family) return false;
    if (a->ss_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr == ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    if (a->ss_family == AF_INET6)
        return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr, &((const struct sockaddr_in6 *)b)->sin6_addr,
                      16) == 0;
    return false;
}

/* The per-address count walks the live links: the caps keep them few (a
 * few thousand compares per accepted connection). */
bool dip_net_admit(struct dip_net_admission *a, struct dip_net_link *l)
{
    size_t same = 0;
    if (a->max_per_address)
        for (const struct dip_net_link *o = a->head; o && same < a->max_per_address; o = o->adm_next)
            same += same_address(&o->addr, &l->addr);
    if ((a->max_links && a->links >= a->max_links) || (a->max_per_address && same >= a->max_per_address)) {
        a->refused++;
        return false;
    }
    a->links++;
    a->refs++;
    l->admission = a;
    l->adm_next = a->head;
    if (a->head) a->head->adm_prev = l;
    a->head = l;
    return true;
}

void dip_net_admission_leave(struct dip_net_link *l)
{
    struct dip_net_admission *a = l->admission;
    if (l->adm_prev) l->adm_prev->adm_next = l->adm_next;
    else a->head = l->adm_next;
    if (l->adm_next) l->adm_next->adm_prev = l->adm_prev;
    l->admission = NULL;
    a->links--;
    dip_net_admission_unref(a);
}

void dip_net_admission_unref(struct dip_net_admission *a)
{
    if (a && --a->refs == 0) free(a);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct dip_net_listener *ls = server->data;
    if (status < 0) return; /* e.g. EMFILE: libuv retries on the next connection */
    struct dip_net_tls *tls = ls->mode == DIP_NET_LISTEN_PLAIN ? NULL : ls->tls;
    /* A failed accept is dropped: the peer sees a reset, there is nobody to tell. */
    dip_net_link_accepted(server->loop, server, ls->admission, tls, ls->mode == DIP_NET_LISTEN_SNIFF,
                          ls->handshake_timeout_ms, ls->on_accept, &ls->cb, ls->ctx);
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
    if (!ls || !(ls->admission = calloc(1, sizeof *ls->admission))) {
        free(ls);
        return dip_err_set(eb, DIP_ENOMEM, "out of memory");
    }
    ls->admission->refs = 1;
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

void dip_net_listener_set_limits(struct dip_net_listener *l, size_t max_links, size_t max_per_address,
                                 const char *refusal)
{
    l->admission->max_links = max_links;
    l->admission->max_per_address = max_per_address;
    l->admission->refusal = refusal;
}

size_t dip_net_listener_links(const struct dip_net_listener *l) { return l->admission->links; }

uint64_t dip_net_listener_refused(const struct dip_net_listener *l) { return l->admission->refused; }

void dip_net_listener_close(struct dip_net_listener *l)
{
    if (!l) return;
    uv_close((uv_handle_t *)&l->tcp, listener_closed);
}
