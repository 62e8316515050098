/* versions.c — what code a component runs, and when replaced code is freed.
 *
 * A component has a stable version and, during a canary, a canary version
 * that serves canary_weight percent of its invocations (the pick is made
 * per invocation, so a nested __host_call into a canaried component is
 * split the same way). A version owns its current code; the optimized tier
 * replaces a version's code, a deploy or promote replaces the version.
 *
 * Freeing: every request runs inside a read section of its host (two
 * counters, chosen by the parity of read_epoch). A replaced code or
 * version goes on h->retired; keel_host_reap then flips the epoch and waits,
 * without blocking anyone, until the counter of the old parity drains:
 * every request that could have loaded the replaced pointer has then
 * ended, and what it replaced is freed. Readers that enter after the flip
 * can only load what replaced it. keel_host_reap runs after each request (the
 * server's tidy hook) and from the admin thread, so a version is freed
 * soon after its last request ends.
 *
 * Statistics: each version counts its invocations, its failed ones (5xx,
 * trap, guest error, deadline) and their latencies in a sliding window of
 * rollout.window; a canary is compared with the stable version each
 * HOST_ROLLOUT_CHECK_EVERY invocations and rolled back by Keel when worse
 * (rollout: in docs/config.md). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin/audit.h"
#include "base/sha256.h"
#include "host/host_int.h"

#define HOST_ROLLOUT_CHECK_EVERY 16u

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (!p)
        abort();
    return p;
}

/* ---- read sections and retirement ---- */

typedef struct host_retired {
    host_code *code;              /* one of the two is set */
    host_version *version;
    struct host_retired *next;
} host_retired;

unsigned host_read_enter(keel_host *h)
{
    unsigned slot = atomic_load(&h->read_epoch) & 1u;
    atomic_fetch_add(&h->readers[slot], 1);
    return slot;
}

void host_read_exit(keel_host *h, unsigned slot)
{
    atomic_fetch_sub(&h->readers[slot], 1);
}

void host_code_free(host_code *code)
{
    if (!code)
        return;
    keel_image_free(code->image);
    keel_module_free(code->mod);
    free(code);
}

static void version_free(host_version *v)
{
    if (!v)
        return;
    host_code_free(atomic_load(&v->code));
    free(v->source);
    free(v);
}

static void retired_free(host_retired *r)
{
    while (r) {
        host_retired *next = r->next;
        if (r->version)
            version_free(r->version);
        else
            host_code_free(r->code);
        free(r);
        r = next;
    }
}

/* Queues a replaced code or version (no longer reachable from the
 * component) for freeing. */
static void retire(keel_host *h, host_code *code, host_version *v)
{
    if (!code && !v)
        return;
    host_retired *r = xcalloc(1, sizeof *r);
    r->code = code;
    r->version = v;
    pthread_mutex_lock(&h->retire_lock);
    r->next = h->retired;
    h->retired = r;
    atomic_store(&h->retire_pending, true);
    pthread_mutex_unlock(&h->retire_lock);
}

void keel_host_reap(keel_host *h)
{
    if (!atomic_load_explicit(&h->retire_pending, memory_order_relaxed))
        return;
    if (pthread_mutex_trylock(&h->retire_lock) != 0)
        return;                   /* someone else is reaping */
    host_retired *done = NULL;
    if (h->waiting && atomic_load(&h->readers[h->wait_slot]) == 0) {
        done = h->waiting;
        h->waiting = NULL;
    }
    if (!h->waiting && h->retired) {
        h->waiting = h->retired;
        h->retired = NULL;
        h->wait_slot = atomic_fetch_add(&h->read_epoch, 1) & 1u;
        if (atomic_load(&h->readers[h->wait_slot]) == 0) {
            host_retired *tail = h->waiting;
            while (tail->next)
                tail = tail->next;
            tail->next = done;
            done = h->waiting;
            h->waiting = NULL;
        }
    }
    atomic_store(&h->retire_pending, h->waiting != NULL || h->retired != NULL);
    pthread_mutex_unlock(&h->retire_lock);
    retired_free(done);
}

void host_retired_free_all(keel_host *h)
{
    retired_free(h->retired);
    retired_free(h->waiting);
    h->retired = h->waiting = NULL;
}

/* ---- codes and versions ---- */

host_code *host_code_new(keel_host *h, host_component *comp, keel_module *mod, bool image)
{
    host_code *code = xcalloc(1, sizeof *code);
    code->mod = mod;
    code->has_initialize = host_has_export(mod, "_initialize", ":", KEEL_EXTERN_FUNC);
    code->has_start = host_has_export(mod, "_start", ":", KEEL_EXTERN_FUNC);
    code->has_wapc_init = host_has_export(mod, "wapc_init", ":", KEEL_EXTERN_FUNC);
    if (image)
        host_image_build(h, comp, code);
    return code;
}

host_version *host_version_new(host_code *code, const char *source)
{
    host_version *v = xcalloc(1, sizeof *v);
    atomic_init(&v->code, code);
    snprintf(v->sha, sizeof v->sha, "%s", keel_module_digest(code->mod));
    if (!(v->source = strdup(source ? source : "")))
        abort();
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    v->created_real_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    return v;
}

void host_code_swap(keel_host *h, host_version *v, host_code *code)
{
    host_code *old = atomic_exchange_explicit(&v->code, code, memory_order_acq_rel);
    retire(h, old, NULL);
}

size_t host_versions_live(host_component *comp, host_version **out)
{
    size_t n = 0;
    host_version *s = atomic_load(&comp->stable), *c = atomic_load(&comp->canary);
    if (s)
        out[n++] = s;
    if (c)
        out[n++] = c;
    if (comp->staged)
        out[n++] = comp->staged;
    return n;
}

void host_versions_free(keel_host *h, host_component *comp)
{
    (void)h;
    version_free(atomic_load(&comp->stable));
    version_free(atomic_load(&comp->canary));
    version_free(comp->staged);
    version_free(comp->previous);
    atomic_store(&comp->stable, NULL);
    atomic_store(&comp->canary, NULL);
    comp->staged = comp->previous = NULL;
}

void host_version_retire(keel_host *h, host_version *v)
{
    retire(h, NULL, v);
}

/* ---- picking and statistics ---- */

static _Thread_local uint64_t pick_state;

host_version *host_version_pick(host_component *comp)
{
    host_version *c = atomic_load_explicit(&comp->canary, memory_order_acquire);
    if (c) {
        uint32_t w = atomic_load_explicit(&comp->canary_weight, memory_order_relaxed);
        if (!pick_state)
            pick_state = (uint64_t)(uintptr_t)&pick_state ^ keel_rt_now_ns();
        pick_state ^= pick_state << 13;
        pick_state ^= pick_state >> 7;
        pick_state ^= pick_state << 17;
        if (w && pick_state % 100u < w)
            return c;
    }
    return atomic_load_explicit(&comp->stable, memory_order_acquire);
}

/* A latency's bucket: a quarter octave of microseconds. */
static unsigned lat_bucket(uint64_t ns)
{
    uint64_t us = ns / 1000u + 1u;
    unsigned o = 63u - (unsigned)__builtin_clzll(us);
    unsigned frac = o >= 2 ? (unsigned)(us >> (o - 2)) & 3u : 0u;
    unsigned b = o * 4u + frac;
    return b < HOST_LAT_BUCKETS ? b : HOST_LAT_BUCKETS - 1u;
}

/* The upper bound (ns) of bucket b. */
static double lat_bucket_top(unsigned b)
{
    unsigned o = b / 4u, frac = b % 4u;
    double lo = o >= 2 ? ldexp(4.0 + frac, (int)o - 2) : (double)(1u << o);
    double step = o >= 2 ? ldexp(1.0, (int)o - 2) : 1.0;
    return (lo + step - 1.0) * 1000.0;
}

static uint64_t slot_len_ns(const keel_host *h)
{
    uint64_t w = h->m->rollout.window_ns ? h->m->rollout.window_ns
                                         : KEEL_DEFAULT_ROLLOUT_WINDOW_NS;
    return w / HOST_WIN_SLOTS ? w / HOST_WIN_SLOTS : 1;
}

typedef struct win_sum {
    uint64_t n, err;
    uint64_t lat[HOST_LAT_BUCKETS];
} win_sum;

static void window_sum(const keel_host *h, host_version *v, win_sum *s)
{
    memset(s, 0, sizeof *s);
    uint64_t now = keel_rt_now_ns() / slot_len_ns(h);
    for (unsigned i = 0; i < HOST_WIN_SLOTS; i++) {
        host_win_slot *w = &v->win[i];
        uint64_t e = atomic_load_explicit(&w->epoch, memory_order_acquire);
        if (e + HOST_WIN_SLOTS <= now || e > now)
            continue;
        s->n += atomic_load_explicit(&w->n, memory_order_relaxed);
        s->err += atomic_load_explicit(&w->err, memory_order_relaxed);
        for (unsigned b = 0; b < HOST_LAT_BUCKETS; b++)
            s->lat[b] += atomic_load_explicit(&w->lat[b], memory_order_relaxed);
    }
}

/* The p99 latency (ns, a bucket's upper bound) of s; 0 when empty. */
static double window_p99(const win_sum *s)
{
    uint64_t total = 0;
    for (unsigned b = 0; b < HOST_LAT_BUCKETS; b++)
        total += s->lat[b];
    if (!total)
        return 0;
    uint64_t want = total - total / 100u, seen = 0;
    for (unsigned b = 0; b < HOST_LAT_BUCKETS; b++) {
        seen += s->lat[b];
        if (seen >= want)
            return lat_bucket_top(b);
    }
    return lat_bucket_top(HOST_LAT_BUCKETS - 1);
}

/* Compares comp's canary with its stable version over the window; rolls
 * the canary back when it is worse (the thresholds of rollout:). */
static void rollout_check(keel_host *h, host_component *comp, host_version *canary)
{
    const keel_rollout_cfg *rc = &h->m->rollout;
    host_version *stable = atomic_load(&comp->stable);
    win_sum c, s;
    window_sum(h, canary, &c);
    if (c.n < (rc->min_requests ? rc->min_requests : 1))
        return;
    window_sum(h, stable, &s);
    double cr = (double)c.err / (double)c.n;
    double sr = s.n ? (double)s.err / (double)s.n : 0.0;
    double cp = window_p99(&c), sp = window_p99(&s);
    double win_s = (double)(slot_len_ns(h) * HOST_WIN_SLOTS) / 1e9;
    char why[400];
    if (cr > sr + rc->max_error_ratio_increase) {
        snprintf(why, sizeof why, "error ratio %.4f over %llu requests vs stable %.4f over "
                 "%llu (allowed increase %.4f, window %.0f s)", cr, (unsigned long long)c.n, sr,
                 (unsigned long long)s.n, rc->max_error_ratio_increase, win_s);
    } else if (s.n && cp > (double)rc->min_p99_ns && cp > rc->max_p99_ratio * sp) {
        snprintf(why, sizeof why, "p99 latency %.1f ms over %llu requests vs stable %.1f ms "
                 "over %llu (allowed ratio %.2f, window %.0f s)", cp / 1e6,
                 (unsigned long long)c.n, sp / 1e6, (unsigned long long)s.n,
                 rc->max_p99_ratio, win_s);
    } else {
        return;
    }
    host_canary_auto_rollback(h, comp, canary, why);
}

void host_version_record(keel_host *h, host_component *comp, host_version *v, bool error,
                         uint64_t dur_ns)
{
    if (!v)
        return;
    uint64_t n = atomic_fetch_add_explicit(&v->requests, 1, memory_order_relaxed) + 1;
    if (error)
        atomic_fetch_add_explicit(&v->errors, 1, memory_order_relaxed);
    uint64_t now = keel_rt_now_ns() / slot_len_ns(h);
    host_win_slot *w = &v->win[now % HOST_WIN_SLOTS];
    uint64_t e = atomic_load_explicit(&w->epoch, memory_order_acquire);
    if (e != now && atomic_compare_exchange_strong(&w->epoch, &e, now)) {
        /* this thread starts the slot's new period (a racing record may be
         * lost: statistics, not accounting) */
        atomic_store_explicit(&w->n, 0, memory_order_relaxed);
        atomic_store_explicit(&w->err, 0, memory_order_relaxed);
        for (unsigned b = 0; b < HOST_LAT_BUCKETS; b++)
            atomic_store_explicit(&w->lat[b], 0, memory_order_relaxed);
    }
    atomic_fetch_add_explicit(&w->n, 1, memory_order_relaxed);
    if (error)
        atomic_fetch_add_explicit(&w->err, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&w->lat[lat_bucket(dur_ns)], 1, memory_order_relaxed);
    if (n % HOST_ROLLOUT_CHECK_EVERY == 0 &&
        atomic_load_explicit(&comp->canary, memory_order_relaxed) == v)
        rollout_check(h, comp, v);
}

/* ---- reporting ---- */

static void version_sample(keel_buf *b, const char *family, const host_component *c,
                           const host_version *v, const char *role, double value)
{
    keel_buf_printf(b, "%s{component=\"%s\",version=\"%.12s\",role=\"%s\"} %.17g\n", family,
                    c->cfg->name, v->sha, role, value);
}

void host_versions_metrics(keel_host *h, keel_buf *b)
{
    static const struct { const char *name, *type, *help; } fam[] = {
        { "keel_component_version_requests_total", "counter",
          "Invocations of a component version (stable or canary)" },
        { "keel_component_version_errors_total", "counter",
          "Failed invocations of a component version (5xx, trap, guest error, deadline)" },
        { "keel_component_version_error_ratio", "gauge",
          "Error ratio of a component version over the rollout window" },
        { "keel_component_version_p99_seconds", "gauge",
          "p99 latency of a component version over the rollout window" },
        { "keel_component_version_weight", "gauge",
          "Percent of a component's invocations its version serves" },
    };
    for (size_t f = 0; f < sizeof fam / sizeof fam[0]; f++) {
        keel_prom_family(b, fam[f].name, fam[f].type, fam[f].help);
        for (size_t i = 0; i < h->ncomps; i++) {
            host_component *c = &h->comps[i];
            unsigned sec = host_read_enter(h);
            host_version *vs[2] = { atomic_load(&c->stable), atomic_load(&c->canary) };
            uint32_t cw = vs[1] ? atomic_load(&c->canary_weight) : 0;
            for (int k = 0; k < 2; k++) {
                host_version *v = vs[k];
                if (!v)
                    continue;
                const char *role = k ? "canary" : "stable";
                win_sum s;
                double val = 0;
                switch (f) {
                case 0: val = (double)atomic_load(&v->requests); break;
                case 1: val = (double)atomic_load(&v->errors); break;
                case 2: window_sum(h, v, &s); val = s.n ? (double)s.err / (double)s.n : 0; break;
                case 3: window_sum(h, v, &s); val = window_p99(&s) / 1e9; break;
                default: val = k ? cw : 100u - cw; break;
                }
                version_sample(b, fam[f].name, c, v, role, val);
            }
            host_read_exit(h, sec);
        }
    }
    keel_prom_family(b, "keel_component_rollbacks_total", "counter",
                     "Rollbacks of a component's canary or version, by hand or by Keel");
    for (size_t i = 0; i < h->ncomps; i++)
        for (int k = 0; k < 2; k++)
            keel_buf_printf(b, "keel_component_rollbacks_total{component=\"%s\",automatic=\"%s\"}"
                            " %llu\n", h->comps[i].cfg->name, k ? "true" : "false",
                            (unsigned long long)atomic_load(&h->comps[i].rollbacks[k]));
    keel_prom_family(b, "keel_deployment_info", "gauge",
                     "The deployment digest: sha256 of the manifest and every stable version");
    keel_buf_printf(b, "keel_deployment_info{digest=\"%s\"} 1\n", h->deployment_digest);
}

void host_deployment_digest(keel_host *h)
{
    keel_sha256 s;
    keel_sha256_init(&s);
    keel_sha256_update(&s, h->config_digest, strlen(h->config_digest));
    for (size_t i = 0; i < h->ncomps; i++) {
        host_version *v = atomic_load(&h->comps[i].stable);
        keel_sha256_update(&s, h->comps[i].cfg->name, strlen(h->comps[i].cfg->name) + 1);
        if (v)
            keel_sha256_update(&s, v->sha, strlen(v->sha) + 1);
    }
    unsigned char d[32];
    keel_sha256_final(&s, d);
    keel_hex(d, 32, h->deployment_digest);
}

void host_version_json(keel_host *h, const host_version *v, const char *role, uint32_t weight,
                       keel_buf *b)
{
    win_sum s;
    window_sum(h, (host_version *)v, &s);
    const host_code *code = atomic_load(&((host_version *)v)->code);
    keel_buf_printf(b, "{\"sha256\":\"%s\",\"role\":\"%s\",\"weight\":%u,\"tier\":\"%s\","
                    "\"source\":\"", v->sha, role, weight, keel_module_tier(code->mod));
    keel_buf_json(b, v->source);
    keel_buf_printf(b, "\",\"requests\":%llu,\"errors\":%llu,\"window\":{\"requests\":%llu,"
                    "\"error_ratio\":%.4f,\"p99_ms\":%.3f}}",
                    (unsigned long long)atomic_load(&((host_version *)v)->requests),
                    (unsigned long long)atomic_load(&((host_version *)v)->errors),
                    (unsigned long long)s.n, s.n ? (double)s.err / (double)s.n : 0.0,
                    window_p99(&s) / 1e6);
}
