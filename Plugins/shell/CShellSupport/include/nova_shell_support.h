#ifndef NOVA_SHELL_SUPPORT_H
#define NOVA_SHELL_SUPPORT_H
/* System calls and fork/exec code the `shell` driver needs and Swift cannot express directly
 * (variadic syscall(2), GNU posix_spawn extensions, code between fork and exec). Every function
 * returns 0 or a non-negative fd on success and -errno on failure. */
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/** Spawns `path` (absolute) with posix_spawn from the calling thread: `fds[i]` (i < nfds,
 *  nfds <= 8) become the child's descriptor i (-1: /dev/null for 0-2, closed otherwise), every
 *  other descriptor is closed, signal dispositions are reset to default and the signal mask is
 *  emptied. The source descriptors may have any number (they are duplicated above the target
 *  range first). */
int nova_shell_spawn(const char *path, char *const argv[], char *const envp[], const int *fds, int nfds, pid_t *pid_out);

/** Unsandboxed ("weaker") mode: fork + exec of `path` from the calling thread with
 *  PR_SET_PDEATHSIG(SIGKILL), setsid, the given rlimits (RLIMIT_CPU, AS, NPROC, NOFILE, FSIZE;
 *  negative = unchanged; CORE is always 0), when `uid` >= 0 no supplementary groups and
 *  gid/uid `gid`/`uid`, PR_SET_NO_NEW_PRIVS, chdir(`cwd`), fds 0-2 from `fds`, all others
 *  closed. A failure before or at exec is reported through a CLOEXEC pipe (`-errno`). */
int nova_shell_spawn_direct(const char *path, char *const argv[], char *const envp[], const int fds[3], const char *cwd,
                            const int64_t limits[5], int64_t uid, int64_t gid, pid_t *pid_out);

/** openat2(dirfd, path, {O_RDONLY|O_NOFOLLOW|O_NONBLOCK|O_NOCTTY|O_CLOEXEC (+O_DIRECTORY when
 *  `directory`), RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|RESOLVE_NO_MAGICLINKS}); -ENOSYS where the
 *  kernel lacks openat2 (< 5.6). */
int nova_shell_openat2_beneath(int dirfd, const char *path, int directory);

/** pipe2(fds, O_CLOEXEC). */
int nova_shell_pipe(int fds[2]);

/** pidfd_open(pid, 0): a descriptor that polls readable when the process exits. */
int nova_shell_pidfd_open(pid_t pid);

/** eventfd(0, EFD_CLOEXEC|EFD_NONBLOCK). */
int nova_shell_eventfd(void);

/** A memfd holding `len` bytes of `data`, positioned at offset 0 (for large config messages). */
int nova_shell_memfd_with(const void *data, size_t len);

/** F_GETPIPE_SZ of a pipe descriptor. */
int nova_shell_pipe_size(int fd);

/** waitpid(pid, &status, 0) retried on EINTR, with the child's rusage (wait4). Fills status,
 *  max RSS in KiB and user/system CPU in microseconds. */
int nova_shell_wait(pid_t pid, int *status, int64_t *maxrss_kb, int64_t *user_us, int64_t *sys_us);

/** waitpid(pid, &status, WNOHANG): 1 when it ended (status filled), 0 if still running. */
int nova_shell_try_wait(pid_t pid, int *status, int64_t *maxrss_kb, int64_t *user_us, int64_t *sys_us);

/** kill(-pgid, sig). */
int nova_shell_kill_group(pid_t pgid, int sig);

/** The path of the shared object containing this function (dladdr), or NULL. */
const char *nova_shell_image_path(void);

#endif
