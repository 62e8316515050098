/* tier_fast.c — the fast tier: wasm2c output compiled by libtcc in process.
 *
 * tcc lacks the GCC builtins wasm2c's output calls and never inlines, so the
 * source is rewritten first (keel_native_fast_source): a prelude defines the
 * builtins, and after wasm2c's load/store helper definitions, macros replace
 * every call with a direct access through the memory's data pointer (bounds
 * still come from guard pages). Code lives in an mmap'd buffer Keel owns, so
 * its range is known exactly. */
#include "engine/native_int.h"

#include <libtcc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/errors.h"
#include "engine/rt.h"


static const char fast_prelude[] =
    "/* Keel fast-tier prelude: builtins tcc lacks. */\n"
    "#define __builtin_clz keel_clz32\n"
    "#define __builtin_clzll keel_clz64\n"
    "#define __builtin_ctz keel_ctz32\n"
    "#define __builtin_ctzll keel_ctz64\n"
    "#define __builtin_popcount keel_popcnt32\n"
    "#define __builtin_popcountll keel_popcnt64\n"
    "static inline int keel_clz64(unsigned long long x) {\n"
    "  unsigned long long r; __asm__(\"bsrq %1, %0\" : \"=r\"(r) : \"r\"(x)); return 63 - (int)r; }\n"
    "static inline int keel_clz32(unsigned x) { return keel_clz64(x) - 32; }\n"
    "static inline int keel_ctz64(unsigned long long x) {\n"
    "  unsigned long long r; __asm__(\"bsfq %1, %0\" : \"=r\"(r) : \"r\"(x)); return (int)r; }\n"
    "static inline int keel_ctz32(unsigned x) { return keel_ctz64(x); }\n"
    "static inline int keel_popcnt64(unsigned long long x) {\n"
    "  x = x - ((x >> 1) & 0x5555555555555555ULL);\n"
    "  x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);\n"
    "  x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fULL;\n"
    "  return (int)((x * 0x0101010101010101ULL) >> 56); }\n"
    "static inline int keel_popcnt32(unsigned x) { return keel_popcnt64(x); }\n";

/* Inserted with the access macros: tcc computes -(x) on floats with an
 * arithmetic instruction that quiets signalling NaNs; wasm's neg only flips
 * the sign bit. */
static const char fast_fneg[] =
    "static inline f32 keel_fneg32(f32 x) { u32 b; memcpy(&b, &x, 4); b ^= 0x80000000u;\n"
    "  memcpy(&x, &b, 4); return x; }\n"
    "static inline f64 keel_fneg64(f64 x) { u64 b; memcpy(&b, &x, 8); b ^= 0x8000000000000000ull;\n"
    "  memcpy(&x, &b, 8); return x; }\n"
    "#define KEEL_FNEG(x) _Generic((x), f32: keel_fneg32, f64: keel_fneg64)(x)\n";

/* Inserted after wasm2c's last DEFINE_STORE: direct accesses. */
static const char fast_access_macros[] =
    "\n/* Keel fast tier: direct loads and stores (guard pages bound them). */\n"
    "#define KEEL_P(m, a, t) ((t *)((m)->data + (u64)(a)))\n"
    "#define i32_load(m, a) (*KEEL_P(m, a, u32))\n"
    "#define i64_load(m, a) (*KEEL_P(m, a, u64))\n"
    "#define f32_load(m, a) (*KEEL_P(m, a, f32))\n"
    "#define f64_load(m, a) (*KEEL_P(m, a, f64))\n"
    "#define i32_load8_s(m, a) ((u32)(s32)*KEEL_P(m, a, s8))\n"
    "#define i64_load8_s(m, a) ((u64)(s64)*KEEL_P(m, a, s8))\n"
    "#define i32_load8_u(m, a) ((u32)*KEEL_P(m, a, u8))\n"
    "#define i64_load8_u(m, a) ((u64)*KEEL_P(m, a, u8))\n"
    "#define i32_load16_s(m, a) ((u32)(s32)*KEEL_P(m, a, s16))\n"
    "#define i64_load16_s(m, a) ((u64)(s64)*KEEL_P(m, a, s16))\n"
    "#define i32_load16_u(m, a) ((u32)*KEEL_P(m, a, u16))\n"
    "#define i64_load16_u(m, a) ((u64)*KEEL_P(m, a, u16))\n"
    "#define i64_load32_s(m, a) ((u64)(s64)*KEEL_P(m, a, s32))\n"
    "#define i64_load32_u(m, a) ((u64)*KEEL_P(m, a, u32))\n"
    "#define i32_store(m, a, v) (*KEEL_P(m, a, u32) = (u32)(v))\n"
    "#define i64_store(m, a, v) (*KEEL_P(m, a, u64) = (u64)(v))\n"
    "#define f32_store(m, a, v) (*KEEL_P(m, a, f32) = (f32)(v))\n"
    "#define f64_store(m, a, v) (*KEEL_P(m, a, f64) = (f64)(v))\n"
    "#define i32_store8(m, a, v) (*KEEL_P(m, a, u8) = (u8)(v))\n"
    "#define i32_store16(m, a, v) (*KEEL_P(m, a, u16) = (u16)(v))\n"
    "#define i64_store8(m, a, v) (*KEEL_P(m, a, u8) = (u8)(v))\n"
    "#define i64_store16(m, a, v) (*KEEL_P(m, a, u16) = (u16)(v))\n"
    "#define i64_store32(m, a, v) (*KEEL_P(m, a, u32) = (u32)(v))\n";

char *keel_native_fast_source(const char *c_text, size_t len, size_t *out_len)
{
    static const char anchor[] = "DEFINE_STORE(i64_store32, u32, u64)\n";
    static const char neg_old[] = " = -(w2c_", neg_new[] = " = KEEL_FNEG(w2c_";
    const char *at = strstr(c_text, anchor);
    if (!at)
        return NULL;
    size_t split = (size_t)(at - c_text) + sizeof anchor - 1;
    size_t nneg = 0;
    for (const char *p = c_text + split; (p = strstr(p, neg_old)); p += sizeof neg_old - 1)
        nneg++;
    size_t total = sizeof fast_prelude + len + sizeof fast_access_macros + sizeof fast_fneg +
                   nneg * (sizeof neg_new - sizeof neg_old);
    char *out = malloc(total + 1);
    if (!out)
        return NULL;
    size_t k = 0;
#define PUT(s, n) (memcpy(out + k, (s), (n)), k += (n))
    PUT(fast_prelude, sizeof fast_prelude - 1);
    PUT(c_text, split);
    PUT(fast_access_macros, sizeof fast_access_macros - 1);
    PUT(fast_fneg, sizeof fast_fneg - 1);
    const char *p = c_text + split, *end = c_text + len;
    for (const char *hit; (hit = strstr(p, neg_old)); p = hit + sizeof neg_old - 1) {
        PUT(p, (size_t)(hit - p));
        PUT(neg_new, sizeof neg_new - 1);
    }
    PUT(p, (size_t)(end - p));
#undef PUT
    out[k] = '\0';
    *out_len = k;
    return out;
}

int keel_native_bind_syms(keel_glue_syms *s, void *(*lookup)(void *, const char *),
                          void *h, char *err, size_t errlen)
{
#define SYM(field, name)                                                   \
    do {                                                                   \
        void *p_ = lookup(h, name);                                        \
        if (!p_)                                                           \
            return keel_err(err, errlen, KEEL_ECOMPILE,                    \
                            "compiled module lacks symbol %s", name);      \
        memcpy(&s->field, &p_, sizeof p_);                                 \
    } while (0)
    SYM(bind, "keel_glue_bind");
    SYM(instance_size, "keel_glue_instance_size");
    SYM(init_module, "keel_glue_init_module");
    SYM(instantiate, "keel_glue_instantiate");
    SYM(free, "keel_glue_free");
    SYM(exports, "keel_glue_exports");
    SYM(export_count, "keel_glue_export_count");
    SYM(func_addrs, "keel_glue_func_addrs");
    SYM(func_names, "keel_glue_func_names");
    SYM(func_count, "keel_glue_func_count");
    SYM(layout, "keel_glue_layout");
#undef SYM
    return 0;
}

static void *tcc_lookup(void *h, const char *name)
{
    return tcc_get_symbol(h, name);
}

typedef struct tcc_errors {
    char *buf;
    size_t len;
    int seen;
} tcc_errors;

static void on_tcc_error(void *opaque, const char *msg)
{
    tcc_errors *e = opaque;
    if (!e->seen && e->buf && e->len)
        snprintf(e->buf, e->len, "fast tier (tcc): %s", msg);
    e->seen = 1;
}

/* Runtime functions compiled code calls, handed to tcc explicitly. */
static void add_runtime_symbols(TCCState *s)
{
#define RT(fn) tcc_add_symbol(s, #fn, (const void *)(uintptr_t)fn)
    RT(wasm_rt_trap);
    RT(wasm_rt_register_func_type);
    RT(wasm_rt_allocate_memory);
    RT(wasm_rt_grow_memory);
    RT(wasm_rt_free_memory);
    RT(wasm_rt_allocate_funcref_table);
    RT(wasm_rt_free_funcref_table);
    RT(wasm_rt_allocate_externref_table);
    RT(wasm_rt_free_externref_table);
    RT(wasm_rt_grow_funcref_table);
    RT(wasm_rt_grow_externref_table);
    RT(wasm_rt_is_initialized);
    RT(wasm_rt_register_tag);
    RT(wasm_rt_load_exception);
    RT(wasm_rt_throw);
    RT(wasm_rt_get_unwind_target);
    RT(wasm_rt_set_unwind_target);
    RT(wasm_rt_exception_tag);
    RT(wasm_rt_exception_size);
    RT(wasm_rt_exception);
#undef RT
}

/* libtcc keeps global state: one compile at a time per process. */
static pthread_mutex_t tcc_lock = PTHREAD_MUTEX_INITIALIZER;

int keel_native_fast(const char *c_text, size_t len, keel_native **out,
                     char *err, size_t errlen)
{
    (void)len;
    tcc_errors te = { err, errlen, 0 };
    int rc = 0;
    pthread_mutex_lock(&tcc_lock);
    TCCState *s = tcc_new();
    if (!s) {
        pthread_mutex_unlock(&tcc_lock);
        return keel_err(err, errlen, KEEL_ENOMEM, "fast tier: tcc_new failed");
    }
    tcc_set_error_func(s, &te, on_tcc_error);
    tcc_set_options(s, "-w");
    tcc_define_symbol(s, "NDEBUG", "1");
    tcc_define_symbol(s, "WASM_RT_MEMCHECK_SIGNAL_HANDLER", "1");
    tcc_set_output_type(s, TCC_OUTPUT_MEMORY);
    add_runtime_symbols(s);
    keel_native *n = calloc(1, sizeof *n);
    if (!n)
        abort();
    if (tcc_compile_string(s, c_text) != 0) {
        rc = te.seen ? KEEL_ECOMPILE
                     : keel_err(err, errlen, KEEL_ECOMPILE, "fast tier: compile failed");
        goto out;
    }
    int size = tcc_relocate(s, NULL);
    if (size <= 0) {
        rc = te.seen ? KEEL_ECOMPILE
                     : keel_err(err, errlen, KEEL_ECOMPILE, "fast tier: link failed");
        goto out;
    }
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    n->code_len = ((size_t)size + page - 1) / page * page + page;
    n->code = mmap(NULL, n->code_len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (n->code == MAP_FAILED) {
        n->code = NULL;
        rc = keel_err(err, errlen, KEEL_ENOMEM, "fast tier: cannot map %d bytes", size);
        goto out;
    }
    if (tcc_relocate(s, n->code) < 0) {
        rc = te.seen ? KEEL_ECOMPILE
                     : keel_err(err, errlen, KEEL_ECOMPILE, "fast tier: relocation failed");
        goto out;
    }
    rc = keel_native_bind_syms(&n->syms, tcc_lookup, s, err, errlen);
    if (rc)
        goto out;
    n->code_start = n->code;
    n->code_end = (char *)n->code + n->code_len;
out:
    tcc_delete(s);
    pthread_mutex_unlock(&tcc_lock);
    if (rc) {
        keel_native_free(n);
        return rc;
    }
    *out = n;
    return 0;
}

const keel_glue_syms *keel_native_syms(const keel_native *n)
{
    return &n->syms;
}

void keel_native_code_range(const keel_native *n, const void **start,
                            const void **end)
{
    *start = n->code_start;
    *end = n->code_end;
}
