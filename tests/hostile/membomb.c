/* membomb — allocates (and touches) 64 KiB blocks until malloc returns
 * NULL, then prints how much it got. With --memory-limit the guest must see
 * NULL, not a trap or a host crash. A single huge request is tried first.
 * Every pointer escapes through a volatile global so the compiler cannot
 * elide the allocations (clang removes unused malloc/free pairs). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *volatile sink;

int main(void) {
    void *huge = malloc((size_t)1 << 30);
    sink = huge;
    printf("malloc(1 GiB): %s\n", sink ? "non-NULL" : "NULL");
    free(sink);
    size_t total = 0;
    const size_t chunk = 64 * 1024;
    void **head = NULL;
    for (;;) {
        void **p = malloc(chunk);
        sink = p;
        if (!p) break;
        memset(p, 0xA5, chunk);
        *p = head;      /* keep every block reachable */
        head = p;
        sink = head;
        total += chunk;
        if (total > ((size_t)3 << 30)) break;
    }
    printf("allocated %zu KiB before NULL\n", total / 1024);
    /* Memory.grow refused: the raw builtin must return -1, not trap. */
    int r = __builtin_wasm_memory_grow(0, 65536);
    printf("memory.grow(65536 pages): %d\n", r);
    printf("memory size: %zu KiB\n", (size_t)__builtin_wasm_memory_size(0) * 64);
    /* Everything allocated is still intact. */
    size_t blocks = 0, bad = 0;
    for (void **p = head; p; p = *p, blocks++)
        if (((unsigned char *)p)[chunk - 1] != 0xA5) bad++;
    printf("blocks=%zu corrupted=%zu\n", blocks, bad);
    return 0;
}
