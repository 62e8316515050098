/* chain.c — one link of a call chain, for the cost of an in-process hop.
 * With config "next" = a component name, operation "handle" calls that
 * component's "handle" (waPC __host_call, binding keel) with the payload it
 * got and answers what it returns; without "next" it answers "hello". The
 * same module serves as A, B and C (keel.yaml gives each its "next"), so a
 * chain A -> B -> C and C alone run identical code apart from the calls. */
#define KEEL_IMPLEMENTATION
#include "keel.h"

#include <stdlib.h>

static void handle(const uint8_t *payload, size_t len)
{
    char next[65];
    if (keel_config("next", next, sizeof next) < 0) {
        keel_respond("hello", 5);
        return;
    }
    uint8_t *out;
    size_t n;
    if (keel_call(next, "handle", payload, len, &out, &n) == 0)
        keel_respond(out, n);
    else
        keel_fail(out ? (const char *)out : "call failed (out of memory)");
    free(out);
}

KEEL_INIT { keel_register("handle", handle); }
