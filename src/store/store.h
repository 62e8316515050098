/* store.h — Keel's key-value stores: the stores a manifest declares, opened
 * once per process, each behind one interface whatever its backend (SQLite
 * embedded, Redis shared). Every operation is safe from many threads at
 * once and either happens entirely or not at all.
 *
 * Errors: 0 (or a length) on success, else one of KEEL_KV_E* below — the
 * same numbers the guest sees (docs/abi.md), so the host layer passes them
 * through. Keys are 1 to KEEL_KV_MAX_KEY bytes without NUL; values at most
 * the store's max_value. Failures of the backend are logged here, once per
 * failing call, with the store's name. */
#ifndef KEEL_STORE_STORE_H
#define KEEL_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/manifest.h"

#define KEEL_KV_MAX_KEY 4096u              /* bytes of a key */
#define KEEL_KV_MAX_KEYS_BYTES (16u << 20) /* kv_keys output, NULs included */

enum {
    KEEL_KV_ABSENT = -1,    /* no such key */
    KEEL_KV_EDENIED = -2,   /* the component has no kv grant for this store */
    KEEL_KV_ETOOBIG = -3,   /* key, value or kv_keys result over its limit */
    KEEL_KV_EUNAVAIL = -4,  /* backend unavailable (Redis down, database locked) */
    KEEL_KV_EINVAL = -5,    /* empty key, NUL in a key, store name not UTF-8 */
    KEEL_KV_EIO = -6,       /* the backend failed to read or write (I/O, read-only) */
    KEEL_KV_EFULL = -7,     /* disk full or max_size reached */
    KEEL_KV_ENOTNUM = -8,   /* kv_incr on a value that is not a decimal integer */
    KEEL_KV_ERANGE = -9,    /* kv_incr result outside the counter range */
};

/* Counters live in [KEEL_KV_COUNTER_MIN, INT64_MAX]; kv_incr results
 * below are errors (docs/abi.md). */
#define KEEL_KV_COUNTER_MIN (INT64_MIN + 256)

typedef struct keel_stores keel_stores;
typedef struct keel_store keel_store;

/* Bytes returned by a store: data malloc'd (the caller frees it). */
typedef struct keel_kv_bytes {
    uint8_t *data;
    size_t len;
} keel_kv_bytes;

/* Opens every store of m (only the one called `only` when non-NULL),
 * refusing any store this instance's region may not hold (residency.h).
 * SQLite files (and their folders) are created when missing; a Redis that
 * is down is not an error here (calls fail with EUNAVAIL until it is
 * back; keel_stores_ready says why). m must outlive the result. On error
 * returns KEEL_EINVAL with "PATH:LINE:COL: store NAME: why" in err. */
int keel_stores_open(const keel_manifest *m, const char *only, keel_stores **out, char *err,
                     size_t errlen);
/* Closes every store; NULL is fine. No operation may be in flight. */
void keel_stores_close(keel_stores *s);

/* The store called name (not NUL-terminated), or NULL. */
keel_store *keel_stores_find(const keel_stores *s, const char *name, size_t len);
const keel_store_cfg *keel_store_cfg_of(const keel_store *st);

/* Whether every store answers now (SQLite: a query; Redis: PING). When one
 * does not, false with "store NAME: why" in why (for /readyz). */
bool keel_stores_ready(const keel_stores *s, char *why, size_t len);

/* The operations. key/value bytes are borrowed for the call. */
int keel_store_get(keel_store *st, const void *key, size_t klen, keel_kv_bytes *out);
int keel_store_set(keel_store *st, const void *key, size_t klen, const void *val,
                   size_t vlen);
int keel_store_delete(keel_store *st, const void *key, size_t klen);
/* Keys starting with prefix (may be empty), sorted bytewise, each followed
 * by a NUL byte, in *out. */
int keel_store_keys(keel_store *st, const void *prefix, size_t plen, keel_kv_bytes *out);
/* Adds delta to the decimal integer at key (absent: 0) atomically and puts
 * the new value in *out. */
int keel_store_incr(keel_store *st, const void *key, size_t klen, int64_t delta,
                    int64_t *out);

/* Checks a key (length, NUL): 0 or KEEL_KV_EINVAL / KEEL_KV_ETOOBIG. */
int keel_kv_key_check(const void *key, size_t klen);

/* One line naming a KEEL_KV_* code: "backend unavailable", ... */
const char *keel_kv_strerror(int code);

/* ---- backup and restore (SQLite stores; backup.c) ---- */

/* Writes an online, consistent snapshot of the SQLite store st to dest
 * (through a temporary file in dest's folder, renamed when complete) and
 * "HEX  NAME\n" (sha256sum format) to dest.sha256. Keel keeps serving
 * meanwhile. Fills *bytes and hex (65 bytes) when non-NULL. On error
 * returns a negative KEEL_E* with the reason in err and leaves no dest. */
int keel_store_backup(keel_store *st, const char *dest, uint64_t *bytes, char hex[65],
                      char *err, size_t errlen);

/* Restores the SQLite store cfg from src: verifies src against
 * src.sha256 and with PRAGMA integrity_check, refusing on any mismatch,
 * then replaces the store's contents in one transaction (a running Keel
 * sees the old data or the new, never a mix) or, when the store's file
 * does not exist, writes a temporary file and renames it into place. On
 * error nothing of the store has changed. */
int keel_store_restore(const keel_store_cfg *cfg, const char *src, char *err, size_t errlen);

#endif
