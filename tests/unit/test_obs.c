/* test_obs.c — src/obs: traceparent parsing and formatting, spans through
 * the exporter's ring to a loopback receiver, the metrics
 * registry (shards from several threads merged, bounds, escaping) and the
 * logger (JSON fields, escaping, request context, guest rate limit). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "obs/json.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "obs/prom.h"
#include "obs/trace.h"

/* ---- traceparent ---- */

static bool tp(const char *s, keel_trace_ctx *c)
{
    return keel_traceparent_parse(s, strlen(s), c);
}

static void traceparent_good(void **state)
{
    (void)state;
    keel_trace_ctx c;
    assert_true(tp("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", &c));
    assert_true(c.sampled);
    assert_int_equal(c.trace_id[0], 0x4b);
    assert_int_equal(c.span_id[7], 0xb7);
    char out[56];
    keel_traceparent_format(&c, out);
    assert_string_equal(out, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    assert_true(tp("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", &c));
    assert_false(c.sampled);
    /* a later version with more fields: read by its 00 prefix */
    assert_true(tp("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", &c));
    /* surrounding blanks are tolerated */
    assert_true(tp(" 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 ", &c));
}

static void traceparent_bad(void **state)
{
    (void)state;
    keel_trace_ctx c;
    static const char *const bad[] = {
        "",
        "00",
        "garbage",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",      /* short */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",   /* 00 with extra */
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",     /* version ff */
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",     /* zero trace */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",     /* zero span */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",     /* upper case */
        "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",     /* not hex */
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",     /* separator */
        "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-zz",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_false(tp(bad[i], &c));
    /* never reads past the given length */
    const char *s = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    for (size_t n = 0; n < strlen(s); n++)
        assert_false(keel_traceparent_parse(s, n, &c));
}

static void ids_are_random_and_nonzero(void **state)
{
    (void)state;
    uint8_t a[16], b[16];
    keel_trace_new_id(a, 16);
    keel_trace_new_id(b, 16);
    assert_memory_not_equal(a, b, 16);
    char hex[33];
    keel_trace_hex(a, 16, hex);
    assert_int_equal(strlen(hex), 32);
    char cut[KEEL_SPAN_TEXT];
    const char *seventy = "0123456789012345678901234567890123456789012345678901234567890123456789";
    keel_span_text(cut, sizeof cut, seventy, 70);
    assert_int_equal(strlen(cut), sizeof cut - 1);
}

/* Span texts pack one after another, each cut at its own size, and only
 * the field set last grows. */
static void span_fields_pack(void **state)
{
    (void)state;
    static keel_span s;
    const char *seventy = "0123456789012345678901234567890123456789012345678901234567890123456789";
    size_t n;
    keel_span_set(&s, KEEL_SF_NAME, "GET", 3);
    keel_span_add(&s, " /x", 3);
    keel_span_set(&s, KEEL_SF_METHOD, seventy, 70);
    keel_span_add(&s, "!", 1);                     /* the method is full */
    keel_span_set(&s, KEEL_SF_COMPONENT, seventy, 70);
    assert_memory_equal(keel_span_get(&s, KEEL_SF_NAME, &n), "GET /x", 6);
    assert_int_equal(n, 6);
    keel_span_get(&s, KEEL_SF_METHOD, &n);
    assert_int_equal(n, 15);
    keel_span_get(&s, KEEL_SF_COMPONENT, &n);
    assert_int_equal(n, KEEL_SPAN_TEXT - 1);
    keel_span_get(&s, KEEL_SF_OUTCOME, &n);
    assert_int_equal(n, 0);
    assert_int_equal(s.used, 6 + 15 + KEEL_SPAN_TEXT - 1);
    for (int i = 0; i < 40; i++)               /* set again and again: never past the area */
        keel_span_set(&s, KEEL_SF_STATE, seventy, 70);
    assert_true(s.used <= KEEL_SPAN_TEXT_BYTES);
}

/* ---- the span exporter ---- */

/* A one-connection OTLP/HTTP receiver on loopback: keeps every POST's
 * body and answers 200, until the exporter closes the connection. */
typedef struct receiver {
    int lfd;
    pthread_mutex_t mu;
    char *bodies;
    size_t len, cap;
    size_t spans;                /* "spanId" keys seen */
} receiver;

static void *receive(void *arg)
{
    receiver *r = arg;
    int fd = accept(r->lfd, NULL, NULL);
    static char buf[1 << 16];
    size_t have = 0;
    for (;;) {
        char *end = memmem(buf, have, "\r\n\r\n", 4);
        if (!end) {
            ssize_t n = read(fd, buf + have, sizeof buf - have);
            if (n <= 0)
                break;
            have += (size_t)n;
            continue;
        }
        size_t head = (size_t)(end - buf) + 4, body;
        char *cl = memmem(buf, head, "Content-Length: ", 16);
        assert_non_null(cl);
        body = strtoul(cl + 16, NULL, 10);
        char *b = malloc(body);
        size_t got = have - head < body ? have - head : body;
        memcpy(b, buf + head, got);
        memmove(buf, buf + head + got, have - head - got);
        have -= head + got;
        while (got < body) {
            ssize_t n = read(fd, b + got, body - got);
            assert_true(n > 0);
            got += (size_t)n;
        }
        pthread_mutex_lock(&r->mu);
        if (r->len + body + 1 > r->cap) {
            r->cap = (r->len + body + 1) * 2;
            r->bodies = realloc(r->bodies, r->cap);
        }
        memcpy(r->bodies + r->len, b, body);
        r->len += body;
        r->bodies[r->len] = 0;
        for (char *p = b; (p = memmem(p, body - (size_t)(p - b), "\"spanId\"", 8)); p += 8)
            r->spans++;
        pthread_mutex_unlock(&r->mu);
        free(b);
        static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        assert_int_equal(write(fd, ok, sizeof ok - 1), (ssize_t)(sizeof ok - 1));
    }
    close(fd);
    return NULL;
}

/* Spans of varied lengths through one thread's ring, which wraps several
 * times (records cut at its end are put together again): every span
 * arrives once, in order, with its own fields. */
static void spans_through_the_ring(void **state)
{
    (void)state;
    receiver r = { .lfd = socket(AF_INET, SOCK_STREAM, 0) };
    pthread_mutex_init(&r.mu, NULL);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t alen = sizeof a;
    assert_int_equal(bind(r.lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(r.lfd, 1), 0);
    assert_int_equal(getsockname(r.lfd, (struct sockaddr *)&a, &alen), 0);
    pthread_t th;
    pthread_create(&th, NULL, receive, &r);
    char ep[64], err[256];
    snprintf(ep, sizeof ep, "http://127.0.0.1:%d", ntohs(a.sin_port));
    assert_int_equal(keel_tracer_start(ep, 1.0, NULL, err, sizeof err), 0);

    enum { SPANS = 16000 };   /* ~180 bytes each: ~3 MiB through a 1 MiB ring */
    static const char xs[] = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
    for (int i = 0; i < SPANS; i++) {
        for (;;) {            /* keep the ring from filling: no span may be dropped */
            pthread_mutex_lock(&r.mu);
            size_t in = r.spans;
            pthread_mutex_unlock(&r.mu);
            if ((size_t)i < in + 3000)
                break;
            nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL);
        }
        keel_span *s = keel_span_begin();
        assert_non_null(s);
        memset(s->trace_hex, 'a', 32);
        memset(s->span_hex, 'b', 16);
        s->kind = KEEL_SPAN_INTERNAL;
        s->start_ns = 1000000000ull * 1700000000u + (uint64_t)i;
        s->end_ns = s->start_ns + 5;
        char name[16];
        int nl = snprintf(name, sizeof name, "span-%05d", i);
        keel_span_set(s, KEEL_SF_NAME, name, (size_t)nl);
        keel_span_set(s, KEEL_SF_COMPONENT, xs, (size_t)(i % 61));
        keel_span_commit(s);
    }
    keel_tracer_stop();
    pthread_join(th, NULL);
    close(r.lfd);
    assert_int_equal(r.spans, SPANS);
    const char *p = r.bodies;
    for (int i = 0; i < SPANS; i++) {
        char want[200];
        int wl = snprintf(want, sizeof want, "\"name\":\"span-%05d\",\"kind\":1,"
                          "\"startTimeUnixNano\":\"17000000000000%05d\","
                          "\"endTimeUnixNano\":\"17000000000000%05d\"", i, i, i + 5);
        p = strstr(p, want);
        assert_non_null(p);
        p += wl;
        const char *c = strstr(p, "\"stringValue\":\"");
        if (i % 61) {
            assert_non_null(c);
            c += 15;
            assert_memory_equal(c, xs, (size_t)(i % 61));
            assert_int_equal(c[i % 61], '"');
        }
    }
    free(r.bodies);
}

/* ---- metrics ---- */

static keel_metrics *registry(void)
{
    static const char *const comps[] = { "a", "b\"x" };
    static const size_t nroutes[] = { 1, 1 };
    static const char *const ra[] = { "/a" }, *const rb[] = { "/q\\\"\n" };
    static const char *const *const routes[] = { ra, rb };
    static const size_t ncalls[] = { 1, 0 };
    static const size_t ca[] = { 1 };
    static const size_t *const calls[] = { ca, NULL };
    static const char *const traps[] = { "none", "unreachable" };
    keel_metrics_schema s = { 2, comps, nroutes, routes, ncalls, calls, 2, traps };
    return keel_metrics_new(&s);
}

static void *hammer(void *arg)
{
    keel_metrics *m = arg;
    for (int i = 0; i < 1000; i++) {
        keel_metrics_request(m, 0, 0, KEEL_MM_GET, 200, 1000000);
        keel_metrics_call(m, 0, 1, KEEL_CALL_OK, 2000000);
    }
    return NULL;
}

static void metrics_merge_and_render(void **state)
{
    (void)state;
    keel_metrics *m = registry();
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, hammer, m);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    keel_metrics_request(m, 1, 0, KEEL_MM_POST, 503, 20000000000ull);
    keel_metrics_trap(m, 1, 1);
    keel_metrics_rejected(m, (size_t)-1, KEEL_REJECT_HEADER);
    keel_metrics_instance(m, 0, true, 65536);
    keel_metrics_instance(m, 0, false, -65536);
    keel_metrics_instance(m, 0, true, 131072);
    /* out of range: ignored */
    keel_metrics_request(m, 7, 0, 0, 200, 1);
    keel_metrics_request(m, 0, 99, 99, 99999, 1);   /* clamped into "-", OTHER, 599 */
    keel_metrics_call(m, 1, 0, KEEL_CALL_OK, 1);    /* not an edge */
    keel_metrics_trap(m, 0, 42);
    keel_metrics_request(NULL, 0, 0, 0, 200, 1);
    keel_buf b = { 0 };
    keel_metrics_render(m, &b);
    const char *t1 = b.data;
    assert_non_null(strstr(t1, "keel_requests_total{component=\"a\",route=\"/a\",method=\"GET\","
                               "code=\"200\"} 4000\n"));
    assert_non_null(strstr(t1, "keel_requests_total{component=\"a\",route=\"-\",method=\"OTHER\","
                               "code=\"599\"} 1\n"));
    /* label values escaped: quote, backslash, newline */
    assert_non_null(strstr(t1, "component=\"b\\\"x\",route=\"/q\\\\\\\"\\n\""));
    assert_non_null(strstr(t1, "keel_request_duration_seconds_bucket{component=\"a\",route=\"/a\","
                               "le=\"0.001\"} 4000\n"));
    assert_non_null(strstr(t1, "keel_request_duration_seconds_bucket{component=\"b\\\"x\","
                               "route=\"/q\\\\\\\"\\n\",le=\"10\"} 0\n"));
    assert_non_null(strstr(t1, "keel_request_duration_seconds_count{component=\"a\",route=\"/a\"} 4000\n"));
    assert_non_null(strstr(t1, "keel_component_calls_total{caller=\"a\",callee=\"b\\\"x\","
                               "outcome=\"ok\"} 4000\n"));
    assert_non_null(strstr(t1, "keel_traps_total{component=\"b\\\"x\",kind=\"unreachable\"} 1\n"));
    assert_non_null(strstr(t1, "keel_rejected_total{component=\"-\",reason=\"header\"} 1\n"));
    assert_non_null(strstr(t1, "keel_instances_started_total{component=\"a\"} 2\n"));
    assert_non_null(strstr(t1, "keel_instance_memory_bytes{component=\"a\"} 131072\n"));
    assert_non_null(strstr(t1, "# TYPE keel_request_duration_seconds histogram\n"));
    keel_buf_free(&b);
    keel_metrics_free(m);
}

static void prom_escaping(void **state)
{
    (void)state;
    keel_buf b = { 0 };
    keel_prom_family(&b, "x_total", "counter", "a \\ b\nc");
    const char *l[] = { "k", "v\"\\\n" };
    keel_prom_sample(&b, "x_total", l, 1, 1.5);
    assert_string_equal(b.data, "# HELP x_total a \\\\ b\\nc\n# TYPE x_total counter\n"
                                "x_total{k=\"v\\\"\\\\\\n\"} 1.5\n");
    keel_buf_free(&b);
}

/* ---- JSON strings ---- */

/* The escaper's contract, one byte at a time. */
static size_t escape_slowly(char *dst, const unsigned char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c == '"' || c == '\\')
            o += (size_t)sprintf(dst + o, "\\%c", c);
        else if (c == '\n')
            o += (size_t)sprintf(dst + o, "\\n");
        else if (c == '\t')
            o += (size_t)sprintf(dst + o, "\\t");
        else if (c < 0x20 || c == 0x7f)
            o += (size_t)sprintf(dst + o, "\\u%04x", c);
        else
            dst[o++] = (char)c;
    }
    return o;
}

/* Every byte value at every position of runs longer and shorter than the
 * eight-byte fast path, among plain text and among bytes >= 0x80; and
 * keel_json_plain's answer for each. */
static void json_escape_every_byte(void **state)
{
    (void)state;
    unsigned char in[40];
    char fast[6 * sizeof in + 8], slow[6 * sizeof in + 8];
    for (int fill = 0; fill < 2; fill++)
        for (size_t n = 1; n <= sizeof in; n += 3)
            for (size_t at = 0; at < n; at++)
                for (int c = 0; c < 256; c++) {
                    memset(in, fill ? 0xc3 : 'a', sizeof in);
                    in[at] = (unsigned char)c;
                    size_t want = escape_slowly(slow, in, n);
                    char *end = keel_json_escape(fast, (const char *)in, n);
                    assert_int_equal((size_t)(end - fast), want);
                    assert_memory_equal(fast, slow, want);
                    assert_true(want <= KEEL_JSON_ESCAPED_MAX(n));
                    /* plain exactly when escaping changes nothing */
                    assert_int_equal(keel_json_plain((const char *)in, n),
                                     want == n && memcmp(slow, in, n) == 0);
                }
    assert_true(keel_json_escape(fast, "", 0) == fast);
    assert_true(keel_json_plain("", 0));
}

/* keel_json_u64 and keel_json_digits against printf: every length of
 * number, the powers of ten and their neighbours, the largest value, and
 * bytes past the end left alone. */
static void json_decimal(void **state)
{
    (void)state;
    uint64_t vals[64];
    size_t nv = 0;
    vals[nv++] = UINT64_MAX;
    for (uint64_t p = 1; nv < 60; p *= 10) {
        vals[nv++] = p - 1;
        vals[nv++] = p;
        vals[nv++] = p + 7;
        if (p > UINT64_MAX / 10)
            break;
    }
    for (size_t i = 0; i < nv; i++) {
        char want[32], got[32];
        int wn = snprintf(want, sizeof want, "%llu", (unsigned long long)vals[i]);
        memset(got, '#', sizeof got);
        char *end = keel_json_u64(got, vals[i]);
        assert_int_equal(end - got, wn);
        assert_memory_equal(got, want, (size_t)wn);
        assert_int_equal(got[wn], '#');
        /* the low nine digits, zeros kept */
        snprintf(want, sizeof want, "%09llu", (unsigned long long)(vals[i] % 1000000000u));
        memset(got, '#', sizeof got);
        assert_true(keel_json_digits(got, vals[i], 9) == got + 9);
        assert_memory_equal(got, want, 9);
        assert_int_equal(got[9], '#');
    }
}

/* ---- log ---- */

/* Runs fn with stderr captured; returns what it wrote (malloc'd). */
static char *capture(void (*fn)(void))
{
    char path[] = "/tmp/keel-test-obs-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    int saved = dup(2);
    dup2(fd, 2);
    fn();
    dup2(saved, 2);
    close(saved);
    off_t n = lseek(fd, 0, SEEK_END);
    char *buf = calloc(1, (size_t)n + 1);
    assert_int_equal(pread(fd, buf, (size_t)n, 0), n);
    close(fd);
    return buf;
}

static void log_lines(void)
{
    keel_log_ctx c = { .request_id = "r-1", .trace_id = "0123456789abcdef0123456789abcdef",
                       .span_id = "0123456789abcdef", .route = "/x" };
    const keel_log_ctx *old = keel_log_ctx_set(&c);
    keel_log(KEEL_LOG_WARN, "comp", "quote \" backslash \\ newline \n tab \t bell \a end");
    keel_log_fields f = { .status = 200, .duration_ns = 1500000, .method = "GET", .path = "/p\"" };
    keel_log_fields_write(KEEL_LOG_INFO, "comp", &f, "request");
    keel_log_ctx_set(old);
    keel_log(KEEL_LOG_DEBUG, NULL, "below the level");
    keel_log(KEEL_LOG_INFO, NULL, "no context");
}

static void log_json(void **state)
{
    (void)state;
    keel_log_fmt = KEEL_LOG_JSON;
    keel_log_min = KEEL_LOG_INFO;
    char *out = capture(log_lines);
    char *l2 = strchr(out, '\n') + 1, *l3 = strchr(l2, '\n') + 1;
    assert_non_null(strstr(out, "\"level\":\"warn\",\"msg\":\"quote \\\" backslash \\\\ newline "
                                "\\n tab \\t bell \\u0007 end\",\"component\":\"comp\","
                                "\"request_id\":\"r-1\",\"trace_id\":\"0123456789abcdef0123456789abcdef\","
                                "\"span_id\":\"0123456789abcdef\",\"route\":\"/x\"}\n"));
    assert_non_null(strstr(l2, "\"msg\":\"request\",\"component\":\"comp\",\"request_id\":\"r-1\","));
    assert_non_null(strstr(l2, "\"route\":\"/x\",\"method\":\"GET\",\"path\":\"/p\\\"\","
                               "\"status\":200,\"duration_ms\":1.500}\n"));
    assert_non_null(strstr(l3, "\"msg\":\"no context\"}\n"));
    assert_null(strstr(out, "below the level"));
    assert_int_equal(strncmp(out, "{\"ts\":\"", 7), 0);
    free(out);
    keel_log_fmt = KEEL_LOG_TEXT;
    out = capture(log_lines);
    assert_non_null(strstr(out, " warn [comp] quote \" backslash \\ newline   tab   bell   end "
                                "request_id=r-1 "));
    assert_non_null(strstr(out, " info [comp] request request_id=r-1 trace_id="));
    assert_non_null(strstr(out, "status=200 duration_ms=1.500\n"));
    free(out);
    keel_log_fmt = KEEL_LOG_JSON;
}

/* A path whose worst case (6 bytes a byte) does not fit the rest of the
 * line but whose escaped form does (2 bytes a quote): written whole, in
 * pieces, with the fields after it; one far longer is cut and the line
 * still ends in "}\n" within its 8 KiB. */
static char long_path[3001];
static void long_lines(void)
{
    keel_log_fields f = { .status = 201, .duration_ns = 7000, .path = long_path };
    memset(long_path, '"', 2000);
    long_path[2000] = 0;
    keel_log_fields_write(KEEL_LOG_INFO, "comp", &f, "request");
    memset(long_path, '\x01', 3000);
    long_path[3000] = 0;
    keel_log_fields_write(KEEL_LOG_INFO, "comp", &f, "request");
}

static void log_long_fields(void **state)
{
    (void)state;
    keel_log_fmt = KEEL_LOG_JSON;
    char *out = capture(long_lines);
    char *l2 = strchr(out, '\n') + 1;
    char want[4100] = "\"path\":\"";
    size_t n = strlen(want);
    for (int i = 0; i < 2000; i++, n += 2)
        memcpy(want + n, "\\\"", 2);
    memcpy(want + n, "\",\"status\":201,\"duration_ms\":0.007}\n", 36);
    want[n + 36] = 0;
    assert_non_null(strstr(out, want));
    assert_true(l2 - out < 8192);
    size_t len2 = strlen(l2);
    assert_true(len2 > 4096 && len2 <= 8192);
    assert_memory_equal(l2 + len2 - 2, "}\n", 2);
    assert_non_null(strstr(l2, "\"path\":\"\\u0001\\u0001"));
    free(out);
}

/* The same events written at once and through the queue (the writer
 * thread writes them): the lines must be the same, byte for byte. */
static void same_events(bool queued)
{
    keel_log_ctx c = { .request_id = "r-9", .trace_id = "0123456789abcdef0123456789abcdef",
                       .span_id = "0123456789abcdef", .route = "/ctx" };
    keel_log_fields f = { .status = 404, .duration_ns = 1234567, .method = "PUT",
                          .path = "/q\"\n", .wall_ns = 1795876428446530270ull };
    keel_log_fields g = { .duration_ns = -1, .route = "", .wall_ns = 1795876429000000000ull };
    const keel_log_ctx *old = keel_log_ctx_set(&c);
    void (*fn)(keel_log_level, const char *, const keel_log_fields *, const char *, ...) =
        queued ? keel_log_fields_queue : keel_log_fields_write;
    fn(KEEL_LOG_WARN, "comp\t1", &f, "msg %d", 7);
    fn(KEEL_LOG_INFO, NULL, &g, "plain");
    keel_log_ctx_set(NULL);
    fn(KEEL_LOG_ERROR, "c", &f, "no context");
    keel_log_ctx_set(old);
}
static void direct_events(void) { same_events(false); }
static void queued_events(void)
{
    assert_int_equal(keel_log_queue_start(), 0);
    same_events(true);
    keel_log_queue_stop();   /* writes what is queued */
}

static void log_queued_same_as_direct(void **state)
{
    (void)state;
    for (int fmt = 0; fmt < 2; fmt++) {
        keel_log_fmt = fmt ? KEEL_LOG_TEXT : KEEL_LOG_JSON;
        char *direct = capture(direct_events), *queued = capture(queued_events);
        assert_non_null(strstr(direct, fmt ? "route=/ctx" : "\"route\":\"/ctx\""));
        assert_string_equal(queued, direct);
        free(direct);
        free(queued);
    }
    keel_log_fmt = KEEL_LOG_JSON;
}

static size_t drops;
static void count_drop(size_t comp)
{
    (void)comp;
    drops++;
}

static void spam(void)
{
    for (int i = 0; i < 50; i++)
        keel_log_guest(0, "g", KEEL_LOG_INFO, "line %d", i);
    keel_log_guest(5, "beyond-table", KEEL_LOG_INFO, "unlimited");
}

static void guest_rate_limit(void **state)
{
    (void)state;
    keel_log_guest_limit(2, 10);
    keel_log_on_drop = count_drop;
    drops = 0;
    char *out = capture(spam);
    size_t n = 0;
    for (char *p = out; (p = strstr(p, "\"msg\":\"line ")); p++)
        n++;
    /* one window may roll over mid-loop: at most two windows' worth */
    assert_true(n >= 10 && n <= 20);
    assert_int_equal(n + drops, 50);
    assert_non_null(strstr(out, "unlimited"));
    free(out);
    keel_log_guest_limit(2, 0);
    keel_log_on_drop = NULL;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(traceparent_good),
        cmocka_unit_test(traceparent_bad),
        cmocka_unit_test(ids_are_random_and_nonzero),
        cmocka_unit_test(span_fields_pack),
        cmocka_unit_test(spans_through_the_ring),
        cmocka_unit_test(metrics_merge_and_render),
        cmocka_unit_test(prom_escaping),
        cmocka_unit_test(json_escape_every_byte),
        cmocka_unit_test(json_decimal),
        cmocka_unit_test(log_json),
        cmocka_unit_test(log_long_fields),
        cmocka_unit_test(log_queued_same_as_direct),
        cmocka_unit_test(guest_rate_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
