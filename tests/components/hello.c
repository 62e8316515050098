/* hello.c — waPC reactor built on sdk/c/keel.h: a greeting, an echo, and
 * round trips through every keel host function (status, headers, request
 * metadata, config, log); "state" reports what an earlier request could
 * have left behind (a counter, a static buffer, the heap and memory grown
 * past the image) and then dirties all of it. */
#define KEEL_IMPLEMENTATION
#include "keel.h"

#include <stdio.h>
#include <string.h>

static void hello(const uint8_t *payload, size_t len)
{
    (void)payload; (void)len;
    keel_set_header("x-hello", "yes");
    keel_respond_str("hello from keel\n");
}

static void echo(const uint8_t *payload, size_t len)
{
    keel_respond(payload, len);
}

static void status(const uint8_t *payload, size_t len)
{
    (void)payload; (void)len;
    keel_set_status(201);
    keel_set_header("content-type", "text/plain");
    keel_respond_str("created\n");
}

static void meta(const uint8_t *payload, size_t len)
{
    (void)payload; (void)len;
    char method[16], uri[256], xt[64], cfg[64], small[2];
    int m = keel_http_method(method, sizeof method);
    int u = keel_http_uri(uri, sizeof uri);
    int x = keel_http_header("X-TEST", xt, sizeof xt);
    int missing = keel_http_header("x-missing", small, sizeof small);
    int c = keel_config("greeting", cfg, sizeof cfg);
    int nocfg = keel_config("nope", small, sizeof small);
    int short_uri = keel_http_uri(small, sizeof small);   /* too small: length only */
    char out[600];
    snprintf(out, sizeof out, "method=%s(%d) uri=%s(%d) x-test=%s(%d) missing=%d "
             "config=%s(%d) nocfg=%d short=%d",
             m >= 0 ? method : "-", m, u >= 0 ? uri : "-", u, x >= 0 ? xt : "-", x, missing,
             c >= 0 ? cfg : "-", c, nocfg, short_uri);
    keel_respond_str(out);
}

static void fail(const uint8_t *payload, size_t len)
{
    (void)payload; (void)len;
    keel_fail("secret failure detail 4711");
}

static void headers(const uint8_t *payload, size_t len)
{
    (void)payload; (void)len;
    char out[200];
    snprintf(out, sizeof out, "bad_name=%d bad_value=%d reserved=%d empty=%d ok=%d",
             keel_set_header("bad name", "v"), keel_set_header("x-v", "a\r\nb: c"),
             keel_set_header("Content-Length", "5"), keel_set_header("", "v"),
             keel_set_header("x-ok", "fine"));
    keel_respond_str(out);
}

static void logs(const uint8_t *payload, size_t len)
{
    (void)payload; (void)len;
    const char msg[] = "console line from hello";
    __console_log((const uint8_t *)msg, sizeof msg - 1);
    keel_logf(KEEL_WARN, "warn line %d from hello", 42);
    printf("stdout line from hello\n");
    fflush(stdout);
    keel_respond_str("logged\n");
}

static int counter = 7;           /* data segment */
static unsigned char stash[128 << 10];   /* zeroed (bss) */

static size_t count_not(const unsigned char *p, size_t n, unsigned char v)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += p[i] != v;
    return k;
}

static void state(const uint8_t *payload, size_t len)
{
    (void)payload; (void)len;
    /* 64 pages (4 MiB) grown past the image's memory every time */
    size_t big = 64u << 16;
    long at = __builtin_wasm_memory_grow(0, 64);
    unsigned char *grown = at < 0 ? NULL : (unsigned char *)((size_t)at << 16);
    char out[128];
    snprintf(out, sizeof out, "counter=%d stash=%zu grown=%zu\n", counter,
             count_not(stash, sizeof stash, 0),
             grown ? count_not(grown, big, 0) : (size_t)-1);
    counter++;
    memset(stash, 0xab, sizeof stash);
    if (grown)
        memset(grown, 0xcd, big);
    keel_respond_str(out);
}

KEEL_INIT
{
    keel_register("state", state);
    keel_register("hello", hello);
    keel_register("echo", echo);
    keel_register("status", status);
    keel_register("meta", meta);
    keel_register("fail", fail);
    keel_register("headers", headers);
    keel_register("log", logs);
}
