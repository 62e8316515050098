/* yaml.h — a YAML document as a small tree whose every node knows its
 * 1-based line and column, built from libfyaml's event parser (libfyaml
 * 0.7's document API gives no positions for mappings and sequences).
 *
 * Deliberately narrow: one document, no aliases, scalar keys only, no
 * duplicate keys, nesting at most KEEL_YAML_MAX_DEPTH. Tags and anchors are
 * ignored; every scalar is kept as its text. Private to src/config. */
#ifndef KEEL_CONFIG_YAML_H
#define KEEL_CONFIG_YAML_H

#include <stdbool.h>
#include <stddef.h>

#include "config/manifest.h"

#define KEEL_YAML_MAX_DEPTH 32

typedef enum keel_ykind { KEEL_Y_SCALAR, KEEL_Y_SEQ, KEEL_Y_MAP } keel_ykind;

typedef struct keel_ynode {
    keel_ykind kind;
    keel_pos pos;
    char *text;                 /* scalars: NUL-terminated (no NUL inside) */
    bool null;                  /* plain "", "~", "null", "Null", "NULL" */
    struct keel_ynode **items;  /* seq: n items; map: key,value x n */
    size_t n, cap;
} keel_ynode;

/* Parses text[0..len). On success *root is the document's root (NULL for an
 * empty stream; free with keel_ynode_free). On error returns KEEL_EINVAL
 * and fills *epos and msg (without any position prefix). */
int keel_yaml_parse(const char *text, size_t len, keel_ynode **root, keel_pos *epos,
                    char *msg, size_t msglen);
void keel_ynode_free(keel_ynode *n);

/* The value of key in map m (NULL when absent); *keypos gets the key's
 * position when non-NULL. */
keel_ynode *keel_ymap_get(const keel_ynode *m, const char *key, keel_pos *keypos);

/* "a mapping", "a sequence", "a string", "null": for type errors. */
const char *keel_ykind_name(const keel_ynode *n);

#endif
