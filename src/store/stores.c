/* stores.c — the registry of a process's stores (opening every store a
 * manifest declares, finding one by name, readiness) and the checks every
 * operation goes through before it reaches a backend. */
#include "store/store_int.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/errors.h"
#include "config/residency.h"
#include "obs/log.h"

struct keel_stores {
    keel_store *v;
    size_t n;
};

int keel_stores_open(const keel_manifest *m, const char *only, keel_stores **out, char *err,
                     size_t errlen)
{
    *out = NULL;
    keel_stores *s = calloc(1, sizeof *s);
    if (!s || !(s->v = calloc(m->nstores ? m->nstores : 1, sizeof *s->v)))
        abort();
    for (size_t i = 0; i < m->nstores; i++) {
        const keel_store_cfg *cfg = &m->stores[i];
        if (only && strcmp(cfg->name, only))
            continue;
        int rc = keel_residency_store_region(m, cfg, err, errlen);
        if (rc) {
            keel_log(KEEL_LOG_ERROR, NULL, "residency denial: %s", err);
            keel_stores_close(s);
            return rc;
        }
        keel_store *st = &s->v[s->n];
        st->cfg = cfg;
        st->ops = cfg->backend == KEEL_STORE_SQLITE ? &keel_store_sqlite_ops
                                                    : &keel_store_redis_ops;
        char why[512];
        if (st->ops->open(st, why, sizeof why)) {
            keel_err(err, errlen, KEEL_EINVAL, "%s:%d:%d: store %s: %s", m->path,
                     cfg->pos.line, cfg->pos.col, cfg->name, why);
            keel_stores_close(s);
            return KEEL_EINVAL;
        }
        s->n++;
        keel_log(KEEL_LOG_INFO, NULL, "store %s: %s %s", cfg->name,
                 cfg->backend == KEEL_STORE_SQLITE ? "sqlite" : "redis",
                 cfg->backend == KEEL_STORE_SQLITE ? cfg->path : cfg->url);
    }
    *out = s;
    return 0;
}

void keel_stores_close(keel_stores *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        s->v[i].ops->close(&s->v[i]);
    free(s->v);
    free(s);
}

keel_store *keel_stores_find(const keel_stores *s, const char *name, size_t len)
{
    for (size_t i = 0; s && i < s->n; i++)
        if (strlen(s->v[i].cfg->name) == len && !memcmp(s->v[i].cfg->name, name, len))
            return &s->v[i];
    return NULL;
}

const keel_store_cfg *keel_store_cfg_of(const keel_store *st)
{
    return st->cfg;
}

bool keel_stores_ready(const keel_stores *s, char *why, size_t len)
{
    for (size_t i = 0; s && i < s->n; i++) {
        char w[256];
        if (!s->v[i].ops->ready(&s->v[i], w, sizeof w)) {
            snprintf(why, len, "store %s: %s", s->v[i].cfg->name, w);
            return false;
        }
    }
    if (len)
        why[0] = '\0';
    return true;
}

int keel_kv_key_check(const void *key, size_t klen)
{
    if (klen > KEEL_KV_MAX_KEY)
        return KEEL_KV_ETOOBIG;
    if (!klen || memchr(key, 0, klen))
        return KEEL_KV_EINVAL;
    return 0;
}

const char *keel_kv_strerror(int code)
{
    switch (code) {
    case 0: return "ok";
    case KEEL_KV_ABSENT: return "absent";
    case KEEL_KV_EDENIED: return "denied: store not granted";
    case KEEL_KV_ETOOBIG: return "too large";
    case KEEL_KV_EUNAVAIL: return "backend unavailable";
    case KEEL_KV_EINVAL: return "invalid argument";
    case KEEL_KV_EIO: return "storage error";
    case KEEL_KV_EFULL: return "storage full";
    case KEEL_KV_ENOTNUM: return "not an integer";
    case KEEL_KV_ERANGE: return "counter out of range";
    default: return "unknown error";
    }
}

int keel_store_get(keel_store *st, const void *key, size_t klen, keel_kv_bytes *out)
{
    *out = (keel_kv_bytes){ 0 };
    int rc = keel_kv_key_check(key, klen);
    return rc ? rc : st->ops->get(st, key, klen, out);
}

int keel_store_set(keel_store *st, const void *key, size_t klen, const void *val, size_t vlen)
{
    int rc = keel_kv_key_check(key, klen);
    if (rc)
        return rc;
    if (vlen > st->cfg->max_value)
        return KEEL_KV_ETOOBIG;
    return st->ops->set(st, key, klen, val, vlen);
}

int keel_store_delete(keel_store *st, const void *key, size_t klen)
{
    int rc = keel_kv_key_check(key, klen);
    return rc ? rc : st->ops->del(st, key, klen);
}

int keel_store_keys(keel_store *st, const void *prefix, size_t plen, keel_kv_bytes *out)
{
    *out = (keel_kv_bytes){ 0 };
    if (plen > KEEL_KV_MAX_KEY)
        return KEEL_KV_ETOOBIG;
    if (memchr(prefix, 0, plen))
        return KEEL_KV_EINVAL;
    return st->ops->keys(st, prefix, plen, out);
}

int keel_store_incr(keel_store *st, const void *key, size_t klen, int64_t delta, int64_t *out)
{
    int rc = keel_kv_key_check(key, klen);
    return rc ? rc : st->ops->incr(st, key, klen, delta, out);
}

/* ---- helpers the backends share ---- */

int store_parse_i64(const void *p, size_t len, int64_t *out)
{
    char buf[32];
    if (!len || len >= sizeof buf)
        return -1;
    memcpy(buf, p, len);
    buf[len] = '\0';
    if (!((buf[0] >= '0' && buf[0] <= '9') || (buf[0] == '-' && len > 1)))
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

static int cmp_key(const void *a, const void *b)
{
    const store_key *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->p, y->p, n);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

int store_pack_keys(store_key *keys, size_t n, keel_kv_bytes *out)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        total += keys[i].len + 1;
        if (total > KEEL_KV_MAX_KEYS_BYTES)
            return KEEL_KV_ETOOBIG;
    }
    if (n)
        qsort(keys, n, sizeof *keys, cmp_key);   /* keys may be NULL when n is 0 */
    out->data = malloc(total ? total : 1);
    if (!out->data)
        abort();
    out->len = total;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(out->data + k, keys[i].p, keys[i].len);
        k += keys[i].len;
        out->data[k++] = 0;
    }
    return 0;
}
