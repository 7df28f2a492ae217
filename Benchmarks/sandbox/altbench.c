/* Alternating launcher benchmark: runs each command once per round, in
 * turn, for N rounds (after W warm-up rounds), so every command sees the same
 * machine state; prints per-command wall-clock median / mean / p10 / p90 and
 * the children's CPU time per run.
 *   altbench N W NAME1 -- ARGV1... ;; NAME2 -- ARGV2... ;; ...
 * A command may start with "@fd:N:PATH" tokens: PATH is opened on fd N for
 * that command (e.g. bwrap --seccomp N). stdout/stderr go to /dev/null. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct cmd {
    const char *name;
    char **argv;
    int fdn[4];
    const char *fdpath[4];
    int nfd;
    double *t;
    double cpu;
    int failures;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double cpu_children(void)
{
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    return ru.ru_utime.tv_sec * 1e3 + ru.ru_utime.tv_usec / 1e3 + ru.ru_stime.tv_sec * 1e3 +
           ru.ru_stime.tv_usec / 1e3;
}

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double run(struct cmd *c)
{
    double t0 = now();
    pid_t p = fork();
    if (p == 0) {
        int nul = open("/dev/null", O_RDWR);
        dup2(nul, 0);
        dup2(nul, 1);
        dup2(nul, 2);
        for (int i = 0; i < c->nfd; i++) {
            int fd = open(c->fdpath[i], O_RDWR);
            if (fd < 0)
                fd = open(c->fdpath[i], O_RDONLY);
            if (fd < 0 || dup2(fd, c->fdn[i]) < 0)
                _exit(126);
        }
        execvp(c->argv[0], c->argv);
        _exit(127);
    }
    int st;
    waitpid(p, &st, 0);
    double t = now() - t0;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        c->failures++;
    return t;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: altbench N WARMUP NAME -- ARGV... [;; NAME -- ARGV...]...\n");
        return 2;
    }
    int n = atoi(argv[1]), w = atoi(argv[2]);
    struct cmd cmds[16];
    int nc = 0;
    for (int i = 3; i < argc && nc < 16;) {
        struct cmd *c = &cmds[nc++];
        memset(c, 0, sizeof *c);
        c->name = argv[i++];
        if (i >= argc || strcmp(argv[i], "--")) {
            fprintf(stderr, "expected -- after %s\n", c->name);
            return 2;
        }
        i++;
        while (i < argc && !strncmp(argv[i], "@fd:", 4) && c->nfd < 4) {
            char *p = argv[i] + 4, *colon = strchr(p, ':');
            if (!colon)
                return 2;
            *colon = 0;
            c->fdn[c->nfd] = atoi(p);
            c->fdpath[c->nfd++] = colon + 1;
            i++;
        }
        c->argv = &argv[i];
        while (i < argc && strcmp(argv[i], ";;"))
            i++;
        if (i < argc)
            argv[i++] = NULL;
        c->t = calloc((size_t)n, sizeof(double));
    }
    for (int r = 0; r < w; r++)
        for (int k = 0; k < nc; k++)
            run(&cmds[k]);
    for (int k = 0; k < nc; k++)
        cmds[k].failures = 0;
    for (int r = 0; r < n; r++)
        for (int k = 0; k < nc; k++) {
            double c0 = cpu_children();
            cmds[k].t[r] = run(&cmds[k]);
            cmds[k].cpu += cpu_children() - c0;
        }
    printf("%-14s %9s %9s %9s %9s %9s %9s %6s\n", "command", "median_ms", "mean_ms", "min_ms",
           "p10_ms", "p90_ms", "cpu_ms", "fails");
    for (int k = 0; k < nc; k++) {
        struct cmd *c = &cmds[k];
        double sum = 0;
        for (int r = 0; r < n; r++)
            sum += c->t[r];
        qsort(c->t, (size_t)n, sizeof(double), cmpd);
        double med = n % 2 ? c->t[n / 2] : (c->t[n / 2 - 1] + c->t[n / 2]) / 2;
        printf("%-14s %9.3f %9.3f %9.3f %9.3f %9.3f %9.3f %6d\n", c->name, med, sum / n, c->t[0],
               c->t[n / 10], c->t[n * 9 / 10], c->cpu / n, c->failures);
    }
    return 0;
}
