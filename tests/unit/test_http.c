/* test_http.c — the HTTP front end (src/http) over real sockets on
 * 127.0.0.1, with a fake component host passed through keel_http_host_ops
 * (the real host is not linked into these tests' code paths).
 *
 * Fake routes: /hello GET|HEAD -> 200 "hi"; /slow -> sleeps 200 ms, 200;
 * /big -> echoes the body (limits.body 1024); /busy -> admit refuses;
 * /hdrs -> sets framing headers a guest may not set; /nocontent -> 204;
 * /meta -> "METHOD PATH QUERY REMOTE HOST PROTOCOL ID"; /late -> timeout 1 ns. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/errors.h"
#include "http/server_int.h"

/* ------------------------------------------------------------ fake host */

enum { C_HELLO, C_SLOW, C_BIG, C_BUSY, C_HDRS, C_NOCONTENT, C_META, C_LATE, C_COUNT };

static keel_component_cfg fake_cfg[C_COUNT];
static atomic_int fake_admits, fake_releases, fake_handled;

static void fake_init(void)
{
    static char *names[C_COUNT] = { "hello", "slow", "big", "busy", "hdrs", "nocontent", "meta",
                                    "late" };
    for (int i = 0; i < C_COUNT; i++) {
        fake_cfg[i].name = names[i];
        fake_cfg[i].limits.body = 1u << 20;
        fake_cfg[i].limits.timeout_ns = 5000000000ull;
        fake_cfg[i].limits.concurrency = 64;
    }
    fake_cfg[C_BIG].limits.body = 1024;
    fake_cfg[C_LATE].limits.timeout_ns = 1;   /* past before any worker picks it up */
}

static int fake_match(void *ctx, const char *method, size_t method_len, const char *path,
                      size_t path_len, keel_route_match *out)
{
    (void)ctx;
    static const char *const paths[C_COUNT] = { "/hello", "/slow", "/big", "/busy", "/hdrs",
                                                "/nocontent", "/meta", "/late" };
    for (size_t i = 0; i < C_COUNT; i++) {
        if (path_len != strlen(paths[i]) || memcmp(path, paths[i], path_len) != 0)
            continue;
        if (i == C_HELLO && !(method_len == 3 && memcmp(method, "GET", 3) == 0) &&
            !(method_len == 4 && memcmp(method, "HEAD", 4) == 0))
            return 405;
        out->component = i;
        out->route = NULL;
        return 0;
    }
    return 404;
}

static const keel_component_cfg *fake_component(void *ctx, size_t i)
{
    (void)ctx;
    return i < C_COUNT ? &fake_cfg[i] : NULL;
}

static bool fake_admit(void *ctx, size_t c)
{
    (void)ctx;
    if (c == C_BUSY)
        return false;
    atomic_fetch_add(&fake_admits, 1);
    return true;
}

static void fake_release(void *ctx, size_t c)
{
    (void)ctx;
    (void)c;
    atomic_fetch_add(&fake_releases, 1);
}

static char *dupn(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

static void set_body(keel_response *r, const char *s, size_t n)
{
    r->body = dupn(s, n);
    r->body_len = n;
}

static void add_hdr(keel_response *r, const char *name, const char *value)
{
    r->headers = realloc(r->headers, (r->nheaders + 1) * sizeof *r->headers);
    keel_header *h = &r->headers[r->nheaders++];
    h->name = dupn(name, strlen(name));
    h->name_len = strlen(name);
    h->value = dupn(value, strlen(value));
    h->value_len = strlen(value);
}

static void fake_handle(void *ctx, const keel_route_match *m, const keel_request *req,
                        keel_response *resp)
{
    (void)ctx;
    memset(resp, 0, sizeof *resp);
    resp->status = 200;
    atomic_fetch_add(&fake_handled, 1);
    switch (m->component) {
    case C_SLOW:
        usleep(200 * 1000);
        set_body(resp, "slow", 4);
        break;
    case C_BIG:
        set_body(resp, req->body, req->body_len);
        break;
    case C_HDRS:
        add_hdr(resp, "Content-Length", "999");
        add_hdr(resp, "Connection", "close");
        add_hdr(resp, "Transfer-Encoding", "chunked");
        add_hdr(resp, "X-Request-Id", "guest-id");
        add_hdr(resp, "X-Custom", "yes");
        add_hdr(resp, "Content-Type", "text/x-test");
        set_body(resp, "hdrs", 4);
        break;
    case C_NOCONTENT:
        resp->status = 204;
        break;
    case C_META: {
        const char *host = "-";
        size_t host_len = 1;
        for (size_t i = 0; i < req->nheaders; i++)
            if (req->headers[i].name_len == 4 && memcmp(req->headers[i].name, "host", 4) == 0) {
                host = req->headers[i].value;
                host_len = req->headers[i].value_len;
            }
        char buf[1024];
        int n = snprintf(buf, sizeof buf, "%.*s %.*s %.*s %s %.*s %s %s", (int)req->method_len,
                         req->method, (int)req->path_len, req->path, (int)req->query_len,
                         req->query, req->remote_addr, (int)host_len, host, req->protocol,
                         req->request_id);
        set_body(resp, buf, (size_t)n);
        break;
    }
    default:
        set_body(resp, "hi", 2);
        break;
    }
}

static void fake_response_free(void *ctx, keel_response *r)
{
    (void)ctx;
    for (size_t i = 0; i < r->nheaders; i++) {
        free((char *)r->headers[i].name);
        free((char *)r->headers[i].value);
    }
    free(r->headers);
    free(r->body);
    memset(r, 0, sizeof *r);
}

static const keel_http_host_ops fake_ops = {
    .match = fake_match,
    .component = fake_component,
    .admit = fake_admit,
    .release = fake_release,
    .handle = fake_handle,
    .response_free = fake_response_free,
};

/* --------------------------------------------------------------- server */

typedef struct server {
    pthread_t th;
    volatile sig_atomic_t stop;
    keel_http_opts o;
    atomic_int port, done;
    int rc;
    char err[256];
} server;

static void on_ready(void *arg, int port)
{
    atomic_store(&((server *)arg)->port, port);
}

static void *serve_thread(void *arg)
{
    server *sv = arg;
    sv->rc = keel_http_serve_ops(&fake_ops, NULL, &sv->o, &sv->stop, sv->err, sizeof sv->err);
    atomic_store(&sv->done, 1);
    return NULL;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static server *server_start(unsigned max_conns, unsigned header_timeout_ms)
{
    server *sv = calloc(1, sizeof *sv);
    sv->o.listen = "127.0.0.1:0";
    sv->o.loops = 2;
    sv->o.workers = 4;
    sv->o.max_connections = max_conns;
    sv->o.header_timeout_ms = header_timeout_ms;
    sv->o.ready = on_ready;
    sv->o.ready_arg = sv;
    assert_int_equal(pthread_create(&sv->th, NULL, serve_thread, sv), 0);
    uint64_t until = now_ms() + 5000;
    while (atomic_load(&sv->port) == 0 && !atomic_load(&sv->done) && now_ms() < until)
        usleep(1000);
    assert_int_not_equal(atomic_load(&sv->port), 0);
    return sv;
}

/* Stops the server; returns serve's result and the ms it took. */
static int server_stop(server *sv, uint64_t *took_ms)
{
    uint64_t t0 = now_ms();
    __atomic_store_n(&sv->stop, 1, __ATOMIC_RELAXED);
    pthread_join(sv->th, NULL);
    if (took_ms)
        *took_ms = now_ms() - t0;
    int rc = sv->rc;
    free(sv);
    return rc;
}

/* --------------------------------------------------------------- client */

typedef struct client {
    int fd;
    char buf[1 << 16];
    size_t len;
} client;

typedef struct resp {
    int status;
    char head[32768];
    char body[1 << 16];
    size_t body_len;
} resp;

static client *cl_open(int port)
{
    client *c = calloc(1, sizeof *c);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(c->fd >= 0);
    struct timeval tv = { .tv_sec = 3 };
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    assert_int_equal(connect(c->fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return c;
}

static void cl_close(client *c)
{
    close(c->fd);
    free(c);
}

static void cl_send(client *c, const char *s, size_t n)
{
    while (n) {
        ssize_t w = send(c->fd, s, n, MSG_NOSIGNAL);
        assert_true(w > 0);
        s += w;
        n -= (size_t)w;
    }
}

static void cl_sends(client *c, const char *s)
{
    cl_send(c, s, strlen(s));
}

/* Reads more into c->buf: >0 bytes, 0 at EOF, -1 on timeout or error. */
static ssize_t cl_fill(client *c)
{
    if (c->len == sizeof c->buf)
        return -1;
    ssize_t n = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
    if (n > 0)
        c->len += (size_t)n;
    return n;
}

/* Value of header name in r (case-insensitive), or NULL. */
static const char *hdr(const resp *r, const char *name, char *out, size_t outlen)
{
    size_t n = strlen(name);
    for (const char *p = strstr(r->head, "\r\n"); p != NULL; p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, name, n) == 0 && p[2 + n] == ':') {
            const char *v = p + 3 + n;
            while (*v == ' ')
                v++;
            const char *e = strstr(v, "\r\n");
            size_t len = (size_t)(e - v) < outlen - 1 ? (size_t)(e - v) : outlen - 1;
            memcpy(out, v, len);
            out[len] = '\0';
            return out;
        }
    }
    return NULL;
}

static int hdr_count(const resp *r, const char *name)
{
    int count = 0;
    size_t n = strlen(name);
    for (const char *p = strstr(r->head, "\r\n"); p != NULL; p = strstr(p + 2, "\r\n"))
        if (strncasecmp(p + 2, name, n) == 0 && p[2 + n] == ':')
            count++;
    return count;
}

/* Reads one response; 0, or -1 if the connection ended or timed out first. */
static int cl_read(client *c, resp *r, bool head_request)
{
    memset(r, 0, offsetof(resp, body));
    r->body_len = 0;
    char *end;
    for (;;) {
        c->buf[c->len < sizeof c->buf ? c->len : sizeof c->buf - 1] = '\0';
        end = c->len ? memmem(c->buf, c->len, "\r\n\r\n", 4) : NULL;
        if (end)
            break;
        if (cl_fill(c) <= 0)
            return -1;
    }
    size_t hlen = (size_t)(end - c->buf) + 4;
    assert_true(hlen < sizeof r->head);
    memcpy(r->head, c->buf, hlen);
    r->head[hlen] = '\0';
    if (sscanf(r->head, "HTTP/1.%*d %d", &r->status) != 1)
        return -1;
    char v[64];
    size_t clen = 0;
    bool has_len = hdr(r, "content-length", v, sizeof v) != NULL;
    if (has_len)
        clen = strtoull(v, NULL, 10);
    if (head_request || r->status == 204 || r->status == 304)
        clen = 0;
    else if (!has_len) {
        /* read to EOF */
        while (cl_fill(c) > 0)
            ;
        clen = c->len - hlen;
    }
    while (c->len < hlen + clen)
        if (cl_fill(c) <= 0)
            return -1;
    assert_true(clen < sizeof r->body);
    memcpy(r->body, c->buf + hlen, clen);
    r->body[clen] = '\0';
    r->body_len = clen;
    memmove(c->buf, c->buf + hlen + clen, c->len - hlen - clen);
    c->len -= hlen + clen;
    return 0;
}

/* One request on a fresh connection. */
static int roundtrip(int port, const char *req, resp *r)
{
    client *c = cl_open(port);
    cl_sends(c, req);
    int rc = cl_read(c, r, strncmp(req, "HEAD ", 5) == 0);
    cl_close(c);
    return rc;
}

/* True when the server closes c within ms (EOF or reset). */
static bool closed_within(client *c, int ms)
{
    struct pollfd p = { .fd = c->fd, .events = POLLIN };
    uint64_t until = now_ms() + (uint64_t)ms;
    while (now_ms() < until) {
        if (poll(&p, 1, 50) == 1) {
            char b[4096];
            ssize_t n = recv(c->fd, b, sizeof b, 0);
            if (n <= 0)
                return true;
        }
    }
    return false;
}

/* ---------------------------------------------------------------- tests */

static server *shared;

static int group_setup(void **state)
{
    (void)state;
    fake_init();
    shared = server_start(0, 1000);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    uint64_t took;
    int rc = server_stop(shared, &took);
    if (rc != 0 || atomic_load(&fake_admits) != atomic_load(&fake_releases)) {
        fprintf(stderr, "stop rc %d, admits %d, releases %d\n", rc, atomic_load(&fake_admits),
                atomic_load(&fake_releases));
        return -1;
    }
    return 0;
}

static void hello_200(void **state)
{
    (void)state;
    resp r;
    char v[128];
    assert_int_equal(roundtrip(atomic_load(&shared->port),
                               "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "hi");
    assert_non_null(hdr(&r, "content-length", v, sizeof v));
    assert_string_equal(v, "2");
    assert_non_null(hdr(&r, "x-request-id", v, sizeof v));
    assert_int_equal(strlen(v), 16);
    assert_int_equal(strspn(v, "0123456789abcdef"), 16);
    assert_null(hdr(&r, "server", v, sizeof v));
}

static void request_id_honoured(void **state)
{
    (void)state;
    int port = atomic_load(&shared->port);
    resp r;
    char v[128];
    assert_int_equal(roundtrip(port, "GET /hello HTTP/1.1\r\nX-Request-Id: abc-123.DEF_x\r\n\r\n",
                               &r), 0);
    assert_string_equal(hdr(&r, "x-request-id", v, sizeof v), "abc-123.DEF_x");
    /* the guest sees it too */
    assert_int_equal(roundtrip(port, "GET /meta HTTP/1.1\r\nX-Request-Id: trace.7\r\n\r\n", &r), 0);
    assert_non_null(strstr(r.body, " trace.7"));
    /* malformed: replaced */
    assert_int_equal(roundtrip(port, "GET /hello HTTP/1.1\r\nX-Request-Id: bad id!\r\n\r\n", &r), 0);
    assert_int_equal(strlen(hdr(&r, "x-request-id", v, sizeof v)), 16);
    char req[256];
    snprintf(req, sizeof req, "GET /hello HTTP/1.1\r\nX-Request-Id: %065d\r\n\r\n", 7);
    assert_int_equal(roundtrip(port, req, &r), 0);
    assert_int_equal(strlen(hdr(&r, "x-request-id", v, sizeof v)), 16);
}

static void not_found_and_method(void **state)
{
    (void)state;
    int port = atomic_load(&shared->port);
    resp r;
    char v[128];
    assert_int_equal(roundtrip(port, "GET /nope HTTP/1.1\r\n\r\n", &r), 0);
    assert_int_equal(r.status, 404);
    assert_non_null(hdr(&r, "x-request-id", v, sizeof v));
    assert_non_null(strstr(r.body, v));
    assert_int_equal(roundtrip(port, "POST /hello HTTP/1.1\r\nContent-Length: 0\r\n\r\n", &r), 0);
    assert_int_equal(r.status, 405);
    assert_string_equal(hdr(&r, "allow", v, sizeof v), "GET, HEAD");
    assert_non_null(hdr(&r, "x-request-id", v, sizeof v));
}

static void body_limits(void **state)
{
    (void)state;
    int port = atomic_load(&shared->port);
    resp r;
    char req[4096];
    char body[2001];
    memset(body, 'b', 2000);
    body[2000] = '\0';
    /* within the component's limit: echoed */
    snprintf(req, sizeof req, "POST /big HTTP/1.1\r\nContent-Length: 100\r\n\r\n%.100s", body);
    assert_int_equal(roundtrip(port, req, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 100);
    /* over /big's 1024 but under the largest limit: Keel's 413 */
    snprintf(req, sizeof req, "POST /big HTTP/1.1\r\nContent-Length: 2000\r\n\r\n%s", body);
    assert_int_equal(roundtrip(port, req, &r), 0);
    assert_int_equal(r.status, 413);
    char v[64];
    assert_non_null(hdr(&r, "x-request-id", v, sizeof v));
    /* chunked, over the limit */
    client *c = cl_open(port);
    cl_sends(c, "POST /big HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n7d0\r\n");
    cl_sends(c, body);
    cl_sends(c, "\r\n0\r\n\r\n");
    assert_int_equal(cl_read(c, &r, false), 0);
    assert_int_equal(r.status, 413);
    cl_close(c);
    /* over every component's limit: h2o refuses before reading the body */
    assert_int_equal(roundtrip(port, "POST /big HTTP/1.1\r\nContent-Length: 5000000\r\n\r\n", &r), 0);
    assert_int_equal(r.status, 413);
}

static void busy_503(void **state)
{
    (void)state;
    resp r;
    char v[64];
    assert_int_equal(roundtrip(atomic_load(&shared->port), "GET /busy HTTP/1.1\r\n\r\n", &r), 0);
    assert_int_equal(r.status, 503);
    assert_string_equal(hdr(&r, "retry-after", v, sizeof v), "1");
    assert_non_null(hdr(&r, "x-request-id", v, sizeof v));
}

static void deadline_while_queued(void **state)
{
    (void)state;
    int handled = atomic_load(&fake_handled);
    resp r;
    char v[64];
    assert_int_equal(roundtrip(atomic_load(&shared->port), "GET /late HTTP/1.1\r\n\r\n", &r), 0);
    assert_int_equal(r.status, 504);
    assert_non_null(hdr(&r, "x-request-id", v, sizeof v));
    assert_non_null(strstr(r.body, v));
    assert_int_equal(atomic_load(&fake_handled), handled);   /* never ran */
}

static void oversized_headers(void **state)
{
    (void)state;
    int port = atomic_load(&shared->port);
    size_t big = 20 * 1024;
    char *req = malloc(big + 256);
    int n = sprintf(req, "GET /hello HTTP/1.1\r\nX-Big: ");
    memset(req + n, 'a', big);
    strcpy(req + n + big, "\r\n\r\n");
    resp r;
    assert_int_equal(roundtrip(port, req, &r), 0);
    assert_int_equal(r.status, 431);
    free(req);

    /* far beyond h2o's own limit (~400 KiB): a 4xx or a closed connection */
    big = 600 * 1024;
    req = malloc(big + 256);
    n = sprintf(req, "GET /hello HTTP/1.1\r\nX-Big: ");
    memset(req + n, 'a', big);
    strcpy(req + n + big, "\r\n\r\n");
    client *c = cl_open(port);
    size_t off = 0, len = strlen(req);
    while (off < len) {
        ssize_t w = send(c->fd, req + off, len - off, MSG_NOSIGNAL);
        if (w <= 0)
            break;           /* server closed on us: acceptable */
        off += (size_t)w;
    }
    if (cl_read(c, &r, false) == 0)
        assert_true(r.status >= 400 && r.status < 500);
    cl_close(c);
    free(req);

    /* and the server lives */
    assert_int_equal(roundtrip(port, "GET /hello HTTP/1.1\r\n\r\n", &r), 0);
    assert_int_equal(r.status, 200);
}

static void keep_alive(void **state)
{
    (void)state;
    client *c = cl_open(atomic_load(&shared->port));
    resp r;
    char id1[64], id2[64];
    cl_sends(c, "GET /hello HTTP/1.1\r\n\r\n");
    assert_int_equal(cl_read(c, &r, false), 0);
    assert_int_equal(r.status, 200);
    hdr(&r, "x-request-id", id1, sizeof id1);
    cl_sends(c, "GET /hello HTTP/1.1\r\n\r\n");
    assert_int_equal(cl_read(c, &r, false), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "hi");
    hdr(&r, "x-request-id", id2, sizeof id2);
    assert_string_not_equal(id1, id2);
    /* HEAD keeps Content-Length and sends no body; the connection stays usable */
    cl_sends(c, "HEAD /hello HTTP/1.1\r\n\r\n");
    assert_int_equal(cl_read(c, &r, true), 0);
    char v[32];
    assert_string_equal(hdr(&r, "content-length", v, sizeof v), "2");
    cl_sends(c, "GET /nocontent HTTP/1.1\r\n\r\n");
    assert_int_equal(cl_read(c, &r, false), 0);
    assert_int_equal(r.status, 204);
    assert_null(hdr(&r, "transfer-encoding", v, sizeof v));
    cl_sends(c, "GET /hello HTTP/1.1\r\n\r\n");
    assert_int_equal(cl_read(c, &r, false), 0);
    assert_string_equal(r.body, "hi");
    cl_close(c);
}

static void pipelined(void **state)
{
    (void)state;
    client *c = cl_open(atomic_load(&shared->port));
    cl_sends(c, "GET /slow HTTP/1.1\r\n\r\n"
                "POST /big HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
                "GET /nope HTTP/1.1\r\n\r\n"
                "GET /hello HTTP/1.1\r\n\r\n");
    resp r;
    assert_int_equal(cl_read(c, &r, false), 0);
    assert_string_equal(r.body, "slow");
    assert_int_equal(cl_read(c, &r, false), 0);
    assert_string_equal(r.body, "hello");
    assert_int_equal(cl_read(c, &r, false), 0);
    assert_int_equal(r.status, 404);
    assert_int_equal(cl_read(c, &r, false), 0);
    assert_string_equal(r.body, "hi");
    cl_close(c);
}

static void slow_does_not_block(void **state)
{
    (void)state;
    int port = atomic_load(&shared->port);
    client *slow[4];
    for (int i = 0; i < 4; i++) {   /* as many as there are loops x 2 */
        slow[i] = cl_open(port);
        cl_sends(slow[i], "GET /slow HTTP/1.1\r\n\r\n");
    }
    usleep(20 * 1000);
    uint64_t worst = 0;
    for (int i = 0; i < 5; i++) {
        uint64_t t0 = now_ms();
        resp r;
        assert_int_equal(roundtrip(port, "GET /meta HTTP/1.1\r\n\r\n", &r), 0);
        uint64_t dt = now_ms() - t0;
        if (dt > worst)
            worst = dt;
    }
    /* 4 workers, 4 /slow running: /meta queues behind them at most ~200 ms
     * in the worst case; what matters is the loops keep answering what they
     * can answer at once */
    (void)worst;
    uint64_t t0 = now_ms();
    resp r;
    assert_int_equal(roundtrip(port, "GET /nope HTTP/1.1\r\n\r\n", &r), 0);
    assert_true(now_ms() - t0 < 100);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(cl_read(slow[i], &r, false), 0);
        assert_string_equal(r.body, "slow");
        cl_close(slow[i]);
    }
    /* one /slow, free workers: /hello answers well within 100 ms */
    client *s1 = cl_open(port);
    cl_sends(s1, "GET /slow HTTP/1.1\r\n\r\n");
    usleep(20 * 1000);
    t0 = now_ms();
    assert_int_equal(roundtrip(port, "GET /hello HTTP/1.1\r\n\r\n", &r), 0);
    assert_true(now_ms() - t0 < 100);
    assert_int_equal(cl_read(s1, &r, false), 0);
    assert_string_equal(r.body, "slow");
    cl_close(s1);
}

static void client_disconnects(void **state)
{
    (void)state;
    int port = atomic_load(&shared->port);
    int handled = atomic_load(&fake_handled);
    /* gone while the worker runs */
    for (int i = 0; i < 3; i++) {
        client *c = cl_open(port);
        cl_sends(c, "GET /slow HTTP/1.1\r\n\r\n");
        usleep(10 * 1000);
        struct linger lg = { .l_onoff = 1, .l_linger = 0 };   /* RST */
        if (i == 0)
            setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        cl_close(c);
    }
    /* gone mid-head and mid-body */
    client *c = cl_open(port);
    cl_sends(c, "GET /hel");
    cl_close(c);
    c = cl_open(port);
    cl_sends(c, "POST /big HTTP/1.1\r\nContent-Length: 100\r\n\r\nabc");
    cl_close(c);
    usleep(400 * 1000);     /* the /slow responses come back to dead sockets */
    assert_true(atomic_load(&fake_handled) >= handled + 3);
    resp r;
    assert_int_equal(roundtrip(port, "GET /hello HTTP/1.1\r\n\r\n", &r), 0);
    assert_int_equal(r.status, 200);
}

static void guest_headers_filtered(void **state)
{
    (void)state;
    client *c = cl_open(atomic_load(&shared->port));
    resp r;
    char v[64];
    cl_sends(c, "GET /hdrs HTTP/1.1\r\n\r\n");
    assert_int_equal(cl_read(c, &r, false), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "hdrs");
    assert_string_equal(hdr(&r, "x-custom", v, sizeof v), "yes");
    assert_string_equal(hdr(&r, "content-type", v, sizeof v), "text/x-test");
    assert_int_equal(hdr_count(&r, "content-length"), 1);
    assert_string_equal(hdr(&r, "content-length", v, sizeof v), "4");
    assert_int_equal(hdr_count(&r, "transfer-encoding"), 0);
    assert_int_equal(hdr_count(&r, "x-request-id"), 1);
    assert_string_not_equal(hdr(&r, "x-request-id", v, sizeof v), "guest-id");
    assert_string_equal(hdr(&r, "connection", v, sizeof v), "keep-alive");
    cl_sends(c, "GET /hello HTTP/1.1\r\n\r\n");   /* still open */
    assert_int_equal(cl_read(c, &r, false), 0);
    assert_string_equal(r.body, "hi");
    cl_close(c);
}

static void request_metadata(void **state)
{
    (void)state;
    int port = atomic_load(&shared->port);
    resp r;
    assert_int_equal(roundtrip(port, "GET /meta?x=1&y=%20 HTTP/1.1\r\nHost: example.test\r\n"
                                     "X-Request-Id: m1\r\n\r\n", &r), 0);
    assert_string_equal(r.body, "GET /meta x=1&y=%20 127.0.0.1 example.test HTTP/1.1 m1");
    /* dot segments are resolved before routing */
    assert_int_equal(roundtrip(port, "GET /x/../meta HTTP/1.0\r\nX-Request-Id: m2\r\n\r\n", &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "GET /meta  127.0.0.1 - HTTP/1.0 m2");
    /* absolute-form target; unreserved %XX decoded for routing */
    assert_int_equal(roundtrip(port, "GET http://h.test/m%65ta?q=1 HTTP/1.1\r\nHost: h.test\r\n"
                                     "X-Request-Id: m3\r\n\r\n", &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "GET /meta q=1 127.0.0.1 h.test HTTP/1.1 m3");
}

static void slowloris_cut(void **state)
{
    (void)state;
    client *c = cl_open(atomic_load(&shared->port));
    cl_sends(c, "GET /hello HTTP/1.1\r\nX-A: 1\r\n");
    uint64_t t0 = now_ms();
    assert_true(closed_within(c, 3000));
    uint64_t dt = now_ms() - t0;
    assert_true(dt >= 500 && dt < 2500);   /* header timeout is 1000 ms here */
    cl_close(c);
}

static void max_connections(void **state)
{
    (void)state;
    server *sv = server_start(2, 0);
    int port = atomic_load(&sv->port);
    resp r;
    client *a = cl_open(port), *b = cl_open(port);
    cl_sends(a, "GET /hello HTTP/1.1\r\n\r\n");
    assert_int_equal(cl_read(a, &r, false), 0);
    cl_sends(b, "GET /hello HTTP/1.1\r\n\r\n");
    assert_int_equal(cl_read(b, &r, false), 0);
    /* the third waits in the kernel's queue */
    client *c3 = cl_open(port);
    cl_sends(c3, "GET /hello HTTP/1.1\r\n\r\n");
    struct pollfd p = { .fd = c3->fd, .events = POLLIN };
    assert_int_equal(poll(&p, 1, 300), 0);
    cl_close(a);
    uint64_t t0 = now_ms();
    assert_int_equal(cl_read(c3, &r, false), 0);
    assert_int_equal(r.status, 200);
    assert_true(now_ms() - t0 < 1000);
    cl_close(b);
    cl_close(c3);
    assert_int_equal(server_stop(sv, NULL), 0);
}

static void clean_stop(void **state)
{
    (void)state;
    server *sv = server_start(0, 0);
    int port = atomic_load(&sv->port);
    client *idle = cl_open(port);
    resp r;
    cl_sends(idle, "GET /hello HTTP/1.1\r\n\r\n");
    assert_int_equal(cl_read(idle, &r, false), 0);
    client *busy = cl_open(port);
    cl_sends(busy, "GET /slow HTTP/1.1\r\n\r\n");
    usleep(30 * 1000);
    uint64_t t0 = now_ms();
    __atomic_store_n(&sv->stop, 1, __ATOMIC_RELAXED);
    /* the request in flight completes, and its connection then closes */
    assert_int_equal(cl_read(busy, &r, false), 0);
    assert_int_equal(r.status, 200);
    char v[32];
    assert_string_equal(hdr(&r, "connection", v, sizeof v), "close");
    assert_true(closed_within(busy, 1000));
    assert_true(closed_within(idle, 1000));
    pthread_join(sv->th, NULL);
    assert_true(now_ms() - t0 < 2000);
    assert_int_equal(sv->rc, 0);
    free(sv);
    cl_close(busy);
    cl_close(idle);
    /* the port is free again: nothing listens */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    assert_int_not_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    close(fd);
}

static void port_in_use(void **state)
{
    (void)state;
    char listen_at[64];
    snprintf(listen_at, sizeof listen_at, "127.0.0.1:%d", atomic_load(&shared->port));
    keel_http_opts o = { .listen = listen_at, .loops = 1, .workers = 1 };
    volatile sig_atomic_t stop = 1;
    char err[256] = "";
    assert_int_equal(keel_http_serve_ops(&fake_ops, NULL, &o, &stop, err, sizeof err), KEEL_EIO);
    assert_non_null(strstr(err, listen_at));
    assert_non_null(strstr(err, "in use"));
}

static void listen_parse(void **state)
{
    (void)state;
    keel_http_addr a;
    char err[256];
    assert_int_equal(keel_http_parse_listen("127.0.0.1:8080", &a, err, sizeof err), 0);
    assert_string_equal(a.host, "127.0.0.1");
    assert_int_equal(a.port, 8080);
    assert_int_equal(a.ss.ss_family, AF_INET);
    assert_int_equal(keel_http_parse_listen(":9000", &a, err, sizeof err), 0);
    assert_string_equal(a.host, "0.0.0.0");
    assert_int_equal(a.port, 9000);
    assert_int_equal(keel_http_parse_listen("[::1]:8080", &a, err, sizeof err), 0);
    assert_string_equal(a.host, "::1");
    assert_int_equal(a.ss.ss_family, AF_INET6);
    assert_int_equal(keel_http_parse_listen("[::]:0", &a, err, sizeof err), 0);
    assert_int_equal(a.port, 0);
    assert_int_equal(keel_http_parse_listen("localhost:80", &a, err, sizeof err), 0);
    const char *bad[] = { "", "8080", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:8x",
                          "::1:8080", "[::1]8080", "[1.2.3.4]:80", "no.such.host.invalid:80" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_int_equal(keel_http_parse_listen(bad[i], &a, err, sizeof err), KEEL_EINVAL);
        assert_true(strlen(err) > 0);
    }
}

static void ipv6_listen(void **state)
{
    (void)state;
    server *sv = calloc(1, sizeof *sv);
    sv->o.listen = "[::1]:0";
    sv->o.loops = 1;
    sv->o.workers = 1;
    sv->o.ready = on_ready;
    sv->o.ready_arg = sv;
    assert_int_equal(pthread_create(&sv->th, NULL, serve_thread, sv), 0);
    uint64_t until = now_ms() + 5000;
    while (atomic_load(&sv->port) == 0 && !atomic_load(&sv->done) && now_ms() < until)
        usleep(1000);
    if (atomic_load(&sv->done)) {   /* no IPv6 on this machine */
        pthread_join(sv->th, NULL);
        free(sv);
        skip();
    }
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 sa = { .sin6_family = AF_INET6,
                               .sin6_port = htons((uint16_t)atomic_load(&sv->port)) };
    inet_pton(AF_INET6, "::1", &sa.sin6_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    const char *req = "GET /meta HTTP/1.1\r\nX-Request-Id: v6\r\n\r\n";
    assert_int_equal(send(fd, req, strlen(req), 0), (ssize_t)strlen(req));
    char buf[4096];
    size_t got = 0;
    while (got < sizeof buf - 1) {
        ssize_t n = recv(fd, buf + got, sizeof buf - 1 - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
        buf[got] = '\0';
        if (strstr(buf, " v6"))
            break;
    }
    assert_non_null(strstr(buf, "GET /meta  ::1 - HTTP/1.1 v6"));
    close(fd);
    assert_int_equal(server_stop(sv, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(listen_parse),
        cmocka_unit_test(hello_200),
        cmocka_unit_test(request_id_honoured),
        cmocka_unit_test(not_found_and_method),
        cmocka_unit_test(body_limits),
        cmocka_unit_test(busy_503),
        cmocka_unit_test(deadline_while_queued),
        cmocka_unit_test(oversized_headers),
        cmocka_unit_test(keep_alive),
        cmocka_unit_test(pipelined),
        cmocka_unit_test(slow_does_not_block),
        cmocka_unit_test(client_disconnects),
        cmocka_unit_test(guest_headers_filtered),
        cmocka_unit_test(request_metadata),
        cmocka_unit_test(slowloris_cut),
        cmocka_unit_test(port_in_use),
        cmocka_unit_test(max_connections),
        cmocka_unit_test(clean_stop),
        cmocka_unit_test(ipv6_listen),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
