/* errors.h — Keel's error convention: functions return 0 or a negative
 * KEEL_E* code; the human text travels separately in a caller-provided
 * buffer (char *err, size_t errlen) that names what failed and where.
 * Translation to WASI errno happens only in src/wasi, to exit codes only in
 * src/cli. */
#ifndef KEEL_ERRORS_H
#define KEEL_ERRORS_H

#include <stdarg.h>
#include <stddef.h>

enum {
    KEEL_OK = 0,
    KEEL_EINVAL = -1,     /* bad input: file, module, argument */
    KEEL_ENOMEM = -2,     /* allocation or reservation failed */
    KEEL_EIO = -3,        /* OS-level I/O failure */
    KEEL_ECOMPILE = -4,   /* translation or C compilation failed */
    KEEL_EUNSUPPORTED = -5, /* valid wasm Keel does not run (SIMD, ...) */
    KEEL_ELINK = -6,      /* missing or mistyped import */
    KEEL_ELIMIT = -7,     /* a configured limit would be exceeded */
    KEEL_ENOTFOUND = -8,  /* no such thing (component, version) */
    KEEL_ESTATE = -9,     /* not possible in the current state (no canary, ...) */
};

/* Formats into err (if non-NULL) and returns code. */
int keel_err(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#ifdef __clang_analyzer__
/* The static analyzer sees one file at a time: state the contract above
 * (the result is code) so error paths are not explored as successes. */
#define keel_err(err, errlen, code, ...) (keel_err((err), (errlen), (code), __VA_ARGS__), (code))
#endif

#endif
