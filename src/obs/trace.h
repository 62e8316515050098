/* trace.h — W3C trace context (traceparent parse/format, ids) and spans:
 * a span is written straight into the calling thread's bounded ring
 * (keel_span_begin/commit: no lock, never blocks; a full ring drops and
 * counts). One background thread (otlp.c) drains the rings and posts
 * OTLP/HTTP JSON to the collector in batches; when the collector is down
 * the batch is dropped and counted, and the next one is tried as usual. */
#ifndef KEEL_OBS_TRACE_H
#define KEEL_OBS_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "obs/metrics.h"

/* Named ceilings. */
#define KEEL_TRACE_RING_BYTES (1u << 20)   /* spans queued per thread (~6,000 of a hello request) */
#define KEEL_TRACE_BATCH_SPANS 1024u       /* spans per POST (~450 KiB: stays in cache) */
#define KEEL_TRACE_FLUSH_MS 1000u          /* export at least this often */
#define KEEL_TRACE_IO_TIMEOUT_MS 2000u     /* connect/send/receive to the collector */
#define KEEL_TRACE_MAX_STATE 256u          /* tracestate bytes kept */
#define KEEL_SPAN_TEXT 64u                 /* bytes of each span string field */

typedef struct keel_trace_ctx {
    uint8_t trace_id[16];
    uint8_t span_id[8];          /* the parent for spans made under it */
    bool sampled;
    char state[KEEL_TRACE_MAX_STATE];   /* tracestate as received ("" none) */
} keel_trace_ctx;

/* Parses a traceparent header value (version 00 layout; later versions
 * accepted by their 00 prefix as the spec asks). false for anything
 * malformed: wrong length, upper-case or non-hex digits, version ff,
 * all-zero ids. Never reads past v[len). */
bool keel_traceparent_parse(const char *v, size_t len, keel_trace_ctx *out);
/* "00-<trace>-<span>-<flags>" into out (56 bytes with the NUL). */
void keel_traceparent_format(const keel_trace_ctx *c, char out[56]);

/* Random non-zero ids (per-thread generator seeded from getrandom). */
void keel_trace_new_id(uint8_t *id, size_t len);
/* A new span id, only in hex (what spans and log lines carry): 16 digits
 * and a NUL into out. */
void keel_trace_new_span_hex(char out[17]);
/* Lower-case hex of id into out (2*len + 1 bytes). */
void keel_trace_hex(const uint8_t *id, size_t len, char *out);

typedef enum keel_span_kind {
    KEEL_SPAN_INTERNAL = 1, KEEL_SPAN_SERVER = 2, KEEL_SPAN_CLIENT = 3,
} keel_span_kind;

/* A span's text: its name, its tracestate and its string attributes, in
 * the order the exporter writes them. Each is cut at its own size
 * (KEEL_SPAN_TEXT bytes; the method 15, the outcome 31, the tracestate
 * KEEL_TRACE_MAX_STATE - 1). */
typedef enum keel_span_field {
    KEEL_SF_NAME, KEEL_SF_STATE,
    KEEL_SF_COMPONENT, KEEL_SF_OPERATION, KEEL_SF_CALLER, KEEL_SF_OUTCOME,
    KEEL_SF_REQUEST_ID, KEEL_SF_STORE, KEEL_SF_ROUTE, KEEL_SF_METHOD,
    KEEL_SF_COUNT
} keel_span_field;

/* Bytes of a span's text area: every field at its size fits. */
#define KEEL_SPAN_TEXT_BYTES (8u * KEEL_SPAN_TEXT + KEEL_TRACE_MAX_STATE)

/* A span: a fixed header and its texts packed one after the other
 * (keel_span_set), so filling one touches a few cache lines rather than
 * one per field, and its ring record is the header and the text in use. */
typedef struct keel_span {
    /* ids in lower-case hex (keel_trace_hex), as the request already has
     * them for its log lines; no NUL. parent_hex[0] == 0: a root span. */
    char trace_hex[32], span_hex[16], parent_hex[16];
    uint64_t start_ns, end_ns;   /* CLOCK_REALTIME, ns since the epoch */
    const char *db_system;       /* a store's backend ("sqlite", "redis"); NULL: none */
    uint16_t http_status;        /* 0: not an HTTP span */
    uint8_t kind;                /* keel_span_kind */
    bool error;
    uint16_t used;               /* bytes of text taken */
    uint8_t last;                /* the field keel_span_add extends */
    uint16_t at[KEEL_SF_COUNT];  /* where each field's text starts ... */
    uint8_t len[KEEL_SF_COUNT];  /* ... and its length (0: absent) */
    char text[KEEL_SPAN_TEXT_BYTES];
} keel_span;

/* Sets field f to src[0..len) (cut at the field's size), packed after the
 * text already in the span. */
void keel_span_set(keel_span *s, keel_span_field f, const char *src, size_t len);
/* Appends src[0..len) to the field set last, cut at that field's size. */
void keel_span_add(keel_span *s, const char *src, size_t len);
/* Field f's text (not NUL-terminated) and its length in *len. */
const char *keel_span_get(const keel_span *s, keel_span_field f, size_t *len);

/* Starts the exporter for endpoint ("http://host:port", "/v1/traces" is
 * appended) with new traces sampled at `sample` (0..1); counters go to m.
 * 0, or -1 with err filled (bad endpoint, no thread). Call once. */
int keel_tracer_start(const char *endpoint, double sample, keel_metrics *m, char *err,
                      size_t errlen);
/* Stops and joins the exporter after a last flush. */
void keel_tracer_stop(void);
/* Whether spans are exported at all. */
bool keel_tracer_on(void);
/* Sampling decision for a trace that starts here. */
bool keel_trace_sample_new(void);
/* The calling thread's span record, cleared (ids and times zero, every
 * text field absent, db_system NULL), for a span of a sampled trace (the
 * caller checks); NULL when no exporter runs. Fill it and hand it back
 * with keel_span_commit before the thread begins another: the commit
 * copies it into the thread's ring, or drops and counts it when the ring
 * is full. */
keel_span *keel_span_begin(void);
void keel_span_commit(keel_span *s);
/* Copies src[0..len) into dst as a C string, cut to fit cap bytes. */
void keel_span_text(char *dst, size_t cap, const char *src, size_t len);

uint64_t keel_trace_now_ns(void);   /* CLOCK_REALTIME ns */
/* Uniform in [0, 1), from the per-thread generator. */
double keel_trace_uniform(void);

#endif
