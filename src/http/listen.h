/* listen.h — listening sockets, for the HTTP front end and the admin
 * listener alike: parsing "host:port" forms (listen.c), opening
 * SO_REUSEPORT sockets on an address (listen.c), and taking over sockets
 * a supervisor opened (activation.c, the sd_listen_fds protocol). */
#ifndef KEEL_HTTP_LISTEN_H
#define KEEL_HTTP_LISTEN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* Connections waiting to be accepted, per socket Keel opens. */
#define KEEL_HTTP_LISTEN_BACKLOG 1024
/* Most inherited listening sockets Keel takes (LISTEN_FDS beyond: error). */
#define KEEL_HTTP_MAX_INHERITED 64u
/* The first inherited descriptor (SD_LISTEN_FDS_START of the protocol). */
#define KEEL_HTTP_INHERITED_FD0 3

/* A parsed listen address. */
typedef struct keel_http_addr {
    struct sockaddr_storage ss;
    socklen_t len;
    char host[64];               /* numeric, "0.0.0.0" for ":port" */
    int port;                    /* as written; the bound port after keel_http_bind */
} keel_http_addr;

/* Parses "host:port", "[v6]:port" or ":port" (a host name resolves to its
 * first address). 0 or KEEL_EINVAL + err. */
int keel_http_parse_listen(const char *listen, keel_http_addr *out, char *err, size_t errlen);

/* Opens n non-blocking, close-on-exec listening sockets on a with
 * SO_REUSEPORT and stores them in fds; with port 0 the first socket picks
 * the port and the others share it, and a->port is updated.
 *
 * Unless share is true, a port some other socket already listens on is
 * refused (a socket without SO_REUSEPORT probes it first), so two Keels
 * never split one port's traffic by accident. share joins the SO_REUSEPORT
 * group already there instead: another Keel of the same user, for a
 * handover (the kernel spreads new connections over both until the old one
 * closes its sockets).
 *
 * 0, or KEEL_EIO + err naming the address, with nothing left open. */
int keel_http_bind(keel_http_addr *a, int *fds, unsigned n, bool share, char *err,
                   size_t errlen);

/* Socket activation (the sd_listen_fds protocol, no libsystemd): when
 * LISTEN_PID is this process and LISTEN_FDS is N >= 1, descriptors 3 to
 * 3+N-1 are listening sockets the supervisor (systemd, or any parent) opened
 * and keeps open. Each must be a listening TCP socket (IPv4 or IPv6); it is
 * made non-blocking and close-on-exec and stored in fds (room for
 * KEEL_HTTP_MAX_INHERITED). LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES are
 * then removed from the environment so children do not see them.
 *
 * Returns N, 0 when the variables are absent or for another process (then
 * nothing changes), or KEEL_EINVAL + err naming the variable or the
 * descriptor that is wrong. */
int keel_http_inherited_listeners(int *fds, char *err, size_t errlen);

/* The local address of listening socket fd, as keel_http_parse_listen
 * would give it. 0 or KEEL_EIO + err. */
int keel_http_addr_of_fd(int fd, keel_http_addr *out, char *err, size_t errlen);

/* Whether the kernel moves connections waiting in the accept queue of a
 * closing SO_REUSEPORT listener to another listener of its group
 * (net.ipv4.tcp_migrate_req, Linux 5.14+) instead of resetting them: 1 yes,
 * 0 no, -1 no such setting (older kernel) or unreadable. */
int keel_http_tcp_migrate_req(void);

#endif
