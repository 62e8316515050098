/* api.c — the "keel" host functions: the HTTP request that entered the
 * process, the response's status and headers, the component's config, and
 * its log. All i32. A function returning bytes takes (..., buf, cap),
 * returns the full length and writes only when it fits (len <= cap); -1
 * means absent or not applicable (http_* inside a nested component call).
 * A pointer/length outside the guest's memory traps the guest. */
#include "host/host_int.h"

#include <string.h>
#include <strings.h>

#include "obs/log.h"

#define HOST_FN(name) api_##name
#define CTX void *ctx
#define ABSENT ((uint32_t)-1)

/* Writes [a, alen) then [b, blen) into guest (buf, cap) when they fit. */
static uint32_t put2(host_call *c, uint32_t buf, uint32_t cap, const void *a, size_t alen,
                     const void *b, size_t blen)
{
    uint8_t *dst = host_guest_range(c, buf, cap);
    size_t len = alen + blen;
    if (len > INT32_MAX)
        return ABSENT;
    if (len <= cap) {
        if (alen)
            memcpy(dst, a, alen);
        if (blen)
            memcpy(dst + alen, b, blen);
    }
    return (uint32_t)len;
}

/* The request, or NULL inside a nested call (and for bad guest ranges,
 * which are checked first so a bad pointer traps at any depth). */
static const keel_request *request_of(host_call *c)
{
    return c->depth == 0 ? c->rq->req : NULL;
}

static uint32_t HOST_FN(http_method)(CTX, uint32_t buf, uint32_t cap)
{
    host_call *c = host_call_of(ctx);
    host_guest_range(c, buf, cap);
    const keel_request *req = request_of(c);
    if (!req)
        return ABSENT;
    return put2(c, buf, cap, req->method, req->method_len, NULL, 0);
}

static uint32_t HOST_FN(http_uri)(CTX, uint32_t buf, uint32_t cap)
{
    host_call *c = host_call_of(ctx);
    host_guest_range(c, buf, cap);
    const keel_request *req = request_of(c);
    if (!req)
        return ABSENT;
    if (req->uri)   /* the target as received */
        return put2(c, buf, cap, req->uri, req->uri_len, NULL, 0);
    if (!req->query_len)
        return put2(c, buf, cap, req->path, req->path_len, NULL, 0);
    /* no target recorded (embedders): path '?' query, written in pieces */
    size_t len = req->path_len + 1 + req->query_len;
    if (len > INT32_MAX)
        return ABSENT;
    if (len <= cap) {
        uint8_t *dst = host_guest_range(c, buf, cap);
        memcpy(dst, req->path, req->path_len);
        dst[req->path_len] = '?';
        memcpy(dst + req->path_len + 1, req->query, req->query_len);
    }
    return (uint32_t)len;
}

static uint32_t HOST_FN(http_header)(CTX, uint32_t name, uint32_t name_len, uint32_t buf,
                                     uint32_t cap)
{
    host_call *c = host_call_of(ctx);
    const char *n = (const char *)host_guest_range(c, name, name_len);
    host_guest_range(c, buf, cap);
    const keel_request *req = request_of(c);
    if (!req)
        return ABSENT;
    for (size_t i = 0; i < req->nheaders; i++) {
        const keel_header *hd = &req->headers[i];
        if (hd->name_len == name_len && strncasecmp(hd->name, n, name_len) == 0)
            return put2(c, buf, cap, hd->value, hd->value_len, NULL, 0);
    }
    return ABSENT;
}

static void HOST_FN(http_set_status)(CTX, uint32_t code)
{
    host_call *c = host_call_of(ctx);
    if (c->depth != 0)
        return;
    if (code >= 100 && code <= 599)
        c->rq->status = (int)code;
    else
        keel_log(KEEL_LOG_WARN, c->comp->cfg->name,
                 "request %s: http_set_status(%d) ignored: not a status code 100-599",
                 c->rq->id, (int)code);
}

static uint32_t HOST_FN(http_set_header)(CTX, uint32_t name, uint32_t name_len,
                                         uint32_t value, uint32_t value_len)
{
    host_call *c = host_call_of(ctx);
    const char *n = (const char *)host_guest_range(c, name, name_len);
    const char *v = (const char *)host_guest_range(c, value, value_len);
    if (!host_header_name_ok(n, name_len) || !host_header_value_ok(v, value_len) ||
        host_header_reserved(n, name_len))
        return ABSENT;
    if (c->depth != 0)
        return ABSENT;   /* no HTTP response inside a nested call */
    return host_request_add_header(c->rq, n, name_len, v, value_len) ? ABSENT : 0;
}

static uint32_t HOST_FN(config_get)(CTX, uint32_t key, uint32_t key_len, uint32_t buf,
                                    uint32_t cap)
{
    host_call *c = host_call_of(ctx);
    const char *k = (const char *)host_guest_range(c, key, key_len);
    host_guest_range(c, buf, cap);
    const keel_component_cfg *cfg = c->comp->cfg;
    for (size_t i = 0; i < cfg->nconfig; i++) {
        const keel_kv *kv = &cfg->config[i];
        if (strlen(kv->key) == key_len && memcmp(kv->key, k, key_len) == 0)
            return put2(c, buf, cap, kv->value, strlen(kv->value), NULL, 0);
    }
    return ABSENT;
}

static void HOST_FN(log)(CTX, uint32_t level, uint32_t ptr, uint32_t len)
{
    host_call *c = host_call_of(ctx);
    const char *p = (const char *)host_guest_range(c, ptr, len);
    if (len > KEEL_HOST_MAX_LOG_BYTES)
        len = KEEL_HOST_MAX_LOG_BYTES;
    keel_log_level lv = level > KEEL_LOG_ERROR ? KEEL_LOG_ERROR : (keel_log_level)level;
    host_obs_guest_line(c->comp, lv, "request %s: %.*s", c->rq->id, (int)len, p);
}

#define ENTRY(name, sig) { "keel", #name, sig, (void (*)(void))HOST_FN(name) }
const keel_host_fn keel_host_api_fns[] = {
    ENTRY(http_method, "ii:i"),
    ENTRY(http_uri, "ii:i"),
    ENTRY(http_header, "iiii:i"),
    ENTRY(http_set_status, "i:"),
    ENTRY(http_set_header, "iiii:i"),
    ENTRY(config_get, "iiii:i"),
    ENTRY(log, "iii:"),
    { 0, 0, 0, 0 },
};
