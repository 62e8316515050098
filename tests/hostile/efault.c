/* efault — passes out-of-bounds pointers to WASI host functions through raw
 * imports (wasi-libc's wrappers would call strlen on a bad path and trap in
 * the guest first). Every call must return EFAULT (21) and the host must
 * survive; prints "LABEL: errno=N" per call, then "survived".
 *
 * The test runs it with --dir SCRATCH::/sandbox (containing f.txt and a
 * symlink lnk), --env A=B, stdin with a few bytes, and one argument. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <wasi/api.h>

#define IMP(n) __attribute__((import_module("wasi_snapshot_preview1"), import_name(#n)))
int32_t raw_args_get(int32_t, int32_t) IMP(args_get);
int32_t raw_args_sizes_get(int32_t, int32_t) IMP(args_sizes_get);
int32_t raw_environ_get(int32_t, int32_t) IMP(environ_get);
int32_t raw_environ_sizes_get(int32_t, int32_t) IMP(environ_sizes_get);
int32_t raw_clock_res_get(int32_t, int32_t) IMP(clock_res_get);
int32_t raw_clock_time_get(int32_t, int64_t, int32_t) IMP(clock_time_get);
int32_t raw_fd_write(int32_t, int32_t, int32_t, int32_t) IMP(fd_write);
int32_t raw_fd_read(int32_t, int32_t, int32_t, int32_t) IMP(fd_read);
int32_t raw_fd_pread(int32_t, int32_t, int32_t, int64_t, int32_t) IMP(fd_pread);
int32_t raw_fd_pwrite(int32_t, int32_t, int32_t, int64_t, int32_t) IMP(fd_pwrite);
int32_t raw_fd_seek(int32_t, int64_t, int32_t, int32_t) IMP(fd_seek);
int32_t raw_fd_fdstat_get(int32_t, int32_t) IMP(fd_fdstat_get);
int32_t raw_fd_filestat_get(int32_t, int32_t) IMP(fd_filestat_get);
int32_t raw_fd_prestat_get(int32_t, int32_t) IMP(fd_prestat_get);
int32_t raw_fd_prestat_dir_name(int32_t, int32_t, int32_t) IMP(fd_prestat_dir_name);
int32_t raw_fd_readdir(int32_t, int32_t, int32_t, int64_t, int32_t) IMP(fd_readdir);
int32_t raw_path_open(int32_t, int32_t, int32_t, int32_t, int32_t, int64_t, int64_t,
                      int32_t, int32_t) IMP(path_open);
int32_t raw_path_filestat_get(int32_t, int32_t, int32_t, int32_t, int32_t) IMP(path_filestat_get);
int32_t raw_path_create_directory(int32_t, int32_t, int32_t) IMP(path_create_directory);
int32_t raw_path_readlink(int32_t, int32_t, int32_t, int32_t, int32_t, int32_t) IMP(path_readlink);
int32_t raw_path_symlink(int32_t, int32_t, int32_t, int32_t, int32_t) IMP(path_symlink);
int32_t raw_path_unlink_file(int32_t, int32_t, int32_t) IMP(path_unlink_file);
int32_t raw_path_rename(int32_t, int32_t, int32_t, int32_t, int32_t, int32_t) IMP(path_rename);
int32_t raw_poll_oneoff(int32_t, int32_t, int32_t, int32_t) IMP(poll_oneoff);
int32_t raw_random_get(int32_t, int32_t) IMP(random_get);

#define P(x) ((int32_t)(uintptr_t)(x))
#define R(label, call) printf("%s: errno=%d\n", label, (int)(call))

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    const uint32_t end = (uint32_t)__builtin_wasm_memory_size(0) * 65536u;
    const int32_t BAD = (int32_t)0xFFFFFFF0u;
    static uint32_t out[64];
    static char buf[256];
    static __wasi_ciovec_t ok_iov = {(const uint8_t *)"", 0};

    /* Find the preopen (fd 3) and open f.txt the ordinary way. */
    const int32_t pre = 3;
    __wasi_fd_t f;
    int e = __wasi_path_open(pre, 0, "f.txt", 0, 0x1FFFFFFF, 0x1FFFFFFF, 0, &f);
    printf("setup open f.txt: errno=%d\n", e);

    R("args_get argv=0xFFFFFFFF", raw_args_get((int32_t)0xFFFFFFFFu, P(buf)));
    R("args_get buf=end-1", raw_args_get(P(out), (int32_t)(end - 1)));
    R("args_sizes_get count=0xFFFFFFFC", raw_args_sizes_get((int32_t)0xFFFFFFFCu, P(out)));
    R("args_sizes_get size=end", raw_args_sizes_get(P(out), (int32_t)end));
    R("environ_get environ=0xFFFFFFF0", raw_environ_get(BAD, P(buf)));
    R("environ_get buf=end-2", raw_environ_get(P(out), (int32_t)(end - 2)));
    R("environ_sizes_get count=end-2", raw_environ_sizes_get((int32_t)(end - 2), P(out)));
    R("clock_res_get res=0xFFFFFFF8", raw_clock_res_get(1, (int32_t)0xFFFFFFF8u));
    R("clock_time_get time=end-4", raw_clock_time_get(1, 1, (int32_t)(end - 4)));
    R("random_get buf=0xFFFFFFF0", raw_random_get(BAD, 64));
    R("random_get buf=0xFFFFFFFF len=2 (wraps)", raw_random_get((int32_t)0xFFFFFFFFu, 2));
    R("random_get buf=end-8 len=16", raw_random_get((int32_t)(end - 8), 16));

    R("fd_write iovs=0xFFFFFFF0", raw_fd_write(1, BAD, 1, P(out)));
    R("fd_write iovs=end-4 (straddles)", raw_fd_write(1, (int32_t)(end - 4), 1, P(out)));
    uint32_t *iov = out + 8;
    iov[0] = 0xFFFFFF00u; iov[1] = 0x1000;
    R("fd_write iov.buf=0xFFFFFF00", raw_fd_write(1, P(iov), 1, P(out)));
    iov[0] = end - 10; iov[1] = 20;
    R("fd_write iov.buf=end-10 len=20", raw_fd_write(1, P(iov), 1, P(out)));
    iov[0] = 0xFFFFFFFFu; iov[1] = 2;
    R("fd_write iov.buf=0xFFFFFFFF len=2 (wraps)", raw_fd_write(1, P(iov), 1, P(out)));
    R("fd_write nwritten=0xFFFFFFFE", raw_fd_write(1, P(&ok_iov), 1, (int32_t)0xFFFFFFFEu));
    int32_t r = raw_fd_write(1, P(&ok_iov), 0x20000000, P(out));
    printf("fd_write iovs_len=0x20000000 (8*len wraps): efault_or_einval=%d\n", r == 21 || r == 28);

    iov[0] = BAD; iov[1] = 16;
    R("fd_read iov.buf=0xFFFFFFF0", raw_fd_read(0, P(iov), 1, P(out)));
    R("fd_read iovs=end", raw_fd_read(0, (int32_t)end, 1, P(out)));
    R("fd_pread iov.buf=0xFFFFFFF0", raw_fd_pread(f, P(iov), 1, 0, P(out)));
    R("fd_pwrite iov.buf=0xFFFFFFF0", raw_fd_pwrite(f, P(iov), 1, 0, P(out)));
    R("fd_seek newoffset=end-4", raw_fd_seek(f, 0, 0, (int32_t)(end - 4)));
    R("fd_fdstat_get stat=0xFFFFFFF0", raw_fd_fdstat_get(1, BAD));
    R("fd_filestat_get stat=end-8", raw_fd_filestat_get(f, (int32_t)(end - 8)));
    R("fd_prestat_get out=0xFFFFFFFC", raw_fd_prestat_get(pre, (int32_t)0xFFFFFFFCu));
    R("fd_prestat_dir_name buf=0xFFFFFF00", raw_fd_prestat_dir_name(pre, (int32_t)0xFFFFFF00u, 8));
    R("fd_readdir buf=0xFFFFFF00", raw_fd_readdir(pre, (int32_t)0xFFFFFF00u, 1024, 0, P(out)));
    R("fd_readdir bufused=0xFFFFFFFF", raw_fd_readdir(pre, P(buf), sizeof buf, 0, (int32_t)0xFFFFFFFFu));

    R("path_open path=end+16", raw_path_open(pre, 0, (int32_t)(end + 16), 5, 0, 0x1FFFFFFF,
                                             0x1FFFFFFF, 0, P(out)));
    R("path_open path=end-2 len=5", raw_path_open(pre, 0, (int32_t)(end - 2), 5, 0, 0x1FFFFFFF,
                                                  0x1FFFFFFF, 0, P(out)));
    R("path_open fd_out=0xFFFFFFFF", raw_path_open(pre, 0, P("f.txt"), 5, 0, 0x1FFFFFFF,
                                                   0x1FFFFFFF, 0, (int32_t)0xFFFFFFFFu));
    R("path_filestat_get path=0xFFFFFFF0", raw_path_filestat_get(pre, 0, BAD, 5, P(out)));
    R("path_filestat_get out=end-4", raw_path_filestat_get(pre, 0, P("f.txt"), 5, (int32_t)(end - 4)));
    R("path_create_directory path=0xFFFFFFF0", raw_path_create_directory(pre, BAD, 4));
    R("path_readlink buf=0xFFFFFF00", raw_path_readlink(pre, P("lnk"), 3, (int32_t)0xFFFFFF00u, 64, P(out)));
    R("path_readlink bufused=end", raw_path_readlink(pre, P("lnk"), 3, P(buf), 64, (int32_t)end));
    R("path_symlink old=0xFFFFFFF0", raw_path_symlink(BAD, 4, pre, P("newlink"), 7));
    R("path_unlink_file path=end-1 len=4", raw_path_unlink_file(pre, (int32_t)(end - 1), 4));
    R("path_rename new=0xFFFFFFF0", raw_path_rename(pre, P("f.txt"), 5, pre, BAD, 5));

    R("poll_oneoff in=0xFFFFFF00", raw_poll_oneoff((int32_t)0xFFFFFF00u, P(buf), 1, P(out)));
    static __wasi_subscription_t sub;
    sub.u.tag = __WASI_EVENTTYPE_CLOCK;
    sub.u.u.clock.id = __WASI_CLOCKID_MONOTONIC;
    sub.u.u.clock.timeout = 1000;
    R("poll_oneoff out=0xFFFFFF00", raw_poll_oneoff(P(&sub), (int32_t)0xFFFFFF00u, 1, P(out)));
    R("poll_oneoff nevents=0xFFFFFFFF", raw_poll_oneoff(P(&sub), P(buf), 1, (int32_t)0xFFFFFFFFu));

    /* Zero-length access exactly at the end of memory is in bounds. */
    R("random_get buf=end len=0 (in bounds)", raw_random_get((int32_t)end, 0));

    /* After all that, ordinary I/O still works. */
    R("f.txt still readable", raw_fd_pread(f, P(&ok_iov), 1, 0, P(out)));
    puts("survived");
    return 0;
}
