/* wake.h — private to src/obs: the background threads (the span
 * exporter, the access-log writer): their scheduling priority, and how a
 * request thread wakes one without ever waiting itself. A condition
 * variable's signal can block on its internal lock while the waiter,
 * preempted on a busy machine, holds it: that stalled a request for a
 * time slice, and http/dispatch.c then moved its component off the event
 * loop for two seconds. An eventfd write never blocks. */
#ifndef KEEL_OBS_WAKE_H
#define KEEL_OBS_WAKE_H

/* Nice value of the background threads. Their work can wait (their queues
 * hold ~100 ms of a busy server's output), so on a saturated machine the
 * scheduler lets them preempt a request thread less often and they drain
 * in larger batches. Above the workers' (http/server.h): they must still
 * keep up. */
#define KEEL_OBS_BACKGROUND_NICE 5

/* Gives the calling thread KEEL_OBS_BACKGROUND_NICE (best effort). */
void keel_obs_background(void);

typedef struct keel_wake {
    int fd;                      /* eventfd; -1 when none could be made */
} keel_wake;

/* 0, or -1 (no eventfd: keel_wake_wait then only sleeps). */
int keel_wake_init(keel_wake *w);
/* Wakes the waiter (or its next wait). Any thread; never blocks. */
void keel_wake_signal(keel_wake *w);
/* Waits until signalled or ms milliseconds pass. */
void keel_wake_wait(keel_wake *w, unsigned ms);
/* There is no close: a request thread may signal a stopped waiter, so the
 * eventfd lives as long as the process (one per exporter or writer). */

#endif
