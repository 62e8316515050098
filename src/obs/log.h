/* log.h — Keel's log: one line per event on stderr. A disabled level costs
 * one comparison. (Structured JSON lines, request ids in every line and
 * per-component rate limits arrive with the operability work.) */
#ifndef KEEL_OBS_LOG_H
#define KEEL_OBS_LOG_H

typedef enum keel_log_level {
    KEEL_LOG_DEBUG = 0, KEEL_LOG_INFO = 1, KEEL_LOG_WARN = 2, KEEL_LOG_ERROR = 3,
} keel_log_level;

extern keel_log_level keel_log_min;

/* Writes "LEVEL [component] message" (component may be NULL) as one line,
 * in one write(2), so lines from threads never interleave. */
void keel_log_write(keel_log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define keel_log(level, component, ...)                                        \
    do {                                                                       \
        if ((level) >= keel_log_min)                                           \
            keel_log_write((level), (component), __VA_ARGS__);                 \
    } while (0)

#endif
