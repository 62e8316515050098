/* rt_int.h — state shared by the rt_*.c files only: the per-thread record
 * of the guest call in progress. Not for use outside src/engine/rt_*.c. */
#ifndef KEEL_ENGINE_RT_INT_H
#define KEEL_ENGINE_RT_INT_H

#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The wasm_rt_* functions are called by guest shared objects: declare them
 * with default visibility before anything else includes wasm-rt.h. */
#pragma GCC visibility push(default)
#include <wasm-rt.h>
#pragma GCC visibility pop

#include "engine/rt.h"

/* Everything about the guest call running on this thread. Written by the
 * thread itself and read by its own signal handlers. */
typedef struct rt_thread {
    sigjmp_buf *unwind;               /* innermost keel_rt_invoke */
    volatile sig_atomic_t depth;      /* nesting of keel_rt_invoke */
    volatile sig_atomic_t ending;     /* an unwind is in progress */
    keel_rt_end end;                  /* set before siglongjmp */
    keel_trap_kind trap;
    int exit_code;
    const void *trap_pc;              /* guest pc of the trap, if known */
    uint64_t deadline_ns;             /* 0 = none */
    uint32_t mem_limit_pages;         /* for memories being created */
    int mem_limit_hit;                /* a grow failed on the limit */
    uintptr_t stack_lo, stack_hi;     /* this thread's stack bounds */
    void *altstack;                   /* signal stack, allocated once */
    struct rt_watch *watch;           /* watchdog entry for this thread */
    sigset_t mask;                    /* the thread's signal mask, taken once */
    volatile sig_atomic_t from_signal;/* the unwind leaves a signal handler */
    /* exception handling (wasm2c --enable-exceptions) */
    jmp_buf *exc_target;
    uint32_t exc_tag, exc_size;
    unsigned char exc_data[256];
} rt_thread;

extern __thread rt_thread rt_self;

/* Ends the current call: records kind and jumps to the innermost invoke. */
_Noreturn void rt_unwind(keel_rt_end end, keel_trap_kind kind, int code,
                         const void *pc);

/* Code ranges (rt_code.c): whether pc is inside registered guest code, and
 * the guest function containing pc ("" when unknown). Async-signal-safe. */
int rt_code_contains(const void *pc);
void rt_code_function_name(const void *pc, char *buf, size_t len);

/* Watchdog (rt_watchdog.c). */
int rt_watchdog_start(int signo);
void rt_watchdog_arm(uint64_t deadline_ns);    /* this thread, 0 = disarm */

#endif
