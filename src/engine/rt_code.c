/* rt_code.c — the registry of executable guest code.
 *
 * Signal handlers ask "is this pc inside guest code?" to decide whether a
 * fault or a deadline signal may end the call there. Ranges live in a fixed
 * table of slots written under a mutex and read lock-free (atomics), so the
 * lookup is async-signal-safe. Each range may carry a sorted list of guest
 * function addresses and names, used to say where a trap happened. */
#include "engine/rt_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/errors.h"

/* Most code ranges registered at once (loaded modules). */
#define RT_MAX_CODE_RANGES 4096

typedef struct code_range {
    _Atomic uintptr_t start, end;
    const void *const *func_addrs;    /* sorted ascending */
    const char *const *func_names;
    size_t nfuncs;
} code_range;

static code_range ranges[RT_MAX_CODE_RANGES];
static pthread_mutex_t ranges_lock = PTHREAD_MUTEX_INITIALIZER;

int keel_rt_register_code(const void *start, const void *end, const char *name,
                          const void *const *func_addrs,
                          const char *const *func_names, size_t nfuncs)
{
    (void)name;
    pthread_mutex_lock(&ranges_lock);
    for (size_t i = 0; i < RT_MAX_CODE_RANGES; i++) {
        code_range *r = &ranges[i];
        if (atomic_load(&r->start) == 0) {
            r->func_addrs = func_addrs;
            r->func_names = func_names;
            r->nfuncs = nfuncs;
            atomic_store(&r->end, (uintptr_t)end);
            atomic_store(&r->start, (uintptr_t)start);
            pthread_mutex_unlock(&ranges_lock);
            return 0;
        }
    }
    pthread_mutex_unlock(&ranges_lock);
    return KEEL_ELIMIT;
}

void keel_rt_unregister_code(const void *start)
{
    pthread_mutex_lock(&ranges_lock);
    for (size_t i = 0; i < RT_MAX_CODE_RANGES; i++) {
        if (atomic_load(&ranges[i].start) == (uintptr_t)start) {
            atomic_store(&ranges[i].start, 0);
            atomic_store(&ranges[i].end, 0);
            break;
        }
    }
    pthread_mutex_unlock(&ranges_lock);
}

static const code_range *find_range(const void *pc)
{
    uintptr_t p = (uintptr_t)pc;
    for (size_t i = 0; i < RT_MAX_CODE_RANGES; i++) {
        uintptr_t s = atomic_load_explicit(&ranges[i].start, memory_order_acquire);
        if (s && p >= s && p < atomic_load_explicit(&ranges[i].end, memory_order_acquire))
            return &ranges[i];
    }
    return NULL;
}

int rt_code_contains(const void *pc)
{
    return find_range(pc) != NULL;
}

void rt_code_function_name(const void *pc, char *buf, size_t len)
{
    buf[0] = '\0';
    const code_range *r = find_range(pc);
    if (!r || !r->nfuncs)
        return;
    size_t lo = 0, hi = r->nfuncs;   /* last addr <= pc */
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if ((uintptr_t)r->func_addrs[mid] <= (uintptr_t)pc)
            lo = mid;
        else
            hi = mid;
    }
    if ((uintptr_t)r->func_addrs[lo] <= (uintptr_t)pc)
        snprintf(buf, len, "%s", r->func_names[lo]);
}
