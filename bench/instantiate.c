/* instantiate.c — per-request instantiation cost, in microseconds (p50 and
 * p99 over many runs), for two modules:
 *   hello  — the waPC test component (tests/components/hello.c, a wasm32-wasi
 *            reactor, as built by `make guests`);
 *   data   — a generated module with one memory and a BENCH_DATA_KIB (default
 *            1536) KiB active data segment of non-zero bytes.
 * For each it times, separately:
 *   new      keel_instance_new (instantiation from scratch: reservation,
 *            data segments, element segments), then (free) the
 *            keel_instance_free of that instance after one byte of its
 *            memory was written (a request dirties at least a page);
 *   image    keel_instance_from_image (copy-on-write image, pooled
 *            reservations), then its free likewise, then (reset) the
 *            keel_image_tidy that puts the memory back in the image's
 *            state for reuse (the server runs it after the response) —
 *            only with -DKEEL_BENCH_IMAGE;
 *   wasi     keel_wasi_new + keel_wasi_free with the component host's
 *            configuration (argv, no env, stdio memfds, no preopens).
 *
 * Build and run (from the repository root, after `make BUILD=build all guests`):
 *   cc -std=c17 -O2 -D_GNU_SOURCE -DKEEL_BENCH_IMAGE -Isrc bench/instantiate.c \
 *      -Wl,--whole-archive build/libkeel.a -Wl,--no-whole-archive \
 *      -lh2o-evloop -lfyaml -ltcc -lsqlite3 -lhiredis -ldl -lpthread -lm -rdynamic -o build/bench-instantiate
 *   build/bench-instantiate build/components/hello.wasm [runs] [tier fast|opt]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/engine.h"
#include "host/host.h"
#include "wasi/wasi.h"

#include "bench_util.h"


static void report(const char *module, const char *what, uint64_t *t, size_t n)
{
    qsort(t, n, sizeof *t, cmp_u64);
    printf("%-6s %-6s runs %6zu  p50 %8.2f us  p99 %8.2f us  min %8.2f us\n", module, what,
           n, t[n / 2] / 1000.0, t[(n * 99) / 100] / 1000.0, t[0] / 1000.0);
}

/* A module with memory 0 (pages) exported as "memory", an active data
 * segment of kib KiB at address 1024 and an export "get" returning the i32
 * at 1024. Written to path. */
static void uleb(FILE *f, uint32_t v)
{
    do {
        unsigned char b = v & 0x7f;
        v >>= 7;
        if (v)
            b |= 0x80;
        fputc(b, f);
    } while (v);
}

static void section(FILE *f, int id, const unsigned char *body, size_t n)
{
    fputc(id, f);
    uleb(f, (uint32_t)n);
    fwrite(body, 1, n, f);
}

static int write_data_module(const char *path, uint32_t kib)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    uint32_t bytes = kib * 1024, pages = (bytes + 1024 + 65535) / 65536 + 1;
    fwrite("\0asm\1\0\0\0", 1, 8, f);
    static const unsigned char type[] = { 1, 0x60, 0, 1, 0x7f };
    section(f, 1, type, sizeof type);
    static const unsigned char func[] = { 1, 0 };
    section(f, 3, func, sizeof func);
    unsigned char mem[16];
    size_t k = 0;
    mem[k++] = 1;
    mem[k++] = 0;
    for (uint32_t v = pages;;) {   /* uleb into mem */
        unsigned char b = v & 0x7f;
        v >>= 7;
        mem[k++] = v ? (b | 0x80) : b;
        if (!v)
            break;
    }
    section(f, 5, mem, k);
    static const unsigned char exp[] = { 2, 6, 'm', 'e', 'm', 'o', 'r', 'y', 2, 0,
                                         3, 'g', 'e', 't', 0, 0 };
    section(f, 7, exp, sizeof exp);
    static const unsigned char code[] = { 1, 8, 0, 0x41, 0x80, 0x08, 0x28, 0x02, 0x00, 0x0b };
    section(f, 10, code, sizeof code);
    /* data: one active segment, offset i32.const 1024 */
    unsigned char *d = malloc(bytes + 16);
    size_t n = 0;
    d[n++] = 1;
    d[n++] = 0;
    d[n++] = 0x41;
    d[n++] = 0x80;
    d[n++] = 0x08;
    d[n++] = 0x0b;
    for (uint32_t v = bytes;;) {
        unsigned char b = v & 0x7f;
        v >>= 7;
        d[n++] = v ? (b | 0x80) : b;
        if (!v)
            break;
    }
    uint32_t x = 12345;
    for (uint32_t i = 0; i < bytes; i++) {
        x = x * 1103515245u + 12345u;
        d[n++] = (unsigned char)((x >> 16) | 1);
    }
    section(f, 11, d, n);
    free(d);
    return fclose(f);
}

static void bench_module(const char *label, const char *path, size_t runs, keel_tier tier)
{
    char err[1024];
    keel_engine_opts eo = { .tier = tier, .host_tables = keel_host_fn_tables, .nhost_tables = 3 };
    keel_module *m;
    if (keel_module_load(path, &eo, &m, err, sizeof err) ||
        keel_module_link_host(m, keel_host_fn_tables, 3, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", path, err);
        exit(1);
    }
    keel_host_ctx ctx = { 0 };
    void *imports[64];
    for (int i = 0; i < 64; i++)
        imports[i] = &ctx;
    uint64_t *t = calloc(runs, sizeof *t), *tf = calloc(runs, sizeof *tf);
    keel_rt_outcome o;
    wasm_rt_memory_t *mem;

    for (size_t i = 0; i < runs + runs / 10; i++) {   /* first 10%: warm-up */
        keel_instance *in;
        uint64_t t0 = now_ns();
        if (keel_instance_new(m, imports, 0, &in, &o, err, sizeof err)) {
            fprintf(stderr, "%s: %s\n", path, err);
            exit(1);
        }
        uint64_t t1 = now_ns();
        if ((mem = keel_instance_memory(in, NULL)))
            mem->data[mem->size - 1] = 1;   /* a request writes at least a page */
        uint64_t t2 = now_ns();
        keel_instance_free(in);
        if (i >= runs / 10) {
            t[i - runs / 10] = t1 - t0;
            tf[i - runs / 10] = now_ns() - t2;
        }
    }
    report(label, "new", t, runs);
    report(label, "free", tf, runs);

#ifdef KEEL_BENCH_IMAGE
    uint64_t *tr = malloc(runs * sizeof *tr);
    if (!tr)
        exit(1);
    keel_instance *tmpl;
    if (keel_instance_new(m, imports, 0, &tmpl, &o, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", path, err);
        exit(1);
    }
    keel_image *img = keel_image_new(tmpl, err, sizeof err);
    keel_instance_free(tmpl);
    if (!img) {
        fprintf(stderr, "%s: no image: %s\n", path, err);
        exit(1);
    }
    for (size_t i = 0; i < runs + runs / 10; i++) {
        keel_instance *in;
        uint64_t t0 = now_ns();
        if (keel_instance_from_image(img, imports, 0, &in, err, sizeof err)) {
            fprintf(stderr, "%s: %s\n", path, err);
            exit(1);
        }
        uint64_t t1 = now_ns();
        if ((mem = keel_instance_memory(in, NULL)))
            mem->data[mem->size - 1] = 1;
        uint64_t t2 = now_ns();
        keel_instance_free(in);
        uint64_t t3 = now_ns();
        keel_image_tidy();   /* the reset, which the server does after the response */
        if (i >= runs / 10) {
            t[i - runs / 10] = t1 - t0;
            tf[i - runs / 10] = t3 - t2;
            tr[i - runs / 10] = now_ns() - t3;
        }
    }
    report(label, "image", t, runs);
    report(label, "free", tf, runs);
    report(label, "reset", tr, runs);
    keel_image_free(img);
    free(tr);
#endif
    free(t);
    free(tf);
    keel_module_free(m);
}

static void bench_wasi(size_t runs)
{
    const char *argv[1] = { "hello" };
    /* as src/host/call.c: stdio are the host's memfds (no fstat) */
    keel_wasi_config wc = { .argc = 1, .argv = argv, .stdin_fd = -1, .stdout_fd = 1,
                            .stderr_fd = 2, .stdio_are_files = true };
    uint64_t *t = calloc(runs, sizeof *t);
    char err[256];
    for (size_t i = 0; i < runs; i++) {
        struct keel_wasi *w;
        uint64_t t0 = now_ns();
        if (keel_wasi_new(&wc, &w, err, sizeof err)) {
            fprintf(stderr, "wasi: %s\n", err);
            exit(1);
        }
        keel_wasi_free(w);
        t[i] = now_ns() - t0;
    }
    report("-", "wasi", t, runs);
    free(t);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s HELLO.wasm [runs] [fast|opt]\n", argv[0]);
        return 2;
    }
    size_t runs = argc > 2 ? strtoul(argv[2], NULL, 10) : 20000;
    keel_tier tier = argc > 3 && !strcmp(argv[3], "opt") ? KEEL_TIER_OPT : KEEL_TIER_FAST;
    if (keel_rt_init())
        return 1;
    const char *kib_env = getenv("BENCH_DATA_KIB");
    uint32_t kib = kib_env ? (uint32_t)atoi(kib_env) : 1536;
    char data[] = "/tmp/keel-bench-data-XXXXXX.wasm";
    int fd = mkstemps(data, 5);
    if (fd < 0)
        return 1;
    close(fd);
    if (write_data_module(data, kib))
        return 1;
    printf("tier %s, data module %u KiB of data segment\n",
           tier == KEEL_TIER_OPT ? "opt" : "fast", kib);
    bench_module("hello", argv[1], runs, tier);
    bench_module("data", data, runs, tier);
    bench_wasi(runs);
    unlink(data);
    return 0;
}
