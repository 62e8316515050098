/* admin.c — see admin.h. One thread, one h2o_evloop_t, one listening
 * socket; every request is answered inline on that thread (the answers are
 * built from lock-free counters, so a scrape never waits on requests). */
#define H2O_USE_EPOLL 1
#include <h2o.h>

#include "admin/admin.h"
#include "admin/admin_int.h"

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
};

static void reply(h2o_req_t *req, int status, const char *ctype, const char *body, size_t len)
{
    static h2o_generator_t gen = { NULL, NULL };
    req->res.status = status;
    req->res.reason = status == 200 ? "OK" : status == 401 ? "Unauthorized"
                    : status == 403 ? "Forbidden" : status == 404 ? "Not Found"
                    : status == 405 ? "Method Not Allowed" : status == 422 ? "Unprocessable Entity"
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
    if (keel_admin_is_mutation(req)) {
        keel_buf b = { 0 };
        pthread_mutex_lock(&a->mu);
        int status = keel_admin_mutate(a->host, req, &b);
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
    while (!atomic_load(&a->stop))
        h2o_evloop_run(a->loop, (int32_t)ADMIN_TICK_MS);
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
