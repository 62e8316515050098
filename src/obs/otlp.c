/* otlp.c — the span rings and the OTLP/HTTP JSON exporter thread.
 *
 * A span is filled in a thread-local record (keel_span_begin) and, when
 * committed, copied (its header and the text it uses) into the thread's
 * own single-producer byte ring of KEEL_TRACE_RING_BYTES (registered
 * once, under a mutex), behind its 8-byte length, padded to 8 bytes; a
 * span that does not fit is dropped and counted. The exporter is the only
 * consumer: it writes each record out as OTLP JSON, reading it where it
 * lies unless it wraps. Written and read in order, the ring
 * is a stream the CPUs' prefetchers follow, and a hello request's two
 * spans take ~350 bytes of it, so the request threads' caches keep their
 * own data.
 * Every KEEL_TRACE_FLUSH_MS (or sooner when a ring is a quarter full) the
 * exporter drains the rings into batches of at most KEEL_TRACE_BATCH_SPANS
 * and POSTs each to ENDPOINT/v1/traces (otlp_http.c: one connection kept
 * between batches, KEEL_TRACE_IO_TIMEOUT_MS timeouts); a batch that
 * cannot be delivered (no connection, timeout, non-2xx) is dropped and
 * counted. */
#include "obs/trace.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "obs/byte_ring.h"
#include "obs/json.h"
#include "obs/log.h"
#include "obs/otlp_http.h"
#include "obs/prom.h"
#include "obs/wake.h"

typedef struct ring {
    struct ring *next;
    _Alignas(64) _Atomic uint64_t head;   /* bytes consumed: the exporter's line */
    _Alignas(64) _Atomic uint64_t tail;   /* bytes published: the producer's */
    _Alignas(64) char data[KEEL_TRACE_RING_BYTES];
} ring;

typedef struct tracer {
    char host[256], port[8], path[256];
    double sample;
    keel_metrics *m;
    pthread_t thread;
    pthread_mutex_t mu;              /* the ring list */
    keel_wake wake;                  /* rings a quarter full, or stop */
    ring *rings;
    atomic_bool stop;
    bool failing;                    /* for logging state changes once */
    /* the exporter thread's own */
    otlp_conn conn;                  /* to the collector, kept between batches */
    keel_buf batch;                  /* a batch's JSON, reused */
    keel_span span;                  /* the record being written out */
} tracer;

static tracer *_Atomic T;
static tracer *volatile stopped; /* keeps a stopped tracer's rings reachable (a thread
                                   * abandoned mid-request may still hold one) */
static _Thread_local ring *tl_ring;
static _Thread_local tracer *tl_owner;
static _Thread_local keel_span tl_span;   /* the span being filled */

bool keel_tracer_on(void)
{
    return atomic_load_explicit(&T, memory_order_relaxed) != NULL;
}

bool keel_trace_sample_new(void)
{
    tracer *t = atomic_load_explicit(&T, memory_order_acquire);
    if (!t || t->sample <= 0)
        return false;
    return t->sample >= 1 || keel_trace_uniform() < t->sample;
}

/* The calling thread's ring of the running tracer (made on first use). */
static ring *own_ring(tracer *t)
{
    if (tl_owner != t) {
        ring *r = aligned_alloc(64, sizeof *r);
        if (!r)
            abort();
        memset(r, 0, offsetof(ring, data));   /* the data is written before it is read */
        pthread_mutex_lock(&t->mu);
        r->next = t->rings;
        t->rings = r;
        pthread_mutex_unlock(&t->mu);
        tl_ring = r;
        tl_owner = t;
    }
    return tl_ring;
}

keel_span *keel_span_begin(void)
{
    if (!atomic_load_explicit(&T, memory_order_acquire))
        return NULL;
    memset(&tl_span, 0, offsetof(keel_span, text));   /* the header: every field absent */
    return &tl_span;
}

/* Ring bytes of a record whose span part is len bytes: its 8-byte length,
 * then the span padded to 8 bytes (so every record starts aligned). */
static uint64_t record_bytes(uint64_t len)
{
    return sizeof len + ((len + 7) & ~(uint64_t)7);
}

void keel_span_commit(keel_span *s)
{
    tracer *t = atomic_load_explicit(&T, memory_order_acquire);
    if (!t)
        return;
    /* The record: the header and the text in use (~170 bytes for a
     * hello request's span; its JSON would be ~550), behind its length,
     * both rounded up to 8 bytes so that the exporter can read a record
     * that does not wrap where it lies. */
    uint64_t len = offsetof(keel_span, text) + s->used;
    ring *r = own_ring(t);
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    uint64_t need = record_bytes(len), used = tail - head;
    if (KEEL_TRACE_RING_BYTES - used < need) {
        keel_metrics_spans(t->m, 0, 1);
        return;
    }
    keel_ring_put(r->data, KEEL_TRACE_RING_BYTES, tail, &len, sizeof len);
    keel_ring_put(r->data, KEEL_TRACE_RING_BYTES, tail + sizeof len, s, len);
    atomic_store_explicit(&r->tail, tail + need, memory_order_release);
    /* a quarter full, not half: on two vCPUs at 60k requests/s the
     * half-full wake-up lost 1.8% of the spans */
    if (keel_ring_crossed_quarter(used, need, KEEL_TRACE_RING_BYTES))
        keel_wake_signal(&t->wake);
}

/* ---- JSON ----
 * The exporter writes ~600 bytes of JSON per span. It shares the CPUs
 * with requests, so a span is written with one reservation of its worst
 * case and plain stores: no printf, no per-piece bounds checks. */

/* Worst case of one span: the fixed text and attribute keys, the text
 * area escaped at 6 bytes a byte (\u00XX), ids in hex, numbers. */
#define SPAN_JSON_MAX (2048u + 6u * KEEL_SPAN_TEXT_BYTES)

#define LIT(p, s) (memcpy((p), (s), sizeof(s) - 1), (p) + sizeof(s) - 1)

/* A span time (ns since the epoch) in decimal. The digits of the second
 * are formatted once per second of span times (spans come roughly in time
 * order; the cache is the calling thread's), then the nine of the
 * nanoseconds. */
static char *put_time(char *p, uint64_t ns)
{
    static _Thread_local char sec_text[24];
    static _Thread_local size_t sec_len;
    static _Thread_local uint64_t sec_of = UINT64_MAX;
    uint64_t sec = ns / 1000000000u;
    uint32_t frac = (uint32_t)(ns % 1000000000u);
    if (sec == 0)
        return keel_json_u64(p, frac);
    if (sec != sec_of) {
        sec_len = (size_t)(keel_json_u64(sec_text, sec) - sec_text);
        sec_of = sec;
    }
    memcpy(p, sec_text, sizeof sec_text);   /* fixed size: no call; p has room */
    p += sec_len;
    return keel_json_digits(p, frac, 9);
}

static char *put_raw(char *p, const char *v, size_t n)
{
    memcpy(p, v, n);
    return p + n;
}

/* v[0..n) at p: a span's fields are short, and two fixed-size copies that
 * overlap beat a call to memcpy with a variable length. */
static char *put_short(char *p, const char *v, size_t n)
{
    if (n >= 8 && n <= 16) {
        memcpy(p, v, 8);
        memcpy(p + n - 8, v + n - 8, 8);
    } else if (n >= 4 && n < 8) {
        memcpy(p, v, 4);
        memcpy(p + n - 4, v + n - 4, 4);
    } else if (n < 4) {
        for (size_t i = 0; i < n; i++)
            p[i] = v[i];
    } else {
        memcpy(p, v, n);
    }
    return p + n;
}

/* v[0..n) as the inside of a JSON string: copied when the span's text is
 * known plain (the usual case: one check of all of it), else escaped. */
static char *put_text(char *p, const char *v, size_t n, bool plain)
{
    return plain ? put_short(p, v, n) : keel_json_escape(p, v, n);
}

/* Field f of s as the inside of a JSON string. */
static char *put_field(char *p, const keel_span *s, keel_span_field f, bool plain)
{
    size_t n;
    const char *v = keel_span_get(s, f, &n);
    return put_text(p, v, n, plain);
}

/* One string attribute, when the span has it: ,{"key":...,"value":...}
 * (no comma before the first). */
static char *attr_str(char *p, bool *first, const char *key, size_t keylen, const char *v,
                      size_t n, bool plain)
{
    if (!n)
        return p;
    if (!*first)
        *p++ = ',';
    p = LIT(p, "{\"key\":\"");
    p = put_short(p, key, keylen);
    p = LIT(p, "\",\"value\":{\"stringValue\":\"");
    p = put_text(p, v, n, plain);
    p = LIT(p, "\"}}");
    *first = false;
    return p;
}

/* The span's string attributes, in keel_span_field order from
 * KEEL_SF_COMPONENT on, with db.system after keel.store. */
static char *attrs(char *p, bool *first, const keel_span *s, bool plain)
{
    static const struct { const char *key; size_t len; } keys[KEEL_SF_COUNT] = {
#define KEY(f, k) [f] = { k, sizeof(k) - 1 }
        KEY(KEEL_SF_COMPONENT, "keel.component"), KEY(KEEL_SF_OPERATION, "keel.operation"),
        KEY(KEEL_SF_CALLER, "keel.caller"), KEY(KEEL_SF_OUTCOME, "keel.outcome"),
        KEY(KEEL_SF_REQUEST_ID, "keel.request_id"), KEY(KEEL_SF_STORE, "keel.store"),
        KEY(KEEL_SF_ROUTE, "http.route"), KEY(KEEL_SF_METHOD, "http.request.method"),
#undef KEY
    };
    for (int f = KEEL_SF_COMPONENT; f < KEEL_SF_COUNT; f++) {
        size_t n;
        const char *v = keel_span_get(s, (keel_span_field)f, &n);
        p = attr_str(p, first, keys[f].key, keys[f].len, v, n, plain);
        if (f == KEEL_SF_STORE && s->db_system)
            p = attr_str(p, first, "db.system", 9, s->db_system, strlen(s->db_system), false);
    }
    return p;
}

/* The span's OTLP JSON object at out (at most SPAN_JSON_MAX bytes, no
 * NUL); returns its length. */
static size_t span_json(char *out, const keel_span *s)
{
    char *p = out;
    bool plain = keel_json_plain(s->text, s->used);
    p = LIT(p, "{\"traceId\":\"");
    p = put_raw(p, s->trace_hex, sizeof s->trace_hex);
    p = LIT(p, "\",\"spanId\":\"");
    p = put_raw(p, s->span_hex, sizeof s->span_hex);
    if (s->parent_hex[0]) {
        p = LIT(p, "\",\"parentSpanId\":\"");
        p = put_raw(p, s->parent_hex, sizeof s->parent_hex);
    }
    p = LIT(p, "\",\"name\":\"");
    p = put_field(p, s, KEEL_SF_NAME, plain);
    p = LIT(p, "\",\"kind\":");
    p = keel_json_u64(p, (uint64_t)s->kind);
    p = LIT(p, ",\"startTimeUnixNano\":\"");
    p = put_time(p, s->start_ns);
    p = LIT(p, "\",\"endTimeUnixNano\":\"");
    p = put_time(p, s->end_ns);
    *p++ = '"';
    if (s->len[KEEL_SF_STATE]) {
        p = LIT(p, ",\"traceState\":\"");
        p = put_field(p, s, KEEL_SF_STATE, plain);
        *p++ = '"';
    }
    p = LIT(p, ",\"attributes\":[");
    bool f = true;
    p = attrs(p, &f, s, plain);
    if (s->http_status) {
        if (!f)
            *p++ = ',';
        p = LIT(p, "{\"key\":\"http.response.status_code\",\"value\":{\"intValue\":\"");
        p = keel_json_u64(p, (uint64_t)s->http_status);
        p = LIT(p, "\"}}");
    }
    /* OTel: instrumentation leaves a success's status Unset (absent) */
    p = s->error ? LIT(p, "],\"status\":{\"code\":2}}") : LIT(p, "]}");
    return (size_t)(p - out);
}

/* Drains up to KEEL_TRACE_BATCH_SPANS spans into b; returns how many. */
static size_t drain(tracer *t, keel_buf *b)
{
    size_t n = 0;
    keel_buf_puts(b, "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":"
                  "\"service.name\",\"value\":{\"stringValue\":\"keel\"}}]},\"scopeSpans\":"
                  "[{\"scope\":{\"name\":\"keel\"},\"spans\":[");
    pthread_mutex_lock(&t->mu);
    ring *rings = t->rings;
    pthread_mutex_unlock(&t->mu);
    for (ring *r = rings; r && n < KEEL_TRACE_BATCH_SPANS; r = r->next) {
        uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
        uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
        while (head < tail && n < KEEL_TRACE_BATCH_SPANS) {
            uint64_t len;
            keel_ring_get(r->data, KEEL_TRACE_RING_BYTES, head, &len, sizeof len);
            size_t at = (size_t)((head + sizeof len) % KEEL_TRACE_RING_BYTES);
            const keel_span *sp = (const keel_span *)(void *)(r->data + at);
            if (at + len > KEEL_TRACE_RING_BYTES) {   /* wraps: put together */
                keel_ring_get(r->data, KEEL_TRACE_RING_BYTES, head + sizeof len, &t->span, len);
                sp = &t->span;
            }
            char *p = keel_buf_reserve(b, SPAN_JSON_MAX + 1);
            if (n)
                *p++ = ',';
            p += span_json(p, sp);
            b->len = (size_t)(p - b->data);
            b->data[b->len] = 0;
            head += record_bytes(len);
            n++;
        }
        atomic_store_explicit(&r->head, head, memory_order_release);
    }
    keel_buf_puts(b, "]}]}]}");
    return n;
}

static void flush(tracer *t)
{
    for (;;) {
        keel_buf *b = &t->batch;
        b->len = 0;
        size_t n = drain(t, b);
        if (!n)
            return;
        char why[300];
        if (otlp_post(&t->conn, t->host, t->port, t->path, b->data, b->len, why,
                      sizeof why) == 0) {
            keel_metrics_spans(t->m, n, 0);
            if (t->failing)
                keel_log(KEEL_LOG_INFO, "trace", "exporting spans to %s:%s again", t->host,
                         t->port);
            t->failing = false;
        } else {
            keel_metrics_spans(t->m, 0, n);
            if (!t->failing)
                keel_log(KEEL_LOG_WARN, "trace", "cannot export spans (%s); dropping them "
                         "until the collector answers", why);
            t->failing = true;
        }
        if (n < KEEL_TRACE_BATCH_SPANS)
            return;
    }
}

static void *exporter_main(void *arg)
{
    tracer *t = arg;
    keel_obs_background();
    while (!atomic_load(&t->stop)) {
        keel_wake_wait(&t->wake, KEEL_TRACE_FLUSH_MS);
        flush(t);
    }
    flush(t);
    otlp_conn_close(&t->conn);
    keel_buf_free(&t->batch);
    return NULL;
}

/* "http://HOST[:PORT][/PREFIX]" into host, port and PREFIX + "/v1/traces". */
static int parse_endpoint(tracer *t, const char *ep, char *err, size_t errlen)
{
    if (strncmp(ep, "http://", 7) != 0) {
        snprintf(err, errlen, "otlp_endpoint '%s' must start with http:// (OTLP/HTTP)", ep);
        return -1;
    }
    const char *h = ep + 7, *slash = strchr(h, '/');
    size_t hl = slash ? (size_t)(slash - h) : strlen(h);
    const char *prefix = slash ? slash : "";
    size_t pl = strlen(prefix);
    while (pl && prefix[pl - 1] == '/')
        pl--;
    char hp[300];
    if (hl == 0 || hl >= sizeof hp || pl + 12 >= sizeof t->path) {
        snprintf(err, errlen, "otlp_endpoint '%s': expected http://HOST:PORT", ep);
        return -1;
    }
    memcpy(hp, h, hl);
    hp[hl] = 0;
    char *colon = strrchr(hp, ':'), *close = strrchr(hp, ']');
    const char *port = "4318";
    if (colon && (!close || colon > close)) {
        *colon = 0;
        port = colon + 1;
        char *end;
        long p = strtol(port, &end, 10);
        if (!*port || *end || p < 1 || p > 65535) {
            snprintf(err, errlen, "otlp_endpoint '%s': bad port", ep);
            return -1;
        }
    }
    char *host = hp;
    if (host[0] == '[') {
        host++;
        char *c = strchr(host, ']');
        if (c)
            *c = 0;
    }
    if (!host[0] || strlen(host) >= sizeof t->host) {
        snprintf(err, errlen, "otlp_endpoint '%s': no host", ep);
        return -1;
    }
    memcpy(t->host, host, strlen(host) + 1);   /* checked shorter than t->host above */
    snprintf(t->port, sizeof t->port, "%s", port);
    snprintf(t->path, sizeof t->path, "%.*s/v1/traces", (int)pl, prefix);
    return 0;
}

int keel_tracer_start(const char *endpoint, double sample, keel_metrics *m, char *err,
                      size_t errlen)
{
    tracer *t = calloc(1, sizeof *t);
    if (!t)
        abort();
    if (parse_endpoint(t, endpoint, err, errlen)) {
        free(t);
        return -1;
    }
    t->sample = sample;
    t->m = m;
    t->conn.fd = -1;
    pthread_mutex_init(&t->mu, NULL);
    keel_wake_init(&t->wake);   /* without one the exporter flushes on its period only */
    if (pthread_create(&t->thread, NULL, exporter_main, t) != 0) {
        snprintf(err, errlen, "cannot start the span exporter thread");
        free(t);
        return -1;
    }
    atomic_store(&T, t);
    keel_log(KEEL_LOG_INFO, "trace", "exporting spans to http://%s:%s%s (sample %g)", t->host,
             t->port, t->path, sample);
    return 0;
}

void keel_tracer_stop(void)
{
    tracer *t = atomic_exchange(&T, NULL);
    if (!t)
        return;
    stopped = t;
    atomic_store(&t->stop, true);
    keel_wake_signal(&t->wake);
    pthread_join(t->thread, NULL);
    /* Rings stay: threads that still hold tl_ring may not be done with it
     * (they check T first, but a submit may be in flight). Process exit
     * reclaims them. */
}
