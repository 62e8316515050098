/* prom.h — a growable text buffer and the pieces of the Prometheus text
 * exposition format 0.0.4: HELP/TYPE lines and samples whose label values
 * are escaped (backslash, double quote, newline). Single-threaded: one
 * buffer per scrape. */
#ifndef KEEL_OBS_PROM_H
#define KEEL_OBS_PROM_H

#include <stddef.h>
#include <stdint.h>

typedef struct keel_buf {
    char *data;                  /* malloc'd, NUL-terminated; NULL when empty */
    size_t len, cap;
} keel_buf;

/* Appends; allocation failure aborts (the host's out-of-memory policy). */
void keel_buf_put(keel_buf *b, const char *s, size_t n);
void keel_buf_puts(keel_buf *b, const char *s);
void keel_buf_printf(keel_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s as the inside of a JSON string (quotes, backslashes, controls escaped). */
void keel_buf_json(keel_buf *b, const char *s);
void keel_buf_free(keel_buf *b);
/* Room for `more` bytes (and the NUL) past b->len; returns where they go.
 * The caller writes there and then advances b->len itself. */
char *keel_buf_reserve(keel_buf *b, size_t more);

/* "# HELP name help\n# TYPE name type\n" (help escaped as the format asks). */
void keel_prom_family(keel_buf *b, const char *name, const char *type, const char *help);

/* One sample: name{k1="v1",...} value. labels holds nlabels (key, value)
 * pairs, i.e. 2 * nlabels strings; values are escaped. */
void keel_prom_sample(keel_buf *b, const char *name, const char *const *labels,
                      size_t nlabels, double value);
/* The same with an integer value, printed exactly. */
void keel_prom_sample_u(keel_buf *b, const char *name, const char *const *labels,
                        size_t nlabels, uint64_t value);

#endif
