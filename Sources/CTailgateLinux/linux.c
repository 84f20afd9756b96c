#define _GNU_SOURCE
#include "tailgate_linux.h"

#include <fcntl.h>
#include <sys/prctl.h>
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

_Static_assert(EPOLLIN == 0x001 && EPOLLOUT == 0x004 && EPOLLERR == 0x008 && EPOLLHUP == 0x010 && EPOLLRDHUP == 0x2000 &&
               EPOLLET == 0x80000000u && EPOLLEXCLUSIVE == 0x10000000, "EpollEvents (TailgateSystem/Epoll.swift)");
_Static_assert(TAILGATE_EPOLL_CTL_ADD == EPOLL_CTL_ADD && TAILGATE_EPOLL_CTL_MOD == EPOLL_CTL_MOD &&
               TAILGATE_EPOLL_CTL_DEL == EPOLL_CTL_DEL, "epoll_ctl operations");

int tailgate_pipe(int fds[2]) {
    return pipe2(fds, O_NONBLOCK | O_CLOEXEC);
}

ssize_t tailgate_splice(int from, int to, size_t length) {
    return syscall(SYS_splice, from, NULL, to, NULL, length, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
}

ssize_t tailgate_recv(int socket, void *buffer, size_t length, int flags) {
    return syscall(SYS_recvfrom, socket, buffer, length, flags, NULL, NULL);
}

ssize_t tailgate_send(int socket, const void *buffer, size_t length, int flags) {
    return syscall(SYS_sendto, socket, buffer, length, flags, NULL, 0);
}

int tailgate_connect(int socket, const void *address, unsigned int length) {
    return (int)syscall(SYS_connect, socket, address, (socklen_t)length);
}

int tailgate_close(int descriptor) {
    return (int)syscall(SYS_close, descriptor);
}

int tailgate_eventfd(void) {
    return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

int tailgate_eventfd_blocking(void) {
    return eventfd(0, EFD_CLOEXEC);
}

int tailgate_epoll_create(void) {
    return epoll_create1(EPOLL_CLOEXEC);
}

int tailgate_epoll_control(int epoll, int operation, int fd, uint32_t events, uint64_t token) {
    struct epoll_event event = {.events = events, .data.u64 = token};
    return epoll_ctl(epoll, operation, fd, &event);
}

int tailgate_epoll_wait(int epoll, uint32_t *events, uint64_t *tokens, int capacity, int timeout_ms) {
    struct epoll_event ready[256];
    if (capacity > 256) capacity = 256;
    int count = (int)syscall(SYS_epoll_pwait, epoll, ready, capacity, timeout_ms, NULL, (size_t)8);
    for (int i = 0; i < count; i++) {
        events[i] = ready[i].events;
        tokens[i] = ready[i].data.u64;
    }
    return count;
}

int tailgate_peer_credentials(int socket, uint32_t *uid, int32_t *pid) {
    struct ucred credentials;
    socklen_t length = sizeof(credentials);
    if (getsockopt(socket, SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0) return -1;
    *uid = credentials.uid;
    *pid = credentials.pid;
    return 0;
}

void tailgate_name_thread(const char *name) {
    prctl(PR_SET_NAME, name, 0, 0, 0);
}

int tailgate_accept(int listener, void *address, unsigned int *length) {
    return (int)syscall(SYS_accept4, listener, (struct sockaddr *)address, (socklen_t *)length, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

ssize_t tailgate_send_with_descriptors(int socket, const void *path, size_t path_length, const void *message, size_t length,
                                       const int *descriptors, int count) {
    struct sockaddr_un address;
    memset(&address, 0, sizeof(address));
    address.sun_family = AF_UNIX;
    if (path_length > sizeof(address.sun_path)) { errno = EINVAL; return -1; }
    memcpy(address.sun_path, path, path_length);
    struct iovec vector = {.iov_base = (void *)message, .iov_len = length};
    struct msghdr header;
    memset(&header, 0, sizeof(header));
    header.msg_name = &address;
    header.msg_namelen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + path_length);
    header.msg_iov = &vector;
    header.msg_iovlen = 1;
    char control[CMSG_SPACE(sizeof(int) * 64)];
    if (count > 64) { errno = EINVAL; return -1; }
    if (count > 0) {
        memset(control, 0, sizeof(control));
        header.msg_control = control;
        header.msg_controllen = CMSG_SPACE(sizeof(int) * count);
        struct cmsghdr *entry = CMSG_FIRSTHDR(&header);
        entry->cmsg_level = SOL_SOCKET;
        entry->cmsg_type = SCM_RIGHTS;
        entry->cmsg_len = CMSG_LEN(sizeof(int) * count);
        memcpy(CMSG_DATA(entry), descriptors, sizeof(int) * count);
    }
    return sendmsg(socket, &header, MSG_NOSIGNAL);
}

int tailgate_spawn_keeping(int *pid, const char *path, char *const arguments[], char *const environment[],
                           const int *keep, int count) {
    posix_spawn_file_actions_t actions;
    int result = posix_spawn_file_actions_init(&actions);
    if (result != 0) return result;
    // dup2 onto itself clears FD_CLOEXEC in the child (glibc 2.29 and later), leaving the parent's flag alone.
    for (int i = 0; i < count && result == 0; i++) {
        result = posix_spawn_file_actions_adddup2(&actions, keep[i], keep[i]);
    }
    // The calling thread may block signals (a runtime's worker thread does); the child starts with none blocked.
    posix_spawnattr_t attributes;
    int attributed = result == 0 ? posix_spawnattr_init(&attributes) : result;
    if (attributed == 0) {
        sigset_t none;
        sigemptyset(&none);
        posix_spawnattr_setsigmask(&attributes, &none);
        posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK);
    }
    if (result == 0) result = attributed;
    if (result == 0) {
        pid_t child = 0;
        result = posix_spawn(&child, path, &actions, &attributes, arguments, environment);
        if (result == 0) *pid = (int)child;
    }
    if (attributed == 0) posix_spawnattr_destroy(&attributes);
    posix_spawn_file_actions_destroy(&actions);
    return result;
}
