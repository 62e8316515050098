/* manifest.c — keel.yaml to a validated keel_manifest (see manifest.h and
 * docs/config.md). The YAML becomes a positioned tree (yaml.c); this file
 * reads the top level, hands each component to manifest_component.c, then
 * checks what spans components (calls, route conflicts). The first error
 * wins and is reported as "PATH:LINE:COL: message"; nothing half-loaded
 * escapes. */
#include "config/manifest.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/errors.h"
#include "base/proc.h"
#include "config/manifest_int.h"
#include "config/yaml.h"

/* Formats "PATH:LINE:COL: [component NAME: ]message" into c->err and
 * returns KEEL_EINVAL. */
__attribute__((format(printf, 3, 0)))
static int vfail(ctx *c, keel_pos pos, const char *fmt, va_list ap)
{
    if (!c->err || !c->errlen)
        return KEEL_EINVAL;
    int k = snprintf(c->err, c->errlen, "%s:%d:%d: ", c->path, pos.line, pos.col);
    if (c->comp && k >= 0 && (size_t)k < c->errlen)
        k += snprintf(c->err + k, c->errlen - (size_t)k, "component %s: ", c->comp);
    if (k >= 0 && (size_t)k < c->errlen)
        vsnprintf(c->err + k, c->errlen - (size_t)k, fmt, ap);
    return KEEL_EINVAL;
}

__attribute__((format(printf, 3, 4)))
static int fail(ctx *c, keel_pos pos, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vfail(c, pos, fmt, ap);
    va_end(ap);
    return rc;
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
    va_list ap;
    va_start(ap, fmt);
    int rc = vfail(c, pos, fmt, ap);
    va_end(ap);
    return rc;
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
        keel_mf_method_names(common, ms, sizeof ms);
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
        if ((rc = keel_mf_parse_component(c, comps->items[2 * i], comps->items[2 * i + 1],
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

void keel_manifest_free(keel_manifest *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->ncomponents; i++)
        keel_mf_free_component(&m->components[i]);
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
