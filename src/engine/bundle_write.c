/* bundle_write.c — writing an app (format in bundle.h): records gathered
 * in memory, then executable + payload + trailer written to a temporary
 * file and renamed into place. */
#include "engine/bundle.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/errors.h"
#include "base/proc.h"
#include "base/sha256.h"

struct keel_bundle_writer {
    uint8_t *buf;
    size_t len, cap;
    char (*wasm_digests)[65];
    size_t nwasm;
};

keel_bundle_writer *keel_bundle_writer_new(void)
{
    keel_bundle_writer *w = calloc(1, sizeof *w);
    if (!w)
        abort();
    return w;
}

void keel_bundle_writer_free(keel_bundle_writer *w)
{
    if (!w)
        return;
    free(w->buf);
    free(w->wasm_digests);
    free(w);
}

static void append(keel_bundle_writer *w, const void *p, size_t n)
{
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap : 1u << 16;
        while (cap < w->len + n)
            cap *= 2;
        uint8_t *b = realloc(w->buf, cap);
        if (!b)
            abort();
        w->buf = b;
        w->cap = cap;
    }
    if (n)
        memcpy(w->buf + w->len, p, n);
    w->len += n;
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

void keel_bundle_writer_add(keel_bundle_writer *w, int kind, const char *name,
                            const void *data, size_t len)
{
    uint8_t h[16];
    size_t nlen = strlen(name);
    put_u64(h, (uint64_t)(uint32_t)kind | (uint64_t)(uint32_t)nlen << 32);
    put_u64(h + 8, len);
    append(w, h, sizeof h);
    append(w, name, nlen);
    append(w, data, len);
    if (kind == KEEL_BUNDLE_WASM) {
        char (*d)[65] = realloc(w->wasm_digests, (w->nwasm + 1) * sizeof *d);
        if (!d)
            abort();
        w->wasm_digests = d;
        snprintf(d[w->nwasm++], 65, "%s", name);
    }
}

int keel_bundle_writer_has_wasm(const keel_bundle_writer *w, const char *digest)
{
    for (size_t i = 0; i < w->nwasm; i++)
        if (strcmp(w->wasm_digests[i], digest) == 0)
            return 1;
    return 0;
}

/* Copies the first n bytes of the file in to fd out. */
static int copy_prefix(int in, int out, long long n)
{
    char buf[1 << 16];
    while (n > 0) {
        ssize_t r = read(in, buf, n < (long long)sizeof buf ? (size_t)n : sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || keel_write_all(out, buf, (size_t)r) != 0)
            return -1;
        n -= r;
    }
    return 0;
}

int keel_bundle_writer_write(keel_bundle_writer *w, const char *exe, const char *out,
                             char *err, size_t errlen)
{
    long long exe_bytes = keel_bundle_exe_bytes(exe, err, errlen);
    if (exe_bytes < 0)
        return (int)exe_bytes;
    char tmp[PATH_MAX];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", out) >= sizeof tmp)
        return keel_err(err, errlen, KEEL_EINVAL, "%s: path too long", out);
    int fd = mkstemp(tmp);
    if (fd < 0)
        return keel_err(err, errlen, KEEL_EIO, "%s: cannot create: %s", tmp, strerror(errno));
    int in = open(exe, O_RDONLY | O_CLOEXEC);
    uint8_t trailer[KEEL_BUNDLE_TRAILER_BYTES] = { 0 };
    memcpy(trailer, KEEL_BUNDLE_MAGIC, 8);
    put_u64(trailer + 8, (uint64_t)exe_bytes);
    put_u64(trailer + 16, w->len);
    keel_sha256 s;
    keel_sha256_init(&s);
    keel_sha256_update(&s, w->buf ? w->buf : (const uint8_t *)"", w->len);
    keel_sha256_final(&s, trailer + 24);
    int rc = 0;
    if (in < 0)
        rc = keel_err(err, errlen, KEEL_EIO, "%s: %s", exe, strerror(errno));
    else if (copy_prefix(in, fd, exe_bytes) != 0)
        rc = keel_err(err, errlen, KEEL_EIO, "copying %s to %s: %s", exe, tmp, strerror(errno));
    else if (keel_write_all(fd, w->buf, w->len) != 0 ||
             keel_write_all(fd, trailer, sizeof trailer) != 0)
        rc = keel_err(err, errlen, KEEL_EIO, "writing %s: %s", tmp, strerror(errno));
    else if (fchmod(fd, 0755) != 0 || fsync(fd) != 0)
        rc = keel_err(err, errlen, KEEL_EIO, "%s: %s", tmp, strerror(errno));
    if (in >= 0)
        close(in);
    if (close(fd) != 0 && !rc)
        rc = keel_err(err, errlen, KEEL_EIO, "writing %s: %s", tmp, strerror(errno));
    if (!rc && rename(tmp, out) != 0)
        rc = keel_err(err, errlen, KEEL_EIO, "renaming %s to %s: %s", tmp, out, strerror(errno));
    if (rc)
        unlink(tmp);
    return rc;
}
