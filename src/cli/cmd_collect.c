/* cmd_collect.c - `dipstorage collect`: a flow collector that listens for
 * NetFlow v5/v9 and IPFIX (UDP, IPFIX over TCP) or reads IPFIX files, and
 * stores the records into local stores, one per tank key. Decoding runs on the
 * loop thread; store inserts (fsync'd) run on libuv's thread pool. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "cli.h"
#include "collect/collect.h"
#include "common/log.h"
#include "store/store.h"

static const char usage_text[] =
    "usage: dipstorage collect --listen URL [--listen URL ...] --dir DIR [OPTIONS]\n"
    "       dipstorage collect --read FILE [--read FILE ...] --dir DIR [OPTIONS]\n"
    "\n"
    "Receives flow records from exporters (routers, switches, probes) and stores\n"
    "them in local stores: NetFlow v5, NetFlow v9 (RFC 3954) and IPFIX (RFC 7011)\n"
    "over UDP, told apart by their version field, and IPFIX over TCP. Templates\n"
    "are kept per exporter and observation domain (v9: source id); data that comes\n"
    "before its template is buffered for a while; sampling rates from the v5 header\n"
    "or from options records are kept in each record's sampling attribute.\n"
    "Records are written in batches; a batch is on disk (fsync'd) before the next.\n"
    "\n"
    "sources:\n"
    "  -l, --listen URL       udp://ADDR:PORT or tcp://ADDR:PORT (IPFIX); IPv6 in\n"
    "                         brackets: udp://[::]:2055. Repeatable. The usual ports\n"
    "                         are 2055 (NetFlow) and 4739 (IPFIX). sctp:// is refused\n"
    "                         with the reason (this build has no SCTP transport).\n"
    "  -r, --read FILE        decode an IPFIX file (RFC 5655: a sequence of IPFIX\n"
    "                         messages), store its records and exit. Repeatable.\n"
    "      --exporter ADDR    exporter address recorded for --read (default 0.0.0.0)\n"
    "\n"
    "storage:\n"
    "  -d, --dir DIR          where the stores live (required)\n"
    "  -k, --key KEY          one store, in DIR, indexed by KEY: src, dst, sport or\n"
    "                         dport (default src)\n"
    "  -t, --tanks all        four stores, DIR/src DIR/dst DIR/sport DIR/dport: every\n"
    "                         record goes to each\n"
    "  -b, --batch N          records per store insert (default 8192)\n"
    "      --flush-ms MS      write a partial batch after MS milliseconds (default 200)\n"
    "      --fast-deflate     merge segments at ISA-L igzip level 2 as they are\n"
    "                         sealed, not 3: ~30% less CPU a merge, ~5% more disk\n"
    "      --gzip-level N     compress segments with zlib at level N, 1-9, instead\n"
    "                         of igzip: denser, ~2x the CPU at level 4\n"
    "      --seal-records N   seal each store's active part into a segment at N\n"
    "                         records (default 1048576: 1 KiB of the 1 GiB budget)\n"
    "\n"
    "collector:\n"
    "      --rcvbuf SIZE      UDP receive buffer, e.g. 4M, 16M (default 4M; above\n"
    "                         net.core.rmem_max only when run as root)\n"
    "  -a, --allow ADDR[,ADDR...]  accept only these exporters (repeatable; default all)\n"
    "      --template-timeout SECS  forget UDP templates not refreshed for SECS\n"
    "                         (default 1800)\n"
    "      --tcp-idle SECS    drop a TCP exporter that sends no complete message for\n"
    "                         SECS (default 120)\n"
    "  -s, --stats SECS       print exporter statistics every SECS seconds (default 60;\n"
    "                         0: only on exit). They are always printed on exit.\n"
    "      --stats-xml        print the exit statistics as <exporters> XML\n"
    "  -h, --help             this text\n"
    "\n"
    "statistics (per exporter, version and domain): packets, records, options\n"
    "records, lost records (v5 and IPFIX sequence numbers count records), lost\n"
    "packets (v9 counts packets), out-of-order messages, malformed messages with\n"
    "the reason and byte offset of the last one, templates, and data sets buffered\n"
    "or dropped for want of a template.\n"
    "\n"
    "SIGINT or SIGTERM stops the collector: pending records are written, the\n"
    "statistics printed, and it exits 0.\n"
    "\n"
    "exit status: 0 success, 1 failure (message on standard error), 2 usage error.\n"
    "\n"
    "examples:\n"
    "  dipstorage collect --listen udp://0.0.0.0:2055 --listen udp://0.0.0.0:4739 \\\n"
    "                     --listen tcp://0.0.0.0:4739 --dir /var/lib/dip --tanks all\n"
    "  dipstorage collect --listen udp://[::]:2055 --allow 192.0.2.1,2001:db8::1 --dir d\n"
    "  dipstorage collect --read capture.ipfix --exporter 192.0.2.1 --dir d --key dst\n";

#define MAX_LISTEN 16
#define MAX_ALLOW 256
#define BACKLOG_MAX (1u << 22) /* records waiting for the disk before new ones are dropped */

struct app {
    uv_loop_t *loop;
    struct dip_collect *c;
    struct dip_store *stores[DIP_TANK_KEYS];
    int nstores;
    struct dip_collect_listener *listeners[MAX_LISTEN];
    struct dip_collect_listener_stats lstats[MAX_LISTEN]; /* kept: listeners are freed on close */
    int lport[MAX_LISTEN];
    int nlisteners, listeners_closed;
    struct dip_flow *fill, *work; /* filling on the loop / being written by a worker */
    size_t nfill, nwork, fill_cap, work_cap;
    size_t batch;
    int writing, stopping;
    uint64_t stored, dropped, store_errors;
    char store_error[512];
    uv_work_t work_req;
    uv_timer_t flush_timer, stats_timer;
    uv_signal_t sigint, sigterm;
    int stats_xml;
};

static int parse_size(const char *s, size_t *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || v < 0) return -1;
    if (*end == 'k' || *end == 'K') v *= 1024, end++;
    else if (*end == 'm' || *end == 'M') v *= 1024 * 1024, end++;
    else if (*end == 'g' || *end == 'G') v *= 1024.0 * 1024 * 1024, end++;
    if (*end) return -1;
    *out = (size_t)v;
    return 0;
}

static void store_warn(const char *msg) { dip_warn("%s", msg); }

static void listener_log(void *ctx, int level, const char *msg)
{
    (void)ctx;
    dip_log((enum dip_log_level)level, "%s", msg);
}

static int open_stores(struct app *a, const char *dir, int key, int all, int fast_deflate, int gzip_level,
                       size_t seal_records)
{
    struct dip_errbuf eb = { "" };
    struct dip_store_options opt;
    dip_store_options_default(&opt);
    opt.fast_deflate = fast_deflate != 0;
    opt.gzip_level = gzip_level; /* 0: igzip */
    opt.seal_records = seal_records; /* 0: the store's default */
    for (int k = 0; k < DIP_TANK_KEYS; k++) {
        if (!all && k != key) continue;
        char path[4096];
        if (all) snprintf(path, sizeof path, "%s/%s", dir, dip_tank_key_name((enum dip_tank_key)k));
        else snprintf(path, sizeof path, "%s", dir);
        if (dip_store_open(path, k, &opt, &a->stores[a->nstores], store_warn, &eb) != DIP_OK) {
            dip_error("%s: %s", path, eb.msg);
            return -1;
        }
        a->nstores++;
    }
    return 0;
}

/* Inserts flows into every store. Returns DIP_OK or the first error (message kept). */
static int insert_all(struct app *a, const struct dip_flow *flows, size_t n)
{
    struct dip_errbuf eb = { "" };
    int rc = DIP_OK;
    for (int i = 0; i < a->nstores && n; i++) {
        int r = dip_store_insert(a->stores[i], flows, n, &eb);
        if (r != DIP_OK && rc == DIP_OK) {
            rc = r;
            snprintf(a->store_error, sizeof a->store_error, "%s", eb.msg);
        }
    }
    return rc;
}

/* ---- the write pipeline: fill on the loop, insert on the thread pool ---- */

static void start_flush(struct app *a);

static void work_insert(uv_work_t *req)
{
    struct app *a = req->data;
    if (insert_all(a, a->work, a->nwork) != DIP_OK) a->store_errors++;
    else a->stored += a->nwork;
}

static void work_done(uv_work_t *req, int status)
{
    struct app *a = req->data;
    (void)status;
    if (a->store_errors && a->store_error[0]) {
        dip_error("storing %zu records failed: %s", a->nwork, a->store_error);
        a->store_error[0] = 0;
    }
    a->writing = 0;
    a->nwork = 0;
    if (a->nfill && (a->nfill >= a->batch || a->stopping)) start_flush(a);
}

static void start_flush(struct app *a)
{
    if (a->writing || !a->nfill) return;
    struct dip_flow *t = a->work;
    size_t tcap = a->work_cap;
    a->work = a->fill;
    a->work_cap = a->fill_cap;
    a->nwork = a->nfill;
    a->fill = t;
    a->fill_cap = tcap;
    a->nfill = 0;
    a->writing = 1;
    a->work_req.data = a;
    uv_queue_work(a->loop, &a->work_req, work_insert, work_done);
}

/* Makes room for need records in the filling buffer (the other may be in a worker's hands). */
static int grow(struct app *a, size_t need)
{
    if (need <= a->fill_cap) return 0;
    size_t cap = a->fill_cap ? a->fill_cap : 8192;
    while (cap < need) cap *= 2;
    struct dip_flow *f = realloc(a->fill, cap * sizeof *f);
    if (!f) return -1;
    a->fill = f;
    a->fill_cap = cap;
    return 0;
}

static int sink_emit(void *ctx, const struct dip_flow *flows, size_t n)
{
    struct app *a = ctx;
    if (a->nfill + n > BACKLOG_MAX || grow(a, a->nfill + n) != 0) {
        a->dropped += n; /* the disk is behind: keep receiving, count what is lost */
        return DIP_OK;
    }
    memcpy(a->fill + a->nfill, flows, n * sizeof *flows);
    a->nfill += n;
    if (a->nfill >= a->batch) start_flush(a);
    return DIP_OK;
}

/* ---- statistics ---- */

static void print_stats(struct app *a, int final)
{
    struct dip_dynbuf b;
    dip_dynbuf_init(&b, 64u << 20);
    time_t now = time(NULL);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    if (final && a->stats_xml) {
        dip_collect_stats_xml(a->c, &b);
    } else {
        dip_dynbuf_printf(&b, "-- %s collector statistics%s\n", when, final ? " (final)" : "");
        dip_collect_stats_text(a->c, &b);
        for (int i = 0; i < a->nlisteners; i++) {
            if (!a->listeners_closed) dip_collect_listener_stats(a->listeners[i], &a->lstats[i]);
            const struct dip_collect_listener_stats ls = a->lstats[i];
            dip_dynbuf_printf(&b, "listener %d (port %d): datagrams=%llu denied=%llu sessions=%llu dropped-sessions=%llu "
                              "receive-errors=%llu\n", i, a->lport[i],
                              (unsigned long long)ls.datagrams, (unsigned long long)ls.denied,
                              (unsigned long long)ls.sessions, (unsigned long long)ls.sessions_dropped,
                              (unsigned long long)ls.receive_errors);
        }
        dip_dynbuf_printf(&b, "stored=%llu store-errors=%llu dropped-backlog=%llu waiting=%zu\n",
                          (unsigned long long)a->stored, (unsigned long long)a->store_errors,
                          (unsigned long long)a->dropped, a->nfill + a->nwork);
    }
    if (b.data) fputs((char *)b.data, stdout);
    fflush(stdout);
    dip_dynbuf_free(&b);
}

static void on_stats(uv_timer_t *t) { print_stats(t->data, 0); }
static void on_flush(uv_timer_t *t) { start_flush(t->data); }

static void on_signal(uv_signal_t *s, int signum)
{
    struct app *a = s->data;
    dip_info("signal %d: stopping", signum);
    a->stopping = 1;
    for (int i = 0; i < a->nlisteners; i++) {
        dip_collect_listener_stats(a->listeners[i], &a->lstats[i]);
        dip_collect_listener_close(a->listeners[i]);
    }
    a->listeners_closed = 1;
    uv_close((uv_handle_t *)&a->flush_timer, NULL);
    uv_close((uv_handle_t *)&a->stats_timer, NULL);
    uv_close((uv_handle_t *)&a->sigint, NULL);
    uv_close((uv_handle_t *)&a->sigterm, NULL);
    start_flush(a); /* the rest follows from work_done; the loop ends when all is written */
}

/* ---- --read ---- */

/* Stores everything filled, synchronously: --read runs no loop. */
static int flush_sync(struct app *a)
{
    while (a->nfill) {
        size_t n = a->nfill < a->batch ? a->nfill : a->batch;
        if (insert_all(a, a->fill, n) != DIP_OK) {
            dip_error("storing records failed: %s", a->store_error);
            return -1;
        }
        a->stored += n;
        memmove(a->fill, a->fill + n, (a->nfill - n) * sizeof *a->fill);
        a->nfill -= n;
    }
    return 0;
}

static int read_emit(void *ctx, const struct dip_flow *flows, size_t n)
{
    struct app *a = ctx;
    if (grow(a, a->nfill + n) != 0) return DIP_ENOMEM;
    memcpy(a->fill + a->nfill, flows, n * sizeof *flows);
    a->nfill += n;
    if (a->nfill >= a->batch && flush_sync(a)) return DIP_EIO;
    return DIP_OK;
}

static int read_files(struct app *a, char **files, int nfiles, const struct dip_addr *exporter)
{
    struct dip_collect_sink sink = { read_emit, a };
    int rc = 0;
    for (int i = 0; i < nfiles && rc == 0; i++) {
        struct dip_errbuf eb = { "" };
        uint64_t messages = 0;
        int r = dip_collect_read_ipfix_file(a->c, files[i], exporter, &sink, &messages, &eb);
        if (r != DIP_OK) {
            dip_error("%s", eb.msg);
            rc = 1;
        }
        dip_info("%s: %llu messages", files[i], (unsigned long long)messages);
        if (flush_sync(a)) return 1;
    }
    return rc;
}

/* ---- main ---- */

static int parse_allow(const char *list, struct dip_addr *allow, size_t *nallow)
{
    const char *p = list;
    while (*p) {
        size_t len = strcspn(p, ",");
        if (*nallow >= MAX_ALLOW || dip_addr_parse(p, len, &allow[*nallow]) != DIP_OK) return -1;
        (*nallow)++;
        p += len;
        if (*p == ',') p++;
    }
    return 0;
}

struct args {
    const char *urls[MAX_LISTEN], *dir;
    char *files[64];
    int nurls, nfiles, key, all, stats_xml, fast_deflate, gzip_level;
    struct dip_addr allow[MAX_ALLOW], exporter;
    size_t nallow, rcvbuf, batch, seal_records;
    long stats_secs, flush_ms, ttimeout, tcp_idle;
};

/* Returns 0, 1 for --help (printed), or -1 for a usage error. */
static int parse_args(int argc, char **argv, struct args *g)
{
    enum { O_EXPORTER = 256, O_FLUSH, O_RCVBUF, O_TTIMEOUT, O_TCPIDLE, O_XML, O_FAST, O_SEAL, O_GZIP };
    static const struct option longopts[] = {
        { "listen", required_argument, NULL, 'l' }, { "read", required_argument, NULL, 'r' },
        { "exporter", required_argument, NULL, O_EXPORTER }, { "dir", required_argument, NULL, 'd' },
        { "key", required_argument, NULL, 'k' }, { "tanks", required_argument, NULL, 't' },
        { "batch", required_argument, NULL, 'b' }, { "flush-ms", required_argument, NULL, O_FLUSH },
        { "fast-deflate", no_argument, NULL, O_FAST }, { "seal-records", required_argument, NULL, O_SEAL },
        { "gzip-level", required_argument, NULL, O_GZIP },
        { "rcvbuf", required_argument, NULL, O_RCVBUF }, { "allow", required_argument, NULL, 'a' },
        { "template-timeout", required_argument, NULL, O_TTIMEOUT }, { "tcp-idle", required_argument, NULL, O_TCPIDLE },
        { "stats", required_argument, NULL, 's' }, { "stats-xml", no_argument, NULL, O_XML },
        { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
    };
    int opt;
    enum dip_tank_key k;
    memset(g, 0, sizeof *g);
    g->key = DIP_KEY_SRC;
    g->rcvbuf = DIP_COLLECT_UDP_RCVBUF;
    g->batch = 8192;
    g->stats_secs = 60;
    g->flush_ms = 200;
    g->ttimeout = 1800;
    g->tcp_idle = 120;
    dip_addr_from_v4(&g->exporter, 0);
    optind = 1;
    while ((opt = getopt_long(argc, argv, "l:r:d:k:t:b:a:s:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'l': if (g->nurls == MAX_LISTEN) return -1; g->urls[g->nurls++] = optarg; break;
        case 'r': if (g->nfiles == 64) return -1; g->files[g->nfiles++] = optarg; break;
        case O_EXPORTER: if (dip_addr_parse(optarg, strlen(optarg), &g->exporter)) return -1; break;
        case 'd': g->dir = optarg; break;
        case 'k': if (dip_tank_key_parse(optarg, &k)) return -1; g->key = (int)k; break;
        case 't': if (strcmp(optarg, "all")) return -1; g->all = 1; break;
        case 'b': g->batch = (size_t)atol(optarg); if (!g->batch) return -1; break;
        case O_FLUSH: g->flush_ms = atol(optarg); if (g->flush_ms <= 0) return -1; break;
        case O_RCVBUF: if (parse_size(optarg, &g->rcvbuf)) return -1; break;
        case 'a': if (parse_allow(optarg, g->allow, &g->nallow)) return -1; break;
        case O_TTIMEOUT: g->ttimeout = atol(optarg); if (g->ttimeout < 0) return -1; break;
        case O_TCPIDLE: g->tcp_idle = atol(optarg); if (g->tcp_idle <= 0) return -1; break;
        case 's': g->stats_secs = atol(optarg); if (g->stats_secs < 0) return -1; break;
        case O_XML: g->stats_xml = 1; break;
        case O_FAST: g->fast_deflate = 1; break;
        case O_GZIP:
            g->gzip_level = atoi(optarg);
            if (g->gzip_level < 1 || g->gzip_level > 9) return -1;
            break;
        case O_SEAL: if (parse_size(optarg, &g->seal_records) || !g->seal_records) return -1; break;
        case 'h': fputs(usage_text, stdout); return 1;
        default: return -1;
        }
    }
    if (!g->dir || optind != argc || (!g->nurls && !g->nfiles) || (g->nurls && g->nfiles)) return -1;
    return 0;
}

/* Starts the listeners, timers and signal handlers, and runs the loop until a signal. */
static int run_listeners(struct app *a, struct args *g)
{
    a->loop = uv_default_loop();
    static struct dip_collect_sink sink;
    sink.emit = sink_emit;
    sink.ctx = a;
    struct dip_collect_listen_options lo;
    dip_collect_listen_options_default(&lo);
    lo.udp_rcvbuf = g->rcvbuf;
    lo.tcp_idle_ms = (uint32_t)(g->tcp_idle * 1000);
    lo.allow = g->nallow ? g->allow : NULL;
    lo.nallow = g->nallow;
    lo.log = listener_log;
    for (int i = 0; i < g->nurls; i++) {
        struct dip_errbuf eb = { "" };
        if (dip_collect_listen(a->loop, a->c, g->urls[i], &lo, &sink, &a->listeners[a->nlisteners], &eb) != DIP_OK) {
            dip_error("%s", eb.msg);
            for (int j = 0; j < a->nlisteners; j++) dip_collect_listener_close(a->listeners[j]);
            a->nlisteners = 0;
            uv_run(a->loop, UV_RUN_DEFAULT);
            return -1;
        }
        a->lport[a->nlisteners] = dip_collect_listener_port(a->listeners[a->nlisteners]);
        dip_info("listening on %s (port %d)", g->urls[i], a->lport[a->nlisteners]);
        a->nlisteners++;
    }
    uv_timer_init(a->loop, &a->flush_timer);
    a->flush_timer.data = a;
    uv_timer_start(&a->flush_timer, on_flush, (uint64_t)g->flush_ms, (uint64_t)g->flush_ms);
    uv_timer_init(a->loop, &a->stats_timer);
    a->stats_timer.data = a;
    if (g->stats_secs)
        uv_timer_start(&a->stats_timer, on_stats, (uint64_t)g->stats_secs * 1000, (uint64_t)g->stats_secs * 1000);
    uv_signal_init(a->loop, &a->sigint);
    uv_signal_init(a->loop, &a->sigterm);
    a->sigint.data = a->sigterm.data = a;
    uv_signal_start(&a->sigint, on_signal, SIGINT);
    uv_signal_start(&a->sigterm, on_signal, SIGTERM);
    uv_run(a->loop, UV_RUN_DEFAULT);
    uv_loop_close(a->loop);
    return 0;
}

int dip_cmd_collect(int argc, char **argv)
{
    static struct args g;
    static struct app a;
    int prc = parse_args(argc, argv, &g);
    if (prc > 0) return DIP_EXIT_OK;
    if (prc < 0) {
        fputs(usage_text, stderr);
        return DIP_EXIT_USAGE;
    }
    memset(&a, 0, sizeof a);
    a.batch = g.batch;
    a.stats_xml = g.stats_xml;
    struct dip_collect_limits lim;
    dip_collect_limits_default(&lim);
    lim.template_timeout_ms = g.nfiles ? 0 : (uint32_t)(g.ttimeout * 1000);
    int rc = DIP_EXIT_FAIL;
    if (dip_collect_new(&lim, &a.c) == DIP_OK && open_stores(&a, g.dir, g.key, g.all, g.fast_deflate, g.gzip_level, g.seal_records) == 0) {
        if (g.nfiles) rc = read_files(&a, g.files, g.nfiles, &g.exporter) ? DIP_EXIT_FAIL : DIP_EXIT_OK;
        else if (run_listeners(&a, &g) == 0) rc = a.store_errors ? DIP_EXIT_FAIL : DIP_EXIT_OK;
        if (g.nfiles || a.nlisteners) print_stats(&a, 1);
    }
    for (int i = 0; i < a.nstores; i++) dip_store_close(a.stores[i]);
    dip_collect_free(a.c);
    free(a.fill);
    free(a.work);
    return rc;
}
