/* rt.h — Keel's implementation of wasm2c's wasm-rt.h runtime, embedder side.
 *
 * wasm-rt.h functions (wasm_rt_trap, wasm_rt_allocate_memory, ...) are
 * implemented in rt_*.c. This header is what the rest of Keel uses to run
 * guest code safely:
 *
 *  - keel_rt_invoke() is the only way into guest code. It runs a callback
 *    (which calls into the guest) with a per-thread unwind target, so a trap,
 *    proc_exit, a deadline or a stack overflow in the guest ends the callback
 *    and returns a keel_rt_outcome instead of killing the process. Invokes
 *    nest (guest -> host -> guest) and run on any number of threads at once.
 *  - Linear memories are 8 GiB reservations with guard pages; out-of-bounds
 *    accesses fault, and the fault handler turns faults in guest code into
 *    traps. Faults in host code are real crashes and are not swallowed.
 *  - A deadline is enforced by a watchdog thread that signals the thread
 *    running the guest; the signal ends the call only when the thread is
 *    executing registered guest code, never inside host functions.
 *
 * Errors: functions returning int return 0 or a negative KEEL_E* value.
 */
#ifndef KEEL_ENGINE_RT_H
#define KEEL_ENGINE_RT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <wasm-rt.h>

/* Why a guest call ended. */
typedef enum keel_rt_end {
    KEEL_RT_RETURNED = 0,     /* the callback returned normally */
    KEEL_RT_EXITED,           /* the guest called proc_exit (exit_code set) */
    KEEL_RT_TRAPPED,          /* a trap (trap set) */
} keel_rt_end;

/* Trap kinds: wasm-rt's plus Keel's own. */
typedef enum keel_trap_kind {
    KEEL_TRAP_NONE = 0,
    KEEL_TRAP_OOB,            /* out-of-bounds memory or table access */
    KEEL_TRAP_INT_OVERFLOW,   /* integer overflow (div/trunc) */
    KEEL_TRAP_DIV_BY_ZERO,
    KEEL_TRAP_INVALID_CONVERSION,
    KEEL_TRAP_UNREACHABLE,
    KEEL_TRAP_CALL_INDIRECT,  /* indirect call to null/mismatched function */
    KEEL_TRAP_UNCAUGHT_EXCEPTION,
    KEEL_TRAP_EXHAUSTION,     /* call stack exhausted */
    KEEL_TRAP_DEADLINE,       /* deadline exceeded */
    KEEL_TRAP_MEMORY_LIMIT,   /* memory needed beyond the instance limit */
    KEEL_TRAP_HOST,           /* a host function failed the call */
} keel_trap_kind;

typedef struct keel_rt_outcome {
    keel_rt_end end;
    keel_trap_kind trap;
    int exit_code;            /* valid when end == KEEL_RT_EXITED */
    bool memory_limit_hit;    /* a memory.grow failed on the instance limit */
    char where[128];          /* guest function name when known, else "" */
} keel_rt_outcome;

/* Limits applied to the guest code run by one keel_rt_invoke. */
typedef struct keel_rt_limits {
    uint64_t deadline_ns;     /* CLOCK_MONOTONIC deadline, 0 = none */
} keel_rt_limits;

/* Installs the fault and deadline signal handlers and starts the watchdog.
 * Idempotent and thread-safe. Returns 0 or a negative KEEL_E*. */
int keel_rt_init(void);

/* (Re)installs the SIGSEGV/SIGBUS and deadline handlers; keel_rt_init does
 * it once. For embedders whose other code (a test framework) replaced them. */
int keel_rt_install_signal_handlers(void);

/* Runs fn(arg) as guest code on the calling thread. Returns with *out
 * describing how it ended. Nested calls keep the outer deadline when it is
 * earlier. Any state fn was building when the guest trapped is abandoned. */
void keel_rt_invoke(void (*fn)(void *), void *arg,
                    const keel_rt_limits *limits, keel_rt_outcome *out);

/* Short stable name of a trap kind ("out of bounds memory access", ...). */
const char *keel_trap_kind_name(keel_trap_kind kind);

/* --- for host functions, valid only inside keel_rt_invoke --- */

/* Ends the current guest call as KEEL_RT_EXITED with code. */
_Noreturn void keel_rt_exit(int code);

/* Ends the current guest call with a trap of the given kind. */
_Noreturn void keel_rt_trap(keel_trap_kind kind);

/* Nanoseconds left before the current call's deadline (INT64_MAX when none,
 * <= 0 when passed). */
int64_t keel_rt_deadline_remaining_ns(void);

/* Traps with KEEL_TRAP_DEADLINE if the deadline has passed; call it only
 * where the host function holds no resources. */
void keel_rt_check_deadline(void);

/* --- memory limits, set by the engine around instantiation --- */

/* Maximum linear memory, in 64 KiB pages, that memories allocated or grown
 * by the current thread's instantiation may reach (0 = wasm maximum). The
 * limit is stored in the memory itself, so later grows keep it. */
void keel_rt_set_memory_limit_pages(uint32_t pages);

/* --- guest code ranges: [start, end) of executable guest code --- */
int keel_rt_register_code(const void *start, const void *end, const char *name,
                          const void *const *func_addrs,
                          const char *const *func_names, size_t nfuncs);
void keel_rt_unregister_code(const void *start);

uint64_t keel_rt_now_ns(void);

#endif
