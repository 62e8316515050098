/* store_sqlite.c — the embedded backend: one SQLite database file per
 * store, table kv(k BLOB PRIMARY KEY, v BLOB), in WAL mode with
 * synchronous=FULL, so a write is on disk before kv_set returns.
 *
 * Threads: a pool of connections, each used by one thread at a time
 * (SQLITE_OPEN_NOMUTEX); a thread takes an idle one or opens a new one.
 * Reads run in parallel (WAL). Writes of this process queue on a mutex
 * (SQLite has one writer at a time anyway, and its busy handler sleeps in
 * growing steps, which under load turns into long tail latencies); other
 * processes on the same file are waited for through busy_timeout, so load
 * gives waits, not SQLITE_BUSY. Read-modify-write (kv_incr) runs in BEGIN
 * IMMEDIATE, so it never has to upgrade a read lock. */
#include "store/store_int.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "obs/log.h"

#define SQLITE_BUSY_TIMEOUT_MS 10000
#define SQLITE_MAX_IDLE 64            /* idle connections kept per store */

enum { Q_GET, Q_SET, Q_DEL, Q_KEYS_FROM, Q_KEYS_RANGE, Q_BEGIN, Q_COMMIT, Q_ROLLBACK, Q_N };
static const char *const queries[Q_N] = {
    [Q_GET] = "SELECT v FROM kv WHERE k = ?1",
    [Q_SET] = "INSERT INTO kv(k, v) VALUES(?1, ?2) ON CONFLICT(k) DO UPDATE SET v = ?2",
    [Q_DEL] = "DELETE FROM kv WHERE k = ?1",
    [Q_KEYS_FROM] = "SELECT k FROM kv WHERE k >= ?1 ORDER BY k",
    [Q_KEYS_RANGE] = "SELECT k FROM kv WHERE k >= ?1 AND k < ?2 ORDER BY k",
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
};

typedef struct conn {
    sqlite3 *db;
    sqlite3_stmt *q[Q_N];
} conn;

typedef struct sq {
    pthread_mutex_t wmu;          /* this process's writers, one at a time */
    pthread_mutex_t mu;
    conn **idle;
    size_t nidle;
} sq;

static int map_rc(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_FULL: return KEEL_KV_EFULL;
    case SQLITE_BUSY: case SQLITE_LOCKED: return KEEL_KV_EUNAVAIL;
    case SQLITE_TOOBIG: return KEEL_KV_ETOOBIG;
    case SQLITE_NOMEM: abort();
    default: return KEEL_KV_EIO;
    }
}

/* Logs a failed step of an operation and returns its KEEL_KV_* code. */
static int failed(keel_store *st, conn *c, const char *op, int rc)
{
    keel_log(KEEL_LOG_ERROR, NULL, "store %s: %s failed: %s (sqlite %d)", st->cfg->name, op,
             sqlite3_errmsg(c->db), rc);
    return map_rc(rc);
}

static void conn_free(conn *c)
{
    if (!c)
        return;
    for (int i = 0; i < Q_N; i++)
        sqlite3_finalize(c->q[i]);
    sqlite3_close(c->db);
    free(c);
}

static int exec(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        snprintf(err, errlen, "%s: %s", sql, msg ? msg : sqlite3_errstr(rc));
    sqlite3_free(msg);
    return rc;
}

/* Opens one connection with Keel's settings and the table. */
static conn *conn_open(const keel_store_cfg *cfg, char *err, size_t errlen)
{
    conn *c = calloc(1, sizeof *c);
    if (!c)
        abort();
    int rc = sqlite3_open_v2(cfg->path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                             SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s: %s", cfg->path,
                 c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
        conn_free(c);
        return NULL;
    }
    sqlite3_busy_timeout(c->db, SQLITE_BUSY_TIMEOUT_MS);
    char sql[128];
    if (exec(c->db, "PRAGMA journal_mode=WAL", err, errlen) ||
        exec(c->db, "PRAGMA synchronous=FULL", err, errlen) ||
        exec(c->db, "CREATE TABLE IF NOT EXISTS kv(k BLOB PRIMARY KEY, v BLOB NOT NULL) "
             "WITHOUT ROWID", err, errlen)) {
        conn_free(c);
        return NULL;
    }
    if (cfg->max_size) {
        /* page count from the database's page size: a quota, not a guess */
        sqlite3_stmt *ps;
        long long page = 4096;
        if (sqlite3_prepare_v2(c->db, "PRAGMA page_size", -1, &ps, NULL) == SQLITE_OK) {
            if (sqlite3_step(ps) == SQLITE_ROW)
                page = sqlite3_column_int64(ps, 0);
            sqlite3_finalize(ps);
        }
        snprintf(sql, sizeof sql, "PRAGMA max_page_count=%llu",
                 (unsigned long long)(cfg->max_size / (uint64_t)(page > 0 ? page : 4096)));
        if (exec(c->db, sql, err, errlen)) {
            conn_free(c);
            return NULL;
        }
    }
    for (int i = 0; i < Q_N; i++)
        if (sqlite3_prepare_v3(c->db, queries[i], -1, SQLITE_PREPARE_PERSISTENT,
                               &c->q[i], NULL) != SQLITE_OK) {
            snprintf(err, errlen, "cannot prepare %s: %s", queries[i], sqlite3_errmsg(c->db));
            conn_free(c);
            return NULL;
        }
    return c;
}

static conn *acquire(keel_store *st)
{
    sq *s = st->impl;
    pthread_mutex_lock(&s->mu);
    conn *c = s->nidle ? s->idle[--s->nidle] : NULL;
    pthread_mutex_unlock(&s->mu);
    if (c)
        return c;
    char why[512];
    c = conn_open(st->cfg, why, sizeof why);
    if (!c)
        keel_log(KEEL_LOG_ERROR, NULL, "store %s: %s", st->cfg->name, why);
    return c;
}

static void release(keel_store *st, conn *c)
{
    sq *s = st->impl;
    for (int i = 0; i < Q_N; i++) {
        sqlite3_reset(c->q[i]);
        sqlite3_clear_bindings(c->q[i]);   /* SQLITE_STATIC bytes are the caller's */
    }
    pthread_mutex_lock(&s->mu);
    if (s->nidle < SQLITE_MAX_IDLE) {
        s->idle[s->nidle++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&s->mu);
    conn_free(c);
}

/* Creates the folders above path that do not exist yet. */
static int make_parents(const char *path, char *err, size_t errlen)
{
    char *d = strdup(path);
    if (!d)
        abort();
    for (char *p = d + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(d, 0750) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "cannot create folder %s: %s", d, strerror(errno));
            free(d);
            return -1;
        }
        *p = '/';
    }
    free(d);
    return 0;
}

static void sq_close(keel_store *st);

static int sq_open(keel_store *st, char *err, size_t errlen)
{
    if (!sqlite3_threadsafe()) {
        snprintf(err, errlen, "the SQLite library is built without thread support");
        return -1;
    }
    if (make_parents(st->cfg->path, err, errlen))
        return -1;
    sq *s = calloc(1, sizeof *s);
    if (!s || !(s->idle = calloc(SQLITE_MAX_IDLE, sizeof *s->idle)))
        abort();
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->wmu, NULL);
    st->impl = s;
    conn *c = conn_open(st->cfg, err, errlen);   /* fails now, not at the first request */
    if (!c) {
        sq_close(st);
        return -1;
    }
    release(st, c);
    return 0;
}

static void sq_close(keel_store *st)
{
    sq *s = st->impl;
    if (!s)
        return;
    for (size_t i = 0; i < s->nidle; i++)
        conn_free(s->idle[i]);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->wmu);
    free(s->idle);
    free(s);
    st->impl = NULL;
}

static bool sq_ready(keel_store *st, char *why, size_t len)
{
    conn *c = acquire(st);
    if (!c) {
        snprintf(why, len, "cannot open %s", st->cfg->path);
        return false;
    }
    int rc = sqlite3_step(c->q[Q_GET]);   /* unbound key: no row, but a real read */
    bool ok = rc == SQLITE_DONE || rc == SQLITE_ROW;
    if (!ok)
        snprintf(why, len, "%s", sqlite3_errmsg(c->db));
    release(st, c);
    return ok;
}

static int sq_get(keel_store *st, const void *key, size_t klen, keel_kv_bytes *out)
{
    conn *c = acquire(st);
    if (!c)
        return KEEL_KV_EIO;
    sqlite3_stmt *q = c->q[Q_GET];
    sqlite3_bind_blob(q, 1, key, (int)klen, SQLITE_STATIC);
    int rc = sqlite3_step(q), ret;
    if (rc == SQLITE_ROW) {
        const void *v = sqlite3_column_blob(q, 0);
        size_t n = (size_t)sqlite3_column_bytes(q, 0);
        out->data = malloc(n ? n : 1);
        if (!out->data)
            abort();
        if (n)
            memcpy(out->data, v, n);
        out->len = n;
        ret = 0;
    } else if (rc == SQLITE_DONE) {
        ret = KEEL_KV_ABSENT;
    } else {
        ret = failed(st, c, "get", rc);
    }
    release(st, c);
    return ret;
}

static int sq_set_locked(keel_store *st, const void *key, size_t klen, const void *val, size_t vlen)
{
    conn *c = acquire(st);
    if (!c)
        return KEEL_KV_EIO;
    sqlite3_stmt *q = c->q[Q_SET];
    sqlite3_bind_blob(q, 1, key, (int)klen, SQLITE_STATIC);
    sqlite3_bind_blob(q, 2, vlen ? val : "", (int)vlen, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    int ret = rc == SQLITE_DONE ? 0 : failed(st, c, "set", rc);
    release(st, c);
    return ret;
}

static int sq_del_locked(keel_store *st, const void *key, size_t klen)
{
    conn *c = acquire(st);
    if (!c)
        return KEEL_KV_EIO;
    sqlite3_stmt *q = c->q[Q_DEL];
    sqlite3_bind_blob(q, 1, key, (int)klen, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    int ret = rc == SQLITE_DONE ? (sqlite3_changes(c->db) ? 0 : KEEL_KV_ABSENT)
                                : failed(st, c, "delete", rc);
    release(st, c);
    return ret;
}

static int sq_keys(keel_store *st, const void *prefix, size_t plen, keel_kv_bytes *out)
{
    conn *c = acquire(st);
    if (!c)
        return KEEL_KV_EIO;
    /* [prefix, successor of prefix): drop trailing 0xff bytes, bump the last */
    uint8_t hi[KEEL_KV_MAX_KEY];
    size_t hlen = plen;
    memcpy(hi, prefix, plen);
    while (hlen && hi[hlen - 1] == 0xff)
        hlen--;
    sqlite3_stmt *q = c->q[hlen ? Q_KEYS_RANGE : Q_KEYS_FROM];
    sqlite3_bind_blob(q, 1, plen ? prefix : "", (int)plen, SQLITE_STATIC);
    if (hlen) {
        hi[hlen - 1]++;
        sqlite3_bind_blob(q, 2, hi, (int)hlen, SQLITE_STATIC);
    }
    size_t cap = 4096, len = 0;
    uint8_t *buf = malloc(cap);
    if (!buf)
        abort();
    int rc, ret = 0;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        size_t n = (size_t)sqlite3_column_bytes(q, 0);
        const void *k = sqlite3_column_blob(q, 0);
        if (len + n + 1 > KEEL_KV_MAX_KEYS_BYTES) {
            ret = KEEL_KV_ETOOBIG;
            break;
        }
        while (len + n + 1 > cap)
            cap *= 2;
        uint8_t *grown = realloc(buf, cap);
        if (!grown)
            abort();
        buf = grown;
        if (n)
            memcpy(buf + len, k, n);
        len += n;
        buf[len++] = 0;
    }
    if (!ret && rc != SQLITE_DONE)
        ret = failed(st, c, "keys", rc);
    release(st, c);
    if (ret) {
        free(buf);
        return ret;
    }
    out->data = buf;
    out->len = len;
    return 0;
}

static int sq_incr_locked(keel_store *st, const void *key, size_t klen, int64_t delta, int64_t *out)
{
    conn *c = acquire(st);
    if (!c)
        return KEEL_KV_EIO;
    int rc = sqlite3_step(c->q[Q_BEGIN]), ret = 0;
    sqlite3_reset(c->q[Q_BEGIN]);
    if (rc != SQLITE_DONE) {
        ret = failed(st, c, "incr (begin)", rc);
        release(st, c);
        return ret;
    }
    int64_t cur = 0;
    sqlite3_stmt *q = c->q[Q_GET];
    sqlite3_bind_blob(q, 1, key, (int)klen, SQLITE_STATIC);
    rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        if (store_parse_i64(sqlite3_column_blob(q, 0), (size_t)sqlite3_column_bytes(q, 0),
                            &cur))
            ret = KEEL_KV_ENOTNUM;
    } else if (rc != SQLITE_DONE) {
        ret = failed(st, c, "incr (read)", rc);
    }
    sqlite3_reset(q);
    int64_t next = 0;
    if (!ret && (__builtin_add_overflow(cur, delta, &next) || next < KEEL_KV_COUNTER_MIN))
        ret = KEEL_KV_ERANGE;
    if (!ret) {
        char text[24];
        int n = snprintf(text, sizeof text, "%lld", (long long)next);
        sqlite3_stmt *w = c->q[Q_SET];
        sqlite3_bind_blob(w, 1, key, (int)klen, SQLITE_STATIC);
        sqlite3_bind_blob(w, 2, text, n, SQLITE_STATIC);
        rc = sqlite3_step(w);
        sqlite3_reset(w);
        if (rc != SQLITE_DONE)
            ret = failed(st, c, "incr (write)", rc);
    }
    if (!ret) {
        rc = sqlite3_step(c->q[Q_COMMIT]);
        sqlite3_reset(c->q[Q_COMMIT]);
        if (rc != SQLITE_DONE)
            ret = failed(st, c, "incr (commit)", rc);
    }
    if (ret && sqlite3_get_autocommit(c->db) == 0) {
        sqlite3_step(c->q[Q_ROLLBACK]);
        sqlite3_reset(c->q[Q_ROLLBACK]);
    }
    if (!ret)
        *out = next;
    release(st, c);
    return ret;
}

/* The write operations, one at a time per process (see the top). */
static int sq_set(keel_store *st, const void *key, size_t klen, const void *val, size_t vlen)
{
    sq *s = st->impl;
    pthread_mutex_lock(&s->wmu);
    int rc = sq_set_locked(st, key, klen, val, vlen);
    pthread_mutex_unlock(&s->wmu);
    return rc;
}

static int sq_del(keel_store *st, const void *key, size_t klen)
{
    sq *s = st->impl;
    pthread_mutex_lock(&s->wmu);
    int rc = sq_del_locked(st, key, klen);
    pthread_mutex_unlock(&s->wmu);
    return rc;
}

static int sq_incr(keel_store *st, const void *key, size_t klen, int64_t delta, int64_t *out)
{
    sq *s = st->impl;
    pthread_mutex_lock(&s->wmu);
    int rc = sq_incr_locked(st, key, klen, delta, out);
    pthread_mutex_unlock(&s->wmu);
    return rc;
}

const store_ops keel_store_sqlite_ops = {
    .open = sq_open, .close = sq_close, .ready = sq_ready, .get = sq_get, .set = sq_set,
    .del = sq_del, .keys = sq_keys, .incr = sq_incr,
};
