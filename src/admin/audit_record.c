/* audit_record.c — parses one audit record line: a strict JSON check of
 * the whole object (RFC 8259 grammar, no trailing bytes, no raw control
 * characters) plus the record's own rules: members seq, ts, event, who
 * first and in that order, prev last, none of those five names twice. */
#include "admin/audit_int.h"

#include <stdio.h>
#include <string.h>

typedef struct scanner {
    const char *s;
    size_t n, i;
    char *why;
    size_t len;
} scanner;

static int fail(scanner *sc, const char *what)
{
    snprintf(sc->why, sc->len, "%s at byte %zu", what, sc->i + 1);
    return -1;
}

static void skip_ws(scanner *sc)
{
    while (sc->i < sc->n && (sc->s[sc->i] == ' ' || sc->s[sc->i] == '\t'))
        sc->i++;
}

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* A string at sc->i (its opening quote); its raw content (escapes left
 * as written) is s[*start, *end). */
static int scan_string(scanner *sc, size_t *start, size_t *end)
{
    if (sc->i >= sc->n || sc->s[sc->i] != '"')
        return fail(sc, "expected a string");
    sc->i++;
    *start = sc->i;
    while (sc->i < sc->n) {
        unsigned char c = (unsigned char)sc->s[sc->i];
        if (c == '"') {
            *end = sc->i++;
            return 0;
        }
        if (c < 0x20)
            return fail(sc, "control character inside a string");
        if (c == '\\') {
            sc->i++;
            if (sc->i >= sc->n)
                break;
            char e = sc->s[sc->i];
            if (e == 'u') {
                for (int k = 1; k <= 4; k++)
                    if (sc->i + k >= sc->n || !is_hex(sc->s[sc->i + k]))
                        return fail(sc, "bad \\u escape");
                sc->i += 4;
            } else if (!strchr("\"\\/bfnrt", e)) {
                return fail(sc, "bad escape in a string");
            }
        }
        sc->i++;
    }
    return fail(sc, "unterminated string");
}

/* Skips decimal digits; how many. */
static size_t skip_digits(scanner *sc)
{
    size_t i0 = sc->i;
    while (sc->i < sc->n && sc->s[sc->i] >= '0' && sc->s[sc->i] <= '9')
        sc->i++;
    return sc->i - i0;
}

static int scan_number(scanner *sc)
{
    if (sc->i < sc->n && sc->s[sc->i] == '-')
        sc->i++;
    if (sc->i < sc->n && sc->s[sc->i] == '0')
        sc->i++;
    else if (sc->i >= sc->n || sc->s[sc->i] < '1' || sc->s[sc->i] > '9' || !skip_digits(sc))
        return fail(sc, "bad number");
    if (sc->i < sc->n && sc->s[sc->i] == '.') {
        sc->i++;
        if (!skip_digits(sc))
            return fail(sc, "bad number");
    }
    if (sc->i < sc->n && (sc->s[sc->i] == 'e' || sc->s[sc->i] == 'E')) {
        sc->i++;
        if (sc->i < sc->n && (sc->s[sc->i] == '+' || sc->s[sc->i] == '-'))
            sc->i++;
        if (!skip_digits(sc))
            return fail(sc, "bad number");
    }
    return 0;
}

static int scan_value(scanner *sc, int depth);

/* An object or array at sc->i, members checked for syntax only. */
static int scan_container(scanner *sc, int depth)
{
    if (depth >= KEEL_AUDIT_MAX_DEPTH)
        return fail(sc, "nested too deeply");
    char close = sc->s[sc->i] == '{' ? '}' : ']';
    sc->i++;
    skip_ws(sc);
    if (sc->i < sc->n && sc->s[sc->i] == close) {
        sc->i++;
        return 0;
    }
    for (;;) {
        skip_ws(sc);
        if (close == '}') {
            size_t a, b;
            if (scan_string(sc, &a, &b))
                return -1;
            skip_ws(sc);
            if (sc->i >= sc->n || sc->s[sc->i] != ':')
                return fail(sc, "expected ':'");
            sc->i++;
            skip_ws(sc);
        }
        if (scan_value(sc, depth + 1))
            return -1;
        skip_ws(sc);
        if (sc->i < sc->n && sc->s[sc->i] == ',') {
            sc->i++;
            continue;
        }
        if (sc->i < sc->n && sc->s[sc->i] == close) {
            sc->i++;
            return 0;
        }
        return fail(sc, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static int scan_value(scanner *sc, int depth)
{
    if (sc->i >= sc->n)
        return fail(sc, "expected a value");
    char c = sc->s[sc->i];
    if (c == '{' || c == '[')
        return scan_container(sc, depth);
    if (c == '"') {
        size_t a, b;
        return scan_string(sc, &a, &b);
    }
    static const char *const words[] = { "true", "false", "null" };
    for (size_t k = 0; k < 3; k++) {
        size_t wl = strlen(words[k]);
        if (sc->n - sc->i >= wl && memcmp(sc->s + sc->i, words[k], wl) == 0) {
            sc->i += wl;
            return 0;
        }
    }
    return scan_number(sc);
}

static bool key_is(const scanner *sc, size_t a, size_t b, const char *name)
{
    return b - a == strlen(name) && memcmp(sc->s + a, name, b - a) == 0;
}

/* Index of a reserved member name, or -1. */
static int reserved(const scanner *sc, size_t a, size_t b)
{
    static const char *const names[] = { "seq", "ts", "event", "who", "prev" };
    for (int k = 0; k < 5; k++)
        if (key_is(sc, a, b, names[k]))
            return k;
    return -1;
}

/* The value of member k (0 seq, 1 ts, 2 event, 3 who, 4 prev) into r. */
static int take_reserved(scanner *sc, int k, audit_record *r)
{
    if (k == 0) {
        size_t i0 = sc->i;
        uint64_t v = 0;
        while (sc->i < sc->n && sc->s[sc->i] >= '0' && sc->s[sc->i] <= '9') {
            unsigned d = (unsigned)(sc->s[sc->i] - '0');
            if (v > (UINT64_MAX - d) / 10)
                return fail(sc, "seq out of range");
            v = v * 10 + d;
            sc->i++;
        }
        if (sc->i == i0 || (sc->s[i0] == '0' && sc->i - i0 > 1) || v == 0) {
            sc->i = i0;
            return fail(sc, "seq must be an integer from 1");
        }
        r->seq = v;
        return 0;
    }
    size_t a, b;
    if (scan_string(sc, &a, &b))
        return -1;
    if (k == 2) {
        if (b == a || b - a > KEEL_AUDIT_MAX_EVENT ||
            strspn(sc->s + a, "abcdefghijklmnopqrstuvwxyz0123456789_.") < b - a) {
            sc->i = a;
            return fail(sc, "event must be 1 to 63 of [a-z0-9_.]");
        }
        memcpy(r->event, sc->s + a, b - a);
        r->event[b - a] = '\0';
    } else if (k == 4) {
        if (b - a != 64 || strspn(sc->s + a, "0123456789abcdef") < 64) {
            sc->i = a;
            return fail(sc, "prev must be 64 lowercase hex digits");
        }
        memcpy(r->prev, sc->s + a, 64);
        r->prev[64] = '\0';
    }
    return 0;
}

int audit_record_parse(const char *line, size_t n, audit_record *r, char *why, size_t len)
{
    static const char *const order[] = { "seq", "ts", "event", "who" };
    scanner sc = { line, n, 0, why, len };
    memset(r, 0, sizeof *r);
    if (!n)
        return fail(&sc, "empty line");
    if (line[0] != '{')
        return fail(&sc, "expected '{'");
    sc.i++;
    int member = 0;
    bool has_prev = false;
    for (;;) {
        skip_ws(&sc);
        size_t a, b, key_at = sc.i;
        if (scan_string(&sc, &a, &b))
            return -1;
        int k = reserved(&sc, a, b);
        if (member < 4 && !key_is(&sc, a, b, order[member])) {
            sc.i = key_at;
            snprintf(why, len, "member %d must be \"%s\" at byte %zu", member + 1,
                     order[member], key_at + 1);
            return -1;
        }
        if (member >= 4 && k >= 0 && k < 4) {
            sc.i = key_at;
            return fail(&sc, "a second seq, ts, event or who member");
        }
        if (has_prev) {
            sc.i = key_at;
            return fail(&sc, "a member after prev (prev must be last)");
        }
        skip_ws(&sc);
        if (sc.i >= n || line[sc.i] != ':')
            return fail(&sc, "expected ':'");
        sc.i++;
        skip_ws(&sc);
        if (k >= 0 ? take_reserved(&sc, k, r) : scan_value(&sc, 1))
            return -1;
        has_prev = has_prev || k == 4;
        member++;
        skip_ws(&sc);
        if (sc.i < n && line[sc.i] == ',') {
            sc.i++;
            continue;
        }
        if (sc.i < n && line[sc.i] == '}')
            break;
        return fail(&sc, "expected ',' or '}'");
    }
    sc.i++;
    if (member < 4 || !has_prev)
        return fail(&sc, "the record ends without its prev member");
    if (sc.i != n)
        return fail(&sc, "bytes after the record's closing brace");
    return 0;
}
