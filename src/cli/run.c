/* run.c — `keel run`: a WASI command module run like a native program. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "config/units.h"
#include "engine/engine.h"
#include "wasi/wasi.h"

/* Options a command line may repeat at most this often. */
#define RUN_MAX_DIRS 256
#define RUN_MAX_ENV 4096
#define WASM_PAGE_BYTES 65536u

typedef struct run_opts {
    keel_wasi_preopen dirs[RUN_MAX_DIRS];
    size_t ndirs;
    const char *env[RUN_MAX_ENV];
    int nenv;
    uint64_t memory_limit;    /* bytes, 0 = none */
    uint64_t timeout_ns;      /* 0 = none */
    int tier;
    const char *module;
    int guest_argc;
    char **guest_argv;        /* argv[0] = module */
} run_opts;

/* Splits "HOST[::GUEST]" into a preopen; the strings live in argv. */
static int add_dir(run_opts *o, const char *spec, bool readonly)
{
    if (o->ndirs == RUN_MAX_DIRS)
        return keel_usage_error("run", "too many --dir options (at most %d)", RUN_MAX_DIRS);
    if (!*spec)
        return keel_usage_error("run", "--dir needs a directory");
    keel_wasi_preopen *d = &o->dirs[o->ndirs++];
    const char *sep = strstr(spec, "::");
    d->readonly = readonly;
    char *host = strndup(spec, sep ? (size_t)(sep - spec) : strlen(spec));
    if (!host)
        abort();
    d->host = host;   /* owned: freed by keel_cmd_run */
    d->guest = sep ? sep + 2 : spec;
    if (!*d->host || !*d->guest)
        return keel_usage_error("run", "--dir %s: expected HOST::GUEST", spec);
    return 0;
}

static int parse_args(int argc, char **argv, run_opts *o)
{
    int i;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int r;
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (a[0] != '-' || a[1] == '\0')
            break;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(keel_usage("run"), stdout);
            return -1;
        }
        if ((r = keel_opt_value(argc, argv, &i, "--dir", &v)) != 0) {
            if (r < 0 || add_dir(o, v, false))
                return r < 0 ? keel_usage_error("run", "--dir needs a value") : KEEL_EXIT_USAGE;
        } else if ((r = keel_opt_value(argc, argv, &i, "--dir-ro", &v)) != 0) {
            if (r < 0 || add_dir(o, v, true))
                return r < 0 ? keel_usage_error("run", "--dir-ro needs a value") : KEEL_EXIT_USAGE;
        } else if ((r = keel_opt_value(argc, argv, &i, "--env", &v)) != 0) {
            if (r < 0)
                return keel_usage_error("run", "--env needs KEY=VALUE");
            const char *eq = strchr(v, '=');
            if (!eq || eq == v)
                return keel_usage_error("run", "--env %s: expected KEY=VALUE", v);
            if (o->nenv == RUN_MAX_ENV)
                return keel_usage_error("run", "too many --env options");
            o->env[o->nenv++] = v;
        } else if ((r = keel_opt_value(argc, argv, &i, "--memory-limit", &v)) != 0) {
            if (r < 0 || keel_parse_size(v, &o->memory_limit) || o->memory_limit < WASM_PAGE_BYTES)
                return keel_usage_error("run", "--memory-limit %s: expected a size of at "
                                        "least 64KiB, like 64MiB", r < 0 ? "" : v);
        } else if ((r = keel_opt_value(argc, argv, &i, "--timeout", &v)) != 0) {
            if (r < 0 || keel_parse_duration(v, &o->timeout_ns) || !o->timeout_ns)
                return keel_usage_error("run", "--timeout %s: expected a duration like "
                                        "500ms or 2s", r < 0 ? "" : v);
        } else if ((r = keel_opt_value(argc, argv, &i, "--tier", &v)) != 0) {
            if (r < 0 || (o->tier = keel_parse_tier(v)) < 0)
                return keel_usage_error("run", "--tier %s: expected fast, opt or auto",
                                        r < 0 ? "" : v);
        } else {
            return keel_usage_error("run", "unknown option %s", a);
        }
    }
    if (i >= argc)
        return keel_usage_error("run", "no module given");
    o->module = argv[i];
    o->guest_argc = argc - i;
    o->guest_argv = argv + i;
    return 0;
}

static int report_trap(const char *module, const keel_rt_outcome *o)
{
    fprintf(stderr, "keel: trap: %s in %s%s%s%s\n", keel_trap_kind_name(o->trap), module,
            o->where[0] ? " (function " : "", o->where, o->where[0] ? ")" : "");
    return KEEL_EXIT_TRAP;
}

/* Frees what parse_args allocated (the --dir host paths). */
static void run_opts_free(run_opts *o)
{
    for (size_t i = 0; i < o->ndirs; i++)
        free((char *)o->dirs[i].host);
}

int keel_cmd_run(int argc, char **argv)
{
    run_opts o;
    memset(&o, 0, sizeof o);
    o.tier = KEEL_TIER_AUTO;
    int rc = parse_args(argc, argv, &o);
    if (rc) {
        run_opts_free(&o);
        return rc < 0 ? KEEL_EXIT_OK : rc;
    }

    char err[1024];
    const keel_host_fn *tables[] = { keel_wasi_host_fns };
    keel_engine_opts eo = { .tier = (keel_tier)o.tier, .background_opt = true,
                            .host_tables = tables, .nhost_tables = 1 };
    keel_module *m = NULL;
    keel_instance *inst = NULL;
    struct keel_wasi *wasi = NULL;
    void **imports = NULL;
    int status = KEEL_EXIT_FAIL;
    if (keel_module_load(o.module, &eo, &m, err, sizeof err)) {
        fprintf(stderr, "keel: %s\n", err);
        goto out;
    }
    if (keel_module_link_host(m, tables, 1, err, sizeof err)) {
        fprintf(stderr, "keel: %s\n", err);
        goto out;
    }
    keel_wasi_config wc = {
        .argc = o.guest_argc, .argv = (const char *const *)o.guest_argv,
        .envc = o.nenv, .envp = o.env,
        .preopens = o.dirs, .npreopens = o.ndirs,
        .stdin_fd = 0, .stdout_fd = 1, .stderr_fd = 2,
    };
    if (keel_wasi_new(&wc, &wasi, err, sizeof err)) {
        fprintf(stderr, "keel: %s\n", err);
        goto out;
    }
    keel_host_ctx ctx = { .mem = NULL, .wasi = wasi, .component = NULL };
    size_t nmods = keel_module_import_module_count(m);
    imports = calloc(nmods + 1, sizeof *imports);
    if (!imports)
        abort();
    for (size_t i = 0; i < nmods; i++)
        imports[i] = &ctx;
    keel_rt_outcome out;
    uint32_t pages = (uint32_t)(o.memory_limit / WASM_PAGE_BYTES);
    if (o.memory_limit && o.memory_limit / WASM_PAGE_BYTES > 65536)
        pages = 0;
    if (keel_instance_new(m, imports, pages, &inst, &out, err, sizeof err)) {
        if (out.end == KEEL_RT_TRAPPED) {
            status = report_trap(o.module, &out);
        } else if (out.end == KEEL_RT_EXITED) {
            status = out.exit_code;
        } else {
            fprintf(stderr, "keel: %s\n", err);
        }
        goto out;
    }
    ctx.mem = keel_instance_memory(inst, "memory");
    if (!ctx.mem)
        ctx.mem = keel_instance_memory(inst, NULL);
    keel_rt_limits lim = { 0 };
    if (o.timeout_ns)
        lim.deadline_ns = keel_rt_now_ns() + o.timeout_ns;
    uint64_t none[1];
    if (keel_instance_call(inst, "_start", none, 1, &lim, &out, err, sizeof err)) {
        fprintf(stderr, "keel: %s: not a WASI command (no _start export)\n", o.module);
        goto out;
    }
    switch (out.end) {
    case KEEL_RT_RETURNED: status = 0; break;
    case KEEL_RT_EXITED: status = out.exit_code; break;
    case KEEL_RT_TRAPPED: status = report_trap(o.module, &out); break;
    }
out:
    keel_instance_free(inst);
    keel_wasi_free(wasi);
    keel_module_free(m);
    free(imports);
    run_opts_free(&o);
    return status;
}
