/* exit_code — ends in the way argv[1] names with the status argv[2]:
 *   return N | exit N | _Exit N | atexit N (exit N after an atexit handler
 *   prints) | proc_exit N (raw WASI, skips libc flushing of unflushed stdio).
 * Prints a line before ending so the test sees stdout is flushed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wasi/api.h>

static void handler(void) { puts("atexit handler ran"); }

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: exit_code MODE N\n"); return 2; }
    int n = atoi(argv[2]);
    printf("mode=%s n=%d\n", argv[1], n);
    fprintf(stderr, "stderr before exit\n");
    if (!strcmp(argv[1], "return")) return n;
    if (!strcmp(argv[1], "exit")) exit(n);
    if (!strcmp(argv[1], "_Exit")) { fflush(stdout); _Exit(n); }
    if (!strcmp(argv[1], "atexit")) { atexit(handler); exit(n); }
    if (!strcmp(argv[1], "proc_exit")) { fflush(stdout); __wasi_proc_exit((__wasi_exitcode_t)n); }
    fprintf(stderr, "unknown mode\n");
    return 99;
}
