/* flow_xml.c - a flow record as the attributes of a `flow` element
 * (ARCHITECTURE 4): fast text writing for segments and exports, reading from
 * attribute pairs (SAX, readers) and from libxml2 nodes. */
#include "flow.h"

#include <libxml/tree.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* Two digits at a time from the back, straight into out after counting
 * the digits (formatting is most of writing a record's XML; a copy of a
 * variable length at the end was a library call per number). */
static size_t format_u64(uint64_t v, char *out)
{
    static const char pairs[201] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
                                   "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
                                   "8081828384858687888990919293949596979899";
    static const uint64_t pow10[20] = { 1ull, 10ull, 100ull, 1000ull, 10000ull, 100000ull, 1000000ull, 10000000ull,
                                        100000000ull, 1000000000ull, 10000000000ull, 100000000000ull,
                                        1000000000000ull, 10000000000000ull, 100000000000000ull,
                                        1000000000000000ull, 10000000000000000ull, 100000000000000000ull,
                                        1000000000000000000ull, 10000000000000000000ull };
    if (v < 10) {
        out[0] = (char)('0' + v);
        return 1;
    }
    size_t len = 2;
    while (len < 20 && v >= pow10[len]) len++;
    char *p = out + len;
    while (v >= 100) {
        p -= 2;
        memcpy(p, pairs + 2 * (v % 100), 2);
        v /= 100;
    }
    if (v >= 10) memcpy(p - 2, pairs + 2 * v, 2);
    else p[-1] = (char)('0' + v);
    return len;
}

/* Each field's ` name="` and its length, made once (a record's XML is
 * written for every record of every result: strlen per attribute was a
 * tenth of the access point's formatting). Each is copied as 16 bytes at
 * once, whatever its length: the writing may run up to 16 bytes past the
 * record's end, within the DIP_FLOW_XML_ATTRS_MAX bytes callers provide. */
#define MAX_FIELDS 32
#define PREFIX_COPY 16
static struct { char text[PREFIX_COPY]; size_t len; } prefixes[MAX_FIELDS];
static pthread_once_t prefixes_once = PTHREAD_ONCE_INIT;

static void make_prefixes(void)
{
    size_t nfields;
    const struct dip_field *fd = dip_flow_fields(&nfields);
    for (size_t i = 0; i < nfields && i < MAX_FIELDS; i++) {
        char text[64];
        int n = snprintf(text, sizeof text, " %s=\"", fd[i].name);
        if (n <= 0 || n > PREFIX_COPY) continue; /* written the slow way */
        memcpy(prefixes[i].text, text, (size_t)n);
        prefixes[i].len = (size_t)n;
    }
}

static size_t xml_attrs(const struct dip_flow *f, char *out, bool with_id)
{
    size_t nfields, n = 0;
    const struct dip_field *fd = dip_flow_fields(&nfields);
    pthread_once(&prefixes_once, make_prefixes);
    for (size_t i = 0; i < nfields; i++, fd++) {
        if (fd->opt_bit && !(f->present & fd->opt_bit)) continue;
        if (fd->type == DIP_FT_ID && !with_id) continue;
        if (i < MAX_FIELDS && prefixes[i].len) {
            memcpy(out + n, prefixes[i].text, PREFIX_COPY);
            n += prefixes[i].len;
        } else {
            size_t len = strlen(fd->name);
            out[n++] = ' ';
            memcpy(out + n, fd->name, len);
            n += len;
            out[n++] = '=';
            out[n++] = '"';
        }
        const uint8_t *v = (const uint8_t *)f + fd->offset;
        switch (fd->type) {
        case DIP_FT_ADDR: n += dip_addr_format((const struct dip_addr *)v, out + n); break;
        case DIP_FT_ID: {
            /* the flow ID: 16 lowercase hex digits */
            static const char hex[] = "0123456789abcdef";
            for (int s = 60; s >= 0; s -= 4) out[n++] = hex[(f->id >> s) & 15];
            break;
        }
        case DIP_FT_U8: n += format_u64(*v, out + n); break;
        case DIP_FT_U16: {
            uint16_t x;
            memcpy(&x, v, 2);
            n += format_u64(x, out + n);
            break;
        }
        case DIP_FT_U32: {
            uint32_t x;
            memcpy(&x, v, 4);
            n += format_u64(x, out + n);
            break;
        }
        case DIP_FT_U64: {
            uint64_t x;
            memcpy(&x, v, 8);
            n += format_u64(x, out + n);
            break;
        }
        }
        out[n++] = '"';
    }
    return n;
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
