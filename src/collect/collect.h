/* collect.h - the flow collector: NetFlow v5, NetFlow v9 (RFC 3954) and IPFIX
 * (RFC 7011/7012) decoders sharing one template engine, per-exporter
 * accounting, IPFIX stream framing (TCP, RFC 5655 files) and the libuv
 * listeners that feed them.
 *
 * Layer: access. Decoders are pure functions of (bytes, exporter address, now,
 * collector state): no sockets, no globals, so a unit test can call them.
 * Every decoder reads untrusted bytes through src/common/cursor.h only. */
#ifndef DIP_COLLECT_H
#define DIP_COLLECT_H

#include <stddef.h>
#include <stdint.h>

#include "../common/dynbuf.h"
#include "../common/err.h"
#include "../flow/flow.h"

/* ---- limits and defaults ---- */

struct dip_collect_limits {
    /* Lifetime of a template that is not refreshed (UDP, RFC 7011 8.4 and
     * RFC 3954 9); 0: never. Templates that came over a stream
     * (dip_collect_ipfix_stream: TCP, files) never expire. */
    uint32_t template_timeout_ms;
    /* Data sets that arrive before their template are kept, oldest dropped
     * first, within these bounds (count, bytes, age). */
    size_t pending_max_sets;
    size_t pending_max_bytes;
    uint32_t pending_max_ms;
    size_t max_domains;   /* (exporter, version, domain) entries */
    size_t max_templates; /* templates per domain */
    const uint8_t *id_key; /* 16-byte flow ID key; NULL: dip_flow_id_default_key */
};

#define DIP_COLLECT_TEMPLATE_TIMEOUT_MS 1800000u
#define DIP_COLLECT_PENDING_SETS 512
#define DIP_COLLECT_PENDING_BYTES (1u << 20)
#define DIP_COLLECT_PENDING_MS 60000u
#define DIP_COLLECT_MAX_DOMAINS 4096
#define DIP_COLLECT_MAX_TEMPLATES 1024

/* Fills l with the defaults above. */
void dip_collect_limits_default(struct dip_collect_limits *l);

/* ---- the collector state ---- */

/* Templates, exporters, buffered data sets and statistics of one collector.
 * Not thread-safe: one per event loop. */
struct dip_collect;

/* Creates a collector with the given limits (NULL: defaults).
 * Returns DIP_OK with *out new (free with dip_collect_free()), or DIP_ENOMEM. */
int dip_collect_new(const struct dip_collect_limits *lim, struct dip_collect **out);
void dip_collect_free(struct dip_collect *c);

/* Where decoded records go. emit() is called at most once per decode call with
 * every complete record of the message (and of buffered data sets its
 * templates unlocked); flows are borrowed for the duration of the call. A
 * non-zero return is passed back to the decoder's caller. emit may be NULL. */
struct dip_collect_sink {
    int (*emit)(void *ctx, const struct dip_flow *flows, size_t n);
    void *ctx;
};

/* The decoders. Each decodes one message (a UDP datagram's payload, or one
 * framed IPFIX message from TCP or a file) from exporter at time now_ms (ms
 * since the epoch, for template expiry and buffering only; record times come
 * from the message).
 * Returns:
 *   DIP_OK       the message was decoded (it may have carried no records);
 *   DIP_EINVAL   malformed: counted on the exporter with reason and byte
 *                offset (also in eb); none of its records were emitted;
 *   DIP_EUNSUPP  the version field names another protocol (counted);
 *   DIP_ERANGE   a limit refused a new exporter domain (counted in totals);
 *   DIP_ENOMEM, or whatever sink->emit returned. */
int dip_collect_netflow_v5(struct dip_collect *c, const uint8_t *data, size_t len,
                           const struct dip_addr *exporter, uint64_t now_ms,
                           const struct dip_collect_sink *sink, struct dip_errbuf *eb);
int dip_collect_netflow_v9(struct dip_collect *c, const uint8_t *data, size_t len,
                           const struct dip_addr *exporter, uint64_t now_ms,
                           const struct dip_collect_sink *sink, struct dip_errbuf *eb);
int dip_collect_ipfix(struct dip_collect *c, const uint8_t *data, size_t len,
                      const struct dip_addr *exporter, uint64_t now_ms,
                      const struct dip_collect_sink *sink, struct dip_errbuf *eb);
/* The same for a message framed from a TCP session or a file: templates it
 * defines do not expire (RFC 7011 8.4); they last until withdrawn or until
 * dip_collect_forget_exporter(). */
int dip_collect_ipfix_stream(struct dip_collect *c, const uint8_t *data, size_t len,
                             const struct dip_addr *exporter, uint64_t now_ms,
                             const struct dip_collect_sink *sink, struct dip_errbuf *eb);
/* Dispatches on the version field (5, 9 or 10) to one of the above (datagrams). */
int dip_collect_packet(struct dip_collect *c, const uint8_t *data, size_t len,
                       const struct dip_addr *exporter, uint64_t now_ms,
                       const struct dip_collect_sink *sink, struct dip_errbuf *eb);

/* Drops expired templates and buffered data sets older than the limits
 * (counted as pending-dropped). Call it from a timer. */
void dip_collect_expire(struct dip_collect *c, uint64_t now_ms);

/* Forgets every template and buffered set of exporter (all versions and
 * domains), keeping its statistics: an IPFIX TCP session ended (RFC 7011 8). */
void dip_collect_forget_exporter(struct dip_collect *c, const struct dip_addr *exporter);

/* ---- accounting ---- */

#define DIP_COLLECT_REASON_MAX 128

/* Counters of one (exporter, version, domain). */
struct dip_collect_stats {
    struct dip_addr exporter;
    uint32_t domain;       /* v5: engine_type * 256 + engine_id; v9: source id; IPFIX: observation domain */
    uint8_t version;       /* 5, 9 or 10; 0 when the header was too short to tell */
    uint64_t packets;      /* messages received, malformed ones included */
    uint64_t records;      /* flow records emitted */
    uint64_t option_records; /* options data records applied (sampling, system init time) */
    uint64_t lost_records; /* sequence gaps: v5 and IPFIX count records */
    uint64_t lost_packets; /* sequence gaps: v9 counts packets */
    uint64_t out_of_order; /* sequence numbers behind the expected one (late, duplicate, restart) */
    uint64_t malformed;    /* malformed messages */
    uint64_t templates;    /* templates currently cached */
    uint64_t template_changes;   /* a template id redefined with another layout */
    uint64_t template_withdrawals;
    uint64_t templates_expired;
    uint64_t pending_sets;       /* data sets buffered until their template came */
    uint64_t pending_dropped;    /* buffered data sets dropped (no template in time, limits) */
    uint64_t last_seen_ms;
    size_t last_malformed_offset; /* byte offset in the message of the last malformed one */
    char last_malformed_reason[DIP_COLLECT_REASON_MAX]; /* "" when none */
};

/* Collector-wide counters. */
struct dip_collect_totals {
    uint64_t packets, records, malformed, unsupported, refused_domains;
    uint64_t pending_sets, pending_dropped;
};

/* Returns: the number of (exporter, version, domain) entries. */
size_t dip_collect_stats_count(const struct dip_collect *c);
/* Copies entry i (0 <= i < count, in order of first appearance) into out.
 * Returns DIP_OK or DIP_ENOTFOUND. */
int dip_collect_stats_get(const struct dip_collect *c, size_t i, struct dip_collect_stats *out);
/* Finds the entry of (exporter, version, domain). Returns DIP_OK or DIP_ENOTFOUND. */
int dip_collect_stats_find(const struct dip_collect *c, const struct dip_addr *exporter, uint8_t version,
                           uint32_t domain, struct dip_collect_stats *out);
void dip_collect_totals_get(const struct dip_collect *c, struct dip_collect_totals *out);

/* Appends one line per entry ("EXPORTER v9 domain 0: packets=.. records=.. ...")
 * and a totals line. Returns DIP_OK or a dynbuf error. */
int dip_collect_stats_text(const struct dip_collect *c, struct dip_dynbuf *out);
/* Appends `<exporters>` holding one element per entry:
 * `<exporter address=".." version=".." domain=".." packets=".." records=".."
 * lost-records=".." lost-packets=".." malformed=".." [last-malformed=".."
 * last-malformed-offset=".."]/>`. Returns DIP_OK or a dynbuf error. */
int dip_collect_stats_xml(const struct dip_collect *c, struct dip_dynbuf *out);
/* Appends the one element of s (as above, no newline). */
int dip_collect_stats_xml_one(const struct dip_collect_stats *s, struct dip_dynbuf *out);

/* ---- IPFIX message streams: TCP (RFC 7011 10.4) and files (RFC 5655) ---- */

/* Splits a byte stream into IPFIX messages by their length field. Bytes may
 * arrive in any split. */
struct dip_collect_stream {
    uint8_t buf[65535];
    size_t have;
    uint64_t messages;
};

static inline void dip_collect_stream_init(struct dip_collect_stream *s) { s->have = 0; s->messages = 0; }

/* Feeds len bytes; calls on_message(ctx, msg, msg_len) for each complete
 * message (msg borrowed for the call). Stops at the first non-zero return of
 * on_message and returns it.
 * Returns: DIP_OK (remaining bytes kept for the next call), DIP_EPROTO when
 * the stream is not IPFIX (version != 10 or length < 16: the stream cannot be
 * resynchronised; eb names the stream offset), or on_message's error. */
int dip_collect_stream_feed(struct dip_collect_stream *s, const uint8_t *data, size_t len,
                            int (*on_message)(void *ctx, const uint8_t *msg, size_t msg_len), void *ctx,
                            struct dip_errbuf *eb);

/* Decodes an IPFIX file (RFC 5655: a sequence of IPFIX messages) with c,
 * attributing the records to exporter (NULL: 0.0.0.0). Malformed messages
 * are counted and skipped; a broken framing stops the read.
 * Returns DIP_OK, DIP_EIO, DIP_EPROTO (framing, eb has the offset), or the
 * sink's error. *messages (if not NULL) receives the number of messages. */
int dip_collect_read_ipfix_file(struct dip_collect *c, const char *path, const struct dip_addr *exporter,
                                const struct dip_collect_sink *sink, uint64_t *messages,
                                struct dip_errbuf *eb);

/* ---- listeners (libuv): UDP for all three protocols, IPFIX over TCP ---- */

struct uv_loop_s;
struct dip_collect_listener;

/* What a listener tells its owner: a line of text at a dip_log level
 * (0 debug .. 3 error). Library code never prints; the command logs these. */
typedef void (*dip_collect_log_fn)(void *ctx, int level, const char *msg);

struct dip_collect_listen_options {
    size_t udp_rcvbuf;          /* socket receive buffer (default 4 MiB) */
    uint32_t udp_coalesce_us;   /* pause of a busy loop to let datagrams queue up (default 200, at most 100000; 0: never) */
    uint32_t tcp_idle_ms;       /* a TCP exporter stuck inside a message this long is dropped (default 120 s) */
    size_t tcp_max_sessions;    /* concurrent TCP exporters per listener (default 256) */
    size_t tcp_rcvbuf;          /* each TCP session's receive buffer (default 1 MiB; 0: the kernel's autotuning,
                                   up to net.ipv4.tcp_rmem's max). It bounds what a crash of the collector loses:
                                   bytes the kernel acknowledged to the exporter that the collector had not read */
    const struct dip_addr *allow; /* exporters allowed (borrowed, must outlive the listener); NULL: all */
    size_t nallow;
    dip_collect_log_fn log;
    void *log_ctx;
};
#define DIP_COLLECT_UDP_RCVBUF (4u << 20)
#define DIP_COLLECT_UDP_COALESCE_US 200u
#define DIP_COLLECT_TCP_IDLE_MS 120000u
#define DIP_COLLECT_TCP_SESSIONS 256
#define DIP_COLLECT_TCP_RCVBUF (1u << 20)

void dip_collect_listen_options_default(struct dip_collect_listen_options *o);

/* Starts a listener on loop for url: "udp://ADDR:PORT" (NetFlow v5, v9 and
 * IPFIX, told apart by their version field), "tcp://ADDR:PORT" (IPFIX, RFC
 * 7011 10.4, many exporters at once) or "sctp://ADDR:PORT". IPv6 addresses
 * in brackets: "udp://[::]:2055". Decoded records go to sink through c; c,
 * sink and opt->allow are borrowed and must outlive the listener.
 * Returns DIP_OK with *out new (dip_collect_listener_close), DIP_EINVAL for a
 * bad URL, DIP_EUNSUPP for SCTP ("SCTP is not supported by this kernel" when
 * the kernel has no SCTP), DIP_EIO when the socket cannot be bound. */
int dip_collect_listen(struct uv_loop_s *loop, struct dip_collect *c, const char *url,
                       const struct dip_collect_listen_options *opt, const struct dip_collect_sink *sink,
                       struct dip_collect_listener **out, struct dip_errbuf *eb);

/* Returns: the bound port (useful after binding port 0). */
int dip_collect_listener_port(const struct dip_collect_listener *l);

/* Listener counters besides the collector's: datagrams or sessions refused
 * by the allow-list, TCP sessions accepted and dropped, receive errors. */
struct dip_collect_listener_stats {
    uint64_t datagrams, denied, sessions, sessions_dropped, receive_errors, sink_errors;
    uint32_t udp_rcvbuf; /* the receive buffer the kernel granted */
};
void dip_collect_listener_stats(const struct dip_collect_listener *l, struct dip_collect_listener_stats *out);

/* Pauses (or resumes) reading from every TCP session of l, new ones too:
 * the exporters' TCP windows fill and they wait, so a consumer that cannot
 * keep up (the replicator's spool) slows them down instead of refusing
 * records. UDP listeners ignore it: a datagram cannot wait. */
void dip_collect_listener_pause(struct dip_collect_listener *l, bool pause);

/* Stops listening, closes every session and frees l once libuv has closed
 * its handles (run the loop to let that happen). */
void dip_collect_listener_close(struct dip_collect_listener *l);

#endif
