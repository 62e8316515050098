/* sha256.h — SHA-256 (FIPS 180-4), for content addressing and checksums. */
#ifndef KEEL_BASE_SHA256_H
#define KEEL_BASE_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct keel_sha256 {
    uint32_t h[8];
    uint64_t len;
    unsigned char buf[64];
    size_t nbuf;
} keel_sha256;

void keel_sha256_init(keel_sha256 *s);
void keel_sha256_update(keel_sha256 *s, const void *data, size_t n);
void keel_sha256_final(keel_sha256 *s, unsigned char out[32]);
/* Hex digest of data into hex[65]. */
void keel_sha256_hex(const void *data, size_t n, char hex[65]);
/* sha256 of the file at path as 64 hex digits (its size in *bytes when
 * not NULL): 0, or -1 with errno set when it cannot be opened or read. */
int keel_sha256_file(const char *path, char hex[65], uint64_t *bytes);
void keel_hex(const unsigned char *in, size_t n, char *out);

#endif
