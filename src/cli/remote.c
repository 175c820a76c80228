/* remote.c - asking an access point (the client protocol of ARCHITECTURE 5)
 * for `dipstorage query -c` and `dipstorage export`: one line out, one XML
 * document back, over plain TCP on loopback or TLS with a client certificate
 * of the cluster's CA. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "common/log.h"
#include "net/net.h"

static int split(const char *hp, char *host, size_t cap, int *port)
{
    const char *colon = strrchr(hp, ':');
    if (!colon) {
        snprintf(host, cap, "%s", hp);
        *port = 7600;
        return 0;
    }
    size_t n = (size_t)(colon - hp);
    if (hp[0] == '[' && n >= 2 && hp[n - 1] == ']') {
        hp++;
        n -= 2;
    }
    if (n == 0 || n >= cap) return -1;
    memcpy(host, hp, n);
    host[n] = 0;
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end || p < 1 || p > 65535) return -1;
    *port = (int)p;
    return 0;
}

static bool loopback(const char *host)
{
    return strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0 || strcmp(host, "localhost") == 0;
}

int dip_cli_remote_query(const char *connect, const char *tls_dir, const char *xpath, double timeout_s,
                         struct dip_dynbuf *reply)
{
    char host[512];
    int port;
    if (split(connect, host, sizeof host, &port)) {
        dip_error("bad address '%s' (HOST:PORT)", connect);
        return DIP_EXIT_USAGE;
    }
    if (strchr(xpath, '\n')) {
        dip_error("the expression must be one line");
        return DIP_EXIT_USAGE;
    }
    struct dip_net_tls *tls = NULL;
    struct dip_errbuf eb = { { 0 } };
    if (!tls_dir && !loopback(host)) {
        const char *d = getenv("DIP_DATA");
        static char def[4096];
        snprintf(def, sizeof def, "%.4000s/tls", d && *d ? d : "dipdata");
        tls_dir = def;
    }
    if (tls_dir) {
        char ca[4300], cert[4300], key[4300];
        snprintf(ca, sizeof ca, "%s/ca.pem", tls_dir);
        snprintf(cert, sizeof cert, "%s/client.pem", tls_dir);
        snprintf(key, sizeof key, "%s/client.key", tls_dir);
        if (dip_net_tls_new(ca, cert, key, true, &tls, &eb)) {
            dip_error("TLS: %s", eb.msg);
            return DIP_EXIT_FAIL;
        }
    }
    size_t n = strlen(xpath);
    char *line = malloc(n + 2);
    if (!line) return DIP_EXIT_FAIL;
    memcpy(line, xpath, n);
    line[n] = '\n';
    int rc = dip_net_exchange(tls, host, port, line, n + 1, (uint32_t)(timeout_s * 1000), reply, &eb);
    free(line);
    if (tls) dip_net_tls_free(tls);
    if (rc) {
        dip_error("%s", eb.msg);
        return DIP_EXIT_FAIL;
    }
    return DIP_EXIT_OK;
}
