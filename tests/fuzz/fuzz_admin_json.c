/* fuzz_admin_json.c — libFuzzer target: the readers of admin API request
 * bytes (src/admin/admin_parse.c): keel_admin_json_member on arbitrary
 * bodies (POST .../canary and .../rollback) and keys, and
 * keel_admin_query_param on arbitrary query strings (PUT ?tier=, ?stage=).
 * The out buffer is allocated at exactly the size passed (ASan sees one
 * byte too many). Contracts checked: json_member returns -1, 0 or 1; on 1
 * the value is NUL-terminated inside out, has no '"' or '\\', and occurs
 * in the body right after the key's ':'; otherwise out is untouched; a
 * body without "KEY" is 0. query_param: on true out is NUL-terminated
 * inside out and has no '&'; on false out is untouched.
 *
 * Input: a key selector byte (a known key, or one taken from the input up
 * to the first NUL), an out size byte, then the body / query. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SENTINEL 0xa5

static const char *const keys[] = { "wasm_sha256", "weight", "why", "tier", "stage", "" };
#define NKEYS (sizeof keys / sizeof keys[0])

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_admin_json: %s\n", what);
        abort();
    }
}

static bool untouched(const unsigned char *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (out[i] != SENTINEL)
            return false;
    return true;
}

static bool has_quoted_key(const char *s, size_t n, const char *key)
{
    size_t kl = strlen(key);
    for (size_t i = 0; i + kl + 2 <= n; i++)
        if (s[i] == '"' && memcmp(s + i + 1, key, kl) == 0 && s[i + kl + 1] == '"')
            return true;
    return false;
}

static void json(const char *body, size_t len, const char *key, size_t outlen)
{
    unsigned char *out = malloc(outlen ? outlen : 1);
    if (!out)
        abort();
    memset(out, SENTINEL, outlen);
    int rc = keel_admin_json_member(body, len, key, (char *)out, outlen);
    check(rc >= -1 && rc <= 1, "json_member returned outside -1..1");
    if (rc == 1) {
        const unsigned char *nul = memchr(out, '\0', outlen);
        check(nul != NULL, "value not NUL-terminated inside out");
        size_t n = (size_t)(nul - out);
        check(!memchr(out, '"', n) && !memchr(out, '\\', n), "value holds '\"' or '\\'");
        bool found = false;   /* "KEY" <ws> : <ws> ["] VALUE somewhere in the body */
        size_t kl = strlen(key);
        for (size_t i = 0; !found && i + kl + 2 <= len; i++) {
            if (body[i] != '"' || memcmp(body + i + 1, key, kl) || body[i + kl + 1] != '"')
                continue;
            size_t j = i + kl + 2;
            while (j < len && strchr(" \t\r\n", body[j]) && body[j])
                j++;
            if (j >= len || body[j] != ':')
                continue;
            j++;
            while (j < len && strchr(" \t\r\n", body[j]) && body[j])
                j++;
            if (j < len && body[j] == '"')
                j++;
            found = j + n <= len && memcmp(body + j, out, n) == 0;
        }
        check(found, "value not found after its key in the body");
    } else {
        check(untouched(out, outlen), "out written without a value");
    }
    if (!has_quoted_key(body, len, key))
        check(rc == 0, "a body without the key is not 0");
    free(out);
}

static void query(const char *q, size_t len, const char *key, size_t outlen)
{
    unsigned char *out = malloc(outlen);
    if (!out)
        abort();
    memset(out, SENTINEL, outlen);
    if (keel_admin_query_param(q, len, key, (char *)out, outlen)) {
        const unsigned char *nul = memchr(out, '\0', outlen);
        check(nul != NULL, "query value not NUL-terminated inside out");
        check(!memchr(out, '&', (size_t)(nul - out)), "query value holds '&'");
    } else {
        check(untouched(out, outlen), "out written for an absent parameter");
    }
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    const char *s = (const char *)data + 2;
    size_t n = size - 2;
    const char *key = keys[data[0] % NKEYS];
    char own[64];
    if (!key[0]) {   /* a key from the input: its bytes up to the first NUL */
        const char *nul = memchr(s, '\0', n);
        size_t kl = nul ? (size_t)(nul - s) : 0;
        if (kl >= sizeof own)
            kl = sizeof own - 1;
        memcpy(own, s, kl);
        own[kl] = '\0';
        key = own;
        if (nul) {
            n -= (size_t)(nul - s) + 1;
            s = nul + 1;
        }
    }
    size_t outlen = data[1];
    json(s, n, key, outlen);
    query(s, n, key, outlen ? outlen : 1);
    return 0;
}
