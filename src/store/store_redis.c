/* store_redis.c — the shared backend: a Redis server reached with hiredis's
 * synchronous API, keys stored as PREFIX+key. Many Keel processes may share
 * one Redis; each sees the others' writes at once.
 *
 * Threads: a pool of connections, each used by one thread at a time. A
 * connection that fails is dropped, never reused, so Keel reconnects on
 * its own after a Redis restart. Connecting and every command are bounded
 * by timeouts, and after a failed connect the store answers "unavailable"
 * at once for REDIS_BACKOFF_MS instead of trying again, so a Redis that is
 * down costs a request milliseconds, not a hang.
 *
 * Durability is Redis's: with appendonly yes and appendfsync always an
 * acknowledged write survives a Redis crash; with the defaults it may not
 * (docs/operations.md). */
#include "store/store_int.h"

#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "obs/log.h"

#define REDIS_CONNECT_TIMEOUT_MS 500
#define REDIS_COMMAND_TIMEOUT_MS 2000
#define REDIS_BACKOFF_MS 200
#define REDIS_MAX_IDLE 64
#define REDIS_SCAN_COUNT "1000"

typedef struct rd {
    char host[256];
    char password[256];
    int port, db;
    pthread_mutex_t mu;
    redisContext **idle;
    size_t nidle;
    uint64_t down_until_ms;     /* monotonic; 0: not backing off */
    char last_error[256];
} rd;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static struct timeval tv_ms(int ms)
{
    return (struct timeval){ .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
}

/* redis://[:PASSWORD@]HOST[:PORT][/DB] */
static int parse_url(rd *r, const char *url, char *err, size_t errlen)
{
    const char *p = url + strlen("redis://"), *at = strchr(p, '@');
    r->port = 6379;
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *pw = colon ? colon + 1 : p;
        if ((size_t)(at - pw) >= sizeof r->password)
            goto bad;
        memcpy(r->password, pw, (size_t)(at - pw));
        p = at + 1;
    }
    size_t hl = strcspn(p, ":/");
    if (!hl || hl >= sizeof r->host)
        goto bad;
    memcpy(r->host, p, hl);
    p += hl;
    if (*p == ':') {
        char *end;
        long port = strtol(p + 1, &end, 10);
        if (end == p + 1 || port < 1 || port > 65535)
            goto bad;
        r->port = (int)port;
        p = end;
    }
    if (*p == '/' && p[1]) {
        char *end;
        long db = strtol(p + 1, &end, 10);
        if (end == p + 1 || *end || db < 0 || db > 65535)
            goto bad;
        r->db = (int)db;
    } else if (*p && strcmp(p, "/")) {
        goto bad;
    }
    return 0;
bad:
    snprintf(err, errlen, "url %s is not redis://[:PASSWORD@]HOST[:PORT][/DB]", url);
    return -1;
}

static void note_down(keel_store *st, const char *why)
{
    rd *r = st->impl;
    pthread_mutex_lock(&r->mu);
    bool first = r->down_until_ms == 0;
    r->down_until_ms = now_ms() + REDIS_BACKOFF_MS;
    snprintf(r->last_error, sizeof r->last_error, "%s", why);
    pthread_mutex_unlock(&r->mu);
    if (first)
        keel_log(KEEL_LOG_ERROR, NULL, "store %s: redis %s:%d unavailable: %s", st->cfg->name,
                 r->host, r->port, why);
}

/* A command on c; NULL (and c unusable) on a connection failure. */
static redisReply *cmd(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *rep = redisvCommand(c, fmt, ap);
    va_end(ap);
    return rep;
}

static redisContext *connect_one(keel_store *st, char *why, size_t len)
{
    rd *r = st->impl;
    redisContext *c = redisConnectWithTimeout(r->host, r->port, tv_ms(REDIS_CONNECT_TIMEOUT_MS));
    if (!c || c->err) {
        snprintf(why, len, "connect: %s", c ? c->errstr : "out of memory");
        redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv_ms(REDIS_COMMAND_TIMEOUT_MS));
    redisReply *rep = NULL;
    if (r->password[0]) {
        rep = cmd(c, "AUTH %s", r->password);
        if (!rep || rep->type == REDIS_REPLY_ERROR)
            goto fail;
        freeReplyObject(rep);
    }
    if (r->db) {
        rep = cmd(c, "SELECT %d", r->db);
        if (!rep || rep->type == REDIS_REPLY_ERROR)
            goto fail;
        freeReplyObject(rep);
    }
    return c;
fail:
    snprintf(why, len, "%s", rep ? rep->str : c->errstr);
    freeReplyObject(rep);
    redisFree(c);
    return NULL;
}

/* An idle connection, or a new one; NULL while Redis is unavailable. */
static redisContext *acquire(keel_store *st, bool *reused)
{
    rd *r = st->impl;
    pthread_mutex_lock(&r->mu);
    redisContext *c = r->nidle ? r->idle[--r->nidle] : NULL;
    bool backing_off = !c && r->down_until_ms && now_ms() < r->down_until_ms;
    pthread_mutex_unlock(&r->mu);
    *reused = c != NULL;
    if (c || backing_off)
        return c;
    char why[256];
    c = connect_one(st, why, sizeof why);
    if (!c) {
        note_down(st, why);
        return NULL;
    }
    pthread_mutex_lock(&r->mu);
    bool was_down = r->down_until_ms != 0;
    r->down_until_ms = 0;
    pthread_mutex_unlock(&r->mu);
    if (was_down)
        keel_log(KEEL_LOG_INFO, NULL, "store %s: redis %s:%d reconnected", st->cfg->name,
                 r->host, r->port);
    return c;
}

static void release(keel_store *st, redisContext *c)
{
    rd *r = st->impl;
    if (c->err) {
        redisFree(c);
        return;
    }
    pthread_mutex_lock(&r->mu);
    if (r->nidle < REDIS_MAX_IDLE) {
        r->idle[r->nidle++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&r->mu);
    redisFree(c);
}

/* Drops every idle connection (after one failed: Redis likely restarted). */
static void drop_idle(keel_store *st)
{
    rd *r = st->impl;
    pthread_mutex_lock(&r->mu);
    size_t n = r->nidle;
    redisContext *v[REDIS_MAX_IDLE];
    memcpy(v, r->idle, n * sizeof *v);
    r->nidle = 0;
    pthread_mutex_unlock(&r->mu);
    for (size_t i = 0; i < n; i++)
        redisFree(v[i]);
}

/* Runs one command (argv form) and returns its reply. idempotent: on a
 * failure of a reused connection (it may predate a Redis restart), retry
 * once on a fresh one. NULL: unavailable (logged). */
static redisReply *run(keel_store *st, bool idempotent, int argc, const char **argv,
                       const size_t *lens)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        bool reused;
        redisContext *c = acquire(st, &reused);
        if (!c)
            return NULL;
        redisReply *rep = redisCommandArgv(c, argc, argv, lens);
        if (rep) {
            release(st, c);
            return rep;
        }
        char why[256];
        snprintf(why, sizeof why, "%s", c->errstr);
        redisFree(c);
        drop_idle(st);
        if (!(reused && idempotent)) {
            note_down(st, why);
            return NULL;
        }
    }
    return NULL;
}

/* PREFIX+key into buf (at least prefix + KEEL_KV_MAX_KEY bytes). */
static size_t full_key(keel_store *st, const void *key, size_t klen, char *buf)
{
    size_t pl = strlen(st->cfg->prefix);
    memcpy(buf, st->cfg->prefix, pl);
    memcpy(buf + pl, key, klen);
    return pl + klen;
}

static int reply_error(keel_store *st, const char *op, redisReply *rep)
{
    keel_log(KEEL_LOG_ERROR, NULL, "store %s: %s failed: %s", st->cfg->name, op,
             rep->str ? rep->str : "unexpected reply");
    int rc = rep->str && strstr(rep->str, "OOM") ? KEEL_KV_EFULL : KEEL_KV_EIO;
    freeReplyObject(rep);
    return rc;
}

static int rd_open(keel_store *st, char *err, size_t errlen)
{
    rd *r = calloc(1, sizeof *r);
    if (!r || !(r->idle = calloc(REDIS_MAX_IDLE, sizeof *r->idle)))
        abort();
    pthread_mutex_init(&r->mu, NULL);
    st->impl = r;
    if (parse_url(r, st->cfg->url, err, errlen)) {
        pthread_mutex_destroy(&r->mu);
        free(r->idle);
        free(r);
        st->impl = NULL;
        return -1;
    }
    /* A Redis that is down is not fatal: say so and carry on. */
    bool reused;
    redisContext *c = acquire(st, &reused);
    if (c)
        release(st, c);
    return 0;
}

static void rd_close(keel_store *st)
{
    rd *r = st->impl;
    if (!r)
        return;
    for (size_t i = 0; i < r->nidle; i++)
        redisFree(r->idle[i]);
    pthread_mutex_destroy(&r->mu);
    free(r->idle);
    free(r);
    st->impl = NULL;
}

static bool rd_ready(keel_store *st, char *why, size_t len)
{
    const char *argv[] = { "PING" };
    size_t lens[] = { 4 };
    redisReply *rep = run(st, true, 1, argv, lens);
    if (rep && rep->type != REDIS_REPLY_ERROR) {
        freeReplyObject(rep);
        return true;
    }
    rd *r = st->impl;
    pthread_mutex_lock(&r->mu);
    snprintf(why, len, "redis %s:%d unavailable: %s", r->host, r->port,
             rep && rep->str ? rep->str : r->last_error);
    pthread_mutex_unlock(&r->mu);
    freeReplyObject(rep);
    return false;
}

static int rd_get(keel_store *st, const void *key, size_t klen, keel_kv_bytes *out)
{
    char k[512 + KEEL_KV_MAX_KEY];
    const char *argv[] = { "GET", k };
    size_t lens[] = { 3, full_key(st, key, klen, k) };
    redisReply *rep = run(st, true, 2, argv, lens);
    if (!rep)
        return KEEL_KV_EUNAVAIL;
    if (rep->type == REDIS_REPLY_NIL) {
        freeReplyObject(rep);
        return KEEL_KV_ABSENT;
    }
    if (rep->type != REDIS_REPLY_STRING)
        return reply_error(st, "get", rep);
    out->data = malloc(rep->len ? rep->len : 1);
    if (!out->data)
        abort();
    memcpy(out->data, rep->str, rep->len);
    out->len = rep->len;
    freeReplyObject(rep);
    return 0;
}

static int rd_set(keel_store *st, const void *key, size_t klen, const void *val, size_t vlen)
{
    char k[512 + KEEL_KV_MAX_KEY];
    const char *argv[] = { "SET", k, vlen ? val : "" };
    size_t lens[] = { 3, full_key(st, key, klen, k), vlen };
    redisReply *rep = run(st, true, 3, argv, lens);
    if (!rep)
        return KEEL_KV_EUNAVAIL;
    if (rep->type == REDIS_REPLY_ERROR)
        return reply_error(st, "set", rep);
    freeReplyObject(rep);
    return 0;
}

static int rd_del(keel_store *st, const void *key, size_t klen)
{
    char k[512 + KEEL_KV_MAX_KEY];
    const char *argv[] = { "DEL", k };
    size_t lens[] = { 3, full_key(st, key, klen, k) };
    redisReply *rep = run(st, true, 2, argv, lens);
    if (!rep)
        return KEEL_KV_EUNAVAIL;
    if (rep->type != REDIS_REPLY_INTEGER)
        return reply_error(st, "delete", rep);
    int rc = rep->integer ? 0 : KEEL_KV_ABSENT;
    freeReplyObject(rep);
    return rc;
}

static int rd_incr(keel_store *st, const void *key, size_t klen, int64_t delta, int64_t *out)
{
    char k[512 + KEEL_KV_MAX_KEY], d[24];
    const char *argv[] = { "INCRBY", k, d };
    size_t lens[] = { 6, full_key(st, key, klen, k),
                      (size_t)snprintf(d, sizeof d, "%lld", (long long)delta) };
    /* not idempotent: never retried, a lost reply is "unavailable" */
    redisReply *rep = run(st, false, 3, argv, lens);
    if (!rep)
        return KEEL_KV_EUNAVAIL;
    if (rep->type == REDIS_REPLY_ERROR) {
        int rc = rep->str && strstr(rep->str, "not an integer") ? KEEL_KV_ENOTNUM
               : rep->str && strstr(rep->str, "overflow") ? KEEL_KV_ERANGE : 0;
        if (rc) {
            freeReplyObject(rep);
            return rc;
        }
        return reply_error(st, "incr", rep);
    }
    if (rep->type != REDIS_REPLY_INTEGER)
        return reply_error(st, "incr", rep);
    int64_t v = rep->integer;
    freeReplyObject(rep);
    if (v < KEEL_KV_COUNTER_MIN) {
        /* Into the reserved range: undo (Redis has no bounded INCRBY). */
        snprintf(d, sizeof d, "%lld", (long long)delta);
        const char *uargv[] = { "DECRBY", k, d };
        size_t ulens[] = { 6, lens[1], strlen(d) };
        redisReply *u = run(st, false, 3, uargv, ulens);
        freeReplyObject(u);
        return KEEL_KV_ERANGE;
    }
    *out = v;
    return 0;
}

/* MATCH pattern for PREFIX+prefix: glob characters escaped, then '*'. */
static size_t match_pattern(const char *a, size_t alen, const uint8_t *b, size_t blen,
                            char *out)
{
    size_t k = 0;
    for (size_t i = 0; i < alen + blen; i++) {
        char ch = i < alen ? a[i] : (char)b[i - alen];
        if (strchr("*?[]\\", ch) && ch)
            out[k++] = '\\';
        out[k++] = ch;
    }
    out[k++] = '*';
    return k;
}

static int rd_keys(keel_store *st, const void *prefix, size_t plen, keel_kv_bytes *out)
{
    const char *sp = st->cfg->prefix;
    size_t spl = strlen(sp);
    char *pat = malloc(2 * (spl + plen) + 2);
    if (!pat)
        abort();
    size_t patlen = match_pattern(sp, spl, prefix, plen, pat);
    char cursor[32] = "0";
    store_key *keys = NULL;
    redisReply **held = NULL;
    size_t nkeys = 0, capkeys = 0, nheld = 0, capheld = 0, bytes = 0;
    int rc = 0;
    do {
        const char *argv[] = { "SCAN", cursor, "MATCH", pat, "COUNT", REDIS_SCAN_COUNT };
        size_t lens[] = { 4, strlen(cursor), 5, patlen, 5, strlen(REDIS_SCAN_COUNT) };
        redisReply *rep = run(st, true, 6, argv, lens);
        if (!rep) {
            rc = KEEL_KV_EUNAVAIL;
            break;
        }
        if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
            rep->element[0]->type != REDIS_REPLY_STRING ||
            rep->element[1]->type != REDIS_REPLY_ARRAY) {
            rc = reply_error(st, "keys", rep);
            break;
        }
        snprintf(cursor, sizeof cursor, "%s", rep->element[0]->str);
        if (nheld == capheld) {
            capheld = capheld ? capheld * 2 : 8;
            void *grown = realloc(held, capheld * sizeof *held);
            if (!grown)
                abort();
            held = grown;
        }
        held[nheld++] = rep;
        redisReply *arr = rep->element[1];
        for (size_t i = 0; i < arr->elements; i++) {
            redisReply *e = arr->element[i];
            if (e->type != REDIS_REPLY_STRING || e->len < spl + plen)
                continue;
            if (nkeys == capkeys) {
                capkeys = capkeys ? capkeys * 2 : 64;
                void *grown = realloc(keys, capkeys * sizeof *keys);
                if (!grown)
                    abort();
                keys = grown;
            }
            keys[nkeys++] = (store_key){ (const uint8_t *)e->str + spl, e->len - spl };
            bytes += e->len - spl + 1;
        }
        if (bytes > KEEL_KV_MAX_KEYS_BYTES)
            rc = KEEL_KV_ETOOBIG;
    } while (!rc && strcmp(cursor, "0"));
    /* SCAN may return a key twice: pack, then drop repeats */
    if (!rc && (rc = store_pack_keys(keys, nkeys, out)) == 0) {
        size_t w = 0, r = 0;
        const uint8_t *prev = NULL;
        size_t prevlen = 0;
        while (r < out->len) {
            size_t n = strlen((const char *)out->data + r);
            if (!(prev && prevlen == n && !memcmp(out->data + w - n - 1, out->data + r, n))) {
                memmove(out->data + w, out->data + r, n + 1);
                prev = out->data + w;
                prevlen = n;
                w += n + 1;
            }
            r += n + 1;
        }
        out->len = w;
    }
    for (size_t i = 0; i < nheld; i++)
        freeReplyObject(held[i]);
    free(held);
    free(keys);
    free(pat);
    return rc;
}

const store_ops keel_store_redis_ops = {
    .open = rd_open, .close = rd_close, .ready = rd_ready, .get = rd_get, .set = rd_set,
    .del = rd_del, .keys = rd_keys, .incr = rd_incr,
};
