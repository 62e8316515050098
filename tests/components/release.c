/* release.c — one component in several releases, for the deploy, canary
 * and rollback tests: built as release.wasm (release 1), and by the
 * Makefile as release_v2.wasm (-DRELEASE=2: a good new release) and
 * release_bad.wasm (-DRELEASE_BROKEN: every request fails) and
 * release_slow.wasm (-DRELEASE_SLOW_MS=40: each answer takes 40 ms). "version"
 * answers "release N"; "slow" waits the milliseconds in its payload, so
 * a test can keep requests in flight across a swap. */
#define KEEL_IMPLEMENTATION
#include "keel.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#ifndef RELEASE
#define RELEASE 1
#endif

static void version(const uint8_t *payload, size_t len)
{
    (void)payload; (void)len;
#ifdef RELEASE_SLOW_MS
    struct timespec pause = { 0, RELEASE_SLOW_MS * 1000000L };
    nanosleep(&pause, NULL);
#endif
#ifdef RELEASE_BROKEN
    keel_fail("release is broken on purpose");
#else
    char out[32];
    snprintf(out, sizeof out, "release %d\n", RELEASE);
    keel_respond_str(out);
#endif
}

static void slow(const uint8_t *payload, size_t len)
{
    char ms[16] = "0";
    if (len < sizeof ms) {
        for (size_t i = 0; i < len; i++)
            ms[i] = (char)payload[i];
        ms[len] = '\0';
    }
    long n = strtol(ms, NULL, 10);
    struct timespec ts = { n / 1000, (n % 1000) * 1000000L };
    nanosleep(&ts, NULL);
    version(payload, 0);
}

KEEL_INIT
{
    keel_register("version", version);
    keel_register("slow", slow);
}
