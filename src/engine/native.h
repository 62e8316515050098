/* native.h — the two compiler tiers behind one interface.
 *
 * Both turn a C file (wasm2c output + glue) into loaded code and hand back
 * the glue's fixed symbols (glue.h) plus the executable range, which is
 * registered with the runtime so faults and deadlines in it become traps.
 *   fast (tier_fast.c): libtcc in process, code in memory, nothing on disk;
 *   opt  (tier_opt.c):  `cc -O2` out of process into a shared object, then
 *                       dlopen. No page is ever writable and executable. */
#ifndef KEEL_ENGINE_NATIVE_H
#define KEEL_ENGINE_NATIVE_H

#include <stddef.h>
#include <stdint.h>

#include "engine/glue.h"

typedef struct keel_glue_syms {
    void (*bind)(uint32_t i, void *addr);
    size_t (*instance_size)(void);
    void (*init_module)(void);
    void (*instantiate)(void *inst, void *const *imports);
    void (*free)(void *inst);
    const keel_glue_export *exports;
    const uint32_t *export_count;
    const void *const *func_addrs;
    const char *const *func_names;
    const uint32_t *func_count;
    const struct keel_glue_layout *layout;   /* instance struct offsets (image.c) */
} keel_glue_syms;

typedef struct keel_native keel_native;

/* Compiles C text (NUL-terminated, len bytes) with libtcc, in process. */
int keel_native_fast(const char *c_text, size_t len, keel_native **out,
                     char *err, size_t errlen);

/* Builds the shared object so_path from the C units (keel_split_c's
 * output: one unit, or unit 0 plus function units) with the system
 * compiler, writing sources and logs in workdir. Units compile in parallel
 * (KEEL_OPT_JOBS, default: online CPUs), each compiler process within
 * KEEL_OPT_MEMORY of address space (default 6GiB), all within
 * KEEL_OPT_TIMEOUT (default 10m). Over budget: KEEL_ELIMIT. */
int keel_native_opt_build(const char *workdir, char *const *units, size_t nunits,
                          const char *so_path, char *err, size_t errlen);

/* Loads a shared object built by keel_native_opt_build. */
int keel_native_open(const char *so_path, keel_native **out, char *err,
                     size_t errlen);

/* Loads a shared object held in memory (an app's embedded code, bundle.h):
 * copied into a memfd (or, where those may not be executed, an unlinked
 * file in $TMPDIR) and opened from there. name labels the memfd. */
int keel_native_open_image(const void *so, size_t len, const char *name,
                           keel_native **out, char *err, size_t errlen);

const keel_glue_syms *keel_native_syms(const keel_native *n);
/* [start, end) of the executable guest code, for keel_rt_register_code. */
void keel_native_code_range(const keel_native *n, const void **start,
                            const void **end);
void keel_native_free(keel_native *n);

/* What the opt tier's output depends on besides the C source: compiler
 * path, size, mtime and flags. Stable across runs; cheap (no exec). */
const char *keel_native_opt_identity(void);

/* The fast tier's rewrite of wasm2c output for tcc: a prelude with the
 * builtins tcc lacks, and direct-pointer load/store macros (tcc never
 * inlines). Returns malloc'd text (caller frees) or NULL. */
char *keel_native_fast_source(const char *c_text, size_t len, size_t *out_len);

/* Shared by both tiers: looks the glue symbols up with lookup(handle, name). */
int keel_native_bind_syms(keel_glue_syms *s, void *(*lookup)(void *, const char *),
                          void *handle, char *err, size_t errlen);

#endif
