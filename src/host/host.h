/* host.h — the component host: every component of a manifest loaded,
 * linked to its capabilities, and the running of one HTTP request through
 * one component, waPC or WAGI. Knows nothing of h2o: src/http turns wire
 * requests into keel_request and keel_response back into bytes.
 *
 * Threading: keel_host_handle runs on any worker thread, many at once; the
 * host is immutable after keel_host_new except for its atomic counters. */
#ifndef KEEL_HOST_HOST_H
#define KEEL_HOST_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/manifest.h"
#include "engine/engine.h"
#include "obs/prom.h"

typedef struct keel_host keel_host;

typedef struct keel_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} keel_header;

/* One request as the HTTP layer hands it over. Borrowed for the call. */
typedef struct keel_request {
    const char *method;
    size_t method_len;
    const char *path;            /* normalized (keel_http_normalize_path), no query */
    size_t path_len;
    const char *query;           /* without '?'; "" when none */
    size_t query_len;
    const char *uri;             /* the request target as received: path ['?' query] */
    size_t uri_len;
    const keel_header *headers;
    size_t nheaders;
    const char *body;
    size_t body_len;
    const char *remote_addr;     /* "127.0.0.1" */
    const char *server_name;     /* host part of the listen address */
    int server_port;
    const char *protocol;        /* "HTTP/1.1" */
    const char *request_id;
    uint64_t deadline_ns;        /* absolute CLOCK_MONOTONIC; 0: now + the
                                    component's limits.timeout */
} keel_request;

/* The response; owned by the caller after keel_host_handle, freed with
 * keel_response_free. */
typedef struct keel_response {
    int status;
    keel_header *headers;        /* names and values malloc'd */
    size_t nheaders;
    char *body;
    size_t body_len;
} keel_response;

void keel_response_free(keel_response *r);

typedef struct keel_host_opts {
    keel_engine_opts engine;     /* tier, cache; host_tables are set by the host */
} keel_host_opts;

/* Loads, compiles and links every component of m (which must outlive the
 * host). Logs one line per component. Errors name the component and the
 * manifest position: "keel.yaml:LINE:COL: component cart: ...". */
int keel_host_new(const keel_manifest *m, const keel_host_opts *o, keel_host **out,
                  char *err, size_t errlen);
void keel_host_free(keel_host *h);

/* Whether every store the manifest declares answers now; when one does
 * not, false with "store NAME: why" in why (for /readyz). */
bool keel_host_stores_ready(const keel_host *h, char *why, size_t len);
/* The manifest the host was made from. */
const keel_manifest *keel_host_manifest(const keel_host *h);
/* The host's stores (for backups from the admin API: keel_store_backup). */
struct keel_stores *keel_host_stores(const keel_host *h);

/* Host function tables every component may import (wasi, wapc, keel), for
 * keel check; ends with NULL. */
extern const keel_host_fn *const keel_host_fn_tables[];

/* The components, in manifest order (index = keel_route_match.component). */
size_t keel_host_component_count(const keel_host *h);
const keel_component_cfg *keel_host_component(const keel_host *h, size_t i);

typedef struct keel_route_match {
    size_t component;            /* index in the manifest */
    const keel_route *route;
} keel_route_match;

/* Routes (method, path): 0 and *out on a match, 404 when no route claims
 * the path, 405 when routes claim it but not for this method. */
int keel_host_match(const keel_host *h, const char *method, size_t method_len,
                    const char *path, size_t path_len, keel_route_match *out);

/* Admission control: takes one of the component's `concurrency` slots.
 * false when all are taken (the caller answers 503 with Retry-After). A
 * successful admit is paired with one keel_host_release. */
bool keel_host_admit(keel_host *h, size_t component);
void keel_host_release(keel_host *h, size_t component);

/* Runs req through the matched component on the calling thread, in a fresh
 * instance, and fills resp (which it zeroes first). Never fails as a call:
 * a trap or a guest error is a 500, a deadline a 504, a malformed CGI
 * response a 502 — each with a generic body naming the request id, and a
 * log line with the detail. The ABI guests see is docs/abi.md. The body
 * may be returned for HEAD; dropping it is the HTTP layer's job. */
void keel_host_handle(keel_host *h, const keel_route_match *m,
                      const keel_request *req, keel_response *resp);

/* Deferred cleanup of the instances this thread's requests used (their
 * memories are reset for reuse here, not while the request runs). Call it
 * on a thread that ran keel_host_handle once the response is sent, and
 * before keel_host_free. */
void keel_host_tidy(void);
/* ---- operability (obs.c, health.c); any thread, while the host lives ---- */

/* Appends the Prometheus text exposition of the host's metrics: requests,
 * calls, traps, rejections, instances, CPU, circuit state, component info,
 * compile times, config digest (process_* and build info are
 * keel_process_metrics'). */
void keel_host_metrics(keel_host *h, keel_buf *out);
/* Appends /health's JSON: per component status (ok | degraded | failing),
 * version, tier, requests and error ratio over the last minute, last trap,
 * circuit state, keel_health probe result. */
void keel_host_health(keel_host *h, keel_buf *out);
/* Whether every component is loaded and ready to serve; false with why. */
bool keel_host_ready(keel_host *h, char *why, size_t len);

/* ---- versions: deploy, canary, promote, rollback (deploy.c); the admin
 * thread, while the host lives. who: the token label for the audit trail.
 * Errors: KEEL_ENOTFOUND (no such component or version), KEEL_ESTATE (no
 * canary to promote, nothing to roll back to), KEEL_EINVAL / KEEL_ELINK /
 * KEEL_ECOMPILE / KEEL_EUNSUPPORTED (the wasm is refused: the running
 * versions are untouched), with the reason in err. ---- */

typedef struct keel_deploy_req {
    const char *component;
    const char *wasm_path;       /* the wasm, on disk (kept while it serves) */
    bool fast;                   /* fast tier now, optimized in the background */
    bool stage;                  /* keep it for a canary; serve nothing yet */
    const char *who;
} keel_deploy_req;

typedef struct keel_deploy_result {
    char sha[65];                /* the new version */
    char previous[65];           /* the stable version it replaced ("" when staged) */
    char tier[8];
    double compile_seconds;
} keel_deploy_result;

/* Validates, compiles and links the wasm, builds its instance image, then
 * either swaps it in as the stable version (running requests finish on the
 * old one, the next ones run the new one; an ongoing canary ends) or keeps
 * it staged for keel_host_canary. Returns once new requests run it. */
int keel_host_deploy(keel_host *h, const keel_deploy_req *r, keel_deploy_result *out,
                     char *err, size_t errlen);
/* Makes the staged (or current canary) version with sha (or a prefix of at
 * least 12 hex digits) the canary, serving weight percent (0..100). */
int keel_host_canary(keel_host *h, const char *component, const char *sha, unsigned weight,
                     const char *who, char *err, size_t errlen);
/* The canary becomes the stable version. */
int keel_host_promote(keel_host *h, const char *component, const char *who, char *err,
                      size_t errlen);
/* Ends the canary; with none, restores the previous stable version. */
int keel_host_rollback(keel_host *h, const char *component, const char *who, const char *why,
                       char *err, size_t errlen);
/* GET /admin/components and /admin/state as JSON. */
void keel_host_components_json(keel_host *h, keel_buf *out);
void keel_host_state_json(keel_host *h, keel_buf *out);
/* Frees replaced versions no request uses any more (cheap when none; any
 * thread). */
void keel_host_reap(keel_host *h);

/* ---- the serving host, replaced by reloads (live.c) ---- */

typedef struct keel_live keel_live;
/* Takes h and its manifest m (both freed by keel_live_free). o: how
 * reloads build hosts. */
keel_live *keel_live_new(keel_host *h, keel_manifest *m, const keel_host_opts *o);
void keel_live_free(keel_live *l);
/* How reloads read the manifest (default keel_manifest_load; an app built
 * by keel build reads its embedded one). */
typedef int (*keel_manifest_loader)(const char *path, keel_manifest **out, char *err,
                                    size_t errlen);
void keel_live_set_loader(keel_live *l, keel_manifest_loader load);
/* Called under the reload lock with each new host once it serves (the
 * admin listener follows it). */
void keel_live_on_swap(keel_live *l, void (*fn)(void *arg, keel_host *h), void *arg);
/* Re-reads the manifest file; a valid one replaces the host (see live.c),
 * an invalid one changes nothing: a negative KEEL_E* with the
 * FILE:LINE:COL error in err. Logged and audited either way. */
int keel_live_reload(keel_live *l, const char *who, char *err, size_t errlen);
/* The current host, kept from being freed until keel_live_unpin. */
keel_host *keel_live_pin(keel_live *l);
void keel_live_unpin(keel_live *l, keel_host *h);
keel_host *keel_live_current(keel_live *l);
/* Keeps h from being freed by keel_live_reap until keel_host_unhold; only
 * for a host the caller knows is not freed yet (the admin's attached one). */
void keel_host_hold(keel_host *h);
void keel_host_unhold(keel_host *h);
/* Frees replaced hosts nothing uses any more (cheap when none). */
void keel_live_reap(keel_live *l);
/* keel_host_free without freeing h itself (live.c keeps the struct). */
void keel_host_release_contents(keel_host *h);

#endif
