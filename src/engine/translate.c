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
    *text = all;
    *len = pre + hlen + post;
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
