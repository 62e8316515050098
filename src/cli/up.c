/* up.c — `keel up`: serve every component of keel.yaml over HTTP, and
 * stop in order on SIGTERM/SIGINT (the sequence: keel_http_serve in
 * http/server.h; then telemetry is flushed and the host, stores included,
 * freed). */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "admin/admin.h"
#include "admin/audit.h"
#include "cli/cli.h"
#include "config/manifest.h"
#include "host/host.h"
#include "http/listen.h"
#include "http/server.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "obs/process.h"
#include "obs/trace.h"

/* ---- stopping: SIGTERM / SIGINT ----
 * 1 on the first signal (start draining), 2 on the next (skip what is left
 * of the drain delay). The handler runs with both signals blocked, so the
 * read-modify-write is not interrupted by the other one. */
static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    if (stop_requested < 2)
        stop_requested++;
}

static void install_stop_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGINT);
    sigaddset(&sa.sa_mask, SIGTERM);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* keel_http_serve's draining callback: readiness off before the drain delay. */
static void on_draining(void *arg)
{
    keel_admin_set_draining(arg);
}

/* Reloading (SIGHUP, POST /admin/reload) is cli/reload.c's: keel_reloader_start. */

int keel_cmd_up(int argc, char **argv)
{
    const char *file = "keel.yaml", *listen = NULL, *admin_listen = NULL;
    bool handover = false;
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
        } else if (strcmp(a, "--handover") == 0) {
            handover = true;
        } else {
            return keel_usage_error("up", "unexpected argument %s", a);
        }
    }

    char err[1024];
    int inherited[KEEL_HTTP_MAX_INHERITED];
    int n_inherited = keel_http_inherited_listeners(inherited, err, sizeof err);
    if (n_inherited < 0) {
        fprintf(stderr, "keel: %s\n", err);
        return KEEL_EXIT_FAIL;
    }
    keel_manifest *m = NULL;
    keel_host *h = NULL;
    keel_admin *admin = NULL;
    keel_live *live = NULL;
    keel_reloader *reloader = NULL;
    bool abandoned = false;
    int status = KEEL_EXIT_FAIL;
    if (keel_cli_load_manifest(file, &m, err, sizeof err)) {
        fprintf(stderr, "keel: %s\n", err);
        return KEEL_EXIT_FAIL;
    }
    keel_log_min = (keel_log_level)m->obs.log_level;
    keel_log_fmt = (keel_log_format)m->obs.log_format;
    /* the audit trail first: a refusal below (residency) is recorded too */
    if (m->admin.audit_log && keel_audit_open(m->admin.audit_log, err, sizeof err)) {
        fprintf(stderr, "keel: %s: admin.audit_log: %s\n", file, err);
        keel_manifest_free(m);
        return KEEL_EXIT_FAIL;
    }
    keel_audit_config("config.loaded", "system", m);
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
    live = keel_live_new(h, m, &ho);   /* owns h and m from here */
    reloader = keel_reloader_start(live, admin);
    install_stop_signals();
    signal(SIGPIPE, SIG_IGN);

    keel_http_opts hopts = {
        .listen = listen ? listen : m->listen, .handover = handover,
        .inherited = inherited, .n_inherited = (unsigned)n_inherited,
        .drain_delay_ns = m->shutdown.drain_delay_ns, .grace_ns = m->shutdown.grace_ns,
        .draining = on_draining, .draining_arg = admin,
    };
    int served = keel_http_serve(live, &hopts, &stop_requested, err, sizeof err);
    if (served < 0) {
        fprintf(stderr, "keel: %s\n", err);
        goto out;
    }
    /* guests still run on the host: process exit reclaims it, not us */
    abandoned = served == KEEL_HTTP_ABANDONED;
    status = KEEL_EXIT_OK;
out:
    /* Reloads off, telemetry first (spans, then the access-log queue after
     * the last line about stopping), then the hosts: stores close cleanly. */
    keel_reloader_stop(reloader);
    keel_admin_set_host(admin, NULL);
    keel_admin_stop(admin);
    keel_tracer_stop();
    if (live) {
        if (!abandoned)
            keel_live_free(live);
    } else {
        keel_host_free(h);
        keel_manifest_free(m);
    }
    if (status == KEEL_EXIT_OK)
        keel_log(KEEL_LOG_INFO, NULL, "stopped");
    keel_log_queue_stop();
    keel_audit_close();
    return status;
}
