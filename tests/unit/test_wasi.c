/* test_wasi.c — WASI preview1 host functions driven directly with a fake
 * guest memory: the import table, args/env layout, file I/O round trips,
 * readdir cookies, filestat/fdstat, rights, renumber, poll_oneoff, clocks,
 * random, proc_exit and deadlines (through the real runtime). */
#include "test_wasi_fixture.h"

#include <poll.h>
#include <time.h>

#include "base/errors.h"
#include "engine/rt.h"

#define Z(name) Z_wasi_snapshot_preview1Z_##name

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void test_table(void **state)
{
    (void)state;
    static const char *const names[] = {
        "args_get", "args_sizes_get", "environ_get", "environ_sizes_get", "clock_res_get",
        "clock_time_get", "fd_advise", "fd_allocate", "fd_close", "fd_datasync",
        "fd_fdstat_get", "fd_fdstat_set_flags", "fd_fdstat_set_rights", "fd_filestat_get",
        "fd_filestat_set_size", "fd_filestat_set_times", "fd_pread", "fd_prestat_get",
        "fd_prestat_dir_name", "fd_pwrite", "fd_read", "fd_readdir", "fd_renumber", "fd_seek",
        "fd_sync", "fd_tell", "fd_write", "path_create_directory", "path_filestat_get",
        "path_filestat_set_times", "path_link", "path_open", "path_readlink",
        "path_remove_directory", "path_rename", "path_symlink", "path_unlink_file",
        "poll_oneoff", "proc_exit", "proc_raise", "sched_yield", "random_get", "sock_accept",
        "sock_recv", "sock_send", "sock_shutdown",
    };
    static const struct { const char *name, *sig; } sigs[] = {
        { "fd_write", "iiii:i" }, { "fd_seek", "iIii:i" }, { "path_open", "iiiiiIIii:i" },
        { "proc_exit", "i:" }, { "clock_time_get", "iIi:i" }, { "fd_pread", "iiiIi:i" },
        { "poll_oneoff", "iiii:i" }, { "fd_readdir", "iiiIi:i" }, { "sched_yield", ":i" },
        { "path_filestat_set_times", "iiiiIIi:i" }, { "fd_advise", "iIIi:i" },
        { "fd_fdstat_set_rights", "iII:i" }, { "path_link", "iiiiiii:i" },
    };
    size_t n = 0;
    for (const keel_host_fn *f = keel_wasi_host_fns; f->module; f++, n++) {
        assert_string_equal(f->module, "wasi_snapshot_preview1");
        assert_non_null(f->addr);
        assert_non_null(strchr(f->sig, ':'));
        for (const keel_host_fn *g = keel_wasi_host_fns; g < f; g++)
            assert_string_not_equal(g->field, f->field);
    }
    assert_int_equal(n, sizeof names / sizeof names[0]);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const keel_host_fn *f = keel_wasi_host_fns;
        while (f->module && strcmp(f->field, names[i]))
            f++;
        assert_non_null(f->module);
    }
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        const keel_host_fn *f = keel_wasi_host_fns;
        while (f->module && strcmp(f->field, sigs[i].name))
            f++;
        assert_string_equal(f->sig, sigs[i].sig);
    }
    assert_true(keel_wasi_host_fns[0].addr == (void (*)(void))Z(args_get));
}

static void test_args_env(void **state)
{
    (void)state;
    const char *argv[] = { "prog", "a b", "" };
    const char *envp[] = { "A=1", "LONGER=xyz=2" };
    fx *f = fx_new_full(-1, -1, -1, 3, argv, 2, envp);
    assert_int_equal(Z(args_sizes_get)(f->ctx, G_OUT, G_OUT2), 0);
    assert_int_equal(g_u32(f, G_OUT), 3);
    assert_int_equal(g_u32(f, G_OUT2), 5 + 4 + 1);
    assert_int_equal(Z(args_get)(f->ctx, G_PATH, G_BUF), 0);
    for (int i = 0; i < 3; i++) {
        uint32_t p = g_u32(f, G_PATH + 4 * (uint32_t)i);
        assert_true(p >= G_BUF && p < G_BUF + 10);
        assert_string_equal((char *)f->mem.data + p, argv[i]);
    }
    assert_int_equal(Z(environ_sizes_get)(f->ctx, G_OUT, G_OUT2), 0);
    assert_int_equal(g_u32(f, G_OUT), 2);
    assert_int_equal(g_u32(f, G_OUT2), 4 + 13);
    assert_int_equal(Z(environ_get)(f->ctx, G_PATH, G_BUF + 100), 0);
    assert_string_equal((char *)f->mem.data + g_u32(f, G_PATH), "A=1");
    assert_string_equal((char *)f->mem.data + g_u32(f, G_PATH + 4), "LONGER=xyz=2");
    /* the buffer would end past memory */
    assert_int_equal(Z(args_get)(f->ctx, G_PATH, MEM_SIZE - 5), WASI_EFAULT);
    fx_free(f);
}

static void test_new_errors(void **state)
{
    (void)state;
    struct keel_wasi *w = (void *)1;
    char err[256] = "";
    keel_wasi_preopen pre = { .host = "/nonexistent/keel-x", .guest = "/x" };
    keel_wasi_config cfg = { .preopens = &pre, .npreopens = 1,
                             .stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1 };
    assert_true(keel_wasi_new(&cfg, &w, err, sizeof err) < 0);
    assert_null(w);
    assert_non_null(strstr(err, "/nonexistent/keel-x"));
    const char *bad_env[] = { "NOEQUALS" };
    keel_wasi_config cfg2 = { .envc = 1, .envp = bad_env,
                              .stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1 };
    assert_int_equal(keel_wasi_new(&cfg2, &w, err, sizeof err), KEEL_EINVAL);
    keel_wasi_free(NULL);
}

static void test_fd_io_roundtrip(void **state)
{
    (void)state;
    fx *f = fx_new();
    uint32_t fd, n;
    assert_int_equal(g_open(f, FD_SB, 0, "file.txt", WASI_OFLAG_CREAT | WASI_OFLAG_EXCL,
                            RIGHTS_RW, 0, &fd), 0);
    assert_true(fd >= 5);
    /* two iovecs in one fd_write */
    g_str(f, G_BUF, "hello ");
    g_str(f, G_BUF + 100, "world");
    g_iov(f, G_IOV, 0, G_BUF, 6);
    g_iov(f, G_IOV, 1, G_BUF + 100, 5);
    assert_int_equal(Z(fd_write)(f->ctx, fd, G_IOV, 2, G_OUT), 0);
    assert_int_equal(g_u32(f, G_OUT), 11);
    assert_int_equal(Z(fd_tell)(f->ctx, fd, G_OUT), 0);
    assert_int_equal(g_u64(f, G_OUT), 11);
    assert_int_equal(Z(fd_seek)(f->ctx, fd, (uint64_t)-5, WASI_WHENCE_CUR, G_OUT), 0);
    assert_int_equal(g_u64(f, G_OUT), 6);
    assert_int_equal(Z(fd_seek)(f->ctx, fd, 0, WASI_WHENCE_SET, G_OUT), 0);
    /* read back into two iovecs */
    memset(f->mem.data + G_BUF, 0, 256);
    g_iov(f, G_IOV, 0, G_BUF, 3);
    g_iov(f, G_IOV, 1, G_BUF + 3, 100);
    assert_int_equal(Z(fd_read)(f->ctx, fd, G_IOV, 2, G_OUT), 0);
    assert_int_equal(g_u32(f, G_OUT), 11);
    assert_memory_equal(f->mem.data + G_BUF, "hello world", 11);
    /* at EOF: 0 bytes */
    assert_int_equal(Z(fd_read)(f->ctx, fd, G_IOV, 2, G_OUT), 0);
    assert_int_equal(g_u32(f, G_OUT), 0);
    /* pwrite/pread leave the position alone */
    g_str(f, G_BUF, "XYZ");
    g_iov(f, G_IOV, 0, G_BUF, 3);
    assert_int_equal(Z(fd_pwrite)(f->ctx, fd, G_IOV, 1, 100, G_OUT), 0);
    assert_int_equal(g_u32(f, G_OUT), 3);
    g_iov(f, G_IOV, 0, G_BUF + 200, 4);
    assert_int_equal(Z(fd_pread)(f->ctx, fd, G_IOV, 1, 2, G_OUT), 0);
    assert_int_equal(g_u32(f, G_OUT), 4);
    assert_memory_equal(f->mem.data + G_BUF + 200, "llo ", 4);
    assert_int_equal(Z(fd_tell)(f->ctx, fd, G_OUT), 0);
    assert_int_equal(g_u64(f, G_OUT), 11);
    assert_int_equal(Z(fd_seek)(f->ctx, fd, 0, WASI_WHENCE_END, G_OUT), 0);
    assert_int_equal(g_u64(f, G_OUT), 103);
    assert_int_equal(Z(fd_seek)(f->ctx, fd, 0, 7, G_OUT), WASI_EINVAL);
    assert_int_equal(Z(fd_seek)(f->ctx, fd, (uint64_t)-1000, WASI_WHENCE_SET, G_OUT), WASI_EINVAL);
    assert_int_equal(Z(fd_pread)(f->ctx, fd, G_IOV, 1, UINT64_MAX, G_OUT), WASI_EINVAL);
    assert_int_equal(Z(fd_datasync)(f->ctx, fd), 0);
    assert_int_equal(Z(fd_sync)(f->ctx, fd), 0);
    assert_int_equal(Z(fd_advise)(f->ctx, fd, 0, 0, WASI_ADVICE_SEQUENTIAL), 0);
    assert_int_equal(Z(fd_advise)(f->ctx, fd, 0, 0, 9), WASI_EINVAL);
    assert_int_equal(Z(fd_allocate)(f->ctx, fd, 0, 4096), 0);
    /* the host file agrees */
    struct stat st;
    assert_int_equal(stat(fx_path(f->sb, "file.txt"), &st), 0);
    assert_int_equal(st.st_size, 4096);
    char host[16] = "";
    int h = open(fx_path(f->sb, "file.txt"), O_RDONLY);
    assert_int_equal(pread(h, host, 11, 0), 11);
    assert_int_equal(pread(h, host + 11, 3, 100), 3);
    close(h);
    assert_memory_equal(host, "hello worldXYZ", 14);
    /* EXCL on an existing file */
    assert_int_equal(g_open(f, FD_SB, 0, "file.txt", WASI_OFLAG_CREAT | WASI_OFLAG_EXCL,
                            RIGHTS_RW, 0, NULL), WASI_EEXIST);
    /* append mode */
    uint32_t fa;
    assert_int_equal(g_open(f, FD_SB, 0, "file.txt", 0, RIGHTS_RW, WASI_FDFLAG_APPEND, &fa), 0);
    assert_int_equal(g_write(f, fa, "END", &n), 0);
    assert_int_equal(stat(fx_path(f->sb, "file.txt"), &st), 0);
    assert_int_equal(st.st_size, 4099);
    assert_int_equal(Z(fd_fdstat_get)(f->ctx, fa, G_STAT), 0);
    assert_int_equal(wasi_get_u16(f->mem.data + G_STAT + 2), WASI_FDFLAG_APPEND);
    assert_int_equal(Z(fd_fdstat_set_flags)(f->ctx, fa, 0), 0);
    assert_int_equal(Z(fd_fdstat_get)(f->ctx, fa, G_STAT), 0);
    assert_int_equal(wasi_get_u16(f->mem.data + G_STAT + 2), 0);
    assert_int_equal(Z(fd_fdstat_set_flags)(f->ctx, fa, WASI_FDFLAG_SYNC), WASI_ENOTSUP);
    /* reading a directory fd as a file */
    assert_int_equal(Z(fd_read)(f->ctx, FD_SB, G_IOV, 1, G_OUT), WASI_ENOTCAPABLE);
    assert_int_equal(Z(fd_close)(f->ctx, fd), 0);
    assert_int_equal(Z(fd_close)(f->ctx, fd), WASI_EBADF);
    assert_int_equal(Z(fd_write)(f->ctx, fd, G_IOV, 1, G_OUT), WASI_EBADF);
    fx_free(f);
}

static void test_stdio(void **state)
{
    (void)state;
    int in[2], out[2];
    assert_int_equal(pipe(in), 0);
    assert_int_equal(pipe(out), 0);
    fx *f = fx_new_full(in[0], out[1], -1, 0, NULL, 0, NULL);
    uint32_t n;
    assert_int_equal(g_write(f, 1, "to stdout", &n), 0);
    assert_int_equal(n, 9);
    char buf[16] = "";
    assert_int_equal(read(out[0], buf, sizeof buf), 9);
    assert_memory_equal(buf, "to stdout", 9);
    assert_int_equal(write(in[1], "input", 5), 5);
    g_iov(f, G_IOV, 0, G_BUF, 64);
    assert_int_equal(Z(fd_read)(f->ctx, 0, G_IOV, 1, G_OUT), 0);
    assert_int_equal(g_u32(f, G_OUT), 5);
    assert_memory_equal(f->mem.data + G_BUF, "input", 5);
    assert_int_equal(g_write(f, 2, "x", &n), WASI_EBADF);        /* not configured */
    assert_int_equal(Z(fd_seek)(f->ctx, 0, 0, WASI_WHENCE_SET, G_OUT), WASI_ENOTCAPABLE);
    assert_int_equal(Z(fd_filestat_set_size)(f->ctx, 1, 0), WASI_ENOTCAPABLE);
    assert_int_equal(Z(fd_fdstat_set_flags)(f->ctx, 0, WASI_FDFLAG_NONBLOCK), WASI_ENOTCAPABLE);
    fx_free(f);
    /* keel_wasi_free must not have closed the stdio host fds */
    assert_int_equal(write(out[1], "k", 1), 1);
    close(in[0]); close(in[1]); close(out[0]); close(out[1]);
}

/* Reads the whole directory with a buf_len-byte buffer, resuming from the
 * d_next of the last complete entry; returns how many entries were seen
 * and flags each "fNN" name in seen[]. */
static int readdir_all(fx *f, uint32_t fd, uint32_t buf_len, int *seen, int *dots)
{
    uint64_t cookie = 0;
    int count = 0;
    for (int rounds = 0; rounds < 10000; rounds++) {
        memset(f->mem.data + G_BUF, 0xAA, buf_len + 8);
        assert_int_equal(Z(fd_readdir)(f->ctx, fd, G_BUF, buf_len, cookie, G_OUT), 0);
        uint32_t used = g_u32(f, G_OUT);
        assert_true(used <= buf_len);
        assert_int_equal(f->mem.data[G_BUF + buf_len], 0xAA);   /* no overrun */
        uint32_t off = 0;
        int complete = 0;
        while (off + WASI_DIRENT_SIZE <= used) {
            uint8_t *d = f->mem.data + G_BUF + off;
            uint32_t namlen = wasi_get_u32(d + 16);
            if (off + WASI_DIRENT_SIZE + namlen > used)
                break;   /* truncated: resume from the previous cookie */
            char name[64] = "";
            memcpy(name, d + WASI_DIRENT_SIZE, namlen < 63 ? namlen : 63);
            int k;
            if (!strcmp(name, ".") || !strcmp(name, ".."))
                (*dots)++;
            else if (sscanf(name, "f%d", &k) == 1 && k >= 0 && k < 100) {
                assert_int_equal(d[20], WASI_FILETYPE_REGULAR_FILE);
                seen[k]++;
            } else if (!strcmp(name, "sub")) {
                assert_int_equal(d[20], WASI_FILETYPE_DIRECTORY);
            }
            cookie = wasi_get_u64(d);
            off += WASI_DIRENT_SIZE + namlen;
            count++;
            complete++;
        }
        if (used < buf_len)
            return count;
        assert_true(complete > 0);   /* buffer must fit at least one entry */
    }
    fail_msg("readdir did not terminate");
    return -1;
}

static void test_readdir_cookies(void **state)
{
    (void)state;
    fx *f = fx_new();
    char name[32];
    for (int i = 0; i < 60; i++) {
        snprintf(name, sizeof name, "f%d", i);
        fx_write_file(fx_path(f->sb, name), "x");
    }
    assert_int_equal(g_path3(f, Z(path_create_directory), FD_SB, "sub"), 0);
    uint32_t sizes[] = { 80, 200, 4096, 65536 };
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int seen[100] = { 0 }, dots = 0;
        int n = readdir_all(f, FD_SB, sizes[s], seen, &dots);
        assert_int_equal(n, 60 + 1 + 2);
        assert_int_equal(dots, 2);
        for (int i = 0; i < 60; i++)
            assert_int_equal(seen[i], 1);
    }
    /* a directory opened with path_open works the same */
    uint32_t dfd;
    assert_int_equal(g_open(f, FD_SB, 0, "sub", WASI_OFLAG_DIRECTORY,
                            WASI_RIGHT_FD_READDIR | WASI_RIGHT_PATH_OPEN, 0, &dfd), 0);
    int seen[100] = { 0 }, dots = 0;
    assert_int_equal(readdir_all(f, dfd, 128, seen, &dots), 2);
    /* readdir on a file */
    uint32_t ffd;
    assert_int_equal(g_open(f, FD_SB, 0, "f1", 0, RIGHTS_RD | WASI_RIGHT_FD_READDIR, 0, &ffd), 0);
    assert_int_equal(Z(fd_readdir)(f->ctx, ffd, G_BUF, 100, 0, G_OUT), WASI_ENOTCAPABLE);
    fx_free(f);
}

static void test_filestat_fdstat_rights(void **state)
{
    (void)state;
    fx *f = fx_new();
    uint32_t fd, n;
    assert_int_equal(g_open(f, FD_SB, 0, "s.bin", WASI_OFLAG_CREAT, RIGHTS_RW, 0, &fd), 0);
    char data[123];
    memset(data, 'q', sizeof data);
    memcpy(f->mem.data + G_BUF, data, sizeof data);
    g_iov(f, G_IOV, 0, G_BUF, sizeof data);
    assert_int_equal(Z(fd_write)(f->ctx, fd, G_IOV, 1, G_OUT), 0);
    struct stat st;
    assert_int_equal(stat(fx_path(f->sb, "s.bin"), &st), 0);
    assert_int_equal(Z(fd_filestat_get)(f->ctx, fd, G_STAT), 0);
    uint8_t *p = f->mem.data + G_STAT;
    assert_int_equal(wasi_get_u64(p + 0), (uint64_t)st.st_dev);
    assert_int_equal(wasi_get_u64(p + 8), (uint64_t)st.st_ino);
    assert_int_equal(p[16], WASI_FILETYPE_REGULAR_FILE);
    assert_int_equal(wasi_get_u64(p + 24), 1);
    assert_int_equal(wasi_get_u64(p + 32), 123);
    assert_int_equal(wasi_get_u64(p + 48),
                     (uint64_t)st.st_mtim.tv_sec * 1000000000u + (uint64_t)st.st_mtim.tv_nsec);
    /* set times, check on the host and through path_filestat_get */
    uint64_t t = UINT64_C(1000) * 1000000000u + 5;
    assert_int_equal(Z(fd_filestat_set_times)(f->ctx, fd, t, t + 1000000000u,
                                              WASI_FSTFLAG_ATIM | WASI_FSTFLAG_MTIM), 0);
    assert_int_equal(stat(fx_path(f->sb, "s.bin"), &st), 0);
    assert_int_equal(st.st_atim.tv_sec, 1000);
    assert_int_equal(st.st_mtim.tv_sec, 1001);
    assert_int_equal(Z(fd_filestat_set_times)(f->ctx, fd, 0, 0,
                                              WASI_FSTFLAG_ATIM | WASI_FSTFLAG_ATIM_NOW), WASI_EINVAL);
    n = g_str(f, G_PATH, "s.bin");
    assert_int_equal(Z(path_filestat_get)(f->ctx, FD_SB, 0, G_PATH, n, G_STAT), 0);
    assert_int_equal(wasi_get_u64(p + 48), t + 1000000000u);
    assert_int_equal(wasi_get_u64(p + 40), t);
    assert_int_equal(Z(path_filestat_set_times)(f->ctx, FD_SB, 0, G_PATH, n, 0, 7ull * 1000000000u,
                                                WASI_FSTFLAG_MTIM), 0);
    assert_int_equal(stat(fx_path(f->sb, "s.bin"), &st), 0);
    assert_int_equal(st.st_mtim.tv_sec, 7);
    assert_int_equal(st.st_atim.tv_sec, 1000);   /* omitted, unchanged */
    /* set_size */
    assert_int_equal(Z(fd_filestat_set_size)(f->ctx, fd, 10), 0);
    assert_int_equal(stat(fx_path(f->sb, "s.bin"), &st), 0);
    assert_int_equal(st.st_size, 10);
    /* fdstat and rights: drop FD_WRITE, cannot regain it */
    assert_int_equal(Z(fd_fdstat_get)(f->ctx, fd, G_STAT), 0);
    assert_int_equal(p[0], WASI_FILETYPE_REGULAR_FILE);
    assert_int_equal(wasi_get_u64(p + 8), RIGHTS_RW);
    assert_int_equal(Z(fd_fdstat_set_rights)(f->ctx, fd, RIGHTS_RD, 0), 0);
    assert_int_equal(g_write(f, fd, "x", &n), WASI_ENOTCAPABLE);
    assert_int_equal(Z(fd_filestat_set_size)(f->ctx, fd, 0), WASI_ENOTCAPABLE);
    assert_int_equal(Z(fd_fdstat_set_rights)(f->ctx, fd, RIGHTS_RW, 0), WASI_ENOTCAPABLE);
    assert_int_equal(Z(fd_fdstat_get)(f->ctx, fd, G_STAT), 0);
    assert_int_equal(wasi_get_u64(p + 8), RIGHTS_RD);
    /* a preopen is a directory with path rights */
    assert_int_equal(Z(fd_fdstat_get)(f->ctx, FD_SB, G_STAT), 0);
    assert_int_equal(p[0], WASI_FILETYPE_DIRECTORY);
    assert_true(wasi_get_u64(p + 8) & WASI_RIGHT_PATH_OPEN);
    assert_true(wasi_get_u64(p + 16) & WASI_RIGHT_FD_WRITE);
    /* rights not granted by the directory are not granted to the file */
    uint32_t fd2;
    assert_int_equal(g_open(f, FD_SB, 0, "s.bin", 0, UINT64_MAX, 0, &fd2), 0);
    assert_int_equal(Z(fd_fdstat_get)(f->ctx, fd2, G_STAT), 0);
    assert_int_equal(wasi_get_u64(p + 8), RIGHTS_RW);
    fx_free(f);
}

static void test_renumber(void **state)
{
    (void)state;
    fx *f = fx_new();
    uint32_t a, b, n;
    assert_int_equal(g_open(f, FD_SB, 0, "a", WASI_OFLAG_CREAT, RIGHTS_RW, 0, &a), 0);
    assert_int_equal(g_open(f, FD_SB, 0, "b", WASI_OFLAG_CREAT, RIGHTS_RW, 0, &b), 0);
    assert_int_equal(Z(fd_renumber)(f->ctx, a, b), 0);
    assert_int_equal(g_write(f, a, "x", &n), WASI_EBADF);
    assert_int_equal(g_write(f, b, "into-a", &n), 0);
    struct stat st;
    assert_int_equal(stat(fx_path(f->sb, "a"), &st), 0);
    assert_int_equal(st.st_size, 6);
    assert_int_equal(stat(fx_path(f->sb, "b"), &st), 0);
    assert_int_equal(st.st_size, 0);
    assert_int_equal(Z(fd_renumber)(f->ctx, b, 500), WASI_EBADF);
    assert_int_equal(Z(fd_renumber)(f->ctx, 77, b), WASI_EBADF);
    assert_int_equal(Z(fd_renumber)(f->ctx, b, b), 0);
    /* the freed slot is reused */
    uint32_t c;
    assert_int_equal(g_open(f, FD_SB, 0, "a", 0, RIGHTS_RD, 0, &c), 0);
    assert_int_equal(c, a);
    fx_free(f);
}

static void test_prestat_and_misc(void **state)
{
    (void)state;
    fx *f = fx_new();
    assert_int_equal(Z(fd_prestat_get)(f->ctx, FD_SB, G_STAT), 0);
    assert_int_equal(f->mem.data[G_STAT], 0);
    assert_int_equal(g_u32(f, G_STAT + 4), 8);
    assert_int_equal(Z(fd_prestat_dir_name)(f->ctx, FD_SB, G_BUF, 8), 0);
    assert_memory_equal(f->mem.data + G_BUF, "/sandbox", 8);
    assert_int_equal(Z(fd_prestat_dir_name)(f->ctx, FD_SB, G_BUF, 3), WASI_ENAMETOOLONG);
    assert_int_equal(Z(fd_prestat_get)(f->ctx, FD_RO, G_STAT), 0);
    assert_int_equal(g_u32(f, G_STAT + 4), 3);
    assert_int_equal(Z(fd_prestat_get)(f->ctx, 5, G_STAT), WASI_EBADF);
    assert_int_equal(Z(fd_prestat_get)(f->ctx, 0, G_STAT), WASI_EBADF);
    /* clocks */
    assert_int_equal(Z(clock_time_get)(f->ctx, WASI_CLOCK_MONOTONIC, 1, G_OUT), 0);
    uint64_t t1 = g_u64(f, G_OUT);
    assert_int_equal(Z(clock_time_get)(f->ctx, WASI_CLOCK_MONOTONIC, 1, G_OUT), 0);
    assert_true(g_u64(f, G_OUT) >= t1);
    assert_int_equal(Z(clock_time_get)(f->ctx, WASI_CLOCK_REALTIME, 1, G_OUT), 0);
    assert_true(g_u64(f, G_OUT) > UINT64_C(1600000000) * 1000000000u);
    for (uint32_t id = 0; id < 4; id++) {
        assert_int_equal(Z(clock_time_get)(f->ctx, id, 0, G_OUT), 0);
        assert_int_equal(Z(clock_res_get)(f->ctx, id, G_OUT), 0);
        assert_true(g_u64(f, G_OUT) > 0);
    }
    assert_int_equal(Z(clock_time_get)(f->ctx, 4, 0, G_OUT), WASI_EINVAL);
    assert_int_equal(Z(clock_res_get)(f->ctx, 99, G_OUT), WASI_EINVAL);
    /* random */
    memset(f->mem.data + G_BUF, 0, 4096);
    assert_int_equal(Z(random_get)(f->ctx, G_BUF, 4096), 0);
    int nonzero = 0;
    for (int i = 0; i < 4096; i++)
        nonzero += f->mem.data[G_BUF + i] != 0;
    assert_true(nonzero > 3000);
    assert_int_equal(Z(random_get)(f->ctx, G_BUF, 0), 0);
    /* sched, proc_raise, sockets */
    assert_int_equal(Z(sched_yield)(f->ctx), 0);
    assert_int_equal(Z(proc_raise)(f->ctx, 9), WASI_ENOSYS);
    assert_int_equal(Z(sock_accept)(f->ctx, FD_SB, 0, G_OUT), WASI_ENOTSUP);
    assert_int_equal(Z(sock_accept)(f->ctx, 99, 0, G_OUT), WASI_EBADF);
    assert_int_equal(Z(sock_recv)(f->ctx, FD_SB, G_IOV, 1, 0, G_OUT, G_OUT2), WASI_ENOTSUP);
    assert_int_equal(Z(sock_send)(f->ctx, 99, G_IOV, 1, 0, G_OUT), WASI_EBADF);
    assert_int_equal(Z(sock_shutdown)(f->ctx, FD_SB, 3), WASI_ENOTSUP);
    /* no WASI state at all */
    keel_host_ctx bare = { .mem = &f->mem };
    assert_int_equal(Z(args_sizes_get)((void *)&bare, G_OUT, G_OUT2), WASI_ENOSYS);
    assert_int_equal(Z(fd_write)((void *)&bare, 1, G_IOV, 1, G_OUT), WASI_EBADF);
    fx_free(f);
}

static void test_fd_limit(void **state)
{
    (void)state;
    fx *f = fx_new();
    fx_write_file(fx_path(f->sb, "x"), "x");
    uint32_t fd, opened = 0, rc;
    while ((rc = g_open(f, FD_SB, 0, "x", 0, RIGHTS_RD, 0, &fd)) == 0)
        opened++;
    assert_int_equal(rc, WASI_EMFILE);
    assert_int_equal(opened, KEEL_WASI_MAX_FDS - 5);
    assert_int_equal(Z(fd_close)(f->ctx, 600), 0);
    assert_int_equal(g_open(f, FD_SB, 0, "x", 0, RIGHTS_RD, 0, &fd), 0);
    assert_int_equal(fd, 600);
    fx_free(f);   /* closes ~1000 host fds */
}

/* Writes a clock subscription at guest address a. */
static void sub_clock(fx *f, uint32_t a, uint64_t userdata, uint32_t id, uint64_t timeout,
                      uint16_t flags)
{
    uint8_t *p = f->mem.data + a;
    memset(p, 0, WASI_SUBSCRIPTION_SIZE);
    wasi_put_u64(p, userdata);
    p[8] = WASI_EVENTTYPE_CLOCK;
    wasi_put_u32(p + 16, id);
    wasi_put_u64(p + 24, timeout);
    wasi_put_u16(p + 40, flags);
}

static void sub_fd(fx *f, uint32_t a, uint64_t userdata, uint8_t type, uint32_t fd)
{
    uint8_t *p = f->mem.data + a;
    memset(p, 0, WASI_SUBSCRIPTION_SIZE);
    wasi_put_u64(p, userdata);
    p[8] = type;
    wasi_put_u32(p + 16, fd);
}

#define G_SUBS 0x20000u
#define G_EVS  0x30000u

static void test_poll_clock(void **state)
{
    (void)state;
    fx *f = fx_new();
    sub_clock(f, G_SUBS, 0x1234, WASI_CLOCK_MONOTONIC, 10 * 1000000u, 0);
    uint64_t t0 = mono_ns();
    assert_int_equal(Z(poll_oneoff)(f->ctx, G_SUBS, G_EVS, 1, G_OUT), 0);
    uint64_t dt = mono_ns() - t0;
    assert_int_equal(g_u32(f, G_OUT), 1);
    assert_int_equal(g_u64(f, G_EVS), 0x1234);
    assert_int_equal(wasi_get_u16(f->mem.data + G_EVS + 8), 0);
    assert_int_equal(f->mem.data[G_EVS + 10], WASI_EVENTTYPE_CLOCK);
    assert_true(dt >= 10 * 1000000u);
    assert_true(dt < 2000 * 1000000u);
    /* absolute realtime in the past: immediately */
    sub_clock(f, G_SUBS, 1, WASI_CLOCK_REALTIME, 1, WASI_SUBCLOCK_ABSTIME);
    assert_int_equal(Z(poll_oneoff)(f->ctx, G_SUBS, G_EVS, 1, G_OUT), 0);
    assert_int_equal(g_u32(f, G_OUT), 1);
    /* absolute monotonic 20 ms ahead */
    sub_clock(f, G_SUBS, 2, WASI_CLOCK_MONOTONIC, mono_ns() + 20 * 1000000u,
              WASI_SUBCLOCK_ABSTIME);
    t0 = mono_ns();
    assert_int_equal(Z(poll_oneoff)(f->ctx, G_SUBS, G_EVS, 1, G_OUT), 0);
    assert_true(mono_ns() - t0 >= 15 * 1000000u);
    /* zero subscriptions, bad event type, cputime clock */
    assert_int_equal(Z(poll_oneoff)(f->ctx, G_SUBS, G_EVS, 0, G_OUT), WASI_EINVAL);
    sub_clock(f, G_SUBS, 3, WASI_CLOCK_PROCESS_CPUTIME, 1000, 0);
    assert_int_equal(Z(poll_oneoff)(f->ctx, G_SUBS, G_EVS, 1, G_OUT), 0);
    assert_int_equal(wasi_get_u16(f->mem.data + G_EVS + 8), WASI_EINVAL);
    fx_free(f);
}

static void test_poll_fds(void **state)
{
    (void)state;
    int in[2];
    assert_int_equal(pipe(in), 0);
    fx *f = fx_new_full(in[0], -1, -1, 0, NULL, 0, NULL);
    /* nothing to read yet: the 30 ms clock fires */
    sub_fd(f, G_SUBS, 10, WASI_EVENTTYPE_FD_READ, 0);
    sub_clock(f, G_SUBS + 48, 11, WASI_CLOCK_MONOTONIC, 30 * 1000000u, 0);
    assert_int_equal(Z(poll_oneoff)(f->ctx, G_SUBS, G_EVS, 2, G_OUT), 0);
    assert_int_equal(g_u32(f, G_OUT), 1);
    assert_int_equal(g_u64(f, G_EVS), 11);
    /* data in the pipe: fd_read fires with nbytes */
    assert_int_equal(write(in[1], "abc", 3), 3);
    sub_clock(f, G_SUBS + 48, 11, WASI_CLOCK_MONOTONIC, 5000 * 1000000ull, 0);
    uint64_t t0 = mono_ns();
    assert_int_equal(Z(poll_oneoff)(f->ctx, G_SUBS, G_EVS, 2, G_OUT), 0);
    assert_true(mono_ns() - t0 < 1000 * 1000000ull);
    assert_int_equal(g_u32(f, G_OUT), 1);
    assert_int_equal(g_u64(f, G_EVS), 10);
    assert_int_equal(f->mem.data[G_EVS + 10], WASI_EVENTTYPE_FD_READ);
    assert_int_equal(g_u64(f, G_EVS + 16), 3);
    /* regular files are always writable; a bad fd is an error event */
    uint32_t fd;
    assert_int_equal(g_open(f, FD_SB, 0, "p", WASI_OFLAG_CREAT, RIGHTS_RW, 0, &fd), 0);
    sub_fd(f, G_SUBS, 20, WASI_EVENTTYPE_FD_WRITE, fd);
    sub_fd(f, G_SUBS + 48, 21, WASI_EVENTTYPE_FD_READ, 99);
    assert_int_equal(Z(poll_oneoff)(f->ctx, G_SUBS, G_EVS, 2, G_OUT), 0);
    assert_int_equal(g_u32(f, G_OUT), 2);
    assert_int_equal(g_u64(f, G_EVS), 20);
    assert_int_equal(wasi_get_u16(f->mem.data + G_EVS + 8), 0);
    assert_int_equal(g_u64(f, G_EVS + 32), 21);
    assert_int_equal(wasi_get_u16(f->mem.data + G_EVS + 32 + 8), WASI_EBADF);
    /* hangup */
    close(in[1]);
    char tmp[8];
    assert_int_equal(read(in[0], tmp, sizeof tmp), 3);
    sub_fd(f, G_SUBS, 30, WASI_EVENTTYPE_FD_READ, 0);
    assert_int_equal(Z(poll_oneoff)(f->ctx, G_SUBS, G_EVS, 1, G_OUT), 0);
    assert_int_equal(wasi_get_u16(f->mem.data + G_EVS + 24), WASI_EVENTRW_HANGUP);
    fx_free(f);
    close(in[0]);
}

/* --- through the real runtime: proc_exit and deadlines --- */

typedef struct call { fx *f; uint32_t arg; } call;

static void call_exit(void *p)
{
    call *c = p;
    Z(proc_exit)(c->f->ctx, c->arg);
    fail_msg("proc_exit returned");
}

static void call_poll_long(void *p)
{
    call *c = p;
    sub_clock(c->f, G_SUBS, 1, WASI_CLOCK_MONOTONIC, 10ull * 1000000000u, 0);
    Z(poll_oneoff)(c->f->ctx, G_SUBS, G_EVS, 1, G_OUT);
    fail_msg("poll_oneoff outlived the deadline");
}

static void call_read_blocked(void *p)
{
    call *c = p;
    g_iov(c->f, G_IOV, 0, G_BUF, 16);
    Z(fd_read)(c->f->ctx, 0, G_IOV, 1, G_OUT);
    fail_msg("fd_read outlived the deadline");
}

static void test_proc_exit_and_deadline(void **state)
{
    (void)state;
    assert_int_equal(keel_rt_init(), 0);
    int in[2];
    assert_int_equal(pipe(in), 0);
    fx *f = fx_new_full(in[0], -1, -1, 0, NULL, 0, NULL);
    call c = { f, 7 };
    keel_rt_outcome out;
    keel_rt_invoke(call_exit, &c, NULL, &out);
    assert_int_equal(out.end, KEEL_RT_EXITED);
    assert_int_equal(out.exit_code, 7);

    keel_rt_limits lim = { .deadline_ns = keel_rt_now_ns() + 50 * 1000000u };
    uint64_t t0 = mono_ns();
    keel_rt_invoke(call_poll_long, &c, &lim, &out);
    uint64_t dt = mono_ns() - t0;
    assert_int_equal(out.end, KEEL_RT_TRAPPED);
    assert_int_equal(out.trap, KEEL_TRAP_DEADLINE);
    assert_true(dt >= 40 * 1000000u && dt < 2000 * 1000000u);

    lim.deadline_ns = keel_rt_now_ns() + 50 * 1000000u;
    t0 = mono_ns();
    keel_rt_invoke(call_read_blocked, &c, &lim, &out);
    assert_int_equal(out.end, KEEL_RT_TRAPPED);
    assert_int_equal(out.trap, KEEL_TRAP_DEADLINE);
    assert_true(mono_ns() - t0 < 2000 * 1000000u);
    fx_free(f);
    close(in[0]);
    close(in[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_table, fx_teardown),
        cmocka_unit_test_teardown(test_args_env, fx_teardown),
        cmocka_unit_test_teardown(test_new_errors, fx_teardown),
        cmocka_unit_test_teardown(test_fd_io_roundtrip, fx_teardown),
        cmocka_unit_test_teardown(test_stdio, fx_teardown),
        cmocka_unit_test_teardown(test_readdir_cookies, fx_teardown),
        cmocka_unit_test_teardown(test_filestat_fdstat_rights, fx_teardown),
        cmocka_unit_test_teardown(test_renumber, fx_teardown),
        cmocka_unit_test_teardown(test_prestat_and_misc, fx_teardown),
        cmocka_unit_test_teardown(test_fd_limit, fx_teardown),
        cmocka_unit_test_teardown(test_poll_clock, fx_teardown),
        cmocka_unit_test_teardown(test_poll_fds, fx_teardown),
        cmocka_unit_test_teardown(test_proc_exit_and_deadline, fx_teardown),
    };
    return cmocka_run_group_tests_name("wasi", tests, NULL, NULL);
}
