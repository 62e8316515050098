/* bundle.c — reading an app's payload (format in bundle.h): finding the
 * trailer, verifying the payload's sha256, indexing its records, and
 * answering the engine's questions about embedded modules. The payload is
 * mapped read-only from /proc/self/exe and stays mapped for the life of
 * the process. Writing is in bundle_write.c. */
#include "engine/bundle.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/errors.h"
#include "base/sha256.h"
#include "engine/engine.h"

/* Bytes of a record's fixed header: kind, name_len, data_len. */
#define RECORD_HEADER_BYTES 16
/* Longest record name (a component name or a hex digest). */
#define RECORD_MAX_NAME 255

typedef struct bundle_module {
    char digest[65];
    const uint8_t *wasm, *code;
    size_t wasm_len, code_len;
} bundle_module;

static struct {
    int active;
    char built_by[128];
    char *manifest_name;
    const char *manifest_text;
    size_t manifest_len;
    keel_bundle_component *comps;
    size_t ncomps;
    bundle_module *mods;
    size_t nmods;
} bundle;

/* Forgets what a failed open indexed. */
static void reset(void)
{
    for (size_t i = 0; i < bundle.ncomps; i++) {
        free((char *)bundle.comps[i].name);
        free((char *)bundle.comps[i].digest);
    }
    free(bundle.comps);
    free(bundle.mods);
    free(bundle.manifest_name);
    memset(&bundle, 0, sizeof bundle);
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p)
{
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

/* Reads the trailer of the open file fd of size bytes. 0: no payload;
 * 1: *off, *len and sha filled and consistent with the size; negative
 * KEEL_E* (text in err) when the trailer is there but does not add up. */
static int read_trailer(int fd, const char *path, off_t size, uint64_t *off,
                        uint64_t *len, uint8_t sha[32], char *err, size_t errlen)
{
    uint8_t t[KEEL_BUNDLE_TRAILER_BYTES];
    if (size < KEEL_BUNDLE_TRAILER_BYTES)
        return 0;
    ssize_t r = pread(fd, t, sizeof t, size - KEEL_BUNDLE_TRAILER_BYTES);
    if (r != (ssize_t)sizeof t)
        return keel_err(err, errlen, KEEL_EIO, "%s: cannot read its last %d bytes: %s", path,
                        KEEL_BUNDLE_TRAILER_BYTES, r < 0 ? strerror(errno) : "short read");
    if (memcmp(t, KEEL_BUNDLE_MAGIC, 8) != 0)
        return 0;
    *off = get_u64(t + 8);
    *len = get_u64(t + 16);
    memcpy(sha, t + 24, 32);
    uint64_t body = (uint64_t)size - KEEL_BUNDLE_TRAILER_BYTES;
    if (*off > body || *len != body - *off || get_u64(t + 56) != 0)
        return keel_err(err, errlen, KEEL_EINVAL,
                        "%s: the app's trailer is corrupt (payload of %llu bytes at offset "
                        "%llu in a file of %lld bytes); rebuild it with keel build", path,
                        (unsigned long long)*len, (unsigned long long)*off, (long long)size);
    return 1;
}

long long keel_bundle_exe_bytes(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return keel_err(err, errlen, KEEL_EIO, "%s: %s", path, strerror(errno));
    struct stat st;
    uint64_t off, len;
    uint8_t sha[32];
    long long rc;
    if (fstat(fd, &st) != 0)
        rc = keel_err(err, errlen, KEEL_EIO, "%s: %s", path, strerror(errno));
    else if ((rc = read_trailer(fd, path, st.st_size, &off, &len, sha, err, errlen)) == 1)
        rc = (long long)off;
    else if (rc == 0)
        rc = (long long)st.st_size;
    close(fd);
    return rc;
}

static bundle_module *module_for(const char *digest, size_t n, int create)
{
    for (size_t i = 0; i < bundle.nmods; i++)
        if (strlen(bundle.mods[i].digest) == n && memcmp(bundle.mods[i].digest, digest, n) == 0)
            return &bundle.mods[i];
    if (!create || n != 64)
        return NULL;
    bundle_module *m = realloc(bundle.mods, (bundle.nmods + 1) * sizeof *m);
    if (!m)
        abort();
    bundle.mods = m;
    m = &bundle.mods[bundle.nmods++];
    memset(m, 0, sizeof *m);
    memcpy(m->digest, digest, 64);
    return m;
}

static char *copy_name(const char *p, size_t n)
{
    char *s = strndup(p, n);
    if (!s)
        abort();
    return s;
}

/* Indexes the records of a verified payload. */
static int index_records(const uint8_t *p, size_t len, const char *path, char *err,
                         size_t errlen)
{
    size_t at = 0;
    int have_info = 0;
    while (at < len) {
        if (len - at < RECORD_HEADER_BYTES)
            return keel_err(err, errlen, KEEL_EINVAL, "%s: truncated record at payload byte %zu",
                            path, at);
        uint32_t kind = get_u32(p + at), nlen = get_u32(p + at + 4);
        uint64_t dlen = get_u64(p + at + 8);
        at += RECORD_HEADER_BYTES;
        if (nlen > RECORD_MAX_NAME || nlen > len - at || dlen > len - at - nlen)
            return keel_err(err, errlen, KEEL_EINVAL, "%s: record at payload byte %zu runs past "
                            "the payload", path, at - RECORD_HEADER_BYTES);
        const char *name = (const char *)p + at;
        const uint8_t *data = p + at + nlen;
        at += nlen + dlen;
        if (kind == KEEL_BUNDLE_INFO) {
            size_t n = dlen < sizeof bundle.built_by ? (size_t)dlen : sizeof bundle.built_by - 1;
            memcpy(bundle.built_by, data, n);
            bundle.built_by[n] = '\0';
            have_info = 1;
        } else if (kind == KEEL_BUNDLE_MANIFEST) {
            free(bundle.manifest_name);
            bundle.manifest_name = copy_name(name, nlen);
            bundle.manifest_text = (const char *)data;
            bundle.manifest_len = dlen;
        } else if (kind == KEEL_BUNDLE_WASM || kind == KEEL_BUNDLE_CODE) {
            bundle_module *m = module_for(name, nlen, 1);
            if (!m)
                return keel_err(err, errlen, KEEL_EINVAL, "%s: module record named '%.*s' is "
                                "not a sha256", path, (int)nlen, name);
            if (kind == KEEL_BUNDLE_WASM) {
                m->wasm = data;
                m->wasm_len = dlen;
            } else {
                m->code = data;
                m->code_len = dlen;
            }
        } else if (kind == KEEL_BUNDLE_COMPONENT) {
            keel_bundle_component *c = realloc(bundle.comps, (bundle.ncomps + 1) * sizeof *c);
            if (!c)
                abort();
            bundle.comps = c;
            c = &bundle.comps[bundle.ncomps++];
            c->name = copy_name(name, nlen);
            c->digest = copy_name((const char *)data, dlen);
            c->wasm_bytes = c->code_bytes = 0;
        }   /* other kinds: from a newer Keel, which the INFO check refuses */
    }
    if (!have_info || strcmp(bundle.built_by, keel_engine_build_id()) != 0)
        return keel_err(err, errlen, KEEL_EINVAL, "%s: built by Keel %s, but this runtime is "
                        "%s; rebuild the app with this keel", path,
                        have_info ? bundle.built_by : "(unknown)", keel_engine_build_id());
    if (!bundle.manifest_text)
        return keel_err(err, errlen, KEEL_EINVAL, "%s: the payload has no manifest", path);
    for (size_t i = 0; i < bundle.ncomps; i++) {
        keel_bundle_component *c = &bundle.comps[i];
        const bundle_module *m = module_for(c->digest, strlen(c->digest), 0);
        if (!m || !m->wasm || !m->code)
            return keel_err(err, errlen, KEEL_EINVAL, "%s: component %s: module %.12s is "
                            "missing from the payload", path, c->name, c->digest);
        c->wasm_bytes = m->wasm_len;
        c->code_bytes = m->code_len;
    }
    return 0;
}

static int open_fd(int fd, const char *path, char *err, size_t errlen);

int keel_bundle_open_self(char *err, size_t errlen)
{
    char path[PATH_MAX];
    ssize_t pn = readlink("/proc/self/exe", path, sizeof path - 1);
    if (pn <= 0)
        snprintf(path, sizeof path, "/proc/self/exe");
    else
        path[pn] = '\0';
    int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;   /* cannot look: behave as a plain keel */
    return open_fd(fd, path, err, errlen);
}

int keel_bundle_open(const char *path, char *err, size_t errlen)
{
    if (bundle.active)
        return keel_err(err, errlen, KEEL_EINVAL, "%s: a bundle is open already", path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return keel_err(err, errlen, KEEL_EIO, "%s: %s", path, strerror(errno));
    return open_fd(fd, path, err, errlen);
}

/* Opens the payload of the file fd (closed here), named path in messages. */
static int open_fd(int fd, const char *path, char *err, size_t errlen)
{
    struct stat st;
    uint64_t off, len;
    uint8_t sha[32], got[32];
    int rc = fstat(fd, &st) == 0 ? read_trailer(fd, path, st.st_size, &off, &len, sha, err,
                                                errlen) : 0;
    if (rc <= 0) {
        close(fd);
        return rc;
    }
    long page = sysconf(_SC_PAGESIZE);
    uint64_t start = off - off % (uint64_t)page;
    size_t maplen = (size_t)(off - start + len);
    void *map = len ? mmap(NULL, maplen, PROT_READ, MAP_PRIVATE, fd, (off_t)start) : NULL;
    close(fd);
    if (len && map == MAP_FAILED)
        return keel_err(err, errlen, KEEL_EIO, "%s: cannot map its payload: %s", path,
                        strerror(errno));
    const uint8_t *p = map ? (const uint8_t *)map + (off - start) : (const uint8_t *)"";
    keel_sha256 s;
    keel_sha256_init(&s);
    keel_sha256_update(&s, p, (size_t)len);
    keel_sha256_final(&s, got);
    if (memcmp(got, sha, 32) != 0) {
        char want[65], have[65];
        keel_hex(sha, 32, want);
        keel_hex(got, 32, have);
        rc = keel_err(err, errlen, KEEL_EINVAL,
                      "%s: the app's payload is corrupt (%llu bytes at offset %llu: sha256 "
                      "%.16s..., expected %.16s...); rebuild it with keel build", path,
                      (unsigned long long)len, (unsigned long long)off, have, want);
    } else {
        rc = index_records(p, (size_t)len, path, err, errlen);
    }
    if (rc) {
        reset();
        if (map)
            munmap(map, maplen);
        return rc;
    }
    bundle.active = 1;
    return 1;
}

int keel_bundle_active(void) { return bundle.active; }
const char *keel_bundle_built_by(void) { return bundle.built_by; }
size_t keel_bundle_component_count(void) { return bundle.ncomps; }

const keel_bundle_component *keel_bundle_component_at(size_t i)
{
    return i < bundle.ncomps ? &bundle.comps[i] : NULL;
}

void keel_bundle_manifest(const char **name, const char **text, size_t *len)
{
    *name = bundle.manifest_name;
    *text = bundle.manifest_text;
    *len = bundle.manifest_len;
}

int keel_bundle_wasm(const char *path, char **out, size_t *len)
{
    size_t np = strlen(KEEL_BUNDLE_WASM_PREFIX);
    if (!bundle.active || strncmp(path, KEEL_BUNDLE_WASM_PREFIX, np) != 0)
        return 0;
    for (size_t i = 0; i < bundle.ncomps; i++) {
        if (strcmp(bundle.comps[i].name, path + np) != 0)
            continue;
        const char *d = bundle.comps[i].digest;
        const bundle_module *m = module_for(d, strlen(d), 0);   /* present: index_records */
        if (!(*out = malloc(m->wasm_len + 1)))
            abort();
        memcpy(*out, m->wasm, m->wasm_len);
        *len = m->wasm_len;
        return 1;
    }
    return 0;
}

int keel_bundle_code(const char *digest, const void **so, size_t *len)
{
    const bundle_module *m = bundle.active ? module_for(digest, strlen(digest), 0) : NULL;
    if (!m || !m->code)
        return 0;
    *so = m->code;
    *len = m->code_len;
    return 1;
}
