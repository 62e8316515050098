/* spec_host.h — what spec_runner.c and spec_host.c share: the harness's
 * view of a module (mod, with the table/memory limits run_spec.py read from
 * the binary), the "spectest" host instance, the registry of names modules
 * are registered as, and the import resolver handed to keel_module_link.
 *
 * spec_host.c owns the spectest instance, the registry and the resolver;
 * spec_runner.c owns the modules and the script commands.
 */
#ifndef KEEL_TESTS_SPEC_HOST_H
#define KEEL_TESTS_SPEC_HOST_H

#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"

#define NO_MAX UINT64_MAX        /* limits without a maximum */

/* Limits of a table or memory (from the script's TI/TE lines). */
typedef struct limits_info {
    int kind;              /* KEEL_EXTERN_TABLE or KEEL_EXTERN_MEMORY */
    char elem[16];         /* tables: "funcref" or "externref" */
    uint64_t min, max;     /* max NO_MAX when absent */
} limits_info;

typedef struct type_line {
    int is_import;
    size_t index;          /* imports: import index */
    char *name;            /* exports: name */
    limits_info lim;
} type_line;

/* One module command of the script. */
typedef struct mod {
    int line;
    char *id;              /* "$name" or NULL */
    keel_module *m;
    keel_instance *inst;
    type_line *types;
    size_t ntypes;
} mod;

/* Why the resolver refused an import (the assert_unlinkable reasons). */
enum { LINK_OK = 0, LINK_UNKNOWN, LINK_INCOMPATIBLE };

/* The resolver's user data: one per keel_module_link call. */
typedef struct link_ctx {
    mod *importer;
    int failure;           /* first LINK_* failure seen */
    char why[256];
} link_ctx;

/* Creates the spectest instance and registers it as "spectest". */
void spec_host_init(void);
void spec_host_free(void);

/* Registers target's instance as module name `as` (takes ownership of as);
 * a later registration of the same name wins. */
void spec_register(char *as, mod *target);

/* The instance pointer keel_instance_new wants for import module name:
 * the spectest instance or a registered module's. -1 when unregistered. */
int spec_import_instance(const char *name, void **inst);

/* keel_resolve_fn: ud is a link_ctx whose importer is set and the rest
 * zeroed. Checks kinds, signatures and table/memory limits. */
void *spec_resolve(void *ud, const keel_extern *imp, char *why, size_t whylen);

#endif
