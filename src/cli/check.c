/* check.c — `keel check [-f keel.yaml]`: validate a manifest and, without
 * compiling anything, every component's module against what Keel provides:
 * each import must be a host function with the same signature, and the
 * export its ABI calls must exist (waPC: __guest_call, WAGI: _start).
 * Every problem is one line "MANIFEST:LINE:COL: component NAME: ..." that
 * points at the component's wasm: value. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/errors.h"
#include "base/proc.h"
#include "cli/cli.h"
#include "config/manifest.h"
#include "config/residency.h"
#include "engine/wasm_parse.h"
#include "host/host.h"

#define CHECK_MAX_MODULE_BYTES (512u << 20)

static const char *kind_name(int kind)
{
    switch (kind) {
    case KEEL_EXTERN_FUNC: return "function";
    case KEEL_EXTERN_TABLE: return "table";
    case KEEL_EXTERN_MEMORY: return "memory";
    case KEEL_EXTERN_GLOBAL: return "global";
    default: return "tag";
    }
}

static void report(const keel_manifest *m, const keel_component_cfg *cc, int *nerr,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void report(const keel_manifest *m, const keel_component_cfg *cc, int *nerr,
                   const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s:%d:%d: component %s: ", m->path, cc->wasm_pos.line,
            cc->wasm_pos.col, cc->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    (*nerr)++;
}

/* Why imp is not satisfied by the host tables, or NULL when it is. */
static const char *import_problem(const keel_extern *imp, char *why, size_t whylen)
{
    for (const keel_host_fn *const *t = keel_host_fn_tables; *t; t++) {
        for (const keel_host_fn *f = *t; f->module; f++) {
            if (strcmp(f->module, imp->module) || strlen(f->field) != imp->name_len ||
                memcmp(f->field, imp->name, imp->name_len))
                continue;
            if (imp->kind != KEEL_EXTERN_FUNC) {
                snprintf(why, whylen, "imported as a %s, but Keel provides a function",
                         kind_name(imp->kind));
                return why;
            }
            if (strcmp(f->sig, imp->sig)) {
                snprintf(why, whylen, "signature (%s) does not match Keel's (%s)",
                         imp->sig, f->sig);
                return why;
            }
            return NULL;
        }
    }
    snprintf(why, whylen, "unknown import (Keel provides no such %s)", kind_name(imp->kind));
    return why;
}

/* Whether the module exports name as kind, with signature sig (NULL: any). */
static bool has_export(const wasm_info *info, const char *name, int kind, const char *sig)
{
    for (size_t i = 0; i < info->nexports; i++) {
        const keel_extern *e = &info->exports[i];
        if (e->kind == kind && e->name_len == strlen(name) &&
            !memcmp(e->name, name, e->name_len) && (!sig || !strcmp(e->sig, sig)))
            return true;
    }
    return false;
}

/* Checks one component's module; returns the number of problems. */
static int check_component(const keel_manifest *m, const keel_component_cfg *cc)
{
    int nerr = 0;
    char why[512];
    char *bytes = NULL;
    size_t n;
    if (keel_read_file(cc->wasm, CHECK_MAX_MODULE_BYTES, &bytes, &n, why, sizeof why)) {
        report(m, cc, &nerr, "cannot read %s: %s", cc->wasm, why);
        return nerr;
    }
    wasm_info info = { 0 };
    if (wasm_parse((const uint8_t *)bytes, n, &info, why, sizeof why)) {
        report(m, cc, &nerr, "%s: %s", cc->wasm, why);
        goto out;
    }
    if (info.uses_simd)
        report(m, cc, &nerr, "%s uses SIMD (v128) types, which Keel cannot run", cc->wasm);
    bool kv_reported = false;
    for (size_t i = 0; i < info.nimports; i++) {
        const keel_extern *imp = &info.imports[i];
        const char *p = import_problem(imp, why, sizeof why);
        if (p)
            report(m, cc, &nerr, "import %s.%.*s: %s", imp->module, (int)imp->name_len,
                   imp->name, p);
        /* a module that uses KV without any grant would only ever be denied */
        if (!p && !cc->nkv && !kv_reported && !strcmp(imp->module, "keel") &&
            imp->name_len > 3 && !memcmp(imp->name, "kv_", 3)) {
            report(m, cc, &nerr, "imports keel.%.*s but has no kv grant: every call would "
                   "be denied (add kv: [STORE] to the component)", (int)imp->name_len,
                   imp->name);
            kv_reported = true;
        }
    }
    if (cc->abi == KEEL_ABI_WAPC) {
        if (!has_export(&info, "__guest_call", KEEL_EXTERN_FUNC, "ii:i"))
            report(m, cc, &nerr, "abi wapc needs an export __guest_call(i32, i32) -> i32; "
                   "the module has none");
        if (!has_export(&info, "memory", KEEL_EXTERN_MEMORY, NULL))
            report(m, cc, &nerr, "abi wapc needs an exported memory named 'memory'");
    } else if (!has_export(&info, "_start", KEEL_EXTERN_FUNC, ":")) {
        report(m, cc, &nerr, "abi wagi needs a WASI command: an export _start() with no "
               "parameters or results; the module has none");
    }
out:
    wasm_info_free(&info);
    free(bytes);
    return nerr;
}

static void residency_line(void *arg, const char *line)
{
    (void)arg;
    fprintf(stderr, "%s\n", line);
}

int keel_check_manifest(const keel_manifest *m)
{
    int nerr = 0;
    for (size_t i = 0; i < m->ncomponents; i++)
        nerr += check_component(m, &m->components[i]);
    return nerr + keel_residency_check(m, true, residency_line, NULL);
}

int keel_cmd_check(int argc, char **argv)
{
    const char *file = NULL;
    bool explain = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int r;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(keel_usage("check"), stdout);
            return KEEL_EXIT_OK;
        } else if (strcmp(a, "--explain-residency") == 0) {
            explain = true;
        } else if ((r = keel_opt_value(argc, argv, &i, "-f", &v)) != 0 ||
                   (r = keel_opt_value(argc, argv, &i, "--file", &v)) != 0) {
            if (r < 0)
                return keel_usage_error("check", "%s needs a manifest file", a);
            if (file)
                return keel_usage_error("check", "one manifest at a time");
            file = v;
        } else if (a[0] == '-' && a[1]) {
            return keel_usage_error("check", "unknown option %s", a);
        } else {
            return keel_usage_error("check", "unexpected argument %s (use -f FILE)", a);
        }
    }
    if (!file)
        file = "keel.yaml";

    char err[2048];
    keel_manifest *m;
    if (keel_manifest_load(file, &m, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return KEEL_EXIT_FAIL;
    }
    int nerr = keel_check_manifest(m);
    if (explain)
        keel_residency_explain(m, stdout);
    if (!nerr)
        printf("%s: ok (%zu components)\n", m->path, m->ncomponents);
    keel_manifest_free(m);
    return nerr ? KEEL_EXIT_FAIL : KEEL_EXIT_OK;
}
