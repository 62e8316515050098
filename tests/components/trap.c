/* trap.c — waPC reactor that misbehaves on request: traps, spins past its
 * deadline, hands the host pointers outside its memory, eats memory. */
#define KEEL_IMPLEMENTATION
#include "keel.h"

#include <stdlib.h>

static void trap(const uint8_t *payload, size_t len)
{
    (void)payload; (void)len;
    __builtin_trap();
}

static void spin(const uint8_t *payload, size_t len)
{
    (void)payload; (void)len;
    volatile unsigned n = 0;
    for (;;)
        n++;
}

static void oob(const uint8_t *payload, size_t len)
{
    (void)payload; (void)len;
    keel_raw_http_uri((char *)0xFFFFFF00u, 0x1000);   /* past the end of memory */
    keel_respond_str("not reached\n");
}

static void oob_response(const uint8_t *payload, size_t len)
{
    (void)payload; (void)len;
    __guest_response((const uint8_t *)0xFFFFFFF0u, 100);
    keel_respond_str("not reached\n");
}

static void grow(const uint8_t *payload, size_t len)
{
    (void)payload; (void)len;
    static void *volatile keep;   /* so the compiler cannot drop the mallocs */
    for (;;) {
        keep = malloc(1 << 20);
        if (!keep)
            __builtin_trap();
    }
}

KEEL_INIT
{
    keel_register("trap", trap);
    keel_register("spin", spin);
    keel_register("oob", oob);
    keel_register("oob_response", oob_response);
    keel_register("grow", grow);
}
