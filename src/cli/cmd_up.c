/* cmd_up.c - `dipstorage up`, `down` and `status`: a storage network of
 * separate node processes on this host (ARCHITECTURE 5). `up` writes the
 * cluster map and the TLS keys on first use and starts every node that is
 * not running (so it also restarts a node that died); `down` stops them;
 * `status` asks every node over TLS and prints each tank's tree. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "common/log.h"
#include "common/paths.h"
#include "common/xmlsafe.h"
#include "net/net.h"
#include "route/authz.h"
#include "route/map.h"
#include "route/proto.h"

static const char up_usage[] =
    "usage: dipstorage up [--dir DIR] [--leaves N] [--fanout N] [--strategy structured|random]\n"
    "                     [--base-port P] [--client-port P] [--netflow-port P] [--ipfix-port P]\n"
    "                     [--leaf-memory MIB] [--leaf-seal-records N] [--query-timeout S]\n"
    "                     [--timeout S]\n"
    "\n"
    "Starts a storage network on this host: four tanks (src, dst, sport, dport),\n"
    "each a root indexer over N leaves, and a front node that collects NetFlow/IPFIX\n"
    "and answers queries. Every node is a separate `dipstorage node` process with\n"
    "its data, log (node.log) and pid file under DIR/nodes/NAME; they talk TLS 1.3\n"
    "over loopback with keys of a private CA in DIR/tls, made on first use.\n"
    "The first run writes DIR/cluster.xml from the options; later runs use the map\n"
    "and start only the nodes that are not running. The nodes one run starts share\n"
    "a session of their own, away from the terminal: one scheduling group, in which\n"
    "the leaves' merges run below ingest and queries.\n"
    "\n"
    "options:\n"
    "  -d, --dir DIR         data folder (default: $DIP_DATA, else ./dipdata)\n"
    "  -l, --leaves N        leaves per tank (default 4)\n"
    "  -f, --fanout N        children per indexer (default 16; more leaves add a level)\n"
    "  -s, --strategy S      structured (route by key) or random (by flow ID; queries broadcast)\n"
    "  -p, --base-port P     first node-link port (default 7700)\n"
    "      --client-port P   client queries (default 7600)\n"
    "      --netflow-port P  collector UDP port for NetFlow (default 2055)\n"
    "      --ipfix-port P    collector UDP and TCP port for IPFIX (default 4739)\n"
    "  -m, --leaf-memory MIB memory budget of each leaf's store (default: 3 GiB over all leaves)\n"
    "      --leaf-seal-records N  a leaf seals its active records into a segment at N\n"
    "                        (default: its budget / 1 KiB, at least 262144); every 8\n"
    "                        segments of one size are merged into one in the background\n"
    "      --query-timeout S the deadline of a query (default 10): a part of the network\n"
    "                        that has not answered by then is listed as missing\n"
    "  -t, --timeout S       seconds to wait for the nodes to come up (default 30)\n"
    "\n"
    "Then: dipstorage status; dipstorage query XPATH; dipstorage down.\n";

static const char down_usage[] =
    "usage: dipstorage down [--dir DIR]\n"
    "\n"
    "Stops every node of the local cluster in DIR (SIGTERM; SIGKILL after 15 s).\n"
    "Records are durable: `dipstorage up` resumes with everything stored.\n"
    "  -d, --dir DIR   data folder (default: $DIP_DATA, else ./dipdata)\n";

static const char status_usage[] =
    "usage: dipstorage status [--dir DIR] [--xml]\n"
    "\n"
    "Asks every node of the cluster in DIR for its state over TLS and prints each\n"
    "tank's tree: node, key range, record count and liveness, then the front's\n"
    "replicator, access point and collector counters.\n"
    "  -d, --dir DIR   data folder (default: $DIP_DATA, else ./dipdata)\n"
    "  -x, --xml       print the replies as one <status> XML document\n"
    "exit status: 0 every node answered, 1 some did not.\n";

static const char *default_dir(void)
{
    const char *d = getenv("DIP_DATA");
    return d && *d ? d : "dipdata";
}

static int load_map(const char *dir, struct dip_map **m)
{
    char path[4200];
    struct dip_errbuf eb = { { 0 } };
    snprintf(path, sizeof path, "%s/cluster.xml", dir);
    if (dip_map_load(path, m, &eb)) {
        dip_error("%s", eb.msg);
        return -1;
    }
    return 0;
}

static pid_t read_pid(const char *dir, const char *name)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/nodes/%s/pid", dir, name);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    long pid = 0;
    if (fscanf(f, "%ld", &pid) != 1) pid = 0;
    fclose(f);
    return (pid_t)pid;
}

/* True if pid runs a dipstorage node (not a recycled pid). */
static bool node_alive(pid_t pid)
{
    if (pid <= 0 || kill(pid, 0) != 0) return false;
    char path[64], cmd[512] = { 0 };
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return false;
    size_t n = fread(cmd, 1, sizeof cmd - 1, f);
    fclose(f);
    for (size_t i = 0; i < n; i++)
        if (!cmd[i]) cmd[i] = ' ';
    /* a zombie has an empty command line */
    return strstr(cmd, "node") != NULL;
}

static bool port_open(const char *host, int port)
{
    int fd = socket(strchr(host, ':') ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return false;
    bool ok = false;
    if (strchr(host, ':')) {
        struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port) };
        ok = inet_pton(AF_INET6, host, &a.sin6_addr) == 1 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    } else {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
        ok = inet_pton(AF_INET, host, &a.sin_addr) == 1 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    }
    close(fd);
    return ok;
}

/* Node processes started by one `up` share one session of their own (see
 * enter_own_session), so they need none of their own. */
static pid_t spawn_node(const char *exe, const char *dir, const char *name)
{
    char ndir[4200], log[4300], map[4200];
    struct dip_errbuf eb;
    snprintf(ndir, sizeof ndir, "%s/nodes/%s", dir, name);
    snprintf(log, sizeof log, "%s/node.log", ndir);
    snprintf(map, sizeof map, "%s/cluster.xml", dir);
    if (dip_mkdir_p(ndir, &eb)) {
        dip_error("%s", eb.msg);
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        int nul = open("/dev/null", O_RDONLY);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        if (nul >= 0) dup2(nul, 0);
        execl(exe, "dipstorage", "node", "--config", map, "--name", name, (char *)NULL);
        fprintf(stderr, "cannot run %s: %s\n", exe, strerror(errno));
        _exit(127);
    }
    char pidpath[4300], text[32];
    snprintf(pidpath, sizeof pidpath, "%s/pid", ndir);
    int n = snprintf(text, sizeof text, "%d\n", (int)pid);
    if (dip_file_write_atomic(pidpath, text, (size_t)n, &eb)) dip_warn("%s", eb.msg);
    return pid;
}

static void print_log_tail(const char *dir, const char *name)
{
    char path[4300], line[1024];
    snprintf(path, sizeof path, "%s/nodes/%s/node.log", dir, name);
    FILE *f = fopen(path, "r");
    if (!f) return;
    char last[5][1024] = { { 0 } };
    int n = 0;
    while (fgets(line, sizeof line, f)) snprintf(last[n++ % 5], sizeof last[0], "%s", line);
    fclose(f);
    for (int i = n > 5 ? n - 5 : 0; i < n; i++) fprintf(stderr, "  %s", last[i % 5]);
}

static volatile sig_atomic_t session_child;

static void forward_signal(int sig)
{
    if (session_child > 0) kill((pid_t)session_child, sig);
}

/* Puts this process, and so the nodes it starts, in a new session: away
 * from the terminal (its hangup or ^C does not reach the nodes) and, where
 * the kernel groups processes by session for scheduling (sched_autogroup),
 * in one scheduling group. With a session per node every node was a group
 * of its own, given an equal share of the CPUs whatever its threads'
 * priorities, so the lower priority of merges (route/leaf.c) counted only
 * against the same node's other threads; in one group it counts against
 * every node's queries and ingest, as meant. A process group leader (a
 * command started by an interactive shell, or a session leader already)
 * cannot start a session: it forks, the child goes on in a new one, and the
 * parent waits for it, passing ^C on. Returns: -1 in the process that goes
 * on, else the exit code the parent returns. */
static int enter_own_session(void)
{
    if (setsid() >= 0) return -1;
    fflush(stdout);
    fflush(stderr);
    pid_t child = fork();
    if (child < 0) {
        dip_warn("cannot fork to start a session for the nodes (%s); they share this one", strerror(errno));
        return -1;
    }
    if (child == 0) {
        setsid();
        return -1;
    }
    session_child = child;
    signal(SIGINT, forward_signal);
    signal(SIGTERM, forward_signal);
    int st;
    while (waitpid(child, &st, 0) < 0)
        if (errno != EINTR) return DIP_EXIT_FAIL;
    return WIFEXITED(st) ? WEXITSTATUS(st) : DIP_EXIT_FAIL;
}

static int parse_port(const char *s, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || v < 1 || v > 65535) return -1;
    *out = (int)v;
    return 0;
}

int dip_cmd_up(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "dir", required_argument, 0, 'd' },        { "leaves", required_argument, 0, 'l' },
        { "fanout", required_argument, 0, 'f' },     { "strategy", required_argument, 0, 's' },
        { "base-port", required_argument, 0, 'p' },  { "client-port", required_argument, 0, 'C' },
        { "netflow-port", required_argument, 0, 'N' }, { "ipfix-port", required_argument, 0, 'I' },
        { "leaf-memory", required_argument, 0, 'm' }, { "timeout", required_argument, 0, 't' },
        { "query-timeout", required_argument, 0, 'Q' }, { "leaf-seal-records", required_argument, 0, 'R' },
        { "help", no_argument, 0, 'h' },             { 0, 0, 0, 0 },
    };
    struct dip_map_local_options lo;
    dip_map_local_options_default(&lo);
    const char *dir = default_dir();
    double timeout = 30;
    bool memory_set = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "d:l:f:s:p:m:t:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd': dir = optarg; break;
        case 'l': lo.leaves = (size_t)atol(optarg); break;
        case 'f': lo.fanout = (size_t)atol(optarg); break;
        case 's':
            if (strcmp(optarg, "structured") == 0) lo.strategy = DIP_MAP_STRUCTURED;
            else if (strcmp(optarg, "random") == 0) lo.strategy = DIP_MAP_RANDOM;
            else { fprintf(stderr, "up: strategy must be structured or random\n"); return DIP_EXIT_USAGE; }
            break;
        case 'p': if (parse_port(optarg, &lo.base_port)) goto bad; break;
        case 'C': if (parse_port(optarg, &lo.client_port)) goto bad; break;
        case 'N': if (parse_port(optarg, &lo.netflow_port)) goto bad; break;
        case 'I': if (parse_port(optarg, &lo.ipfix_port)) goto bad; break;
        case 'm': lo.leaf_memory = (size_t)atol(optarg) << 20; memory_set = true; break;
        case 't': timeout = atof(optarg); break;
        case 'R': {
            char *end;
            unsigned long long v = strtoull(optarg, &end, 10);
            if (*end || v < 1 || v > ((size_t)1 << 30)) goto bad;
            lo.leaf_seal_records = (size_t)v;
            break;
        }
        case 'Q': {
            double q = atof(optarg);
            if (q < 0.001 || q > 3600) goto bad;
            lo.query_timeout_ms = (uint32_t)(q * 1000);
            break;
        }
        case 'h': fputs(up_usage, stdout); return DIP_EXIT_OK;
        default: goto bad;
        }
    }
    if (optind != argc || lo.leaves < 1 || lo.leaves > 4096 || lo.fanout < 2) goto bad;
    if (!memory_set) {
        size_t per = ((size_t)3 << 30) / (lo.leaves * DIP_TANK_KEYS);
        lo.leaf_memory = per < ((size_t)64 << 20) ? ((size_t)64 << 20) : per > ((size_t)1 << 30) ? 0 : per;
    }
    int parent_rc = enter_own_session();
    if (parent_rc >= 0) return parent_rc;
    signal(SIGPIPE, SIG_IGN);
    dip_xml_init();
    struct dip_errbuf eb = { { 0 } };
    char mappath[4200], tlsdir[4200], exe[4096];
    snprintf(mappath, sizeof mappath, "%s/cluster.xml", dir);
    snprintf(tlsdir, sizeof tlsdir, "%s/tls", dir);
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0) { dip_error("cannot find my own executable"); return DIP_EXIT_FAIL; }
    exe[len] = 0;
    if (dip_mkdir_p(dir, &eb)) { dip_error("%s", eb.msg); return DIP_EXIT_FAIL; }
    struct dip_map *m = NULL;
    if (access(mappath, F_OK) == 0) {
        if (load_map(dir, &m)) return DIP_EXIT_FAIL;
    } else {
        if (dip_map_build_local(&lo, &m, &eb) || dip_map_write(m, mappath, &eb)) {
            dip_error("%s", eb.msg);
            dip_map_free(m);
            return DIP_EXIT_FAIL;
        }
        dip_info("wrote %s: %zu nodes, %zu leaves per tank, %s strategy", mappath, m->nnodes, lo.leaves,
                 lo.strategy == DIP_MAP_RANDOM ? "random" : "structured");
    }
    /* TLS: one certificate per node, naming its role, and one for clients and
     * these commands (role client: queries and status, never records) */
    struct dip_net_pki_name *names = calloc(m->nnodes + 1, sizeof *names);
    if (!names) { dip_map_free(m); return DIP_EXIT_FAIL; }
    for (size_t i = 0; i < m->nnodes; i++)
        names[i] = (struct dip_net_pki_name){ m->nodes[i].name, dip_authz_node_role(m, (int)i) };
    names[m->nnodes] = (struct dip_net_pki_name){ "client", DIP_NET_ROLE_CLIENT };
    int rc = dip_net_pki_ensure(tlsdir, names, m->nnodes + 1, &eb);
    free(names);
    if (rc) { dip_error("%s", eb.msg); dip_map_free(m); return DIP_EXIT_FAIL; }
    /* leaves first, then indexers, then the front: links find their peers sooner */
    pid_t *pids = calloc(m->nnodes, sizeof *pids);
    size_t started = 0, running = 0;
    for (int pass = 0; pass < 3; pass++) {
        for (size_t i = 0; i < m->nnodes; i++) {
            const struct dip_map_node *nd = &m->nodes[i];
            int mi = dip_map_member_of_node(m, (int)i);
            int kind = mi >= 0 && m->members[mi].leaf ? 0 : mi >= 0 ? 1 : 2;
            if (kind != pass) continue;
            pid_t old = read_pid(dir, nd->name);
            if (node_alive(old)) {
                running++;
                continue;
            }
            pids[i] = spawn_node(exe, dir, nd->name);
            if (pids[i] < 0) { dip_error("cannot start %s", nd->name); rc = -1; }
            else started++;
        }
    }
    /* wait until every started node listens */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    size_t ready = 0;
    for (size_t i = 0; i < m->nnodes && !rc; i++) {
        if (pids[i] <= 0) continue;
        const struct dip_map_node *nd = &m->nodes[i];
        for (;;) {
            int st;
            if (waitpid(pids[i], &st, WNOHANG) == pids[i]) {
                dip_error("node %s exited while starting; the end of %s/nodes/%s/node.log:", nd->name, dir, nd->name);
                print_log_tail(dir, nd->name);
                rc = -1;
                break;
            }
            if (port_open(nd->host, nd->port)) {
                ready++;
                break;
            }
            clock_gettime(CLOCK_MONOTONIC, &t1);
            if ((double)(t1.tv_sec - t0.tv_sec) > timeout) {
                dip_error("node %s did not start listening at %s:%d within %.0f s", nd->name, nd->host, nd->port,
                          timeout);
                print_log_tail(dir, nd->name);
                rc = -1;
                break;
            }
            usleep(20000);
        }
    }
    free(pids);
    if (rc) {
        dip_error("the cluster is not complete; see the node logs under %s/nodes, or run dipstorage down", dir);
        dip_map_free(m);
        return DIP_EXIT_FAIL;
    }
    printf("cluster \"%s\" in %s: %zu nodes (%zu started, %zu already running), %s strategy\n", m->name, dir,
           m->nnodes, started, running, m->strategy == DIP_MAP_RANDOM ? "random" : "structured");
    printf("  queries:   %s  (dipstorage query -c %s XPATH)\n", m->front.client, m->front.client);
    for (size_t i = 0; i < m->front.nlisten; i++) printf("  collector: %s\n", m->front.listen[i]);
    dip_map_free(m);
    return DIP_EXIT_OK;
bad:
    fputs(up_usage, stderr);
    return DIP_EXIT_USAGE;
}

int dip_cmd_down(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "dir", required_argument, 0, 'd' }, { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 },
    };
    const char *dir = default_dir();
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "d:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd': dir = optarg; break;
        case 'h': fputs(down_usage, stdout); return DIP_EXIT_OK;
        default: fputs(down_usage, stderr); return DIP_EXIT_USAGE;
        }
    }
    if (optind != argc) { fputs(down_usage, stderr); return DIP_EXIT_USAGE; }
    dip_xml_init();
    struct dip_map *m;
    if (load_map(dir, &m)) return DIP_EXIT_FAIL;
    pid_t *pids = calloc(m->nnodes, sizeof *pids);
    size_t signalled = 0;
    /* the front first, so nothing new arrives while the tanks stop */
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < m->nnodes; i++) {
            bool front = dip_map_member_of_node(m, (int)i) < 0;
            if (front != (pass == 0)) continue;
            pid_t pid = read_pid(dir, m->nodes[i].name);
            if (node_alive(pid) && kill(pid, SIGTERM) == 0) {
                pids[i] = pid;
                signalled++;
            }
        }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    size_t killed = 0;
    for (size_t i = 0; i < m->nnodes; i++) {
        if (!pids[i]) continue;
        while (node_alive(pids[i])) {
            waitpid(pids[i], NULL, WNOHANG);
            clock_gettime(CLOCK_MONOTONIC, &t1);
            if (t1.tv_sec - t0.tv_sec > 15) {
                dip_warn("node %s did not stop in 15 s: killing it", m->nodes[i].name);
                kill(pids[i], SIGKILL);
                killed++;
                break;
            }
            usleep(20000);
        }
        char path[4300];
        snprintf(path, sizeof path, "%s/nodes/%s/pid", dir, m->nodes[i].name);
        unlink(path);
    }
    printf("cluster \"%s\": %zu nodes stopped%s\n", m->name, signalled, killed ? " (some killed)" : "");
    free(pids);
    dip_map_free(m);
    return DIP_EXIT_OK;
}

/* Extracts attribute name="..." from one XML element text. */
static void attr(const char *xml, const char *name, char *out, size_t cap)
{
    char pat[64];
    snprintf(pat, sizeof pat, " %s=\"", name);
    const char *p = strstr(xml, pat);
    out[0] = 0;
    if (!p) return;
    p += strlen(pat);
    size_t n = 0;
    while (p[n] && p[n] != '"' && n + 1 < cap) {
        out[n] = p[n];
        n++;
    }
    out[n] = 0;
}

static void print_member(const struct dip_map *m, int mi, int depth, char **replies)
{
    const struct dip_map_member *mm = &m->members[mi];
    const struct dip_map_node *nd = &m->nodes[mm->node];
    char range[256], records[48] = "-", state[64], refused[24] = "0";
    dip_map_range_text(m, mi, range, sizeof range);
    const char *r = replies[mm->node];
    if (r) {
        attr(r, "refused", refused, sizeof refused);
        if (mm->leaf) attr(r, "records", records, sizeof records);
        else {
            char up[16], n[16];
            attr(r, "children-up", up, sizeof up);
            attr(r, "children", n, sizeof n);
            snprintf(records, sizeof records, "%s/%s up", up, n);
        }
        snprintf(state, sizeof state, "up");
    } else {
        snprintf(state, sizeof state, "DOWN");
    }
    printf("%*s%-*s %-7s %-21s %-5s %-14s %s", depth * 2, "", 22 - depth * 2, nd->name,
           mm->leaf ? "leaf" : "indexer", "", state, records, range);
    if (refused[0] && strcmp(refused, "0") != 0) printf("  (%s messages refused: see its node.log)", refused);
    putchar('\n');
    for (size_t i = 0; i < mm->nchildren; i++) print_member(m, mm->children[i], depth + 1, replies);
}

int dip_cmd_status(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "dir", required_argument, 0, 'd' }, { "xml", no_argument, 0, 'x' },
        { "help", no_argument, 0, 'h' },      { 0, 0, 0, 0 },
    };
    const char *dir = default_dir();
    bool xml = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "d:xh", longopts, NULL)) != -1) {
        switch (c) {
        case 'd': dir = optarg; break;
        case 'x': xml = true; break;
        case 'h': fputs(status_usage, stdout); return DIP_EXIT_OK;
        default: fputs(status_usage, stderr); return DIP_EXIT_USAGE;
        }
    }
    if (optind != argc) { fputs(status_usage, stderr); return DIP_EXIT_USAGE; }
    signal(SIGPIPE, SIG_IGN);
    dip_xml_init();
    struct dip_map *m;
    if (load_map(dir, &m)) return DIP_EXIT_FAIL;
    char ca[4200], cert[4200], key[4200];
    snprintf(ca, sizeof ca, "%s/tls/ca.pem", dir);
    snprintf(cert, sizeof cert, "%s/tls/client.pem", dir);
    snprintf(key, sizeof key, "%s/tls/client.key", dir);
    struct dip_errbuf eb = { { 0 } };
    struct dip_net_tls *tls;
    if (dip_net_tls_new(ca, cert, key, true, &tls, &eb)) {
        dip_error("%s", eb.msg);
        dip_map_free(m);
        return DIP_EXIT_FAIL;
    }
    char **replies = calloc(m->nnodes, sizeof *replies);
    size_t down = 0;
    for (size_t i = 0; i < m->nnodes; i++) {
        struct dip_dynbuf reply;
        uint8_t type = 0;
        dip_dynbuf_init(&reply, 16u << 20);
        if (dip_net_request(tls, m->nodes[i].host, m->nodes[i].port, DIP_MSG_STATUS, NULL, 0, 3000, &type, &reply,
                            &eb) == DIP_OK &&
            type == DIP_MSG_STATUS_REPLY) {
            dip_dynbuf_add(&reply, "", 1);
            replies[i] = (char *)dip_dynbuf_take(&reply, NULL);
        } else {
            down++;
            if (!xml) dip_warn("%s: %s", m->nodes[i].name, eb.msg[0] ? eb.msg : "no answer");
        }
        dip_dynbuf_free(&reply);
    }
    if (xml) {
        printf("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<status cluster=\"%s\" nodes=\"%zu\" down=\"%zu\">\n",
               m->name, m->nnodes, down);
        for (size_t i = 0; i < m->nnodes; i++)
            if (replies[i]) fputs(replies[i], stdout);
            else printf("<node name=\"%s\" down=\"true\"/>\n", m->nodes[i].name);
        printf("</status>\n");
    } else {
        printf("cluster \"%s\" (%s strategy): %zu nodes, %zu down\n\n", m->name,
               m->strategy == DIP_MAP_RANDOM ? "random" : "structured", m->nnodes, down);
        printf("%-22s %-7s %-21s %-5s %-14s %s\n", "NODE", "ROLE", "", "STATE", "RECORDS", "RANGE");
        for (int t = 0; t < DIP_TANK_KEYS; t++) {
            if (m->roots[t] < 0) continue;
            printf("tank %s\n", dip_tank_key_name((enum dip_tank_key)t));
            print_member(m, m->roots[t], 1, replies);
        }
        if (m->front.node >= 0) {
            const char *r = replies[m->front.node];
            printf("\nfront %s: %s\n", m->nodes[m->front.node].name, r ? "up" : "DOWN");
            if (r) {
                const char *p = strstr(r, "<replicator");
                char v[64];
                if (p) {
                    attr(p, "records", v, sizeof v);
                    printf("  replicator: %s records taken", v);
                    attr(p, "refused", v, sizeof v);
                    printf(", %s refused", v);
                    attr(p, "spool-bytes", v, sizeof v);
                    printf(", spool %s bytes\n", v);
                    for (const char *s = strstr(p, "<sender"); s; s = strstr(s + 1, "<sender")) {
                        char tank[16], behind[32], up[8];
                        attr(s, "tank", tank, sizeof tank);
                        attr(s, "behind", behind, sizeof behind);
                        attr(s, "up", up, sizeof up);
                        printf("    tank %-5s link %s, %s batches behind\n", tank,
                               strcmp(up, "true") == 0 ? "up" : "DOWN", behind);
                    }
                }
                if ((p = strstr(r, "<access"))) {
                    attr(p, "queries", v, sizeof v);
                    printf("  access point %s: %s queries", m->front.client, v);
                    attr(p, "partial", v, sizeof v);
                    printf(", %s partial", v);
                    attr(p, "fallbacks", v, sizeof v);
                    printf(", %s fallbacks", v);
                    attr(p, "direct", v, sizeof v);
                    printf(", %s sent straight to a leaf or indexer\n", v);
                }
            }
        }
    }
    for (size_t i = 0; i < m->nnodes; i++) free(replies[i]);
    free(replies);
    dip_net_tls_free(tls);
    dip_map_free(m);
    return down ? DIP_EXIT_FAIL : DIP_EXIT_OK;
}
