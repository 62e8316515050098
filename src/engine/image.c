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
 * Reuse: for a module with one memory (the usual case) the memory lives in
 * a slot: a reservation with the memfd mapped over it, and a bit per page
 * saying which pages are writable. A slot maps the image read-only; the
 * first write to a page faults, and the fault handler (keel_image_fault,
 * called by rt_trap.c's SIGSEGV handler) makes that page writable and sets
 * its bit; the write is retried and copies the page. A system call that
 * writes into guest memory would fail instead of faulting, so host code
 * calls keel_guest_prepare_write on the range first. keel_instance_free
 * hands the slot back to its image (keel_image_recycle) instead of the
 * generic pool: pages grown past the image are mapped over with fresh
 * PROT_NONE memory, and every writable page gets the image's bytes copied
 * back. Those pages stay writable and private, so an instance that writes
 * the pages its predecessors wrote (a request handler, request after
 * request) costs no fault and no system call at all, and resetting it
 * costs a copy of those pages. A slot whose instances wrote more than
 * IMAGE_COPY_MAX is dropped back to read-only image pages instead
 * (MADV_DONTNEED, mprotect); after IMAGE_OVERFLOWS of those, the image
 * stops tracking (its slots map the image writable and every reset drops
 * the written copies). The next keel_instance_from_image takes a slot
 * with no system call. The reset itself waits in a per-thread list until
 * keel_image_tidy (the server calls it once a response is on its way), so
 * a request does not wait for the resets of the instances it used.
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
/* Resetting a slot copies at most this much back from the image; a slot
 * with more writable pages is dropped back to read-only image pages. */
#define IMAGE_COPY_MAX (1u << 20)
/* Slots of one image dropped that way before the image stops tracking. */
#define IMAGE_OVERFLOWS 8
/* Freed memories a thread holds before it resets them (keel_image_tidy). */
#define IMAGE_PENDING_MAX 32
/* Reservations the fault handler can find: one entry per possible
 * reservation of a 49-bit address space (module_int.h). */
#define IMAGE_REGISTRY (1u << (49 - RT_MEMORY_RESERVE_SHIFT))

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

/* A reservation with the image's memfd mapped over its first bytes. Used
 * by one instance at a time: only the thread running it faults on it or
 * changes it, and a slot passes between threads through img->slots or a
 * pending list. */
struct image_slot {
    unsigned char *base;
    uint32_t npages;          /* OS pages of the image's memory */
    uint32_t nwritable;       /* of them writable: bits set below */
    bool tracked;             /* pages start read-only; writes set bits */
    uint64_t writable[];      /* bit per page */
};

/* The slot of each reservation, by address (keel_image_fault). */
static _Atomic(image_slot *) slot_at[IMAGE_REGISTRY];

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
    /* Slots of the single memory, contents pristine: taken and returned
     * with one compare-and-swap, no lock. */
    _Atomic(image_slot *) slots[IMAGE_SLOTS_MAX];
    _Atomic uint32_t overflows;   /* slots dropped for writing too much */
    /* The owner's hold (dropped by keel_image_free) plus one per freed
     * memory waiting in some thread's pending list: an image replaced while
     * serving is destroyed by whichever drops the last. */
    _Atomic uint32_t refs;
};

/* Where this thread last took or returned a slot: threads tend to find
 * their own slot again there, without contending on the others'. */
static _Thread_local uint32_t slot_hint;

static image_slot *slot_take(keel_image *img)
{
    for (uint32_t k = 0; k < IMAGE_SLOTS_MAX; k++) {
        uint32_t i = (slot_hint + k) % IMAGE_SLOTS_MAX;
        image_slot *p = atomic_load_explicit(&img->slots[i], memory_order_relaxed);
        if (p && atomic_compare_exchange_strong(&img->slots[i], &p, NULL)) {
            slot_hint = i;
            return p;
        }
    }
    return NULL;
}

static bool slot_put(keel_image *img, image_slot *slot)
{
    for (uint32_t k = 0; k < IMAGE_SLOTS_MAX; k++) {
        uint32_t i = (slot_hint + k) % IMAGE_SLOTS_MAX;
        image_slot *none = NULL;
        if (!atomic_load_explicit(&img->slots[i], memory_order_relaxed) &&
            atomic_compare_exchange_strong(&img->slots[i], &none, slot)) {
            slot_hint = i;
            return true;
        }
    }
    return false;
}

/* A clean slot, or after resetting this thread's freed memories (below). */
static image_slot *slot_take_or_tidy(keel_image *img);

/* Bit i of a page bitmap. */
static bool page_bit(const uint64_t *map, uint32_t i)
{
    return map[i / 64] >> (i % 64) & 1;
}

static size_t slot_index(const void *addr)
{
    return (uintptr_t)addr >> RT_MEMORY_RESERVE_SHIFT;
}

/* A new slot: a reservation with im's memfd mapped privately over its
 * first im->bytes, read-only when tracked. NULL on failure (err set). */
static image_slot *slot_new(const image_mem *im, bool tracked, const char *path,
                            char *err, size_t errlen)
{
    unsigned char *base = rt_memory_reserve();
    if (!base) {
        keel_err(err, errlen, KEEL_ENOMEM, "%s: cannot reserve memory", path);
        return NULL;
    }
    if (slot_index(base) >= IMAGE_REGISTRY)
        tracked = false;   /* the fault handler could not find it */
    int prot = tracked ? PROT_READ : PROT_READ | PROT_WRITE;
    if (im->bytes && mmap(base, im->bytes, prot, MAP_PRIVATE | MAP_FIXED | MAP_NORESERVE,
                          im->fd, 0) != base) {
        keel_err(err, errlen, KEEL_ENOMEM, "%s: cannot map the memory image: %s", path,
                 strerror(errno));
        rt_memory_release(base, im->bytes);
        return NULL;
    }
    uint32_t npages = (uint32_t)(im->bytes / IMAGE_OS_PAGE);
    image_slot *slot = calloc(1, sizeof *slot + (npages + 63) / 64 * sizeof(uint64_t));
    if (!slot)
        abort();
    slot->base = base;
    slot->npages = npages;
    slot->tracked = tracked;
    if (slot_index(base) < IMAGE_REGISTRY)
        atomic_store_explicit(&slot_at[slot_index(base)], slot, memory_order_release);
    return slot;
}

/* Unregisters the slot before its reservation goes back to the generic
 * pool (where the fault handler must not find it), used: bytes that may
 * hold pages. */
static void slot_free(image_slot *slot, uint64_t used)
{
    if (slot_index(slot->base) < IMAGE_REGISTRY)
        atomic_store_explicit(&slot_at[slot_index(slot->base)], NULL, memory_order_release);
    rt_memory_release(slot->base, used);
    free(slot);
}

/* Makes pages [first, first + count) of a tracked slot writable, each run
 * of read-only ones with one mprotect, and records them. Each run splits
 * the mapping: when the kernel refuses one more (vm.max_map_count), the
 * whole slot is made writable in one piece instead and stops being
 * tracked (its reset then drops the written copies). false only when
 * that fails too. Async-signal-safe. */
static bool slot_make_writable(image_slot *slot, uint32_t first, uint32_t count)
{
    uint32_t end = first + count;
    for (uint32_t pg = first; pg < end;) {
        if (page_bit(slot->writable, pg)) {
            pg++;
            continue;
        }
        uint32_t run = pg + 1;
        while (run < end && !page_bit(slot->writable, run))
            run++;
        if (mprotect(slot->base + (size_t)pg * IMAGE_OS_PAGE,
                     (size_t)(run - pg) * IMAGE_OS_PAGE, PROT_READ | PROT_WRITE) != 0) {
            if (mprotect(slot->base, (size_t)slot->npages * IMAGE_OS_PAGE,
                         PROT_READ | PROT_WRITE) != 0)
                return false;
            slot->tracked = false;
            return true;
        }
        for (uint32_t q = pg; q < run; q++)
            slot->writable[q / 64] |= 1ull << (q % 64);
        slot->nwritable += run - pg;
        pg = run;
    }
    return true;
}

/* The tracked slot holding addr among its image pages, or NULL. */
static image_slot *tracked_slot_of(uintptr_t addr)
{
    size_t k = slot_index((const void *)addr);
    if (k >= IMAGE_REGISTRY)
        return NULL;
    image_slot *slot = atomic_load_explicit(&slot_at[k], memory_order_acquire);
    if (!slot || !slot->tracked ||
        addr - (uintptr_t)slot->base >= (uintptr_t)slot->npages * IMAGE_OS_PAGE)
        return NULL;
    return slot;
}

bool keel_image_fault(uintptr_t addr)
{
    image_slot *slot = tracked_slot_of(addr);
    if (!slot)
        return false;
    uint32_t pg = (uint32_t)((addr - (uintptr_t)slot->base) / IMAGE_OS_PAGE);
    if (page_bit(slot->writable, pg))
        return false;   /* writable already: not a first write */
    return slot_make_writable(slot, pg, 1);
}

void keel_guest_prepare_write(void *p, size_t len)
{
    image_slot *slot = len ? tracked_slot_of((uintptr_t)p) : NULL;
    if (!slot)
        return;
    uint64_t off = (uintptr_t)p - (uintptr_t)slot->base;
    uint64_t end = off + len;
    if (end > (uint64_t)slot->npages * IMAGE_OS_PAGE)
        end = (uint64_t)slot->npages * IMAGE_OS_PAGE;   /* the rest grew: writable */
    uint32_t first = (uint32_t)(off / IMAGE_OS_PAGE);
    (void)slot_make_writable(slot, first, (uint32_t)((end - 1) / IMAGE_OS_PAGE) - first + 1);
}

bool keel_module_has_start(const keel_module *m)
{
    return m->info.has_start;
}

static void image_destroy(keel_image *img)
{
    for (uint32_t i = 0; i < IMAGE_SLOTS_MAX; i++) {
        image_slot *p = atomic_load(&img->slots[i]);
        if (p)
            slot_free(p, img->mems[0].bytes);
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
    in->slot = NULL;
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
        if (img->nmems == 1) {   /* a slot: the memfd is mapped already */
            image_slot *slot = slot_take_or_tidy(img);
            if (!slot &&
                !(slot = slot_new(im, atomic_load_explicit(&img->overflows, memory_order_relaxed) <
                                          IMAGE_OVERFLOWS,
                                  m->path, err, errlen)))
                goto fail;
            in->slot = slot;
            base = slot->base;
        }
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

/* Copies the image back over every writable page of a tracked slot. */
static void restore_writable(const image_mem *im, image_slot *slot)
{
    for (uint32_t w = 0; w < (slot->npages + 63) / 64; w++) {
        for (uint64_t bits = slot->writable[w]; bits; bits &= bits - 1) {
            uint32_t pg = w * 64 + (uint32_t)__builtin_ctzll(bits);
            size_t off = (size_t)pg * IMAGE_OS_PAGE;
            if (page_bit(im->zero, pg))
                memset(slot->base + off, 0, IMAGE_OS_PAGE);
            else
                memcpy(slot->base + off, im->src + off, IMAGE_OS_PAGE);
        }
    }
}

/* Drops every private copy of the slot's image pages (they read the
 * sealed memfd again) and, tracked, makes them all read-only again. */
static bool drop_written(const image_mem *im, image_slot *slot)
{
    if (!im->bytes)
        return true;
    if (madvise(slot->base, im->bytes, MADV_DONTNEED) != 0)
        return false;
    if (slot->tracked && slot->nwritable) {
        if (mprotect(slot->base, im->bytes, PROT_READ) != 0)
            return false;
        memset(slot->writable, 0, (slot->npages + 63) / 64 * sizeof(uint64_t));
        slot->nwritable = 0;
    }
    return true;
}

/* Puts a slot (its instance's memory had `used` bytes) back in the
 * image's state and among the image's free slots: pages grown past the
 * image become inaccessible and unbacked again; the writable pages get the
 * image's bytes copied back (restore_writable), or, over IMAGE_COPY_MAX or
 * untracked, their private copies are dropped (drop_written). An image
 * whose slots overflowed IMAGE_OVERFLOWS times stops tracking: each slot
 * is made writable at its next reset. Any failure, or no free slot: the
 * generic pool. */
static void reset_slot(keel_image *img, image_slot *slot, uint64_t used)
{
    const image_mem *im = &img->mems[0];
    if (used > im->bytes &&
        mmap(slot->base + im->bytes, used - im->bytes, PROT_NONE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0) == MAP_FAILED) {
        slot_free(slot, used);
        return;
    }
    bool ok = true;
    if (slot->tracked && (uint64_t)slot->nwritable * IMAGE_OS_PAGE <= IMAGE_COPY_MAX &&
        atomic_load_explicit(&img->overflows, memory_order_relaxed) < IMAGE_OVERFLOWS) {
        restore_writable(im, slot);
    } else {
        if (slot->tracked &&
            atomic_fetch_add_explicit(&img->overflows, 1, memory_order_relaxed) + 1 >=
                IMAGE_OVERFLOWS) {
            slot->tracked = false;   /* the handler ignores it from here on */
            ok = mprotect(slot->base, im->bytes, PROT_READ | PROT_WRITE) == 0;
        }
        ok = ok && drop_written(im, slot);
    }
    if (!ok || !slot_put(img, slot))
        slot_free(slot, im->bytes);
}

/* Slots of this thread's freed instances waiting for reset_slot:
 * resetting costs copies, which keel_image_tidy does once the request's
 * response is on its way. */
typedef struct pending_slot {
    keel_image *img;
    image_slot *slot;
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
        reset_slot(p.img, p.slot, p.used);
        image_put(p.img);
    }
}

static image_slot *slot_take_or_tidy(keel_image *img)
{
    image_slot *slot = slot_take(img);
    if (!slot && npending) {   /* this thread's own freed memories first */
        keel_image_tidy();
        slot = slot_take(img);
    }
    return slot;
}

void keel_image_recycle(keel_instance *in)
{
    keel_image *img = in->img;
    image_slot *slot = in->slot;
    if (img->nmems != 1 || !slot)
        return;
    const image_mem *im = &img->mems[0];
    wasm_rt_memory_t *mem = (wasm_rt_memory_t *)(void *)((char *)in->inst + im->off);
    uint64_t used = (uint64_t)mem->pages * IMAGE_PAGE_BYTES;
    in->slot = NULL;
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
    pending[npending++] = (pending_slot){ img, slot, used };
}
