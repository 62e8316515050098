/* json.h — the one JSON string escaper: log lines, exported spans and the
 * admin API's answers all go through it. */
#ifndef KEEL_OBS_JSON_H
#define KEEL_OBS_JSON_H

#include <stddef.h>

/* The most bytes keel_json_escape writes for n input bytes. */
#define KEEL_JSON_ESCAPED_MAX(n) (6u * (n))

/* Writes s[0..n) at dst as the inside of a JSON string and returns the end
 * of what it wrote (no NUL). Quotes and backslashes get a backslash, \n and
 * \t their short forms, other control characters and DEL \u00XX; bytes
 * >= 0x80 pass through (UTF-8 stays UTF-8). dst needs room for
 * KEEL_JSON_ESCAPED_MAX(n) bytes. Plain text (the usual case: names, ids,
 * paths) is checked and copied eight bytes at a time. */
char *keel_json_escape(char *dst, const char *s, size_t n);

#endif
