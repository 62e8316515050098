/* wasm_parse.c — see wasm_parse.h. Every read goes through the reader's
 * bounds; a short read is an error naming the offset. */
#include "engine/wasm_parse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/errors.h"

/* Bounds on what a module may declare, far above real programs. */
#define WASM_MAX_TYPES 1000000u
#define WASM_MAX_IMPORTS 100000u
#define WASM_MAX_EXPORTS 100000u
#define WASM_MAX_FUNCS 10000000u
#define WASM_MAX_PARAMS 1000u
#define WASM_MAX_NAME 100000u

typedef struct reader {
    const uint8_t *base;
    size_t pos, end;
    char *err;
    size_t errlen;
    int failed;
} reader;

static int fail(reader *r, const char *what)
{
    if (!r->failed)
        keel_err(r->err, r->errlen, KEEL_EINVAL, "%s at offset 0x%zx", what, r->pos);
    r->failed = 1;
    return -1;
}

static int u8(reader *r, uint8_t *v)
{
    if (r->pos >= r->end)
        return fail(r, "unexpected end (truncated module)");
    *v = r->base[r->pos++];
    return 0;
}

static int leb_u32(reader *r, uint32_t *v)
{
    uint64_t result = 0;
    for (int shift = 0; shift < 35; shift += 7) {
        uint8_t b = 0;
        if (u8(r, &b))
            return -1;
        result |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            if (result > UINT32_MAX)
                return fail(r, "integer too large");
            *v = (uint32_t)result;
            return 0;
        }
    }
    return fail(r, "integer representation too long");
}

static int skip(reader *r, size_t n)
{
    if (n > r->end - r->pos)
        return fail(r, "unexpected end (truncated module)");
    r->pos += n;
    return 0;
}

static int skip_leb(reader *r)
{
    for (int i = 0; i < 10; i++) {
        uint8_t b = 0;
        if (u8(r, &b))
            return -1;
        if (!(b & 0x80))
            return 0;
    }
    return fail(r, "integer representation too long");
}

static int name(reader *r, char **out, size_t *len)
{
    uint32_t n;
    if (leb_u32(r, &n))
        return -1;
    if (n > WASM_MAX_NAME)
        return fail(r, "name too long");
    if (n > r->end - r->pos)
        return fail(r, "unexpected end (truncated module)");
    char *s = malloc((size_t)n + 1);
    if (!s)
        abort();
    memcpy(s, r->base + r->pos, n);
    s[n] = '\0';
    r->pos += n;
    *out = s;
    *len = n;
    return 0;
}

/* Value type letter, or 0 for v128 (sets *simd). */
static int valtype(reader *r, char *c, bool *simd)
{
    uint8_t b;
    if (u8(r, &b))
        return -1;
    switch (b) {
    case 0x7f: *c = 'i'; return 0;
    case 0x7e: *c = 'I'; return 0;
    case 0x7d: *c = 'f'; return 0;
    case 0x7c: *c = 'F'; return 0;
    case 0x7b: *c = 'v'; *simd = true; return 0;
    case 0x70: *c = 'r'; return 0;
    case 0x6f: *c = 'e'; return 0;
    }
    r->pos--;
    return fail(r, "invalid value type");
}

static int limits(reader *r)
{
    uint8_t flags;
    if (u8(r, &flags) || skip_leb(r))
        return -1;
    if (flags & 1)
        return skip_leb(r);
    return 0;
}

typedef struct parse_state {
    char **types;
    uint32_t ntypes;
    uint32_t *func_types;   /* type index per function, imports first */
    uint32_t nfuncs;
    char **global_sigs;     /* per global, imports first */
    uint32_t nglobals;
} parse_state;

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    if (!d)
        abort();
    return d;
}

static int parse_types(reader *r, parse_state *ps, wasm_info *info)
{
    uint32_t n;
    if (leb_u32(r, &n))
        return -1;
    if (n > WASM_MAX_TYPES)
        return fail(r, "too many types");
    ps->types = calloc(n ? n : 1, sizeof *ps->types);
    if (!ps->types)
        abort();
    for (uint32_t i = 0; i < n; i++) {
        uint8_t form;
        uint32_t np, nr;
        if (u8(r, &form))
            return -1;
        if (form != 0x60)
            return fail(r, "malformed function type");
        if (leb_u32(r, &np))
            return -1;
        if (np > WASM_MAX_PARAMS)
            return fail(r, "too many parameters");
        char *sig = malloc((size_t)np + 2 + WASM_MAX_PARAMS);
        if (!sig)
            abort();
        size_t k = 0;
        for (uint32_t j = 0; j < np; j++)
            if (valtype(r, &sig[k++], &info->uses_simd)) {
                free(sig);
                return -1;
            }
        sig[k++] = ':';
        if (leb_u32(r, &nr)) {
            free(sig);
            return -1;
        }
        if (nr > WASM_MAX_PARAMS) {
            free(sig);
            return fail(r, "too many results");
        }
        for (uint32_t j = 0; j < nr; j++)
            if (valtype(r, &sig[k++], &info->uses_simd)) {
                free(sig);
                return -1;
            }
        sig[k] = '\0';
        ps->types[i] = sig;
        ps->ntypes = i + 1;
    }
    return 0;
}

static int add_func(reader *r, parse_state *ps, uint32_t type)
{
    if (type >= ps->ntypes)
        return fail(r, "unknown type index");
    if (ps->nfuncs >= WASM_MAX_FUNCS)
        return fail(r, "too many functions");
    if ((ps->nfuncs & (ps->nfuncs - 1)) == 0 || ps->nfuncs == 0) {
        size_t cap = ps->nfuncs ? (size_t)ps->nfuncs * 2 : 16;
        uint32_t *f = realloc(ps->func_types, cap * sizeof *f);
        if (!f)
            abort();
        ps->func_types = f;
    }
    ps->func_types[ps->nfuncs++] = type;
    return 0;
}

static int add_global(parse_state *ps, char type, bool mut)
{
    if ((ps->nglobals & (ps->nglobals - 1)) == 0 || ps->nglobals == 0) {
        size_t cap = ps->nglobals ? (size_t)ps->nglobals * 2 : 16;
        char **g = realloc(ps->global_sigs, cap * sizeof *g);
        if (!g)
            abort();
        ps->global_sigs = g;
    }
    char sig[3] = { 0 };
    if (mut) {
        sig[0] = 'm';
        sig[1] = type;
    } else {
        sig[0] = type;
    }
    ps->global_sigs[ps->nglobals++] = xstrdup(sig);
    return 0;
}

static int parse_imports(reader *r, parse_state *ps, wasm_info *info)
{
    uint32_t n;
    if (leb_u32(r, &n))
        return -1;
    if (n > WASM_MAX_IMPORTS)
        return fail(r, "too many imports");
    info->imports = calloc(n ? n : 1, sizeof *info->imports);
    if (!info->imports)
        abort();
    for (uint32_t i = 0; i < n; i++) {
        keel_extern *e = &info->imports[i];
        char *mod, *field;
        size_t ml, fl;
        uint8_t kind;
        if (name(r, &mod, &ml))
            return -1;
        e->module = mod;
        info->nimports = i + 1;   /* from here on wasm_info_free owns e */
        if (name(r, &field, &fl))
            return -1;
        e->name = field;
        e->name_len = fl;
        if (u8(r, &kind))
            return -1;
        e->kind = kind;
        switch (kind) {
        case KEEL_EXTERN_FUNC: {
            uint32_t t;
            if (leb_u32(r, &t) || add_func(r, ps, t))
                return -1;
            e->sig = xstrdup(ps->types[t]);
            info->nfunc_imports++;
            break;
        }
        case KEEL_EXTERN_TABLE: {
            char c;
            if (valtype(r, &c, &info->uses_simd) || limits(r))
                return -1;
            char sig[2] = { c, 0 };
            e->sig = xstrdup(sig);
            break;
        }
        case KEEL_EXTERN_MEMORY:
            if (limits(r))
                return -1;
            e->sig = xstrdup("");
            break;
        case KEEL_EXTERN_GLOBAL: {
            char c;
            uint8_t mut;
            if (valtype(r, &c, &info->uses_simd) || u8(r, &mut))
                return -1;
            add_global(ps, c, mut != 0);
            e->sig = xstrdup(ps->global_sigs[ps->nglobals - 1]);
            break;
        }
        case KEEL_EXTERN_TAG: {
            uint8_t attr;
            uint32_t t;
            if (u8(r, &attr) || leb_u32(r, &t))
                return -1;
            if (t >= ps->ntypes)
                return fail(r, "unknown type index");
            e->sig = xstrdup(ps->types[t]);
            break;
        }
        default:
            r->pos--;
            return fail(r, "malformed import kind");
        }
    }
    return 0;
}

static int parse_functions(reader *r, parse_state *ps)
{
    uint32_t n;
    if (leb_u32(r, &n))
        return -1;
    if (n > WASM_MAX_FUNCS)
        return fail(r, "too many functions");
    for (uint32_t i = 0; i < n; i++) {
        uint32_t t;
        if (leb_u32(r, &t) || add_func(r, ps, t))
            return -1;
    }
    return 0;
}

/* Skips a constant expression up to its `end`; an empty one produces no
 * value and is a type mismatch (wasm-validate 1.0.32 misses it). */
static int skip_const_expr(reader *r)
{
    for (int n = 0;; n++) {
        uint8_t op;
        if (u8(r, &op))
            return -1;
        switch (op) {
        case 0x0b:
            if (n == 0) {
                r->pos--;
                return fail(r, "type mismatch: empty constant expression");
            }
            return 0;
        case 0x41: case 0x42: case 0x23: case 0xd2:
            if (skip_leb(r))
                return -1;
            break;
        case 0x43: if (skip(r, 4)) return -1; break;
        case 0x44: if (skip(r, 8)) return -1; break;
        case 0xd0: if (skip(r, 1)) return -1; break;
        case 0x6a: case 0x6b: case 0x6c: case 0x7c: case 0x7d: case 0x7e:
            break;   /* extended-const arithmetic */
        case 0xfd:
            return fail(r, "SIMD constant expression");
        default:
            r->pos--;
            return fail(r, "unsupported constant expression");
        }
    }
}

static int parse_globals(reader *r, parse_state *ps, wasm_info *info)
{
    uint32_t n;
    if (leb_u32(r, &n))
        return -1;
    for (uint32_t i = 0; i < n; i++) {
        char c;
        uint8_t mut;
        if (valtype(r, &c, &info->uses_simd) || u8(r, &mut))
            return -1;
        add_global(ps, c, mut != 0);
        if (skip_const_expr(r))
            return -1;
    }
    return 0;
}

/* Element segments: the offset expression of each active one. */
static int parse_elements(reader *r)
{
    uint32_t n;
    if (leb_u32(r, &n))
        return -1;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t flags, count, idx;
        uint8_t b;
        if (leb_u32(r, &flags))
            return -1;
        if (flags > 7)
            return fail(r, "malformed element segment flags");
        if (flags == 2 || flags == 6)
            if (leb_u32(r, &idx))
                return -1;
        if (!(flags & 1) && skip_const_expr(r))
            return -1;
        if (flags & 3)                  /* elemkind or reftype */
            if (u8(r, &b))
                return -1;
        if (leb_u32(r, &count))
            return -1;
        for (uint32_t j = 0; j < count; j++)
            if (flags & 4 ? skip_const_expr(r) : skip_leb(r))
                return -1;
    }
    return 0;
}

/* Data segments: the offset expression of each active one. */
static int parse_data(reader *r)
{
    uint32_t n;
    if (leb_u32(r, &n))
        return -1;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t flags, idx, len;
        if (leb_u32(r, &flags))
            return -1;
        if (flags > 2)
            return fail(r, "malformed data segment flags");
        if (flags == 2 && leb_u32(r, &idx))
            return -1;
        if (flags != 1 && skip_const_expr(r))
            return -1;
        if (leb_u32(r, &len) || skip(r, len))
            return -1;
    }
    return 0;
}

static int parse_exports(reader *r, parse_state *ps, wasm_info *info)
{
    uint32_t n;
    if (leb_u32(r, &n))
        return -1;
    if (n > WASM_MAX_EXPORTS)
        return fail(r, "too many exports");
    info->exports = calloc(n ? n : 1, sizeof *info->exports);
    if (!info->exports)
        abort();
    for (uint32_t i = 0; i < n; i++) {
        keel_extern *e = &info->exports[i];
        char *nm;
        size_t nl;
        uint8_t kind;
        uint32_t idx;
        if (name(r, &nm, &nl))
            return -1;
        e->name = nm;
        e->name_len = nl;
        info->nexports = i + 1;
        if (u8(r, &kind) || leb_u32(r, &idx))
            return -1;
        e->kind = kind;
        if (kind == KEEL_EXTERN_FUNC) {
            if (idx >= ps->nfuncs)
                return fail(r, "unknown function in export");
            e->sig = xstrdup(ps->types[ps->func_types[idx]]);
        } else if (kind == KEEL_EXTERN_GLOBAL) {
            e->sig = xstrdup(idx < ps->nglobals ? ps->global_sigs[idx] : "?");
        } else if (kind <= KEEL_EXTERN_TAG) {
            e->sig = xstrdup("");
        } else {
            return fail(r, "malformed export kind");
        }
    }
    return 0;
}

static void free_state(parse_state *ps)
{
    for (uint32_t i = 0; i < ps->ntypes; i++)
        free(ps->types[i]);
    free(ps->types);
    free(ps->func_types);
    for (uint32_t i = 0; i < ps->nglobals; i++)
        free(ps->global_sigs[i]);
    free(ps->global_sigs);
}

int wasm_parse(const uint8_t *bytes, size_t n, wasm_info *info, char *err,
               size_t errlen)
{
    static const uint8_t magic[4] = { 0, 'a', 's', 'm' };
    memset(info, 0, sizeof *info);
    if (n == 0)
        return keel_err(err, errlen, KEEL_EINVAL, "empty file, not a WebAssembly module");
    if (memcmp(bytes, magic, n < 4 ? n : 4) != 0)
        return keel_err(err, errlen, KEEL_EINVAL, "not a WebAssembly module (bad magic number)");
    if (n < 4)
        return keel_err(err, errlen, KEEL_EINVAL, "truncated module (%zu bytes)", n);
    if (n < 8)
        return keel_err(err, errlen, KEEL_EINVAL, "truncated module (%zu bytes)", n);
    if (bytes[4] != 1 || bytes[5] || bytes[6] || bytes[7])
        return keel_err(err, errlen, KEEL_EINVAL,
                        "unsupported WebAssembly binary version %u (Keel runs version 1)",
                        (unsigned)(bytes[4] | bytes[5] << 8 | bytes[6] << 16 |
                                   (unsigned)bytes[7] << 24));

    reader r = { bytes, 8, n, err, errlen, 0 };
    parse_state ps;
    memset(&ps, 0, sizeof ps);
    int rc = 0;
    /* Order of the known sections by id: type, import, function, table,
     * memory, tag (13), global, export, start, element, data count (12),
     * code, data. */
    static const uint8_t section_rank[14] = {
        [1] = 1, [2] = 2, [3] = 3, [4] = 4, [5] = 5, [13] = 6, [6] = 7,
        [7] = 8, [8] = 9, [9] = 10, [12] = 11, [10] = 12, [11] = 13,
    };
    uint8_t last_rank = 0;
    while (r.pos < r.end && !rc) {
        uint8_t id;
        uint32_t size;
        if (u8(&r, &id) || leb_u32(&r, &size)) {
            rc = -1;
            break;
        }
        if (size > r.end - r.pos) {
            rc = fail(&r, "section extends past the end of the file (truncated module)");
            break;
        }
        reader sec = { bytes, r.pos, r.pos + size, err, errlen, 0 };
        /* Non-custom sections come at most once each, in the spec's order
         * (a repeated one would also make a parser below overwrite what it
         * built: found by tests/fuzz/fuzz_wasm_parse.c). */
        if (id != 0 && id < sizeof section_rank && section_rank[id]) {
            if (section_rank[id] <= last_rank) {
                rc = fail(&r, "section out of order or repeated");
                break;
            }
            last_rank = section_rank[id];
        }
        switch (id) {
        case 1: rc = parse_types(&sec, &ps, info); break;
        case 2: rc = parse_imports(&sec, &ps, info); break;
        case 3: rc = parse_functions(&sec, &ps); break;
        case 6: rc = parse_globals(&sec, &ps, info); break;
        case 7: rc = parse_exports(&sec, &ps, info); break;
        case 8: info->has_start = true; break;
        case 9: rc = parse_elements(&sec); break;
        case 11: rc = parse_data(&sec); break;
        case 0: case 4: case 5: case 10: case 12: case 13:
            break;
        default:
            rc = fail(&r, "unknown section id");
            break;
        }
        if (!rc && (id == 1 || id == 2 || id == 3 || id == 6 || id == 7 || id == 9 ||
                    id == 11) && sec.pos != sec.end)
            rc = fail(&sec, "section size mismatch");
        r.pos += size;
    }
    free_state(&ps);
    if (rc) {
        wasm_info_free(info);
        return KEEL_EINVAL;
    }
    return 0;
}

void wasm_info_free(wasm_info *info)
{
    if (!info)
        return;
    for (size_t i = 0; i < info->nimports; i++) {
        free((char *)info->imports[i].module);
        free((char *)info->imports[i].name);
        free((char *)info->imports[i].sig);
    }
    free(info->imports);
    for (size_t i = 0; i < info->nexports; i++) {
        free((char *)info->exports[i].name);
        free((char *)info->exports[i].sig);
    }
    free(info->exports);
    memset(info, 0, sizeof *info);
}
