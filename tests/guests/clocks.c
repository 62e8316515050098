/* clocks — clock_res_get / clock_time_get sanity checks; prints only facts
 * that hold on any correct host (resolution > 0, monotonic never goes back,
 * realtime after 2020), never the values themselves. */
#include <errno.h>
#include <stdio.h>
#include <time.h>
#include <wasi/api.h>

int main(void) {
    int bad = 0;
    struct timespec r;
    int rc = clock_getres(CLOCK_MONOTONIC, &r);
    printf("clock_getres(MONOTONIC): rc=%d positive=%d\n", rc,
           r.tv_sec > 0 || r.tv_nsec > 0);
    rc = clock_getres(CLOCK_REALTIME, &r);
    printf("clock_getres(REALTIME): rc=%d positive=%d\n", rc,
           r.tv_sec > 0 || r.tv_nsec > 0);

    __wasi_timestamp_t res = 0;
    __wasi_errno_t e = __wasi_clock_res_get(__WASI_CLOCKID_MONOTONIC, &res);
    printf("raw clock_res_get(MONOTONIC): errno=%d positive=%d\n", e, res > 0);
    e = __wasi_clock_res_get(99, &res);
    printf("raw clock_res_get(99): errno=%d\n", e);
    __wasi_timestamp_t t;
    e = __wasi_clock_time_get(99, 1, &t);
    printf("raw clock_time_get(99): errno=%d\n", e);

    struct timespec now;
    rc = clock_gettime(CLOCK_REALTIME, &now);
    printf("clock_gettime(REALTIME): rc=%d after_2020=%d before_2200=%d\n", rc,
           now.tv_sec > 1577836800, now.tv_sec < 7258118400LL);
    time_t tt = time(NULL);
    printf("time(): close_to_realtime=%d\n",
           tt - now.tv_sec >= 0 && tt - now.tv_sec < 5);

    __wasi_timestamp_t prev = 0, cur = 0;
    e = __wasi_clock_time_get(__WASI_CLOCKID_MONOTONIC, 1, &prev);
    for (int i = 0; i < 10000; i++) {
        if (__wasi_clock_time_get(__WASI_CLOCKID_MONOTONIC, 1, &cur) != 0) bad++;
        if (cur < prev) bad++;
        prev = cur;
    }
    printf("monotonic: errno=%d went_backwards=%d\n", e, bad);

    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    volatile unsigned long sink = 0;
    for (unsigned long i = 0; i < 2000000; i++) sink += i;
    clock_gettime(CLOCK_MONOTONIC, &b);
    if (sink == 1) puts("unlikely");
    long long ns = (b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec);
    printf("monotonic advances: %d\n", ns >= 0);
    return 0;
}
