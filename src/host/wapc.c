/* wapc.c — the "wapc" host functions: the waPC protocol (wapc.io) with
 * binding "keel", where __host_call(binding "keel", namespace = component,
 * operation, payload) is a synchronous in-process call into a fresh
 * instance of that component on the same thread, under the same request
 * deadline. Every guest pointer goes through host_guest_range (a bad one
 * traps the guest). */
#include "host/host_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "obs/log.h"

#define HOST_FN(name) wapc_##name
#define CTX void *ctx

/* __guest_request(op_ptr, payload_ptr): the host writes the operation name
 * and the payload (their lengths were __guest_call's arguments). */
static void HOST_FN(guest_request)(CTX, uint32_t op_ptr, uint32_t payload_ptr)
{
    host_call *c = host_call_of(ctx);
    uint8_t *op = host_guest_range(c, op_ptr, (uint32_t)c->op_len);
    uint8_t *pl = host_guest_range(c, payload_ptr, (uint32_t)c->payload_len);
    if (c->op_len)
        memcpy(op, c->op, c->op_len);
    if (c->payload_len)
        memcpy(pl, c->payload, c->payload_len);
}

static void HOST_FN(guest_response)(CTX, uint32_t ptr, uint32_t len)
{
    host_call *c = host_call_of(ctx);
    uint8_t *p = host_guest_range(c, ptr, len);
    if (len > KEEL_HOST_MAX_BODY_BYTES) {
        char msg[128];
        int n = snprintf(msg, sizeof msg, "response of %u bytes exceeds the limit of %u bytes",
                         len, KEEL_HOST_MAX_BODY_BYTES);
        host_buf_set(&c->error, msg, (size_t)n);
        c->errored = true;
        return;
    }
    host_buf_set(&c->response, p, len);
    c->responded = true;
}

static void HOST_FN(guest_error)(CTX, uint32_t ptr, uint32_t len)
{
    host_call *c = host_call_of(ctx);
    uint8_t *p = host_guest_range(c, ptr, len);
    host_buf_set(&c->error, p, len > KEEL_HOST_MAX_ERROR_BYTES ? KEEL_HOST_MAX_ERROR_BYTES : len);
    c->errored = true;
}

static uint32_t host_call_fail(host_call *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Records why __host_call failed (for __host_error) and logs it; returns 0. */
static uint32_t host_call_fail(host_call *c, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof msg)
        n = (int)sizeof msg - 1;
    host_buf_set(&c->host_error, msg, (size_t)n);
    keel_log(KEEL_LOG_WARN, c->comp->cfg->name, "request %s: __host_call failed: %s",
             c->rq->id, msg);
    return 0;
}

/* __host_call(binding, namespace, operation, payload) -> 1 ok, 0 failed. */
static uint32_t HOST_FN(host_call)(CTX, uint32_t bd_ptr, uint32_t bd_len, uint32_t ns_ptr,
                                   uint32_t ns_len, uint32_t op_ptr, uint32_t op_len,
                                   uint32_t ptr, uint32_t len)
{
    host_call *c = host_call_of(ctx);
    const char *bd = (const char *)host_guest_range(c, bd_ptr, bd_len);
    const char *ns = (const char *)host_guest_range(c, ns_ptr, ns_len);
    const char *op = (const char *)host_guest_range(c, op_ptr, op_len);
    const uint8_t *payload = host_guest_range(c, ptr, len);
    host_buf_clear(&c->host_response);
    host_buf_clear(&c->host_error);
    int bl = bd_len > 64 ? 64 : (int)bd_len, nl = ns_len > 64 ? 64 : (int)ns_len;

    if (bd_len != 4 || memcmp(bd, "keel", 4) != 0)
        return host_call_fail(c, "unknown binding \"%.*s\" (Keel serves binding \"keel\")",
                              bl, bd);
    host_component *to = host_component_named(c->rq->h, ns, ns_len);
    if (!to)
        return host_call_fail(c, "no component named \"%.*s\"", nl, ns);
    const char *name = to->cfg->name;
    if (!host_component_may_call(c->comp, to->index))
        return host_call_fail(c, "component %s may not call %s (not in its calls list)",
                              c->comp->cfg->name, name);
    if (to->cfg->abi != KEEL_ABI_WAPC)
        return host_call_fail(c, "component %s is a wagi component; only wapc components "
                              "can be called", name);
    if (c->depth + 1 > KEEL_HOST_MAX_CALL_DEPTH)
        return host_call_fail(c, "call depth limit of %d nested calls exceeded calling %s",
                              KEEL_HOST_MAX_CALL_DEPTH, name);
    if (keel_rt_now_ns() >= c->rq->deadline_ns) {
        c->rq->deadline_hit = true;
        /* Past the deadline the caller is stopped here, not handed an error
         * to loop on: a guest calling in a loop spends nearly all its time
         * in this function, where the watchdog's signal cannot end it, and
         * would outlive its deadline by seconds. Nothing is held yet. */
        keel_rt_check_deadline();
        return host_call_fail(c, "deadline exceeded before calling %s", name);
    }

    /* The callee reads the operation and payload straight from the caller's
     * memory: the caller is suspended in this function, so they cannot
     * change or move. __guest_request copies them into the callee. */
    host_call callee = {
        .rq = c->rq, .comp = to, .depth = c->depth + 1, .cgi_stdout = -1,
        .op = (const uint8_t *)op, .op_len = op_len, .payload = payload, .payload_len = len,
    };
    int admit = host_circuit_admit(to);
    if (admit == HOST_ADMIT_REFUSE) {
        keel_metrics_call(c->rq->h->metrics, c->comp->index, to->index, KEEL_CALL_CIRCUIT_OPEN, 0);
        return host_call_fail(c, "component %s is failing (circuit open); try again later",
                              name);
    }
    host_result r;
    host_inv inv;
    uint64_t t0 = keel_rt_now_ns();
    host_obs_invoke_begin(c->rq, &inv, to, callee.op, callee.op_len);
    host_wapc_run(&callee, &r);
    host_version_record(c->rq->h, to, callee.version, r.end != HOST_OK, keel_rt_now_ns() - t0);
    host_obs_invoke_end(c->rq, &inv, r.end == HOST_OK ? KEEL_CALL_OK
                                     : r.end != HOST_TRAPPED ? KEEL_CALL_ERROR
                                     : r.o.trap == KEEL_TRAP_DEADLINE ? KEEL_CALL_DEADLINE
                                                                      : KEEL_CALL_TRAP);
    if (r.end == HOST_TRAPPED)
        host_obs_trap(c->rq->h, to, r.o.trap);
    host_circuit_record(to, admit, r.end != HOST_OK);
    uint32_t ok = 0;
    switch (r.end) {
    case HOST_OK:
        c->host_response = callee.response;
        callee.response.data = NULL;
        callee.response.len = 0;
        if (!c->host_response.data)
            host_buf_set(&c->host_response, "", 0);
        ok = 1;
        break;
    case HOST_GUEST_ERROR:
        host_call_fail(c, "component %s: operation \"%.*s\" failed: %s", name,
                       op_len > 64 ? 64 : (int)op_len, op, r.why);
        break;
    case HOST_TRAPPED:
        if (r.o.trap == KEEL_TRAP_DEADLINE)
            host_call_fail(c, "component %s: deadline exceeded", name);
        else
            host_call_fail(c, "component %s trapped: %s", name, r.why);
        break;
    case HOST_FAILED:
        host_call_fail(c, "component %s could not run: %s", name, r.why);
        break;
    }
    host_call_free(&callee);
    return ok;
}

static uint32_t HOST_FN(host_response_len)(CTX)
{
    host_call *c = host_call_of(ctx);
    return (uint32_t)c->host_response.len;
}

/* Copies b into guest memory at ptr (traps when it does not fit there). */
static void copy_out(host_call *c, uint32_t ptr, const host_buf *b)
{
    uint8_t *p = host_guest_range(c, ptr, (uint32_t)b->len);
    if (b->len)
        memcpy(p, b->data, b->len);
}

static void HOST_FN(host_response)(CTX, uint32_t ptr)
{
    host_call *c = host_call_of(ctx);
    copy_out(c, ptr, &c->host_response);
}

static uint32_t HOST_FN(host_error_len)(CTX)
{
    host_call *c = host_call_of(ctx);
    return (uint32_t)c->host_error.len;
}

static void HOST_FN(host_error)(CTX, uint32_t ptr)
{
    host_call *c = host_call_of(ctx);
    copy_out(c, ptr, &c->host_error);
}

static void HOST_FN(console_log)(CTX, uint32_t ptr, uint32_t len)
{
    host_call *c = host_call_of(ctx);
    const char *p = (const char *)host_guest_range(c, ptr, len);
    if (len > KEEL_HOST_MAX_LOG_BYTES)
        len = KEEL_HOST_MAX_LOG_BYTES;
    host_obs_guest_line(c->comp, KEEL_LOG_INFO, "request %s: %.*s", c->rq->id, (int)len, p);
}

#define ENTRY(name, sig) { "wapc", "__" #name, sig, (void (*)(void))HOST_FN(name) }
const keel_host_fn keel_host_wapc_fns[] = {
    ENTRY(guest_request, "ii:"),
    ENTRY(guest_response, "ii:"),
    ENTRY(guest_error, "ii:"),
    ENTRY(host_call, "iiiiiiii:i"),
    ENTRY(host_response_len, ":i"),
    ENTRY(host_response, "i:"),
    ENTRY(host_error_len, ":i"),
    ENTRY(host_error, "i:"),
    ENTRY(console_log, "ii:"),
    { 0, 0, 0, 0 },
};
