/* cmd_query.c - `dipstorage query`: asks a storage network's access point
 * (the client protocol), or acts as the access point itself over a local
 * data folder holding one leaf store per tank (src/, dst/, sport/, dport/):
 * the analyser picks the tank whose key the query confines most; when that
 * tank's store is missing another tank answers (the paper's redundancy). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "common/log.h"
#include "common/paths.h"
#include "result_doc.h"
#include "store/store.h"
#include "xpath/xpath.h"

static const char usage_text[] =
    "usage: dipstorage query [-c HOST:PORT] [--tls DIR] [--timeout S] [-o FILE] XPATH\n"
    "       dipstorage query --data DIR [--tank KEY] [--explain] [-o FILE] XPATH\n"
    "       dipstorage query [-c HOST:PORT | --data DIR] --named NAME\n"
    "       dipstorage query --list\n"
    "\n"
    "Answers an XPath 1.0 query over the flow records of a storage network (sent to\n"
    "its access point, by default 127.0.0.1:7600 as `dipstorage up` starts it) or,\n"
    "with --data, of a data folder holding one\n"
    "leaf store per tank (DIR/src, DIR/dst, DIR/sport, DIR/dport, as `make demo`\n"
    "writes them). The query analyser picks the tank whose key the query confines\n"
    "to the smallest share of its space; a query that names a tank\n"
    "(/tank[@key='dport']/...) goes to that tank. When the chosen tank's store is\n"
    "missing, another tank answers: node-sets of flows and numbers are the same on\n"
    "every tank, only the order of flows (the answering tank's key order) differs.\n"
    "The result is a <result> document on standard output; errors are <error>\n"
    "documents.\n"
    "\n"
    "options:\n"
    "  -c, --connect A  the access point, HOST:PORT (default 127.0.0.1:7600); plain\n"
    "                   TCP on loopback, else TLS\n"
    "      --tls DIR    use TLS with DIR/ca.pem, DIR/client.pem, DIR/client.key (as\n"
    "                   `dipstorage up` makes them in DATA/tls)\n"
    "      --timeout S  give up after S seconds (default 30)\n"
    "  -d, --data DIR   answer from the local data folder DIR instead\n"
    "  -n, --named NAME run a named query of the catalogue (xpath/queries/catalogue.xml)\n"
    "  -l, --list       list the named queries with their descriptions\n"
    "  -t, --tank KEY   ask this tank (src, dst, sport, dport) instead of the analyser's choice\n"
    "  -e, --explain    print the analysis (shape, key ranges per tank) on standard error\n"
    "  -o, --output F   write the result to F\n"
    "  -h, --help       this text\n"
    "\n"
    "exit status: 0 success, 1 failure, 2 usage error, 3 partial result (a part of\n"
    "the network did not answer in time: the result lists the missing ranges).\n"
    "\n"
    "examples:\n"
    "  dipstorage query \"//flow[@src='10.0.0.1']\"          # the src tank answers\n"
    "  dipstorage query \"count(//flow[@dport=22])\"         # the dport tank answers\n"
    "  dipstorage query --named subnet-window\n";

static int load_catalogue(struct dip_xpath_catalogue *cat)
{
    char dir[4096];
    struct dip_errbuf eb = { { 0 } };
    if (dip_path_find("xpath/queries/catalogue.xml", dir, sizeof dir, &eb)) {
        dip_error("%s", eb.msg);
        return -1;
    }
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    if (dip_xpath_catalogue_load(dir, cat, &eb)) {
        dip_error("%s", eb.msg);
        return -1;
    }
    return 0;
}

static int list_catalogue(void)
{
    struct dip_xpath_catalogue cat;
    if (load_catalogue(&cat)) return DIP_EXIT_FAIL;
    for (size_t i = 0; i < cat.n; i++)
        printf("%-18s %-6s %s\n    %s\n", cat.queries[i].name, cat.queries[i].tank, cat.queries[i].expression,
               cat.queries[i].description);
    dip_xpath_catalogue_free(&cat);
    return DIP_EXIT_OK;
}

/* The tanks to try, best first: the named or analysed tank, then the others. */
static int tank_order(const struct dip_xpath *q, int forced, int order[DIP_TANK_KEYS], bool *only_first)
{
    double share = 1;
    bool tie = false;
    int named = dip_xpath_named_tank(q);
    int best = forced >= 0 ? forced : named >= 0 ? named : dip_xpath_best_tank(q, &share, &tie);
    *only_first = forced >= 0 || named >= 0; /* another tank would not hold the named tree */
    int n = 0;
    order[n++] = best;
    for (int t = 0; t < DIP_TANK_KEYS; t++)
        if (t != best) order[n++] = t;
    return n;
}

/* Asks an access point; prints its document; the exit status follows it. */
static int remote(const char *connect, const char *tls, const char *expr, double timeout, const char *output)
{
    struct dip_dynbuf reply;
    dip_dynbuf_init(&reply, (size_t)1 << 31);
    int st = dip_cli_remote_query(connect, tls, expr, timeout, &reply);
    if (st == DIP_EXIT_OK) {
        FILE *out = output ? fopen(output, "w") : stdout;
        if (!out) {
            dip_error("cannot create %s", output);
            st = DIP_EXIT_FAIL;
        } else {
            if (reply.len) fwrite(reply.data, 1, reply.len, out);
            if (out != stdout) fclose(out);
            const char *doc = reply.len ? (const char *)reply.data : "";
            if (!reply.len || strstr(doc, "<error ")) st = DIP_EXIT_FAIL;
            else if (strstr(doc, "complete=\"false\"")) st = DIP_EXIT_PARTIAL;
            if (!reply.len) dip_error("%s closed the connection without an answer", connect);
        }
    }
    dip_dynbuf_free(&reply);
    return st;
}

int dip_cmd_query(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "data", required_argument, 0, 'd' }, { "named", required_argument, 0, 'n' },
        { "list", no_argument, 0, 'l' },       { "tank", required_argument, 0, 't' },
        { "explain", no_argument, 0, 'e' },    { "output", required_argument, 0, 'o' },
        { "help", no_argument, 0, 'h' },       { "connect", required_argument, 0, 'c' },
        { "tls", required_argument, 0, 'T' },  { "timeout", required_argument, 0, 'W' },
        { 0, 0, 0, 0 },
    };
    const char *data = NULL, *named = NULL, *output = NULL, *connect = NULL, *tls = NULL;
    double timeout = 30;
    bool explain = false;
    int forced = -1, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "d:n:lt:eo:hc:", longopts, NULL)) != -1) {
        switch (c) {
        case 'd': data = optarg; break;
        case 'c': connect = optarg; break;
        case 'T': tls = optarg; break;
        case 'W': timeout = atof(optarg); break;
        case 'n': named = optarg; break;
        case 'l': return list_catalogue();
        case 't': {
            enum dip_tank_key k;
            if (dip_tank_key_parse(optarg, &k)) { fprintf(stderr, "query: bad tank '%s'\n", optarg); return DIP_EXIT_USAGE; }
            forced = (int)k;
            break;
        }
        case 'e': explain = true; break;
        case 'o': output = optarg; break;
        case 'h': fputs(usage_text, stdout); return DIP_EXIT_OK;
        default: fputs(usage_text, stderr); return DIP_EXIT_USAGE;
        }
    }
    struct dip_xpath_catalogue cat = { 0 };
    const char *expr = NULL;
    if (named) {
        if (optind != argc || load_catalogue(&cat)) { fputs(usage_text, stderr); return DIP_EXIT_USAGE; }
        const struct dip_xpath_query_info *qi = dip_xpath_catalogue_find(&cat, named);
        if (!qi) {
            fprintf(stderr, "query: no named query '%s' (see dipstorage query --list)\n", named);
            dip_xpath_catalogue_free(&cat);
            return DIP_EXIT_USAGE;
        }
        expr = qi->expression;
    } else if (optind == argc - 1) {
        expr = argv[optind];
    } else {
        fputs(usage_text, stderr);
        return DIP_EXIT_USAGE;
    }
    if (!data) {
        if (forced >= 0) {
            fprintf(stderr, "query: --tank works with --data only (an access point picks its tank)\n");
            dip_xpath_catalogue_free(&cat);
            return DIP_EXIT_USAGE;
        }
        int st = remote(connect ? connect : "127.0.0.1:7600", tls, expr, timeout, output);
        dip_xpath_catalogue_free(&cat);
        return st;
    }
    FILE *out = output ? fopen(output, "w") : stdout;
    if (!out) { dip_error("cannot create %s", output); dip_xpath_catalogue_free(&cat); return DIP_EXIT_FAIL; }
    int status = DIP_EXIT_FAIL;
    struct dip_xpath *q = NULL;
    struct dip_xpath_error xe = { 0 };
    if (dip_xpath_compile(expr, strlen(expr), &q, &xe)) {
        char msg[400];
        snprintf(msg, sizeof msg, "XPath error at %s", xe.message);
        dip_error_doc_write(out, DIP_ESYNTAX, xe.column, msg);
        dip_error("%s", msg);
        goto out;
    }
    if (explain) {
        char text[8192];
        dip_xpath_explain(q, text, sizeof text);
        fprintf(stderr, "%s\n", text);
    }
    int order[DIP_TANK_KEYS];
    bool only_first;
    int n = tank_order(q, forced, order, &only_first);
    for (int i = 0; i < (only_first ? 1 : n); i++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/%s", data, dip_tank_key_name((enum dip_tank_key)order[i]));
        struct dip_store *s;
        struct dip_errbuf eb = { { 0 } };
        if (dip_store_open(dir, -1, NULL, &s, NULL, &eb)) {
            dip_warn("tank %s cannot answer: %s", dip_tank_key_name((enum dip_tank_key)order[i]), eb.msg);
            continue;
        }
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        struct dip_store_answer ans;
        size_t col = 0;
        int rc = dip_store_query(s, expr, strlen(expr), &ans, &col, &eb);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
        if (rc) {
            dip_error_doc_write(out, rc, col, eb.msg);
            dip_error("%s", eb.msg);
        } else {
            dip_result_doc_write(out, &ans, dip_tank_key_name(dip_store_key(s)), ms);
            dip_store_answer_free(&ans);
            status = DIP_EXIT_OK;
        }
        dip_store_close(s);
        goto out;
    }
    dip_error_doc_write(out, DIP_ENOTFOUND, 0, "no tank of the data folder can answer this query");
    dip_error("no tank under %s can answer this query", data);
out:
    dip_xpath_free(q);
    dip_xpath_catalogue_free(&cat);
    if (out != stdout) fclose(out);
    return status;
}
