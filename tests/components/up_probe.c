/* up_probe.c — waPC reactor for the `keel up` integration tests
 * (tests/integration/test_up*.py).
 *   echo:    answers the body; status from request header X-Status, header
 *            X-Echo copied to X-Echo-Back, plus X-Method, X-Uri, X-Body-Len.
 *   sleep:   sleeps X-Sleep-Ms milliseconds (poll_oneoff), answers "slept".
 *   pages:   memory.grow one page at a time until refused; "pages=N".
 *   bomb:    mallocs and touches 1 MiB blocks until malloc fails, then traps.
 *   depth:   payload n (decimal): calls config "peer" op depth with n+1 and
 *            answers its answer, or "n:error text" when the call fails.
 *   binding: __host_call with binding "nokeel"; answers the error text.
 *   big:     answers payload (decimal) bytes of 'b'.
 *   trap:    unreachable. spin: loops forever.
 *   env:     answers "NAME=value" for config key NAME given as payload. */
#define KEEL_IMPLEMENTATION
#include "keel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void echo(const uint8_t *payload, size_t len)
{
    char v[256], m[16], u[512], n[32];
    if (keel_http_header("x-status", v, sizeof v) >= 0)
        keel_set_status(atoi(v));
    if (keel_http_header("x-echo", v, sizeof v) >= 0)
        keel_set_header("X-Echo-Back", v);
    if (keel_http_method(m, sizeof m) >= 0)
        keel_set_header("X-Method", m);
    if (keel_http_uri(u, sizeof u) >= 0)
        keel_set_header("X-Uri", u);
    snprintf(n, sizeof n, "%zu", len);
    keel_set_header("X-Body-Len", n);
    keel_respond(payload, len);
}

static void sleep_op(const uint8_t *payload, size_t len)
{
    (void)payload; (void)len;
    char v[32];
    long ms = keel_http_header("x-sleep-ms", v, sizeof v) >= 0 ? atol(v) : 100;
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
    keel_respond_str("slept");
}

static void pages(const uint8_t *payload, size_t len)
{
    (void)payload; (void)len;
    while (__builtin_wasm_memory_grow(0, 1) != (size_t)-1)
        ;
    char out[64];
    snprintf(out, sizeof out, "pages=%zu", __builtin_wasm_memory_size(0));
    keel_respond_str(out);
}

void *volatile up_probe_keep;   /* so the compiler cannot drop the mallocs */

static void bomb(const uint8_t *payload, size_t len)
{
    (void)payload; (void)len;
    for (;;) {
        char *p = malloc(1 << 20);
        if (!p)
            __builtin_trap();
        memset(p, 0xAB, 1 << 20);
        up_probe_keep = p;
    }
}

static void depth(const uint8_t *payload, size_t len)
{
    char peer[64], next[32];
    int n = atoi(len ? (const char *)payload : "0");
    if (keel_config("peer", peer, sizeof peer) < 0) {
        keel_fail("no config peer");
        return;
    }
    snprintf(next, sizeof next, "%d", n + 1);
    uint8_t *out;
    size_t outlen;
    if (keel_call(peer, "depth", next, strlen(next), &out, &outlen) == 0) {
        keel_respond(out, outlen);
    } else {
        char *msg = malloc(outlen + 32);
        int k = snprintf(msg, 32, "%d:", n);
        memcpy(msg + k, out, outlen);
        keel_respond(msg, (size_t)k + outlen);
        free(msg);
    }
    free(out);
}

static void binding(const uint8_t *payload, size_t len)
{
    (void)payload; (void)len;
    int ok = __host_call((const uint8_t *)"nokeel", 6, (const uint8_t *)"x", 1,
                         (const uint8_t *)"echo", 4, (const uint8_t *)"", 0);
    size_t n = __host_error_len();
    char *buf = malloc(n + 16);
    int k = snprintf(buf, 16, "%d:", ok);
    __host_error((uint8_t *)buf + k);
    keel_respond(buf, (size_t)k + n);
    free(buf);
}

static void big(const uint8_t *payload, size_t len)
{
    size_t n = (size_t)atol(len ? (const char *)payload : "0");
    char *b = malloc(n ? n : 1);
    if (!b) {
        keel_fail("no memory for big");
        return;
    }
    memset(b, 'b', n);
    keel_respond(b, n);
    free(b);
}

static void trap(const uint8_t *payload, size_t len)
{
    (void)payload; (void)len;
    __builtin_trap();
}

static void spin(const uint8_t *payload, size_t len)
{
    (void)payload; (void)len;
    volatile unsigned n = 0;
    for (;;)
        n++;
}

static void env(const uint8_t *payload, size_t len)
{
    char key[128], val[256], out[400];
    snprintf(key, sizeof key, "%.*s", (int)len, (const char *)payload);
    int n = keel_config(key, val, sizeof val);
    snprintf(out, sizeof out, "%s=%s", key, n >= 0 ? val : "(absent)");
    keel_respond_str(out);
}

KEEL_INIT
{
    keel_register("echo", echo);
    keel_register("sleep", sleep_op);
    keel_register("pages", pages);
    keel_register("bomb", bomb);
    keel_register("depth", depth);
    keel_register("binding", binding);
    keel_register("big", big);
    keel_register("trap", trap);
    keel_register("spin", spin);
    keel_register("env", env);
}
