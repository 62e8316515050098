/* membomb — allocates (and touches) 64 KiB blocks until malloc returns
 * NULL, then prints how much it got. With --memory-limit the guest must see
 * NULL, not a trap or a host crash. A single huge request is tried first. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
    void *huge = malloc((size_t)1 << 30);
    printf("malloc(1 GiB): %s\n", huge ? "non-NULL" : "NULL");
    free(huge);
    size_t total = 0;
    const size_t chunk = 64 * 1024;
    for (;;) {
        char *p = malloc(chunk);
        if (!p) break;
        memset(p, 0xA5, chunk);
        total += chunk;
        if (total > ((size_t)3 << 30)) break;
    }
    printf("allocated %zu KiB before NULL\n", total / 1024);
    /* Memory.grow refused: the raw builtin must return -1, not trap. */
    int r = __builtin_wasm_memory_grow(0, 65536);
    printf("memory.grow(65536 pages): %d\n", r);
    printf("memory size: %zu KiB\n", (size_t)__builtin_wasm_memory_size(0) * 64);
    return 0;
}
