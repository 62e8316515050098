/* log.h — Keel's log: one line per event on stderr, as a JSON object
 * (default) or as readable text. A disabled level costs one comparison.
 *
 * Every line carries ts (RFC 3339, ms, UTC), level and msg, and where known
 * component, request_id, trace_id, span_id, route, status and duration_ms.
 * The request fields come from the calling thread's log context
 * (keel_log_ctx_set), so a line written anywhere while a request runs on
 * that thread is tagged with it. Guest output (stdout/stderr, keel.log,
 * __console_log) goes through keel_log_guest, which applies the
 * component's rate limit (keel_log_guest_limit). */
#ifndef KEEL_OBS_LOG_H
#define KEEL_OBS_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum keel_log_level {
    KEEL_LOG_DEBUG = 0, KEEL_LOG_INFO = 1, KEEL_LOG_WARN = 2, KEEL_LOG_ERROR = 3,
} keel_log_level;

typedef enum keel_log_format { KEEL_LOG_JSON = 0, KEEL_LOG_TEXT = 1 } keel_log_format;

extern keel_log_level keel_log_min;
extern keel_log_format keel_log_fmt;

/* The request a thread is working on, for the fields of its lines. Strings
 * are borrowed: they must outlive the time the context is set. NULL or
 * empty fields are left out. */
typedef struct keel_log_ctx {
    const char *request_id;
    const char *trace_id;        /* 32 hex digits (written as they are) */
    const char *span_id;         /* 16 hex digits (written as they are) */
    const char *route;
} keel_log_ctx;

/* Sets (ctx) or clears (NULL) the calling thread's context; returns the
 * previous one so nested users can restore it. */
const keel_log_ctx *keel_log_ctx_set(const keel_log_ctx *ctx);

/* Extra fields of one line (access log). status 0 and duration_ns < 0 are
 * left out; method/path NULL too. The duration is written as duration_ms
 * with three decimals (microseconds, rounded). */
typedef struct keel_log_fields {
    int status;
    int64_t duration_ns;
    const char *method;
    const char *path;
    const char *route;           /* overrides the context's */
    uint64_t wall_ns;            /* the line's time, ns since the epoch; 0: now */
} keel_log_fields;

/* Parses "debug|info|warn|error" and "json|text"; -1 when unknown. */
int keel_log_level_parse(const char *s);
int keel_log_format_parse(const char *s);

/* Writes one line (component may be NULL) in one write(2), so lines from
 * threads never interleave. Control characters in the message are escaped
 * (JSON) or replaced by spaces (text): one event, one line. */
void keel_log_write(keel_log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* keel_log_write with extra fields (f may be NULL). */
void keel_log_fields_write(keel_log_level level, const char *component,
                           const keel_log_fields *f, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* keel_log_fields_write through the calling thread's queue when the queue
 * writer runs (keel_log_queue_start): the line reaches stderr within
 * ~20 ms, batched with others; written at once otherwise. For the access
 * log, one line per request. */
void keel_log_fields_queue(keel_log_level level, const char *component,
                           const keel_log_fields *f, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Starts / stops (after writing what is queued) the queue writer thread.
 * 0 or -1. */
int keel_log_queue_start(void);
void keel_log_queue_stop(void);

#define keel_log(level, component, ...)                                        \
    do {                                                                       \
        if ((level) >= keel_log_min)                                           \
            keel_log_write((level), (component), __VA_ARGS__);                 \
    } while (0)

/* ---- guest lines and their per-component rate limit ---- */

/* Sizes the table of per-component limits: ncomp components, each allowed
 * `per_sec` lines per one-second window (0: unlimited). Called at start,
 * before any guest runs (a later call replaces the table; the old one is
 * leaked on purpose, as a thread may still be reading it). */
void keel_log_guest_limit(size_t ncomp, uint32_t per_sec);

/* Called for each dropped line (component index): the metrics counter. */
extern void (*keel_log_on_drop)(size_t comp);

/* Logs one line of guest output for component index comp named name, if
 * its rate limit allows; drops (and counts) it otherwise. The first drop
 * of a burst is reported once per second per component. */
void keel_log_guest(size_t comp, const char *name, keel_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
