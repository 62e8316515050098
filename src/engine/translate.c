/* translate.c — runs wasm2c on a module and appends the glue unit.
 *
 * wasm2c validates as it reads (it accepts no feature flags). wasm2c 1.0.32
 * aborts on SIMD code, so when it fails, wasm-validate run twice (default
 * features, then --disable-simd) tells a SIMD module (valid, unsupported)
 * from an invalid one. */
#include "engine/translate.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/errors.h"
#include "base/proc.h"
#include "engine/glue.h"

/* Largest C file Keel reads back from wasm2c. */
#define TRANSLATE_MAX_C_BYTES (4ull << 30)

static int write_all(const char *path, const void *data, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    const char *p = data;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            close(fd);
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return close(fd);
}

/* Strips "PATH:" from a tool's message so it reads "OFFSET: error: ...". */
static const char *strip_path(const char *line, const char *path)
{
    size_t n = strlen(path);
    if (strncmp(line, path, n) == 0 && line[n] == ':')
        return line + n + 1;
    return line;
}

/* Reads wasm2c's C file with its #include "module.h" replaced by the
 * header itself, so the C stands alone (cache entries are one file). */
static int read_with_header(const char *workdir, const char *cfile, char **text,
                            size_t *len, char *err, size_t errlen)
{
    static const char inc[] = "#include \"module.h\"\n";
    char hfile[PATH_MAX];
    char *c, *h;
    size_t clen, hlen;
    snprintf(hfile, sizeof hfile, "%s/module.h", workdir);
    int rc = keel_read_file(cfile, TRANSLATE_MAX_C_BYTES, &c, &clen, err, errlen);
    if (rc)
        return rc;
    rc = keel_read_file(hfile, TRANSLATE_MAX_C_BYTES, &h, &hlen, err, errlen);
    if (rc) {
        free(c);
        return rc;
    }
    char *at = strstr(c, inc);
    if (!at) {
        free(c);
        free(h);
        return keel_err(err, errlen, KEEL_ECOMPILE, "unexpected wasm2c output (no header include)");
    }
    size_t pre = (size_t)(at - c), post = clen - pre - (sizeof inc - 1);
    char *all = malloc(pre + hlen + post + 1);
    if (!all)
        abort();
    memcpy(all, c, pre);
    memcpy(all + pre, h, hlen);
    memcpy(all + pre + hlen, at + sizeof inc - 1, post);
    all[pre + hlen + post] = '\0';
    free(c);
    free(h);
    /* wasm2c copies names into comments byte for byte, NUL included */
    for (size_t i = 0; i < pre + hlen + post; i++)
        if (all[i] == '\0')
            all[i] = ' ';
    *text = all;
    *len = pre + hlen + post;
    return 0;
}

/* wasm2c keeps every load alive with `asm("" :: "r"(result))`, so a load
 * whose value is unused still faults on a guard page (wasm must trap). The
 * "r" constraint also forces float loads through a general-purpose
 * register, which costs floating-point code dearly. The barrier is replaced
 * by one whose constraint matches the type: an SSE register for f32/f64, a
 * general register for integers; the load still happens either way.
 * The same block replaces isnan() with a bit test: under -fsignaling-nans
 * gcc does not inline it and every wasm f32/f64 sqrt, floor, min, ... called
 * into libm. */
static const char load_barrier_old[] = "wasm_asm(\"\" ::\"r\"(result));";
static const char load_barrier_new[] = "KEEL_LOAD_BARRIER(result);";
static const char load_barrier_defs[] =
    "/* Keel: typed load barrier (src/engine/translate.c) */\n"
    "#if defined(__GNUC__) && defined(__x86_64__)\n"
    "static inline void keel_keep_f32(f32 v) { __asm__(\"\" ::\"x\"(v)); }\n"
    "static inline void keel_keep_f64(f64 v) { __asm__(\"\" ::\"x\"(v)); }\n"
    "static inline void keel_keep_int(u64 v) { __asm__(\"\" ::\"r\"(v)); }\n"
    "#define KEEL_LOAD_BARRIER(v) _Generic((v), f32: keel_keep_f32, f64: keel_keep_f64, "
    "default: keel_keep_int)(v)\n"
    "#else\n"
    "#define KEEL_LOAD_BARRIER(v) wasm_asm(\"\" ::\"r\"(v))\n"
    "#endif\n"
    "/* Keel: isnan as a bit test; under -fsignaling-nans gcc calls libm's. */\n"
    "static inline int keel_isnan_f32(f32 x) { u32 b; memcpy(&b, &x, 4);\n"
    "  return (b & 0x7fffffffu) > 0x7f800000u; }\n"
    "static inline int keel_isnan_f64(f64 x) { u64 b; memcpy(&b, &x, 8);\n"
    "  return (b & 0x7fffffffffffffffull) > 0x7ff0000000000000ull; }\n"
    "#undef isnan\n"
    "#define isnan(x) _Generic((x), f32: keel_isnan_f32, default: keel_isnan_f64)(x)\n";

/* Rewrites text in place of *c: the typed load barrier. Returns 0, or -1
 * when wasm2c's output does not have the expected shape (left unchanged). */
static int rewrite_load_barrier(char **c, size_t *len)
{
    static const char anchor[] = "DEFINE_LOAD(i32_load, u32, u32, u32)";
    char *at = strstr(*c, anchor);
    if (!at || !strstr(*c, load_barrier_old))
        return -1;
    size_t old_n = sizeof load_barrier_old - 1, new_n = sizeof load_barrier_new - 1;
    size_t defs_n = sizeof load_barrier_defs - 1;
    char *out = malloc(*len + defs_n + 1);
    if (!out)
        abort();
    size_t k = 0;
    for (const char *p = *c; *p;) {
        if (p == at) {
            memcpy(out + k, load_barrier_defs, defs_n);
            k += defs_n;
        }
        if (strncmp(p, load_barrier_old, old_n) == 0) {
            memcpy(out + k, load_barrier_new, new_n);
            k += new_n;
            p += old_n;
        } else {
            out[k++] = *p++;
        }
    }
    out[k] = '\0';
    free(*c);
    *c = out;
    *len = k;
    return 0;
}

/* Replaces the first old in *c with new. 0, or -1 when old is absent. */
static int replace_once(char **c, size_t *len, const char *old, const char *new)
{
    char *at = strstr(*c, old);
    if (!at)
        return -1;
    size_t on = strlen(old), nn = strlen(new), pre = (size_t)(at - *c);
    char *out = malloc(*len - on + nn + 1);
    if (!out)
        abort();
    memcpy(out, *c, pre);
    memcpy(out + pre, new, nn);
    memcpy(out + pre + nn, at + on, *len - pre - on + 1);
    free(*c);
    *c = out;
    *len = *len - on + nn;
    return 0;
}

/* wasm2c 1.0.32 fills a table from an element segment with, for an
 * imported function, the address of the instance's field holding the
 * import's instance instead of the field's value: calling an imported
 * function through the table handed it a pointer to a pointer (a host
 * function then misread its context; found by an AssemblyScript guest).
 * ref.func gets it right. Two rewrites fix it: the instance struct starts
 * with a padding byte so that no import field sits at offset 0 (offset 0
 * then always means the instance itself), and table initialization loads
 * the field for a non-zero offset. */
static int fix_imported_funcref(char **c, size_t *len)
{
    static const char struct_old[] = "typedef struct Z_" KEEL_GLUE_MODNAME_MANGLED "_instance_t {\n";
    static const char struct_new[] =
        "typedef struct Z_" KEEL_GLUE_MODNAME_MANGLED "_instance_t {\n"
        "  u8 keel_no_import_at_0; /* Keel: see src/engine/translate.c */\n";
    static const char init_old[] = "(char*)module_instance + src_expr->module_offset};";
    static const char init_new[] =
        "src_expr->module_offset ? *(void**)((char*)module_instance + src_expr->module_offset)"
        " : module_instance}; /* Keel: translate.c */";
    if (replace_once(c, len, struct_old, struct_new) != 0)
        return -1;
    if (strstr(*c, "funcref_table_init(") && replace_once(c, len, init_old, init_new) != 0)
        return -1;
    return 0;
}

int keel_translate(const uint8_t *bytes, size_t n, const wasm_info *info,
                   const char *workdir, char **c_text, size_t *c_len,
                   char *err, size_t errlen)
{
    char wasm[PATH_MAX], cfile[PATH_MAX], log[PATH_MAX], line[512];
    snprintf(wasm, sizeof wasm, "%s/module.wasm", workdir);
    snprintf(cfile, sizeof cfile, "%s/module.c", workdir);
    snprintf(log, sizeof log, "%s/wasm2c.log", workdir);
    if (write_all(wasm, bytes, n) != 0)
        return keel_err(err, errlen, KEEL_EIO, "writing %s: %s", wasm, strerror(errno));

    const char *argv[] = { "wasm2c", "-n", KEEL_GLUE_MODNAME,
                           wasm, "-o", cfile, NULL };
    int rc = keel_proc_run(argv, log, err, errlen);
    if (rc < 0)
        return rc;
    if (rc != 0) {
        keel_first_line(log, line, sizeof line);
        const char *vargv[] = { "wasm-validate", wasm, NULL };
        const char *nosimd[] = { "wasm-validate", "--disable-simd", wasm, NULL };
        if (keel_proc_run(vargv, NULL, NULL, 0) == 0 &&
            keel_proc_run(nosimd, NULL, NULL, 0) != 0)
            return keel_err(err, errlen, KEEL_EUNSUPPORTED,
                            "uses SIMD (v128) instructions, which Keel cannot run "
                            "(wasm2c 1.0.32 has no SIMD support)");
        if (rc >= 128)
            return keel_err(err, errlen, KEEL_ECOMPILE, "wasm2c crashed (status %d)", rc);
        return keel_err(err, errlen, KEEL_EINVAL, "invalid module: %s",
                        line[0] ? strip_path(line, wasm) : "rejected by wasm2c");
    }

    char *text = NULL;
    size_t len = 0;
    rc = read_with_header(workdir, cfile, &text, &len, err, errlen);
    if (rc)
        return rc;
    if (rewrite_load_barrier(&text, &len) != 0) {
        free(text);
        return keel_err(err, errlen, KEEL_ECOMPILE, "unexpected wasm2c output (load helpers)");
    }
    if (fix_imported_funcref(&text, &len) != 0) {
        free(text);
        return keel_err(err, errlen, KEEL_ECOMPILE,
                        "unexpected wasm2c output (instance struct or table initialization)");
    }
    char *glue = NULL;
    size_t glue_len = 0;
    FILE *g = open_memstream(&glue, &glue_len);
    if (!g)
        abort();
    rc = keel_glue_write(g, info, text, len, err, errlen);
    fclose(g);
    if (rc) {
        free(text);
        free(glue);
        return rc;
    }
    char *all = realloc(text, len + glue_len + 1);
    if (!all)
        abort();
    memcpy(all + len, glue, glue_len);
    all[len + glue_len] = '\0';
    free(glue);
    *c_text = all;
    *c_len = len + glue_len;
    return 0;
}

static char identity[PATH_MAX + 128];
static pthread_once_t identity_once = PTHREAD_ONCE_INIT;

static void init_identity(void)
{
    struct stat st;
    const char *candidates[] = { "/usr/bin/wasm2c", "/usr/local/bin/wasm2c", NULL };
    snprintf(identity, sizeof identity, "wasm2c");
    for (int i = 0; candidates[i]; i++) {
        if (stat(candidates[i], &st) == 0) {
            snprintf(identity, sizeof identity, "%s size=%lld mtime=%lld", candidates[i],
                     (long long)st.st_size, (long long)st.st_mtime);
            break;
        }
    }
}

const char *keel_translate_identity(void)
{
    pthread_once(&identity_once, init_identity);
    return identity;
}
