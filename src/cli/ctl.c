/* ctl.c — `keel ctl`: the admin API for humans and CI.
 *
 *   keel ctl [--admin URL] [--token-file F] deploy NAME FILE.wasm [--canary N] [--tier fast|opt]
 *   keel ctl ... canary NAME SHA256 WEIGHT
 *   keel ctl ... promote NAME
 *   keel ctl ... rollback NAME [--why TEXT]
 *   keel ctl ... status [--json]
 *   keel ctl ... reload
 *
 * URL defaults to $KEEL_ADMIN, else http://127.0.0.1:9090; the token file
 * to $KEEL_TOKEN_FILE (its first token: a bare token, or the token of the
 * first "LABEL TOKEN" line). Speaks plain HTTP/1.1 over TCP (the admin
 * listener is meant for loopback or a private network). Exit status: 0 on
 * a 2xx answer, 1 otherwise (the server's error printed), 2 on a usage
 * error. */
#include <errno.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "obs/prom.h"

#define CTL_TIMEOUT_S 600            /* a deploy waits for the optimized compile */
#define CTL_MAX_FILE (256u << 20)
#define CTL_MAX_RESPONSE (16u << 20)

typedef struct ctl_ctx {
    char host[256];
    char port[16];
    char *token;                     /* NULL: none */
} ctl_ctx;

typedef struct ctl_reply {
    int status;
    char *body;                      /* malloc'd, NUL-terminated */
    size_t len;
} ctl_reply;

static int parse_admin(const char *url, ctl_ctx *c)
{
    const char *p = url;
    if (!strncmp(p, "http://", 7))
        p += 7;
    else if (strstr(p, "://"))
        return -1;
    const char *colon = strrchr(p, ':');
    const char *slash = strchr(p, '/');
    if (!colon || (slash && slash < colon))
        return -1;
    size_t hl = (size_t)(colon - p);
    size_t pl = slash ? (size_t)(slash - colon - 1) : strlen(colon + 1);
    if (!hl || hl >= sizeof c->host || !pl || pl >= sizeof c->port)
        return -1;
    memcpy(c->host, p, hl);
    c->host[hl] = '\0';
    if (c->host[0] == '[' && c->host[hl - 1] == ']') {
        memmove(c->host, c->host + 1, hl - 2);
        c->host[hl - 2] = '\0';
    }
    memcpy(c->port, colon + 1, pl);
    c->port[pl] = '\0';
    return 0;
}

/* The whole file, malloc'd; NULL with errno. */
static char *read_file(const char *path, size_t max, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size < 0 || (size_t)st.st_size > max) {
        fclose(f);
        errno = EFBIG;
        return NULL;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    if (!buf)
        abort();
    *len = fread(buf, 1, (size_t)st.st_size, f);
    fclose(f);
    buf[*len] = '\0';
    return buf;
}

/* The first token of a token file: a bare token, or the second word of the
 * first "LABEL TOKEN" line ('#' lines skipped). */
static char *first_token(const char *path)
{
    size_t len;
    char *text = read_file(path, 1 << 16, &len);
    if (!text)
        return NULL;
    char *tok = NULL;
    for (char *line = strtok(text, "\n"); line && !tok; line = strtok(NULL, "\n")) {
        while (*line == ' ' || *line == '\t')
            line++;
        if (!*line || *line == '#' || *line == '\r')
            continue;
        char *w1 = strtok(line, " \t\r"), *w2 = strtok(NULL, " \t\r");
        tok = strdup(w2 ? w2 : w1);
    }
    free(text);
    return tok;
}

/* One request; 0 with the reply, or -1 (reason on stderr). */
static int request(const ctl_ctx *c, const char *method, const char *path, const char *ctype,
                   const char *body, size_t blen, ctl_reply *r)
{
    memset(r, 0, sizeof *r);
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *ai;
    int rc = getaddrinfo(c->host, c->port, &hints, &ai);
    if (rc) {
        fprintf(stderr, "keel ctl: %s:%s: %s\n", c->host, c->port, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    if (fd < 0) {
        fprintf(stderr, "keel ctl: cannot connect to the admin listener at %s:%s: %s\n",
                c->host, c->port, strerror(errno));
        return -1;
    }
    struct timeval tv = { .tv_sec = CTL_TIMEOUT_S };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    keel_buf head = { 0 };
    keel_buf_printf(&head, "%s %s HTTP/1.1\r\nHost: %s:%s\r\nConnection: close\r\n"
                    "Content-Length: %zu\r\n", method, path, c->host, c->port, blen);
    if (ctype)
        keel_buf_printf(&head, "Content-Type: %s\r\n", ctype);
    if (c->token)
        keel_buf_printf(&head, "Authorization: Bearer %s\r\n", c->token);
    keel_buf_puts(&head, "\r\n");
    int ok = 1;
    for (int part = 0; part < 2 && ok; part++) {
        const char *p = part ? body : head.data;
        size_t n = part ? blen : head.len;
        while (n && ok) {
            ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
            if (w <= 0)
                ok = 0;
            else
                p += w, n -= (size_t)w;
        }
    }
    keel_buf_free(&head);
    keel_buf in = { 0 };
    char chunk[65536];
    ssize_t got;
    while (in.len < CTL_MAX_RESPONSE && (got = recv(fd, chunk, sizeof chunk, 0)) > 0)
        keel_buf_put(&in, chunk, (size_t)got);
    close(fd);
    const char *sep = in.data ? strstr(in.data, "\r\n\r\n") : NULL;
    if (!sep || sscanf(in.data, "HTTP/1.%*d %d", &r->status) != 1) {
        fprintf(stderr, "keel ctl: no HTTP answer from %s:%s%s\n", c->host, c->port,
                ok ? "" : " (the request could not be sent)");
        keel_buf_free(&in);
        return -1;
    }
    size_t off = (size_t)(sep + 4 - in.data);
    r->len = in.len - off;
    r->body = malloc(r->len + 1);
    if (!r->body)
        abort();
    memcpy(r->body, in.data + off, r->len);
    r->body[r->len] = '\0';
    keel_buf_free(&in);
    return 0;
}

/* Prints a failed reply's error and returns the exit status for r. */
static int finish(const ctl_reply *r, const char *what)
{
    if (r->status >= 200 && r->status < 300)
        return KEEL_EXIT_OK;
    const char *e = strstr(r->body, "\"error\":\"");
    if (e) {
        e += 9;
        const char *end = e;
        while (*end && !(*end == '"' && end[-1] != '\\'))
            end++;
        fprintf(stderr, "keel ctl: %s: %d: %.*s\n", what, r->status, (int)(end - e), e);
    } else {
        fprintf(stderr, "keel ctl: %s: %d: %s", what, r->status, r->body);
    }
    return KEEL_EXIT_FAIL;
}

/* The string value of "key":"..." at or after p, copied into out. */
static const char *str_field(const char *p, const char *key, char *out, size_t len)
{
    char pat[48];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    const char *s = strstr(p, pat);
    out[0] = '\0';
    if (!s)
        return NULL;
    s += strlen(pat);
    size_t n = 0;
    while (s[n] && s[n] != '"' && n + 1 < len)
        n++;
    memcpy(out, s, n);
    out[n] = '\0';
    return s + n;
}

static double num_field(const char *p, const char *key)
{
    char pat[48];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *s = strstr(p, pat);
    return s ? strtod(s + strlen(pat), NULL) : 0;
}

/* A table of GET /admin/components (whose field order Keel fixes). */
static void print_status(const char *json)
{
    printf("%-16s %-7s %-12s %-7s %6s %-5s %10s %8s %9s\n", "COMPONENT", "STATE", "VERSION",
           "ROLE", "WEIGHT", "TIER", "REQUESTS", "ERR%", "P99(ms)");
    const char *p = json;
    char name[80], state[16], sha[80], role[16], tier[8];
    while ((p = str_field(p, "name", name, sizeof name))) {
        const char *next = strstr(p, "{\"name\":");
        str_field(p, "state", state, sizeof state);
        const char *v = p;
        while ((v = strstr(v, "{\"sha256\":")) && (!next || v < next)) {
            str_field(v, "sha256", sha, sizeof sha);
            str_field(v, "role", role, sizeof role);
            str_field(v, "tier", tier, sizeof tier);
            const char *w = strstr(v, "\"window\":");
            printf("%-16s %-7s %-12.12s %-7s %6.0f %-5s %10.0f %8.2f %9.3f\n", name, state, sha,
                   role, num_field(v, "weight"), tier, num_field(v, "requests"),
                   w ? 100 * num_field(w, "error_ratio") : 0, w ? num_field(w, "p99_ms") : 0);
            v++;
        }
    }
    char digest[80];
    str_field(json, "deployment_digest", digest, sizeof digest);
    printf("deployment digest %s\n", digest);
}

static int cmd_deploy(const ctl_ctx *c, const char *name, const char *file, const char *tier,
                      int canary)
{
    size_t len = 0;
    char *wasm = read_file(file, CTL_MAX_FILE, &len);
    if (!wasm) {
        fprintf(stderr, "keel ctl: %s: %s\n", file, strerror(errno));
        return KEEL_EXIT_FAIL;
    }
    char path[256];
    snprintf(path, sizeof path, "/admin/components/%s?tier=%s%s", name, tier,
             canary >= 0 ? "&stage=canary" : "");
    ctl_reply r;
    int rc = request(c, "PUT", path, "application/wasm", wasm, len, &r);
    free(wasm);
    if (rc)
        return KEEL_EXIT_FAIL;
    int st = finish(&r, "deploy");
    char sha[80] = "", prev[80] = "";
    str_field(r.body, "sha256", sha, sizeof sha);
    str_field(r.body, "previous", prev, sizeof prev);
    free(r.body);
    if (st)
        return st;
    if (canary < 0) {
        printf("%s: deployed %.12s", name, sha);
        if (prev[0])
            printf(" (was %.12s)", prev);
        printf("\n");
        return KEEL_EXIT_OK;
    }
    char body[160];
    snprintf(body, sizeof body, "{\"wasm_sha256\":\"%s\",\"weight\":%d}", sha, canary);
    snprintf(path, sizeof path, "/admin/components/%s/canary", name);
    if (request(c, "POST", path, "application/json", body, strlen(body), &r))
        return KEEL_EXIT_FAIL;
    st = finish(&r, "canary");
    free(r.body);
    if (!st)
        printf("%s: canary %.12s serves %d%%\n", name, sha, canary);
    return st;
}

static int simple_post(const ctl_ctx *c, const char *path, const char *body, const char *what)
{
    ctl_reply r;
    if (request(c, "POST", path, body ? "application/json" : NULL, body ? body : "",
                body ? strlen(body) : 0, &r))
        return KEEL_EXIT_FAIL;
    int st = finish(&r, what);
    if (!st && strstr(r.body, "\"components\":["))
        print_status(r.body);
    else if (!st)
        fputs(r.body, stdout);
    free(r.body);
    return st;
}

int keel_cmd_ctl(int argc, char **argv)
{
    const char *admin = getenv("KEEL_ADMIN"), *token_file = getenv("KEEL_TOKEN_FILE");
    if (admin && !*admin)
        admin = NULL;
    if (token_file && !*token_file)
        token_file = NULL;
    const char *tier = "opt", *why = NULL;
    int canary = -1;
    bool json = false;
    const char *pos[4];
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int r;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(keel_usage("ctl"), stdout);
            return KEEL_EXIT_OK;
        } else if ((r = keel_opt_value(argc, argv, &i, "--admin", &v)) != 0) {
            if (r < 0)
                return keel_usage_error("ctl", "--admin needs a URL");
            admin = v;
        } else if ((r = keel_opt_value(argc, argv, &i, "--token-file", &v)) != 0) {
            if (r < 0)
                return keel_usage_error("ctl", "--token-file needs a file");
            token_file = v;
        } else if ((r = keel_opt_value(argc, argv, &i, "--tier", &v)) != 0) {
            if (r < 0 || (strcmp(v, "fast") && strcmp(v, "opt")))
                return keel_usage_error("ctl", "--tier needs fast or opt");
            tier = v;
        } else if ((r = keel_opt_value(argc, argv, &i, "--canary", &v)) != 0) {
            char *end;
            long w = r > 0 ? strtol(v, &end, 10) : -1;
            if (r < 0 || *end || w < 0 || w > 100)
                return keel_usage_error("ctl", "--canary needs a percent 0..100");
            canary = (int)w;
        } else if ((r = keel_opt_value(argc, argv, &i, "--why", &v)) != 0) {
            if (r < 0)
                return keel_usage_error("ctl", "--why needs a text");
            why = v;
        } else if (!strcmp(a, "--json")) {
            json = true;
        } else if (a[0] == '-' && a[1]) {
            return keel_usage_error("ctl", "unknown option %s", a);
        } else if (npos < 4) {
            pos[npos++] = a;
        } else {
            return keel_usage_error("ctl", "unexpected argument %s", a);
        }
    }
    if (!npos)
        return keel_usage_error("ctl", "no subcommand (deploy, canary, promote, rollback, "
                                "status, reload)");
    ctl_ctx c = { .token = NULL };
    if (parse_admin(admin ? admin : "http://127.0.0.1:9090", &c))
        return keel_usage_error("ctl", "--admin must be http://HOST:PORT, got %s", admin);
    if (token_file && !(c.token = first_token(token_file))) {
        fprintf(stderr, "keel ctl: cannot read a token from %s: %s\n", token_file,
                errno ? strerror(errno) : "empty");
        return KEEL_EXIT_FAIL;
    }
    const char *sub = pos[0];
    char path[256], body[600];
    int st;
    if (!strcmp(sub, "deploy") && npos == 3) {
        st = cmd_deploy(&c, pos[1], pos[2], tier, canary);
    } else if (!strcmp(sub, "canary") && npos == 4) {
        char *end;
        long w = strtol(pos[3], &end, 10);
        if (*end || w < 0 || w > 100)
            return keel_usage_error("ctl", "canary WEIGHT must be a percent 0..100");
        snprintf(path, sizeof path, "/admin/components/%s/canary", pos[1]);
        snprintf(body, sizeof body, "{\"wasm_sha256\":\"%.64s\",\"weight\":%ld}", pos[2], w);
        st = simple_post(&c, path, body, "canary");
    } else if ((!strcmp(sub, "promote") || !strcmp(sub, "rollback")) && npos == 2) {
        snprintf(path, sizeof path, "/admin/components/%s/%s", pos[1], sub);
        keel_buf b = { 0 };
        if (why) {
            keel_buf_puts(&b, "{\"why\":\"");
            keel_buf_json(&b, why);
            keel_buf_puts(&b, "\"}");
        }
        st = simple_post(&c, path, why ? b.data : NULL, sub);
        keel_buf_free(&b);
    } else if (!strcmp(sub, "reload") && npos == 1) {
        st = simple_post(&c, "/admin/reload", NULL, "reload");
    } else if (!strcmp(sub, "status") && npos == 1) {
        ctl_reply r;
        st = KEEL_EXIT_FAIL;
        if (request(&c, "GET", "/admin/components", NULL, "", 0, &r) == 0) {
            st = finish(&r, "status");
            if (!st) {
                if (json)
                    fputs(r.body, stdout);
                else
                    print_status(r.body);
            }
            free(r.body);
        }
    } else {
        free(c.token);
        return keel_usage_error("ctl", "unknown subcommand or wrong arguments: %s", sub);
    }
    free(c.token);
    return st;
}
