/* sort.c — quicksort and mergesort of `size` 32-bit integers from the LCG.
 *
 * The same input is sorted twice: an in-place quicksort (median of three,
 * insertion sort below 24 elements, recursion on the smaller side) and a
 * bottom-up mergesort with a scratch buffer. Both results are checked to be
 * sorted and equal, and a position-weighted checksum is printed. Exercises
 * data-dependent branches, compares and swaps over a 16 MB working set. */
#include "bench.h"
#include <string.h>

static void insertion(int32_t *a, long n)
{
    for (long i = 1; i < n; i++) {
        int32_t v = a[i];
        long j = i - 1;
        while (j >= 0 && a[j] > v) {
            a[j + 1] = a[j];
            j--;
        }
        a[j + 1] = v;
    }
}

static void quicksort(int32_t *a, long n)
{
    while (n > 24) {
        long mid = n / 2;
        /* Order a[0], a[mid], a[n-1]; the median becomes the pivot. */
        if (a[mid] < a[0]) { int32_t t = a[mid]; a[mid] = a[0]; a[0] = t; }
        if (a[n - 1] < a[0]) { int32_t t = a[n - 1]; a[n - 1] = a[0]; a[0] = t; }
        if (a[n - 1] < a[mid]) { int32_t t = a[n - 1]; a[n - 1] = a[mid]; a[mid] = t; }
        int32_t pivot = a[mid];
        long i = 0, j = n - 1;
        for (;;) {
            while (a[i] < pivot) i++;
            while (a[j] > pivot) j--;
            if (i >= j) break;
            int32_t t = a[i]; a[i] = a[j]; a[j] = t;
            i++; j--;
        }
        /* Partition is [0, j] and [j+1, n). Recurse on the smaller part. */
        long left = j + 1;
        if (left < n - left) {
            quicksort(a, left);
            a += left;
            n -= left;
        } else {
            quicksort(a + left, n - left);
            n = left;
        }
    }
    insertion(a, n);
}

static void mergesort(int32_t *a, int32_t *tmp, long n)
{
    /* Runs of 16 by insertion sort, then merge passes ping-ponging buffers. */
    for (long i = 0; i < n; i += 16)
        insertion(a + i, n - i < 16 ? n - i : 16);
    int32_t *src = a, *dst = tmp;
    for (long width = 16; width < n; width *= 2) {
        for (long lo = 0; lo < n; lo += 2 * width) {
            long mid = lo + width < n ? lo + width : n;
            long hi = lo + 2 * width < n ? lo + 2 * width : n;
            long i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                dst[k++] = src[j] < src[i] ? src[j++] : src[i++];
            while (i < mid) dst[k++] = src[i++];
            while (j < hi) dst[k++] = src[j++];
        }
        int32_t *t = src; src = dst; dst = t;
    }
    if (src != a)
        memcpy(a, src, (size_t)n * sizeof *a);
}

int main(int argc, char **argv)
{
    long n = bench_size(argc, argv, 5000000);
    int32_t *orig = bench_alloc((size_t)n * sizeof(int32_t));
    int32_t *q = bench_alloc((size_t)n * sizeof(int32_t));
    int32_t *m = bench_alloc((size_t)n * sizeof(int32_t));
    int32_t *tmp = bench_alloc((size_t)n * sizeof(int32_t));
    bench_rng r = { 7 };
    for (long i = 0; i < n; i++)
        orig[i] = (int32_t)bench_next(&r);
    /* A tenth of the values collide heavily, to exercise equal keys. */
    for (long i = 0; i < n; i += 10)
        orig[i] &= 0xff;

    memcpy(q, orig, (size_t)n * sizeof *q);
    quicksort(q, n);
    memcpy(m, orig, (size_t)n * sizeof *m);
    mergesort(m, tmp, n);

    uint64_t sum = 0;
    for (long i = 0; i < n; i++) {
        if ((i > 0 && q[i - 1] > q[i]) || q[i] != m[i]) {
            fprintf(stderr, "sort: results differ at %ld\n", i);
            return 1;
        }
        sum += (uint64_t)(uint32_t)q[i] * (uint64_t)(i + 1);
    }
    printf("sort n=%ld min=%d median=%d max=%d checksum=%016" PRIx64 "\n", n,
           q[0], q[n / 2], q[n - 1], bench_mix(sum, (uint64_t)n));
    free(orig); free(q); free(m); free(tmp);
    return 0;
}
