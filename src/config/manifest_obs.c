/* manifest_obs.c — the operability sections of keel.yaml: `admin`,
 * `rollout`, `observability`, `shutdown`, and each component's `slo` and
 * `circuit` (contract in docs/config.md). Same rules as manifest.c: unknown
 * keys and bad values
 * are errors naming FILE:LINE:COL. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/manifest_int.h"
#include "base/errors.h"
#include "config/units.h"
#include "obs/log.h"


void mf_obs_defaults(keel_manifest *m)
{
    m->admin.listen = keel_mf_xstrdup(KEEL_DEFAULT_ADMIN_LISTEN);
    m->rollout = (keel_rollout_cfg){
        .window_ns = KEEL_DEFAULT_ROLLOUT_WINDOW_NS,
        .min_requests = KEEL_DEFAULT_ROLLOUT_MIN_REQUESTS,
        .max_error_ratio_increase = KEEL_DEFAULT_ROLLOUT_ERROR_INCREASE,
        .max_p99_ratio = KEEL_DEFAULT_ROLLOUT_P99_RATIO,
        .min_p99_ns = KEEL_DEFAULT_ROLLOUT_MIN_P99_NS,
    };
    m->obs = (keel_obs_cfg){
        .log_level = KEEL_LOG_INFO, .log_format = KEEL_LOG_JSON, .access_log = true,
        .trace_sample = 1.0, .guest_log_rate = KEEL_DEFAULT_GUEST_LOG_RATE,
        .health_interval_ns = KEEL_DEFAULT_HEALTH_INTERVAL_NS,
        .health_timeout_ns = KEEL_DEFAULT_HEALTH_TIMEOUT_NS,
    };
    m->shutdown = (keel_shutdown_cfg){ .drain_delay_ns = KEEL_DEFAULT_DRAIN_DELAY_NS,
                                       .grace_ns = KEEL_DEFAULT_GRACE_NS };
}

void mf_obs_free(keel_manifest *m)
{
    free(m->admin.listen);
    free(m->admin.token_file);
    free(m->admin.audit_log);
    free(m->admin.state_dir);
    free(m->obs.otlp_endpoint);
}

static int scalar(ctx *c, const keel_ynode *v, const char *sec, const char *name)
{
    if (v->kind != KEEL_Y_SCALAR || v->null)
        return keel_mf_fail(c, v->pos, "%s: '%s' must be a scalar, got %s", sec, name,
                       keel_ykind_name(v));
    return 0;
}

/* A decimal number in [lo, hi]. */
static int number(ctx *c, const keel_ynode *v, const char *sec, const char *name, double lo,
                  double hi, double *out)
{
    int rc = scalar(c, v, sec, name);
    if (rc)
        return rc;
    char *end;
    errno = 0;
    double x = strtod(v->text, &end);
    if (end == v->text || *end || errno || !isfinite(x) || x < lo || x > hi)
        return keel_mf_fail(c, v->pos, "%s: '%s' must be a number from %g to %g, got '%s'", sec,
                       name, lo, hi, v->text);
    *out = x;
    return 0;
}

static int duration(ctx *c, const keel_ynode *v, const char *sec, const char *name,
                    uint64_t lo, uint64_t hi, uint64_t *out)
{
    int rc = scalar(c, v, sec, name);
    if (rc)
        return rc;
    if (keel_parse_duration(v->text, out) != 0)
        return keel_mf_fail(c, v->pos, "%s: '%s' is not a duration (e.g. 10s, 500ms), got '%s'",
                       sec, name, v->text);
    if (*out < lo || *out > hi)
        return keel_mf_fail(c, v->pos, "%s: '%s' %s is out of bounds (%llums to %llus)", sec, name,
                       v->text, (unsigned long long)(lo / 1000000),
                       (unsigned long long)(hi / 1000000000));
    return 0;
}

static int boolean(ctx *c, const keel_ynode *v, const char *sec, const char *name, bool *out)
{
    int rc = scalar(c, v, sec, name);
    if (rc)
        return rc;
    if (!strcmp(v->text, "true"))
        *out = true;
    else if (!strcmp(v->text, "false"))
        *out = false;
    else
        return keel_mf_fail(c, v->pos, "%s: '%s' must be true or false, got '%s'", sec, name,
                       v->text);
    return 0;
}

/* A path relative to the manifest folder (need not exist yet). */
static int path_value(ctx *c, const keel_ynode *v, const char *sec, const char *name,
                      char **out)
{
    char *rel;
    int rc = keel_mf_string(c, v, sec, name, &rel);
    if (rc)
        return rc;
    if (!rel[0]) {
        free(rel);
        return keel_mf_fail(c, v->pos, "%s'%s' must not be empty", sec, name);
    }
    if (rel[0] == '/') {
        *out = rel;
        return 0;
    }
    size_t n = strlen(c->dir) + strlen(rel) + 2;
    *out = malloc(n);
    if (!*out)
        abort();
    snprintf(*out, n, "%s/%s", c->dir, rel);
    free(rel);
    return 0;
}

/* HOST:PORT with a port 0..65535 (the same shape as the top-level listen). */
static int listen_value(ctx *c, const keel_ynode *v, char **out)
{
    char *s;
    int rc = keel_mf_string(c, v, "admin: ", "listen", &s);
    if (rc)
        return rc;
    const char *colon = strrchr(s, ':');
    bool ok = colon && colon > s && colon[1];
    if (ok && s[0] == '[')
        ok = colon[-1] == ']' && colon - s > 2;
    else if (ok)
        ok = !memchr(s, ':', (size_t)(colon - s));
    unsigned long port = 0;
    for (const char *p = ok ? colon + 1 : ""; ok && *p; p++) {
        ok = *p >= '0' && *p <= '9' && p - colon <= 5;
        port = port * 10 + (unsigned long)(*p - '0');
    }
    if (!ok || port > 65535) {
        rc = keel_mf_fail(c, v->pos, "admin: listen '%s' is not HOST:PORT (e.g. 127.0.0.1:9090)", s);
        free(s);
        return rc;
    }
    free(*out);
    *out = s;
    return 0;
}

int mf_parse_admin(ctx *c, const keel_ynode *v, keel_manifest *m)
{
    int rc = keel_mf_want(c, v, KEEL_Y_MAP, "", "admin");
    if (rc)
        return rc < 0 ? rc : 0;
    static const char *const keys[] = { "listen", "token_file", "audit_log", "state_dir",
                                        NULL };
    if ((rc = keel_mf_check_keys(c, v, keys, "admin: ")))
        return rc;
    const keel_ynode *n;
    if ((n = keel_ymap_get(v, "listen", NULL))) {
        if ((rc = listen_value(c, n, &m->admin.listen)))
            return rc;
        m->admin.listen_set = true;
    }
    if ((n = keel_ymap_get(v, "token_file", NULL)) &&
        (rc = path_value(c, n, "admin: ", "token_file", &m->admin.token_file)))
        return rc;
    if ((n = keel_ymap_get(v, "audit_log", NULL)) &&
        (rc = path_value(c, n, "admin: ", "audit_log", &m->admin.audit_log)))
        return rc;
    if ((n = keel_ymap_get(v, "state_dir", NULL)) &&
        (rc = path_value(c, n, "admin: ", "state_dir", &m->admin.state_dir)))
        return rc;
    return 0;
}

int mf_parse_rollout(ctx *c, const keel_ynode *v, keel_manifest *m)
{
    int rc = keel_mf_want(c, v, KEEL_Y_MAP, "", "rollout");
    if (rc)
        return rc < 0 ? rc : 0;
    static const char *const keys[] = { "window", "min_requests", "max_error_ratio_increase",
                                        "max_p99_ratio", "min_p99", NULL };
    if ((rc = keel_mf_check_keys(c, v, keys, "rollout: ")))
        return rc;
    keel_rollout_cfg *r = &m->rollout;
    const keel_ynode *n;
    double x;
    if ((n = keel_ymap_get(v, "window", NULL)) &&
        (rc = duration(c, n, "rollout", "window", 1000000000ull, 3600000000000ull,
                       &r->window_ns)))
        return rc;
    if ((n = keel_ymap_get(v, "min_requests", NULL))) {
        if ((rc = number(c, n, "rollout", "min_requests", 1, 10000000, &x)))
            return rc;
        r->min_requests = (uint32_t)x;
    }
    if ((n = keel_ymap_get(v, "max_error_ratio_increase", NULL)) &&
        (rc = number(c, n, "rollout", "max_error_ratio_increase", 0, 1,
                     &r->max_error_ratio_increase)))
        return rc;
    if ((n = keel_ymap_get(v, "max_p99_ratio", NULL)) &&
        (rc = number(c, n, "rollout", "max_p99_ratio", 1, 1000, &r->max_p99_ratio)))
        return rc;
    if ((n = keel_ymap_get(v, "min_p99", NULL)) &&
        (rc = duration(c, n, "rollout", "min_p99", 0, 3600000000000ull, &r->min_p99_ns)))
        return rc;
    return 0;
}

int mf_parse_observability(ctx *c, const keel_ynode *v, keel_manifest *m)
{
    int rc = keel_mf_want(c, v, KEEL_Y_MAP, "", "observability");
    if (rc)
        return rc < 0 ? rc : 0;
    static const char *const keys[] = { "log_level", "log_format", "access_log",
                                        "otlp_endpoint", "trace_sample", "guest_log_rate",
                                        "health_interval", "health_timeout", NULL };
    const char *sec = "observability";
    if ((rc = keel_mf_check_keys(c, v, keys, "observability: ")))
        return rc;
    keel_obs_cfg *o = &m->obs;
    const keel_ynode *n;
    if ((n = keel_ymap_get(v, "log_level", NULL))) {
        if ((rc = scalar(c, n, sec, "log_level")))
            return rc;
        if ((o->log_level = keel_log_level_parse(n->text)) < 0)
            return keel_mf_fail(c, n->pos, "observability: unknown log_level '%s' (supported: "
                           "debug, info, warn, error)", n->text);
    }
    if ((n = keel_ymap_get(v, "log_format", NULL))) {
        if ((rc = scalar(c, n, sec, "log_format")))
            return rc;
        if ((o->log_format = keel_log_format_parse(n->text)) < 0)
            return keel_mf_fail(c, n->pos, "observability: unknown log_format '%s' (supported: "
                           "json, text)", n->text);
    }
    if ((n = keel_ymap_get(v, "access_log", NULL)) &&
        (rc = boolean(c, n, sec, "access_log", &o->access_log)))
        return rc;
    if ((n = keel_ymap_get(v, "otlp_endpoint", NULL))) {
        if ((rc = keel_mf_string(c, n, "observability: ", "otlp_endpoint", &o->otlp_endpoint)))
            return rc;
        if (strncmp(o->otlp_endpoint, "http://", 7) != 0 || !o->otlp_endpoint[7])
            return keel_mf_fail(c, n->pos, "observability: otlp_endpoint '%s' must be "
                           "http://HOST:PORT (OTLP/HTTP)", o->otlp_endpoint);
    }
    if ((n = keel_ymap_get(v, "trace_sample", NULL)) &&
        (rc = number(c, n, sec, "trace_sample", 0, 1, &o->trace_sample)))
        return rc;
    if ((n = keel_ymap_get(v, "guest_log_rate", NULL))) {
        double r;
        if ((rc = number(c, n, sec, "guest_log_rate", 0, KEEL_MAX_GUEST_LOG_RATE, &r)))
            return rc;
        if (r != floor(r))
            return keel_mf_fail(c, n->pos, "observability: guest_log_rate must be a whole number "
                           "of lines per second, got '%s'", n->text);
        o->guest_log_rate = (uint32_t)r;
    }
    if ((n = keel_ymap_get(v, "health_interval", NULL)) &&
        (rc = duration(c, n, sec, "health_interval", 100000000ull, 3600000000000ull,
                       &o->health_interval_ns)))
        return rc;
    if ((n = keel_ymap_get(v, "health_timeout", NULL)) &&
        (rc = duration(c, n, sec, "health_timeout", 1000000ull, 60000000000ull,
                       &o->health_timeout_ns)))
        return rc;
    return 0;
}

int mf_parse_shutdown(ctx *c, const keel_ynode *v, keel_manifest *m)
{
    int rc = keel_mf_want(c, v, KEEL_Y_MAP, "", "shutdown");
    if (rc)
        return rc < 0 ? rc : 0;
    static const char *const keys[] = { "drain_delay", "grace", NULL };
    if ((rc = keel_mf_check_keys(c, v, keys, "shutdown: ")))
        return rc;
    const keel_ynode *n;
    if ((n = keel_ymap_get(v, "drain_delay", NULL)) &&
        (rc = duration(c, n, "shutdown", "drain_delay", 0, KEEL_MAX_DRAIN_DELAY_NS,
                       &m->shutdown.drain_delay_ns)))
        return rc;
    if ((n = keel_ymap_get(v, "grace", NULL)) &&
        (rc = duration(c, n, "shutdown", "grace", KEEL_MIN_GRACE_NS, KEEL_MAX_GRACE_NS,
                       &m->shutdown.grace_ns)))
        return rc;
    return 0;
}

int mf_parse_slo(ctx *c, const keel_ynode *v, keel_component_cfg *cc)
{
    int rc = keel_mf_want(c, v, KEEL_Y_MAP, "", "slo");
    if (rc)
        return rc < 0 ? rc : 0;
    static const char *const keys[] = { "availability", "latency", NULL };
    if ((rc = keel_mf_check_keys(c, v, keys, "slo: ")))
        return rc;
    keel_slo *s = &cc->slo;
    s->pos = v->pos;
    const keel_ynode *n = keel_ymap_get(v, "availability", NULL);
    if (!n)
        return keel_mf_fail(c, v->pos, "slo: missing required key 'availability' (a percentage, "
                       "e.g. 99.9)");
    if ((rc = number(c, n, "slo", "availability", 50, 99.999, &s->availability)))
        return rc;
    if ((n = keel_ymap_get(v, "latency", NULL))) {
        if ((rc = keel_mf_want(c, n, KEEL_Y_MAP, "slo: ", "latency")) < 0)
            return rc;
        if (rc > 0)
            return keel_mf_fail(c, n->pos, "slo: latency must be a mapping { p: 0.99, under: 300ms }");
        static const char *const lkeys[] = { "p", "under", NULL };
        if ((rc = keel_mf_check_keys(c, n, lkeys, "slo: latency: ")))
            return rc;
        const keel_ynode *p = keel_ymap_get(n, "p", NULL), *u = keel_ymap_get(n, "under", NULL);
        if (!p || !u)
            return keel_mf_fail(c, n->pos, "slo: latency needs both 'p' (e.g. 0.99) and 'under' "
                           "(e.g. 300ms)");
        if ((rc = number(c, p, "slo: latency", "p", 0.5, 0.99999, &s->latency_p)))
            return rc;
        if ((rc = duration(c, u, "slo: latency", "under", 1000000ull, 60000000000ull,
                           &s->latency_ns)))
            return rc;
        s->has_latency = true;
    }
    s->set = true;
    return 0;
}

int mf_parse_circuit(ctx *c, const keel_ynode *v, keel_component_cfg *cc)
{
    int rc = keel_mf_want(c, v, KEEL_Y_MAP, "", "circuit");
    if (rc)
        return rc < 0 ? rc : 0;
    static const char *const keys[] = { "error_ratio", "window", "min_requests", "cooldown",
                                        NULL };
    if ((rc = keel_mf_check_keys(c, v, keys, "circuit: ")))
        return rc;
    keel_circuit *b = &cc->circuit;
    *b = (keel_circuit){ .window_ns = KEEL_DEFAULT_CIRCUIT_WINDOW_NS,
                         .min_requests = KEEL_DEFAULT_CIRCUIT_MIN_REQUESTS,
                         .cooldown_ns = KEEL_DEFAULT_CIRCUIT_COOLDOWN_NS };
    const keel_ynode *n = keel_ymap_get(v, "error_ratio", NULL);
    if (!n)
        return keel_mf_fail(c, v->pos, "circuit: missing required key 'error_ratio' (e.g. 0.5)");
    if ((rc = number(c, n, "circuit", "error_ratio", 0.01, 1, &b->error_ratio)))
        return rc;
    if ((n = keel_ymap_get(v, "window", NULL)) &&
        (rc = duration(c, n, "circuit", "window", 1000000000ull, KEEL_MAX_CIRCUIT_WINDOW_NS,
                       &b->window_ns)))
        return rc;
    if ((n = keel_ymap_get(v, "min_requests", NULL))) {
        double x;
        if ((rc = number(c, n, "circuit", "min_requests", 1, 1000000, &x)))
            return rc;
        b->min_requests = (uint32_t)x;
    }
    if ((n = keel_ymap_get(v, "cooldown", NULL)) &&
        (rc = duration(c, n, "circuit", "cooldown", 100000000ull, 3600000000000ull,
                       &b->cooldown_ns)))
        return rc;
    b->enabled = true;
    return 0;
}
