/* glue.h — the C unit Keel appends to wasm2c's output for each module.
 *
 * wasm2c's symbols depend on the module (Z_keelZ2Eg_instantiate takes one
 * pointer per import module, each export is its own typed function). The
 * glue gives the engine one fixed interface for every module:
 *
 *   void keel_glue_bind(uint32_t i, void *addr)   bind import i
 *   size_t keel_glue_instance_size(void)
 *   void keel_glue_init_module(void)
 *   void keel_glue_instantiate(void *inst, void *const *import_instances)
 *   void keel_glue_free(void *inst)
 *   const keel_glue_export keel_glue_exports[]    name, kind, accessor, trampoline
 *   uint32_t keel_glue_export_count
 *   const void *keel_glue_func_addrs[] / const char *keel_glue_func_names[]
 *   uint32_t keel_glue_func_count                 for naming trap sites
 *   const struct keel_glue_layout keel_glue_layout instance struct offsets for
 *                                                 copy-on-write images
 *
 * Imports are defined by the glue as forwarders through a table bound at
 * link time, so compiled code never depends on symbols of the process. */
#ifndef KEEL_ENGINE_GLUE_H
#define KEEL_ENGINE_GLUE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "engine/wasm_parse.h"

/* The module name Keel passes to wasm2c -n; mangled it is MODNAME_MANGLED. */
#define KEEL_GLUE_MODNAME "keel.g"
#define KEEL_GLUE_MODNAME_MANGLED "keelZ2Eg"

/* One export as the glue describes it. tramp (functions only) calls the
 * export with arguments from vals[] and stores results back in vals[]. */
typedef struct keel_glue_export {
    const char *name;
    uint32_t name_len;
    uint32_t kind;
    void *addr;
    void (*tramp)(void *inst, uint64_t *vals);
} keel_glue_export;

/* Writes wasm2c's mangled form of name[0..len) to out (NUL-terminated). */
void keel_glue_mangle(const char *name, size_t len, char *out, size_t outlen);

/* Appends the glue unit for info to f. generated_c is wasm2c's output, used
 * to collect the names of guest functions. Returns 0 or KEEL_E*. */
int keel_glue_write(FILE *f, const wasm_info *info, const char *generated_c,
                    size_t generated_len, char *err, size_t errlen);

/* Distinct import module names in first-appearance order (wasm2c's order
 * for the instantiate parameters). Returns the count; names point into info. */
size_t keel_glue_import_modules(const wasm_info *info, const char **names,
                                size_t max);

#endif
