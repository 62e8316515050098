/* log.c — see log.h. Owns line formatting (JSON or text), the per-thread
 * request context and the per-component rate limit of guest lines. */
#include "obs/log.h"
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

static void puts_(line *l, const char *s)
{
    put(l, s, strlen(s));
}

/* s as the inside of a JSON string: quotes, backslashes and control
 * characters escaped; bytes >= 0x80 passed through (UTF-8 stays UTF-8). */
static void put_json(line *l, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        size_t run = i;   /* copy runs that need no escaping at once */
        while (run < n && (unsigned char)s[run] >= 0x20 && s[run] != '"' && s[run] != '\\' &&
               s[run] != 0x7f)
            run++;
        if (run > i) {
            put(l, s + i, run - i);
            i = run - 1;
            continue;
        }
        unsigned char ch = (unsigned char)s[i];
        char esc[7];
        if (ch == '"' || ch == '\\') {
            esc[0] = '\\';
            esc[1] = (char)ch;
            put(l, esc, 2);
        } else if (ch == '\n') {
            put(l, "\\n", 2);
        } else if (ch == '\t') {
            put(l, "\\t", 2);
        } else if (ch < 0x20 || ch == 0x7f) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[ch >> 4];
            esc[5] = hex[ch & 15];
            put(l, esc, 6);
        } else {
            put(l, (const char *)&ch, 1);
        }
    }
}

static void field_str(line *l, const char *key, const char *v)
{
    if (!v || !v[0])
        return;
    if (keel_log_fmt == KEEL_LOG_JSON) {
        puts_(l, ",\"");
        puts_(l, key);
        puts_(l, "\":\"");
        put_json(l, v, strlen(v));
        puts_(l, "\"");
    } else {
        puts_(l, " ");
        puts_(l, key);
        puts_(l, "=");
        puts_(l, v);
    }
}

/* v in decimal, at least `digits` digits (zero-padded). */
static void put_uint(line *l, uint64_t v, int digits)
{
    char tmp[24];
    size_t n = sizeof tmp;
    do {
        tmp[--n] = (char)('0' + v % 10);
        v /= 10;
    } while (v || (int)(sizeof tmp - n) < digits);
    put(l, tmp + n, sizeof tmp - n);
}

static void field_raw(line *l, const char *key, const char *v)
{
    if (keel_log_fmt == KEEL_LOG_JSON) {
        puts_(l, ",\"");
        puts_(l, key);
        puts_(l, "\":");
        puts_(l, v);
    } else {
        puts_(l, " ");
        puts_(l, key);
        puts_(l, "=");
        puts_(l, v);
    }
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
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != tl_sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        snprintf(tl_when, sizeof tl_when, "%04d-%02d-%02dT%02d:%02d:%02d",
                 (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100, tm.tm_mday % 100,
                 tm.tm_hour % 100, tm.tm_min % 100, tm.tm_sec % 100);
        tl_sec = ts.tv_sec;
    }
    char when[40];
    memcpy(when, tl_when, 19);
    int ms = (int)(ts.tv_nsec / 1000000) % 1000;
    when[19] = '.';
    when[20] = (char)('0' + ms / 100);
    when[21] = (char)('0' + ms / 10 % 10);
    when[22] = (char)('0' + ms % 10);
    when[23] = 'Z';
    when[24] = 0;
    const char *lv = level_names[level & 3];
    const keel_log_ctx *c = tl_ctx;
    line l;
    l.len = 0;
    if (keel_log_fmt == KEEL_LOG_JSON) {
        puts_(&l, "{\"ts\":\"");
        puts_(&l, when);
        puts_(&l, "\",\"level\":\"");
        puts_(&l, lv);
        puts_(&l, "\",\"msg\":\"");
        put_json(&l, msg, mlen);
        puts_(&l, "\"");
        field_str(&l, "component", component);
    } else {
        puts_(&l, when);
        puts_(&l, " ");
        puts_(&l, lv);
        if (component) {
            puts_(&l, " [");
            puts_(&l, component);
            puts_(&l, "]");
        }
        puts_(&l, " ");
        size_t start = l.len;
        put(&l, msg, mlen);
        for (size_t i = start; i < l.len; i++)   /* one event, one line */
            if ((unsigned char)l.buf[i] < 0x20 || l.buf[i] == 0x7f)
                l.buf[i] = ' ';
    }
    if (c) {
        field_str(&l, "request_id", c->request_id);
        field_str(&l, "trace_id", c->trace_id);
        field_str(&l, "span_id", c->span_id);
        if (!f || !f->route)
            field_str(&l, "route", c->route);
    }
    if (f) {
        field_str(&l, "route", f->route);
        field_str(&l, "method", f->method);
        if (f->path) {
            /* the path is client input: escaped in JSON, made safe in text */
            if (keel_log_fmt == KEEL_LOG_JSON) {
                field_str(&l, "path", f->path);
            } else {
                size_t start = l.len + 6;
                field_str(&l, "path", f->path);
                for (size_t i = start; i < l.len; i++)
                    if ((unsigned char)l.buf[i] <= 0x20 || l.buf[i] == 0x7f)
                        l.buf[i] = '_';
            }
        }
        if (f->status > 0) {
            field_raw(&l, "status", "");
            put_uint(&l, (uint64_t)f->status, 1);
        }
        if (f->duration_ns >= 0) {
            uint64_t us = ((uint64_t)f->duration_ns + 500) / 1000;
            field_raw(&l, "duration_ms", "");
            put_uint(&l, us / 1000, 1);
            put(&l, ".", 1);
            put_uint(&l, us % 1000, 3);
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
