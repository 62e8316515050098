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

struct keel_instance {
    keel_module *m;
    void *inst;               /* wasm2c instance struct */
    uint32_t memory_limit_pages;
};

#endif
