/* admin.h — the admin listener: its own thread running its own h2o event
 * loop on a separate address (default 127.0.0.1:9090), serving
 *
 *   GET /metrics   Prometheus text format 0.0.4 (process, host, components)
 *   GET /healthz   liveness: 200 while the process can serve
 *   GET /readyz    200 when every component is loaded and the process is
 *                  not stopping; 503 + JSON reason ("draining" once stopping)
 *   GET /health    per-component JSON status (see keel_host_health)
 *
 * the component endpoints of components.c (GET /admin/components,
 * /admin/state; PUT and POST /admin/components/NAME...), POST /admin/reload,
 * and the mutating endpoints of mutate.c (POST /admin/stores/NAME/backup);
 * every mutating call requires the bearer token of admin.token_file. The host is attached
 * once loaded (keel_admin_set_host); until then /readyz and /health answer
 * 503. */
#ifndef KEEL_ADMIN_ADMIN_H
#define KEEL_ADMIN_ADMIN_H

#include <stddef.h>

#include "host/host.h"

typedef struct keel_admin keel_admin;

/* Binds listen ("host:port", port 0 picks one) and starts the thread.
 * *port gets the bound port. 0, or a negative KEEL_E* with err filled. */
int keel_admin_start(const char *listen, keel_admin **out, int *port, char *err,
                     size_t errlen);
/* Attaches (or with NULL detaches) the host whose state is served. The
 * admin thread finishes any request using the old host before this
 * returns, so the caller may free it afterwards. */
void keel_admin_set_host(keel_admin *a, keel_host *h);
/* What POST /admin/reload calls (on the admin thread, with no host in
 * use): 0, or a negative KEEL_E* with the error in err. NULL: reloads off
 * (503). */
typedef int (*keel_admin_reload_fn)(void *arg, const char *who, char *err, size_t errlen);
void keel_admin_set_reload(keel_admin *a, keel_admin_reload_fn fn, void *arg);
/* The process is stopping: from now on /readyz answers 503 with reason
 * "draining" while /healthz stays 200. Any thread (not a signal handler);
 * NULL is fine. */
void keel_admin_set_draining(keel_admin *a);
/* Stops and joins the thread, closes the listener. NULL is fine. */
void keel_admin_stop(keel_admin *a);

#endif
