/* test_wasi_sandbox.c — the WASI capability boundary: path escapes ("..",
 * absolute paths, guest-made symlinks to "/" and "..", renames of links)
 * never reach <top>/outside; read-only preopens refuse every write; every
 * host function answers EFAULT for out-of-range guest pointers; plus the
 * ordinary path_* operations inside the sandbox. */
#include "test_wasi_fixture.h"

#define Z(name) Z_wasi_snapshot_preview1Z_##name

static uint32_t stat_path(fx *f, uint32_t fd, uint32_t flags, const char *path)
{
    uint32_t n = g_str(f, G_PATH, path);
    return Z(path_filestat_get)(f->ctx, fd, flags, G_PATH, n, G_STAT);
}

static void test_escapes(void **state)
{
    (void)state;
    fx *f = fx_new();
    const uint32_t F = WASI_LOOKUP_SYMLINK_FOLLOW;
    uint32_t fd;
    /* "..", absolute, and ".." hidden inside the path */
    assert_int_equal(g_open(f, FD_SB, F, "../outside/secret", 0, RIGHTS_RD, 0, &fd), WASI_ENOTCAPABLE);
    assert_int_equal(g_open(f, FD_SB, F, "/etc/passwd", 0, RIGHTS_RD, 0, &fd), WASI_ENOTCAPABLE);
    assert_int_equal(g_open(f, FD_SB, F, "..", WASI_OFLAG_DIRECTORY, RIGHTS_RD, 0, &fd), WASI_ENOTCAPABLE);
    assert_int_equal(g_path3(f, Z(path_create_directory), FD_SB, "sub"), 0);
    assert_int_equal(g_open(f, FD_SB, F, "sub/../../outside/secret", 0, RIGHTS_RD, 0, &fd),
                     WASI_ENOTCAPABLE);
    assert_int_equal(g_open(f, FD_SB, F, "sub/../sub", WASI_OFLAG_DIRECTORY, RIGHTS_RD, 0, &fd), 0);
    /* the opened subdirectory cannot climb back out either */
    assert_int_equal(g_open(f, fd, F, "../../outside/secret", 0, RIGHTS_RD, 0, NULL), WASI_ENOTCAPABLE);
    assert_int_equal(g_open(f, fd, F, "..", WASI_OFLAG_DIRECTORY, RIGHTS_RD, 0, NULL), WASI_ENOTCAPABLE);

    /* guest-created symlinks: the strings are stored, following is confined */
    assert_int_equal(g_symlink(f, "/", FD_SB, "l_root"), 0);
    assert_int_equal(g_symlink(f, "..", FD_SB, "l_up"), 0);
    assert_int_equal(g_symlink(f, "../outside/secret", FD_SB, "l_secret"), 0);
    assert_int_equal(g_symlink(f, "/proc/self/root", FD_SB, "l_proc"), 0);
    assert_int_equal(g_open(f, FD_SB, F, "l_root/etc/passwd", 0, RIGHTS_RD, 0, NULL), WASI_ENOTCAPABLE);
    assert_int_equal(g_open(f, FD_SB, F, "l_root", WASI_OFLAG_DIRECTORY, RIGHTS_RD, 0, NULL),
                     WASI_ENOTCAPABLE);
    assert_int_equal(g_open(f, FD_SB, F, "l_up/outside/secret", 0, RIGHTS_RD, 0, NULL), WASI_ENOTCAPABLE);
    assert_int_equal(g_open(f, FD_SB, F, "l_secret", 0, RIGHTS_RD, 0, NULL), WASI_ENOTCAPABLE);
    assert_int_equal(g_open(f, FD_SB, F, "l_proc/etc/passwd", 0, RIGHTS_RD, 0, NULL), WASI_ENOTCAPABLE);
    /* without SYMLINK_FOLLOW the last component is never followed */
    assert_int_equal(g_open(f, FD_SB, 0, "l_secret", 0, RIGHTS_RD, 0, NULL), WASI_ELOOP);
    /* writes through links: O_CREAT through a dangling-outside link */
    assert_int_equal(g_symlink(f, "../outside/new", FD_SB, "l_new"), 0);
    assert_int_equal(g_open(f, FD_SB, F, "l_new", WASI_OFLAG_CREAT, RIGHTS_RW, 0, NULL), WASI_ENOTCAPABLE);
    assert_int_equal(g_open(f, FD_SB, 0, "l_new", WASI_OFLAG_CREAT, RIGHTS_RW, 0, NULL), WASI_ELOOP);
    /* stat: following escapes, lstat of the link itself works */
    assert_int_equal(stat_path(f, FD_SB, F, "l_up"), WASI_ENOTCAPABLE);
    assert_int_equal(stat_path(f, FD_SB, F, "l_up/outside"), WASI_ENOTCAPABLE);
    assert_int_equal(stat_path(f, FD_SB, 0, "l_up"), 0);
    assert_int_equal(f->mem.data[G_STAT + 16], WASI_FILETYPE_SYMBOLIC_LINK);
    assert_int_equal(stat_path(f, FD_SB, F, "/etc"), WASI_ENOTCAPABLE);
    /* readlink returns the stored string */
    uint32_t n = g_str(f, G_PATH, "l_root");
    assert_int_equal(Z(path_readlink)(f->ctx, FD_SB, G_PATH, n, G_BUF, 64, G_OUT), 0);
    assert_int_equal(g_u32(f, G_OUT), 1);
    assert_int_equal(f->mem.data[G_BUF], '/');

    /* namespace operations through escapes */
    assert_int_equal(g_path3(f, Z(path_create_directory), FD_SB, "../outside/newdir"), WASI_ENOTCAPABLE);
    assert_int_equal(g_path3(f, Z(path_create_directory), FD_SB, "l_up/outside/newdir"), WASI_ENOTCAPABLE);
    assert_int_equal(g_path3(f, Z(path_unlink_file), FD_SB, "l_up/outside/secret"), WASI_ENOTCAPABLE);
    assert_int_equal(g_path3(f, Z(path_unlink_file), FD_SB, "/tmp/x"), WASI_ENOTCAPABLE);
    assert_int_equal(g_path3(f, Z(path_remove_directory), FD_SB, "../outside"), WASI_ENOTCAPABLE);
    assert_int_equal(g_path3(f, Z(path_remove_directory), FD_SB, ".."), WASI_ENOTEMPTY);
    assert_int_equal(g_rename(f, FD_SB, "../outside/secret", FD_SB, "stolen"), WASI_ENOTCAPABLE);
    assert_int_equal(g_rename(f, FD_SB, "sub", FD_SB, "../outside/sub"), WASI_ENOTCAPABLE);
    assert_int_equal(g_symlink(f, "x", FD_SB, "../outside/link"), WASI_ENOTCAPABLE);
    uint32_t a = g_str(f, G_PATH, "l_secret"), b = g_str(f, G_PATH2, "hard");
    assert_int_equal(Z(path_link)(f->ctx, FD_SB, F, G_PATH, a, FD_SB, G_PATH2, b), WASI_ENOTCAPABLE);
    a = g_str(f, G_PATH, "../outside/secret");
    assert_int_equal(Z(path_link)(f->ctx, FD_SB, 0, G_PATH, a, FD_SB, G_PATH2, b), WASI_ENOTCAPABLE);
    a = g_str(f, G_PATH, "l_secret");
    assert_int_equal(Z(path_filestat_set_times)(f->ctx, FD_SB, F, G_PATH, a, 0, 0,
                                                WASI_FSTFLAG_MTIM), WASI_ENOTCAPABLE);
    /* the link itself may be touched (nofollow): the target must not change */
    assert_int_equal(Z(path_filestat_set_times)(f->ctx, FD_SB, 0, G_PATH, a, 0, 0,
                                                WASI_FSTFLAG_MTIM), 0);
    struct stat st;
    assert_int_equal(stat(fx_path(f->outside, "secret"), &st), 0);
    assert_true(st.st_mtim.tv_sec > 1000);

    /* rename a symlink over a directory: refused, the directory survives */
    assert_int_equal(g_symlink(f, "../outside", FD_SB, "l_dir"), 0);
    assert_int_equal(g_path3(f, Z(path_create_directory), FD_SB, "d"), 0);
    uint32_t rc = g_rename(f, FD_SB, "l_dir", FD_SB, "d");
    assert_true(rc == WASI_ENOTDIR || rc == WASI_EISDIR);
    assert_int_equal(stat(fx_path(f->sb, "d"), &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    /* renaming the link is fine, it still cannot be followed out */
    assert_int_equal(g_rename(f, FD_SB, "l_dir", FD_SB, "moved"), 0);
    assert_int_equal(g_open(f, FD_SB, F, "moved/secret", 0, RIGHTS_RD, 0, NULL), WASI_ENOTCAPABLE);
    /* one level down the same string stays inside (and names nothing) */
    assert_int_equal(g_rename(f, FD_SB, "moved", FD_SB, "sub/moved"), 0);
    assert_int_equal(g_open(f, FD_SB, F, "sub/moved/secret", 0, RIGHTS_RD, 0, NULL), WASI_ENOENT);
    /* and a directory renamed over by a link target leaves outside alone */
    assert_int_equal(g_path3(f, Z(path_remove_directory), FD_SB, "d"), 0);
    assert_int_equal(g_rename(f, FD_SB, "sub/moved", FD_SB, "d"), 0);
    assert_int_equal(g_path3(f, Z(path_create_directory), FD_SB, "d/x"), WASI_ENOTCAPABLE);
    assert_int_equal(g_open(f, FD_SB, F, "d/secret", 0, RIGHTS_RD, 0, NULL), WASI_ENOTCAPABLE);
    assert_int_equal(g_path3(f, Z(path_unlink_file), FD_SB, "d/secret"), WASI_ENOTCAPABLE);
    assert_int_equal(g_path3(f, Z(path_unlink_file), FD_SB, "d"), 0);   /* removes the link only */
    fx_outside_untouched(f);
    fx_free(f);
}

static void test_readonly(void **state)
{
    (void)state;
    fx *f = fx_new();
    uint32_t fd, n;
    /* reading works */
    assert_int_equal(g_open(f, FD_RO, 0, "data", 0, RIGHTS_RD, 0, &fd), 0);
    g_iov(f, G_IOV, 0, G_BUF, 64);
    assert_int_equal(Z(fd_read)(f->ctx, fd, G_IOV, 1, G_OUT), 0);
    assert_int_equal(g_u32(f, G_OUT), 14);
    /* asking for write rights gives a read-only fd */
    uint32_t wfd;
    assert_int_equal(g_open(f, FD_RO, 0, "data", 0, RIGHTS_RW, 0, &wfd), 0);
    assert_int_equal(g_write(f, wfd, "overwrite", &n), WASI_ENOTCAPABLE);
    assert_int_equal(Z(fd_pwrite)(f->ctx, wfd, G_IOV, 1, 0, G_OUT), WASI_ENOTCAPABLE);
    assert_int_equal(Z(fd_filestat_set_size)(f->ctx, wfd, 0), WASI_ENOTCAPABLE);
    assert_int_equal(Z(fd_allocate)(f->ctx, wfd, 0, 100), WASI_ENOTCAPABLE);
    assert_int_equal(Z(fd_filestat_set_times)(f->ctx, wfd, 0, 0, WASI_FSTFLAG_MTIM_NOW),
                     WASI_ENOTCAPABLE);
    assert_int_equal(Z(fd_fdstat_get)(f->ctx, wfd, G_STAT), 0);
    assert_false(g_u64(f, G_STAT + 8) & WASI_RIGHT_FD_WRITE);
    assert_int_equal(Z(fd_fdstat_get)(f->ctx, FD_RO, G_STAT), 0);
    assert_false(g_u64(f, G_STAT + 8) & WASI_RIGHT_PATH_CREATE_FILE);
    assert_false(g_u64(f, G_STAT + 16) & WASI_RIGHT_FD_WRITE);
    /* creating, truncating, appending */
    assert_int_equal(g_open(f, FD_RO, 0, "new", WASI_OFLAG_CREAT, RIGHTS_RW, 0, NULL), WASI_ENOTCAPABLE);
    assert_int_equal(g_open(f, FD_RO, 0, "data", WASI_OFLAG_TRUNC, RIGHTS_RW, 0, NULL), WASI_ENOTCAPABLE);
    assert_int_equal(g_open(f, FD_RO, 0, "data", 0, RIGHTS_RW, WASI_FDFLAG_APPEND, NULL),
                     WASI_ENOTCAPABLE);
    /* namespace changes */
    assert_int_equal(g_path3(f, Z(path_create_directory), FD_RO, "dir"), WASI_ENOTCAPABLE);
    assert_int_equal(g_path3(f, Z(path_unlink_file), FD_RO, "data"), WASI_ENOTCAPABLE);
    assert_int_equal(g_path3(f, Z(path_remove_directory), FD_RO, "data"), WASI_ENOTCAPABLE);
    assert_int_equal(g_rename(f, FD_RO, "data", FD_RO, "data2"), WASI_ENOTCAPABLE);
    assert_int_equal(g_rename(f, FD_RO, "data", FD_SB, "moved"), WASI_ENOTCAPABLE);
    assert_int_equal(g_rename(f, FD_SB, "x", FD_RO, "data"), WASI_ENOTCAPABLE);
    assert_int_equal(g_symlink(f, "data", FD_RO, "link"), WASI_ENOTCAPABLE);
    uint32_t a = g_str(f, G_PATH, "data"), b = g_str(f, G_PATH2, "hard");
    assert_int_equal(Z(path_link)(f->ctx, FD_RO, 0, G_PATH, a, FD_RO, G_PATH2, b), WASI_ENOTCAPABLE);
    assert_int_equal(Z(path_link)(f->ctx, FD_RO, 0, G_PATH, a, FD_SB, G_PATH2, b), WASI_ENOTCAPABLE);
    assert_int_equal(Z(path_filestat_set_times)(f->ctx, FD_RO, 0, G_PATH, a, 0, 0,
                                                WASI_FSTFLAG_MTIM), WASI_ENOTCAPABLE);
    /* a subdirectory opened under it is read-only too */
    assert_int_equal(mkdir(fx_path(f->ro, "sub"), 0755), 0);
    uint32_t sub;
    assert_int_equal(g_open(f, FD_RO, 0, "sub", WASI_OFLAG_DIRECTORY, UINT64_MAX, 0, &sub), 0);
    assert_int_equal(g_open(f, sub, 0, "new", WASI_OFLAG_CREAT, RIGHTS_RW, 0, NULL), WASI_ENOTCAPABLE);
    assert_int_equal(g_path3(f, Z(path_create_directory), sub, "x"), WASI_ENOTCAPABLE);
    /* nothing changed on the host */
    char buf[32] = "";
    FILE *h = fopen(fx_path(f->ro, "data"), "r");
    assert_non_null(h);
    assert_non_null(fgets(buf, sizeof buf, h));
    fclose(h);
    assert_string_equal(buf, "read only data");
    struct stat st;
    assert_int_equal(stat(fx_path(f->ro, "new"), &st), -1);
    assert_int_equal(stat(fx_path(f->ro, "dir"), &st), -1);
    assert_int_equal(stat(fx_path(f->sb, "moved"), &st), -1);
    fx_free(f);
}

static void test_path_ops(void **state)
{
    (void)state;
    fx *f = fx_new();
    uint32_t fd, n;
    assert_int_equal(g_path3(f, Z(path_create_directory), FD_SB, "dir"), 0);
    assert_int_equal(g_path3(f, Z(path_create_directory), FD_SB, "dir"), WASI_EEXIST);
    assert_int_equal(g_path3(f, Z(path_create_directory), FD_SB, "dir/nested/"), 0);
    assert_int_equal(g_path3(f, Z(path_create_directory), FD_SB, "."), WASI_EEXIST);
    assert_int_equal(g_path3(f, Z(path_create_directory), FD_SB, ""), WASI_ENOENT);
    assert_int_equal(g_path3(f, Z(path_create_directory), FD_SB, "missing/x"), WASI_ENOENT);
    assert_int_equal(g_open(f, FD_SB, 0, "dir/f", WASI_OFLAG_CREAT, RIGHTS_RW, 0, &fd), 0);
    assert_int_equal(g_write(f, fd, "12345", &n), 0);
    assert_int_equal(g_open(f, FD_SB, 0, "dir/f", WASI_OFLAG_DIRECTORY, RIGHTS_RD, 0, NULL),
                     WASI_ENOTDIR);
    assert_int_equal(g_open(f, FD_SB, 0, "nope", 0, RIGHTS_RD, 0, NULL), WASI_ENOENT);
    /* path ops on a non-directory fd */
    assert_int_equal(g_path3(f, Z(path_create_directory), fd, "x"), WASI_ENOTCAPABLE);
    assert_int_equal(g_path3(f, Z(path_remove_directory), FD_SB, "dir"), WASI_ENOTEMPTY);
    assert_int_equal(g_path3(f, Z(path_remove_directory), FD_SB, "dir/f"), WASI_ENOTDIR);
    assert_int_equal(g_path3(f, Z(path_unlink_file), FD_SB, "dir/nested"), WASI_EISDIR);
    assert_int_equal(g_path3(f, Z(path_unlink_file), FD_SB, "dir/f/"), WASI_ENOTDIR);
    /* hard link without follow, then rename, then stat */
    uint32_t a = g_str(f, G_PATH, "dir/f"), b = g_str(f, G_PATH2, "hard");
    assert_int_equal(Z(path_link)(f->ctx, FD_SB, 0, G_PATH, a, FD_SB, G_PATH2, b), 0);
    assert_int_equal(stat_path(f, FD_SB, 0, "hard"), 0);
    assert_int_equal(g_u64(f, G_STAT + 24), 2);
    assert_int_equal(g_u64(f, G_STAT + 32), 5);
    /* link with follow through an in-sandbox symlink */
    assert_int_equal(g_symlink(f, "dir/f", FD_SB, "sl"), 0);
    a = g_str(f, G_PATH, "sl");
    b = g_str(f, G_PATH2, "hard2");
    assert_int_equal(Z(path_link)(f->ctx, FD_SB, WASI_LOOKUP_SYMLINK_FOLLOW, G_PATH, a, FD_SB,
                                  G_PATH2, b), 0);
    assert_int_equal(stat_path(f, FD_SB, 0, "hard2"), 0);
    assert_int_equal(f->mem.data[G_STAT + 16], WASI_FILETYPE_REGULAR_FILE);
    assert_int_equal(g_u64(f, G_STAT + 24), 3);
    /* in-sandbox relative links are followed */
    assert_int_equal(stat_path(f, FD_SB, WASI_LOOKUP_SYMLINK_FOLLOW, "sl"), 0);
    assert_int_equal(f->mem.data[G_STAT + 16], WASI_FILETYPE_REGULAR_FILE);
    assert_int_equal(g_symlink(f, "../f", FD_SB, "dir/nested/up"), 0);
    assert_int_equal(g_open(f, FD_SB, WASI_LOOKUP_SYMLINK_FOLLOW, "dir/nested/up", 0, RIGHTS_RD, 0,
                            NULL), 0);
    /* readlink truncates to the buffer */
    a = g_str(f, G_PATH, "sl");
    assert_int_equal(Z(path_readlink)(f->ctx, FD_SB, G_PATH, a, G_BUF, 3, G_OUT), 0);
    assert_int_equal(g_u32(f, G_OUT), 3);
    assert_memory_equal(f->mem.data + G_BUF, "dir", 3);
    a = g_str(f, G_PATH, "hard");
    assert_int_equal(Z(path_readlink)(f->ctx, FD_SB, G_PATH, a, G_BUF, 64, G_OUT), WASI_EINVAL);
    assert_int_equal(g_rename(f, FD_SB, "hard", FD_SB, "dir/nested/renamed"), 0);
    assert_int_equal(stat_path(f, FD_SB, 0, "hard"), WASI_ENOENT);
    assert_int_equal(stat_path(f, FD_SB, 0, "dir/nested/renamed"), 0);
    assert_int_equal(g_rename(f, FD_SB, "hard2/", FD_SB, "x"), WASI_ENOTDIR);
    /* unlink and rmdir all the way down */
    assert_int_equal(g_path3(f, Z(path_unlink_file), FD_SB, "dir/nested/renamed"), 0);
    assert_int_equal(g_path3(f, Z(path_unlink_file), FD_SB, "dir/nested/up"), 0);
    assert_int_equal(g_path3(f, Z(path_remove_directory), FD_SB, "dir/nested/"), 0);
    assert_int_equal(g_path3(f, Z(path_unlink_file), FD_SB, "dir/f"), 0);
    assert_int_equal(g_path3(f, Z(path_remove_directory), FD_SB, "dir"), 0);
    struct stat st;
    assert_int_equal(stat(fx_path(f->sb, "dir"), &st), -1);
    /* embedded NUL in a path */
    memcpy(f->mem.data + G_PATH, "a\0b", 3);
    assert_int_equal(Z(path_create_directory)(f->ctx, FD_SB, G_PATH, 3), WASI_EILSEQ);
    /* over-long path */
    memset(f->mem.data + G_BUF, 'a', KEEL_WASI_MAX_PATH + 10);
    assert_int_equal(Z(path_create_directory)(f->ctx, FD_SB, G_BUF, KEEL_WASI_MAX_PATH + 10),
                     WASI_ENAMETOOLONG);
    fx_free(f);
}

/* Every host function with a guest pointer: a pointer past the end of
 * memory is EFAULT, and nothing on the host changes. */
static void test_efault(void **state)
{
    (void)state;
    fx *f = fx_new();
    void *c = f->ctx;
    const uint32_t B = G_BAD, E = MEM_SIZE;   /* E: one past the end */
    uint32_t fd, n;
    assert_int_equal(g_open(f, FD_SB, 0, "file", WASI_OFLAG_CREAT, RIGHTS_RW, 0, &fd), 0);
    assert_int_equal(g_write(f, fd, "data", &n), 0);
    uint32_t pl = g_str(f, G_PATH, "file");

    assert_int_equal(Z(args_get)(c, B, G_BUF), WASI_EFAULT);
    assert_int_equal(Z(args_sizes_get)(c, B, G_OUT), WASI_EFAULT);
    assert_int_equal(Z(args_sizes_get)(c, G_OUT, E - 2), WASI_EFAULT);
    assert_int_equal(Z(environ_get)(c, G_OUT, B), WASI_EFAULT);
    assert_int_equal(Z(environ_sizes_get)(c, G_OUT, B), WASI_EFAULT);
    assert_int_equal(Z(clock_res_get)(c, WASI_CLOCK_MONOTONIC, E - 4), WASI_EFAULT);
    assert_int_equal(Z(clock_time_get)(c, WASI_CLOCK_REALTIME, 0, B), WASI_EFAULT);
    assert_int_equal(Z(random_get)(c, E - 10, 11), WASI_EFAULT);
    assert_int_equal(Z(random_get)(c, B, 0xFFFFFFFFu), WASI_EFAULT);
    assert_int_equal(Z(fd_fdstat_get)(c, fd, E - 8), WASI_EFAULT);
    assert_int_equal(Z(fd_filestat_get)(c, fd, B), WASI_EFAULT);
    assert_int_equal(Z(fd_prestat_get)(c, FD_SB, B), WASI_EFAULT);
    assert_int_equal(Z(fd_prestat_dir_name)(c, FD_SB, E - 2, 8), WASI_EFAULT);
    assert_int_equal(Z(fd_seek)(c, fd, 0, WASI_WHENCE_SET, B), WASI_EFAULT);
    assert_int_equal(Z(fd_tell)(c, fd, E - 7), WASI_EFAULT);
    /* iovec arrays: the array, an element's buffer, the result pointer */
    g_iov(f, G_IOV, 0, G_BUF, 4);
    g_iov(f, G_IOV, 1, E - 2, 4);          /* straddles the end */
    g_iov(f, G_IOV, 2, 0xFFFFFFFFu, 0xFFFFFFFFu);
    uint32_t (*rw[])(struct Z_wasi_snapshot_preview1_instance_t *, uint32_t, uint32_t, uint32_t,
                     uint32_t) = { Z(fd_read), Z(fd_write) };
    for (int i = 0; i < 2; i++) {
        assert_int_equal(rw[i](f->ctx, fd, B, 1, G_OUT), WASI_EFAULT);
        assert_int_equal(rw[i](f->ctx, fd, E - 8, 2, G_OUT), WASI_EFAULT);
        assert_int_equal(rw[i](f->ctx, fd, G_IOV, 2, G_OUT), WASI_EFAULT);
        assert_int_equal(rw[i](f->ctx, fd, G_IOV + 16, 1, G_OUT), WASI_EFAULT);
        assert_int_equal(rw[i](f->ctx, fd, G_IOV, 1, B), WASI_EFAULT);
        assert_int_equal(rw[i](f->ctx, fd, 0, 0x20000000u, G_OUT), WASI_EINVAL);  /* > MAX_IOVS */
    }
    assert_int_equal(Z(fd_pread)(c, fd, G_IOV, 2, 0, G_OUT), WASI_EFAULT);
    assert_int_equal(Z(fd_pwrite)(c, fd, G_IOV, 2, 0, G_OUT), WASI_EFAULT);
    assert_int_equal(Z(fd_pread)(c, fd, G_IOV, 1, 0, B), WASI_EFAULT);
    assert_int_equal(Z(fd_pwrite)(c, fd, G_IOV, 1, 0, B), WASI_EFAULT);
    assert_int_equal(Z(fd_readdir)(c, FD_SB, E - 10, 100, 0, G_OUT), WASI_EFAULT);
    assert_int_equal(Z(fd_readdir)(c, FD_SB, G_BUF, 100, 0, B), WASI_EFAULT);
    /* paths */
    assert_int_equal(Z(path_open)(c, FD_SB, 0, B, 4, 0, RIGHTS_RD, 0, 0, G_OUT), WASI_EFAULT);
    assert_int_equal(Z(path_open)(c, FD_SB, 0, G_PATH, pl, 0, RIGHTS_RD, 0, 0, B), WASI_EFAULT);
    assert_int_equal(Z(path_open)(c, FD_SB, 0, 0xFFFFFFFFu, 0xFFFFFFFFu, 0, RIGHTS_RD, 0, 0, G_OUT),
                     WASI_EFAULT);
    assert_int_equal(Z(path_create_directory)(c, FD_SB, E - 1, 2), WASI_EFAULT);
    assert_int_equal(Z(path_remove_directory)(c, FD_SB, B, 1), WASI_EFAULT);
    assert_int_equal(Z(path_unlink_file)(c, FD_SB, B, 4), WASI_EFAULT);
    assert_int_equal(Z(path_filestat_get)(c, FD_SB, 0, B, 4, G_STAT), WASI_EFAULT);
    assert_int_equal(Z(path_filestat_get)(c, FD_SB, 0, G_PATH, pl, E - 63), WASI_EFAULT);
    assert_int_equal(Z(path_filestat_set_times)(c, FD_SB, 0, B, 4, 0, 0, 0), WASI_EFAULT);
    assert_int_equal(Z(path_filestat_set_times)(c, FD_SB, 1, B, 4, 0, 0, 0), WASI_EFAULT);
    assert_int_equal(Z(path_link)(c, FD_SB, 0, B, 4, FD_SB, G_PATH2, 3), WASI_EFAULT);
    assert_int_equal(Z(path_link)(c, FD_SB, 0, G_PATH, pl, FD_SB, B, 3), WASI_EFAULT);
    assert_int_equal(Z(path_readlink)(c, FD_SB, B, 4, G_BUF, 10, G_OUT), WASI_EFAULT);
    assert_int_equal(Z(path_readlink)(c, FD_SB, G_PATH, pl, E - 5, 10, G_OUT), WASI_EFAULT);
    assert_int_equal(Z(path_readlink)(c, FD_SB, G_PATH, pl, G_BUF, 10, B), WASI_EFAULT);
    assert_int_equal(Z(path_rename)(c, FD_SB, B, 4, FD_SB, G_PATH2, 3), WASI_EFAULT);
    assert_int_equal(Z(path_rename)(c, FD_SB, G_PATH, pl, FD_SB, B, 3), WASI_EFAULT);
    assert_int_equal(Z(path_symlink)(c, B, 4, FD_SB, G_PATH2, 3), WASI_EFAULT);
    assert_int_equal(Z(path_symlink)(c, G_PATH, pl, FD_SB, B, 3), WASI_EFAULT);
    /* poll_oneoff: subscriptions, events, count; and a u32-overflowing count */
    assert_int_equal(Z(poll_oneoff)(c, B, 0x30000, 1, G_OUT), WASI_EFAULT);
    assert_int_equal(Z(poll_oneoff)(c, 0x20000, E - 16, 1, G_OUT), WASI_EFAULT);
    assert_int_equal(Z(poll_oneoff)(c, 0x20000, 0x30000, 1, B), WASI_EFAULT);
    assert_int_equal(Z(poll_oneoff)(c, 0x20000, 0x30000, 0x10000000u, G_OUT), WASI_EFAULT);
    /* no guest memory at all */
    keel_host_ctx nomem = { .mem = NULL, .wasi = f->w };
    assert_int_equal(Z(fd_write)((void *)&nomem, fd, G_IOV, 1, G_OUT), WASI_EFAULT);
    assert_int_equal(Z(args_sizes_get)((void *)&nomem, G_OUT, G_OUT2), WASI_EFAULT);
    /* still intact */
    struct stat st;
    assert_int_equal(stat(fx_path(f->sb, "file"), &st), 0);
    assert_int_equal(st.st_size, 4);
    fx_outside_untouched(f);
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_escapes, fx_teardown),
        cmocka_unit_test_teardown(test_readonly, fx_teardown),
        cmocka_unit_test_teardown(test_path_ops, fx_teardown),
        cmocka_unit_test_teardown(test_efault, fx_teardown),
    };
    return cmocka_run_group_tests_name("wasi_sandbox", tests, NULL, NULL);
}
