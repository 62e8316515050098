/* audit.c — the audit trail's writer: the process's one open audit log,
 * appending hash-chained records (one mutex inside the process, an
 * flock(2) across processes, O_APPEND + fsync per record), following the
 * file when it is rotated, and `keel audit rotate`. The record format and
 * the chain check are audit_record.c and audit_verify.c. */
#include "admin/audit.h"
#include "admin/audit_int.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "base/errors.h"
#include "base/sha256.h"
#include "obs/log.h"
#include "obs/prom.h"

static pthread_mutex_t audit_lock = PTHREAD_MUTEX_INITIALIZER;

/* The open log; fd < 0 when none. Guarded by audit_lock. */
static struct {
    int fd;
    char *path;
    audit_head head;          /* the last record this process knows of */
    uint64_t end;             /* the file's size after that record */
    uint64_t written, failed; /* records appended, events not recorded */
} audit = { .fd = -1 };

static void lock_file(int fd, int op)
{
    while (flock(fd, op) != 0 && errno == EINTR)
        ;
}

static int open_log_file(const char *path, int flags, char *err, size_t errlen)
{
    int fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC | flags, 0600);
    if (fd < 0)
        return keel_err(err, errlen, KEEL_EIO, "audit log %s: cannot open: %s", path,
                        strerror(errno));
    return fd;
}

static int fsync_dir_of(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        abort();
    int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(copy);
    if (dfd < 0)
        return -1;
    int rc = fsync(dfd);
    close(dfd);
    return rc;
}

int keel_audit_open(const char *path, char *err, size_t errlen)
{
    struct stat st;
    bool created = stat(path, &st) != 0;
    int fd = open_log_file(path, O_CREAT, err, errlen);
    if (fd < 0)
        return fd;
    lock_file(fd, LOCK_EX);
    audit_head h;
    audit_head_init(&h);
    size_t records;
    uint64_t bytes;
    char why[1024];
    if (audit_chain_walk(fd, path, &h, &records, &bytes, why, sizeof why)) {
        close(fd);
        return keel_err(err, errlen, KEEL_EINVAL, "refusing to append to the audit log, "
                        "whose chain is broken: %s", why);
    }
    if (created)
        fsync_dir_of(path);
    lock_file(fd, LOCK_UN);
    char *p = strdup(path);
    if (!p)
        abort();
    pthread_mutex_lock(&audit_lock);
    if (audit.fd >= 0)
        close(audit.fd);
    free(audit.path);
    audit.fd = fd;
    audit.path = p;
    audit.head = h;
    audit.end = bytes;
    pthread_mutex_unlock(&audit_lock);
    keel_log(KEEL_LOG_INFO, "audit", "audit log %s: %zu records, chain intact, appending "
             "from seq %llu", path, records, (unsigned long long)h.seq + 1);
    return 0;
}

void keel_audit_close(void)
{
    pthread_mutex_lock(&audit_lock);
    if (audit.fd >= 0) {
        fsync(audit.fd);
        close(audit.fd);
    }
    audit.fd = -1;
    free(audit.path);
    audit.path = NULL;
    pthread_mutex_unlock(&audit_lock);
}

int keel_audit_is_open(void)
{
    pthread_mutex_lock(&audit_lock);
    int open = audit.fd >= 0;
    pthread_mutex_unlock(&audit_lock);
    return open;
}

void keel_audit_metrics(keel_buf *b)
{
    pthread_mutex_lock(&audit_lock);
    uint64_t written = audit.written, failed = audit.failed;
    pthread_mutex_unlock(&audit_lock);
    keel_prom_family(b, "keel_audit_records_total", "counter",
                     "Audit records this process appended to admin.audit_log.");
    keel_prom_sample_u(b, "keel_audit_records_total", NULL, 0, written);
    keel_prom_family(b, "keel_audit_failures_total", "counter",
                     "Audit events this process could not record (each logged).");
    keel_prom_sample_u(b, "keel_audit_failures_total", NULL, 0, failed);
}

/* The record line (no newline) for seq/prev into b; -1 with why when the
 * result would not be one valid record. */
static int compose(keel_buf *b, const audit_head *h, const char *event, const char *who,
                   const char *fields, char *why, size_t len)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char stamp[40];
    size_t k = strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(stamp + k, sizeof stamp - k, ".%03ldZ", ts.tv_nsec / 1000000);
    keel_buf_printf(b, "{\"seq\":%llu,\"ts\":\"%s\",\"event\":\"",
                    (unsigned long long)h->seq + 1, stamp);
    keel_buf_json(b, event);
    keel_buf_puts(b, "\",\"who\":\"");
    keel_buf_json(b, who ? who : "system");
    keel_buf_puts(b, "\"");
    if (fields && *fields) {
        keel_buf_puts(b, ",");
        keel_buf_puts(b, fields);
    }
    keel_buf_printf(b, ",\"prev\":\"%s\"}", h->hash);
    if (b->len > KEEL_AUDIT_MAX_RECORD) {
        snprintf(why, len, "the record would be %zu bytes, over %u", b->len,
                 KEEL_AUDIT_MAX_RECORD);
        return -1;
    }
    if (memchr(b->data, '\n', b->len) || memchr(b->data, '\r', b->len)) {
        snprintf(why, len, "its fields hold a line break");
        return -1;
    }
    audit_record r;
    char what[256];
    if (audit_record_parse(b->data, b->len, &r, what, sizeof what)) {
        snprintf(why, len, "it would not be a valid record (%s): %.200s", what, b->data);
        return -1;
    }
    return 0;
}

/* Appends line plus a newline to fd at its end `size`, fsyncs, and
 * advances *h and *end; on a short write the partial line is cut off
 * again. The caller holds the file's lock. */
static int append_line(int fd, const char *line, size_t n, uint64_t size, audit_head *h,
                       uint64_t *end, uint64_t seq, char *why, size_t len)
{
    struct iovec iov[2] = { { (void *)line, n }, { "\n", 1 } };
    ssize_t w;
    do
        w = writev(fd, iov, 2);         /* one call: one O_APPEND write */
    while (w < 0 && errno == EINTR);
    if (w != (ssize_t)(n + 1)) {
        snprintf(why, len, "write failed: %s", w < 0 ? strerror(errno) : "short write");
        if (ftruncate(fd, (off_t)size) != 0)
            snprintf(why, len, "write failed and the partial record could not be cut off: %s",
                     strerror(errno));
        return KEEL_EIO;
    }
    if (fsync(fd) != 0) {
        snprintf(why, len, "fsync failed: %s", strerror(errno));
        return KEEL_EIO;
    }
    h->seq = seq;
    keel_sha256_hex(line, n, h->hash);
    *end = size + n + 1;
    return 0;
}

/* The chain head from the last line of fd, which is size bytes long (> 0).
 * -1 with why when that line is truncated or not a record. */
static int head_from_tail(int fd, uint64_t size, audit_head *h, char *why, size_t len)
{
    size_t want = size < KEEL_AUDIT_MAX_RECORD + 2 ? (size_t)size : KEEL_AUDIT_MAX_RECORD + 2;
    char *buf = malloc(want);
    if (!buf)
        abort();
    int rc = -1;
    ssize_t got = pread(fd, buf, want, (off_t)(size - want));
    if (got != (ssize_t)want) {
        snprintf(why, len, "cannot read its last record: %s",
                 got < 0 ? strerror(errno) : "short read");
        goto out;
    }
    if (buf[want - 1] != '\n') {
        snprintf(why, len, "its last record is truncated (a crash while it was written?); "
                 "`keel audit verify` says how to drop it");
        goto out;
    }
    size_t start = want - 1;
    while (start > 0 && buf[start - 1] != '\n')
        start--;
    if (start == 0 && want < size) {
        snprintf(why, len, "its last record is over %u bytes", KEEL_AUDIT_MAX_RECORD);
        goto out;
    }
    audit_record r;
    char what[256];
    if (audit_record_parse(buf + start, want - 1 - start, &r, what, sizeof what)) {
        snprintf(why, len, "its last record is not valid (%s)", what);
        goto out;
    }
    h->seq = r.seq;
    keel_sha256_hex(buf + start, want - 1 - start, h->hash);
    rc = 0;
out:
    free(buf);
    return rc;
}

/* Holds the lock of the file now at audit.path, moving audit.fd to it when
 * the path names another file than the open one; sets *replaced then. */
static int lock_current_file(bool *replaced, char *why, size_t len)
{
    *replaced = false;
    lock_file(audit.fd, LOCK_EX);
    struct stat ps, fs;
    if (fstat(audit.fd, &fs) != 0) {
        snprintf(why, len, "fstat failed: %s", strerror(errno));
        lock_file(audit.fd, LOCK_UN);
        return -1;
    }
    if (stat(audit.path, &ps) == 0 && ps.st_ino == fs.st_ino && ps.st_dev == fs.st_dev)
        return 0;
    char err[512];
    int fd = open_log_file(audit.path, O_CREAT, err, sizeof err);
    if (fd < 0) {
        snprintf(why, len, "%s", err);
        lock_file(audit.fd, LOCK_UN);
        return -1;
    }
    lock_file(fd, LOCK_EX);
    close(audit.fd);          /* releases the old file's lock */
    audit.fd = fd;
    *replaced = true;
    return 0;
}

int keel_audit(const char *event, const char *who, const char *fields)
{
    char why[512] = "";
    int rc = 0;
    keel_buf b = { 0 };
    pthread_mutex_lock(&audit_lock);
    if (audit.fd < 0)
        goto unlock;
    bool replaced;
    if (lock_current_file(&replaced, why, sizeof why)) {
        rc = KEEL_EIO;
        goto unlock;
    }
    struct stat st;
    if (fstat(audit.fd, &st) != 0) {
        snprintf(why, sizeof why, "fstat failed: %s", strerror(errno));
        rc = KEEL_EIO;
        goto unlock_file;
    }
    uint64_t size = (uint64_t)st.st_size;
    if (size == 0 && audit.head.seq > 0) {
        /* a new or emptied file at the path: continue the chain in it */
        keel_buf r = { 0 };
        rc = compose(&r, &audit.head, KEEL_AUDIT_ROTATED, "system",
                     "\"reason\":\"the log file was replaced (renamed or truncated); this "
                     "record continues the chain of the file before\"", why, sizeof why);
        if (!rc)
            rc = append_line(audit.fd, r.data, r.len, 0, &audit.head, &audit.end,
                             audit.head.seq + 1, why, sizeof why);
        keel_buf_free(&r);
        if (rc)
            goto unlock_file;
        size = audit.end;
    } else if (size == 0) {
        audit_head_init(&audit.head);
    } else if (size != audit.end || replaced) {
        /* another process appended (or this is another file): its head */
        if (head_from_tail(audit.fd, size, &audit.head, why, sizeof why)) {
            rc = KEEL_EIO;
            goto unlock_file;
        }
    }
    if (compose(&b, &audit.head, event, who, fields, why, sizeof why)) {
        rc = KEEL_EINVAL;
        goto unlock_file;
    }
    rc = append_line(audit.fd, b.data, b.len, size, &audit.head, &audit.end,
                     audit.head.seq + 1, why, sizeof why);
unlock_file:
    lock_file(audit.fd, LOCK_UN);
unlock:
    if (rc)
        audit.failed++;
    else if (audit.fd >= 0)
        audit.written++;
    if (rc)
        keel_log(KEEL_LOG_ERROR, "audit", "audit log %s: event %s NOT recorded: %s",
                 audit.path ? audit.path : "?", event, why);
    pthread_mutex_unlock(&audit_lock);
    keel_buf_free(&b);
    return rc;
}

int keel_audit_rotate(const char *path, const char *archive, const char *who,
                      char *archive_out, size_t outlen, char *err, size_t errlen)
{
    int fd = open_log_file(path, 0, err, errlen);
    if (fd < 0)
        return fd;
    lock_file(fd, LOCK_EX);
    int rc;
    char why[1024], tmp[4200], stamped[4200];
    keel_buf b = { 0 };
    int tfd = -1;
    audit_head h;
    audit_head_init(&h);
    size_t records;
    uint64_t bytes;
    if (audit_chain_walk(fd, path, &h, &records, &bytes, why, sizeof why)) {
        rc = keel_err(err, errlen, KEEL_EINVAL, "refusing to rotate a broken chain: %s", why);
        goto out;
    }
    if (!records) {
        rc = keel_err(err, errlen, KEEL_EINVAL, "audit log %s has no records: nothing to "
                      "rotate", path);
        goto out;
    }
    if (!archive) {
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        char stamp[32];
        strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
        snprintf(stamped, sizeof stamped, "%s.%s", path, stamp);
        archive = stamped;
    }
    snprintf(tmp, sizeof tmp, "%s.rotating", path);
    keel_buf fields = { 0 };
    keel_buf_puts(&fields, "\"archive\":\"");
    keel_buf_json(&fields, archive);
    keel_buf_puts(&fields, "\"");
    rc = compose(&b, &h, KEEL_AUDIT_ROTATED, who, fields.data, why, sizeof why);
    keel_buf_free(&fields);
    if (rc) {
        rc = keel_err(err, errlen, KEEL_EINVAL, "audit log %s: %s", path, why);
        goto out;
    }
    tfd = open(tmp, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (tfd < 0) {
        rc = keel_err(err, errlen, KEEL_EIO, "cannot create %s: %s", tmp, strerror(errno));
        goto out;
    }
    uint64_t end;
    if ((rc = append_line(tfd, b.data, b.len, 0, &h, &end, h.seq + 1, why, sizeof why))) {
        unlink(tmp);
        rc = keel_err(err, errlen, rc, "%s: %s", tmp, why);
        goto out;
    }
    /* the archive name first (path stays in place), then the new file over
     * path in one rename: a writer always finds a log at path */
    if (link(path, archive) != 0) {
        rc = keel_err(err, errlen, KEEL_EIO, "cannot create the archive %s: %s", archive,
                      strerror(errno));
        unlink(tmp);
        goto out;
    }
    if (rename(tmp, path) != 0) {
        rc = keel_err(err, errlen, KEEL_EIO, "cannot move %s to %s: %s", tmp, path,
                      strerror(errno));
        unlink(archive);
        unlink(tmp);
        goto out;
    }
    fsync_dir_of(path);
    if (archive_out)
        snprintf(archive_out, outlen, "%s", archive);
    rc = 0;
out:
    if (tfd >= 0)
        close(tfd);
    keel_buf_free(&b);
    close(fd);
    return rc;
}
