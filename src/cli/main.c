/* main.c - the `dipstorage` program: dispatches to git-style subcommands. */
#include <malloc.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "common/log.h"

struct subcommand {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct subcommand subcommands[] = {
    { "up", dip_cmd_up, "start a storage network on this host (every tank, its leaves and indexers, the front)" },
    { "down", dip_cmd_down, "stop the local storage network" },
    { "status", dip_cmd_status, "every tank's tree: nodes, key ranges, record counts, liveness" },
    { "export", dip_cmd_export, "write the records a query selects as <flows>, CSV or HTML (XSLT)" },
    { "node", dip_cmd_node, "run one node of a storage network (what `up` starts)" },
    { "collect", dip_cmd_collect, "a flow collector (NetFlow v5/v9, IPFIX over UDP/TCP, IPFIX files) into local stores" },
    { "query", dip_cmd_query, "answer an XPath query from the tank that suits it best" },
    { "store", dip_cmd_store, "a leaf's local flow store: ingest, query, export, stats" },
    { "validate", dip_cmd_validate, "validate store files or a data directory against dipstorage.xsd" },
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: dipstorage COMMAND [ARGS...]\n"
            "\n"
            "dipstorage keeps IP flow records (NetFlow v5/v9, IPFIX) as XML trees indexed\n"
            "by source/destination address and port, and answers XPath queries over them.\n"
            "\n"
            "commands:\n");
    for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
        fprintf(out, "  %-10s %s\n", subcommands[i].name, subcommands[i].summary);
    fprintf(out,
            "\n"
            "Run 'dipstorage COMMAND --help' for a command's options.\n"
            "Exit status: 0 success, 1 failure, 2 usage error, 3 partial query result.\n");
}

int dip_cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) break;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    /* Trees of flow records are built and freed all the time: keep freed
     * memory for reuse instead of returning it to the kernel and faulting it
     * in again (a first touch of a page costs ~10 us on these machines).
     * 32 MiB is the largest mmap threshold glibc accepts on 64-bit hosts
     * (half its arena heap size). Asked for 64 MiB, it refused, and setting
     * the trim threshold had also fixed the mmap threshold at its default
     * 128 KiB: every chunk text, inflater and answer of a query was mapped
     * and unmapped again, ~170 page faults per cold point query at a leaf. */
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    if (argc < 2) {
        usage(stderr);
        return DIP_EXIT_USAGE;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return DIP_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++) {
        if (strcmp(argv[1], subcommands[i].name) == 0) {
            dip_log_set_prefix(subcommands[i].name);
            return subcommands[i].run(argc - 1, argv + 1);
        }
    }
    fprintf(stderr, "dipstorage: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return DIP_EXIT_USAGE;
}
