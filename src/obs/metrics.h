/* metrics.h — Keel's counters and histograms, counted per thread without
 * locks and merged when scraped.
 *
 * The set of series is fixed when the registry is made (components, their
 * routes, the calls graph); every recording function takes indices into
 * that schema and ignores indices outside it, so bad input can never write
 * out of bounds. Each thread that records gets its own shard (made on its
 * first record, under a mutex, once); after that a record is a few plain
 * stores into memory only that thread writes. keel_metrics_render reads
 * every shard with relaxed atomic loads, so a scrape may see a request's
 * counter before its histogram, never a torn value. */
#ifndef KEEL_OBS_METRICS_H
#define KEEL_OBS_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "obs/prom.h"

/* Named ceilings. */
#define KEEL_METRICS_REQ_SERIES 2048u   /* (route, method, code) series per thread;
                                           beyond: keel_metrics_overflow_total */
#define KEEL_METRICS_NBUCKETS 16u       /* finite histogram buckets */

typedef struct keel_metrics keel_metrics;

typedef struct keel_metrics_schema {
    size_t ncomps;
    const char *const *comps;            /* names */
    const size_t *nroutes;               /* per component */
    const char *const *const *routes;    /* per component: route labels, e.g. "/x/" + "*" */
    const size_t *ncalls;                /* per component */
    const size_t *const *calls;          /* per component: callee indices */
    size_t ntrap_kinds;
    const char *const *trap_kinds;       /* label of each trap kind */
} keel_metrics_schema;

/* Methods as counted (labels GET ... OPTIONS, OTHER). */
enum { KEEL_MM_GET, KEEL_MM_HEAD, KEEL_MM_POST, KEEL_MM_PUT, KEEL_MM_DELETE,
       KEEL_MM_PATCH, KEEL_MM_OPTIONS, KEEL_MM_OTHER, KEEL_MM_COUNT };
int keel_metrics_method(const char *m, size_t len);

typedef enum keel_call_outcome {
    KEEL_CALL_OK, KEEL_CALL_ERROR, KEEL_CALL_TRAP, KEEL_CALL_DEADLINE,
    KEEL_CALL_REFUSED, KEEL_CALL_CIRCUIT_OPEN, KEEL_CALL_NOUTCOMES
} keel_call_outcome;

typedef enum keel_reject_reason {
    KEEL_REJECT_CONCURRENCY, KEEL_REJECT_BODY, KEEL_REJECT_HEADER, KEEL_REJECT_QUEUE,
    KEEL_REJECT_CIRCUIT, KEEL_REJECT_NREASONS
} keel_reject_reason;

/* Copies the schema. NULL never: allocation failure aborts. */
keel_metrics *keel_metrics_new(const keel_metrics_schema *s);
/* Frees the registry and every shard; no thread may record afterwards. */
void keel_metrics_free(keel_metrics *m);

/* The process's current registry, for code that has no host at hand (the
 * HTTP layer's rejections, the logger's drop callback). NULL: not counted. */
extern keel_metrics *keel_metrics_global;

/* Recording; m NULL or an index out of range: nothing happens.
 * route: index in the component's routes, or (size_t)-1 for none. */
void keel_metrics_request(keel_metrics *m, size_t comp, size_t route, int method, int code,
                          uint64_t dur_ns);
void keel_metrics_call(keel_metrics *m, size_t caller, size_t callee, keel_call_outcome o,
                       uint64_t dur_ns);
void keel_metrics_trap(keel_metrics *m, size_t comp, int kind);
void keel_metrics_deadline(keel_metrics *m, size_t comp);
/* comp (size_t)-1: before routing (label component="-"). */
void keel_metrics_rejected(keel_metrics *m, size_t comp, keel_reject_reason r);
/* An instance of comp came (started) or went, with its linear memory. */
void keel_metrics_instance(keel_metrics *m, size_t comp, bool started, int64_t mem_delta);
void keel_metrics_cpu(keel_metrics *m, size_t comp, uint64_t ns);
void keel_metrics_log_dropped(keel_metrics *m, size_t comp);
/* Span exporter counters (any thread). */
void keel_metrics_spans(keel_metrics *m, uint64_t exported, uint64_t dropped);

/* Appends every family the registry owns, in the text format. */
void keel_metrics_render(keel_metrics *m, keel_buf *out);

/* The bucket upper bounds in seconds (KEEL_METRICS_NBUCKETS of them). */
extern const double keel_metrics_buckets[KEEL_METRICS_NBUCKETS];

#endif
