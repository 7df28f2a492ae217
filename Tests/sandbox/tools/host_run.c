/* A minimal host for nova-sandbox, as the Swift `shell` driver will be: the
 * config goes through a pipe (--config-fd 3), the status records come back
 * on another (--status-fd 4), stdout is read with a byte cap; on overflow the
 * helper gets SIGTERM (it kills the whole sandbox) and the run is marked
 * truncated. Used by the battery for cases 11 and 26.
 *   host_run HELPER CONFIGFILE CAPBYTES OUTFILE STATUSFILE
 * Prints {"truncated":bool,"stdout_bytes":N,"helper_exit":N} at the end. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: host_run HELPER CONFIG CAP OUT STATUS\n");
        return 2;
    }
    long long cap = atoll(argv[3]);
    int cfd = open(argv[2], O_RDONLY | O_CLOEXEC);
    static char cfg[1 << 16];
    ssize_t clen = cfd >= 0 ? read(cfd, cfg, sizeof cfg) : -1;
    if (clen <= 0)
        return 2;
    int out = open(argv[4], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int stf = open(argv[5], O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    int cp[2], sp[2], op[2];
    if (out < 0 || stf < 0 || pipe2(cp, O_CLOEXEC) || pipe2(sp, O_CLOEXEC) || pipe2(op, O_CLOEXEC))
        return 2;
    pid_t h = fork();
    if (h == 0) {
        int a = fcntl(cp[0], F_DUPFD, 10), b = fcntl(sp[1], F_DUPFD, 10), c = fcntl(op[1], F_DUPFD, 10);
        /* stdin and stderr /dev/null: the helper takes only pipes, sockets and /dev/null */
        int nul = open("/dev/null", O_RDWR);
        if (a < 0 || b < 0 || c < 0 || nul < 0 || dup2(a, 3) < 0 || dup2(b, 4) < 0 || dup2(c, 1) < 0 ||
            dup2(nul, 0) < 0 || dup2(nul, 2) < 0)
            _exit(127);
        execl(argv[1], "nova-sandbox", "--config-fd", "3", "--status-fd", "4", (char *)NULL);
        _exit(127);
    }
    close(cp[0]);
    close(sp[1]);
    close(op[1]);
    if (write(cp[1], cfg, (size_t)clen) != clen)
        return 2;
    close(cp[1]);
    long long total = 0;
    int truncated = 0, open_o = 1, open_s = 1;
    static char buf[65536];
    while (open_o || open_s) {
        struct pollfd p[2] = {{open_o ? op[0] : -1, POLLIN, 0}, {open_s ? sp[0] : -1, POLLIN, 0}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[0].revents) {
            ssize_t n = read(op[0], buf, sizeof buf);
            if (n <= 0) {
                open_o = 0;
            } else {
                long long keep = total < cap ? (cap - total < n ? cap - total : n) : 0;
                if (keep > 0 && write(out, buf, (size_t)keep) != keep)
                    return 2;
                total += n;
                if (total > cap && !truncated) {
                    truncated = 1;
                    kill(h, SIGTERM); /* the helper tears the whole sandbox down */
                }
            }
        }
        if (p[1].revents) {
            ssize_t n = read(sp[0], buf, sizeof buf);
            if (n <= 0)
                open_s = 0;
            else if (write(stf, buf, (size_t)n) != n)
                return 2;
        }
    }
    int st = 0;
    waitpid(h, &st, 0);
    printf("{\"truncated\":%s,\"stdout_bytes\":%lld,\"helper_exit\":%d}\n", truncated ? "true" : "false",
           total, WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    return 0;
}
