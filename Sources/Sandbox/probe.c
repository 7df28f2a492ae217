/* `nova-sandbox --probe`: one JSON object describing what this machine
 * supports, with hints for what is missing. Used by `nova-host doctor`.
 * Exit status 0 when a full sandbox ran /bin/true here, 1 otherwise. */
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/magic.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef TMPFS_MAGIC
#define TMPFS_MAGIC 0x01021994
#endif

struct out {
    char buf[16384];
    size_t len;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->len, sizeof o->buf - o->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->len = o->len + (size_t)n >= sizeof o->buf ? sizeof o->buf - 1 : o->len + (size_t)n;
}

static void put_str(struct out *o, const char *s)
{
    char esc[1024];
    json_escape(esc, sizeof esc, s);
    put(o, "\"%s\"", esc);
}

static long read_long(const char *path)
{
    char b[64];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, b, sizeof b - 1);
    close(fd);
    if (n <= 0)
        return -1;
    b[n] = 0;
    return strtol(b, NULL, 10);
}

static int read_str(const char *path, char *b, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, b, len - 1);
    close(fd);
    if (n < 0)
        return -1;
    b[n] = 0;
    while (n > 0 && (b[n - 1] == '\n' || b[n - 1] == ' '))
        b[--n] = 0;
    return 0;
}

/* Run fn in a child; returns 0 on success or the errno it reported. */
static int in_child(int (*fn)(long), long arg)
{
    pid_t p = fork();
    if (p < 0)
        return errno;
    if (p == 0)
        _exit(fn(arg) & 0xff);
    int st;
    if (waitpid(p, &st, 0) < 0)
        return errno;
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    return 255;
}

static int try_unshare(long flags)
{
    return unshare((int)flags) == 0 ? 0 : errno;
}

static int try_unprivileged_userns(long unused)
{
    (void)unused;
    if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
        setresuid(65534, 65534, 65534) < 0)
        return errno;
    return unshare(CLONE_NEWUSER) == 0 ? 0 : errno;
}

static int try_seccomp(long unused)
{
    (void)unused;
    char err[256];
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return errno;
    return install_seccomp(err, sizeof err);
}

/* Full run of /bin/true (or /usr/bin/true) through the real code path. */
static int selftest(const char *self, char *line, size_t linelen)
{
    const char *prog = access("/usr/bin/true", X_OK) == 0 ? "/usr/bin/true" : "/bin/true";
    char cfg[256];
    int n = snprintf(cfg, sizeof cfg, "version=1%cprogram=%s%cdeadline_ms=5000%c", 0, prog, 0, 0);
    int cp[2], sp[2];
    if (pipe2(cp, O_CLOEXEC) < 0 || pipe2(sp, O_CLOEXEC) < 0)
        return -1;
    (void)write_all(cp[1], cfg, (size_t)n);
    close(cp[1]);
    pid_t p = fork();
    if (p < 0)
        return -1;
    if (p == 0) {
        int a = fcntl(cp[0], F_DUPFD, 10), b = fcntl(sp[1], F_DUPFD, 10);
        if (a < 0 || b < 0 || dup2(a, 3) < 0 || dup2(b, 4) < 0)
            _exit(127);
        int nul = open("/dev/null", O_RDWR);
        if (nul >= 0) {
            dup2(nul, 0);
            dup2(nul, 1);
            dup2(nul, 2);
        }
        execl(self, "nova-sandbox", "--config-fd", "3", "--status-fd", "4", (char *)NULL);
        _exit(127);
    }
    close(cp[0]);
    close(sp[1]);
    char buf[4096];
    size_t got = 0;
    for (;;) {
        ssize_t r = read(sp[0], buf + got, sizeof buf - 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
        if (got >= sizeof buf - 1)
            break;
    }
    buf[got] = 0;
    close(sp[0]);
    int st = 0;
    waitpid(p, &st, 0);
    /* keep the last line (the final record) */
    char *last = buf;
    for (char *q = buf; *q; q++)
        if (*q == '\n' && q[1])
            last = q + 1;
    char *nl = strchr(last, '\n');
    if (nl)
        *nl = 0;
    size_t ll = strlen(last);
    if (ll >= linelen)
        ll = linelen - 1;
    memcpy(line, last, ll);
    line[ll] = 0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int run_probe(const char *self)
{
    (void)self;
    struct out o = {.len = 0};
    struct utsname u;
    uname(&u);
    uid_t euid = geteuid();
    const char *hints[24];
    int nh = 0;

    put(&o, "{\"version\":\"%s\",\"kernel\":", NOVA_SANDBOX_VERSION);
    put_str(&o, u.release);
    put(&o, ",\"arch\":");
    put_str(&o, u.machine);
    put(&o, ",\"euid\":%d", (int)euid);

    long clone_ok = read_long("/proc/sys/kernel/unprivileged_userns_clone");
    long max_ns = read_long("/proc/sys/user/max_user_namespaces");
    long aa = read_long("/proc/sys/kernel/apparmor_restrict_unprivileged_userns");
    put(&o, ",\"sysctl\":{\"kernel.unprivileged_userns_clone\":%ld,\"user.max_user_namespaces\":%ld,"
            "\"kernel.apparmor_restrict_unprivileged_userns\":%ld,\"dev.tty.legacy_tiocsti\":%ld}",
        clone_ok, max_ns, aa, read_long("/proc/sys/dev/tty/legacy_tiocsti"));

    int userns = in_child(try_unshare, CLONE_NEWUSER);
    int unpriv = euid == 0 ? in_child(try_unprivileged_userns, 0) : userns;
    put(&o, ",\"user_namespaces\":{\"available\":%s,\"errno\":%d,\"unprivileged\":%s,"
            "\"unprivileged_errno\":%d}",
        userns ? "false" : "true", userns, unpriv ? "false" : "true", unpriv);
    if (userns || unpriv) {
        if (clone_ok == 0)
            hints[nh++] = "user namespaces are off: sysctl -w kernel.unprivileged_userns_clone=1";
        if (max_ns == 0)
            hints[nh++] = "user namespaces are off: sysctl -w user.max_user_namespaces=15000";
        if (aa == 1)
            hints[nh++] = "AppArmor restricts unprivileged user namespaces: sysctl -w "
                          "kernel.apparmor_restrict_unprivileged_userns=0, or install an AppArmor "
                          "profile granting `userns,` to nova-sandbox";
        if (clone_ok != 0 && max_ns != 0 && aa != 1)
            hints[nh++] = "unshare(CLONE_NEWUSER) is refused although the sysctls allow it: a "
                          "container runtime's seccomp profile probably blocks it (docker: "
                          "--security-opt seccomp=unconfined or a profile allowing unshare/clone "
                          "with CLONE_NEWUSER)";
    }

    static const struct {
        const char *name;
        long flag;
    } nss[] = {{"mount", CLONE_NEWNS}, {"pid", CLONE_NEWPID},       {"net", CLONE_NEWNET},
               {"ipc", CLONE_NEWIPC},  {"uts", CLONE_NEWUTS},       {"cgroup", CLONE_NEWCGROUP},
               {"time", CLONE_NEWTIME}};
    put(&o, ",\"namespaces\":{\"user\":%s", userns ? "false" : "true");
    for (size_t i = 0; i < sizeof nss / sizeof nss[0]; i++) {
        int e = in_child(try_unshare, (userns ? 0 : CLONE_NEWUSER) | nss[i].flag);
        put(&o, ",\"%s\":%s", nss[i].name, e ? "false" : "true");
    }
    put(&o, "}");

    char actions[256] = "";
    read_str("/proc/sys/kernel/seccomp/actions_avail", actions, sizeof actions);
    char status[4096] = "";
    long cur_mode = prctl(PR_GET_SECCOMP, 0, 0, 0, 0);
    int sec = in_child(try_seccomp, 0);
    put(&o, ",\"seccomp\":{\"available\":%s,\"errno\":%d,\"current_mode\":%ld,\"libseccomp\":",
        sec ? "false" : "true", sec, cur_mode);
    put_str(&o, libseccomp_version());
    put(&o, ",\"actions_avail\":");
    put_str(&o, actions);
    put(&o, "}");
    if (sec)
        hints[nh++] = "seccomp filters cannot be installed: the kernel needs CONFIG_SECCOMP_FILTER";
    if (cur_mode == 2)
        hints[nh++] = "this process already runs under a seccomp filter (a container or another "
                      "sandbox); it may refuse namespaces or other calls the sandbox needs";
    (void)status;

    struct statfs sf;
    int v1 = 0, v2 = 0;
    const char *mode = "none";
    if (statfs("/sys/fs/cgroup", &sf) == 0) {
        if (sf.f_type == CGROUP2_SUPER_MAGIC) {
            v2 = 1;
            mode = "unified";
        } else if (sf.f_type == TMPFS_MAGIC) {
            v1 = 1;
            mode = "legacy";
            struct statfs s2;
            if (statfs("/sys/fs/cgroup/unified", &s2) == 0 && s2.f_type == CGROUP2_SUPER_MAGIC) {
                v2 = 1;
                mode = "hybrid";
            }
        }
    }
    put(&o, ",\"cgroup\":{\"v1\":%s,\"v2\":%s,\"mode\":\"%s\"}", v1 ? "true" : "false",
        v2 ? "true" : "false", mode);

    /* syscalls the helper (close_range, mount_setattr) and the host
     * (openat2 for reading results) use; ENOSYS = missing, anything else =
     * present (the arguments are deliberately invalid) */
    errno = 0;
    long r1 = syscall(SYS_close_range, ~0U, 0U, 0);
    int cr = !(r1 < 0 && errno == ENOSYS);
    errno = 0;
    long r2 = syscall(SYS_mount_setattr, -1, "", 0, NULL, 0);
    int ms = !(r2 < 0 && errno == ENOSYS);
    errno = 0;
    long r3 = syscall(SYS_openat2, -1, "", NULL, 0);
    int oa = !(r3 < 0 && errno == ENOSYS);
    put(&o, ",\"syscalls\":{\"close_range\":%s,\"mount_setattr\":%s,\"openat2\":%s}",
        cr ? "true" : "false", ms ? "true" : "false", oa ? "true" : "false");
    if (!oa)
        hints[nh++] = "openat2 is missing (kernel < 5.6): the host must read results with an "
                      "O_NOFOLLOW walk per path component";

    char line[2048] = "";
    int rc = selftest("/proc/self/exe", line, sizeof line);
    int ok = rc == 0 && strstr(line, "\"exit_code\":0") != NULL;
    put(&o, ",\"selftest\":{\"ok\":%s,\"exit\":%d,\"status\":", ok ? "true" : "false", rc);
    put_str(&o, line);
    put(&o, "}");
    if (!ok && !userns)
        hints[nh++] = "namespaces work but the full sandbox failed: see selftest.status";

    /* the memory bound a sandbox got here (the self-test's exit record) */
    const char *mb = strstr(line, "\"memory_bound\":\"");
    char bound[32] = "unknown";
    if (mb && sscanf(mb + 16, "%31[a-z0-9-]", bound) != 1)
        snprintf(bound, sizeof bound, "unknown");
    put(&o, ",\"memory_bound\":");
    put_str(&o, bound);
    if (ok && !strcmp(bound, "rlimit-only"))
        hints[nh++] = "no cgroup for the sandbox (memory_bound rlimit-only): memory is bounded per "
                      "process by RLIMIT_AS, memfd_create and (unless the helper runs as root) SysV "
                      "shmget are refused inside; run the host as root, or give it a delegated "
                      "cgroup v2 subtree with the memory and pids controllers (cgroup_parent)";

    put(&o, ",\"sandbox_usable\":%s,\"hints\":[", ok ? "true" : "false");
    for (int i = 0; i < nh; i++) {
        if (i)
            put(&o, ",");
        put_str(&o, hints[i]);
    }
    put(&o, "]}\n");
    (void)write_all(1, o.buf, o.len);
    return ok ? 0 : 1;
}
