/* store_int.h — private to src/store: a store is a configuration plus a
 * backend behind a function table (store_sqlite.c, store_redis.c);
 * stores.c validates arguments and dispatches. Backends see only checked
 * keys and values and return KEEL_KV_* codes. */
#ifndef KEEL_STORE_STORE_INT_H
#define KEEL_STORE_STORE_INT_H

#include "store/store.h"

typedef struct store_ops {
    /* Opens the backend for st->cfg into st->impl. */
    int (*open)(keel_store *st, char *err, size_t errlen);
    void (*close)(keel_store *st);
    bool (*ready)(keel_store *st, char *why, size_t len);
    int (*get)(keel_store *st, const void *key, size_t klen, keel_kv_bytes *out);
    int (*set)(keel_store *st, const void *key, size_t klen, const void *val, size_t vlen);
    int (*del)(keel_store *st, const void *key, size_t klen);
    int (*keys)(keel_store *st, const void *prefix, size_t plen, keel_kv_bytes *out);
    int (*incr)(keel_store *st, const void *key, size_t klen, int64_t delta, int64_t *out);
} store_ops;

struct keel_store {
    const keel_store_cfg *cfg;
    const store_ops *ops;
    void *impl;
};

extern const store_ops keel_store_sqlite_ops;
extern const store_ops keel_store_redis_ops;

/* Parses a decimal int64 of exactly len bytes ("-12"): 0 or -1. */
int store_parse_i64(const void *p, size_t len, int64_t *out);

/* Sorts n keys (pointers + lengths) bytewise and writes them, each followed
 * by a NUL, to out; KEEL_KV_ETOOBIG beyond KEEL_KV_MAX_KEYS_BYTES. */
typedef struct store_key {
    const uint8_t *p;
    size_t len;
} store_key;
int store_pack_keys(store_key *keys, size_t n, keel_kv_bytes *out);

#endif
