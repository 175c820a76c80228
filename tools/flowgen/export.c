/* export.c - NetFlow v5, NetFlow v9 (RFC 3954) and IPFIX (RFC 7011) export
 * packets for flowgen. One state per exporting device: its own sequence
 * numbers, boot time and templates; records are packed into packets of at
 * most max_packet bytes and handed to an emit callback as each fills. */
#include "flowgen.h"

#include <stdlib.h>
#include <string.h>

#include "common/cursor.h"

/* What a template field carries. Addresses write 4 or 16 bytes by length. */
enum what {
    W_SRC, W_DST, W_NEXTHOP, W_SPORT, W_DPORT, W_DPORT_NOICMP, W_ICMP, W_PROTO, W_TOS,
    W_FLAGS, W_PACKETS, W_BYTES, W_FIRST_UPTIME, W_LAST_UPTIME, W_START_MS, W_END_MS, W_IN,
    W_OUT, W_SRCAS, W_DSTAS, W_SMASK, W_DMASK, W_END_REASON,
};

struct tfield {
    uint16_t ie;  /* v9 field type / IPFIX information element id */
    uint16_t len;
    enum what what;
};

#define TMPL_MAX_FIELDS 20
struct tmpl {
    uint16_t id;
    uint16_t nfields;
    uint16_t reclen;
    struct tfield f[TMPL_MAX_FIELDS];
};

#define TMPL_ID_V4 256
#define TMPL_ID_V6 257

/* Header sizes: v5 24 (RFC-less, Cisco's layout), v9 20 (RFC 3954 5.1),
 * IPFIX 16 (RFC 7011 3.1); v5 records are 48 bytes, at most 30 a packet. */
#define V5_HEADER 24
#define V5_RECORD 48
#define V5_MAX_RECORDS 30
#define V9_HEADER 20
#define IPFIX_HEADER 16
#define SET_HEADER 4

struct xstate {
    uint64_t boot_ms;        /* v5/v9: sysUptime 0 */
    uint64_t last_export_ms; /* export times never go back */
    uint64_t max_last;       /* latest record end in the open packet */
    uint32_t sequence;       /* v5, IPFIX: records sent; v9: packets sent */
    unsigned since_templates; /* packets since the templates were last sent */
    bool templates_sent;
    struct tmpl t[2];        /* [0] IPv4, [1] IPv6 */
    uint8_t data[2][FLOWGEN_MAX_PACKET];
    size_t dlen[2];
    unsigned dcount[2];
};

struct flowgen_export {
    struct flowgen_export_opts o;
    flowgen_emit_fn emit;
    void *ctx;
    uint64_t packets;
    struct xstate ex[FLOWGEN_EXPORTERS];
    uint8_t pkt[FLOWGEN_MAX_PACKET];
};

static void add_field(struct tmpl *t, uint16_t ie, uint16_t len, enum what w)
{
    t->f[t->nfields].ie = ie;
    t->f[t->nfields].len = len;
    t->f[t->nfields].what = w;
    t->nfields++;
    t->reclen = (uint16_t)(t->reclen + len);
}

/* The IPFIX option --ipfix-wide: 20 fields whatever the exporter, with ICMP
 * type and code in icmpTypeCodeIPv4/IPv6 (32/139) and port 0, as RFC 7012
 * intends, and flowEndReason (136). */
static void build_wide(struct tmpl *t, bool v6)
{
    uint16_t a = v6 ? 16 : 4;
    add_field(t, v6 ? 27 : 8, a, W_SRC);
    add_field(t, v6 ? 28 : 12, a, W_DST);
    add_field(t, v6 ? 62 : 15, a, W_NEXTHOP);
    add_field(t, 7, 2, W_SPORT);
    add_field(t, 11, 2, W_DPORT_NOICMP);
    add_field(t, 4, 1, W_PROTO);
    add_field(t, 5, 1, W_TOS);
    add_field(t, 6, 1, W_FLAGS);
    add_field(t, 2, 8, W_PACKETS);
    add_field(t, 1, 8, W_BYTES);
    add_field(t, 152, 8, W_START_MS);
    add_field(t, 153, 8, W_END_MS);
    add_field(t, 10, 4, W_IN);
    add_field(t, 14, 4, W_OUT);
    add_field(t, 16, 4, W_SRCAS);
    add_field(t, 17, 4, W_DSTAS);
    add_field(t, v6 ? 29 : 9, 1, W_SMASK);
    add_field(t, v6 ? 30 : 13, 1, W_DMASK);
    add_field(t, 136, 1, W_END_REASON);
    add_field(t, v6 ? 139 : 32, 2, W_ICMP);
}

/* The usual templates: v9 with the classic lengths (counters 4, interfaces and
 * AS numbers 2, times as sysUptime ms), IPFIX with the abstract types' full
 * lengths and absolute milliseconds; routing exporters add nexthop, AS
 * numbers and prefix lengths. ICMP type*256+code travels in the dport field. */
static void build_template(struct tmpl *t, bool ipfix, bool v6, bool routing, bool wide)
{
    memset(t, 0, sizeof *t);
    t->id = v6 ? TMPL_ID_V6 : TMPL_ID_V4;
    if (ipfix && wide) {
        build_wide(t, v6);
        return;
    }
    uint16_t a = v6 ? 16 : 4, small = ipfix ? 4 : 2, counter = ipfix ? 8 : 4;
    add_field(t, v6 ? 27 : 8, a, W_SRC);
    add_field(t, v6 ? 28 : 12, a, W_DST);
    add_field(t, 7, 2, W_SPORT);
    add_field(t, 11, 2, W_DPORT);
    add_field(t, 4, 1, W_PROTO);
    add_field(t, 5, 1, W_TOS);
    add_field(t, 6, 1, W_FLAGS);
    add_field(t, 10, small, W_IN);
    add_field(t, 14, small, W_OUT);
    add_field(t, 2, counter, W_PACKETS);
    add_field(t, 1, counter, W_BYTES);
    if (ipfix) {
        add_field(t, 152, 8, W_START_MS);
        add_field(t, 153, 8, W_END_MS);
    } else {
        add_field(t, 22, 4, W_FIRST_UPTIME);
        add_field(t, 21, 4, W_LAST_UPTIME);
    }
    if (routing) {
        add_field(t, v6 ? 62 : 15, a, W_NEXTHOP);
        add_field(t, 16, small, W_SRCAS);
        add_field(t, 17, small, W_DSTAS);
        add_field(t, v6 ? 29 : 9, 1, W_SMASK);
        add_field(t, v6 ? 30 : 13, 1, W_DMASK);
    }
}

struct flowgen_export *flowgen_export_new(const struct flowgen_export_opts *o, flowgen_emit_fn emit,
                                          void *ctx)
{
    if (o->max_packet > FLOWGEN_MAX_PACKET || o->max_packet < 512) return NULL;
    struct flowgen_export *x = calloc(1, sizeof *x);
    if (!x) return NULL;
    x->o = *o;
    x->emit = emit;
    x->ctx = ctx;
    for (unsigned e = 0; e < FLOWGEN_EXPORTERS; e++) {
        struct xstate *s = &x->ex[e];
        /* Each device booted a different while before the window. */
        uint64_t up = 3600000ull + e * 1037123ull;
        s->boot_ms = o->start_ms > up ? o->start_ms - up : 0;
        for (int v6 = 0; v6 < 2; v6++)
            build_template(&s->t[v6], o->format == FG_IPFIX, v6, flowgen_exporters[e].routing,
                           o->ipfix_wide);
    }
    return x;
}

void flowgen_export_free(struct flowgen_export *x) { free(x); }

uint64_t flowgen_export_packets(const struct flowgen_export *x) { return x->packets; }

static void put_uint(uint8_t *p, uint64_t v, unsigned len)
{
    for (unsigned i = len; i-- > 0;) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static void put_addr(uint8_t *p, const struct dip_addr *a, unsigned len)
{
    memcpy(p, len == 4 ? a->b + 12 : a->b, len);
}

static bool is_icmp(const struct dip_flow *f) { return f->proto == 1 || f->proto == 58; }

/* flowEndReason (RFC 7012 5.11.3 / IANA): 3 end of flow for TCP with FIN or
 * RST, 2 active timeout for records as long as the timeout, 1 idle timeout. */
static uint8_t end_reason(const struct flowgen_export *x, const struct dip_flow *f)
{
    if (f->proto == 6 && (f->flags & 0x05)) return 3;
    if (f->last - f->first >= x->o.active_timeout_ms) return 2;
    return 1;
}

static uint64_t field_value(const struct flowgen_export *x, const struct xstate *s,
                            const struct dip_flow *f, enum what w)
{
    switch (w) {
    case W_SPORT: return f->sport;
    case W_DPORT: return f->dport;
    case W_DPORT_NOICMP: return is_icmp(f) ? 0 : f->dport;
    case W_ICMP: return is_icmp(f) ? f->dport : 0;
    case W_PROTO: return f->proto;
    case W_TOS: return f->tos;
    case W_FLAGS: return f->flags;
    case W_PACKETS: return f->packets;
    case W_BYTES: return f->bytes;
    case W_FIRST_UPTIME: return f->first - s->boot_ms;
    case W_LAST_UPTIME: return f->last - s->boot_ms;
    case W_START_MS: return f->first;
    case W_END_MS: return f->last;
    case W_IN: return f->in;
    case W_OUT: return f->out;
    case W_SRCAS: return (f->present & DIP_F_SRCAS) ? f->srcas : 0;
    case W_DSTAS: return (f->present & DIP_F_DSTAS) ? f->dstas : 0;
    case W_SMASK: return (f->present & DIP_F_SMASK) ? f->smask : 0;
    case W_DMASK: return (f->present & DIP_F_DMASK) ? f->dmask : 0;
    case W_END_REASON: return end_reason(x, f);
    default: return 0;
    }
}

/* Returns: false when a value does not fit its field (or v5's IPv4 only). */
static bool encode_record(const struct flowgen_export *x, const struct xstate *s, const struct tmpl *t,
                          const struct dip_flow *f, uint8_t *out)
{
    for (unsigned i = 0; i < t->nfields; i++) {
        const struct tfield *fd = &t->f[i];
        static const struct dip_addr zero;
        switch (fd->what) {
        case W_SRC: put_addr(out, &f->src, fd->len); break;
        case W_DST: put_addr(out, &f->dst, fd->len); break;
        case W_NEXTHOP: put_addr(out, (f->present & DIP_F_NEXTHOP) ? &f->nexthop : &zero, fd->len); break;
        default: {
            uint64_t v = field_value(x, s, f, fd->what);
            if (fd->len < 8 && v >> (8 * fd->len)) return false;
            put_uint(out, v, fd->len);
        }
        }
        out += fd->len;
    }
    return true;
}

/* NetFlow v5 record: src dst nexthop in(2) out(2) packets(4) bytes(4)
 * first(4) last(4) sport dport pad tcp_flags proto tos src_as(2) dst_as(2)
 * src_mask dst_mask pad(2). */
static bool encode_v5(const struct xstate *s, const struct dip_flow *f, uint8_t *p)
{
    if (!dip_addr_is_v4(&f->src) || !dip_addr_is_v4(&f->dst)) return false;
    if (f->packets > UINT32_MAX || f->bytes > UINT32_MAX || f->in > 0xffff || f->out > 0xffff ||
        f->srcas > 0xffff || f->dstas > 0xffff || f->last - s->boot_ms > UINT32_MAX)
        return false;
    memset(p, 0, V5_RECORD);
    dip_put_u32(p, dip_addr_v4(&f->src));
    dip_put_u32(p + 4, dip_addr_v4(&f->dst));
    if ((f->present & DIP_F_NEXTHOP) && dip_addr_is_v4(&f->nexthop)) dip_put_u32(p + 8, dip_addr_v4(&f->nexthop));
    dip_put_u16(p + 12, (uint16_t)f->in);
    dip_put_u16(p + 14, (uint16_t)f->out);
    dip_put_u32(p + 16, (uint32_t)f->packets);
    dip_put_u32(p + 20, (uint32_t)f->bytes);
    dip_put_u32(p + 24, (uint32_t)(f->first - s->boot_ms));
    dip_put_u32(p + 28, (uint32_t)(f->last - s->boot_ms));
    dip_put_u16(p + 32, f->sport);
    dip_put_u16(p + 34, f->dport);
    p[37] = f->flags;
    p[38] = f->proto;
    p[39] = f->tos;
    dip_put_u16(p + 40, (uint16_t)f->srcas);
    dip_put_u16(p + 42, (uint16_t)f->dstas);
    p[44] = f->smask;
    p[45] = f->dmask;
    return true;
}

static size_t pad4(size_t n) { return (n + 3) & ~(size_t)3; }

static bool templates_due(const struct flowgen_export *x, const struct xstate *s)
{
    return !s->templates_sent || (x->o.refresh && s->since_templates >= x->o.refresh);
}

static size_t template_set_len(const struct xstate *s)
{
    return SET_HEADER + 2 * 4 + 4u * (s->t[0].nfields + s->t[1].nfields);
}

/* Bytes the packet would take with `extra` more bytes of family v6's records. */
static size_t packet_len(const struct flowgen_export *x, const struct xstate *s, int fam, size_t extra)
{
    if (x->o.format == FG_V5) return V5_HEADER + s->dlen[0] + extra;
    size_t n = x->o.format == FG_V9 ? V9_HEADER : IPFIX_HEADER;
    if (templates_due(x, s)) n += template_set_len(s);
    for (int v = 0; v < 2; v++) {
        size_t d = s->dlen[v] + (v == fam ? extra : 0);
        if (d) n += SET_HEADER + pad4(d);
    }
    return n;
}

static size_t write_templates(const struct flowgen_export *x, const struct xstate *s, uint8_t *p)
{
    size_t n = SET_HEADER;
    for (int v = 0; v < 2; v++) {
        const struct tmpl *t = &s->t[v];
        dip_put_u16(p + n, t->id);
        dip_put_u16(p + n + 2, t->nfields);
        n += 4;
        for (unsigned i = 0; i < t->nfields; i++) {
            dip_put_u16(p + n, t->f[i].ie);
            dip_put_u16(p + n + 2, t->f[i].len);
            n += 4;
        }
    }
    dip_put_u16(p, x->o.format == FG_V9 ? 0 : 2); /* template set ids: v9 0, IPFIX 2 */
    dip_put_u16(p + 2, (uint16_t)n);
    return n;
}

/* Builds and emits exporter e's open packet, if it holds any record. */
static int emit_packet(struct flowgen_export *x, unsigned e)
{
    struct xstate *s = &x->ex[e];
    unsigned records = s->dcount[0] + s->dcount[1];
    if (!records) return DIP_OK;
    /* Exported on the whole second after the last record ended, so that
     * collectors that use only unix_secs rebuild the boot time exactly. */
    uint64_t export_ms = (s->max_last + 999) / 1000 * 1000;
    if (export_ms < s->last_export_ms) export_ms = s->last_export_ms;
    s->last_export_ms = export_ms;
    uint32_t domain = flowgen_exporters[e].domain;
    uint8_t *p = x->pkt;
    size_t n;

    if (x->o.format == FG_V5) {
        dip_put_u16(p, 5);
        dip_put_u16(p + 2, (uint16_t)records);
        dip_put_u32(p + 4, (uint32_t)(export_ms - s->boot_ms));
        dip_put_u32(p + 8, (uint32_t)(export_ms / 1000));
        dip_put_u32(p + 12, 0);
        dip_put_u32(p + 16, s->sequence);
        p[20] = (uint8_t)(domain >> 8); /* engine type */
        p[21] = (uint8_t)domain;        /* engine id */
        dip_put_u16(p + 22, 0);         /* not sampled */
        memcpy(p + V5_HEADER, s->data[0], s->dlen[0]);
        n = V5_HEADER + s->dlen[0];
        s->sequence += records;
    } else {
        bool v9 = x->o.format == FG_V9;
        n = v9 ? V9_HEADER : IPFIX_HEADER;
        unsigned count = records;
        if (templates_due(x, s)) {
            n += write_templates(x, s, p + n);
            count += 2;
            s->templates_sent = true;
            s->since_templates = 0;
        }
        for (int v = 0; v < 2; v++) {
            if (!s->dlen[v]) continue;
            size_t set_len = SET_HEADER + pad4(s->dlen[v]);
            dip_put_u16(p + n, s->t[v].id);
            dip_put_u16(p + n + 2, (uint16_t)set_len);
            memcpy(p + n + SET_HEADER, s->data[v], s->dlen[v]);
            memset(p + n + SET_HEADER + s->dlen[v], 0, set_len - SET_HEADER - s->dlen[v]);
            n += set_len;
        }
        if (v9) {
            dip_put_u16(p, 9);
            dip_put_u16(p + 2, (uint16_t)count);
            dip_put_u32(p + 4, (uint32_t)(export_ms - s->boot_ms));
            dip_put_u32(p + 8, (uint32_t)(export_ms / 1000));
            dip_put_u32(p + 12, s->sequence++); /* RFC 3954: packets, not records */
            dip_put_u32(p + 16, domain);
        } else {
            dip_put_u16(p, 10);
            dip_put_u16(p + 2, (uint16_t)n);
            dip_put_u32(p + 4, (uint32_t)(export_ms / 1000));
            dip_put_u32(p + 8, s->sequence); /* RFC 7011 3.1: data records before this one */
            dip_put_u32(p + 12, domain);
            s->sequence += records;
        }
    }
    s->since_templates++;
    s->dlen[0] = s->dlen[1] = 0;
    s->dcount[0] = s->dcount[1] = 0;
    s->max_last = 0;
    x->packets++;
    return x->emit(x->ctx, p, n, records);
}

int flowgen_export_add(struct flowgen_export *x, const struct dip_flow *f, unsigned exporter)
{
    if (exporter >= FLOWGEN_EXPORTERS) return DIP_EINVAL;
    struct xstate *s = &x->ex[exporter];
    int fam = x->o.format == FG_V5 ? 0 : !dip_addr_is_v4(&f->src);
    size_t reclen = x->o.format == FG_V5 ? V5_RECORD : s->t[fam].reclen;
    bool full = x->o.format == FG_V5 ? s->dcount[0] >= V5_MAX_RECORDS
                                     : packet_len(x, s, fam, reclen) > x->o.max_packet;
    if (full) {
        int rc = emit_packet(x, exporter);
        if (rc != DIP_OK) return rc;
    }
    if (f->first < s->boot_ms) return DIP_ERANGE;
    uint8_t *out = s->data[fam] + s->dlen[fam];
    bool ok = x->o.format == FG_V5 ? encode_v5(s, f, out) : encode_record(x, s, &s->t[fam], f, out);
    if (!ok) return DIP_ERANGE;
    if (x->o.format != FG_IPFIX && f->last - s->boot_ms > UINT32_MAX) return DIP_ERANGE;
    s->dlen[fam] += reclen;
    s->dcount[fam]++;
    if (f->last > s->max_last) s->max_last = f->last;
    return DIP_OK;
}

int flowgen_export_flush(struct flowgen_export *x)
{
    for (unsigned e = 0; e < FLOWGEN_EXPORTERS; e++) {
        int rc = emit_packet(x, e);
        if (rc != DIP_OK) return rc;
    }
    return DIP_OK;
}
