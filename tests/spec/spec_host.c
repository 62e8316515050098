/* spec_host.c — the "spectest" host instance and the import resolver of the
 * spec harness (see spec_host.h).
 *
 * spectest exports what the spec suite's modules import: print* functions
 * (no-ops), global_i32/i64/f32/f64 (666 / 666.6), a funcref table of 10..20
 * elements and a memory of 1..2 pages. The registry maps the names given by
 * "register" commands (and "spectest") to instances. spec_resolve binds
 * each import to a registered instance's export, after checking what the
 * engine leaves to the resolver (keel_module_link): kind, signature, and
 * import matching of table/memory limits (from the script's TI/TE lines,
 * keel_extern carries none). Its failures are classified as unknown (no
 * such module or export) or incompatible, as assert_unlinkable states them.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec_host.h"

/* ---- the spectest host instance ---- */

typedef struct spectest {
    uint32_t global_i32;
    uint64_t global_i64;
    float global_f32;
    double global_f64;
    wasm_rt_memory_t memory;
    wasm_rt_funcref_table_t table;
} spectest;

static spectest st;

typedef struct registration {
    char *as;
    mod *target;           /* NULL: the spectest host instance */
} registration;

static registration *regs;
static size_t nregs, capregs;

static void st_print(void *i) { (void)i; }
static void st_print_i32(void *i, uint32_t a) { (void)i; (void)a; }
static void st_print_i64(void *i, uint64_t a) { (void)i; (void)a; }
static void st_print_f32(void *i, float a) { (void)i; (void)a; }
static void st_print_f64(void *i, double a) { (void)i; (void)a; }
static void st_print_i32_f32(void *i, uint32_t a, float b)
{
    (void)i; (void)a; (void)b;
}
static void st_print_f64_f64(void *i, double a, double b)
{
    (void)i; (void)a; (void)b;
}
static uint32_t *st_global_i32(void *i) { return &((spectest *)i)->global_i32; }
static uint64_t *st_global_i64(void *i) { return &((spectest *)i)->global_i64; }
static float *st_global_f32(void *i) { return &((spectest *)i)->global_f32; }
static double *st_global_f64(void *i) { return &((spectest *)i)->global_f64; }
static wasm_rt_memory_t *st_memory(void *i) { return &((spectest *)i)->memory; }
static wasm_rt_funcref_table_t *st_table(void *i)
{
    return &((spectest *)i)->table;
}

typedef struct st_export {
    const char *name;
    int kind;
    const char *sig;
    void *addr;
    limits_info lim;
} st_export;

static const st_export st_exports[] = {
    {"print", KEEL_EXTERN_FUNC, ":", (void *)st_print, {0}},
    {"print_i32", KEEL_EXTERN_FUNC, "i:", (void *)st_print_i32, {0}},
    {"print_i64", KEEL_EXTERN_FUNC, "I:", (void *)st_print_i64, {0}},
    {"print_f32", KEEL_EXTERN_FUNC, "f:", (void *)st_print_f32, {0}},
    {"print_f64", KEEL_EXTERN_FUNC, "F:", (void *)st_print_f64, {0}},
    {"print_i32_f32", KEEL_EXTERN_FUNC, "if:", (void *)st_print_i32_f32, {0}},
    {"print_f64_f64", KEEL_EXTERN_FUNC, "FF:", (void *)st_print_f64_f64, {0}},
    {"global_i32", KEEL_EXTERN_GLOBAL, "i", (void *)st_global_i32, {0}},
    {"global_i64", KEEL_EXTERN_GLOBAL, "I", (void *)st_global_i64, {0}},
    {"global_f32", KEEL_EXTERN_GLOBAL, "f", (void *)st_global_f32, {0}},
    {"global_f64", KEEL_EXTERN_GLOBAL, "F", (void *)st_global_f64, {0}},
    {"table", KEEL_EXTERN_TABLE, "", (void *)st_table,
     {KEEL_EXTERN_TABLE, "funcref", 10, 20}},
    {"memory", KEEL_EXTERN_MEMORY, "", (void *)st_memory,
     {KEEL_EXTERN_MEMORY, "", 1, 2}},
};

void spec_host_init(void)
{
    st.global_i32 = 666;
    st.global_i64 = 666;
    st.global_f32 = 666.6f;
    st.global_f64 = 666.6;
    wasm_rt_allocate_memory(&st.memory, 1, 2);
    wasm_rt_allocate_funcref_table(&st.table, 10, 20);
    char *as = strdup("spectest");
    if (!as) {
        fprintf(stderr, "spec_runner: out of memory\n");
        exit(2);
    }
    spec_register(as, NULL);
}

void spec_host_free(void)
{
    for (size_t i = 0; i < nregs; i++) free(regs[i].as);
    free(regs);
    regs = NULL;
    nregs = capregs = 0;
    wasm_rt_free_funcref_table(&st.table);
    wasm_rt_free_memory(&st.memory);
}

/* ---- registered module names ---- */

static registration *find_reg(const char *name)
{
    for (size_t i = nregs; i-- > 0;)   /* the latest registration wins */
        if (strcmp(regs[i].as, name) == 0)
            return &regs[i];
    return NULL;
}

void spec_register(char *as, mod *target)
{
    if (nregs == capregs) {
        capregs = capregs ? capregs * 2 : 8;
        regs = realloc(regs, capregs * sizeof *regs);
        if (!regs) {
            fprintf(stderr, "spec_runner: out of memory\n");
            exit(2);
        }
    }
    regs[nregs].as = as;
    regs[nregs].target = target;
    nregs++;
}

int spec_import_instance(const char *name, void **inst)
{
    registration *r = find_reg(name);
    if (!r) return -1;
    *inst = r->target ? keel_instance_ptr(r->target->inst) : (void *)&st;
    return 0;
}

/* ---- import resolution ---- */

static const char *kind_name(int k)
{
    switch (k) {
    case KEEL_EXTERN_FUNC: return "func";
    case KEEL_EXTERN_TABLE: return "table";
    case KEEL_EXTERN_MEMORY: return "memory";
    case KEEL_EXTERN_GLOBAL: return "global";
    case KEEL_EXTERN_TAG: return "tag";
    }
    return "?";
}

static const limits_info *import_limits(mod *md, const keel_extern *imp)
{
    size_t n = keel_module_import_count(md->m), idx = SIZE_MAX;
    for (size_t i = 0; i < n; i++)
        if (keel_module_import(md->m, i) == imp) { idx = i; break; }
    if (idx == SIZE_MAX) {   /* not the engine's own pointer: match fields */
        for (size_t i = 0; i < n; i++) {
            const keel_extern *e = keel_module_import(md->m, i);
            if (e->kind == imp->kind && strcmp(e->module, imp->module) == 0 &&
                e->name_len == imp->name_len &&
                memcmp(e->name, imp->name, imp->name_len) == 0) { idx = i; break; }
        }
    }
    for (size_t i = 0; i < md->ntypes; i++)
        if (md->types[i].is_import && md->types[i].index == idx)
            return &md->types[i].lim;
    return NULL;
}

static const limits_info *export_limits(mod *md, const char *name)
{
    for (size_t i = 0; i < md->ntypes; i++)
        if (!md->types[i].is_import && strcmp(md->types[i].name, name) == 0)
            return &md->types[i].lim;
    return NULL;
}

/* Import matching of limits (spec "import subtyping"): the provided
 * object's current size must be >= the import's min; when the import has a
 * max, the provided object must have a max no greater. */
static int limits_match(const limits_info *want, uint64_t have_size,
                        uint64_t have_max, char *why, size_t whylen)
{
    if (have_size < want->min) {
        snprintf(why, whylen, "size %" PRIu64 " < import min %" PRIu64,
                 have_size, want->min);
        return 0;
    }
    if (want->max != NO_MAX && (have_max == NO_MAX || have_max > want->max)) {
        snprintf(why, whylen, "max %s > import max %" PRIu64,
                 have_max == NO_MAX ? "none" : "larger", want->max);
        return 0;
    }
    return 1;
}

static void *link_fail(link_ctx *lc, int failure, char *why, size_t whylen,
                       const keel_extern *imp, const char *fmt, const char *arg)
{
    char msg[200];
    snprintf(msg, sizeof msg, fmt, arg);
    snprintf(why, whylen, "%s", msg);
    if (!lc->failure) {
        lc->failure = failure;
        snprintf(lc->why, sizeof lc->why, "%s.%s (%s): %s", imp->module,
                 imp->name, kind_name(imp->kind), msg);
    }
    return NULL;
}

void *spec_resolve(void *ud, const keel_extern *imp, char *why, size_t whylen)
{
    link_ctx *lc = ud;
    registration *r = find_reg(imp->module);
    if (!r)
        return link_fail(lc, LINK_UNKNOWN, why, whylen, imp,
                         "no module registered as %s", imp->module);

    const limits_info *want = NULL;
    if (imp->kind == KEEL_EXTERN_TABLE || imp->kind == KEEL_EXTERN_MEMORY) {
        want = import_limits(lc->importer, imp);
        if (!want)
            return link_fail(lc, LINK_INCOMPATIBLE, why, whylen, imp,
                             "%s", "harness: no limits for this import");
    }
    char lw[120];

    if (!r->target) {                          /* spectest */
        for (size_t i = 0; i < sizeof st_exports / sizeof st_exports[0]; i++) {
            const st_export *e = &st_exports[i];
            if (strlen(e->name) != imp->name_len ||
                memcmp(e->name, imp->name, imp->name_len) != 0)
                continue;
            if (e->kind != imp->kind)
                return link_fail(lc, LINK_INCOMPATIBLE, why, whylen, imp,
                                 "spectest export is a %s", kind_name(e->kind));
            if ((e->kind == KEEL_EXTERN_FUNC || e->kind == KEEL_EXTERN_GLOBAL) &&
                strcmp(e->sig, imp->sig) != 0)
                return link_fail(lc, LINK_INCOMPATIBLE, why, whylen, imp,
                                 "spectest signature is '%s'", e->sig);
            if (e->kind == KEEL_EXTERN_TABLE) {
                if (strcmp(want->elem, "funcref") != 0)
                    return link_fail(lc, LINK_INCOMPATIBLE, why, whylen, imp,
                                     "element type %s vs funcref", want->elem);
                if (!limits_match(want, st.table.size, e->lim.max, lw, sizeof lw))
                    return link_fail(lc, LINK_INCOMPATIBLE, why, whylen, imp,
                                     "%s", lw);
            }
            if (e->kind == KEEL_EXTERN_MEMORY &&
                !limits_match(want, st.memory.pages, e->lim.max, lw, sizeof lw))
                return link_fail(lc, LINK_INCOMPATIBLE, why, whylen, imp,
                                 "%s", lw);
            return e->addr;
        }
        return link_fail(lc, LINK_UNKNOWN, why, whylen, imp,
                         "spectest has no %s", imp->name);
    }

    mod *ex = r->target;
    const keel_extern *e = NULL;
    for (size_t i = 0; i < keel_module_export_count(ex->m); i++) {
        const keel_extern *x = keel_module_export(ex->m, i);
        if (x->name_len == imp->name_len &&
            memcmp(x->name, imp->name, imp->name_len) == 0) { e = x; break; }
    }
    if (!e)
        return link_fail(lc, LINK_UNKNOWN, why, whylen, imp,
                         "exporter has no %s", imp->name);
    if (e->kind != imp->kind)
        return link_fail(lc, LINK_INCOMPATIBLE, why, whylen, imp,
                         "exported as a %s", kind_name(e->kind));
    if ((e->kind == KEEL_EXTERN_FUNC || e->kind == KEEL_EXTERN_GLOBAL) &&
        strcmp(e->sig, imp->sig) != 0)
        return link_fail(lc, LINK_INCOMPATIBLE, why, whylen, imp,
                         "exported signature is '%s'", e->sig);
    void *addr = keel_module_export_addr(ex->m, imp->name);
    if (!addr)
        return link_fail(lc, LINK_INCOMPATIBLE, why, whylen, imp,
                         "%s", "keel_module_export_addr returned NULL");
    if (e->kind == KEEL_EXTERN_TABLE || e->kind == KEEL_EXTERN_MEMORY) {
        const limits_info *have = export_limits(ex, imp->name);
        if (!have)
            return link_fail(lc, LINK_INCOMPATIBLE, why, whylen, imp,
                             "%s", "harness: no limits for the export");
        void *obj = ((void *(*)(void *))addr)(keel_instance_ptr(ex->inst));
        uint64_t size;
        if (e->kind == KEEL_EXTERN_TABLE) {
            if (strcmp(want->elem, have->elem) != 0)
                return link_fail(lc, LINK_INCOMPATIBLE, why, whylen, imp,
                                 "exported element type is %s", have->elem);
            /* both table structs end with max_size, size */
            size = strcmp(have->elem, "funcref") == 0
                       ? ((wasm_rt_funcref_table_t *)obj)->size
                       : ((wasm_rt_externref_table_t *)obj)->size;
        } else {
            size = ((wasm_rt_memory_t *)obj)->pages;
        }
        if (!limits_match(want, size, have->max, lw, sizeof lw))
            return link_fail(lc, LINK_INCOMPATIBLE, why, whylen, imp, "%s", lw);
    }
    return addr;
}
