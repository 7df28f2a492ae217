#include "nova_host_support.h"
#include <time.h>
#include <sys/prctl.h>
#include <unistd.h>
#include <stdlib.h>

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
