/* build.c — `keel build [-f keel.yaml] -o APP`: one executable holding this
 * keel, the manifest and every component's wasm with its optimized code
 * (engine/bundle.h). The manifest is checked as `keel check` does, each
 * module is compiled on the optimized tier (through the compile cache, so
 * a warm cache makes it quick), and the app is written only when all of
 * that succeeded. What the app does when started is in app.c. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/errors.h"
#include "base/proc.h"
#include "cli/cli.h"
#include "config/manifest.h"
#include "engine/bundle.h"
#include "engine/cache.h"
#include "engine/engine.h"

/* Largest .wasm file or shared object an app embeds. */
#define BUILD_MAX_MODULE_BYTES (512u << 20)

/* Adds the WASM and CODE records of the component's module (once per
 * module) and its COMPONENT record. */
static int add_component(keel_bundle_writer *w, const keel_manifest *m,
                         const keel_component_cfg *cc, const char *cache_dir, char *err,
                         size_t errlen)
{
    char why[1024];
    keel_engine_opts eo = { .tier = KEEL_TIER_OPT, .cache_dir = cache_dir };
    keel_module *mod;
    int rc = keel_module_load(cc->wasm, &eo, &mod, why, sizeof why);
    if (rc)
        return keel_err(err, errlen, rc, "%s:%d:%d: component %s: %s", m->path,
                        cc->wasm_pos.line, cc->wasm_pos.col, cc->name, why);
    char digest[65], key[65];
    snprintf(digest, sizeof digest, "%s", keel_module_digest(mod));
    snprintf(key, sizeof key, "%s", keel_module_cache_key(mod));
    int optimized = strcmp(keel_module_tier(mod), "opt") == 0;
    keel_module_free(mod);
    if (!optimized)
        return keel_err(err, errlen, KEEL_ELIMIT, "%s:%d:%d: component %s: %s has no "
                        "optimized code (over the optimized tier's compile budget: see "
                        "KEEL_OPT_MEMORY, KEEL_OPT_TIMEOUT); an app embeds optimized code only",
                        m->path, cc->wasm_pos.line, cc->wasm_pos.col, cc->name, cc->wasm);
    if (!keel_bundle_writer_has_wasm(w, digest)) {
        keel_cache cache;
        char so_path[PATH_MAX];
        char *wasm = NULL, *so = NULL;
        size_t wasm_len, so_len;
        if ((rc = keel_cache_open(&cache, cache_dir, why, sizeof why)) == 0 &&
            !keel_cache_lookup(&cache, key, "so", so_path, sizeof so_path, NULL))
            rc = keel_err(why, sizeof why, KEEL_EIO, "its optimized code left the cache "
                          "(%s) while building; try again", cache.dir);
        if (!rc)
            rc = keel_cache_read(so_path, &so, &so_len, why, sizeof why);
        if (!rc)
            rc = keel_read_file(cc->wasm, BUILD_MAX_MODULE_BYTES, &wasm, &wasm_len, why,
                                sizeof why);
        if (!rc) {
            keel_bundle_writer_add(w, KEEL_BUNDLE_WASM, digest, wasm, wasm_len);
            keel_bundle_writer_add(w, KEEL_BUNDLE_CODE, digest, so, so_len);
        }
        free(wasm);
        free(so);
        if (rc)
            return keel_err(err, errlen, rc, "%s: component %s: %s", m->path, cc->name, why);
    }
    keel_bundle_writer_add(w, KEEL_BUNDLE_COMPONENT, cc->name, digest, strlen(digest));
    return 0;
}

int keel_cmd_build(int argc, char **argv)
{
    const char *file = "keel.yaml", *out = NULL, *cache_dir = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int r;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(keel_usage("build"), stdout);
            return KEEL_EXIT_OK;
        } else if ((r = keel_opt_value(argc, argv, &i, "-f", &v)) != 0 ||
                   (r = keel_opt_value(argc, argv, &i, "--file", &v)) != 0) {
            if (r < 0)
                return keel_usage_error("build", "%s needs a manifest file", a);
            file = v;
        } else if ((r = keel_opt_value(argc, argv, &i, "-o", &v)) != 0 ||
                   (r = keel_opt_value(argc, argv, &i, "--output", &v)) != 0) {
            if (r < 0 || !*v)
                return keel_usage_error("build", "%s needs the app's file name", a);
            out = v;
        } else if ((r = keel_opt_value(argc, argv, &i, "--cache", &v)) != 0) {
            if (r < 0)
                return keel_usage_error("build", "--cache needs a directory");
            cache_dir = v;
        } else {
            return keel_usage_error("build", "unexpected argument %s", a);
        }
    }
    if (!out)
        return keel_usage_error("build", "no output given (-o APP)");

    char err[2048];
    uint64_t t0 = keel_rt_now_ns();
    keel_manifest *m;
    if (keel_manifest_load(file, &m, err, sizeof err)) {
        fprintf(stderr, "keel: %s\n", err);
        return KEEL_EXIT_FAIL;
    }
    int status = KEEL_EXIT_FAIL;
    char *text = NULL;
    size_t len;
    keel_bundle_writer *w = keel_bundle_writer_new();
    int nerr = keel_check_manifest(m);
    if (nerr) {
        fprintf(stderr, "keel: %s: %d problem%s (above); no app written\n", m->path, nerr,
                nerr == 1 ? "" : "s");
        goto out;
    }
    if (keel_read_file(file, KEEL_MAX_MANIFEST_BYTES, &text, &len, err, sizeof err)) {
        fprintf(stderr, "keel: %s: %s\n", file, err);
        goto out;
    }
    const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
    const char *id = keel_engine_build_id();
    keel_bundle_writer_add(w, KEEL_BUNDLE_INFO, "keel", id, strlen(id));
    keel_bundle_writer_add(w, KEEL_BUNDLE_MANIFEST, base, text, len);
    for (size_t i = 0; i < m->ncomponents; i++) {
        if (add_component(w, m, &m->components[i], cache_dir, err, sizeof err)) {
            fprintf(stderr, "keel: %s\n", err);
            goto out;
        }
    }
    if (keel_bundle_writer_write(w, "/proc/self/exe", out, err, sizeof err)) {
        fprintf(stderr, "keel: %s\n", err);
        goto out;
    }
    struct stat st;
    if (stat(out, &st) == 0)
        printf("%s: %zu components, %.1f MiB, built in %.1f s\n", out, m->ncomponents,
               (double)st.st_size / (1 << 20), (double)(keel_rt_now_ns() - t0) / 1e9);
    status = KEEL_EXIT_OK;
out:
    free(text);
    keel_bundle_writer_free(w);
    keel_manifest_free(m);
    return status;
}
