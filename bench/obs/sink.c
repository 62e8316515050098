/* bench/obs/sink.c — the OTLP/HTTP collector stand-in of bench/obs/run.sh:
 * accepts connections on 127.0.0.1:PORT, reads each HTTP/1.1 request
 * (the header, then Content-Length bytes of body, which it takes off the
 * socket with MSG_TRUNC: TCP drops them without copying them out) and
 * answers 200 with "{}". It does as little as a receiver can while still
 * taking every byte it is sent, so the least of the two shared CPUs goes
 * to it: in production the collector runs elsewhere and its CPU is not
 * Keel's. On SIGTERM it writes "POSTS BYTES" to stdout.
 *
 *   cc -O2 -o sink bench/obs/sink.c && ./sink PORT
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CONNS 64
#define HEAD_MAX 16384

typedef struct conn {
    char head[HEAD_MAX];   /* the request's header bytes read so far */
    size_t head_len;
    long long body_left;   /* body bytes still to discard; -1: reading the header */
} conn;

static volatile sig_atomic_t done;
static void on_term(int sig) { (void)sig; done = 1; }

static conn conns[MAX_CONNS];
static struct pollfd fds[MAX_CONNS + 1];
static char scratch[HEAD_MAX];
static unsigned long long posts, bytes;

static const char reply[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                            "Content-Length: 2\r\n\r\n{}";

/* The value of Content-Length in the header h[0..n), or 0. */
static long long content_length(const char *h, size_t n)
{
    for (size_t i = 0; i + 16 < n; i++)
        if ((i == 0 || h[i - 1] == '\n') && strncasecmp(h + i, "content-length:", 15) == 0)
            return strtoll(h + i + 15, NULL, 10);
    return 0;
}

/* One request read whole: counted and answered; -1 when the answer
 * cannot be sent. */
static int answer(conn *c, int fd)
{
    posts++;
    c->body_left = -1;
    return write(fd, reply, sizeof reply - 1) == (ssize_t)(sizeof reply - 1) ? 0 : -1;
}

/* Consumes data[0..n) for connection c (fd); returns -1 to close it. */
static int consume(conn *c, int fd, const char *data, size_t n)
{
    while (n) {
        if (c->body_left > 0) {
            size_t k = (long long)n < c->body_left ? n : (size_t)c->body_left;
            c->body_left -= (long long)k;
            bytes += k;
            data += k;
            n -= k;
            if (c->body_left == 0 && answer(c, fd))
                return -1;
            continue;
        }
        /* the header: byte by byte into head until the blank line */
        bool ended = false;
        while (n && !ended && c->head_len < HEAD_MAX) {
            c->head[c->head_len++] = *data++;
            n--;
            ended = c->head_len >= 4 && memcmp(c->head + c->head_len - 4, "\r\n\r\n", 4) == 0;
        }
        if (ended) {
            c->body_left = content_length(c->head, c->head_len);
            c->head_len = 0;
            if (c->body_left <= 0 && answer(c, fd))
                return -1;
        } else if (c->head_len == HEAD_MAX) {
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: sink PORT\n");
        return 2;
    }
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    signal(SIGPIPE, SIG_IGN);
    int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1])) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 64)) {
        perror("sink: bind/listen");
        return 1;
    }
    for (int i = 0; i < MAX_CONNS; i++)
        fds[i].fd = -1;
    fds[MAX_CONNS] = (struct pollfd){ .fd = ls, .events = POLLIN };
    while (!done) {
        if (poll(fds, MAX_CONNS + 1, 200) < 0 && errno != EINTR)
            break;
        if (fds[MAX_CONNS].revents & POLLIN) {
            int fd = accept(ls, NULL, NULL);
            int i = 0;
            while (i < MAX_CONNS && fds[i].fd >= 0)
                i++;
            if (fd >= 0 && i < MAX_CONNS) {
                fds[i] = (struct pollfd){ .fd = fd, .events = POLLIN };
                conns[i].head_len = 0;
                conns[i].body_left = -1;
            } else if (fd >= 0) {
                close(fd);
            }
        }
        for (int i = 0; i < MAX_CONNS; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            conn *c = &conns[i];
            bool drop;
            if (c->body_left > 0) {      /* body: counted and dropped in the kernel */
                ssize_t n = recv(fds[i].fd, NULL, (size_t)c->body_left, MSG_TRUNC | MSG_DONTWAIT);
                drop = n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR);
                if (n > 0) {
                    c->body_left -= n;
                    bytes += (unsigned long long)n;
                    drop = c->body_left == 0 && answer(c, fds[i].fd);
                }
            } else {
                ssize_t n = read(fds[i].fd, scratch, sizeof scratch);
                drop = n <= 0 || consume(c, fds[i].fd, scratch, (size_t)n);
            }
            if (drop) {
                close(fds[i].fd);
                fds[i].fd = -1;
            }
        }
    }
    printf("%llu %llu\n", posts, bytes);
    return 0;
}
