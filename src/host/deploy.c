/* deploy.c — changing what a component runs while it serves: deploy a new
 * stable version, stage one and canary it, promote, roll back (by hand or,
 * through host_canary_auto_rollback, by Keel when the canary is worse than
 * the stable version). Every change is logged and written to the audit
 * trail with the old and new sha256, who asked and why; the deployment
 * digest follows.
 *
 * All changes happen under h->deploy_lock; compiling and building the
 * image of a new version happen before it is taken, so serving and the
 * tier-up thread are never held up by a compile. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/audit.h"
#include "base/errors.h"
#include "host/host_int.h"
#include "obs/log.h"

static host_component *find(keel_host *h, const char *name, char *err, size_t errlen)
{
    host_component *c = name ? host_component_named(h, name, strlen(name)) : NULL;
    if (!c)
        keel_err(err, errlen, KEEL_ENOTFOUND, "no component named '%s'", name ? name : "");
    return c;
}

/* Audit record for a version change of comp: old and new sha, why. */
static void audit_change(const char *event, const char *who, const host_component *comp,
                         const char *old_sha, const char *new_sha, const char *why,
                         const char *extra)
{
    keel_buf f = { 0 };
    keel_buf_puts(&f, "\"component\":\"");
    keel_buf_json(&f, comp->cfg->name);
    keel_buf_printf(&f, "\",\"old_sha256\":\"%s\",\"new_sha256\":\"%s\"", old_sha ? old_sha : "",
                    new_sha ? new_sha : "");
    if (why) {
        keel_buf_puts(&f, ",\"why\":\"");
        keel_buf_json(&f, why);
        keel_buf_puts(&f, "\"");
    }
    if (extra)
        keel_buf_printf(&f, ",%s", extra);
    keel_audit(event, who ? who : "system", f.data);
    keel_buf_free(&f);
}

int keel_host_deploy(keel_host *h, const keel_deploy_req *r, keel_deploy_result *out,
                     char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    host_component *comp = find(h, r->component, err, errlen);
    if (!comp)
        return KEEL_ENOTFOUND;
    keel_engine_opts eo = { .tier = r->fast ? KEEL_TIER_FAST : KEEL_TIER_OPT,
                            .cache_dir = h->cache_dir };
    keel_module *mod;
    char why[1024];
    uint64_t t0 = keel_rt_now_ns();
    int rc = host_module_load(r->wasm_path, eo, &mod, why, sizeof why);
    if (!rc && (rc = host_module_fits(comp, mod, why, sizeof why)))
        keel_module_free(mod);
    if (rc)
        return keel_err(err, errlen, rc, "component %s: %s", comp->cfg->name, why);
    out->compile_seconds = (double)(keel_rt_now_ns() - t0) / 1e9;
    host_code *code = host_code_new(h, comp, mod, true);
    keel_host_tidy();             /* the template instance's reset, on this thread */
    host_version *v = host_version_new(code, r->wasm_path);
    snprintf(out->sha, sizeof out->sha, "%s", v->sha);
    snprintf(out->tier, sizeof out->tier, "%s", keel_module_tier(mod));

    pthread_mutex_lock(&h->deploy_lock);
    host_version *old = atomic_load(&comp->stable);
    if (r->stage) {
        host_version_retire(h, comp->staged);
        comp->staged = v;
    } else {
        snprintf(out->previous, sizeof out->previous, "%s", old->sha);
        host_version *canary = atomic_exchange(&comp->canary, NULL);
        atomic_store(&comp->canary_weight, 0);
        atomic_store(&comp->stable, v);
        host_version_retire(h, canary);
        host_version_retire(h, comp->previous);
        comp->previous = old;   /* kept for rollback; may still be running */
        host_deployment_digest(h);
    }
    pthread_mutex_unlock(&h->deploy_lock);
    keel_host_reap(h);

    char extra[160];
    snprintf(extra, sizeof extra, "\"tier\":\"%s\",\"staged\":%s,\"compile_seconds\":%.3f",
             out->tier, r->stage ? "true" : "false", out->compile_seconds);
    audit_change(r->stage ? "component.staged" : "component.deployed", r->who, comp,
                 r->stage ? NULL : out->previous, out->sha, NULL, extra);
    keel_log(KEEL_LOG_INFO, comp->cfg->name, "version %.12s %s (%s tier, compiled in %.2f s) "
             "by %s%s%.12s", out->sha, r->stage ? "staged for a canary" : "deployed",
             out->tier, out->compile_seconds, r->who ? r->who : "system",
             r->stage ? "" : "; replaced ", r->stage ? "" : out->previous);
    if (r->fast && strcmp(out->tier, "fast") == 0 && h->background_opt)
        host_tierup_start(h, h->cache_dir);
    return 0;
}

/* The version of comp with sha (or a prefix of >= 12 hex digits) among
 * staged and canary. Under deploy_lock. */
static host_version *version_named(host_component *comp, const char *sha)
{
    size_t n = sha ? strlen(sha) : 0;
    if (n < 12 || n > 64)
        return NULL;
    host_version *cands[2] = { comp->staged, atomic_load(&comp->canary) };
    for (int i = 0; i < 2; i++)
        if (cands[i] && strncmp(cands[i]->sha, sha, n) == 0)
            return cands[i];
    return NULL;
}

int keel_host_canary(keel_host *h, const char *component, const char *sha, unsigned weight,
                     const char *who, char *err, size_t errlen)
{
    host_component *comp = find(h, component, err, errlen);
    if (!comp)
        return KEEL_ENOTFOUND;
    if (weight > 100)
        return keel_err(err, errlen, KEEL_EINVAL, "weight must be 0..100 (percent), got %u",
                        weight);
    pthread_mutex_lock(&h->deploy_lock);
    host_version *v = version_named(comp, sha);
    if (!v) {
        pthread_mutex_unlock(&h->deploy_lock);
        return keel_err(err, errlen, KEEL_ENOTFOUND, "component %s has no staged version %s: "
                        "upload it first with PUT /admin/components/%s?stage=canary",
                        comp->cfg->name, sha ? sha : "(none given)", comp->cfg->name);
    }
    host_version *cur = atomic_load(&comp->canary);
    if (v != cur) {
        comp->staged = NULL;
        atomic_store(&comp->canary_weight, 0);
        atomic_store(&comp->canary, v);
        host_version_retire(h, cur);
    }
    atomic_store(&comp->canary_weight, weight);
    char stable_sha[65];
    snprintf(stable_sha, sizeof stable_sha, "%s", atomic_load(&comp->stable)->sha);
    pthread_mutex_unlock(&h->deploy_lock);
    keel_host_reap(h);
    char extra[40];
    snprintf(extra, sizeof extra, "\"weight\":%u", weight);
    audit_change("component.canaried", who, comp, stable_sha, v->sha, NULL, extra);
    keel_log(KEEL_LOG_INFO, comp->cfg->name, "canary %.12s serves %u%% (stable %.12s), set by %s",
             v->sha, weight, stable_sha, who ? who : "system");
    return 0;
}

int keel_host_promote(keel_host *h, const char *component, const char *who, char *err,
                      size_t errlen)
{
    host_component *comp = find(h, component, err, errlen);
    if (!comp)
        return KEEL_ENOTFOUND;
    pthread_mutex_lock(&h->deploy_lock);
    host_version *canary = atomic_load(&comp->canary);
    if (!canary) {
        pthread_mutex_unlock(&h->deploy_lock);
        return keel_err(err, errlen, KEEL_ESTATE, "component %s has no canary to promote",
                        comp->cfg->name);
    }
    host_version *old = atomic_load(&comp->stable);
    atomic_store(&comp->stable, canary);
    atomic_store(&comp->canary, NULL);
    atomic_store(&comp->canary_weight, 0);
    host_version_retire(h, comp->previous);
    comp->previous = old;
    host_deployment_digest(h);
    char old_sha[65], new_sha[65];
    snprintf(old_sha, sizeof old_sha, "%s", old->sha);
    snprintf(new_sha, sizeof new_sha, "%s", canary->sha);
    pthread_mutex_unlock(&h->deploy_lock);
    keel_host_reap(h);
    audit_change("component.promoted", who, comp, old_sha, new_sha, NULL, NULL);
    keel_log(KEEL_LOG_INFO, comp->cfg->name, "canary %.12s promoted to stable (was %.12s) by %s",
             new_sha, old_sha, who ? who : "system");
    return 0;
}

/* Under deploy_lock: ends comp's canary (or restores the previous stable
 * version); fills old/new. */
static int rollback_locked(keel_host *h, host_component *comp, char *old_sha, char *new_sha,
                           char *err, size_t errlen)
{
    host_version *canary = atomic_load(&comp->canary);
    host_version *stable = atomic_load(&comp->stable);
    if (canary) {
        atomic_store(&comp->canary, NULL);
        atomic_store(&comp->canary_weight, 0);
        snprintf(old_sha, 65, "%s", canary->sha);
        snprintf(new_sha, 65, "%s", stable->sha);
        host_version_retire(h, canary);
        return 0;
    }
    if (!comp->previous)
        return keel_err(err, errlen, KEEL_ESTATE, "component %s has no canary and no previous "
                        "version to roll back to", comp->cfg->name);
    snprintf(old_sha, 65, "%s", stable->sha);
    snprintf(new_sha, 65, "%s", comp->previous->sha);
    atomic_store(&comp->stable, comp->previous);
    comp->previous = stable;   /* a second rollback rolls forward again */
    host_deployment_digest(h);
    return 0;
}

int keel_host_rollback(keel_host *h, const char *component, const char *who, const char *why,
                       char *err, size_t errlen)
{
    host_component *comp = find(h, component, err, errlen);
    if (!comp)
        return KEEL_ENOTFOUND;
    char old_sha[65], new_sha[65];
    pthread_mutex_lock(&h->deploy_lock);
    int rc = rollback_locked(h, comp, old_sha, new_sha, err, errlen);
    pthread_mutex_unlock(&h->deploy_lock);
    if (rc)
        return rc;
    keel_host_reap(h);
    atomic_fetch_add(&comp->rollbacks[0], 1);
    audit_change("component.rolled_back", who, comp, old_sha, new_sha,
                 why ? why : "requested", NULL);
    keel_log(KEEL_LOG_WARN, comp->cfg->name, "rolled back from %.12s to %.12s by %s: %s",
             old_sha, new_sha, who ? who : "system", why ? why : "requested");
    return 0;
}

int host_canary_auto_rollback(keel_host *h, host_component *comp, host_version *canary,
                              const char *why)
{
    if (pthread_mutex_trylock(&h->deploy_lock) != 0)
        return -1;
    if (atomic_load(&comp->canary) != canary) {
        pthread_mutex_unlock(&h->deploy_lock);
        return -1;
    }
    char old_sha[65], new_sha[65], err[256];
    int rc = rollback_locked(h, comp, old_sha, new_sha, err, sizeof err);
    pthread_mutex_unlock(&h->deploy_lock);
    if (rc)
        return rc;
    atomic_fetch_add(&comp->rollbacks[1], 1);
    audit_change("component.rolled_back", "keel", comp, old_sha, new_sha, why,
                 "\"automatic\":true");
    keel_log(KEEL_LOG_WARN, comp->cfg->name, "canary %.12s rolled back automatically: %s",
             old_sha, why);
    return 0;
}

void keel_host_components_json(keel_host *h, keel_buf *b)
{
    keel_buf_puts(b, "{\"components\":[");
    pthread_mutex_lock(&h->deploy_lock);
    for (size_t i = 0; i < h->ncomps; i++) {
        host_component *c = &h->comps[i];
        host_version *stable = atomic_load(&c->stable), *canary = atomic_load(&c->canary);
        uint32_t w = canary ? atomic_load(&c->canary_weight) : 0;
        keel_buf_puts(b, i ? ",{\"name\":\"" : "{\"name\":\"");
        keel_buf_json(b, c->cfg->name);
        keel_buf_printf(b, "\",\"abi\":\"%s\",\"state\":\"%s\",\"versions\":[",
                        c->cfg->abi == KEEL_ABI_WAPC ? "wapc" : "wagi",
                        canary ? "canary" : "stable");
        host_version_json(h, stable, "stable", 100u - w, b);
        if (canary) {
            keel_buf_puts(b, ",");
            host_version_json(h, canary, "canary", w, b);
        }
        keel_buf_puts(b, "],\"staged\":");
        if (c->staged)
            host_version_json(h, c->staged, "staged", 0, b);
        else
            keel_buf_puts(b, "null");
        if (c->previous)
            keel_buf_printf(b, ",\"previous\":\"%s\"}", c->previous->sha);
        else
            keel_buf_puts(b, ",\"previous\":null}");
    }
    keel_buf_printf(b, "],\"deployment_digest\":\"%s\"}\n", h->deployment_digest);
    pthread_mutex_unlock(&h->deploy_lock);
}

void keel_host_state_json(keel_host *h, keel_buf *b)
{
    pthread_mutex_lock(&h->deploy_lock);
    keel_buf_printf(b, "{\"deployment_digest\":\"%s\",\"config_digest\":\"%s\",\"manifest\":\"",
                    h->deployment_digest, h->config_digest);
    keel_buf_json(b, h->m->path ? h->m->path : "");
    keel_buf_puts(b, "\",\"components\":{");
    for (size_t i = 0; i < h->ncomps; i++) {
        host_component *c = &h->comps[i];
        host_version *canary = atomic_load(&c->canary);
        keel_buf_puts(b, i ? ",\"" : "\"");
        keel_buf_json(b, c->cfg->name);
        keel_buf_printf(b, "\":{\"stable\":\"%s\"", atomic_load(&c->stable)->sha);
        if (canary)
            keel_buf_printf(b, ",\"canary\":\"%s\",\"canary_weight\":%u", canary->sha,
                            atomic_load(&c->canary_weight));
        keel_buf_puts(b, "}");
    }
    keel_buf_puts(b, "}}\n");
    pthread_mutex_unlock(&h->deploy_lock);
}
