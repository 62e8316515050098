/* manifest.c — keel.yaml to a validated keel_manifest (see manifest.h and
 * docs/config.md). The YAML becomes a positioned tree (yaml.c); this file
 * walks it once per component, then checks what spans components (calls,
 * route conflicts). The first error wins and is reported as
 * "PATH:LINE:COL: message"; nothing half-loaded escapes. */
#include "config/manifest.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/errors.h"
#include "base/proc.h"
#include "config/manifest_int.h"
#include "config/units.h"
#include "config/yaml.h"

/* Formats "PATH:LINE:COL: [component NAME: ]message" and returns
 * KEEL_EINVAL. */
__attribute__((format(printf, 3, 4)))
static int fail(ctx *c, keel_pos pos, const char *fmt, ...)
{
    if (!c->err || !c->errlen)
        return KEEL_EINVAL;
    int k = snprintf(c->err, c->errlen, "%s:%d:%d: ", c->path, pos.line, pos.col);
    if (c->comp && k >= 0 && (size_t)k < c->errlen)
        k += snprintf(c->err + k, c->errlen - (size_t)k, "component %s: ", c->comp);
    if (k >= 0 && (size_t)k < c->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err + k, c->errlen - (size_t)k, fmt, ap);
        va_end(ap);
    }
    return KEEL_EINVAL;
}
#ifdef __clang_analyzer__
/* As keel_mf_fail in manifest_int.h: the result is KEEL_EINVAL. */
#define fail(...) (fail(__VA_ARGS__), KEEL_EINVAL)
#endif

char *keel_mf_xstrdup(const char *s)
{
    char *d = strdup(s);
    if (!d)
        abort();
    return d;
}

void *keel_mf_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p)
        abort();
    return p;
}

/* Every key of map must be in allowed (NULL-terminated). where prefixes
 * the message ("", "routes[0]: ", ...). */
static int check_keys(ctx *c, const keel_ynode *map, const char *const *allowed,
                      const char *where, bool top)
{
    for (size_t i = 0; i < map->n; i++) {
        const keel_ynode *k = map->items[2 * i];
        size_t j = 0;
        while (allowed[j] && strcmp(allowed[j], k->text))
            j++;
        if (allowed[j])
            continue;
        char list[256] = "";
        size_t len = 0;
        for (j = 0; allowed[j] && len < sizeof list; j++)
            len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", j ? ", " : "",
                                    allowed[j]);
        return fail(c, k->pos, "%sunknown %skey '%s' (supported: %s)", where,
                    top ? "top-level " : "", k->text, list);
    }
    return 0;
}

/* A scalar that is not null, copied into *out. */
static int get_string(ctx *c, const keel_ynode *v, const char *where, const char *name,
                      char **out)
{
    if (v->kind != KEEL_Y_SCALAR || v->null)
        return fail(c, v->pos, "%s'%s' must be a string, got %s", where, name,
                    keel_ykind_name(v));
    *out = keel_mf_xstrdup(v->text);
    return 0;
}

/* A collection of kind, or null (an empty collection: returns 1). */
static int want(ctx *c, const keel_ynode *v, keel_ykind kind, const char *where,
                const char *name)
{
    if (v->kind == KEEL_Y_SCALAR && v->null)
        return 1;
    if (v->kind != kind)
        return fail(c, v->pos, "%s'%s' must be %s, got %s", where, name,
                    kind == KEEL_Y_MAP ? "a mapping" : "a sequence", keel_ykind_name(v));
    return 0;
}

/* The helpers other files of src/config use (manifest_int.h). */
int (keel_mf_fail)(ctx *c, keel_pos pos, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return fail(c, pos, "%s", msg);
}

int keel_mf_check_keys(ctx *c, const keel_ynode *map, const char *const *allowed,
                       const char *where)
{
    return check_keys(c, map, allowed, where, false);
}

int keel_mf_string(ctx *c, const keel_ynode *v, const char *where, const char *name,
                   char **out)
{
    return get_string(c, v, where, name, out);
}

int keel_mf_want(ctx *c, const keel_ynode *v, keel_ykind kind, const char *where,
                 const char *name)
{
    return want(c, v, kind, where, name);
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

static int parse_listen(ctx *c, const keel_ynode *v, char **out)
{
    int rc = get_string(c, v, "", "listen", out);
    if (rc)
        return rc;
    const char *s = *out, *colon = strrchr(s, ':');
    bool ok = colon && colon > s && colon[1];
    if (ok && s[0] == '[')
        ok = colon[-1] == ']' && colon - s > 2;
    else if (ok)
        ok = !memchr(s, ':', (size_t)(colon - s));   /* IPv6 needs brackets */
    unsigned long port = 0;
    for (const char *p = ok ? colon + 1 : ""; ok && *p; p++) {
        ok = *p >= '0' && *p <= '9' && p - colon <= 5;
        port = port * 10 + (unsigned long)(*p - '0');
    }
    if (!ok || port > 65535)
        return fail(c, v->pos, "listen: '%s' is not HOST:PORT (e.g. 127.0.0.1:8080, "
                    "[::1]:8080; port 0..65535)", s);
    return 0;
}

static const struct { const char *name; unsigned bit; } methods[] = {
    { "GET", KEEL_M_GET }, { "HEAD", KEEL_M_HEAD }, { "POST", KEEL_M_POST },
    { "PUT", KEEL_M_PUT }, { "DELETE", KEEL_M_DELETE }, { "PATCH", KEEL_M_PATCH },
    { "OPTIONS", KEEL_M_OPTIONS },
};

static int parse_methods(ctx *c, const keel_ynode *v, const char *where, unsigned *out)
{
    int rc = want(c, v, KEEL_Y_SEQ, where, "methods");
    if (rc < 0)
        return rc;
    if (rc > 0 || v->n == 0)
        return fail(c, v->pos, "%s'methods' must list at least one method (omit it to "
                    "allow all)", where);
    *out = 0;
    for (size_t i = 0; i < v->n; i++) {
        const keel_ynode *m = v->items[i];
        if (m->kind != KEEL_Y_SCALAR || m->null)
            return fail(c, m->pos, "%smethod must be a string, got %s", where,
                        keel_ykind_name(m));
        size_t j = 0;
        while (j < sizeof methods / sizeof *methods && strcmp(methods[j].name, m->text))
            j++;
        if (j == sizeof methods / sizeof *methods)
            return fail(c, m->pos, "%sunknown method '%s' (supported: GET, HEAD, POST, "
                        "PUT, DELETE, PATCH, OPTIONS)", where, m->text);
        if (*out & methods[j].bit)
            return fail(c, m->pos, "%smethod %s listed twice", where, m->text);
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
        return fail(c, v->pos, "%sa route must be a mapping (path, methods, operation), "
                    "got %s", where, keel_ykind_name(v));
    int rc = check_keys(c, v, keys, where, false);
    if (rc)
        return rc;
    keel_pos kp;
    const keel_ynode *p = keel_ymap_get(v, "path", NULL);
    if (!p)
        return fail(c, v->pos, "%smissing required key 'path'", where);
    if ((rc = get_string(c, p, where, "path", &r->path)))
        return rc;
    r->pos = p->pos;
    size_t n = strlen(r->path);
    if (r->path[0] != '/')
        return fail(c, p->pos, "%spath '%s' must start with '/'", where, r->path);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)r->path[i];
        if (ch <= ' ' || ch == 0x7f || ch == '?' || ch == '#')
            return fail(c, p->pos, "%spath '%s' must not contain spaces, control "
                        "characters, '?' or '#'", where, r->path);
        if (ch == '*' && !(i == n - 1 && i > 0 && r->path[i - 1] == '/'))
            return fail(c, p->pos, "%spath '%s': '*' is allowed only as a final '/*' "
                        "(prefix match)", where, r->path);
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
        return fail(c, kp, "%s'operation' applies only to abi wapc (a wagi component "
                    "is a WASI command run per request)", where);
    if (op) {
        if ((rc = get_string(c, op, where, "operation", &r->operation)))
            return rc;
        if (!r->operation[0])
            return fail(c, op->pos, "%s'operation' must not be empty", where);
    } else if (abi == KEEL_ABI_WAPC) {
        r->operation = keel_mf_xstrdup("handle");
    }
    return 0;
}

static int parse_routes(ctx *c, const keel_ynode *v, keel_component_cfg *cc)
{
    int rc = want(c, v, KEEL_Y_SEQ, "", "routes");
    if (rc)
        return rc < 0 ? rc : 0;
    if (v->n > KEEL_MAX_ROUTES)
        return fail(c, v->pos, "more than %d routes", KEEL_MAX_ROUTES);
    cc->routes = keel_mf_xcalloc(v->n, sizeof *cc->routes);
    for (size_t i = 0; i < v->n; i++) {
        cc->nroutes = i + 1;
        if ((rc = parse_route(c, v->items[i], i, cc->abi, &cc->routes[i])))
            return rc;
    }
    return 0;
}

/* The names only; that each names a component is checked once all are
 * known (check_calls). */
static int parse_calls(ctx *c, const keel_ynode *v, keel_component_cfg *cc)
{
    int rc = want(c, v, KEEL_Y_SEQ, "", "calls");
    if (rc)
        return rc < 0 ? rc : 0;
    if (v->n > KEEL_MAX_CALLS)
        return fail(c, v->pos, "more than %d calls", KEEL_MAX_CALLS);
    cc->calls = keel_mf_xcalloc(v->n, sizeof *cc->calls);
    for (size_t i = 0; i < v->n; i++) {
        const keel_ynode *e = v->items[i];
        if (e->kind != KEEL_Y_SCALAR || e->null)
            return fail(c, e->pos, "calls: each entry must be a component name, got %s",
                        keel_ykind_name(e));
        for (size_t j = 0; j < i; j++)
            if (!strcmp(cc->calls[j], e->text))
                return fail(c, e->pos, "calls: '%s' is listed twice", e->text);
        cc->calls[i] = keel_mf_xstrdup(e->text);
        cc->ncalls = i + 1;
    }
    return 0;
}

/* config and env: string keys to scalar values (null is ""). */
static int parse_kv(ctx *c, const keel_ynode *v, const char *name, bool env,
                    keel_kv **out, size_t *nout)
{
    int rc = want(c, v, KEEL_Y_MAP, "", name);
    if (rc)
        return rc < 0 ? rc : 0;
    *out = keel_mf_xcalloc(v->n, sizeof **out);
    for (size_t i = 0; i < v->n; i++) {
        const keel_ynode *k = v->items[2 * i], *val = v->items[2 * i + 1];
        if (!k->text[0] || k->null)
            return fail(c, k->pos, "%s: keys must not be empty or null", name);
        if (env && strchr(k->text, '='))
            return fail(c, k->pos, "env: variable name '%s' must not contain '='",
                        k->text);
        if (val->kind != KEEL_Y_SCALAR)
            return fail(c, val->pos, "%s: value of '%s' must be a string, got %s", name,
                        k->text, keel_ykind_name(val));
        (*out)[i].key = keel_mf_xstrdup(k->text);
        (*out)[i].value = keel_mf_xstrdup(val->null ? "" : val->text);
        *nout = i + 1;
    }
    return 0;
}

static int parse_files(ctx *c, const keel_ynode *v, keel_component_cfg *cc)
{
    int rc = want(c, v, KEEL_Y_SEQ, "", "files");
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
            return fail(c, f->pos, "%sa mount must be a mapping (host, guest, mode), "
                        "got %s", where, keel_ykind_name(f));
        if ((rc = check_keys(c, f, keys, where, false)))
            return rc;
        const keel_ynode *h = keel_ymap_get(f, "host", NULL);
        const keel_ynode *g = keel_ymap_get(f, "guest", NULL);
        const keel_ynode *mo = keel_ymap_get(f, "mode", NULL);
        if (!h)
            return fail(c, f->pos, "%smissing required key 'host'", where);
        if (!g)
            return fail(c, f->pos, "%smissing required key 'guest'", where);
        char *rel;
        if ((rc = get_string(c, h, where, "host", &rel)))
            return rc;
        char *abs;
        struct stat st;
        if (resolve_path(c, rel, &abs) != 0) {
            rc = fail(c, h->pos, "%shost folder '%s' not found (resolved to %s)", where,
                      rel, abs);
        } else if (stat(abs, &st) != 0 || !S_ISDIR(st.st_mode)) {
            rc = fail(c, h->pos, "%shost '%s' is not a folder (resolved to %s)", where,
                      rel, abs);
        }
        free(rel);
        mt->host = abs;
        if (rc)
            return rc;
        if ((rc = get_string(c, g, where, "guest", &mt->guest)))
            return rc;
        if (mt->guest[0] != '/')
            return fail(c, g->pos, "%sguest path '%s' must start with '/'", where,
                        mt->guest);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(cc->files[j].guest, mt->guest))
                return fail(c, g->pos, "%sguest path '%s' is already mounted by "
                            "files[%zu]", where, mt->guest, j);
        mt->readonly = true;
        if (mo) {
            if (mo->kind != KEEL_Y_SCALAR || (strcmp(mo->text, "ro") && strcmp(mo->text, "rw")))
                return fail(c, mo->pos, "%smode must be ro or rw, got %s%s%s", where,
                            mo->kind == KEEL_Y_SCALAR ? "'" : "",
                            mo->kind == KEEL_Y_SCALAR ? mo->text : keel_ykind_name(mo),
                            mo->kind == KEEL_Y_SCALAR ? "'" : "");
            mt->readonly = !strcmp(mo->text, "ro");
        }
    }
    return 0;
}

static int limit_scalar(ctx *c, const keel_ynode *v, const char *name)
{
    if (v->kind != KEEL_Y_SCALAR || v->null)
        return fail(c, v->pos, "limits: '%s' must be a scalar, got %s", name,
                    keel_ykind_name(v));
    return 0;
}

static int parse_limits(ctx *c, const keel_ynode *v, keel_limits *l)
{
    int rc = want(c, v, KEEL_Y_MAP, "", "limits");
    if (rc)
        return rc < 0 ? rc : 0;
    static const char *const keys[] = { "memory", "timeout", "concurrency", "body", NULL };
    if ((rc = check_keys(c, v, keys, "limits: ", false)))
        return rc;
    const keel_ynode *n;
    if ((n = keel_ymap_get(v, "memory", NULL))) {
        if ((rc = limit_scalar(c, n, "memory")))
            return rc;
        if (keel_parse_size(n->text, &l->memory) != 0)
            return fail(c, n->pos, "limits: memory '%s' is not a size (e.g. 64MiB)",
                        n->text);
        if (l->memory < KEEL_MIN_MEMORY || l->memory > KEEL_MAX_MEMORY)
            return fail(c, n->pos, "limits: memory %s is out of bounds (64KiB to 4GiB)",
                        n->text);
    }
    if ((n = keel_ymap_get(v, "timeout", NULL))) {
        if ((rc = limit_scalar(c, n, "timeout")))
            return rc;
        if (keel_parse_duration(n->text, &l->timeout_ns) != 0)
            return fail(c, n->pos, "limits: timeout '%s' is not a duration (e.g. 5s, "
                        "500ms)", n->text);
        if (l->timeout_ns < KEEL_MIN_TIMEOUT_NS || l->timeout_ns > KEEL_MAX_TIMEOUT_NS)
            return fail(c, n->pos, "limits: timeout %s is out of bounds (1ms to 1h)",
                        n->text);
    }
    if ((n = keel_ymap_get(v, "concurrency", NULL))) {
        if ((rc = limit_scalar(c, n, "concurrency")))
            return rc;
        char *end;
        errno = 0;
        unsigned long long x = strtoull(n->text, &end, 10);
        if (n->text[0] < '0' || n->text[0] > '9' || *end || errno ||
            x < 1 || x > KEEL_MAX_CONCURRENCY)
            return fail(c, n->pos, "limits: concurrency '%s' must be an integer from 1 "
                        "to %u", n->text, KEEL_MAX_CONCURRENCY);
        l->concurrency = (uint32_t)x;
    }
    if ((n = keel_ymap_get(v, "body", NULL))) {
        if ((rc = limit_scalar(c, n, "body")))
            return rc;
        if (keel_parse_size(n->text, &l->body) != 0)
            return fail(c, n->pos, "limits: body '%s' is not a size (e.g. 1MiB)", n->text);
        if (l->body > KEEL_MAX_BODY)
            return fail(c, n->pos, "limits: body %s is above the maximum 1GiB", n->text);
    }
    return 0;
}

static int parse_wasm(ctx *c, const keel_ynode *v, keel_component_cfg *cc)
{
    char *rel, *abs;
    int rc = get_string(c, v, "", "wasm", &rel);
    if (rc)
        return rc;
    if (c->src) {   /* an app: the module is embedded, not a file */
        char why[256] = "not embedded in this app";
        cc->wasm = c->src->wasm(c->src->ud, cc->name, rel, why, sizeof why);
        rc = cc->wasm ? 0 : fail(c, v->pos, "wasm '%s': %s", rel, why);
        free(rel);
        return rc;
    }
    struct stat st;
    if (resolve_path(c, rel, &abs) != 0)
        rc = fail(c, v->pos, "wasm file '%s' not found (resolved to %s)", rel, abs);
    else if (stat(abs, &st) != 0 || !S_ISREG(st.st_mode))
        rc = fail(c, v->pos, "wasm '%s' is not a regular file (resolved to %s)", rel, abs);
    free(rel);
    cc->wasm = abs;
    return rc;
}

static int parse_component(ctx *c, const keel_ynode *key, const keel_ynode *v,
                           keel_component_cfg *cc)
{
    cc->pos = key->pos;
    cc->limits = (keel_limits){ KEEL_DEFAULT_MEMORY, KEEL_DEFAULT_TIMEOUT_NS,
                                KEEL_DEFAULT_CONCURRENCY, KEEL_DEFAULT_BODY };
    if (!valid_name(key->text))
        return fail(c, key->pos, "invalid component name '%s' (use 1 to %d characters "
                    "of a-z, 0-9, '_', '-')", key->text, KEEL_MAX_NAME);
    cc->name = keel_mf_xstrdup(key->text);
    c->comp = cc->name;
    if (v->kind != KEEL_Y_MAP)
        return fail(c, v->pos, "must be a mapping (wasm, abi, routes, ...), got %s",
                    keel_ykind_name(v));
    static const char *const keys[] = { "wasm", "abi", "routes", "calls", "config",
                                        "env", "files", "limits", "kv", "residency",
                                        "slo", "circuit", NULL };
    int rc = check_keys(c, v, keys, "", false);
    if (rc)
        return rc;
    const keel_ynode *n = keel_ymap_get(v, "wasm", NULL);
    if (!n)
        return fail(c, key->pos, "missing required key 'wasm'");
    cc->wasm_pos = n->pos;
    if ((rc = parse_wasm(c, n, cc)))
        return rc;
    if ((n = keel_ymap_get(v, "abi", NULL))) {
        if (n->kind == KEEL_Y_SCALAR && !strcmp(n->text, "wapc"))
            cc->abi = KEEL_ABI_WAPC;
        else if (n->kind == KEEL_Y_SCALAR && !strcmp(n->text, "wagi"))
            cc->abi = KEEL_ABI_WAGI;
        else if (n->kind == KEEL_Y_SCALAR && !n->null)
            return fail(c, n->pos, "unknown abi '%s' (supported: wapc, wagi)", n->text);
        else
            return fail(c, n->pos, "'abi' must be wapc or wagi, got %s", keel_ykind_name(n));
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

/* Every calls entry names a component other than its own. */
static int check_calls(ctx *c, const keel_manifest *m, const keel_ynode *comps)
{
    for (size_t i = 0; i < m->ncomponents; i++) {
        const keel_component_cfg *cc = &m->components[i];
        const keel_ynode *calls = keel_ymap_get(comps->items[2 * i + 1], "calls", NULL);
        c->comp = cc->name;
        for (size_t j = 0; j < cc->ncalls; j++) {
            keel_pos pos = calls->items[j]->pos;
            if (!strcmp(cc->calls[j], cc->name))
                return fail(c, pos, "calls: a component cannot call itself");
            if (!keel_manifest_component(m, cc->calls[j]))
                return fail(c, pos, "calls: no component named '%s'", cc->calls[j]);
        }
    }
    c->comp = NULL;
    return 0;
}

typedef struct route_ref {
    const keel_route *r;
    size_t comp;
    size_t order;              /* position in the document */
} route_ref;

static int cmp_route_ref(const void *a, const void *b)
{
    const route_ref *x = a, *y = b;
    int d = strcmp(x->r->path, y->r->path);
    if (d)
        return d;
    if (x->r->prefix != y->r->prefix)
        return x->r->prefix ? 1 : -1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static void method_names(unsigned bits, char *buf, size_t len)
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

/* No two routes claim the same path (and prefix-ness) for a common method.
 * Routes are grouped by path; the earliest route in the document that
 * repeats an earlier claim is reported. */
static int check_routes(ctx *c, const keel_manifest *m)
{
    size_t n = 0;
    for (size_t i = 0; i < m->ncomponents; i++)
        n += m->components[i].nroutes;
    if (!n)
        return 0;
    route_ref *refs = keel_mf_xcalloc(n, sizeof *refs);
    size_t k = 0;
    for (size_t i = 0; i < m->ncomponents; i++)
        for (size_t j = 0; j < m->components[i].nroutes; j++, k++)
            refs[k] = (route_ref){ &m->components[i].routes[j], i, k };
    qsort(refs, n, sizeof *refs, cmp_route_ref);
    const route_ref *bad = NULL, *first = NULL;
    for (size_t g = 0; g < n;) {
        size_t e = g + 1;
        while (e < n && !strcmp(refs[e].r->path, refs[g].r->path) &&
               refs[e].r->prefix == refs[g].r->prefix)
            e++;
        /* At most 8 routes of a group can be free of overlap (7 method bits). */
        for (size_t a = g + 1; a < e; a++) {
            if (bad && refs[a].order > bad->order)
                break;
            for (size_t b = g; b < a; b++) {
                unsigned ma = refs[a].r->methods, mb = refs[b].r->methods;
                if (!ma || !mb || (ma & mb)) {
                    bad = &refs[a];
                    first = &refs[b];
                    break;
                }
            }
            if (bad == &refs[a])
                break;
        }
        g = e;
    }
    int rc = 0;
    if (bad) {
        char ms[64];
        unsigned common = bad->r->methods && first->r->methods
                        ? bad->r->methods & first->r->methods
                        : bad->r->methods | first->r->methods;
        method_names(common, ms, sizeof ms);
        c->comp = m->components[bad->comp].name;
        rc = fail(c, bad->r->pos, "route '%s%s' (%s) is already claimed by component %s "
                  "at line %d", bad->r->path, bad->r->prefix ? "*" : "", ms,
                  m->components[first->comp].name, first->r->pos.line);
        c->comp = NULL;
    }
    free(refs);
    return rc;
}

static int load_tree(ctx *c, const keel_ynode *root, keel_manifest *m)
{
    if (!root)
        return fail(c, (keel_pos){ 1, 1 }, "empty manifest (expected a mapping with "
                    "'components')");
    if (root->kind != KEEL_Y_MAP)
        return fail(c, root->pos, "the manifest must be a mapping (listen, components), "
                    "got %s", keel_ykind_name(root));
    static const char *const keys[] = { "listen", "region", "stores", "admin", "rollout",
                                        "observability", "shutdown", "components", NULL };
    int rc = check_keys(c, root, keys, "", true);
    if (rc)
        return rc;
    mf_obs_defaults(m);
    const keel_ynode *sec;
    if ((sec = keel_ymap_get(root, "admin", NULL)) && (rc = mf_parse_admin(c, sec, m)))
        return rc;
    if (!m->admin.state_dir) {
        size_t n = strlen(m->dir) + sizeof "/" KEEL_DEFAULT_STATE_DIR;
        m->admin.state_dir = keel_mf_xcalloc(1, n);
        snprintf(m->admin.state_dir, n, "%s/%s", m->dir, KEEL_DEFAULT_STATE_DIR);
    }
    if ((sec = keel_ymap_get(root, "rollout", NULL)) && (rc = mf_parse_rollout(c, sec, m)))
        return rc;
    if ((sec = keel_ymap_get(root, "observability", NULL)) &&
        (rc = mf_parse_observability(c, sec, m)))
        return rc;
    if ((sec = keel_ymap_get(root, "shutdown", NULL)) && (rc = mf_parse_shutdown(c, sec, m)))
        return rc;
    const keel_ynode *n = keel_ymap_get(root, "listen", NULL);
    if (n) {
        if ((rc = parse_listen(c, n, &m->listen)))
            return rc;
    } else {
        m->listen = keel_mf_xstrdup(KEEL_DEFAULT_LISTEN);
    }
    if ((rc = keel_mf_parse_state(c, root, m)))
        return rc;
    keel_pos kp;
    const keel_ynode *comps = keel_ymap_get(root, "components", &kp);
    if (!comps)
        return fail(c, root->pos, "missing required key 'components'");
    if ((rc = want(c, comps, KEEL_Y_MAP, "", "components")) < 0)
        return rc;
    if (rc > 0 || comps->n == 0)
        return fail(c, kp, "'components' is empty: declare at least one component");
    if (comps->n > KEEL_MAX_COMPONENTS)
        return fail(c, kp, "more than %d components", KEEL_MAX_COMPONENTS);
    m->components = keel_mf_xcalloc(comps->n, sizeof *m->components);
    for (size_t i = 0; i < comps->n; i++) {
        m->ncomponents = i + 1;
        if ((rc = parse_component(c, comps->items[2 * i], comps->items[2 * i + 1],
                                  &m->components[i])))
            return rc;
    }
    if ((rc = check_calls(c, m, comps)))
        return rc;
    if ((rc = keel_mf_check_kv(c, m, comps)))
        return rc;
    return check_routes(c, m);
}

/* Absolute folder of path. */
static char *folder_of(const char *path)
{
    char buf[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(buf, sizeof buf, ".");
    else if (slash == path)
        snprintf(buf, sizeof buf, "/");
    else
        snprintf(buf, sizeof buf, "%.*s", (int)(slash - path), path);
    return realpath(buf, NULL);
}

/* Parses text into m (path and dir set) and validates it. */
static int load_text(ctx *c, const char *text, size_t len, keel_manifest *m)
{
    char why[256];
    c->dir = m->dir;
    keel_ynode *root;
    keel_pos epos;
    int rc = keel_yaml_parse(text, len, &root, &epos, why, sizeof why);
    if (rc)
        return fail(c, epos, "%s", why);
    rc = load_tree(c, root, m);
    keel_ynode_free(root);
    return rc;
}

int keel_manifest_load(const char *path, keel_manifest **out, char *err, size_t errlen)
{
    *out = NULL;
    ctx c = { .path = path, .err = err, .errlen = errlen };
    char why[256];
    char *text = NULL;
    size_t len;
    int rc = keel_read_file(path, KEEL_MAX_MANIFEST_BYTES, &text, &len, why, sizeof why);
    if (rc)
        return keel_err(err, errlen, KEEL_EINVAL, "%s: cannot read the manifest: %s", path,
                        why);
    keel_manifest *m = keel_mf_xcalloc(1, sizeof *m);
    m->path = keel_mf_xstrdup(path);
    m->dir = folder_of(path);
    if (!m->dir)
        rc = keel_err(err, errlen, KEEL_EINVAL, "%s: cannot resolve its folder: %s", path,
                      strerror(errno));
    else
        rc = load_text(&c, text, len, m);
    free(text);
    if (rc) {
        keel_manifest_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

int keel_manifest_load_text(const keel_manifest_text *src, keel_manifest **out, char *err,
                            size_t errlen)
{
    *out = NULL;
    ctx c = { .path = src->name, .src = src, .err = err, .errlen = errlen };
    keel_manifest *m = keel_mf_xcalloc(1, sizeof *m);
    m->path = keel_mf_xstrdup(src->name);
    m->dir = realpath(src->dir, NULL);
    int rc;
    if (!m->dir)
        rc = keel_err(err, errlen, KEEL_EINVAL, "%s: folder %s: %s", src->name, src->dir,
                      strerror(errno));
    else if (src->len > KEEL_MAX_MANIFEST_BYTES)
        rc = keel_err(err, errlen, KEEL_ELIMIT, "%s: larger than %u bytes", src->name,
                      KEEL_MAX_MANIFEST_BYTES);
    else
        rc = load_text(&c, src->text, src->len, m);
    if (rc) {
        keel_manifest_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

static void free_component(keel_component_cfg *cc)
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

void keel_manifest_free(keel_manifest *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->ncomponents; i++)
        free_component(&m->components[i]);
    free(m->components);
    keel_mf_free_state(m);
    free(m->path);
    free(m->dir);
    free(m->listen);
    mf_obs_free(m);
    free(m);
}

const keel_component_cfg *keel_manifest_component(const keel_manifest *m, const char *name)
{
    for (size_t i = 0; m && i < m->ncomponents; i++)
        if (m->components[i].name && !strcmp(m->components[i].name, name))
            return &m->components[i];
    return NULL;
}
