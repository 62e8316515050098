/* wasi.c — WASI state and fd table (keel_wasi_new/free), and the host
 * functions that touch no files: args, environ, clocks, random, proc,
 * sched, sock; plus the keel_wasi_host_fns[] table the engine binds from. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/errors.h"
#include "engine/rt.h"
#include "wasi/wasi_int.h"

/* ------------------------------------------------------------------ */
/* fd table                                                            */

keel_wasi_fd *keel_wasi_fd_get(struct keel_wasi *w, uint32_t fd)
{
    if (!w || fd >= w->nfds || w->fds[fd].host < 0)
        return NULL;
    return &w->fds[fd];
}

uint32_t keel_wasi_fd_check(struct keel_wasi *w, uint32_t fd, uint64_t rights,
                            keel_wasi_fd **out)
{
    keel_wasi_fd *e = keel_wasi_fd_get(w, fd);
    if (!e)
        return WASI_EBADF;
    if ((e->rights_base & rights) != rights)
        return WASI_ENOTCAPABLE;
    *out = e;
    return WASI_ESUCCESS;
}

void keel_wasi_fd_release(keel_wasi_fd *e)
{
    if (e->host >= 0 && e->owned)
        close(e->host);
    free(e->preopen);
    memset(e, 0, sizeof *e);
    e->host = -1;
}

/* Makes slot `fd` exist (growing the table); returns false when fd is past
 * KEEL_WASI_MAX_FDS or memory runs out. New slots are free. */
static bool fd_table_reserve(struct keel_wasi *w, uint32_t fd)
{
    if (fd < w->nfds)
        return true;
    if (fd >= KEEL_WASI_MAX_FDS)
        return false;
    uint32_t n = w->nfds ? w->nfds : 8;
    while (n <= fd)
        n *= 2;
    if (n > KEEL_WASI_MAX_FDS)
        n = KEEL_WASI_MAX_FDS;
    keel_wasi_fd *t;
    if (w->fds == w->fds_inline) {
        if ((t = malloc(n * sizeof *t)))
            memcpy(t, w->fds_inline, w->nfds * sizeof *t);
    } else {
        t = realloc(w->fds, n * sizeof *t);
    }
    if (!t)
        return false;
    for (uint32_t i = w->nfds; i < n; i++) {
        memset(&t[i], 0, sizeof t[i]);
        t[i].host = -1;
    }
    w->fds = t;
    w->nfds = n;
    return true;
}

uint32_t keel_wasi_fd_install(struct keel_wasi *w, const keel_wasi_fd *e,
                              uint32_t *fd_out)
{
    uint32_t fd = 3;
    while (fd < w->nfds && w->fds[fd].host >= 0)
        fd++;
    if (!fd_table_reserve(w, fd)) {
        keel_wasi_fd tmp = *e;
        keel_wasi_fd_release(&tmp);
        return fd >= KEEL_WASI_MAX_FDS ? WASI_EMFILE : WASI_ENOMEM;
    }
    w->fds[fd] = *e;
    *fd_out = fd;
    return WASI_ESUCCESS;
}

uint8_t keel_wasi_filetype(mode_t mode)
{
    switch (mode & S_IFMT) {
    case S_IFREG: return WASI_FILETYPE_REGULAR_FILE;
    case S_IFDIR: return WASI_FILETYPE_DIRECTORY;
    case S_IFCHR: return WASI_FILETYPE_CHARACTER_DEVICE;
    case S_IFBLK: return WASI_FILETYPE_BLOCK_DEVICE;
    case S_IFLNK: return WASI_FILETYPE_SYMBOLIC_LINK;
    case S_IFSOCK: return WASI_FILETYPE_SOCKET_STREAM;
    default: return WASI_FILETYPE_UNKNOWN;   /* FIFOs included */
    }
}

static uint64_t ts_ns(struct timespec ts)
{
    if (ts.tv_sec < 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void keel_wasi_put_filestat(uint8_t *p, const struct stat *st)
{
    memset(p, 0, WASI_FILESTAT_SIZE);
    wasi_put_u64(p + 0, (uint64_t)st->st_dev);
    wasi_put_u64(p + 8, (uint64_t)st->st_ino);
    wasi_put_u8(p + 16, keel_wasi_filetype(st->st_mode));
    wasi_put_u64(p + 24, (uint64_t)st->st_nlink);
    wasi_put_u64(p + 32, (uint64_t)st->st_size);
    wasi_put_u64(p + 40, ts_ns(st->st_atim));
    wasi_put_u64(p + 48, ts_ns(st->st_mtim));
    wasi_put_u64(p + 56, ts_ns(st->st_ctim));
}

/* ------------------------------------------------------------------ */
/* create / free                                                       */

/* Bytes n NUL-terminated strings take back to back (0 when none); fails
 * on a NULL string or a total over UINT32_MAX. */
static int strings_size(int n, const char *const *s, size_t *size)
{
    uint64_t total = 0;
    for (int i = 0; i < n; i++) {
        if (!s[i])
            return KEEL_EINVAL;
        total += strlen(s[i]) + 1;
    }
    if (total > UINT32_MAX)
        return KEEL_ELIMIT;
    *size = (size_t)total;
    return 0;
}

/* Copies n strings back to back into b (strings_size bytes). */
static void pack_strings(int n, const char *const *s, char *b)
{
    for (int i = 0; i < n; i++) {
        size_t l = strlen(s[i]) + 1;
        memcpy(b, s[i], l);
        b += l;
    }
}

uint64_t keel_wasi_stdio_written(const struct keel_wasi *w)
{
    return w ? w->stdio_written : 0;
}

static void install_stdio(struct keel_wasi *w, uint32_t fd, int host, bool is_file)
{
    if (host < 0)
        return;
    struct stat st;
    keel_wasi_fd *e = &w->fds[fd];
    e->host = host;
    e->owned = false;
    if (is_file)
        e->filetype = WASI_FILETYPE_REGULAR_FILE;
    else
        e->filetype = fstat(host, &st) == 0 ? keel_wasi_filetype(st.st_mode)
                                            : WASI_FILETYPE_UNKNOWN;
    e->rights_base = WASI_RIGHTS_STDIO;
    /* e.g. stdin < file; not the host's memfds, which the guest fills or
     * drains in order (so their offset is what it wrote or read). */
    if (e->filetype == WASI_FILETYPE_REGULAR_FILE && !is_file)
        e->rights_base |= WASI_RIGHT_FD_SEEK | WASI_RIGHT_FD_TELL;
    e->rights_inheriting = 0;
}

int keel_wasi_new(const keel_wasi_config *cfg, struct keel_wasi **out,
                  char *err, size_t errlen)
{
    *out = NULL;
    if (!cfg || cfg->argc < 0 || cfg->envc < 0 || (cfg->argc && !cfg->argv) ||
        (cfg->envc && !cfg->envp) || (cfg->npreopens && !cfg->preopens))
        return keel_err(err, errlen, KEEL_EINVAL, "wasi: invalid configuration");
    if ((uint64_t)cfg->argc > UINT32_MAX / 4 || (uint64_t)cfg->envc > UINT32_MAX / 4)
        return keel_err(err, errlen, KEEL_ELIMIT, "wasi: too many args or env vars");
    if (cfg->npreopens > KEEL_WASI_MAX_FDS - 3)
        return keel_err(err, errlen, KEEL_ELIMIT, "wasi: %zu preopens exceed the limit of %d",
                        cfg->npreopens, KEEL_WASI_MAX_FDS - 3);
    for (int i = 0; i < cfg->envc; i++)
        if (cfg->envp[i] && !strchr(cfg->envp[i], '='))
            return keel_err(err, errlen, KEEL_EINVAL,
                            "wasi: environment entry %d (\"%s\") is not KEY=VALUE",
                            i, cfg->envp[i]);

    size_t args_size = 0, env_size = 0;
    int rc = strings_size(cfg->argc, cfg->argv, &args_size);
    if (rc == 0)
        rc = strings_size(cfg->envc, cfg->envp, &env_size);
    if (rc)
        return keel_err(err, errlen, rc, "wasi: cannot copy args/environment");
    struct keel_wasi *w = malloc(sizeof *w + args_size + env_size);
    if (!w)
        return keel_err(err, errlen, KEEL_ENOMEM, "wasi: out of memory");
    memset(w, 0, sizeof *w);
    w->args = w->strings;
    w->env = w->strings + args_size;
    pack_strings(cfg->argc, cfg->argv, w->args);
    pack_strings(cfg->envc, cfg->envp, w->env);
    w->args_size = (uint32_t)args_size;
    w->env_size = (uint32_t)env_size;
    w->argc = (uint32_t)cfg->argc;
    w->envc = (uint32_t)cfg->envc;
    for (uint32_t i = 0; i < KEEL_WASI_INLINE_FDS; i++)
        w->fds_inline[i].host = -1;
    w->fds = w->fds_inline;
    w->nfds = KEEL_WASI_INLINE_FDS;

    if (!fd_table_reserve(w, (uint32_t)(2 + cfg->npreopens))) {
        keel_wasi_free(w);
        return keel_err(err, errlen, KEEL_ENOMEM, "wasi: out of memory");
    }
    install_stdio(w, 0, cfg->stdin_fd, cfg->stdio_are_files);
    install_stdio(w, 1, cfg->stdout_fd, cfg->stdio_are_files);
    install_stdio(w, 2, cfg->stderr_fd, cfg->stdio_are_files);

    for (size_t i = 0; i < cfg->npreopens; i++) {
        const keel_wasi_preopen *p = &cfg->preopens[i];
        if (!p->host || !p->guest) {
            keel_wasi_free(w);
            return keel_err(err, errlen, KEEL_EINVAL, "wasi: preopen %zu has no path", i);
        }
        int fd = open(p->host, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            keel_wasi_free(w);
            return keel_err(err, errlen, KEEL_EIO, "wasi: preopen '%s': %s",
                            p->host, strerror(e));
        }
        keel_wasi_fd *e = &w->fds[3 + i];
        e->host = fd;
        e->owned = true;
        e->filetype = WASI_FILETYPE_DIRECTORY;
        e->readonly = p->readonly;
        e->preopen = strdup(p->guest);
        uint64_t strip = p->readonly ? WASI_RIGHTS_WRITING : 0;
        e->rights_base = WASI_RIGHTS_DIR & ~strip;
        /* NOLINTNEXTLINE(misc-redundant-expression): the two sets share bits by design */
        e->rights_inheriting = (WASI_RIGHTS_DIR | WASI_RIGHTS_FILE) & ~strip;
        if (!e->preopen) {
            keel_wasi_free(w);
            return keel_err(err, errlen, KEEL_ENOMEM, "wasi: out of memory");
        }
    }
    *out = w;
    return 0;
}

void keel_wasi_free(struct keel_wasi *w)
{
    if (!w)
        return;
    for (uint32_t i = 0; i < w->nfds; i++)
        keel_wasi_fd_release(&w->fds[i]);
    if (w->fds != w->fds_inline)
        free(w->fds);
    free(w);
}

/* ------------------------------------------------------------------ */
/* args / environ                                                      */

/* Writes count pointers at ptrs and the packed strings at buf. */
static uint32_t put_strings(wasm_rt_memory_t *mem, uint32_t ptrs, uint32_t buf,
                            const char *strs, uint32_t count, uint32_t size)
{
    uint8_t *pp = keel_guest_ptr(mem, ptrs, (uint64_t)count * 4);
    uint8_t *bp = keel_guest_ptr(mem, buf, size);
    if (!pp || !bp)
        return WASI_EFAULT;
    memcpy(bp, strs, size);
    uint32_t off = 0;
    for (uint32_t i = 0; i < count; i++) {
        wasi_put_u32(pp + 4 * (uint64_t)i, buf + off);
        off += (uint32_t)strlen(strs + off) + 1;
    }
    return WASI_ESUCCESS;
}

static uint32_t put_sizes(wasm_rt_memory_t *mem, uint32_t a, uint32_t b,
                          uint32_t va, uint32_t vb)
{
    uint8_t *pa = keel_guest_ptr(mem, a, 4), *pb = keel_guest_ptr(mem, b, 4);
    if (!pa || !pb)
        return WASI_EFAULT;
    wasi_put_u32(pa, va);
    wasi_put_u32(pb, vb);
    return WASI_ESUCCESS;
}

uint32_t WASI_FN(args_get)(WASI_CTX, uint32_t argv, uint32_t argv_buf)
{
    struct keel_wasi *w = WASI_STATE(ctx);
    if (!w)
        return WASI_ENOSYS;
    return put_strings(WASI_MEM(ctx), argv, argv_buf, w->args, w->argc, w->args_size);
}

uint32_t WASI_FN(args_sizes_get)(WASI_CTX, uint32_t argc_out, uint32_t size_out)
{
    struct keel_wasi *w = WASI_STATE(ctx);
    if (!w)
        return WASI_ENOSYS;
    return put_sizes(WASI_MEM(ctx), argc_out, size_out, w->argc, w->args_size);
}

uint32_t WASI_FN(environ_get)(WASI_CTX, uint32_t environ, uint32_t environ_buf)
{
    struct keel_wasi *w = WASI_STATE(ctx);
    if (!w)
        return WASI_ENOSYS;
    return put_strings(WASI_MEM(ctx), environ, environ_buf, w->env, w->envc, w->env_size);
}

uint32_t WASI_FN(environ_sizes_get)(WASI_CTX, uint32_t count_out, uint32_t size_out)
{
    struct keel_wasi *w = WASI_STATE(ctx);
    if (!w)
        return WASI_ENOSYS;
    return put_sizes(WASI_MEM(ctx), count_out, size_out, w->envc, w->env_size);
}

/* ------------------------------------------------------------------ */
/* clocks, random, sched, proc                                         */

static bool host_clock(uint32_t id, clockid_t *out)
{
    switch (id) {
    case WASI_CLOCK_REALTIME: *out = CLOCK_REALTIME; return true;
    case WASI_CLOCK_MONOTONIC: *out = CLOCK_MONOTONIC; return true;
    case WASI_CLOCK_PROCESS_CPUTIME: *out = CLOCK_PROCESS_CPUTIME_ID; return true;
    case WASI_CLOCK_THREAD_CPUTIME: *out = CLOCK_THREAD_CPUTIME_ID; return true;
    default: return false;
    }
}

uint32_t WASI_FN(clock_res_get)(WASI_CTX, uint32_t id, uint32_t res_out)
{
    clockid_t c;
    struct timespec ts;
    if (!host_clock(id, &c))
        return WASI_EINVAL;
    uint8_t *p = keel_guest_ptr(WASI_MEM(ctx), res_out, 8);
    if (!p)
        return WASI_EFAULT;
    if (clock_getres(c, &ts) != 0)
        return keel_wasi_errno(errno);
    wasi_put_u64(p, ts_ns(ts));
    return WASI_ESUCCESS;
}

uint32_t WASI_FN(clock_time_get)(WASI_CTX, uint32_t id, uint64_t precision, uint32_t time_out)
{
    (void)precision;   /* Linux clocks are read at their own resolution */
    clockid_t c;
    struct timespec ts;
    if (!host_clock(id, &c))
        return WASI_EINVAL;
    uint8_t *p = keel_guest_ptr(WASI_MEM(ctx), time_out, 8);
    if (!p)
        return WASI_EFAULT;
    if (clock_gettime(c, &ts) != 0)
        return keel_wasi_errno(errno);
    wasi_put_u64(p, ts_ns(ts));
    return WASI_ESUCCESS;
}

uint32_t WASI_FN(random_get)(WASI_CTX, uint32_t buf, uint32_t buf_len)
{
    uint8_t *p = keel_guest_ptr(WASI_MEM(ctx), buf, buf_len);
    if (!p)
        return WASI_EFAULT;
    keel_guest_prepare_write(p, buf_len);
    size_t done = 0;
    while (done < buf_len) {
        ssize_t n = getrandom(p + done, buf_len - done, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return keel_wasi_errno(errno);
        }
        done += (size_t)n;
    }
    return WASI_ESUCCESS;
}

uint32_t WASI_FN(sched_yield)(WASI_CTX)
{
    (void)ctx;
    sched_yield();
    return WASI_ESUCCESS;
}

void WASI_FN(proc_exit)(WASI_CTX, uint32_t code)
{
    (void)ctx;
    keel_rt_exit((int)code);   /* unwinds to keel_rt_invoke; never returns */
}

/* proc_raise would deliver a signal to the guest "process". A Keel guest is
 * not a process, and raising the signal on the server (what node's uvwasi
 * does, via uv_kill(getpid())) would let a guest kill or stop the whole
 * server, so it is not supported: ENOSYS. wasi-libc's raise() reports it. */
uint32_t WASI_FN(proc_raise)(WASI_CTX, uint32_t sig)
{
    (void)ctx;
    (void)sig;
    return WASI_ENOSYS;
}

/* ------------------------------------------------------------------ */
/* sockets: Keel preopens none, so no guest fd has socket rights.      */

static uint32_t sock_common(WASI_CTX, uint32_t fd)
{
    return keel_wasi_fd_get(WASI_STATE(ctx), fd) ? WASI_ENOTSUP : WASI_EBADF;
}

uint32_t WASI_FN(sock_accept)(WASI_CTX, uint32_t fd, uint32_t flags, uint32_t fd_out)
{
    (void)flags;
    (void)fd_out;
    return sock_common(ctx, fd);
}

uint32_t WASI_FN(sock_recv)(WASI_CTX, uint32_t fd, uint32_t ri_data, uint32_t ri_data_len,
                            uint32_t ri_flags, uint32_t ro_datalen_out, uint32_t ro_flags_out)
{
    (void)ri_data; (void)ri_data_len; (void)ri_flags; (void)ro_datalen_out; (void)ro_flags_out;
    return sock_common(ctx, fd);
}

uint32_t WASI_FN(sock_send)(WASI_CTX, uint32_t fd, uint32_t si_data, uint32_t si_data_len,
                            uint32_t si_flags, uint32_t so_datalen_out)
{
    (void)si_data; (void)si_data_len; (void)si_flags; (void)so_datalen_out;
    return sock_common(ctx, fd);
}

uint32_t WASI_FN(sock_shutdown)(WASI_CTX, uint32_t fd, uint32_t how)
{
    (void)how;
    return sock_common(ctx, fd);
}

/* ------------------------------------------------------------------ */
/* the import table                                                    */

#define ENTRY(name, sig) \
    { "wasi_snapshot_preview1", #name, sig, (void (*)(void))Z_wasi_snapshot_preview1Z_##name }

const keel_host_fn keel_wasi_host_fns[] = {
    ENTRY(args_get, "ii:i"),
    ENTRY(args_sizes_get, "ii:i"),
    ENTRY(environ_get, "ii:i"),
    ENTRY(environ_sizes_get, "ii:i"),
    ENTRY(clock_res_get, "ii:i"),
    ENTRY(clock_time_get, "iIi:i"),
    ENTRY(fd_advise, "iIIi:i"),
    ENTRY(fd_allocate, "iII:i"),
    ENTRY(fd_close, "i:i"),
    ENTRY(fd_datasync, "i:i"),
    ENTRY(fd_fdstat_get, "ii:i"),
    ENTRY(fd_fdstat_set_flags, "ii:i"),
    ENTRY(fd_fdstat_set_rights, "iII:i"),
    ENTRY(fd_filestat_get, "ii:i"),
    ENTRY(fd_filestat_set_size, "iI:i"),
    ENTRY(fd_filestat_set_times, "iIIi:i"),
    ENTRY(fd_pread, "iiiIi:i"),
    ENTRY(fd_prestat_get, "ii:i"),
    ENTRY(fd_prestat_dir_name, "iii:i"),
    ENTRY(fd_pwrite, "iiiIi:i"),
    ENTRY(fd_read, "iiii:i"),
    ENTRY(fd_readdir, "iiiIi:i"),
    ENTRY(fd_renumber, "ii:i"),
    ENTRY(fd_seek, "iIii:i"),
    ENTRY(fd_sync, "i:i"),
    ENTRY(fd_tell, "ii:i"),
    ENTRY(fd_write, "iiii:i"),
    ENTRY(path_create_directory, "iii:i"),
    ENTRY(path_filestat_get, "iiiii:i"),
    ENTRY(path_filestat_set_times, "iiiiIIi:i"),
    ENTRY(path_link, "iiiiiii:i"),
    ENTRY(path_open, "iiiiiIIii:i"),
    ENTRY(path_readlink, "iiiiii:i"),
    ENTRY(path_remove_directory, "iii:i"),
    ENTRY(path_rename, "iiiiii:i"),
    ENTRY(path_symlink, "iiiii:i"),
    ENTRY(path_unlink_file, "iii:i"),
    ENTRY(poll_oneoff, "iiii:i"),
    ENTRY(proc_exit, "i:"),
    ENTRY(proc_raise, "i:i"),
    ENTRY(sched_yield, ":i"),
    ENTRY(random_get, "ii:i"),
    ENTRY(sock_accept, "iii:i"),
    ENTRY(sock_recv, "iiiiii:i"),
    ENTRY(sock_send, "iiiii:i"),
    ENTRY(sock_shutdown, "ii:i"),
    { 0, 0, 0, 0 },
};
