/* proto.h - the messages of node links (frame types and payloads carried by
 * src/net/ frames): ingest batches and their acknowledgements, queries and
 * their answers, status. Records travel as binary batches (src/flow/), the
 * rest as small big-endian headers or XML text.
 *
 * Layer: routing. Encoders append to a dynbuf; decoders read untrusted bytes
 * through a bounds-checked cursor and return DIP_EPROTO for anything short
 * or inconsistent. */
#ifndef DIP_ROUTE_PROTO_H
#define DIP_ROUTE_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/dynbuf.h"
#include "common/err.h"
#include "flow/flow.h"

enum dip_msg_type {
    DIP_MSG_INGEST = 1, /* origin, seq, batch -> DIP_MSG_ACK */
    DIP_MSG_ACK = 2,    /* code (DIP_OK: stored or already stored), message */
    DIP_MSG_QUERY = 3,  /* deadline, mode, tank, XPath -> DIP_MSG_ANSWER or DIP_MSG_ERROR */
    DIP_MSG_ANSWER = 4, /* kind, completeness, numbers, missing ranges (XML), batch of flows */
    DIP_MSG_ERROR = 5,  /* code, column, message */
    DIP_MSG_STATUS = 6, /* (empty) -> DIP_MSG_STATUS_REPLY */
    DIP_MSG_STATUS_REPLY = 7, /* one <node .../> element */
    DIP_MSG_PING = 8,   /* (empty) -> DIP_MSG_PONG, answered on the loop thread: liveness */
    DIP_MSG_PONG = 9,
};

/* A peer that has not answered a ping for this long is taken as not
 * responding: queries skip it at once (its range is listed as missing). */
#define DIP_PING_MS 500u
#define DIP_SUSPECT_MS 1500u

#define DIP_MSG_ORIGIN_MAX 64

/* ---- ingest ---- */
struct dip_msg_ingest {
    char origin[DIP_MSG_ORIGIN_MAX + 1];
    uint64_t seq;
    const uint8_t *batch; /* borrowed from the frame: a binary batch (dip_batch_decode) */
    size_t batch_len;
};
/* Appends the ingest payload: u8 origin length, origin, u64 seq, then the
 * batch bytes (already encoded by dip_batch_encode). */
int dip_msg_ingest_encode(struct dip_dynbuf *out, const char *origin, uint64_t seq, const void *batch, size_t len);
int dip_msg_ingest_decode(const uint8_t *p, size_t len, struct dip_msg_ingest *m, struct dip_errbuf *eb);

/* ---- acknowledgement and error (same layout: i32 code, u32 column, text) ---- */
int dip_msg_status_encode(struct dip_dynbuf *out, int code, uint32_t column, const char *message);
int dip_msg_status_decode(const uint8_t *p, size_t len, int *code, uint32_t *column, char *message, size_t cap);

/* ---- query ---- */
enum dip_query_mode {
    DIP_QUERY_ANSWER = 0, /* evaluate the expression (shapes flows, count, sum, boolean) */
    DIP_QUERY_GATHER = 1, /* return every record: the expression is evaluated at the access point */
};
struct dip_msg_query {
    uint32_t deadline_ms; /* time left for the answer, from receipt */
    uint8_t mode;         /* enum dip_query_mode */
    const char *xpath;    /* borrowed, NUL-terminated copy in the caller's buffer */
    size_t xpath_len;
};
int dip_msg_query_encode(struct dip_dynbuf *out, uint32_t deadline_ms, uint8_t mode, const char *xpath, size_t len);
/* xpath is copied into buf (cap bytes, NUL-terminated). */
int dip_msg_query_decode(const uint8_t *p, size_t len, struct dip_msg_query *m, char *buf, size_t cap,
                         struct dip_errbuf *eb);

/* ---- answer ---- */
/* kind: enum dip_result_kind of src/store/store.h (nodes, number, string, boolean).
 * missing: zero or more <missing .../> elements (XML text) naming the key
 * ranges that did not answer; complete is false when there are any. */
struct dip_msg_answer {
    uint8_t kind;
    bool complete;
    bool boolean;
    uint64_t count;
    double number;
    uint64_t chunks_read, chunks_skipped;
    const char *missing;  /* borrowed from the frame, missing_len bytes */
    size_t missing_len;
    const uint8_t *batch; /* borrowed: the flows (kind nodes), a binary batch, or empty */
    size_t batch_len;
};
/* Appends the header and missing text; the caller appends the batch bytes
 * right after (they run to the end of the payload). */
int dip_msg_answer_encode_head(struct dip_dynbuf *out, const struct dip_msg_answer *a);
int dip_msg_answer_decode(const uint8_t *p, size_t len, struct dip_msg_answer *a, struct dip_errbuf *eb);

#endif
