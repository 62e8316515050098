/* scratch.h — a fuzz target's scratch folder: made once with mkdtemp and
 * removed with everything in it when the target exits normally (libFuzzer
 * returns from its driver at the time limit), so repeated runs leave
 * nothing behind in /tmp or /dev/shm. A crashing run keeps its folder for
 * inspection. Header-only: each target is one translation unit. */
#ifndef KEEL_FUZZ_SCRATCH_H
#define KEEL_FUZZ_SCRATCH_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

static char *fuzz_scratch_path;

static int fuzz_scratch_rm(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)flag;
    (void)f;
    (void)remove(p);   /* best effort: keep going */
    return 0;
}

static void fuzz_scratch_cleanup(void)
{
    if (fuzz_scratch_path)
        nftw(fuzz_scratch_path, fuzz_scratch_rm, 16, FTW_DEPTH | FTW_PHYS);
}

/* mkdtemp(tmpl) and its removal at exit; aborts when it cannot be made. */
static void fuzz_scratch_dir(char *tmpl)
{
    if (!mkdtemp(tmpl)) {
        perror(tmpl);
        abort();
    }
    fuzz_scratch_path = tmpl;
    atexit(fuzz_scratch_cleanup);
}

#endif
