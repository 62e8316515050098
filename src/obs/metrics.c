/* metrics.c — see metrics.h. Owns the shards (one per recording thread),
 * the slot layout inside a shard, and the merge into the text format. */
#include "obs/metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HB (KEEL_METRICS_NBUCKETS + 2u)       /* buckets, +Inf, sum in ns */
#define NOUT ((size_t)KEEL_CALL_NOUTCOMES)
#define NREJ ((size_t)KEEL_REJECT_NREASONS)

const double keel_metrics_buckets[KEEL_METRICS_NBUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 2.5, 5, 10,
};
static const uint64_t bucket_ns[KEEL_METRICS_NBUCKETS] = {
    500000ull, 1000000ull, 2500000ull, 5000000ull, 10000000ull, 25000000ull, 50000000ull,
    100000000ull, 200000000ull, 300000000ull, 500000000ull, 750000000ull, 1000000000ull,
    2500000000ull, 5000000000ull, 10000000000ull,
};
static const char *const method_names[KEEL_MM_COUNT] = {
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "OTHER",
};
static const char *const outcome_names[NOUT] = {
    "ok", "error", "trap", "deadline", "refused", "circuit_open",
};
static const char *const reject_names[NREJ] = {
    "concurrency", "body", "header", "queue", "circuit_open",
};

typedef _Atomic uint64_t slot;

typedef struct shard {
    struct shard *next;
    slot *s;                      /* the layout below */
} shard;

struct keel_metrics {
    uint64_t gen;                 /* tells thread caches apart */
    size_t ncomps;
    char **comps;
    size_t *route_base, nroutes_total;   /* per comp: nroutes + 1 ("-") */
    char **route_labels;                 /* by global route */
    size_t *route_comp;
    size_t *edge_base, nedges;
    size_t *edge_caller, *edge_callee;
    size_t ntraps;
    char **traps;
    size_t comp_slots;            /* per component (ncomps + 1 with "-") */
    /* offsets in a shard */
    size_t o_route, o_comp, o_edge, o_rkey, o_rcnt, o_over, nslots;
    pthread_mutex_t mu;
    shard *shards;
    _Atomic uint64_t spans_exported, spans_dropped;
};

keel_metrics *keel_metrics_global;
static _Atomic uint64_t next_gen = 1;

/* comp-slot offsets */
#define C_DEADLINE(m) ((m)->ntraps)
#define C_REJ(m) ((m)->ntraps + 1)
#define C_INST(m) ((m)->ntraps + 1 + NREJ)
#define C_CPU(m) (C_INST(m) + 1)
#define C_LOGDROP(m) (C_INST(m) + 2)
#define C_MEM(m) (C_INST(m) + 3)

static void *xcalloc(size_t n, size_t sz)
{
    void *p = calloc(n ? n : 1, sz);
    if (!p)
        abort();
    return p;
}

static char *xstrdup(const char *s)
{
    char *d = strdup(s ? s : "");
    if (!d)
        abort();
    return d;
}

int keel_metrics_method(const char *m, size_t len)
{
    for (int i = 0; i < KEEL_MM_OTHER; i++)
        if (strlen(method_names[i]) == len && memcmp(method_names[i], m, len) == 0)
            return i;
    return KEEL_MM_OTHER;
}

keel_metrics *keel_metrics_new(const keel_metrics_schema *s)
{
    keel_metrics *m = xcalloc(1, sizeof *m);
    m->gen = atomic_fetch_add(&next_gen, 1);
    m->ncomps = s->ncomps;
    m->comps = xcalloc(s->ncomps + 1, sizeof *m->comps);
    m->route_base = xcalloc(s->ncomps + 1, sizeof *m->route_base);
    m->edge_base = xcalloc(s->ncomps + 1, sizeof *m->edge_base);
    for (size_t c = 0; c < s->ncomps; c++) {
        m->comps[c] = xstrdup(s->comps[c]);
        m->route_base[c] = m->nroutes_total;
        m->nroutes_total += s->nroutes[c] + 1;
        m->edge_base[c] = m->nedges;
        m->nedges += s->ncalls[c];
    }
    m->comps[s->ncomps] = xstrdup("-");
    m->route_base[s->ncomps] = m->nroutes_total;
    m->edge_base[s->ncomps] = m->nedges;
    m->route_labels = xcalloc(m->nroutes_total, sizeof *m->route_labels);
    m->route_comp = xcalloc(m->nroutes_total, sizeof *m->route_comp);
    m->edge_caller = xcalloc(m->nedges, sizeof *m->edge_caller);
    m->edge_callee = xcalloc(m->nedges, sizeof *m->edge_callee);
    for (size_t c = 0; c < s->ncomps; c++) {
        size_t b = m->route_base[c];
        for (size_t r = 0; r < s->nroutes[c]; r++) {
            m->route_labels[b + r] = xstrdup(s->routes[c][r]);
            m->route_comp[b + r] = c;
        }
        m->route_labels[b + s->nroutes[c]] = xstrdup("-");
        m->route_comp[b + s->nroutes[c]] = c;
        for (size_t e = 0; e < s->ncalls[c]; e++) {
            m->edge_caller[m->edge_base[c] + e] = c;
            m->edge_callee[m->edge_base[c] + e] = s->calls[c][e];
        }
    }
    m->ntraps = s->ntrap_kinds;
    m->traps = xcalloc(m->ntraps, sizeof *m->traps);
    for (size_t i = 0; i < m->ntraps; i++)
        m->traps[i] = xstrdup(s->trap_kinds[i]);
    m->comp_slots = C_MEM(m) + 1;
    m->o_route = 0;
    m->o_comp = m->o_route + m->nroutes_total * HB;
    m->o_edge = m->o_comp + (m->ncomps + 1) * m->comp_slots;
    m->o_rkey = m->o_edge + m->nedges * (NOUT + HB);
    m->o_rcnt = m->o_rkey + KEEL_METRICS_REQ_SERIES;
    m->o_over = m->o_rcnt + KEEL_METRICS_REQ_SERIES;
    m->nslots = m->o_over + 1;
    pthread_mutex_init(&m->mu, NULL);
    return m;
}

void keel_metrics_free(keel_metrics *m)
{
    if (!m)
        return;
    if (keel_metrics_global == m)
        keel_metrics_global = NULL;
    for (shard *s = m->shards, *n; s; s = n) {
        n = s->next;
        free(s->s);
        free(s);
    }
    for (size_t i = 0; i <= m->ncomps; i++)
        free(m->comps[i]);
    for (size_t i = 0; i < m->nroutes_total; i++)
        free(m->route_labels[i]);
    for (size_t i = 0; i < m->ntraps; i++)
        free(m->traps[i]);
    free(m->traps);
    free(m->comps);
    free(m->route_base);
    free(m->route_labels);
    free(m->route_comp);
    free(m->edge_base);
    free(m->edge_caller);
    free(m->edge_callee);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

/* ---- the calling thread's shard ---- */

static _Thread_local uint64_t tl_gen;
static _Thread_local slot *tl_slots;

static slot *my_slots(keel_metrics *m)
{
    if (tl_gen == m->gen)
        return tl_slots;
    shard *s = xcalloc(1, sizeof *s);
    s->s = xcalloc(m->nslots, sizeof *s->s);
    pthread_mutex_lock(&m->mu);
    s->next = m->shards;
    m->shards = s;
    pthread_mutex_unlock(&m->mu);
    tl_gen = m->gen;
    tl_slots = s->s;
    return s->s;
}

/* Only the owning thread writes a slot: a load and a store, no lock prefix. */
static inline void bump(slot *p, uint64_t by)
{
    atomic_store_explicit(p, atomic_load_explicit(p, memory_order_relaxed) + by,
                          memory_order_relaxed);
}

static inline uint64_t rd(const slot *p)
{
    return atomic_load_explicit((slot *)p, memory_order_relaxed);
}

static void observe(slot *h, uint64_t ns)
{
    size_t i = 0;
    while (i < KEEL_METRICS_NBUCKETS && ns > bucket_ns[i])
        i++;
    bump(&h[i], 1);
    bump(&h[KEEL_METRICS_NBUCKETS + 1], ns);
}

void keel_metrics_request(keel_metrics *m, size_t comp, size_t route, int method, int code,
                          uint64_t dur_ns)
{
    if (!m || comp >= m->ncomps)
        return;
    size_t nr = m->route_base[comp + 1] - m->route_base[comp] - 1;
    size_t r = m->route_base[comp] + (route < nr ? route : nr);
    if (method < 0 || method >= KEEL_MM_COUNT)
        method = KEEL_MM_OTHER;
    if (code < 100 || code > 599)
        code = 599;
    slot *s = my_slots(m);
    observe(&s[m->o_route + r * HB], dur_ns);
    uint64_t key = ((uint64_t)r << 16 | (uint64_t)method << 10 | (uint64_t)code) + 1;
    size_t h = (size_t)((key * 0x9e3779b97f4a7c15ull) >> 40) % KEEL_METRICS_REQ_SERIES;
    for (size_t i = 0; i < KEEL_METRICS_REQ_SERIES; i++) {
        size_t j = (h + i) % KEEL_METRICS_REQ_SERIES;
        uint64_t k = rd(&s[m->o_rkey + j]);
        if (k == key) {
            bump(&s[m->o_rcnt + j], 1);
            return;
        }
        if (k == 0) {
            /* count first, then publish the key: a scrape that sees the
             * key sees a count */
            atomic_store_explicit(&s[m->o_rcnt + j], 1, memory_order_relaxed);
            atomic_store_explicit(&s[m->o_rkey + j], key, memory_order_release);
            return;
        }
    }
    bump(&s[m->o_over], 1);
}

static size_t edge_of(keel_metrics *m, size_t caller, size_t callee)
{
    if (caller >= m->ncomps)
        return SIZE_MAX;
    for (size_t e = m->edge_base[caller]; e < m->edge_base[caller + 1]; e++)
        if (m->edge_callee[e] == callee)
            return e;
    return SIZE_MAX;
}

void keel_metrics_call(keel_metrics *m, size_t caller, size_t callee, keel_call_outcome o,
                       uint64_t dur_ns)
{
    if (!m || (size_t)o >= NOUT)
        return;
    size_t e = edge_of(m, caller, callee);
    if (e == SIZE_MAX)
        return;
    slot *s = my_slots(m) + m->o_edge + e * (NOUT + HB);
    bump(&s[o], 1);
    observe(&s[NOUT], dur_ns);
}

static slot *comp_slots(keel_metrics *m, size_t comp)
{
    return my_slots(m) + m->o_comp + comp * m->comp_slots;
}

void keel_metrics_trap(keel_metrics *m, size_t comp, int kind)
{
    if (!m || comp >= m->ncomps || kind < 0 || (size_t)kind >= m->ntraps)
        return;
    bump(&comp_slots(m, comp)[kind], 1);
}

void keel_metrics_deadline(keel_metrics *m, size_t comp)
{
    if (m && comp < m->ncomps)
        bump(&comp_slots(m, comp)[C_DEADLINE(m)], 1);
}

void keel_metrics_rejected(keel_metrics *m, size_t comp, keel_reject_reason r)
{
    if (!m || (size_t)r >= NREJ)
        return;
    if (comp >= m->ncomps)
        comp = m->ncomps;
    bump(&comp_slots(m, comp)[C_REJ(m) + r], 1);
}

void keel_metrics_instance(keel_metrics *m, size_t comp, bool started, int64_t mem_delta)
{
    if (!m || comp >= m->ncomps)
        return;
    slot *s = comp_slots(m, comp);
    if (started)
        bump(&s[C_INST(m)], 1);
    bump(&s[C_MEM(m)], (uint64_t)mem_delta);   /* two's complement: sums come out right */
}

void keel_metrics_cpu(keel_metrics *m, size_t comp, uint64_t ns)
{
    if (m && comp < m->ncomps)
        bump(&comp_slots(m, comp)[C_CPU(m)], ns);
}

void keel_metrics_log_dropped(keel_metrics *m, size_t comp)
{
    if (m && comp < m->ncomps)
        bump(&comp_slots(m, comp)[C_LOGDROP(m)], 1);
}

void keel_metrics_spans(keel_metrics *m, uint64_t exported, uint64_t dropped)
{
    if (!m)
        return;
    atomic_fetch_add_explicit(&m->spans_exported, exported, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->spans_dropped, dropped, memory_order_relaxed);
}

/* ---- scrape ---- */

/* Sum over shards of slot off. Caller holds m->mu. */
static uint64_t sum(keel_metrics *m, size_t off)
{
    uint64_t v = 0;
    for (shard *s = m->shards; s; s = s->next)
        v += rd(&s->s[off]);
    return v;
}

static void histogram(keel_metrics *m, keel_buf *b, const char *name, size_t off,
                      const char **labels, size_t nl)
{
    char bname[128], le[32];
    snprintf(bname, sizeof bname, "%s_bucket", name);
    uint64_t cum = 0;
    labels[2 * nl] = "le";
    for (size_t i = 0; i <= KEEL_METRICS_NBUCKETS; i++) {
        cum += sum(m, off + i);
        if (i < KEEL_METRICS_NBUCKETS)
            snprintf(le, sizeof le, "%g", keel_metrics_buckets[i]);
        else
            snprintf(le, sizeof le, "+Inf");
        labels[2 * nl + 1] = le;
        keel_prom_sample_u(b, bname, labels, nl + 1, cum);
    }
    snprintf(bname, sizeof bname, "%s_sum", name);
    keel_prom_sample(b, bname, labels, nl, (double)sum(m, off + KEEL_METRICS_NBUCKETS + 1) / 1e9);
    snprintf(bname, sizeof bname, "%s_count", name);
    keel_prom_sample_u(b, bname, labels, nl, cum);
}

typedef struct req_series {
    uint64_t key, count;
} req_series;

static int cmp_series(const void *a, const void *b)
{
    const req_series *x = a, *y = b;
    return x->key < y->key ? -1 : x->key > y->key;
}

static void render_requests(keel_metrics *m, keel_buf *b)
{
    size_t cap = 0, n = 0;
    req_series *all = NULL;
    for (shard *s = m->shards; s; s = s->next)
        for (size_t j = 0; j < KEEL_METRICS_REQ_SERIES; j++) {
            uint64_t k = atomic_load_explicit(&s->s[m->o_rkey + j], memory_order_acquire);
            if (!k)
                continue;
            if (n == cap) {
                cap = cap ? cap * 2 : 256;
                all = realloc(all, cap * sizeof *all);
                if (!all)
                    abort();
            }
            all[n++] = (req_series){ k, rd(&s->s[m->o_rcnt + j]) };
        }
    if (n)
        qsort(all, n, sizeof *all, cmp_series);
    keel_prom_family(b, "keel_requests_total", "counter",
                     "Requests a component answered, by route, method and status code.");
    for (size_t i = 0; i < n;) {
        uint64_t k = all[i].key, c = 0;
        while (i < n && all[i].key == k)
            c += all[i++].count;
        k -= 1;
        size_t r = (size_t)(k >> 16);
        int method = (int)((k >> 10) & 63), code = (int)(k & 1023);
        if (r >= m->nroutes_total || method >= KEEL_MM_COUNT)
            continue;
        char cs[8];
        snprintf(cs, sizeof cs, "%d", code);
        const char *l[] = { "component", m->comps[m->route_comp[r]], "route",
                            m->route_labels[r], "method", method_names[method], "code", cs };
        keel_prom_sample_u(b, "keel_requests_total", l, 4, c);
    }
    free(all);
}

void keel_metrics_render(keel_metrics *m, keel_buf *b)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    render_requests(m, b);
    keel_prom_family(b, "keel_metrics_overflow_total", "counter",
                     "Request series not counted because a thread's table of series was full.");
    keel_prom_sample_u(b, "keel_metrics_overflow_total", NULL, 0, sum(m, m->o_over));

    const char *l[12];
    keel_prom_family(b, "keel_request_duration_seconds", "histogram",
                     "Time from the host receiving a request to its response, by route.");
    for (size_t r = 0; r < m->nroutes_total; r++) {
        l[0] = "component"; l[1] = m->comps[m->route_comp[r]];
        l[2] = "route"; l[3] = m->route_labels[r];
        histogram(m, b, "keel_request_duration_seconds", m->o_route + r * HB, l, 2);
    }

    keel_prom_family(b, "keel_component_calls_total", "counter",
                     "Calls between components (__host_call), by outcome.");
    for (size_t e = 0; e < m->nedges; e++)
        for (size_t o = 0; o < NOUT; o++) {
            const char *cl[] = { "caller", m->comps[m->edge_caller[e]], "callee",
                                 m->comps[m->edge_callee[e]], "outcome", outcome_names[o] };
            keel_prom_sample_u(b, "keel_component_calls_total", cl, 3,
                               sum(m, m->o_edge + e * (NOUT + HB) + o));
        }
    keel_prom_family(b, "keel_component_call_duration_seconds", "histogram",
                     "Duration of calls between components, callee's work included.");
    for (size_t e = 0; e < m->nedges; e++) {
        l[0] = "caller"; l[1] = m->comps[m->edge_caller[e]];
        l[2] = "callee"; l[3] = m->comps[m->edge_callee[e]];
        histogram(m, b, "keel_component_call_duration_seconds",
                  m->o_edge + e * (NOUT + HB) + NOUT, l, 2);
    }

#define PER_COMP(name, type, help, slotexpr, scale)                                  \
    do {                                                                           \
        keel_prom_family(b, name, type, help);                                     \
        for (size_t c = 0; c < m->ncomps; c++) {                                   \
            const char *cl[] = { "component", m->comps[c] };                        \
            uint64_t v = sum(m, m->o_comp + c * m->comp_slots + (slotexpr));       \
            keel_prom_sample(b, name, cl, 1, (double)(int64_t)v / (scale));        \
        }                                                                          \
    } while (0)

    keel_prom_family(b, "keel_traps_total", "counter",
                     "Guest traps, by component and trap kind.");
    for (size_t c = 0; c < m->ncomps; c++)
        for (size_t k = 1; k < m->ntraps; k++) {
            const char *cl[] = { "component", m->comps[c], "kind", m->traps[k] };
            keel_prom_sample_u(b, "keel_traps_total", cl, 2,
                               sum(m, m->o_comp + c * m->comp_slots + k));
        }
    PER_COMP("keel_deadline_exceeded_total", "counter",
             "Requests that ran out of time (answered 504).", C_DEADLINE(m), 1.0);
    keel_prom_family(b, "keel_rejected_total", "counter",
                     "Requests refused before any guest ran, by reason.");
    for (size_t c = 0; c <= m->ncomps; c++)
        for (size_t r = 0; r < NREJ; r++) {
            uint64_t v = sum(m, m->o_comp + c * m->comp_slots + C_REJ(m) + r);
            if (c == m->ncomps && !v)
                continue;
            const char *cl[] = { "component", m->comps[c], "reason", reject_names[r] };
            keel_prom_sample_u(b, "keel_rejected_total", cl, 2, v);
        }
    PER_COMP("keel_instances_started_total", "counter",
             "Guest instances created (one per invocation).", C_INST(m), 1.0);
    PER_COMP("keel_instance_memory_bytes", "gauge",
             "Linear memory of the component's live instances, as sized when created.",
             C_MEM(m), 1.0);
    PER_COMP("keel_guest_cpu_seconds_total", "counter",
             "CPU time spent running the component's guest code (callees excluded).",
             C_CPU(m), 1e9);
    PER_COMP("keel_log_dropped_total", "counter",
             "Guest log lines dropped by the per-component rate limit.", C_LOGDROP(m), 1.0);
#undef PER_COMP
    pthread_mutex_unlock(&m->mu);

    keel_prom_family(b, "keel_spans_exported_total", "counter",
                     "Trace spans delivered to the OTLP collector.");
    keel_prom_sample_u(b, "keel_spans_exported_total", NULL, 0,
                       atomic_load(&m->spans_exported));
    keel_prom_family(b, "keel_spans_dropped_total", "counter",
                     "Trace spans dropped: queue full or collector unreachable.");
    keel_prom_sample_u(b, "keel_spans_dropped_total", NULL, 0, atomic_load(&m->spans_dropped));
}
