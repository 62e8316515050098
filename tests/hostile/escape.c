/* escape — tries to leave the preopened directory argv[1] every way it can
 * and prints "LABEL: errno=N" for each attempt (errno=0 means the attempt
 * succeeded, which for an escape is a sandbox hole). Host-facing calls are
 * raw WASI so the errno is the host's, not wasi-libc's path lookup.
 *
 * The test lays out:  scratch/canary.txt            "canary\n"
 *                     scratch/outside/secret.txt    "secret\n"
 *                     scratch/sandbox/              (preopened as argv[1])
 *                       sub/                        a directory
 *                       to_root -> /                symlinks made by the host
 *                       to_parent -> ..
 *                       to_canary -> <abs path of canary.txt>
 *                       rel_canary -> ../canary.txt
 *                       chain1 -> chain2, chain2 -> sub/../../canary.txt
 *                       magic -> /proc/self/root
 * Every write-like attempt targets canary.txt or a new name outside, so the
 * test can check the outside is unchanged afterwards. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <wasi/api.h>

static __wasi_fd_t root = (__wasi_fd_t)-1;

#define ALL_RIGHTS ((__wasi_rights_t)0x1FFFFFFF)

static void report(const char *label, __wasi_errno_t e) {
    printf("%s: errno=%d\n", label, e);
}

/* Opens path under dirfd; on success tries to read a few bytes so a hole is
 * visible in the output, then closes. */
static void try_open(const char *label, __wasi_fd_t dirfd, const char *path,
                     __wasi_lookupflags_t lf, __wasi_oflags_t of, __wasi_fdflags_t ff) {
    __wasi_fd_t fd;
    __wasi_errno_t e = __wasi_path_open(dirfd, lf, path, of, ALL_RIGHTS, ALL_RIGHTS, ff, &fd);
    report(label, e);
    if (e == 0) {
        char buf[32] = {0};
        __wasi_iovec_t iov = {(uint8_t *)buf, sizeof buf - 1};
        __wasi_size_t n = 0;
        if (__wasi_fd_read(fd, &iov, 1, &n) != 0) n = 0;
        printf("  LEAKED %u bytes: %.*s\n", (unsigned)n, (int)n, buf);
        (void)__wasi_fd_close(fd);
    }
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: escape PREOPEN\n"); return 2; }
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* Find the preopen fd by name. */
    for (__wasi_fd_t fd = 3; fd < 64; fd++) {
        __wasi_prestat_t ps;
        if (__wasi_fd_prestat_get(fd, &ps) != 0) break;
        char name[256] = {0};
        if (ps.u.dir.pr_name_len < sizeof name &&
            __wasi_fd_prestat_dir_name(fd, (uint8_t *)name, ps.u.dir.pr_name_len) == 0 &&
            strcmp(name, argv[1]) == 0)
            root = fd;
    }
    if (root == (__wasi_fd_t)-1) { printf("preopen %s not found\n", argv[1]); return 3; }
    const __wasi_lookupflags_t F = __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW;
    const __wasi_oflags_t CT = __WASI_OFLAGS_CREAT | __WASI_OFLAGS_TRUNC;

    /* Dot-dot and absolute paths. */
    try_open("open ../canary.txt", root, "../canary.txt", F, 0, 0);
    try_open("open sub/../../canary.txt", root, "sub/../../canary.txt", F, 0, 0);
    try_open("open ./../canary.txt", root, "./../canary.txt", F, 0, 0);
    try_open("open ..", root, "..", F, __WASI_OFLAGS_DIRECTORY, 0);
    try_open("open /etc/passwd", root, "/etc/passwd", F, 0, 0);
    try_open("open absolute canary", root, argc > 2 ? argv[2] : "/nonexistent", F, 0, 0);
    try_open("create ../escaped.txt", root, "../escaped.txt", F, __WASI_OFLAGS_CREAT, 0);
    try_open("trunc ../canary.txt", root, "../canary.txt", F, CT, 0);
    try_open("append ../canary.txt", root, "../canary.txt", F, 0, __WASI_FDFLAGS_APPEND);

    /* From a subdirectory fd, climbing past the preopen. */
    __wasi_fd_t sub;
    __wasi_errno_t e = __wasi_path_open(root, F, "sub", __WASI_OFLAGS_DIRECTORY, ALL_RIGHTS,
                                        ALL_RIGHTS, 0, &sub);
    report("open sub (allowed)", e);
    if (e == 0)
        try_open("sub fd: ../../canary.txt", sub, "../../canary.txt", F, 0, 0);

    /* Host-made symlinks that point outside. */
    try_open("open to_root/etc/passwd", root, "to_root/etc/passwd", F, 0, 0);
    try_open("open to_root (dir)", root, "to_root", F, __WASI_OFLAGS_DIRECTORY, 0);
    try_open("open to_parent/canary.txt", root, "to_parent/canary.txt", F, 0, 0);
    try_open("open to_parent/outside/secret.txt", root, "to_parent/outside/secret.txt", F, 0, 0);
    try_open("open to_canary", root, "to_canary", F, 0, 0);
    try_open("trunc to_canary", root, "to_canary", F, CT, 0);
    try_open("open rel_canary", root, "rel_canary", F, 0, 0);
    try_open("open chain1", root, "chain1", F, 0, 0);
    try_open("open magic/etc/passwd", root, "magic/etc/passwd", F, 0, 0);
    try_open("create to_parent/escaped.txt", root, "to_parent/escaped.txt", F, __WASI_OFLAGS_CREAT, 0);

    /* Guest-made symlinks: creating one may or may not be allowed, but
     * following it out must not be. */
    e = __wasi_path_symlink("/", root, "groot");
    printf("symlink groot -> / made=%d\n", e == 0);
    try_open("open groot/etc/passwd", root, "groot/etc/passwd", F, 0, 0);
    e = __wasi_path_symlink("..", root, "gup");
    printf("symlink gup -> .. made=%d\n", e == 0);
    try_open("open gup/canary.txt", root, "gup/canary.txt", F, 0, 0);
    try_open("create gup/escaped.txt", root, "gup/escaped.txt", F, __WASI_OFLAGS_CREAT, 0);

    /* Rename a symlink over a directory, then open through the name. */
    e = __wasi_path_create_directory(root, "d");
    report("mkdir d (allowed)", e);
    e = __wasi_path_symlink("..", root, "s");
    report("symlink s -> .. (allowed)", e);
    e = __wasi_path_rename(root, "s", root, "d");
    report("rename symlink over dir", e);
    try_open("open d/canary.txt (after rename over dir)", root, "d/canary.txt", F, 0, 0);
    e = __wasi_path_remove_directory(root, "d");
    report("rmdir d (allowed)", e);
    e = __wasi_path_rename(root, "s", root, "d");
    report("rename symlink to d (allowed)", e);
    try_open("open d/canary.txt (d is symlink)", root, "d/canary.txt", F, 0, 0);
    try_open("create d/escaped.txt", root, "d/escaped.txt", F, __WASI_OFLAGS_CREAT, 0);

    /* Hard links to outside files. */
    e = __wasi_path_link(root, 0, "../canary.txt", root, "hl1");
    report("link ../canary.txt -> hl1", e);
    e = __wasi_path_link(root, F, "to_canary", root, "hl2");
    report("link (follow) to_canary -> hl2", e);
    e = __wasi_path_link(root, F, "to_parent/canary.txt", root, "hl3");
    report("link to_parent/canary.txt -> hl3", e);
    e = __wasi_path_link(root, 0, "sub", root, "../hl4");
    report("link sub -> ../hl4", e);
    e = __wasi_path_link(root, 0, "/etc/passwd", root, "hl5");
    report("link /etc/passwd -> hl5", e);

    /* Other name operations aimed outside. */
    __wasi_filestat_t st;
    report("stat ../canary.txt", __wasi_path_filestat_get(root, F, "../canary.txt", &st));
    report("stat to_parent/canary.txt", __wasi_path_filestat_get(root, F, "to_parent/canary.txt", &st));
    report("stat (follow) to_canary", __wasi_path_filestat_get(root, F, "to_canary", &st));
    report("utimes ../canary.txt", __wasi_path_filestat_set_times(root, F, "../canary.txt", 1, 1,
           __WASI_FSTFLAGS_ATIM | __WASI_FSTFLAGS_MTIM));
    report("utimes (follow) to_canary", __wasi_path_filestat_set_times(root, F, "to_canary", 1, 1,
           __WASI_FSTFLAGS_ATIM | __WASI_FSTFLAGS_MTIM));
    report("mkdir ../escaped_dir", __wasi_path_create_directory(root, "../escaped_dir"));
    report("mkdir to_parent/escaped_dir", __wasi_path_create_directory(root, "to_parent/escaped_dir"));
    report("unlink ../canary.txt", __wasi_path_unlink_file(root, "../canary.txt"));
    report("unlink to_parent/canary.txt", __wasi_path_unlink_file(root, "to_parent/canary.txt"));
    report("rmdir ../outside", __wasi_path_remove_directory(root, "../outside"));
    report("rename ../canary.txt -> stolen", __wasi_path_rename(root, "../canary.txt", root, "stolen"));
    report("rename sub -> ../moved", __wasi_path_rename(root, "sub", root, "../moved"));
    report("rename into to_parent/", __wasi_path_rename(root, "sub", root, "to_parent/moved"));
    report("symlink in ../", __wasi_path_symlink("x", root, "../escaped_link"));
    char lb[64];
    __wasi_size_t used;
    report("readlink ../canary.txt", __wasi_path_readlink(root, "../canary.txt", (uint8_t *)lb, sizeof lb, &used));

    puts("done");
    return 0;
}
