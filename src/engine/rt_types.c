/* rt_types.c — process-wide wasm-rt registries and exception state:
 * function types (wasm_rt_register_func_type), exception tags, the
 * per-thread active exception and unwind target, runtime init flags. */
#include "engine/rt_int.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct func_type {
    uint32_t nparams, nresults;
    wasm_rt_type_t *types;
} func_type;

static pthread_mutex_t types_lock = PTHREAD_MUTEX_INITIALIZER;
static func_type *types;
static uint32_t ntypes, cap_types;
static atomic_bool initialized;
static atomic_uint next_tag;

void wasm_rt_init(void)
{
    atomic_store(&initialized, true);
}

bool wasm_rt_is_initialized(void)
{
    return atomic_load(&initialized);
}

void wasm_rt_free(void)
{
}

uint32_t wasm_rt_register_func_type(uint32_t params, uint32_t results, ...)
{
    uint32_t n = params + results;
    wasm_rt_type_t *t = malloc((n ? n : 1) * sizeof *t);
    if (!t)
        abort();
    va_list ap;
    va_start(ap, results);
    for (uint32_t i = 0; i < n; i++)
        t[i] = (wasm_rt_type_t)va_arg(ap, int);
    va_end(ap);

    pthread_mutex_lock(&types_lock);
    for (uint32_t i = 0; i < ntypes; i++) {
        if (types[i].nparams == params && types[i].nresults == results &&
            memcmp(types[i].types, t, n * sizeof *t) == 0) {
            pthread_mutex_unlock(&types_lock);
            free(t);
            return i + 1;
        }
    }
    if (ntypes == cap_types) {
        uint32_t cap = cap_types ? cap_types * 2 : 64;
        func_type *nt = realloc(types, cap * sizeof *nt);
        if (!nt)
            abort();
        types = nt;
        cap_types = cap;
    }
    types[ntypes] = (func_type){ params, results, t };
    uint32_t id = ++ntypes;   /* 0 is never a valid type: null funcrefs */
    pthread_mutex_unlock(&types_lock);
    return id;
}

uint32_t wasm_rt_register_tag(uint32_t size)
{
    (void)size;
    return atomic_fetch_add(&next_tag, 1) + 1;
}

void wasm_rt_load_exception(uint32_t tag, uint32_t size, const void *values)
{
    if (size > sizeof rt_self.exc_data)
        keel_rt_trap(KEEL_TRAP_MEMORY_LIMIT);
    rt_self.exc_tag = tag;
    rt_self.exc_size = size;
    if (size)
        memcpy(rt_self.exc_data, values, size);
}

void wasm_rt_throw(void)
{
    if (!rt_self.exc_target)
        keel_rt_trap(KEEL_TRAP_UNCAUGHT_EXCEPTION);
    longjmp(*rt_self.exc_target, 1);
}

WASM_RT_UNWIND_TARGET *wasm_rt_get_unwind_target(void)
{
    return rt_self.exc_target;
}

void wasm_rt_set_unwind_target(WASM_RT_UNWIND_TARGET *target)
{
    rt_self.exc_target = target;
}

uint32_t wasm_rt_exception_tag(void)
{
    return rt_self.exc_tag;
}

uint32_t wasm_rt_exception_size(void)
{
    return rt_self.exc_size;
}

void *wasm_rt_exception(void)
{
    return rt_self.exc_data;
}
