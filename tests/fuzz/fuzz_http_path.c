/* fuzz_http_path.c — libFuzzer target: keel_http_normalize_path, which
 * turns a request target's path into the one routes match. Invariants: the
 * result starts with '/', has no "." or ".." segment, no "%2F" decoded into
 * a separator (a decoded '/' would need a literal one in the input), and is
 * at most one byte longer than the input. (Normalizing twice may differ —
 * "%%41" becomes "%A" — which is why routing normalizes exactly once.) */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/server_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int has_dot_segment(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '/')
            continue;
        size_t j = i + 1, k = j;
        while (k < n && p[k] != '/')
            k++;
        if ((k - j == 1 && p[j] == '.') || (k - j == 2 && p[j] == '.' && p[j + 1] == '.'))
            return 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *out = malloc(size + 2);
    if (!out)
        abort();
    size_t n = keel_http_normalize_path((const char *)data, size, out);
    if (n == 0 || n > size + 1 || out[0] != '/' || has_dot_segment(out, n))
        abort();
    size_t slashes_in = 0, slashes_out = 0;
    for (size_t i = 0; i < size; i++)
        slashes_in += data[i] == '/';
    for (size_t i = 0; i < n; i++)
        slashes_out += out[i] == '/';
    if (slashes_out > slashes_in + 1)
        abort();
    free(out);
    return 0;
}
