// A measuring probe, not part of tailgate: the least a user-space relay can do per connection when the
// kernel moves the bytes (sockmap + sk_skb verdict), to learn what such a path could gain before it is
// built into the relay. One thread, epoll; per connection: accept, read the first bytes (the
// ClientHello), connect to the backend, put both sockets in the map, write a PROXY v1 header and the
// first bytes, then wait for either side to end. "splice" mode relays with splice(2) instead, on the
// same thread, for a like-for-like comparison of the mechanism.
//
// "kernel-parser" attaches the stream parser program as well (the kernel's strparser in the path);
// "kernel-skb" attaches the program as BPF_SK_SKB_VERDICT (the newer verdict without a parser, 5.13+).
//
// usage: probe LISTEN_PORT BACKEND_PORT kernel|kernel-parser|kernel-skb|splice OBJECT
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/sockios.h>
#include <unistd.h>

#ifndef SO_COOKIE
#define SO_COOKIE 57
#endif

enum { WAITING_HELLO, RELAYING };
struct tag;
struct conn {
    struct tag *tags[2];
    int client, backend;
    int state;
    int pipe_cb[2], pipe_bc[2];  // splice mode
    uint64_t client_cookie, backend_cookie;
};
struct tag { struct conn *conn; int is_backend; };

static int kernel_mode, sockets_fd, peers_fd, backend_port, epfd;

static uint64_t cookie_of(int fd)
{
    uint64_t cookie = 0;
    socklen_t len = sizeof cookie;
    getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len);
    return cookie;
}

static void finish(struct conn *c)
{
    // Events for this connection later in the same batch see a tag without a connection.
    for (int i = 0; i < 2; i++) if (c->tags[i]) c->tags[i]->conn = NULL;
    if (kernel_mode && c->state == RELAYING) {
        bpf_map_delete_elem(peers_fd, &c->client_cookie);
        bpf_map_delete_elem(peers_fd, &c->backend_cookie);
        bpf_map_delete_elem(sockets_fd, &c->client_cookie);
        bpf_map_delete_elem(sockets_fd, &c->backend_cookie);
    }
    close(c->client);
    if (c->backend >= 0) close(c->backend);
    if (!kernel_mode && c->state == RELAYING) {
        close(c->pipe_cb[0]); close(c->pipe_cb[1]); close(c->pipe_bc[0]); close(c->pipe_bc[1]);
    }
    free(c);
}

static struct tag *tag_of(struct conn *c, int backend)
{
    struct tag *t = malloc(sizeof *t);
    t->conn = c; t->is_backend = backend;
    c->tags[backend] = t;
    return t;
}

static int start_relay(struct conn *c)
{
    char hello[16384];
    ssize_t n = recv(c->client, hello, sizeof hello, 0);
    if (n <= 0) return -1;
    c->backend = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(backend_port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (connect(c->backend, (struct sockaddr *)&to, sizeof to) < 0) return -1;
    int one = 1;
    setsockopt(c->backend, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in peer, local;
    socklen_t len = sizeof peer;
    getpeername(c->client, (struct sockaddr *)&peer, &len);
    len = sizeof local;
    getsockname(c->client, (struct sockaddr *)&local, &len);
    char header[128], a[32], b[32];
    inet_ntop(AF_INET, &peer.sin_addr, a, sizeof a);
    inet_ntop(AF_INET, &local.sin_addr, b, sizeof b);
    int hlen = snprintf(header, sizeof header, "PROXY TCP4 %s %s %d %d\r\n", a, b, ntohs(peer.sin_port), ntohs(local.sin_port));
    if (kernel_mode) {
        // In the map before the backend can answer: nothing is ever queued where the verdict would miss it.
        c->client_cookie = cookie_of(c->client);
        c->backend_cookie = cookie_of(c->backend);
        uint64_t cfd = c->client, bfd = c->backend;
        if (bpf_map_update_elem(peers_fd, &c->client_cookie, &c->backend_cookie, BPF_ANY) ||
            bpf_map_update_elem(peers_fd, &c->backend_cookie, &c->client_cookie, BPF_ANY) ||
            bpf_map_update_elem(sockets_fd, &c->client_cookie, &cfd, BPF_ANY) ||
            bpf_map_update_elem(sockets_fd, &c->backend_cookie, &bfd, BPF_ANY)) {
            perror("map update");
            return -1;
        }
    } else {
        if (pipe2(c->pipe_cb, O_NONBLOCK) || pipe2(c->pipe_bc, O_NONBLOCK)) return -1;
        fcntl(c->backend, F_SETFL, O_NONBLOCK);
    }
    c->state = RELAYING;
    memmove(hello + hlen, hello, n);
    memcpy(hello, header, hlen);
    if (send(c->backend, hello, n + hlen, 0) != n + hlen) return -1;
    struct epoll_event ev = { .events = EPOLLRDHUP | (kernel_mode ? 0 : EPOLLIN), .data.ptr = tag_of(c, 1) };
    epoll_ctl(epfd, EPOLL_CTL_ADD, c->backend, &ev);
    ev.data.ptr = tag_of(c, 0);
    ev.events = EPOLLRDHUP | (kernel_mode ? 0 : EPOLLIN);
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->client, &ev);
    return 0;
}

// splice mode: move what is readable on `from` to `to` through `pipe`.
static int pump(int from, int to, int *pipe)
{
    for (;;) {
        ssize_t in = splice(from, NULL, pipe[1], NULL, 1 << 16, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (in == 0) return -1;
        if (in < 0) return errno == EAGAIN ? 0 : -1;
        while (in > 0) {  // (a full peer makes this spin: a probe, not the relay)
            ssize_t out = splice(pipe[0], NULL, to, NULL, in, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            if (out < 0 && errno == EAGAIN) continue;
            if (out <= 0) return -1;
            in -= out;
        }
    }
}

int main(int argc, char **argv)
{
    if (argc < 5) { fprintf(stderr, "usage: probe LISTEN_PORT BACKEND_PORT kernel|splice OBJECT\n"); return 2; }
    signal(SIGPIPE, SIG_IGN);
    int port = atoi(argv[1]);
    backend_port = atoi(argv[2]);
    kernel_mode = strncmp(argv[3], "kernel", 6) == 0;
    int with_parser = strcmp(argv[3], "kernel-parser") == 0;
    enum bpf_attach_type verdict_type = strcmp(argv[3], "kernel-skb") == 0 ? BPF_SK_SKB_VERDICT : BPF_SK_SKB_STREAM_VERDICT;
    if (kernel_mode) {
        struct bpf_object *object = bpf_object__open_file(argv[4], NULL);
        if (!object || bpf_object__load(object)) { fprintf(stderr, "cannot load %s\n", argv[4]); return 1; }
        sockets_fd = bpf_object__find_map_fd_by_name(object, "sockets");
        peers_fd = bpf_object__find_map_fd_by_name(object, "peers");
        int prog = bpf_program__fd(bpf_object__find_program_by_name(object, "relay_verdict"));
        if (bpf_prog_attach(prog, sockets_fd, verdict_type, 0)) { perror("attach"); return 1; }
        if (with_parser) {
            int parser = bpf_program__fd(bpf_object__find_program_by_name(object, "relay_parser"));
            if (bpf_prog_attach(parser, sockets_fd, BPF_SK_SKB_STREAM_PARSER, 0)) { perror("attach parser"); return 1; }
        }
    }
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in at = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (bind(listener, (struct sockaddr *)&at, sizeof at) || listen(listener, 4096)) { perror("listen"); return 1; }
    epfd = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
    epoll_ctl(epfd, EPOLL_CTL_ADD, listener, &ev);
    fprintf(stderr, "probe listening on %d (%s)\n", port, argv[3]);
    struct epoll_event events[256];
    for (;;) {
        int count = epoll_wait(epfd, events, 256, -1);
        for (int i = 0; i < count; i++) {
            if (!events[i].data.ptr) {
                int fd;
                while ((fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct conn *c = calloc(1, sizeof *c);
                    c->client = fd; c->backend = -1; c->state = WAITING_HELLO;
                    struct epoll_event cev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = tag_of(c, 0) };
                    epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &cev);
                }
                continue;
            }
            struct tag *t = events[i].data.ptr;
            struct conn *c = t->conn;
            if (!c) continue;
            if (c->state == WAITING_HELLO) {
                c->tags[0] = NULL;
                free(t);
                if (start_relay(c)) { epoll_ctl(epfd, EPOLL_CTL_DEL, c->client, NULL); finish(c); }
                continue;
            }
            int ended = events[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR);
            if (!kernel_mode && !ended) {
                ended = t->is_backend ? pump(c->backend, c->client, c->pipe_bc) : pump(c->client, c->backend, c->pipe_cb);
            }
            if (ended) {
                epoll_ctl(epfd, EPOLL_CTL_DEL, c->client, NULL);
                epoll_ctl(epfd, EPOLL_CTL_DEL, c->backend, NULL);
                finish(c);  // (the tags leak: this is a probe, not the relay)
            }
        }
    }
}
