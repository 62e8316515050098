/* otlp_http.c — the exporter's HTTP/1.1 client: one POST at a time to the
 * collector, over a connection kept open between batches when the
 * collector allows it (an answer with Content-Length, no "Connection:
 * close", HTTP/1.1). A kept connection the collector closed in between is
 * noticed on the next POST, which then reconnects once. Every connect,
 * send and receive waits at most KEEL_TRACE_IO_TIMEOUT_MS. */
#include "obs/otlp_http.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "obs/trace.h"

/* Answer headers read at most; a longer head ends the connection. */
#define OTLP_HEAD_MAX 4096u
/* Answer body read (and discarded) at most to keep the connection. */
#define OTLP_BODY_MAX (1u << 20)

static int wait_fd(int fd, short ev)
{
    struct pollfd p = { .fd = fd, .events = ev };
    int r;
    do
        r = poll(&p, 1, KEEL_TRACE_IO_TIMEOUT_MS);
    while (r < 0 && errno == EINTR);
    return r == 1 ? 0 : -1;
}

void otlp_conn_close(otlp_conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

static int connect_to(otlp_conn *c, const char *host, const char *port, char *why,
                      size_t whylen)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        snprintf(why, whylen, "%s: %s", host, gai_strerror(rc));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        freeaddrinfo(res);
        snprintf(why, whylen, "socket: %s", strerror(errno));
        return -1;
    }
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (connect(fd, res->ai_addr, res->ai_addrlen) != 0 && errno != EINPROGRESS) {
        snprintf(why, whylen, "connect %s:%s: %s", host, port, strerror(errno));
    } else if (wait_fd(fd, POLLOUT) || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) ||
               soerr) {
        snprintf(why, whylen, "connect %s:%s: %s", host, port,
                 soerr ? strerror(soerr) : "timed out");
    } else {
        /* A kept connection sends a POST and waits for its answer: without
         * this, the last segment of a batch can wait for the collector's
         * delayed ACK (40 ms a batch). */
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        freeaddrinfo(res);
        c->fd = fd;
        return 0;
    }
    freeaddrinfo(res);
    close(fd);
    return -1;
}

/* flags: MSG_MORE for a part that more follows (the request head), so
 * head and body leave together. */
static int send_all(int fd, const char *p, size_t n, int flags, char *why, size_t whylen)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL | flags);
        if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (wait_fd(fd, POLLOUT)) {
                snprintf(why, whylen, "send: timed out");
                return -1;
            }
            continue;
        }
        if (w <= 0) {
            snprintf(why, whylen, "send: %s", w < 0 ? strerror(errno) : "closed");
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads up to cap bytes: > 0 read, 0 the peer closed, -1 error or timeout. */
static ssize_t recv_some(int fd, char *p, size_t cap)
{
    for (;;) {
        ssize_t r = recv(fd, p, cap, 0);
        if (r >= 0)
            return r;
        if (errno != EAGAIN && errno != EINTR)
            return -1;
        if (wait_fd(fd, POLLIN))
            return -1;
    }
}

/* The value of header name in head (NUL-terminated, lines CRLF), or NULL. */
static const char *header_value(const char *head, const char *name)
{
    size_t n = strlen(name);
    for (const char *l = strstr(head, "\r\n"); l; l = strstr(l, "\r\n")) {
        l += 2;
        if (strncasecmp(l, name, n) == 0 && l[n] == ':') {
            const char *v = l + n + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            return v;
        }
    }
    return NULL;
}

/* Whether the got bytes of an answer begin with a 2xx status line. */
static bool status_2xx(const char *head, size_t got)
{
    return got >= 12 && strncmp(head, "HTTP/1.", 7) == 0 && head[9] == '2';
}

/* Reads the answer to a POST. 0: a 2xx; 1: another status (why set);
 * -1: no answer at all (answered: whether any byte came). *keep: the
 * connection can carry the next POST. */
static int read_answer(int fd, bool *keep, bool *answered, char *why, size_t whylen)
{
    char head[OTLP_HEAD_MAX + 1];
    size_t got = 0;
    char *end = NULL;
    *keep = false;
    *answered = false;
    while (!end) {
        if (got == OTLP_HEAD_MAX) {
            snprintf(why, whylen, "collector answer headers too long");
            return status_2xx(head, got) ? 0 : 1;
        }
        ssize_t r = recv_some(fd, head + got, OTLP_HEAD_MAX - got);
        if (r <= 0) {
            snprintf(why, whylen, got ? "connection closed mid-answer"
                                      : r == 0 ? "connection closed before an answer"
                                               : "no answer within the timeout");
            if (status_2xx(head, got))
                return 0;   /* a close-delimited answer */
            return got ? 1 : -1;
        }
        *answered = true;
        got += (size_t)r;
        head[got] = 0;
        end = strstr(head, "\r\n\r\n");
    }
    end[2] = 0;   /* the head ends at its last CRLF; the body follows end + 4 */
    bool ok = status_2xx(head, got);
    if (!ok)
        snprintf(why, whylen, "collector answered %.12s", head);
    const char *cl = header_value(head, "Content-Length");
    const char *conn = header_value(head, "Connection");
    bool http11 = strncmp(head, "HTTP/1.1", 8) == 0;
    if (!cl || !http11 || (conn && strncasecmp(conn, "close", 5) == 0))
        return ok ? 0 : 1;   /* the body runs to the close: do not reuse */
    char *num_end;
    unsigned long long len = strtoull(cl, &num_end, 10);
    if (num_end == cl || len > OTLP_BODY_MAX)
        return ok ? 0 : 1;
    size_t have = got - (size_t)(end + 4 - head);
    while (have < len) {
        char sink[4096];
        size_t want = len - have < sizeof sink ? (size_t)(len - have) : sizeof sink;
        ssize_t r = recv_some(fd, sink, want);
        if (r <= 0)
            return ok ? 0 : 1;
        have += (size_t)r;
    }
    *keep = have == len;
    return ok ? 0 : 1;
}

int otlp_post(otlp_conn *c, const char *host, const char *port, const char *path,
              const char *body, size_t len, char *why, size_t whylen)
{
    char head[768];
    int hn = snprintf(head, sizeof head, "POST %s HTTP/1.1\r\nHost: %s:%s\r\n"
                      "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                      path, host, port, len);
    if (hn < 0 || (size_t)hn >= sizeof head) {
        snprintf(why, whylen, "request head too long");
        return -1;
    }
    /* A kept connection may have been closed by the collector since the
     * last batch: then (nothing answered) once more on a new one. */
    for (int attempt = 0; attempt < 2; attempt++) {
        bool reused = c->fd >= 0;
        if (!reused && connect_to(c, host, port, why, whylen))
            return -1;
        bool keep = false, answered = false;
        int rc = -1;
        if (send_all(c->fd, head, (size_t)hn, MSG_MORE, why, whylen) == 0 &&
            send_all(c->fd, body, len, 0, why, whylen) == 0)
            rc = read_answer(c->fd, &keep, &answered, why, whylen);
        if (!keep)
            otlp_conn_close(c);
        if (rc >= 0)
            return rc == 0 ? 0 : -1;
        if (!reused || answered)
            return -1;
    }
    return -1;
}
