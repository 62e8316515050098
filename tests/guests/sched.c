/* sched — sched_yield (libc and raw) always succeeds. */
#include <sched.h>
#include <stdio.h>
#include <wasi/api.h>

int main(void) {
    int fails = 0;
    for (int i = 0; i < 1000; i++) if (sched_yield() != 0) fails++;
    printf("sched_yield x1000: failures=%d\n", fails);
    printf("raw sched_yield: errno=%d\n", __wasi_sched_yield());
    return 0;
}
