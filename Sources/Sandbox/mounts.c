/* The sandbox's file system: a read-only tmpfs root with read-only binds of
 * the system directories, a generated /etc, a fresh /proc, a small /dev, a
 * tmpfs /tmp and the work dir as the only writable bind. Runs in the sandbox
 * init (pid 1 of the new pid namespace), already in its own mount namespace. */
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x00000001
#define MOUNT_ATTR_NOSUID 0x00000002
#define MOUNT_ATTR_NODEV 0x00000004
#define MOUNT_ATTR_NOEXEC 0x00000008
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif

struct nova_mount_attr {
    uint64_t attr_set, attr_clr, propagation, userns_fd;
};

#define BASE "/tmp"        /* host dir the staging tmpfs is mounted on (then pivoted) */
#define OLD "/oldroot"     /* where the host root lives until it is detached */

static int have_setattr = 1;

/* Set mount attributes (recursively if rec); falls back to MS_REMOUNT on
 * kernels without mount_setattr(2), keeping the flags the kernel locked. */
static void set_attrs(const char *path, uint64_t attrs, int rec)
{
    if (have_setattr) {
        struct nova_mount_attr a = {.attr_set = attrs};
        if (syscall(SYS_mount_setattr, AT_FDCWD, path, rec ? AT_RECURSIVE : 0, &a, sizeof a) == 0)
            return;
        if (errno != ENOSYS)
            fail(ST_MOUNT, errno, "mount_setattr %s: %s", path, strerror(errno));
        have_setattr = 0;
    }
    struct statvfs sv;
    if (statvfs(path, &sv) < 0)
        fail(ST_MOUNT, errno, "statvfs %s: %s", path, strerror(errno));
    unsigned long fl = MS_REMOUNT | MS_BIND;
    if (sv.f_flag & ST_NOSUID) fl |= MS_NOSUID;
    if (sv.f_flag & ST_NODEV) fl |= MS_NODEV;
    if (sv.f_flag & ST_NOEXEC) fl |= MS_NOEXEC;
    if (sv.f_flag & ST_NOATIME) fl |= MS_NOATIME;
    if (sv.f_flag & ST_NODIRATIME) fl |= MS_NODIRATIME;
    if (sv.f_flag & ST_RELATIME) fl |= MS_RELATIME;
    if (sv.f_flag & ST_RDONLY) fl |= MS_RDONLY;
    if (attrs & MOUNT_ATTR_RDONLY) fl |= MS_RDONLY;
    if (attrs & MOUNT_ATTR_NOSUID) fl |= MS_NOSUID;
    if (attrs & MOUNT_ATTR_NODEV) fl |= MS_NODEV;
    if (attrs & MOUNT_ATTR_NOEXEC) fl |= MS_NOEXEC;
    if (mount(NULL, path, NULL, fl, NULL) < 0)
        fail(ST_MOUNT, errno, "remount %s: %s", path, strerror(errno));
}

static void do_mount(const char *src, const char *dst, const char *type, unsigned long fl,
                     const char *data)
{
    if (mount(src, dst, type, fl, data) < 0)
        fail(ST_MOUNT, errno, "mount %s on %s: %s", src ? src : type, dst, strerror(errno));
}

static void mkdir_p(const char *path, mode_t mode)
{
    char buf[PATH_MAX];
    size_t n = strlen(path);
    if (n >= sizeof buf)
        fail(ST_MOUNT, ENAMETOOLONG, "path too long: %.100s", path);
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == 0) {
            char saved = *p;
            *p = 0;
            if (mkdir(buf, mode) < 0 && errno != EEXIST)
                fail(ST_MOUNT, errno, "mkdir %s: %s", buf, strerror(errno));
            *p = saved;
            if (!saved)
                break;
        }
    }
}

static void touch(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0444);
    if (fd < 0)
        fail(ST_MOUNT, errno, "create %s: %s", path, strerror(errno));
    close(fd);
}

static void write_file(const char *path, const char *content)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0 || write_all(fd, content, strlen(content)) < 0)
        fail(ST_MOUNT, errno, "write %s: %s", path, strerror(errno));
    close(fd);
}

/* Sources chosen by the host (work dir, extra binds) are opened by init
 * before it takes the sandbox uid, so they may sit below directories only the
 * host user can traverse (e.g. a 0700 state dir); they are bound later
 * through /proc/self/fd. */
void open_bind_sources(struct config *c)
{
    c->workdir_fd = -1;
    if (c->workdir) {
        c->workdir_fd = open(c->workdir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (c->workdir_fd < 0)
            fail(ST_MOUNT, errno, "workdir %s: %s", c->workdir, strerror(errno));
    }
    for (size_t i = 0; i < c->nbinds; i++) {
        c->binds[i].fd = open(c->binds[i].src, O_PATH | O_CLOEXEC);
        if (c->binds[i].fd < 0)
            fail(ST_MOUNT, errno, "bind source %s: %s", c->binds[i].src, strerror(errno));
    }
}

static void fd_source(char *buf, size_t len, int fd)
{
    snprintf(buf, len, OLD "/proc/self/fd/%d", fd);
}

/* Bind a host path read-only: by path under the old root (system dirs), or
 * through an O_PATH descriptor when fd >= 0. */
static void bind_ro(const char *host, int fd, const char *dst, int create, uint64_t extra)
{
    char src[PATH_MAX];
    if (fd >= 0)
        fd_source(src, sizeof src, fd);
    else if ((size_t)snprintf(src, sizeof src, OLD "%s", host) >= sizeof src)
        fail(ST_MOUNT, ENAMETOOLONG, "path too long: %.100s", host);
    if (create) {
        struct stat st;
        if (stat(src, &st) < 0)
            fail(ST_MOUNT, errno, "bind source %s: %s", host, strerror(errno));
        if (S_ISDIR(st.st_mode)) {
            mkdir_p(dst, 0755);
        } else {
            char parent[PATH_MAX];
            snprintf(parent, sizeof parent, "%s", dst);
            char *slash = strrchr(parent, '/');
            if (slash && slash != parent) {
                *slash = 0;
                mkdir_p(parent, 0755);
            }
            touch(dst);
        }
    }
    do_mount(src, dst, NULL, MS_BIND | MS_REC, NULL);
    set_attrs(dst, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | extra, 1);
}

static void system_dirs(void)
{
    static const char *const dirs[] = {"usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        char host[PATH_MAX], inside[PATH_MAX];
        snprintf(host, sizeof host, OLD "/%s", dirs[i]);
        snprintf(inside, sizeof inside, "/%s", dirs[i]);
        struct stat st;
        if (lstat(host, &st) < 0) {
            if (errno == ENOENT)
                continue;
            fail(ST_MOUNT, errno, "lstat /%s: %s", dirs[i], strerror(errno));
        }
        if (S_ISLNK(st.st_mode)) { /* usrmerge: /bin -> usr/bin */
            char target[PATH_MAX];
            ssize_t n = readlink(host, target, sizeof target - 1);
            if (n < 0)
                fail(ST_MOUNT, errno, "readlink /%s: %s", dirs[i], strerror(errno));
            target[n] = 0;
            if (symlink(target, inside) < 0)
                fail(ST_MOUNT, errno, "symlink /%s: %s", dirs[i], strerror(errno));
        } else if (S_ISDIR(st.st_mode)) {
            if (mkdir(inside, 0755) < 0)
                fail(ST_MOUNT, errno, "mkdir %s: %s", inside, strerror(errno));
            bind_ro(inside, -1, inside, 0, MOUNT_ATTR_NODEV);
        }
    }
}

static void make_etc(const struct config *c)
{
    char buf[2048];
    if (mkdir("/etc", 0755) < 0)
        fail(ST_MOUNT, errno, "mkdir /etc: %s", strerror(errno));
    if (c->uid == 0)
        snprintf(buf, sizeof buf,
                 "root:x:0:0:root:%s:/bin/sh\n"
                 "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
                 c->workdir ? c->workdir_mount : "/");
    else
        snprintf(buf, sizeof buf,
                 "root:x:0:0:root:/root:/usr/sbin/nologin\n"
                 "sandbox:x:%lld:%lld:sandbox:%s:/bin/sh\n"
                 "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
                 c->uid, c->gid, c->workdir ? c->workdir_mount : "/");
    write_file("/etc/passwd", buf);
    if (c->gid == 0)
        snprintf(buf, sizeof buf, "root:x:0:\nnogroup:x:65534:\n");
    else
        snprintf(buf, sizeof buf, "root:x:0:\nsandbox:x:%lld:\nnogroup:x:65534:\n", c->gid);
    write_file("/etc/group", buf);
    snprintf(buf, sizeof buf,
             "127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n",
             c->hostname);
    write_file("/etc/hosts", buf);
    write_file("/etc/nsswitch.conf", "passwd: files\ngroup: files\nshadow: files\n"
                                     "hosts: files dns\nnetworks: files\nprotocols: files\n"
                                     "services: files\nethers: files\nrpc: files\n");
    /* Loader cache and Debian's alternatives symlinks: no secrets, needed by
     * ordinary programs (/usr/bin/awk -> /etc/alternatives/awk). */
    struct stat st;
    if (stat(OLD "/etc/ld.so.cache", &st) == 0 && S_ISREG(st.st_mode)) {
        touch("/etc/ld.so.cache");
        bind_ro("/etc/ld.so.cache", -1, "/etc/ld.so.cache", 0, MOUNT_ATTR_NODEV);
    }
    if (stat(OLD "/etc/alternatives", &st) == 0 && S_ISDIR(st.st_mode)) {
        mkdir("/etc/alternatives", 0755);
        bind_ro("/etc/alternatives", -1, "/etc/alternatives", 0, MOUNT_ATTR_NODEV);
    }
}

static void make_proc(void)
{
    if (mkdir("/proc", 0555) < 0)
        fail(ST_MOUNT, errno, "mkdir /proc: %s", strerror(errno));
    do_mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    /* as bubblewrap: these stay read-only even for a root inside */
    static const char *const ro[] = {"/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus"};
    for (size_t i = 0; i < sizeof ro / sizeof ro[0]; i++) {
        if (access(ro[i], F_OK) < 0)
            continue;
        do_mount(ro[i], ro[i], NULL, MS_BIND | MS_REC, NULL);
        set_attrs(ro[i], MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
                             MOUNT_ATTR_NOEXEC, 1);
    }
}

static void make_dev(void)
{
    if (mkdir("/dev", 0755) < 0)
        fail(ST_MOUNT, errno, "mkdir /dev: %s", strerror(errno));
    do_mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k,nr_inodes=64");
    /* No tty, no ptmx, no pts: the program has no controlling terminal
     * (setsid) and no way to get one, which with the seccomp TIOCSTI rule
     * closes keystroke injection. */
    static const char *const nodes[] = {"null", "zero", "full", "random", "urandom"};
    for (size_t i = 0; i < sizeof nodes / sizeof nodes[0]; i++) {
        char host[64], inside[64];
        snprintf(host, sizeof host, OLD "/dev/%s", nodes[i]);
        snprintf(inside, sizeof inside, "/dev/%s", nodes[i]);
        touch(inside);
        do_mount(host, inside, NULL, MS_BIND, NULL);
        set_attrs(inside, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, 0);
    }
    static const char *const links[][2] = {{"/proc/self/fd", "/dev/fd"},
                                           {"/proc/self/fd/0", "/dev/stdin"},
                                           {"/proc/self/fd/1", "/dev/stdout"},
                                           {"/proc/self/fd/2", "/dev/stderr"}};
    for (size_t i = 0; i < sizeof links / sizeof links[0]; i++)
        if (symlink(links[i][0], links[i][1]) < 0)
            fail(ST_MOUNT, errno, "symlink %s: %s", links[i][1], strerror(errno));
    set_attrs("/dev", MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, 0);
}

static void loopback_up(void)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        fail(ST_NETWORK, errno, "socket: %s", strerror(errno));
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, "lo");
    if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
        fail(ST_NETWORK, errno, "SIOCGIFFLAGS lo: %s", strerror(errno));
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
        fail(ST_NETWORK, errno, "SIOCSIFFLAGS lo: %s", strerror(errno));
    close(s);
}

void setup_filesystem(const struct config *c)
{
    /* nothing we do may propagate back to the host */
    do_mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);

    /* Staging: a tmpfs becomes the root, the host root moves to /oldroot and
     * every bind source is taken from there (so sources under /tmp work). */
    do_mount("tmpfs", BASE, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=4m,nr_inodes=2048");
    if (chdir(BASE) < 0)
        fail(ST_PIVOT, errno, "chdir %s: %s", BASE, strerror(errno));
    if (mkdir("oldroot", 0700) < 0)
        fail(ST_PIVOT, errno, "mkdir oldroot: %s", strerror(errno));
    if (syscall(SYS_pivot_root, ".", "oldroot") < 0)
        fail(ST_PIVOT, errno, "pivot_root: %s", strerror(errno));
    if (chdir("/") < 0)
        fail(ST_PIVOT, errno, "chdir /: %s", strerror(errno));

    system_dirs();
    make_etc(c);
    make_proc(); /* needs the host's /proc still attached (mnt_too_revealing) */
    make_dev();

    if (mkdir("/tmp", 01777) < 0)
        fail(ST_MOUNT, errno, "mkdir /tmp: %s", strerror(errno));
    char opts[96];
    snprintf(opts, sizeof opts, "mode=1777,size=%lld,nr_inodes=%lld", c->tmp_bytes,
             c->tmp_bytes / 4096 + 64);
    /* programs dropped into /tmp or /work do not run (allow_exec_in_work=1
     * lifts it); only the read-only system binds and extra binds hold
     * executables */
    unsigned long noexec = c->allow_exec_in_work ? 0 : MS_NOEXEC;
    do_mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV | noexec, opts);

    for (size_t i = 0; i < c->nbinds; i++) {
        bind_ro(c->binds[i].src, c->binds[i].fd, c->binds[i].dst, 1, MOUNT_ATTR_NODEV);
        close(c->binds[i].fd);
    }

    if (c->workdir && c->workdir_bytes != (long long)RLIM_INFINITY) {
        /* a size- and inode-limited tmpfs, filled from the host work dir;
         * init keeps workdir_fd for the copy back (workfs.c) */
        mkdir_p(c->workdir_mount, 0755);
        workfs_mount(c, noexec);
    } else if (c->workdir) {
        char src[64];
        fd_source(src, sizeof src, c->workdir_fd);
        mkdir_p(c->workdir_mount, 0755);
        do_mount(src, c->workdir_mount, NULL, MS_BIND | MS_REC, NULL);
        set_attrs(c->workdir_mount, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (noexec ? MOUNT_ATTR_NOEXEC : 0), 1);
        close(c->workdir_fd);
    }

    if (umount2(OLD, MNT_DETACH) < 0)
        fail(ST_PIVOT, errno, "umount %s: %s", OLD, strerror(errno));
    if (rmdir(OLD) < 0)
        fail(ST_PIVOT, errno, "rmdir %s: %s", OLD, strerror(errno));
    /* the root itself read-only (its submounts keep their own flags) */
    set_attrs("/", MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, 0);

    if (sethostname(c->hostname, strlen(c->hostname)) < 0)
        fail(ST_HOSTNAME, errno, "sethostname: %s", strerror(errno));
    if (c->loopback && !c->allow_network)
        loopback_up();
}
