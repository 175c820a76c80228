/* manifest.c - MANIFEST.xml of a leaf store: the tank key, the current WAL,
 * every sealed segment with its summary, and the batch memory of
 * exactly-once inserts (<origin> elements). Replaced atomically (write,
 * fsync, rename, fsync the folder). Each segment's chunks and their
 * summaries are in its chunk index (seg-N.chunks.xml, <chunks>), written
 * once beside the segment; manifests of older stores list them inline
 * (<chunk> children of <segment>) and are still read. */
#include "store_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cursor.h"
#include "common/paths.h"
#include "common/xmlsafe.h"

static int put_summary(struct dip_dynbuf *b, const struct dip_summary *s)
{
    int rc = dip_dynbuf_printf(b, " count=\"%" PRIu64 "\"", s->count);
    for (int i = 0; !rc && i < SUM_FIELDS; i++) {
        if (i == SUM_SRC || i == SUM_DST) {
            char lo[DIP_ADDR_TEXT_MAX], hi[DIP_ADDR_TEXT_MAX];
            struct dip_addr a;
            dip_put_u64(a.b, s->min[i].hi); dip_put_u64(a.b + 8, s->min[i].lo);
            dip_addr_format(&a, lo);
            dip_put_u64(a.b, s->max[i].hi); dip_put_u64(a.b + 8, s->max[i].lo);
            dip_addr_format(&a, hi);
            rc = dip_dynbuf_printf(b, " %s-min=\"%s\" %s-max=\"%s\"", dip_summary_names[i], lo, dip_summary_names[i], hi);
        } else {
            rc = dip_dynbuf_printf(b, " %s-min=\"%" PRIu64 "\" %s-max=\"%" PRIu64 "\"", dip_summary_names[i],
                                   s->min[i].lo, dip_summary_names[i], s->max[i].lo);
        }
    }
    return rc;
}

int dip_manifest_write(const char *path, const struct dip_manifest *m, struct dip_errbuf *eb)
{
    struct dip_dynbuf b;
    dip_dynbuf_init(&b, (size_t)1 << 31);
    uint64_t records = 0;
    for (size_t i = 0; i < m->nsegs; i++) records += m->segs[i].sum.count;
    int rc = dip_dynbuf_printf(&b,
                               "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                               "<manifest version=\"1\" key=\"%s\" next-segment=\"%" PRIu64 "\" wal=\"%s\" records=\"%" PRIu64 "\">\n",
                               dip_tank_key_name(m->key), m->next_seq, m->wal, records);
    for (size_t i = 0; !rc && i < m->nsegs; i++) {
        const struct dip_segment *s = &m->segs[i];
        char index[sizeof s->file + 16];
        if (dip_chunk_index_name(s->file, index, sizeof index)) rc = DIP_EINVAL;
        if (!rc)
            rc = dip_dynbuf_printf(&b, "  <segment file=\"%s\" chunks=\"%s\" seq=\"%" PRIu64 "\" bytes=\"%" PRIu64 "\"",
                                   s->file, index, s->seq, s->bytes);
        if (!rc) rc = put_summary(&b, &s->sum);
        if (!rc) rc = dip_dynbuf_addstr(&b, "/>\n");
    }
    for (size_t i = 0; !rc && i < m->dedupe.n; i++) {
        const struct dip_dedupe_origin *o = &m->dedupe.origins[m->dedupe.by_name[i]];
        char hex[DIP_DEDUPE_HEX_MAX + 1];
        dip_dedupe_window_hex(o, hex);
        rc = dip_dynbuf_printf(&b, "  <origin name=\"%s\" seq=\"%" PRIu64 "\" window=\"%s\"/>\n", o->name, o->high,
                               hex);
    }
    if (!rc) rc = dip_dynbuf_addstr(&b, "</manifest>\n");
    if (rc) rc = dip_err_set(eb, rc, "cannot build manifest %s", path);
    else rc = dip_file_write_atomic(path, b.data, b.len, eb);
    dip_dynbuf_free(&b);
    return rc;
}

int dip_chunk_index_name(const char *segment_file, char *out, size_t cap)
{
    size_t n = strlen(segment_file);
    static const char gz[] = ".xml.gz", idx[] = ".chunks.xml";
    if (n <= sizeof gz - 1 || strcmp(segment_file + n - (sizeof gz - 1), gz) != 0) return DIP_EINVAL;
    n -= sizeof gz - 1;
    if (n + sizeof idx > cap) return DIP_ERANGE;
    memcpy(out, segment_file, n);
    memcpy(out + n, idx, sizeof idx);
    return DIP_OK;
}

/* The file name part of path (after its last '/'). */
static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* The path of file `name` in the folder of the file at path. */
static int beside(const char *path, const char *name, char *out, size_t cap)
{
    size_t dirlen = (size_t)(base_name(path) - path), n = strlen(name);
    if (dirlen + n + 1 > cap) return DIP_ERANGE;
    memcpy(out, path, dirlen);
    memcpy(out + dirlen, name, n + 1);
    return DIP_OK;
}

int dip_chunk_index_path(const char *segment_path, char *out, size_t cap)
{
    char name[256];
    int rc = dip_chunk_index_name(base_name(segment_path), name, sizeof name);
    return rc ? rc : beside(segment_path, name, out, cap);
}

int dip_chunk_index_write(const char *segment_path, const struct dip_segment *seg, struct dip_errbuf *eb)
{
    char path[PATH_MAX];
    if (dip_chunk_index_path(segment_path, path, sizeof path))
        return dip_err_set(eb, DIP_EINVAL, "%s: not a segment file name (seg-....xml.gz)", segment_path);
    const char *file = base_name(segment_path);
    struct dip_dynbuf b;
    dip_dynbuf_init(&b, (size_t)1 << 31);
    int rc = dip_dynbuf_printf(&b,
                               "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                               "<chunks version=\"1\" segment=\"%s\" count=\"%" PRIu64 "\">\n",
                               file, seg->sum.count);
    for (size_t j = 0; !rc && j < seg->nchunks; j++) {
        rc = dip_dynbuf_printf(&b, "  <chunk offset=\"%" PRIu64 "\" length=\"%" PRIu64 "\"", seg->chunks[j].offset,
                               seg->chunks[j].length);
        if (!rc) rc = put_summary(&b, &seg->chunks[j].sum);
        if (!rc) rc = dip_dynbuf_addstr(&b, "/>\n");
    }
    if (!rc) rc = dip_dynbuf_addstr(&b, "</chunks>\n");
    if (rc) rc = dip_err_set(eb, rc, "cannot build chunk index %s", path);
    else rc = dip_file_write_atomic(path, b.data, b.len, eb);
    dip_dynbuf_free(&b);
    return rc;
}

/* ---- reading ---- */

static int attr_u64(xmlNodePtr n, const char *name, uint64_t *out, const char *path, struct dip_errbuf *eb)
{
    xmlChar *v = xmlGetProp(n, BAD_CAST name);
    char *end = NULL;
    int ok = v && *v >= '0' && *v <= '9';
    if (ok) {
        errno = 0;
        *out = strtoull((const char *)v, &end, 10);
        ok = errno == 0 && end && *end == 0;
    }
    xmlFree(v);
    if (!ok) return dip_err_set(eb, DIP_ECORRUPT, "%s:%ld: <%s> lacks a valid %s", path, xmlGetLineNo(n),
                                (const char *)n->name, name);
    return DIP_OK;
}

static int attr_value(xmlNodePtr n, const char *name, int field, struct dip_u128 *out, const char *path,
                      struct dip_errbuf *eb)
{
    if (field != SUM_SRC && field != SUM_DST) {
        out->hi = 0;
        return attr_u64(n, name, &out->lo, path, eb);
    }
    xmlChar *v = xmlGetProp(n, BAD_CAST name);
    struct dip_addr a;
    int rc = v ? dip_addr_parse((const char *)v, strlen((const char *)v), &a) : DIP_EINVAL;
    xmlFree(v);
    if (rc) return dip_err_set(eb, DIP_ECORRUPT, "%s:%ld: <%s> lacks a valid %s", path, xmlGetLineNo(n),
                               (const char *)n->name, name);
    out->hi = dip_get_u64(a.b);
    out->lo = dip_get_u64(a.b + 8);
    return DIP_OK;
}

static int read_summary(xmlNodePtr n, struct dip_summary *s, const char *path, struct dip_errbuf *eb)
{
    int rc = attr_u64(n, "count", &s->count, path, eb);
    for (int i = 0; !rc && i < SUM_FIELDS; i++) {
        char name[32];
        snprintf(name, sizeof name, "%s-min", dip_summary_names[i]);
        rc = attr_value(n, name, i, &s->min[i], path, eb);
        snprintf(name, sizeof name, "%s-max", dip_summary_names[i]);
        if (!rc) rc = attr_value(n, name, i, &s->max[i], path, eb);
    }
    return rc;
}

static int read_name(xmlNodePtr n, const char *attr, char *out, size_t cap, const char *path, struct dip_errbuf *eb)
{
    xmlChar *v = xmlGetProp(n, BAD_CAST attr);
    int ok = v && strlen((const char *)v) < cap && !strchr((const char *)v, '/') && v[0] && v[0] != '.';
    if (ok) strcpy(out, (const char *)v);
    xmlFree(v);
    if (!ok) return dip_err_set(eb, DIP_ECORRUPT, "%s:%ld: bad %s file name", path, xmlGetLineNo(n), attr);
    return DIP_OK;
}

/* Appends the <chunk> children of n to s's chunks. */
static int read_chunks(xmlNodePtr n, struct dip_segment *s, const char *path, struct dip_errbuf *eb)
{
    int rc = DIP_OK;
    size_t cap = s->nchunks;
    for (xmlNodePtr c = n->children; !rc && c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE || strcmp((const char *)c->name, "chunk") != 0) continue;
        if (s->nchunks == cap) {
            cap = cap ? cap * 2 : 64;
            struct dip_chunk *p = realloc(s->chunks, cap * sizeof *p);
            if (!p) { rc = DIP_ENOMEM; break; }
            s->chunks = p;
        }
        struct dip_chunk *ch = &s->chunks[s->nchunks];
        memset(ch, 0, sizeof *ch);
        rc = attr_u64(c, "offset", &ch->offset, path, eb);
        if (!rc) rc = attr_u64(c, "length", &ch->length, path, eb);
        if (!rc) rc = read_summary(c, &ch->sum, path, eb);
        if (!rc) s->nchunks++;
    }
    return rc;
}

/* Reads the chunk index `index` of segment s (in the manifest's folder): it
 * must name s's file, and its chunks must hold s's records. */
static int read_chunk_index(const char *manifest_path, const char *index, struct dip_segment *s,
                            struct dip_errbuf *eb)
{
    char path[PATH_MAX];
    if (beside(manifest_path, index, path, sizeof path)) return dip_err_set(eb, DIP_ERANGE, "%s: path too long", index);
    xmlDocPtr doc;
    int rc = dip_xml_parse_file(path, &doc, eb);
    if (rc) return rc == DIP_ESYNTAX ? DIP_ECORRUPT : rc;
    xmlNodePtr root = xmlDocGetRootElement(doc);
    xmlChar *seg = root ? xmlGetProp(root, BAD_CAST "segment") : NULL;
    if (!root || strcmp((const char *)root->name, "chunks") != 0)
        rc = dip_err_set(eb, DIP_ECORRUPT, "%s: root element is not <chunks>", path);
    else if (!seg || strcmp((const char *)seg, s->file) != 0)
        rc = dip_err_set(eb, DIP_ECORRUPT, "%s: indexes %s, not %s", path, seg ? (const char *)seg : "no segment",
                         s->file);
    xmlFree(seg);
    if (!rc) rc = read_chunks(root, s, path, eb);
    uint64_t records = 0;
    for (size_t i = 0; !rc && i < s->nchunks; i++) records += s->chunks[i].sum.count;
    if (!rc && records != s->sum.count)
        rc = dip_err_set(eb, DIP_ECORRUPT, "%s: chunks of %" PRIu64 " records in all for a segment of %" PRIu64, path,
                         records, s->sum.count);
    xmlFreeDoc(doc);
    return rc;
}

static int read_segment(xmlNodePtr n, struct dip_segment *s, const char *path, struct dip_errbuf *eb)
{
    memset(s, 0, sizeof *s);
    int rc = read_name(n, "file", s->file, sizeof s->file, path, eb);
    if (!rc) rc = attr_u64(n, "seq", &s->seq, path, eb);
    if (!rc) rc = attr_u64(n, "bytes", &s->bytes, path, eb);
    if (!rc) rc = read_summary(n, &s->sum, path, eb);
    if (!rc && xmlHasProp(n, BAD_CAST "chunks")) {
        char index[sizeof s->file + 16];
        rc = read_name(n, "chunks", index, sizeof index, path, eb);
        if (!rc) rc = read_chunk_index(path, index, s, eb);
    } else if (!rc) {
        rc = read_chunks(n, s, path, eb); /* a manifest written before chunk indexes */
    }
    if (rc) dip_segment_free(s);
    return rc;
}

/* Reads one <origin name seq window> into m's batch memory. */
static int read_origin(xmlNodePtr n, struct dip_manifest *m, const char *path, struct dip_errbuf *eb)
{
    uint64_t high;
    int rc = attr_u64(n, "seq", &high, path, eb);
    if (rc) return rc;
    xmlChar *name = xmlGetProp(n, BAD_CAST "name"), *window = xmlGetProp(n, BAD_CAST "window");
    const char *why = "lacks a name or window";
    if (name && window) rc = dip_dedupe_add(&m->dedupe, (const char *)name, high, (const char *)window, &why);
    else rc = DIP_ECORRUPT;
    if (rc) rc = dip_err_set(eb, rc, "%s:%ld: <origin>: %s", path, xmlGetLineNo(n), why);
    xmlFree(name);
    xmlFree(window);
    return rc;
}

int dip_manifest_read(const char *path, struct dip_manifest *m, struct dip_errbuf *eb)
{
    memset(m, 0, sizeof *m);
    xmlDocPtr doc;
    int rc = dip_xml_parse_file(path, &doc, eb);
    if (rc) return rc == DIP_ESYNTAX ? DIP_ECORRUPT : rc;
    xmlNodePtr root = xmlDocGetRootElement(doc);
    if (!root || strcmp((const char *)root->name, "manifest") != 0) {
        rc = dip_err_set(eb, DIP_ECORRUPT, "%s: root element is not <manifest>", path);
        goto out;
    }
    xmlChar *key = xmlGetProp(root, BAD_CAST "key");
    enum dip_tank_key k;
    rc = key && dip_tank_key_parse((const char *)key, &k) == DIP_OK ? DIP_OK
                                                                      : dip_err_set(eb, DIP_ECORRUPT, "%s: bad key", path);
    xmlFree(key);
    if (rc) goto out;
    m->key = k;
    if ((rc = attr_u64(root, "next-segment", &m->next_seq, path, eb))) goto out;
    if ((rc = read_name(root, "wal", m->wal, sizeof m->wal, path, eb))) goto out;
    size_t cap = 0;
    for (xmlNodePtr n = root->children; n; n = n->next) {
        if (n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, "origin") == 0) {
            if ((rc = read_origin(n, m, path, eb))) goto out;
            continue;
        }
        if (n->type != XML_ELEMENT_NODE || strcmp((const char *)n->name, "segment") != 0) continue;
        if (m->nsegs == cap) {
            cap = cap ? cap * 2 : 16;
            struct dip_segment *p = realloc(m->segs, cap * sizeof *p);
            if (!p) { rc = DIP_ENOMEM; goto out; }
            m->segs = p;
        }
        if ((rc = read_segment(n, &m->segs[m->nsegs], path, eb))) goto out;
        m->nsegs++;
    }
out:
    xmlFreeDoc(doc);
    if (rc) dip_manifest_free(m);
    return rc;
}

void dip_manifest_free(struct dip_manifest *m)
{
    for (size_t i = 0; i < m->nsegs; i++) dip_segment_free(&m->segs[i]);
    free(m->segs);
    m->segs = NULL;
    m->nsegs = 0;
    dip_dedupe_free(&m->dedupe);
}
