/* cgi_env.c — a WAGI (CGI over WASI) command: prints CGI headers, then the
 * meta-variables the tests look at and the request body from stdin.
 * QUERY_STRING "status" answers 404 through a Status header, "redirect" a
 * Location. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const vars[] = {
    "REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "CONTENT_TYPE",
    "CONTENT_LENGTH", "SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL", "REMOTE_ADDR",
    "HTTP_X_TEST", "HTTP_USER_AGENT", "HTTP_X_MULTI", "HTTP_X_UNDER_SCORE", "HTTP_PROXY",
    "GATEWAY_INTERFACE", "APP_ENV", "greeting", "KEEL_REQUEST_ID",
};

int main(void)
{
    const char *q = getenv("QUERY_STRING");
    if (q && strcmp(q, "status") == 0) {
        printf("Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\nnope\n");
        return 0;
    }
    if (q && strcmp(q, "redirect") == 0) {
        printf("Location: /elsewhere\n\n");
        return 0;
    }
    printf("Content-Type: text/plain\r\nX-Cgi: yes\r\n\r\n");
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
        const char *v = getenv(vars[i]);
        printf("%s=%s\n", vars[i], v ? v : "(unset)");
    }
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf, stdin);
    printf("BODY=%.*s\n", (int)n, buf);
    fprintf(stderr, "cgi_env served %s\n", q ? q : "");
    return 0;
}
