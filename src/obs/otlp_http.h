/* otlp_http.h — the span exporter's HTTP client (otlp_http.c). */
#ifndef KEEL_OBS_OTLP_HTTP_H
#define KEEL_OBS_OTLP_HTTP_H

#include <stddef.h>

/* A connection to the collector, kept between POSTs; fd -1 when none. */
typedef struct otlp_conn {
    int fd;
} otlp_conn;

/* POSTs body (application/json) to http://host:port/path over c,
 * connecting when c has no connection and keeping it when the answer
 * allows. 0 on a 2xx answer; -1 otherwise, with the reason in why. */
int otlp_post(otlp_conn *c, const char *host, const char *port, const char *path,
              const char *body, size_t len, char *why, size_t whylen);

/* Closes c's connection, if any. */
void otlp_conn_close(otlp_conn *c);

#endif
