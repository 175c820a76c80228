/* net_tls.c - the TLS 1.3 context of a process (OpenSSL): its certificate and
 * key, the private CA every peer must be signed by, mutual authentication,
 * and SSL objects for links (which drive them through memory BIOs). */
#include <openssl/err.h>
#include <stdlib.h>

#include "net/net_int.h"

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
    t->ctx = SSL_CTX_new(TLS_method());
    if (!t->ctx) return fail(t, eb, "cannot create a TLS context for", cert_pem);
    if (!SSL_CTX_set_min_proto_version(t->ctx, TLS1_3_VERSION) ||
        !SSL_CTX_set_max_proto_version(t->ctx, TLS1_3_VERSION))
        return fail(t, eb, "cannot restrict TLS to 1.3 for", cert_pem);
    if (SSL_CTX_use_certificate_chain_file(t->ctx, cert_pem) != 1)
        return fail(t, eb, "cannot load certificate", cert_pem);
    if (SSL_CTX_use_PrivateKey_file(t->ctx, key_pem, SSL_FILETYPE_PEM) != 1)
        return fail(t, eb, "cannot load key", key_pem);
    if (SSL_CTX_check_private_key(t->ctx) != 1) return fail(t, eb, "key does not match certificate", key_pem);
    if (SSL_CTX_load_verify_locations(t->ctx, ca_pem, NULL) != 1) return fail(t, eb, "cannot load CA", ca_pem);
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca_pem);
    if (!names) return fail(t, eb, "cannot read the CA name from", ca_pem);
    SSL_CTX_set_client_CA_list(t->ctx, names);
    /* Links are long-lived and between known peers: no resumption, so no
     * session tickets on the wire after the handshake. */
    SSL_CTX_set_num_tickets(t->ctx, 0);
    SSL_CTX_set_session_cache_mode(t->ctx, SSL_SESS_CACHE_OFF);
    *out = t;
    return DIP_OK;
}

void dip_net_tls_free(struct dip_net_tls *t)
{
    if (!t) return;
    SSL_CTX_free(t->ctx);
    free(t);
}

SSL *dip_net_tls_ssl(struct dip_net_tls *t, bool server)
{
    SSL *s = SSL_new(t->ctx);
    if (!s) return NULL;
    BIO *rbio = BIO_new(BIO_s_mem()), *wbio = BIO_new(BIO_s_mem());
    if (!rbio || !wbio) {
        BIO_free(rbio);
        BIO_free(wbio);
        SSL_free(s);
        return NULL;
    }
    /* An empty memory BIO reports "retry" rather than EOF. */
    BIO_set_mem_eof_return(rbio, -1);
    BIO_set_mem_eof_return(wbio, -1);
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
