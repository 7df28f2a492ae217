/*
 * nova_host_support.h — small helpers the HOST side (and DriverKit) use around the ABI.
 * Not part of the driver contract: third-party drivers only need nova_driver.h.
 */
#ifndef NOVA_HOST_SUPPORT_H
#define NOVA_HOST_SUPPORT_H

#include <stdint.h>
#include "nova_driver.h"

/** CLOCK_MONOTONIC in nanoseconds, the clock of nova_call.deadline_ns. */
int64_t nova_monotonic_ns(void);

/** prctl(PR_SET_PDEATHSIG, sig) then exits at once if the parent is already gone
 *  (`expected_parent` != getppid()). For driver runner children. */
int nova_set_parent_death_signal(int sig, int expected_parent);

#endif
