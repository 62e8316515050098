/* audit_config.c — the config.loaded / config.reloaded audit record:
 * which manifest (path and SHA-256 of its bytes) and which code (SHA-256
 * of every component's wasm file) a process runs. */
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
    keel_buf_puts(&b, "\"manifest\":\"");
    keel_buf_json(&b, m->path);
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
