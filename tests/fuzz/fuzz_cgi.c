/* fuzz_cgi.c — libFuzzer target: the CGI response parser (a WAGI guest's
 * stdout, untrusted). Checks what the parser promises on success: a status
 * of 0 or 100..599, header names and values Keel would send, and the body
 * being exactly the bytes after the blank line. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "host/host_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    keel_response resp;
    memset(&resp, 0, sizeof resp);
    char why[256];
    if (host_cgi_parse((const char *)data, size, &resp, why, sizeof why) == 0) {
        if (resp.status != 0 && (resp.status < 100 || resp.status > 599))
            abort();
        if (resp.body_len > size || memcmp(resp.body, data + size - resp.body_len,
                                           resp.body_len) != 0)
            abort();
        for (size_t i = 0; i < resp.nheaders; i++)
            if (!host_header_name_ok(resp.headers[i].name, resp.headers[i].name_len) ||
                !host_header_value_ok(resp.headers[i].value, resp.headers[i].value_len) ||
                host_header_reserved(resp.headers[i].name, resp.headers[i].name_len))
                abort();
    } else if (why[0] == '\0') {
        abort();   /* every refusal says why */
    }
    keel_response_free(&resp);
    return 0;
}
