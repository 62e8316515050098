/* tierup.c — optimized code for components that started on the fast tier.
 *
 * keel up serves at once on the fast tier (libtcc), and so does a deploy
 * with ?tier=fast. A background thread (one per start: at load, and per
 * such deploy) then builds each distinct module (by digest) with the optimized tier into
 * the compile cache, one after the other, through keel_module_load — so the
 * compiler processes are waited for (no zombies) and a module shared by
 * several components is built once. When a module is ready, every
 * version (stable, canary, staged) still running it on the fast tier gets new code: the module
 * loaded from the cache on the optimized tier, linked, and a fresh instance
 * image (its initializers run again, in a template); host_code_swap then
 * publishes it. Requests running keep the fast code to their end; the next
 * ones run the optimized code; none is refused or dropped.
 *
 * The thread is detached and owns copies of what it reads while it
 * compiles. The host is reached only under t->lock, and only while t->h is
 * set: host_tierup_stop clears it under the lock, so stopping waits for a
 * swap in progress (an initializer run) but never for a compile. The last
 * of the two owners (host, thread) frees the record. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/host_int.h"
#include "obs/log.h"

typedef struct tierup_job {
    char *name;                  /* first component using the module */
    char *path;
    char digest[65];
} tierup_job;

struct tierup {
    tierup_job *jobs;
    size_t njobs;
    char *cache_dir;             /* NULL: the engine's default */
    pthread_mutex_t lock;
    keel_host *h;                /* NULL once the host stopped us */
    int owners;                  /* host and thread; under lock */
    struct tierup *next;         /* the host's earlier runs (deploys start more) */
};

/* Drops one owner's hold on t; the last one frees it. */
static void tierup_put(struct tierup *t)
{
    pthread_mutex_lock(&t->lock);
    int left = --t->owners;
    pthread_mutex_unlock(&t->lock);
    if (left)
        return;
    for (size_t i = 0; i < t->njobs; i++) {
        free(t->jobs[i].name);
        free(t->jobs[i].path);
    }
    free(t->jobs);
    free(t->cache_dir);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

/* Under t->lock with t->h set: gives every version (stable, canary,
 * staged) of every component still on the fast tier with this digest its
 * optimized code. */
static void swap_in(struct tierup *t, const tierup_job *job, double secs)
{
    keel_host *h = t->h;
    pthread_mutex_lock(&h->deploy_lock);
    for (size_t i = 0; i < h->ncomps; i++) {
        host_component *comp = &h->comps[i];
        host_version *vs[3];
        size_t nv = host_versions_live(comp, vs);
        for (size_t k = 0; k < nv; k++)
            host_version_upgrade(h, comp, vs[k], job->digest, t->cache_dir, secs);
    }
    pthread_mutex_unlock(&h->deploy_lock);
}

void host_version_upgrade(keel_host *h, host_component *comp, host_version *v,
                          const char *digest, const char *cache_dir, double secs)
{
    host_code *cur = atomic_load(&v->code);
    if (strcmp(keel_module_digest(cur->mod), digest) != 0 ||
        strcmp(keel_module_tier(cur->mod), "fast") != 0)
        return;
    keel_engine_opts eo = { .tier = KEEL_TIER_OPT, .cache_dir = cache_dir };
    char why[1024];
    keel_module *mod;
    if (host_module_load(v->source, eo, &mod, why, sizeof why)) {
        keel_log(KEEL_LOG_WARN, comp->cfg->name, "optimized code not swapped in: %s", why);
        return;
    }
    if (strcmp(keel_module_tier(mod), "opt") != 0 ||       /* over budget: stays fast */
        strcmp(keel_module_digest(mod), digest) != 0) {     /* the file changed meanwhile */
        keel_module_free(mod);
        return;
    }
    /* A version whose fast code had an image gets one again; one that had
     * none (see host_image_build) would not get one now either. */
    host_code *code = host_code_new(h, comp, mod, cur->image != NULL);
    if (cur->image && !code->image) {
        keel_log(KEEL_LOG_WARN, comp->cfg->name, "optimized code not swapped in: its "
                 "instance image could not be built; staying on the fast tier");
        host_code_free(code);
        return;
    }
    host_code_swap(h, v, code);
    keel_log(KEEL_LOG_INFO, comp->cfg->name, "optimized code swapped in (version %.12s, "
             "built in %.1f s); new requests run it", v->sha, secs);
}

static void *tierup_main(void *arg)
{
    struct tierup *t = arg;
    for (size_t i = 0; i < t->njobs; i++) {
        pthread_mutex_lock(&t->lock);
        bool stopped = t->h == NULL;
        pthread_mutex_unlock(&t->lock);
        if (stopped)
            break;
        keel_engine_opts eo = { .tier = KEEL_TIER_OPT, .cache_dir = t->cache_dir };
        keel_module *m;
        char err[1024];
        uint64_t t0 = keel_rt_now_ns();
        if (keel_module_load(t->jobs[i].path, &eo, &m, err, sizeof err) != 0) {
            keel_log(KEEL_LOG_WARN, t->jobs[i].name, "no optimized code: %s", err);
            continue;
        }
        bool opt = strcmp(keel_module_tier(m), "opt") == 0;
        keel_module_free(m);
        if (!opt)
            continue;        /* over budget: the engine said so */
        double secs = (double)(keel_rt_now_ns() - t0) / 1e9;
        pthread_mutex_lock(&t->lock);
        if (t->h)
            swap_in(t, &t->jobs[i], secs);
        pthread_mutex_unlock(&t->lock);
    }
    tierup_put(t);
    return NULL;
}

void host_tierup_start(keel_host *h, const char *cache_dir)
{
    struct tierup *t = calloc(1, sizeof *t);
    if (!t || !(t->jobs = calloc(3 * h->ncomps + 1, sizeof *t->jobs)))
        abort();
    pthread_mutex_init(&t->lock, NULL);
    pthread_mutex_lock(&h->deploy_lock);
    for (size_t i = 0; i < h->ncomps; i++) {
        host_version *vs[3];
        size_t nv = host_versions_live(&h->comps[i], vs);
        for (size_t k = 0; k < nv; k++) {
            host_code *code = atomic_load(&vs[k]->code);
            if (strcmp(keel_module_tier(code->mod), "fast") != 0)
                continue;
            const char *d = keel_module_digest(code->mod);
            size_t j;
            for (j = 0; j < t->njobs; j++)
                if (strcmp(t->jobs[j].digest, d) == 0)
                    break;
            if (j < t->njobs)
                continue;
            tierup_job *job = &t->jobs[t->njobs++];
            if (!(job->name = strdup(h->comps[i].cfg->name)) ||
                !(job->path = strdup(vs[k]->source)))
                abort();
            snprintf(job->digest, sizeof job->digest, "%s", d);
        }
    }
    pthread_mutex_unlock(&h->deploy_lock);
    if (cache_dir && !(t->cache_dir = strdup(cache_dir)))
        abort();
    t->h = h;
    t->owners = 2;
    pthread_attr_t attr;
    pthread_t th;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int started = t->njobs && pthread_create(&th, &attr, tierup_main, t) == 0;
    pthread_attr_destroy(&attr);
    if (!started) {           /* nothing to build (or no thread) */
        t->owners = 1;
        tierup_put(t);
        return;
    }
    t->next = h->tierup;
    h->tierup = t;
}

void host_tierup_stop(keel_host *h)
{
    struct tierup *t = h->tierup, *next;
    h->tierup = NULL;
    for (; t; t = next) {
        next = t->next;
        pthread_mutex_lock(&t->lock);
        t->h = NULL;
        pthread_mutex_unlock(&t->lock);
        tierup_put(t);
    }
}
