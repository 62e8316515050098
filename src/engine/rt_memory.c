/* rt_memory.c — linear memories and tables for wasm2c code.
 *
 * A memory is one reservation of RT_MEMORY_RESERVE_BYTES of PROT_NONE
 * address space, aligned to its size (so an address names its reservation,
 * module_int.h): the first `size` bytes are readable and writable, the
 * rest are guard pages, so any 32-bit address plus 32-bit offset the
 * generated code can form faults instead of reaching other memory (wasm2c's
 * WASM_RT_MEMCHECK_SIGNAL_HANDLER mode, no bounds checks in the code).
 * Growing makes more pages accessible. Freeing drops every page (the used
 * part is mapped over with fresh PROT_NONE anonymous memory) and keeps the
 * empty reservation in a process-wide pool of at most RT_POOL_MAX for the
 * next memory (a fresh instance, or one made from a copy-on-write image,
 * image.c); beyond that it is unmapped. Each memory's maximum is clamped to
 * the instance limit set with keel_rt_set_memory_limit_pages() when it was
 * created. */
#include "engine/rt_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "engine/module_int.h"

#define RT_PAGE_BYTES 65536u
/* 4 GiB of addresses + 4 GiB of offsets: every access wasm2c can form. */
#define RT_MEMORY_RESERVE_BYTES (1ull << RT_MEMORY_RESERVE_SHIFT)
/* Table elements a table may hold, whatever its declared maximum. */
#define RT_MAX_TABLE_ELEMS (10u * 1000u * 1000u)

/* Released reservations kept for reuse (2 TiB of address space at most). */
#define RT_POOL_MAX 256

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static void *pool[RT_POOL_MAX];
static size_t npool;
static atomic_int pool_off;   /* set when a reservation could not be cleaned */

void keel_rt_set_memory_limit_pages(uint32_t pages)
{
    rt_self.mem_limit_pages = pages;
}

void *rt_memory_reserve(void)
{
    void *base = NULL;
    pthread_mutex_lock(&pool_lock);
    if (npool)
        base = pool[--npool];
    pthread_mutex_unlock(&pool_lock);
    if (base)
        return base;
    /* Twice the size, then the aligned middle is kept. */
    unsigned char *raw = mmap(NULL, 2 * RT_MEMORY_RESERVE_BYTES, PROT_NONE,
                              MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (raw == MAP_FAILED)
        return NULL;
    uintptr_t at = ((uintptr_t)raw + RT_MEMORY_RESERVE_BYTES - 1) &
                   ~(uintptr_t)(RT_MEMORY_RESERVE_BYTES - 1);
    unsigned char *aligned = (unsigned char *)at;
    if (aligned > raw)
        munmap(raw, (size_t)(aligned - raw));
    unsigned char *end = raw + 2 * RT_MEMORY_RESERVE_BYTES;
    if (aligned + RT_MEMORY_RESERVE_BYTES < end)
        munmap(aligned + RT_MEMORY_RESERVE_BYTES,
               (size_t)(end - aligned - RT_MEMORY_RESERVE_BYTES));
    return aligned;
}

void rt_memory_release(void *base, uint64_t used)
{
    if (!base)
        return;
    if (used > RT_MEMORY_RESERVE_BYTES)
        used = RT_MEMORY_RESERVE_BYTES;
    /* One call replaces whatever the used part held (anonymous pages, a
     * private file mapping of an image) by inaccessible, unbacked memory
     * that merges back into the rest of the reservation. */
    if (used && mmap(base, used, PROT_NONE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0) != base) {
        munmap(base, RT_MEMORY_RESERVE_BYTES);
        return;
    }
    pthread_mutex_lock(&pool_lock);
    if (npool < RT_POOL_MAX && !atomic_load(&pool_off)) {
        pool[npool++] = base;
        base = NULL;
    }
    pthread_mutex_unlock(&pool_lock);
    if (base)
        munmap(base, RT_MEMORY_RESERVE_BYTES);
}

void wasm_rt_allocate_memory(wasm_rt_memory_t *mem, uint32_t initial_pages,
                             uint32_t max_pages)
{
    uint32_t limit = rt_self.mem_limit_pages;
    memset(mem, 0, sizeof *mem);
    if (limit && initial_pages > limit) {
        rt_self.mem_limit_hit = 1;
        keel_rt_trap(KEEL_TRAP_MEMORY_LIMIT);
    }
    void *base = rt_memory_reserve();
    if (!base)
        keel_rt_trap(KEEL_TRAP_MEMORY_LIMIT);
    uint64_t bytes = (uint64_t)initial_pages * RT_PAGE_BYTES;
    if (bytes && mprotect(base, bytes, PROT_READ | PROT_WRITE) != 0) {
        rt_memory_release(base, bytes);
        keel_rt_trap(KEEL_TRAP_MEMORY_LIMIT);
    }
    mem->data = base;
    mem->pages = initial_pages;
    mem->max_pages = max_pages;
    if (limit && mem->max_pages > limit)
        mem->max_pages = limit;
    mem->size = (uint32_t)bytes;   /* 65536 pages wraps to 0: see grow */
}

uint32_t wasm_rt_grow_memory(wasm_rt_memory_t *mem, uint32_t delta)
{
    uint32_t old = mem->pages;
    uint64_t new_pages = (uint64_t)old + delta;
    if (new_pages > 65536u || new_pages > mem->max_pages) {
        if (rt_self.mem_limit_pages && new_pages > rt_self.mem_limit_pages)
            rt_self.mem_limit_hit = 1;
        return UINT32_MAX;
    }
    if (delta == 0)
        return old;
    uint64_t old_bytes = (uint64_t)old * RT_PAGE_BYTES;
    uint64_t new_bytes = new_pages * RT_PAGE_BYTES;
    if (mprotect(mem->data + old_bytes, new_bytes - old_bytes,
                 PROT_READ | PROT_WRITE) != 0) {
        /* A failed mprotect may have changed part of the range: make it
         * inaccessible again, or stop pooling (a reused reservation must
         * have nothing accessible past its size). */
        if (mmap(mem->data + old_bytes, new_bytes - old_bytes, PROT_NONE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0) ==
            MAP_FAILED)
            atomic_store(&pool_off, 1);
        return UINT32_MAX;
    }
    mem->pages = (uint32_t)new_pages;
    /* wasm-rt.h's size is 32-bit: a full 4 GiB memory cannot be described.
     * Clamp to the largest representable size (last page minus one byte
     * stays accessible through the mapping but not through size checks). */
    mem->size = new_bytes > UINT32_MAX ? UINT32_MAX : (uint32_t)new_bytes;
    return old;
}

void wasm_rt_free_memory(wasm_rt_memory_t *mem)
{
    rt_memory_release(mem->data, (uint64_t)mem->pages * RT_PAGE_BYTES);
    memset(mem, 0, sizeof *mem);
}

static uint32_t clamp_table_max(uint32_t max)
{
    return max > RT_MAX_TABLE_ELEMS ? RT_MAX_TABLE_ELEMS : max;
}

/* Allocates elems zeroed slots of elem_size bytes (traps beyond the cap). */
static void *alloc_table(uint32_t elems, size_t elem_size)
{
    if (elems > RT_MAX_TABLE_ELEMS)
        keel_rt_trap(KEEL_TRAP_MEMORY_LIMIT);
    void *p = calloc(elems ? elems : 1, elem_size);
    if (!p)
        keel_rt_trap(KEEL_TRAP_MEMORY_LIMIT);
    return p;
}

void wasm_rt_allocate_funcref_table(wasm_rt_funcref_table_t *t, uint32_t elems,
                                    uint32_t max)
{
    memset(t, 0, sizeof *t);
    t->data = alloc_table(elems, sizeof *t->data);
    t->size = elems;
    t->max_size = max;
}

void wasm_rt_free_funcref_table(wasm_rt_funcref_table_t *t)
{
    free(t->data);
    memset(t, 0, sizeof *t);
}

void wasm_rt_allocate_externref_table(wasm_rt_externref_table_t *t,
                                      uint32_t elems, uint32_t max)
{
    memset(t, 0, sizeof *t);
    t->data = alloc_table(elems, sizeof *t->data);
    t->size = elems;
    t->max_size = max;
}

void wasm_rt_free_externref_table(wasm_rt_externref_table_t *t)
{
    free(t->data);
    memset(t, 0, sizeof *t);
}

/* Grows data (elem_size bytes each) from *size to *size + delta elements,
 * filling new slots from init. Returns the old size or UINT32_MAX. */
static uint32_t grow_table(void **data, uint32_t *size, uint32_t max,
                           uint32_t delta, const void *init, size_t elem_size)
{
    uint32_t old = *size;
    uint64_t n = (uint64_t)old + delta;
    if (n > max || n > clamp_table_max(UINT32_MAX))
        return UINT32_MAX;
    if (delta == 0)
        return old;
    unsigned char *p = realloc(*data, (size_t)n * elem_size);
    if (!p)
        return UINT32_MAX;
    for (uint64_t i = old; i < n; i++)
        memcpy(p + i * elem_size, init, elem_size);
    *data = p;
    *size = (uint32_t)n;
    return old;
}

uint32_t wasm_rt_grow_funcref_table(wasm_rt_funcref_table_t *t, uint32_t delta,
                                    wasm_rt_funcref_t init)
{
    void *d = t->data;
    uint32_t r = grow_table(&d, &t->size, t->max_size, delta, &init, sizeof init);
    t->data = d;
    return r;
}

uint32_t wasm_rt_grow_externref_table(wasm_rt_externref_table_t *t,
                                      uint32_t delta, wasm_rt_externref_t init)
{
    void *d = t->data;
    uint32_t r = grow_table(&d, &t->size, t->max_size, delta, &init, sizeof init);
    t->data = d;
    return r;
}
