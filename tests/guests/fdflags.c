/* fdflags — fd_fdstat_get / fd_fdstat_set_flags: O_APPEND seen through
 * fcntl(F_GETFL), switched on with F_SETFL and effective for later writes;
 * file types of a file, a directory and the preopen. Rights are not printed
 * (hosts legitimately grant different rights sets), nor stdio file types
 * (pipe vs character device depends on how the test wires stdio). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <wasi/api.h>

static char pbuf[512];
static const char *P(const char *dir, const char *name) {
    snprintf(pbuf, sizeof pbuf, "%s/%s", dir, name);
    return pbuf;
}
static long long fsize(int fd) {
    struct stat st;
    return fstat(fd, &st) == 0 ? (long long)st.st_size : -1;
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: fdflags DIR\n"); return 2; }
    const char *dir = argv[1];

    int fd = open(P(dir, "plain.txt"), O_RDWR | O_CREAT | O_TRUNC, 0644);
    int fl = fcntl(fd, F_GETFL);
    printf("plain: append=%d accmode_rdwr=%d\n", !!(fl & O_APPEND), (fl & O_ACCMODE) == O_RDWR);
    write(fd, "0123456789", 10);
    lseek(fd, 0, SEEK_SET);
    write(fd, "ab", 2);
    printf("plain overwrite: size=%lld\n", fsize(fd));

    int rc = fcntl(fd, F_SETFL, fl | O_APPEND);
    fl = fcntl(fd, F_GETFL);
    printf("F_SETFL O_APPEND: rc=%d append=%d\n", rc, !!(fl & O_APPEND));
    lseek(fd, 0, SEEK_SET);
    write(fd, "XY", 2);
    printf("after append write: size=%lld\n", fsize(fd));
    rc = fcntl(fd, F_SETFL, fl & ~O_APPEND);
    fl = fcntl(fd, F_GETFL);
    printf("clear O_APPEND: rc=%d append=%d\n", rc, !!(fl & O_APPEND));
    lseek(fd, 0, SEEK_SET);
    write(fd, "__", 2);
    printf("after clear: size=%lld\n", fsize(fd));
    close(fd);

    fd = open(P(dir, "app.txt"), O_WRONLY | O_CREAT | O_APPEND, 0644);
    fl = fcntl(fd, F_GETFL);
    printf("app: append=%d wronly=%d\n", !!(fl & O_APPEND), (fl & O_ACCMODE) == O_WRONLY);
    __wasi_fdstat_t st;
    __wasi_errno_t e = __wasi_fd_fdstat_get(fd, &st);
    printf("fdstat app: errno=%d type=%d flags_append=%d\n", e, st.fs_filetype,
           !!(st.fs_flags & __WASI_FDFLAGS_APPEND));
    write(fd, "one\n", 4);
    write(fd, "two\n", 4);
    close(fd);

    fd = open(P(dir, "app.txt"), O_RDONLY);
    fl = fcntl(fd, F_GETFL);
    printf("rdonly: rdonly=%d\n", (fl & O_ACCMODE) == O_RDONLY);
    close(fd);

    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    e = __wasi_fd_fdstat_get(dfd, &st);
    printf("fdstat dir: errno=%d type=%d\n", e, st.fs_filetype);
    close(dfd);
    e = __wasi_fd_fdstat_get(3, &st);
    printf("fdstat preopen fd 3: errno=%d type=%d\n", e, st.fs_filetype);
    e = __wasi_fd_fdstat_get(555, &st);
    printf("fdstat fd 555: errno=%d\n", e);
    e = __wasi_fd_fdstat_set_flags(555, 0);
    printf("set_flags fd 555: errno=%d\n", e);
    return 0;
}
