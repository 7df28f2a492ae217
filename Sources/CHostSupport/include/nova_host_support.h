/*
 * nova_host_support.h — host plumbing in C that Swift cannot reach directly: the monotonic
 * clock, the parent-death signal, posix_spawn close-from, the signal pipe, epoll. Not part of the
 * driver contract (drivers need nova_driver.h only), so it lives outside the ABI target.
 */
#ifndef NOVA_HOST_SUPPORT_H
#define NOVA_HOST_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

/** CLOCK_MONOTONIC in nanoseconds, the clock of a call's deadline_ns in nova_driver.h. */
int64_t nova_monotonic_ns(void);

/// Continues a CRC-32C (Castagnoli) over `length` bytes at `data`: pass the running value
/// (start with 0xFFFFFFFF) and finish by inverting it. Hardware (SSE 4.2) when available.
uint32_t nova_crc32c_update(uint32_t crc, const void *data, size_t length);

/// Compresses `blocks` 64-byte blocks at `data` into the SHA-256 `state` (eight words, in
/// FIPS 180-4 order). The x86 SHA extensions when the CPU has them, the portable loop otherwise.
void nova_sha256_blocks(uint32_t state[8], const void *data, size_t blocks);
/// The portable loop alone (tests compare it with the hardware path).
void nova_sha256_blocks_portable(uint32_t state[8], const void *data, size_t blocks);
/// 1 if `nova_sha256_blocks` uses the CPU's SHA extensions.
int nova_sha256_has_hardware(void);

/** prctl(PR_SET_PDEATHSIG, sig) then exits at once if the parent is already gone
 *  (`expected_parent` != getppid()). For driver runner children. */
int nova_set_parent_death_signal(int sig, int expected_parent);

/* Adds "close every fd from `lowfd` up" to posix_spawn file actions (glibc's
 * posix_spawn_file_actions_addclosefrom_np, which Swift's Glibc module does not export).
 * `actions` is a posix_spawn_file_actions_t*. Returns 0 or an errno value. */
int nova_spawn_actions_close_from(void *actions, int lowfd);

/** Routes signal `sig` into a pipe: installs a sigaction handler (SA_RESTART) that writes one
 *  byte to the pipe's non-blocking write end, and returns the read end (close-on-exec), or -1
 *  with errno set. A handler runs on whichever thread the kernel picks, so the signal is seen
 *  whatever the threads' masks are (a signalfd or sigwait only sees it if every other thread
 *  blocks it, which threads started by drivers do not). Call once per signal; not thread-safe. */
int nova_signal_pipe(int sig);

/* epoll, which Swift's Glibc module does not export: the wait of a process-isolated driver's
 * reader thread, which a caller reading the socket itself switches off and on again. */

/** A new epoll set (close-on-exec) watching `fd` for input and hang-up; -1 with errno set. */
int nova_epoll_watching(int fd);

/** Switches the watch of `fd` in `epfd` on (`on` != 0: input and hang-up) or off (nothing
 *  wakes a waiter). Any thread may call it, also while another waits. 0, or -1 with errno. */
int nova_epoll_set(int epfd, int fd, int on);

/** Waits for an event in `epfd` (no timeout): 1, or -1 with errno set (EINTR included). */
int nova_epoll_wait(int epfd);

#endif
