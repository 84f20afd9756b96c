// What both verdict programs share: the includes, and the map of the relayed sockets, keyed by socket
// cookie (the probe puts both sockets of a connection in it; the verdicts redirect into it).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
    __uint(type, BPF_MAP_TYPE_SOCKHASH);
    __uint(max_entries, 65536);
    __type(key, __u64);
    __type(value, __u64);
} sockets SEC(".maps");
