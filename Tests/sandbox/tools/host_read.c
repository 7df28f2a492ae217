/* Host side of case 4: read a result file from a sandbox's work dir the way
 * the host must: openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
 * RESOLVE_NO_MAGICLINKS), regular files only (falls back to an O_NOFOLLOW
 * walk per component where openat2 is missing). Reference for the Swift host.
 *   host_read WORKDIR RELPATH  -> prints the file, exit 0
 *                              -> "refused: ERRNO" on stderr, exit 1 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int walk_nofollow(int dir, const char *rel)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", rel);
    int cur = dup(dir);
    char *save, *tok = strtok_r(buf, "/", &save);
    while (tok) {
        char *next = strtok_r(NULL, "/", &save);
        if (!strcmp(tok, "..") || !strcmp(tok, ".")) {
            close(cur);
            errno = EXDEV;
            return -1;
        }
        int fd = openat(cur, tok, (next ? O_PATH | O_DIRECTORY : O_RDONLY | O_NONBLOCK | O_NOCTTY) | O_NOFOLLOW | O_CLOEXEC);
        close(cur);
        if (fd < 0)
            return -1;
        cur = fd;
        tok = next;
    }
    return cur;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: host_read WORKDIR RELPATH\n");
        return 2;
    }
    int dir = open(argv[1], O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) {
        fprintf(stderr, "refused: %s\n", strerrorname_np(errno));
        return 1;
    }
    /* O_NONBLOCK: a FIFO planted by the sandbox must not block the host;
     * anything but a regular file is refused after fstat */
    struct open_how how = {.flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY,
                           .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
    int fd = (int)syscall(SYS_openat2, dir, argv[2], &how, sizeof how);
    if (fd < 0 && errno == ENOSYS)
        fd = walk_nofollow(dir, argv[2]);
    if (fd < 0) {
        fprintf(stderr, "refused: %s\n", strerrorname_np(errno));
        return 1;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        fprintf(stderr, "refused: not a regular file\n");
        return 1;
    }
    fcntl(fd, F_SETFL, 0);
    char b[65536];
    ssize_t n;
    while ((n = read(fd, b, sizeof b)) > 0)
        fwrite(b, 1, (size_t)n, stdout);
    return 0;
}
