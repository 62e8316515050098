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

#endif
