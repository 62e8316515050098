/* engine.h — WebAssembly modules compiled ahead of time to native code.
 *
 * A module goes: bytes -> parsed and validated (wasm_parse.c, wasm-validate)
 * -> C (wasm2c + a glue unit Keel generates) -> native code from one of two
 * tiers:
 *   fast: libtcc in process, milliseconds, never cached;
 *   opt:  the system C compiler (-O2) out of process, a shared object kept in
 *         the content-addressed cache (cache.c).
 * In an app built by `keel build` the opt tier's shared objects are embedded
 * (bundle.h): a module whose wasm digest has embedded code loads it from
 * there, compiling nothing and touching no cache.
 * Then: link (bind each import to a host function or another module's
 * export), instantiate (per instance: memory, tables, globals, the import
 * instance pointers), call exports through keel_rt_invoke.
 *
 * Ownership: keel_module is immutable after link and may be shared by
 * threads; each keel_instance belongs to one thread at a time. Free functions
 * accept NULL. Errors: 0 or negative KEEL_E*, text in err.
 */
#ifndef KEEL_ENGINE_ENGINE_H
#define KEEL_ENGINE_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/host_abi.h"
#include "engine/rt.h"

typedef enum keel_tier {
    KEEL_TIER_AUTO = 0,   /* opt if cached, else fast now + opt in background */
    KEEL_TIER_FAST,
    KEEL_TIER_OPT,
} keel_tier;

typedef struct keel_engine_opts {
    keel_tier tier;
    const char *cache_dir;     /* NULL: $KEEL_CACHE, else ~/.cache/keel */
    bool background_opt;       /* AUTO: start a detached opt compile on miss */
    bool verbose;              /* log compile steps and timings to stderr */
    /* When set, every import must be one of these host functions (checked
     * before any compile work); each table ends with a zeroed entry. */
    const keel_host_fn *const *host_tables;
    size_t nhost_tables;
} keel_engine_opts;

/* Import/export kinds, as in the binary format. */
enum { KEEL_EXTERN_FUNC = 0, KEEL_EXTERN_TABLE = 1, KEEL_EXTERN_MEMORY = 2,
       KEEL_EXTERN_GLOBAL = 3, KEEL_EXTERN_TAG = 4 };

/* One import or export. sig: for functions the letters of host_abi.h
 * ("iI:f"; reference types: r = funcref, e = externref); for globals the
 * value type letter, prefixed by 'm' when mutable; "" for memory/table. */
typedef struct keel_extern {
    const char *module;   /* imports only */
    const char *name;
    size_t name_len;      /* names may hold NUL bytes */
    int kind;
    const char *sig;
} keel_extern;

typedef struct keel_module keel_module;
typedef struct keel_instance keel_instance;

/* Loads, validates and compiles path. The one-line error names the file and
 * the problem (not wasm, truncated at offset N, SIMD, ...). */
int keel_module_load(const char *path, const keel_engine_opts *opts,
                     keel_module **out, char *err, size_t errlen);
void keel_module_free(keel_module *m);

/* Which tier the module's code came from ("fast" or "opt"). */
const char *keel_module_tier(const keel_module *m);
/* Translation units the optimized build used in this load (0: the code
 * came from the cache or the fast tier). */
size_t keel_module_units(const keel_module *m);
/* The file the module was loaded from, as given. */
const char *keel_module_path(const keel_module *m);
/* Hex sha256 of the wasm bytes. */
const char *keel_module_digest(const keel_module *m);

size_t keel_module_import_count(const keel_module *m);
const keel_extern *keel_module_import(const keel_module *m, size_t i);
size_t keel_module_export_count(const keel_module *m);
const keel_extern *keel_module_export(const keel_module *m, size_t i);

/* Distinct import module names, in the order keel_instance_new() wants
 * their instance pointers. */
size_t keel_module_import_module_count(const keel_module *m);
const char *keel_module_import_module(const keel_module *m, size_t i);

/* Binds every import. resolve() returns the address to bind for imp (a host
 * function, or another module's keel_module_export_addr), or NULL when it
 * has none; then link fails naming "module.field". Signature equality is
 * the resolver's job (keel_module_link_host checks it for host tables). */
typedef void *(*keel_resolve_fn)(void *ud, const keel_extern *imp,
                                 char *why, size_t whylen);
int keel_module_link(keel_module *m, keel_resolve_fn resolve, void *ud,
                     char *err, size_t errlen);

/* Binds imports to host functions from tables (each ends with a zeroed
 * entry), checking signatures. */
int keel_module_link_host(keel_module *m, const keel_host_fn *const *tables,
                          size_t ntables, char *err, size_t errlen);

/* The native address of an export's accessor (functions: the function;
 * globals/memories/tables: the function returning a pointer to it), for
 * binding another module's import. NULL when absent. */
void *keel_module_export_addr(const keel_module *m, const char *name);

/* Instantiates m. import_instances[i] is passed to guest code as the
 * instance of import module keel_module_import_module(m, i) (a
 * keel_host_ctx* for host modules, keel_instance_ptr() of another instance
 * for module-to-module links). memory_limit_pages caps every memory of the
 * instance (0 = none). Initialization can trap (data segment out of bounds,
 * start function): then *out is NULL and *trap says why. */
int keel_instance_new(keel_module *m, void *const *import_instances,
                      uint32_t memory_limit_pages, keel_instance **out,
                      keel_rt_outcome *trap, char *err, size_t errlen);
void keel_instance_free(keel_instance *inst);

/* ---- copy-on-write images (image.c) ----
 *
 * An image is the state of an instance frozen for cloning: its instance
 * struct, each owned memory's contents in a sealed memfd, each owned
 * table's contents. keel_instance_from_image makes an instance in a few
 * microseconds whatever the size of the memory: the struct is copied, the
 * import-instance pointers are replaced, each memory gets a pooled 8 GiB
 * reservation with the memfd mapped privately over its first `size` bytes
 * (pages are copied only when the guest writes them), tables are copied
 * with their functions rebound to the new instance. An image may be used
 * by any number of threads at once (it keeps a few clean reservations for
 * reuse, lock-free). Every instance made from it must be freed before
 * keel_image_free, which may come before its module's free; memories of
 * freed instances still waiting for some thread's keel_image_tidy keep the
 * image's storage alive until that tidy (the image's last user destroys
 * it), so an image can be replaced while other threads serve. */
typedef struct keel_image keel_image;

/* Captures initialized (which stays usable and owned by the caller). NULL,
 * with the reason in err, when the module cannot be imaged: imports other
 * than functions, funcref globals, a table holding another instance's
 * function, code compiled without layout tables. Callers then instantiate
 * with keel_instance_new. */
keel_image *keel_image_new(keel_instance *initialized, char *err, size_t errlen);
void keel_image_free(keel_image *img);

/* A new instance in the image's state. import_instances as for
 * keel_instance_new. memory_limit_pages (0 = none) clamps each memory's
 * maximum further (never above the template's own clamp); a memory already
 * larger than it fails with KEEL_ELIMIT. No guest code runs. */
int keel_instance_from_image(keel_image *img, void *const *import_instances,
                             uint32_t memory_limit_pages, keel_instance **out,
                             char *err, size_t errlen);

/* Finishes what freeing image instances on this thread left to do:
 * resetting their memories for reuse. Freeing only queues that work (a
 * bounded amount per thread), so that it runs where it delays no one —
 * after a response is sent. Cheap when there is nothing to do. */
void keel_image_tidy(void);

/* Whether the module has a start function (it runs at instantiation). */
bool keel_module_has_start(const keel_module *m);

/* The wasm2c instance struct (to hand to modules that import from it). */
void *keel_instance_ptr(keel_instance *inst);

/* The exported memory called name (NULL: the first exported memory). */
wasm_rt_memory_t *keel_instance_memory(keel_instance *inst, const char *name);

/* Calls exported function name. vals holds the arguments on entry and the
 * results on return, one uint64_t each (i32 zero-extended; f32/f64 as their
 * bit patterns); nvals must be >= max(params, results). Returns KEEL_EINVAL
 * when there is no such function or nvals is too small; otherwise 0, with
 * *out saying whether it returned, exited or trapped. */
int keel_instance_call(keel_instance *inst, const char *name, uint64_t *vals,
                       size_t nvals, const keel_rt_limits *limits,
                       keel_rt_outcome *out, char *err, size_t errlen);

/* The same, for a name of name_len bytes (names may hold NUL bytes). */
int keel_instance_call_n(keel_instance *inst, const char *name, size_t name_len,
                         uint64_t *vals, size_t nvals, const keel_rt_limits *limits,
                         keel_rt_outcome *out, char *err, size_t errlen);

/* "VERSION CODEGEN-ID": what optimized code depends on in this Keel (its
 * version and a hash of the sources that generate and compile C). An app
 * built by `keel build` runs only on the Keel that built it. */
const char *keel_engine_build_id(void);

/* Hex sha256 key of the module's optimized object in the cache. */
const char *keel_module_cache_key(const keel_module *m);

/* Reads an exported global into *val (bits as for calls). */
int keel_instance_global(keel_instance *inst, const char *name, uint64_t *val);

#endif
