/* admin_parse.c — the admin API's JSON member and query parameter readers
 * (admin_parse.h). Fuzzed by tests/fuzz/fuzz_admin_json.c. */
#include "admin/admin_parse.h"

#include <string.h>

static bool json_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Whether the '"' at p opens a member name: the previous non-space byte
 * is the object's '{' or a ','. */
static bool member_start(const char *body, const char *p)
{
    while (p > body && json_space(p[-1]))
        p--;
    return p > body && (p[-1] == '{' || p[-1] == ',');
}

int keel_admin_json_member(const char *body, size_t len, const char *key, char *out,
                           size_t outlen)
{
    size_t kl = strlen(key);
    const char *end = body + len;
    for (const char *p = body; (size_t)(end - p) >= kl + 2; p++) {
        if (p[0] != '"' || memcmp(p + 1, key, kl) != 0 || p[kl + 1] != '"' ||
            !member_start(body, p))
            continue;
        p += kl + 2;
        while (p < end && json_space(*p))
            p++;
        if (p >= end || *p != ':')
            return -1;
        p++;
        while (p < end && json_space(*p))
            p++;
        const char *v = p, *ve;
        if (p < end && *p == '"') {
            v = ++p;
            while (p < end && *p != '"' && *p != '\\')
                p++;
            if (p >= end || *p != '"')
                return -1;
            ve = p;
        } else {
            while (p < end && (*p == '-' || *p == '.' || (*p >= '0' && *p <= '9')))
                p++;
            ve = p;
            if (ve == v)
                return -1;
        }
        size_t n = (size_t)(ve - v);
        if (n >= outlen)
            return -1;
        memcpy(out, v, n);
        out[n] = '\0';
        return 1;
    }
    return 0;
}

bool keel_admin_query_param(const char *q, size_t len, const char *key, char *out,
                            size_t outlen)
{
    const char *end = q + len;
    size_t kl = strlen(key);
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *stop = amp ? amp : end;
        if ((size_t)(stop - q) >= kl && memcmp(q, key, kl) == 0 &&
            (q + kl == stop || q[kl] == '=')) {
            const char *v = q + kl == stop ? stop : q + kl + 1;
            size_t n = (size_t)(stop - v);
            if (n >= outlen)
                n = outlen - 1;
            memcpy(out, v, n);
            out[n] = '\0';
            return true;
        }
        q = stop + 1;
    }
    return false;
}
