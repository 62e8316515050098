/* log.c — see log.h. Owns line formatting (JSON or text), the per-thread
 * request context and the per-component rate limit of guest lines. */
#include "obs/log.h"
#include "obs/json.h"
#include "obs/logq.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_BYTES 8192u      /* one line, escaped; longer messages are cut */
#define LOG_MSG_BYTES 4096u       /* the message before escaping */

keel_log_level keel_log_min = KEEL_LOG_INFO;
keel_log_format keel_log_fmt = KEEL_LOG_JSON;
void (*keel_log_on_drop)(size_t comp);

static const char *const level_names[] = { "debug", "info", "warn", "error" };
static _Thread_local const keel_log_ctx *tl_ctx;

const keel_log_ctx *keel_log_ctx_set(const keel_log_ctx *ctx)
{
    const keel_log_ctx *old = tl_ctx;
    tl_ctx = ctx;
    return old;
}

int keel_log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (s && strcmp(s, level_names[i]) == 0)
            return i;
    return -1;
}

int keel_log_format_parse(const char *s)
{
    if (s && strcmp(s, "json") == 0)
        return KEEL_LOG_JSON;
    if (s && strcmp(s, "text") == 0)
        return KEEL_LOG_TEXT;
    return -1;
}

typedef struct line {
    char buf[LOG_LINE_BYTES];
    size_t len;
} line;

static void put(line *l, const char *s, size_t n)
{
    if (n > sizeof l->buf - 2 - l->len)
        n = sizeof l->buf - 2 - l->len;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

/* A string literal, its length known when compiled. */
#define PUTL(l, lit) put((l), (lit), sizeof(lit) - 1)

/* s[0..n) as the inside of a JSON string, cut where the line is full. */
static void put_json(line *l, const char *s, size_t n)
{
    while (n) {
        size_t room = sizeof l->buf - 2 - l->len, chunk = n < room / 6 ? n : room / 6;
        if (!chunk)
            return;
        char *at = l->buf + l->len;
        l->len += (size_t)(keel_json_escape(at, s, chunk) - at);
        s += chunk;
        n -= chunk;
    }
}

/* One string field: ,"key":"value" (JSON, escaped) or  key=value (text).
 * Nothing for a NULL or empty value. The key's two spellings are joined
 * to their punctuation when compiled (FIELD_STR, FIELD_HEX); inlined at
 * each use, so their lengths are constants and their copies plain stores
 * (an access line: 195 -> 162 ns in bench/obs/access_line.c). */
static inline __attribute__((always_inline)) void
field_str(line *l, const char *json_key, size_t jn, const char *text_key, size_t tn,
          const char *v, bool escape)
{
    if (!v || !v[0])
        return;
    size_t n = strlen(v);
    if (keel_log_fmt != KEEL_LOG_JSON) {
        put(l, text_key, tn);
        put(l, v, n);
        return;
    }
    if (jn + KEEL_JSON_ESCAPED_MAX(n) + 1 <= sizeof l->buf - 2 - l->len) {
        /* the usual case: the worst case fits, so no piece is checked */
        char *p = l->buf + l->len;
        memcpy(p, json_key, jn);
        p += jn;
        if (escape) {
            p = keel_json_escape(p, v, n);
        } else {
            memcpy(p, v, n);
            p += n;
        }
        *p++ = '"';
        l->len = (size_t)(p - l->buf);
        return;
    }
    put(l, json_key, jn);
    if (escape)
        put_json(l, v, n);
    else
        put(l, v, n);
    PUTL(l, "\"");
}
#define FIELD(l, key, v, escape)                                                      \
    field_str((l), ",\"" key "\":\"", sizeof(",\"" key "\":\"") - 1, " " key "=",       \
              sizeof(" " key "=") - 1, (v), (escape))
#define FIELD_STR(l, key, v) FIELD(l, key, v, true)
/* A value that needs no escaping (the context's hex ids). */
#define FIELD_HEX(l, key, v) FIELD(l, key, v, false)
/* A number field's key: ,"key": (JSON) or  key= (text). */
#define FIELD_KEY(l, key)                                                             \
    (keel_log_fmt == KEEL_LOG_JSON ? PUTL((l), ",\"" key "\":") : PUTL((l), " " key "="))

/* v in decimal. */
static void put_uint(line *l, uint64_t v)
{
    char tmp[24];
    put(l, tmp, (size_t)(keel_json_u64(tmp, v) - tmp));
}

/* Replaces the bytes of l from `start` on that are below `lowest` or DEL
 * by `with` (text lines: one event, one line; no spaces in the path). */
static void flatten(line *l, size_t start, unsigned char lowest, char with)
{
    for (size_t i = start; i < l->len; i++)
        if ((unsigned char)l->buf[i] < lowest || l->buf[i] == 0x7f)
            l->buf[i] = with;
}

static void vwrite_line(keel_log_level level, const char *component, const keel_log_fields *f,
                        bool queue, const char *fmt, va_list ap)
{
    char buf[LOG_MSG_BYTES];
    const char *msg = fmt;   /* a message with no conversion is its own text */
    size_t mlen;
    if (strchr(fmt, '%')) {
        int m = vsnprintf(buf, sizeof buf, fmt, ap);
        mlen = m < 0 ? 0 : (size_t)m >= sizeof buf ? sizeof buf - 1 : (size_t)m;
        msg = buf;
    } else {
        mlen = strnlen(fmt, sizeof buf - 1);
    }

    /* The date and time to the second change once a second: each thread
     * keeps its last one formatted. */
    static _Thread_local time_t tl_sec = -1;
    static _Thread_local char tl_when[32];
    struct timespec ts;
    if (f && f->wall_ns) {   /* the caller read the clock already */
        ts.tv_sec = (time_t)(f->wall_ns / 1000000000u);
        ts.tv_nsec = (long)(f->wall_ns % 1000000000u);
    } else {
        clock_gettime(CLOCK_REALTIME, &ts);
    }
    if (ts.tv_sec != tl_sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        snprintf(tl_when, sizeof tl_when, "%04d-%02d-%02dT%02d:%02d:%02d",
                 (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100, tm.tm_mday % 100,
                 tm.tm_hour % 100, tm.tm_min % 100, tm.tm_sec % 100);
        tl_sec = ts.tv_sec;
    }
    char when[24];
    memcpy(when, tl_when, 19);
    int ms = (int)(ts.tv_nsec / 1000000) % 1000;
    when[19] = '.';
    when[20] = (char)('0' + ms / 100);
    when[21] = (char)('0' + ms / 10 % 10);
    when[22] = (char)('0' + ms % 10);
    when[23] = 'Z';
    const char *lv = level_names[level & 3];
    const keel_log_ctx *c = tl_ctx;
    line l;
    l.len = 0;
    if (keel_log_fmt == KEEL_LOG_JSON) {
        PUTL(&l, "{\"ts\":\"");
        put(&l, when, sizeof when);
        PUTL(&l, "\",\"level\":\"");
        put(&l, lv, strlen(lv));
        PUTL(&l, "\",\"msg\":\"");
        put_json(&l, msg, mlen);
        PUTL(&l, "\"");
        FIELD_STR(&l, "component", component);
    } else {
        put(&l, when, sizeof when);
        PUTL(&l, " ");
        put(&l, lv, strlen(lv));
        if (component) {
            PUTL(&l, " [");
            put(&l, component, strlen(component));
            PUTL(&l, "]");
        }
        PUTL(&l, " ");
        size_t start = l.len;
        put(&l, msg, mlen);
        flatten(&l, start, 0x20, ' ');
    }
    if (c) {
        FIELD_STR(&l, "request_id", c->request_id);
        FIELD_HEX(&l, "trace_id", c->trace_id);
        FIELD_HEX(&l, "span_id", c->span_id);
        if (!f || !f->route)
            FIELD_STR(&l, "route", c->route);
    }
    if (f) {
        FIELD_STR(&l, "route", f->route);
        FIELD_STR(&l, "method", f->method);
        /* the path is client input: escaped in JSON, made safe in text */
        size_t start = l.len + 6;
        FIELD_STR(&l, "path", f->path);
        if (keel_log_fmt != KEEL_LOG_JSON && f->path && f->path[0])
            flatten(&l, start, 0x21, '_');
        if (f->status > 0) {
            FIELD_KEY(&l, "status");
            put_uint(&l, (uint64_t)f->status);
        }
        if (f->duration_ns >= 0) {
            uint64_t us = ((uint64_t)f->duration_ns + 500) / 1000;
            FIELD_KEY(&l, "duration_ms");
            put_uint(&l, us / 1000);
            unsigned frac = (unsigned)(us % 1000);
            char ms[4] = { '.', (char)('0' + frac / 100), (char)('0' + frac / 10 % 10),
                           (char)('0' + frac % 10) };
            put(&l, ms, sizeof ms);
        }
    }
    if (keel_log_fmt == KEEL_LOG_JSON)
        l.buf[l.len++] = '}';
    l.buf[l.len++] = '\n';
    if (queue && keel_logq_push(l.buf, l.len))
        return;
    ssize_t w = write(2, l.buf, l.len);
    (void)w;
}

void keel_log_write(keel_log_level level, const char *component, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vwrite_line(level, component, NULL, false, fmt, ap);
    va_end(ap);
}

void keel_log_fields_write(keel_log_level level, const char *component,
                           const keel_log_fields *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vwrite_line(level, component, f, false, fmt, ap);
    va_end(ap);
}

void keel_log_fields_queue(keel_log_level level, const char *component,
                           const keel_log_fields *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vwrite_line(level, component, f, true, fmt, ap);
    va_end(ap);
}

/* ---- guest lines ---- */

/* One component's window: (second << 32) | lines logged in it, and the
 * lines dropped in it (reported when the window rolls over). */
typedef struct guest_limit {
    _Atomic uint64_t window;
    _Atomic uint32_t dropped;
    char pad[64 - sizeof(uint64_t) - sizeof(uint32_t)];
} guest_limit;

static _Atomic(guest_limit *) limits;
static _Atomic size_t nlimits;
static _Atomic uint32_t limit_per_sec;

/* Replaced tables stay reachable (a thread may still read one); a few
 * per process at most (one per host made). */
#define LOG_RETIRED_TABLES 64
static guest_limit *retired[LOG_RETIRED_TABLES];
static size_t nretired;

void keel_log_guest_limit(size_t ncomp, uint32_t per_sec)
{
    guest_limit *t = calloc(ncomp ? ncomp : 1, sizeof *t);
    if (!t)
        abort();
    guest_limit *old = atomic_load(&limits);
    if (old && nretired < LOG_RETIRED_TABLES)
        retired[nretired++] = old;
    atomic_store(&limit_per_sec, per_sec);
    atomic_store(&nlimits, 0);
    atomic_store(&limits, t);
    atomic_store(&nlimits, ncomp);
}

/* Whether one more line of comp fits its window; *rolled gets the lines
 * dropped in the window that just ended (0 when none ended). */
static bool guest_admit(size_t comp, uint32_t *rolled)
{
    *rolled = 0;
    uint32_t per_sec = atomic_load_explicit(&limit_per_sec, memory_order_relaxed);
    guest_limit *t = atomic_load_explicit(&limits, memory_order_acquire);
    if (!per_sec || !t || comp >= atomic_load_explicit(&nlimits, memory_order_relaxed))
        return true;
    guest_limit *g = &t[comp];
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    uint64_t sec = (uint64_t)ts.tv_sec & 0xffffffffu;
    uint64_t v = atomic_load_explicit(&g->window, memory_order_relaxed);
    for (;;) {
        uint64_t nv;
        bool roll = (v >> 32) != sec;
        if (roll)
            nv = sec << 32 | 1;
        else if ((v & 0xffffffffu) >= per_sec)
            break;
        else
            nv = v + 1;
        if (atomic_compare_exchange_weak_explicit(&g->window, &v, nv, memory_order_relaxed,
                                                  memory_order_relaxed)) {
            if (roll)
                *rolled = atomic_exchange_explicit(&g->dropped, 0, memory_order_relaxed);
            return true;
        }
    }
    atomic_fetch_add_explicit(&g->dropped, 1, memory_order_relaxed);
    if (keel_log_on_drop)
        keel_log_on_drop(comp);
    return false;
}

void keel_log_guest(size_t comp, const char *name, keel_log_level level, const char *fmt, ...)
{
    if (level < keel_log_min)
        return;
    uint32_t rolled;
    bool ok = guest_admit(comp, &rolled);
    if (rolled)
        keel_log_write(KEEL_LOG_WARN, name, "%u guest log lines dropped by the rate limit of "
                       "%u lines/s", rolled, atomic_load(&limit_per_sec));
    if (!ok)
        return;
    va_list ap;
    va_start(ap, fmt);
    vwrite_line(level, name, NULL, false, fmt, ap);
    va_end(ap);
}
