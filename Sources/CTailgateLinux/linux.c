#define _GNU_SOURCE
#include "tailgate_linux.h"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

_Static_assert(EPOLLIN == 0x001 && EPOLLOUT == 0x004 && EPOLLERR == 0x008 && EPOLLHUP == 0x010 && EPOLLRDHUP == 0x2000 &&
               EPOLLET == 0x80000000u && EPOLLEXCLUSIVE == 0x10000000, "EpollEvents (TailgateSystem/Epoll.swift)");
_Static_assert(TAILGATE_EPOLL_CTL_ADD == EPOLL_CTL_ADD && TAILGATE_EPOLL_CTL_MOD == EPOLL_CTL_MOD &&
               TAILGATE_EPOLL_CTL_DEL == EPOLL_CTL_DEL, "epoll_ctl operations");

int tailgate_pipe(int fds[2]) {
    return pipe2(fds, O_NONBLOCK | O_CLOEXEC);
}

ssize_t tailgate_splice(int from, int to, size_t length) {
    return splice(from, NULL, to, NULL, length, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
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
    int count = epoll_wait(epoll, ready, capacity, timeout_ms);
    for (int i = 0; i < count; i++) {
        events[i] = ready[i].events;
        tokens[i] = ready[i].data.u64;
    }
    return count;
}

void tailgate_name_thread(const char *name) {
    prctl(PR_SET_NAME, name, 0, 0, 0);
}

int tailgate_accept(int listener, void *address, unsigned int *length) {
    return accept4(listener, (struct sockaddr *)address, (socklen_t *)length, SOCK_NONBLOCK | SOCK_CLOEXEC);
}
