/* wasi_fs.c — WASI host functions that take a path: path_open,
 * path_create_directory, path_remove_directory, path_unlink_file,
 * path_rename, path_link, path_symlink, path_readlink, path_filestat_get,
 * path_filestat_set_times.
 *
 * Every path is resolved by sandbox.c beneath the directory fd the guest
 * names; operations on a name act on the final component relative to its
 * parent fd without following it. Read-only preopens (and directories
 * opened under them) refuse anything that writes with ENOTCAPABLE. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "wasi/wasi_int.h"

/* Looks up a directory fd that must hold `rights`; `writes` marks
 * operations refused under a read-only preopen. */
static uint32_t dir_check(struct keel_wasi *w, uint32_t fd, uint64_t rights,
                          bool writes, keel_wasi_fd **out)
{
    uint32_t rc = keel_wasi_fd_check(w, fd, rights, out);
    if (rc)
        return rc;
    if ((*out)->filetype != WASI_FILETYPE_DIRECTORY)
        return WASI_ENOTDIR;
    if (writes && (*out)->readonly)
        return WASI_ENOTCAPABLE;
    return WASI_ESUCCESS;
}

/* Host open(2) access mode from the rights the new fd will hold. */
static int access_mode(uint64_t base)
{
    bool rd = base & (WASI_RIGHT_FD_READ | WASI_RIGHT_FD_READDIR);
    bool wr = base & (WASI_RIGHT_FD_WRITE | WASI_RIGHT_FD_ALLOCATE |
                      WASI_RIGHT_FD_FILESTAT_SET_SIZE);
    return wr ? (rd ? O_RDWR : O_WRONLY) : O_RDONLY;
}

/* Requested rights are intersected with the directory's inheriting rights
 * rather than refused (wasi-libc already intersects; Rust's std asks for
 * rights such as FD_FILESTAT_SET_TIMES even to read). Creating, truncating
 * and appending need the rights the spec names and are refused outright on
 * read-only preopens. */
uint32_t WASI_FN(path_open)(WASI_CTX, uint32_t fd, uint32_t dirflags, uint32_t path,
                            uint32_t path_len, uint32_t oflags, uint64_t rights_base,
                            uint64_t rights_inheriting, uint32_t fdflags, uint32_t fd_out)
{
    struct keel_wasi *w = WASI_STATE(ctx);
    keel_wasi_fd *d;
    char buf[KEEL_WASI_MAX_PATH + 1];
    uint32_t rc = dir_check(w, fd, WASI_RIGHT_PATH_OPEN, false, &d);
    if (rc)
        return rc;
    uint8_t *out = keel_guest_ptr(WASI_MEM(ctx), fd_out, 4);
    if (!out)
        return WASI_EFAULT;
    if ((rc = keel_sb_copy_path(WASI_MEM(ctx), path, path_len, buf)))
        return rc;
    if ((oflags & ~(uint32_t)WASI_OFLAG_ALL) || (fdflags & ~(uint32_t)WASI_FDFLAG_ALL))
        return WASI_EINVAL;

    uint64_t need = 0;
    if (oflags & WASI_OFLAG_CREAT) need |= WASI_RIGHT_PATH_CREATE_FILE;
    if (oflags & WASI_OFLAG_TRUNC) need |= WASI_RIGHT_PATH_FILESTAT_SET_SIZE;
    if ((d->rights_base & need) != need)
        return WASI_ENOTCAPABLE;
    bool writes = (oflags & (WASI_OFLAG_CREAT | WASI_OFLAG_TRUNC)) ||
                  (fdflags & WASI_FDFLAG_APPEND);
    if (writes && d->readonly)
        return WASI_ENOTCAPABLE;

    uint64_t base = rights_base & d->rights_inheriting;
    uint64_t inh = rights_inheriting & d->rights_inheriting;
    if (d->readonly) {
        base &= ~(uint64_t)WASI_RIGHTS_WRITING;
        inh &= ~(uint64_t)WASI_RIGHTS_WRITING;
    }
    int flags = (oflags & WASI_OFLAG_DIRECTORY) ? (O_RDONLY | O_DIRECTORY) : access_mode(base);
    if (oflags & WASI_OFLAG_CREAT) flags |= O_CREAT;
    if (oflags & WASI_OFLAG_EXCL) flags |= O_EXCL;
    if (oflags & WASI_OFLAG_TRUNC) flags |= O_TRUNC;
    if (fdflags & WASI_FDFLAG_APPEND) flags |= O_APPEND;
    if (fdflags & WASI_FDFLAG_NONBLOCK) flags |= O_NONBLOCK;
    if (fdflags & WASI_FDFLAG_DSYNC) flags |= O_DSYNC;
    if (fdflags & (WASI_FDFLAG_SYNC | WASI_FDFLAG_RSYNC)) flags |= O_SYNC;
    if ((flags & (O_TRUNC | O_APPEND)) && (flags & O_ACCMODE) == O_RDONLY)
        flags = (flags & ~O_ACCMODE) | O_WRONLY;   /* O_TRUNC on O_RDONLY is undefined */

    bool follow = dirflags & WASI_LOOKUP_SYMLINK_FOLLOW;
    int h = keel_sb_open(d->host, buf, flags, 0666, follow);
    if (h < 0)
        return (uint32_t)-h;
    struct stat st;
    if (fstat(h, &st) != 0) {
        int e = errno;
        close(h);
        return keel_wasi_errno(e);
    }
    keel_wasi_fd ne;
    memset(&ne, 0, sizeof ne);
    ne.host = h;
    ne.owned = true;
    ne.readonly = d->readonly;
    ne.filetype = keel_wasi_filetype(st.st_mode);
    ne.rights_base = base & (ne.filetype == WASI_FILETYPE_DIRECTORY ? WASI_RIGHTS_DIR
                                                                    : WASI_RIGHTS_FILE);
    if (ne.filetype != WASI_FILETYPE_REGULAR_FILE && ne.filetype != WASI_FILETYPE_DIRECTORY)
        ne.rights_base &= ~(WASI_RIGHT_FD_SEEK | WASI_RIGHT_FD_TELL);  /* ttys, FIFOs */
    ne.rights_inheriting = inh;
    uint32_t newfd;
    if ((rc = keel_wasi_fd_install(w, &ne, &newfd)))
        return rc;
    wasi_put_u32(out, newfd);
    return WASI_ESUCCESS;
}

/* Resolves (fd, path) to a parent dir + leaf after the rights check. */
static uint32_t leaf_of(WASI_CTX, uint32_t fd, uint64_t rights, bool writes, uint32_t path,
                        uint32_t path_len, char *buf, keel_sb_leaf *l)
{
    keel_wasi_fd *d;
    l->dirfd = -1;
    uint32_t rc = dir_check(WASI_STATE(ctx), fd, rights, writes, &d);
    if (rc)
        return rc;
    if ((rc = keel_sb_copy_path(WASI_MEM(ctx), path, path_len, buf)))
        return rc;
    return keel_sb_parent(d->host, buf, l);
}

static uint32_t host_result(int r)
{
    return r == 0 ? WASI_ESUCCESS : keel_wasi_errno(errno);
}

uint32_t WASI_FN(path_create_directory)(WASI_CTX, uint32_t fd, uint32_t path, uint32_t path_len)
{
    char buf[KEEL_WASI_MAX_PATH + 1];
    keel_sb_leaf l;
    uint32_t rc = leaf_of(ctx, fd, WASI_RIGHT_PATH_CREATE_DIRECTORY, true, path, path_len, buf, &l);
    if (rc == WASI_ESUCCESS)
        rc = l.dot ? WASI_EEXIST : host_result(mkdirat(l.dirfd, l.name, 0777));
    keel_sb_leaf_close(&l);
    return rc;
}

uint32_t WASI_FN(path_remove_directory)(WASI_CTX, uint32_t fd, uint32_t path, uint32_t path_len)
{
    char buf[KEEL_WASI_MAX_PATH + 1];
    keel_sb_leaf l;
    uint32_t rc = leaf_of(ctx, fd, WASI_RIGHT_PATH_REMOVE_DIRECTORY, true, path, path_len, buf, &l);
    if (rc == WASI_ESUCCESS)
        rc = l.dot ? (strcmp(l.name, ".") == 0 ? WASI_EINVAL : WASI_ENOTEMPTY)
                   : host_result(unlinkat(l.dirfd, l.name, AT_REMOVEDIR));
    keel_sb_leaf_close(&l);
    return rc;
}

uint32_t WASI_FN(path_unlink_file)(WASI_CTX, uint32_t fd, uint32_t path, uint32_t path_len)
{
    char buf[KEEL_WASI_MAX_PATH + 1];
    keel_sb_leaf l;
    struct stat st;
    uint32_t rc = leaf_of(ctx, fd, WASI_RIGHT_PATH_UNLINK_FILE, true, path, path_len, buf, &l);
    if (rc == WASI_ESUCCESS) {
        if (l.dot)
            rc = WASI_EISDIR;
        else if (l.trailing_slash)   /* "file/" names a directory that is not there */
            rc = fstatat(l.dirfd, l.name, &st, AT_SYMLINK_NOFOLLOW) != 0 ? keel_wasi_errno(errno)
                 : S_ISDIR(st.st_mode) ? WASI_EISDIR : WASI_ENOTDIR;
        else
            rc = host_result(unlinkat(l.dirfd, l.name, 0));
    }
    keel_sb_leaf_close(&l);
    return rc;
}

/* A trailing slash demands a directory: ENOTDIR when the leaf is not one. */
static uint32_t slash_needs_dir(const keel_sb_leaf *l)
{
    struct stat st;
    if (!l->trailing_slash)
        return WASI_ESUCCESS;
    if (fstatat(l->dirfd, l->name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return keel_wasi_errno(errno);
    return S_ISDIR(st.st_mode) ? WASI_ESUCCESS : WASI_ENOTDIR;
}

uint32_t WASI_FN(path_rename)(WASI_CTX, uint32_t fd, uint32_t old_path, uint32_t old_path_len,
                              uint32_t new_fd, uint32_t new_path, uint32_t new_path_len)
{
    char b1[KEEL_WASI_MAX_PATH + 1], b2[KEEL_WASI_MAX_PATH + 1];
    keel_sb_leaf a, b;
    b.dirfd = -1;
    uint32_t rc = leaf_of(ctx, fd, WASI_RIGHT_PATH_RENAME_SOURCE, true, old_path, old_path_len,
                          b1, &a);
    if (rc == WASI_ESUCCESS)
        rc = leaf_of(ctx, new_fd, WASI_RIGHT_PATH_RENAME_TARGET, true, new_path, new_path_len,
                     b2, &b);
    if (rc == WASI_ESUCCESS && (a.dot || b.dot))
        rc = WASI_EBUSY;
    if (rc == WASI_ESUCCESS)
        rc = slash_needs_dir(&a);
    if (rc == WASI_ESUCCESS)
        rc = host_result(renameat(a.dirfd, a.name, b.dirfd, b.name));
    keel_sb_leaf_close(&a);
    keel_sb_leaf_close(&b);
    return rc;
}

/* Hard link. With SYMLINK_FOLLOW the source is resolved (beneath its
 * directory) to an O_PATH fd and linked through /proc/self/fd, which names
 * exactly the inode already resolved; without it the source name itself is
 * linked (a symlink stays a symlink). */
uint32_t WASI_FN(path_link)(WASI_CTX, uint32_t old_fd, uint32_t old_flags, uint32_t old_path,
                            uint32_t old_path_len, uint32_t new_fd, uint32_t new_path,
                            uint32_t new_path_len)
{
    char b1[KEEL_WASI_MAX_PATH + 1], b2[KEEL_WASI_MAX_PATH + 1];
    keel_sb_leaf a, b;
    a.dirfd = -1;
    keel_wasi_fd *src;
    uint32_t rc = dir_check(WASI_STATE(ctx), old_fd, WASI_RIGHT_PATH_LINK_SOURCE, true, &src);
    if (rc == WASI_ESUCCESS)
        rc = keel_sb_copy_path(WASI_MEM(ctx), old_path, old_path_len, b1);
    if (rc)
        return rc;
    rc = leaf_of(ctx, new_fd, WASI_RIGHT_PATH_LINK_TARGET, true, new_path, new_path_len, b2, &b);
    if (rc == WASI_ESUCCESS && b.dot)
        rc = WASI_EEXIST;
    if (rc == WASI_ESUCCESS && (old_flags & WASI_LOOKUP_SYMLINK_FOLLOW)) {
        int h = keel_sb_open(src->host, b1, O_PATH, 0, true);
        if (h < 0) {
            rc = (uint32_t)-h;
        } else {
            char proc[64];
            snprintf(proc, sizeof proc, "/proc/self/fd/%d", h);
            rc = host_result(linkat(AT_FDCWD, proc, b.dirfd, b.name, AT_SYMLINK_FOLLOW));
            close(h);
        }
    } else if (rc == WASI_ESUCCESS) {
        rc = keel_sb_parent(src->host, b1, &a);
        if (rc == WASI_ESUCCESS)
            rc = a.dot ? WASI_EPERM : host_result(linkat(a.dirfd, a.name, b.dirfd, b.name, 0));
    }
    keel_sb_leaf_close(&a);
    keel_sb_leaf_close(&b);
    return rc;
}

/* The target is only a string stored in the link; it may be absolute or
 * point outside, since every later lookup through it is confined by
 * RESOLVE_BENEATH. */
uint32_t WASI_FN(path_symlink)(WASI_CTX, uint32_t old_path, uint32_t old_path_len, uint32_t fd,
                               uint32_t new_path, uint32_t new_path_len)
{
    char target[KEEL_WASI_MAX_PATH + 1], buf[KEEL_WASI_MAX_PATH + 1];
    keel_sb_leaf l;
    uint32_t rc = keel_sb_copy_path(WASI_MEM(ctx), old_path, old_path_len, target);
    if (rc)
        return rc;
    rc = leaf_of(ctx, fd, WASI_RIGHT_PATH_SYMLINK, true, new_path, new_path_len, buf, &l);
    if (rc == WASI_ESUCCESS)
        rc = l.dot ? WASI_EEXIST
             : l.trailing_slash ? WASI_ENOENT
             : host_result(symlinkat(target, l.dirfd, l.name));
    keel_sb_leaf_close(&l);
    return rc;
}

uint32_t WASI_FN(path_readlink)(WASI_CTX, uint32_t fd, uint32_t path, uint32_t path_len,
                                uint32_t buf, uint32_t buf_len, uint32_t bufused_out)
{
    char pb[KEEL_WASI_MAX_PATH + 1];
    keel_sb_leaf l;
    char *out = keel_guest_ptr(WASI_MEM(ctx), buf, buf_len);
    uint8_t *used = keel_guest_ptr(WASI_MEM(ctx), bufused_out, 4);
    if (!out || !used)
        return WASI_EFAULT;
    uint32_t rc = leaf_of(ctx, fd, WASI_RIGHT_PATH_READLINK, false, path, path_len, pb, &l);
    if (rc == WASI_ESUCCESS) {
        if (l.dot) {
            rc = WASI_EINVAL;
        } else {
            keel_guest_prepare_write(out, buf_len);
            ssize_t n = readlinkat(l.dirfd, l.name, out, buf_len);   /* truncates */
            if (n < 0)
                rc = keel_wasi_errno(errno);
            else
                wasi_put_u32(used, (uint32_t)n);
        }
    }
    keel_sb_leaf_close(&l);
    return rc;
}

uint32_t WASI_FN(path_filestat_get)(WASI_CTX, uint32_t fd, uint32_t flags, uint32_t path,
                                    uint32_t path_len, uint32_t stat_out)
{
    keel_wasi_fd *d;
    char buf[KEEL_WASI_MAX_PATH + 1];
    struct stat st;
    uint32_t rc = dir_check(WASI_STATE(ctx), fd, WASI_RIGHT_PATH_FILESTAT_GET, false, &d);
    if (rc)
        return rc;
    uint8_t *out = keel_guest_ptr(WASI_MEM(ctx), stat_out, WASI_FILESTAT_SIZE);
    if (!out)
        return WASI_EFAULT;
    if ((rc = keel_sb_copy_path(WASI_MEM(ctx), path, path_len, buf)))
        return rc;
    /* O_PATH without following gives the link itself: lstat semantics. */
    int h = keel_sb_open(d->host, buf, O_PATH, 0, flags & WASI_LOOKUP_SYMLINK_FOLLOW);
    if (h < 0)
        return (uint32_t)-h;
    rc = fstat(h, &st) == 0 ? WASI_ESUCCESS : keel_wasi_errno(errno);
    close(h);
    if (rc == WASI_ESUCCESS)
        keel_wasi_put_filestat(out, &st);
    return rc;
}

uint32_t WASI_FN(path_filestat_set_times)(WASI_CTX, uint32_t fd, uint32_t flags, uint32_t path,
                                          uint32_t path_len, uint64_t atim, uint64_t mtim,
                                          uint32_t fstflags)
{
    char buf[KEEL_WASI_MAX_PATH + 1];
    struct timespec ts[2];
    uint32_t rc = keel_wasi_times(atim, mtim, fstflags, ts);
    if (rc)
        return rc;
    if (flags & WASI_LOOKUP_SYMLINK_FOLLOW) {
        /* Resolve (following, beneath) to an O_PATH fd, then set the times
         * of exactly that inode through its /proc/self/fd name. */
        keel_wasi_fd *d;
        if ((rc = dir_check(WASI_STATE(ctx), fd, WASI_RIGHT_PATH_FILESTAT_SET_TIMES, true, &d)))
            return rc;
        if ((rc = keel_sb_copy_path(WASI_MEM(ctx), path, path_len, buf)))
            return rc;
        int h = keel_sb_open(d->host, buf, O_PATH, 0, true);
        if (h < 0)
            return (uint32_t)-h;
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", h);
        rc = host_result(utimensat(AT_FDCWD, proc, ts, 0));
        close(h);
        return rc;
    }
    keel_sb_leaf l;
    rc = leaf_of(ctx, fd, WASI_RIGHT_PATH_FILESTAT_SET_TIMES, true, path, path_len, buf, &l);
    if (rc == WASI_ESUCCESS) {
        if (l.dot) {   /* "." / "..": resolve the whole path, it names a directory */
            int h = keel_sb_open(l.dirfd, l.name, O_PATH | O_DIRECTORY, 0, false);
            if (h < 0) {
                rc = (uint32_t)-h;
            } else {
                char proc[64];
                snprintf(proc, sizeof proc, "/proc/self/fd/%d", h);
                rc = host_result(utimensat(AT_FDCWD, proc, ts, 0));
                close(h);
            }
        } else {
            rc = host_result(utimensat(l.dirfd, l.name, ts, AT_SYMLINK_NOFOLLOW));
        }
    }
    keel_sb_leaf_close(&l);
    return rc;
}
