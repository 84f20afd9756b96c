// Thin wrappers over the Linux calls that Swift's Glibc module does not import (they sit behind
// _GNU_SOURCE or in headers the module map leaves out). Swift code reaches them through TailgateSystem.
#ifndef TAILGATE_LINUX_H
#define TAILGATE_LINUX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/// pipe2(2) with O_NONBLOCK | O_CLOEXEC.
int tailgate_pipe(int fds[2]);
/// splice(2) without offsets, SPLICE_F_NONBLOCK | SPLICE_F_MOVE.
ssize_t tailgate_splice(int from, int to, size_t length);
/// eventfd(2), non-blocking and close-on-exec.
int tailgate_eventfd(void);
/// eventfd(2), blocking (a thread sleeps in its read until woken) and close-on-exec.
int tailgate_eventfd_blocking(void);
/// epoll_create1(EPOLL_CLOEXEC).
int tailgate_epoll_create(void);
/// epoll_ctl(2) with `events` and a 64-bit token; `operation` is one of TAILGATE_EPOLL_CTL_*.
int tailgate_epoll_control(int epoll, int operation, int fd, uint32_t events, uint64_t token);
/// epoll_wait(2) into parallel arrays of events and tokens.
int tailgate_epoll_wait(int epoll, uint32_t *events, uint64_t *tokens, int capacity, int timeout_ms);

/// accept4(2) with SOCK_NONBLOCK | SOCK_CLOEXEC.
int tailgate_accept(int listener, void *address, unsigned int *length);

// The relay threads' socket calls, made with syscall(2) rather than through glibc's wrappers: those are
// thread cancellation points, and in a process with more than one thread each of them turns asynchronous
// cancellation on and off around the call (two atomic operations). tailgate never cancels a thread; on the
// benchmark's port-80 run that was ~0.9 % of the CPU per connection (docs/performance.md).

/// recv(2) (recvfrom without an address).
ssize_t tailgate_recv(int socket, void *buffer, size_t length, int flags);
/// send(2) (sendto without an address).
ssize_t tailgate_send(int socket, const void *buffer, size_t length, int flags);
/// connect(2).
int tailgate_connect(int socket, const void *address, unsigned int length);
/// close(2).
int tailgate_close(int descriptor);

/// SO_PEERCRED of a Unix socket: the peer's uid and pid; -1 on failure.
int tailgate_peer_credentials(int socket, uint32_t *uid, int32_t *pid);

/// Names the calling thread (at most 15 bytes are kept), as ps and top show it.
void tailgate_name_thread(const char *name);

// The event bits are EpollEvents' constants (TailgateSystem/Epoll.swift), checked in linux.c.
/// epoll_ctl(2)'s operations (EPOLL_CTL_ADD, _DEL, _MOD; checked against the kernel header in linux.c).
enum {
    TAILGATE_EPOLL_CTL_ADD = 1,
    TAILGATE_EPOLL_CTL_DEL = 2,
    TAILGATE_EPOLL_CTL_MOD = 3,
};

/// sendto(2) of one datagram to the unix socket `path` (`path_length` bytes, a leading 0 for the abstract
/// namespace) with `count` descriptors attached (SCM_RIGHTS): sd_notify's FDSTORE=1. Returns sendmsg's result.
ssize_t tailgate_send_with_descriptors(int socket, const void *path, size_t path_length, const void *message, size_t length,
                                       const int *descriptors, int count);
/// posix_spawn(3) of `path` with `arguments` and `environment` (NULL-terminated), the child keeping the
/// descriptors in `keep` open (their close-on-exec flag cleared in the child only), with no signal blocked
/// whatever the calling thread blocks. Returns 0 and sets
/// `pid`, or an errno value.
int tailgate_spawn_keeping(int *pid, const char *path, char *const arguments[], char *const environment[],
                           const int *keep, int count);
#endif
