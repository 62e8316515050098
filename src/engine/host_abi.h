/* host_abi.h — the contract between compiled guest code and host functions.
 *
 * wasm2c turns an import (module "M", field "F") into a call of the C symbol
 * Z_<M>Z_<F>(struct Z_<M>_instance_t *ctx, args...). Keel passes the same
 * keel_host_ctx pointer for every host module a guest imports, so a host
 * function casts its first argument with KEEL_HOST_CTX() and reaches guest
 * memory and the per-instance state of each host module through it.
 *
 * Host functions are defined in the keel binary with default visibility
 * (KEEL_HOST_EXPORT) so the optimized tier's shared objects bind to them at
 * dlopen time; each provider also lists them in a keel_host_fn table so the
 * engine can check a module's imports (name and signature) before anything
 * runs, and hand the addresses to the fast tier (libtcc).
 *
 * Rules for host functions:
 *  - every guest pointer/length pair is checked with keel_guest_ptr() (or
 *    keel_guest_range_ok) before use; an out-of-range pair is an error code
 *    for the guest (WASI: EFAULT), never a fault in the host;
 *  - a host function may end the guest call only at a point where it holds
 *    no resources: keel_rt_exit() (proc_exit) or keel_rt_check_deadline();
 *  - host functions are never interrupted by the deadline watchdog: it only
 *    stops code running inside guest code ranges (see rt.h).
 */
#ifndef KEEL_ENGINE_HOST_ABI_H
#define KEEL_ENGINE_HOST_ABI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <wasm-rt.h>

#define KEEL_HOST_EXPORT __attribute__((visibility("default")))

struct keel_wasi;

/* Per-instance context handed to every host function. Owned by whoever
 * instantiates the guest; lives as long as the instance. */
typedef struct keel_host_ctx {
    wasm_rt_memory_t *mem;    /* the guest's exported "memory", NULL if none */
    struct keel_wasi *wasi;   /* WASI state (src/wasi), NULL if not given */
    void *component;          /* component host state (src/host), may be NULL */
} keel_host_ctx;

#define KEEL_HOST_CTX(p) ((keel_host_ctx *)(void *)(p))

/* One host function. sig is the wasm signature as value-type letters,
 * params ':' results, with i = i32, I = i64, f = f32, F = f64:
 * fd_write is "iiii:i", proc_exit is "i:". */
typedef struct keel_host_fn {
    const char *module;
    const char *field;
    const char *sig;
    void (*addr)(void);
} keel_host_fn;

/* Returns a host pointer to guest bytes [addr, addr+len), or NULL when the
 * range is not entirely inside mem (or mem is NULL). len 0 is valid at any
 * addr <= mem->size. */
static inline void *keel_guest_ptr(wasm_rt_memory_t *mem, uint64_t addr,
                                   uint64_t len)
{
    if (!mem || addr > mem->size || len > (uint64_t)mem->size - addr)
        return NULL;
    return mem->data + addr;
}

/* Guest memory made from an image maps the image's pages read-only until
 * the instance first writes them (image.c): a write from code, guest or
 * host, faults and is retried, but a system call writing there (read,
 * getrandom, readlink...) would fail with EFAULT. Host functions call this
 * on the range, checked with keel_guest_ptr, before such a call. */
void keel_guest_prepare_write(void *p, size_t len);

#endif
