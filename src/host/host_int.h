/* host_int.h — private to src/host: the loaded components, the state of one
 * request and of one component invocation inside it, and the functions the
 * files of the folder share.
 *
 *   host.c   keel_host_new/free, routing, admission, keel_host_handle
 *   call.c   instances (acquire/release), the waPC init sequence and
 *            __guest_call, error texts, guest output to the log
 *   wapc.c   the "wapc" host functions (waPC protocol, __host_call)
 *   api.c    the "keel" host functions (HTTP metadata, config, log)
 *   kv.c     the "keel" kv_* host functions (stores granted by kv:)
 *   wagi.c   WASI commands run CGI-style
 *   obs.c    metrics, logs and spans of requests, invocations and calls
 *   health.c circuit breakers, keel_health probes, /health and /readyz
 *
 * Ownership: a host_request lives on the stack of keel_host_handle; a
 * host_call lives on the stack of whoever runs the invocation (the request
 * for depth 0, the __host_call host function for nested calls) and owns
 * every buffer it points to; host_call_free releases them. Guest memory is
 * only ever reached through call_guest_range, which traps the guest (never
 * the host) on a bad pointer. */
#ifndef KEEL_HOST_INT_H
#define KEEL_HOST_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "host/host.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "obs/trace.h"
#include "store/store.h"
#include "wasi/wasi.h"

/* Named ceilings, with their units. */
#define KEEL_HOST_MAX_CALL_DEPTH 16                 /* nested __host_call levels */
#define KEEL_HOST_MAX_BODY_BYTES (16u << 20)        /* __guest_response, CGI stdout */
#define KEEL_HOST_MAX_GUEST_OUTPUT_BYTES (64u << 10) /* guest stdout/stderr kept for the log */
#define KEEL_HOST_MAX_ERROR_BYTES 4096u             /* __guest_error text kept */
#define KEEL_HOST_MAX_LOG_BYTES 4096u               /* one keel.log / __console_log line */
#define KEEL_HOST_MAX_RESP_HEADERS 100u             /* headers a component may set */
#define KEEL_HOST_MAX_RESP_HEADER_BYTES (64u << 10) /* their total size; CGI header block */
#define KEEL_HOST_WASM_PAGE_BYTES 65536u
#define KEEL_HOST_DEFAULT_OPERATION "handle"

/* The code a version runs: its module, linked to the host, and the
 * copy-on-write image instances start from (NULL: each is instantiated,
 * and initialized, from scratch; image_initialized: the image ran the waPC
 * initializer sequence, so requests skip it). Replaced as a whole when the
 * optimized tier is ready (tierup.c): an invocation takes the current code
 * when it starts and keeps it to the end; a replaced code is freed once no
 * request that could have taken it is running (versions.c). */
typedef struct host_code {
    keel_module *mod;
    keel_image *image;
    bool image_initialized;
    bool has_initialize, has_start, has_wapc_init;
} host_code;

/* Sliding-window statistics of one version (versions.c): the window is
 * HOST_WIN_SLOTS slots of rollout.window / HOST_WIN_SLOTS each; latencies
 * in buckets of a quarter octave of microseconds. */
#define HOST_WIN_SLOTS 12
#define HOST_LAT_BUCKETS 128
typedef struct host_win_slot {
    _Atomic uint64_t epoch;       /* which slot period the counts belong to */
    _Atomic uint32_t n, err;
    _Atomic uint32_t lat[HOST_LAT_BUCKETS];
} host_win_slot;

/* One version of a component: a wasm (by sha256) with its code. A
 * component serves its stable version, and a canary version for a share of
 * invocations when one is set. Replaced versions are freed like codes. */
typedef struct host_version {
    _Atomic(host_code *) code;    /* never NULL */
    char sha[65];                 /* hex sha256 of the wasm */
    char *source;                 /* the wasm file it was loaded from */
    uint64_t created_real_ns;     /* when it was loaded (CLOCK_REALTIME) */
    _Atomic uint64_t requests, errors;   /* since loaded: invocations, failed ones */
    host_win_slot win[HOST_WIN_SLOTS];
} host_version;

typedef struct host_component {
    const keel_component_cfg *cfg;
    size_t index;
    /* versions (versions.c): stable never NULL after keel_host_new; canary
     * serves canary_weight percent of invocations when set; staged was
     * uploaded for a canary and serves nothing yet; previous is the stable
     * version before the last deploy or promote (what rollback restores
     * when there is no canary). staged and previous: under deploy_lock. */
    _Atomic(host_version *) stable;
    _Atomic(host_version *) canary;
    _Atomic uint32_t canary_weight;
    host_version *staged;
    host_version *previous;
    char manifest_sha[65];        /* the version keel.yaml's wasm gave at load */
    _Atomic uint64_t rollbacks[2];    /* by hand, automatic (deploy.c) */
    uint32_t memory_pages;        /* instance limit, 0 = none */
    uint64_t timeout_ns;
    uint32_t concurrency;
    _Atomic uint32_t inflight;
    size_t *calls;                /* component indices it may call */
    size_t ncalls;
    char **env;                   /* "KEY=VALUE": env (wapc instances) */
    int nenv;
    char **env_config;            /* env then config (wagi instances) */
    int nenv_config;
    keel_wasi_preopen *preopens;
    size_t npreopens;
    keel_store **kv;              /* the stores of its kv: grants */
    size_t nkv;
    /* operability (obs.c, health.c) */
    double compile_seconds;       /* keel_module_load at start */
    bool has_health;              /* exports keel_health() -> i32 */
    struct host_health *health;   /* breaker, probe result, last trap */
    _Atomic uint64_t kv_denied;   /* kv calls naming a store not granted (kv.c) */
    /* Guest CPU time per wall time of its invocations, in 1/1024, from
     * the last measured ones (obs.c): what an unmeasured one is charged. */
    _Atomic uint32_t cpu_per_wall;
} host_component;

typedef struct host_route {
    const keel_route *r;
    size_t comp;
    size_t len;                   /* strlen(r->path) */
} host_route;

struct keel_host {
    const keel_manifest *m;
    struct tierup *tierup;        /* tierup.c's thread; NULL when none */
    host_component *comps;
    size_t ncomps;
    host_route *exact;            /* sorted by path */
    size_t nexact;
    host_route *prefix;           /* longest path first */
    size_t nprefix;
    keel_stores *stores;          /* every store of the manifest (kv.c) */
    keel_metrics *metrics;        /* obs.c */
    char config_digest[17];       /* sha256 prefix of the manifest file */
    struct host_prober *prober;   /* health.c's thread; NULL when none */
    /* versions.c: deploys, canaries, tier-up swaps and the freeing of what
     * they replace. Requests run inside read sections (host_read_enter);
     * replaced codes and versions wait on a retire list until every read
     * section that could have seen them has ended. */
    pthread_mutex_t deploy_lock;
    _Atomic unsigned read_epoch;
    _Atomic uint64_t readers[2];
    _Atomic bool retire_pending;
    struct host_retired *retired;     /* replaced since the last epoch flip */
    struct host_retired *waiting;     /* replaced before it: freed when readers[wait_slot] is 0 */
    unsigned wait_slot;
    pthread_mutex_t retire_lock;
    char deployment_digest[65];       /* sha256 of the manifest and every stable sha */
    _Atomic uint64_t pins;            /* live.c: requests routing through this host */
    char *cache_dir;                  /* the engine's compile cache; NULL: default */
    bool background_opt;              /* fast-tier code gets optimized code later */
};

/* One invocation's span and CPU account (obs.c); lives on the stack of
 * whoever runs the invocation, linked to the one that called it. */
typedef struct host_inv {
    struct host_inv *parent;
    host_component *comp;
    char span_hex[17];           /* its span id */
    uint64_t start_mono, cpu_start, child_cpu, child_wall;
    const char *op;
    size_t op_len;
} host_inv;

/* A request's observability state (obs.c). */
typedef struct host_req_obs {
    keel_trace_ctx tc;            /* trace id, incoming parent, sampled, tracestate */
    bool has_parent;
    char trace_hex[33], span_hex[17];   /* span_hex: the server span's id */
    uint64_t start_mono;
    keel_log_ctx lc;
    const keel_log_ctx *prev_lc;
    host_inv *cur;                /* innermost running invocation */
    bool cpu_sampled;             /* this request's guest CPU time is measured */
    int admit;                    /* health.c: HOST_ADMIT_* of the entered component */
} host_req_obs;

/* One HTTP request, shared by every invocation of its call chain. */
typedef struct host_request {
    keel_host *h;
    const keel_request *req;
    const char *id;               /* never NULL */
    uint64_t deadline_ns;         /* absolute CLOCK_MONOTONIC, never 0 */
    int status;                   /* keel.http_set_status; 0 = not set */
    keel_header *headers;         /* keel.http_set_header; malloc'd */
    size_t nheaders, cap_headers, header_bytes;
    bool deadline_hit;            /* some invocation ran out of time */
    host_req_obs obs;
} host_request;

typedef struct host_buf {
    uint8_t *data;                /* malloc'd, NUL-terminated for convenience */
    size_t len;
} host_buf;

/* One invocation of one component: its instance and the waPC exchange. */
typedef struct host_call {
    host_request *rq;
    host_component *comp;
    int depth;                    /* 0: the component the request entered */
    const uint8_t *op;            /* borrowed for the call */
    size_t op_len;
    const uint8_t *payload;
    size_t payload_len;
    host_buf response;            /* __guest_response */
    bool responded;
    host_buf error;               /* __guest_error */
    bool errored;
    host_buf host_response;       /* result of the last __host_call */
    host_buf host_error;
    /* the instance (call.c) */
    host_version *version;        /* which version it runs: picked by acquire
                                     when unset (host_version_pick) */
    host_code *code;              /* what it runs: the version's code when
                                     acquired (or set by the image builder
                                     for a template) */
    keel_host_ctx ctx;
    keel_instance *inst;
    struct keel_wasi *wasi;
    void **imports;               /* per import module: &ctx (imports_inline
                                     when they fit) */
    void *imports_inline[8];
    bool initialized;             /* inst came from an initialized image */
    bool is_template;             /* building the component's image */
    bool template_refused;        /* ... and the guest called a request-bound host function */
    /* WAGI: the stdout memfd and whether the guest tried to pass its cap */
    int cgi_stdout;               /* -1 when not WAGI */
    bool cgi_overflow;
    int64_t obs_mem;              /* linear memory counted for the live instance */
} host_call;

/* How an invocation ended. */
typedef enum host_end {
    HOST_OK = 0,
    HOST_GUEST_ERROR,             /* __guest_call returned 0, __guest_error, bad exit */
    HOST_TRAPPED,                 /* o says which trap */
    HOST_FAILED,                  /* the host could not set the instance up */
} host_end;

typedef struct host_result {
    host_end end;
    keel_rt_outcome o;
    const char *phase;            /* "instantiation", "_start", "__guest_call", ... */
    char why[512];                /* one line for the log / __host_error */
} host_result;

/* Guest stdio for an instance: host fds (not closed by release), -1 = closed. */
typedef struct host_stdio {
    int in, out, err;
} host_stdio;

/* --- call.c --- */

/* Creates the instance for c (WASI state with envp, stdio io) — the one
 * place an instance comes from: from the component's image when it has one
 * (c->initialized then says whether the initializers already ran), else
 * from scratch. On failure fills r (HOST_TRAPPED or HOST_FAILED) and
 * returns -1. */
int host_instance_acquire(host_call *c, char *const *envp, int envc, const host_stdio *io,
                          host_result *r);
void host_instance_release(host_call *c);

/* Builds code->image for comp (code not yet published, or being built
 * for it): instantiates a template, runs the waPC initializer sequence in
 * it (WAGI: nothing; _start runs per request) and captures it. Leaves
 * code->image NULL (instances from scratch) when the module cannot be
 * imaged, the initializer fails or calls a host function bound to a
 * request (waPC, keel), when it leaves the WASI file table different from
 * a fresh one, or when KEEL_INSTANCE_IMAGES=0. Logs which. */
void host_image_build(keel_host *h, host_component *comp, host_code *code);

/* host.c: loads wasm with eo (host tables set here) and links it to the
 * host: the module of a new code. 0, or an error in why. */
int host_module_load(const char *wasm, keel_engine_opts eo, keel_module **out, char *why,
                     size_t whylen);

/* Whether m exports name of this kind (KEEL_EXTERN_*), with signature sig
 * when sig is not NULL (host.c). */
bool host_has_export(const keel_module *m, const char *name, const char *sig, int kind);

/* --- versions.c --- */

/* Read sections: a request (or probe) runs between host_read_enter and
 * host_read_exit (given what enter returned); codes and versions replaced
 * meanwhile are freed only after it. */
unsigned host_read_enter(keel_host *h);
void host_read_exit(keel_host *h, unsigned slot);
/* keel_host_reap (host.h) frees what was replaced and is no longer
 * reachable. */
/* Makes a code for mod (taking it): its export flags, and its image when
 * the component's instances can start from one (image: false: none). */
host_code *host_code_new(keel_host *h, host_component *comp, keel_module *mod, bool image);
void host_code_free(host_code *code);
/* A new version serving code, loaded from source. */
host_version *host_version_new(host_code *code, const char *source);
/* Under deploy_lock: publishes code as v's code; the replaced one is
 * retired. */
void host_code_swap(keel_host *h, host_version *v, host_code *code);
/* The version an invocation of comp runs: the canary for canary_weight
 * percent of invocations, else the stable one. */
host_version *host_version_pick(host_component *comp);
/* Counts one finished invocation of v (error: 5xx, trap, guest error,
 * deadline) taking dur_ns; for a canary, may roll it back (rollout:). */
void host_version_record(keel_host *h, host_component *comp, host_version *v, bool error,
                         uint64_t dur_ns);
/* The versions still serving (stable, canary) and staged, for tier-up;
 * fills out (room for 3), returns how many. Under deploy_lock. */
size_t host_versions_live(host_component *comp, host_version **out);
/* Under deploy_lock: v (NULL is fine) serves nothing any more; freed once
 * no request can be running it. */
void host_version_retire(keel_host *h, host_version *v);
/* deploy.c: versions.c's verdict that canary is worse than the stable
 * version, why saying by how much: rolls it back, logged and audited.
 * Skipped (-1) when another change holds deploy_lock (the next check
 * decides again) or the canary changed meanwhile. */
int host_canary_auto_rollback(keel_host *h, host_component *comp, host_version *canary,
                              const char *why);
/* host.c: whether mod can serve as comp (the exports its ABI needs). */
int host_module_fits(const host_component *c, const keel_module *mod, char *why,
                     size_t whylen);
/* live.c: keel_config_reload* metrics. */
void host_live_metrics(keel_buf *b);
/* JSON of one version for /admin/components. */
void host_version_json(keel_host *h, const host_version *v, const char *role, uint32_t weight,
                       keel_buf *b);
/* Frees every version and code of comp and every retired one (host free). */
void host_versions_free(keel_host *h, host_component *comp);
void host_retired_free_all(keel_host *h);
/* Metrics of versions (keel_component_version_*). */
void host_versions_metrics(keel_host *h, keel_buf *b);
/* Recomputes h->deployment_digest. Under deploy_lock. */
void host_deployment_digest(keel_host *h);

/* tierup.c: builds, in one background thread, the optimized code of every
 * distinct module that loaded on the fast tier (into the cache, cache_dir
 * NULL: the default), then gives each component using it new code — its
 * module on the optimized tier and a fresh image — and swaps it in:
 * running requests finish on the fast code, new ones run the optimized
 * one. host_tierup_stop stops it (waiting only for a swap in progress,
 * never for a compile); the thread frees what it owns. */
void host_tierup_start(keel_host *h, const char *cache_dir);
/* Under deploy_lock: gives v, when its code is digest's on the fast tier,
 * the optimized code from the cache (a fresh image too) and swaps it in. */
void host_version_upgrade(keel_host *h, host_component *comp, host_version *v,
                          const char *digest, const char *cache_dir, double secs);
void host_tierup_stop(keel_host *h);

/* Runs a waPC invocation start to end: acquire, initializer, __guest_call
 * with c->op and c->payload, release. On HOST_OK c->response holds the
 * response. Sets c->rq->deadline_hit when the deadline ended it. */
void host_wapc_run(host_call *c, host_result *r);

/* Frees the buffers of c (not c itself). */
void host_call_free(host_call *c);

/* The running invocation of a host function's ctx; traps the guest when the
 * instance was not created by the component host. */
host_call *host_call_of(void *ctx);

/* Host pointer to guest bytes [ptr, ptr+len) of c's memory; traps the guest
 * with KEEL_TRAP_OOB when the range is outside it. */
uint8_t *host_guest_range(host_call *c, uint32_t ptr, uint32_t len);

/* Copies bytes into b (replacing its contents). */
void host_buf_set(host_buf *b, const void *data, size_t len);
void host_buf_clear(host_buf *b);

/* Describes a trap in one line: "unreachable executed in function f". */
void host_trap_text(const keel_rt_outcome *o, const host_component *c, char *buf, size_t len);

/* Logs the guest's captured stdout/stderr (a memfd) line by line. */
void host_log_output(const host_component *c, const host_request *rq, int fd,
                     const char *stream);

/* A memfd of at most cap bytes: writes beyond fail (EPERM). -1 on error. */
int host_capped_memfd(const char *name, size_t cap);
/* Bytes the guest wrote through fd's file offset (> cap means overflow). */
size_t host_memfd_used(int fd);
/* Reads [0, len) of fd into a malloc'd NUL-terminated buffer. */
char *host_memfd_read(int fd, size_t len);

/* --- host.c --- */
host_component *host_component_named(keel_host *h, const char *name, size_t len);
bool host_component_may_call(const host_component *from, size_t to);
/* Adds a response header set by the guest: 0 or -1 (invalid or over a limit). */
int host_request_add_header(host_request *rq, const char *name, size_t nlen,
                            const char *value, size_t vlen);
bool host_header_name_ok(const char *name, size_t len);
bool host_header_value_ok(const char *value, size_t len);
/* Framing headers Keel itself controls (Content-Length, ...). */
bool host_header_reserved(const char *name, size_t len);
void host_response_add_header(keel_response *resp, const char *name, size_t nlen,
                              const char *value, size_t vlen);
/* A generic error response naming the request id. */
void host_error_response(keel_response *resp, const host_request *rq, int status);

/* --- cgi.c --- */
/* Parses a CGI response (out, len bytes) into resp: headers, body, and
 * status (the Status header's, 302 for a Location without one, else 0).
 * Returns 0, or -1 with why filled (resp may then hold some headers; the
 * caller frees it either way). */
int host_cgi_parse(const char *out, size_t len, keel_response *resp, char *why, size_t whylen);
/* --- obs.c: called where requests, invocations and calls begin and end --- */

/* Builds h->metrics from the loaded components. */
void host_obs_init(keel_host *h);
void host_obs_free(keel_host *h);
/* Request start: trace context from traceparent/tracestate (a malformed one
 * is ignored: a new trace starts), the server span, the thread's log
 * context. Pairs with host_obs_request_end on the same thread, which
 * counts the request, writes the access log line and submits the span. */
void host_obs_request_begin(host_request *rq, host_component *comp);
void host_obs_request_end(host_request *rq, host_component *comp, const keel_route *route,
                          const keel_response *resp);
/* An invocation of comp starts (depth 0 or a __host_call callee) / ends.
 * The end submits its span and charges its CPU time, minus its callees',
 * to comp. outcome is a KEEL_CALL_* value; callee calls also count the
 * (caller, callee) edge. */
void host_obs_invoke_begin(host_request *rq, host_inv *inv, host_component *comp,
                           const uint8_t *op, size_t op_len);
void host_obs_invoke_end(host_request *rq, host_inv *inv, keel_call_outcome outcome);
/* A trap in comp; remembered for /health. */
void host_obs_trap(keel_host *h, host_component *comp, int kind);
/* Instance accounting (call.c): created / released. */
void host_obs_instance_begin(host_call *c);
void host_obs_instance_end(host_call *c);
/* A key-value store call of c's invocation: the time to pass as start
 * (0 when c's request is not traced, which makes _end a no-op), then its
 * span (kind client, "kv OP STORE", parent the invocation) once it
 * returned rc (0 or a length: ok; KEEL_KV_ABSENT: ok, outcome "absent";
 * other KEEL_KV_E*: an error span). */
uint64_t host_obs_store_begin(const host_call *c);
void host_obs_store_end(const host_call *c, uint64_t start, const char *op,
                        const keel_store *st, int64_t rc);
/* A line of guest output, through comp's log rate limit. */
void host_obs_guest_line(const host_component *comp, keel_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* --- health.c --- */
enum { HOST_ADMIT_NORMAL = 0, HOST_ADMIT_PROBE = 1, HOST_ADMIT_REFUSE = 2 };
/* Sets up every component's health record and starts the probe thread
 * for components exporting keel_health; host_health_free stops it. */
void host_health_init(keel_host *h);
void host_health_free(keel_host *h);
/* The breaker's decision for one more request or call into comp. */
int host_circuit_admit(host_component *comp);
/* The outcome of a request or call admitted as `admit`. */
void host_circuit_record(host_component *comp, int admit, bool error);
/* 0 closed, 1 open, 2 half-open. */
int host_circuit_state(const host_component *comp);
void host_health_trap(host_component *comp, int kind);

/* --- wagi.c --- */
void host_wagi_handle(host_request *rq, host_component *comp, const keel_route *route,
                      keel_response *resp);

/* Host functions that take precedence over keel_wasi_host_fns (fd_write,
 * to count WAGI stdout against its cap), and every table in link order. */
extern const keel_host_fn keel_host_wagi_fns[];
extern const keel_host_fn *const keel_host_link_tables[];
#define KEEL_HOST_NLINK_TABLES 5

/* --- wapc.c, api.c, kv.c --- */
extern const keel_host_fn keel_host_wapc_fns[];
extern const keel_host_fn keel_host_api_fns[];
extern const keel_host_fn keel_host_kv_fns[];

#endif
