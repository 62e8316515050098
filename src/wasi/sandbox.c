/* sandbox.c — capability-safe path resolution for WASI.
 *
 * Every guest path is resolved by the kernel with openat2(2) and
 * RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS relative to a directory fd the
 * guest holds: "..", absolute paths and symlinks (whoever made them, and
 * however they change during the lookup) can never leave that directory.
 * Operations that act on a name instead of opening it (mkdir, unlink,
 * rename, link, symlink, readlink, lstat, utimens with NOFOLLOW) open the
 * *parent* this way and then act on the final component relative to the
 * parent fd, never following it.
 *
 * Error choice: an absolute guest path, or one that escapes (the kernel's
 * EXDEV from RESOLVE_BENEATH), is WASI ENOTCAPABLE (76). Node's uvwasi also
 * answers ENOTCAPABLE for paths outside a preopen; wasmtime answers EPERM
 * for absolute paths. A magic link (/proc/self/fd/...) gives ELOOP.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "wasi/wasi_int.h"

/* openat2 returns EAGAIN when a concurrent rename makes a ".." lookup
 * unverifiable; retrying a few times is what the man page suggests. */
#define SB_EAGAIN_RETRIES 16

uint32_t keel_sb_copy_path(wasm_rt_memory_t *mem, uint32_t ptr, uint32_t len,
                           char *buf)
{
    const char *p = keel_guest_ptr(mem, ptr, len);
    if (!p)
        return WASI_EFAULT;
    if (len > KEEL_WASI_MAX_PATH)
        return WASI_ENAMETOOLONG;
    if (memchr(p, '\0', len))
        return WASI_EILSEQ;
    memcpy(buf, p, len);
    buf[len] = '\0';
    return WASI_ESUCCESS;
}

int keel_sb_open(int dirfd, const char *path, int flags, mode_t mode, bool follow)
{
    if (path[0] == '/')
        return -WASI_ENOTCAPABLE;
    if (path[0] == '\0')
        return -WASI_ENOENT;
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = (uint64_t)(unsigned)(flags | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW));
    how.mode = (flags & O_CREAT) ? (mode & 07777) : 0;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    for (int tries = 0;; tries++) {
        long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
        if (fd >= 0)
            return (int)fd;
        if ((errno == EAGAIN || errno == EINTR) && tries < SB_EAGAIN_RETRIES)
            continue;
        if (errno == EXDEV)
            return -WASI_ENOTCAPABLE;
        return -(int)keel_wasi_errno(errno);
    }
}

uint32_t keel_sb_parent(int dirfd, char *path, keel_sb_leaf *out)
{
    out->dirfd = -1;
    out->name = NULL;
    out->trailing_slash = false;
    out->dot = false;
    if (path[0] == '\0')
        return WASI_ENOENT;
    if (path[0] == '/')
        return WASI_ENOTCAPABLE;

    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') {
        path[--n] = '\0';
        out->trailing_slash = true;
    }
    char *slash = strrchr(path, '/');
    const char *parent;
    if (slash) {
        *slash = '\0';
        out->name = slash + 1;
        parent = path;
        /* "a//b": strip the extra separators; "" parent cannot happen
         * because a leading '/' was rejected above. */
        for (char *q = slash - 1; q > path && *q == '/'; q--)
            *q = '\0';
    } else {
        out->name = path;
        parent = ".";
    }
    out->dot = strcmp(out->name, ".") == 0 || strcmp(out->name, "..") == 0;

    int fd = keel_sb_open(dirfd, parent, O_PATH | O_DIRECTORY, 0, true);
    if (fd < 0)
        return (uint32_t)-fd;
    out->dirfd = fd;
    return WASI_ESUCCESS;
}

void keel_sb_leaf_close(keel_sb_leaf *l)
{
    if (l->dirfd >= 0)
        close(l->dirfd);
    l->dirfd = -1;
}
