#define _GNU_SOURCE
#include "nova_host_support.h"
#include <time.h>
#include <sys/prctl.h>
#include <unistd.h>
#include <stdlib.h>
#include <errno.h>
#include <sys/epoll.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <spawn.h>

int64_t nova_monotonic_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int nova_set_parent_death_signal(int sig, int expected_parent) {
  int rc = prctl(PR_SET_PDEATHSIG, sig);
  if (expected_parent > 0 && getppid() != expected_parent) _exit(1);
  return rc;
}

/* Write ends of the signal pipes, by signal number (written before the handler is installed). */
static volatile int signal_pipe_write[65];

static void signal_pipe_handler(int sig) {
  int saved = errno;
  if (sig > 0 && sig < 65 && signal_pipe_write[sig] > 0) {
    unsigned char b = (unsigned char)sig;
    /* A full pipe already holds an unread wake-up: dropping this byte loses nothing. */
    ssize_t ignored = write(signal_pipe_write[sig], &b, 1);
    (void)ignored;
  }
  errno = saved;
}

int nova_signal_pipe(int sig) {
  if (sig <= 0 || sig >= 65) { errno = EINVAL; return -1; }
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return -1;
  fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) | O_NONBLOCK);
  signal_pipe_write[sig] = fds[1];
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = signal_pipe_handler;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  if (sigaction(sig, &sa, NULL) != 0) {
    int e = errno;
    signal_pipe_write[sig] = 0;
    close(fds[0]);
    close(fds[1]);
    errno = e;
    return -1;
  }
  return fds[0];
}

int nova_spawn_actions_close_from(void *actions, int lowfd) {
  return posix_spawn_file_actions_addclosefrom_np((posix_spawn_file_actions_t *)actions, lowfd);
}

int nova_epoll_watching(int fd) {
  int epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) return -1;
  struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.fd = fd};
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
    int e = errno;
    close(epfd);
    errno = e;
    return -1;
  }
  return epfd;
}

int nova_epoll_set(int epfd, int fd, int on) {
  struct epoll_event ev = {.events = on ? (EPOLLIN | EPOLLRDHUP) : 0, .data.fd = fd};
  return epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev);
}

int nova_epoll_wait(int epfd) {
  struct epoll_event ev;
  return epoll_wait(epfd, &ev, 1, -1);
}
