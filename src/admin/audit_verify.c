/* audit_verify.c — checking an audit log's hash chain: the walk over a
 * file's records that both keel_audit_open (before continuing a chain)
 * and `keel audit verify` use. Reads stream through a fixed buffer, so a
 * file of any size is checked in constant memory. */
#include "admin/audit.h"
#include "admin/audit_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "base/errors.h"
#include "base/sha256.h"

#define READ_CHUNK (64u << 10)

void audit_head_init(audit_head *h)
{
    h->seq = 0;
    memset(h->hash, '0', 64);
    h->hash[64] = '\0';
}

/* Checks one record (line n bytes, the file's line number lineno) against
 * the chain at *h and advances it. -1 with err filled when it breaks. */
static int check_record(const char *name, size_t lineno, const char *line, size_t n,
                        audit_head *h, char *err, size_t errlen)
{
    audit_record r;
    char why[256];
    if (audit_record_parse(line, n, &r, why, sizeof why))
        return keel_err(err, errlen, -1, "%s:%zu: record %zu: not a valid record: %s", name,
                        lineno, lineno, why);
    bool rotated_start = lineno == 1 && h->seq == 0 && !strcmp(r.event, KEEL_AUDIT_ROTATED);
    if (!rotated_start) {
        if (r.seq != h->seq + 1)
            return keel_err(err, errlen, -1, "%s:%zu: record %zu: seq %llu where %llu was "
                            "expected (%s)", name, lineno, lineno, (unsigned long long)r.seq,
                            (unsigned long long)h->seq + 1,
                            r.seq > h->seq + 1 ? "a record before it is missing"
                            : "records were removed, reordered or repeated");
        if (strcmp(r.prev, h->hash)) {
            if (lineno == 1)
                return keel_err(err, errlen, -1, "%s:1: record 1: prev is not the hash "
                                "the chain continues from (%s): the file's start was "
                                "altered, or it is not the next file of the chain",
                                name, h->seq ? "the previous file's last record"
                                             : "64 zeros, for a new chain");
            return keel_err(err, errlen, -1, "%s:%zu: record %zu: prev does not match "
                            "the SHA-256 of line %zu: record %zu was altered (or this "
                            "record's prev was)", name, lineno, lineno, lineno - 1,
                            lineno - 1);
        }
    } else if (r.seq < 2) {
        return keel_err(err, errlen, -1, "%s:1: record 1: an %s record must continue a "
                        "chain (seq 2 or more)", name, KEEL_AUDIT_ROTATED);
    }
    h->seq = r.seq;
    keel_sha256_hex(line, n, h->hash);
    return 0;
}

int audit_chain_walk(int fd, const char *name, audit_head *h, size_t *records,
                     uint64_t *bytes, char *err, size_t errlen)
{
    size_t cap = KEEL_AUDIT_MAX_RECORD + 1 + READ_CHUNK;
    char *buf = malloc(cap);
    if (!buf)
        abort();
    size_t pos = 0, have = 0, lineno = 0;     /* unread lines are buf[pos, have) */
    uint64_t off = 0, line_start = 0;
    int rc = 0;
    bool eof = false;
    while (!rc) {
        char *line = buf + pos;
        char *nl = memchr(line, '\n', have - pos);
        if (!nl) {
            if (have - pos > KEEL_AUDIT_MAX_RECORD) {
                rc = keel_err(err, errlen, -1, "%s:%zu: record %zu: longer than %u bytes "
                              "(not an audit log?)", name, lineno + 1, lineno + 1,
                              KEEL_AUDIT_MAX_RECORD);
                break;
            }
            if (eof) {
                if (have > pos)
                    rc = keel_err(err, errlen, -1, "%s:%zu: record %zu: truncated (no "
                                  "newline at the end of the file: a crash while it was "
                                  "written?); after keeping a copy, `truncate -s %llu %s` "
                                  "drops it and the chain before it verifies", name,
                                  lineno + 1, lineno + 1, (unsigned long long)line_start,
                                  name);
                break;
            }
            memmove(buf, line, have - pos);   /* the partial line to the front */
            have -= pos;
            pos = 0;
            ssize_t got = pread(fd, buf + have, cap - have, (off_t)off);
            if (got < 0) {
                if (errno == EINTR)
                    continue;
                rc = keel_err(err, errlen, -1, "%s: cannot read: %s", name, strerror(errno));
                break;
            }
            eof = got == 0;
            have += (size_t)got;
            off += (uint64_t)got;
            continue;
        }
        size_t n = (size_t)(nl - line);
        lineno++;
        if (n > KEEL_AUDIT_MAX_RECORD)
            rc = keel_err(err, errlen, -1, "%s:%zu: record %zu: longer than %u bytes", name,
                          lineno, lineno, KEEL_AUDIT_MAX_RECORD);
        else
            rc = check_record(name, lineno, line, n, h, err, errlen);
        pos += n + 1;
        line_start += n + 1;
    }
    free(buf);
    if (rc)
        return -1;
    *records = lineno;
    *bytes = line_start;
    return 0;
}

int keel_audit_verify(const char *path, size_t *records, char *err, size_t errlen)
{
    unsigned long long seq = 0;
    char hash[65];
    memset(hash, '0', 64);
    hash[64] = '\0';
    return keel_audit_verify_chain(path, &seq, hash, records, err, errlen);
}

int keel_audit_verify_chain(const char *path, unsigned long long *seq, char hash[65],
                            size_t *records, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return keel_err(err, errlen, KEEL_EIO, "%s: cannot open: %s", path, strerror(errno));
    /* writers hold LOCK_EX while appending: a shared lock sees whole records */
    while (flock(fd, LOCK_SH) != 0 && errno == EINTR)
        ;
    audit_head h = { .seq = (uint64_t)*seq };
    memcpy(h.hash, hash, 64);
    h.hash[64] = '\0';
    uint64_t bytes;
    int rc = audit_chain_walk(fd, path, &h, records, &bytes, err, errlen);
    close(fd);
    if (rc)
        return KEEL_EINVAL;
    *seq = h.seq;
    memcpy(hash, h.hash, 65);
    return 0;
}
