/* net.h - node links (ARCHITECTURE 8): length-prefixed frames over TCP, TLS
 * 1.3 with mutual certificate authentication (OpenSSL, memory BIOs) or plain
 * TCP, on one libuv loop; the private CA that signs every node's certificate;
 * a blocking request helper for commands that are not event loops.
 *
 * Layer: P2P / transport. Depends on src/common only (and libuv, OpenSSL).
 * Not thread-safe: every link belongs to the loop thread that made it. */
#ifndef DIP_NET_H
#define DIP_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/dynbuf.h"
#include "common/err.h"

struct uv_loop_s;

/* ---- the private CA and node certificates (PEM files, openssl-compatible) ---- */

/* What a certificate's holder is, written in its subject as OU=ROLE and
 * signed by the CA: nodes accept from a peer only the messages its role may
 * send (src/route/authz.c). */
#define DIP_NET_ROLE_LEAF "leaf"
#define DIP_NET_ROLE_INDEXER "indexer"
#define DIP_NET_ROLE_FRONT "front"         /* collector and access point */
#define DIP_NET_ROLE_CLIENT "client"       /* queries and status, never data */
#define DIP_NET_ROLE_BOOTSTRAP "bootstrap"
#define DIP_NET_ROLE_MAX 16
/* Returns: true when role is one of DIP_NET_ROLE_* (NULL is none). */
bool dip_net_role_known(const char *role);

/* One certificate to issue: its holder's name (the CN) and role (the OU). */
struct dip_net_pki_name {
    const char *name;
    const char *role; /* one of DIP_NET_ROLE_* */
};

/* Makes sure dir holds ca.pem/ca.key (a new self-signed EC P-256 CA when
 * absent) and NAME.pem/NAME.key signed by it for each name (subject
 * CN=NAME, OU=ROLE; SAN DNS:NAME, DNS:localhost, IP:127.0.0.1, IP:::1; both
 * client and server use). A name whose certificate is missing, or names
 * another role (or none, as certificates made before roles did), gets a new
 * key and certificate. Keys are written mode 0600. Idempotent.
 * Returns DIP_OK or DIP_EIO/DIP_EINVAL with eb filled. */
int dip_net_pki_ensure(const char *dir, const struct dip_net_pki_name *names, size_t n, struct dip_errbuf *eb);

/* TLS contexts of one process: its certificate and key, and the CA every peer
 * must be signed by. Server side requires a client certificate unless
 * require_client_cert is false; client side verifies the server's
 * certificate against the CA (and not its host name: the CA is private).
 * TLS 1.3 only. */
struct dip_net_tls;
int dip_net_tls_new(const char *ca_pem, const char *cert_pem, const char *key_pem, bool require_client_cert,
                    struct dip_net_tls **out, struct dip_errbuf *eb);
void dip_net_tls_free(struct dip_net_tls *t);
/* Client handshakes through t that resumed an earlier session with the same
 * peer (TLS 1.3 tickets; a client connecting again skips certificates). */
unsigned long dip_net_tls_resumed(struct dip_net_tls *t);

/* ---- frames (the unit of every node link) ----
 * header: u32 big-endian payload length, u8 type, u64 big-endian request id;
 * then the payload. Types are the caller's (src/route/ defines them). */
#define DIP_NET_FRAME_HEADER 13
#define DIP_NET_FRAME_MAX (512u << 20) /* largest payload accepted (a 1M-record answer fits) */

struct dip_net_frame {
    uint8_t type;
    uint64_t id;
    const uint8_t *payload; /* borrowed for the duration of the callback */
    size_t len;
};

/* Writes the 13-byte header. */
void dip_net_frame_header(uint8_t hdr[DIP_NET_FRAME_HEADER], uint8_t type, uint64_t id, size_t len);

/* Splits a byte stream into frames; bytes may arrive in any split. */
struct dip_net_frame_reader {
    struct dip_dynbuf buf;
    size_t max_payload;   /* frames longer than this are a protocol error */
    uint64_t offset;      /* stream bytes consumed so far (for error messages) */
};
void dip_net_frame_reader_init(struct dip_net_frame_reader *r, size_t max_payload);
void dip_net_frame_reader_free(struct dip_net_frame_reader *r);
/* Feeds len bytes; calls on_frame for each complete frame. Stops at the first
 * non-zero return of on_frame and returns it. Returns DIP_OK, DIP_EPROTO (a
 * length beyond max_payload: eb names the stream offset), DIP_ENOMEM. */
int dip_net_frame_reader_feed(struct dip_net_frame_reader *r, const uint8_t *data, size_t len,
                              int (*on_frame)(void *ctx, const struct dip_net_frame *f), void *ctx,
                              struct dip_errbuf *eb);
/* While a frame whose length is known is being reassembled: returns where
 * its missing bytes go and sets *n to how many are missing (the caller may
 * write them there itself, saving a copy, and then calls
 * dip_net_frame_reader_filled); NULL when no such frame is pending. */
uint8_t *dip_net_frame_reader_space(struct dip_net_frame_reader *r, size_t *n);
/* Takes the k bytes (k <= *n of dip_net_frame_reader_space) the caller wrote
 * at the space; delivers the frame when it is whole. Returns on_frame's
 * result, or DIP_OK. */
int dip_net_frame_reader_filled(struct dip_net_frame_reader *r, size_t k,
                                int (*on_frame)(void *ctx, const struct dip_net_frame *f), void *ctx);

/* ---- links ---- */

struct dip_net_link;

struct dip_net_link_callbacks {
    /* A whole frame arrived (framed links). */
    void (*on_frame)(struct dip_net_link *l, const struct dip_net_frame *f, void *ctx);
    /* Bytes arrived (raw links, see dip_net_link_set_raw). */
    void (*on_data)(struct dip_net_link *l, const uint8_t *data, size_t len, void *ctx);
    /* Outgoing link: connected and (with TLS) the handshake is done. Accepted
     * links get the listener's on_accept instead. With TLS 1.3 the client
     * finishes its handshake before the server has checked the client's
     * certificate: a refusal then arrives as on_close(DIP_EPROTO). */
    void (*on_open)(struct dip_net_link *l, void *ctx);
    /* Queued output fell below DIP_NET_LINK_LOW_WATER after having been above
     * DIP_NET_LINK_HIGH_WATER (back-pressure released). May be NULL. */
    void (*on_drain)(struct dip_net_link *l, void *ctx);
    /* Called exactly once for every link, whoever closed it and why: code is
     * DIP_OK for a close by dip_net_link_close or an orderly EOF, else the
     * error (DIP_ETIMEOUT, DIP_EIO connection refused/reset, DIP_EPROTO bad
     * frame or TLS failure, ...) with msg naming the peer (never NULL).
     * Accepted links that fail before on_accept (a refused handshake) get it
     * too, with the listener's callbacks. Always called from the loop, never
     * from inside a dip_net_link_* call. After it returns the link is freed:
     * drop every pointer to it. */
    void (*on_close)(struct dip_net_link *l, int code, const char *msg, void *ctx);
};

#define DIP_NET_LINK_HIGH_WATER (8u << 20)
#define DIP_NET_LINK_LOW_WATER (2u << 20)

/* Connects to host:port (numeric IPv4/IPv6 or a name) through tls (NULL:
 * plain TCP). timeout_ms bounds connect plus handshake; on_open or on_close
 * follows. A name is resolved asynchronously and its first address used.
 * Frames sent before on_open are queued and flushed once open. Returns DIP_OK
 * with *out (owned by the loop; it lives until its on_close), or DIP_EINVAL
 * for a bad address. */
int dip_net_link_connect(struct uv_loop_s *loop, struct dip_net_tls *tls, const char *host, int port,
                         uint32_t timeout_ms, const struct dip_net_link_callbacks *cb, void *ctx,
                         struct dip_net_link **out, struct dip_errbuf *eb);

/* Queues one frame (payload copied; the two parts are concatenated, b may be
 * NULL). Never blocks; callers watch dip_net_link_queued() for back-pressure.
 * Returns DIP_OK, DIP_EIO when the link is closing, DIP_ERANGE beyond
 * DIP_NET_FRAME_MAX, DIP_ENOMEM. */
int dip_net_link_send(struct dip_net_link *l, uint8_t type, uint64_t id, const void *a, size_t alen,
                      const void *b, size_t blen);
/* Queues raw bytes (raw links). */
int dip_net_link_write(struct dip_net_link *l, const void *data, size_t len);
/* Returns: bytes queued but not yet handed to the kernel. */
size_t dip_net_link_queued(const struct dip_net_link *l);
/* Closes once queued output is flushed (or at once when it cannot be; the
 * flush is bounded by a few seconds, after which on_close says DIP_ETIMEOUT);
 * no frames are delivered after it; on_close follows. Idempotent. */
void dip_net_link_close(struct dip_net_link *l);
/* Stops/resumes reading (back-pressure towards the peer). Strict: no
 * on_frame/on_data after a pause (even from inside on_frame) until resumed;
 * input already read is kept and delivered after the resume. */
void dip_net_link_pause(struct dip_net_link *l, bool paused);
/* Closes the link with DIP_ETIMEOUT when nothing arrives for ms (0: never). */
void dip_net_link_set_idle_timeout(struct dip_net_link *l, uint32_t ms);
/* Switches a link to raw bytes (on_data instead of on_frame). Called inside
 * on_frame, the bytes after that frame go to on_data. */
void dip_net_link_set_raw(struct dip_net_link *l, bool raw);
/* Replaces the callbacks and context (accepted links start with the
 * listener's). */
void dip_net_link_set_callbacks(struct dip_net_link *l, const struct dip_net_link_callbacks *cb, void *ctx);
/* Returns: "ADDR:PORT" of the peer ("[V6ADDR]:PORT"; outgoing links: the
 * host as given to connect) (borrowed, valid until on_close). */
const char *dip_net_link_peer(const struct dip_net_link *l);
/* Returns: the peer certificate's CN, "" on plain links (borrowed). */
const char *dip_net_link_peer_name(const struct dip_net_link *l);
/* Returns: the peer certificate's role (its OU, a DIP_NET_ROLE_*), "" on
 * plain links and for certificates without one (borrowed). */
const char *dip_net_link_peer_role(const struct dip_net_link *l);
/* Returns: true if the peer address is loopback (127.0.0.0/8, ::1). */
bool dip_net_link_peer_is_loopback(const struct dip_net_link *l);
/* Returns: true if the link runs TLS. */
bool dip_net_link_is_tls(const struct dip_net_link *l);
void dip_net_link_set_user(struct dip_net_link *l, void *user);
void *dip_net_link_user(const struct dip_net_link *l);

/* ---- listeners ---- */

struct dip_net_listener;

enum dip_net_listen_mode {
    DIP_NET_LISTEN_PLAIN, /* plain TCP only */
    DIP_NET_LISTEN_TLS,   /* TLS only */
    DIP_NET_LISTEN_SNIFF, /* TLS when the first byte is a TLS handshake record (0x16), else plain */
};

/* Listens on host:port (numeric; NULL or "": 0.0.0.0; port 0: ephemeral,
 * see dip_net_listener_port). Each accepted link starts with callbacks cb and
 * context ctx (framed, no idle timeout); on_accept (may be NULL) is called
 * first, once the link is ready (TLS: after the handshake, so the peer name
 * is known), and may change them. handshake_timeout_ms bounds
 * accept-to-TLS-done (SNIFF: also accept-to-first-byte; 0: 10 s).
 * Returns DIP_OK with *out (dip_net_listener_close), DIP_EIO (cannot bind:
 * eb says why, e.g. "address already in use"). */
int dip_net_listen(struct uv_loop_s *loop, struct dip_net_tls *tls, enum dip_net_listen_mode mode, const char *host,
                   int port, uint32_t handshake_timeout_ms, void (*on_accept)(struct dip_net_link *l, void *ctx),
                   const struct dip_net_link_callbacks *cb, void *ctx, struct dip_net_listener **out,
                   struct dip_errbuf *eb);
/* Returns: the bound port. */
int dip_net_listener_port(const struct dip_net_listener *l);
/* Caps the accepted links alive at once: in all, and from one peer address
 * (0: no cap; none by default). A connection beyond either is closed as soon
 * as it is accepted, before any TLS work, and counted; refusal (NULL: none;
 * static, or outliving the listener) is written to it first, in plain text. */
void dip_net_listener_set_limits(struct dip_net_listener *l, size_t max_links, size_t max_per_address,
                                 const char *refusal);
/* Returns: accepted links alive (admitted under the caps). */
size_t dip_net_listener_links(const struct dip_net_listener *l);
/* Returns: connections refused by the caps so far. */
uint64_t dip_net_listener_refused(const struct dip_net_listener *l);
/* Stops listening (accepted links stay open). */
void dip_net_listener_close(struct dip_net_listener *l);

/* ---- blocking helpers (for commands; they run a private loop) ---- */

/* Connects, sends one frame, waits for one frame back (any type) within
 * timeout_ms. Returns DIP_OK with *reply_type and reply filled (appended),
 * DIP_ETIMEOUT, DIP_EIO (refused: eb names host:port), DIP_EPROTO,
 * DIP_ERANGE (reply beyond reply->max). */
int dip_net_request(struct dip_net_tls *tls, const char *host, int port, uint8_t type, const void *payload,
                    size_t len, uint32_t timeout_ms, uint8_t *reply_type, struct dip_dynbuf *reply,
                    struct dip_errbuf *eb);

/* Connects (plain or TLS), writes data, reads until the peer closes, appending
 * to reply, within timeout_ms (the client protocol of ARCHITECTURE 5).
 * Returns DIP_OK, DIP_ETIMEOUT, DIP_EIO, DIP_ERANGE (reply beyond its cap),
 * DIP_EPROTO (TLS failure, or a TLS reply ended without close_notify). */
int dip_net_exchange(struct dip_net_tls *tls, const char *host, int port, const void *data, size_t len,
                     uint32_t timeout_ms, struct dip_dynbuf *reply, struct dip_errbuf *eb);

#endif
