/* net_tls.c - the TLS 1.3 context of a process (OpenSSL): its certificate and
 * key, the private CA every peer must be signed by, mutual authentication,
 * and SSL objects for links (which drive them through memory BIOs). */
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/net_int.h"

#define SESSION_CACHE_MAX 4096 /* sessions a process keeps for clients to resume (a few KB each) */

const char *dip_net_tls_reason(void)
{
    unsigned long e = ERR_peek_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    ERR_clear_error();
    return r ? r : "unknown TLS error";
}

static int fail(struct dip_net_tls *t, struct dip_errbuf *eb, const char *what, const char *path)
{
    dip_err_set(eb, DIP_EINVAL, "%s %s: %s", what, path, dip_net_tls_reason());
    dip_net_tls_free(t);
    return DIP_EINVAL;
}

int dip_net_tls_new(const char *ca_pem, const char *cert_pem, const char *key_pem, bool require_client_cert,
                    struct dip_net_tls **out, struct dip_errbuf *eb)
{
    *out = NULL;
    if (!ca_pem || !cert_pem || !key_pem) return dip_err_set(eb, DIP_EINVAL, "TLS needs a CA, a certificate and a key");
    ERR_clear_error();
    struct dip_net_tls *t = calloc(1, sizeof *t);
    if (!t) return dip_err_set(eb, DIP_ENOMEM, "out of memory");
    t->require_client_cert = require_client_cert;
    pthread_mutex_init(&t->lock, NULL);
    t->ctx = SSL_CTX_new(TLS_method());
    if (!t->ctx) return fail(t, eb, "cannot create a TLS context for", cert_pem);
    if (!SSL_CTX_set_min_proto_version(t->ctx, TLS1_3_VERSION) ||
        !SSL_CTX_set_max_proto_version(t->ctx, TLS1_3_VERSION))
        return fail(t, eb, "cannot restrict TLS to 1.3 for", cert_pem);
    /* AES-128-GCM first, and the server's order decides: with AES
     * instructions it encrypts ~4.1 GB/s here against 3.3 for AES-256-GCM
     * (`openssl speed -evp`), and a large answer is megabytes of XML
     * encrypted by the access point and decrypted by the client. */
    if (!SSL_CTX_set_ciphersuites(t->ctx, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"))
        return fail(t, eb, "cannot set the TLS 1.3 cipher suites for", cert_pem);
    SSL_CTX_set_options(t->ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_use_certificate_chain_file(t->ctx, cert_pem) != 1)
        return fail(t, eb, "cannot load certificate", cert_pem);
    if (SSL_CTX_use_PrivateKey_file(t->ctx, key_pem, SSL_FILETYPE_PEM) != 1)
        return fail(t, eb, "cannot load key", key_pem);
    if (SSL_CTX_check_private_key(t->ctx) != 1) return fail(t, eb, "key does not match certificate", key_pem);
    if (SSL_CTX_load_verify_locations(t->ctx, ca_pem, NULL) != 1) return fail(t, eb, "cannot load CA", ca_pem);
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca_pem);
    if (!names) return fail(t, eb, "cannot read the CA name from", ca_pem);
    SSL_CTX_set_client_CA_list(t->ctx, names);
    /* One session ticket a handshake, so that a client which connects
     * again (the client protocol is one query a connection) resumes: no
     * certificates, signatures or chain checks the second time. A full
     * handshake cost ~2.4 ms of CPU on both ends together with OpenSSL 3.0
     * here, most of the time of a point query. The client identity stays
     * the certificate verified in the first handshake. The tickets are
     * stateful (SSL_OP_NO_TICKET: the server keeps the sessions, a ticket
     * names one): a stateless ticket carries the client's certificate, and
     * OpenSSL 3 decoding its key again on every resumption cost a sixth of
     * the access point's CPU under point queries. */
    static const unsigned char sid_ctx[] = "dipstorage";
    SSL_CTX_set_session_id_context(t->ctx, sid_ctx, sizeof sid_ctx - 1); /* resumption with client certificates needs it */
    SSL_CTX_set_num_tickets(t->ctx, 1);
    SSL_CTX_set_options(t->ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_session_cache_mode(t->ctx, SSL_SESS_CACHE_BOTH);
    SSL_CTX_sess_set_cache_size(t->ctx, SESSION_CACHE_MAX);
    *out = t;
    return DIP_OK;
}

void dip_net_tls_free(struct dip_net_tls *t)
{
    if (!t) return;
    SSL_SESSION_free(t->session);
    pthread_mutex_destroy(&t->lock);
    SSL_CTX_free(t->ctx);
    free(t);
}

void dip_net_tls_remember(struct dip_net_tls *t, const char *peer, SSL *ssl)
{
    if (!SSL_is_init_finished(ssl)) return;
    SSL_SESSION *s = SSL_get1_session(ssl);
    if (!s) return;
    if (!SSL_SESSION_is_resumable(s)) {
        SSL_SESSION_free(s);
        return;
    }
    pthread_mutex_lock(&t->lock);
    if (SSL_session_reused(ssl)) t->resumed++;
    SSL_SESSION_free(t->session);
    t->session = s;
    snprintf(t->session_peer, sizeof t->session_peer, "%s", peer);
    pthread_mutex_unlock(&t->lock);
}

unsigned long dip_net_tls_resumed(struct dip_net_tls *t)
{
    pthread_mutex_lock(&t->lock);
    unsigned long n = t->resumed;
    pthread_mutex_unlock(&t->lock);
    return n;
}

void dip_net_tls_resume(struct dip_net_tls *t, const char *peer, SSL *ssl)
{
    pthread_mutex_lock(&t->lock);
    if (t->session && strcmp(t->session_peer, peer) == 0) SSL_set_session(ssl, t->session);
    pthread_mutex_unlock(&t->lock);
}

SSL *dip_net_tls_ssl(struct dip_net_tls *t, bool server, BIO *wbio)
{
    SSL *s = SSL_new(t->ctx);
    BIO *rbio = s ? BIO_new(BIO_s_mem()) : NULL;
    if (!rbio) {
        SSL_free(s);
        BIO_free(wbio);
        return NULL;
    }
    BIO_set_mem_eof_return(rbio, -1); /* an empty memory BIO reports "retry" rather than EOF */
    SSL_set_bio(s, rbio, wbio);
    if (server) {
        SSL_set_accept_state(s);
        SSL_set_verify(s, t->require_client_cert ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT : SSL_VERIFY_PEER,
                       NULL);
    } else {
        /* The CA is private: the chain is what counts, not the host name. */
        SSL_set_connect_state(s);
        SSL_set_verify(s, SSL_VERIFY_PEER, NULL);
    }
    return s;
}
