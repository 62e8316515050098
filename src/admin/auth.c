/* auth.c — who may call the admin API's mutating endpoints: the tokens of
 * admin.token_file and the bearer-token check of every such request.
 *
 * The token file is read per request (a rotated or added token applies at
 * once) and holds either one token (identity "admin"), or one
 * "LABEL TOKEN" pair per line, so every operator or CI system has its own
 * token and the audit trail names it:
 *
 *     # who       token
 *     alice       4f0c...e1
 *     ci.deploy   9b7a...20
 *
 * Labels are [a-z0-9_.@-], 1 to KEEL_ADMIN_MAX_LABEL bytes, each once;
 * blank lines and lines starting with '#' are ignored. The presented token
 * is compared in constant time with every token of the file. Every refusal
 * is recorded in the audit trail (admin.auth_failed: status, remote
 * address, method, path and why; never the presented token). */
#include "admin/admin_int.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/audit.h"

#define ADMIN_MAX_TOKEN_FILE (64u << 10)
#define ADMIN_MAX_TOKENS 256
#define ADMIN_REQUEST_TEXT 256      /* bytes of method or path in a record */

typedef struct token {
    char label[KEEL_ADMIN_MAX_LABEL + 1];
    const char *secret;       /* inside the file's buffer */
    size_t len;
} token;

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* Splits the file's text (modified in place) into tokens; -1 with why
 * naming path:line on a malformed line. */
static int parse_tokens(char *text, const char *path, token *out, size_t *n, char *why,
                        size_t len)
{
    size_t count = 0, lineno = 0, single_line = 0;
    bool single = false;
    char *save = NULL;
    *n = 0;
    for (char *line = text; line; line = save) {
        save = strchr(line, '\n');
        if (save)
            *save++ = '\0';
        lineno++;
        char *f[3];
        int nf = 0;
        for (char *p = line; *p && nf < 3;) {
            while (is_space(*p))
                p++;
            if (!*p || (*p == '#' && nf == 0))
                break;
            f[nf++] = p;
            while (*p && !is_space(*p))
                p++;
            if (*p)
                *p++ = '\0';
        }
        if (nf == 0)
            continue;
        if (nf == 1 && count == 0 && !single) {
            single = true;           /* a lone token, if nothing follows */
            single_line = lineno;
            out[0] = (token){ .label = "admin", .secret = f[0], .len = strlen(f[0]) };
            count = 1;
            continue;
        }
        if (single) {
            snprintf(why, len, "admin.token_file %s:%zu: expected one token, or LABEL TOKEN "
                     "on every line (line %zu holds a token alone)", path, lineno,
                     single_line);
            return -1;
        }
        if (nf != 2) {
            snprintf(why, len, "admin.token_file %s:%zu: expected LABEL TOKEN", path, lineno);
            return -1;
        }
        size_t ll = strlen(f[0]);
        if (ll > KEEL_ADMIN_MAX_LABEL ||
            strspn(f[0], "abcdefghijklmnopqrstuvwxyz0123456789_.@-") != ll) {
            snprintf(why, len, "admin.token_file %s:%zu: label must be 1 to %d of "
                     "[a-z0-9_.@-]", path, lineno, KEEL_ADMIN_MAX_LABEL);
            return -1;
        }
        for (size_t i = 0; i < count; i++)
            if (!strcmp(out[i].label, f[0])) {
                snprintf(why, len, "admin.token_file %s:%zu: label %s appears twice", path,
                         lineno, f[0]);
                return -1;
            }
        if (count == ADMIN_MAX_TOKENS) {
            snprintf(why, len, "admin.token_file %s: more than %d tokens", path,
                     ADMIN_MAX_TOKENS);
            return -1;
        }
        memcpy(out[count].label, f[0], ll + 1);
        out[count].secret = f[1];
        out[count].len = strlen(f[1]);
        count++;
    }
    if (!count) {
        snprintf(why, len, "admin.token_file %s holds no token", path);
        return -1;
    }
    *n = count;
    return 0;
}

/* The whole token file, malloc'd and NUL-terminated, or NULL with why. */
static char *read_token_file(const char *path, char *why, size_t len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(why, len, "cannot read admin.token_file %s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(ADMIN_MAX_TOKEN_FILE + 1);
    if (!buf)
        abort();
    size_t n = fread(buf, 1, ADMIN_MAX_TOKEN_FILE + 1, f);
    fclose(f);
    if (n > ADMIN_MAX_TOKEN_FILE) {
        snprintf(why, len, "admin.token_file %s is over %u bytes", path, ADMIN_MAX_TOKEN_FILE);
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    if (memchr(buf, '\0', n)) {
        snprintf(why, len, "admin.token_file %s holds a NUL byte", path);
        free(buf);
        return NULL;
    }
    return buf;
}

/* Equal bytes, in time that depends only on the lengths. */
static bool same_secret(const char *a, size_t alen, const char *b, size_t blen)
{
    unsigned char diff = alen != blen;
    size_t n = alen < blen ? alen : blen;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

/* s[0..n) as the inside of a JSON string, at most ADMIN_REQUEST_TEXT bytes,
 * bytes outside printable ASCII written %XX (requests carry any bytes). */
static void put_request_text(keel_buf *b, const char *s, size_t n)
{
    char tmp[ADMIN_REQUEST_TEXT * 3 + 4];
    size_t k = 0;
    for (size_t i = 0; i < n && k < ADMIN_REQUEST_TEXT; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c > 0x20 && c < 0x7f && c != '%')
            tmp[k++] = (char)c;
        else
            k += (size_t)snprintf(tmp + k, sizeof tmp - k, "%%%02X", c);
    }
    if (n && k >= ADMIN_REQUEST_TEXT)
        k += (size_t)snprintf(tmp + k, sizeof tmp - k, "...");
    tmp[k] = '\0';
    keel_buf_json(b, tmp);
}

/* Records the refusal (admin.auth_failed); returns status. The caller
 * logs it, naming the endpoint. */
static int refuse(h2o_req_t *req, int status, const char *why)
{
    char host[NI_MAXHOST] = "unknown";
    struct sockaddr_storage ss;
    socklen_t sl = req->conn && req->conn->callbacks->get_peername
                       ? req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss)
                       : 0;
    if (sl && h2o_socket_getnumerichost((struct sockaddr *)&ss, sl, host) == SIZE_MAX)
        snprintf(host, sizeof host, "unknown");
    keel_buf b = { 0 };
    keel_buf_printf(&b, "\"status\":%d,\"remote\":\"", status);
    keel_buf_json(&b, host);
    keel_buf_puts(&b, "\",\"method\":\"");
    put_request_text(&b, req->method.base, req->method.len);
    keel_buf_puts(&b, "\",\"path\":\"");
    put_request_text(&b, req->path.base, req->path.len);
    keel_buf_puts(&b, "\",\"why\":\"");
    keel_buf_json(&b, why);
    keel_buf_puts(&b, "\"");
    keel_audit("admin.auth_failed", "unknown", b.data);
    keel_buf_free(&b);
    return status;
}

int keel_admin_authorize(const keel_manifest *m, h2o_req_t *req, char *who, size_t wholen,
                         char *why, size_t len)
{
    if (wholen)
        who[0] = '\0';
    if (!m || !m->admin.token_file) {
        snprintf(why, len, "mutating endpoints are off: admin.token_file is not set");
        return refuse(req, 403, why);
    }
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    static const char bearer[] = "Bearer ";
    if (i < 0 || req->headers.entries[i].value.len <= sizeof bearer - 1 ||
        strncasecmp(req->headers.entries[i].value.base, bearer, sizeof bearer - 1) != 0) {
        snprintf(why, len, "an Authorization: Bearer token is required");
        return refuse(req, 401, why);
    }
    h2o_iovec_t v = req->headers.entries[i].value;
    const char *presented = v.base + sizeof bearer - 1;
    size_t plen = v.len - (sizeof bearer - 1);
    char *text = read_token_file(m->admin.token_file, why, len);
    if (!text)
        return refuse(req, 403, why);
    token *tokens = malloc(ADMIN_MAX_TOKENS * sizeof *tokens);
    if (!tokens)
        abort();
    size_t n;
    int status = 0;
    if (parse_tokens(text, m->admin.token_file, tokens, &n, why, len)) {
        status = 403;
    } else {
        size_t match = n;
        for (size_t k = 0; k < n; k++)       /* every token, no early exit */
            if (same_secret(presented, plen, tokens[k].secret, tokens[k].len))
                match = k;
        if (match == n) {
            snprintf(why, len, "wrong token");
            status = 403;
        } else {
            snprintf(who, wholen, "%s", tokens[match].label);
        }
    }
    free(tokens);
    free(text);
    return status ? refuse(req, status, why) : 0;
}
