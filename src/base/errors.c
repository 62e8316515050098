/* errors.c — formatting of error texts (see errors.h). */
#include "base/errors.h"

#include <stdio.h>

/* The name is parenthesized so the analyzer-only macro in errors.h is not
 * expanded here. */
int (keel_err)(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}
