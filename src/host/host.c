/* host.c — the component host: loading and linking every component of a
 * manifest, routing (method, path) to a component, admission control, and
 * keel_host_handle, which runs one request through a waPC or WAGI
 * component and turns every failure into a generic response plus a log
 * line. */
#include "host/host_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/errors.h"
#include "config/residency.h"
#include "obs/log.h"
#include "wasi/wasi.h"

const keel_host_fn *const keel_host_fn_tables[] = {
    keel_wasi_host_fns, keel_host_wapc_fns, keel_host_api_fns, keel_host_kv_fns, NULL,
};
/* For loading and linking: WAGI's fd_write comes before WASI's. */
const keel_host_fn *const keel_host_link_tables[] = {
    keel_host_wagi_fns, keel_wasi_host_fns, keel_host_wapc_fns, keel_host_api_fns,
    keel_host_kv_fns, NULL,
};

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p)
        abort();
    return p;
}

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)
        abort();
    return s;
}

static void residency_report(void *arg, const char *line)
{
    char *first = arg;
    keel_log(KEEL_LOG_ERROR, NULL, "residency denial: %s", line);
    if (!first[0])
        snprintf(first, 1024, "%s", line);
}

/* ---- responses ---- */

void keel_response_free(keel_response *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nheaders; i++) {
        free((char *)r->headers[i].name);
        free((char *)r->headers[i].value);
    }
    free(r->headers);
    free(r->body);
    memset(r, 0, sizeof *r);
}

void host_response_add_header(keel_response *resp, const char *name, size_t nlen,
                              const char *value, size_t vlen)
{
    keel_header *hs = realloc(resp->headers, (resp->nheaders + 1) * sizeof *hs);
    if (!hs)
        abort();
    resp->headers = hs;
    char *n = strndup(name, nlen), *v = strndup(value, vlen);
    if (!n || !v)
        abort();
    hs[resp->nheaders++] = (keel_header){ n, nlen, v, vlen };
}

void host_error_response(keel_response *resp, const host_request *rq, int status)
{
    keel_response_free(resp);
    const char *what = status == 504 ? "deadline exceeded"
                     : status == 502 ? "bad gateway"
                                     : "internal error";
    resp->status = status;
    resp->body = xasprintf("%s (request id %s)\n", what, rq->id);
    resp->body_len = strlen(resp->body);
    host_response_add_header(resp, "content-type", 12, "text/plain; charset=utf-8", 25);
}

/* 503 while comp's circuit is open: fails fast, names the request id. */
static void host_circuit_response(keel_response *resp, const host_request *rq,
                                  const host_component *comp)
{
    keel_response_free(resp);
    resp->status = 503;
    resp->body = xasprintf("component %s is failing; try again later (request id %s)\n",
                           comp->cfg->name, rq->id);
    resp->body_len = strlen(resp->body);
    host_response_add_header(resp, "content-type", 12, "text/plain; charset=utf-8", 25);
    host_response_add_header(resp, "retry-after", 11, "1", 1);
    keel_metrics_rejected(rq->h->metrics, comp->index, KEEL_REJECT_CIRCUIT);
}

/* ---- header checks ---- */

static bool tchar(unsigned char ch)
{
    /* RFC 9110 token characters */
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

bool host_header_name_ok(const char *name, size_t len)
{
    if (!len)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!tchar((unsigned char)name[i]))
            return false;
    return true;
}

bool host_header_value_ok(const char *value, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)value[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            return false;
    }
    return true;
}

bool host_header_reserved(const char *name, size_t len)
{
    static const char *const reserved[] = {
        "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade",
    };
    for (size_t i = 0; i < sizeof reserved / sizeof *reserved; i++)
        if (strlen(reserved[i]) == len && strncasecmp(reserved[i], name, len) == 0)
            return true;
    return false;
}

int host_request_add_header(host_request *rq, const char *name, size_t nlen,
                            const char *value, size_t vlen)
{
    if (rq->nheaders >= KEEL_HOST_MAX_RESP_HEADERS ||
        rq->header_bytes + nlen + vlen > KEEL_HOST_MAX_RESP_HEADER_BYTES)
        return -1;
    if (rq->nheaders == rq->cap_headers) {
        size_t cap = rq->cap_headers ? rq->cap_headers * 2 : 8;
        keel_header *hs = realloc(rq->headers, cap * sizeof *hs);
        if (!hs)
            abort();
        rq->headers = hs;
        rq->cap_headers = cap;
    }
    char *n = strndup(name, nlen), *v = strndup(value, vlen);
    if (!n || !v)
        abort();
    rq->headers[rq->nheaders++] = (keel_header){ n, nlen, v, vlen };
    rq->header_bytes += nlen + vlen;
    return 0;
}

/* ---- components ---- */

host_component *host_component_named(keel_host *h, const char *name, size_t len)
{
    for (size_t i = 0; i < h->ncomps; i++) {
        const char *n = h->comps[i].cfg->name;
        if (strlen(n) == len && memcmp(n, name, len) == 0)
            return &h->comps[i];
    }
    return NULL;
}

bool host_component_may_call(const host_component *from, size_t to)
{
    for (size_t i = 0; i < from->ncalls; i++)
        if (from->calls[i] == to)
            return true;
    return false;
}

bool host_has_export(const keel_module *m, const char *name, const char *sig, int kind)
{
    for (size_t i = 0; i < keel_module_export_count(m); i++) {
        const keel_extern *e = keel_module_export(m, i);
        if (e->kind == kind && e->name_len == strlen(name) &&
            memcmp(e->name, name, e->name_len) == 0)
            return !sig || strcmp(e->sig, sig) == 0;
    }
    return false;
}

int host_module_load(const char *wasm, keel_engine_opts eo, keel_module **out, char *why,
                     size_t whylen)
{
    eo.background_opt = false;   /* tierup.c builds optimized code in process */
    eo.host_tables = keel_host_link_tables;
    eo.nhost_tables = KEEL_HOST_NLINK_TABLES;
    int rc = keel_module_load(wasm, &eo, out, why, whylen);
    if (rc)
        return rc;
    rc = keel_module_link_host(*out, keel_host_link_tables, KEEL_HOST_NLINK_TABLES, why, whylen);
    if (rc) {
        keel_module_free(*out);
        *out = NULL;
        return KEEL_ELINK;
    }
    return 0;
}

int host_module_fits(const host_component *c, const keel_module *mod, char *why,
                     size_t whylen)
{
    const char *wasm = keel_module_path(mod);
    if (c->cfg->abi == KEEL_ABI_WAPC) {
        if (!host_has_export(mod, "__guest_call", "ii:i", KEEL_EXTERN_FUNC))
            return keel_err(why, whylen, KEEL_EINVAL, "abi wapc needs an export "
                            "__guest_call(i32, i32) -> i32 (%s has none)", wasm);
        if (!host_has_export(mod, "memory", NULL, KEEL_EXTERN_MEMORY))
            return keel_err(why, whylen, KEEL_EINVAL, "abi wapc needs an exported memory "
                            "(%s has none)", wasm);
    } else if (!host_has_export(mod, "_start", ":", KEEL_EXTERN_FUNC)) {
        return keel_err(why, whylen, KEEL_EINVAL, "abi wagi needs a WASI command (export "
                        "_start); %s has none", wasm);
    }
    return 0;
}

static int component_setup(keel_host *h, host_component *c, const keel_host_opts *o,
                           char *err, size_t errlen)
{
    const keel_component_cfg *cfg = c->cfg;
    const char *mpath = h->m->path ? h->m->path : "keel.yaml";
    char why[1024];
    keel_engine_opts eo = o ? o->engine : (keel_engine_opts){ .tier = KEEL_TIER_AUTO };
    keel_module *mod;
    uint64_t t0 = keel_rt_now_ns();
    int rc = host_module_load(cfg->wasm, eo, &mod, why, sizeof why);
    if (!rc && (rc = host_module_fits(c, mod, why, sizeof why)))
        keel_module_free(mod);
    if (rc)
        return keel_err(err, errlen, rc == KEEL_ELINK ? KEEL_ELINK : KEEL_EINVAL,
                        "%s:%d:%d: component %s: %s", mpath,
                        cfg->wasm_pos.line, cfg->wasm_pos.col, cfg->name, why);
    /* the image comes once every component is set up (keel_host_new) */
    atomic_init(&c->stable, host_version_new(host_code_new(h, c, mod, false), cfg->wasm));
    snprintf(c->manifest_sha, sizeof c->manifest_sha, "%s", keel_module_digest(mod));
    c->has_health = host_has_export(mod, "keel_health", ":i", KEEL_EXTERN_FUNC);
    c->compile_seconds = (double)(keel_rt_now_ns() - t0) / 1e9;

    /* limits (0 in a hand-built model means the default) */
    uint64_t mem = cfg->limits.memory ? cfg->limits.memory : KEEL_DEFAULT_MEMORY;
    uint64_t pages = mem / KEEL_HOST_WASM_PAGE_BYTES;
    c->memory_pages = pages >= 65536 ? 0 : (uint32_t)(pages ? pages : 1);
    c->timeout_ns = cfg->limits.timeout_ns ? cfg->limits.timeout_ns : KEEL_DEFAULT_TIMEOUT_NS;
    c->concurrency = cfg->limits.concurrency ? cfg->limits.concurrency
                                             : KEEL_DEFAULT_CONCURRENCY;

    /* calls */
    c->calls = xcalloc(cfg->ncalls, sizeof *c->calls);
    for (size_t i = 0; i < cfg->ncalls; i++) {
        host_component *to = host_component_named(h, cfg->calls[i], strlen(cfg->calls[i]));
        if (!to)
            return keel_err(err, errlen, KEEL_EINVAL,
                            "%s:%d:%d: component %s: calls names an unknown component %s",
                            mpath, cfg->pos.line, cfg->pos.col, cfg->name, cfg->calls[i]);
        c->calls[c->ncalls++] = to->index;
    }

    /* WASI environment and preopens */
    c->env = xcalloc(cfg->nenv + 1, sizeof *c->env);
    c->env_config = xcalloc(cfg->nenv + cfg->nconfig + 1, sizeof *c->env_config);
    for (size_t i = 0; i < cfg->nenv; i++) {
        c->env[c->nenv++] = xasprintf("%s=%s", cfg->env[i].key, cfg->env[i].value);
        c->env_config[c->nenv_config++] = xasprintf("%s=%s", cfg->env[i].key,
                                                    cfg->env[i].value);
    }
    for (size_t i = 0; i < cfg->nconfig; i++)
        c->env_config[c->nenv_config++] = xasprintf("%s=%s", cfg->config[i].key,
                                                    cfg->config[i].value);
    c->preopens = xcalloc(cfg->nfiles, sizeof *c->preopens);
    for (size_t i = 0; i < cfg->nfiles; i++)
        c->preopens[c->npreopens++] = (keel_wasi_preopen){
            .host = cfg->files[i].host, .guest = cfg->files[i].guest,
            .readonly = cfg->files[i].readonly,
        };

    /* kv grants (the manifest checked that each names a store) */
    c->kv = xcalloc(cfg->nkv, sizeof *c->kv);
    for (size_t i = 0; i < cfg->nkv; i++)
        if ((c->kv[c->nkv] = keel_stores_find(h->stores, cfg->kv[i], strlen(cfg->kv[i]))))
            c->nkv++;

    keel_log(KEEL_LOG_INFO, cfg->name, "loaded %s: abi %s, tier %s, sha256 %.12s",
             cfg->wasm, cfg->abi == KEEL_ABI_WAPC ? "wapc" : "wagi",
             keel_module_tier(mod), keel_module_digest(mod));
    return 0;
}

/* ---- routes ---- */

static int cmp_exact(const void *a, const void *b)
{
    const host_route *x = a, *y = b;
    int r = strcmp(x->r->path, y->r->path);
    return r ? r : (x->comp < y->comp ? -1 : x->comp > y->comp);
}

static int cmp_prefix(const void *a, const void *b)
{
    const host_route *x = a, *y = b;
    if (x->len != y->len)
        return x->len > y->len ? -1 : 1;
    int r = strcmp(x->r->path, y->r->path);
    return r ? r : (x->comp < y->comp ? -1 : x->comp > y->comp);
}

static void build_routes(keel_host *h)
{
    size_t n = 0;
    for (size_t i = 0; i < h->ncomps; i++)
        n += h->comps[i].cfg->nroutes;
    h->exact = xcalloc(n, sizeof *h->exact);
    h->prefix = xcalloc(n, sizeof *h->prefix);
    for (size_t i = 0; i < h->ncomps; i++) {
        const keel_component_cfg *cfg = h->comps[i].cfg;
        for (size_t j = 0; j < cfg->nroutes; j++) {
            host_route r = { &cfg->routes[j], i, strlen(cfg->routes[j].path) };
            if (cfg->routes[j].prefix)
                h->prefix[h->nprefix++] = r;
            else
                h->exact[h->nexact++] = r;
        }
    }
    qsort(h->exact, h->nexact, sizeof *h->exact, cmp_exact);
    qsort(h->prefix, h->nprefix, sizeof *h->prefix, cmp_prefix);
}

static unsigned method_bit(const char *m, size_t len)
{
    static const struct { const char *name; unsigned bit; } tab[] = {
        { "GET", KEEL_M_GET }, { "HEAD", KEEL_M_HEAD }, { "POST", KEEL_M_POST },
        { "PUT", KEEL_M_PUT }, { "DELETE", KEEL_M_DELETE }, { "PATCH", KEEL_M_PATCH },
        { "OPTIONS", KEEL_M_OPTIONS },
    };
    for (size_t i = 0; i < sizeof tab / sizeof *tab; i++)
        if (strlen(tab[i].name) == len && memcmp(tab[i].name, m, len) == 0)
            return tab[i].bit;
    return 0;
}

static bool method_allowed(const keel_route *r, unsigned bit)
{
    if (!r->methods)
        return true;
    if (bit == KEEL_M_HEAD && (r->methods & KEEL_M_GET))
        return true;   /* GET routes answer HEAD */
    return (r->methods & bit) != 0;
}

static bool prefix_matches(const host_route *hr, const char *path, size_t len)
{
    const char *p = hr->r->path;
    size_t n = hr->len;
    if (n && p[n - 1] == '/') {
        /* "/x/" claims "/x", "/x/" and below ("/" claims everything) */
        if (len == n - 1 && n > 1 && memcmp(path, p, n - 1) == 0)
            return true;
        return len >= n && memcmp(path, p, n) == 0;
    }
    return len >= n && memcmp(path, p, n) == 0 && (len == n || path[n] == '/');
}

int keel_host_match(const keel_host *h, const char *method, size_t method_len,
                    const char *path, size_t path_len, keel_route_match *out)
{
    unsigned bit = method_bit(method, method_len);
    bool claimed = false;
    /* exact routes: the first with this path (binary search), then its run */
    size_t lo = 0, hi = h->nexact;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const host_route *r = &h->exact[mid];
        int c = memcmp(r->r->path, path, r->len < path_len ? r->len : path_len);
        if (c == 0)
            c = r->len < path_len ? -1 : r->len > path_len;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < h->nexact; i++) {
        const host_route *r = &h->exact[i];
        if (r->len != path_len || memcmp(r->r->path, path, path_len) != 0)
            break;
        claimed = true;
        if (method_allowed(r->r, bit)) {
            *out = (keel_route_match){ r->comp, r->r };
            return 0;
        }
    }
    /* prefix routes, longest first */
    for (size_t i = 0; i < h->nprefix; i++) {
        const host_route *r = &h->prefix[i];
        if (!prefix_matches(r, path, path_len))
            continue;
        claimed = true;
        if (method_allowed(r->r, bit)) {
            *out = (keel_route_match){ r->comp, r->r };
            return 0;
        }
    }
    return claimed ? 405 : 404;
}

/* ---- lifecycle ---- */

/* Refuses data-residency violations (logged and counted), then opens the
 * manifest's stores. */
static int host_open_stores(keel_host *h, char *err, size_t errlen)
{
    char first[1024] = "";
    int n = keel_residency_check(h->m, false, residency_report, first);
    if (n)
        return keel_err(err, errlen, KEEL_EINVAL, "%s%s", first,
                        n > 1 ? " (and more: see keel check)" : "");
    return keel_stores_open(h->m, NULL, &h->stores, err, errlen);
}

bool keel_host_stores_ready(const keel_host *h, char *why, size_t len)
{
    return keel_stores_ready(h->stores, why, len);
}

const keel_manifest *keel_host_manifest(const keel_host *h)
{
    return h->m;
}

keel_stores *keel_host_stores(const keel_host *h)
{
    return h->stores;
}

int keel_host_new(const keel_manifest *m, const keel_host_opts *o, keel_host **out,
                  char *err, size_t errlen)
{
    *out = NULL;
    int rc = keel_rt_init();
    if (rc)
        return keel_err(err, errlen, rc, "cannot start the guest runtime");
    keel_host *h = xcalloc(1, sizeof *h);
    h->m = m;
    pthread_mutex_init(&h->deploy_lock, NULL);
    if (o && o->engine.cache_dir && !(h->cache_dir = strdup(o->engine.cache_dir)))
        abort();
    h->background_opt = !o || o->engine.tier == KEEL_TIER_AUTO;
    pthread_mutex_init(&h->retire_lock, NULL);
    h->ncomps = m->ncomponents;
    h->comps = xcalloc(h->ncomps, sizeof *h->comps);
    for (size_t i = 0; i < h->ncomps; i++) {
        h->comps[i].cfg = &m->components[i];
        h->comps[i].index = i;
        atomic_init(&h->comps[i].cpu_per_wall, 1024);   /* CPU = wall until measured */
    }
    if ((rc = host_open_stores(h, err, errlen))) {
        keel_host_free(h);
        return rc;
    }
    for (size_t i = 0; i < h->ncomps; i++) {
        if ((rc = component_setup(h, &h->comps[i], o, err, errlen))) {
            keel_host_free(h);
            return rc;
        }
    }
    build_routes(h);
    host_obs_init(h);
    /* Every component is set up: make each one's instance image (call.c). */
    for (size_t i = 0; i < h->ncomps; i++)
        host_image_build(h, &h->comps[i], atomic_load(&atomic_load(&h->comps[i].stable)->code));
    host_deployment_digest(h);
    host_health_init(h);
    if (!o || o->engine.tier == KEEL_TIER_AUTO)
        host_tierup_start(h, h->cache_dir);
    *out = h;
    return 0;
}

void keel_host_release_contents(keel_host *h)
{
    host_tierup_stop(h);
    host_health_free(h);
    for (size_t i = 0; i < h->ncomps; i++) {
        host_component *c = &h->comps[i];
        keel_host_tidy();   /* this thread's; serving threads tidied */
        host_versions_free(h, c);
        free(c->calls);
        for (int j = 0; j < c->nenv; j++)
            free(c->env[j]);
        for (int j = 0; j < c->nenv_config; j++)
            free(c->env_config[j]);
        free(c->env);
        free(c->env_config);
        free(c->preopens);
        free(c->kv);
    }
    host_retired_free_all(h);
    pthread_mutex_destroy(&h->deploy_lock);
    pthread_mutex_destroy(&h->retire_lock);
    free(h->comps);
    free(h->cache_dir);
    keel_stores_close(h->stores);
    free(h->exact);
    free(h->prefix);
    host_obs_free(h);
}

void keel_host_free(keel_host *h)
{
    if (!h)
        return;
    keel_host_release_contents(h);
    free(h);
}

size_t keel_host_component_count(const keel_host *h)
{
    return h->ncomps;
}

const keel_component_cfg *keel_host_component(const keel_host *h, size_t i)
{
    return i < h->ncomps ? h->comps[i].cfg : NULL;
}

bool keel_host_admit(keel_host *h, size_t component)
{
    host_component *c = &h->comps[component];
    uint32_t cur = atomic_load_explicit(&c->inflight, memory_order_relaxed);
    do {
        if (cur >= c->concurrency) {
            keel_metrics_rejected(h->metrics, component, KEEL_REJECT_CONCURRENCY);
            return false;
        }
    } while (!atomic_compare_exchange_weak_explicit(&c->inflight, &cur, cur + 1,
                                                    memory_order_acquire,
                                                    memory_order_relaxed));
    return true;
}

void keel_host_release(keel_host *h, size_t component)
{
    atomic_fetch_sub_explicit(&h->comps[component].inflight, 1, memory_order_release);
}

/* ---- requests ---- */

static void wapc_handle(host_request *rq, host_component *comp, const keel_route *route,
                        keel_response *resp)
{
    const char *op = route && route->operation ? route->operation
                                               : KEEL_HOST_DEFAULT_OPERATION;
    host_call c = {
        .rq = rq, .comp = comp, .depth = 0, .cgi_stdout = -1,
        .op = (const uint8_t *)op, .op_len = strlen(op),
        .payload = (const uint8_t *)rq->req->body, .payload_len = rq->req->body_len,
    };
    host_result r;
    host_inv inv;
    uint64_t t0 = keel_rt_now_ns();
    host_obs_invoke_begin(rq, &inv, comp, c.op, c.op_len);
    host_wapc_run(&c, &r);
    host_obs_invoke_end(rq, &inv, r.end == HOST_OK ? KEEL_CALL_OK
                                  : r.end != HOST_TRAPPED ? KEEL_CALL_ERROR
                                  : r.o.trap == KEEL_TRAP_DEADLINE ? KEEL_CALL_DEADLINE
                                                                   : KEEL_CALL_TRAP);
    if (r.end == HOST_TRAPPED)
        host_obs_trap(rq->h, comp, r.o.trap);
    const char *name = comp->cfg->name;
    switch (r.end) {
    case HOST_OK:
        resp->status = rq->status ? rq->status : 200;
        resp->headers = rq->headers;
        resp->nheaders = rq->nheaders;
        rq->headers = NULL;
        rq->nheaders = 0;
        resp->body = (char *)c.response.data;
        resp->body_len = c.response.len;
        c.response.data = NULL;
        break;
    case HOST_GUEST_ERROR:
        keel_log(KEEL_LOG_ERROR, name, "request %s: operation %s failed (%s): %s", rq->id,
                 op, r.phase, r.why);
        host_error_response(resp, rq, 500);
        break;
    case HOST_TRAPPED:
        keel_log(KEEL_LOG_ERROR, name, "request %s: trap in %s of operation %s: %s", rq->id,
                 r.phase, op, r.why);
        host_error_response(resp, rq, r.o.trap == KEEL_TRAP_DEADLINE ? 504 : 500);
        break;
    case HOST_FAILED:
        keel_log(KEEL_LOG_ERROR, name, "request %s: cannot run operation %s: %s", rq->id, op,
                 r.why);
        host_error_response(resp, rq, 500);
        break;
    }
    host_version_record(rq->h, comp, c.version, resp->status >= 500, keel_rt_now_ns() - t0);
    host_call_free(&c);
}

typedef struct handle_args {
    host_request *rq;
    host_component *comp;
    const keel_route *route;
    keel_response *resp;
} handle_args;

static void handle_cb(void *p)
{
    handle_args *a = p;
    if (a->comp->cfg->abi == KEEL_ABI_WAPC) {
        wapc_handle(a->rq, a->comp, a->route, a->resp);
    } else {
        host_inv inv;
        const char *op = a->route ? a->route->path : "";
        host_obs_invoke_begin(a->rq, &inv, a->comp, (const uint8_t *)op, strlen(op));
        host_wagi_handle(a->rq, a->comp, a->route, a->resp);
        host_obs_invoke_end(a->rq, &inv, a->resp->status >= 500 ? KEEL_CALL_ERROR : KEEL_CALL_OK);
    }
}

void keel_host_tidy(void)
{
    keel_image_tidy();
}

void keel_host_handle(keel_host *h, const keel_route_match *m, const keel_request *req,
                      keel_response *resp)
{
    memset(resp, 0, sizeof *resp);
    host_component *comp = &h->comps[m->component];
    unsigned section = host_read_enter(h);
    host_request rq = {
        .h = h, .req = req,
        .id = req->request_id && req->request_id[0] ? req->request_id : "-",
        .deadline_ns = req->deadline_ns ? req->deadline_ns
                                        : keel_rt_now_ns() + comp->timeout_ns,
    };
    host_obs_request_begin(&rq, comp);
    rq.obs.admit = host_circuit_admit(comp);
    if (rq.obs.admit == HOST_ADMIT_REFUSE) {
        host_circuit_response(resp, &rq, comp);
        host_obs_request_end(&rq, comp, m->route, resp);
        host_read_exit(h, section);
        return;
    }
    /* The whole request runs inside one keel_rt_invoke carrying its
     * deadline, so the guest calls nested in it (initializer, __guest_call,
     * component calls) share the armed deadline instead of arming and
     * disarming the watchdog for each. Only guest code is ever stopped,
     * and only by the innermost invoke: this outer one always returns. */
    handle_args a = { &rq, comp, m->route, resp };
    keel_rt_limits lim = { .deadline_ns = rq.deadline_ns };
    keel_rt_outcome o;
    keel_rt_invoke(handle_cb, &a, &lim, &o);
    if (o.end != KEEL_RT_RETURNED) {   /* a host bug: say so, answer anyway */
        keel_log(KEEL_LOG_ERROR, comp->cfg->name,
                 "request %s: internal error: the request ended outside guest code (%s)",
                 rq.id, keel_trap_kind_name(o.trap));
        host_error_response(resp, &rq, 500);
    }
    /* The whole request shares one deadline: once any part of it ran out
     * of time, the answer is 504 even if a caller recovered. */
    if (rq.deadline_hit && resp->status != 504) {
        keel_log(KEEL_LOG_ERROR, comp->cfg->name,
                 "request %s: deadline exceeded in a nested call; answering 504", rq.id);
        host_error_response(resp, &rq, 504);
    }
    host_circuit_record(comp, rq.obs.admit, resp->status >= 500);
    host_obs_request_end(&rq, comp, m->route, resp);
    for (size_t i = 0; i < rq.nheaders; i++) {
        free((char *)rq.headers[i].name);
        free((char *)rq.headers[i].value);
    }
    free(rq.headers);
    host_read_exit(h, section);
}
