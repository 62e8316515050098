/* fuzz_manifest.c — libFuzzer target: the manifest loader (YAML through
 * libfyaml into the validated model) on arbitrary bytes, written to a file
 * in a scratch folder next to a real wasm file the inputs may name
 * ("c.wasm"). Either a model comes back or an error naming
 * "FILE:LINE:COL" — never a crash, never an error without a position. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/manifest.h"
#include "scratch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[] = "/tmp/keel-fuzz-manifest.XXXXXX";
static char path[sizeof dir + 16];

static void setup(void)
{
    fuzz_scratch_dir(dir);
    snprintf(path, sizeof path, "%s/keel.yaml", dir);
    char wasm[sizeof dir + 16];
    snprintf(wasm, sizeof wasm, "%s/c.wasm", dir);
    FILE *f = fopen(wasm, "wb");
    if (!f)
        abort();
    static const unsigned char empty_module[] = { 0, 'a', 's', 'm', 1, 0, 0, 0 };
    fwrite(empty_module, 1, sizeof empty_module, f);
    fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!path[0])
        setup();
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    if (size && fwrite(data, 1, size, f) != size)
        abort();
    fclose(f);
    keel_manifest *m = NULL;
    char err[1024] = "";
    if (keel_manifest_load(path, &m, err, sizeof err) == 0) {
        keel_manifest_free(m);
    } else if (strncmp(err, path, strlen(path)) != 0 || err[strlen(path)] != ':') {
        fprintf(stderr, "error without the manifest's position: %s\n", err);
        abort();
    }
    return 0;
}
