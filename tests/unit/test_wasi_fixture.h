/* test_wasi_fixture.h — shared fixture for the WASI unit tests: a scratch
 * tree from mkdtemp,
 *     <top>/sandbox   preopened read-write as fd 3 ("/sandbox")
 *     <top>/ro        preopened read-only  as fd 4 ("/ro"), holds "data"
 *     <top>/outside   not preopened, holds "secret"; must never change
 * a 1 MiB fake guest memory, and helpers that place guest values. */
#ifndef TEST_WASI_FIXTURE_H
#define TEST_WASI_FIXTURE_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/host_abi.h"
#include "wasi/wasi.h"
#include "wasi/wasi_int.h"

#define MEM_SIZE (1u << 20)
#define G_PATH  0x1000u   /* guest scratch addresses */
#define G_PATH2 0x2000u
#define G_IOV   0x3000u
#define G_OUT   0x4000u   /* 8-byte results */
#define G_OUT2  0x4010u
#define G_STAT  0x4100u
#define G_BUF   0x10000u
#define G_BAD   0xFFFFFFF0u   /* far past the end of guest memory */
#define FD_SB 3
#define FD_RO 4

#define RIGHTS_RW (WASI_RIGHTS_FILE)
#define RIGHTS_RD (WASI_RIGHT_FD_READ | WASI_RIGHT_FD_SEEK | WASI_RIGHT_FD_TELL | \
                   WASI_RIGHT_FD_FILESTAT_GET)

typedef struct fx fx;
static fx *fx_current;   /* freed by fx_teardown if a test failed midway */

typedef struct fx {
    char top[128], sb[160], ro[160], outside[160];
    wasm_rt_memory_t mem;
    keel_host_ctx hc;
    struct keel_wasi *w;
    struct Z_wasi_snapshot_preview1_instance_t *ctx;
} fx;

static inline void fx_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static inline char *fx_path(const char *dir, const char *name)
{
    static char buf[4][512];
    static int i;
    char *b = buf[i++ & 3];
    snprintf(b, 512, "%s/%s", dir, name);
    return b;
}

/* Builds the fixture with the given stdio host fds and args/env. */
static inline fx *fx_new_full(int in, int out, int errfd, int argc, const char *const *argv,
                              int envc, const char *const *envp)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    strcpy(f->top, "/tmp/keel-wasi-XXXXXX");
    assert_non_null(mkdtemp(f->top));
    snprintf(f->sb, sizeof f->sb, "%s/sandbox", f->top);
    snprintf(f->ro, sizeof f->ro, "%s/ro", f->top);
    snprintf(f->outside, sizeof f->outside, "%s/outside", f->top);
    assert_int_equal(mkdir(f->sb, 0755), 0);
    assert_int_equal(mkdir(f->ro, 0755), 0);
    assert_int_equal(mkdir(f->outside, 0755), 0);
    fx_write_file(fx_path(f->outside, "secret"), "top secret");
    fx_write_file(fx_path(f->ro, "data"), "read only data");

    keel_wasi_preopen pre[2] = {
        { .host = f->sb, .guest = "/sandbox", .readonly = false },
        { .host = f->ro, .guest = "/ro", .readonly = true },
    };
    keel_wasi_config cfg = {
        .argc = argc, .argv = argv, .envc = envc, .envp = envp,
        .preopens = pre, .npreopens = 2,
        .stdin_fd = in, .stdout_fd = out, .stderr_fd = errfd,
    };
    char err[256] = "";
    assert_int_equal(keel_wasi_new(&cfg, &f->w, err, sizeof err), 0);
    f->mem.data = calloc(1, MEM_SIZE);
    assert_non_null(f->mem.data);
    f->mem.size = MEM_SIZE;
    f->mem.pages = MEM_SIZE / 65536;
    f->mem.max_pages = f->mem.pages;
    f->hc.mem = &f->mem;
    f->hc.wasi = f->w;
    f->ctx = (struct Z_wasi_snapshot_preview1_instance_t *)(void *)&f->hc;
    fx_current = f;
    return f;
}

static inline fx *fx_new(void)
{
    return fx_new_full(-1, -1, -1, 0, NULL, 0, NULL);
}

/* Checks <top>/outside still holds exactly "secret" with its text. */
static inline void fx_outside_untouched(fx *f)
{
    DIR *d = opendir(f->outside);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            n++;
    closedir(d);
    assert_int_equal(n, 1);
    char buf[64] = "";
    FILE *s = fopen(fx_path(f->outside, "secret"), "r");
    assert_non_null(s);
    assert_non_null(fgets(buf, sizeof buf, s));
    fclose(s);
    assert_string_equal(buf, "top secret");
}

static inline void fx_free(fx *f)
{
    fx_current = NULL;
    keel_wasi_free(f->w);
    free(f->mem.data);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->top);
    int rc = system(cmd);
    free(f);
    assert_int_equal(rc, 0);
}

/* cmocka teardown: removes the scratch tree of a test that failed. */
static inline int fx_teardown(void **state)
{
    (void)state;
    if (fx_current)
        fx_free(fx_current);
    return 0;
}

/* Places s at guest address a; returns its length. */
static inline uint32_t g_str(fx *f, uint32_t a, const char *s)
{
    size_t n = strlen(s);
    memcpy(f->mem.data + a, s, n);
    return (uint32_t)n;
}

static inline void g_iov(fx *f, uint32_t at, uint32_t i, uint32_t buf, uint32_t len)
{
    wasi_put_u32(f->mem.data + at + 8 * i, buf);
    wasi_put_u32(f->mem.data + at + 8 * i + 4, len);
}

static inline uint32_t g_u32(fx *f, uint32_t a) { return wasi_get_u32(f->mem.data + a); }
static inline uint64_t g_u64(fx *f, uint32_t a) { return wasi_get_u64(f->mem.data + a); }

/* path_open relative to dirfd; returns the WASI errno, new fd in *fd. */
static inline uint32_t g_open(fx *f, uint32_t dirfd, uint32_t lookup, const char *path,
                              uint32_t oflags, uint64_t rights, uint32_t fdflags, uint32_t *fd)
{
    uint32_t n = g_str(f, G_PATH, path);
    uint32_t rc = Z_wasi_snapshot_preview1Z_path_open(f->ctx, dirfd, lookup, G_PATH, n, oflags,
                                                      rights, rights, fdflags, G_OUT);
    if (fd)
        *fd = rc == 0 ? g_u32(f, G_OUT) : UINT32_MAX;
    return rc;
}

/* Writes text to guest fd through one iovec; returns errno, count in *n. */
static inline uint32_t g_write(fx *f, uint32_t fd, const char *text, uint32_t *n)
{
    uint32_t len = g_str(f, G_BUF, text);
    g_iov(f, G_IOV, 0, G_BUF, len);
    uint32_t rc = Z_wasi_snapshot_preview1Z_fd_write(f->ctx, fd, G_IOV, 1, G_OUT);
    if (n)
        *n = g_u32(f, G_OUT);
    return rc;
}

/* Calls a path_* function of shape (fd, path, len). */
typedef uint32_t (*path_fn3)(struct Z_wasi_snapshot_preview1_instance_t *, uint32_t,
                             uint32_t, uint32_t);
static inline uint32_t g_path3(fx *f, path_fn3 fn, uint32_t fd, const char *path)
{
    uint32_t n = g_str(f, G_PATH, path);
    return fn(f->ctx, fd, G_PATH, n);
}

static inline uint32_t g_symlink(fx *f, const char *target, uint32_t fd, const char *name)
{
    uint32_t a = g_str(f, G_PATH, target), b = g_str(f, G_PATH2, name);
    return Z_wasi_snapshot_preview1Z_path_symlink(f->ctx, G_PATH, a, fd, G_PATH2, b);
}

static inline uint32_t g_rename(fx *f, uint32_t fd1, const char *from, uint32_t fd2,
                                const char *to)
{
    uint32_t a = g_str(f, G_PATH, from), b = g_str(f, G_PATH2, to);
    return Z_wasi_snapshot_preview1Z_path_rename(f->ctx, fd1, G_PATH, a, fd2, G_PATH2, b);
}

#endif
