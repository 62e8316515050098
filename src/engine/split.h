/* split.h — cutting one module's C into several translation units so the
 * optimized tier can compile a large module in parallel, each unit within a
 * memory budget. */
#ifndef KEEL_ENGINE_SPLIT_H
#define KEEL_ENGINE_SPLIT_H

#include <stddef.h>

/* Splits text (wasm2c output with its header inlined and the glue
 * appended) into units[0] — everything except function bodies — and
 * function units of about unit_bytes of function code each. When the code
 * is smaller than unit_bytes, or the layout is not the one expected, there
 * is one unit: a copy of text. Returns the number of units; *units is a
 * malloc'd array of malloc'd strings (free with keel_split_free). */
size_t keel_split_c(const char *text, size_t len, size_t unit_bytes,
                    char ***units);
void keel_split_free(char **units, size_t n);

#endif
