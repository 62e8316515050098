/* serve_host.c — keel_http_serve: the server wired to the real component
 * host through the function table of server_int.h. The table's ctx is the
 * keel_live; each request pins the host serving at that moment and every
 * other function gets that host. */
#include "http/server_int.h"

static int op_match(void *ctx, const char *method, size_t method_len, const char *path,
                    size_t path_len, keel_route_match *out)
{
    return keel_host_match(ctx, method, method_len, path, path_len, out);
}

static const keel_component_cfg *op_component(void *ctx, size_t i)
{
    return keel_host_component(ctx, i);
}

static bool op_admit(void *ctx, size_t component)
{
    return keel_host_admit(ctx, component);
}

static void op_release(void *ctx, size_t component)
{
    keel_host_release(ctx, component);
}

static void op_handle(void *ctx, const keel_route_match *m, const keel_request *req,
                      keel_response *resp)
{
    keel_host_handle(ctx, m, req, resp);
}

static void op_response_free(void *ctx, keel_response *r)
{
    (void)ctx;
    keel_response_free(r);
}

static void op_tidy(void *ctx)
{
    keel_host_tidy();
    keel_host *h = keel_live_pin(ctx);
    keel_host_reap(h);
    keel_live_unpin(ctx, h);
    keel_live_reap(ctx);
}

static void *op_pin(void *ctx)
{
    return keel_live_pin(ctx);
}

static void op_unpin(void *ctx, void *pinned)
{
    keel_live_unpin(ctx, pinned);
}

static const keel_http_host_ops host_ops = {
    .match = op_match,
    .component = op_component,
    .admit = op_admit,
    .release = op_release,
    .handle = op_handle,
    .response_free = op_response_free,
    .tidy = op_tidy,
    .pin = op_pin,
    .unpin = op_unpin,
};

int keel_http_serve(keel_live *l, const keel_http_opts *o, volatile sig_atomic_t *stop,
                    char *err, size_t errlen)
{
    return keel_http_serve_ops(&host_ops, l, o, stop, err, errlen);
}
