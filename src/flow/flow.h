/* flow.h - the flow record of dipstorage (ARCHITECTURE section 4) and its
 * encodings: XML `flow` element attributes, compact binary batches (the wire
 * and WAL form), and the paper's 64-bit flow IDs.
 *
 * Layer: flow model. Depends only on src/common. */
#ifndef DIP_FLOW_H
#define DIP_FLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../common/dynbuf.h"
#include "../common/err.h"

/* Bits of dip_flow.present for the optional attributes (left out of XML when
 * unknown). The required ones (src dst sport dport proto packets bytes first
 * last id) are always present. */
enum dip_flow_opt {
    DIP_F_FLAGS = 1u << 0,
    DIP_F_TOS = 1u << 1,
    DIP_F_IN = 1u << 2,
    DIP_F_OUT = 1u << 3,
    DIP_F_SRCAS = 1u << 4,
    DIP_F_DSTAS = 1u << 5,
    DIP_F_SMASK = 1u << 6,
    DIP_F_DMASK = 1u << 7,
    DIP_F_NEXTHOP = 1u << 8,
    DIP_F_EXPORTER = 1u << 9,
    DIP_F_DOMAIN = 1u << 10,
    DIP_F_SAMPLING = 1u << 11,
};
#define DIP_F_ALL_OPTIONAL 0x0fffu

/* An IP address, always 16 bytes: IPv4 is stored IPv4-mapped (::ffff:a.b.c.d,
 * RFC 4291 2.5.5.2) so one comparison orders both families. */
struct dip_addr {
    uint8_t b[16];
};

/* One flow record. Plain data: copy it with `=`. */
struct dip_flow {
    struct dip_addr src, dst, nexthop, exporter;
    uint64_t packets, bytes;
    uint64_t first, last; /* ms since the Unix epoch, UTC */
    uint64_t id;          /* random flow ID (dip_flow_id_random) */
    uint32_t in, out, srcas, dstas, domain, sampling;
    uint16_t sport, dport; /* ICMP: dport = type * 256 + code */
    uint8_t proto, flags, tos, smask, dmask;
    uint16_t present;      /* enum dip_flow_opt bits */
};

/* The four tank keys (ARCHITECTURE 4). */
enum dip_tank_key { DIP_KEY_SRC = 0, DIP_KEY_DST = 1, DIP_KEY_SPORT = 2, DIP_KEY_DPORT = 3 };
#define DIP_TANK_KEYS 4

/* Returns: "src", "dst", "sport" or "dport". */
const char *dip_tank_key_name(enum dip_tank_key key);
/* Parses a tank key name. Returns DIP_OK or DIP_EINVAL. */
int dip_tank_key_parse(const char *name, enum dip_tank_key *out);

/* ---- addresses ---- */

static inline bool dip_addr_is_v4(const struct dip_addr *a)
{
    static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    return memcmp(a->b, mapped, 12) == 0; /* two loads and compares: it sits in every sort and merge */
}
void dip_addr_from_v4(struct dip_addr *a, uint32_t host_order_v4);
static inline uint32_t dip_addr_v4(const struct dip_addr *a)
{
    return ((uint32_t)a->b[12] << 24) | ((uint32_t)a->b[13] << 16) | ((uint32_t)a->b[14] << 8) | a->b[15];
}
/* Orders IPv4 before IPv6 (document order of a tank), then by value. */
int dip_addr_cmp(const struct dip_addr *a, const struct dip_addr *b);
/* Parses dotted-quad IPv4 or any textual IPv6. Returns DIP_OK or DIP_EINVAL. */
int dip_addr_parse(const char *text, size_t len, struct dip_addr *out);
/* Writes the dotted quad or RFC 5952 text, NUL-terminated, into out (>= 46 bytes).
 * Returns: its length. */
size_t dip_addr_format(const struct dip_addr *a, char *out);
#define DIP_ADDR_TEXT_MAX 46

/* ---- the field table (drives XML, the analyser and generic code) ---- */

/* DIP_FT_ID is a u64 written as 16 lowercase hex digits (the flow ID). */
enum dip_field_type { DIP_FT_ADDR, DIP_FT_U8, DIP_FT_U16, DIP_FT_U32, DIP_FT_U64, DIP_FT_ID };

struct dip_field {
    const char *name;        /* XML attribute name */
    enum dip_field_type type;
    size_t offset;           /* offset in struct dip_flow */
    uint16_t opt_bit;        /* 0 for required fields */
};

/* Returns: the table of all attributes in their canonical XML order; *n set. */
const struct dip_field *dip_flow_fields(size_t *n);
/* Returns: the field named name (len bytes), or NULL. */
const struct dip_field *dip_flow_field_find(const char *name, size_t len);
/* Returns: the numeric value of a non-address field (0 when absent). */
uint64_t dip_flow_get_u64(const struct dip_flow *f, const struct dip_field *fd);

/* ---- XML ---- */

/* Appends `<flow a="..." .../>` (no newline) to out. Returns DIP_OK or a dynbuf error. */
int dip_flow_xml_append(const struct dip_flow *f, struct dip_dynbuf *out);
/* Writes only the attributes (` src="..." dst="..."`) into out, which must hold
 * DIP_FLOW_XML_ATTRS_MAX bytes. Returns: bytes written (no NUL). */
size_t dip_flow_xml_attrs(const struct dip_flow *f, char *out);
#define DIP_FLOW_XML_ATTRS_MAX 640
/* Appends the element as a sealed segment stores it: like
 * dip_flow_xml_append, but `id` is left out when it is the record's
 * dip_flow_id_random under dip_flow_id_default_key (readers restore it). */
int dip_flow_xml_append_stored(const struct dip_flow *f, struct dip_dynbuf *out);

/* Reads a flow from attribute name/value pairs as libxml2 gives them
 * (names[i], values[i], n pairs). Unknown attributes are an error, missing
 * required ones too. Returns DIP_OK or DIP_EINVAL with the attribute named in eb. */
int dip_flow_from_attrs(struct dip_flow *f, const char *const *names, const char *const *values,
                        size_t n, struct dip_errbuf *eb);

/* Forward declaration so callers need not include libxml2. */
struct _xmlNode;
/* Adds the attributes of f to an existing libxml2 element. Returns DIP_OK or DIP_ENOMEM. */
int dip_flow_to_xml_node(const struct dip_flow *f, struct _xmlNode *elem);
/* Reads a `flow` element. Returns DIP_OK or DIP_EINVAL (message names the attribute). */
int dip_flow_from_xml_node(struct dip_flow *f, const struct _xmlNode *elem, struct dip_errbuf *eb);
/* Gives a stored `flow` element that lacks `id` the one it left out (see
 * dip_flow_xml_append_stored). Returns DIP_OK (also when it has one),
 * DIP_EINVAL for a malformed element, or DIP_ENOMEM. */
int dip_flow_restore_id(struct _xmlNode *elem, struct dip_errbuf *eb);

/* ---- binary batches: the form records take between nodes and in the WAL ----
 *
 * Layout (all integers big-endian):
 *   "DIPB" | version u8 (=1) | reserved u8 | reserved u16 | count u32 |
 *   count records | crc32 (zlib) of everything before it, u32
 * Each record: present u16 | addr-family bits u8 (bit i set: address i is
 *   IPv6, order src dst nexthop exporter) | src | dst (4 or 16 bytes) |
 *   sport u16 | dport u16 | proto u8 | packets u64 | bytes u64 | first u64 |
 *   last u64 | id u64 | then each present optional field in table order
 *   (flags u8, tos u8, in u32, out u32, srcas u32, dstas u32, smask u8,
 *   dmask u8, nexthop addr, exporter addr, domain u32, sampling u32). */
#define DIP_BATCH_HEADER 12
#define DIP_BATCH_TRAILER 4
#define DIP_BATCH_VERSION 1
#define DIP_BATCH_MAX_RECORD 128 /* upper bound of one encoded record */

/* Encodes n flows as one batch appended to out. Returns DIP_OK or a dynbuf error. */
int dip_batch_encode(const struct dip_flow *flows, size_t n, struct dip_dynbuf *out);
/* The same batch built one record at a time, for records that come one by
 * one: begin appends the header and sets *start (the batch's offset in out),
 * add appends a record, end writes the count n and the CRC. Each returns
 * DIP_OK or a dynbuf error (end: DIP_ERANGE for a bad start or n). */
int dip_batch_begin(struct dip_dynbuf *out, size_t *start);
int dip_batch_add(struct dip_dynbuf *out, const struct dip_flow *f);
int dip_batch_end(struct dip_dynbuf *out, size_t start, size_t n);
/* Decodes one whole batch (exactly len bytes): checks the CRC and every length.
 * Returns DIP_OK with *flows newly allocated (free()) and *n set, or
 * DIP_ECORRUPT / DIP_EINVAL with the byte offset in eb; nothing is returned
 * on failure. max_records bounds the allocation. */
int dip_batch_decode(const uint8_t *data, size_t len, size_t max_records, struct dip_flow **flows,
                     size_t *n, struct dip_errbuf *eb);
/* Decodes the batch at the start of data (a stream of concatenated batches).
 * Returns DIP_OK with *consumed = its length, DIP_EAGAIN when data ends before
 * the batch does (feed more), or DIP_ECORRUPT. Same ownership as above. */
int dip_batch_decode_prefix(const uint8_t *data, size_t len, size_t max_records, struct dip_flow **flows,
                            size_t *n, size_t *consumed, struct dip_errbuf *eb);
/* Decodes exactly len bytes of concatenated whole batches (none when len is
 * 0), handing each batch's records to fn (its non-zero return stops with that
 * code); at most max_records in all. Returns DIP_OK or DIP_ECORRUPT with the
 * byte offset in eb. */
int dip_batch_decode_stream(const uint8_t *data, size_t len, size_t max_records,
                            int (*fn)(void *ctx, const struct dip_flow *flows, size_t n), void *ctx,
                            struct dip_errbuf *eb);

/* ---- streaming input (flow_read.c) ---- */

/* Receives records in batches; a non-zero return stops the stream with that code. */
typedef int (*dip_flow_batch_fn)(void *ctx, const struct dip_flow *flows, size_t n);
/* Reads an XML document from fd and delivers every `flow` element at any
 * depth, `batch` at a time. name is used in messages. On a malformed document
 * or record, returns DIP_ESYNTAX / DIP_EINVAL with "name:line:column: why" and
 * does not deliver the batch in progress. *delivered counts records delivered.
 * Parsed as dip_xml_stream_fd parses (common/xmlsafe.h): a DOCTYPE is refused,
 * no entity is ever expanded, libxml2's size limits hold. A record whose
 * `last` is earlier than its `first` is refused (DIP_EINVAL, both named).
 * Batches are cut every `batch` records, so the same document and batch give
 * the same batches every time (a resumed ingest relies on it). */
int dip_flow_read_xml_fd(int fd, const char *name, size_t batch, dip_flow_batch_fn fn, void *ctx,
                         uint64_t *delivered, struct dip_errbuf *eb);
/* Reads concatenated binary batches from fd, delivering each whole batch. */
int dip_flow_read_batches_fd(int fd, const char *name, dip_flow_batch_fn fn, void *ctx, uint64_t *delivered,
                             struct dip_errbuf *eb);
/* Reads either from fd, from where it is (a pipe too): binary batches when
 * the first bytes are "DIPB", else an XML document, `batch` records at a
 * time as dip_flow_read_xml_fd does. Returns as the reader it chose. */
int dip_flow_read_fd(int fd, const char *name, size_t batch, dip_flow_batch_fn fn, void *ctx,
                     uint64_t *delivered, struct dip_errbuf *eb);

/* ---- flow IDs (paper section III) ---- */

/* SipHash-2-4 of len bytes under key, the 64-bit output as a number (the
 * little-endian reading of its 8 output bytes). */
uint64_t dip_siphash24(const uint8_t key[16], const uint8_t *in, size_t len);
/* Random strategy: SipHash-2-4 keyed with key[16] over the
 * record's identity (src, dst, sport, dport, proto, first, exporter, domain):
 * uniform over 2^64, equal for the same record in every tank. */
uint64_t dip_flow_id_random(const struct dip_flow *f, const uint8_t key[16]);
/* The default cluster key used when none is configured. */
extern const uint8_t dip_flow_id_default_key[16];

/* Structured strategy: order-preserving on the tank key (a range of keys is a
 * range of IDs). Addresses: IPv4 in [0, 2^63) as addr << 31 | low bits of the
 * random ID, IPv6 in [2^63, 2^64) by the address's top 63 bits; ports:
 * port << 48 | low 48 bits of the random ID. */
uint64_t dip_flow_id_structured(const struct dip_flow *f, enum dip_tank_key key);

/* ---- the tank key of a record ---- */

/* Compares the tank-key values of two records in tank document order
 * (IPv4 before IPv6, then numerically; ports numerically). Returns <0, 0, >0. */
int dip_flow_key_cmp(const struct dip_flow *a, const struct dip_flow *b, enum dip_tank_key key);

/* The document order of a tank (ARCHITECTURE 4): by the tank key, then among
 * equal keys by the rest of the record, the other address and the ports
 * first (src tank: dst, dport, sport; dst tank: src, sport, dport; sport
 * tank: src, dst, dport; dport tank: dst, src, sport), then proto, first,
 * last, packets, bytes, the optional fields present, the flow ID. Records
 * that compare equal have the same XML text. So the order of a tank's
 * records is the same however they were segmented, merged or split among
 * leaves, and neighbours share text (segments compress ~10% better than in
 * arrival order). Returns <0, 0, >0. */
int dip_flow_order_cmp(const struct dip_flow *a, const struct dip_flow *b, enum dip_tank_key key);

/* A 64-bit summary of the tie-break fields (the part of the order after the
 * key): a < b among equal keys implies hint(a) <= hint(b), so sorts compare
 * hints first and whole records only on equal hints. */
uint64_t dip_flow_order_hint(const struct dip_flow *f, enum dip_tank_key key);

#endif
