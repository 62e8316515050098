/* alerts.c — `keel alerts`: Prometheus rules for every component with an
 * `slo`, and (--alertmanager) Alertmanager inhibit rules from the calls
 * graph.
 *
 * Rules follow the Google SRE Workbook, "Alerting on SLOs", multiwindow
 * multi-burn-rate: page when the error budget burns 14.4x over 1h and 5m,
 * or 6x over 6h and 30m; ticket at 1x over 3d and 6h. Recording rules give
 * each component's error ratio (5xx answers plus requests refused for
 * concurrency or queue space, over all requests) and latency ratio
 * (requests slower than the SLO threshold, which must be a histogram
 * bucket bound, rounded up otherwise) over those windows.
 *
 * Inhibition: while a component's page fires, the pages of every component
 * that calls it, directly or transitively, are inhibited: one root cause,
 * one page. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "config/manifest.h"
#include "obs/metrics.h"

#define DEFAULT_RUNBOOK "docs/operations.md"   /* point --runbook-base at your copy */

static const char *const windows[] = { "5m", "30m", "1h", "6h", "3d" };
#define NWINDOWS 5

/* The burn-rate alert pairs: long window, short window, factor, severity. */
static const struct {
    const char *lw, *sw;
    double factor;
    const char *severity;
} burns[] = {
    { "1h", "5m", 14.4, "page" },
    { "6h", "30m", 6, "page" },
    { "3d", "6h", 1, "ticket" },
};

/* Smallest bucket bound >= seconds (the last one when above all). */
static double bucket_at_least(double seconds)
{
    for (size_t i = 0; i < KEEL_METRICS_NBUCKETS; i++)
        if (keel_metrics_buckets[i] + 1e-12 >= seconds)
            return keel_metrics_buckets[i];
    return keel_metrics_buckets[KEEL_METRICS_NBUCKETS - 1];
}

/* A series that exists for every component from the first scrape, to keep
 * ratios defined (0 instead of absent) before its first request. */
static void zero_of(FILE *o, const char *c, const char *w)
{
    fprintf(o, "sum by (component) (rate(keel_rejected_total{component=\"%s\"}[%s])) * 0", c, w);
}

static void recording(FILE *o, const keel_component_cfg *cc)
{
    const char *c = cc->name;
    for (int i = 0; i < NWINDOWS; i++) {
        const char *w = windows[i];
        fprintf(o, "      - record: keel:slo_errors:ratio_rate%s\n        expr: |\n          (\n"
                   "            sum by (component) (rate(keel_rejected_total{component=\"%s\","
                   "reason=~\"concurrency|queue\"}[%s]))\n            + (sum by (component) "
                   "(rate(keel_requests_total{component=\"%s\",code=~\"5..\"}[%s])) or ", w, c, w,
                c, w);
        zero_of(o, c, w);
        fprintf(o, ")\n          )\n          /\n          (\n            sum by (component) "
                   "(rate(keel_rejected_total{component=\"%s\",reason=~\"concurrency|queue\"}[%s]))"
                   "\n            + (sum by (component) (rate(keel_requests_total{component=\"%s\"}"
                   "[%s])) or ", c, w, c, w);
        zero_of(o, c, w);
        fprintf(o, ")\n          )\n        labels:\n          component: %s\n", c);
    }
    if (!cc->slo.has_latency)
        return;
    double le = bucket_at_least((double)cc->slo.latency_ns / 1e9);
    for (int i = 0; i < NWINDOWS; i++) {
        const char *w = windows[i];
        fprintf(o, "      - record: keel:slo_latency:ratio_rate%s\n        expr: |\n"
                   "          1 - (\n            sum by (component) (rate(keel_request_duration_"
                   "seconds_bucket{component=\"%s\",le=\"%g\"}[%s]))\n            /\n"
                   "            sum by (component) (rate(keel_request_duration_seconds_count"
                   "{component=\"%s\"}[%s]))\n          )\n        labels:\n"
                   "          component: %s\n", w, c, le, w, c, w, c);
    }
}

static void alert(FILE *o, const keel_component_cfg *cc, const char *kind, double budget,
                  const char *runbook)
{
    const char *c = cc->name;
    bool errors = !strcmp(kind, "errors");
    const char *name = errors ? "KeelErrorBudgetBurn" : "KeelLatencyBudgetBurn";
    for (int sev = 0; sev < 2; sev++) {
        const char *severity = sev ? "ticket" : "page";
        fprintf(o, "      - alert: %s\n        expr: |\n          max by (component) (\n", name);
        bool first = true;
        for (size_t i = 0; i < sizeof burns / sizeof *burns; i++) {
            if (strcmp(burns[i].severity, severity))
                continue;
            double thr = burns[i].factor * budget;
            fprintf(o, "            %s(keel:slo_%s:ratio_rate%s{component=\"%s\"} > %.6g\n"
                       "             and keel:slo_%s:ratio_rate%s{component=\"%s\"} > %.6g)\n",
                    first ? "" : "or ", kind, burns[i].lw, c, thr, kind, burns[i].sw, c, thr);
            first = false;
        }
        fprintf(o, "          )\n        labels:\n          severity: %s\n          component: %s\n"
                   "        annotations:\n", severity, c);
        if (errors)
            fprintf(o, "          summary: \"%s is burning its %.10g%% availability error budget "
                       "too fast (%s)\"\n", c, cc->slo.availability,
                    sev ? "slow burn: 1x over 3d" : "fast burn: 14.4x over 1h or 6x over 6h");
        else
            fprintf(o, "          summary: \"%s answers too many requests slower than %gs "
                       "(SLO: %.10g%% under it; %s)\"\n", c,
                    bucket_at_least((double)cc->slo.latency_ns / 1e9), cc->slo.latency_p * 100,
                    sev ? "slow burn" : "fast burn");
        fprintf(o, "          description: \"%s budget: %.6g of requests. Check /health, "
                   "keel_traps_total and the log lines with component=%s.\"\n",
                errors ? "Error" : "Slow-request", budget, c);
        fprintf(o, "          runbook_url: \"%s#%s\"\n", runbook,
                errors ? "keelerrorbudgetburn" : "keellatencybudgetburn");
    }
}

static int rules(FILE *o, const keel_manifest *m, const char *runbook)
{
    size_t n = 0;
    fprintf(o, "# Prometheus rules generated by `keel alerts -f %s`.\n"
               "# Multiwindow, multi-burn-rate SLO alerts (Google SRE Workbook, \"Alerting on "
               "SLOs\").\ngroups:\n", m->path);
    for (size_t i = 0; i < m->ncomponents; i++) {
        const keel_component_cfg *cc = &m->components[i];
        if (!cc->slo.set)
            continue;
        n++;
        fprintf(o, "  - name: keel-slo-%s-recording\n    rules:\n", cc->name);
        recording(o, cc);
        fprintf(o, "  - name: keel-slo-%s-alerts\n    rules:\n", cc->name);
        alert(o, cc, "errors", 1 - cc->slo.availability / 100, runbook);
        if (cc->slo.has_latency)
            alert(o, cc, "latency", 1 - cc->slo.latency_p, runbook);
    }
    if (!n)
        fprintf(o, "  []\n");
    return 0;
}

/* callers[i][j]: component j calls i, directly or through others. */
static bool *transitive_callers(const keel_manifest *m)
{
    size_t n = m->ncomponents;
    bool *r = calloc(n ? n * n : 1, sizeof *r);
    if (!r)
        abort();
    for (size_t j = 0; j < n; j++)
        for (size_t k = 0; k < m->components[j].ncalls; k++)
            for (size_t i = 0; i < n; i++)
                if (!strcmp(m->components[i].name, m->components[j].calls[k]))
                    r[i * n + j] = true;
    for (size_t k = 0; k < n; k++)          /* Warshall */
        for (size_t i = 0; i < n; i++)
            if (r[i * n + k])
                for (size_t j = 0; j < n; j++)
                    if (r[k * n + j])
                        r[i * n + j] = true;
    return r;
}

static int inhibit(FILE *o, const keel_manifest *m)
{
    size_t n = m->ncomponents;
    bool *callers = transitive_callers(m);
    fprintf(o, "# Alertmanager configuration generated by `keel alerts --alertmanager -f %s`.\n"
               "# Merge inhibit_rules into your own configuration; route and receivers are a\n"
               "# placeholder so the file is complete (amtool check-config).\n"
               "route:\n  receiver: keel-oncall\n  group_by: [alertname, component]\n"
               "receivers:\n  - name: keel-oncall\n"
               "# While a component's page fires, the pages of the components that call it\n"
               "# (directly or transitively) are inhibited: one root cause, one page.\n"
               "inhibit_rules:\n", m->path);
    size_t rules_out = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        for (size_t j = 0; j < n; j++)
            k += callers[i * n + j] && j != i;
        if (!k)
            continue;
        rules_out++;
        fprintf(o, "  - source_matchers: ['alertname=~\"Keel.*BudgetBurn\"', 'severity=\"page\"', "
                   "'component=\"%s\"']\n    target_matchers: ['severity=\"page\"', "
                   "'component=~\"", m->components[i].name);
        bool first = true;
        for (size_t j = 0; j < n; j++)
            if (callers[i * n + j] && j != i) {
                fprintf(o, "%s%s", first ? "" : "|", m->components[j].name);
                first = false;
            }
        fprintf(o, "\"']\n");
    }
    if (!rules_out)
        fprintf(o, "  []\n");
    free(callers);
    return 0;
}

int keel_cmd_alerts(int argc, char **argv)
{
    const char *file = "keel.yaml", *runbook = DEFAULT_RUNBOOK;
    bool am = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int r;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(keel_usage("alerts"), stdout);
            return KEEL_EXIT_OK;
        } else if (strcmp(a, "--alertmanager") == 0) {
            am = true;
        } else if ((r = keel_opt_value(argc, argv, &i, "-f", &v)) != 0 ||
                   (r = keel_opt_value(argc, argv, &i, "--file", &v)) != 0) {
            if (r < 0)
                return keel_usage_error("alerts", "-f needs a file");
            file = v;
        } else if ((r = keel_opt_value(argc, argv, &i, "--runbook-base", &v)) != 0) {
            if (r < 0 || !*v)
                return keel_usage_error("alerts", "--runbook-base needs a URL");
            runbook = v;
        } else {
            return keel_usage_error("alerts", "unexpected argument %s", a);
        }
    }
    char err[1024];
    keel_manifest *m = NULL;
    if (keel_manifest_load(file, &m, err, sizeof err)) {
        fprintf(stderr, "keel: %s\n", err);
        return KEEL_EXIT_FAIL;
    }
    int rc = am ? inhibit(stdout, m) : rules(stdout, m, runbook);
    keel_manifest_free(m);
    return rc ? KEEL_EXIT_FAIL : KEEL_EXIT_OK;
}
