// libnftnl + libmnl (Debian's libnftnl-dev, libmnl-dev) and the kernel's nf_tables headers,
// found through pkg-config "libnftnl". TailgateFirewall re-implements the macros Swift cannot import.
#ifndef TAILGATE_CNFTABLES_SHIM_H
#define TAILGATE_CNFTABLES_SHIM_H
#include <stdint.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_tables.h>
#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/gen.h>
#include <libnftnl/object.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>
#endif
