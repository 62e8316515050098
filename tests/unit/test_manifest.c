/* test_manifest.c — keel.yaml loading and validation (src/config/manifest.c,
 * src/config/manifest_component.c, src/config/yaml.c): a full manifest read field by field, the defaults,
 * and one case per error class with its exact "PATH:LINE:COL: message".
 *
 * Each test runs in a scratch folder (the working directory) holding
 *     build/a.wasm, build/b.wasm   files (content is not looked at)
 *     static/                      a folder for files: mounts
 * and writes its manifest to ./keel.yaml, so messages start "keel.yaml:". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#define _XOPEN_SOURCE_EXTENDED 1
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/errors.h"
#include "config/manifest.h"

static char scratch[PATH_MAX];
static char home[PATH_MAX];
static char err[2048];

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    snprintf(scratch, sizeof scratch, "%s/keel-manifest-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!getcwd(home, sizeof home) || !mkdtemp(scratch) || chdir(scratch) != 0)
        return -1;
    if (mkdir("build", 0755) || mkdir("static", 0755))
        return -1;
    write_file("build/a.wasm", "\0asm");
    write_file("build/b.wasm", "\0asm");
    return 0;
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st, (void)flag, (void)f;
    return remove(p);
}

static int teardown(void **state)
{
    (void)state;
    if (chdir(home) != 0)
        return -1;
    return nftw(scratch, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int load(const char *yaml, keel_manifest **m)
{
    write_file("keel.yaml", yaml);
    err[0] = '\0';
    return keel_manifest_load("keel.yaml", m, err, sizeof err);
}

/* Loading yaml fails with exactly msg. */
#define EXPECT_ERR(yaml, msg)                                   \
    do {                                                        \
        keel_manifest *m_ = (keel_manifest *)1;                 \
        assert_int_equal(load((yaml), &m_), KEEL_EINVAL);       \
        assert_null(m_);                                        \
        assert_string_equal(err, (msg));                        \
    } while (0)

/* Lines 1-3 of most cases: one valid component "a". */
#define HEAD "components:\n  a:\n    wasm: build/a.wasm\n"

/* ------------------------------------------------------------- valid */

static const char full_yaml[] =
    "listen: 0.0.0.0:9090\n"                                   /* 1 */
    "components:\n"                                            /* 2 */
    "  gateway:\n"                                             /* 3 */
    "    wasm: build/a.wasm\n"                                 /* 4 */
    "    abi: wapc\n"                                          /* 5 */
    "    routes:\n"                                            /* 6 */
    "      - path: /api/*\n"                                   /* 7 */
    "        methods: [GET, POST]\n"                           /* 8 */
    "        operation: api\n"                                 /* 9 */
    "      - path: /health\n"                                  /* 10 */
    "    calls: [catalog]\n"                                   /* 11 */
    "    config: { greeting: hello, retries: 3, on: true }\n"  /* 12 */
    "    env: { LOG_LEVEL: info }\n"                           /* 13 */
    "    files:\n"                                             /* 14 */
    "      - { host: ./static, guest: /static, mode: ro }\n"   /* 15 */
    "      - { host: build, guest: /data, mode: rw }\n"        /* 16 */
    "    limits: { memory: 32MiB, timeout: 1500ms, concurrency: 8, body: 2KiB }\n"
    "  catalog:\n"                                             /* 18 */
    "    wasm: ./build/b.wasm\n"                               /* 19 */
    "    abi: wagi\n"                                          /* 20 */
    "    routes:\n"                                            /* 21 */
    "      - path: /api/*\n"                                   /* 22 */
    "        methods: [DELETE]\n"                              /* 23 */
    "      - path: /\n";                                       /* 24 */

static void full_manifest(void **state)
{
    (void)state;
    keel_manifest *m = NULL;
    assert_int_equal(load(full_yaml, &m), 0);
    assert_non_null(m);
    char real[PATH_MAX], path[PATH_MAX + 32];
    assert_non_null(realpath(".", real));
    assert_string_equal(m->path, "keel.yaml");
    assert_string_equal(m->dir, real);
    assert_string_equal(m->listen, "0.0.0.0:9090");
    assert_int_equal(m->ncomponents, 2);

    const keel_component_cfg *g = keel_manifest_component(m, "gateway");
    assert_ptr_equal(g, &m->components[0]);
    assert_string_equal(g->name, "gateway");
    snprintf(path, sizeof path, "%s/build/a.wasm", real);
    assert_string_equal(g->wasm, path);
    assert_int_equal(g->abi, KEEL_ABI_WAPC);
    assert_int_equal(g->pos.line, 3);
    assert_int_equal(g->pos.col, 3);
    assert_int_equal(g->wasm_pos.line, 4);
    assert_int_equal(g->wasm_pos.col, 11);
    assert_int_equal(g->nroutes, 2);
    assert_string_equal(g->routes[0].path, "/api/");
    assert_true(g->routes[0].prefix);
    assert_int_equal(g->routes[0].methods, KEEL_M_GET | KEEL_M_POST);
    assert_string_equal(g->routes[0].operation, "api");
    assert_int_equal(g->routes[0].pos.line, 7);
    assert_int_equal(g->routes[0].pos.col, 15);
    assert_string_equal(g->routes[1].path, "/health");
    assert_false(g->routes[1].prefix);
    assert_int_equal(g->routes[1].methods, 0);
    assert_string_equal(g->routes[1].operation, "handle");
    assert_int_equal(g->ncalls, 1);
    assert_string_equal(g->calls[0], "catalog");
    assert_int_equal(g->nconfig, 3);
    assert_string_equal(g->config[0].key, "greeting");
    assert_string_equal(g->config[0].value, "hello");
    assert_string_equal(g->config[1].key, "retries");
    assert_string_equal(g->config[1].value, "3");
    assert_string_equal(g->config[2].key, "on");
    assert_string_equal(g->config[2].value, "true");
    assert_int_equal(g->nenv, 1);
    assert_string_equal(g->env[0].key, "LOG_LEVEL");
    assert_string_equal(g->env[0].value, "info");
    assert_int_equal(g->nfiles, 2);
    snprintf(path, sizeof path, "%s/static", real);
    assert_string_equal(g->files[0].host, path);
    assert_string_equal(g->files[0].guest, "/static");
    assert_true(g->files[0].readonly);
    snprintf(path, sizeof path, "%s/build", real);
    assert_string_equal(g->files[1].host, path);
    assert_string_equal(g->files[1].guest, "/data");
    assert_false(g->files[1].readonly);
    assert_int_equal(g->limits.memory, 32ull << 20);
    assert_int_equal(g->limits.timeout_ns, 1500000000ull);
    assert_int_equal(g->limits.concurrency, 8);
    assert_int_equal(g->limits.body, 2048);

    const keel_component_cfg *c = keel_manifest_component(m, "catalog");
    assert_ptr_equal(c, &m->components[1]);
    snprintf(path, sizeof path, "%s/build/b.wasm", real);
    assert_string_equal(c->wasm, path);
    assert_int_equal(c->abi, KEEL_ABI_WAGI);
    assert_int_equal(c->nroutes, 2);
    assert_int_equal(c->routes[0].methods, KEEL_M_DELETE);
    assert_null(c->routes[0].operation);
    assert_string_equal(c->routes[1].path, "/");
    assert_false(c->routes[1].prefix);
    assert_int_equal(c->ncalls, 0);
    assert_int_equal(c->nconfig, 0);
    assert_int_equal(c->nfiles, 0);
    assert_int_equal(c->limits.memory, KEEL_DEFAULT_MEMORY);

    assert_null(keel_manifest_component(m, "nope"));
    keel_manifest_free(m);
}

static void defaults(void **state)
{
    (void)state;
    keel_manifest *m = NULL;
    assert_int_equal(load(HEAD, &m), 0);
    assert_string_equal(m->listen, KEEL_DEFAULT_LISTEN);
    const keel_component_cfg *a = &m->components[0];
    assert_int_equal(a->abi, KEEL_ABI_WAPC);
    assert_int_equal(a->nroutes + a->ncalls + a->nconfig + a->nenv + a->nfiles, 0);
    assert_int_equal(a->limits.memory, KEEL_DEFAULT_MEMORY);
    assert_int_equal(a->limits.timeout_ns, KEEL_DEFAULT_TIMEOUT_NS);
    assert_int_equal(a->limits.concurrency, KEEL_DEFAULT_CONCURRENCY);
    assert_int_equal(a->limits.body, KEEL_DEFAULT_BODY);
    keel_manifest_free(m);

    /* Empty collections written as null, {} or []; a prefix route on "/". */
    assert_int_equal(load(HEAD "    routes:\n      - path: /*\n    calls: []\n"
                          "    config:\n    env: {}\n    files: ~\n", &m), 0);
    assert_int_equal(m->components[0].nroutes, 1);
    assert_string_equal(m->components[0].routes[0].path, "/");
    assert_true(m->components[0].routes[0].prefix);
    keel_manifest_free(m);

    /* The same path as exact and as prefix, and disjoint methods, coexist. */
    assert_int_equal(load(HEAD "    routes:\n      - path: /x/*\n      - path: /x/\n"
                          "      - { path: /y, methods: [GET] }\n"
                          "      - { path: /y, methods: [POST, PUT] }\n", &m), 0);
    keel_manifest_free(m);

    keel_manifest_free(NULL);
}

/* ------------------------------------------------------------ errors */

static void unknown_keys(void **state)
{
    (void)state;
    EXPECT_ERR("listen: 127.0.0.1:1\nadmn: {}\n" HEAD,
               "keel.yaml:2:1: unknown top-level key 'admn' (supported: listen, region, stores, "
               "admin, rollout, observability, shutdown, components)");
    EXPECT_ERR(HEAD "    wsm: x\n",
               "keel.yaml:4:5: component a: unknown key 'wsm' (supported: wasm, abi, "
               "routes, calls, config, env, files, limits, kv, residency, slo, circuit)");
    EXPECT_ERR(HEAD "    routes:\n      - path: /\n        verb: GET\n",
               "keel.yaml:6:9: component a: routes[0]: unknown key 'verb' (supported: "
               "path, methods, operation)");
    EXPECT_ERR(HEAD "    limits: { memory: 1MiB, cpu: 2 }\n",
               "keel.yaml:4:29: component a: limits: unknown key 'cpu' (supported: "
               "memory, timeout, concurrency, body)");
    EXPECT_ERR(HEAD "    files:\n      - { host: static, guest: /s, kind: ro }\n",
               "keel.yaml:5:36: component a: files[0]: unknown key 'kind' (supported: "
               "host, guest, mode)");
}

static void wrong_types(void **state)
{
    (void)state;
    EXPECT_ERR("components:\n  - a\n",
               "keel.yaml:2:3: 'components' must be a mapping, got a sequence");
    EXPECT_ERR(HEAD "    routes: { path: / }\n",
               "keel.yaml:4:13: component a: 'routes' must be a sequence, got a mapping");
    EXPECT_ERR(HEAD "    config:\n      k: [1, 2]\n",
               "keel.yaml:5:10: component a: config: value of 'k' must be a string, got "
               "a sequence");
    EXPECT_ERR(HEAD "    env: [A=1]\n",
               "keel.yaml:4:10: component a: 'env' must be a mapping, got a sequence");
    EXPECT_ERR("components:\n  a: build/a.wasm\n",
               "keel.yaml:2:6: component a: must be a mapping (wasm, abi, routes, ...), "
               "got a string");
    EXPECT_ERR("components:\n  a:\n    wasm: { path: x }\n",
               "keel.yaml:3:11: component a: 'wasm' must be a string, got a mapping");
    EXPECT_ERR("- listen\n", "keel.yaml:1:1: the manifest must be a mapping (listen, "
               "components), got a sequence");
    EXPECT_ERR(HEAD "    calls: [[b]]\n",
               "keel.yaml:4:13: component a: calls: each entry must be a component name, "
               "got a sequence");
}

static void missing_files(void **state)
{
    (void)state;
    char real[PATH_MAX], msg[PATH_MAX + 256];
    assert_non_null(realpath(".", real));
    snprintf(msg, sizeof msg, "keel.yaml:3:11: component a: wasm file 'build/none.wasm' "
             "not found (resolved to %s/build/none.wasm)", real);
    EXPECT_ERR("components:\n  a:\n    wasm: build/none.wasm\n", msg);
    snprintf(msg, sizeof msg, "keel.yaml:5:17: component a: files[0]: host folder "
             "'./nowhere' not found (resolved to %s/./nowhere)", real);
    EXPECT_ERR(HEAD "    files:\n      - { host: ./nowhere, guest: /x }\n", msg);
    snprintf(msg, sizeof msg, "keel.yaml:3:11: component a: wasm 'static' is not a "
             "regular file (resolved to %s/static)", real);
    EXPECT_ERR("components:\n  a:\n    wasm: static\n", msg);
    EXPECT_ERR("components:\n  a:\n    abi: wagi\n",
               "keel.yaml:2:3: component a: missing required key 'wasm'");
    EXPECT_ERR("listen: 127.0.0.1:80\n", "keel.yaml:1:1: missing required key 'components'");
    keel_manifest *m = (keel_manifest *)1;
    assert_int_equal(keel_manifest_load("no/such.yaml", &m, err, sizeof err), KEEL_EINVAL);
    assert_null(m);
    assert_string_equal(err, "no/such.yaml: cannot read the manifest: No such file or "
                        "directory");
}

static void route_conflicts(void **state)
{
    (void)state;
    EXPECT_ERR(HEAD "    routes:\n      - path: /api/*\n"
               "  b:\n    wasm: build/b.wasm\n    routes:\n"
               "      - path: /api/*\n        methods: [GET]\n",
               "keel.yaml:9:15: component b: route '/api/*' (GET) is already claimed by "
               "component a at line 5");
    EXPECT_ERR(HEAD "    routes:\n      - { path: /x, methods: [GET, POST] }\n"
               "      - { path: /y }\n      - { path: /x, methods: [PUT, POST] }\n",
               "keel.yaml:7:17: component a: route '/x' (POST) is already claimed by "
               "component a at line 5");
    /* The earliest repeat in the document is the one reported. */
    EXPECT_ERR(HEAD "    routes:\n      - path: /z\n      - path: /a\n"
               "      - path: /z\n      - path: /a\n",
               "keel.yaml:7:15: component a: route '/z' (all methods) is already claimed "
               "by component a at line 5");
}

static void unknown_calls(void **state)
{
    (void)state;
    EXPECT_ERR(HEAD "    calls: [b, cart]\n  b:\n    wasm: build/b.wasm\n",
               "keel.yaml:4:16: component a: calls: no component named 'cart'");
    EXPECT_ERR(HEAD "    calls:\n      - a\n",
               "keel.yaml:5:9: component a: calls: a component cannot call itself");
    EXPECT_ERR(HEAD "    calls: [b, b]\n  b:\n    wasm: build/b.wasm\n",
               "keel.yaml:4:16: component a: calls: 'b' is listed twice");
}

static void yaml_syntax(void **state)
{
    (void)state;
    EXPECT_ERR(HEAD "    calls: [b, c\n    abi: wapc\n",
               "keel.yaml:6:1: YAML syntax: flow sequence without a closing bracket");
    EXPECT_ERR(HEAD "\tabi: wapc\n",
               "keel.yaml:4:2: YAML syntax: invalid tab used as indentation");
    EXPECT_ERR(HEAD "    abi: \"wapc\n",
               "keel.yaml:4:11: YAML syntax: double-quoted scalar without closing quote");
    EXPECT_ERR("components:\n  a: &x\n    wasm: build/a.wasm\n  b: *x\n",
               "keel.yaml:4:6: aliases (*name) are not supported");
    EXPECT_ERR(HEAD "---\n" HEAD,
               "keel.yaml:4:1: only one YAML document is allowed ('---' starts another)");
    EXPECT_ERR("", "keel.yaml:1:1: empty manifest (expected a mapping with 'components')");
    EXPECT_ERR("# nothing\n",
               "keel.yaml:1:1: empty manifest (expected a mapping with 'components')");
}

static void duplicate_keys(void **state)
{
    (void)state;
    EXPECT_ERR(HEAD "listen: 127.0.0.1:1\nlisten: 127.0.0.1:2\n",
               "keel.yaml:5:1: duplicate key 'listen' (first at line 4)");
    EXPECT_ERR(HEAD "    abi: wapc\n    abi: wagi\n",
               "keel.yaml:5:5: duplicate key 'abi' (first at line 4)");
    EXPECT_ERR(HEAD "  a:\n    wasm: build/b.wasm\n",
               "keel.yaml:4:3: duplicate key 'a' (first at line 2)");
    EXPECT_ERR(HEAD "    config: { k: 1, k: 2 }\n",
               "keel.yaml:4:21: duplicate key 'k' (first at line 4)");
}

static void sizes_and_durations(void **state)
{
    (void)state;
    EXPECT_ERR(HEAD "    limits:\n      memory: 64XB\n",
               "keel.yaml:5:15: component a: limits: memory '64XB' is not a size (e.g. "
               "64MiB)");
    EXPECT_ERR(HEAD "    limits:\n      memory: 1KiB\n",
               "keel.yaml:5:15: component a: limits: memory 1KiB is out of bounds (64KiB "
               "to 4GiB)");
    EXPECT_ERR(HEAD "    limits:\n      timeout: 5\n",
               "keel.yaml:5:16: component a: limits: timeout '5' is not a duration (e.g. "
               "5s, 500ms)");
    EXPECT_ERR(HEAD "    limits:\n      timeout: 2h\n",
               "keel.yaml:5:16: component a: limits: timeout 2h is out of bounds (1ms to "
               "1h)");
    EXPECT_ERR(HEAD "    limits:\n      body: lots\n",
               "keel.yaml:5:13: component a: limits: body 'lots' is not a size (e.g. 1MiB)");
    EXPECT_ERR(HEAD "    limits:\n      concurrency: 0\n",
               "keel.yaml:5:20: component a: limits: concurrency '0' must be an integer "
               "from 1 to 65536");
    EXPECT_ERR(HEAD "    limits:\n      concurrency: 1.5\n",
               "keel.yaml:5:20: component a: limits: concurrency '1.5' must be an integer "
               "from 1 to 65536");
}

static void abi_and_operation(void **state)
{
    (void)state;
    EXPECT_ERR(HEAD "    abi: grpc\n",
               "keel.yaml:4:10: component a: unknown abi 'grpc' (supported: wapc, wagi)");
    EXPECT_ERR(HEAD "    abi: wagi\n    routes:\n      - path: /x\n        operation: go\n",
               "keel.yaml:7:9: component a: routes[0]: 'operation' applies only to abi "
               "wapc (a wagi component is a WASI command run per request)");
    /* abi after routes: the order of keys does not matter. */
    EXPECT_ERR(HEAD "    routes:\n      - { path: /x, operation: go }\n    abi: wagi\n",
               "keel.yaml:5:21: component a: routes[0]: 'operation' applies only to abi "
               "wapc (a wagi component is a WASI command run per request)");
    EXPECT_ERR(HEAD "    routes:\n      - { path: /x, operation: '' }\n",
               "keel.yaml:5:32: component a: routes[0]: 'operation' must not be empty");
}

static void route_paths_and_methods(void **state)
{
    (void)state;
    EXPECT_ERR(HEAD "    routes:\n      - path: api/*\n",
               "keel.yaml:5:15: component a: routes[0]: path 'api/*' must start with '/'");
    EXPECT_ERR(HEAD "    routes:\n      - path: /a/*/b\n",
               "keel.yaml:5:15: component a: routes[0]: path '/a/*/b': '*' is allowed only "
               "as a final '/*' (prefix match)");
    EXPECT_ERR(HEAD "    routes:\n      - path: /a*\n",
               "keel.yaml:5:15: component a: routes[0]: path '/a*': '*' is allowed only "
               "as a final '/*' (prefix match)");
    EXPECT_ERR(HEAD "    routes:\n      - path: /a?b=1\n",
               "keel.yaml:5:15: component a: routes[0]: path '/a?b=1' must not contain "
               "spaces, control characters, '?' or '#'");
    EXPECT_ERR(HEAD "    routes:\n      - { methods: [GET] }\n",
               "keel.yaml:5:9: component a: routes[0]: missing required key 'path'");
    EXPECT_ERR(HEAD "    routes:\n      - path: /\n        methods: [GET, FETCH]\n",
               "keel.yaml:6:24: component a: routes[0]: unknown method 'FETCH' "
               "(supported: GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS)");
    EXPECT_ERR(HEAD "    routes:\n      - path: /\n        methods: [get]\n",
               "keel.yaml:6:19: component a: routes[0]: unknown method 'get' "
               "(supported: GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS)");
    EXPECT_ERR(HEAD "    routes:\n      - path: /\n        methods: []\n",
               "keel.yaml:6:18: component a: routes[0]: 'methods' must list at least one "
               "method (omit it to allow all)");
    EXPECT_ERR(HEAD "    routes:\n      - path: /\n        methods: [GET, GET]\n",
               "keel.yaml:6:24: component a: routes[0]: method GET listed twice");
    EXPECT_ERR(HEAD "    routes:\n      - /x\n",
               "keel.yaml:5:9: component a: routes[0]: a route must be a mapping (path, "
               "methods, operation), got a string");
}

static void components_and_names(void **state)
{
    (void)state;
    EXPECT_ERR("components: {}\n",
               "keel.yaml:1:1: 'components' is empty: declare at least one component");
    EXPECT_ERR("components:\n",
               "keel.yaml:1:1: 'components' is empty: declare at least one component");
    EXPECT_ERR("components:\n  Gateway:\n    wasm: build/a.wasm\n",
               "keel.yaml:2:3: invalid component name 'Gateway' (use 1 to 64 characters "
               "of a-z, 0-9, '_', '-')");
    EXPECT_ERR("components:\n  \"my app\":\n    wasm: build/a.wasm\n",
               "keel.yaml:2:3: invalid component name 'my app' (use 1 to 64 characters "
               "of a-z, 0-9, '_', '-')");
    EXPECT_ERR("components:\n  '':\n    wasm: build/a.wasm\n",
               "keel.yaml:2:3: invalid component name '' (use 1 to 64 characters "
               "of a-z, 0-9, '_', '-')");
    char yaml[256], msg[256];
    char long_name[66];
    memset(long_name, 'x', 65);
    long_name[65] = '\0';
    snprintf(yaml, sizeof yaml, "components:\n  %s:\n    wasm: build/a.wasm\n", long_name);
    snprintf(msg, sizeof msg, "keel.yaml:2:3: invalid component name '%s' (use 1 to 64 "
             "characters of a-z, 0-9, '_', '-')", long_name);
    EXPECT_ERR(yaml, msg);
    /* 64 characters, digits, '_' and '-' are fine. */
    long_name[64] = '\0';
    snprintf(yaml, sizeof yaml, "components:\n  %s:\n    wasm: build/a.wasm\n"
             "  0_a-b:\n    wasm: build/a.wasm\n", long_name);
    keel_manifest *m;
    assert_int_equal(load(yaml, &m), 0);
    keel_manifest_free(m);
}

static void listen_files_env(void **state)
{
    (void)state;
    EXPECT_ERR("listen: localhost\n" HEAD,
               "keel.yaml:1:9: listen: 'localhost' is not HOST:PORT (e.g. 127.0.0.1:8080, "
               "[::1]:8080; port 0..65535)");
    EXPECT_ERR("listen: 127.0.0.1:70000\n" HEAD,
               "keel.yaml:1:9: listen: '127.0.0.1:70000' is not HOST:PORT (e.g. "
               "127.0.0.1:8080, [::1]:8080; port 0..65535)");
    EXPECT_ERR("listen: ::1:80\n" HEAD,
               "keel.yaml:1:9: listen: '::1:80' is not HOST:PORT (e.g. 127.0.0.1:8080, "
               "[::1]:8080; port 0..65535)");
    keel_manifest *m;
    assert_int_equal(load("listen: '[::1]:8080'\n" HEAD, &m), 0);
    assert_string_equal(m->listen, "[::1]:8080");
    keel_manifest_free(m);
    EXPECT_ERR(HEAD "    files:\n      - { host: static, guest: static }\n",
               "keel.yaml:5:32: component a: files[0]: guest path 'static' must start "
               "with '/'");
    EXPECT_ERR(HEAD "    files:\n      - { host: static, guest: /s, mode: wx }\n",
               "keel.yaml:5:42: component a: files[0]: mode must be ro or rw, got 'wx'");
    EXPECT_ERR(HEAD "    files:\n      - { host: static, guest: /s }\n"
               "      - { host: build, guest: /s }\n",
               "keel.yaml:6:31: component a: files[1]: guest path '/s' is already mounted "
               "by files[0]");
    char real[PATH_MAX], msg[PATH_MAX + 256];
    assert_non_null(realpath(".", real));
    snprintf(msg, sizeof msg, "keel.yaml:5:17: component a: files[0]: host 'build/a.wasm' "
             "is not a folder (resolved to %s/build/a.wasm)", real);
    EXPECT_ERR(HEAD "    files:\n      - { host: build/a.wasm, guest: /s }\n", msg);
}

static void env_keys(void **state)
{
    (void)state;
    EXPECT_ERR(HEAD "    env:\n      A=B: 1\n",
               "keel.yaml:5:7: component a: env: variable name 'A=B' must not contain '='");
    EXPECT_ERR(HEAD "    env: { '': x }\n",
               "keel.yaml:4:12: component a: env: keys must not be empty or null");
    keel_manifest *m;
    assert_int_equal(load(HEAD "    env: { N: 12, E: , Q: 'x: y' }\n", &m), 0);
    assert_string_equal(m->components[0].env[0].value, "12");
    assert_string_equal(m->components[0].env[1].value, "");
    assert_string_equal(m->components[0].env[2].value, "x: y");
    keel_manifest_free(m);
}

/* A YAML directive is refused before libfyaml scans it: 0.7.12 loops
 * forever on this malformed one (found by tests/fuzz/fuzz_manifest.c). */
static void directives_refused(void **state)
{
    (void)state;
    EXPECT_ERR("listen: 127.0.0.1:8080\ncomponents:\n% : error: sm:\x01\n",
               "keel.yaml:3:1: YAML directives (lines starting with %) are not supported");
    EXPECT_ERR("%YAML 1.2\n---\n" HEAD,
               "keel.yaml:1:1: YAML directives (lines starting with %) are not supported");
}

static void shutdown_section(void **state)
{
    (void)state;
    keel_manifest *m;
    assert_int_equal(load(HEAD, &m), 0);
    assert_int_equal(m->shutdown.drain_delay_ns, 0);
    assert_int_equal(m->shutdown.grace_ns, 30000000000ull);
    keel_manifest_free(m);
    assert_int_equal(load("shutdown: { drain_delay: 5s, grace: 1m }\n" HEAD, &m), 0);
    assert_int_equal(m->shutdown.drain_delay_ns, 5000000000ull);
    assert_int_equal(m->shutdown.grace_ns, 60000000000ull);
    keel_manifest_free(m);
    EXPECT_ERR("shutdown: { delay: 5s }\n" HEAD,
               "keel.yaml:1:13: shutdown: unknown key 'delay' (supported: drain_delay, grace)");
    EXPECT_ERR("shutdown: { drain_delay: 5 }\n" HEAD,
               "keel.yaml:1:26: shutdown: 'drain_delay' is not a duration (e.g. 10s, 500ms), "
               "got '5'");
    EXPECT_ERR("shutdown:\n  grace: 0s\n" HEAD,
               "keel.yaml:2:10: shutdown: 'grace' 0s is out of bounds (1000ms to 3600s)");
    EXPECT_ERR("shutdown:\n  drain_delay: 11m\n" HEAD,
               "keel.yaml:2:16: shutdown: 'drain_delay' 11m is out of bounds (0ms to 600s)");
    EXPECT_ERR("shutdown: [1]\n" HEAD,
               "keel.yaml:1:11: 'shutdown' must be a mapping, got a sequence");
}

static void operability_sections(void **state)
{
    (void)state;
    keel_manifest *m;
    assert_int_equal(load("admin:\n  listen: 127.0.0.1:0\n  token_file: admin.token\n"
                          "  audit_log: /var/log/keel-audit.jsonl\n"
                          "observability:\n  log_level: warn\n  log_format: text\n"
                          "  access_log: false\n  otlp_endpoint: http://127.0.0.1:4318\n"
                          "  trace_sample: 0.25\n  guest_log_rate: 5\n"
                          "  health_interval: 2s\n  health_timeout: 50ms\n" HEAD
                          "    slo: { availability: 99.9, latency: { p: 0.99, under: 300ms } }\n"
                          "    circuit: { error_ratio: 0.5, window: 5s, min_requests: 3, "
                          "cooldown: 2s }\n", &m), 0);
    assert_string_equal(m->admin.listen, "127.0.0.1:0");
    assert_true(m->admin.listen_set);
    assert_non_null(strstr(m->admin.token_file, "/admin.token"));
    assert_int_equal(m->admin.token_file[0], '/');
    assert_string_equal(m->admin.audit_log, "/var/log/keel-audit.jsonl");
    assert_int_equal(m->obs.log_level, 2);
    assert_int_equal(m->obs.log_format, 1);
    assert_false(m->obs.access_log);
    assert_string_equal(m->obs.otlp_endpoint, "http://127.0.0.1:4318");
    assert_true(m->obs.trace_sample == 0.25);
    assert_int_equal(m->obs.guest_log_rate, 5);
    assert_int_equal(m->obs.health_interval_ns, 2000000000ull);
    assert_int_equal(m->obs.health_timeout_ns, 50000000ull);
    const keel_component_cfg *a = &m->components[0];
    assert_true(a->slo.set && a->slo.has_latency);
    assert_true(a->slo.availability == 99.9 && a->slo.latency_p == 0.99);
    assert_int_equal(a->slo.latency_ns, 300000000ull);
    assert_true(a->circuit.enabled && a->circuit.error_ratio == 0.5);
    assert_int_equal(a->circuit.window_ns, 5000000000ull);
    assert_int_equal(a->circuit.min_requests, 3);
    assert_int_equal(a->circuit.cooldown_ns, 2000000000ull);
    keel_manifest_free(m);

    /* defaults */
    assert_int_equal(load(HEAD, &m), 0);
    assert_string_equal(m->admin.listen, "127.0.0.1:9090");
    assert_false(m->admin.listen_set);
    assert_null(m->admin.token_file);
    assert_int_equal(m->obs.log_format, 0);
    assert_true(m->obs.access_log);
    assert_null(m->obs.otlp_endpoint);
    assert_true(m->obs.trace_sample == 1.0);
    assert_int_equal(m->obs.guest_log_rate, 1000);
    assert_false(m->components[0].slo.set);
    assert_false(m->components[0].circuit.enabled);
    keel_manifest_free(m);

    EXPECT_ERR("observability: [1]\n" HEAD,
               "keel.yaml:1:16: 'observability' must be a mapping, got a sequence");
    EXPECT_ERR("observability: { access_log: maybe }\n" HEAD,
               "keel.yaml:1:30: observability: 'access_log' must be true or false, got 'maybe'");
    EXPECT_ERR("observability: { guest_log_rate: 1.5 }\n" HEAD,
               "keel.yaml:1:34: observability: guest_log_rate must be a whole number of lines "
               "per second, got '1.5'");
    EXPECT_ERR("observability: { health_interval: 1ms }\n" HEAD,
               "keel.yaml:1:35: observability: 'health_interval' 1ms is out of bounds "
               "(100ms to 3600s)");
    EXPECT_ERR("admin: { token_file: '' }\n" HEAD,
               "keel.yaml:1:22: admin: 'token_file' must not be empty");
    EXPECT_ERR(HEAD "    slo: { availability: 99.9, latency: 300ms }\n",
               "keel.yaml:4:41: component a: slo: 'latency' must be a mapping, got a string");
    EXPECT_ERR(HEAD "    circuit: { error_ratio: 0 }\n",
               "keel.yaml:4:29: component a: circuit: 'error_ratio' must be a number from "
               "0.01 to 1, got '0'");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(full_manifest),
        cmocka_unit_test(defaults),
        cmocka_unit_test(unknown_keys),
        cmocka_unit_test(operability_sections),
        cmocka_unit_test(shutdown_section),
        cmocka_unit_test(wrong_types),
        cmocka_unit_test(missing_files),
        cmocka_unit_test(route_conflicts),
        cmocka_unit_test(unknown_calls),
        cmocka_unit_test(yaml_syntax),
        cmocka_unit_test(duplicate_keys),
        cmocka_unit_test(sizes_and_durations),
        cmocka_unit_test(abi_and_operation),
        cmocka_unit_test(route_paths_and_methods),
        cmocka_unit_test(components_and_names),
        cmocka_unit_test(listen_files_env),
        cmocka_unit_test(env_keys),
        cmocka_unit_test(directives_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
