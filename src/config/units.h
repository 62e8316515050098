/* units.h — sizes ("64MiB") and durations ("500ms") as operators write them. */
#ifndef KEEL_CONFIG_UNITS_H
#define KEEL_CONFIG_UNITS_H

#include <stdint.h>

/* Parses a size: a non-negative integer with an optional unit B, KiB, MiB,
 * GiB, TiB (powers of 1024) or KB, MB, GB, TB (powers of 1000), e.g.
 * "64MiB", "1048576". Returns 0 or -1 (bad syntax, unknown unit, overflow). */
int keel_parse_size(const char *s, uint64_t *bytes);

/* Parses a duration: an integer or decimal with a unit ns, us, ms, s, m, h,
 * e.g. "500ms", "2s", "1.5s". A bare number is an error (which unit?).
 * Returns 0 or -1. */
int keel_parse_duration(const char *s, uint64_t *ns);

#endif
