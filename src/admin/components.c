/* components.c — the admin API's component endpoints (docs/operations.md,
 * "Deploying and changing Keel"):
 *
 *   GET  /admin/components             versions, roles, weights, tiers, window stats
 *   GET  /admin/state                  deployment digest, each component's sha256s
 *   PUT  /admin/components/NAME        body: the wasm. ?tier=fast|opt (default opt),
 *                                      ?stage=canary (keep it for a canary)
 *   POST /admin/components/NAME/canary   {"wasm_sha256": "...", "weight": 5}
 *   POST /admin/components/NAME/promote
 *   POST /admin/components/NAME/rollback {"why": "..."} (optional)
 *
 * A PUT stores the wasm as STATE_DIR/versions/SHA256.wasm (admin.state_dir),
 * then the host validates, compiles and links it and builds its image
 * while the running version keeps serving; the answer (200) comes once new
 * requests run the new version. admin.c runs PUTs on a thread of their own
 * (keel_admin_deploy_prepare on the admin thread, _run on that thread), so
 * a compile never holds up the admin listener. A refused module answers 422 with the
 * reason and changes nothing. Mutating calls are authorized by the caller
 * (mutate.c). Runs on the admin thread. */
#include "admin/admin_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin/admin_parse.h"
#include "base/errors.h"
#include "base/sha256.h"
#include "obs/log.h"

#define ADMIN_MAX_WASM_BYTES (256u << 20)

static int fail(keel_buf *out, int status, const char *why)
{
    keel_buf_puts(out, "{\"error\":\"");
    keel_buf_json(out, why);
    keel_buf_puts(out, "\"}\n");
    return status;
}

/* HTTP status for a KEEL_E* of the host's deploy operations. */
static int status_of(int rc)
{
    switch (rc) {
    case KEEL_ENOTFOUND: return 404;
    case KEEL_ESTATE: return 409;
    case KEEL_EIO: case KEEL_ENOMEM: return 500;
    default: return 422;
    }
}

/* The value of query parameter key in req (keel_admin_query_param). */
static bool query_param(h2o_req_t *req, const char *key, char *out, size_t len)
{
    if (req->query_at == SIZE_MAX)
        return false;
    size_t at = req->query_at + 1;
    return keel_admin_query_param(req->path.base + at, req->path.len - at, key, out, len);
}

/* mkdir -p for the state folder's two levels. */
static int make_dirs(const char *state_dir, char *versions, size_t len, char *why, size_t wl)
{
    snprintf(versions, len, "%s/versions", state_dir);
    if ((mkdir(state_dir, 0700) != 0 && errno != EEXIST) ||
        (mkdir(versions, 0700) != 0 && errno != EEXIST)) {
        snprintf(why, wl, "cannot create %.700s (admin.state_dir): %s", versions, strerror(errno));
        return -1;
    }
    return 0;
}

/* Writes the request body to STATE_DIR/versions/SHA.wasm (atomically, by
 * rename); path gets the file, *existed whether it was there already (an
 * earlier upload of the same bytes). */
static int store_wasm(const keel_manifest *m, h2o_iovec_t body, char *path, size_t plen,
                      bool *existed, char *why, size_t wl)
{
    char dir[4096];
    if (make_dirs(m->admin.state_dir, dir, sizeof dir, why, wl))
        return -1;
    char hex[65];
    keel_sha256_hex(body.base, body.len, hex);
    char tmp[4400];
    snprintf(tmp, sizeof tmp, "%s/.upload-%ld-%s", dir, (long)getpid(), hex);
    snprintf(path, plen, "%s/%s.wasm", dir, hex);
    *existed = access(path, F_OK) == 0;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(why, wl, "cannot write %.700s: %s", tmp, strerror(errno));
        return -1;
    }
    size_t off = 0;
    while (off < body.len) {
        ssize_t w = write(fd, body.base + off, body.len - off);
        if (w <= 0) {
            snprintf(why, wl, "cannot write %.700s: %s", tmp, strerror(errno));
            close(fd);
            unlink(tmp);
            return -1;
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
        snprintf(why, wl, "cannot store %.700s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

int keel_admin_deploy_prepare(h2o_req_t *req, const char *name, const char *who,
                              keel_admin_deploy *d, keel_buf *out)
{
    memset(d, 0, sizeof *d);
    char tier[16] = "opt", stage[16] = "";
    query_param(req, "tier", tier, sizeof tier);
    query_param(req, "stage", stage, sizeof stage);
    if (strcmp(tier, "fast") != 0 && strcmp(tier, "opt") != 0)
        return fail(out, 400, "tier must be fast or opt");
    if (stage[0] && strcmp(stage, "canary") != 0)
        return fail(out, 400, "stage must be canary (or absent)");
    if (!req->entity.base || req->entity.len == 0)
        return fail(out, 400, "the request body must be the component's wasm module");
    if (req->entity.len > ADMIN_MAX_WASM_BYTES)
        return fail(out, 413, "the wasm module is over 256 MiB");
    snprintf(d->name, sizeof d->name, "%s", name);
    snprintf(d->who, sizeof d->who, "%s", who);
    d->fast = !strcmp(tier, "fast");
    d->stage = stage[0] != '\0';
    d->len = req->entity.len;
    if (!(d->body = malloc(d->len)))
        abort();
    memcpy(d->body, req->entity.base, d->len);
    return 0;
}

int keel_admin_deploy_run(keel_host *h, keel_admin_deploy *d, keel_buf *out)
{
    char why[1024], path[4400];
    bool known;
    if (store_wasm(keel_host_manifest(h), h2o_iovec_init(d->body, d->len), path, sizeof path,
                   &known, why, sizeof why))
        return fail(out, 500, why);
    keel_deploy_req r = { .component = d->name, .wasm_path = path, .fast = d->fast,
                          .stage = d->stage, .who = d->who };
    keel_deploy_result res;
    int rc = keel_host_deploy(h, &r, &res, why, sizeof why);
    if (rc) {
        keel_log(KEEL_LOG_WARN, "admin", "deploy of %s refused: %s", d->name, why);
        if (!known)
            unlink(path);   /* nothing refers to a refused upload */
        return fail(out, status_of(rc), why);
    }
    keel_buf_puts(out, "{\"component\":\"");
    keel_buf_json(out, d->name);
    keel_buf_printf(out, "\",\"sha256\":\"%s\",\"previous\":%s%s%s,\"tier\":\"%s\","
                    "\"staged\":%s,\"compile_seconds\":%.3f}\n", res.sha,
                    res.previous[0] ? "\"" : "", res.previous[0] ? res.previous : "null",
                    res.previous[0] ? "\"" : "", res.tier, r.stage ? "true" : "false",
                    res.compile_seconds);
    return 200;
}

static int canary(keel_host *h, h2o_req_t *req, const char *name, const char *who,
                  keel_buf *out)
{
    char sha[80] = "", weight[32] = "", why[512];
    const char *body = req->entity.base ? req->entity.base : "";
    size_t blen = req->entity.base ? req->entity.len : 0;
    if (keel_admin_json_member(body, blen, "wasm_sha256", sha, sizeof sha) != 1 ||
        keel_admin_json_member(body, blen, "weight", weight, sizeof weight) != 1)
        return fail(out, 400, "the body must be {\"wasm_sha256\": \"HEX\", \"weight\": 0..100}");
    char *end;
    long w = strtol(weight, &end, 10);
    if (*end || w < 0 || w > 100)
        return fail(out, 400, "weight must be an integer percent 0..100");
    int rc = keel_host_canary(h, name, sha, (unsigned)w, who, why, sizeof why);
    if (rc)
        return fail(out, status_of(rc), why);
    keel_host_components_json(h, out);
    return 200;
}

static int promote_or_rollback(keel_host *h, h2o_req_t *req, const char *name, bool promote,
                               const char *who, keel_buf *out)
{
    char why[512], reason[256] = "";
    int rc;
    if (promote) {
        rc = keel_host_promote(h, name, who, why, sizeof why);
    } else {
        if (req->entity.base && req->entity.len &&
            keel_admin_json_member(req->entity.base, req->entity.len, "why", reason,
                                   sizeof reason) < 0)
            return fail(out, 400, "the body, when given, must be {\"why\": \"...\"}");
        rc = keel_host_rollback(h, name, who, reason[0] ? reason : NULL, why, sizeof why);
    }
    if (rc)
        return fail(out, status_of(rc), why);
    keel_host_components_json(h, out);
    return 200;
}

bool keel_admin_is_component_call(h2o_req_t *req)
{
    static const char pre[] = "/admin/components/";
    return req->path_normalized.len > sizeof pre - 1 &&
           memcmp(req->path_normalized.base, pre, sizeof pre - 1) == 0;
}

int keel_admin_component_call(keel_host *h, h2o_req_t *req, const char *who, keel_buf *out,
                              const char **allow)
{
    static const char pre[] = "/admin/components/";
    h2o_iovec_t p = req->path_normalized;
    const char *rest = p.base + sizeof pre - 1;
    size_t rl = p.len - (sizeof pre - 1);
    const char *slash = memchr(rest, '/', rl);
    size_t nl = slash ? (size_t)(slash - rest) : rl;
    char name[KEEL_MAX_NAME + 1];
    if (nl == 0 || nl > KEEL_MAX_NAME)
        return fail(out, 404, "no such component");
    memcpy(name, rest, nl);
    name[nl] = '\0';
    const char *action = slash ? slash + 1 : "";
    size_t al = slash ? rl - nl - 1 : 0;
    bool put = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("PUT"));
    bool post = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"));
    if (!h)
        return fail(out, 503, "components are still loading");
    if (al == 0) {
        /* PUT is served by admin.c off the admin thread (deploy.c) */
        *allow = "PUT";
        (void)put;
        (void)who;
        return fail(out, 405, "method not allowed (PUT)");
    }
    *allow = "POST";
    if (al == 6 && !memcmp(action, "canary", 6))
        return post ? canary(h, req, name, who, out) : fail(out, 405, "method not allowed (POST)");
    if (al == 7 && !memcmp(action, "promote", 7))
        return post ? promote_or_rollback(h, req, name, true, who, out)
                    : fail(out, 405, "method not allowed (POST)");
    if (al == 8 && !memcmp(action, "rollback", 8))
        return post ? promote_or_rollback(h, req, name, false, who, out)
                    : fail(out, 405, "method not allowed (POST)");
    *allow = NULL;
    return fail(out, 404, "no such endpoint (canary, promote, rollback)");
}
