/* args_env — prints argv and environ exactly, one item per line, with every
 * byte outside printable ASCII (and '\\') escaped as \xNN so that values with
 * newlines, quotes and '=' are unambiguous. Environ is printed in host order
 * and sorted; getenv() is checked for each --env KEY the test names in
 * argv ("getenv:KEY" arguments). Exit status: argc. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wasi/api.h>

extern char **environ;

static void put_escaped(const char *s) {
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p >= 0x7f || *p == '\\')
            printf("\\x%02x", *p);
        else
            putchar(*p);
    }
}

static int cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv) {
    printf("argc=%d\n", argc);
    for (int i = 0; i < argc; i++) {
        printf("argv[%d]=", i);
        put_escaped(argv[i]);
        putchar('\n');
    }
    if (argv[argc] != NULL)
        printf("argv[argc] is not NULL\n");

    /* The raw sizes must agree with what libc built. */
    __wasi_size_t n_args = 0, args_buf = 0, n_env = 0, env_buf = 0;
    __wasi_errno_t e1 = __wasi_args_sizes_get(&n_args, &args_buf);
    __wasi_errno_t e2 = __wasi_environ_sizes_get(&n_env, &env_buf);
    size_t want_args = 0;
    for (int i = 0; i < argc; i++) want_args += strlen(argv[i]) + 1;
    printf("args_sizes_get: errno=%d count_ok=%d buf_ok=%d\n", e1,
           (int)n_args == argc, (size_t)args_buf == want_args);

    size_t envc = 0, want_env = 0;
    for (char **e = environ; e && *e; e++) { envc++; want_env += strlen(*e) + 1; }
    printf("environ_sizes_get: errno=%d count=%u count_ok=%d buf_ok=%d\n", e2,
           (unsigned)n_env, (size_t)n_env == envc, (size_t)env_buf == want_env);

    char **sorted = calloc(envc + 1, sizeof *sorted);
    for (size_t i = 0; i < envc; i++) sorted[i] = environ[i];
    qsort(sorted, envc, sizeof *sorted, cmp);
    for (size_t i = 0; i < envc; i++) {
        printf("env: ");
        put_escaped(sorted[i]);
        putchar('\n');
    }
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "getenv:", 7) == 0) {
            const char *v = getenv(argv[i] + 7);
            printf("getenv(%s)=", argv[i] + 7);
            if (v) { putchar('"'); put_escaped(v); puts("\""); }
            else puts("NULL");
        }
    }
    fflush(stdout);
    return argc;
}
