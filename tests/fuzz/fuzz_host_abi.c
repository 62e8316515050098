/* fuzz_host_abi.c — libFuzzer target: the boundary between an HTTP request
 * and a component. Every host function a guest can import from "wapc" and
 * "keel" (the tables of src/host/wapc.c, api.c and kv.c, so a new function
 * is fuzzed once it is listed there) is called directly with pointers,
 * lengths and contents decoded from the input, against the linear memory
 * of a real instance (one 64 KiB page) and a real request: a keel_host
 * loaded from a tiny hand-written module (entry and peer waPC components,
 * a WAGI one, an SQLite store in /dev/shm), request headers taken from the
 * input (so traceparent / tracestate parsing at request start is fuzzed
 * too), at call depth 0, 1 or the limit, before or after the deadline.
 *
 * Each call runs inside its own keel_rt_invoke, nested in the request's
 * one as guest code is, so a trap ends only that call. The contract: a
 * call returns, or traps with "out of bounds" (a bad guest range) or
 * "deadline exceeded" (__host_call past the deadline); it never touches
 * host memory outside the guest's (ASan) and leaves the request within its
 * limits (checked after every call).
 *
 * Input: one flags byte (bits 0-1 depth, bit 2 deadline passed), the
 * request (method, uri, up to 4 headers: each a length byte and bytes),
 * the waPC operation and payload (same), then up to HARNESS_MAX_OPS operations: a selector byte (a host function,
 * or "poke": copy input bytes into guest memory), then its arguments. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/rt.h"
#include "host/host_int.h"
#include "scratch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HARNESS_MAX_OPS 64
#define HARNESS_MAX_HEADERS 4

/* (module (memory (export "memory") 1 2)
 *   (func (export "__guest_call") (param i32 i32) (result i32) i32.const 1)
 *   (func (export "_start"))) */
static const uint8_t guest_wasm[] = {
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x0a, 0x02, 0x60,
    0x02, 0x7f, 0x7f, 0x01, 0x7f, 0x60, 0x00, 0x00, 0x03, 0x03, 0x02, 0x00,
    0x01, 0x05, 0x04, 0x01, 0x01, 0x01, 0x02, 0x07, 0x22, 0x03, 0x06, 0x6d,
    0x65, 0x6d, 0x6f, 0x72, 0x79, 0x02, 0x00, 0x0c, 0x5f, 0x5f, 0x67, 0x75,
    0x65, 0x73, 0x74, 0x5f, 0x63, 0x61, 0x6c, 0x6c, 0x00, 0x00, 0x06, 0x5f,
    0x73, 0x74, 0x61, 0x72, 0x74, 0x00, 0x01, 0x0a, 0x09, 0x02, 0x04, 0x00,
    0x41, 0x01, 0x0b, 0x02, 0x00, 0x0b,
};

static char dir[] = "/dev/shm/keel-fuzz-abi.XXXXXX";
static char wasm_file[64], db_file[64];
static keel_manifest manifest;
static keel_component_cfg comps[3];
static keel_store_cfg store;
static char *calls_of_entry[] = { "peer", "cgi" };
static char *kv_of_entry[] = { "data" };
static keel_kv config_of_entry[] = { { "greeting", "hi there" }, { "empty", "" } };
static keel_host *host;
static const keel_host_fn *fns[64];
static size_t nfns;
static bool trace;   /* KEEL_FUZZ_TRACE=1: one line per call on stderr */

static void setup(void)
{
    fuzz_scratch_dir(dir);
    snprintf(wasm_file, sizeof wasm_file, "%s/guest.wasm", dir);
    snprintf(db_file, sizeof db_file, "%s/data.db", dir);
    FILE *f = fopen(wasm_file, "wb");
    if (!f || fwrite(guest_wasm, 1, sizeof guest_wasm, f) != sizeof guest_wasm || fclose(f))
        abort();

    store = (keel_store_cfg){ .name = "data", .backend = KEEL_STORE_SQLITE, .path = db_file,
                              .prefix = "", .max_value = 4096, .max_size = 1u << 20 };
    const char *names[] = { "entry", "peer", "cgi" };
    for (size_t i = 0; i < 3; i++)
        comps[i] = (keel_component_cfg){ .name = (char *)names[i], .wasm = wasm_file,
                                         .abi = i == 2 ? KEEL_ABI_WAGI : KEEL_ABI_WAPC,
                                         .pos = { 1, 1 }, .wasm_pos = { 1, 1 } };
    comps[0].calls = calls_of_entry;
    comps[0].ncalls = 2;
    comps[0].kv = kv_of_entry;
    comps[0].nkv = 1;
    comps[0].config = config_of_entry;
    comps[0].nconfig = 2;
    manifest = (keel_manifest){ .path = "keel.yaml", .dir = dir, .listen = "127.0.0.1:0",
                                .components = comps, .ncomponents = 3,
                                .stores = &store, .nstores = 1 };

    trace = getenv("KEEL_FUZZ_TRACE") != NULL;
    if (keel_rt_init())
        abort();
    char err[1024];
    keel_host_opts o = { .engine = { .tier = KEEL_TIER_FAST, .cache_dir = dir } };
    if (keel_host_new(&manifest, &o, &host, err, sizeof err)) {
        fprintf(stderr, "keel_host_new: %s\n", err);
        abort();
    }
    /* Host warnings (refused calls, denied stores) would be one line per
     * input; guest lines at error level still pass, rate-limited. */
    keel_log_min = KEEL_LOG_ERROR;
    keel_log_guest_limit(3, 1);

    const keel_host_fn *tables[] = { keel_host_wapc_fns, keel_host_api_fns, keel_host_kv_fns };
    for (size_t t = 0; t < 3; t++)
        for (const keel_host_fn *fn = tables[t]; fn->module; fn++)
            if (nfns < sizeof fns / sizeof fns[0])
                fns[nfns++] = fn;
}

/* ---- reading the input ---- */

typedef struct reader {
    const uint8_t *p, *end;
} reader;

static uint8_t take8(reader *r)
{
    return r->p < r->end ? *r->p++ : 0;
}

static uint32_t take32(reader *r)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)take8(r) << (8 * i);
    return v;
}

/* A length byte then that many bytes (fewer at the end of the input). */
static const char *take_bytes(reader *r, size_t *len)
{
    size_t n = take8(r);
    if (n > (size_t)(r->end - r->p))
        n = (size_t)(r->end - r->p);
    const char *s = (const char *)r->p;
    r->p += n;
    *len = n;
    return s;
}

/* A guest pointer or length, biased towards the edges of memory. */
static uint32_t take_arg(reader *r, uint32_t memsize)
{
    uint8_t tag = take8(r);
    switch (tag & 7) {
    case 0: return take8(r);
    case 1: return memsize - take8(r);
    case 2: return take32(r);
    case 3: return UINT32_MAX - take8(r);
    case 4: return memsize + take8(r);
    case 5: return (uint32_t)take8(r) << 8 | take8(r);
    case 6: return 0;
    default: return (1u << 31) + take8(r);
    }
}

/* ---- calling a host function by its signature ---- */

typedef struct op {
    const keel_host_fn *fn;
    void *ctx;
    uint32_t a[8];
    uint64_t wide;
    uint64_t ret;                 /* what a function with a result returned */
} op;

typedef void (*fn_v2)(void *, uint32_t, uint32_t);
typedef void (*fn_v1)(void *, uint32_t);
typedef void (*fn_v3)(void *, uint32_t, uint32_t, uint32_t);
typedef uint32_t (*fn_i0)(void *);
typedef uint32_t (*fn_i2)(void *, uint32_t, uint32_t);
typedef uint32_t (*fn_i4)(void *, uint32_t, uint32_t, uint32_t, uint32_t);
typedef uint32_t (*fn_i6)(void *, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t);
typedef uint32_t (*fn_i8)(void *, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t,
                          uint32_t, uint32_t);
typedef uint64_t (*fn_I4)(void *, uint32_t, uint32_t, uint32_t, uint32_t, uint64_t);

static void run_op(void *arg)
{
    op *o = arg;
    const char *s = o->fn->sig;
    const uint32_t *a = o->a;
    void (*f)(void) = o->fn->addr;
    if (!strcmp(s, "i:"))
        ((fn_v1)f)(o->ctx, a[0]);
    else if (!strcmp(s, "ii:"))
        ((fn_v2)f)(o->ctx, a[0], a[1]);
    else if (!strcmp(s, "iii:"))
        ((fn_v3)f)(o->ctx, a[0], a[1], a[2]);
    else if (!strcmp(s, ":i"))
        o->ret = ((fn_i0)f)(o->ctx);
    else if (!strcmp(s, "ii:i"))
        o->ret = ((fn_i2)f)(o->ctx, a[0], a[1]);
    else if (!strcmp(s, "iiii:i"))
        o->ret = ((fn_i4)f)(o->ctx, a[0], a[1], a[2], a[3]);
    else if (!strcmp(s, "iiiiii:i"))
        o->ret = ((fn_i6)f)(o->ctx, a[0], a[1], a[2], a[3], a[4], a[5]);
    else if (!strcmp(s, "iiiiiiii:i"))
        o->ret = ((fn_i8)f)(o->ctx, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]);
    else if (!strcmp(s, "iiiiI:I"))
        o->ret = ((fn_I4)f)(o->ctx, a[0], a[1], a[2], a[3], o->wide);
    else {
        fprintf(stderr, "fuzz_host_abi: no caller for %s.%s (%s): extend run_op\n",
                o->fn->module, o->fn->field, s);
        abort();
    }
}

static void fail(const char *what, const op *o)
{
    fprintf(stderr, "fuzz_host_abi: %s after %s.%s\n", what, o->fn->module, o->fn->field);
    abort();
}

/* The request's limits hold after every call. */
static void check_state(const host_call *c, const op *o, uint32_t memsize)
{
    const host_request *rq = c->rq;
    if (c->ctx.mem->size != memsize)
        fail("guest memory changed size", o);
    if (c->response.len > KEEL_HOST_MAX_BODY_BYTES || c->error.len > KEEL_HOST_MAX_ERROR_BYTES ||
        c->host_error.len >= 768)
        fail("response or error over its limit", o);
    if (rq->nheaders > KEEL_HOST_MAX_RESP_HEADERS ||
        rq->header_bytes > KEEL_HOST_MAX_RESP_HEADER_BYTES)
        fail("response headers over their limit", o);
    if (rq->status && (rq->status < 100 || rq->status > 599))
        fail("status outside 100-599", o);
    if (c->depth != 0 && (rq->status || rq->nheaders))
        fail("a nested call set the HTTP response", o);
}

typedef struct request_run {
    host_call *c;
    reader *r;
} request_run;

static void run_request(void *arg)
{
    request_run *rr = arg;
    host_call *c = rr->c;
    reader *r = rr->r;
    wasm_rt_memory_t *mem = c->ctx.mem;
    for (int n = 0; n < HARNESS_MAX_OPS && r->p < r->end; n++) {
        uint8_t sel = take8(r);
        if (sel % (nfns + 1) == nfns) {   /* poke: guest bytes for names, keys, headers */
            uint32_t off = take_arg(r, mem->size);
            size_t len;
            const char *b = take_bytes(r, &len);
            if (off < mem->size)
                memcpy(mem->data + off, b, len < mem->size - off ? len : mem->size - off);
            continue;
        }
        op o = { .fn = fns[sel % (nfns + 1)], .ctx = &c->ctx };
        for (size_t i = 0; i < 8; i++)
            o.a[i] = take_arg(r, mem->size);
        o.wide = (uint64_t)take32(r) << 32 | take32(r);
        uint32_t memsize = mem->size;
        keel_rt_outcome out;
        keel_rt_invoke(run_op, &o, NULL, &out);
        if (trace)
            fprintf(stderr, "%s %u %u %u %u -> %d %d ret %llx\n", o.fn->field, o.a[0], o.a[1], o.a[2], o.a[3], out.end, out.trap, (unsigned long long)o.ret);
        if (out.end == KEEL_RT_EXITED ||
            (out.end == KEEL_RT_TRAPPED && out.trap != KEEL_TRAP_OOB &&
             out.trap != KEEL_TRAP_DEADLINE)) {
            fprintf(stderr, "fuzz_host_abi: unexpected end: %s\n", keel_trap_kind_name(out.trap));
            fail("bad outcome", &o);
        }
        if (out.trap == KEEL_TRAP_DEADLINE && !c->rq->deadline_hit)
            fail("deadline trap without deadline_hit", &o);
        check_state(c, &o, memsize);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!host)
        setup();
    reader r = { data, data + size };
    uint8_t flags = take8(&r);
    static const int depths[] = { 0, 1, KEEL_HOST_MAX_CALL_DEPTH, 0 };

    keel_request req = { .server_name = "127.0.0.1", .server_port = 8080,
                         .protocol = "HTTP/1.1", .remote_addr = "127.0.0.1",
                         .query = "" };
    req.method = take_bytes(&r, &req.method_len);
    req.uri = take_bytes(&r, &req.uri_len);
    req.path = req.uri;
    req.path_len = req.uri_len;
    keel_header headers[HARNESS_MAX_HEADERS];
    size_t nh = take8(&r) % (HARNESS_MAX_HEADERS + 1);
    for (size_t i = 0; i < nh; i++) {
        headers[i].name = take_bytes(&r, &headers[i].name_len);
        headers[i].value = take_bytes(&r, &headers[i].value_len);
    }
    req.headers = headers;
    req.nheaders = nh;

    host_component *entry = &host->comps[0];
    unsigned section = host_read_enter(host);
    host_request rq = { .h = host, .req = &req, .id = "fuzz",
                        .deadline_ns = (flags & 4) ? keel_rt_now_ns() - 1
                                                   : keel_rt_now_ns() + 10000000000ull };
    host_obs_request_begin(&rq, entry);
    host_call c = { .rq = &rq, .comp = entry, .depth = depths[flags & 3], .cgi_stdout = -1 };
    c.op = (const uint8_t *)take_bytes(&r, &c.op_len);
    c.payload = (const uint8_t *)take_bytes(&r, &c.payload_len);
    host_stdio io = { -1, -1, -1 };
    host_result res;
    if (host_instance_acquire(&c, entry->env, entry->nenv, &io, &res)) {
        fprintf(stderr, "fuzz_host_abi: instance: %s\n", res.why);
        abort();
    }
    if (!c.ctx.mem || c.ctx.mem->size != KEEL_HOST_WASM_PAGE_BYTES)
        abort();
    request_run rr = { &c, &r };
    keel_rt_limits lim = { .deadline_ns = rq.deadline_ns };
    keel_rt_outcome out;
    keel_rt_invoke(run_request, &rr, &lim, &out);
    if (out.end != KEEL_RT_RETURNED)
        abort();
    host_instance_release(&c);
    host_call_free(&c);

    keel_response resp = { .status = rq.status ? rq.status : 200 };
    host_obs_request_end(&rq, entry, NULL, &resp);
    for (size_t i = 0; i < rq.nheaders; i++) {
        free((char *)rq.headers[i].name);
        free((char *)rq.headers[i].value);
    }
    free(rq.headers);
    host_read_exit(host, section);
    return 0;
}
