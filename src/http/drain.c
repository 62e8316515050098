/* drain.c — how the HTTP server stops (the sequence is described with
 * keel_http_serve in server.h): the coordinating thread's side (wait for
 * the stop request, announce it, hold the drain delay, then give in-flight
 * work its grace period) and each event loop's side (take what waits in
 * the accept queue, close the listener, close idle connections). */
#include <inttypes.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "obs/log.h"

#include "http/srv_int.h"

/* *stop as the signal handler left it (another thread in tests). */
static int stop_level(volatile sig_atomic_t *stop)
{
    return (int)__atomic_load_n(stop, __ATOMIC_RELAXED);
}

static unsigned long long ms_of(uint64_t ns)
{
    return (unsigned long long)(ns / 1000000ull);
}

bool http_stop_sequence(srv *s, const keel_http_opts *o, volatile sig_atomic_t *stop)
{
    while (!stop_level(stop))
        http_sleep_ms(KEEL_HTTP_TICK_MS / 5);

    uint64_t delay = o->drain_delay_ns;
    uint64_t grace = o->grace_ns ? o->grace_ns : KEEL_DEFAULT_GRACE_NS;
    keel_log(KEEL_LOG_INFO, "http", "stop requested: draining (readiness now 503); listeners "
             "close in %llu ms, then requests in flight get up to %llu ms", ms_of(delay),
             ms_of(grace));
    if (o->draining != NULL)
        o->draining(o->draining_arg);

    /* The drain delay: serve as usual while load balancers notice. */
    uint64_t t0 = http_now_ns();
    while (http_now_ns() - t0 < delay) {
        if (stop_level(stop) >= 2) {
            keel_log(KEEL_LOG_INFO, "http", "second stop signal: skipping the remaining "
                     "%llu ms of the drain delay", ms_of(delay - (http_now_ns() - t0)));
            break;
        }
        http_sleep_ms(10);
    }

    atomic_store(&s->phase, PHASE_DRAIN);
    uint64_t closed_at = http_now_ns();
    uint64_t give_up = closed_at + grace;
    while ((atomic_load(&s->inflight) || atomic_load(&s->nconns)) && http_now_ns() < give_up)
        http_sleep_ms(10);
    size_t left_req = atomic_load(&s->inflight), left_conn = atomic_load(&s->nconns);
    bool clean = left_req == 0 && left_conn == 0;
    atomic_store(&s->phase, clean ? PHASE_STOP : PHASE_ABANDON);
    if (clean)
        keel_log(KEEL_LOG_INFO, "http", "drained: every connection closed %llu ms after the "
                 "listeners", ms_of(http_now_ns() - closed_at));
    else
        keel_log(KEEL_LOG_WARN, "http", "grace period (%llu ms) over with %zu requests still "
                 "running and %zu connections open; abandoning them", ms_of(grace), left_req,
                 left_conn);
    return clean;
}

/* Whether c may be closed without cutting a request: nothing of a request
 * is with a worker, being written, buffered by h2o or waiting in the
 * kernel, and no byte arrived since its last request was complete. A
 * connection still to send its first request gets
 * KEEL_HTTP_FIRST_REQUEST_WAIT_MS since it was accepted. */
static bool conn_idle(const conn *c, uint64_t now_ns)
{
    if (c->busy || h2o_socket_is_writing(c->sock) || c->sock->input->size != 0 ||
        c->sock->bytes_read != c->read_at_req)
        return false;
    int waiting = 0;
    if (ioctl(c->fd, FIONREAD, &waiting) != 0 || waiting != 0)
        return false;
    if (!c->served_one &&
        now_ns - c->accepted_ns < KEEL_HTTP_FIRST_REQUEST_WAIT_MS * 1000000ull)
        return false;
    return true;
}

void http_loop_drain_tick(loop *lp)
{
    if (!lp->listener_closed) {
        /* Serve what already completed its handshake on this socket: when
         * it closes the kernel resets those connections, unless
         * net.ipv4.tcp_migrate_req moves them to another listener of the
         * SO_REUSEPORT group (a new Keel). */
        size_t taken = 0;
        int n;
        while (taken < KEEL_HTTP_LISTEN_BACKLOG && (n = http_accept_some(lp)) > 0)
            taken += (size_t)n;   /* bounded: a flood of new ones must not hold the close */
        http_accept_pause(lp);
        h2o_socket_close(lp->listener);
        lp->listener = NULL;
        lp->listener_closed = true;
        /* Not h2o_context_request_shutdown: in 2.2 it arms an HTTP/2 timer
         * (on one_sec_timeout) that h2o_context_dispose then asserts on.
         * The flag alone makes HTTP/1 answer "Connection: close". */
        lp->ctx.shutdown_requested = 1;
        if (taken)
            keel_log(KEEL_LOG_DEBUG, "http", "took %zu waiting connections before closing a "
                     "listener", taken);
    }
    uint64_t now = http_now_ns();
    for (h2o_linklist_t *n = lp->conns.next; n != &lp->conns; n = n->next) {
        conn *c = H2O_STRUCT_FROM_MEMBER(conn, link, n);
        if (!c->shut && conn_idle(c, now)) {
            shutdown(c->fd, SHUT_RDWR);
            c->shut = true;
        }
    }
}
