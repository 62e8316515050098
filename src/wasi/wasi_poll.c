/* wasi_poll.c — poll_oneoff: clock subscriptions (relative or absolute, on
 * the realtime and monotonic clocks) and fd_read / fd_write readiness,
 * waited for with one ppoll(2).
 *
 * A wait never outlasts the current guest call's deadline: the sleep is
 * capped with keel_rt_deadline_remaining_ns(), and when the cap is what
 * ended it, the subscription buffer is freed and keel_rt_check_deadline()
 * traps the call. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <time.h>

#include "engine/rt.h"
#include "wasi/wasi_int.h"

typedef struct poll_sub {
    uint64_t userdata;
    uint64_t deadline;        /* clocks: CLOCK_MONOTONIC ns */
    int pfd;                  /* fds: index in the pollfd array, else -1 */
    uint16_t error;           /* immediate error event when non-zero */
    uint8_t type;             /* WASI_EVENTTYPE_* */
} poll_sub;

static uint64_t now_ns(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* Decodes one 48-byte subscription into *s, adding a pollfd for fd ones. */
static void parse_sub(struct keel_wasi *w, const uint8_t *p, uint64_t mono,
                      poll_sub *s, struct pollfd *pfds, int *npfd)
{
    s->userdata = wasi_get_u64(p);
    s->type = p[8];
    s->pfd = -1;
    s->error = 0;
    s->deadline = 0;
    switch (s->type) {
    case WASI_EVENTTYPE_CLOCK: {
        uint32_t id = wasi_get_u32(p + 16);
        uint64_t timeout = wasi_get_u64(p + 24);
        bool abs = wasi_get_u16(p + 40) & WASI_SUBCLOCK_ABSTIME;
        if (id == WASI_CLOCK_MONOTONIC) {
            s->deadline = abs ? timeout : sat_add(mono, timeout);
        } else if (id == WASI_CLOCK_REALTIME) {
            uint64_t rel = timeout;
            if (abs) {
                uint64_t rt = now_ns(CLOCK_REALTIME);
                rel = timeout > rt ? timeout - rt : 0;
            }
            s->deadline = sat_add(mono, rel);
        } else {
            s->error = WASI_EINVAL;   /* CPU-time clocks cannot be slept on */
        }
        break;
    }
    case WASI_EVENTTYPE_FD_READ:
    case WASI_EVENTTYPE_FD_WRITE: {
        keel_wasi_fd *e;
        uint32_t rc = keel_wasi_fd_check(w, wasi_get_u32(p + 16),
                                         WASI_RIGHT_POLL_FD_READWRITE, &e);
        if (rc) {
            s->error = (uint16_t)rc;
            break;
        }
        s->pfd = *npfd;
        pfds[*npfd].fd = e->host;
        pfds[*npfd].events = s->type == WASI_EVENTTYPE_FD_READ ? POLLIN : POLLOUT;
        pfds[*npfd].revents = 0;
        (*npfd)++;
        break;
    }
    default:
        s->error = WASI_EINVAL;
        break;
    }
}

static void put_event(uint8_t *p, const poll_sub *s, uint16_t error, uint64_t nbytes,
                      uint16_t flags)
{
    memset(p, 0, WASI_EVENT_SIZE);
    wasi_put_u64(p, s->userdata);
    wasi_put_u16(p + 8, error);
    wasi_put_u8(p + 10, s->type);
    wasi_put_u64(p + 16, nbytes);
    wasi_put_u16(p + 24, flags);
}

/* Writes the events that are ready now; returns how many. */
static uint32_t collect(const poll_sub *subs, uint32_t n, const struct pollfd *pfds,
                        uint64_t mono, uint8_t *out)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i++) {
        const poll_sub *s = &subs[i];
        uint8_t *ev = out + (uint64_t)k * WASI_EVENT_SIZE;
        if (s->error) {
            put_event(ev, s, s->error, 0, 0);
            k++;
        } else if (s->type == WASI_EVENTTYPE_CLOCK) {
            if (s->deadline <= mono) {
                put_event(ev, s, 0, 0, 0);
                k++;
            }
        } else if (pfds[s->pfd].revents) {
            short re = pfds[s->pfd].revents;
            if (re & POLLNVAL) {
                put_event(ev, s, WASI_EBADF, 0, 0);
            } else {
                int avail = 0;
                if (s->type == WASI_EVENTTYPE_FD_READ &&
                    ioctl(pfds[s->pfd].fd, FIONREAD, &avail) != 0)
                    avail = 0;
                put_event(ev, s, 0, avail > 0 ? (uint64_t)avail : 0,
                          (re & POLLHUP) ? WASI_EVENTRW_HANGUP : 0);
            }
            k++;
        }
    }
    return k;
}

uint32_t WASI_FN(poll_oneoff)(WASI_CTX, uint32_t in, uint32_t out, uint32_t nsubscriptions,
                              uint32_t nevents_out)
{
    wasm_rt_memory_t *mem = WASI_MEM(ctx);
    struct keel_wasi *w = WASI_STATE(ctx);
    uint32_t n = nsubscriptions;
    if (!w)
        return WASI_ENOSYS;
    const uint8_t *in_p = keel_guest_ptr(mem, in, (uint64_t)n * WASI_SUBSCRIPTION_SIZE);
    uint8_t *out_p = keel_guest_ptr(mem, out, (uint64_t)n * WASI_EVENT_SIZE);
    uint8_t *nev_p = keel_guest_ptr(mem, nevents_out, 4);
    if (!in_p || !out_p || !nev_p)
        return WASI_EFAULT;
    if (n == 0 || n > KEEL_WASI_MAX_POLL_SUBS)
        return WASI_EINVAL;

    for (;;) {
        poll_sub *subs = malloc(n * sizeof *subs);
        struct pollfd *pfds = malloc(n * sizeof *pfds);
        if (!subs || !pfds) {
            free(subs);
            free(pfds);
            return WASI_ENOMEM;
        }
        int npfd = 0;
        uint64_t mono = now_ns(CLOCK_MONOTONIC);
        for (uint32_t i = 0; i < n; i++)
            parse_sub(w, in_p + (uint64_t)i * WASI_SUBSCRIPTION_SIZE, mono, &subs[i], pfds, &npfd);

        bool deadline_hit = false;
        for (;;) {
            /* Earliest clock, or 0 when an error event is already due. */
            uint64_t wait = UINT64_MAX;
            for (uint32_t i = 0; i < n; i++) {
                if (subs[i].error)
                    wait = 0;
                else if (subs[i].type == WASI_EVENTTYPE_CLOCK)
                    wait = subs[i].deadline <= mono ? 0 :
                           (subs[i].deadline - mono < wait ? subs[i].deadline - mono : wait);
            }
            int64_t rem = keel_rt_deadline_remaining_ns();
            bool capped = false;
            if (rem != INT64_MAX) {
                uint64_t r = rem > 0 ? (uint64_t)rem : 0;
                if (r < wait) {
                    wait = r;
                    capped = true;
                }
            }
            struct timespec ts, *tsp = NULL;
            if (wait != UINT64_MAX) {
                if (wait > (uint64_t)INT64_MAX)
                    wait = (uint64_t)INT64_MAX;
                ts.tv_sec = (time_t)(wait / 1000000000u);
                ts.tv_nsec = (long)(wait % 1000000000u);
                tsp = &ts;
            }
            int r = ppoll(pfds, (nfds_t)npfd, tsp, NULL);
            if (r < 0 && errno != EINTR) {
                int e = errno;
                free(subs);
                free(pfds);
                return keel_wasi_errno(e);
            }
            mono = now_ns(CLOCK_MONOTONIC);
            if (r < 0)
                for (int i = 0; i < npfd; i++)
                    pfds[i].revents = 0;
            uint32_t k = collect(subs, n, pfds, mono, out_p);
            if (k > 0) {
                free(subs);
                free(pfds);
                wasi_put_u32(nev_p, k);
                return WASI_ESUCCESS;
            }
            if (capped && r == 0) {
                deadline_hit = true;
                break;
            }
        }
        free(subs);
        free(pfds);
        if (deadline_hit)
            keel_rt_check_deadline();   /* traps; holds nothing now */
        /* Still before the deadline (clock rounding): start over. */
    }
}
