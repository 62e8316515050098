/* json.c — generate a JSON document in memory and parse it repeatedly.
 *
 * Builds a ~1 MB JSON text (an array of records with string, integer,
 * boolean, null, nested array and nested object fields, plus escapes) from
 * the LCG, then parses it `size` times with a recursive-descent parser that
 * validates the grammar, decodes numbers and string escapes, and folds every
 * key, string, number and structure into a checksum. Exercises byte-at-a-time
 * scanning, unpredictable branches and small function calls, the profile of
 * request parsing in a web service. */
#include "bench.h"
#include <string.h>

typedef struct {
    char *p;
    size_t len, cap;
} buf_t;

static void put(buf_t *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        while (b->len + n + 1 > b->cap)
            b->cap = b->cap ? b->cap * 2 : 4096;
        b->p = realloc(b->p, b->cap);
        if (b->p == NULL) {
            fprintf(stderr, "json: out of memory\n");
            exit(3);
        }
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void puts_(buf_t *b, const char *s) { put(b, s, strlen(s)); }

static void put_int(buf_t *b, int64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%" PRId64, v);
    put(b, tmp, (size_t)n);
}

static void put_word(buf_t *b, bench_rng *r)
{
    static const char *const syl[] = {
        "ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "ze", "qu", "\\n",
        "\\\"", "\\u00e9", "  ", "x", "-",
    };
    int n = 1 + (int)(bench_next(r) % 6);
    put(b, "\"", 1);
    for (int i = 0; i < n; i++)
        puts_(b, syl[bench_next(r) % 16]);
    put(b, "\"", 1);
}

static void gen_value(buf_t *b, bench_rng *r, int depth);

static void gen_record(buf_t *b, bench_rng *r, int depth)
{
    static const char *const keys[] = {
        "id", "name", "price", "tags", "active", "owner", "score", "note",
    };
    int fields = 3 + (int)(bench_next(r) % 6);
    uint32_t first = bench_next(r) % 8;
    put(b, "{", 1);
    for (int i = 0; i < fields; i++) {
        if (i) put(b, ", ", 2);
        put(b, "\"", 1);
        puts_(b, keys[(first + (uint32_t)i) % 8]);
        put(b, "\": ", 3);
        gen_value(b, r, depth + 1);
    }
    put(b, "}", 1);
}

static void gen_value(buf_t *b, bench_rng *r, int depth)
{
    uint32_t k = bench_next(r) % (depth < 3 ? 10 : 7);
    switch (k) {
    case 0: case 1: put_int(b, (int32_t)bench_next(r) / 1000); break;
    case 2: case 3: put_word(b, r); break;
    case 4: puts_(b, bench_next(r) & 1 ? "true" : "false"); break;
    case 5: puts_(b, "null"); break;
    case 6: put_int(b, bench_next(r) % 100); break;
    case 7: case 8: {
        int n = (int)(bench_next(r) % 5);
        put(b, "[", 1);
        for (int i = 0; i < n; i++) {
            if (i) put(b, ",", 1);
            gen_value(b, r, depth + 1);
        }
        put(b, "]", 1);
        break;
    }
    default: gen_record(b, r, depth); break;
    }
}

/* ---- parser ---- */

typedef struct {
    const char *s;
    size_t pos, len;
    uint64_t hash;
    long values;
    int64_t int_sum;
    int error;
} parser;

static void fail(parser *p) { p->error = 1; p->pos = p->len; }

static void skip_ws(parser *p)
{
    while (p->pos < p->len) {
        char c = p->s[p->pos];
        if (c != ' ' && c != '\n' && c != '\t' && c != '\r')
            break;
        p->pos++;
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Parses a string at p->pos (on the quote) and returns its FNV hash of the
 * decoded bytes (code points above 0x7f hashed as 32-bit units). */
static uint64_t parse_string(parser *p)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    p->pos++;
    while (p->pos < p->len) {
        unsigned char c = (unsigned char)p->s[p->pos++];
        uint32_t cp;
        if (c == '"')
            return h;
        if (c < 0x20) { fail(p); return 0; }
        if (c != '\\') {
            cp = c;
        } else {
            if (p->pos >= p->len) { fail(p); return 0; }
            char e = p->s[p->pos++];
            switch (e) {
            case '"': cp = '"'; break;
            case '\\': cp = '\\'; break;
            case '/': cp = '/'; break;
            case 'n': cp = '\n'; break;
            case 't': cp = '\t'; break;
            case 'r': cp = '\r'; break;
            case 'b': cp = '\b'; break;
            case 'f': cp = '\f'; break;
            case 'u':
                cp = 0;
                for (int i = 0; i < 4; i++) {
                    int v = p->pos < p->len ? hexval(p->s[p->pos++]) : -1;
                    if (v < 0) { fail(p); return 0; }
                    cp = cp << 4 | (uint32_t)v;
                }
                break;
            default: fail(p); return 0;
            }
        }
        h = (h ^ cp) * 0x100000001b3ULL;
    }
    fail(p);
    return 0;
}

static void parse_value(parser *p);

static void parse_number(parser *p)
{
    int neg = 0;
    int64_t v = 0;
    if (p->s[p->pos] == '-') { neg = 1; p->pos++; }
    if (p->pos >= p->len || p->s[p->pos] < '0' || p->s[p->pos] > '9') {
        fail(p);
        return;
    }
    while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
        v = v * 10 + (p->s[p->pos++] - '0');
    if (neg) v = -v;
    p->int_sum += v;
    p->hash = bench_mix(p->hash, (uint64_t)v);
}

static int literal(parser *p, const char *word, uint64_t tag)
{
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0) {
        fail(p);
        return 0;
    }
    p->pos += n;
    p->hash = bench_mix(p->hash, tag);
    return 1;
}

static void parse_value(parser *p)
{
    skip_ws(p);
    if (p->pos >= p->len) { fail(p); return; }
    p->values++;
    char c = p->s[p->pos];
    if (c == '{') {
        p->pos++;
        skip_ws(p);
        long fields = 0;
        if (p->pos < p->len && p->s[p->pos] == '}') { p->pos++; }
        else for (;;) {
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != '"') { fail(p); return; }
            p->hash = bench_mix(p->hash, parse_string(p) ^ 0x4b);
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != ':') { fail(p); return; }
            p->pos++;
            parse_value(p);
            fields++;
            skip_ws(p);
            if (p->pos < p->len && p->s[p->pos] == ',') { p->pos++; continue; }
            if (p->pos < p->len && p->s[p->pos] == '}') { p->pos++; break; }
            fail(p);
            return;
        }
        p->hash = bench_mix(p->hash, 0x7b00 + (uint64_t)fields);
    } else if (c == '[') {
        p->pos++;
        skip_ws(p);
        long items = 0;
        if (p->pos < p->len && p->s[p->pos] == ']') { p->pos++; }
        else for (;;) {
            parse_value(p);
            items++;
            skip_ws(p);
            if (p->pos < p->len && p->s[p->pos] == ',') { p->pos++; continue; }
            if (p->pos < p->len && p->s[p->pos] == ']') { p->pos++; break; }
            fail(p);
            return;
        }
        p->hash = bench_mix(p->hash, 0x5b00 + (uint64_t)items);
    } else if (c == '"') {
        p->hash = bench_mix(p->hash, parse_string(p));
    } else if (c == 't') {
        literal(p, "true", 1);
    } else if (c == 'f') {
        literal(p, "false", 2);
    } else if (c == 'n') {
        literal(p, "null", 3);
    } else {
        parse_number(p);
    }
}

int main(int argc, char **argv)
{
    long reps = bench_size(argc, argv, 200);
    buf_t doc = { 0 };
    bench_rng r = { 31337 };
    put(&doc, "[\n", 2);
    for (int i = 0; doc.len < (1u << 20); i++) {
        if (i) put(&doc, ",\n", 2);
        gen_record(&doc, &r, 0);
    }
    put(&doc, "\n]\n", 3);

    uint64_t total = 0;
    parser p = { 0 };
    for (long rep = 0; rep < reps; rep++) {
        memset(&p, 0, sizeof p);
        p.s = doc.p;
        p.len = doc.len;
        parse_value(&p);
        skip_ws(&p);
        if (p.error || p.pos != p.len) {
            fprintf(stderr, "json: parse error near byte %zu\n", p.pos);
            return 1;
        }
        total = bench_mix(total, p.hash);
    }
    printf("json bytes=%zu reps=%ld values=%ld int_sum=%" PRId64
           " checksum=%016" PRIx64 "\n",
           doc.len, reps, p.values, p.int_sum, total);
    free(doc.p);
    return 0;
}
