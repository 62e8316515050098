/* image.c — copy-on-write instance images (engine.h).
 *
 * keel_image_new freezes an instance: the wasm2c instance struct byte for
 * byte, every owned memory's bytes in a memfd (zero pages left as holes,
 * then sealed against any change), every owned table's elements. Where
 * things are inside the struct comes from the glue's layout tables
 * (module_int.h), computed with offsetof on the generated struct.
 *
 * keel_instance_from_image: copy the struct; store the new import-instance
 * pointers; per memory take a PROT_NONE reservation from the pool
 * (rt_memory.c) and map the memfd MAP_PRIVATE|MAP_FIXED over its first
 * `size` bytes, so reads share the page cache and the first write to a page
 * copies it; per table copy the elements. Funcref elements hold a
 * module_instance pointer: the instance itself for the module's own
 * functions (rebased onto the new struct), the import's instance for
 * imported ones (translate.c makes wasm2c's table initialization load it;
 * replaced by the new instance's import). Anything else is refused at
 * capture.
 *
 * Reuse: for a module with one memory (the usual case) keel_instance_free
 * hands the reservation back to its image (keel_image_recycle) instead of
 * the generic pool: pages grown past the image are mapped over with fresh
 * PROT_NONE memory; the pages the instance wrote (its private copies, found
 * with one PAGEMAP_SCAN) get the image's bytes copied back, and stay
 * mapped, so the next instance neither faults on them nor makes the kernel
 * flush other CPUs' TLBs (an instance that wrote over IMAGE_COPY_MAX, or a
 * kernel without PAGEMAP_SCAN: MADV_DONTNEED drops the copies instead).
 * The next keel_instance_from_image takes such a slot with no system call.
 * The reset itself waits in a per-thread list until keel_image_tidy (the
 * server calls it once a response is on its way), so a request does not
 * wait for the resets of the instances it used.
 * The generated free then releases the tables (and any other memory to the
 * generic pool, rt_memory.c).
 *
 * Nothing else in the struct points anywhere: globals are values (funcref
 * globals make the glue refuse the layout), segment "dropped" flags are
 * booleans, imported memories/tables/globals are refused. */
#include "engine/module_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/errors.h"

#define IMAGE_PAGE_BYTES 65536u
#define IMAGE_OS_PAGE 4096u
/* Clean reservations an image keeps with its memfd already mapped, for a
 * module with one memory (each holds the image's bytes of page cache
 * references, plus the private pages earlier instances wrote, reset to the
 * image's contents). */
#define IMAGE_SLOTS_MAX 64
/* Resetting a slot copies at most this much back from the image; an
 * instance that wrote more gets its private pages dropped instead. */
#define IMAGE_COPY_MAX (1u << 20)
#define IMAGE_SCAN_REGIONS 64
/* Freed memories a thread holds before it resets them (keel_image_tidy). */
#define IMAGE_PENDING_MAX 32

/* PAGEMAP_SCAN (Linux 6.7, linux/fs.h; Debian 12's headers predate it):
 * the kernel's ABI, declared here under Keel's names. */
typedef struct pm_region {
    uint64_t start, end, categories;
} pm_region;
typedef struct pm_scan_arg {
    uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
    uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
} pm_scan_arg;
#define PM_PAGEMAP_SCAN _IOWR('f', 16, pm_scan_arg)
#define PM_PAGE_IS_FILE (1u << 2)
#define PM_PAGE_IS_PRESENT (1u << 3)

typedef struct image_mem {
    uint32_t off;             /* of the wasm_rt_memory_t in the struct */
    int fd;                   /* sealed memfd of `bytes` bytes; -1 when 0 */
    uint64_t bytes;           /* pages * 64 KiB */
    uint32_t pages, max_pages, size;
    const unsigned char *src; /* the memfd mapped shared, read-only (NULL when 0) */
    uint64_t *zero;           /* bit per OS page: all zero in the image (a hole) */
} image_mem;

typedef struct image_table {
    uint32_t off;
    bool funcref;
    void *data;               /* size elements (NULL when 0) */
    int32_t *import_of;       /* funcref: per element, the import whose
                                 instance it holds (an imported function),
                                 or -1 (NULL when there is none) */
    uint32_t size, max_size;
} image_table;

struct keel_image {
    keel_module *m;
    const keel_glue_layout *lay;
    size_t size;              /* of the instance struct */
    unsigned char *bytes;     /* the struct as captured */
    uintptr_t tmpl;           /* the template struct's address (for rebasing) */
    image_mem *mems;
    uint32_t nmems;
    image_table *tabs;
    uint32_t ntabs;
    /* Reservations of the single memory, memfd mapped, contents pristine:
     * taken and returned with one compare-and-swap, no lock. */
    _Atomic(unsigned char *) slots[IMAGE_SLOTS_MAX];
    /* The owner's hold (dropped by keel_image_free) plus one per freed
     * memory waiting in some thread's pending list: an image replaced while
     * serving is destroyed by whichever drops the last. */
    _Atomic uint32_t refs;
};

/* Where this thread last took or returned a slot: threads tend to find
 * their own slot again there, without contending on the others'. */
static _Thread_local uint32_t slot_hint;

static unsigned char *slot_take(keel_image *img)
{
    for (uint32_t k = 0; k < IMAGE_SLOTS_MAX; k++) {
        uint32_t i = (slot_hint + k) % IMAGE_SLOTS_MAX;
        unsigned char *p = atomic_load_explicit(&img->slots[i], memory_order_relaxed);
        if (p && atomic_compare_exchange_strong(&img->slots[i], &p, NULL)) {
            slot_hint = i;
            return p;
        }
    }
    return NULL;
}

static bool slot_put(keel_image *img, unsigned char *base)
{
    for (uint32_t k = 0; k < IMAGE_SLOTS_MAX; k++) {
        uint32_t i = (slot_hint + k) % IMAGE_SLOTS_MAX;
        unsigned char *none = NULL;
        if (!atomic_load_explicit(&img->slots[i], memory_order_relaxed) &&
            atomic_compare_exchange_strong(&img->slots[i], &none, base)) {
            slot_hint = i;
            return true;
        }
    }
    return false;
}

/* A clean slot, or after resetting this thread's freed memories (below). */
static unsigned char *slot_take_or_tidy(keel_image *img);

bool keel_module_has_start(const keel_module *m)
{
    return m->info.has_start;
}

static void image_destroy(keel_image *img)
{
    for (uint32_t i = 0; i < IMAGE_SLOTS_MAX; i++) {
        unsigned char *p = atomic_load(&img->slots[i]);
        if (p)
            rt_memory_release(p, img->mems[0].bytes);
    }
    for (uint32_t i = 0; i < img->nmems; i++) {
        image_mem *im = &img->mems[i];
        if (im->fd >= 0)
            close(im->fd);
        if (im->src)
            munmap((void *)im->src, im->bytes);
        free(im->zero);
    }
    for (uint32_t i = 0; i < img->ntabs; i++) {
        free(img->tabs[i].data);
        free(img->tabs[i].import_of);
    }
    free(img->mems);
    free(img->tabs);
    free(img->bytes);
    free(img);
}

static void image_put(keel_image *img)
{
    if (atomic_fetch_sub_explicit(&img->refs, 1, memory_order_acq_rel) == 1)
        image_destroy(img);
}

void keel_image_free(keel_image *img)
{
    if (!img)
        return;
    keel_image_tidy();   /* this thread's pending resets; other threads' hold refs */
    image_put(img);
}

static int write_full(int fd, const unsigned char *p, size_t n, off_t off)
{
    while (n) {
        ssize_t w = pwrite(fd, p, n, off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
        off += w;
    }
    return 0;
}

static bool page_is_zero(const unsigned char *p)
{
    const uint64_t *q = (const uint64_t *)(const void *)p;
    for (size_t i = 0; i < IMAGE_OS_PAGE / 8; i++)
        if (q[i])
            return false;
    return true;
}

/* Which import of the template instance `in` has instance p (the value in
 * the struct's import field), or -1. */
static int32_t import_index(const keel_image *img, const keel_instance *in, const void *p)
{
    for (int32_t k = 0; k < img->lay->nimports; k++) {
        void *v;
        memcpy(&v, (const char *)in->inst + img->lay->imports[k], sizeof v);
        if (v == p)
            return k;
    }
    return -1;
}

/* The memory's bytes into a new sealed memfd; -1 on failure. Sets a bit in
 * zero (bytes / 4 KiB bits, zeroed by the caller) per all-zero page. */
static int memory_to_memfd(const unsigned char *data, uint64_t bytes, uint64_t *zero)
{
    int fd = memfd_create("keel-image", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return -1;
    if (ftruncate(fd, (off_t)bytes) != 0)
        goto fail;
    /* Runs of non-zero pages; zero pages stay holes (no memory). */
    for (uint64_t at = 0; at < bytes;) {
        if (page_is_zero(data + at)) {
            zero[at / IMAGE_OS_PAGE / 64] |= 1ull << (at / IMAGE_OS_PAGE % 64);
            at += IMAGE_OS_PAGE;
            continue;
        }
        uint64_t end = at + IMAGE_OS_PAGE;
        while (end < bytes && !page_is_zero(data + end))
            end += IMAGE_OS_PAGE;
        if (write_full(fd, data + at, (size_t)(end - at), (off_t)at) != 0)
            goto fail;
        at = end;
    }
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0)
        goto fail;
    return fd;
fail:
    close(fd);
    return -1;
}

keel_image *keel_image_new(keel_instance *in, char *err, size_t errlen)
{
    keel_module *m = in->m;
    const keel_glue_layout *lay = keel_module_layout(m);
    if (!lay || lay->nmems < 0 || lay->nfuncref < 0 || lay->nexternref < 0 ||
        lay->nimports < 0) {
        keel_err(err, errlen, KEEL_EUNSUPPORTED,
                 "%s: no image: the instance holds state an image cannot reproduce "
                 "(imported memories, tables or globals, or funcref globals)", m->path);
        return NULL;
    }
    if ((size_t)lay->nimports != m->nimport_modules) {
        keel_err(err, errlen, KEEL_EUNSUPPORTED, "%s: no image: import modules do not match",
                 m->path);
        return NULL;
    }
    keel_image *img = calloc(1, sizeof *img);
    if (!img)
        abort();
    img->m = m;
    atomic_init(&img->refs, 1);
    img->lay = lay;
    img->size = m->syms->instance_size();
    img->bytes = malloc(img->size ? img->size : 1);
    img->mems = calloc((size_t)lay->nmems + 1, sizeof *img->mems);
    img->tabs = calloc((size_t)lay->nfuncref + (size_t)lay->nexternref + 1, sizeof *img->tabs);
    if (!img->bytes || !img->mems || !img->tabs)
        abort();
    memcpy(img->bytes, in->inst, img->size);
    img->tmpl = (uintptr_t)in->inst;

    for (int32_t i = 0; i < lay->nmems; i++) {
        const wasm_rt_memory_t *mem =
            (const wasm_rt_memory_t *)(const void *)((char *)in->inst + lay->mems[i]);
        image_mem *im = &img->mems[img->nmems++];
        im->off = lay->mems[i];
        im->fd = -1;
        im->pages = mem->pages;
        im->max_pages = mem->max_pages;
        im->size = mem->size;
        im->bytes = (uint64_t)mem->pages * IMAGE_PAGE_BYTES;
        if (!im->bytes)
            continue;
        im->zero = calloc((size_t)(im->bytes / IMAGE_OS_PAGE + 63) / 64, sizeof *im->zero);
        if (!im->zero)
            abort();
        if ((im->fd = memory_to_memfd(mem->data, im->bytes, im->zero)) < 0) {
            keel_err(err, errlen, KEEL_EIO, "%s: no image: memfd: %s", m->path,
                     strerror(errno));
            keel_image_free(img);
            return NULL;
        }
        void *src = mmap(NULL, im->bytes, PROT_READ, MAP_SHARED, im->fd, 0);
        if (src == MAP_FAILED) {
            keel_err(err, errlen, KEEL_ENOMEM, "%s: no image: mmap: %s", m->path,
                     strerror(errno));
            keel_image_free(img);
            return NULL;
        }
        im->src = src;
    }
    for (int32_t k = 0; k < lay->nfuncref + lay->nexternref; k++) {
        bool fr = k < lay->nfuncref;
        uint32_t off = fr ? lay->funcref[k] : lay->externref[k - lay->nfuncref];
        image_table *it = &img->tabs[img->ntabs++];
        it->off = off;
        it->funcref = fr;
        size_t esz = fr ? sizeof(wasm_rt_funcref_t) : sizeof(wasm_rt_externref_t);
        const void *src;
        if (fr) {
            const wasm_rt_funcref_table_t *t =
                (const wasm_rt_funcref_table_t *)(const void *)((char *)in->inst + off);
            src = t->data;
            it->size = t->size;
            it->max_size = t->max_size;
            for (uint32_t e = 0; e < t->size; e++) {
                uintptr_t mi = (uintptr_t)t->data[e].module_instance;
                if (!mi || (mi >= img->tmpl && mi < img->tmpl + img->size))
                    continue;
                /* an imported function: its instance is one of ours */
                int32_t k = import_index(img, in, (void *)mi);
                if (k < 0) {
                    keel_err(err, errlen, KEEL_EUNSUPPORTED,
                             "%s: no image: a table holds a function of another instance",
                             m->path);
                    keel_image_free(img);
                    return NULL;
                }
                if (!it->import_of) {
                    it->import_of = malloc(t->size * sizeof *it->import_of);
                    if (!it->import_of)
                        abort();
                    for (uint32_t q = 0; q < t->size; q++)
                        it->import_of[q] = -1;
                }
                it->import_of[e] = k;
            }
        } else {
            const wasm_rt_externref_table_t *t =
                (const wasm_rt_externref_table_t *)(const void *)((char *)in->inst + off);
            src = t->data;
            it->size = t->size;
            it->max_size = t->max_size;
        }
        if (it->size) {
            it->data = malloc((size_t)it->size * esz);
            if (!it->data)
                abort();
            memcpy(it->data, src, (size_t)it->size * esz);
        }
    }
    return img;
}

int keel_instance_from_image(keel_image *img, void *const *import_instances,
                             uint32_t memory_limit_pages, keel_instance **out,
                             char *err, size_t errlen)
{
    *out = NULL;
    keel_module *m = img->m;
    for (uint32_t i = 0; i < img->nmems; i++)
        if (memory_limit_pages && img->mems[i].pages > memory_limit_pages)
            return keel_err(err, errlen, KEEL_ELIMIT,
                            "%s: memory of %u pages exceeds the limit of %u pages", m->path,
                            img->mems[i].pages, memory_limit_pages);
    int rc = KEEL_ENOMEM;
    keel_instance *in = malloc(sizeof *in);
    unsigned char *inst = malloc(img->size ? img->size : 1);
    if (!in || !inst)
        abort();
    memcpy(inst, img->bytes, img->size);
    in->m = m;
    in->inst = inst;
    in->memory_limit_pages = memory_limit_pages;
    const keel_glue_layout *lay = img->lay;
    for (int32_t i = 0; i < lay->nimports; i++)
        memcpy(inst + lay->imports[i], &import_instances[i], sizeof import_instances[i]);
    /* Nothing owned yet: a failure below frees through the generated code. */
    for (uint32_t i = 0; i < img->nmems; i++)
        memset(inst + img->mems[i].off, 0, sizeof(wasm_rt_memory_t));
    for (uint32_t i = 0; i < img->ntabs; i++) {
        wasm_rt_funcref_table_t *t = (wasm_rt_funcref_table_t *)(void *)(inst + img->tabs[i].off);
        t->data = NULL;   /* same layout for both table types */
        t->size = 0;
    }

    for (uint32_t i = 0; i < img->nmems; i++) {
        const image_mem *im = &img->mems[i];
        wasm_rt_memory_t *mem = (wasm_rt_memory_t *)(void *)(inst + im->off);
        unsigned char *base = NULL;
        if (img->nmems == 1)     /* a clean slot: the memfd is mapped already */
            base = slot_take_or_tidy(img);
        if (!base) {
            if (!(base = rt_memory_reserve())) {
                keel_err(err, errlen, KEEL_ENOMEM, "%s: cannot reserve memory", m->path);
                goto fail;
            }
            if (im->bytes && mmap(base, im->bytes, PROT_READ | PROT_WRITE,
                                  MAP_PRIVATE | MAP_FIXED | MAP_NORESERVE, im->fd, 0) != base) {
                keel_err(err, errlen, KEEL_ENOMEM, "%s: cannot map the memory image: %s",
                         m->path, strerror(errno));
                rt_memory_release(base, im->bytes);
                goto fail;
            }
        }
        mem->data = base;
        mem->pages = im->pages;
        mem->size = im->size;
        mem->max_pages = im->max_pages;
        if (memory_limit_pages && mem->max_pages > memory_limit_pages)
            mem->max_pages = memory_limit_pages;
    }
    for (uint32_t i = 0; i < img->ntabs; i++) {
        const image_table *it = &img->tabs[i];
        size_t esz = it->funcref ? sizeof(wasm_rt_funcref_t) : sizeof(wasm_rt_externref_t);
        void *data = malloc(it->size ? (size_t)it->size * esz : 1);
        if (!data)
            abort();
        if (it->size)
            memcpy(data, it->data, (size_t)it->size * esz);
        if (it->funcref) {
            wasm_rt_funcref_t *d = data;
            uintptr_t base = (uintptr_t)inst;
            for (uint32_t e = 0; e < it->size; e++) {
                if (it->import_of && it->import_of[e] >= 0)
                    d[e].module_instance = import_instances[it->import_of[e]];
                else if (d[e].module_instance)
                    d[e].module_instance =
                        (void *)(base + ((uintptr_t)d[e].module_instance - img->tmpl));
            }
            wasm_rt_funcref_table_t *t = (wasm_rt_funcref_table_t *)(void *)(inst + it->off);
            t->data = d;
            t->size = it->size;
            t->max_size = it->max_size;
        } else {
            wasm_rt_externref_table_t *t =
                (wasm_rt_externref_table_t *)(void *)(inst + it->off);
            t->data = data;
            t->size = it->size;
            t->max_size = it->max_size;
        }
    }
    in->img = img;
    *out = in;
    return 0;
fail:
    m->syms->free(inst);
    free(inst);
    free(in);
    return rc;
}

/* Copies the image back over the pages of base [0, im->bytes) this
 * instance has its own copy of (the pages written since the mapping was
 * made: they are anonymous, the others still read the memfd), found with
 * one PAGEMAP_SCAN. The pages stay mapped and writable, so the next
 * instance neither faults nor flushes TLBs on them. false: not done (no
 * PAGEMAP_SCAN in this kernel, or more than IMAGE_COPY_MAX bytes to copy);
 * the caller drops the copies instead. */
static bool restore_written(const image_mem *im, unsigned char *base)
{
    static _Atomic int pagemap_fd = -2;   /* -2: not opened yet; -1: unusable */
    int fd = atomic_load(&pagemap_fd);
    if (fd == -2) {
        int nfd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
        int expect = -2;
        if (!atomic_compare_exchange_strong(&pagemap_fd, &expect, nfd) && nfd >= 0)
            close(nfd);
        fd = atomic_load(&pagemap_fd);
    }
    if (fd < 0)
        return false;
    pm_region regs[IMAGE_SCAN_REGIONS];
    pm_scan_arg arg = {
        .size = sizeof arg,
        .start = (uint64_t)(uintptr_t)base,
        .end = (uint64_t)(uintptr_t)base + im->bytes,
        .vec = (uint64_t)(uintptr_t)regs,
        .vec_len = IMAGE_SCAN_REGIONS,
        .max_pages = IMAGE_COPY_MAX / IMAGE_OS_PAGE + 1,
        .category_inverted = PM_PAGE_IS_FILE,
        .category_mask = PM_PAGE_IS_FILE | PM_PAGE_IS_PRESENT,
        .return_mask = PM_PAGE_IS_FILE | PM_PAGE_IS_PRESENT,
    };
    int n = ioctl(fd, PM_PAGEMAP_SCAN, &arg);
    if (n < 0) {
        if (errno == ENOTTY || errno == EINVAL || errno == EOPNOTSUPP) {
            int expect = fd;
            if (atomic_compare_exchange_strong(&pagemap_fd, &expect, -1))
                close(fd);
        }
        return false;
    }
    if (arg.walk_end != arg.end)   /* regions or page budget ran out */
        return false;
    uint64_t total = 0;
    for (int i = 0; i < n; i++)
        total += regs[i].end - regs[i].start;
    if (total > IMAGE_COPY_MAX)
        return false;
    for (int i = 0; i < n; i++) {
        for (uint64_t a = regs[i].start; a < regs[i].end; a += IMAGE_OS_PAGE) {
            uint64_t off = a - (uint64_t)(uintptr_t)base;
            uint64_t pg = off / IMAGE_OS_PAGE;
            if (im->zero[pg / 64] >> (pg % 64) & 1)
                memset(base + off, 0, IMAGE_OS_PAGE);
            else
                memcpy(base + off, im->src + off, IMAGE_OS_PAGE);
        }
    }
    return true;
}

/* Puts base (an instance's memory that had `used` bytes) back in the
 * image's state and into a free slot: pages grown past the image become
 * inaccessible and unbacked again; pages written are copied back from the
 * image (restore_written) or, failing that, their private copies are
 * dropped so the mapping reads the sealed memfd again. Any failure, or no
 * free slot: the generic pool. */
static void reset_slot(keel_image *img, unsigned char *base, uint64_t used)
{
    const image_mem *im = &img->mems[0];
    if ((used > im->bytes &&
         mmap(base + im->bytes, used - im->bytes, PROT_NONE,
              MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0) == MAP_FAILED) ||
        (im->bytes && !restore_written(im, base) &&
         madvise(base, im->bytes, MADV_DONTNEED) != 0)) {
        rt_memory_release(base, used);
        return;
    }
    if (!slot_put(img, base))
        rt_memory_release(base, im->bytes);
}

/* Memories of this thread's freed instances waiting for reset_slot:
 * resetting costs a system call and copies, which keel_image_tidy does
 * once the request's response is on its way. */
typedef struct pending_slot {
    keel_image *img;
    unsigned char *base;
    uint64_t used;
} pending_slot;
static _Thread_local pending_slot pending[IMAGE_PENDING_MAX];
static _Thread_local uint32_t npending;
/* A thread that ends with resets pending does them on its way out (they
 * hold references to their images): a destructor of this key. */
static pthread_key_t pending_key;
static pthread_once_t pending_once = PTHREAD_ONCE_INIT;
static _Thread_local bool pending_registered;

static void tidy_at_exit(void *unused)
{
    (void)unused;
    keel_image_tidy();
}

static void pending_key_init(void)
{
    if (pthread_key_create(&pending_key, tidy_at_exit) != 0)
        abort();
}

void keel_image_tidy(void)
{
    while (npending) {
        pending_slot p = pending[--npending];
        reset_slot(p.img, p.base, p.used);
        image_put(p.img);
    }
}

static unsigned char *slot_take_or_tidy(keel_image *img)
{
    unsigned char *base = slot_take(img);
    if (!base && npending) {   /* this thread's own freed memories first */
        keel_image_tidy();
        base = slot_take(img);
    }
    return base;
}

void keel_image_recycle(keel_instance *in)
{
    keel_image *img = in->img;
    if (img->nmems != 1)
        return;
    const image_mem *im = &img->mems[0];
    wasm_rt_memory_t *mem = (wasm_rt_memory_t *)(void *)((char *)in->inst + im->off);
    unsigned char *base = mem->data;
    uint64_t used = (uint64_t)mem->pages * IMAGE_PAGE_BYTES;
    if (!base)
        return;
    mem->data = NULL;
    mem->pages = mem->size = 0;
    if (npending == IMAGE_PENDING_MAX)
        keel_image_tidy();
    if (!pending_registered) {
        pthread_once(&pending_once, pending_key_init);
        pthread_setspecific(pending_key, &pending_registered);   /* any non-NULL */
        pending_registered = true;
    }
    atomic_fetch_add_explicit(&img->refs, 1, memory_order_relaxed);
    pending[npending++] = (pending_slot){ img, base, used };
}
