/* rt_watchdog.c — the deadline watchdog.
 *
 * One thread for the whole process. Each thread running guest code with a
 * deadline owns one rt_watch entry (created on first use, kept for the
 * thread's life). The watchdog sleeps until the earliest armed deadline and
 * then signals that thread, and keeps signalling it every
 * RT_WATCHDOG_REPEAT_NS until the thread disarms: the signal handler ends
 * the call only when the thread is in guest code, so a thread that was in a
 * host function is caught on a later tick. */
#include "engine/rt_int.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "base/errors.h"

/* Re-signal period after a deadline passes; bounds the overshoot. */
#define RT_WATCHDOG_REPEAT_NS (5u * 1000u * 1000u)
#define WD_NEVER UINT64_MAX
/* With nothing armed, the watchdog looks again after this long, this many
 * times, before it sleeps until woken. */
#define RT_WATCHDOG_IDLE_NS (1000u * 1000u * 1000u)
#define RT_WATCHDOG_IDLE_LOOKS 5u

typedef struct rt_watch {
    struct rt_watch *next;        /* wd_list, under wd_lock */
    pthread_t thread;
    _Atomic uint64_t deadline_ns; /* written by the owner thread; 0 = disarmed */
    uint64_t signalled_for;       /* watchdog only: the deadline last signalled */
    uint64_t next_signal_ns;      /* watchdog only */
} rt_watch;

static pthread_mutex_t wd_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wd_cond;
static rt_watch *wd_list;
static int wd_signo;
static pthread_key_t wd_key;
/* When the watchdog will look next (WD_NEVER while it scans). Arming a
 * deadline earlier than this wakes it; any other arm or disarm is a plain
 * store, so a request costs the watchdog nothing in the common case. */
static _Atomic uint64_t wd_wake_at = WD_NEVER;

static void watch_release(void *p)
{
    rt_watch *w = p;
    pthread_mutex_lock(&wd_lock);
    for (rt_watch **pp = &wd_list; *pp; pp = &(*pp)->next) {
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    }
    pthread_mutex_unlock(&wd_lock);
    free(w);
}

/* Signals every thread whose deadline passed (again every
 * RT_WATCHDOG_REPEAT_NS while it stays armed on the same deadline) and
 * returns when to look next, 0 for no armed deadline. Under wd_lock. */
static uint64_t scan(uint64_t now)
{
    uint64_t next = 0;
    for (rt_watch *w = wd_list; w; w = w->next) {
        uint64_t d = atomic_load(&w->deadline_ns);
        if (!d)
            continue;
        if (d != w->signalled_for) {
            w->next_signal_ns = d;
            w->signalled_for = 0;
        }
        if (w->next_signal_ns <= now) {
            pthread_kill(w->thread, wd_signo);
            w->signalled_for = d;
            w->next_signal_ns = now + RT_WATCHDOG_REPEAT_NS;
        }
        if (!next || w->next_signal_ns < next)
            next = w->next_signal_ns;
    }
    return next;
}

static void *watchdog_main(void *arg)
{
    (void)arg;
    unsigned idle = 0;
    pthread_mutex_lock(&wd_lock);
    for (;;) {
        /* Arms made while we scan see WD_NEVER and signal; they wait for
         * the lock, which we hold until we sleep, so none is lost. */
        atomic_store(&wd_wake_at, WD_NEVER);
        uint64_t now = keel_rt_now_ns();
        uint64_t next = scan(now);
        /* Nothing armed: between two requests of a busy server, usually.
         * Look again in a while rather than be woken by the next arm;
         * after a few such idle looks, sleep until an arm wakes us. */
        if (next)
            idle = 0;
        else if (idle++ < RT_WATCHDOG_IDLE_LOOKS)
            next = now + RT_WATCHDOG_IDLE_NS;
        atomic_store(&wd_wake_at, next ? next : WD_NEVER - 1);
        if (!next) {
            pthread_cond_wait(&wd_cond, &wd_lock);
        } else {
            struct timespec ts = { .tv_sec = (time_t)(next / 1000000000u),
                                   .tv_nsec = (long)(next % 1000000000u) };
            pthread_cond_timedwait(&wd_cond, &wd_lock, &ts);
        }
    }
    return NULL;
}

int rt_watchdog_start(int signo)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&wd_cond, &ca);
    pthread_condattr_destroy(&ca);
    wd_signo = signo;
    if (pthread_key_create(&wd_key, watch_release) != 0)
        return KEEL_ENOMEM;

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    /* The watchdog must not receive the deadline signal itself. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_t t;
    int rc = pthread_create(&t, &attr, watchdog_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    return rc == 0 ? 0 : KEEL_ENOMEM;
}

void rt_watchdog_arm(uint64_t deadline_ns)
{
    rt_watch *w = rt_self.watch;
    if (!w) {
        if (!deadline_ns)
            return;
        w = calloc(1, sizeof *w);
        if (!w)
            abort();
        w->thread = pthread_self();
        pthread_setspecific(wd_key, w);
        pthread_mutex_lock(&wd_lock);
        w->next = wd_list;
        wd_list = w;
        pthread_mutex_unlock(&wd_lock);
        rt_self.watch = w;
    }
    /* Sequentially consistent store then load, against the watchdog's
     * store of wd_wake_at then load of deadlines: either it sees this
     * deadline in its scan, or this sees it scanning and wakes it. */
    atomic_store(&w->deadline_ns, deadline_ns);
    if (deadline_ns && deadline_ns < atomic_load(&wd_wake_at)) {
        pthread_mutex_lock(&wd_lock);
        pthread_cond_signal(&wd_cond);
        pthread_mutex_unlock(&wd_lock);
    }
}
