/* test_host.c — the component host end to end, without HTTP: a manifest
 * built by hand points at the guests in tests/components (compiled here
 * with clang for wasm32-wasi, or taken prebuilt from $KEEL_TEST_COMPONENTS),
 * keel_host_new loads them on the fast tier, and the tests drive
 * keel_host_match and keel_host_handle directly: routing, waPC status /
 * body / header round trips, the keel host API, component calls (a
 * three-hop chain and every __host_call failure), WAGI meta-variables and
 * CGI parsing, traps, memory limits and deadlines. Log lines are captured
 * by pointing fd 2 at a file around each request. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "engine/rt.h"
#include "host/host.h"
#include "obs/log.h"

static char tmpdir[] = "/tmp/keel-test-host-XXXXXX";
static char wasmdir[256];
static keel_host *host;
static keel_manifest manifest;

static const char *const guests_reactor[] = { "hello", "caller", "trap", "raw" };
static const char *const guests_command[] = { "command", "cgi_env", "bad_cgi" };

/* ---- building the manifest by hand ---- */

#define MAXC 16
static keel_component_cfg comps[MAXC];
static keel_route routes[MAXC][8];
static char *calls[MAXC][8];
static keel_kv kvs[MAXC][2][4];   /* [0] config, [1] env */

static char *wasm_path(const char *name)
{
    static char paths[MAXC][512];
    static int n;
    char *p = paths[n++ % MAXC];
    snprintf(p, 512, "%s/%s.wasm", wasmdir, name);
    return p;
}

static keel_component_cfg *add_comp(keel_manifest *m, const char *name, const char *wasm,
                                    keel_abi abi)
{
    size_t i = m->ncomponents++;
    keel_component_cfg *c = &m->components[i];
    memset(c, 0, sizeof *c);
    c->name = (char *)name;
    c->wasm = wasm_path(wasm);
    c->abi = abi;
    c->routes = routes[i];
    c->calls = calls[i];
    c->config = kvs[i][0];
    c->env = kvs[i][1];
    c->pos = (keel_pos){ (int)i * 10 + 2, 3 };
    c->wasm_pos = (keel_pos){ (int)i * 10 + 3, 11 };
    c->limits = (keel_limits){ 0 };
    return c;
}

static void add_route(keel_component_cfg *c, const char *path, bool prefix, unsigned methods,
                      const char *op)
{
    c->routes[c->nroutes++] = (keel_route){ (char *)path, prefix, methods, (char *)op,
                                            { 1, 1 } };
}

static void add_call(keel_component_cfg *c, const char *to)
{
    c->calls[c->ncalls++] = (char *)to;
}

static void add_config(keel_component_cfg *c, const char *k, const char *v)
{
    c->config[c->nconfig++] = (keel_kv){ (char *)k, (char *)v };
}

static void add_env(keel_component_cfg *c, const char *k, const char *v)
{
    c->env[c->nenv++] = (keel_kv){ (char *)k, (char *)v };
}

static void build_manifest(void)
{
    memset(&manifest, 0, sizeof manifest);
    manifest.path = "keel.yaml";
    manifest.dir = tmpdir;
    manifest.listen = "127.0.0.1:8080";
    manifest.components = comps;
    keel_manifest *m = &manifest;

    keel_component_cfg *c = add_comp(m, "hello", "hello", KEEL_ABI_WAPC);   /* 0 */
    add_route(c, "/hello", false, KEEL_M_GET, "hello");
    add_route(c, "/echo", false, KEEL_M_POST, "echo");
    add_route(c, "/status", false, 0, "status");
    add_route(c, "/meta", false, 0, "meta");
    add_route(c, "/fail", false, 0, "fail");
    add_route(c, "/headers", false, 0, "headers");
    add_route(c, "/log", false, 0, "log");
    add_route(c, "/api/", true, 0, "echo");
    add_config(c, "greeting", "hi there");

    c = add_comp(m, "echo", "hello", KEEL_ABI_WAPC);   /* 1 */
    add_route(c, "/api/v2/", true, KEEL_M_POST, "echo");
    add_route(c, "/api/v2/exact", false, KEEL_M_GET, "hello");
    c->limits.concurrency = 2;

    c = add_comp(m, "caller", "caller", KEEL_ABI_WAPC);   /* 2 */
    add_route(c, "/call", false, KEEL_M_POST, "call");
    add_call(c, "mid");
    add_call(c, "hello");
    add_call(c, "trap");
    add_call(c, "raw");
    add_call(c, "cgi");

    c = add_comp(m, "mid", "caller", KEEL_ABI_WAPC);   /* 3 */
    add_call(c, "hello");

    c = add_comp(m, "trap", "trap", KEEL_ABI_WAPC);   /* 4 */
    add_route(c, "/trap/trap", false, 0, "trap");
    add_route(c, "/trap/spin", false, 0, "spin");
    add_route(c, "/trap/oob", false, 0, "oob");
    add_route(c, "/trap/oob_response", false, 0, "oob_response");
    add_route(c, "/trap/grow", false, 0, "grow");
    c->limits.memory = 4u << 20;

    c = add_comp(m, "raw", "raw", KEEL_ABI_WAPC);   /* 5 */
    add_route(c, "/raw/ok", false, 0, "ok");
    add_route(c, "/raw/zero", false, 0, "zero");

    c = add_comp(m, "loop", "caller", KEEL_ABI_WAPC);   /* 6 */
    add_route(c, "/deep", false, 0, "deep");
    add_call(c, "loop");
    add_config(c, "self", "loop");

    c = add_comp(m, "cmd", "command", KEEL_ABI_WAPC);   /* 7 */
    add_route(c, "/cmd", false, 0, "both");

    c = add_comp(m, "cgi", "cgi_env", KEEL_ABI_WAGI);   /* 8 */
    add_route(c, "/legacy/", true, 0, NULL);
    add_route(c, "/cgi", false, 0, NULL);
    add_env(c, "APP_ENV", "test");
    add_env(c, "SERVER_NAME", "not-this-one");   /* the request's variable wins */
    add_config(c, "greeting", "hi");

    c = add_comp(m, "badcgi", "bad_cgi", KEEL_ABI_WAGI);   /* 9 */
    add_route(c, "/bad", false, 0, NULL);

    c = add_comp(m, "tiny", "hello", KEEL_ABI_WAPC);   /* 10 */
    add_route(c, "/tiny", false, 0, "hello");
    c->limits.memory = 64u << 10;

    c = add_comp(m, "stranger", "caller", KEEL_ABI_WAPC);   /* 11: may call nobody */
    add_route(c, "/stranger", false, 0, "call");
}

/* ---- requests ---- */

typedef struct req_spec {
    const char *method, *path, *query, *body;
    keel_header headers[8];
    size_t nheaders;
    uint64_t timeout_ms;      /* 0: 5 s */
} req_spec;

typedef struct result {
    int match;                /* keel_host_match's answer */
    keel_response resp;
    char *log;
    uint64_t elapsed_ms;
} result;

static char *read_all(FILE *f)
{
    fflush(f);
    long n = ftell(f);
    char *buf = calloc(1, (size_t)n + 1);
    rewind(f);
    if (n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n)
        buf[0] = 0;
    return buf;
}

static int next_id;

static result run(const req_spec *s)
{
    /* cmocka installs its own SIGSEGV handler around each test: image
     * pages are read-only until first written, so Keel's must be in place */
    assert_int_equal(keel_rt_install_signal_handlers(), 0);
    result r;
    memset(&r, 0, sizeof r);
    keel_route_match m;
    const char *method = s->method ? s->method : "GET";
    r.match = keel_host_match(host, method, strlen(method), s->path, strlen(s->path), &m);
    if (r.match)
        return r;
    char id[32];
    snprintf(id, sizeof id, "req-%d", ++next_id);
    const char *body = s->body ? s->body : "";
    keel_request req = {
        .method = method, .method_len = strlen(method),
        .path = s->path, .path_len = strlen(s->path),
        .query = s->query ? s->query : "", .query_len = s->query ? strlen(s->query) : 0,
        .headers = s->headers, .nheaders = s->nheaders,
        .body = body, .body_len = strlen(body),
        .remote_addr = "127.0.0.1", .server_name = "localhost", .server_port = 8080,
        .protocol = "HTTP/1.1", .request_id = id,
    };
    uint64_t t0 = keel_rt_now_ns();
    req.deadline_ns = t0 + (s->timeout_ms ? s->timeout_ms : 5000) * 1000000ull;
    /* capture the log (fd 2) around the request */
    FILE *cap = tmpfile();
    fflush(stderr);
    int saved = dup(2);
    dup2(fileno(cap), 2);
    keel_host_handle(host, &m, &req, &r.resp);
    dup2(saved, 2);
    close(saved);
    r.elapsed_ms = (keel_rt_now_ns() - t0) / 1000000u;
    r.log = read_all(cap);
    fclose(cap);
    return r;
}

static void result_free(result *r)
{
    keel_response_free(&r->resp);
    free(r->log);
}

static const char *resp_header(const keel_response *resp, const char *name)
{
    for (size_t i = 0; i < resp->nheaders; i++)
        if (strcasecmp(resp->headers[i].name, name) == 0)
            return resp->headers[i].value;
    return NULL;
}

static void assert_body(const result *r, const char *want)
{
    if (r->resp.body_len != strlen(want) ||
        memcmp(r->resp.body ? r->resp.body : "", want, r->resp.body_len) != 0) {
        fprintf(stderr, "body: \"%.*s\"\nwant: \"%s\"\nlog:\n%s\n",
                r->resp.body_len > 300 ? 300 : (int)r->resp.body_len,
                r->resp.body ? r->resp.body : "", want, r->log ? r->log : "");
        fail();
    }
}

static void assert_contains(const char *hay, size_t len, const char *needle)
{
    if (!hay || !memmem(hay, len, needle, strlen(needle))) {
        fprintf(stderr, "expected \"%s\" in:\n%.*s\n", needle, (int)len, hay ? hay : "");
        fail();
    }
}

#define BODY_HAS(r, s) assert_contains((r)->resp.body, (r)->resp.body_len, (s))
#define LOG_HAS(r, s) assert_contains((r)->log, strlen((r)->log), (s))

static void assert_status(const result *r, int status)
{
    if (r->match != 0 || r->resp.status != status) {
        fprintf(stderr, "match %d, status %d (want %d), body \"%.*s\"\nlog:\n%s\n", r->match,
                r->resp.status, status, r->resp.body_len > 300 ? 300 : (int)r->resp.body_len,
                r->resp.body ? r->resp.body : "", r->log ? r->log : "");
        fail();
    }
}

/* The generic error body names the request id and nothing of the guest's. */
static void assert_generic_error(const result *r, int status)
{
    assert_status(r, status);
    char want[64];
    snprintf(want, sizeof want, "(request id req-%d)", next_id);
    BODY_HAS(r, want);
}

/* ---- setup ---- */

static int compile_guests(void)
{
    const char *pre = getenv("KEEL_TEST_COMPONENTS");
    if (pre && *pre) {
        snprintf(wasmdir, sizeof wasmdir, "%s", pre);
        return 0;
    }
    snprintf(wasmdir, sizeof wasmdir, "%s", tmpdir);
    char cmd[1024];
    for (int kind = 0; kind < 2; kind++) {
        const char *const *list = kind ? guests_command : guests_reactor;
        size_t n = kind ? sizeof guests_command / sizeof *guests_command
                        : sizeof guests_reactor / sizeof *guests_reactor;
        for (size_t i = 0; i < n; i++) {
            snprintf(cmd, sizeof cmd,
                     "clang --target=wasm32-wasi --sysroot=/usr -O2 -Wall -Werror %s "
                     "-Isdk/c tests/components/%s.c -o %s/%s.wasm",
                     kind ? "" : "-mexec-model=reactor", list[i], tmpdir, list[i]);
            if (system(cmd) != 0) {
                fprintf(stderr, "failed: %s\n", cmd);
                return -1;
            }
        }
    }
    return 0;
}

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(tmpdir) || compile_guests())
        return -1;
    build_manifest();
    keel_host_opts o = { .engine = { .tier = KEEL_TIER_FAST, .cache_dir = tmpdir } };
    char err[1024];
    if (keel_host_new(&manifest, &o, &host, err, sizeof err)) {
        fprintf(stderr, "keel_host_new: %s\n", err);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    keel_host_free(host);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static int per_test(void **state)
{
    (void)state;
    return keel_rt_install_signal_handlers();   /* cmocka replaces SIGSEGV's */
}

/* ---- routing and admission ---- */

static size_t comp_index(const char *name)
{
    for (size_t i = 0; i < manifest.ncomponents; i++)
        if (!strcmp(manifest.components[i].name, name))
            return i;
    return (size_t)-1;
}

static int match(const char *method, const char *path, size_t *comp, const char **op)
{
    keel_route_match m;
    int rc = keel_host_match(host, method, strlen(method), path, strlen(path), &m);
    if (rc == 0) {
        *comp = m.component;
        *op = m.route->operation;
    }
    return rc;
}

static void routes_exact_prefix_methods(void **state)
{
    (void)state;
    size_t c;
    const char *op;
    assert_int_equal(match("GET", "/hello", &c, &op), 0);
    assert_int_equal(c, comp_index("hello"));
    assert_int_equal(match("HEAD", "/hello", &c, &op), 0);   /* GET routes answer HEAD */
    assert_int_equal(match("POST", "/hello", &c, &op), 405);
    assert_int_equal(match("GET", "/nothing", &c, &op), 404);
    /* exact beats prefix; longest prefix wins; methods pick among them */
    assert_int_equal(match("GET", "/api/v2/exact", &c, &op), 0);
    assert_int_equal(c, comp_index("echo"));
    assert_string_equal(op, "hello");
    assert_int_equal(match("POST", "/api/v2/exact", &c, &op), 0);
    assert_int_equal(c, comp_index("echo"));
    assert_string_equal(op, "echo");
    assert_int_equal(match("POST", "/api/v2/x/y", &c, &op), 0);
    assert_int_equal(c, comp_index("echo"));
    assert_int_equal(match("DELETE", "/api/v2/x", &c, &op), 0);   /* only /api/ takes it */
    assert_int_equal(c, comp_index("hello"));
    /* "/x/" + "*" claims /x, /x/ and below, not /xy */
    assert_int_equal(match("GET", "/api", &c, &op), 0);
    assert_int_equal(c, comp_index("hello"));
    assert_int_equal(match("GET", "/api/", &c, &op), 0);
    assert_int_equal(match("GET", "/apix", &c, &op), 404);
    assert_int_equal(match("POST", "/api/v2", &c, &op), 0);
    assert_int_equal(c, comp_index("echo"));
    assert_int_equal(match("GET", "/legacy", &c, &op), 0);
    assert_int_equal(c, comp_index("cgi"));
    assert_int_equal(match("BREW", "/legacy/pot", &c, &op), 0);   /* no methods: all */
    assert_int_equal(match("BREW", "/hello", &c, &op), 405);
}

static void admission_counts_slots(void **state)
{
    (void)state;
    size_t e = comp_index("echo");
    assert_true(keel_host_admit(host, e));
    assert_true(keel_host_admit(host, e));
    assert_false(keel_host_admit(host, e));   /* concurrency 2 */
    keel_host_release(host, e);
    assert_true(keel_host_admit(host, e));
    keel_host_release(host, e);
    keel_host_release(host, e);
    assert_true(keel_host_admit(host, comp_index("hello")));   /* default 64 */
    keel_host_release(host, comp_index("hello"));
    assert_int_equal(keel_host_component_count(host), manifest.ncomponents);
    assert_string_equal(keel_host_component(host, e)->name, "echo");
    size_t n = 0;
    while (keel_host_fn_tables[n])
        n++;
    assert_int_equal(n, 4);   /* wasi, wapc, keel, keel kv_* */
}

/* ---- waPC ---- */

static void wapc_hello_and_echo(void **state)
{
    (void)state;
    result r = run(&(req_spec){ .path = "/hello" });
    assert_status(&r, 200);
    assert_body(&r, "hello from keel\n");
    assert_non_null(resp_header(&r.resp, "x-hello"));
    assert_string_equal(resp_header(&r.resp, "x-hello"), "yes");
    result_free(&r);

    r = run(&(req_spec){ .method = "POST", .path = "/echo", .body = "ping \x01 pong" });
    assert_status(&r, 200);
    assert_body(&r, "ping \x01 pong");
    result_free(&r);

    r = run(&(req_spec){ .method = "POST", .path = "/echo" });
    assert_status(&r, 200);
    assert_body(&r, "");
    result_free(&r);

    r = run(&(req_spec){ .method = "PUT", .path = "/api/anything", .body = "prefix" });
    assert_status(&r, 200);
    assert_body(&r, "prefix");
    result_free(&r);
}

static void wapc_status_and_headers(void **state)
{
    (void)state;
    result r = run(&(req_spec){ .path = "/status" });
    assert_status(&r, 201);
    assert_body(&r, "created\n");
    assert_string_equal(resp_header(&r.resp, "content-type"), "text/plain");
    result_free(&r);

    r = run(&(req_spec){ .path = "/headers" });
    assert_status(&r, 200);
    assert_body(&r, "bad_name=-1 bad_value=-1 reserved=-1 empty=-1 ok=0");
    assert_string_equal(resp_header(&r.resp, "x-ok"), "fine");
    assert_null(resp_header(&r.resp, "x-v"));
    assert_null(resp_header(&r.resp, "content-length"));
    result_free(&r);
}

static void wapc_request_metadata_and_config(void **state)
{
    (void)state;
    result r = run(&(req_spec){ .path = "/meta", .query = "x=1",
                                .headers = { { "x-test", 6, "val", 3 } }, .nheaders = 1 });
    assert_status(&r, 200);
    assert_body(&r, "method=GET(3) uri=/meta?x=1(9) x-test=val(3) missing=-1 "
                    "config=hi there(8) nocfg=-1 short=9");
    result_free(&r);
}

static void wapc_guest_error_is_500_and_logged(void **state)
{
    (void)state;
    result r = run(&(req_spec){ .path = "/fail" });
    assert_generic_error(&r, 500);
    assert_null(memmem(r.resp.body, r.resp.body_len, "4711", 4));   /* not to the client */
    LOG_HAS(&r, "secret failure detail 4711");
    LOG_HAS(&r, "[hello]");
    result_free(&r);

    r = run(&(req_spec){ .path = "/raw/zero" });
    assert_generic_error(&r, 500);
    LOG_HAS(&r, "returned 0 without calling __guest_error");
    result_free(&r);

    r = run(&(req_spec){ .path = "/raw/ok" });
    assert_status(&r, 200);
    assert_body(&r, "raw ok");
    result_free(&r);
}

static void wapc_logs_are_tagged(void **state)
{
    (void)state;
    result r = run(&(req_spec){ .path = "/log" });
    assert_status(&r, 200);
    LOG_HAS(&r, "[hello] request req-");
    LOG_HAS(&r, "console line from hello");
    LOG_HAS(&r, "warn");
    LOG_HAS(&r, "warn line 42 from hello");
    LOG_HAS(&r, "stdout line from hello");
    result_free(&r);
}

static void wapc_command_runs_start_then_init(void **state)
{
    (void)state;
    result r = run(&(req_spec){ .path = "/cmd" });
    assert_status(&r, 200);
    assert_body(&r, "main=1 init=1");
    result_free(&r);
}

/* ---- component calls ---- */

static result call(const char *payload, uint64_t timeout_ms)
{
    return run(&(req_spec){ .method = "POST", .path = "/call", .body = payload,
                            .timeout_ms = timeout_ms });
}

static void calls_three_hops(void **state)
{
    (void)state;
    /* caller -> mid -> hello.echo */
    result r = call("mid/call/hello/echo/three hops", 0);
    assert_status(&r, 200);
    assert_body(&r, "three hops");
    result_free(&r);
}

static void calls_nested_http_is_absent(void **state)
{
    (void)state;
    result r = call("mid/nested/x", 0);
    assert_status(&r, 200);   /* the callee's 418 is ignored */
    assert_body(&r, "method=-1 uri=-1 header=-1 set_header=-1");
    assert_null(resp_header(&r.resp, "x-nested"));
    result_free(&r);
}

static void calls_failure_modes(void **state)
{
    (void)state;
    result r = call("cmd/both/x", 0);   /* cmd exists but is not in caller's calls */
    assert_status(&r, 200);
    BODY_HAS(&r, "error: component caller may not call cmd");
    result_free(&r);

    r = call("nosuch/op/x", 0);
    assert_status(&r, 200);
    BODY_HAS(&r, "error: no component named \"nosuch\"");
    result_free(&r);

    r = call("trap/trap/x", 0);
    assert_status(&r, 200);
    BODY_HAS(&r, "error: component trap trapped: unreachable");
    LOG_HAS(&r, "__host_call failed");
    result_free(&r);

    r = call("raw/zero/x", 0);
    assert_status(&r, 200);
    BODY_HAS(&r, "error: component raw: operation \"zero\" failed");
    result_free(&r);

    r = call("hello/nosuchop/x", 0);
    assert_status(&r, 200);
    BODY_HAS(&r, "unknown operation \"nosuchop\"");
    result_free(&r);

    r = call("cgi/x/y", 0);
    assert_status(&r, 200);
    BODY_HAS(&r, "error: component cgi is a wagi component");
    result_free(&r);

    r = run(&(req_spec){ .path = "/stranger", .body = "hello/echo/x" });
    assert_status(&r, 200);
    BODY_HAS(&r, "error: component stranger may not call hello");
    result_free(&r);
}

static void calls_depth_limit(void **state)
{
    (void)state;
    result r = run(&(req_spec){ .path = "/deep" });
    assert_status(&r, 200);
    BODY_HAS(&r, "error: call depth limit of 16 nested calls exceeded calling loop");
    result_free(&r);
}

static void calls_deadline_is_504(void **state)
{
    (void)state;
    result r = call("trap/spin/x", 300);
    assert_generic_error(&r, 504);
    LOG_HAS(&r, "component trap: deadline exceeded");
    assert_true(r.elapsed_ms < 2000);
    result_free(&r);
}

/* ---- traps and limits ---- */

static void trap_is_500_and_logged(void **state)
{
    (void)state;
    result r = run(&(req_spec){ .path = "/trap/trap" });
    assert_generic_error(&r, 500);
    LOG_HAS(&r, "[trap]");
    LOG_HAS(&r, "unreachable");
    LOG_HAS(&r, "in function");
    result_free(&r);
}

static void oob_pointer_traps_guest(void **state)
{
    (void)state;
    result r = run(&(req_spec){ .path = "/trap/oob" });
    assert_generic_error(&r, 500);
    LOG_HAS(&r, "out of bounds");
    result_free(&r);

    r = run(&(req_spec){ .path = "/trap/oob_response" });
    assert_generic_error(&r, 500);
    LOG_HAS(&r, "out of bounds");
    assert_null(memmem(r.resp.body, r.resp.body_len, "not reached", 11));
    result_free(&r);
}

static void deadline_is_504(void **state)
{
    (void)state;
    result r = run(&(req_spec){ .path = "/trap/spin", .timeout_ms = 200 });
    assert_generic_error(&r, 504);
    LOG_HAS(&r, "deadline exceeded");
    assert_true(r.elapsed_ms >= 150 && r.elapsed_ms < 2000);
    result_free(&r);
}

static void memory_limits_are_500(void **state)
{
    (void)state;
    result r = run(&(req_spec){ .path = "/trap/grow" });
    assert_generic_error(&r, 500);
    LOG_HAS(&r, "memory limit");
    result_free(&r);

    r = run(&(req_spec){ .path = "/tiny" });   /* 64 KiB: too small to instantiate */
    assert_generic_error(&r, 500);
    LOG_HAS(&r, "memory limit");
    result_free(&r);
}

/* ---- WAGI ---- */

static void wagi_meta_variables(void **state)
{
    (void)state;
    result r = run(&(req_spec){
        .method = "POST", .path = "/legacy/x/y%20z", .query = "a=1&b=2", .body = "hello body",
        .headers = { { "X-Test", 6, "abc", 3 }, { "User-Agent", 10, "t/1", 3 },
                     { "X-Multi", 7, "1", 1 }, { "x-multi", 7, "2", 1 },
                     { "X_Under_Score", 13, "no", 2 }, { "Proxy", 5, "evil", 4 },
                     { "Content-Type", 12, "text/plain", 10 } },
        .nheaders = 7 });
    assert_status(&r, 200);
    assert_string_equal(resp_header(&r.resp, "x-cgi"), "yes");
    assert_string_equal(resp_header(&r.resp, "content-type"), "text/plain");
    static const char *const want[] = {
        "REQUEST_METHOD=POST\n", "SCRIPT_NAME=/legacy\n", "PATH_INFO=/x/y z\n",
        "QUERY_STRING=a=1&b=2\n", "CONTENT_TYPE=text/plain\n", "CONTENT_LENGTH=10\n",
        "SERVER_NAME=localhost\n", "SERVER_PORT=8080\n", "SERVER_PROTOCOL=HTTP/1.1\n",
        "REMOTE_ADDR=127.0.0.1\n", "HTTP_X_TEST=abc\n", "HTTP_USER_AGENT=t/1\n",
        "HTTP_X_MULTI=1, 2\n", "HTTP_X_UNDER_SCORE=(unset)\n", "HTTP_PROXY=(unset)\n",
        "GATEWAY_INTERFACE=CGI/1.1\n", "APP_ENV=test\n", "greeting=hi\n",
        "KEEL_REQUEST_ID=req-", "BODY=hello body\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        BODY_HAS(&r, want[i]);
    LOG_HAS(&r, "[cgi] request req-");
    LOG_HAS(&r, "stderr: cgi_env served a=1&b=2");
    result_free(&r);

    r = run(&(req_spec){ .path = "/cgi" });   /* exact route: whole path, no PATH_INFO */
    assert_status(&r, 200);
    BODY_HAS(&r, "SCRIPT_NAME=/cgi\n");
    BODY_HAS(&r, "PATH_INFO=\n");
    BODY_HAS(&r, "CONTENT_LENGTH=(unset)\n");
    BODY_HAS(&r, "QUERY_STRING=\n");
    result_free(&r);

    r = run(&(req_spec){ .path = "/legacy" });
    assert_status(&r, 200);
    BODY_HAS(&r, "SCRIPT_NAME=/legacy\n");
    BODY_HAS(&r, "PATH_INFO=\n");
    result_free(&r);
}

static void wagi_status_and_location(void **state)
{
    (void)state;
    result r = run(&(req_spec){ .path = "/cgi", .query = "status" });
    assert_status(&r, 404);
    assert_body(&r, "nope\n");
    result_free(&r);

    r = run(&(req_spec){ .path = "/cgi", .query = "redirect" });
    assert_status(&r, 302);
    assert_string_equal(resp_header(&r.resp, "location"), "/elsewhere");
    result_free(&r);
}

static void wagi_bad_responses_are_502(void **state)
{
    (void)state;
    static const struct { const char *q, *log; } cases[] = {
        { "nohdr", "bad CGI header line" },
        { "nonl", "no blank line" },
        { "badstatus", "bad Status header" },
        { "exit", "exit code 3" },
        { "big", "stdout exceeds" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        result r = run(&(req_spec){ .path = "/bad", .query = cases[i].q });
        assert_generic_error(&r, 502);
        LOG_HAS(&r, "[badcgi]");
        LOG_HAS(&r, "bad CGI response");
        LOG_HAS(&r, cases[i].log);
        result_free(&r);
    }
    result r = run(&(req_spec){ .path = "/bad", .query = "exit" });
    LOG_HAS(&r, "stderr: giving up");
    result_free(&r);

    r = run(&(req_spec){ .path = "/bad", .query = "exit_valid" });   /* output wins */
    assert_status(&r, 200);
    assert_body(&r, "partial\n");
    result_free(&r);

    r = run(&(req_spec){ .path = "/bad", .query = "ok" });
    assert_status(&r, 200);
    assert_body(&r, "fine\n");
    result_free(&r);
}

static void wagi_trap_and_deadline(void **state)
{
    (void)state;
    result r = run(&(req_spec){ .path = "/bad", .query = "trap" });
    assert_generic_error(&r, 500);
    LOG_HAS(&r, "unreachable");
    result_free(&r);

    r = run(&(req_spec){ .path = "/bad", .query = "spin", .timeout_ms = 200 });
    assert_generic_error(&r, 504);
    LOG_HAS(&r, "deadline exceeded");
    result_free(&r);
}

/* ---- load errors ---- */

static void load_errors_name_component_and_line(void **state)
{
    (void)state;
    keel_component_cfg one[1];
    keel_manifest m = { .path = "keel.yaml", .components = one, .ncomponents = 1 };
    memset(one, 0, sizeof one);
    one[0].name = "broken";
    one[0].wasm = "/nonexistent/broken.wasm";
    one[0].wasm_pos = (keel_pos){ 7, 11 };
    keel_host_opts o = { .engine = { .tier = KEEL_TIER_FAST, .cache_dir = tmpdir } };
    keel_host *h = NULL;
    char err[1024];
    assert_int_not_equal(keel_host_new(&m, &o, &h, err, sizeof err), 0);
    assert_null(h);
    assert_non_null(strstr(err, "keel.yaml:7:11: component broken:"));

    one[0].wasm = wasm_path("cgi_env");   /* a command is not a waPC guest */
    assert_int_not_equal(keel_host_new(&m, &o, &h, err, sizeof err), 0);
    assert_non_null(strstr(err, "__guest_call"));

    one[0].wasm = wasm_path("hello");     /* a reactor is not a WAGI command */
    one[0].abi = KEEL_ABI_WAGI;
    assert_int_not_equal(keel_host_new(&m, &o, &h, err, sizeof err), 0);
    assert_non_null(strstr(err, "_start"));

    one[0].abi = KEEL_ABI_WAPC;
    char *bad_calls[] = { "ghost" };
    one[0].calls = bad_calls;
    one[0].ncalls = 1;
    assert_int_not_equal(keel_host_new(&m, &o, &h, err, sizeof err), 0);
    assert_non_null(strstr(err, "unknown component ghost"));
}

/* ---- threads ---- */

#define THREADS 8
#define PER_THREAD 25

static void *worker(void *arg)
{
    intptr_t bad = 0;
    (void)arg;
    for (int i = 0; i < PER_THREAD; i++) {
        keel_route_match m;
        char body[32];
        int n = snprintf(body, sizeof body, "t%p-%d", arg, i);
        const char *path = (i % 2) ? "/echo" : "/call";
        char payload[64];
        if (i % 2 == 0)
            snprintf(payload, sizeof payload, "mid/call/hello/echo/%s", body);
        const char *send = (i % 2) ? body : payload;
        if (keel_host_match(host, "POST", 4, path, strlen(path), &m)) {
            bad++;
            continue;
        }
        keel_request req = {
            .method = "POST", .method_len = 4, .path = path, .path_len = strlen(path),
            .query = "", .body = send, .body_len = strlen(send), .request_id = "thr",
            .deadline_ns = keel_rt_now_ns() + 10000000000ull,
        };
        keel_response resp;
        keel_host_handle(host, &m, &req, &resp);
        if (resp.status != 200 || resp.body_len != (size_t)n || memcmp(resp.body, body, n))
            bad++;
        keel_response_free(&resp);
    }
    return (void *)bad;
}

static void threads_run_requests_concurrently(void **state)
{
    (void)state;
    assert_int_equal(keel_rt_install_signal_handlers(), 0);   /* see run() */
    pthread_t t[THREADS];
    for (intptr_t i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, worker, (void *)(i + 1)), 0);
    intptr_t bad = 0;
    for (int i = 0; i < THREADS; i++) {
        void *rv;
        pthread_join(t[i], &rv);
        bad += (intptr_t)rv;
    }
    assert_int_equal(bad, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(routes_exact_prefix_methods, per_test),
        cmocka_unit_test_setup(admission_counts_slots, per_test),
        cmocka_unit_test_setup(wapc_hello_and_echo, per_test),
        cmocka_unit_test_setup(wapc_status_and_headers, per_test),
        cmocka_unit_test_setup(wapc_request_metadata_and_config, per_test),
        cmocka_unit_test_setup(wapc_guest_error_is_500_and_logged, per_test),
        cmocka_unit_test_setup(wapc_logs_are_tagged, per_test),
        cmocka_unit_test_setup(wapc_command_runs_start_then_init, per_test),
        cmocka_unit_test_setup(calls_three_hops, per_test),
        cmocka_unit_test_setup(calls_nested_http_is_absent, per_test),
        cmocka_unit_test_setup(calls_failure_modes, per_test),
        cmocka_unit_test_setup(calls_depth_limit, per_test),
        cmocka_unit_test_setup(calls_deadline_is_504, per_test),
        cmocka_unit_test_setup(trap_is_500_and_logged, per_test),
        cmocka_unit_test_setup(oob_pointer_traps_guest, per_test),
        cmocka_unit_test_setup(deadline_is_504, per_test),
        cmocka_unit_test_setup(memory_limits_are_500, per_test),
        cmocka_unit_test_setup(wagi_meta_variables, per_test),
        cmocka_unit_test_setup(wagi_status_and_location, per_test),
        cmocka_unit_test_setup(wagi_bad_responses_are_502, per_test),
        cmocka_unit_test_setup(wagi_trap_and_deadline, per_test),
        cmocka_unit_test_setup(load_errors_name_component_and_line, per_test),
        cmocka_unit_test_setup(threads_run_requests_concurrently, per_test),
    };
    keel_log_fmt = KEEL_LOG_TEXT;   /* the assertions read "[component] msg" */
    return cmocka_run_group_tests(tests, setup, teardown);
}
