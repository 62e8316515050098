/* kv.c — the "keel" kv_* host functions: a component's access to the
 * stores its manifest entry grants (kv: [...]). The contract is
 * docs/abi.md "Key-value stores":
 *
 *   kv_get(store, store_len, key, key_len, buf, cap) -> len | -1 | error
 *   kv_set(store, store_len, key, key_len, val, val_len) -> 0 | error
 *   kv_delete(store, store_len, key, key_len) -> 0 | -1 | error
 *   kv_keys(store, store_len, prefix, prefix_len, buf, cap) -> len | error
 *   kv_incr(store, store_len, key, key_len, delta i64) -> i64
 *
 * Errors are the negative KEEL_KV_* codes of store.h; kv_incr returns
 * INT64_MIN - code instead (INT64_MIN+2 is "denied"), values the counters
 * never take. Every pointer range is checked first: one outside guest
 * memory traps the guest, before anything reaches a store. */
#include "host/host_int.h"

#include <stdlib.h>
#include <string.h>

#include "obs/log.h"
#include "store/store.h"

#define HOST_FN(name) kv_##name
#define CTX void *ctx

static bool utf8_ok(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint8_t c = s[i];
        size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3
                   : (c & 0xf8) == 0xf0 ? 4 : 0;
        if (!len || i + len > n || (len == 2 && c < 0xc2) || (len == 4 && c > 0xf4))
            return false;
        for (size_t j = 1; j < len; j++)
            if ((s[i + j] & 0xc0) != 0x80)
                return false;
        if (len == 3 && ((c == 0xe0 && s[i + 1] < 0xa0) || (c == 0xed && s[i + 1] >= 0xa0)))
            return false;
        if (len == 4 && ((c == 0xf0 && s[i + 1] < 0x90) || (c == 0xf4 && s[i + 1] >= 0x90)))
            return false;
        i += len;
    }
    return true;
}

/* The granted store named by guest bytes (already range-checked), or a
 * KEEL_KV_* code: EINVAL for a name that is not UTF-8, EDENIED when the
 * component has no grant (logged). */
static int store_of(host_call *c, const uint8_t *name, uint32_t len, keel_store **out)
{
    if (!len || len > KEEL_MAX_NAME || !utf8_ok(name, len))
        return KEEL_KV_EINVAL;
    host_component *comp = c->comp;
    for (size_t i = 0; i < comp->nkv; i++) {
        const char *n = keel_store_cfg_of(comp->kv[i])->name;
        if (strlen(n) == len && !memcmp(n, name, len)) {
            *out = comp->kv[i];
            return 0;
        }
    }
    atomic_fetch_add_explicit(&comp->kv_denied, 1, memory_order_relaxed);
    keel_log(KEEL_LOG_WARN, comp->cfg->name, "request %s: kv access to store \"%.*s\" denied "
             "(not in the component's kv grants)", c->rq->id, (int)len, (const char *)name);
    return KEEL_KV_EDENIED;
}

static uint32_t HOST_FN(get)(CTX, uint32_t sp, uint32_t sl, uint32_t kp, uint32_t kl,
                             uint32_t buf, uint32_t cap)
{
    host_call *c = host_call_of(ctx);
    const uint8_t *s = host_guest_range(c, sp, sl);
    const uint8_t *k = host_guest_range(c, kp, kl);
    host_guest_range(c, buf, cap);
    keel_store *st;
    int rc = store_of(c, s, sl, &st);
    if (rc)
        return (uint32_t)rc;
    keel_kv_bytes v;
    uint64_t t0 = host_obs_store_begin(c);
    rc = keel_store_get(st, k, kl, &v);
    host_obs_store_end(c, t0, "get", st, rc ? rc : (int64_t)v.len);
    if (rc)
        return (uint32_t)rc;
    if (v.len <= cap)   /* the range may have moved: memory.grow cannot shrink it */
        memcpy(host_guest_range(c, buf, cap), v.data, v.len);
    free(v.data);
    return (uint32_t)v.len;   /* <= max_value <= 64 MiB */
}

static uint32_t HOST_FN(set)(CTX, uint32_t sp, uint32_t sl, uint32_t kp, uint32_t kl,
                             uint32_t vp, uint32_t vl)
{
    host_call *c = host_call_of(ctx);
    const uint8_t *s = host_guest_range(c, sp, sl);
    const uint8_t *k = host_guest_range(c, kp, kl);
    const uint8_t *v = host_guest_range(c, vp, vl);
    keel_store *st;
    int rc = store_of(c, s, sl, &st);
    if (!rc) {
        uint64_t t0 = host_obs_store_begin(c);
        rc = keel_store_set(st, k, kl, v, vl);
        host_obs_store_end(c, t0, "set", st, rc);
    }
    return (uint32_t)rc;
}

static uint32_t HOST_FN(delete)(CTX, uint32_t sp, uint32_t sl, uint32_t kp, uint32_t kl)
{
    host_call *c = host_call_of(ctx);
    const uint8_t *s = host_guest_range(c, sp, sl);
    const uint8_t *k = host_guest_range(c, kp, kl);
    keel_store *st;
    int rc = store_of(c, s, sl, &st);
    if (!rc) {
        uint64_t t0 = host_obs_store_begin(c);
        rc = keel_store_delete(st, k, kl);
        host_obs_store_end(c, t0, "delete", st, rc);
    }
    return (uint32_t)rc;
}

static uint32_t HOST_FN(keys)(CTX, uint32_t sp, uint32_t sl, uint32_t pp, uint32_t pl,
                              uint32_t buf, uint32_t cap)
{
    host_call *c = host_call_of(ctx);
    const uint8_t *s = host_guest_range(c, sp, sl);
    const uint8_t *p = host_guest_range(c, pp, pl);
    host_guest_range(c, buf, cap);
    keel_store *st;
    int rc = store_of(c, s, sl, &st);
    if (rc)
        return (uint32_t)rc;
    keel_kv_bytes v;
    uint64_t t0 = host_obs_store_begin(c);
    rc = keel_store_keys(st, p, pl, &v);
    host_obs_store_end(c, t0, "keys", st, rc);
    if (rc)
        return (uint32_t)rc;
    if (v.len <= cap && v.len)
        memcpy(host_guest_range(c, buf, cap), v.data, v.len);
    free(v.data);
    return (uint32_t)v.len;   /* <= 16 MiB */
}

static uint64_t HOST_FN(incr)(CTX, uint32_t sp, uint32_t sl, uint32_t kp, uint32_t kl,
                              uint64_t delta)
{
    host_call *c = host_call_of(ctx);
    const uint8_t *s = host_guest_range(c, sp, sl);
    const uint8_t *k = host_guest_range(c, kp, kl);
    keel_store *st;
    int64_t v = 0;
    int rc = store_of(c, s, sl, &st);
    if (!rc) {
        uint64_t t0 = host_obs_store_begin(c);
        rc = keel_store_incr(st, k, kl, (int64_t)delta, &v);
        host_obs_store_end(c, t0, "incr", st, rc);
    }
    if (rc)
        return (uint64_t)INT64_MIN - (uint64_t)(int64_t)rc;   /* INT64_MIN + |code| */
    return (uint64_t)v;
}

#define ENTRY(name, sig) { "keel", "kv_" #name, sig, (void (*)(void))HOST_FN(name) }
const keel_host_fn keel_host_kv_fns[] = {
    ENTRY(get, "iiiiii:i"),
    ENTRY(set, "iiiiii:i"),
    ENTRY(delete, "iiii:i"),
    ENTRY(keys, "iiiiii:i"),
    ENTRY(incr, "iiiiI:I"),
    { 0, 0, 0, 0 },
};
