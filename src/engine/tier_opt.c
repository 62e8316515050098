/* tier_opt.c — the optimized tier: `cc -O2` out of process into a shared
 * object, loaded with dlopen.
 *
 * Flags: -fno-optimize-sibling-calls keeps guest recursion on the native
 * stack (so exhaustion traps instead of looping forever); -frounding-math
 * and -fsignaling-nans keep IEEE semantics wasm requires (NaN bits, no
 * constant folding across rounding modes). Objects are loaded RTLD_LOCAL;
 * the glue binds imports, so an object depends on no symbol of the process
 * except the wasm_rt_* runtime. A second load of an object already loaded
 * in this process goes through a private copy: import bindings live in the
 * object, and two links of one module may differ. */
#include "engine/native_int.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/errors.h"
#include "base/proc.h"
#include "config/units.h"

#define OPT_CFLAGS "-O2", "-fPIC", "-shared", "-w", "-DNDEBUG", \
    "-DWASM_RT_MEMCHECK_SIGNAL_HANDLER=1", "-fno-optimize-sibling-calls", \
    "-frounding-math", "-fsignaling-nans", "-fno-semantic-interposition"
#define OPT_CFLAGS_TEXT "-O2 -fPIC -shared -w -DNDEBUG -DWASM_RT_MEMCHECK_SIGNAL_HANDLER=1 " \
    "-fno-optimize-sibling-calls -frounding-math -fsignaling-nans -fno-semantic-interposition"

static const char *compiler(void)
{
    const char *cc = getenv("KEEL_CC");
    return cc && *cc ? cc : "cc";
}

/* Budget defaults for one optimized build. */
#define OPT_DEFAULT_MEMORY (6ull << 30)
#define OPT_DEFAULT_TIMEOUT_NS (600ull * 1000000000ull)

static uint64_t env_size(const char *name, uint64_t dflt)
{
    uint64_t v;
    const char *s = getenv(name);
    return s && *s && keel_parse_size(s, &v) == 0 ? v : dflt;
}

static uint64_t env_duration(const char *name, uint64_t dflt)
{
    uint64_t v;
    const char *s = getenv(name);
    return s && *s && keel_parse_duration(s, &v) == 0 ? v : dflt;
}

static int write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    size_t n = strlen(text);
    int ok = fwrite(text, 1, n, f) == n;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* Did the job fail for lack of memory (rather than a compile error)? */
static int out_of_memory(const keel_job *j)
{
    if (j->status >= 128)
        return 1;
    FILE *f = fopen(j->stderr_path, "r");
    char line[512];
    int oom = 0;
    while (f && !oom && fgets(line, sizeof line, f))
        oom = strstr(line, "out of memory") || strstr(line, "memory exhausted") ||
              strstr(line, "Cannot allocate memory") ||
              strstr(line, "signal terminated program") ||   /* cc1 died under the limit */
              strstr(line, "failed to map segment");         /* could not even start */
    if (f)
        fclose(f);
    return oom;
}

int keel_native_opt_build(const char *workdir, char *const *units, size_t nunits,
                          const char *so_path, char *err, size_t errlen)
{
    uint64_t mem = env_size("KEEL_OPT_MEMORY", OPT_DEFAULT_MEMORY);
    uint64_t timeout = env_duration("KEEL_OPT_TIMEOUT", OPT_DEFAULT_TIMEOUT_NS);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    size_t jobs_max = (size_t)(cpus > 0 ? cpus : 1);
    const char *ej = getenv("KEEL_OPT_JOBS");
    if (ej && atoi(ej) > 0)
        jobs_max = (size_t)atoi(ej);

    /* per unit: "unitN.c" -> "unitN.o" (or the .so directly for one unit) */
    size_t nj = nunits;
    keel_job *jobs = calloc(nj + 1, sizeof *jobs);
    char (*paths)[3][PATH_MAX] = calloc(nj + 1, sizeof *paths);
    const char **argvs = calloc((nj + 1) * 24 + nj + 8, sizeof *argvs);
    if (!jobs || !paths || !argvs)
        abort();
    int rc = 0;
    const char **a = argvs;
    for (size_t i = 0; i < nunits; i++) {
        snprintf(paths[i][0], PATH_MAX, "%s/unit%zu.c", workdir, i);
        snprintf(paths[i][1], PATH_MAX, "%s/unit%zu.o", workdir, i);
        snprintf(paths[i][2], PATH_MAX, "%s/unit%zu.log", workdir, i);
        if (write_text(paths[i][0], units[i]) != 0) {
            rc = keel_err(err, errlen, KEEL_EIO, "writing %s: %s", paths[i][0], strerror(errno));
            goto out;
        }
        jobs[i].argv = a;
        jobs[i].stderr_path = paths[i][2];
        const char *one[] = { compiler(), OPT_CFLAGS, NULL };
        for (const char **o = one; *o; o++)
            *a++ = *o;
        if (nunits == 1) {
            *a++ = "-shared";
            *a++ = "-o";
            *a++ = so_path;
        } else {
            *a++ = "-fvisibility=hidden";
            *a++ = "-c";
            *a++ = "-o";
            *a++ = paths[i][1];
        }
        *a++ = paths[i][0];
        *a++ = NULL;
    }
    rc = keel_proc_run_jobs(jobs, nunits, jobs_max, mem, timeout, err, errlen);
    if (rc)
        goto out;
    if (nunits > 1) {
        /* link: cc -shared -o so unit0.o unit1.o ... */
        keel_job *link = &jobs[nunits];
        snprintf(paths[nunits][2], PATH_MAX, "%s/link.log", workdir);
        link->argv = a;
        link->stderr_path = paths[nunits][2];
        *a++ = compiler();
        *a++ = "-shared";
        *a++ = "-o";
        *a++ = so_path;
        for (size_t i = 0; i < nunits; i++)
            *a++ = paths[i][1];
        *a++ = NULL;
        nj = nunits + 1;
        rc = keel_proc_run_jobs(link, 1, 1, 0, timeout, err, errlen);
        if (rc)
            goto out;
    }
    for (size_t i = 0; i < nj; i++) {
        if (jobs[i].status == 0)
            continue;
        char line[512];
        keel_first_line(jobs[i].stderr_path, line, sizeof line);
        if (out_of_memory(&jobs[i]))
            rc = keel_err(err, errlen, KEEL_ELIMIT,
                          "memory budget of %llu MiB per compiler exceeded",
                          (unsigned long long)(mem >> 20));
        else
            rc = keel_err(err, errlen, KEEL_ECOMPILE, "optimized tier: %s exited with %d%s%s",
                          compiler(), jobs[i].status, line[0] ? ": " : "", line);
        break;
    }
out:
    for (size_t i = 0; i <= nunits; i++)
        for (int k = 0; k < 3; k++)
            if (paths[i][k][0])
                unlink(paths[i][k]);
    free(jobs);
    free(paths);
    free(argvs);
    return rc;
}

/* Finds the executable PT_LOAD segment of the object loaded at base. */
typedef struct exec_range {
    uintptr_t base;
    const void *start, *end;
} exec_range;

static int find_exec(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    exec_range *r = data;
    if (info->dlpi_addr != r->base)
        return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
            r->start = (const void *)(info->dlpi_addr + ph->p_vaddr);
            r->end = (const char *)r->start + ph->p_memsz;
            return 1;
        }
    }
    return 0;
}

static void *dl_lookup(void *h, const char *name)
{
    return dlsym(h, name);
}

/* Paths of objects this process has loaded, to detect a second load. */
static pthread_mutex_t loaded_lock = PTHREAD_MUTEX_INITIALIZER;
static char **loaded;
static size_t nloaded;

static int already_loaded(const char *path)
{
    int found = 0;
    pthread_mutex_lock(&loaded_lock);
    for (size_t i = 0; i < nloaded && !found; i++)
        found = strcmp(loaded[i], path) == 0;
    if (!found) {
        char **l = realloc(loaded, (nloaded + 1) * sizeof *l);
        if (!l || !(l[nloaded] = strdup(path)))
            abort();
        loaded = l;
        nloaded++;
    }
    pthread_mutex_unlock(&loaded_lock);
    return found;
}

/* Copies src to a fresh temporary file; returns its malloc'd path. */
static char *private_copy(const char *src)
{
    const char *tmp = getenv("TMPDIR");
    char *path;
    if (asprintf(&path, "%s/keel-so-XXXXXX", tmp && *tmp ? tmp : "/tmp") < 0)
        return NULL;
    int out = mkstemp(path);
    int in = open(src, O_RDONLY | O_CLOEXEC);
    int ok = out >= 0 && in >= 0;
    char buf[65536];
    ssize_t r;
    while (ok && (r = read(in, buf, sizeof buf)) > 0)
        ok = write(out, buf, (size_t)r) == r;
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    if (!ok) {
        unlink(path);
        free(path);
        return NULL;
    }
    return path;
}

/* Wraps the dlopen handle h (owned from here on) in a keel_native. */
static int native_from_handle(void *h, int image_fd, keel_native **out, char *err,
                              size_t errlen)
{
    keel_native *n = calloc(1, sizeof *n);
    if (!n)
        abort();
    n->dl = h;
    n->image_fd = image_fd;
    int rc = keel_native_bind_syms(&n->syms, dl_lookup, h, err, errlen);
    if (rc) {
        keel_native_free(n);
        return rc;
    }
    struct link_map *lm;
    exec_range r = { 0, NULL, NULL };
    if (dlinfo(h, RTLD_DI_LINKMAP, &lm) == 0) {
        r.base = lm->l_addr;
        dl_iterate_phdr(find_exec, &r);
    }
    if (!r.start) {
        keel_native_free(n);
        return keel_err(err, errlen, KEEL_ECOMPILE, "compiled module has no code segment");
    }
    n->code_start = r.start;
    n->code_end = r.end;
    *out = n;
    return 0;
}

int keel_native_open(const char *so_path, keel_native **out, char *err,
                     size_t errlen)
{
    char real[PATH_MAX];
    if (!realpath(so_path, real))
        return keel_err(err, errlen, KEEL_EIO, "%s: %s", so_path, strerror(errno));
    char *copy = NULL;
    if (already_loaded(real)) {
        copy = private_copy(real);
        if (!copy)
            return keel_err(err, errlen, KEEL_EIO, "cannot copy %s", real);
    }
    void *h = dlopen(copy ? copy : real, RTLD_NOW | RTLD_LOCAL);
    if (copy) {
        unlink(copy);
        free(copy);
    }
    if (!h)
        return keel_err(err, errlen, KEEL_ECOMPILE, "loading compiled module: %s", dlerror());
    return native_from_handle(h, -1, out, err, errlen);
}

/* dlopen()s the file open as fd through its /proc/self/fd name. */
static void *open_fd(int fd)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    return dlopen(path, RTLD_NOW | RTLD_LOCAL);
}

int keel_native_open_image(const void *so, size_t len, const char *name,
                           keel_native **out, char *err, size_t errlen)
{
    char label[96];
    snprintf(label, sizeof label, "keel-%.64s", name);
    int fd = memfd_create(label, MFD_CLOEXEC);
    void *h = NULL;
    if (fd >= 0 && keel_write_all(fd, so, len) == 0)
        h = open_fd(fd);
    if (!h) {
        /* memfds may be barred from holding code (vm.memfd_noexec): an
         * unlinked temporary file instead */
        if (fd >= 0)
            close(fd);
        const char *tmp = getenv("TMPDIR");
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/keel-so-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        fd = mkostemp(path, O_CLOEXEC);
        if (fd < 0)
            return keel_err(err, errlen, KEEL_EIO, "embedded code of %s: %s: %s", name, path,
                            strerror(errno));
        unlink(path);
        if (keel_write_all(fd, so, len) == 0)
            h = open_fd(fd);
        if (!h) {
            close(fd);
            return keel_err(err, errlen, KEEL_ECOMPILE, "loading the embedded code of %s: %s",
                            name, dlerror());
        }
    }
    return native_from_handle(h, fd, out, err, errlen);
}

void keel_native_free(keel_native *n)
{
    if (!n)
        return;
    if (n->dl)
        dlclose(n->dl);
    if (n->dl && n->image_fd >= 0)
        close(n->image_fd);
    if (n->code)
        munmap(n->code, n->code_len);
    free(n);
}

/* Resolves a program name through PATH into a real path. */
static int which(const char *prog, char *out)
{
    if (strchr(prog, '/'))
        return realpath(prog, out) ? 0 : -1;
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/bin:/bin";
    while (*path) {
        size_t len = strcspn(path, ":");
        char cand[PATH_MAX];
        if (len && len + strlen(prog) + 2 < sizeof cand) {
            snprintf(cand, sizeof cand, "%.*s/%s", (int)len, path, prog);
            if (access(cand, X_OK) == 0 && realpath(cand, out))
                return 0;
        }
        path += len + (path[len] == ':');
    }
    return -1;
}

static char identity[PATH_MAX + 512];
static pthread_once_t identity_once = PTHREAD_ONCE_INIT;

static void init_identity(void)
{
    char real[PATH_MAX];
    struct stat st;
    if (which(compiler(), real) == 0 && stat(real, &st) == 0)
        snprintf(identity, sizeof identity, "%s size=%lld mtime=%lld flags=%s", real,
                 (long long)st.st_size, (long long)st.st_mtime, OPT_CFLAGS_TEXT);
    else
        snprintf(identity, sizeof identity, "%s flags=%s", compiler(), OPT_CFLAGS_TEXT);
}

const char *keel_native_opt_identity(void)
{
    pthread_once(&identity_once, init_identity);
    return identity;
}
