/* Config message parser. Format (README.md): a sequence of NUL-terminated
 * records "key=value\0"; the first record is "version=1". Scalars may appear
 * once; argv, env and bind_ro (+ optional bind_ro_dest) repeat. */
#include "sandbox.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_CONFIG (1u << 20)
/* Records: up to 4097 argv (the program and the driver's 4096 arguments), env, binds and the
 * scalars, all within MAX_CONFIG bytes. */
#define MAX_ITEMS 8192

static const char FIXED_PATH[] = "PATH=/usr/local/bin:/usr/bin:/bin";

int read_all_fd(int fd, char **out, size_t *outlen, size_t max)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        return -ENOMEM;
    for (;;) {
        if (len == cap) {
            if (cap >= max) {
                free(buf);
                return -EFBIG;
            }
            cap *= 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                return -ENOMEM;
            }
            buf = nb;
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            free(buf);
            return -e;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    *out = buf;
    *outlen = len;
    return 0;
}

/* Environment entries never passed, whatever the driver sends: the dynamic loader's LD_*,
 * glibc's tunables, charset-converter and locale paths (each loads code or data from a path
 * the caller picks), the shells' startup hooks, and PATH (fixed). */
int env_refused(const char *entry)
{
    static const char *const names[] = {"PATH", "GCONV_PATH", "LOCPATH", "BASH_ENV", "ENV",
                                        "GLIBC_TUNABLES", "NLSPATH", "HOSTALIASES", "RESOLV_HOST_CONF",
                                        "MALLOC_TRACE", "LOCALDOMAIN", "SHELLOPTS", "BASHOPTS", "PS4"};
    if (!strncmp(entry, "LD_", 3))
        return 1;
    size_t n = strcspn(entry, "=");
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i]) == n && !strncmp(entry, names[i], n))
            return 1;
    return 0;
}

static int errf(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int errf(char *err, size_t errlen, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return code;
}

static int parse_num(const char *v, long long *out, int allow_unlimited)
{
    if (allow_unlimited && strcmp(v, "unlimited") == 0) {
        *out = (long long)RLIM_INFINITY;
        return 0;
    }
    if (*v < '0' || *v > '9')
        return -1;
    errno = 0;
    char *end;
    long long n = strtoll(v, &end, 10);
    if (errno || *end || n < 0)
        return -1;
    *out = n;
    return 0;
}

static int parse_bool(const char *v, int *out)
{
    if (!strcmp(v, "1") || !strcmp(v, "true")) {
        *out = 1;
        return 0;
    }
    if (!strcmp(v, "0") || !strcmp(v, "false")) {
        *out = 0;
        return 0;
    }
    return -1;
}

/* An inside path: absolute, no "." or ".." components, no empty components
 * except a trailing slash is rejected too, length bounded. */
static int valid_inside_path(const char *p)
{
    if (p[0] != '/' || strlen(p) >= PATH_MAX)
        return 0;
    if (p[1] == 0)
        return 1;
    const char *s = p + 1;
    while (*s) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 0)
            return 0;
        if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
            return 0;
        if (!e)
            break;
        s = e + 1;
        if (!*s)
            return 0; /* trailing slash */
    }
    return 1;
}

static int reserved_mountpoint(const char *p)
{
    static const char *const reserved[] = {"/", "/proc", "/dev", "/tmp", "/etc", "/usr",
                                           "/bin", "/sbin", "/lib", "/lib32", "/lib64",
                                           "/libx32"};
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        if (!strcmp(p, reserved[i]))
            return 1;
    if (!strncmp(p, "/proc/", 6) || !strncmp(p, "/dev/", 5))
        return 1;
    return 0;
}

static char *canonical_host_path(const char *p, int want_dir, char *err, size_t errlen, int *code)
{
    if (p[0] != '/') {
        *code = errf(err, errlen, EINVAL, "host path must be absolute: %s", p);
        return NULL;
    }
    char *r = realpath(p, NULL);
    if (!r) {
        *code = errf(err, errlen, errno, "host path %s: %s", p, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (stat(r, &st) < 0) {
        *code = errf(err, errlen, errno, "host path %s: %s", r, strerror(errno));
        free(r);
        return NULL;
    }
    if (want_dir && !S_ISDIR(st.st_mode)) {
        *code = errf(err, errlen, ENOTDIR, "host path %s is not a directory", r);
        free(r);
        return NULL;
    }
    if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) {
        *code = errf(err, errlen, EINVAL, "host path %s is neither a file nor a directory", r);
        free(r);
        return NULL;
    }
    return r;
}

static int env_name_ok(const char *kv)
{
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv)
        return 0;
    for (const char *p = kv; p < eq; p++) {
        char ch = *p;
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || ch == '_' ||
              (p != kv && ch >= '0' && ch <= '9')))
            return 0;
    }
    return 1;
}

/* The keys of memory and work-dir limits (README §1), numbered from 0 in the
 * order of the scalars table after "wait_teardown". */
static int parse_limits_key(struct config *c, int i, char *v)
{
    switch (i) {
    case 0: return parse_num(v, &c->memory_max_bytes, 1) || c->memory_max_bytes < (4LL << 20);
    case 1: return parse_num(v, &c->pids_max, 1) || c->pids_max < 1;
    case 2: return parse_num(v, &c->shm_bytes, 0) || c->shm_bytes > (1LL << 40);
    case 3:
        if (!strcmp(v, "auto")) c->cgroup_mode = CGROUP_AUTO;
        else if (!strcmp(v, "off")) c->cgroup_mode = CGROUP_OFF;
        else if (!strcmp(v, "required")) c->cgroup_mode = CGROUP_REQUIRED;
        else return -1;
        return 0;
    case 4: c->cgroup_parent = v; return v[0] != '/' || !valid_inside_path(v);
    case 5:
        if (!strcmp(v, "auto")) c->memfd_mode = MEMFD_AUTO;
        else if (!strcmp(v, "allow")) c->memfd_mode = MEMFD_ALLOW;
        else if (!strcmp(v, "deny")) c->memfd_mode = MEMFD_DENY;
        else return -1;
        return 0;
    case 6: return parse_num(v, &c->workdir_bytes, 1) || c->workdir_bytes < (64LL << 10);
    case 7: return parse_num(v, &c->workdir_inodes, 0) || c->workdir_inodes < 16 || c->workdir_inodes > (1LL << 31);
    case 8: return parse_bool(v, &c->allow_exec_in_work);
    }
    return -1;
}

/* Total of three byte limits, "unlimited" if any is. */
static long long sum_limits(long long a, long long b, long long d)
{
    long long inf = (long long)RLIM_INFINITY;
    if (a == inf || b == inf || d == inf)
        return inf;
    return a + b + d;
}

int config_parse(struct config *c, char *buf, size_t len, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    c->cpu_seconds = 30;
    c->memory_bytes = 1LL << 30;
    c->nproc = 64;
    c->nofile = 256;
    c->fsize_bytes = 64LL << 20;
    c->tmp_bytes = 64LL << 20;
    c->deadline_ms = 0;
    c->uid = 1000;
    c->gid = 1000;
    c->host_uid = UNSET;
    c->host_gid = UNSET;
    c->parent_pid = UNSET;
    c->memory_max_bytes = UNSET;
    c->pids_max = UNSET;
    c->shm_bytes = 32LL << 20;
    c->workdir_bytes = 256LL << 20;
    c->workdir_inodes = 16384;

    if (len == 0)
        return errf(err, errlen, EINVAL, "empty config message");
    if (buf[len - 1] != '\0')
        return errf(err, errlen, EINVAL, "config message must end with a NUL byte");

    size_t nrec = 0;
    for (size_t i = 0; i < len; i++)
        if (!buf[i])
            nrec++;
    if (nrec > MAX_ITEMS)
        return errf(err, errlen, E2BIG, "too many config records (%zu > %d)", nrec, MAX_ITEMS);

    c->argv = calloc(nrec + 1, sizeof(char *));
    c->env = calloc(nrec + 2, sizeof(char *));
    c->binds = calloc(nrec + 1, sizeof(struct bind));
    if (!c->argv || !c->env || !c->binds)
        return errf(err, errlen, ENOMEM, "out of memory");
    c->env[c->envc++] = (char *)FIXED_PATH;

    unsigned long long seen = 0; /* bitmask of scalar keys already given */
    char *workdir_raw = NULL;
    int have_version = 0, code = 0;
    char *p = buf, *end = buf + len;
    size_t recno = 0;
    while (p < end) {
        char *rec = p;
        p += strlen(p) + 1;
        recno++;
        char *eq = strchr(rec, '=');
        if (!eq)
            return errf(err, errlen, EINVAL, "record %zu has no '=': \"%.40s\"", recno, rec);
        *eq = 0;
        const char *k = rec;
        char *v = eq + 1;

        if (recno == 1) {
            if (strcmp(k, "version") || strcmp(v, "1"))
                return errf(err, errlen, EINVAL,
                            "first record must be \"version=1\" (got \"%.20s=%.20s\")", k, v);
            have_version = 1;
            continue;
        }
        /* repeated keys */
        if (!strcmp(k, "argv")) {
            c->argv[c->argc++] = v;
            continue;
        }
        if (!strcmp(k, "env")) {
            if (!env_name_ok(v))
                return errf(err, errlen, EINVAL, "env record %zu is not NAME=VALUE", recno);
            if (env_refused(v))
                continue; /* never LD_* or loader/libc/shell hooks; PATH is fixed */
            c->env[c->envc++] = v;
            continue;
        }
        if (!strcmp(k, "bind_ro")) {
            int e = 0;
            char *src = canonical_host_path(v, 0, err, errlen, &e);
            if (!src)
                return e;
            c->binds[c->nbinds].src = src;
            c->binds[c->nbinds].dst = v; /* same path inside unless bind_ro_dest follows */
            c->nbinds++;
            continue;
        }
        if (!strcmp(k, "bind_ro_dest")) {
            if (c->nbinds == 0)
                return errf(err, errlen, EINVAL, "bind_ro_dest without a preceding bind_ro");
            c->binds[c->nbinds - 1].dst = v;
            continue;
        }

        static const char *const scalars[] = {
            "program", "workdir", "workdir_mount", "cwd", "hostname", "cpu_seconds",
            "memory_bytes", "nproc", "nofile", "fsize_bytes", "tmp_bytes", "deadline_ms",
            "uid", "gid", "host_uid", "host_gid", "parent_pid", "allow_network", "loopback",
            "wait_teardown", "memory_max_bytes", "pids_max", "shm_bytes", "cgroup", "cgroup_parent",
            "memfd", "workdir_bytes", "workdir_inodes", "allow_exec_in_work"};
        int idx = -1;
        for (size_t i = 0; i < sizeof scalars / sizeof scalars[0]; i++)
            if (!strcmp(k, scalars[i]))
                idx = (int)i;
        if (idx < 0)
            return errf(err, errlen, EINVAL, "unknown config key \"%.40s\"", k);
        if (seen & (1ULL << idx))
            return errf(err, errlen, EINVAL, "config key \"%s\" given twice", k);
        seen |= 1ULL << idx;

        long long n = 0;
        int bad = 0;
        switch (idx) {
        case 0: c->program = v; break;
        case 1: workdir_raw = v; break;
        case 2: c->workdir_mount = v; break;
        case 3: c->cwd = v; break;
        case 4: c->hostname = v; break;
        case 5: bad = parse_num(v, &c->cpu_seconds, 1); break;
        case 6: bad = parse_num(v, &c->memory_bytes, 1); break;
        case 7: bad = parse_num(v, &c->nproc, 1); break;
        case 8: bad = parse_num(v, &c->nofile, 0); break;
        case 9: bad = parse_num(v, &c->fsize_bytes, 1); break;
        case 10: bad = parse_num(v, &c->tmp_bytes, 0); break;
        case 11: bad = parse_num(v, &c->deadline_ms, 0); break;
        case 12: bad = parse_num(v, &c->uid, 0) || c->uid > 65535; break;
        case 13: bad = parse_num(v, &c->gid, 0) || c->gid > 65535; break;
        case 14: bad = parse_num(v, &c->host_uid, 0) || c->host_uid > 0x7fffffff; break;
        case 15: bad = parse_num(v, &c->host_gid, 0) || c->host_gid > 0x7fffffff; break;
        case 16: bad = parse_num(v, &n, 0) || n < 1 || n > 0x7fffffff; c->parent_pid = n; break;
        case 17: bad = parse_bool(v, &c->allow_network); break;
        case 18: bad = parse_bool(v, &c->loopback); break;
        case 19: bad = parse_bool(v, &c->wait_teardown); break;
        default: bad = parse_limits_key(c, idx - 20, v); break;
        }
        if (bad)
            return errf(err, errlen, EINVAL, "bad value for %s: \"%.40s\"", k, v);
    }
    if (!have_version)
        return errf(err, errlen, EINVAL, "missing version record");

    /* program: absolute, never resolved through PATH */
    if (!c->program || !*c->program)
        return errf(err, errlen, EINVAL, "missing program");
    if (c->program[0] != '/')
        return errf(err, errlen, EINVAL,
                    "program must be an absolute path (refusing \"%.200s\")", c->program);
    if (!valid_inside_path(c->program))
        return errf(err, errlen, EINVAL, "program path is not canonical: %.200s", c->program);
    if (c->argc == 0)
        c->argv[c->argc++] = c->program;

    if (c->nofile < 16 || c->nofile > 1048576)
        return errf(err, errlen, EINVAL, "nofile must be in 16..1048576");
    if (c->nproc == 0)
        return errf(err, errlen, EINVAL, "nproc must be >= 1");
    if (c->tmp_bytes == 0)
        c->tmp_bytes = 64LL << 20;
    /* the cgroup bounds all the sandbox keeps in RAM: process memory, /tmp
     * and the work dir tmpfs (README §7) */
    if (c->memory_max_bytes == UNSET)
        c->memory_max_bytes = sum_limits(c->memory_bytes, c->tmp_bytes, c->workdir_bytes);
    if (c->pids_max == UNSET)
        c->pids_max = c->nproc;

    if (!c->workdir_mount)
        c->workdir_mount = "/work";
    if (!valid_inside_path(c->workdir_mount) || reserved_mountpoint(c->workdir_mount))
        return errf(err, errlen, EINVAL, "bad workdir_mount \"%.200s\"", c->workdir_mount);
    if (workdir_raw) {
        c->workdir = canonical_host_path(workdir_raw, 1, err, errlen, &code);
        if (!c->workdir)
            return code;
    }
    if (!c->cwd)
        c->cwd = c->workdir ? c->workdir_mount : "/";
    if (!valid_inside_path(c->cwd))
        return errf(err, errlen, EINVAL, "cwd must be an absolute canonical path: %.200s", c->cwd);

    if (!c->hostname)
        c->hostname = "nova-sandbox";
    size_t hl = strlen(c->hostname);
    if (hl == 0 || hl > 64)
        return errf(err, errlen, EINVAL, "hostname must be 1..64 bytes");
    for (const char *h = c->hostname; *h; h++)
        if (!((*h >= 'a' && *h <= 'z') || (*h >= 'A' && *h <= 'Z') || (*h >= '0' && *h <= '9') ||
              *h == '-' || *h == '.'))
            return errf(err, errlen, EINVAL, "hostname has invalid characters");

    for (size_t i = 0; i < c->nbinds; i++) {
        const char *d = c->binds[i].dst;
        if (!valid_inside_path(d) || reserved_mountpoint(d))
            return errf(err, errlen, EINVAL, "bad bind_ro destination \"%.200s\"", d);
        size_t wl = strlen(c->workdir_mount);
        if (!strcmp(d, c->workdir_mount) || (!strncmp(d, c->workdir_mount, wl) && d[wl] == '/'))
            return errf(err, errlen, EINVAL, "bind_ro destination %s is inside the workdir mount", d);
    }
    c->argv[c->argc] = NULL;
    c->env[c->envc] = NULL;
    return 0;
}
