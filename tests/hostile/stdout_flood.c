/* stdout_flood — a WAGI (CGI) program that writes a valid header, then
 * 100 MB of body to stdout in 64 KiB writes, ignoring every error (Keel
 * refuses writes past 16 MiB with EFBIG), then 1 MB to stderr. Keel must
 * bound what it keeps: 502 with a log line, never its own memory growing
 * by the 100 MB. Prints to stderr how many bytes were refused. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
    static char chunk[64 * 1024];
    memset(chunk, 'F', sizeof chunk);
    const char *head = "Content-Type: text/plain\n\n";
    (void)!write(1, head, strlen(head));
    long refused = 0, written = 0;
    for (long total = 0; total < 100L * 1000 * 1000; total += (long)sizeof chunk) {
        ssize_t n = write(1, chunk, sizeof chunk);
        if (n < 0)
            refused += (long)sizeof chunk;
        else
            written += n;
    }
    memset(chunk, 'E', sizeof chunk);
    chunk[sizeof chunk - 1] = '\n';
    for (int i = 0; i < 16; i++)
        (void)!write(2, chunk, sizeof chunk);
    fprintf(stderr, "stdout_flood: written=%ld refused=%ld\n", written, refused);
    return 0;
}
