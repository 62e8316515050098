/* hashmap.c — memory-bound work: a large hash table and a pointer chase.
 *
 * 1. An open-addressing hash table (linear probing, 2^22 slots of 64-bit
 *    key + 64-bit value = 64 MiB) takes `size` inserts of LCG keys (updates
 *    on repeats), then 2*size lookups of which about half miss, then deletes
 *    a third of the keys (backward-shift deletion) and looks them all up
 *    again.
 * 2. A random cyclic permutation of 4M 32-bit indices (16 MiB, built with
 *    Sattolo's algorithm) is followed once around (4M steps): each load depends on
 *    the last, so the time is cache- and TLB-miss latency.
 * Prints counts and checksums of both. */
#include "bench.h"
#include <string.h>

#define TABLE_BITS 22
#define TABLE_SLOTS (1u << TABLE_BITS)
#define CHASE_LEN (1u << 22)
#define CHASE_STEPS (1u << 22)
#define EMPTY 0 /* key 0 is never inserted */

typedef struct {
    uint64_t key, val;
} slot;

static inline uint32_t slot_of(uint64_t key)
{
    return (uint32_t)((key * 0x9e3779b97f4a7c15ULL) >> (64 - TABLE_BITS));
}

/* Returns 1 when the key was new. */
static int insert(slot *t, uint64_t key, uint64_t val)
{
    uint32_t i = slot_of(key);
    for (;;) {
        if (t[i].key == EMPTY) {
            t[i].key = key;
            t[i].val = val;
            return 1;
        }
        if (t[i].key == key) {
            t[i].val += val;
            return 0;
        }
        i = (i + 1) & (TABLE_SLOTS - 1);
    }
}

static slot *find(slot *t, uint64_t key)
{
    uint32_t i = slot_of(key);
    for (;;) {
        if (t[i].key == key)
            return &t[i];
        if (t[i].key == EMPTY)
            return NULL;
        i = (i + 1) & (TABLE_SLOTS - 1);
    }
}

static int erase(slot *t, uint64_t key)
{
    uint32_t i = slot_of(key);
    for (;;) {
        if (t[i].key == EMPTY)
            return 0;
        if (t[i].key == key)
            break;
        i = (i + 1) & (TABLE_SLOTS - 1);
    }
    /* Backward shift: pull later members of the cluster into the hole when
     * their home slot is not in (hole, j]. */
    uint32_t hole = i, j = i;
    for (;;) {
        j = (j + 1) & (TABLE_SLOTS - 1);
        if (t[j].key == EMPTY)
            break;
        uint32_t home = slot_of(t[j].key);
        if (((j - home) & (TABLE_SLOTS - 1)) >= ((j - hole) & (TABLE_SLOTS - 1))) {
            t[hole] = t[j];
            hole = j;
        }
    }
    t[hole].key = EMPTY;
    t[hole].val = 0;
    return 1;
}

/* Keys: a small key space (so repeats happen) spread over 64 bits. */
static uint64_t key_at(bench_rng *r, uint32_t space)
{
    return bench_mix(0, bench_next(r) % space) | 1;
}

int main(int argc, char **argv)
{
    long n = bench_size(argc, argv, 2000000);
    if (n > (long)(TABLE_SLOTS / 4 * 3)) {
        fprintf(stderr, "hashmap: size at most %u\n", TABLE_SLOTS / 4 * 3);
        return 2;
    }
    slot *t = bench_alloc(sizeof(slot) * TABLE_SLOTS);
    memset(t, 0, sizeof(slot) * TABLE_SLOTS);
    uint32_t space = (uint32_t)n + (uint32_t)n / 4;

    bench_rng r = { 5 };
    long distinct = 0;
    for (long i = 0; i < n; i++)
        distinct += insert(t, key_at(&r, space), (uint64_t)i);

    /* Lookups over twice the key space: about half miss. */
    bench_rng q = { 6 };
    long hits = 0;
    uint64_t vsum = 0;
    for (long i = 0; i < 2 * n; i++) {
        slot *s = find(t, key_at(&q, 2 * space));
        if (s) { hits++; vsum += s->val; }
    }

    bench_rng d = { 5 };
    long erased = 0;
    for (long i = 0; i < n; i++) {
        uint64_t k = key_at(&d, space);
        if (i % 3 == 0)
            erased += erase(t, k);
    }
    bench_rng q2 = { 6 };
    long hits2 = 0;
    for (long i = 0; i < 2 * n; i++)
        hits2 += find(t, key_at(&q2, 2 * space)) != NULL;
    long occupied = 0;
    for (uint32_t i = 0; i < TABLE_SLOTS; i++)
        occupied += t[i].key != EMPTY;
    if (occupied != distinct - erased) {
        fprintf(stderr, "hashmap: %ld slots used, expected %ld\n", occupied,
                distinct - erased);
        return 1;
    }
    free(t);

    uint32_t *next = bench_alloc(sizeof(uint32_t) * CHASE_LEN);
    for (uint32_t i = 0; i < CHASE_LEN; i++)
        next[i] = i;
    bench_rng c = { 8 };
    for (uint32_t i = CHASE_LEN - 1; i > 0; i--) { /* Sattolo: one cycle */
        uint32_t j = bench_next(&c) % i;
        uint32_t tmp = next[i]; next[i] = next[j]; next[j] = tmp;
    }
    uint32_t at = 0;
    uint64_t chase = 0;
    for (uint32_t i = 0; i < CHASE_STEPS; i++) {
        at = next[at];
        chase += at;
    }
    free(next);

    printf("hashmap n=%ld distinct=%ld hits=%ld vsum=%016" PRIx64
           " erased=%ld hits_after=%ld chase=%016" PRIx64 "\n",
           n, distinct, hits, vsum, erased, hits2, chase);
    return 0;
}
