/* live.c — the host that is serving, replaced as a whole when keel.yaml is
 * reloaded (SIGHUP, POST /admin/reload).
 *
 * A reload loads and validates the manifest first; an invalid one changes
 * nothing (the error is logged with its FILE:LINE:COL, counted in
 * keel_config_reload_failures_total and audited). A valid one becomes a
 * new host — components added, removed or changed, routes, limits, stores
 * — built beside the running one (modules come from the compile cache, so
 * unchanged components cost a cache hit), and published with one atomic
 * store: the next request is routed by the new host, requests already
 * admitted finish on the old one. A version deployed through the admin API
 * survives the reload while the manifest's own wasm for that component is
 * unchanged; canaries end.
 *
 * Lifetime of a replaced host: a request pins the current host (keel_live_pin:
 * a counter on the host, re-checked after it is raised) for the part of its
 * handling on the event loop, and admission (keel_host_admit) holds it
 * from there to keel_host_release. A replaced host is freed once it is
 * neither pinned nor has admitted requests. Its struct itself is kept
 * (freed with the live object) so that a pin racing with the swap can
 * always read and lower the counter it raised. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/audit.h"
#include "base/errors.h"
#include "host/host_int.h"
#include "obs/log.h"

typedef struct live_old {
    keel_host *h;
    keel_manifest *m;
    bool freed;                   /* contents freed; the struct stays */
    struct live_old *next;
} live_old;

struct keel_live {
    _Atomic(keel_host *) cur;
    keel_manifest *m;             /* cur's manifest */
    keel_host_opts opts;
    pthread_mutex_t lock;         /* reloads, the list of old hosts */
    live_old *old;
    void (*on_swap)(void *arg, keel_host *h);
    void *on_swap_arg;
    keel_manifest_loader load;    /* keel_manifest_load unless set */
};

static _Atomic uint64_t reloads_ok, reloads_failed;

keel_live *keel_live_new(keel_host *h, keel_manifest *m, const keel_host_opts *o)
{
    keel_live *l = calloc(1, sizeof *l);
    if (!l)
        abort();
    atomic_init(&l->cur, h);
    l->m = m;
    if (o)
        l->opts = *o;
    pthread_mutex_init(&l->lock, NULL);
    return l;
}

void keel_live_set_loader(keel_live *l, keel_manifest_loader load)
{
    l->load = load;
}

void keel_live_on_swap(keel_live *l, void (*fn)(void *arg, keel_host *h), void *arg)
{
    l->on_swap = fn;
    l->on_swap_arg = arg;
}

keel_host *keel_live_pin(keel_live *l)
{
    for (;;) {
        keel_host *h = atomic_load(&l->cur);
        atomic_fetch_add(&h->pins, 1);
        if (atomic_load(&l->cur) == h)
            return h;
        atomic_fetch_sub(&h->pins, 1);   /* replaced meanwhile: take the new one */
    }
}

void keel_live_unpin(keel_live *l, keel_host *h)
{
    (void)l;
    atomic_fetch_sub(&h->pins, 1);
}

void keel_host_hold(keel_host *h)
{
    atomic_fetch_add(&h->pins, 1);
}

void keel_host_unhold(keel_host *h)
{
    atomic_fetch_sub(&h->pins, 1);
}

keel_host *keel_live_current(keel_live *l)
{
    return atomic_load(&l->cur);
}

/* Whether a replaced host can be freed: nothing pinned, nothing admitted. */
static bool idle(keel_host *h)
{
    if (atomic_load(&h->pins))
        return false;
    for (size_t i = 0; i < h->ncomps; i++)
        if (atomic_load(&h->comps[i].inflight))
            return false;
    return true;
}

void keel_live_reap(keel_live *l)
{
    if (pthread_mutex_trylock(&l->lock) != 0)
        return;
    for (live_old *o = l->old; o; o = o->next) {
        if (o->freed || !idle(o->h))
            continue;
        keel_host_release_contents(o->h);
        keel_manifest_free(o->m);
        o->freed = true;
    }
    pthread_mutex_unlock(&l->lock);
}

/* The wasm sha256 each component of h loaded from its manifest. */
static const char *manifest_sha(const keel_host *h, const char *name)
{
    for (size_t i = 0; i < h->ncomps; i++)
        if (!strcmp(h->comps[i].cfg->name, name))
            return h->comps[i].manifest_sha;
    return NULL;
}

/* Gives nh's components the versions deployed through the admin API on
 * oh, where the manifest did not change that component's wasm. */
static void carry_deploys(keel_host *oh, keel_host *nh)
{
    for (size_t i = 0; i < nh->ncomps; i++) {
        host_component *nc = &nh->comps[i];
        const char *was = manifest_sha(oh, nc->cfg->name);
        if (!was || strcmp(was, nc->manifest_sha) != 0)
            continue;                           /* new, or changed in the manifest */
        host_component *oc = host_component_named(oh, nc->cfg->name, strlen(nc->cfg->name));
        pthread_mutex_lock(&oh->deploy_lock);
        host_version *ov = atomic_load(&oc->stable);
        char sha[65], *src = NULL;
        snprintf(sha, sizeof sha, "%s", ov->sha);
        if (strcmp(sha, oc->manifest_sha) != 0 && !(src = strdup(ov->source)))
            abort();
        pthread_mutex_unlock(&oh->deploy_lock);
        if (!src)
            continue;
        keel_deploy_req r = { .component = nc->cfg->name, .wasm_path = src, .who = "keel" };
        keel_deploy_result res;
        char err[1024];
        if (keel_host_deploy(nh, &r, &res, err, sizeof err))
            keel_log(KEEL_LOG_WARN, nc->cfg->name, "reload: the deployed version %.12s could "
                     "not be kept (%s); serving the manifest's", sha, err);
        free(src);
    }
}

int keel_live_reload(keel_live *l, const char *who, char *err, size_t errlen)
{
    pthread_mutex_lock(&l->lock);
    keel_host *oh = atomic_load(&l->cur);
    const char *path = l->m->path;
    keel_manifest *m = NULL;
    keel_host *h = NULL;
    int rc = (l->load ? l->load : keel_manifest_load)(path, &m, err, errlen);
    if (!rc)
        rc = keel_host_new(m, &l->opts, &h, err, errlen);
    if (rc) {
        atomic_fetch_add(&reloads_failed, 1);
        pthread_mutex_unlock(&l->lock);
        keel_manifest_free(m);
        keel_log(KEEL_LOG_ERROR, NULL, "reload refused; still serving the previous "
                 "configuration: %s", err);
        keel_buf f = { 0 };
        keel_buf_puts(&f, "\"manifest\":\"");
        keel_buf_json(&f, path);
        keel_buf_puts(&f, "\",\"error\":\"");
        keel_buf_json(&f, err);
        keel_buf_puts(&f, "\"");
        keel_audit("config.reload_failed", who, f.data);
        keel_buf_free(&f);
        return rc;
    }
    carry_deploys(oh, h);
    live_old *o = calloc(1, sizeof *o);
    if (!o)
        abort();
    o->h = oh;
    o->m = l->m;
    o->next = l->old;
    l->old = o;
    l->m = m;
    atomic_store(&l->cur, h);
    atomic_fetch_add(&reloads_ok, 1);
    if (l->on_swap)
        l->on_swap(l->on_swap_arg, h);
    pthread_mutex_unlock(&l->lock);
    keel_log(KEEL_LOG_INFO, NULL, "reloaded %s: %zu components, deployment %.12s (was %.12s)",
             path, h->ncomps, h->deployment_digest, oh->deployment_digest);
    keel_buf f = { 0 };
    keel_buf_puts(&f, "\"manifest\":\"");
    keel_buf_json(&f, path);
    keel_buf_printf(&f, "\",\"config_digest\":\"%s\",\"deployment_digest\":\"%s\","
                    "\"previous_deployment_digest\":\"%s\"", h->config_digest,
                    h->deployment_digest, oh->deployment_digest);
    keel_audit("config.reloaded", who, f.data);
    keel_buf_free(&f);
    keel_live_reap(l);
    return 0;
}

void keel_live_free(keel_live *l)
{
    if (!l)
        return;
    for (live_old *o = l->old, *next; o; o = next) {
        next = o->next;
        if (!o->freed) {
            keel_host_release_contents(o->h);
            keel_manifest_free(o->m);
        }
        free(o->h);
        free(o);
    }
    keel_host_free(atomic_load(&l->cur));
    keel_manifest_free(l->m);
    pthread_mutex_destroy(&l->lock);
    free(l);
}

void host_live_metrics(keel_buf *b)
{
    keel_prom_family(b, "keel_config_reloads_total", "counter",
                     "Configuration reloads applied (SIGHUP, POST /admin/reload).");
    keel_prom_sample_u(b, "keel_config_reloads_total", NULL, 0, atomic_load(&reloads_ok));
    keel_prom_family(b, "keel_config_reload_failures_total", "counter",
                     "Configuration reloads refused (the previous configuration kept serving).");
    keel_prom_sample_u(b, "keel_config_reload_failures_total", NULL, 0,
                       atomic_load(&reloads_failed));
}
