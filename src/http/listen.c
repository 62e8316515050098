/* listen.c — listen addresses (see listen.h): parsing "host:port" forms
 * and opening one SO_REUSEPORT socket per event loop, so the kernel
 * spreads connections across loops without a shared accept lock (and, for
 * a handover, across two Keels). */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/errors.h"
#include "http/listen.h"

static int parse_port(const char *s, int *out)
{
    if (*s == '\0' || strlen(s) > 5)
        return -1;
    int v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (*s - '0');
    }
    if (v > 65535)
        return -1;
    *out = v;
    return 0;
}

int keel_http_parse_listen(const char *listen, keel_http_addr *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (listen == NULL || *listen == '\0')
        return keel_err(err, errlen, KEEL_EINVAL, "listen address is empty");
    char host[256];
    const char *portstr;
    bool v6 = false;
    if (listen[0] == '[') {
        const char *close = strchr(listen, ']');
        if (close == NULL || close[1] != ':' || (size_t)(close - listen - 1) >= sizeof host)
            return keel_err(err, errlen, KEEL_EINVAL,
                            "listen address \"%s\": expected [IPV6]:PORT", listen);
        memcpy(host, listen + 1, (size_t)(close - listen - 1));
        host[close - listen - 1] = '\0';
        portstr = close + 2;
        v6 = true;
    } else {
        const char *colon = strrchr(listen, ':');
        if (colon == NULL || (size_t)(colon - listen) >= sizeof host)
            return keel_err(err, errlen, KEEL_EINVAL,
                            "listen address \"%s\": expected HOST:PORT or :PORT", listen);
        memcpy(host, listen, (size_t)(colon - listen));
        host[colon - listen] = '\0';
        if (strchr(host, ':') != NULL)
            return keel_err(err, errlen, KEEL_EINVAL,
                            "listen address \"%s\": write IPv6 addresses as [ADDR]:PORT",
                            listen);
        portstr = colon + 1;
    }
    if (parse_port(portstr, &out->port) != 0)
        return keel_err(err, errlen, KEEL_EINVAL,
                        "listen address \"%s\": port must be a number from 0 to 65535", listen);
    if (host[0] == '\0' && !v6)
        strcpy(host, "0.0.0.0");

    struct sockaddr_in *sin = (struct sockaddr_in *)&out->ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->ss;
    if (!v6 && inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)out->port);
        out->len = sizeof *sin;
    } else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)out->port);
        out->len = sizeof *sin6;
    } else if (!v6) {
        /* A name such as "localhost": its first address. */
        struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                                  .ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG };
        struct addrinfo *res = NULL;
        int rc = getaddrinfo(host, portstr, &hints, &res);
        if (rc != 0 || res == NULL || res->ai_addrlen > sizeof out->ss)
            return keel_err(err, errlen, KEEL_EINVAL, "listen address \"%s\": %s", listen,
                            rc != 0 ? gai_strerror(rc) : "no address");
        memcpy(&out->ss, res->ai_addr, res->ai_addrlen);
        out->len = res->ai_addrlen;
        freeaddrinfo(res);
    } else {
        return keel_err(err, errlen, KEEL_EINVAL,
                        "listen address \"%s\": \"%s\" is not an IPv6 address", listen, host);
    }
    const void *a = out->ss.ss_family == AF_INET ? (const void *)&sin->sin_addr
                                                 : (const void *)&sin6->sin6_addr;
    if (inet_ntop(out->ss.ss_family, a, out->host, sizeof out->host) == NULL)
        return keel_err(err, errlen, KEEL_EINVAL, "listen address \"%s\": bad address", listen);
    return 0;
}

/* The port of an AF_INET or AF_INET6 address. */
static int port_of(const struct sockaddr_storage *ss)
{
    /* ss comes from getsockname, which the analyzer does not model as filling it. */
    /* NOLINTNEXTLINE(clang-analyzer-core.CallAndMessage,clang-analyzer-core.UndefinedBinaryOperatorResult) */
    return ntohs(ss->ss_family == AF_INET ? ((const struct sockaddr_in *)ss)->sin_port
                                          : ((const struct sockaddr_in6 *)ss)->sin6_port);
}

static void set_port(keel_http_addr *a, int port)
{
    a->port = port;
    if (a->ss.ss_family == AF_INET)
        ((struct sockaddr_in *)&a->ss)->sin_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in6 *)&a->ss)->sin6_port = htons((uint16_t)port);
}

static int open_one(const keel_http_addr *a, bool reuseport)
{
    int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) ||
        (a->ss.ss_family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0) ||
        bind(fd, (const struct sockaddr *)&a->ss, a->len) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

int keel_http_bind(keel_http_addr *a, int *fds, unsigned n, bool share, char *err,
                   size_t errlen)
{
    const char *fmt = a->ss.ss_family == AF_INET6 ? "[%s]:%d" : "%s:%d";
    char shown[96];
    snprintf(shown, sizeof shown, fmt, a->host, a->port);

    /* SO_REUSEPORT would let us share a port with another process of the
     * same user that listens with it too (another Keel): a socket without
     * the option finds out whether anyone listens there. A handover
     * (share) wants exactly that sharing. */
    if (a->port != 0 && !share) {
        int probe = open_one(a, false);
        if (probe < 0)
            return keel_err(err, errlen, KEEL_EIO, "listen %s: %s", shown, strerror(errno));
        close(probe);
    }
    unsigned opened = 0;
    for (; opened < n; opened++) {
        int fd = open_one(a, true);
        if (fd < 0 || listen(fd, KEEL_HTTP_LISTEN_BACKLOG) != 0) {
            int e = errno;
            if (fd >= 0)
                close(fd);
            for (unsigned i = 0; i < opened; i++)
                close(fds[i]);
            return keel_err(err, errlen, KEEL_EIO, "listen %s: %s", shown, strerror(e));
        }
        if (a->port == 0) {
            struct sockaddr_storage ss;
            socklen_t len = sizeof ss;
            if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
                int e = errno;
                close(fd);
                for (unsigned i = 0; i < opened; i++)
                    close(fds[i]);
                return keel_err(err, errlen, KEEL_EIO, "listen %s: %s", shown, strerror(e));
            }
            set_port(a, port_of(&ss));
        }
        fds[opened] = fd;
    }
    return 0;
}

int keel_http_addr_of_fd(int fd, keel_http_addr *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->len = sizeof out->ss;
    if (getsockname(fd, (struct sockaddr *)&out->ss, &out->len) != 0)
        return keel_err(err, errlen, KEEL_EIO, "socket %d: getsockname: %s", fd,
                        strerror(errno));
    const void *ip = NULL;
    if (out->ss.ss_family == AF_INET)
        ip = &((struct sockaddr_in *)&out->ss)->sin_addr;
    else if (out->ss.ss_family == AF_INET6)
        ip = &((struct sockaddr_in6 *)&out->ss)->sin6_addr;
    if (ip == NULL || inet_ntop(out->ss.ss_family, ip, out->host, sizeof out->host) == NULL)
        return keel_err(err, errlen, KEEL_EIO, "socket %d: not an IPv4 or IPv6 socket", fd);
    out->port = port_of(&out->ss);
    return 0;
}

int keel_http_tcp_migrate_req(void)
{
    FILE *f = fopen("/proc/sys/net/ipv4/tcp_migrate_req", "re");
    if (f == NULL)
        return -1;
    int v = -1;
    if (fscanf(f, "%d", &v) != 1)
        v = -1;
    fclose(f);
    return v < 0 ? -1 : v != 0;
}
