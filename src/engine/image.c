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
 * module_instance pointer that wasm2c computes as the instance address plus
 * a field offset (the instance itself for the module's own functions, the
 * address of the import-instance field for imported ones): every one is
 * checked at capture to lie inside the template's struct and is rebased onto
 * the new struct.
 *
 * Reuse: for a module with one memory (the usual case) keel_instance_free
 * hands the reservation back to its image (keel_image_recycle) instead of
 * the generic pool: pages grown past the image are mapped over with fresh
 * PROT_NONE memory, and MADV_DONTNEED on the image part drops the private
 * copies, so the mapping reads the sealed memfd again. The next
 * keel_instance_from_image takes such a slot with no system call at all.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/errors.h"

#define IMAGE_PAGE_BYTES 65536u
#define IMAGE_OS_PAGE 4096u
/* Clean reservations an image keeps with its memfd already mapped, for a
 * module with one memory (each holds at most the image's bytes of page
 * cache references, no private pages). */
#define IMAGE_SLOTS_MAX 64

typedef struct image_mem {
    uint32_t off;             /* of the wasm_rt_memory_t in the struct */
    int fd;                   /* sealed memfd of `bytes` bytes; -1 when 0 */
    uint64_t bytes;           /* pages * 64 KiB */
    uint32_t pages, max_pages, size;
} image_mem;

typedef struct image_table {
    uint32_t off;
    bool funcref;
    void *data;               /* size elements (NULL when 0) */
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
    /* reservations of the single memory, memfd mapped, contents pristine */
    pthread_mutex_t lock;
    unsigned char *slots[IMAGE_SLOTS_MAX];
    uint32_t nslots;
};

bool keel_module_has_start(const keel_module *m)
{
    return m->info.has_start;
}

void keel_image_free(keel_image *img)
{
    if (!img)
        return;
    for (uint32_t i = 0; i < img->nslots; i++)
        rt_memory_release(img->slots[i], img->mems[0].bytes);
    pthread_mutex_destroy(&img->lock);
    for (uint32_t i = 0; i < img->nmems; i++)
        if (img->mems[i].fd >= 0)
            close(img->mems[i].fd);
    for (uint32_t i = 0; i < img->ntabs; i++)
        free(img->tabs[i].data);
    free(img->mems);
    free(img->tabs);
    free(img->bytes);
    free(img);
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

/* The memory's bytes into a new sealed memfd; -1 on failure. */
static int memory_to_memfd(const unsigned char *data, uint64_t bytes)
{
    int fd = memfd_create("keel-image", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return -1;
    if (ftruncate(fd, (off_t)bytes) != 0)
        goto fail;
    /* Runs of non-zero pages; zero pages stay holes (no memory). */
    for (uint64_t at = 0; at < bytes;) {
        if (page_is_zero(data + at)) {
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
    img->lay = lay;
    pthread_mutex_init(&img->lock, NULL);
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
        if (im->bytes && (im->fd = memory_to_memfd(mem->data, im->bytes)) < 0) {
            keel_err(err, errlen, KEEL_EIO, "%s: no image: memfd: %s", m->path,
                     strerror(errno));
            keel_image_free(img);
            return NULL;
        }
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
                if (mi && (mi < img->tmpl || mi >= img->tmpl + img->size)) {
                    keel_err(err, errlen, KEEL_EUNSUPPORTED,
                             "%s: no image: a table holds a function of another instance",
                             m->path);
                    keel_image_free(img);
                    return NULL;
                }
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
        memcpy(inst + lay->imports[i], &import_instances[i], sizeof(void *));
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
        if (img->nmems == 1) {   /* a clean slot: the memfd is mapped already */
            pthread_mutex_lock(&img->lock);
            if (img->nslots)
                base = img->slots[--img->nslots];
            pthread_mutex_unlock(&img->lock);
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
            for (uint32_t e = 0; e < it->size; e++)
                if (d[e].module_instance)
                    d[e].module_instance =
                        (void *)(base + ((uintptr_t)d[e].module_instance - img->tmpl));
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
    /* Back to the image's state: pages grown past it become inaccessible
     * and unbacked again; private copies of image pages are dropped, so the
     * next access reads the sealed memfd. Any failure: the generic pool. */
    if ((used > im->bytes &&
         mmap(base + im->bytes, used - im->bytes, PROT_NONE,
              MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0) == MAP_FAILED) ||
        (im->bytes && madvise(base, im->bytes, MADV_DONTNEED) != 0)) {
        rt_memory_release(base, used);
        return;
    }
    pthread_mutex_lock(&img->lock);
    if (img->nslots < IMAGE_SLOTS_MAX) {
        img->slots[img->nslots++] = base;
        base = NULL;
    }
    pthread_mutex_unlock(&img->lock);
    if (base)
        rt_memory_release(base, im->bytes);
}
