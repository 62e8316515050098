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
#define KEEL_TRACE_RING_SPANS 2048u        /* spans queued per thread (824 bytes each) */
#define KEEL_TRACE_BATCH_SPANS 512u        /* spans per POST */
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
/* Lower-case hex of id into out (2*len + 1 bytes). */
void keel_trace_hex(const uint8_t *id, size_t len, char *out);

typedef enum keel_span_kind {
    KEEL_SPAN_INTERNAL = 1, KEEL_SPAN_SERVER = 2, KEEL_SPAN_CLIENT = 3,
} keel_span_kind;

typedef struct keel_span {
    uint8_t trace_id[16], span_id[8], parent_id[8];   /* parent all zero: a root */
    keel_span_kind kind;
    bool error;
    uint64_t start_ns, end_ns;   /* CLOCK_REALTIME, ns since the epoch */
    int http_status;             /* 0: not an HTTP span */
    char name[KEEL_SPAN_TEXT];
    char component[KEEL_SPAN_TEXT];
    char operation[KEEL_SPAN_TEXT];
    char caller[KEEL_SPAN_TEXT];
    char route[KEEL_SPAN_TEXT];
    char method[16];
    char request_id[KEEL_SPAN_TEXT];
    char outcome[32];
    char state[KEEL_TRACE_MAX_STATE];
    char store[KEEL_SPAN_TEXT];      /* a key-value store call: its store */
    const char *db_system;           /* ... and backend ("sqlite", "redis"); NULL: none */
} keel_span;

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
/* The calling thread's next ring slot, cleared (ids and times zero, text
 * fields empty, db_system NULL), for a span of a sampled trace (the caller
 * checks); NULL when no exporter runs or the ring is full (then counted as
 * dropped). Fill it in place and hand it back with keel_span_commit before
 * the thread begins another: filling the slot is the only copy made. */
keel_span *keel_span_begin(void);
void keel_span_commit(keel_span *s);
/* Copies src into a span text field, cutting at the field's size. */
void keel_span_text(char *dst, size_t cap, const char *src, size_t len);
/* Appends src to the text already in dst, cutting at the field's size. */
void keel_span_append(char *dst, size_t cap, const char *src, size_t len);

uint64_t keel_trace_now_ns(void);   /* CLOCK_REALTIME ns */
/* Uniform in [0, 1), from the per-thread generator. */
double keel_trace_uniform(void);

#endif
