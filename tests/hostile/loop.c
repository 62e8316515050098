/* loop — prints one line, then spins forever. Run with --timeout: the
 * deadline must end it with a "deadline exceeded" trap. */
#include <stdio.h>

int main(void) {
    puts("looping");
    fflush(stdout);
    volatile unsigned long x = 0;
    for (;;) x++;
}
