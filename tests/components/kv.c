/* kv.c — waPC reactor exposing the kv_* host functions over HTTP, for the
 * store tests (tests/integration/test_kv*.py).
 *   operation "kv", routes below /kv/: the URI is /kv/STORE/KEY
 *     GET                -> 200 value | 404 "absent"
 *     GET ?keys=PREFIX   -> 200 the keys, one per line (KEY may be empty)
 *     PUT (body)         -> 200 "ok"
 *     DELETE             -> 200 "deleted" | 404 "absent"
 *     POST ?incr=DELTA   -> 200 the new value
 *   a kv error answers "kv error N: TEXT" with 503 (unavailable), 507
 *   (full), 413 (too big), 403 (denied) or 400 (anything else).
 *   operation "bad" (payload names the case): pointers outside memory
 *     (oob-store, oob-key, oob-val, oob-buf, oob-keys-buf: the host traps
 *     the guest) and bad arguments (badutf8, bigkey, nulkey, emptykey,
 *     notnum, denied): answers "rc N". */
#define KEEL_IMPLEMENTATION
#include "keel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAR 0xfffffff0u   /* an address past any memory this guest has */

static void kv_error(int rc)
{
    char msg[96];
    int status = rc == KEEL_KV_EUNAVAIL ? 503 : rc == KEEL_KV_EFULL ? 507
               : rc == KEEL_KV_ETOOBIG ? 413 : rc == KEEL_KV_EDENIED ? 403 : 400;
    keel_set_status(status);
    snprintf(msg, sizeof msg, "kv error %d: %s\n", rc, keel_kv_strerror(rc));
    keel_respond_str(msg);
}

static void kv(const uint8_t *payload, size_t len)
{
    char method[16], uri[8192];
    if (keel_http_method(method, sizeof method) < 0 || keel_http_uri(uri, sizeof uri) < 0 ||
        strncmp(uri, "/kv/", 4)) {
        keel_fail("expected /kv/STORE/KEY");
        return;
    }
    char *store = uri + 4, *key = strchr(store, '/'), *query = strchr(store, '?');
    if (query)
        *query++ = 0;
    if (!key) {
        key = store + strlen(store);
    } else {
        *key++ = 0;
    }
    int rc;
    if (!strcmp(method, "GET") && query && !strncmp(query, "keys=", 5)) {
        char *keys;
        size_t n;
        if ((rc = keel_kv_keys(store, query + 5, &keys, &n)) < 0)
            return kv_error(rc);
        for (size_t i = 0; i < n; i++)
            if (!keys[i])
                keys[i] = '\n';
        keel_respond(keys, n);
        free(keys);
    } else if (!strcmp(method, "GET")) {
        uint8_t *v;
        size_t n;
        rc = keel_kv_get(store, key, &v, &n);
        if (rc == KEEL_KV_ABSENT) {
            keel_set_status(404);
            keel_respond_str("absent\n");
        } else if (rc < 0) {
            kv_error(rc);
        } else {
            keel_respond(v, n);
            free(v);
        }
    } else if (!strcmp(method, "PUT")) {
        if ((rc = keel_kv_set(store, key, payload, len)) < 0)
            return kv_error(rc);
        keel_respond_str("ok\n");
    } else if (!strcmp(method, "DELETE")) {
        rc = keel_kv_delete(store, key);
        if (rc == KEEL_KV_ABSENT) {
            keel_set_status(404);
            keel_respond_str("absent\n");
        } else if (rc < 0) {
            kv_error(rc);
        } else {
            keel_respond_str("deleted\n");
        }
    } else if (!strcmp(method, "POST") && query && !strncmp(query, "incr=", 5)) {
        int64_t v;
        if ((rc = keel_kv_incr(store, key, strtoll(query + 5, NULL, 10), &v)) < 0)
            return kv_error(rc);
        char out[32];
        snprintf(out, sizeof out, "%lld", (long long)v);
        keel_respond_str(out);
    } else {
        keel_set_status(405);
        keel_respond_str("use GET, PUT, DELETE or POST ?incr=N\n");
    }
}

static void bad(const uint8_t *payload, size_t len)
{
    char what[32], store[64] = "main";
    snprintf(what, sizeof what, "%.*s", (int)len, (const char *)payload);
    keel_config("store", store, sizeof store);
    size_t sl = strlen(store);
    char buf[16];
    long long rc = 0;
    static char big[5000];
    if (!strcmp(what, "oob-store"))
        rc = keel_raw_kv_get((const char *)FAR, 8, "k", 1, buf, sizeof buf);
    else if (!strcmp(what, "oob-key"))
        rc = keel_raw_kv_set(store, sl, (const void *)FAR, 64, "v", 1);
    else if (!strcmp(what, "oob-val"))
        rc = keel_raw_kv_set(store, sl, "oob", 3, (const void *)FAR, 1000);
    else if (!strcmp(what, "oob-buf"))
        rc = keel_raw_kv_get(store, sl, "k", 1, (void *)FAR, 1000);
    else if (!strcmp(what, "oob-keys-buf"))
        rc = keel_raw_kv_keys(store, sl, "", 0, (void *)FAR, 1000);
    else if (!strcmp(what, "oob-incr"))
        rc = keel_raw_kv_incr(store, sl, (const void *)FAR, 100, 1);
    else if (!strcmp(what, "badutf8"))
        rc = keel_raw_kv_set("\xff\xfe", 2, "k", 1, "v", 1);
    else if (!strcmp(what, "denied"))
        rc = keel_raw_kv_set("secret", 6, "k", 1, "v", 1);
    else if (!strcmp(what, "denied-incr"))
        rc = KEEL_KV_INCR_ERROR(keel_raw_kv_incr("secret", 6, "k", 1, 1));
    else if (!strcmp(what, "bigkey"))
        rc = (memset(big, 'k', sizeof big), keel_raw_kv_set(store, sl, big, sizeof big, "v", 1));
    else if (!strcmp(what, "nulkey"))
        rc = keel_raw_kv_set(store, sl, "a\0b", 3, "v", 1);
    else if (!strcmp(what, "emptykey"))
        rc = keel_raw_kv_set(store, sl, "", 0, "v", 1);
    else if (!strcmp(what, "notnum"))
        rc = (keel_raw_kv_set(store, sl, "word", 4, "abc", 3),
              KEEL_KV_INCR_ERROR(keel_raw_kv_incr(store, sl, "word", 4, 1)));
    else if (!strcmp(what, "range"))
        rc = (keel_raw_kv_set(store, sl, "max", 3, "9223372036854775807", 19),
              KEEL_KV_INCR_ERROR(keel_raw_kv_incr(store, sl, "max", 3, 1)));
    else if (!strcmp(what, "range-low"))
        rc = KEEL_KV_INCR_ERROR(keel_raw_kv_incr(store, sl, "low", 3, INT64_MIN + 10));
    else
        rc = 999;
    char out[32];
    snprintf(out, sizeof out, "rc %lld", rc);
    keel_respond_str(out);
}

KEEL_INIT
{
    keel_register("kv", kv);
    keel_register("bad", bad);
}
