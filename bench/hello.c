/* hello.c — the smallest WASI command: startup cost of each runtime
 * (bench/hello.sh). */
#include <stdio.h>

int main(void)
{
    puts("hello, world");
    return 0;
}
