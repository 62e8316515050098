/* module_int.h — keel_module and keel_instance internals, shared by
 * module.c and instance.c only. */
#ifndef KEEL_ENGINE_MODULE_INT_H
#define KEEL_ENGINE_MODULE_INT_H

#include "engine/engine.h"
#include "engine/native.h"
#include "engine/wasm_parse.h"

/* Distinct import modules one module may name. */
#define KEEL_MAX_IMPORT_MODULES 64

struct keel_module {
    char *path;
    wasm_info info;
    char digest[65];
    char src_key[65], so_key[65];
    const char *tier;
    size_t units;             /* translation units built in this load */
    keel_native *native;
    const keel_glue_syms *syms;
    const char *import_modules[KEEL_MAX_IMPORT_MODULES];
    size_t nimport_modules;
    bool linked;
    const void **func_addrs;
    const char **func_names;
    const void *code_start;
};

/* Where the image support (image.c) finds things in the wasm2c instance
 * struct, as the glue describes them (glue.c): byte offsets of the owned
 * memories (wasm_rt_memory_t), owned funcref and externref tables, and the
 * import-instance pointer of each import module (in keel_module_import_module
 * order). A count of -1 means the struct holds something an image cannot
 * reproduce (imported memories/tables/globals, funcref globals, a field the
 * glue did not recognise): such a module has no images. The glue's export
 * table carries the layout in the `addr` of its terminating entry. */
typedef struct image_slot image_slot;

typedef struct keel_glue_layout {
    int32_t nmems, nfuncref, nexternref, nimports;
    const uint32_t *mems, *funcref, *externref, *imports;
} keel_glue_layout;

/* The module's layout, or NULL when its code has none (older glue). */
const keel_glue_layout *keel_module_layout(const keel_module *m);

/* Memory reservations (rt_memory.c): an 8 GiB PROT_NONE region from the
 * pool or a new mapping (NULL on failure), and its return (used: bytes from
 * the start that may hold pages; they are dropped first). A reservation
 * starts at a multiple of its size, so an address inside one names it:
 * addr >> RT_MEMORY_RESERVE_SHIFT (image.c's fault lookup). */
#define RT_MEMORY_RESERVE_SHIFT 33
void *rt_memory_reserve(void);
/* The image fault hook (image.c), called first by the SIGSEGV handler:
 * true when addr was a first write to an image page an instance maps
 * read-only, now made writable (the access is then retried).
 * Async-signal-safe. */
bool keel_image_fault(uintptr_t addr);
void rt_memory_release(void *base, uint64_t used);

struct keel_instance {
    keel_module *m;
    void *inst;               /* wasm2c instance struct */
    uint32_t memory_limit_pages;
    keel_image *img;          /* the image it came from, NULL when none */
    struct image_slot *slot;  /* img's slot holding its memory, or NULL */
};

/* image.c: hands the memories of in (made from in->img) back to the image
 * for reuse and detaches them from in's struct; the generated free then
 * releases the rest. */
void keel_image_recycle(keel_instance *in);

#endif
