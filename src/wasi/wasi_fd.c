/* wasi_fd.c — WASI host functions that act on an open descriptor: fd_read,
 * fd_write, fd_pread/pwrite, fd_seek/tell, fd_close/renumber, fdstat,
 * filestat, sync, advise, allocate, prestat and fd_readdir.
 *
 * Each checks the guest fd's rights (ENOTCAPABLE when missing), validates
 * every guest range before touching the host fd (EFAULT), and maps host
 * errno with keel_wasi_errno(). Blocking stream I/O never outlasts the
 * current call's deadline (wait_ready). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "engine/rt.h"
#include "wasi/wasi_int.h"

/* Bytes of host getdents64 records read per batch by fd_readdir. */
#define READDIR_HOST_BUF 8192

/* Reads a guest iovec array into iov (KEEL_WASI_MAX_IOVS entries), each
 * buffer checked; for a read (into_guest) the buffers are also made ready
 * for the kernel to write (keel_guest_prepare_write). The byte total is
 * clamped to UINT32_MAX so the count fits the guest's u32. Returns
 * WASI_ESUCCESS with *count set, WASI_EINVAL or WASI_EFAULT. */
static uint32_t get_iovs(wasm_rt_memory_t *mem, uint32_t iovs, uint32_t n,
                         struct iovec *iov, int *count, bool into_guest)
{
    if (n > KEEL_WASI_MAX_IOVS)
        return WASI_EINVAL;
    const uint8_t *p = keel_guest_ptr(mem, iovs, (uint64_t)n * WASI_IOVEC_SIZE);
    if (!p)
        return WASI_EFAULT;
    uint64_t total = 0;
    int k = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t buf = wasi_get_u32(p + (uint64_t)i * WASI_IOVEC_SIZE);
        uint32_t len = wasi_get_u32(p + (uint64_t)i * WASI_IOVEC_SIZE + 4);
        void *b = keel_guest_ptr(mem, buf, len);
        if (!b)
            return WASI_EFAULT;
        if (total + len > UINT32_MAX)
            len = (uint32_t)(UINT32_MAX - total);
        total += len;
        if (into_guest)
            keel_guest_prepare_write(b, len);
        iov[k].iov_base = b;
        iov[k].iov_len = len;
        k++;
    }
    *count = k;
    return WASI_ESUCCESS;
}

/* For streams that may block (pipes, ttys, sockets) opened blocking, waits
 * until host fd is ready for `events`, but when the current call has a
 * deadline never past it: keel_rt_check_deadline() traps then. Holds no
 * resources, so trapping here is safe. Regular files and directories never
 * block and are not waited for. */
static void wait_ready(const keel_wasi_fd *e, short events)
{
    if (e->filetype == WASI_FILETYPE_REGULAR_FILE ||
        e->filetype == WASI_FILETYPE_DIRECTORY)
        return;
    if (keel_rt_deadline_remaining_ns() == INT64_MAX)
        return;   /* no deadline: ordinary blocking I/O */
    int fl = fcntl(e->host, F_GETFL);
    if (fl < 0 || (fl & O_NONBLOCK))
        return;
    for (;;) {
        int64_t rem = keel_rt_deadline_remaining_ns();
        if (rem <= 0) {
            keel_rt_check_deadline();
            rem = 1000000;   /* clock skew: check again in 1 ms */
        }
        struct timespec ts = { rem / 1000000000, rem % 1000000000 };
        struct pollfd pfd = { .fd = e->host, .events = events };
        int r = ppoll(&pfd, 1, &ts, NULL);
        if (r > 0)
            return;
        if (r < 0 && errno != EINTR)
            return;   /* let the I/O call report it */
        keel_rt_check_deadline();
    }
}

/* Writes a u32 result to a guest address checked earlier. */
#define PUT_RESULT32(p, v) wasi_put_u32((p), (uint32_t)(v))

uint32_t WASI_FN(fd_read)(WASI_CTX, uint32_t fd, uint32_t iovs, uint32_t iovs_len,
                          uint32_t nread_out)
{
    keel_wasi_fd *e;
    struct iovec iov[KEEL_WASI_MAX_IOVS];
    int n;
    uint32_t rc = keel_wasi_fd_check(WASI_STATE(ctx), fd, WASI_RIGHT_FD_READ, &e);
    if (rc)
        return rc;
    uint8_t *out = keel_guest_ptr(WASI_MEM(ctx), nread_out, 4);
    if (!out)
        return WASI_EFAULT;
    if ((rc = get_iovs(WASI_MEM(ctx), iovs, iovs_len, iov, &n, true)))
        return rc;
    wait_ready(e, POLLIN);
    ssize_t r;
    while ((r = readv(e->host, iov, n)) < 0 && errno == EINTR)
        keel_rt_check_deadline();
    if (r < 0)
        return keel_wasi_errno(errno);
    PUT_RESULT32(out, r);
    return WASI_ESUCCESS;
}

uint32_t WASI_FN(fd_write)(WASI_CTX, uint32_t fd, uint32_t iovs, uint32_t iovs_len,
                           uint32_t nwritten_out)
{
    keel_wasi_fd *e;
    struct iovec iov[KEEL_WASI_MAX_IOVS];
    int n;
    uint32_t rc = keel_wasi_fd_check(WASI_STATE(ctx), fd, WASI_RIGHT_FD_WRITE, &e);
    if (rc)
        return rc;
    uint8_t *out = keel_guest_ptr(WASI_MEM(ctx), nwritten_out, 4);
    if (!out)
        return WASI_EFAULT;
    if ((rc = get_iovs(WASI_MEM(ctx), iovs, iovs_len, iov, &n, false)))
        return rc;
    wait_ready(e, POLLOUT);
    ssize_t r;
    while ((r = writev(e->host, iov, n)) < 0 && errno == EINTR)
        keel_rt_check_deadline();
    if (r < 0)
        return keel_wasi_errno(errno);
    if (!e->owned)
        WASI_STATE(ctx)->stdio_written += (uint64_t)r;
    PUT_RESULT32(out, r);
    return WASI_ESUCCESS;
}

/* Shared body of fd_pread / fd_pwrite. */
static uint32_t positioned_io(WASI_CTX, uint32_t fd, uint32_t iovs, uint32_t iovs_len,
                              uint64_t offset, uint32_t count_out, bool write)
{
    keel_wasi_fd *e;
    struct iovec iov[KEEL_WASI_MAX_IOVS];
    int n;
    uint64_t need = (write ? WASI_RIGHT_FD_WRITE : WASI_RIGHT_FD_READ) | WASI_RIGHT_FD_SEEK;
    uint32_t rc = keel_wasi_fd_check(WASI_STATE(ctx), fd, need, &e);
    if (rc)
        return rc;
    uint8_t *out = keel_guest_ptr(WASI_MEM(ctx), count_out, 4);
    if (!out)
        return WASI_EFAULT;
    if ((rc = get_iovs(WASI_MEM(ctx), iovs, iovs_len, iov, &n, !write)))
        return rc;
    if (offset > INT64_MAX)
        return WASI_EINVAL;
    ssize_t r;
    do {
        r = write ? pwritev(e->host, iov, n, (off_t)offset)
                  : preadv(e->host, iov, n, (off_t)offset);
    } while (r < 0 && errno == EINTR);
    if (r < 0)
        return keel_wasi_errno(errno);
    PUT_RESULT32(out, r);
    return WASI_ESUCCESS;
}

uint32_t WASI_FN(fd_pread)(WASI_CTX, uint32_t fd, uint32_t iovs, uint32_t iovs_len,
                           uint64_t offset, uint32_t nread_out)
{
    return positioned_io(ctx, fd, iovs, iovs_len, offset, nread_out, false);
}

uint32_t WASI_FN(fd_pwrite)(WASI_CTX, uint32_t fd, uint32_t iovs, uint32_t iovs_len,
                            uint64_t offset, uint32_t nwritten_out)
{
    return positioned_io(ctx, fd, iovs, iovs_len, offset, nwritten_out, true);
}

uint32_t WASI_FN(fd_seek)(WASI_CTX, uint32_t fd, uint64_t offset, uint32_t whence,
                          uint32_t newoffset_out)
{
    keel_wasi_fd *e;
    int hw;
    switch (whence) {
    case WASI_WHENCE_SET: hw = SEEK_SET; break;
    case WASI_WHENCE_CUR: hw = SEEK_CUR; break;
    case WASI_WHENCE_END: hw = SEEK_END; break;
    default: return WASI_EINVAL;
    }
    /* A zero move from the current position is a tell. */
    uint64_t need = (offset == 0 && hw == SEEK_CUR) ? WASI_RIGHT_FD_TELL : WASI_RIGHT_FD_SEEK;
    uint32_t rc = keel_wasi_fd_check(WASI_STATE(ctx), fd, need, &e);
    if (rc)
        return rc;
    uint8_t *out = keel_guest_ptr(WASI_MEM(ctx), newoffset_out, 8);
    if (!out)
        return WASI_EFAULT;
    off_t r = lseek(e->host, (off_t)(int64_t)offset, hw);
    if (r < 0)
        return keel_wasi_errno(errno);
    wasi_put_u64(out, (uint64_t)r);
    return WASI_ESUCCESS;
}

uint32_t WASI_FN(fd_tell)(WASI_CTX, uint32_t fd, uint32_t offset_out)
{
    keel_wasi_fd *e;
    uint32_t rc = keel_wasi_fd_check(WASI_STATE(ctx), fd, WASI_RIGHT_FD_TELL, &e);
    if (rc)
        return rc;
    uint8_t *out = keel_guest_ptr(WASI_MEM(ctx), offset_out, 8);
    if (!out)
        return WASI_EFAULT;
    off_t r = lseek(e->host, 0, SEEK_CUR);
    if (r < 0)
        return keel_wasi_errno(errno);
    wasi_put_u64(out, (uint64_t)r);
    return WASI_ESUCCESS;
}

uint32_t WASI_FN(fd_close)(WASI_CTX, uint32_t fd)
{
    keel_wasi_fd *e = keel_wasi_fd_get(WASI_STATE(ctx), fd);
    if (!e)
        return WASI_EBADF;
    keel_wasi_fd_release(e);
    return WASI_ESUCCESS;
}

/* Both fds must be open (as in wasmtime and uvwasi); `to` is closed and
 * replaced by `fd`, which becomes free. */
uint32_t WASI_FN(fd_renumber)(WASI_CTX, uint32_t fd, uint32_t to)
{
    struct keel_wasi *w = WASI_STATE(ctx);
    keel_wasi_fd *from = keel_wasi_fd_get(w, fd), *dst = keel_wasi_fd_get(w, to);
    if (!from || !dst)
        return WASI_EBADF;
    if (fd == to)
        return WASI_ESUCCESS;
    keel_wasi_fd_release(dst);
    *dst = *from;
    memset(from, 0, sizeof *from);
    from->host = -1;
    return WASI_ESUCCESS;
}

uint32_t WASI_FN(fd_datasync)(WASI_CTX, uint32_t fd)
{
    keel_wasi_fd *e;
    uint32_t rc = keel_wasi_fd_check(WASI_STATE(ctx), fd, WASI_RIGHT_FD_DATASYNC, &e);
    if (rc)
        return rc;
    return fdatasync(e->host) == 0 ? WASI_ESUCCESS : keel_wasi_errno(errno);
}

uint32_t WASI_FN(fd_sync)(WASI_CTX, uint32_t fd)
{
    keel_wasi_fd *e;
    uint32_t rc = keel_wasi_fd_check(WASI_STATE(ctx), fd, WASI_RIGHT_FD_SYNC, &e);
    if (rc)
        return rc;
    return fsync(e->host) == 0 ? WASI_ESUCCESS : keel_wasi_errno(errno);
}

/* WASI fdflags of a host fd's status flags. */
static uint16_t host_fdflags(int fl)
{
    uint16_t f = 0;
    if (fl & O_APPEND) f |= WASI_FDFLAG_APPEND;
    if (fl & O_NONBLOCK) f |= WASI_FDFLAG_NONBLOCK;
    if ((fl & O_SYNC) == O_SYNC) f |= WASI_FDFLAG_SYNC | WASI_FDFLAG_RSYNC;
    else if (fl & O_DSYNC) f |= WASI_FDFLAG_DSYNC;
    return f;
}

uint32_t WASI_FN(fd_fdstat_get)(WASI_CTX, uint32_t fd, uint32_t stat_out)
{
    keel_wasi_fd *e = keel_wasi_fd_get(WASI_STATE(ctx), fd);
    if (!e)
        return WASI_EBADF;
    uint8_t *p = keel_guest_ptr(WASI_MEM(ctx), stat_out, WASI_FDSTAT_SIZE);
    if (!p)
        return WASI_EFAULT;
    int fl = fcntl(e->host, F_GETFL);
    if (fl < 0)
        return keel_wasi_errno(errno);
    memset(p, 0, WASI_FDSTAT_SIZE);
    wasi_put_u8(p, e->filetype);
    wasi_put_u16(p + 2, host_fdflags(fl));
    wasi_put_u64(p + 8, e->rights_base);
    wasi_put_u64(p + 16, e->rights_inheriting);
    return WASI_ESUCCESS;
}

/* Only APPEND and NONBLOCK can change on Linux after open; asking to change
 * the sync flags is ENOTSUP. Stdio fds lack FD_FDSTAT_SET_FLAGS: their host
 * fds are shared with the server. */
uint32_t WASI_FN(fd_fdstat_set_flags)(WASI_CTX, uint32_t fd, uint32_t flags)
{
    keel_wasi_fd *e;
    uint32_t rc = keel_wasi_fd_check(WASI_STATE(ctx), fd, WASI_RIGHT_FD_FDSTAT_SET_FLAGS, &e);
    if (rc)
        return rc;
    if (flags & ~(uint32_t)WASI_FDFLAG_ALL)
        return WASI_EINVAL;
    int fl = fcntl(e->host, F_GETFL);
    if (fl < 0)
        return keel_wasi_errno(errno);
    uint16_t syncs = WASI_FDFLAG_DSYNC | WASI_FDFLAG_SYNC | WASI_FDFLAG_RSYNC;
    if ((flags & syncs) != (host_fdflags(fl) & syncs))
        return WASI_ENOTSUP;
    if ((flags & WASI_FDFLAG_APPEND) && !(e->rights_base & WASI_RIGHT_FD_WRITE))
        return WASI_ENOTCAPABLE;
    fl &= ~(O_APPEND | O_NONBLOCK);
    if (flags & WASI_FDFLAG_APPEND) fl |= O_APPEND;
    if (flags & WASI_FDFLAG_NONBLOCK) fl |= O_NONBLOCK;
    return fcntl(e->host, F_SETFL, fl) == 0 ? WASI_ESUCCESS : keel_wasi_errno(errno);
}

/* Rights can only be dropped, never gained. */
uint32_t WASI_FN(fd_fdstat_set_rights)(WASI_CTX, uint32_t fd, uint64_t base, uint64_t inheriting)
{
    keel_wasi_fd *e = keel_wasi_fd_get(WASI_STATE(ctx), fd);
    if (!e)
        return WASI_EBADF;
    if ((base & ~e->rights_base) || (inheriting & ~e->rights_inheriting))
        return WASI_ENOTCAPABLE;
    e->rights_base = base;
    e->rights_inheriting = inheriting;
    return WASI_ESUCCESS;
}

uint32_t WASI_FN(fd_filestat_get)(WASI_CTX, uint32_t fd, uint32_t stat_out)
{
    keel_wasi_fd *e;
    struct stat st;
    uint32_t rc = keel_wasi_fd_check(WASI_STATE(ctx), fd, WASI_RIGHT_FD_FILESTAT_GET, &e);
    if (rc)
        return rc;
    uint8_t *p = keel_guest_ptr(WASI_MEM(ctx), stat_out, WASI_FILESTAT_SIZE);
    if (!p)
        return WASI_EFAULT;
    if (fstat(e->host, &st) != 0)
        return keel_wasi_errno(errno);
    keel_wasi_put_filestat(p, &st);
    return WASI_ESUCCESS;
}

uint32_t WASI_FN(fd_filestat_set_size)(WASI_CTX, uint32_t fd, uint64_t size)
{
    keel_wasi_fd *e;
    uint32_t rc = keel_wasi_fd_check(WASI_STATE(ctx), fd, WASI_RIGHT_FD_FILESTAT_SET_SIZE, &e);
    if (rc)
        return rc;
    if (size > INT64_MAX)
        return WASI_EINVAL;
    return ftruncate(e->host, (off_t)size) == 0 ? WASI_ESUCCESS : keel_wasi_errno(errno);
}

uint32_t keel_wasi_times(uint64_t atim, uint64_t mtim, uint32_t fst, struct timespec ts[2])
{
    const uint32_t all = WASI_FSTFLAG_ATIM | WASI_FSTFLAG_ATIM_NOW |
                         WASI_FSTFLAG_MTIM | WASI_FSTFLAG_MTIM_NOW;
    if ((fst & ~all) ||
        (fst & (WASI_FSTFLAG_ATIM | WASI_FSTFLAG_ATIM_NOW)) ==
            (WASI_FSTFLAG_ATIM | WASI_FSTFLAG_ATIM_NOW) ||
        (fst & (WASI_FSTFLAG_MTIM | WASI_FSTFLAG_MTIM_NOW)) ==
            (WASI_FSTFLAG_MTIM | WASI_FSTFLAG_MTIM_NOW))
        return WASI_EINVAL;
    uint64_t v[2] = { atim, mtim };
    uint32_t set[2] = { WASI_FSTFLAG_ATIM, WASI_FSTFLAG_MTIM };
    uint32_t now[2] = { WASI_FSTFLAG_ATIM_NOW, WASI_FSTFLAG_MTIM_NOW };
    for (int i = 0; i < 2; i++) {
        if (fst & now[i]) {
            ts[i].tv_sec = 0;
            ts[i].tv_nsec = UTIME_NOW;
        } else if (fst & set[i]) {
            ts[i].tv_sec = (time_t)(v[i] / 1000000000u);
            ts[i].tv_nsec = (long)(v[i] % 1000000000u);
        } else {
            ts[i].tv_sec = 0;
            ts[i].tv_nsec = UTIME_OMIT;
        }
    }
    return WASI_ESUCCESS;
}

uint32_t WASI_FN(fd_filestat_set_times)(WASI_CTX, uint32_t fd, uint64_t atim, uint64_t mtim,
                                        uint32_t fstflags)
{
    keel_wasi_fd *e;
    struct timespec ts[2];
    uint32_t rc = keel_wasi_fd_check(WASI_STATE(ctx), fd, WASI_RIGHT_FD_FILESTAT_SET_TIMES, &e);
    if (rc)
        return rc;
    if ((rc = keel_wasi_times(atim, mtim, fstflags, ts)))
        return rc;
    return futimens(e->host, ts) == 0 ? WASI_ESUCCESS : keel_wasi_errno(errno);
}

uint32_t WASI_FN(fd_advise)(WASI_CTX, uint32_t fd, uint64_t offset, uint64_t len, uint32_t advice)
{
    keel_wasi_fd *e;
    static const int map[] = {
        [WASI_ADVICE_NORMAL] = POSIX_FADV_NORMAL, [WASI_ADVICE_SEQUENTIAL] = POSIX_FADV_SEQUENTIAL,
        [WASI_ADVICE_RANDOM] = POSIX_FADV_RANDOM, [WASI_ADVICE_WILLNEED] = POSIX_FADV_WILLNEED,
        [WASI_ADVICE_DONTNEED] = POSIX_FADV_DONTNEED, [WASI_ADVICE_NOREUSE] = POSIX_FADV_NOREUSE,
    };
    uint32_t rc = keel_wasi_fd_check(WASI_STATE(ctx), fd, WASI_RIGHT_FD_ADVISE, &e);
    if (rc)
        return rc;
    if (advice > WASI_ADVICE_NOREUSE || offset > INT64_MAX || len > INT64_MAX)
        return WASI_EINVAL;
    int r = posix_fadvise(e->host, (off_t)offset, (off_t)len, map[advice]);
    return r == 0 ? WASI_ESUCCESS : keel_wasi_errno(r);
}

uint32_t WASI_FN(fd_allocate)(WASI_CTX, uint32_t fd, uint64_t offset, uint64_t len)
{
    keel_wasi_fd *e;
    uint32_t rc = keel_wasi_fd_check(WASI_STATE(ctx), fd, WASI_RIGHT_FD_ALLOCATE, &e);
    if (rc)
        return rc;
    if (offset > INT64_MAX || len > INT64_MAX || offset + len > INT64_MAX)
        return WASI_EINVAL;
    int r = posix_fallocate(e->host, (off_t)offset, (off_t)len);
    return r == 0 ? WASI_ESUCCESS : keel_wasi_errno(r);
}

uint32_t WASI_FN(fd_prestat_get)(WASI_CTX, uint32_t fd, uint32_t prestat_out)
{
    keel_wasi_fd *e = keel_wasi_fd_get(WASI_STATE(ctx), fd);
    if (!e || !e->preopen)
        return WASI_EBADF;   /* wasi-libc stops its preopen scan at EBADF */
    uint8_t *p = keel_guest_ptr(WASI_MEM(ctx), prestat_out, WASI_PRESTAT_SIZE);
    if (!p)
        return WASI_EFAULT;
    memset(p, 0, WASI_PRESTAT_SIZE);
    wasi_put_u8(p, WASI_PREOPENTYPE_DIR);
    wasi_put_u32(p + 4, (uint32_t)strlen(e->preopen));
    return WASI_ESUCCESS;
}

uint32_t WASI_FN(fd_prestat_dir_name)(WASI_CTX, uint32_t fd, uint32_t path, uint32_t path_len)
{
    keel_wasi_fd *e = keel_wasi_fd_get(WASI_STATE(ctx), fd);
    if (!e || !e->preopen)
        return WASI_EBADF;
    uint8_t *p = keel_guest_ptr(WASI_MEM(ctx), path, path_len);
    if (!p)
        return WASI_EFAULT;
    size_t n = strlen(e->preopen);
    if (path_len < n)
        return WASI_ENAMETOOLONG;
    memcpy(p, e->preopen, n);
    return WASI_ESUCCESS;
}

static uint8_t dirent_type(unsigned char d_type)
{
    switch (d_type) {
    case DT_REG: return WASI_FILETYPE_REGULAR_FILE;
    case DT_DIR: return WASI_FILETYPE_DIRECTORY;
    case DT_LNK: return WASI_FILETYPE_SYMBOLIC_LINK;
    case DT_CHR: return WASI_FILETYPE_CHARACTER_DEVICE;
    case DT_BLK: return WASI_FILETYPE_BLOCK_DEVICE;
    case DT_SOCK: return WASI_FILETYPE_SOCKET_STREAM;
    default: return WASI_FILETYPE_UNKNOWN;
    }
}

/* Cookies are the kernel's directory offsets (getdents64 d_off): cookie 0
 * is the start, and each entry's d_next is the offset just past it, so a
 * later call with that cookie resumes after the entry. The buffer is filled
 * completely, the last entry truncated if needed; bufused < buf_len means
 * the end of the directory was reached. Includes "." and "..". */
uint32_t WASI_FN(fd_readdir)(WASI_CTX, uint32_t fd, uint32_t buf, uint32_t buf_len,
                             uint64_t cookie, uint32_t bufused_out)
{
    keel_wasi_fd *e;
    uint32_t rc = keel_wasi_fd_check(WASI_STATE(ctx), fd, WASI_RIGHT_FD_READDIR, &e);
    if (rc)
        return rc;
    uint8_t *out = keel_guest_ptr(WASI_MEM(ctx), buf, buf_len);
    uint8_t *used_p = keel_guest_ptr(WASI_MEM(ctx), bufused_out, 4);
    if (!out || !used_p)
        return WASI_EFAULT;
    if (e->filetype != WASI_FILETYPE_DIRECTORY)
        return WASI_ENOTDIR;
    if (cookie > INT64_MAX)
        return WASI_EINVAL;
    if (lseek(e->host, (off_t)cookie, SEEK_SET) < 0)
        return keel_wasi_errno(errno);

    _Alignas(8) char hbuf[READDIR_HOST_BUF];
    uint32_t used = 0;
    while (used < buf_len) {
        ssize_t n = getdents64(e->host, hbuf, sizeof hbuf);
        if (n < 0)
            return keel_wasi_errno(errno);
        if (n == 0)
            break;
        for (ssize_t off = 0; off < n && used < buf_len;) {
            struct dirent64 *d = (struct dirent64 *)(void *)(hbuf + off);
            off += d->d_reclen;
            uint8_t hdr[WASI_DIRENT_SIZE];
            size_t namlen = strlen(d->d_name);
            memset(hdr, 0, sizeof hdr);
            wasi_put_u64(hdr, (uint64_t)d->d_off);
            wasi_put_u64(hdr + 8, (uint64_t)d->d_ino);
            wasi_put_u32(hdr + 16, (uint32_t)namlen);
            wasi_put_u8(hdr + 20, dirent_type(d->d_type));
            uint32_t k = buf_len - used < sizeof hdr ? buf_len - used : (uint32_t)sizeof hdr;
            memcpy(out + used, hdr, k);
            used += k;
            k = buf_len - used < namlen ? buf_len - used : (uint32_t)namlen;
            memcpy(out + used, d->d_name, k);
            used += k;
        }
    }
    wasi_put_u32(used_p, used);
    return WASI_ESUCCESS;
}
