/* bundle.h — the payload an app built by `keel build` carries: the
 * manifest, each component's wasm bytes and its optimized shared object,
 * appended to a copy of the keel executable.
 *
 * File layout (integers little-endian):
 *
 *   [keel executable][payload][trailer: 64 bytes]
 *   payload  = record*, record = u32 kind, u32 name_len, u64 data_len,
 *              name bytes, data bytes
 *   trailer  = "KEELAPP1", u64 payload offset, u64 payload bytes,
 *              sha256 of the payload (32 bytes), u64 0 (reserved)
 *
 * Records: INFO (name "keel", data "VERSION CODEGEN-ID" of the Keel that
 * built it), MANIFEST (name: the manifest's file name, data: its text),
 * WASM and CODE (name: hex sha256 of the wasm; data: the module, and the
 * shared object the opt tier built from it, without the cache's trailer),
 * COMPONENT (name: component, data: hex sha256 of its wasm). A module used
 * by several components is stored once.
 *
 * At startup an app opens its own payload (keel_bundle_open_self): the
 * sha256 must match and the Keel that built it must be this one, else it
 * refuses to start. The open bundle is process-wide and immutable; the
 * engine takes a module's code from it by wasm digest (keel_bundle_code)
 * instead of compiling or reading the cache. */
#ifndef KEEL_ENGINE_BUNDLE_H
#define KEEL_ENGINE_BUNDLE_H

#include <stddef.h>
#include <stdint.h>

#define KEEL_BUNDLE_MAGIC "KEELAPP1"
#define KEEL_BUNDLE_TRAILER_BYTES 64
/* What a manifest loaded from an app names a component's wasm:
 * KEEL_BUNDLE_WASM_PREFIX + component name (never a real path: those the
 * manifest resolves are absolute). */
#define KEEL_BUNDLE_WASM_PREFIX "embedded:"

enum {
    KEEL_BUNDLE_INFO = 1,
    KEEL_BUNDLE_MANIFEST = 2,
    KEEL_BUNDLE_WASM = 3,
    KEEL_BUNDLE_CODE = 4,
    KEEL_BUNDLE_COMPONENT = 5,
};

/* ---- reading (an app at startup) ---- */

/* Looks for a payload at the end of /proc/self/exe. Returns 0 when there
 * is none (a plain keel), 1 when one was found, verified and made the
 * process's bundle, or a negative KEEL_E* with the reason in err (corrupt,
 * truncated, built by another Keel). Call once, before any thread. */
int keel_bundle_open_self(char *err, size_t errlen);

/* The same for the file path (tests; fails when a bundle is open). */
int keel_bundle_open(const char *path, char *err, size_t errlen);

/* Whether this process runs from an app's bundle. */
int keel_bundle_active(void);

/* The manifest: its original file name and text (not NUL-terminated). */
void keel_bundle_manifest(const char **name, const char **text, size_t *len);

/* What built the app: "VERSION CODEGEN-ID". */
const char *keel_bundle_built_by(void);

/* Component i (0 <= i < count) of the manifest, in payload order: its
 * name, hex sha256 of its wasm, sizes of its wasm and code. NUL-terminated
 * copies owned by the bundle. */
typedef struct keel_bundle_component {
    const char *name;
    const char *digest;
    size_t wasm_bytes, code_bytes;
} keel_bundle_component;
size_t keel_bundle_component_count(void);
const keel_bundle_component *keel_bundle_component_at(size_t i);

/* The wasm a manifest loaded from the app named path
 * (KEEL_BUNDLE_WASM_PREFIX + component): a malloc'd copy in *out (caller
 * frees). Returns 1 when found, 0 when path is not an embedded module. */
int keel_bundle_wasm(const char *path, char **out, size_t *len);

/* The optimized shared object for a wasm of hex sha256 digest, pointing
 * into the bundle (valid for the life of the process). 1 found, 0 not. */
int keel_bundle_code(const char *digest, const void **so, size_t *len);

/* Bytes of path before any payload (the whole file when it has none), for
 * copying a keel executable without an app's payload. Negative KEEL_E* on
 * an I/O error. */
long long keel_bundle_exe_bytes(const char *path, char *err, size_t errlen);

/* ---- writing (keel build) ---- */

typedef struct keel_bundle_writer keel_bundle_writer;

keel_bundle_writer *keel_bundle_writer_new(void);
void keel_bundle_writer_free(keel_bundle_writer *w);

/* Adds a record (data copied). */
void keel_bundle_writer_add(keel_bundle_writer *w, int kind, const char *name,
                            const void *data, size_t len);

/* Whether a WASM record for this digest was added already. */
int keel_bundle_writer_has_wasm(const keel_bundle_writer *w, const char *digest);

/* Writes out: the executable exe (without a payload it may carry), then
 * the payload and trailer; mode 0755. Written to a temporary file next to
 * out and renamed, so out is never half written. */
int keel_bundle_writer_write(keel_bundle_writer *w, const char *exe, const char *out,
                             char *err, size_t errlen);

#endif
