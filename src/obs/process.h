/* process.h — process-wide metrics: keel_build_info, keel_start_time_seconds
 * and the standard process_* family (CPU, resident memory, open file
 * descriptors, their limit, virtual memory, start time), read from /proc. */
#ifndef KEEL_OBS_PROCESS_H
#define KEEL_OBS_PROCESS_H

#include "obs/prom.h"

/* Records the start time; call once, early in main's command. */
void keel_process_mark_start(void);
/* Appends the families to b. */
void keel_process_metrics(keel_buf *b);

#endif
