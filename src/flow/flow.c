/* flow.c - the flow record: addresses, the field table, tank keys and key order.
 * XML and binary encodings live in flow_xml.c and flow_batch.c, IDs in flow_id.c. */
#include "flow.h"
#include "common/cursor.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define FIELD(n, t, m, bit) { n, t, offsetof(struct dip_flow, m), bit }

static const struct dip_field fields[] = {
    FIELD("src", DIP_FT_ADDR, src, 0),
    FIELD("dst", DIP_FT_ADDR, dst, 0),
    FIELD("sport", DIP_FT_U16, sport, 0),
    FIELD("dport", DIP_FT_U16, dport, 0),
    FIELD("proto", DIP_FT_U8, proto, 0),
    FIELD("packets", DIP_FT_U64, packets, 0),
    FIELD("bytes", DIP_FT_U64, bytes, 0),
    FIELD("first", DIP_FT_U64, first, 0),
    FIELD("last", DIP_FT_U64, last, 0),
    FIELD("flags", DIP_FT_U8, flags, DIP_F_FLAGS),
    FIELD("tos", DIP_FT_U8, tos, DIP_F_TOS),
    FIELD("in", DIP_FT_U32, in, DIP_F_IN),
    FIELD("out", DIP_FT_U32, out, DIP_F_OUT),
    FIELD("srcas", DIP_FT_U32, srcas, DIP_F_SRCAS),
    FIELD("dstas", DIP_FT_U32, dstas, DIP_F_DSTAS),
    FIELD("smask", DIP_FT_U8, smask, DIP_F_SMASK),
    FIELD("dmask", DIP_FT_U8, dmask, DIP_F_DMASK),
    FIELD("nexthop", DIP_FT_ADDR, nexthop, DIP_F_NEXTHOP),
    FIELD("exporter", DIP_FT_ADDR, exporter, DIP_F_EXPORTER),
    FIELD("domain", DIP_FT_U32, domain, DIP_F_DOMAIN),
    FIELD("sampling", DIP_FT_U32, sampling, DIP_F_SAMPLING),
    FIELD("id", DIP_FT_ID, id, 0),
};

const struct dip_field *dip_flow_fields(size_t *n)
{
    *n = sizeof fields / sizeof fields[0];
    return fields;
}

const struct dip_field *dip_flow_field_find(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (strlen(fields[i].name) == len && memcmp(fields[i].name, name, len) == 0) return &fields[i];
    return NULL;
}

uint64_t dip_flow_get_u64(const struct dip_flow *f, const struct dip_field *fd)
{
    const uint8_t *p = (const uint8_t *)f + fd->offset;
    if (fd->opt_bit && !(f->present & fd->opt_bit)) return 0;
    switch (fd->type) {
    case DIP_FT_U8: return *p;
    case DIP_FT_U16: { uint16_t v; memcpy(&v, p, 2); return v; }
    case DIP_FT_U32: { uint32_t v; memcpy(&v, p, 4); return v; }
    case DIP_FT_U64:
    case DIP_FT_ID: { uint64_t v; memcpy(&v, p, 8); return v; }
    default: return 0;
    }
}

static const char *const key_names[DIP_TANK_KEYS] = { "src", "dst", "sport", "dport" };

const char *dip_tank_key_name(enum dip_tank_key key)
{
    return (unsigned)key < DIP_TANK_KEYS ? key_names[key] : "?";
}

int dip_tank_key_parse(const char *name, enum dip_tank_key *out)
{
    for (int i = 0; i < DIP_TANK_KEYS; i++)
        if (strcmp(name, key_names[i]) == 0) {
            *out = (enum dip_tank_key)i;
            return DIP_OK;
        }
    return DIP_EINVAL;
}

void dip_addr_from_v4(struct dip_addr *a, uint32_t v4)
{
    memset(a->b, 0, 10);
    a->b[10] = 0xff; a->b[11] = 0xff;
    a->b[12] = (uint8_t)(v4 >> 24); a->b[13] = (uint8_t)(v4 >> 16);
    a->b[14] = (uint8_t)(v4 >> 8); a->b[15] = (uint8_t)v4;
}

static inline uint64_t load_be64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return __builtin_bswap64(v);
}

int dip_addr_cmp(const struct dip_addr *a, const struct dip_addr *b)
{
    /* as two big-endian words: the k-way merges of point queries compare
     * addresses for every record, and a call to memcmp cost more than this */
    uint64_t ah = load_be64(a->b), bh = load_be64(b->b), al = load_be64(a->b + 8), bl = load_be64(b->b + 8);
    if (ah == bh && al == bl) return 0;
    bool a4 = dip_addr_is_v4(a), b4 = dip_addr_is_v4(b);
    if (a4 != b4) return a4 ? -1 : 1;
    if (ah != bh) return ah < bh ? -1 : 1;
    return al < bl ? -1 : 1;
}

/* Strict dotted quad: four decimal octets 0..255, no leading '+', at most 3 digits. */
static bool parse_v4(const char *s, size_t len, uint32_t *out)
{
    uint32_t v = 0;
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        if (part) {
            if (i >= len || s[i] != '.') return false;
            i++;
        }
        unsigned octet = 0, digits = 0;
        while (i < len && s[i] >= '0' && s[i] <= '9' && digits < 4) {
            octet = octet * 10 + (unsigned)(s[i] - '0');
            i++; digits++;
        }
        if (digits == 0 || digits > 3 || octet > 255) return false;
        v = (v << 8) | octet;
    }
    if (i != len) return false;
    *out = v;
    return true;
}

int dip_addr_parse(const char *text, size_t len, struct dip_addr *out)
{
    uint32_t v4;
    if (parse_v4(text, len, &v4)) {
        dip_addr_from_v4(out, v4);
        return DIP_OK;
    }
    char buf[64];
    if (len == 0 || len >= sizeof buf || !memchr(text, ':', len)) return DIP_EINVAL;
    memcpy(buf, text, len);
    buf[len] = 0;
    if (inet_pton(AF_INET6, buf, out->b) != 1) return DIP_EINVAL;
    return DIP_OK;
}

static size_t format_u8(unsigned v, char *out)
{
    if (v >= 100) { out[0] = (char)('0' + v / 100); out[1] = (char)('0' + v / 10 % 10); out[2] = (char)('0' + v % 10); return 3; }
    if (v >= 10) { out[0] = (char)('0' + v / 10); out[1] = (char)('0' + v % 10); return 2; }
    out[0] = (char)('0' + v);
    return 1;
}

/* An IPv6 address as inet_ntop writes it (RFC 5952: lowercase hex without
 * leading zeros, the longest run of two or more zero groups as "::",
 * leftmost on ties) and, like inet_ntop, the last 32 bits dotted when only
 * they are non-zero (IPv4-compatible). Its own code because inet_ntop
 * formats each group through sprintf: a tenth of the CPU of answers whose
 * records carry IPv6 exporters. Returns: the length (out is NUL-terminated). */
static size_t format_v6(const uint8_t b[16], char *out)
{
    static const char hex[] = "0123456789abcdef";
    unsigned w[8];
    for (int i = 0; i < 8; i++) w[i] = (unsigned)b[2 * i] << 8 | b[2 * i + 1];
    int best = -1, best_len = 0;
    for (int i = 0; i < 8;) {
        if (w[i]) {
            i++;
            continue;
        }
        int j = i;
        while (j < 8 && !w[j]) j++;
        if (j - i > best_len) best = i, best_len = j - i;
        i = j;
    }
    if (best_len < 2) best = -1;
    size_t n = 0;
    for (int i = 0; i < 8; i++) {
        if (best >= 0 && i >= best && i < best + best_len) {
            if (i == best) out[n++] = ':';
            continue;
        }
        if (i) out[n++] = ':';
        if (i == 6 && best == 0 && best_len == 6) { /* ::a.b.c.d */
            for (int k = 12; k < 16; k++) {
                if (k > 12) out[n++] = '.';
                n += format_u8(b[k], out + n);
            }
            out[n] = 0;
            return n;
        }
        int shift = w[i] >= 0x1000 ? 12 : w[i] >= 0x100 ? 8 : w[i] >= 0x10 ? 4 : 0;
        for (; shift >= 0; shift -= 4) out[n++] = hex[(w[i] >> shift) & 15];
    }
    if (best >= 0 && best + best_len == 8) out[n++] = ':';
    out[n] = 0;
    return n;
}

/* Each octet's digits followed by a dot, and their length: a dotted quad
 * is four 4-byte copies (addresses are two to four of a record's XML
 * attributes, written for every record of every result). */
static struct {
    char text[4];
    uint8_t len;
} octets[256];
static pthread_once_t octets_once = PTHREAD_ONCE_INIT;

static void make_octets(void)
{
    for (unsigned v = 0; v < 256; v++) {
        size_t n = format_u8(v, octets[v].text);
        octets[v].text[n] = '.';
        octets[v].len = (uint8_t)(n + 1);
    }
}

size_t dip_addr_format(const struct dip_addr *a, char *out)
{
    if (dip_addr_is_v4(a)) {
        pthread_once(&octets_once, make_octets);
        size_t n = 0;
        for (int i = 12; i < 16; i++) {
            memcpy(out + n, octets[a->b[i]].text, 4);
            n += octets[a->b[i]].len;
        }
        out[--n] = 0; /* the last dot */
        return n;
    }
    return format_v6(a->b, out);
}

int dip_flow_key_cmp(const struct dip_flow *a, const struct dip_flow *b, enum dip_tank_key key)
{
    switch (key) {
    case DIP_KEY_SRC: return dip_addr_cmp(&a->src, &b->src);
    case DIP_KEY_DST: return dip_addr_cmp(&a->dst, &b->dst);
    case DIP_KEY_SPORT: return (int)a->sport - (int)b->sport;
    case DIP_KEY_DPORT: return (int)a->dport - (int)b->dport;
    }
    return 0;
}

/* The tie-break addresses and ports of a key, in order. */
struct order_plan {
    bool addr_src[2]; /* the addresses compared: src (true) or dst */
    int naddr;
    bool port_sport[2]; /* the ports compared: sport (true) or dport */
    int nport;
};

static const struct order_plan order_plans[DIP_TANK_KEYS] = {
    [DIP_KEY_SRC] = { { false }, 1, { false, true }, 2 },
    [DIP_KEY_DST] = { { true }, 1, { true, false }, 2 },
    [DIP_KEY_SPORT] = { { true, false }, 2, { false }, 1 },
    [DIP_KEY_DPORT] = { { false, true }, 2, { true }, 1 },
};

#define CMP_NUM(x, y)                              \
    do {                                           \
        if ((x) != (y)) return (x) < (y) ? -1 : 1; \
    } while (0)

int dip_flow_order_cmp(const struct dip_flow *a, const struct dip_flow *b, enum dip_tank_key key)
{
    int c = dip_flow_key_cmp(a, b, key);
    if (c) return c;
    const struct order_plan *p = &order_plans[key];
    for (int i = 0; i < p->naddr; i++)
        if ((c = dip_addr_cmp(p->addr_src[i] ? &a->src : &a->dst, p->addr_src[i] ? &b->src : &b->dst))) return c;
    for (int i = 0; i < p->nport; i++) {
        if (p->port_sport[i]) CMP_NUM(a->sport, b->sport);
        else CMP_NUM(a->dport, b->dport);
    }
    CMP_NUM(a->proto, b->proto);
    CMP_NUM(a->first, b->first);
    CMP_NUM(a->last, b->last);
    CMP_NUM(a->packets, b->packets);
    CMP_NUM(a->bytes, b->bytes);
    CMP_NUM(a->present, b->present);
    uint16_t has = a->present;
    if (has & DIP_F_FLAGS) CMP_NUM(a->flags, b->flags);
    if (has & DIP_F_TOS) CMP_NUM(a->tos, b->tos);
    if (has & DIP_F_IN) CMP_NUM(a->in, b->in);
    if (has & DIP_F_OUT) CMP_NUM(a->out, b->out);
    if (has & DIP_F_SRCAS) CMP_NUM(a->srcas, b->srcas);
    if (has & DIP_F_DSTAS) CMP_NUM(a->dstas, b->dstas);
    if (has & DIP_F_SMASK) CMP_NUM(a->smask, b->smask);
    if (has & DIP_F_DMASK) CMP_NUM(a->dmask, b->dmask);
    if ((has & DIP_F_NEXTHOP) && (c = dip_addr_cmp(&a->nexthop, &b->nexthop))) return c;
    if ((has & DIP_F_EXPORTER) && (c = dip_addr_cmp(&a->exporter, &b->exporter))) return c;
    if (has & DIP_F_DOMAIN) CMP_NUM(a->domain, b->domain);
    if (has & DIP_F_SAMPLING) CMP_NUM(a->sampling, b->sampling);
    CMP_NUM(a->id, b->id);
    return 0;
}

uint64_t dip_flow_order_hint(const struct dip_flow *f, enum dip_tank_key key)
{
    /* the first tie-break address (every key has one), truncated to 63 bits
     * below a family bit: IPv4 as its 32 bits then the top 31 bits of what
     * follows (the second address or the ports), IPv6 as its top 63 bits */
    const struct order_plan *p = &order_plans[key];
    uint64_t ports = 0;
    for (int i = 0; i < p->nport; i++) ports = ports << 16 | (p->port_sport[i] ? f->sport : f->dport);
    const struct dip_addr *a = p->addr_src[0] ? &f->src : &f->dst;
    if (!dip_addr_is_v4(a)) return (uint64_t)1 << 63 | dip_get_u64(a->b) >> 1;
    const struct dip_addr *b = p->addr_src[1] ? &f->src : &f->dst;
    /* an IPv6 second address follows every IPv4 one: the largest value */
    uint64_t next = p->naddr > 1 ? (dip_addr_is_v4(b) ? dip_addr_v4(b) : UINT32_MAX) : ports;
    /* 32 bits of address, then the top 31 bits of the next field */
    int next_bits = p->naddr > 1 ? 32 : 16 * p->nport;
    return (uint64_t)dip_addr_v4(a) << 31 | (next_bits > 31 ? next >> (next_bits - 31) : next << (31 - next_bits));
}
