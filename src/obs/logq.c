/* logq.c — see logq.h and keel_log_queue_start in log.h. */
#include "obs/logq.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "obs/byte_ring.h"
#include "obs/log.h"
#include "obs/wake.h"

typedef struct lring {
    struct lring *next;
    _Atomic uint64_t head, tail;     /* byte positions: consumer, producer */
    char data[KEEL_LOGQ_RING_BYTES];
} lring;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;   /* ring list, start/stop */
static keel_wake wake = { -1 };                          /* a ring a quarter full, or stop */
static lring *rings;
static atomic_bool running;
static atomic_bool stopping;
static pthread_t writer;
static _Thread_local lring *tl_ring;

bool keel_logq_push(const char *line, size_t len)
{
    if (!atomic_load_explicit(&running, memory_order_acquire) || len > KEEL_LOGQ_RING_BYTES / 4)
        return false;
    lring *r = tl_ring;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return false;
        pthread_mutex_lock(&mu);
        r->next = rings;
        rings = r;
        pthread_mutex_unlock(&mu);
        tl_ring = r;
    }
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    if (KEEL_LOGQ_RING_BYTES - (tail - head) < len)
        return false;
    keel_ring_put(r->data, KEEL_LOGQ_RING_BYTES, tail, line, len);
    atomic_store_explicit(&r->tail, tail + len, memory_order_release);
    if (keel_ring_crossed_quarter(tail - head, len, KEEL_LOGQ_RING_BYTES))
        keel_wake_signal(&wake);
    return true;
}

/* Writes everything queued so far, ring by ring (each ring's bytes are
 * whole lines in order). */
static void drain(void)
{
    pthread_mutex_lock(&mu);
    lring *list = rings;
    pthread_mutex_unlock(&mu);
    for (lring *r = list; r; r = r->next) {
        uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
        uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
        while (head < tail) {
            size_t at = (size_t)(head % KEEL_LOGQ_RING_BYTES);
            size_t n = (size_t)(tail - head);
            struct iovec iov[2];
            int cnt = 1;
            iov[0].iov_base = r->data + at;
            iov[0].iov_len = KEEL_LOGQ_RING_BYTES - at < n ? KEEL_LOGQ_RING_BYTES - at : n;
            if (iov[0].iov_len < n) {
                iov[1].iov_base = r->data;
                iov[1].iov_len = n - iov[0].iov_len;
                cnt = 2;
            }
            ssize_t w = writev(2, iov, cnt);
            if (w <= 0)
                w = (ssize_t)n;     /* stderr gone: drop rather than spin */
            head += (uint64_t)w;
        }
        atomic_store_explicit(&r->head, head, memory_order_release);
    }
}

static void *writer_main(void *arg)
{
    (void)arg;
    keel_obs_background();
    while (!atomic_load(&stopping)) {
        keel_wake_wait(&wake, KEEL_LOGQ_FLUSH_MS);
        drain();
    }
    return NULL;
}

int keel_log_queue_start(void)
{
    pthread_mutex_lock(&mu);
    int rc = 0;
    if (!atomic_load(&running)) {
        if (wake.fd < 0)
            keel_wake_init(&wake);   /* without one the writer drains on its period only */
        atomic_store(&stopping, false);
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        rc = pthread_create(&writer, NULL, writer_main, NULL) ? -1 : 0;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (!rc)
            atomic_store_explicit(&running, true, memory_order_release);
    }
    pthread_mutex_unlock(&mu);
    return rc;
}

void keel_log_queue_stop(void)
{
    pthread_mutex_lock(&mu);
    bool was = atomic_exchange(&running, false);
    pthread_mutex_unlock(&mu);
    if (!was)
        return;
    atomic_store(&stopping, true);
    keel_wake_signal(&wake);
    pthread_join(writer, NULL);
    drain();     /* what was pushed before running went false */
}
