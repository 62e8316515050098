/* wasi.h — WASI preview1 ("wasi_snapshot_preview1") for Keel guests.
 *
 * A struct keel_wasi is the per-instance WASI state: argv, environment, and
 * the guest's file descriptor table (0-2 stdio, 3.. preopened directories,
 * then whatever the guest opens). The host functions themselves are declared
 * in wasi_imports.h under the symbol names wasm2c gives the imports and are
 * listed, with their wasm signatures, in keel_wasi_host_fns[].
 *
 * Sandboxing: every path a guest names is resolved beneath one of its
 * directory descriptors with openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)
 * (sandbox.c), so no path, "..", absolute path or symlink reaches outside the
 * preopened directories. Read-only preopens give no right that writes.
 *
 * Threading: a keel_wasi is used by one thread at a time (the thread running
 * its instance); nothing in it is locked.
 */
#ifndef KEEL_WASI_H
#define KEEL_WASI_H

#include <stdbool.h>
#include <stddef.h>

#include "engine/host_abi.h"

struct keel_wasi;

/* A host directory made visible to the guest under the name `guest`. */
typedef struct keel_wasi_preopen {
    const char *host;         /* host path of the directory */
    const char *guest;        /* name the guest sees (e.g. "/data" or ".") */
    bool readonly;            /* no right that creates, writes or removes */
} keel_wasi_preopen;

typedef struct keel_wasi_config {
    int argc; const char *const *argv;          /* argv[0] included */
    int envc; const char *const *envp;          /* "KEY=VALUE" strings; nothing else is visible */
    const keel_wasi_preopen *preopens; size_t npreopens;   /* become fds 3,4,... in order */
    int stdin_fd, stdout_fd, stderr_fd;         /* host fds for guest fds 0,1,2 (not closed by
                                                   keel_wasi_free); a negative value leaves that
                                                   guest fd closed */
    bool stdio_are_files;                       /* those fds are the host's memfds: regular
                                                   files without seek rights (no fstat) */
} keel_wasi_config;

/* Ceilings, each a limit the guest could otherwise push. */
#define KEEL_WASI_MAX_FDS        1024   /* open guest fds per instance (EMFILE beyond) */
#define KEEL_WASI_MAX_IOVS       1024   /* iovecs per read/write call (EINVAL beyond) */
#define KEEL_WASI_MAX_PATH       4096   /* bytes in a guest path (ENAMETOOLONG beyond) */
#define KEEL_WASI_MAX_POLL_SUBS  4096   /* subscriptions per poll_oneoff (EINVAL beyond) */

/* Creates WASI state from cfg. Copies everything it keeps (strings); opens
 * each preopen directory. Returns 0 and sets *out, or a negative KEEL_E* with
 * a text in err naming what failed (for a preopen: its host path). */
int keel_wasi_new(const keel_wasi_config *cfg, struct keel_wasi **out,
                  char *err, size_t errlen);

/* Frees w (NULL ok): closes every fd the guest opened and every preopen;
 * never closes the stdio host fds given in the config. */
void keel_wasi_free(struct keel_wasi *w);

/* Bytes the guest wrote with fd_write to the stdio fds of its config (and
 * other fds Keel did not open for it). */
uint64_t keel_wasi_stdio_written(const struct keel_wasi *w);

/* All wasi_snapshot_preview1 host functions; ends with a zeroed entry. */
extern const keel_host_fn keel_wasi_host_fns[];

#endif
