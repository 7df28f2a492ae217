/* The work dir's file system (README §3, §7): by default /work is a tmpfs of
 * the sandbox's own mount namespace with size=workdir_bytes and
 * nr_inodes=workdir_inodes, so writing past either fails with ENOSPC and
 * the host's disk only ever receives what fits. Init copies the host work
 * dir in before the program starts and, after every sandbox process is
 * gone, mirrors the tmpfs back into it: first into a staging directory
 * inside the host dir, and only when that copy is complete are the old
 * entries removed and the new ones renamed into place — a copy that fails
 * or is killed leaves the host dir as it was before the run. The copy never follows a link, keeps regular files, directories,
 * symlinks and FIFOs, drops sockets, and strips set-id and sticky bits
 * (a set-id program left in a persistent work dir must not work on the host
 * or in the next run). */
#include "sandbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define STAGING ".nova-incoming-"

static int is_staging(const char *name)
{
    return !strncmp(name, STAGING, sizeof STAGING - 1);
}

struct copy {
    long long bytes, entries;         /* copied so far */
    long long max_bytes, max_entries; /* the tmpfs limits (hard links are copied as files) */
    int max_depth;
    char error[400]; /* first problem, empty when all went */
};

static void copy_error(struct copy *cp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void copy_error(struct copy *cp, const char *fmt, ...)
{
    if (cp->error[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cp->error, sizeof cp->error, fmt, ap);
    va_end(ap);
}

/* Names in directory `fd` (without . and ..), NULL-terminated; the stream
 * is closed before the caller recurses, so each level holds only its fds. */
static char **list_dir(int fd, size_t *count)
{
    *count = 0;
    int d = dup(fd);
    DIR *dir = d >= 0 ? fdopendir(d) : NULL;
    if (!dir) {
        if (d >= 0)
            close(d);
        return NULL;
    }
    rewinddir(dir); /* the dup shares the offset: an earlier listing left it at the end */
    size_t cap = 16, n = 0;
    char **names = malloc(cap * sizeof *names);
    struct dirent *e;
    while (names && (e = readdir(dir))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (n + 1 >= cap) {
            cap *= 2;
            char **nn = realloc(names, cap * sizeof *names);
            if (!nn)
                break;
            names = nn;
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(dir);
    if (names)
        names[n] = NULL;
    *count = n;
    return names;
}

static void free_list(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* Empties directory `fd` (never following links), except the entry `keep`. */
static void clear_dir(int fd, int depth, struct copy *cp, const char *keep)
{
    size_t n;
    char **names = list_dir(fd, &n);
    if (!names) {
        copy_error(cp, "listing the host work dir: %s", strerror(errno));
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (keep && !strcmp(names[i], keep))
            continue;
        if (unlinkat(fd, names[i], 0) == 0 || errno == ENOENT)
            continue;
        if (errno != EISDIR && errno != EPERM) {
            copy_error(cp, "removing %s from the host work dir: %s", names[i], strerror(errno));
            continue;
        }
        if (depth >= cp->max_depth) {
            copy_error(cp, "the host work dir is deeper than %d levels", cp->max_depth);
            continue;
        }
        int sub = openat(fd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0 && errno == EACCES && fchmodat(fd, names[i], 0700, 0) == 0)
            sub = openat(fd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0) {
            copy_error(cp, "opening %s in the host work dir: %s", names[i], strerror(errno));
            continue;
        }
        (void)fchmod(sub, 0700);
        clear_dir(sub, depth + 1, cp, NULL);
        close(sub);
        if (unlinkat(fd, names[i], AT_REMOVEDIR) < 0)
            copy_error(cp, "removing directory %s from the host work dir: %s", names[i], strerror(errno));
    }
    free_list(names, n);
}

static int copy_data(int in, int out, struct copy *cp, const char *name)
{
    static char buf[65536];
    for (;;) {
        ssize_t n = read(in, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            copy_error(cp, "reading %s: %s", name, strerror(errno));
            return -1;
        }
        if (n == 0)
            return 0;
        if (cp->bytes + n > cp->max_bytes) {
            copy_error(cp, "the copy exceeds the work dir limit of %lld bytes (hard links are copied as separate files)",
                       cp->max_bytes);
            return -1;
        }
        if (write_all(out, buf, (size_t)n) < 0) {
            copy_error(cp, "writing %s: %s", name, strerror(errno));
            return -1;
        }
        cp->bytes += n;
    }
}

/* Copies the contents of directory `src` into the (empty) directory `dst`. */
static void copy_tree(int src, int dst, int depth, struct copy *cp)
{
    size_t n;
    char **names = list_dir(src, &n);
    if (!names) {
        copy_error(cp, "listing a directory: %s", strerror(errno));
        return;
    }
    for (size_t i = 0; i < n && !cp->error[0]; i++) {
        const char *name = names[i];
        if (depth == 0 && is_staging(name))
            continue; /* a copy back that was killed half way: never part of the work dir */
        struct stat st;
        if (fstatat(src, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        if (++cp->entries > cp->max_entries) {
            copy_error(cp, "the copy exceeds the work dir limit of %lld entries", cp->max_entries);
            break;
        }
        mode_t mode = st.st_mode & 0777; /* no set-id, no sticky bit */
        if (S_ISDIR(st.st_mode)) {
            if (depth >= cp->max_depth) {
                copy_error(cp, "%s: the work dir is deeper than %d levels (the descriptor limit)", name, cp->max_depth);
                break;
            }
            if (mkdirat(dst, name, 0700) < 0) {
                copy_error(cp, "mkdir %s: %s", name, strerror(errno));
                break;
            }
            int s = openat(src, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            int d = openat(dst, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (s < 0 || d < 0)
                copy_error(cp, "opening directory %s: %s", name, strerror(errno));
            else
                copy_tree(s, d, depth + 1, cp);
            if (d >= 0)
                (void)fchmod(d, mode | 0700); /* the host must be able to clean it */
            if (s >= 0)
                close(s);
            if (d >= 0)
                close(d);
        } else if (S_ISREG(st.st_mode)) {
            int s = openat(src, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
            int d = openat(dst, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
            if (s < 0 || d < 0)
                copy_error(cp, "copying %s: %s", name, strerror(errno));
            else if (copy_data(s, d, cp, name) == 0)
                (void)fchmod(d, mode);
            if (s >= 0)
                close(s);
            if (d >= 0)
                close(d);
        } else if (S_ISLNK(st.st_mode)) {
            char target[PATH_MAX];
            ssize_t l = readlinkat(src, name, target, sizeof target - 1);
            if (l >= 0) {
                target[l] = 0;
                if (symlinkat(target, dst, name) < 0)
                    copy_error(cp, "symlink %s: %s", name, strerror(errno));
            }
        } else if (S_ISFIFO(st.st_mode)) {
            if (mkfifoat(dst, name, mode) < 0)
                copy_error(cp, "mkfifo %s: %s", name, strerror(errno));
        }
        /* sockets (and devices, which nodev makes useless) are not kept */
    }
    free_list(names, n);
}

static int copy_depth(const struct config *c)
{
    /* two descriptors per level, a few spare */
    long long d = (c->nofile - 8) / 2;
    return d > 256 ? 256 : d < 2 ? 2 : (int)d;
}

/* Mounts the work dir tmpfs on c->workdir_mount and copies the host work
 * dir (c->workdir_fd, kept open for the copy back) into it. */
void workfs_mount(const struct config *c, unsigned long noexec)
{
    char opts[160];
    snprintf(opts, sizeof opts, "mode=0700,uid=%lld,gid=%lld,size=%lld,nr_inodes=%lld", c->uid, c->gid,
             c->workdir_bytes, c->workdir_inodes);
    if (mount("tmpfs", c->workdir_mount, "tmpfs", MS_NOSUID | MS_NODEV | noexec, opts) < 0)
        fail(ST_MOUNT, errno, "mount tmpfs on %s: %s", c->workdir_mount, strerror(errno));
    int src = openat(c->workdir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int dst = open(c->workdir_mount, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (src < 0 || dst < 0)
        fail(ST_MOUNT, errno, "opening the work dir for the copy in: %s", strerror(errno));
    struct copy cp = {.max_bytes = c->workdir_bytes, .max_entries = c->workdir_inodes,
                      .max_depth = copy_depth(c)};
    copy_tree(src, dst, 0, &cp);
    close(src);
    close(dst);
    if (cp.error[0])
        fail(ST_MOUNT, ENOSPC, "copying the work dir in: %s", cp.error);
}

/* Removes the staging directory `name` below `dir`. */
static void drop_staging(int dir, const char *name, struct copy *cp)
{
    int fd = openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
        clear_dir(fd, 1, cp, NULL);
        close(fd);
    }
    (void)unlinkat(dir, name, AT_REMOVEDIR);
}

/* Copies the tmpfs `src` into the host dir `dst` through a staging dir. */
static void mirror(int src, int dst, struct copy *cp)
{
    char stage[64];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(stage, sizeof stage, STAGING "%lx%lx", (unsigned long)ts.tv_sec, (unsigned long)ts.tv_nsec);
    /* leftovers of an earlier copy back that was killed */
    size_t n;
    char **names = list_dir(dst, &n);
    for (size_t i = 0; names && i < n; i++)
        if (is_staging(names[i]))
            drop_staging(dst, names[i], cp);
    if (names)
        free_list(names, n);
    if (mkdirat(dst, stage, 0700) < 0) {
        copy_error(cp, "creating %s in the host work dir: %s", stage, strerror(errno));
        return;
    }
    int sfd = openat(dst, stage, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sfd < 0) {
        copy_error(cp, "opening %s: %s", stage, strerror(errno));
        return;
    }
    copy_tree(src, sfd, 1, cp);
    if (cp->error[0]) {
        close(sfd);
        struct copy ignore = *cp;
        drop_staging(dst, stage, &ignore);
        size_t l = strlen(cp->error);
        snprintf(cp->error + l, sizeof cp->error - l, "; the host work dir keeps its contents from before the run");
        return;
    }
    /* complete: the old contents go, the new ones are renamed into place */
    clear_dir(dst, 0, cp, stage);
    names = list_dir(sfd, &n);
    for (size_t i = 0; names && i < n; i++)
        if (renameat(sfd, names[i], dst, names[i]) < 0)
            copy_error(cp, "moving %s into the host work dir: %s", names[i], strerror(errno));
    if (names)
        free_list(names, n);
    close(sfd);
    if (!cp->error[0])
        (void)unlinkat(dst, stage, AT_REMOVEDIR);
}

/* After the run: whether the tmpfs was full (1 bytes, 2 inodes, 0 no), and
 * the host work dir made a copy of it; `err` gets the first problem. */
int workfs_copy_out(const struct config *c, char *err, size_t errlen)
{
    err[0] = 0;
    int full = 0;
    struct statvfs sv;
    if (statvfs(c->workdir_mount, &sv) == 0) {
        if (sv.f_ffree == 0)
            full = 2;
        else if ((unsigned long long)sv.f_bavail * sv.f_bsize < 65536)
            full = 1;
    }
    int src = open(c->workdir_mount, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int dst = openat(c->workdir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct copy cp = {.max_bytes = c->workdir_bytes, .max_entries = c->workdir_inodes,
                      .max_depth = copy_depth(c)};
    if (src < 0 || dst < 0) {
        snprintf(err, errlen, "opening the work dir for the copy back: %s", strerror(errno));
    } else {
        mirror(src, dst, &cp);
        if (cp.error[0])
            snprintf(err, errlen, "%s", cp.error);
    }
    if (src >= 0)
        close(src);
    if (dst >= 0)
        close(dst);
    return full;
}
