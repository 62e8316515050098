/* hello_wagi.c — the WAGI (CGI over WASI) counterpart of hello_wapc.c: a
 * WASI command that prints a Content-Type header, a blank line, "hello". */
#include <stdio.h>

int main(void)
{
    fputs("Content-Type: text/plain\n\nhello", stdout);
    return 0;
}
