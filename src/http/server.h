/* server.h — the HTTP front end on libh2o-evloop: event loops (one per
 * core, SO_REUSEPORT listeners) parse requests and apply the process-wide
 * limits; guest code runs on a pool of worker threads so a slow component
 * never stalls a loop; responses go back to the loop that owns the
 * connection.
 *
 * Per request, on the loop: request id (a well-formed incoming X-Request-Id
 * is kept, else 16 hex digits; echoed in every response Keel produces),
 * header size (431), route (404, 405 with Allow), body size against the
 * component's limits.body (413), admission (503 + Retry-After: 1), then the
 * request is copied out of h2o into one allocation and queued for a worker
 * (503 + Retry-After when the queue is full). The worker runs the component
 * and posts the response back; the loop sends it with Content-Length, or
 * drops it if the request is gone. Guest headers pass through except the
 * framing and hop-by-hop ones (Content-Length, Transfer-Encoding,
 * Connection, Keep-Alive, Upgrade, TE, Trailer, Proxy-Connection), Date
 * (h2o sets it) and X-Request-Id (Keel sets it).
 *
 * Responses h2o produces itself carry no X-Request-Id: 400 on a malformed
 * request line, more than 100 headers or a request head over ~400 KiB; 413
 * when the body exceeds the largest limits.body of any component. */
#ifndef KEEL_HTTP_SERVER_H
#define KEEL_HTTP_SERVER_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "host/host.h"

/* Process-wide limits, with their units in the names. */
#define KEEL_HTTP_MAX_HEADER_BYTES (16u * 1024u)        /* beyond: 431 */
#define KEEL_HTTP_HEADER_TIMEOUT_MS 10000u             /* slow clients cut off */
#define KEEL_HTTP_IDLE_TIMEOUT_MS 30000u               /* idle keep-alive */
#define KEEL_HTTP_MAX_CONNECTIONS 10000u
#define KEEL_HTTP_WORKER_STACK_BYTES (8u << 20)         /* loops and workers run guests */
/* h2o 2.2 has one HTTP/1 timer, armed when a connection starts waiting for
 * a request and disarmed when head and body are in: the time a keep-alive
 * connection may idle plus the time to send the next request. Keel sets it
 * to KEEL_HTTP_HEADER_TIMEOUT_MS (slowloris first), so idle keep-alive
 * connections are in practice closed after that, not
 * KEEL_HTTP_IDLE_TIMEOUT_MS. */

/* On stop (see keel_http_serve): how long a connection accepted but still
 * silent is left to send its first request before draining closes it as
 * idle. (The drain delay and grace period are the manifest's shutdown
 * keys; their defaults are in config/manifest.h.) */
#define KEEL_HTTP_FIRST_REQUEST_WAIT_MS 1000u
#define KEEL_HTTP_TICK_MS 100u               /* loops poll stop and limits this often */
#define KEEL_HTTP_MAX_LOOPS 256u
#define KEEL_HTTP_MAX_WORKERS 1024u
#define KEEL_HTTP_QUEUE_DEPTH 4096u          /* requests waiting for a worker; beyond: 503 */
/* Guest code runs on the loop thread once its component's last requests
 * (this many) each cost at most the budget (CPU time, or wall time when it
 * waited), and none cost more within the hold period; else on a worker
 * (dispatch.c). Workers run at this nice level so loops keep the CPU they
 * need. */
#define KEEL_HTTP_INLINE_BUDGET_NS 1000000ull       /* 1 ms */
#define KEEL_HTTP_SLOW_HOLD_NS 2000000000ull        /* 2 s */
#define KEEL_HTTP_FAST_STREAK 8u
#define KEEL_HTTP_WORKER_NICE 10
#define KEEL_HTTP_MAX_REQUEST_ID 64u         /* bytes of an accepted X-Request-Id */

typedef struct keel_http_opts {
    const char *listen;          /* "host:port", "[v6]:port" or ":port" (all IPv4);
                                    port 0 picks a free port (see ready) */
    unsigned loops;              /* event loop threads, 0 = cores */
    unsigned workers;            /* guest threads, 0 = 2 x cores */
    unsigned max_connections;    /* 0 = KEEL_HTTP_MAX_CONNECTIONS (also the ceiling) */
    unsigned header_timeout_ms;  /* 0 = KEEL_HTTP_HEADER_TIMEOUT_MS (also the ceiling) */
    /* Called once, on the calling thread, when every listening socket is
     * bound and listening, with the port bound. May be NULL. */
    void (*ready)(void *arg, int port);
    void *ready_arg;

    /* Listening sockets handed down by a supervisor (socket activation:
     * keel_http_inherited_listeners in http/listen.h); when n_inherited is
     * not 0 listen is ignored and these are served instead, one event loop
     * at least per socket. The server closes them when it stops (the
     * supervisor's copies stay open). */
    const int *inherited;
    unsigned n_inherited;
    /* Join SO_REUSEPORT listeners already on listen (another Keel being
     * replaced) instead of refusing the port: see keel_http_bind. */
    bool handover;

    /* The stop sequence (keel_http_serve). drain_delay_ns: keep serving
     * this long after the stop request before closing the listeners (0: at
     * once). grace_ns: then wait this long for in-flight requests
     * (0 = KEEL_DEFAULT_GRACE_NS). draining (may be NULL): called once,
     * on the calling thread, when the stop request is seen, before the
     * delay: where the caller turns readiness off. */
    uint64_t drain_delay_ns;
    uint64_t grace_ns;
    void (*draining)(void *arg);
    void *draining_arg;
} keel_http_opts;

/* keel_http_serve's result when the grace period ran out with requests
 * still running: they were abandoned and worker threads may still be
 * inside guests, so the host must not be freed. */
#define KEEL_HTTP_ABANDONED 1

/* Binds o->listen (or takes o->inherited) and serves l's current host
 * (each request routed by the host serving when it arrived; a reload swaps
 * hosts between requests; the largest limits.body h2o accepts is the one
 * at start) until *stop becomes non-zero (set from a signal handler), then
 * stops in order and returns 0;
 * KEEL_HTTP_ABANDONED when requests outlived the grace period. Returns a
 * negative KEEL_E* with err filled when it cannot listen.
 *
 * The stop sequence: o->draining is called and the server keeps accepting
 * and serving normally for o->drain_delay_ns (so load balancers see the
 * readiness change and move away; *stop reaching 2, a second signal, cuts
 * the delay short). Then each loop accepts what is already waiting in its
 * listener's queue and closes the listener; responses carry "Connection:
 * close"; idle keep-alive connections are closed (a connection that has
 * not sent its first request gets KEEL_HTTP_FIRST_REQUEST_WAIT_MS first);
 * requests in flight finish. After the grace period whatever is left is
 * abandoned (logged). Threads Keel creates block SIGPIPE, SIGINT, SIGTERM
 * and SIGHUP, so those reach the calling thread. */
int keel_http_serve(keel_live *l, const keel_http_opts *o, volatile sig_atomic_t *stop,
                    char *err, size_t errlen);

#endif
