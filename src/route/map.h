/* map.h - the cluster map (schema/cluster.xsd): which nodes exist, where they
 * listen, what role each plays, and for each tank the tree of indexers and
 * leaves with the key range each one owns; the even splitting of a key range
 * among children; routing a record to the child that owns it; testing a
 * child's range against an analysed query.
 *
 * Key ranges are inclusive intervals in a tank's document order: addresses
 * order IPv4 before IPv6, then by value (dip_addr_cmp), ports by number.
 * Under the random strategy a member's share is an interval of random flow
 * IDs instead, and every query is broadcast.
 *
 * Layer: routing. Depends on src/flow, src/common, xpath/. */
#ifndef DIP_ROUTE_MAP_H
#define DIP_ROUTE_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "flow/flow.h"

struct dip_xpath;

enum dip_map_strategy { DIP_MAP_STRUCTURED = 0, DIP_MAP_RANDOM = 1 };

/* A key in a tank's document order: an address (IPv4-mapped for IPv4) or a
 * port in the low 16 bits of port. */
struct dip_map_key {
    struct dip_addr addr; /* src, dst tanks */
    uint32_t port;        /* sport, dport tanks */
};

/* What a tree member owns. Under the structured strategy id_from/id_to are
 * the whole ID space; under the random one from/to are the tank's whole key
 * space (dip_map_range_full), so that two equal maps compare equal. */
struct dip_map_range {
    struct dip_map_key from, to; /* structured: inclusive, document order */
    uint64_t id_from, id_to;     /* random: inclusive range of flow IDs */
};

#define DIP_MAP_NAME_MAX 64
#define DIP_MAP_HOST_MAX 256
#define DIP_MAP_MAX_CHILDREN 256

enum dip_map_role_bits {
    DIP_ROLE_LEAF = 1u << 0,
    DIP_ROLE_INDEXER = 1u << 1,
    DIP_ROLE_COLLECTOR = 1u << 2,
    DIP_ROLE_ACCESS = 1u << 3,
    DIP_ROLE_BOOTSTRAP = 1u << 4,
};

/* A node: a process with an address for node links. */
struct dip_map_node {
    char name[DIP_MAP_NAME_MAX];
    char host[DIP_MAP_HOST_MAX]; /* numeric address or name */
    int port;                    /* node links (TLS) */
    unsigned roles;              /* enum dip_map_role_bits */
};

/* A member of a tank tree: a leaf or an indexer served by node `node`. */
struct dip_map_member {
    int node;                 /* index into dip_map.nodes */
    int tank;                 /* enum dip_tank_key */
    bool leaf;                /* leaf (no children) or indexer */
    int parent;               /* index into dip_map.members, -1 for a tank root */
    int children[DIP_MAP_MAX_CHILDREN]; /* indices into dip_map.members, in key order */
    size_t nchildren;
    struct dip_map_range range;
};

/* The front: the client query server and the collector's listeners (these
 * are not node links). */
struct dip_map_front {
    int node;                    /* index into nodes, -1 when the map has none */
    char client[DIP_MAP_HOST_MAX];  /* "HOST:PORT" of the client protocol (ARCHITECTURE 5) */
    char listen[4][DIP_MAP_HOST_MAX]; /* collector URLs: udp://..., tcp://... */
    size_t nlisten;
    uint32_t query_timeout_ms;   /* deadline of a client query (0: the access point's default, 10 s) */
};

struct dip_map {
    char name[DIP_MAP_NAME_MAX];
    enum dip_map_strategy strategy;
    uint64_t epoch;
    size_t leaf_memory;          /* memory budget of each leaf's store (bytes; 0: store default) */
    size_t leaf_seal_records;    /* a leaf seals its active part at this many records (0: store default) */
    struct dip_map_node *nodes;
    size_t nnodes;
    struct dip_map_member *members;
    size_t nmembers;
    int roots[DIP_TANK_KEYS];    /* member index of each tank's root, -1 when the tank is absent */
    struct dip_map_front front;
};

/* Reads and validates a map (against dipstorage.xsd, then for consistency:
 * every member's range within its parent's, children disjoint, in order and
 * covering it). Returns DIP_OK with *out new (dip_map_free), or an error with
 * eb naming the file, line and what is wrong. */
int dip_map_load(const char *path, struct dip_map **out, struct dip_errbuf *eb);
/* Parses a map from memory (name is used in messages). */
int dip_map_parse(const char *xml, size_t len, const char *name, struct dip_map **out, struct dip_errbuf *eb);
void dip_map_free(struct dip_map *m);
/* Writes the map document (replaced atomically when path exists). */
int dip_map_write(const struct dip_map *m, const char *path, struct dip_errbuf *eb);

/* What `dipstorage up` builds on one host. */
struct dip_map_local_options {
    const char *name;        /* cluster name (default "local") */
    const char *host;        /* link address (default "127.0.0.1") */
    int base_port;           /* first node link port (default 7700); nodes take consecutive ports */
    int client_port;         /* client protocol (default 7600) */
    int netflow_port;        /* collector UDP (default 2055) */
    int ipfix_port;          /* collector UDP and TCP (default 4739) */
    size_t leaves;           /* leaves per tank (default 4) */
    size_t fanout;           /* children per indexer (default 16): more leaves make a deeper tree */
    enum dip_map_strategy strategy;
    size_t leaf_memory;      /* 0: the store's default */
    size_t leaf_seal_records; /* 0: the store's default */
    uint32_t query_timeout_ms; /* 0: the access point's default */
};
void dip_map_local_options_default(struct dip_map_local_options *o);
/* Builds a map: one front node (roles collector and access) named "front",
 * and for each tank a root indexer "TANK-root" over its leaves "TANK-leaf-I"
 * (further indexers "TANK-idx-..." when leaves exceed fanout), ranges split
 * evenly (dip_map_split). With leaves == 1 the tank is a single leaf.
 * Returns DIP_OK with *out new, or DIP_EINVAL. */
int dip_map_build_local(const struct dip_map_local_options *o, struct dip_map **out, struct dip_errbuf *eb);

/* The whole key space of a tank (and the whole ID space). */
void dip_map_range_full(int tank, struct dip_map_range *r);

/* Splits r into n contiguous parts in key order, as even as the key space
 * allows: address ranges at the coarsest octet boundary that yields n parts
 * (first octet, then second, ...; all of IPv6 goes to the last part), port
 * ranges in equal runs of ports, ID ranges in equal runs of IDs. Both halves
 * of r are split (from/to by the tank's key, id_from/id_to by ID); parts
 * holds n entries. Returns DIP_OK, DIP_EINVAL when either half of r holds
 * fewer than n keys. */
int dip_map_split(int tank, const struct dip_map_range *r, size_t n, struct dip_map_range *parts,
                  struct dip_errbuf *eb);

/* Returns: the position (0..nchildren-1) of the child of indexer member mi
 * that owns record f: by f's tank key (structured) or by f->id (random). */
size_t dip_map_route(const struct dip_map *m, int mi, const struct dip_flow *f);

/* Returns: false only if no record in member mi's range can be selected by q
 * (structured: the tank key's ranges of q on this tank against the member's
 * key range; random: always true). */
bool dip_map_may_match(const struct dip_map *m, int mi, const struct dip_xpath *q);

/* Writes the member's range as text: "10.0.0.0-63.255.255.255",
 * "192.0.0.0-ffff:...", "0-16383", "id 0000000000000000-3fffffffffffffff".
 * Returns: snprintf-style length. */
int dip_map_range_text(const struct dip_map *m, int mi, char *out, size_t cap);
/* Writes the key range as the attributes from=".." to=".." (or id-from/id-to). */
int dip_map_range_attrs(const struct dip_map *m, int mi, char *out, size_t cap);

/* Returns: the node index called name, or -1. */
int dip_map_node_find(const struct dip_map *m, const char *name);
/* Returns: the member index served by node ni, or -1 (a node serves at most one member). */
int dip_map_member_of_node(const struct dip_map *m, int ni);

/* ---- additions ---- */

/* Appends the map document (as dip_map_write writes it) to out.
 * Returns DIP_OK or a dynbuf error. */
struct dip_dynbuf;
int dip_map_format(const struct dip_map *m, struct dip_dynbuf *out);
/* Returns: true when a and b describe the same map (every field, members and
 * nodes in the same order). */
bool dip_map_equal(const struct dip_map *a, const struct dip_map *b);

/* Parses a key of tank (an address for src/dst, a decimal port for
 * sport/dport). Returns DIP_OK or DIP_EINVAL. */
int dip_map_key_parse(int tank, const char *text, struct dip_map_key *out);
/* Writes a key as text (NUL-terminated; cap >= DIP_ADDR_TEXT_MAX holds any).
 * Returns: snprintf-style length. */
int dip_map_key_format(int tank, const struct dip_map_key *k, char *out, size_t cap);
/* Compares two keys of tank in document order. Returns <0, 0, >0. */
int dip_map_key_cmp(int tank, const struct dip_map_key *a, const struct dip_map_key *b);
/* Sets *next to the key right after k in document order (255.255.255.255 is
 * followed by ::, ::fffe:ffff:ffff by ::1:0:0:0 since ::ffff:0:0/96 is IPv4).
 * Returns: false when k is the last key of the space. */
bool dip_map_key_next(int tank, const struct dip_map_key *k, struct dip_map_key *next);
/* Sets *out to f's value of the tank key. */
void dip_map_flow_key(int tank, const struct dip_flow *f, struct dip_map_key *out);
/* Returns: true when member mi's range holds f (by key, or by f->id under
 * the random strategy). */
bool dip_map_owns(const struct dip_map *m, int mi, const struct dip_flow *f);

#endif
