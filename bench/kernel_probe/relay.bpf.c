// The kernel half of the relay probe: a socket's incoming bytes go straight to its peer's send queue.
// Sockets are keyed by their socket cookie; `peers` maps a cookie to its peer's.
#include "sockets.bpf.h"

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 65536);
    __type(key, __u64);
    __type(value, __u64);
} peers SEC(".maps");

SEC("sk_skb/stream_verdict")
int relay_verdict(struct __sk_buff *skb)
{
    __u64 cookie = bpf_get_socket_cookie(skb);
    __u64 *peer = bpf_map_lookup_elem(&peers, &cookie);
    if (!peer)
        return SK_PASS;
    return bpf_sk_redirect_hash(skb, &sockets, peer, 0);
}

// With the parser attached too (probe mode "kernel-parser"), bytes go through the kernel's stream parser:
// every skb is one message.
SEC("sk_skb/stream_parser")
int relay_parser(struct __sk_buff *skb)
{
    return skb->len;
}

char LICENSE[] SEC("license") = "GPL";
