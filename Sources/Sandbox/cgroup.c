/* Memory bounds beyond RLIMIT_AS (README §7): every sandbox gets its own
 * cgroup when the host can give it one — cgroup v2 (memory.max, which
 * charges shmem, tmpfs and memfd pages too; pids.max; memory.peak) or, on v1
 * and hybrid hosts, the v1 memory and pids controllers
 * (memory.limit_in_bytes, memory.memsw.limit_in_bytes, pids.max;
 * memory.max_usage_in_bytes). The helper creates it next to its own cgroup
 * before the clone, moves init into it before init does anything, reads the
 * peak and the OOM-kill count once init is gone, and removes it.
 *
 * Without a cgroup ("rlimit-only") the holes RLIMIT_AS leaves are closed one
 * by one: SysV shm is bounded by the ipc namespace's shmmax/shmall/shmmni
 * where init may set them (root helper), else shmget is refused; and
 * memfd_create is refused (memfd pages written with write(2) are in no
 * address space and no unprivileged limit counts them) — both by a second,
 * tiny seccomp filter. */
#include "sandbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define CG_PREFIX "nova-sandbox-"

const char *cgroup_bound_name(int mode)
{
    return mode == 2 ? "cgroup-v2" : mode == 1 ? "cgroup-v1" : "rlimit-only";
}

static int write_str(const char *dir, const char *file, const char *val)
{
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, file) >= sizeof path)
        return -ENAMETOOLONG;
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = write_all(fd, val, strlen(val)) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

static int write_ll(const char *dir, const char *file, long long v)
{
    char b[32];
    snprintf(b, sizeof b, "%lld", v);
    return write_str(dir, file, b);
}

/* A limit; "unlimited" (RLIM_INFINITY) is written as `unlimited`. */
static int write_limit(const char *dir, const char *file, long long v, const char *unlimited)
{
    return v == (long long)RLIM_INFINITY ? write_str(dir, file, unlimited) : write_ll(dir, file, v);
}

/* The value of `key` in a "key value" file (memory.events, oom_control), or
 * the single number of the file when key is NULL; -1 when unreadable. */
static long long read_value(const char *dir, const char *file, const char *key)
{
    char path[PATH_MAX], buf[1024];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, file) >= sizeof path)
        return -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    if (!key)
        return strtoll(buf, NULL, 10);
    size_t kl = strlen(key);
    for (char *line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
        if (!strncmp(line, key, kl) && line[kl] == ' ')
            return strtoll(line + kl + 1, NULL, 10);
    return -1;
}

/* This process's cgroup path in the hierarchy that has `controller` (v1) or
 * in the unified one (controller NULL). */
static int own_cgroup(const char *controller, char *out, size_t outlen)
{
    FILE *f = fopen("/proc/self/cgroup", "re");
    if (!f)
        return -1;
    char line[1024];
    int found = -1;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c2 = 0;
        const char *ctrls = c1 + 1, *path = c2 + 1;
        int match = 0;
        if (!controller) {
            match = !strcmp(line, "0") && *ctrls == 0;
        } else {
            char list[256];
            snprintf(list, sizeof list, ",%s,", ctrls);
            char want[64];
            snprintf(want, sizeof want, ",%s,", controller);
            match = strstr(list, want) != NULL;
        }
        if (match) {
            snprintf(out, outlen, "%s", path);
            found = 0;
            break;
        }
    }
    fclose(f);
    return found;
}

/* Mount point (and mounted root) of the cgroup2 hierarchy, or of the v1
 * hierarchy carrying `controller`. */
static int cgroup_mount(const char *controller, char *mnt, size_t mntlen, char *root, size_t rootlen)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        return -1;
    char line[4096];
    int found = -1;
    while (fgets(line, sizeof line, f)) {
        char *sep = strstr(line, " - ");
        if (!sep)
            continue;
        char fstype[64], source[256], opts[1024] = "";
        if (sscanf(sep + 3, "%63s %255s %1023s", fstype, source, opts) < 2)
            continue;
        if (controller) {
            char list[1100], want[64];
            snprintf(list, sizeof list, ",%s,", opts);
            snprintf(want, sizeof want, ",%s,", controller);
            if (strcmp(fstype, "cgroup") || !strstr(list, want))
                continue;
        } else if (strcmp(fstype, "cgroup2")) {
            continue;
        }
        char r[PATH_MAX], m[PATH_MAX];
        if (sscanf(line, "%*s %*s %*s %4095s %4095s", r, m) != 2)
            continue;
        snprintf(mnt, mntlen, "%s", m);
        snprintf(root, rootlen, "%s", r);
        found = 0;
        break;
    }
    fclose(f);
    return found;
}

/* Directory of this process's cgroup for `controller` (NULL: unified). */
static int own_cgroup_dir(const char *controller, char *out, size_t outlen)
{
    char path[PATH_MAX], mnt[PATH_MAX], root[PATH_MAX];
    if (own_cgroup(controller, path, sizeof path) < 0 ||
        cgroup_mount(controller, mnt, sizeof mnt, root, sizeof root) < 0)
        return -1;
    /* the path is relative to the cgroup namespace's root, which is what
     * the mount shows as its root when mounted from inside it */
    const char *rel = path;
    size_t rl = strlen(root);
    if (strcmp(root, "/") && !strncmp(path, root, rl) && (path[rl] == '/' || !path[rl]))
        rel = path + rl;
    return (size_t)snprintf(out, outlen, "%s%s", mnt, strcmp(rel, "/") ? rel : "") < outlen ? 0 : -1;
}

/* Remove leftovers of helpers that were SIGKILLed (their pid is in the name
 * and no longer runs); a populated one refuses rmdir and stays. */
static void sweep_stale(const char *parent)
{
    DIR *d = opendir(parent);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, CG_PREFIX, sizeof CG_PREFIX - 1))
            continue;
        long pid = strtol(e->d_name + sizeof CG_PREFIX - 1, NULL, 10);
        if (pid > 0 && kill((pid_t)pid, 0) < 0 && errno == ESRCH) {
            char p[PATH_MAX];
            if ((size_t)snprintf(p, sizeof p, "%s/%s", parent, e->d_name) < sizeof p)
                rmdir(p);
        }
    }
    closedir(d);
}

static int make_child(const char *parent, char *out, size_t outlen)
{
    sweep_stale(parent);
    if ((size_t)snprintf(out, outlen, "%s/" CG_PREFIX "%d", parent, (int)getpid()) >= outlen)
        return -ENAMETOOLONG;
    if (mkdir(out, 0700) < 0 && errno != EEXIST) {
        int e = errno;
        out[0] = 0; /* nothing to attach to or remove */
        return -e;
    }
    return 0;
}

static int file_exists(const char *dir, const char *file)
{
    char p[PATH_MAX];
    if ((size_t)snprintf(p, sizeof p, "%s/%s", dir, file) >= sizeof p)
        return 0;
    return access(p, F_OK) == 0;
}

static int try_v2(struct cgroup *g, const struct config *c)
{
    char parent[PATH_MAX];
    if (c->cgroup_parent) {
        if ((size_t)snprintf(parent, sizeof parent, "%s", c->cgroup_parent) >= sizeof parent)
            return -ENAMETOOLONG;
    } else if (own_cgroup_dir(NULL, parent, sizeof parent) < 0)
        return -ENOENT;
    char ctrl[256] = "";
    {
        char p[PATH_MAX];
        if ((size_t)snprintf(p, sizeof p, "%s/cgroup.controllers", parent) >= sizeof p)
            return -ENAMETOOLONG;
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return -errno;
        ssize_t n = read(fd, ctrl, sizeof ctrl - 1);
        close(fd);
        ctrl[n > 0 ? n : 0] = 0;
    }
    if (!strstr(ctrl, "memory"))
        return -EOPNOTSUPP;
    int rc = make_child(parent, g->v2, sizeof g->v2);
    if (rc)
        return rc;
    if (!file_exists(g->v2, "memory.max")) {
        /* the parent does not delegate the controllers to children yet:
         * enabling them fails (EBUSY) when processes live in the parent */
        (void)write_str(parent, "cgroup.subtree_control", "+memory");
        (void)write_str(parent, "cgroup.subtree_control", "+pids");
        if (!file_exists(g->v2, "memory.max")) {
            rmdir(g->v2);
            g->v2[0] = 0;
            return -EOPNOTSUPP;
        }
    }
    if ((rc = write_limit(g->v2, "memory.max", c->memory_max_bytes, "max")) < 0) {
        rmdir(g->v2);
        g->v2[0] = 0;
        return rc;
    }
    (void)write_str(g->v2, "memory.swap.max", "0");
    if (file_exists(g->v2, "pids.max"))
        (void)write_limit(g->v2, "pids.max", c->pids_max, "max");
    return 2;
}

static int try_v1(struct cgroup *g, const struct config *c)
{
    char parent[PATH_MAX];
    if (own_cgroup_dir("memory", parent, sizeof parent) < 0)
        return -ENOENT;
    int rc = make_child(parent, g->mem, sizeof g->mem);
    if (rc)
        return rc;
    if ((rc = write_limit(g->mem, "memory.limit_in_bytes", c->memory_max_bytes, "-1")) < 0) {
        rmdir(g->mem);
        g->mem[0] = 0;
        return rc;
    }
    /* memory+swap: no escape into swap (absent without swap accounting) */
    if (file_exists(g->mem, "memory.memsw.limit_in_bytes"))
        (void)write_limit(g->mem, "memory.memsw.limit_in_bytes", c->memory_max_bytes, "-1");
    if (own_cgroup_dir("pids", parent, sizeof parent) == 0 && make_child(parent, g->pids, sizeof g->pids) == 0 &&
        write_limit(g->pids, "pids.max", c->pids_max, "max") < 0) {
        rmdir(g->pids);
        g->pids[0] = 0;
    }
    return 1;
}

int cgroup_create(struct cgroup *g, const struct config *c)
{
    memset(g, 0, sizeof *g);
    if (c->cgroup_mode == CGROUP_OFF) {
        snprintf(g->why, sizeof g->why, "cgroup=off in the config");
        return 0;
    }
    int r2 = try_v2(g, c);
    if (r2 == 2)
        return g->mode = 2;
    int r1 = try_v1(g, c);
    if (r1 == 1)
        return g->mode = 1;
    snprintf(g->why, sizeof g->why, "no writable cgroup (v2: %s; v1: %s)",
             strerror(r2 < 0 ? -r2 : EOPNOTSUPP), strerror(r1 < 0 ? -r1 : EOPNOTSUPP));
    return 0;
}

int cgroup_attach(const struct cgroup *g, pid_t pid)
{
    char b[24];
    snprintf(b, sizeof b, "%d", (int)pid);
    int rc = 0;
    if (g->mode == 2)
        rc = write_str(g->v2, "cgroup.procs", b);
    if (g->mode == 1) {
        rc = write_str(g->mem, "cgroup.procs", b);
        if (!rc && g->pids[0])
            rc = write_str(g->pids, "cgroup.procs", b);
    }
    return rc;
}

void cgroup_collect(const struct cgroup *g, long long *peak, long long *oom_kills)
{
    *peak = *oom_kills = -1;
    if (g->mode == 2) {
        *peak = read_value(g->v2, "memory.peak", NULL);
        *oom_kills = read_value(g->v2, "memory.events", "oom_kill");
    } else if (g->mode == 1) {
        *peak = read_value(g->mem, "memory.max_usage_in_bytes", NULL);
        *oom_kills = read_value(g->mem, "memory.oom_control", "oom_kill");
    }
}

/* rmdir once every task has left; an exited task may take a moment to be
 * unlinked from the cgroup, so EBUSY is retried for up to ~0.5 s. */
static void remove_dir(char *dir)
{
    if (!dir[0])
        return;
    for (int i = 0; i < 500; i++) {
        if (rmdir(dir) == 0 || errno != EBUSY)
            break;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    dir[0] = 0;
}

void cgroup_remove(struct cgroup *g)
{
    remove_dir(g->v2);
    remove_dir(g->mem);
    remove_dir(g->pids);
}

/* ------------------------------------------------ inside the sandbox (init) */

/* Bound SysV shared memory in the sandbox's own ipc namespace. The kernel
 * lets only the namespace's uid 0 (or, when that is unmapped, host root)
 * write these per-namespace sysctls, so this works in the init of a root
 * helper before it takes the sandbox uid, and for a non-root helper only
 * with uid=0; returns 0 or an errno. Runs before the pivot (host /proc: the
 * files show the caller's ipc namespace). */
int limit_sysv_shm(const struct config *c)
{
    long page = sysconf(_SC_PAGESIZE);
    char v[32];
    snprintf(v, sizeof v, "%lld", c->shm_bytes);
    int rc = write_str("/proc/sys/kernel", "shmmax", v);
    snprintf(v, sizeof v, "%lld", c->shm_bytes / (page > 0 ? page : 4096));
    if (!rc)
        rc = write_str("/proc/sys/kernel", "shmall", v);
    if (!rc)
        rc = write_str("/proc/sys/kernel", "shmmni", "64");
    return -rc;
}

/* ---------------------------------------------- inside the sandbox (program) */

/* The program and its descendants are the OOM killer's first choice, inside
 * the cgroup (init, which reports, survives) and on the host. */
void prefer_oom_victim(void)
{
    int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        (void)write_all(fd, "1000", 4);
        close(fd);
    }
}

/* A second, tiny filter stacked on the main one: memfd_create (and, when
 * deny_shm, shmget) -> EPERM. The main filter already kills foreign
 * architectures, so only native numbers are checked here. */
int deny_unbounded_memory(int deny_memfd, int deny_shm, char *err, size_t errlen)
{
#if defined(__x86_64__)
    const unsigned arch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
    const unsigned arch = AUDIT_ARCH_AARCH64;
#else
    snprintf(err, errlen, "deny_memfd: unsupported architecture");
    return ENOSYS;
#endif
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, arch, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, deny_memfd ? SYS_memfd_create : ~0U, 1, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, deny_shm ? SYS_shmget : ~0U, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {(unsigned short)(sizeof f / sizeof f[0]), f};
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0) {
        int e = errno;
        snprintf(err, errlen, "memfd filter: %s", strerror(e));
        return e;
    }
    return 0;
}
