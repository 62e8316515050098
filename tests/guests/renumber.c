/* renumber — fd_renumber (wasi-libc has no dup2): renumber a file over
 * another file's fd, then over stdout so later printf output lands in a file
 * in the preopened dir argv[1]; error cases for bad fds. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <wasi/api.h>

static char pbuf[512];
static const char *P(const char *dir, const char *name) {
    snprintf(pbuf, sizeof pbuf, "%s/%s", dir, name);
    return pbuf;
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: renumber DIR\n"); return 2; }
    const char *dir = argv[1];
    int a = open(P(dir, "a.txt"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int b = open(P(dir, "b.txt"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    printf("opened: a_ok=%d b_ok=%d distinct=%d\n", a >= 0, b >= 0, a != b);
    write(b, "written to b before renumber\n", 29);

    __wasi_errno_t e = __wasi_fd_renumber(a, b);
    printf("fd_renumber(a, b): errno=%d\n", e);
    errno = 0;
    ssize_t r = write(a, "x", 1);
    printf("write old fd a: r=%zd errno=%d\n", r, errno);
    r = write(b, "written via b, lands in a.txt\n", 30);
    printf("write fd b: r=%zd\n", r);

    e = __wasi_fd_renumber(b, 999);
    printf("fd_renumber(b, 999): errno=%d\n", e);
    e = __wasi_fd_renumber(999, b);
    printf("fd_renumber(999, b): errno=%d\n", e);
    e = __wasi_fd_renumber(b, b);
    printf("fd_renumber(b, b): errno=%d\n", e);
    close(b);

    int c = open(P(dir, "stdout.txt"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    printf("about to renumber over stdout\n");
    fflush(stdout);
    e = __wasi_fd_renumber(c, 1);
    fprintf(stderr, "fd_renumber(c, 1): errno=%d\n", e);
    printf("this line goes to stdout.txt\n");
    fflush(stdout);
    errno = 0;
    r = write(c, "x", 1);
    fprintf(stderr, "write old fd c: r=%zd errno=%d\n", r, errno);
    return 0;
}
