/* audit_int.h — private to src/admin: the pieces of the audit trail that
 * audit.c (the writer) and audit_verify.c (the chain check) share: one
 * record's parser and the walk over a file's records. */
#ifndef KEEL_ADMIN_AUDIT_INT_H
#define KEEL_ADMIN_AUDIT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One record line, newline excluded, is at most this many bytes; longer
 * records are refused by the writer and reported by verify. */
#define KEEL_AUDIT_MAX_RECORD (64u << 10)
/* Nesting of arrays and objects inside a record's fields. */
#define KEEL_AUDIT_MAX_DEPTH 16
/* An event name: [a-z0-9_.], 1 to this many bytes. */
#define KEEL_AUDIT_MAX_EVENT 63

/* The event that opens a file continuing another file's chain (rotation):
 * its prev is the hash of the previous file's last record. */
#define KEEL_AUDIT_ROTATED "audit.rotated"

/* What the chain needs from one record. */
typedef struct audit_record {
    uint64_t seq;
    char event[KEEL_AUDIT_MAX_EVENT + 1];
    char prev[65];                /* 64 lowercase hex digits */
} audit_record;

/* Parses one record line (n bytes, no newline): a JSON object whose
 * members are seq (unsigned integer), ts, event, who (strings), then any
 * others, then prev (64 lowercase hex digits), nothing after the closing
 * brace, and no other member named like those five. 0 with *r filled, or
 * -1 with why (saying what and at which byte, 1-based) filled. */
int audit_record_parse(const char *line, size_t n, audit_record *r, char *why, size_t len);

/* The chain's position after some records: the last record's seq and the
 * SHA-256 (hex) of its line; seq 0 and 64 zeros before the first. */
typedef struct audit_head {
    uint64_t seq;
    char hash[65];
} audit_head;

void audit_head_init(audit_head *h);

/* Walks the records of the open file fd (read from offset 0 with pread),
 * named name in messages, checking each against the chain: seq one more
 * than the last, prev the hash of the line before. *h is where the chain
 * stands before the file (audit_head_init for a file of its own); a file
 * may instead start with an audit.rotated record continuing a chain that
 * *h does not know (when h->seq is 0), since rotation leaves the older
 * records in another file. On success *h is the file's head, *records
 * its record count and *bytes its size, and 0 is returned; else -1 with
 * err = "NAME:LINE: record N: why" for the first bad record, or the I/O
 * error. */
int audit_chain_walk(int fd, const char *name, audit_head *h, size_t *records,
                     uint64_t *bytes, char *err, size_t errlen);

#endif
