/* wasi_int.h — private to src/wasi: WASI preview1 constants (numbered as in
 * wasi_snapshot_preview1.witx), the per-instance state and fd table, and
 * small helpers shared by the host-function files. */
#ifndef KEEL_WASI_INT_H
#define KEEL_WASI_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/host_abi.h"
#include "wasi/wasi.h"
#include "wasi/wasi_imports.h"

/* --- errno (witx `errno`, u16) --- */
enum {
    WASI_ESUCCESS = 0, WASI_E2BIG = 1, WASI_EACCES = 2, WASI_EADDRINUSE = 3,
    WASI_EADDRNOTAVAIL = 4, WASI_EAFNOSUPPORT = 5, WASI_EAGAIN = 6,
    WASI_EALREADY = 7, WASI_EBADF = 8, WASI_EBADMSG = 9, WASI_EBUSY = 10,
    WASI_ECANCELED = 11, WASI_ECHILD = 12, WASI_ECONNABORTED = 13,
    WASI_ECONNREFUSED = 14, WASI_ECONNRESET = 15, WASI_EDEADLK = 16,
    WASI_EDESTADDRREQ = 17, WASI_EDOM = 18, WASI_EDQUOT = 19, WASI_EEXIST = 20,
    WASI_EFAULT = 21, WASI_EFBIG = 22, WASI_EHOSTUNREACH = 23, WASI_EIDRM = 24,
    WASI_EILSEQ = 25, WASI_EINPROGRESS = 26, WASI_EINTR = 27, WASI_EINVAL = 28,
    WASI_EIO = 29, WASI_EISCONN = 30, WASI_EISDIR = 31, WASI_ELOOP = 32,
    WASI_EMFILE = 33, WASI_EMLINK = 34, WASI_EMSGSIZE = 35, WASI_EMULTIHOP = 36,
    WASI_ENAMETOOLONG = 37, WASI_ENETDOWN = 38, WASI_ENETRESET = 39,
    WASI_ENETUNREACH = 40, WASI_ENFILE = 41, WASI_ENOBUFS = 42, WASI_ENODEV = 43,
    WASI_ENOENT = 44, WASI_ENOEXEC = 45, WASI_ENOLCK = 46, WASI_ENOLINK = 47,
    WASI_ENOMEM = 48, WASI_ENOMSG = 49, WASI_ENOPROTOOPT = 50, WASI_ENOSPC = 51,
    WASI_ENOSYS = 52, WASI_ENOTCONN = 53, WASI_ENOTDIR = 54, WASI_ENOTEMPTY = 55,
    WASI_ENOTRECOVERABLE = 56, WASI_ENOTSOCK = 57, WASI_ENOTSUP = 58,
    WASI_ENOTTY = 59, WASI_ENXIO = 60, WASI_EOVERFLOW = 61, WASI_EOWNERDEAD = 62,
    WASI_EPERM = 63, WASI_EPIPE = 64, WASI_EPROTO = 65, WASI_EPROTONOSUPPORT = 66,
    WASI_EPROTOTYPE = 67, WASI_ERANGE = 68, WASI_EROFS = 69, WASI_ESPIPE = 70,
    WASI_ESRCH = 71, WASI_ESTALE = 72, WASI_ETIMEDOUT = 73, WASI_ETXTBSY = 74,
    WASI_EXDEV = 75, WASI_ENOTCAPABLE = 76,
};

/* --- filetype (u8) --- */
enum {
    WASI_FILETYPE_UNKNOWN = 0, WASI_FILETYPE_BLOCK_DEVICE = 1,
    WASI_FILETYPE_CHARACTER_DEVICE = 2, WASI_FILETYPE_DIRECTORY = 3,
    WASI_FILETYPE_REGULAR_FILE = 4, WASI_FILETYPE_SOCKET_DGRAM = 5,
    WASI_FILETYPE_SOCKET_STREAM = 6, WASI_FILETYPE_SYMBOLIC_LINK = 7,
};

/* --- fdflags (u16), oflags (u16), lookupflags (u32), fstflags (u16) --- */
#define WASI_FDFLAG_APPEND   0x01
#define WASI_FDFLAG_DSYNC    0x02
#define WASI_FDFLAG_NONBLOCK 0x04
#define WASI_FDFLAG_RSYNC    0x08
#define WASI_FDFLAG_SYNC     0x10
#define WASI_FDFLAG_ALL      0x1f

#define WASI_OFLAG_CREAT     0x01
#define WASI_OFLAG_DIRECTORY 0x02
#define WASI_OFLAG_EXCL      0x04
#define WASI_OFLAG_TRUNC     0x08
#define WASI_OFLAG_ALL       0x0f

#define WASI_LOOKUP_SYMLINK_FOLLOW 0x01

#define WASI_FSTFLAG_ATIM     0x01
#define WASI_FSTFLAG_ATIM_NOW 0x02
#define WASI_FSTFLAG_MTIM     0x04
#define WASI_FSTFLAG_MTIM_NOW 0x08

/* --- whence (u8), clockid (u32), advice (u8), eventtype (u8) --- */
enum { WASI_WHENCE_SET = 0, WASI_WHENCE_CUR = 1, WASI_WHENCE_END = 2 };
enum {
    WASI_CLOCK_REALTIME = 0, WASI_CLOCK_MONOTONIC = 1,
    WASI_CLOCK_PROCESS_CPUTIME = 2, WASI_CLOCK_THREAD_CPUTIME = 3,
};
enum {
    WASI_ADVICE_NORMAL = 0, WASI_ADVICE_SEQUENTIAL = 1, WASI_ADVICE_RANDOM = 2,
    WASI_ADVICE_WILLNEED = 3, WASI_ADVICE_DONTNEED = 4, WASI_ADVICE_NOREUSE = 5,
};
enum { WASI_EVENTTYPE_CLOCK = 0, WASI_EVENTTYPE_FD_READ = 1, WASI_EVENTTYPE_FD_WRITE = 2 };
#define WASI_SUBCLOCK_ABSTIME       0x01
#define WASI_EVENTRW_HANGUP         0x01
#define WASI_PREOPENTYPE_DIR        0

/* --- rights (u64) --- */
#define WASI_R(n) (UINT64_C(1) << (n))
#define WASI_RIGHT_FD_DATASYNC             WASI_R(0)
#define WASI_RIGHT_FD_READ                 WASI_R(1)
#define WASI_RIGHT_FD_SEEK                 WASI_R(2)
#define WASI_RIGHT_FD_FDSTAT_SET_FLAGS     WASI_R(3)
#define WASI_RIGHT_FD_SYNC                 WASI_R(4)
#define WASI_RIGHT_FD_TELL                 WASI_R(5)
#define WASI_RIGHT_FD_WRITE                WASI_R(6)
#define WASI_RIGHT_FD_ADVISE               WASI_R(7)
#define WASI_RIGHT_FD_ALLOCATE             WASI_R(8)
#define WASI_RIGHT_PATH_CREATE_DIRECTORY   WASI_R(9)
#define WASI_RIGHT_PATH_CREATE_FILE        WASI_R(10)
#define WASI_RIGHT_PATH_LINK_SOURCE        WASI_R(11)
#define WASI_RIGHT_PATH_LINK_TARGET        WASI_R(12)
#define WASI_RIGHT_PATH_OPEN               WASI_R(13)
#define WASI_RIGHT_FD_READDIR              WASI_R(14)
#define WASI_RIGHT_PATH_READLINK           WASI_R(15)
#define WASI_RIGHT_PATH_RENAME_SOURCE      WASI_R(16)
#define WASI_RIGHT_PATH_RENAME_TARGET      WASI_R(17)
#define WASI_RIGHT_PATH_FILESTAT_GET       WASI_R(18)
#define WASI_RIGHT_PATH_FILESTAT_SET_SIZE  WASI_R(19)
#define WASI_RIGHT_PATH_FILESTAT_SET_TIMES WASI_R(20)
#define WASI_RIGHT_FD_FILESTAT_GET         WASI_R(21)
#define WASI_RIGHT_FD_FILESTAT_SET_SIZE    WASI_R(22)
#define WASI_RIGHT_FD_FILESTAT_SET_TIMES   WASI_R(23)
#define WASI_RIGHT_PATH_SYMLINK            WASI_R(24)
#define WASI_RIGHT_PATH_REMOVE_DIRECTORY   WASI_R(25)
#define WASI_RIGHT_PATH_UNLINK_FILE        WASI_R(26)
#define WASI_RIGHT_POLL_FD_READWRITE       WASI_R(27)
#define WASI_RIGHT_SOCK_SHUTDOWN           WASI_R(28)
#define WASI_RIGHT_SOCK_ACCEPT             WASI_R(29)

/* Rights that change file contents, metadata or the namespace. */
#define WASI_RIGHTS_WRITING \
    (WASI_RIGHT_FD_WRITE | WASI_RIGHT_FD_ALLOCATE | WASI_RIGHT_FD_FILESTAT_SET_SIZE | \
     WASI_RIGHT_FD_FILESTAT_SET_TIMES | WASI_RIGHT_PATH_CREATE_DIRECTORY | \
     WASI_RIGHT_PATH_CREATE_FILE | WASI_RIGHT_PATH_LINK_SOURCE | WASI_RIGHT_PATH_LINK_TARGET | \
     WASI_RIGHT_PATH_RENAME_SOURCE | WASI_RIGHT_PATH_RENAME_TARGET | \
     WASI_RIGHT_PATH_FILESTAT_SET_SIZE | WASI_RIGHT_PATH_FILESTAT_SET_TIMES | \
     WASI_RIGHT_PATH_SYMLINK | WASI_RIGHT_PATH_REMOVE_DIRECTORY | WASI_RIGHT_PATH_UNLINK_FILE)

/* Rights meaningful on a regular file (and other non-directories). */
#define WASI_RIGHTS_FILE \
    (WASI_RIGHT_FD_DATASYNC | WASI_RIGHT_FD_READ | WASI_RIGHT_FD_SEEK | \
     WASI_RIGHT_FD_FDSTAT_SET_FLAGS | WASI_RIGHT_FD_SYNC | WASI_RIGHT_FD_TELL | \
     WASI_RIGHT_FD_WRITE | WASI_RIGHT_FD_ADVISE | WASI_RIGHT_FD_ALLOCATE | \
     WASI_RIGHT_FD_FILESTAT_GET | WASI_RIGHT_FD_FILESTAT_SET_SIZE | \
     WASI_RIGHT_FD_FILESTAT_SET_TIMES | WASI_RIGHT_POLL_FD_READWRITE)

/* Rights meaningful on a directory. */
#define WASI_RIGHTS_DIR \
    (WASI_RIGHT_FD_DATASYNC | WASI_RIGHT_FD_FDSTAT_SET_FLAGS | WASI_RIGHT_FD_SYNC | \
     WASI_RIGHT_PATH_CREATE_DIRECTORY | WASI_RIGHT_PATH_CREATE_FILE | \
     WASI_RIGHT_PATH_LINK_SOURCE | WASI_RIGHT_PATH_LINK_TARGET | WASI_RIGHT_PATH_OPEN | \
     WASI_RIGHT_FD_READDIR | WASI_RIGHT_PATH_READLINK | WASI_RIGHT_PATH_RENAME_SOURCE | \
     WASI_RIGHT_PATH_RENAME_TARGET | WASI_RIGHT_PATH_FILESTAT_GET | \
     WASI_RIGHT_PATH_FILESTAT_SET_SIZE | WASI_RIGHT_PATH_FILESTAT_SET_TIMES | \
     WASI_RIGHT_FD_FILESTAT_GET | WASI_RIGHT_FD_FILESTAT_SET_TIMES | \
     WASI_RIGHT_PATH_SYMLINK | WASI_RIGHT_PATH_REMOVE_DIRECTORY | \
     WASI_RIGHT_PATH_UNLINK_FILE)

/* Rights of stdio and other streams Keel did not open for the guest: no
 * truncation, allocation or time changes of a host fd Keel shares. */
#define WASI_RIGHTS_STDIO \
    (WASI_RIGHT_FD_READ | WASI_RIGHT_FD_WRITE | WASI_RIGHT_FD_FILESTAT_GET | \
     WASI_RIGHT_POLL_FD_READWRITE)

/* --- guest struct layouts (bytes) --- */
#define WASI_IOVEC_SIZE    8    /* buf u32 @0, buf_len u32 @4 */
#define WASI_FDSTAT_SIZE   24   /* filetype u8 @0, flags u16 @2, base u64 @8, inh u64 @16 */
#define WASI_FILESTAT_SIZE 64   /* dev @0 ino @8 filetype u8 @16 nlink @24 size @32 atim @40 mtim @48 ctim @56 */
#define WASI_PRESTAT_SIZE  8    /* tag u8 @0, name_len u32 @4 */
#define WASI_DIRENT_SIZE   24   /* d_next u64 @0, d_ino u64 @8, d_namlen u32 @16, d_type u8 @20 */
#define WASI_SUBSCRIPTION_SIZE 48 /* userdata u64 @0, tag u8 @8, union @16 */
#define WASI_EVENT_SIZE    32   /* userdata @0, error u16 @8, type u8 @10, nbytes u64 @16, flags u16 @24 */

/* --- state --- */
typedef struct keel_wasi_fd {
    int host;                 /* host fd; -1 when the slot is free */
    uint8_t filetype;         /* WASI_FILETYPE_* */
    bool owned;               /* keel closes host on fd_close / free */
    bool readonly;            /* lives under a read-only preopen */
    char *preopen;            /* guest name when a preopened dir (owned), else NULL */
    uint64_t rights_base;
    uint64_t rights_inheriting;
} keel_wasi_fd;

/* Fd slots a keel_wasi holds in itself before its table moves to the heap. */
#define KEEL_WASI_INLINE_FDS 8

/* One allocation: the struct, then the args and environment strings; the
 * fd table too while it fits in fds_inline. */
struct keel_wasi {
    keel_wasi_fd *fds;        /* slots [0, nfds); grows up to KEEL_WASI_MAX_FDS */
    uint32_t nfds;
    char *args;               /* argv strings, each NUL-terminated, back to back */
    uint32_t argc, args_size;
    char *env;                /* "KEY=VALUE" strings the same way */
    uint32_t envc, env_size;
    uint64_t stdio_written;   /* bytes fd_write put in fds Keel did not open */
    keel_wasi_fd fds_inline[KEEL_WASI_INLINE_FDS];
    char strings[];           /* args, then env */
};

/* --- helpers (wasi.c) --- */

/* Entry for guest fd, or NULL when fd is not open. */
keel_wasi_fd *keel_wasi_fd_get(struct keel_wasi *w, uint32_t fd);

/* Looks up fd and checks it has every right in `rights`: returns
 * WASI_ESUCCESS and sets *out, WASI_EBADF, or WASI_ENOTCAPABLE. */
uint32_t keel_wasi_fd_check(struct keel_wasi *w, uint32_t fd, uint64_t rights,
                            keel_wasi_fd **out);

/* Installs host (taking ownership) in the lowest free slot >= 3. Returns
 * WASI_ESUCCESS and the guest fd in *fd_out, or WASI_EMFILE / WASI_ENOMEM
 * (host is then closed). */
uint32_t keel_wasi_fd_install(struct keel_wasi *w, const keel_wasi_fd *e,
                              uint32_t *fd_out);

/* Releases a slot: closes the host fd if owned, frees the preopen name. */
void keel_wasi_fd_release(keel_wasi_fd *e);

/* WASI filetype of a host stat mode. */
uint8_t keel_wasi_filetype(mode_t mode);

/* Converts WASI atim/mtim/fstflags to utimensat times (UTIME_OMIT /
 * UTIME_NOW as asked); WASI_EINVAL for contradictory or unknown flags. */
struct timespec;
uint32_t keel_wasi_times(uint64_t atim, uint64_t mtim, uint32_t fstflags,
                         struct timespec ts[2]);

/* --- errno mapping (wasi_errno.c) --- */

/* WASI errno for a host errno value; unknown values become WASI_EIO. */
uint32_t keel_wasi_errno(int host_errno);

/* --- guest memory helpers --- */

#define WASI_STATE(ctx) (KEEL_HOST_CTX(ctx)->wasi)
#define WASI_MEM(ctx) (KEEL_HOST_CTX(ctx)->mem)

static inline void wasi_put_u8(uint8_t *p, uint8_t v) { *p = v; }
static inline void wasi_put_u16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static inline void wasi_put_u32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static inline void wasi_put_u64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static inline uint16_t wasi_get_u16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline uint32_t wasi_get_u32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint64_t wasi_get_u64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* Writes a filestat (WASI_FILESTAT_SIZE bytes at p) from a host stat. */
void keel_wasi_put_filestat(uint8_t *p, const struct stat *st);

/* --- sandboxed path resolution (sandbox.c) --- */

/* Copies a guest path [ptr, ptr+len) into buf (KEEL_WASI_MAX_PATH + 1
 * bytes) as a C string. Returns WASI_ESUCCESS, WASI_EFAULT (out of range),
 * WASI_ENAMETOOLONG, or WASI_EILSEQ (embedded NUL). */
uint32_t keel_sb_copy_path(wasm_rt_memory_t *mem, uint32_t ptr, uint32_t len,
                           char *buf);

/* Opens path beneath dirfd with openat2(RESOLVE_BENEATH |
 * RESOLVE_NO_MAGICLINKS); flags are open(2) flags (O_CLOEXEC added), mode
 * used only with O_CREAT. Without follow the last component is not followed
 * (O_NOFOLLOW). Returns a host fd >= 0 or a negated WASI errno; absolute
 * paths and escapes are WASI_ENOTCAPABLE. */
int keel_sb_open(int dirfd, const char *path, int flags, mode_t mode, bool follow);

/* The parent directory and final component of a path, for operations that
 * act on a name rather than open it. */
typedef struct keel_sb_leaf {
    int dirfd;                /* O_PATH fd of the parent directory (owned) */
    const char *name;         /* final component, points into the path buffer */
    bool trailing_slash;      /* the guest path ended in '/' */
    bool dot;                 /* name is "." or ".." (never acted on by name) */
} keel_sb_leaf;

/* Splits path (modified in place) and opens its parent beneath dirfd.
 * Returns WASI_ESUCCESS (then keel_sb_leaf_close() it) or a WASI errno:
 * ENOENT for an empty path, ENOTCAPABLE for absolute paths or escapes. */
uint32_t keel_sb_parent(int dirfd, char *path, keel_sb_leaf *out);
void keel_sb_leaf_close(keel_sb_leaf *l);

#endif
