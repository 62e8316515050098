/* hello_wapc.c — the smallest useful waPC component: operation "handle"
 * answers "hello" (5 bytes, like nginx's `return 200 "hello"`). Built as a
 * WASI reactor. */
#define KEEL_IMPLEMENTATION
#include "keel.h"

static void hello(const uint8_t *payload, size_t len)
{
    (void)payload; (void)len;
    keel_respond("hello", 5);
}

KEEL_INIT { keel_register("handle", hello); }
