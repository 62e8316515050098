/* instance.c — keel_instance: instantiation, export calls, exported
 * memories and globals. Every entry into guest code goes through
 * keel_rt_invoke with the instance's memory limit in force. */
#include "engine/module_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/errors.h"
#include "engine/rt_int.h"

typedef struct instantiate_args {
    const keel_glue_syms *syms;
    void *inst;
    void *const *imports;
} instantiate_args;

static void do_instantiate(void *p)
{
    instantiate_args *a = p;
    a->syms->instantiate(a->inst, a->imports);
}

int keel_instance_new(keel_module *m, void *const *import_instances,
                      uint32_t memory_limit_pages, keel_instance **out,
                      keel_rt_outcome *trap, char *err, size_t errlen)
{
    *out = NULL;
    if (!m->linked && m->info.nimports)
        return keel_err(err, errlen, KEEL_ELINK, "%s: module is not linked", m->path);
    keel_instance *in = calloc(1, sizeof *in);
    size_t size = m->syms->instance_size();
    if (!in || !(in->inst = calloc(1, size ? size : 1)))
        abort();
    in->m = m;
    in->memory_limit_pages = memory_limit_pages;
    in->img = NULL;

    void *none = NULL;
    instantiate_args a = { m->syms, in->inst, import_instances ? import_instances : &none };
    keel_rt_outcome o;
    uint32_t saved = rt_self.mem_limit_pages;
    keel_rt_set_memory_limit_pages(memory_limit_pages);
    keel_rt_invoke(do_instantiate, &a, NULL, &o);
    keel_rt_set_memory_limit_pages(saved);
    if (trap)
        *trap = o;
    if (o.end != KEEL_RT_RETURNED) {
        m->syms->free(in->inst);
        free(in->inst);
        free(in);
        return keel_err(err, errlen, KEEL_EINVAL, "%s: instantiation failed: %s", m->path,
                        o.end == KEEL_RT_EXITED ? "exited" : keel_trap_kind_name(o.trap));
    }
    *out = in;
    return 0;
}

void keel_instance_free(keel_instance *in)
{
    if (!in)
        return;
    if (in->img)
        keel_image_recycle(in);
    in->m->syms->free(in->inst);
    free(in->inst);
    free(in);
}

const keel_glue_layout *keel_module_layout(const keel_module *m)
{
    return m->syms->layout;
}

void *keel_instance_ptr(keel_instance *in)
{
    return in->inst;
}

static const keel_glue_export *find_export(const keel_module *m, const char *name,
                                           size_t len, uint32_t kind)
{
    for (uint32_t i = 0; i < *m->syms->export_count; i++) {
        const keel_glue_export *e = &m->syms->exports[i];
        if (e->kind == kind && (!name || (e->name_len == len &&
                                          memcmp(e->name, name, len) == 0)))
            return e;
    }
    return NULL;
}

wasm_rt_memory_t *keel_instance_memory(keel_instance *in, const char *name)
{
    const keel_glue_export *e = find_export(in->m, name, name ? strlen(name) : 0,
                                            KEEL_EXTERN_MEMORY);
    if (!e)
        return NULL;
    wasm_rt_memory_t *(*acc)(void *);
    memcpy(&acc, &e->addr, sizeof acc);
    return acc(in->inst);
}

typedef struct call_args {
    void (*tramp)(void *, uint64_t *);
    void *inst;
    uint64_t *vals;
} call_args;

static void do_call(void *p)
{
    call_args *a = p;
    a->tramp(a->inst, a->vals);
}

int keel_instance_call_n(keel_instance *in, const char *name, size_t name_len,
                         uint64_t *vals, size_t nvals, const keel_rt_limits *limits,
                         keel_rt_outcome *out, char *err, size_t errlen)
{
    const keel_glue_export *e = find_export(in->m, name, name_len, KEEL_EXTERN_FUNC);
    if (!e)
        return keel_err(err, errlen, KEEL_EINVAL, "no exported function \"%.*s\"",
                        (int)name_len, name);
    const keel_extern *x = NULL;
    for (size_t i = 0; i < in->m->info.nexports && !x; i++)
        if (in->m->info.exports[i].name_len == name_len &&
            memcmp(in->m->info.exports[i].name, name, name_len) == 0 &&
            in->m->info.exports[i].kind == KEEL_EXTERN_FUNC)
            x = &in->m->info.exports[i];
    if (!x)   /* the glue's exports come from info: not reached */
        return keel_err(err, errlen, KEEL_EINVAL, "no exported function \"%.*s\"",
                        (int)name_len, name);
    size_t np = strcspn(x->sig, ":"), nr = strlen(x->sig) - np - 1;
    if (nvals < np || nvals < nr)
        return keel_err(err, errlen, KEEL_EINVAL, "\"%.*s\" needs %zu values, got %zu",
                        (int)name_len, name, np > nr ? np : nr, nvals);
    call_args a = { e->tramp, in->inst, vals };
    uint32_t saved = rt_self.mem_limit_pages;
    keel_rt_set_memory_limit_pages(in->memory_limit_pages);
    keel_rt_invoke(do_call, &a, limits, out);
    keel_rt_set_memory_limit_pages(saved);
    return 0;
}

int keel_instance_call(keel_instance *in, const char *name, uint64_t *vals,
                       size_t nvals, const keel_rt_limits *limits,
                       keel_rt_outcome *out, char *err, size_t errlen)
{
    return keel_instance_call_n(in, name, strlen(name), vals, nvals, limits, out,
                                err, errlen);
}

int keel_instance_global(keel_instance *in, const char *name, uint64_t *val)
{
    size_t len = strlen(name);
    const keel_glue_export *e = find_export(in->m, name, len, KEEL_EXTERN_GLOBAL);
    if (!e)
        return KEEL_EINVAL;
    const keel_extern *x = NULL;
    for (size_t i = 0; i < in->m->info.nexports && !x; i++)
        if (in->m->info.exports[i].name_len == len &&
            memcmp(in->m->info.exports[i].name, name, len) == 0)
            x = &in->m->info.exports[i];
    if (!x)   /* the glue's exports come from info: not reached */
        return KEEL_EINVAL;
    void *(*acc)(void *);
    memcpy(&acc, &e->addr, sizeof acc);
    void *p = acc(in->inst);
    char t = x->sig[0] == 'm' ? x->sig[1] : x->sig[0];
    switch (t) {
    case 'i': case 'f': { uint32_t v; memcpy(&v, p, 4); *val = v; return 0; }
    case 'I': case 'F': memcpy(val, p, 8); return 0;
    case 'e': { void *v; memcpy(&v, p, sizeof v); *val = (uint64_t)(uintptr_t)v; return 0; }
    case 'r': { wasm_rt_funcref_t v; memcpy(&v, p, sizeof v);
                *val = (uint64_t)(uintptr_t)(void *)v.func; return 0; }
    }
    return KEEL_EINVAL;
}
