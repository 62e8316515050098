/* srv_int.h — the server's threads and their shared records, private to
 * src/http (server.c: loops and connections; worker.c: the job queue and
 * the worker threads). See server.c's header comment for the model. */
#ifndef KEEL_HTTP_SRV_INT_H
#define KEEL_HTTP_SRV_INT_H

#define H2O_USE_EPOLL 1
#include <h2o.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "http/server_int.h"

enum { PHASE_RUN = 0, PHASE_DRAIN, PHASE_STOP, PHASE_ABANDON };

typedef struct srv srv;
typedef struct loop loop;
typedef struct job job;
typedef struct http_placement http_placement;

typedef struct conn {
    h2o_linklist_t link;          /* in loop->conns */
    loop *lp;
    h2o_socket_t *sock;
    int fd;
    bool busy;                    /* a request of this connection is with a worker */
    bool shut;                    /* shut down while draining */
    bool served_one;              /* a complete request arrived (on_req ran) */
    size_t read_at_req;           /* sock->bytes_read when the last one did */
    uint64_t accepted_ns;
    char remote[INET6_ADDRSTRLEN];
} conn;

typedef struct req_link {         /* lives in the h2o request pool */
    job *j;
} req_link;

struct job {
    h2o_multithread_message_t msg; /* the loop's queue links through this */
    job *qnext;                   /* the workers' queue */
    loop *lp;
    h2o_req_t *req;               /* NULL once h2o disposed the request */
    void *hctx;                   /* the ops' ctx this request was admitted by */
    req_link *rl;
    conn *c;
    h2o_iovec_t id;               /* in the request pool */
    keel_route_match match;
    keel_request kreq;
    keel_response resp;
    _Alignas(max_align_t) char arena[]; /* headers array, then strings, then body */
};

typedef struct resp_holder {      /* in the request pool: frees the response with it */
    srv *s;
    keel_response resp;
} resp_holder;

struct loop {
    srv *s;
    pthread_t thread;
    h2o_evloop_t *evloop;
    h2o_context_t ctx;
    h2o_accept_ctx_t actx;
    h2o_multithread_receiver_t responses;
    int listen_fd;
    h2o_socket_t *listener;
    bool accepting, listener_closed, full_logged;
    uint64_t resume_at_ns;        /* accept paused after EMFILE until then */
    h2o_linklist_t conns;
    uint64_t rng;
};

typedef struct keel_handler {
    h2o_handler_t super;
    srv *s;
} keel_handler;

struct srv {
    const keel_http_host_ops *ops;
    void *hctx;
    h2o_globalconf_t conf;
    keel_http_addr addr;
    unsigned nloops, nworkers;
    loop *loops;
    pthread_t *workers;
    unsigned workers_started, loops_started;
    size_t max_conns;
    pthread_mutex_t qmu;
    pthread_cond_t qcv;
    /* The workers' queue (worker.c): one FIFO per component (index
     * nqueues - 1: anything else), served round-robin across components
     * with work waiting, so one component's backlog delays only itself. */
    job **qfirst, **qlast;        /* per queue, linked through job->qnext */
    size_t *ready;                /* ring of queues with jobs waiting */
    size_t rhead, rlen;
    size_t nqueues, queued;       /* queued: jobs waiting, all queues */
    bool qquit;
    atomic_int phase;
    atomic_size_t nconns;
    atomic_size_t inflight;       /* admitted, response not yet handled by its loop */
    http_placement *placements;   /* per component (dispatch.c) */
    size_t nplacements;
};

/* dispatch.c: whether component comp's next request runs on the loop
 * thread (true) or goes to a worker; and what each request run cost
 * (worker.c's http_job_run), wherever it ran, which decides the next ones. */
void http_placement_init(srv *s);
void http_placement_free(srv *s);
bool http_run_inline(srv *s, size_t comp, uint64_t now_ns);
void http_placement_note(srv *s, size_t comp, uint64_t cost_ns);
/* Whether this request of comp is to be measured exactly (CPU time and
 * waits); else note its wall time with http_placement_note_wall, which
 * flags the component for an exact measurement when it ran long. */
bool http_placement_wants_cost(srv *s, size_t comp);
void http_placement_note_wall(srv *s, size_t comp, uint64_t wall_ns);

/* server.c: accepts up to a batch of connections waiting on lp's listener;
 * how many (0: none waiting, or accepting must pause). */
int http_accept_some(loop *lp);
void http_accept_pause(loop *lp);

/* drain.c. http_stop_sequence, on the coordinating thread: waits for *stop
 * and runs the stop sequence of keel_http_serve up to the point where the
 * threads may be joined; true when everything finished within the grace
 * period (phase PHASE_STOP), false when work was abandoned (PHASE_ABANDON).
 * http_loop_drain_tick, on each loop thread every tick in PHASE_DRAIN:
 * closes the listener (first accepting what waits) and idle connections. */
bool http_stop_sequence(srv *s, const keel_http_opts *o, volatile sig_atomic_t *stop);
void http_loop_drain_tick(loop *lp);

/* worker.c */
uint64_t http_now_ns(void);
void http_sleep_ms(unsigned ms);
void *http_xmalloc(size_t n);      /* aborts (with a log line) when out of memory */
job *http_job_new(srv *s, loop *lp, h2o_req_t *req, h2o_iovec_t id, h2o_iovec_t path,
                  h2o_iovec_t q, h2o_iovec_t uri, const conn *c);
void http_queue_init(srv *s, size_t ncomponents);
void http_queue_free(srv *s);
/* Queues j for a worker; false when KEEL_HTTP_QUEUE_DEPTH jobs wait. */
bool http_queue_push(srv *s, job *j);
/* Runs j's request on this thread (504 when its deadline passed before it
 * started), notes its duration for dispatch and releases its admission. */
void http_job_run(srv *s, job *j);
void *http_worker_main(void *arg);
/* Dispose callback of the request-pool link: the request is gone. */
void http_on_req_dispose(void *p);

#endif
