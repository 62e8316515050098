/* backup.c — online backup and verified restore of SQLite stores.
 *
 * Backup: SQLite's online backup API copies the whole database inside one
 * read transaction (a consistent snapshot; in WAL mode writers carry on)
 * into a temporary file next to the destination, which is made a plain
 * rollback-journal database, fsynced and renamed into place; then its
 * sha256 goes to DEST.sha256 the same way.
 *
 * Restore: the file must match its .sha256 and pass PRAGMA
 * integrity_check and hold a kv table before anything is touched. A store
 * file that exists is overwritten by the backup API in one write
 * transaction (atomic; running Keel processes see old or new); a missing
 * one is created by temporary file + rename. */
#include "store/store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/errors.h"
#include "base/sha256.h"

#define BACKUP_BUSY_TIMEOUT_MS 10000

static int fsync_path(const char *path, bool dir)
{
    int fd = open(path, (dir ? O_RDONLY | O_DIRECTORY : O_RDWR) | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static int fsync_parent(const char *path)
{
    char *d = strdup(path);
    if (!d)
        abort();
    int rc = fsync_path(dirname(d), true);
    free(d);
    return rc;
}

/* Copies the database src (an open connection) into a new file at path. */
static int copy_db(sqlite3 *src, const char *path, bool to_rollback, char *err, size_t errlen)
{
    sqlite3 *dst;
    unlink(path);
    int rc = sqlite3_open_v2(path, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK) {
        keel_err(err, errlen, KEEL_EIO, "cannot create %s: %s", path, sqlite3_errmsg(dst));
        sqlite3_close(dst);
        return KEEL_EIO;
    }
    sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
    if (!b) {
        keel_err(err, errlen, KEEL_EIO, "cannot start the backup: %s", sqlite3_errmsg(dst));
        sqlite3_close(dst);
        return KEEL_EIO;
    }
    do {
        rc = sqlite3_backup_step(b, -1);
        if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
            sqlite3_sleep(20);
    } while (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED);
    sqlite3_backup_finish(b);
    if (rc != SQLITE_DONE) {
        keel_err(err, errlen, KEEL_EIO, "backup failed: %s", sqlite3_errstr(rc));
        sqlite3_close(dst);
        return KEEL_EIO;
    }
    if (to_rollback &&
        sqlite3_exec(dst, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL) != SQLITE_OK) {
        keel_err(err, errlen, KEEL_EIO, "cannot finish %s: %s", path, sqlite3_errmsg(dst));
        sqlite3_close(dst);
        return KEEL_EIO;
    }
    sqlite3_close(dst);
    if (fsync_path(path, false))
        return keel_err(err, errlen, KEEL_EIO, "cannot fsync %s: %s", path, strerror(errno));
    return 0;
}

int keel_store_backup(keel_store *st, const char *dest, uint64_t *bytes, char hex[65],
                      char *err, size_t errlen)
{
    const keel_store_cfg *cfg = st->cfg;
    if (cfg->backend != KEEL_STORE_SQLITE)
        return keel_err(err, errlen, KEEL_EINVAL, "store %s is a redis store: back it up "
                        "with Redis's own RDB/AOF files (docs/operations.md)", cfg->name);
    char tmp[PATH_MAX], sum[PATH_MAX], sumtmp[PATH_MAX], h[65];
    if (snprintf(tmp, sizeof tmp, "%s.tmp-%ld", dest, (long)getpid()) >= (int)sizeof tmp ||
        snprintf(sum, sizeof sum, "%s.sha256", dest) >= (int)sizeof sum ||
        snprintf(sumtmp, sizeof sumtmp, "%s.tmp-%ld", sum, (long)getpid()) >= (int)sizeof sumtmp)
        return keel_err(err, errlen, KEEL_EINVAL, "%s: path too long", dest);
    sqlite3 *src;
    int rc = sqlite3_open_v2(cfg->path, &src, SQLITE_OPEN_READWRITE, NULL);
    if (rc != SQLITE_OK) {
        keel_err(err, errlen, KEEL_EIO, "store %s: cannot open %s: %s", cfg->name, cfg->path,
                 sqlite3_errmsg(src));
        sqlite3_close(src);
        return KEEL_EIO;
    }
    sqlite3_busy_timeout(src, BACKUP_BUSY_TIMEOUT_MS);
    rc = copy_db(src, tmp, true, err, errlen);
    sqlite3_close(src);
    if (rc) {
        unlink(tmp);
        return rc;
    }
    uint64_t n;
    if (keel_sha256_file(tmp, h, &n) || rename(tmp, dest)) {
        rc = keel_err(err, errlen, KEEL_EIO, "cannot write %s: %s", dest, strerror(errno));
        unlink(tmp);
        return rc;
    }
    char *base = strdup(dest);
    if (!base)
        abort();
    FILE *f = fopen(sumtmp, "w");
    bool ok = f && fprintf(f, "%s  %s\n", h, basename(base)) > 0;
    ok = f && fflush(f) == 0 && fsync(fileno(f)) == 0 && ok;
    if (f)
        ok = fclose(f) == 0 && ok;
    free(base);
    if (!ok || rename(sumtmp, sum)) {
        rc = keel_err(err, errlen, KEEL_EIO, "cannot write %s: %s", sum, strerror(errno));
        unlink(sumtmp);
        unlink(dest);
        return rc;
    }
    fsync_parent(dest);
    if (bytes)
        *bytes = n;
    if (hex)
        memcpy(hex, h, 65);
    return 0;
}

/* The checksum src.sha256 records, and whether src matches it. */
static int verify_checksum(const char *src, char *err, size_t errlen)
{
    char sum[PATH_MAX], want[65] = "", have[65];
    snprintf(sum, sizeof sum, "%s.sha256", src);
    FILE *f = fopen(sum, "r");
    if (!f)
        return keel_err(err, errlen, KEEL_EINVAL, "cannot read the checksum file %s: %s; "
                        "refusing to restore", sum, strerror(errno));
    int got = fscanf(f, "%64[0-9a-f]", want);
    fclose(f);
    if (got != 1 || strlen(want) != 64)
        return keel_err(err, errlen, KEEL_EINVAL, "%s does not hold a sha256 checksum; "
                        "refusing to restore", sum);
    if (keel_sha256_file(src, have, NULL))
        return keel_err(err, errlen, KEEL_EIO, "cannot read %s: %s", src, strerror(errno));
    if (strcmp(want, have))
        return keel_err(err, errlen, KEEL_EINVAL, "checksum mismatch: %s has sha256 %s but "
                        "%s says %s; refusing to restore", src, have, sum, want);
    return 0;
}

/* PRAGMA integrity_check and the kv table, on a read-only connection. */
static int verify_db(sqlite3 *db, const char *src, char *err, size_t errlen)
{
    sqlite3_stmt *q;
    int rc = sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &q, NULL);
    const char *res = NULL;
    char first[256] = "";
    if (rc == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW) {
        res = (const char *)sqlite3_column_text(q, 0);
        snprintf(first, sizeof first, "%s", res ? res : "");
    }
    sqlite3_finalize(q);
    if (strcmp(first, "ok"))
        return keel_err(err, errlen, KEEL_EINVAL, "%s fails PRAGMA integrity_check (%s); "
                        "refusing to restore", src, first[0] ? first : sqlite3_errmsg(db));
    if (sqlite3_exec(db, "SELECT count(*) FROM kv WHERE k IS NULL OR v IS NULL", NULL, NULL,
                     NULL) != SQLITE_OK)
        return keel_err(err, errlen, KEEL_EINVAL, "%s is not a Keel store (%s); refusing "
                        "to restore", src, sqlite3_errmsg(db));
    return 0;
}

int keel_store_restore(const keel_store_cfg *cfg, const char *src, char *err, size_t errlen)
{
    if (cfg->backend != KEEL_STORE_SQLITE)
        return keel_err(err, errlen, KEEL_EINVAL, "store %s is a redis store: restore it "
                        "with Redis's own RDB/AOF files (docs/operations.md)", cfg->name);
    int rc = verify_checksum(src, err, errlen);
    if (rc)
        return rc;
    sqlite3 *in;
    char uri[PATH_MAX + 64];
    snprintf(uri, sizeof uri, "file:%s?mode=ro&immutable=1", src);
    if (sqlite3_open_v2(uri, &in, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL) != SQLITE_OK) {
        rc = keel_err(err, errlen, KEEL_EINVAL, "cannot open %s: %s; refusing to restore", src,
                      sqlite3_errmsg(in));
        sqlite3_close(in);
        return rc;
    }
    if ((rc = verify_db(in, src, err, errlen))) {
        sqlite3_close(in);
        return rc;
    }
    struct stat sb;
    if (stat(cfg->path, &sb) != 0) {
        /* no store yet (a new machine): write a copy beside it, rename */
        char tmp[PATH_MAX + 32], side[PATH_MAX + 8];
        snprintf(tmp, sizeof tmp, "%s.restore-%ld", cfg->path, (long)getpid());
        rc = copy_db(in, tmp, false, err, errlen);
        sqlite3_close(in);
        if (rc) {
            unlink(tmp);
            return rc;
        }
        snprintf(side, sizeof side, "%s-wal", cfg->path);   /* of a store that is gone */
        unlink(side);
        snprintf(side, sizeof side, "%s-shm", cfg->path);
        unlink(side);
        if (rename(tmp, cfg->path)) {
            rc = keel_err(err, errlen, KEEL_EIO, "cannot rename %s to %s: %s", tmp, cfg->path,
                          strerror(errno));
            unlink(tmp);
            return rc;
        }
        fsync_parent(cfg->path);
        return 0;
    }
    /* the store exists (maybe open in a running Keel): one transaction */
    sqlite3 *dst;
    if (sqlite3_open_v2(cfg->path, &dst, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        rc = keel_err(err, errlen, KEEL_EIO, "cannot open %s: %s", cfg->path,
                      sqlite3_errmsg(dst));
        sqlite3_close(dst);
        sqlite3_close(in);
        return rc;
    }
    sqlite3_busy_timeout(dst, BACKUP_BUSY_TIMEOUT_MS);
    sqlite3_exec(dst, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
    sqlite3_backup *b = sqlite3_backup_init(dst, "main", in, "main");
    if (!b) {
        rc = keel_err(err, errlen, KEEL_EIO, "cannot start the restore: %s",
                      sqlite3_errmsg(dst));
    } else {
        int s;
        do {
            s = sqlite3_backup_step(b, -1);
            if (s == SQLITE_BUSY || s == SQLITE_LOCKED)
                sqlite3_sleep(20);
        } while (s == SQLITE_OK || s == SQLITE_BUSY || s == SQLITE_LOCKED);
        sqlite3_backup_finish(b);
        if (s != SQLITE_DONE)
            rc = keel_err(err, errlen, KEEL_EIO, "restore failed, the store is unchanged: %s",
                          sqlite3_errstr(s));
    }
    if (!rc)
        sqlite3_exec(dst, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
    sqlite3_close(dst);
    sqlite3_close(in);
    return rc;
}
