/* proc.c — helper processes and small file utilities (see proc.h). */
#include "base/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/errors.h"

extern char **environ;

int keel_proc_run(const char *const *argv, const char *stderr_path,
                  char *err, size_t errlen)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    /* no O_CLOEXEC here: it would close the child's stderr at exec */
    posix_spawn_file_actions_addopen(&fa, 2, stderr_path ? stderr_path : "/dev/null",
                                     O_WRONLY | O_CREAT | O_APPEND, 0600);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        return keel_err(err, errlen, KEEL_EIO, "cannot run %s: %s", argv[0], strerror(rc));
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            return keel_err(err, errlen, KEEL_EIO, "waiting for %s: %s", argv[0],
                            strerror(errno));
    }
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

static unsigned long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

/* Forks and execs one job with its address-space limit. */
static pid_t start_job(const keel_job *j, unsigned long long mem_bytes)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    /* child: only async-signal-safe work until exec */
    int in = open("/dev/null", O_RDONLY);
    int out = open("/dev/null", O_WRONLY);
    int errfd = open(j->stderr_path ? j->stderr_path : "/dev/null",
                     O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (in < 0 || out < 0 || errfd < 0)
        _exit(127);
    dup2(in, 0);
    dup2(out, 1);
    dup2(errfd, 2);
    if (mem_bytes) {
        struct rlimit rl = { (rlim_t)mem_bytes, (rlim_t)mem_bytes };
        setrlimit(RLIMIT_AS, &rl);
    }
    execvp(j->argv[0], (char *const *)j->argv);
    _exit(127);
}

int keel_proc_run_jobs(keel_job *jobs, size_t n, size_t parallel,
                       unsigned long long mem_bytes, unsigned long long timeout_ns,
                       char *err, size_t errlen)
{
    pid_t *pids = calloc(n ? n : 1, sizeof *pids);
    if (!pids)
        abort();
    unsigned long long start = now_ns();
    size_t next = 0, running = 0, done = 0;
    int rc = 0;
    for (size_t i = 0; i < n; i++)
        jobs[i].status = -1;
    while (done < n) {
        while (next < n && running < (parallel ? parallel : 1)) {
            pids[next] = start_job(&jobs[next], mem_bytes);
            if (pids[next] < 0) {
                rc = keel_err(err, errlen, KEEL_EIO, "fork: %s", strerror(errno));
                goto kill_all;
            }
            next++;
            running++;
        }
        int any = 0;
        for (size_t i = 0; i < next; i++) {
            int st;
            if (pids[i] > 0 && waitpid(pids[i], &st, WNOHANG) == pids[i]) {
                jobs[i].status = WIFEXITED(st) ? WEXITSTATUS(st)
                                               : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
                pids[i] = 0;
                running--;
                done++;
                any = 1;
            }
        }
        if (timeout_ns && now_ns() - start > timeout_ns) {
            rc = keel_err(err, errlen, KEEL_ELIMIT, "time budget of %llu s exceeded",
                          timeout_ns / 1000000000ull);
            goto kill_all;
        }
        if (!any) {
            struct timespec ts = { 0, 5 * 1000 * 1000 };
            nanosleep(&ts, NULL);
        }
    }
    free(pids);
    return 0;
kill_all:
    for (size_t i = 0; i < next; i++) {
        if (pids[i] > 0) {
            kill(pids[i], SIGKILL);
            waitpid(pids[i], NULL, 0);
        }
    }
    free(pids);
    return rc;
}

void keel_first_line(const char *path, char *buf, size_t len)
{
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    while (fgets(buf, (int)len, f)) {
        buf[strcspn(buf, "\n")] = '\0';
        if (buf[0])
            break;
    }
    fclose(f);
}

int keel_read_file(const char *path, size_t max, char **out, size_t *len,
                   char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return keel_err(err, errlen, KEEL_EIO, "%s", strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return keel_err(err, errlen, KEEL_EIO, "not a regular file");
    }
    if ((size_t)st.st_size > max) {
        close(fd);
        return keel_err(err, errlen, KEEL_ELIMIT, "file too large (%lld bytes, limit %zu)",
                        (long long)st.st_size, max);
    }
    size_t n = (size_t)st.st_size;
    char *buf = malloc(n + 1);
    if (!buf)
        abort();
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (got != n) {
        free(buf);
        return keel_err(err, errlen, KEEL_EIO, "short read");
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

int keel_write_all(int fd, const void *p, size_t n)
{
    const char *b = p;
    while (n) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}
