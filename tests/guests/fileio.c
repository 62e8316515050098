/* fileio — file I/O inside the preopened directory given as argv[1]
 * (the tests preopen a scratch dir seeded with input.txt = "hello, keel\n"):
 * open flags, read/write, pread/pwrite, lseek/tell, ftruncate, fstat sizes,
 * fsync/fdatasync, posix_fallocate/posix_fadvise, error cases. Leaves a known
 * set of files behind for the tree comparison. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <wasi/api.h>

static const char *dir;
static char pbuf[512];
static const char *P(const char *name) {
    snprintf(pbuf, sizeof pbuf, "%s/%s", dir, name);
    return pbuf;
}
#define SHOW(label, expr) do { errno = 0; long long _r = (long long)(expr); \
    printf("%s: r=%lld errno=%d\n", label, _r, _r < 0 ? errno : 0); } while (0)

static long long fsize(int fd) {
    struct stat st;
    if (fstat(fd, &st) != 0) return -1;
    return (long long)st.st_size;
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: fileio DIR\n"); return 2; }
    dir = argv[1];
    char buf[256];

    /* Read the seeded file. */
    int fd = open(P("input.txt"), O_RDONLY);
    printf("open input.txt: ok=%d\n", fd >= 0);
    ssize_t n = read(fd, buf, sizeof buf);
    printf("read: n=%zd data=%.*s", n, (int)(n > 0 ? n : 0), buf);
    n = read(fd, buf, sizeof buf);
    printf("read at EOF: n=%zd\n", n);
    SHOW("write to O_RDONLY fd", write(fd, "x", 1));
    close(fd);
    SHOW("read closed fd", read(fd, buf, 1));

    SHOW("open missing", open(P("missing.txt"), O_RDONLY));
    SHOW("open O_EXCL existing", open(P("input.txt"), O_WRONLY | O_CREAT | O_EXCL, 0644));
    SHOW("open dir O_WRONLY", open(dir, O_WRONLY));
    SHOW("open file O_DIRECTORY", open(P("input.txt"), O_RDONLY | O_DIRECTORY));
    SHOW("open file/ as dir", open(P("input.txt/x"), O_RDONLY));

    /* Create, write, seek, tell. */
    fd = open(P("data.bin"), O_RDWR | O_CREAT | O_EXCL, 0644);
    printf("create data.bin: ok=%d size=%lld\n", fd >= 0, fsize(fd));
    SHOW("write 10", write(fd, "0123456789", 10));
    SHOW("tell", lseek(fd, 0, SEEK_CUR));
    SHOW("seek set 2", lseek(fd, 2, SEEK_SET));
    SHOW("write AB", write(fd, "AB", 2));
    SHOW("seek cur -1", lseek(fd, -1, SEEK_CUR));
    SHOW("seek end -3", lseek(fd, -3, SEEK_END));
    n = read(fd, buf, 10);
    printf("read after seek end: n=%zd data=%.*s\n", n, (int)n, buf);
    SHOW("seek negative", lseek(fd, -100, SEEK_SET));
    SHOW("tell after bad seek", lseek(fd, 0, SEEK_CUR));
    SHOW("seek past end", lseek(fd, 20, SEEK_SET));
    SHOW("write past end", write(fd, "Z", 1));
    printf("size with hole: %lld\n", fsize(fd));
    n = pread(fd, buf, sizeof buf, 0);
    printf("pread all: n=%zd hex=", n);
    for (ssize_t i = 0; i < n; i++) printf("%02x", (unsigned char)buf[i]);
    printf("\n");

    /* pread/pwrite do not move the offset. */
    lseek(fd, 5, SEEK_SET);
    SHOW("pwrite at 0", pwrite(fd, "pw", 2, 0));
    SHOW("pread at 1", pread(fd, buf, 3, 1));
    printf("pread data=%.3s\n", buf);
    SHOW("tell after p-ops", lseek(fd, 0, SEEK_CUR));
    SHOW("pread past end", pread(fd, buf, 4, 1000));

    /* Truncate down and up. */
    SHOW("ftruncate 4", ftruncate(fd, 4));
    printf("size: %lld\n", fsize(fd));
    SHOW("ftruncate 4096", ftruncate(fd, 4096));
    printf("size: %lld\n", fsize(fd));
    n = pread(fd, buf, 8, 4);
    printf("extended bytes zero: n=%zd zero=%d\n", n, n == 8 && memcmp(buf, "\0\0\0\0\0\0\0\0", 8) == 0);
    SHOW("ftruncate 6", ftruncate(fd, 6));
    SHOW("fsync", fsync(fd));
    SHOW("fdatasync", fdatasync(fd));
    SHOW("posix_fadvise", posix_fadvise(fd, 0, 6, POSIX_FADV_SEQUENTIAL));
    SHOW("posix_fallocate 0+100", posix_fallocate(fd, 0, 100));
    printf("size after fallocate: %lld\n", fsize(fd));
    SHOW("posix_fallocate 0+50 (no shrink)", posix_fallocate(fd, 0, 50));
    printf("size: %lld\n", fsize(fd));
    SHOW("ftruncate 6 again", ftruncate(fd, 6));
    close(fd);

    /* O_TRUNC and O_APPEND. */
    fd = open(P("log.txt"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    write(fd, "first line\n", 11);
    close(fd);
    fd = open(P("log.txt"), O_WRONLY | O_APPEND);
    lseek(fd, 0, SEEK_SET);
    SHOW("append write", write(fd, "second line\n", 12));
    printf("size after append: %lld\n", fsize(fd));
    close(fd);
    fd = open(P("trunc.txt"), O_WRONLY | O_CREAT, 0644);
    write(fd, "long long content\n", 18);
    close(fd);
    fd = open(P("trunc.txt"), O_WRONLY | O_TRUNC);
    printf("size after O_TRUNC: %lld\n", fsize(fd));
    write(fd, "short\n", 6);
    close(fd);

    /* stdio on files. */
    FILE *f = fopen(P("stdio.txt"), "w+");
    for (int i = 0; i < 1000; i++) fprintf(f, "line %d\n", i);
    fflush(f);
    rewind(f);
    int lines = 0;
    while (fgets(buf, sizeof buf, f)) lines++;
    printf("stdio lines read back: %d ftell=%ld\n", lines, ftell(f));
    fclose(f);

    /* Raw filestat: type and size of a file and the dir. */
    struct stat st;
    stat(P("stdio.txt"), &st);
    printf("stat stdio.txt: reg=%d size=%lld nlink=%llu\n", S_ISREG(st.st_mode),
           (long long)st.st_size, (unsigned long long)st.st_nlink);
    stat(dir, &st);
    printf("stat dir: dir=%d\n", S_ISDIR(st.st_mode));
    SHOW("stat missing", stat(P("nope"), &st));

    /* Raw fd_seek whence out of range, fd_tell on a directory fd. */
    fd = open(P("data.bin"), O_RDONLY);
    __wasi_filesize_t pos = 0;
    __wasi_errno_t e = __wasi_fd_seek(fd, 0, 7, &pos);
    printf("fd_seek whence=7: errno=%d\n", e);
    e = __wasi_fd_tell(fd, &pos);
    printf("fd_tell: errno=%d pos=%llu\n", e, (unsigned long long)pos);
    close(fd);
    return 0;
}
