/* prom.c — see prom.h. */
#include "obs/prom.h"
#include "obs/json.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void reserve(keel_buf *b, size_t more)
{
    if (b->len + more + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more + 1)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p)
        abort();
    b->data = p;
    b->cap = cap;
}

char *keel_buf_reserve(keel_buf *b, size_t more)
{
    reserve(b, more);
    return b->data + b->len;
}

void keel_buf_put(keel_buf *b, const char *s, size_t n)
{
    reserve(b, n);
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = 0;
}

void keel_buf_puts(keel_buf *b, const char *s)
{
    keel_buf_put(b, s, strlen(s));
}

void keel_buf_printf(keel_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n <= 0)
        return;
    reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void keel_buf_json(keel_buf *b, const char *s)
{
    size_t n = strlen(s);
    char *p = keel_buf_reserve(b, KEEL_JSON_ESCAPED_MAX(n));
    b->len += (size_t)(keel_json_escape(p, s, n) - p);
    b->data[b->len] = 0;
}

void keel_buf_free(keel_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* Escapes for HELP text (backslash, newline) or label values (also '"'). */
static void put_escaped(keel_buf *b, const char *s, int quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            keel_buf_put(b, "\\\\", 2);
        else if (*s == '\n')
            keel_buf_put(b, "\\n", 2);
        else if (quote && *s == '"')
            keel_buf_put(b, "\\\"", 2);
        else
            keel_buf_put(b, s, 1);
    }
}

void keel_prom_family(keel_buf *b, const char *name, const char *type, const char *help)
{
    keel_buf_printf(b, "# HELP %s ", name);
    put_escaped(b, help, 0);
    keel_buf_printf(b, "\n# TYPE %s %s\n", name, type);
}

static void head(keel_buf *b, const char *name, const char *const *labels, size_t n)
{
    keel_buf_puts(b, name);
    if (!n)
        return;
    keel_buf_put(b, "{", 1);
    for (size_t i = 0; i < n; i++) {
        keel_buf_printf(b, "%s%s=\"", i ? "," : "", labels[2 * i]);
        put_escaped(b, labels[2 * i + 1] ? labels[2 * i + 1] : "", 1);
        keel_buf_put(b, "\"", 1);
    }
    keel_buf_put(b, "}", 1);
}

void keel_prom_sample(keel_buf *b, const char *name, const char *const *labels,
                      size_t nlabels, double value)
{
    head(b, name, labels, nlabels);
    if (isnan(value))
        keel_buf_puts(b, " NaN\n");
    else if (isinf(value))
        keel_buf_puts(b, value > 0 ? " +Inf\n" : " -Inf\n");
    else
        keel_buf_printf(b, " %.10g\n", value);
}

void keel_prom_sample_u(keel_buf *b, const char *name, const char *const *labels,
                        size_t nlabels, uint64_t value)
{
    head(b, name, labels, nlabels);
    keel_buf_printf(b, " %llu\n", (unsigned long long)value);
}
