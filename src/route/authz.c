/* authz.c - the authorization policy of node links (authz.h): a frame is
 * judged by the type it carries, the role and name its sender's certificate
 * states, and the place of both in the cluster map. */
#include "route/authz.h"

#include <stdio.h>
#include <string.h>

#include "net/net.h"
#include "route/proto.h"

const char *dip_authz_node_role(const struct dip_map *m, int ni)
{
    int mi = dip_map_member_of_node(m, ni);
    if (mi >= 0) return m->members[mi].leaf ? DIP_NET_ROLE_LEAF : DIP_NET_ROLE_INDEXER;
    if (m->nodes[ni].roles & (DIP_ROLE_COLLECTOR | DIP_ROLE_ACCESS)) return DIP_NET_ROLE_FRONT;
    if (m->nodes[ni].roles & DIP_ROLE_BOOTSTRAP) return DIP_NET_ROLE_BOOTSTRAP;
    return m->nodes[ni].roles & DIP_ROLE_LEAF ? DIP_NET_ROLE_LEAF : DIP_NET_ROLE_INDEXER;
}

static bool role_is(const struct dip_authz_peer *p, const char *role) { return strcmp(p->role, role) == 0; }

static const char *type_name(uint8_t type)
{
    switch (type) {
    case DIP_MSG_INGEST: return "INGEST";
    case DIP_MSG_QUERY: return "QUERY";
    case DIP_MSG_STATUS: return "STATUS";
    case DIP_MSG_PING: return "PING";
    default: return "a message";
    }
}

static int refuse(char *why, size_t cap, const struct dip_authz_peer *p, uint8_t type, const char *reason)
{
    snprintf(why, cap, "%s from %s (role %s) refused: %s", type_name(type), p->name[0] ? p->name : "?",
             p->role[0] ? p->role : "none", reason);
    return DIP_EPERM;
}

/* Returns: true when peer is node ni of the map (its name and its role). */
static bool peer_is_node(const struct dip_map *m, const struct dip_authz_peer *p, int ni)
{
    return ni >= 0 && strcmp(p->name, m->nodes[ni].name) == 0 && role_is(p, dip_authz_node_role(m, ni));
}

/* Returns: true when peer is a node of the map with one of the role bits. */
static bool peer_is_front_with(const struct dip_map *m, const struct dip_authz_peer *p, unsigned bits)
{
    if (!role_is(p, DIP_NET_ROLE_FRONT)) return false;
    int ni = dip_map_node_find(m, p->name);
    return ni >= 0 && (m->nodes[ni].roles & bits) && peer_is_node(m, p, ni);
}

static int parent_node(const struct dip_map *m, int mi)
{
    int parent = m->members[mi].parent;
    return parent >= 0 ? m->members[parent].node : -1;
}

int dip_authz_frame(const struct dip_map *m, int self, const struct dip_authz_peer *peer, uint8_t type, char *why,
                    size_t cap)
{
    if (!dip_net_role_known(peer->role))
        return refuse(why, cap, peer, type, "its certificate names no role of this cluster");
    int ni = dip_map_node_find(m, peer->name);
    if (ni >= 0 && !peer_is_node(m, peer, ni))
        return refuse(why, cap, peer, type, "the map gives that name another role");
    if (type == DIP_MSG_PING || type == DIP_MSG_STATUS) return DIP_OK;
    if (type != DIP_MSG_INGEST && type != DIP_MSG_QUERY) return DIP_OK; /* the role answers EPROTO */
    int mi = dip_map_member_of_node(m, self);
    if (mi < 0) return refuse(why, cap, peer, type, "this node holds no tank");
    int parent = parent_node(m, mi);
    if (parent >= 0 && peer_is_node(m, peer, parent)) return DIP_OK;
    if (type == DIP_MSG_INGEST) {
        if (parent < 0 && peer_is_front_with(m, peer, DIP_ROLE_COLLECTOR)) return DIP_OK;
        return refuse(why, cap, peer, type,
                      parent < 0 ? "a tank root takes records from a collector of the map only"
                                 : "a member takes records from its parent indexer only");
    }
    if (peer_is_front_with(m, peer, DIP_ROLE_ACCESS)) return DIP_OK;
    return refuse(why, cap, peer, type, "queries come from the access point or the parent indexer only");
}

int dip_authz_origin(const struct dip_map *m, int self, const struct dip_authz_peer *peer, const char *origin,
                     char *why, size_t cap)
{
    int mi = dip_map_member_of_node(m, self);
    bool root = mi >= 0 && m->members[mi].parent < 0;
    if (root && strcmp(origin, peer->name) != 0) {
        snprintf(why, cap, "INGEST from %s refused: it carries origin \"%s\"; a collector speaks only for itself",
                 peer->name, origin);
        return DIP_EPERM;
    }
    int on = dip_map_node_find(m, origin);
    if (on < 0 || !(m->nodes[on].roles & DIP_ROLE_COLLECTOR)) {
        snprintf(why, cap, "INGEST from %s refused: origin \"%s\" is no collector of the map", peer->name, origin);
        return DIP_EPERM;
    }
    return DIP_OK;
}

size_t dip_authz_records_outside(const struct dip_map *m, int mi, const struct dip_flow *flows, size_t n,
                                 size_t *first_outside)
{
    size_t outside = 0, first = n;
    for (size_t i = 0; i < n; i++)
        if (!dip_map_owns(m, mi, &flows[i])) {
            if (!outside) first = i;
            outside++;
        }
    if (first_outside) *first_outside = first;
    return outside;
}

bool dip_authz_seq_plausible(uint64_t high, uint64_t seq) { return high == 0 || seq <= high + DIP_AUTHZ_SEQ_LEAP; }

int dip_authz_refuse_records(const struct dip_map *m, int mi, const struct dip_flow *flows, size_t n,
                             size_t outside, size_t first, char *why, size_t cap)
{
    char range[200], key[DIP_ADDR_TEXT_MAX + 8];
    struct dip_map_key k;
    dip_map_range_text(m, mi, range, sizeof range);
    dip_map_flow_key(m->members[mi].tank, &flows[first], &k);
    dip_map_key_format(m->members[mi].tank, &k, key, sizeof key);
    snprintf(why, cap, "%zu of %zu records lie outside %s's range %s (the first: key %s, id %016llx)", outside, n,
             m->nodes[m->members[mi].node].name, range, key, (unsigned long long)flows[first].id);
    return DIP_EPERM;
}
