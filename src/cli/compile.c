/* compile.c — `keel compile`: fill the compile cache ahead of time. */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "engine/cache.h"
#include "engine/engine.h"

int keel_cmd_compile(int argc, char **argv)
{
    keel_engine_opts eo = { .tier = KEEL_TIER_OPT };
    const char *module = NULL;
    int quiet = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int r;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(keel_usage("compile"), stdout);
            return KEEL_EXIT_OK;
        } else if (strcmp(a, "--quiet") == 0) {
            quiet = 1;
        } else if ((r = keel_opt_value(argc, argv, &i, "--tier", &v)) != 0) {
            int t = r < 0 ? -1 : keel_parse_tier(v);
            if (t != KEEL_TIER_FAST && t != KEEL_TIER_OPT)
                return keel_usage_error("compile", "--tier: expected fast or opt");
            eo.tier = (keel_tier)t;
        } else if ((r = keel_opt_value(argc, argv, &i, "--cache", &v)) != 0) {
            if (r < 0)
                return keel_usage_error("compile", "--cache needs a directory");
            eo.cache_dir = v;
        } else if (a[0] == '-' && a[1]) {
            return keel_usage_error("compile", "unknown option %s", a);
        } else if (module) {
            return keel_usage_error("compile", "one module at a time");
        } else {
            module = a;
        }
    }
    if (!module)
        return keel_usage_error("compile", "no module given");

    char err[1024];
    keel_module *m;
    uint64_t t0 = keel_rt_now_ns();
    if (keel_module_load(module, &eo, &m, err, sizeof err)) {
        fprintf(stderr, "keel: %s\n", err);
        return KEEL_EXIT_FAIL;
    }
    double ms = (double)(keel_rt_now_ns() - t0) / 1e6;
    if (!quiet) {
        keel_cache c;
        char path[PATH_MAX];
        if (keel_cache_open(&c, eo.cache_dir, err, sizeof err) == 0) {
            if (eo.tier == KEEL_TIER_OPT)
                keel_cache_path(&c, keel_module_cache_key(m), "so", path, sizeof path);
            else
                snprintf(path, sizeof path, "%s (fast-tier code is not cached)", c.dir);
            if (strcmp(keel_module_tier(m), "opt") == 0 && keel_module_units(m))
                printf("%s: opt tier, %zu units, %.1f ms, %s\n", module, keel_module_units(m),
                       ms, path);
            else
                printf("%s: %s tier, %.1f ms, %s\n", module, keel_module_tier(m), ms, path);
        }
    }
    keel_module_free(m);
    return KEEL_EXIT_OK;
}
