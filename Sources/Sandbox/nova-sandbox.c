/* nova-sandbox — launch helper for the restricted shell driver.
 *
 * Three processes (see README.md):
 *   helper  (the process the host spawned; stays in the host pid namespace,
 *            enforces the deadline, forwards host signals, writes the status fd)
 *     └─ init  (pid 1 of the new pid namespace: builds the file system,
 *               reaps everything, reports the program's status)
 *          └─ program (pid 2: credentials, seccomp, execve)
 * Killing the helper kills init (PR_SET_PDEATHSIG), and init's death makes
 * the kernel kill every process of the pid namespace. */
#include "sandbox.h"

#include <sys/sysmacros.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <linux/capability.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif

enum role { ROLE_HELPER, ROLE_INIT, ROLE_PROGRAM };
enum rec_type { REC_ERROR = 1, REC_RESULT = 3 };

/* Fixed-size record sent from init (and from the program, via init) to the
 * helper over a CLOEXEC pipe; smaller than PIPE_BUF so writes are atomic. */
struct rec {
    int32_t type, stage, err, code; /* REC_RESULT: code = shm_state */
    int32_t wstatus, pid, killed_by, disk_full; /* disk_full: 1 bytes, 2 inodes (workfs.c) */
    struct rusage ru;
    char msg[512];
};

_Static_assert(sizeof(struct rec) <= 4096, "records must fit PIPE_BUF for atomic writes");

/* First message of the program to the helper (its credentials ride along). */
struct hello {
    char tag;
    uint64_t pid_ns; /* inode of its pid namespace (init is not dumpable, so
                        the helper may not be able to look it up itself) */
};
_Static_assert(sizeof(struct hello) != sizeof(struct rec), "message kinds are told apart by size");

static int g_role = ROLE_HELPER;
static int g_status_fd = -1; /* helper: JSON lines to the host */
static int g_pipe_fd = -1;   /* init/program: records to the parent */
static struct timespec g_start;
static char *g_args_start, *g_args_end; /* argv strings, overwritten in init */

static const char *const stage_names[ST__COUNT] = {
    "args", "config", "pdeathsig", "fds", "setsid", "rlimit", "no_new_privs", "userns",
    "unshare", "idmap", "fork", "mount", "pivot_root", "hostname", "network", "credentials",
    "capabilities", "signals", "chdir", "seccomp", "exec", "internal"};

const char *stage_name(int st)
{
    return (st >= 0 && st < ST__COUNT) ? stage_names[st] : "internal";
}

int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

void json_escape(char *out, size_t outlen, const char *in)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p && o + 7 < outlen; p++) {
        unsigned char ch = *p;
        if (ch == '"' || ch == '\\') {
            out[o++] = '\\';
            out[o++] = (char)ch;
        } else if (ch < 0x20 || ch == 0x7f) {
            o += (size_t)snprintf(out + o, outlen - o, "\\u%04x", ch);
        } else {
            out[o++] = (char)ch;
        }
    }
    out[o] = 0;
}

static long long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static double elapsed_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - g_start.tv_sec) * 1e3 + (double)(t.tv_nsec - g_start.tv_nsec) / 1e6;
}

static const char *errno_name(int e)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
    const char *n = strerrorname_np(e);
    return n ? n : "";
#else
    (void)e;
    return "";
#endif
}

static void emit(const char *json)
{
    if (g_status_fd < 0)
        return;
    size_t n = strlen(json);
    char *b = malloc(n + 2);
    if (!b)
        return;
    memcpy(b, json, n);
    b[n] = '\n';
    (void)write_all(g_status_fd, b, n + 1);
    free(b);
}

static int exit_code_for(int stage, int err)
{
    if (stage != ST_EXEC)
        return EXIT_SETUP;
    return (err == ENOENT || err == ENOTDIR) ? EXIT_NOENT : EXIT_NOEXEC;
}

static void emit_error(int stage, int err, const char *msg)
{
    char esc[1100], line[1400];
    json_escape(esc, sizeof esc, msg);
    snprintf(line, sizeof line, "{\"stage\":\"%s\",\"errno\":%d,\"error\":\"%s\",\"message\":\"%s\"}",
             stage_name(stage), err, errno_name(err), esc);
    if (g_status_fd >= 0)
        emit(line);
    else
        dprintf(2, "nova-sandbox: %s: %s\n", stage_name(stage), msg);
}

_Noreturn void fail(int stage, int err, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int code = exit_code_for(stage, err);
    if (g_role == ROLE_HELPER) {
        emit_error(stage, err, msg);
        exit(code);
    }
    struct rec r;
    memset(&r, 0, sizeof r);
    r.type = REC_ERROR;
    r.stage = stage;
    r.err = err;
    r.code = code;
    memcpy(r.msg, msg, sizeof r.msg);
    if (g_pipe_fd >= 0)
        (void)write_all(g_pipe_fd, &r, sizeof r);
    _exit(code);
}

static int write_proc_file(const char *path, const char *s)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = write_all(fd, s, strlen(s));
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

/* setgroups=deny, then "<uid> <host uid> 1" and "<gid> <host gid> 1" for
 * the process `who` ("self" or a pid); returns 0 or an errno. */
static int write_id_maps(const char *who, long long uid, long long huid, long long gid,
                         long long hgid)
{
    char path[64], map[64];
    snprintf(path, sizeof path, "/proc/%s/setgroups", who);
    if (write_proc_file(path, "deny") < 0 && errno != ENOENT)
        return errno;
    snprintf(path, sizeof path, "/proc/%s/uid_map", who);
    snprintf(map, sizeof map, "%lld %lld 1\n", uid, huid);
    if (write_proc_file(path, map) < 0)
        return errno;
    snprintf(path, sizeof path, "/proc/%s/gid_map", who);
    snprintf(map, sizeof map, "%lld %lld 1\n", gid, hgid);
    if (write_proc_file(path, map) < 0)
        return errno;
    return 0;
}

/* ------------------------------------------------------------------ program */

static _Noreturn void run_program(const struct config *c, int exec_sock)
{
    /* signals: nothing blocked, nothing ignored (SIG_IGN survives execve) */
    sigset_t none;
    sigemptyset(&none);
    if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
        fail(ST_SIGNALS, errno, "sigprocmask: %s", strerror(errno));
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP)
            (void)sigaction(s, &dfl, NULL);

    /* capabilities: empty bounding and ambient sets, so even uid 0 inside
     * gains nothing at execve */
    for (int cap = 0; cap <= 63; cap++)
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
            if (errno == EINVAL)
                break;
            fail(ST_CAPS, errno, "PR_CAPBSET_DROP %d: %s", cap, strerror(errno));
        }
    (void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);

    if (setresgid((gid_t)c->gid, (gid_t)c->gid, (gid_t)c->gid) < 0)
        fail(ST_CREDS, errno, "setresgid(%lld): %s", c->gid, strerror(errno));
    if (setresuid((uid_t)c->uid, (uid_t)c->uid, (uid_t)c->uid) < 0)
        fail(ST_CREDS, errno, "setresuid(%lld): %s", c->uid, strerror(errno));
    if (chdir(c->cwd) < 0)
        fail(ST_CHDIR, errno, "chdir %s: %s", c->cwd, strerror(errno));
    umask(022); /* not the host's */
    prefer_oom_victim();

    char err[256];
    int rc = install_seccomp(err, sizeof err);
    if (rc)
        fail(ST_SECCOMP, rc, "%s", err);
    if ((c->deny_memfd || c->shm_state == SHM_DENIED) &&
        (rc = deny_unbounded_memory(c->deny_memfd, c->shm_state == SHM_DENIED, err, sizeof err)))
        fail(ST_SECCOMP, rc, "%s", err);

    /* Tell the helper our host pid: it receives this message with
     * SO_PASSCRED, and the kernel translates the sender's pid into the
     * helper's pid namespace. The socket is CLOEXEC: its EOF tells the
     * helper that execve succeeded; a failure sends a record first. */
    struct hello h = {.tag = 'p', .pid_ns = 0};
    struct stat st;
    if (stat("/proc/self/ns/pid", &st) == 0)
        h.pid_ns = (uint64_t)st.st_ino;
    (void)send(exec_sock, &h, sizeof h, MSG_DONTWAIT);
    execve(c->program, c->argv, c->env);
    fail(ST_EXEC, errno, "execve %s: %s", c->program, strerror(errno));
}

/* --------------------------------------------------------------------- init */

static _Noreturn void run_init(const struct config *c, int status_pipe, int exec_sock)
{
    setup_filesystem(c);

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGQUIT);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
        fail(ST_SIGNALS, errno, "sigprocmask: %s", strerror(errno));

    pid_t child = fork();
    if (child < 0)
        fail(ST_FORK, errno, "fork program: %s", strerror(errno));
    if (child == 0) {
        g_role = ROLE_PROGRAM;
        g_pipe_fd = exec_sock; /* the program reports straight to the helper */
        close(status_pipe);
        run_program(c, exec_sock);
    }
    close(exec_sock);
    struct rec r;

    int wstatus = 0, done = 0, killed_by = 0;
    while (!done) {
        siginfo_t si;
        int s = sigwaitinfo(&set, &si);
        if (s < 0)
            continue;
        if (s == SIGCHLD) {
            int st;
            pid_t p;
            while ((p = waitpid(-1, &st, WNOHANG)) > 0)
                if (p == child) {
                    wstatus = st;
                    done = 1;
                }
        } else if (si.si_code == SI_USER && si.si_pid == 0 && !killed_by) {
            /* kill(2) from the helper or the host: an ancestor pid namespace
             * shows up as si_pid 0. The sandbox cannot fake it: its kill()s
             * carry its pid, and rt_sigqueueinfo to another process cannot
             * use si_code SI_USER. */
            killed_by = s;
            kill(-1, SIGKILL);
        }
    }
    /* The run is over: nothing of the sandbox outlives the program. kill(-1)
     * is repeated before every wait so that a child forked concurrently
     * with one round is caught by the next; ECHILD means all are reaped. */
    for (;;) {
        kill(-1, SIGKILL);
        if (waitpid(-1, NULL, 0) < 0 && errno == ECHILD)
            break;
    }
    memset(&r, 0, sizeof r);
    r.type = REC_RESULT;
    r.wstatus = wstatus;
    r.killed_by = killed_by;
    r.code = c->shm_state;
    getrusage(RUSAGE_CHILDREN, &r.ru);
    /* every sandbox process is gone: the work dir tmpfs goes back to the host */
    if (c->workdir && c->workdir_bytes != (long long)RLIM_INFINITY)
        r.disk_full = workfs_copy_out(c, r.msg, sizeof r.msg);
    (void)write_all(status_pipe, &r, sizeof r);
    _exit(0);
}

/* ------------------------------------------------------------------- helper */

static unsigned long long pid_ns_of(pid_t p)
{
    char path[64];
    struct stat st;
    snprintf(path, sizeof path, "/proc/%d/ns/pid", (int)p);
    return stat(path, &st) == 0 ? (unsigned long long)st.st_ino : 0;
}

static double tv_ms(struct timeval tv)
{
    return (double)tv.tv_sec * 1e3 + (double)tv.tv_usec / 1e3;
}

/* Exit-record fields about memory and the work dir (README §2):
 * memory_bound, memory_peak_bytes and oom_kills (with a cgroup), killed
 * "memory" when the cgroup's OOM killer acted on a run that ended by a
 * signal, memfd "denied", disk_full, workdir_error. */
static int resource_fields(char *out, size_t len, const struct config *c, const struct cgroup *cg,
                           long long peak, long long oom_kills, int signalled, struct rec *result)
{
    int o = snprintf(out, len, ",\"memory_bound\":\"%s\"", cgroup_bound_name(cg->mode));
    if (peak >= 0)
        o += snprintf(out + o, len - (size_t)o, ",\"memory_peak_bytes\":%lld", peak);
    if (oom_kills >= 0)
        o += snprintf(out + o, len - (size_t)o, ",\"oom_kills\":%lld", oom_kills);
    if (oom_kills > 0 && signalled)
        o += snprintf(out + o, len - (size_t)o, ",\"killed\":\"memory\"");
    if (c->deny_memfd)
        o += snprintf(out + o, len - (size_t)o, ",\"memfd\":\"denied\"");
    if (result) {
        static const char *const shm[] = {"", "limited", "cgroup", "denied"};
        int st = result->code >= SHM_LIMITED && result->code <= SHM_DENIED ? result->code : 0;
        if (st)
            o += snprintf(out + o, len - (size_t)o, ",\"sysv_shm\":\"%s\"", shm[st]);
    }
    if (result && result->disk_full)
        o += snprintf(out + o, len - (size_t)o, ",\"disk_full\":\"%s\"", result->disk_full == 2 ? "inodes" : "bytes");
    if (result && result->msg[0]) {
        char esc[1100];
        result->msg[sizeof result->msg - 1] = 0;
        json_escape(esc, sizeof esc, result->msg);
        o += snprintf(out + o, len - (size_t)o, ",\"workdir_error\":\"%s\"", esc);
    }
    return o;
}

static int run_helper(const struct config *c, struct cgroup *cg, pid_t init, int rfd, int xfd)
{
    sigset_t hs;
    sigemptyset(&hs);
    sigaddset(&hs, SIGTERM);
    sigaddset(&hs, SIGINT);
    sigaddset(&hs, SIGHUP);
    sigaddset(&hs, SIGQUIT);
    int sfd = signalfd(-1, &hs, SFD_CLOEXEC | SFD_NONBLOCK);

    long long start = (long long)g_start.tv_sec * 1000 + g_start.tv_nsec / 1000000;
    long long deadline = c->deadline_ms > 0 ? start + c->deadline_ms : -1;
    long long hard_kill_at = -1;
    int term_sent = 0, timed_out = 0, host_signal = 0;
    int have_exec = 0, have_result = 0, have_error = 0, xfd_open = 1, rfd_open = 1;
    pid_t prog_pid = 0;
    unsigned long long prog_ns = 0;
    struct rec buf, result, error;
    memset(&result, 0, sizeof result);
    memset(&error, 0, sizeof error);
    size_t have = 0;

    /* until init has reported (or is gone) and the program's exec socket is
     * closed (exec succeeded, or it died) */
    while (rfd_open && !(have_result && !xfd_open)) {
        long long now = now_ms(), wake = -1;
        if (!term_sent && deadline >= 0)
            wake = deadline;
        if (hard_kill_at >= 0)
            wake = hard_kill_at;
        int timeout = wake < 0 ? -1 : (wake <= now ? 0 : (int)(wake - now));
        struct pollfd pf[3] = {{rfd, POLLIN, 0}, {xfd_open ? xfd : -1, POLLIN, 0}, {sfd, POLLIN, 0}};
        int pr = poll(pf, 3, timeout);
        if (pr < 0 && errno != EINTR) {
            kill(init, SIGKILL);
            break;
        }
        now = now_ms();
        if (!term_sent && deadline >= 0 && now >= deadline) {
            timed_out = 1;
            term_sent = 1;
            kill(init, SIGTERM);
            hard_kill_at = now + 1000;
        } else if (hard_kill_at >= 0 && now >= hard_kill_at) {
            kill(init, SIGKILL);
            hard_kill_at = -1;
        }
        if (pr <= 0)
            continue;
        if (sfd >= 0 && (pf[2].revents & POLLIN)) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
                if (!host_signal)
                    host_signal = (int)si.ssi_signo;
                if (!term_sent) {
                    term_sent = 1;
                    kill(init, SIGTERM);
                    hard_kill_at = now + 1000;
                }
            }
        }
        if (xfd_open && (pf[1].revents & (POLLIN | POLLHUP | POLLERR))) {
            /* messages from the program: "p" (with its credentials), maybe an
             * exec failure record, then EOF once execve closed the socket */
            struct rec m;
            struct iovec iov = {&m, sizeof m};
            union {
                char b[CMSG_SPACE(sizeof(struct ucred))];
                struct cmsghdr align;
            } u;
            struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b,
                                .msg_controllen = sizeof u.b};
            ssize_t n = recvmsg(xfd, &mh, MSG_DONTWAIT);
            if (n < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (n <= 0) {
                xfd_open = 0;
                if (!have_error && prog_pid > 0 && !have_exec) {
                    have_exec = 1;
                    char line[256];
                    snprintf(line, sizeof line,
                             "{\"stage\":\"exec\",\"init_pid\":%d,\"pid\":%d,\"pid_ns\":%llu,"
                             "\"setup_ms\":%.3f}",
                             (int)init, (int)prog_pid, prog_ns ? prog_ns : pid_ns_of(init),
                             elapsed_ms());
                    emit(line);
                }
            } else if (n == (ssize_t)sizeof(struct hello)) {
                struct hello h;
                memcpy(&h, &m, sizeof h);
                prog_ns = h.pid_ns;
                for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
                    if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_CREDENTIALS) {
                        struct ucred cr;
                        memcpy(&cr, CMSG_DATA(cm), sizeof cr);
                        prog_pid = cr.pid;
                    }
            } else if (n == (ssize_t)sizeof m && m.type == REC_ERROR && !have_error) {
                have_error = 1;
                error = m;
            }
        }
        if (pf[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = read(rfd, (char *)&buf + have, sizeof buf - have);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                rfd_open = 0; /* init is gone */
                continue;
            }
            have += (size_t)n;
            if (have < sizeof buf)
                continue;
            have = 0;
            if (buf.type == REC_ERROR && !have_error) {
                have_error = 1;
                error = buf;
            } else if (buf.type == REC_RESULT) {
                /* Init has killed and reaped every other process of the
                 * sandbox and is exiting; like bubblewrap we do not wait for
                 * the kernel to finish tearing its namespaces down. */
                have_result = 1;
                result = buf;
            }
        }
    }
    close(xfd);
    int ist = 0;
    /* with a cgroup, init must be gone before the peak is read and the
     * cgroup removed */
    if (!have_result || c->wait_teardown || cg->mode)
        while (waitpid(init, &ist, 0) < 0 && errno == EINTR)
            ;
    long long peak = -1, oom_kills = -1;
    cgroup_collect(cg, &peak, &oom_kills);
    cgroup_remove(cg);
    double wall = elapsed_ms();

    if (have_error) {
        error.msg[sizeof error.msg - 1] = 0;
        emit_error(error.stage, error.err, error.msg);
        return error.code;
    }
    if (!have_exec) {
        char msg[160];
        if (WIFSIGNALED(ist))
            snprintf(msg, sizeof msg, "sandbox init killed by signal %d before exec%s",
                     WTERMSIG(ist), host_signal ? " (host signal)" : timed_out ? " (deadline)" : "");
        else
            snprintf(msg, sizeof msg, "sandbox init exited with %d before exec",
                     WIFEXITED(ist) ? WEXITSTATUS(ist) : -1);
        emit_error(ST_INTERNAL, 0, msg);
        return timed_out ? EXIT_TIMEOUT : EXIT_SETUP;
    }

    char line[2048];
    int o = snprintf(line, sizeof line, "{\"stage\":\"exit\"");
    int code;
    int ws = have_result ? result.wstatus : ist;
    int sig = 0;
    if (have_result && WIFEXITED(ws)) {
        code = WEXITSTATUS(ws);
        o += snprintf(line + o, sizeof line - (size_t)o, ",\"exit_code\":%d", code);
    } else {
        sig = have_result ? (WIFSIGNALED(ws) ? WTERMSIG(ws) : SIGKILL)
                          : (WIFSIGNALED(ist) ? WTERMSIG(ist) : SIGKILL);
        code = 128 + sig;
        const char *abbrev = sigabbrev_np(sig);
        o += snprintf(line + o, sizeof line - (size_t)o, ",\"signal\":%d,\"signal_name\":\"SIG%s\"",
                      sig, abbrev ? abbrev : "?");
    }
    double user = have_result ? tv_ms(result.ru.ru_utime) : 0;
    double sys = have_result ? tv_ms(result.ru.ru_stime) : 0;
    const char *timeout = NULL;
    if (timed_out)
        timeout = "wall";
    else if (sig == SIGXCPU || (sig == SIGKILL && !host_signal && c->cpu_seconds != (long long)RLIM_INFINITY &&
                                user + sys >= (double)c->cpu_seconds * 1000.0 - 50))
        timeout = "cpu";
    if (timeout) {
        o += snprintf(line + o, sizeof line - (size_t)o, ",\"timeout\":\"%s\"", timeout);
        if (timed_out)
            code = EXIT_TIMEOUT;
    }
    if (host_signal) {
        const char *abbrev = sigabbrev_np(host_signal);
        o += snprintf(line + o, sizeof line - (size_t)o, ",\"killed_by_host\":\"SIG%s\"",
                      abbrev ? abbrev : "?");
    }
    if (!have_result)
        o += snprintf(line + o, sizeof line - (size_t)o, ",\"incomplete\":true");
    o += resource_fields(line + o, sizeof line - (size_t)o, c, cg, peak, oom_kills, sig || !have_result,
                         have_result ? &result : NULL);
    snprintf(line + o, sizeof line - (size_t)o,
             ",\"max_rss_kb\":%ld,\"user_ms\":%.1f,\"sys_ms\":%.1f,\"wall_ms\":%.1f}",
             have_result ? result.ru.ru_maxrss : 0L, user, sys, wall);
    emit(line);
    return code;
}

/* --------------------------------------------------------------------- main */

/* fds 0-2 become the program's: only a pipe, a socket or /dev/null. A host file given as
 * stdout could be reopened through /proc/self/fd (and read, or truncated), a terminal on
 * stdin could be reconfigured or have keystrokes pushed into it. */
static void check_stdio(void)
{
    static const char *const names[] = {"stdin", "stdout", "stderr"};
    for (int fd = 0; fd <= 2; fd++) {
        struct stat st;
        if (fstat(fd, &st) < 0)
            fail(ST_FDS, errno, "%s (fd %d): %s", names[fd], fd, strerror(errno));
        if (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))
            continue;
        if (S_ISCHR(st.st_mode) && major(st.st_rdev) == 1 && minor(st.st_rdev) == 3)
            continue; /* /dev/null */
        const char *kind = S_ISREG(st.st_mode) ? "a regular file" : S_ISCHR(st.st_mode) ? (isatty(fd) ? "a terminal" : "a character device")
                         : S_ISDIR(st.st_mode) ? "a directory" : "not a pipe";
        fail(ST_FDS, EBADF, "%s (fd %d) is %s: give the sandbox a pipe, a socket or /dev/null", names[fd], fd, kind);
    }
}

/* The embedded (build-time) BPF must equal what libseccomp builds now. */
static int check_filter(void)
{
    FILE *tmp = tmpfile();
    if (!tmp || export_bpf(fileno(tmp)) < 0) {
        fprintf(stderr, "nova-sandbox: cannot export the filter\n");
        return 2;
    }
    off_t len = lseek(fileno(tmp), 0, SEEK_END);
    size_t elen;
    const void *emb = embedded_bpf(&elen);
    char *buf = malloc(len > 0 ? (size_t)len : 1);
    if (!buf || len != (off_t)elen || pread(fileno(tmp), buf, (size_t)len, 0) != len ||
        memcmp(buf, emb, elen) != 0) {
        printf("filter: embedded BPF (%zu instructions) differs from libseccomp %s (%lld)\n",
               elen / 8, libseccomp_version(), (long long)len / 8);
        return 1;
    }
    char missing[1024];
    if (filter_unresolved(missing, sizeof missing) > 0) {
        printf("filter: libseccomp %s cannot resolve listed calls, so they are NOT denied: %s\n",
               libseccomp_version(), missing);
        return 1;
    }
    printf("filter: embedded BPF matches libseccomp %s (%zu instructions)\n",
           libseccomp_version(), elen / 8);
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: nova-sandbox (--config-fd N | --config FILE) [--status-fd N]\n"
            "       nova-sandbox --probe      print what this machine supports (JSON)\n"
            "       nova-sandbox --export-bpf write the seccomp BPF program to stdout\n"
            "       nova-sandbox --check-filter  embedded BPF == libseccomp's, exit 0\n"
            "       nova-sandbox --version\n"
            "The config is a NUL-separated key=value message (see README.md).\n");
}

/* As root: an empty root-owned work dir is handed to the sandbox's host ids,
 * so that the sandbox never needs the shared 65534. A non-empty one is
 * refused rather than re-owned (it may be a system directory given by
 * mistake). */
static void hand_over_workdir(const struct config *c, const struct stat *st, long long huid, long long hgid)
{
    if (!st || st->st_uid != 0 || c->host_uid != UNSET)
        return;
    int fd = open(c->workdir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        fail(ST_CONFIG, errno, "work dir %s: %s", c->workdir, strerror(errno));
    int d = dup(fd);
    DIR *dir = d >= 0 ? fdopendir(d) : NULL;
    struct dirent *e;
    int empty = dir != NULL;
    while (dir && (e = readdir(dir)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            empty = 0;
    if (dir)
        closedir(dir);
    if (!empty)
        fail(ST_CONFIG, EPERM,
             "the work dir %s belongs to root and is not empty: chown it to the sandbox's host uid, "
             "or pass host_uid/host_gid", c->workdir);
    if (fchown(fd, (uid_t)huid, (gid_t)hgid) < 0 || fchmod(fd, 0700) < 0)
        fail(ST_CONFIG, errno, "handing the work dir %s to uid %lld: %s", c->workdir, huid, strerror(errno));
    close(fd);
}

/* Resolved before the clone (init and the program get copies): which
 * memory bound exists, and whether memfd_create must be refused. */
static void setup_memory_bound(struct config *c, struct cgroup *cg)
{
    c->memory_bound = cgroup_create(cg, c);
    if (!c->memory_bound && c->cgroup_mode == CGROUP_REQUIRED)
        fail(ST_RLIMIT, EPERM, "cgroup=required, but %s", cg->why);
    c->deny_memfd = c->memfd_mode == MEMFD_DENY || (c->memfd_mode == MEMFD_AUTO && !c->memory_bound);
}

static int parse_fd(const char *s)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < 0 || v > 65535 || end == s)
        return -1;
    return (int)v;
}

static int set_limit(int res, long long soft, long long hard)
{
    struct rlimit rl = {(rlim_t)soft, (rlim_t)hard};
    return setrlimit(res, &rl);
}

static rlim_t hard_cpu(long long s)
{
    return s == (long long)RLIM_INFINITY ? RLIM_INFINITY : (rlim_t)s + 1;
}

int main(int argc, char **argv)
{
    clock_gettime(CLOCK_MONOTONIC, &g_start);
    pid_t ppid0 = getppid();
    if (argc > 0) {
        g_args_start = argv[0];
        g_args_end = argv[argc - 1] + strlen(argv[argc - 1]);
    }

    /* 0-2 must exist so that no descriptor we open lands there */
    for (int fd = 0; fd < 3; fd++)
        if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
            int n = open("/dev/null", O_RDWR);
            if (n >= 0 && n != fd) {
                dup2(n, fd);
                close(n);
            }
        }

    int config_fd = -1, status_fd = -1;
    const char *config_file = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--probe"))
            return run_probe(argv[0]);
        if (!strcmp(a, "--export-bpf"))
            return export_bpf(1) ? 1 : 0;
        if (!strcmp(a, "--check-filter"))
            return check_filter();
        if (!strcmp(a, "--version")) {
            printf("nova-sandbox %s (libseccomp %s)\n", NOVA_SANDBOX_VERSION, libseccomp_version());
            return 0;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            usage(stderr);
            return EXIT_SETUP;
        }
        if (!strcmp(a, "--config-fd"))
            config_fd = parse_fd(argv[++i]);
        else if (!strcmp(a, "--status-fd"))
            status_fd = parse_fd(argv[++i]);
        else if (!strcmp(a, "--config"))
            config_file = argv[++i];
        else {
            usage(stderr);
            return EXIT_SETUP;
        }
        if ((!strcmp(a, "--config-fd") && config_fd < 3) || (!strcmp(a, "--status-fd") && status_fd < 3)) {
            dprintf(2, "nova-sandbox: %s needs a descriptor number >= 3\n", a);
            return EXIT_SETUP;
        }
    }
    if (status_fd >= 0 && status_fd == config_fd) {
        dprintf(2, "nova-sandbox: --config-fd and --status-fd must differ\n");
        return EXIT_SETUP;
    }
    if (status_fd >= 0) {
        if (fcntl(status_fd, F_GETFD) < 0) {
            dprintf(2, "nova-sandbox: --status-fd %d: %s\n", status_fd, strerror(errno));
            return EXIT_SETUP;
        }
        g_status_fd = status_fd;
    }
    signal(SIGPIPE, SIG_IGN); /* a vanished status reader must not kill us */
    if ((config_fd < 0) == (config_file == NULL))
        fail(ST_ARGS, EINVAL, "exactly one of --config-fd N or --config FILE is required");
    check_stdio();

    /* 1. die with the parent; re-check it did not die already */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
        fail(ST_PDEATHSIG, errno, "PR_SET_PDEATHSIG: %s", strerror(errno));
    if (getppid() != ppid0)
        fail(ST_PDEATHSIG, ESRCH, "parent exited before the sandbox started");

    /* the config message (read fully, then its descriptor is closed) */
    if (config_file) {
        config_fd = open(config_file, O_RDONLY | O_CLOEXEC);
        if (config_fd < 0)
            fail(ST_CONFIG, errno, "open %s: %s", config_file, strerror(errno));
    }
    char *msg = NULL;
    size_t msglen = 0;
    int rc = read_all_fd(config_fd, &msg, &msglen, 1u << 20);
    if (rc < 0)
        fail(ST_CONFIG, -rc, "reading config: %s", strerror(-rc));
    close(config_fd);
    struct config cfg;
    char err[512];
    rc = config_parse(&cfg, msg, msglen, err, sizeof err);
    if (rc)
        fail(ST_CONFIG, rc, "%s", err);
    if (cfg.parent_pid != UNSET && (pid_t)cfg.parent_pid != ppid0)
        fail(ST_PDEATHSIG, ESRCH, "parent is pid %d, config says %lld", (int)ppid0, cfg.parent_pid);

    /* 2. no inherited descriptors: status fd moves to 3, everything above goes */
    if (g_status_fd >= 0) {
        if (g_status_fd != 3) {
            if (dup3(g_status_fd, 3, O_CLOEXEC) < 0)
                fail(ST_FDS, errno, "dup3 status fd: %s", strerror(errno));
            g_status_fd = 3;
        } else if (fcntl(3, F_SETFD, FD_CLOEXEC) < 0) {
            fail(ST_FDS, errno, "fcntl status fd: %s", strerror(errno));
        }
    }
    int first = g_status_fd >= 0 ? 4 : 3;
    if (syscall(SYS_close_range, (unsigned)first, ~0U, 0) < 0) {
        if (errno != ENOSYS)
            fail(ST_FDS, errno, "close_range: %s", strerror(errno));
        struct rlimit rl;
        long max = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY ? (long)rl.rlim_max : 65536;
        for (long fd = first; fd < max; fd++)
            close((int)fd);
    }

    /* 3. a new session: no controlling terminal to inject keystrokes into */
    if (setsid() < 0 && getsid(0) != getpid())
        fail(ST_SETSID, errno, "setsid: %s", strerror(errno));

    /* 4. resource limits (soft = hard, so the program cannot raise them).
     * NPROC is applied right after the user namespace exists, so that it
     * counts the sandbox's processes and not all of the host user's. */
    if (set_limit(RLIMIT_CORE, 0, 0) < 0)
        fail(ST_RLIMIT, errno, "RLIMIT_CORE: %s", strerror(errno));
    /* No real-time priority or time, no raised nice, little locked memory: whatever the
     * host's own limits were. */
    static const struct { int res; long long v; const char *name; } resets[] = {
        {RLIMIT_RTPRIO, 0, "RLIMIT_RTPRIO"}, {RLIMIT_RTTIME, 0, "RLIMIT_RTTIME"},
        {RLIMIT_NICE, 0, "RLIMIT_NICE"}, {RLIMIT_MEMLOCK, 64 * 1024, "RLIMIT_MEMLOCK"},
    };
    for (size_t i = 0; i < sizeof resets / sizeof resets[0]; i++)
        if (set_limit(resets[i].res, resets[i].v, resets[i].v) < 0)
            fail(ST_RLIMIT, errno, "%s: %s", resets[i].name, strerror(errno));
    if (set_limit(RLIMIT_CPU, cfg.cpu_seconds, (long long)hard_cpu(cfg.cpu_seconds)) < 0)
        fail(ST_RLIMIT, errno, "RLIMIT_CPU: %s", strerror(errno));
    if (set_limit(RLIMIT_AS, cfg.memory_bytes, cfg.memory_bytes) < 0)
        fail(ST_RLIMIT, errno, "RLIMIT_AS: %s", strerror(errno));
    if (set_limit(RLIMIT_NOFILE, cfg.nofile, cfg.nofile) < 0)
        fail(ST_RLIMIT, errno, "RLIMIT_NOFILE: %s", strerror(errno));
    if (set_limit(RLIMIT_FSIZE, cfg.fsize_bytes, cfg.fsize_bytes) < 0)
        fail(ST_RLIMIT, errno, "RLIMIT_FSIZE: %s", strerror(errno));

    /* 5. */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        fail(ST_NO_NEW_PRIVS, errno, "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));

    /* 6. namespaces */
    uid_t euid = geteuid();
    gid_t egid = getegid();
    long long huid, hgid;
    if (euid == 0) {
        /* root: never map the sandbox to host root (RLIMIT_NPROC does not
         * apply to uid 0, and files it writes would be root's) */
        struct stat st;
        int have_wd = cfg.workdir && stat(cfg.workdir, &st) == 0;
        huid = cfg.host_uid != UNSET ? cfg.host_uid : (have_wd && st.st_uid ? (long long)st.st_uid : DEDICATED_HOST_ID);
        hgid = cfg.host_gid != UNSET ? cfg.host_gid : (have_wd && st.st_gid ? (long long)st.st_gid : DEDICATED_HOST_ID);
        if (huid == 0 || hgid == 0)
            fail(ST_CONFIG, EPERM, "host_uid/host_gid 0 is not allowed");
        hand_over_workdir(&cfg, have_wd ? &st : NULL, huid, hgid);
        if (setgroups(0, NULL) < 0)
            fail(ST_CREDS, errno, "setgroups: %s", strerror(errno));
    } else {
        if ((cfg.host_uid != UNSET && cfg.host_uid != (long long)euid) ||
            (cfg.host_gid != UNSET && cfg.host_gid != (long long)egid))
            fail(ST_CONFIG, EPERM, "host_uid/host_gid can only be chosen when running as root");
        huid = euid;
        hgid = egid;
    }

    /* host signals are taken through a signalfd; blocked before the clone
     * so none is lost (init and the program reset their masks) */
    sigset_t hs;
    sigemptyset(&hs);
    sigaddset(&hs, SIGTERM);
    sigaddset(&hs, SIGINT);
    sigaddset(&hs, SIGHUP);
    sigaddset(&hs, SIGQUIT);
    sigprocmask(SIG_BLOCK, &hs, NULL);

    struct cgroup cg;
    setup_memory_bound(&cfg, &cg);

    /* sp: init -> helper records; gp: helper -> init "id maps written" (root)
     * and "in its cgroup" */
    int sp[2], gp[2], ps[2], one = 1;
    if (pipe2(sp, O_CLOEXEC) < 0 || pipe2(gp, O_CLOEXEC) < 0)
        fail(ST_FORK, errno, "pipe2: %s", strerror(errno));
    /* ps: program -> helper: its pid (SO_PASSCRED), an exec failure record,
     * EOF when execve closes it (CLOEXEC) */
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ps) < 0 ||
        setsockopt(ps[0], SOL_SOCKET, SO_PASSCRED, &one, sizeof one) < 0)
        fail(ST_FORK, errno, "socketpair: %s", strerror(errno));

    /* The sandbox init is created directly in all the new namespaces; the
     * helper stays in the host's, so that as root it may map the sandbox to
     * an unprivileged host uid (others map their own uid from inside). */
    long flags = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS |
                 CLONE_NEWCGROUP;
    if (!cfg.allow_network)
        flags |= CLONE_NEWNET;
    pid_t init = (pid_t)syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, NULL);
    if (init < 0 && errno == EINVAL) { /* kernel without cgroup namespaces */
        flags &= ~(long)CLONE_NEWCGROUP;
        init = (pid_t)syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, NULL);
    }
    if (init < 0) {
        int e = errno;
        /* tell "no user namespaces" apart from the rest, off the hot path */
        pid_t t = fork();
        if (t == 0)
            _exit(unshare(CLONE_NEWUSER) == 0 ? 0 : 1);
        int ts = 0;
        if (t > 0)
            waitpid(t, &ts, 0);
        if (t > 0 && WIFEXITED(ts) && WEXITSTATUS(ts) == 1)
            fail(ST_USERNS, e,
                 "user namespaces are not available to uid %d (%s); the sandbox refuses to run. "
                 "Check: sysctl kernel.unprivileged_userns_clone=1, user.max_user_namespaces>0, "
                 "kernel.apparmor_restrict_unprivileged_userns=0, or a container seccomp "
                 "profile blocking it; `nova-sandbox --probe` shows details",
                 (int)euid, strerror(e));
        fail(ST_UNSHARE, e, "clone(user|pid|mount|net|ipc|uts|cgroup): %s", strerror(e));
    }
    if (init == 0) {
        g_role = ROLE_INIT;
        g_pipe_fd = sp[1];
        /* /proc/1/cmdline inside must not show host paths */
        if (g_args_start && g_args_end > g_args_start + 17) {
            memset(g_args_start, 0, (size_t)(g_args_end - g_args_start));
            memcpy(g_args_start, "nova-sandbox-init", 17);
        }
        close(sp[0]);
        close(gp[1]);
        close(ps[0]);
        if (g_status_fd >= 0)
            close(g_status_fd);
        g_status_fd = -1;
        if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
            fail(ST_PDEATHSIG, errno, "PR_SET_PDEATHSIG (init): %s", strerror(errno));
        if (euid != 0) {
            /* unprivileged: we may map our own uid ourselves (no round trip) */
            int e = write_id_maps("self", cfg.uid, huid, cfg.gid, hgid);
            if (e)
                fail(ST_IDMAP, e, "writing id maps (uid %lld->%lld, gid %lld->%lld): %s", cfg.uid,
                     huid, cfg.gid, hgid, strerror(e));
        }
        if (euid == 0 || cfg.memory_bound) {
            /* root maps to another uid: only the helper, outside, may write
             * that; with a cgroup the helper first moves us into it. Wait
             * for it (EOF means the helper failed or died) */
            char go;
            ssize_t n;
            while ((n = read(gp[0], &go, 1)) < 0 && errno == EINTR)
                ;
            if (n != 1)
                _exit(EXIT_SETUP);
        }
        close(gp[0]);
        /* Take the sandbox identity now, so that everything init creates is
         * owned by a mapped uid. Capabilities in the new user namespace are
         * kept: uid 0 of the namespace is not mapped (or is this very uid),
         * so this is not a "root to non-root" transition. Init must not be
         * dumpable: the program runs as the same uid and must not be able
         * to reach the (unfiltered) init through /proc/1/mem. */
        if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
            fail(ST_CREDS, errno, "PR_SET_DUMPABLE: %s", strerror(errno));
        open_bind_sources(&cfg);
        /* SysV shm limits: only possible with the ids init still has */
        cfg.shm_state = limit_sysv_shm(&cfg) == 0 ? SHM_LIMITED : cfg.memory_bound ? SHM_CGROUP : SHM_DENIED;
        if (setresgid((gid_t)cfg.gid, (gid_t)cfg.gid, (gid_t)cfg.gid) < 0)
            fail(ST_CREDS, errno, "setresgid(%lld): %s", cfg.gid, strerror(errno));
        if (setresuid((uid_t)cfg.uid, (uid_t)cfg.uid, (uid_t)cfg.uid) < 0)
            fail(ST_CREDS, errno, "setresuid(%lld): %s", cfg.uid, strerror(errno));
        if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
            fail(ST_CREDS, errno, "PR_SET_DUMPABLE: %s", strerror(errno));
        /* a credential change clears the parent-death signal: arm it again,
         * then make sure the helper did not die in between (no reader left
         * on the record pipe) */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
            fail(ST_PDEATHSIG, errno, "PR_SET_PDEATHSIG (init): %s", strerror(errno));
        struct pollfd alive = {sp[1], 0, 0};
        if (poll(&alive, 1, 0) > 0 && (alive.revents & (POLLERR | POLLHUP)))
            _exit(EXIT_SETUP);
        if (set_limit(RLIMIT_NPROC, cfg.nproc, cfg.nproc) < 0)
            fail(ST_RLIMIT, errno, "RLIMIT_NPROC: %s", strerror(errno));
        run_init(&cfg, sp[1], ps[1]);
    }
    close(sp[1]);
    close(gp[0]);
    close(ps[1]);
    int e_cg;
    if (cfg.memory_bound && (e_cg = cgroup_attach(&cg, init)) < 0) {
        kill(init, SIGKILL);
        waitpid(init, NULL, 0);
        cgroup_remove(&cg);
        fail(ST_RLIMIT, -e_cg, "moving the sandbox into its cgroup: %s", strerror(-e_cg));
    }
    if (euid == 0) {
        char who[16];
        snprintf(who, sizeof who, "%d", (int)init);
        int e = write_id_maps(who, cfg.uid, huid, cfg.gid, hgid);
        if (e) {
            kill(init, SIGKILL);
            waitpid(init, NULL, 0);
            fail(ST_IDMAP, e, "writing id maps (uid %lld->%lld, gid %lld->%lld): %s", cfg.uid,
                 huid, cfg.gid, hgid, strerror(e));
        }
    }
    if (euid == 0 || cfg.memory_bound) {
        if (write_all(gp[1], "g", 1) < 0) {
            kill(init, SIGKILL);
            waitpid(init, NULL, 0);
            fail(ST_FORK, errno, "start init: %s", strerror(errno));
        }
    }
    close(gp[1]);
    return run_helper(&cfg, &cg, init, sp[0], ps[0]);
}
