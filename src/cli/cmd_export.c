/* cmd_export.c - `dipstorage export`: the records a query selects in a
 * storage network, as a <flows> document or through an XSLT stylesheet
 * (ARCHITECTURE 5). */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "common/log.h"

static const char usage_text[] =
    "usage: dipstorage export [-c HOST:PORT] [--tls DIR] [-t STYLESHEET] [-o FILE] [XPATH]\n"
    "\n"
    "Writes the flow records an XPath query selects in a storage network (default:\n"
    "all of them, //flow) as a <flows> document, or through an XSLT stylesheet:\n"
    "csv and html ship in tools/xslt/ (a bare name is looked up there).\n"
    "The query must select flow elements; the records come in the key order of the\n"
    "tank that answered.\n"
    "\n"
    "options:\n"
    "  -c, --connect A      the access point, HOST:PORT (default 127.0.0.1:7600)\n"
    "      --tls DIR        TLS with DIR/ca.pem, DIR/client.pem, DIR/client.key\n"
    "      --timeout S      give up after S seconds (default 60)\n"
    "  -t, --stylesheet X   export through this XSLT stylesheet\n"
    "  -o, --output FILE    write to FILE instead of standard output\n"
    "\n"
    "exit status: 0 success, 1 failure (the error on standard error), 2 usage,\n"
    "3 partial (some ranges did not answer; the export holds the rest).\n";

int dip_cmd_export(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "connect", required_argument, 0, 'c' }, { "tls", required_argument, 0, 'T' },
        { "timeout", required_argument, 0, 'W' }, { "stylesheet", required_argument, 0, 't' },
        { "output", required_argument, 0, 'o' },  { "help", no_argument, 0, 'h' },
        { 0, 0, 0, 0 },
    };
    const char *connect = "127.0.0.1:7600", *tls = NULL, *stylesheet = NULL, *output = NULL;
    double timeout = 60;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:t:o:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'c': connect = optarg; break;
        case 'T': tls = optarg; break;
        case 'W': timeout = atof(optarg); break;
        case 't': stylesheet = optarg; break;
        case 'o': output = optarg; break;
        case 'h': fputs(usage_text, stdout); return DIP_EXIT_OK;
        default: fputs(usage_text, stderr); return DIP_EXIT_USAGE;
        }
    }
    if (optind < argc - 1) {
        fputs(usage_text, stderr);
        return DIP_EXIT_USAGE;
    }
    const char *expr = optind < argc ? argv[optind] : "//flow";
    struct dip_dynbuf reply;
    dip_dynbuf_init(&reply, (size_t)1 << 31);
    int st = dip_cli_remote_query(connect, tls, expr, timeout, &reply);
    if (st) {
        dip_dynbuf_free(&reply);
        return st;
    }
    dip_dynbuf_add(&reply, "", 1);
    const char *doc = (const char *)reply.data;
    const char *err = strstr(doc, "<error ");
    if (err || !strstr(doc, "<result ")) {
        const char *gt = err ? strchr(err, '>') : NULL;
        const char *end = gt ? strstr(gt, "</error>") : NULL;
        if (gt && end) dip_error("%.*s", (int)(end - gt - 1), gt + 1);
        else dip_error("%s answered no result", connect);
        dip_dynbuf_free(&reply);
        return DIP_EXIT_FAIL;
    }
    if (!strstr(doc, "shape=\"flows\"")) {
        dip_error("export needs an expression selecting flow elements (such as //flow[...])");
        dip_dynbuf_free(&reply);
        return DIP_EXIT_USAGE;
    }
    bool partial = strstr(doc, "complete=\"false\"") != NULL;
    FILE *final = output ? fopen(output, "w") : stdout;
    if (!final) {
        dip_error("cannot create %s: %s", output, strerror(errno));
        dip_dynbuf_free(&reply);
        return DIP_EXIT_FAIL;
    }
    char tmp[] = "/tmp/dipstorage-export-XXXXXX";
    FILE *out = final;
    if (stylesheet) {
        int fd = mkstemp(tmp);
        out = fd >= 0 ? fdopen(fd, "w+") : NULL;
        if (!out) {
            dip_error("cannot create a temporary file: %s", strerror(errno));
            if (final != stdout) fclose(final);
            dip_dynbuf_free(&reply);
            return DIP_EXIT_FAIL;
        }
    }
    /* The result's children are one per line: keep the flow elements. */
    fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<flows>\n", out);
    uint64_t n = 0;
    for (const char *p = doc; (p = strstr(p, "\n<flow ")); p++) {
        const char *e = strchr(p + 1, '\n');
        if (!e) break;
        fwrite(p + 1, 1, (size_t)(e - p), out);
        n++;
    }
    fputs("</flows>\n", out);
    int status = fflush(out) == 0 && !ferror(out) ? DIP_EXIT_OK : DIP_EXIT_FAIL;
    if (status) dip_error("write failed: %s", strerror(errno));
    if (stylesheet) {
        fclose(out);
        if (status == DIP_EXIT_OK) status = dip_cli_transform(stylesheet, tmp, final);
        unlink(tmp);
    }
    if (final != stdout) fclose(final);
    dip_dynbuf_free(&reply);
    if (partial && status == DIP_EXIT_OK) {
        dip_warn("partial export: some key ranges did not answer (%llu records exported)", (unsigned long long)n);
        status = DIP_EXIT_PARTIAL;
    }
    return status;
}
