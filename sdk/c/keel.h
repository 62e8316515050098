/* keel.h — the Keel guest SDK for C (wasm32-wasi). Header-only: every file
 * may include it; exactly one translation unit defines KEEL_IMPLEMENTATION
 * before including it, which provides the waPC entry point __guest_call.
 * The ABI underneath is documented in docs/abi.md.
 *
 *     #define KEEL_IMPLEMENTATION
 *     #include "keel.h"
 *
 *     static void hello(const uint8_t *payload, size_t len)
 *     {
 *         keel_respond_str("hello\n");
 *     }
 *
 *     KEEL_INIT { keel_register("handle", hello); }
 *
 * Build as a WASI reactor (no main):
 *     clang --target=wasm32-wasi --sysroot=/usr -O2 -mexec-model=reactor \
 *           -Isdk/c app.c -o app.wasm
 * (A command with main() works too: Keel runs _start, then wapc_init.)
 *
 * Handlers run one at a time in a fresh instance per request: globals start
 * from their initial values on every request.
 *
 * Memory: keel_call's *out is malloc'd and the caller frees it. Strings the
 * SDK hands back are NUL-terminated. Nothing else allocates on your behalf. */
#ifndef KEEL_SDK_H
#define KEEL_SDK_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the raw imports (docs/abi.md); most code uses the wrappers below ---- */

#define KEEL_IMPORT_(mod, name) __attribute__((import_module(mod), import_name(name)))

KEEL_IMPORT_("wapc", "__guest_request") void __guest_request(uint8_t *op, uint8_t *payload);
KEEL_IMPORT_("wapc", "__guest_response") void __guest_response(const uint8_t *ptr, size_t len);
KEEL_IMPORT_("wapc", "__guest_error") void __guest_error(const uint8_t *ptr, size_t len);
KEEL_IMPORT_("wapc", "__host_call")
int __host_call(const uint8_t *bd, size_t bd_len, const uint8_t *ns, size_t ns_len,
                const uint8_t *op, size_t op_len, const uint8_t *ptr, size_t len);
KEEL_IMPORT_("wapc", "__host_response_len") size_t __host_response_len(void);
KEEL_IMPORT_("wapc", "__host_response") void __host_response(uint8_t *ptr);
KEEL_IMPORT_("wapc", "__host_error_len") size_t __host_error_len(void);
KEEL_IMPORT_("wapc", "__host_error") void __host_error(uint8_t *ptr);
KEEL_IMPORT_("wapc", "__console_log") void __console_log(const uint8_t *ptr, size_t len);

KEEL_IMPORT_("keel", "http_method") int keel_raw_http_method(char *buf, size_t cap);
KEEL_IMPORT_("keel", "http_uri") int keel_raw_http_uri(char *buf, size_t cap);
KEEL_IMPORT_("keel", "http_header")
int keel_raw_http_header(const char *name, size_t name_len, char *buf, size_t cap);
KEEL_IMPORT_("keel", "http_set_status") void keel_raw_http_set_status(int code);
KEEL_IMPORT_("keel", "http_set_header")
int keel_raw_http_set_header(const char *name, size_t name_len, const char *value,
                             size_t value_len);
KEEL_IMPORT_("keel", "config_get")
int keel_raw_config_get(const char *key, size_t key_len, char *buf, size_t cap);
KEEL_IMPORT_("keel", "log") void keel_raw_log(int level, const char *ptr, size_t len);
KEEL_IMPORT_("keel", "kv_get")
int keel_raw_kv_get(const char *store, size_t store_len, const void *key, size_t key_len,
                    void *buf, size_t cap);
KEEL_IMPORT_("keel", "kv_set")
int keel_raw_kv_set(const char *store, size_t store_len, const void *key, size_t key_len,
                    const void *val, size_t val_len);
KEEL_IMPORT_("keel", "kv_delete")
int keel_raw_kv_delete(const char *store, size_t store_len, const void *key, size_t key_len);
KEEL_IMPORT_("keel", "kv_keys")
int keel_raw_kv_keys(const char *store, size_t store_len, const void *prefix,
                     size_t prefix_len, void *buf, size_t cap);
KEEL_IMPORT_("keel", "kv_incr")
int64_t keel_raw_kv_incr(const char *store, size_t store_len, const void *key,
                         size_t key_len, int64_t delta);

/* ---- operations ---- */

/* At most this many operations per component. */
#define KEEL_MAX_OPERATIONS 64

/* A handler gets the request payload (the HTTP body, or the caller's
 * payload for a component call) and answers with keel_respond* or
 * keel_fail. Answering neither is an empty 200 response. */
typedef void (*keel_handler)(const uint8_t *payload, size_t len);

/* Defines the component's initializer (the waPC wapc_init export); register
 * operations in it: KEEL_INIT { keel_register("op", fn); } */
#define KEEL_INIT                                                              \
    __attribute__((export_name("wapc_init"))) void wapc_init(void)

/* Registers fn for operation op (op must stay valid: a literal). Returns 0,
 * or -1 when the table is full. Registering an op again replaces it. */
int keel_register(const char *op, keel_handler fn);

/* The response body (copied by the host). The last call wins. */
void keel_respond(const void *data, size_t len);
void keel_respond_str(const char *s);
/* Fails the operation: the HTTP client gets a 500 naming the request id,
 * and msg goes to Keel's log (or to the calling component's error). */
void keel_fail(const char *msg);

/* ---- calling another component (waPC __host_call, binding "keel") ---- */

/* Calls operation op of component `component` (listed under `calls:` in
 * keel.yaml) with payload. Returns 0 with the response in *out and *out_len, or
 * -1 with the error text in *out and *out_len. *out is malloc'd and
 * NUL-terminated (the caller frees it), or NULL when out of memory. */
int keel_call(const char *component, const char *op, const void *payload, size_t len,
              uint8_t **out, size_t *out_len);

/* ---- the HTTP request (all -1 inside a nested component call) ---- */

/* Each copies a NUL-terminated value into buf when it fits (len < cap) and
 * returns its length, or -1 when absent. */
int keel_http_method(char *buf, size_t cap);
int keel_http_uri(char *buf, size_t cap);        /* path plus "?query" */
int keel_http_header(const char *name, char *buf, size_t cap);  /* case-insensitive */

/* The response's status (100-599) and headers; ignored inside a nested
 * call. keel_set_header returns 0, or -1 for an invalid name or value or a
 * header Keel controls (Content-Length, Transfer-Encoding, Connection). */
void keel_set_status(int code);
int keel_set_header(const char *name, const char *value);

/* The component's config value for key (keel.yaml `config:`), as above. */
int keel_config(const char *key, char *buf, size_t cap);

/* ---- key-value stores (keel.yaml stores:, granted by the component's kv:) ---- */

/* Results: 0 or a length on success, KEEL_KV_ABSENT for a missing key, or
 * a negative error (docs/abi.md). A failed write changes nothing. */
enum {
    KEEL_KV_ABSENT = -1,    /* no such key */
    KEEL_KV_EDENIED = -2,   /* the store is not in this component's kv: grants */
    KEEL_KV_ETOOBIG = -3,   /* key over 4096 bytes, value over max_value, keys over 16 MiB */
    KEEL_KV_EUNAVAIL = -4,  /* backend unavailable (Redis down, database locked) */
    KEEL_KV_EINVAL = -5,    /* empty key, NUL in a key, store name not UTF-8 */
    KEEL_KV_EIO = -6,       /* the backend failed to read or write */
    KEEL_KV_EFULL = -7,     /* disk full or the store's max_size reached */
    KEEL_KV_ENOTNUM = -8,   /* kv_incr: the value is not a decimal integer */
    KEEL_KV_ERANGE = -9,    /* kv_incr: the result would leave the counter range */
};

/* Counters hold [KEEL_KV_COUNTER_MIN, INT64_MAX]; a raw kv_incr result
 * below KEEL_KV_COUNTER_MIN is an error, INT64_MIN - code:
 * KEEL_KV_INCR_ERROR(r) gives that (negative) code, 0 for a value. */
#define KEEL_KV_COUNTER_MIN (INT64_MIN + 256)
static inline int keel_kv_incr_error_(int64_t r)
{
    return r < KEEL_KV_COUNTER_MIN ? (int)(INT64_MIN - r) : 0;
}
#define KEEL_KV_INCR_ERROR(r) keel_kv_incr_error_(r)

/* The value of key in *out (malloc'd, NUL-terminated for convenience; the
 * caller frees it) and its length in *len. 0, KEEL_KV_ABSENT or an error
 * (*out is then NULL). */
int keel_kv_get(const char *store, const char *key, uint8_t **out, size_t *len);
/* Sets key to [val, val+len): 0 or an error. Durable when it returns 0. */
int keel_kv_set(const char *store, const char *key, const void *val, size_t len);
/* 0, KEEL_KV_ABSENT or an error. */
int keel_kv_delete(const char *store, const char *key);
/* The keys starting with prefix, sorted bytewise, each followed by a NUL,
 * in *out (malloc'd; the caller frees it) and the total in *len. */
int keel_kv_keys(const char *store, const char *prefix, char **out, size_t *len);
/* Adds delta to the counter at key (absent counts as 0) atomically, and
 * returns 0 with the new value in *value, or an error. */
int keel_kv_incr(const char *store, const char *key, int64_t delta, int64_t *value);
/* "backend unavailable", ... for a result above. */
const char *keel_kv_strerror(int rc);

/* ---- log ---- */
enum { KEEL_DEBUG = 0, KEEL_INFO = 1, KEEL_WARN = 2, KEEL_ERROR = 3 };
void keel_log(int level, const char *msg);
void keel_logf(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#ifdef __cplusplus
}
#endif

/* ======================================================================== */
#ifdef KEEL_IMPLEMENTATION

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct {
    const char *op;
    keel_handler fn;
} keel_ops_[KEEL_MAX_OPERATIONS];
static int keel_nops_;
static int keel_failed_;

int keel_register(const char *op, keel_handler fn)
{
    for (int i = 0; i < keel_nops_; i++)
        if (strcmp(keel_ops_[i].op, op) == 0) {
            keel_ops_[i].fn = fn;
            return 0;
        }
    if (keel_nops_ == KEEL_MAX_OPERATIONS)
        return -1;
    keel_ops_[keel_nops_].op = op;
    keel_ops_[keel_nops_].fn = fn;
    keel_nops_++;
    return 0;
}

void keel_respond(const void *data, size_t len)
{
    __guest_response((const uint8_t *)data, len);
}

void keel_respond_str(const char *s)
{
    keel_respond(s, strlen(s));
}

void keel_fail(const char *msg)
{
    keel_failed_ = 1;
    __guest_error((const uint8_t *)msg, strlen(msg));
}

__attribute__((export_name("__guest_call"))) int __guest_call(int op_len, int payload_len)
{
    uint8_t *buf = (uint8_t *)malloc((size_t)op_len + (size_t)payload_len + 2);
    if (!buf) {
        keel_fail("out of memory reading the request");
        return 0;
    }
    uint8_t *op = buf, *payload = buf + op_len + 1;
    __guest_request(op, payload);
    op[op_len] = 0;
    payload[payload_len] = 0;
    keel_failed_ = 0;
    keel_handler fn = NULL;
    for (int i = 0; i < keel_nops_ && !fn; i++)
        if (strlen(keel_ops_[i].op) == (size_t)op_len &&
            memcmp(keel_ops_[i].op, op, (size_t)op_len) == 0)
            fn = keel_ops_[i].fn;
    if (fn) {
        fn(payload, (size_t)payload_len);
    } else {
        char msg[160];
        snprintf(msg, sizeof msg, "unknown operation \"%.100s\"", (const char *)op);
        keel_fail(msg);
    }
    free(buf);
    return keel_failed_ ? 0 : 1;
}

int keel_call(const char *component, const char *op, const void *payload, size_t len,
              uint8_t **out, size_t *out_len)
{
    int ok = __host_call((const uint8_t *)"keel", 4, (const uint8_t *)component,
                         strlen(component), (const uint8_t *)op, strlen(op),
                         (const uint8_t *)payload, len);
    size_t n = ok ? __host_response_len() : __host_error_len();
    uint8_t *buf = (uint8_t *)malloc(n + 1);
    *out = buf;
    *out_len = buf ? n : 0;
    if (buf) {
        if (ok)
            __host_response(buf);
        else
            __host_error(buf);
        buf[n] = 0;
    }
    return ok ? 0 : -1;
}

/* Turns a raw "(buf, cap) -> len" call into a NUL-terminated copy. */
static int keel_terminate_(int len, char *buf, size_t cap)
{
    if (len >= 0 && (size_t)len < cap)
        buf[len] = 0;
    return len;
}

int keel_http_method(char *buf, size_t cap)
{
    return keel_terminate_(keel_raw_http_method(buf, cap ? cap - 1 : 0), buf, cap);
}

int keel_http_uri(char *buf, size_t cap)
{
    return keel_terminate_(keel_raw_http_uri(buf, cap ? cap - 1 : 0), buf, cap);
}

int keel_http_header(const char *name, char *buf, size_t cap)
{
    return keel_terminate_(keel_raw_http_header(name, strlen(name), buf, cap ? cap - 1 : 0),
                           buf, cap);
}

void keel_set_status(int code)
{
    keel_raw_http_set_status(code);
}

int keel_set_header(const char *name, const char *value)
{
    return keel_raw_http_set_header(name, strlen(name), value, strlen(value));
}

int keel_config(const char *key, char *buf, size_t cap)
{
    return keel_terminate_(keel_raw_config_get(key, strlen(key), buf, cap ? cap - 1 : 0),
                           buf, cap);
}

void keel_log(int level, const char *msg)
{
    keel_raw_log(level, msg, strlen(msg));
}

void keel_logf(int level, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    keel_raw_log(level, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

int keel_kv_get(const char *store, const char *key, uint8_t **out, size_t *len)
{
    size_t sl = strlen(store), kl = strlen(key), cap = 256;
    *out = NULL;
    *len = 0;
    for (;;) {   /* the value may change between two calls: retry until it fits */
        uint8_t *buf = (uint8_t *)malloc(cap + 1);
        if (!buf)
            return KEEL_KV_ETOOBIG;
        int n = keel_raw_kv_get(store, sl, key, kl, buf, cap);
        if (n < 0) {
            free(buf);
            return n;
        }
        if ((size_t)n <= cap) {
            buf[n] = 0;
            *out = buf;
            *len = (size_t)n;
            return 0;
        }
        free(buf);
        cap = (size_t)n;
    }
}

int keel_kv_set(const char *store, const char *key, const void *val, size_t len)
{
    return keel_raw_kv_set(store, strlen(store), key, strlen(key), val, len);
}

int keel_kv_delete(const char *store, const char *key)
{
    return keel_raw_kv_delete(store, strlen(store), key, strlen(key));
}

int keel_kv_keys(const char *store, const char *prefix, char **out, size_t *len)
{
    size_t sl = strlen(store), pl = strlen(prefix), cap = 1024;
    *out = NULL;
    *len = 0;
    for (;;) {
        char *buf = (char *)malloc(cap + 1);
        if (!buf)
            return KEEL_KV_ETOOBIG;
        int n = keel_raw_kv_keys(store, sl, prefix, pl, buf, cap);
        if (n < 0) {
            free(buf);
            return n;
        }
        if ((size_t)n <= cap) {
            buf[n] = 0;
            *out = buf;
            *len = (size_t)n;
            return 0;
        }
        free(buf);
        cap = (size_t)n;
    }
}

int keel_kv_incr(const char *store, const char *key, int64_t delta, int64_t *value)
{
    int64_t r = keel_raw_kv_incr(store, strlen(store), key, strlen(key), delta);
    int err = KEEL_KV_INCR_ERROR(r);
    if (!err)
        *value = r;
    return err;
}

const char *keel_kv_strerror(int rc)
{
    switch (rc) {
    case KEEL_KV_ABSENT: return "absent";
    case KEEL_KV_EDENIED: return "denied: store not granted";
    case KEEL_KV_ETOOBIG: return "too large";
    case KEEL_KV_EUNAVAIL: return "backend unavailable";
    case KEEL_KV_EINVAL: return "invalid argument";
    case KEEL_KV_EIO: return "storage error";
    case KEEL_KV_EFULL: return "storage full";
    case KEEL_KV_ENOTNUM: return "not an integer";
    case KEEL_KV_ERANGE: return "counter out of range";
    default: return rc >= 0 ? "ok" : "unknown error";
    }
}

#endif /* KEEL_IMPLEMENTATION */
#endif /* KEEL_SDK_H */
