/* obs_probe.c — waPC reactor for the operability tests: exports
 * keel_health() (unhealthy while the file /state/sick exists in its
 * `files` mount), answers, fails, traps, sleeps and logs on request.
 *   ok:    "ok"
 *   fail:  keel_fail
 *   trap:  unreachable
 *   slow:  busy-waits the number of milliseconds in the payload
 *   spam:  logs the number of lines in the payload (keel_logf), answers "spammed" */
#define KEEL_IMPLEMENTATION
#include "keel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

__attribute__((export_name("keel_health"))) int keel_health(void);
int keel_health(void)
{
    FILE *f = fopen("/state/sick", "r");
    if (f) {
        fclose(f);
        return 3;
    }
    return 0;
}

static void ok(const uint8_t *payload, size_t len)
{
    (void)payload; (void)len;
    keel_respond_str("ok\n");
}

static void fail(const uint8_t *payload, size_t len)
{
    (void)payload; (void)len;
    keel_fail("obs_probe asked to fail");
}

static void trap(const uint8_t *payload, size_t len)
{
    (void)payload; (void)len;
    __builtin_trap();
}

static int number(const uint8_t *payload, size_t len)
{
    char buf[16];
    size_t n = len < sizeof buf - 1 ? len : sizeof buf - 1;
    memcpy(buf, payload, n);
    buf[n] = 0;
    return atoi(buf);
}

static void slow(const uint8_t *payload, size_t len)
{
    int ms = number(payload, len);
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do
        clock_gettime(CLOCK_MONOTONIC, &t);
    while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < ms);
    keel_respond_str("slow\n");
}

static void spam(const uint8_t *payload, size_t len)
{
    int n = number(payload, len);
    for (int i = 0; i < n; i++)
        keel_logf(KEEL_INFO, "spam line %d", i);
    keel_respond_str("spammed\n");
}

KEEL_INIT
{
    keel_register("ok", ok);
    keel_register("fail", fail);
    keel_register("trap", trap);
    keel_register("slow", slow);
    keel_register("spam", spam);
}
