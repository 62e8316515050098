/* health.c — each component's health: the circuit breaker (error ratio
 * over a sliding window of one-second buckets; closed -> open -> one
 * half-open probe -> closed or open again), the last trap, the keel_health()
 * probe thread, and the /health and /readyz answers.
 *
 * Request path cost: one admit (an atomic load when the breaker is closed)
 * and one record (two relaxed atomic adds on the component's current
 * bucket). A bucket is reset by whichever thread first sees it belongs to
 * an older second; adds racing with that reset may be lost, which only
 * blurs a ratio by a request or two. */
#include "host/host_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HEALTH_BUCKETS 60u             /* seconds of history: /health's minute */
#define DEGRADED_ERROR_RATIO 0.01      /* last minute, at least one error */

enum { CIRCUIT_CLOSED = 0, CIRCUIT_OPEN = 1, CIRCUIT_HALF_OPEN = 2 };
enum { PROBE_NONE = 0, PROBE_OK = 1, PROBE_FAILING = 2 };

typedef struct bucket {
    _Atomic uint64_t sec;
    _Atomic uint32_t total, errors;
} bucket;

typedef struct host_health {
    bucket b[HEALTH_BUCKETS];
    _Atomic int state;
    _Atomic uint64_t open_until_ns;
    _Atomic int last_trap;             /* KEEL_TRAP_*, 0 none */
    _Atomic uint64_t last_trap_ms;     /* unix ms */
    _Atomic int probe;                 /* PROBE_* */
    _Atomic int probe_value;
    _Atomic uint64_t probe_ms;
} host_health;

typedef struct host_prober {
    keel_host *h;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
} host_prober;

static uint64_t now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec;
}

static uint64_t unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000ull + (uint64_t)ts.tv_nsec / 1000000ull;
}

static void window(const host_health *hh, uint64_t secs, uint64_t *total, uint64_t *errors)
{
    uint64_t now = now_sec();
    *total = *errors = 0;
    for (size_t i = 0; i < HEALTH_BUCKETS; i++) {
        uint64_t s = atomic_load_explicit(&hh->b[i].sec, memory_order_relaxed);
        if (s + secs > now && s <= now) {
            *total += atomic_load_explicit(&hh->b[i].total, memory_order_relaxed);
            *errors += atomic_load_explicit(&hh->b[i].errors, memory_order_relaxed);
        }
    }
}

static void record(host_health *hh, bool error)
{
    uint64_t now = now_sec();
    bucket *b = &hh->b[now % HEALTH_BUCKETS];
    uint64_t s = atomic_load_explicit(&b->sec, memory_order_relaxed);
    if (s != now && atomic_compare_exchange_strong(&b->sec, &s, now)) {
        atomic_store_explicit(&b->total, 0, memory_order_relaxed);
        atomic_store_explicit(&b->errors, 0, memory_order_relaxed);
    }
    atomic_fetch_add_explicit(&b->total, 1, memory_order_relaxed);
    if (error)
        atomic_fetch_add_explicit(&b->errors, 1, memory_order_relaxed);
}

static void clear(host_health *hh)
{
    for (size_t i = 0; i < HEALTH_BUCKETS; i++) {
        atomic_store(&hh->b[i].total, 0);
        atomic_store(&hh->b[i].errors, 0);
    }
}

int host_circuit_admit(host_component *comp)
{
    host_health *hh = comp->health;
    if (!hh || !comp->cfg->circuit.enabled)
        return HOST_ADMIT_NORMAL;
    int st = atomic_load_explicit(&hh->state, memory_order_acquire);
    if (st == CIRCUIT_CLOSED)
        return HOST_ADMIT_NORMAL;
    if (st == CIRCUIT_HALF_OPEN)
        return HOST_ADMIT_REFUSE;                  /* the probe is out */
    if (keel_rt_now_ns() < atomic_load(&hh->open_until_ns))
        return HOST_ADMIT_REFUSE;
    int open = CIRCUIT_OPEN;
    if (atomic_compare_exchange_strong(&hh->state, &open, CIRCUIT_HALF_OPEN)) {
        keel_log(KEEL_LOG_INFO, comp->cfg->name, "circuit half-open: letting one request "
                 "through as a probe");
        return HOST_ADMIT_PROBE;
    }
    return HOST_ADMIT_REFUSE;
}

static void trip(host_component *comp, const char *why)
{
    host_health *hh = comp->health;
    atomic_store(&hh->open_until_ns, keel_rt_now_ns() + comp->cfg->circuit.cooldown_ns);
    keel_log(KEEL_LOG_WARN, comp->cfg->name, "circuit open for %.1fs: %s; requests and calls "
             "to it fail fast", (double)comp->cfg->circuit.cooldown_ns / 1e9, why);
}

void host_circuit_record(host_component *comp, int admit, bool error)
{
    host_health *hh = comp->health;
    if (!hh)
        return;
    record(hh, error);
    const keel_circuit *cc = &comp->cfg->circuit;
    if (!cc->enabled)
        return;
    if (admit == HOST_ADMIT_PROBE) {
        if (error) {
            atomic_store(&hh->open_until_ns, keel_rt_now_ns() + cc->cooldown_ns);
            atomic_store(&hh->state, CIRCUIT_OPEN);
            trip(comp, "the half-open probe failed");
        } else {
            clear(hh);
            atomic_store(&hh->state, CIRCUIT_CLOSED);
            keel_log(KEEL_LOG_INFO, comp->cfg->name, "circuit closed: the probe succeeded");
        }
        return;
    }
    if (!error || atomic_load_explicit(&hh->state, memory_order_relaxed) != CIRCUIT_CLOSED)
        return;
    uint64_t total, errors;
    window(hh, cc->window_ns / 1000000000ull, &total, &errors);
    if (total < cc->min_requests || (double)errors < cc->error_ratio * (double)total)
        return;
    int closed = CIRCUIT_CLOSED;
    atomic_store(&hh->open_until_ns, keel_rt_now_ns() + cc->cooldown_ns);
    if (atomic_compare_exchange_strong(&hh->state, &closed, CIRCUIT_OPEN)) {
        char why[128];
        snprintf(why, sizeof why, "%llu of %llu requests failed in the last %llus",
                 (unsigned long long)errors, (unsigned long long)total,
                 (unsigned long long)(cc->window_ns / 1000000000ull));
        trip(comp, why);
    }
}

int host_circuit_state(const host_component *comp)
{
    return comp->health ? atomic_load(&comp->health->state) : CIRCUIT_CLOSED;
}

void host_health_trap(host_component *comp, int kind)
{
    if (!comp->health)
        return;
    atomic_store(&comp->health->last_trap, kind);
    atomic_store(&comp->health->last_trap_ms, unix_ms());
}

/* ---- keel_health() probes ---- */

/* Runs comp's keel_health() once in a fresh instance with the configured
 * timeout; records the result. Only components whose instances come from
 * an initialized image (or need no initializer) are probed. */
static void probe_one(keel_host *h, host_component *comp)
{
    host_health *hh = comp->health;
    static const keel_request no_request = { .method = "", .path = "", .query = "" };
    uint64_t timeout = h->m->obs.health_timeout_ns;
    host_request rq = {
        .h = h, .req = &no_request, .id = "health-probe",
        .deadline_ns = keel_rt_now_ns() + timeout,
    };
    unsigned section = host_read_enter(h);
    host_call c = { .rq = &rq, .comp = comp, .cgi_stdout = -1,
                    .version = atomic_load(&comp->stable) };
    host_result r;
    memset(&r, 0, sizeof r);
    host_stdio io = { -1, -1, -1 };
    int result = PROBE_FAILING, value = -1;
    if (host_instance_acquire(&c, comp->env, comp->nenv, &io, &r) == 0) {
        uint64_t vals[1] = { 0 };
        keel_rt_limits lim = { .deadline_ns = rq.deadline_ns };
        keel_rt_outcome o;
        memset(&o, 0, sizeof o);
        char err[256];
        if (keel_instance_call(c.inst, "keel_health", vals, 1, &lim, &o, err, sizeof err) == 0 &&
            o.end == KEEL_RT_RETURNED) {
            value = (int)(int32_t)(uint32_t)vals[0];
            result = value == 0 ? PROBE_OK : PROBE_FAILING;
        } else if (o.end == KEEL_RT_TRAPPED) {
            host_obs_trap(h, comp, o.trap);
        }
    }
    host_call_free(&c);
    keel_host_tidy();
    host_read_exit(h, section);
    int before = atomic_exchange(&hh->probe, result);
    atomic_store(&hh->probe_value, value);
    atomic_store(&hh->probe_ms, unix_ms());
    if (before != result)
        keel_log(result == PROBE_OK ? KEEL_LOG_INFO : KEEL_LOG_WARN, comp->cfg->name,
                 "keel_health() %s (returned %d)", result == PROBE_OK ? "healthy" : "failing",
                 value);
}

static void *prober_main(void *arg)
{
    host_prober *p = arg;
    keel_host *h = p->h;
    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        pthread_mutex_unlock(&p->mu);
        for (size_t i = 0; i < h->ncomps; i++)
            if (h->comps[i].has_health)
                probe_one(h, &h->comps[i]);
        pthread_mutex_lock(&p->mu);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t ns = (uint64_t)ts.tv_nsec + h->m->obs.health_interval_ns;
        ts.tv_sec += (time_t)(ns / 1000000000ull);
        ts.tv_nsec = (long)(ns % 1000000000ull);
        while (!p->stop && pthread_cond_timedwait(&p->cv, &p->mu, &ts) == 0)
            ;
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

void host_health_init(keel_host *h)
{
    bool any = false;
    for (size_t i = 0; i < h->ncomps; i++) {
        host_component *c = &h->comps[i];
        c->health = calloc(1, sizeof *c->health);
        if (!c->health)
            abort();
        const host_code *code = atomic_load(&atomic_load(&c->stable)->code);
        if (c->has_health && c->cfg->abi == KEEL_ABI_WAPC &&
            !(code->image_initialized || (!code->has_initialize && !code->has_start &&
                                          !code->has_wapc_init))) {
            keel_log(KEEL_LOG_WARN, c->cfg->name, "keel_health() is not probed: instances "
                     "of this component are not created initialized");
            c->has_health = false;
        }
        if (c->has_health && c->cfg->abi != KEEL_ABI_WAPC)
            c->has_health = false;
        any |= c->has_health;
    }
    if (!any)
        return;
    host_prober *p = calloc(1, sizeof *p);
    if (!p)
        abort();
    p->h = h;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (pthread_create(&p->thread, NULL, prober_main, p) != 0) {
        keel_log(KEEL_LOG_WARN, NULL, "cannot start the keel_health() probe thread");
        free(p);
        return;
    }
    h->prober = p;
}

void host_health_free(keel_host *h)
{
    host_prober *p = h->prober;
    if (p) {
        pthread_mutex_lock(&p->mu);
        p->stop = true;
        pthread_cond_signal(&p->cv);
        pthread_mutex_unlock(&p->mu);
        pthread_join(p->thread, NULL);
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->cv);
        free(p);
        h->prober = NULL;
    }
    for (size_t i = 0; i < h->ncomps; i++) {
        free(h->comps[i].health);
        h->comps[i].health = NULL;
    }
}

/* ---- /health, /readyz ---- */

static const char *const circuit_names[] = { "closed", "open", "half_open" };

void keel_host_health(keel_host *h, keel_buf *b)
{
    keel_buf_puts(b, "{\"components\":{");
    bool all_ok = true;
    unsigned section = host_read_enter(h);
    for (size_t i = 0; i < h->ncomps; i++) {
        host_component *c = &h->comps[i];
        host_health *hh = c->health;
        const host_code *code = atomic_load(&atomic_load(&c->stable)->code);
        uint64_t total = 0, errors = 0;
        if (hh)
            window(hh, HEALTH_BUCKETS, &total, &errors);
        double ratio = total ? (double)errors / (double)total : 0;
        int st = host_circuit_state(c);
        int probe = hh ? atomic_load(&hh->probe) : PROBE_NONE;
        const char *status = "ok";
        if (st == CIRCUIT_OPEN || probe == PROBE_FAILING)
            status = "failing";
        else if (st == CIRCUIT_HALF_OPEN || (errors && ratio >= DEGRADED_ERROR_RATIO))
            status = "degraded";
        all_ok &= !strcmp(status, "ok");
        keel_buf_printf(b, "%s\"", i ? "," : "");
        keel_buf_json(b, c->cfg->name);
        keel_buf_printf(b, "\":{\"status\":\"%s\",\"version\":\"%.12s\",\"tier\":\"%s\","
                        "\"abi\":\"%s\",\"requests_1m\":%llu,\"errors_1m\":%llu,"
                        "\"error_ratio_1m\":%.4f,\"inflight\":%u,\"circuit\":\"%s\"",
                        status, keel_module_digest(code->mod), keel_module_tier(code->mod),
                        c->cfg->abi == KEEL_ABI_WAPC ? "wapc" : "wagi",
                        (unsigned long long)total, (unsigned long long)errors, ratio,
                        atomic_load(&c->inflight), circuit_names[st % 3]);
        int trap = hh ? atomic_load(&hh->last_trap) : 0;
        if (trap) {
            uint64_t ms = atomic_load(&hh->last_trap_ms);
            time_t secs = (time_t)(ms / 1000);
            struct tm tm;
            gmtime_r(&secs, &tm);
            keel_buf_printf(b, ",\"last_trap\":{\"kind\":\"%s\",\"time\":\"%04d-%02d-%02dT"
                            "%02d:%02d:%02d.%03dZ\"}", keel_trap_kind_name((keel_trap_kind)trap),
                            tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                            tm.tm_min, tm.tm_sec, (int)(ms % 1000));
        } else {
            keel_buf_puts(b, ",\"last_trap\":null");
        }
        if (c->has_health)
            keel_buf_printf(b, ",\"health_probe\":{\"status\":\"%s\",\"value\":%d}",
                            probe == PROBE_OK ? "ok" : probe == PROBE_FAILING ? "failing"
                                                                             : "pending",
                            hh ? atomic_load(&hh->probe_value) : 0);
        keel_buf_puts(b, "}");
    }
    host_read_exit(h, section);
    keel_buf_printf(b, "},\"status\":\"%s\"}\n", all_ok ? "ok" : "degraded");
}

bool keel_host_ready(keel_host *h, char *why, size_t len)
{
    for (size_t i = 0; i < h->ncomps; i++)
        if (!atomic_load(&h->comps[i].stable)) {
            snprintf(why, len, "component %s is not loaded", h->comps[i].cfg->name);
            return false;
        }
    /* every store open and its backend reachable (a Redis that is down) */
    if (!keel_host_stores_ready(h, why, len))
        return false;
    snprintf(why, len, "ok");
    return true;
}
