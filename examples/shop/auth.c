/* auth.c — logins and tokens. No routes of its own: the gateway calls it.
 *   login  (payload: {"user":"alice","password":"..."})
 *          -> 200 {"user":"alice","token":"alice.<hex>"} | 400 | 401
 *   verify (payload: a token) -> 200 {"user":"alice"} | 401
 * A token is "USER." + hex(HMAC-SHA256(secret, "shop-token:" USER)), so it
 * needs no storage: verify recomputes it. Config: secret (at least 16
 * bytes), users ("name:password,name:password"). A demo: passwords sit in
 * the manifest in clear and tokens never expire.
 * Replies follow shop.h's "NNN\n" rule. */
#define KEEL_IMPLEMENTATION
#include "shop.h"

#include <stdint.h>

/* ---------------------------------------------------- SHA-256 (FIPS 180-4) */

typedef struct {
    uint32_t h[8];
    uint8_t blk[64];
    size_t nblk;
    uint64_t bytes;
} sha256;

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha_block(sha256 *s, const uint8_t *p)
{
    uint32_t w[64], v[8];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++)
        w[i] = w[i - 16] + (ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3)) +
               w[i - 7] + (ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10));
    memcpy(v, s->h, sizeof v);
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = v[7] + (ROR(v[4], 6) ^ ROR(v[4], 11) ^ ROR(v[4], 25)) +
                      ((v[4] & v[5]) ^ (~v[4] & v[6])) + K[i] + w[i];
        uint32_t t2 = (ROR(v[0], 2) ^ ROR(v[0], 13) ^ ROR(v[0], 22)) +
                      ((v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]));
        memmove(v + 1, v, 7 * sizeof *v);
        v[4] += t1;
        v[0] = t1 + t2;
    }
    for (int i = 0; i < 8; i++)
        s->h[i] += v[i];
}

static void sha_init(sha256 *s)
{
    static const uint32_t h0[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };
    memcpy(s->h, h0, sizeof h0);
    s->nblk = 0;
    s->bytes = 0;
}

static void sha_add(sha256 *s, const void *data, size_t len)
{
    const uint8_t *p = data;
    s->bytes += len;
    while (len--) {
        s->blk[s->nblk++] = *p++;
        if (s->nblk == 64) {
            sha_block(s, s->blk);
            s->nblk = 0;
        }
    }
}

static void sha_end(sha256 *s, uint8_t out[32])
{
    uint64_t bits = s->bytes * 8;
    uint8_t pad = 0x80, len[8];
    sha_add(s, &pad, 1);
    pad = 0;
    while (s->nblk != 56)
        sha_add(s, &pad, 1);
    for (int i = 0; i < 8; i++)
        len[i] = (uint8_t)(bits >> (56 - 8 * i));
    sha_add(s, len, 8);
    for (int i = 0; i < 32; i++)
        out[i] = (uint8_t)(s->h[i / 4] >> (24 - 8 * (i % 4)));
}

/* HMAC-SHA256 (RFC 2104) of msg under key. */
static void hmac(const char *key, const char *msg, uint8_t out[32])
{
    uint8_t k[64] = { 0 }, pad[64], inner[32];
    sha256 s;
    if (strlen(key) > 64) {
        sha_init(&s);
        sha_add(&s, key, strlen(key));
        sha_end(&s, k);
    } else {
        memcpy(k, key, strlen(key));
    }
    for (int i = 0; i < 64; i++)
        pad[i] = k[i] ^ 0x36;
    sha_init(&s);
    sha_add(&s, pad, 64);
    sha_add(&s, msg, strlen(msg));
    sha_end(&s, inner);
    for (int i = 0; i < 64; i++)
        pad[i] = k[i] ^ 0x5c;
    sha_init(&s);
    sha_add(&s, pad, 64);
    sha_add(&s, inner, 32);
    sha_end(&s, out);
}

/* ------------------------------------------------------------- tokens */

static jbuf out;

/* The config value for key, or NULL (and the call fails) when it is absent
 * or does not fit. */
static const char *config(const char *key, char *buf, size_t cap)
{
    int n = keel_config(key, buf, cap);
    if (n < 0 || (size_t)n >= cap) {
        keel_logf(KEEL_ERROR, "config %s is missing or longer than %zu bytes", key, cap - 1);
        keel_fail("auth is misconfigured");
        return NULL;
    }
    return buf;
}

/* Writes "USER.<64 hex>" to tok (cap >= 32 + 1 + 64 + 1). */
static int make_token(const char *user, char *tok, size_t cap)
{
    char secret[256], msg[64];
    uint8_t mac[32];
    if (!config("secret", secret, sizeof secret))
        return -1;
    if (strlen(secret) < 16) {
        keel_fail("auth is misconfigured: secret shorter than 16 bytes");
        return -1;
    }
    snprintf(msg, sizeof msg, "shop-token:%s", user);
    hmac(secret, msg, mac);
    int n = snprintf(tok, cap, "%s.", user);
    for (int i = 0; i < 32; i++)
        n += snprintf(tok + n, cap - (size_t)n, "%02x", mac[i]);
    return 0;
}

/* 1 when users ("a:pw,b:pw") has user, and password matches (NULL: any). */
static int known_user(const char *users, const char *user, const char *password)
{
    size_t ul = strlen(user);
    for (const char *p = users; *p;) {
        const char *end = strchr(p, ','), *colon = strchr(p, ':');
        if (!end)
            end = p + strlen(p);
        if (colon && colon < end && (size_t)(colon - p) == ul && memcmp(p, user, ul) == 0)
            return !password || ((size_t)(end - colon - 1) == strlen(password) &&
                                 memcmp(colon + 1, password, strlen(password)) == 0);
        p = *end ? end + 1 : end;
    }
    return 0;
}

#define BAD_LOGIN "expected a JSON object {\"user\":...,\"password\":...}"

static void login(const uint8_t *payload, size_t len)
{
    jcur c = { (const char *)payload, (const char *)payload + len };
    char key[16], user[64] = "", password[128] = "", users[1024], tok[128];
    int first = 1, r = -1;
    if (jc_eat(&c, '{'))
        while ((r = jc_key(&c, &first, key, sizeof key)) == 1)
            if (!(strcmp(key, "user") == 0 && jc_string(&c, user, sizeof user)) &&
                !(strcmp(key, "password") == 0 && jc_string(&c, password, sizeof password))) {
                r = -1;
                break;
            }
    if (r < 0 || !jc_done(&c) || !*user || !*password) {
        shop_error(400, BAD_LOGIN);
        return;
    }
    if (!config("users", users, sizeof users))
        return;
    if (!shop_name_ok(user) || !known_user(users, user, password)) {
        keel_logf(KEEL_INFO, "failed login for %s", shop_name_ok(user) ? user : "(bad name)");
        shop_error(401, "wrong user or password");
        return;
    }
    if (make_token(user, tok, sizeof tok))
        return;
    keel_logf(KEEL_INFO, "login %s", user);
    jb_printf(&out, "{\"user\":");
    jb_str(&out, user);
    jb_printf(&out, ",\"token\":");
    jb_str(&out, tok);
    jb_printf(&out, "}");
    shop_reply(200, &out);
}

/* 1 when tok is "USER.<mac>" with the right mac; user gets USER. */
static int token_ok(const uint8_t *tok, size_t len, char *user, size_t cap)
{
    char expect[128];
    const uint8_t *dot = memchr(tok, '.', len);
    if (!dot || (size_t)(dot - tok) >= cap)
        return 0;
    memcpy(user, tok, (size_t)(dot - tok));
    user[dot - tok] = 0;
    if (!shop_name_ok(user) || make_token(user, expect, sizeof expect))
        return 0;
    if (len != strlen(expect))
        return 0;
    unsigned diff = 0;   /* constant time: compare every byte */
    for (size_t i = 0; i < len; i++)
        diff |= (unsigned)(tok[i] ^ (uint8_t)expect[i]);
    return diff == 0;
}

static void verify(const uint8_t *payload, size_t len)
{
    char user[64], users[1024];
    if (!token_ok(payload, len, user, sizeof user)) {
        shop_error(401, "invalid token");
        return;
    }
    if (!config("users", users, sizeof users))
        return;
    if (!known_user(users, user, NULL)) {   /* removed from the manifest since */
        shop_error(401, "invalid token");
        return;
    }
    jb_printf(&out, "{\"user\":");
    jb_str(&out, user);
    jb_printf(&out, "}");
    shop_reply(200, &out);
}

KEEL_INIT
{
    keel_register("login", login);
    keel_register("verify", verify);
}
