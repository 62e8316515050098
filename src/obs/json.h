/* json.h — the one JSON string escaper and decimal formatter: log lines,
 * exported spans and the admin API's answers all go through them. */
#ifndef KEEL_OBS_JSON_H
#define KEEL_OBS_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The most bytes keel_json_escape writes for n input bytes. */
#define KEEL_JSON_ESCAPED_MAX(n) (6u * (n))

/* Writes s[0..n) at dst as the inside of a JSON string and returns the end
 * of what it wrote (no NUL). Quotes and backslashes get a backslash, \n and
 * \t their short forms, other control characters and DEL \u00XX; bytes
 * >= 0x80 pass through (UTF-8 stays UTF-8). dst needs room for
 * KEEL_JSON_ESCAPED_MAX(n) bytes. Plain text (the usual case: names, ids,
 * paths) is checked and copied eight bytes at a time. */
char *keel_json_escape(char *dst, const char *s, size_t n);

/* Whether s[0..n) needs no escaping (keel_json_escape would copy it as
 * it is): eight bytes a step. */
bool keel_json_plain(const char *s, size_t n);

/* Writes v in decimal at dst (at most 20 bytes, no NUL) and returns the
 * end: two digits a step, straight into place. */
char *keel_json_u64(char *dst, uint64_t v);
/* Writes the low n decimal digits of v at dst, leading zeros kept (the
 * nanoseconds of a time: n = 9), and returns dst + n. */
char *keel_json_digits(char *dst, uint64_t v, unsigned n);

#endif
