/* seccomp deny-list (SANDBOX.md step 7), built with libseccomp.
 * Default action: allow. Listed calls fail with EPERM; clone3 fails with
 * ENOSYS so libc falls back to clone(2), whose flags we can inspect.
 * Any syscall of a foreign architecture (i386 `int 0x80`, x32) kills the
 * process (SIGSYS). Argument compares are 32-bit masked where the kernel
 * only looks at the low 32 bits (ioctl request, clone flags, socket domain). */
#include "sandbox.h"

#include <errno.h>
#include <linux/sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
#ifndef AF_ALG
#define AF_ALG 38
#endif
#ifndef AF_XDP
#define AF_XDP 44
#endif
#ifndef AF_KCM
#define AF_KCM 41
#endif
#ifndef AF_SMC
#define AF_SMC 43
#endif
#ifndef AF_MCTP
#define AF_MCTP 45
#endif

/* Denied outright with EPERM. Names unknown to this libseccomp are skipped. */
static const char *const deny_eperm[] = {
    /* SANDBOX.md step 7 */
    "ptrace", "process_vm_readv", "process_vm_writev", "mount", "umount", "umount2",
    "pivot_root", "chroot", "unshare", "setns", "keyctl", "add_key", "request_key", "bpf",
    "perf_event_open", "userfaultfd", "personality", "io_uring_setup", "io_uring_enter",
    "io_uring_register", "kexec_load", "kexec_file_load", "init_module", "finit_module",
    "delete_module", "reboot", "swapon", "swapoff", "sethostname", "setdomainname", "acct",
    "quotactl", "quotactl_fd", "open_by_handle_at",
    /* same family: the new mount API, fd theft across processes, kernel surface */
    "fsopen", "fsconfig", "fsmount", "fspick", "open_tree", "move_mount", "mount_setattr",
    "pidfd_getfd", "process_madvise", "kcmp", "name_to_handle_at", "lookup_dcookie",
    "uselib", "_sysctl", "nfsservctl", "vhangup", "iopl", "ioperm", "syslog",
    "fanotify_init", "settimeofday", "clock_settime", "move_pages", "migrate_pages",
    "get_kernel_syms",
    "query_module", "create_module", "vm86", "vm86old", "afs_syscall", "lsm_set_self_attr",
    /* per-process LDT (x86 segment tricks), newer mount-API and mount-listing calls */
    "modify_ldt", "open_tree_attr", "listmount", "statmount",
};

/* Numbers of listed calls that older libseccomp releases do not know by name (new calls
 * share one number across architectures; modify_ldt is x86 only). A listed name that
 * neither libseccomp nor this table resolves is an error, never skipped silently. */
struct known_nr {
    const char *name;
    int x86_64; /* -1: not a call on x86_64 */
    int generic; /* aarch64 and other asm-generic tables; -1: none */
};
static const struct known_nr fallback_nrs[] = {
    {"modify_ldt", 154, -1},        {"statmount", 457, 457},  {"listmount", 458, 458},
    {"lsm_set_self_attr", 460, 460}, {"open_tree_attr", 467, 467},
    {"quotactl_fd", 443, 443},      {"mount_setattr", 442, 442}, {"process_madvise", 440, 440},
    {"pidfd_getfd", 438, 438},
};

/* Names of deny_eperm that are calls on no architecture we build for (kept in the list for
 * other architectures): resolving them is not expected. */
static const char *const other_arch_only[] = {
    "vm86", "vm86old", "ioperm", "iopl", "create_module", "query_module", "get_kernel_syms",
    "_sysctl", "nfsservctl", "uselib", "afs_syscall", "umount", "modify_ldt",
};

static int is_other_arch_only(const char *name)
{
    for (size_t i = 0; i < sizeof other_arch_only / sizeof other_arch_only[0]; i++)
        if (!strcmp(other_arch_only[i], name))
            return 1;
    return 0;
}

/* The syscall number of `name` on this architecture: libseccomp's, else the table's, else
 * __NR_SCMP_ERROR. */
static int resolve_nr(const char *name)
{
    int nr = seccomp_syscall_resolve_name(name);
    if (nr != __NR_SCMP_ERROR)
        return nr;
    for (size_t i = 0; i < sizeof fallback_nrs / sizeof fallback_nrs[0]; i++) {
        if (strcmp(fallback_nrs[i].name, name))
            continue;
#if defined(__x86_64__)
        return fallback_nrs[i].x86_64 >= 0 ? fallback_nrs[i].x86_64 : __NR_SCMP_ERROR;
#else
        return fallback_nrs[i].generic >= 0 ? fallback_nrs[i].generic : __NR_SCMP_ERROR;
#endif
    }
    return __NR_SCMP_ERROR;
}

/* `--check-filter`: listed calls that this build cannot deny (neither libseccomp nor the
 * table knows their number here, and they are not known to be absent on this
 * architecture). Writes them, space-separated, to buf; returns how many. */
int filter_unresolved(char *buf, size_t len)
{
    int n = 0;
    size_t o = 0;
    if (len)
        buf[0] = 0;
    for (size_t i = 0; i < sizeof deny_eperm / sizeof deny_eperm[0]; i++) {
        if (resolve_nr(deny_eperm[i]) != __NR_SCMP_ERROR || is_other_arch_only(deny_eperm[i]))
            continue;
        n++;
        int w = snprintf(buf + o, o < len ? len - o : 0, "%s%s", n > 1 ? " " : "", deny_eperm[i]);
        if (w > 0)
            o += (size_t)w;
    }
    return n;
}

static const unsigned long ns_flags[] = {CLONE_NEWNS,  CLONE_NEWUTS, CLONE_NEWIPC,
                                         CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET,
                                         CLONE_NEWCGROUP};

/* Socket families a sandboxed program may use: local sockets, IP (the network namespace has
 * only loopback unless the config gives more) and netlink (glibc's getaddrinfo and
 * getifaddrs use it; it is per network namespace). Every other family 0..63 is refused:
 * vsock reaches the hypervisor host and is not namespaced, packet, alg, bluetooth, tipc,
 * rds, xdp… are kernel surface nothing here needs. */
static int family_allowed(int f)
{
    return f == AF_UNIX || f == AF_INET || f == AF_INET6 || f == AF_NETLINK;
}

static scmp_filter_ctx build(char *err, size_t errlen)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx) {
        snprintf(err, errlen, "seccomp_init failed");
        return NULL;
    }
    int rc;
#define CHECK(what)                                                                 \
    do {                                                                            \
        if (rc < 0) {                                                               \
            snprintf(err, errlen, "%s: %s", what, strerror(-rc));                   \
            seccomp_release(ctx);                                                   \
            return NULL;                                                            \
        }                                                                           \
    } while (0)

    /* foreign arch (i386 int 0x80 on x86_64, x32 bit) -> kill the process */
    rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
    CHECK("badarch");
    rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 1);
    CHECK("nnp");
#if SCMP_VER_MAJOR > 2 || (SCMP_VER_MAJOR == 2 && SCMP_VER_MINOR >= 5)
    seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2); /* binary tree; best effort */
#endif

    for (size_t i = 0; i < sizeof deny_eperm / sizeof deny_eperm[0]; i++) {
        int nr = resolve_nr(deny_eperm[i]);
        if (nr == __NR_SCMP_ERROR)
            continue; /* reported by --check-filter unless absent on this arch */
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
        if (rc == -EDOM || rc == -EFAULT)
            continue; /* not a syscall on this arch */
        CHECK(deny_eperm[i]);
    }

    /* clone3 takes its flags in memory we cannot inspect: ENOSYS so that
     * glibc falls back to clone(2). */
    int nr = seccomp_syscall_resolve_name("clone3");
    if (nr != __NR_SCMP_ERROR) {
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), nr, 0);
        CHECK("clone3");
    }
    /* clone with any namespace flag -> EPERM (the kernel uses the low 32 bits) */
    for (size_t i = 0; i < sizeof ns_flags / sizeof ns_flags[0]; i++) {
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, ns_flags[i] & 0xffffffffUL,
                                      ns_flags[i]));
        CHECK("clone flags");
    }
    /* ioctl request is an unsigned int in the kernel: compare only the low
     * 32 bits so TIOCSTI | (1UL << 32) is caught too. */
    static const unsigned long bad_ioctls[] = {TIOCSTI, TIOCLINUX};
    for (size_t i = 0; i < sizeof bad_ioctls / sizeof bad_ioctls[0]; i++) {
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
                              SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffUL, bad_ioctls[i]));
        CHECK("ioctl");
    }
    for (int f = 0; f < 64; f++) {
        if (family_allowed(f))
            continue;
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(socket), 1,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffffUL, (scmp_datum_t)f));
        CHECK("socket");
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(socketpair), 1,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffffUL, (scmp_datum_t)f));
        CHECK("socketpair");
    }
#undef CHECK
    return ctx;
}

/* Runtime-built filter, only for checks (`--check-filter`) and the probe:
 * the hot path installs the BPF generated at build time (seccomp_embed.c). */
int install_seccomp_libseccomp(char *err, size_t errlen)
{
    scmp_filter_ctx ctx = build(err, errlen);
    if (!ctx)
        return EINVAL;
    int rc = seccomp_load(ctx);
    seccomp_release(ctx);
    if (rc < 0) {
        snprintf(err, errlen, "seccomp_load: %s", strerror(-rc));
        return -rc;
    }
    return 0;
}

/* Raw BPF of the same filter (for `--export-bpf`, e.g. bwrap --seccomp). */
int export_bpf(int fd)
{
    char err[256];
    scmp_filter_ctx ctx = build(err, sizeof err);
    if (!ctx) {
        fprintf(stderr, "nova-sandbox: %s\n", err);
        return -1;
    }
    int rc = seccomp_export_bpf(ctx, fd);
    seccomp_release(ctx);
    return rc < 0 ? -1 : 0;
}

const char *libseccomp_version(void)
{
    static char buf[32];
    const struct scmp_version *v = seccomp_version();
    if (!v)
        return "unknown";
    snprintf(buf, sizeof buf, "%u.%u.%u", v->major, v->minor, v->micro);
    return buf;
}
