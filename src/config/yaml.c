/* yaml.c — YAML text to a positioned tree (see yaml.h). */
#include "config/yaml.h"

#include <libfyaml.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/errors.h"

/* The first error libfyaml reports, taken from its diagnostic output
 * ("NAME:LINE:COL: error: MESSAGE"), so nothing reaches stderr. */
typedef struct diag_capture {
    bool got;
    keel_pos pos;
    char msg[256];
} diag_capture;

static void diag_output(struct fy_diag *diag, void *user, const char *buf, size_t len)
{
    (void)diag;
    diag_capture *c = user;
    if (c->got)
        return;
    char line[1024];
    if (len >= sizeof line)
        len = sizeof line - 1;
    memcpy(line, buf, len);
    line[len] = '\0';
    char *e = strstr(line, ": error: ");
    if (!e)
        return;
    char *msg = e + strlen(": error: ");
    msg[strcspn(msg, "\r\n")] = '\0';
    /* Walk back over ":COL" and ":LINE" before ": error: ". */
    int nums[2] = { 0, 0 };
    char *p = e;
    for (int k = 1; k >= 0; k--) {
        char *end = p;
        while (p > line && p[-1] >= '0' && p[-1] <= '9')
            p--;
        if (p == end || p == line || p[-1] != ':')
            return;
        nums[k] = atoi(p);
        p--;
    }
    c->got = true;
    c->pos.line = nums[0];
    c->pos.col = nums[1];
    snprintf(c->msg, sizeof c->msg, "%s", msg);
}

typedef struct builder {
    keel_ynode *stack[KEEL_YAML_MAX_DEPTH];
    bool key_pending[KEEL_YAML_MAX_DEPTH];  /* map at this level awaits a value */
    size_t depth;
    keel_ynode *root;
    int docs;
    keel_pos last;              /* for events without a mark */
    const char *text;           /* the input */
    size_t len;
} builder;

void keel_ynode_free(keel_ynode *n)
{
    if (!n)
        return;
    size_t count = n->kind == KEEL_Y_MAP ? 2 * n->n : n->n;
    for (size_t i = 0; i < count; i++)
        keel_ynode_free(n->items[i]);
    free(n->items);
    free(n->text);
    free(n);
}

static void append(keel_ynode *parent, size_t count, keel_ynode *child)
{
    if (count + 1 > parent->cap) {
        parent->cap = parent->cap ? 2 * parent->cap : 8;
        parent->items = realloc(parent->items, parent->cap * sizeof *parent->items);
        if (!parent->items)
            abort();
    }
    parent->items[count] = child;
}

static bool is_null_text(const char *s)
{
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
           !strcmp(s, "NULL");
}

/* Attaches n below the innermost open collection (or as the root). A key
 * must be a scalar not seen before in its mapping. On error n is freed. */
static int attach(builder *b, keel_ynode *n, keel_pos *epos, char *msg, size_t msglen)
{
    if (!b->depth) {
        b->root = n;
        return 0;
    }
    keel_ynode *parent = b->stack[b->depth - 1];
    if (parent->kind == KEEL_Y_SEQ) {
        append(parent, parent->n, n);
        parent->n++;
        return 0;
    }
    bool *pending = &b->key_pending[b->depth - 1];
    if (*pending) {                       /* the value of the last key */
        append(parent, 2 * parent->n + 1, n);
        parent->n++;
        *pending = false;
        return 0;
    }
    *epos = n->pos;
    if (n->kind != KEEL_Y_SCALAR) {
        keel_ynode_free(n);
        return keel_err(msg, msglen, KEEL_EINVAL, "a mapping key must be a plain string");
    }
    for (size_t i = 0; i < parent->n; i++) {
        const keel_ynode *k = parent->items[2 * i];
        if (!strcmp(k->text, n->text)) {
            keel_err(msg, msglen, KEEL_EINVAL, "duplicate key '%s' (first at line %d)",
                     n->text, k->pos.line);
            keel_ynode_free(n);
            return KEEL_EINVAL;
        }
    }
    append(parent, 2 * parent->n, n);
    *pending = true;
    return 0;
}

/* Creates the node of a scalar or collection-start event and attaches it;
 * collections are pushed. */
static int add_node(builder *b, struct fy_event *ev, keel_pos *epos, char *msg,
                    size_t msglen)
{
    const struct fy_mark *mk = fy_event_start_mark(ev);
    keel_ynode *n = calloc(1, sizeof *n);
    if (!n)
        abort();
    n->kind = ev->type == FYET_SCALAR ? KEEL_Y_SCALAR
            : ev->type == FYET_SEQUENCE_START ? KEEL_Y_SEQ : KEEL_Y_MAP;
    /* An empty value ("key:") has no mark: it sits where its key is. */
    n->pos = mk ? (keel_pos){ mk->line + 1, mk->column + 1 } : b->last;
    b->last = n->pos;
    /* A quoted scalar's mark is past its opening quote: point at the quote. */
    if (mk && n->kind == KEEL_Y_SCALAR && mk->column > 0 && mk->input_pos > 0 &&
        mk->input_pos <= b->len &&
        (b->text[mk->input_pos - 1] == '"' || b->text[mk->input_pos - 1] == '\'') &&
        fy_token_scalar_style(ev->scalar.value) != FYSS_PLAIN)
        n->pos.col--;
    if (n->kind == KEEL_Y_SCALAR) {
        size_t len = 0;
        const char *t = ev->scalar.value ? fy_token_get_text(ev->scalar.value, &len) : NULL;
        if (!t) {
            t = "";
            len = 0;
        }
        if (memchr(t, '\0', len)) {
            *epos = n->pos;
            free(n);
            return keel_err(msg, msglen, KEEL_EINVAL, "NUL character in a string");
        }
        n->text = strndup(t, len);
        if (!n->text)
            abort();
        n->null = fy_token_scalar_style(ev->scalar.value) == FYSS_PLAIN &&
                  is_null_text(n->text);
    }
    if (n->kind != KEEL_Y_SCALAR && b->depth == KEEL_YAML_MAX_DEPTH) {
        *epos = n->pos;
        keel_ynode_free(n);
        return keel_err(msg, msglen, KEEL_EINVAL, "nested deeper than %d levels",
                        KEEL_YAML_MAX_DEPTH);
    }
    int rc = attach(b, n, epos, msg, msglen);
    if (rc)
        return rc;
    if (n->kind != KEEL_Y_SCALAR) {
        b->key_pending[b->depth] = false;
        b->stack[b->depth++] = n;
    }
    return 0;
}

static int on_event(builder *b, struct fy_event *ev, keel_pos *epos, char *msg,
                    size_t msglen)
{
    const struct fy_mark *mk = fy_event_start_mark(ev);
    if (mk)
        b->last = (keel_pos){ mk->line + 1, mk->column + 1 };
    switch (ev->type) {
    case FYET_DOCUMENT_START:
        if (++b->docs > 1) {
            *epos = b->last;
            return keel_err(msg, msglen, KEEL_EINVAL,
                            "only one YAML document is allowed ('---' starts another)");
        }
        return 0;
    case FYET_ALIAS:
        *epos = b->last;
        if (mk && mk->column > 0 && mk->input_pos > 0 && mk->input_pos <= b->len &&
            b->text[mk->input_pos - 1] == '*')
            epos->col--;                  /* the mark is past the '*' */
        return keel_err(msg, msglen, KEEL_EINVAL, "aliases (*name) are not supported");
    case FYET_SCALAR:
    case FYET_SEQUENCE_START:
    case FYET_MAPPING_START:
        return add_node(b, ev, epos, msg, msglen);
    case FYET_SEQUENCE_END:
    case FYET_MAPPING_END:
        if (b->depth)
            b->depth--;
        return 0;
    default:
        return 0;
    }
}

/* The line of the first YAML directive ('%' at the start of a line), or 0.
 * A manifest needs none, and libfyaml 0.7.12 can loop forever scanning a
 * malformed one (found by tests/fuzz/fuzz_manifest.c), so Keel refuses
 * them before the parser sees the text. */
static int directive_line(const char *text, size_t len)
{
    int line = 1;
    for (size_t i = 0; i < len; i++) {
        if ((i == 0 || text[i - 1] == '\n') && text[i] == '%')
            return line;
        if (text[i] == '\n')
            line++;
    }
    return 0;
}

int keel_yaml_parse(const char *text, size_t len, keel_ynode **root, keel_pos *epos,
                    char *msg, size_t msglen)
{
    *root = NULL;
    *epos = (keel_pos){ 1, 1 };
    int dl = directive_line(text, len);
    if (dl) {
        *epos = (keel_pos){ dl, 1 };
        return keel_err(msg, msglen, KEEL_EINVAL,
                        "YAML directives (lines starting with %%) are not supported");
    }
    diag_capture cap = { 0 };
    struct fy_diag_cfg dc;
    fy_diag_cfg_default(&dc);
    dc.fp = NULL;
    dc.output_fn = diag_output;
    dc.user = &cap;
    dc.colorize = false;
    struct fy_diag *diag = fy_diag_create(&dc);
    if (!diag)
        abort();
    struct fy_parse_cfg pc = { .flags = FYPCF_QUIET, .diag = diag };
    struct fy_parser *fyp = fy_parser_create(&pc);
    if (!fyp)
        abort();
    builder b = { .last = { 1, 1 }, .text = text, .len = len };
    int rc = 0;
    if (fy_parser_set_string(fyp, text, len) != 0) {
        rc = keel_err(msg, msglen, KEEL_EINVAL, "cannot start the YAML parser");
        goto out;
    }
    struct fy_event *ev;
    while (!rc && (ev = fy_parser_parse(fyp)) != NULL) {
        rc = on_event(&b, ev, epos, msg, msglen);
        fy_parser_event_free(fyp, ev);
    }
    if (!rc && fy_parser_get_stream_error(fyp)) {
        if (cap.got) {
            *epos = cap.pos;
            rc = keel_err(msg, msglen, KEEL_EINVAL, "YAML syntax: %s", cap.msg);
        } else {
            *epos = b.last;
            rc = keel_err(msg, msglen, KEEL_EINVAL, "YAML syntax error");
        }
    }
out:
    fy_parser_destroy(fyp);
    fy_diag_destroy(diag);
    if (rc) {
        /* A key whose value never came is not yet counted in its map. */
        for (size_t d = 0; d < b.depth; d++)
            if (b.key_pending[d])
                keel_ynode_free(b.stack[d]->items[2 * b.stack[d]->n]);
        keel_ynode_free(b.root);
    }
    else
        *root = b.root;
    return rc;
}

keel_ynode *keel_ymap_get(const keel_ynode *m, const char *key, keel_pos *keypos)
{
    if (!m || m->kind != KEEL_Y_MAP)
        return NULL;
    for (size_t i = 0; i < m->n; i++) {
        if (!strcmp(m->items[2 * i]->text, key)) {
            if (keypos)
                *keypos = m->items[2 * i]->pos;
            return m->items[2 * i + 1];
        }
    }
    return NULL;
}

const char *keel_ykind_name(const keel_ynode *n)
{
    if (n->kind == KEEL_Y_MAP)
        return "a mapping";
    if (n->kind == KEEL_Y_SEQ)
        return "a sequence";
    return n->null ? "null" : "a string";
}
