import CNftables
import TailgateConfig

/// The desired table, built once from the configuration; the same builder feeds apply, plan and verify.
///
/// Layout (see `nftText`): named counters `allowed`, `dropped` and one per protected port entry; sets
/// `trusted_ifaces`, `tailnet_ifaces`, `tailnet4`, `tailnet6`, `tcp_ports`, `udp_ports`; a base chain
/// `prerouting` (filter, priority mangle = -150) that jumps to `guard` for protected ports. `guard`
/// accepts trusted interfaces, traffic not addressed to this host, conntrack replies and tailnet
/// sources on tailnet interfaces, then drops (or rejects) per port entry, each with its own counter,
/// and finally drops anything left with counter `dropped`.
///
/// The structure never depends on the configuration: an empty port list or address family keeps its
/// (empty) set and its rule, which then matches nothing. `enabled` is not looked at: whether to apply
/// is the caller's decision. The configuration is expected to be validated (ports sorted and not
/// overlapping, interface names of at most 15 bytes); anything else is passed on and refused by the kernel.
public struct FirewallRuleset: Sendable, Equatable {
    /// The table's name in the `inet` family.
    public let tableName: String
    /// The per-port drop counters, in rule order (tcp entries, then udp).
    public let portCounters: [PortCounter]
    /// Named counters in creation order.
    let counterNames: [String]
    let sets: [NftSet]
    let chains: [NftChain]
    /// In evaluation order, chain by chain.
    let rules: [NftRule]

    /// Builds the table for `configuration`.
    public init(_ configuration: FirewallConfiguration, tableName: String = "tailgate") {
        self.tableName = tableName
        let tcp = configuration.tcpPorts.sorted().map { Self.portCounter("tcp", $0) }
        let udp = configuration.udpPorts.sorted().map { Self.portCounter("udp", $0) }
        portCounters = tcp + udp
        counterNames = ["allowed", "dropped"] + portCounters.map(\.name)
        sets = [
            .interfaces("trusted_ifaces", id: 1, names: configuration.trustedInterfaces),
            .interfaces("tailnet_ifaces", id: 2, names: configuration.tailnetInterfaces),
            .addresses("tailnet4", id: 3, family: .v4, networks: configuration.allow),
            .addresses("tailnet6", id: 4, family: .v6, networks: configuration.allow),
            .ports("tcp_ports", id: 5, ports: configuration.tcpPorts),
            .ports("udp_ports", id: 6, ports: configuration.udpPorts),
        ]
        let hook = NftChain.Hook(
            type: "filter", number: NF_INET_PRE_ROUTING.rawValue, priority: -150, policy: UInt32(NF_ACCEPT),
            text: "type filter hook prerouting priority mangle; policy accept;"
        )
        chains = [NftChain(name: "prerouting", hook: hook), NftChain(name: "guard", hook: nil)]
        rules = Self.preroutingRules() + Self.guardRules(
            portEntries: zip(configuration.tcpPorts.sorted(), tcp).map { (UInt8(IPPROTO_TCP), $0, $1) }
                + zip(configuration.udpPorts.sorted(), udp).map { (UInt8(IPPROTO_UDP), $0, $1) },
            action: configuration.action
        )
    }

    /// nft syntax, exactly what `nft list table inet NAME` prints right after apply (nft 1.0.6 layout,
    /// counters at zero). This is `tailgate firewall plan`.
    public var nftText: String { renderText() }

    /// The set named `name`.
    func set(named name: String) -> NftSet? {
        sets.first { $0.name == name }
    }

    private static func portCounter(_ proto: String, _ range: FirewallConfiguration.PortRange) -> PortCounter {
        let suffix = range.lower == range.upper ? "\(range.lower)" : "\(range.lower)_\(range.upper)"
        return PortCounter(name: "dropped_\(proto)_\(suffix)", proto: proto, ports: range.description)
    }
}
