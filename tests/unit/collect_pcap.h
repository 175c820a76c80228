/* collect_pcap.h - a tiny reader of classic pcap files for the collector's
 * tests: yields each UDP payload with its source (the exporter) address and
 * capture time. Ethernet (with 802.1Q tags), raw IP and Linux cooked
 * captures; IPv4 and IPv6 (no extension headers). Header-only, test use. */
#ifndef DIP_TEST_COLLECT_PCAP_H
#define DIP_TEST_COLLECT_PCAP_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flow/flow.h"

struct pcap_udp {
    const uint8_t *payload;
    size_t len;
    struct dip_addr src;
    uint16_t sport, dport;
    uint64_t ts_ms;
};

struct pcap_file {
    uint8_t *data;
    size_t len, pos;
    int swap;      /* file written in the other byte order */
    int nsec;      /* nanosecond timestamps */
    uint32_t linktype;
};

static uint32_t pcap_u32(const struct pcap_file *pf, const uint8_t *p)
{
    uint32_t v = (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
    return pf->swap ? __builtin_bswap32(v) : v;
}

/* Returns 0 and fills pf, or -1 when the file cannot be read or is not a classic pcap. */
static int pcap_open(struct pcap_file *pf, const char *path)
{
    memset(pf, 0, sizeof *pf);
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    pf->data = malloc(n > 0 ? (size_t)n : 1);
    if (!pf->data || n < 24 || fread(pf->data, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(pf->data);
        pf->data = NULL;
        return -1;
    }
    fclose(f);
    pf->len = (size_t)n;
    uint32_t magic = (uint32_t)pf->data[0] | ((uint32_t)pf->data[1] << 8) | ((uint32_t)pf->data[2] << 16) |
                     ((uint32_t)pf->data[3] << 24);
    if (magic == 0xa1b2c3d4u || magic == 0xa1b23c4du) pf->swap = 0;
    else if (magic == 0xd4c3b2a1u || magic == 0x4d3cb2a1u) pf->swap = 1;
    else { free(pf->data); pf->data = NULL; return -1; }
    pf->nsec = magic == 0xa1b23c4du || magic == 0x4d3cb2a1u;
    pf->linktype = pcap_u32(pf, pf->data + 20);
    pf->pos = 24;
    return 0;
}

static void pcap_close(struct pcap_file *pf) { free(pf->data); pf->data = NULL; }

/* Parses IP + UDP at p (n bytes). Returns 1 for a UDP datagram. */
static int pcap_ip_udp(const uint8_t *p, size_t n, struct pcap_udp *u)
{
    const uint8_t *udp;
    size_t left;
    if (n >= 20 && (p[0] >> 4) == 4) {
        size_t ihl = (size_t)(p[0] & 15) * 4;
        size_t total = ((size_t)p[2] << 8) | p[3];
        if (p[9] != 17 || ihl < 20 || total > n || total < ihl + 8) return 0;
        dip_addr_from_v4(&u->src, ((uint32_t)p[12] << 24) | ((uint32_t)p[13] << 16) | ((uint32_t)p[14] << 8) | p[15]);
        udp = p + ihl;
        left = total - ihl;
    } else if (n >= 40 && (p[0] >> 4) == 6) {
        size_t plen = ((size_t)p[4] << 8) | p[5];
        if (p[6] != 17 || 40 + plen > n || plen < 8) return 0;
        memcpy(u->src.b, p + 8, 16);
        udp = p + 40;
        left = plen;
    } else {
        return 0;
    }
    size_t ulen = ((size_t)udp[4] << 8) | udp[5];
    if (ulen < 8 || ulen > left) return 0;
    u->sport = (uint16_t)((udp[0] << 8) | udp[1]);
    u->dport = (uint16_t)((udp[2] << 8) | udp[3]);
    u->payload = udp + 8;
    u->len = ulen - 8;
    return 1;
}

/* Returns 1 with the next UDP datagram in u, 0 at the end (non-UDP frames are skipped). */
static int pcap_next_udp(struct pcap_file *pf, struct pcap_udp *u)
{
    while (pf->pos + 16 <= pf->len) {
        const uint8_t *h = pf->data + pf->pos;
        uint32_t secs = pcap_u32(pf, h), frac = pcap_u32(pf, h + 4), caplen = pcap_u32(pf, h + 8);
        if (caplen > pf->len - pf->pos - 16) return 0;
        const uint8_t *p = h + 16;
        size_t n = caplen;
        pf->pos += 16 + (size_t)caplen;
        u->ts_ms = (uint64_t)secs * 1000 + (pf->nsec ? frac / 1000000 : frac / 1000);
        if (pf->linktype == 1) { /* Ethernet */
            if (n < 14) continue;
            uint16_t type = (uint16_t)((p[12] << 8) | p[13]);
            p += 14; n -= 14;
            while ((type == 0x8100 || type == 0x88a8) && n >= 4) {
                type = (uint16_t)((p[2] << 8) | p[3]);
                p += 4; n -= 4;
            }
            if (type != 0x0800 && type != 0x86dd) continue;
        } else if (pf->linktype == 113) { /* Linux cooked */
            if (n < 16) continue;
            p += 16; n -= 16;
        } else if (pf->linktype != 101 && pf->linktype != 12) {
            continue;
        }
        if (pcap_ip_udp(p, n, u)) return 1;
    }
    return 0;
}

#endif
