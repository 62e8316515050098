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

#include "obs/prom.h"

/* Opens (creating, mode 0600) path for appending and takes the hash of its
 * last record as the chain's head (the file is verified first: a broken
 * chain refuses to open, naming the first bad record). A truncated last
 * line (a crash while it was written) is a broken chain too: open refuses
 * rather than chain onto it, and the error says how to drop it. Opening
 * while a log is open replaces it (the old one stays open on failure).
 * Several processes may append to one file (keel up, keel backup): each
 * append holds an flock(2) on it and first reads the file's current last
 * record. 0, or a negative KEEL_E* with err filled. */
int keel_audit_open(const char *path, char *err, size_t errlen);
/* Flushes and closes the process's audit log. Safe when none is open. */
void keel_audit_close(void);
/* Whether an audit log is open. */
int keel_audit_is_open(void);
/* keel_audit_records_total and keel_audit_failures_total (records this
 * process appended / events it could not record) in Prometheus text. */
void keel_audit_metrics(keel_buf *b);

/* Appends one record and fsyncs it before returning:
 *   {"seq":N,"ts":"RFC 3339 UTC","event":EVENT,"who":WHO,FIELDS,"prev":"hex"}
 * event: a dotted name ("component.deployed", "admin.auth_failed", ...);
 * who: the token identity label, "system" for Keel itself, or "cli";
 * fields: JSON object members without braces (strings escaped by the
 * caller, e.g. with keel_buf_json), or NULL. Thread-safe. 0, or a
 * negative KEEL_E* (logged) when the record could not be written: fields
 * that would not make one valid JSON line, or an I/O error.
 *
 * When the file at the log's path is no longer the one open (renamed away
 * by `keel audit rotate` or by hand, or emptied by copytruncate), the
 * record goes to the file now at the path; an empty one first gets an
 * audit.rotated record continuing the chain. */
int keel_audit(const char *event, const char *who, const char *fields);

/* Records config.loaded (or event, e.g. "config.reloaded"): the manifest's
 * absolute path and the SHA-256 of its bytes, and the SHA-256 of each component's
 * wasm file ("unreadable: why" when it cannot be read). 0 or as
 * keel_audit. */
struct keel_manifest;
int keel_audit_config(const char *event, const char *who, const struct keel_manifest *m);
/* Records event (store.backup, store.restore) of store with the backup
 * file and its SHA-256 (NULL or "": "unknown"), outcome "ok", or
 * "refused" with why = failure when failure is not NULL. 0 or as
 * keel_audit. */
int keel_audit_store(const char *event, const char *who, const char *store, const char *file,
                     const char *sha256, const char *failure);

/* Checks the chain of the audit log at path: 0 when intact (with the
 * record count in *records), else a negative KEEL_E* with err naming the
 * first bad record by line number and why. */
int keel_audit_verify(const char *path, size_t *records, char *err, size_t errlen);
/* keel_audit_verify for one file of a rotated series: the chain stands at
 * *seq / hash (0 and 64 zeros before the first file) and must continue
 * in path; on success both are advanced to path's last record. A first
 * file may start with an audit.rotated record (its predecessors are
 * elsewhere). */
int keel_audit_verify_chain(const char *path, unsigned long long *seq, char hash[65],
                            size_t *records, char *err, size_t errlen);

/* Rotates the audit log at path: under its lock, verifies it, renames it
 * to archive (NULL: PATH.YYYYMMDDTHHMMSSZ, written to archive_out) and
 * puts at path a new file whose first record, audit.rotated (who), carries
 * the archive's last hash and next seq. Running writers move to the new
 * file at their next record. 0, or a negative KEEL_E* with err filled. */
int keel_audit_rotate(const char *path, const char *archive, const char *who,
                      char *archive_out, size_t outlen, char *err, size_t errlen);

#endif
