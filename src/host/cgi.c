/* cgi.c — the CGI response a WAGI guest writes to stdout (RFC 3875 section
 * 6): header lines (Status, Content-Type, Location, others passed through;
 * framing headers dropped), a blank line, then the body. Untrusted bytes:
 * every malformed form is an error with a reason, never a crash (fuzzed by
 * tests/fuzz/fuzz_cgi.c). */
#include "host/host_int.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int host_cgi_parse(const char *out, size_t len, keel_response *resp, char *why, size_t whylen)
{
    size_t pos = 0;
    int status = 0;
    bool has_ct = false, has_loc = false;
    for (;;) {
        if (pos >= len) {
            snprintf(why, whylen, len ? "output ended inside the CGI headers (no blank line)"
                                      : "no output");
            return -1;
        }
        size_t limit = len < KEEL_HOST_MAX_RESP_HEADER_BYTES ? len
                                                             : KEEL_HOST_MAX_RESP_HEADER_BYTES;
        const char *nl = pos < limit ? memchr(out + pos, '\n', limit - pos) : NULL;
        if (!nl) {
            snprintf(why, whylen, len > limit ? "CGI headers longer than %u bytes"
                                              : "output ended inside the CGI headers "
                                                "(no blank line)",
                     KEEL_HOST_MAX_RESP_HEADER_BYTES);
            return -1;
        }
        const char *line = out + pos;
        size_t n = (size_t)(nl - line);
        pos += n + 1;
        if (n && line[n - 1] == '\r')
            n--;
        if (!n)
            break;   /* the blank line */
        const char *colon = memchr(line, ':', n);
        if (!colon || colon == line || !host_header_name_ok(line, (size_t)(colon - line))) {
            snprintf(why, whylen, "bad CGI header line \"%.*s\"", n > 80 ? 80 : (int)n, line);
            return -1;
        }
        size_t nlen = (size_t)(colon - line);
        const char *v = colon + 1, *vend = line + n;
        while (v < vend && (*v == ' ' || *v == '\t'))
            v++;
        while (vend > v && (vend[-1] == ' ' || vend[-1] == '\t'))
            vend--;
        size_t vlen = (size_t)(vend - v);
        if (!host_header_value_ok(v, vlen)) {
            snprintf(why, whylen, "CGI header %.*s has a control character in its value",
                     (int)nlen, line);
            return -1;
        }
        if (nlen == 6 && strncasecmp(line, "Status", 6) == 0) {
            if (vlen < 3 || !isdigit((unsigned char)v[0]) || !isdigit((unsigned char)v[1]) ||
                !isdigit((unsigned char)v[2]) || (vlen > 3 && v[3] != ' ')) {
                snprintf(why, whylen, "bad Status header \"%.*s\"", vlen > 40 ? 40 : (int)vlen,
                         v);
                return -1;
            }
            status = (v[0] - '0') * 100 + (v[1] - '0') * 10 + (v[2] - '0');
            if (status < 100 || status > 599) {
                snprintf(why, whylen, "Status %d is not an HTTP status code", status);
                return -1;
            }
            continue;
        }
        if (nlen == 12 && strncasecmp(line, "Content-Type", 12) == 0)
            has_ct = true;
        if (nlen == 8 && strncasecmp(line, "Location", 8) == 0)
            has_loc = true;
        if (host_header_reserved(line, nlen))
            continue;   /* framing is Keel's business */
        if (resp->nheaders >= KEEL_HOST_MAX_RESP_HEADERS) {
            snprintf(why, whylen, "more than %u CGI headers", KEEL_HOST_MAX_RESP_HEADERS);
            return -1;
        }
        host_response_add_header(resp, line, nlen, v, vlen);
    }
    if (!status && !has_ct && !has_loc) {
        snprintf(why, whylen, "CGI response has none of Content-Type, Location, Status");
        return -1;
    }
    resp->status = status ? status : has_loc ? 302 : 0;   /* 0: the caller decides */
    resp->body_len = len - pos;
    resp->body = malloc(resp->body_len + 1);
    if (!resp->body)
        abort();
    memcpy(resp->body, out + pos, resp->body_len);
    resp->body[resp->body_len] = 0;
    return 0;
}
