import CNftables
import Glibc
import TailgateConfig

extension FirewallRuleset {
    /// `meta l4proto tcp th dport @shield_tcp_ports jump shield` first, then `… @tcp_ports jump guard` (nft
    /// lists them as `tcp dport @… jump …`). A packet the shield does not drop comes back and goes on.
    static func preroutingRules() -> [NftRule] {
        let protocols = [(UInt8(IPPROTO_TCP), "tcp"), (UInt8(IPPROTO_UDP), "udp")]
        return [("shield_", "shield"), ("", "guard")].flatMap { prefix, chain in
            protocols.map { proto, name in
                NftRule(
                    chain: "prerouting", text: "\(name) dport @\(prefix)\(name)_ports jump \(chain)",
                    expressions: transportProtocol(proto) + [destinationPort, .lookup(set: "\(prefix)\(name)_ports"), .verdict(.jump(chain))]
                )
            }
        }
    }

    /// The shield chain: trusted interfaces return at once; a source in a ban set is dropped.
    static func shieldRules() -> [NftRule] {
        var rules = [
            NftRule(
                chain: "shield", text: "iifname @trusted_ifaces return",
                expressions: [.meta(.iifname), .lookup(set: "trusted_ifaces"), .verdict(.return)]
            ),
        ]
        for set in BanSet.allCases {
            let (family, name, offset, length) = set.family == .v4 ? (NFPROTO_IPV4, "ip", 12, 4) : (NFPROTO_IPV6, "ip6", 8, 16)
            rules.append(NftRule(
                chain: "shield", text: "\(name) saddr @\(set.rawValue) counter name \"banned\" drop",
                expressions: [
                    .meta(.nfproto), .compare(.equal, [UInt8(family)]),
                    .payload(.network, offset: UInt32(offset), length: UInt32(length)), .lookup(set: set.rawValue),
                    .counter(name: "banned"), .verdict(.drop),
                ]
            ))
        }
        return rules
    }

    /// The guard chain, in evaluation order (see the type's documentation).
    static func guardRules(portEntries: [(UInt8, FirewallConfiguration.PortRange, PortCounter)], action: FirewallConfiguration.Action) -> [NftRule] {
        var rules = [
            NftRule(
                chain: "guard", text: "iifname @trusted_ifaces accept",
                expressions: [.meta(.iifname), .lookup(set: "trusted_ifaces"), .verdict(.accept)]
            ),
            // Only traffic addressed to this host (before DNAT) is judged; routed traffic, to a unicast
            // address of another host, is not ours. Broadcast and multicast reach this host's sockets too,
            // so they are judged like local traffic (`!= local` let a LAN broadcast reach a guarded UDP port).
            NftRule(
                chain: "guard", text: "fib daddr type unicast accept",
                expressions: [.fibDestinationType, .compare(.equal, hostOrder(UInt32(RTN_UNICAST))), .verdict(.accept)]
            ),
            // Replies to connections this host initiated (a local port may equal a protected one).
            NftRule(
                chain: "guard", text: "ct direction reply accept",
                expressions: [.conntrackDirection, .compare(.equal, [1]), .verdict(.accept)]
            ),
        ]
        for (family, name, offset, length, set) in [(NFPROTO_IPV4, "ip", 12, 4, "tailnet4"), (NFPROTO_IPV6, "ip6", 8, 16, "tailnet6")] {
            rules.append(NftRule(
                chain: "guard", text: "iifname @tailnet_ifaces \(name) saddr @\(set) counter name \"allowed\" accept",
                expressions: [
                    .meta(.iifname), .lookup(set: "tailnet_ifaces"),
                    // inet table: guard the network-header load with the protocol family.
                    .meta(.nfproto), .compare(.equal, [UInt8(family)]),
                    .payload(.network, offset: UInt32(offset), length: UInt32(length)), .lookup(set: set),
                    .counter(name: "allowed"), .verdict(.accept),
                ]
            ))
        }
        for (proto, range, counter) in portEntries {
            var expressions = transportProtocol(proto) + [destinationPort]
            if range.lower == range.upper {
                expressions.append(.compare(.equal, ByteKey.port(range.lower)))
            } else {
                expressions += [.compare(.greaterOrEqual, ByteKey.port(range.lower)), .compare(.lessOrEqual, ByteKey.port(range.upper))]
            }
            expressions.append(.counter(name: counter.name))
            let verdict: (NftExpression, String) = switch (action, proto == UInt8(IPPROTO_TCP)) {
            case (.drop, _): (.verdict(.drop), "drop")
            case (.reject, true): (.reject(.tcpReset), "reject with tcp reset")
            case (.reject, false): (.reject(.portUnreachable), "reject")
            }
            expressions.append(verdict.0)
            rules.append(NftRule(
                chain: "guard", text: "\(counter.proto) dport \(counter.ports) counter name \"\(counter.name)\" \(verdict.1)",
                expressions: expressions
            ))
        }
        // Catch-all: never reached while every protected port has its rule above; fail closed anyway.
        rules.append(NftRule(chain: "guard", text: "counter name \"dropped\" drop", expressions: [.counter(name: "dropped"), .verdict(.drop)]))
        return rules
    }

    /// `meta l4proto X`: one byte.
    private static func transportProtocol(_ proto: UInt8) -> [NftExpression] {
        [.meta(.l4proto), .compare(.equal, [proto])]
    }

    /// `th dport`: two bytes at offset 2 of the transport header.
    private static let destinationPort = NftExpression.payload(.transport, offset: 2, length: 2)

    /// A u32 in host byte order, as fib results are compared.
    private static func hostOrder(_ value: UInt32) -> [UInt8] {
        withUnsafeBytes(of: value) { Array($0) }
    }
}
