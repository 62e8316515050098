/* wake.c — see wake.h. */
#include "obs/wake.h"

#include <poll.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

int keel_wake_init(keel_wake *w)
{
    w->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    return w->fd < 0 ? -1 : 0;
}

void keel_wake_signal(keel_wake *w)
{
    uint64_t one = 1;
    if (w->fd >= 0) {
        ssize_t n = write(w->fd, &one, sizeof one);   /* EAGAIN: already signalled plenty */
        (void)n;
    }
}

void keel_wake_wait(keel_wake *w, unsigned ms)
{
    if (w->fd < 0) {
        struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
        return;
    }
    struct pollfd p = { .fd = w->fd, .events = POLLIN };
    if (poll(&p, 1, (int)ms) > 0) {
        uint64_t v;
        ssize_t n = read(w->fd, &v, sizeof v);   /* resets the count */
        (void)n;
    }
}

void keel_obs_background(void)
{
    (void)setpriority(PRIO_PROCESS, (id_t)gettid(), KEEL_OBS_BACKGROUND_NICE);
}
