/* flow_xml.c - a flow record as the attributes of a `flow` element
 * (ARCHITECTURE 4): fast text writing for segments and exports, reading from
 * attribute pairs (SAX, readers) and from libxml2 nodes. */
#include "flow.h"

#include <libxml/tree.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* ---- writing ----
 * A record's XML is written for every record of every result, and at the
 * access point that is most of the CPU of a large answer. The writer is
 * straight-line code in the field table's order (test_flow checks the two
 * agree): a loop over the table with a switch per field and one number
 * formatter for every width cost 150 ns a record, this ~70 (the 51,152
 * records of a real answer formatted 30 times, best run). Addresses are
 * dip_addr_format's (fast for dotted quads too); its NUL terminators are
 * overwritten by what follows, within the DIP_FLOW_XML_ATTRS_MAX bytes
 * callers provide. */

static const char digit_pairs[201] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
                                     "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
                                     "8081828384858687888990919293949596979899";

/* The number of decimal digits of v (1 for 0): log10 from the bit length,
 * corrected by one comparison. */
static inline unsigned decimal_digits(uint64_t v)
{
    static const uint64_t pow10[20] = { 1ull, 10ull, 100ull, 1000ull, 10000ull, 100000ull, 1000000ull, 10000000ull,
                                        100000000ull, 1000000000ull, 10000000000ull, 100000000000ull,
                                        1000000000000ull, 10000000000000ull, 100000000000000ull,
                                        1000000000000000ull, 10000000000000000ull, 100000000000000000ull,
                                        1000000000000000000ull, 10000000000000000000ull };
    uint64_t w = v | 1;
    unsigned t = ((unsigned)(64 - __builtin_clzll(w)) * 1233) >> 12;
    return t + 1 - (w < pow10[t]);
}

/* Writes the digits of v < 10^8 ending at end, two at a time from the back. */
static inline void digits_before(char *end, uint32_t v)
{
    while (v >= 100) {
        end -= 2;
        memcpy(end, digit_pairs + 2 * (v % 100), 2);
        v /= 100;
    }
    if (v >= 10) memcpy(end - 2, digit_pairs + 2 * v, 2);
    else end[-1] = (char)('0' + v);
}

/* Writes exactly 8 digits of v < 10^8 (leading zeros kept) at p: four
 * independent pairs. */
static inline void eight_digits(char *p, uint32_t v)
{
    uint32_t hi = v / 10000, lo = v % 10000;
    memcpy(p, digit_pairs + 2 * (hi / 100), 2);
    memcpy(p + 2, digit_pairs + 2 * (hi % 100), 2);
    memcpy(p + 4, digit_pairs + 2 * (lo / 100), 2);
    memcpy(p + 6, digit_pairs + 2 * (lo % 100), 2);
}

/* Writes v in decimal at p. Returns: the end. Large numbers (timestamps
 * take 13 digits) go eight digits at a time in 32-bit arithmetic. */
static inline char *put_u64(char *p, uint64_t v)
{
    unsigned n = decimal_digits(v);
    char *end = p + n;
    if (v < 100000000) {
        digits_before(end, (uint32_t)v);
        return end;
    }
    eight_digits(end - 8, (uint32_t)(v % 100000000));
    v /= 100000000;
    if (v >= 100000000) {
        eight_digits(end - 16, (uint32_t)(v % 100000000));
        v /= 100000000;
    }
    digits_before(p + decimal_digits(v), (uint32_t)v);
    return end;
}

static inline char *put_addr(char *p, const struct dip_addr *a) { return p + dip_addr_format(a, p); }

/* Each byte's two lowercase hex digits. */
static char hex_pairs[256][2];
static pthread_once_t hex_once = PTHREAD_ONCE_INIT;

static void make_hex_pairs(void)
{
    static const char hex[] = "0123456789abcdef";
    for (unsigned v = 0; v < 256; v++) {
        hex_pairs[v][0] = hex[v >> 4];
        hex_pairs[v][1] = hex[v & 15];
    }
}

/* Copies a string literal (a constant-size copy: a few stores). */
#define PUT_LITERAL(p, lit) (memcpy((p), (lit), sizeof(lit) - 1), (p) + sizeof(lit) - 1)

static size_t xml_attrs(const struct dip_flow *f, char *out, bool with_id)
{
    pthread_once(&hex_once, make_hex_pairs);
    char *p = out;
    unsigned pr = f->present;
    p = PUT_LITERAL(p, " src=\"");
    p = put_addr(p, &f->src);
    p = PUT_LITERAL(p, "\" dst=\"");
    p = put_addr(p, &f->dst);
    p = PUT_LITERAL(p, "\" sport=\"");
    p = put_u64(p, f->sport);
    p = PUT_LITERAL(p, "\" dport=\"");
    p = put_u64(p, f->dport);
    p = PUT_LITERAL(p, "\" proto=\"");
    p = put_u64(p, f->proto);
    p = PUT_LITERAL(p, "\" packets=\"");
    p = put_u64(p, f->packets);
    p = PUT_LITERAL(p, "\" bytes=\"");
    p = put_u64(p, f->bytes);
    p = PUT_LITERAL(p, "\" first=\"");
    p = put_u64(p, f->first);
    p = PUT_LITERAL(p, "\" last=\"");
    p = put_u64(p, f->last);
    if (pr & DIP_F_FLAGS) p = put_u64(PUT_LITERAL(p, "\" flags=\""), f->flags);
    if (pr & DIP_F_TOS) p = put_u64(PUT_LITERAL(p, "\" tos=\""), f->tos);
    if (pr & DIP_F_IN) p = put_u64(PUT_LITERAL(p, "\" in=\""), f->in);
    if (pr & DIP_F_OUT) p = put_u64(PUT_LITERAL(p, "\" out=\""), f->out);
    if (pr & DIP_F_SRCAS) p = put_u64(PUT_LITERAL(p, "\" srcas=\""), f->srcas);
    if (pr & DIP_F_DSTAS) p = put_u64(PUT_LITERAL(p, "\" dstas=\""), f->dstas);
    if (pr & DIP_F_SMASK) p = put_u64(PUT_LITERAL(p, "\" smask=\""), f->smask);
    if (pr & DIP_F_DMASK) p = put_u64(PUT_LITERAL(p, "\" dmask=\""), f->dmask);
    if (pr & DIP_F_NEXTHOP) p = put_addr(PUT_LITERAL(p, "\" nexthop=\""), &f->nexthop);
    if (pr & DIP_F_EXPORTER) p = put_addr(PUT_LITERAL(p, "\" exporter=\""), &f->exporter);
    if (pr & DIP_F_DOMAIN) p = put_u64(PUT_LITERAL(p, "\" domain=\""), f->domain);
    if (pr & DIP_F_SAMPLING) p = put_u64(PUT_LITERAL(p, "\" sampling=\""), f->sampling);
    if (with_id) {
        /* the flow ID: 16 lowercase hex digits, a byte's two at a time */
        p = PUT_LITERAL(p, "\" id=\"");
        for (int s = 56; s >= 0; s -= 8, p += 2) memcpy(p, hex_pairs[(f->id >> s) & 0xff], 2);
    }
    *p++ = '"';
    return (size_t)(p - out);
}

size_t dip_flow_xml_attrs(const struct dip_flow *f, char *out) { return xml_attrs(f, out, true); }

static int xml_append(const struct dip_flow *f, struct dip_dynbuf *out, bool with_id)
{
    int rc = dip_dynbuf_reserve(out, DIP_FLOW_XML_ATTRS_MAX + 16);
    if (rc) return rc;
    char *p = (char *)out->data + out->len;
    memcpy(p, "<flow", 5);
    size_t n = 5 + xml_attrs(f, p + 5, with_id);
    memcpy(p + n, "/>", 2);
    n += 2;
    out->len += n;
    out->data[out->len] = 0;
    return DIP_OK;
}

int dip_flow_xml_append(const struct dip_flow *f, struct dip_dynbuf *out) { return xml_append(f, out, true); }

int dip_flow_xml_append_stored(const struct dip_flow *f, struct dip_dynbuf *out)
{
    return xml_append(f, out, f->id != dip_flow_id_random(f, dip_flow_id_default_key));
}

/* Parses a decimal unsigned integer that must fit max; no sign, no spaces. */
static bool parse_uint(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (!*s) return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return false;
        unsigned d = (unsigned)(*s - '0');
        if (v > (max - d) / 10) return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

static bool parse_hex64(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    size_t n = 0;
    for (; *s; s++, n++) {
        int d;
        if (*s >= '0' && *s <= '9') d = *s - '0';
        else if (*s >= 'a' && *s <= 'f') d = *s - 'a' + 10;
        else return false;
        v = (v << 4) | (uint64_t)d;
    }
    if (n != 16) return false;
    *out = v;
    return true;
}

static int set_field(struct dip_flow *f, const struct dip_field *fd, const char *value, struct dip_errbuf *eb)
{
    uint8_t *p = (uint8_t *)f + fd->offset;
    uint64_t v;
    bool ok = true;
    switch (fd->type) {
    case DIP_FT_ADDR:
        ok = dip_addr_parse(value, strlen(value), (struct dip_addr *)p) == DIP_OK;
        break;
    case DIP_FT_U8:
        if ((ok = parse_uint(value, UINT8_MAX, &v))) *p = (uint8_t)v;
        break;
    case DIP_FT_U16:
        if ((ok = parse_uint(value, UINT16_MAX, &v))) { uint16_t x = (uint16_t)v; memcpy(p, &x, 2); }
        break;
    case DIP_FT_U32:
        if ((ok = parse_uint(value, UINT32_MAX, &v))) { uint32_t x = (uint32_t)v; memcpy(p, &x, 4); }
        break;
    case DIP_FT_U64:
        if ((ok = parse_uint(value, UINT64_MAX, &v))) memcpy(p, &v, 8);
        break;
    case DIP_FT_ID:
        if ((ok = parse_hex64(value, &v))) memcpy(p, &v, 8);
        break;
    }
    if (!ok) return dip_err_set(eb, DIP_EINVAL, "attribute %s=\"%.64s\" is not a valid %s", fd->name, value,
                                fd->type == DIP_FT_ADDR ? "IP address" : fd->type == DIP_FT_ID ? "16-digit hex flow ID" : "number in range");
    f->present |= fd->opt_bit;
    return DIP_OK;
}

int dip_flow_from_attrs(struct dip_flow *f, const char *const *names, const char *const *values, size_t n,
                        struct dip_errbuf *eb)
{
    size_t nfields;
    const struct dip_field *table = dip_flow_fields(&nfields);
    uint32_t seen = 0;
    memset(f, 0, sizeof *f);
    for (size_t i = 0; i < n; i++) {
        const struct dip_field *fd = dip_flow_field_find(names[i], strlen(names[i]));
        if (!fd) return dip_err_set(eb, DIP_EINVAL, "unknown flow attribute '%.64s'", names[i]);
        uint32_t bit = 1u << (fd - table);
        if (seen & bit) return dip_err_set(eb, DIP_EINVAL, "attribute %s given twice", fd->name);
        seen |= bit;
        int rc = set_field(f, fd, values[i], eb);
        if (rc) return rc;
    }
    for (size_t i = 0; i < nfields; i++)
        if (!table[i].opt_bit && !(seen & (1u << i)))
            return dip_err_set(eb, DIP_EINVAL, "flow lacks required attribute %s", table[i].name);
    return DIP_OK;
}

int dip_flow_to_xml_node(const struct dip_flow *f, struct _xmlNode *elem)
{
    size_t nfields;
    const struct dip_field *fd = dip_flow_fields(&nfields);
    for (size_t i = 0; i < nfields; i++, fd++) {
        if (fd->opt_bit && !(f->present & fd->opt_bit)) continue;
        char value[48];
        if (fd->type == DIP_FT_ADDR)
            dip_addr_format((const struct dip_addr *)((const uint8_t *)f + fd->offset), value);
        else if (fd->type == DIP_FT_ID)
            snprintf(value, sizeof value, "%016llx", (unsigned long long)f->id);
        else
            snprintf(value, sizeof value, "%llu", (unsigned long long)dip_flow_get_u64(f, fd));
        if (!xmlNewProp(elem, BAD_CAST fd->name, BAD_CAST value)) return DIP_ENOMEM;
    }
    return DIP_OK;
}

/* Reads elem; with implicit_id, a missing `id` is computed (*had_id says
 * whether it was there). */
static int from_xml_node(struct dip_flow *f, const struct _xmlNode *elem, bool implicit_id, bool *had_id,
                         struct dip_errbuf *eb)
{
    const char *names[33] = { 0 }, *values[33] = { 0 };
    xmlChar *owned[32];
    size_t n = 0;
    int rc = DIP_OK;
    *had_id = false;
    for (const xmlAttr *a = elem->properties; a; a = a->next) {
        if (n == 32) {
            rc = dip_err_set(eb, DIP_EINVAL, "flow element has too many attributes");
            break;
        }
        owned[n] = xmlNodeGetContent((const xmlNode *)a);
        if (!owned[n]) { rc = DIP_ENOMEM; break; }
        names[n] = (const char *)a->name;
        values[n] = (const char *)owned[n];
        if (strcmp(names[n], "id") == 0) *had_id = true;
        n++;
    }
    size_t nowned = n;
    if (rc == DIP_OK && implicit_id && !*had_id) { /* a placeholder, replaced below */
        names[n] = "id";
        values[n++] = "0000000000000000";
    }
    if (rc == DIP_OK) rc = dip_flow_from_attrs(f, names, values, n, eb);
    if (rc == DIP_OK && implicit_id && !*had_id) f->id = dip_flow_id_random(f, dip_flow_id_default_key);
    for (size_t i = 0; i < nowned; i++) xmlFree(owned[i]);
    return rc;
}

int dip_flow_from_xml_node(struct dip_flow *f, const struct _xmlNode *elem, struct dip_errbuf *eb)
{
    bool had_id;
    return from_xml_node(f, elem, false, &had_id, eb);
}

int dip_flow_restore_id(struct _xmlNode *elem, struct dip_errbuf *eb)
{
    struct dip_flow f;
    bool had_id;
    int rc = from_xml_node(&f, elem, true, &had_id, eb);
    if (rc || had_id) return rc;
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)f.id);
    return xmlNewProp(elem, BAD_CAST "id", BAD_CAST hex) ? DIP_OK : DIP_ENOMEM;
}
