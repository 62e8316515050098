/* bench.h — helpers shared by the benchmark programs: the size argument, a
 * deterministic pseudo-random generator and a 64-bit mixer for checksums.
 * Everything here behaves identically on x86-64 (gcc) and wasm32 (clang):
 * only fixed-width integer arithmetic, no floating point. */
#ifndef KEEL_BENCH_H
#define KEEL_BENCH_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* argv[1] as a positive count, else dflt. Exits 2 on a bad argument. */
static inline long bench_size(int argc, char **argv, long dflt)
{
    if (argc < 2)
        return dflt;
    char *end;
    long v = strtol(argv[1], &end, 10);
    if (*end != '\0' || v <= 0) {
        fprintf(stderr, "usage: %s [size > 0]\n", argv[0]);
        exit(2);
    }
    return v;
}

/* 64-bit LCG (Knuth MMIX constants); the high bits are the good ones. */
typedef struct { uint64_t s; } bench_rng;

static inline uint32_t bench_next(bench_rng *r)
{
    r->s = r->s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(r->s >> 32);
}

/* Folds v into h (splitmix64 finalizer over h ^ v). */
static inline uint64_t bench_mix(uint64_t h, uint64_t v)
{
    uint64_t z = h ^ (v + 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline void *bench_alloc(size_t n)
{
    void *p = malloc(n);
    if (p == NULL) {
        fprintf(stderr, "out of memory (%zu bytes)\n", n);
        exit(3);
    }
    return p;
}

#endif
