// The kernel half of the probe's "kernel-park" mode: relay.bpf.c's redirect, with a bound on what may be
// queued toward the peer. The egress redirect queues skbs on the peer's psock without limit (a peer that
// never reads lets a sender queue gigabytes). Here the verdict keeps, per direction, the bytes handed to
// the peer (redirected by this program plus written by user space) and reads the peer's bytes_acked; when
// the difference passes BOUND it *parks* the direction: every later skb is passed to the sending socket's
// own receive queue (SK_PASS), charged to that socket's receive buffer, so its TCP window closes as with
// any relay that stops reading. User space delivers the parked bytes itself, after the peer's queue has
// drained, and asks for the redirect to resume by writing `resume = passed + 1`: the verdict resumes only
// if no byte was parked since user space last found the socket empty, so no byte can overtake another.
#include "sockets.bpf.h"

#define BOUND (4u << 20)

// Only the field read here; libbpf relocates its offset against the running kernel's BTF.
struct tcp_sock {
    __u64 bytes_acked;
} __attribute__((preserve_access_index));

// One direction of a connection: the sending socket's bytes toward its peer. Shared with user space by
// mmap; each field has one writer (noted).
struct flow {
    __u64 peer;          // the peer's socket cookie (user space, before the pair is in the map)
    __u64 redirected;    // bytes redirected to the peer (verdict)
    __u64 passed;        // bytes parked on the sending socket (verdict)
    __u64 parked;        // 1 while parked (verdict)
    __u64 parks;         // how many times it parked (verdict)
    __u64 resume;        // passed + 1 when user space has delivered every parked byte (user space)
    __u64 user_written;  // bytes user space wrote to the peer, the PROXY header included, plus what the
                         // peer's bytes_acked counted before (the SYN) (user space)
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 65536);
    __type(key, __u64);
    __type(value, __u32);
} slots SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 65536);
    __uint(map_flags, BPF_F_MMAPABLE);
    __type(key, __u32);
    __type(value, struct flow);
} flows SEC(".maps");

// Parking and resuming are announced to user space (the flow's index, shifted, and the new state), so that
// it watches the sender for readable bytes only while parked: a socket watched for EPOLLIN is woken for
// every message the verdict handles, which would bring back the wake-up the redirect saves.
struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 1 << 16);
} changes SEC(".maps");

static __always_inline void announce(__u32 slot, __u32 parked)
{
    __u32 change = slot << 1 | parked;
    bpf_ringbuf_output(&changes, &change, sizeof change, 0);
}

static __always_inline int park(struct flow *f, __u32 slot, __u32 len)
{
    if (!f->parked) {
        f->parked = 1;
        announce(slot, 1);
    }
    f->passed += len;
    return SK_PASS;
}

SEC("sk_skb/stream_verdict")
int park_verdict(struct __sk_buff *skb)
{
    __u64 cookie = bpf_get_socket_cookie(skb);
    __u32 *slot = bpf_map_lookup_elem(&slots, &cookie);
    if (!slot)
        return SK_PASS;
    __u32 index = *slot;
    struct flow *f = bpf_map_lookup_elem(&flows, &index);
    if (!f)
        return SK_PASS;
    if (f->parked) {
        if (f->resume != f->passed + 1)
            return park(f, index, skb->len);
        f->parked = 0;
        announce(index, 0);
    }
    __u64 peer_cookie = f->peer;
    struct bpf_sock *peer = bpf_map_lookup_elem(&sockets, &peer_cookie);
    if (!peer)
        return park(f, index, skb->len);
    struct tcp_sock *tp = bpf_skc_to_tcp_sock(peer);
    __u64 acked = tp ? tp->bytes_acked : 0;
    bpf_sk_release(peer);
    if ((__s64)(f->redirected + f->user_written - acked) > (__s64)BOUND) {
        f->parks += 1;
        return park(f, index, skb->len);
    }
    f->redirected += skb->len;
    return bpf_sk_redirect_hash(skb, &sockets, &peer_cookie, 0);
}

char LICENSE[] SEC("license") = "GPL";
