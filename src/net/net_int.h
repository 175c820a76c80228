/* net_int.h - internals shared by the files of src/net/ (not a public
 * header): the TLS context, the link structure and its state machine, and
 * the few link functions the listener and the blocking helpers call. */
#ifndef DIP_NET_INT_H
#define DIP_NET_INT_H

#include <openssl/ssl.h>
#include <pthread.h>
#include <uv.h>

#include "net/net.h"

struct dip_net_tls {
    SSL_CTX *ctx;
    bool require_client_cert;
    /* As a client: the last resumable session and the peer it is with. */
    pthread_mutex_t lock;
    SSL_SESSION *session;
    char session_peer[80];
    unsigned long resumed;
};

/* The TLS engine of a link: OpenSSL reads ciphertext from a memory BIO
 * (filled from the socket) and writes it to wbio (the link's own, which
 * sends it to the socket: net_link.c). Takes wbio, freed on failure. */
SSL *dip_net_tls_ssl(struct dip_net_tls *t, bool server, BIO *wbio);
/* A client link's session resumption: remember keeps the session of a
 * finished handshake with peer, resume offers it on a new SSL to the same peer. */
void dip_net_tls_remember(struct dip_net_tls *t, const char *peer, SSL *ssl);
void dip_net_tls_resume(struct dip_net_tls *t, const char *peer, SSL *ssl);
/* Returns: the first queued OpenSSL error reason (static), and clears the queue. */
const char *dip_net_tls_reason(void);

enum link_state {
    LINK_CONNECTING, /* resolving or connecting */
    LINK_HANDSHAKE,  /* TLS handshake, or an accepted SNIFF link waiting for its first byte */
    LINK_OPEN,
    LINK_CLOSING,    /* flushing, shutting down, lingering for the peer's EOF */
    LINK_DEAD,       /* on_close delivered or about to be; handles closing */
};

struct pending {        /* a plaintext frame queued before the link opened */
    struct pending *next;
    size_t len;
    uint8_t data[];
};

struct dip_net_listener;

/* What a listener admits: its accepted links still alive, in all and per peer
 * address (net_listen.c). Shared by the listener and each admitted link
 * (refs), since links outlive their listener. */
struct dip_net_admission {
    int refs;
    size_t max_links, max_per_address; /* 0: no cap */
    size_t links;
    uint64_t refused;
    const char *refusal;               /* written to a refused connection before it is closed (NULL: none) */
    struct dip_net_link *head;         /* the admitted links still alive */
};
/* Admits l (its peer address known) unless a cap is reached: then counts a
 * refusal. Returns: true when admitted (l holds a reference on a). */
bool dip_net_admit(struct dip_net_admission *a, struct dip_net_link *l);
/* The link is freed: it leaves its admission's count. */
void dip_net_admission_leave(struct dip_net_link *l);
void dip_net_admission_unref(struct dip_net_admission *a);

struct dip_net_link {
    uv_tcp_t tcp;
    uv_timer_t timer;   /* the current deadline: connect+handshake, idle, or close */
    uv_timer_t kick;    /* deferred work: backlog after resume, the final on_close */
    uv_connect_t connect_req;
    uv_shutdown_t shutdown_req;
    uv_getaddrinfo_t gai;
    uv_loop_t *loop;
    int refs;           /* open handles + requests in flight; freed at 0 */

    struct dip_net_link_callbacks cb;
    void *ctx, *user;
    enum link_state state;
    bool server, raw, paused, reading, close_requested, eof, shutdown_sent, flush_failed, resolving;
    bool sniff;         /* accepted on a SNIFF listener, first byte not yet seen */
    bool above_high;    /* queued went above the high water; on_drain due below the low */
    int port;
    uint32_t timeout_ms, idle_ms;
    uint64_t last_rx;

    struct dip_net_tls *tls; /* borrowed; the SSL below holds a reference on its SSL_CTX */
    SSL *ssl;
    BIO *rbio;          /* ciphertext received, for OpenSSL to read */
    struct dip_dynbuf tx; /* ciphertext OpenSSL wrote, for the socket (tls_flush) */

    struct dip_net_frame_reader reader;
    struct dip_dynbuf backlog;     /* plaintext received while paused or switching mode */
    struct pending *pend_head, *pend_tail;
    size_t queued;                 /* pending plaintext + bytes in uv_write requests */

    struct dip_net_listener *listener; /* accepted links: for on_accept */
    struct dip_net_admission *admission; /* accepted links under a listener's caps */
    struct dip_net_link *adm_prev, *adm_next;
    void (*on_accept)(struct dip_net_link *l, void *ctx);

    int code;                      /* the close code, first error wins */
    char msg[512];
    char peer[80];
    char host[64];                 /* as given to connect (for messages) */
    char peer_name[256];
    char peer_role[DIP_NET_ROLE_MAX + 1];
    struct sockaddr_storage addr;
};

/* A new link in state HANDSHAKE for an accepted connection, or NULL (also
 * when admission, if not NULL, refuses its peer: the connection is closed at
 * once). */
struct dip_net_link *dip_net_link_accepted(uv_loop_t *loop, uv_stream_t *server, struct dip_net_admission *admission,
                                           struct dip_net_tls *tls, bool sniff, uint32_t handshake_timeout_ms,
                                           void (*on_accept)(struct dip_net_link *l, void *ctx),
                                           const struct dip_net_link_callbacks *cb, void *ctx);
/* Ends the link at once with code and msg (no flush); on_close follows from
 * the loop. */
void dip_net_link_abort(struct dip_net_link *l, int code, const char *msg);

#endif
