/* main.c — command dispatch only. */
#include <stdio.h>
#include <string.h>

#include "base/version.h"
#include "cli/cli.h"

int main(int argc, char **argv)
{
    int status;
    if (keel_app_main(argc, argv, &status))   /* an app built by keel build */
        return status;
    if (argc < 2)
        return keel_usage_error(NULL, "no command given");
    const char *cmd = argv[1];
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("keel %s\n", KEEL_VERSION);
        return KEEL_EXIT_OK;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0)
        return keel_cmd_help(argc - 1, argv + 1);
    if (strcmp(cmd, "run") == 0)
        return keel_cmd_run(argc - 1, argv + 1);
    if (strcmp(cmd, "up") == 0)
        return keel_cmd_up(argc - 1, argv + 1);
    if (strcmp(cmd, "check") == 0)
        return keel_cmd_check(argc - 1, argv + 1);
    if (strcmp(cmd, "backup") == 0)
        return keel_cmd_backup(argc - 1, argv + 1);
    if (strcmp(cmd, "restore") == 0)
        return keel_cmd_restore(argc - 1, argv + 1);
    if (strcmp(cmd, "audit") == 0)
        return keel_cmd_audit(argc - 1, argv + 1);
    if (strcmp(cmd, "alerts") == 0)
        return keel_cmd_alerts(argc - 1, argv + 1);
    if (strcmp(cmd, "ctl") == 0)
        return keel_cmd_ctl(argc - 1, argv + 1);
    if (strcmp(cmd, "build") == 0)
        return keel_cmd_build(argc - 1, argv + 1);
    if (strcmp(cmd, "compile") == 0)
        return keel_cmd_compile(argc - 1, argv + 1);
    return keel_usage_error(NULL, "unknown command \"%s\"", cmd);
}
