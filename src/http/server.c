/* server.c — the h2o front end (see server.h for the behaviour).
 *
 * Threads: the caller of keel_http_serve_ops coordinates (waits for *stop
 * and runs the stop sequence of drain.c, then joins); each event loop
 * thread owns one h2o_evloop_t, one h2o_context_t, one listening socket
 * (SO_REUSEPORT, or a share of an inherited one) and the connections it
 * accepted. A request runs its guest code right on the loop thread, unless
 * its component is slow (dispatch.c): then worker threads take it from one
 * bounded queue, run the host and post the job back to its loop through
 * the context's multithread queue.
 *
 * A job is one malloc holding the request copied out of h2o (so the worker
 * never touches h2o memory) and, later, the response. Its link to the
 * h2o_req_t is a small object in the request's pool with a dispose
 * callback: if h2o frees the request first, the callback (loop thread)
 * clears job->req and the response is dropped when it arrives. Everything
 * that touches job->req runs on the owning loop thread, so no lock. */

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <time.h>

#include "base/errors.h"
#include "obs/log.h"
#include "obs/metrics.h"

#include "http/srv_int.h"

/* LeakSanitizer: h2o keeps per-thread caches of pool chunks (private to
 * libh2o) that die with each loop thread; they are not Keel's leaks. Only
 * consulted by sanitizer builds. */
__attribute__((visibility("default"))) const char *__lsan_default_suppressions(void);
__attribute__((visibility("default"))) const char *__lsan_default_suppressions(void)
{
    return "leak:h2o_mem_alloc_recycle\n";
}


/* The request id, NUL-terminated in the request pool. */
static h2o_iovec_t request_id(loop *lp, h2o_req_t *req)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-request-id"), -1);
    if (i >= 0) {
        h2o_iovec_t v = req->headers.entries[i].value;
        if (keel_http_request_id_ok(v.base, v.len))
            return h2o_strdup(&req->pool, v.base, v.len);
    }
    char *id = h2o_mem_alloc_pool(&req->pool, 17);
    uint64_t r = keel_http_rand64(&lp->rng);
    for (int i = 15; i >= 0; i--, r >>= 4)
        id[i] = "0123456789abcdef"[r & 15];
    id[16] = 0;
    return h2o_iovec_init(id, 16);
}

/* ------------------------------------------------------- simple replies */

/* name and value must live as long as req (pool or response holder). */
static void add_header(h2o_req_t *req, const char *name, size_t name_len, const char *value,
                       size_t value_len)
{
    h2o_add_header_by_str(&req->pool, &req->res.headers, name, name_len, 0, NULL, value,
                          value_len);
}

/* Keel's own answers (404, 413, 503...): text/plain naming the request id. */
static void send_plain(h2o_req_t *req, int status, h2o_iovec_t id, const char *msg,
                       const char *xname, const char *xvalue, bool close)
{
    size_t cap = strlen(msg) + id.len + 32;
    char *body = h2o_mem_alloc_pool(&req->pool, cap);
    int n = snprintf(body, cap, "%s (request id %.*s)\n", msg, (int)id.len, id.base);
    size_t len = n < 0 ? 0 : (size_t)n >= cap ? cap - 1 : (size_t)n;
    req->res.status = status;
    req->res.reason = keel_http_reason(status);
    req->res.content_length = len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("text/plain; charset=utf-8"));
    add_header(req, H2O_STRLIT("X-Request-Id"), id.base, id.len);
    if (xname != NULL)
        add_header(req, xname, strlen(xname), xvalue, strlen(xvalue));
    if (close)
        req->http1_is_persistent = 0;
    h2o_send_inline(req, body, len);
}

/* "GET, HEAD" for the methods some route of path accepts, or NULL. */
static const char *allow_list(srv *s, void *hc, h2o_req_t *req, h2o_iovec_t path)
{
    static const char *const methods[] = { "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH",
                                           "OPTIONS" };
    char *out = h2o_mem_alloc_pool(&req->pool, 64);
    size_t n = 0;
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        keel_route_match m;
        if (s->ops->match(hc, methods[i], strlen(methods[i]), path.base, path.len, &m) != 0)
            continue;
        n += (size_t)snprintf(out + n, 64 - n, "%s%s", n ? ", " : "", methods[i]);
    }
    return n ? out : NULL;
}

static size_t head_bytes(const h2o_req_t *req)
{
    size_t n = req->input.method.len + req->input.path.len + sizeof " HTTP/1.1\r\n";
    if (req->input.authority.len)
        n += sizeof "host: \r\n" + req->input.authority.len;
    for (size_t i = 0; i < req->headers.size; i++)
        n += req->headers.entries[i].name->len + req->headers.entries[i].value.len + 4;
    return n + 2;
}

/* -------------------------------------------------------------- the job */

static conn *conn_of(h2o_req_t *req);
static void on_conn_close(void *data);

/* ------------------------------------------------------------ responses */

static void on_holder_dispose(void *p)
{
    resp_holder *rh = p;
    rh->s->ops->response_free(rh->s->hctx, &rh->resp);
}

static void send_response(srv *s, h2o_req_t *req, h2o_iovec_t id, keel_response *resp)
{
    static h2o_generator_t generator = { NULL, NULL };
    resp_holder *rh = h2o_mem_alloc_shared(&req->pool, sizeof *rh, on_holder_dispose);
    rh->s = s;
    rh->resp = *resp;               /* body and headers now live as long as req */
    resp = &rh->resp;

    int status = resp->status;
    if (status < 200 || status > 599) {
        keel_log(KEEL_LOG_WARN, "http", "component answered status %d; sending 502", status);
        status = 502;
        resp->nheaders = 0;
        resp->body_len = 0;
    }
    req->res.status = status;
    req->res.reason = keel_http_reason(status);
    add_header(req, H2O_STRLIT("X-Request-Id"), id.base, id.len);
    for (size_t i = 0; i < resp->nheaders; i++) {
        const keel_header *h = &resp->headers[i];
        if (h->name_len == 0 || keel_http_guest_header_dropped(h->name, h->name_len))
            continue;
        add_header(req, h->name, h->name_len, h->value, h->value_len);
    }
    bool bodyless = status == 204 || status == 304;
    bool head = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
    req->res.content_length = bodyless ? SIZE_MAX : resp->body_len;
    if (atomic_load(&s->phase) != PHASE_RUN)
        req->http1_is_persistent = 0;
    h2o_start_response(req, &generator);
    h2o_iovec_t buf = h2o_iovec_init(resp->body, resp->body_len);
    if (bodyless || head || resp->body_len == 0)
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
    else
        h2o_send(req, &buf, 1, H2O_SEND_STATE_FINAL);
}

static void on_responses(h2o_multithread_receiver_t *r, h2o_linklist_t *messages)
{
    loop *lp = H2O_STRUCT_FROM_MEMBER(loop, responses, r);
    srv *s = lp->s;
    /* The next node is taken before j is freed (the static analyzer does not
     * see that unlinking j advances *messages). */
    for (h2o_linklist_t *l = messages->next, *next; l != messages; l = next) {
        next = l->next;
        job *j = H2O_STRUCT_FROM_MEMBER(job, msg.link, l);
        h2o_linklist_unlink(&j->msg.link);
        h2o_req_t *req = j->req;
        h2o_iovec_t id = j->id;
        keel_response resp = j->resp;
        if (req != NULL) {
            j->rl->j = NULL;
            if (j->c != NULL)
                j->c->busy = false;
        } else {
            keel_log(KEEL_LOG_DEBUG, "http", "request %s: client gone, response dropped",
                     j->kreq.request_id);
        }
        free(j);
        if (req != NULL)
            send_response(s, req, id, &resp);
        else
            s->ops->response_free(s->hctx, &resp);
        atomic_fetch_sub(&s->inflight, 1);
    }
}

/* ------------------------------------------------------------ on_req */

/* The request target as received (path ['?' query]; an absolute-form
 * target "GET http://host/p?q" is reduced to "/p?q"), the path Keel routes
 * on (keel_http_normalize_path of the target's path, in the request pool)
 * and the query. h2o's own path_normalized is not used: it decodes every
 * %XX, reserved "%2F" included, which would let "/a%2Fb" reach a "/a/" route. */
static void target_of(h2o_req_t *req, h2o_iovec_t *path, h2o_iovec_t *query, h2o_iovec_t *uri)
{
    h2o_iovec_t raw = req->path;
    if (raw.len != 0 && raw.base[0] != '/') {
        h2o_url_t url;
        if (h2o_url_parse(raw.base, raw.len, &url) == 0 && url.path.len != 0)
            raw = url.path;
    }
    *uri = raw;
    const char *q = memchr(raw.base, '?', raw.len);
    size_t plen = q ? (size_t)(q - raw.base) : raw.len;
    char *norm = h2o_mem_alloc_pool(&req->pool, plen + 2);
    path->len = keel_http_normalize_path(raw.base, plen, norm);
    path->base = norm;
    *query = q ? h2o_iovec_init(q + 1, raw.len - plen - 1) : h2o_iovec_init("", 0);
}

/* on_req with the host pinned for the request (hc: the ops' ctx for it). */
static int route_request(srv *s, void *hc, h2o_req_t *req)
{
    loop *lp = H2O_STRUCT_FROM_MEMBER(loop, ctx, req->conn->ctx);
    h2o_iovec_t id = request_id(lp, req);
    conn *c = conn_of(req);
    if (c != NULL) {              /* a whole request is in: see drain.c */
        c->served_one = true;
        c->read_at_req = c->sock->bytes_read;
    }

    if (head_bytes(req) > KEEL_HTTP_MAX_HEADER_BYTES) {
        keel_metrics_rejected(keel_metrics_global, (size_t)-1, KEEL_REJECT_HEADER);
        send_plain(req, 431, id, "request header fields too large", NULL, NULL, true);
        return 0;
    }
    h2o_iovec_t path, query, uri;
    target_of(req, &path, &query, &uri);
    keel_route_match m;
    int rc = s->ops->match(hc, req->method.base, req->method.len, path.base, path.len, &m);
    if (rc == 404) {
        send_plain(req, 404, id, "no route", NULL, NULL, false);
        return 0;
    }
    if (rc == 405) {
        const char *allow = allow_list(s, hc, req, path);
        send_plain(req, 405, id, "method not allowed", allow ? "Allow" : NULL, allow, false);
        return 0;
    }
    if (rc != 0) {
        send_plain(req, 500, id, "routing failed", NULL, NULL, false);
        return 0;
    }
    const keel_component_cfg *cfg = s->ops->component(hc, m.component);
    uint64_t body_limit = cfg ? cfg->limits.body : KEEL_DEFAULT_BODY;
    uint64_t timeout = cfg ? cfg->limits.timeout_ns : KEEL_DEFAULT_TIMEOUT_NS;
    if (req->entity.base != NULL && req->entity.len > body_limit) {
        keel_metrics_rejected(keel_metrics_global, m.component, KEEL_REJECT_BODY);
        send_plain(req, 413, id, "request body too large", NULL, NULL, false);
        return 0;
    }
    if (!s->ops->admit(hc, m.component)) {
        send_plain(req, 503, id, "component busy", "Retry-After", "1", false);
        return 0;
    }
    job *j = http_job_new(s, lp, req, id, path, query, uri, c);
    uint64_t now = http_now_ns();
    j->match = m;
    j->hctx = hc;
    j->kreq.deadline_ns = now + timeout;
    j->id = id;
    if (http_run_inline(s, m.component, now)) {
        http_job_run(s, j);
        keel_response resp = j->resp;
        free(j);
        send_response(s, req, id, &resp);
        if (s->ops->tidy)
            s->ops->tidy(s->hctx);
        return 0;
    }
    /* The worker reads only kreq and match, and writes only resp; req, rl
     * and c belong to this loop thread. */
    req_link *rl = h2o_mem_alloc_shared(&req->pool, sizeof *rl, http_on_req_dispose);
    rl->j = j;
    j->rl = rl;
    j->req = req;
    j->c = c;
    atomic_fetch_add(&s->inflight, 1);
    if (!http_queue_push(s, j)) {
        atomic_fetch_sub(&s->inflight, 1);
        rl->j = NULL;
        s->ops->release(hc, m.component);
        free(j);
        keel_metrics_rejected(keel_metrics_global, m.component, KEEL_REJECT_QUEUE);
        send_plain(req, 503, id, "server busy", "Retry-After", "1", false);
        return 0;
    }
    if (c != NULL)
        c->busy = true;
    return 0;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    srv *s = ((keel_handler *)self)->s;
    void *hc = s->ops->pin ? s->ops->pin(s->hctx) : s->hctx;
    int rc = route_request(s, hc, req);
    if (s->ops->unpin)
        s->ops->unpin(s->hctx, hc);
    return rc;
}

/* -------------------------------------------------------- connections */

static conn *conn_of(h2o_req_t *req)
{
    h2o_socket_t *sock = req->conn->callbacks->get_socket ? req->conn->callbacks->get_socket(req->conn)
                                                          : NULL;
    if (sock == NULL || sock->on_close.cb != on_conn_close)
        return NULL;
    return sock->on_close.data;
}

static void on_accept(h2o_socket_t *listener, const char *err);

void http_accept_pause(loop *lp)
{
    if (lp->accepting) {
        h2o_socket_read_stop(lp->listener);
        lp->accepting = false;
    }
}

static void accept_resume(loop *lp)
{
    if (!lp->accepting && !lp->listener_closed) {
        h2o_socket_read_start(lp->listener, on_accept);
        lp->accepting = true;
        lp->full_logged = false;
    }
}

static void on_conn_close(void *data)
{
    conn *c = data;
    loop *lp = c->lp;
    srv *s = lp->s;
    h2o_linklist_unlink(&c->link);
    free(c);
    size_t before = atomic_fetch_sub(&s->nconns, 1);
    if (before <= s->max_conns && lp->resume_at_ns == 0 &&
        atomic_load(&s->phase) == PHASE_RUN)
        accept_resume(lp);
}

#define ACCEPT_BATCH 64

int http_accept_some(loop *lp)
{
    srv *s = lp->s;
    int taken = 0;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        if (atomic_fetch_add(&s->nconns, 1) >= s->max_conns) {
            atomic_fetch_sub(&s->nconns, 1);
            if (!lp->full_logged)
                keel_log(KEEL_LOG_WARN, "http", "%zu connections open (the maximum); "
                         "not accepting until some close", s->max_conns);
            lp->full_logged = true;
            http_accept_pause(lp);
            return 0;
        }
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(lp->listen_fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            atomic_fetch_sub(&s->nconns, 1);
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                keel_log(KEEL_LOG_WARN, "http", "accept: %s; pausing %u ms", strerror(errno),
                         KEEL_HTTP_TICK_MS);
                http_accept_pause(lp);
                lp->resume_at_ns = http_now_ns() + KEEL_HTTP_TICK_MS * 1000000ull;
                return 0;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return taken;
            continue;            /* ECONNABORTED and friends: next one */
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conn *c = calloc(1, sizeof *c);
        if (c == NULL) {
            close(fd);
            atomic_fetch_sub(&s->nconns, 1);
            continue;
        }
        c->lp = lp;
        c->fd = fd;
        c->accepted_ns = http_now_ns();
        if (h2o_socket_getnumerichost((struct sockaddr *)&ss, sl, c->remote) == SIZE_MAX)
            c->remote[0] = '\0';
        h2o_socket_t *sock = h2o_evloop_socket_create(lp->evloop, fd,
                                                      H2O_SOCKET_FLAG_IS_ACCEPTED_CONNECTION);
        h2o_socket_setpeername(sock, (struct sockaddr *)&ss, sl);
        c->sock = sock;
        sock->on_close.cb = on_conn_close;
        sock->on_close.data = c;
        h2o_linklist_insert(&lp->conns, &c->link);
        h2o_accept(&lp->actx, sock);
        taken++;
    }
    return taken;
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    if (err == NULL)
        (void)http_accept_some(listener->data);
}

/* ---------------------------------------------------------------- loops */

static void loop_tick(loop *lp)
{
    srv *s = lp->s;
    int phase = atomic_load(&s->phase);
    if (phase == PHASE_RUN) {
        if (lp->resume_at_ns != 0 && http_now_ns() >= lp->resume_at_ns)
            lp->resume_at_ns = 0;
        if (!lp->accepting && lp->resume_at_ns == 0 && atomic_load(&s->nconns) < s->max_conns)
            accept_resume(lp);
        return;
    }
    if (phase == PHASE_DRAIN)
        http_loop_drain_tick(lp);
}

static void *loop_main(void *arg)
{
    loop *lp = arg;
    srv *s = lp->s;
    h2o_context_init(&lp->ctx, lp->evloop, &s->conf);
    lp->actx.ctx = &lp->ctx;
    lp->actx.hosts = s->conf.hosts;
    h2o_multithread_register_receiver(lp->ctx.queue, &lp->responses, on_responses);
    lp->listener = h2o_evloop_socket_create(lp->evloop, lp->listen_fd, H2O_SOCKET_FLAG_DONT_READ);
    lp->listener->data = lp;
    lp->accepting = false;
    accept_resume(lp);

    int phase;
    while ((phase = atomic_load(&s->phase)) < PHASE_STOP) {
        h2o_evloop_run(lp->evloop, (int32_t)KEEL_HTTP_TICK_MS);
        loop_tick(lp);
    }
    if (phase == PHASE_ABANDON)
        return NULL;             /* connections may still point at ctx: leave it */
    if (!lp->listener_closed) {
        http_accept_pause(lp);
        h2o_socket_close(lp->listener);
        lp->listener_closed = true;
    }
    h2o_evloop_run(lp->evloop, 0); /* let h2o finish closing sockets */
    h2o_multithread_unregister_receiver(lp->ctx.queue, &lp->responses);
    h2o_multithread_queue_t *queue = lp->ctx.queue;
    h2o_context_dispose(&lp->ctx);
    h2o_evloop_run(lp->evloop, 0);  /* frees the sockets dispose closed (its queue's) */
#if H2O_LIBRARY_VERSION_MAJOR == 0 && H2O_LIBRARY_VERSION_MINOR <= 13
    free(queue);   /* h2o 2.2's evloop h2o_multithread_destroy_queue forgets to */
#else
    (void)queue;
#endif
    /* This thread's cache of socket buffers (the cache of pool chunks is
     * private to h2o and stays until exit). */
    while (h2o_socket_buffer_prototype.allocator.cnt != 0)
        free(h2o_mem_alloc_recycle(&h2o_socket_buffer_prototype.allocator, 1));
    return NULL;
}

/* --------------------------------------------------------------- serve */

static unsigned cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1u : (unsigned)n;
}

static unsigned clamp_u(unsigned v, unsigned dflt, unsigned max)
{
    if (v == 0)
        v = dflt;
    return v > max ? max : v;
}

/* Largest limits.body of any component, + 1 so h2o leaves the exact
 * per-component check (and its 413 with a request id) to on_req. */
static size_t max_entity(const keel_http_host_ops *ops, void *ctx)
{
    uint64_t max = 0;
    const keel_component_cfg *c;
    void *hc = ops->pin ? ops->pin(ctx) : ctx;
    for (size_t i = 0; (c = ops->component(hc, i)) != NULL; i++)
        if (c->limits.body > max)
            max = c->limits.body;
    if (ops->unpin)
        ops->unpin(ctx, hc);
    return max >= SIZE_MAX - 1 ? SIZE_MAX - 1 : (size_t)max + 1;
}

/* Raises the soft open-files limit towards want (max connections plus
 * slack); without it the default 1024 would cap connections long before
 * KEEL_HTTP_MAX_CONNECTIONS (accept then pauses on EMFILE). */
static void raise_nofile(size_t want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
        return;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want)
        keel_log(KEEL_LOG_WARN, "http", "open files limited to %llu (hard limit); "
                 "connections beyond that wait", (unsigned long long)rl.rlim_cur);
}

static void srv_free(srv *s)
{
    if (s->loops) {
        for (unsigned i = 0; i < s->nloops; i++)
            if (s->loops[i].evloop)
                h2o_evloop_destroy(s->loops[i].evloop);
        free(s->loops);
    }
    h2o_config_dispose(&s->conf);
    pthread_mutex_destroy(&s->qmu);
    pthread_cond_destroy(&s->qcv);
    http_queue_free(s);
    free(s->workers);
    http_placement_free(s);
    free(s);
}

static void stop_workers(srv *s)
{
    pthread_mutex_lock(&s->qmu);
    s->qquit = true;
    pthread_cond_broadcast(&s->qcv);
    pthread_mutex_unlock(&s->qmu);
}

/* What a handover needs of the kernel (docs/operations.md), said once at
 * startup when Keel binds its own listeners. */
static void warn_without_migration(void)
{
    int m = keel_http_tcp_migrate_req();
    if (m == 0)
        keel_log(KEEL_LOG_WARN, "http", "net.ipv4.tcp_migrate_req is 0: connections waiting "
                 "in a listener's accept queue when Keel stops are reset instead of moving to "
                 "the Keel that replaces it; set it to 1 for zero-downtime upgrades "
                 "(docs/operations.md, \"Stopping and upgrading\")");
    else if (m < 0)
        keel_log(KEEL_LOG_WARN, "http", "this kernel has no net.ipv4.tcp_migrate_req (Linux "
                 "5.14+): connections waiting in a listener's accept queue when Keel stops "
                 "are reset; for zero-downtime upgrades use socket activation "
                 "(docs/operations.md, \"Stopping and upgrading\")");
}

/* The listening socket of each loop into *fds (malloc, *nloops of them)
 * and the address served into *addr: o's inherited sockets (at least one
 * loop each; loops beyond share them through duplicates), else new
 * sockets bound on o->listen. 0 or a negative KEEL_E* + err, nothing left
 * open (inherited sockets excepted). */
static int open_listeners(const keel_http_opts *o, keel_http_addr *addr, int **fds,
                          unsigned *nloops, char *err, size_t errlen)
{
    int rc;
    if (o->n_inherited == 0) {
        if ((rc = keel_http_parse_listen(o->listen, addr, err, errlen)) != 0)
            return rc;
        *fds = http_xmalloc(*nloops * sizeof **fds);
        if ((rc = keel_http_bind(addr, *fds, *nloops, o->handover, err, errlen)) != 0) {
            free(*fds);
            return rc;
        }
        warn_without_migration();
        return 0;
    }
    unsigned n = o->n_inherited;
    if ((rc = keel_http_addr_of_fd(o->inherited[0], addr, err, errlen)) != 0)
        return rc;
    if (*nloops < n)
        *nloops = n;
    *fds = http_xmalloc(*nloops * sizeof **fds);
    for (unsigned i = 0; i < *nloops; i++) {
        (*fds)[i] = i < n ? o->inherited[i] : fcntl(o->inherited[i % n], F_DUPFD_CLOEXEC, 0);
        if ((*fds)[i] < 0) {
            int e = errno;
            for (unsigned k = n; k < i; k++)
                close((*fds)[k]);
            free(*fds);
            return keel_err(err, errlen, KEEL_EIO, "inherited socket %d: dup: %s",
                            o->inherited[i % n], strerror(e));
        }
    }
    return 0;
}

int keel_http_serve_ops(const keel_http_host_ops *ops, void *hctx, const keel_http_opts *o,
                        volatile sig_atomic_t *stop, char *err, size_t errlen)
{
    keel_http_addr addr;
    unsigned nloops = clamp_u(o->loops, cores(), KEEL_HTTP_MAX_LOOPS);
    unsigned nworkers = clamp_u(o->workers, 2 * cores(), KEEL_HTTP_MAX_WORKERS);
    int *fds = NULL;
    int rc = open_listeners(o, &addr, &fds, &nloops, err, errlen);
    if (rc != 0)
        return rc;

    srv *s = calloc(1, sizeof *s);
    if (s == NULL)
        abort();
    s->ops = ops;
    s->hctx = hctx;
    s->addr = addr;
    s->nloops = nloops;
    s->nworkers = nworkers;
    s->max_conns = clamp_u(o->max_connections, KEEL_HTTP_MAX_CONNECTIONS,
                           KEEL_HTTP_MAX_CONNECTIONS);
    raise_nofile(s->max_conns + 64 + nloops * 2);
    pthread_mutex_init(&s->qmu, NULL);
    pthread_cond_init(&s->qcv, NULL);
    atomic_init(&s->phase, PHASE_RUN);
    atomic_init(&s->nconns, 0);
    atomic_init(&s->inflight, 0);
    http_placement_init(s);
    http_queue_init(s, s->nplacements);

    h2o_config_init(&s->conf);
    s->conf.server_name = h2o_iovec_init("", 0);   /* no Server header; guests may set one */
    s->conf.max_request_entity_size = max_entity(ops, hctx);
    s->conf.http1.req_timeout = clamp_u(o->header_timeout_ms, KEEL_HTTP_HEADER_TIMEOUT_MS,
                                        KEEL_HTTP_HEADER_TIMEOUT_MS);
    s->conf.http1.upgrade_to_http2 = 0;
    h2o_hostconf_t *host = h2o_config_register_host(&s->conf, h2o_iovec_init(H2O_STRLIT("default")),
                                                    65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    keel_handler *hd = (keel_handler *)h2o_create_handler(path, sizeof *hd);
    hd->super.on_req = on_req;
    hd->s = s;

    s->loops = calloc(nloops, sizeof *s->loops);
    s->workers = calloc(nworkers, sizeof *s->workers);
    if (s->loops == NULL || s->workers == NULL)
        abort();
    uint64_t seed;
    if (getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed)
        seed = http_now_ns() ^ (uint64_t)getpid() << 32;
    for (unsigned i = 0; i < nloops; i++) {
        loop *lp = &s->loops[i];
        lp->s = s;
        lp->listen_fd = fds[i];
        lp->evloop = h2o_evloop_create();
        h2o_linklist_init_anchor(&lp->conns);
        lp->rng = seed + i * 0x632be59bd9b4e019ull;
    }
    free(fds);

    /* Threads we create leave the process signals to the caller's thread. */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGPIPE);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    /* Loops and workers run guest code, nested component calls included:
     * give them a stack of a known size whatever RLIMIT_STACK says. */
    pthread_attr_t wattr;
    pthread_attr_init(&wattr);
    pthread_attr_setstacksize(&wattr, KEEL_HTTP_WORKER_STACK_BYTES);
    for (unsigned i = 0; i < nworkers; i++) {
        if (pthread_create(&s->workers[i], &wattr, http_worker_main, s) != 0)
            break;
        s->workers_started++;
    }
    for (unsigned i = 0; i < nloops && s->workers_started == nworkers; i++) {
        if (pthread_create(&s->loops[i].thread, &wattr, loop_main, &s->loops[i]) != 0)
            break;
        s->loops_started++;
    }
    pthread_attr_destroy(&wattr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    rc = 0;
    bool clean = true;
    if (s->workers_started != nworkers || s->loops_started != nloops) {
        rc = keel_err(err, errlen, KEEL_ENOMEM, "cannot start HTTP threads");
    } else {
        keel_log(KEEL_LOG_INFO, "http", "listening on http://%s%s%s:%d (%u loops, %u workers%s)",
                 addr.ss.ss_family == AF_INET6 ? "[" : "", addr.host,
                 addr.ss.ss_family == AF_INET6 ? "]" : "", addr.port, nloops, nworkers,
                 o->n_inherited ? "; sockets inherited by socket activation"
                 : o->handover ? "; sharing the port for a handover" : "");
        if (o->ready != NULL)
            o->ready(o->ready_arg, addr.port);
        clean = http_stop_sequence(s, o, stop);
    }
    if (rc != 0)
        atomic_store(&s->phase, PHASE_STOP);
    for (unsigned i = 0; i < s->loops_started; i++)
        pthread_join(s->loops[i].thread, NULL);
    stop_workers(s);
    if (!clean) {
        /* Workers may still be inside guests and loops' memory is still
         * referenced (drain.c logged it): leave it all to process exit. */
        return KEEL_HTTP_ABANDONED;
    }
    for (unsigned i = 0; i < s->workers_started; i++)
        pthread_join(s->workers[i], NULL);
    for (unsigned i = s->loops_started; i < nloops; i++)
        close(s->loops[i].listen_fd);
    srv_free(s);
    keel_log(KEEL_LOG_INFO, "http", "stopped");
    return rc;
}
