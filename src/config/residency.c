/* residency.c — data-residency rules over a loaded manifest: which
 * components can read each store's data, directly (a kv grant) or through
 * component calls, and whether that lets the data reach a component whose
 * `residency` lies outside the store's `regions`, or be opened by an
 * instance whose `region` is not among them.
 *
 * Flow model: a call edge A -> B carries data both ways (A's payload to B,
 * B's response to A), so a store's data can reach every component
 * connected to a granted component by calls, in either direction. A
 * component without `residency` is not restricted (it runs in the
 * instance's region, which the store check covers). */
#include "config/residency.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/audit.h"
#include "base/errors.h"
#include "obs/prom.h"

static _Atomic unsigned long denials;

unsigned long keel_residency_denials(void)
{
    return atomic_load(&denials);
}

/* Counts a denial and records it in the audit trail (residency.denied;
 * a no-op unless the process has an audit log open): the store, this
 * instance's region, the component (NULL for the store's own region
 * rule) and the full reason. */
static void deny(const keel_manifest *m, const keel_store_cfg *s, const char *component,
                 const char *why)
{
    atomic_fetch_add(&denials, 1);
    keel_buf b = { 0 };
    keel_buf_puts(&b, "\"store\":\"");
    keel_buf_json(&b, s->name);
    keel_buf_puts(&b, "\",\"region\":");
    if (m->region) {
        keel_buf_puts(&b, "\"");
        keel_buf_json(&b, m->region);
        keel_buf_puts(&b, "\"");
    } else {
        keel_buf_puts(&b, "null");
    }
    if (component) {
        keel_buf_puts(&b, ",\"component\":\"");
        keel_buf_json(&b, component);
        keel_buf_puts(&b, "\"");
    }
    keel_buf_puts(&b, ",\"why\":\"");
    keel_buf_json(&b, why);
    keel_buf_puts(&b, "\"");
    keel_audit("residency.denied", "system", b.data);
    keel_buf_free(&b);
}

static bool has(char *const *list, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(list[i], s))
            return true;
    return false;
}

static void join(char *const *list, size_t n, char *buf, size_t len)
{
    size_t k = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && k < len; i++)
        k += (size_t)snprintf(buf + k, len - k, "%s%s", i ? ", " : "", list[i]);
}

static size_t comp_index(const keel_manifest *m, const char *name)
{
    for (size_t i = 0; i < m->ncomponents; i++)
        if (!strcmp(m->components[i].name, name))
            return i;
    return (size_t)-1;
}

static bool grants(const keel_component_cfg *cc, const char *store)
{
    return has(cc->kv, cc->nkv, store);
}

/* The flow of store s: breadth-first over components. from[i] is the
 * component the data came from (SIZE_MAX for a direct grant), how[i] says
 * along which edge: 'k' kv grant, 'r' response (i called from[i]), 'p'
 * payload (from[i] called i). reached[i] false when unreachable. */
typedef struct flow {
    size_t *from;
    char *how;
    bool *reached;
} flow;

static void flow_of(const keel_manifest *m, const keel_store_cfg *s, flow *f)
{
    size_t n = m->ncomponents;
    f->from = calloc(n ? n : 1, sizeof *f->from);
    f->how = calloc(n ? n : 1, 1);
    f->reached = calloc(n ? n : 1, sizeof *f->reached);
    size_t *queue = calloc(n ? n : 1, sizeof *queue);
    if (!f->from || !f->how || !f->reached || !queue)
        abort();
    size_t head = 0, tail = 0;
    for (size_t i = 0; i < n; i++)
        if (grants(&m->components[i], s->name)) {
            f->reached[i] = true;
            f->from[i] = (size_t)-1;
            f->how[i] = 'k';
            queue[tail++] = i;
        }
    while (head < tail) {
        size_t a = queue[head++];
        const keel_component_cfg *ca = &m->components[a];
        /* a calls b: a's payload reaches b */
        for (size_t j = 0; j < ca->ncalls; j++) {
            size_t b = comp_index(m, ca->calls[j]);
            if (b != (size_t)-1 && !f->reached[b]) {
                f->reached[b] = true;
                f->from[b] = a;
                f->how[b] = 'p';
                queue[tail++] = b;
            }
        }
        /* b calls a: a's response reaches b */
        for (size_t b = 0; b < n; b++) {
            if (f->reached[b])
                continue;
            const keel_component_cfg *cb = &m->components[b];
            if (has(cb->calls, cb->ncalls, ca->name)) {
                f->reached[b] = true;
                f->from[b] = a;
                f->how[b] = 'r';
                queue[tail++] = b;
            }
        }
    }
    free(queue);
}

static void flow_free(flow *f)
{
    free(f->from);
    free(f->how);
    free(f->reached);
}

/* "store S -> a (kv) -> b (a calls b) -> c (c calls b)" into buf. */
static void path_text(const keel_manifest *m, const keel_store_cfg *s, const flow *f,
                      size_t to, char *buf, size_t len)
{
    size_t chain[KEEL_MAX_COMPONENTS], k = 0;
    for (size_t i = to; i != (size_t)-1 && k < KEEL_MAX_COMPONENTS; i = f->from[i])
        chain[k++] = i;
    size_t w = (size_t)snprintf(buf, len, "store %s", s->name);
    while (k-- > 0 && w < len) {
        size_t i = chain[k];
        const char *name = m->components[i].name;
        if (f->how[i] == 'k')
            w += (size_t)snprintf(buf + w, len - w, " -> %s (kv grant)", name);
        else if (f->how[i] == 'p')
            w += (size_t)snprintf(buf + w, len - w, " -> %s (%s calls %s: payload)", name,
                                  m->components[f->from[i]].name, name);
        else
            w += (size_t)snprintf(buf + w, len - w, " -> %s (%s calls %s: response)", name,
                                  name, m->components[f->from[i]].name);
    }
}

int keel_residency_store_region(const keel_manifest *m, const keel_store_cfg *s, char *err,
                                size_t errlen)
{
    if (!s->nregions)
        return 0;
    char rs[512];
    join(s->regions, s->nregions, rs, sizeof rs);
    if (!m->region) {
        keel_err(err, errlen, KEEL_EINVAL, "%s:%d:%d: residency: store %s may live only in "
                 "regions [%s], but this instance has no region (set region: in the "
                 "manifest or KEEL_REGION)", m->path, s->pos.line, s->pos.col, s->name, rs);
        deny(m, s, NULL, err);
        return KEEL_EINVAL;
    }
    if (has(s->regions, s->nregions, m->region))
        return 0;
    keel_err(err, errlen, KEEL_EINVAL, "%s:%d:%d: residency: store %s may live only in "
             "regions [%s], but this instance's region is %s (from %s); refusing to open it",
             m->path, s->pos.line, s->pos.col, s->name, rs, m->region,
             m->region_from_env ? "KEEL_REGION" : "region: in the manifest");
    deny(m, s, NULL, err);
    return KEEL_EINVAL;
}

int keel_residency_check(const keel_manifest *m, bool check_region,
                         void (*report)(void *arg, const char *line), void *arg)
{
    int problems = 0;
    char line[4096], rs[512], cs[512], path[2048];
    for (size_t si = 0; si < m->nstores; si++) {
        const keel_store_cfg *s = &m->stores[si];
        if (check_region && keel_residency_store_region(m, s, line, sizeof line)) {
            report(arg, line);
            problems++;
        }
        if (!s->nregions)
            continue;
        join(s->regions, s->nregions, rs, sizeof rs);
        flow f;
        flow_of(m, s, &f);
        for (size_t i = 0; i < m->ncomponents; i++) {
            const keel_component_cfg *cc = &m->components[i];
            if (!f.reached[i] || !cc->nresidency)
                continue;
            bool inside = true;
            for (size_t r = 0; r < cc->nresidency; r++)
                inside = inside && has(s->regions, s->nregions, cc->residency[r]);
            if (inside)
                continue;
            join(cc->residency, cc->nresidency, cs, sizeof cs);
            path_text(m, s, &f, i, path, sizeof path);
            snprintf(line, sizeof line, "%s:%d:%d: residency: component %s (residency [%s]) "
                     "could receive data of store %s, which may live only in [%s]; flow: %s",
                     m->path, cc->residency_pos.line, cc->residency_pos.col, cc->name, cs,
                     s->name, rs, path);
            deny(m, s, cc->name, line);
            report(arg, line);
            problems++;
        }
        flow_free(&f);
    }
    return problems;
}

void keel_residency_explain(const keel_manifest *m, FILE *out)
{
    char rs[512], path[2048];
    if (!m->nstores) {
        fprintf(out, "no stores declared\n");
        return;
    }
    fprintf(out, "instance region: %s%s\n", m->region ? m->region : "(none)",
            m->region_from_env ? " (KEEL_REGION)" : "");
    for (size_t si = 0; si < m->nstores; si++) {
        const keel_store_cfg *s = &m->stores[si];
        join(s->regions, s->nregions, rs, sizeof rs);
        fprintf(out, "store %s (%s, regions: %s)\n", s->name,
                s->backend == KEEL_STORE_SQLITE ? "sqlite" : "redis",
                s->nregions ? rs : "anywhere");
        flow f;
        flow_of(m, s, &f);
        int n = 0;
        for (size_t i = 0; i < m->ncomponents; i++) {
            if (!f.reached[i])
                continue;
            const keel_component_cfg *cc = &m->components[i];
            char cs[512];
            join(cc->residency, cc->nresidency, cs, sizeof cs);
            path_text(m, s, &f, i, path, sizeof path);
            fprintf(out, "  %s %s (residency: %s): %s\n", cc->name,
                    f.how[i] == 'k' ? "reads it directly" : "can receive it through calls",
                    cc->nresidency ? cs : "unrestricted", path);
            n++;
        }
        if (!n)
            fprintf(out, "  no component can read it\n");
        flow_free(&f);
    }
}
