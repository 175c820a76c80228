/* cmd_store.c - `dipstorage store`: one leaf store on the local disk:
 * ingest, query, export, stats, seal, compact. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libxslt/transform.h>
#include <libxslt/xsltutils.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "common/log.h"
#include "common/paths.h"
#include "common/xmlsafe.h"
#include "result_doc.h"
#include "store/store.h"

static const char usage_text[] =
    "usage: dipstorage store ACTION --dir DIR [OPTIONS] [ARGS]\n"
    "\n"
    "A leaf store keeps flow records of one tank key (src, dst, sport or dport) in DIR:\n"
    "a write-ahead log, sealed gzip XML segments in the tank's tree shape (each\n"
    "seg-N.xml.gz with its chunk index seg-N.chunks.xml), and MANIFEST.xml listing\n"
    "them. Queries are XPath 1.0 over the logical document <tank key=\"...\">.\n"
    "\n"
    "actions:\n"
    "  ingest [FILE|-]     store the flows of FILE (default: standard input): an XML\n"
    "                      document holding <flow> elements (a <flows> export, a <tank>\n"
    "                      document) or concatenated binary batches. Every batch is on\n"
    "                      disk (fsync'd) before the next is read; on malformed input\n"
    "                      the batch holding it is not stored and the error names the\n"
    "                      line and column. At the end the rest is sealed into a\n"
    "                      segment and the merges that are due run (see compact);\n"
    "                      the insert and the merges are timed apart.\n"
    "  query XPATH         print the <result> document of XPATH over the store\n"
    "  export [XPATH]      write the matching flows (default: all) as a <flows> document;\n"
    "                      --tank writes the whole logical <tank> document instead\n"
    "  stats               print record, segment and disk figures\n"
    "  seal                seal the write-ahead log into a segment now\n"
    "  compact             merge segments: runs of small ones, and every 8 consecutive\n"
    "                      segments of one size tier into one of the next (a point\n"
    "                      query reads a chunk of every segment: fewer is faster)\n"
    "\n"
    "options:\n"
    "  -d, --dir DIR         the store's folder (required)\n"
    "  -k, --key KEY         tank key when creating a store: src, dst, sport, dport\n"
    "                        (default src; an existing store keeps its own)\n"
    "  -m, --memory SIZE     memory budget, e.g. 512M, 2G (default 1G)\n"
    "  -b, --batch N         records per ingest batch (default 4096)\n"
    "  -p, --progress        report ingest progress every second on standard error\n"
    "  -a, --ack-log FILE    after each stored batch, append the running count of\n"
    "                        stored records to FILE (for crash tests and resumable loads)\n"
    "  -t, --stylesheet XSL  export through an XSLT stylesheet (csv.xsl, html.xsl ship in\n"
    "                        tools/xslt/; a bare name is looked up there)\n"
    "  -o, --output FILE     write the export or result to FILE instead of standard output\n"
    "      --tank            export the logical tank document\n"
    "      --seal-records N  seal the active part at N records (default: the memory budget\n"
    "                        / 1 KiB, at least 262144)\n"
    "      --no-seal         leave the records of an ingest's last part in the WAL (by\n"
    "                        default ingest seals them at the end and merges segments)\n"
    "      --gzip-level N    compress segments with zlib at level N, 1-9, instead of\n"
    "                        ISA-L igzip (by default level 2 when sealing, level 3\n"
    "                        when merging); level 4 takes ~15% less disk for ~2x\n"
    "                        the CPU of an insert\n"
    "      --fast-deflate    merge segments at igzip level 2 too: ~30% less CPU a\n"
    "                        merge for ~5% more disk (what cluster leaves do)\n"
    "      --timeout SECS    query time limit (default 60)\n"
    "      --max-results N   query result limit in records (default 1000000)\n"
    "  -h, --help            this text\n"
    "\n"
    "exit status: 0 success, 1 failure (message on standard error; for query an <error>\n"
    "document on standard output), 2 usage error.\n"
    "\n"
    "examples:\n"
    "  dipstorage store ingest --dir /var/lib/dip/src --key src flows.xml\n"
    "  dipstorage store query --dir /var/lib/dip/src \"//flow[@src='10.0.0.1']\"\n"
    "  dipstorage store query --dir /var/lib/dip/src \"count(//o[@v=10]//flow[@dport=22])\"\n"
    "  dipstorage store export --dir /var/lib/dip/src -t csv \"//flow[@proto=17]\" -o udp.csv\n";

struct store_args {
    const char *action, *dir, *stylesheet, *output, *ack_log;
    int key;
    bool progress, tank, no_seal;
    size_t batch;
    struct dip_store_options opt;
    int nargs;
    char **args;
};

static int parse_size(const char *s, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s) return -1;
    switch (*end) {
    case 'k': case 'K': v <<= 10; end++; break;
    case 'm': case 'M': v <<= 20; end++; break;
    case 'g': case 'G': v <<= 30; end++; break;
    default: break;
    }
    if (*end) return -1;
    *out = (size_t)v;
    return 0;
}

static int parse_args(int argc, char **argv, struct store_args *a)
{
    static const struct option longopts[] = {
        { "dir", required_argument, 0, 'd' }, { "key", required_argument, 0, 'k' },
        { "memory", required_argument, 0, 'm' }, { "batch", required_argument, 0, 'b' },
        { "progress", no_argument, 0, 'p' }, { "ack-log", required_argument, 0, 'a' },
        { "stylesheet", required_argument, 0, 't' }, { "output", required_argument, 0, 'o' },
        { "tank", no_argument, 0, 'T' }, { "seal-records", required_argument, 0, 'S' },
        { "gzip-level", required_argument, 0, 'G' }, { "timeout", required_argument, 0, 'O' },
        { "max-results", required_argument, 0, 'R' }, { "no-seal", no_argument, 0, 'N' },
        { "fast-deflate", no_argument, 0, 'F' },
        { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 },
    };
    memset(a, 0, sizeof *a);
    a->key = -1;
    a->batch = 4096;
    dip_store_options_default(&a->opt);
    if (argc < 2) return -1;
    a->action = argv[1];
    optind = 2;
    int c;
    size_t n;
    while ((c = getopt_long(argc, argv, "d:k:m:b:pa:t:o:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd': a->dir = optarg; break;
        case 'k': {
            enum dip_tank_key k;
            if (dip_tank_key_parse(optarg, &k)) { fprintf(stderr, "store: bad key '%s' (src, dst, sport, dport)\n", optarg); return -1; }
            a->key = (int)k;
            break;
        }
        case 'm': if (parse_size(optarg, &a->opt.memory_budget)) return -1; break;
        case 'b': if (parse_size(optarg, &a->batch) || !a->batch) return -1; break;
        case 'p': a->progress = true; break;
        case 'a': a->ack_log = optarg; break;
        case 't': a->stylesheet = optarg; break;
        case 'o': a->output = optarg; break;
        case 'T': a->tank = true; break;
        case 'N': a->no_seal = true; break;
        case 'F': a->opt.fast_deflate = true; break;
        case 'S': if (parse_size(optarg, &n) || !n) return -1; a->opt.seal_records = n; break;
        case 'G': a->opt.gzip_level = atoi(optarg); if (a->opt.gzip_level < 1 || a->opt.gzip_level > 9) return -1; break;
        case 'O': a->opt.max_query_seconds = atof(optarg); break;
        case 'R': if (parse_size(optarg, &a->opt.max_result_records)) return -1; break;
        default: return -1;
        }
    }
    a->nargs = argc - optind;
    a->args = argv + optind;
    if (!a->dir) { fprintf(stderr, "store: --dir is required\n"); return -1; }
    return 0;
}

static void warn_cb(const char *msg) { dip_warn("%s", msg); }

static int open_store(const struct store_args *a, int key, struct dip_store **s)
{
    struct dip_errbuf eb = { { 0 } };
    int rc = dip_store_open(a->dir, key, &a->opt, s, warn_cb, &eb);
    if (rc) dip_error("%s", eb.msg);
    return rc;
}

/* CPU seconds of the process so far (every thread). */
static double cpu_seconds(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec / 1e6;
}

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* ---- ingest ---- */

struct ingest {
    struct dip_store *s;
    uint64_t stored;
    double start, last_report;
    bool progress;
    FILE *ack;
    struct dip_errbuf eb;
};

static int ingest_batch(void *ctx, const struct dip_flow *flows, size_t n)
{
    struct ingest *in = ctx;
    int rc = dip_store_insert(in->s, flows, n, &in->eb);
    if (rc) return rc;
    in->stored += n;
    if (in->ack) {
        fprintf(in->ack, "%llu\n", (unsigned long long)in->stored);
        fflush(in->ack);
    }
    if (in->progress) {
        double t = now_seconds();
        if (t - in->last_report >= 1.0) {
            fprintf(stderr, "store: ingested %llu records (%.0f rec/s)\n", (unsigned long long)in->stored,
                    (double)in->stored / (t - in->start));
            in->last_report = t;
        }
    }
    return DIP_OK;
}

static int do_ingest(struct store_args *a)
{
    const char *file = a->nargs > 0 ? a->args[0] : "-";
    int fd = strcmp(file, "-") == 0 ? 0 : open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        dip_error("cannot open %s: %s", file, strerror(errno));
        return DIP_EXIT_FAIL;
    }
    const char *name = fd == 0 ? "<stdin>" : file;
    struct ingest in = { .progress = a->progress || isatty(2) };
    if (a->ack_log && !(in.ack = fopen(a->ack_log, "a"))) {
        dip_error("cannot open %s: %s", a->ack_log, strerror(errno));
        return DIP_EXIT_FAIL;
    }
    if (open_store(a, a->key < 0 ? DIP_KEY_SRC : a->key, &in.s)) return DIP_EXIT_FAIL;
    in.start = in.last_report = now_seconds();
    uint64_t delivered = 0;
    struct dip_errbuf eb = { { 0 } };
    /* binary batches or XML, told by the first bytes (read, not peeked: stdin may be a pipe) */
    int rc = dip_flow_read_fd(fd, name, a->batch, ingest_batch, &in, &delivered, &eb);
    if (!rc && !a->no_seal) rc = dip_store_seal(in.s, &in.eb); /* later commands need not replay the WAL */
    double secs = now_seconds() - in.start;
    if (rc) dip_error("%s", in.eb.msg[0] ? in.eb.msg : eb.msg);
    double cpu = cpu_seconds();
    fprintf(stderr, "store: stored %llu records in %.2f s (%.0f rec/s, %.2f us of CPU a record)%s\n",
            (unsigned long long)in.stored, secs, secs > 0 ? (double)in.stored / secs : 0.0,
            in.stored ? cpu * 1e6 / (double)in.stored : 0.0, rc ? "; stopped at the error above" : "");
    if (!rc && !a->no_seal) {
        /* then the merges that are due (small segments such endings leave
         * behind, tiers: dip_store_merge_prepare), timed on their own */
        size_t merged = 0;
        double t0 = now_seconds();
        rc = dip_store_compact(in.s, &merged, &in.eb);
        if (rc) dip_error("compaction: %s", in.eb.msg);
        else if (merged)
            fprintf(stderr, "store: merged %zu segments in %.2f s (%.2f s of CPU)\n", merged, now_seconds() - t0,
                    cpu_seconds() - cpu);
    }
    dip_store_close(in.s);
    if (in.ack) fclose(in.ack);
    return rc ? DIP_EXIT_FAIL : DIP_EXIT_OK;
}

/* ---- query ---- */

static FILE *open_output(const char *path)
{
    if (!path || strcmp(path, "-") == 0) return stdout;
    FILE *f = fopen(path, "w");
    if (!f) dip_error("cannot create %s: %s", path, strerror(errno));
    return f;
}

static int do_query(struct store_args *a)
{
    if (a->nargs != 1) {
        fprintf(stderr, "store query: give one XPATH expression\n");
        return DIP_EXIT_USAGE;
    }
    struct dip_store *s;
    if (open_store(a, a->key, &s)) return DIP_EXIT_FAIL;
    FILE *out = open_output(a->output);
    if (!out) { dip_store_close(s); return DIP_EXIT_FAIL; }
    struct dip_store_answer ans;
    struct dip_errbuf eb = { { 0 } };
    size_t col = 0;
    double t0 = now_seconds();
    int rc = dip_store_query(s, a->args[0], strlen(a->args[0]), &ans, &col, &eb);
    double ms = (now_seconds() - t0) * 1000;
    if (rc) {
        dip_error_doc_write(out, rc, col, eb.msg);
        dip_error("%s", eb.msg);
    } else {
        dip_result_doc_write(out, &ans, dip_tank_key_name(dip_store_key(s)), ms);
        dip_store_answer_free(&ans);
    }
    if (out != stdout) fclose(out);
    dip_store_close(s);
    return rc ? DIP_EXIT_FAIL : DIP_EXIT_OK;
}

/* ---- export ---- */

struct export_sink {
    FILE *out;
    struct dip_dynbuf line;
    enum dip_tank_key key;
    bool tank;             /* write the tank tree shape */
    const char *names[DIP_STORE_PATH_MAX]; /* open index path */
    int vals[DIP_STORE_PATH_MAX], depth;
};

static int export_flat(void *ctx, const struct dip_flow *f)
{
    struct export_sink *k = ctx;
    dip_dynbuf_reset(&k->line);
    int rc = dip_flow_xml_append(f, &k->line);
    if (rc) return rc;
    fwrite(k->line.data, 1, k->line.len, k->out);
    fputc('\n', k->out);
    return ferror(k->out) ? DIP_EIO : DIP_OK;
}

/* Tank shape: one open index path, so equal prefixes share their elements. */
static int export_tree(void *ctx, const struct dip_flow *f)
{
    struct export_sink *k = ctx;
    const char *names[DIP_STORE_PATH_MAX];
    int vals[DIP_STORE_PATH_MAX];
    int depth = dip_store_index_path(f, k->key, names, vals);
    int same = 0;
    while (same < depth && same < k->depth && names[same] == k->names[same] && vals[same] == k->vals[same]) same++;
    for (int d = k->depth - 1; d >= same; d--) fprintf(k->out, "</%s>", k->names[d]);
    for (int d = same; d < depth; d++) {
        if (vals[d] >= 0) fprintf(k->out, "<%s v=\"%d\">", names[d], vals[d]);
        else fprintf(k->out, "<%s>", names[d]);
    }
    memcpy(k->names, names, sizeof names);
    memcpy(k->vals, vals, sizeof vals);
    k->depth = depth;
    return export_flat(ctx, f);
}

static int do_export(struct store_args *a)
{
    if (a->nargs > 1) {
        fprintf(stderr, "store export: at most one XPATH expression\n");
        return DIP_EXIT_USAGE;
    }
    struct dip_store *s;
    if (open_store(a, a->key, &s)) return DIP_EXIT_FAIL;
    FILE *final = open_output(a->output);
    if (!final) { dip_store_close(s); return DIP_EXIT_FAIL; }
    /* Through a stylesheet: export to a temporary file first, then transform. */
    char tmp[] = "/tmp/dipstorage-export-XXXXXX";
    FILE *out = final;
    if (a->stylesheet) {
        int fd = mkstemp(tmp);
        out = fd >= 0 ? fdopen(fd, "w+") : NULL;
        if (!out) { dip_error("cannot create a temporary file: %s", strerror(errno)); dip_store_close(s); return DIP_EXIT_FAIL; }
    }
    struct export_sink sink = { .out = out, .key = dip_store_key(s), .tank = a->tank };
    dip_dynbuf_init(&sink.line, 1 << 16);
    fprintf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    if (a->tank) fprintf(out, "<tank key=\"%s\">\n", dip_tank_key_name(sink.key));
    else fprintf(out, "<flows>\n");
    struct dip_errbuf eb = { { 0 } };
    size_t col = 0;
    int rc = dip_store_scan(s, a->nargs ? a->args[0] : NULL, a->tank ? export_tree : export_flat, &sink, &col, &eb);
    for (int d = sink.depth - 1; d >= 0; d--) fprintf(out, "</%s>", sink.names[d]);
    fprintf(out, a->tank ? "</tank>\n" : "</flows>\n");
    dip_dynbuf_free(&sink.line);
    int status = DIP_EXIT_OK;
    if (rc) {
        dip_error("%s%s", eb.msg, col ? "" : "");
        status = DIP_EXIT_FAIL;
    } else if (fflush(out) != 0 || ferror(out)) {
        dip_error("write failed: %s", strerror(errno));
        status = DIP_EXIT_FAIL;
    }
    if (a->stylesheet) {
        fclose(out);
        if (status == DIP_EXIT_OK) status = dip_cli_transform(a->stylesheet, tmp, final);
        unlink(tmp);
    }
    if (final != stdout) fclose(final);
    dip_store_close(s);
    return status;
}

/* ---- stats, seal, compact ---- */

static int do_stats(struct store_args *a)
{
    struct dip_store *s;
    if (open_store(a, a->key, &s)) return DIP_EXIT_FAIL;
    struct dip_store_stats st;
    dip_store_stats(s, &st);
    uint64_t disk = st.segment_bytes + st.wal_bytes;
    printf("store:            %s\n", a->dir);
    printf("key:              %s\n", dip_tank_key_name(st.key));
    printf("records:          %llu (%llu sealed, %llu in the write-ahead log)\n", (unsigned long long)st.records,
           (unsigned long long)(st.records - st.active_records), (unsigned long long)st.active_records);
    printf("segments:         %llu (%llu chunks)\n", (unsigned long long)st.segments, (unsigned long long)st.chunks);
    printf("segment bytes:    %llu\n", (unsigned long long)st.segment_bytes);
    printf("wal bytes:        %llu\n", (unsigned long long)st.wal_bytes);
    if (st.records - st.active_records)
        printf("bytes per record: %.1f (sealed)\n", (double)st.segment_bytes / (double)(st.records - st.active_records));
    else
        printf("bytes per record: -\n");
    printf("disk bytes:       %llu\n", (unsigned long long)disk);
    if (st.records) {
        time_t f = (time_t)(st.first_min / 1000), l = (time_t)(st.last_max / 1000);
        char fb[32], lb[32];
        strftime(fb, sizeof fb, "%Y-%m-%dT%H:%M:%SZ", gmtime(&f));
        strftime(lb, sizeof lb, "%Y-%m-%dT%H:%M:%SZ", gmtime(&l));
        printf("time span:        %s .. %s\n", fb, lb);
    }
    dip_store_close(s);
    return DIP_EXIT_OK;
}

static int do_maintenance(struct store_args *a, bool compact)
{
    struct dip_store *s;
    if (open_store(a, a->key, &s)) return DIP_EXIT_FAIL;
    struct dip_errbuf eb = { { 0 } };
    size_t merged = 0;
    int rc = compact ? dip_store_compact(s, &merged, &eb) : dip_store_seal(s, &eb);
    if (rc) dip_error("%s", eb.msg);
    else if (compact) fprintf(stderr, "store: merged %zu segments\n", merged);
    dip_store_close(s);
    return rc ? DIP_EXIT_FAIL : DIP_EXIT_OK;
}

int dip_cmd_store(int argc, char **argv)
{
    if (dip_cli_wants_help(argc, argv)) {
        fputs(usage_text, stdout);
        return DIP_EXIT_OK;
    }
    struct store_args a;
    if (parse_args(argc, argv, &a) != 0) {
        fputs(usage_text, stderr);
        return DIP_EXIT_USAGE;
    }
    if (strcmp(a.action, "ingest") == 0) return do_ingest(&a);
    if (strcmp(a.action, "query") == 0) return do_query(&a);
    if (strcmp(a.action, "export") == 0) return do_export(&a);
    if (strcmp(a.action, "stats") == 0) return do_stats(&a);
    if (strcmp(a.action, "seal") == 0) return do_maintenance(&a, false);
    if (strcmp(a.action, "compact") == 0) return do_maintenance(&a, true);
    fprintf(stderr, "store: unknown action '%s'\n\n%s", a.action, usage_text);
    return DIP_EXIT_USAGE;
}
