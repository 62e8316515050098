/* mutate.c — the admin API's mutating endpoints and their authorization.
 *
 *   POST /admin/stores/NAME/backup
 *       An online, consistent snapshot of SQLite store NAME (the same as
 *       `keel backup`) into BACKUP_DIR/NAME-YYYYMMDDTHHMMSSZ.db plus its
 *       .sha256, where BACKUP_DIR is "backups" beside the manifest. Answers
 *       200 {"store","file","bytes","sha256"}; 404 for an unknown store;
 *       422 when the backup fails (a Redis store: use Redis's own
 *       persistence, docs/operations.md), with the reason.
 *
 * Every mutating request needs "Authorization: Bearer TOKEN" with a token
 * of admin.token_file (auth.c: one token, or one "LABEL TOKEN" per
 * operator): 401 without a bearer token, 403 with a wrong one, 403 when no
 * token_file is configured (mutating endpoints are then off). Every
 * attempt is logged with its outcome; refusals and backups are recorded in
 * the audit trail (admin.auth_failed, store.backup with who = the token's
 * label). Runs on the admin thread. */
#include "admin/admin_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "admin/audit.h"
#include "base/errors.h"
#include "obs/log.h"
#include "store/store.h"

bool keel_admin_is_mutation(h2o_req_t *req)
{
    static const char pre[] = "/admin/";
    return req->path_normalized.len > sizeof pre - 1 &&
           memcmp(req->path_normalized.base, pre, sizeof pre - 1) == 0;
}

/* NAME of "/admin/stores/NAME/backup", or a 0-length iovec. */
static h2o_iovec_t backup_store_name(h2o_req_t *req)
{
    static const char pre[] = "/admin/stores/", post[] = "/backup";
    h2o_iovec_t p = req->path_normalized;
    size_t pl = sizeof pre - 1, ql = sizeof post - 1;
    if (p.len <= pl + ql || memcmp(p.base, pre, pl) != 0 ||
        memcmp(p.base + p.len - ql, post, ql) != 0)
        return h2o_iovec_init(NULL, 0);
    h2o_iovec_t name = h2o_iovec_init(p.base + pl, p.len - pl - ql);
    if (memchr(name.base, '/', name.len))
        return h2o_iovec_init(NULL, 0);
    return name;
}

int keel_admin_mutate(keel_host *h, h2o_req_t *req, keel_buf *out)
{
    const keel_manifest *m = h ? keel_host_manifest(h) : NULL;
    char why[512], who[KEEL_ADMIN_MAX_LABEL + 1];
    if (keel_admin_is_component_call(req)) {
        int st = keel_admin_authorize(m, req, who, sizeof who, why, sizeof why);
        if (st) {
            keel_log(KEEL_LOG_WARN, "admin", "%.*s %.*s refused (%d): %s",
                     (int)req->method.len, req->method.base, (int)req->path_normalized.len,
                     req->path_normalized.base, st, why);
            keel_buf_puts(out, "{\"error\":\"");
            keel_buf_json(out, why);
            keel_buf_puts(out, "\"}\n");
            return st;
        }
        const char *allow = NULL;
        return keel_admin_component_call(h, req, who, out, &allow);
    }
    h2o_iovec_t name = backup_store_name(req);
    if (!name.len) {
        keel_buf_puts(out, "{\"error\":\"no such admin endpoint (POST "
                           "/admin/stores/NAME/backup)\"}\n");
        return 404;
    }
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"))) {
        keel_buf_puts(out, "{\"error\":\"method not allowed (POST)\"}\n");
        return 405;
    }
    int st = keel_admin_authorize(m, req, who, sizeof who, why, sizeof why);
    if (st) {
        keel_log(KEEL_LOG_WARN, "admin", "backup of store %.*s refused (%d): %s",
                 (int)name.len, name.base, st, why);
        keel_buf_puts(out, "{\"error\":\"");
        keel_buf_json(out, why);
        keel_buf_puts(out, "\"}\n");
        return st;
    }
    keel_store *s = keel_stores_find(keel_host_stores(h), name.base, name.len);
    if (!s) {
        keel_buf_puts(out, "{\"error\":\"no such store\"}\n");
        return 404;
    }
    char dir[4096], file[4400];
    snprintf(dir, sizeof dir, "%s/backups", m->dir);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(why, sizeof why, "cannot create the backups folder beside the manifest: %s",
                 strerror(errno));
        keel_buf_puts(out, "{\"error\":\"");
        keel_buf_json(out, why);
        keel_buf_puts(out, "\"}\n");
        return 500;
    }
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    snprintf(file, sizeof file, "%s/%.*s-%s.db", dir, (int)name.len, name.base, stamp);
    uint64_t bytes = 0;
    char hex[65] = "";
    if (keel_store_backup(s, file, &bytes, hex, why, sizeof why) != 0) {
        keel_log(KEEL_LOG_ERROR, "admin", "backup of store %.*s failed: %s", (int)name.len,
                 name.base, why);
        keel_audit_store("store.backup", who, keel_store_cfg_of(s)->name, file, NULL, why);
        keel_buf_puts(out, "{\"error\":\"");
        keel_buf_json(out, why);
        keel_buf_puts(out, "\"}\n");
        return 422;
    }
    keel_log(KEEL_LOG_INFO, "admin", "backup of store %.*s by %s written to %s (%llu bytes, "
             "sha256 %s)", (int)name.len, name.base, who, file, (unsigned long long)bytes, hex);
    keel_audit_store("store.backup", who, keel_store_cfg_of(s)->name, file, hex, NULL);
    keel_buf_puts(out, "{\"store\":\"");
    keel_buf_json(out, keel_store_cfg_of(s)->name);
    keel_buf_puts(out, "\",\"file\":\"");
    keel_buf_json(out, file);
    keel_buf_printf(out, "\",\"bytes\":%llu,\"sha256\":\"%s\"}\n", (unsigned long long)bytes,
                    hex);
    return 200;
}
