/* command.c — a waPC guest built as a WASI command (main, _start): Keel
 * runs _start (main registers one operation) and then wapc_init (which
 * registers another); "both" reports that each ran exactly once. */
#define KEEL_IMPLEMENTATION
#include "keel.h"

#include <stdio.h>

static int main_runs, init_runs;

static void both(const uint8_t *payload, size_t len)
{
    (void)payload; (void)len;
    char out[64];
    snprintf(out, sizeof out, "main=%d init=%d", main_runs, init_runs);
    keel_respond_str(out);
}

KEEL_INIT
{
    init_runs++;
}

int main(void)
{
    main_runs++;
    keel_register("both", both);
    return 0;
}
