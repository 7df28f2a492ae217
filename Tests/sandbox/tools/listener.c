/* Host-side listeners for cases 6 and 7: TCP and UDP on 127.0.0.1 (ephemeral
 * ports) and an abstract unix socket @NAME (stream + dgram). Writes
 * "TCPPORT UDPPORT" to PORTFILE, logs every connection or datagram to LOG,
 * and exits after SECONDS (bounded). Listens on loopback only.
 *   listener PORTFILE LOG NAME SECONDS */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static int inet_sock(int type, int *port)
{
    int s = socket(AF_INET, type | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    socklen_t l = sizeof a;
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0 || getsockname(s, (struct sockaddr *)&a, &l) < 0)
        exit(1);
    if (type == SOCK_STREAM && listen(s, 16) < 0)
        exit(1);
    *port = ntohs(a.sin_port);
    return s;
}

static int unix_sock(int type, const char *name)
{
    int s = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
    struct sockaddr_un u = {.sun_family = AF_UNIX};
    size_t n = strlen(name);
    memcpy(u.sun_path + 1, name, n);
    if (s < 0 || bind(s, (struct sockaddr *)&u, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n)) < 0)
        exit(1);
    if (type == SOCK_STREAM && listen(s, 16) < 0)
        exit(1);
    return s;
}

int main(int argc, char **argv)
{
    if (argc != 5)
        return 2;
    int tp, up;
    int fds[4];
    fds[0] = inet_sock(SOCK_STREAM, &tp);
    fds[1] = inet_sock(SOCK_DGRAM, &up);
    fds[2] = unix_sock(SOCK_STREAM, argv[3]);
    char dg[200];
    snprintf(dg, sizeof dg, "%s.d", argv[3]);
    fds[3] = unix_sock(SOCK_DGRAM, dg); /* abstract names are shared by all socket types */
    FILE *pf = fopen(argv[1], "w");
    fprintf(pf, "%d %d\n", tp, up);
    fclose(pf);
    FILE *log = fopen(argv[2], "a");
    setvbuf(log, NULL, _IONBF, 0);
    time_t end = time(NULL) + atoi(argv[4]);
    static const char *const what[] = {"tcp", "udp", "unix-stream", "unix-dgram"};
    while (time(NULL) < end) {
        struct pollfd p[4];
        for (int i = 0; i < 4; i++)
            p[i] = (struct pollfd){fds[i], POLLIN, 0};
        if (poll(p, 4, 500) <= 0)
            continue;
        for (int i = 0; i < 4; i++)
            if (p[i].revents & POLLIN) {
                fprintf(log, "%s contact\n", what[i]);
                if (i == 0 || i == 2) {
                    int c = accept(fds[i], NULL, NULL);
                    if (c >= 0)
                        close(c);
                } else {
                    char b[64];
                    (void)recv(fds[i], b, sizeof b, 0);
                }
            }
    }
    return 0;
}
