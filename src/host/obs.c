/* obs.c — the host's operability hooks: what a request, an invocation, a
 * component call, a trap and an instance record in the metrics registry,
 * the log (request context, access log, guest lines) and the trace (spans
 * for the request, the routed component's invocation and every
 * __host_call). host.c, wapc.c, wagi.c and call.c call these at the points
 * where those things begin and end; nothing here takes a lock. */
#include "host/host_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/proc.h"
#include "config/residency.h"
#include "base/sha256.h"

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p)
        abort();
    return p;
}

static void on_log_drop(size_t comp)
{
    keel_metrics_log_dropped(keel_metrics_global, comp);
}

/* The route as labels show it: its path, "*" after a prefix; "-" for none.
 * Cut to fit len (at least 2). */
static void route_label(const keel_route *route, char *buf, size_t len)
{
    if (!route) {
        memcpy(buf, "-", 2);
        return;
    }
    size_t n = strnlen(route->path, len - 2);
    memcpy(buf, route->path, n);
    if (route->prefix)
        buf[n++] = '*';
    buf[n] = 0;
}

static void config_digest(keel_host *h);

void host_obs_init(keel_host *h)
{
    size_t n = h->ncomps;
    keel_log_guest_limit(n, h->m->obs.guest_log_rate);
    keel_log_on_drop = on_log_drop;
    config_digest(h);
    /* KEEL_METRICS=0: no registry (every record is then one NULL test);
     * for measuring what counting costs (bench/obs/run.sh). */
    const char *off = getenv("KEEL_METRICS");
    if (off && !strcmp(off, "0"))
        return;
    const char **names = xcalloc(n, sizeof *names);
    size_t *nroutes = xcalloc(n, sizeof *nroutes), *ncalls = xcalloc(n, sizeof *ncalls);
    const char ***routes = xcalloc(n, sizeof *routes);
    const size_t **calls = xcalloc(n, sizeof *calls);
    char **labels = NULL;
    size_t nlabels = 0, total = 0;
    for (size_t i = 0; i < n; i++)
        total += h->comps[i].cfg->nroutes;
    labels = xcalloc(total, sizeof *labels);
    for (size_t i = 0; i < n; i++) {
        const keel_component_cfg *cfg = h->comps[i].cfg;
        names[i] = cfg->name;
        nroutes[i] = cfg->nroutes;
        routes[i] = xcalloc(cfg->nroutes, sizeof **routes);
        for (size_t j = 0; j < cfg->nroutes; j++) {
            const keel_route *r = &cfg->routes[j];
            size_t len = strlen(r->path) + 2;
            char *l = malloc(len);
            if (!l)
                abort();
            route_label(r, l, len);
            labels[nlabels++] = l;
            routes[i][j] = l;
        }
        ncalls[i] = h->comps[i].ncalls;
        calls[i] = h->comps[i].calls;
    }
    const char *traps[KEEL_TRAP_HOST + 1];
    for (int k = 0; k <= KEEL_TRAP_HOST; k++)
        traps[k] = keel_trap_kind_name((keel_trap_kind)k);
    keel_metrics_schema s = {
        .ncomps = n, .comps = names, .nroutes = nroutes,
        .routes = (const char *const *const *)routes, .ncalls = ncalls, .calls = calls,
        .ntrap_kinds = KEEL_TRAP_HOST + 1, .trap_kinds = traps,
    };
    h->metrics = keel_metrics_new(&s);
    keel_metrics_global = h->metrics;
    for (size_t i = 0; i < nlabels; i++)
        free(labels[i]);
    for (size_t i = 0; i < n; i++)
        free((void *)routes[i]);
    free(labels);
    free(routes);
    free(names);
    free(nroutes);
    free(ncalls);
    free((void *)calls);

}

/* The manifest's digest: which configuration is running. */
static void config_digest(keel_host *h)
{
    char *text = NULL, why[128];
    size_t len = 0;
    snprintf(h->config_digest, sizeof h->config_digest, "none");
    if (h->m->path && keel_read_file(h->m->path, KEEL_MAX_MANIFEST_BYTES, &text, &len, why,
                                     sizeof why) == 0) {
        char hex[65];
        keel_sha256_hex(text, len, hex);
        snprintf(h->config_digest, sizeof h->config_digest, "%.16s", hex);
    }
    free(text);
}

void host_obs_free(keel_host *h)
{
    if (keel_metrics_global == h->metrics)
        keel_log_on_drop = NULL;
    keel_metrics_free(h->metrics);
    h->metrics = NULL;
}

/* Sets a span field to a C string. */
static void span_str(keel_span *s, keel_span_field f, const char *v)
{
    keel_span_set(s, f, v, strlen(v));
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Span times are wall-clock nanoseconds (OTLP's Unix time). Rather than
 * read a second clock per span edge, each thread keeps the offset between
 * the wall clock and the monotonic one, re-read once a second, and
 * converts the monotonic readings it already has. */
static uint64_t real_of(uint64_t mono)
{
    static _Thread_local uint64_t tl_mono0, tl_off;
    if (!tl_mono0 || mono - tl_mono0 > 1000000000ull) {
        tl_off = keel_trace_now_ns() - mono_ns();
        tl_mono0 = mono;
    }
    return mono + tl_off;
}

/* Reading a thread's CPU clock is a system call (2 us or more on a loaded
 * VM, twice per invocation): a thread measures the CPU time of one request
 * per KEEL_OBS_CPU_PERIOD_NS (the first one included), so at low rates
 * every request is measured and at high rates a few hundred per second.
 * An invocation not measured is charged its own wall time (without its
 * callees') times its component's CPU share seen in the last measured
 * ones (host_component.cpu_per_wall; 1 until measured). */
#define KEEL_OBS_CPU_PERIOD_NS 2000000ull
static _Thread_local uint64_t tl_cpu_next;

static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static const keel_header *find_header(const keel_request *req, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < req->nheaders; i++)
        if (req->headers[i].name_len == n && strncasecmp(req->headers[i].name, name, n) == 0)
            return &req->headers[i];
    return NULL;
}

/* A tracestate worth keeping: printable ASCII, within the bound. */
static bool state_ok(const char *v, size_t len)
{
    if (len == 0 || len >= KEEL_TRACE_MAX_STATE)
        return false;
    for (size_t i = 0; i < len; i++)
        if (v[i] < 0x20 || v[i] > 0x7e)
            return false;
    return true;
}

void host_obs_request_begin(host_request *rq, host_component *comp)
{
    (void)comp;
    host_req_obs *o = &rq->obs;
    o->start_mono = mono_ns();
    o->cpu_sampled = rq->h->metrics && o->start_mono >= tl_cpu_next;
    if (o->cpu_sampled)
        tl_cpu_next = o->start_mono + KEEL_OBS_CPU_PERIOD_NS;
    const keel_request *req = rq->req;
    const keel_header *tp = req->headers ? find_header(req, "traceparent") : NULL;
    if (tp && keel_traceparent_parse(tp->value, tp->value_len, &o->tc)) {
        o->has_parent = true;
        const keel_header *ts = find_header(req, "tracestate");
        if (ts && state_ok(ts->value, ts->value_len))
            keel_span_text(o->tc.state, sizeof o->tc.state, ts->value, ts->value_len);
    } else {
        keel_trace_new_id(o->tc.trace_id, 16);
        o->tc.sampled = keel_trace_sample_new();
    }
    keel_trace_hex(o->tc.trace_id, 16, o->trace_hex);
    keel_trace_new_span_hex(o->span_hex);
    o->lc = (keel_log_ctx){ .request_id = rq->id, .trace_id = o->trace_hex,
                            .span_id = o->span_hex };
    o->prev_lc = keel_log_ctx_set(&o->lc);
}


void host_obs_request_end(host_request *rq, host_component *comp, const keel_route *route,
                          const keel_response *resp)
{
    host_req_obs *o = &rq->obs;
    uint64_t end = mono_ns(), dur = end - o->start_mono;
    const keel_request *req = rq->req;
    int method = keel_metrics_method(req->method ? req->method : "", req->method_len);
    size_t ridx = route && comp->cfg->nroutes && route >= comp->cfg->routes &&
                  route < comp->cfg->routes + comp->cfg->nroutes
                ? (size_t)(route - comp->cfg->routes) : (size_t)-1;
    keel_metrics *m = rq->h->metrics;
    keel_metrics_request(m, comp->index, ridx, method, resp->status, dur);
    if (resp->status == 504)
        keel_metrics_deadline(m, comp->index);
    char rl[300];
    route_label(route, rl, sizeof rl);
    if (rq->h->m->obs.access_log && KEEL_LOG_INFO >= keel_log_min) {
        char path[512];
        keel_span_text(path, sizeof path, req->path, req->path ? req->path_len : 0);
        keel_log_fields f = { .status = resp->status, .duration_ns = (int64_t)dur,
                              .method = req->method, .path = path, .route = rl,
                              .wall_ns = real_of(end) };
        keel_log_fields_queue(KEEL_LOG_INFO, comp->cfg->name, &f, "request");
    }
    keel_span *s = o->tc.sampled ? keel_span_begin() : NULL;
    if (s) {
        memcpy(s->trace_hex, o->trace_hex, 32);
        memcpy(s->span_hex, o->span_hex, 16);
        if (o->has_parent) {
            char parent[17];
            keel_trace_hex(o->tc.span_id, 8, parent);
            memcpy(s->parent_hex, parent, 16);
        }
        s->kind = KEEL_SPAN_SERVER;
        s->error = resp->status >= 500;
        s->start_ns = real_of(o->start_mono);
        s->end_ns = real_of(end);
        s->http_status = resp->status;
        size_t rlen = strlen(rl);
        keel_span_set(s, KEEL_SF_NAME, req->method, req->method_len);
        keel_span_add(s, " ", 1);
        keel_span_add(s, rl, rlen);
        keel_span_set(s, KEEL_SF_METHOD, req->method, req->method_len);
        span_str(s, KEEL_SF_COMPONENT, comp->cfg->name);
        keel_span_set(s, KEEL_SF_ROUTE, rl, rlen);
        span_str(s, KEEL_SF_REQUEST_ID, rq->id);
        if (o->tc.state[0])
            span_str(s, KEEL_SF_STATE, o->tc.state);
        keel_span_commit(s);
    }
    keel_log_ctx_set(o->prev_lc);
}

void host_obs_invoke_begin(host_request *rq, host_inv *inv, host_component *comp,
                           const uint8_t *op, size_t op_len)
{
    host_req_obs *o = &rq->obs;
    memset(inv, 0, sizeof *inv);
    inv->parent = o->cur;
    inv->comp = comp;
    inv->op = (const char *)op;
    inv->op_len = op_len;
    inv->start_mono = mono_ns();
    inv->cpu_start = o->cpu_sampled ? cpu_ns() : 0;
    keel_trace_new_span_hex(inv->span_hex);
    o->cur = inv;
    o->lc.span_id = inv->span_hex;
}

static const char *const outcome_text[] = {
    "ok", "error", "trap", "deadline", "refused", "circuit_open",
};

void host_obs_invoke_end(host_request *rq, host_inv *inv, keel_call_outcome outcome)
{
    host_req_obs *o = &rq->obs;
    uint64_t end = mono_ns();
    uint64_t wall = end - inv->start_mono;
    uint64_t self_wall = wall > inv->child_wall ? wall - inv->child_wall : 0;
    uint64_t total_cpu = 0;
    keel_metrics *m = rq->h->metrics;
    if (o->cpu_sampled) {
        total_cpu = cpu_ns() - inv->cpu_start;
        uint64_t self_cpu = total_cpu > inv->child_cpu ? total_cpu - inv->child_cpu : 0;
        keel_metrics_cpu(m, inv->comp->index, self_cpu);
        if (self_wall) {
            uint64_t share = self_cpu >= self_wall ? 1024 : self_cpu * 1024 / self_wall;
            atomic_store_explicit(&inv->comp->cpu_per_wall, (uint32_t)share,
                                  memory_order_relaxed);
        }
    } else if (m) {
        uint32_t share = atomic_load_explicit(&inv->comp->cpu_per_wall, memory_order_relaxed);
        keel_metrics_cpu(m, inv->comp->index, self_wall * share / 1024);
    }
    host_inv *parent = inv->parent;
    if (parent) {
        parent->child_cpu += total_cpu;
        parent->child_wall += wall;
        keel_metrics_call(m, parent->comp->index, inv->comp->index, outcome,
                          end - inv->start_mono);
    }
    keel_span *s = o->tc.sampled ? keel_span_begin() : NULL;
    if (s) {
        memcpy(s->trace_hex, o->trace_hex, 32);
        memcpy(s->span_hex, inv->span_hex, 16);
        memcpy(s->parent_hex, parent ? parent->span_hex : o->span_hex, 16);
        s->kind = parent ? KEEL_SPAN_CLIENT : KEEL_SPAN_INTERNAL;
        s->error = outcome != KEEL_CALL_OK;
        s->start_ns = real_of(inv->start_mono);
        s->end_ns = real_of(end);
        const char *name = inv->comp->cfg->name;
        size_t nl = strlen(name), ol = inv->op ? inv->op_len : 0;
        if (parent)
            keel_span_set(s, KEEL_SF_NAME, "call ", 5);
        else
            keel_span_set(s, KEEL_SF_NAME, "invoke ", 7);
        keel_span_add(s, name, nl > 20 ? 20 : nl);
        keel_span_add(s, "/", 1);
        keel_span_add(s, inv->op, ol);
        keel_span_set(s, KEEL_SF_COMPONENT, name, nl);
        keel_span_set(s, KEEL_SF_OPERATION, inv->op, ol);
        if (parent)
            span_str(s, KEEL_SF_CALLER, parent->comp->cfg->name);
        span_str(s, KEEL_SF_OUTCOME, outcome_text[outcome]);
        keel_span_commit(s);
    }
    o->cur = parent;
    o->lc.span_id = parent ? parent->span_hex : o->span_hex;
}

void host_obs_trap(keel_host *h, host_component *comp, int kind)
{
    keel_metrics_trap(h->metrics, comp->index, kind);
    host_health_trap(comp, kind);
}

void host_obs_instance_begin(host_call *c)
{
    if (c->is_template || !c->rq || !c->rq->h)
        return;
    c->obs_mem = c->ctx.mem ? (int64_t)c->ctx.mem->size : 0;
    keel_metrics_instance(c->rq->h->metrics, c->comp->index, true, c->obs_mem);
}

void host_obs_instance_end(host_call *c)
{
    if (c->is_template || !c->rq || !c->rq->h || !c->obs_mem)
        return;
    keel_metrics_instance(c->rq->h->metrics, c->comp->index, false, -c->obs_mem);
    c->obs_mem = 0;
}

void host_obs_guest_line(const host_component *comp, keel_log_level level, const char *fmt, ...)
{
    if (level < keel_log_min)
        return;
    char msg[KEEL_HOST_MAX_LOG_BYTES + 256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    keel_log_guest(comp->index, comp->cfg->name, level, "%s", msg);
}

/* ---- the host's part of /metrics ---- */

void keel_host_metrics(keel_host *h, keel_buf *b)
{
    keel_metrics_render(h->metrics, b);
    unsigned section = host_read_enter(h);
    keel_prom_family(b, "keel_inflight_requests", "gauge",
                     "Requests admitted to the component and not yet answered.");
    for (size_t i = 0; i < h->ncomps; i++) {
        const char *l[] = { "component", h->comps[i].cfg->name };
        keel_prom_sample_u(b, "keel_inflight_requests", l, 1, atomic_load(&h->comps[i].inflight));
    }
    keel_prom_family(b, "keel_component_info", "gauge",
                     "Always 1: the component's module version (wasm sha256 prefix) and tier.");
    for (size_t i = 0; i < h->ncomps; i++) {
        char ver[13];
        const host_code *code = atomic_load(&atomic_load(&h->comps[i].stable)->code);
        snprintf(ver, sizeof ver, "%.12s", keel_module_digest(code->mod));
        const char *l[] = { "component", h->comps[i].cfg->name, "version", ver, "tier",
                            keel_module_tier(code->mod) };
        keel_prom_sample_u(b, "keel_component_info", l, 3, 1);
    }
    keel_prom_family(b, "keel_compile_seconds", "gauge",
                     "Time to load and compile the component's module at start, by tier.");
    for (size_t i = 0; i < h->ncomps; i++) {
        const char *l[] = { "component", h->comps[i].cfg->name, "tier",
                            keel_module_tier(atomic_load(&atomic_load(&h->comps[i].stable)->code)->mod) };
        keel_prom_sample(b, "keel_compile_seconds", l, 2, h->comps[i].compile_seconds);
    }
    keel_prom_family(b, "keel_circuit_state", "gauge",
                     "Circuit breaker: 0 closed, 1 open (failing fast), 2 half-open (probing).");
    for (size_t i = 0; i < h->ncomps; i++) {
        const char *l[] = { "component", h->comps[i].cfg->name };
        keel_prom_sample_u(b, "keel_circuit_state", l, 1,
                           (uint64_t)host_circuit_state(&h->comps[i]));
    }
    keel_prom_family(b, "keel_kv_denied_total", "counter",
                     "Key-value calls refused: the store is not in the component's kv grants.");
    for (size_t i = 0; i < h->ncomps; i++) {
        const char *l[] = { "component", h->comps[i].cfg->name };
        keel_prom_sample_u(b, "keel_kv_denied_total", l, 1,
                           atomic_load_explicit(&h->comps[i].kv_denied, memory_order_relaxed));
    }
    keel_prom_family(b, "keel_residency_denials_total", "counter",
                     "Data-residency rules that refused a store, a kv grant or a calls edge "
                     "(a refused manifest never starts; reloads will count here).");
    keel_prom_sample_u(b, "keel_residency_denials_total", NULL, 0, keel_residency_denials());
    keel_prom_family(b, "keel_config_digest_info", "gauge",
                     "Always 1: sha256 prefix of the manifest file running.");
    const char *l[] = { "digest", h->config_digest };
    keel_prom_sample_u(b, "keel_config_digest_info", l, 1, 1);
    host_read_exit(h, section);
    host_versions_metrics(h, b);
    host_live_metrics(b);
}

uint64_t host_obs_store_begin(const host_call *c)
{
    return c->rq->obs.tc.sampled && keel_tracer_on() ? mono_ns() : 0;
}

void host_obs_store_end(const host_call *c, uint64_t start, const char *op,
                        const keel_store *st, int64_t rc)
{
    if (!start)
        return;
    const host_req_obs *o = &c->rq->obs;
    const keel_store_cfg *cfg = keel_store_cfg_of((keel_store *)st);
    keel_span *s = keel_span_begin();
    if (!s)
        return;
    char hex[17];
    keel_trace_new_span_hex(hex);
    memcpy(s->trace_hex, o->trace_hex, 32);
    memcpy(s->span_hex, hex, 16);
    memcpy(s->parent_hex, o->cur ? o->cur->span_hex : o->span_hex, 16);
    s->kind = KEEL_SPAN_CLIENT;
    s->error = rc < 0 && rc != KEEL_KV_ABSENT;
    s->start_ns = real_of(start);
    s->end_ns = real_of(mono_ns());
    keel_span_set(s, KEEL_SF_NAME, "kv ", 3);
    keel_span_add(s, op, strlen(op));
    keel_span_add(s, " ", 1);
    keel_span_add(s, cfg->name, strlen(cfg->name));
    span_str(s, KEEL_SF_COMPONENT, c->comp->cfg->name);
    span_str(s, KEEL_SF_OPERATION, op);
    span_str(s, KEEL_SF_STORE, cfg->name);
    s->db_system = cfg->backend == KEEL_STORE_REDIS ? "redis" : "sqlite";
    span_str(s, KEEL_SF_OUTCOME, rc >= 0 ? "ok" : keel_kv_strerror((int)rc));
    keel_span_commit(s);
}
