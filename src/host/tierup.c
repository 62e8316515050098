/* tierup.c — optimized code for components that started on the fast tier.
 *
 * keel up serves at once on the fast tier (libtcc). One background thread
 * then builds each distinct module (by digest) with the optimized tier into
 * the compile cache, one after the other, through keel_module_load — so the
 * compiler processes are waited for (no zombies) and a module shared by
 * several components is built once. The next start of Keel finds the
 * optimized code in the cache. (Swapping it into the running process is not
 * done yet.) The thread owns copies of what it reads and is detached: a
 * stopping host only asks it to skip the modules not yet started. */
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

typedef struct tierup {
    tierup_job *jobs;
    size_t njobs;
    char *cache_dir;             /* NULL: the engine's default */
    atomic_bool *stop;           /* shared with the host; freed by the thread */
} tierup;

static void *tierup_main(void *arg)
{
    tierup *t = arg;
    for (size_t i = 0; i < t->njobs && !atomic_load(t->stop); i++) {
        keel_engine_opts eo = { .tier = KEEL_TIER_OPT, .cache_dir = t->cache_dir };
        keel_module *m;
        char err[1024];
        uint64_t t0 = keel_rt_now_ns();
        if (keel_module_load(t->jobs[i].path, &eo, &m, err, sizeof err) == 0) {
            keel_log(KEEL_LOG_INFO, t->jobs[i].name,
                     "optimized code ready in the cache (%.1f s; used from the next start)",
                     (double)(keel_rt_now_ns() - t0) / 1e9);
            keel_module_free(m);
        } else {
            keel_log(KEEL_LOG_WARN, t->jobs[i].name, "no optimized code: %s", err);
        }
    }
    for (size_t i = 0; i < t->njobs; i++) {
        free(t->jobs[i].name);
        free(t->jobs[i].path);
    }
    free(t->jobs);
    free(t->cache_dir);
    free(t->stop);
    free(t);
    return NULL;
}

void host_tierup_start(keel_host *h, const char *cache_dir)
{
    tierup *t = calloc(1, sizeof *t);
    atomic_bool *stop = calloc(1, sizeof *stop);
    if (!t || !stop || !(t->jobs = calloc(h->ncomps + 1, sizeof *t->jobs)))
        abort();
    t->stop = stop;
    for (size_t i = 0; i < h->ncomps; i++) {
        host_component *c = &h->comps[i];
        if (strcmp(keel_module_tier(c->mod), "fast") != 0)
            continue;
        const char *d = keel_module_digest(c->mod);
        size_t j;
        for (j = 0; j < t->njobs; j++)
            if (strcmp(t->jobs[j].digest, d) == 0)
                break;
        if (j < t->njobs)
            continue;
        tierup_job *job = &t->jobs[t->njobs++];
        if (!(job->name = strdup(c->cfg->name)) || !(job->path = strdup(c->cfg->wasm)))
            abort();
        snprintf(job->digest, sizeof job->digest, "%s", d);
    }
    if (cache_dir && !(t->cache_dir = strdup(cache_dir)))
        abort();
    pthread_attr_t attr;
    pthread_t th;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int started = t->njobs && pthread_create(&th, &attr, tierup_main, t) == 0;
    pthread_attr_destroy(&attr);
    if (!started) {           /* nothing to build (or no thread): free here */
        atomic_store(stop, true);
        tierup_main(t);
        return;
    }
    h->tierup_stop = stop;
}

void host_tierup_stop(keel_host *h)
{
    if (h->tierup_stop)
        atomic_store(h->tierup_stop, true);
    h->tierup_stop = NULL;
}
