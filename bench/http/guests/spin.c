/* spin.c — a CPU-bound handler: operation "handle" busy-loops for
 * SPIN_MS (config "ms", default 50) milliseconds of wall time on the
 * monotonic clock (WASI clock_time_get), then answers "spun". The loop
 * does arithmetic between clock reads so it keeps a core busy. */
#define KEEL_IMPLEMENTATION
#include "keel.h"

#include <stdlib.h>
#include <time.h>

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void handle(const uint8_t *payload, size_t len)
{
    (void)payload; (void)len;
    char ms_s[16];
    long ms = 50;
    if (keel_config("ms", ms_s, sizeof ms_s) > 0)
        ms = strtol(ms_s, NULL, 10);
    uint64_t end = now_ns() + (uint64_t)ms * 1000000u;
    volatile uint32_t x = 1;
    while (now_ns() < end)
        for (int i = 0; i < 10000; i++)   /* ~10 us of work between reads */
            x = x * 1664525u + 1013904223u;
    keel_respond("spun", 4);
}

KEEL_INIT { keel_register("handle", handle); }
