/* caller.c — waPC reactor that calls other components.
 *   call:   payload "component/op/rest" calls op of component with "rest";
 *           answers the result, or "error: <message>" (still 200).
 *   deep:   calls itself (config "self") until the host refuses; answers
 *           the innermost error, so the depth limit is visible.
 *   nested: reports what the http_* functions say (run it as a callee). */
#define KEEL_IMPLEMENTATION
#include "keel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void answer(int rc, uint8_t *out, size_t n)
{
    if (rc == 0) {
        keel_respond(out, n);
    } else {
        char *msg = malloc(n + 8);
        memcpy(msg, "error: ", 7);
        memcpy(msg + 7, out, n);
        keel_respond(msg, n + 7);
        keel_logf(KEEL_INFO, "call failed: %s", (const char *)out);
        free(msg);
    }
    free(out);
}

static void call(const uint8_t *payload, size_t len)
{
    char *p = strndup((const char *)payload, len);
    char *s1 = strchr(p, '/'), *s2 = s1 ? strchr(s1 + 1, '/') : NULL;
    if (!s2) {
        keel_fail("payload must be component/op/rest");
        free(p);
        return;
    }
    *s1 = 0;
    *s2 = 0;
    uint8_t *out;
    size_t n;
    int rc = keel_call(p, s1 + 1, s2 + 1, strlen(s2 + 1), &out, &n);
    answer(rc, out, n);
    free(p);
}

static void deep(const uint8_t *payload, size_t len)
{
    (void)payload; (void)len;
    char self[64];
    if (keel_config("self", self, sizeof self) < 0) {
        keel_fail("no config self");
        return;
    }
    uint8_t *out;
    size_t n;
    int rc = keel_call(self, "deep", "", 0, &out, &n);
    answer(rc, out, n);
}

static void nested(const uint8_t *payload, size_t len)
{
    (void)payload; (void)len;
    char buf[64], out[200];
    keel_set_status(418);
    snprintf(out, sizeof out, "method=%d uri=%d header=%d set_header=%d",
             keel_http_method(buf, sizeof buf), keel_http_uri(buf, sizeof buf),
             keel_http_header("x-test", buf, sizeof buf), keel_set_header("x-nested", "1"));
    keel_respond_str(out);
}

KEEL_INIT
{
    keel_register("call", call);
    keel_register("deep", deep);
    keel_register("nested", nested);
}
