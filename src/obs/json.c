/* json.c — see json.h. */
#include "obs/json.h"

#include <stdint.h>
#include <string.h>

#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

/* Non-zero when some byte of x is below n (n <= 128). */
static inline uint64_t has_less(uint64_t x, uint64_t n)
{
    return (x - ONES * n) & ~x & HIGHS;
}

/* Non-zero when some byte of x equals c. */
static inline uint64_t has_byte(uint64_t x, uint64_t c)
{
    return has_less(x ^ (ONES * c), 1);
}

/* Whether any byte of x needs escaping. */
static inline uint64_t needs_escape(uint64_t x)
{
    return has_less(x, 0x20) | has_byte(x, '"') | has_byte(x, '\\') | has_byte(x, 0x7f);
}

/* Whether byte ch goes into a JSON string as it is. */
static inline bool byte_plain(unsigned char ch)
{
    return ch >= 0x20 && ch != '"' && ch != '\\' && ch != 0x7f;
}

bool keel_json_plain(const char *s, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x;
        memcpy(&x, s + i, 8);
        if (needs_escape(x))
            return false;
    }
    for (; i < n; i++)
        if (!byte_plain((unsigned char)s[i]))
            return false;
    return true;
}

/* The eight bytes of x at dst, its lowest byte first (the order the last
 * few were put together in). */
static inline void store_le(char *dst, uint64_t x)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    x = __builtin_bswap64(x);
#endif
    memcpy(dst, &x, 8);
}

char *keel_json_escape(char *dst, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t i = 0;
    while (i < n) {
        /* eight bytes (or the last few, padded with a plain 'a') checked
         * at once; plain ones copied as they are. The last few are put
         * together in a register: a short memcpy into the word and a
         * load of all of it would stall on store forwarding. */
        size_t k = 8;
        uint64_t x;
        if (n - i >= 8) {
            memcpy(&x, s + i, 8);
        } else {
            k = n - i;
            x = 0x6161616161616161ull;
            for (size_t j = 0; j < k; j++)
                x = (x & ~(0xffull << (8 * j))) | (uint64_t)(unsigned char)s[i + j] << (8 * j);
        }
        if (!needs_escape(x)) {
            /* the whole word, also for a last few when there is room
             * for it (6k >= 8 bytes are left for k input bytes) */
            if (k == 8)
                memcpy(dst, &x, 8);
            else if (k >= 2)
                store_le(dst, x);
            else
                *dst = s[i];
            dst += k;
            i += k;
            continue;
        }
        for (size_t stop = i + k; i < stop; i++) {
            unsigned char ch = (unsigned char)s[i];
            if (byte_plain(ch)) {
                *dst++ = (char)ch;
            } else if (ch == '"' || ch == '\\') {
                *dst++ = '\\';
                *dst++ = (char)ch;
            } else if (ch == '\n') {
                *dst++ = '\\';
                *dst++ = 'n';
            } else if (ch == '\t') {
                *dst++ = '\\';
                *dst++ = 't';
            } else {
                memcpy(dst, "\\u00", 4);
                dst[4] = hex[ch >> 4];
                dst[5] = hex[ch & 15];
                dst += 6;
            }
        }
    }
    return dst;
}

static const char digit_pairs[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

char *keel_json_digits(char *p, uint64_t v, unsigned n)
{
    char *end = p + n;
    while (n >= 2) {
        n -= 2;
        memcpy(p + n, digit_pairs + 2 * (v % 100), 2);
        v /= 100;
    }
    if (n)
        p[0] = (char)('0' + v % 10);
    return end;
}

char *keel_json_u64(char *p, uint64_t v)
{
    unsigned n = 1;
    for (uint64_t t = v; t >= 10; t /= 10)
        n++;
    return keel_json_digits(p, v, n);
}
