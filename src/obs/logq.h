/* logq.h — private to src/obs: the queue behind keel_log_fields_queue.
 * Each thread that queues a line owns one single-producer byte ring; one
 * writer thread drains every ring with writev(2) every KEEL_LOGQ_FLUSH_MS,
 * or sooner when a ring is a quarter full, so a busy server makes a few
 * dozen write calls a second instead of one per request, and request
 * threads never contend on the log file. */
#ifndef KEEL_OBS_LOGQ_H
#define KEEL_OBS_LOGQ_H

#include <stdbool.h>
#include <stddef.h>

/* Per thread; a power of two. At 30k access lines/s a thread fills 160 KiB
 * in 20 ms: a ring of 256 KiB overflowed whenever the writer waited for a
 * CPU for 30 ms, and every line after that was written by the request
 * thread itself, contending with the writer on the log file. */
#define KEEL_LOGQ_RING_BYTES (1u << 20)
#define KEEL_LOGQ_FLUSH_MS 20u

/* Copies one complete line into the calling thread's ring. false when the
 * writer is not running or the ring has no room: the caller writes the
 * line itself (never lost, only not batched). */
bool keel_logq_push(const char *line, size_t len);

#endif
