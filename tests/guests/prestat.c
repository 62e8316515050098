/* prestat — lists the preopened directories (fd_prestat_get /
 * fd_prestat_dir_name from fd 3 up to the first EBADF), in fd order, then
 * shows libc resolving a path in each. Also: fd_prestat_dir_name with a
 * too-small buffer and fd_prestat_get on stdio. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <wasi/api.h>

int main(void) {
    __wasi_prestat_t ps;
    __wasi_errno_t e;
    __wasi_fd_t fd;
    for (fd = 3;; fd++) {
        e = __wasi_fd_prestat_get(fd, &ps);
        if (e != 0) break;
        char name[256] = {0};
        size_t len = ps.u.dir.pr_name_len;
        __wasi_errno_t e2 = __wasi_fd_prestat_dir_name(fd, (uint8_t *)name, len < 255 ? len : 255);
        printf("fd %u: tag=%d len=%zu errno=%d name=%s\n", (unsigned)fd, ps.tag, len, e2, name);
        struct stat st;
        int rc = stat(name, &st);
        printf("  stat(%s): rc=%d dir=%d\n", name, rc, rc == 0 && S_ISDIR(st.st_mode));
        if (len > 1) {
            char small[1];
            e2 = __wasi_fd_prestat_dir_name(fd, (uint8_t *)small, 1);
            /* ENOBUFS (node) or ENAMETOOLONG (wasmtime, keel): both fine. */
            printf("  dir_name(len=1): fails=%d\n", e2 != 0);
        }
    }
    printf("first non-preopen fd %u: errno=%d\n", (unsigned)fd, e);
    e = __wasi_fd_prestat_get(1, &ps);
    /* EBADF or EINVAL depending on the host: only failure is required. */
    printf("prestat stdout: fails=%d\n", e != 0);
    return 0;
}
