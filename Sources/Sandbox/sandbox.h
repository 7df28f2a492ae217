/* nova-sandbox — launch helper for the restricted shell driver.
 * Shared declarations. See README.md for the config format and protocol. */
#ifndef NOVA_SANDBOX_H
#define NOVA_SANDBOX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#define NOVA_SANDBOX_VERSION "1.0"

/* Exit codes of nova-sandbox itself (the status fd is authoritative). */
#define EXIT_TIMEOUT 124 /* wall-clock deadline passed, sandbox killed            */
#define EXIT_SETUP 125   /* sandbox setup failed (config, namespaces, mounts, ...) */
#define EXIT_NOEXEC 126  /* program found but execve failed (EACCES, ENOEXEC, ...) */
#define EXIT_NOENT 127   /* program not found inside the sandbox (ENOENT/ENOTDIR)  */
/* A program killed by signal S makes the helper exit with 128+S. */

#define UNSET (-1LL)

struct bind {
    char *src; /* host path, canonicalized (realpath) at parse time */
    char *dst; /* absolute path inside the sandbox                  */
    int fd;    /* O_PATH descriptor opened by init (before it drops to the sandbox uid) */
};

struct config {
    char *program; /* absolute path inside the sandbox */
    char **argv;   /* NULL-terminated */
    size_t argc;
    char **env; /* NULL-terminated, PATH prepended, LD_* dropped */
    size_t envc;
    char *workdir;       /* host path (canonical) or NULL */
    int workdir_fd;      /* O_PATH descriptor opened by init */
    char *workdir_mount; /* inside path, default /work */
    char *cwd;           /* inside path */
    char *hostname;
    long long cpu_seconds, memory_bytes, nproc, nofile, fsize_bytes, tmp_bytes;
    long long deadline_ms;
    long long uid, gid;           /* inside the sandbox */
    long long host_uid, host_gid; /* outside, only honoured when running as root */
    long long parent_pid;
    struct bind *binds;
    size_t nbinds;
    int allow_network;
    int loopback;
    int wait_teardown; /* helper waits for init's full exit before exiting */
    /* memory beyond RLIMIT_AS (cgroup.c) */
    long long memory_max_bytes; /* cgroup memory limit of the whole sandbox */
    long long pids_max;         /* cgroup pids.max */
    long long shm_bytes;        /* SysV shm of the ipc namespace (shmmax, shmall) */
    int cgroup_mode;            /* CGROUP_AUTO / CGROUP_OFF / CGROUP_REQUIRED */
    char *cgroup_parent;        /* a delegated cgroup v2 directory, or NULL */
    int memfd_mode;             /* MEMFD_AUTO / MEMFD_ALLOW / MEMFD_DENY */
    int memory_bound;           /* resolved before the clone: 0 rlimit-only, 1 v1, 2 v2 */
    int deny_memfd;             /* resolved before the clone */
    int shm_state;              /* resolved in init: SHM_LIMITED / SHM_CGROUP / SHM_DENIED */
    /* the work dir's file system (workfs.c) */
    long long workdir_bytes;  /* size of the work dir tmpfs; RLIM_INFINITY: plain bind */
    long long workdir_inodes; /* its nr_inodes */
    int allow_exec_in_work;   /* 0: /work and /tmp are noexec */
};

enum { CGROUP_AUTO, CGROUP_OFF, CGROUP_REQUIRED };
enum { MEMFD_AUTO, MEMFD_ALLOW, MEMFD_DENY };
enum { SHM_LIMITED = 1, SHM_CGROUP, SHM_DENIED };

/* The dedicated host uid/gid a root helper maps the sandbox to when neither
 * the config nor a non-root owner of the work dir names one (never 65534,
 * which other daemons share). */
#define DEDICATED_HOST_ID 2000000000LL

/* cgroup.c — the helper's view of the sandbox's cgroup */
struct cgroup {
    int mode; /* 0 none, 1 v1, 2 v2 */
    char v2[4096], mem[4096], pids[4096];
    char why[256];
};
int cgroup_create(struct cgroup *g, const struct config *c);
int cgroup_attach(const struct cgroup *g, pid_t pid);
void cgroup_collect(const struct cgroup *g, long long *peak, long long *oom_kills);
void cgroup_remove(struct cgroup *g);
const char *cgroup_bound_name(int mode);
int limit_sysv_shm(const struct config *c);
void prefer_oom_victim(void);
int deny_unbounded_memory(int deny_memfd, int deny_shm, char *err, size_t errlen);

/* workfs.c — in the sandbox init */
void workfs_mount(const struct config *c, unsigned long noexec);
int workfs_copy_out(const struct config *c, char *err, size_t errlen);

/* Stages reported in {"stage":...}. */
enum stage {
    ST_ARGS, ST_CONFIG, ST_PDEATHSIG, ST_FDS, ST_SETSID, ST_RLIMIT, ST_NO_NEW_PRIVS,
    ST_USERNS, ST_UNSHARE, ST_IDMAP, ST_FORK, ST_MOUNT, ST_PIVOT, ST_HOSTNAME,
    ST_NETWORK, ST_CREDS, ST_CAPS, ST_SIGNALS, ST_CHDIR, ST_SECCOMP, ST_EXEC,
    ST_INTERNAL, ST__COUNT
};
const char *stage_name(int st);

/* Report a setup failure from whatever process we are in and exit. */
_Noreturn void fail(int stage, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* config.c */
int config_parse(struct config *c, char *buf, size_t len, char *err, size_t errlen);
int read_all_fd(int fd, char **out, size_t *outlen, size_t max);

/* mounts.c — runs in the sandbox init, inside the new user/pid namespaces. */
void open_bind_sources(struct config *c);
void setup_filesystem(const struct config *c);

/* filter.c */
int install_seccomp_libseccomp(char *err, size_t errlen);
int export_bpf(int fd);
const char *libseccomp_version(void);
/* Listed calls this build cannot deny (for --check-filter); names written to buf. */
int filter_unresolved(char *buf, size_t len);
/* Whether an environment entry ("NAME=value") is never passed to the program. */
int env_refused(const char *entry);
/* seccomp_embed.c */
int install_seccomp(char *err, size_t errlen);
const void *embedded_bpf(size_t *len);

/* probe.c */
int run_probe(const char *self);

/* misc */
void json_escape(char *out, size_t outlen, const char *in);
int write_all(int fd, const void *buf, size_t len);

#endif
