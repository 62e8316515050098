/* glue.c — generates the per-module glue unit described in glue.h. */
#include "engine/glue.h"

#include <stdlib.h>
#include <string.h>

#include "base/errors.h"

void keel_glue_mangle(const char *name, size_t len, char *out, size_t outlen)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t k = 0;
    for (size_t i = 0; i < len && k + 4 < outlen; i++) {
        unsigned char c = (unsigned char)name[i];
        int plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z' && c != 'Z') ||
                    (c >= '0' && c <= '9') || c == '_';
        if (plain) {
            out[k++] = (char)c;
        } else {
            out[k++] = 'Z';
            out[k++] = hex[c >> 4];
            out[k++] = hex[c & 15];
        }
    }
    out[k] = '\0';
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

size_t keel_glue_import_modules(const wasm_info *info, const char **names,
                                size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < info->nimports; i++) {
        const char *m = info->imports[i].module;
        size_t j;
        for (j = 0; j < n; j++)
            if (strcmp(names[j], m) == 0)
                break;
        if (j == n && n < max)
            names[n++] = m;
    }
    qsort(names, n, sizeof *names, cmp_names);   /* wasm2c sorts them */
    return n;
}

static const char *ctype(char c)
{
    switch (c) {
    case 'i': return "u32";
    case 'I': return "u64";
    case 'f': return "f32";
    case 'F': return "f64";
    case 'r': return "wasm_rt_funcref_t";
    case 'e': return "wasm_rt_externref_t";
    }
    return NULL;
}

static char multi_letter(char c)
{
    switch (c) {
    case 'i': return 'i';
    case 'I': return 'j';
    case 'f': return 'f';
    case 'F': return 'd';
    case 'e': return 'e';
    case 'r': return 'r';
    }
    return '?';
}

/* The C return type for a signature's results, into buf. */
static int result_type(const char *results, char *buf, size_t len)
{
    size_t n = strlen(results);
    if (n == 0) {
        snprintf(buf, len, "void");
    } else if (n == 1) {
        if (!ctype(results[0]))
            return -1;
        snprintf(buf, len, "%s", ctype(results[0]));
    } else {
        size_t k = (size_t)snprintf(buf, len, "struct wasm_multi_");
        for (size_t i = 0; i < n && k + 2 < len; i++)
            buf[k++] = multi_letter(results[i]);
        buf[k] = '\0';
    }
    return 0;
}

static void c_string_literal(FILE *f, const char *s, size_t len)
{
    fputc('"', f);
    for (size_t i = 0; i < len; i++)
        fprintf(f, "\\%03o", (unsigned char)s[i]);
    fputc('"', f);
}

static int write_import(FILE *f, const keel_extern *imp, size_t idx,
                        char *err, size_t errlen)
{
    char mmod[1024], mfield[1024], sym[2100];
    keel_glue_mangle(imp->module, strlen(imp->module), mmod, sizeof mmod);
    keel_glue_mangle(imp->name, imp->name_len, mfield, sizeof mfield);
    snprintf(sym, sizeof sym, "Z_%sZ_%s", mmod, mfield);
    const char *inst = mmod;

    switch (imp->kind) {
    case KEEL_EXTERN_FUNC: {
        const char *colon = strchr(imp->sig, ':');
        char ret[256];
        if (!colon || result_type(colon + 1, ret, sizeof ret))
            return keel_err(err, errlen, KEEL_EUNSUPPORTED,
                            "import %s.%s has an unsupported signature",
                            imp->module, imp->name);
        size_t np = (size_t)(colon - imp->sig);
        fprintf(f, "%s %s(struct Z_%s_instance_t *a0", ret, sym, inst);
        for (size_t i = 0; i < np; i++)
            fprintf(f, ", %s a%zu", ctype(imp->sig[i]), i + 1);
        fprintf(f, ") {\n  %s((%s (*)(struct Z_%s_instance_t *",
                strcmp(ret, "void") ? "return " : "", ret, inst);
        for (size_t i = 0; i < np; i++)
            fprintf(f, ", %s", ctype(imp->sig[i]));
        fprintf(f, "))keel_imports[%zu])(a0", idx);
        for (size_t i = 0; i < np; i++)
            fprintf(f, ", a%zu", i + 1);
        fprintf(f, ");\n}\n");
        return 0;
    }
    case KEEL_EXTERN_GLOBAL: {
        const char *t = ctype(imp->sig[0] == 'm' ? imp->sig[1] : imp->sig[0]);
        if (!t)
            break;
        fprintf(f, "%s *%s(struct Z_%s_instance_t *a0) {\n"
                   "  return ((%s *(*)(struct Z_%s_instance_t *))keel_imports[%zu])(a0);\n}\n",
                t, sym, inst, t, inst, idx);
        return 0;
    }
    case KEEL_EXTERN_MEMORY:
        fprintf(f, "wasm_rt_memory_t *%s(struct Z_%s_instance_t *a0) {\n"
                   "  return ((wasm_rt_memory_t *(*)(struct Z_%s_instance_t *))keel_imports[%zu])(a0);\n}\n",
                sym, inst, inst, idx);
        return 0;
    case KEEL_EXTERN_TABLE: {
        const char *t = imp->sig[0] == 'e' ? "wasm_rt_externref_table_t"
                                           : "wasm_rt_funcref_table_t";
        fprintf(f, "%s *%s(struct Z_%s_instance_t *a0) {\n"
                   "  return ((%s *(*)(struct Z_%s_instance_t *))keel_imports[%zu])(a0);\n}\n",
                t, sym, inst, t, inst, idx);
        return 0;
    }
    }
    return keel_err(err, errlen, KEEL_EUNSUPPORTED,
                    "import %s.%s: this kind of import is not supported",
                    imp->module, imp->name);
}

/* Emits the statement converting vals[k] into argument variable aK. */
static void write_arg(FILE *f, char c, size_t k)
{
    switch (c) {
    case 'i': fprintf(f, "  u32 a%zu = (u32)v[%zu];\n", k, k); break;
    case 'I': fprintf(f, "  u64 a%zu = v[%zu];\n", k, k); break;
    case 'f': fprintf(f, "  f32 a%zu; { u32 b = (u32)v[%zu]; memcpy(&a%zu, &b, 4); }\n", k, k, k); break;
    case 'F': fprintf(f, "  f64 a%zu; memcpy(&a%zu, &v[%zu], 8);\n", k, k, k); break;
    case 'e': fprintf(f, "  wasm_rt_externref_t a%zu = (wasm_rt_externref_t)(uintptr_t)v[%zu];\n", k, k); break;
    case 'r': fprintf(f, "  wasm_rt_funcref_t a%zu = wasm_rt_funcref_null_value; (void)v;\n", k); break;
    }
}

/* Emits the statement storing expression expr of type c into vals[k]. */
static void write_result(FILE *f, char c, size_t k, const char *expr)
{
    switch (c) {
    case 'i': fprintf(f, "  v[%zu] = (u64)(u32)%s;\n", k, expr); break;
    case 'I': fprintf(f, "  v[%zu] = (u64)%s;\n", k, expr); break;
    case 'f': fprintf(f, "  { f32 x = %s; u32 b; memcpy(&b, &x, 4); v[%zu] = b; }\n", expr, k); break;
    case 'F': fprintf(f, "  { f64 x = %s; memcpy(&v[%zu], &x, 8); }\n", expr, k); break;
    case 'e': fprintf(f, "  v[%zu] = (u64)(uintptr_t)%s;\n", k, expr); break;
    case 'r': fprintf(f, "  v[%zu] = (u64)(uintptr_t)(%s).func;\n", k, expr); break;
    }
}

static int write_trampoline(FILE *f, const keel_extern *e, size_t idx,
                            const char *sym)
{
    const char *colon = strchr(e->sig, ':');
    char ret[256];
    if (!colon || result_type(colon + 1, ret, sizeof ret))
        return -1;
    size_t np = (size_t)(colon - e->sig);
    const char *res = colon + 1;
    size_t nr = strlen(res);
    for (size_t i = 0; i < np; i++)
        if (!ctype(e->sig[i]))
            return -1;
    fprintf(f, "static void keel_tramp_%zu(void *inst, uint64_t *v) {\n", idx);
    for (size_t i = 0; i < np; i++)
        write_arg(f, e->sig[i], i);
    if (nr == 0)
        fprintf(f, "  %s(inst", sym);
    else
        fprintf(f, "  %s r = %s(inst", ret, sym);
    for (size_t i = 0; i < np; i++)
        fprintf(f, ", a%zu", i);
    fprintf(f, ");\n");
    if (nr == 1) {
        write_result(f, res[0], 0, "r");
    } else {
        for (size_t i = 0; i < nr; i++) {
            char expr[64];
            snprintf(expr, sizeof expr, "r.%c%zu", multi_letter(res[i]), i);
            write_result(f, res[i], i, expr);
        }
    }
    if (np == 0 && nr == 0)
        fprintf(f, "  (void)v;\n");
    fprintf(f, "}\n");
    return 0;
}

/* Finds the next function definition in wasm2c's output at or after *p: a
 * line "static TYPE w2c_NAME(...) {". Sets name/len to "w2c_NAME" and
 * advances *p past the line. Returns 0 when there is none. */
static int next_function(const char **p, const char *end, const char **name,
                         size_t *len)
{
    while (*p < end) {
        const char *line = *p;
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        if (!nl)
            nl = end;
        *p = nl < end ? nl + 1 : end;
        size_t ll = (size_t)(nl - line);
        if (ll < 12 || strncmp(line, "static ", 7) != 0 || memcmp(nl - 3, ") {", 3))
            continue;
        const char *paren = memchr(line, '(', ll);
        const char *w = line;
        for (;;) {
            const char *hit = memmem(w, (size_t)(paren - w), " w2c_", 5);
            if (!hit)
                break;
            w = hit + 1;
            if (!memchr(w, ' ', (size_t)(paren - w))) {
                *name = w;
                *len = (size_t)(paren - w);
                return 1;
            }
        }
    }
    return 0;
}

/* The table of guest function addresses and names used to say where a
 * trap happened. */
static void write_function_table(FILE *f, const char *c, size_t len)
{
    const char *end = c + len, *p, *name;
    size_t n, count = 0;
    fprintf(f, "KEEL_GLUE_API const void *keel_glue_func_addrs[] = {\n");
    for (p = c; next_function(&p, end, &name, &n); count++)
        fprintf(f, "  (const void *)%.*s,\n", (int)n, name);
    fprintf(f, "  0 };\nKEEL_GLUE_API const char *keel_glue_func_names[] = {\n");
    for (p = c; next_function(&p, end, &name, &n);)
        fprintf(f, "  \"%.*s\",\n", (int)n - 4, name + 4);
    fprintf(f, "  0 };\nKEEL_GLUE_API const uint32_t keel_glue_func_count = %zu;\n", count);
}

/* ---- the instance struct layout, for copy-on-write images (image.c) ---- */

enum { FIELD_PLAIN, FIELD_MEMORY, FIELD_FUNCREF_TABLE, FIELD_EXTERNREF_TABLE,
       FIELD_IMPORT_INSTANCE, FIELD_UNSUPPORTED };

typedef struct layout_field {
    int kind;
    char name[256];
} layout_field;

static int is_ident(const char *s, size_t n)
{
    if (!n || n >= 256 || (s[0] >= '0' && s[0] <= '9'))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return 0;
    }
    return 1;
}

/* Classifies one member declaration (comments removed, whitespace collapsed
 * to single spaces, no ';'). */
static void classify_field(const char *d, layout_field *out)
{
    static const struct { const char *prefix; int kind; } types[] = {
        { "wasm_rt_memory_t ", FIELD_MEMORY },
        { "wasm_rt_funcref_table_t ", FIELD_FUNCREF_TABLE },
        { "wasm_rt_externref_table_t ", FIELD_EXTERNREF_TABLE },
        { "u8 ", FIELD_PLAIN }, { "s8 ", FIELD_PLAIN }, { "u16 ", FIELD_PLAIN },
        { "s16 ", FIELD_PLAIN }, { "u32 ", FIELD_PLAIN }, { "s32 ", FIELD_PLAIN },
        { "u64 ", FIELD_PLAIN }, { "s64 ", FIELD_PLAIN }, { "f32 ", FIELD_PLAIN },
        { "f64 ", FIELD_PLAIN }, { "bool ", FIELD_PLAIN },
        { "wasm_rt_externref_t ", FIELD_PLAIN },
    };
    out->kind = FIELD_UNSUPPORTED;
    out->name[0] = '\0';
    /* struct Z_<m>_instance_t* Z_<m>_instance  (the '*' may sit anywhere) */
    if (strncmp(d, "struct Z_", 9) == 0) {
        const char *t = d + 7, *sp = strchr(t, ' ');
        const char *star = strchr(t, '*');
        if (!star)
            return;
        size_t tl = (size_t)((sp && sp < star ? sp : star) - t);
        const char *n = star + 1;
        while (*n == ' ')
            n++;
        size_t nl = strlen(n);
        /* type "Z_X_instance_t", name "Z_X_instance" */
        if (tl > 11 && memcmp(t + tl - 11, "_instance_t", 11) == 0 && nl == tl - 2 &&
            memcmp(n, t, nl) == 0 && is_ident(n, nl)) {
            out->kind = FIELD_IMPORT_INSTANCE;
            memcpy(out->name, n, nl);
            out->name[nl] = '\0';
        }
        return;
    }
    for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
        size_t pl = strlen(types[i].prefix);
        if (strncmp(d, types[i].prefix, pl) != 0)
            continue;
        const char *n = d + pl;
        size_t nl = strcspn(n, " :");
        if (!is_ident(n, nl))
            return;
        const char *rest = n + nl;
        while (*rest == ' ')
            rest++;
        /* only plain members may be bit-fields ("bool x : 1") */
        if (*rest && !(types[i].kind == FIELD_PLAIN && *rest == ':'))
            return;
        out->kind = types[i].kind;
        memcpy(out->name, n, nl);
        out->name[nl] = '\0';
        return;
    }
}

/* Parses the instance typedef in wasm2c's output into fields. Returns the
 * count, or -1 when it is not found or holds anything not understood. */
static long parse_instance_struct(const char *c, size_t len, layout_field **out)
{
    char open_[128], close_[128];
    snprintf(open_, sizeof open_, "typedef struct Z_%s_instance_t {", KEEL_GLUE_MODNAME_MANGLED);
    snprintf(close_, sizeof close_, "} Z_%s_instance_t;", KEEL_GLUE_MODNAME_MANGLED);
    const char *b = memmem(c, len, open_, strlen(open_));
    if (!b)
        return -1;
    b += strlen(open_);
    const char *e = memmem(b, len - (size_t)(b - c), close_, strlen(close_));
    if (!e)
        return -1;
    /* Strip comments as the C compiler does, collapse whitespace. */
    size_t n = (size_t)(e - b);
    char *body = calloc(n + 1, 1);
    if (!body)
        abort();
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        if (b[i] == '/' && i + 1 < n && b[i + 1] == '*') {
            const char *end = memmem(b + i + 2, n - i - 2, "*/", 2);
            if (!end) {
                free(body);
                return -1;
            }
            i = (size_t)(end - b) + 2;
            body[k++] = ' ';
        } else if (b[i] == '/' && i + 1 < n && b[i + 1] == '/') {
            while (i < n && b[i] != '\n')
                i++;
        } else if (b[i] == '#' || b[i] == '"' || b[i] == '\'' || b[i] == '{' || b[i] == '}' ||
                   b[i] == '(' || b[i] == '[') {
            free(body);       /* preprocessor lines, nested types, arrays, ... */
            return -1;
        } else {
            char ch = b[i++];
            if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r')
                ch = ' ';
            if (ch == ' ' && (k == 0 || body[k - 1] == ' ' || body[k - 1] == ';'))
                continue;
            if (ch == ';' && k && body[k - 1] == ' ')
                k--;
            body[k++] = ch;
        }
    }
    body[k] = '\0';
    long count = 0, cap = 0;
    layout_field *fs = NULL;
    for (char *d = body; *d;) {
        char *semi = strchr(d, ';');
        if (!semi) {
            /* trailing text without ';' must be blank */
            while (*d == ' ')
                d++;
            if (*d)
                count = -1;
            break;
        }
        *semi = '\0';
        while (*d == ' ')
            d++;
        if (count == cap) {
            cap = cap ? cap * 2 : 16;
            fs = realloc(fs, (size_t)cap * sizeof *fs);
            if (!fs)
                abort();
        }
        classify_field(d, &fs[count]);
        if (fs[count].kind == FIELD_UNSUPPORTED) {
            count = -1;
            break;
        }
        count++;
        d = semi + 1;
    }
    free(body);
    if (count < 0) {
        free(fs);
        return -1;
    }
    *out = fs;
    return count;
}

/* Emits keel_glue_layout (module_int.h): offsets of the owned memories and
 * tables and of each import module's instance pointer, or counts of -1 when
 * the instance struct cannot be imaged. */
static void write_layout(FILE *f, const wasm_info *info, const char *c, size_t len,
                         const char *const *mods, size_t nmods)
{
    const char *M = KEEL_GLUE_MODNAME_MANGLED;
    layout_field *fs = NULL;
    long n = parse_instance_struct(c, len, &fs);
    int ok = n >= 0;
    /* Every import must be a function: imported memories, tables and
     * globals live in other instances (and show as unsupported fields). */
    for (size_t i = 0; ok && i < info->nimports; i++)
        ok = info->imports[i].kind == KEEL_EXTERN_FUNC;
    /* Each import module's instance pointer must be there. */
    long *imp = calloc(nmods ? nmods : 1, sizeof *imp);
    if (!imp)
        abort();
    for (size_t m = 0; ok && m < nmods; m++) {
        char mm[1024], want[1100];
        keel_glue_mangle(mods[m], strlen(mods[m]), mm, sizeof mm);
        snprintf(want, sizeof want, "Z_%s_instance", mm);
        imp[m] = -1;
        for (long i = 0; i < n; i++)
            if (fs[i].kind == FIELD_IMPORT_INSTANCE && strcmp(fs[i].name, want) == 0)
                imp[m] = i;
        ok = imp[m] >= 0;
    }
    static const int kinds[3] = { FIELD_MEMORY, FIELD_FUNCREF_TABLE, FIELD_EXTERNREF_TABLE };
    static const char *const names[3] = { "mems", "funcref", "externref" };
    int counts[3] = { 0, 0, 0 };
    for (int t = 0; t < 3; t++) {
        fprintf(f, "static const uint32_t keel_layout_%s[] = { ", names[t]);
        for (long i = 0; ok && i < n; i++)
            if (fs[i].kind == kinds[t]) {
                fprintf(f, "(uint32_t)offsetof(Z_%s_instance_t, %s), ", M, fs[i].name);
                counts[t]++;
            }
        fprintf(f, "0 };\n");
    }
    fprintf(f, "static const uint32_t keel_layout_imports[] = { ");
    for (size_t m = 0; ok && m < nmods; m++)
        fprintf(f, "(uint32_t)offsetof(Z_%s_instance_t, %s), ", M, fs[imp[m]].name);
    fprintf(f, "0 };\n");
    fprintf(f, "struct keel_glue_layout { int32_t nmems, nfuncref, nexternref, nimports;\n"
               "  const uint32_t *mems, *funcref, *externref, *imports; };\n");
    if (ok)
        fprintf(f, "KEEL_GLUE_API const struct keel_glue_layout keel_glue_layout = { %d, %d, %d, %zu,\n",
                counts[0], counts[1], counts[2], nmods);
    else
        fprintf(f, "KEEL_GLUE_API const struct keel_glue_layout keel_glue_layout = { -1, -1, -1, -1,\n");
    fprintf(f, "  keel_layout_mems, keel_layout_funcref, keel_layout_externref, "
               "keel_layout_imports };\n");
    free(imp);
    free(fs);
}

int keel_glue_write(FILE *f, const wasm_info *info, const char *generated_c,
                    size_t generated_len, char *err, size_t errlen)
{
    const char *M = KEEL_GLUE_MODNAME_MANGLED;
    fprintf(f, "\n/* ---- Keel glue (src/engine/glue.c) ---- */\n");
    fprintf(f, "#define KEEL_GLUE_API __attribute__((visibility(\"default\")))\n");
    fprintf(f, "static void *keel_imports[%zu];\n", info->nimports ? info->nimports : 1);
    fprintf(f, "KEEL_GLUE_API void keel_glue_bind(uint32_t i, void *addr) { keel_imports[i] = addr; }\n");

    /* One forwarder per distinct import symbol. */
    for (size_t i = 0; i < info->nimports; i++) {
        const keel_extern *imp = &info->imports[i];
        int dup = 0;
        for (size_t j = 0; j < i && !dup; j++)
            dup = strcmp(info->imports[j].module, imp->module) == 0 &&
                  info->imports[j].name_len == imp->name_len &&
                  memcmp(info->imports[j].name, imp->name, imp->name_len) == 0;
        if (dup)
            continue;
        int rc = write_import(f, imp, i, err, errlen);
        if (rc)
            return rc;
    }

    const char *mods[4096] = { 0 };
    size_t nmods = keel_glue_import_modules(info, mods, 4096);
    fprintf(f, "KEEL_GLUE_API size_t keel_glue_instance_size(void) { return sizeof(Z_%s_instance_t); }\n", M);
    fprintf(f, "KEEL_GLUE_API void keel_glue_init_module(void) { Z_%s_init_module(); }\n", M);
    fprintf(f, "KEEL_GLUE_API void keel_glue_instantiate(void *inst, void *const *imp) {\n  (void)imp;\n  Z_%s_instantiate(inst", M);
    for (size_t i = 0; i < nmods; i++)
        fprintf(f, ", imp[%zu]", i);
    fprintf(f, ");\n}\n");
    fprintf(f, "KEEL_GLUE_API void keel_glue_free(void *inst) { Z_%s_free(inst); }\n", M);

    /* Exports: accessor symbol Z_<M>Z_<mangled name>, plus trampolines. */
    for (size_t i = 0; i < info->nexports; i++) {
        const keel_extern *e = &info->exports[i];
        if (e->kind != KEEL_EXTERN_FUNC)
            continue;
        char mname[2048], sym[2100];
        keel_glue_mangle(e->name, e->name_len, mname, sizeof mname);
        snprintf(sym, sizeof sym, "Z_%sZ_%s", M, mname);
        if (write_trampoline(f, e, i, sym))
            return keel_err(err, errlen, KEEL_EUNSUPPORTED,
                            "export %s has an unsupported signature", e->name);
    }
    write_layout(f, info, generated_c, generated_len, mods, nmods);
    fprintf(f, "struct keel_glue_export { const char *name; uint32_t name_len; uint32_t kind; void *addr; void (*tramp)(void *, uint64_t *); };\n");
    fprintf(f, "KEEL_GLUE_API const struct keel_glue_export keel_glue_exports[] = {\n");
    for (size_t i = 0; i < info->nexports; i++) {
        const keel_extern *e = &info->exports[i];
        char mname[2048];
        keel_glue_mangle(e->name, e->name_len, mname, sizeof mname);
        fprintf(f, "  { ");
        c_string_literal(f, e->name, e->name_len);
        fprintf(f, ", %zu, %d, (void *)Z_%sZ_%s, ", e->name_len, e->kind, M, mname);
        if (e->kind == KEEL_EXTERN_FUNC)
            fprintf(f, "keel_tramp_%zu },\n", i);
        else
            fprintf(f, "0 },\n");
    }
    fprintf(f, "  { 0, 0, 0, 0, 0 } };\n");
    fprintf(f, "KEEL_GLUE_API const uint32_t keel_glue_export_count = %zu;\n", info->nexports);
    write_function_table(f, generated_c, generated_len);
    return ferror(f) ? keel_err(err, errlen, KEEL_EIO, "writing glue failed") : 0;
}
