/* main.c - flowgen, the deterministic synthetic traffic generator: command
 * line, outputs (file, stdout, UDP, TCP), token-bucket pacing, progress and
 * the final summary. The traffic model is model.c, export packets export.c.
 * Same seed and options give byte-identical output. */
#include "flowgen.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

#include "common/cursor.h"
#include "common/dynbuf.h"

#define DEFAULT_START_MS 1700000000000ull /* 2023-11-14T22:13:20Z */
#define DEFAULT_COUNT 10000
#define DEFAULT_DURATION_S 3600
#define DEFAULT_BATCH 1024
#define DEFAULT_REFRESH 20
#define DEFAULT_MAX_PACKET 1400
#define ACTIVE_TIMEOUT_MS 300000u
#define STREAM_CHUNK (256 * 1024)
/* v5/v9 times are 32-bit milliseconds of uptime: keep clear of the wrap. */
#define MAX_UPTIME_WINDOW_S (40ull * 86400)

static const char usage_text[] =
"NAME\n"
"    flowgen - deterministic synthetic IP flow traffic for dipstorage\n"
"\n"
"SYNOPSIS\n"
"    flowgen [-n COUNT] [--seed S] [--start MS] [--duration SECONDS]\n"
"            [--v6-share F] [--reply-share F] [--zipf S]\n"
"            [--format xml|batch|v5|v9|ipfix]\n"
"            [-o FILE | --to udp://HOST:PORT | --to tcp://HOST:PORT]\n"
"            [--rate R] [--batch N] [--refresh N] [--ipfix-wide]\n"
"            [--max-packet BYTES] [--progress] [--preload]\n"
"\n"
"DESCRIPTION\n"
"    Generates COUNT flow records from a seeded model of an enterprise network\n"
"    and writes them as XML, as dipstorage binary batches, or as NetFlow v5,\n"
"    NetFlow v9 (RFC 3954) or IPFIX (RFC 7011) export packets. The output is a\n"
"    function of the seed and the options only: the same command line gives\n"
"    byte-identical output on every run (and on every machine with the same C\n"
"    library's floating-point functions); pacing changes only when bytes are\n"
"    written, never which.\n"
"\n"
"OPTIONS\n"
"    -n, --count COUNT     records to generate (default 10000)\n"
"    -s, --seed S          seed of the generator, an unsigned 64-bit integer (default 1)\n"
"    --start MS            start of the simulated time window, milliseconds since the\n"
"                          Unix epoch (default 1700000000000 = 2023-11-14T22:13:20Z)\n"
"    --duration SECONDS    length of the window (default 3600). Record i starts in the\n"
"                          i-th of COUNT equal slices of it, so `first` never decreases;\n"
"                          `last` = first + duration of the flow, at most 300 s (the\n"
"                          active timeout) and never past the window's end.\n"
"    --v6-share F          share of IPv6 records, 0..1 (default 0.1; 0 for v5, which\n"
"                          carries IPv4 only)\n"
"    --reply-share F       share of records in the server-to-client direction, 0..1\n"
"                          (default 0.3)\n"
"    --zipf S              Zipf exponent of host popularity (default 1.1)\n"
"    -f, --format FMT      xml (default), batch, v5, v9 or ipfix\n"
"    -o, --output FILE     write to FILE (default: standard output)\n"
"    --to URL              send to udp://HOST:PORT (v5, v9, ipfix: one export packet per\n"
"                          datagram) or tcp://HOST:PORT (ipfix, xml, batch: a stream;\n"
"                          IPFIX messages back to back, RFC 7011 10.4). HOST may be a\n"
"                          name, an IPv4 address or [IPv6].\n"
"    --rate R              records per second, paced by a token bucket (default 0 =\n"
"                          as fast as possible; a UDP receiver drops what it cannot\n"
"                          keep up with, so give a rate when sending to a collector)\n"
"    --batch N             records per binary batch (default 1024)\n"
"    --refresh N           v9/IPFIX over UDP and v9 files: resend an exporter's templates\n"
"                          every N of its packets (default 20; 0 = only in its first).\n"
"                          IPFIX streams (TCP, files) send each template once.\n"
"    --ipfix-wide          IPFIX: every exporter uses one 20-field template (addresses,\n"
"                          nexthop, ports, proto, tos, flags, packets, bytes, start and\n"
"                          end ms, in, out, AS numbers, masks, flowEndReason and\n"
"                          icmpTypeCode; ICMP then has destination port 0)\n"
"    --max-packet BYTES    largest export packet (default 1400, 512..8192)\n"
"    --progress            report progress on standard error every second\n"
"    --preload             make every packet first, in memory (~50 bytes a record),\n"
"                          then send them: the rate is then the sending alone (for\n"
"                          benchmarks of collectors); the summary times the sending\n"
"    -h, --help            show this text\n"
"\n"
"OUTPUT FORMATS\n"
"    xml     <?xml version=\"1.0\" encoding=\"UTF-8\"?>, then <flows>, one <flow .../> per\n"
"            line with the attributes of the dipstorage data model, then </flows>.\n"
"    batch   dipstorage binary batches of --batch records (\"DIPB\" header, records,\n"
"            CRC-32), back to back.\n"
"    v5, v9  export packets. With -o, a stream of records each made of a 2-byte\n"
"            big-endian length followed by that many bytes of one UDP payload.\n"
"    ipfix   IPFIX messages; with -o or tcp:// back to back (each message carries\n"
"            its own length), with udp:// one per datagram.\n"
"    Every record gets id = SipHash of its identity under the default cluster key;\n"
"    the export formats carry no id (the collector computes it).\n"
"\n"
"EXPORT DETAILS\n"
"    Four exporters: 10.255.0.1 (domain 1) and 10.255.0.2 (domain 2) are routers\n"
"    that also export nexthop, AS numbers and masks; 192.168.255.1 (domain 3) and\n"
"    2001:db8:ffff::1 (domain 4) do not. Domain = v5 engine id, v9 source id, IPFIX\n"
"    observation domain. Each has its own sequence numbers (v5, IPFIX: records sent\n"
"    before the packet; v9: packets sent before it) and booted at its own time\n"
"    before the window, so v5/v9 times are exact sysUptime offsets (the window is\n"
"    limited to 40 days for them). Packets are exported on the whole second after\n"
"    their last record ended. v9/IPFIX send an IPv4 (id 256) and an IPv6 (id 257)\n"
"    template, first and then as --refresh says. v9 uses 4-byte counters, 2-byte\n"
"    interfaces and AS numbers, FIRST/LAST_SWITCHED; IPFIX 8-byte counters, 4-byte\n"
"    interfaces and AS numbers, flowStartMilliseconds/flowEndMilliseconds.\n"
"\n"
"TRAFFIC MODEL\n"
"    Clients: 10.1/16, 10.20/16, 172.16.5/24, 192.168.1/24, 192.168.10/24, and remote\n"
"    198.18/15 (AS 64510); 2001:db8:1::/48, 2001:db8:a::/48, 2001:db8:77::/48.\n"
"    Servers: 10.0.0/24, 172.20.1/24, and remote 198.51.100/24 (AS 64501),\n"
"    203.0.113/24 (AS 64502), 192.0.2/24 (AS 64503); 2001:db8:ff::/48,\n"
"    2001:db8:cafe::/48 (AS 64511), 2001:db8:beef::/48 (AS 64505).\n"
"    20000 IPv4 and 4000 IPv6 clients, 2000 and 500 servers, each picked with\n"
"    Zipf popularity. Services, per mille of records: tcp/443 280, udp/443 60,\n"
"    tcp/80 100, udp/53 140, tcp/22 50, tcp/25 25, udp/123 40, tcp/3389 20,\n"
"    tcp/8080 30, tcp/993 15, tcp/587 10, tcp/445 15, tcp/3306 10, udp/161 10,\n"
"    udp/514 10, udp/500 5, tcp to a port in 1024-49151 50, udp likewise 50,\n"
"    ICMP echo 50, ICMP port unreachable 20, ICMP time exceeded 10 (ICMPv6 for\n"
"    IPv6). A --reply-share of records goes from server to client (ports swapped,\n"
"    echo requests become replies). So with the defaults dport 443 is about\n"
"    0.34 * 0.7 = 23.8% of records and dport 22 3.5%. Client ports are 32768-60999;\n"
"    ICMP has sport 0 and dport type*256+code. Packets are Pareto-distributed per\n"
"    service (heavy-tailed), bytes = packets * a mean size in 40..1500, TCP flags\n"
"    the OR of a plausible packet sequence.\n"
"\n"
"EXAMPLES\n"
"    flowgen -n 1000000 --format batch -o flows.dipb\n"
"    flowgen -n 50000 --seed 7 --format ipfix --to udp://127.0.0.1:4739 --rate 20000\n"
"    flowgen -n 10000 --format v9 -o export.v9 && flowgen -n 10000 --format xml -o same.xml\n"
"\n"
"EXIT STATUS\n"
"    0 on success, 1 on an I/O or network error, 2 on a usage error.\n";

enum sink_kind { SINK_STREAM, SINK_LENGTH_PREFIXED, SINK_UDP };

struct sink {
    enum sink_kind kind;
    int fd;
    struct sockaddr_storage addr; /* SINK_UDP */
    socklen_t addrlen;
    struct dip_dynbuf buf;        /* pending stream bytes */
    uint64_t bytes;
};

struct pacer {
    double rate;   /* records per second; 0 = off */
    double tokens; /* may go a little negative before we sleep */
    double burst;
    struct timespec last;
};

struct run {
    struct flowgen_params p;
    enum flowgen_format format;
    const char *output, *to;
    double rate;
    size_t batch, max_packet;
    unsigned refresh;
    bool ipfix_wide, progress, v6_share_given, preload;
    struct dip_dynbuf pre; /* --preload: the packets, each as u32 length, u32 records, bytes */
    struct sink sink;
    struct pacer pacer;
    uint64_t records, units; /* units: packets, batches */
    struct timespec t0, next_progress;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            fprintf(stderr, "flowgen: write: %s\n", strerror(errno));
            return DIP_EIO;
        }
        p += w;
        n -= (size_t)w;
    }
    return DIP_OK;
}

static int sink_flush(struct sink *s)
{
    if (!s->buf.len) return DIP_OK;
    s->bytes += s->buf.len;
    int rc = write_all(s->fd, s->buf.data, s->buf.len);
    dip_dynbuf_reset(&s->buf);
    return rc;
}

/* One export packet: a datagram, or bytes of a stream (with a 2-byte length
 * first for v5/v9 files). */
static int sink_packet(struct sink *s, const uint8_t *p, size_t n)
{
    if (s->kind == SINK_UDP) {
        s->bytes += n;
        while (sendto(s->fd, p, n, 0, (struct sockaddr *)&s->addr, s->addrlen) < 0) {
            if (errno == EINTR) continue;
            fprintf(stderr, "flowgen: sendto: %s\n", strerror(errno));
            return DIP_EIO;
        }
        return DIP_OK;
    }
    if (s->kind == SINK_LENGTH_PREFIXED) {
        uint8_t len[2];
        dip_put_u16(len, (uint16_t)n);
        if (dip_dynbuf_add(&s->buf, len, 2) != DIP_OK) return DIP_ENOMEM;
    }
    if (dip_dynbuf_add(&s->buf, p, n) != DIP_OK) return DIP_ENOMEM;
    return s->buf.len >= STREAM_CHUNK ? sink_flush(s) : DIP_OK;
}

/* Parses udp://HOST:PORT or tcp://HOST:PORT and opens the socket. */
static int sink_open_url(struct sink *s, const char *url)
{
    bool tcp;
    char host[256], port[16];
    const char *rest;
    if (strncmp(url, "udp://", 6) == 0) tcp = false;
    else if (strncmp(url, "tcp://", 6) == 0) tcp = true;
    else goto bad;
    rest = url + 6;
    const char *colon = rest[0] == '[' ? strchr(rest, ']') : strrchr(rest, ':');
    if (!colon) goto bad;
    if (rest[0] == '[') {
        if (colon[1] != ':') goto bad;
        rest++;
    }
    size_t hl = (size_t)(colon - rest);
    const char *portp = colon + (colon[0] == ']' ? 2 : 1);
    if (hl == 0 || hl >= sizeof host || !*portp || strlen(portp) >= sizeof port) goto bad;
    memcpy(host, rest, hl);
    host[hl] = 0;
    strcpy(port, portp);

    struct addrinfo hints = { .ai_socktype = tcp ? SOCK_STREAM : SOCK_DGRAM }, *ai;
    int gai = getaddrinfo(host, port, &hints, &ai);
    if (gai) {
        fprintf(stderr, "flowgen: %s: %s\n", url, gai_strerror(gai));
        return DIP_EIO;
    }
    s->fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (s->fd >= 0 && tcp && connect(s->fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        close(s->fd);
        s->fd = -1;
    }
    if (s->fd < 0) {
        fprintf(stderr, "flowgen: %s: %s\n", url, strerror(errno));
        freeaddrinfo(ai);
        return DIP_EIO;
    }
    memcpy(&s->addr, ai->ai_addr, ai->ai_addrlen);
    s->addrlen = ai->ai_addrlen;
    freeaddrinfo(ai);
    if (!tcp) {
        int sndbuf = 4 << 20;
        setsockopt(s->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    }
    s->kind = tcp ? SINK_STREAM : SINK_UDP;
    return DIP_OK;
bad:
    fprintf(stderr, "flowgen: --to wants udp://HOST:PORT or tcp://HOST:PORT, not '%s'\n", url);
    return DIP_EINVAL;
}

static int sink_open(struct run *r)
{
    struct sink *s = &r->sink;
    dip_dynbuf_init(&s->buf, 64u << 20);
    if (r->to) return sink_open_url(s, r->to);
    s->kind = (r->format == FG_V5 || r->format == FG_V9) ? SINK_LENGTH_PREFIXED : SINK_STREAM;
    if (!r->output || strcmp(r->output, "-") == 0) {
        s->fd = STDOUT_FILENO;
        return DIP_OK;
    }
    s->fd = open(r->output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (s->fd < 0) {
        fprintf(stderr, "flowgen: %s: %s\n", r->output, strerror(errno));
        return DIP_EIO;
    }
    return DIP_OK;
}

/* Token bucket: R tokens a second up to a burst of 20 ms worth; a unit of k
 * records takes k tokens. We sleep only when the debt exceeds 1 ms worth, and for as long as repaying it takes, so the rate holds
 * on average whatever the timer's resolution. */
static int pace(struct run *r, unsigned records)
{
    struct pacer *pc = &r->pacer;
    if (pc->rate <= 0) return DIP_OK;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double dt = (double)(now.tv_sec - pc->last.tv_sec) + (now.tv_nsec - pc->last.tv_nsec) * 1e-9;
    pc->last = now;
    pc->tokens += dt * pc->rate;
    if (pc->tokens > pc->burst) pc->tokens = pc->burst;
    pc->tokens -= records;
    if (pc->tokens >= -pc->rate * 0.001) return DIP_OK;
    /* Let the receiver see what it may have before we wait. */
    int rc = sink_flush(&r->sink);
    if (rc != DIP_OK) return rc;
    double wait = -pc->tokens / pc->rate;
    struct timespec ts = { (time_t)wait, (long)((wait - floor(wait)) * 1e9) };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {}
    return DIP_OK;
}

static void progress(struct run *r)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec < r->next_progress.tv_sec ||
        (now.tv_sec == r->next_progress.tv_sec && now.tv_nsec < r->next_progress.tv_nsec))
        return;
    double el = (double)(now.tv_sec - r->t0.tv_sec) + (now.tv_nsec - r->t0.tv_nsec) * 1e-9;
    fprintf(stderr, "flowgen: %llu of %llu records, %.0f records/s\n", (unsigned long long)r->records,
            (unsigned long long)r->p.count, el > 0 ? r->records / el : 0.0);
    r->next_progress = now;
    r->next_progress.tv_sec++;
}

static int emit_packet(void *ctx, const uint8_t *pkt, size_t len, unsigned records)
{
    struct run *r = ctx;
    r->units++;
    if (r->preload) {
        uint8_t head[8];
        dip_put_u32(head, (uint32_t)len);
        dip_put_u32(head + 4, records);
        if (dip_dynbuf_add(&r->pre, head, 8) != DIP_OK || dip_dynbuf_add(&r->pre, pkt, len) != DIP_OK)
            return DIP_ENOMEM;
        return DIP_OK;
    }
    int rc = sink_packet(&r->sink, pkt, len);
    return rc != DIP_OK ? rc : pace(r, records);
}

static int run_export(struct run *r, struct flowgen_model *m)
{
    struct flowgen_export_opts o = {
        .format = r->format,
        .refresh = (r->format == FG_IPFIX && r->sink.kind == SINK_STREAM) ? 0 : r->refresh,
        .ipfix_wide = r->ipfix_wide,
        .start_ms = r->p.start_ms,
        .active_timeout_ms = r->p.active_timeout_ms,
        .max_packet = r->max_packet,
    };
    struct flowgen_export *x = flowgen_export_new(&o, emit_packet, r);
    if (!x) return DIP_ENOMEM;
    int rc = DIP_OK;
    for (uint64_t i = 0; i < r->p.count && rc == DIP_OK; i++) {
        struct dip_flow f;
        unsigned e;
        flowgen_model_next(m, i, &f, &e);
        rc = flowgen_export_add(x, &f, e);
        r->records++;
        if (r->progress && (i & 255) == 0) progress(r);
    }
    if (rc == DIP_OK) rc = flowgen_export_flush(x);
    if (rc == DIP_ERANGE) fprintf(stderr, "flowgen: a record does not fit the export format\n");
    flowgen_export_free(x);
    return rc;
}

/* --preload: sends the packets made beforehand, paced, timed from now. */
static int send_preloaded(struct run *r)
{
    clock_gettime(CLOCK_MONOTONIC, &r->t0);
    r->pacer.last = r->t0;
    r->pacer.tokens = 0;
    for (size_t at = 0; at + 8 <= r->pre.len;) {
        uint32_t len = dip_get_u32(r->pre.data + at), records = dip_get_u32(r->pre.data + at + 4);
        int rc = sink_packet(&r->sink, r->pre.data + at + 8, len);
        if (rc == DIP_OK) rc = pace(r, records);
        if (rc != DIP_OK) return rc;
        at += 8 + (size_t)len;
    }
    return DIP_OK;
}

static int run_xml(struct run *r, struct flowgen_model *m)
{
    struct sink *s = &r->sink;
    static const char head[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<flows>\n";
    int rc = dip_dynbuf_add(&s->buf, head, sizeof head - 1);
    for (uint64_t i = 0; i < r->p.count && rc == DIP_OK; i++) {
        struct dip_flow f;
        unsigned e;
        flowgen_model_next(m, i, &f, &e);
        f.id = dip_flow_id_random(&f, dip_flow_id_default_key);
        rc = dip_flow_xml_append(&f, &s->buf);
        if (rc == DIP_OK) rc = dip_dynbuf_add(&s->buf, "\n", 1);
        r->records++;
        if (rc == DIP_OK && s->buf.len >= STREAM_CHUNK) rc = sink_flush(s);
        if (rc == DIP_OK) rc = pace(r, 1);
        if (r->progress && (i & 255) == 0) progress(r);
    }
    if (rc == DIP_OK) rc = dip_dynbuf_addstr(&s->buf, "</flows>\n");
    r->units = 1;
    return rc;
}

static int run_batch(struct run *r, struct flowgen_model *m)
{
    struct sink *s = &r->sink;
    struct dip_flow *flows = malloc(r->batch * sizeof *flows);
    if (!flows) return DIP_ENOMEM;
    size_t k = 0;
    int rc = DIP_OK;
    for (uint64_t i = 0; i < r->p.count && rc == DIP_OK; i++) {
        unsigned e;
        flowgen_model_next(m, i, &flows[k], &e);
        flows[k].id = dip_flow_id_random(&flows[k], dip_flow_id_default_key);
        r->records++;
        if (++k == r->batch || i + 1 == r->p.count) {
            rc = dip_batch_encode(flows, k, &s->buf);
            r->units++;
            if (rc == DIP_OK && s->buf.len >= STREAM_CHUNK) rc = sink_flush(s);
            if (rc == DIP_OK) rc = pace(r, (unsigned)k);
            k = 0;
        }
        if (r->progress && (i & 255) == 0) progress(r);
    }
    free(flows);
    return rc;
}

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "flowgen: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'flowgen --help'.\n");
    return 2;
}

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (!*s || *s == '-') return false;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) return false;
    *out = v;
    return true;
}

static bool parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || !*s || *end || !(v >= lo && v <= hi)) return false;
    *out = v;
    return true;
}

enum {
    OPT_START = 256, OPT_DURATION, OPT_V6, OPT_REPLY, OPT_ZIPF, OPT_TO, OPT_RATE, OPT_BATCH,
    OPT_REFRESH, OPT_WIDE, OPT_MAXPKT, OPT_PROGRESS, OPT_PRELOAD,
};

static const struct option long_opts[] = {
    { "count", required_argument, NULL, 'n' },
    { "seed", required_argument, NULL, 's' },
    { "start", required_argument, NULL, OPT_START },
    { "duration", required_argument, NULL, OPT_DURATION },
    { "v6-share", required_argument, NULL, OPT_V6 },
    { "reply-share", required_argument, NULL, OPT_REPLY },
    { "zipf", required_argument, NULL, OPT_ZIPF },
    { "format", required_argument, NULL, 'f' },
    { "output", required_argument, NULL, 'o' },
    { "to", required_argument, NULL, OPT_TO },
    { "rate", required_argument, NULL, OPT_RATE },
    { "batch", required_argument, NULL, OPT_BATCH },
    { "refresh", required_argument, NULL, OPT_REFRESH },
    { "ipfix-wide", no_argument, NULL, OPT_WIDE },
    { "max-packet", required_argument, NULL, OPT_MAXPKT },
    { "progress", no_argument, NULL, OPT_PROGRESS },
    { "preload", no_argument, NULL, OPT_PRELOAD },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
};

static int parse_format(const char *s, enum flowgen_format *f)
{
    static const char *const names[] = { "xml", "batch", "v5", "v9", "ipfix" };
    for (int i = 0; i < 5; i++)
        if (strcmp(s, names[i]) == 0) {
            *f = (enum flowgen_format)i;
            return 0;
        }
    return -1;
}

/* Returns: 0 to go on, 1 after --help, 2 on a usage error. */
static int parse_args(struct run *r, int argc, char **argv)
{
    uint64_t u, dur_s = DEFAULT_DURATION_S;
    int c;
    while ((c = getopt_long(argc, argv, "n:s:f:o:h", long_opts, NULL)) != -1) {
        switch (c) {
        case 'n': if (!parse_u64(optarg, &r->p.count)) return usage_error("bad count '%s'", optarg); break;
        case 's': if (!parse_u64(optarg, &r->p.seed)) return usage_error("bad seed '%s'", optarg); break;
        case OPT_START: if (!parse_u64(optarg, &r->p.start_ms)) return usage_error("bad --start '%s'", optarg); break;
        case OPT_DURATION:
            if (!parse_u64(optarg, &dur_s) || dur_s == 0 || dur_s > 100ull * 365 * 86400)
                return usage_error("bad --duration '%s' (1 s to 100 years)", optarg);
            break;
        case OPT_V6:
            if (!parse_double(optarg, 0, 1, &r->p.v6_share)) return usage_error("bad --v6-share '%s'", optarg);
            r->v6_share_given = true;
            break;
        case OPT_REPLY: if (!parse_double(optarg, 0, 1, &r->p.reply_share)) return usage_error("bad --reply-share '%s'", optarg); break;
        case OPT_ZIPF: if (!parse_double(optarg, 0, 10, &r->p.zipf_s)) return usage_error("bad --zipf '%s' (0..10)", optarg); break;
        case 'f': if (parse_format(optarg, &r->format)) return usage_error("unknown format '%s'", optarg); break;
        case 'o': r->output = optarg; break;
        case OPT_TO: r->to = optarg; break;
        case OPT_RATE: if (!parse_double(optarg, 0, 1e10, &r->rate)) return usage_error("bad --rate '%s'", optarg); break;
        case OPT_BATCH:
            if (!parse_u64(optarg, &u) || u == 0 || u > 1000000) return usage_error("bad --batch '%s' (1..1000000)", optarg);
            r->batch = (size_t)u;
            break;
        case OPT_REFRESH:
            if (!parse_u64(optarg, &u) || u > 1000000) return usage_error("bad --refresh '%s'", optarg);
            r->refresh = (unsigned)u;
            break;
        case OPT_WIDE: r->ipfix_wide = true; break;
        case OPT_MAXPKT:
            if (!parse_u64(optarg, &u) || u < 512 || u > FLOWGEN_MAX_PACKET) return usage_error("bad --max-packet '%s' (512..8192)", optarg);
            r->max_packet = (size_t)u;
            break;
        case OPT_PROGRESS: r->progress = true; break;
        case OPT_PRELOAD: r->preload = true; break;
        case 'h': fputs(usage_text, stdout); return 1;
        default: fprintf(stderr, "Try 'flowgen --help'.\n"); return 2;
        }
    }
    if (optind < argc) return usage_error("unexpected argument '%s'", argv[optind]);
    if (r->output && r->to) return usage_error("%s", "-o and --to exclude each other");
    bool exportfmt = r->format == FG_V5 || r->format == FG_V9 || r->format == FG_IPFIX;
    if (r->preload && !exportfmt) return usage_error("%s", "--preload is for v5, v9 and ipfix packets");
    if (r->to && strncmp(r->to, "tcp://", 6) == 0 && (r->format == FG_V5 || r->format == FG_V9))
        return usage_error("%s", "NetFlow v5/v9 go over UDP only");
    if (r->to && strncmp(r->to, "udp://", 6) == 0 && !exportfmt)
        return usage_error("%s", "xml and batch output go to a file or tcp://, not UDP");
    if (r->format == FG_V5) {
        if (r->v6_share_given && r->p.v6_share > 0)
            return usage_error("%s", "NetFlow v5 carries IPv4 only: use --v6-share 0");
        r->p.v6_share = 0;
    }
    if ((r->format == FG_V5 || r->format == FG_V9) && dur_s > MAX_UPTIME_WINDOW_S)
        return usage_error("%s", "v5/v9 times are 32-bit uptime milliseconds: --duration at most 40 days");
    r->p.duration_ms = dur_s * 1000;
    if (r->p.start_ms > UINT64_MAX / 2) return usage_error("%s", "--start is too large");
    return 0;
}

static void summary(struct run *r)
{
    double el = now_s() - ((double)r->t0.tv_sec + r->t0.tv_nsec * 1e-9);
    static const char *const unit[] = { "document", "batch", "packet", "packet", "message" };
    fprintf(stderr, "flowgen: %llu records, %llu %s%s, %llu bytes, %.3f s, %.0f records/s\n",
            (unsigned long long)r->records, (unsigned long long)r->units, unit[r->format],
            r->units == 1 ? "" : r->format == FG_BATCH ? "es" : "s",
            (unsigned long long)r->sink.bytes, el, el > 0 ? r->records / el : 0.0);
}

int main(int argc, char **argv)
{
    struct run r = {
        .p = { .seed = 1, .count = DEFAULT_COUNT, .start_ms = DEFAULT_START_MS, .v6_share = 0.1,
               .reply_share = 0.3, .zipf_s = 1.1, .active_timeout_ms = ACTIVE_TIMEOUT_MS },
        .format = FG_XML, .batch = DEFAULT_BATCH, .max_packet = DEFAULT_MAX_PACKET,
        .refresh = DEFAULT_REFRESH, .sink = { .fd = -1 },
    };
    int rc = parse_args(&r, argc, argv);
    if (rc) return rc == 1 ? 0 : 2;
    signal(SIGPIPE, SIG_IGN);
    rc = sink_open(&r);
    if (rc != DIP_OK) return rc == DIP_EINVAL ? 2 : 1;
    struct flowgen_model *m = flowgen_model_new(&r.p);
    if (!m) {
        fprintf(stderr, "flowgen: out of memory\n");
        return 1;
    }
    dip_dynbuf_init(&r.pre, (size_t)16 << 30);
    r.pacer.rate = r.rate;
    r.pacer.burst = r.rate * 0.02 < 1 ? 1 : r.rate * 0.02;
    clock_gettime(CLOCK_MONOTONIC, &r.t0);
    r.pacer.last = r.t0;
    r.next_progress = r.t0;
    r.next_progress.tv_sec++;

    if (r.format == FG_XML) rc = run_xml(&r, m);
    else if (r.format == FG_BATCH) rc = run_batch(&r, m);
    else rc = run_export(&r, m);
    if (rc == DIP_OK && r.preload) rc = send_preloaded(&r);
    if (rc == DIP_OK) rc = sink_flush(&r.sink);
    flowgen_model_free(m);
    if (rc != DIP_OK) {
        if (rc == DIP_ENOMEM) fprintf(stderr, "flowgen: out of memory\n");
        return 1;
    }
    summary(&r);
    dip_dynbuf_free(&r.sink.buf);
    dip_dynbuf_free(&r.pre);
    if (r.sink.fd > STDERR_FILENO && close(r.sink.fd) < 0) {
        fprintf(stderr, "flowgen: close: %s\n", strerror(errno));
        return 1;
    }
    return 0;
}
