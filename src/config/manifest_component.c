/* manifest_component.c — one entry of keel.yaml's 'components' to a
 * keel_component_cfg: the name check, wasm, abi, routes (and their
 * methods), calls, config, env, files and limits; kv and residency are
 * read by stores.c, slo and circuit by manifest_obs.c. It owns the table of
 * HTTP methods (manifest.c names them in route conflicts) and the freeing
 * of a component. What spans components (that calls name one, that routes
 * do not collide) is checked afterwards by manifest.c. Errors are reported
 * through keel_mf_fail (manifest_int.h). */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/errors.h"
#include "config/manifest.h"
#include "config/manifest_int.h"
#include "config/units.h"
#include "config/yaml.h"

static const struct { const char *name; unsigned bit; } methods[] = {
    { "GET", KEEL_M_GET }, { "HEAD", KEEL_M_HEAD }, { "POST", KEEL_M_POST },
    { "PUT", KEEL_M_PUT }, { "DELETE", KEEL_M_DELETE }, { "PATCH", KEEL_M_PATCH },
    { "OPTIONS", KEEL_M_OPTIONS },
};

void keel_mf_method_names(unsigned bits, char *buf, size_t len)
{
    size_t k = 0;
    buf[0] = '\0';
    if (!bits) {
        snprintf(buf, len, "all methods");
        return;
    }
    for (size_t i = 0; i < sizeof methods / sizeof *methods && k < len; i++)
        if (bits & methods[i].bit)
            k += (size_t)snprintf(buf + k, len - k, "%s%s", k ? ", " : "", methods[i].name);
}

/* rel resolved against the manifest folder, made canonical. Returns 0,
 * or -1 with *out = the joined path (for the message; caller frees). */
static int resolve_path(const ctx *c, const char *rel, char **out)
{
    char joined[PATH_MAX * 2];
    if (rel[0] == '/')
        snprintf(joined, sizeof joined, "%s", rel);
    else
        snprintf(joined, sizeof joined, "%s/%s", c->dir, rel);
    char *real = realpath(joined, NULL);
    if (!real) {
        *out = keel_mf_xstrdup(joined);
        return -1;
    }
    *out = real;
    return 0;
}

static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > KEEL_MAX_NAME)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-'))
            return false;
    }
    return true;
}

static int parse_methods(ctx *c, const keel_ynode *v, const char *where, unsigned *out)
{
    int rc = keel_mf_want(c, v, KEEL_Y_SEQ, where, "methods");
    if (rc < 0)
        return rc;
    if (rc > 0 || v->n == 0)
        return keel_mf_fail(c, v->pos, "%s'methods' must list at least one method (omit "
                            "it to allow all)", where);
    *out = 0;
    for (size_t i = 0; i < v->n; i++) {
        const keel_ynode *m = v->items[i];
        if (m->kind != KEEL_Y_SCALAR || m->null)
            return keel_mf_fail(c, m->pos, "%smethod must be a string, got %s", where,
                                keel_ykind_name(m));
        size_t j = 0;
        while (j < sizeof methods / sizeof *methods && strcmp(methods[j].name, m->text))
            j++;
        if (j == sizeof methods / sizeof *methods)
            return keel_mf_fail(c, m->pos, "%sunknown method '%s' (supported: GET, HEAD, "
                                "POST, PUT, DELETE, PATCH, OPTIONS)", where, m->text);
        if (*out & methods[j].bit)
            return keel_mf_fail(c, m->pos, "%smethod %s listed twice", where, m->text);
        *out |= methods[j].bit;
    }
    return 0;
}

static int parse_route(ctx *c, const keel_ynode *v, size_t idx, keel_abi abi,
                       keel_route *r)
{
    char where[48];
    snprintf(where, sizeof where, "routes[%zu]: ", idx);
    static const char *const keys[] = { "path", "methods", "operation", NULL };
    if (v->kind != KEEL_Y_MAP)
        return keel_mf_fail(c, v->pos, "%sa route must be a mapping (path, methods, "
                            "operation), got %s", where, keel_ykind_name(v));
    int rc = keel_mf_check_keys(c, v, keys, where);
    if (rc)
        return rc;
    keel_pos kp;
    const keel_ynode *p = keel_ymap_get(v, "path", NULL);
    if (!p)
        return keel_mf_fail(c, v->pos, "%smissing required key 'path'", where);
    if ((rc = keel_mf_string(c, p, where, "path", &r->path)))
        return rc;
    r->pos = p->pos;
    size_t n = strlen(r->path);
    if (r->path[0] != '/')
        return keel_mf_fail(c, p->pos, "%spath '%s' must start with '/'", where, r->path);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)r->path[i];
        if (ch <= ' ' || ch == 0x7f || ch == '?' || ch == '#')
            return keel_mf_fail(c, p->pos, "%spath '%s' must not contain spaces, control "
                                "characters, '?' or '#'", where, r->path);
        if (ch == '*' && !(i == n - 1 && i > 0 && r->path[i - 1] == '/'))
            return keel_mf_fail(c, p->pos, "%spath '%s': '*' is allowed only as a final "
                                "'/*' (prefix match)", where, r->path);
    }
    if (n >= 2 && r->path[n - 1] == '*') {
        r->prefix = true;
        r->path[n - 1] = '\0';
    }
    const keel_ynode *m = keel_ymap_get(v, "methods", NULL);
    if (m && (rc = parse_methods(c, m, where, &r->methods)))
        return rc;
    const keel_ynode *op = keel_ymap_get(v, "operation", &kp);
    if (op && abi == KEEL_ABI_WAGI)
        return keel_mf_fail(c, kp, "%s'operation' applies only to abi wapc (a wagi "
                            "component is a WASI command run per request)", where);
    if (op) {
        if ((rc = keel_mf_string(c, op, where, "operation", &r->operation)))
            return rc;
        if (!r->operation[0])
            return keel_mf_fail(c, op->pos, "%s'operation' must not be empty", where);
    } else if (abi == KEEL_ABI_WAPC) {
        r->operation = keel_mf_xstrdup("handle");
    }
    return 0;
}

static int parse_routes(ctx *c, const keel_ynode *v, keel_component_cfg *cc)
{
    int rc = keel_mf_want(c, v, KEEL_Y_SEQ, "", "routes");
    if (rc)
        return rc < 0 ? rc : 0;
    if (v->n > KEEL_MAX_ROUTES)
        return keel_mf_fail(c, v->pos, "more than %d routes", KEEL_MAX_ROUTES);
    cc->routes = keel_mf_xcalloc(v->n, sizeof *cc->routes);
    for (size_t i = 0; i < v->n; i++) {
        cc->nroutes = i + 1;
        if ((rc = parse_route(c, v->items[i], i, cc->abi, &cc->routes[i])))
            return rc;
    }
    return 0;
}

/* The names only; that each names a component is checked once all are
 * known (check_calls in manifest.c). */
static int parse_calls(ctx *c, const keel_ynode *v, keel_component_cfg *cc)
{
    int rc = keel_mf_want(c, v, KEEL_Y_SEQ, "", "calls");
    if (rc)
        return rc < 0 ? rc : 0;
    if (v->n > KEEL_MAX_CALLS)
        return keel_mf_fail(c, v->pos, "more than %d calls", KEEL_MAX_CALLS);
    cc->calls = keel_mf_xcalloc(v->n, sizeof *cc->calls);
    for (size_t i = 0; i < v->n; i++) {
        const keel_ynode *e = v->items[i];
        if (e->kind != KEEL_Y_SCALAR || e->null)
            return keel_mf_fail(c, e->pos, "calls: each entry must be a component name, "
                                "got %s", keel_ykind_name(e));
        for (size_t j = 0; j < i; j++)
            if (!strcmp(cc->calls[j], e->text))
                return keel_mf_fail(c, e->pos, "calls: '%s' is listed twice", e->text);
        cc->calls[i] = keel_mf_xstrdup(e->text);
        cc->ncalls = i + 1;
    }
    return 0;
}

/* config and env: string keys to scalar values (null is ""). */
static int parse_kv(ctx *c, const keel_ynode *v, const char *name, bool env,
                    keel_kv **out, size_t *nout)
{
    int rc = keel_mf_want(c, v, KEEL_Y_MAP, "", name);
    if (rc)
        return rc < 0 ? rc : 0;
    *out = keel_mf_xcalloc(v->n, sizeof **out);
    for (size_t i = 0; i < v->n; i++) {
        const keel_ynode *k = v->items[2 * i], *val = v->items[2 * i + 1];
        if (!k->text[0] || k->null)
            return keel_mf_fail(c, k->pos, "%s: keys must not be empty or null", name);
        if (env && strchr(k->text, '='))
            return keel_mf_fail(c, k->pos, "env: variable name '%s' must not contain '='",
                                k->text);
        if (val->kind != KEEL_Y_SCALAR)
            return keel_mf_fail(c, val->pos, "%s: value of '%s' must be a string, got %s",
                                name, k->text, keel_ykind_name(val));
        (*out)[i].key = keel_mf_xstrdup(k->text);
        (*out)[i].value = keel_mf_xstrdup(val->null ? "" : val->text);
        *nout = i + 1;
    }
    return 0;
}

static int parse_files(ctx *c, const keel_ynode *v, keel_component_cfg *cc)
{
    int rc = keel_mf_want(c, v, KEEL_Y_SEQ, "", "files");
    if (rc)
        return rc < 0 ? rc : 0;
    static const char *const keys[] = { "host", "guest", "mode", NULL };
    cc->files = keel_mf_xcalloc(v->n, sizeof *cc->files);
    for (size_t i = 0; i < v->n; i++) {
        const keel_ynode *f = v->items[i];
        keel_mount *mt = &cc->files[i];
        cc->nfiles = i + 1;
        char where[48];
        snprintf(where, sizeof where, "files[%zu]: ", i);
        if (f->kind != KEEL_Y_MAP)
            return keel_mf_fail(c, f->pos, "%sa mount must be a mapping (host, guest, "
                                "mode), got %s", where, keel_ykind_name(f));
        if ((rc = keel_mf_check_keys(c, f, keys, where)))
            return rc;
        const keel_ynode *h = keel_ymap_get(f, "host", NULL);
        const keel_ynode *g = keel_ymap_get(f, "guest", NULL);
        const keel_ynode *mo = keel_ymap_get(f, "mode", NULL);
        if (!h)
            return keel_mf_fail(c, f->pos, "%smissing required key 'host'", where);
        if (!g)
            return keel_mf_fail(c, f->pos, "%smissing required key 'guest'", where);
        char *rel;
        if ((rc = keel_mf_string(c, h, where, "host", &rel)))
            return rc;
        char *abs;
        struct stat st;
        if (resolve_path(c, rel, &abs) != 0) {
            rc = keel_mf_fail(c, h->pos, "%shost folder '%s' not found (resolved to %s)",
                              where, rel, abs);
        } else if (stat(abs, &st) != 0 || !S_ISDIR(st.st_mode)) {
            rc = keel_mf_fail(c, h->pos, "%shost '%s' is not a folder (resolved to %s)",
                              where, rel, abs);
        }
        free(rel);
        mt->host = abs;
        if (rc)
            return rc;
        if ((rc = keel_mf_string(c, g, where, "guest", &mt->guest)))
            return rc;
        if (mt->guest[0] != '/')
            return keel_mf_fail(c, g->pos, "%sguest path '%s' must start with '/'", where,
                                mt->guest);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(cc->files[j].guest, mt->guest))
                return keel_mf_fail(c, g->pos, "%sguest path '%s' is already mounted by "
                                    "files[%zu]", where, mt->guest, j);
        mt->readonly = true;
        if (mo) {
            bool scalar = mo->kind == KEEL_Y_SCALAR;
            if (!scalar || (strcmp(mo->text, "ro") && strcmp(mo->text, "rw")))
                return keel_mf_fail(c, mo->pos, "%smode must be ro or rw, got %s%s%s",
                                    where, scalar ? "'" : "",
                                    scalar ? mo->text : keel_ykind_name(mo),
                                    scalar ? "'" : "");
            mt->readonly = !strcmp(mo->text, "ro");
        }
    }
    return 0;
}

static int limit_scalar(ctx *c, const keel_ynode *v, const char *name)
{
    if (v->kind != KEEL_Y_SCALAR || v->null)
        return keel_mf_fail(c, v->pos, "limits: '%s' must be a scalar, got %s", name,
                            keel_ykind_name(v));
    return 0;
}

static int parse_limits(ctx *c, const keel_ynode *v, keel_limits *l)
{
    int rc = keel_mf_want(c, v, KEEL_Y_MAP, "", "limits");
    if (rc)
        return rc < 0 ? rc : 0;
    static const char *const keys[] = { "memory", "timeout", "concurrency", "body", NULL };
    if ((rc = keel_mf_check_keys(c, v, keys, "limits: ")))
        return rc;
    const keel_ynode *n;
    if ((n = keel_ymap_get(v, "memory", NULL))) {
        if ((rc = limit_scalar(c, n, "memory")))
            return rc;
        if (keel_parse_size(n->text, &l->memory) != 0)
            return keel_mf_fail(c, n->pos, "limits: memory '%s' is not a size (e.g. 64MiB)",
                                n->text);
        if (l->memory < KEEL_MIN_MEMORY || l->memory > KEEL_MAX_MEMORY)
            return keel_mf_fail(c, n->pos, "limits: memory %s is out of bounds (64KiB to "
                                "4GiB)", n->text);
    }
    if ((n = keel_ymap_get(v, "timeout", NULL))) {
        if ((rc = limit_scalar(c, n, "timeout")))
            return rc;
        if (keel_parse_duration(n->text, &l->timeout_ns) != 0)
            return keel_mf_fail(c, n->pos, "limits: timeout '%s' is not a duration (e.g. "
                                "5s, 500ms)", n->text);
        if (l->timeout_ns < KEEL_MIN_TIMEOUT_NS || l->timeout_ns > KEEL_MAX_TIMEOUT_NS)
            return keel_mf_fail(c, n->pos, "limits: timeout %s is out of bounds (1ms to "
                                "1h)", n->text);
    }
    if ((n = keel_ymap_get(v, "concurrency", NULL))) {
        if ((rc = limit_scalar(c, n, "concurrency")))
            return rc;
        char *end;
        errno = 0;
        unsigned long long x = strtoull(n->text, &end, 10);
        if (n->text[0] < '0' || n->text[0] > '9' || *end || errno ||
            x < 1 || x > KEEL_MAX_CONCURRENCY)
            return keel_mf_fail(c, n->pos, "limits: concurrency '%s' must be an integer "
                                "from 1 to %u", n->text, KEEL_MAX_CONCURRENCY);
        l->concurrency = (uint32_t)x;
    }
    if ((n = keel_ymap_get(v, "body", NULL))) {
        if ((rc = limit_scalar(c, n, "body")))
            return rc;
        if (keel_parse_size(n->text, &l->body) != 0)
            return keel_mf_fail(c, n->pos, "limits: body '%s' is not a size (e.g. 1MiB)",
                                n->text);
        if (l->body > KEEL_MAX_BODY)
            return keel_mf_fail(c, n->pos, "limits: body %s is above the maximum 1GiB",
                                n->text);
    }
    return 0;
}

static int parse_wasm(ctx *c, const keel_ynode *v, keel_component_cfg *cc)
{
    char *rel, *abs;
    int rc = keel_mf_string(c, v, "", "wasm", &rel);
    if (rc)
        return rc;
    if (c->src) {   /* an app: the module is embedded, not a file */
        char why[256] = "not embedded in this app";
        cc->wasm = c->src->wasm(c->src->ud, cc->name, rel, why, sizeof why);
        rc = cc->wasm ? 0 : keel_mf_fail(c, v->pos, "wasm '%s': %s", rel, why);
        free(rel);
        return rc;
    }
    struct stat st;
    if (resolve_path(c, rel, &abs) != 0)
        rc = keel_mf_fail(c, v->pos, "wasm file '%s' not found (resolved to %s)", rel, abs);
    else if (stat(abs, &st) != 0 || !S_ISREG(st.st_mode))
        rc = keel_mf_fail(c, v->pos, "wasm '%s' is not a regular file (resolved to %s)",
                          rel, abs);
    free(rel);
    cc->wasm = abs;
    return rc;
}

int keel_mf_parse_component(ctx *c, const keel_ynode *key, const keel_ynode *v,
                            keel_component_cfg *cc)
{
    cc->pos = key->pos;
    cc->limits = (keel_limits){ KEEL_DEFAULT_MEMORY, KEEL_DEFAULT_TIMEOUT_NS,
                                KEEL_DEFAULT_CONCURRENCY, KEEL_DEFAULT_BODY };
    if (!valid_name(key->text))
        return keel_mf_fail(c, key->pos, "invalid component name '%s' (use 1 to %d "
                            "characters of a-z, 0-9, '_', '-')", key->text, KEEL_MAX_NAME);
    cc->name = keel_mf_xstrdup(key->text);
    c->comp = cc->name;
    if (v->kind != KEEL_Y_MAP)
        return keel_mf_fail(c, v->pos, "must be a mapping (wasm, abi, routes, ...), got %s",
                            keel_ykind_name(v));
    static const char *const keys[] = { "wasm", "abi", "routes", "calls", "config",
                                        "env", "files", "limits", "kv", "residency",
                                        "slo", "circuit", NULL };
    int rc = keel_mf_check_keys(c, v, keys, "");
    if (rc)
        return rc;
    const keel_ynode *n = keel_ymap_get(v, "wasm", NULL);
    if (!n)
        return keel_mf_fail(c, key->pos, "missing required key 'wasm'");
    cc->wasm_pos = n->pos;
    if ((rc = parse_wasm(c, n, cc)))
        return rc;
    if ((n = keel_ymap_get(v, "abi", NULL))) {
        if (n->kind == KEEL_Y_SCALAR && !strcmp(n->text, "wapc"))
            cc->abi = KEEL_ABI_WAPC;
        else if (n->kind == KEEL_Y_SCALAR && !strcmp(n->text, "wagi"))
            cc->abi = KEEL_ABI_WAGI;
        else if (n->kind == KEEL_Y_SCALAR && !n->null)
            return keel_mf_fail(c, n->pos, "unknown abi '%s' (supported: wapc, wagi)",
                                n->text);
        else
            return keel_mf_fail(c, n->pos, "'abi' must be wapc or wagi, got %s",
                                keel_ykind_name(n));
    }
    if ((n = keel_ymap_get(v, "routes", NULL)) && (rc = parse_routes(c, n, cc)))
        return rc;
    if ((n = keel_ymap_get(v, "calls", NULL)) && (rc = parse_calls(c, n, cc)))
        return rc;
    if ((n = keel_ymap_get(v, "config", NULL)) &&
        (rc = parse_kv(c, n, "config", false, &cc->config, &cc->nconfig)))
        return rc;
    if ((n = keel_ymap_get(v, "env", NULL)) &&
        (rc = parse_kv(c, n, "env", true, &cc->env, &cc->nenv)))
        return rc;
    if ((n = keel_ymap_get(v, "files", NULL)) && (rc = parse_files(c, n, cc)))
        return rc;
    if ((n = keel_ymap_get(v, "limits", NULL)) && (rc = parse_limits(c, n, &cc->limits)))
        return rc;
    if ((rc = keel_mf_parse_component_state(c, v, cc)))
        return rc;
    if ((n = keel_ymap_get(v, "slo", NULL)) && (rc = mf_parse_slo(c, n, cc)))
        return rc;
    if ((n = keel_ymap_get(v, "circuit", NULL)) && (rc = mf_parse_circuit(c, n, cc)))
        return rc;
    c->comp = NULL;
    return 0;
}

void keel_mf_free_component(keel_component_cfg *cc)
{
    free(cc->name);
    free(cc->wasm);
    for (size_t i = 0; i < cc->nroutes; i++) {
        free(cc->routes[i].path);
        free(cc->routes[i].operation);
    }
    free(cc->routes);
    for (size_t i = 0; i < cc->ncalls; i++)
        free(cc->calls[i]);
    free(cc->calls);
    for (size_t i = 0; i < cc->nconfig; i++) {
        free(cc->config[i].key);
        free(cc->config[i].value);
    }
    free(cc->config);
    for (size_t i = 0; i < cc->nenv; i++) {
        free(cc->env[i].key);
        free(cc->env[i].value);
    }
    free(cc->env);
    for (size_t i = 0; i < cc->nfiles; i++) {
        free(cc->files[i].host);
        free(cc->files[i].guest);
    }
    free(cc->files);
    keel_mf_free_component_state(cc);
}
