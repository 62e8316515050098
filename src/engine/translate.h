/* translate.h — wasm bytes to C: wasm2c plus Keel's glue unit. */
#ifndef KEEL_ENGINE_TRANSLATE_H
#define KEEL_ENGINE_TRANSLATE_H

#include <stddef.h>
#include <stdint.h>

#include "engine/wasm_parse.h"

/* Translates bytes (already parsed into info) in workdir. On success *c_text
 * (malloc'd, NUL-terminated) holds wasm2c's output followed by the glue.
 * An invalid module fails with KEEL_EINVAL, a SIMD module with
 * KEEL_EUNSUPPORTED; err then holds the validator's message. */
int keel_translate(const uint8_t *bytes, size_t n, const wasm_info *info,
                   const char *workdir, char **c_text, size_t *c_len,
                   char *err, size_t errlen);

/* What translation depends on besides the bytes (wasm2c path, size, mtime). */
const char *keel_translate_identity(void);

#endif
