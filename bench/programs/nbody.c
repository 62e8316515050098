/* nbody.c — gravitational n-body simulation in double precision.
 *
 * 48 bodies with pseudo-random masses, positions and velocities (from the
 * integer LCG, so identical everywhere) move under softened Newtonian
 * gravity for `size` symplectic Euler steps: an O(n^2) pairwise force loop
 * with one sqrt and one division per pair. Prints the total energy before
 * and after and a position checksum, as the exact bits of the doubles: only
 * +, -, *, / and sqrt are used, which IEEE 754 defines exactly, so x86-64
 * and wasm agree bit for bit (no printf float formatting involved). */
#include "bench.h"
#include <math.h>
#include <string.h>

#define NBODY 48
#define SOFTENING 0.01
#define DT 0.001

typedef struct {
    double x[NBODY], y[NBODY], z[NBODY];
    double vx[NBODY], vy[NBODY], vz[NBODY];
    double m[NBODY];
} system_t;

/* Uniform in [lo, hi) from 30 bits of the LCG. */
static double uniform(bench_rng *r, double lo, double hi)
{
    return lo + (hi - lo) * (double)(bench_next(r) >> 2) / 1073741824.0;
}

static void init(system_t *s)
{
    bench_rng r = { 2024 };
    for (int i = 0; i < NBODY; i++) {
        s->x[i] = uniform(&r, -10, 10);
        s->y[i] = uniform(&r, -10, 10);
        s->z[i] = uniform(&r, -1, 1);
        /* Roughly circular motion around the origin in the xy plane. */
        s->vx[i] = -s->y[i] * 0.05 + uniform(&r, -0.01, 0.01);
        s->vy[i] = s->x[i] * 0.05 + uniform(&r, -0.01, 0.01);
        s->vz[i] = uniform(&r, -0.01, 0.01);
        s->m[i] = uniform(&r, 0.1, 1.0);
    }
    s->m[0] = 50.0; /* a heavy body near the centre */
    s->x[0] = s->y[0] = s->z[0] = 0;
    s->vx[0] = s->vy[0] = s->vz[0] = 0;
}

static double energy(const system_t *s)
{
    double e = 0;
    for (int i = 0; i < NBODY; i++) {
        e += 0.5 * s->m[i] *
             (s->vx[i] * s->vx[i] + s->vy[i] * s->vy[i] + s->vz[i] * s->vz[i]);
        for (int j = i + 1; j < NBODY; j++) {
            double dx = s->x[i] - s->x[j], dy = s->y[i] - s->y[j],
                   dz = s->z[i] - s->z[j];
            e -= s->m[i] * s->m[j] /
                 sqrt(dx * dx + dy * dy + dz * dz + SOFTENING);
        }
    }
    return e;
}

static void step(system_t *s)
{
    for (int i = 0; i < NBODY; i++) {
        double ax = 0, ay = 0, az = 0;
        double xi = s->x[i], yi = s->y[i], zi = s->z[i];
        for (int j = 0; j < NBODY; j++) {
            double dx = s->x[j] - xi, dy = s->y[j] - yi, dz = s->z[j] - zi;
            double d2 = dx * dx + dy * dy + dz * dz + SOFTENING;
            double inv = 1.0 / sqrt(d2);
            double f = s->m[j] * inv * inv * inv;
            ax += dx * f;
            ay += dy * f;
            az += dz * f;
        }
        s->vx[i] += ax * DT;
        s->vy[i] += ay * DT;
        s->vz[i] += az * DT;
    }
    for (int i = 0; i < NBODY; i++) {
        s->x[i] += s->vx[i] * DT;
        s->y[i] += s->vy[i] * DT;
        s->z[i] += s->vz[i] * DT;
    }
}

static uint64_t bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

int main(int argc, char **argv)
{
    long steps = bench_size(argc, argv, 80000);
    static system_t s;
    init(&s);
    double e0 = energy(&s);
    for (long t = 0; t < steps; t++)
        step(&s);
    double e1 = energy(&s);
    uint64_t h = 0;
    for (int i = 0; i < NBODY; i++) {
        h = bench_mix(h, bits(s.x[i]));
        h = bench_mix(h, bits(s.y[i]));
        h = bench_mix(h, bits(s.z[i]));
    }
    /* The energy drift as a rounded integer is readable and exact. */
    long drift_ppm = (long)((e1 - e0) / e0 * 1e6);
    printf("nbody steps=%ld e0=%016" PRIx64 " e1=%016" PRIx64
           " drift_ppm=%ld positions=%016" PRIx64 "\n",
           steps, bits(e0), bits(e1), drift_ppm, h);
    return 0;
}
