/* tree.c - the tank's tree shape (ARCHITECTURE 4): one `o` element per IPv4
 * octet, IPv6 under `v6` with one `g` per 16-bit group, one `p` per port.
 * Builds libxml2 trees from sorted records, writes the same shape as text
 * for segments, and parses chunk text back. */
#include "store_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmlsafe.h"
#include "fast.h"

#define MAX_DEPTH 9

int dip_store_index_path(const struct dip_flow *f, enum dip_tank_key key, const char **names, int *vals)
{
    if (key == DIP_KEY_SPORT || key == DIP_KEY_DPORT) {
        names[0] = "p";
        vals[0] = key == DIP_KEY_SPORT ? f->sport : f->dport;
        return 1;
    }
    const struct dip_addr *a = key == DIP_KEY_SRC ? &f->src : &f->dst;
    if (dip_addr_is_v4(a)) {
        for (int i = 0; i < 4; i++) {
            names[i] = "o";
            vals[i] = a->b[12 + i];
        }
        return 4;
    }
    names[0] = "v6";
    vals[0] = -1;
    for (int i = 0; i < 8; i++) {
        names[1 + i] = "g";
        vals[1 + i] = (a->b[2 * i] << 8) | a->b[2 * i + 1];
    }
    return 9;
}

static xmlNodePtr new_index_node(const char *name, int v)
{
    xmlNodePtr n = xmlNewNode(NULL, BAD_CAST name);
    if (!n) return NULL;
    if (v >= 0) {
        char buf[16];
        snprintf(buf, sizeof buf, "%d", v);
        if (!xmlNewProp(n, BAD_CAST "v", BAD_CAST buf)) {
            xmlFreeNode(n);
            return NULL;
        }
    }
    return n;
}

/* Looks at the clock every BUILD_CLOCK_EVERY records (~5 ms of building). */
#define BUILD_CLOCK_EVERY 4096

static xmlDocPtr build(enum dip_tank_key key, const struct dip_flow *flows, size_t n, bool mark, uint64_t deadline_ms,
                       bool *late)
{
    xmlDocPtr doc = xmlNewDoc(BAD_CAST "1.0");
    if (!doc) return NULL;
    xmlNodePtr root = xmlNewNode(NULL, BAD_CAST "tank");
    if (!root) goto err;
    xmlDocSetRootElement(doc, root);
    if (!xmlNewProp(root, BAD_CAST "key", BAD_CAST dip_tank_key_name(key))) goto err;
    xmlNodePtr open[MAX_DEPTH + 1] = { root };
    const char *names[MAX_DEPTH], *pnames[MAX_DEPTH];
    int vals[MAX_DEPTH], pvals[MAX_DEPTH];
    int pdepth = 0;
    for (size_t i = 0; i < n; i++) {
        if (deadline_ms && i % BUILD_CLOCK_EVERY == BUILD_CLOCK_EVERY - 1 && dip_store_clock_ms() >= deadline_ms) {
            *late = true;
            goto err;
        }
        int depth = dip_store_index_path(&flows[i], key, names, vals);
        int same = 0;
        while (same < depth && same < pdepth && pnames[same] == names[same] && pvals[same] == vals[same]) same++;
        for (int d = same; d < depth; d++) {
            xmlNodePtr node = new_index_node(names[d], vals[d]);
            if (!node) goto err;
            xmlAddChild(open[d], node); /* the tree takes ownership of node */
            open[d + 1] = node;
        }
        memcpy(pnames, names, sizeof names);
        memcpy(pvals, vals, sizeof vals);
        pdepth = depth;
        xmlNodePtr fl = xmlNewNode(NULL, BAD_CAST "flow");
        if (!fl) goto err;
        xmlAddChild(open[depth], fl);
        if (mark) fl->_private = (void *)(uintptr_t)(i + 1);
        if (dip_flow_to_xml_node(&flows[i], fl) != DIP_OK) goto err;
    }
    return doc;
err:
    xmlFreeDoc(doc);
    return NULL;
}

xmlDocPtr dip_tree_build(enum dip_tank_key key, const struct dip_flow *flows, size_t n)
{
    return build(key, flows, n, false, 0, NULL);
}

xmlDocPtr dip_tree_build_until(enum dip_tank_key key, const struct dip_flow *flows, size_t n, uint64_t deadline_ms,
                               bool *late)
{
    *late = false;
    return build(key, flows, n, false, deadline_ms, late);
}

xmlDocPtr dip_tree_build_marked(enum dip_tank_key key, const struct dip_flow *flows, size_t n)
{
    return build(key, flows, n, true, 0, NULL);
}

int dip_tree_write_text(enum dip_tank_key key, const struct dip_flow *flows, size_t n, struct dip_dynbuf *out)
{
    const char *names[MAX_DEPTH], *pnames[MAX_DEPTH];
    int vals[MAX_DEPTH], pvals[MAX_DEPTH];
    int pdepth = 0, rc;
    for (size_t i = 0; i < n; i++) {
        int depth = dip_store_index_path(&flows[i], key, names, vals);
        int same = 0;
        while (same < depth && same < pdepth && pnames[same] == names[same] && pvals[same] == vals[same]) same++;
        if ((rc = dip_dynbuf_reserve(out, (size_t)(pdepth + depth) * 16 + 8))) return rc;
        char *p = (char *)out->data + out->len;
        for (int d = pdepth - 1; d >= same; d--) { /* no sprintf: this runs for nearly every record */
            size_t nl = strlen(pnames[d]);
            memcpy(p, "</", 2);
            memcpy(p + 2, pnames[d], nl);
            p[2 + nl] = '>';
            p += nl + 3;
        }
        for (int d = same; d < depth; d++) {
            size_t nl = strlen(names[d]);
            *p++ = '<';
            memcpy(p, names[d], nl);
            p += nl;
            if (vals[d] >= 0) { /* a value of at most 5 digits */
                char digits[8];
                int nd = 0;
                unsigned v = (unsigned)vals[d];
                do { digits[nd++] = (char)('0' + v % 10); v /= 10; } while (v && nd < 7);
                memcpy(p, " v=\"", 4);
                p += 4;
                while (nd) *p++ = digits[--nd];
                *p++ = '"';
            }
            *p++ = '>';
        }
        out->len = (size_t)(p - (char *)out->data);
        out->data[out->len] = 0;
        memcpy(pnames, names, sizeof names);
        memcpy(pvals, vals, sizeof vals);
        pdepth = depth;
        if ((rc = dip_flow_xml_append_stored(&flows[i], out))) return rc;
        if ((rc = dip_dynbuf_add(out, "\n", 1))) return rc;
    }
    for (int d = pdepth - 1; d >= 0; d--)
        if ((rc = dip_dynbuf_printf(out, "</%s>", pnames[d]))) return rc;
    return DIP_OK;
}

/* Gives every flow under node the `id` its segment may have left out. */
static int restore_ids(xmlNodePtr node, const char *where, struct dip_errbuf *eb)
{
    for (xmlNodePtr c = node->children; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE) continue;
        int rc = xmlStrEqual(c->name, BAD_CAST "flow") ? dip_flow_restore_id(c, eb) : restore_ids(c, where, eb);
        if (rc == DIP_EINVAL) {
            char why[sizeof eb->msg];
            snprintf(why, sizeof why, "%s", eb->msg);
            return dip_err_set(eb, DIP_ECORRUPT, "%s:%ld: %s", where, xmlGetLineNo(c), why);
        }
        if (rc) return rc;
    }
    return DIP_OK;
}

int dip_tree_parse_chunk(enum dip_tank_key key, const char *text, size_t len, const char *where, xmlDocPtr *doc,
                         struct dip_errbuf *eb)
{
    struct dip_dynbuf buf;
    dip_dynbuf_init(&buf, (size_t)INT32_MAX);
    int rc = dip_dynbuf_printf(&buf, "<tank key=\"%s\">", dip_tank_key_name(key));
    if (!rc) rc = dip_dynbuf_add(&buf, text, len);
    if (!rc) rc = dip_dynbuf_addstr(&buf, "</tank>");
    if (!rc) rc = dip_xml_parse_memory((const char *)buf.data, buf.len, where, doc, eb);
    else rc = dip_err_set(eb, rc, "%s: cannot buffer chunk of %zu bytes", where, len);
    dip_dynbuf_free(&buf);
    if (!rc && (rc = restore_ids(xmlDocGetRootElement(*doc), where, eb))) {
        xmlFreeDoc(*doc);
        *doc = NULL;
    }
    return rc;
}

static int collect_rec(xmlNodePtr node, struct dip_flow **flows, size_t *n, size_t *cap, struct dip_errbuf *eb)
{
    for (xmlNodePtr c = node->children; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE) continue;
        if (strcmp((const char *)c->name, "flow") != 0) {
            int rc = collect_rec(c, flows, n, cap, eb);
            if (rc) return rc;
            continue;
        }
        if (*n == *cap) {
            size_t ncap = *cap ? *cap * 2 : 1024;
            struct dip_flow *p = realloc(*flows, ncap * sizeof *p);
            if (!p) return DIP_ENOMEM;
            *flows = p;
            *cap = ncap;
        }
        int rc = dip_flow_from_xml_node(&(*flows)[*n], c, eb);
        if (rc) return rc;
        (*n)++;
    }
    return DIP_OK;
}

int dip_tree_collect(xmlDocPtr doc, struct dip_flow **flows, size_t *n, size_t *cap, struct dip_errbuf *eb)
{
    xmlNodePtr root = xmlDocGetRootElement(doc);
    return root ? collect_rec(root, flows, n, cap, eb) : DIP_OK;
}
