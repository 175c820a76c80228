/* chunkdec.c - decodes a segment chunk's text straight into records, without
 * building a libxml2 tree (which costs ~3.5 KB and about a microsecond per
 * record). Only the exact canonical form dip_tree_write_text writes is
 * accepted: index elements whose values match each record's key, attributes
 * in table order with canonical values. Anything else (older writers,
 * damage, entities) returns DIP_EAGAIN and the caller parses with libxml2,
 * so a decoded chunk always means the same records a parse would give. */
#include "fast.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

#define MAX_DEPTH DIP_STORE_PATH_MAX

/* How deep each kind of index nests (dip_store_index_path, ARCHITECTURE 4):
 * one `p` for a port, one `o` per IPv4 octet, `v6` and eight `g` groups. A
 * start tag past its key's depth is refused where it is read: path_range's
 * shifts and offsets, and the arrays below, hold only for these depths. */
enum { PORT_DEPTH = 1, V4_DEPTH = 4, V6_DEPTH = 9 };
_Static_assert(V6_DEPTH <= MAX_DEPTH && V4_DEPTH <= MAX_DEPTH, "index paths fit the decoder's arrays");

static inline bool is_ws(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

/* A canonical decimal (no sign, no leading zero) of at most max. */
static bool canon_uint(const char *s, size_t len, uint64_t max, uint64_t *out)
{
    if (len == 0 || len > 20 || (len > 1 && s[0] == '0')) return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (d > 9) return false;
        if (i < 19) v = v * 10 + d; /* below 10^19: cannot overflow */
        else if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, d, &v)) return false;
    }
    if (v > max) return false;
    *out = v;
    return true;
}

static bool canon_addr(const char *s, size_t len, struct dip_addr *a)
{
    if (memchr(s, ':', len)) {
        char back[DIP_ADDR_TEXT_MAX];
        if (dip_addr_parse(s, len, a) != DIP_OK || dip_addr_is_v4(a)) return false;
        size_t n = dip_addr_format(a, back);
        return n == len && memcmp(back, s, len) == 0;
    }
    uint32_t v = 0;
    const char *p = s, *end = s + len;
    for (int part = 0; part < 4; part++) {
        if (part) {
            if (p >= end || *p != '.') return false;
            p++;
        }
        const char *q = p;
        while (q < end && *q != '.') q++;
        uint64_t o;
        if (q - p > 3 || !canon_uint(p, (size_t)(q - p), 255, &o)) return false;
        v = (v << 8) | (uint32_t)o;
        p = q;
    }
    if (p != end) return false;
    dip_addr_from_v4(a, v);
    return true;
}

static bool set_value(struct dip_flow *f, const struct dip_field *fd, const char *s, size_t len)
{
    uint8_t *p = (uint8_t *)f + fd->offset;
    uint64_t v;
    switch (fd->type) {
    case DIP_FT_ADDR: return canon_addr(s, len, (struct dip_addr *)p);
    case DIP_FT_U8:
        if (!canon_uint(s, len, UINT8_MAX, &v)) return false;
        *p = (uint8_t)v;
        return true;
    case DIP_FT_U16: {
        if (!canon_uint(s, len, UINT16_MAX, &v)) return false;
        uint16_t x = (uint16_t)v;
        memcpy(p, &x, 2);
        return true;
    }
    case DIP_FT_U32: {
        if (!canon_uint(s, len, UINT32_MAX, &v)) return false;
        uint32_t x = (uint32_t)v;
        memcpy(p, &x, 4);
        return true;
    }
    case DIP_FT_U64:
        if (!canon_uint(s, len, UINT64_MAX, &v)) return false;
        memcpy(p, &v, 8);
        return true;
    case DIP_FT_ID:
        if (len != 16) return false;
        v = 0;
        for (size_t i = 0; i < 16; i++) {
            char c = s[i];
            unsigned d = c >= '0' && c <= '9' ? (unsigned)(c - '0') : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10) : 16;
            if (d > 15) return false;
            v = (v << 4) | d;
        }
        memcpy(p, &v, 8);
        return true;
    }
    return false;
}

/* The attribute table, with each name's length and its text as the writer
 * puts it before a value: a space, the name, '=' and a quote. */
struct fields {
    const struct dip_field *table;
    size_t n;
    size_t len[32];
    char prefix[32][24];
    uint64_t word[32][2], mask[32][2]; /* each prefix as two words, for comparing 16 bytes at once */
    uint32_t id_bit; /* the bit of `id` in a parse's seen mask */
};

/* Whether the text at p starts with field i's prefix. */
static inline bool prefix_at(const char *p, const char *end, const struct fields *fs, size_t i)
{
    if (end - p >= 16) {
        uint64_t a, b;
        memcpy(&a, p, 8);
        memcpy(&b, p + 8, 8);
        return ((a ^ fs->word[i][0]) & fs->mask[i][0]) == 0 && ((b ^ fs->word[i][1]) & fs->mask[i][1]) == 0;
    }
    size_t plen = fs->len[i] + 3;
    return (size_t)(end - p) >= plen && memcmp(p, fs->prefix[i], plen) == 0;
}

/* A canonical decimal of at most max from p up to a closing quote, read in
 * one pass. Returns: the position of the quote, or NULL (then set_value
 * judges the value, which refuses it too unless it is a 20-digit one). */
static inline const char *quick_uint(const char *p, const char *end, uint64_t max, uint64_t *out)
{
    const char *s = p;
    uint64_t v = 0;
    while (p < end && p - s < 19 && (unsigned)(*p - '0') < 10) v = v * 10 + (unsigned)(*p++ - '0');
    if (p == s || p >= end || *p != '"' || (p - s > 1 && *s == '0') || v > max) return NULL;
    *out = v;
    return p;
}

/* The same for a dotted IPv4 address (IPv6 ones go through set_value). */
static inline const char *quick_v4(const char *p, const char *end, struct dip_addr *a)
{
    uint32_t v = 0;
    for (int part = 0; part < 4; part++) {
        if (part) {
            if (p >= end || *p != '.') return NULL;
            p++;
        }
        const char *s = p;
        unsigned o = 0;
        while (p < end && p - s < 3 && (unsigned)(*p - '0') < 10) o = o * 10 + (unsigned)(*p++ - '0');
        if (p == s || o > 255 || (p - s > 1 && *s == '0')) return NULL;
        v = v << 8 | o;
    }
    if (p >= end || *p != '"') return NULL;
    dip_addr_from_v4(a, v);
    return p;
}

/* Reads field fd's value from val up to its closing quote into f. Returns:
 * the position of the quote, or NULL when the value is not canonical. */
static inline const char *read_value(const char *val, const char *end, struct dip_flow *f,
                                     const struct dip_field *fd)
{
    uint8_t *dst = (uint8_t *)f + fd->offset;
    const char *q = NULL;
    uint64_t v;
    switch (fd->type) {
    case DIP_FT_U8:
        if ((q = quick_uint(val, end, UINT8_MAX, &v))) *dst = (uint8_t)v;
        break;
    case DIP_FT_U16:
        if ((q = quick_uint(val, end, UINT16_MAX, &v))) {
            uint16_t x = (uint16_t)v;
            memcpy(dst, &x, 2);
        }
        break;
    case DIP_FT_U32:
        if ((q = quick_uint(val, end, UINT32_MAX, &v))) {
            uint32_t x = (uint32_t)v;
            memcpy(dst, &x, 4);
        }
        break;
    case DIP_FT_U64:
        if ((q = quick_uint(val, end, UINT64_MAX, &v))) memcpy(dst, &v, 8);
        break;
    case DIP_FT_ADDR: q = quick_v4(val, end, (struct dip_addr *)dst); break;
    default: break;
    }
    if (q) return q;
    q = memchr(val, '"', (size_t)(end - val));
    /* set_value takes only digits, dots, colons and hex: no '&' or '<' */
    return q && set_value(f, fd, val, (size_t)(q - val)) ? q : NULL;
}

/* Parses the attributes of a flow element written exactly as the writer
 * writes them (a single space before each, table order), from p (just after
 * "<flow") up to and including "/>": the case of every sealed record, two
 * to three times faster than the general parse below, which judges anything
 * else. Returns: the position after it, or NULL. */
static const char *parse_flow_canonical(const char *p, const char *end, struct dip_flow *f, const struct fields *fs)
{
    memset(f, 0, sizeof *f);
    bool has_id = false;
    for (size_t i = 0; i < fs->n; i++) {
        const struct dip_field *fd = &fs->table[i];
        if (!prefix_at(p, end, fs, i)) {
            if (!fd->opt_bit && fd->type != DIP_FT_ID) return NULL; /* a required attribute is missing */
            continue;
        }
        const char *q = read_value(p + fs->len[i] + 3, end, f, fd);
        if (!q) return NULL;
        f->present |= fd->opt_bit;
        has_id |= fd->type == DIP_FT_ID;
        p = q + 1;
    }
    if (end - p < 2 || p[0] != '/' || p[1] != '>') return NULL;
    if (!has_id) f->id = dip_flow_id_random(f, dip_flow_id_default_key); /* left out when sealed */
    return p + 2;
}

/* Parses the attributes of a flow element from p (just after "<flow") up to
 * and including "/>", in any layout the canonical form allows up to
 * whitespace. Returns: the position after it, or NULL. */
static const char *parse_flow(const char *p, const char *end, struct dip_flow *f, const struct fields *fs,
                              bool *canonical)
{
    const char *fast = parse_flow_canonical(p, end, f, fs);
    *canonical = fast != NULL;
    if (fast) return fast;
    size_t nfields = fs->n;
    const struct dip_field *table = fs->table;
    memset(f, 0, sizeof *f);
    size_t next = 0;
    uint32_t seen = 0;
    for (;;) {
        if (p >= end || !is_ws(*p)) {
            if (end - p >= 2 && p[0] == '/' && p[1] == '>') break;
            return NULL;
        }
        while (p < end && is_ws(*p)) p++;
        if (end - p >= 2 && p[0] == '/' && p[1] == '>') break;
        const char *name = p;
        while (p < end && *p >= 'a' && *p <= 'z') p++;
        size_t nlen = (size_t)(p - name);
        if (end - p < 2 || p[0] != '=' || p[1] != '"') return NULL;
        p += 2;
        const char *val = p;
        while (p < end && *p != '"' && *p != '&' && *p != '<') p++;
        if (p >= end || *p != '"') return NULL;
        size_t vlen = (size_t)(p - val);
        p++;
        /* fields come in table order: search forward from the last one */
        for (; next < nfields; next++) {
            if (fs->len[next] != nlen) continue;
            const char *t = table[next].name;
            size_t k = 0;
            while (k < nlen && t[k] == name[k]) k++;
            if (k == nlen) break;
        }
        if (next == nfields) return NULL;
        if (!set_value(f, &table[next], val, vlen)) return NULL;
        f->present |= table[next].opt_bit;
        seen |= 1u << next;
        next++;
    }
    for (size_t i = 0; i < nfields; i++)
        if (!table[i].opt_bit && !(seen & (1u << i)) && table[i].type != DIP_FT_ID) return NULL;
    if (!(seen & fs->id_bit)) f->id = dip_flow_id_random(f, dip_flow_id_default_key); /* left out when sealed */
    return p + 2;
}

/* The range of keys under an index path (depth elements of names/vals), depth
 * at least 1 and at most its key's (PORT_DEPTH, V4_DEPTH, V6_DEPTH), values
 * within their element's range (255 for `o`, 65535 for `g` and `p`): the
 * decoder checks both as it reads each start tag. */
static void path_range(bool ports, const char *const *names, const int *vals, int depth, struct dip_u128 *lo,
                       struct dip_u128 *hi)
{
    if (ports) {
        lo->hi = hi->hi = 0;
        lo->lo = hi->lo = (uint64_t)vals[0];
        return;
    }
    if (names[0][0] == 'o') { /* IPv4, mapped: ::ffff:a.b.c.d */
        uint64_t prefix = 0;
        for (int i = 0; i < depth; i++) prefix = (prefix << 8) | (uint64_t)vals[i];
        int rest = 8 * (4 - depth);
        uint64_t low = 0xffff00000000ull | (prefix << rest);
        lo->hi = hi->hi = 0;
        lo->lo = low;
        hi->lo = low | ((1ull << rest) - 1);
        return;
    }
    uint8_t a[16], b[16]; /* IPv6: <v6> then 16-bit groups */
    memset(a, 0, 16);
    memset(b, 0xff, 16);
    for (int i = 1; i < depth; i++) {
        a[2 * (i - 1)] = b[2 * (i - 1)] = (uint8_t)(vals[i] >> 8);
        a[2 * (i - 1) + 1] = b[2 * (i - 1) + 1] = (uint8_t)vals[i];
    }
    *lo = dip_u128_from_bytes(a);
    *hi = dip_u128_from_bytes(b);
}

/* Passes over the rest of an index element whose start tag was just read:
 * its nested index elements and flows, up to and including its end tag.
 * Only tags are looked at ('<' cannot occur in attribute values). Returns:
 * the position after the end tag, or NULL when the text ends first. */
static const char *skip_subtree(const char *p, const char *end)
{
    size_t d = 1; /* open elements: as many as the text has bytes, not bounded by int */
    while (p < end && (p = memchr(p, '<', (size_t)(end - p)))) {
        if (++p >= end) return NULL;
        if (*p == '/') {
            if (--d == 0) {
                p = memchr(p, '>', (size_t)(end - p));
                return p ? p + 1 : NULL;
            }
        } else if (*p != 'f') {
            d++; /* an index element; flows close themselves */
        }
    }
    return NULL;
}

int dip_chunk_decode(enum dip_tank_key key, const char *text, size_t len, const struct dip_chunk_filter *flt,
                     struct dip_flow **flows, size_t *n, size_t *cap)
{
    return dip_chunk_decode_spans(key, text, len, flt, flows, n, cap, NULL);
}

int dip_chunk_decode_spans(enum dip_tank_key key, const char *text, size_t len, const struct dip_chunk_filter *flt,
                           struct dip_flow **flows, size_t *n, size_t *cap, struct dip_span_vec *spans)
{
    if (len > UINT32_MAX) spans = NULL;
    const char *p = text, *end = text + len;
    const char *names[MAX_DEPTH], *fnames[MAX_DEPTH];
    int vals[MAX_DEPTH], fvals[MAX_DEPTH];
    bool used[MAX_DEPTH];
    int depth = 0;
    size_t start = *n;
    bool ports = key == DIP_KEY_SPORT || key == DIP_KEY_DPORT;
    struct fields fs;
    fs.table = dip_flow_fields(&fs.n);
    if (fs.n > 32) return DIP_EAGAIN;
    fs.id_bit = 0;
    for (size_t i = 0; i < fs.n; i++) {
        fs.len[i] = strlen(fs.table[i].name);
        if (fs.len[i] + 3 > 16) return DIP_EAGAIN;
        snprintf(fs.prefix[i], sizeof fs.prefix[i], " %s=\"", fs.table[i].name);
        uint8_t bytes[16] = { 0 }, mask[16] = { 0 };
        memcpy(bytes, fs.prefix[i], fs.len[i] + 3);
        memset(mask, 0xff, fs.len[i] + 3);
        memcpy(fs.word[i], bytes, 16);
        memcpy(fs.mask[i], mask, 16);
        if (fs.table[i].type == DIP_FT_ID) fs.id_bit = 1u << i;
    }
    while (p < end) {
        if (is_ws(*p)) {
            p++;
            continue;
        }
        if (*p != '<' || end - p < 3) goto refuse;
        p++;
        if (*p == '/') { /* end tag of the innermost index element */
            if (!depth || !used[depth - 1]) goto refuse;
            size_t nl = strlen(names[depth - 1]);
            p++;
            if ((size_t)(end - p) < nl + 1 || memcmp(p, names[depth - 1], nl) != 0 || p[nl] != '>') goto refuse;
            p += nl + 1;
            depth--;
            continue;
        }
        if (end - p > 5 && memcmp(p, "flow", 4) == 0 && (is_ws(p[4]) || p[4] == '/')) {
            if (*n == *cap) {
                size_t ncap = *cap ? *cap * 2 : 1024;
                struct dip_flow *np = realloc(*flows, ncap * sizeof *np);
                if (!np) {
                    *n = start;
                    return DIP_ENOMEM;
                }
                *flows = np;
                *cap = ncap;
            }
            if (spans && spans->cap < *cap) {
                struct dip_text_span *ns = realloc(spans->v, *cap * sizeof *ns);
                if (!ns) {
                    *n = start;
                    return DIP_ENOMEM;
                }
                spans->v = ns;
                spans->cap = *cap;
            }
            struct dip_flow *f = &(*flows)[*n];
            const char *element = p - 1;
            bool canonical;
            if (!(p = parse_flow(p + 4, end, f, &fs, &canonical))) goto refuse;
            if (spans)
                spans->v[*n] = (struct dip_text_span){ (uint32_t)(element - text),
                                                       canonical ? (uint32_t)(p - element) : 0 };
            /* the record must sit exactly under its own index path */
            int d = dip_store_index_path(f, key, fnames, fvals);
            if (d != depth) goto refuse;
            for (int i = 0; i < d; i++)
                if (fnames[i][0] != names[i][0] || fvals[i] != vals[i]) goto refuse;
            for (int i = 0; i < d; i++) used[i] = true;
            (*n)++;
            continue;
        }
        /* start tag of an index element: <o v="N">, <g v="N">, <p v="N"> or
         * <v6>, no deeper than the key's path (damage may nest them on) */
        const char *name;
        int max, limit;
        if (ports) {
            name = "p";
            max = 65535;
            limit = PORT_DEPTH;
        } else if (depth == 0 && end - p >= 3 && memcmp(p, "v6>", 3) == 0) {
            names[depth] = "v6";
            vals[depth] = -1;
            used[depth++] = false;
            p += 3;
            continue;
        } else if (depth > 0 && names[0][0] == 'v') {
            name = "g";
            max = 65535;
            limit = V6_DEPTH;
        } else {
            name = "o";
            max = 255;
            limit = V4_DEPTH;
        }
        if (depth >= limit) goto refuse;
        if (end - p < 6 || p[0] != name[0] || memcmp(p + 1, " v=\"", 4) != 0) goto refuse;
        p += 5;
        const char *v = p;
        while (p < end && *p != '"') p++;
        uint64_t x;
        if (end - p < 2 || p[1] != '>' || !canon_uint(v, (size_t)(p - v), (uint64_t)max, &x)) goto refuse;
        p += 2;
        names[depth] = name;
        vals[depth] = (int)x;
        used[depth++] = false;
        if (flt) {
            struct dip_u128 lo, hi;
            path_range(ports, names, vals, depth, &lo, &hi);
            if (!flt->keep(flt->ctx, lo, hi)) {
                if (!(p = skip_subtree(p, end))) {
                    if (!flt->prefix) goto refuse;
                    p = end; /* a first part may end inside it */
                }
                depth--;
                for (int i = 0; i < depth; i++) used[i] = true; /* it held records, unread */
            }
        }
    }
    if (depth && !(flt && flt->prefix)) goto refuse;
    return DIP_OK;
refuse:
    *n = start;
    return DIP_EAGAIN;
}
