/* stdio — fd_write to stdout and stderr: gathered iovecs (including empty
 * ones), a large buffered write, NUL and high bytes, interleaving with
 * explicit flushes, writes to a closed/unknown fd. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <wasi/api.h>

int main(void) {
    const char *p1 = "gather:", *p2 = "", *p3 = " one", *p4 = " two\n";
    __wasi_ciovec_t iov[4] = {
        {(const uint8_t *)p1, strlen(p1)}, {(const uint8_t *)p2, 0},
        {(const uint8_t *)p3, strlen(p3)}, {(const uint8_t *)p4, strlen(p4)},
    };
    __wasi_size_t nw = 0;
    __wasi_errno_t e = __wasi_fd_write(1, iov, 4, &nw);
    printf("fd_write(gather): errno=%d n=%u\n", e, (unsigned)nw);
    e = __wasi_fd_write(1, iov, 0, &nw);
    printf("fd_write(0 iovs): errno=%d n=%u\n", e, (unsigned)nw);
    fflush(stdout);

    e = __wasi_fd_write(2, iov, 4, &nw);
    fprintf(stderr, "stderr: errno=%d n=%u\n", e, (unsigned)nw);

    static const unsigned char bin[] = {0, 1, 2, 0xff, 0xfe, '\r', '\n', 0x80, 0};
    fwrite(bin, 1, sizeof bin, stdout);
    putchar('\n');

    /* 200 KB through stdio buffering, in lines of increasing length. */
    for (int i = 0; i < 2000; i++) {
        printf("%05d ", i);
        for (int j = 0; j < i % 97; j++) putchar('a' + (i + j) % 26);
        putchar('\n');
    }
    fflush(stdout);
    fputs("to stderr after big stdout\n", stderr);

    nw = 12345;
    e = __wasi_fd_write(77, iov, 1, &nw);
    printf("fd_write(77): errno=%d\n", e);
    errno = 0;
    ssize_t r = write(78, "x", 1);
    printf("write(78): r=%zd errno=%d\n", r, errno);
    puts("done");
    return 0;
}
