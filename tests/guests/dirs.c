/* dirs — directory operations inside the preopened directory argv[1]:
 * mkdir, readdir (sorted before printing; "." and ".." are filtered because
 * hosts differ on whether fd_readdir reports them), rmdir, rename, unlink,
 * link, symlink/readlink, lstat/stat, utimensat/futimens (whole seconds, so
 * hosts that keep microseconds agree; futimens with one UTIME_OMIT fails
 * EINVAL inside this wasi-libc, so it sets both). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *dir;
static char pbuf[4][512];
static int pidx;
static const char *P(const char *name) {
    char *b = pbuf[pidx++ & 3];
    snprintf(b, 512, "%s/%s", dir, name);
    return b;
}
#define SHOW(label, expr) do { errno = 0; long long _r = (long long)(expr); \
    printf("%s: r=%lld errno=%d\n", label, _r, _r < 0 ? errno : 0); } while (0)

static int cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static const char *type_name(unsigned char t) {
    switch (t) {
    case DT_REG: return "file";
    case DT_DIR: return "dir";
    case DT_LNK: return "symlink";
    default: return "other";
    }
}

static void list(const char *name) {
    DIR *d = opendir(name[0] ? P(name) : dir);
    if (!d) { printf("opendir %s: errno=%d\n", name, errno); return; }
    char *names[256];
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < 256) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        char *s = malloc(strlen(de->d_name) + 16);
        sprintf(s, "%s %s", de->d_name, type_name(de->d_type));
        names[n++] = s;
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp);
    printf("ls %s/:", name);
    for (int i = 0; i < n; i++) { printf(" [%s]", names[i]); free(names[i]); }
    printf("\n");
}

static void put(const char *name, const char *data) {
    int fd = open(P(name), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) { printf("create %s: errno=%d\n", name, errno); return; }
    write(fd, data, strlen(data));
    close(fd);
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: dirs DIR\n"); return 2; }
    dir = argv[1];
    struct stat st;

    list("");
    SHOW("mkdir a", mkdir(P("a"), 0755));
    SHOW("mkdir a again", mkdir(P("a"), 0755));
    SHOW("mkdir a/b", mkdir(P("a/b"), 0755));
    SHOW("mkdir x/y (no parent)", mkdir(P("x/y"), 0755));
    put("a/f1.txt", "one\n");
    put("a/b/f2.txt", "two\n");

    /* Many entries: readdir must return all of them across several calls. */
    SHOW("mkdir many", mkdir(P("many"), 0755));
    char name[64];
    for (int i = 0; i < 150; i++) {
        snprintf(name, sizeof name, "many/entry-with-a-longish-name-%03d", i);
        put(name, "");
    }
    DIR *d = opendir(P("many"));
    int count = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) count++;
    closedir(d);
    printf("many entries: %d\n", count);
    for (int i = 0; i < 150; i++) {
        snprintf(name, sizeof name, "many/entry-with-a-longish-name-%03d", i);
        if (unlink(P(name)) != 0) printf("unlink %s: errno=%d\n", name, errno);
    }
    SHOW("rmdir many", rmdir(P("many")));
    list("a");

    SHOW("rmdir a (not empty)", rmdir(P("a")));
    SHOW("rmdir a/f1.txt (file)", rmdir(P("a/f1.txt")));
    SHOW("rmdir missing", rmdir(P("nope")));
    SHOW("unlink a/b (dir)", unlink(P("a/b")));
    SHOW("unlink missing", unlink(P("nope")));

    /* rename: file, over an existing file, dir, into a subdir. */
    put("r1.txt", "r1\n");
    put("r2.txt", "r2\n");
    SHOW("rename r1->r3", rename(P("r1.txt"), P("r3.txt")));
    SHOW("stat r1 after rename", stat(P("r1.txt"), &st));
    SHOW("rename r3 over r2", rename(P("r3.txt"), P("r2.txt")));
    SHOW("rename a/b -> c", rename(P("a/b"), P("c")));
    SHOW("rename missing", rename(P("nope"), P("nope2")));
    SHOW("rename file over dir", rename(P("r2.txt"), P("c")));
    SHOW("rename r2 into a/", rename(P("r2.txt"), P("a/r2.txt")));
    list("");
    list("a");
    list("c");

    /* Hard links. */
    SHOW("link a/f1 -> hard.txt", link(P("a/f1.txt"), P("hard.txt")));
    stat(P("hard.txt"), &st);
    printf("hard.txt nlink=%llu size=%lld\n", (unsigned long long)st.st_nlink, (long long)st.st_size);
    SHOW("link onto existing", link(P("a/f1.txt"), P("hard.txt")));
    SHOW("link missing", link(P("nope"), P("hard2.txt")));
    SHOW("unlink a/f1", unlink(P("a/f1.txt")));
    stat(P("hard.txt"), &st);
    printf("hard.txt nlink after unlink=%llu\n", (unsigned long long)st.st_nlink);

    /* Symlinks (relative targets only: absolute ones are a sandbox matter). */
    SHOW("symlink", symlink("hard.txt", P("soft.txt")));
    SHOW("symlink dangling", symlink("does-not-exist", P("dangling")));
    SHOW("symlink to dir", symlink("c", P("clink")));
    SHOW("symlink existing", symlink("x", P("soft.txt")));
    char lb[128];
    ssize_t ln = readlink(P("soft.txt"), lb, sizeof lb);
    printf("readlink soft.txt: n=%zd target=%.*s\n", ln, (int)(ln > 0 ? ln : 0), lb);
    ln = readlink(P("soft.txt"), lb, 3);
    printf("readlink short buffer: n=%zd target=%.*s\n", ln, (int)(ln > 0 ? ln : 0), lb);
    SHOW("readlink on file", readlink(P("hard.txt"), lb, sizeof lb));
    lstat(P("soft.txt"), &st);
    printf("lstat soft.txt: link=%d\n", S_ISLNK(st.st_mode));
    stat(P("soft.txt"), &st);
    printf("stat soft.txt: reg=%d size=%lld\n", S_ISREG(st.st_mode), (long long)st.st_size);
    SHOW("stat dangling", stat(P("dangling"), &st));
    int fd = open(P("clink/f2.txt"), O_RDONLY);
    ssize_t rn = fd >= 0 ? read(fd, lb, sizeof lb) : -1;
    printf("read via dir symlink: n=%zd data=%.*s", rn, (int)(rn > 0 ? rn : 0), lb);
    if (fd >= 0) close(fd);
    SHOW("open O_NOFOLLOW on symlink", open(P("soft.txt"), O_RDONLY | O_NOFOLLOW));
    SHOW("unlink symlink", unlink(P("dangling")));
    SHOW("symlink loop1", symlink("loop2", P("loop1")));
    SHOW("symlink loop2", symlink("loop1", P("loop2")));
    SHOW("open symlink loop", open(P("loop1"), O_RDONLY));
    SHOW("stat symlink loop", stat(P("loop1"), &st));
    SHOW("unlink loop1", unlink(P("loop1")));
    SHOW("unlink loop2", unlink(P("loop2")));
    list("");

    /* Timestamps: set whole seconds, read back. */
    struct timespec ts[2] = {{1000000000, 0}, {1234567890, 0}};
    SHOW("utimensat", utimensat(AT_FDCWD, P("hard.txt"), ts, 0));
    stat(P("hard.txt"), &st);
    printf("times: atime=%lld mtime=%lld\n", (long long)st.st_atim.tv_sec,
           (long long)st.st_mtim.tv_sec);
    fd = open(P("hard.txt"), O_RDWR);
    struct timespec ts2[2] = {{1500000000, 0}, {1300000000, 0}};
    SHOW("futimens", futimens(fd, ts2));
    fstat(fd, &st);
    printf("times: atime=%lld mtime=%lld\n", (long long)st.st_atim.tv_sec,
           (long long)st.st_mtim.tv_sec);
    close(fd);
    struct timespec ts3[2] = {{UTIME_OMIT, UTIME_OMIT}, {1600000000, 0}};
    SHOW("utimensat (mtime only)", utimensat(AT_FDCWD, P("hard.txt"), ts3, 0));
    stat(P("hard.txt"), &st);
    printf("times: atime=%lld mtime=%lld\n", (long long)st.st_atim.tv_sec,
           (long long)st.st_mtim.tv_sec);
    SHOW("utimensat missing", utimensat(AT_FDCWD, P("nope"), ts, 0));

    /* Clean up part of the tree; the rest is compared by the test. */
    SHOW("unlink a/b? (moved)", unlink(P("a/b/f2.txt")));
    SHOW("unlink c/f2.txt", unlink(P("c/f2.txt")));
    SHOW("rmdir c", rmdir(P("c")));
    list("");
    return 0;
}
