/* stores.c — the state sections of keel.yaml: the instance's `region`, the
 * `stores` map (backend, path or url, regions, limits), and each
 * component's `kv` grants and `residency`. Syntax and references only;
 * whether data may flow where the manifest lets it is residency.c's job. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/errors.h"
#include "config/manifest_int.h"
#include "config/units.h"


static bool valid_region(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > KEEL_MAX_REGION_NAME)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return false;
    return true;
}

static bool valid_store_name(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > KEEL_MAX_NAME)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
              s[i] == '-'))
            return false;
    return true;
}

/* A sequence of distinct names, each checked by ok (what names it in the
 * message). A null value is an empty list. */
static int parse_names(ctx *c, const keel_ynode *v, const char *key, const char *what,
                       bool (*ok)(const char *), char ***out, size_t *nout)
{
    int rc = keel_mf_want(c, v, KEEL_Y_SEQ, "", key);
    if (rc)
        return rc < 0 ? rc : 0;
    if (v->n > KEEL_MAX_REGIONS)
        return keel_mf_fail(c, v->pos, "%s: more than %d entries", key, KEEL_MAX_REGIONS);
    *out = keel_mf_xcalloc(v->n, sizeof **out);
    for (size_t i = 0; i < v->n; i++) {
        const keel_ynode *e = v->items[i];
        if (e->kind != KEEL_Y_SCALAR || e->null)
            return keel_mf_fail(c, e->pos, "%s: each entry must be a %s, got %s", key, what,
                                keel_ykind_name(e));
        if (!ok(e->text))
            return keel_mf_fail(c, e->pos, "%s: invalid %s '%s' (use 1 to %d characters of "
                                "a-z, 0-9, '-'%s)", key, what, e->text, KEEL_MAX_NAME,
                                ok == valid_store_name ? ", '_'" : "");
        for (size_t j = 0; j < i; j++)
            if (!strcmp((*out)[j], e->text))
                return keel_mf_fail(c, e->pos, "%s: '%s' is listed twice", key, e->text);
        (*out)[i] = keel_mf_xstrdup(e->text);
        *nout = i + 1;
    }
    return 0;
}

/* rel joined with the manifest's folder (an absolute rel is kept as it
 * is); not resolved, since the file and its folders need not exist yet. */
static char *join_path(const ctx *c, const char *rel)
{
    char *out;
    if (rel[0] == '/')
        out = keel_mf_xstrdup(rel);
    else if (asprintf(&out, "%s/%s", c->dir, rel) < 0)
        abort();
    return out;
}

static int parse_redis_url(ctx *c, const keel_ynode *v, const char *where, const char *url)
{
    if (strncmp(url, "redis://", 8) != 0)
        return keel_mf_fail(c, v->pos, "%surl '%s' must start with redis:// "
                            "(redis://[:PASSWORD@]HOST[:PORT][/DB])", where, url);
    const char *host = url + 8, *at = strchr(host, '@');
    if (at)
        host = at + 1;
    if (!*host || *host == ':' || *host == '/')
        return keel_mf_fail(c, v->pos, "%surl '%s' has no host", where, url);
    return 0;
}

static int parse_store(ctx *c, const keel_ynode *key, const keel_ynode *v, keel_store_cfg *s)
{
    char where[96];
    s->pos = key->pos;
    s->max_value = KEEL_DEFAULT_MAX_VALUE;
    if (!valid_store_name(key->text))
        return keel_mf_fail(c, key->pos, "stores: invalid store name '%s' (use 1 to %d "
                            "characters of a-z, 0-9, '_', '-')", key->text, KEEL_MAX_NAME);
    s->name = keel_mf_xstrdup(key->text);
    snprintf(where, sizeof where, "store %s: ", s->name);
    if (v->kind != KEEL_Y_MAP)
        return keel_mf_fail(c, v->pos, "%smust be a mapping (backend, path or url, "
                            "regions, ...), got %s", where, keel_ykind_name(v));
    static const char *const keys[] = { "backend", "path", "url", "prefix", "regions",
                                        "max_value", "max_size", NULL };
    int rc = keel_mf_check_keys(c, v, keys, where);
    if (rc)
        return rc;
    const keel_ynode *n = keel_ymap_get(v, "backend", NULL);
    if (n && (n->kind != KEEL_Y_SCALAR || n->null ||
              (strcmp(n->text, "sqlite") && strcmp(n->text, "redis"))))
        return keel_mf_fail(c, n->pos, "%sbackend must be sqlite or redis, got %s%s%s",
                            where, n->kind == KEEL_Y_SCALAR ? "'" : "",
                            n->kind == KEEL_Y_SCALAR ? n->text : keel_ykind_name(n),
                            n->kind == KEEL_Y_SCALAR ? "'" : "");
    s->backend = n && !strcmp(n->text, "redis") ? KEEL_STORE_REDIS : KEEL_STORE_SQLITE;
    const keel_ynode *path = keel_ymap_get(v, "path", NULL);
    const keel_ynode *url = keel_ymap_get(v, "url", NULL);
    const keel_ynode *prefix = keel_ymap_get(v, "prefix", NULL);
    const keel_ynode *size = keel_ymap_get(v, "max_size", NULL);
    if (s->backend == KEEL_STORE_SQLITE) {
        if (url || prefix)
            return keel_mf_fail(c, (url ? url : prefix)->pos, "%s'%s' applies only to "
                                "backend redis", where, url ? "url" : "prefix");
        if (!path)
            return keel_mf_fail(c, v->pos, "%sbackend sqlite needs a path (e.g. "
                                "data/%s.db, relative to the manifest)", where, s->name);
        char *rel;
        if ((rc = keel_mf_string(c, path, where, "path", &rel)))
            return rc;
        if (!rel[0] || rel[strlen(rel) - 1] == '/') {
            rc = keel_mf_fail(c, path->pos, "%spath '%s' must name a file", where, rel);
            free(rel);
            return rc;
        }
        s->path = join_path(c, rel);
        free(rel);
    } else {
        if (path || size)
            return keel_mf_fail(c, (path ? path : size)->pos, "%s'%s' applies only to "
                                "backend sqlite", where, path ? "path" : "max_size");
        if (!url)
            return keel_mf_fail(c, v->pos, "%sbackend redis needs a url "
                                "(redis://HOST:PORT/DB)", where);
        if ((rc = keel_mf_string(c, url, where, "url", &s->url)))
            return rc;
        if ((rc = parse_redis_url(c, url, where, s->url)))
            return rc;
        if (prefix) {
            if (prefix->kind != KEEL_Y_SCALAR)
                return keel_mf_fail(c, prefix->pos, "%s'prefix' must be a string, got %s",
                                    where, keel_ykind_name(prefix));
            s->prefix = keel_mf_xstrdup(prefix->null ? "" : prefix->text);
            if (strlen(s->prefix) > KEEL_MAX_STORE_PREFIX)
                return keel_mf_fail(c, prefix->pos, "%sprefix is longer than %d bytes",
                                    where, KEEL_MAX_STORE_PREFIX);
        } else {
            s->prefix = keel_mf_xstrdup("");
        }
    }
    if ((n = keel_ymap_get(v, "regions", NULL))) {
        char rkey[sizeof where + 8];
        snprintf(rkey, sizeof rkey, "%sregions", where);
        if ((rc = parse_names(c, n, rkey, "region", valid_region, &s->regions, &s->nregions)))
            return rc;
    }
    if ((n = keel_ymap_get(v, "max_value", NULL))) {
        if (n->kind != KEEL_Y_SCALAR || keel_parse_size(n->text, &s->max_value) != 0)
            return keel_mf_fail(c, n->pos, "%smax_value '%s' is not a size (e.g. 1MiB)",
                                where, n->kind == KEEL_Y_SCALAR ? n->text : "");
        if (s->max_value < 1 || s->max_value > KEEL_MAX_MAX_VALUE)
            return keel_mf_fail(c, n->pos, "%smax_value %s is out of bounds (1B to 64MiB)",
                                where, n->text);
    }
    if (size) {
        if (size->kind != KEEL_Y_SCALAR || keel_parse_size(size->text, &s->max_size) != 0)
            return keel_mf_fail(c, size->pos, "%smax_size '%s' is not a size (e.g. 10GiB)",
                                where, size->kind == KEEL_Y_SCALAR ? size->text : "");
        if (s->max_size < (64u << 10))
            return keel_mf_fail(c, size->pos, "%smax_size %s is below the minimum 64KiB",
                                where, size->text);
    }
    return 0;
}

int keel_mf_parse_state(ctx *c, const keel_ynode *root, keel_manifest *m)
{
    int rc;
    keel_ynode *n = keel_ymap_get(root, "region", NULL);
    if (n) {
        if ((rc = keel_mf_string(c, n, "", "region", &m->region)))
            return rc;
        if (!valid_region(m->region))
            return keel_mf_fail(c, n->pos, "region: invalid region '%s' (use 1 to %d "
                                "characters of a-z, 0-9, '-')", m->region,
                                KEEL_MAX_REGION_NAME);
        m->region_pos = n->pos;
    }
    const char *env = getenv("KEEL_REGION");
    if (env && *env) {
        if (!valid_region(env))
            return keel_err(c->err, c->errlen, KEEL_EINVAL, "KEEL_REGION: invalid region "
                            "'%s' (use 1 to %d characters of a-z, 0-9, '-')", env,
                            KEEL_MAX_REGION_NAME);
        free(m->region);
        m->region = keel_mf_xstrdup(env);
        m->region_from_env = true;
    }
    keel_pos kp;
    if (!(n = keel_ymap_get(root, "stores", &kp)))
        return 0;
    if ((rc = keel_mf_want(c, n, KEEL_Y_MAP, "", "stores")))
        return rc < 0 ? rc : 0;
    if (n->n > KEEL_MAX_STORES)
        return keel_mf_fail(c, kp, "more than %d stores", KEEL_MAX_STORES);
    m->stores = keel_mf_xcalloc(n->n, sizeof *m->stores);
    for (size_t i = 0; i < n->n; i++) {
        m->nstores = i + 1;
        if ((rc = parse_store(c, n->items[2 * i], n->items[2 * i + 1], &m->stores[i])))
            return rc;
    }
    return 0;
}

int keel_mf_parse_component_state(ctx *c, const keel_ynode *v, keel_component_cfg *cc)
{
    int rc;
    keel_ynode *n;
    if ((n = keel_ymap_get(v, "kv", NULL))) {
        cc->kv_pos = n->pos;
        if ((rc = parse_names(c, n, "kv", "store name", valid_store_name, &cc->kv, &cc->nkv)))
            return rc;
    }
    if ((n = keel_ymap_get(v, "residency", NULL))) {
        cc->residency_pos = n->pos;
        if ((rc = parse_names(c, n, "residency", "region", valid_region, &cc->residency,
                              &cc->nresidency)))
            return rc;
    }
    return 0;
}

int keel_mf_check_kv(ctx *c, const keel_manifest *m, const keel_ynode *comps)
{
    for (size_t i = 0; i < m->ncomponents; i++) {
        const keel_component_cfg *cc = &m->components[i];
        const keel_ynode *kv = keel_ymap_get(comps->items[2 * i + 1], "kv", NULL);
        c->comp = cc->name;
        for (size_t j = 0; j < cc->nkv; j++)
            if (!keel_manifest_store(m, cc->kv[j]))
                return keel_mf_fail(c, kv->items[j]->pos, "kv: no store named '%s' (declare "
                                    "it under stores:)", cc->kv[j]);
    }
    c->comp = NULL;
    return 0;
}

static void free_list(char **l, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(l[i]);
    free(l);
}

void keel_mf_free_component_state(keel_component_cfg *cc)
{
    free_list(cc->kv, cc->nkv);
    free_list(cc->residency, cc->nresidency);
}

void keel_mf_free_state(keel_manifest *m)
{
    for (size_t i = 0; i < m->nstores; i++) {
        keel_store_cfg *s = &m->stores[i];
        free(s->name);
        free(s->path);
        free(s->url);
        free(s->prefix);
        free_list(s->regions, s->nregions);
    }
    free(m->stores);
    free(m->region);
}

const keel_store_cfg *keel_manifest_store(const keel_manifest *m, const char *name)
{
    for (size_t i = 0; m && i < m->nstores; i++)
        if (m->stores[i].name && !strcmp(m->stores[i].name, name))
            return &m->stores[i];
    return NULL;
}
