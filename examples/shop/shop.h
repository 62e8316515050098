/* shop.h — what the shop's waPC components share: the internal reply
 * convention, a small JSON writer and a small JSON reader. No library:
 * the shop only ever reads and writes a handful of flat objects.
 *
 * Internal replies. A component called by the gateway cannot set the HTTP
 * status (keel_set_status does nothing inside a nested call), so every
 * internal operation answers "NNN\n" followed by a JSON body, and the
 * gateway turns NNN into the HTTP status: "404\n{\"error\":\"...\"}".
 *
 * Include it after `#define KEEL_IMPLEMENTATION` in each component. */
#ifndef SHOP_H
#define SHOP_H

#include "keel.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------- JSON writer */

/* A fixed buffer: the shop's answers are a few KiB at most. Writing past
 * the end sets `full`, and shop_reply then fails the call. */
typedef struct {
    char s[16384];
    size_t n;
    int full;
} jbuf;

__attribute__((format(printf, 2, 3))) static inline void jb_printf(jbuf *b, const char *fmt, ...)
{
    if (b->full)
        return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(b->s + b->n, sizeof b->s - b->n, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= sizeof b->s - b->n)
        b->full = 1;
    else
        b->n += (size_t)k;
}

/* A JSON string literal: quotes, backslashes and control bytes escaped. */
static inline void jb_str(jbuf *b, const char *v)
{
    jb_printf(b, "\"");
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (*p == '"' || *p == '\\')
            jb_printf(b, "\\%c", *p);
        else if (*p < 0x20)
            jb_printf(b, "\\u%04x", *p);
        else
            jb_printf(b, "%c", *p);
    }
    jb_printf(b, "\"");
}

/* Answers the internal call: "STATUS\n" + the buffer. */
static inline void shop_reply(int status, const jbuf *b)
{
    if (b->full) {
        keel_fail("reply does not fit the JSON buffer");
        return;
    }
    char *out = malloc(b->n + 4);
    if (!out) {
        keel_fail("out of memory");
        return;
    }
    snprintf(out, 5, "%03d\n", status);
    memcpy(out + 4, b->s, b->n);
    keel_respond(out, b->n + 4);
    free(out);
}

/* Answers {"error":"msg"} with this status. */
static inline void shop_error(int status, const char *msg)
{
    static jbuf b;
    b.n = 0;
    b.full = 0;
    jb_printf(&b, "{\"error\":");
    jb_str(&b, msg);
    jb_printf(&b, "}");
    shop_reply(status, &b);
}

/* ---------------------------------------------------------- JSON reader */

/* A cursor over untrusted bytes. Every function returns 1 on success and
 * 0 on anything unexpected; the callers answer 400 then. Strings accept
 * the escapes \" \\ \/ only, numbers are non-negative integers of at
 * most 9 digits. */
typedef struct {
    const char *p, *end;
} jcur;

static inline void jc_ws(jcur *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\r' || *c->p == '\n'))
        c->p++;
}

/* Consumes ch (after white space) if it is next. */
static inline int jc_eat(jcur *c, char ch)
{
    jc_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

static inline int jc_string(jcur *c, char *out, size_t cap)
{
    size_t n = 0;
    if (!jc_eat(c, '"'))
        return 0;
    while (c->p < c->end && *c->p != '"') {
        char ch = *c->p++;
        if ((unsigned char)ch < 0x20)
            return 0;
        if (ch == '\\') {
            if (c->p == c->end || (*c->p != '"' && *c->p != '\\' && *c->p != '/'))
                return 0;
            ch = *c->p++;
        }
        if (n + 1 >= cap)
            return 0;
        out[n++] = ch;
    }
    out[n] = 0;
    return jc_eat(c, '"');
}

static inline int jc_int(jcur *c, long *v)
{
    jc_ws(c);
    int digits = 0;
    *v = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9' && digits < 9) {
        *v = *v * 10 + (*c->p++ - '0');
        digits++;
    }
    return digits > 0 && !(c->p < c->end && *c->p >= '0' && *c->p <= '9');
}

/* true or false. */
static inline int jc_bool(jcur *c, int *v)
{
    jc_ws(c);
    size_t left = (size_t)(c->end - c->p);
    if (left >= 4 && memcmp(c->p, "true", 4) == 0) {
        c->p += 4;
        *v = 1;
        return 1;
    }
    if (left >= 5 && memcmp(c->p, "false", 5) == 0) {
        c->p += 5;
        *v = 0;
        return 1;
    }
    return 0;
}

/* The next `"key":` of an object whose '{' has been read; *first says
 * whether a comma is due (start with 1). Returns 1 with the key, 0 at the
 * closing brace, -1 on bad input:
 *     int first = 1, r;
 *     while ((r = jc_key(c, &first, key, sizeof key)) == 1) { read a value }
 *     if (r < 0) bad input */
static inline int jc_key(jcur *c, int *first, char *key, size_t cap)
{
    if (jc_eat(c, '}'))
        return 0;
    if (!*first && !jc_eat(c, ','))
        return -1;
    *first = 0;
    return jc_string(c, key, cap) && jc_eat(c, ':') ? 1 : -1;
}

/* True when only white space is left. */
static inline int jc_done(jcur *c)
{
    jc_ws(c);
    return c->p == c->end;
}

/* A name made of a-z, 0-9, '-' and '_', 1 to 32 bytes: user names and
 * product ids, safe in URLs, tokens and logs. */
static inline int shop_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 32)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' || *s == '_'))
            return 0;
    return 1;
}

#endif /* SHOP_H */
