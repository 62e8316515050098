/* manifest.h — the model of keel.yaml (the contract in docs/config.md).
 *
 * keel_manifest_load parses the file with libfyaml and validates it; every
 * error is one line "FILE:LINE:COL: message" naming the offending node, and
 * the manifest is all or nothing. Paths in the model are resolved against
 * the manifest's folder. The model is immutable after load and owned by the
 * keel_manifest (free with keel_manifest_free). */
#ifndef KEEL_CONFIG_MANIFEST_H
#define KEEL_CONFIG_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Named ceilings on what a manifest may declare. */
#define KEEL_MAX_COMPONENTS 1024
#define KEEL_MAX_ROUTES 1024          /* per component */
#define KEEL_MAX_CALLS 1024           /* per component */
#define KEEL_MAX_NAME 64              /* component name bytes: [a-z0-9_-] */
#define KEEL_MAX_STORES 256           /* stores: entries */
#define KEEL_MAX_REGIONS 64           /* regions listed in one regions:/residency: */
#define KEEL_MAX_REGION_NAME 64       /* region name bytes: [a-z0-9-] */
#define KEEL_MAX_STORE_PREFIX 256     /* bytes of a redis store's key prefix */

/* Defaults of the limits section. */
#define KEEL_DEFAULT_MEMORY (64ull << 20)
#define KEEL_DEFAULT_TIMEOUT_NS (5ull * 1000000000ull)
#define KEEL_DEFAULT_CONCURRENCY 64u
#define KEEL_DEFAULT_BODY (1ull << 20)
#define KEEL_DEFAULT_LISTEN "127.0.0.1:8080"
#define KEEL_DEFAULT_MAX_VALUE (1ull << 20)     /* stores: max_value */
#define KEEL_MAX_MAX_VALUE (64ull << 20)        /* its ceiling */

/* Bounds of the limits section (inclusive). */
#define KEEL_MIN_MEMORY (64ull << 10)          /* one wasm page */
#define KEEL_MAX_MEMORY (4ull << 30)           /* all of wasm32 */
#define KEEL_MIN_TIMEOUT_NS 1000000ull         /* 1ms */
#define KEEL_MAX_TIMEOUT_NS (3600ull * 1000000000ull)  /* 1h */
#define KEEL_MAX_CONCURRENCY 65536u
#define KEEL_MAX_BODY (1ull << 30)

/* The manifest file itself. */
#define KEEL_MAX_MANIFEST_BYTES (4u << 20)

typedef enum keel_abi { KEEL_ABI_WAPC = 0, KEEL_ABI_WAGI = 1 } keel_abi;

/* HTTP methods as a bit set; 0 in a route means all. */
enum {
    KEEL_M_GET = 1 << 0, KEEL_M_HEAD = 1 << 1, KEEL_M_POST = 1 << 2,
    KEEL_M_PUT = 1 << 3, KEEL_M_DELETE = 1 << 4, KEEL_M_PATCH = 1 << 5,
    KEEL_M_OPTIONS = 1 << 6,
};

typedef struct keel_pos {
    int line, col;            /* 1-based, of the node in the manifest */
} keel_pos;

typedef struct keel_route {
    char *path;               /* as written, without the trailing "*" */
    bool prefix;              /* written "/x/" + "*": matches /x/ and below, and /x */
    unsigned methods;         /* KEEL_M_* bits, 0 = all */
    char *operation;          /* wapc only; default "handle" */
    keel_pos pos;
} keel_route;

typedef struct keel_kv {
    char *key, *value;
} keel_kv;

typedef struct keel_mount {
    char *host;               /* absolute */
    char *guest;
    bool readonly;
} keel_mount;

typedef struct keel_limits {
    uint64_t memory;          /* bytes of linear memory */
    uint64_t timeout_ns;      /* whole request, nested calls included */
    uint32_t concurrency;     /* requests in flight */
    uint64_t body;            /* request body bytes */
} keel_limits;

typedef enum keel_store_backend {
    KEEL_STORE_SQLITE = 0, KEEL_STORE_REDIS = 1,
} keel_store_backend;

/* One entry of stores: (docs/config.md). */
typedef struct keel_store_cfg {
    char *name;               /* [a-z0-9_-], 1 to KEEL_MAX_NAME bytes */
    keel_store_backend backend;
    char *path;               /* sqlite: absolute (its folder need not exist yet) */
    char *url;                /* redis: redis://[:PASSWORD@]HOST[:PORT][/DB] */
    char *prefix;             /* redis: key prefix ("" when none) */
    char **regions;           /* where the data may live; none: anywhere */
    size_t nregions;
    uint64_t max_value;       /* bytes of one value */
    uint64_t max_size;        /* sqlite: database size cap in bytes, 0 = none */
    keel_pos pos;             /* of the store's key */
} keel_store_cfg;
/* slo: the objectives `keel alerts` turns into rules. */
typedef struct keel_slo {
    bool set;
    double availability;      /* percent, e.g. 99.9 */
    bool has_latency;
    double latency_p;         /* fraction of requests, e.g. 0.99 */
    uint64_t latency_ns;      /* ... answered under this */
    keel_pos pos;
} keel_slo;

/* circuit: the breaker (off unless error_ratio is set). */
typedef struct keel_circuit {
    bool enabled;
    double error_ratio;       /* 0 < r <= 1: trips at or above it */
    uint64_t window_ns;       /* error ratio measured over this (1s steps) */
    uint32_t min_requests;    /* in the window, before it may trip */
    uint64_t cooldown_ns;     /* open this long, then one probe request */
} keel_circuit;

#define KEEL_DEFAULT_CIRCUIT_WINDOW_NS (10ull * 1000000000ull)
#define KEEL_DEFAULT_CIRCUIT_MIN_REQUESTS 20u
#define KEEL_DEFAULT_CIRCUIT_COOLDOWN_NS (10ull * 1000000000ull)
#define KEEL_MAX_CIRCUIT_WINDOW_NS (60ull * 1000000000ull)

typedef struct keel_component_cfg {
    char *name;
    char *wasm;               /* absolute path */
    keel_abi abi;
    keel_route *routes;
    size_t nroutes;
    char **calls;             /* names of components this one may call */
    size_t ncalls;
    keel_kv *config;
    size_t nconfig;
    keel_kv *env;
    size_t nenv;
    keel_mount *files;
    size_t nfiles;
    keel_limits limits;
    char **kv;                /* names of the stores it may use */
    size_t nkv;
    keel_pos kv_pos;          /* of its kv: value */
    char **residency;         /* regions its data may go to; none: unrestricted */
    size_t nresidency;
    keel_pos residency_pos;
    keel_slo slo;
    keel_circuit circuit;
    keel_pos pos;             /* of the component's key */
    keel_pos wasm_pos;        /* of its wasm: value */
} keel_component_cfg;

/* admin: the operator listener (metrics, health; mutating endpoints later). */
typedef struct keel_admin_cfg {
    char *listen;             /* host:port; default KEEL_DEFAULT_ADMIN_LISTEN */
    bool listen_set;          /* written in the manifest (a bind failure is fatal) */
    char *token_file;         /* absolute, or NULL */
    char *audit_log;          /* absolute, or NULL */
    char *state_dir;          /* absolute: versions uploaded through the admin API */
} keel_admin_cfg;

/* rollout: when Keel rolls a canary back by itself. Over the last `window`,
 * once the canary served min_requests, it is rolled back when its error
 * ratio (5xx + traps) exceeds the stable version's by more than
 * max_error_ratio_increase, or its p99 latency is over max_p99_ratio times
 * the stable version's (and over min_p99 — below that, latency noise is
 * not a verdict). */
typedef struct keel_rollout_cfg {
    uint64_t window_ns;
    uint32_t min_requests;
    double max_error_ratio_increase;
    double max_p99_ratio;
    uint64_t min_p99_ns;
} keel_rollout_cfg;

#define KEEL_DEFAULT_STATE_DIR "keel-state"
#define KEEL_DEFAULT_ROLLOUT_WINDOW_NS (60ull * 1000000000ull)
#define KEEL_DEFAULT_ROLLOUT_MIN_REQUESTS 100u
#define KEEL_DEFAULT_ROLLOUT_ERROR_INCREASE 0.01
#define KEEL_DEFAULT_ROLLOUT_P99_RATIO 1.5
#define KEEL_DEFAULT_ROLLOUT_MIN_P99_NS 5000000ull        /* 5 ms */

/* observability: logs, traces, health probes. */
typedef struct keel_obs_cfg {
    int log_level;            /* KEEL_LOG_* */
    int log_format;           /* KEEL_LOG_JSON | KEEL_LOG_TEXT */
    bool access_log;
    char *otlp_endpoint;      /* NULL: no traces exported */
    double trace_sample;      /* 0..1 */
    uint32_t guest_log_rate;  /* guest lines per second per component, 0 = unlimited */
    uint64_t health_interval_ns;   /* keel_health probes */
    uint64_t health_timeout_ns;
} keel_obs_cfg;

#define KEEL_DEFAULT_ADMIN_LISTEN "127.0.0.1:9090"
#define KEEL_DEFAULT_GUEST_LOG_RATE 1000u
#define KEEL_MAX_GUEST_LOG_RATE 1000000u
#define KEEL_DEFAULT_HEALTH_INTERVAL_NS (10ull * 1000000000ull)
#define KEEL_DEFAULT_HEALTH_TIMEOUT_NS (1ull * 1000000000ull)

/* shutdown: the stop sequence of `keel up` (docs/operations.md). */
typedef struct keel_shutdown_cfg {
    uint64_t drain_delay_ns;  /* after SIGTERM, keep serving this long (readiness 503) */
    uint64_t grace_ns;        /* then give requests in flight this long */
} keel_shutdown_cfg;

#define KEEL_DEFAULT_DRAIN_DELAY_NS 0ull
#define KEEL_MAX_DRAIN_DELAY_NS (600ull * 1000000000ull)      /* 10 min */
#define KEEL_DEFAULT_GRACE_NS (30ull * 1000000000ull)
#define KEEL_MIN_GRACE_NS (1ull * 1000000000ull)
#define KEEL_MAX_GRACE_NS (3600ull * 1000000000ull)           /* 1 h */

typedef struct keel_manifest {
    char *path;               /* as given */
    char *dir;                /* absolute folder of the manifest */
    char *listen;             /* host:port */
    char *region;             /* this instance's region (KEEL_REGION wins); NULL: none */
    bool region_from_env;     /* region came from KEEL_REGION */
    keel_pos region_pos;
    keel_store_cfg *stores;
    size_t nstores;
    keel_admin_cfg admin;
    keel_rollout_cfg rollout;
    keel_obs_cfg obs;
    keel_shutdown_cfg shutdown;
    keel_component_cfg *components;
    size_t ncomponents;
} keel_manifest;

/* Loads and validates path. On error returns a negative KEEL_E* and puts
 * "PATH:LINE:COL: message" in err. */
int keel_manifest_load(const char *path, keel_manifest **out, char *err,
                       size_t errlen);
void keel_manifest_free(keel_manifest *m);

/* A manifest that is not a file of its own: the one an app built by
 * `keel build` carries. Relative paths (stores, admin files, files: host
 * folders) resolve against dir, which must exist; a component's wasm: is
 * not looked for on disk but handed to wasm(), which returns what the
 * model keeps as the component's wasm (malloc'd; what the engine is later
 * asked to load), or NULL with the reason in why. */
typedef struct keel_manifest_text {
    const char *name;         /* for messages and m->path, e.g. "embedded:keel.yaml" */
    const char *text;
    size_t len;
    const char *dir;
    char *(*wasm)(void *ud, const char *component, const char *written, char *why,
                  size_t whylen);
    void *ud;
} keel_manifest_text;

/* Loads and validates src, as keel_manifest_load does a file. */
int keel_manifest_load_text(const keel_manifest_text *src, keel_manifest **out, char *err,
                            size_t errlen);

/* The store called name, or NULL. */
const keel_store_cfg *keel_manifest_store(const keel_manifest *m, const char *name);

/* The component called name, or NULL. */
const keel_component_cfg *keel_manifest_component(const keel_manifest *m,
                                                  const char *name);

#endif
