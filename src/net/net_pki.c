/* net_pki.c - the private CA of a dipstorage installation and the node
 * certificates it signs (EC P-256, SHA-256, 10 years), written as PEM files
 * that the openssl command line reads too. Each certificate names its holder
 * (CN) and role (OU). Every file is written to a
 * temporary name and renamed, keys with mode 0600. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "net/net.h"

#define VALID_DAYS 3650
#define NAME_MAX_LEN 64

static const char *ssl_reason(void)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    return r ? r : "unknown OpenSSL error";
}

static int ssl_fail(struct dip_errbuf *eb, int code, const char *what, const char *path)
{
    dip_err_set(eb, code, "%s%s%s: %s", what, path ? " " : "", path ? path : "", ssl_reason());
    ERR_clear_error();
    return code;
}

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Writes data to path atomically (temporary file, fsync, rename) with mode. */
static int write_atomic(const char *path, const void *data, size_t len, mode_t mode, struct dip_errbuf *eb)
{
    char tmp[4096];
    int n = snprintf(tmp, sizeof tmp, "%s.tmpXXXXXX", path);
    if (n < 0 || (size_t)n >= sizeof tmp) return dip_err_set(eb, DIP_EINVAL, "path too long: %s", path);
    int fd = mkstemp(tmp);
    if (fd < 0) return dip_err_sys(eb, errno, "cannot create %s", tmp);
    const uint8_t *p = data;
    size_t left = len;
    int err = 0;
    if (fchmod(fd, mode) != 0) err = errno;
    while (!err && left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR) continue;
            err = errno;
            break;
        }
        p += w;
        left -= (size_t)w;
    }
    if (!err && fsync(fd) != 0) err = errno;
    if (close(fd) != 0 && !err) err = errno;
    if (!err && rename(tmp, path) != 0) err = errno;
    if (err) {
        unlink(tmp);
        return dip_err_sys(eb, err, "cannot write %s", path);
    }
    return DIP_OK;
}

/* Writes a PEM private key (PKCS#8, unencrypted, 0600) or certificate (0644). */
static int write_pem(const char *path, EVP_PKEY *key, X509 *cert, struct dip_errbuf *eb)
{
    BIO *m = BIO_new(BIO_s_mem());
    if (!m) return dip_err_set(eb, DIP_ENOMEM, "out of memory");
    int ok = key ? PEM_write_bio_PrivateKey(m, key, NULL, NULL, 0, NULL, NULL) : PEM_write_bio_X509(m, cert);
    int rc;
    if (!ok) {
        rc = ssl_fail(eb, DIP_EIO, "cannot encode", path);
    } else {
        char *data = NULL;
        long n = BIO_get_mem_data(m, &data);
        rc = write_atomic(path, data, (size_t)n, key ? 0600 : 0644, eb);
    }
    BIO_free(m);
    return rc;
}

static int add_ext(X509 *issuer, X509 *subject, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, subject, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ext) return 0;
    int ok = X509_add_ext(subject, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

/* Builds a certificate for key with subject CN=cn (and OU=role unless role
 * is NULL), signed by issuer_key (the issuer is issuer_cert, or the
 * certificate itself when NULL: self-signed). */
static X509 *make_cert(const char *cn, const char *role, EVP_PKEY *key, X509 *issuer_cert, EVP_PKEY *issuer_key)
{
    X509 *x = X509_new();
    BIGNUM *serial = BN_new();
    bool ok = x && serial;
    ok = ok && X509_set_version(x, 2);
    ok = ok && BN_rand(serial, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY);
    ok = ok && BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x));
    ok = ok && X509_gmtime_adj(X509_getm_notBefore(x), -3600); /* tolerate a little clock skew */
    ok = ok && X509_time_adj_ex(X509_getm_notAfter(x), VALID_DAYS, 0, NULL);
    ok = ok && X509_set_pubkey(x, key);
    X509_NAME *name = ok ? X509_get_subject_name(x) : NULL;
    ok = ok && X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
    if (role) ok = ok && X509_NAME_add_entry_by_txt(name, "OU", MBSTRING_UTF8, (const unsigned char *)role, -1, -1, 0);
    ok = ok && X509_set_issuer_name(x, issuer_cert ? X509_get_subject_name(issuer_cert) : name);
    X509 *iss = issuer_cert ? issuer_cert : x;
    if (ok && !issuer_cert) {
        ok = add_ext(iss, x, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") &&
             add_ext(iss, x, NID_key_usage, "critical,keyCertSign,cRLSign") &&
             add_ext(iss, x, NID_subject_key_identifier, "hash") &&
             add_ext(iss, x, NID_authority_key_identifier, "keyid:always");
    } else if (ok) {
        char san[NAME_MAX_LEN + 64];
        snprintf(san, sizeof san, "DNS:%s,DNS:localhost,IP:127.0.0.1,IP:::1", cn);
        ok = add_ext(iss, x, NID_basic_constraints, "critical,CA:FALSE") &&
             add_ext(iss, x, NID_key_usage, "critical,digitalSignature,keyAgreement") &&
             add_ext(iss, x, NID_ext_key_usage, "serverAuth,clientAuth") &&
             add_ext(iss, x, NID_subject_key_identifier, "hash") &&
             add_ext(iss, x, NID_authority_key_identifier, "keyid:always") &&
             add_ext(iss, x, NID_subject_alt_name, san);
    }
    ok = ok && X509_sign(x, issuer_key, EVP_sha256()) > 0;
    BN_free(serial);
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

bool dip_net_role_known(const char *role)
{
    static const char *const roles[] = { DIP_NET_ROLE_LEAF, DIP_NET_ROLE_INDEXER, DIP_NET_ROLE_FRONT,
                                         DIP_NET_ROLE_CLIENT, DIP_NET_ROLE_BOOTSTRAP };
    for (size_t i = 0; role && i < sizeof roles / sizeof *roles; i++)
        if (strcmp(role, roles[i]) == 0) return true;
    return false;
}

/* Returns: true when the certificate at path exists and names role as its OU. */
static bool cert_has_role(const char *path, const char *role)
{
    BIO *b = BIO_new_file(path, "r");
    X509 *c = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    char ou[DIP_NET_ROLE_MAX + 1] = "";
    int len = c ? X509_NAME_get_text_by_NID(X509_get_subject_name(c), NID_organizationalUnitName, ou, sizeof ou) : -1;
    X509_free(c);
    ERR_clear_error();
    return len >= 0 && strcmp(ou, role) == 0;
}

static int check_name(const char *name, struct dip_errbuf *eb)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > NAME_MAX_LEN || strcmp(name, "ca") == 0 || name[0] == '.' || name[0] == '-')
        return dip_err_set(eb, DIP_EINVAL, "bad certificate name \"%s\"", name ? name : "");
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
              c == '_'))
            return dip_err_set(eb, DIP_EINVAL, "bad certificate name \"%s\": only letters, digits, '.', '-', '_'",
                               name);
    }
    return DIP_OK;
}

static int load_ca(const char *cert_path, const char *key_path, X509 **cert, EVP_PKEY **key, struct dip_errbuf *eb)
{
    BIO *b = BIO_new_file(cert_path, "r");
    *cert = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    if (!*cert) return ssl_fail(eb, DIP_EIO, "cannot read CA certificate", cert_path);
    b = BIO_new_file(key_path, "r");
    *key = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    if (!*key) return ssl_fail(eb, DIP_EIO, "cannot read CA key", key_path);
    if (X509_check_private_key(*cert, *key) != 1)
        return ssl_fail(eb, DIP_EINVAL, "CA key does not match its certificate", key_path);
    return DIP_OK;
}

/* Generates a key and a certificate for cn and writes key then certificate
 * (so a certificate on disk always has its key). */
static int issue(const char *cn, const char *role, const char *cert_path, const char *key_path, X509 *ca,
                 EVP_PKEY *ca_key, X509 **out_cert, EVP_PKEY **out_key, struct dip_errbuf *eb)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    if (!key) return ssl_fail(eb, DIP_EIO, "cannot generate an EC key for", cn);
    X509 *cert = make_cert(cn, role, key, ca, ca_key ? ca_key : key);
    if (!cert) {
        EVP_PKEY_free(key);
        return ssl_fail(eb, DIP_EIO, "cannot make the certificate for", cn);
    }
    int rc = write_pem(key_path, key, NULL, eb);
    if (rc == DIP_OK) rc = write_pem(cert_path, NULL, cert, eb);
    if (rc == DIP_OK && out_cert) {
        *out_cert = cert;
        *out_key = key;
    } else {
        X509_free(cert);
        EVP_PKEY_free(key);
    }
    return rc;
}

int dip_net_pki_ensure(const char *dir, const struct dip_net_pki_name *names, size_t n, struct dip_errbuf *eb)
{
    if (!dir || !*dir) return dip_err_set(eb, DIP_EINVAL, "no PKI directory given");
    for (size_t i = 0; i < n; i++) {
        int rc = check_name(names[i].name, eb);
        if (rc) return rc;
        if (!dip_net_role_known(names[i].role))
            return dip_err_set(eb, DIP_EINVAL, "certificate %s: unknown role \"%s\"", names[i].name,
                               names[i].role ? names[i].role : "");
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) return dip_err_sys(eb, errno, "cannot create %s", dir);
    char cert_path[4096], key_path[4096];
    snprintf(cert_path, sizeof cert_path, "%s/ca.pem", dir);
    snprintf(key_path, sizeof key_path, "%s/ca.key", dir);
    X509 *ca = NULL;
    EVP_PKEY *ca_key = NULL;
    int rc;
    if (file_exists(cert_path) && file_exists(key_path)) rc = load_ca(cert_path, key_path, &ca, &ca_key, eb);
    else rc = issue("dipstorage CA", NULL, cert_path, key_path, NULL, NULL, &ca, &ca_key, eb);
    for (size_t i = 0; rc == DIP_OK && i < n; i++) {
        int a = snprintf(cert_path, sizeof cert_path, "%s/%s.pem", dir, names[i].name);
        int b = snprintf(key_path, sizeof key_path, "%s/%s.key", dir, names[i].name);
        if (a < 0 || b < 0 || (size_t)a >= sizeof cert_path || (size_t)b >= sizeof key_path) {
            rc = dip_err_set(eb, DIP_EINVAL, "path too long in %s", dir);
            break;
        }
        if (file_exists(key_path) && cert_has_role(cert_path, names[i].role)) continue;
        rc = issue(names[i].name, names[i].role, cert_path, key_path, ca, ca_key, NULL, NULL, eb);
    }
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    return rc;
}
