/* test_route_authz.c - who may send what to a node (src/route/authz.h), on
 * the map `dipstorage up --leaves 2` writes: a query client's certificate
 * may ask for status and nothing else; records enter a tank only at its root
 * from a collector speaking for itself, and below only from the parent; a
 * name held under another role is refused; a batch far ahead of its origin,
 * or holding records outside the member's range, is refused. */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <string.h>

#include "net/net.h"
#include "route/authz.h"
#include "route/map.h"
#include "route/proto.h"

static struct dip_map *local_map(size_t leaves)
{
    struct dip_map_local_options o;
    dip_map_local_options_default(&o);
    o.leaves = leaves;
    struct dip_map *m = NULL;
    struct dip_errbuf eb;
    CU_ASSERT_EQUAL(dip_map_build_local(&o, &m, &eb), DIP_OK);
    return m;
}

static int node(const struct dip_map *m, const char *name)
{
    int ni = dip_map_node_find(m, name);
    CU_ASSERT(ni >= 0);
    return ni;
}

static int judge(const struct dip_map *m, const char *self, const char *peer, const char *role, uint8_t type)
{
    struct dip_authz_peer p = { peer, role };
    char why[400] = "";
    int rc = dip_authz_frame(m, node(m, self), &p, type, why, sizeof why);
    CU_ASSERT(rc == DIP_OK || strstr(why, "refused") != NULL);
    return rc;
}

static void test_certificates_name_the_role_the_map_gives(void)
{
    struct dip_map *m = local_map(2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_STRING_EQUAL(dip_authz_node_role(m, node(m, "src-leaf-0")), DIP_NET_ROLE_LEAF);
    CU_ASSERT_STRING_EQUAL(dip_authz_node_role(m, node(m, "src-root")), DIP_NET_ROLE_INDEXER);
    CU_ASSERT_STRING_EQUAL(dip_authz_node_role(m, node(m, "front")), DIP_NET_ROLE_FRONT);
    dip_map_free(m);
}

static void test_a_client_certificate_may_ask_status_and_nothing_else(void)
{
    struct dip_map *m = local_map(2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    const char *targets[] = { "src-leaf-0", "src-root", "dport-leaf-1", "front" };
    for (size_t i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL(judge(m, targets[i], "client", DIP_NET_ROLE_CLIENT, DIP_MSG_STATUS), DIP_OK);
        CU_ASSERT_EQUAL(judge(m, targets[i], "client", DIP_NET_ROLE_CLIENT, DIP_MSG_PING), DIP_OK);
        CU_ASSERT_EQUAL(judge(m, targets[i], "client", DIP_NET_ROLE_CLIENT, DIP_MSG_INGEST), DIP_EPERM);
        CU_ASSERT_EQUAL(judge(m, targets[i], "client", DIP_NET_ROLE_CLIENT, DIP_MSG_QUERY), DIP_EPERM);
    }
    dip_map_free(m);
}

static void test_records_enter_at_the_root_from_a_collector_and_below_from_the_parent(void)
{
    struct dip_map *m = local_map(2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(judge(m, "src-root", "front", DIP_NET_ROLE_FRONT, DIP_MSG_INGEST), DIP_OK);
    CU_ASSERT_EQUAL(judge(m, "src-leaf-0", "src-root", DIP_NET_ROLE_INDEXER, DIP_MSG_INGEST), DIP_OK);
    /* the front skips no hop, another tank's root is no parent, a leaf never sends */
    CU_ASSERT_EQUAL(judge(m, "src-leaf-0", "front", DIP_NET_ROLE_FRONT, DIP_MSG_INGEST), DIP_EPERM);
    CU_ASSERT_EQUAL(judge(m, "src-leaf-0", "dst-root", DIP_NET_ROLE_INDEXER, DIP_MSG_INGEST), DIP_EPERM);
    CU_ASSERT_EQUAL(judge(m, "src-leaf-0", "src-leaf-1", DIP_NET_ROLE_LEAF, DIP_MSG_INGEST), DIP_EPERM);
    CU_ASSERT_EQUAL(judge(m, "src-root", "src-leaf-1", DIP_NET_ROLE_LEAF, DIP_MSG_INGEST), DIP_EPERM);
    /* the front's node holds no tank: nothing is stored there */
    CU_ASSERT_EQUAL(judge(m, "front", "src-root", DIP_NET_ROLE_INDEXER, DIP_MSG_INGEST), DIP_EPERM);
    dip_map_free(m);

    m = local_map(1); /* a tank of one leaf: the leaf is the root */
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(judge(m, "src-leaf-0", "front", DIP_NET_ROLE_FRONT, DIP_MSG_INGEST), DIP_OK);
    CU_ASSERT_EQUAL(judge(m, "src-leaf-0", "client", DIP_NET_ROLE_CLIENT, DIP_MSG_INGEST), DIP_EPERM);
    dip_map_free(m);
}

static void test_queries_come_from_the_access_point_or_the_parent(void)
{
    struct dip_map *m = local_map(2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_EQUAL(judge(m, "src-root", "front", DIP_NET_ROLE_FRONT, DIP_MSG_QUERY), DIP_OK);
    CU_ASSERT_EQUAL(judge(m, "src-leaf-1", "front", DIP_NET_ROLE_FRONT, DIP_MSG_QUERY), DIP_OK); /* direct */
    CU_ASSERT_EQUAL(judge(m, "src-leaf-1", "src-root", DIP_NET_ROLE_INDEXER, DIP_MSG_QUERY), DIP_OK);
    CU_ASSERT_EQUAL(judge(m, "src-leaf-1", "dst-root", DIP_NET_ROLE_INDEXER, DIP_MSG_QUERY), DIP_EPERM);
    CU_ASSERT_EQUAL(judge(m, "src-leaf-1", "src-leaf-0", DIP_NET_ROLE_LEAF, DIP_MSG_QUERY), DIP_EPERM);
    dip_map_free(m);
}

static void test_a_name_under_another_role_or_no_role_is_refused(void)
{
    struct dip_map *m = local_map(2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    /* a client certificate issued with a node's name, a node without a role */
    CU_ASSERT_EQUAL(judge(m, "src-root", "front", DIP_NET_ROLE_CLIENT, DIP_MSG_INGEST), DIP_EPERM);
    CU_ASSERT_EQUAL(judge(m, "src-leaf-0", "src-root", DIP_NET_ROLE_FRONT, DIP_MSG_INGEST), DIP_EPERM);
    CU_ASSERT_EQUAL(judge(m, "src-leaf-0", "src-root", "", DIP_MSG_STATUS), DIP_EPERM);
    CU_ASSERT_EQUAL(judge(m, "src-leaf-0", "src-root", "root", DIP_MSG_PING), DIP_EPERM);
    dip_map_free(m);
}

static void test_an_origin_is_the_collector_itself_at_the_root(void)
{
    struct dip_map *m = local_map(2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    struct dip_authz_peer front = { "front", DIP_NET_ROLE_FRONT }, root = { "src-root", DIP_NET_ROLE_INDEXER };
    char why[400];
    CU_ASSERT_EQUAL(dip_authz_origin(m, node(m, "src-root"), &front, "front", why, sizeof why), DIP_OK);
    CU_ASSERT_EQUAL(dip_authz_origin(m, node(m, "src-root"), &front, "other", why, sizeof why), DIP_EPERM);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "other"));
    CU_ASSERT_EQUAL(dip_authz_origin(m, node(m, "src-leaf-0"), &root, "front", why, sizeof why), DIP_OK);
    CU_ASSERT_EQUAL(dip_authz_origin(m, node(m, "src-leaf-0"), &root, "src-leaf-1", why, sizeof why), DIP_EPERM);
    CU_ASSERT_EQUAL(dip_authz_origin(m, node(m, "src-leaf-0"), &root, "nobody", why, sizeof why), DIP_EPERM);
    dip_map_free(m);
}

static void test_a_seq_far_past_its_origin_is_implausible(void)
{
    CU_ASSERT_TRUE(dip_authz_seq_plausible(0, 100000000));
    CU_ASSERT_TRUE(dip_authz_seq_plausible(100, 1));
    CU_ASSERT_TRUE(dip_authz_seq_plausible(100, 100 + DIP_AUTHZ_SEQ_LEAP));
    CU_ASSERT_FALSE(dip_authz_seq_plausible(100, 101 + DIP_AUTHZ_SEQ_LEAP));
    CU_ASSERT_FALSE(dip_authz_seq_plausible(1, 100000000));
}

static void test_records_outside_the_members_range_are_counted(void)
{
    struct dip_map *m = local_map(2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    int leaf0 = dip_map_member_of_node(m, node(m, "src-leaf-0"));
    int leaf1 = dip_map_member_of_node(m, node(m, "src-leaf-1"));
    struct dip_flow f[3];
    memset(f, 0, sizeof f);
    const char *src[] = { "10.0.0.1", "200.0.0.1", "2001:db8::1" };
    for (int i = 0; i < 3; i++) CU_ASSERT_EQUAL(dip_addr_parse(src[i], strlen(src[i]), &f[i].src), DIP_OK);
    size_t first = 0;
    CU_ASSERT_EQUAL(dip_authz_records_outside(m, leaf0, f, 3, &first), 2);
    CU_ASSERT_EQUAL(first, 1);
    CU_ASSERT_EQUAL(dip_authz_records_outside(m, leaf1, f, 3, &first), 1);
    CU_ASSERT_EQUAL(first, 0);
    CU_ASSERT_EQUAL(dip_authz_records_outside(m, leaf1, f + 1, 2, &first), 0);
    CU_ASSERT_EQUAL(first, 2);
    char why[400];
    CU_ASSERT_EQUAL(dip_authz_refuse_records(m, leaf0, f, 3, 2, 1, why, sizeof why), DIP_EPERM);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "2 of 3 records"));
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "200.0.0.1"));
    dip_map_free(m);
}

int dip_suite_route_authz(void)
{
    CU_pSuite s = CU_add_suite("route_authz", NULL, NULL);
    if (!s) return -1;
    CU_add_test(s, "certificates_name_the_role_the_map_gives", test_certificates_name_the_role_the_map_gives);
    CU_add_test(s, "a_client_certificate_may_ask_status_and_nothing_else",
                test_a_client_certificate_may_ask_status_and_nothing_else);
    CU_add_test(s, "records_enter_at_the_root_from_a_collector_and_below_from_the_parent",
                test_records_enter_at_the_root_from_a_collector_and_below_from_the_parent);
    CU_add_test(s, "queries_come_from_the_access_point_or_the_parent",
                test_queries_come_from_the_access_point_or_the_parent);
    CU_add_test(s, "a_name_under_another_role_or_no_role_is_refused",
                test_a_name_under_another_role_or_no_role_is_refused);
    CU_add_test(s, "an_origin_is_the_collector_itself_at_the_root", test_an_origin_is_the_collector_itself_at_the_root);
    CU_add_test(s, "a_seq_far_past_its_origin_is_implausible", test_a_seq_far_past_its_origin_is_implausible);
    CU_add_test(s, "records_outside_the_members_range_are_counted",
                test_records_outside_the_members_range_are_counted);
    return 0;
}
