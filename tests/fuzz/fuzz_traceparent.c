/* fuzz_traceparent.c — libFuzzer target: the W3C trace context a client
 * sends (keel_traceparent_parse, src/obs/trace.c) and the X-Request-Id it
 * may send (keel_http_request_id_ok, src/http/proto.c), on arbitrary
 * bytes. An accepted traceparent obeys the W3C rules once the surrounding
 * spaces and tabs are dropped: at least 55 bytes, "VV-" with VV lower-case
 * hex and not "ff", exactly 55 bytes for version 00 (a later version may
 * go on after a '-'), lower-case hex ids that are not all zero, flags
 * whose bit 0 is `sampled`. It round-trips: keel_traceparent_format gives
 * 55 bytes that parse to the same context and carry the input's ids
 * verbatim. An accepted request id is 1-64 bytes of [A-Za-z0-9._-]. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/server_int.h"
#include "obs/trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_traceparent: %s\n", what);
        abort();
    }
}

static bool lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static bool all_zero(const uint8_t *id, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (id[i])
            return false;
    return true;
}

static void traceparent(const char *v, size_t len)
{
    keel_trace_ctx c;
    if (!keel_traceparent_parse(v, len, &c))
        return;
    while (len && (*v == ' ' || *v == '\t')) {
        v++;
        len--;
    }
    while (len && (v[len - 1] == ' ' || v[len - 1] == '\t'))
        len--;
    check(len >= 55, "accepted fewer than 55 bytes");
    check(lower_hex(v, 2) && memcmp(v, "ff", 2) != 0, "accepted a bad version");
    check(memcmp(v, "00", 2) != 0 || len == 55, "accepted version 00 longer than 55 bytes");
    check(len == 55 || v[55] == '-', "accepted trailing bytes without a '-'");
    check(v[2] == '-' && v[35] == '-' && v[52] == '-', "accepted misplaced dashes");
    check(lower_hex(v + 3, 32) && lower_hex(v + 36, 16) && lower_hex(v + 53, 2),
          "accepted non lower-case hex");
    check(!all_zero(c.trace_id, 16) && !all_zero(c.span_id, 8), "accepted an all-zero id");
    int flags = (int)strtol((char[]){ v[53], v[54], 0 }, NULL, 16);
    check(c.sampled == (flags & 1), "sampled is not bit 0 of the flags");

    char out[56];
    keel_traceparent_format(&c, out);
    check(strlen(out) == 55, "formatted length is not 55");
    check(memcmp(out + 2, v + 2, 51) == 0, "formatted ids differ from the input's");
    keel_trace_ctx again;
    check(keel_traceparent_parse(out, 55, &again), "formatted traceparent does not parse");
    check(!memcmp(again.trace_id, c.trace_id, 16) && !memcmp(again.span_id, c.span_id, 8) &&
          again.sampled == c.sampled, "round trip changed the context");
}

static void request_id(const char *s, size_t n)
{
    if (!keel_http_request_id_ok(s, n))
        return;
    check(n >= 1 && n <= KEEL_HTTP_MAX_REQUEST_ID, "request id length out of bounds");
    for (size_t i = 0; i < n; i++)
        check(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-", s[i]) &&
              s[i], "request id holds a byte outside [A-Za-z0-9._-]");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    traceparent((const char *)data, size);
    request_id((const char *)data, size);
    return 0;
}
