/* legacy.c — an old CGI program, unchanged: main() reads the CGI variables
 * and prints a CGI response. keel.yaml runs it as a wagi component on
 * /legacy and below (one run per request).
 *   GET /legacy/status   a plain-text status report
 *   anything else        404 through a CGI "Status:" header
 * It sees its config (SHOP_NAME) and env (TZ) as environment variables and
 * reads /data/notice.txt from the read-only folder keel.yaml mounts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *var(const char *name)
{
    const char *v = getenv(name);
    return v ? v : "";
}

int main(void)
{
    if (strcmp(var("PATH_INFO"), "/status") != 0) {
        printf("Status: 404 Not Found\r\n"
               "Content-Type: text/plain; charset=utf-8\r\n\r\n"
               "no such page: %s%s\n", var("SCRIPT_NAME"), var("PATH_INFO"));
        return 0;
    }
    printf("Content-Type: text/plain; charset=utf-8\r\n"
           "X-Legacy: cgi\r\n\r\n");
    printf("%s status: ok\n", *var("SHOP_NAME") ? var("SHOP_NAME") : "shop");
    printf("server: %s (%s)\n", var("SERVER_SOFTWARE"), var("GATEWAY_INTERFACE"));
    printf("request: %s %s\n", var("REQUEST_METHOD"), var("REQUEST_URI"));
    printf("query: %s\n", *var("QUERY_STRING") ? var("QUERY_STRING") : "(none)");
    printf("timezone: %s\n", *var("TZ") ? var("TZ") : "(unset)");
    printf("request id: %s\n", var("KEEL_REQUEST_ID"));

    char line[256];
    FILE *f = fopen("/data/notice.txt", "r");
    if (!f) {
        printf("notice: (unavailable)\n");
        fprintf(stderr, "cannot open /data/notice.txt\n");   /* goes to Keel's log */
        return 0;
    }
    while (fgets(line, sizeof line, f))
        printf("notice: %s", line);
    fclose(f);
    return 0;
}
