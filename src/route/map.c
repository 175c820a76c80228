/* map.c - the cluster map document (schema/cluster.xsd): loading it (parse,
 * validate against dipstorage.xsd, check that the tank trees are consistent),
 * writing it, comparing maps, and building the map of a local cluster.
 * Key ranges, splitting and routing are in map_split.c.
 *
 * Layer: routing. Depends on src/common, src/flow. */
#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/dynbuf.h"
#include "common/paths.h"
#include "common/schema.h"
#include "common/xmlsafe.h"
#include "route/map.h"

/* Bounds on what a map may hold, so that a hostile document cannot make the
 * loader allocate without limit (each member holds DIP_MAP_MAX_CHILDREN ints). */
#define MAP_MAX_NODES 16384
#define MAP_MAX_MEMBERS 16384
#define MAP_MAX_DEPTH 64
#define MAP_TEXT_MAX (64u << 20)

static const char *const role_names[] = { "leaf", "indexer", "collector", "access", "bootstrap" };
#define NROLES (sizeof role_names / sizeof role_names[0])

void dip_map_local_options_default(struct dip_map_local_options *o)
{
    memset(o, 0, sizeof *o);
    o->name = "local";
    o->host = "127.0.0.1";
    o->base_port = 7700;
    o->client_port = 7600;
    o->netflow_port = 2055;
    o->ipfix_port = 4739;
    o->leaves = 4;
    o->fanout = 16;
    o->strategy = DIP_MAP_STRUCTURED;
    o->leaf_memory = 0;
}

void dip_map_free(struct dip_map *m)
{
    if (!m) return;
    free(m->nodes);
    free(m->members);
    free(m);
}

static struct dip_map *map_new(void)
{
    struct dip_map *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    for (int t = 0; t < DIP_TANK_KEYS; t++) m->roots[t] = -1;
    m->front.node = -1;
    return m;
}

int dip_map_node_find(const struct dip_map *m, const char *name)
{
    for (size_t i = 0; i < m->nnodes; i++)
        if (strcmp(m->nodes[i].name, name) == 0) return (int)i;
    return -1;
}

int dip_map_member_of_node(const struct dip_map *m, int ni)
{
    for (size_t i = 0; i < m->nmembers; i++)
        if (m->members[i].node == ni) return (int)i;
    return -1;
}

/* ---- growing the arrays ---- */

static int add_node(struct dip_map *m, size_t *cap, const char *name, const char *host, int port, unsigned roles)
{
    if (m->nnodes >= MAP_MAX_NODES) return DIP_ERANGE;
    if (m->nnodes == *cap) {
        size_t ncap = *cap ? 2 * *cap : 16;
        struct dip_map_node *nodes = realloc(m->nodes, ncap * sizeof *nodes);
        if (!nodes) return DIP_ENOMEM;
        m->nodes = nodes;
        *cap = ncap;
    }
    struct dip_map_node *n = &m->nodes[m->nnodes++];
    memset(n, 0, sizeof *n);
    snprintf(n->name, sizeof n->name, "%s", name);
    snprintf(n->host, sizeof n->host, "%s", host);
    n->port = port;
    n->roles = roles;
    return DIP_OK;
}

/* Appends a member and sets *index; the members array may move. */
static int add_member(struct dip_map *m, size_t *cap, int node, int tank, bool leaf, int parent,
                      const struct dip_map_range *r, int *index)
{
    if (m->nmembers >= MAP_MAX_MEMBERS) return DIP_ERANGE;
    if (m->nmembers == *cap) {
        size_t ncap = *cap ? 2 * *cap : 16;
        struct dip_map_member *members = realloc(m->members, ncap * sizeof *members);
        if (!members) return DIP_ENOMEM;
        m->members = members;
        *cap = ncap;
    }
    struct dip_map_member *mm = &m->members[m->nmembers];
    memset(mm, 0, sizeof *mm);
    mm->node = node;
    mm->tank = tank;
    mm->leaf = leaf;
    mm->parent = parent;
    mm->range = *r;
    *index = (int)m->nmembers++;
    if (parent >= 0) {
        struct dip_map_member *p = &m->members[parent];
        if (p->nchildren >= DIP_MAP_MAX_CHILDREN) return DIP_ERANGE;
        p->children[p->nchildren++] = *index;
    }
    return DIP_OK;
}

/* ---- loading ---- */

struct loader {
    const char *name; /* for messages */
    struct dip_map *m;
    size_t node_cap, member_cap;
    long *member_line;  /* line of each member's element */
    size_t line_cap;
    struct dip_errbuf *eb;
};

__attribute__((format(printf, 4, 5))) static int fail(struct loader *ld, const xmlNode *at, int code,
                                                      const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return dip_err_set(ld->eb, code, "%s:%ld: %s", ld->name, at ? xmlGetLineNo(at) : 0L, msg);
}

/* Copies attribute name of el into out. Returns 1 when present, 0 when
 * absent, -1 when longer than cap - 1. */
static int get_attr(const xmlNode *el, const char *name, char *out, size_t cap)
{
    xmlChar *v = xmlGetProp(el, BAD_CAST name);
    if (!v) return 0;
    size_t n = strlen((const char *)v);
    int ok = n < cap;
    if (ok) memcpy(out, v, n + 1);
    xmlFree(v);
    return ok ? 1 : -1;
}

static bool parse_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (!*s) return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return false;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

static bool parse_id(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (strlen(s) != 16) return false;
    for (int i = 0; i < 16; i++) {
        int d = s[i] >= '0' && s[i] <= '9' ? s[i] - '0' : s[i] >= 'a' && s[i] <= 'f' ? s[i] - 'a' + 10 : -1;
        if (d < 0) return false;
        v = v << 4 | (uint64_t)d;
    }
    *out = v;
    return true;
}

/* "host:port" or "[v6]:port" into host (without brackets) and port 1..65535. */
static bool parse_host_port(const char *s, char *host, size_t cap, int *port)
{
    const char *colon;
    size_t hlen;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':') return false;
        hlen = (size_t)(close - s - 1);
        memcpy(host, s + 1, hlen < cap ? hlen : 0);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon) return false;
        hlen = (size_t)(colon - s);
        memcpy(host, s, hlen < cap ? hlen : 0);
    }
    if (hlen == 0 || hlen >= cap) return false;
    host[hlen] = 0;
    uint64_t p;
    if (!parse_u64(colon + 1, &p) || p == 0 || p > 65535) return false;
    *port = (int)p;
    return true;
}

static bool parse_roles(const char *s, unsigned *roles)
{
    *roles = 0;
    while (*s) {
        while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') s++;
        size_t n = strcspn(s, " \t\n\r");
        if (!n) break;
        size_t r = 0;
        while (r < NROLES && !(strlen(role_names[r]) == n && memcmp(role_names[r], s, n) == 0)) r++;
        if (r == NROLES) return false;
        *roles |= 1u << r;
        s += n;
    }
    return *roles != 0;
}

static int load_node(struct loader *ld, const xmlNode *el)
{
    char id[DIP_MAP_NAME_MAX], address[DIP_MAP_HOST_MAX + 8], roles_text[256], host[DIP_MAP_HOST_MAX];
    int port;
    unsigned roles;
    if (get_attr(el, "id", id, sizeof id) != 1) return fail(ld, el, DIP_EINVAL, "node without a valid id");
    if (dip_map_node_find(ld->m, id) >= 0) return fail(ld, el, DIP_EINVAL, "node id \"%s\" declared twice", id);
    if (get_attr(el, "address", address, sizeof address) != 1 ||
        !parse_host_port(address, host, sizeof host, &port))
        return fail(ld, el, DIP_EINVAL, "node %s: address is not HOST:PORT", id);
    if (get_attr(el, "roles", roles_text, sizeof roles_text) != 1 || !parse_roles(roles_text, &roles))
        return fail(ld, el, DIP_EINVAL, "node %s: roles is not a list of leaf, indexer, collector, access, bootstrap",
                    id);
    int rc = add_node(ld->m, &ld->node_cap, id, host, port, roles);
    if (rc) return fail(ld, el, rc, "node %s: more than %d nodes or out of memory", id, MAP_MAX_NODES);
    return DIP_OK;
}

static int load_front(struct loader *ld, const xmlNode *el)
{
    struct dip_map_front *f = &ld->m->front;
    char name[DIP_MAP_NAME_MAX];
    if (get_attr(el, "node", name, sizeof name) != 1 || (f->node = dip_map_node_find(ld->m, name)) < 0)
        return fail(ld, el, DIP_EINVAL, "front: node names no declared node");
    char host[DIP_MAP_HOST_MAX];
    int port;
    int has = get_attr(el, "client", f->client, sizeof f->client);
    if (has < 0 || (has && !parse_host_port(f->client, host, sizeof host, &port)))
        return fail(ld, el, DIP_EINVAL, "front: client is not HOST:PORT");
    char tmo[32];
    has = get_attr(el, "query-timeout-ms", tmo, sizeof tmo);
    if (has == 1) {
        char *end;
        unsigned long v = strtoul(tmo, &end, 10);
        if (*end || v < 1 || v > 3600000) return fail(ld, el, DIP_EINVAL, "front: query-timeout-ms must be 1..3600000");
        f->query_timeout_ms = (uint32_t)v;
    }
    for (const xmlNode *c = el->children; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE) continue;
        if (strcmp((const char *)c->name, "listen") != 0)
            return fail(ld, c, DIP_EINVAL, "front: unexpected element <%s>", (const char *)c->name);
        if (f->nlisten == sizeof f->listen / sizeof f->listen[0])
            return fail(ld, c, DIP_EINVAL, "front: more than %zu listeners", sizeof f->listen / sizeof f->listen[0]);
        if (get_attr(c, "url", f->listen[f->nlisten], sizeof f->listen[0]) != 1)
            return fail(ld, c, DIP_EINVAL, "listen: missing or too long url");
        f->nlisten++;
    }
    return DIP_OK;
}

static bool range_equal(int tank, enum dip_map_strategy s, const struct dip_map_range *a, const struct dip_map_range *b)
{
    if (s == DIP_MAP_RANDOM) return a->id_from == b->id_from && a->id_to == b->id_to;
    return dip_map_key_cmp(tank, &a->from, &b->from) == 0 && dip_map_key_cmp(tank, &a->to, &b->to) == 0;
}

/* Reads a member's range attributes. A root owns the whole space (its
 * attributes may be left out or give exactly that). */
static int load_range(struct loader *ld, const xmlNode *el, int tank, bool root, const char *node,
                      struct dip_map_range *r)
{
    const bool random = ld->m->strategy == DIP_MAP_RANDOM;
    const char *names[2][2] = { { "from", "to" }, { "id-from", "id-to" } };
    char text[2][2][DIP_ADDR_TEXT_MAX + 8];
    int has[2][2];
    for (int k = 0; k < 2; k++)
        for (int e = 0; e < 2; e++) has[k][e] = get_attr(el, names[k][e], text[k][e], sizeof text[k][e]);
    dip_map_range_full(tank, r);
    int own = random ? 1 : 0, other = 1 - own;
    if (has[other][0] || has[other][1])
        return fail(ld, el, DIP_EINVAL, "%s: %s/%s belong to maps of the %s strategy; this map is %s", node,
                    names[other][0], names[other][1], random ? "structured" : "random",
                    random ? "random" : "structured");
    if (!has[own][0] && !has[own][1] && root) return DIP_OK;
    if (has[own][0] != 1 || has[own][1] != 1)
        return fail(ld, el, DIP_EINVAL, "%s: needs both %s and %s (the range it owns)", node, names[own][0],
                    names[own][1]);
    for (int e = 0; e < 2; e++) {
        bool ok = random ? parse_id(text[own][e], e ? &r->id_to : &r->id_from)
                         : dip_map_key_parse(tank, text[own][e], e ? &r->to : &r->from) == DIP_OK;
        if (!ok)
            return fail(ld, el, DIP_EINVAL, "%s: %s=\"%s\" is not %s", node, names[own][e], text[own][e],
                        random                            ? "a flow ID of 16 hex digits"
                        : tank <= DIP_KEY_DST ? "an address (this is an address tank)"
                                              : "a port (this is a port tank)");
    }
    if (random ? r->id_from > r->id_to : dip_map_key_cmp(tank, &r->from, &r->to) > 0)
        return fail(ld, el, DIP_EINVAL, "%s: %s=\"%s\" comes after %s=\"%s\"", node, names[own][0], text[own][0],
                    names[own][1], text[own][1]);
    if (root) {
        struct dip_map_range full;
        dip_map_range_full(tank, &full);
        if (!range_equal(tank, ld->m->strategy, r, &full))
            return fail(ld, el, DIP_EINVAL, "%s: the root of tank %s owns the whole key space: leave out %s and %s",
                        node, dip_tank_key_name(tank), names[own][0], names[own][1]);
    }
    return DIP_OK;
}

/* Checks that the children of member pi tile its range: in order, without
 * gap or overlap, from its start to its end. */
static int check_children(struct loader *ld, int pi, const xmlNode *const *child_el)
{
    const struct dip_map *m = ld->m;
    const struct dip_map_member *p = &m->members[pi];
    const bool random = m->strategy == DIP_MAP_RANDOM;
    char want[DIP_ADDR_TEXT_MAX + 8], got[DIP_ADDR_TEXT_MAX + 8];
    for (size_t i = 0; i < p->nchildren; i++) {
        const struct dip_map_range *c = &m->members[p->children[i]].range;
        const char *cname = m->nodes[m->members[p->children[i]].node].name;
        struct dip_map_key start = p->range.from;
        uint64_t id_start = p->range.id_from;
        if (i > 0) {
            const struct dip_map_range *prev = &m->members[p->children[i - 1]].range;
            if (random ? prev->id_to == UINT64_MAX : !dip_map_key_next(p->tank, &prev->to, &start))
                return fail(ld, child_el[i], DIP_EINVAL,
                            "%s: the member before it already reaches the end of the space", cname);
            id_start = prev->id_to + 1;
        }
        bool ok = random ? c->id_from == id_start : dip_map_key_cmp(p->tank, &c->from, &start) == 0;
        if (!ok) {
            if (random) {
                snprintf(want, sizeof want, "%016" PRIx64, id_start);
                snprintf(got, sizeof got, "%016" PRIx64, c->id_from);
            } else {
                dip_map_key_format(p->tank, &start, want, sizeof want);
                dip_map_key_format(p->tank, &c->from, got, sizeof got);
            }
            return fail(ld, child_el[i], DIP_EINVAL, "%s: range starts at %s but must start at %s (%s)", cname, got,
                        want,
                        i == 0 ? "where its parent's range starts"
                               : "right after its previous sibling's end: children are in order, "
                                 "without gap or overlap");
        }
    }
    const struct dip_map_range *last = &m->members[p->children[p->nchildren - 1]].range;
    bool ok = random ? last->id_to == p->range.id_to : dip_map_key_cmp(p->tank, &last->to, &p->range.to) == 0;
    if (!ok) {
        if (random) {
            snprintf(want, sizeof want, "%016" PRIx64, p->range.id_to);
            snprintf(got, sizeof got, "%016" PRIx64, last->id_to);
        } else {
            dip_map_key_format(p->tank, &p->range.to, want, sizeof want);
            dip_map_key_format(p->tank, &last->to, got, sizeof got);
        }
        return fail(ld, child_el[p->nchildren - 1], DIP_EINVAL,
                    "%s: the last child's range ends at %s but its parent's ends at %s",
                    m->nodes[m->members[p->children[p->nchildren - 1]].node].name, got, want);
    }
    return DIP_OK;
}

static int load_member(struct loader *ld, const xmlNode *el, int tank, int parent, int depth)
{
    struct dip_map *m = ld->m;
    const char *kind = (const char *)el->name;
    bool leaf = strcmp(kind, "leaf") == 0;
    if (!leaf && strcmp(kind, "indexer") != 0)
        return fail(ld, el, DIP_EINVAL, "unexpected element <%s> in a tank tree", kind);
    if (depth > MAP_MAX_DEPTH) return fail(ld, el, DIP_ERANGE, "tank tree deeper than %d levels", MAP_MAX_DEPTH);
    char name[DIP_MAP_NAME_MAX];
    int ni;
    if (get_attr(el, "node", name, sizeof name) != 1 || (ni = dip_map_node_find(m, name)) < 0)
        return fail(ld, el, DIP_EINVAL, "<%s> names no declared node", kind);
    int prev = dip_map_member_of_node(m, ni);
    if (prev >= 0)
        return fail(ld, el, DIP_EINVAL, "node %s already serves the %s member at line %ld: a node serves one member",
                    name, m->members[prev].leaf ? "leaf" : "indexer", ld->member_line[prev]);
    unsigned need = leaf ? DIP_ROLE_LEAF : DIP_ROLE_INDEXER;
    if (!(m->nodes[ni].roles & need))
        return fail(ld, el, DIP_EINVAL, "node %s serves %s %s but lacks the role %s", name, leaf ? "a" : "an", kind,
                    kind);
    struct dip_map_range r;
    int rc = load_range(ld, el, tank, parent < 0, name, &r);
    if (rc) return rc;
    if (parent >= 0 && m->members[parent].nchildren >= DIP_MAP_MAX_CHILDREN)
        return fail(ld, el, DIP_ERANGE, "an indexer has more than %d children", DIP_MAP_MAX_CHILDREN);
    int mi;
    if ((rc = add_member(m, &ld->member_cap, ni, tank, leaf, parent, &r, &mi)))
        return fail(ld, el, rc, "more than %d tree members or out of memory", MAP_MAX_MEMBERS);
    if (ld->line_cap < ld->member_cap) {
        long *lines = realloc(ld->member_line, ld->member_cap * sizeof *lines);
        if (!lines) return fail(ld, el, DIP_ENOMEM, "out of memory");
        ld->member_line = lines;
        ld->line_cap = ld->member_cap;
    }
    ld->member_line[mi] = xmlGetLineNo(el);
    if (leaf) {
        for (const xmlNode *c = el->children; c; c = c->next)
            if (c->type == XML_ELEMENT_NODE) return fail(ld, c, DIP_EINVAL, "a leaf has no children");
        return DIP_OK;
    }
    const xmlNode *child_el[DIP_MAP_MAX_CHILDREN];
    for (const xmlNode *c = el->children; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE) continue;
        size_t at = m->members[mi].nchildren;
        if (at >= DIP_MAP_MAX_CHILDREN)
            return fail(ld, c, DIP_ERANGE, "an indexer has more than %d children", DIP_MAP_MAX_CHILDREN);
        child_el[at] = c;
        if ((rc = load_member(ld, c, tank, mi, depth + 1))) return rc;
    }
    if (m->members[mi].nchildren == 0) return fail(ld, el, DIP_EINVAL, "indexer %s has no children", name);
    return check_children(ld, mi, child_el);
}

static int load_tank(struct loader *ld, const xmlNode *el)
{
    char key[16];
    enum dip_tank_key tank;
    if (get_attr(el, "key", key, sizeof key) != 1 || dip_tank_key_parse(key, &tank) != DIP_OK)
        return fail(ld, el, DIP_EINVAL, "tank key is not src, dst, sport or dport");
    if (ld->m->roots[tank] >= 0) return fail(ld, el, DIP_EINVAL, "tank %s appears twice", key);
    const xmlNode *root = NULL;
    for (const xmlNode *c = el->children; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE) continue;
        if (root) return fail(ld, c, DIP_EINVAL, "tank %s has more than one root", key);
        root = c;
    }
    if (!root) return fail(ld, el, DIP_EINVAL, "tank %s has no root", key);
    ld->m->roots[tank] = (int)ld->m->nmembers;
    return load_member(ld, root, tank, -1, 0);
}

static int load_cluster(struct loader *ld, const xmlNode *root)
{
    struct dip_map *m = ld->m;
    if (!root || strcmp((const char *)root->name, "cluster") != 0)
        return fail(ld, root, DIP_EINVAL, "not a cluster map (the root element is not <cluster>)");
    char text[64];
    if (get_attr(root, "name", m->name, sizeof m->name) != 1)
        return fail(ld, root, DIP_EINVAL, "cluster name missing or longer than %d", DIP_MAP_NAME_MAX - 1);
    if (get_attr(root, "strategy", text, sizeof text) != 1 ||
        (strcmp(text, "structured") != 0 && strcmp(text, "random") != 0))
        return fail(ld, root, DIP_EINVAL, "strategy is neither structured nor random");
    m->strategy = strcmp(text, "random") == 0 ? DIP_MAP_RANDOM : DIP_MAP_STRUCTURED;
    int has = get_attr(root, "epoch", text, sizeof text);
    if (has && (has < 0 || !parse_u64(text, &m->epoch)))
        return fail(ld, root, DIP_EINVAL, "epoch is not a decimal number");
    uint64_t mem = 0;
    has = get_attr(root, "leaf-memory", text, sizeof text);
    if (has && (has < 0 || !parse_u64(text, &mem) || mem > SIZE_MAX))
        return fail(ld, root, DIP_EINVAL, "leaf-memory is not a decimal number of bytes");
    m->leaf_memory = (size_t)mem;
    uint64_t seal = 0;
    has = get_attr(root, "leaf-seal-records", text, sizeof text);
    if (has && (has < 0 || !parse_u64(text, &seal) || seal > SIZE_MAX))
        return fail(ld, root, DIP_EINVAL, "leaf-seal-records is not a decimal number of records");
    m->leaf_seal_records = (size_t)seal;
    int rc = DIP_OK;
    for (const xmlNode *c = root->children; c && !rc; c = c->next) {
        if (c->type != XML_ELEMENT_NODE) continue;
        const char *n = (const char *)c->name;
        if (strcmp(n, "node") == 0) rc = load_node(ld, c);
        else if (strcmp(n, "front") == 0) rc = m->front.node >= 0 ? fail(ld, c, DIP_EINVAL, "a second <front>")
                                                                   : load_front(ld, c);
        else if (strcmp(n, "tank") == 0) rc = load_tank(ld, c);
        else rc = fail(ld, c, DIP_EINVAL, "unexpected element <%s>", n);
    }
    return rc;
}

/* Validates doc and builds the map from it. Takes ownership of doc. */
static int map_from_doc(xmlDocPtr doc, const char *name, struct dip_map **out, struct dip_errbuf *eb)
{
    const struct dip_schema *schema;
    int rc = dip_schema_shared(&schema, eb);
    if (!rc) rc = dip_schema_validate_doc(schema, doc, NULL, eb);
    struct loader ld = { .name = name, .eb = eb };
    if (!rc && !(ld.m = map_new())) rc = dip_err_set(eb, DIP_ENOMEM, "%s: out of memory", name);
    if (!rc) rc = load_cluster(&ld, xmlDocGetRootElement(doc));
    free(ld.member_line);
    xmlFreeDoc(doc);
    if (rc) {
        dip_map_free(ld.m);
        return rc;
    }
    *out = ld.m;
    return DIP_OK;
}

int dip_map_parse(const char *xml, size_t len, const char *name, struct dip_map **out, struct dip_errbuf *eb)
{
    *out = NULL;
    xmlDocPtr doc;
    int rc = dip_xml_parse_memory(xml, len, name, &doc, eb);
    if (rc) return rc;
    return map_from_doc(doc, name, out, eb);
}

int dip_map_load(const char *path, struct dip_map **out, struct dip_errbuf *eb)
{
    *out = NULL;
    xmlDocPtr doc;
    int rc = dip_xml_parse_file(path, &doc, eb);
    if (rc) return rc;
    return map_from_doc(doc, path, out, eb);
}

/* ---- writing ---- */

static int add_escaped(struct dip_dynbuf *b, const char *s)
{
    int rc = DIP_OK;
    for (; *s && !rc; s++) {
        switch (*s) {
        case '&': rc = dip_dynbuf_addstr(b, "&amp;"); break;
        case '<': rc = dip_dynbuf_addstr(b, "&lt;"); break;
        case '>': rc = dip_dynbuf_addstr(b, "&gt;"); break;
        case '"': rc = dip_dynbuf_addstr(b, "&quot;"); break;
        default: rc = dip_dynbuf_add(b, s, 1);
        }
    }
    return rc;
}

static int add_host_port(struct dip_dynbuf *b, const char *host, int port)
{
    return strchr(host, ':') ? dip_dynbuf_printf(b, "[%s]:%d", host, port) : dip_dynbuf_printf(b, "%s:%d", host, port);
}

static int format_member(const struct dip_map *m, int mi, int indent, struct dip_dynbuf *b)
{
    const struct dip_map_member *mm = &m->members[mi];
    int rc = dip_dynbuf_printf(b, "%*s<%s node=\"", indent, "", mm->leaf ? "leaf" : "indexer");
    if (!rc) rc = add_escaped(b, m->nodes[mm->node].name);
    if (!rc) rc = dip_dynbuf_addstr(b, "\"");
    if (!rc && mm->parent >= 0) {
        char attrs[2 * DIP_ADDR_TEXT_MAX + 32];
        dip_map_range_attrs(m, mi, attrs, sizeof attrs);
        rc = dip_dynbuf_printf(b, " %s", attrs);
    }
    if (rc || mm->leaf) return rc ? rc : dip_dynbuf_addstr(b, "/>\n");
    if ((rc = dip_dynbuf_addstr(b, ">\n"))) return rc;
    for (size_t i = 0; i < mm->nchildren && !rc; i++) rc = format_member(m, mm->children[i], indent + 2, b);
    return rc ? rc : dip_dynbuf_printf(b, "%*s</indexer>\n", indent, "");
}

int dip_map_format(const struct dip_map *m, struct dip_dynbuf *b)
{
    int rc = dip_dynbuf_addstr(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<cluster name=\"");
    if (!rc) rc = add_escaped(b, m->name);
    if (!rc) rc = dip_dynbuf_printf(b, "\" strategy=\"%s\" epoch=\"%" PRIu64 "\"",
                                    m->strategy == DIP_MAP_RANDOM ? "random" : "structured", m->epoch);
    if (!rc && m->leaf_memory) rc = dip_dynbuf_printf(b, " leaf-memory=\"%zu\"", m->leaf_memory);
    if (!rc && m->leaf_seal_records)
        rc = dip_dynbuf_printf(b, " leaf-seal-records=\"%zu\"", m->leaf_seal_records);
    if (!rc) rc = dip_dynbuf_addstr(b, ">\n");
    for (size_t i = 0; i < m->nnodes && !rc; i++) {
        const struct dip_map_node *n = &m->nodes[i];
        rc = dip_dynbuf_addstr(b, "  <node id=\"");
        if (!rc) rc = add_escaped(b, n->name);
        if (!rc) rc = dip_dynbuf_addstr(b, "\" address=\"");
        if (!rc) rc = add_host_port(b, n->host, n->port);
        if (!rc) rc = dip_dynbuf_addstr(b, "\" roles=\"");
        for (size_t r = 0, first = 1; r < NROLES && !rc; r++)
            if (n->roles & (1u << r)) {
                rc = dip_dynbuf_printf(b, "%s%s", first ? "" : " ", role_names[r]);
                first = 0;
            }
        if (!rc) rc = dip_dynbuf_addstr(b, "\"/>\n");
    }
    if (!rc && m->front.node >= 0) {
        rc = dip_dynbuf_addstr(b, "  <front node=\"");
        if (!rc) rc = add_escaped(b, m->nodes[m->front.node].name);
        if (!rc && m->front.client[0]) rc = dip_dynbuf_addstr(b, "\" client=\"");
        if (!rc && m->front.client[0]) rc = add_escaped(b, m->front.client);
        if (!rc && m->front.query_timeout_ms)
            rc = dip_dynbuf_printf(b, "\" query-timeout-ms=\"%u", (unsigned)m->front.query_timeout_ms);
        if (!rc) rc = dip_dynbuf_addstr(b, m->front.nlisten ? "\">\n" : "\"/>\n");
        for (size_t i = 0; i < m->front.nlisten && !rc; i++) {
            rc = dip_dynbuf_addstr(b, "    <listen url=\"");
            if (!rc) rc = add_escaped(b, m->front.listen[i]);
            if (!rc) rc = dip_dynbuf_addstr(b, "\"/>\n");
        }
        if (!rc && m->front.nlisten) rc = dip_dynbuf_addstr(b, "  </front>\n");
    }
    /* tanks in the order of their members, so that a map read back has the
     * same member indices */
    int order[DIP_TANK_KEYS], n = 0;
    for (int t = 0; t < DIP_TANK_KEYS; t++)
        if (m->roots[t] >= 0) order[n++] = t;
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && m->roots[order[j - 1]] > m->roots[order[j]]; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    for (int i = 0; i < n && !rc; i++) {
        rc = dip_dynbuf_printf(b, "  <tank key=\"%s\">\n", dip_tank_key_name(order[i]));
        if (!rc) rc = format_member(m, m->roots[order[i]], 4, b);
        if (!rc) rc = dip_dynbuf_addstr(b, "  </tank>\n");
    }
    return rc ? rc : dip_dynbuf_addstr(b, "</cluster>\n");
}

int dip_map_write(const struct dip_map *m, const char *path, struct dip_errbuf *eb)
{
    struct dip_dynbuf b;
    dip_dynbuf_init(&b, MAP_TEXT_MAX);
    int rc = dip_map_format(m, &b);
    if (rc) rc = dip_err_set(eb, rc, "%s: cannot format the map (%s)", path, dip_err_name(rc));
    else rc = dip_file_write_atomic(path, b.data, b.len, eb);
    dip_dynbuf_free(&b);
    return rc;
}

/* ---- comparing ---- */

bool dip_map_equal(const struct dip_map *a, const struct dip_map *b)
{
    if (strcmp(a->name, b->name) || a->strategy != b->strategy || a->epoch != b->epoch ||
        a->leaf_memory != b->leaf_memory || a->leaf_seal_records != b->leaf_seal_records || a->nnodes != b->nnodes || a->nmembers != b->nmembers)
        return false;
    for (int t = 0; t < DIP_TANK_KEYS; t++)
        if (a->roots[t] != b->roots[t]) return false;
    for (size_t i = 0; i < a->nnodes; i++) {
        const struct dip_map_node *x = &a->nodes[i], *y = &b->nodes[i];
        if (strcmp(x->name, y->name) || strcmp(x->host, y->host) || x->port != y->port || x->roles != y->roles)
            return false;
    }
    for (size_t i = 0; i < a->nmembers; i++) {
        const struct dip_map_member *x = &a->members[i], *y = &b->members[i];
        if (x->node != y->node || x->tank != y->tank || x->leaf != y->leaf || x->parent != y->parent ||
            x->nchildren != y->nchildren || x->range.id_from != y->range.id_from ||
            x->range.id_to != y->range.id_to || dip_map_key_cmp(x->tank, &x->range.from, &y->range.from) ||
            dip_map_key_cmp(x->tank, &x->range.to, &y->range.to))
            return false;
        for (size_t c = 0; c < x->nchildren; c++)
            if (x->children[c] != y->children[c]) return false;
    }
    const struct dip_map_front *f = &a->front, *g = &b->front;
    if (f->node != g->node || strcmp(f->client, g->client) || f->nlisten != g->nlisten ||
        f->query_timeout_ms != g->query_timeout_ms)
        return false;
    for (size_t i = 0; i < f->nlisten; i++)
        if (strcmp(f->listen[i], g->listen[i])) return false;
    return true;
}

/* ---- a local cluster ---- */

struct builder {
    const struct dip_map_local_options *o;
    struct dip_map *m;
    size_t node_cap, member_cap;
    size_t leaf_seq, idx_seq; /* names within the current tank */
    struct dip_errbuf *eb;
};

/* Adds the node and member called name; ports follow in creation order. */
static int build_member(struct builder *b, const char *name, int tank, bool leaf, int parent,
                        const struct dip_map_range *r, int *mi)
{
    long port = (long)b->o->base_port + (long)b->m->nnodes;
    if (port > 65535)
        return dip_err_set(b->eb, DIP_EINVAL, "build: %zu nodes do not fit in the ports from %d", b->m->nnodes + 1,
                           b->o->base_port);
    int rc = add_node(b->m, &b->node_cap, name, b->o->host, (int)port, leaf ? DIP_ROLE_LEAF : DIP_ROLE_INDEXER);
    if (!rc) rc = add_member(b->m, &b->member_cap, (int)b->m->nnodes - 1, tank, leaf, parent, r, mi);
    if (rc) return dip_err_set(b->eb, rc, "build: too many nodes (%s)", dip_err_name(rc));
    return DIP_OK;
}

/* Builds the children of indexer mi over its range: its leaves directly when
 * they fit the fanout, otherwise indexers sharing them out. Members are made
 * in document order (pre-order), as a map read back has them. */
static int build_children(struct builder *b, int tank, int mi, size_t leaves)
{
    size_t fan = b->o->fanout;
    size_t groups = leaves <= fan ? leaves : (leaves + fan - 1) / fan;
    if (groups > fan) groups = fan;
    struct dip_map_range parts[DIP_MAP_MAX_CHILDREN];
    struct dip_map_range range = b->m->members[mi].range;
    int rc = dip_map_split(tank, &range, groups, parts, b->eb);
    if (rc) return rc;
    struct dip_map_range full;
    dip_map_range_full(tank, &full);
    for (size_t g = 0; g < groups; g++) {
        /* the share that the strategy does not use stays whole */
        if (b->o->strategy == DIP_MAP_RANDOM) {
            parts[g].from = full.from;
            parts[g].to = full.to;
        } else {
            parts[g].id_from = 0;
            parts[g].id_to = UINT64_MAX;
        }
        size_t under = leaves / groups + (g < leaves % groups ? 1 : 0);
        char name[DIP_MAP_NAME_MAX];
        int child;
        if (under == 1) {
            snprintf(name, sizeof name, "%s-leaf-%zu", dip_tank_key_name(tank), b->leaf_seq++);
            rc = build_member(b, name, tank, true, mi, &parts[g], &child);
        } else {
            snprintf(name, sizeof name, "%s-idx-%zu", dip_tank_key_name(tank), b->idx_seq++);
            rc = build_member(b, name, tank, false, mi, &parts[g], &child);
            if (!rc) rc = build_children(b, tank, child, under);
        }
        if (rc) return rc;
    }
    return DIP_OK;
}

static bool host_ok(const char *h)
{
    size_t n = strlen(h);
    if (n == 0 || n >= DIP_MAP_HOST_MAX - 8) return false;
    if (strchr(h, ':')) return strspn(h, "0123456789abcdefABCDEF:.") == n;
    static const char name_chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-";
    return isalnum((unsigned char)h[0]) && strspn(h, name_chars) == n;
}

int dip_map_build_local(const struct dip_map_local_options *o, struct dip_map **out, struct dip_errbuf *eb)
{
    *out = NULL;
    struct dip_map_local_options d;
    dip_map_local_options_default(&d);
    if (o->name) d.name = o->name;
    if (o->host) d.host = o->host;
    if (o->base_port) d.base_port = o->base_port;
    if (o->client_port) d.client_port = o->client_port;
    if (o->netflow_port) d.netflow_port = o->netflow_port;
    if (o->ipfix_port) d.ipfix_port = o->ipfix_port;
    if (o->leaves) d.leaves = o->leaves;
    if (o->fanout) d.fanout = o->fanout;
    d.strategy = o->strategy;
    d.leaf_memory = o->leaf_memory;
    d.leaf_seal_records = o->leaf_seal_records;
    d.query_timeout_ms = o->query_timeout_ms;
    if (!*d.name || strlen(d.name) >= DIP_MAP_NAME_MAX || d.name[0] == ' ' || d.name[strlen(d.name) - 1] == ' ')
        return dip_err_set(eb, DIP_EINVAL, "build: bad cluster name");
    if (!host_ok(d.host)) return dip_err_set(eb, DIP_EINVAL, "build: bad host \"%s\"", d.host);
    int ports[] = { d.base_port, d.client_port, d.netflow_port, d.ipfix_port };
    for (size_t i = 0; i < sizeof ports / sizeof ports[0]; i++)
        if (ports[i] < 1 || ports[i] > 65535)
            return dip_err_set(eb, DIP_EINVAL, "build: port %d out of range", ports[i]);
    if (d.fanout < 2 || d.fanout > DIP_MAP_MAX_CHILDREN)
        return dip_err_set(eb, DIP_EINVAL, "build: fanout %zu not in 2..%d", d.fanout, DIP_MAP_MAX_CHILDREN);
    if (d.leaves > MAP_MAX_MEMBERS / DIP_TANK_KEYS)
        return dip_err_set(eb, DIP_EINVAL, "build: %zu leaves per tank are too many", d.leaves);
    if (d.strategy != DIP_MAP_STRUCTURED && d.strategy != DIP_MAP_RANDOM)
        return dip_err_set(eb, DIP_EINVAL, "build: bad strategy");

    struct builder b = { .o = &d, .m = map_new(), .eb = eb };
    if (!b.m) return dip_err_set(eb, DIP_ENOMEM, "build: out of memory");
    struct dip_map *m = b.m;
    snprintf(m->name, sizeof m->name, "%s", d.name);
    m->strategy = d.strategy;
    m->epoch = 1;
    m->leaf_memory = d.leaf_memory;
    m->leaf_seal_records = d.leaf_seal_records;
    int rc = add_node(m, &b.node_cap, "front", d.host, d.base_port, DIP_ROLE_COLLECTOR | DIP_ROLE_ACCESS);
    if (rc) rc = dip_err_set(eb, rc, "build: out of memory");
    m->front.node = 0;
    const char *lb = strchr(d.host, ':') ? "[" : "", *rb = *lb ? "]" : "";
    snprintf(m->front.client, sizeof m->front.client, "%s%s%s:%d", lb, d.host, rb, d.client_port);
    snprintf(m->front.listen[0], sizeof m->front.listen[0], "udp://%s%s%s:%d", lb, d.host, rb, d.netflow_port);
    snprintf(m->front.listen[1], sizeof m->front.listen[1], "udp://%s%s%s:%d", lb, d.host, rb, d.ipfix_port);
    snprintf(m->front.listen[2], sizeof m->front.listen[2], "tcp://%s%s%s:%d", lb, d.host, rb, d.ipfix_port);
    m->front.nlisten = 3;
    m->front.query_timeout_ms = d.query_timeout_ms;
    for (int t = 0; t < DIP_TANK_KEYS && !rc; t++) {
        struct dip_map_range full;
        dip_map_range_full(t, &full);
        char name[DIP_MAP_NAME_MAX];
        b.leaf_seq = b.idx_seq = 0;
        if (d.leaves == 1) {
            snprintf(name, sizeof name, "%s-leaf-0", dip_tank_key_name(t));
            rc = build_member(&b, name, t, true, -1, &full, &m->roots[t]);
        } else {
            snprintf(name, sizeof name, "%s-root", dip_tank_key_name(t));
            rc = build_member(&b, name, t, false, -1, &full, &m->roots[t]);
            if (!rc) rc = build_children(&b, t, m->roots[t], d.leaves);
        }
    }
    if (rc) {
        dip_map_free(m);
        return rc;
    }
    *out = m;
    return DIP_OK;
}
