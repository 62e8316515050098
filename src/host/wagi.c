/* wagi.c — any WASI command as a component, CGI-style (RFC 3875 over WASI
 * stdio): the request body on stdin, CGI meta-variables in the
 * environment, the response read back from stdout as CGI header lines, a
 * blank line and the body. stdin/stdout/stderr are memfds; stdout is capped
 * at KEEL_HOST_MAX_BODY_BYTES, stderr goes to the log line by line. */
#include "host/host_int.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/version.h"
#include "obs/log.h"
#include "wasi/wasi_imports.h"

#define WASI_EFBIG 22   /* witx errno "file too large" */

/* fd_write in front of WASI's: a WAGI guest's write to stdout that would
 * take it past KEEL_HOST_MAX_BODY_BYTES fails with EFBIG and marks the
 * response as overflowed (the memfd's seal is the hard bound behind it).
 * Everything else goes straight to WASI. */
static uint32_t wagi_fd_write(WASI_CTX, uint32_t fd, uint32_t iovs, uint32_t iovs_len,
                              uint32_t nwritten_out)
{
    keel_host_ctx *hc = KEEL_HOST_CTX(ctx);
    host_call *c = hc->component;
    if (c && fd == 1 && c->cgi_stdout >= 0) {
        const uint8_t *v = keel_guest_ptr(hc->mem, iovs, (uint64_t)iovs_len * 8);
        uint64_t total = 0;
        for (uint32_t i = 0; v && i < iovs_len; i++) {
            uint32_t len;
            memcpy(&len, v + 8 * (size_t)i + 4, 4);   /* wasm is little-endian, as are we */
            total += len;
        }
        if (host_memfd_used(c->cgi_stdout) + total > KEEL_HOST_MAX_BODY_BYTES) {
            c->cgi_overflow = true;
            return WASI_EFBIG;
        }
    }
    return Z_wasi_snapshot_preview1Z_fd_write(ctx, fd, iovs, iovs_len, nwritten_out);
}

const keel_host_fn keel_host_wagi_fns[] = {
    { "wasi_snapshot_preview1", "fd_write", "iiii:i", (void (*)(void))wagi_fd_write },
    { 0, 0, 0, 0 },
};

/* A growing "KEY=VALUE" list. */
typedef struct envlist {
    char **v;
    int n, cap;
} envlist;

static void env_add_raw(envlist *e, char *s)
{
    if (e->n == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 32;
        char **v = realloc(e->v, (size_t)e->cap * sizeof *v);
        if (!v)
            abort();
        e->v = v;
    }
    e->v[e->n++] = s;
}

static void env_add(envlist *e, const char *key, const char *val, size_t vlen)
{
    char *s = NULL;
    if (asprintf(&s, "%s=%.*s", key, (int)vlen, val) < 0)
        abort();
    env_add_raw(e, s);
}

static bool env_has(const envlist *e, const char *kv)
{
    size_t klen = strcspn(kv, "=");
    for (int i = 0; i < e->n; i++)
        if (strncmp(e->v[i], kv, klen) == 0 && e->v[i][klen] == '=')
            return true;
    return false;
}

static void env_free(envlist *e)
{
    for (int i = 0; i < e->n; i++)
        free(e->v[i]);
    free(e->v);
}

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch = tolower(ch);
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* Percent-decodes [s, s+len) (PATH_INFO is decoded, RFC 3875 4.1.5); "%00"
 * stays encoded so the value stays one C string. */
static char *path_decode(const char *s, size_t len)
{
    char *out = malloc(len + 1), *o = out;
    if (!out)
        abort();
    for (size_t i = 0; i < len; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < len && (hi = hexval((unsigned char)s[i + 1])) >= 0 &&
            (lo = hexval((unsigned char)s[i + 2])) >= 0 && (hi || lo)) {
            *o++ = (char)(hi * 16 + lo);
            i += 2;
        } else {
            *o++ = s[i];
        }
    }
    *o = 0;
    return out;
}

static const char *find_header(const keel_request *req, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < req->nheaders; i++)
        if (req->headers[i].name_len == n && strncasecmp(req->headers[i].name, name, n) == 0)
            return req->headers[i].value ? req->headers[i].value : "";
    return NULL;
}

/* HTTP_<NAME> for each request header, values of repeated headers joined
 * with ", ". Headers whose names hold anything but letters, digits and '-'
 * are left out (so "X_Foo" cannot pose as "X-Foo"), as are Content-Type and
 * Content-Length (their own variables) and Proxy (httpoxy). */
static void add_http_vars(envlist *e, const keel_request *req)
{
    int first = e->n;
    for (size_t i = 0; i < req->nheaders; i++) {
        const keel_header *hd = &req->headers[i];
        if (!hd->name_len || hd->name_len > 256)
            continue;
        char key[5 + 257];
        memcpy(key, "HTTP_", 5);
        bool ok = true;
        for (size_t j = 0; j < hd->name_len && ok; j++) {
            unsigned char ch = (unsigned char)hd->name[j];
            if (ch == '-')
                key[5 + j] = '_';
            else if (isalnum(ch))
                key[5 + j] = (char)toupper(ch);
            else
                ok = false;
        }
        key[5 + hd->name_len] = 0;
        if (!ok || !strcmp(key, "HTTP_CONTENT_TYPE") || !strcmp(key, "HTTP_CONTENT_LENGTH") ||
            !strcmp(key, "HTTP_PROXY"))
            continue;
        size_t klen = 5 + hd->name_len;
        int found = -1;
        for (int k = first; k < e->n && found < 0; k++)
            if (strncmp(e->v[k], key, klen) == 0 && e->v[k][klen] == '=')
                found = k;
        if (found >= 0) {
            char *s = NULL;
            if (asprintf(&s, "%s, %.*s", e->v[found], (int)hd->value_len, hd->value) < 0)
                abort();
            free(e->v[found]);
            e->v[found] = s;
        } else {
            env_add(e, key, hd->value, hd->value_len);
        }
    }
}

static void build_env(envlist *e, const host_request *rq, const host_component *comp,
                      const keel_route *route)
{
    const keel_request *req = rq->req;
    env_add(e, "GATEWAY_INTERFACE", "CGI/1.1", 7);
    env_add(e, "SERVER_SOFTWARE", "keel/" KEEL_VERSION, strlen("keel/" KEEL_VERSION));
    env_add(e, "REQUEST_METHOD", req->method, req->method_len);
    /* SCRIPT_NAME: the route's fixed part ("/legacy" for the route "/legacy/" + "*");
     * PATH_INFO: the rest of the path, decoded. */
    size_t script_len = req->path_len;
    if (route && route->prefix) {
        script_len = strlen(route->path);
        while (script_len && route->path[script_len - 1] == '/')
            script_len--;
        if (script_len > req->path_len)
            script_len = req->path_len;
    }
    env_add(e, "SCRIPT_NAME", req->path, script_len);
    char *info = path_decode(req->path + script_len, req->path_len - script_len);
    env_add(e, "PATH_INFO", info, strlen(info));
    free(info);
    env_add(e, "QUERY_STRING", req->query ? req->query : "", req->query ? req->query_len : 0);
    char *uri = NULL;
    if (req->uri) {   /* the target as received */
        if (asprintf(&uri, "REQUEST_URI=%.*s", (int)req->uri_len, req->uri) < 0)
            abort();
    } else if (asprintf(&uri, "REQUEST_URI=%.*s%s%.*s", (int)req->path_len, req->path,
                        req->query_len ? "?" : "", (int)req->query_len,
                        req->query ? req->query : "") < 0) {
        abort();
    }
    env_add_raw(e, uri);
    const char *ct = find_header(req, "content-type");
    if (ct)
        env_add(e, "CONTENT_TYPE", ct, strlen(ct));
    if (req->body_len) {
        char n[32];
        int l = snprintf(n, sizeof n, "%zu", req->body_len);
        env_add(e, "CONTENT_LENGTH", n, (size_t)l);
    }
    const char *sn = req->server_name ? req->server_name : "localhost";
    env_add(e, "SERVER_NAME", sn, strlen(sn));
    char port[16];
    int pl = snprintf(port, sizeof port, "%d", req->server_port);
    env_add(e, "SERVER_PORT", port, (size_t)pl);
    const char *proto = req->protocol ? req->protocol : "HTTP/1.1";
    env_add(e, "SERVER_PROTOCOL", proto, strlen(proto));
    const char *ra = req->remote_addr ? req->remote_addr : "";
    env_add(e, "REMOTE_ADDR", ra, strlen(ra));
    env_add(e, "KEEL_REQUEST_ID", rq->id, strlen(rq->id));
    add_http_vars(e, req);
    /* the component's env and config; the request's variables win */
    for (int i = 0; i < comp->nenv_config; i++)
        if (!env_has(e, comp->env_config[i])) {
            char *s = strdup(comp->env_config[i]);
            if (!s)
                abort();
            env_add_raw(e, s);
        }
}

void host_wagi_handle(host_request *rq, host_component *comp, const keel_route *route,
                      keel_response *resp)
{
    const char *name = comp->cfg->name;
    const keel_request *req = rq->req;
    envlist env = { 0 };
    host_call c = { .rq = rq, .comp = comp, .depth = 0, .cgi_stdout = -1 };
    uint64_t t0 = keel_rt_now_ns();
    host_result r;
    memset(&r, 0, sizeof r);
    char *out = NULL;
    int in = memfd_create("keel-wagi-stdin", MFD_CLOEXEC);
    int so = host_capped_memfd("keel-wagi-stdout", KEEL_HOST_MAX_BODY_BYTES);
    int se = host_capped_memfd("keel-wagi-stderr", KEEL_HOST_MAX_GUEST_OUTPUT_BYTES);
    if (in < 0 || so < 0 || se < 0) {
        keel_log(KEEL_LOG_ERROR, name, "request %s: cannot create stdio memfds: %m", rq->id);
        host_error_response(resp, rq, 500);
        goto out;
    }
    for (size_t off = 0; off < req->body_len;) {
        ssize_t w = pwrite(in, req->body + off, req->body_len - off, (off_t)off);
        if (w <= 0) {
            keel_log(KEEL_LOG_ERROR, name, "request %s: cannot fill stdin: %m", rq->id);
            host_error_response(resp, rq, 500);
            goto out;
        }
        off += (size_t)w;
    }
    build_env(&env, rq, comp, route);
    host_stdio io = { in, so, se };
    c.cgi_stdout = so;
    keel_rt_limits lim = { .deadline_ns = rq->deadline_ns };
    int exit_code = 0;
    if (host_instance_acquire(&c, env.v, env.n, &io, &r) == 0) {
        uint64_t vals[1] = { 0 };
        char err[256];
        r.phase = "_start";
        if (keel_instance_call(c.inst, "_start", vals, 1, &lim, &r.o, err, sizeof err)) {
            r.end = HOST_FAILED;
            snprintf(r.why, sizeof r.why, "%s", err);
        } else if (r.o.end == KEEL_RT_TRAPPED) {
            r.end = HOST_TRAPPED;
            host_trap_text(&r.o, comp, r.why, sizeof r.why);
            host_obs_trap(rq->h, comp, r.o.trap);
        } else {
            exit_code = r.o.end == KEEL_RT_EXITED ? r.o.exit_code : 0;
        }
    }
    host_instance_release(&c);
    host_log_output(comp, rq, se, "stderr");

    if (r.end == HOST_TRAPPED || r.end == HOST_FAILED) {
        bool deadline = r.end == HOST_TRAPPED && r.o.trap == KEEL_TRAP_DEADLINE;
        if (deadline)
            rq->deadline_hit = true;
        keel_log(KEEL_LOG_ERROR, name, "request %s: %s in %s: %s", rq->id,
                 r.end == HOST_TRAPPED ? "trap" : "cannot run", r.phase, r.why);
        host_error_response(resp, rq, deadline ? 504 : 500);
        goto out;
    }
    size_t used = host_memfd_used(so);
    if (used > KEEL_HOST_MAX_BODY_BYTES || c.cgi_overflow) {
        keel_log(KEEL_LOG_ERROR, name, "request %s: bad CGI response: stdout exceeds %u bytes "
                 "(exit code %d)", rq->id, KEEL_HOST_MAX_BODY_BYTES, exit_code);
        host_error_response(resp, rq, 502);
        goto out;
    }
    out = host_memfd_read(so, used);
    /* headers set through keel.http_set_header come first, the CGI's after */
    resp->headers = rq->headers;
    resp->nheaders = rq->nheaders;
    rq->headers = NULL;
    rq->nheaders = 0;
    char why[256];
    if (host_cgi_parse(out, used, resp, why, sizeof why)) {
        keel_log(KEEL_LOG_ERROR, name, "request %s: bad CGI response: %s (exit code %d)",
                 rq->id, why, exit_code);
        host_error_response(resp, rq, 502);
        goto out;
    }
    if (!resp->status)
        resp->status = rq->status ? rq->status : 200;
    if (exit_code)
        keel_log(KEEL_LOG_WARN, name, "request %s: exited with code %d after a valid CGI "
                 "response", rq->id, exit_code);
out:
    host_version_record(rq->h, comp, c.version, resp->status >= 500 || resp->status == 0,
                        keel_rt_now_ns() - t0);
    free(out);
    env_free(&env);
    host_call_free(&c);
    if (in >= 0)
        close(in);
    if (so >= 0)
        close(so);
    if (se >= 0)
        close(se);
}
