/* backup.c — `keel backup` and `keel restore`: a store's online snapshot
 * and its verified restore (the work is src/store/backup.c; this file
 * parses the command line, finds the store in the manifest and reports).
 * With admin.audit_log set, both are recorded there (store.backup,
 * store.restore, who "cli"), refusals too; an audit log that cannot be
 * opened refuses the command. */
#include <stdio.h>
#include <string.h>

#include "admin/audit.h"
#include "base/sha256.h"
#include "cli/cli.h"
#include "config/manifest.h"
#include "config/residency.h"
#include "obs/log.h"
#include "store/store.h"

typedef struct args {
    const char *file, *store, *out, *positional;
} args;

/* Parses -f, --store, -o (backup only) and one positional (restore only). */
static int parse(const char *cmd, int argc, char **argv, bool want_out, args *a)
{
    *a = (args){ .file = "keel.yaml" };
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i], *v;
        int r;
        if (strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0) {
            fputs(keel_usage(cmd), stdout);
            return -1;
        } else if ((r = keel_opt_value(argc, argv, &i, "-f", &v)) != 0 ||
                   (r = keel_opt_value(argc, argv, &i, "--file", &v)) != 0) {
            if (r < 0)
                return keel_usage_error(cmd, "-f needs a manifest file");
            a->file = v;
        } else if ((r = keel_opt_value(argc, argv, &i, "--store", &v)) != 0) {
            if (r < 0 || !*v)
                return keel_usage_error(cmd, "--store needs a store name");
            a->store = v;
        } else if (want_out && ((r = keel_opt_value(argc, argv, &i, "-o", &v)) != 0 ||
                                (r = keel_opt_value(argc, argv, &i, "--output", &v)) != 0)) {
            if (r < 0 || !*v)
                return keel_usage_error(cmd, "-o needs an output file");
            a->out = v;
        } else if (s[0] == '-' && s[1]) {
            return keel_usage_error(cmd, "unknown option %s", s);
        } else if (!want_out && !a->positional) {
            a->positional = s;
        } else {
            return keel_usage_error(cmd, "unexpected argument %s", s);
        }
    }
    if (!a->store)
        return keel_usage_error(cmd, "--store NAME is required");
    if (want_out && !a->out)
        return keel_usage_error(cmd, "-o FILE is required");
    if (!want_out && !a->positional)
        return keel_usage_error(cmd, "the backup file to restore is required");
    return 0;
}

/* The manifest and the store's configuration, with the manifest's audit
 * log open when it has one; prints why not. */
static const keel_store_cfg *find_store(const args *a, keel_manifest **m)
{
    char err[2048];
    if (keel_cli_load_manifest(a->file, m, err, sizeof err)) {
        fprintf(stderr, "keel: %s\n", err);
        return NULL;
    }
    if ((*m)->admin.audit_log && keel_audit_open((*m)->admin.audit_log, err, sizeof err)) {
        fprintf(stderr, "keel: %s: admin.audit_log: %s\n", a->file, err);
        return NULL;
    }
    const keel_store_cfg *cfg = keel_manifest_store(*m, a->store);
    if (!cfg)
        fprintf(stderr, "keel: %s: no store named '%s'\n", a->file, a->store);
    return cfg;
}

int keel_cmd_backup(int argc, char **argv)
{
    args a;
    int rc = parse("backup", argc, argv, true, &a);
    if (rc)
        return rc < 0 ? KEEL_EXIT_OK : rc;
    keel_log_min = KEEL_LOG_WARN;
    keel_manifest *m = NULL;
    keel_stores *ss = NULL;
    int status = KEEL_EXIT_FAIL;
    char err[2048], hex[65];
    uint64_t bytes;
    const keel_store_cfg *cfg = find_store(&a, &m);
    if (!cfg)
        goto out;
    if (cfg->backend != KEEL_STORE_SQLITE) {
        fprintf(stderr, "keel: store %s is a redis store: back it up with Redis's own "
                "RDB/AOF files (see docs/operations.md)\n", cfg->name);
        goto out;
    }
    if (keel_stores_open(m, cfg->name, &ss, err, sizeof err)) {
        fprintf(stderr, "keel: %s\n", err);
        goto out;
    }
    keel_store *st = keel_stores_find(ss, cfg->name, strlen(cfg->name));
    if (keel_store_backup(st, a.out, &bytes, hex, err, sizeof err)) {
        fprintf(stderr, "keel: backup of store %s failed: %s\n", cfg->name, err);
        keel_audit_store("store.backup", "cli", cfg->name, a.out, NULL, err);
        goto out;
    }
    keel_audit_store("store.backup", "cli", cfg->name, a.out, hex, NULL);
    printf("backed up store %s (%s) to %s: %llu bytes, sha256 %s\n", cfg->name, cfg->path,
           a.out, (unsigned long long)bytes, hex);
    printf("wrote %s.sha256\n", a.out);
    status = KEEL_EXIT_OK;
out:
    keel_stores_close(ss);
    keel_audit_close();
    keel_manifest_free(m);
    return status;
}

int keel_cmd_restore(int argc, char **argv)
{
    args a;
    int rc = parse("restore", argc, argv, false, &a);
    if (rc)
        return rc < 0 ? KEEL_EXIT_OK : rc;
    keel_log_min = KEEL_LOG_WARN;
    keel_manifest *m = NULL;
    int status = KEEL_EXIT_FAIL;
    char err[2048];
    const keel_store_cfg *cfg = find_store(&a, &m);
    if (!cfg)
        goto out;
    char hex[65] = "";
    if (keel_sha256_file(a.positional, hex, NULL))
        hex[0] = '\0';
    if (keel_residency_store_region(m, cfg, err, sizeof err) ||
        keel_store_restore(cfg, a.positional, err, sizeof err)) {
        fprintf(stderr, "keel: restore of store %s refused: %s\n", cfg->name, err);
        keel_audit_store("store.restore", "cli", cfg->name, a.positional, hex, err);
        goto out;
    }
    keel_audit_store("store.restore", "cli", cfg->name, a.positional, hex, NULL);
    printf("restored store %s (%s) from %s (checksum and integrity verified)\n", cfg->name,
           cfg->path, a.positional);
    status = KEEL_EXIT_OK;
out:
    keel_audit_close();
    keel_manifest_free(m);
    return status;
}
