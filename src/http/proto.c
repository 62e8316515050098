/* proto.c — HTTP details with no state: reason phrases, which response
 * headers a guest may set, request-id syntax, the request-id generator. */
#include <string.h>

#include "http/server_int.h"

const char *keel_http_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 422: return "Unprocessable Content";
    case 425: return "Too Early";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 451: return "Unavailable For Legal Reasons";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: break;
    }
    switch (status / 100) {
    case 2: return "OK";
    case 3: return "Redirection";
    case 4: return "Client Error";
    default: return "Server Error";
    }
}

static bool lc_eq(const char *a, size_t alen, const char *lower)
{
    size_t n = strlen(lower);
    if (alen != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = a[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != lower[i])
            return false;
    }
    return true;
}

/* Headers a guest may not set: framing and hop-by-hop ones belong to the
 * connection, Date to h2o, X-Request-Id to Keel. */
bool keel_http_guest_header_dropped(const char *name, size_t len)
{
    static const char *const dropped[] = {
        "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade",
        "te", "trailer", "proxy-connection", "date", "x-request-id",
    };
    for (size_t i = 0; i < sizeof dropped / sizeof dropped[0]; i++)
        if (lc_eq(name, len, dropped[i]))
            return true;
    return false;
}


uint64_t keel_http_rand64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

bool keel_http_request_id_ok(const char *s, size_t n)
{
    if (n == 0 || n > KEEL_HTTP_MAX_REQUEST_ID)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int unreserved(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~';
}

size_t keel_http_normalize_path(const char *in, size_t len, char *out)
{
    static const char hex[] = "0123456789ABCDEF";
    /* 1: percent-encodings: unreserved decoded, the rest kept, hex upper */
    size_t n = 0;
    out[n++] = '/';
    for (size_t i = (len && in[0] == '/') ? 1 : 0; i < len; i++) {
        int hi, lo;
        if (in[i] == '%' && i + 2 < len &&
            (hi = hexval((unsigned char)in[i + 1])) >= 0 &&
            (lo = hexval((unsigned char)in[i + 2])) >= 0) {
            int c = hi * 16 + lo;
            if (unreserved(c)) {
                out[n++] = (char)c;
            } else {
                out[n++] = '%';
                out[n++] = hex[hi];
                out[n++] = hex[lo];
            }
            i += 2;
        } else {
            out[n++] = in[i];
        }
    }
    /* 2: remove "." and ".." segments in place (RFC 3986 5.2.4) */
    size_t w = 0, r = 0;
    while (r < n) {
        /* here out[r] == '/' starts a segment */
        size_t e = r + 1;
        while (e < n && out[e] != '/')
            e++;
        size_t seg = e - r - 1;
        const char *sp = out + r + 1;
        int last = e >= n;
        if (seg == 1 && sp[0] == '.') {
            if (last)
                out[w++] = '/';
        } else if (seg == 2 && sp[0] == '.' && sp[1] == '.') {
            while (w > 0 && out[--w] != '/')
                ;
            if (last)
                out[w++] = '/';
        } else {
            memmove(out + w, out + r, e - r);
            w += e - r;
        }
        r = e;
    }
    if (w == 0)
        out[w++] = '/';
    out[w] = '\0';
    return w;
}
