/* native_int.h — the loaded-code record shared by tier_fast.c and
 * tier_opt.c only. */
#ifndef KEEL_ENGINE_NATIVE_INT_H
#define KEEL_ENGINE_NATIVE_INT_H

#include "engine/native.h"

struct keel_native {
    keel_glue_syms syms;
    void *code;
    size_t code_len;
    void *dl;          /* opt tier only */
    int image_fd;      /* opt tier from memory: the file it was loaded from,
                        * open while loaded so its /proc/self/fd name is
                        * unique (dlopen matches objects by name); else -1
                        * (meaningful only when dl is set) */
    const void *code_start, *code_end;
};

#endif
