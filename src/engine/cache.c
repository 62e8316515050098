/* cache.c — see cache.h. */
#include "engine/cache.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/errors.h"
#include "base/sha256.h"

#define TRAILER_MAGIC "KEELSUM1"
#define TRAILER_BYTES 40

static int mkdirs(const char *path)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    return mkdir(tmp, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

int keel_cache_open(keel_cache *c, const char *dir, char *err, size_t errlen)
{
    char base[PATH_MAX];
    if (!dir || !*dir)
        dir = getenv("KEEL_CACHE");
    if (dir && *dir) {
        snprintf(base, sizeof base, "%s", dir);
    } else {
        const char *home = getenv("HOME");
        if (!home || !*home)
            return keel_err(err, errlen, KEEL_EINVAL,
                            "no cache directory: set KEEL_CACHE or HOME");
        snprintf(base, sizeof base, "%s/.cache/keel", home);
    }
    if ((size_t)snprintf(c->dir, sizeof c->dir, "%s/v1", base) >= sizeof c->dir)
        return keel_err(err, errlen, KEEL_EINVAL, "cache path too long: %s", base);
    if (mkdirs(c->dir) != 0)
        return keel_err(err, errlen, KEEL_EIO, "cache directory %s: %s", c->dir,
                        strerror(errno));
    return 0;
}

void keel_cache_path(const keel_cache *c, const char *key, const char *ext,
                     char *out, size_t len)
{
    snprintf(out, len, "%s/%s.%s", c->dir, key, ext);
}

void keel_cache_tmp_path(const keel_cache *c, const char *key, const char *ext,
                         char *out, size_t len)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(out, len, "%s/tmp.%s.%ld.%ld.%s", c->dir, key, (long)getpid(),
             (long)ts.tv_nsec, ext);
}

/* Starts the entry checksum: sha256 over the key, then the bytes. Hashing
 * the key makes a valid entry copied under another key fail too. */
static void sum_init(keel_sha256 *s, const char *key)
{
    keel_sha256_init(s);
    keel_sha256_update(s, key, strlen(key));
}

/* Checks the trailer of the file open on fd, of size n, for key. */
static int verify(int fd, off_t n, const char *key)
{
    if (n < TRAILER_BYTES)
        return 0;
    keel_sha256 s;
    sum_init(&s, key);
    off_t left = n - TRAILER_BYTES;
    static __thread unsigned char buf[1 << 16];
    while (left > 0) {
        ssize_t r = read(fd, buf, left < (off_t)sizeof buf ? (size_t)left : sizeof buf);
        if (r <= 0)
            return 0;
        keel_sha256_update(&s, buf, (size_t)r);
        left -= r;
    }
    unsigned char trailer[TRAILER_BYTES], d[32];
    if (read(fd, trailer, TRAILER_BYTES) != TRAILER_BYTES)
        return 0;
    keel_sha256_final(&s, d);
    return memcmp(trailer, TRAILER_MAGIC, 8) == 0 && memcmp(trailer + 8, d, 32) == 0;
}

int keel_cache_lookup(const keel_cache *c, const char *key, const char *ext,
                      char *path, size_t len, int *corrupt)
{
    keel_cache_path(c, key, ext, path, len);
    if (corrupt)
        *corrupt = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    struct stat st;
    int ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && verify(fd, st.st_size, key);
    close(fd);
    if (!ok) {
        unlink(path);
        if (corrupt)
            *corrupt = 1;
    }
    return ok;
}

int keel_cache_commit(const keel_cache *c, const char *key, const char *ext,
                      const char *tmp_path, char *err, size_t errlen)
{
    int fd = open(tmp_path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return keel_err(err, errlen, KEEL_EIO, "%s: %s", tmp_path, strerror(errno));
    keel_sha256 s;
    sum_init(&s, key);
    unsigned char buf[1 << 16];
    ssize_t r;
    while ((r = read(fd, buf, sizeof buf)) > 0)
        keel_sha256_update(&s, buf, (size_t)r);
    unsigned char trailer[TRAILER_BYTES];
    memcpy(trailer, TRAILER_MAGIC, 8);
    keel_sha256_final(&s, trailer + 8);
    int ok = r == 0 && write(fd, trailer, sizeof trailer) == (ssize_t)sizeof trailer &&
             fsync(fd) == 0;
    close(fd);
    char final[PATH_MAX];
    keel_cache_path(c, key, ext, final, sizeof final);
    if (!ok || rename(tmp_path, final) != 0) {
        int e = errno;
        unlink(tmp_path);
        return keel_err(err, errlen, KEEL_EIO, "writing cache entry %s: %s", final,
                        strerror(e));
    }
    return 0;
}

int keel_cache_read(const char *path, char **out, size_t *len, char *err,
                    size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return keel_err(err, errlen, KEEL_EIO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size < TRAILER_BYTES) {
        fclose(f);
        return keel_err(err, errlen, KEEL_EIO, "%s: bad cache entry", path);
    }
    size_t n = (size_t)st.st_size - TRAILER_BYTES;
    char *buf = malloc(n + 1);
    if (!buf)
        abort();
    if (fread(buf, 1, n, f) != n) {
        fclose(f);
        free(buf);
        return keel_err(err, errlen, KEEL_EIO, "%s: short read", path);
    }
    fclose(f);
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}
