/* spec_runner.c — runs one WebAssembly spec-test script through Keel's
 * engine API (engine.h) on one tier, and reports every command. It owns
 * the script: parsing, the modules it loads, and every check; the spectest
 * host instance and the import resolver are in spec_host.c.
 *
 * Usage: spec_runner --tier fast|opt [--cache DIR] [--until LINE] [-v] SCRIPT
 *
 * SCRIPT is written by run_spec.py from wast2json's output; one command a
 * line, names hex-encoded so any bytes survive (see run_spec.py for the
 * format). Paths are relative to the script's directory.
 *
 * Output, one line per checked command:
 *   ok LINE
 *   FAIL LINE what went wrong
 * plus "time LINE MS" after every module load and "done" at the end, which
 * run_spec.py counts. Exit status 0 even when checks fail (run_spec.py
 * decides); 2 on usage or I/O errors.
 *
 * Only the engine API is used: keel_module_load / _link / keel_instance_new /
 * keel_instance_call_n / keel_instance_global.
 *
 * Trap messages map to trap kinds as wasm2c reports them:
 *   out of bounds memory access, out of bounds table access -> OOB
 *   indirect call type mismatch, undefined element,
 *   uninitialized element (call_indirect)                   -> CALL_INDIRECT
 *   integer divide by zero -> DIV_BY_ZERO, integer overflow -> INT_OVERFLOW,
 *   invalid conversion to integer -> INVALID_CONVERSION,
 *   unreachable -> UNREACHABLE, call stack exhausted -> EXHAUSTION.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/errors.h"
#include "engine/engine.h"
#include "spec_host.h"

#define MAX_TOKENS 256           /* tokens on one script line */
#define MAX_VALS 64              /* params or results of one call */
#define CALL_DEADLINE_NS (60ull * 1000000000ull)   /* per invoke */

/* ---- small helpers ---- */

static void *xcalloc(size_t n, size_t sz)
{
    void *p = calloc(n ? n : 1, sz);
    if (!p) {
        fprintf(stderr, "spec_runner: out of memory\n");
        exit(2);
    }
    return p;
}

static char *xstrdup(const char *s)
{
    char *p = strdup(s);
    if (!p) {
        fprintf(stderr, "spec_runner: out of memory\n");
        exit(2);
    }
    return p;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes hex into a fresh NUL-terminated buffer; *len gets the byte count
 * (which may include NUL bytes). "-" is the empty name. */
static char *unhex(const char *h, size_t *len)
{
    size_t n = strcmp(h, "-") == 0 ? 0 : strlen(h) / 2;
    char *out = xcalloc(n + 1, 1);
    for (size_t i = 0; i < n; i++) {
        int a = hexval(h[2 * i]), b = hexval(h[2 * i + 1]);
        if (a < 0 || b < 0) {
            fprintf(stderr, "spec_runner: bad hex '%s'\n", h);
            exit(2);
        }
        out[i] = (char)(a * 16 + b);
    }
    if (len) *len = n;
    return out;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ---- modules ---- */

static mod **mods;
static size_t nmods, capmods;
static mod *last_mod;       /* current module (may be unusable) */
static int last_mod_ok;

static keel_engine_opts opts;
static const char *script_dir = ".";
static int verbose;

/* ---- values ---- */

typedef struct val {
    char type;           /* i I f F r(funcref) e(externref) */
    int nan;             /* 0, 1 canonical, 2 arithmetic */
    int null;            /* references */
    uint64_t bits;
} val;

static int parse_val(const char *tok, val *v)
{
    memset(v, 0, sizeof *v);
    const char *c = strchr(tok, ':');
    if (!c) return -1;
    size_t tl = (size_t)(c - tok);
    const char *rest = c + 1;
    if (tl == 3 && !memcmp(tok, "i32", 3)) v->type = 'i';
    else if (tl == 3 && !memcmp(tok, "i64", 3)) v->type = 'I';
    else if (tl == 3 && !memcmp(tok, "f32", 3)) v->type = 'f';
    else if (tl == 3 && !memcmp(tok, "f64", 3)) v->type = 'F';
    else if (tl == 7 && !memcmp(tok, "funcref", 7)) v->type = 'r';
    else if (tl == 9 && !memcmp(tok, "externref", 9)) v->type = 'e';
    else return -1;
    if (!strcmp(rest, "nan:canonical")) { v->nan = 1; return 0; }
    if (!strcmp(rest, "nan:arithmetic")) { v->nan = 2; return 0; }
    if (!strcmp(rest, "null")) { v->null = 1; return 0; }
    errno = 0;
    char *end;
    v->bits = strtoull(rest, &end, 10);
    return (errno || *end) ? -1 : 0;
}

/* externref N travels as the non-null pointer value N + 1. */
static uint64_t val_to_arg(const val *v)
{
    if (v->type == 'e') return v->null ? 0 : v->bits + 1;
    if (v->type == 'r') return 0;   /* only ref.null func appears as an arg */
    if (v->type == 'i' || v->type == 'f') return v->bits & 0xffffffffu;
    return v->bits;
}

static void fmt_result(char type, uint64_t r, char *buf, size_t len)
{
    switch (type) {
    case 'i': snprintf(buf, len, "i32:%" PRIu32, (uint32_t)r); break;
    case 'I': snprintf(buf, len, "i64:%" PRIu64, r); break;
    case 'f': snprintf(buf, len, "f32:0x%08" PRIx32, (uint32_t)r); break;
    case 'F': snprintf(buf, len, "f64:0x%016" PRIx64, r); break;
    case 'r': snprintf(buf, len, "funcref:0x%" PRIx64, r); break;
    case 'e': snprintf(buf, len, "externref:0x%" PRIx64, r); break;
    default: snprintf(buf, len, "?:0x%" PRIx64, r);
    }
}

static int result_matches(const val *want, char type, uint64_t r)
{
    if (want->type != type) return 0;
    switch (type) {
    case 'i': return (uint32_t)r == (uint32_t)want->bits;
    case 'I': return r == want->bits;
    case 'f': {
        uint32_t b = (uint32_t)r;
        if (want->nan == 1) return (b & 0x7fffffffu) == 0x7fc00000u;
        if (want->nan == 2) return (b & 0x7fc00000u) == 0x7fc00000u;
        return b == (uint32_t)want->bits;
    }
    case 'F':
        if (want->nan == 1)
            return (r & 0x7fffffffffffffffull) == 0x7ff8000000000000ull;
        if (want->nan == 2)
            return (r & 0x7ff8000000000000ull) == 0x7ff8000000000000ull;
        return r == want->bits;
    case 'r':
        return want->null ? r == 0 : r != 0;
    case 'e':
        return want->null ? r == 0 : r == want->bits + 1;
    }
    return 0;
}

/* ---- reporting ---- */

static int cur_line;

static void ok(void) { printf("ok %d\n", cur_line); fflush(stdout); }

__attribute__((format(printf, 1, 2))) static void fail(const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    for (char *p = buf; *p; p++)
        if (*p == '\n') *p = ' ';
    printf("FAIL %d %s\n", cur_line, buf);
    fflush(stdout);
}

static const char *trap_str(keel_trap_kind k)
{
    const char *s = keel_trap_kind_name(k);
    return s ? s : "?";
}

static const char *end_str(const keel_rt_outcome *o)
{
    static char buf[200];
    switch (o->end) {
    case KEEL_RT_RETURNED: return "returned";
    case KEEL_RT_EXITED:
        snprintf(buf, sizeof buf, "exited %d", o->exit_code);
        return buf;
    case KEEL_RT_TRAPPED:
        snprintf(buf, sizeof buf, "trapped: %s (kind %d)%s%s", trap_str(o->trap),
                 (int)o->trap, o->where[0] ? " in " : "", o->where);
        return buf;
    }
    return "?";
}

/* Expected trap kind for a spec message; KEEL_TRAP_NONE when unknown. */
static keel_trap_kind trap_for_text(const char *t)
{
    static const struct { const char *prefix; keel_trap_kind k; } map[] = {
        {"out of bounds memory access", KEEL_TRAP_OOB},
        {"out of bounds table access", KEEL_TRAP_OOB},
        {"indirect call type mismatch", KEEL_TRAP_CALL_INDIRECT},
        {"undefined element", KEEL_TRAP_CALL_INDIRECT},
        {"uninitialized element", KEEL_TRAP_CALL_INDIRECT},
        {"integer divide by zero", KEEL_TRAP_DIV_BY_ZERO},
        {"integer overflow", KEEL_TRAP_INT_OVERFLOW},
        {"invalid conversion to integer", KEEL_TRAP_INVALID_CONVERSION},
        {"unreachable", KEEL_TRAP_UNREACHABLE},
        {"call stack exhausted", KEEL_TRAP_EXHAUSTION},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strncmp(t, map[i].prefix, strlen(map[i].prefix)) == 0)
            return map[i].k;
    return KEEL_TRAP_NONE;
}

/* ---- commands ---- */

static type_line *pending;
static size_t npending, cappending;

static char *path_in_dir(const char *rel)
{
    size_t n = strlen(script_dir) + strlen(rel) + 2;
    char *p = xcalloc(n, 1);
    snprintf(p, n, "%s/%s", script_dir, rel);
    return p;
}

static mod *find_mod(const char *idhex)
{
    if (strcmp(idhex, "-") == 0)
        return last_mod_ok ? last_mod : NULL;
    char *id = unhex(idhex, NULL);
    mod *found = NULL;
    for (size_t i = nmods; i-- > 0;)
        if (mods[i]->id && strcmp(mods[i]->id, id) == 0) {
            found = mods[i];
            break;
        }
    free(id);
    return found;
}

static void add_mod(mod *md)
{
    if (nmods == capmods) {
        capmods = capmods ? capmods * 2 : 16;
        mods = realloc(mods, capmods * sizeof *mods);
        if (!mods) exit(2);
    }
    mods[nmods++] = md;
}

/* Loads, links and instantiates. stage: 0 ok; 1 load failed; 2 link failed;
 * 3 instantiation failed (trap in *trap, or not). */
static int instantiate(mod *md, const char *rel, char *err, size_t errlen,
                       link_ctx *lc, keel_rt_outcome *trap, int *rc_out)
{
    char *path = path_in_dir(rel);
    double t0 = now_ms();
    int rc = keel_module_load(path, &opts, &md->m, err, errlen);
    printf("time %d %.1f\n", cur_line, now_ms() - t0);
    free(path);
    *rc_out = rc;
    if (rc != 0) return 1;
    if (!md->m) { snprintf(err, errlen, "load returned 0 but no module"); return 1; }

    memset(lc, 0, sizeof *lc);
    lc->importer = md;
    rc = keel_module_link(md->m, spec_resolve, lc, err, errlen);
    *rc_out = rc;
    if (rc != 0) return 2;

    size_t n = keel_module_import_module_count(md->m);
    void **insts = xcalloc(n, sizeof *insts);
    for (size_t i = 0; i < n; i++) {
        const char *name = keel_module_import_module(md->m, i);
        if (spec_import_instance(name, &insts[i]) != 0) {
            snprintf(err, errlen, "import module %s not registered (but linked)",
                     name);
            free(insts);
            return 2;
        }
    }
    memset(trap, 0, sizeof *trap);
    rc = keel_instance_new(md->m, (void *const *)insts, 0, &md->inst, trap, err,
                           errlen);
    free(insts);
    *rc_out = rc;
    if (rc != 0 || !md->inst) return 3;
    return 0;
}

static void take_pending(mod *md)
{
    md->types = pending;
    md->ntypes = npending;
    pending = NULL;
    npending = cappending = 0;
}

static void cmd_module(char **tok, int ntok)
{
    /* M LINE PATH IDHEX */
    if (ntok < 4) { fail("bad script line"); return; }
    mod *md = xcalloc(1, sizeof *md);
    md->line = cur_line;
    if (strcmp(tok[3], "-") != 0) md->id = unhex(tok[3], NULL);
    take_pending(md);
    add_mod(md);
    last_mod = md;
    last_mod_ok = 0;
    char err[1024] = "";
    link_ctx lc;
    keel_rt_outcome trap;
    int rc;
    int stage = instantiate(md, tok[2], err, sizeof err, &lc, &trap, &rc);
    switch (stage) {
    case 0: last_mod_ok = 1; ok(); return;
    case 1: fail("module load failed (rc %d): %s", rc, err); return;
    case 2: fail("module link failed (rc %d): %s%s%s", rc, err,
                 lc.failure ? "; resolver: " : "", lc.failure ? lc.why : "");
        return;
    default:
        if (trap.end == KEEL_RT_TRAPPED)
            fail("instantiation trapped: %s (rc %d, %s)", end_str(&trap), rc, err);
        else
            fail("instantiation failed (rc %d): %s", rc, err);
    }
}

static void cmd_register(char **tok, int ntok)
{
    /* R LINE ASHEX IDHEX */
    if (ntok < 4) { fail("bad script line"); return; }
    mod *md = find_mod(tok[3]);
    if (!md || !md->inst) {
        fail("register: module %s unavailable (earlier failure)", tok[3]);
        return;
    }
    spec_register(unhex(tok[2], NULL), md);
    ok();
}

static const keel_extern *find_export(mod *md, const char *name, size_t len,
                                      int kind)
{
    for (size_t i = 0; i < keel_module_export_count(md->m); i++) {
        const keel_extern *e = keel_module_export(md->m, i);
        if (e->kind == kind && e->name_len == len && memcmp(e->name, name, len) == 0)
            return e;
    }
    return NULL;
}

/* Splits "iI:f" into params and results. */
static int split_sig(const char *sig, char *params, char *results)
{
    const char *c = strchr(sig, ':');
    if (!c) return -1;
    size_t np = (size_t)(c - sig), nr = strlen(c + 1);
    if (np >= MAX_VALS || nr >= MAX_VALS) return -1;
    memcpy(params, sig, np);
    params[np] = 0;
    memcpy(results, c + 1, nr + 1);
    return 0;
}

static char type_of_val(const val *v) { return v->type; }

static void cmd_invoke(char **tok, int ntok)
{
    /* A LINE KIND MODHEX FIELDHEX NARGS ARGS... NEXP EXPS... [TEXT...]
     * KIND: return | trap | exhaust | action */
    if (ntok < 7) { fail("bad script line"); return; }
    const char *kind = tok[2];
    int i = 5, nargs = atoi(tok[i++]);
    if (nargs < 0 || nargs > MAX_VALS || i + nargs >= ntok) {
        fail("bad script line"); return;
    }
    val args[MAX_VALS], exps[MAX_VALS];
    for (int k = 0; k < nargs; k++)
        if (parse_val(tok[i++], &args[k])) { fail("bad value %s", tok[i - 1]); return; }
    int nexp = atoi(tok[i++]);
    if (nexp < 0 || nexp > MAX_VALS || i + nexp > ntok) { fail("bad script line"); return; }
    for (int k = 0; k < nexp; k++)
        if (parse_val(tok[i++], &exps[k])) { fail("bad value %s", tok[i - 1]); return; }
    char text[256] = "";
    for (; i < ntok; i++) {
        if (text[0]) strncat(text, " ", sizeof text - strlen(text) - 1);
        strncat(text, tok[i], sizeof text - strlen(text) - 1);
    }

    mod *md = find_mod(tok[3]);
    if (!md || !md->inst) {
        fail("module %s unavailable (earlier failure)", tok[3]);
        return;
    }
    size_t flen;
    char *field = unhex(tok[4], &flen);
    const keel_extern *e = find_export(md, field, flen, KEEL_EXTERN_FUNC);
    if (!e) {
        fail("no exported function \"%s\" in keel_module_export list", field);
        free(field);
        return;
    }
    char params[MAX_VALS], results[MAX_VALS];
    if (split_sig(e->sig, params, results)) {
        fail("bad export signature '%s'", e->sig);
        free(field);
        return;
    }
    if ((int)strlen(params) != nargs) {
        fail("export signature '%s' has %zu params, script has %d", e->sig,
             strlen(params), nargs);
        free(field);
        return;
    }
    for (int k = 0; k < nargs; k++)
        if (params[k] != type_of_val(&args[k])) {
            fail("export signature '%s': param %d is not %s", e->sig, k, tok[6 + k]);
            free(field);
            return;
        }
    size_t nres = strlen(results);
    uint64_t vals[MAX_VALS];
    memset(vals, 0, sizeof vals);
    for (int k = 0; k < nargs; k++) vals[k] = val_to_arg(&args[k]);
    size_t nvals = (size_t)nargs > nres ? (size_t)nargs : nres;
    if (nvals == 0) nvals = 1;

    keel_rt_limits lim = {.deadline_ns = keel_rt_now_ns() + CALL_DEADLINE_NS};
    keel_rt_outcome out;
    memset(&out, 0, sizeof out);
    char err[512] = "";
    int rc = keel_instance_call_n(md->inst, field, flen, vals, nvals, &lim, &out,
                                  err, sizeof err);
    if (rc != 0) {
        fail("keel_instance_call_n(\"%s\") failed (rc %d): %s", field, rc, err);
        free(field);
        return;
    }

    if (!strcmp(kind, "return") || !strcmp(kind, "action")) {
        if (out.end != KEEL_RT_RETURNED) {
            fail("%s: expected return, %s", field, end_str(&out));
        } else if (!strcmp(kind, "action")) {
            ok();
        } else if ((size_t)nexp != nres) {
            fail("%s: %zu results, expected %d", field, nres, nexp);
        } else {
            char got[512] = "", one[64];
            int good = 1;
            for (size_t k = 0; k < nres; k++) {
                if (!result_matches(&exps[k], results[k], vals[k])) good = 0;
                fmt_result(results[k], vals[k], one, sizeof one);
                strncat(got, " ", sizeof got - strlen(got) - 1);
                strncat(got, one, sizeof got - strlen(got) - 1);
            }
            if (good) {
                ok();
            } else {
                char want[512] = "";
                for (int k = 0; k < nexp; k++) {
                    if (exps[k].nan || exps[k].null)
                        snprintf(one, sizeof one, "%s", tok[6 + nargs + 1 + k]);
                    else
                        fmt_result(exps[k].type, val_to_arg(&exps[k]), one, sizeof one);
                    strncat(want, " ", sizeof want - strlen(want) - 1);
                    strncat(want, one, sizeof want - strlen(want) - 1);
                }
                fail("%s: got%s, expected%s", field, got, want);
            }
        }
    } else {
        keel_trap_kind want = !strcmp(kind, "exhaust") ? KEEL_TRAP_EXHAUSTION
                                                        : trap_for_text(text);
        if (want == KEEL_TRAP_NONE)
            fail("harness: unknown trap text \"%s\"", text);
        else if (out.end == KEEL_RT_TRAPPED && out.trap == want)
            ok();
        else
            fail("%s: expected trap \"%s\" (%s), %s", field, text, trap_str(want),
                 end_str(&out));
    }
    free(field);
}

static void cmd_get(char **tok, int ntok)
{
    /* G LINE MODHEX FIELDHEX NEXP EXP */
    if (ntok < 6) { fail("bad script line"); return; }
    mod *md = find_mod(tok[2]);
    if (!md || !md->inst) { fail("module %s unavailable (earlier failure)", tok[2]); return; }
    val want;
    if (atoi(tok[4]) != 1 || ntok < 6 || parse_val(tok[5], &want)) {
        fail("bad script line"); return;
    }
    size_t flen;
    char *field = unhex(tok[3], &flen);
    const keel_extern *e = find_export(md, field, flen, KEEL_EXTERN_GLOBAL);
    if (!e) { fail("no exported global \"%s\"", field); free(field); return; }
    char type = e->sig[0] == 'm' ? e->sig[1] : e->sig[0];
    uint64_t v = 0;
    int rc = keel_instance_global(md->inst, field, &v);
    if (rc != 0) {
        fail("keel_instance_global(\"%s\") failed (rc %d)", field, rc);
    } else if (!result_matches(&want, type, v)) {
        char got[64];
        fmt_result(type, v, got, sizeof got);
        fail("global %s: got %s, expected %s", field, got, tok[5]);
    } else {
        ok();
    }
    free(field);
}

static int invalid_not_einval;   /* stats: rejected, but not as KEEL_EINVAL */

static void cmd_reject(char **tok, int ntok, const char *what)
{
    /* V|B LINE PATH TEXT... : keel_module_load must fail */
    if (ntok < 3) { fail("bad script line"); return; }
    char *path = path_in_dir(tok[2]);
    keel_module *m = NULL;
    char err[1024] = "";
    double t0 = now_ms();
    int rc = keel_module_load(path, &opts, &m, err, sizeof err);
    double ms = now_ms() - t0;
    free(path);
    if (rc == 0) {
        fail("%s module %s was accepted by keel_module_load", what, tok[2]);
        keel_module_free(m);
        return;
    }
    if (verbose) fprintf(stderr, "  line %d: rejected (rc %d, %.1f ms): %s\n",
                         cur_line, rc, ms, err);
    printf("reject %d %d %.1f %s\n", cur_line, rc, ms, err);
    if (rc != KEEL_EINVAL) invalid_not_einval++;
    ok();
}

static void cmd_unlinkable(char **tok, int ntok)
{
    /* U LINE PATH TEXT... */
    if (ntok < 4) { fail("bad script line"); return; }
    mod *md = xcalloc(1, sizeof *md);
    md->line = cur_line;
    take_pending(md);
    add_mod(md);
    char err[1024] = "";
    link_ctx lc;
    keel_rt_outcome trap;
    int rc;
    int want = !strcmp(tok[3], "unknown") ? LINK_UNKNOWN : LINK_INCOMPATIBLE;
    int stage = instantiate(md, tok[2], err, sizeof err, &lc, &trap, &rc);
    if (stage == 1 && rc == KEEL_ELINK) {
        /* The engine refuses imports it cannot link before any resolver
         * call (one name imported with two types): unlinkable, but without
         * the resolver's unknown/incompatible verdict to compare. */
        if (verbose) fprintf(stderr, "  line %d: load refused as KEEL_ELINK: %s\n",
                             cur_line, err);
        ok();
    } else if (stage == 1) {
        fail("unlinkable module failed to load (rc %d): %s", rc, err);
    } else if (stage == 0 || stage == 3) {
        fail("module linked%s (expected %s import failure)",
             stage == 0 ? " and instantiated" : "",
             want == LINK_UNKNOWN ? "unknown" : "incompatible");
    } else if (lc.failure == 0) {
        fail("link failed but not in the resolver (rc %d): %s", rc, err);
    } else if (lc.failure != want) {
        fail("link failed for the wrong reason: %s", lc.why);
    } else {
        ok();
    }
}

static void cmd_uninstantiable(char **tok, int ntok)
{
    /* X LINE PATH TEXT... */
    if (ntok < 4) { fail("bad script line"); return; }
    char text[256] = "";
    for (int i = 3; i < ntok; i++) {
        if (text[0]) strncat(text, " ", sizeof text - strlen(text) - 1);
        strncat(text, tok[i], sizeof text - strlen(text) - 1);
    }
    keel_trap_kind want = trap_for_text(text);
    mod *md = xcalloc(1, sizeof *md);
    md->line = cur_line;
    take_pending(md);
    add_mod(md);
    char err[1024] = "";
    link_ctx lc;
    keel_rt_outcome trap;
    int rc;
    int stage = instantiate(md, tok[2], err, sizeof err, &lc, &trap, &rc);
    if (stage == 0)
        fail("module instantiated (expected trap \"%s\")", text);
    else if (stage != 3)
        fail("failed before instantiation (stage %s, rc %d): %s",
             stage == 1 ? "load" : "link", rc, err);
    else if (trap.end != KEEL_RT_TRAPPED)
        fail("instantiation failed without a trap (rc %d): %s", rc, err);
    else if (trap.trap != want)
        fail("expected trap \"%s\" (%s), got %s", text, trap_str(want),
             end_str(&trap));
    else
        ok();
}

static void cmd_type(char **tok, int ntok)
{
    /* TI INDEX table ELEM MIN MAX | TI INDEX memory MIN MAX
     * TE NAMEHEX table ELEM MIN MAX | TE NAMEHEX memory MIN MAX */
    if (ntok < 5) { fprintf(stderr, "spec_runner: bad type line\n"); exit(2); }
    if (npending == cappending) {
        cappending = cappending ? cappending * 2 : 8;
        pending = realloc(pending, cappending * sizeof *pending);
        if (!pending) exit(2);
    }
    type_line *t = &pending[npending++];
    memset(t, 0, sizeof *t);
    t->is_import = !strcmp(tok[0], "TI");
    if (t->is_import) t->index = strtoull(tok[1], NULL, 10);
    else t->name = unhex(tok[1], NULL);
    int i = 3;
    if (!strcmp(tok[2], "table")) {
        t->lim.kind = KEEL_EXTERN_TABLE;
        snprintf(t->lim.elem, sizeof t->lim.elem, "%s", tok[i++]);
    } else {
        t->lim.kind = KEEL_EXTERN_MEMORY;
    }
    if (i + 1 >= ntok) { fprintf(stderr, "spec_runner: bad type line\n"); exit(2); }
    t->lim.min = strtoull(tok[i], NULL, 10);
    t->lim.max = strcmp(tok[i + 1], "-") ? strtoull(tok[i + 1], NULL, 10) : NO_MAX;
}

int main(int argc, char **argv)
{
    const char *script = NULL, *tier = "fast";
    int until = 0;
    opts.cache_dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--tier") && i + 1 < argc) tier = argv[++i];
        else if (!strcmp(argv[i], "--cache") && i + 1 < argc) opts.cache_dir = argv[++i];
        else if (!strcmp(argv[i], "--until") && i + 1 < argc) until = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-v")) verbose = 1;
        else if (argv[i][0] != '-' && !script) script = argv[i];
        else {
            fprintf(stderr, "usage: spec_runner --tier fast|opt [--cache DIR] "
                            "[--until LINE] [-v] SCRIPT\n");
            return 2;
        }
    }
    if (!script) {
        fprintf(stderr, "spec_runner: no script\n");
        return 2;
    }
    if (!strcmp(tier, "fast")) opts.tier = KEEL_TIER_FAST;
    else if (!strcmp(tier, "opt")) opts.tier = KEEL_TIER_OPT;
    else { fprintf(stderr, "spec_runner: tier is fast or opt\n"); return 2; }
    opts.background_opt = false;
    opts.verbose = verbose;

    char *dir = xstrdup(script);
    char *slash = strrchr(dir, '/');
    if (slash) { *slash = 0; script_dir = dir; }

    FILE *f = fopen(script, "r");
    if (!f) {
        fprintf(stderr, "spec_runner: %s: %s\n", script, strerror(errno));
        return 2;
    }
    int rc = keel_rt_init();
    if (rc != 0) {
        fprintf(stderr, "spec_runner: keel_rt_init failed (%d)\n", rc);
        return 2;
    }
    spec_host_init();

    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    char *tok[MAX_TOKENS];
    while ((len = getline(&line, &cap, f)) >= 0) {
        int ntok = 0;
        for (char *s = strtok(line, " \t\r\n"); s && ntok < MAX_TOKENS;
             s = strtok(NULL, " \t\r\n"))
            tok[ntok++] = s;
        if (ntok == 0 || tok[0][0] == '#') continue;
        if (!strcmp(tok[0], "TI") || !strcmp(tok[0], "TE")) {
            cmd_type(tok, ntok);
            continue;
        }
        if (ntok < 2) { fprintf(stderr, "spec_runner: bad line\n"); return 2; }
        cur_line = atoi(tok[1]);
        if (until && cur_line > until) break;
        if (verbose) {
            fprintf(stderr, "line %d:", cur_line);
            for (int i = 0; i < ntok; i++) fprintf(stderr, " %s", tok[i]);
            fprintf(stderr, "\n");
        }
        if (!strcmp(tok[0], "M")) cmd_module(tok, ntok);
        else if (!strcmp(tok[0], "R")) cmd_register(tok, ntok);
        else if (!strcmp(tok[0], "A")) cmd_invoke(tok, ntok);
        else if (!strcmp(tok[0], "G")) cmd_get(tok, ntok);
        else if (!strcmp(tok[0], "V")) cmd_reject(tok, ntok, "invalid");
        else if (!strcmp(tok[0], "B")) cmd_reject(tok, ntok, "malformed");
        else if (!strcmp(tok[0], "U")) cmd_unlinkable(tok, ntok);
        else if (!strcmp(tok[0], "X")) cmd_uninstantiable(tok, ntok);
        else { fprintf(stderr, "spec_runner: unknown command %s\n", tok[0]); return 2; }
    }
    free(line);
    fclose(f);

    /* Free instances before modules, newest first (importers before the
     * instances they import from). */
    for (size_t i = nmods; i-- > 0;) {
        keel_instance_free(mods[i]->inst);
        mods[i]->inst = NULL;
    }
    for (size_t i = nmods; i-- > 0;) {
        keel_module_free(mods[i]->m);
        for (size_t k = 0; k < mods[i]->ntypes; k++) free(mods[i]->types[k].name);
        free(mods[i]->types);
        free(mods[i]->id);
        free(mods[i]);
    }
    free(mods);
    free(pending);
    spec_host_free();
    free(dir);
    printf("stat rejected_not_einval %d\n", invalid_not_einval);
    printf("done\n");
    return 0;
}
