/* fuzz_wasm_parse.c — libFuzzer target: the wasm reader (engine) on
 * arbitrary bytes. Untrusted modules reach it first; it must reject
 * anything malformed with an error, never read out of bounds or crash. */
#include <stddef.h>
#include <stdint.h>

#include "engine/wasm_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wasm_info info;
    char err[512];
    if (wasm_parse(data, size, &info, err, sizeof err) == 0)
        wasm_info_free(&info);
    return 0;
}
