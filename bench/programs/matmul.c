/* matmul.c — dense double-precision matrix multiply.
 *
 * C = A * B for n x n matrices (n = size, default 512), A and B filled from
 * the LCG, computed `REPS` times with the cache-friendly i-k-j loop order
 * (the inner loop streams a row of B into a row of C), each repetition
 * feeding C back into A after scaling. Prints the exact bits of the trace
 * and a checksum over all entries. Exercises floating-point multiply-add
 * throughput and sequential memory bandwidth. The summation order is fixed
 * by the source, so results are bit-identical natively and in wasm. */
#include "bench.h"
#include <string.h>

#define REPS 4

static uint64_t bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static void multiply(const double *a, const double *b, double *c, long n)
{
    memset(c, 0, (size_t)(n * n) * sizeof *c);
    for (long i = 0; i < n; i++) {
        double *ci = c + i * n;
        for (long k = 0; k < n; k++) {
            double aik = a[i * n + k];
            const double *bk = b + k * n;
            for (long j = 0; j < n; j++)
                ci[j] += aik * bk[j];
        }
    }
}

int main(int argc, char **argv)
{
    long n = bench_size(argc, argv, 512);
    size_t cells = (size_t)(n * n);
    double *a = bench_alloc(cells * sizeof *a);
    double *b = bench_alloc(cells * sizeof *b);
    double *c = bench_alloc(cells * sizeof *c);
    bench_rng r = { 99 };
    for (size_t i = 0; i < cells; i++) {
        a[i] = (double)(int32_t)bench_next(&r) / 2147483648.0;
        b[i] = (double)(int32_t)bench_next(&r) / 2147483648.0;
    }
    double scale = 1.0 / (double)n;
    for (int rep = 0; rep < REPS; rep++) {
        multiply(a, b, c, n);
        for (size_t i = 0; i < cells; i++)
            a[i] = c[i] * scale + b[i];
    }
    double trace = 0;
    uint64_t h = 0;
    for (long i = 0; i < n; i++)
        trace += c[i * n + i];
    for (size_t i = 0; i < cells; i++)
        h = bench_mix(h, bits(c[i]));
    printf("matmul n=%ld reps=%d trace=%016" PRIx64 " checksum=%016" PRIx64 "\n",
           n, REPS, bits(trace), h);
    free(a); free(b); free(c);
    return 0;
}
