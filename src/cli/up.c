/* up.c — `keel up`: serve every component of keel.yaml over HTTP. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "admin/admin.h"
#include "cli/cli.h"
#include "config/manifest.h"
#include "host/host.h"
#include "http/server.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "obs/process.h"
#include "obs/trace.h"

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

int keel_cmd_up(int argc, char **argv)
{
    const char *file = "keel.yaml", *listen = NULL, *admin_listen = NULL;
    keel_process_mark_start();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int r;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(keel_usage("up"), stdout);
            return KEEL_EXIT_OK;
        } else if ((r = keel_opt_value(argc, argv, &i, "-f", &v)) != 0 ||
                   (r = keel_opt_value(argc, argv, &i, "--file", &v)) != 0) {
            if (r < 0)
                return keel_usage_error("up", "-f needs a file");
            file = v;
        } else if ((r = keel_opt_value(argc, argv, &i, "--listen", &v)) != 0) {
            if (r < 0 || !*v)
                return keel_usage_error("up", "--listen needs HOST:PORT");
            listen = v;
        } else if ((r = keel_opt_value(argc, argv, &i, "--admin-listen", &v)) != 0) {
            if (r < 0 || !*v)
                return keel_usage_error("up", "--admin-listen needs HOST:PORT");
            admin_listen = v;
        } else {
            return keel_usage_error("up", "unexpected argument %s", a);
        }
    }

    char err[1024];
    keel_manifest *m = NULL;
    keel_host *h = NULL;
    keel_admin *admin = NULL;
    int status = KEEL_EXIT_FAIL;
    if (keel_cli_load_manifest(file, &m, err, sizeof err)) {
        fprintf(stderr, "keel: %s\n", err);
        return KEEL_EXIT_FAIL;
    }
    keel_log_min = (keel_log_level)m->obs.log_level;
    keel_log_fmt = (keel_log_format)m->obs.log_format;
    if (m->obs.access_log)
        keel_log_queue_start();   /* access lines are batched; failure: written directly */

    /* The admin listener comes first: /healthz answers and /readyz says
     * "loading" while components compile. */
    const char *aaddr = admin_listen ? admin_listen : m->admin.listen;
    int aport = 0;
    if (keel_admin_start(aaddr, &admin, &aport, err, sizeof err)) {
        if (admin_listen || m->admin.listen_set) {
            fprintf(stderr, "keel: %s\n", err);
            goto out;
        }
        keel_log(KEEL_LOG_WARN, "admin", "%s; serving without the admin listener "
                 "(no /metrics, /health)", err);
    } else {
        const char *colon = strrchr(aaddr, ':');
        int hl = colon ? (int)(colon - aaddr) : 0;
        keel_log(KEEL_LOG_INFO, "admin", "admin endpoints at http://%.*s:%d (/metrics, /healthz, /readyz, /health)", hl ? hl : 7,
                 hl ? aaddr : "0.0.0.0", aport);
    }

    keel_host_opts ho = { .engine = { .tier = KEEL_TIER_AUTO, .background_opt = true } };
    if (keel_host_new(m, &ho, &h, err, sizeof err)) {
        fprintf(stderr, "keel: %s\n", err);
        goto out;
    }
    if (m->obs.otlp_endpoint &&
        keel_tracer_start(m->obs.otlp_endpoint, m->obs.trace_sample, keel_metrics_global, err,
                          sizeof err)) {
        fprintf(stderr, "keel: %s: %s\n", file, err);
        goto out;
    }
    keel_admin_set_host(admin, h);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    keel_http_opts hopts = { .listen = listen ? listen : m->listen };
    if (keel_http_serve(h, &hopts, &stop_requested, err, sizeof err)) {
        fprintf(stderr, "keel: %s\n", err);
        goto out;
    }
    keel_log(KEEL_LOG_INFO, NULL, "stopped");
    status = KEEL_EXIT_OK;
out:
    keel_admin_set_host(admin, NULL);
    keel_admin_stop(admin);
    keel_tracer_stop();
    keel_host_free(h);
    keel_log_queue_stop();
    keel_manifest_free(m);
    return status;
}
