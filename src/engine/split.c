/* split.c — see split.h.
 *
 * wasm2c 1.0.32 lays a module out as: preamble and header; func_types;
 * forward declarations of the guest functions ("static T w2c_F(...);");
 * data/element segment arrays and init functions; the function definitions
 * one after another; then exports and instantiate (and Keel's glue). The
 * function units get the preamble, the forward declarations made extern
 * (hidden visibility, the units are built with -fvisibility=hidden) and
 * extern declarations of the segment arrays; unit 0 keeps everything else.
 * Any deviation from that layout means "do not split". */
#include "engine/split.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct buf {
    char *p;
    size_t len, cap;
} buf;

static void put(buf *b, const char *s, size_t n)
{
    if (!b->p || b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            abort();
        b->p = p;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void puts_(buf *b, const char *s)
{
    put(b, s, strlen(s));
}

static const char *line_end(const char *p, const char *end)
{
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    return nl ? nl + 1 : end;
}

static int starts(const char *p, const char *end, const char *s)
{
    size_t n = strlen(s);
    return (size_t)(end - p) >= n && memcmp(p, s, n) == 0;
}

/* "static T w2c_X(...)" + tail, where tail is ") {\n" (definition) or
 * ");\n" (declaration). */
static int is_func_line(const char *p, const char *le, const char *tail)
{
    size_t tl = strlen(tail);
    if (!starts(p, le, "static ") || (size_t)(le - p) < tl + 8)
        return 0;
    if (memcmp(le - tl, tail, tl) != 0)
        return 0;
    const char *paren = memchr(p, '(', (size_t)(le - p));
    const char *w = paren ? memmem(p, (size_t)(paren - p), " w2c_", 5) : NULL;
    return w != NULL && !starts(p, le, "static inline");
}

static char *dup_range(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (!s)
        abort();
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

static size_t no_split(const char *text, size_t len, char ***units)
{
    *units = malloc(sizeof **units);
    if (!*units)
        abort();
    (*units)[0] = dup_range(text, len);
    return 1;
}

/* Appends [p, end) to out with guest-function "static " dropped from
 * definition/declaration lines and, for the forward-declared arrays,
 * either definitions (keep_defs) or extern declarations. */
static void emit_prefix(buf *out, const char *p, const char *end, int main_unit)
{
    while (p < end) {
        const char *le = line_end(p, end);
        if (starts(p, le, "static u32 func_types[")) {
            puts_(out, main_unit ? "" : "extern ");
            put(out, p + 7, (size_t)(le - p) - 7);
        } else if (is_func_line(p, le, ");\n")) {
            put(out, p + 7, (size_t)(le - p) - 7);
        } else {
            put(out, p, (size_t)(le - p));
        }
        p = le;
    }
}

size_t keel_split_c(const char *text, size_t len, size_t unit_bytes,
                    char ***units)
{
    const char *end = text + len, *p, *first_def = NULL, *decl_end = NULL;
    /* forward declarations, then the first definition */
    for (p = text; p < end; p = line_end(p, end)) {
        const char *le = line_end(p, end);
        if (is_func_line(p, le, ");\n"))
            decl_end = le;
        if (is_func_line(p, le, ") {\n")) {
            first_def = p;
            break;
        }
    }
    if (!first_def || !decl_end || decl_end > first_def)
        return no_split(text, len, units);
    /* the definitions run to the first line that is neither a definition,
     * nor inside one, nor blank */
    const char *defs_end = first_def;
    for (p = first_def; p < end;) {
        const char *le = line_end(p, end);
        if (*p == '\n') {
            p = le;
            continue;
        }
        if (!is_func_line(p, le, ") {\n"))
            break;
        const char *q = le;
        while (q < end && !starts(q, end, "}\n"))
            q = line_end(q, end);
        if (q >= end)
            return no_split(text, len, units);
        p = defs_end = line_end(q, end);
    }
    if ((size_t)(defs_end - first_def) <= unit_bytes)
        return no_split(text, len, units);

    /* unit 0: everything but the definitions */
    buf u0 = { 0 }, shared = { 0 };
    emit_prefix(&u0, text, decl_end, 1);
    emit_prefix(&shared, text, decl_end, 0);
    for (p = decl_end; p < first_def;) {
        const char *le = line_end(p, end);
        if (starts(p, le, "static const ") && (size_t)(le - p) > 6 &&
            memcmp(le - 6, "] = {\n", 6) == 0) {
            const char *bracket = memchr(p, '[', (size_t)(le - p));
            put(&u0, p + 7, (size_t)(le - p) - 7);
            puts_(&shared, "extern ");
            put(&shared, p + 7, (size_t)(bracket - p) - 7);
            puts_(&shared, "[];\n");
        } else {
            put(&u0, p, (size_t)(le - p));
        }
        p = le;
    }
    put(&u0, defs_end, (size_t)(end - defs_end));

    size_t cap = 8, n = 1;
    char **out = malloc(cap * sizeof *out);
    if (!out)
        abort();
    out[0] = u0.p;
    buf cur = { 0 };
    size_t code = 0;   /* function code in cur, without the shared part */
    for (p = first_def; p < defs_end;) {
        const char *le = line_end(p, end);
        code += (size_t)(le - p);
        if (is_func_line(p, le, ") {\n")) {
            if (code >= unit_bytes) {
                if (n == cap) {
                    char **grown = realloc(out, (cap *= 2) * sizeof *out);
                    if (!grown)
                        abort();
                    out = grown;
                }
                out[n++] = cur.p;
                memset(&cur, 0, sizeof cur);
                code = (size_t)(le - p);
            }
            if (!cur.len)
                put(&cur, shared.p, shared.len);
            put(&cur, p + 7, (size_t)(le - p) - 7);
        } else {
            put(&cur, p, (size_t)(le - p));
        }
        p = le;
    }
    if (cur.len) {
        if (n == cap) {
            char **grown = realloc(out, (cap + 1) * sizeof *out);
            if (!grown)
                abort();
            out = grown;
        }
        out[n++] = cur.p;
    } else {
        free(cur.p);   /* allocated by an empty put, or NULL */
    }
    free(shared.p);
    *units = out;
    return n;
}

void keel_split_free(char **units, size_t n)
{
    if (!units)
        return;
    for (size_t i = 0; i < n; i++)
        free(units[i]);
    free(units);
}
