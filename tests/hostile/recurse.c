/* recurse — unbounded recursion that uses only wasm locals (no shadow
 * stack), so it exhausts the native call stack: the host must trap with
 * "call stack exhausted", not crash. */
#include <stdio.h>

volatile int sink;

__attribute__((noinline)) static int deep(int n) {
    if (sink == -12345) return n;
    int r = deep(n + 1);
    sink += r;
    return r + 1;
}

int main(void) {
    puts("recursing");
    fflush(stdout);
    printf("%d\n", deep(0));
    return 0;
}
