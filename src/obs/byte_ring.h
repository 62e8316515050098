/* byte_ring.h — private to src/obs: the pieces shared by the two
 * single-producer byte rings (logq.c's access lines, otlp.c's span
 * records). Positions are byte counts that only grow; the data array is
 * cap bytes and a copy wraps at its end. */
#ifndef KEEL_OBS_BYTE_RING_H
#define KEEL_OBS_BYTE_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Copies src[0..n) (n <= cap) into data at position pos, wrapping. */
static inline void keel_ring_put(char *data, size_t cap, uint64_t pos, const void *src, size_t n)
{
    size_t at = (size_t)(pos % cap), first = cap - at < n ? cap - at : n;
    memcpy(data + at, src, first);
    memcpy(data, (const char *)src + first, n - first);
}

/* Copies n bytes (n <= cap) from data at position pos into dst, wrapping. */
static inline void keel_ring_get(const char *data, size_t cap, uint64_t pos, void *dst, size_t n)
{
    size_t at = (size_t)(pos % cap), first = cap - at < n ? cap - at : n;
    memcpy(dst, data + at, first);
    memcpy((char *)dst + first, data, n - first);
}

/* Whether adding `added` bytes to a ring holding `used` crossed a quarter
 * of cap: the moment to wake its consumer, leaving three quarters to
 * absorb the time the consumer waits for a CPU. */
static inline bool keel_ring_crossed_quarter(uint64_t used, uint64_t added, uint64_t cap)
{
    return used < cap / 4 && used + added >= cap / 4;
}

#endif
