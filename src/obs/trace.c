/* trace.c — trace context: traceparent parsing and formatting, random ids,
 * span text fields. (The span rings and the exporter are otlp.c.) */
#include "obs/trace.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;     /* upper case is invalid in traceparent */
}

static bool unhex(const char *s, size_t n, uint8_t *out)
{
    bool nonzero = false;
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
        nonzero |= out[i] != 0;
    }
    return nonzero;
}

bool keel_traceparent_parse(const char *v, size_t len, keel_trace_ctx *out)
{
    /* 00-<32 hex>-<16 hex>-<2 hex>: 55 bytes */
    while (len && (v[len - 1] == ' ' || v[len - 1] == '\t'))
        len--;
    while (len && (*v == ' ' || *v == '\t')) {
        v++;
        len--;
    }
    if (len < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-')
        return false;
    uint8_t ver, flags;
    if (hexval(v[0]) < 0 || hexval(v[1]) < 0)
        return false;
    ver = (uint8_t)(hexval(v[0]) << 4 | hexval(v[1]));
    if (ver == 0xff || (ver == 0 && len != 55) || (len > 55 && v[55] != '-'))
        return false;
    keel_trace_ctx c;
    memset(&c, 0, sizeof c);
    if (!unhex(v + 3, 16, c.trace_id) || !unhex(v + 36, 8, c.span_id))
        return false;
    if (hexval(v[53]) < 0 || hexval(v[54]) < 0)
        return false;
    flags = (uint8_t)(hexval(v[53]) << 4 | hexval(v[54]));
    c.sampled = flags & 1;
    *out = c;
    return true;
}

/* Each byte's two hex digits, for one load per byte. */
#define HEX_ROW(h) h "0" h "1" h "2" h "3" h "4" h "5" h "6" h "7" \
                   h "8" h "9" h "a" h "b" h "c" h "d" h "e" h "f"
static const char hex_pairs[513] =
    HEX_ROW("0") HEX_ROW("1") HEX_ROW("2") HEX_ROW("3") HEX_ROW("4") HEX_ROW("5")
    HEX_ROW("6") HEX_ROW("7") HEX_ROW("8") HEX_ROW("9") HEX_ROW("a") HEX_ROW("b")
    HEX_ROW("c") HEX_ROW("d") HEX_ROW("e") HEX_ROW("f");

void keel_trace_hex(const uint8_t *id, size_t len, char *out)
{
    for (size_t i = 0; i < len; i++)
        memcpy(out + 2 * i, hex_pairs + 2 * id[i], 2);
    out[2 * len] = 0;
}

void keel_traceparent_format(const keel_trace_ctx *c, char out[56])
{
    char t[33], s[17];
    keel_trace_hex(c->trace_id, 16, t);
    keel_trace_hex(c->span_id, 8, s);
    snprintf(out, 56, "00-%s-%s-%s", t, s, c->sampled ? "01" : "00");
}

/* xoshiro-style per-thread generator; ids need uniqueness, not secrecy. */
static _Thread_local uint64_t rng_state[2];

static uint64_t next64(void)
{
    if (!rng_state[0] && !rng_state[1]) {
        if (getrandom(rng_state, sizeof rng_state, 0) != (ssize_t)sizeof rng_state) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            rng_state[0] = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)&ts;
            rng_state[1] = (uint64_t)ts.tv_sec ^ 0xd1b54a32d192ed03ull;
        }
        rng_state[0] |= 1;
    }
    uint64_t s1 = rng_state[0];
    const uint64_t s0 = rng_state[1];
    uint64_t r = s0 + s1;
    rng_state[0] = s0;
    s1 ^= s1 << 23;
    rng_state[1] = s1 ^ s0 ^ (s1 >> 18) ^ (s0 >> 5);
    return r;
}

void keel_trace_new_id(uint8_t *id, size_t len)
{
    bool nonzero;
    do {
        nonzero = false;
        for (size_t i = 0; i < len; i += 8) {
            uint64_t r = next64();
            size_t n = len - i < 8 ? len - i : 8;
            memcpy(id + i, &r, n);
        }
        for (size_t i = 0; i < len; i++)
            nonzero |= id[i] != 0;
    } while (!nonzero);
}

void keel_trace_new_span_hex(char out[17])
{
    uint8_t id[8];
    keel_trace_new_id(id, sizeof id);
    keel_trace_hex(id, sizeof id, out);
}

void keel_span_text(char *dst, size_t cap, const char *src, size_t len)
{
    if (!cap)
        return;
    if (!src)
        len = 0;
    if (len >= cap)
        len = cap - 1;
    if (len)
        memcpy(dst, src, len);
    dst[len] = 0;
}

/* Each field's size with its NUL (keel_span_text's cap). */
static const uint16_t field_cap[KEEL_SF_COUNT] = {
    [KEEL_SF_NAME] = KEEL_SPAN_TEXT, [KEEL_SF_STATE] = KEEL_TRACE_MAX_STATE,
    [KEEL_SF_COMPONENT] = KEEL_SPAN_TEXT, [KEEL_SF_OPERATION] = KEEL_SPAN_TEXT,
    [KEEL_SF_CALLER] = KEEL_SPAN_TEXT, [KEEL_SF_OUTCOME] = 32,
    [KEEL_SF_REQUEST_ID] = KEEL_SPAN_TEXT, [KEEL_SF_STORE] = KEEL_SPAN_TEXT,
    [KEEL_SF_ROUTE] = KEEL_SPAN_TEXT, [KEEL_SF_METHOD] = 16,
};

void keel_span_set(keel_span *s, keel_span_field f, const char *src, size_t len)
{
    size_t cap = field_cap[f] - 1u;
    if (!src || len > cap)
        len = src ? cap : 0;
    if (len > KEEL_SPAN_TEXT_BYTES - s->used)   /* only when a field is set twice */
        len = KEEL_SPAN_TEXT_BYTES - s->used;
    memcpy(s->text + s->used, src ? src : "", len);
    s->at[f] = s->used;
    s->len[f] = (uint8_t)len;
    s->used = (uint16_t)(s->used + len);
    s->last = (uint8_t)f;
}

void keel_span_add(keel_span *s, const char *src, size_t len)
{
    keel_span_field f = (keel_span_field)s->last;
    size_t have = s->len[f], room = field_cap[f] - 1u - have;
    if (s->at[f] + have != s->used)   /* another field follows: nothing to extend */
        return;
    if (len > room)
        len = room;
    if (len > KEEL_SPAN_TEXT_BYTES - s->used)
        len = KEEL_SPAN_TEXT_BYTES - s->used;
    if (!len)
        return;
    memcpy(s->text + s->used, src, len);
    s->len[f] = (uint8_t)(have + len);
    s->used = (uint16_t)(s->used + len);
}

const char *keel_span_get(const keel_span *s, keel_span_field f, size_t *len)
{
    *len = s->len[f];
    return s->text + s->at[f];
}

uint64_t keel_trace_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

double keel_trace_uniform(void)
{
    return (double)(next64() >> 11) / 9007199254740992.0;
}
