/* proc.h — running helper programs (wasm2c, cc) without a shell. */
#ifndef KEEL_BASE_PROC_H
#define KEEL_BASE_PROC_H

#include <stddef.h>

/* Runs argv[0] (searched in PATH) with stdin from /dev/null, stdout to
 * /dev/null and stderr appended to stderr_path (or /dev/null when NULL).
 * Returns the exit status (0..255), 128+signal if killed, or a negative
 * KEEL_E* if it could not be started (text in err). */
int keel_proc_run(const char *const *argv, const char *stderr_path,
                  char *err, size_t errlen);

/* One program run by keel_proc_run_jobs; status is filled in (as for
 * keel_proc_run; -1 when never started). */
typedef struct keel_job {
    const char *const *argv;
    const char *stderr_path;
    int status;
} keel_job;

/* Runs jobs, at most `parallel` at a time, each limited to mem_bytes of
 * address space (0 = no limit). If they have not all ended timeout_ns after
 * the start (0 = none), the running ones are killed and KEEL_ELIMIT is
 * returned. Otherwise 0; check each job's status. */
int keel_proc_run_jobs(keel_job *jobs, size_t n, size_t parallel,
                       unsigned long long mem_bytes, unsigned long long timeout_ns,
                       char *err, size_t errlen);

/* Reads the first non-empty line of path into buf (for error messages). */
void keel_first_line(const char *path, char *buf, size_t len);

/* Reads a whole file. *out is malloc'd and NUL-terminated (caller frees).
 * Fails with KEEL_ELIMIT beyond max bytes. */
int keel_read_file(const char *path, size_t max, char **out, size_t *len,
                   char *err, size_t errlen);

/* Writes all n bytes to fd, retrying short writes and EINTR. 0, or -1
 * with errno set. */
int keel_write_all(int fd, const void *p, size_t n);

#endif
