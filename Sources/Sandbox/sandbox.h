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
};

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
/* seccomp_embed.c */
int install_seccomp(char *err, size_t errlen);
const void *embedded_bpf(size_t *len);

/* probe.c */
int run_probe(const char *self);

/* misc */
void json_escape(char *out, size_t outlen, const char *in);
int write_all(int fd, const void *buf, size_t len);

#endif
