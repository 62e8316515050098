/* help.c — usage texts and `keel help`. Keep in step with README.md. */
#include "cli/cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "engine/engine.h"

static const char overview[] =
    "usage: keel <command> [options]\n"
    "\n"
    "commands:\n"
    "  up        serve the components of keel.yaml over HTTP\n"
    "  run       run a WASI command module (wasm32-wasi) like a native program\n"
    "  compile   compile a module ahead of time into the cache\n"
    "  check     validate keel.yaml and its modules without compiling\n"
    "  build     one executable: keel, the manifest and optimized components\n"
    "  alerts    print Prometheus SLO alert rules (or Alertmanager inhibit rules)\n"
    "  ctl       deploy, canary, promote, roll back, reload a running keel up\n"
    "  audit     verify or rotate the audit trail (admin.audit_log)\n"
    "  help      show help for a command: keel help run\n"
    "\n"
    "  keel --version    print the version\n"
    "\n"
    "environment:\n"
    "  KEEL_CACHE   compile cache directory (default ~/.cache/keel)\n"
    "  KEEL_CC      C compiler of the optimized tier (default cc)\n"
    "  KEEL_REGION  this instance's region (overrides region: in keel.yaml)\n";

static const char run_usage[] =
    "usage: keel run [options] MODULE.wasm [ARGS...]\n"
    "\n"
    "Runs MODULE's _start with WASI preview1. stdin, stdout and stderr are the\n"
    "guest's; everything after MODULE.wasm is passed to the guest unchanged\n"
    "(argv[0] is MODULE.wasm as given). The exit status is the guest's.\n"
    "\n"
    "options:\n"
    "  --dir HOST[::GUEST]     give the guest directory HOST, seen as GUEST\n"
    "                          (default: the same name); repeatable\n"
    "  --dir-ro HOST[::GUEST]  the same, read-only\n"
    "  --env KEY=VALUE         set a guest environment variable; repeatable.\n"
    "                          The guest sees no other variable.\n"
    "  --memory-limit SIZE     cap linear memory, e.g. 64MiB (default: 4GiB)\n"
    "  --timeout DURATION      stop the guest after e.g. 500ms, 2s (default: none)\n"
    "  --tier fast|opt|auto    compiler tier (default auto: optimized code when\n"
    "                          cached, else the fast tier now and an optimized\n"
    "                          build in the background)\n"
    "\n"
    "exit status: the guest's proc_exit code (0 when _start returns);\n"
    "134 on a trap (one line on stderr: keel: trap: KIND ...); 1 when the module\n"
    "cannot be loaded; 2 on a usage error.\n";

static const char compile_usage[] =
    "usage: keel compile [--tier fast|opt] [--cache DIR] [--quiet] MODULE.wasm\n"
    "\n"
    "Compiles MODULE into the cache and prints where the entry is. The default\n"
    "tier is opt (a shared object built with cc -O2). The fast tier compiles in\n"
    "process and caches only the translated C.\n";

static const char up_usage[] =
    "usage: keel up [-f FILE] [--listen HOST:PORT] [--admin-listen HOST:PORT]\n"
    "               [--handover]\n"
    "\n"
    "Loads every component of the manifest FILE (default ./keel.yaml), compiles\n"
    "what is not cached (fast tier at once, optimized in the background) and\n"
    "serves them over HTTP on the manifest's listen address (default\n"
    "127.0.0.1:8080) or --listen. With LISTEN_FDS and LISTEN_PID set (systemd\n"
    "socket activation) it serves the sockets passed from fd 3 instead.\n"
    "\n"
    "SIGTERM or SIGINT stop it in order: /readyz answers 503 \"draining\" at\n"
    "once, the app is served as usual for shutdown.drain_delay (default 0s; a\n"
    "second signal cuts it short), then the listeners close, requests in\n"
    "flight get up to shutdown.grace (default 30s), telemetry is flushed,\n"
    "stores are closed and keel exits 0.\n"
    "\n"
    "options:\n"
    "  -f, --file FILE        the manifest (default keel.yaml)\n"
    "  --listen HOST:PORT     override the manifest's listen address\n"
    "  --admin-listen HOST:PORT  override admin.listen (default 127.0.0.1:9090):\n"
    "                         GET /metrics, /healthz, /readyz, /health\n"
    "  --handover             share the listen port with the keel already on it\n"
    "                         (same user, SO_REUSEPORT) instead of refusing it:\n"
    "                         start the new keel, then SIGTERM the old one for a\n"
    "                         zero-downtime upgrade (docs/operations.md)\n"
    "\n"
    "With admin.audit_log set, the log is verified and opened first (a broken\n"
    "chain refuses to start) and config.loaded is recorded (see keel help audit).\n"
    "\n"
    "Logs are JSON lines on stderr (observability.log_format: text for plain\n"
    "text), one access log line per request; every response carries\n"
    "X-Request-Id. See docs/operations.md.\n";

static const char build_usage[] =
    "usage: keel build [-f FILE] -o APP [--cache DIR]\n"
    "\n"
    "Writes APP, one executable holding this keel, the manifest FILE (default\n"
    "./keel.yaml) and every component's wasm with its optimized code. The\n"
    "manifest is checked as keel check does and each module compiled with the\n"
    "optimized tier (through the cache, DIR or $KEEL_CACHE); nothing is written\n"
    "unless all of it succeeds. APP needs no compiler, wabt, wasm file or cache\n"
    "at run time, and keel's shared libraries only (docs/operations.md).\n"
    "\n"
    "Running APP is keel up on the embedded manifest:\n"
    "  APP [--listen HOST:PORT] [--admin-listen HOST:PORT] [--dir DIR]\n"
    "  APP --print-manifest      what is inside: components, sha256s, manifest\n"
    "  APP backup|restore ...    keel backup / keel restore on that manifest\n"
    "Relative paths of the manifest (stores, admin files, files: folders,\n"
    "backups) resolve against DIR (default: the current directory). Folders\n"
    "under files: are data and are not embedded. A corrupt APP refuses to start.\n"
    "\n"
    "options:\n"
    "  -f, --file FILE        the manifest (default keel.yaml)\n"
    "  -o, --output APP       the executable to write (replaced atomically)\n"
    "  --cache DIR            compile cache (default $KEEL_CACHE, ~/.cache/keel)\n"
    "\n"
    "exit status: 0 written, 1 on a problem (nothing written), 2 on a usage error.\n";

static const char app_usage[] =
    "usage: APP [--listen HOST:PORT] [--admin-listen HOST:PORT] [--dir DIR]\n"
    "       APP --print-manifest [--dir DIR]\n"
    "       APP backup --store NAME -o OUT [--dir DIR]\n"
    "       APP restore --store NAME BACKUP [--dir DIR]\n"
    "\n"
    "An app built by keel build: serves its embedded manifest exactly as\n"
    "keel up does (see keel help up), with its embedded optimized code;\n"
    "backup and restore are keel backup and keel restore on that manifest.\n"
    "\n"
    "options:\n"
    "  --listen HOST:PORT        override the manifest's listen address\n"
    "  --admin-listen HOST:PORT  override admin.listen (default 127.0.0.1:9090)\n"
    "  --dir DIR                 where the manifest's relative paths (stores,\n"
    "                            admin files, files: folders, backups) resolve\n"
    "                            (default: the current directory)\n"
    "  --print-manifest          print the components (sha256 of each wasm)\n"
    "                            and the manifest, then exit\n"
    "  --version                 the version of the keel inside\n";

static const char alerts_usage[] =
    "usage: keel alerts [-f FILE] [--alertmanager] [--runbook-base URL]\n"
    "\n"
    "Prints a Prometheus rules file for every component of FILE (default\n"
    "./keel.yaml) with an `slo`: recording rules for its error and latency\n"
    "ratios over 5m, 30m, 1h, 6h and 3d, and multiwindow, multi-burn-rate alerts\n"
    "(page: 14.4x budget burn over 1h and 5m, or 6x over 6h and 30m; ticket: 1x\n"
    "over 3d and 6h) labelled component and severity, whose runbook_url points\n"
    "at docs/operations.md (or --runbook-base URL).\n"
    "\n"
    "With --alertmanager, prints an Alertmanager configuration whose\n"
    "inhibit_rules silence the pages of every component calling (directly or\n"
    "transitively) a component whose page is firing: one root cause, one page.\n"
    "\n"
    "Check the output with `promtool check rules` and `amtool check-config`.\n";

static const char check_usage[] =
    "usage: keel check [-f FILE] [--explain-residency]\n"
    "\n"
    "Validates the manifest FILE (default ./keel.yaml) and every component's\n"
    "module without compiling: each import must be a function Keel provides\n"
    "with the same signature; wapc components must export __guest_call and\n"
    "memory, wagi components _start. Problems are printed one per line as\n"
    "FILE:LINE:COL: message. Data residency is checked too: every store's\n"
    "regions must include this instance's region (region:, KEEL_REGION), and\n"
    "no kv grant or calls edge may let a store's data reach a component whose\n"
    "residency lies outside them; a module importing keel.kv_* needs a kv grant.\n"
    "\n"
    "options:\n"
    "  -f, --file FILE        the manifest (default keel.yaml)\n"
    "  --explain-residency    print, for each store, which components can read\n"
    "                         it, directly or through calls, and by which path\n"
    "\n"
    "exit status: 0 when all is well (\"FILE: ok (N components)\"), 1 on any\n"
    "problem, 2 on a usage error.\n";

static const char backup_usage[] =
    "usage: keel backup [-f FILE] --store NAME -o OUT\n"
    "\n"
    "Writes an online, consistent snapshot of the SQLite store NAME of the\n"
    "manifest FILE (default ./keel.yaml) to OUT, and its sha256 to OUT.sha256\n"
    "(sha256sum format). A running `keel up` keeps serving meanwhile. Redis\n"
    "stores are backed up with Redis's own RDB/AOF (docs/operations.md).\n"
    "With admin.audit_log set, the backup (or its failure) is recorded there\n"
    "(store.backup, who \"cli\"); a broken audit chain refuses the command.\n"
    "\n"
    "exit status: 0 when both files are written, 1 on failure (nothing is\n"
    "left at OUT), 2 on a usage error.\n";

static const char restore_usage[] =
    "usage: keel restore [-f FILE] --store NAME BACKUP\n"
    "\n"
    "Replaces the contents of the SQLite store NAME with BACKUP after checking\n"
    "it against BACKUP.sha256 and with PRAGMA integrity_check. Refuses, and\n"
    "changes nothing, on any mismatch. The replacement is one transaction: a\n"
    "running `keel up` sees the old contents or the new, never a mix.\n"
    "With admin.audit_log set, the restore or its refusal is recorded there\n"
    "(store.restore, who \"cli\"); a broken audit chain refuses the command.\n"
    "\n"
    "exit status: 0 restored, 1 refused or failed (the store is unchanged),\n"
    "2 on a usage error.\n";

static const char ctl_usage[] =
    "usage: keel ctl [--admin URL] [--token-file FILE] SUBCOMMAND ...\n"
    "\n"
    "Drives a running keel up through its admin API (docs/operations.md).\n"
    "\n"
    "  deploy NAME FILE.wasm [--tier fast|opt] [--canary PERCENT]\n"
    "      upload FILE as component NAME's new version; with --canary it is\n"
    "      staged, then serves PERCENT of NAME's invocations beside the stable\n"
    "      version (Keel rolls it back by itself when it is worse: rollout:)\n"
    "  canary NAME SHA256 PERCENT   set the canary's share (0..100)\n"
    "  promote NAME                 the canary becomes the stable version\n"
    "  rollback NAME [--why TEXT]   end the canary, or restore the previous version\n"
    "  status [--json]              versions, roles, weights, error ratio, p99\n"
    "  reload                       re-read keel.yaml (like SIGHUP)\n"
    "\n"
    "URL: $KEEL_ADMIN, else http://127.0.0.1:9090. FILE: $KEEL_TOKEN_FILE (the\n"
    "bearer token, or the first LABEL TOKEN line of an admin.token_file).\n"
    "\n"
    "exit status: 0 when Keel answered 2xx, 1 otherwise (its error printed),\n"
    "2 on a usage error.\n";

static const char audit_usage[] =
    "usage: keel audit verify FILE [FILE...]\n"
    "       keel audit rotate FILE [--to ARCHIVE]\n"
    "\n"
    "An audit log (admin.audit_log) is JSON lines, one record per event, each\n"
    "carrying the SHA-256 of the record before it (docs/operations.md, \"Audit\n"
    "trail\").\n"
    "\n"
    "verify checks the chain: every record valid JSON with seq, ts, event, who\n"
    "first and prev last, seq one more than the record before, prev that\n"
    "record's hash. Several files are checked as one chain, oldest first (the\n"
    "archives of rotate, then the live file). Prints \"FILE: N records, chain\n"
    "intact\" per file, or \"FILE:LINE: record N: why\" for the first bad\n"
    "record (edited, removed, reordered, truncated by a crash) on stderr.\n"
    "\n"
    "rotate moves FILE's records to ARCHIVE (default FILE.YYYYMMDDTHHMMSSZ) and\n"
    "starts FILE again with an audit.rotated record that carries the archive's\n"
    "last hash, so `keel audit verify ARCHIVE FILE` still checks one chain. A\n"
    "running keel moves to the new file at its next record.\n"
    "\n"
    "exit status: 0 intact / rotated, 1 a broken chain or an I/O error, 2 on a\n"
    "usage error.\n";

const char *keel_usage(const char *cmd)
{
    if (cmd && strcmp(cmd, "audit") == 0)
        return audit_usage;
    if (cmd && strcmp(cmd, "ctl") == 0)
        return ctl_usage;
    if (cmd && strcmp(cmd, "backup") == 0)
        return backup_usage;
    if (cmd && strcmp(cmd, "restore") == 0)
        return restore_usage;
    if (cmd && strcmp(cmd, "check") == 0)
        return check_usage;
    if (cmd && strcmp(cmd, "up") == 0)
        return up_usage;
    if (cmd && strcmp(cmd, "run") == 0)
        return run_usage;
    if (cmd && strcmp(cmd, "compile") == 0)
        return compile_usage;
    if (cmd && strcmp(cmd, "alerts") == 0)
        return alerts_usage;
    if (cmd && strcmp(cmd, "build") == 0)
        return build_usage;
    if (cmd && strcmp(cmd, "app") == 0)
        return app_usage;
    return overview;
}

int keel_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "keel%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(see keel help%s%s)\n", cmd ? " " : "", cmd ? cmd : "");
    return KEEL_EXIT_USAGE;
}

int keel_parse_tier(const char *s)
{
    if (strcmp(s, "fast") == 0)
        return KEEL_TIER_FAST;
    if (strcmp(s, "opt") == 0)
        return KEEL_TIER_OPT;
    if (strcmp(s, "auto") == 0)
        return KEEL_TIER_AUTO;
    return -1;
}

int keel_cmd_help(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : NULL;
    if (cmd && strcmp(cmd, "run") && strcmp(cmd, "compile") && strcmp(cmd, "check") &&
        strcmp(cmd, "up") && strcmp(cmd, "help") && strcmp(cmd, "backup") &&
        strcmp(cmd, "restore") && strcmp(cmd, "alerts") && strcmp(cmd, "ctl") &&
        strcmp(cmd, "audit") && strcmp(cmd, "build"))
        return keel_usage_error(NULL, "unknown command \"%s\"", cmd);
    fputs(keel_usage(cmd), stdout);
    return KEEL_EXIT_OK;
}

int keel_opt_value(int argc, char **argv, int *i, const char *name,
                   const char **val)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0)
        return 0;
    if (a[n] == '=') {
        *val = a + n + 1;
        return 1;
    }
    if (a[n] != '\0')
        return 0;
    if (*i + 1 >= argc)
        return -1;
    *val = argv[++*i];
    return 1;
}
