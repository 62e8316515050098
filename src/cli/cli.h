/* cli.h — one entry point per subcommand. Each returns the process exit
 * status: the guest's for run; 0 ok, 1 failure, 2 usage error otherwise. */
#ifndef KEEL_CLI_CLI_H
#define KEEL_CLI_CLI_H

#include <stddef.h>

#define KEEL_EXIT_OK 0
#define KEEL_EXIT_FAIL 1
#define KEEL_EXIT_USAGE 2
#define KEEL_EXIT_TRAP 134

int keel_cmd_run(int argc, char **argv);
int keel_cmd_compile(int argc, char **argv);
int keel_cmd_check(int argc, char **argv);
int keel_cmd_up(int argc, char **argv);
int keel_cmd_help(int argc, char **argv);
int keel_cmd_backup(int argc, char **argv);
int keel_cmd_restore(int argc, char **argv);
int keel_cmd_alerts(int argc, char **argv);
int keel_cmd_ctl(int argc, char **argv);

/* reload.c: SIGHUP and POST /admin/reload re-read keel.yaml into l while
 * serving; the admin listener (NULL is fine) follows the new host. */
struct keel_live;
struct keel_admin;
typedef struct keel_reloader keel_reloader;
keel_reloader *keel_reloader_start(struct keel_live *l, struct keel_admin *a);
void keel_reloader_stop(keel_reloader *r);
int keel_cmd_audit(int argc, char **argv);
int keel_cmd_build(int argc, char **argv);

/* When this executable is an app built by keel build, runs it (argv as
 * main's) and returns 1 with the exit status in *status; 0 for a plain
 * keel. */
int keel_app_main(int argc, char **argv, int *status);

/* How subcommands load the manifest FILE: keel_manifest_load, except in
 * an app (app.c), where it is the embedded manifest whatever FILE says. 0
 * or a negative KEEL_E* with the text in err. */
struct keel_manifest;
int keel_cli_load_manifest(const char *file, struct keel_manifest **out, char *err,
                           size_t errlen);

/* The checks of keel check on a loaded manifest: every component's module
 * against what Keel provides, and data residency. Prints each problem as
 * FILE:LINE:COL: message on stderr; returns how many. */
int keel_check_manifest(const struct keel_manifest *m);

/* Usage text of a command ("run", "compile", NULL for the overview). */
const char *keel_usage(const char *cmd);

/* Reports a usage error for cmd on stderr; returns KEEL_EXIT_USAGE. */
int keel_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Matches argv[*i] against option name ("--dir"), as "--dir VALUE" or
 * "--dir=VALUE". Returns 1 and sets *val (advancing *i past a separate
 * value), 0 when argv[*i] is another option, -1 when the value is missing. */
int keel_opt_value(int argc, char **argv, int *i, const char *name,
                   const char **val);

/* Parses --tier's value; -1 when unknown. */
int keel_parse_tier(const char *s);

#endif
