/* process.c — see process.h. */
#include "obs/process.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "base/version.h"

static double start_time;

void keel_process_mark_start(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    start_time = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1;   /* the directory's own descriptor */
}

static void memory(double *rss, double *vsize)
{
    *rss = *vsize = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return;
    unsigned long size = 0, res = 0;
    if (fscanf(f, "%lu %lu", &size, &res) == 2) {
        double page = (double)sysconf(_SC_PAGESIZE);
        *vsize = (double)size * page;
        *rss = (double)res * page;
    }
    fclose(f);
}

void keel_process_metrics(keel_buf *b)
{
    const char *vl[] = { "version", KEEL_VERSION };
    keel_prom_family(b, "keel_build_info", "gauge", "Always 1: the Keel version running.");
    keel_prom_sample_u(b, "keel_build_info", vl, 1, 1);
    keel_prom_family(b, "keel_start_time_seconds", "gauge",
                     "When this Keel process started, in seconds since the epoch.");
    keel_prom_sample(b, "keel_start_time_seconds", NULL, 0, start_time);

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    keel_prom_family(b, "process_cpu_seconds_total", "counter",
                     "Total user and system CPU time spent in seconds.");
    keel_prom_sample(b, "process_cpu_seconds_total", NULL, 0, cpu);
    double rss, vsize;
    memory(&rss, &vsize);
    keel_prom_family(b, "process_resident_memory_bytes", "gauge",
                     "Resident memory size in bytes.");
    keel_prom_sample(b, "process_resident_memory_bytes", NULL, 0, rss);
    keel_prom_family(b, "process_virtual_memory_bytes", "gauge",
                     "Virtual memory size in bytes.");
    keel_prom_sample(b, "process_virtual_memory_bytes", NULL, 0, vsize);
    keel_prom_family(b, "process_open_fds", "gauge", "Number of open file descriptors.");
    keel_prom_sample(b, "process_open_fds", NULL, 0, (double)open_fds());
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        keel_prom_family(b, "process_max_fds", "gauge",
                         "Maximum number of open file descriptors.");
        keel_prom_sample(b, "process_max_fds", NULL, 0,
                         rl.rlim_cur == RLIM_INFINITY ? -1.0 : (double)rl.rlim_cur);
    }
    keel_prom_family(b, "process_start_time_seconds", "gauge",
                     "Start time of the process since unix epoch in seconds.");
    keel_prom_sample(b, "process_start_time_seconds", NULL, 0, start_time);
}
