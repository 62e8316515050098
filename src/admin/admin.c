/* admin.c — see admin.h. One thread, one h2o_evloop_t, one listening
 * socket; every request is answered inline on that thread (the answers are
 * built from lock-free counters, so a scrape never waits on requests). */
#define H2O_USE_EPOLL 1
#include <h2o.h>

#include "admin/admin.h"
#include "admin/admin_int.h"
#include "admin/audit.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/errors.h"
#include "http/listen.h"
#include "obs/log.h"
#include "obs/process.h"

#define ADMIN_TICK_MS 100u

typedef struct admin_handler {
    h2o_handler_t super;
    keel_admin *a;
} admin_handler;

/* A deploy running on a thread of its own (PUT /admin/components/NAME):
 * the admin thread answers req once done is set (checked every tick). */
typedef struct admin_job admin_job;
typedef struct job_link {           /* in req's pool: cleared when h2o frees req */
    admin_job *j;
} job_link;
struct admin_job {
    keel_admin_deploy d;
    keel_host *h;                   /* held (keel_host_hold) until answered */
    pthread_t thread;
    atomic_bool done;
    int status;
    keel_buf out;
    h2o_req_t *req;                 /* NULL once h2o disposed it; admin thread only */
    job_link *link;
    admin_job *next;
};

struct keel_admin {
    pthread_t thread;
    int fd;
    h2o_globalconf_t conf;
    h2o_context_t ctx;
    h2o_accept_ctx_t actx;
    h2o_evloop_t *loop;
    h2o_socket_t *listener;
    atomic_bool stop;
    atomic_bool draining;        /* the process is stopping: /readyz 503 */
    pthread_mutex_t mu;          /* held while a request reads host */
    keel_host *host;
    keel_admin_reload_fn reload; /* under mu */
    void *reload_arg;
    admin_job *jobs;             /* deploys running; admin thread only */
};

static void reply(h2o_req_t *req, int status, const char *ctype, const char *body, size_t len)
{
    static h2o_generator_t gen = { NULL, NULL };
    req->res.status = status;
    req->res.reason = status == 200 ? "OK" : status == 401 ? "Unauthorized"
                    : status == 403 ? "Forbidden" : status == 404 ? "Not Found"
                    : status == 405 ? "Method Not Allowed" : status == 409 ? "Conflict"
                    : status == 400 ? "Bad Request" : status == 413 ? "Payload Too Large"
                    : status == 422 ? "Unprocessable Entity"
                    : status == 500 ? "Internal Server Error" : "Service Unavailable";
    req->res.content_length = len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, ctype,
                   strlen(ctype));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                   H2O_STRLIT("no-store"));
    h2o_start_response(req, &gen);
    h2o_iovec_t v = h2o_iovec_init(body, len);
    bool head = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
    h2o_send(req, head ? NULL : &v, head ? 0 : 1, H2O_SEND_STATE_FINAL);
}

static void reply_buf(h2o_req_t *req, int status, const char *ctype, keel_buf *b)
{
    /* the body must live as long as req: copy it into the request pool */
    char *body = h2o_mem_alloc_pool(&req->pool, b->len + 1);
    memcpy(body, b->data ? b->data : "", b->len);
    reply(req, status, ctype, body, b->len);
    keel_buf_free(b);
}

/* A JSON error answer {"error": why}; a 401 also names the scheme. */
static void reply_error(h2o_req_t *req, int status, const char *why)
{
    keel_buf b = { 0 };
    if (status == 401)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL,
                       H2O_STRLIT("Bearer"));
    keel_buf_puts(&b, "{\"error\":\"");
    keel_buf_json(&b, why);
    keel_buf_puts(&b, "\"}\n");
    reply_buf(req, status, "application/json", &b);
}

static void job_req_disposed(void *p)
{
    job_link *l = p;
    if (l->j)
        l->j->req = NULL;
}

static void *job_main(void *arg)
{
    admin_job *j = arg;
    j->status = keel_admin_deploy_run(j->h, &j->d, &j->out);
    keel_host_tidy();               /* the template instance's reset, on this thread */
    atomic_store(&j->done, true);
    return NULL;
}

/* Answers (when the request is still there) and frees the jobs that are
 * done, or with all set every job, waiting for it (stopping). */
static void finish_jobs(keel_admin *a, bool all)
{
    for (admin_job **p = &a->jobs; *p;) {
        admin_job *j = *p;
        if (!all && !atomic_load(&j->done)) {
            p = &j->next;
            continue;
        }
        pthread_join(j->thread, NULL);
        *p = j->next;
        if (j->req) {
            j->link->j = NULL;
            if (!all) {
                reply_buf(j->req, j->status, "application/json", &j->out);
            }
        }
        keel_buf_free(&j->out);
        keel_host_unhold(j->h);
        free(j->d.body);
        free(j);
    }
}

/* The NAME of "/admin/components/NAME" (no action after it), or 0. */
static size_t deploy_target(h2o_req_t *req, char *name, size_t len)
{
    static const char pre[] = "/admin/components/";
    h2o_iovec_t p = req->path_normalized;
    if (p.len <= sizeof pre - 1 || memcmp(p.base, pre, sizeof pre - 1) != 0)
        return 0;
    const char *n = p.base + sizeof pre - 1;
    size_t nl = p.len - (sizeof pre - 1);
    if (memchr(n, '/', nl) || nl >= len)
        return 0;
    memcpy(name, n, nl);
    name[nl] = '\0';
    return nl;
}

/* PUT /admin/components/NAME: authorized and prepared here, compiled on a
 * thread of its own; answered by finish_jobs. */
static void start_deploy(keel_admin *a, h2o_req_t *req, const char *name)
{
    keel_buf b = { 0 };
    char why[512], who[KEEL_ADMIN_MAX_LABEL + 1];
    admin_job *j = calloc(1, sizeof *j);
    if (!j)
        abort();
    pthread_mutex_lock(&a->mu);
    keel_host *h = a->host;
    int st = h ? keel_admin_authorize(keel_host_manifest(h), req, who, sizeof who, why,
                                      sizeof why) : 503;
    if (st == 503)
        snprintf(why, sizeof why, "components are still loading");
    if (st) {
        pthread_mutex_unlock(&a->mu);
        keel_log(KEEL_LOG_WARN, "admin", "deploy of %s refused (%d): %s", name, st, why);
        reply_error(req, st, why);
        free(j);
        return;
    }
    if ((st = keel_admin_deploy_prepare(req, name, who, &j->d, &b)) != 0) {
        pthread_mutex_unlock(&a->mu);
        reply_buf(req, st, "application/json", &b);
        free(j);
        return;
    }
    keel_host_hold(h);
    j->h = h;
    pthread_mutex_unlock(&a->mu);
    if (pthread_create(&j->thread, NULL, job_main, j) != 0) {
        st = keel_admin_deploy_run(h, &j->d, &b);   /* no thread: here, then */
        keel_host_unhold(h);
        free(j->d.body);
        free(j);
        reply_buf(req, st, "application/json", &b);
        return;
    }
    j->req = req;
    j->link = h2o_mem_alloc_shared(&req->pool, sizeof *j->link, job_req_disposed);
    j->link->j = j;
    j->next = a->jobs;
    a->jobs = j;
}

void keel_admin_set_reload(keel_admin *a, keel_admin_reload_fn fn, void *arg)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->mu);
    a->reload = fn;
    a->reload_arg = arg;
    pthread_mutex_unlock(&a->mu);
}

/* POST /admin/reload: authorized, then the reload runs without mu held
 * (the new host is attached through keel_admin_set_host). */
static void serve_reload(keel_admin *a, h2o_req_t *req)
{
    keel_buf b = { 0 };
    char why[1024], who[KEEL_ADMIN_MAX_LABEL + 1];
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"))) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT("POST"));
        reply(req, 405, "application/json", H2O_STRLIT("{\"error\":\"method not allowed (POST)\"}\n"));
        return;
    }
    pthread_mutex_lock(&a->mu);
    const keel_manifest *m = a->host ? keel_host_manifest(a->host) : NULL;
    int st = keel_admin_authorize(m, req, who, sizeof who, why, sizeof why);
    keel_admin_reload_fn fn = a->reload;
    void *arg = a->reload_arg;
    pthread_mutex_unlock(&a->mu);
    if (!st && !fn) {
        st = 503;
        snprintf(why, sizeof why, "reloads are not available (still loading, or stopping)");
    }
    if (!st && fn(arg, who, why, sizeof why) != 0)
        st = 422;
    if (st) {
        reply_error(req, st, why);
        return;
    }
    pthread_mutex_lock(&a->mu);
    if (a->host)
        keel_host_state_json(a->host, &b);
    pthread_mutex_unlock(&a->mu);
    reply_buf(req, 200, "application/json", &b);
}

static bool path_is(h2o_req_t *req, const char *p)
{
    size_t n = req->path_normalized.len;
    const char *s = req->path_normalized.base;
    const char *q = memchr(s, '?', n);
    if (q)
        n = (size_t)(q - s);
    return n == strlen(p) && memcmp(s, p, n) == 0;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    keel_admin *a = ((admin_handler *)self)->a;
    bool get = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) ||
               h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
    if (get && (path_is(req, "/admin/components") || path_is(req, "/admin/state"))) {
        keel_buf b = { 0 };
        pthread_mutex_lock(&a->mu);
        keel_host *h = a->host;
        if (h) {
            keel_host_reap(h);
            if (path_is(req, "/admin/state"))
                keel_host_state_json(h, &b);
            else
                keel_host_components_json(h, &b);
        }
        pthread_mutex_unlock(&a->mu);
        if (!h) {
            reply(req, 503, "application/json",
                  H2O_STRLIT("{\"error\":\"components are still loading\"}\n"));
            return 0;
        }
        reply_buf(req, 200, "application/json", &b);
        return 0;
    }
    if (path_is(req, "/admin/reload")) {
        serve_reload(a, req);
        return 0;
    }
    char dname[KEEL_MAX_NAME + 1];
    if (h2o_memis(req->method.base, req->method.len, H2O_STRLIT("PUT")) &&
        deploy_target(req, dname, sizeof dname)) {
        start_deploy(a, req, dname);
        return 0;
    }
    if (keel_admin_is_mutation(req)) {
        keel_buf b = { 0 };
        pthread_mutex_lock(&a->mu);
        int status = keel_admin_mutate(a->host, req, &b);
        if (a->host)
            keel_host_reap(a->host);
        pthread_mutex_unlock(&a->mu);
        if (status == 405)
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL,
                           H2O_STRLIT("POST"));
        if (status == 401)
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL,
                           H2O_STRLIT("Bearer"));
        reply_buf(req, status, "application/json", &b);
        return 0;
    }
    static const char *const known[] = { "/metrics", "/healthz", "/readyz", "/health" };
    bool found = false;
    for (size_t i = 0; i < 4; i++)
        found |= path_is(req, known[i]);
    if (!found) {
        reply(req, 404, "text/plain; charset=utf-8", H2O_STRLIT("not found: the admin "
              "listener serves /metrics, /healthz, /readyz, /health\n"));
        return 0;
    }
    if (!get) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL,
                       H2O_STRLIT("GET, HEAD"));
        reply(req, 405, "text/plain; charset=utf-8", H2O_STRLIT("method not allowed\n"));
        return 0;
    }
    keel_buf b = { 0 };
    pthread_mutex_lock(&a->mu);
    keel_host *h = a->host;
    if (path_is(req, "/healthz")) {
        pthread_mutex_unlock(&a->mu);
        reply(req, 200, "text/plain; charset=utf-8", H2O_STRLIT("ok\n"));
        return 0;
    }
    if (path_is(req, "/metrics")) {
        keel_process_metrics(&b);
        keel_audit_metrics(&b);
        if (h)
            keel_host_metrics(h, &b);
        pthread_mutex_unlock(&a->mu);
        reply_buf(req, 200, "text/plain; version=0.0.4; charset=utf-8", &b);
        return 0;
    }
    if (path_is(req, "/readyz")) {
        char why[256];
        bool draining = atomic_load(&a->draining);
        bool ok = !draining && h && keel_host_ready(h, why, sizeof why);
        pthread_mutex_unlock(&a->mu);
        keel_buf_puts(&b, ok ? "{\"ready\":true}\n" : "{\"ready\":false,\"reason\":\"");
        if (!ok) {
            keel_buf_json(&b, draining ? "draining" : h ? why : "loading components");
            keel_buf_puts(&b, "\"}\n");
        }
        reply_buf(req, ok ? 200 : 503, "application/json", &b);
        return 0;
    }
    /* /health */
    if (!h) {
        pthread_mutex_unlock(&a->mu);
        reply(req, 503, "application/json",
              H2O_STRLIT("{\"status\":\"loading\",\"components\":{}}\n"));
        return 0;
    }
    keel_host_health(h, &b);
    pthread_mutex_unlock(&a->mu);
    reply_buf(req, 200, "application/json", &b);
    return 0;
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    keel_admin *a = listener->data;
    if (err)
        return;
    h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
    if (sock)
        h2o_accept(&a->actx, sock);
}

static void *admin_main(void *arg)
{
    keel_admin *a = arg;
    h2o_context_init(&a->ctx, a->loop, &a->conf);
    a->actx.ctx = &a->ctx;
    a->actx.hosts = a->conf.hosts;
    a->listener = h2o_evloop_socket_create(a->loop, a->fd, H2O_SOCKET_FLAG_DONT_READ);
    a->listener->data = a;
    h2o_socket_read_start(a->listener, on_accept);
    while (!atomic_load(&a->stop)) {
        h2o_evloop_run(a->loop, (int32_t)ADMIN_TICK_MS);
        finish_jobs(a, false);
    }
    finish_jobs(a, true);
    h2o_socket_read_stop(a->listener);
    h2o_socket_close(a->listener);
    h2o_evloop_run(a->loop, 0);
    h2o_multithread_queue_t *queue = a->ctx.queue;
    h2o_context_dispose(&a->ctx);
    h2o_evloop_run(a->loop, 0);
#if H2O_LIBRARY_VERSION_MAJOR == 0 && H2O_LIBRARY_VERSION_MINOR <= 13
    free(queue);   /* h2o 2.2's evloop h2o_multithread_destroy_queue forgets to */
#else
    (void)queue;
#endif
    while (h2o_socket_buffer_prototype.allocator.cnt != 0)
        free(h2o_mem_alloc_recycle(&h2o_socket_buffer_prototype.allocator, 1));
    return NULL;
}

/* A listening socket on addr ("host:port", the forms of the HTTP
 * listener); *port gets the bound port. The fd, or a negative KEEL_E*
 * with err filled. */
static int bind_listen(const char *addr, int *port, char *err, size_t errlen)
{
    keel_http_addr a;
    int fd;
    char why[256];
    int rc = keel_http_parse_listen(addr, &a, why, sizeof why);
    if (rc == 0)
        rc = keel_http_bind(&a, &fd, 1, false, why, sizeof why);
    if (rc != 0)
        return keel_err(err, errlen, rc, "admin %s", why);
    *port = a.port;
    return fd;
}

int keel_admin_start(const char *addr, keel_admin **out, int *port, char *err, size_t errlen)
{
    *out = NULL;
    int fd = bind_listen(addr, port, err, errlen);
    if (fd < 0)
        return fd;
    keel_admin *a = calloc(1, sizeof *a);
    if (!a)
        abort();
    a->fd = fd;
    pthread_mutex_init(&a->mu, NULL);
    h2o_config_init(&a->conf);
    a->conf.server_name = h2o_iovec_init("", 0);
    h2o_hostconf_t *hc = h2o_config_register_host(&a->conf,
                                                  h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pc = h2o_config_register_path(hc, "/", 0);
    admin_handler *hd = (admin_handler *)h2o_create_handler(pc, sizeof *hd);
    hd->super.on_req = on_req;
    hd->a = a;
    a->loop = h2o_evloop_create();
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGPIPE);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    int rc = pthread_create(&a->thread, NULL, admin_main, a);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        h2o_evloop_destroy(a->loop);
        h2o_config_dispose(&a->conf);
        close(fd);
        free(a);
        return keel_err(err, errlen, KEEL_ENOMEM, "cannot start the admin thread");
    }
    *out = a;
    return 0;
}

void keel_admin_set_host(keel_admin *a, keel_host *h)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->mu);
    a->host = h;
    pthread_mutex_unlock(&a->mu);
}

void keel_admin_set_draining(keel_admin *a)
{
    if (a)
        atomic_store(&a->draining, true);
}

void keel_admin_stop(keel_admin *a)
{
    if (!a)
        return;
    atomic_store(&a->stop, true);
    pthread_join(a->thread, NULL);
    h2o_evloop_destroy(a->loop);
    h2o_config_dispose(&a->conf);
    pthread_mutex_destroy(&a->mu);
    free(a);
}
