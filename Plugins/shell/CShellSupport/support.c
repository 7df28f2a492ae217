/* System-call helpers of the `shell` driver (see nova_shell_support.h). No Swift runs between
 * fork and exec: the child side of both spawn functions is plain C and async-signal-safe. */
#define _GNU_SOURCE
#include "nova_shell_support.h"

#include <dlfcn.h>
#include <pthread.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef RESOLVE_NO_MAGICLINKS
#define RESOLVE_NO_MAGICLINKS 0x02
#define RESOLVE_NO_SYMLINKS 0x04
#define RESOLVE_BENEATH 0x08
#endif

struct nova_open_how {
    uint64_t flags, mode, resolve;
};

/* Duplicates fds[i] to descriptors >= 16 (CLOEXEC) so that dup2 onto 0..n-1 cannot clobber a
 * source that happens to sit in the target range. */
static int raise_fds(const int *fds, int n, int *high)
{
    for (int i = 0; i < n; i++) {
        high[i] = -1;
        if (fds[i] < 0)
            continue;
        high[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 16);
        if (high[i] < 0) {
            int e = errno;
            for (int j = 0; j < i; j++)
                if (high[j] >= 0)
                    close(high[j]);
            return -e;
        }
    }
    return 0;
}

static void close_all(int *high, int n)
{
    for (int i = 0; i < n; i++)
        if (high[i] >= 0)
            close(high[i]);
}

int nova_shell_spawn(const char *path, char *const argv[], char *const envp[], const int *fds, int nfds, pid_t *pid_out)
{
    if (nfds < 0 || nfds > 8 || !path || !argv || !envp || !pid_out)
        return -EINVAL;
    int high[8];
    int rc = raise_fds(fds, nfds, high);
    if (rc < 0)
        return rc;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    for (int i = 0; i < nfds && rc == 0; i++) {
        if (high[i] >= 0)
            rc = posix_spawn_file_actions_adddup2(&fa, high[i], i);
        else if (i < 3)
            rc = posix_spawn_file_actions_addopen(&fa, i, "/dev/null", O_RDWR, 0);
    }
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    if (rc == 0)
        rc = posix_spawn_file_actions_addclosefrom_np(&fa, nfds > 3 ? nfds : 3);
#endif
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    if (rc == 0)
        rc = posix_spawnattr_setsigdefault(&attr, &all);
    if (rc == 0)
        rc = posix_spawnattr_setsigmask(&attr, &none);
    if (rc == 0)
        rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    if (rc == 0)
        rc = posix_spawn(pid_out, path, &fa, &attr, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close_all(high, nfds);
    return -rc;
}

int nova_shell_spawn_direct(const char *path, char *const argv[], char *const envp[], const int fds[3], const char *cwd,
                            const int64_t limits[5], int64_t uid, int64_t gid, pid_t *pid_out)
{
    if (!path || !argv || !envp || !fds || !cwd || !limits || !pid_out)
        return -EINVAL;
    int high[3];
    int rc = raise_fds(fds, 3, high);
    if (rc < 0)
        return rc;
    int ep[2];
    if (pipe2(ep, O_CLOEXEC) < 0) {
        rc = -errno;
        close_all(high, 3);
        return rc;
    }
    static const int res[5] = {RLIMIT_CPU, RLIMIT_AS, RLIMIT_NPROC, RLIMIT_NOFILE, RLIMIT_FSIZE};
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        int e = 0;
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
            _exit(127);
        sigset_t none;
        sigemptyset(&none);
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        for (int s = 1; s < NSIG; s++)
            (void)sigaction(s, &dfl, NULL);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (setsid() < 0)
            e = errno;
        for (int i = 0; i < 3 && !e; i++) {
            int src = high[i];
            if (src < 0 && (src = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)
                e = errno;
            else if (dup2(src, i) < 0)
                e = errno;
        }
        struct rlimit core = {0, 0};
        if (!e && setrlimit(RLIMIT_CORE, &core) < 0)
            e = errno;
        for (int i = 0; i < 5 && !e; i++) {
            if (limits[i] < 0)
                continue;
            struct rlimit rl = {(rlim_t)limits[i], (rlim_t)limits[i]};
            if (res[i] == RLIMIT_CPU)
                rl.rlim_max = rl.rlim_cur + 1; /* SIGXCPU first, then SIGKILL */
            if (setrlimit(res[i], &rl) < 0)
                e = errno;
        }
        /* before dropping root: the work root is 0700 and owned by the host user */
        if (!e && chdir(cwd) < 0)
            e = errno;
        if (!e && uid >= 0) {
            if (setgroups(0, NULL) < 0 || setresgid((gid_t)gid, (gid_t)gid, (gid_t)gid) < 0 ||
                setresuid((uid_t)uid, (uid_t)uid, (uid_t)uid) < 0)
                e = errno;
        }
        if (!e && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
            e = errno;
        if (!e && syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
            for (int fd = 3; fd < 4096; fd++)
                if (fd != ep[1])
                    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
        if (!e) {
            execve(path, argv, envp);
            e = errno;
        }
        (void)!write(ep[1], &e, sizeof e);
        _exit(127);
    }
    int fork_errno = errno;
    close(ep[1]);
    close_all(high, 3);
    if (pid < 0) {
        close(ep[0]);
        return -fork_errno;
    }
    int child_errno = 0;
    ssize_t n;
    do
        n = read(ep[0], &child_errno, sizeof child_errno);
    while (n < 0 && errno == EINTR);
    close(ep[0]);
    if (n == (ssize_t)sizeof child_errno) {
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
            ;
        return -(child_errno ? child_errno : EIO);
    }
    *pid_out = pid;
    return 0;
}

int nova_shell_openat2_beneath(int dirfd, const char *path, int directory)
{
    struct nova_open_how how;
    memset(&how, 0, sizeof how);
    how.flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC | (directory ? O_DIRECTORY : 0);
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    long fd;
    do
        fd = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
    while (fd < 0 && errno == EINTR);
    return fd < 0 ? -errno : (int)fd;
}

int nova_shell_pidfd_open(pid_t pid)
{
    long fd = syscall(SYS_pidfd_open, pid, 0);
    return fd < 0 ? -errno : (int)fd;
}

int nova_shell_eventfd(void)
{
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    return fd < 0 ? -errno : fd;
}

int nova_shell_memfd_with(const void *data, size_t len)
{
    int fd = memfd_create("nova-shell-config", MFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = n < 0 ? errno : EIO;
            close(fd);
            return -e;
        }
        p += n;
        left -= (size_t)n;
    }
    if (lseek(fd, 0, SEEK_SET) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

int nova_shell_pipe_size(int fd)
{
    int n = fcntl(fd, F_GETPIPE_SZ);
    return n < 0 ? -errno : n;
}

static void fill(const struct rusage *ru, int64_t *maxrss_kb, int64_t *user_us, int64_t *sys_us)
{
    if (maxrss_kb)
        *maxrss_kb = ru->ru_maxrss;
    if (user_us)
        *user_us = (int64_t)ru->ru_utime.tv_sec * 1000000 + ru->ru_utime.tv_usec;
    if (sys_us)
        *sys_us = (int64_t)ru->ru_stime.tv_sec * 1000000 + ru->ru_stime.tv_usec;
}

int nova_shell_wait(pid_t pid, int *status, int64_t *maxrss_kb, int64_t *user_us, int64_t *sys_us)
{
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    pid_t r;
    do
        r = wait4(pid, status, 0, &ru);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return -errno;
    fill(&ru, maxrss_kb, user_us, sys_us);
    return 0;
}

int nova_shell_try_wait(pid_t pid, int *status, int64_t *maxrss_kb, int64_t *user_us, int64_t *sys_us)
{
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    pid_t r;
    do
        r = wait4(pid, status, WNOHANG, &ru);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return -errno;
    if (r == 0)
        return 0;
    fill(&ru, maxrss_kb, user_us, sys_us);
    return 1;
}

int nova_shell_kill_group(pid_t pgid, int sig)
{
    return kill(-pgid, sig) < 0 ? -errno : 0;
}

const char *nova_shell_image_path(void)
{
    Dl_info info;
    if (dladdr((void *)&nova_shell_image_path, &info) == 0 || !info.dli_fname)
        return NULL;
    return info.dli_fname;
}

int nova_shell_pipe(int fds[2])
{
    return pipe2(fds, O_CLOEXEC) < 0 ? -errno : 0;
}
