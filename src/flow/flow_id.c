/* flow_id.c - the paper's 64-bit flow IDs (section III): random (a keyed
 * hash, uniform over 2^64) and structured (order-preserving on a tank key). */
#include "flow.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <string.h>

#include "../common/cursor.h"

const uint8_t dip_flow_id_default_key[16] = { 'd', 'i', 'p', 's', 't', 'o', 'r', 'a',
                                              'g', 'e', '-', 'f', 'l', 'o', 'w', 's' };

/* One SipHash context per thread, created on first use and reused: fetching
 * and allocating per record would cost more than the hash itself. */
static _Thread_local EVP_MAC_CTX *sip_ctx;

static EVP_MAC_CTX *siphash_ctx(void)
{
    if (sip_ctx) return sip_ctx;
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "SIPHASH", NULL);
    if (!mac) return NULL;
    sip_ctx = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac);
    return sip_ctx;
}

uint64_t dip_flow_id_random(const struct dip_flow *f, const uint8_t key[16])
{
    /* The record's identity in a fixed big-endian layout. */
    uint8_t in[16 + 16 + 2 + 2 + 1 + 8 + 16 + 4];
    size_t n = 0;
    memcpy(in + n, f->src.b, 16); n += 16;
    memcpy(in + n, f->dst.b, 16); n += 16;
    dip_put_u16(in + n, f->sport); n += 2;
    dip_put_u16(in + n, f->dport); n += 2;
    in[n++] = f->proto;
    dip_put_u64(in + n, f->first); n += 8;
    if (f->present & DIP_F_EXPORTER) memcpy(in + n, f->exporter.b, 16);
    else memset(in + n, 0, 16);
    n += 16;
    dip_put_u32(in + n, (f->present & DIP_F_DOMAIN) ? f->domain : 0); n += 4;

    EVP_MAC_CTX *ctx = siphash_ctx();
    size_t size = 8, outlen = 0;
    uint8_t out[8] = { 0 };
    OSSL_PARAM params[] = { OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size), OSSL_PARAM_construct_end() };
    if (!ctx || !EVP_MAC_init(ctx, key, 16, params) || !EVP_MAC_update(ctx, in, n) ||
        !EVP_MAC_final(ctx, out, &outlen, sizeof out))
        return 0; /* only on a broken OpenSSL installation; tests catch it */
    uint64_t id = 0;
    for (int i = 7; i >= 0; i--) id = (id << 8) | out[i]; /* SipHash output is little-endian */
    return id;
}

uint64_t dip_flow_id_structured(const struct dip_flow *f, enum dip_tank_key key)
{
    const struct dip_addr *a;
    switch (key) {
    case DIP_KEY_SPORT: return ((uint64_t)f->sport << 48) | (f->id & 0xffffffffffffull);
    case DIP_KEY_DPORT: return ((uint64_t)f->dport << 48) | (f->id & 0xffffffffffffull);
    case DIP_KEY_SRC: a = &f->src; break;
    default: a = &f->dst; break;
    }
    if (dip_addr_is_v4(a)) return ((uint64_t)dip_addr_v4(a) << 31) | (f->id & 0x7fffffffull);
    return (1ull << 63) | (dip_get_u64(a->b) >> 1);
}
