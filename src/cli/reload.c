/* reload.c — how `keel up` reloads keel.yaml: SIGHUP wakes a reload thread
 * (sem_post is async-signal-safe), POST /admin/reload calls in from the
 * admin thread; both end in keel_live_reload, one at a time. The admin
 * listener follows each new host (keel_admin_set_host). */
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "cli/cli.h"
#include "obs/log.h"

struct keel_reloader {
    keel_live *live;
    keel_admin *admin;
    pthread_t thread;
    atomic_bool stop;
};

static sem_t hup_sem;            /* posted by SIGHUP */

static void on_hup(int sig)
{
    (void)sig;
    sem_post(&hup_sem);
}

static void follow_host(void *arg, keel_host *h)
{
    keel_admin_set_host(arg, h);
}

static int admin_reload(void *arg, const char *who, char *err, size_t errlen)
{
    keel_reloader *r = arg;
    return keel_live_reload(r->live, who, err, errlen);
}

static void *reload_main(void *arg)
{
    keel_reloader *r = arg;
    for (;;) {
        while (sem_wait(&hup_sem) != 0) {
        }
        if (atomic_load(&r->stop))
            return NULL;
        keel_log(KEEL_LOG_INFO, NULL, "SIGHUP: reloading the configuration");
        char err[1024];
        (void)keel_live_reload(r->live, "signal", err, sizeof err);   /* logged, audited */
    }
}

keel_reloader *keel_reloader_start(keel_live *l, keel_admin *a)
{
    keel_reloader *r = calloc(1, sizeof *r);
    if (!r)
        abort();
    r->live = l;
    r->admin = a;
    keel_live_on_swap(l, follow_host, a);
    keel_live_set_loader(l, keel_cli_load_manifest);
    keel_admin_set_reload(a, admin_reload, r);
    sem_init(&hup_sem, 0, 0);
    if (pthread_create(&r->thread, NULL, reload_main, r) != 0) {
        keel_log(KEEL_LOG_WARN, NULL, "no reload thread: SIGHUP is ignored");
        signal(SIGHUP, SIG_IGN);
        r->thread = 0;
        return r;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_hup;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGHUP, &sa, NULL);
    return r;
}

void keel_reloader_stop(keel_reloader *r)
{
    if (!r)
        return;
    signal(SIGHUP, SIG_IGN);
    keel_admin_set_reload(r->admin, NULL, NULL);
    if (r->thread) {
        atomic_store(&r->stop, true);
        sem_post(&hup_sem);
        pthread_join(r->thread, NULL);
    }
    sem_destroy(&hup_sem);
    free(r);
}
