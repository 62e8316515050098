/* fuzz_wasi_path.c — libFuzzer target: WASI path resolution
 * (src/wasi/sandbox.c) on arbitrary guest paths against a scratch tree
 * that holds the traps: symlinks to the parent, to "/", to a sibling
 * folder outside the preopen, a chain of links, a magic link. Whatever
 * resolves (keel_sb_open, following links or not, and the parent
 * keel_sb_parent opens) must be inside the preopened folder: its
 * /proc/self/fd link is checked against the folder's real path. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wasi/wasi_int.h"
#include "scratch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char base[] = "/tmp/keel-fuzz-wasi.XXXXXX";
static char root[sizeof base + 16];
static int rootfd = -1;

static void mk(const char *rel, bool dir)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", base, rel);
    if (dir ? mkdir(p, 0755) != 0 : close(open(p, O_CREAT | O_WRONLY, 0644)) != 0)
        abort();
}

static void ln(const char *target, const char *rel)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", base, rel);
    if (symlink(target, p) != 0)
        abort();
}

static void setup(void)
{
    fuzz_scratch_dir(base);
    mk("root", true);
    mk("root/a", true);
    mk("root/a/b", true);
    mk("root/file", false);
    mk("root/a/b/deep", false);
    mk("outside", true);
    mk("outside/secret", false);
    ln("..", "root/up");
    ln("../outside", "root/out");
    ln("/", "root/slash");
    ln("/etc/passwd", "root/passwd");
    ln("a/b", "root/ab");
    ln("../../up", "root/a/b/upup");
    ln("ab/upup", "root/chain");
    ln("/proc/self/fd/0", "root/magic");
    ln("loop2", "root/loop1");
    ln("loop1", "root/loop2");
    snprintf(root, sizeof root, "%s/root", base);
    char *real = realpath(root, NULL);
    if (!real)
        abort();
    snprintf(root, sizeof root, "%s", real);
    free(real);
    rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0)
        abort();
}

/* fd must name something at or below root. */
static void check_inside(int fd, const char *path)
{
    char link[64], where[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, where, sizeof where - 1);
    if (n < 0)
        abort();
    where[n] = '\0';
    size_t rl = strlen(root);
    if (strncmp(where, root, rl) != 0 || (where[rl] != '\0' && where[rl] != '/')) {
        fprintf(stderr, "guest path \"%s\" resolved to %s, outside %s\n", path, where, root);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (rootfd < 0)
        setup();
    if (size < 1 || size > KEEL_WASI_MAX_PATH || memchr(data + 1, '\0', size - 1))
        return 0;
    char path[KEEL_WASI_MAX_PATH + 1];
    memcpy(path, data + 1, size - 1);
    path[size - 1] = '\0';
    bool follow = data[0] & 1;
    int flags = (data[0] & 2) ? O_PATH : O_RDONLY | O_NONBLOCK;
    int fd = keel_sb_open(rootfd, path, flags, 0, follow);
    if (fd >= 0) {
        check_inside(fd, path);
        close(fd);
    }
    keel_sb_leaf leaf;
    if (keel_sb_parent(rootfd, path, &leaf) == WASI_ESUCCESS) {
        check_inside(leaf.dirfd, path);
        keel_sb_leaf_close(&leaf);
    }
    return 0;
}
