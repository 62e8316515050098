/* wasm_parse.h — a bounds-checked reader of the wasm binary format's outer
 * structure: sections, types, imports, functions, globals, exports, start.
 * It does not validate code (wasm-validate does); it exists to reject
 * non-wasm and truncated files with a precise message, and to give the
 * engine the import/export lists and signatures it needs for linking. */
#ifndef KEEL_ENGINE_WASM_PARSE_H
#define KEEL_ENGINE_WASM_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"

typedef struct wasm_info {
    keel_extern *imports;      /* strings owned by the wasm_info */
    size_t nimports;
    keel_extern *exports;
    size_t nexports;
    size_t nfunc_imports;
    bool uses_simd;            /* v128 seen in a type, global or import */
    bool has_start;
} wasm_info;

/* Parses bytes[0..n). On error returns KEEL_EINVAL (or KEEL_EUNSUPPORTED)
 * with "what at offset 0xN" in err (no file name: callers prefix it). */
int wasm_parse(const uint8_t *bytes, size_t n, wasm_info *out, char *err,
               size_t errlen);
void wasm_info_free(wasm_info *info);

#endif
