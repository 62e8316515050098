/* admin_int.h — private to src/admin: what admin.c's request handler calls
 * in mutate.c (mutating endpoints) and auth.c (their bearer-token check). */
#ifndef KEEL_ADMIN_ADMIN_INT_H
#define KEEL_ADMIN_ADMIN_INT_H

#define H2O_USE_EPOLL 1
#include <h2o.h>

#include <stdbool.h>
#include <stddef.h>

#include "config/manifest.h"
#include "host/host.h"
#include "obs/prom.h"

/* Whether req is for a mutating endpoint (/admin/...). */
bool keel_admin_is_mutation(h2o_req_t *req);
/* Bytes of a token's identity label (admin.token_file "LABEL TOKEN"). */
#define KEEL_ADMIN_MAX_LABEL 64

/* Checks req's bearer token against the tokens of m's admin.token_file
 * (auth.c explains its format): 0 with the matched token's label in who
 * ("admin" for a file holding one bare token), or the status to answer
 * (401 no bearer token, 403 wrong token, unreadable or malformed file, or
 * no token_file) with the reason in why. A refusal is recorded in the
 * audit trail (admin.auth_failed) here; the caller only logs it. who
 * needs KEEL_ADMIN_MAX_LABEL + 1 bytes. */
int keel_admin_authorize(const keel_manifest *m, h2o_req_t *req, char *who, size_t wholen,
                         char *why, size_t len);
/* Serves a mutating request against h (NULL while loading): JSON into out,
 * returns the status. */
int keel_admin_mutate(keel_host *h, h2o_req_t *req, keel_buf *out);

/* components.c: whether req is for /admin/components/NAME[/ACTION], and
 * serving it (already authorized as who) against h (NULL while loading):
 * JSON into out, returns the status; *allow names the method a 405 wants. */
bool keel_admin_is_component_call(h2o_req_t *req);
int keel_admin_component_call(keel_host *h, h2o_req_t *req, const char *who, keel_buf *out,
                              const char **allow);

/* A PUT /admin/components/NAME: prepared on the admin thread (parameters
 * checked, the body copied: 0, or the status with JSON in out), run on a
 * thread of its own against a held host (the status, JSON in out). */
typedef struct keel_admin_deploy {
    char name[KEEL_MAX_NAME + 1];
    char who[64];
    bool fast, stage;
    char *body;                   /* malloc'd copy of the wasm; the caller frees */
    size_t len;
} keel_admin_deploy;
int keel_admin_deploy_prepare(h2o_req_t *req, const char *name, const char *who,
                              keel_admin_deploy *d, keel_buf *out);
int keel_admin_deploy_run(keel_host *h, keel_admin_deploy *d, keel_buf *out);

#endif
