/* admin_parse.h — private to src/admin: the two readers of untrusted admin
 * request bytes that need no h2o, kept apart so tests/fuzz can link them
 * (fuzz_admin_json). Neither reads outside [s, s+len) nor writes outside
 * out[0, outlen). */
#ifndef KEEL_ADMIN_ADMIN_PARSE_H
#define KEEL_ADMIN_ADMIN_PARSE_H

#include <stdbool.h>
#include <stddef.h>

/* A top-level member of a flat JSON object body: a string without escapes
 * (what the admin API reads: hex, words) or a number ([-.0-9]+). The key
 * matches only where a member starts (after '{' or ','). 1: found, its
 * value NUL-terminated in out (shorter than outlen); 0: absent; -1:
 * malformed (no ':', an unterminated or escaped string, no number, or a
 * value that does not fit). out is written only when 1 is returned. */
int keel_admin_json_member(const char *body, size_t len, const char *key, char *out,
                           size_t outlen);

/* The value of parameter key in a query string (the bytes after '?'):
 * "" when present without '='; copied into out (outlen >= 1), truncated to
 * outlen - 1 bytes, NUL-terminated. false (out untouched) when absent. */
bool keel_admin_query_param(const char *q, size_t len, const char *key, char *out,
                            size_t outlen);

#endif
