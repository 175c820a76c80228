/* collect_int.h - private structures of the collector shared by its files:
 * the exporter-domain table, the template engine (template.c) used by both
 * NetFlow v9 and IPFIX, the pending-set buffer and per-message context.
 * Not part of the public face (collect.h). */
#ifndef DIP_COLLECT_INT_H
#define DIP_COLLECT_INT_H

#include <stdarg.h>

#include "../common/cursor.h"
#include "collect.h"

/* What a template field decodes into. Fields up to T_LAST_DIRECT are written
 * straight into the record; the others are kept as raw values in struct rec. */
enum target {
    T_SKIP = 0,
    T_BYTES, T_PACKETS, T_PROTO, T_TOS, T_FLAGS, T_SPORT, T_DPORT,
    T_SRC4, T_DST4, T_SRC6, T_DST6, T_SMASK, T_DMASK, T_IN, T_OUT,
    T_NH4, T_NH6, T_BGPNH4, T_BGPNH6, T_SRCAS, T_DSTAS,
    T_LAST_DIRECT = T_DSTAS,
    T_BYTES_TOTAL, T_PACKETS_TOTAL,
    T_UP_FIRST, T_UP_LAST,           /* sysUpTime-relative (v9) / flowStart|EndSysUpTime (IPFIX) */
    T_START_S, T_END_S, T_START_MS, T_END_MS,
    T_START_US, T_END_US, T_START_NS, T_END_NS, /* NTP timestamps (RFC 7011 6.1.9-10) */
    T_START_DUS, T_END_DUS,          /* flowStart|EndDeltaMicroseconds */
    T_DUR_MS, T_DUR_US,
    T_SYSINIT,                       /* systemInitTimeMilliseconds */
    T_ICMP_TC, T_ICMP_TYPE, T_ICMP_CODE,
    T_SAMP_INTERVAL, T_SAMPLER_ID, T_SAMPLER_RAND, T_SELECTOR_ID,
    T_SAMP_PKT_INTERVAL, T_SAMP_PKT_SPACE, T_SAMP_SIZE, T_SAMP_POP,
    T_FRAME_L2, T_FRAME_IP, T_FRAME_SIZE, /* packet samples: dataLinkFrameSection, ipHeaderPacketSection */
    T_COUNT
};

#define VAR_LEN 0xffffu /* IPFIX variable-length field (RFC 7011 7) */

/* How a fixed-template field is stored, chosen when the template is
 * compiled so that the data loop dispatches once per field. */
enum store_kind {
    SK_SLOW = 0, /* collect_rec_field() */
    SK_ADDR4, SK_ADDR16,             /* a struct dip_addr in the record */
    SK_U8_1, SK_U16_2, SK_U32_2, SK_U32_4, SK_U64_4, SK_U64_8, /* SK_<width>_<wire bytes> */
    SK_RAW,                          /* rec.v[target], any unsigned length */
    SK_COUNT
};

struct field_op {
    uint16_t len;      /* VAR_LEN: variable */
    uint16_t offset;   /* offset in the record (fixed-length templates) */
    uint8_t target;    /* enum target */
    uint8_t kind;      /* enum store_kind */
    uint8_t store_off; /* offset in struct dip_flow for the SK_ADDR / SK_U kinds */
    uint16_t present;  /* dip_flow.present bits the field sets */
};

/* A compiled template. One allocation: the struct, ops, mapped, def. */
struct tmpl {
    uint16_t id;
    uint8_t options;   /* an options template: records configure, not flows */
    uint8_t fixed;     /* no variable-length field: every record is min_len bytes */
    uint8_t no_expiry; /* learnt over a stream (TCP, file): kept until withdrawn (RFC 7011 8.4) */
    uint16_t nops;     /* every field, for variable-length walks */
    uint16_t nmapped;  /* fields with a target, with offsets (fixed templates) */
    uint16_t group[SK_COUNT + 1]; /* mapped[] sorted by kind: kind k is [group[k], group[k+1]) */
    uint64_t fast_have;     /* target bits and present bits of every non-SK_SLOW mapped field */
    uint16_t fast_present;
    uint32_t min_len;  /* record length (fixed) or its lower bound */
    uint64_t refreshed_ms;
    uint32_t def_len;  /* raw definition, to tell a refresh from a change */
    struct field_op *ops;
    struct field_op *mapped;
    uint8_t *def;
};

struct sampler {
    uint64_t id;
    uint32_t rate;
};
#define MAX_SAMPLERS 64

/* One (exporter address, version, domain): templates, sequence, sampling, counters. */
struct domain {
    struct dip_collect_stats st;
    struct tmpl **tmpl;    /* open addressing by id; NULL = empty */
    uint32_t tmpl_cap;     /* power of two */
    uint32_t tmpl_count;
    int seq_valid;
    uint32_t seq_next;
    uint32_t default_rate; /* sampling interval for records naming no sampler; 0 none */
    uint32_t nsamplers;
    struct sampler samplers[MAX_SAMPLERS];
    int has_sysinit;
    uint64_t sysinit_ms;
};

/* A data set that came before its template. */
struct pending {
    struct pending *next;
    struct domain *dom;
    uint64_t arrival_ms;
    uint64_t export_ms;
    uint32_t sysuptime;
    uint16_t tid;
    uint32_t len;
    uint8_t data[];
};

struct dip_collect {
    struct dip_collect_limits lim;
    uint8_t id_key[16];
    struct domain **dom_hash; /* open addressing, never deleted */
    size_t dom_cap;
    struct domain **dom_list; /* order of first appearance */
    size_t dom_count;
    struct pending *pend_head, *pend_tail;
    size_t pend_count, pend_bytes;
    struct dip_flow *out;     /* records of the current call */
    size_t out_n, out_cap;
    int tmpl_added;           /* a template was defined during this call */
    struct dip_collect_totals totals;
};

/* The message being decoded. */
struct msg {
    struct domain *dom;
    uint8_t version;
    uint64_t export_ms;  /* header export time, ms since the epoch */
    uint32_t sysuptime;  /* v9 header sysUpTime, ms */
    uint64_t now_ms;
    uint32_t records;    /* data records decoded (flows and options) */
    uint32_t tmpl_records;
    int pending;         /* a data set was buffered */
    int stream;          /* from a TCP session or a file, not a datagram */
};

/* exporter.c */
struct domain *collect_domain_get(struct dip_collect *c, const struct dip_addr *addr, uint8_t version,
                                  uint32_t domain, uint64_t now_ms);
int collect_malformed(struct dip_collect *c, struct domain *d, size_t offset, struct dip_errbuf *eb,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void collect_seq_update(struct domain *d, uint32_t seq, uint32_t advance, int known);
int collect_out_reserve(struct dip_collect *c, size_t n);
int collect_finish_call(struct dip_collect *c, struct msg *m, int rc, const struct dip_collect_sink *sink);

/* template.c: the shared engine */
struct tmpl *collect_tmpl_find(struct dip_collect *c, struct domain *d, uint16_t id, uint64_t now_ms);
void collect_tmpl_clear(struct domain *d, int options_too, int flows_too);
/* Parses a template set (v9 flowset 0/1 or IPFIX set 2/3). */
int collect_template_set(struct dip_collect *c, struct msg *m, struct dip_cursor *set, uint16_t set_id,
                         struct dip_errbuf *eb);
/* Decodes a data set with template t (records appended to c->out). */
int collect_data_set(struct dip_collect *c, struct msg *m, const struct tmpl *t, struct dip_cursor *set,
                     struct dip_errbuf *eb);
/* Decodes one data set: with its template, or buffered until it comes. */
int collect_data_or_pend(struct dip_collect *c, struct msg *m, uint16_t set_id, struct dip_cursor *set,
                         struct dip_errbuf *eb);

/* pending.c */
int collect_pending_add(struct dip_collect *c, const struct msg *m, uint16_t tid, const uint8_t *data,
                        size_t len);
void collect_pending_drain(struct dip_collect *c, uint64_t now_ms);
void collect_pending_expire(struct dip_collect *c, uint64_t now_ms);
void collect_pending_drop_domain(struct dip_collect *c, struct domain *d);

/* record.c: turning decoded fields into a struct dip_flow. Everything in a
 * struct rec belongs to one record: collect_rec_begin() resets it (and the
 * output slot) before each record, so no byte of an earlier record, or of
 * whatever the memory held, reaches the next one. It zeroes every field
 * before v[]; v[t] is read only where have has bit t, so clearing have
 * resets v[]. New per-record fields go before v[]. */
struct rec {
    struct dip_flow *f;     /* the output slot being filled */
    struct dip_addr bgp_nh; /* bgpNextHop (IE 18/63): stands in for an absent ipNextHop */
    const uint8_t *frame;   /* a sampled packet's headers (T_FRAME_L2 / T_FRAME_IP) */
    uint16_t frame_len;
    uint64_t have;          /* bit per target seen */
    uint64_t v[T_COUNT];    /* raw values of targets past T_LAST_DIRECT: valid where have says; last */
};
void collect_rec_begin(struct rec *r, struct dip_flow *f);
void collect_rec_finish(const struct dip_collect *c, const struct msg *m, struct rec *r);
void collect_rec_apply_options(struct msg *m, const struct rec *r);
uint64_t collect_uptime_ms(uint64_t export_ms, uint32_t sysuptime, uint32_t up);
uint8_t collect_target_of(uint16_t ie, uint16_t len, int v9_scope);
void collect_op_compile(struct field_op *op);

/* ---- storing one decoded field (inline: the hot loop of every data set) ---- */

#include <string.h>

static inline uint64_t be_uint(const uint8_t *p, uint16_t len)
{
    switch (len) {
    case 1: return p[0];
    case 2: return dip_get_u16(p);
    case 4: return dip_get_u32(p);
    case 8: return dip_get_u64(p);
    default: {
        uint64_t x = 0;
        for (uint16_t i = 0; i < len; i++) x = (x << 8) | p[i];
        return x;
    }
    }
}

static inline int zero16(const uint8_t *p)
{
    uint64_t x, y;
    memcpy(&x, p, 8);
    memcpy(&y, p + 8, 8);
    return !(x | y);
}

/* Templates that carry both IPv4 and IPv6 addresses (Cisco's mixed ones)
 * fill the family a flow does not use with zeros: a zero address never
 * replaces one already set, whatever the field order. */
static inline void set_addr4(struct dip_addr *a, uint32_t v4)
{
    if (v4 || zero16(a->b)) dip_addr_from_v4(a, v4);
}
static inline void set_addr16(struct dip_addr *a, const uint8_t *p)
{
    if (!zero16(p) || zero16(a->b)) memcpy(a->b, p, 16);
}

/* Stores one field. The template compiler guarantees len fits the target. */
static inline void collect_rec_field(struct rec *r, uint8_t target, const uint8_t *p, uint16_t len)
{
    struct dip_flow *f = r->f;
    r->have |= 1ull << target;
    switch (target) {
    case T_BYTES: f->bytes = be_uint(p, len); break;
    case T_PACKETS: f->packets = be_uint(p, len); break;
    case T_PROTO: f->proto = (uint8_t)be_uint(p, len); break;
    case T_TOS: f->tos = (uint8_t)be_uint(p, len); f->present |= DIP_F_TOS; break;
    case T_FLAGS: f->flags = (uint8_t)be_uint(p, len); f->present |= DIP_F_FLAGS; break;
    case T_SPORT: f->sport = (uint16_t)be_uint(p, len); break;
    case T_DPORT: f->dport = (uint16_t)be_uint(p, len); break;
    case T_SRC4: set_addr4(&f->src, dip_get_u32(p)); break;
    case T_DST4: set_addr4(&f->dst, dip_get_u32(p)); break;
    case T_SRC6: set_addr16(&f->src, p); break;
    case T_DST6: set_addr16(&f->dst, p); break;
    case T_SMASK: f->smask = (uint8_t)be_uint(p, len); f->present |= DIP_F_SMASK; break;
    case T_DMASK: f->dmask = (uint8_t)be_uint(p, len); f->present |= DIP_F_DMASK; break;
    case T_IN: f->in = (uint32_t)be_uint(p, len); f->present |= DIP_F_IN; break;
    case T_OUT: f->out = (uint32_t)be_uint(p, len); f->present |= DIP_F_OUT; break;
    case T_NH4: set_addr4(&f->nexthop, dip_get_u32(p)); f->present |= DIP_F_NEXTHOP; break;
    case T_NH6: set_addr16(&f->nexthop, p); f->present |= DIP_F_NEXTHOP; break;
    case T_SRCAS: f->srcas = (uint32_t)be_uint(p, len); f->present |= DIP_F_SRCAS; break;
    case T_DSTAS: f->dstas = (uint32_t)be_uint(p, len); f->present |= DIP_F_DSTAS; break;
    case T_BGPNH4: set_addr4(&r->bgp_nh, dip_get_u32(p)); break; /* used when no ipNextHop */
    case T_BGPNH6: set_addr16(&r->bgp_nh, p); break;
    case T_FRAME_L2: case T_FRAME_IP: r->frame = p; r->frame_len = len; break;
    default: r->v[target] = be_uint(p, len); break;
    }
}

#endif
