/* server_int.h — inside src/http only (and its tests): the function table
 * through which the server reaches the component host, the entry point
 * that takes such a table, and small helpers of the server files
 * (listening sockets: http/listen.h).
 *
 * keel_http_serve fills the table from src/host; tests pass their own, so
 * the HTTP layer is tested without the engine. */
#ifndef KEEL_HTTP_SERVER_INT_H
#define KEEL_HTTP_SERVER_INT_H

#include <stdbool.h>
#include <sys/socket.h>

#include "http/listen.h"
#include "http/server.h"

/* The host as the server uses it; each function has the contract of its
 * keel_host_* namesake in host/host.h, with ctx in place of the host
 * (component: NULL past the last one).
 * match, component, admit and release run on event loop threads; handle
 * and release on loop or worker threads (http/dispatch.c); response_free
 * on loop threads; tidy (optional) on a thread that ran handle, once the
 * response is on its way: deferred cleanup of that thread's work. */
typedef struct keel_http_host_ops {
    int (*match)(void *ctx, const char *method, size_t method_len, const char *path,
                 size_t path_len, keel_route_match *out);
    const keel_component_cfg *(*component)(void *ctx, size_t i);
    bool (*admit)(void *ctx, size_t component);
    void (*release)(void *ctx, size_t component);
    void (*handle)(void *ctx, const keel_route_match *m, const keel_request *req,
                   keel_response *resp);
    void (*response_free)(void *ctx, keel_response *r);
    void (*tidy)(void *ctx);
    /* Optional, for a host replaced while serving: pin returns the ctx one
     * request uses (kept alive until unpin, and past it while admitted);
     * every other function of that request gets it instead of ctx. */
    void *(*pin)(void *ctx);
    void (*unpin)(void *ctx, void *pinned);
} keel_http_host_ops;

/* keel_http_serve with the host given as ops + ctx (both must outlive the
 * call). Same contract. */
int keel_http_serve_ops(const keel_http_host_ops *ops, void *ctx, const keel_http_opts *o,
                        volatile sig_atomic_t *stop, char *err, size_t errlen);

/* Normalizes a request path as received (without its query) into out,
 * which holds len + 2 bytes: percent-encodings of unreserved characters are
 * decoded, every other one kept with uppercase hex (so "%2F" stays a byte of
 * a segment, never a separator), and "." and ".." segments are removed
 * (RFC 3986 6.2.2 and 5.2.4). The result starts with '/'. Returns its length. */
size_t keel_http_normalize_path(const char *in, size_t len, char *out);

/* proto.c. The reason phrase of status (a generic one for unlisted codes). */
const char *keel_http_reason(int status);
/* Response headers a guest may not set: framing and hop-by-hop ones
 * (Content-Length, Transfer-Encoding, Connection, Keep-Alive, Upgrade, TE,
 * Trailer, Proxy-Connection), Date (h2o's) and X-Request-Id (Keel's). */
bool keel_http_guest_header_dropped(const char *name, size_t len);
/* 1..KEEL_HTTP_MAX_REQUEST_ID bytes of [A-Za-z0-9._-]. */
bool keel_http_request_id_ok(const char *s, size_t n);
/* splitmix64: the next value of the generator state *s. */
uint64_t keel_http_rand64(uint64_t *s);

#endif
