/* audit.h — the audit trail (admin.audit_log): an append-only JSON-lines
 * file, one record per event, each record carrying the SHA-256 of the
 * record before it, so an edited, removed or reordered record is found by
 * `keel audit verify FILE`.
 *
 * The process has at most one audit log (opened by `keel up`); keel_audit
 * is a no-op returning 0 while none is open, so any layer may record. */
#ifndef KEEL_ADMIN_AUDIT_H
#define KEEL_ADMIN_AUDIT_H

#include <stddef.h>

/* Opens (creating, mode 0600) path for appending and takes the hash of its
 * last record as the chain's head (the file is verified first: a broken
 * chain refuses to open, naming the first bad record). 0, or a negative
 * KEEL_E* with err filled. */
int keel_audit_open(const char *path, char *err, size_t errlen);
/* Flushes and closes the process's audit log. Safe when none is open. */
void keel_audit_close(void);

/* Appends one record and fsyncs it before returning:
 *   {"seq":N,"ts":"RFC 3339 UTC","event":EVENT,"who":WHO,FIELDS,"prev":"hex"}
 * event: a dotted name ("component.deployed", "admin.auth_failed", ...);
 * who: the token identity label, "system" for Keel itself, or "cli";
 * fields: JSON object members without braces (strings escaped by the
 * caller, e.g. with keel_buf_json), or NULL. Thread-safe. 0, or a
 * negative KEEL_E* (logged) when the record could not be written. */
int keel_audit(const char *event, const char *who, const char *fields);

/* Checks the chain of the audit log at path: 0 when intact (with the
 * record count in *records), else a negative KEEL_E* with err naming the
 * first bad record by line number and why. */
int keel_audit_verify(const char *path, size_t *records, char *err, size_t errlen);

#endif
