/* rt_trap.c — entering guest code and leaving it abnormally.
 *
 * Owns keel_rt_invoke (the per-thread unwind target), wasm_rt_trap, the
 * fault handler (SIGSEGV/SIGBUS from guard pages or stack exhaustion, after
 * image.c has had its look at first writes to image pages) and the
 * deadline signal handler. A signal ends the guest call only when the thread
 * is inside keel_rt_invoke and the interrupted pc is in registered guest code
 * (or the fault is a stack overflow); anything else is a host crash and is
 * left to the default action. */
#include "engine/rt_int.h"

#include "engine/module_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <ucontext.h>

#include "base/errors.h"

__thread rt_thread rt_self;

#define RT_ALTSTACK_BYTES (128u * 1024u)
/* A fault this close to (or below) the lowest stack address is a stack
 * overflow, not a wild access. */
#define RT_STACK_SLACK_BYTES (256u * 1024u)
/* Stack kept below keel_rt_invoke's frame when dead stack is released. */
#define RT_STACK_KEEP_BYTES (64u * 1024u)

static int rt_deadline_signo;
static pthread_once_t rt_once = PTHREAD_ONCE_INIT;
static int rt_init_rc;

uint64_t keel_rt_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static const void *context_pc(void *ucv)
{
    ucontext_t *uc = ucv;
#if defined(__x86_64__)
    return (const void *)uc->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
    return (const void *)uc->uc_mcontext.pc;
#else
#error "keel: unsupported architecture for guest fault handling"
#endif
}

_Noreturn void rt_unwind(keel_rt_end end, keel_trap_kind kind, int code,
                         const void *pc)
{
    if (!rt_self.unwind || rt_self.depth <= 0) {
        fprintf(stderr, "keel: internal error: guest trap (%s) outside a "
                "guest call\n", keel_trap_kind_name(kind));
        abort();
    }
    rt_self.ending = 1;
    rt_self.end = end;
    rt_self.trap = kind;
    rt_self.exit_code = code;
    rt_self.trap_pc = pc;
    siglongjmp(*rt_self.unwind, 1);
}

/* rt_unwind out of a signal handler: the invoke then restores the
 * thread's signal mask (the handler's blocked signals stay blocked
 * otherwise, since invokes do not save the mask). */
static _Noreturn void unwind_from_signal(keel_trap_kind kind, const void *pc)
{
    rt_self.from_signal = 1;
    rt_unwind(KEEL_RT_TRAPPED, kind, 0, pc);
}

static void restore_default_and_return(int sig)
{
    /* Not a guest fault: let the default action (core dump) happen when the
     * faulting instruction runs again. */
    signal(sig, SIG_DFL);
}

static void on_fault(int sig, siginfo_t *si, void *uc)
{
    const void *pc = context_pc(uc);
    uintptr_t addr = (uintptr_t)si->si_addr;
    if (sig == SIGSEGV && keel_image_fault(addr))
        return;   /* a first write to an image page: retried, now writable */
    if (rt_self.depth <= 0 || !rt_self.unwind || rt_self.ending) {
        restore_default_and_return(sig);
        return;
    }
    int near_stack = rt_self.stack_lo &&
                     addr + RT_STACK_SLACK_BYTES >= rt_self.stack_lo &&
                     addr < rt_self.stack_lo + RT_STACK_SLACK_BYTES;
    if (near_stack)
        unwind_from_signal(KEEL_TRAP_EXHAUSTION, pc);
    if (rt_code_contains(pc))
        unwind_from_signal(KEEL_TRAP_OOB, pc);
    restore_default_and_return(sig);
}

static void on_deadline(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)si;
    if (rt_self.depth <= 0 || !rt_self.unwind || rt_self.ending ||
        !rt_self.deadline_ns)
        return;
    if (keel_rt_now_ns() < rt_self.deadline_ns)
        return;
    const void *pc = context_pc(uc);
    if (rt_code_contains(pc))
        unwind_from_signal(KEEL_TRAP_DEADLINE, pc);
    /* In host code: the watchdog signals again shortly; host functions that
     * wait check the deadline themselves. */
}

static void ensure_thread_ready(void)
{
    if (rt_self.altstack)
        return;
    void *alt = mmap(NULL, RT_ALTSTACK_BYTES, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (alt == MAP_FAILED) {
        fprintf(stderr, "keel: cannot allocate a signal stack\n");
        abort();
    }
    stack_t ss = { .ss_sp = alt, .ss_size = RT_ALTSTACK_BYTES, .ss_flags = 0 };
    if (sigaltstack(&ss, NULL) != 0) {
        fprintf(stderr, "keel: sigaltstack failed\n");
        abort();
    }
    rt_self.altstack = alt;
    pthread_sigmask(SIG_BLOCK, NULL, &rt_self.mask);
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        void *lo;
        size_t size;
        if (pthread_attr_getstack(&attr, &lo, &size) == 0) {
            rt_self.stack_lo = (uintptr_t)lo;
            rt_self.stack_hi = (uintptr_t)lo + size;
        }
        pthread_attr_destroy(&attr);
    }
}

int keel_rt_install_signal_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, NULL) != 0 || sigaction(SIGBUS, &sa, NULL) != 0)
        return KEEL_EIO;
    rt_deadline_signo = SIGRTMIN + 3;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_deadline;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(rt_deadline_signo, &sa, NULL) != 0)
        return KEEL_EIO;
    return 0;
}

static void rt_init_once(void)
{
    rt_init_rc = keel_rt_install_signal_handlers();
    if (rt_init_rc)
        return;
    wasm_rt_init();
    rt_init_rc = rt_watchdog_start(rt_deadline_signo);
}

int keel_rt_init(void)
{
    pthread_once(&rt_once, rt_init_once);
    return rt_init_rc;
}

/* After a guest exhausted the stack, the pages it touched below this
 * frame are dead (the unwind left them) but would stay resident for the
 * thread's life: hand them back, keeping RT_STACK_KEEP_BYTES below the
 * frame for what runs next. */
static void release_dead_stack(void)
{
    uintptr_t page = 4096, sp = (uintptr_t)__builtin_frame_address(0);
    if (!rt_self.stack_lo || sp < rt_self.stack_lo + RT_STACK_KEEP_BYTES + page)
        return;
    uintptr_t top = (sp - RT_STACK_KEEP_BYTES) & ~(page - 1);
    uintptr_t lo = (rt_self.stack_lo + page - 1) & ~(page - 1);
    if (top > lo)
        (void)madvise((void *)lo, top - lo, MADV_DONTNEED);   /* failure costs only memory */
}

void keel_rt_invoke(void (*fn)(void *), void *arg,
                    const keel_rt_limits *limits, keel_rt_outcome *out)
{
    sigjmp_buf jb;
    sigjmp_buf *volatile outer = rt_self.unwind;
    volatile uint64_t outer_deadline = rt_self.deadline_ns;
    volatile uint64_t deadline = outer_deadline;

    ensure_thread_ready();
    memset(out, 0, sizeof *out);
    if (limits && limits->deadline_ns &&
        (!deadline || limits->deadline_ns < deadline))
        deadline = limits->deadline_ns;

    /* No mask saved (a system call per invoke): an unwind out of a signal
     * handler restores the thread's mask below instead. */
    if (sigsetjmp(jb, 0) == 0) {
        rt_self.unwind = &jb;
        rt_self.depth++;
        rt_self.mem_limit_hit = 0;
        if (deadline != outer_deadline) {
            rt_self.deadline_ns = deadline;
            rt_watchdog_arm(deadline);
        }
        fn(arg);
        out->end = KEEL_RT_RETURNED;
    } else {
        if (rt_self.from_signal) {
            pthread_sigmask(SIG_SETMASK, &rt_self.mask, NULL);
            rt_self.from_signal = 0;
        }
        out->end = rt_self.end;
        out->trap = rt_self.trap;
        out->exit_code = rt_self.exit_code;
        if (rt_self.trap_pc)
            rt_code_function_name(rt_self.trap_pc, out->where, sizeof out->where);
        rt_self.ending = 0;
        if (out->trap == KEEL_TRAP_EXHAUSTION)
            release_dead_stack();
    }
    out->memory_limit_hit = rt_self.mem_limit_hit != 0;
    rt_self.depth--;
    rt_self.unwind = outer;
    if (rt_self.deadline_ns != outer_deadline) {
        rt_self.deadline_ns = outer_deadline;
        rt_watchdog_arm(outer_deadline);
    }
}

_Noreturn void keel_rt_exit(int code)
{
    rt_unwind(KEEL_RT_EXITED, KEEL_TRAP_NONE, code, NULL);
}

_Noreturn void keel_rt_trap(keel_trap_kind kind)
{
    rt_unwind(KEEL_RT_TRAPPED, kind, 0, __builtin_return_address(0));
}

int64_t keel_rt_deadline_remaining_ns(void)
{
    if (!rt_self.deadline_ns)
        return INT64_MAX;
    return (int64_t)(rt_self.deadline_ns - keel_rt_now_ns());
}

void keel_rt_check_deadline(void)
{
    if (rt_self.deadline_ns && keel_rt_now_ns() >= rt_self.deadline_ns)
        rt_unwind(KEEL_RT_TRAPPED, KEEL_TRAP_DEADLINE, 0, NULL);
}

void wasm_rt_trap(wasm_rt_trap_t code)
{
    keel_trap_kind kind;
    switch (code) {
    case WASM_RT_TRAP_OOB: kind = KEEL_TRAP_OOB; break;
    case WASM_RT_TRAP_INT_OVERFLOW: kind = KEEL_TRAP_INT_OVERFLOW; break;
    case WASM_RT_TRAP_DIV_BY_ZERO: kind = KEEL_TRAP_DIV_BY_ZERO; break;
    case WASM_RT_TRAP_INVALID_CONVERSION: kind = KEEL_TRAP_INVALID_CONVERSION; break;
    case WASM_RT_TRAP_UNREACHABLE: kind = KEEL_TRAP_UNREACHABLE; break;
    case WASM_RT_TRAP_CALL_INDIRECT: kind = KEEL_TRAP_CALL_INDIRECT; break;
    case WASM_RT_TRAP_UNCAUGHT_EXCEPTION: kind = KEEL_TRAP_UNCAUGHT_EXCEPTION; break;
    case WASM_RT_TRAP_EXHAUSTION: kind = KEEL_TRAP_EXHAUSTION; break;
    default: kind = KEEL_TRAP_HOST; break;
    }
    rt_unwind(KEEL_RT_TRAPPED, kind, 0, __builtin_return_address(0));
}

const char *keel_trap_kind_name(keel_trap_kind kind)
{
    switch (kind) {
    case KEEL_TRAP_NONE: return "none";
    case KEEL_TRAP_OOB: return "out of bounds memory access";
    case KEEL_TRAP_INT_OVERFLOW: return "integer overflow";
    case KEEL_TRAP_DIV_BY_ZERO: return "integer divide by zero";
    case KEEL_TRAP_INVALID_CONVERSION: return "invalid conversion to integer";
    case KEEL_TRAP_UNREACHABLE: return "unreachable executed";
    case KEEL_TRAP_CALL_INDIRECT: return "indirect call to a null or mismatched function";
    case KEEL_TRAP_UNCAUGHT_EXCEPTION: return "uncaught exception";
    case KEEL_TRAP_EXHAUSTION: return "call stack exhausted";
    case KEEL_TRAP_DEADLINE: return "deadline exceeded";
    case KEEL_TRAP_MEMORY_LIMIT: return "memory limit exceeded";
    case KEEL_TRAP_HOST: return "host function error";
    }
    return "unknown trap";
}

const char *wasm_rt_strerror(wasm_rt_trap_t trap)
{
    switch (trap) {
    case WASM_RT_TRAP_NONE: return "No error";
    case WASM_RT_TRAP_OOB: return keel_trap_kind_name(KEEL_TRAP_OOB);
    case WASM_RT_TRAP_INT_OVERFLOW: return keel_trap_kind_name(KEEL_TRAP_INT_OVERFLOW);
    case WASM_RT_TRAP_DIV_BY_ZERO: return keel_trap_kind_name(KEEL_TRAP_DIV_BY_ZERO);
    case WASM_RT_TRAP_INVALID_CONVERSION: return keel_trap_kind_name(KEEL_TRAP_INVALID_CONVERSION);
    case WASM_RT_TRAP_UNREACHABLE: return keel_trap_kind_name(KEEL_TRAP_UNREACHABLE);
    case WASM_RT_TRAP_CALL_INDIRECT: return keel_trap_kind_name(KEEL_TRAP_CALL_INDIRECT);
    case WASM_RT_TRAP_UNCAUGHT_EXCEPTION: return keel_trap_kind_name(KEEL_TRAP_UNCAUGHT_EXCEPTION);
    case WASM_RT_TRAP_EXHAUSTION: return keel_trap_kind_name(KEEL_TRAP_EXHAUSTION);
    }
    return "unknown trap";
}
