/* bad_cgi.c — a WAGI command that gets CGI wrong in the way QUERY_STRING
 * names: nohdr, nonl, badstatus, exit, exit_valid, big, trap, spin. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
    const char *q = getenv("QUERY_STRING");
    q = q ? q : "";
    if (!strcmp(q, "nohdr")) {
        printf("just some text\n");
    } else if (!strcmp(q, "nonl")) {
        printf("Content-Type: text/plain\n");
    } else if (!strcmp(q, "badstatus")) {
        printf("Status: abc\nContent-Type: text/plain\n\nx");
    } else if (!strcmp(q, "exit")) {
        fprintf(stderr, "giving up\n");
        return 3;
    } else if (!strcmp(q, "exit_valid")) {
        printf("Content-Type: text/plain\n\npartial\n");
        return 3;
    } else if (!strcmp(q, "big")) {
        printf("Content-Type: text/plain\n\n");
        static char chunk[65536];
        memset(chunk, 'x', sizeof chunk);
        for (int i = 0; i < 17 * 16 + 1; i++)   /* a little over 17 MiB */
            fwrite(chunk, 1, sizeof chunk, stdout);
    } else if (!strcmp(q, "trap")) {
        __builtin_trap();
    } else if (!strcmp(q, "spin")) {
        volatile unsigned n = 0;
        for (;;)
            n++;
    } else {
        printf("Content-Type: text/plain\n\nfine\n");
    }
    return 0;
}
