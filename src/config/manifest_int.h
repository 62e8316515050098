/* manifest_int.h — private to src/config: the loading context and the
 * node helpers manifest.c lends to the files that parse other sections
 * (manifest_component.c: one component; stores.c: region, stores, a
 * component's kv and residency; manifest_obs.c: admin, observability,
 * shutdown, a component's slo and circuit).
 * Each helper reports "PATH:LINE:COL: [component NAME: ]message" and
 * returns KEEL_EINVAL on error, 0 on success. */
#ifndef KEEL_CONFIG_MANIFEST_INT_H
#define KEEL_CONFIG_MANIFEST_INT_H

#include <stdarg.h>
#include <stdbool.h>

#include "config/manifest.h"
#include "config/yaml.h"

typedef struct ctx {
    const char *path;          /* as given, for messages */
    const char *dir;           /* absolute folder of the manifest */
    const char *comp;          /* component being read, for messages */
    const keel_manifest_text *src;   /* loaded from text (an app), else NULL */
    char *err;
    size_t errlen;
} ctx;

int keel_mf_fail(ctx *c, keel_pos pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#ifdef __clang_analyzer__
/* The static analyzer does not follow variadic calls: state the contract
 * (the result is KEEL_EINVAL) so failures are not explored as successes. */
#define keel_mf_fail(...) (keel_mf_fail(__VA_ARGS__), KEEL_EINVAL)
#endif
/* Every key of map is one of allowed (NULL-terminated); where prefixes
 * the message. */
int keel_mf_check_keys(ctx *c, const keel_ynode *map, const char *const *allowed,
                       const char *where);
/* A non-null scalar, copied (malloc) into *out. */
int keel_mf_string(ctx *c, const keel_ynode *v, const char *where, const char *name,
                   char **out);
/* A collection of kind: 0; null: 1 (an empty collection); else an error. */
int keel_mf_want(ctx *c, const keel_ynode *v, keel_ykind kind, const char *where,
                 const char *name);

/* strdup / calloc (n may be 0) that abort when memory runs out. */
char *keel_mf_xstrdup(const char *s);
void *keel_mf_xcalloc(size_t n, size_t size);

/* manifest_component.c: the component named by key (its name is checked
 * here) with mapping v, into cc (zeroed by the caller): limits defaulted,
 * then every key read; wasm and files paths are resolved against c->dir
 * (an app's wasm comes from c->src instead). Sets c->comp to the name for
 * messages and clears it on success. On error cc keeps what was read so
 * far: the caller frees it with keel_mf_free_component. */
int keel_mf_parse_component(ctx *c, const keel_ynode *key, const keel_ynode *v,
                            keel_component_cfg *cc);
/* Frees what cc owns (not cc itself); cc may be partly read. */
void keel_mf_free_component(keel_component_cfg *cc);
/* The names of the KEEL_M_* bits set in bits, as "GET, POST" into buf
 * (truncated to len), or "all methods" when bits is 0. */
void keel_mf_method_names(unsigned bits, char *buf, size_t len);

/* stores.c: top-level region and stores (m->region, m->stores), read
 * before the components. */
int keel_mf_parse_state(ctx *c, const keel_ynode *root, keel_manifest *m);
/* stores.c: a component's kv and residency keys (v is its mapping). */
int keel_mf_parse_component_state(ctx *c, const keel_ynode *v, keel_component_cfg *cc);
/* stores.c: every kv entry names a declared store. */
int keel_mf_check_kv(ctx *c, const keel_manifest *m, const keel_ynode *comps);
void keel_mf_free_state(keel_manifest *m);
void keel_mf_free_component_state(keel_component_cfg *cc);

/* manifest_obs.c: fill m / cc from their sections; defaults first. */
void mf_obs_defaults(keel_manifest *m);
int mf_parse_admin(ctx *c, const keel_ynode *v, keel_manifest *m);
int mf_parse_rollout(ctx *c, const keel_ynode *v, keel_manifest *m);
int mf_parse_observability(ctx *c, const keel_ynode *v, keel_manifest *m);
int mf_parse_shutdown(ctx *c, const keel_ynode *v, keel_manifest *m);
int mf_parse_slo(ctx *c, const keel_ynode *v, keel_component_cfg *cc);
int mf_parse_circuit(ctx *c, const keel_ynode *v, keel_component_cfg *cc);
void mf_obs_free(keel_manifest *m);

#endif
