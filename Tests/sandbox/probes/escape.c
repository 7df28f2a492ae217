/* Escape probes: run INSIDE nova-sandbox by Tests/sandbox/run-battery.sh.
 * `escape CASE [args]` tries one family of escapes and prints one line per
 * attempt: "ok <what>: <outcome>" when the attempt was contained with the
 * precise expected outcome, "FAIL <what>: ..." otherwise. Exit status is 0
 * iff every attempt was contained. Built dynamically: it only needs libc from
 * the read-only /usr bind. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/filter.h>
#include <linux/io_uring.h>
#include <linux/perf_event.h>
#include <linux/sched.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

static int failures;

static const char *ename(int e)
{
    const char *n = strerrorname_np(e);
    return n ? n : "?";
}

static void okf(const char *what, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void okf(const char *what, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("ok %s: ", what);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

static void failf(const char *what, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void failf(const char *what, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("FAIL %s: ", what);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    failures++;
}

/* expect a call returning -1 with errno == want */
static void expect_err(const char *what, long r, int e, int want)
{
    if (r == -1 && e == want)
        okf(what, "%s", ename(want));
    else if (r == -1)
        failf(what, "errno %s, want %s", ename(e), ename(want));
    else
        failf(what, "succeeded (%ld), want %s", r, ename(want));
}
#define EXPECT(what, call, want)                                                                   \
    do {                                                                                           \
        errno = 0;                                                                                 \
        long r_ = (long)(call);                                                                    \
        expect_err(what, r_, errno, want);                                                         \
    } while (0)

static void expect_ok(const char *what, long r)
{
    if (r >= 0)
        okf(what, "works (%ld)", r);
    else
        failf(what, "failed with %s", ename(errno));
}

/* ---------------------------------------------------------------- cases */

/* 1: host paths are not there (argv: more host paths to try) */
static void c_read_host(int argc, char **argv)
{
    static const char *const paths[] = {"/etc/shadow", "/etc/gshadow", "/root", "/root/.ssh",
                                        "/home", "/var/log", "/etc/ssh", "/oldroot",
                                        "/run", "/boot", "/srv", "/sys"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        char what[128];
        snprintf(what, sizeof what, "open %s", paths[i]);
        EXPECT(what, open(paths[i], O_RDONLY), ENOENT);
    }
    for (int i = 0; i < argc; i++) {
        char what[300];
        snprintf(what, sizeof what, "open host path %s", argv[i]);
        EXPECT(what, open(argv[i], O_RDONLY), ENOENT);
    }
    /* through init's root: init is not dumpable, so no */
    EXPECT("open /proc/1/root/etc/passwd", open("/proc/1/root/etc/passwd", O_RDONLY), EACCES);
    EXPECT("open /proc/1/environ", open("/proc/1/environ", O_RDONLY), EACCES);
}

/* 2: the root, /usr, /etc, /dev are read-only */
static void c_write_ro(void)
{
    static const char *const files[] = {"/x", "/usr/x", "/usr/bin/x", "/etc/x", "/bin/x",
                                        "/lib/x", "/dev/x", "/tmp/../x", "/work/../x"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "create %s", files[i]);
        EXPECT(what, open(files[i], O_WRONLY | O_CREAT | O_EXCL, 0644), EROFS);
    }
    EXPECT("open /etc/passwd for writing", open("/etc/passwd", O_WRONLY), EROFS);
    EXPECT("mkdir /etc/d", mkdir("/etc/d", 0755), EROFS);
    EXPECT("mkdir /usr/d", mkdir("/usr/d", 0755), EROFS);
    EXPECT("unlink /etc/passwd", unlink("/etc/passwd"), EROFS);
    EXPECT("chmod /etc/passwd", chmod("/etc/passwd", 0666), EROFS);
    EXPECT("rename /etc/hosts", rename("/etc/hosts", "/etc/hosts2"), EROFS);
    EXPECT("truncate /etc/passwd", truncate("/etc/passwd", 0), EROFS);
    EXPECT("rename /usr/bin/true", rename("/usr/bin/true", "/usr/bin/true2"), EROFS);
    EXPECT("symlink in /etc", symlink("/x", "/etc/l"), EROFS);
    EXPECT("utimes /usr/bin/true", utimensat(AT_FDCWD, "/usr/bin/true", NULL, 0), EROFS);
}

/* 3: ".." never leaves the work dir's bind for anything writable */
static void c_dotdot(void)
{
    EXPECT("create ../escape from cwd /work", open("../escape", O_WRONLY | O_CREAT, 0644), EROFS);
    EXPECT("create /work/../escape", open("/work/../escape", O_WRONLY | O_CREAT, 0644), EROFS);
    EXPECT("create /work/../../../../escape",
           open("/work/../../../../escape", O_WRONLY | O_CREAT, 0644), EROFS);
    EXPECT("mkdir /work/../../d", mkdir("/work/../../d", 0755), EROFS);
    if (symlink("/", "/work/rootlink") == 0) {
        EXPECT("create through symlink /work/rootlink/escape",
               open("/work/rootlink/escape", O_WRONLY | O_CREAT, 0644), EROFS);
        unlink("/work/rootlink");
    } else {
        failf("symlink in work dir", "%s", ename(errno));
    }
    int d = open("/work", O_RDONLY | O_DIRECTORY);
    EXPECT("openat(workfd, \"../../escape\")", openat(d, "../../escape", O_WRONLY | O_CREAT, 0644),
           EROFS);
    close(d);
    char cwd[256];
    if (getcwd(cwd, sizeof cwd) && !strcmp(cwd, "/work"))
        okf("cwd", "%s", cwd);
    else
        failf("cwd", "not /work");
}

/* 4: plant symlinks to host secrets; the host must refuse to follow them */
static void c_plant(int argc, char **argv)
{
    const char *secret = argc > 0 ? argv[0] : "/etc/shadow";
    expect_ok("symlink result.txt -> host secret", symlink(secret, "/work/result.txt"));
    expect_ok("symlink rel.txt -> ../../../..secret", symlink("../../../../../../etc/shadow", "/work/rel.txt"));
    expect_ok("symlink outdir -> /root", symlink("/root", "/work/outdir"));
    expect_ok("mkdir sub", mkdir("/work/sub", 0755));
    expect_ok("symlink sub/deep -> /etc", symlink("/etc", "/work/sub/deep"));
    expect_ok("mkfifo fifo.txt (would block a naive reader)", mkfifo("/work/fifo.txt", 0644));
    int fd = open("/work/ok.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0 && write(fd, "plain result\n", 13) == 13)
        okf("write ok.txt", "done");
    else
        failf("write ok.txt", "%s", ename(errno));
    if (fd >= 0)
        close(fd);
}

/* 5: hardlinks to read-only files */
static void c_hardlink(void)
{
    EXPECT("link /usr/bin/true -> /work/true", link("/usr/bin/true", "/work/true"), EXDEV);
    EXPECT("link /etc/passwd -> /work/passwd", link("/etc/passwd", "/work/passwd"), EXDEV);
    EXPECT("link /etc/passwd -> /etc/p2", link("/etc/passwd", "/etc/p2"), EROFS);
    EXPECT("link /usr/bin/true -> /tmp/true", link("/usr/bin/true", "/tmp/true"), EXDEV);
    EXPECT("link /proc/self/exe -> /work/exe", linkat(AT_FDCWD, "/proc/self/exe", AT_FDCWD, "/work/exe", AT_SYMLINK_FOLLOW), EXDEV);
}

/* 6: no network: TCP/UDP to the host's loopback listener, DNS */
static void c_net(int argc, char **argv)
{
    int tport = argc > 0 ? atoi(argv[0]) : 9;
    int uport = argc > 1 ? atoi(argv[1]) : 9;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)tport)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    EXPECT("tcp connect 127.0.0.1", connect(s, (struct sockaddr *)&a, sizeof a), ENETUNREACH);
    close(s);
    s = socket(AF_INET, SOCK_DGRAM, 0);
    a.sin_port = htons((uint16_t)uport);
    EXPECT("udp sendto 127.0.0.1", sendto(s, "x", 1, 0, (struct sockaddr *)&a, sizeof a), ENETUNREACH);
    close(s);
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)tport)};
    inet_pton(AF_INET6, "::1", &a6.sin6_addr);
    s = socket(AF_INET6, SOCK_STREAM, 0);
    /* lo is down: ::1 is not even configured */
    EXPECT("tcp connect [::1]", connect(s, (struct sockaddr *)&a6, sizeof a6), EADDRNOTAVAIL);
    close(s);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo("example.com", "80", &hints, &res);
    if (rc == EAI_AGAIN)
        okf("dns lookup example.com", "EAI_AGAIN (%s)", gai_strerror(rc));
    else
        failf("dns lookup example.com", "rc %d (%s), want EAI_AGAIN", rc, rc ? gai_strerror(rc) : "resolved");
    struct if_nameindex *ifs = if_nameindex();
    int n = 0, only_lo = 1;
    for (struct if_nameindex *i = ifs; i && i->if_index; i++, n++)
        if (strcmp(i->if_name, "lo"))
            only_lo = 0;
    if (ifs && n == 1 && only_lo)
        okf("interfaces", "only lo");
    else
        failf("interfaces", "%d interfaces", n);
    EXPECT("socket AF_VSOCK (hypervisor)", socket(AF_VSOCK, SOCK_STREAM, 0), EPERM);
    EXPECT("socket AF_PACKET", socket(AF_PACKET, SOCK_RAW, 0), EPERM);
}

/* 7: abstract unix sockets are per network namespace */
static void c_abstract(int argc, char **argv)
{
    const char *name = argc > 0 ? argv[0] : "nova-battery";
    struct sockaddr_un u = {.sun_family = AF_UNIX};
    size_t n = strlen(name);
    memcpy(u.sun_path + 1, name, n);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    EXPECT("connect @name", connect(s, (struct sockaddr *)&u, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n)),
           ECONNREFUSED);
    close(s);
    u.sun_path[1 + n] = '.';
    u.sun_path[2 + n] = 'd';
    n += 2;
    s = socket(AF_UNIX, SOCK_DGRAM, 0);
    EXPECT("sendto @name.d (dgram)", sendto(s, "x", 1, 0, (struct sockaddr *)&u, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n)),
           ECONNREFUSED);
    close(s);
}

/* 8: fork bomb */
static void c_forkbomb(int argc, char **argv)
{
    long limit = argc > 0 ? atol(argv[0]) : 64;
    long made = 0;
    int err = 0;
    for (int i = 0; i < 100000; i++) {
        pid_t p = fork();
        if (p == 0) {
            for (;;) { /* every child is a bomb too */
                if (fork() < 0)
                    pause();
            }
        }
        if (p < 0) {
            err = errno;
            break;
        }
        made++;
    }
    if (err == EAGAIN)
        okf("fork bomb", "fork failed with EAGAIN after %ld direct children", made);
    else
        failf("fork bomb", "errno %s after %ld forks", ename(err), made);
    usleep(300000);
    errno = 0;
    pid_t p = fork();
    if (p == 0)
        _exit(0);
    if (p < 0 && errno == EAGAIN)
        okf("fork later", "still EAGAIN");
    else
        failf("fork later", "fork returned %d (%s)", (int)p, ename(errno));
    int procs = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] >= '0' && e->d_name[0] <= '9')
            procs++;
    if (d)
        closedir(d);
    if (procs <= limit + 1)
        okf("process count", "%d processes in the sandbox (nproc %ld)", procs, limit);
    else
        failf("process count", "%d processes > nproc %ld", procs, limit);
}

/* 9: memory bomb */
static void c_membomb(int argc, char **argv)
{
    long long limit = argc > 0 ? atoll(argv[0]) : (1LL << 30);
    size_t chunk = 16 << 20, total = 0;
    int err = 0;
    for (int i = 0; i < 100000; i++) {
        char *p = malloc(chunk);
        if (!p) {
            err = errno;
            break;
        }
        memset(p, 1, chunk);
        total += chunk;
    }
    if (err == ENOMEM && (long long)total < limit)
        okf("malloc bomb", "ENOMEM after %zu MiB (limit %lld MiB)", total >> 20, limit >> 20);
    else
        failf("malloc bomb", "errno %s after %zu MiB", ename(err), total >> 20);
    errno = 0;
    void *m = mmap(NULL, (size_t)limit, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED && errno == ENOMEM)
        okf("mmap of the whole limit", "ENOMEM");
    else
        failf("mmap of the whole limit", "%s", m == MAP_FAILED ? ename(errno) : "succeeded");
}

/* 10: CPU loop (killed by RLIMIT_CPU) */
static void c_cpuloop(void)
{
    volatile unsigned long x = 0;
    for (;;)
        x++;
}

/* deadline: processes that would outlive everything */
static void c_sleepers(void)
{
    for (int i = 0; i < 4; i++) {
        pid_t p = fork();
        if (p == 0) {
            setsid();
            signal(SIGTERM, SIG_IGN);
            signal(SIGHUP, SIG_IGN);
            for (;;)
                pause();
        }
    }
    signal(SIGTERM, SIG_IGN);
    printf("sleepers started\n");
    fflush(stdout);
    for (;;)
        pause();
}

/* 12: file size and descriptor limits */
static void fill(const char *path, long long fsize)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        failf(path, "open: %s", ename(errno));
        return;
    }
    static char buf[65536];
    memset(buf, 'x', sizeof buf);
    long long total = 0;
    int err = 0;
    for (;;) {
        ssize_t n = write(fd, buf, sizeof buf);
        if (n < 0) {
            err = errno;
            break;
        }
        total += n;
        if (total > (1LL << 34))
            break;
    }
    close(fd);
    unlink(path);
    char what[64];
    snprintf(what, sizeof what, "fill %s", path);
    if (err == EFBIG && total == fsize)
        okf(what, "EFBIG at %lld bytes", total);
    else
        failf(what, "errno %s at %lld bytes (fsize %lld)", ename(err), total, fsize);
}

static void c_fill(int argc, char **argv)
{
    long long fsize = argc > 0 ? atoll(argv[0]) : 0;
    long nofile = argc > 1 ? atol(argv[1]) : 0;
    signal(SIGXFSZ, SIG_IGN);
    fill("/work/big", fsize);
    fill("/tmp/big", fsize);
    int n = 0, err = 0, maxfd = -1;
    for (;;) {
        int fd = open("/dev/null", O_RDONLY);
        if (fd < 0) {
            err = errno;
            break;
        }
        if (fd > maxfd)
            maxfd = fd;
        n++;
    }
    if (err == EMFILE && maxfd == nofile - 1)
        okf("exhaust fds", "EMFILE after %d opens (nofile %ld)", n, nofile);
    else
        failf("exhaust fds", "errno %s after %d opens, max fd %d (nofile %ld)", ename(err), n, maxfd, nofile);
    struct rlimit rl = {RLIM_INFINITY, RLIM_INFINITY};
    EXPECT("raise RLIMIT_NOFILE", setrlimit(RLIMIT_NOFILE, &rl), EPERM);
    EXPECT("raise RLIMIT_FSIZE", setrlimit(RLIMIT_FSIZE, &rl), EPERM);
}

/* 13: ptrace and cross-process memory access */
static void c_ptrace(void)
{
    char buf[16];
    struct iovec l = {buf, sizeof buf}, r = {(void *)0x400000, sizeof buf};
    EXPECT("ptrace ATTACH parent", ptrace(PTRACE_ATTACH, getppid(), 0, 0), EPERM);
    EXPECT("ptrace ATTACH pid 1", ptrace(PTRACE_ATTACH, 1, 0, 0), EPERM);
    EXPECT("ptrace SEIZE pid 1", ptrace(PTRACE_SEIZE, 1, 0, 0), EPERM);
    EXPECT("ptrace TRACEME", ptrace(PTRACE_TRACEME, 0, 0, 0), EPERM);
    EXPECT("process_vm_readv pid 1", process_vm_readv(1, &l, 1, &r, 1, 0), EPERM);
    EXPECT("process_vm_writev pid 1", process_vm_writev(1, &l, 1, &r, 1, 0), EPERM);
    pid_t c = fork();
    if (c == 0) {
        pause();
        _exit(0);
    }
    EXPECT("ptrace ATTACH own child", ptrace(PTRACE_ATTACH, c, 0, 0), EPERM);
    EXPECT("process_vm_readv own child", process_vm_readv(c, &l, 1, &r, 1, 0), EPERM);
    kill(c, SIGKILL);
    waitpid(c, NULL, 0);
    EXPECT("open /proc/1/mem", open("/proc/1/mem", O_RDWR), EACCES);
    EXPECT("kcmp", syscall(SYS_kcmp, 1, getpid(), 0, 0, 0), EPERM);
    EXPECT("pidfd_getfd", syscall(SYS_pidfd_getfd, 0, 0, 0), EPERM);
}

/* 14: signals to host processes */
static void c_kill(int argc, char **argv)
{
    pid_t host = argc > 0 ? (pid_t)atoi(argv[0]) : 1;
    EXPECT("kill -9 host process", kill(host, SIGKILL), ESRCH);
    EXPECT("kill -9 -1 (everything visible)", kill(-1, SIGKILL), ESRCH);
    EXPECT("kill -9 host process group", kill(-host, SIGKILL), ESRCH);
    if (kill(1, SIGKILL) == 0)
        okf("kill -9 pid 1", "delivered nowhere (namespace init ignores it)");
    else
        okf("kill -9 pid 1", "%s", ename(errno));
    /* a forged "from outside" SIGTERM must not make init tear the sandbox down */
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_signo = SIGTERM;
    si.si_code = SI_QUEUE;
    si.si_pid = 0;
    si.si_uid = 0;
    long r = syscall(SYS_rt_sigqueueinfo, 1, SIGTERM, &si);
    si.si_code = SI_USER;
    EXPECT("rt_sigqueueinfo(1, SIGTERM, si_code SI_USER)", syscall(SYS_rt_sigqueueinfo, 1, SIGTERM, &si), EPERM);
    kill(1, SIGTERM);
    usleep(200000);
    okf("forged SIGTERMs to init (sigqueue r=" , "%ld): the sandbox is still running", r);
}

/* 15: mount and friends */
static void c_mount(void)
{
    EXPECT("mount tmpfs", mount("none", "/tmp", "tmpfs", 0, NULL), EPERM);
    EXPECT("mount bind", mount("/work", "/tmp", NULL, MS_BIND, NULL), EPERM);
    EXPECT("remount / rw", mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND, NULL), EPERM);
    EXPECT("umount2 /proc", umount2("/proc", MNT_DETACH), EPERM);
    EXPECT("umount2 /work", umount2("/work", 0), EPERM);
    EXPECT("chroot /tmp", chroot("/tmp"), EPERM);
    EXPECT("pivot_root", syscall(SYS_pivot_root, "/tmp", "/tmp"), EPERM);
    EXPECT("sethostname", sethostname("evil", 4), EPERM);
    EXPECT("setdomainname", setdomainname("evil", 4), EPERM);
    EXPECT("fsopen tmpfs", syscall(SYS_fsopen, "tmpfs", 0), EPERM);
    EXPECT("open_tree clone", syscall(SYS_open_tree, AT_FDCWD, "/usr", 1 /* OPEN_TREE_CLONE */), EPERM);
    EXPECT("move_mount", syscall(SYS_move_mount, AT_FDCWD, "/work", AT_FDCWD, "/tmp", 0), EPERM);
    EXPECT("mount_setattr", syscall(SYS_mount_setattr, AT_FDCWD, "/", 0, NULL, 0), EPERM);
}

/* 16: namespaces */
static void *thread_fn(void *a) { return a; }

static void c_ns(void)
{
    EXPECT("unshare(CLONE_NEWUSER)", unshare(CLONE_NEWUSER), EPERM);
    EXPECT("unshare(CLONE_NEWNS)", unshare(CLONE_NEWNS), EPERM);
    EXPECT("unshare(CLONE_NEWNET)", unshare(CLONE_NEWNET), EPERM);
    int fd = open("/proc/self/ns/user", O_RDONLY);
    EXPECT("setns(user)", setns(fd, 0), EPERM);
    close(fd);
    struct clone_args ca;
    memset(&ca, 0, sizeof ca);
    ca.flags = CLONE_NEWUSER;
    ca.exit_signal = SIGCHLD;
    EXPECT("clone3(CLONE_NEWUSER)", syscall(SYS_clone3, &ca, sizeof ca), ENOSYS);
    ca.flags = CLONE_NEWPID | CLONE_NEWNS;
    EXPECT("clone3(CLONE_NEWPID|CLONE_NEWNS)", syscall(SYS_clone3, &ca, sizeof ca), ENOSYS);
    ca.flags = 0;
    EXPECT("clone3(0)", syscall(SYS_clone3, &ca, sizeof ca), ENOSYS);
    static const struct { const char *n; unsigned long f; } fl[] = {
        {"clone(CLONE_NEWUSER)", CLONE_NEWUSER}, {"clone(CLONE_NEWNS)", CLONE_NEWNS},
        {"clone(CLONE_NEWPID)", CLONE_NEWPID},   {"clone(CLONE_NEWNET)", CLONE_NEWNET},
        {"clone(CLONE_NEWIPC)", CLONE_NEWIPC},   {"clone(CLONE_NEWUTS)", CLONE_NEWUTS},
        {"clone(CLONE_NEWCGROUP)", CLONE_NEWCGROUP},
        {"clone(CLONE_NEWUSER|1<<32)", CLONE_NEWUSER | (1UL << 32)}};
    for (size_t i = 0; i < sizeof fl / sizeof fl[0]; i++) {
        errno = 0;
        long r = syscall(SYS_clone, fl[i].f | SIGCHLD, 0, 0, 0, 0);
        if (r == 0)
            _exit(0);
        if (r > 0)
            waitpid((pid_t)r, NULL, 0);
        expect_err(fl[i].n, r, errno, EPERM);
    }
    pid_t p = fork();
    if (p == 0)
        _exit(7);
    int st = 0;
    if (p > 0 && waitpid(p, &st, 0) == p && WIFEXITED(st) && WEXITSTATUS(st) == 7)
        okf("plain fork (glibc falls back from clone3)", "works");
    else
        failf("plain fork", "%s", ename(errno));
    pthread_t t;
    if (pthread_create(&t, NULL, thread_fn, NULL) == 0 && pthread_join(t, NULL) == 0)
        okf("pthread_create", "works");
    else
        failf("pthread_create", "failed");
}

/* 17 */
static void c_keys(void)
{
    struct io_uring_params prm;
    memset(&prm, 0, sizeof prm);
    EXPECT("keyctl", syscall(SYS_keyctl, 0 /* GET_KEYRING_ID */, -3 /* session */, 0), EPERM);
    EXPECT("add_key", syscall(SYS_add_key, "user", "k", "v", 1, -3), EPERM);
    EXPECT("request_key", syscall(SYS_request_key, "user", "k", NULL, 0), EPERM);
    EXPECT("io_uring_setup", syscall(SYS_io_uring_setup, 8, &prm), EPERM);
    EXPECT("io_uring_enter", syscall(SYS_io_uring_enter, 0, 1, 0, 0, NULL, 0), EPERM);
    EXPECT("io_uring_register", syscall(SYS_io_uring_register, 0, 0, NULL, 0), EPERM);
}

/* 18 */
static void c_kernel(void)
{
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    struct bpf_insn insns[2] = {{.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = 0},
                                {.code = BPF_JMP | BPF_EXIT}};
    attr.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
    attr.insns = (uintptr_t)insns;
    attr.insn_cnt = 2;
    attr.license = (uintptr_t) "GPL";
    EXPECT("bpf(PROG_LOAD)", syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof attr), EPERM);
    struct perf_event_attr pe;
    memset(&pe, 0, sizeof pe);
    pe.size = sizeof pe;
    pe.type = PERF_TYPE_SOFTWARE;
    pe.config = PERF_COUNT_SW_CPU_CLOCK;
    EXPECT("perf_event_open", syscall(SYS_perf_event_open, &pe, 0, -1, -1, 0), EPERM);
    EXPECT("userfaultfd", syscall(SYS_userfaultfd, 0), EPERM);
    EXPECT("personality(PER_LINUX32)", personality(PER_LINUX32), EPERM);
    EXPECT("personality(READ_IMPLIES_EXEC)", personality(READ_IMPLIES_EXEC), EPERM);
    EXPECT("init_module", syscall(SYS_init_module, NULL, 0, ""), EPERM);
    EXPECT("reboot", syscall(SYS_reboot, 0, 0, 0, NULL), EPERM);
    EXPECT("kexec_load", syscall(SYS_kexec_load, 0, 0, NULL, 0), EPERM);
    EXPECT("acct", acct("/tmp/acct"), EPERM);
    EXPECT("open_by_handle_at", syscall(SYS_open_by_handle_at, AT_FDCWD, NULL, 0), EPERM);
}

/* 40: hardening of issue 10.5 */
static void expect_socket_refused(const char *what, int family)
{
    int fd = socket(family, SOCK_DGRAM, 0);
    int e = errno;
    if (fd < 0 && e == EPERM)
        okf(what, "EPERM");
    else {
        failf(what, "got %s", fd >= 0 ? "a socket" : ename(e));
        if (fd >= 0)
            close(fd);
    }
}

static void expect_socket_allowed(const char *what, int family, int type)
{
    int fd = socket(family, type, 0);
    if (fd >= 0) {
        okf(what, "allowed");
        close(fd);
    } else if (errno == EPERM)
        failf(what, "EPERM (the filter refuses a family the sandbox allows)");
    else
        okf(what, "not refused by the filter (%s)", ename(errno));
}

static void expect_limit(const char *what, int res, rlim_t max)
{
    struct rlimit rl;
    if (getrlimit(res, &rl) != 0)
        failf(what, "getrlimit: %s", ename(errno));
    else if (rl.rlim_cur <= max && rl.rlim_max <= max)
        okf(what, "%llu/%llu", (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max);
    else
        failf(what, "%llu/%llu, want at most %llu", (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max,
              (unsigned long long)max);
}

static void c_harden(void)
{
#if defined(__x86_64__)
    char ldt[16];
    EXPECT("modify_ldt", syscall(154, 0, ldt, sizeof ldt), EPERM);
    EXPECT("statmount", syscall(457, NULL, NULL, 0, 0), EPERM);
    EXPECT("listmount", syscall(458, NULL, NULL, 0, 0), EPERM);
    EXPECT("lsm_set_self_attr", syscall(460, 0, NULL, 0, 0), EPERM);
    EXPECT("open_tree_attr", syscall(467, AT_FDCWD, "/", 0, NULL, 0), EPERM);
#endif
    expect_socket_refused("socket(AF_PACKET)", AF_PACKET);
    expect_socket_refused("socket(AF_KEY)", AF_KEY);
    expect_socket_refused("socket(AF_CAN)", 29);
    expect_socket_refused("socket(AF_NFC)", 39);
    expect_socket_refused("socket(AF_QIPCRTR)", 42);
    expect_socket_refused("socket(AF_VSOCK)", AF_VSOCK);
    expect_socket_refused("socket(63)", 63);
    expect_socket_allowed("socket(AF_UNIX)", AF_UNIX, SOCK_STREAM);
    expect_socket_allowed("socket(AF_INET)", AF_INET, SOCK_STREAM);
    expect_socket_allowed("socket(AF_INET6)", AF_INET6, SOCK_DGRAM);
    expect_socket_allowed("socket(AF_NETLINK)", AF_NETLINK, SOCK_RAW);
    expect_limit("RLIMIT_RTPRIO", RLIMIT_RTPRIO, 0);
    expect_limit("RLIMIT_RTTIME", RLIMIT_RTTIME, 0);
    expect_limit("RLIMIT_NICE", RLIMIT_NICE, 0);
    expect_limit("RLIMIT_MEMLOCK", RLIMIT_MEMLOCK, 64 * 1024);
    static const char *const hooks[] = {"GCONV_PATH", "LOCPATH", "BASH_ENV", "GLIBC_TUNABLES", "LD_PRELOAD", "ENV", "PS4"};
    for (size_t i = 0; i < sizeof hooks / sizeof hooks[0]; i++) {
        if (getenv(hooks[i]))
            failf("hook variable dropped", "%s=%s reached the program", hooks[i], getenv(hooks[i]));
        else
            okf("hook variable dropped", "%s absent", hooks[i]);
    }
    if (getenv("LANG"))
        okf("allowed variable passed", "LANG=%s", getenv("LANG"));
    else
        failf("allowed variable passed", "LANG missing (the test would prove nothing)");
}

/* 19: keystroke injection */
static void c_tiocsti(void)
{
    char c = 'X';
    /* The helper gives a sandbox no terminal (it refuses one on stdin): the filter's EPERM
     * comes before the kernel's ENOTTY, so /dev/null on fd 0 proves the rule. */
    struct termios t;
    errno = 0;
    if (ioctl(0, TCGETS, &t) < 0 && errno == ENOTTY)
        okf("ioctl(0, TCGETS) reaches the kernel", "ENOTTY (fd 0 is no terminal)");
    else
        failf("ioctl(0, TCGETS) reaches the kernel", "%s", ename(errno));
    EXPECT("ioctl(0, TIOCSTI)", ioctl(0, TIOCSTI, &c), EPERM);
    EXPECT("ioctl(0, TIOCSTI | 1<<32)", syscall(SYS_ioctl, 0, (unsigned long)TIOCSTI | (1UL << 32), &c), EPERM);
    EXPECT("ioctl(0, TIOCSTI | 0xffffffff00000000)", syscall(SYS_ioctl, 0, (unsigned long)TIOCSTI | 0xffffffff00000000UL, &c), EPERM);
    char sub = 0;
    EXPECT("ioctl(0, TIOCLINUX)", ioctl(0, TIOCLINUX, &sub), EPERM);
    int n = open("/dev/null", O_RDONLY);
    /* on /dev/null the kernel would say ENOTTY: EPERM proves the filter */
    EXPECT("ioctl(/dev/null, TIOCSTI)", ioctl(n, TIOCSTI, &c), EPERM);
    close(n);
    EXPECT("open /dev/tty", open("/dev/tty", O_RDWR), ENOENT);
    /* no terminal to take as a controlling one (the helper refuses a terminal on fds 0-2) */
    if (setsid() >= 0) {
        errno = 0;
        if (ioctl(0, TIOCSCTTY, 1) < 0 && (errno == EPERM || errno == ENOTTY))
            okf("TIOCSCTTY on stdin after setsid", "%s", ename(errno));
        else
            failf("TIOCSCTTY on stdin after setsid", "got a controlling terminal (%s)", ename(errno));
    }
    EXPECT("ioctl(0, TIOCSTI) after setsid", ioctl(0, TIOCSTI, &c), EPERM);
}

/* 20: foreign-arch system calls */
static void c_int80(void)
{
#if defined(__x86_64__)
    printf("calling getpid through int 0x80\n");
    fflush(stdout);
    long ret;
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory");
    failf("int 0x80", "returned %ld instead of being killed", ret);
#else
    failf("int 0x80", "not an x86_64 build");
#endif
}

static void c_x32(void)
{
#if defined(__x86_64__)
    printf("calling getpid through the x32 ABI\n");
    fflush(stdout);
    long r = syscall(0x40000000L | SYS_getpid);
    failf("x32 getpid", "returned %ld instead of being killed", r);
#else
    failf("x32", "not an x86_64 build");
#endif
}

/* 21: own executable, setuid binaries, capabilities */
static void c_exe(int argc, char **argv)
{
    EXPECT("open /proc/self/exe for writing", open("/proc/self/exe", O_WRONLY), EACCES);
    EXPECT("open /proc/self/exe O_RDWR", open("/proc/self/exe", O_RDWR), EACCES);
    char line[256];
    FILE *f = fopen("/proc/self/status", "r");
    int caps_zero = 1, nnp = 0;
    while (f && fgets(line, sizeof line, f)) {
        if (!strncmp(line, "Cap", 3) && !strstr(line, "0000000000000000"))
            caps_zero = 0;
        if (!strncmp(line, "NoNewPrivs:\t1", 13))
            nnp = 1;
    }
    if (f)
        fclose(f);
    caps_zero ? okf("capability sets", "all empty") : failf("capability sets", "not empty");
    nnp ? okf("no_new_privs", "set") : failf("no_new_privs", "not set");
    if (argc < 1) {
        failf("setuid probe", "no path given");
        return;
    }
    struct stat st;
    if (stat(argv[0], &st) == 0 && (st.st_mode & S_ISUID))
        okf("setuid binary present", "%s mode %o", argv[0], st.st_mode & 07777);
    else
        failf("setuid binary present", "%s is not setuid", argv[0]);
    int p[2];
    if (pipe(p) < 0)
        return;
    pid_t c = fork();
    if (c == 0) {
        dup2(p[1], 1);
        execl(argv[0], argv[0], (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    char out[256] = "";
    ssize_t n = read(p[0], out, sizeof out - 1);
    out[n > 0 ? n : 0] = 0;
    waitpid(c, NULL, 0);
    char want[64];
    snprintf(want, sizeof want, "euid=%d ", (int)geteuid());
    if (strstr(out, want) && strstr(out, "capeff=0000000000000000"))
        okf("run setuid-root binary", "no privilege gained (%.*s)", (int)strcspn(out, "\n"), out);
    else
        failf("run setuid-root binary", "got \"%s\"", out);
    /* uid 0 does not even exist in the sandbox's user namespace */
    EXPECT("setuid(0)", setuid(0), EINVAL);
    EXPECT("setgid(0)", setgid(0), EINVAL);
}

/* 22: inherited descriptors */
static void c_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int dfd = d ? dirfd(d) : -1, extra = 0;
    struct dirent *e;
    char list[256] = "";
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        int fd = atoi(e->d_name);
        if (fd == dfd)
            continue;
        strncat(list, e->d_name, sizeof list - strlen(list) - 2);
        strcat(list, " ");
        if (fd > 2)
            extra++;
    }
    if (d)
        closedir(d);
    extra ? failf("open descriptors", "%s", list) : okf("open descriptors", "only %s", list);
    char b;
    for (int fd = 3; fd < 64; fd++) {
        errno = 0;
        if (read(fd, &b, 1) != -1 || errno != EBADF) {
            failf("read inherited fd", "fd %d is open", fd);
            return;
        }
    }
    okf("read fds 3..63", "EBADF");
}

/* 23: arguments are data */
static void c_argv(int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        printf("arg[%d]=<%s>\n", i, argv[i]);
}

/* 24: environment */
extern char **environ;
static void c_env(void)
{
    for (char **e = environ; *e; e++)
        printf("env=<%s>\n", *e);
}

/* 27: hostname, pids, /sys */
static void c_isolation(int argc, char **argv)
{
    struct utsname u;
    uname(&u);
    !strcmp(u.nodename, "nova-sandbox") ? okf("hostname", "%s", u.nodename)
                                        : failf("hostname", "%s", u.nodename);
    getpid() == 2 ? okf("own pid", "2") : failf("own pid", "%d", (int)getpid());
    int n = 0, big = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] >= '0' && e->d_name[0] <= '9') {
            n++;
            if (atoi(e->d_name) > 2)
                big++;
        }
    if (d)
        closedir(d);
    (n == 2 && !big) ? okf("/proc pids", "only 1 and 2") : failf("/proc pids", "%d entries", n);
    for (int i = 0; i < argc; i++) {
        pid_t hp = (pid_t)atoi(argv[i]);
        char path[64], what[96];
        snprintf(path, sizeof path, "/proc/%d", (int)hp);
        snprintf(what, sizeof what, "stat /proc/<host pid %d>", (int)hp);
        struct stat st;
        EXPECT(what, stat(path, &st), ENOENT);
        snprintf(what, sizeof what, "kill(<host pid %d>, 0)", (int)hp);
        EXPECT(what, kill(hp, 0), ESRCH);
    }
    EXPECT("opendir /sys", (long)(opendir("/sys") ? 0 : -1), ENOENT);
    char buf[64] = "";
    FILE *f = fopen("/proc/sys/kernel/hostname", "r");
    if (f && fgets(buf, sizeof buf, f) && !strncmp(buf, "nova-sandbox", 12))
        okf("/proc/sys/kernel/hostname", "nova-sandbox");
    else
        failf("/proc/sys/kernel/hostname", "%s", buf);
    if (f)
        fclose(f);
    EXPECT("write /proc/sys/kernel/hostname", open("/proc/sys/kernel/hostname", O_WRONLY), EACCES);
}

/* 36: memory outside RLIMIT_AS: data held in memfds (written, never mapped)
 * or in SysV shared memory (attached, touched, detached) is in no process's
 * address space. `memhold memfd|shm BYTES` tries to hold BYTES and reports
 * how far it got; holding all of it is the escape. The contained outcomes are
 * asserted by the battery (killed by the cgroup, or refused). */
static void c_memhold(int argc, char **argv)
{
    const char *kind = argc > 0 ? argv[0] : "memfd";
    long long want = argc > 1 ? atoll(argv[1]) : (256LL << 20);
    size_t piece = 16 << 20, chunk = 1 << 20;
    static char buf[1 << 20];
    memset(buf, 'm', sizeof buf);
    long long held = 0;
    int err = 0;
    const char *stop = "-";
    signal(SIGXFSZ, SIG_IGN);
    while (held < want && !err) {
        if (!strcmp(kind, "memfd")) {
            int fd = (int)syscall(SYS_memfd_create, "hold", 0);
            if (fd < 0) {
                err = errno;
                stop = "memfd_create";
                break;
            }
            for (size_t off = 0; off < piece && held < want; off += chunk) {
                if (write(fd, buf, chunk) != (ssize_t)chunk) {
                    err = errno ? errno : ENOSPC;
                    stop = "write";
                    break;
                }
                held += (long long)chunk;
            }
        } else {
            int id = shmget(IPC_PRIVATE, piece, IPC_CREAT | 0600);
            if (id < 0) {
                err = errno;
                stop = "shmget";
                break;
            }
            char *m = shmat(id, NULL, 0);
            if (m == (void *)-1) {
                err = errno;
                stop = "shmat";
                break;
            }
            memset(m, 's', piece);
            shmdt(m);
            held += (long long)piece;
        }
        printf("held %lld MiB\n", held >> 20);
    }
    if (held >= want)
        failf(kind, "held all %lld MiB outside every limit", want >> 20);
    else
        okf(kind, "held %lld of %lld MiB, stopped by %s: %s", held >> 20, want >> 20, stop, ename(err));
}

/* 37: the work dir's size and inode limits: `diskfill BYTES FILES` writes
 * up to BYTES (in files below fsize) and creates up to FILES empty files;
 * reaching either is the escape. */
static void c_diskfill(int argc, char **argv)
{
    long long want = argc > 0 ? atoll(argv[0]) : (1LL << 30);
    long want_files = argc > 1 ? atol(argv[1]) : 100000;
    static char buf[1 << 16];
    memset(buf, 'd', sizeof buf);
    signal(SIGXFSZ, SIG_IGN);
    long long total = 0;
    int err = 0;
    for (int i = 0; total < want && !err; i++) {
        char name[64];
        snprintf(name, sizeof name, "/work/big%d", i);
        int fd = open(name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) {
            err = errno;
            break;
        }
        for (long long f = 0; f < (1LL << 20) && total < want; f += (long long)sizeof buf) {
            ssize_t n = write(fd, buf, sizeof buf);
            if (n < 0) {
                err = errno;
                break;
            }
            total += n;
        }
        close(fd);
    }
    if (err == ENOSPC && total < want)
        okf("fill the work dir", "ENOSPC after %lld MiB", total >> 20);
    else
        failf("fill the work dir", "errno %s after %lld MiB (asked %lld)", ename(err), total >> 20, want >> 20);
    /* free the space again, then run out of inodes */
    for (int i = 0;; i++) {
        char name[64];
        snprintf(name, sizeof name, "/work/big%d", i);
        if (unlink(name) < 0)
            break;
    }
    if (mkdir("/work/many", 0755) < 0) {
        failf("mkdir /work/many", "%s", ename(errno));
        return;
    }
    long n = 0;
    err = 0;
    for (; n < want_files; n++) {
        char name[64];
        snprintf(name, sizeof name, "/work/many/f%ld", n);
        int fd = open(name, O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (fd < 0) {
            err = errno;
            break;
        }
        close(fd);
    }
    if (err == ENOSPC && n < want_files)
        okf("exhaust inodes", "ENOSPC after %ld files", n);
    else
        failf("exhaust inodes", "errno %s after %ld files (asked %ld)", ename(err), n, want_files);
}

/* 38: set-id files and exec from writable places. `setid` leaves a set-id
 * copy of a program in /work (the battery checks the host copy), checks that
 * running it gains nothing, and that programs copied to /tmp and /work do
 * not execute (noexec, unless the battery says "exec-allowed"). */
static int copy_file(const char *from, const char *to, mode_t mode)
{
    int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0700);
    if (in < 0 || out < 0)
        return -1;
    char b[65536];
    ssize_t n;
    while ((n = read(in, b, sizeof b)) > 0)
        if (write(out, b, (size_t)n) != n)
            return -1;
    close(in);
    close(out);
    return chmod(to, mode);
}

static void c_setid(int argc, char **argv)
{
    int exec_allowed = argc > 0 && !strcmp(argv[0], "exec-allowed");
    if (copy_file("/bin/true", "/work/suid-true", 06755) < 0)
        failf("plant /work/suid-true", "%s", ename(errno));
    else
        okf("plant /work/suid-true", "mode 6755 set inside");
    const char *progs[] = {"/tmp/t-true", "/work/t-true"};
    for (int i = 0; i < 2; i++) {
        if (copy_file("/bin/true", progs[i], 0755) < 0) {
            failf(progs[i], "copy: %s", ename(errno));
            continue;
        }
        pid_t p = fork();
        if (p == 0) {
            char *av[] = {(char *)progs[i], NULL};
            execv(progs[i], av);
            _exit(errno == EACCES ? 77 : 78);
        }
        int st = 0;
        waitpid(p, &st, 0);
        char what[64];
        snprintf(what, sizeof what, "exec %s", progs[i]);
        int refused = WIFEXITED(st) && WEXITSTATUS(st) == 77;
        int ran = WIFEXITED(st) && WEXITSTATUS(st) == 0;
        if (exec_allowed ? ran : refused)
            okf(what, "%s", refused ? "EACCES (noexec)" : "runs (exec allowed)");
        else
            failf(what, "status 0x%x", st);
    }
}

/* 39: a program that keeps the work dir busy until it is killed */
static void c_holdwork(void)
{
    int fd = open("/work/mine", O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, "sandbox\n", 8) != 8)
        failf("write /work/mine", "%s", ename(errno));
    if (fd >= 0)
        close(fd);
    printf("holding /work\n");
    fflush(stdout);
    for (int i = 0; i < 600; i++) {
        struct stat st;
        if (stat("/work/release", &st) == 0)
            break;
        usleep(50000);
    }
    struct stat st;
    if (stat("/work/intruder", &st) == 0)
        failf("/work/intruder", "a host process wrote into the running sandbox's work dir");
    else
        okf("/work/intruder", "absent");
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2) {
        fprintf(stderr, "usage: escape CASE [args]\n");
        return 2;
    }
    const char *c = argv[1];
    int ac = argc - 2;
    char **av = argv + 2;
    if (!strcmp(c, "read-host")) c_read_host(ac, av);
    else if (!strcmp(c, "write-ro")) c_write_ro();
    else if (!strcmp(c, "dotdot")) c_dotdot();
    else if (!strcmp(c, "plant")) c_plant(ac, av);
    else if (!strcmp(c, "hardlink")) c_hardlink();
    else if (!strcmp(c, "net")) c_net(ac, av);
    else if (!strcmp(c, "abstract")) c_abstract(ac, av);
    else if (!strcmp(c, "forkbomb")) c_forkbomb(ac, av);
    else if (!strcmp(c, "membomb")) c_membomb(ac, av);
    else if (!strcmp(c, "cpuloop")) c_cpuloop();
    else if (!strcmp(c, "sleepers")) c_sleepers();
    else if (!strcmp(c, "fill")) c_fill(ac, av);
    else if (!strcmp(c, "ptrace")) c_ptrace();
    else if (!strcmp(c, "kill")) c_kill(ac, av);
    else if (!strcmp(c, "mount")) c_mount();
    else if (!strcmp(c, "ns")) c_ns();
    else if (!strcmp(c, "keys")) c_keys();
    else if (!strcmp(c, "kernel")) c_kernel();
    else if (!strcmp(c, "harden")) c_harden();
    else if (!strcmp(c, "tiocsti")) c_tiocsti();
    else if (!strcmp(c, "int80")) c_int80();
    else if (!strcmp(c, "x32")) c_x32();
    else if (!strcmp(c, "exe")) c_exe(ac, av);
    else if (!strcmp(c, "fds")) c_fds();
    else if (!strcmp(c, "argv")) c_argv(ac, av);
    else if (!strcmp(c, "env")) c_env();
    else if (!strcmp(c, "isolation")) c_isolation(ac, av);
    else if (!strcmp(c, "memhold")) c_memhold(ac, av);
    else if (!strcmp(c, "diskfill")) c_diskfill(ac, av);
    else if (!strcmp(c, "setid")) c_setid(ac, av);
    else if (!strcmp(c, "holdwork")) c_holdwork();
    else {
        fprintf(stderr, "unknown case %s\n", c);
        return 2;
    }
    printf("probe %s: %d failure(s)\n", c, failures);
    return failures ? 1 : 0;
}
