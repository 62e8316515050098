/* up_cgi.c — a WAGI command (must be listed in COMMAND_COMPONENTS) for
 * tests/integration/test_up*.py; QUERY_STRING picks what it does:
 *   env:        prints every environment variable, one NAME=value a line.
 *   echo:       copies all of stdin to stdout; X-Len says how many bytes.
 *   framing:    Status 201 plus framing headers Keel must drop.
 *   keel:       sets a header and status 202 with the keel host API, no Status:.
 *   keelstatus: keel status 202 and a CGI "Status: 203".
 *   lines:      101 header lines (over the limit of 100): 502.
 *   bomb:       mallocs and touches 1 MiB blocks until refused, then traps.
 *   sleep:      sleeps 10 s. */
#include "keel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

extern char **environ;
void *volatile up_cgi_keep;

int main(void)
{
    const char *q = getenv("QUERY_STRING");
    q = q ? q : "";
    if (!strcmp(q, "env")) {
        printf("Content-Type: text/plain\n\n");
        for (char **e = environ; *e; e++)
            printf("%s\n", *e);
    } else if (!strcmp(q, "echo")) {
        size_t cap = 1 << 16, n = 0, r;
        char *buf = malloc(cap);
        while (buf && (r = fread(buf + n, 1, cap - n, stdin)) > 0) {
            n += r;
            if (n == cap)
                buf = realloc(buf, cap *= 2);
        }
        if (!buf)
            return 1;
        printf("Content-Type: application/octet-stream\nX-Len: %zu\n\n", n);
        fwrite(buf, 1, n, stdout);
    } else if (!strcmp(q, "framing")) {
        printf("Status: 201 Created\nContent-Type: text/plain\nContent-Length: 999\n"
               "Connection: close\nTransfer-Encoding: chunked\nKeep-Alive: timeout=1\n"
               "Upgrade: h2c\nX-Ok: 1\n\nabc");
    } else if (!strcmp(q, "keel")) {
        keel_raw_http_set_header("X-From-Keel", 11, "1", 1);
        keel_raw_http_set_status(202);
        printf("Content-Type: text/plain\n\nkeel\n");
    } else if (!strcmp(q, "keelstatus")) {
        keel_raw_http_set_status(202);
        printf("Status: 203 Non-Authoritative\nContent-Type: text/plain\n\nx");
    } else if (!strcmp(q, "lines")) {
        printf("Content-Type: text/plain\n");
        for (int i = 0; i < 100; i++)
            printf("X-L%d: %d\n", i, i);
        printf("\nbody");
    } else if (!strcmp(q, "bomb")) {
        for (;;) {
            char *p = malloc(1 << 20);
            if (!p)
                __builtin_trap();
            memset(p, 0xCD, 1 << 20);
            up_cgi_keep = p;
        }
    } else if (!strcmp(q, "sleep")) {
        struct timespec ts = { 10, 0 };
        nanosleep(&ts, NULL);
        printf("Content-Type: text/plain\n\nwoke\n");
    } else {
        printf("Content-Type: text/plain\n\nup_cgi\n");
    }
    return 0;
}
