/* access_line.c — what one access-log line costs the request thread:
 * keel_log_fields_queue (the JSON line formatted and pushed into the
 * thread's queue) for a hello request's fields, in nanoseconds a line
 * (mean over BENCH_LINES, default 2,000,000, after 100,000 warm-up
 * lines), three runs. The queue writer runs as in the server, writing
 * to /dev/null, so its CPU is beside the measured thread's, not in it.
 *
 * Build and run (from the repository root, after `make all`):
 *   cc -std=c17 -O2 -D_GNU_SOURCE -Isrc bench/obs/access_line.c build/libkeel.a \
 *      -lpthread -lm -o build/bench-access-line && build/bench-access-line
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "obs/log.h"

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int main(void)
{
    const char *env = getenv("BENCH_LINES");
    long lines = env ? atol(env) : 2000000;
    int null = open("/dev/null", O_WRONLY);
    if (null < 0 || dup2(null, 2) < 0 || lines <= 0)
        return 1;
    if (keel_log_queue_start() != 0)
        return 1;
    keel_log_ctx c = { .request_id = "a1c7d66258c473e9",
                       .trace_id = "2b70b4fc63c5db1250fcf8cc08e2a7ef",
                       .span_id = "c3be4d9088b27104" };
    keel_log_ctx_set(&c);
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    /* the server passes the time its request ended (no clock read here) */
    keel_log_fields f = { .status = 200, .duration_ns = 2000, .method = "GET",
                          .path = "/hello", .route = "/hello",
                          .wall_ns = (uint64_t)wall.tv_sec * 1000000000u + (uint64_t)wall.tv_nsec };
    for (long i = 0; i < 100000; i++)
        keel_log_fields_queue(KEEL_LOG_INFO, "hello", &f, "request");
    for (int run = 1; run <= 3; run++) {
        uint64_t t0 = now_ns();
        for (long i = 0; i < lines; i++)
            keel_log_fields_queue(KEEL_LOG_INFO, "hello", &f, "request");
        printf("run %d: %.1f ns per access line\n", run, (double)(now_ns() - t0) / (double)lines);
    }
    keel_log_queue_stop();
    return 0;
}
