/* activation.c — socket activation: taking over listening sockets a
 * supervisor opened and passed down, by the sd_listen_fds protocol
 * (LISTEN_PID names the process meant, LISTEN_FDS counts descriptors from
 * 3). Implemented here, without libsystemd: systemd socket units, or any
 * parent that opens the socket itself, start Keel this way. The supervisor
 * keeps its copy of the socket, so connections arriving while no Keel
 * accepts wait in its queue instead of being refused. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/errors.h"
#include "http/listen.h"

/* A decimal number in [1, max] that is all of s; -1 otherwise. */
static long whole_number(const char *s, long max)
{
    if (s == NULL || *s == '\0')
        return -1;
    long v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > max)
            return -1;
        v = v * 10 + (*s - '0');
    }
    return v >= 1 && v <= max ? v : -1;
}

/* fd is a listening TCP stream socket; else err says what it is not. */
static int check_listener(int fd, char *err, size_t errlen)
{
    int type = 0, listening = 0;
    socklen_t len = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0)
        return keel_err(err, errlen, KEEL_EINVAL, "LISTEN_FDS: descriptor %d: %s", fd,
                        errno == ENOTSOCK ? "not a socket" : strerror(errno));
    len = sizeof listening;
    if (type != SOCK_STREAM ||
        getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening)
        return keel_err(err, errlen, KEEL_EINVAL,
                        "LISTEN_FDS: descriptor %d is not a listening stream socket", fd);
    keel_http_addr a;
    if (keel_http_addr_of_fd(fd, &a, NULL, 0) != 0)
        return keel_err(err, errlen, KEEL_EINVAL,
                        "LISTEN_FDS: descriptor %d is not an IPv4 or IPv6 socket", fd);
    return 0;
}

int keel_http_inherited_listeners(int *fds, char *err, size_t errlen)
{
    const char *pid_s = getenv("LISTEN_PID"), *n_s = getenv("LISTEN_FDS");
    if (pid_s == NULL || n_s == NULL)
        return 0;
    long pid = whole_number(pid_s, 0x7fffffffL);
    if (pid < 0)
        return keel_err(err, errlen, KEEL_EINVAL, "LISTEN_PID '%s' is not a process id",
                        pid_s);
    if (pid != (long)getpid())
        return 0;                 /* meant for a parent that exec'd us without them */
    long n = whole_number(n_s, KEEL_HTTP_MAX_INHERITED);
    if (n < 0)
        return keel_err(err, errlen, KEEL_EINVAL,
                        "LISTEN_FDS '%s' must be a number of sockets from 1 to %u", n_s,
                        KEEL_HTTP_MAX_INHERITED);
    for (long i = 0; i < n; i++) {
        int fd = KEEL_HTTP_INHERITED_FD0 + (int)i;
        int rc = check_listener(fd, err, errlen);
        if (rc != 0)
            return rc;
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0 ||
            fcntl(fd, F_SETFD, FD_CLOEXEC) != 0)
            return keel_err(err, errlen, KEEL_EINVAL, "LISTEN_FDS: descriptor %d: %s", fd,
                            strerror(errno));
        fds[i] = fd;
    }
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    return (int)n;
}
