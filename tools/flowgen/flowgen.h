/* flowgen.h - the parts of the synthetic traffic generator (tools/flowgen):
 * a seeded traffic model that produces struct dip_flow records (model.c) and
 * the NetFlow v5 / v9 / IPFIX export-packet encoders (export.c). main.c holds
 * the command line, the outputs and the pacing. Internal to the tool. */
#ifndef FLOWGEN_H
#define FLOWGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flow/flow.h"

/* ---- pseudo-random numbers: xoshiro256** seeded through splitmix64 ---- */

struct flowgen_rng {
    uint64_t s[4];
};

void flowgen_rng_seed(struct flowgen_rng *r, uint64_t seed);
uint64_t flowgen_rng_next(struct flowgen_rng *r);
/* Returns: a uniform integer in [0, n), n > 0. */
uint64_t flowgen_rng_below(struct flowgen_rng *r, uint64_t n);
/* Returns: a uniform double in [0, 1). */
double flowgen_rng_unit(struct flowgen_rng *r);

/* ---- weighted choice in O(1) (Walker/Vose alias method) ---- */

struct flowgen_alias {
    uint32_t n;
    double *prob;   /* owned */
    uint32_t *alias; /* owned */
};

/* Builds the table for n weights (not all zero). Returns DIP_OK or DIP_ENOMEM. */
int flowgen_alias_init(struct flowgen_alias *a, const double *weights, uint32_t n);
/* Builds a Zipf table over ranks 1..n: weight of rank k is 1 / k^s. */
int flowgen_alias_init_zipf(struct flowgen_alias *a, uint32_t n, double s);
void flowgen_alias_free(struct flowgen_alias *a);
/* Returns: an index in [0, n) drawn with the table's weights. */
uint32_t flowgen_alias_draw(const struct flowgen_alias *a, struct flowgen_rng *r);

/* ---- the traffic model ---- */

struct flowgen_params {
    uint64_t seed;
    uint64_t count;       /* records to generate */
    uint64_t start_ms;    /* window start, ms since the epoch */
    uint64_t duration_ms; /* window length */
    double v6_share;      /* share of IPv6 records, 0..1 */
    double reply_share;   /* share of server-to-client records, 0..1 */
    double zipf_s;        /* Zipf exponent of host popularity */
    uint32_t active_timeout_ms; /* longer flows are cut into records */
};

/* Exporting devices the records are attributed to. */
struct flowgen_exporter {
    struct dip_addr addr;
    uint32_t domain;  /* v5 engine id, v9 source id, IPFIX observation domain */
    bool routing;     /* sends nexthop, AS numbers and masks */
    double weight;
};

#define FLOWGEN_EXPORTERS 4
extern const struct flowgen_exporter flowgen_exporters[FLOWGEN_EXPORTERS];

struct flowgen_model; /* opaque */

/* Builds the host populations and samplers for p (copied).
 * Returns: new model (free with flowgen_model_free) or NULL on failure. */
struct flowgen_model *flowgen_model_new(const struct flowgen_params *p);
void flowgen_model_free(struct flowgen_model *m);
/* Generates record number `index` (0-based, called in increasing order) into
 * *f, id left 0; *exporter gets the index into flowgen_exporters. */
void flowgen_model_next(struct flowgen_model *m, uint64_t index, struct dip_flow *f,
                        unsigned *exporter);

/* ---- export packets ---- */

enum flowgen_format { FG_XML, FG_BATCH, FG_V5, FG_V9, FG_IPFIX };

/* Receives each finished export packet (message); returns DIP_OK or an error
 * that stops generation. `records` is the number of data records in it. */
typedef int (*flowgen_emit_fn)(void *ctx, const uint8_t *pkt, size_t len, unsigned records);

struct flowgen_export_opts {
    enum flowgen_format format; /* FG_V5, FG_V9 or FG_IPFIX */
    unsigned refresh;           /* resend templates every N packets; 0 = only first */
    bool ipfix_wide;            /* IPFIX: one 20-field template for every exporter */
    uint64_t start_ms;          /* the exporters booted before this (v5/v9 uptime) */
    uint32_t active_timeout_ms; /* IPFIX flowEndReason: records this long were cut */
    size_t max_packet;          /* payload size limit (bytes), at most FLOWGEN_MAX_PACKET */
};

#define FLOWGEN_MAX_PACKET 8192

struct flowgen_export; /* opaque */

/* Returns: new exporter state (free with flowgen_export_free) or NULL. */
struct flowgen_export *flowgen_export_new(const struct flowgen_export_opts *o, flowgen_emit_fn emit,
                                          void *ctx);
void flowgen_export_free(struct flowgen_export *x);
/* Adds a record from exporter number `exporter`; emits packets as they fill.
 * Returns DIP_OK, DIP_ERANGE when the record does not fit the format, or the
 * emit callback's error. */
int flowgen_export_add(struct flowgen_export *x, const struct dip_flow *f, unsigned exporter);
/* Emits every partly filled packet. Returns DIP_OK or the callback's error. */
int flowgen_export_flush(struct flowgen_export *x);
/* Returns: export packets emitted so far. */
uint64_t flowgen_export_packets(const struct flowgen_export *x);

#endif
