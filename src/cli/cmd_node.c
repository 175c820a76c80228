/* cmd_node.c - `dipstorage node`: runs one node of a storage network, with
 * the role the cluster map gives it (leaf, indexer, or the front: collector,
 * replicator and access point), until SIGTERM or SIGINT. */
#include <getopt.h>
#include <libgen.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "access/access.h"
#include "cli.h"
#include "common/log.h"
#include "common/xmlsafe.h"
#include "route/node.h"

static const char usage_text[] =
    "usage: dipstorage node --config CLUSTER.xml --name NAME [--dir DIR] [--tls DIR] [--verbose]\n"
    "\n"
    "Runs the node NAME of the cluster map CLUSTER.xml (schema/cluster.xsd) in the\n"
    "foreground until SIGTERM or SIGINT. Its role comes from the map: a leaf keeps a\n"
    "store of its tank key, an indexer routes records and queries to its children,\n"
    "the front node (roles collector and access) decodes NetFlow/IPFIX, spools every\n"
    "record for every tank and answers client queries. All node links are TLS 1.3\n"
    "with certificates of the cluster's CA. `dipstorage up` starts every node of a\n"
    "local cluster this way.\n"
    "\n"
    "options:\n"
    "  -c, --config FILE  the cluster map\n"
    "  -n, --name NAME    this node's id in the map\n"
    "  -d, --dir DIR      data folder (default: DIR-OF-MAP/nodes/NAME)\n"
    "  -t, --tls DIR      ca.pem, NAME.pem and NAME.key (default: DIR-OF-MAP/tls)\n"
    "  -v, --verbose      log debug messages too\n"
    "\n"
    "exit status: 0 stopped by a signal, 1 failed to start or a fatal error, 2 usage.\n";

static void node_log(int level, const char *msg) { dip_log((enum dip_log_level)level, "%s", msg); }

struct run {
    uv_loop_t *loop;
    struct dip_node *node;
    struct dip_front *front;
    uv_signal_t sigterm, sigint;
    bool stopping;
};

static void stop(uv_signal_t *s, int signum)
{
    struct run *r = s->data;
    if (r->stopping) return;
    r->stopping = true;
    dip_info("signal %d: stopping", signum);
    if (r->front) dip_front_close(r->front);
    dip_node_close(r->node);
    uv_close((uv_handle_t *)&r->sigterm, NULL);
    uv_close((uv_handle_t *)&r->sigint, NULL);
}

int dip_cmd_node(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "config", required_argument, 0, 'c' }, { "name", required_argument, 0, 'n' },
        { "dir", required_argument, 0, 'd' },    { "tls", required_argument, 0, 't' },
        { "verbose", no_argument, 0, 'v' },      { "help", no_argument, 0, 'h' },
        { 0, 0, 0, 0 },
    };
    const char *config = NULL, *name = NULL, *dir = NULL, *tls = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:n:d:t:vh", longopts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 'n': name = optarg; break;
        case 'd': dir = optarg; break;
        case 't': tls = optarg; break;
        case 'v': dip_log_set_level(DIP_LOG_DEBUG); break;
        case 'h': fputs(usage_text, stdout); return DIP_EXIT_OK;
        default: fputs(usage_text, stderr); return DIP_EXIT_USAGE;
        }
    }
    if (!config || !name || optind != argc) {
        fputs(usage_text, stderr);
        return DIP_EXIT_USAGE;
    }
#ifdef __GLIBC__
    /* One malloc arena, not eight per core: the thread pool's workers each
     * took one, and the memory a seal freed in them stayed with the process
     * (a leaf with a 192 MiB budget held ~490 MB at 20M records). With a
     * second arena, made of 64 MiB heaps that glibc unmaps once they are
     * free, a query's buffers still came back as fresh pages: 9,000-12,000
     * page faults per 1,000 point queries at a leaf, 27 with one arena, and
     * p99 of the same 1,000 queries 39-47 ms against 28-29 ms. */
    mallopt(M_ARENA_MAX, 1);
#endif
    char base[4096], dirbuf[4200], tlsbuf[4200];
    snprintf(base, sizeof base, "%s", config);
    char *top = dirname(base);
    if (!dir) {
        snprintf(dirbuf, sizeof dirbuf, "%s/nodes/%s", top, name);
        dir = dirbuf;
    }
    if (!tls) {
        snprintf(tlsbuf, sizeof tlsbuf, "%s/tls", top);
        tls = tlsbuf;
    }
    char prefix[128];
    snprintf(prefix, sizeof prefix, "node %s", name);
    dip_log_set_prefix(prefix);
    signal(SIGPIPE, SIG_IGN);
    dip_xml_init();

    struct run r = { 0 };
    r.loop = uv_default_loop();
    struct dip_node_options o = { .map_path = config, .name = name, .dir = dir, .tls_dir = tls, .log = node_log };
    struct dip_errbuf eb = { { 0 } };
    if (dip_node_open(r.loop, &o, &r.node, &eb)) {
        dip_error("%s", eb.msg);
        return DIP_EXIT_FAIL;
    }
    const struct dip_map *m = dip_node_map(r.node);
    int self = dip_node_self(r.node);
    if (m->nodes[self].roles & (DIP_ROLE_COLLECTOR | DIP_ROLE_ACCESS)) {
        if (dip_front_open(r.node, &r.front, &eb)) {
            dip_error("%s", eb.msg);
            dip_node_close(r.node);
            uv_run(r.loop, UV_RUN_DEFAULT);
            dip_node_free(r.node);
            return DIP_EXIT_FAIL;
        }
    }
    if (dip_node_listen(r.node, &eb)) {
        dip_error("%s", eb.msg);
        if (r.front) dip_front_close(r.front);
        dip_node_close(r.node);
        uv_run(r.loop, UV_RUN_DEFAULT);
        dip_node_free(r.node);
        return DIP_EXIT_FAIL;
    }
    uv_signal_init(r.loop, &r.sigterm);
    uv_signal_init(r.loop, &r.sigint);
    r.sigterm.data = r.sigint.data = &r;
    uv_signal_start(&r.sigterm, stop, SIGTERM);
    uv_signal_start(&r.sigint, stop, SIGINT);
    dip_info("up at %s:%d (map %s, data %s)", m->nodes[self].host, m->nodes[self].port, config, dir);
    uv_run(r.loop, UV_RUN_DEFAULT);
    dip_node_free(r.node);
    dip_info("stopped");
    return DIP_EXIT_OK;
}
