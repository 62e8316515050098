/* app.c — what an executable built by `keel build` does when started: it
 * finds its payload (engine/bundle.h), refuses to start when the payload
 * is corrupt, and otherwise runs `keel up` on the embedded manifest with
 * the embedded code, relative paths resolving against --dir (default: the
 * current directory); `APP backup` and `APP restore` are keel backup and
 * keel restore on that manifest. --print-manifest shows what is inside.
 * keel_cli_load_manifest, which every subcommand uses, lives here. */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/version.h"
#include "cli/cli.h"
#include "config/manifest.h"
#include "engine/bundle.h"
#include "engine/engine.h"

/* Most arguments an app passes on to keel up. */
#define APP_MAX_UP_ARGS 8

static const char *self_name(const char *argv0)
{
    const char *slash = argv0 ? strrchr(argv0, '/') : NULL;
    return slash ? slash + 1 : argv0 ? argv0 : "app";
}

__attribute__((format(printf, 2, 3)))
static int app_usage_error(const char *self, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", self);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(see %s --help)\n", self);
    return KEEL_EXIT_USAGE;
}

/* The manifest loader's wasm hook: a component's module is the embedded
 * one of the same component. */
static char *embedded_wasm(void *ud, const char *component, const char *written, char *why,
                           size_t whylen)
{
    (void)ud;
    (void)written;
    for (size_t i = 0; i < keel_bundle_component_count(); i++) {
        if (strcmp(keel_bundle_component_at(i)->name, component) != 0)
            continue;
        char *path;
        if (asprintf(&path, "%s%s", KEEL_BUNDLE_WASM_PREFIX, component) < 0)
            abort();
        return path;
    }
    snprintf(why, whylen, "component %s has no module in this app", component);
    return NULL;
}

/* The name the embedded manifest goes by in messages: embedded:FILE. */
static void manifest_label(char *out, size_t len)
{
    const char *name, *text;
    size_t n;
    keel_bundle_manifest(&name, &text, &n);
    snprintf(out, len, "%s%s", KEEL_BUNDLE_WASM_PREFIX, name);
}

/* The folder the embedded manifest's relative paths resolve against
 * (--dir); set before any subcommand runs. */
static const char *app_dir = ".";

int keel_cli_load_manifest(const char *file, keel_manifest **out, char *err, size_t errlen)
{
    if (!keel_bundle_active())
        return keel_manifest_load(file, out, err, errlen);
    const char *name, *text;
    char label[PATH_MAX];
    keel_manifest_text src = { .dir = app_dir, .wasm = embedded_wasm };
    keel_bundle_manifest(&name, &text, &src.len);
    manifest_label(label, sizeof label);
    src.name = label;
    src.text = text;
    return keel_manifest_load_text(&src, out, err, errlen);
}

static void human_size(size_t n, char *out, size_t len)
{
    if (n >= (1u << 20))
        snprintf(out, len, "%.1f MiB", (double)n / (1 << 20));
    else
        snprintf(out, len, "%.1f KiB", (double)n / 1024);
}

/* --print-manifest: what is inside, as YAML comments, then the manifest
 * as written (so the output is itself a manifest). */
static int print_manifest(const char *dir)
{
    const char *name, *text;
    size_t len;
    char self[PATH_MAX], abs[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    self[n > 0 ? n : 0] = '\0';
    if (!realpath(dir, abs))
        snprintf(abs, sizeof abs, "%s (does not exist)", dir);
    keel_bundle_manifest(&name, &text, &len);
    printf("# Keel app %s\n", self);
    printf("# built by keel %s (version, codegen)\n", keel_bundle_built_by());
    printf("# manifest: %s; its relative paths resolve against %s (--dir DIR)\n", name, abs);
    printf("# components (sha256 of the wasm; the wasm and its optimized code are embedded):\n");
    for (size_t i = 0; i < keel_bundle_component_count(); i++) {
        const keel_bundle_component *c = keel_bundle_component_at(i);
        char w[32], k[32];
        human_size(c->wasm_bytes, w, sizeof w);
        human_size(c->code_bytes, k, sizeof k);
        printf("#   %-16s %s  wasm %s, code %s\n", c->name, c->digest, w, k);
    }
    printf("# not embedded: folders under files: (data, read at run time) and store data\n");
    fwrite(text, 1, len, stdout);
    if (len && text[len - 1] != '\n')
        putchar('\n');
    return fflush(stdout) == 0 ? KEEL_EXIT_OK : KEEL_EXIT_FAIL;
}

/* `APP backup|restore ARGS`: keel backup / keel restore on the embedded
 * manifest; --dir is taken out, -f refused, the rest passed on. */
static int store_command(const char *self, int argc, char **argv)
{
    char label[PATH_MAX];
    manifest_label(label, sizeof label);
    char **args = calloc((size_t)argc + 3, sizeof *args);
    if (!args)
        abort();
    int n = 0, status = -1;
    args[n++] = argv[1];
    args[n++] = "-f";
    args[n++] = label;
    for (int i = 2; i < argc && status < 0; i++) {
        const char *v;
        int r;
        if ((r = keel_opt_value(argc, argv, &i, "--dir", &v)) != 0) {
            if (r < 0 || !*v)
                status = app_usage_error(self, "--dir needs a folder");
            else
                app_dir = v;
        } else if (strcmp(argv[i], "-f") == 0 || strncmp(argv[i], "--file", 6) == 0) {
            status = app_usage_error(self, "the manifest is embedded in this app");
        } else {
            args[n++] = argv[i];
        }
    }
    if (status < 0)
        status = strcmp(argv[1], "backup") == 0 ? keel_cmd_backup(n, args)
                                                : keel_cmd_restore(n, args);
    free(args);
    return status;
}

int keel_app_main(int argc, char **argv, int *status)
{
    char err[1024];
    int rc = keel_bundle_open_self(err, sizeof err);
    if (rc == 0)
        return 0;
    if (rc < 0) {
        fprintf(stderr, "keel: %s\n", err);
        *status = KEEL_EXIT_FAIL;
        return 1;
    }
    const char *self = self_name(argv[0]);
    if (argc > 1 && (strcmp(argv[1], "backup") == 0 || strcmp(argv[1], "restore") == 0)) {
        *status = store_command(self, argc, argv);
        return 1;
    }
    int print = 0;
    char label[PATH_MAX];
    manifest_label(label, sizeof label);
    char *up[APP_MAX_UP_ARGS] = { "up", "-f", label };
    int nup = 3;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int r;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(keel_usage("app"), stdout);
            *status = KEEL_EXIT_OK;
            return 1;
        } else if (strcmp(a, "--version") == 0) {
            printf("keel %s (app built by keel %s)\n", KEEL_VERSION, keel_bundle_built_by());
            *status = KEEL_EXIT_OK;
            return 1;
        } else if (strcmp(a, "--print-manifest") == 0) {
            print = 1;
        } else if ((r = keel_opt_value(argc, argv, &i, "--dir", &v)) != 0) {
            if (r < 0 || !*v) {
                *status = app_usage_error(self, "--dir needs a folder");
                return 1;
            }
            app_dir = v;
        } else if ((r = keel_opt_value(argc, argv, &i, "--listen", &v)) != 0 ||
                   (r = keel_opt_value(argc, argv, &i, "--admin-listen", &v)) != 0) {
            if (r < 0 || !*v) {
                *status = app_usage_error(self, "%s needs HOST:PORT", a);
                return 1;
            }
            if (nup + 2 > APP_MAX_UP_ARGS) {
                *status = app_usage_error(self, "too many --listen/--admin-listen options");
                return 1;
            }
            up[nup++] = strncmp(a, "--listen", 8) == 0 ? "--listen" : "--admin-listen";
            up[nup++] = (char *)v;
        } else if (strcmp(a, "-f") == 0 || strncmp(a, "--file", 6) == 0) {
            *status = app_usage_error(self, "the manifest is embedded in this app; "
                                      "--print-manifest shows it");
            return 1;
        } else {
            *status = app_usage_error(self, "unexpected argument %s", a);
            return 1;
        }
    }
    *status = print ? print_manifest(app_dir) : keel_cmd_up(nup, up);
    return 1;
}
