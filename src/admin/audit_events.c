/* audit_events.c — audit records that several callers write alike:
 * config.loaded / config.reloaded (which manifest, by the SHA-256 of its
 * bytes, and which code, by the SHA-256 of every component's wasm file)
 * and store.backup / store.restore. */
#include "admin/audit.h"

#include <errno.h>
#include <string.h>

#include "base/sha256.h"
#include "config/manifest.h"
#include "obs/prom.h"

/* "NAME":"HEX" (or "unreadable: why") of one file into b. */
static void digest_member(keel_buf *b, const char *name, const char *path)
{
    char hex[65];
    keel_buf_puts(b, "\"");
    keel_buf_json(b, name);
    keel_buf_puts(b, "\":\"");
    if (keel_sha256_file(path, hex, NULL) == 0) {
        keel_buf_puts(b, hex);
    } else {
        keel_buf_puts(b, "unreadable: ");
        keel_buf_json(b, strerror(errno));
    }
    keel_buf_puts(b, "\"");
}

int keel_audit_config(const char *event, const char *who, const struct keel_manifest *m)
{
    if (!keel_audit_is_open())
        return 0;
    keel_buf b = { 0 };
    const char *slash = strrchr(m->path, '/');
    keel_buf_puts(&b, "\"manifest\":\"");
    keel_buf_json(&b, m->dir);
    keel_buf_puts(&b, "/");
    keel_buf_json(&b, slash ? slash + 1 : m->path);
    keel_buf_puts(&b, "\",");
    digest_member(&b, "sha256", m->path);
    keel_buf_puts(&b, ",\"components\":{");
    for (size_t i = 0; i < m->ncomponents; i++) {
        if (i)
            keel_buf_puts(&b, ",");
        digest_member(&b, m->components[i].name, m->components[i].wasm);
    }
    keel_buf_puts(&b, "}");
    int rc = keel_audit(event, who, b.data);
    keel_buf_free(&b);
    return rc;
}

int keel_audit_store(const char *event, const char *who, const char *store, const char *file,
                     const char *sha256, const char *failure)
{
    if (!keel_audit_is_open())
        return 0;
    keel_buf b = { 0 };
    keel_buf_puts(&b, "\"store\":\"");
    keel_buf_json(&b, store);
    keel_buf_puts(&b, "\",\"file\":\"");
    keel_buf_json(&b, file);
    keel_buf_puts(&b, "\",\"sha256\":\"");
    keel_buf_json(&b, sha256 && *sha256 ? sha256 : "unknown");
    keel_buf_printf(&b, "\",\"outcome\":\"%s\"", failure ? "refused" : "ok");
    if (failure) {
        keel_buf_puts(&b, ",\"why\":\"");
        keel_buf_json(&b, failure);
        keel_buf_puts(&b, "\"");
    }
    int rc = keel_audit(event, who, b.data);
    keel_buf_free(&b);
    return rc;
}
