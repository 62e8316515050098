/* random — random_get and getentropy: buffers get filled (not all zero),
 * two draws differ, zero-length requests succeed, getentropy rejects > 256. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <wasi/api.h>

static int all_zero(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++) if (p[i]) return 0;
    return 1;
}

int main(void) {
    static unsigned char a[4096], b[4096];
    __wasi_errno_t e = __wasi_random_get(a, sizeof a);
    printf("random_get(4096): errno=%d all_zero=%d\n", e, all_zero(a, sizeof a));
    e = __wasi_random_get(b, sizeof b);
    printf("random_get again: errno=%d differs=%d\n", e, memcmp(a, b, sizeof a) != 0);
    e = __wasi_random_get(a, 0);
    printf("random_get(0): errno=%d\n", e);

    /* Byte distribution: with 64 KiB every byte value should appear. */
    static unsigned char big[65536];
    int seen[256] = {0}, distinct = 0;
    e = __wasi_random_get(big, sizeof big);
    for (size_t i = 0; i < sizeof big; i++) seen[big[i]] = 1;
    for (int i = 0; i < 256; i++) distinct += seen[i];
    printf("random_get(65536): errno=%d all_byte_values=%d\n", e, distinct == 256);

    /* A draw must write exactly the bytes asked for, not beyond. */
    memset(a, 0xAB, 64);
    e = __wasi_random_get(a, 16);
    printf("no overrun: errno=%d ok=%d\n", e, a[16] == 0xAB && a[63] == 0xAB);

    int rc = getentropy(b, 256);
    printf("getentropy(256): rc=%d\n", rc);
    errno = 0;
    rc = getentropy(b, 257);
    printf("getentropy(257): rc=%d errno=%d\n", rc, errno);
    return 0;
}
