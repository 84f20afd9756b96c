// A measuring probe, not part of tailgate: the least a user-space relay can do per connection when the
// kernel moves the bytes (sockmap + sk_skb verdict), to learn what such a path could gain before it is
// built into the relay. One thread, epoll; per connection: accept, read the first bytes (the
// ClientHello), connect to the backend, put both sockets in the map, write a PROXY v1 header and the
// first bytes, then wait for either side to end. "splice" mode relays with splice(2) instead, on the
// same thread, for a like-for-like comparison of the mechanism.
//
// "kernel-parser" attaches the stream parser program as well (the kernel's strparser in the path);
// "kernel-skb" attaches the program as BPF_SK_SKB_VERDICT (the newer verdict without a parser, 5.13+).
// "kernel-park" loads park.bpf.o (OBJECT names it): the redirect with a bound on what is queued toward the
// peer; past it the verdict parks the direction on the sender and this program delivers the parked bytes
// itself, then asks the verdict to resume (see park.bpf.c).
//
// usage: probe LISTEN_PORT BACKEND_PORT kernel|kernel-parser|kernel-skb|kernel-park|splice OBJECT
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <linux/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <sys/socket.h>
#include <linux/sockios.h>
#include <unistd.h>

#ifndef SO_COOKIE
#define SO_COOKIE 57
#endif

enum { WAITING_HELLO, RELAYING };
struct tag;

// kernel-park mode: one direction's user-space part (direction 0: client to backend, 1: backend to client).
#define PARK_BOUND (4u << 20)  // as park.bpf.c's BOUND
#define PARK_BUFFER 65536
struct side {
    char buffer[PARK_BUFFER];
    size_t held_offset, held_length;  // read from the sender, not yet written to the peer
    uint64_t read_total;              // parked bytes read so far (the verdict's `passed` once all are read)
    int drained;                      // the peer's psock queue was seen empty since the last resume
    int retry;                        // look again on the next tick (a queue draining, a resume put off)
    int watch;                        // the verdict announced a park: watch the sender for readable bytes
};
struct flow {  // as park.bpf.c's
    uint64_t peer, redirected, passed, parked, parks, resume, user_written;
};

struct conn {
    struct tag *tags[2];
    int client, backend;
    int state;
    int pipe_cb[2], pipe_bc[2];  // splice mode
    uint64_t client_cookie, backend_cookie;
    int slot;                    // kernel-park mode: flows[2 * slot + direction]
    struct side *sides;          // kernel-park mode
    struct conn *retry_next, *retry_prev;
    int in_retry;
    int ending;                  // kernel-park mode: a side ended; closes once what was redirected is sent
};
struct tag { struct conn *conn; int is_backend; };

static uint64_t acked_total(int fd);
// PROBE_PARK_DEBUG: drain and resume events, kept in memory (printing them changes the timing) and written
// when the connection ends.
struct park_event { char kind; int d; uint64_t read_total, passed, redirected, user_written, queued; };
static struct park_event park_events[4096];
static int park_event_count, park_debug = -1;
static void note_event(char kind, int d, uint64_t read_total, uint64_t passed, uint64_t redirected, uint64_t user_written, uint64_t queued)
{
    if (park_debug < 0) park_debug = getenv("PROBE_PARK_DEBUG") != NULL;
    if (!park_debug || park_event_count == 4096) return;
    park_events[park_event_count++] = (struct park_event){ kind, d, read_total, passed, redirected, user_written, queued };
}
static int kernel_mode, park_mode, sockets_fd, peers_fd, slots_fd, backend_port, epfd;
static struct flow *flows;
static struct conn *conn_by_slot[32768];
static struct ring_buffer *changes;
static struct tag changes_tag;
static int free_slots[32768], free_slot_count;
static struct conn *retry_list;

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
    if (park_mode && c->state == RELAYING) {
        if (getenv("PROBE_PARK_LOG")) {
            struct flow *up = &flows[2 * c->slot], *down = up + 1;
            fprintf(stderr, "park: up redirected %llu passed %llu parks %llu resume %llu read %llu; down redirected %llu passed %llu parks %llu resume %llu read %llu\n",
                    (unsigned long long)up->redirected, (unsigned long long)up->passed, (unsigned long long)up->parks,
                    (unsigned long long)up->resume, (unsigned long long)c->sides[0].read_total,
                    (unsigned long long)down->redirected, (unsigned long long)down->passed, (unsigned long long)down->parks,
                    (unsigned long long)down->resume, (unsigned long long)c->sides[1].read_total);
        }
        for (int i = 0; i < park_event_count; i++) {
            struct park_event *e = &park_events[i];
            fprintf(stderr, "event %c d%d read_total %llu passed %llu redirected %llu user_written %llu queued %llu\n", e->kind, e->d,
                    (unsigned long long)e->read_total, (unsigned long long)e->passed, (unsigned long long)e->redirected,
                    (unsigned long long)e->user_written, (unsigned long long)e->queued);
        }
        park_event_count = 0;
        bpf_map_delete_elem(sockets_fd, &c->client_cookie);
        bpf_map_delete_elem(sockets_fd, &c->backend_cookie);
        bpf_map_delete_elem(slots_fd, &c->client_cookie);
        bpf_map_delete_elem(slots_fd, &c->backend_cookie);
        memset(&flows[2 * c->slot], 0, 2 * sizeof *flows);
        free_slots[free_slot_count++] = c->slot;
        conn_by_slot[c->slot] = NULL;
        if (c->in_retry) {
            if (c->retry_prev) c->retry_prev->retry_next = c->retry_next; else retry_list = c->retry_next;
            if (c->retry_next) c->retry_next->retry_prev = c->retry_prev;
        }
        free(c->sides);
    } else if (kernel_mode && c->state == RELAYING) {
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
    if (park_mode) {
        // The flows and slots first, then the sockets: the verdict finds a socket's flow from its first byte.
        if (!free_slot_count) return -1;
        c->slot = free_slots[--free_slot_count];
        conn_by_slot[c->slot] = c;
        c->sides = calloc(2, sizeof *c->sides);
        c->client_cookie = cookie_of(c->client);
        c->backend_cookie = cookie_of(c->backend);
        fcntl(c->backend, F_SETFL, O_NONBLOCK);
        struct flow *up = &flows[2 * c->slot], *down = up + 1;
        memset(up, 0, 2 * sizeof *up);
        // user_written starts at what the peer's bytes_acked already counts (the SYN, on the socket that
        // connected), so that handed - acked is what is outstanding; for the backend it adds the header
        // and the first bytes, written below.
        up->peer = c->backend_cookie;
        up->user_written = acked_total(c->backend) + n + hlen;
        down->peer = c->client_cookie;
        down->user_written = acked_total(c->client);
        uint32_t up_slot = 2 * c->slot, down_slot = up_slot + 1;
        uint64_t cfd = c->client, bfd = c->backend;
        if (bpf_map_update_elem(slots_fd, &c->client_cookie, &up_slot, BPF_ANY) ||
            bpf_map_update_elem(slots_fd, &c->backend_cookie, &down_slot, BPF_ANY) ||
            bpf_map_update_elem(sockets_fd, &c->client_cookie, &cfd, BPF_ANY) ||
            bpf_map_update_elem(sockets_fd, &c->backend_cookie, &bfd, BPF_ANY)) {
            perror("map update");
            return -1;
        }
    } else if (kernel_mode) {
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
    int reading = !kernel_mode;  // park mode watches a sender for readable bytes only once it is parked
    struct epoll_event ev = { .events = EPOLLRDHUP | (reading ? EPOLLIN : 0), .data.ptr = tag_of(c, 1) };
    epoll_ctl(epfd, EPOLL_CTL_ADD, c->backend, &ev);
    ev.data.ptr = tag_of(c, 0);
    ev.events = EPOLLRDHUP | (reading ? EPOLLIN : 0);
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

// kernel-park mode. Every byte of `fd`'s that the peer acknowledged.
static uint64_t acked_total(int fd)
{
    struct tcp_info info;
    socklen_t len = sizeof info;
    memset(&info, 0, sizeof info);
    getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len);
    return info.tcpi_bytes_acked;
}

// kernel-park mode. Every byte ever queued on `fd` for sending: acknowledged plus still in its send queue
// (read in that order, so an acknowledgement between the two reads makes the sum smaller, never larger).
static uint64_t queued_total(int fd)
{
    uint64_t acked = acked_total(fd);
    int outq = 0;
    ioctl(fd, SIOCOUTQ, &outq);
    return acked + (uint64_t)outq;
}

static void want_retry(struct conn *c)
{
    if (c->in_retry) return;
    c->in_retry = 1;
    c->retry_prev = NULL;
    c->retry_next = retry_list;
    if (retry_list) retry_list->retry_prev = c;
    retry_list = c;
}

// Moves direction `d`'s parked bytes to the peer. Only once the peer's psock queue has drained (everything
// redirected and written is in its send queue) may user space write to it; when every parked byte is
// delivered and the peer has room again, asks the verdict to resume. Returns -2 at the sender's end of
// stream, -1 on an error.
static int pump_park(struct conn *c, int d)
{
    struct side *s = &c->sides[d];
    struct flow *f = &flows[2 * c->slot + d];
    int from = d ? c->backend : c->client, to = d ? c->client : c->backend;
    s->retry = 0;
    if (s->held_length) {
        ssize_t w = send(to, s->buffer + s->held_offset, s->held_length, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN) return -1;
        if (w > 0) {
            s->held_offset += w; s->held_length -= w;
            __atomic_fetch_add(&f->user_written, (uint64_t)w, __ATOMIC_RELEASE);
        }
        if (s->held_length) return 0;  // EPOLLOUT on the peer brings us back
    }
    // Only a parked direction is read: while the verdict redirects, a check that the peer's queue has
    // drained is out of date at once. Once parked it stays parked until user space asks to resume, so a
    // check made after seeing `parked` holds until then. (Checking before the park let the redirect queue
    // more behind the check, and parked bytes overtook them.)
    if (!__atomic_load_n(&f->parked, __ATOMIC_ACQUIRE)) return 0;
    if (!s->drained) {
        uint64_t handed = __atomic_load_n(&f->redirected, __ATOMIC_ACQUIRE) + f->user_written;
        uint64_t queued = queued_total(to);
        if (queued < handed) { s->retry = 1; return 0; }
        s->drained = 1;
        note_event('D', d, s->read_total, f->passed, f->redirected, f->user_written, queued);
    }
    for (;;) {
        ssize_t n = recv(from, s->buffer, PARK_BUFFER, MSG_DONTWAIT);
        if (n == 0) return -2;
        if (n < 0) { if (errno == EAGAIN) break; return -1; }
        s->read_total += n;
        ssize_t w = send(to, s->buffer, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w < 0) { if (errno != EAGAIN) return -1; w = 0; }
        if (w) __atomic_fetch_add(&f->user_written, (uint64_t)w, __ATOMIC_RELEASE);
        if (w < n) { s->held_offset = w; s->held_length = n - w; return 0; }
    }
    if (!__atomic_load_n(&f->parked, __ATOMIC_ACQUIRE)) return 0;
    int64_t outstanding = (int64_t)(__atomic_load_n(&f->redirected, __ATOMIC_ACQUIRE) + f->user_written - acked_total(to));
    if (outstanding < PARK_BOUND / 2) {
        // Once a resume is asked for, the verdict may redirect again at any moment: the peer's queue must be
        // seen drained again before user space next writes to it. (Keeping `drained` when the same resume
        // was asked for twice let parked bytes overtake redirected ones: a 512 MiB download failed.)
        __atomic_store_n(&f->resume, s->read_total + 1, __ATOMIC_RELEASE);
        s->drained = 0;
        note_event('R', d, s->read_total, f->passed, f->redirected, f->user_written, 0);
    } else {
        s->retry = 1;
    }
    return 0;
}

// kernel-park mode: what each socket waits for. The sender is read unless its bytes are held or the peer's
// queue is still draining; the peer is watched for room while bytes are held for it.
static void park_interest(struct conn *c)
{
    for (int fdside = 0; fdside < 2; fdside++) {
        struct side *sending = &c->sides[fdside], *receiving = &c->sides[1 - fdside];
        uint32_t events = EPOLLRDHUP;
        if (sending->watch && !sending->held_length && !sending->retry) events |= EPOLLIN;
        if (receiving->held_length) events |= EPOLLOUT;
        struct epoll_event ev = { .events = events, .data.ptr = c->tags[fdside] };
        epoll_ctl(epfd, EPOLL_CTL_MOD, fdside ? c->backend : c->client, &ev);
    }
    if (c->sides[0].retry || c->sides[1].retry) want_retry(c);
}

// A park or a resume announced by the verdict (see park.bpf.c): the flow's index and its new state.
static int on_change(void *context, void *data, size_t size)
{
    (void)context; (void)size;
    uint32_t change = *(uint32_t *)data, flow = change >> 1;
    struct conn *c = conn_by_slot[flow / 2];
    if (c && c->state == RELAYING && !c->ending) {
        c->sides[flow % 2].watch = change & 1;
        park_interest(c);
    }
    return 0;
}

static void end_connection(struct conn *c)
{
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->client, NULL);
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->backend, NULL);
    finish(c);
}

// kernel-park mode, after a pump: at an end of stream, the connection closes once both peers' psock queues
// have drained (what was redirected is in their send queues; close sends it, then the FIN). Until then
// neither socket is watched and the retry tick looks again.
static void park_after(struct conn *c, int result)
{
    if (result == -1) { end_connection(c); return; }
    if (result == -2) c->ending = 1;
    if (!c->ending) { park_interest(c); return; }
    for (int d = 0; d < 2; d++) {
        struct flow *f = &flows[2 * c->slot + d];
        int to = d ? c->client : c->backend;
        if (c->sides[d].held_length || queued_total(to) < __atomic_load_n(&f->redirected, __ATOMIC_ACQUIRE) + f->user_written) {
            struct epoll_event none = { .events = 0, .data.ptr = c->tags[0] };
            epoll_ctl(epfd, EPOLL_CTL_MOD, c->client, &none);
            none.data.ptr = c->tags[1];
            epoll_ctl(epfd, EPOLL_CTL_MOD, c->backend, &none);
            want_retry(c);
            return;
        }
    }
    end_connection(c);
}

int main(int argc, char **argv)
{
    if (argc < 5) { fprintf(stderr, "usage: probe LISTEN_PORT BACKEND_PORT kernel|splice OBJECT\n"); return 2; }
    signal(SIGPIPE, SIG_IGN);
    int port = atoi(argv[1]);
    backend_port = atoi(argv[2]);
    kernel_mode = strncmp(argv[3], "kernel", 6) == 0;
    park_mode = strcmp(argv[3], "kernel-park") == 0;
    int with_parser = strcmp(argv[3], "kernel-parser") == 0;
    enum bpf_attach_type verdict_type = strcmp(argv[3], "kernel-skb") == 0 ? BPF_SK_SKB_VERDICT : BPF_SK_SKB_STREAM_VERDICT;
    if (kernel_mode) {
        struct bpf_object *object = bpf_object__open_file(argv[4], NULL);
        if (!object || bpf_object__load(object)) { fprintf(stderr, "cannot load %s\n", argv[4]); return 1; }
        sockets_fd = bpf_object__find_map_fd_by_name(object, "sockets");
        peers_fd = bpf_object__find_map_fd_by_name(object, "peers");
        int prog;
        if (park_mode) {
            slots_fd = bpf_object__find_map_fd_by_name(object, "slots");
            int flows_fd = bpf_object__find_map_fd_by_name(object, "flows");
            flows = mmap(NULL, 65536 * sizeof(struct flow), PROT_READ | PROT_WRITE, MAP_SHARED, flows_fd, 0);
            if (flows == MAP_FAILED) { perror("mmap flows"); return 1; }
            for (int i = 32767; i >= 0; i--) free_slots[free_slot_count++] = i;
            prog = bpf_program__fd(bpf_object__find_program_by_name(object, "park_verdict"));
            changes = ring_buffer__new(bpf_object__find_map_fd_by_name(object, "changes"), on_change, NULL, NULL);
            if (!changes) { perror("ring buffer"); return 1; }
        } else {
            prog = bpf_program__fd(bpf_object__find_program_by_name(object, "relay_verdict"));
        }
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
    if (changes) {
        struct epoll_event rev = { .events = EPOLLIN, .data.ptr = &changes_tag };
        epoll_ctl(epfd, EPOLL_CTL_ADD, ring_buffer__epoll_fd(changes), &rev);
    }
    fprintf(stderr, "probe listening on %d (%s)\n", port, argv[3]);
    struct epoll_event events[256];
    int64_t last_retry_us = 0;
    for (;;) {
        int count = epoll_wait(epfd, events, 256, retry_list ? 1 : -1);
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t now_us = now.tv_sec * 1000000LL + now.tv_nsec / 1000;
        if (park_mode && retry_list && (count == 0 || now_us - last_retry_us >= 1000)) {
            last_retry_us = now_us;
            struct conn *list = retry_list;
            retry_list = NULL;
            for (struct conn *c = list, *next; c; c = next) {
                next = c->retry_next;
                c->in_retry = 0;
                int result = 0;
                for (int d = 0; d < 2 && result != -1; d++)
                    if (c->sides[d].retry || c->sides[d].held_length) {
                        int r = pump_park(c, d);
                        if (r < result) result = r;
                    }
                park_after(c, result);
            }
        }
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
            if (events[i].data.ptr == &changes_tag) { ring_buffer__consume(changes); continue; }
            struct tag *t = events[i].data.ptr;
            struct conn *c = t->conn;
            if (!c) continue;
            if (c->state == WAITING_HELLO) {
                c->tags[0] = NULL;
                free(t);
                if (start_relay(c)) { epoll_ctl(epfd, EPOLL_CTL_DEL, c->client, NULL); finish(c); }
                continue;
            }
            if (park_mode) {
                uint32_t e = events[i].events;
                int result = (e & EPOLLERR) ? -1 : 0;
                if (!result && (e & EPOLLOUT)) result = pump_park(c, 1 - t->is_backend);
                if (result != -1 && (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP))) {
                    int r = pump_park(c, t->is_backend);
                    // An end of stream while redirecting: nothing parked to read first.
                    if (r == 0 && (e & (EPOLLRDHUP | EPOLLHUP)) && !c->sides[t->is_backend].held_length &&
                        !__atomic_load_n(&flows[2 * c->slot + t->is_backend].parked, __ATOMIC_ACQUIRE))
                        r = -2;
                    if (r < result) result = r;
                }
                park_after(c, result);
                continue;
            }
            // splice mode moves what is readable before it looks at an end (the last response may come with
            // the FIN); kernel mode cannot know what the kernel still holds and closes at once.
            int ended = events[i].events & (kernel_mode ? (EPOLLRDHUP | EPOLLHUP | EPOLLERR) : EPOLLERR);
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
