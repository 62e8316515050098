/* cache.h — the content-addressed compile cache.
 *
 * Entries live in DIR/v1/<key>.<ext>, where DIR is $KEEL_CACHE or
 * ~/.cache/keel and key is a hex sha256 of everything the entry depends
 * on. Each entry carries its own checksum as a 40-byte trailer ("KEELSUM1"
 * + sha256 of its key and the bytes before it): a shared object still loads with it
 * (the dynamic loader ignores bytes past the segments), and a torn or
 * altered file, or another entry's file, is detected, deleted and rebuilt. Entries are written under
 * a unique temporary name in the same directory and renamed into place, so
 * readers never see half an entry, even with concurrent writers. */
#ifndef KEEL_ENGINE_CACHE_H
#define KEEL_ENGINE_CACHE_H

#include <limits.h>
#include <stddef.h>

typedef struct keel_cache {
    char dir[PATH_MAX - 256];   /* room for "/<key>.<ext>" */
} keel_cache;

/* Resolves and creates the cache directory (dir may be NULL). */
int keel_cache_open(keel_cache *c, const char *dir, char *err, size_t errlen);

/* The path an entry has (whether or not it exists). */
void keel_cache_path(const keel_cache *c, const char *key, const char *ext,
                     char *out, size_t len);

/* 1 when a valid entry exists (path filled), 0 when absent; a corrupt entry
 * is removed and reported as absent (*corrupt set when non-NULL). */
int keel_cache_lookup(const keel_cache *c, const char *key, const char *ext,
                      char *path, size_t len, int *corrupt);

/* A unique temporary path in the cache directory for building an entry. */
void keel_cache_tmp_path(const keel_cache *c, const char *key, const char *ext,
                         char *out, size_t len);

/* Appends the checksum trailer to tmp_path and renames it into place. */
int keel_cache_commit(const keel_cache *c, const char *key, const char *ext,
                      const char *tmp_path, char *err, size_t errlen);

/* Bytes of an entry's payload (without the trailer), read into memory:
 * *out malloc'd, NUL-terminated. */
int keel_cache_read(const char *path, char **out, size_t *len, char *err,
                    size_t errlen);

#endif
