/* call.c — one invocation of one component: where its instance comes from
 * (host_instance_acquire/release: a copy-on-write image of the component's
 * initialized state, made once by host_image_build, or from scratch when
 * the component has none), the waPC initializer sequence, __guest_call, and
 * the guest's stdout/stderr on their way to the log. */
#include "host/host_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/errors.h"
#include "obs/log.h"
#include "wasi/wasi.h"
/* Read-only look at WASI's fd table, to check that an initializer left it
 * as a fresh keel_wasi starts (host_image_build). */
#include "wasi/wasi_int.h"

void host_buf_clear(host_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
}

void host_buf_set(host_buf *b, const void *data, size_t len)
{
    uint8_t *p = malloc(len + 1);
    if (!p)
        abort();
    if (len)
        memcpy(p, data, len);
    p[len] = 0;
    free(b->data);
    b->data = p;
    b->len = len;
}

void host_call_free(host_call *c)
{
    host_instance_release(c);
    host_buf_clear(&c->response);
    host_buf_clear(&c->error);
    host_buf_clear(&c->host_response);
    host_buf_clear(&c->host_error);
}

host_call *host_call_of(void *ctx)
{
    keel_host_ctx *hc = KEEL_HOST_CTX(ctx);
    if (!hc || !hc->component)
        keel_rt_trap(KEEL_TRAP_HOST);
    host_call *c = hc->component;
    if (c->is_template) {
        /* An initializer run for the image has no request: a host function
         * bound to one ends it, and the component initializes per request. */
        c->template_refused = true;
        keel_rt_trap(KEEL_TRAP_HOST);
    }
    return c;
}

uint8_t *host_guest_range(host_call *c, uint32_t ptr, uint32_t len)
{
    uint8_t *p = keel_guest_ptr(c->ctx.mem, ptr, len);
    if (!p)
        keel_rt_trap(KEEL_TRAP_OOB);
    return p;
}

void host_trap_text(const keel_rt_outcome *o, const host_component *c, char *buf, size_t len)
{
    const char *kind = keel_trap_kind_name(o->trap);
    if (o->trap == KEEL_TRAP_MEMORY_LIMIT || o->memory_limit_hit)
        snprintf(buf, len, "%s%s%s%s (memory limit %u pages of 64 KiB)", kind,
                 o->where[0] ? " in function " : "", o->where,
                 o->trap != KEEL_TRAP_MEMORY_LIMIT ? " after a memory.grow failed" : "",
                 c->memory_pages);
    else
        snprintf(buf, len, "%s%s%s", kind, o->where[0] ? " in function " : "", o->where);
}

int host_capped_memfd(const char *name, size_t cap)
{
    int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return -1;
    /* Sized once and sealed against growth: the guest's writes stop at cap+1
     * bytes (EPERM beyond), and the file offset says how much it wrote. The
     * pages stay unallocated until written. */
    if (ftruncate(fd, (off_t)cap + 1) != 0 ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SEAL) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

size_t host_memfd_used(int fd)
{
    off_t off = lseek(fd, 0, SEEK_CUR);
    return off > 0 ? (size_t)off : 0;
}

char *host_memfd_read(int fd, size_t len)
{
    char *buf = malloc(len + 1);
    if (!buf)
        abort();
    size_t got = 0;
    while (got < len) {
        ssize_t r = pread(fd, buf + got, len - got, (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    memset(buf + got, 0, len - got + 1);
    return buf;
}

void host_log_output(const host_component *c, const host_request *rq, int fd,
                     const char *stream)
{
    if (fd < 0)
        return;
    size_t used = host_memfd_used(fd);
    if (!used)
        return;
    size_t keep = used > KEEL_HOST_MAX_GUEST_OUTPUT_BYTES ? KEEL_HOST_MAX_GUEST_OUTPUT_BYTES : used;
    char *text = host_memfd_read(fd, keep);
    char *line = text, *end = text + keep;
    while (line < end) {
        char *nl = memchr(line, '\n', (size_t)(end - line));
        size_t n = nl ? (size_t)(nl - line) : (size_t)(end - line);
        if (n && line[n - 1] == '\r')
            n--;
        if (n)
            host_obs_guest_line(c, KEEL_LOG_INFO, "request %s: %s: %.*s", rq->id, stream,
                                (int)n, line);
        line = nl ? nl + 1 : end;
    }
    if (used > keep)
        keel_log(KEEL_LOG_WARN, c->cfg->name, "request %s: %s: output beyond %u bytes dropped",
                 rq->id, stream, KEEL_HOST_MAX_GUEST_OUTPUT_BYTES);
    free(text);
}

int host_instance_acquire(host_call *c, char *const *envp, int envc, const host_stdio *io,
                          host_result *r)
{
    host_component *comp = c->comp;
    const char *argv[1] = { comp->cfg->name };
    keel_wasi_config wc = {
        .argc = 1, .argv = argv,
        .envc = envc, .envp = (const char *const *)envp,
        .preopens = comp->preopens, .npreopens = comp->npreopens,
        .stdin_fd = io->in, .stdout_fd = io->out, .stderr_fd = io->err,
        .stdio_are_files = true,   /* the host's stdio are memfds */
    };
    char err[400];
    r->phase = "instantiation";
    if (keel_wasi_new(&wc, &c->wasi, err, sizeof err)) {
        r->end = HOST_FAILED;
        snprintf(r->why, sizeof r->why, "cannot set up WASI: %s", err);
        return -1;
    }
    c->ctx.mem = NULL;
    c->ctx.wasi = c->wasi;
    c->ctx.component = c;
    if (!c->code) {   /* the version's current code, kept to the end */
        if (!c->version)
            c->version = host_version_pick(comp);
        c->code = atomic_load_explicit(&c->version->code, memory_order_acquire);
    }
    host_code *code = c->code;
    size_t nmods = keel_module_import_module_count(code->mod);
    c->imports = nmods < sizeof c->imports_inline / sizeof *c->imports_inline
                     ? c->imports_inline : calloc(nmods + 1, sizeof *c->imports);
    if (!c->imports)
        abort();
    for (size_t i = 0; i < nmods; i++)
        c->imports[i] = &c->ctx;
    keel_rt_outcome o;
    memset(&o, 0, sizeof o);
    c->initialized = false;
    if (code->image && !c->is_template) {
        int rc = keel_instance_from_image(code->image, c->imports, comp->memory_pages, &c->inst,
                                          err, sizeof err);
        if (rc) {
            if (rc == KEEL_ELIMIT) {
                r->end = HOST_TRAPPED;
                memset(&r->o, 0, sizeof r->o);
                r->o.end = KEEL_RT_TRAPPED;
                r->o.trap = KEEL_TRAP_MEMORY_LIMIT;
                host_trap_text(&r->o, comp, r->why, sizeof r->why);
            } else {
                r->end = HOST_FAILED;
                snprintf(r->why, sizeof r->why, "%s", err);
            }
            host_instance_release(c);
            return -1;
        }
        c->initialized = code->image_initialized;
    } else if (keel_instance_new(code->mod, c->imports, comp->memory_pages, &c->inst, &o,
                                 err, sizeof err)) {
        if (o.end == KEEL_RT_TRAPPED) {
            r->end = HOST_TRAPPED;
            r->o = o;
            host_trap_text(&o, comp, r->why, sizeof r->why);
        } else {
            r->end = HOST_FAILED;
            snprintf(r->why, sizeof r->why, "%s", err);
        }
        host_instance_release(c);
        return -1;
    }
    c->ctx.mem = keel_instance_memory(c->inst, "memory");
    if (!c->ctx.mem)
        c->ctx.mem = keel_instance_memory(c->inst, NULL);
    host_obs_instance_begin(c);
    return 0;
}

void host_instance_release(host_call *c)
{
    host_obs_instance_end(c);
    keel_instance_free(c->inst);
    c->inst = NULL;
    keel_wasi_free(c->wasi);
    c->wasi = NULL;
    if (c->imports != c->imports_inline)
        free(c->imports);
    c->imports = NULL;
    c->ctx.mem = NULL;
}

/* Calls export name (no params, no results) as part of initialization.
 * Returns 0 when it returned (or proc_exit(0) for _start). */
static int run_init(host_call *c, const char *name, const keel_rt_limits *lim, host_result *r)
{
    uint64_t vals[1] = { 0 };
    keel_rt_outcome o;
    char err[256];
    r->phase = name;
    if (keel_instance_call(c->inst, name, vals, 1, lim, &o, err, sizeof err)) {
        r->end = HOST_FAILED;
        snprintf(r->why, sizeof r->why, "%s: %s", name, err);
        return -1;
    }
    if (o.end == KEEL_RT_RETURNED || (o.end == KEEL_RT_EXITED && o.exit_code == 0))
        return 0;
    if (o.end == KEEL_RT_EXITED) {
        r->end = HOST_GUEST_ERROR;
        snprintf(r->why, sizeof r->why, "%s exited with code %d", name, o.exit_code);
    } else {
        r->end = HOST_TRAPPED;
        r->o = o;
        host_trap_text(&o, c->comp, r->why, sizeof r->why);
    }
    return -1;
}

/* Initializer, once per instance: the WASI reactor's _initialize, else a
 * command's _start; then waPC's wapc_init. */
static int run_init_sequence(host_call *c, const keel_rt_limits *lim, host_result *r)
{
    if (c->code->has_initialize ? run_init(c, "_initialize", lim, r)
                                : c->code->has_start && run_init(c, "_start", lim, r))
        return -1;
    if (c->code->has_wapc_init && run_init(c, "wapc_init", lim, r))
        return -1;
    return 0;
}

/* Whether w's fd table is the one a fresh keel_wasi of the same
 * configuration has: same slots open, same kinds, rights and preopen
 * names (host fd numbers aside). */
static bool wasi_fresh(struct keel_wasi *w, const keel_wasi_config *cfg)
{
    struct keel_wasi *f;
    char err[256];
    if (keel_wasi_new(cfg, &f, err, sizeof err))
        return false;
    uint32_t n = w->nfds > f->nfds ? w->nfds : f->nfds;
    bool same = true;
    for (uint32_t i = 0; i < n && same; i++) {
        const keel_wasi_fd *a = i < w->nfds && w->fds[i].host >= 0 ? &w->fds[i] : NULL;
        const keel_wasi_fd *b = i < f->nfds && f->fds[i].host >= 0 ? &f->fds[i] : NULL;
        if (!a || !b) {
            same = !a && !b;
            continue;
        }
        same = a->filetype == b->filetype && a->readonly == b->readonly &&
               a->rights_base == b->rights_base &&
               a->rights_inheriting == b->rights_inheriting &&
               !a->preopen == !b->preopen && (!a->preopen || !strcmp(a->preopen, b->preopen));
    }
    keel_wasi_free(f);
    return same;
}

void host_image_build(keel_host *h, host_component *comp, host_code *code)
{
    const char *name = comp->cfg->name;
    const char *env = getenv("KEEL_INSTANCE_IMAGES");
    if (env && !strcmp(env, "0"))
        return;
    bool wapc = comp->cfg->abi == KEEL_ABI_WAPC;
    if (!wapc && keel_module_has_start(code->mod)) {
        /* its start function would run once instead of per request */
        keel_log(KEEL_LOG_INFO, name, "instances are created from scratch: the module has a "
                 "start function");
        return;
    }
    static const keel_request no_request = { .method = "", .path = "", .query = "" };
    host_request rq = {
        .h = h, .req = &no_request, .id = "init",
        .deadline_ns = keel_rt_now_ns() + comp->timeout_ns,
    };
    host_call c = { .rq = &rq, .comp = comp, .code = code, .cgi_stdout = -1,
                    .is_template = true };
    host_result r;
    memset(&r, 0, sizeof r);
    keel_rt_limits lim = { .deadline_ns = rq.deadline_ns };
    int out = host_capped_memfd("keel-init-output", KEEL_HOST_MAX_GUEST_OUTPUT_BYTES);
    host_stdio io = { .in = -1, .out = out, .err = out };
    const char *argv[1] = { name };
    keel_wasi_config wc = {
        .argc = 1, .argv = argv, .envc = comp->nenv, .envp = (const char *const *)comp->env,
        .preopens = comp->preopens, .npreopens = comp->npreopens,
        .stdin_fd = -1, .stdout_fd = out, .stderr_fd = out, .stdio_are_files = true,
    };
    char why[600] = "";
    if (host_instance_acquire(&c, comp->env, comp->nenv, &io, &r)) {
        snprintf(why, sizeof why, "instantiation failed: %s", r.why);
    } else if (wapc && run_init_sequence(&c, &lim, &r)) {
        if (c.template_refused)
            snprintf(why, sizeof why, "the initializer calls host functions of a request "
                     "(waPC or keel) and runs per request");
        else
            snprintf(why, sizeof why, "%s failed: %s", r.phase, r.why);
    } else if (!wasi_fresh(c.wasi, &wc)) {
        snprintf(why, sizeof why, "the initializer changed its WASI file descriptors");
    } else {
        char err[400];
        code->image = keel_image_new(c.inst, err, sizeof err);
        if (!code->image)
            snprintf(why, sizeof why, "%s", err);
        code->image_initialized = wapc;
    }
    host_call_free(&c);
    if (out >= 0) {
        host_log_output(comp, &rq, out, "output");
        close(out);
    }
    if (code->image)
        keel_log(KEEL_LOG_INFO, name, "instances start from a copy-on-write image%s (%s tier)",
                 wapc ? " of the initialized instance" : "", keel_module_tier(code->mod));
    else
        keel_log(KEEL_LOG_INFO, name, "instances are created from scratch: %s", why);
}

/* The capped memfd a waPC call at this depth uses for the guest's stdout
 * and stderr: one per call depth per thread, made on first use, at offset
 * 0 (wapc_output_done rewinds it after a call that wrote). Threads running
 * guests live as long as the process, and so do these. -1 when it cannot
 * be made. */
static int wapc_output_fd(int depth)
{
    static __thread int fds[KEEL_HOST_MAX_CALL_DEPTH + 2];   /* fd + 1; 0 = none */
    if (depth < 0 || depth > KEEL_HOST_MAX_CALL_DEPTH + 1)
        return host_capped_memfd("keel-wapc-output", KEEL_HOST_MAX_GUEST_OUTPUT_BYTES);
    if (!fds[depth]) {
        int fd = host_capped_memfd("keel-wapc-output", KEEL_HOST_MAX_GUEST_OUTPUT_BYTES);
        if (fd < 0)
            return -1;
        fds[depth] = fd + 1;
    }
    return fds[depth] - 1;
}

/* Logs what the guest wrote to out and leaves out at offset 0 for the next
 * call (closes it when it was not a per-thread one). wrote: the guest's
 * WASI state counted writes (it cannot seek the memfd), so a call that
 * wrote nothing costs no system call. A failed rewind closes nothing but
 * logs; the next call's output then appends. */
static void wapc_output_done(const host_call *c, int out, bool own, bool wrote)
{
    if (out < 0)
        return;
    if (own) {
        host_log_output(c->comp, c->rq, out, "output");
        close(out);
        return;
    }
    if (!wrote)
        return;
    host_log_output(c->comp, c->rq, out, "output");
    if (lseek(out, 0, SEEK_SET) != 0)
        keel_log(KEEL_LOG_WARN, c->comp->cfg->name, "cannot rewind the guest output file: %m");
}

void host_wapc_run(host_call *c, host_result *r)
{
    memset(r, 0, sizeof *r);
    host_component *comp = c->comp;
    keel_rt_limits lim = { .deadline_ns = c->rq->deadline_ns };
    /* The guest's stdout and stderr share one capped memfd, logged after. */
    int out = wapc_output_fd(c->depth);
    bool own_out = c->depth < 0 || c->depth > KEEL_HOST_MAX_CALL_DEPTH + 1;
    host_stdio io = { .in = -1, .out = out, .err = out };

    if (host_instance_acquire(c, comp->env, comp->nenv, &io, r))
        goto done;
    if (!c->initialized && run_init_sequence(c, &lim, r))
        goto done;

    uint64_t vals[2] = { c->op_len, c->payload_len };
    keel_rt_outcome o;
    char err[256];
    r->phase = "__guest_call";
    if (keel_instance_call(c->inst, "__guest_call", vals, 2, &lim, &o, err, sizeof err)) {
        r->end = HOST_FAILED;
        snprintf(r->why, sizeof r->why, "%s", err);
        goto done;
    }
    switch (o.end) {
    case KEEL_RT_RETURNED:
        if ((uint32_t)vals[0] == 1 && !c->errored) {
            r->end = HOST_OK;
        } else {
            r->end = HOST_GUEST_ERROR;
            if (c->errored)
                snprintf(r->why, sizeof r->why, "%.*s", (int)c->error.len,
                         (const char *)c->error.data);
            else
                snprintf(r->why, sizeof r->why,
                         "__guest_call returned %d without calling __guest_error",
                         (int)(uint32_t)vals[0]);
        }
        break;
    case KEEL_RT_EXITED:
        r->end = HOST_GUEST_ERROR;
        snprintf(r->why, sizeof r->why, "proc_exit(%d) during __guest_call", o.exit_code);
        break;
    case KEEL_RT_TRAPPED:
        r->end = HOST_TRAPPED;
        r->o = o;
        host_trap_text(&o, comp, r->why, sizeof r->why);
        break;
    }
done:
    if (r->end == HOST_TRAPPED && r->o.trap == KEEL_TRAP_DEADLINE)
        c->rq->deadline_hit = true;
    bool wrote = keel_wasi_stdio_written(c->wasi) != 0;
    host_instance_release(c);
    wapc_output_done(c, out, own_out, wrote);
}
