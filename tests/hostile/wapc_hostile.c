/* wapc_hostile — a waPC reactor that misbehaves on purpose, for
 * tests/integration/test_hostile_up.py. It implements __guest_call itself
 * (no KEEL_IMPLEMENTATION) so it can return what it likes. The operation
 * picks the misdeed; the payload is its argument:
 *
 *   ok               answers "ok"
 *   spin             loops forever (the deadline must stop it: 504)
 *   bomb             allocates 1 MiB blocks, touching each, until malloc
 *                    fails, then traps (memory limit: 500)
 *   stack            recursion that only uses wasm locals: exhausts the
 *                    native stack (500, "call stack exhausted")
 *   ping             calls config "peer" with "ping" again, forever (the
 *                    peer is this module too, calling back); each level
 *                    relays the answer or error text of the call below, so
 *                    the client reads the depth limit's error
 *   fanout N         calls peer "ok" N times (N = 0: without end); answers
 *                    "calls=N ok=M"
 *   logflood N       N keel.log lines of 8 KiB and N __console_log lines
 *   badptr FN        hands host function FN an out-of-range pointer
 *   ret N            answers "x", then returns N from __guest_call
 *   noresp           returns 1 without ever calling __guest_response
 *   resp_len LEN     __guest_response(valid pointer, LEN) (LEN in decimal)
 *   err_len LEN      __guest_error(valid pointer, LEN), returns 0
 *
 * Built as a reactor against sdk/c/keel.h's raw imports (Makefile: the
 * hostile rule adds -mexec-model=reactor -Isdk/c for wapc_*.c). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keel.h"

#define BAD ((void *)0xFFFFFFF0u)        /* 16 bytes below 4 GiB */
#define BAD_LEN 0x1000u

static char op[64];
static char arg[256];

static void respond(const char *s)
{
    __guest_response((const uint8_t *)s, strlen(s));
}

static size_t peer(char *out, size_t cap)
{
    int n = keel_raw_config_get("peer", 4, out, cap - 1);
    if (n < 0 || (size_t)n >= cap)
        n = 0;
    out[n] = 0;
    return (size_t)n;
}

/* One __host_call of the peer; on failure copies the error text to err. */
static int call_peer(const char *operation, const char *payload, char *err, size_t cap)
{
    char name[64];
    size_t nl = peer(name, sizeof name);
    int ok = __host_call((const uint8_t *)"keel", 4, (const uint8_t *)name, nl,
                         (const uint8_t *)operation, strlen(operation),
                         (const uint8_t *)payload, strlen(payload));
    if (!ok && err) {
        size_t n = __host_error_len();
        char *tmp = malloc(n + 1);
        if (tmp) {
            __host_error((uint8_t *)tmp);
            size_t k = n < cap - 1 ? n : cap - 1;
            memcpy(err, tmp, k);
            err[k] = 0;
            free(tmp);
        }
    }
    return ok;
}

static volatile int sink;

__attribute__((noinline)) static int deep(int n)
{
    if (sink == -12345)
        return n;
    int r = deep(n + 1);
    sink += r;
    return r + 1;
}

static void bomb(void)
{
    static void *volatile keep;
    for (;;) {
        void **p = malloc(1 << 20);
        if (!p)
            __builtin_trap();
        memset(p, 0x5A, 1 << 20);
        *p = keep;
        keep = p;
    }
}

static void fanout(long n)
{
    static char out[64];
    long calls = 0, ok = 0;
    while (n == 0 || calls < n) {
        calls++;
        ok += call_peer("ok", "", NULL, 0);
    }
    /* Only reached with n > 0. */
    snprintf(out, sizeof out, "calls=%ld ok=%ld", calls, ok);
    respond(out);
}

static void logflood(long n)
{
    static char line[8192];
    memset(line, 'L', sizeof line);
    for (long i = 0; i < n; i++) {
        keel_raw_log(1, line, sizeof line);
        __console_log((const uint8_t *)line, sizeof line);
    }
    respond("flooded");
}

/* Hands the host function named fn an out-of-range pointer. Returns 0
 * when fn is unknown (answered as an error by the caller). */
static int badptr(const char *fn)
{
    char small[16];
    if (!strcmp(fn, "http_method")) keel_raw_http_method(BAD, BAD_LEN);
    else if (!strcmp(fn, "http_uri")) keel_raw_http_uri(BAD, BAD_LEN);
    else if (!strcmp(fn, "http_header.name")) keel_raw_http_header(BAD, BAD_LEN, small, sizeof small);
    else if (!strcmp(fn, "http_header.buf")) keel_raw_http_header("host", 4, BAD, BAD_LEN);
    else if (!strcmp(fn, "http_set_header.name")) keel_raw_http_set_header(BAD, BAD_LEN, "v", 1);
    else if (!strcmp(fn, "http_set_header.value")) keel_raw_http_set_header("x-a", 3, BAD, BAD_LEN);
    else if (!strcmp(fn, "config_get.key")) keel_raw_config_get(BAD, BAD_LEN, small, sizeof small);
    else if (!strcmp(fn, "config_get.buf")) keel_raw_config_get("peer", 4, BAD, BAD_LEN);
    else if (!strcmp(fn, "log")) keel_raw_log(1, BAD, BAD_LEN);
    else if (!strcmp(fn, "kv_get.store")) keel_raw_kv_get(BAD, BAD_LEN, "k", 1, small, sizeof small);
    else if (!strcmp(fn, "kv_get.key")) keel_raw_kv_get("s", 1, BAD, BAD_LEN, small, sizeof small);
    else if (!strcmp(fn, "kv_get.buf")) keel_raw_kv_get("s", 1, "k", 1, BAD, BAD_LEN);
    else if (!strcmp(fn, "kv_set.key")) keel_raw_kv_set("s", 1, BAD, BAD_LEN, "v", 1);
    else if (!strcmp(fn, "kv_set.value")) keel_raw_kv_set("s", 1, "k", 1, BAD, BAD_LEN);
    else if (!strcmp(fn, "kv_delete.key")) keel_raw_kv_delete("s", 1, BAD, BAD_LEN);
    else if (!strcmp(fn, "kv_keys.prefix")) keel_raw_kv_keys("s", 1, BAD, BAD_LEN, small, sizeof small);
    else if (!strcmp(fn, "kv_keys.buf")) keel_raw_kv_keys("s", 1, "", 0, BAD, BAD_LEN);
    else if (!strcmp(fn, "kv_incr.key")) keel_raw_kv_incr("s", 1, BAD, BAD_LEN, 1);
    else if (!strcmp(fn, "__guest_request")) __guest_request(BAD, BAD);
    else if (!strcmp(fn, "__guest_response")) __guest_response(BAD, BAD_LEN);
    else if (!strcmp(fn, "__guest_error")) __guest_error(BAD, BAD_LEN);
    else if (!strcmp(fn, "__console_log")) __console_log(BAD, BAD_LEN);
    else if (!strcmp(fn, "__host_call.binding"))
        __host_call(BAD, BAD_LEN, (const uint8_t *)"p", 1, (const uint8_t *)"ok", 2, NULL, 0);
    else if (!strcmp(fn, "__host_call.namespace"))
        __host_call((const uint8_t *)"keel", 4, BAD, BAD_LEN, (const uint8_t *)"ok", 2, NULL, 0);
    else if (!strcmp(fn, "__host_call.operation"))
        __host_call((const uint8_t *)"keel", 4, (const uint8_t *)"p", 1, BAD, BAD_LEN, NULL, 0);
    else if (!strcmp(fn, "__host_call.payload"))
        __host_call((const uint8_t *)"keel", 4, (const uint8_t *)"p", 1,
                    (const uint8_t *)"ok", 2, BAD, BAD_LEN);
    else if (!strcmp(fn, "__host_response")) {
        if (!call_peer("ok", "", NULL, 0) || __host_response_len() == 0)
            return 0;
        __host_response(BAD);
    } else if (!strcmp(fn, "__host_error")) {
        if (call_peer("no-such-op", "", NULL, 0) || __host_error_len() == 0)
            return 0;
        __host_error(BAD);
    } else
        return 0;
    return 1;
}

__attribute__((export_name("__guest_call"))) int __guest_call(int op_len, int payload_len)
{
    if (op_len < 0 || (size_t)op_len >= sizeof op || payload_len < 0 ||
        (size_t)payload_len >= sizeof arg) {
        static char scratch_op[4096], scratch_arg[65536];
        if ((size_t)op_len > sizeof scratch_op || (size_t)payload_len > sizeof scratch_arg)
            return 0;
        __guest_request((uint8_t *)scratch_op, (uint8_t *)scratch_arg);
        return 0;
    }
    __guest_request((uint8_t *)op, (uint8_t *)arg);
    op[op_len] = 0;
    arg[payload_len] = 0;
    long n = strtol(arg, NULL, 10);

    if (!strcmp(op, "ok")) {
        respond("ok");
    } else if (!strcmp(op, "spin")) {
        volatile unsigned x = 0;
        for (;;)
            x++;
    } else if (!strcmp(op, "bomb")) {
        bomb();
    } else if (!strcmp(op, "stack")) {
        respond(deep(0) ? "returned" : "returned 0");
    } else if (!strcmp(op, "ping")) {
        static char err[512];
        if (call_peer("ping", arg, err, sizeof err)) {
            /* Relay what the level below answered. */
            size_t len = __host_response_len();
            char *resp = malloc(len + 1);
            if (!resp)
                __builtin_trap();
            __host_response((uint8_t *)resp);
            __guest_response((const uint8_t *)resp, len);
            free(resp);
        } else {
            respond(err);
        }
    } else if (!strcmp(op, "fanout")) {
        fanout(n);
    } else if (!strcmp(op, "logflood")) {
        logflood(n);
    } else if (!strcmp(op, "badptr")) {
        if (!badptr(arg)) {
            __guest_error((const uint8_t *)"unknown badptr target", 21);
            return 0;
        }
        respond("survived a bad pointer");     /* never: the call traps */
    } else if (!strcmp(op, "ret")) {
        respond("x");
        return (int)n;
    } else if (!strcmp(op, "noresp")) {
        return 1;
    } else if (!strcmp(op, "resp_len")) {
        __guest_response((const uint8_t *)op, (size_t)strtoul(arg, NULL, 10));
    } else if (!strcmp(op, "err_len")) {
        __guest_error((const uint8_t *)op, (size_t)strtoul(arg, NULL, 10));
        return 0;
    } else {
        __guest_error((const uint8_t *)"unknown operation", 17);
        return 0;
    }
    return 1;
}
