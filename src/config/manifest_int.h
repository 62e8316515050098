/* manifest_int.h — private to src/config: the parse context and the helpers
 * manifest.c shares with manifest_obs.c (the admin, observability, slo and
 * circuit sections): manifest.c exports thin wrappers of its static
 * helpers; manifest_obs.c has its own mf_fail. */
#ifndef KEEL_CONFIG_MANIFEST_INT_H
#define KEEL_CONFIG_MANIFEST_INT_H

#include <stdbool.h>

#include "config/manifest.h"
#include "config/yaml.h"

typedef struct ctx {
    const char *path;          /* as given, for messages */
    const char *dir;           /* absolute folder of the manifest */
    const char *comp;          /* component being read, for messages */
    char *err;
    size_t errlen;
} ctx;

/* Formats "PATH:LINE:COL: [component NAME: ]message" into c->err and
 * returns KEEL_EINVAL (the same format as manifest.c's own errors). */
__attribute__((format(printf, 3, 4)))
int mf_fail(ctx *c, keel_pos pos, const char *fmt, ...);
/* Every key of map must be in allowed (NULL-terminated). where prefixes
 * the message ("", "routes[0]: ", ...). */
int mf_check_keys(ctx *c, const keel_ynode *map, const char *const *allowed,
                  const char *where, bool top);
/* A scalar that is not null, copied into *out (malloc'd). */
int mf_get_string(ctx *c, const keel_ynode *v, const char *where, const char *name,
                  char **out);
/* A collection of kind, or null (an empty collection: returns 1). */
int mf_want(ctx *c, const keel_ynode *v, keel_ykind kind, const char *where,
            const char *name);

/* manifest_obs.c: fill m / cc from their sections; defaults first. */
void mf_obs_defaults(keel_manifest *m);
int mf_parse_admin(ctx *c, const keel_ynode *v, keel_manifest *m);
int mf_parse_observability(ctx *c, const keel_ynode *v, keel_manifest *m);
int mf_parse_slo(ctx *c, const keel_ynode *v, keel_component_cfg *cc);
int mf_parse_circuit(ctx *c, const keel_ynode *v, keel_component_cfg *cc);
void mf_obs_free(keel_manifest *m);

#endif
