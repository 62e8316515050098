/* module.c — keel_module: load (parse, translate, compile through a tier
 * and the cache) and link. Instances are in instance.c. */
#include "engine/module_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/errors.h"
#include "base/proc.h"
#include "base/sha256.h"
#include "base/version.h"
#include "config/units.h"
#include "engine/bundle.h"
#include "engine/cache.h"
#include "engine/split.h"
#include "engine/translate.h"

/* Hash of the sources that generate and compile C (Makefile), so a change
 * to the glue or a tier never reuses code built by an older Keel. */
#ifndef KEEL_CODEGEN_ID
#error "KEEL_CODEGEN_ID must be defined by the build"
#endif

/* Largest .wasm file Keel loads. */
#define KEEL_MAX_MODULE_BYTES (512u << 20)

extern char **environ;

static void hash_key(const char *kind, const char *a, const char *b,
                     const char *c, char out[65])
{
    keel_sha256 s;
    unsigned char d[32];
    keel_sha256_init(&s);
    const char *parts[] = { kind, "\n", KEEL_VERSION, "\n", a, "\n", b, "\n", c };
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++)
        keel_sha256_update(&s, parts[i], strlen(parts[i]));
    keel_sha256_final(&s, d);
    keel_hex(d, 32, out);
}

static void remove_tree(const char *dir)
{
    const char *names[] = { "module.wasm", "module.c", "module.h", "wasm2c.log", NULL };
    char p[PATH_MAX];
    for (int i = 0; names[i]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
}

/* Gets the C for the module: from the cache, else by translating (and
 * caching the result). */
static int get_c_source(keel_module *m, const keel_cache *cache,
                        const uint8_t *bytes, size_t n, char **text, size_t *len,
                        char *err, size_t errlen)
{
    char path[PATH_MAX];
    if (keel_cache_lookup(cache, m->src_key, "c", path, sizeof path, NULL) &&
        keel_cache_read(path, text, len, NULL, 0) == 0)
        return 0;
    char work[PATH_MAX - 64];
    snprintf(work, sizeof work, "%s/work.XXXXXX", cache->dir);
    if (!mkdtemp(work))
        return keel_err(err, errlen, KEEL_EIO, "%s: %s", work, strerror(errno));
    int rc = keel_translate(bytes, n, &m->info, work, text, len, err, errlen);
    remove_tree(work);
    if (rc)
        return rc;
    char tmp[PATH_MAX];
    keel_cache_tmp_path(cache, m->src_key, "c", tmp, sizeof tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
        int ok = write(fd, *text, *len) == (ssize_t)*len;
        close(fd);
        if (!ok || keel_cache_commit(cache, m->src_key, "c", tmp, NULL, 0) != 0)
            unlink(tmp);
    }
    return 0;   /* a cache that cannot be written only costs speed */
}

/* Bytes of function code per translation unit of the optimized tier. */
#define KEEL_OPT_UNIT_BYTES (4u << 20)

/* Builds the optimized shared object from C text and commits it. A module
 * over the compile budget gets a marker entry, so later loads go straight
 * to the fast tier instead of trying again. */
static int build_opt(keel_module *m, const keel_cache *cache, const char *text,
                     size_t len, char *err, size_t errlen)
{
    char work[PATH_MAX - 64], tmp[PATH_MAX];
    snprintf(work, sizeof work, "%s/work.XXXXXX", cache->dir);
    if (!mkdtemp(work))
        return keel_err(err, errlen, KEEL_EIO, "%s: %s", work, strerror(errno));
    uint64_t unit = KEEL_OPT_UNIT_BYTES;
    const char *eu = getenv("KEEL_OPT_UNIT");
    if (eu && *eu && (keel_parse_size(eu, &unit) || unit == 0))
        unit = KEEL_OPT_UNIT_BYTES;
    char **units;
    size_t n = keel_split_c(text, len, (size_t)unit, &units);
    m->units = n;
    keel_cache_tmp_path(cache, m->so_key, "so", tmp, sizeof tmp);
    int rc = keel_native_opt_build(work, units, n, tmp, err, errlen);
    keel_split_free(units, n);
    if (!rc)
        rc = keel_cache_commit(cache, m->so_key, "so", tmp, err, errlen);
    else
        unlink(tmp);
    if (rc == KEEL_ELIMIT) {
        keel_cache_tmp_path(cache, m->so_key, "overbudget", tmp, sizeof tmp);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd >= 0) {
            close(fd);
            if (keel_cache_commit(cache, m->so_key, "overbudget", tmp, NULL, 0))
                unlink(tmp);
        }
    }
    rmdir(work);
    return rc;
}

/* Starts `keel compile --tier opt [--cache DIR] PATH` detached, so the next
 * load finds the optimized object (cache_dir NULL: the child resolves the
 * same default from the inherited environment). Failures only cost speed
 * and are ignored. */
static void spawn_background_opt(const char *path, const char *cache_dir)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return;
    self[n] = '\0';
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    posix_spawnattr_init(&at);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID);
    const char *argv[] = { self, "compile", "--quiet", "--tier", "opt",
                           cache_dir ? "--cache" : path, cache_dir ? cache_dir : NULL,
                           cache_dir ? path : NULL, NULL };
    pid_t pid;
    posix_spawn(&pid, self, &fa, &at, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
}

static int cmp_addr(const void *a, const void *b)
{
    const void *x = *(const void *const *)a, *y = *(const void *const *)b;
    return (uintptr_t)x < (uintptr_t)y ? -1 : (uintptr_t)x > (uintptr_t)y;
}

/* Appends the fast tier's functions to /tmp/perf-PID.map, the file `perf
 * report` reads to name code that has no ELF symbols (KEEL_PERF_MAP=1). */
static void write_perf_map(const keel_module *m, const void *end, uint32_t nf)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/perf-%ld.map", (long)getpid());
    FILE *f = fopen(path, "a");
    if (!f)
        return;
    for (uint32_t i = 0; i < nf; i++) {
        uintptr_t a = (uintptr_t)m->func_addrs[i];
        uintptr_t b = i + 1 < nf ? (uintptr_t)m->func_addrs[i + 1] : (uintptr_t)end;
        fprintf(f, "%lx %lx %s\n", (unsigned long)a, (unsigned long)(b - a), m->func_names[i]);
    }
    fclose(f);
}

/* Registers the code range with a table of functions sorted by address. */
static int register_code(keel_module *m, char *err, size_t errlen)
{
    const keel_glue_syms *s = m->syms;
    uint32_t nf = *s->func_count;
    /* pairs (addr, index) sorted by addr, then split into two arrays */
    const void **pairs = calloc((size_t)nf * 2 + 2, sizeof *pairs);
    m->func_addrs = calloc((size_t)nf + 1, sizeof *m->func_addrs);
    m->func_names = calloc((size_t)nf + 1, sizeof *m->func_names);
    if (!pairs || !m->func_addrs || !m->func_names)
        abort();
    for (uint32_t i = 0; i < nf; i++) {
        pairs[2 * i] = s->func_addrs[i];
        pairs[2 * i + 1] = s->func_names[i];
    }
    qsort(pairs, nf, 2 * sizeof *pairs, cmp_addr);
    for (uint32_t i = 0; i < nf; i++) {
        m->func_addrs[i] = pairs[2 * i];
        m->func_names[i] = pairs[2 * i + 1];
    }
    free(pairs);
    const void *start, *end;
    keel_native_code_range(m->native, &start, &end);
    if (m->tier && strcmp(m->tier, "fast") == 0 && getenv("KEEL_PERF_MAP"))
        write_perf_map(m, end, nf);
    int rc = keel_rt_register_code(start, end, m->path, m->func_addrs, m->func_names, nf);
    if (rc)
        return keel_err(err, errlen, rc, "too many modules loaded");
    m->code_start = start;
    return 0;
}

static int load_native(keel_module *m, const keel_engine_opts *opts,
                       const uint8_t *bytes, size_t n, char *err, size_t errlen)
{
    const void *so;
    size_t so_len;
    if (opts->tier != KEEL_TIER_FAST && keel_bundle_code(m->digest, &so, &so_len)) {
        /* an app built by keel build: its code is embedded, nothing compiles */
        int rc = keel_native_open_image(so, so_len, m->digest, &m->native, err, errlen);
        if (rc == 0)
            m->tier = "opt";
        return rc;
    }
    keel_cache cache;
    int rc = keel_cache_open(&cache, opts->cache_dir, err, errlen);
    if (rc)
        return rc;
    char path[PATH_MAX];
    int corrupt = 0;
    if (opts->tier != KEEL_TIER_FAST &&
        keel_cache_lookup(&cache, m->so_key, "so", path, sizeof path, &corrupt)) {
        if (keel_native_open(path, &m->native, NULL, 0) == 0) {
            m->tier = "opt";
            return 0;
        }
        unlink(path);   /* passed the checksum but does not load: rebuild */
    }
    if (corrupt && opts->verbose)
        fprintf(stderr, "keel: %s: discarded a corrupt cache entry\n", m->path);

    char *text;
    size_t len;
    rc = get_c_source(m, &cache, bytes, n, &text, &len, err, errlen);
    if (rc)
        return rc;
    int over_budget = keel_cache_lookup(&cache, m->so_key, "overbudget", path, sizeof path, NULL);
    if (opts->tier == KEEL_TIER_OPT && !over_budget) {
        char why[512];
        rc = build_opt(m, &cache, text, len, why, sizeof why);
        if (rc == 0) {
            free(text);
            keel_cache_path(&cache, m->so_key, "so", path, sizeof path);
            rc = keel_native_open(path, &m->native, err, errlen);
            m->tier = "opt";
            return rc;
        }
        if (rc != KEEL_ELIMIT) {
            free(text);
            return keel_err(err, errlen, rc, "%s", why);
        }
        over_budget = 1;
        fprintf(stderr, "keel: %s: optimized build over budget (%s); staying on the fast tier\n",
                m->path, why);
    } else if (opts->tier == KEEL_TIER_OPT) {
        fprintf(stderr, "keel: %s: over the optimized tier's compile budget earlier; "
                "staying on the fast tier\n", m->path);
    }
    size_t flen;
    char *fast = keel_native_fast_source(text, len, &flen);
    free(text);
    if (!fast)
        return keel_err(err, errlen, KEEL_ECOMPILE, "fast tier: unexpected wasm2c output");
    rc = keel_native_fast(fast, flen, &m->native, err, errlen);
    free(fast);
    if (rc)
        return rc;
    m->tier = "fast";
    if (opts->tier == KEEL_TIER_AUTO && opts->background_opt && !over_budget)
        spawn_background_opt(m->path, opts->cache_dir);
    return 0;
}

typedef struct host_tables {
    const keel_host_fn *const *tables;
    size_t n;
} host_tables;

static void *resolve_host(void *ud, const keel_extern *imp, char *why, size_t whylen);

/* Checks, before anything is compiled, that host tables satisfy every
 * import. */
static int check_host_imports(const keel_module *m, const keel_host_fn *const *tables,
                              size_t ntables, char *err, size_t errlen)
{
    host_tables h = { tables, ntables };
    for (size_t i = 0; i < m->info.nimports; i++) {
        const keel_extern *imp = &m->info.imports[i];
        char why[256];
        if (!resolve_host(&h, imp, why, sizeof why))
            return keel_err(err, errlen, KEEL_ELINK, "import %s.%s: %s", imp->module,
                            imp->name, why);
    }
    return 0;
}

int keel_module_load(const char *path, const keel_engine_opts *opts,
                     keel_module **out, char *err, size_t errlen)
{
    static const keel_engine_opts defaults;
    char why[512];
    char *bytes = NULL;
    size_t n;
    *out = NULL;
    if (!opts)
        opts = &defaults;
    int rc = keel_rt_init();
    if (rc)
        return keel_err(err, errlen, rc, "cannot initialize the runtime");
    rc = keel_bundle_wasm(path, &bytes, &n) ? 0
         : keel_read_file(path, KEEL_MAX_MODULE_BYTES, &bytes, &n, why, sizeof why);
    if (rc)
        return keel_err(err, errlen, rc == KEEL_ELIMIT ? KEEL_ELIMIT : KEEL_EINVAL,
                        "%s: %s", path, why);
    keel_module *m = calloc(1, sizeof *m);
    if (!m || !(m->path = strdup(path)))
        abort();
    rc = wasm_parse((const uint8_t *)bytes, n, &m->info, why, sizeof why);
    if (!rc && m->info.uses_simd)
        rc = keel_err(why, sizeof why, KEEL_EUNSUPPORTED,
                      "uses SIMD (v128) types, which Keel cannot run "
                      "(wasm2c 1.0.32 has no SIMD support)");
    if (rc) {
        keel_err(err, errlen, rc, "%s: %s", path, why);
        goto fail;
    }
    for (size_t i = 0; !rc && i < m->info.nimports; i++) {
        const keel_extern *a = &m->info.imports[i];
        for (size_t j = 0; j < i; j++) {
            const keel_extern *b = &m->info.imports[j];
            if (!strcmp(a->module, b->module) && a->name_len == b->name_len &&
                !memcmp(a->name, b->name, a->name_len) &&
                (a->kind != b->kind || strcmp(a->sig, b->sig))) {
                /* wasm2c 1.0.32 aborts on it: one C symbol per import name */
                rc = keel_err(err, errlen, KEEL_ELINK, "%s: import %s.%s: imported twice with "
                              "different types, which Keel cannot link", path, a->module, a->name);
                break;
            }
        }
    }
    if (rc)
        goto fail;
    if (opts->host_tables) {
        rc = check_host_imports(m, opts->host_tables, opts->nhost_tables, why, sizeof why);
        if (rc) {
            keel_err(err, errlen, rc, "%s: %s", path, why);
            goto fail;
        }
    }
    keel_sha256_hex(bytes, n, m->digest);
    hash_key("c", m->digest, keel_translate_identity(), KEEL_CODEGEN_ID, m->src_key);
    hash_key("so", m->src_key, keel_native_opt_identity(), "", m->so_key);

    rc = load_native(m, opts, (const uint8_t *)bytes, n, why, sizeof why);
    if (rc) {
        keel_err(err, errlen, rc, "%s: %s", path, why);
        goto fail;
    }
    m->syms = keel_native_syms(m->native);
    if (*m->syms->export_count != m->info.nexports) {
        rc = keel_err(err, errlen, KEEL_ECOMPILE,
                      "%s: compiled code does not match the module", path);
        goto fail;
    }
    rc = register_code(m, why, sizeof why);
    if (rc) {
        keel_err(err, errlen, rc, "%s: %s", path, why);
        goto fail;
    }
    m->syms->init_module();
    m->nimport_modules = keel_glue_import_modules(&m->info, m->import_modules,
                                                  KEEL_MAX_IMPORT_MODULES);
    free(bytes);
    *out = m;
    return 0;
fail:
    free(bytes);
    keel_module_free(m);
    return rc;
}

void keel_module_free(keel_module *m)
{
    if (!m)
        return;
    if (m->code_start)
        keel_rt_unregister_code(m->code_start);
    keel_native_free(m->native);
    wasm_info_free(&m->info);
    free(m->func_addrs);
    free(m->func_names);
    free(m->path);
    free(m);
}

const char *keel_engine_build_id(void) { return KEEL_VERSION " " KEEL_CODEGEN_ID; }
const char *keel_module_tier(const keel_module *m) { return m->tier; }
const char *keel_module_digest(const keel_module *m) { return m->digest; }
const char *keel_module_path(const keel_module *m) { return m->path; }
size_t keel_module_units(const keel_module *m) { return m->units; }
const char *keel_module_cache_key(const keel_module *m) { return m->so_key; }
size_t keel_module_import_count(const keel_module *m) { return m->info.nimports; }
const keel_extern *keel_module_import(const keel_module *m, size_t i) { return &m->info.imports[i]; }
size_t keel_module_export_count(const keel_module *m) { return m->info.nexports; }
const keel_extern *keel_module_export(const keel_module *m, size_t i) { return &m->info.exports[i]; }
size_t keel_module_import_module_count(const keel_module *m) { return m->nimport_modules; }
const char *keel_module_import_module(const keel_module *m, size_t i) { return m->import_modules[i]; }

int keel_module_link(keel_module *m, keel_resolve_fn resolve, void *ud,
                     char *err, size_t errlen)
{
    for (size_t i = 0; i < m->info.nimports; i++) {
        const keel_extern *imp = &m->info.imports[i];
        char why[256] = "";
        void *addr = resolve(ud, imp, why, sizeof why);
        if (!addr)
            return keel_err(err, errlen, KEEL_ELINK, "%s: import %s.%s: %s", m->path,
                            imp->module, imp->name, why[0] ? why : "not provided");
        m->syms->bind((uint32_t)i, addr);
    }
    m->linked = true;
    return 0;
}

static void *resolve_host(void *ud, const keel_extern *imp, char *why, size_t whylen)
{
    const host_tables *h = ud;
    for (size_t t = 0; t < h->n; t++) {
        for (const keel_host_fn *f = h->tables[t]; f->module; f++) {
            if (strcmp(f->module, imp->module) || strlen(f->field) != imp->name_len ||
                memcmp(f->field, imp->name, imp->name_len))
                continue;
            if (imp->kind != KEEL_EXTERN_FUNC) {
                snprintf(why, whylen, "Keel provides it as a function");
                return NULL;
            }
            if (strcmp(f->sig, imp->sig)) {
                snprintf(why, whylen, "signature (%s) does not match Keel's (%s)",
                         imp->sig, f->sig);
                return NULL;
            }
            void *p;
            memcpy(&p, &f->addr, sizeof p);
            return p;
        }
    }
    snprintf(why, whylen, "unknown import (Keel provides no such function)");
    return NULL;
}

int keel_module_link_host(keel_module *m, const keel_host_fn *const *tables,
                          size_t ntables, char *err, size_t errlen)
{
    host_tables h = { tables, ntables };
    return keel_module_link(m, resolve_host, &h, err, errlen);
}

void *keel_module_export_addr(const keel_module *m, const char *name)
{
    size_t len = strlen(name);
    for (uint32_t i = 0; i < *m->syms->export_count; i++) {
        const keel_glue_export *e = &m->syms->exports[i];
        if (e->name_len == len && memcmp(e->name, name, len) == 0)
            return e->addr;
    }
    return NULL;
}
