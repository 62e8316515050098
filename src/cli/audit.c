/* audit.c — `keel audit verify FILE...` (check an audit log's hash chain,
 * or a rotated series of them in order) and `keel audit rotate FILE`
 * (archive the log and start a new file continuing its chain). The chain
 * itself is src/admin/audit*.c. */
#include <stdio.h>
#include <string.h>

#include "admin/audit.h"
#include "cli/cli.h"

/* Verifies files[0..n) as one chain; prints a line per intact file. */
static int verify(int n, char **files)
{
    unsigned long long seq = 0;
    char hash[65], err[2048];
    memset(hash, '0', 64);
    hash[64] = '\0';
    for (int i = 0; i < n; i++) {
        unsigned long long before = seq;
        size_t records = 0;
        if (keel_audit_verify_chain(files[i], &seq, hash, &records, err, sizeof err)) {
            fprintf(stderr, "%s\n", err);
            return KEEL_EXIT_FAIL;
        }
        printf("%s: %zu records, chain intact", files[i], records);
        if (i == 0 && records && seq - records + 1 > 1)
            printf(" (it continues a rotated chain at seq %llu: verify it after the files "
                   "before it to check the link)", seq - records + 1);
        else if (i > 0 && records)
            printf(" (continues the chain of %s from seq %llu)", files[i - 1], before + 1);
        printf("\n");
    }
    return KEEL_EXIT_OK;
}

static int rotate(int argc, char **argv)
{
    const char *file = NULL, *archive = NULL;
    for (int i = 0; i < argc; i++) {
        const char *v;
        int r = keel_opt_value(argc, argv, &i, "--to", &v);
        if (r < 0 || (r > 0 && !*v))
            return keel_usage_error("audit", "--to needs an archive file name");
        if (r > 0)
            archive = v;
        else if (argv[i][0] == '-')
            return keel_usage_error("audit", "unknown option %s", argv[i]);
        else if (file)
            return keel_usage_error("audit", "unexpected argument %s", argv[i]);
        else
            file = argv[i];
    }
    if (!file)
        return keel_usage_error("audit", "rotate needs the audit log FILE");
    char err[2048], out[4200];
    if (keel_audit_rotate(file, archive, "cli", out, sizeof out, err, sizeof err)) {
        fprintf(stderr, "keel: %s\n", err);
        return KEEL_EXIT_FAIL;
    }
    printf("rotated %s: its records are now in %s; %s starts with an audit.rotated record "
           "continuing the chain (verify both with: keel audit verify %s %s)\n", file, out,
           file, out, file);
    return KEEL_EXIT_OK;
}

int keel_cmd_audit(int argc, char **argv)
{
    if (argc < 2)
        return keel_usage_error("audit", "verify or rotate is required");
    const char *sub = argv[1];
    if (!strcmp(sub, "-h") || !strcmp(sub, "--help")) {
        fputs(keel_usage("audit"), stdout);
        return KEEL_EXIT_OK;
    }
    if (!strcmp(sub, "verify")) {
        for (int i = 2; i < argc; i++)
            if (argv[i][0] == '-' && argv[i][1])
                return keel_usage_error("audit", "unknown option %s", argv[i]);
        if (argc < 3)
            return keel_usage_error("audit", "verify needs at least one FILE");
        return verify(argc - 2, argv + 2);
    }
    if (!strcmp(sub, "rotate"))
        return rotate(argc - 2, argv + 2);
    return keel_usage_error("audit", "unknown subcommand \"%s\" (verify, rotate)", sub);
}
