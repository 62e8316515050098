/* sleeper — prints one line, then blocks in the host for a long time:
 * argv[1] "sleep" = poll_oneoff on a 60 s clock (nanosleep), "stdin" = a
 * read of stdin that never gets data. --timeout must end it anyway. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    puts("blocking");
    fflush(stdout);
    if (argc > 1 && !strcmp(argv[1], "stdin")) {
        char c;
        ssize_t n = read(0, &c, 1);
        printf("read returned %zd\n", n);
    } else {
        struct timespec ts = {60, 0};
        nanosleep(&ts, NULL);
        puts("woke up");
    }
    return 0;
}
