/* cmd_store.c - `dipstorage store`: one leaf store on the local disk:
 * ingest (resumable through an ack log), query, export, stats, seal,
 * compact. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libxslt/transform.h>
#include <libxslt/xsltutils.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
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
    "  -a, --ack-log FILE    a resumable load (see below): after each stored batch,\n"
    "                        append to FILE how many records of the input are stored\n"
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
    "resuming a load (--ack-log):\n"
    "  After a crash or kill -9, run the same command again: same FILE, same store,\n"
    "  same --batch, the input unchanged. Ingest skips the records FILE counts as\n"
    "  stored and goes on; the one batch that may be stored but not yet counted is\n"
    "  recognised by the store, which keeps each batch once by its tag (the load's\n"
    "  origin, named in FILE's header, and its number in the input). So the load\n"
    "  ends with every record stored exactly once, however often it was killed.\n"
    "  The origin of an input file comes from its identity (inode, size, mtime) and\n"
    "  the batch size: such a file loaded into the store before is not stored again,\n"
    "  even with a new FILE. Standard input from a pipe gets a new origin per FILE;\n"
    "  to resume it, feed the same records in the same order. FILE refuses another\n"
    "  input, store or --batch. Its last line is the count (0 before any batch).\n"
    "\n"
    "exit status: 0 success, 1 failure (message on standard error; for query an <error>\n"
    "document on standard output), 2 usage error.\n"
    "\n"
    "examples:\n"
    "  dipstorage store ingest --dir /var/lib/dip/src --key src flows.xml\n"
    "  dipstorage store ingest --dir /var/lib/dip/src --ack-log flows.ack flows.xml   # again to resume\n"
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

/* ---- ingest, and the ack log that makes it resumable ----
 *
 * With --ack-log, FILE starts with a header of comment lines (the load's
 * origin, batch size, store and input) and then gets, after each stored
 * batch, a line with how many records of the input are stored so far. Each
 * batch goes to the store tagged (origin, its number in the input), and the
 * store keeps a tag at most once (dip_store_insert_batch). The log may lag
 * the store by the batch stored just before a kill -9; resuming skips the
 * records the log counts and the store drops that batch, so nothing is lost
 * or stored twice. The dedupe window (DIP_STORE_DEDUPE_WINDOW seqs) sets no
 * limit: a batch is stored only after the one before it is durable, so the
 * stored batches are always 1..k and a seq older than the window really is
 * stored.
 *
 * The origin of a regular file is a hash of its identity (inode, size,
 * modification time) and the batch size, so the same unchanged file cut the
 * same way has the same origin, in a resumed run or with a new log; a stream
 * gets a random one, which only its log remembers. */

struct ack_log {
    FILE *f;
    char origin[32];  /* "ingest-" and 16 hex digits */
    uint64_t resume;  /* records of the input stored by earlier runs, per the log */
    bool resuming;
};

struct ingest {
    struct dip_store *s;
    uint64_t stored;     /* by this run */
    uint64_t position;   /* records of the input read so far */
    uint64_t skipped;    /* read but counted as stored by the ack log */
    uint64_t duplicates; /* in batches the store already held */
    uint64_t seq;        /* the batch's number in the input, from 1 */
    double start, last_report;
    bool progress;
    struct ack_log *ack; /* NULL without --ack-log */
    struct dip_errbuf eb;
};

static int ingest_batch(void *ctx, const struct dip_flow *flows, size_t n)
{
    struct ingest *in = ctx;
    in->seq++;
    if (in->ack && in->position < in->ack->resume) {
        if (in->position + n > in->ack->resume)
            return dip_err_set(&in->eb, DIP_EINVAL,
                               "the ack log counts %llu records stored, but batch %llu of the input holds records "
                               "%llu to %llu: not the input (or --batch) the log was written for",
                               (unsigned long long)in->ack->resume, (unsigned long long)in->seq,
                               (unsigned long long)in->position + 1, (unsigned long long)(in->position + n));
        in->position += n;
        in->skipped += n;
        return DIP_OK;
    }
    int rc;
    bool duplicate = false;
    if (in->ack) rc = dip_store_insert_batch(in->s, in->ack->origin, in->seq, flows, n, &duplicate, &in->eb);
    else rc = dip_store_insert(in->s, flows, n, &in->eb);
    if (rc) return rc;
    in->position += n;
    if (duplicate) in->duplicates += n;
    else in->stored += n;
    if (in->ack) {
        fprintf(in->ack->f, "%llu\n", (unsigned long long)in->position);
        fflush(in->ack->f);
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

/* The origin of a load: from the identity of a regular file and the batch
 * size (see above), random for a stream. Returns DIP_OK or DIP_EIO. */
static int load_origin(const struct stat *st, size_t batch, char origin[32])
{
    uint64_t h;
    if (S_ISREG(st->st_mode)) {
        uint64_t id[5] = { (uint64_t)st->st_ino, (uint64_t)st->st_size, (uint64_t)st->st_mtim.tv_sec,
                           (uint64_t)st->st_mtim.tv_nsec, (uint64_t)batch };
        h = dip_siphash24(dip_flow_id_default_key, (const uint8_t *)id, sizeof id);
    } else if (getrandom(&h, sizeof h, 0) != (ssize_t)sizeof h) {
        return DIP_EIO;
    }
    snprintf(origin, 32, "ingest-%016llx", (unsigned long long)h);
    return DIP_OK;
}

/* Reads an existing ack log: its header's origin, batch and store, and the
 * last whole count line. A missing or empty file is a new load (*resuming
 * false). Returns DIP_OK or DIP_EINVAL / DIP_EIO with the reason in eb. */
static int ack_log_read(const char *path, struct ack_log *log, unsigned long long *batch, char *store, size_t store_size,
                        struct dip_errbuf *eb)
{
    log->resuming = false;
    log->resume = 0;
    FILE *f = fopen(path, "r");
    if (!f) return errno == ENOENT ? DIP_OK : dip_err_sys(eb, errno, "cannot read the ack log %s", path);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    bool any = false;
    log->origin[0] = store[0] = 0;
    *batch = 0;
    while ((len = getline(&line, &cap, f)) > 0) {
        any = true;
        if (line[len - 1] != '\n') break; /* a torn last line: the one before counts */
        line[--len] = 0;
        if (strncmp(line, "# origin ", 9) == 0) snprintf(log->origin, sizeof log->origin, "%s", line + 9);
        else if (strncmp(line, "# batch ", 8) == 0) *batch = strtoull(line + 8, NULL, 10);
        else if (strncmp(line, "# store ", 8) == 0) snprintf(store, store_size, "%s", line + 8);
        else if (line[0] >= '0' && line[0] <= '9') log->resume = strtoull(line, NULL, 10);
    }
    free(line);
    fclose(f);
    if (!any) return DIP_OK;
    if (!log->origin[0] || !*batch || !store[0])
        return dip_err_set(eb, DIP_EINVAL, "%s is not an ack log of store ingest (no origin, batch and store in a "
                           "header): give a new or empty file", path);
    log->resuming = true;
    return DIP_OK;
}

/* Checks FILE against a load into the store at dir from input (described
 * by st) before the store is opened: resumes the load FILE logs when it
 * matches, starts a new one when FILE is missing or empty. Prints why it
 * refuses. Returns 0 or -1. */
static int ack_log_check(const struct store_args *a, const char *input, const struct stat *st, struct ack_log *log)
{
    char here[PATH_MAX], logged[PATH_MAX];
    unsigned long long batch = 0;
    struct dip_errbuf eb = { { 0 } };
    if (ack_log_read(a->ack_log, log, &batch, logged, sizeof logged, &eb)) {
        dip_error("%s", eb.msg);
        return -1;
    }
    char origin[32];
    if (load_origin(st, a->batch, origin)) {
        dip_error("no random origin for a stream: %s", strerror(errno));
        return -1;
    }
    if (!log->resuming) {
        snprintf(log->origin, sizeof log->origin, "%s", origin);
        return 0;
    }
    if (!realpath(a->dir, here) || strcmp(logged, here) != 0) {
        dip_error("the ack log %s is of a load into %s, not %s", a->ack_log, logged, a->dir);
        return -1;
    }
    if (batch != a->batch) {
        dip_error("the ack log %s was written with --batch %llu: resume with the same", a->ack_log, batch);
        return -1;
    }
    if (S_ISREG(st->st_mode) && strcmp(origin, log->origin) != 0) {
        dip_error("%s is not the input the ack log %s was written for (another file, or changed since): give a new "
                  "ack log to load it", input, a->ack_log);
        return -1;
    }
    if (!S_ISREG(st->st_mode)) dip_warn("resuming from a stream: it must hold the same records in the same order");
    return 0;
}

/* Opens the checked FILE for appending, once the store exists; a new log
 * gets its header, on disk before the first batch carries the origin.
 * Returns 0 or -1 (printed). */
static int ack_log_start(const struct store_args *a, const char *input, const struct stat *st, struct ack_log *log)
{
    char here[PATH_MAX];
    if (!realpath(a->dir, here)) {
        dip_error("%s: %s", a->dir, strerror(errno));
        return -1;
    }
    if (!(log->f = fopen(a->ack_log, "a"))) {
        dip_error("cannot open %s: %s", a->ack_log, strerror(errno));
        return -1;
    }
    if (log->resuming) return 0;
    fprintf(log->f,
            "# dipstorage store ingest --ack-log: to resume, run the same command again\n"
            "# origin %s\n# batch %zu\n# store %s\n# input %s\n0\n",
            log->origin, a->batch, here, S_ISREG(st->st_mode) ? input : "- (a stream)");
    if (fflush(log->f) != 0 || fsync(fileno(log->f)) != 0) {
        dip_error("cannot write %s: %s", a->ack_log, strerror(errno));
        fclose(log->f);
        log->f = NULL;
        return -1;
    }
    return 0;
}

static int do_ingest(struct store_args *a)
{
    const char *file = a->nargs > 0 ? a->args[0] : "-";
    int fd = strcmp(file, "-") == 0 ? 0 : open(file, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        dip_error("cannot open %s: %s", file, strerror(errno));
        if (fd > 0) close(fd);
        return DIP_EXIT_FAIL;
    }
    const char *name = fd == 0 ? "<stdin>" : file;
    struct ingest in = { .progress = a->progress || isatty(2) };
    struct ack_log log = { 0 };
    if ((a->ack_log && ack_log_check(a, name, &st, &log)) || open_store(a, a->key < 0 ? DIP_KEY_SRC : a->key, &in.s)) {
        if (fd > 0) close(fd);
        return DIP_EXIT_FAIL;
    }
    if (a->ack_log) {
        if (ack_log_start(a, name, &st, &log)) {
            dip_store_close(in.s);
            if (fd > 0) close(fd);
            return DIP_EXIT_FAIL;
        }
        in.ack = &log;
    }
    in.start = in.last_report = now_seconds();
    uint64_t delivered = 0;
    struct dip_errbuf eb = { { 0 } };
    /* binary batches or XML, told by the first bytes (read, not peeked: stdin may be a pipe) */
    int rc = dip_flow_read_fd(fd, name, a->batch, ingest_batch, &in, &delivered, &eb);
    if (!rc && in.ack && in.position < log.resume)
        rc = dip_err_set(&in.eb, DIP_EINVAL, "%s holds %llu records, but the ack log %s counts %llu stored: not the "
                         "input the log was written for", name, (unsigned long long)in.position, a->ack_log,
                         (unsigned long long)log.resume);
    if (!rc && !a->no_seal) rc = dip_store_seal(in.s, &in.eb); /* later commands need not replay the WAL */
    double secs = now_seconds() - in.start;
    if (rc) dip_error("%s", in.eb.msg[0] ? in.eb.msg : eb.msg);
    double cpu = cpu_seconds();
    char resumed[160] = "";
    if (in.skipped || in.duplicates)
        snprintf(resumed, sizeof resumed, "; %llu counted as stored by the ack log, %llu in batches the store held "
                 "already", (unsigned long long)in.skipped, (unsigned long long)in.duplicates);
    fprintf(stderr, "store: stored %llu records in %.2f s (%.0f rec/s, %.2f us of CPU a record)%s%s\n",
            (unsigned long long)in.stored, secs, secs > 0 ? (double)in.stored / secs : 0.0,
            in.stored ? cpu * 1e6 / (double)in.stored : 0.0, resumed, rc ? "; stopped at the error above" : "");
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
    if (log.f) fclose(log.f);
    if (fd > 0) close(fd);
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
