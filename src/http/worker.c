/* worker.c — the job queue and the worker threads that run guest code of
 * slow components (dispatch.c). A job is the request copied out of h2o on
 * its loop thread; a worker pops it (round-robin across components), runs
 * the host and posts the job back to the loop (server.c sends the
 * response). Also small utilities shared by the server files. */
#include "http/srv_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "obs/log.h"

uint64_t http_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void http_sleep_ms(unsigned ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

void *http_xmalloc(size_t n)
{
    void *p = malloc(n);
    if (p == NULL) {
        keel_log(KEEL_LOG_ERROR, "http", "out of memory (%zu bytes)", n);
        abort();
    }
    return p;
}

static char *arena_put(char **p, const char *s, size_t n)
{
    char *d = *p;
    if (n)
        memcpy(d, s, n);
    d[n] = '\0';
    *p += n + 1;
    return d;
}

/* Copies everything the worker needs out of req into one allocation. */
job *http_job_new(srv *s, loop *lp, h2o_req_t *req, h2o_iovec_t id, h2o_iovec_t path,
                    h2o_iovec_t q, h2o_iovec_t uri, const conn *c)
{
    size_t query_len = q.len;
    const char *query = q.base;
    bool has_body = req->entity.base != NULL;
    char clen[24];
    int clen_n = has_body ? snprintf(clen, sizeof clen, "%zu", req->entity.len) : 0;
    const char *remote = c != NULL ? c->remote : "";

    /* h2o puts Host in input.authority, or the hostconf's name when the
     * request had none (HTTP/1.0). */
    bool has_host = req->input.authority.len != 0 &&
                    req->input.authority.base != req->hostconf->authority.hostport.base;
    size_t nh = req->headers.size + (has_host ? 1 : 0) + (has_body ? 1 : 0);
    size_t bytes = nh * sizeof(keel_header);
    bytes += req->method.len + 1 + path.len + 1 + query_len + 1 + uri.len + 1 + id.len + 1 +
             strlen(remote) + 1 + (has_body ? req->entity.len + 1 : 0);
    for (size_t i = 0; i < req->headers.size; i++)
        bytes += req->headers.entries[i].name->len + req->headers.entries[i].value.len + 2;
    bytes += sizeof "host" + req->input.authority.len + 1;
    bytes += sizeof "content-length" + (size_t)clen_n + 1;

    job *j = http_xmalloc(sizeof *j + bytes);
    memset(j, 0, sizeof *j);
    j->lp = lp;
    keel_header *hs = (keel_header *)j->arena;
    char *p = j->arena + nh * sizeof(keel_header);
    keel_request *k = &j->kreq;
    k->method = arena_put(&p, req->method.base, req->method.len);
    k->method_len = req->method.len;
    k->path = arena_put(&p, path.base, path.len);
    k->path_len = path.len;
    k->query = arena_put(&p, query, query_len);
    k->query_len = query_len;
    k->uri = arena_put(&p, uri.base, uri.len);
    k->uri_len = uri.len;
    k->request_id = arena_put(&p, id.base, id.len);
    k->remote_addr = arena_put(&p, remote, strlen(remote));
    size_t h = 0;
    if (has_host) {
        hs[h].name = arena_put(&p, "host", 4);
        hs[h].name_len = 4;
        hs[h].value = arena_put(&p, req->input.authority.base, req->input.authority.len);
        hs[h].value_len = req->input.authority.len;
        h++;
    }
    if (has_body) {
        hs[h].name = arena_put(&p, "content-length", 14);
        hs[h].name_len = 14;
        hs[h].value = arena_put(&p, clen, (size_t)clen_n);
        hs[h].value_len = (size_t)clen_n;
        h++;
    }
    for (size_t i = 0; i < req->headers.size; i++, h++) {
        const h2o_header_t *e = &req->headers.entries[i];
        hs[h].name = arena_put(&p, e->name->base, e->name->len);
        hs[h].name_len = e->name->len;
        hs[h].value = arena_put(&p, e->value.base, e->value.len);
        hs[h].value_len = e->value.len;
    }
    k->headers = hs;
    k->nheaders = h;
    if (has_body) {
        k->body = arena_put(&p, req->entity.base, req->entity.len);
        k->body_len = req->entity.len;
    } else {
        k->body = "";
    }
    k->server_name = s->addr.host;
    k->server_port = s->addr.port;
    k->protocol = req->version >= 0x101 ? "HTTP/1.1" : "HTTP/1.0";
    return j;
}

void http_on_req_dispose(void *p)
{
    req_link *rl = p;
    if (rl->j != NULL) {          /* request gone while its job is out */
        rl->j->req = NULL;
        rl->j->c = NULL;
        rl->j->rl = NULL;
    }
}

void http_queue_init(srv *s, size_t ncomponents)
{
    s->nqueues = ncomponents + 1;
    s->qfirst = calloc(s->nqueues, sizeof *s->qfirst);
    s->qlast = calloc(s->nqueues, sizeof *s->qlast);
    s->ready = calloc(s->nqueues, sizeof *s->ready);
    if (!s->qfirst || !s->qlast || !s->ready)
        abort();
}

void http_queue_free(srv *s)
{
    free(s->qfirst);
    free(s->qlast);
    free(s->ready);
}

bool http_queue_push(srv *s, job *j)
{
    size_t qi = j->match.component < s->nqueues - 1 ? j->match.component : s->nqueues - 1;
    j->qnext = NULL;
    pthread_mutex_lock(&s->qmu);
    bool ok = s->queued < KEEL_HTTP_QUEUE_DEPTH;
    if (ok) {
        if (s->qlast[qi]) {
            s->qlast[qi]->qnext = j;
        } else {
            s->qfirst[qi] = j;
            s->ready[(s->rhead + s->rlen++) % s->nqueues] = qi;
        }
        s->qlast[qi] = j;
        s->queued++;
        pthread_cond_signal(&s->qcv);
    }
    pthread_mutex_unlock(&s->qmu);
    return ok;
}

/* The first job of the next queue in the ring; that queue goes to the back
 * of the ring when more jobs wait in it. */
static job *queue_pop(srv *s)
{
    pthread_mutex_lock(&s->qmu);
    while (s->queued == 0 && !s->qquit)
        pthread_cond_wait(&s->qcv, &s->qmu);
    job *j = NULL;
    if (s->queued) {
        size_t qi = s->ready[s->rhead];
        s->rhead = (s->rhead + 1) % s->nqueues;
        s->rlen--;
        j = s->qfirst[qi];
        s->qfirst[qi] = j->qnext;
        if (s->qfirst[qi])
            s->ready[(s->rhead + s->rlen++) % s->nqueues] = qi;
        else
            s->qlast[qi] = NULL;
        s->queued--;
    }
    pthread_mutex_unlock(&s->qmu);
    return j;
}

/* A response the worker makes itself, freeable by response_free. */
static void own_response(keel_response *r, int status, const char *msg, const char *id)
{
    memset(r, 0, sizeof *r);
    r->status = status;
    size_t cap = strlen(msg) + strlen(id) + 32;
    r->body = http_xmalloc(cap);
    int n = snprintf(r->body, cap, "%s (request id %s)\n", msg, id);
    r->body_len = n < 0 ? 0 : (size_t)n >= cap ? cap - 1 : (size_t)n;
}

/* This thread's CPU time (ns) and voluntary context switches so far. */
static void thread_usage(uint64_t *cpu_ns, long *waits)
{
    struct rusage ru;
    if (getrusage(RUSAGE_THREAD, &ru) != 0) {
        *cpu_ns = 0;
        *waits = 0;
        return;
    }
    *cpu_ns = ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) * 1000000000ull +
              ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000ull;
    *waits = ru.ru_nvcsw;
}

void http_job_run(srv *s, job *j)
{
    uint64_t t0 = http_now_ns();
    if (t0 >= j->kreq.deadline_ns) {
        own_response(&j->resp, 504, "deadline passed while queued", j->kreq.request_id);
    } else {
        size_t comp = j->match.component;
        bool exact = http_placement_wants_cost(s, comp);
        uint64_t cpu0 = 0, cpu1 = 0;
        long waits0 = 0, waits1 = 0;
        if (exact)
            thread_usage(&cpu0, &waits0);
        s->ops->handle(j->hctx, &j->match, &j->kreq, &j->resp);
        uint64_t wall = http_now_ns() - t0;
        if (exact) {
            /* What the request cost this thread: its CPU time, or its wall
             * time when it waited (a guest sleeping or blocked in WASI),
             * but not the time it was preempted on a busy machine. */
            thread_usage(&cpu1, &waits1);
            uint64_t cpu = cpu1 - cpu0;
            http_placement_note(s, comp, waits1 != waits0 && wall > cpu ? wall : cpu);
        } else {
            http_placement_note_wall(s, comp, wall);
        }
    }
    s->ops->release(j->hctx, j->match.component);
}

void *http_worker_main(void *arg)
{
    srv *s = arg;
    /* Below the loops: they must get the CPU to serve fast components
     * while workers run slow ones (dispatch.c). Failure only costs that. */
    (void)setpriority(PRIO_PROCESS, (id_t)gettid(), KEEL_HTTP_WORKER_NICE);
    job *j;
    while ((j = queue_pop(s)) != NULL) {
        http_job_run(s, j);
        h2o_multithread_send_message(&j->lp->responses, &j->msg);
        if (s->ops->tidy)
            s->ops->tidy(s->hctx);
    }
    return NULL;
}

