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
/// The shield comes first: `prerouting` jumps to `shield` for the shielded ports (the listeners' and the
/// restricted ones, `ShieldPorts`), where sources in the ban sets `ban4`, `ban4_net`, `ban6` and `ban6_net`
/// are dropped (counter `banned`) before anything else looks at them; trusted interfaces are never
/// judged there. The ban sets' elements carry timeouts and are added and removed at run time.
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

    /// Builds the table for `configuration`, shielding `shield`'s ports.
    public init(_ configuration: FirewallConfiguration, shield: ShieldPorts = ShieldPorts(), tableName: String = "tailgate") {
        self.tableName = tableName
        let tcp = configuration.tcpPorts.sorted().map { Self.portCounter("tcp", $0) }
        let udp = configuration.udpPorts.sorted().map { Self.portCounter("udp", $0) }
        portCounters = tcp + udp
        counterNames = ["allowed", "dropped", "banned"] + portCounters.map(\.name)
        sets = [
            .interfaces("trusted_ifaces", id: 1, names: configuration.trustedInterfaces),
            .interfaces("tailnet_ifaces", id: 2, names: configuration.tailnetInterfaces),
            .addresses("tailnet4", id: 3, family: .v4, networks: configuration.allow),
            .addresses("tailnet6", id: 4, family: .v6, networks: configuration.allow),
            .ports("tcp_ports", id: 5, ports: configuration.tcpPorts),
            .ports("udp_ports", id: 6, ports: configuration.udpPorts),
            .ports("shield_tcp_ports", id: 7, ports: shield.tcp),
            .ports("shield_udp_ports", id: 8, ports: shield.udp),
        ] + BanSet.allCases.enumerated().map { index, set in
            NftSet.bans(set.rawValue, id: 9 + UInt32(index), family: set.family, prefixes: set.holdsPrefixes, size: shield.capacity)
        }
        let hook = NftChain.Hook(
            type: "filter", number: NF_INET_PRE_ROUTING.rawValue, priority: -150, policy: UInt32(NF_ACCEPT),
            text: "type filter hook prerouting priority mangle; policy accept;"
        )
        chains = [NftChain(name: "prerouting", hook: hook), NftChain(name: "shield", hook: nil), NftChain(name: "guard", hook: nil)]
        rules = Self.preroutingRules() + Self.shieldRules() + Self.guardRules(
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

/// The ports whose sources the ban sets are checked against, and how many bans each set holds at most.
public struct ShieldPorts: Sendable, Equatable {
    public var tcp: [FirewallConfiguration.PortRange]
    public var udp: [FirewallConfiguration.PortRange]
    /// The kernel refuses bans beyond this many per set (a flood of ban requests cannot exhaust its memory).
    public var capacity: UInt32

    public init(tcp: [FirewallConfiguration.PortRange] = [], udp: [FirewallConfiguration.PortRange] = [], capacity: UInt32 = 65_536) {
        self.tcp = tcp
        self.udp = udp
        self.capacity = capacity
    }
}

/// The four ban sets: single addresses in a hash, prefixes in an interval set, per family.
public enum BanSet: String, Sendable, CaseIterable {
    case ipv4 = "ban4", ipv4Prefixes = "ban4_net", ipv6 = "ban6", ipv6Prefixes = "ban6_net"

    var family: IPAddress.Family { self == .ipv4 || self == .ipv4Prefixes ? .v4 : .v6 }
    public var holdsPrefixes: Bool { self == .ipv4Prefixes || self == .ipv6Prefixes }

    /// The set a ban of `network` goes to.
    public static func holding(_ network: IPNetwork) -> BanSet {
        let full = network.address.family == .v4 ? 32 : 128
        switch (network.address.family, network.prefixLength == full) {
        case (.v4, true): return .ipv4
        case (.v4, false): return .ipv4Prefixes
        case (.v6, true): return .ipv6
        case (.v6, false): return .ipv6Prefixes
        }
    }
}
