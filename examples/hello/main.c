/* The quick-start guest: a plain C program compiled to wasm32-wasi. It reads
 * a file from the directory it was given, counts words from stdin if any,
 * and reports its arguments and environment — all through WASI. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    printf("hello from a WebAssembly guest running under keel\n");
    for (int i = 1; i < argc; i++)
        printf("  arg %d: %s\n", i, argv[i]);
    const char *who = getenv("GREETING");
    printf("  GREETING=%s\n", who ? who : "(unset: the guest sees only --env)");
    FILE *f = fopen("/data/motd.txt", "r");
    if (!f) {
        perror("  /data/motd.txt");
        return 1;
    }
    char line[256];
    while (fgets(line, sizeof line, f))
        printf("  motd: %s", line);
    fclose(f);
    return 0;
}
